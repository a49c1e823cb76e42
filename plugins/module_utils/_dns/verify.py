# Copyright: mailops.powermta contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Check published mail DNS (SPF, DKIM, DMARC, PTR/FCrDNS, MX) against the fleet model.

PRIVATE to the collection: no compatibility promise outside it.
Plain Python over dnspython (no Ansible imports). Asks one given resolver or
authoritative server (``server``, ``port``) so it can check a test server or
a zone before delegation.
"""

from __future__ import annotations

import concurrent.futures
import functools
import ipaddress
import socket
import struct
import traceback

from .dkim_key import key_info
from .errors import RecordBuildError
from .mail_records import DMARC_POLICIES, SPF_LOOKUP_LIMIT, SPF_LOOKUP_MECHANISMS

try:
    import dns.exception
    import dns.message
    import dns.name
    import dns.rcode
    import dns.rdatatype
    import dns.resolver
except ImportError:  # the module reports it with missing_required_lib("dnspython")
    HAS_DNSPYTHON = False
    DNSPYTHON_IMPORT_ERROR = traceback.format_exc()
else:
    HAS_DNSPYTHON = True
    DNSPYTHON_IMPORT_ERROR = None

# checks a failure of which makes the module fail unless listed in ``advisory``
CHECKS = ("spf_record", "spf_lookups", "spf_authorizes_ip", "dkim_key", "dmarc_policy", "bounce_mx",
          "ptr", "fcrdns", "helo_spf")
DEFAULT_ADVISORY = ("helo_spf",)


def _txt_text(rdata):
    """The logical string of a TXT rdata (its strings joined), kept on the rdata: SPF is read per IP."""
    text = getattr(rdata, "_mailops_text", None)
    if text is None:
        text = b"".join(rdata.strings).decode("utf-8", "replace")
        try:
            object.__setattr__(rdata, "_mailops_text", text)  # dnspython rdata are immutable by convention
        except (AttributeError, TypeError):
            pass
    return text


def _key(name, rdtype):
    return str(name).rstrip(".").lower(), rdtype


class Lookup:
    """Answers from one server; NXDOMAIN / no answer are empty lists, other failures raise.

    Every answer is kept for the run (a fleet asks the same SPF, A and TXT names thousands of times), and
    ``prefetch`` asks many questions at once, pipelined over one TCP connection (RFC 7766 §6.2.1): a 50 x 64
    fleet's ~20,000 questions in about a second instead of one UDP round trip each. What the pipeline
    cannot answer plainly (an error rcode, a CNAME leaving the answer, a failed connection) is asked again
    the usual way, one by one, so errors are reported as before.
    """

    PIPELINE_WINDOW = 256
    CONNECTIONS = 8

    def __init__(self, server, port=53, timeout=5.0):
        self.resolver = dns.resolver.Resolver(configure=False)
        self.resolver.nameservers = [server]
        self.resolver.port = int(port)
        self.resolver.timeout = float(timeout)
        self.resolver.lifetime = float(timeout) * 2
        self.resolver.use_edns(0, 0, 1232)
        self.server = "%s port %s" % (server, port)
        self.address, self.port, self.timeout = server, int(port), float(timeout)
        self.cache = {}
        self.queries = 0

    def rrset(self, name, rdtype):
        key = _key(name, rdtype)
        if key in self.cache:
            return self.cache[key]
        self.queries += 1
        try:
            answer = self.resolver.resolve(name, rdtype, raise_on_no_answer=False, search=False)
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
            self.cache[key] = []
            return []
        except dns.resolver.NoNameservers as exc:
            raise LookupFailed("%s %s: %s refused or failed the query (%s)" % (name, rdtype, self.server, exc)) from exc
        except dns.exception.Timeout as exc:
            raise LookupFailed("%s %s: %s did not answer (timeout)" % (name, rdtype, self.server)) from exc
        self.cache[key] = list(answer.rrset) if answer.rrset is not None else []
        return self.cache[key]

    def prefetch(self, questions):
        """Ask ``[(name, rdtype)]`` not asked yet, pipelined over one TCP connection; fills the cache."""
        todo = [key for key in dict.fromkeys(_key(n, t) for n, t in questions) if key not in self.cache]
        if not todo:
            return
        self.queries += len(todo)
        # A server answers the queries of one connection in turn: a few connections keep it busy.
        shares = [todo[start::self.CONNECTIONS] for start in range(min(self.CONNECTIONS, len(todo)))]
        with concurrent.futures.ThreadPoolExecutor(len(shares)) as pool:
            list(pool.map(self._ask_share, shares))

    def _ask_share(self, questions):
        try:
            with socket.create_connection((self.address, self.port), timeout=self.timeout) as sock:
                for start in range(0, len(questions), self.PIPELINE_WINDOW):
                    self._pipeline(sock, questions[start:start + self.PIPELINE_WINDOW])
        except (OSError, EOFError, KeyError, ValueError, dns.exception.DNSException):
            return  # whatever is missing is asked one by one (and its failure reported) by rrset()

    def _pipeline(self, sock, batch):
        wires, pending = [], {}
        for ident, (name, rdtype) in enumerate(batch):
            qname = dns.name.from_text(name)
            # Header: RD set (the server may be a resolver), one question.
            wire = struct.pack("!HHHHHH", ident, 0x0100, 1, 0, 0, 0) + qname.to_wire() + struct.pack(
                "!HH", dns.rdatatype.from_text(rdtype), 1)
            wires.append(struct.pack("!H", len(wire)) + wire)
            pending[ident] = (name, rdtype, qname)
        sock.sendall(b"".join(wires))
        stream = b""
        while pending:
            while len(stream) < 2 or len(stream) < 2 + struct.unpack("!H", stream[:2])[0]:
                chunk = sock.recv(65536)
                if not chunk:
                    raise EOFError("connection closed")
                stream += chunk
            length = struct.unpack("!H", stream[:2])[0]
            data, stream = stream[2:2 + length], stream[2 + length:]
            response = dns.message.from_wire(data)
            name, rdtype, qname = pending.pop(response.id)
            self._keep(name, rdtype, qname, response)

    def _keep(self, name, rdtype, qname, response):
        """Cache the answer as ``resolve`` would give it; leave out what only a full resolution settles."""
        if not response.question or response.question[0].name != qname:
            return
        if response.rcode() == dns.rcode.NXDOMAIN:
            self.cache[(name, rdtype)] = []
            return
        if response.rcode() != dns.rcode.NOERROR:
            return
        wanted, target, followed = dns.rdatatype.from_text(rdtype), qname, False
        for _hop in range(8):
            found = next((r for r in response.answer if r.name == target and r.rdtype == wanted), None)
            if found is not None:
                self.cache[(name, rdtype)] = list(found)
                return
            alias = next((r for r in response.answer if r.name == target and r.rdtype == dns.rdatatype.CNAME), None)
            if alias is None:
                break
            target, followed = alias[0].target, True
        if not followed:
            self.cache[(name, rdtype)] = []  # no data of this type (NOERROR, empty answer)

    def txt(self, name):
        return [_txt_text(rd) for rd in self.rrset(name, "TXT")]

    def addresses(self, name):
        return [ipaddress.ip_address(rd.address) for t in ("A", "AAAA") for rd in self.rrset(name, t)]


class LookupFailed(Exception):
    pass


class SpfPermError(Exception):
    pass


# ---------------------------------------------------------------- SPF

def spf_records_at(lookup, domain):
    return [t for t in lookup.txt(domain) if t.lower() == "v=spf1" or t.lower().startswith("v=spf1 ")]


SPF_RESULTS = {"+": "pass", "-": "fail", "~": "softfail", "?": "neutral"}


@functools.lru_cache(maxsize=4096)
def _parsed_spf(text):
    """``(terms, redirect)`` of an SPF record, parsed once per run (a fleet's SPF is evaluated per IP):
    terms are ``(qualifier, mechanism, argument, term, bounds)``, ``bounds`` the ``(version, first, last)``
    address numbers of an ip4/ip6 network (None when it does not parse)."""
    terms, redirect = [], None
    for term in text.split()[1:]:
        if "=" in term and ":" not in term.split("=", 1)[0]:
            key, value = term.split("=", 1)
            if key.lower() == "redirect":
                redirect = value
            continue
        qualifier = term[0] if term[0] in "+-~?" else "+"
        body = term[1:] if term[0] in "+-~?" else term
        mechanism, _sep, argument = body.partition(":")
        if "/" in mechanism:  # a/24 without a domain
            mechanism, _sep, rest = mechanism.partition("/")
            argument = "/" + rest
        mechanism = mechanism.lower()
        bounds = None
        if mechanism in ("ip4", "ip6"):
            try:
                network = ipaddress.ip_network(argument, strict=False)
            except ValueError:
                pass
            else:
                bounds = (network.version, int(network.network_address), int(network.broadcast_address))
        terms.append((qualifier, mechanism, argument, term, bounds))
    return tuple(terms), redirect


class SpfEvaluator:
    """A small RFC 7208 evaluator: ip4, ip6, a, mx, include, exists, all, redirect (no macros)."""

    def __init__(self, lookup):
        self.lookup = lookup
        self.lookups = 0
        self.voids = 0

    def _count(self):
        self.lookups += 1
        if self.lookups > SPF_LOOKUP_LIMIT:
            raise SpfPermError("more than %d DNS lookups" % SPF_LOOKUP_LIMIT)

    def _addresses(self, name):
        found = self.lookup.addresses(name)
        if not found:
            self.voids += 1
        return found

    @staticmethod
    def _split_cidr(spec, default_domain):
        target, v4, v6 = spec, 32, 128
        if "/" in spec:
            parts = spec.split("/")
            target = parts[0]
            v4 = int(parts[1]) if len(parts) > 1 and parts[1] else 32
            if len(parts) > 2 and parts[-1]:
                v6 = int(parts[-1])
        return (target or default_domain), v4, v6

    @staticmethod
    def _in(ip, addresses, v4, v6):
        for address in addresses:
            prefix = v4 if address.version == 4 else v6
            if address.version == ip.version and ip in ipaddress.ip_network("%s/%d" % (address, prefix), strict=False):
                return True
        return False

    def check(self, ip, domain, depth=0):
        """``pass``/``fail``/``softfail``/``neutral``/``none`` for ``ip`` at ``domain``; raises SpfPermError."""
        if depth > 10:
            raise SpfPermError("include/redirect loop")
        records = spf_records_at(self.lookup, domain)
        if not records:
            return "none"
        if len(records) > 1:
            raise SpfPermError("%d SPF records at %s" % (len(records), domain))
        ip = ipaddress.ip_address(ip)
        ip_number = int(ip)
        terms, redirect = _parsed_spf(records[0])
        for qualifier, mechanism, argument, term, bounds in terms:
            matched = False
            if mechanism == "all":
                matched = True
            elif mechanism in ("ip4", "ip6"):
                if bounds is None:
                    raise SpfPermError("bad %s term %r" % (mechanism, term))
                matched = bounds[0] == ip.version and bounds[1] <= ip_number <= bounds[2]
            elif mechanism == "a":
                self._count()
                target, v4, v6 = self._split_cidr(argument, domain)
                matched = self._in(ip, self._addresses(target), v4, v6)
            elif mechanism == "mx":
                self._count()
                target, v4, v6 = self._split_cidr(argument, domain)
                for rd in self.lookup.rrset(target, "MX"):
                    if self._in(ip, self._addresses(rd.exchange.to_text()), v4, v6):
                        matched = True
                        break
            elif mechanism == "include":
                self._count()
                inner = self.check(ip, argument, depth + 1)
                if inner == "none":
                    raise SpfPermError("include:%s has no SPF record" % argument)
                matched = inner == "pass"
            elif mechanism == "exists":
                self._count()
                matched = bool(self.lookup.rrset(argument, "A"))
            elif mechanism == "ptr":
                self._count()
            else:
                raise SpfPermError("unknown mechanism %r" % term)
            if matched:
                return SPF_RESULTS[qualifier]
        if redirect:
            self._count()
            return self.check(ip, redirect, depth + 1)
        return "neutral"


def count_spf_lookups(lookup, domain, depth=0):
    """DNS-querying terms in the SPF tree of ``domain`` (includes and redirects followed)."""
    if depth > 10:
        raise SpfPermError("include/redirect loop")
    records = spf_records_at(lookup, domain)
    if len(records) != 1:
        return 0
    total = 0
    for term in records[0].split()[1:]:
        body = term.lstrip("+-~?")
        name = body.split(":", 1)[0].split("=", 1)[0].split("/", 1)[0].lower()
        if name in SPF_LOOKUP_MECHANISMS:
            total += 1
            if name in ("include", "redirect"):
                total += count_spf_lookups(lookup, body.split(":", 1)[-1].split("=", 1)[-1], depth + 1)
    return total


# ---------------------------------------------------------------- tag records

def parse_tags(text):
    tags = {}
    for part in text.split(";"):
        if "=" in part:
            key, value = part.split("=", 1)
            tags[key.strip().lower()] = "".join(value.split())
    return tags


# ---------------------------------------------------------------- the checks

class Verifier:
    def __init__(self, lookup, advisory=DEFAULT_ADVISORY):
        self.lookup = lookup
        self.advisory = set(advisory or ())
        self.checks = []
        self.provider_requests = []

    def add(self, subject, check, ok, detail, required=True):
        self.checks.append({"subject": subject, "check": check, "ok": bool(ok), "detail": detail,
                            "required": required and check not in self.advisory})

    def safely(self, subject, check, function):
        try:
            function()
        except LookupFailed as exc:
            self.add(subject, check, False, "lookup failed: %s" % exc)

    def verify_spf(self, domain, ips):
        def run():
            records = spf_records_at(self.lookup, domain)
            self.add(domain, "spf_record", len(records) == 1,
                     "one SPF record: %s" % records[0] if len(records) == 1 else
                     "%d SPF (v=spf1) TXT records at %s; exactly one is allowed (RFC 7208 §3.2)"
                     % (len(records), domain))
            if len(records) != 1:
                return
            try:
                lookups = count_spf_lookups(self.lookup, domain)
                self.add(domain, "spf_lookups", lookups <= SPF_LOOKUP_LIMIT,
                         "%d DNS lookups (limit %d)" % (lookups, SPF_LOOKUP_LIMIT))
            except SpfPermError as exc:
                self.add(domain, "spf_lookups", False, "permerror: %s" % exc)
            for ip in ips:
                try:
                    result = SpfEvaluator(self.lookup).check(ip, domain)
                except SpfPermError as exc:
                    result = "permerror (%s)" % exc
                self.add("%s %s" % (domain, ip), "spf_authorizes_ip", result == "pass",
                         "SPF result for %s at %s: %s" % (ip, domain, result))
        self.safely(domain, "spf_record", run)

    def verify_dkim(self, domain, selector, public_key=None, min_bits=1024):
        name = "%s._domainkey.%s" % (selector, domain)

        def run():
            if any(rd.rdtype == dns.rdatatype.CNAME for rd in self.lookup.rrset(name, "CNAME")):
                self.add(name, "dkim_key", False, "%s is a CNAME; the TXT must be at the name itself" % name)
                return
            records = self.lookup.txt(name)
            if len(records) != 1:
                self.add(name, "dkim_key", False, "%d TXT records at %s; exactly one DKIM key record expected"
                         % (len(records), name))
                return
            tags = parse_tags(records[0])
            problems = []
            if "v" in tags and (tags["v"] != "DKIM1" or not records[0].lstrip().startswith("v=")):
                problems.append("v= must be DKIM1 and first")
            kind = tags.get("k", "rsa")
            if kind not in ("rsa", "ed25519"):
                problems.append("unknown k=%s" % kind)
            if not tags.get("p"):
                problems.append("p= is empty (key revoked) or missing")
            bits = None
            if not problems:
                try:
                    if kind == "ed25519":
                        bits = 256
                    else:
                        kind_found, bits, _p = key_info(tags["p"])
                        if kind_found != "rsa":
                            problems.append("k=rsa but p= is not an RSA key")
                        elif bits < min_bits:
                            problems.append("RSA key of %d bits, below %d (RFC 8301)" % (bits, min_bits))
                except RecordBuildError as exc:
                    problems.append("p= does not parse: %s" % exc)
            if not problems and public_key:
                try:
                    expected = key_info(public_key)[2]
                except RecordBuildError as exc:
                    problems.append("the expected public key does not parse: %s" % exc)
                else:
                    if expected != tags["p"]:
                        problems.append("published key differs from the key PowerMTA signs with")
            self.add(name, "dkim_key", not problems,
                     "; ".join(problems) if problems else "%s key, %s bits%s" % (
                         kind, bits, ", matches the signing key" if public_key else ""))
        self.safely(name, "dkim_key", run)

    def verify_dmarc(self, domain, minimum_policy="none"):
        name = "_dmarc.%s" % domain

        def run():
            records = [t for t in self.lookup.txt(name) if t.replace(" ", "").startswith("v=DMARC1")]
            if len(records) != 1:
                self.add(domain, "dmarc_policy", False, "%d DMARC records at %s; exactly one expected"
                         % (len(records), name))
                return
            tags = parse_tags(records[0])
            policy = tags.get("p")
            problems = []
            if policy not in DMARC_POLICIES:
                problems.append("p=%s is not none/quarantine/reject" % policy)
            elif DMARC_POLICIES.index(policy) < DMARC_POLICIES.index(minimum_policy):
                problems.append("p=%s is weaker than the configured stage %s" % (policy, minimum_policy))
            if not tags.get("rua"):
                problems.append("no rua= report address")
            self.add(domain, "dmarc_policy", not problems,
                     "; ".join(problems) if problems else "p=%s (stage %s), rua=%s" % (policy, minimum_policy,
                                                                                       tags["rua"]))
        self.safely(domain, "dmarc_policy", run)

    def verify_mx(self, name):
        def run():
            exchanges = [rd.exchange.to_text() for rd in self.lookup.rrset(name, "MX")]
            self.add(name, "bounce_mx", bool(exchanges),
                     "MX: %s" % ", ".join(sorted(exchanges)) if exchanges else "no MX at bounce domain %s" % name)
        self.safely(name, "bounce_mx", run)

    def verify_ip(self, ip, hostname=None, ptr_required=True):
        """PTR = HELO name and FCrDNS; with ``ptr_required`` False (the provider owns the reverse zone)
        they are reported, not required, and ``provider_requests`` says what to ask the provider for."""
        address = ipaddress.ip_address(ip)
        subject = str(address)
        wanted = hostname.rstrip(".").lower() if hostname else None

        def request(current):
            if not ptr_required and wanted:
                self.provider_requests.append({"ip": subject, "ptr_name": address.reverse_pointer,
                                               "wanted": wanted + ".", "current": current})

        def run():
            pointers = self.lookup.rrset(address.reverse_pointer, "PTR")
            targets = [rd.target.to_text().rstrip(".").lower() for rd in pointers]
            if len(targets) != 1:
                self.add(subject, "ptr", False, "%d PTR records at %s; exactly one expected"
                         % (len(targets), address.reverse_pointer), ptr_required)
                request([t + "." for t in targets])
                return
            ok = wanted is None or targets[0] == wanted
            self.add(subject, "ptr", ok, "PTR %s%s" % (targets[0], "" if ok else " but the HELO name is %s" % wanted),
                     ptr_required)
            forward = self.lookup.addresses(targets[0])
            self.add(subject, "fcrdns", address in forward,
                     "%s resolves to %s" % (targets[0], ", ".join(str(a) for a in forward) or "nothing"), ptr_required)
            if not ok:
                request([targets[0] + "."])
            if hostname:
                try:
                    result = SpfEvaluator(self.lookup).check(address, hostname)
                except SpfPermError as exc:
                    result = "permerror (%s)" % exc
                self.add(subject, "helo_spf", result == "pass", "HELO SPF at %s: %s" % (hostname, result))

        try:
            run()
        except LookupFailed as exc:
            self.add(subject, "ptr", False, "lookup failed: %s" % exc, ptr_required)


def _prefetch(lookup, prefetch, domains, ips):
    """Ask up front, in two pipelined rounds, what the checks below will ask (they then read the cache)."""
    first = []
    for domain in domains:
        name = domain["name"].rstrip(".").lower()
        first += [(name, "TXT"), ("_dmarc." + name, "TXT")]
        for key in domain.get("dkim") or []:
            selector = "%s._domainkey.%s" % (key["selector"], name)
            first += [(selector, "CNAME"), (selector, "TXT")]
        if domain.get("bounce_domain"):
            first.append((domain["bounce_domain"].rstrip(".").lower(), "MX"))
    for item in ips:
        first.append((ipaddress.ip_address(item["ip"]).reverse_pointer, "PTR"))
        if item.get("hostname"):
            first += [(item["hostname"], "TXT"), (item["hostname"], "A"), (item["hostname"], "AAAA")]
    prefetch(first)
    second = []
    for (_name, rdtype), values in list(lookup.cache.items()):
        if rdtype == "PTR" or rdtype == "MX":
            for rdata in values:
                target = (rdata.target if rdtype == "PTR" else rdata.exchange).to_text()
                second += [(target, "A"), (target, "AAAA")]
        elif rdtype == "TXT":
            for rdata in values:
                text = b"".join(rdata.strings).decode("utf-8", "replace")
                if not text.lower().startswith("v=spf1 "):
                    continue
                for term in text.split()[1:]:
                    body = term.lstrip("+-~?")
                    if body.lower().startswith(("include:", "redirect=")):
                        second.append((body[8:] if body[7] == ":" else body[9:], "TXT"))
    prefetch(second)


def verify(lookup, domains=(), ips=(), advisory=DEFAULT_ADVISORY, provider_requests=None):
    """Run every check; returns ``(checks, failed_required)``.

    ``ips[].ptr: verify`` makes the PTR checks of that IP advisory and appends what the hosting provider
    must publish to ``provider_requests`` (a list) when the PTR is missing or wrong.

    ``domains``: ``[{name, spf_ips, dkim: [{selector, public_key}], dmarc_policy, bounce_domain}]``;
    ``ips``: ``[{ip, hostname, ptr}]``.
    """
    verifier = Verifier(lookup, advisory)
    prefetch = getattr(lookup, "prefetch", None)
    if prefetch is not None:
        _prefetch(lookup, prefetch, domains, ips)
    for domain in domains:
        name = domain["name"].rstrip(".").lower()
        verifier.verify_spf(name, domain.get("spf_ips") or [])
        for key in domain.get("dkim") or []:
            verifier.verify_dkim(name, key["selector"], key.get("public_key"))
        verifier.verify_dmarc(name, domain.get("dmarc_policy") or "none")
        if domain.get("bounce_domain"):
            verifier.verify_mx(domain["bounce_domain"].rstrip(".").lower())
    for item in ips:
        verifier.verify_ip(item["ip"], item.get("hostname"), item.get("ptr", "publish") != "verify")
    failed = [c for c in verifier.checks if c["required"] and not c["ok"]]
    if provider_requests is not None:
        provider_requests.extend(verifier.provider_requests)
    return verifier.checks, failed
