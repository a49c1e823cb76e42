"""The User's Guide rules (docs/config-lint.md, "Guide rules"): each triggers at its line, and its fix is clean.

Every case is a minimal config written for the test: ``bad`` must give exactly ``expected`` findings
(line numbers count from the first line of ``bad``), ``good`` (the fix) must give none.
"""

import pathlib

import pytest
from ansible_collections.mailops.powermta.plugins.module_utils._pmta_config import lint_path, lint_text, schema

HEADER = "run-as-root no\n"
# Lets injectors pick any vMTA, so the vMTAs of focused tests are not "unreachable".
# gives STARTTLS a certificate and AUTH a user.
TRAILER = (
    "<source 127.0.0.1>\nprocess-x-virtual-mta yes\n</source>\nsmtp-server-tls-certificate /etc/pmta/tls.pem\n"
    "<smtp-user injector>\npassword secret\nsource {auth}\n</smtp-user>\n<source {auth}>\nsmtp-service yes\n</source>\n"
)
USES_R = "<source 127.0.0.2>\nrewrite-list r\n</source>\n"
VMTA = "<virtual-mta v1>\nsmtp-source-host 192.0.2.1 v1.example.com\n</virtual-mta>\n"


def found(text, **kwargs):
    result = lint_text(HEADER + text + TRAILER, **kwargs)
    return sorted((f.line - 1, f.severity, f.code) for f in result.errors + result.warnings)


def findings(text, **kwargs):
    result = lint_text(HEADER + text + TRAILER, **kwargs)
    return result.errors + result.warnings


RULES = [
    # (id, bad, expected [(line, severity, code)], good, words the message or hint must hold)
    (
        "reply-action-not-in-guide",
        "<smtp-pattern-list s>\nreply /x/ mode=backoff,backoff-to-normal-after=1h\n</smtp-pattern-list>\n",
        [(2, "error", "bad-value")],
        "<smtp-pattern-list s>\nreply /x/ mode=backoff,defer-queue\n</smtp-pattern-list>\n",
        ["unknown reply action", "§3.3.15"],
    ),
    (
        "reply-mode-twice",
        "<smtp-pattern-list s>\nreply /x/ mode=backoff,mode=normal\n</smtp-pattern-list>\n",
        [(2, "error", "bad-value")],
        "<smtp-pattern-list s>\nreply /x/ mode=normal\n</smtp-pattern-list>\n",
        ["mode= given twice"],
    ),
    (
        "reply-reenable-without-disable",
        "<smtp-pattern-list s>\nreply /x/ reenable-after=1h\n</smtp-pattern-list>\n",
        [(2, "error", "bad-value")],
        "<smtp-pattern-list s>\nreply /x/ disable-source-ip,reenable-after=1h\n</smtp-pattern-list>\n",
        ["without a preceding disable-source-ip"],
    ),
    (
        "reply-reenable-before-disable",
        "<smtp-pattern-list s>\nreply /x/ reenable-after=1h disable-source-ip\n</smtp-pattern-list>\n",
        [(2, "error", "bad-value")],
        "<smtp-pattern-list s>\nreply /x/ disable-source-ip reenable-after=1h\n</smtp-pattern-list>\n",
        ["preceding"],
    ),
    (
        "reply-two-reenable-after",
        "<smtp-pattern-list s>\nreply /x/ disable-source-ip,reenable-after=1h,reenable-after=2h\n"
        "</smtp-pattern-list>\n",
        [(2, "error", "bad-value")],
        "<smtp-pattern-list s>\nreply /x/ disable-source-ip,reenable-after=2h\n</smtp-pattern-list>\n",
        ["more than one reenable-after"],
    ),
    (
        "reply-skip-mx-and-bounce-queue",
        "<smtp-pattern-list s>\nreply /x/ skip-mx,bounce-queue\n</smtp-pattern-list>\n",
        [(2, "error", "bad-value")],
        "<smtp-pattern-list s>\nreply /x/ skip-mx\n</smtp-pattern-list>\n",
        ["skip-mx and bounce-queue"],
    ),
    (
        "pattern-result-not-in-guide",
        VMTA + "<pattern-list p>\nrcpt-to /a/ vmta=v1\n</pattern-list>\n",
        [(5, "error", "bad-value")],
        VMTA + "<pattern-list p>\nrcpt-to /a/ virtual-mta=v1,recipient-priority=90\n</pattern-list>\n",
        ["invalid pattern-list result", "§3.3.14"],
    ),
    (
        "pattern-result-priority-range",
        "<pattern-list p>\nmail-from /a/ recipient-priority=101\n</pattern-list>\n",
        [(2, "error", "bad-value")],
        "<pattern-list p>\nmail-from /a/ recipient-priority=100\n</pattern-list>\n",
        ["0 to 100"],
    ),
    (
        "pattern-result-undefined-vmta-among-settings",
        VMTA + "<pattern-list p>\nrcpt-to /a/ recipient-priority=9,virtual-mta=nope\n</pattern-list>\n",
        [(5, "error", "undefined-reference")],
        VMTA + "<pattern-list p>\nrcpt-to /a/ recipient-priority=9,virtual-mta=v1\n</pattern-list>\n",
        ["nope"],
    ),
    (
        "nested-pattern-list-without-condition",
        VMTA + "<pattern-list p>\n<pattern-list>\n* virtual-mta=v1\n</pattern-list>\n</pattern-list>\n",
        [(5, "error", "nested-pattern-list")],
        VMTA + "<pattern-list p>\nmail-from /a/ <pattern-list>\n* virtual-mta=v1\n</pattern-list>\n</pattern-list>\n",
        ["§3.3.14"],
    ),
    (
        "pattern-list-used-before-defined",
        VMTA + "<source 0/0>\npattern-list p\n</source>\n<pattern-list p>\n* virtual-mta=v1\n</pattern-list>\n",
        [(5, "error", "order")],
        VMTA + "<pattern-list p>\n* virtual-mta=v1\n</pattern-list>\n<source 0/0>\npattern-list p\n</source>\n",
        ["§3.3.7.39"],
    ),
    (
        "rollup-name-without-suffix",
        "<mx-rollup-list>\nmx mx1.example.net example\n</mx-rollup-list>\n",
        [(2, "error", "rollup-name")],
        "<mx-rollup-list>\nmx mx1.example.net example.rollup\n</mx-rollup-list>\n",
        ["§10.17"],
    ),
    (
        "wildcard-rollup-without-hosts",
        "<mx-rollup-list>\nmx *.mx.example.net ex.rollup\n</mx-rollup-list>\n<domain ex.rollup>\nmax-smtp-out 5\n"
        "</domain>\n",
        [(2, "error", "rollup-no-hosts")],
        "<mx-rollup-list>\nmx *.mx.example.net ex.rollup\n</mx-rollup-list>\n<domain ex.rollup>\n"
        "smtp-hosts lookup-mx:example.net\n</domain>\n",
        ["rollup-by-ip", "§10.17"],
    ),
    (
        "wildcard-rollup-hosts-through-a-macro",
        "domain-macro ex example.net,ex.rollup\n<mx-rollup-list>\nmx *.mx.example.net ex.rollup\n</mx-rollup-list>\n",
        [(3, "error", "rollup-no-hosts")],
        "domain-macro ex example.net,ex.rollup\n<mx-rollup-list>\nmx *.mx.example.net ex.rollup\n</mx-rollup-list>\n"
        "<domain $ex>\nsmtp-hosts [192.0.2.25]\n</domain>\n",
        ["smtp-hosts"],
    ),
    (
        "wildcard-rollup-by-ip",
        "<mx-rollup-list>\nmx *.mx.example.net ex.rollup\nmx mx2.example.net ex.rollup\n</mx-rollup-list>\n",
        [(2, "error", "rollup-no-hosts")],
        "<mx-rollup-list>\nmx *.mx.example.net ex.rollup rollup-by-ip\n"
        "mx mx2.example.net ex.rollup\n</mx-rollup-list>\n",
        ["rollup-by-ip"],
    ),
    (
        "processor-without-addresses",
        "<bounce-processor>\ndeliver-unmatched-email no\n</bounce-processor>\n",
        [(1, "warning", "no-effect")],
        "<bounce-processor>\ndeliver-unmatched-email no\n<address-list>\ndomain bounces.example.com\n</address-list>\n"
        "</bounce-processor>\n",
        ["§12.6"],
    ),
    (
        "records-twice",
        "<acct-file /var/log/pmta/a.csv>\nrecords d\nrecords b\n</acct-file>\n",
        [(3, "error", "only-once")],
        "<acct-file /var/log/pmta/a.csv>\nrecords d,b\n</acct-file>\n",
        ["§3.3.11.11"],
    ),
    (
        "two-pattern-lists-in-a-source",
        VMTA + "<pattern-list p>\n* virtual-mta=v1\n</pattern-list>\n<source 0/0>\npattern-list p\npattern-list p\n"
        "</source>\n",
        [(9, "error", "only-once")],
        VMTA + "<pattern-list p>\n* virtual-mta=v1\n</pattern-list>\n<source 0/0>\npattern-list p\n</source>\n",
        ["§3.3.7.39"],
    ),
    (
        "pickup-twice",
        "pickup /var/pickup1 /var/bad1\npickup /var/pickup2 /var/bad2\n",
        [(2, "error", "only-once")],
        "pickup /var/pickup1 /var/bad1\n",
        ["§3.3.1.34.1"],
    ),
    (
        "move-interval-without-move-to",
        "<acct-file /var/log/pmta/a.csv>\nmove-interval 1h\n</acct-file>\n",
        [(2, "warning", "no-effect")],
        "<acct-file /var/log/pmta/a.csv>\nmove-to /var/log/pmta/archive\nmove-interval 1h\n</acct-file>\n",
        ["§3.3.11.2"],
    ),
    (
        "delete-after-with-move-to",
        "<acct-file /var/log/pmta/a.csv>\nmove-to /var/log/pmta/archive\ndelete-after 8d\n</acct-file>\n",
        [(3, "warning", "no-effect")],
        "<acct-file /var/log/pmta/a.csv>\ndelete-after 8d\n</acct-file>\n",
        ["§3.3.11.1"],
    ),
    (
        "retry-interval-not-piped",
        "<acct-file /var/log/pmta/a.csv>\nretry-interval 1m\n</acct-file>\n",
        [(2, "warning", "no-effect")],
        '<acct-file "|/usr/local/bin/acct-reader --db x">\nretry-interval 1m\n</acct-file>\n',
        ["piped"],
    ),
    (
        "records-f-without-fbl-processor",
        "<acct-file /var/log/pmta/fbl.csv>\nrecords f\n</acct-file>\n",
        [(2, "warning", "processor-missing")],
        "<acct-file /var/log/pmta/fbl.csv>\nrecords f\n</acct-file>\n<feedback-loop-processor>\n"
        "<address-list>\naddress /^fbl@fbl\\.example\\.com$/\n</address-list>\n</feedback-loop-processor>\n",
        ["<feedback-loop-processor>", "§3.3.11.11"],
    ),
    (
        "records-rb-without-bounce-processor",
        "<acct-file /var/log/pmta/rb.csv>\nrecords rb,rs\n</acct-file>\n",
        [(2, "warning", "processor-missing")],
        "<acct-file /var/log/pmta/rb.csv>\nrecords rb,rs\n</acct-file>\n<bounce-processor>\n"
        "<address-list>\ndomain bounces.example.com\n</address-list>\n</bounce-processor>\n",
        ["<bounce-processor>"],
    ),
    (
        "host-name-is-an-ip",
        "host-name 192.0.2.10\n",
        [(1, "error", "bad-value")],
        "host-name mta1.example.com\n",
        ["IP address", "§3.3.1.25"],
    ),
    (
        "vmta-host-name-is-an-ip",
        VMTA.replace("</virtual-mta>", "host-name 192.0.2.1\n</virtual-mta>"),
        [(3, "error", "bad-value")],
        VMTA.replace("</virtual-mta>", "host-name v1.example.com\n</virtual-mta>"),
        ["IP address"],
    ),
    (
        "smtp-hosts-bare-ip",
        "<domain example.net>\nsmtp-hosts 192.0.2.25:2525\n</domain>\n",
        [(2, "error", "bad-value")],
        "<domain example.net>\nsmtp-hosts [192.0.2.25]:2525\n</domain>\n",
        ["[192.0.2.25]", "§3.3.10.89"],
    ),
    (
        "auth-without-starttls",
        "<source 198.51.100.10>\nrequire-auth yes\n</source>\n",
        [(2, "warning", "auth-without-tls")],
        "<source 198.51.100.10>\nrequire-auth yes\nallow-starttls yes\n</source>\n",
        ["allow-starttls", "§3.3.7.12"],
    ),
    (
        "auth-starttls-inherited-from-a-wider-source",
        "<source 0/0>\nallow-starttls no\n</source>\n<source 198.51.100.10>\nrequire-auth yes\n</source>\n",
        [(5, "warning", "auth-without-tls")],
        "<source 0/0>\nallow-starttls yes\n</source>\n<source 198.51.100.10>\nrequire-auth yes\n</source>\n",
        ["no STARTTLS", "only CRAM-MD5"],
    ),
    (
        "auth-failure-rate-without-require-auth",
        "<source 198.51.100.10>\nsmtp-max-auth-failure-rate 5/m\n</source>\n",
        [(2, "warning", "no-effect")],
        "<source 198.51.100.10>\nsmtp-max-auth-failure-rate 5/m\nrequire-auth yes\nallow-starttls yes\n</source>\n",
        ["§3.3.7.7"],
    ),
    (
        "retain-x-job-without-process-x-job",
        "<source 198.51.100.10>\nretain-x-job yes\n</source>\n",
        [(2, "warning", "no-effect")],
        "<source 0/0>\nprocess-x-job yes\n</source>\n<source 198.51.100.10>\nretain-x-job yes\n</source>\n",
        ["§3.3.7.47"],
    ),
    (
        "process-x-dkim-key-without-options",
        "<source 198.51.100.10>\nprocess-x-dkim-key yes\n</source>\n",
        [(2, "warning", "no-effect")],
        "<source 198.51.100.10>\nprocess-x-dkim-key yes\nprocess-x-dkim-options yes\n</source>\n",
        ["§3.3.7.42"],
    ),
    (
        "require-starttls-with-use-starttls-off",
        "<domain *>\nuse-starttls no\n</domain>\n<domain example.net>\nrequire-starttls yes\n</domain>\n",
        [(5, "warning", "no-effect")],
        "<domain *>\nuse-starttls yes\n</domain>\n<domain example.net>\nrequire-starttls yes\n</domain>\n",
        ["§3.3.10.94.2"],
    ),
    (
        "dkim-identity-fallback-alone",
        "<domain *>\ndkim-identity-fallback @example.com\n</domain>\n",
        [(2, "warning", "no-effect")],
        "<domain *>\ndkim-identity sender\ndkim-identity-fallback @example.com\n</domain>\n",
        ["§3.3.10.29"],
    ),
    (
        "bounce-upon-no-mx-with-smtp-hosts",
        "<domain example.net>\nsmtp-hosts [192.0.2.25]\nbounce-upon-no-mx yes\n</domain>\n",
        [(3, "warning", "no-effect")],
        "<domain example.net>\nsmtp-hosts lookup-mx:example.org\nbounce-upon-no-mx yes\n</domain>\n",
        ["§3.3.10.60"],
    ),
    (
        "command-in-an-smtp-domain",
        "<domain pipe.example>\ncommand /usr/bin/true\n</domain>\n",
        [(2, "warning", "no-effect")],
        "<domain pipe.example>\ntype pipe\ncommand /usr/bin/true\n</domain>\n",
        ["§3.3.10.97"],
    ),
    (
        "pipe-domain-without-command",
        "<domain pipe.example>\ntype pipe\n</domain>\n",
        [(2, "error", "required-missing")],
        "<domain pipe.example>\ntype pipe\ncommand /usr/bin/true\n</domain>\n",
        ["§3.3.10.97.1"],
    ),
    (
        "http-delivery-without-url",
        "<domain api.example>\ntype http-delivery\n</domain>\n",
        [(2, "error", "required-missing")],
        "<domain api.example>\ntype http-delivery\nhttp-delivery-url https://api.example/in\n</domain>\n",
        ["§3.3.10.98.1"],
    ),
    (
        "dkim-sign-without-keys",
        "<domain *>\ndkim-sign yes\n</domain>\n",
        [(2, "warning", "no-effect")],
        "domain-key s1,example.com,/etc/pmta/dkim/s1.pem\n<domain *>\ndkim-sign yes\n</domain>\n",
        ["§3.3.10.19"],
    ),
    (
        "check-spf-outbound-without-source-host",
        "<domain *>\ncheck-spf-outbound yes\n</domain>\n",
        [(2, "warning", "no-effect")],
        VMTA + "<domain *>\ncheck-spf-outbound yes\n</domain>\n",
        ["§3.3.10.2"],
    ),
    (
        "password-with-system-auth",
        "<smtp-user u>\nauthentication-method system\npassword x\nsource {auth}\n</smtp-user>\n"
        "<source {auth}>\nsmtp-service yes\n</source>\n",
        [(3, "warning", "no-effect")],
        "<smtp-user u>\nauthentication-method system\nsource {auth}\n</smtp-user>\n<source {auth}>\nsmtp-service yes\n"
        "</source>\n",
        ["§3.3.8.1"],
    ),
    (
        "certificate-auth-without-certificate",
        "<smtp-user u>\nauthentication-method certificate\n</smtp-user>\n",
        [(1, "error", "required-missing")],
        "<smtp-user u>\nauthentication-method certificate\ntls-certificate /etc/pmta/u.pem\n</smtp-user>\n",
        ["§3.3.8.2"],
    ),
    (
        "proxy-without-client",
        "<proxy px>\nserver 192.0.2.7:5000\n</proxy>\n",
        [(1, "error", "required-missing")],
        "<proxy px>\nserver 192.0.2.7:5000\nclient 192.0.2.8 out.example.com\n</proxy>\n",
        ["§10.2.1.1"],
    ),
    (
        "proxy-client-without-host-name",
        "<proxy px>\nserver 192.0.2.7:5000\nclient 192.0.2.8:0\n</proxy>\n",
        [(3, "error", "bad-value")],
        "<proxy px>\nserver 192.0.2.7:5000\nclient 192.0.2.8:0 out.example.com\n</proxy>\n",
        ["host name"],
    ),
    (
        "signals-api-key-format",
        "<signals>\napi-key 12345\n</signals>\n",
        [(2, "error", "bad-value")],
        "<signals>\napi-key 0123456789abcdef0123456789abcdef01234567\n</signals>\n",
        ["40 hexadecimal", "§10.1.4.2.1"],
    ),
    (
        "signals-without-api-key",
        "<signals>\nlog-verbose yes\n</signals>\n",
        [(1, "error", "required-missing")],
        "<signals>\napi-key 0123456789abcdef0123456789abcdef01234567\nlog-verbose yes\n</signals>\n",
        ["§10.1.4.2.1"],
    ),
    (
        "domain-macro-name",
        "domain-macro big-isp a.example,b.example\n",
        [(1, "error", "bad-value")],
        "domain-macro big_isp a.example,b.example\n",
        ["§3.3.1.33.4"],
    ),
    (
        "map-header-to-field-tq",
        "<acct-file /var/log/pmta/a.csv>\nmap-header-to-field tq header_x-id rcpt\n</acct-file>\n",
        [(2, "error", "bad-value")],
        "<acct-file /var/log/pmta/a.csv>\nmap-header-to-field t header_x-id rcpt\n"
        "map-header-to-field fbl header_x-o rcpt\n</acct-file>\n",
        ["§3.3.11.10"],
    ),
    (
        "rewrite-target-not-ascii",
        "<rewrite-list r>\nmail-from abc@example.com foo@b\u00fccher.example\n</rewrite-list>\n" + USES_R,
        [(2, "error", "bad-value")],
        "<rewrite-list r>\nmail-from abc@example.com foo@buecher.example\n</rewrite-list>\n" + USES_R,
        ["§3.3.18.1"],
    ),
    (
        "rewrite-wildcard-target-from-empty-source",
        "<rewrite-list r>\nmail-from <> *@example.com\n</rewrite-list>\n" + USES_R,
        [(2, "error", "bad-value")],
        "<rewrite-list r>\nmail-from <> bounce@example.com\n</rewrite-list>\n" + USES_R,
        ["§3.3.18.1"],
    ),
    (
        "from-domain-wildcard-target",
        "<rewrite-list r>\nfrom-domain *.example.com *.example.net\n</rewrite-list>\n" + USES_R,
        [(2, "error", "bad-value")],
        "<rewrite-list r>\nfrom-domain *.example.com example.net\n</rewrite-list>\n" + USES_R,
        ["§3.3.18.2"],
    ),
    (
        "http-delivery-url-with-query",
        "<domain api.example>\ntype http-delivery\nhttp-delivery-url https://api.example/in?k=1\n</domain>\n",
        [(3, "error", "bad-value")],
        "<domain api.example>\ntype http-delivery\nhttp-delivery-url https://api.example/in\n</domain>\n",
        ["§3.3.10.98.1"],
    ),
    (
        "queue-filter-reserved-queue",
        "<acct-file /var/log/pmta/a.csv>\nqueue-filter {bounceProcessor}/x\n</acct-file>\n",
        [(2, "error", "bad-value")],
        "<acct-file /var/log/pmta/a.csv>\nqueue-filter a.example.com/x,![*.]b.example.com/*,!*/y\n</acct-file>\n",
        ["reserved", "§3.3.11.5"],
    ),
    (
        "queue-filter-unqualified-domain",
        "<acct-file /var/log/pmta/a.csv>\nqueue-filter localhost\n</acct-file>\n",
        [(2, "error", "bad-value")],
        "<acct-file /var/log/pmta/a.csv>\nqueue-filter mail.example.com/{default}\n</acct-file>\n",
        ["qualified"],
    ),
    (
        "move-to-the-same-directory",
        "<acct-file /var/log/pmta/a.csv>\nmove-to /var/log/pmta/\n</acct-file>\n",
        [(2, "error", "bad-value")],
        "<acct-file /var/log/pmta/a.csv>\nmove-to /var/log/pmta/old\n</acct-file>\n",
        ["different directory", "§3.3.11.1"],
    ),
    (
        "queue-to-without-smtp-hosts",
        '<domain example.com>\nqueue-to "big.queue"\n</domain>\n<domain big.queue>\nmax-smtp-out 5\n</domain>\n',
        [(2, "warning", "required-missing")],
        '<domain example.com>\nqueue-to "big.queue"\n</domain>\n<domain big.queue>\nsmtp-hosts lookup-mx:example.com\n'
        "</domain>\n",
        ["§10.9.1"],
    ),
    (
        "unused-rewrite-list",
        "<rewrite-list r>\nfrom-domain *.example.com example.net\n</rewrite-list>\n",
        [(1, "warning", "unused")],
        "<rewrite-list r>\nfrom-domain *.example.com example.net\n</rewrite-list>\n" + USES_R,
        ["§3.3.18"],
    ),
    (
        "log-file-relative",
        "log-file pmta.log\n",
        [(1, "error", "bad-value")],
        "log-file /var/log/pmta/log\n",
        ["§3.3.1.37.2"],
    ),
]


@pytest.mark.parametrize("bad, expected, good, words", [r[1:] for r in RULES], ids=[r[0] for r in RULES])
def test_guide_rule_triggers_at_its_line_and_its_fix_is_clean(bad, expected, good, words):
    assert found(bad) == expected
    text = " ".join(f.message + " " + f.hint for f in findings(bad))
    for word in words:
        assert word in text
    assert found(good) == []


def test_rules_with_inheritance_stay_quiet_when_the_value_may_come_from_elsewhere():
    # A named source gets its settings on top of the connecting IP's source: allow-starttls may come from there.
    named = (
        "<source 198.51.100.0/28>\nallow-starttls yes\n</source>\n"
        "<source injectors>\nrequire-auth yes\n</source>\nsmtp-listener 0/0:587 source=injectors\n"
    )
    assert found(named) == []
    # A rollup whose <domain> might be in a file that was not read: a warning, not an error.
    text = "<mx-rollup-list>\nmx *.mx.example.net ex.rollup\n</mx-rollup-list>\ninclude /etc/pmta/more.conf\n"
    assert found(text) == [(2, "warning", "rollup-no-hosts")]


def test_dkim_keys_may_come_from_the_message():
    source = "<source 127.0.0.3>\nprocess-x-dkim-key yes\nprocess-x-dkim-options yes\n</source>\n"
    text = source + "<domain *>\ndkim-sign yes\n</domain>\n"
    assert found(text) == []


def test_require_auth_without_any_smtp_user():
    source = "<source 198.51.100.10>\nrequire-auth yes\nallow-starttls yes\n</source>\n"
    certificate = "smtp-server-tls-certificate /etc/pmta/tls.pem\n"
    result = lint_text(HEADER + certificate + source)
    assert [(f.line, f.code) for f in result.errors] == [(4, "required-missing")]
    assert "§10.4.2" in result.errors[0].hint
    user = "<smtp-user u>\npassword p\nsource {auth}\n</smtp-user>\n<source {auth}>\nsmtp-service yes\n</source>\n"
    assert lint_text(HEADER + certificate + source + user).findings == []


def test_starttls_without_a_certificate():
    source = "<source 198.51.100.10>\nallow-starttls yes\n</source>\n"
    result = lint_text(HEADER + source)
    assert [(f.line, f.severity, f.code) for f in result.warnings] == [(3, "warning", "no-effect")]
    assert "§3.3.1.9" in result.warnings[0].hint
    listener = "<smtp-listener 0/0:587>\ntls-certificate /etc/pmta/tls.pem\n</smtp-listener>\n"
    assert lint_text(HEADER + listener + source).findings == []
    assert lint_text(HEADER + "smtp-server-tls-certificate /etc/pmta/tls.pem\n" + source).findings == []


def test_auth_without_tls_is_a_policy_warning():
    (finding,) = findings("<source 198.51.100.10>\nrequire-auth yes\n</source>\n")
    assert (finding.severity, finding.refused_by_pmta) == ("warning", False)


# §10.4.2's per-user sources as the guide writes them (comments included), with the IP-based sources of §3.3.7.
GUIDE_NAMED_SOURCE = """<source {name}>
    allow-mailmerge {mailmerge}
    always-allow-relaying yes # allow feeding for {name}
    process-x-virtual-mta yes # allow selection of a VirtualMTA
    max-message-size unlimited
    smtp-service yes          # allow SMTP service
    require-auth true
</source>
"""
GUIDE_AUTH_USERS = (
    "<smtp-user jsmith>\n    password qwerty123\n    source auth2\n</smtp-user>\n"
    "<smtp-user jdoe>\n    password abc123\n    source auth1\n</smtp-user>\n"
    + GUIDE_NAMED_SOURCE.format(name="auth2", mailmerge="yes")
    + GUIDE_NAMED_SOURCE.format(name="auth1", mailmerge="no")
)
GUIDE_IP_SOURCES = "<source 0/0> # matches all\n    always-allow-relaying no\n    allow-mailmerge no\n%s</source>\n"


def test_a_named_per_user_source_combines_with_the_ip_sources():
    """§10.4.2 + §3.3.7: the user's named source sits on top of the connecting IP's source, so STARTTLS offered
    there counts; nothing at all in the guide's example when <source 0/0> offers STARTTLS."""
    assert found(GUIDE_AUTH_USERS + GUIDE_IP_SOURCES % "    allow-starttls yes\n") == []


def test_a_named_per_user_source_without_any_tls_warns_at_its_require_auth():
    bad = GUIDE_AUTH_USERS + GUIDE_IP_SOURCES % ""
    assert found(bad) == [(15, "warning", "auth-without-tls"), (23, "warning", "auth-without-tls")]
    (first, _second) = findings(bad)
    assert "<source auth2>" in first.message and "combined with the IP-matched sources" in first.message
    assert "only CRAM-MD5" in first.message and "§3.3.7.12" in first.hint


def test_a_named_source_turning_starttls_off_warns_even_if_an_ip_source_offers_it():
    named = "<source auth1>\nrequire-auth true\nallow-starttls no\n</source>\n"
    assert found(named + GUIDE_IP_SOURCES % "    allow-starttls yes\n") == [(2, "warning", "auth-without-tls")]


def test_auth_without_tls_with_plain_auth_in_clear_says_passwords_cross_in_clear():
    text = "<source 198.51.100.10>\nrequire-auth yes\nallow-unencrypted-plain-auth yes\n</source>\n"
    (finding,) = findings(text)
    assert (finding.line - 1, finding.severity, finding.code) == (2, "warning", "auth-without-tls")
    assert "in clear" in finding.message


def test_auth_on_a_named_source_stays_quiet_when_an_unread_file_may_offer_starttls():
    text = "<source auth1>\nrequire-auth true\n</source>\ninclude /etc/pmta/sources.conf\n"
    assert "auth-without-tls" not in {code for _line, _severity, code in found(text)}


def test_the_guide_s_private_relay_network_is_a_warning_not_an_error():
    """§3.3.7: <source 10.0.0.0/8> always-allow-relaying yes relays for an internal network; wider than the
    injector limit (/16) it is a warning naming the range, with the narrowing in the hint."""
    text = "<source 10.0.0.0/8> # matches 10.*\n    always-allow-relaying yes\n    allow-mailmerge no\n</source>\n"
    (finding,) = findings(text)
    assert (finding.line - 1, finding.severity, finding.code) == (2, "warning", "open-relay")
    assert "10.0.0.0/8" in finding.message and "<source 10.0.0.0/16>" in finding.hint
    # The §3.3.7 example's feeding network and host: narrow enough.
    assert found("<source 10.1.0.0/16> # feeding sources\nalways-allow-relaying yes\n</source>\n"
                 "<source 10.0.0.1> # we feed from 10.0.0.1\nalways-allow-relaying yes\n</source>\n") == []


def test_relaying_after_auth_inherited_from_a_wider_source_is_no_open_relay():
    text = ("<source 0/0>\nrequire-auth yes\nallow-starttls yes\n</source>\n"
            "<source 198.51.0.0/16>\nalways-allow-relaying yes\n</source>\n")
    assert found(text) == []


@pytest.mark.parametrize("name", ["{pmta-auth}", "{/var/spool/pmta/pickup}", "{Auth-Users}"])
def test_reserved_source_names_other_than_the_guide_s(name):
    (finding,) = findings("<source %s>\nalways-allow-relaying yes\n</source>\n" % name)
    assert (finding.line - 1, finding.severity, finding.code) == (1, "warning", "reserved-name")
    assert "§3.3.7" in finding.hint and "{auth}" in finding.hint and "{pickup}" in finding.hint


@pytest.mark.parametrize("name", ["{auth}", "{pickup}", "{transmissions-api}"])
def test_reserved_source_names_the_guide_gives_a_meaning(name):
    assert found("<source %s>\nprocess-x-virtual-mta yes\n</source>\n" % name) == []


@pytest.mark.parametrize(
    "lines, line",
    [
        ("<smtp-pattern-list s>\nreply /4.7.0 too many\nconnections from your IP/ mode=backoff\n"
         "</smtp-pattern-list>\n", 2),
        ("<bounce-category-patterns>\n/(user|mailbox) (has|is)\n(disabled|inactive)/ inactive-mailbox\n"
         "</bounce-category-patterns>\n", 2),
        ("<pattern-list p>\nrcpt-to /@(example\\.net|\nexample\\.org|\nexample\\.info)$/ virtual-mta=v1\n"
         "</pattern-list>\n" + VMTA, 2),
        (VMTA + "<pattern-list p>\nheader Subject /weekly\nnews/ virtual-mta=v1\n</pattern-list>\n", 5),
    ],
    ids=["reply", "bounce-category", "rcpt-to-over-three-lines", "header"],
)
def test_a_wrapped_regex_is_one_finding_at_its_first_line(lines, line):
    (finding,) = findings(lines)
    assert (finding.line - 1, finding.severity, finding.code) == (line, "error", "syntax")
    assert "wrapped over lines" in finding.message and "§3.1" in finding.hint


def test_a_regex_left_open_on_one_line_is_one_bad_value():
    text = "<smtp-pattern-list s>\nreply /too many mode=backoff\nreply /x/ mode=backoff\n</smtp-pattern-list>\n"
    assert found(text) == [(2, "error", "bad-value")]


def test_the_smtp_hosts_hint_cites_its_section_once():
    (finding,) = findings("<domain example.net>\nsmtp-hosts 192.0.2.25:2525\n</domain>\n")
    assert finding.hint.count("§3.3.10.89") == 1


# ---------------------------------------------------------------- every syntax form the guide uses

GUIDE_SYNTAX = """\
run-as-root no
log-file /var/log/pmta/log
host-name mx.example.com
domain-key s1,example.com,/etc/pmta/dkim/s1.pem
domain-macro webmail example.org,example.net
smtp-listener 127.0.0.1:25
<virtual-mta bulk-a>
    smtp-source-host 192.0.2.21 a.example.com
</virtual-mta>
<virtual-mta bulk-b>
    smtp-source-host 192.0.2.22 b.example.com
</virtual-mta>
<virtual-mta fallback>
    smtp-source-host 192.0.2.23 f.example.com
</virtual-mta>
<virtual-mta-pool bulk>
    virtual-mta bulk-a
    virtual-mta bulk-b
</virtual-mta-pool>
<pattern-list by-sender>
    mail-from /^alerts@/ virtual-mta=bulk-a
</pattern-list>
<pattern-list routing>
    header x-campaign /^\\s*spring/ virtual-mta=bulk,recipient-priority=70
    rcpt-to /@example\\.net$/ recipient-priority=20
    header x-route /special/ call-to: by-sender
    mail-from /^news@/ <pattern-list>
        rcpt-to /@example\\.org$/ virtual-mta=bulk-b
        header x-tier /gold/ virtual-mta=bulk-a,recipient-priority=95
        * virtual-mta=bulk
    </pattern-list>
    rcpt-to /^postmaster@/ <pattern-list>
        mail-from /^root@/ virtual-mta=fallback
        * virtual-mta=fallback,recipient-priority=10
    </pattern-list>
    * virtual-mta=bulk
</pattern-list>
<smtp-pattern-list replies>
    reply /421 .* try again later/ mode=backoff
    reply /\\x23TS0[12]/ mode=backoff,disable-source-ip,reenable-after=1h
    reply /too many connections/ skip-mx
    reply /account disabled/ bounce-rcpt
    reply /queue full/ mode=backoff,defer-queue
    reply /recovered/ mode=normal
    reply /banned/ disable-source-ip
    reply /policy rejection/ bounce-queue
</smtp-pattern-list>
<mx-rollup-list>
    mx mx1.example.net example-net.rollup
    mx *.mail.example.org example-org.rollup
    mx *.mx.example.com example-com.rollup rollup-by-ip
</mx-rollup-list>
<domain example-org.rollup>
    smtp-hosts mx1.example.org, mx2.example.org; [192.0.2.25]:2525; [IPv6:2001:db8::25]
</domain>
<domain $webmail>
    max-smtp-out 10
</domain>
<domain *>
    smtp-pattern-list replies
    dkim-sign yes
</domain>
<acct-file /var/log/pmta/acct.csv>
    records d,b,rb,f
    move-to /var/log/pmta/archive
    move-interval 1h
</acct-file>
<bounce-processor>
    deliver-unmatched-email no
    <address-list>
        domain bounces.example.com
    </address-list>
</bounce-processor>
<feedback-loop-processor>
    deliver-unmatched-email no
    forward-errors-to ops@example.com
    forward-errors-to noc@example.com
    <address-list>
        address /^fbl@fbl\\.example\\.com$/
    </address-list>
</feedback-loop-processor>
relay-domain fbl.example.com
<source 198.51.100.20>
    require-auth yes
    allow-starttls yes
    pattern-list routing
</source>
<source 127.0.0.1>
    always-allow-relaying yes
    pattern-list routing
</source>
<domain-key-list signing>
    domain-key s2,example.org,/etc/pmta/dkim/s2.pem
</domain-key-list signing>
smtp-server-tls-certificate /etc/pmta/tls.pem
<smtp-user injector>
    password secret
    source {auth}
</smtp-user>
<source {auth}>
    always-allow-relaying yes
</source>
"""


def test_every_syntax_form_the_guide_uses_lints_clean():
    result = lint_text(GUIDE_SYNTAX)
    assert [f.format() for f in result.errors + result.warnings] == []
    routing = result.tree.blocks("pattern-list")[1]
    nested = routing.blocks("pattern-list")
    assert [(block.arg, block.line) for block in nested] == [("", 27), ("", 32)]
    assert routing.directives("mail-from")[0].value == "/^news@/ <pattern-list>"
    assert [d.value for d in nested[0].directives("*")] == ["virtual-mta=bulk"]


def test_a_closing_tag_may_repeat_the_name_but_not_another_one():
    text = "run-as-root no\n<domain-key-list a>\ndomain-key s1,example.com,/etc/pmta/s1.pem\n</domain-key-list b>\n"
    result = lint_text(text)
    assert [(f.line, f.code) for f in result.warnings] == [(4, "syntax")]
    assert lint_text(text.replace("</domain-key-list b>", "</domain-key-list a>")).findings == []


def test_the_syntax_config_really_checks_references_inside_nested_lists():
    broken = GUIDE_SYNTAX.replace("* virtual-mta=bulk\n    </pattern-list>", "* virtual-mta=bulky\n    </pattern-list>")
    result = lint_text(broken)
    assert [(f.line, f.code) for f in result.errors] == [(30, "undefined-reference")]


# ---------------------------------------------------------------- declared directives, unknown severity

SINK = "run-as-root no\ndummy-smtp-blackhole yes\n<domain *>\ndummy-smtp-sink-delay 2s\n</domain>\n"


def test_undeclared_directive_is_an_error_by_default():
    result = lint_text(SINK)
    assert [(f.line, f.severity, f.code) for f in result.errors] == [
        (2, "error", "unknown-directive"),
        (4, "error", "unknown-directive"),
    ]


def test_declared_directives_are_accepted_in_their_scopes_only():
    extra = [{"name": "dummy-smtp-blackhole", "scopes": ["global"]}, {"name": "dummy-smtp-sink-delay"}]
    result = lint_text(SINK, extra_directives=extra)
    # dummy-smtp-sink-delay was declared for the global scope (the default) only.
    assert [(f.line, f.code) for f in result.errors] == [(4, "wrong-scope")]
    assert "declared by the operator" in result.errors[0].hint
    extra[1]["scopes"] = ["global", "domain"]
    assert lint_text(SINK, extra_directives=extra).findings == []


def test_declaring_a_known_directive_adds_a_scope():
    text = "run-as-root no\n<source 0/0>\nmax-smtp-out 5\n</source>\n"
    assert [f.code for f in lint_text(text).errors] == ["wrong-scope"]
    assert lint_text(text, extra_directives=[{"name": "max-smtp-out", "scopes": ["source"]}]).findings == []
    assert schema.lookup("max-smtp-out", "source") is None  # the shared schema is not changed


def test_unknown_directives_as_warnings_name_the_closest_real_one():
    result = lint_text("run-as-root no\n<domain *>\nmax-smtp-outt 5\n</domain>\n", unknown_directives="warning")
    assert result.errors == []
    (finding,) = result.warnings
    assert (finding.line, finding.code) == (3, "unknown-directive")
    assert "max-smtp-out" in finding.hint and "powermta_lint_extra_directives" in finding.hint
    # Other errors stay errors.
    result = lint_text("run-as-root no\n<domain *>\nmax-smtp-out many\n</domain>\n", unknown_directives="warning")
    assert [f.code for f in result.errors] == ["bad-value"]


@pytest.mark.parametrize(
    "extra, words",
    [
        ([{"name": "", "scopes": ["global"]}], "is not a directive name"),
        ([{"name": "x y"}], "is not a directive name"),
        ([{"name": "x", "scopes": ["nowhere"]}], "unknown scope nowhere"),
        ([{"name": "x", "scope": ["global"]}], "unknown key scope"),
        (["x"], "expected a mapping"),
    ],
)
def test_bad_declarations_are_refused_with_the_fix(extra, words):
    with pytest.raises(ValueError, match=words):
        lint_text("run-as-root no\n", extra_directives=extra)


def test_bad_unknown_directive_severity_is_refused():
    with pytest.raises(ValueError, match="error or warning"):
        lint_text("run-as-root no\n", unknown_directives="ignore")


# ---------------------------------------------------------------- the collection's own rendered example

EXAMPLE = pathlib.Path(__file__).resolve().parents[4] / "docs" / "examples" / "powermta" / "rendered"


def test_rendered_example_lints_without_findings():
    """The role's templates rendered into docs/examples (tools/render-example.sh): complete, the warm-up include
    files too, and zero errors and zero warnings as it is (issues 15, 23)."""
    result = lint_path(str(EXAMPLE / "etc/pmta/config"), include_root=str(EXAMPLE))
    assert result.errors + result.warnings == [], result.findings
    assert sorted(result.tree.includes.followed) == sorted(
        "/" + str(path.relative_to(EXAMPLE)) for path in (EXAMPLE / "etc/pmta").rglob("*.conf")
    )


# §3.3.1.20's example: a listener selecting a named source.
GUIDE_LISTENER = (
    "smtp-listener %s:25 source=mta1\nsmtp-listener 0.0.0.0:26\n"
    "<source mta1>\n    default-virtual-mta mta1\n%s</source>\n"
)


@pytest.mark.parametrize(
    "address, severity, where", [("1.2.3.4", "error", "1.2.3.4"), ("0/0", "error", "every interface"),
                                 ("10.1.2.3", "warning", "10.1.2.3")]
)
def test_relaying_on_a_source_a_listener_selects_is_open_to_whoever_connects(address, severity, where):
    """§3.3.1.20: "anybody who can connect to the given IP address will be allowed to relay"."""
    text = VMTA.replace("v1", "mta1") + GUIDE_LISTENER % (address, "    always-allow-relaying yes\n")
    (finding,) = findings(text)
    assert (finding.line - 1, finding.severity, finding.code) == (8, severity, "open-relay")
    assert where in finding.message and "§3.3.1.20" in finding.hint


def test_a_listener_selected_source_is_fine_without_relaying_on_loopback_or_with_auth():
    vmta = VMTA.replace("v1", "mta1")
    assert found(vmta + GUIDE_LISTENER % ("1.2.3.4", "")) == []
    assert found(vmta + GUIDE_LISTENER % ("127.0.0.1", "    always-allow-relaying yes\n")) == []
    auth = "    always-allow-relaying yes\n    require-auth yes\n    allow-starttls yes\n"
    assert found(vmta + GUIDE_LISTENER % ("1.2.3.4", auth)) == []
    # require-auth from the IP sources it combines with (§3.3.7): every IPv4 client must authenticate.
    every_ip = "<source 0/0>\nrequire-auth true\nallow-starttls yes\n</source>\n"
    assert found(vmta + GUIDE_LISTENER % ("1.2.3.4", "    always-allow-relaying yes\n") + every_ip) == []
