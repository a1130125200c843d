"""``ratsfed appraise``: run a federation from a config over one Evidence file."""

from __future__ import annotations

import argparse
import asyncio
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ..engine import Federation, Member
from ..errors import Error, UsageError
from ..evidence import Evidence
from ..keys import SigningKey, load_trust_anchor
from ..quorum import QuorumPolicy
from ..result import AppraisalResult
from ..votes import Vote
from .common import parse_nonce, parse_time
from .output import exit_code, fail, print_json

__all__ = ["add_parser", "report"]


def _submods(vote: Vote) -> dict[str, Any] | None:
    if vote.ear is None:
        return None
    out: dict[str, Any] = {}
    for name, a in vote.ear.submods.items():
        problem = (a.extensions.get("ear_veraison_policy_claims") or {}).get("problem")
        out[name] = {"status": a.status.label, "trust_vector": a.trust_vector.to_json() if a.trust_vector else None,
                     **({"problem": problem} if problem else {})}
    return out


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
                   "submods": _submods(v), "latency_ms": round(v.latency_ms, 2) if v.latency_ms is not None else None}
                  for v in result.votes],
        "token": result.token.decode("ascii") if result.format == "jwt" else result.token.hex(),
    }


def _local_federation(args: argparse.Namespace, now: int) -> Federation:
    """One in-process local appraiser over the CoRIMs named on the command line (1-of-1).

    Unsigned CoRIMs named here are trusted as the operator's own input; signed ones must verify
    under ``--anchors``.
    """
    from verifiers.local.appraiser import LocalAppraiser
    from verifiers.local.backend import LocalBackend
    from verifiers.local.corim.store import load_paths
    from verifiers.local.schemes import BUILTIN

    anchors = [load_trust_anchor(a) for a in args.anchors or ()]
    store = load_paths(args.corim, anchors, datetime.fromtimestamp(now, UTC), trust_unsigned=True)
    backend = LocalBackend("local", "local", LocalAppraiser(list(BUILTIN.values()), store), SigningKey.generate())
    return Federation([Member(backend, backend.public_anchor)], QuorumPolicy(1, 1), SigningKey.generate(),
                      federation_id="ratsfed-appraise")


async def _appraise(args: argparse.Namespace) -> AppraisalResult:
    import verifiers.local.evidence  # noqa: F401 - registers the media-type sniffers

    evidence = Evidence.from_file(args.evidence, args.media_type)
    now = args.at if args.at is not None else int(time.time())
    fed = Federation.from_config(args.config) if args.config else _local_federation(args, now)
    async with fed:
        return await fed.appraise(evidence, args.nonce, now=now)


def _run(args: argparse.Namespace) -> int:
    try:
        if not args.config and not args.corim:
            raise UsageError("appraise needs --config FILE, or --corim FILE for one local appraiser")
        if args.config and args.corim:
            raise UsageError("--config and --corim are alternatives")
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
            for name, sub in (_submods(v) or {}).items():
                print(f"      {name}: {sub['status']} {sub['trust_vector']} {sub.get('problem', '')}".rstrip())
        if args.out:
            print(f"  combined result written to {args.out}")
    return exit_code(result.decision.status)


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("appraise", help="appraise Evidence with the federation a config describes")
    p.add_argument("evidence", help="Evidence file")
    p.add_argument("--media-type", help="the Evidence's media type (sniffed when omitted)")
    p.add_argument("--nonce", type=parse_nonce, help="hex session nonce the Evidence must be bound to")
    p.add_argument("--at", type=parse_time, help="appraisal time (epoch or ISO 8601; default now)")
    p.add_argument("--config", help="federation config (TOML)")
    p.add_argument("--corim", action="append", help="without --config: a CoRIM file or folder for one local "
                   "appraiser (repeatable; unsigned ones are trusted as local input)")
    p.add_argument("--anchors", action="append", help="endorser key/certificate file for signed --corim files")
    p.add_argument("--out", help="write the combined result token here")
    p.add_argument("--json", action="store_true", help="one JSON object on stdout")
    p.set_defaults(func=_run)
