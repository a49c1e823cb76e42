# Copyright: mailops.powermta contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The dns role through ansible-playbook: the full mail record set of 4 IPs / 2 domains on a real BIND.

Uses a named of its own: it owns example.com and example.net there.
"""

from __future__ import annotations

import base64
import json

import pytest
import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from dns_helpers import BIN, ROOT, dig, query, run_adhoc, run_playbook, serial, txt_values

PLAYBOOK = ROOT / "playbooks" / "dns.yml"

VMTAS_PMTA1 = [
    {"name": "tx-01", "ip": "192.0.2.10", "hostname": "mta10.example.com", "pool": "transactional"},
    {"name": "mk-01", "ip": "198.51.100.20", "hostname": "mta20.example.com", "pool": "marketing"},
]
VMTAS_PMTA2 = [
    {"name": "tx-02", "ip": "203.0.113.30", "hostname": "mta30.example.net", "pool": "transactional"},
    {"name": "v6-01", "ip": "2001:db8::40", "hostname": "mta40.example.net", "pool": "marketing"},
]
ALL_IPS = ["192.0.2.10", "198.51.100.20", "203.0.113.30", "2001:db8::40"]


def public_pem(bits):
    key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    return key.public_key().public_bytes(serialization.Encoding.PEM,
                                         serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def p_value(pem):
    return base64.b64encode(serialization.load_pem_public_key(pem.encode()).public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)).decode()


def domains(example_com_policy="none"):
    return [
        {"name": "example.com", "dkim_selectors": ["s2048"], "dmarc_policy": example_com_policy,
         "dmarc_rua": "mailto:dmarc-reports@example.com", "bounce_domain": "bounces.example.com"},
        {"name": "example.net", "dkim_selectors": ["s4096"], "dmarc_policy": "quarantine",
         "dmarc_rua": "mailto:dmarc-reports@example.net", "bounce_domain": "bounces.example.net"},
    ]


@pytest.fixture(scope="module")
def keys():
    return {"s2048": public_pem(2048), "s4096": public_pem(4096)}


@pytest.fixture(scope="module")
def fleet(bind9_module, keys, tmp_path_factory):
    """Inventory: two hosts whose vMTAs come from different layers (the fleet model merges them), DKIM
    public keys as the powermta role's facts of this run (no key files on these fake hosts)."""
    python = str(BIN / "python")
    inventory = {
        "all": {
            "hosts": {"localhost": {"ansible_connection": "local", "ansible_python_interpreter": python}},
            "children": {"pmta_fleet": {
                "hosts": {
                    "pmta1": {
                        "powermta_host_vmtas": VMTAS_PMTA1,
                        "powermta_dkim_public_keys": [
                            {"domain": "example.com", "selector": "s2048", "public_key_pem": keys["s2048"],
                             "bits": 2048}],
                    },
                    "pmta2": {
                        "powermta_vmtas": VMTAS_PMTA2[:1],
                        "powermta_host_vmtas": VMTAS_PMTA2[1:],
                        "powermta_dkim_public_keys": [
                            {"domain": "example.net", "selector": "s4096", "public_key_pem": keys["s4096"],
                             "bits": 4096}],
                    },
                },
                "vars": {
                    "ansible_connection": "local",
                    "ansible_python_interpreter": python,
                    "powermta_domains": domains(),
                    "dns_server": bind9_module.address,
                    "dns_port": bind9_module.port,
                    "dns_key_name": bind9_module.key_name,
                    "dns_key_secret": bind9_module.key_secret,
                    "dns_key_algorithm": bind9_module.key_algorithm,
                },
            }},
        }
    }
    path = tmp_path_factory.mktemp("dns-role") / "inventory.yml"
    path.write_text(yaml.safe_dump(inventory))
    return path


@pytest.fixture(scope="module")
def first_run(fleet):
    return run_playbook(PLAYBOOK, fleet)


def test_first_run_publishes_and_verifies(first_run):
    rc, output, recap = first_run
    assert rc == 0, output
    assert recap["pmta1"]["changed"] >= 1 and recap["pmta1"]["failed"] == 0
    assert "checks passed" in output and "FAILED " not in output


def test_records_seen_by_an_independent_resolver(first_run, bind9_module, keys):
    assert first_run[0] == 0, first_run[1]
    server = bind9_module
    # dig, BIND's own client, as a receiver would ask.
    for selector, domain in (("s2048", "example.com"), ("s4096", "example.net")):
        answer = dig(server, "TXT", "%s._domainkey.%s" % (selector, domain))
        joined = answer.strip('"').replace('" "', "")
        assert joined == "v=DKIM1; k=rsa; p=%s" % p_value(keys[selector])
    assert dig(server, "-x", "2001:db8::40") == "mta40.example.net."
    assert dig(server, "-x", "203.0.113.30") == "mta30.example.net."
    assert dig(server, "AAAA", "mta40.example.net") == "2001:db8::40"
    assert dig(server, "A", "mta10.example.com") == "192.0.2.10"
    spf = txt_values(server, "example.com")
    assert spf == ["v=spf1 ip4:192.0.2.10 ip4:198.51.100.20 ip4:203.0.113.30 ip6:2001:db8::40 -all"]
    assert txt_values(server, "mta20.example.com") == ["v=spf1 a -all"]
    assert txt_values(server, "_dmarc.example.net") == [
        "v=DMARC1; p=quarantine; rua=mailto:dmarc-reports@example.net"]
    # bounce MX: the first vMTA host name of each PowerMTA host
    assert sorted(rd.exchange.to_text() for rd in query(server, "bounces.example.com", "MX")) == [
        "mta10.example.com.", "mta30.example.net."]
    # The 4096-bit key needs 3 strings of <=255 bytes.
    strings = query(server, "s4096._domainkey.example.net", "TXT", tcp=True)[0].strings
    assert len(strings) == 3 and all(len(s) <= 255 for s in strings)


def verify_args(server, keys, dkim_s2048=None, example_com_policy="none"):
    return {
        "server": server.address, "port": server.port,
        "domains": [
            {"name": "example.com", "spf_ips": ALL_IPS, "dmarc_policy": example_com_policy,
             "bounce_domain": "bounces.example.com",
             "dkim": [{"selector": "s2048", "public_key": dkim_s2048 or keys["s2048"]}]},
            {"name": "example.net", "spf_ips": ALL_IPS, "dmarc_policy": "quarantine",
             "dkim": [{"selector": "s4096", "public_key": keys["s4096"]}]},
        ],
        "ips": [{"ip": v["ip"], "hostname": v["hostname"]} for v in VMTAS_PMTA1 + VMTAS_PMTA2],
    }


def test_dns_verify_passes_and_catches_a_wrong_key(first_run, bind9_module, keys, tmp_path):
    assert first_run[0] == 0, first_run[1]
    args = verify_args(bind9_module, keys)
    key_file = tmp_path / "s4096.pub"
    key_file.write_text(keys["s4096"])
    args["domains"][1]["dkim"] = [{"selector": "s4096", "public_key_file": str(key_file)}]
    rc, result = run_adhoc("dns_verify", args)
    assert rc == 0, result
    checks = {(c["subject"], c["check"]): c for c in result["checks"]}
    assert all(c["ok"] for c in result["checks"]), [c for c in result["checks"] if not c["ok"]]
    assert checks[("2001:db8::40", "fcrdns")]["ok"]
    assert checks[("example.com 2001:db8::40", "spf_authorizes_ip")]["ok"]
    assert "4096 bits" in checks[("s4096._domainkey.example.net", "dkim_key")]["detail"]
    assert len(result["checks"]) == 2 * (3 + 4) + 3 + 4 * 3  # per domain: spf x2, ips, dkim, dmarc; mx; per ip

    rc, wrong = run_adhoc("dns_verify", verify_args(bind9_module, keys, dkim_s2048=public_pem(2048),
                                                    example_com_policy="reject"))
    assert rc != 0
    failed = {(c["subject"], c["check"]) for c in wrong["failed_checks"]}
    assert failed == {("s2048._domainkey.example.com", "dkim_key"), ("example.com", "dmarc_policy")}
    assert "2 required mail DNS checks failed" in wrong["msg"]


def test_second_run_changes_nothing(first_run, fleet, bind9_module):
    assert first_run[0] == 0, first_run[1]
    serial_before = serial(bind9_module, "example.com")
    rc, output, recap = run_playbook(PLAYBOOK, fleet)
    assert rc == 0, output
    assert all(counters["changed"] == 0 for counters in recap.values()), output
    assert serial(bind9_module, "example.com") == serial_before


def test_check_mode_then_staged_dmarc(first_run, fleet, bind9_module, tmp_path):
    assert first_run[0] == 0, first_run[1]
    staged = tmp_path / "stage.json"
    staged.write_text(json.dumps({"powermta_domains": domains("quarantine")}))
    serial_before = serial(bind9_module, "example.com")

    rc, output, recap = run_playbook(PLAYBOOK, fleet, "--check", "--diff", "-e", "@%s" % staged)
    assert rc == 0, output
    assert recap["pmta1"]["changed"] == 1
    assert "p=quarantine" in output  # the diff shows the new DMARC record
    assert serial(bind9_module, "example.com") == serial_before
    assert txt_values(bind9_module, "_dmarc.example.com")[0].startswith("v=DMARC1; p=none;")

    rc, output, recap = run_playbook(PLAYBOOK, fleet, "-e", "@%s" % staged)
    assert rc == 0, output
    assert serial(bind9_module, "example.com") == serial_before + 1
    assert txt_values(bind9_module, "_dmarc.example.com")[0].startswith("v=DMARC1; p=quarantine;")


def test_missing_connection_variables_fail_before_anything(fleet, tmp_path):
    empty = tmp_path / "empty.json"
    empty.write_text(json.dumps({"dns_key_secret": ""}))
    rc, output, _recap = run_playbook(PLAYBOOK, fleet, "-e", "@%s" % empty)
    assert rc != 0
    assert "set dns_server, dns_key_name and dns_key_secret" in output
