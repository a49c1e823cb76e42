"""The directive schema: integrity, and coverage of the v5.0 User's Guide directive index (§14)."""

import re

import pytest
from ansible_collections.mailops.powermta.plugins.module_utils._pmta_config import lint_text, schema, values

# The §14 "Directives index" of the PowerMTA v5.0 User's Guide: NAME SCOPES (the index's own scope
# labels mapped to block tags; "Global", "Logging", "Relaying Control"... are the global level and the
# "SSL/TLS", "Pipe/File/HTTP/Discard Delivery" groups are <domain> directives).
GUIDE_INDEX = """
accept-invalid-recipients source
add-date-header source
add-message-id-header source
add-received-header source
add-x-virtual-mta-header source
address address-list
address-file address-list
alias global
allow-auth source
allow-cancel-during-transfer domain
allow-chunking source
allow-empty-x-virtual-mta source
allow-mailmerge source
allow-priority-interruption domain
allow-priority-interruption-during-transfer domain
allow-smtputf8 source
allow-starttls source
allow-unencrypted-plain-auth source
always-allow-api-submission source
always-allow-relaying global
api-key transmissions-api,signals
assume-delivery-upon-data-termination-timeout domain
auth-password domain
auth-username domain
authentication-method smtp-user
auto-qualify-domain source
await-slot smtp-listener
backoff-max-connect-rate domain
backoff-max-data-volume-rate domain
backoff-max-msg-per-hour domain
backoff-max-msg-rate domain
backoff-max-smtp-out domain
backoff-notify domain
backoff-reroute-to-virtual-mta domain
backoff-retry-after domain
backoff-to-normal-after domain
backoff-to-normal-after-delivery domain
backoff-upon-all-sources-disabled domain
bcc source
bcc-upon-delivery domain
body-pattern-file email-patterns
bounce-after domain
bounce-upon-5xx-greeting domain
bounce-upon-no-mx domain
bounce-upon-pix-transfer-failure domain
bounce-upon-transfer-failure domain
broken-auth-clients source
check-dkim-inbound source
check-iprev-inbound source
check-spf-inbound source
check-spf-inbound-best-guess source
check-spf-inbound-max-void-lookups source
check-spf-outbound domain
cold-virtual-mta virtual-mta
command domain
connect-timeout domain
connection-idle-timeout domain
count-moved-records acct-file
custom-dsn-from-header global
custom-message-id-header signals
data-send-timeout domain
date-header-time source
default-smtp-port domain
default-virtual-mta source
delete-after acct-file
delete-file-holders spool
deliver-email bounce-processor,feedback-loop-processor
deliver-local-dsn domain
deliver-matched-email bounce-processor,feedback-loop-processor
deliver-only spool
deliver-unmatched-email bounce-processor,feedback-loop-processor
delivery-priority domain
disable-acct-records domain
disable-mx-rollup domain
disabled-source-ip-notify domain
discard-as-bounce domain
disconnect-on-transient-error source
dkim-add-body-limit domain
dkim-add-timestamp domain
dkim-algorithm domain
dkim-body-canon domain
dkim-disallow-adding-headers domain
dkim-expire-after domain
dkim-headers domain
dkim-headers-canon domain
dkim-identity domain
dkim-identity-fallback domain
dkim-query-method domain
dkim-sign domain
domain address-list,virtual-mta-pool
domain-key global,virtual-mta,virtual-mta-pool,domain-key-list
domain-macro global
domain-suffix global
dsn-format domain
dsn-return-default source
dummy-smtp-await-slot global
dummy-smtp-has-chunking global
dummy-smtp-has-pipelining global
dummy-smtp-has-verp global
dummy-smtp-ip global
dummy-smtp-latency global
dummy-smtp-port global
dummy-smtp-update-stats global
enable-signals global
engagement-tracking signals
file-destination domain
file-format domain
forward-errors-to bounce-processor,feedback-loop-processor
forward-unmatched-to bounce-processor,feedback-loop-processor
from-domain rewrite-list
header pattern-list
hide-message-source source
host-id global
host-name global,virtual-mta
http-access global
http-api-key global
http-csrf-protection global
http-default-max-items global
http-default-sort-order global
http-delivery-extra-headers domain
http-delivery-url domain
http-log-data global
http-log-requests global
http-log-tls global
http-mgmt-port global
http-mgmt-source global
no-http-mgmt-source global
http-redirect-to-https global
http-strict-transport-security-max-age global
http-tls-allow-sslv3 global
http-tls-allow-tlsv1 global
http-tls-allow-tlsv1.1 global
http-tls-allow-tlsv1.2 global
http-tls-ca-file global
http-tls-ciphers global
ignore-8bitmime domain
ignore-chunking domain
ignore-dsn domain
ignore-pipelining domain
immediate-tls smtp-listener
include global,source,domain,virtual-mta,smtp-pattern-list
include-headers-from global,virtual-mta,virtual-mta-pool
invalid-virtual-mta-fallback global
ip-connection-limit global
iso-times acct-file
jobid-header source
jobid-prefix source
log-auto-rotation global
log-commands source
log-connections source
log-data source,transmissions-api
log-disabled-ips domain
log-file global
log-file-world-readable global
log-match-info email-patterns
log-requests transmissions-api
log-resolution domain
log-rotate global
log-tls source,domain,transmissions-api
log-transfer-failures domain
log-verbose signals
macro-variables-preserve-case domain
mail-from pattern-list,rewrite-list
mailmerge-expands-undefined-variables global
map-header-to-field acct-file
max-cold-virtual-mta-msg domain
max-connect-rate domain
max-data-volume-rate domain
max-errors-per-connection domain
max-events-recorded domain
max-message-hops source
max-message-size source
max-msg-per-connection domain
max-msg-per-hour domain
max-msg-rate domain
max-rcpt-per-message source,domain
max-rcpt-per-transaction domain
max-size acct-file
max-smtp-data-volume-rate virtual-mta,virtual-mta-pool
max-smtp-in source-group
max-smtp-msg-rate virtual-mta,virtual-mta-pool
max-smtp-out domain,virtual-mta,virtual-mta-pool
max-smtp-out-per-source-ip domain
min-free-space spool,signals
move-interval acct-file
move-to acct-file
mx-connection-limit global
name-server global
notify-of-delay-every domain
password smtp-user
pattern-list source
pickup global
pickup-remove-dot global
pickup-retry-interval global
pix-bug-workaround domain
pmc-acct-min-free-space global
postmaster global
precached-domains-file dns
precached-max-domains dns
precached-refresh-interval dns
priority spool
privacy-policy acct-file,signals
process-x-dkim-key source
process-x-dkim-options source
process-x-envid source
process-x-job source
process-x-schedule source
process-x-sp-subaccount-id signals
process-x-virtual-mta source
queue-filter acct-file
queue-priority domain
queue-to domain
rcpt-to pattern-list
record-fields acct-file
records acct-file
reenable-source-ip-after domain
reject-invalid-virtual-mta source
reject-iprev-check-fail source
reject-iprev-check-permerror source
reject-iprev-check-temperror source
reject-spf-check-fail source
reject-spf-check-permerror source
reject-spf-check-temperror source
relay-address global
relay-debug global
relay-domain global
remove-header source
replace-smtp-421-service-response domain
require-auth source
require-starttls domain
require-starttls-before-auth source
reroute-to-virtual-mta domain
reserved-smtp-in source-group
retain-x-dkim-key source
retain-x-dkim-options source
retain-x-job source
retain-x-schedule source
retain-x-sp-subaccount-id signals
retain-x-virtual-mta source
retry-after domain
retry-interval acct-file
retry-recipients-after domain
retry-upon-new-mail domain
reuse-ssl-session domain
rewrite-list virtual-mta,virtual-mta-pool
route domain
run-as-root global
sender-or-from signals-filter
smtp-421-means-mx-unavailable domain
smtp-553-means-invalid-mailbox domain
smtp-await-slot global
smtp-command-timeout source
smtp-data-termination-timeout domain
smtp-data-timeout source
smtp-greeting-timeout domain
smtp-hosts domain
smtp-ip global
smtp-listener global
smtp-max-auth-failure-rate source
smtp-out-rampup-interval domain
smtp-pattern-list domain
smtp-port global
smtp-server-tls-allow-sslv3 global
smtp-server-tls-allow-tlsv1 global
smtp-server-tls-allow-tlsv1.1 global
smtp-server-tls-allow-tlsv1.2 global
smtp-server-tls-ca-file global
smtp-server-tls-certificate global
smtp-server-tls-ciphers global
smtp-service source
smtp-source-host global
smtp-tls-allow-sslv3 domain
smtp-tls-allow-tlsv1 domain
smtp-tls-allow-tlsv1.1 domain
smtp-tls-allow-tlsv1.2 domain
smtp-tls-ca-file domain
smtp-tls-ciphers domain
source smtp-user,smtp-listener
source-group source
source-ip-max-connect-rate domain
source-ip-max-data-volume-rate domain
source-ip-max-msg-rate domain
source-ip-max-smtp-out domain
spool global
spool-delete-corrupted global
spool-max-recipients global
spool-min-free-space global
suppress-local-dsn source
suppression-lists source
sync acct-file
thread-min-priority global
thread-max-priority global
thread-reuse global
tls-allow-sslv3 smtp-listener,transmissions-api-listener
tls-allow-tlsv1 smtp-listener,transmissions-api-listener
tls-allow-tlsv1.1 smtp-listener,transmissions-api-listener
tls-allow-tlsv1.2 smtp-listener,transmissions-api-listener
tls-ca-file smtp-listener,transmissions-api-listener
tls-certificate smtp-user,smtp-listener,transmissions-api-listener
tls-ciphers smtp-listener,transmissions-api-listener
too-many-rcpts-fails-message source
total-max-smtp-in global
total-max-smtp-out global
trace-dkim-check source
trace-iprev-check source
trace-spf-check source
track-recipient-events domain
type domain
upload-url signals
use-dane domain
use-proxy virtual-mta
use-starttls domain
use-unencrypted-plain-auth domain
user-string acct-file
verp-default source
virtual-mta virtual-mta-pool
world-readable acct-file
write-timeout acct-file
"""

# Directives that real, working configs use (reference report §7): none may be called unknown.
SEEN_IN_WORKING_CONFIGS = """
allow-mailmerge add-message-id-header add-date-header date-header-time smtp-greeting-timeout
max-rcpt-per-message log-transfer-failures deliver-local-dsn smtp-553-means-invalid-mailbox
bounce-upon-5xx-greeting smtp-421-means-mx-unavailable ignore-8bitmime queue-to smtp-hosts auth-username
auth-password use-unencrypted-plain-auth require-auth smtp-max-auth-failure-rate allow-starttls
smtp-server-tls-certificate smtp-server-tls-allow-tlsv1.2 relay-domain process-x-job record-fields
remove-received-headers dk-sign sync-msg-create sync-msg-update mx-connection-attempts
""".split()


def index_rows():
    for line in GUIDE_INDEX.strip().splitlines():
        name, scopes = line.split()
        yield name, scopes.split(",")


@pytest.mark.parametrize(("name", "scopes"), list(index_rows()))
def test_every_index_directive_is_known_in_its_scopes(name, scopes):
    for scope in scopes:
        if scope == "virtual-mta-pool" and name == "domain":
            assert "domain" in schema.BLOCKS  # §3.3.13.2 means the nested <domain> block
            continue
        assert schema.lookup(name, scope) is not None, "%s in <%s>" % (name, scope)


def test_index_covers_the_schema_except_documented_extras():
    indexed = {name for name, _row in index_rows()}
    extras = set(schema.DIRECTIVES) - indexed
    # Everything the schema knows beyond §14 comes from another guide section, or is a flagged legacy name.
    for name in extras:
        for spec in schema.DIRECTIVES[name].values():
            documented = re.match(r"^(3|6|10|12)\.", spec.section) or name == "/"
            assert documented or spec.status in ("legacy", "deprecated", "newer"), name


@pytest.mark.parametrize("name", SEEN_IN_WORKING_CONFIGS)
def test_names_from_working_configs_are_never_unknown(name):
    assert name in schema.DIRECTIVES


def test_every_spec_has_a_checker_a_section_and_known_scopes():
    for name, by_scope in schema.DIRECTIVES.items():
        for scope, spec in by_scope.items():
            assert scope in schema.ALL_SCOPES, (name, scope)
            values.checker(spec.type)  # raises KeyError for an unknown type
            assert spec.section and spec.section != "", name
            if spec.status != "current":
                assert spec.note, "%s: deprecated/legacy entries name a replacement or reason" % name


def test_block_parents_are_known_blocks():
    for block in schema.BLOCKS.values():
        assert block.parents <= schema.ALL_SCOPES, block.tag


def test_known_mistakes_are_not_directives():
    for name in schema.KNOWN_MISTAKES:
        assert name not in schema.DIRECTIVES, name
    for tag in schema.KNOWN_BLOCK_MISTAKES:
        assert tag not in schema.BLOCKS, tag


def test_deprecated_directives_name_their_replacement():
    assert schema.lookup("max-msg-per-hour", "domain").note.startswith("max-msg-rate")
    assert schema.lookup("route", "domain").note == "smtp-hosts"
    assert schema.lookup("spool", "global").status == "deprecated"
    assert schema.lookup("smtp-port", "global").note == "smtp-listener"
    assert schema.lookup("http-mgmt-source", "global").note == "http-access"
    assert schema.lookup("max-smtp-out-per-source-ip", "domain").note == "source-ip-max-smtp-out"
    assert schema.lookup("delivery-priority", "domain").note == "queue-priority"
    assert schema.lookup("dk-sign", "domain").status == "legacy"


def test_same_name_different_scopes_have_their_own_types():
    assert schema.lookup("max-smtp-out", "domain").section == "3.3.10.74"
    assert schema.lookup("max-smtp-out", "virtual-mta").section == "3.3.12.8"
    assert schema.lookup("mail-from", "pattern-list").type == "pattern-rule"
    assert schema.lookup("mail-from", "rewrite-list").type == "rewrite-mail-from"
    assert schema.lookup("privacy-policy", "signals").type == "enum:retain|sha1"
    assert schema.lookup("max-msg-rate", "virtual-mta") is None


def test_every_domain_directive_lints_clean_with_a_typical_value():
    # One line per <domain> directive with a value of its type: no false positive anywhere.
    samples = {
        "bool": "yes",
        "int": "5",
        "int:0-100": "50",
        "int-or:unlimited": "unlimited",
        "time": "10m",
        "time-or-never": "never",
        "time-list": "10m,1h",
        "rate": "100/h",
        "rate-list": "50/d,100/d",
        "volume-rate": "1g/h",
        "cidr-rate": "192.0.2.1 10/m",
        "cidr-int": "192.0.2.1 2",
        "cidr-volume-rate": "192.0.2.1 1g/h",
        "email": "a@example.com",
        "email-list": "a@example.com,b@example.com",
        "records": "d,b",
        "names": "a,b",
        "name": "x",
        "string": "x",
        "path": "/etc/pmta/x",
        "port": "25",
        "bool-or-time": "true",
        "words:1-2": "/etc/pmta/c.pem",
        "smtp-hosts": "[192.0.2.25]:25",
        "http-url": "https://api.example.com/in",
    }
    lines = ["run-as-root no", "<smtp-pattern-list x>", "reply /x/ mode=backoff", "</smtp-pattern-list>"]
    lines += ["<virtual-mta x>", "smtp-source-host 192.0.2.1 x.example.com", "cold-virtual-mta y", "</virtual-mta>"]
    lines += ["<virtual-mta y>", "smtp-source-host 192.0.2.2 y.example.com", "</virtual-mta>", "<domain *>"]
    for name, by_scope in sorted(schema.DIRECTIVES.items()):
        spec = by_scope.get("domain")
        if spec is None or spec.status != "current" or name == "include":
            continue
        value = samples.get(spec.type) or spec.type.split(":", 1)[1].split("|")[0]
        lines.append("%s %s" % (name, value))
    lines.append("</domain>")
    result = lint_text("\n".join(lines) + "\n")
    assert result.errors == []
    assert {f.code for f in result.warnings} <= {"no-effect"}
    assert sorted(f.message.split()[0] for f in result.warnings) == sorted(ALL_AT_ONCE_NO_EFFECT["domain"])


SAMPLES = {
    "bool": "yes",
    "int": "5",
    "int:0-100": "50",
    "int:1-100": "10",
    "int-or:unlimited": "unlimited",
    "int-or:auto": "auto",
    "time": "10m",
    "time-or-never": "never",
    "time-list": "10m,1h",
    "rate": "100/h",
    "rate-list": "50/d,100/d",
    "volume-rate": "1g/h",
    "size": "1G",
    "size-or-unlimited": "20M",
    "cidr": "192.0.2.53",
    "cidr-rate": "192.0.2.1 10/m",
    "cidr-int": "192.0.2.1 2",
    "cidr-volume-rate": "192.0.2.1 1g/h",
    "source-host": "192.0.2.77 fam.example.com",
    "listener": "127.0.0.1:2525",
    "http-access": "127.0.0.1 admin",
    "domain-key": "s1,example.com,/etc/pmta/dkim/s1.pem",
    "domain-macro": "isp a.example,b.example",
    "email": "a@example.com",
    "email-list": "a@example.com,b@example.com",
    "email-or-regex": "/^bounce-/",
    "hostname": "mta.example.com",
    "name": "x",
    "names": "x",
    "api-key": "abcd_0123_abcd_0123_abcd_0123_ab",
    "records": "d,b",
    "record-fields": "d *,header_Message-Id",
    "reply": "/too many/ mode=backoff",
    "regex-result": "/a/ virtual-mta=x",
    "header-pattern": "x-h /a/ virtual-mta=x",
    "bool-or-time": "true",
    "mx-limit": "*.example.net 5",
    "mx-rollup": "*.example.net example.rollup rollup-by-ip",
    "port": "2525",
    "privacy-policy": "retain",
    "string": "x",
    "path": "/etc/pmta/x.conf",
    "words:1-2": "/etc/pmta/tls/x.pem",
    "words:2": "a@example.com b@example.com",
    "words:3": "d header_x-id rcpt",
    "smtp-hosts": "[192.0.2.25]:25",
    "pattern-rule": "/a/ virtual-mta=x,recipient-priority=60",
    "header-rule": "x-h /a/ virtual-mta=x",
    "pattern-result": "virtual-mta=x",
    "map-header": "d header_x-id rcpt",
    "hex40": "0123456789abcdef0123456789abcdef01234567",
    "abs-path": "/var/log/pmta/log",
    "host-port": "192.0.2.9:5000",
    "proxy-client": "192.0.2.10 out.example.com",
    "rewrite-mail-from": "foo@* *@bar.example",
    "from-domain": "*.example.com example.net",
    "http-url": "https://api.example.com/in",
    "queue-filter": "a.example.com/x,![*.]b.example.com/*,!*/y",
}
BLOCK_ARGS = {
    "name": "fam",
    "any": "/var/spool/x",
    "listener": "127.0.0.1:2526",
    "source": "fam",
    "domain": "example.com",
}
NAME_SAMPLES = {"always-allow-relaying": "no", "run-as-root": "no", "queue-to": "example.com"}
# Named objects every reference in the generated configs points to.
DEFINITIONS = (
    "<virtual-mta x>\nsmtp-source-host 192.0.2.1 x.example.com\ncold-virtual-mta y\n</virtual-mta>\n"
    "<virtual-mta y>\nsmtp-source-host 192.0.2.2 y.example.com\n</virtual-mta>\n"
    "<smtp-pattern-list x>\nreply /a/ mode=backoff\n</smtp-pattern-list>\n"
    "<pattern-list x>\nrcpt-to /a/ virtual-mta=x\n</pattern-list>\n"
    "<rewrite-list x>\nfrom-domain a.example b.example\n</rewrite-list>\n"
    "<proxy x>\nserver 192.0.2.9:5000\nclient 192.0.2.10 out.example.com\n</proxy>\n"
    "<source-group x>\nmax-smtp-in 5\n</source-group>\n"
    "<address-list x>\naddress a@example.com\n</address-list>\n"
    "<source x>\nsmtp-service yes\nrewrite-list x\n</source>\n"
    "<smtp-user x>\npassword p\nsource x\n</smtp-user>\n"
    "domain-macro isp2 a.example\n"
    "<source 127.0.0.1>\nprocess-x-virtual-mta yes\n</source>\n"
)


def block_path(tag):
    """Opening and closing lines that put a line into block ``tag`` (nested where it must be)."""
    if tag == "global":
        return [], []
    spec = schema.BLOCKS[tag]
    if "global" in spec.parents:
        outer_open, outer_close = [], []
    else:
        outer_open, outer_close = block_path(sorted(spec.parents)[0])
    arg = BLOCK_ARGS.get(spec.argument, "")
    opening = "<%s%s>" % (tag, " " + arg if arg else "")
    return outer_open + [opening], ["</%s>" % tag] + outer_close


@pytest.mark.parametrize("scope", sorted(schema.ALL_SCOPES))
def test_every_current_directive_of_every_family_lints_clean(scope):
    """One line per current directive of the family, with a typical value: no error, no warning."""
    names = sorted(name for name, by_scope in schema.DIRECTIVES.items() if scope in by_scope)
    names = [n for n in names if schema.lookup(n, scope).status == "current" and n != "include"]
    if not names:
        pytest.skip("no directive of its own")
    opening, closing = block_path(scope)
    lines = list(opening)
    for name in names:
        spec = schema.lookup(name, scope)
        sample = NAME_SAMPLES.get(name) or SAMPLES.get(spec.type) or spec.type.split(":", 1)[1].split("|")[0]
        lines.append("%s %s" % (name, sample) if name != "/" else "/spam/ spam-related")
    lines += closing
    if scope != "global":
        lines.append("run-as-root no")
    result = lint_text(DEFINITIONS + "\n".join(lines) + "\n")
    expected = ["legacy"] if scope == "suppression-list" else []  # a block only one guide example shows
    if scope == "rewrite-list":
        expected = ["unused"]  # no <source> names <rewrite-list fam> here (§3.3.18)
    assert [f.format() for f in result.errors] == []
    no_effect = sorted(
        lines[f.line - 1 - DEFINITIONS.count("\n")].split()[0] for f in result.warnings if f.code == "no-effect"
    )
    assert [f.code for f in result.warnings if f.code != "no-effect"] == expected
    # Every directive of a family on one block: only the combinations the guide calls ineffective warn.
    assert no_effect == sorted(ALL_AT_ONCE_NO_EFFECT.get(scope, ()))


# Directives that do nothing next to others of the same family (all are put in one block above).
ALL_AT_ONCE_NO_EFFECT = {
    "acct-file": ("delete-after", "retry-interval", "write-timeout"),  # move-to set, not piped (§3.3.11)
    "domain": ("bounce-upon-no-mx", "command", "dkim-sign"),  # smtp-hosts set, type smtp, no domain-key
    "source": ("allow-starttls",),  # no certificate in the config (§3.3.1.9)
    # A processor without <address-list> looks at no mail (§12.6).
    "bounce-processor": ("<bounce-processor>",),
    "feedback-loop-processor": ("<feedback-loop-processor>",),
    "email-patterns": ("<bounce-processor>",),
}
