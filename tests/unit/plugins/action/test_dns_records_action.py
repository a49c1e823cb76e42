# Copyright: mailops.powermta contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The dns_records action plugin: its result hides no_log values as a module's does."""

from __future__ import annotations

from ansible_collections.mailops.powermta.plugins.action.dns_records import _censored

SECRET = "c2VjcmV0LWJ1dC13cm9uZy0xMjM0NTY3ODkwMTIzNDU2Nzg="


def result(msg="ok", value="v=spf1 -all"):
    return {"changed": True, "msg": msg, "kept": [],
            "changes": [{"zone": "example.com.", "name": "example.com.", "type": "TXT", "action": "create",
                         "after": {"ttl": 3600, "values": [value]}}]}


def test_result_without_a_secret_is_returned_as_is():
    outcome = result()
    assert _censored(outcome, {SECRET}) is outcome


def test_a_secret_anywhere_in_the_result_is_masked():
    for outcome in (result(msg="key %s rejected" % SECRET), result(value="x" + SECRET)):
        censored = _censored(outcome, {SECRET})
        assert SECRET not in repr(censored) and "********" in repr(censored)
    quoted = 'a"b\\c'
    assert quoted not in repr(_censored(result(msg="secret %s" % quoted), {quoted}))
