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

PACKAGE = "@PACKAGE@"  # replaced by a stand-in file of each run: only its existence is checked

FLEET_VARS = {
    "powermta_package_src": PACKAGE,
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
# A complete DNS connection (the dns role's server and TSIG key), for cases that break one part of it.
DNS_CONNECTION = {"dns_server": "192.0.2.53", "dns_key_name": "mailops-update",
                  "dns_key_secret": "c2VjcmV0LXNlY3JldC1zZWNyZXQ="}


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
    # ---- issue 20: domains we may answer for
    "bounce-domain-is-sending-domain": (item("powermta_domains", bounce_domain="example.com"),
                                        ["pmta1: powermta_domains item example.com: bounce_domain is the sending "
                                         "domain example.com itself", "powermta_apex_mx_domains"]),
    "bounce-domain-foreign": (item("powermta_domains", bounce_domain="bounces.example.net"),
                              ["pmta1: powermta_domains item example.com: bounce_domain is outside the fleet's "
                               "sending domains", "bounces.example.com"]),
    "fbl-address-on-sending-domain": (lambda d: fleet(d, powermta_fbl_address="fbl@example.com"),
                                      ["pmta1: powermta_fbl_address fbl@example.com is the sending domain "
                                       "example.com itself"]),
    "fbl-address-foreign": (lambda d: fleet(d, powermta_fbl_address="fbl@fbl.example.org"),
                            ["powermta_fbl_address fbl@fbl.example.org is outside the fleet's sending domains"]),
    "bounce-domains-list-foreign": (lambda d: fleet(d, powermta_bounce_domains=["bounces.example.org"]),
                                    ["pmta2: powermta_bounce_domains entry bounces.example.org is outside"]),
    "bounce-domains-list-apex": (lambda d: fleet(d, powermta_bounce_domains=["Example.com."]),
                                 ["powermta_bounce_domains entry Example.com. is the sending domain example.com"]),
    "bounce-domain-number": (item("powermta_domains", bounce_domain=2026),
                             ["powermta_domains item example.com: bounce_domain is the number 2026"]),
    "apex-mx-domains-string": (lambda d: fleet(d, powermta_apex_mx_domains="example.com"),
                               ["powermta_apex_mx_domains must be a list of sending domains"]),
    # ---- layers: one list at two inventory levels
    "injectors-in-group-and-host": (
        host("pmta1", powermta_injectors=[{"name": "other", "password": "a-long-password-2",
                                           "networks": ["198.51.100.64/28"]}]),
        ["pmta1: powermta_injectors is set in group pmta_fleet and in host pmta1", "powermta_host_injectors"]),
    "domains-in-group-and-host": (
        host("pmta2", powermta_domains=[{"name": "example.net", "dkim_selectors": ["s1"]}]),
        ["pmta2: powermta_domains is set in group pmta_fleet and in host pmta2", "powermta_host_domains"]),
    "vmtas-in-group-and-host": (
        lambda d: fleet(d, powermta_vmtas=[{"name": "tx-99", "ip": "203.0.113.99", "hostname": "mta99.example.com",
                                            "pool": "transactional"}]),
        ["pmta1: powermta_vmtas is set in group pmta_fleet and in host pmta1", "powermta_host_vmtas"]),
    "pools-in-group-and-host": (host("pmta1", powermta_pools=[{"name": "transactional"}, {"name": "marketing"}]),
                                ["pmta1: powermta_pools is set in group pmta_fleet and in host pmta1"]),
    "isp-policies-in-group-and-host": (
        lambda d: (fleet(d, powermta_isp_policies=[{"name": "example_isp", "domains": ["isp.example"]}]),
                   host("pmta2", powermta_isp_policies=[{"name": "other_isp", "domains": ["other.example"]}])(d)),
        ["pmta2: powermta_isp_policies is set in group pmta_fleet and in host pmta2"]),
    "sysctl-in-group-and-host": (
        lambda d: (fleet(d, host_tuning_sysctl=[{"name": "vm.swappiness", "value": 10}]),
                   host("pmta1", host_tuning_sysctl=[{"name": "vm.swappiness", "value": 1}])(d)),
        ["pmta1: host_tuning_sysctl is set in group pmta_fleet and in host pmta1", "host_tuning_host_sysctl"]),
    # ---- exposure
    "injector-network-everything": (item("powermta_injectors", networks=["0.0.0.0/0"]),
                                    ["powermta_injectors item mumara: network 0.0.0.0/0 is the whole Internet"]),
    "injector-network-everything-v6": (item("powermta_injectors", networks=["::/0"]),
                                       ["powermta_injectors item mumara: network ::/0 is the whole Internet"]),
    "injector-network-everything-allowed": (
        lambda d: (fleet(d, powermta_allow_wide_injector_networks=True),
                   item("powermta_injectors", networks=["0.0.0.0/0"])(d)),
        ["network 0.0.0.0/0 is the whole Internet", "refused even with powermta_allow_wide_injector_networks"]),
    "injector-network-slash-8": (item("powermta_injectors", networks=["198.0.0.0/8"]),
                                 ["pmta1: powermta_injectors item mumara: network 198.0.0.0/8 is wider than /16",
                                  "powermta_allow_wide_injector_networks: true"]),
    "injector-network-v6-slash-32": (item("powermta_injectors", networks=["2001:db8::/32"]),
                                     ["powermta_injectors item mumara: network 2001:db8::/32 is wider than /48"]),
    "injector-no-auth-wide": (item("powermta_injectors", auth=False, networks=["203.0.0.0/12"]),
                              ["network 203.0.0.0/12 is wider than /16"]),
    "relaying-source-wide": (
        lambda d: fleet(d, powermta_sources=[{"name": "203.0.0.0/8", "directives": {"always-allow-relaying": True}}]),
        ["pmta1: powermta_sources item 203.0.0.0/8: network 203.0.0.0/8 is wider than /16"]),
    "relaying-source-everything": (
        lambda d: fleet(d, powermta_sources=[{"name": "0/0", "directives": {"always-allow-relaying": "yes"}}]),
        ["powermta_sources item 0/0: network 0/0 is the whole Internet"]),
    "two-injectors-one-network": (
        lambda d: d["fleet"]["powermta_injectors"].append(
            {"name": "other", "password": "a-long-password-2", "networks": ["198.51.100.0/28"]}),
        ["pmta1: powermta_injectors items mumara and other: networks 198.51.100.0/28 and 198.51.100.0/28 overlap"]),
    "two-injectors-overlapping-networks": (
        lambda d: d["fleet"]["powermta_injectors"].append(
            {"name": "other", "password": "a-long-password-2", "networks": ["198.51.100.0/24"]}),
        ["powermta_injectors items mumara and other: networks 198.51.100.0/28 and 198.51.100.0/24 overlap"]),
    # ---- names
    "pool-named-like-vmta": (
        lambda d: (d["fleet"]["powermta_pools"].append({"name": "tx-01"}),
                   d["hosts"]["pmta2"]["powermta_vmtas"][0].update(pool="tx-01")),
        ["pmta1: the name tx-01 is used by powermta_vmtas and powermta_pools"]),
    "isp-group-named-like-pool": (
        lambda d: fleet(d, powermta_isp_policies=[{"name": "marketing", "domains": ["isp.example"]}]),
        ["the name marketing is used by powermta_pools and powermta_isp_policies"]),
    "isp-domains-with-space": (
        lambda d: fleet(d, powermta_isp_policies=[{"name": "apple", "domains": ["icloud.test me.test"]}]),
        ["powermta_isp_policies item apple: domains entry 'icloud.test me.test' is not one domain name"]),
    "isp-mx-pattern-star": (
        lambda d: fleet(d, powermta_isp_policies=[{"name": "gmail", "mx_patterns": ["*"]}]),
        ["powermta_isp_policies item gmail: mx_patterns entry '*' must be *.suffix"]),
    "isp-mx-pattern-no-dot": (
        lambda d: fleet(d, powermta_isp_policies=[{"name": "gmail", "mx_patterns": ["*google.test"]}]),
        ["powermta_isp_policies item gmail: mx_patterns entry '*google.test' must be *.suffix"]),
    "isp-domain-in-two-groups": (
        lambda d: fleet(d, powermta_isp_policies=[{"name": "isp_a", "domains": ["mail.example"]},
                                                  {"name": "isp_b", "domains": ["Mail.example"]}]),
        ["powermta_isp_policies item isp_b: domain mail.example is also in ISP group isp_a"]),
    "isp-domains-string": (
        lambda d: fleet(d, powermta_isp_policies=[{"name": "isp_a", "domains": "mail.example"}]),
        ["powermta_isp_policies item isp_a: domains must be a list"]),
    "listener-name-port-only": (lambda d: fleet(d, powermta_listeners=[{"name": "2525"}]),
                                ["powermta_listeners item 2525: the name must be IP:PORT"]),
    # ---- YAML types: numbers where strings are expected are refused, never converted
    "password-octal-number": (item("powermta_injectors", password=35184372088831),
                              ["pmta1: powermta_injectors item mumara: password is the number 35184372088831",
                               "quote it"]),
    "password-float": (item("powermta_injectors", password=1.5e+20),
                       ["powermta_injectors item mumara: password is the number 1.5e+20"]),
    "vmta-hostname-number": (vmta("pmta2", 0, hostname=12345),
                             ["pmta2: powermta_vmtas item tx-02: hostname is the number 12345"]),
    "vmta-pool-number": (
        lambda d: (d["fleet"]["powermta_pools"].append({"name": "2024"}),
                   d["hosts"]["pmta1"]["powermta_vmtas"][0].update(pool=2024)),
        ["pmta1: powermta_vmtas item tx-01: pool is the number 2024"]),
    "injector-username-number": (item("powermta_injectors", username=1234567),
                                 ["powermta_injectors item mumara: username is the number 1234567"]),
    "powermta-hostname-number": (lambda d: fleet(d, powermta_hostname=8080),
                                 ["pmta1: powermta_hostname is the number 8080"]),
    "license-number": (lambda d: fleet(d, powermta_license=123456789),
                       ["pmta1: powermta_license is the number 123456789"]),
    "dmarc-rua-number": (item("powermta_domains", dmarc_rua=42),
                         ["powermta_domains item example.com: dmarc_rua is the number 42"]),
    "default-vmta-number": (item("powermta_injectors", default_virtual_mta=10),
                            ["powermta_injectors item mumara: default_virtual_mta is the number 10"]),
    # ---- ports: listeners, the web monitor and the exporters
    "http-mgmt-port-smtp": (lambda d: fleet(d, powermta_http_mgmt_port=25),
                            ["pmta1: port 25 is used by powermta_listeners item 0/0:25 and "
                             "powermta_http_mgmt_port 25"]),
    "http-mgmt-port-submission": (lambda d: fleet(d, powermta_http_mgmt_port=587),
                                  ["port 587 is used by powermta_listeners item 0/0:587 and powermta_http_mgmt_port"]),
    "http-mgmt-port-node-exporter": (lambda d: fleet(d, powermta_http_mgmt_port=9100),
                                     ["pmta2: port 9100 is used by powermta_http_mgmt_port 9100 (the web monitor) "
                                      "and node_exporter"]),
    "listener-on-node-exporter-port": (lambda d: fleet(d, powermta_listeners=[{"name": "0/0:9100"}]),
                                       ["port 9100 is used by powermta_listeners item 0/0:9100 and node_exporter"]),
    "listener-on-http-mgmt-port": (host("pmta2", powermta_host_listeners=[{"name": "203.0.113.20:8080"}]),
                                   ["pmta2: port 8080 is used by powermta_listeners item 203.0.113.20:8080 and "
                                    "powermta_http_mgmt_port 8080"]),
    "http-mgmt-port-word": (lambda d: fleet(d, powermta_http_mgmt_port="eighty"),
                            ["powermta_http_mgmt_port must be a port number 0-65535, got 'eighty'"]),
    # ---- addresses a vMTA cannot send from
    "vmta-ip-loopback": (vmta("pmta1", 0, ip="127.0.0.5"),
                         ["pmta1: powermta_vmtas item tx-01: ip 127.0.0.5 is a loopback address"]),
    "vmta-ip-loopback-v6": (vmta("pmta1", 0, ip="::1"),
                            ["powermta_vmtas item tx-01: ip ::1 is a loopback address"]),
    "vmta-ip-multicast": (vmta("pmta2", 1, ip="224.0.0.5"),
                          ["pmta2: powermta_vmtas item mk-02: ip 224.0.0.5 is a multicast address"]),
    "vmta-ip-unspecified": (vmta("pmta2", 1, ip="0.0.0.0"),
                            ["powermta_vmtas item mk-02: ip 0.0.0.0 is the unspecified address"]),
    "vmta-ip-link-local": (vmta("pmta2", 1, ip="169.254.10.1"),
                           ["powermta_vmtas item mk-02: ip 169.254.10.1 is a link-local address"]),
    # ---- later roles' checks, at preflight, named by the inventory variable
    "dns-ttl-negative": (lambda d: fleet(d, dns_ttl=-300),
                         ["pmta1: dns_ttl must be a number of seconds 0..2147483647 (e.g. 3600), got -300"]),
    "dns-ttl-too-big": (lambda d: fleet(d, dns_ttl=2147483648), ["dns_ttl must be a number of seconds"]),
    "dns-ttl-word": (lambda d: fleet(d, dns_ttl="an hour"), ["pmta1: dns_ttl must be a number of seconds"]),
    "warmup-schedule-decreasing": (lambda d: fleet(d, warmup_schedule={"default": [500, 200]}),
                                   ["pmta1: warmup_schedule[default] must increase strictly"]),
    "warmup-schedule-empty-stage": (lambda d: fleet(d, warmup_schedule={"gmail": []}),
                                    ["warmup_schedule[gmail] must be a non-empty list of positive integers"]),
    "warmup-schedule-list": (lambda d: fleet(d, warmup_schedule=[200, 500]),
                             ["pmta1: warmup_schedule must be a dict"]),
    "warmup-thresholds-unknown": (lambda d: fleet(d, warmup_thresholds={"bounce_rate": 0.1}),
                                  ["pmta1: warmup_thresholds.bounce_rate is not a known threshold"]),
    "dkim-key-dir-relative": (lambda d: fleet(d, powermta_dkim_key_dir="etc/pmta/dkim"),
                              ["pmta1: powermta_dkim_key_dir must be an absolute path", "'etc/pmta/dkim'"]),
    "dkim-controller-dir-relative": (lambda d: fleet(d, powermta_dkim_controller_dir="dkim"),
                                     ["pmta1: powermta_dkim_controller_dir must be an absolute path"]),
    # ---- every role's argument spec, one line per problem (no spec dump)
    "vmta-key-typo": (vmta("pmta1", 0, hostnme="mta10.example.com"),
                      ["pmta1: powermta_vmtas item tx-01: unknown key(s) hostnme: check the spelling"]),
    "domain-dmarc-pct-unknown": (item("powermta_domains", dmarc_pct=150),
                                 ["powermta_domains item example.com: unknown key(s) dmarc_pct"]),
    "dmarc-subdomain-policy-choice": (item("powermta_domains", dmarc_subdomain_policy="block"),
                                      ["powermta_domains item example.com: value of dmarc_subdomain_policy must be "
                                       "one of: none, quarantine, reject"]),
    "injector-key-typo": (item("powermta_injectors", pasword="a-long-password-1"),
                          ["powermta_injectors item mumara: unknown key(s) pasword"]),
    "run-as-root-word": (lambda d: fleet(d, powermta_run_as_root="sometimes"),
                         ["pmta1: powermta_run_as_root:", "(role powermta)"]),
    "bounce-domains-string": (lambda d: fleet(d, powermta_bounce_domains={"name": "bounces.example.com"}),
                              ["pmta1: powermta_bounce_domains:", "list", "(role powermta)"]),
    "fbl-enabled-without-address": (lambda d: fleet(d, powermta_fbl_enabled=True),
                                    ["pmta1: powermta_fbl_enabled needs powermta_fbl_address"]),
    "fbl-address-not-an-address": (lambda d: fleet(d, powermta_fbl_address="fbl.example.com"),
                                   ["pmta1: powermta_fbl_address must be one e-mail address"]),
    "dkim-key-bits-word": (lambda d: fleet(d, powermta_dkim_key_bits="big"),
                           ["pmta1: powermta_dkim_key_bits must be an integer, got 'big'"]),
    # ---- Ownership (issue 20, "we touch only what we own"; plugins/module_utils/_pmta_host/ownership.py): a
    # directory the powermta role would create and chown must be one of the collection's own, never a system or
    # home directory.
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
    # ---- found only by rendering each host's whole config and linting it (the role's templates and linter),
    # named by the variable and item that rendered the line
    "extra-config-unknown-directive": (
        lambda d: fleet(d, powermta_extra_config="smtp-listener 0/0:2525\nbogus-directive 5\n"),
        ["pmta1: powermta_extra_config line 2: 'bogus-directive 5': unknown directive bogus-directive"
         " [unknown-directive] (fix: remove it;", "rendered /etc/pmta/conf.d/local.conf line 4)",
         "pmta2: powermta_extra_config line 2"]),
    "vmta-directive-wrong-block": (
        vmta("pmta1", 0, directives={"max-msg-rate": "fast"}),
        ["pmta1: powermta_vmtas item tx-01: 'max-msg-rate fast': max-msg-rate is not allowed in <virtual-mta>"
         " [wrong-scope] (fix: max-msg-rate belongs in <domain>"]),
    "vmta-domain-directive-not-a-number": (
        vmta("pmta2", 1, domains=[{"name": "gmail.com", "directives": {"max-smtp-out": "many"}}]),
        ["pmta2: powermta_vmtas item mk-02, <domain gmail.com>: 'max-smtp-out many': max-smtp-out: invalid"
         " number 'many' [bad-value] (fix: use a whole number"]),
    "domain-defaults-interval-word": (
        lambda d: fleet(d, powermta_domain_defaults={"retry-after": "soon"}),
        ["pmta1: powermta_domain_defaults: 'retry-after soon': retry-after: invalid time interval 'soon'",
         "(fix: use a comma list of a TIME-INTERVAL"]),
    "pool-directive-wrong-block": (
        item("powermta_pools", directives={"max-msg-rate": "quick"}),
        ["pmta2: powermta_pools item transactional: 'max-msg-rate quick': max-msg-rate is not allowed in"
         " <virtual-mta-pool>"]),
    "listener-directive-wrong-block": (
        lambda d: fleet(d, powermta_listeners=[{"name": "0/0:25", "directives": {"max-message-size": "huge"}}]),
        ["pmta1: powermta_listeners item 0/0:25: 'max-message-size huge': max-message-size is not allowed in"
         " <smtp-listener> [wrong-scope] (fix: max-message-size belongs in <source>"]),
    # ---- what the later roles' own checks refuse (their preflight asserts), refused here first
    "dkim-fleet-checked-in-inventory": (lambda d: fleet(d, powermta_dkim_fleet_checked=True),
                                        ["pmta1: powermta_dkim_fleet_checked is set by the run, not the inventory"]),
    "planning-in-inventory": (lambda d: fleet(d, mailops_planning=True),
                              ["pmta1: mailops_planning is set by the run, not the inventory"]),
    "package-file-missing": (lambda d: fleet(d, powermta_package_src="files/PowerMTA-5.0r8.deb"),
                             ["pmta1: powermta_package_src files/PowerMTA-5.0r8.deb is not a file on the controller",
                              "{{ inventory_dir }}/files/PowerMTA-5.0r8.deb"]),
    "license-file-missing": (lambda d: (d["fleet"].pop("powermta_license"),
                                        fleet(d, powermta_license_src="/nonexistent/pmta-license")),
                             ["pmta1: powermta_license_src /nonexistent/pmta-license is not a file on the controller"]),
    "package-rpm": (lambda d: fleet(d, powermta_package_src="files/PowerMTA-5.0r8.rpm"),
                    ["pmta1: powermta_package_src files/PowerMTA-5.0r8.rpm is not a .deb: the hosts run Debian 12"]),
    "dns-server-without-key": (lambda d: fleet(d, dns_server="192.0.2.53"),
                               ["pmta1: dns_server set but dns_key_name and dns_key_secret empty or missing"]),
    "dns-key-secret-empty": (lambda d: fleet(d, **{**DNS_CONNECTION, "dns_key_secret": ""}),
                             ["pmta1: dns_server and dns_key_name set but dns_key_secret empty or missing"]),
    "dns-key-algorithm-unknown": (lambda d: fleet(d, **dict(DNS_CONNECTION, dns_key_algorithm="hmac-sha999")),
                                  ["pmta1: dns_key_algorithm: value of dns_key_algorithm must be one of: hmac-md5,",
                                   "(role dns)"]),
    "warmup-isps-empty": (lambda d: fleet(d, warmup_isps=[]),
                          ["pmta1: warmup_isps must be a non-empty list of ISP group names"]),
    "warmup-isps-not-a-group-name": (lambda d: fleet(d, warmup_isps=["gmail", "Yahoo.com"]),
                                     ["pmta1: warmup_isps entries 'Yahoo.com' are not ISP group names"]),
    "warmup-acct-paths-empty": (lambda d: fleet(d, warmup_acct_paths=[]),
                                ["pmta1: warmup_acct_paths must be a non-empty list of accounting file paths"]),
    "monitoring-status-url-not-loopback": (
        lambda d: fleet(d, monitoring_status_url="http://203.0.113.10:8080/status?format=json"),
        ["pmta1: monitoring_status_url must be an http(s) URL on loopback"]),
    "monitoring-status-url-other-port": (
        lambda d: fleet(d, monitoring_status_url="http://127.0.0.1:9090/status?format=json"),
        ["pmta1: monitoring_status_url http://127.0.0.1:9090/status?format=json reads port 9090 but PowerMTA's web"
         " monitor listens on powermta_http_mgmt_port 8080"]),
    "monitoring-interval-too-short": (lambda d: fleet(d, monitoring_collector_interval=5),
                                      ["pmta1: monitoring_collector_interval must be at least 10 seconds, got 5"]),
    "http-mgmt-port-on-node-exporter": (lambda d: fleet(d, powermta_http_mgmt_port=9100),
                                        ["pmta1: port 9100 is used by powermta_http_mgmt_port 9100 (the web monitor)"
                                         " and node_exporter"]),
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
    if data["fleet"].get("powermta_package_src") == PACKAGE:
        data["fleet"]["powermta_package_src"] = str(tmp_root / "PowerMTA-5.0r8.deb")
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
    (root / "PowerMTA-5.0r8.deb").write_text("not a package: preflight only checks that the file exists\n")
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


def test_at_least_ninety_single_mistake_cases():
    assert len(CASES) >= 90


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
