# Copyright: mailops.powermta contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Retiring vMTAs (playbooks/retire_ip.yml): a vMTA item with ``retire: true`` leaves its pool and hands its mail on.

The fleet model decides, the templates print: a retiring vMTA keeps its <virtual-mta> block (its queued mail and
its IP's DNS records stay until the item is removed) but is no pool's member any more, so nothing new is routed to it
through its pool, and it is no warm-up vMTA any more. Its mail is rerouted to a peer of the same pool on the same
host: PowerMTA reroutes only to a vMTA of its own configuration, never to a pool (guide §3.3.10.49
reroute-to-virtual-mta: "A reroute to a VirtualMTA pool is not supported"), rendered as a ``<domain *>`` block of
the vMTA. Warm peers come first (a warming peer is capped by its warm-up rates); without any peer on the host the
vMTA delivers its own queue from its own IP (``reroute_to`` None) and the playbook waits for it.
"""

from __future__ import annotations

from .derived import is_warming

REROUTE = "reroute-to-virtual-mta"


def retire_vmtas(vmtas):
    """``vmtas`` (one host's checked items) with every ``retire: true`` item made a retiring vMTA.

    A retiring item loses ``pool`` and ``warmup`` and gains ``retiring_from_pool`` (its pool, or None) and
    ``reroute_to`` (the peer its mail goes to, or None); with a peer, its ``domains`` get ``<domain *>`` with
    ``reroute-to-virtual-mta PEER`` (merged into a ``*`` item the user gave). Other items are returned as given.
    """
    staying = [vmta for vmta in vmtas if vmta.get("retire") is not True]
    result = []
    for vmta in vmtas:
        if vmta.get("retire") is not True:
            result.append(vmta)
            continue
        pool = vmta.get("pool")
        peers = [peer for peer in staying if pool and peer.get("pool") == pool]
        peers.sort(key=is_warming)  # warm peers first, order kept otherwise
        target = peers[0]["name"] if peers else None
        retiring = {key: value for key, value in vmta.items() if key not in ("pool", "warmup")}
        retiring.update(retiring_from_pool=pool, reroute_to=target)
        if target:
            domains = [dict(domain) for domain in vmta.get("domains") or []]
            star = next((domain for domain in domains if domain.get("name") == "*"), None)
            if star is None:
                star = {"name": "*"}
                domains.append(star)
            star["directives"] = dict(star.get("directives") or {}, **{REROUTE: target})
            retiring["domains"] = domains
        result.append(retiring)
    return result
