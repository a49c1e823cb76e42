# Copyright: mailops.powermta contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Rules of the User's Guide that span directives or blocks ("must", "requires", "ignored unless").

PRIVATE to the collection: no compatibility promise outside it.
Standard library only (the PowerMTA test double imports this package standalone).

Each check cites its § in the hint; docs/config-lint.md lists them all. A rule
that needs a value set elsewhere follows PowerMTA's inheritance: a <source> by
IP inherits from the <source> entries whose range contains it (§3.3.7), a
<domain> from <domain *> and, inside a vMTA or pool, from the global <domain>
of the same name (§3.3.10, §3.3.12). A named source sits on top of the
connecting IP's source (§10.4.2), whose IP is unknown: a value any IP source
gives counts. Where the value may come from a file not read, the rule stays quiet.
"""

from __future__ import annotations

from .exposure import INJECTOR_PREFIX_LIMIT, WIDE_PREFIX_LIMIT, is_private, relay_exposure
from .parser import Block
from .values import network_of

_TRUE = frozenset({"yes", "true"})
_FALSE = frozenset({"no", "false"})
# Reserved <source> names that mean something (§3.3.7, §10.19.1); lower case.
_RESERVED_SOURCES = frozenset({"{auth}", "{pickup}", "{transmissions-api}"})
# Directives that start a <domain> rule (see GuideRules.domains).
_DOMAIN_TRIGGERS = frozenset(
    {
        "queue-to",
        "require-starttls",
        "dkim-identity-fallback",
        "bounce-upon-no-mx",
        "command",
        "check-spf-outbound",
        "dkim-sign",
        "type",
    }
)


def _last(block, name):
    """The last ``name`` Directive directly in ``block`` (the one PowerMTA uses), or None."""
    found = None
    for child in block.children:
        if child.__class__ is not Block and child.name == name:
            found = child
    return found


def _covered(queue, patterns):
    """True when one of the <domain> patterns (§3.2: ``*``, ``*.d``, ``[*.]d``, ``d``) matches ``queue``."""
    for pattern in patterns:
        if pattern == "*" or pattern == queue:
            return True
        if pattern.startswith("[*.]") and (queue == pattern[4:] or queue.endswith(pattern[3:])):
            return True
        if pattern.startswith("*.") and queue.endswith(pattern[1:]):
            return True
    return False


def _inherited(chain, name):
    """The last ``name`` Directive of the first block in ``chain`` that has one, or None."""
    for block in chain:
        found = _last(block, name)
        if found is not None:
            return found
    return None


def _is_true(directive):
    return directive is not None and directive.value.lower() in _TRUE


def _is_false(directive):
    return directive is not None and directive.value.lower() in _FALSE


class GuideRules:
    """Runs the cross-directive rules over a parsed tree, reporting through ``linter``."""

    def __init__(self, linter, root):
        self.linter = linter
        self.root = root
        self.whole = root.tag == "global" and not linter.fragment and not linter.unfollowed
        self.global_domains = {}  # tag argument -> <domain> block at the global level
        for block in root.blocks("domain"):
            self.global_domains.setdefault(block.arg, block)

    def run(self):
        self.rollups()
        self.acct_files()
        self.processors()
        self.sources()
        self.domains()
        self.smtp_users()
        self.required_parts()

    # -- helpers ----------------------------------------------------------
    def _warn(self, node, message, hint, code="no-effect"):
        self.linter.warning(node, message, hint, code)

    def _domain_value(self, block, name):
        """``name`` as a <domain> block sees it after inheritance, or None."""
        found = _last(block, name)
        if found is not None:
            return found
        if block.parent is not None and block.parent.tag in ("virtual-mta", "virtual-mta-pool"):
            same = self.global_domains.get(block.arg)
            if same is not None:
                found = _last(same, name)
                if found is not None:
                    return found
        if block.arg != "*":
            star = self.global_domains.get("*")
            if star is not None:
                return _last(star, name)
        return None

    def _all_domains(self):
        return self.linter.domain_blocks

    def _expand(self, tag_arg, seen=None):
        """The domain names a <domain> tag argument covers, with $macros expanded (§3.3.1.33.4)."""
        names = set()
        for part in tag_arg.replace(",", " ").split():
            if part.startswith("$"):
                macro = self.linter.macros.get(part[1:])
                seen = seen or set()
                if macro is not None and part not in seen:
                    seen.add(part)
                    items = macro.value.split(None, 1)
                    names |= self._expand(items[1] if len(items) > 1 else "", seen)
            else:
                names.add(part.lower())
        return names

    def _routed_domains(self):
        """Names of the queues whose <domain> sets smtp-hosts (macros expanded)."""
        routed = set()
        for domain in self._all_domains():
            hosts = _last(domain, "smtp-hosts")
            if hosts is not None and hosts.value not in ("", '""'):
                routed |= self._expand(domain.arg)
        return routed

    # -- §10.17 <mx-rollup-list> -----------------------------------------
    def rollups(self):
        wildcard_rollups = {}  # rollup name -> first mx line with a wildcard and no rollup-by-ip
        for block in self.root.blocks("mx-rollup-list"):
            for line in block.directives("mx"):
                parts = line.value.split()
                if len(parts) < 2:
                    continue  # a bad-value finding already
                if not parts[1].lower().endswith(".rollup"):
                    self.linter.error(
                        line,
                        "rollup queue name %s does not end in .rollup" % parts[1],
                        "name the rollup queue NAME.rollup (§10.17)",
                        "rollup-name",
                    )
                if "*" in parts[0] and len(parts) == 2:
                    wildcard_rollups.setdefault(parts[1].lower(), line)
        if not wildcard_rollups:
            return
        routed = self._routed_domains()
        for name, line in wildcard_rollups.items():
            if _covered(name, routed):
                continue
            message = "wildcard rollup %s has no smtp-hosts and no rollup-by-ip" % name
            hint = (
                "add rollup-by-ip to this mx line, or smtp-hosts in <domain %s> (§10.17: PowerMTA cannot infer "
                "the MXs of a wildcard rollup queue)" % name
            )
            if self.whole:
                self.linter.error(line, message, hint, "rollup-no-hosts")
            else:
                self._warn(line, message + " (not found in the files read)", hint, "rollup-no-hosts")

    # -- §12.6, §12.7 processors -------------------------------------------
    def processors(self):
        for block in self.root.blocks("bounce-processor") + self.root.blocks("feedback-loop-processor"):
            lists = block.blocks("address-list")
            if not any(
                lst.directives("domain") or lst.directives("address") or lst.directives("address-file") for lst in lists
            ):
                self._warn(
                    block,
                    "<%s> has no <address-list> with a domain or address: it looks at no mail" % block.tag,
                    "add <address-list> with domain DOMAIN or address /REGEX/ for the addresses it handles "
                    "(§12.6: only email received for those addresses is processed; §12.7)",
                )

    # -- §3.3.11 <acct-file> ---------------------------------------------
    def acct_files(self):
        processors = {tag: bool(self.root.blocks(tag)) for tag in ("bounce-processor", "feedback-loop-processor")}
        for block in self.root.blocks("acct-file"):
            move_to = _last(block, "move-to")
            interval = _last(block, "move-interval")
            if interval is not None and move_to is None:
                self._warn(
                    interval,
                    "move-interval is ignored without move-to",
                    "add move-to DIRECTORY, or remove move-interval (§3.3.11.2: silently ignored)",
                )
            target = block.arg.strip('"')
            piped = target.startswith("|")  # §11.3: a pipe's parameter starts with "|", maybe quoted
            if move_to is not None and not piped:
                here = target.rsplit("/", 1)[0] if "/" in target else "."
                if move_to.value.rstrip("/") == here.rstrip("/"):
                    self.linter.error(
                        move_to,
                        "move-to is the directory the accounting file is written in",
                        "move-to must point to a different directory (§3.3.11.1)",
                        "bad-value",
                    )
            delete_after = _last(block, "delete-after")
            if delete_after is not None and move_to is not None:
                self._warn(
                    delete_after,
                    "delete-after is ignored when move-to is set",
                    "remove delete-after, or move-to (§3.3.11.1)",
                )
            if piped:
                continue
            for name in ("retry-interval", "write-timeout"):
                directive = _last(block, name)
                if directive is not None:
                    self._warn(
                        directive,
                        "%s is used only when the accounting data is piped" % name,
                        "remove it, or write <acct-file |PROGRAM> (§3.3.11.6, §3.3.11.9)",
                    )
            if not self.whole:
                continue
            for records in block.directives("records"):
                types = {item.strip().lower() for item in records.value.split(",")}
                if types & {"f", "feedback-loop"} and not processors["feedback-loop-processor"]:
                    self._warn(
                        records,
                        "records f stays empty: there is no <feedback-loop-processor>",
                        "add <feedback-loop-processor> (and relay-domain for the FBL address) (§3.3.11.11, §3.3.4)",
                        "processor-missing",
                    )
                if types & {"rb", "rs", "remote-bounce", "remote-status"} and not processors["bounce-processor"]:
                    self._warn(
                        records,
                        "records rb/rs stay empty: there is no <bounce-processor>",
                        "add <bounce-processor> (and relay-domain for the bounce domain) (§3.3.11.11, §3.3.3)",
                        "processor-missing",
                    )

    # -- §3.3.7 <source> ---------------------------------------------------
    def _source_chain(self, block, by_network):
        """``block`` then the IP <source> entries whose range contains it, most specific first."""
        network = network_of(block.arg)
        if network is None:
            return [block], False  # a named source: the IP-based settings under it are unknown
        chain = [
            other
            for other_network, other in by_network
            if other is not block and other_network.version == network.version and network.subnet_of(other_network)
        ]
        chain.sort(key=lambda other: -network_of(other.arg).prefixlen)
        return [block] + chain, True

    def _ip_values(self, name, by_network, chains, version=None):
        """The ``name`` Directives (None where unset) a connection (of IP ``version``, default any) may get from
        its IP-matched <source>: one per IP source, and None for addresses no source covers (no 0/0 or ::/0)."""
        versions = {version} if version else {4, 6}
        values = [
            _inherited(chains[id(block)][0], name) for network, block in by_network if network.version in versions
        ]
        if not versions <= {network.version for network, _block in by_network if network.prefixlen == 0}:
            values.append(None)
        return values

    def _auth_without_tls(self, block, complete, chain, by_network, chains):
        """§10.4.2: AUTH without TLS works (CRAM-MD5 sends no password), but LOGIN/PLAIN passwords would cross
        in clear with allow-unencrypted-plain-auth: a warning where the settings combined give no STARTTLS.
        A named source combines with the connecting IP's source (§3.3.7): TLS from any of them counts."""
        require = _last(block, "require-auth")
        if not _is_true(require):
            return
        if complete:
            tls = [_inherited(chain, "allow-starttls")]
            plain = _inherited(chain, "allow-unencrypted-plain-auth")
        else:
            own = _last(block, "allow-starttls")
            tls = [own] if own is not None else self._ip_values("allow-starttls", by_network, chains)
            plain = _last(block, "allow-unencrypted-plain-auth")
        if any(_is_true(directive) for directive in tls):
            return
        if not self.whole and not any(_is_false(directive) for directive in tls):
            return  # unset here: a file we did not read may offer STARTTLS
        if _is_true(plain):
            risk = "LOGIN/PLAIN passwords cross the network in clear (allow-unencrypted-plain-auth)"
        else:
            risk = "only CRAM-MD5 can authenticate (§10.4.2), PLAIN/LOGIN clients fail"
        kind = "" if complete else " (combined with the IP-matched sources, §3.3.7)"
        self._warn(
            require,
            "<source %s> requires AUTH but no STARTTLS is offered%s: %s" % (block.arg, kind, risk),
            "add allow-starttls yes (§3.3.7.12) with smtp-server-tls-certificate (§3.3.1.9) or a listener "
            "tls-certificate (§3.3.17.4), so clients authenticate over TLS",
            "auth-without-tls",
        )

    def _open_relay(self, block, network, chain):
        """always-allow-relaying yes for a range: public and wide (or any host) is an open relay; an own private
        range wider than the injector limit reaches far more hosts than injectors. require-auth makes it safe."""
        relay = _last(block, "always-allow-relaying")
        if not _is_true(relay) or _is_true(_inherited(chain, "require-auth")):
            return
        exposure = relay_exposure(network)
        if exposure is None:
            return
        limit = (INJECTOR_PREFIX_LIMIT if exposure == "private" else WIDE_PREFIX_LIMIT)[network.version]
        if exposure == "any":
            subnet = network_of("192.0.2.0/24" if network.version == 4 else "2001:db8::/64")
        else:
            subnet = next(network.subnets(new_prefix=limit))
        narrow = (
            "narrow it to the injectors: their hosts (<source %s>) or subnet (<source %s>, /%d or narrower), "
            "or add require-auth yes (§3.3.1.32.1, §3.3.7)" % (subnet[1], subnet, limit)
        )
        if exposure == "private":
            self._warn(
                relay,
                "always-allow-relaying yes for <source %s>: every host in %s may relay, wider than the "
                "injector limit /%d" % (block.arg, network, limit),
                narrow,
                "open-relay",
            )
            return
        what = "any host" if exposure == "any" else "the public network %s" % network
        self.linter.error(
            relay,
            "always-allow-relaying yes for <source %s> makes an open relay for %s" % (block.arg, what),
            narrow,
            "open-relay",
        )

    def _listener_sources(self):
        """{source name: (listener address text, node)} for ``smtp-listener CIDR:PORT source=NAME`` and
        ``<smtp-listener CIDR:PORT>`` blocks with ``source NAME`` (§3.3.1.20, §3.3.17.3)."""
        selected = {}
        for directive in self.root.directives("smtp-listener"):
            parts = directive.value.split()
            for part in parts[1:]:
                if part.startswith("source="):
                    selected.setdefault(part[7:], (parts[0].rpartition(":")[0], directive))
        for block in self.root.blocks("smtp-listener"):
            source = _last(block, "source")
            if source is not None and source.value:
                selected.setdefault(source.value.split()[0], (block.arg.rpartition(":")[0], block))
        return selected

    def _listener_relay(self, block, selected, by_network, chains):
        """§3.3.1.20: always-allow-relaying on a source an smtp-listener selects lets anybody who can connect to
        that address relay. Loopback is fine; all interfaces or a public address is an open relay. require-auth
        counts from the source itself, or from every IP source it may combine with (§3.3.7)."""
        relay = _last(block, "always-allow-relaying")
        if not _is_true(relay) or block.arg not in selected:
            return
        address, listener = selected[block.arg]
        network = network_of(address.strip("[]"))
        if network is None or network.is_loopback:
            return
        require = _last(block, "require-auth")
        if require is None:
            inherited = self._ip_values("require-auth", by_network, chains, network.version)
            if all(_is_true(value) for value in inherited):
                return
        elif _is_true(require):
            return
        where = "every interface" if network.prefixlen == 0 else address
        hint = (
            "relay by the client's IP instead (<source INJECTOR-IP> always-allow-relaying yes), add require-auth "
            "yes here, or bind the listener to 127.0.0.1 (§3.3.1.20: anybody who can connect may relay)"
        )
        message = "<source %s> relays for anybody who connects to the smtp-listener on %s (line %d)" % (
            block.arg,
            where,
            listener.line,
        )
        if network.prefixlen == 0 or not is_private(network):
            self.linter.error(relay, message, hint, "open-relay")
        else:
            self._warn(relay, message, hint, "open-relay")

    def _reserved_name(self, block):
        """§3.3.7: names beginning with { are reserved; {auth} and {pickup} have a meaning, and §10.19.1 adds
        {transmissions-api}. Any other such name is never applied the way a plain named source is."""
        if block.arg.startswith("{") and block.arg.lower() not in _RESERVED_SOURCES:
            plain = block.arg.strip("{}").strip("/").rsplit("/", 1)[-1] or "injectors"
            self._warn(
                block,
                "<source %s>: names beginning with { are reserved, and this one has no meaning" % block.arg,
                "use {auth} for every authenticated user, {pickup} for the pickup directory (§3.3.7), "
                "{transmissions-api} (§10.19.1), or a plain name such as <source %s> named by an <smtp-user>'s "
                "source or smtp-listener source= (§10.4.2)" % plain,
                "reserved-name",
            )

    def sources(self):
        blocks = self.root.blocks("source")
        by_network = [(network_of(b.arg), b) for b in blocks if network_of(b.arg) is not None]
        chains = {id(block): self._source_chain(block, by_network) for block in blocks}
        selected = None  # sources an smtp-listener selects, read at the first named source
        has_certificate = bool(self.root.directives("smtp-server-tls-certificate")) or any(
            _last(listener, "tls-certificate") is not None for listener in self.root.blocks("smtp-listener")
        )
        for block in blocks:
            chain, complete = chains[id(block)]
            self._auth_without_tls(block, complete, chain, by_network, chains)
            if complete:
                self._open_relay(block, network_of(block.arg), chain)
            else:
                self._reserved_name(block)
                if selected is None:
                    selected = self._listener_sources()
                self._listener_relay(block, selected, by_network, chains)
            require_auth = _inherited(chain, "require-auth")
            starttls = _last(block, "allow-starttls")
            if _is_true(starttls) and not has_certificate and self.whole:
                self._warn(
                    starttls,
                    "allow-starttls yes, but no certificate is configured to start TLS with",
                    "set smtp-server-tls-certificate (§3.3.1.9) or tls-certificate in the <smtp-listener> (§3.3.17.4)",
                )
            rate = _last(block, "smtp-max-auth-failure-rate")
            if (
                rate is not None
                and complete
                and not _is_true(require_auth)
                and rate.value.lower() not in ("0", "unlimited")
            ):
                self._warn(
                    rate,
                    "smtp-max-auth-failure-rate has no effect without require-auth",
                    "add require-auth yes to this source (§3.3.7.7)",
                )
            for retain, process, section in (
                ("retain-x-job", "process-x-job", "§3.3.7.47"),
                ("retain-x-virtual-mta", "process-x-virtual-mta", "§3.3.7.49"),
                ("process-x-dkim-key", "process-x-dkim-options", "§3.3.7.42"),
            ):
                directive = _last(block, retain)
                if _is_true(directive) and complete and not _is_true(_inherited(chain, process)):
                    self._warn(
                        directive,
                        "%s is used only when %s is true" % (retain, process),
                        "add %s yes to this source, or remove %s (%s)" % (process, retain, section),
                    )

    # -- §3.3.10 <domain> --------------------------------------------------
    def domains(self):
        source_hosts = bool(self.root.directives("smtp-source-host")) or any(
            block.directives("smtp-source-host") for block in self.root.blocks("virtual-mta")
        )
        # Keys come from domain-key lines, or from the message itself with process-x-dkim-key (§3.3.7.42).
        has_keys = (
            bool(self.root.directives("domain-key"))
            or any(block.directives("domain-key") for block in self.root.blocks() if block.tag != "domain")
            or any(_is_true(_last(block, "process-x-dkim-key")) for block in self.root.blocks("source"))
        )
        routed = self._routed_domains() if any(b.directives("queue-to") for b in self._all_domains()) else set()
        for block in self._all_domains():
            # One pass over the block: most <domain> blocks hold none of the directives these rules start from.
            own = {}
            for child in block.children:
                if child.__class__ is not Block and child.name in _DOMAIN_TRIGGERS:
                    own[child.name] = child
            if not own:
                continue
            queue_to = own.get("queue-to")
            if queue_to is not None and self.whole:
                target = queue_to.value.strip('"').lower()
                if target and not _covered(target, routed):
                    self._warn(
                        queue_to,
                        "queue-to %s: the combined queue has no smtp-hosts" % target,
                        "add smtp-hosts in <domain %s> (§10.9.1: use of smtp-hosts is required)" % target,
                        "required-missing",
                    )
            require = own.get("require-starttls")
            if _is_true(require) and _is_false(self._domain_value(block, "use-starttls")):
                self._warn(
                    require,
                    "require-starttls has no effect: use-starttls is false",
                    "set use-starttls yes (§3.3.10.94.2)",
                )
            fallback = own.get("dkim-identity-fallback")
            if fallback is not None and self._domain_value(block, "dkim-identity") is None:
                self._warn(fallback, "dkim-identity-fallback requires dkim-identity", "add dkim-identity (§3.3.10.29)")
            no_mx = own.get("bounce-upon-no-mx")
            hosts = self._domain_value(block, "smtp-hosts")
            if (
                no_mx is not None
                and hosts is not None
                and hosts.value not in ("", '""')
                and not hosts.value.lower().startswith("lookup-mx:")
            ):
                self._warn(
                    no_mx,
                    "bounce-upon-no-mx has no effect: smtp-hosts lists the hosts, no MX lookup is done",
                    "remove bounce-upon-no-mx here (§3.3.10.60)",
                )
            kind = self._domain_value(block, "type")
            kind = kind.value.lower() if kind is not None else "smtp"
            command = own.get("command")
            if command is not None and kind != "pipe":
                self._warn(
                    command,
                    "command is ignored: this domain's type is %s, not pipe" % kind,
                    "add type pipe, or remove command (§3.3.10.97)",
                )
            spf = own.get("check-spf-outbound")
            if _is_true(spf) and not source_hosts and self.whole:
                self._warn(
                    spf,
                    "check-spf-outbound needs a smtp-source-host (global or in the vMTA)",
                    "set smtp-source-host IP HOSTNAME (§3.3.10.2, §10.5)",
                )
            sign = own.get("dkim-sign")
            if _is_true(sign) and not has_keys and self.whole:
                self._warn(
                    sign,
                    "dkim-sign yes but no domain-key is configured",
                    "add domain-key SELECTOR,DOMAIN,KEYFILE (§3.3.10.19: domain keys must be configured)",
                )
            if kind == "pipe" and own.get("type") is not None and self._domain_value(block, "command") is None:
                self.linter.error(
                    own.get("type"),
                    "a pipe domain needs a command",
                    "add command /path/to/program (§3.3.10.97.1: required for pipe domains)",
                    "required-missing",
                )
            if (
                kind == "http-delivery"
                and own.get("type") is not None
                and self._domain_value(block, "http-delivery-url") is None
            ):
                self.linter.error(
                    own.get("type"),
                    "an http-delivery domain needs http-delivery-url",
                    "add http-delivery-url https://... (§3.3.10.98.1: required)",
                    "required-missing",
                )

    # -- §3.3.8 <smtp-user> ------------------------------------------------
    def smtp_users(self):
        for block in self.root.blocks("smtp-user"):
            method = _last(block, "authentication-method")
            method = method.value.lower() if method is not None else "password"
            password = _last(block, "password")
            if password is not None and method != "password":
                self._warn(
                    password,
                    "password is ignored with authentication-method %s" % method,
                    "remove it, or set authentication-method password (§3.3.8.1)",
                )
            if method == "certificate" and _last(block, "tls-certificate") is None:
                self.linter.error(
                    block,
                    "<smtp-user %s> authenticates by certificate but has no tls-certificate" % block.arg,
                    "add tls-certificate FILE (§3.3.8.2, §3.3.8.3)",
                    "required-missing",
                )

    # -- directives a block or the config cannot do without ----------------
    def required_parts(self):
        if self.whole and not self.root.blocks("smtp-user"):
            for block in self.root.blocks("source"):
                require = _last(block, "require-auth")
                if _is_true(require):
                    self.linter.error(
                        require,
                        "<source %s> requires AUTH but no <smtp-user> is defined" % block.arg,
                        "define <smtp-user NAME> with password and source (§10.4.2: to use AUTH you must create one)",
                        "required-missing",
                    )
        if self.whole:
            used = {name for kind, name, _node, _scope in self.linter.references if kind == "rewrite-list"}
            for block in self.root.blocks("rewrite-list"):
                if block.arg not in used:
                    self._warn(
                        block,
                        "<rewrite-list %s> is not used" % block.arg,
                        "name it in a <source> with rewrite-list %s (§3.3.18: it must be configured in a source)"
                        % block.arg,
                        "unused",
                    )
        for block in self.root.blocks("proxy"):
            for name in ("server", "client"):
                if _last(block, name) is None:
                    self.linter.error(
                        block,
                        "<proxy %s> has no %s" % (block.arg, name),
                        "a proxy tag must have both server and client (§10.2.1.1)",
                        "required-missing",
                    )
        for block in self.root.blocks("signals"):
            if _last(block, "api-key") is None and not self.linter.unfollowed:
                self.linter.error(
                    block, "<signals> has no api-key", "add api-key (40 hex digits, §10.1.4.2.1)", "required-missing"
                )
