# Copyright: mailops.powermta contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Whole-config checks of the linter: reachability, shared IPs, macro loops, cold vMTAs, pools, security.

PRIVATE to the collection: no compatibility promise outside it.
Standard library only (the PowerMTA test double imports this package standalone).

A mixin of ``lint._Linter``: the methods run after the main pass has collected
vMTAs, pools, macros and references, and report through ``self.error`` /
``self.warning``.
"""

from __future__ import annotations

import os

from .exposure import is_wide
from .findings import Finding
from .parser import Directive
from .values import network_of

_TRUE = frozenset({"yes", "true"})


def _reroutes(limits):
    """True when a max-cold-virtual-mta-msg list moves any message (0/d, the default, moves none)."""
    return any(item.strip().split("/", 1)[0] not in ("0", "", '""') for item in limits.split(","))


class WholeConfigChecks:
    """Checks over the whole parsed config (see the module docstring)."""

    def _unreachable_vmtas(self, root):
        """A vMTA nothing can route mail to: no pool, default, pattern-list or reroute names it,
        and no source lets the injector pick it (process-x-virtual-mta, by-smtp-source-ip)."""
        for source in root.blocks("source"):
            for directive in source.directives():
                if directive.name == "process-x-virtual-mta" and directive.value.lower() in _TRUE:
                    return
                if directive.name == "default-virtual-mta" and directive.value == "by-smtp-source-ip":
                    return
        named = {
            name
            for kind, name, _node, scope in self.references
            if kind in ("vmta", "vmta-or-pool") and (scope is None or scope.tag != "virtual-mta-pool")
        }
        via_pool = set()
        for pool in self.pools.values():
            if pool.arg in named:
                via_pool.update(d.value for d in pool.directives("virtual-mta"))
        for name, block in self.vmtas.items():
            if name not in named and name not in via_pool:
                self.warning(
                    block,
                    "<virtual-mta %s> is unreachable: nothing routes mail to it" % name,
                    "name it in default-virtual-mta, a pool or a pattern-list, or set process-x-virtual-mta yes "
                    "in the injecting <source>",
                    "unreachable-vmta",
                )

    def _shared_source_ips(self):
        # A backoff/reroute twin on the same IP is a common, deliberate pattern.
        twins = set()
        for _kind, name, node, scope_block in self.references:
            if isinstance(node, Directive) and node.name in (
                "backoff-reroute-to-virtual-mta",
                "reroute-to-virtual-mta",
            ):
                owner = scope_block
                while owner is not None and owner.tag != "virtual-mta":
                    owner = owner.parent
                if owner is not None:
                    twins.add(frozenset((owner.arg, name)))
        for address, users in self.source_hosts.items():
            first_vmta, first_node = users[0]
            for vmta, node in users[1:]:
                if vmta == first_vmta or frozenset((first_vmta, vmta)) in twins:
                    continue
                self.warning(
                    node,
                    "source IP %s is also used by <virtual-mta %s> (%s line %d)"
                    % (address, first_vmta, os.path.basename(first_node.file), first_node.line),
                    "give each vMTA its own IP unless the sharing is deliberate (e.g. a backoff vMTA)",
                    "duplicate-source-ip",
                )

    def _macro_checks(self):
        """Macros may use other macros ($name in the list); a loop is a load error (§3.3.1.33.4)."""
        uses = {}
        for name, node in self.macros.items():
            parts = node.value.split(None, 1)
            items = parts[1].split(",") if len(parts) > 1 else []
            uses[name] = [item.strip()[1:] for item in items if item.strip().startswith("$")]
            for used in uses[name]:
                if used not in self.macros:
                    self._undefined(
                        node,
                        "domain macro $%s is not defined" % used,
                        "add domain-macro %s domain1,domain2 (§3.3.1.33.4)" % used,
                    )
        reported = set()
        for start in uses:
            path, stack = [], [(start, iter(uses[start]))]
            on_path = {start}
            path.append(start)
            while stack:
                current, children = stack[-1]
                for child in children:
                    if child in on_path and child not in reported:
                        loop = path[path.index(child) :] + [child]
                        reported.update(loop)
                        self.error(
                            self.macros[start],
                            "domain macro loop: %s" % " -> ".join("$" + m for m in loop),
                            "break the loop: a macro must not include itself, directly or through others",
                            "macro-loop",
                        )
                    elif child in uses and child not in on_path:
                        stack.append((child, iter(uses[child])))
                        on_path.add(child)
                        path.append(child)
                        break
                else:
                    stack.pop()
                    on_path.discard(current)
                    path.pop()

    def _cold_vmta_checks(self, root):
        has_cold = {}
        for name, block in self.vmtas.items():
            has_cold[name] = any(d.name == "cold-virtual-mta" for d in block.directives())
            for directive in block.directives("cold-virtual-mta"):
                if directive.value == name:
                    self.error(directive, "a vMTA cannot be its own cold vMTA", "name another vMTA", "bad-value")
        for block in self.vmtas.values():
            if has_cold[block.arg]:
                continue
            for domain in block.blocks("domain"):
                for directive in domain.directives("max-cold-virtual-mta-msg"):
                    if not _reroutes(directive.value):
                        continue
                    self.warning(
                        directive,
                        "max-cold-virtual-mta-msg has no effect: <virtual-mta %s> has no cold-virtual-mta" % block.arg,
                        "add cold-virtual-mta NAME to <virtual-mta %s> (§10.7) or remove the limit" % block.arg,
                        "cold-vmta-missing",
                    )
        if not any(has_cold.values()) and not self.fragment:
            for domain in root.blocks("domain"):
                for directive in domain.directives("max-cold-virtual-mta-msg"):
                    if not _reroutes(directive.value):
                        continue
                    self.warning(
                        directive,
                        "max-cold-virtual-mta-msg has no effect: no vMTA has a cold-virtual-mta",
                        "add cold-virtual-mta NAME to the warm vMTAs (§10.7) or remove the limit",
                        "cold-vmta-missing",
                    )

    def _pool_overlap(self):
        seen = {}  # vmta -> pool block with <domain> blocks
        for pool in self.pools.values():
            if not pool.blocks("domain"):
                continue
            for member in pool.directives("virtual-mta"):
                other = seen.get(member.value)
                if other is not None and other is not pool:
                    self.error(
                        member,
                        "virtual-mta %s is in two pools with <domain> blocks (%s and %s)"
                        % (member.value, other.arg, pool.arg),
                        "a vMTA may belong to only one pool that contains <domain> blocks (§3.3.13)",
                        "pool-overlap",
                    )
                else:
                    seen[member.value] = pool

    def _security(self, root):
        # <source> ranges are judged with their inheritance in GuideRules.sources (open-relay, auth-without-tls).
        if root.tag == "global":
            relay = [d for d in root.directives("always-allow-relaying") if d.value.lower() in _TRUE]
            if relay:
                self.error(
                    relay[0],
                    "always-allow-relaying yes at the global level makes an open relay",
                    "allow relaying only in <source 127.0.0.1> and <source {auth}> or narrow injector ranges",
                    "open-relay",
                )
        for directive in root.directives("relay-domain"):
            if directive.value.strip() in ("*", "[*.]*", "*.*"):
                self.error(
                    directive,
                    "relay-domain %s lets any host relay to any domain (open relay)" % directive.value.strip(),
                    "list only the domains you receive mail for, e.g. relay-domain bounces.example.com (§3.3.1.32.2)",
                    "open-relay",
                )
        access = root.directives("http-access")
        for directive in access:
            parts = directive.value.split()
            if len(parts) != 2:
                continue
            network = network_of(parts[0])
            level = parts[1].lower()
            if not is_wide(network):
                continue
            if level == "admin":
                self.error(
                    directive,
                    "http-access gives admin rights to %s" % parts[0],
                    "grant admin only to 127.0.0.1 or a management host; use monitor for wider ranges",
                    "http-access-open",
                )
            elif level == "operator":
                self.warning(
                    directive,
                    "http-access gives operator rights to %s" % parts[0],
                    "grant operator only to management hosts",
                    "http-access-open",
                )
        if self.fragment:
            return
        run_as_root = root.directives("run-as-root")
        # Unset may mean "set in a file we did not read": only judge what we saw.
        if not run_as_root and not self.unfollowed:
            self.warnings.append(
                Finding(
                    root.file,
                    1,
                    "run-as-root is not set (PowerMTA defaults to true)",
                    "add run-as-root no so pmtad drops to the pmta user (§3.3.1.8)",
                    "run-as-root",
                    "warning",
                )
            )
        elif run_as_root and run_as_root[-1].value.lower() in _TRUE:
            self.warning(
                run_as_root[-1],
                "run-as-root yes runs the daemon as root",
                "set run-as-root no (§3.3.1.8)",
                "run-as-root",
            )
        ports = root.directives("http-mgmt-port")
        if ports and ports[-1].value not in ("0", "") and not access and not self.unfollowed:
            self.warning(
                ports[-1],
                "http-mgmt-port %s is open but no http-access is set" % ports[-1].value,
                "add http-access 127.0.0.1 admin (and monitor for your monitoring hosts), or http-mgmt-port 0",
                "http-mgmt-open",
            )
