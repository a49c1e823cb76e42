# Copyright: mailops.powermta contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Mail DNS record builders: SPF, DKIM, DMARC, MX, A/AAAA, PTR, MTA-STS, TLS-RPT.

PRIVATE to the collection: no compatibility promise outside it.
Standard library only (no dnspython, no Ansible), so filters, modules and
tests share it. Every builder returns records in the ``dns_records`` shape:
``{name, type, ttl, values}`` with absolute names without the trailing dot and
rdata targets with it.
"""

from __future__ import annotations

import ipaddress
import re

from .dkim_key import key_info, public_key_der
from .errors import RecordBuildError

DEFAULT_TTL = 3600
SPF_LOOKUP_LIMIT = 10
# RFC 7208 §3.4: keep an SPF answer small enough for a 512-byte UDP response.
SPF_MAX_LENGTH = 450
DMARC_POLICIES = ("none", "quarantine", "reject")
SPF_LOOKUP_MECHANISMS = ("include", "a", "mx", "ptr", "exists", "redirect")


# ---------------------------------------------------------------- helpers

def fqdn(name, what="name"):
    """Lower-case absolute name without the trailing dot; validates label syntax."""
    if not isinstance(name, str) or not name.strip(". "):
        raise RecordBuildError("%s must be a DNS name, got %r" % (what, name))
    text = name.strip().rstrip(".").lower()
    for label in text.split("."):
        if not label or len(label) > 63 or not re.fullmatch(r"[a-z0-9_]([a-z0-9_-]*[a-z0-9])?", label):
            raise RecordBuildError("%s %r has an invalid label %r" % (what, name, label))
    return text


def target(name, what="target"):
    """A name used inside rdata: absolute, with the trailing dot."""
    return fqdn(name, what) + "."


def record(name, rtype, values, ttl=DEFAULT_TTL):
    """One ``dns_records`` item. TXT records are ``shared``: the fleet owns only its ``v=`` tagged value
    (SPF, DKIM, DMARC...) and leaves other values at the name (site verifications) alone."""
    item = {"name": name, "type": rtype, "ttl": ttl, "values": list(values)}
    if rtype == "TXT":
        item["shared"] = True
    return item


def parse_ip(value, what="ip"):
    try:
        return ipaddress.ip_address(str(value).strip())
    except ValueError as exc:
        raise RecordBuildError("%s %r is not an IPv4 or IPv6 address" % (what, value)) from exc


def reverse_name(ip):
    """``10.2.0.192.in-addr.arpa`` / nibble ``...ip6.arpa`` name of an address."""
    return parse_ip(ip).reverse_pointer


# ---------------------------------------------------------------- SPF

def spf_lookup_count(terms):
    """DNS-querying terms among SPF ``terms`` (RFC 7208 §4.6.4); nested includes count as one here."""
    count = 0
    for term in terms:
        mechanism = term.lstrip("+-~?").split(":", 1)[0].split("=", 1)[0].split("/", 1)[0].lower()
        if mechanism in SPF_LOOKUP_MECHANISMS:
            count += 1
    return count


def spf_ip_terms(ips):
    """``ip4:``/``ip6:`` terms for ``ips``, adjacent addresses collapsed into exact CIDRs."""
    v4, v6 = [], []
    for ip in ips:
        address = parse_ip(ip, "SPF sending IP")
        (v4 if address.version == 4 else v6).append(ipaddress.ip_network(address))
    terms = []
    for prefix, networks in (("ip4", v4), ("ip6", v6)):
        for net in ipaddress.collapse_addresses(networks):
            single = net.prefixlen == net.max_prefixlen
            terms.append("%s:%s" % (prefix, net.network_address if single else net))
    return terms


def spf_records(domain, ips, extra_terms=None, all_qualifier="-all", ttl=DEFAULT_TTL,
                max_length=SPF_MAX_LENGTH, include_prefix="_spf"):
    """SPF TXT for ``domain`` authorising every IP in ``ips``; split over includes when too long.

    ``extra_terms`` (e.g. ``include:_spf.example.net``) go first and count towards
    the 10-lookup limit. ``ptr`` is refused (RFC 7208 §5.5: do not use).
    Overflow records are ``<include_prefix><n>.<domain>`` with ``v=spf1 <ip terms> -all``.
    """
    domain = fqdn(domain, "SPF domain")
    extra = [str(t).strip() for t in (extra_terms or []) if str(t).strip()]
    for term in extra:
        bare = term.lstrip("+-~?").split(":", 1)[0].lower()
        if bare == "ptr":
            raise RecordBuildError("SPF of %s: the ptr mechanism is deprecated (RFC 7208 §5.5); remove it" % domain)
        if bare == "all" or term.lower().startswith("v=spf1"):
            raise RecordBuildError("SPF of %s: extra term %r is added by the builder; remove it" % (domain, term))
    if all_qualifier not in ("-all", "~all", "?all"):
        raise RecordBuildError("SPF all qualifier must be -all, ~all or ?all, got %r" % all_qualifier)
    ip_terms = spf_ip_terms(ips)
    head = "v=spf1"
    main = " ".join([head] + extra + ip_terms + [all_qualifier])
    if len(main.encode()) <= max_length:
        records = [record(domain, "TXT", [main], ttl)]
    else:
        chunks, current = [], []
        budget = max_length - len("v=spf1  -all")
        for term in ip_terms:
            if current and len(" ".join(current + [term])) > budget:
                chunks.append(current)
                current = []
            current.append(term)
        if current:
            chunks.append(current)
        include_names = ["%s%d.%s" % (include_prefix, n + 1, domain) for n in range(len(chunks))]
        main = " ".join([head] + extra + ["include:%s" % n for n in include_names] + [all_qualifier])
        if len(main.encode()) > max_length:
            raise RecordBuildError("SPF of %s is still %d bytes after splitting; reduce extra_terms"
                                   % (domain, len(main.encode())))
        records = [record(domain, "TXT", [main], ttl)]
        for name, chunk in zip(include_names, chunks, strict=True):
            records.append(record(name, "TXT", [" ".join(["v=spf1"] + chunk + ["-all"])], ttl))
    lookups = spf_lookup_count(main.split()[1:])
    if lookups > SPF_LOOKUP_LIMIT:
        raise RecordBuildError(
            "SPF of %s needs %d DNS lookups, more than the limit of %d (RFC 7208 §4.6.4): fewer include/a/mx "
            "terms, or group sending IPs into fewer CIDRs" % (domain, lookups, SPF_LOOKUP_LIMIT)
        )
    return records


def helo_spf_record(hostname, ttl=DEFAULT_TTL):
    """``v=spf1 a -all`` at a vMTA HELO name (its own A/AAAA authorises it)."""
    return record(fqdn(hostname, "HELO hostname"), "TXT", ["v=spf1 a -all"], ttl)


# ---------------------------------------------------------------- DKIM

def dkim_record(domain, selector, public_key, ttl=DEFAULT_TTL, min_bits=1024, testing=False):
    """``v=DKIM1; k=rsa; p=...`` at ``<selector>._domainkey.<domain>``."""
    domain = fqdn(domain, "DKIM domain")
    selector = fqdn(selector, "DKIM selector of %s" % domain)
    kind, bits, p_value = key_info(public_key)
    if kind == "rsa" and bits < min_bits:
        raise RecordBuildError("DKIM key %s._domainkey.%s is %d bits; RFC 8301 requires at least %d (2048 recommended)"
                               % (selector, domain, bits, min_bits))
    tags = ["v=DKIM1", "k=%s" % kind]
    if testing:
        tags.append("t=y")
    tags.append("p=%s" % p_value)
    return record("%s._domainkey.%s" % (selector, domain), "TXT", ["; ".join(tags)], ttl)


# ---------------------------------------------------------------- DMARC

def _mailto_list(value, what):
    items = value if isinstance(value, list) else str(value or "").split(",")
    uris = []
    for item in items:
        item = str(item).strip()
        if not item:
            continue
        if not item.lower().startswith("mailto:"):
            item = "mailto:" + item
        if "@" not in item:
            raise RecordBuildError("%s %r is not a mailto: address" % (what, item))
        uris.append(item)
    return uris


def dmarc_record(domain, policy, rua, subdomain_policy=None, adkim=None, aspf=None, ruf=None, fo=None,
                 ttl=DEFAULT_TTL):
    """``v=DMARC1; p=...; rua=...`` at ``_dmarc.<domain>``; ``rua`` is required (staging needs reports)."""
    domain = fqdn(domain, "DMARC domain")
    if policy not in DMARC_POLICIES:
        raise RecordBuildError("dmarc_policy of %s must be one of none, quarantine, reject (staged in that order), "
                               "got %r" % (domain, policy))
    rua_uris = _mailto_list(rua, "dmarc_rua of %s" % domain)
    if not rua_uris:
        raise RecordBuildError("dmarc_rua of %s is required: set it to mailto:<address> to receive the aggregate "
                               "reports that tell you when it is safe to move the policy on" % domain)
    tags = ["v=DMARC1", "p=%s" % policy]
    if subdomain_policy:
        if subdomain_policy not in DMARC_POLICIES:
            raise RecordBuildError("DMARC sp of %s must be none, quarantine or reject" % domain)
        tags.append("sp=%s" % subdomain_policy)
    for tag, value in (("adkim", adkim), ("aspf", aspf)):
        if value:
            if value not in ("r", "s"):
                raise RecordBuildError("DMARC %s of %s must be r or s, got %r" % (tag, domain, value))
            tags.append("%s=%s" % (tag, value))
    tags.append("rua=%s" % ",".join(rua_uris))
    if ruf:
        tags.append("ruf=%s" % ",".join(_mailto_list(ruf, "dmarc_ruf of %s" % domain)))
        if fo:
            tags.append("fo=%s" % fo)
    return record("_dmarc.%s" % domain, "TXT", ["; ".join(tags)], ttl)


# ---------------------------------------------------------------- MX, A/AAAA, PTR, MTA-STS, TLS-RPT

def mx_record(name, exchanges, ttl=DEFAULT_TTL):
    """MX at ``name``: ``exchanges`` is a list of host names or ``{exchange, preference}``."""
    values = []
    if isinstance(exchanges, str):  # one host name, not its characters ("MX exchange ... got '.'")
        exchanges = [exchanges]
    for item in exchanges or []:
        if isinstance(item, dict):
            exchange, preference = item.get("exchange"), item.get("preference", 10)
        else:
            exchange, preference = item, 10
        if not isinstance(preference, int) or not 0 <= preference <= 65535:
            raise RecordBuildError("MX preference for %s must be 0..65535, got %r" % (name, preference))
        values.append("%d %s" % (preference, target(exchange, "MX exchange of %s" % name)))
    if not values:
        raise RecordBuildError("MX of %s needs at least one exchange" % name)
    return record(fqdn(name, "MX name"), "MX", sorted(set(values)), ttl)


def address_records(vmtas, ttl=DEFAULT_TTL):
    """A/AAAA per vMTA hostname (several vMTAs may share a name: one RRset with all IPs)."""
    by_key = {}
    for vmta in vmtas:
        hostname = fqdn(vmta.get("hostname"), "hostname of vMTA %s" % vmta.get("name"))
        address = parse_ip(vmta.get("ip"), "ip of vMTA %s" % vmta.get("name"))
        rtype = "A" if address.version == 4 else "AAAA"
        by_key.setdefault((hostname, rtype), set()).add(str(address))
    return [record(name, rtype, sorted(ips), ttl) for (name, rtype), ips in sorted(by_key.items())]


def ptr_records(vmtas, ttl=DEFAULT_TTL):
    """One PTR per sending IP = its vMTA hostname (forward-confirmed by ``address_records``)."""
    by_ip = {}
    for vmta in vmtas:
        address = parse_ip(vmta.get("ip"), "ip of vMTA %s" % vmta.get("name"))
        hostname = fqdn(vmta.get("hostname"), "hostname of vMTA %s" % vmta.get("name"))
        if by_ip.get(address, hostname) != hostname:
            raise RecordBuildError("IP %s is used with two hostnames (%s, %s): one PTR per IP, make them equal"
                                   % (address, by_ip[address], hostname))
        by_ip[address] = hostname
    return [record(address.reverse_pointer, "PTR", [hostname + "."], ttl)
            for address, hostname in sorted(by_ip.items(), key=lambda kv: (kv[0].version, kv[0]))]


def mta_sts_record(domain, policy_id, ttl=DEFAULT_TTL):
    domain = fqdn(domain, "MTA-STS domain")
    if not re.fullmatch(r"[A-Za-z0-9]{1,32}", str(policy_id)):
        raise RecordBuildError("MTA-STS id of %s must be 1-32 letters/digits, got %r" % (domain, policy_id))
    return record("_mta-sts.%s" % domain, "TXT", ["v=STSv1; id=%s" % policy_id], ttl)


def tls_rpt_record(domain, rua, ttl=DEFAULT_TTL):
    domain = fqdn(domain, "TLS-RPT domain")
    uris = _mailto_list(rua, "tls_rpt_rua of %s" % domain)
    if not uris:
        raise RecordBuildError("tls_rpt_rua of %s must name at least one mailto: address" % domain)
    return record("_smtp._tls.%s" % domain, "TXT", ["v=TLSRPTv1; rua=%s" % ",".join(uris)], ttl)


# ---------------------------------------------------------------- PTR: publish or only verify

PTR_MODES = ("publish", "verify")


def _ptr_matchers(verify_only):
    """Networks and reverse-zone suffixes from ``[reverse zone | IP | CIDR]``."""
    networks, zones = [], []
    for item in verify_only or []:
        text = str(item).strip().rstrip(".").lower()
        if text.endswith((".in-addr.arpa", ".ip6.arpa")):
            zones.append(text)
            continue
        try:
            networks.append(ipaddress.ip_network(text, strict=False))
        except ValueError as exc:
            raise RecordBuildError("dns_ptr_verify_only item %r is neither a reverse zone (…in-addr.arpa, "
                                   "…ip6.arpa), an IP nor a CIDR" % (item,)) from exc
    return networks, zones


def ptr_mode(ip, default="publish", verify_only=None):
    """``publish`` or ``verify`` for one sending IP: ``verify`` when its reverse name is in a listed reverse
    zone or the IP in a listed network (the hosting provider owns that reverse zone)."""
    if default not in PTR_MODES:
        raise RecordBuildError("dns_ptr must be publish or verify, got %r" % (default,))
    address = parse_ip(ip)
    networks, zones = _ptr_matchers(verify_only)
    pointer = address.reverse_pointer
    if any(address in net for net in networks if net.version == address.version) or \
            any(pointer == zone or pointer.endswith("." + zone) for zone in zones):
        return "verify"
    return default


def _ptr_modes(vmtas, default="publish", verify_only=None):
    """``{address: publish | verify}`` of every vMTA with an IP (``ptr_mode``), in vMTA order."""
    modes = {}
    for vmta in vmtas or []:
        if vmta.get("ip"):
            address = parse_ip(vmta["ip"], "ip of vMTA %s" % vmta.get("name"))
            if address not in modes:
                modes[address] = ptr_mode(address, default, verify_only)
    return modes


def _verify_names(modes):
    return sorted({address.reverse_pointer for address, mode in modes.items() if mode == "verify"})


def ptr_verify_names(vmtas, default="publish", verify_only=None):
    """Reverse names of the sending IPs whose PTR is only verified (never written, never pruned)."""
    return _verify_names(_ptr_modes(vmtas, default, verify_only))


# ---------------------------------------------------------------- the whole set

def _default_exchanges(vmtas):
    """One MX per PowerMTA host (its first vMTA's name) when hosts are known, else every vMTA name."""
    first_per_host = {}
    for vmta in vmtas:
        if vmta.get("inventory_host"):
            first_per_host.setdefault(vmta["inventory_host"], vmta["hostname"])
    return sorted(set(first_per_host.values()) or {v["hostname"] for v in vmtas})


def _dkim_keys(dkim_keys):
    """``{(domain, selector): public key}``: one key per selector across the fleet."""
    keys = {}
    for key in dkim_keys or []:
        ident = (fqdn(key.get("domain"), "DKIM key domain"), fqdn(key.get("selector"), "DKIM key selector"))
        pem = key.get("public_key_pem") or key.get("public_key")
        if ident in keys and public_key_der(keys[ident]) != public_key_der(pem):
            raise RecordBuildError("DKIM selector %s._domainkey.%s has different public keys on different hosts; "
                                   "use one key per selector across the fleet" % (ident[1], ident[0]))
        keys[ident] = pem
    return keys


def _decide(domains, vmtas, dkim_keys, ptr, ptr_verify_only):
    """What the fleet publishes and verifies, decided once; the records and the verify spec are views of it.

    ``vmtas``: the sending vMTAs (an IP and a hostname); ``modes``: each IP's PTR mode; ``keys``: the DKIM public
    keys; ``domains``: per domain (input order) its name, the IPs its SPF authorises (``spf_ips``, else every
    sending IP), its DKIM selectors, DMARC policy and bounce domain (None when it has none).
    """
    modes = _ptr_modes(vmtas, ptr, ptr_verify_only)
    sending = [v for v in (vmtas or []) if v.get("ip") and v.get("hostname")]
    all_ips = sorted({str(parse_ip(v["ip"], "ip of vMTA %s" % v.get("name"))) for v in sending})
    decided = []
    for domain in domains or []:
        name = fqdn(domain.get("name"), "domain name")
        decided.append({
            "name": name,
            "spf_ips": [str(parse_ip(ip, "SPF sending IP")) for ip in domain.get("spf_ips") or all_ips],
            "selectors": [fqdn(selector, "DKIM selector of %s" % name) for selector in domain.get("dkim_selectors")
                          or []],
            "dmarc_policy": domain.get("dmarc_policy", "none"),
            "bounce_domain": fqdn(domain["bounce_domain"], "bounce_domain of %s" % name)
            if domain.get("bounce_domain") else None,
        })
    return {"vmtas": sending, "modes": modes, "keys": _dkim_keys(dkim_keys), "domains": decided}


def _records(decided, domains, ttl, spf_all, bounce_mx, require_dkim):
    """The records of ``_decide``'s decisions (``domains``: the same input, for what only records use)."""
    vmtas, keys = decided["vmtas"], decided["keys"]
    # Addresses first: BIND checks in-zone MX targets have A/AAAA within the same UPDATE.
    records = address_records(vmtas, ttl)
    for domain, plan in zip(domains or [], decided["domains"], strict=True):
        name = plan["name"]
        records.extend(spf_records(name, plan["spf_ips"], domain.get("spf_extra_terms"), spf_all, ttl))
        for selector in plan["selectors"]:
            if (name, selector) not in keys:
                if require_dkim:
                    raise RecordBuildError("no DKIM public key for selector %s of %s: run the powermta role first "
                                           "(it makes the key; the dns role reads its public half from the "
                                           "hosts, or takes powermta_dkim_public_keys)" % (selector, name))
                continue
            records.append(dkim_record(name, selector, keys[(name, selector)], ttl))
        records.append(dmarc_record(name, plan["dmarc_policy"], domain.get("dmarc_rua"),
                                    domain.get("dmarc_subdomain_policy"), ttl=ttl))
        if plan["bounce_domain"]:
            exchanges = domain.get("bounce_mx") or bounce_mx or _default_exchanges(vmtas)
            records.append(mx_record(plan["bounce_domain"], exchanges, ttl))
        if domain.get("mta_sts_id"):
            records.append(mta_sts_record(name, domain["mta_sts_id"], ttl))
        if domain.get("tls_rpt_rua"):
            records.append(tls_rpt_record(name, domain["tls_rpt_rua"], ttl))
    records.extend(helo_spf_record(h, ttl) for h in sorted({fqdn(v["hostname"]) for v in vmtas}))
    modes = decided["modes"]
    records.extend(ptr_records([v for v in vmtas if modes[parse_ip(v["ip"])] == "publish"], ttl))
    seen = {}
    for item in records:
        key = (item["name"], item["type"])
        if key in seen:
            raise RecordBuildError("two records for %s %s (e.g. a vMTA hostname equal to a sending domain, whose "
                                   "SPF would clash with the HELO SPF); use distinct names" % key)
        seen[key] = item
    return records


def _verify(decided):
    """``{domains, ips}`` options of ``dns_verify``: the same decisions the records were built from."""
    keys = decided["keys"]
    domains = []
    for plan in decided["domains"]:
        dkim = []
        for selector in plan["selectors"]:
            entry = {"selector": selector}
            if keys.get((plan["name"], selector)):
                entry["public_key"] = keys[(plan["name"], selector)]
            dkim.append(entry)
        item = {"name": plan["name"], "spf_ips": list(plan["spf_ips"]), "dkim": dkim,
                "dmarc_policy": plan["dmarc_policy"]}
        if plan["bounce_domain"]:
            item["bounce_domain"] = plan["bounce_domain"]
        domains.append(item)
    hostnames = {}
    for vmta in decided["vmtas"]:
        hostnames.setdefault(str(parse_ip(vmta["ip"])), fqdn(vmta["hostname"]))
    modes = {str(address): mode for address, mode in decided["modes"].items()}
    return {"domains": domains, "ips": [{"ip": ip, "hostname": host, "ptr": modes[ip]}
                                        for ip, host in sorted(hostnames.items())]}


def mail_plan(domains, vmtas, dkim_keys=None, ttl=DEFAULT_TTL, spf_all="-all", bounce_mx=None,
              require_dkim=True, ptr="publish", ptr_verify_only=None):
    """Every record a fleet needs and how to verify them, from one set of decisions (``_decide``).

    Returns ``{records, verify, ptr_verify_names}``: ``records`` as ``mail_records``, ``verify`` the ``{domains,
    ips}`` options of ``dns_verify`` (the same SPF IPs, DKIM selectors and keys, bounce domains and PTR modes),
    ``ptr_verify_names`` the reverse names only verified (``dns_records``' ``prune_exclude``).
    """
    decided = _decide(domains, vmtas, dkim_keys, ptr, ptr_verify_only)
    return {"records": _records(decided, domains, ttl, spf_all, bounce_mx, require_dkim),
            "verify": _verify(decided), "ptr_verify_names": _verify_names(decided["modes"])}


def mail_records(domains, vmtas, dkim_keys=None, ttl=DEFAULT_TTL, spf_all="-all", bounce_mx=None,
                 require_dkim=True, ptr="publish", ptr_verify_only=None):
    """Every record a fleet needs, from the fleet model (the ``records`` of ``mail_plan``).

    ``domains``: ``[{name, dkim_selectors, dmarc_policy, dmarc_rua, bounce_domain, spf_extra_terms,
    spf_ips, dmarc_subdomain_policy, mta_sts_id, tls_rpt_rua}]``; ``vmtas``: ``[{name, ip, hostname}]``;
    ``dkim_keys``: ``[{domain, selector, public_key_pem}]``. Each domain's SPF lists every vMTA IP
    unless the domain gives ``spf_ips``. ``bounce_mx``: exchanges for bounce domains (default: the
    vMTA hostnames). Duplicate name+type from different builders is an error. ``ptr`` / ``ptr_verify_only``:
    PTRs of IPs in verify-only reverse zones are left out (see ``ptr_mode``).
    """
    decided = _decide(domains, vmtas, dkim_keys, ptr, ptr_verify_only)
    return _records(decided, domains, ttl, spf_all, bounce_mx, require_dkim)


def verify_spec(domains, vmtas, dkim_keys=None, ptr="publish", ptr_verify_only=None):
    """``{domains, ips}`` options for ``dns_verify`` (the ``verify`` of ``mail_plan``, without building records)."""
    return _verify(_decide(domains, vmtas, dkim_keys, ptr, ptr_verify_only))
