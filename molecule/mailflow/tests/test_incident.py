"""Incident actions in the mail-flow lab (issue 24): playbooks/incident.yml pauses and resumes an ISP group on one IP.

"Gmail throttles 203.0.113.61": one command pauses the gmail queues of mk-61 on mf-n1 (PowerMTA's own
`pause queue`, §6.3.23, through mailops.powermta.pmta_queue). While paused, that IP's gmail count at the sink
stays flat and the mail waits in the queue (`pmta show queues --paused=yes` lists it) while the same IP's
yahoo mail and the other IPs' gmail mail flow; a second run changes nothing; resuming delivers every held
message exactly once. The test ends with the queues resumed (the state the other tests expect).
"""

import re

import pytest
from helpers import GROUPS, ROOT, arrivals, inject, playbook, sink_counts, ssh, unique, wait_for

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

HOST, VMTA, IP = "mf-n1", "mk-61", "203.0.113.61"
OTHER_IP = "203.0.113.60"  # tx-60, same host, not paused
HELD = 6


def incident(action):
    result = playbook(ROOT / "playbooks" / "incident.yml", "-e", "incident_action=%s" % action,
                      "-e", "incident_isp=gmail", "-e", "incident_ip=%s" % IP)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    return result.stdout


def changed(output, host):
    match = re.search(r"^%s\s*:.*changed=(\d+)" % re.escape(host), output, re.M)
    assert match, output[-2000:]
    return int(match.group(1))


def accepted(group, ip):
    return sink_counts().get(group, {}).get(ip, {}).get("accepted", 0)


def paused_queues(host):
    """{queue: rcpt} of the paused queues, read the way the guide documents `show queues` (§6.3.13)."""
    result = ssh(host, "pmta show queues --paused=yes --no-rcpt-events --maxitems=1000")
    assert result.returncode == 0, result.stderr
    rows = {}
    for line in result.stdout.splitlines():
        words = line.split()
        if len(words) >= 4 and "/" in words[0] and words[1].isdigit():
            rows[words[0]] = int(words[1])
    return rows


def test_pausing_gmail_on_one_ip_holds_its_mail_and_resuming_delivers_it_once():
    gmail_domain = GROUPS["gmail"]["domains"][0]
    output = incident("pause")
    assert changed(output, HOST) >= 1 and changed(output, "mf-n2") == 0  # mk-61 lives on mf-n1 only
    assert "pause queue gmail.rollup/%s" % VMTA in output and "pause queue %s/%s" % (gmail_domain, VMTA) in output
    assert changed(incident("pause"), HOST) == 0  # already paused: nothing to do

    before_paused_ip = accepted("gmail", IP)
    held = [unique("held", gmail_domain) for _index in range(HELD)]
    flowing = [unique("flow", GROUPS["yahoo"]["domains"][0]) for _index in range(2)]
    other_ip = [unique("other", gmail_domain) for _index in range(2)]
    for item in inject(HOST, held + flowing, pool=VMTA) + inject(HOST, other_ip, pool="tx-60"):
        assert not item["refused"] and not item["error"], item
    # The same IP's yahoo mail and the other IP's gmail mail arrive: delivery runs, only gmail/mk-61 waits.
    wait_for(lambda: all(arrivals(flowing + other_ip).values()), timeout=60, what="the mail that is not paused")
    assert accepted("gmail", IP) == before_paused_ip
    assert all(count == 0 for count in arrivals(held).values())
    queued = {queue: rcpt for queue, rcpt in paused_queues(HOST).items() if queue.endswith("/" + VMTA)}
    assert sum(queued.values()) == HELD, queued  # waiting in the paused queue(s), none lost
    assert set(queued) <= {"gmail.rollup/%s" % VMTA} | {"%s/%s" % (d, VMTA) for d in GROUPS["gmail"]["domains"]}

    output = incident("resume")
    assert changed(output, HOST) >= 1
    wait_for(lambda: all(arrivals(held).values()), timeout=60, what="the held mail after resume")
    wait_for(lambda: accepted("gmail", IP) == before_paused_ip + HELD, timeout=30, what="the sink's count")
    assert arrivals(held) == dict.fromkeys(held, 1)  # nothing lost, nothing twice
    assert not [q for q in paused_queues(HOST) if q.endswith("/" + VMTA)]
    assert changed(incident("resume"), HOST) == 0
