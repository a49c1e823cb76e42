"""Retiring an IP in the mail-flow lab (issue 24): playbooks/retire_ip.yml, both steps.

A spare vMTA rt-68 (203.0.113.68, pool marketing, on mf-n2 beside mk-63) comes from a second inventory source in
the ephemeral directory, so the scenario's own inventory and the other tests never see it. Mail queued on rt-68 is
held (its gmail queue paused) when it is marked retire: true; retire_ip.yml reroutes it to mk-63 (the pool's peer on
the same host, reroute-to-virtual-mta §3.3.10.49) and waits for the queue. Then the item is removed and the second
run takes rt-68 out of the config and its A, PTR and SPF entries out of DNS. At the end mf-n2 is as converge left it.
"""

import ipaddress
import json

import dns.resolver
import pytest
from helpers import GROUPS, ROOT, arrivals, ephemeral, inject, playbook, sink_messages, ssh, unique, wait_for

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

HOST, PEER, PEER_IP = "mf-n2", "mk-63", "203.0.113.63"
VMTA, IP, NAME = "rt-68", "203.0.113.68", "mta68.example.com"
HELD = 4
WARMUP_FACT = "/etc/ansible/facts.d/pmta_warmup.fact"
JSON_ONLY = ("-e", '{"injector_transports_formats": ["json"]}')  # the export as the test reads it, and faster


def inventory(**item):
    """The second inventory source: mf-n2 with rt-68 (ITEM: extra keys; None: without rt-68)."""
    root = ephemeral() / "retire-inventory"
    (root / "host_vars").mkdir(parents=True, exist_ok=True)
    (root / "hosts.yml").write_text(json.dumps({"pmta_fleet": {"hosts": {HOST: {}}}}))
    vmtas = [] if item.get("removed") else [
        dict({"name": VMTA, "ip": IP, "hostname": NAME, "pool": "marketing"}, **item)]
    (root / "host_vars" / ("%s.yml" % HOST)).write_text(json.dumps({"powermta_host_vmtas": vmtas}))
    return ("-i", str(root))


def export_ips():
    """The IPs behind mf-n2's marketing transport in the injector export."""
    data = json.loads((ephemeral() / "injector-transports" / "mumara.json").read_text())
    return {ip["ip"] for t in data["transports"] if (t["node"], t["x_virtual_mta"]) == (HOST, "marketing")
            for ip in t["ips"]}


def run(path, *args):
    """ansible-playbook PATH ARGS; its output with whitespace runs made one space (the callback wraps messages)."""
    result = playbook(ROOT / "playbooks" / path, *args)
    assert result.returncode == 0, result.stdout[-5000:]
    return " ".join(result.stdout.split())


def resolve(name, rdtype):
    connection = json.loads((ephemeral() / "bind9" / "connection.json").read_text())
    resolver = dns.resolver.Resolver(configure=False)
    resolver.nameservers, resolver.port = [connection["server"]], int(connection["port"])
    try:
        answers = resolver.resolve(name, rdtype)
    except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
        return []
    if rdtype == "TXT":  # the record's strings joined, as a receiver reads them
        return [b"".join(answer.strings).decode() for answer in answers]
    return [answer.to_text() for answer in answers]


def spf_covers(ip):
    """Does example.com's SPF record authorize IP (its ip4: terms are collapsed into CIDRs)?"""
    terms = [term[4:] for record in resolve("example.com", "TXT") if "v=spf1" in record
             for term in record.split() if term.startswith("ip4:")]
    return any(ipaddress.ip_address(ip) in ipaddress.ip_network(term) for term in terms)


def queued(vmta):
    """Recipients queued for VMTA (the #rcpt column of `pmta show queues`, §6.3.13)."""
    result = ssh(HOST, "pmta show queues --no-rcpt-events '*/%s'" % vmta)
    assert result.returncode == 0, result.stderr
    rows = [line.split() for line in result.stdout.splitlines()]
    return sum(int(row[1]) for row in rows if len(row) > 1 and row[0].endswith("/" + vmta) and row[1].isdigit())


def test_retiring_an_ip_delivers_its_queue_through_its_pool_and_removes_it_from_dns_and_the_host():
    ptr = "68.113.0.203.in-addr.arpa"
    run("powermta.yml", *inventory(), "--limit", "%s,localhost" % HOST)
    run("dns.yml", *inventory())
    run("injector_transports.yml", *inventory(), *JSON_ONLY)
    assert export_ips() == {PEER_IP, IP}
    assert resolve(NAME, "A") == [IP] and resolve(ptr, "PTR") == [NAME + "."]
    assert spf_covers(IP)

    gmail = GROUPS["gmail"]["domains"][0]
    assert ssh(HOST, "pmta pause queue gmail.rollup/%s" % VMTA).returncode == 0
    held = [unique("retire", gmail) for _index in range(HELD)]
    for item in inject(HOST, held, pool=VMTA):
        assert not item["refused"] and not item["error"], item
    wait_for(lambda: queued(VMTA) == HELD, timeout=30, what="the held mail in rt-68's queue")
    assert all(count == 0 for count in arrivals(held).values())

    # Step 1: marked retire: true -> out of the pool, rerouted to mk-63, queue empty.
    output = run("retire_ip.yml", *inventory(retire=True), "-e", "retire_ip=%s" % IP, "-e", "retire_poll=2",
                 "-e", "retire_timeout=120", *JSON_ONLY)
    assert "its mail rerouted to %s" % PEER in output, output[-3000:]
    config = ssh(HOST, "cat /etc/pmta/conf.d/vmtas.conf").stdout
    pool = config.split("<virtual-mta-pool marketing>")[1].split("</virtual-mta-pool>")[0]
    assert VMTA not in pool and PEER in pool
    wait_for(lambda: arrivals(held) == dict.fromkeys(held, 1), timeout=90, what="the held mail at the sink")
    sources = {rcpt: message["peer"] for message in sink_messages("gmail") for rcpt in message["rcpts"]
               if rcpt in held}
    assert set(sources.values()) == {PEER_IP}, sources  # delivered through its pool's peer, not from 203.0.113.68

    assert export_ips() == {PEER_IP}  # the injector export: mf-n2's marketing transport without rt-68

    # As if rt-68 had been warming: the warm-up state knows its IP (the others' entries must stay).
    fact = ssh(HOST, "cat %s" % WARMUP_FACT)
    state = json.loads(fact.stdout) if fact.returncode == 0 and fact.stdout.strip() else None
    seeded = dict(state or {"version": 1, "updated_at": None, "ips": {}})
    seeded["ips"] = dict(seeded["ips"], **{IP: {"gmail": {"stage": 2, "status": "warming",
                                                          "stage_started_at": "2026-12-01T00:00:00Z"}}})
    written = ssh(HOST, "mkdir -p %s && cat > %s <<'EOF'\n%s\nEOF"
                  % (WARMUP_FACT.rsplit("/", 1)[0], WARMUP_FACT, json.dumps(seeded)))
    assert written.returncode == 0, written.stderr

    # Step 2: the item removed -> out of the config, the warm-up state and DNS; nothing left on the host.
    output = run("retire_ip.yml", *inventory(removed=True), "-e", "retire_ip=%s" % IP, *JSON_ONLY)
    assert "%s is out of the config" % IP in output, output[-3000:]
    assert resolve(NAME, "A") == [] and resolve(ptr, "PTR") == [] and resolve(NAME, "TXT") == []  # HELO SPF too
    assert not spf_covers(IP) and spf_covers(PEER_IP)
    assert VMTA not in ssh(HOST, "cat /etc/pmta/conf.d/vmtas.conf").stdout
    assert VMTA not in ssh(HOST, "pmta show vmtas").stdout
    left = json.loads(ssh(HOST, "cat %s" % WARMUP_FACT).stdout)
    assert left["ips"] == (state or {}).get("ips", {})  # the IP forgotten, the others untouched
    if state is None:
        assert ssh(HOST, "rm -f %s" % WARMUP_FACT).returncode == 0  # as converge left the host
    assert not ssh(HOST, "ls /etc/pmta/conf.d/warmup.d").stdout.count(VMTA)
    assert queued(VMTA) == 0
