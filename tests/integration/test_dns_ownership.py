# Copyright: mailops.powermta contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Issue 14 acceptance: playbooks/dns.yml in zones shared with others, on a real BIND 9.

The zone is seeded with values the fleet did not write (site verifications at the apex, a hand-made
record); through publish, re-publish, check mode, an IP leaving the inventory and a DKIM rotation they
stay byte for byte, there is exactly one v=spf1, and what the fleet removed is gone.

The fleet is two fake hosts on ansible's ``local`` connection; each has its own DKIM key directory, and
the dns role reads the public keys from those files (no facts of an earlier play). The reverse zone
113.0.203.in-addr.arpa is served without updates: it belongs to "the hosting provider".
"""

from __future__ import annotations

import shutil

import dns.query
import dns.rdatatype
import dns.tsigkeyring
import dns.update
import pytest
import yaml
from conftest import Bind9Server
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from dns_helpers import BIN, ROOT, query, run_playbook, serial, txt_values

PLAYBOOK = ROOT / "playbooks" / "dns.yml"
PROVIDER_ZONE = "113.0.203.in-addr.arpa"
SEEDED_APEX = [b"google-site-verification=rXOxyZounnZasA8Z7oaD3c14JdjS9aKSWvsR1EbUSIQ", b"MS=ms48224614"]
HAND_TXT = b"v=spf1 include:_spf.example.org ~all"  # someone else's SPF at another name: never ours


class ProviderReverseZoneBind9(Bind9Server):
    """The bench BIND, but the key may not update the provider's reverse zone."""

    def _write_config(self):
        super()._write_config()
        conf = self.conf_path.read_text()
        marker = 'zone "%s" {' % PROVIDER_ZONE
        start = conf.index(marker)
        end = conf.index("};\n", conf.index("allow-transfer", start)) + 3
        conf = conf[:start] + 'zone "%s" { type primary; file "%s"; allow-transfer { key %s; }; };\n' % (
            PROVIDER_ZONE, self.zone_path(PROVIDER_ZONE), self.key_name) + conf[end:]
        self.conf_path.write_text(conf)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    if shutil.which("named") is None:
        pytest.skip("BIND 9 named not installed")
    bind = ProviderReverseZoneBind9(tmp_path_factory.mktemp("bind9-ownership"))
    bind.start()
    yield bind
    bind.stop()


def raw_update(server, zone, build):
    keyring = dns.tsigkeyring.from_text({server.key_name: (server.key_algorithm, server.key_secret)})
    update = dns.update.UpdateMessage(zone, keyring=keyring, keyname=server.key_name)
    build(update)
    return dns.query.tcp(update, server.address, port=server.port, timeout=5).rcode()


def raw_txt(server, name):
    """The TXT RRset exactly as served: sorted tuples of the strings of each value."""
    rrset = query(server, name, "TXT", tcp=True)
    return sorted(tuple(rd.strings) for rd in rrset) if rrset else []


def new_key(path):
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                                       serialization.NoEncryption()))
    path.chmod(0o600)
    return "".join(key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode().splitlines()[1:-1])


class Fleet:
    """Writes the inventory for a state of the fleet; the DKIM key files live in per-host directories."""

    def __init__(self, server, workdir):
        self.server = server
        self.workdir = workdir
        self.p_values = {}
        self.selectors = ["s1"]  # of example.com, as the tests leave them (they run in file order)

    def key(self, domain, selector, hosts):
        shared = None
        for host in hosts:
            path = self.workdir / host / "dkim" / domain / ("%s.pem" % selector)
            if shared is None:
                self.p_values[(domain, selector)] = new_key(path)
                shared = path
            else:
                path.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy(shared, path)

    def inventory(self, pmta1_vmtas, selectors, **group_vars):
        python = str(BIN / "python")
        hosts = {
            "dns-pmta1": {"powermta_host_vmtas": pmta1_vmtas},
            "dns-pmta2": {
                "powermta_host_vmtas": [{"name": "tx-30", "ip": "203.0.113.30", "hostname": "mta30.example.net"}],
                # Only this host sends for example.net: it must still be published.
                "powermta_host_domains": [{"name": "example.net", "dkim_selectors": ["s9"],
                                           "dmarc_rua": "mailto:dmarc@example.net"}],
            },
        }
        for name, host in hosts.items():
            host["dns_dkim_key_dir"] = str(self.workdir / name / "dkim")
        variables = {
            "ansible_connection": "local", "ansible_python_interpreter": python,
            "powermta_domains": [{"name": "example.com", "dkim_selectors": selectors,
                                  "dmarc_rua": "mailto:dmarc@example.com"}],
            "dns_server": self.server.address, "dns_port": self.server.port,
            "dns_key_name": self.server.key_name, "dns_key_secret": self.server.key_secret,
            "dns_key_algorithm": self.server.key_algorithm, "dns_dkim_read_become": False,
            "dns_ptr_verify_only": [PROVIDER_ZONE],
        }
        variables.update(group_vars)
        inventory = {"all": {"children": {"pmta_fleet": {"hosts": hosts, "vars": variables}}}}
        path = self.workdir / ("inventory-%d.yml" % len(list(self.workdir.glob("inventory-*.yml"))))
        path.write_text(yaml.safe_dump(inventory))
        return path


MTA10 = {"name": "tx-10", "ip": "192.0.2.10", "hostname": "mta10.example.com"}
MTA11 = {"name": "tx-11", "ip": "192.0.2.11", "hostname": "mta11.example.com"}


@pytest.fixture(scope="module")
def seeded(server):
    def seed(update):
        for value in SEEDED_APEX:
            update.add("@", 300, "TXT", '"%s"' % value.decode())
        update.add("@", 300, "TXT", '"v=spf1 ip4:192.0.2.10 -all"')  # an SPF the fleet's covers: adopted
        update.add("hand", 300, "A", "192.0.2.200")
        update.add("hand", 300, "TXT", '"%s"' % HAND_TXT.decode())
    assert raw_update(server, "example.com", seed) == 0
    return server


@pytest.fixture(scope="module")
def fleet(seeded, tmp_path_factory):
    fleet = Fleet(seeded, tmp_path_factory.mktemp("dns-ownership"))
    fleet.key("example.com", "s1", ["dns-pmta1", "dns-pmta2"])
    fleet.key("example.net", "s9", ["dns-pmta2"])
    return fleet


def assert_others_untouched(server):
    apex = raw_txt(server, "example.com")
    assert [(value,) for value in sorted(SEEDED_APEX)] == [v for v in apex if not v[0].startswith(b"v=spf1")]
    spf = [b"".join(v) for v in apex if b"".join(v).startswith(b"v=spf1")]
    assert len(spf) == 1, apex
    assert raw_txt(server, "hand.example.com") == [(HAND_TXT,)]
    assert [rd.to_text() for rd in query(server, "hand.example.com", "A")] == ["192.0.2.200"]
    return spf[0].decode()


@pytest.fixture(scope="module")
def published(fleet):
    inventory = fleet.inventory([MTA10, MTA11], ["s1"])
    return run_playbook(PLAYBOOK, inventory)


def test_publish_keeps_others_values_and_reports_provider_ptrs(published, fleet):
    rc, output, _recap = published
    assert rc == 0, output
    server = fleet.server
    spf = assert_others_untouched(server)
    assert spf == "v=spf1 ip4:192.0.2.10/31 ip4:203.0.113.30 -all"
    # Domains of every host (example.net is only on dns-pmta2), keys read from each host's files.
    for (domain, selector), p_value in fleet.p_values.items():
        assert txt_values(server, "%s._domainkey.%s" % (selector, domain)) == ["v=DKIM1; k=rsa; p=%s" % p_value]
    assert txt_values(server, "example.net") == ["v=spf1 ip4:192.0.2.10/31 ip4:203.0.113.30 -all"]
    assert query(server, "10.2.0.192.in-addr.arpa", "PTR")[0].target.to_text() == "mta10.example.com."
    # The provider's reverse zone: nothing written, the missing PTR reported with what to ask for.
    assert query(server, "30.113.0.203.in-addr.arpa", "PTR") is None
    assert "ASK THE REVERSE ZONE OWNER for PTR 30.113.0.203.in-addr.arpa -> mta30.example.net." in output
    assert "ADVISORY 203.0.113.30 ptr" in output and "FAILED " not in output
    # The registry: one entry per RRset or shared value the fleet wrote.
    (registry,) = raw_txt(server, "_mailops-owner.example.com")
    assert registry[0] == b"heritage=mailops.powermta; owner=pmta_fleet"
    assert b"mta11 A" in registry and b"mta11 TXT v=spf1 sha=" in b"|".join(registry)
    assert b"@ TXT v=spf1 sha=" in b"|".join(registry)
    assert not [entry for entry in registry if entry.startswith(b"hand ")]


def test_republish_changes_nothing(published, fleet):
    assert published[0] == 0, published[1]
    before = {zone: serial(fleet.server, zone) for zone in ("example.com", "example.net", "2.0.192.in-addr.arpa")}
    rc, output, recap = run_playbook(PLAYBOOK, fleet.inventory([MTA10, MTA11], ["s1"]))
    assert rc == 0, output
    assert all(counters["changed"] == 0 for counters in recap.values()), output
    assert {zone: serial(fleet.server, zone) for zone in before} == before
    assert_others_untouched(fleet.server)


def test_removed_ip_check_mode_sends_nothing_then_its_records_go(published, fleet):
    assert published[0] == 0, published[1]
    server = fleet.server
    inventory = fleet.inventory([MTA10], ["s1"])
    before = {zone: serial(server, zone) for zone in ("example.com", "2.0.192.in-addr.arpa")}
    rc, output, _recap = run_playbook(PLAYBOOK, inventory, "--check", "--diff")
    assert rc == 0, output
    assert "delete A mta11.example.com." in output and "delete PTR 11.2.0.192.in-addr.arpa." in output
    assert {zone: serial(server, zone) for zone in before} == before
    assert query(server, "mta11.example.com", "A") is not None

    rc, output, _recap = run_playbook(PLAYBOOK, inventory)
    assert rc == 0, output
    assert query(server, "mta11.example.com", "A") is None
    assert query(server, "11.2.0.192.in-addr.arpa", "PTR") is None
    assert txt_values(server, "mta11.example.com") == []  # its HELO SPF
    assert assert_others_untouched(server) == "v=spf1 ip4:192.0.2.10 ip4:203.0.113.30 -all"
    assert not [e for e in raw_txt(server, "_mailops-owner.example.com")[0] if e.startswith(b"mta11 ")]


def test_dkim_rotation_per_runbook(published, fleet):
    """docs/runbooks.md: add the new selector, later remove the old one; the old record goes on its own."""
    assert published[0] == 0, published[1]
    server = fleet.server
    fleet.key("example.com", "s2", ["dns-pmta1", "dns-pmta2"])
    rc, output, _recap = run_playbook(PLAYBOOK, fleet.inventory([MTA10], ["s1", "s2"]))
    assert rc == 0, output
    assert txt_values(server, "s1._domainkey.example.com") and txt_values(server, "s2._domainkey.example.com")
    rc, output, _recap = run_playbook(PLAYBOOK, fleet.inventory([MTA10], ["s2"]))
    assert rc == 0, output
    fleet.selectors = ["s2"]
    assert txt_values(server, "s1._domainkey.example.com") == []
    assert txt_values(server, "s2._domainkey.example.com") == [
        "v=DKIM1; k=rsa; p=%s" % fleet.p_values[("example.com", "s2")]]
    assert_others_untouched(server)


def test_absent_items_in_extra_records_remove_what_is_listed(published, fleet):
    assert published[0] == 0, published[1]
    server = fleet.server
    old_record = '"v=DKIM1; p="'  # a revoked key someone left behind
    assert raw_update(server, "example.com", lambda u: u.add("old-selector._domainkey", 300, "TXT", old_record)) == 0
    extra = [{"name": "old-selector._domainkey.example.com", "type": "TXT", "state": "absent"}]
    inventory = fleet.inventory([MTA10], fleet.selectors, dns_extra_records=extra)
    rc, output, _recap = run_playbook(PLAYBOOK, inventory)
    assert rc == 0, output
    assert txt_values(server, "old-selector._domainkey.example.com") == []
    assert_others_untouched(server)


def test_publishing_ptr_into_the_providers_zone_fails_naming_it(published, fleet):
    assert published[0] == 0, published[1]
    before = serial(fleet.server, PROVIDER_ZONE)
    inventory = fleet.inventory([MTA10], fleet.selectors, dns_ptr_verify_only=[])
    rc, output, _recap = run_playbook(PLAYBOOK, inventory)
    assert rc != 0
    assert "zone %s. failed with REFUSED" % PROVIDER_ZONE in output, output[-3000:]
    assert serial(fleet.server, PROVIDER_ZONE) == before
    assert query(fleet.server, "30.113.0.203.in-addr.arpa", "PTR") is None


def test_foreign_spf_terms_fail_or_are_kept(published, fleet):
    """An SPF someone edited by hand (an include of a partner's SPF) is never dropped silently."""
    assert published[0] == 0, published[1]
    server = fleet.server

    def edit(update):
        update.delete("@", "TXT", '"v=spf1 ip4:192.0.2.10 ip4:203.0.113.30 -all"')
        update.add("@", 3600, "TXT", '"v=spf1 include:_spf-partner.example.net ip4:192.0.2.10 ip4:203.0.113.30 -all"')
        update.add("_spf-partner", 3600, "TXT", '"v=spf1 ip4:198.51.100.7 -all"')
    assert raw_update(server, "example.net", edit) == 0
    before = serial(server, "example.net")
    rc, output, _recap = run_playbook(PLAYBOOK, fleet.inventory([MTA10], fleet.selectors))
    assert rc != 0
    assert "terms the fleet's SPF does not carry: include:_spf-partner.example.net" in output, output[-3000:]
    assert serial(server, "example.net") == before
    keep = fleet.inventory([MTA10], fleet.selectors, dns_spf_foreign_terms="keep")
    rc, output, _recap = run_playbook(PLAYBOOK, keep)
    assert rc == 0, output
    assert txt_values(server, "example.net") == [
        "v=spf1 include:_spf-partner.example.net ip4:192.0.2.10 ip4:203.0.113.30 -all"]
    assert txt_values(server, "_spf-partner.example.net") == ["v=spf1 ip4:198.51.100.7 -all"]
    rc, output, recap = run_playbook(PLAYBOOK, keep)
    assert rc == 0 and all(counters["changed"] == 0 for counters in recap.values()), output
    assert_others_untouched(server)
