"""Issue 20: the operator's mistakes that were applied on a live fleet now change nothing, even past preflight.

Each case is one mistake on the converged fleet, run as `site.yml --skip-tags preflight,host_tuning` (the fleet
preflight play forced off; the roles' own checks still run; host_tuning is skipped only for time). The run must
fail naming the mistake, and nothing may change: checksums, owners and modes of /etc/pmta and the warm-up state on
every host, owners and modes of the system directories a wrong path would hand to the service account, the
services, the controller's DKIM keys and DNS (SOA serials and the DKIM record). A case that did change something
is repaired afterwards with a normal site.yml run (so the later tests start from the converged fleet), and still
fails.

Runs before test_runbooks.py (pytest takes the files in name order): add_ip.yml there leaves the fleet with a
vMTA Molecule's inventory does not have.

Which branch makes which case pass (issue 20 is shared by three helpers): DKIM bits, the controller key directory
and the directories (log file in /var/log, spool dirs) are enforced here (DKIM key check and ownership rule);
`management-port-25` is refused by the powermta role's per-host port check (the health gate after reload is its
second line, tested in molecule/powermta); `injectors-in-host-vars` and
`bounce-domain-is-sending-domain` need the fleet model's layer and domain invariants (h-preflight). Those three
are marked `after_merge` below: they fail until those branches are merged, never skipped.
"""

import json

import pytest
from helpers import HOSTS, ROOT, ephemeral, playbook, query, soa_serial

SITE = ROOT / "site.yml"
SYSTEM_DIRS = ["/", "/etc", "/home", "/root", "/var", "/var/log", "/var/spool", "/var/lib", "/var/spool/pmta",
               "/var/log/pmta", "/var/lib/mailops-powermta"]
# What a host's state is, for "nothing changed": content of every file we manage, owner and mode of every
# file and directory under our trees, the system directories, stray pmta files in /var/log, the services.
# The metrics exporter rewrites its state file on its timer through a temporary `.metrics-state.json.*`
# (write_atomic): that file is the running service's, not the playbook's, so the listing leaves it out.
SNAPSHOT = (
    "find /etc/pmta /etc/ansible/facts.d -xdev -type f 2>/dev/null | sort | xargs -r sha256sum; "
    "find /etc/pmta /etc/ansible/facts.d /var/lib/mailops-powermta -xdev -not -name '.metrics-state.json.*' "
    "-printf '%p %u:%g %m\\n' 2>/dev/null | sort; "
    "stat -c '%n %U:%G %a' " + " ".join(SYSTEM_DIRS) + " 2>&1; "
    "find /var/log -maxdepth 1 -name 'pmta*' | sort; "
    "systemctl is-active pmta pmtahttp || true"
)
ZONES = ["example.com", "113.0.203.in-addr.arpa", "100.51.198.in-addr.arpa"]

DOMAIN = {"name": "example.com", "dkim_selectors": ["s2026a"], "dkim_key_bits": 2048, "dmarc_policy": "none",
          "dmarc_rua": "mailto:dmarc-reports@example.com", "bounce_domain": "bounces.example.com"}


def domain(**changes):
    return {"powermta_domains": [dict(DOMAIN, **changes)]}


# id -> (extra vars, host_vars of an extra inventory source {host: vars}, texts the output must hold[, group vars
# of pmta_fleet in that source])
CASES = {
    # The DKIM key of a live selector: a new size is refused, never generated (playbooks/powermta.yml's check).
    "dkim-bits-on-live-selector": (
        domain(dkim_key_bits=4096), {},
        ["DKIM selector s2026a._domainkey.example.com", "a 2048-bit key but the inventory asks for 4096 bits",
         "Rotate DKIM keys"]),
    # A typo in the controller's key directory must not make new keys for a deployed selector.
    "dkim-controller-dir-typo": (
        {"powermta_dkim_controller_dir": "{{ site_ephemeral_dir }}/dkim-typo"}, {},
        ["has no key", "dkim-typo/example.com/s2026a.pem", "Check powermta_dkim_controller_dir"]),
    # A log file in /var/log would hand /var/log to pmta; the role's own preflight refuses it.
    "log-file-in-var-log": (
        {"powermta_log_file": "/var/log/pmta.log"}, {},
        ["powermta_log_file (the directory of /var/log/pmta.log): /var/log is a system directory"]),
    # pmtahttp could not bind port 25 (the SMTP listener's): the role's own per-host check refuses the extra var
    # before the host changes (the health gate behind it, restoring a config that fails to start, is tested in
    # molecule/powermta with a held port).
    "management-port-25": ({"powermta_http_mgmt_port": 25}, {},
                           ["site-n1: port 25 is used by powermta_listeners item 0/0:25 and powermta_http_mgmt_port 25"
                            " (the web monitor)", "give powermta_http_mgmt_port a free port"]),
    # h-preflight: a list set in host_vars would replace the group's (the mumara injector would vanish from
    # site-n1). The group's list comes with the extra inventory source (this scenario's inventory sets none).
    "injectors-in-host-vars": (
        {}, {"site-n1": {"powermta_injectors": [{"name": "other", "password": "another-password-1",
                                                 "networks": ["198.18.0.0/24"]}]}},
        ["site-n1: powermta_injectors is set in group pmta_fleet and in host site-n1"],
        {"powermta_injectors": [{"name": "mumara", "password": "a-long-password-1",
                                 "networks": ["198.51.100.0/28"]}]}),
    # h-preflight: a bounce domain equal to the sending domain would take over its MX.
    "bounce-domain-is-sending-domain": (domain(bounce_domain="example.com"), {}, ["bounce_domain"]),
}
# Cases that pass only once the named branch is merged (see the docstring): marked, never skipped.
AFTER_MERGE = {"management-port-25": "h-apply", "injectors-in-host-vars": "h-preflight",
               "bounce-domain-is-sending-domain": "h-preflight"}
# Known gaps (strict xfail naming why; the mark fails the test as soon as the case holds): none left.
KNOWN_GAPS: dict[str, str] = {}


def marks(case_id):
    found = [pytest.mark.after_merge(AFTER_MERGE[case_id])] if case_id in AFTER_MERGE else []
    if case_id in KNOWN_GAPS:
        found.append(pytest.mark.xfail(strict=True, reason=KNOWN_GAPS[case_id]))
    return found


PARAMS = [pytest.param(case_id, marks=marks(case_id)) for case_id in CASES]


def state(fleet):
    hosts = {}
    for name, target in fleet.items():
        with target.sudo():
            hosts[name] = target.run(SNAPSHOT).stdout
    keys = sorted((path.relative_to(ephemeral()).as_posix(), path.read_bytes())
                  for path in ephemeral().glob("dkim*/**/*") if path.is_file())
    dns = {zone: soa_serial(zone) for zone in ZONES}
    dns["dkim"] = query("s2026a._domainkey.example.com", "TXT")
    return {"hosts": hosts, "controller dkim keys": keys, "dns": dns}


@pytest.mark.parametrize("case_id", PARAMS)
def test_mistake_changes_nothing_on_any_host_or_in_dns(once, fleet, tmp_path, case_id):
    extra_vars, host_vars, texts = CASES[case_id][:3]
    group_vars = CASES[case_id][3] if len(CASES[case_id]) > 3 else {}
    before = state(fleet)
    assert before["dns"]["dkim"], "the converged fleet publishes its DKIM key"
    # The fleet preflight play forced off; host_tuning too, only for time (about 80 s per run on this bench):
    # none of these mistakes is in a variable it reads, and the snapshot covers what it would touch.
    args = ["--skip-tags", "preflight,host_tuning"]
    if extra_vars:
        (tmp_path / "extra.json").write_text(json.dumps(extra_vars))
        args += ["-e", "@%s" % (tmp_path / "extra.json")]
    inventories = []
    if host_vars:
        inventory = {"pmta_fleet": {"hosts": {h: {} for h in host_vars}, "vars": group_vars}}
        (tmp_path / "hosts.yml").write_text(json.dumps(inventory))
        (tmp_path / "host_vars").mkdir()
        for name, values in host_vars.items():
            (tmp_path / "host_vars" / ("%s.yml" % name)).write_text(json.dumps(values))
        inventories = [tmp_path]
    result = playbook(SITE, *args, inventories=inventories)
    output = result.stdout + result.stderr
    after = state(fleet)
    if after != before:  # leave the converged fleet to the next test, then fail
        playbook(SITE)
    assert result.returncode != 0, output[-5000:]
    flat = " ".join(output.split())
    for text in texts:
        assert text in flat, output[-5000:]
    assert after["dns"] == before["dns"]
    assert after["controller dkim keys"] == before["controller dkim keys"]
    for name in HOSTS:
        assert after["hosts"][name] == before["hosts"][name], name
    assert not (ephemeral() / "dkim-typo").exists()


# The host's own rule, without any controller-side check in front of it: pmta_config_install asked to hand
# system directories to pmta refuses the whole call, and no directory (not even the valid new one) changes.
HOST_SIDE = """
- name: Ask the host to hand system directories to pmta
  hosts: pmta_fleet
  become: true
  gather_facts: false
  tasks:
    - name: Create and chown the directories
      mailops.powermta.pmta_config_install:
        directories:
          - {path: /var/spool/pmta-new, owner: pmta, group: pmta, mode: "0750", variable: powermta_spool_dirs}
          - {path: /var/log, owner: pmta, group: pmta, mode: "0750", variable: powermta_log_file}
          - {path: /var/spool, owner: pmta, group: pmta, mode: "0750", variable: powermta_spool_dirs}
          - {path: /, owner: pmta, group: pmta, mode: "0750", variable: powermta_spool_dirs}
          - {path: /home, owner: pmta, group: pmta, mode: "0750", variable: powermta_spool_dirs}
"""


def test_the_host_refuses_system_directories_on_its_own(once, fleet, tmp_path):
    before = state(fleet)
    (tmp_path / "host-side.yml").write_text(HOST_SIDE)
    result = playbook(tmp_path / "host-side.yml")
    output = result.stdout + result.stderr
    after = state(fleet)
    assert result.returncode != 0, output[-4000:]
    flat = " ".join(output.split())
    for text in ("refused, nothing was changed", "powermta_log_file: /var/log is a system directory",
                 "powermta_spool_dirs: /var/spool is a system directory", "powermta_spool_dirs: / is a system"):
        assert text in flat, output[-4000:]
    assert flat.count("refused, nothing was changed") >= len(HOSTS), output[-4000:]
    assert after == before
    for name, target in fleet.items():
        assert not target.file("/var/spool/pmta-new").exists, name
