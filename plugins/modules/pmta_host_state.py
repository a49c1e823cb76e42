#!/usr/bin/python
# Copyright: mailops.powermta contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: pmta_host_state
short_description: Read the PowerMTA package, its helpers and its services in one call
version_added: 0.1.0
description:
  - Reads, without changing anything, what the P(mailops.powermta.powermta#role) role would otherwise ask
    C(apt), C(package) and C(systemd_service) for, one call at a time. That is the name and version inside the cached
    PowerMTA C(.deb), whether that version is installed, which helper packages are installed, and whether the
    services are active and enabled. The role then calls those modules only when something is to be done, so a
    re-run with nothing to change costs one call here instead of several.
author:
  - mailops.powermta contributors (@mailops)
options:
  deb:
    description: Path of the PowerMTA C(.deb) on the host (the role's package cache). Missing file means unknown.
    type: path
  deb_src:
    description:
      - The same package on the controller. The action plugin checksums it there and passes that
        as O(deb_checksum), so RV(deb.same_as_controller) says whether a copy is needed.
    type: path
  deb_checksum:
    description: SHA-256 the cached O(deb) should have (set by the action plugin from O(deb_src)).
    type: str
  packages:
    description: Debian packages whose installed version to report.
    type: list
    elements: str
    default: []
  services:
    description: systemd units whose state to report.
    type: list
    elements: str
    default: []
  enabled:
    description: Whether the services should be enabled at boot (for RV(services_to_start)).
    type: bool
    default: true
  tls_pem:
    description: The listener's PEM (private key and certificate in one file) to describe in RV(tls).
    type: path
  dkim_keys:
    description: DKIM private key files whose public keys to return in RV(dkim_public_keys).
    type: list
    elements: path
    default: []
  group:
    description: Group whose existence RV(group_exists) reports.
    type: str
  paths:
    description:
      - Files and directories whose existence, type, mode, owner and group to report in RV(paths) (a final
        symlink is not followed), so the caller creates or removes one only when it is not as it wants.
    type: list
    elements: path
    default: []
  checksum_paths:
    description:
      - Files reported in RV(paths) like O(paths) and, when they are regular files, with their SHA-256 as
        C(checksum), so M(mailops.powermta.pmta_config_install) (its
        O(mailops.powermta.pmta_config_install#module:host_paths)) can tell without a call that nothing differs.
        Never list a secret file here.
    type: list
    elements: path
    default: []
extends_documentation_fragment:
  - mailops.powermta.attributes.read_only
"""

EXAMPLES = r"""
- name: Read the package and service state
  mailops.powermta.pmta_host_state:
    deb: /var/cache/mailops-pmta/PowerMTA-5.0r8.deb
    packages: [python3-cryptography]
    services: [pmta, pmtahttp]
  register: state
"""

RETURN = r"""
deb:
  description: The cached C(.deb), or V(null) when the file is not there.
  returned: always
  type: dict
  contains:
    package:
      description: Package name from the .deb's control file.
      type: str
    version:
      description: Version from the .deb's control file.
      type: str
    installed_version:
      description: Installed version of that package; V(null) when it is not installed.
      type: str
    current:
      description: That version is the one installed.
      type: bool
    checksum:
      description: SHA-256 of the cached file.
      type: str
    same_as_controller:
      description: The cached file is O(deb_src) (V(false) when no checksum was given).
      type: bool
packages:
  description: Installed version per package of O(packages), V(null) when not installed.
  returned: always
  type: dict
services:
  description: Per service, C(active) (bool) and C(enabled) (the word C(systemctl is-enabled) prints).
  returned: always
  type: dict
tls:
  description:
    - The O(tls_pem) file, when given. C(exists); C(readable) (false with C(error) when it cannot be parsed, e.g.
      before python3-cryptography is installed); C(common_name), C(names) (DNS subject alternative names,
      sorted), C(not_after), C(days_left) (whole days until it expires) and C(key_matches) (the key belongs to
      the certificate).
  returned: when O(tls_pem) is given
  type: dict
dkim_public_keys:
  description: Public key (PEM) per file of O(dkim_keys) that exists and could be read; the others are absent.
  returned: always
  type: dict
group_exists:
  description: Whether O(group) exists, when O(group) is given.
  returned: when O(group) is given
  type: bool
services_to_start:
  description: Services that are not active, or not enabled as O(enabled) asks.
  returned: always
  type: list
  elements: str
services_to_stop:
  description: Services that are active or enabled at boot (what a call to stop and disable them would change).
  returned: always
  type: list
  elements: str
paths:
  description:
    - Per path of O(paths), C(exists) (bool) and, when it exists, C(type) (V(file), V(directory), V(link) or
      V(other)), C(mode) (octal string such as V('0755')), C(owner) and C(group) (names; the number when unknown),
      and C(checksum) (SHA-256) for a regular file of O(checksum_paths).
  returned: always
  type: dict
os:
  description: The platform from C(/etc/os-release), without gathering facts.
  returned: always
  type: dict
  contains:
    id:
      description: C(ID), e.g. V(debian); V(null) when unknown.
      type: str
    version_id:
      description: C(VERSION_ID), e.g. V('12'); V(null) when unknown.
      type: str
"""

from ansible.module_utils.basic import AnsibleModule  # noqa: E402
from ansible_collections.mailops.powermta.plugins.module_utils._pmta_host.state import (  # noqa: E402
    group_exists,
    needs_start,
    needs_stop,
    probe,
    read_os_release,
    read_public_keys,
    read_tls_pem,
    stat_paths,
)


def main():
    module = AnsibleModule(
        argument_spec={
            "deb": {"type": "path"},
            "deb_src": {"type": "path"},
            "deb_checksum": {"type": "str"},
            "packages": {"type": "list", "elements": "str", "default": []},
            "services": {"type": "list", "elements": "str", "default": []},
            "enabled": {"type": "bool", "default": True},
            "tls_pem": {"type": "path"},
            "dkim_keys": {"type": "list", "elements": "path", "default": [], "no_log": False},  # paths, not keys
            "group": {"type": "str"},
            "paths": {"type": "list", "elements": "path", "default": []},
            "checksum_paths": {"type": "list", "elements": "path", "default": []},
        },
        supports_check_mode=True,
    )
    params = module.params

    def run(argv):
        return module.run_command(argv, environ_update={"LC_ALL": "C"})

    state = probe(run, params["deb"], params["packages"], params["services"])
    if state["deb"]:
        state["deb"]["checksum"] = module.sha256(params["deb"])
        state["deb"]["same_as_controller"] = state["deb"]["checksum"] == params["deb_checksum"]
    if params["tls_pem"]:
        state["tls"] = read_tls_pem(params["tls_pem"])
    state["dkim_public_keys"] = read_public_keys(params["dkim_keys"])
    if params["group"]:
        state["group_exists"] = group_exists(params["group"])
    state["paths"] = stat_paths(params["paths"], params["checksum_paths"])
    state["os"] = read_os_release()
    module.exit_json(changed=False, services_to_start=needs_start(state["services"], params["enabled"]),
                     services_to_stop=needs_stop(state["services"]), **state)


if __name__ == "__main__":
    main()
