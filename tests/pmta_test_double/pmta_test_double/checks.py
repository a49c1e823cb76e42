# Copyright: mailops.powermta contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""TEST DOUBLE — not PowerMTA: interpret the parsed config and refuse what PowerMTA refuses at load time.

Refusals (each as ``Error in line N of FILE: ...``):
- a directive or block name the v5.0 guide does not have, or one used in a block
  where the guide does not allow it (``unknown directive``; names come from the
  schema's name index, not from its lint rules);
- a missing argument (§3.2: every directive takes a value; ``""`` clears one);
- a bad value for every type the double interprets (booleans, numbers, time
  intervals, rates, addresses, listeners, ``smtp-hosts``, reply patterns);
- a pool or ``cold-virtual-mta`` naming an unknown vMTA, a domain naming an unknown
  ``smtp-pattern-list``, a ``$macro`` that is not defined or loops (§3.3.1.33.4);
- license/certificate/key files that cannot be read.
"""

from __future__ import annotations

import re

from _pmta_config import schema  # name index only: which names exist and in which blocks

from . import values
from .values import boolean, network

# Types of the directives the double acts on (its own reading of the guide).
BOOLEANS = {
    "smtp-service", "always-allow-relaying", "process-x-virtual-mta", "require-auth", "allow-starttls",
    "allow-unencrypted-plain-auth", "use-starttls", "require-starttls", "run-as-root", "http-redirect-to-https",
    "deliver-unmatched-email", "deliver-matched-email", "disable-mx-rollup", "backoff-to-normal-after-delivery",
    "retain-x-virtual-mta", "process-x-job",
}
INTEGERS = {"max-smtp-out", "backoff-max-smtp-out", "total-max-smtp-out", "http-mgmt-port", "queue-priority"}
UNLIMITED_INTEGERS = {"max-msg-per-connection", "max-rcpt-per-message", "max-errors-per-connection"}
INTERVALS = {"bounce-after", "reenable-source-ip-after"}
NEVER_OR_INTERVAL = {"backoff-to-normal-after"}
INTERVAL_LISTS = {"retry-after", "backoff-retry-after"}
RATES = {"max-msg-rate", "backoff-max-msg-rate", "max-smtp-msg-rate", "max-connect-rate",
         "backoff-max-connect-rate"}
DAILY = {"max-cold-virtual-mta-msg"}

REPLY = re.compile(r"/(.*)/\s+(\S+)\s*\Z")
ACTIONS = {"mode=normal", "mode=backoff", "skip-mx", "bounce-queue", "bounce-rcpt", "disable-source-ip",
           "defer-queue"}
TIMED_ACTIONS = ("reenable-after", "backoff-to-normal-after")
_MACRO = re.compile(r"\$([A-Za-z0-9_-]+)")


def _where(node):
    return "line %d of %s" % (node.line, node.file)


def _readable(path):
    try:
        with open(path, "rb"):
            return True
    except OSError:
        return False


def check_value(name, value):
    """Raise ValueError when ``value`` is not a valid ``name`` value (for the types the double reads)."""
    if value.strip() == '""':
        return  # §3.2: the empty string clears an inherited value
    if name in BOOLEANS:
        values.check_boolean(value)
    elif name in INTEGERS:
        values.integer(value)
    elif name in UNLIMITED_INTEGERS:
        values.unlimited_or_int(value)
    elif name in INTERVALS:
        values.interval(value)
    elif name in NEVER_OR_INTERVAL:
        if value.strip().lower() != "never":
            values.interval(value)
    elif name in INTERVAL_LISTS:
        values.interval_list(value)
    elif name in RATES:
        values.rate(value)
    elif name in DAILY:
        values.daily_limits(value)
    elif name == "name-server":
        values.ip_address(value)
    elif name == "smtp-hosts":
        smtp_hosts(value)
    elif name == "reply":
        reply(value)
    elif name == "smtp-source-host":
        parts = value.split()  # §3.3.1.16: IP or CIDR first, then the host name
        if "/" in parts[0]:
            network(parts[0])
        else:
            values.ip_address(parts[0])


def smtp_hosts(value):
    """§3.3.10.89: ``h1, h2; [192.0.2.1]:2525; last`` -> [[(host, port, literal)]] or ("lookup-mx", domain)."""
    text = value.strip()
    if text.lower().startswith("lookup-mx:"):
        domain = text.split(":", 1)[1].strip()
        if not domain:
            raise ValueError("argument missing after lookup-mx:")
        return ("lookup-mx", domain.lower())
    levels = []
    for level in text.split(";"):
        hosts = [values.host_port(item) for item in level.split(",") if item.strip()]
        if hosts:
            levels.append(hosts)
    if not levels:
        raise ValueError("argument missing")
    return levels


def reply(value):
    """§3.3.15 ``reply /PATTERN/ ACTION-LIST``: the rules on combining actions are load errors."""
    match = REPLY.match(value.strip())
    if not match:
        # The guide writes several actions as one comma-separated list (§3.3.15 example
        # "mode=backoff,disable-source-ip,reenable-after=1h"), never separated by spaces.
        raise ValueError("invalid reply pattern (use reply /REGEX/ ACTION[,ACTION...])")
    pattern = match.group(1).replace("\\x23", "#")
    flags = re.IGNORECASE  # "All patterns are case insensitive", (?-i) forces case
    if pattern.startswith("(?-i)"):
        pattern, flags = pattern[5:], 0
    try:
        regex = re.compile(pattern, flags)
    except re.error as exc:
        raise ValueError("invalid regular expression: %s" % exc) from exc
    actions = [a.strip().lower() for a in match.group(2).split(",") if a.strip()]
    # reenable-after=T (§3.3.15) and backoff-to-normal-after=T (later guide) carry a time.
    names = [a.split("=", 1)[0] if a.startswith(TIMED_ACTIONS) else a for a in actions]
    for action, name in zip(actions, names, strict=True):
        if name in TIMED_ACTIONS:
            values.interval(action.split("=", 1)[1] if "=" in action else "")
        elif action not in ACTIONS:
            raise ValueError("unknown action %r" % action)
    if "mode=backoff" in names and "mode=normal" in names:
        raise ValueError("both mode=backoff and mode=normal")
    if "skip-mx" in names and "bounce-queue" in names:
        raise ValueError("both skip-mx and bounce-queue")
    if names.count("reenable-after") > 1:
        raise ValueError("more than one reenable-after")
    if "reenable-after" in names and (
            "disable-source-ip" not in names or names.index("disable-source-ip") > names.index("reenable-after")):
        raise ValueError("reenable-after without a preceding disable-source-ip")
    return regex, actions


def _check_names(tree, errors):
    for node, block in tree.walk():
        if hasattr(node, "tag"):
            spec = schema.BLOCKS.get(node.tag)
            if spec is None or block.tag not in spec.parents:
                errors.append("Parse error in %s: unknown directive <%s>" % (_where(node), node.tag))
            continue
        if node.name == "include":
            continue
        if schema.lookup(node.name, block.tag) is None:
            if node.name in schema.DIRECTIVES:
                errors.append("Error in %s: directive %s not allowed in <%s>" % (_where(node), node.name, block.tag))
            else:
                errors.append("Parse error in %s: unknown directive %s" % (_where(node), node.name))
            continue
        if not node.value.strip():
            errors.append("Error in %s: argument missing" % _where(node))
            continue
        try:
            check_value(node.name, node.value)
        except ValueError as exc:
            errors.append("Error in %s: invalid value for %s: %s" % (_where(node), node.name, exc))


def interpret(tree, config, errors):
    _check_names(tree, errors)
    for node in tree.children:
        if hasattr(node, "tag"):
            _global_block(node, config, errors)
        else:
            _global_directive(node, config, errors)
    _cross_checks(config, tree, errors)


def _global_directive(node, config, errors):
    name, value = node.name, node.value.strip()
    if not value:
        return
    if name == "host-name":
        if not config.host_names:
            config.host_name = value.split()[0]  # "The first name specified is picked as the main name"
        config.host_names.append(value.split()[0].lower())
    elif name == "log-file":
        config.log_file = value
    elif name == "spool":  # §3.3.1.4, the global form of <spool>
        config.spools.append(value)
    elif name == "spool-min-free-space" and value.split("#")[0].strip().isdigit():  # §3.3.1.6: N in MB
        config.spool_min_free_default = int(value.split("#")[0].strip()) * 1024 * 1024
    elif name == "run-as-root":
        config.run_as_root = boolean(value, True)
    elif name == "http-mgmt-port":
        if value.isdigit():
            config.http_mgmt_port = int(value)
    elif name == "http-access":
        parts = value.split()
        if len(parts) < 2:
            errors.append("Error in %s: argument missing" % _where(node))
        else:
            try:
                config.http_access.append((network(parts[0]), parts[1].split(",")[0].lower()))
            except ValueError:
                errors.append("Error in %s: invalid address %r" % (_where(node), parts[0]))
    elif name == "http-redirect-to-https":
        config.http_redirect_to_https = boolean(value, True)
    elif name == "smtp-listener":
        _listener(node, value, None, config, errors)
    elif name == "relay-domain":
        config.relay_domains.add(value.lower())
    elif name == "relay-address":
        config.relay_addresses.append(value)
    elif name == "name-server":
        config.name_servers.append(value)
    elif name == "total-max-smtp-out" and value.isdigit():
        config.total_max_smtp_out = int(value)
    elif name == "domain-macro":
        macro, _sep, items = value.partition(" ")
        config.macros[macro.strip()] = [i.strip().lower() for i in items.split(",") if i.strip()]
        if not items.strip():
            errors.append("Error in %s: argument missing" % _where(node))
    elif name == "smtp-server-tls-certificate":
        certificate = value.split()[0]
        config.server_tls_certificate = certificate
        if not _readable(certificate):
            errors.append("Error in %s: cannot read certificate file %s" % (_where(node), certificate))
    elif name == "domain-key":
        _domain_key(node, errors)
    elif name == "smtp-source-host":
        parts = value.split()
        config.source_hosts.append((parts[0].strip("[]"), parts[1] if len(parts) > 1 else ""))


def _domain_key(node, errors):
    parts = [p.strip() for p in node.value.split(",")]
    if len(parts) != 3:
        errors.append("Error in %s: invalid value for domain-key (use SELECTOR,DOMAIN,KEYFILE)" % _where(node))
    elif not _readable(parts[2]):
        errors.append("Error in %s: cannot read domain key file %s" % (_where(node), parts[2]))


def _listener(node, spec, block, config, errors):
    from .config import Listener

    parts = spec.split()
    address_port = parts[0]
    source = None
    for extra in parts[1:]:
        if extra.startswith("source="):
            source = extra.split("=", 1)[1]
    address, _sep, port = address_port.rpartition(":")
    if not port.isdigit():
        errors.append("Error in %s: invalid listener %r" % (_where(node), address_port))
        return
    if address in ("0/0", "0.0.0.0/0", "", "*"):
        address = "0.0.0.0"
    elif "/" in address:
        try:
            address = str(network(address).network_address)
        except ValueError:
            errors.append("Error in %s: invalid listener %r" % (_where(node), address_port))
            return
    certificate = None
    if block is not None:
        for directive in block.directives():
            if directive.name == "tls-certificate" and directive.value.strip():
                certificate = directive.value.split()[0]
                if not _readable(certificate):
                    errors.append("Error in %s: cannot read certificate file %s" % (_where(directive), certificate))
            elif directive.name == "source":
                source = directive.value.strip()
    config.listeners.append(Listener(address.strip("[]"), int(port), certificate, source))


def _settings(block):
    return {d.name: d.value.strip() for d in block.directives()}


def _domains(block):
    return [(b.arg.strip().lower(), _settings(b)) for b in block.blocks("domain")]


def _global_block(block, config, errors):
    from .config import ACCT_LONG_NAMES, Pool, Processor, Vmta

    tag, arg = block.tag, (block.arg or "").strip()
    if tag == "smtp-listener":
        _listener(block, arg, block, config, errors)
    elif tag == "source":
        config.sources.append((arg, _settings(block)))
    elif tag == "smtp-user":
        settings = _settings(block)
        config.smtp_users[arg] = {
            "password": settings.get("password", ""),
            "source": settings.get("source", "{auth}"),
            "method": settings.get("authentication-method", "password"),
        }
    elif tag == "virtual-mta":
        vmta = Vmta(arg)
        for directive in block.directives():
            parts = directive.value.split()
            if directive.name == "smtp-source-host" and parts:
                vmta.source_hosts.append((parts[0].strip("[]"), parts[1] if len(parts) > 1 else ""))
            elif directive.name == "host-name" and parts:
                vmta.host_name = parts[0]
                config.host_names.append(parts[0].lower())
            elif directive.name == "cold-virtual-mta" and parts:
                vmta.cold.append((parts[0], directive))
            elif directive.name == "domain-key":
                _domain_key(directive, errors)
            else:
                vmta.settings[directive.name] = directive.value.strip()
        vmta.domains = _domains(block)
        config.vmtas[arg] = vmta
    elif tag == "virtual-mta-pool":
        pool = Pool(arg)
        for directive in block.directives():
            if directive.name == "virtual-mta":
                pool.members.append((directive.value.strip(), directive))
            else:
                pool.settings[directive.name] = directive.value.strip()
        pool.domains = _domains(block)
        config.pools[arg] = pool
    elif tag == "domain":
        config.domains.append((arg.lower(), _settings(block)))
    elif tag == "mx-rollup-list":
        for directive in block.directives("mx"):
            parts = directive.value.split()
            if len(parts) < 2:
                errors.append("Error in %s: argument missing" % _where(directive))
            elif not parts[1].endswith(".rollup"):
                # §10.17: "the name of the rollup queue, which must end in .rollup"
                errors.append("Error in %s: rollup queue name %s must end in .rollup" % (_where(directive), parts[1]))
            elif len(parts) > 2 and parts[2:] != ["rollup-by-ip"]:
                errors.append("Error in %s: invalid value %s" % (_where(directive), " ".join(parts[2:])))
            else:
                config.rollups.append((parts[0].lower().rstrip("."), parts[1].lower(), len(parts) > 2))
    elif tag == "smtp-pattern-list":
        rules = []
        for directive in block.directives("reply"):
            try:
                rules.append(reply(directive.value))
            except ValueError:
                pass  # reported by _check_names
        config.pattern_lists[arg] = rules
    elif tag in ("bounce-processor", "feedback-loop-processor"):
        processor = Processor(tag.split("-processor")[0])
        settings = _settings(block)
        processor.deliver_matched = boolean(settings.get("deliver-matched-email"), False)
        processor.deliver_unmatched = boolean(settings.get("deliver-unmatched-email"), True)
        for address_list in block.blocks("address-list"):
            _address_list(address_list, processor, errors)
        config.processors[processor.kind] = processor
    elif tag == "acct-file":
        records = {"d", "b"}
        for directive in block.directives("records"):
            records = set()
            for item in directive.value.replace(" ", "").split(","):
                if item:
                    records.add(ACCT_LONG_NAMES.get(item.lower(), item.lower()))
        config.acct_files.append((arg, records))
    elif tag == "spool":
        config.spools.append(arg)
        config.spool_settings[arg] = _settings(block)


def _address_list(block, processor, errors):
    """§3.3.5: ``address ADDR|/REGEX/``, ``domain DOMAIN``, ``address-file FILE``."""
    for directive in block.directives():
        value = directive.value.strip()
        if directive.name == "domain":
            processor.domains.add(value.lower())
        elif directive.name == "address":
            if len(value) > 1 and value.startswith("/") and value.endswith("/"):
                try:
                    processor.addresses.append(re.compile(value[1:-1], re.IGNORECASE))
                except re.error as exc:
                    errors.append("Error in %s: invalid regular expression: %s" % (_where(directive), exc))
            else:
                processor.addresses.append(value.lower())
        elif directive.name == "address-file":
            try:
                with open(value, encoding="utf-8") as handle:
                    for line in handle:
                        if line.strip():
                            processor.addresses.append(line.strip().lower())
            except OSError:
                errors.append("Error in %s: cannot read address file %s" % (_where(directive), value))


def _cross_checks(config, tree, errors):
    for pool in config.pools.values():
        names = []
        for member, directive in pool.members:
            if member not in config.vmtas:
                errors.append("Error in %s: unknown virtual MTA %s" % (_where(directive), member))
            names.append(member)
        pool.members = names
    for vmta in config.vmtas.values():
        names = []
        for cold, directive in vmta.cold:
            if cold not in config.vmtas:
                errors.append("Error in %s: unknown virtual MTA %s" % (_where(directive), cold))
            names.append(cold)
        vmta.cold = names
    for node, _block in tree.walk():
        if getattr(node, "name", None) == "smtp-pattern-list" and node.value.strip() not in config.pattern_lists:
            errors.append("Error in %s: unknown smtp-pattern-list %s" % (_where(node), node.value.strip()))
        if getattr(node, "tag", None) == "domain":
            for macro in _MACRO.findall(node.arg or ""):
                if macro not in config.macros:
                    errors.append("Error in %s: unknown domain-macro $%s" % (_where(node), macro))
    try:
        for name in config.macros:
            values.expand_macros("$" + name, config.macros)
    except ValueError as exc:
        errors.append("Error: %s" % exc)
