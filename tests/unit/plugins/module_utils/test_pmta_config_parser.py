"""The PowerMTA config parser: blocks, comments, line numbers, includes."""

from ansible_collections.mailops.powermta.plugins.module_utils._pmta_config import (
    Block,
    Directive,
    lint_text,
    parse_text,
)
from hypothesis import given, settings
from hypothesis import strategies as st


def codes(root):
    return [(f.line, f.severity, f.code) for f in root.findings]


def test_blocks_directives_and_line_numbers():
    root = parse_text(
        "# comment\n"
        "postmaster a@example.com   # trailing comment\n"
        "\n"
        "<virtual-mta mta1>\n"
        "    smtp-source-host 192.0.2.1 mta1.example.com\n"
        "    <domain *>\n"
        "        max-smtp-out 5\n"
        "    </domain>\n"
        "</virtual-mta>\n"
    )
    assert root.findings == []
    postmaster, vmta = root.children
    assert isinstance(postmaster, Directive)
    assert (postmaster.name, postmaster.value, postmaster.line) == ("postmaster", "a@example.com", 2)
    assert isinstance(vmta, Block)
    assert (vmta.tag, vmta.arg, vmta.line, vmta.end_line) == ("virtual-mta", "mta1", 4, 9)
    domain = vmta.blocks("domain")[0]
    assert domain.parent is vmta and domain.arg == "*"
    assert [(d.name, d.value, d.line) for d in domain.directives()] == [("max-smtp-out", "5", 7)]
    walked = [(getattr(n, "name", None) or n.tag, p.tag) for n, p in root.walk()]
    assert walked == [
        ("postmaster", "global"),
        ("virtual-mta", "global"),
        ("smtp-source-host", "virtual-mta"),
        ("domain", "virtual-mta"),
        ("max-smtp-out", "domain"),
    ]


def test_names_are_case_insensitive_and_values_keep_their_case():
    root = parse_text("<Domain Example.COM>\nSMTP-TLS-ALLOW-SSLv3 No\n</DOMAIN>\n")
    block = root.children[0]
    assert block.tag == "domain" and block.arg == "Example.COM"
    assert block.children[0].name == "smtp-tls-allow-sslv3" and block.children[0].value == "No"
    assert root.findings == []


def test_crlf_line_ends_and_byte_order_mark():
    root = parse_text("\ufeffpostmaster a@example.com\r\n<domain *>\r\nmax-smtp-out 5\r\n</domain>\r\n")
    assert root.findings == []
    assert root.children[0].name == "postmaster" and root.children[1].children[0].value == "5"


def test_hash_starts_a_comment_even_inside_a_value():
    root = parse_text("<smtp-user u>\n    password ## YOUR PASSWORD HERE ##\n</smtp-user>\n")
    assert root.children[0].children[0].value == ""


def test_pipe_acct_file_and_special_tag_arguments():
    root = parse_text(
        "<acct-file |/usr/bin/prog --a=b>\n</acct-file>\n<domain [*.]example.com>\n</domain>\n"
        "<source {auth}>\n</source>\n<smtp-listener 0/0:25>\n</smtp-listener>\n"
    )
    assert [b.arg for b in root.blocks()] == ["|/usr/bin/prog --a=b", "[*.]example.com", "{auth}", "0/0:25"]


def test_unbalanced_blocks_are_reported_at_their_lines():
    root = parse_text("<virtual-mta a>\n<domain *>\n</virtual-mta>\n</domain>\n<source x>\n")
    assert codes(root) == [
        (3, "error", "unbalanced-block"),
        (4, "error", "unbalanced-block"),
        (5, "error", "unbalanced-block"),
    ]
    messages = [f.message for f in root.findings]
    assert messages[0] == "</virtual-mta> closes <domain> opened at line 2"
    assert messages[2] == "<source> is never closed"


def test_balanced_config_has_no_findings():
    root = parse_text("<a-block x>\n<inner>\n</inner>\n</a-block>\n")
    assert root.findings == []  # unknown tags are the linter's business, not the parser's


def test_one_line_block_is_parsed_with_a_warning():
    root = parse_text("<domain *> max-smtp-out 5 </domain>\n")
    domain = root.children[0]
    assert domain.directives()[0].value == "5" and domain.end_line == 1
    assert codes(root) == [(1, "warning", "one-line-block")]


def test_closing_tag_may_repeat_the_name_as_the_guide_does_but_not_another():
    root = parse_text("<domain-key-list k>\n</domain-key-list k>\n")  # §3.3.19's own example
    assert root.children[0].end_line == 2
    assert codes(root) == []
    root = parse_text("<domain-key-list k>\n</domain-key-list j>\n")
    assert root.children[0].end_line == 2
    assert codes(root) == [(2, "warning", "syntax")]


def test_wrapped_value_line_is_a_syntax_error():
    root = parse_text("domain-macro big a.example,\nb.example,c.example\n")
    assert codes(root) == [(2, "error", "syntax")]
    assert "one line" in root.findings[0].hint


def test_bounce_category_lines_are_pattern_lines():
    root = parse_text("<bounce-category-patterns>\n/spam/ spam-related\nnot a pattern\n</bounce-category-patterns>\n")
    lines = root.children[0].children
    assert [(d.name, d.value) for d in lines] == [("/", "/spam/ spam-related"), ("/", "not a pattern")]


def test_includes_not_followed_without_include_root():
    root = parse_text("include /etc/pmta/conf.d/*.conf\ninclude https://cfg.example.com/x\n")
    assert root.includes.unfollowed == [
        ("/etc/pmta/config", 1, "/etc/pmta/conf.d/*.conf"),
        ("/etc/pmta/config", 2, "https://cfg.example.com/x"),
    ]
    assert root.findings == []


def test_include_wildcard_under_include_root_splices_in_order(tmp_path):
    conf_d = tmp_path / "etc/pmta/conf.d"
    conf_d.mkdir(parents=True)
    (conf_d / "20-b.conf").write_text("<virtual-mta b>\n</virtual-mta>\n")
    (conf_d / "10-a.conf").write_text("\n<virtual-mta a>\n</virtual-mta>\n")
    (conf_d / "skip.txt").write_text("junk here\n")
    root = parse_text("postmaster p@example.com\ninclude /etc/pmta/conf.d/*.conf\n", include_root=str(tmp_path))
    assert root.findings == []
    assert [b.arg for b in root.blocks("virtual-mta")] == ["a", "b"]
    a = root.blocks("virtual-mta")[0]
    assert (a.file, a.line) == ("/etc/pmta/conf.d/10-a.conf", 2)
    assert root.includes.followed == ["/etc/pmta/conf.d/10-a.conf", "/etc/pmta/conf.d/20-b.conf"]


def test_include_inside_a_block_lands_in_that_block(tmp_path):
    (tmp_path / "warm.conf").write_text("<domain *>\nmax-cold-virtual-mta-msg 5/d\n</domain>\n")
    main = tmp_path / "config"
    main.write_text("<virtual-mta a>\ninclude warm.conf\n</virtual-mta>\n")
    root = parse_text(main.read_text(), str(main), include_root="/")
    vmta = root.children[0]
    assert [c.name if isinstance(c, Directive) else c.tag for c in vmta.children] == ["include", "domain"]
    assert vmta.blocks("domain")[0].file == str(tmp_path / "warm.conf")


def test_include_missing_file_and_empty_wildcard(tmp_path):
    root = parse_text("include nope.conf\ninclude none-*.conf\n", str(tmp_path / "config"), include_root="/")
    assert codes(root) == [(1, "error", "include-missing")]


def test_include_loop_is_reported(tmp_path):
    (tmp_path / "config").write_text("include other.conf\n")
    (tmp_path / "other.conf").write_text("include config\n")
    root = parse_text((tmp_path / "config").read_text(), str(tmp_path / "config"), include_root="/")
    assert ("include-loop" in [f.code for f in root.findings]) and len(root.findings) == 1
    assert root.findings[0].file == str(tmp_path / "other.conf")


def test_block_left_open_in_an_included_file(tmp_path):
    (tmp_path / "part.conf").write_text("<domain *>\nmax-smtp-out 1\n")
    root = parse_text("include part.conf\n", str(tmp_path / "config"), include_root="/")
    assert [(f.file, f.line, f.code) for f in root.findings] == [(str(tmp_path / "part.conf"), 1, "unbalanced-block")]


def test_to_dict_round_trips_structure():
    tree = parse_text("<virtual-mta a>\nhost-name a.example.com\n</virtual-mta>\n").to_dict()
    assert tree["children"][0]["tag"] == "virtual-mta"
    assert tree["children"][0]["children"][0] == {
        "directive": "host-name",
        "value": "a.example.com",
        "file": "/etc/pmta/config",
        "line": 2,
    }


# ---------------------------------------------------------------- robustness


TOKENS = st.sampled_from(
    [
        "<",
        ">",
        "</",
        "/",
        "#",
        " ",
        "\t",
        "\n",
        "$",
        ",",
        '"',
        "=",
        ":",
        "*",
        "[",
        "]",
        "{",
        "}",
        "domain",
        "virtual-mta",
        "virtual-mta-pool",
        "source",
        "smtp-pattern-list",
        "bounce-category-patterns",
        "max-smtp-out",
        "reply",
        "include",
        "domain-key",
        "smtp-source-host",
        "always-allow-relaying",
        "http-access",
        "0/0",
        "192.0.2.1",
        "yes",
        "10m",
        "500/h",
        "x",
        "é",
    ]
)


@settings(max_examples=300, deadline=None)
@given(st.lists(TOKENS, max_size=80))
def test_any_text_lints_without_crashing(tokens):
    text = "".join(tokens)
    result = lint_text(text)
    lines = text.count("\n") + 1
    for finding in result.errors + result.warnings:
        assert 0 <= finding.line <= lines
        assert finding.message and finding.code and finding.severity in ("error", "warning")
