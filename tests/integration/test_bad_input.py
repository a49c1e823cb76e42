"""Bad input is refused by the fleet preflight before any host is contacted (issue 16).

Each case is a valid two-host inventory with ONE mistake. playbooks/preflight.yml runs with the real
ansible-playbook; every case must fail in the fleet model task, with a message naming the variable (and the
host where there is one), with no task changing anything and no host contacted: the hosts' SSH executable is
a script that records any call, and the test asserts it was never called. The cases run in parallel.
"""

import copy
import os
import stat
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
PLAYBOOK = ROOT / "playbooks" / "preflight.yml"
ANSIBLE_PLAYBOOK = ROOT / ".venv" / "bin" / "ansible-playbook"
MODEL_TASK = "TASK [Build and check the fleet model]"

FLEET_VARS = {
    "powermta_package_src": "files/PowerMTA-5.0r8.deb",
    "powermta_license": "LICENSE TEXT",
    "powermta_dkim_key_source": "controller",
    "powermta_dkim_controller_dir": "/srv/dkim",
    "powermta_domains": [{"name": "example.com", "dkim_selectors": ["s2026a"], "dmarc_policy": "none",
                          "dmarc_rua": "mailto:dmarc-reports@example.com"}],
    "powermta_pools": [{"name": "transactional", "traffic": "transactional"},
                       {"name": "marketing", "traffic": "marketing"}],
    "powermta_injectors": [{"name": "mumara", "password": "a-long-password-1", "networks": ["198.51.100.0/28"]}],
}
HOST_VARS = {
    "pmta1": {"powermta_vmtas": [
        {"name": "tx-01", "ip": "203.0.113.10", "hostname": "mta10.example.com", "pool": "transactional"},
        {"name": "mk-01", "ip": "203.0.113.11", "hostname": "mta11.example.com", "pool": "marketing", "warmup": True},
    ]},
    "pmta2": {"powermta_vmtas": [
        {"name": "tx-02", "ip": "203.0.113.20", "hostname": "mta20.example.com", "pool": "transactional"},
        {"name": "mk-02", "ip": "203.0.113.21", "hostname": "mta21.example.com", "pool": "marketing"},
    ]},
}


def fleet(data, **changes):
    data["fleet"].update(changes)


def host(name, **changes):
    def change(data):
        data["hosts"][name].update(changes)
    return change


def vmta(host_name, index, **changes):
    def change(data):
        data["hosts"][host_name]["powermta_vmtas"][index].update(changes)
    return change


def item(variable, index=0, **changes):
    def change(data):
        data["fleet"][variable][index].update(changes)
    return change


def drop(variable):
    def change(data):
        data["fleet"].pop(variable)
    return change


# id -> (change, texts the message must hold: the variable, the host or item, the fix)
CASES = {
    "injector-networks-string": (item("powermta_injectors", networks="198.51.100.7"),
                                 ["pmta1: powermta_injectors item mumara: networks must be a list"]),
    "dkim-selectors-string": (item("powermta_domains", dkim_selectors="s2026a"),
                              ["powermta_domains item example.com: dkim_selectors must be a list"]),
    "duplicate-vmta-in-one-list": (
        lambda d: d["hosts"]["pmta1"]["powermta_vmtas"].append(
            {"name": "tx-01", "ip": "203.0.113.12", "hostname": "mta12.example.com", "pool": "transactional"}),
        ["pmta1: powermta_vmtas names tx-01 twice"]),
    "domain-case-and-dot-duplicate": (
        lambda d: d["fleet"]["powermta_domains"].append({"name": "Example.COM.", "dkim_selectors": ["s2026b"]}),
        ["powermta_domains names example.com twice"]),
    "dkim-selector-with-space": (item("powermta_domains", dkim_selectors=["s 2026"]),
                                 ["powermta_domains item example.com: DKIM selector 's 2026'"]),
    "dmarc-policy-block": (item("powermta_domains", dmarc_policy="block"),
                           ["powermta_domains item example.com: dmarc_policy must be one of none, quarantine, reject"]),
    "dmarc-rua-without-mailto": (item("powermta_domains", dmarc_rua="dmarc@example.com"),
                                 ["powermta_domains item example.com: dmarc_rua must be mailto:"]),
    "dkim-key-bits-odd": (item("powermta_domains", dkim_key_bits=1000),
                          ["powermta_domains item example.com: dkim_key_bits must be one of"]),
    "domain-name-invalid": (item("powermta_domains", name="exa mple.com"),
                            ["powermta_domains item exa mple.com", "is not a domain name"]),
    "domain-without-selector": (item("powermta_domains", dkim_selectors=[]),
                                ["pmta1: domain example.com has no dkim_selectors", "powermta_dkim_sign"]),
    "shared-selector-host-keys": (lambda d: fleet(d, powermta_dkim_key_source="host"),
                                  ["DKIM selector s2026a of example.com", "powermta_dkim_key_source: controller"]),
    "dkim-key-source-unknown": (lambda d: fleet(d, powermta_dkim_key_source="cloud"),
                                ["pmta1: powermta_dkim_key_source must be host or controller"]),
    "sysctl-negative": (host("pmta1", host_tuning_host_sysctl=[{"name": "vm.swappiness", "value": -5}]),
                        ["pmta1: host_tuning_host_sysctl: vm.swappiness = -5 is out of range"]),
    "sysctl-huge": (lambda d: fleet(d, host_tuning_sysctl=[{"name": "net.core.somaxconn", "value": 99999999999}]),
                    ["pmta1: host_tuning_sysctl: net.core.somaxconn = 99999999999 is out of range"]),
    "sysctl-not-integer": (lambda d: fleet(d, host_tuning_sysctl=[{"name": "net.core.somaxconn", "value": "many"}]),
                           ["host_tuning_sysctl: net.core.somaxconn = 'many' is not an integer"]),
    "pool-without-members": (
        lambda d: d["fleet"]["powermta_pools"].append({"name": "marketing-eu"}),
        ["pool marketing-eu has no vMTA on any host", "powermta_pools"]),
    "pool-name-not-ascii": (
        lambda d: (d["fleet"]["powermta_pools"].append({"name": "märketing"}),
                   d["hosts"]["pmta2"]["powermta_vmtas"][1].update(pool="märketing")),
        ["powermta_pools item märketing: the name must be ASCII"]),
    "http-port-too-big": (lambda d: fleet(d, powermta_http_mgmt_port=80800),
                          ["pmta1: powermta_http_mgmt_port must be a port number 0-65535, got 80800"]),
    "http-access-level": (lambda d: fleet(d, powermta_http_access=[{"name": "127.0.0.1", "level": "root"}]),
                          ["powermta_http_access item", "level must be one of"]),
    "spool-dirs-string": (lambda d: fleet(d, powermta_spool_dirs="/var/spool/pmta"),
                          ["pmta1: powermta_spool_dirs must be a non-empty list of absolute paths"]),
    "spool-dirs-relative": (lambda d: fleet(d, powermta_spool_dirs=["spool"]),
                            ["pmta1: powermta_spool_dirs must hold absolute paths"]),
    "lint-fail-on": (lambda d: fleet(d, powermta_lint_fail_on="fatal"),
                     ["powermta_lint_fail_on must be error or warning"]),
    "ip-on-two-hosts": (vmta("pmta2", 0, ip="203.0.113.10"),
                        ["IP 203.0.113.10 is used by pmta1/tx-01, pmta2/tx-02", "powermta_vmtas"]),
    "ip-twice-on-one-host": (vmta("pmta1", 1, ip="203.0.113.10"),
                             ["pmta1: powermta_vmtas item mk-01: several vMTAs use the same IP 203.0.113.10"]),
    "ip-invalid": (vmta("pmta1", 0, ip="203.0.113.300"),
                   ["pmta1: powermta_vmtas item tx-01: ip '203.0.113.300' is not an IP address"]),
    "ip-missing": (lambda d: d["hosts"]["pmta1"]["powermta_vmtas"][0].pop("ip"),
                   ["pmta1: powermta_vmtas item tx-01: ip is missing"]),
    "hostname-not-fqdn": (vmta("pmta1", 0, hostname="mta10"),
                          ["pmta1: powermta_vmtas item tx-01: hostname must be a fully qualified host name"]),
    "vmta-name-space": (vmta("pmta1", 0, name="tx 01"),
                        ["pmta1: powermta_vmtas item tx 01: the name may hold letters, digits"]),
    "vmta-unknown-pool": (vmta("pmta2", 1, pool="marketing-apac"),
                          ["pmta2: vMTA mk-02 is in pool 'marketing-apac'", "powermta_pools"]),
    "vmta-warmup-not-bool": (vmta("pmta1", 1, warmup="maybe"),
                             ["pmta1: powermta_vmtas item mk-01: warmup must be true or false"]),
    "vmta-directive-upper-case": (vmta("pmta1", 0, directives={"Max-Smtp-Out": 5}),
                                  ["powermta_vmtas item tx-01: directive Max-Smtp-Out cannot be written"]),
    "vmtas-not-a-list": (host("pmta1", powermta_vmtas="tx-01"),
                         ["pmta1: powermta_vmtas must be a list of dicts with a name"]),
    "item-state-unknown": (vmta("pmta1", 0, state="gone"),
                           ["pmta1: powermta_vmtas item 'tx-01': state must be 'present' or 'absent'"]),
    "no-license": (drop("powermta_license"), ["pmta1: no PowerMTA license", "powermta_license_src"]),
    "no-package": (drop("powermta_package_src"), ["pmta1: no PowerMTA package", "powermta_package_name"]),
    "two-packages": (lambda d: fleet(d, powermta_package_name="pmta"),
                     ["set only one of powermta_package_src and powermta_package_name"]),
    "injector-short-password": (item("powermta_injectors", password="short"),
                                ["powermta_injectors item mumara: password must have 12+ characters"]),
    "injector-password-undefined": (item("powermta_injectors", password="{{ vault_mumara_smtp_password }}"),
                                    ["pmta1: powermta_injectors cannot be read", "vault_mumara_smtp_password"]),
    "injector-default-vmta-unknown": (item("powermta_injectors", default_virtual_mta="nowhere"),
                                      ["powermta_injectors item mumara: default_virtual_mta nowhere"]),
    "auth-without-starttls": (lambda d: fleet(d, powermta_listeners=[{"name": "0/0:25", "starttls": False},
                                                                     {"name": "0/0:587", "starttls": False}]),
                              ["passwords would cross the network in clear", "powermta_allow_unencrypted_auth"]),
    "isp-policy-name": (lambda d: fleet(d, powermta_isp_policies=[{"name": "Gmail-X", "domains": ["gmail.com"]}]),
                        ["powermta_isp_policies item Gmail-X: the name becomes a domain-macro"]),
    "isp-policy-empty": (lambda d: fleet(d, powermta_isp_policies=[{"name": "example_isp"}]),
                         ["powermta_isp_policies item example_isp: needs domains or mx_patterns"]),
    "reply-regex-hash": (lambda d: fleet(d, powermta_generic_reply_patterns=[{"regex": "rate #1", "action": "x"}]),
                         ["powermta_generic_reply_patterns: reply regex rate #1 may not hold #"]),
    "acct-records-unknown": (lambda d: fleet(d, powermta_acct_files=[{"name": "/var/log/pmta/x.csv",
                                                                     "records": ["x"]}]),
                             ["powermta_acct_files item /var/log/pmta/x.csv: records ['x'] unknown"]),
    # ---- Ownership (issue 20, "we touch only what we own"; plugins/module_utils/_ownership.py): a directory the
    # powermta role would create and chown must be one of the collection's own, never a system or home directory.
    "log-file-in-var-log": (lambda d: fleet(d, powermta_log_file="/var/log/pmta.log"),
                            ["pmta1: powermta_log_file (the directory of /var/log/pmta.log): /var/log is a system"
                             " directory", "such as /var/log/pmta/log"]),
    "log-file-relative": (lambda d: fleet(d, powermta_log_file="pmta.log"),
                          ["pmta1: powermta_log_file: pmta.log is relative; give an absolute path"]),
    "spool-dir-root": (lambda d: fleet(d, powermta_spool_dirs=["/"]),
                       ["pmta1: powermta_spool_dirs[0]: / is a system directory", "such as /var/spool/pmta"]),
    "spool-dir-var-spool": (host("pmta2", powermta_spool_dirs=["/var/spool/pmta", "/var/spool"]),
                            ["pmta2: powermta_spool_dirs[1]: /var/spool is a system directory",
                             "its owner and mode stay as they are"]),
    "spool-dir-in-home": (host("pmta2", powermta_spool_dirs=["/home/pmta/spool"]),
                          ["pmta2: powermta_spool_dirs[0]: /home/pmta/spool is in /home, which the collection never"
                           " creates or chowns"]),
    "spool-dir-unnormalized": (lambda d: fleet(d, powermta_spool_dirs=["/var/spool/pmta/"]),
                               ["pmta1: powermta_spool_dirs[0]: write /var/spool/pmta/ as /var/spool/pmta"]),
    "dkim-key-dir-etc": (lambda d: fleet(d, powermta_dkim_key_dir="/etc"),
                         ["pmta1: powermta_dkim_key_dir: /etc is a system directory", "such as /etc/pmta/dkim"]),
    "acct-file-in-var-log": (lambda d: fleet(d, powermta_acct_files=[{"name": "/var/log/acct.csv",
                                                                      "records": ["d", "b"]}]),
                             ["pmta1: powermta_acct_files item /var/log/acct.csv (its directory): /var/log is a"
                              " system directory"]),
}


def write_inventory(directory, data, ssh_log):
    fake_ssh = directory / "fake-ssh"
    fake_ssh.write_text("#!/bin/sh\necho \"$@\" >> %s\nexit 255\n" % ssh_log)
    fake_ssh.chmod(fake_ssh.stat().st_mode | stat.S_IXUSR)
    hosts = {}
    for index, (name, host_vars) in enumerate(sorted(data["hosts"].items())):
        hosts[name] = dict(host_vars, ansible_host="192.0.2.%d" % (11 + index), ansible_connection="ssh",
                           ansible_ssh_executable=str(fake_ssh))
    inventory = {"pmta_fleet": {"hosts": hosts, "vars": data["fleet"]}}
    path = directory / "hosts.yml"
    path.write_text(yaml.safe_dump(inventory, allow_unicode=True))
    return path


def run_case(tmp_root, case_id, change):
    directory = tmp_root / case_id
    directory.mkdir()
    data = {"fleet": copy.deepcopy(FLEET_VARS), "hosts": copy.deepcopy(HOST_VARS)}
    if change is not None:
        change(data)
    ssh_log = directory / "ssh-calls.log"
    inventory = write_inventory(directory, data, ssh_log)
    env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), ANSIBLE_NOCOLOR="1")
    completed = subprocess.run(
        [str(ANSIBLE_PLAYBOOK), "-i", str(inventory), str(PLAYBOOK)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False,
    )
    return completed, ssh_log.exists()


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    if not ANSIBLE_PLAYBOOK.exists():
        pytest.skip("needs the project venv (make install)")
    root = tmp_path_factory.mktemp("bad-input")
    jobs = dict(CASES, valid=(None, []))
    with ThreadPoolExecutor(max_workers=4) as pool:
        futures = {case_id: pool.submit(run_case, root, case_id, change)
                   for case_id, (change, _message) in jobs.items()}
        return {case_id: future.result() for case_id, future in futures.items()}


def recap_changed(output):
    return sum(int(part.split("=")[1]) for part in output.split() if part.startswith("changed="))


def test_the_valid_inventory_passes_without_contacting_a_host(results):
    completed, contacted = results["valid"]
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-2000:]
    assert "Fleet model consistent: 2 host(s), 4 IP(s), 1 domain(s)" in completed.stdout
    assert not contacted


def test_at_least_thirty_single_mistake_cases():
    assert len(CASES) >= 30


@pytest.mark.parametrize("case_id", sorted(CASES))
def test_mistake_is_refused_by_the_fleet_model_naming_the_variable(results, case_id):
    completed, contacted = results[case_id]
    output = completed.stdout + completed.stderr
    assert completed.returncode != 0, output[-3000:]
    assert not contacted, "a host was contacted before the preflight refused the inventory"
    assert recap_changed(completed.stdout) == 0
    # The failing task is the fleet model, the first task of the run.
    before_failure = completed.stdout.split("fatal:")[0]
    assert before_failure.count("TASK [") == 1 and MODEL_TASK in before_failure, output[-3000:]
    flat = " ".join(output.split())  # Ansible wraps long messages
    for text in CASES[case_id][1]:
        assert " ".join(text.split()) in flat, output[-3000:]
