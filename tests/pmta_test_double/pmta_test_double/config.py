# Copyright: mailops.powermta contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""TEST DOUBLE — not PowerMTA: load /etc/pmta/config into what the double needs.

Parsing and validation come from the collection's own grammar
(``_pmta_config``, copied into the package at build time). On top of the
linter, the double refuses what PowerMTA checks only at load time: a missing
license, referenced certificate or key files that cannot be read, and the
test hook ``/etc/pmta/TEST-DOUBLE-refuse`` (see README.md).
"""

from __future__ import annotations

import ipaddress
import os

from _pmta_config import lint_path  # bundled copy of plugins/module_utils/_pmta_config

ETC = os.environ.get("PMTA_TD_ETC", "/etc/pmta")
CONFIG = os.path.join(ETC, "config")
LICENSE = os.path.join(ETC, "license")
REFUSE_HOOK = os.path.join(ETC, "TEST-DOUBLE-refuse")
QUEUE_HOOK = os.path.join(ETC, "TEST-DOUBLE-queue.json")

TRUE = {"yes", "true", "on", "1"}
FALSE = {"no", "false", "off", "0"}

ACCT_LONG_NAMES = {
    "delivery": "d",
    "bounce": "b",
    "transient": "t",
    "transient-queue": "tq",
    "receipt": "r",
    "feedback-loop": "f",
    "remote-bounce": "rb",
    "remote-status": "rs",
}


class ConfigError(Exception):
    """The config is refused; ``lines`` are PowerMTA-style error lines."""

    def __init__(self, lines):
        super().__init__("\n".join(lines))
        self.lines = lines


def boolean(value, default=False):
    value = (value or "").strip().lower()
    if value in TRUE:
        return True
    if value in FALSE:
        return False
    return default


def network(spec):
    """``0/0``, ``10/8``, ``192.0.2.1``, ``198.51.100.0/24``, ``::1`` as an ip_network."""
    spec = spec.strip()
    if "/" in spec and ":" not in spec:
        address, bits = spec.split("/", 1)
        octets = address.split(".")
        while len(octets) < 4:
            octets.append("0")
        spec = "%s/%s" % (".".join(octets), bits)
    return ipaddress.ip_network(spec, strict=False)


def _is_network(name):
    try:
        network(name)
        return True
    except ValueError:
        return False


class Listener:
    def __init__(self, address, port, tls_certificate=None, source=None):
        self.address = address
        self.port = port
        self.tls_certificate = tls_certificate
        self.source = source

    def key(self):
        return (self.address, self.port, self.tls_certificate or "", self.source or "")


class Config:
    """The parts of a PowerMTA config the double acts on."""

    def __init__(self):
        self.host_name = os.uname().nodename
        self.log_file = None
        self.run_as_root = True
        self.http_mgmt_port = 8080
        self.http_access = []  # [(ip_network, level)] top-down
        self.http_redirect_to_https = True
        self.listeners = []
        self.sources = []  # [(name, {directive: value})] in file order
        self.smtp_users = {}  # name -> {"password": str, "source": str}
        self.vmtas = {}  # name -> {"ip": str, "hostname": str}
        self.pools = {}  # name -> [vmta names]
        self.acct_files = []  # [(path, set of record types)]
        self.relay_domains = set()
        self.spools = []
        self.pool_members = []  # virtual-mta directives inside pools, checked after the whole file
        self.warnings = []

    # -- sources --------------------------------------------------------
    def source_settings(self, client_ip, authenticated_source=None, listener_source=None):
        """Merge matching ``<source>`` blocks from general to specific, as PowerMTA does."""
        address = ipaddress.ip_address(client_ip)
        matching = []
        for name, settings in self.sources:
            if _is_network(name):
                net = network(name)
                if net.version == address.version and address in net:
                    matching.append((net.prefixlen, settings))
        merged = {}
        for _prefix, settings in sorted(matching, key=lambda item: item[0]):
            merged.update(settings)
        for extra in (listener_source, authenticated_source):
            if extra:
                for name, settings in self.sources:
                    if name == extra:
                        merged.update(settings)
        return merged

    def resolve_vmta(self, name):
        """A vMTA name, or a pool name (a member is picked by the caller's counter)."""
        if name in self.vmtas:
            return [name]
        if name in self.pools:
            return [m for m in self.pools[name] if m in self.vmtas]
        return []

    def pool_of(self, vmta):
        for pool, members in self.pools.items():
            if vmta in members:
                return pool
        return ""


def _refuse_hook_lines(tree):
    """The test hook: each non-comment line of TEST-DOUBLE-refuse is a text that,
    found in any directive of the config, makes the double refuse it like PowerMTA
    refuses a bad value."""
    try:
        with open(REFUSE_HOOK, encoding="utf-8") as handle:
            needles = [line.strip() for line in handle if line.strip() and not line.lstrip().startswith("#")]
    except FileNotFoundError:
        return []
    errors = []
    if not needles:
        return errors
    for node, _block in tree.walk():
        text = getattr(node, "value", None)
        if text is None:
            text = "%s %s" % (node.tag, node.arg)
        else:
            text = "%s %s" % (node.name, text)
        for needle in needles:
            if needle in text:
                errors.append("Error in line %d of %s: invalid value (refused by test hook)" % (node.line, node.file))
    return errors


def _readable(path):
    try:
        with open(path, "rb"):
            return True
    except OSError:
        return False


def load(path=None, check_license=True):
    """Read, lint and interpret the config; raise ConfigError when PowerMTA would refuse it."""
    path = path or CONFIG
    if not os.path.exists(path):
        raise ConfigError(["Error: cannot open configuration file %s" % path])
    result = lint_path(path)
    errors = [f.format_pmta() for f in result.errors]
    tree = result.tree
    if tree is None:
        raise ConfigError(errors or ["Error in line 0 of %s: cannot parse" % path])
    errors.extend(_refuse_hook_lines(tree))
    config = Config()
    config.warnings = [f.format_pmta() for f in result.warnings]
    _interpret(tree, config, errors)
    if check_license and not os.path.exists(LICENSE):
        errors.append("Error: license file %s not found; install your PowerMTA license there" % LICENSE)
    if errors:
        raise ConfigError(errors)
    return config


def _where(node):
    return "line %d of %s" % (node.line, node.file)


def _interpret(tree, config, errors):
    _interpret_nodes(tree, config, errors)
    # PowerMTA refuses a pool that names a vMTA defined nowhere.
    for directive in config.pool_members:
        if directive.value.strip() not in config.vmtas:
            errors.append("Error in %s: unknown virtual MTA %s" % (_where(directive), directive.value.strip()))


def _interpret_nodes(tree, config, errors):
    for node in tree.children:
        if hasattr(node, "tag"):
            _global_block(node, config, errors)
            continue
        name, value = node.name, node.value
        if name == "host-name" and value:
            if config.host_name == os.uname().nodename:
                config.host_name = value.split()[0]
        elif name == "log-file":
            config.log_file = value
        elif name == "run-as-root":
            config.run_as_root = boolean(value, True)
        elif name == "http-mgmt-port":
            try:
                config.http_mgmt_port = int(value)
            except ValueError:
                errors.append("Error in %s: invalid port %r" % (_where(node), value))
        elif name == "http-access":
            parts = value.split()
            if len(parts) >= 2:
                try:
                    config.http_access.append((network(parts[0]), parts[1].split(",")[0].lower()))
                except ValueError:
                    errors.append("Error in %s: invalid address %r" % (_where(node), parts[0]))
        elif name == "http-redirect-to-https":
            config.http_redirect_to_https = boolean(value, True)
        elif name == "smtp-listener":
            _listener(node, value, None, config, errors)
        elif name == "relay-domain":
            config.relay_domains.add(value.strip().lower())
        elif name in ("smtp-server-tls-certificate",):
            certificate = value.split()[0] if value.split() else ""
            if certificate and not _readable(certificate):
                errors.append("Error in %s: cannot read certificate file %s" % (_where(node), certificate))
        elif name == "domain-key":
            parts = [p.strip() for p in value.split(",")]
            if len(parts) == 3 and not _readable(parts[2]):
                errors.append("Error in %s: cannot read domain key file %s" % (_where(node), parts[2]))


def _listener(node, spec, block, config, errors):
    parts = spec.split()
    if not parts:
        return
    address_port = parts[0]
    source = None
    for extra in parts[1:]:
        if extra.startswith("source="):
            source = extra.split("=", 1)[1]
    address, _sep, port = address_port.rpartition(":")
    try:
        port = int(port)
    except ValueError:
        errors.append("Error in %s: invalid listener %r" % (_where(node), address_port))
        return
    if address in ("0/0", "0.0.0.0/0", "", "*"):
        address = "0.0.0.0"
    elif "/" in address:
        address = str(network(address).network_address)
    certificate = None
    if block is not None:
        for directive in block.directives():
            if directive.name == "tls-certificate":
                certificate = directive.value.split()[0] if directive.value else None
                if certificate and not _readable(certificate):
                    errors.append("Error in %s: cannot read certificate file %s" % (_where(directive), certificate))
            elif directive.name == "source":
                source = directive.value.strip()
    config.listeners.append(Listener(address.strip("[]"), port, certificate, source))


def _global_block(block, config, errors):
    tag, arg = block.tag, block.arg
    if tag == "smtp-listener":
        _listener(block, arg, block, config, errors)
    elif tag == "source":
        settings = {d.name: d.value for d in block.directives()}
        config.sources.append((arg, settings))
    elif tag == "smtp-user":
        settings = {d.name: d.value for d in block.directives()}
        config.smtp_users[arg] = {
            "password": settings.get("password", ""),
            "source": settings.get("source", "{auth}"),
            "method": settings.get("authentication-method", "password"),
        }
    elif tag == "virtual-mta":
        hosts = block.directives("smtp-source-host")
        ip, hostname = "", ""
        if hosts:
            parts = hosts[0].args
            ip = parts[0] if parts else ""
            hostname = parts[1] if len(parts) > 1 else ""
        config.vmtas[arg] = {"ip": ip, "hostname": hostname}
        for directive in block.directives("domain-key"):
            parts = [p.strip() for p in directive.value.split(",")]
            if len(parts) == 3 and not _readable(parts[2]):
                errors.append("Error in %s: cannot read domain key file %s" % (_where(directive), parts[2]))
    elif tag == "virtual-mta-pool":
        config.pools[arg] = [d.value.strip() for d in block.directives("virtual-mta")]
        config.pool_members.extend(block.directives("virtual-mta"))
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
