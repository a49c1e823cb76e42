# Copyright: mailops.powermta contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""TEST DOUBLE — not PowerMTA: load /etc/pmta/config into what the double acts on.

Only the collection's PARSER is reused (``_pmta_config.parse_path``, for the
block/line grammar of §3.1) together with the NAME index of its schema (which
directive and block names the v5.0 guide has, and where). What the double
accepts, routes and refuses is decided here and in ``checks.py`` from its own
reading of the guide, never from the collection's lint rules, so the
collection's lint step and this "daemon" can disagree, as the real product
can.
"""

from __future__ import annotations

import os

from _pmta_config import parse_path  # bundled copy of plugins/module_utils/_pmta_config (parser only)

from . import checks
from .values import boolean, is_network, network

ETC = os.environ.get("PMTA_TD_ETC", "/etc/pmta")
CONFIG = os.path.join(ETC, "config")
LICENSE = os.path.join(ETC, "license")
REFUSE_HOOK = os.path.join(ETC, "TEST-DOUBLE-refuse")
QUEUE_HOOK = os.path.join(ETC, "TEST-DOUBLE-queue.json")
CLOCK_HOOK = os.path.join(ETC, "TEST-DOUBLE-clock")
DNS_PORT_HOOK = os.path.join(ETC, "TEST-DOUBLE-name-server-port")
RUN_DIR = os.environ.get("PMTA_TD_RUN", "/run/pmta")
CONTROL_SOCKET = os.path.join(RUN_DIR, "pmtad.sock")

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

__all__ = ["Config", "ConfigError", "boolean", "load", "network"]


class ConfigError(Exception):
    """The config is refused; ``lines`` are PowerMTA-style error lines."""

    def __init__(self, lines):
        super().__init__("\n".join(lines))
        self.lines = lines


class Listener:
    def __init__(self, address, port, tls_certificate=None, source=None):
        self.address = address
        self.port = port
        self.tls_certificate = tls_certificate
        self.source = source

    def key(self):
        return (self.address, self.port, self.tls_certificate or "", self.source or "")


class Vmta:
    """A ``<virtual-mta>`` (§3.3.12)."""

    def __init__(self, name):
        self.name = name
        self.source_hosts = []  # [(ip, hostname)] §3.3.1.16: IP first
        self.host_name = ""
        self.cold = []  # cold-virtual-mta names, round robin (§3.3.12.4)
        self.domains = []  # [(pattern, {directive: value})] nested <domain>
        self.settings = {}  # other directives (max-smtp-out, max-smtp-msg-rate, ...)

    @property
    def ip(self):
        return self.source_hosts[0][0] if self.source_hosts else ""

    @property
    def hostname(self):
        if self.source_hosts and self.source_hosts[0][1]:
            return self.source_hosts[0][1]
        return self.host_name


class Pool:
    """A ``<virtual-mta-pool>`` (§3.3.13): members used round robin."""

    def __init__(self, name):
        self.name = name
        self.members = []
        self.domains = []
        self.settings = {}


class Processor:
    """``<bounce-processor>`` / ``<feedback-loop-processor>`` (§3.3.3, §3.3.4) with its ``<address-list>``."""

    def __init__(self, kind):
        self.kind = kind
        self.deliver_matched = False  # §3.3.3.2 default false
        self.deliver_unmatched = True  # §3.3.3.1 default true
        self.addresses = []  # compiled regexes or lower-case literals
        self.domains = set()

    def matches(self, address):
        address = address.lower()
        if address.rpartition("@")[2] in self.domains:
            return True
        for item in self.addresses:
            if isinstance(item, str):
                if item == address:
                    return True
            elif item.search(address):
                return True
        return False


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
        self.server_tls_certificate = None
        self.sources = []  # [(name, {directive: value})] in file order
        self.smtp_users = {}  # name -> {"password": str, "source": str}
        self.vmtas = {}  # name -> Vmta
        self.source_hosts = []  # global smtp-source-host, used without a vMTA (§3.3.1.16)
        self.pools = {}  # name -> Pool
        self.domains = []  # global [(pattern, settings)]
        self.macros = {}  # domain-macro name -> [values]
        self.rollups = []  # [(mx pattern, rollup name, rollup_by_ip)] §10.17
        self.pattern_lists = {}  # name -> [(regex, [actions])] §3.3.15
        self.name_servers = []  # §3.3.1.26
        self.name_server_port = 53  # TEST-DOUBLE-name-server-port hook
        self.total_max_smtp_out = 0
        self.acct_files = []  # [(path, set of record types)]
        self.relay_domains = set()  # §3.3.1.32.2: names or patterns
        self.relay_addresses = []  # §3.3.1.32.3: addresses or /regex/
        self.host_names = []  # §3.3.1.25: host-name "behaves like relay-domain"
        self.spools = []  # spool directories (§3.3.1.4, §3.3.2), in file order
        self.spool_settings = {}  # path -> {directive: value} of its <spool> block
        self.spool_min_free_default = 0  # deprecated global spool-min-free-space (§3.3.1.6)
        self.processors = {}  # "bounce" / "feedback-loop" -> Processor
        self.warnings = []

    def spool_dirs(self):
        """[spool.SpoolDir] with min-free-space (§3.3.2.4), priority (§3.3.2.3), deliver-only (§3.3.2.2)."""
        from .spool import SpoolDir, size

        dirs = []
        for path in dict.fromkeys(self.spools):
            settings = self.spool_settings.get(path, {})
            min_free = self.spool_min_free_default
            if settings.get("min-free-space"):
                min_free = size(settings["min-free-space"])
            priority = int(settings.get("priority", "1")) if str(settings.get("priority", "1")).isdigit() else 1
            dirs.append(SpoolDir(path, min_free, priority, boolean(settings.get("deliver-only"), False)))
        return dirs

    # -- sources --------------------------------------------------------
    def source_settings(self, client_ip, authenticated_source=None, listener_source=None):
        """Merge matching ``<source>`` blocks from general to specific (§3.3.7); then the
        listener's ``source=`` and, after AUTH, the user's source (default ``{auth}``)."""
        from ipaddress import ip_address

        address = ip_address(client_ip)
        matching = []
        for name, settings in self.sources:
            if is_network(name):
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
            return [m for m in self.pools[name].members if m in self.vmtas]
        return []

    def pool_of(self, vmta):
        for pool in self.pools.values():
            if vmta in pool.members:
                return pool.name
        return ""

    def vmta_by_ip(self, ip):
        for vmta in self.vmtas.values():
            if any(host_ip == ip for host_ip, _name in vmta.source_hosts):
                return vmta.name
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


def load(path=None, check_license=True):
    """Read and interpret the config; raise ConfigError when PowerMTA would refuse it."""
    path = path or CONFIG
    if not os.path.exists(path):
        raise ConfigError(["Error: cannot open configuration file %s" % path])
    tree = parse_path(path)
    # Grammar errors of §3.1 (unbalanced blocks, bad tags): the parser's own findings.
    errors = [f.format_pmta() for f in (tree.findings or []) if f.severity == "error"]
    errors.extend(_refuse_hook_lines(tree))
    config = Config()
    checks.interpret(tree, config, errors)
    try:
        with open(DNS_PORT_HOOK, encoding="utf-8") as handle:
            config.name_server_port = int(handle.read().strip())
    except FileNotFoundError:
        pass
    except ValueError:
        errors.append("Error: %s must hold a port number" % DNS_PORT_HOOK)
    if check_license and not os.path.exists(LICENSE):
        errors.append("Error: license file %s not found; install your PowerMTA license there" % LICENSE)
    if errors:
        raise ConfigError(errors)
    return config
