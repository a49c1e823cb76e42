"""Value types of PowerMTA directives: every type, valid and invalid values."""

import pytest
from ansible_collections.mailops.powermta.plugins.module_utils._pmta_config import values

VALID = [
    ("bool", "yes"),
    ("bool", "False"),
    ("int", "0"),
    ("int", "1200"),
    ("int:0-100", "100"),
    ("int:1-100", "1"),
    ("int-or:unlimited", "unlimited"),
    ("int-or:auto", "5000"),
    ("time", "10m"),
    ("time", "1w2d12h"),
    ("time", "300s"),
    ("time", "600"),
    ("time-or-never", "never"),
    ("time-list", "10m,10m,1h,4h"),
    ("time-list", "10m, 1h"),
    ("rate", "unlimited"),
    ("rate", "0"),
    ("rate", "500/h"),
    ("rate", "83/10m"),
    ("rate", "6/sec"),
    ("rate", "100/15m"),
    ("rate", "1/day"),
    ("rate-list", "50/d,100/d,200/day"),
    ("volume-rate", "10g/2h"),
    ("volume-rate", "1024K/15s"),
    ("volume-rate", "unlimited"),
    ("size", "250M"),
    ("size", "0"),
    ("size-or-unlimited", "unlimited"),
    ("size-or-unlimited", "40K"),
    ("cidr", "192.0.2.1"),
    ("cidr", "198.51.100.0/24"),
    ("cidr", "0/0"),
    ("cidr", "10/8"),
    ("cidr", "2001:db8::1"),
    ("cidr", "2001:db8::/32"),
    ("cidr-rate", "192.0.2.1 600/m"),
    ("cidr-int", "192.0.2.0/24 10"),
    ("cidr-volume-rate", "192.0.2.1 1g/h"),
    ("source-host", "192.0.2.1 mta1.example.com"),
    ("source-host", "10/8 baz.example.com"),
    ("listener", "0/0:25"),
    ("listener", "127.0.0.1:2525 source=injectors"),
    ("listener", "[2001:db8::1]:25"),
    ("http-access", "127.0.0.1 admin"),
    ("http-access", "198.51.100.0/24 monitor,deny-logs"),
    ("domain-key", "s1,example.com,/etc/pmta/s1.pem"),
    ("domain-key", "base,*,c:\\pmta\\base.pem"),
    ("domain-key", "2017k1, esp.example.com, /etc/pmta/keys/esp.pem"),
    ("domain-macro", "gmail gmail.com,googlemail.com"),
    ("email", "postmaster@example.com"),
    ("email-list", "a@example.com,b@example.com"),
    ("email-or-regex", "/@foo(bar)?\\.com$/"),
    ("hostname", "mta1.example.com"),
    ("name", "pool-main"),
    ("names", "mta-proxy-a,mta-proxy-b"),
    ("api-key", "abcd_0123_abcd_0123_abcd_0123_ab"),
    ("records", "d,b,t,tq,r,f,rb,rs"),
    ("records", "delivery, bounce, transient-queue"),
    ("record-fields", "d *,header_Message-Id"),
    ("reply", "/too many connections/ mode=backoff"),
    ("reply", "/421 4\\.7\\.0 / disable-source-ip reenable-after=2h"),
    ("reply", "/a\\/b/ bounce-queue"),
    ("reply", "/the content and/or the links/ mode=backoff"),
    ("regex-result", "/^customer/ virtual-mta=service"),
    ("header-pattern", "x-eval /^\\s*eval/ virtual-mta=evaluation"),
    ("bool-or-time", "true"),
    ("bool-or-time", "2h"),
    ("mx-limit", "*.secureserver.net 20"),
    ("mx-rollup", "*.mail.protection.outlook.com outlook.rollup rollup-by-ip"),
    ("port", "8080"),
    ("smtp-hosts", "lookup-mx:example.com"),
    ("smtp-hosts", "h1.example.com, h2.example.com; [192.0.2.1]:2525; last.example.com"),
    ("smtp-hosts", "[IPv6:2001:db8::25]:25"),
    ("smtp-hosts", "relay.example.net:587"),
    ("enum:smtp|pipe|file", "pipe"),
    ("privacy-policy", 'siphash "secret"'),
    ("words:2", "a b"),
    ("string", "anything at all"),
]

INVALID = [
    ("bool", "maybe", "invalid boolean"),
    ("bool", "1", "invalid boolean"),
    ("int", "-1", "invalid number"),
    ("int", "ten", "invalid number"),
    ("int:0-100", "101", "out of range"),
    ("int-or:unlimited", "lots", "invalid number"),
    ("time", "10 minutes", "invalid time interval"),
    ("time", "10min", "invalid time interval"),
    ("time", "1y", "invalid time interval"),
    ("time-or-never", "forever", "invalid time interval"),
    ("time-list", "10m,1x", "invalid time interval"),
    ("time-list", ",".join(["1m"] * 31), "more than 30"),
    ("rate", "500 per hour", "invalid rate"),
    ("rate", "500/week", "invalid rate"),
    ("rate", "0/h", "invalid rate"),
    ("rate", "500", "invalid rate"),
    ("rate-list", "50/d,lots", "invalid rate"),
    ("volume-rate", "10gb/h", "invalid data volume rate"),
    ("size", "250", "invalid size"),
    ("size", "1.5G", "invalid size"),
    ("cidr", "192.0.2.300", "invalid IP"),
    ("cidr", "192.0.2.0/33", "invalid IP"),
    ("cidr", "mta.example.com", "invalid IP"),
    ("cidr", "10", "invalid IP"),
    ("cidr-rate", "192.0.2.1", "argument missing"),
    ("cidr-rate", "192.0.2.1 fast", "invalid rate"),
    ("source-host", "mta1.example.com 192.0.2.1", "reversed"),
    ("source-host", "192.0.2.1", "expected an IP"),
    ("source-host", "192.0.2.1 bad_host!", "invalid host name"),
    ("listener", "0/0", "invalid listener"),
    ("listener", "0/0:99999", "invalid listener"),
    ("listener", "0/0:25 src=x", "unexpected"),
    ("http-access", "0/0", "expected CIDR and access level"),
    ("http-access", "127.0.0.1 root", "invalid access level"),
    ("http-access", "127.0.0.1 monitor,read", "invalid access level"),
    ("domain-key", "s1,example.com,*,/etc/pmta/k.pem", "3 comma-separated fields, found 4"),
    ("domain-key", "/etc/pmta/k.pem,example.com,s1", "key file must be the last field"),
    ("domain-key", "example.com,s1,/etc/pmta/k.pem", "swapped"),
    ("domain-key", "s1,example.com,keyfile", "not a key file path"),
    ("domain-macro", "onlyname", "argument missing"),
    ("email", "postmaster", "invalid email"),
    ("email-list", "a@example.com,b", "invalid email"),
    ("hostname", "bad host", "invalid host name"),
    ("name", "two words", "expected one name"),
    ("names", "a,,b", "empty name"),
    ("api-key", "short", "invalid API key"),
    ("records", "d,x", "unknown record type"),
    ("record-fields", "d", "argument missing"),
    ("record-fields", "z *", "unknown record type"),
    ("reply", "too many mode=backoff", "expected reply"),
    ("reply", "/too many/", "no action"),
    ("reply", "/too many/ mode=slow", "invalid mode"),
    ("reply", "/x/ disable-source-ip,reenable-after=soon", "invalid time"),
    ("reply", "/x/ explode", "unknown reply action"),
    ("reply", "/unterminated mode=backoff", "expected reply"),
    ("regex-result", "/x/", "argument missing after the pattern"),
    ("header-pattern", "x-eval", "argument missing"),
    ("bool-or-time", "sometimes", "invalid time interval"),
    ("mx-limit", "*.example.com many", "expected MX-PATTERN N"),
    ("mx-rollup", "mx1.example.com", "expected MX-PATTERN NAME"),
    ("mx-rollup", "mx1.example.com x.rollup by-ip", "expected MX-PATTERN NAME"),
    ("port", "70000", "out of range"),
    ("smtp-hosts", "a.example.com,,b.example.com", "empty host"),
    ("smtp-hosts", "[192.0.2.1:25", "unclosed"),
    ("smtp-hosts", "[192.0.2.300]:25", "invalid IP"),
    ("smtp-hosts", "[192.0.2.1]:http", "invalid port"),
    ("smtp-hosts", "lookup-mx:", "invalid domain"),
    ("smtp-hosts", "bad host!", "invalid host"),
    ("enum:smtp|pipe|file", "smtps", "invalid value"),
    ("privacy-policy", "sha1", "invalid value"),
    ("words:2", "a", "argument missing"),
    ("words:1-2", "a b c", "too many arguments"),
]


@pytest.mark.parametrize(("type_name", "value"), VALID)
def test_valid_values_pass(type_name, value):
    assert values.checker(type_name)(value) is None


@pytest.mark.parametrize(("type_name", "value", "message"), INVALID)
def test_invalid_values_are_refused_with_a_hint(type_name, value, message):
    problem = values.checker(type_name)(value)
    assert problem is not None, value
    assert message in problem[0]
    assert problem[1], "every refusal carries a fix hint"


def test_unknown_type_name_raises():
    with pytest.raises(KeyError):
        values.checker("no-such-type")


@pytest.mark.parametrize(
    ("text", "network"),
    [("0/0", "0.0.0.0/0"), ("10/8", "10.0.0.0/8"), ("173.194/16", "173.194.0.0/16"), ("192.0.2.7", "192.0.2.7/32")],
)
def test_short_cidr_forms(text, network):
    assert str(values.network_of(text)) == network


def test_network_of_rejects_names():
    assert values.network_of("injectors") is None
    assert values.network_of("{auth}") is None
