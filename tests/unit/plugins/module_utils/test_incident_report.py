"""The incident report of playbooks/incident.yml (plugins/module_utils/_operations/incident.py), from pmta_queue
results of the real shape (plugins/module_utils/_operations/queue.py apply)."""

import pytest
from ansible_collections.mailops.powermta.plugins.module_utils._operations import queue
from ansible_collections.mailops.powermta.plugins.module_utils._operations.incident import name_list, report_lines


def fake_pmta(queues):
    """A scripted pmta: ``queues`` {name: [rcpt, kbytes, paused]}; show queues (§6.3.13), pause/resume queue."""

    def run(argv):
        if argv[1:3] == ["show", "queues"]:
            want = argv[3] == "--paused=yes"
            rows = ["%s %d %.1f 0" % (name, rcpt, kbytes) for name, (rcpt, kbytes, paused) in sorted(queues.items())
                    if paused == want]
            return 0, "\n".join(["queue #rcpt kbytes conn st retry last error"] + rows
                                + ["%d of %d matching queues." % (len(rows), len(rows))]), ""
        for name in queues:
            if queue.matches(argv[3], name):
                queues[name][2] = argv[1] == "pause"
        return 0, "Queue(s) done.", ""

    return run


def ip_11_queues():
    return {"gmail.rollup/ip-11": [12, 40.5, False], "yahoo.rollup/ip-11": [3, 7.0, False],
            "gmail.rollup/ip-12": [5, 10.0, True]}


def test_header_names_what_was_given_in_selector_order_and_splits_lists():
    lines = report_lines("pause", {"isp": "gmail, yahoo", "ip": None, "pool": None, "vmta": ["ip-11"],
                                   "queue": None}, [])
    assert lines == ["incident: pause isp gmail,yahoo, vmta ip-11"]
    assert report_lines("resume", {"queue": ""}, []) == ["incident: resume queue "]


def test_per_host_totals_queues_after_and_commands():
    acted = queue.apply(fake_pmta(ip_11_queues()), "paused", ["gmail.rollup/ip-11"])
    already = {"changed": False, "commands": [], "patterns": ["gmail.rollup/ip-12"],
               "queues": [{"queue": "gmail.rollup/ip-12", "rcpt": 5, "kbytes": 10.0, "paused": True}]}
    skipped = {"changed": False, "skipped": True, "skip_reason": "Conditional result was False"}
    lines = report_lines("pause", {"isp": "gmail"}, [("pmta1", acted), ("pmta2", already), ("pmta3", skipped),
                                                     ("pmta4", None)], check_mode=False)
    assert lines == [
        "incident: pause isp gmail",
        "pmta1: changed; 1 queue(s), 12 recipient(s), 40.5 kB",
        "  gmail.rollup/ip-11                           12 rcpt     40.5 kB  paused",
        "  ran: pmta pause queue gmail.rollup/ip-11",
        "pmta2: already so; 1 queue(s), 5 recipient(s), 10.0 kB",
        "  gmail.rollup/ip-12                            5 rcpt     10.0 kB  paused",
    ]


def test_check_mode_reports_the_queues_before_and_says_so():
    planned = queue.apply(fake_pmta(ip_11_queues()), "paused", ["*/ip-11"], check_mode=True)
    assert "queues_after" not in planned
    assert report_lines("pause", {"vmta": "ip-11"}, [("pmta1", planned)], check_mode=True) == [
        "incident: pause vmta ip-11",
        "pmta1: changed; 2 queue(s), 15 recipient(s), 47.5 kB (check mode)",
        "  gmail.rollup/ip-11                           12 rcpt     40.5 kB  running",
        "  yahoo.rollup/ip-11                            3 rcpt      7.0 kB  running",
        "  ran: pmta pause queue */ip-11",
    ]


def test_name_list():
    assert name_list(" a,b,,a , c") == ["a", "b", "c"]
    assert name_list(["x", None, " y ", "x"]) == ["x", "y"]
    assert name_list(None) == []
    with pytest.raises(TypeError):
        name_list(3)
