# Copyright: mailops.powermta contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""HTTP fetcher of the host commands (check_pmta, pmta-metrics-collector): standard library only.

Installed next to _monitoring/health.py by the monitoring role and passed to it as ``fetch``; the
pmta_health module passes one over Ansible's open_url instead (plugins/module_utils must not
call urllib's opener directly).
"""

from __future__ import annotations

import ssl
import urllib.request


def fetch(url, headers, timeout, validate_certs=True, max_bytes=8 * 1024 * 1024):
    """GET ``url``; returns at most ``max_bytes`` of the body. Raises what urllib raises."""
    request = urllib.request.Request(url, headers=headers)
    context = None
    if not validate_certs and url.startswith("https:"):
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    with urllib.request.urlopen(request, timeout=timeout, context=context) as response:  # noqa: S310 - http(s) only
        return response.read(max_bytes)
