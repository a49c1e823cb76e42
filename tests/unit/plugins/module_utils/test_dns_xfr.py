# Copyright: mailops.powermta contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Reading a multi-message zone transfer and its TSIG chain (RFC 8945 §5.3.1), on real wire formats.

The answers are rendered by dnspython and signed here with ``hmac`` straight from RFC 8945 (§4.3.3 for
the first message, §5.3.1 for the later ones), independently of the dnspython code the reader verifies
with. BIND 9's own signing of large transfers is covered by tests/integration/test_dns_zone_sizes.py.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import struct
import time

import dns.flags
import dns.message
import dns.name
import dns.rdataclass
import dns.rdatatype
import dns.rrset
import dns.tsigkeyring
import pytest
from ansible_collections.mailops.powermta.plugins.module_utils._dns import xfr

KEY_NAME = dns.name.from_text("ansible-key.")
SECRET = base64.b64encode(b"0123456789abcdef0123456789abcdef").decode()
ALGORITHM = dns.name.from_text("hmac-sha256.")
APEX = dns.name.from_text("example.com.")
RECORDS = 1000


def keyring(secret=SECRET):
    return dns.tsigkeyring.from_text({KEY_NAME.to_text(): ("hmac-sha256", secret)})


def axfr_query(secret=SECRET):
    query = dns.message.make_query(APEX, dns.rdatatype.AXFR)
    query.use_tsig(keyring(secret), keyname=KEY_NAME)
    query.to_wire()  # sets query.mac
    return query


def zone_rrsets():
    soa = dns.rrset.from_text(APEX, 300, "IN", "SOA",
                              "ns1.example.test. hostmaster.example.test. 7 3600 900 604800 300")
    names = [dns.rrset.from_text("mta%d.example.com." % i, 300, "IN", "A", "198.18.%d.%d" % (i // 250, i % 250 + 1))
             for i in range(RECORDS)]
    return [soa] + names + [soa]


def unsigned_messages(query, count):
    """The transfer as ``count`` messages (SOA first and last), without TSIG."""
    rrsets = zone_rrsets()
    bounds = [len(rrsets) * number // count for number in range(count + 1)]
    wires = []
    for number in range(count):
        message = dns.message.Message(id=query.id)
        message.flags = dns.flags.QR | dns.flags.AA
        if number == 0:
            message.question = list(query.question)
        message.answer = rrsets[bounds[number]:bounds[number + 1]]
        wires.append(message.to_wire())
    assert all(wires) and len(wires) == count
    return wires


def _name_wire(name):
    return name.canonicalize().to_wire()


def _tsig_rr(mac, original_id, signed_at, fudge=300):
    rdata = (_name_wire(ALGORITHM) + struct.pack("!HIH", signed_at >> 32, signed_at & 0xFFFFFFFF, fudge)
             + struct.pack("!H", len(mac)) + mac + struct.pack("!HHH", original_id, 0, 0))
    return _name_wire(KEY_NAME) + struct.pack("!HHIH", 250, 255, 0, len(rdata)) + rdata


def sign(wires, request_mac, signed, secret=SECRET):
    """RFC 8945: sign the messages whose index is in ``signed``; the MAC of each chains to the previous."""
    key = base64.b64decode(secret)
    now = int(time.time())
    out, prior, pending = [], None, []
    for index, wire in enumerate(wires):
        if index not in signed:
            out.append(wire)
            pending.append(wire)
            continue
        timers = struct.pack("!HIH", now >> 32, now & 0xFFFFFFFF, 300)
        if prior is None:  # §4.3.3: request MAC, message, all TSIG variables
            data = (struct.pack("!H", len(request_mac)) + request_mac + wire + _name_wire(KEY_NAME)
                    + struct.pack("!HI", 255, 0) + _name_wire(ALGORITHM) + timers + struct.pack("!HH", 0, 0))
        else:  # §5.3.1: prior MAC, the unsigned messages since, this message, timers only
            data = struct.pack("!H", len(prior)) + prior + b"".join(pending) + wire + timers
        mac = hmac.new(key, data, hashlib.sha256).digest()
        arcount = struct.unpack("!H", wire[10:12])[0] + 1
        out.append(wire[:10] + struct.pack("!H", arcount) + wire[12:]
                   + _tsig_rr(mac, struct.unpack("!H", wire[:2])[0], now))
        prior, pending = mac, []
    return out


def read(query, wires):
    transfer = xfr.ZoneTransfer(APEX, query)
    done = [transfer.feed(wire) for wire in wires]
    return transfer, done


def test_every_message_signed_reads_the_whole_zone():
    query = axfr_query()
    wires = sign(unsigned_messages(query, 40), query.mac, set(range(40)))
    transfer, done = read(query, wires)
    assert done == [False] * 39 + [True] and not transfer.refused
    assert len(transfer.data) == RECORDS
    assert transfer.data[dns.name.from_text("mta999.example.com.")][dns.rdatatype.A][0].to_text() == "198.18.3.250"


def test_only_every_100th_message_signed_is_accepted():
    query = axfr_query()
    wires = sign(unsigned_messages(query, 201), query.mac, {0, 100, 200})
    transfer, done = read(query, wires)
    assert done[-1] and len(transfer.data) == RECORDS


def test_100_unsigned_messages_in_a_row_fail():
    query = axfr_query()
    wires = sign(unsigned_messages(query, 202), query.mac, {0, 101, 201})
    transfer = xfr.ZoneTransfer(APEX, query)
    for wire in wires[:100]:
        transfer.feed(wire)
    with pytest.raises(xfr.TransferFailed, match="more than 99 messages in a row without TSIG"):
        transfer.feed(wires[100])


@pytest.mark.parametrize("spoiled", ["mac", "unsigned message"])
def test_a_broken_mac_or_a_changed_message_in_the_middle_fails(spoiled):
    query = axfr_query()
    signed = set(range(40)) if spoiled == "mac" else {0, 20, 39}
    wires = sign(unsigned_messages(query, 40), query.mac, signed)
    # The MAC is followed by original id, error and other length (6 bytes); an A record's last byte is data.
    wires[15] = wires[15][:-7] + bytes([wires[15][-7] ^ 1]) + wires[15][-6:]
    transfer = xfr.ZoneTransfer(APEX, query)
    for wire in wires[:15 if spoiled == "mac" else 20]:
        transfer.feed(wire)
    with pytest.raises(xfr.TransferFailed, match="TSIG|signature"):
        for wire in wires[15 if spoiled == "mac" else 20:]:
            transfer.feed(wire)
    assert not transfer.done


def test_first_or_last_message_unsigned_fails():
    query = axfr_query()
    wires = sign(unsigned_messages(query, 10), query.mac, set(range(1, 10)))
    with pytest.raises(xfr.TransferFailed, match="first message is not signed"):
        read(query, wires)
    wires = sign(unsigned_messages(query, 10), query.mac, set(range(9)))
    with pytest.raises(xfr.TransferFailed, match="last message is not signed"):
        read(query, wires)


def test_another_key_fails():
    other = base64.b64encode(b"another secret of thirty-two b!!").decode()
    query = axfr_query()
    wires = sign(unsigned_messages(query, 5), query.mac, set(range(5)), secret=other)
    with pytest.raises(xfr.TransferFailed):
        read(query, wires)


def test_a_cut_transfer_is_not_done_and_a_message_after_the_end_fails():
    query = axfr_query()
    wires = sign(unsigned_messages(query, 10), query.mac, set(range(10)))
    transfer, done = read(query, wires[:9])
    assert not any(done) and not transfer.done
    transfer.feed(wires[9])
    with pytest.raises(xfr.TransferFailed, match="after the end"):
        transfer.feed(wires[9])


def test_refused_transfer_and_unsigned_transfer_without_key():
    query = axfr_query()
    refusal = dns.message.Message(id=query.id)
    refusal.flags = dns.flags.QR | dns.flags.AA | 5  # REFUSED
    refusal.question = list(query.question)
    transfer = xfr.ZoneTransfer(APEX, query)
    assert transfer.feed(sign([refusal.to_wire()], query.mac, {0})[0]) and transfer.refused
    transfer = xfr.ZoneTransfer(APEX, query)
    assert transfer.feed(refusal.to_wire()) and transfer.refused  # unsigned: still only a fallback to queries

    plain = dns.message.make_query(APEX, dns.rdatatype.AXFR)
    transfer, done = read(plain, unsigned_messages(plain, 4))
    assert done[-1] and len(transfer.data) == RECORDS
