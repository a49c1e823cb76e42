"""The PowerMTA config linter: every check, positive and negative, the fixtures, the public API."""

import pathlib
import re

import pytest
from ansible_collections.mailops.powermta.plugins.module_utils._pmta_config import (
    POLICY_CODES,
    Finding,
    LintResult,
    lint_path,
    lint_text,
)
from ansible_collections.mailops.powermta.plugins.module_utils._pmta_config.exposure import (
    INJECTOR_PREFIX_LIMIT,
    relay_exposure,
)
from ansible_collections.mailops.powermta.plugins.module_utils._pmta_config.values import network_of

FIXTURES = pathlib.Path(__file__).resolve().parents[3] / "fixtures" / "pmta_configs"
EXPECT = re.compile(r"#\s*expect:\s*(.+)$")
HEADER = "run-as-root no\n"  # keeps the run-as-root warning out of focused tests
# Lets injectors pick any vMTA, so the vMTAs of focused tests are not "unreachable".
TRAILER = "<source 127.0.0.1>\nprocess-x-virtual-mta yes\n</source>\n"


def found(text, **kwargs):
    result = lint_text(HEADER + text + TRAILER, **kwargs)
    return [(f.line - 1, f.severity, f.code) for f in result.errors + result.warnings]


def only(text, **kwargs):
    result = lint_text(HEADER + text + TRAILER, **kwargs)
    findings = result.errors + result.warnings
    assert len(findings) == 1, findings
    return findings[0]


# ---------------------------------------------------------------- public API


def test_result_api_and_pmta_wording():
    result = lint_text("run-as-root no\n<domain *>\nmax-smtp-out\nthrottle 5\n</domain>\n")
    assert isinstance(result, LintResult) and not result.ok
    argument_missing, unknown = result.errors
    assert isinstance(argument_missing, Finding)
    assert argument_missing.format_pmta() == "Error in line 3 of /etc/pmta/config: argument missing"
    assert unknown.format_pmta() == "Parse error in line 4 of /etc/pmta/config: unknown directive throttle"
    assert result.to_dict()["errors"][0] == {
        "file": "/etc/pmta/config",
        "line": 3,
        "message": "argument missing",
        "hint": "max-smtp-out needs a value (§3.3.10.74)",
        "code": "bad-value",
    }
    assert result.to_dict()["ok"] is False and result.to_dict()["warnings"] == []
    assert "3: error: argument missing [bad-value] (hint:" in argument_missing.format()
    assert result.format_pmta().count("\n") == 1


def test_warning_wording_and_ok_with_warnings_only():
    result = lint_text("run-as-root no\n<domain *>\nroute [192.0.2.1]:25\n</domain>\n", path="/tmp/x.conf")
    assert result.ok and result.errors == []
    assert result.warnings[0].format_pmta().startswith("Warning in line 3 of /tmp/x.conf: route is deprecated")


def test_policy_errors_are_marked_as_not_refused_by_pmta():
    result = lint_text("run-as-root no\nhttp-access 0/0 admin\nthrottle 1\n")
    by_code = {f.code: f for f in result.errors}
    assert by_code["http-access-open"].refused_by_pmta is False
    assert by_code["unknown-directive"].refused_by_pmta is True
    assert {"open-relay", "http-access-open", "auth-without-tls"} == set(POLICY_CODES)


def test_findings_are_sorted_by_file_and_line():
    result = lint_text("run-as-root no\nthrottle 1\n<domain *>\nqueue-to\nmax-smtp-out x\n</domain>\nbad-thing 2\n")
    assert [f.line for f in result.errors] == sorted(f.line for f in result.errors)


# ---------------------------------------------------------------- unknown directives


def test_unknown_directive_with_did_you_mean():
    finding = only("<domain *>\nmax-smtp-outt 5\n</domain>\n")
    assert (finding.code, finding.severity, finding.line) == ("unknown-directive", "error", 3)
    assert finding.hint == "did you mean max-smtp-out?"


def test_known_invented_names_get_the_real_replacement():
    assert "max-msg-rate" in only("<domain *>\nthrottle 5/h\n</domain>\n").hint
    assert "add-received-header false" in only("<source 0/0>\nhide-received-header yes\n</source>\n").hint
    assert "smtp-source-host IP HOSTNAME" in only("smtp-source-ip 192.0.2.1\n").hint


def test_block_name_used_as_directive():
    assert only("dns\n").hint.startswith("dns is a block")
    finding = only("virtual-mta mta1\n")
    assert finding.code == "wrong-scope" and "write <virtual-mta mta1> … </virtual-mta>" in finding.hint


def test_valid_directive_is_not_unknown():
    assert found("<domain *>\nmax-smtp-out 5\nsmtp-421-means-mx-unavailable yes\n</domain>\n") == []


# ---------------------------------------------------------------- wrong scope


def test_wrong_scope_names_the_right_blocks():
    finding = only("<virtual-mta a>\nmax-msg-rate 5/h\n</virtual-mta>\n")
    assert finding.code == "wrong-scope" and finding.message == "max-msg-rate is not allowed in <virtual-mta>"
    assert finding.hint == "max-msg-rate belongs in <domain> (§3.3.10.33)"


def test_wrong_scope_for_blocks_and_include():
    assert only("<domain *>\n<source 0/0>\n</source>\n</domain>\n").code == "wrong-scope"
    assert "include works only" in only("<acct-file /x.csv>\ninclude /etc/pmta/x\n</acct-file>\n").hint


def test_same_name_allowed_in_several_scopes():
    text = (
        "<virtual-mta a>\nmax-smtp-out 100\n<domain *>\nmax-smtp-out 5\n</domain>\n</virtual-mta>\n"
        "<virtual-mta-pool p>\nvirtual-mta a\nmax-smtp-out 50\n</virtual-mta-pool>\n"
    )
    assert found(text) == []


# ---------------------------------------------------------------- values


def test_bad_value_with_section_in_hint():
    finding = only("<domain *>\nmax-msg-rate 500/week\n</domain>\n")
    assert finding.code == "bad-value" and finding.message == "max-msg-rate: invalid rate '500/week'"
    assert finding.hint.endswith("(§3.3.10.33)")


def test_empty_quoted_value_clears_and_is_valid():
    assert found('<domain *>\nbackoff-notify ""\nsmtp-hosts ""\n</domain>\n') == []


def test_argument_missing():
    finding = only("postmaster\n")
    assert finding.message == "argument missing" and finding.line == 2


def test_block_argument_checks():
    assert only("<virtual-mta>\n</virtual-mta>\n").message == "argument missing"
    addresses = "<address-list>\ndomain bounces.example.com\n</address-list>\n"
    assert only("<bounce-processor x>\n" + addresses + "</bounce-processor>\n").code == "bad-value"
    assert only("<smtp-listener 0/0>\n</smtp-listener>\n").code == "bad-value"
    assert only("<virtual-mta a b>\n</virtual-mta>\n").code == "bad-value"
    assert found("<address-list>\naddress a@example.com\n</address-list>\n") == []


def test_several_domains_in_one_tag_is_undocumented():
    finding = only("<domain a.example b.example>\nmax-smtp-out 1\n</domain>\n")
    assert (finding.severity, finding.code) == ("warning", "undocumented")
    assert "domain-macro" in finding.hint


# ---------------------------------------------------------------- duplicates and structure


def test_duplicate_non_repeatable_directive():
    finding = only("<domain *>\nmax-smtp-out 5\nmax-smtp-out 6\n</domain>\n")
    assert (finding.line, finding.severity, finding.code) == (4, "warning", "duplicate")
    assert "first at config line 3" in finding.message


def test_repeatable_directives_and_separate_blocks_are_not_duplicates():
    text = (
        "postmaster a@example.com\npostmaster b@example.com\n"
        "<domain a.example>\nmax-smtp-out 5\n</domain>\n<domain b.example>\nmax-smtp-out 5\n</domain>\n"
        "<virtual-mta v>\nsmtp-source-host 192.0.2.1 v.example.com\nsmtp-source-host 192.0.2.2 v.example.com\n"
        "</virtual-mta>\n"
    )
    assert found(text) == []


def test_unbalanced_and_unknown_blocks():
    assert [(f.line, f.code) for f in lint_text(HEADER + "<domain *>\n").errors] == [(2, "unbalanced-block")]
    finding = only("<vmta a>\n</vmta>\n")
    assert finding.code == "unknown-block" and "<virtual-mta NAME>" in finding.hint
    assert only("<virtual-mta-pol p>\n</virtual-mta-pol>\n").hint == "did you mean <virtual-mta-pool>?"


def test_contents_of_unknown_block_are_not_reported_again():
    assert found("<vmta a>\nsmtp-source-host 192.0.2.1 a.example.com\n</vmta>\n") == [(1, "error", "unknown-block")]


# ---------------------------------------------------------------- cross-references

VMTAS = (
    "<virtual-mta a>\nsmtp-source-host 192.0.2.1 a.example.com\n</virtual-mta>\n"
    "<virtual-mta b>\nsmtp-source-host 192.0.2.2 b.example.com\n</virtual-mta>\n"
)


@pytest.mark.parametrize(
    "reference",
    [
        "<virtual-mta-pool p>\nvirtual-mta {name}\n</virtual-mta-pool>\n",
        "<source 127.0.0.1>\ndefault-virtual-mta {name}\n</source>\n",
        "<virtual-mta c>\ncold-virtual-mta {name}\n</virtual-mta>\n",
        "<domain *>\nbackoff-reroute-to-virtual-mta {name}\n</domain>\n",
        "<domain *>\nreroute-to-virtual-mta {name}\n</domain>\n",
        "invalid-virtual-mta-fallback {name}\n",
        "<pattern-list pl>\nmail-from /x/ virtual-mta={name}\n</pattern-list>\n",
    ],
)
def test_vmta_references(reference):
    assert [c for c in found(VMTAS + reference.format(name="a")) if c[2] == "undefined-reference"] == []
    missing = [c for c in found(VMTAS + reference.format(name="zz")) if c[2] == "undefined-reference"]
    assert len(missing) == 1 and missing[0][1] == "error"


def test_default_virtual_mta_may_name_a_pool_or_by_smtp_source_ip():
    pool = "<virtual-mta-pool p>\nvirtual-mta a\n</virtual-mta-pool>\n"
    assert found(VMTAS + pool + "<source 127.0.0.1>\ndefault-virtual-mta p\n</source>\n") == []
    assert found(VMTAS + "<source 127.0.0.1>\ndefault-virtual-mta by-smtp-source-ip\n</source>\n") == []


def test_pool_member_must_be_a_vmta_not_a_pool():
    finding = lint_text(
        HEADER + VMTAS + "<virtual-mta-pool p>\nvirtual-mta a\n</virtual-mta-pool>\n"
        "<virtual-mta-pool q>\nvirtual-mta p\n</virtual-mta-pool>\n"
    ).errors[0]
    assert "p is a pool" in finding.hint


REFERENCES = [
    # (definition of "x", a use of {} that names it)
    (
        "<smtp-pattern-list x>\nreply /a/ mode=backoff\n</smtp-pattern-list>\n",
        "<domain *>\nsmtp-pattern-list {}\n</domain>\n",
    ),
    ("<pattern-list x>\nrcpt-to /a/ virtual-mta=a\n</pattern-list>\n", "<source 0/0>\npattern-list {}\n</source>\n"),
    (
        "<rewrite-list x>\nfrom-domain *.a.example b.example\n</rewrite-list>\n",
        "<source 0/0>\nrewrite-list {}\n</source>\n",
    ),
    ("<proxy x>\nserver 192.0.2.9:5000\nclient 192.0.2.10 c.example.com\n</proxy>\n", "use-proxy {}\n"),
    ("<source-group x>\nmax-smtp-in 10\n</source-group>\n", "<source 0/0>\nsource-group {}\n</source>\n"),
    ("<address-list x>\naddress a@example.com\n</address-list>\n", "<source 0/0>\nsuppression-lists {}\n</source>\n"),
    ("<source x>\nsmtp-service yes\n</source>\n", "smtp-listener 192.0.2.1:25 source={}\n"),
    ("<source x>\nsmtp-service yes\n</source>\n", "<smtp-user u>\npassword p\nsource {}\n</smtp-user>\n"),
    ("domain-macro x a.example,b.example\n", "<domain ${}>\nmax-smtp-out 1\n</domain>\n"),
    (
        "<pattern-list x>\nrcpt-to /a/ virtual-mta=a\n</pattern-list>\n",
        "<pattern-list y>\nheader h /v/ call-to: {}\n</pattern-list>\n",
    ),
]


@pytest.mark.parametrize(("definition", "use"), REFERENCES)
def test_named_references(definition, use):
    assert [c for c in found(VMTAS + definition + use.format("x")) if c[1] == "error"] == []
    missing = [c for c in found(VMTAS + definition + use.format("nope")) if c[2] == "undefined-reference"]
    assert len(missing) == 1 and missing[0][1] == "error"


def test_undefined_names_only_warn_when_includes_were_not_read():
    text = "include /etc/pmta/conf.d/*.conf\n<virtual-mta-pool p>\nvirtual-mta elsewhere\n</virtual-mta-pool>\n"
    assert found(text) == [(3, "warning", "undefined-reference")]
    assert found("<virtual-mta-pool p>\nvirtual-mta elsewhere\n</virtual-mta-pool>\n", fragment=True) == [
        (2, "warning", "undefined-reference")
    ]


def test_nested_domain_macros_and_loops():
    assert found("domain-macro a x.example,$b\ndomain-macro b y.example\n") == []
    assert found("domain-macro a x.example,$c\n") == [(1, "error", "undefined-reference")]
    loop = found("domain-macro a x.example,$b\ndomain-macro b $a\n")
    assert loop == [(1, "error", "macro-loop")]
    assert lint_text("run-as-root no\ndomain-macro a $a\n").errors[0].message == "domain macro loop: $a -> $a"


def test_pattern_list_must_precede_its_source():
    use = "<source 0/0>\npattern-list x\n</source>\n"
    define = "<pattern-list x>\nrcpt-to /a/ virtual-mta=a\n</pattern-list>\n"
    assert found(VMTAS + define + use) == []
    finding = only(VMTAS + use + define)
    assert (finding.severity, finding.code) == ("error", "order") and "§3.3.7.39" in finding.hint


def test_vmta_in_two_pools_with_domain_blocks():
    pools = (
        "<virtual-mta-pool p>\nvirtual-mta a\n<domain *>\nmax-smtp-out 1\n</domain>\n</virtual-mta-pool>\n"
        "<virtual-mta-pool q>\nvirtual-mta a\n{q_domain}</virtual-mta-pool>\n"
    )
    finding = only(VMTAS + pools.format(q_domain="<domain *>\nmax-smtp-out 2\n</domain>\n"))
    assert (finding.code, finding.line) == ("pool-overlap", 15)
    assert found(VMTAS + pools.format(q_domain="")) == []


def test_duplicate_source_ip_across_vmtas_except_backoff_twins():
    twin = "<virtual-mta a2>\nsmtp-source-host 192.0.2.1 a.example.com\n</virtual-mta>\n"
    finding = only(VMTAS + twin)
    assert (finding.code, finding.severity) == ("duplicate-source-ip", "warning")
    assert "<virtual-mta a>" in finding.message
    reroute = (
        "<virtual-mta c>\nsmtp-source-host 192.0.2.3 c.example.com\n"
        "<domain *>\nbackoff-reroute-to-virtual-mta c2\n</domain>\n</virtual-mta>\n"
        "<virtual-mta c2>\nsmtp-source-host 192.0.2.3 c.example.com\n</virtual-mta>\n"
    )
    assert found(VMTAS + reroute) == []


def test_cold_vmta_checks():
    cold = (
        "<virtual-mta w>\nsmtp-source-host 192.0.2.5 w.example.com\n{cold}"
        "<domain *>\nmax-cold-virtual-mta-msg 50/d,100/d\n</domain>\n</virtual-mta>\n"
    )
    assert found(VMTAS + cold.format(cold="cold-virtual-mta a\n")) == []
    finding = only(VMTAS + cold.format(cold=""))
    assert finding.code == "cold-vmta-missing" and "add cold-virtual-mta NAME to <virtual-mta w>" in finding.hint
    assert only(VMTAS + cold.format(cold="cold-virtual-mta w\n")).message == "a vMTA cannot be its own cold vMTA"
    glob = "<domain *>\nmax-cold-virtual-mta-msg 5/d\n</domain>\n"
    assert found(VMTAS + glob) == [(8, "warning", "cold-vmta-missing")]
    assert found(VMTAS + glob, fragment=True) == []


def unreachable(text, **kwargs):
    result = lint_text(HEADER + VMTAS + text, **kwargs)
    return sorted(f.message.split()[0:2][1].rstrip(">") for f in result.warnings if f.code == "unreachable-vmta")


def test_unreachable_vmtas():
    assert unreachable("") == ["a", "b"]
    pool = "<virtual-mta-pool p>\nvirtual-mta a\n</virtual-mta-pool>\n"
    assert unreachable(pool) == ["a", "b"]  # a pool nothing names does not help
    assert unreachable(pool + "<source 127.0.0.1>\ndefault-virtual-mta p\n</source>\n") == ["b"]
    assert unreachable("<source 0/0>\ndefault-virtual-mta b\n</source>\n") == ["a"]
    assert unreachable("<pattern-list r>\nrcpt-to /x/ virtual-mta=a\n</pattern-list>\n") == ["b"]
    assert unreachable(
        "<virtual-mta c>\ncold-virtual-mta a\nsmtp-source-host 192.0.2.3 c.example.com\n</virtual-mta>\n"
        "<source 0/0>\ndefault-virtual-mta c\n</source>\n"
    ) == ["b"]
    assert unreachable("<source 0/0>\nprocess-x-virtual-mta yes\n</source>\n") == []
    assert unreachable("<source 0/0>\ndefault-virtual-mta by-smtp-source-ip\n</source>\n") == []
    assert unreachable("", fragment=True) == []
    assert unreachable("include /etc/pmta/conf.d/*.conf\n") == []


def test_domain_key_argument_order():
    assert found("domain-key s1,example.com,/etc/pmta/k.pem\n") == []
    finding = only("domain-key s1,example.com,*,/etc/pmta/k.pem\n")
    assert finding.code == "bad-value" and "found 4" in finding.message


def test_reversed_smtp_source_host_hint_gives_the_fix():
    finding = only("<virtual-mta a>\nsmtp-source-host a.example.com 192.0.2.1\n</virtual-mta>\n")
    assert finding.hint.startswith("write smtp-source-host 192.0.2.1 a.example.com")


# ---------------------------------------------------------------- security


@pytest.mark.parametrize("source", ["0/0", "0.0.0.0/0", "198.51.0.0/16", "::/0", "2001:db8::/32"])
def test_open_relay_on_any_host_or_a_wide_public_range(source):
    finding = only("<source %s>\nalways-allow-relaying yes\n</source>\n" % source)
    assert (finding.code, finding.severity, finding.line) == ("open-relay", "error", 3)
    assert "narrow it to the injectors" in finding.hint


@pytest.mark.parametrize(
    "source, shown, limit",
    [("10/8", "10.0.0.0/8", "/16"), ("172.16.0.0/12", "172.16.0.0/12", "/16"), ("fd00::/8", "fd00::/8", "/48")],
)
def test_relaying_for_a_private_range_wider_than_the_injector_limit_warns(source, shown, limit):
    finding = only("<source %s>\nalways-allow-relaying yes\n</source>\n" % source)
    assert (finding.code, finding.severity, finding.line) == ("open-relay", "warning", 3)
    assert shown in finding.message and limit in finding.message
    assert "%s or narrower" % limit in finding.hint


def test_the_injector_limit_is_a_shared_constant():
    assert INJECTOR_PREFIX_LIMIT == {4: 16, 6: 48}
    assert relay_exposure(network_of("10.0.0.0/8")) == "private"
    assert relay_exposure(network_of("10.0.0.0/8"), {4: 8, 6: 48}) is None
    assert relay_exposure(network_of("::/0")) == "any"


@pytest.mark.parametrize(
    "source",
    ["127.0.0.1", "127.0.0.0/8", "::1", "198.51.100.0/24", "192.0.2.10", "{auth}", "injectors", "10.1.0.0/16",
     "192.168.0.0/16", "fd00:1:2::/48"],
)
def test_relaying_from_loopback_narrow_ranges_or_auth_is_fine(source):
    assert found("<source %s>\nalways-allow-relaying yes\n</source>\n" % source) == []


def test_relaying_wide_range_with_require_auth_or_relaying_no_is_fine():
    assert (
        found(
            "smtp-server-tls-certificate /etc/pmta/tls.pem\n<smtp-user u>\npassword p\nsource x\n</smtp-user>\n"
            "<source x>\nsmtp-service yes\n</source>\n"
            "<source 0/0>\nalways-allow-relaying yes\nrequire-auth true\nallow-starttls yes\n</source>\n"
        )
        == []
    )
    assert found("<source 0/0>\nalways-allow-relaying no\n</source>\n") == []


def test_global_always_allow_relaying_yes_is_an_open_relay():
    assert only("always-allow-relaying yes\n").code == "open-relay"
    assert found("always-allow-relaying no\n") == []


def test_relay_domain_wildcard_is_an_open_relay():
    assert only("relay-domain *\n").code == "open-relay"
    assert found("relay-domain bounces.example.com\nrelay-domain [*.]example.org\n") == []


def test_http_access_levels():
    assert only("http-access 0/0 admin\n").code == "http-access-open"
    assert only("http-access 0/0 operator\n").severity == "warning"
    assert found("http-access 0/0 monitor\nhttp-access 127.0.0.1 admin\nhttp-access 198.51.100.7 admin\n") == []


def test_run_as_root():
    result = lint_text("postmaster a@example.com\n")
    assert [(f.line, f.code) for f in result.warnings] == [(1, "run-as-root")]
    result = lint_text("run-as-root yes\n")
    assert [(f.line, f.code) for f in result.warnings] == [(1, "run-as-root")]
    assert lint_text("run-as-root false\n").warnings == []
    assert lint_text("postmaster a@example.com\n", fragment=True).warnings == []
    # It may be set in an included file that was not read: no guess.
    assert lint_text("include /etc/pmta/conf.d/startup.conf\n").warnings == []


def test_http_mgmt_port_without_http_access():
    assert only("http-mgmt-port 8080\n").code == "http-mgmt-open"
    assert found("http-mgmt-port 0\n") == []
    assert found("http-mgmt-port 8080\nhttp-access 127.0.0.1 admin\n") == []
    assert found("http-mgmt-port 8080\ninclude /etc/pmta/conf.d/http.conf\n") == []


# ---------------------------------------------------------------- deprecated and legacy


@pytest.mark.parametrize(
    ("line", "replacement"),
    [
        ("<domain *>\nmax-msg-per-hour 100\n</domain>\n", "max-msg-rate"),
        ("<domain *>\nroute [192.0.2.1]:25\n</domain>\n", "smtp-hosts"),
        ("spool /var/spool/pmta\n", "<spool DIR> block"),
        ("smtp-port 25\n", "smtp-listener"),
        ("<domain *>\nmax-smtp-out-per-source-ip 2\n</domain>\n", "source-ip-max-smtp-out"),
        ("http-mgmt-source 127.0.0.1\n", "http-access"),
    ],
)
def test_deprecated_directives_warn_with_replacement(line, replacement):
    finding = only(line)
    assert (finding.severity, finding.code) == ("warning", "deprecated")
    assert replacement in finding.hint


def test_legacy_names_warn_not_error():
    for text in ("<domain *>\ndk-sign yes\n</domain>\n", "sync-msg-create false\n"):
        finding = only(text)
        assert (finding.severity, finding.code) == ("warning", "legacy")


def test_directives_of_the_later_guide_warn_as_newer():
    finding = only("<domain *>\nuse-mta-sts yes\n</domain>\n")
    assert (finding.severity, finding.code) == ("warning", "newer") and "check your version" in finding.hint
    assert found("<vault>\ncache-ttl 1h\n</vault>\n") == [(1, "warning", "newer"), (2, "warning", "newer")]
    assert found("<domain *>\nretry-after-dns-error soon\n</domain>\n") == [
        (2, "error", "bad-value"),
        (2, "warning", "newer"),
    ]


def test_fragment_linted_inside_a_block_scope():
    fragment = "max-smtp-msg-rate 100/h\n<domain $gmail>\nmax-msg-rate 50/h\n</domain>\n"
    result = lint_text(fragment, scope="virtual-mta")
    assert result.errors == []
    assert [(f.line, f.code, f.severity) for f in result.warnings] == [(2, "undefined-reference", "warning")]
    assert result.tree.tag == "virtual-mta"
    # The same text at the global level: max-smtp-msg-rate is out of place.
    assert [f.code for f in lint_text(fragment, fragment=True).errors] == ["wrong-scope"]
    # No whole-config or global-level relay checks inside a block.
    assert lint_text("always-allow-relaying yes\n", scope="source").errors == []
    with pytest.raises(ValueError):
        lint_text("", scope="vmta")


# ---------------------------------------------------------------- fixtures


def expected_findings(path):
    expected = set()
    for number, line in enumerate(path.read_text().splitlines(), 1):
        match = EXPECT.search(line)
        if match:
            for item in match.group(1).split(","):
                severity, code = item.strip().split(":")
                expected.add((number, severity, code))
    return expected


MISTAKES = sorted((FIXTURES / "mistakes").glob("*.config"))


def test_there_are_mistake_fixtures():
    assert len(MISTAKES) >= 10


@pytest.mark.parametrize("path", MISTAKES, ids=[p.stem for p in MISTAKES])
def test_each_mistake_reported_at_its_line_and_nothing_else(path):
    expected = expected_findings(path)
    assert expected, "a mistake fixture must annotate its mistakes"
    result = lint_path(str(path))
    got = {(f.line, f.severity, f.code) for f in result.errors + result.warnings}
    assert got == expected
    for finding in result.errors + result.warnings:
        assert finding.hint, finding


def test_valid_fleet_config_has_no_findings():
    root = FIXTURES / "valid" / "fleet"
    result = lint_path(str(root / "etc/pmta/config"), include_root=str(root))
    assert result.errors == [] and result.warnings == []
    assert len(result.tree.includes.followed) == 5
    assert len(result.tree.blocks("virtual-mta")) == 18


def test_valid_single_file_config_has_no_findings():
    result = lint_path(str(FIXTURES / "valid" / "single-file.config"))
    assert result.errors == [] and result.warnings == []
    assert len(result.tree.blocks("acct-file")) == 2


def test_fleet_config_without_its_includes_warns_instead_of_failing():
    root = FIXTURES / "valid" / "fleet"
    result = lint_text((root / "etc/pmta/config").read_text())
    assert result.errors == []
    assert {f.code for f in result.warnings} == {"undefined-reference"}


def test_breaking_the_fleet_config_is_caught_in_the_included_file(tmp_path):
    import shutil

    root = FIXTURES / "valid" / "fleet"
    shutil.copytree(root, tmp_path / "fleet")
    vmtas = tmp_path / "fleet/etc/pmta/conf.d/20-vmtas.conf"
    vmtas.write_text(vmtas.read_text().replace("virtual-mta vmta-05\n", "virtual-mta vmta-55\n", 1))
    result = lint_path(str(tmp_path / "fleet/etc/pmta/config"), include_root=str(tmp_path / "fleet"))
    assert [(f.file, f.code) for f in result.errors] == [("/etc/pmta/conf.d/20-vmtas.conf", "undefined-reference")]
