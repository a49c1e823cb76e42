"""The TEST DOUBLE's own reading of the guide: load-time refusals and <domain> merging (no daemon, no network).

Run: .venv/bin/pytest tests/pmta_test_double/test_config_model.py
"""

import os
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path[:0] = [HERE, os.path.join(REPO, "plugins", "module_utils")]

from pmta_test_double import config, routing  # noqa: E402

BASE = "postmaster ops@example.com\nlog-file /tmp/ptd-unused.log\n"


def load(tmp_path, text):
    path = tmp_path / "config"
    path.write_text(BASE + text)
    return config.load(str(path), check_license=False)


def refusal(tmp_path, text):
    with pytest.raises(config.ConfigError) as error:
        load(tmp_path, text)
    return "\n".join(error.value.lines)


@pytest.mark.parametrize("text, expected", [
    ("throttle 10/h\n", "line 3 of .*: unknown directive throttle"),
    ("<domain *>\n    max-smtp-out\n</domain>\n", "line 4 .*argument missing"),
    ("<domain *>\n    max-msg-rate 500 per hour\n</domain>\n", "invalid value for max-msg-rate"),
    ("<domain *>\n    max-msg-rate 10/week\n</domain>\n", "invalid value for max-msg-rate"),
    ("<domain *>\n    retry-after 10 minutes\n</domain>\n", "invalid value for retry-after"),
    ("<domain *>\n    use-starttls enabled\n</domain>\n", "invalid value for use-starttls"),
    ("<domain *>\n    max-cold-virtual-mta-msg 100/h\n</domain>\n", "invalid daily limit"),
    ("max-smtp-out 10\n", "max-smtp-out not allowed in <global>"),
    ("<virtual-mta a>\n    smtp-source-host a.example.com 192.0.2.1\n</virtual-mta>\n", "smtp-source-host"),
    ("<virtual-mta-pool p>\n    virtual-mta nope\n</virtual-mta-pool>\n", "unknown virtual MTA nope"),
    ("<virtual-mta a>\n    smtp-source-host 192.0.2.1 a.example.com\n    cold-virtual-mta nope\n</virtual-mta>\n",
     "unknown virtual MTA nope"),
    ("<domain *>\n    smtp-pattern-list nope\n</domain>\n", "unknown smtp-pattern-list nope"),
    ("<domain $nope>\n    max-smtp-out 1\n</domain>\n", r"unknown domain-macro \$nope"),
    ("domain-macro a $b\ndomain-macro b $a\n", "domain-macro loop"),
    ("<smtp-pattern-list p>\n    reply /x/ mode=backoff,mode=normal\n</smtp-pattern-list>\n", "both mode=backoff"),
    ("<smtp-pattern-list p>\n    reply /x/ skip-mx,bounce-queue\n</smtp-pattern-list>\n", "both skip-mx"),
    ("<smtp-pattern-list p>\n    reply /x/ reenable-after=1h\n</smtp-pattern-list>\n", "without a preceding"),
    ("<smtp-pattern-list p>\n    reply /x/ mode=backoff disable-source-ip\n</smtp-pattern-list>\n",
     "invalid reply pattern"),
    ("<smtp-pattern-list p>\n    reply /x/ slow-down\n</smtp-pattern-list>\n", "unknown action"),
    ("<mx-rollup-list>\n    mx *.example.net example\n</mx-rollup-list>\n", "must end in .rollup"),
    ("name-server dns.example.com\n", "invalid value for name-server"),
    ("smtp-server-tls-certificate /nonexistent/cert.pem\n", "cannot read certificate file"),
    ("<bounce-processor>\n    <address-list>\n        address-file /nonexistent\n    </address-list>\n"
     "</bounce-processor>\n", "cannot read address file"),
])
def test_refused_at_load(tmp_path, text, expected):
    import re

    assert re.search(expected, refusal(tmp_path, text)), refusal(tmp_path, text)


def test_accepts_what_the_guide_writes(tmp_path):
    loaded = load(tmp_path, """\
domain-macro big gmail.com,yahoo.com
<virtual-mta a>
    smtp-source-host 192.0.2.1 a.example.com
    cold-virtual-mta b
    <domain *>
        max-cold-virtual-mta-msg 50/day,100/d
    </domain>
</virtual-mta>
<virtual-mta b>
    smtp-source-host 192.0.2.2 b.example.com
    max-smtp-msg-rate 1000/d
</virtual-mta>
<virtual-mta-pool p>
    virtual-mta a
    virtual-mta b
</virtual-mta-pool>
<smtp-pattern-list blocks>
    reply /TS03/ mode=backoff,disable-source-ip,reenable-after=1h
    reply /Sender address deferred by rule \\x23CR-IN-DEF-2 / mode=backoff
    reply /(?-i)RP:TRC/ mode=backoff
</smtp-pattern-list>
<mx-rollup-list>
    mx mx1.hotmail.com hotmail.rollup
    mx *.mail.protection.outlook.com outlook.rollup rollup-by-ip
</mx-rollup-list>
<domain $big>
    max-msg-rate 83/10m
    retry-after 10m,10m,1h,4h
    smtp-pattern-list blocks
    smtp-hosts h1.example.com, h2.example.com; [192.0.2.9]:2525; last.example.com
</domain>
""")
    assert loaded.pools["p"].members == ["a", "b"]
    assert loaded.vmtas["a"].cold == ["b"]
    assert loaded.rollups == [("mx1.hotmail.com", "hotmail.rollup", False),
                              ("*.mail.protection.outlook.com", "outlook.rollup", True)]
    rules = loaded.pattern_lists["blocks"]
    assert rules[0][1] == ["mode=backoff", "disable-source-ip", "reenable-after=1h"]
    assert rules[1][0].search("550 Sender address deferred by rule #CR-IN-DEF-2 ")
    assert rules[0][0].search("421 ts03 deferred") and not rules[2][0].search("rp:trc")


def test_domain_settings_most_specific_wins_and_merge_general_to_specific(tmp_path):
    loaded = load(tmp_path, """\
domain-macro ours example.test,example.net
<domain *>
    max-smtp-out 5
    retry-after 20m
</domain>
<domain [*.]example.test>
    max-smtp-out 4
    bounce-after 1d
</domain>
<domain *.example.test>
    max-smtp-out 3
</domain>
<domain sub.example.test>
    max-msg-per-connection 7
</domain>
<domain $ours>
    max-smtp-out 2
</domain>
<domain example.test>
    max-smtp-out 1
</domain>
<virtual-mta v>
    smtp-source-host 192.0.2.1 v.example.com
    <domain *>
        retry-after 1m
    </domain>
</virtual-mta>
""")
    settings = routing.domain_settings
    sub = settings(loaded, "sub.example.test")
    # The exact match adds its own setting; *.example.test (subdomains only) beats [*.]example.test,
    # which beats *; together they fill the rest, merged from general to specific.
    assert sub["max-msg-per-connection"] == "7"
    assert sub["bounce-after"] == "1d" and sub["retry-after"] == "20m"
    assert sub["max-smtp-out"] == "3"
    # The base domain: [*.]example.test matches it, *.example.test does not; the explicit block beats the
    # macro at equal specificity, whatever the file order.
    assert settings(loaded, "example.test")["max-smtp-out"] == "1"
    assert settings(loaded, "example.net")["max-smtp-out"] == "2"
    assert settings(loaded, "other.org")["max-smtp-out"] == "5"
    assert settings(loaded, "other.org")["bounce-after"] == "4d12h"  # the guide's default
    # A vMTA's <domain *> beats the global <domain *> for its queues only.
    assert settings(loaded, "other.org", "v")["retry-after"] == "1m"
    assert settings(loaded, "sub.example.test", "v")["retry-after"] == "1m"
    assert settings(loaded, "other.org")["retry-after"] == "20m"


def test_a_host_without_name_servers_starts_and_defers(monkeypatch):
    """An isolated host (resolv.conf with no nameserver): lookups fail as transient, the daemon does not crash."""
    import dns.resolver  # pylint: disable=import-outside-toplevel

    def no_name_servers(resolver, filename):
        raise dns.resolver.NoResolverConfiguration("no nameservers in %s" % filename)

    monkeypatch.setattr(dns.resolver.Resolver, "read_resolv_conf", no_name_servers)
    resolver = routing.Resolver([])
    with pytest.raises(routing.TemporaryDnsError):
        resolver.lowest_mx("gmail.test")
