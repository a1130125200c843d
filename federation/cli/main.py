"""``ratsfed`` entry point: parse, dispatch, map errors to exit codes (2 = usage/input error)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from . import appraise_cmd, corim_cmd, demo_cmd, keys_cmd, serve_cmd, verify_cmd

__all__ = ["build_parser", "main", "run"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ratsfed",
        description="A k-of-n federation of RATS verifiers. Exit codes: 0 affirming, 3 warning, "
                    "4 contraindicated, 5 none (e.g. quorum not reached), 2 usage or input error.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    for module in (demo_cmd, appraise_cmd, verify_cmd, corim_cmd, keys_cmd, serve_cmd):
        module.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse exits 2 on usage errors already; keep 0 for --help
        return int(exc.code or 0)
    code: int = args.func(args)
    return code


def run() -> None:
    """Console-script entry: exit with :func:`main`'s code."""
    try:
        code = main()
        sys.stdout.flush()
    except BrokenPipeError:  # output piped into e.g. head: not an error of ours
        sys.stderr.close()
        code = 0
    sys.exit(code)
