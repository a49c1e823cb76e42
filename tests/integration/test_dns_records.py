# Copyright: mailops.powermta contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""dns_records against a real BIND 9: changes, idempotence, check mode, races, errors.

Tests on the session server write only below their own unique label in example.test.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import threading

import dns.flags
import dns.query
import dns.rdatatype
import dns.tsigkeyring
import dns.update
import pytest
from ansible_collections.mailops.powermta.plugins.module_utils._dns import sync
from ansible_collections.mailops.powermta.plugins.module_utils._dns import values as dns_values
from dns_helpers import BIN, ROOT, query, run_adhoc, serial, txt_values, unique_label


def client_for(server, **overrides):
    args = dict(server.module_args(), timeout=5)
    args.update(overrides)
    return sync.DnsClient(**args)


def raw_update(server, zone, build):
    """A change made by 'someone else', with plain dnspython."""
    keyring = dns.tsigkeyring.from_text({server.key_name: (server.key_algorithm, server.key_secret)})
    update = dns.update.UpdateMessage(zone, keyring=keyring, keyname=server.key_name)
    build(update)
    response = dns.query.tcp(update, server.address, port=server.port, timeout=5)
    assert response.rcode() == 0


def test_create_then_idempotent_then_update_via_ansible(bind9):
    name = "%s.example.test" % unique_label()
    long_text = "v=DKIM1; k=rsa; p=" + "é" * 300  # 618 bytes: three strings, split inside no character
    args = dict(bind9.module_args(), records=[
        {"name": name, "type": "A", "ttl": 300, "values": ["192.0.2.10", "192.0.2.11"]},
        {"name": name, "type": "TXT", "values": [long_text]},
        {"name": "mail." + name, "type": "AAAA", "values": ["2001:db8::25"]},
    ])
    rc, result = run_adhoc("dns_records", args, diff=True)
    assert rc == 0, result
    assert result["changed"] is True
    assert result["updates_sent"] == 1  # one zone, one UPDATE
    assert {c["action"] for c in result["changes"]} == {"create"}
    assert sorted(rd.address for rd in query(bind9, name, "A")) == ["192.0.2.10", "192.0.2.11"]
    assert query(bind9, name, "A").ttl == 300
    assert txt_values(bind9, name) == [long_text]
    assert [len(s) for s in query(bind9, name, "TXT")[0].strings] == [255, 255, 108]

    rc, again = run_adhoc("dns_records", args)
    assert rc == 0 and again["changed"] is False and again["updates_sent"] == 0

    args["records"][0]["ttl"] = 600  # a TTL change alone is a change
    rc, ttl_change = run_adhoc("dns_records", args)
    assert rc == 0 and ttl_change["changed"] is True
    assert [(c["name"], c["action"]) for c in ttl_change["changes"]] == [(name + ".", "update")]
    assert query(bind9, name, "A").ttl == 600


def test_check_mode_sends_no_update(bind9):
    name = "%s.example.test" % unique_label()
    serial_before = serial(bind9, "example.test")
    args = dict(bind9.module_args(), records=[{"name": name, "type": "TXT", "values": ["check mode"]}])
    rc, result = run_adhoc("dns_records", args, check=True, diff=True)
    assert rc == 0, result
    assert result["changed"] is True and result["updates_sent"] == 0
    assert result["changes"][0]["after"] == {"ttl": 3600, "values": ["check mode"]}
    assert serial(bind9, "example.test") == serial_before
    assert query(bind9, name, "TXT") is None


def test_absent_removes_rrsets(bind9):
    name = "%s.example.test" % unique_label()
    with client_for(bind9) as client:
        sync.sync_records(client, [{"name": name, "type": "TXT", "values": ["x"]}])
    with client_for(bind9) as client:
        result = sync.sync_records(client, [{"name": name, "type": "TXT"}], state="absent", with_diff=True)
    assert result["changed"] and result["changes"][0]["action"] == "delete"
    assert result["diff"] == {"before": '%s. 3600 IN TXT "x"\n' % name, "after": ""}
    assert query(bind9, name, "TXT") is None
    with client_for(bind9) as client:
        assert sync.sync_records(client, [{"name": name, "type": "TXT"}], state="absent")["changed"] is False


def test_concurrent_change_between_read_and_write_is_detected(bind9):
    name = "%s.example.test" % unique_label()
    other = "other." + name
    with client_for(bind9) as client:
        sync.sync_records(client, [{"name": name, "type": "A", "values": ["192.0.2.1"]}])
    serial_after_setup = serial(bind9, "example.test")

    def someone_else_changes_it(zone, update):
        raw_update(bind9, "example.test", lambda u: u.replace(name + ".", 300, "A", "192.0.2.99"))

    with client_for(bind9) as client, pytest.raises(dns_values.DnsConcurrentChange, match="re-run") as caught:
        sync.sync_records(client, [
            {"name": name, "type": "A", "values": ["192.0.2.2"]},
            {"name": other, "type": "TXT", "values": ["same update"]},
        ], before_send=someone_else_changes_it)
    assert caught.value.rcode == "NXRRSET"
    # The concurrent value survives and the rest of the UPDATE was not applied either.
    assert [rd.address for rd in query(bind9, name, "A")] == ["192.0.2.99"]
    assert query(bind9, other, "TXT") is None
    assert serial(bind9, "example.test") == serial_after_setup + 1  # only the concurrent change


def test_concurrent_creation_is_detected(bind9):
    name = "%s.example.test" % unique_label()

    def someone_else_creates_it(zone, update):
        raw_update(bind9, "example.test", lambda u: u.add(name + ".", 300, "TXT", '"theirs"'))

    with client_for(bind9) as client, pytest.raises(dns_values.DnsConcurrentChange) as caught:
        sync.sync_records(client, [{"name": name, "type": "TXT", "values": ["ours"]}],
                          before_send=someone_else_creates_it)
    assert caught.value.rcode == "YXRRSET"
    assert txt_values(bind9, name) == ["theirs"]


def test_refuses_to_write_beside_a_cname(bind9):
    label = unique_label()
    alias = "%s.example.test" % label
    raw_update(bind9, "example.test", lambda u: u.add(alias + ".", 300, "CNAME", "target.%s.example.test." % label))
    serial_before = serial(bind9, "example.test")
    with client_for(bind9) as client, pytest.raises(dns_values.DnsInputError, match="is a CNAME"):
        sync.sync_records(client, [{"name": alias, "type": "TXT", "values": ["v=DKIM1; p=x"]}])
    raw_update(bind9, "example.test", lambda u: u.add("data." + alias + ".", 300, "TXT", '"x"'))
    with client_for(bind9) as client, pytest.raises(dns_values.DnsInputError, match="already holds"):
        sync.sync_records(client, [{"name": "data." + alias, "type": "CNAME", "values": ["x.example.test."]}])
    assert serial(bind9, "example.test") == serial_before + 1


def test_max_changes_guard_and_force(bind9):
    names = ["%s.example.test" % unique_label() for _index in range(3)]
    with client_for(bind9) as client:
        sync.sync_records(client, [{"name": n, "type": "TXT", "values": ["old"]} for n in names])
    serial_before = serial(bind9, "example.test")
    wanted = [{"name": n, "type": "TXT", "values": ["new"]} for n in names]
    with client_for(bind9) as client, pytest.raises(dns_values.DnsSafetyError, match="max_changes=2"):
        sync.sync_records(client, wanted, max_changes=2)
    assert serial(bind9, "example.test") == serial_before
    with client_for(bind9) as client:
        assert sync.sync_records(client, wanted, max_changes=2, force=True)["changed"]
    assert all(txt_values(bind9, n) == ["new"] for n in names)


def test_zone_found_by_soa_walk_for_reverse_names(bind9):
    label = unique_label()
    records = [
        {"name": "77.113.0.203.in-addr.arpa", "type": "PTR", "values": ["%s.example.net" % label]},
        {"name": "7.7.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa", "type": "PTR",
         "values": ["%s.example.net." % label]},
    ]
    with client_for(bind9) as client:
        result = sync.sync_records(client, records, state="present")
    assert result["zones"] == ["113.0.203.in-addr.arpa.", "8.b.d.0.1.0.0.2.ip6.arpa."]
    assert result["updates_sent"] == 2
    # Targets given without the trailing dot are still absolute (no zone suffix appended).
    assert query(bind9, records[0]["name"], "PTR")[0].target.to_text() == "%s.example.net." % label


# ---------------------------------------------------------------- errors: clear message, nothing changed

def test_wrong_tsig_secret(bind9):
    name = "%s.example.test" % unique_label()
    serial_before = serial(bind9, "example.test")
    args = dict(bind9.module_args(), key_secret="c2VjcmV0LWJ1dC13cm9uZy0xMjM0NTY3ODkwMTIzNDU2Nzg=",
                records=[{"name": name, "type": "TXT", "values": ["x"]}])
    rc, result = run_adhoc("dns_records", args)
    assert rc != 0
    assert result["rcode"] == "BADSIG" and "key_secret does not match" in result["msg"]
    assert result["changed"] is False
    assert args["key_secret"] not in str(result)
    assert serial(bind9, "example.test") == serial_before and query(bind9, name, "TXT") is None


def test_unknown_key_name(bind9):
    with client_for(bind9, key_name="nobody-key") as client, pytest.raises(dns_values.DnsError, match="BADKEY"):
        sync.sync_records(client, [{"name": "x.example.test", "type": "TXT", "values": ["x"]}])


def test_unknown_zone(bind9):
    args = dict(bind9.module_args(), records=[{"name": "mta1.example.org", "type": "A", "values": ["192.0.2.1"]}])
    rc, result = run_adhoc("dns_records", args)
    assert rc != 0 and result["changed"] is False
    assert "no zone on" in result["msg"] and "example.org" in result["msg"]


def test_zone_without_updates_is_refused(bind9):
    with client_for(bind9) as client, pytest.raises(dns_values.DnsError, match="REFUSED: .*does not allow updates"):
        sync.sync_records(client, [{"name": "9.9.9.198.zen.dnsbl.test", "type": "A", "values": ["127.0.0.2"]}])
    assert query(bind9, "9.9.9.198.zen.dnsbl.test", "A") is None


def test_explicit_wrong_zone_is_notzone(bind9):
    with client_for(bind9) as client, pytest.raises(dns_values.DnsInputError, match="not inside zone"):
        sync.sync_records(client, [{"name": "x.example.com", "type": "TXT", "values": ["x"]}], zone="example.test")


def test_server_down(fresh_bind9):
    args = dict(fresh_bind9.module_args(), records=[{"name": "x.example.test", "type": "TXT", "values": ["x"]}])
    fresh_bind9.stop()
    rc, result = run_adhoc("dns_records", args)
    assert rc != 0 and result["changed"] is False
    assert result["rcode"] == "CONNECTION" and "is it running" in result["msg"]


def test_timeout_names_the_server():
    # A TCP listener that never answers.
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    port = listener.getsockname()[1]
    accepted = []
    thread = threading.Thread(target=lambda: accepted.append(listener.accept()), daemon=True)
    thread.start()
    try:
        client = sync.DnsClient("127.0.0.1", port, "k", "c2VjcmV0", timeout=0.5)
        with client, pytest.raises(dns_values.DnsError, match="timeout") as caught:
            sync.sync_records(client, [{"name": "x.example.test", "type": "TXT", "values": ["x"]}])
        assert caught.value.rcode == "TIMEOUT"
    finally:
        for conn, _addr in accepted:
            conn.close()
        listener.close()


# ---------------------------------------------------------------- the zone-transfer read path (many records)

def test_many_records_are_read_by_zone_transfer_and_stay_race_safe(bind9):
    label = unique_label()
    records = [{"name": "h%02d.%s.example.test" % (n, label), "type": "A", "values": ["192.0.2.%d" % (n + 1)]}
               for n in range(40)]
    with client_for(bind9) as client:
        first = sync.sync_records(client, records)
    assert first["zone_transfers"] == 1 and first["queries_sent"] < 5 and first["updates_sent"] == 1
    with client_for(bind9) as client:
        again = sync.sync_records(client, records)
    assert again["changed"] is False and again["zone_transfers"] == 1

    # Both read paths see the same state.
    records[0]["values"] = ["192.0.2.200"]
    with client_for(bind9) as client:
        by_query = sync.sync_records(client, records, check_mode=True, read_method="query")
    with client_for(bind9) as client:
        by_axfr = sync.sync_records(client, records, check_mode=True, read_method="axfr")
    assert by_query["changes"] == by_axfr["changes"] and len(by_axfr["changes"]) == 1

    def someone_else_changes_it(zone, update):
        raw_update(bind9, "example.test", lambda u: u.replace(records[0]["name"] + ".", 300, "A", "192.0.2.99"))

    with client_for(bind9) as client, pytest.raises(dns_values.DnsConcurrentChange):
        sync.sync_records(client, records, before_send=someone_else_changes_it)
    assert [rd.address for rd in query(bind9, records[0]["name"], "A")] == ["192.0.2.99"]


def test_cname_is_seen_through_zone_transfer(bind9):
    label = unique_label()
    alias = "alias.%s.example.test" % label
    raw_update(bind9, "example.test", lambda u: u.add(alias + ".", 300, "CNAME", "elsewhere.example.test."))
    records = [{"name": "h%02d.%s.example.test" % (n, label), "type": "TXT", "values": ["x"]} for n in range(40)]
    records.append({"name": alias, "type": "TXT", "values": ["beside a CNAME"]})
    with client_for(bind9) as client, pytest.raises(dns_values.DnsInputError, match="is a CNAME"):
        sync.sync_records(client, records, read_method="axfr")


def test_zone_transfer_refused_falls_back_to_queries(bind9):
    # The DNSBL zones allow no transfer: the read still works, by query.
    with client_for(bind9) as client:
        assert client.transfer(dns_values.absolute_name("zen.dnsbl.test")) is None
        wanted = dns_values.normalize_records([{"name": "2.0.0.127.zen.dnsbl.test", "type": "A",
                                                "values": ["127.0.0.2"]}])
        zones, before, _cnames = client.read(wanted, method="axfr")
    assert zones[wanted[0].key].to_text() == "zen.dnsbl.test."
    assert [rd.address for rd in before[wanted[0].key]] == ["127.0.0.2"]


def test_server_closing_after_each_answer_is_handled():
    """Pipelined reads fall back to one connection per query (unsigned, against a tiny stub server)."""
    import dns.message
    import dns.rcode

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    port = listener.getsockname()[1]

    def serve():
        while True:
            try:
                conn, _addr = listener.accept()
            except OSError:
                return
            with conn:
                length = int.from_bytes(conn.recv(2), "big")
                data = b""
                while len(data) < length:
                    data += conn.recv(length - len(data))
                request = dns.message.from_wire(data)
                response = dns.message.make_response(request)
                response.flags |= dns.flags.AA
                response.set_rcode(dns.rcode.NXDOMAIN)
                wire = response.to_wire()
                conn.sendall(len(wire).to_bytes(2, "big") + wire)  # then close: no pipelining

    threading.Thread(target=serve, daemon=True).start()
    try:
        with sync.DnsClient("127.0.0.1", port, timeout=5) as client:
            answers = client.query_many([(dns_values.absolute_name("a%d.example.test" % n), dns.rdatatype.TXT)
                                         for n in range(5)])
        assert [a.rcode() for a in answers] == [dns.rcode.NXDOMAIN] * 5
        assert [a.question[0].name.to_text() for a in answers] == ["a%d.example.test." % n for n in range(5)]
    finally:
        listener.close()


def run_module_process(args, tmp_path, check=False):
    """The module as Ansible runs it over a non-local connection: its own Python process (the action plugin
    runs it in the controller's process only when the connection is local)."""
    args_file = tmp_path / "args.json"
    args_file.write_text(json.dumps({"ANSIBLE_MODULE_ARGS": dict(args, _ansible_check_mode=check)}))
    env = dict(os.environ, PYTHONPATH=str(ROOT / ".ansible" / "collections"))
    proc = subprocess.run([str(BIN / "python"), str(ROOT / "plugins" / "modules" / "dns_records.py"), str(args_file)],
                          env=env, capture_output=True, text=True, timeout=60, check=False)
    return proc.returncode, json.loads(proc.stdout)


def test_module_in_its_own_process_publishes_the_same_way(bind9, tmp_path):
    name = "%s.example.test" % unique_label()
    args = dict(bind9.module_args(), records=[{"name": name, "type": "A", "values": ["192.0.2.44"]}])
    serial_before = serial(bind9, "example.test")
    rc, checked = run_module_process(args, tmp_path, check=True)
    assert rc == 0 and checked["changed"] is True and checked["updates_sent"] == 0
    assert serial(bind9, "example.test") == serial_before and query(bind9, name, "A") is None
    rc, published = run_module_process(args, tmp_path)
    assert rc == 0 and published["changed"] is True and published["updates_sent"] == 1
    assert [rd.address for rd in query(bind9, name, "A")] == ["192.0.2.44"]
    assert published["invocation"]["module_args"]["key_secret"] == "VALUE_SPECIFIED_IN_NO_LOG_PARAMETER"
    rc, again = run_module_process(args, tmp_path)
    assert rc == 0 and again["changed"] is False
    wrong = dict(args, key_secret="d3Jvbmcgc2VjcmV0IGJ1dCB2YWxpZCBiYXNlNjQ=")
    rc, failed = run_module_process(wrong, tmp_path)
    assert rc != 0 and failed["failed"] is True and "BADSIG" in failed["msg"]
    assert "d3Jvbmcgc2VjcmV0" not in json.dumps(failed)
