# Copyright: mailops.powermta contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Which queues the warm-up step pauses and resumes (roles/warmup/tasks/configure.yml runs mailops.powermta.pmta_queue).

PRIVATE to the collection: no compatibility promise outside it. Plain Python, no Ansible imports.

A blocklisted IP with no vMTA to reroute its mail to stops at once: its queues are paused (``pmta pause queue``,
guide §6.3.23) before the new rates are loaded. The step that finds it delisted resumes them: a warming vMTA
that is not paused now, whose IP the previous state had paused at every ISP group.
"""

from __future__ import annotations


def _all_queues(vmta_name):
    """Every queue of one vMTA, as a pmta queue pattern (domain/vmta)."""
    return "*/" + vmta_name


def queues_to_pause(files):
    """``*/<vmta>`` of each warm-up file (render.render) that is paused with nowhere to reroute its mail."""
    return [_all_queues(item["vmta"]) for item in files or []
            if item.get("paused") and "reroute_to" in item and item["reroute_to"] is None]


def queues_to_resume(files, vmtas, previous_state):
    """``*/<vmta>`` of each warming vMTA not paused in this plan whose IP was paused at every ISP group before.

    ``files``: render.render's files; ``vmtas``: the host's vMTAs (``{name, ip}``); ``previous_state``: the
    warm-up state this step started from (``{ips: {ip: {isp: {status}}}}``, ``{}`` on the first step).
    """
    ips = (previous_state or {}).get("ips") or {}
    resumed = []
    for item in files or []:
        if item.get("kind") != "warming" or item.get("paused"):
            continue
        vmta = next(vmta for vmta in vmtas if vmta.get("name") == item["vmta"])
        pairs = list((ips.get(str(vmta["ip"])) or {}).values())
        if pairs and all(isinstance(pair, dict) and pair.get("status") == "paused" for pair in pairs):
            resumed.append(_all_queues(item["vmta"]))
    return resumed
