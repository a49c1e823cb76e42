# Copyright: mailops.powermta contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""We touch only what we own: the path rule (controller and host) and the module's directory step on disk."""

from __future__ import annotations

import os
import stat

import pytest
from ansible_collections.mailops.powermta.plugins.module_utils._pmta_host.config_install import (
    InstallError,
    ensure_directories,
)
from ansible_collections.mailops.powermta.plugins.module_utils._pmta_host.ownership import (
    check_paths,
    directory_problems,
    owned_by_name,
    ownership_problem,
    path_shape_problem,
    read_manifest,
)


@pytest.mark.parametrize("path", [
    "/", "/var", "/var/log", "/var/spool", "/etc", "/var/lib", "/usr/local", "/srv", "/data", "/opt",
    "/etc/ssl/private", "/var/spool/postfix",
])
def test_system_directories_are_never_ours(path):
    problem = path_shape_problem("powermta_spool_dirs[0]", path)
    assert problem.startswith("powermta_spool_dirs[0]: %s is a system directory" % path)
    assert "never creates or chowns it" in problem and "such as /var/spool/pmta" in problem


@pytest.mark.parametrize("path", ["/home/alice", "/home/alice/pmta", "/root", "/root/spool", "/proc/1", "/run/pmta"])
def test_home_directories_and_runtime_trees_are_never_ours(path):
    assert "never creates or chowns" in path_shape_problem("powermta_log_file", path)


@pytest.mark.parametrize("path,message", [
    ("var/log/pmta", "is relative"), ("/var/log/pmta/", "write /var/log/pmta/ as /var/log/pmta"),
    ("/var/log/../pmta", "write /var/log/../pmta as /var/pmta"), ("//var//log", "write //var//log as /var/log"),
    (None, "is not a path"), (5, "is not a path"),
])
def test_malformed_paths_are_refused_with_the_spelling_to_use(path, message):
    assert message in path_shape_problem("powermta_log_file", path)


@pytest.mark.parametrize("path", [
    "/var/log/pmta", "/var/spool/pmta", "/var/spool/pmta2", "/etc/pmta/dkim/example.com", "/var/log/pmta-acct",
    "/srv/pmta-spool", "/data/spool1", "/var/lib/mailops-powermta",
])
def test_directories_of_their_own_pass_the_shape_check(path):
    assert path_shape_problem("powermta_spool_dirs[0]", path) is None


def test_owned_prefixes():
    assert owned_by_name("/var/log/pmta") and owned_by_name("/var/spool/pmta3/q") and owned_by_name("/etc/pmta")
    assert not owned_by_name("/var/log") and not owned_by_name("/var/logpmta") and not owned_by_name("/etc/postfix")
    assert not owned_by_name("/srv/pmta-spool") and not owned_by_name("/var/log/nginx")


def test_check_paths_lists_every_problem_naming_the_variable():
    problems = check_paths([("powermta_log_file", "/var/log"), ("powermta_spool_dirs[1]", "/var/spool"),
                            ("powermta_spool_dirs[0]", "/var/spool/pmta")])
    assert [p.split(":")[0] for p in problems] == ["powermta_log_file", "powermta_spool_dirs[1]"]


def test_an_existing_directory_is_ours_only_by_name_or_manifest():
    assert ownership_problem("/srv/new", exists=False) is None
    assert ownership_problem("/var/spool/pmta", exists=True) is None
    assert ownership_problem("/srv/spool", exists=True, manifest_paths={"/srv/spool"}) is None
    problem = ownership_problem("/srv/spool", exists=True, variable="powermta_spool_dirs[0]")
    assert problem.startswith("powermta_spool_dirs[0]: /srv/spool already exists and was not created by mailops")
    assert "its owner and mode stay as they are" in problem


def test_a_foreign_directory_keeps_owner_and_mode_and_nothing_else_changes(tmp_path):
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    os.chmod(foreign, 0o755)
    new = tmp_path / "ours" / "spool"
    manifest = tmp_path / "manifest"
    specs = [{"path": str(new), "mode": "0750"},
             {"path": str(foreign), "mode": "0700", "variable": "powermta_log_file"}]
    with pytest.raises(InstallError, match="powermta_log_file: .*foreign already exists and was not created by"):
        ensure_directories(specs, manifest=str(manifest))
    assert stat.S_IMODE(foreign.stat().st_mode) == 0o755
    assert not new.exists() and not manifest.exists()


def test_a_system_directory_refuses_the_whole_call(tmp_path):
    new = tmp_path / "new"
    specs = [{"path": str(new), "mode": "0750"}, {"path": "/var/log", "mode": "0750", "variable": "powermta_log_file"}]
    before = os.stat("/var/log")
    with pytest.raises(InstallError, match="powermta_log_file: /var/log is a system directory"):
        ensure_directories(specs, manifest=str(tmp_path / "manifest"))
    after = os.stat("/var/log")
    assert (before.st_mode, before.st_uid, before.st_gid) == (after.st_mode, after.st_uid, after.st_gid)
    assert not new.exists()


def test_a_directory_we_created_is_recorded_and_ours_on_the_next_run(tmp_path):
    new = tmp_path / "spool1"
    manifest = tmp_path / "state" / "created-directories"
    specs = [{"path": str(new), "mode": "0750"}]
    assert ensure_directories(specs, check=True, manifest=str(manifest))[0]["created"]
    assert not manifest.exists()
    ensure_directories(specs, manifest=str(manifest))
    assert read_manifest(str(manifest)) == {str(new)}
    os.chmod(new, 0o755)
    assert ensure_directories(specs, manifest=str(manifest)) == [{"path": str(new), "changed": True, "created": False}]
    assert stat.S_IMODE(new.stat().st_mode) == 0o750
    assert read_manifest(str(manifest)) == {str(new)}


def test_directory_problems_of_a_hosts_settings():
    settings = {"powermta_log_file": "/var/log/pmta/log", "powermta_spool_dirs": ["/var/spool/pmta"],
                "powermta_dkim_key_dir": "/etc/pmta/dkim"}
    assert directory_problems(settings, [{"name": "/var/log/pmta/acct.csv"}, {"name": "|/usr/bin/x"}]) == []
    problems = directory_problems({"powermta_log_file": "/var/log/pmta.log",
                                   "powermta_spool_dirs": ["/var/spool/pmta", "/"], "powermta_dkim_key_dir": "/etc"},
                                  [{"name": "/var/log/acct.csv"}])
    assert problems == [
        "powermta_log_file (the directory of /var/log/pmta.log): /var/log is a system directory shared with other"
        " software; the collection never creates or chowns it (its owner and mode stay as they are); use a directory"
        " of its own that the collection creates, such as /var/log/pmta/log",
        "powermta_spool_dirs[1]: / is a system directory shared with other software; the collection never creates or"
        " chowns it (its owner and mode stay as they are); use a directory of its own that the collection creates,"
        " such as /var/spool/pmta",
        "powermta_dkim_key_dir: /etc is a system directory shared with other software; the collection never creates or"
        " chowns it (its owner and mode stay as they are); use a directory of its own that the collection creates,"
        " such as /etc/pmta/dkim",
        "powermta_acct_files item /var/log/acct.csv (its directory): /var/log is a system directory shared with other"
        " software; the collection never creates or chowns it (its owner and mode stay as they are); use a directory"
        " of its own that the collection creates, such as /var/log/pmta/acct.csv",
    ]
    assert "is relative" in directory_problems({"powermta_log_file": "pmta.log"})[0]
