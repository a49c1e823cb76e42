"""_pmta_queue: fleet names -> queue patterns, `pmta show queues` parsing (§6.3.13), planning, apply."""

import time

import pytest
from ansible_collections.mailops.powermta.plugins.module_utils._operations import queue as q

GMAIL = {"name": "gmail", "domains": ["gmail.com", "googlemail.com"], "mx_patterns": ["*.google.com"]}
YAHOO = {"name": "yahoo", "domains": ["yahoo.com"], "mx_patterns": []}


def fleet(hosts=2, ips=3):
    """A fleet model as mailops.powermta.fleet_model builds it: hosts pmta1.., vMTAs v<h>-<n>, pools by parity."""
    model = {"hosts": {}, "vmtas": []}
    for h in range(1, hosts + 1):
        vmtas = [{"name": "v%d-%d" % (h, n), "ip": "203.0.113.%d" % (h * 100 % 250 + n), "pool": "p%d" % (n % 2)}
                 for n in range(ips)]
        model["hosts"]["pmta%d" % h] = {"vmtas": vmtas, "isp_policies": [GMAIL, YAHOO]}
        model["vmtas"] += [dict(v, inventory_host="pmta%d" % h) for v in vmtas]
    return model


# ---------------------------------------------------------------- resolution
def test_an_isp_on_one_ip_is_its_domains_and_rollup_on_that_vmta_of_that_host_only():
    model = fleet()
    assert q.resolve_selection(model, isp="gmail", ip="203.0.113.101") == {
        "pmta1": ["gmail.com/v1-1", "googlemail.com/v1-1", "gmail.rollup/v1-1"]}


def test_an_isp_alone_is_every_vmta_of_every_host_with_one_wildcard():
    assert q.resolve_selection(fleet(), isp=["gmail"], mx_rollup=False) == {
        "pmta1": ["gmail.com/*", "googlemail.com/*"], "pmta2": ["gmail.com/*", "googlemail.com/*"]}


def test_a_group_without_mx_patterns_has_no_rollup_queue():
    assert q.resolve_selection(fleet(hosts=1), isp="yahoo", vmta="v1-0") == {"pmta1": ["yahoo.com/v1-0"]}


def test_dimensions_combine_as_and_values_of_one_as_or():
    model = fleet(hosts=1, ips=4)
    assert q.resolve_selection(model, pool="p1") == {"pmta1": ["*/v1-1", "*/v1-3"]}
    assert q.resolve_selection(model, pool="p1", vmta=["v1-1", "v1-2"]) == {"pmta1": ["*/v1-1"]}
    assert q.resolve_selection(model, pool="p0", ip="203.0.113.101") == {}  # v1-1 is in p1


def test_a_host_whose_vmtas_are_all_chosen_gets_one_wildcard():
    assert q.resolve_selection(fleet(hosts=1, ips=2), pool=["p0", "p1"]) == {"pmta1": ["*/*"]}


def test_queue_patterns_go_to_the_hosts_whose_vmtas_they_name():
    model = fleet()
    assert q.resolve_selection(model, queue=["example.net/v2-0"]) == {"pmta2": ["example.net/v2-0"]}
    assert q.resolve_selection(model, queue="*/*") == {"pmta1": ["*/*"], "pmta2": ["*/*"]}


@pytest.mark.parametrize("kwargs, message", [
    ({}, "choose the queues"),
    ({"vmta": "v9-9"}, "vmta v9-9 is on no host"),
    ({"pool": "nope"}, "pool nope is on no host"),
    ({"ip": "198.51.100.7"}, "ip 198.51.100.7 is on no host"),
    ({"ip": "not-an-ip"}, "ip: "),
    ({"isp": "hotmail"}, "isp hotmail is not an ISP group of this fleet (known: gmail, yahoo)"),
    ({"isp": "other"}, "isp other is every domain outside the ISP groups"),
    ({"queue": "a b"}, "is not domain[/vmta]"),
    ({"queue": "a/b/c"}, "is not domain[/vmta]"),
])
def test_bad_selections_say_what_and_how_to_fix(kwargs, message):
    with pytest.raises(q.QueueError, match=None) as caught:
        q.resolve_selection(fleet(), **kwargs)
    assert message in str(caught.value)


def test_resolution_at_fleet_scale_is_fast():
    model = fleet(hosts=50, ips=64)
    started = time.perf_counter()
    by_host = q.resolve_selection(model, isp="gmail", pool="p1")
    assert time.perf_counter() - started < 0.5  # typically ~5 ms; the bench script prints the ratio
    assert len(by_host) == 50 and all(len(patterns) == 3 * 32 for patterns in by_host.values())


# ---------------------------------------------------------------- matching
@pytest.mark.parametrize("pattern, queue, expected", [
    ("*/*", "gmail.com/v1", True),
    ("gmail.com", "gmail.com/v1", True),  # an omitted vMTA is every vMTA (§6.3.13)
    ("GMAIL.com/v1", "gmail.com/v1", True),
    ("gmail.com/v1", "gmail.com/v10", False),
    ("*.rollup/v1", "gmail.rollup/v1", True),
    ("*/v1", "gmail.com/v2", False),
])
def test_matches(pattern, queue, expected):
    assert q.matches(pattern, queue) is expected


# ---------------------------------------------------------------- parsing what pmta prints
GUIDE_SAMPLE = """\
queue           #rcpt kbytes conn st    retry last error
--------------- ----- ------ ---- -- -------- ----------
*/*
example.com/vmta1   2    0.2    0    09:35:42

Recipient Events (deliveries:4, bounces:1, deferrals:1)
-------------------------------------------------------
delivered | 2014-11-24 09:35:09 | 10.25.25.235 | kf@example.com | jobid10145783566176 | [192.168.10.48] (192.168.10.48) | smtp;250 DATA ok
bounced | 2014-11-24 09:36:09 | 10.25.25.235 | vc@example.com | jobid8363372138340 | [192.168.10.48] (192.168.10.48) | smtp;550 5.0.0 (undefined status);smtp;550 No Such User Here3 of 3 matching queues.
"""  # noqa: E501 - the guide's own example (§6.3.13), verbatim


def test_the_guides_show_queues_example_parses():
    rows, shown, total = q.parse_show_queues(GUIDE_SAMPLE)
    assert rows == [{"queue": "example.com/vmta1", "domain": "example.com", "vmta": "vmta1", "rcpt": 2,
                     "kbytes": 0.2, "conn": 0}]
    assert (shown, total) == (3, 3)


def test_a_truncated_listing_is_an_error():
    def run(argv):
        return 0, "queue #rcpt kbytes conn st retry last error\na.com/v 1 0.1 0\n20 of 31 matching queues.\n", ""

    with pytest.raises(q.QueueError, match="listed 20 of 31 queues"):
        q.read_queues(run)


def test_disabled_sources_lines_are_read_in_either_order():
    text = "203.0.113.5 gmail.com/v1 never\ngmail.com/v2 until 2026-01-01 203.0.113.6\nno entries here\n"
    assert q.parse_disabled_sources(text) == {("203.0.113.5", "gmail.com/v1"), ("203.0.113.6", "gmail.com/v2")}


# ---------------------------------------------------------------- planning and apply with a scripted pmta
class FakePmta:
    """A scripted pmta: queues {name: [rcpt, paused]}; records the argv it ran. Only for the planner's unit tests:
    the test double's own commands are tested in tests/pmta_test_double/test_queue_commands.py."""

    def __init__(self, queues, disabled=""):
        self.queues = queues
        self.disabled = disabled
        self.ran = []

    def __call__(self, argv):
        self.ran.append(argv[1:])
        if argv[1:3] == ["show", "queues"]:
            want = argv[3] == "--paused=yes"
            lines = ["queue #rcpt kbytes conn st retry last error"]
            lines += ["%s %d %.1f 0" % (name, rcpt, rcpt * 1.5) for name, (rcpt, paused) in sorted(self.queues.items())
                      if paused == want]
            return 0, "\n".join(lines + ["%d of %d matching queues." % (len(lines) - 1, len(lines) - 1)]), ""
        if argv[1:3] == ["show", "disabled"]:
            return 0, self.disabled, ""
        if argv[1:3] in (["pause", "queue"], ["resume", "queue"]):
            for name in self.queues:
                if q.matches(argv[3], name):
                    self.queues[name][1] = argv[1] == "pause"
            if argv[1] == "pause" and q.is_exact(argv[3]) and argv[3] not in self.queues:
                self.queues[argv[3]] = [0, True]
            return 0, "Queue(s) done.", ""
        return 0, "ok", ""


def test_pause_touches_only_running_queues_and_a_second_run_is_ok():
    pmta = FakePmta({"gmail.com/v1": [3, False], "gmail.com/v2": [1, True], "yahoo.com/v1": [5, False]})
    result = q.apply(pmta, "paused", ["gmail.com/*"])
    assert result["commands"] == ["pmta pause queue gmail.com/*"]
    assert result["queues"] == [{"queue": "gmail.com/v1", "rcpt": 3, "kbytes": 4.5, "paused": False},
                                {"queue": "gmail.com/v2", "rcpt": 1, "kbytes": 1.5, "paused": True}]
    assert all(row["paused"] for row in result["queues_after"])
    assert pmta.queues["yahoo.com/v1"][1] is False
    again = q.apply(pmta, "paused", ["gmail.com/*"])
    assert (again["changed"], again["commands"]) == (False, [])


def test_an_exact_queue_not_listed_yet_is_paused_so_later_mail_waits():
    pmta = FakePmta({})
    assert q.apply(pmta, "paused", ["gmail.com/v1", "*/v2"])["commands"] == ["pmta pause queue gmail.com/v1"]
    assert not q.apply(pmta, "paused", ["gmail.com/v1", "*/v2"])["changed"]


def test_check_mode_reads_but_runs_nothing():
    pmta = FakePmta({"gmail.com/v1": [3, True]})
    result = q.apply(pmta, "resumed", ["gmail.com/v1"], check_mode=True)
    assert result["changed"] and result["commands"] == ["pmta resume queue gmail.com/v1"]
    assert all(argv[0] == "show" for argv in pmta.ran)
    assert q.diff("resumed", result)["after"] == "pmta resume queue gmail.com/v1\n"


def test_retry_and_delete_act_only_where_recipients_wait_and_report_them():
    pmta = FakePmta({"a.com/v1": [2, False], "b.com/v1": [0, False]})
    assert q.apply(pmta, "retried", ["*/v1"], retry_recipients=True)["commands"] == [
        "pmta schedule --retry-recipients */v1"]
    assert not q.apply(pmta, "retried", ["b.com/v1"])["changed"]
    deleted = q.apply(pmta, "deleted", ["a.com/*"])
    assert deleted["commands"] == ["pmta delete --queue=a.com/*"]
    assert deleted["deleted"] == [{"queue": "a.com/v1", "rcpt": 2, "kbytes": 3.0}]


def test_source_states_read_show_disabled_sources_first():
    pmta = FakePmta({}, disabled="203.0.113.5 gmail.com/v1 never\n")
    assert not q.apply(pmta, "source_disabled", ["gmail.com/v1"], source_ip="203.0.113.5")["changed"]
    assert q.apply(pmta, "source_disabled", ["gmail.com/v1"], source_ip="203.0.113.6",
                   reenable_after="2h")["commands"] == ["pmta disable source --reenable-after=2h 203.0.113.6 "
                                                        "gmail.com/v1"]
    assert q.apply(pmta, "source_enabled", ["gmail.com/*"], source_ip="203.0.113.5")["commands"] == [
        "pmta enable source 203.0.113.5 gmail.com/*"]
    assert not q.apply(pmta, "source_enabled", ["gmail.com/*"], source_ip="203.0.113.6")["changed"]


@pytest.mark.parametrize("kwargs, message", [
    ({"state": "source_disabled"}, "needs source_ip"),
    ({"state": "source_disabled", "source_ip": "x"}, "source_ip: "),
    ({"state": "source_disabled", "source_ip": "203.0.113.5", "reenable_after": "soon"}, "not a time interval"),
])
def test_bad_source_arguments(kwargs, message):
    with pytest.raises(q.QueueError) as caught:
        q.apply(FakePmta({}), patterns=["a.com/v1"], **kwargs)
    assert message in str(caught.value)


def test_a_failing_pmta_is_reported_with_its_command():
    def run(argv):
        return 1, "", "Error: PowerMTA (pmtad) is not running"

    with pytest.raises(q.QueueError, match=r"`pmta show queues --paused=yes .*not running"):
        q.apply(run, "paused", ["*/*"])
