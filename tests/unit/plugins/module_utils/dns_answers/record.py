# Copyright: mailops.powermta contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Record the BIND 9 answers the zone-reading unit tests replay (run by hand; needs named).

    .venv/bin/python tests/unit/plugins/module_utils/dns_answers/record.py

Starts the bench BIND (tests/testbed/bind9.py), seeds a few records, asks the questions in QUESTIONS
unsigned (the tests need no key) and writes each answer in text form to answers.txt, one block per
question; the AXFR of example.net goes to axfr-example.net.txt.
"""

from __future__ import annotations

import importlib.util
import sys
import tempfile
from pathlib import Path

import dns.message
import dns.query
import dns.tsigkeyring
import dns.update

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[4]
QUESTIONS = [
    ("example.net.", "SOA"),              # apex: SOA in ANSWER
    ("mta10.example.net.", "SOA"),        # below the apex: SOA in AUTHORITY (NOERROR, no data)
    ("nothere.example.net.", "SOA"),      # NXDOMAIN, SOA in AUTHORITY
    ("mta10.example.net.", "A"),          # positive answer, NS in AUTHORITY
    ("example.net.", "TXT"),              # shared apex TXT
    ("www.example.net.", "TXT"),          # a CNAME name: only the CNAME comes back
    ("www.example.net.", "SOA"),          # the SOA walk at a CNAME name
    ("_mailops-owner.example.net.", "TXT"),
    ("10.2.0.192.in-addr.arpa.", "PTR"),
    ("example.org.", "SOA"),              # not served: REFUSED
    ("example.org.", "A"),
]


def main():
    spec = importlib.util.spec_from_file_location("bind9", ROOT / "tests" / "testbed" / "bind9.py")
    bind9 = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bind9)
    with tempfile.TemporaryDirectory() as tmp, bind9.Bind9Server(Path(tmp)) as server:
        keyring = dns.tsigkeyring.from_text({server.key_name: (server.key_algorithm, server.key_secret)})
        update = dns.update.UpdateMessage("example.net", keyring=keyring, keyname=server.key_name)
        update.add("@", 300, "TXT", '"google-site-verification=abc123"', '"MS=ms48224614"',
                   '"v=spf1 ip4:192.0.2.10 -all"')
        update.add("mta10", 300, "A", "192.0.2.10")
        update.add("www", 300, "CNAME", "mta10.example.net.")
        update.add("_mailops-owner", 300, "TXT",
                   '"heritage=mailops.powermta; owner=fleet" "mta10 A" "@ TXT v=spf1 sha=0123456789abcdef"',
                   '"heritage=mailops.powermta; owner=other" "mta99 A"', '"unrelated text"')
        assert dns.query.tcp(update, server.address, port=server.port).rcode() == 0
        update = dns.update.UpdateMessage("2.0.192.in-addr.arpa", keyring=keyring, keyname=server.key_name)
        update.add("10", 300, "PTR", "mta10.example.net.")
        assert dns.query.tcp(update, server.address, port=server.port).rcode() == 0
        blocks = []
        for name, rdtype in QUESTIONS:
            query = dns.message.make_query(name, rdtype)
            query.flags = 0  # no RD: we ask the primary
            response = dns.query.tcp(query, server.address, port=server.port)
            blocks.append(response.to_text())
        (HERE / "answers.txt").write_text("\n\n".join(blocks) + "\n")
        messages = dns.query.xfr(server.address, "example.net", port=server.port, keyring=keyring,
                                 keyname=server.key_name, relativize=False)
        (HERE / "axfr-example.net.txt").write_text("\n\n".join(m.to_text() for m in messages) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
