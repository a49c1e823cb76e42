# Copyright: mailops.powermta contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""DKIM public keys: the key type, size and ``p=`` value of a PEM or DER public key (RFC 6376 §3.6.1,
RFC 8463 for Ed25519). PRIVATE to the collection; standard library only.
"""

from __future__ import annotations

import base64
import binascii
import re

from .errors import RecordBuildError

RSA_OID = bytes.fromhex("2a864886f70d010101")  # 1.2.840.113549.1.1.1 rsaEncryption
ED25519_SPKI_PREFIX = bytes.fromhex("302a300506032b6570032100")


def _der_length(data, pos):
    first = data[pos]
    if first < 0x80:
        return first, pos + 1
    count = first & 0x7F
    return int.from_bytes(data[pos + 1:pos + 1 + count], "big"), pos + 1 + count


def _der_element(data, pos):
    tag = data[pos]
    length, start = _der_length(data, pos + 1)
    return tag, data[start:start + length], start + length


def public_key_der(public_key):
    """DER SubjectPublicKeyInfo from a PEM text, a base64 DER string or bytes."""
    if isinstance(public_key, bytes):
        return public_key
    text = str(public_key or "").strip()
    if not text:
        raise RecordBuildError("DKIM public key is empty")
    if "-----BEGIN" in text:
        if "PRIVATE KEY" in text:
            raise RecordBuildError("DKIM public key: got a PRIVATE key; give the public key, never publish the private")
        text = "".join(line for line in text.splitlines() if line and not line.startswith("-----"))
    try:
        return base64.b64decode(re.sub(r"\s+", "", text), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise RecordBuildError("DKIM public key is not PEM or base64 DER: %s" % exc) from exc


def key_info(public_key):
    """``(k, bits, p)``: DKIM key type, size and the ``p=`` value for a public key."""
    der = public_key_der(public_key)
    if der.startswith(ED25519_SPKI_PREFIX) and len(der) == len(ED25519_SPKI_PREFIX) + 32:
        return "ed25519", 256, base64.b64encode(der[-32:]).decode()  # RFC 8463: raw key, not SPKI
    try:
        tag, spki, _next = _der_element(der, 0)
        _tag, _algorithm, pos = _der_element(spki, 0)
        tag_bits, bit_string, _next = _der_element(spki, pos)
        _tag, rsa_key, _next = _der_element(bit_string[1:], 0)
        tag_n, modulus, _next = _der_element(rsa_key, 0)
        if tag != 0x30 or tag_bits != 0x03 or tag_n != 0x02 or RSA_OID not in _algorithm:
            raise ValueError("not an RSA SubjectPublicKeyInfo")
    except (IndexError, ValueError) as exc:
        raise RecordBuildError("DKIM public key is neither an RSA nor an Ed25519 public key: %s" % exc) from exc
    bits = len(modulus.lstrip(b"\0")) * 8
    return "rsa", bits, base64.b64encode(der).decode()
