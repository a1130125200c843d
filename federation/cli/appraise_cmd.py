"""``ratsfed appraise``: run a federation from a config over one Evidence file."""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path
from typing import Any

from ..errors import Error, UsageError
from ..evidence import Evidence
from ..result import AppraisalResult
from .common import parse_nonce, parse_time
from .output import exit_code, fail, print_json

__all__ = ["add_parser", "report"]


def report(result: AppraisalResult) -> dict[str, Any]:
    d = result.decision
    return {
        "status": result.status,
        "decision": d.explain(),
        "nonce": result.nonce.hex(),
        "submods": {n: {"status": s.status.label, "trust_vector": s.trust_vector.to_json(),
                        "supporters": list(s.supporters)} for n, s in d.submods.items()},
        "votes": [{"name": v.backend, "operator": v.operator, "kind": v.kind, "outcome": v.outcome.value,
                   "status": v.ear.status.label if v.ear else None, "detail": v.detail,
                   "latency_ms": round(v.latency_ms, 2) if v.latency_ms is not None else None}
                  for v in result.votes],
        "token": result.token.decode("ascii") if result.format == "jwt" else result.token.hex(),
    }


async def _appraise(args: argparse.Namespace) -> AppraisalResult:
    from ..engine import Federation

    evidence = Evidence.from_file(args.evidence, args.media_type)
    async with Federation.from_config(args.config) as fed:
        return await fed.appraise(evidence, args.nonce, now=args.at)


def _run(args: argparse.Namespace) -> int:
    try:
        if not args.config:
            raise UsageError("appraise needs --config FILE naming the federation's verifiers")
        result = asyncio.run(_appraise(args))
    except Error as exc:
        return fail(exc, as_json=args.json)
    if args.out:
        Path(args.out).write_bytes(result.token)
    if args.json:
        print_json(report(result))
    else:
        print(f"status: {result.status}\n  {result.decision.explain()}")
        for v in result.votes:
            print(f"    {v.backend} ({v.operator}): {v.outcome.value} {v.ear.status.label if v.ear else v.detail}")
        if args.out:
            print(f"  combined result written to {args.out}")
    return exit_code(result.decision.status)


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("appraise", help="appraise Evidence with the federation a config describes")
    p.add_argument("evidence", help="Evidence file")
    p.add_argument("--media-type", help="the Evidence's media type (sniffed when omitted)")
    p.add_argument("--nonce", type=parse_nonce, help="hex nonce the Evidence is bound to (default: fresh)")
    p.add_argument("--at", type=parse_time, help="appraisal time (epoch or ISO 8601; default now)")
    p.add_argument("--config", help="federation config (TOML)")
    p.add_argument("--out", help="write the combined result token here")
    p.add_argument("--json", action="store_true", help="one JSON object on stdout")
    p.set_defaults(func=_run)
