# Copyright: mailops.powermta contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The install transaction of pmta_config_install on a real directory: install, restore, commit."""

from __future__ import annotations

import grp
import os
import pwd
import stat

import pytest
from ansible_collections.mailops.powermta.plugins.module_utils._pmta_host.config_install import (
    InstallError,
    commit,
    diff_entries,
    ensure_directories,
    install,
    read_before,
    restore,
)


def spec(path, content, **kw):
    return {"dest": str(path), "content": content, "mode": "0640", **kw}


def test_install_reports_changed_per_file_and_keeps_backups(tmp_path):
    old = tmp_path / "config"
    old.write_bytes(b"old\n")
    same = tmp_path / "same.conf"
    same.write_bytes(b"same\n")
    os.chmod(same, 0o640)
    new = tmp_path / "new.conf"
    results = install([spec(old, b"new\n"), spec(same, b"same\n"), spec(new, b"fresh\n")])
    assert [r["changed"] for r in results] == [True, False, True]
    assert results[2]["created"] is True and "backup_file" not in results[2]
    assert old.read_bytes() == b"new\n" and new.read_bytes() == b"fresh\n"
    assert stat.S_IMODE(new.stat().st_mode) == 0o640
    backup = results[0]["backup_file"]
    assert backup.endswith("~") and open(backup, "rb").read() == b"old\n"
    # Idempotent: the second run changes nothing.
    again = install([spec(old, b"new\n"), spec(same, b"same\n"), spec(new, b"fresh\n")])
    assert not any(r["changed"] for r in again)


def test_restore_puts_back_old_content_and_removes_new_files(tmp_path):
    old = tmp_path / "config"
    old.write_bytes(b"old\n")
    new = tmp_path / "new.conf"
    results = install([spec(old, b"broken\n"), spec(new, b"fresh\n")])
    touched = restore(results)
    assert sorted(touched) == sorted([str(old), str(new)])
    assert old.read_bytes() == b"old\n"
    assert not new.exists()
    assert not os.path.exists(results[0]["backup_file"])
    assert restore(results) == []  # twice is harmless


def test_restore_resets_changed_mode(tmp_path):
    path = tmp_path / "config"
    path.write_bytes(b"x\n")
    os.chmod(path, 0o600)
    results = install([spec(path, b"x\n")])
    assert results[0]["changed"] and not results[0]["content_changed"]
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    restore(results)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_commit_removes_only_backups(tmp_path):
    path = tmp_path / "config"
    path.write_bytes(b"old\n")
    results = install([spec(path, b"new\n")])
    assert commit(results) == [results[0]["backup_file"]]
    assert path.read_bytes() == b"new\n"
    assert [p.name for p in tmp_path.iterdir()] == ["config"]


def test_force_false_creates_but_never_overwrites(tmp_path):
    owned = tmp_path / "warmup.conf"
    owned.write_bytes(b"max-msg-rate 100/d\n")
    os.chmod(owned, 0o600)
    missing = tmp_path / "vmta.conf"
    results = install([spec(owned, b"# stub\n", force=False), spec(missing, b"# stub\n", force=False)])
    assert [r["changed"] for r in results] == [False, True]
    assert owned.read_bytes() == b"max-msg-rate 100/d\n"
    assert stat.S_IMODE(owned.stat().st_mode) == 0o600


def test_check_mode_changes_nothing(tmp_path):
    path = tmp_path / "config"
    path.write_bytes(b"old\n")
    results = install([spec(path, b"new\n"), spec(tmp_path / "n", b"x")], check=True)
    assert [r["changed"] for r in results] == [True, True]
    assert path.read_bytes() == b"old\n" and not (tmp_path / "n").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["config"]


def test_bad_spec_fails_before_any_write(tmp_path):
    first = tmp_path / "a"
    with pytest.raises(InstallError, match="mode must be octal"):
        install([spec(first, b"x"), {"dest": str(tmp_path / "b"), "content": b"y", "mode": "rw"}])
    assert not first.exists()
    with pytest.raises(InstallError, match="absolute"):
        install([{"dest": "relative/path", "content": b"x"}])


def test_write_failure_reports_what_was_done(tmp_path):
    ok = tmp_path / "ok"
    ok.write_bytes(b"old")
    missing_dir = tmp_path / "nodir" / "file"
    with pytest.raises(InstallError) as info:
        install([spec(ok, b"new"), spec(missing_dir, b"x")])
    done = info.value.results
    assert done[0]["dest"] == str(ok) and done[0]["backup_file"]
    restore(done)
    assert ok.read_bytes() == b"old"


def test_diff_hides_secret_files(tmp_path):
    plain = tmp_path / "config"
    plain.write_bytes(b"a\n")
    secret = tmp_path / "users.conf"
    secret.write_bytes(b"password old\n")
    specs = [spec(plain, b"b\n"), spec(secret, b"password new\n", secret=True)]
    read_before(specs)
    entries = diff_entries(specs, install(specs, check=True))
    assert entries[0]["before"] == "a\n" and entries[0]["after"] == "b\n"
    assert "password" not in repr(entries[1])


def test_directories_created_and_fixed_idempotently(tmp_path):
    new = tmp_path / "a" / "b"
    loose = tmp_path / "loose"
    loose.mkdir(mode=0o777)
    os.chmod(loose, 0o777)
    # loose: made by an earlier run (in the manifest), so its mode is ours to fix.
    manifest = tmp_path / "manifest"
    manifest.write_text(str(loose) + "\n")
    specs = [{"path": str(new), "mode": "0750"}, {"path": str(loose), "mode": "0750"}]
    assert ensure_directories(specs, check=True, manifest=str(manifest)) == [
        {"path": str(new), "changed": True, "created": True}, {"path": str(loose), "changed": True, "created": False}]
    assert not new.exists()
    ensure_directories(specs, manifest=str(manifest))
    assert stat.S_IMODE(new.stat().st_mode) == 0o750 and stat.S_IMODE(loose.stat().st_mode) == 0o750
    assert not any(r["changed"] for r in ensure_directories(specs, manifest=str(manifest)))
    (tmp_path / "file").write_text("x")
    manifest.write_text(str(tmp_path / "file") + "\n")
    with pytest.raises(InstallError, match="not a directory"):
        ensure_directories([{"path": str(tmp_path / "file")}], manifest=str(manifest))


def test_a_package_directory_is_created_when_missing_and_never_changed(tmp_path):
    # force: false (e.g. node_exporter's textfile directory): an existing directory the collection did not
    # create keeps its owner and mode and refuses nothing; a missing one is created under the same rule.
    manifest = tmp_path / "manifest"
    packaged = tmp_path / "packaged"
    packaged.mkdir()
    os.chmod(packaged, 0o775)
    missing = tmp_path / "missing"
    specs = [{"path": str(packaged), "mode": "0755", "force": False},
             {"path": str(missing), "mode": "0755", "force": False}]
    assert ensure_directories(specs, check=True, manifest=str(manifest)) == [
        {"path": str(missing), "changed": True, "created": True}]
    ensure_directories(specs, manifest=str(manifest))
    assert stat.S_IMODE(packaged.stat().st_mode) == 0o775 and stat.S_IMODE(missing.stat().st_mode) == 0o755
    assert str(missing) in manifest.read_text() and str(packaged) not in manifest.read_text()
    assert ensure_directories(specs, manifest=str(manifest)) == []
    # The rule still holds for what it would create, and with force (the default) for an existing one.
    with pytest.raises(InstallError, match="system directory"):
        ensure_directories([{"path": "/nonexistent-top", "force": False}], check=True, manifest=str(manifest))
    with pytest.raises(InstallError, match="not created by mailops.powermta"):
        ensure_directories([{"path": str(packaged), "mode": "0755"}], check=True,
                           manifest=str(tmp_path / "other-manifest"))


def test_pending_marker_survives_until_commit_and_restores_to_the_oldest_state(tmp_path):
    from ansible_collections.mailops.powermta.plugins.module_utils._pmta_host.config_install import (
        clear_marker,
        read_marker,
    )
    marker = str(tmp_path / ".pending.json")
    config = tmp_path / "config"
    config.write_bytes(b"v1\n")
    startup = tmp_path / "startup.conf"
    startup.write_bytes(b"s1\n")
    os.chmod(startup, 0o640)
    assert read_marker(marker) == []
    # Run 1 installs v2 and is killed before its reload: the marker stays.
    first = install([spec(config, b"v2\n"), spec(startup, b"s1\n", restart=True)], marker=marker)
    pending = read_marker(marker)
    assert [e["dest"] for e in pending] == [str(config)] and os.path.exists(pending[0]["backup_file"])
    assert stat.S_IMODE(os.stat(marker).st_mode) == 0o600
    # Run 2 (same inventory) changes nothing, but still sees what waits for activation.
    second = install([spec(config, b"v2\n"), spec(startup, b"s1\n", restart=True)], marker=marker,
                     pending=read_marker(marker))
    assert not any(r["changed"] for r in second) and read_marker(marker) == pending
    # Run 3 changes the restart-only file too: the marker lists both runs, newest first.
    third = install([spec(config, b"v3\n"), spec(startup, b"s2\n", restart=True)], marker=marker,
                    pending=read_marker(marker))
    listed = read_marker(marker)
    assert [e["dest"] for e in listed] == [str(config), str(startup), str(config)]
    assert [e["restart"] for e in listed] == [False, True, False]
    # Its activation fails: restoring the marker's list goes back to before run 1.
    restore(listed)
    assert clear_marker(marker) is True and read_marker(marker) == []
    assert config.read_bytes() == b"v1\n" and startup.read_bytes() == b"s1\n"
    assert sorted(os.listdir(tmp_path)) == ["config", "startup.conf"]
    del first, third


def test_check_mode_writes_no_marker_and_no_backup_name(tmp_path):
    marker = tmp_path / ".pending.json"
    config = tmp_path / "config"
    config.write_bytes(b"v1\n")
    results = install([spec(config, b"v2\n")], check=True, marker=str(marker))
    assert results[0]["changed"] and "backup_file" not in results[0]
    assert not marker.exists() and config.read_bytes() == b"v1\n"


def test_unreadable_marker_is_refused_with_what_to_do(tmp_path):
    from ansible_collections.mailops.powermta.plugins.module_utils._pmta_host.config_install import read_marker
    marker = tmp_path / ".pending.json"
    marker.write_text("{not json")
    with pytest.raises(InstallError, match="check the files it guards, then remove it"):
        read_marker(str(marker))


def test_unchanged_by_read_only_when_every_path_is_proven_the_same(tmp_path, monkeypatch):
    import hashlib

    from ansible_collections.mailops.powermta.plugins.module_utils._pmta_host import config_install
    from ansible_collections.mailops.powermta.plugins.module_utils._pmta_host.state import stat_paths

    unchanged_by_read = config_install.unchanged_by_read

    me = pwd.getpwuid(os.getuid()).pw_name
    us = grp.getgrgid(os.getgid()).gr_name
    own = tmp_path / "own"
    own.mkdir()
    os.chmod(own, 0o755)
    conf = own / "metrics.json"
    conf.write_text("{}\n")
    os.chmod(conf, 0o640)
    directories = [{"path": str(own), "mode": "0755", "owner": me, "group": us},
                   {"path": str(tmp_path / "packaged"), "mode": "0755", "force": False}]
    files = [{"dest": str(conf), "content": "{}\n", "mode": "0640"}]
    defaults = {"mode": None, "owner": me, "group": us}
    (tmp_path / "packaged").mkdir()
    os.chmod(tmp_path / "packaged", 0o775)  # a package's own mode: force false leaves it
    read = stat_paths([str(own), str(tmp_path / "packaged")], [str(conf)])
    assert read[str(conf)]["checksum"] == hashlib.sha256(b"{}\n").hexdigest()
    # A directory outside the collection's prefixes: only the host's manifest says whether it is ours.
    assert not unchanged_by_read(files, directories, read, defaults)
    monkeypatch.setattr(config_install, "owned_by_name", lambda path: path == str(own))  # as under /etc/pmta
    assert unchanged_by_read(files, directories, read, defaults)
    # Each difference makes the call: content, mode, owner, a missing path, a path not read, a secret.
    assert not unchanged_by_read([dict(files[0], content="{ }\n")], directories, read, defaults)
    assert not unchanged_by_read([dict(files[0], mode="0644")], directories, read, defaults)
    assert not unchanged_by_read(files, [dict(directories[0], mode="0750")], read, defaults)
    assert not unchanged_by_read(files, directories, read, dict(defaults, owner="nobody-else"))
    assert not unchanged_by_read(files + [{"dest": str(own / "new"), "content": ""}], directories, read, defaults)
    assert not unchanged_by_read([{"dest": str(conf), "secret": True}], directories, read, defaults)
    assert not unchanged_by_read(files, directories, stat_paths([str(own), str(tmp_path / "packaged"), str(conf)]),
                                 defaults)  # no checksum read
    (tmp_path / "packaged").rmdir()
    assert not unchanged_by_read(files, directories, stat_paths([str(own), str(tmp_path / "packaged")], [str(conf)]),
                                 defaults)
