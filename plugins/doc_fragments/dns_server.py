# Copyright: mailops.powermta contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The DNS server a module talks to, and its TSIG key, documented once for every DNS module."""


class ModuleDocFragment:
    # Modules that ask one given server (dns_records, dns_verify).
    DOCUMENTATION = r"""
options:
  server:
    description:
      - DNS server to talk to (IP address or host name). M(mailops.powermta.dns_records) needs the primary
        that accepts the UPDATEs; M(mailops.powermta.dns_verify) asks a resolver, or the authoritative
        server before delegation.
    type: str
    required: true
  port:
    description: Port of O(server) (TCP for UPDATEs and zone transfers).
    type: int
    default: 53
"""

    # Modules that sign with TSIG (RFC 8945).
    TSIG = r"""
options:
  key_name:
    description: TSIG key name. Without it queries and UPDATEs are unsigned (rarely accepted).
    type: str
  key_secret:
    description: TSIG secret (base64), as in the server's C(key) statement. Keep it in Ansible Vault.
    type: str
  key_algorithm:
    description: TSIG algorithm.
    type: str
    default: hmac-sha256
    choices: [hmac-md5, hmac-sha1, hmac-sha224, hmac-sha256, hmac-sha384, hmac-sha512]
"""
