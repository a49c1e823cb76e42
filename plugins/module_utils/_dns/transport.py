# Copyright: mailops.powermta contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Wire and transport: TSIG-signed queries, pipelined queries and AXFRs, UPDATE sending, over one TCP connection.

PRIVATE to the collection: no compatibility promise outside it.
"""

from __future__ import annotations

import socket
import struct
import time

from .values import (
    HAS_DNSPYTHON,
    TSIG_ALGORITHMS,
    DnsError,
    DnsInputError,
    absolute_name,
)
from .xfr import TransferFailed, ZoneTransfer

try:
    import dns.exception
    import dns.flags
    import dns.message
    import dns.name
    import dns.opcode
    import dns.rcode
    import dns.rdataclass
    import dns.rdataset
    import dns.rdatatype
    import dns.rdtypes.ANY.TSIG
    import dns.tsig
    import dns.tsigkeyring
except ImportError:  # reported by the modules through values.HAS_DNSPYTHON
    pass


_HEADER = struct.Struct("!HHHHHH")
_QUESTION = struct.Struct("!HH")
_RR_HEADER = struct.Struct("!HHIH")
CLASS_IN = 1
TRANSFER_WINDOW = 8  # AXFRs in flight on one connection; BIND's transfers-out (outgoing transfers) is 10
TSIG_FUDGE = 300  # seconds of clock difference the server accepts (RFC 8945 §5.2.3), as dnspython's default


def _answers(response, name, rdtype):
    """True when ``response`` answers the query for ``name``/``rdtype`` (as ``Message.is_response`` checks)."""
    if not response.flags & dns.flags.QR or response.opcode() != dns.opcode.QUERY:
        return False
    if not response.question:
        return response.rcode() in (dns.rcode.FORMERR, dns.rcode.SERVFAIL, dns.rcode.NOTIMP, dns.rcode.REFUSED)
    question = response.question[0]
    return question.name == name and question.rdtype == rdtype and question.rdclass == CLASS_IN


class DnsTransport:
    """TSIG-signed queries, transfers and UPDATEs to one primary server over one kept-alive TCP connection."""

    def __init__(self, server, port=53, key_name=None, key_secret=None, key_algorithm="hmac-sha256", timeout=10.0):
        self.server = server
        self.port = int(port)
        self.timeout = float(timeout)
        self.keyring = None
        self.keyname = None
        if key_name:
            if not key_secret:
                raise DnsInputError("key_secret is required when key_name is set")
            if key_algorithm not in TSIG_ALGORITHMS:
                raise DnsInputError(
                    "key_algorithm %r is not supported; use one of %s" % (key_algorithm, ", ".join(TSIG_ALGORITHMS))
                )
            try:
                self.keyring = dns.tsigkeyring.from_text({key_name: (TSIG_ALGORITHMS[key_algorithm], key_secret)})
            except Exception as exc:  # binascii.Error and friends
                raise DnsInputError("key_secret is not valid base64 for TSIG key %s: %s" % (key_name, exc)) from exc
            self.keyname = dns.name.from_text(key_name)
        self._sock = None
        self.queries = 0
        self.transfers = 0
        self.updates = 0
        self.applied_zones = []  # zones whose UPDATE succeeded (for partial failures)
        self.warnings = []  # what the run should tell (a zone transfer that failed and was replaced by queries)

    # -- transport
    def _connect(self):
        if self._sock is None:
            try:
                self._sock = socket.create_connection((self.server, self.port), timeout=self.timeout)
            except TimeoutError as exc:
                raise DnsError("DNS server %s port %s did not answer within %ss (timeout)"
                               % (self.server, self.port, self.timeout), rcode="TIMEOUT") from exc
            except OSError as exc:
                raise DnsError("cannot connect to DNS server %s port %s over TCP: %s (is it running and reachable?)"
                               % (self.server, self.port, exc.strerror or exc), rcode="CONNECTION") from exc
        return self._sock

    def close(self):
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()

    def _translate(self, exc, what):
        """A DnsError with a clear message for a transport or TSIG exception."""
        if isinstance(exc, dns.tsig.PeerBadKey):
            return DnsError("TSIG key %s was rejected by %s (BADKEY): the server does not know this key name "
                            "or it uses another algorithm; check key_name and key_algorithm"
                            % (self.keyname, self.server), rcode="BADKEY")
        if isinstance(exc, dns.tsig.PeerBadSignature):
            return DnsError("TSIG signature rejected by %s (BADSIG): key_secret does not match the server's "
                            "secret for key %s" % (self.server, self.keyname), rcode="BADSIG")
        if isinstance(exc, dns.tsig.PeerBadTime):
            return DnsError("TSIG time check failed at %s (BADTIME): the clocks of the controller and the DNS "
                            "server differ by more than the fudge (300s); fix NTP" % self.server, rcode="BADTIME")
        if isinstance(exc, dns.tsig.PeerError):
            return DnsError("TSIG error from %s: %s" % (self.server, exc), rcode="TSIG")
        self.close()
        if isinstance(exc, (dns.exception.Timeout, TimeoutError)):
            return DnsError("DNS server %s port %s did not answer the %s within %ss (timeout)"
                            % (self.server, self.port, what, self.timeout), rcode="TIMEOUT")
        if isinstance(exc, (EOFError, ConnectionResetError, BrokenPipeError)):
            return DnsError("DNS server %s port %s closed the connection during the %s: %s"
                            % (self.server, self.port, what, exc), rcode="CONNECTION")
        if isinstance(exc, OSError):
            return DnsError("cannot talk to DNS server %s port %s: %s (is it running and reachable?)"
                            % (self.server, self.port, exc.strerror or exc), rcode="CONNECTION")
        return DnsError("DNS %s to %s failed: %s" % (what, self.server, exc))

    _ERRORS = ((dns.exception.DNSException,) if HAS_DNSPYTHON else ()) + (OSError, EOFError)

    def _exchange(self, sock, message, wire=None):
        """Send one (rendered) message and read its answer on the kept-alive connection.

        Plain RFC 1035 §4.2.2 framing rather than dns.query, whose import (ssl, optional-feature
        probing) costs more than the whole exchange; dns.query is imported only on fallback paths.
        """
        if wire is None:
            wire = message.to_wire()
        sock.sendall(len(wire).to_bytes(2, "big") + wire)
        length = int.from_bytes(self._read_exactly(sock, 2), "big")
        response = dns.message.from_wire(self._read_exactly(sock, length), keyring=message.keyring,
                                         request_mac=message.mac)
        if not message.is_response(response):
            raise dns.exception.FormError("answer does not match its query")
        return response

    def _reconnecting(self, what, exchange):
        """``exchange(sock)`` on the kept-alive connection; once more on a new one if the server closed it."""
        for attempt in (1, 2):
            sock = self._connect()
            try:
                return exchange(sock)
            except (EOFError, ConnectionResetError, BrokenPipeError) as exc:
                # The server closed an idle kept-alive connection: reconnect once.
                error = self._translate(exc, what)
                if attempt == 2:
                    raise error from exc
            except self._ERRORS as exc:
                raise self._translate(exc, what) from exc
        raise AssertionError("unreachable")

    def _send(self, message, what):
        return self._reconnecting(what, lambda sock: self._exchange(sock, message))

    def _new_query(self, name, rdtype):
        message = dns.message.make_query(name, rdtype)
        message.flags &= ~dns.flags.RD  # we ask the primary, not a resolver
        if self.keyring:
            message.use_tsig(self.keyring, keyname=self.keyname)
        return message

    def _query_wire(self, name, rdtype, query_id):
        """``(wire, request MAC)`` of a query (RD clear), TSIG-signed with the key (RFC 8945 §5.1).

        Rendered here rather than by ``dns.message``: building a message object per query cost more than
        the server's answer; dnspython still signs it and checks the answer's signature.
        """
        header = _HEADER.pack(query_id, 0, 1, 0, 0, 0)
        body = b"".join(bytes((len(label),)) + label for label in name.labels) + _QUESTION.pack(rdtype, CLASS_IN)
        if not self.keyring:
            return header + body, None
        key = self.keyring[self.keyname]
        template = dns.rdtypes.ANY.TSIG.TSIG(dns.rdataclass.ANY, dns.rdatatype.TSIG, key.algorithm, 0, TSIG_FUDGE,
                                             b"", query_id, 0, b"")
        signed, _context = dns.tsig.sign(header + body, key, template, int(time.time()), None)
        tsig = signed.to_wire()
        wire = (_HEADER.pack(query_id, 0, 1, 0, 0, 1) + body + key.name.to_wire()
                + _RR_HEADER.pack(dns.rdatatype.TSIG, dns.rdataclass.ANY, 0, len(tsig)) + tsig)
        return wire, signed.mac

    def query(self, name, rdtype):
        self.queries += 1
        return self._send(self._new_query(name, rdtype), "query for %s %s" % (name, dns.rdatatype.to_text(rdtype)))

    def _read_exactly(self, sock, count):
        data = b""
        while len(data) < count:
            chunk = sock.recv(count - len(data))
            if not chunk:
                raise EOFError("connection closed")
            data += chunk
        return data

    def query_many(self, questions, window=64):
        """Answers to ``[(name, rdtype)]`` in order, pipelined over one TCP connection (RFC 7766 §6.2.1)."""
        answers = [None] * len(questions)
        for first in range(0, len(questions), window):
            batch = list(enumerate(questions[first:first + window], start=first))
            pending = {}
            wire = []
            for index, (name, rdtype) in batch:
                data, mac = self._query_wire(name, rdtype, index & 0xFFFF)
                pending[index & 0xFFFF] = (index, name, rdtype, mac)
                wire.append(len(data).to_bytes(2, "big") + data)
            self.queries += len(batch)
            what = "pipelined queries (%s %s ...)" % (batch[0][1][0], dns.rdatatype.to_text(batch[0][1][1]))
            try:
                sock = self._connect()
                sock.sendall(b"".join(wire))
                while pending:
                    length = int.from_bytes(self._read_exactly(sock, 2), "big")
                    data = self._read_exactly(sock, length)
                    index, name, rdtype, mac = pending.pop(int.from_bytes(data[:2], "big"))
                    response = dns.message.from_wire(data, keyring=self.keyring, request_mac=mac)
                    if not _answers(response, name, rdtype):
                        raise dns.exception.FormError("answer does not match its query")
                    answers[index] = response
            except (EOFError, ConnectionResetError, BrokenPipeError) as exc:
                # A server that closes after each answer: ask the rest one connection at a time.
                self.close()
                from dns import query as dns_query  # pylint: disable=import-outside-toplevel  # rare path, see _exchange
                for index, name, rdtype, _mac in pending.values():
                    try:
                        answers[index] = dns_query.tcp(self._new_query(name, rdtype), self.server,
                                                       timeout=self.timeout, port=self.port)
                    except self._ERRORS as again:
                        raise self._translate(again, what) from exc
            except KeyError as exc:
                self.close()
                raise DnsError("DNS server %s sent an answer to a query we did not ask" % self.server) from exc
            except self._ERRORS as exc:
                raise self._translate(exc, what) from exc
        return answers

    # -- zones
    def transfer_many(self, apexes):
        """``{apex: zone data or None}`` by AXFRs pipelined on the kept-alive connection, at most
        ``TRANSFER_WINDOW`` at a time (BIND refuses transfers beyond its ``transfers-out``, 10 by default).

        None: refused (transfers not allowed for the key), or the transfer failed or ended early
        (``xfr.TransferFailed``: a warning in ``self.warnings``); the caller then reads that zone by query.
        A transfer cut by a closed connection is tried once more on a new one.
        """
        results = {}
        attempts = dict.fromkeys(apexes, 0)
        pending = list(apexes)
        while pending:
            batch, pending = pending[:TRANSFER_WINDOW], pending[TRANSFER_WINDOW:]
            for apex in batch:
                attempts[apex] += 1
            unfinished = self._transfer_batch(batch, results)
            for apex in unfinished:
                if attempts[apex] < 2:
                    pending.append(apex)
                else:
                    self._transfer_failed(results, apex, "the connection closed before the transfer ended")
        return results

    def _transfer_failed(self, results, apex, why):
        results[apex] = None
        self.warnings.append("zone transfer of %s from %s failed (%s): read by queries instead"
                             % (apex.to_text(), self.server, why))

    def _transfer_batch(self, apexes, results):
        """Transfer ``apexes`` on one connection into ``results``; returns the apexes left unfinished."""
        transfers, wire = {}, []
        for number, apex in enumerate(apexes):
            message = dns.message.make_query(apex, dns.rdatatype.AXFR)
            message.id = (0x8000 + number) & 0xFFFF
            if self.keyring:
                message.use_tsig(self.keyring, keyname=self.keyname)
            data = message.to_wire()
            wire.append(len(data).to_bytes(2, "big") + data)
            transfers[message.id] = ZoneTransfer(apex, message)
        open_ids = set(transfers)
        try:
            sock = self._connect()
            sock.sendall(b"".join(wire))
            while open_ids:
                length = int.from_bytes(self._read_exactly(sock, 2), "big")
                data = self._read_exactly(sock, length)
                ident = int.from_bytes(data[:2], "big")
                if ident not in open_ids:
                    raise DnsError("DNS server %s sent a zone transfer we did not ask for" % self.server)
                transfer = transfers[ident]
                try:
                    if not transfer.feed(data):
                        continue
                except TransferFailed as exc:
                    # The rest of that answer cannot be told apart from noise: drop the connection, finish
                    # the others on a new one.
                    self._transfer_failed(results, transfer.apex, exc)
                    self.close()
                    return [transfers[i].apex for i in sorted(open_ids - {ident})]
                open_ids.discard(ident)
                results[transfer.apex] = None if transfer.refused else transfer.data
                self.transfers += 0 if transfer.refused else 1
        except (EOFError, ConnectionResetError, BrokenPipeError):
            self.close()
            return [transfers[i].apex for i in sorted(open_ids)]
        except self._ERRORS as exc:
            raise self._translate(exc, "zone transfers") from exc
        return []

    def transfer(self, apex):
        """``{name: {rdtype: rdataset}}`` of a zone by TSIG-signed AXFR, or None (refused or failed)."""
        return self.transfer_many([apex])[apex]

    def serial(self, zone):
        response = self.query(absolute_name(zone, "zone") if isinstance(zone, str) else zone, dns.rdatatype.SOA)
        for rrset in response.answer:
            if rrset.rdtype == dns.rdatatype.SOA:
                return rrset[0].serial
        raise DnsError("no SOA for %s at %s" % (zone, self.server))

    # -- apply
    def send_wire(self, update, wire, what):
        return self._reconnecting(what, lambda sock: self._exchange(sock, update, wire))
