"""host_tuning's directories: only missing or different ones are left for the role to fix."""

import grp
import os
import pwd

from ansible_collections.mailops.powermta.plugins.module_utils._host_tuning.files import directories_to_fix


def me():
    return pwd.getpwuid(os.getuid()).pw_name, grp.getgrgid(os.getgid()).gr_name


def test_a_directory_in_place_is_left_alone_others_are_listed(tmp_path):
    user, group = me()
    good = tmp_path / "good.d"
    good.mkdir()
    good.chmod(0o755)
    loose = tmp_path / "loose.d"
    loose.mkdir()
    loose.chmod(0o777)
    a_file = tmp_path / "file.d"
    a_file.write_text("not a directory\n")
    wanted = [{"path": str(p), "owner": user, "group": group, "mode": "755"}
              for p in (good, loose, a_file, tmp_path / "missing.d")]
    assert [e["path"] for e in directories_to_fix(wanted)] == [str(loose), str(a_file), str(tmp_path / "missing.d")]


def test_another_owner_is_listed(tmp_path):
    _user, group = me()
    assert directories_to_fix([{"path": str(tmp_path), "owner": "surely-not-this-user", "group": group,
                                "mode": "%04o" % (tmp_path.stat().st_mode & 0o7777)}]) != []
