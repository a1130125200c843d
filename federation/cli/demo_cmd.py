"""``ratsfed demo``: the main job on embedded defaults, with real processes (see :mod:`federation.demo`)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import Error
from .output import fail, print_json

__all__ = ["add_parser"]

if TYPE_CHECKING:
    from ..demo import DemoRun

_CELL = 21  # one verifier's column: "contraindicated  13ms"


def _prog() -> str:
    """How the user invoked ratsfed (e.g. ``.venv/bin/ratsfed``), for commands they can paste."""
    argv0 = sys.argv[0] if sys.argv else ""
    return argv0 if Path(argv0).name == "ratsfed" else "ratsfed"


def _verdict(status: str | None, outcome: str, ms: float | None) -> str:
    shown = status if outcome == "ok" and status else outcome
    return f"{shown:<15}{ms:>4.0f}ms" if ms is not None else shown


def _table(run: DemoRun) -> None:
    operators = [v.operator for v in run.cases[0].votes] if run.cases else []
    print(f"  {'#':>2}  {'case':<56}" + "".join(f"  {op:<{_CELL}}" for op in operators) + "  combined")
    for c in run.cases:
        title = f"{c.evidence + ':':<9}{c.title}"
        cells = "".join(f"  {_verdict(v.status, v.outcome, v.latency_ms):<{_CELL}}" for v in c.votes)
        mark = "ok" if c.ok else f"<- EXPECTED {c.expected}"
        print(f"  {c.number:>2}  {title:<56}{cells}  {c.status} {mark}")
        problem = next((v.problem for v in c.votes if v.problem), None)
        if c.status != "affirming" and problem:
            print(f"  {'':>2}  why: {problem[:160]}")


def _human(run: DemoRun, args: argparse.Namespace) -> None:
    prog = _prog()
    good = sum(c.ok for c in run.cases)
    print(f"\nthe simulated attester answered each federator session's challenge (newSession, then Evidence "
          f"bound to\nits nonce); per verifier its verdict and latency, then the combined result ({run.policy}):\n")
    _table(run)
    print(f"\n{good}/{len(run.cases)} cases got their expected status; every combined result was verified by the "
          "relying party\nand every vote in it re-verified under its own verifier's key.")
    stopped = ", ".join(f"{s.name} {s.exit_code}" for s in run.services)
    print(f"every process the demo started was stopped (exit codes: {stopped}).")
    if run.combined is not None:
        print(f"\ncombined result of case 1 written to {run.combined}; verify it with:")
        print(f"  {prog} verify {run.combined} --keys {run.federation_jwk}")
        print(f"  {prog} verify {run.combined} --keys {run.federation_jwk} --reverify "
              f"--config {run.folder / 'federator.toml'}   # and every vote")
    if args.out:
        print(f"\nthe configs, keys (private ones mode 600) and logs are in {run.folder}; "
              "start the same federation with:")
        for s in run.services:
            print(f"  {prog} serve --config {s.config}{' &' if s.role == 'verifier' else ''}")
        print(f"and replay a case's Evidence with its nonce ({run.folder / 'evidence' / 'index.json'}) to "
              "the federator's POST /v1/appraise?nonce=HEX.")
    else:
        print(f"\n(configs, keys and logs of this run: {run.folder}; --out DIR to choose the folder)")
    print(f"\nfinished in {run.seconds:.1f} s ({run.setup_seconds:.1f} s to generate everything and start the "
          "services).")


def _json(run: DemoRun) -> dict[str, Any]:
    return {
        "status": "affirming" if run.ok else "none",
        "policy": run.policy,
        "folder": str(run.folder),
        "combined": str(run.combined) if run.combined is not None else None,
        "federation_jwk": str(run.federation_jwk),
        "seconds": round(run.seconds, 3),
        "setup_seconds": round(run.setup_seconds, 3),
        "services": [{"name": s.name, "role": s.role, "operator": s.operator, "config": str(s.config),
                      "url": s.url, "pid": s.pid, "exit_code": s.exit_code} for s in run.services],
        "cases": [{"number": c.number, "title": c.title, "evidence": c.evidence, "expected": c.expected,
                   "status": c.status, "ok": c.ok, "decision": c.decision, "votes_reverified": c.reverified,
                   "latency_ms": round(c.latency_ms, 3), "nonce": c.nonce.hex(),
                   "evidence_media_type": c.sent.media_type,
                   "votes": [{"name": v.name, "operator": v.operator, "outcome": v.outcome, "status": v.status,
                              "latency_ms": v.latency_ms, "problem": v.problem} for v in c.votes]}
                  for c in run.cases],
    }


def _run(args: argparse.Namespace) -> int:
    from ..demo import OPERATORS, DemoError, run_demo

    if not args.json:
        print(f"rats-federation demo: three verifier services (operators {', '.join(OPERATORS)}) and a 2-of-3 "
              "federator,\neach a separate `ratsfed serve` process on 127.0.0.1. An endorser signs a CoRIM (PSA "
              "device key,\nfirmware reference values, SEV-SNP launch measurement, build-provenance link); a demo "
              "hardware\nvendor root (ARK-shaped, RSA-PSS) certifies a VCEK-shaped chip key. All generated for "
              "this run.\n")
    try:
        run = run_demo(args.out, say=None if args.json else print)
    except KeyboardInterrupt:
        print("ratsfed demo: interrupted; every process it started was stopped", file=sys.stderr)
        return 130
    except Error as exc:
        return fail(exc, as_json=args.json)
    except OSError as exc:  # e.g. --out names a file, or a folder we may not write
        return fail(DemoError(f"cannot write the demo's files: {exc.strerror or exc} ({exc.filename})"),
                    as_json=args.json)
    if args.json:
        print_json(_json(run))
    else:
        _human(run, args)
    return 0 if run.ok else 5


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("demo", help="run a whole federation (three verifier processes and a federator) "
                                    "on embedded defaults")
    p.add_argument("--out", help="folder for combined.jwt, federation.jwk, the configs, keys and logs "
                                 "(default: a new temporary folder)")
    p.add_argument("--json", action="store_true", help="one JSON object on stdout")
    p.set_defaults(func=_run)
