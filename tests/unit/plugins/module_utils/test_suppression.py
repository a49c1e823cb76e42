# Copyright: mailops.powermta contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Suppression export on recorded accounting rows (field order of PowerMTA's §11.2.3, §11.2.7, §11.2.8)."""

from __future__ import annotations

import calendar
import csv
import io
import os
import time

import pytest
from ansible_collections.mailops.powermta.plugins.module_utils._operations import suppression as sup

# Recorded rows, as PowerMTA writes them (the b header is the default d,b file's; rb and f per the guide).
B_HEADER = ("type,timeLogged,timeQueued,orig,rcpt,orcpt,dsnAction,dsnStatus,dsnDiag,dsnMta,bounceCat,srcType,"
            "srcMta,dlvType,dlvSourceIp,dlvDestinationIp,dlvEsmtpAvailable,dlvSize,vmta,jobId,envId,queue,vmtaPool")
RB_HEADER = "type,timeLogged,orig,rcpt,orcpt,dsnAction,dsnStatus,dsnDiag,dsnMta,dsnReportingMta,bounceCat,srcType,"\
            "srcMta,envId,format"
F_HEADER = "type,timeLogged,repSourceIp,feedbackType,format,userAgent,envid,orig,rcpt,reportingMTA,dlvSourceIp,"\
           "reportedDomain"
NOW = calendar.timegm((2026, 5, 3, 12, 0, 0))


def b_row(kind, when, rcpt, category, diag="smtp;550 5.1.1 unknown user"):
    return (f'{kind},{when},{when},bounce@bounces.example.com,{rcpt},,failed,5.1.1 (bad destination mailbox address),'
            f'"{diag}",mx.gmail.test (198.18.1.2),{category},smtp,inj.example.com (198.18.0.1),smtp,203.0.113.10,'
            f'198.18.1.2,"ENHANCEDSTATUSCODES,8BITMIME",1234,tx-01,job1,,gmail.test/tx-01,transactional')


def d_row(when, rcpt):
    return (f"d,{when},{when},bounce@bounces.example.com,{rcpt},,relayed,2.0.0 (success),smtp;250 ok,"
            f'mx.gmail.test (198.18.1.2),,smtp,inj.example.com (198.18.0.1),smtp,203.0.113.10,198.18.1.2,"8BITMIME",'
            f"1234,tx-01,job1,,gmail.test/tx-01,transactional")


def rb_row(when, rcpt, category):
    return (f'rb,{when},bounce@bounces.example.com,{rcpt},,failed,5.2.1 (mailbox disabled),"smtp;550 5.2.1 disabled",'
            f"mx.yahoo.test (198.18.1.3),mx.yahoo.test,{category},smtp,mta10.example.com,,dsn")


def f_row(when, rcpt, feedback="abuse"):
    return f"f,{when},203.0.113.10,{feedback},arf,Yahoo-FBL/1.0,,bounce@bounces.example.com,{rcpt},fbl.yahoo.test,"\
           f"198.18.1.3,example.com"


def write(path, lines, mode="a"):
    with open(path, mode, encoding="utf-8", newline="") as handle:
        handle.write("".join(line + "\r\n" for line in lines))


def read(state, tmp_path, pattern="*.csv", **kwargs):
    kwargs.setdefault("now", NOW)
    result = sup.read_host(state, [str(tmp_path / pattern)], **kwargs)
    return result, result["state"]


FRESH = {"version": 1, "files": {}, "soft": {}}


def test_categories_hard_complaint_soft_and_sender_side(tmp_path):
    write(tmp_path / "acct-2026-05-01-0000.csv", [
        B_HEADER,
        d_row("2026-05-01 10:00:00+0000", "ok@gmail.test"),
        b_row("b", "2026-05-01 10:00:01+0000", "Unknown1@Gmail.TEST", "bad-mailbox"),
        b_row("b", "2026-05-01 10:00:02+0000", "gone@gmail.test", "inactive-mailbox"),
        b_row("b", "2026-05-01 10:00:03+0000", "x@nodomain.test", "bad-domain"),
        b_row("b", "2026-05-01 10:00:04+0000", "spamblock@gmail.test", "spam-related", "smtp;550 5.7.1 spam"),
        b_row("b", "2026-05-01 10:00:05+0000", "policy@gmail.test", "policy-related"),
        b_row("b", "2026-05-01 10:00:06+0000", "full@gmail.test", "quota-issues"),
    ])
    write(tmp_path / "remote-bounces-2026-05-01-0000.csv", [RB_HEADER, rb_row("2026-05-01 11:00:00-0500",
                                                                              "late@yahoo.test", "inactive-mailbox")])
    write(tmp_path / "fbl-2026-05-01-0000.csv", [F_HEADER, f_row("2026-05-01 12:00:00+0000", "complain1@yahoo.test")])
    result, _state = read(FRESH, tmp_path)
    assert result["events"] == {
        "unknown1@gmail.test": ["hard-bounce", "bad-mailbox", "2026-05-01T10:00:01Z", "2026-05-01T10:00:01Z", 1],
        "gone@gmail.test": ["hard-bounce", "inactive-mailbox", "2026-05-01T10:00:02Z", "2026-05-01T10:00:02Z", 1],
        "x@nodomain.test": ["hard-bounce", "bad-domain", "2026-05-01T10:00:03Z", "2026-05-01T10:00:03Z", 1],
        # rb time in -0500 is normalised to UTC
        "late@yahoo.test": ["hard-bounce", "inactive-mailbox", "2026-05-01T16:00:00Z", "2026-05-01T16:00:00Z", 1],
        "complain1@yahoo.test": ["complaint", "abuse", "2026-05-01T12:00:00Z", "2026-05-01T12:00:00Z", 1],
    }
    assert result["soft"] == {"full@gmail.test": ["quota-issues", "2026-05-01T10:00:06Z", "2026-05-01T10:00:06Z", 1]}
    assert result["corrupt"] == 0
    assert result["rows"] == 9


def test_unix_time_and_rfc822_times():
    assert sup.utc_text("1777629600") == "2026-05-01T10:00:00Z"
    assert sup.utc_text("Fri, 01 May 2026 12:00:00 +0200") == "2026-05-01T10:00:00Z"
    assert sup.utc_text("yesterday") is None


def test_second_read_without_new_records_reads_nothing_and_keeps_the_state(tmp_path):
    write(tmp_path / "acct.csv", [B_HEADER, b_row("b", "2026-05-01 10:00:01+0000", "u1@gmail.test", "bad-mailbox")])
    first, state = read(FRESH, tmp_path)
    second, state2 = read(state, tmp_path)
    assert first["events"] and not second["events"]
    assert second["bytes"] == 0
    assert second["state_text"] == first["state_text"]


def test_appended_rows_only_and_partial_last_line_waits(tmp_path):
    path = tmp_path / "acct.csv"
    write(path, [B_HEADER, b_row("b", "2026-05-01 10:00:01+0000", "u1@gmail.test", "bad-mailbox")])
    _first, state = read(FRESH, tmp_path)
    line = b_row("b", "2026-05-01 10:00:02+0000", "u2@gmail.test", "bad-mailbox")
    with open(path, "a", encoding="utf-8", newline="") as handle:
        handle.write(line[:40])  # PowerMTA is still writing this line
    second, state = read(state, tmp_path)
    assert second["events"] == {} and second["corrupt"] == 0
    with open(path, "a", encoding="utf-8", newline="") as handle:
        handle.write(line[40:] + "\r\n")
    third, _state = read(state, tmp_path)
    assert list(third["events"]) == ["u2@gmail.test"]


def test_rotation_by_max_size_and_move_to_loses_and_repeats_nothing(tmp_path):
    live, archive = tmp_path / "log", tmp_path / "archive"
    live.mkdir()
    archive.mkdir()
    patterns = sup.acct_patterns([{"name": str(live / "acct.csv"), "records": ["d", "b"],
                                   "directives": {"move-to": str(archive)}}])
    assert patterns == [str(live / "acct*.csv"), str(archive / "acct*.csv")]
    first_file = live / "acct-2026-05-01-0000.csv"
    write(first_file, [B_HEADER, b_row("b", "2026-05-01 10:00:01+0000", "u1@gmail.test", "bad-mailbox")])
    result = sup.read_host(FRESH, patterns, now=NOW)
    assert list(result["events"]) == ["u1@gmail.test"]
    # more rows, then PowerMTA moves the file (same volume: same inode, §3.3.11.2) and starts the next one
    write(first_file, [b_row("b", "2026-05-01 10:00:02+0000", "u2@gmail.test", "bad-mailbox")])
    os.rename(first_file, archive / first_file.name)
    later_row = b_row("b", "2026-05-01 10:00:03+0000", "u3@gmail.test", "bad-domain")
    write(live / "acct-2026-05-01-0001.csv", [B_HEADER, later_row])
    result = sup.read_host(result["state"], patterns, now=NOW)
    assert sorted(result["events"]) == ["u2@gmail.test", "u3@gmail.test"]
    # delete-after removed the old file: it leaves the state, nothing is read again
    os.unlink(archive / first_file.name)
    result = sup.read_host(result["state"], patterns, now=NOW)
    assert result["events"] == {} and len(result["state"]["files"]) == 1


def test_a_file_replaced_on_the_same_path_is_read_from_the_start(tmp_path):
    path = tmp_path / "acct.csv"
    write(path, [B_HEADER] + [b_row("b", "2026-05-01 10:00:01+0000", "u%d@gmail.test" % i, "bad-mailbox")
                              for i in range(3)])
    _first, state = read(FRESH, tmp_path)
    write(path, [B_HEADER, b_row("b", "2026-05-02 10:00:01+0000", "new@gmail.test", "bad-mailbox")], mode="w")
    second, _state = read(state, tmp_path)
    assert list(second["events"]) == ["new@gmail.test"]


def test_corrupt_rows_are_counted_and_skipped(tmp_path):
    write(tmp_path / "acct.csv", [
        B_HEADER,
        b_row("b", "2026-05-01 10:00:01+0000", "u1@gmail.test", "bad-mailbox")[:60],  # truncated: wrong width
        'b,"2026-05-01 10:00:0\x00',  # not CSV
        b_row("b", "not a time", "u2@gmail.test", "bad-mailbox"),
        b_row("b", "2026-05-01 10:00:03+0000", "no-address", "bad-mailbox"),
        b_row("b", "2026-05-01 10:00:04+0000", "u3@gmail.test", "bad-mailbox"),
    ])
    result, _state = read(FRESH, tmp_path)
    assert list(result["events"]) == ["u3@gmail.test"]
    assert result["corrupt"] == 4


def test_duplicates_across_hosts_merge_into_one_row(tmp_path):
    hosts = []
    for name, when in (("pmta1", "2026-05-01 10:00:00+0000"), ("pmta2", "2026-05-02 09:00:00+0000")):
        folder = tmp_path / name
        folder.mkdir()
        write(folder / "acct.csv", [B_HEADER, b_row("b", when, "u1@gmail.test", "bad-mailbox"),
                                    b_row("b", when, "quota@gmail.test", "quota-issues")])
        write(folder / "fbl.csv", [F_HEADER, f_row(when, "U1@gmail.test")])
        hosts.append(read(FRESH, folder)[0])
    rows = {}
    added, updated = sup.merge(rows, hosts, soft_threshold=2)
    assert rows == {
        "u1@gmail.test": ["complaint", "abuse", "2026-05-01T10:00:00Z", "2026-05-02T09:00:00Z", 4],
        # one soft bounce per host: two over the fleet reach the threshold
        "quota@gmail.test": ["soft-bounce", "quota-issues", "2026-05-01T10:00:00Z", "2026-05-02T09:00:00Z", 2],
    }
    assert (added, updated) == (2, 1)


def test_soft_bounces_need_the_threshold_within_the_window(tmp_path):
    write(tmp_path / "acct.csv", [B_HEADER] + [
        b_row("b", "2026-04-20 10:00:00+0000", "old@gmail.test", "quota-issues"),  # outside 7 days
        b_row("b", "2026-05-01 10:00:00+0000", "old@gmail.test", "quota-issues"),
        b_row("b", "2026-05-01 10:00:00+0000", "two@gmail.test", "quota-issues"),
        b_row("b", "2026-05-02 10:00:00+0000", "two@gmail.test", "message-expired"),
    ])
    result, state = read(FRESH, tmp_path)
    assert result["soft"]["old@gmail.test"][3] == 1
    rows = {}
    sup.merge(rows, [result], soft_threshold=2)
    assert rows == {"two@gmail.test": ["soft-bounce", "message-expired", "2026-05-01T10:00:00Z",
                                       "2026-05-02T10:00:00Z", 2]}
    # the window is kept on the host between reads, so a third bounce next week still counts the earlier ones
    write(tmp_path / "acct.csv", [b_row("b", "2026-05-03 10:00:00+0000", "old@gmail.test", "quota-issues")])
    result, _state = read(state, tmp_path)
    assert result["soft"]["old@gmail.test"] == ["quota-issues", "2026-05-01T10:00:00Z", "2026-05-03T10:00:00Z", 2]
    # and it ages out
    later, _state = read(state, tmp_path, now=NOW + 30 * 86400)
    assert later["soft"] == {}


def test_export_writes_atomically_is_idempotent_and_check_mode_writes_nothing(tmp_path):
    write(tmp_path / "acct.csv", [B_HEADER, b_row("b", "2026-05-01 10:00:01+0000", "u1@gmail.test", "bad-mailbox")])
    write(tmp_path / "fbl.csv", [F_HEADER, f_row("2026-05-01 12:00:00+0000", "c1@yahoo.test")])
    result, state = read(FRESH, tmp_path)
    dest = tmp_path / "out" / "suppression.csv"
    with pytest.raises(sup.SuppressionError, match="does not exist"):
        sup.export(str(dest), [result])
    dest.parent.mkdir()
    checked = sup.export(str(dest), [result], check_mode=True)
    assert checked["changed"] and not dest.exists()
    assert "u1@gmail.test,hard-bounce" in checked["diff"]["after"]
    written = sup.export(str(dest), [result])
    assert written["changed"] and written["rows"] == 2 and oct(dest.stat().st_mode & 0o777) == "0o640"
    rows = list(csv.reader(io.StringIO(dest.read_text())))
    assert rows == [list(sup.CSV_COLUMNS),
                    ["c1@yahoo.test", "complaint", "abuse", "2026-05-01T12:00:00Z", "2026-05-01T12:00:00Z", "1"],
                    ["u1@gmail.test", "hard-bounce", "bad-mailbox", "2026-05-01T10:00:01Z", "2026-05-01T10:00:01Z",
                     "1"]]
    mtime = dest.stat().st_mtime_ns
    time.sleep(0.01)
    again, _state = read(state, tmp_path)
    second = sup.export(str(dest), [again])
    assert not second["changed"] and dest.stat().st_mtime_ns == mtime
    assert second["diff"] == {"before": "", "after": "", "before_header": str(dest), "after_header": str(dest)}


def test_export_refuses_a_file_that_is_not_an_export(tmp_path):
    dest = tmp_path / "list.csv"
    dest.write_text("address\nsomeone@example.com\n")
    with pytest.raises(sup.SuppressionError, match="choose another suppression_export_file"):
        sup.export(str(dest), [])


def test_acct_patterns_only_files_with_suppressing_records():
    files = [
        {"name": "/var/log/pmta/acct.csv", "records": ["d", "b"], "directives": {"max-size": "250M"}},
        {"name": "/var/log/pmta/diag.csv", "records": ["t", "tq"]},
        {"name": "/var/log/pmta/fbl.csv", "records": ["f"], "enabled": False},
        {"name": "/var/log/pmta/remote-bounces.csv", "records": ["rb"]},
        {"name": "|/usr/local/bin/acct-pipe", "records": ["b"]},
    ]
    assert sup.acct_patterns(files) == ["/var/log/pmta/acct*.csv", "/var/log/pmta/remote-bounces*.csv"]


def test_normalize_email():
    assert sup.normalize_email(" <User@Example.COM> ") == "user@example.com"
    for bad in ("", "user", "@example.com", "user@", "a b@example.com"):
        assert sup.normalize_email(bad) is None


def test_small_blocks_read_the_same_rows(tmp_path):
    from ansible_collections.mailops.powermta.plugins.module_utils._warmup import acct as _acct
    from ansible_collections.mailops.powermta.plugins.module_utils._warmup import acct_tail as _acct_tail

    write(tmp_path / "acct.csv", [B_HEADER] + [b_row("b", "2026-05-01 10:00:01+0000", "u%d@gmail.test" % i,
                                                     "bad-mailbox") for i in range(50)])
    seen = []

    def consume(_path, lines, header):
        counts = {"rows": 0, "corrupt": 0, "header": header}
        seen.extend(values[0] for _kind, values in _acct.iter_records(lines, ("b",), ("rcpt", "vmta"), counts, header))
        return counts["header"]

    state, summary = _acct_tail.tail({}, [str(tmp_path / "*.csv")], consume, block_bytes=700)
    assert seen == ["u%d@gmail.test" % i for i in range(50)]
    assert summary["bytes"] == (tmp_path / "acct.csv").stat().st_size


def test_a_stray_quote_costs_only_its_own_line():
    from ansible_collections.mailops.powermta.plugins.module_utils._warmup import acct as _acct

    lines = ["type,rcpt,vmta\r\n", "b,a@x.test,v\r\n", 'b,"cut off by a crash\r\n', "b,b@x.test,v\r\n",
             "b,c@x.test\r\n", 'b,"multi\r\n', 'line",v\r\n', "b,d@x.test,v\r\n"]
    counts = {"rows": 0, "corrupt": 0}
    rows = [values for _kind, values in _acct.iter_records(lines, ("b",), ("rcpt", "vmta"), counts)]
    assert rows == [("a@x.test", "v"), ("b@x.test", "v"), ("multi\r\nline", "v"), ("d@x.test", "v")]
    assert counts["corrupt"] == 2
