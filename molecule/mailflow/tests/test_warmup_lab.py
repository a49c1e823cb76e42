"""Warm-up that really caps (issue 13), proven with real SMTP in the mail-flow lab.

The limits come from the collection itself: playbooks/warmup_step.yml (role mailops.powermta.warmup) plans
stage 1 of a small schedule (5 a day per ISP group), renders the fragments and applies them through the
powermta role's apply tasks, exactly as on a fleet. Then 10 simulated days of traffic:

- pool ``warmlab`` (mf-n1): wl-64 warm, wl-65 warming. It receives 10x wl-65's daily limit per ISP group
  a day. wl-65 is wl-64's cold vMTA (§10.7, §3.3.12.4): at most its limit per ISP group and day arrives from
  203.0.113.65, the rest from 203.0.113.64, nothing bounces, nothing is queued at the end of the day.
- pool ``coldlab`` (mf-n2): cl-66 and cl-67 both warming, capped by rate limits. It receives what the
  injector export (playbooks/injector_transports.yml) gives it a day; the export, the rendered per-queue
  limits and vMTA totals agree, everything is delivered the same day, nothing expires.
Then 203.0.113.65 and 203.0.113.67 are listed in the lab's DNSBL zone, the next step pauses them, and
from then on neither sends a message while the rest of their pools' mail arrives.

Simulated days: the test double's clock hook (/etc/pmta/TEST-DOUBLE-clock, read on `pmta reload`) puts
each host at 00:00 UTC of day N, running 60x. One batch is injected and delivered per day and the test
checks that the double's clock is still on that day afterwards, so the sinks' per-source-IP counts taken
before and after the batch are that simulated day's counts (the sinks themselves date by the wall clock).
The hosts' d records (timeLogged is on the double's clock) give the same per-day counts, checked too.
"""

import collections
import datetime
import json
import re
import shlex
import subprocess
import threading
import time

import pytest
from helpers import (
    GROUPS,
    ROOT,
    acct_rows,
    ephemeral,
    inject,
    playbook,
    sink_counts,
    ssh,
    unique,
    wait_for,
)

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

SCHEDULE = [5, 10, 20]  # warmup_schedule (inventory): stage 1 is 5 a day per ISP group
DAYS = 10
FIRST_DAY = datetime.datetime(2026, 12, 10, tzinfo=datetime.UTC)  # after the scenario's own traffic (60x clock)
SPEED = 60  # a simulated day lasts 24 wall minutes: a batch never crosses midnight (checked)
WARM = {"host": "mf-n1", "pool": "warmlab", "warm": ("wl-64", "203.0.113.64"), "warming": ("wl-65", "203.0.113.65")}
COLD = {"host": "mf-n2", "pool": "coldlab", "vmtas": [("cl-66", "203.0.113.66"), ("cl-67", "203.0.113.67")]}
LAB_VMTAS = ("wl-64", "wl-65", "cl-66", "cl-67")
LAB_IPS = {"203.0.113.64", "203.0.113.65", "203.0.113.66", "203.0.113.67"}
LISTED = ["203.0.113.65", "203.0.113.67"]
DNSBL_ZONE = "bl.example.test"
ISPS = ["gmail", "yahoo", "microsoft", "apple", "comcast", "other"]


# ---------------------------------------------------------------- the lab's tools
def day_start(index):
    return FIRST_DAY + datetime.timedelta(days=index)


def set_clock(host, when):
    """Put HOST's test double at WHEN (the TEST-DOUBLE-clock hook, read on reload) and check it took."""
    hook = json.dumps({"start": when.isoformat(), "speed": SPEED})
    result = ssh(host, "printf %%s %s > /etc/pmta/TEST-DOUBLE-clock && pmta reload >/dev/null"
                       " && pmta --json show status" % shlex.quote(hook))
    assert result.returncode == 0, result.stdout + result.stderr
    now = json.loads(result.stdout)["data"]["status"]["testClock"]["now"]
    assert when.timestamp() <= now < when.timestamp() + 3600, (host, when, now)


def lab_queues(host, with_clock=False):
    """{queue name: recipients} of the lab vMTAs' queues that hold anything (and the double's clock)."""
    result = ssh(host, "pmta --json show queues && echo @@@ && pmta --json show status")
    assert result.returncode == 0, result.stderr
    queues_doc, status_doc = result.stdout.split("@@@")
    queues = json.loads(queues_doc).get("data", {}).get("queues", [])
    held = {q["name"]: q.get("rcp", 0) for q in queues if q["name"].rsplit("/", 1)[-1] in LAB_VMTAS and q.get("rcp", 0)}
    if with_clock:
        return held, json.loads(status_doc)["data"]["status"]["testClock"]["now"]
    return held


def fragment(host, vmta):
    result = ssh(host, "cat /etc/pmta/conf.d/warmup.d/%s.conf" % vmta)
    assert result.returncode == 0, result.stderr
    return result.stdout


def domain_settings(text):
    """{domain pattern or '' (the vMTA itself): {directive: value}} of a warm-up fragment."""
    out = {"": {}}
    current = ""
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        match = re.match(r"<domain\s+(\S+)>", line)
        if match:
            current = match.group(1)
            out.setdefault(current, {})
        elif line == "</domain>":
            current = ""
        else:
            name, _sep, value = line.partition(" ")
            out[current].setdefault(name, []).append(value.strip())
    return out


def macro(isp):
    return "*" if isp == "other" else "$" + isp


def per_day(value):
    number, unit = re.fullmatch(r"(\d+)/(d|day)", value).groups()
    return int(number)


def nsupdate(lines):
    bind = json.loads((ephemeral() / "bind9" / "connection.json").read_text())
    script = "server %s %s\nzone example.test.\n%s\nsend\n" % (bind["server"], bind["port"], "\n".join(lines))
    result = subprocess.run(["nsupdate", "-y", "hmac-sha256:%s:%s" % (bind["key_name"], bind["key_secret"])],
                            input=script, capture_output=True, text=True, timeout=30, check=False)
    assert result.returncode == 0, result.stderr


def listing(ip):
    return "%s.%s." % (".".join(reversed(ip.split("."))), DNSBL_ZONE)


def warmup_step(when):
    """playbooks/warmup_step.yml as a user runs it (schedule, DNSBL zone: inventory/group_vars/pmta_fleet.yml),
    at the simulated time WHEN."""
    result = playbook(ROOT / "playbooks" / "warmup_step.yml", "-e", "warmup_now=" + when.strftime("%Y-%m-%dT%H:%M:%SZ"))
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]


def panel_series(host, title):
    """Evaluate the Grafana dashboard panel TITLE (docs/grafana-dashboard.json) on HOST's node_exporter scrape,
    as Prometheus would with the dashboard's Host variable at All: {refId: [labels of each returned series]}.
    Only the selector-and-comparison form the panel uses is understood; anything else fails the test."""
    dashboard = json.loads((ROOT / "docs" / "grafana-dashboard.json").read_text())
    panel = next(p for p in dashboard["panels"] if p.get("title") == title)
    scrape = ssh(host, "/usr/local/sbin/pmta-metrics-collector && curl -sf http://127.0.0.1:9100/metrics")
    assert scrape.returncode == 0, scrape.stderr
    samples = []
    for line in scrape.stdout.splitlines():
        match = re.fullmatch(r"(\w+)(?:\{(.*)\})? (\S+)", line)
        if match and not line.startswith("#"):
            labels = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', match.group(2) or ""))
            samples.append((match.group(1), dict(labels, instance=host), float(match.group(3))))
    out = {}
    for target in panel["targets"]:
        expr = re.fullmatch(r"(\w+)\{(.*)\}\s*==\s*(\S+)", target["expr"].strip())
        assert expr, "panel %r: cannot evaluate %r here" % (title, target["expr"])
        matchers = re.findall(r'(\w+)(=~|=)"([^"]*)"', expr.group(2))
        series = []
        for name, labels, value in samples:
            if name != expr.group(1) or value != float(expr.group(3)):
                continue
            ok = True
            for label, op, wanted in matchers:
                wanted = ".*" if wanted == "$instance" else wanted  # the Host variable at All
                have = labels.get(label, "")
                ok = ok and (re.fullmatch(wanted, have) is not None if op == "=~" else have == wanted)
            if ok:
                series.append(labels)
        out[target["refId"]] = series
    return out


def transports():
    """The injector export (playbooks/injector_transports.yml) as JSON: {(node, x_virtual_mta): transport}."""
    result = playbook(ROOT / "playbooks" / "injector_transports.yml", "-e", '{"injector_transports_formats": ["json"]}')
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    data = json.loads((ephemeral() / "injector-transports" / "mumara.json").read_text())
    return {(t["node"], t["x_virtual_mta"]): t for t in data["transports"]}


def recipients(day, tag, per_group):
    """PER_GROUP[isp] recipients of each ISP group, group after group, spread over the group's domains."""
    out = []
    for isp in ISPS:
        domains = GROUPS[isp]["domains"]
        out += [(isp, unique("%s-d%02d" % (tag, day), domains[n % len(domains)])) for n in range(per_group[isp])]
    return out


def deltas(before, after):
    """{isp: {ip: accepted since BEFORE}} for the lab IPs, plus deferred/rejected totals."""
    out, problems = {}, 0
    for isp in ISPS:
        for ip in LAB_IPS:
            old = before.get(isp, {}).get(ip, {})
            new = after.get(isp, {}).get(ip, {})
            got = new.get("accepted", 0) - old.get("accepted", 0)
            if got:
                out.setdefault(isp, {})[ip] = got
            problems += sum(new.get(k, 0) - old.get(k, 0) for k in ("deferred", "rejected"))
    return out, problems


def run_day(day, when, batches):
    """Inject BATCHES [(host, pool, [(isp, rcpt)])] on simulated day DAY, wait for every message at its sink;
    return the sinks' per-ISP per-IP counts of that batch and the lab queues at the end."""
    for host in {b[0] for b in batches}:
        set_clock(host, when)
    before = sink_counts()
    errors = []

    def send(host, pool, items):
        for start in range(0, len(items), 100):
            for item in inject(host, [rcpt for _isp, rcpt in items[start:start + 100]], pool=pool,
                               campaign="warmup-lab"):
                if item["refused"] or item["error"]:
                    errors.append(item)

    threads = [threading.Thread(target=send, args=batch) for batch in batches]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors[:3]
    expected = collections.Counter(isp for _h, _p, items in batches for isp, _r in items)

    def all_arrived():
        got, _problems = deltas(before, sink_counts())
        return got if all(sum(got.get(isp, {}).values()) >= n for isp, n in expected.items()) else None

    try:
        got = wait_for(all_arrived, timeout=90, interval=1, what="day %d's mail at the sinks" % day)
    except AssertionError:
        queues = {h: lab_queues(h) for h in {b[0] for b in batches}}
        raise AssertionError("day %d: not everything arrived; sinks got %s of %s; queued: %s"
                             % (day, deltas(before, sink_counts())[0], dict(expected), queues)) from None
    got, problems = deltas(before, sink_counts())
    queues = {}
    for host in {b[0] for b in batches}:
        deadline = time.monotonic() + 10  # a recipient the sink just took leaves the queue when the reply is in
        held, now = lab_queues(host, with_clock=True)
        while held and time.monotonic() < deadline:
            time.sleep(0.5)
            held, now = lab_queues(host, with_clock=True)
        queues.update(held)
        # the whole batch stayed within simulated day DAY, so these counts are that day's
        assert now < (when + datetime.timedelta(days=1)).timestamp(), "day %d crossed midnight" % day
    return got, problems, queues


# ---------------------------------------------------------------- the ten days
@pytest.fixture(scope="module")
def lab():
    nsupdate(["update delete %s" % listing(ip) for ip in LISTED]
             + ["update add 2.0.0.127.%s. 60 A 127.0.0.2" % DNSBL_ZONE])  # RFC 5782 test point: zone usable
    wall = time.monotonic()
    warmup_step(day_start(0))
    limits = {
        "sponsor": domain_settings(fragment("mf-n1", "wl-64")),
        "wl-65": domain_settings(fragment("mf-n1", "wl-65")),
        "cl-66": domain_settings(fragment("mf-n2", "cl-66")),
        "cl-67": domain_settings(fragment("mf-n2", "cl-67")),
    }
    export = transports()
    cold_limit = {isp: per_day(limits["sponsor"][macro(isp)]["max-cold-virtual-mta-msg"][0]) for isp in ISPS}
    cap = {name: {isp: per_day(limits[name][macro(isp)]["max-msg-rate"][0]) for isp in ISPS}
           for name in ("cl-66", "cl-67")}
    days = []
    for day in range(DAYS):
        warm = recipients(day, "wl", {isp: 10 * cold_limit[isp] for isp in ISPS})
        cold = recipients(day, "cl", {isp: cap["cl-66"][isp] + cap["cl-67"][isp] for isp in ISPS})
        got, problems, queues = run_day(day, day_start(day), [
            (WARM["host"], WARM["pool"], warm), (COLD["host"], COLD["pool"], cold)])
        days.append({"day": day_start(day).date().isoformat(), "sinks": got, "deferred_or_rejected": problems,
                     "queued": queues, "injected": {"warmlab": len(warm), "coldlab": len(cold)}})
    wall_days = time.monotonic() - wall
    (ephemeral() / "warmup-lab-days.json").write_text(json.dumps(days, indent=1) + "\n")
    print("warm-up lab: %d days in %.0f s; per day and ISP (sinks): %s" % (DAYS, wall_days, json.dumps(days)))
    return {"limits": limits, "cold_limit": cold_limit, "cap": cap, "export": export, "days": days}


def test_the_step_rendered_the_schedules_first_stage(lab):
    """The limits under test are the collection's: the sponsor re-selects stage 1 to wl-65, the capped vMTAs
    of coldlab have stage 1 per queue and their sum as the vMTA total."""
    sponsor = lab["limits"]["sponsor"]
    assert sponsor[""]["cold-virtual-mta"] == ["wl-65"], sponsor
    assert lab["cold_limit"] == dict.fromkeys(ISPS, SCHEDULE[0])
    for name in ("cl-66", "cl-67"):
        assert lab["cap"][name] == dict.fromkeys(ISPS, SCHEDULE[0])
        assert lab["limits"][name][""]["max-smtp-msg-rate"] == ["%d/d" % (SCHEDULE[0] * len(ISPS))]


@pytest.mark.parametrize("day", range(DAYS))
def test_warming_ip_stays_within_its_limit_and_the_warm_ip_takes_the_rest(lab, day):
    got = lab["days"][day]["sinks"]
    warm_ip, cold_ip = WARM["warm"][1], WARM["warming"][1]
    for isp in ISPS:
        limit = lab["cold_limit"][isp]
        cold, warm = got.get(isp, {}).get(cold_ip, 0), got.get(isp, {}).get(warm_ip, 0)
        assert 0 < cold <= limit, "day %d %s: the warming IP sent %d, its limit is %d" % (day, isp, cold, limit)
        assert cold + warm == 10 * limit, "day %d %s: %d + %d arrived of %d" % (day, isp, cold, warm, 10 * limit)
    assert lab["days"][day]["deferred_or_rejected"] == 0
    assert lab["days"][day]["queued"] == {}, "day %d ended with mail queued: %s" % (day, lab["days"][day]["queued"])


@pytest.mark.parametrize("day", range(DAYS))
def test_pool_of_warming_ips_delivers_its_export_capacity_within_the_day(lab, day):
    got = lab["days"][day]["sinks"]
    for isp in ISPS:
        for name, ip in COLD["vmtas"]:
            sent = got.get(isp, {}).get(ip, 0)
            assert sent <= lab["cap"][name][isp], "day %d %s: %s sent %d" % (day, isp, name, sent)
        total = sum(got.get(isp, {}).get(ip, 0) for _name, ip in COLD["vmtas"])
        assert total == lab["cap"]["cl-66"][isp] + lab["cap"]["cl-67"][isp]
    assert lab["days"][day]["queued"] == {}


def test_injector_export_agrees_with_the_rendered_caps(lab):
    """The export's daily capacity of mf-n2 x coldlab is the sum of the vMTA totals PowerMTA enforces, which is
    the sum of the per-group limits; what the injector sent a day at that capacity was all delivered that day."""
    transport = lab["export"][("mf-n2", "coldlab")]
    totals = sum(per_day(lab["limits"][name][""]["max-smtp-msg-rate"][0]) for name in ("cl-66", "cl-67"))
    assert transport["daily_capacity"] == totals == sum(sum(c.values()) for c in lab["cap"].values()), transport
    for day in lab["days"]:
        assert day["injected"]["coldlab"] == transport["daily_capacity"]


def test_day_counts_agree_with_the_accounting_and_nothing_bounced_or_expired(lab):
    """The hosts' own d records, dated by the double's clock, give the same per-day counts as the sinks; no
    b record for any lab recipient, also after the clock ran past bounce-after (4d12h)."""
    after = day_start(DAYS + 5)
    for host in (WARM["host"], COLD["host"]):
        set_clock(host, after)
    time.sleep(3)  # a queued message would expire now (retry-after 10m = 10 wall s at 60x)
    by_day = collections.defaultdict(collections.Counter)
    for host in (WARM["host"], COLD["host"]):
        for row in acct_rows(host, "acct.csv*"):
            local = row.get("rcpt", "").split("@")[0]
            if not re.match(r"(wl|cl)-d\d\d-", local):
                continue
            assert row["type"] != "b", "a lab message bounced: %s" % row
            if row["type"] == "d":
                isp = next(g for g in ISPS if row["rcpt"].rsplit("@", 1)[1] in GROUPS[g]["domains"])
                by_day[row["timeLogged"][:10]][(isp, row["dlvSourceIp"])] += 1
        assert lab_queues(host) == {}
    for day in lab["days"]:
        sinks = collections.Counter({(isp, ip): n for isp, per_ip in day["sinks"].items() for ip, n in per_ip.items()})
        assert by_day[day["day"]] == sinks, (day["day"], by_day[day["day"]], sinks)


# ---------------------------------------------------------------- a blocklisted IP
def test_blocklisted_ips_send_nothing_from_the_next_step_on(lab):
    nsupdate(["update add %s 60 A 127.0.0.2" % listing(ip) for ip in LISTED]
             + ['update add %s 60 TXT "listed: warm-up lab"' % listing(ip) for ip in LISTED])
    try:
        day = DAYS + 6
        warmup_step(day_start(day))
        # the step counted the ten days' deliveries of the capped pool (its accounting is the double's)
        state = json.loads(ssh("mf-n2", "cat /etc/ansible/facts.d/pmta_warmup.fact").stdout)
        for isp in ISPS:
            pair = state["ips"]["203.0.113.66"][isp]
            assert pair.get("last_sent_at", "")[:10] >= day_start(DAYS - 1).date().isoformat(), (isp, pair)
            assert state["ips"]["203.0.113.67"][isp]["status"] == "paused", state["ips"]["203.0.113.67"][isp]
        sponsor = domain_settings(fragment("mf-n1", "wl-64"))
        assert "cold-virtual-mta" not in sponsor[""], sponsor
        assert domain_settings(fragment("mf-n2", "cl-67"))["*"]["reroute-to-virtual-mta"] == ["cl-66"]
        cl66 = domain_settings(fragment("mf-n2", "cl-66"))
        cap66 = {isp: per_day(cl66[macro(isp)]["max-msg-rate"][0]) for isp in ISPS}
        export = transports()[("mf-n2", "coldlab")]
        assert export["daily_capacity"] == per_day(cl66[""]["max-smtp-msg-rate"][0]), export
        warm = recipients(day, "wb", dict.fromkeys(ISPS, 10 * SCHEDULE[0]))
        cold = recipients(day, "cb", cap66)  # the pool round-robins: half of it is handed to the listed cl-67
        got, problems, queues = run_day(day, day_start(day), [
            (WARM["host"], WARM["pool"], warm), (COLD["host"], COLD["pool"], cold)])
        print("warm-up lab, blocklisted day: %s, queued %s" % (json.dumps(got), queues))
        for isp in ISPS:
            assert set(got.get(isp, {})) <= {"203.0.113.64", "203.0.113.66"}, (isp, got)
            assert got[isp]["203.0.113.64"] == 10 * SCHEDULE[0]
            assert got[isp]["203.0.113.66"] == cap66[isp]
        assert problems == 0 and queues == {}
        # Grafana's "Blocklisted IPs" panel shows the listings from the fact this step wrote (pmta_dnsbl.fact ->
        # pmta-metrics-collector -> node_exporter) and the paused pairs, on each host for its own IP.
        for host, ip in (("mf-n1", "203.0.113.65"), ("mf-n2", "203.0.113.67")):
            panel = panel_series(host, "Blocklisted IPs")
            assert [(s["ip"], s["zone"]) for s in panel["A"]] == [(ip, DNSBL_ZONE)], (host, panel)
            assert sorted(s["isp"] for s in panel["B"] if s["ip"] == ip) == sorted(ISPS), (host, panel)
            assert {s["ip"] for s in panel["B"]} == {ip}, (host, panel)
        listed_rows = [r for r in acct_rows("mf-n1", "acct.csv*") + acct_rows("mf-n2", "acct.csv*")
                       if r.get("dlvSourceIp") in LISTED and r.get("timeLogged", "") >= day_start(day).isoformat()[:10]]
        assert listed_rows == [], listed_rows[:3]
    finally:
        nsupdate(["update delete %s" % listing(ip) for ip in LISTED])


def test_delisted_ips_send_again_from_the_next_step_on(lab):
    """The listing is gone (the previous test removed it): the next step resumes both IPs at their stage, the
    sponsor names wl-65 again, cl-67 no longer reroutes, and the day's mail is shared as on the first ten days."""
    day = DAYS + 7
    warmup_step(day_start(day))
    sponsor = domain_settings(fragment("mf-n1", "wl-64"))
    assert sponsor[""]["cold-virtual-mta"] == ["wl-65"], sponsor
    cold_limit = {isp: per_day(sponsor[macro(isp)]["max-cold-virtual-mta-msg"][0]) for isp in ISPS}
    caps = {}
    for name in ("cl-66", "cl-67"):
        settings = domain_settings(fragment("mf-n2", name))
        assert "reroute-to-virtual-mta" not in settings.get("*", {}), settings
        caps[name] = {isp: per_day(settings[macro(isp)]["max-msg-rate"][0]) for isp in ISPS}
    # the delisted pairs hold at their stage (docs/warmup.md rule 1), so the ISP gets what it got before the pause
    assert cold_limit == lab["cold_limit"] and caps == lab["cap"], (cold_limit, caps)
    warm = recipients(day, "wr", {isp: 10 * cold_limit[isp] for isp in ISPS})
    cold = recipients(day, "cr", {isp: caps["cl-66"][isp] + caps["cl-67"][isp] for isp in ISPS})
    got, problems, queues = run_day(day, day_start(day), [
        (WARM["host"], WARM["pool"], warm), (COLD["host"], COLD["pool"], cold)])
    print("warm-up lab, day after delisting: %s, queued %s" % (json.dumps(got), queues))
    for isp in ISPS:
        assert 0 < got[isp].get("203.0.113.65", 0) <= cold_limit[isp], (isp, got)
        assert got[isp]["203.0.113.65"] + got[isp]["203.0.113.64"] == 10 * cold_limit[isp], (isp, got)
        assert 0 < got[isp].get("203.0.113.67", 0) <= caps["cl-67"][isp], (isp, got)
        assert got[isp]["203.0.113.66"] + got[isp]["203.0.113.67"] == caps["cl-66"][isp] + caps["cl-67"][isp]
    assert problems == 0 and queues == {}
    for host in ("mf-n1", "mf-n2"):
        assert panel_series(host, "Blocklisted IPs") == {"A": [], "B": []}, host
