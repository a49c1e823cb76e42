# Copyright: mailops.powermta contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""One zone transfer (AXFR over TCP) read message by message, its TSIG checked across the messages.

PRIVATE to the collection: no compatibility promise outside it. No network here: ``transport`` sends the
queries and hands each message (wire) to the ``ZoneTransfer`` it belongs to; unit tests feed recorded ones.

TSIG over a multi-message answer, RFC 8945 §5.3.1: the first message's MAC covers the request MAC and the
message; each later signed message's MAC covers the previous MAC, the unsigned messages since then (whole)
and this message, with only the timers of its TSIG. dnspython computes that chain (``dns.message.from_wire``
with ``multi=True`` and the running ``tsig_ctx``, the way ``dns.query.inbound_xfr`` reads); this class adds
what §5.3.1 requires of the client on top: the first and the last message MUST be signed, and at most 99
messages in a row may come unsigned. Anything that does not verify, or a transfer that ends early, is a
``TransferFailed``: the caller reads that zone by queries instead (never from a partial transfer).
"""

from __future__ import annotations

from .zones import add_rrset

try:
    import dns.exception
    import dns.flags
    import dns.message
    import dns.rcode
    import dns.rdatatype
    import dns.tsig
except ImportError:  # reported by the modules through values.HAS_DNSPYTHON
    pass

MAX_UNSIGNED = 99  # RFC 8945 §5.3.1: a client MUST accept up to 99 intermediary messages without a TSIG


class TransferFailed(Exception):
    """The transfer of one zone cannot be trusted or is incomplete; the message says why."""


class ZoneTransfer:
    """The state of one AXFR: feed it the answer's messages in order until ``done``.

    ``data`` is ``{name: {rdtype: rdataset}}`` (SOA left out) once ``done``; ``refused`` when the server
    answered the first message with an error rcode (transfers not allowed for this key): read by query.
    """

    def __init__(self, apex, query):
        self.apex = apex
        self.query = query  # the dns.message.Message sent (its id, keyring and MAC check the answer)
        self.signed = query.keyring is not None
        self.data = {}
        self.messages = 0
        self.done = False
        self.refused = False
        self._tsig_ctx = None
        self._unsigned = 0  # messages without TSIG since the last signed one
        self._soa = None

    def feed(self, wire):
        """Read one message of the answer; True when the transfer is complete."""
        if self.done:
            raise TransferFailed("a message after the end of the transfer")
        first = self.messages == 0
        self.messages += 1
        try:
            message = dns.message.from_wire(wire, keyring=self.query.keyring, request_mac=self.query.mac,
                                            xfr=True, tsig_ctx=self._tsig_ctx, multi=True)
        except dns.tsig.PeerError:
            raise  # the server rejected our key or signature: an error of the run, not of this zone's data
        except dns.exception.DNSException as exc:
            raise TransferFailed("message %d: %s" % (self.messages, exc or type(exc).__name__)) from exc
        self._tsig_ctx = message.tsig_ctx
        if first and message.rcode() != dns.rcode.NOERROR and message.id == self.query.id:
            # Refused (transfers not allowed for this key): read by query. Safe even if unsigned: the
            # queries are signed and checked.
            self.refused = self.done = True
            return True
        self._check_tsig(message, first)
        if not message.flags & dns.flags.QR or message.id != self.query.id or (first and not message.question) or (
                message.question and message.question[0] != self.query.question[0]):
            raise TransferFailed("message %d does not answer the transfer query" % self.messages)
        if message.flags & dns.flags.TC:
            raise TransferFailed("message %d is truncated (TC)" % self.messages)
        if message.rcode() != dns.rcode.NOERROR:
            raise TransferFailed("message %d has rcode %s" % (self.messages, dns.rcode.to_text(message.rcode())))
        self._collect(message, first)
        if self.done and self.signed and not message.had_tsig:
            raise TransferFailed("the last message is not signed (RFC 8945 §5.3.1: it MUST be)")
        return self.done

    def _check_tsig(self, message, first):
        if not self.signed:
            return
        if message.had_tsig:
            self._unsigned = 0
            return
        if first:
            raise TransferFailed("the first message is not signed (RFC 8945 §5.3.1: it MUST be)")
        self._unsigned += 1
        if self._unsigned > MAX_UNSIGNED:
            raise TransferFailed("more than %d messages in a row without TSIG (RFC 8945 §5.3.1)" % MAX_UNSIGNED)

    def _collect(self, message, first):
        answer = message.answer
        if first and (not answer or answer[0].rdtype != dns.rdatatype.SOA or answer[0].name != self.apex):
            raise TransferFailed("the transfer does not start with the SOA of %s" % self.apex)
        data = self.data
        for index, rrset in enumerate(answer):
            if rrset.rdtype == dns.rdatatype.SOA and rrset.name == self.apex:
                if self._soa is None:
                    self._soa = rrset[0]
                    continue
                if rrset[0] != self._soa:
                    raise TransferFailed("the closing SOA differs from the opening one (the zone changed "
                                         "during the transfer)")
                if index != len(answer) - 1:
                    raise TransferFailed("records after the closing SOA")
                self.done = True
                continue
            add_rrset(data, rrset)
