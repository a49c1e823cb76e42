# Copyright: mailops.powermta contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Controller side, shared by the action plugins: plain copies of Ansible's (tagged, lazily templated) values."""

from __future__ import annotations

from ansible.template import trust_as_template


def plain(value, skip_keys=(), templar=None):
    """A plain copy: exact str, int, float, bool, list and dict (tagged strings are slow to copy, compare and
    pickle). Reading a key templates it, so keys in ``skip_keys`` (e.g. secrets) are never read. With
    ``templar``, raw values (task_vars hold them untemplated) are templated leaf by leaf.
    """
    if isinstance(value, dict):
        return {str.__str__(key) if isinstance(key, str) else key: plain(value[key], skip_keys, templar)
                for key in value if key not in skip_keys}
    if isinstance(value, (list, tuple)):
        return [plain(item, skip_keys, templar) for item in value]
    if isinstance(value, str):
        if templar is not None and ("{{" in value or "{%" in value):
            return plain(templar.template(value), skip_keys)
        return str.__str__(value)
    if isinstance(value, bool):
        return bool(value)
    if isinstance(value, int):
        return int.__int__(value)
    if isinstance(value, float):
        return float.__float__(value)
    return value


def trusted(value):
    """Strings of the collection's own YAML files (a role's defaults or vars) are templates, as when Ansible
    loads them."""
    if isinstance(value, str):
        return trust_as_template(value)
    if isinstance(value, dict):
        return {key: trusted(item) for key, item in value.items()}
    if isinstance(value, list):
        return [trusted(item) for item in value]
    return value
