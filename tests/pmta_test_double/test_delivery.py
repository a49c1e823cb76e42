"""The PowerMTA TEST DOUBLE delivers: routing, pools, source IPs, STARTTLS, rollups, limits (loopback lab).

Run: .venv/bin/pytest tests/pmta_test_double/test_delivery.py   (as root; see loopback_lab.py and conftest.py)
The main double's test clock (TEST-DOUBLE-clock) runs 60x, so retry-after 5m is 5 s of wall clock.
"""

import time

import loopback_lab
import pytest
from loopback_lab import delivered, ip, rows, send, wait_for


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    yield from loopback_lab.world_fixture(tmp_path_factory)


def test_pool_round_robin_binds_each_vmta_source_ip_and_strips_x_virtual_mta(world):
    recipients = ["pool%d@gmail.example.test" % n for n in range(4)]
    for rcpt in recipients:
        send([rcpt], headers="X-Virtual-MTA: transactional\r\n")
    wait_for(lambda: all(delivered(world, r) for r in recipients), what="4 deliveries")
    sink = world["sinks"]["gmail"]
    seen = {m["rcpts"][0]: m for m in sink.messages if m["rcpts"][0] in recipients}
    assert sorted(m["peer"] for m in seen.values()) == sorted([ip(10), ip(10), ip(11), ip(11)])
    for rcpt, message in seen.items():
        row = delivered(world, rcpt)[0]
        assert row["dlvSourceIp"] == message["peer"]
        assert row["vmta"] == {ip(10): "tx-01", ip(11): "tx-02"}[message["peer"]]
        assert message["helo"] == {ip(10): "mta10.example.test", ip(11): "mta11.example.test"}[message["peer"]]
        assert row["queue"] == "gmail.example.test/" + row["vmta"]
        assert row["vmtaPool"] == "transactional"
        assert row["dlvDestinationIp"] == ip(21)
        assert b"X-Virtual-MTA" not in message["data"]  # §3.3.7.48: removed
        assert message["tls"] is False  # the sink offers no STARTTLS


def test_max_msg_per_connection_from_a_macro_domain(world):
    recipients = ["batch%d@gmail.example.test" % n for n in range(6)]
    send(recipients, headers="X-Virtual-MTA: tx-01\r\n", each=True)
    wait_for(lambda: all(delivered(world, r) for r in recipients), what="batch deliveries")
    sessions = {}
    for message in world["sinks"]["gmail"].messages:
        if message["rcpts"][0].startswith("batch"):
            sessions[message["session"]] = sessions.get(message["session"], 0) + 1
    assert sum(sessions.values()) == 6
    assert max(sessions.values()) <= 2  # <domain $googleish> max-msg-per-connection 2
    assert len(sessions) >= 3


def test_unknown_user_bounces_and_no_such_domain_bounces(world):
    wanted = {"nosuchuser@gmail.example.test", "nobody@no-such-domain.example.test"}
    send(sorted(wanted), headers="X-Virtual-MTA: tx-01\r\n")

    def bounces():
        found = {r["rcpt"]: r for r in rows(world["log"], "acct.csv") if r["type"] == "b" and r["rcpt"] in wanted}
        return found if len(found) == 2 else None

    by_rcpt = wait_for(bounces, what="2 bounces")
    assert by_rcpt["nosuchuser@gmail.example.test"]["bounceCat"] == "bad-mailbox"
    assert by_rcpt["nosuchuser@gmail.example.test"]["dsnStatus"].startswith("5.1.1")
    assert "550 5.1.1 user unknown" in by_rcpt["nosuchuser@gmail.example.test"]["dsnDiag"]
    assert by_rcpt["nobody@no-such-domain.example.test"]["bounceCat"] == "bad-domain"


def test_explicit_rollup_queues_two_domains_together(world):
    recipients = ["a@hotmail.example.test", "b@outlook.example.test", "c@hotmail.example.test"]
    send(recipients, headers="X-Virtual-MTA: tx-02\r\n", each=True)
    wait_for(lambda: all(delivered(world, r) for r in recipients), what="rollup deliveries")
    for rcpt in recipients:
        assert delivered(world, rcpt)[0]["queue"] == "hotmail.rollup/tx-02"
        assert delivered(world, rcpt)[0]["dlvDestinationIp"] == ip(23)
    # <domain hotmail.rollup> max-msg-per-connection 1 applies to the rolled-up domains: one session each.
    messages = [m for m in world["sinks"]["hotmail"].messages if m["rcpts"][0] in recipients]
    assert len({m["session"] for m in messages}) == 3
    # This sink offers STARTTLS and use-starttls defaults to yes: every session is encrypted.
    assert all(m["tls"] for m in messages)


def test_wildcard_rollup_by_ip_delivers_to_the_domains_own_hosts(world):
    send(["c@googlemail.example.test"], headers="X-Virtual-MTA: tx-02\r\n")
    row = wait_for(lambda: delivered(world, "c@googlemail.example.test"), what="google.rollup delivery")[0]
    assert row["queue"] == "google.rollup/tx-02"
    assert row["dlvDestinationIp"] == ip(21)


def test_wildcard_rollup_without_smtp_hosts_has_no_route(world):
    send(["d@nohost.example.test"], headers="X-Virtual-MTA: tx-02\r\n")
    row = wait_for(lambda: [r for r in rows(world["log"], "diag.csv") if r["type"] == "t"
                            and r["rcpt"] == "d@nohost.example.test"], what="t record")[0]
    assert row["queue"] == "wild.rollup/tx-02"
    assert "10.17" in row["dsnDiag"]
    assert [r for r in rows(world["log"], "diag.csv") if r["type"] == "tq" and r["queue"] == "wild.rollup/tx-02"]
    assert not world["sinks"]["wild"].messages  # never delivered


def test_smtp_hosts_routes_a_domain_without_dns(world):
    send(["e@routed.example.test"], headers="X-Virtual-MTA: tx-01\r\n")
    row = wait_for(lambda: delivered(world, "e@routed.example.test"), what="smtp-hosts delivery")[0]
    assert row["dlvDestinationIp"] == ip(21)


def test_queue_to_groups_domains_into_one_queue(world):
    recipients = ["q1@grouped.example.test", "q2@a.grouped.example.test"]
    send(recipients, headers="X-Virtual-MTA: tx-01\r\n")
    wait_for(lambda: all(delivered(world, r) for r in recipients), what="queue-to deliveries")
    assert {delivered(world, r)[0]["queue"] for r in recipients} == {"route.queue/tx-01"}


def test_rollup_needs_every_configured_mx_in_dns(world):
    # §10.17 example 2: two.rollup lists mx1 and mx2, DNS's lowest preference has only mx1: no rollup.
    send(["g@single.example.test"], headers="X-Virtual-MTA: tx-01\r\n")
    row = wait_for(lambda: delivered(world, "g@single.example.test"), what="delivery")[0]
    assert row["queue"] == "single.example.test/tx-01"


def test_max_smtp_out_caps_parallel_connections_per_queue(world):
    slow = world["sinks"]["slow"]
    three = ["t%d@three.example.test" % n for n in range(4)]
    send(three, headers="X-Virtual-MTA: tx-01\r\n", each=True)
    wait_for(lambda: all(delivered(world, r) for r in three), what="three.example.test deliveries")
    assert slow.most_concurrent >= 2  # max-smtp-out 3: the sink saw parallel sessions
    slow.most_concurrent = 0
    one = ["o%d@one.example.test" % n for n in range(4)]
    send(one, headers="X-Virtual-MTA: tx-01\r\n", each=True)
    wait_for(lambda: all(delivered(world, r) for r in one), what="one.example.test deliveries")
    assert slow.most_concurrent == 1  # max-smtp-out 1


def test_vmta_max_smtp_msg_rate_spans_its_queues(world):
    recipients = ["v1@gmail.example.test", "v2@rate.example.test", "v3@gmail.example.test", "v4@rate.example.test"]
    send(recipients, headers="X-Virtual-MTA: slowv\r\n", each=True)
    wait_for(lambda: sum(bool(delivered(world, r)) for r in recipients) == 2, what="2 deliveries")
    time.sleep(1.0)  # 1 minute of test time: max-smtp-msg-rate 2/h holds the other two
    assert sum(bool(delivered(world, r)) for r in recipients) == 2
    assert {delivered(world, r)[0]["dlvSourceIp"] for r in recipients if delivered(world, r)} == {ip(16)}


def test_skip_mx_moves_to_the_next_mx(world):
    send(["s@skippy.example.test"], headers="X-Virtual-MTA: tx-02\r\n")
    row = wait_for(lambda: delivered(world, "s@skippy.example.test"), what="delivery via the second MX")[0]
    assert row["dlvDestinationIp"] == ip(21)
    assert world["sinks"]["skip1"].sessions  # the first MX was tried
    assert not [r for r in rows(world["log"], "diag.csv") if r["rcpt"] == "s@skippy.example.test"]


def test_max_connect_rate_and_max_errors_per_connection(world):
    gmail = world["sinks"]["gmail"]
    recipients = ["nosuchuser%d@errs.example.test" % n for n in range(5)]
    send(recipients, headers="X-Virtual-MTA: tx-01\r\n", each=True)

    def bounced():
        found = [r for r in rows(world["log"], "acct.csv") if r["type"] == "b" and r["rcpt"] in recipients]
        return found if len(found) == 5 else None

    wait_for(bounced, timeout=20, what="5 bounces")
    per_session = {}
    for rcpt in recipients:
        per_session.setdefault(gmail.rcpt_sessions[rcpt], []).append(rcpt)
    # max-errors-per-connection 2: a connection ends after its second 550; max-connect-rate 1/m (1 s of wall
    # clock at 60x) lets the queued messages pile up between connections.
    assert max(len(v) for v in per_session.values()) == 2
    starts = sorted(gmail.session_start[session] for session in per_session)
    assert len(starts) >= 3
    assert min(b - a for a, b in zip(starts, starts[1:], strict=False)) > 0.7


def test_pool_max_smtp_msg_rate_spans_its_members(world):
    recipients = ["p%d@rate.example.test" % n for n in range(3)]
    send(recipients, headers="X-Virtual-MTA: capped\r\n", each=True)
    wait_for(lambda: any(delivered(world, r) for r in recipients), what="1 delivery")
    time.sleep(1.0)  # 1 minute of test time: the pool's 1/h holds the others, whichever member they use
    assert sum(bool(delivered(world, r)) for r in recipients) == 1
