# Copyright: mailops.powermta contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""warmup_dnsbl_check against a real BIND 9 serving the bench's DNSBL zones (see tests/testbed/bind9.py).

zen.dnsbl.test: RFC 5782 test points, 203.0.113.66 listed (TXT), 203.0.113.67 PBL (127.0.0.10),
203.0.113.68 error code 127.255.255.254, 2001:db8::66 listed; wild.dnsbl.test lists everything;
errors.dnsbl.test answers 127.255.255.254 for everything.
"""

from __future__ import annotations

import pytest
from ansible_collections.mailops.powermta.plugins.module_utils._warmup import dnsbl as _dnsbl
from dns_helpers import dig, run_adhoc

ZONES = ["zen.dnsbl.test", "wild.dnsbl.test", "errors.dnsbl.test"]
IPS = ["203.0.113.66", "203.0.113.67", "203.0.113.68", "203.0.113.69", "2001:db8::66", "2001:db8::69"]


@pytest.fixture(scope="module")
def module_result(bind9):
    rc, result = run_adhoc("warmup_dnsbl_check", {"ips": IPS, "zones": ZONES, "server": bind9.address,
                                                  "port": bind9.port, "timeout": 2})
    assert rc == 0, result
    return result


def status(result, ip, zone):
    return next(r for r in result["results"] if r["ip"] == ip and r["zone"] == zone)


def test_fixture_really_serves_the_zones(bind9):
    # independent client: the answers the module must interpret
    assert dig(bind9, "66.113.0.203.zen.dnsbl.test", "A") == "127.0.0.2"
    assert dig(bind9, "1.0.0.127.wild.dnsbl.test", "A") == "127.0.0.2"


def test_listed_with_txt_reason(module_result):
    item = status(module_result, "203.0.113.66", "zen.dnsbl.test")
    assert (item["status"], item["codes"], item["txt"]) == ("listed", ["127.0.0.2"], ["listed: bench test"])
    item = status(module_result, "2001:db8::66", "zen.dnsbl.test")
    assert (item["status"], item["txt"]) == ("listed", ["listed: bench test (IPv6)"])
    assert item["query"].startswith("6.6.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.")


def test_not_listed(module_result):
    assert status(module_result, "203.0.113.69", "zen.dnsbl.test")["status"] == "not_listed"
    assert status(module_result, "2001:db8::69", "zen.dnsbl.test")["status"] == "not_listed"


def test_pbl_is_a_configuration_finding_not_a_listing(module_result):
    item = status(module_result, "203.0.113.67", "zen.dnsbl.test")
    assert (item["status"], item["codes"]) == ("policy", ["127.0.0.10"])
    assert "203.0.113.67" not in module_result["blocklisted"]
    assert [f["ip"] for f in module_result["findings"]] == ["203.0.113.67"]
    assert "configuration, not reputation" in module_result["findings"][0]["finding"]


def test_error_code_is_an_error_not_a_listing(module_result):
    item = status(module_result, "203.0.113.68", "zen.dnsbl.test")
    assert (item["status"], item["codes"]) == ("error", ["127.255.255.254"])
    assert "203.0.113.68" not in module_result["blocklisted"]


def test_broken_zones_are_unusable_and_never_list(module_result):
    zones = {z["zone"]: z for z in module_result["zones"]}
    assert zones["zen.dnsbl.test"]["usable"] and zones["zen.dnsbl.test"]["ipv6_usable"]
    assert not zones["wild.dnsbl.test"]["usable"]
    assert "lists everything" in zones["wild.dnsbl.test"]["reason"]
    assert not zones["errors.dnsbl.test"]["usable"]
    assert "127.255.255.254" in zones["errors.dnsbl.test"]["reason"]
    assert module_result["summary"]["unusable_zones"] == ["errors.dnsbl.test", "wild.dnsbl.test"]
    for ip in IPS:
        for zone in ("wild.dnsbl.test", "errors.dnsbl.test"):
            assert status(module_result, ip, zone)["status"] == "error"
    assert module_result["blocklisted"] == {"203.0.113.66": ["zen.dnsbl.test"], "2001:db8::66": ["zen.dnsbl.test"]}


def test_without_health_check_the_wildcard_zone_would_lie(bind9):
    # why the health check exists: the same zone, unchecked, "lists" a clean address
    result = _dnsbl.check(["203.0.113.69"], ["wild.dnsbl.test"], health_check=False,
                          query=_dnsbl.DnspythonResolver(bind9.address, bind9.port, 2))
    assert result["blocklisted"] == {"203.0.113.69": ["wild.dnsbl.test"]}


def test_ipv4_only_zone_skips_ipv6(bind9):
    result = _dnsbl.check(["2001:db8::66"], [{"zone": "zen.dnsbl.test", "ipv6": False}],
                          query=_dnsbl.DnspythonResolver(bind9.address, bind9.port, 2))
    assert result["results"][0]["status"] == "skipped" and result["blocklisted"] == {}


def test_unreachable_resolver_is_an_error_for_every_zone(bind9_factory):
    server = bind9_factory()
    port = server.port
    server.stop()
    result = _dnsbl.check(["203.0.113.66"], ["zen.dnsbl.test"],
                          query=_dnsbl.DnspythonResolver("127.0.0.1", port, 0.5))
    assert result["zones"][0]["usable"] is False
    assert result["results"][0]["status"] == "error" and result["blocklisted"] == {}


def test_bad_input_fails_before_any_query(bind9):
    rc, result = run_adhoc("warmup_dnsbl_check",
                           {"ips": ["mx.example.com"], "server": bind9.address, "port": bind9.port})
    assert rc != 0 and "'mx.example.com' is not an IPv4 or IPv6 address" in result["msg"]
