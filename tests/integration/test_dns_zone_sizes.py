# Copyright: mailops.powermta contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Zones of 50, 1,000 and 10,000 records on a real BIND 9 (issue 25): published, re-read by signed AXFR
spanning many messages, re-run without change; a spoiled transfer falls back to queries with a warning.

Uses a named of its own (module scope): it serves the zones sizes50.test, sizes1000.test, sizes10000.test
and the 13 reverse zones of 198.18.0.0/24 ... 198.18.12.0/24 (the bench network) for the fleet-size
regression (3,200 A + 3,200 PTR through ansible-playbook, default read_method, run twice).
"""

from __future__ import annotations

import json
import socket
import struct
import threading

import dns.name
import dns.query
import dns.rdatatype
import dns.tsig
import pytest
import yaml
from ansible_collections.mailops.powermta.plugins.module_utils._dns import sync, task
from conftest import Bind9Server, _require_named
from dns_helpers import BIN, run_playbook, serial, txt_values

SIZES = (50, 1000, 10000)
SIZE_ZONES = tuple("sizes%d.test" % size for size in SIZES)
FLEET_IPS = 3200
REVERSE_ZONES = tuple("%d.18.198.in-addr.arpa" % number for number in range(13))


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    _require_named()
    named = Bind9Server(tmp_path_factory.mktemp("bind9-sizes"), more_zones=SIZE_ZONES + REVERSE_ZONES)
    named.start()
    yield named
    named.stop()


def size_records(size):
    zone = "sizes%d.test" % size
    return [{"name": "h%d.%s" % (i, zone), "type": "A", "values": ["198.18.%d.%d" % (i // 250 % 256, i % 250 + 1)]}
            for i in range(size)]


def publish(server, records, **options):
    """As the dns role publishes: owner registry, prune."""
    with sync.DnsClient(**server.module_args()) as client:
        return sync.sync_records(client, records, max_changes=10 ** 6, owner="sizes", prune=True, **options)


def registry_shards(server, zone):
    """The registry RRsets of ``zone`` as any resolver sees them: ``{name: values}``."""
    found = {}
    for shard in range(64):
        name = "_mailops-owner%s.%s" % ("-%d" % shard if shard else "", zone)
        values = txt_values(server, name)
        if values:
            found[name] = values
    return found


@pytest.mark.parametrize("size", SIZES)
def test_zone_published_then_read_back_unchanged(server, size):
    records = size_records(size)
    first = publish(server, records)
    registry_changes = [c for c in first["changes"] if c["registry"]]
    assert first["changed"] and len(first["changes"]) == size + len(registry_changes)
    # The registry: one RRset up to 250 names, else shards of ~250 names (10,000: 64 shards).
    assert len(registry_changes) == {50: 1, 1000: 4, 10000: 64}[size]
    zone = "sizes%d.test" % size
    assert len(registry_shards(server, zone)) == len(registry_changes)
    before = serial(server, zone)
    runs = 2 if size == 10000 else 1
    for _run in range(runs):
        again = publish(server, records)
        assert not again["changed"] and again["updates_sent"] == 0, again["changes"][:3]
        # auto reads a zone with >= 32 records by AXFR (the registry shards too); a few queries find the zone.
        assert again["zone_transfers"] == (1 if size >= 32 else 0) and again["queries_sent"] < 10 + size // 32
    assert serial(server, zone) == before


def test_one_name_less_in_a_large_zone_rewrites_one_registry_shard(server):
    records = size_records(10000)
    publish(server, records)
    result = publish(server, records[:-1])
    records_changed = [(c["name"], c["type"], c["action"]) for c in result["changes"] if not c["registry"]]
    shards_changed = [(c["name"], c["action"]) for c in result["changes"] if c["registry"]]
    assert records_changed == [("h9999.sizes10000.test.", "A", "delete")], result["changes"]
    assert len(shards_changed) == 1 and shards_changed[0][1] == "update", shards_changed
    assert not publish(server, records[:-1])["changed"]


def test_large_transfer_spans_many_signed_messages_and_reads_as_dnspython_does(server):
    """BIND's own multi-message signing: our reader and dns.query.xfr (with the key) see the same zone."""
    apex = dns.name.from_text("sizes10000.test.")
    key = dns.tsig.Key(server.key_name, server.key_secret, server.key_algorithm)
    keyring = {dns.name.from_text(server.key_name): key}
    messages = list(dns.query.xfr(server.address, apex, port=server.port, keyring=keyring,
                                  keyname=server.key_name, relativize=False))
    assert len(messages) > 5 and all(m.had_tsig for m in (messages[0], messages[-1]))
    expected = {}
    for message in messages:
        for rrset in message.answer:
            if rrset.rdtype != dns.rdatatype.SOA:
                expected.setdefault((rrset.name, rrset.rdtype), set()).update(rd.to_text() for rd in rrset)
    with sync.DnsClient(**server.module_args()) as client:
        data = client.transfer(apex)
        assert client.warnings == []
    read = {(name, rdtype): {rd.to_text() for rd in rdataset}
            for name, types in data.items() for rdtype, rdataset in types.items()}
    assert read == expected and len(read) >= 10000


class SpoilingProxy:
    """A TCP proxy to named that flips one bit of the MAC of the second message of every zone transfer
    answer (the AXFRs the transport sends have ids from 0x8000), or with ``cut`` closes the connection
    there; queries and UPDATEs pass unchanged."""

    def __init__(self, upstream, cut=False):
        self.upstream = upstream
        self.cut = cut
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.spoiled = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                client, _address = self.listener.accept()
            except OSError:
                return
            upstream = socket.create_connection((self.upstream.address, self.upstream.port))
            threading.Thread(target=self._pipe, args=(client, upstream), daemon=True).start()
            threading.Thread(target=self._answers, args=(upstream, client), daemon=True).start()

    @staticmethod
    def _pipe(source, target):
        try:
            while data := source.recv(65536):
                target.sendall(data)
        except OSError:
            pass
        finally:
            target.close()

    def _answers(self, upstream, client):
        seen = {}
        stream = upstream.makefile("rb")
        try:
            while header := stream.read(2):
                message = stream.read(struct.unpack("!H", header)[0])
                ident = struct.unpack("!H", message[:2])[0]
                seen[ident] = seen.get(ident, 0) + 1
                if ident >= 0x8000 and seen[ident] == 2 and self.cut:
                    self.spoiled += 1
                    break
                if ident >= 0x8000 and seen[ident] == 2:
                    # TSIG rdata ends with MAC, original id, error, other length: the MAC's last byte is at -7.
                    message = message[:-7] + bytes([message[-7] ^ 1]) + message[-6:]
                    self.spoiled += 1
                client.sendall(header + message)
        except OSError:
            pass
        finally:
            try:
                client.shutdown(socket.SHUT_RDWR)  # the client sees the end now (close alone waits for _pipe)
            except OSError:
                pass
            client.close()

    def close(self):
        self.listener.close()


@pytest.mark.parametrize("cut", [False, True], ids=["broken MAC", "cut transfer"])
def test_spoiled_or_cut_transfer_falls_back_to_queries_with_a_warning(server, cut):
    records = size_records(1000)
    publish(server, records)
    proxy = SpoilingProxy(server, cut)
    try:
        params = {key: spec.get("default") for key, spec in task.ARGUMENT_SPEC.items()}
        params.update(server.module_args(), port=proxy.port, records=records, owner="sizes", prune=True,
                      max_changes=10 ** 6)
        result, warnings = task.run(params)
    finally:
        proxy.close()
    assert proxy.spoiled >= 1
    assert not result.get("failed") and not result["changed"], result
    why = "the connection closed before the transfer ended" if cut else "message 2: "
    assert any("zone transfer of sizes1000.test. from 127.0.0.1 failed (%s" % why in w
               and "read by queries instead" in w for w in warnings), warnings
    assert proxy.spoiled == (2 if cut else 1)  # a cut transfer is tried once more on a new connection
    assert result["zone_transfers"] == 0 and result["queries_sent"] >= 1000


PLAYBOOK = """---
- name: Publish the fleet's A and PTR records (issue 25 regression)
  hosts: localhost
  gather_facts: false
  tasks:
    - name: Publish
      mailops.powermta.dns_records:
        server: "{{ bench_server }}"
        port: "{{ bench_port }}"
        key_name: "{{ bench_key_name }}"
        key_secret: "{{ bench_key_secret }}"
        records: "{{ bench_records }}"
        owner: fleet
        prune: true
        max_changes: 100000
      register: published

    - name: Show what it read and sent
      ansible.builtin.debug:
        msg: "TRANSFERS={{ published.zone_transfers }} QUERIES={{ published.queries_sent }}"
"""


def fleet_records():
    records = []
    for index in range(FLEET_IPS):
        network, host = index // 250, index % 250 + 1
        records.append({"name": "mta%d.example.com" % index, "type": "A", "values": ["198.18.%d.%d" % (network, host)]})
        records.append({"name": "%d.%d.18.198.in-addr.arpa" % (host, network), "type": "PTR",
                        "values": ["mta%d.example.com." % index]})
    return records


def test_fleet_of_3200_ips_publishes_then_reruns_unchanged_with_the_default_read_method(server, tmp_path):
    """The failing case of issue 25: 3,200 A + 3,200 PTR in 13 reverse zones, the second run failed on
    the TSIG of the multi-message transfer."""
    playbook = tmp_path / "publish.yml"
    playbook.write_text(PLAYBOOK)
    inventory = tmp_path / "inventory.yml"
    inventory.write_text(yaml.safe_dump({"all": {"hosts": {"localhost": {
        "ansible_connection": "local", "ansible_python_interpreter": str(BIN / "python")}}}}))
    variables = tmp_path / "vars.json"
    arguments = dict(server.module_args(), records=fleet_records())
    variables.write_text(json.dumps({"bench_" + key: value for key, value in arguments.items()}))
    rc, output, recap = run_playbook(playbook, inventory, "-e", "@%s" % variables)
    assert rc == 0 and recap["localhost"]["changed"] == 1, output[-3000:]
    serials = [serial(server, zone) for zone in ("example.com",) + REVERSE_ZONES]
    rc, output, recap = run_playbook(playbook, inventory, "-e", "@%s" % variables)
    assert rc == 0 and recap["localhost"]["changed"] == 0, output[-3000:]
    assert "TRANSFERS=14 " in output  # every zone read by its signed transfer, none fell back to queries
    assert "[WARNING]" not in output
    assert [serial(server, zone) for zone in ("example.com",) + REVERSE_ZONES] == serials
