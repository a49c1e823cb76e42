# Copyright: mailops.powermta contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Facts derived from one host's merged fleet model, decided here once; the templates only print them.

PRIVATE to the collection: no compatibility promise outside it.
Plain Python, no Ansible imports. ``_fleet_model`` calls ``derive`` for every host after merging and checking
its lists; the powermta role's templates read the result (``__powermta_model``), the warm-up code reads
``is_warming``. Each rule lives here and nowhere else (tests/unit/plugins/module_utils/test_fleet_derived.py).
"""

from __future__ import annotations

# What Ansible's ``bool`` filter reads as true (a vMTA list that did not pass the model may still hold strings).
TRUE_STRINGS = ("yes", "on", "1", "true", "y", "t")
# Role defaults (roles/powermta/defaults/main.yml) of the settings read here, for a model built without them.
SETTING_DEFAULTS = {
    "powermta_inbound_enabled": True,
    "powermta_bounce_domains": [],
    "powermta_fbl_address": "",
    "powermta_auth_default_virtual_mta": "",
    "powermta_auth_source_directives": {},
}
DERIVED_SETTINGS = tuple(SETTING_DEFAULTS)


def as_flag(value, default=False):
    """A flag read as Ansible's ``bool`` filter reads it; ``None`` (not given) is ``default``."""
    if value is None:
        return default
    if isinstance(value, str):
        return value.strip().lower() in TRUE_STRINGS
    return bool(value)


def is_warming(vmta):
    """The one definition of "this vMTA warms up": its ``warmup`` is true (§10.7 rates come from the plan)."""
    return as_flag(vmta.get("warmup"))


# The item keys whose default the model makes explicit (``with_item_defaults``); the argument spec prints them.
ITEM_DEFAULTS = {"listeners": {"starttls": True},
                 "injectors": {"auth": True, "process_x_virtual_mta": True}}


def with_item_defaults(kind, item):
    """The item with the defaults its templates and checks assume, made explicit once.

    A listener offers STARTTLS unless ``starttls: false``; an injector authenticates (SMTP AUTH) and may choose
    its vMTA by header unless told otherwise (``auth``, ``process_x_virtual_mta``).
    """
    defaults = ITEM_DEFAULTS.get(kind, {})
    out = dict(item)
    for key, value in defaults.items():
        out[key] = as_flag(out.get(key), value)
    return out


def warmup_includes(vmtas):
    """``{vMTA name: "warming" | "sponsor"}`` in list order: the vMTAs whose block includes a warm-up file.

    A warming vMTA includes its own rates; every other member of a pool with a warming member includes the
    ``cold-virtual-mta`` lines by which it may sponsor the warming ones (§10.7). The warmup role owns the files.
    """
    warming_pools = {vmta.get("pool") for vmta in vmtas if is_warming(vmta) and vmta.get("pool")}
    includes = {}
    for vmta in vmtas:
        if is_warming(vmta):
            includes[vmta["name"]] = "warming"
        elif vmta.get("pool") and vmta.get("pool") in warming_pools:
            includes[vmta["name"]] = "sponsor"
    return includes


def pool_members(pools, vmtas):
    """``{pool name: [member vMTA names]}`` for every pool of the host (empty: the pool block is left out).

    A warming vMTA beside warm ones is their cold vMTA, not a member: a pool would hand it its round-robin share
    whatever its rate limit (§3.3.13). A pool of warming vMTAs only keeps them as members.
    """
    members = {}
    for pool in pools:
        inside = [vmta for vmta in vmtas if vmta.get("pool") == pool["name"]]
        warm = [vmta["name"] for vmta in inside if not is_warming(vmta)]
        members[pool["name"]] = warm if warm else [vmta["name"] for vmta in inside]
    return members


def starttls_offered(listeners):
    """True when a listener offers STARTTLS (``starttls`` defaults to true)."""
    return any(as_flag(listener.get("starttls"), True) for listener in listeners)


def authenticating(injectors):
    """True when an injector uses SMTP AUTH (``auth`` defaults to true): the ``<source {auth}>`` block is needed."""
    return any(as_flag(injector.get("auth"), True) for injector in injectors)


def _unique(names):
    """Names once each, first spelling kept, compared without case (as Jinja's ``unique``)."""
    seen, out = set(), []
    for name in names:
        key = name.lower() if isinstance(name, str) else name
        if key not in seen:
            seen.add(key)
            out.append(name)
    return out


def inbound(settings, domains, mailbox):
    """What the fleet accepts from anyone: bounces (§3.3.3, §12.6) and complaint reports (§3.3.4, §12.7).

    ``{enabled, bounce_domains, fbl_address, relay_fbl_address, domains, mailbox}``: with
    ``powermta_inbound_enabled: false`` nothing is accepted and the mailbox is not used.
    ``relay_fbl_address``: the FBL address needs its own ``relay-address`` (its domain is no bounce domain).
    """
    enabled = as_flag(settings.get("powermta_inbound_enabled"), True)
    if not enabled:
        return {"enabled": False, "bounce_domains": [], "fbl_address": "", "relay_fbl_address": False,
                "domains": [], "mailbox": {}}
    given = settings.get("powermta_bounce_domains")
    given = given if isinstance(given, list) else []  # anything else is refused by _fleet_items.bounce_mailbox
    bounce_domains = _unique([domain["bounce_domain"] for domain in domains if domain.get("bounce_domain")]
                             + list(given))
    fbl_address = str(settings.get("powermta_fbl_address") or "")
    fbl_domain = fbl_address.rsplit("@", maxsplit=1)[-1] if fbl_address else ""
    return {
        "enabled": True,
        "bounce_domains": bounce_domains,
        "fbl_address": fbl_address,
        "relay_fbl_address": bool(fbl_domain) and fbl_domain not in bounce_domains,
        "domains": _unique(bounce_domains + ([fbl_domain] if fbl_domain else [])),
        "mailbox": mailbox or {},
    }


def auth_default_virtual_mta(settings, injectors, pools, vmtas):
    """Where ``<source {auth}>`` sends mail without X-Virtual-MTA (§3.3.7.29), or "" (none, or set by directives).

    ``powermta_auth_default_virtual_mta``, else the first injector's ``default_virtual_mta``, else the host's
    first pool with a vMTA, else its first vMTA: never the host's own address.
    """
    directives = settings.get("powermta_auth_source_directives")
    if isinstance(directives, dict) and "default-virtual-mta" in directives:
        return ""
    chosen = settings.get("powermta_auth_default_virtual_mta") or ""
    if not chosen:
        chosen = next((injector["default_virtual_mta"] for injector in injectors
                       if injector.get("default_virtual_mta")), "")
    if not chosen:
        used = {vmta.get("pool") or "" for vmta in vmtas}
        chosen = next((pool["name"] for pool in pools if pool["name"] in used), "")
    if not chosen and vmtas:
        chosen = vmtas[0]["name"]
    return str(chosen)


def derive(settings, model):
    """The derived facts of one host's model (``settings``: its variables, role defaults where absent)."""
    settings = dict(SETTING_DEFAULTS, **{key: value for key, value in settings.items() if value is not None})
    return {
        "warmup_includes": warmup_includes(model["vmtas"]),
        "pool_members": pool_members(model["pools"], model["vmtas"]),
        "starttls": starttls_offered(model["listeners"]),
        "authenticating": authenticating(model["injectors"]),
        "inbound": inbound(settings, model["domains"], model.get("bounce_mailbox")),
        "auth_default_virtual_mta": auth_default_virtual_mta(
            settings, model["injectors"], model["pools"], model["vmtas"]),
    }
