"""The mapping tables as Markdown, for docs/backends.md (which must not drift from the code).

Each table is rendered between ``<!-- BEGIN TABLE <kind> -->`` and ``<!-- END TABLE <kind> -->``;
prose around the blocks is left alone. ``python -m verifiers.vendor.doc docs/backends.md``
rewrites the blocks in place; with ``--check`` it only reports whether they are current (the
test suite asserts the same).
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Sequence
from pathlib import Path

from federation.ar4si import tier_of_claim

from . import SERVICES
from .common import Service
from .mapping import KEEP, PASS, MappingTable, Naming

__all__ = ["begin", "blocks", "end", "render", "render_all", "splice"]

_BLOCK = re.compile(r"<!-- BEGIN TABLE (?P<kind>[a-z0-9-]+) -->\n(?P<body>.*?)<!-- END TABLE (?P=kind) -->", re.S)


def begin(kind: str) -> str:
    return f"<!-- BEGIN TABLE {kind} -->"


def end(kind: str) -> str:
    return f"<!-- END TABLE {kind} -->"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _value(value: int | None) -> str:
    if value is PASS:
        return "as given"
    assert value is not None
    return "0 (no claim)" if value == 0 else f"{value} ({tier_of_claim(value).label})"


def _kib(size: int) -> str:
    return f"{size >> 10} KiB"


def _checks(service: Service) -> str:
    algs = " or ".join(f"`{a}`" for a in service.algorithms)
    issuer = (f"`iss` must be `{service.issuer}` unless the member's `expect.issuer` names another"
              if service.issuer else "`iss` is checked only when the member's `expect.issuer` names one")
    exp = "`exp` required" if service.require_exp else "`exp` honoured when present"
    return (f"Checks before mapping: signature under the member's configured anchor only, `alg` {algs} "
            f"(else bad-algorithm); token at most {_kib(service.max_token)}; `iat`/`nbf`/`exp` at the appraisal "
            f"time with leeway, {exp}; {issuer}." + (f" {service.checks}" if service.checks else ""))


def _naming(n: Naming) -> str:
    if n.submod == KEEP:
        return f"as named in `{n.claim}`" + (f" ({n.note})" if n.note else "")
    cond = ("is " + " or ".join(f"`{v}`" for v in n.values)) if n.values else "has any other value (or none)"
    return f"`{n.claim}` {cond} → `{n.submod}`" + (f" ({n.note})" if n.note else "")


def render_table(table: MappingTable) -> str:
    lines = [
        "| # | AR4SI claim | submodule | vendor claim | when | value | note |",
        "|---|---|---|---|---|---|---|",
    ]
    for index, rule in enumerate(table.rules, 1):
        lines.append("| " + " | ".join(_cell(c) for c in (
            str(index), rule.ar4si, f"`{rule.tee}`" if rule.tee else "all", rule.claim, rule.when.text,
            _value(rule.value), rule.note)) + " |")
    return "\n".join(lines)


def render(kind: str) -> str:
    """The Markdown for *kind*'s table (without the markers)."""
    service = SERVICES[kind]
    table = service.table
    naming = "; ".join(_naming(n) for n in table.naming)
    if all(r.value is PASS for r in table.rules):
        rule = ("Every AR4SI claim is taken from the vendor's own vector as it is (a claim it lacks stays absent).")
    else:
        rule = ("The first row that applies decides each AR4SI claim; a claim no row decides is 0 (no claim). A "
                "submodule's status is the worst tier of its vector.")
    parts = [
        f"#### {table.title} (`{kind}`): mapping table version {table.version}",
        "",
        _checks(service),
        "",
        f"Claims view: {table.views}",
        "",
        f"Submodules: {naming}.",
        "",
        render_table(table),
        "",
        f"{rule} Appraisal policy id: `{table.policy_id}`.",
    ]
    return "\n".join(parts) + "\n"


def block(kind: str) -> str:
    return f"{begin(kind)}\n{render(kind)}{end(kind)}"


def render_all() -> str:
    return "\n\n".join(block(kind) for kind in SERVICES) + "\n"


def blocks(text: str) -> dict[str, str]:
    """The table blocks of a document: kind -> body between the markers."""
    return {m.group("kind"): m.group("body") for m in _BLOCK.finditer(text)}


def splice(text: str) -> str:
    """*text* with every table block re-rendered; blocks missing from *text* are appended."""
    out = _BLOCK.sub(lambda m: block(m.group("kind")) if m.group("kind") in SERVICES else m.group(0), text)
    missing = [k for k in SERVICES if k not in blocks(out)]
    if missing:
        out = out.rstrip("\n") + "\n\n" + "\n\n".join(block(k) for k in missing) + "\n"
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="render the vendor mapping tables into a Markdown file")
    parser.add_argument("file", type=Path)
    parser.add_argument("--check", action="store_true", help="only report whether the blocks are current")
    args = parser.parse_args(argv)
    text = args.file.read_text(encoding="utf-8") if args.file.exists() else ""
    new = splice(text)
    if args.check:
        if new != text:
            print(f"{args.file}: vendor mapping tables are out of date", file=sys.stderr)
            return 1
        return 0
    if new != text:
        args.file.write_text(new, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
