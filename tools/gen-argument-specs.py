#!/usr/bin/env python
# Copyright: mailops.powermta contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Write the item options of the powermta role's layered lists from the fleet model's item schema.

Usage:
  .venv/bin/python tools/gen-argument-specs.py            rewrite roles/powermta/meta/argument_specs.yml
  .venv/bin/python tools/gen-argument-specs.py --check    exit 1 when the file differs, naming each difference

The ``options:`` of every variable of ``_fleet/items.py`` LAYERS (powermta_X, powermta_group_X,
powermta_host_X, powermta_default_X) come from ``_fleet/item_specs.py`` ``item_options``: the lowest layer of
each kind holds the block under a YAML anchor, the other layers its alias. The rest of the file is kept as
written. Run tools/gen-variables-doc.py afterwards (docs/variables.md is generated from this file).
"""

from __future__ import annotations

import argparse
import difflib
import sys
import textwrap
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
SPEC_FILE = ROOT / "roles" / "powermta" / "meta" / "argument_specs.yml"
# A CLI imports module_utils as plain packages (docs/development.md "Importing").
sys.path.insert(0, str(ROOT / "plugins" / "module_utils"))
from _fleet import item_specs  # noqa: E402
from _fleet.items import LAYERS  # noqa: E402

WIDTH = 120
VARIABLE_INDENT = 6  # argument_specs.main.options.<variable>
ANCHORS = {"listeners": "listener_options", "sources": "source_options", "injectors": "injector_options",
           "domains": "domain_options", "pools": "pool_options", "vmtas": "vmta_options",
           "isp_policies": "isp_options", "acct_files": "acct_options"}
MARKER = "# Generated from plugins/module_utils/_fleet/item_specs.py by tools/gen-argument-specs.py: edit there."
FACET_ORDER = ("type", "elements", "required", "no_log", "choices", "default", "description", "options")


# ---------------------------------------------------------------- YAML text in the file's style
def _plain(text: str) -> bool:
    """True when ``text`` reads back unchanged as a plain (unquoted) YAML scalar."""
    try:
        return yaml.safe_load("key: " + text) == {"key": text}
    except yaml.YAMLError:
        return False


def _scalar(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, str) and _plain(value):
        return value
    return yaml.safe_dump(value, default_flow_style=True, width=10_000).strip().removesuffix("...").strip()


def _text_lines(lead: str, text: str, indent: int) -> list[str]:
    """``lead`` (``key:`` or ``-``) with a text: one line when it fits, else a folded block."""
    if indent + len(lead) + 1 + len(text) <= WIDTH and _plain(text):
        return ["%s%s %s" % (" " * indent, lead, text)]
    inner = " " * (indent + 2)
    wrapped = textwrap.wrap(text, WIDTH, initial_indent=inner, subsequent_indent=inner, break_long_words=False,
                            break_on_hyphens=False)
    return ["%s%s >-" % (" " * indent, lead)] + wrapped


def _option_lines(name: str, option: dict, indent: int) -> list[str]:
    pad = " " * indent
    lines = ["%s%s:" % (pad, name)]
    unknown = set(option) - set(FACET_ORDER)
    if unknown:
        raise ValueError("%s: facets %s cannot be written" % (name, sorted(unknown)))
    for facet in FACET_ORDER:
        if facet not in option:
            continue
        value = option[facet]
        if facet == "description":
            if isinstance(value, str):
                lines += _text_lines("description:", value, indent + 2)
            else:
                lines.append(pad + "  description:")
                for paragraph in value:
                    lines += _text_lines("-", paragraph, indent + 4)
        elif facet == "options":
            lines.append(pad + "  options:")
            lines += _options_lines(value, indent + 4)
        elif isinstance(value, (list, tuple)):
            lines.append("%s  %s: [%s]" % (pad, facet, ", ".join(_scalar(v) for v in value)))
        else:
            lines.append("%s  %s: %s" % (pad, facet, _scalar(value)))
    return lines


def _options_lines(options: dict, indent: int) -> list[str]:
    lines = []
    for name, option in options.items():
        lines += _option_lines(name, option, indent)
    return lines


def options_block(kind: str, first: bool) -> list[str]:
    """The lines of a layered variable's ``options``: the anchored block on the lowest layer, else its alias."""
    pad = " " * (VARIABLE_INDENT + 2)
    if not first:
        return ["%soptions: *%s" % (pad, ANCHORS[kind])]
    return ([pad + MARKER, "%soptions: &%s" % (pad, ANCHORS[kind])]
            + _options_lines(item_specs.item_options(kind), VARIABLE_INDENT + 4))


# ---------------------------------------------------------------- splicing into the file
def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def _block_end(lines: list[str], start: int, indent: int) -> int:
    """Index after the block opened at ``start``: the next non-blank line indented ``indent`` or less."""
    end = start + 1
    while end < len(lines) and (not lines[end].strip() or _indent(lines[end]) > indent):
        end += 1
    return end


def _main_options_range(lines: list[str]) -> tuple[int, int]:
    start = lines.index("  main:")
    return start, _block_end(lines, start, 2)


def generate(text: str) -> str:
    """``text`` with the ``options`` of every layered variable written from the item schema."""
    lines = text.split("\n")
    for kind, variables in LAYERS.items():
        for position, variable in enumerate(variables):
            main_start, main_end = _main_options_range(lines)
            key_line = " " * VARIABLE_INDENT + variable + ":"
            try:
                start = lines.index(key_line, main_start, main_end)
            except ValueError:
                raise SystemExit("%s: %s is not declared in the main entry point; declare it (type list, "
                                 "elements dict) and run again" % (SPEC_FILE.name, variable)) from None
            end = _block_end(lines, start, VARIABLE_INDENT)
            pad = " " * (VARIABLE_INDENT + 2)
            options_at = next((i for i in range(start + 1, end) if lines[i].startswith(pad + "options:")), None)
            if options_at is None:
                lines[end:end] = options_block(kind, position == 0)
                continue
            block_start = options_at - 1 if lines[options_at - 1] == pad + MARKER else options_at
            block_end = _block_end(lines, options_at, VARIABLE_INDENT + 2)
            lines[block_start:block_end] = options_block(kind, position == 0)
    return "\n".join(lines)


# ---------------------------------------------------------------- naming the differences
def _differences(want, have, where: str) -> list[str]:
    if isinstance(want, dict) and isinstance(have, dict):
        problems = ["%s.%s is missing" % (where, key) for key in want if key not in have]
        problems += ["%s.%s is not in the item schema" % (where, key) for key in have if key not in want]
        for key in want:
            if key in have:
                problems += _differences(want[key], have[key], "%s.%s" % (where, key))
        return problems
    if want != have:
        return ["%s is %r, the item schema says %r" % (where, have, want)]
    return []


def differences(text: str) -> list[str]:
    """What the layered variables' item options of the spec ``text`` declare unlike the item schema."""
    options = yaml.safe_load(text)["argument_specs"]["main"]["options"]
    problems = list(item_specs.description_problems())
    for variable, kind in item_specs.layered_variables().items():
        spec = options.get(variable)
        if spec is None:
            problems.append("%s is not declared" % variable)
            continue
        if (spec.get("type"), spec.get("elements")) != ("list", "dict"):
            problems.append("%s must be type list, elements dict" % variable)
        problems += _differences(item_specs.item_options(kind), spec.get("options"), variable)
    return problems


def check(path: Path = SPEC_FILE) -> list[str]:
    """Problems of the spec file: the named differences, or the text diff when only the layout differs."""
    current = path.read_text(encoding="utf-8")
    generated = generate(current)
    if current == generated:
        return list(item_specs.description_problems())
    problems = differences(current)
    if not problems:
        problems = ["%s: layout differs from the generated text:" % path.name] + [
            line.rstrip("\n") for line in difflib.unified_diff(current.splitlines(True), generated.splitlines(True),
                                                               str(path), "generated")]
    return problems


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail when the file differs from the item schema")
    parser.add_argument("--spec", type=Path, default=SPEC_FILE, help="the argument_specs.yml to write or check")
    args = parser.parse_args(argv)
    if args.check:
        problems = check(args.spec)
        for problem in problems:
            print(problem, file=sys.stderr)
        if problems:
            print("%s differs from the item schema: run tools/gen-argument-specs.py" % args.spec, file=sys.stderr)
        return 1 if problems else 0
    problems = item_specs.description_problems()
    if problems:
        print("\n".join(problems), file=sys.stderr)
        return 1
    text = generate(args.spec.read_text(encoding="utf-8"))
    generated = differences(text)
    if generated:  # the writer itself is wrong: never write a file that does not read back as the schema
        print("\n".join(["generated text does not read back as the item schema:"] + generated), file=sys.stderr)
        return 1
    args.spec.write_text(text, encoding="utf-8")
    print("wrote %s" % (args.spec.relative_to(ROOT) if args.spec.is_relative_to(ROOT) else args.spec))
    return 0


if __name__ == "__main__":
    sys.exit(main())
