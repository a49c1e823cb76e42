# Copyright: mailops.powermta contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The argument spec of each layered list item, built from ``items.SCHEMAS``: the one place of its descriptions.

PRIVATE to the collection: no compatibility promise outside it.
Plain Python, no Ansible imports. ``tools/gen-argument-specs.py`` writes ``item_options(kind)`` into
``roles/powermta/meta/argument_specs.yml`` as the ``options`` of every variable of ``items.LAYERS[kind]``; its
``--check`` (run by a unit test and ``make lint``) fails when the file differs. Keys and types come from
``SCHEMAS``, choices from the constants the checks use, defaults from ``derived.ITEM_DEFAULTS``; only what a key
means, and the facets no check reads, are written here.
"""

from __future__ import annotations

from .derived import ITEM_DEFAULTS
from .items import ACCT_RECORDS, DKIM_KEY_BITS, DMARC_POLICIES, LAYERS, REQUIRED, SCHEMAS

# How each kind of SCHEMAS is declared in an argument spec: (type, elements).
SPEC_TYPES = {
    "str": ("str", None), "ip": ("str", None), "fqdn": ("str", None), "bool": ("bool", None), "int": ("int", None),
    "dict": ("dict", None), "list": ("list", "str"), "domains": ("list", "dict"), "reply_patterns": ("list", "dict"),
}
# The keys of a nested item list: a vMTA's or pool's ``domains`` (its ``<domain>`` blocks).
NESTED_OPTIONS = {
    "domains": {
        "name": {"type": "str", "required": True, "description": "Recipient domain pattern."},
        "directives": {"type": "dict", "description": "C(<domain>) directives."},
    },
}
# Every item's ``state``: the layering (layers.py) removes an item merged so far.
STATE_OPTION = {"type": "str", "choices": ["present", "absent"], "default": "present",
                "description": "V(absent) removes an item merged so far."}
REQUIRED_NOTE = "Required after merging the layers."
# Values the checks of items.py accept, declared as choices.
CHOICES = {
    "domains": {"dkim_key_bits": DKIM_KEY_BITS, "dmarc_policy": DMARC_POLICIES,
                "dmarc_subdomain_policy": DMARC_POLICIES},
}
# Facets no check of the model reads: hidden values and defaults the model leaves implicit (``is_warming`` reads a
# missing ``warmup`` as false; acct.conf.j2 renders a file without ``enabled``).
EXTRA_FACETS = {
    "injectors": {"password": {"no_log": True}},
    "vmtas": {"warmup": {"default": False}},
    "acct_files": {"enabled": {"default": True}},
}
_DIRECTIVES = "Further C(<%s>) directives."
# kind -> key -> what it means: a text, or a list of paragraphs. Ansible doc markup (C(), O(), V()).
DESCRIPTIONS = {
    "listeners": {
        "name": "C(IP:PORT), C(0/0:25) for every address.",
        "starttls": "Offer STARTTLS with the certificate of O(powermta_tls_certificate).",
        "source": "Named C(<source>) for connections to this listener.",
        "directives": _DIRECTIVES % "smtp-listener",
    },
    "sources": {
        "name": "C(IP), C(CIDR) (C(0/0) = everyone) or a source name.",
        "directives": "C(<source>) directives, e.g. C(always-allow-relaying), C(process-x-virtual-mta), "
                      "C(add-received-header), C(hide-message-source), C(add-message-id-header), C(add-date-header), "
                      "C(log-connections). Booleans become yes/no, lists repeated lines.",
    },
    "injectors": {
        "name": "The injector's name, also the SMTP AUTH user (letters, digits, C(. _ @ -)).",
        "password": "SMTP AUTH password, 12+ characters without spaces or C(#); vault it. Required with auth.",
        "networks": "IPs/CIDRs the injector connects from (a list, also for one network).",
        "auth": "SMTP AUTH over STARTTLS.",
        "process_x_virtual_mta": "Honour C(X-Virtual-MTA).",
        "default_virtual_mta": "vMTA or pool for messages without C(X-Virtual-MTA).",
        "directives": _DIRECTIVES % "source",
        "pools": "Pools the injector may use (injector transport export).",
        "vmtas": "vMTAs the injector may use (injector transport export).",
        "username": "User name in the injector transport export (default the name).",
        "smtp_user": "Alias of O(powermta_injectors[].username) read by the export.",
    },
    "domains": {
        "name": "Domain name; compared without case and trailing dot (C(Example.COM.) is C(example.com)).",
        "dkim_selectors": "DKIM selectors (DNS labels), one key and one C(domain-key SELECTOR,DOMAIN,FILE) each; a "
                          "list, also for one selector.",
        "dkim_key_bits": "RSA key size (default O(powermta_dkim_key_bits)).",
        "dmarc_policy": "DMARC C(p=) (read by the dns role).",
        "dmarc_subdomain_policy": "DMARC C(sp=) (read by the dns role).",
        "dmarc_rua": "DMARC aggregate report address(es), C(mailto:) URIs.",
        "bounce_domain": "Return-Path domain; gets an MX to the fleet (dns role).",
        "bounce_mx": "MX host names of the bounce domain (dns role), a list also for one name; default "
                     "C(dns_bounce_mx), else the first vMTA host name of every PowerMTA host.",
        "spf_ips": "IPs the domain's SPF authorizes (dns role); default every vMTA IP of the fleet.",
        "spf_extra_terms": "Further SPF terms (dns role).",
        "mta_sts_id": "MTA-STS policy id (dns role).",
        "tls_rpt_rua": "TLS-RPT report address (dns role).",
    },
    "pools": {
        "name": "Pool name (ASCII letters, digits, C(. _ -)); what injectors put in C(X-Virtual-MTA).",
        "traffic": "Label (transactional, marketing ...).",
        "region": "Label.",
        "directives": "Pool directives such as C(max-smtp-msg-rate).",
        "domains": "Nested C(<domain>) blocks, items C({name, directives}).",
    },
    "vmtas": {
        "name": "vMTA name (ASCII letters, digits, C(. _ -)); unique in one list.",
        "ip": "Source IP (C(smtp-source-host IP HOSTNAME)); configured on the host, unique in the fleet.",
        "hostname": "HELO name = A = PTR of the IP.",
        "pool": "Pool of O(powermta_pools).",
        "warmup": "Include C(/etc/pmta/conf.d/warmup.d/NAME.conf), owned by the warmup role.",
        "paused": "Read by the warm-up and the injector transport export.",
        "traffic": "Label.",
        "region": "Label.",
        "max_smtp_out": "C(max-smtp-out) of the vMTA.",
        "max_smtp_msg_rate": "C(max-smtp-msg-rate), e.g. C(1000/h).",
        "daily_capacity": "Messages per day of the warm IP (injector transport export).",
        "retire": "The IP leaves the fleet (playbooks/retire_ip.yml, docs/runbooks.md): the vMTA leaves its pool and "
                  "its queued mail is rerouted to a peer of the pool on the same host (C(reroute-to-virtual-mta)); "
                  "remove the item once its queue is empty.",
        "directives": _DIRECTIVES % "virtual-mta",
        "domains": "Nested C(<domain>) blocks, items C({name, directives}).",
    },
    "isp_policies": {
        "name": "ISP group name, C([a-z][a-z0-9_]*) (becomes the domain macro).",
        "domains": "Recipient domains of the group.",
        "mx_patterns": "MX host patterns rolled up into C(NAME.rollup) queues.",
        "throttle_patterns": "The provider's throttling replies (regular expressions); each renders as "
                             "C(reply /REGEX/ mode=backoff) and the warm-up counts matching deferrals as throttled.",
        "directives": "C(<domain>) directives, e.g. C(max-smtp-out), C(max-msg-per-connection), C(max-msg-rate), "
                      "C(max-connect-rate), C(max-errors-per-connection), C(retry-after), C(bounce-after), "
                      "C(bounce-upon-no-mx), C(backoff-max-msg-rate), C(backoff-retry-after), "
                      "C(backoff-to-normal-after).",
        "reply_patterns": "Further replies with their own actions, items C({regex, action}).",
    },
    "acct_files": {
        "name": "File path, or C(|/path/program args) for a pipe.",
        "records": "Record types (%s)." % ", ".join(ACCT_RECORDS),
        "enabled": "Render the file.",
        "directives": "Further C(<acct-file>) directives (C(record-fields), C(move-to), C(move-interval)...).",
    },
}


def description_problems():
    """Keys of SCHEMAS without a description, and descriptions or facets of keys SCHEMAS does not have."""
    problems = []
    for kind in sorted(set(SCHEMAS) | set(DESCRIPTIONS)):
        schema, described = SCHEMAS.get(kind, {}), DESCRIPTIONS.get(kind, {})
        problems += ["%s: %s is in SCHEMAS but has no description in item_specs.DESCRIPTIONS" % (kind, key)
                     for key in schema if key not in described]
        problems += ["%s: %s is described in item_specs.DESCRIPTIONS but not in SCHEMAS" % (kind, key)
                     for key in described if key not in schema]
        for facets in (CHOICES, EXTRA_FACETS, ITEM_DEFAULTS, {k: dict.fromkeys(v) for k, v in REQUIRED.items()}):
            problems += ["%s: %s has spec facets but is not in SCHEMAS" % (kind, key)
                         for key in facets.get(kind, {}) if key not in schema]
    return problems


def item_option(kind, key):
    """The argument spec of key ``key`` of a ``kind`` item: type, elements, required, choices, default, description."""
    value_kind = SCHEMAS[kind][key]
    spec_type, elements = SPEC_TYPES[value_kind]
    option = {"type": spec_type}
    if elements:
        option["elements"] = elements
    if key == "name":
        option["required"] = True
    option.update(EXTRA_FACETS.get(kind, {}).get(key, {}))
    if key in CHOICES.get(kind, {}):
        option["choices"] = list(CHOICES[kind][key])
    if key in ITEM_DEFAULTS.get(kind, {}):
        option["default"] = ITEM_DEFAULTS[kind][key]
    description = DESCRIPTIONS[kind][key]
    if key in REQUIRED.get(kind, ()):
        description = description + " " + REQUIRED_NOTE if isinstance(description, str) \
            else list(description) + [REQUIRED_NOTE]
    option["description"] = description
    if value_kind in NESTED_OPTIONS:
        option["options"] = NESTED_OPTIONS[value_kind]
    return option


def item_options(kind):
    """The ``options`` of every variable of ``LAYERS[kind]``: each key of ``SCHEMAS[kind]``, then ``state``."""
    options = {key: item_option(kind, key) for key in SCHEMAS[kind]}
    options["state"] = dict(STATE_OPTION)
    return options


def layered_variables():
    """``{variable: kind}`` of every layered list, lowest layer of each kind first."""
    return {variable: kind for kind, variables in LAYERS.items() for variable in variables}
