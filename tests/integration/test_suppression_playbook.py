# Copyright: mailops.powermta contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""playbooks/suppression.yml for real: two hosts (local connection, each its own accounting directory and
cursor) -> pmta_suppression read on each, one export on the controller, cursors saved on the hosts.
The CSV holds exactly the hard bounces, complaints and fleet-wide repeated soft bounces, once per address;
a second run changes nothing; --check --diff shows new rows and writes nothing; rotation loses nothing."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
PLAYBOOK = ROOT / "playbooks" / "suppression.yml"
ANSIBLE_PLAYBOOK = ROOT / ".venv" / "bin" / "ansible-playbook"

B_HEADER = ("type,timeLogged,timeQueued,orig,rcpt,orcpt,dsnAction,dsnStatus,dsnDiag,dsnMta,bounceCat,srcType,"
            "srcMta,dlvType,dlvSourceIp,dlvDestinationIp,dlvEsmtpAvailable,dlvSize,vmta,jobId,envId,queue,vmtaPool")
F_HEADER = ("type,timeLogged,repSourceIp,feedbackType,format,userAgent,envid,orig,rcpt,reportingMTA,dlvSourceIp,"
            "reportedDomain")


def b_row(kind, when, rcpt, category):
    return (f"{kind},{when},{when},bounce@bounces.example.com,{rcpt},,failed,5.1.1,smtp;550 5.1.1 unknown,"
            f"mx.test (198.18.1.2),{category},smtp,inj,smtp,203.0.113.10,198.18.1.2,8BITMIME,1234,tx-01,,,,")


def f_row(when, rcpt):
    return f"f,{when},203.0.113.10,abuse,arf,FBL/1.0,,bounce@bounces.example.com,{rcpt},fbl.test,198.18.1.3,example.com"


def append(path, lines):
    with open(path, "a", encoding="utf-8", newline="") as handle:
        handle.write("".join(line + "\r\n" for line in lines))


def inventory(tmp_path):
    hosts = {}
    for number, name in enumerate(("pmta1", "pmta2"), start=1):
        log = tmp_path / name / "log"
        log.mkdir(parents=True)
        hosts[name] = {
            "ansible_connection": "local", "ansible_python_interpreter": sys.executable, "ansible_become": False,
            "suppression_state_dir": str(tmp_path / name / "state"),
            "powermta_default_acct_files": [],
            "powermta_acct_files": [
                {"name": str(log / "acct.csv"), "records": ["d", "b"],
                 "directives": {"max-size": "250M", "move-to": str(tmp_path / name / "archive")}},
                {"name": str(log / "diag.csv"), "records": ["t", "tq"]},
                {"name": str(log / "fbl.csv"), "records": ["f"]},
            ],
            "powermta_vmtas": [{"name": "tx-0%d" % number, "ip": "203.0.113.1%d" % number,
                                "hostname": "mta1%d.example.com" % number, "pool": "transactional"}],
        }
        (tmp_path / name / "archive").mkdir()
    data = {"all": {"vars": {"powermta_pools": [{"name": "transactional", "traffic": "transactional"}]},
                    "children": {"pmta_fleet": {"hosts": hosts}}}}
    path = tmp_path / "hosts.yml"
    path.write_text(yaml.safe_dump(data))
    return path


def play(inventory_path, *extra, expect_rc=0):
    env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), ANSIBLE_NOCOLOR="1")
    completed = subprocess.run([str(ANSIBLE_PLAYBOOK), "-i", str(inventory_path), str(PLAYBOOK), *extra],
                               cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert completed.returncode == expect_rc, completed.stdout[-4000:] + completed.stderr[-2000:]
    return completed.stdout


def changed_count(output):
    return sum(int(part.split("=")[1]) for part in output.split() if part.startswith("changed="))


def export_rows(path):
    with open(path, newline="") as handle:
        return {row["email"]: (row["reason"], row["category"], row["first_seen"], row["last_seen"], row["count"])
                for row in csv.DictReader(handle)}


def test_fleet_export_is_incremental_idempotent_and_checkable(tmp_path):
    inventory_path = inventory(tmp_path)
    dest = tmp_path / "export" / "suppression.csv"
    dest.parent.mkdir()
    extra = ("-e", "suppression_export_file=%s" % dest)
    acct1 = tmp_path / "pmta1" / "log" / "acct-2026-05-01-0000.csv"
    acct2 = tmp_path / "pmta2" / "log" / "acct-2026-05-01-0000.csv"
    append(acct1, [B_HEADER,
                   b_row("d", "2026-05-01 10:00:00+0000", "fine@gmail.test", ""),
                   b_row("b", "2026-05-01 10:00:01+0000", "unknown1@gmail.test", "bad-mailbox"),
                   b_row("b", "2026-05-01 10:00:02+0000", "blocked@gmail.test", "policy-related"),
                   b_row("b", "2026-05-01 10:00:03+0000", "full@yahoo.test", "quota-issues"),
                   b_row("b", "2026-05-01 11:00:03+0000", "full@yahoo.test", "quota-issues")])
    append(acct2, [B_HEADER,
                   b_row("b", "2026-05-02 09:00:00+0000", "Unknown1@gmail.test", "bad-mailbox"),
                   b_row("b", "2026-05-02 09:00:01+0000", "full@yahoo.test", "quota-issues"),
                   b_row("b", "2026-05-02 09:00:02+0000", "once@yahoo.test", "quota-issues")])
    append(tmp_path / "pmta2" / "log" / "fbl-2026-05-01-0000.csv",
           [F_HEADER, f_row("2026-05-02 10:00:00+0000", "complain1@yahoo.test")])

    output = play(inventory_path, *extra, "-e", "suppression_soft_window_days=36500")
    assert "3 addresses (3 added" in output
    assert export_rows(dest) == {
        "unknown1@gmail.test": ("hard-bounce", "bad-mailbox", "2026-05-01T10:00:01Z", "2026-05-02T09:00:00Z", "2"),
        "complain1@yahoo.test": ("complaint", "abuse", "2026-05-02T10:00:00Z", "2026-05-02T10:00:00Z", "1"),
        # two soft bounces on pmta1 and one on pmta2: three over the fleet
        "full@yahoo.test": ("soft-bounce", "quota-issues", "2026-05-01T10:00:03Z", "2026-05-02T09:00:01Z", "3"),
    }
    assert dest.stat().st_mode & 0o777 == 0o640
    for name in ("pmta1", "pmta2"):
        assert (tmp_path / name / "state" / "suppression-state.json").stat().st_mode & 0o777 == 0o640

    # nothing new: nothing changes anywhere
    assert changed_count(play(inventory_path, *extra, "-e", "suppression_soft_window_days=36500")) == 0

    # PowerMTA moves the full file (move-to) and starts the next one; a new hard bounce arrives in each
    append(acct1, [b_row("b", "2026-05-03 08:00:00+0000", "late@gmail.test", "inactive-mailbox")])
    os.rename(acct1, tmp_path / "pmta1" / "archive" / acct1.name)
    append(tmp_path / "pmta1" / "log" / "acct-2026-05-03-0001.csv",
           [B_HEADER, b_row("b", "2026-05-03 09:00:00+0000", "unknown1@gmail.test", "bad-mailbox")])
    before = dest.read_text()
    check = play(inventory_path, *extra, "-e", "suppression_soft_window_days=36500", "--check", "--diff")
    assert changed_count(check) >= 1 and "+late@gmail.test,hard-bounce" in check
    assert dest.read_text() == before
    play(inventory_path, *extra, "-e", "suppression_soft_window_days=36500")
    rows = export_rows(dest)
    assert rows["late@gmail.test"] == ("hard-bounce", "inactive-mailbox", "2026-05-03T08:00:00Z",
                                       "2026-05-03T08:00:00Z", "1")
    assert rows["unknown1@gmail.test"][3:] == ("2026-05-03T09:00:00Z", "3")
    assert len(rows) == 4


def test_without_an_export_file_it_fails_before_reading_a_host(tmp_path):
    output = play(inventory(tmp_path), expect_rc=2)
    assert "suppression_export_file must be an absolute path" in output
    assert "Read the new bounce" not in output
