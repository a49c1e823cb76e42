# Copyright: mailops.powermta contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Command line front end of the PowerMTA config linter (tools/pmta-config-lint).

PRIVATE to the collection: no compatibility promise outside it.
Standard library only (the PowerMTA test double imports this package standalone).
"""

from __future__ import annotations

import argparse
import json
import sys

from . import schema
from .lint import lint_path, lint_text

EXIT_OK = 0
EXIT_FINDINGS = 1
EXIT_USAGE = 2


def _parser():
    parser = argparse.ArgumentParser(
        prog="pmta-config-lint",
        description="Check a PowerMTA config file against the v5.0 directive schema, "
        "cross-references and security rules (no PowerMTA needed).",
    )
    parser.add_argument("files", nargs="*", metavar="FILE", help="config file(s) to check; - reads stdin")
    parser.add_argument(
        "--include-root",
        metavar="DIR",
        help="look included files up below DIR, like a chroot (default: the real file system; "
        "for stdin: includes are not followed unless this is given)",
    )
    parser.add_argument("--stdin-name", default="/etc/pmta/config", help="file name to report for stdin")
    parser.add_argument("--fragment", action="store_true", help="FILE is an include fragment, not a whole config")
    parser.add_argument(
        "--scope",
        default="global",
        metavar="BLOCK",
        help="lint FILE as if it sat inside this block, e.g. virtual-mta for a file included in <virtual-mta> "
        "(implies --fragment)",
    )
    parser.add_argument(
        "--format",
        choices=("text", "pmta", "json"),
        default="text",
        help="text: file:line: severity: message (hint); pmta: PowerMTA's own wording; json: one document",
    )
    parser.add_argument(
        "--fail-on",
        choices=("error", "warning"),
        default="error",
        help="exit 1 on errors (default) or on warnings too",
    )
    parser.add_argument(
        "--extra-directive",
        action="append",
        default=[],
        metavar="NAME[:SCOPE,...]",
        help="a directive your PowerMTA build accepts beyond the guide, with the blocks it may appear in "
        "(default global), e.g. dummy-smtp-blackhole:global or x-foo:domain,virtual-mta; repeatable",
    )
    parser.add_argument(
        "--unknown-directives",
        choices=("error", "warning"),
        default="error",
        help="report a directive nobody declared as an error (default, like PowerMTA) or a warning",
    )
    parser.add_argument("-q", "--quiet", action="store_true", help="print errors only")
    parser.add_argument("--explain", metavar="DIRECTIVE", help="show what the schema knows about a directive")
    parser.add_argument("--schema", action="store_true", help="print the whole directive schema as JSON")
    return parser


def _explain(name, out):
    by_scope = schema.DIRECTIVES.get(name.lower())
    if not by_scope:
        block = schema.BLOCKS.get(name.strip("<>").lower())
        if block:
            out.write(
                "<%s>: block, allowed in %s, argument: %s (%s)\n"
                % (block.tag, ", ".join(sorted(block.parents)), block.argument, schema.cite(block.section))
            )
            return EXIT_OK
        out.write("%s: not a PowerMTA v5.0 directive\n" % name)
        return EXIT_FINDINGS
    seen = set()
    for spec in by_scope.values():
        if id(spec) in seen:
            continue
        seen.add(id(spec))
        line = "%s: in %s; value %s; %s; %s" % (
            spec.name,
            ", ".join("<%s>" % s if s != "global" else "global" for s in sorted(spec.scopes)),
            spec.type,
            "repeatable" if spec.repeatable else "once per block",
            schema.cite(spec.section),
        )
        if spec.status != "current":
            line += "; %s: %s" % (spec.status, spec.note)
        out.write(line + "\n")
    return EXIT_OK


def _dump_schema(out):
    rows = []
    for by_scope in schema.DIRECTIVES.values():
        seen = set()
        for spec in by_scope.values():
            if id(spec) not in seen:
                seen.add(id(spec))
                rows.append(spec.to_dict())
    blocks = [
        {"tag": b.tag, "parents": sorted(b.parents), "argument": b.argument, "section": b.section}
        for b in schema.BLOCKS.values()
    ]
    json.dump({"directives": rows, "blocks": blocks}, out, indent=1, ensure_ascii=False)
    out.write("\n")
    return EXIT_OK


def extra_directives_from_args(values):
    """``NAME[:SCOPE,...]`` command line values as ``[{"name": NAME, "scopes": [...]}]``."""
    declared = []
    for value in values:
        name, _sep, scopes = value.partition(":")
        declared.append({"name": name, "scopes": [s for s in scopes.split(",") if s] or ["global"]})
    return declared


def main(argv=None, stdin=None, stdout=None, stderr=None):
    stdin = stdin or sys.stdin
    stdout = stdout or sys.stdout
    stderr = stderr or sys.stderr
    args = _parser().parse_args(argv)
    if args.schema:
        return _dump_schema(stdout)
    if args.explain:
        return _explain(args.explain, stdout)
    if not args.files:
        stderr.write("pmta-config-lint: give a config FILE (or - for stdin), --explain NAME or --schema\n")
        return EXIT_USAGE
    extra = extra_directives_from_args(args.extra_directive)
    try:
        schema.with_extra_directives(extra)
    except ValueError as exc:
        stderr.write("pmta-config-lint: --extra-directive: %s\n" % exc)
        return EXIT_USAGE
    options = dict(
        fragment=args.fragment, scope=args.scope, extra_directives=extra, unknown_directives=args.unknown_directives
    )
    documents = []
    status = EXIT_OK
    for file in args.files:
        try:
            if file == "-":
                result = lint_text(stdin.read(), args.stdin_name, args.include_root, **options)
            else:
                result = lint_path(file, include_root=args.include_root or "/", **options)
        except OSError as exc:
            stderr.write("pmta-config-lint: cannot read %s: %s\n" % (file, exc.strerror))
            return EXIT_USAGE
        except ValueError as exc:
            stderr.write("pmta-config-lint: --scope: %s\n" % exc)
            return EXIT_USAGE
        findings = result.errors if args.quiet else result.findings
        if args.format == "json":
            document = result.to_dict()
            document["file"] = result.tree.file
            document["files"] = [result.tree.file] + list(result.tree.includes.followed)
            documents.append(document)
        elif args.format == "pmta":
            for finding in findings:
                stdout.write(finding.format_pmta() + "\n")
        else:
            for finding in findings:
                stdout.write(finding.format() + "\n")
            if not args.quiet:
                stdout.write(
                    "%s: %d error(s), %d warning(s)\n" % (result.tree.file, len(result.errors), len(result.warnings))
                )
        if result.errors or (args.fail_on == "warning" and result.warnings):
            status = EXIT_FINDINGS
    if args.format == "json":
        json.dump(documents if len(documents) > 1 else documents[0], stdout, indent=1, ensure_ascii=False)
        stdout.write("\n")
    return status
