"""Rendered warm-up config checked against the PowerMTA v5.0 User's Guide rules.

The fragments are placed in a config built the way the powermta role's vmtas.conf.j2 builds it
(a warming vMTA beside warm ones is not a pool member; every fragment is included inside its
<virtual-mta>), parsed, and checked rule by rule; the collection's linter must also accept it.
"""

import re

import pytest
from ansible_collections.mailops.powermta.plugins.module_utils._pmta_config.lint import lint_path, lint_text
from ansible_collections.mailops.powermta.plugins.module_utils._pmta_config.parser import parse_path
from ansible_collections.mailops.powermta.plugins.module_utils._warmup.engine import plan
from ansible_collections.mailops.powermta.plugins.module_utils._warmup.render import (
    WarmupRenderError,
    assign,
    is_warming,
    render,
)

ISPS = ["gmail", "yahoo", "microsoft", "other"]
T0 = "2026-05-01T06:00:00Z"
RATE = re.compile(r"^([1-9][0-9]*)/([1-9][0-9]*)?(d|day|h|hr|m|min|s|sec)$")  # §3.3.10.33: N non-zero
COLD_LIMITS = re.compile(r"^[0-9]+/(d|day)(,[0-9]+/(d|day))*$")  # §3.3.10.48: N/{d|day} list

FLEET = [
    {"name": "tx-01", "ip": "192.0.2.10", "pool": "transactional"},
    {"name": "mk-00", "ip": "192.0.2.20", "pool": "marketing"},
    {"name": "mk-01", "ip": "192.0.2.21", "pool": "marketing", "warmup": True},
    {"name": "mk-02", "ip": "192.0.2.22", "pool": "marketing", "warmup": "yes"},
    {"name": "mk-09", "ip": "192.0.2.29", "pool": "marketing"},
    {"name": "nf-01", "ip": "198.51.100.1", "pool": "fresh", "warmup": True},
    {"name": "nf-02", "ip": "198.51.100.2", "pool": "fresh", "warmup": True},
    {"name": "solo", "ip": "198.51.100.9", "warmup": True},
]


def warming_ips(vmtas):
    return [v["ip"] for v in vmtas if is_warming(v)]


def planned(vmtas, state=None, observations=None, blocklisted=None, now=T0, schedule=None):
    return plan(state or {}, observations or {}, blocklisted or {}, now, ips=warming_ips(vmtas), isps=ISPS,
                schedule=schedule or {"default": [200, 500, 1000, 2000, 5000]})


def build_config(tmp_path, vmtas, files):
    """A whole config as the powermta role lays it out, with the rendered fragments included."""
    conf_d = tmp_path / "etc" / "pmta" / "conf.d" / "warmup.d"
    conf_d.mkdir(parents=True)
    by_name = {f["vmta"]: f for f in files}
    for name, item in by_name.items():
        (conf_d / ("%s.conf" % name)).write_text(item["content"])
    warm_pools = {v["pool"] for v in vmtas if v.get("pool") and not is_warming(v)}
    lines = ["postmaster postmaster@example.com", "host-name mta.example.com", "log-file /var/log/pmta/log",
             "run-as-root no", "http-mgmt-port 0", "spool /var/spool/pmta",
             "domain-macro gmail gmail.com,googlemail.com,gmail.rollup", "domain-macro yahoo yahoo.com,aol.com",
             "domain-macro microsoft outlook.com,hotmail.com", "",
             "<source 127.0.0.1>", "    always-allow-relaying yes", "    process-x-virtual-mta yes", "</source>"]
    for vmta in vmtas:
        lines += ["<virtual-mta %s>" % vmta["name"],
                  "    smtp-source-host %s %s.example.com" % (vmta["ip"], vmta["name"])]
        if vmta["name"] in by_name:
            lines.append("    include %s/%s.conf" % (conf_d, vmta["name"]))
        lines.append("</virtual-mta>")
    for pool in sorted({v["pool"] for v in vmtas if v.get("pool")}):
        members = [v["name"] for v in vmtas if v.get("pool") == pool
                   and not (pool in warm_pools and is_warming(v))]
        lines += ["<virtual-mta-pool %s>" % pool] + ["    virtual-mta %s" % m for m in members]
        lines.append("</virtual-mta-pool>")
    config = tmp_path / "etc" / "pmta" / "config"
    config.write_text("\n".join(lines) + "\n")
    return config


def vmta_blocks(root):
    return {b.arg: b for b in root.blocks("virtual-mta")}


def pools(root):
    return {b.arg: [d.value.strip() for d in b.directives("virtual-mta")] for b in root.blocks("virtual-mta-pool")}


def domain_values(block, name):
    """``{domain pattern: value}`` of directive ``name`` in the <domain> blocks of a vMTA."""
    return {d.arg: v.value.strip() for d in block.blocks("domain") for v in d.directives(name)}


def check_guide_rules(root):
    """The rules of §10.7, §3.3.12.4, §3.3.10.48, §3.3.10.49, §3.3.13 and §3.3.10.33 on a parsed config."""
    vmtas, pool_members = vmta_blocks(root), pools(root)
    colds = {}
    for name, block in vmtas.items():
        for directive in block.directives("cold-virtual-mta"):
            cold = directive.value.strip()
            # §3.3.12.4: the name of a manually configured VirtualMTA (not a pool, not itself)
            assert cold in vmtas and cold not in pool_members and cold != name, (name, cold)
            colds.setdefault(cold, []).append(name)
        cold_limits = domain_values(block, "max-cold-virtual-mta-msg")
        for value in cold_limits.values():
            assert COLD_LIMITS.match(value), value
        # §10.7: without cold-virtual-mta there is no re-selection; a non-zero limit would be a silent no-op
        if not block.directives("cold-virtual-mta"):
            assert all(set(re.findall(r"(\d+)/", v)) <= {"0"} for v in cold_limits.values()), name
        for directive in block.directives("max-smtp-msg-rate"):
            assert RATE.match(directive.value.strip()), directive.value
        for value in domain_values(block, "max-msg-rate").values():
            assert RATE.match(value), value
        for value in domain_values(block, "reroute-to-virtual-mta").values():
            # §3.3.10.49: a vMTA, not a pool; a reroute to itself is ignored
            assert value in vmtas and value not in pool_members and value != name, (name, value)
    # §3.3.13: a pool hands every member its round-robin share, so a cold vMTA must not be a member of its
    # sponsor's pool (its share would wait in its queue behind its rate limit)
    for cold, sponsors in colds.items():
        for members in pool_members.values():
            if any(s in members for s in sponsors):
                assert cold not in members, (cold, members)
    return colds


def test_assignment_cold_where_a_warm_ip_exists_capped_otherwise():
    modes, sponsored = assign(FLEET)
    assert modes == {"mk-01": ("cold", "mk-00"), "mk-02": ("cold", "mk-09"), "nf-01": ("capped", None),
                     "nf-02": ("capped", None), "solo": ("capped", None)}
    assert sponsored == {"mk-00": ["mk-01"], "mk-09": ["mk-02"]}


def test_rendered_fleet_follows_the_guide_and_the_linter_accepts_it(tmp_path):
    result = planned(FLEET)
    files = render(FLEET, result["decisions"], ISPS, result["state"]["updated_at"])
    assert [(f["vmta"], f["kind"], f["mode"]) for f in files] == [
        ("mk-00", "sponsor", "cold"), ("mk-01", "warming", "cold"), ("mk-02", "warming", "cold"),
        ("mk-09", "sponsor", "cold"), ("nf-01", "warming", "capped"), ("nf-02", "warming", "capped"),
        ("solo", "warming", "capped")]
    config = build_config(tmp_path, FLEET, files)
    root = parse_path(str(config), include_root="/")
    assert not [f for f in root.findings if f.severity == "error"]
    assert files[0]["path"] == "etc/pmta/conf.d/warmup.d/mk-00.conf"
    assert files[0]["install"] == {"path": "etc/pmta/conf.d/warmup.d/mk-00.conf", "secret": False, "restart": False}
    colds = check_guide_rules(root)
    assert colds == {"mk-01": ["mk-00"], "mk-02": ["mk-09"]}
    vmtas = vmta_blocks(root)
    assert domain_values(vmtas["mk-00"], "max-cold-virtual-mta-msg") == {
        "$gmail": "200/day", "$yahoo": "200/day", "$microsoft": "200/day", "*": "200/day"}
    assert pools(root)["marketing"] == ["mk-00", "mk-09"]
    assert pools(root)["fresh"] == ["nf-01", "nf-02"]
    lint = lint_path(str(config), include_root="/")
    assert not lint.errors, [f.format() for f in lint.errors]
    # each fragment alone, as the role lints it before copying: it sits inside <virtual-mta>
    for item in files:
        alone = lint_text(item["content"], "/etc/pmta/conf.d/warmup.d/%s.conf" % item["vmta"], scope="virtual-mta")
        assert not alone.errors, [f.format() for f in alone.errors]
        assert lint_text(item["content"], fragment=True).errors or item["mode"] == "cold" and item["kind"] == "warming"


def test_capped_vmtas_get_a_total_that_covers_the_long_tail():
    result = planned(FLEET)
    files = {f["vmta"]: f["content"] for f in render(FLEET, result["decisions"], ISPS, T0)}
    # 4 groups at stage 1 (200/d): the whole IP may send 800 a day, however many tail domains there are
    assert re.search(r"^max-smtp-msg-rate 800/d$", files["nf-01"], re.M)
    assert re.search(r"^<domain \*>\n    max-msg-rate 200/d\n</domain>$", files["nf-01"], re.M)
    # cold vMTAs get their mail from the sponsor only; no total that would leave re-selected mail waiting
    assert "max-smtp-msg-rate" not in files["mk-01"]


def test_an_own_vmta_total_is_not_duplicated():
    fleet = [dict(FLEET[5], max_smtp_msg_rate="100/h")]
    result = planned(fleet)
    content = render(fleet, result["decisions"], ISPS, T0)[0]["content"]
    assert not re.search(r"^max-smtp-msg-rate", content, re.M)
    assert "own max-smtp-msg-rate 100/h" in content


def test_a_sponsor_takes_the_smallest_limit_of_its_cold_vmtas_per_group():
    fleet = [FLEET[1], FLEET[2], FLEET[3]]  # mk-00 warm; mk-01, mk-02 warming: both sponsored by mk-00
    state = planned(fleet)["state"]
    state["ips"]["192.0.2.21"]["gmail"]["stage"] = 3
    state["ips"]["192.0.2.22"]["gmail"]["stage"] = 2
    result = planned(fleet, state=state, now="2026-05-01T07:00:00Z")
    sponsor = render(fleet, result["decisions"], ISPS, T0)[0]
    assert sponsor["vmta"] == "mk-00" and sponsor["colds"] == ["mk-01", "mk-02"]
    assert "cold-virtual-mta mk-01\ncold-virtual-mta mk-02\n" in sponsor["content"]
    # §3.3.12.4: with several cold vMTAs the per-domain limit applies to each one
    assert re.search(r"^<domain \$gmail>\n    max-cold-virtual-mta-msg 500/day\n</domain>$", sponsor["content"], re.M)


def test_pause_reroutes_to_the_sponsor_and_leaves_the_cold_list(tmp_path):
    result = planned(FLEET, blocklisted={"192.0.2.21": ["zen.dnsbl.test"], "198.51.100.1": ["zen.dnsbl.test"],
                                         "198.51.100.9": ["zen.dnsbl.test"]})
    files = render(FLEET, result["decisions"], ISPS, T0)
    by_name = {f["vmta"]: f for f in files}
    assert by_name["mk-01"]["paused"] and by_name["nf-01"]["paused"] and by_name["solo"]["paused"]
    root = parse_path(str(build_config(tmp_path, FLEET, files)), include_root="/")
    colds = check_guide_rules(root)
    assert "mk-01" not in colds  # not re-selected while listed
    vmtas = vmta_blocks(root)
    assert domain_values(vmtas["mk-01"], "reroute-to-virtual-mta") == {"*": "mk-00"}
    assert domain_values(vmtas["mk-01"], "max-msg-rate") == {}
    # no warm IP in pool fresh: the sending peer takes the mail (its own limits apply)
    assert domain_values(vmtas["nf-01"], "reroute-to-virtual-mta") == {"*": "nf-02"}
    # no vMTA to reroute to: the smallest real total for the whole IP, not one message per recipient domain
    assert [d.value for d in vmtas["solo"].directives("max-smtp-msg-rate")] == ["1/d"]
    assert "pmta pause queue */solo" in by_name["solo"]["content"]
    # the warm-up step pauses the queues of a paused vMTA that has nowhere to reroute to (roles/warmup)
    assert [(f["vmta"], f["reroute_to"]) for f in files if f.get("paused")] == [
        ("mk-01", "mk-00"), ("nf-01", "nf-02"), ("solo", None)]
    # the sponsor has nothing left to re-select
    assert domain_values(vmtas["mk-00"], "max-cold-virtual-mta-msg") == {}
    assert not vmtas["mk-00"].directives("cold-virtual-mta")


def test_resume_restores_the_cold_list_and_drops_the_reroute():
    listed = planned(FLEET, blocklisted={"192.0.2.21": ["zen.dnsbl.test"]})
    resumed = planned(FLEET, state=listed["state"], now="2026-05-02T06:00:00Z")
    files = {f["vmta"]: f["content"] for f in render(FLEET, resumed["decisions"], ISPS, T0)}
    assert "reroute-to-virtual-mta" not in files["mk-01"]
    assert "cold-virtual-mta mk-01" in files["mk-00"]


def test_a_single_paused_group_is_not_reselected():
    result = planned(FLEET[1:3])
    decisions = [dict(d, daily_limit=0) if d["isp"] == "yahoo" else d for d in result["decisions"]]
    sponsor = render(FLEET[1:3], decisions, ISPS, T0)[0]["content"]
    assert re.search(r"^<domain \$yahoo>\n    max-cold-virtual-mta-msg 0/day\n</domain>$", sponsor, re.M)
    assert re.search(r"^<domain \$gmail>\n    max-cold-virtual-mta-msg 200/day\n</domain>$", sponsor, re.M)


def test_same_inputs_give_the_same_text_and_bad_input_is_named():
    result = planned(FLEET)
    assert render(FLEET, result["decisions"], ISPS, T0) == render(list(FLEET), list(result["decisions"]), ISPS, T0)
    with pytest.raises(WarmupRenderError, match=r"vmtas\[0\] needs a name and an ip"):
        render([{"name": "x"}], [], ISPS, T0)
    with pytest.raises(WarmupRenderError, match="listed twice"):
        render([FLEET[0], FLEET[0]], [], ISPS, T0)


def test_comments_cannot_break_the_config():
    result = planned(FLEET[5:6])
    decisions = [dict(d, reason="evil # reason\n<domain *>") for d in result["decisions"]]
    content = render(FLEET[5:6], decisions, ISPS, T0)[0]["content"]
    # the newline is gone, so the text stays inside the comment line
    assert [line for line in content.splitlines() if line.startswith("<domain *>")] == ["<domain *>"]
