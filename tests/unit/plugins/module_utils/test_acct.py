"""Accounting parser: header-driven columns, record types, since filter, corrupt lines, rotation."""

import csv
import gzip
import io
import os

import pytest
from ansible_collections.mailops.powermta.plugins.module_utils._warmup import acct as _acct
from ansible_collections.mailops.powermta.plugins.module_utils._warmup.engine import plan

DBT = ("type,timeLogged,timeQueued,orig,rcpt,orcpt,dsnAction,dsnStatus,dsnDiag,dsnMta,bounceCat,srcType,srcMta,"
       "dlvType,dlvSourceIp,dlvDestinationIp,dlvEsmtpAvailable,dlvSize,vmta,jobId,envId,queue,vmtaPool")
TQ = "type,timeLogged,dsnStatus,dsnDiag,dsnMta,dlvType,dlvSourceIp,dlvDestinationIp,vmta,queue"
F = ("type,timeLogged,repSourceIp,feedbackType,format,userAgent,envid,orig,rcpt,reportingMTA,dlvSourceIp,"
     "reportedDomain")
IP = "203.0.113.11"


def record(header, **values):
    columns = header.split(",")
    unknown = set(values) - set(columns)
    assert not unknown, unknown
    line = io.StringIO()
    csv.writer(line, lineterminator="").writerow([values.get(name, "") for name in columns])
    return line.getvalue()


def d(rcpt, time="2026-05-01 10:00:00+0000", ip=IP, vmta="mk-01", kind="d", diag="smtp;250 ok", cat="", mta=""):
    return record(DBT, type=kind, timeLogged=time, rcpt=rcpt, dsnDiag=diag, bounceCat=cat, dlvSourceIp=ip,
                  vmta=vmta, dsnMta=mta)


def write(path, lines, mtime=None):
    path.write_text("\n".join(lines) + "\n")
    if mtime is not None:
        os.utime(path, (mtime, mtime))
    return str(path)


def by_key(result):
    return {(s["ip"], s["vmta"], s["isp"]): s for s in result["stats"]}


def test_counts_per_ip_vmta_and_isp(tmp_path):
    throttle = "smtp;421-4.7.28 Our system has detected an unusual rate of unsolicited mail"
    write(tmp_path / "acct.csv", [
        DBT,
        d("a@gmail.com"), d("b@gmail.com"), d("c@Gmail.COM", vmta="mk-02"),
        d("x@gmail.com", kind="b", diag="smtp;550 5.1.1 no such user", cat="bad-mailbox"),
        d("y@yahoo.com", kind="b", cat="spam-related"), d("z@yahoo.com", kind="b", cat=""),
        d("a@gmail.com", kind="t", diag=throttle), d("a@gmail.com", kind="t", diag="smtp;451 4.3.0 try later"),
        d("q@example.com", mta="aspmx.l.google.com (192.0.2.26)"),
        d("r@example.com", mta="mx.example.com (192.0.2.30)"),
    ])
    write(tmp_path / "diag.csv", [TQ, record(TQ, type="tq", timeLogged="2026-05-01 10:00:00+0000",
                                             dsnDiag="421 4.7.0 [TSS04] Messages from 203.0.113.11 deferred",
                                             dlvSourceIp=IP, vmta="mk-01", queue="yahoo.com/mk-01")])
    write(tmp_path / "fbl.csv", [F, record(F, type="f", timeLogged="2026-05-01 11:00:00+0000",
                                           rcpt="a@gmail.com", dlvSourceIp=IP, feedbackType="abuse")])
    result = _acct.collect([str(tmp_path / "*.csv")])
    stats = by_key(result)
    gmail = stats[(IP, "mk-01", "gmail")]
    assert (gmail["sent"], gmail["delivered"], gmail["bounced"], gmail["deferred"], gmail["throttled"]) == (
        4, 3, 1, 2, 1)  # q@example.com is hosted at Google (MX) and counts as gmail
    assert gmail["bounced_by_category"] == {"bad-mailbox": 1}
    assert gmail["top_domains"][0] == {"domain": "gmail.com", "count": 5}
    assert stats[(IP, "mk-02", "gmail")]["delivered"] == 1  # domain case folded
    yahoo = stats[(IP, "mk-01", "yahoo")]
    assert (yahoo["bounced"], yahoo["deferred"], yahoo["deferred_queue"], yahoo["throttled"]) == (2, 1, 1, 1)
    assert yahoo["bounced_by_category"] == {"other": 1, "spam-related": 1}
    assert stats[(IP, "", "gmail")]["complaints"] == 1  # f records carry no vmta
    assert stats[(IP, "mk-01", "other")]["delivered"] == 1
    assert result["observations"][IP]["gmail"] == {
        "sent": 5, "delivered": 4, "bounced": 1, "deferred": 2, "complaints": 1, "throttled": 1}
    assert result["corrupt"] == 0 and result["rows"] == 12
    assert result["first_time"] == "2026-05-01 10:00:00+0000" and result["last_time"] == "2026-05-01 11:00:00+0000"


def test_columns_follow_each_files_header_and_a_later_header_row(tmp_path):
    reordered = "type,rcpt,vmta,dlvSourceIp,timeLogged"
    write(tmp_path / "a.csv", [
        reordered, "d,a@gmail.com,mk-01,%s,2026-05-01 10:00:00+0000" % IP,
        "type,timeLogged,dlvSourceIp,vmta,rcpt,bounceCat",
        "b,2026-05-01 10:00:01+0000,%s,mk-01,b@gmail.com,bad-mailbox" % IP,
    ])
    result = _acct.collect([str(tmp_path / "a.csv")])
    gmail = by_key(result)[(IP, "mk-01", "gmail")]
    assert (gmail["delivered"], gmail["bounced"], gmail["bounced_by_category"]) == (1, 1, {"bad-mailbox": 1})
    assert result["files"][0]["headers"] == 2


def test_corrupt_and_truncated_lines_are_counted_and_skipped(tmp_path):
    path = tmp_path / "acct.csv"
    good = d("a@gmail.com")
    content = "\n".join([
        "d,2026-05-01 09:00:00+0000,row-before-any-header",
        DBT, good,
        good[: len(good) // 2],            # truncated while written
        'd,"2026-05-01 10:00:00+0000,unterminated "quote" field' + "," * 30,
        "\x00" * 64,                       # zero-filled block left by a crash
        good, "",
        good[:-3],                         # last line cut short
    ])
    path.write_text(content)
    result = _acct.collect([str(path)])
    assert by_key(result)[(IP, "mk-01", "gmail")]["delivered"] == 2
    assert result["corrupt"] == 5  # before any header, truncated, bad quote, NUL block, cut short
    assert result["rows"] == result["used"] + result["corrupt"]


def test_unreadable_time_is_corrupt_when_filtering_by_time(tmp_path):
    write(tmp_path / "acct.csv", [DBT, d("a@gmail.com", time="not a time"), d("b@gmail.com")])
    result = _acct.collect([str(tmp_path / "acct.csv")], since="2026-05-01T00:00:00Z")
    assert (result["used"], result["corrupt"]) == (1, 1)


def test_since_filters_rows_in_any_utc_offset(tmp_path):
    write(tmp_path / "acct.csv", [
        DBT,
        d("a@gmail.com", time="2026-05-01 05:59:59+0000"),
        d("b@gmail.com", time="2026-05-01 06:00:00+0000"),
        d("c@gmail.com", time="2026-05-01 00:59:59-0500"),   # 05:59:59Z
        d("e@gmail.com", time="2026-05-01 01:00:00-0500"),   # 06:00:00Z
        d("f@gmail.com", time="Fri, 01 May 2026 07:00:00 +0000"),  # iso-times no
    ])
    result = _acct.collect([str(tmp_path / "acct.csv")], since="2026-05-01T06:00:00Z")
    assert (result["used"], result["before_since"], result["corrupt"]) == (3, 2, 0)


def test_files_not_modified_since_are_skipped_unread(tmp_path):
    old = write(tmp_path / "acct-old.csv", [DBT, d("a@gmail.com", time="2026-01-01 00:00:00+0000")],
                mtime=1767225600)  # 2026-01-01
    write(tmp_path / "acct.csv", [DBT, d("b@gmail.com")])
    result = _acct.collect([str(tmp_path / "acct*.csv")], since="2026-04-01T00:00:00Z")
    skipped = next(f for f in result["files"] if f["path"] == old)
    assert skipped["skipped"] and skipped["rows"] == 0
    assert result["used"] == 1


def test_rotated_and_gzipped_files_are_read_oldest_first_once(tmp_path):
    first = write(tmp_path / "acct-2026-05-01-0001.csv", [DBT, d("a@gmail.com")], mtime=1777600000)
    with gzip.open(tmp_path / "acct.csv.1.gz", "wt") as handle:
        handle.write(DBT + "\n" + d("b@yahoo.com", time="2026-05-01 11:00:00+0000") + "\n")
    os.utime(tmp_path / "acct.csv.1.gz", (1777610000, 1777610000))
    current = write(tmp_path / "acct.csv", [DBT, d("c@gmail.com", time="2026-05-01 12:00:00+0000")])
    os.symlink(current, tmp_path / "acct-link.csv")
    result = _acct.collect([str(tmp_path / "acct*"), str(tmp_path / "acct.csv")])
    assert [os.path.basename(os.path.realpath(f["path"])) for f in result["files"]] == [
        "acct-2026-05-01-0001.csv", "acct.csv.1.gz", "acct.csv"]  # the symlinked file once
    assert result["used"] == 3
    assert first == result["files"][0]["path"]


def test_other_record_types_and_filters(tmp_path):
    write(tmp_path / "acct.csv", [
        DBT, d("a@gmail.com", kind="r"), d("a@gmail.com", kind="rb"),
        d("a@gmail.com"), d("b@gmail.com", ip="203.0.113.12"), d("c@gmail.com", vmta="tx-01"),
    ])
    result = _acct.collect([str(tmp_path / "acct.csv")], ips=[IP], vmtas=["mk-01"])
    assert result["ignored_types"] == {"r": 1, "rb": 1}
    assert (result["used"], result["filtered"]) == (1, 2)
    write(tmp_path / "v6.csv", [DBT, d("a@gmail.com", ip="2001:db8::11")])
    assert _acct.collect([str(tmp_path / "v6.csv")], ips=["2001:DB8:0::11"])["used"] == 1
    with pytest.raises(_acct.AcctError, match="'mta1' is not an IPv4 or IPv6"):
        _acct.collect([str(tmp_path / "v6.csv")], ips=["mta1"])


def test_domain_tallies_stay_bounded(tmp_path):
    lines = [DBT] + [d("u@d%d.example" % n) for n in range(500)] + [d("u@gmail.com")] * 50
    write(tmp_path / "acct.csv", lines)
    stats = _acct.AcctStats(top_domains=3, domain_capacity=64)
    stats.add_file(str(tmp_path / "acct.csv"))
    assert all(len(entry.domains) <= 64 for entry in stats.keys.values())
    assert stats.result()["top_domains"][0] == {"domain": "gmail.com", "count": 50}


def test_observations_feed_the_warmup_engine(tmp_path):
    write(tmp_path / "acct.csv", [DBT] + [d("u%d@gmail.com" % n) for n in range(120)])
    result = _acct.collect([str(tmp_path / "acct.csv")])
    decisions = plan({}, result["observations"], {}, "2026-05-02T00:00:00Z", isps=["gmail"])["decisions"]
    assert decisions[0]["observed"]["delivered"] == 120


def test_isp_group_overrides_and_bad_arguments(tmp_path):
    write(tmp_path / "acct.csv", [DBT, d("a@web.de")])
    result = _acct.collect([str(tmp_path / "acct.csv")], isp_groups=[{"name": "gmx", "domains": ["web.de"]}])
    assert result["stats"][0]["isp"] == "gmx"
    with pytest.raises(_acct.AcctError, match="since must be an ISO 8601 time"):
        _acct.collect([str(tmp_path / "acct.csv")], since="last tuesday")
    with pytest.raises(_acct.AcctError, match="top_domains"):
        _acct.collect([str(tmp_path / "acct.csv")], top_domains=-1)


def test_missing_files_give_empty_result():
    result = _acct.collect(["/nonexistent/acct*.csv"])
    assert result["files"] == [] and result["stats"] == [] and result["observations"] == {}
