"""``ratsfed appraise``: run a federation from a config, or one local appraiser, over one Evidence file.

Without ``--config`` the command builds one in-process local appraiser (1-of-1) from its flags:
CoRIMs (``--corim``, optional: without them the hardware, chain and TCB are still appraised and
the measurements reported unrecognized), certificates and collateral for SEV-SNP and TDX
(``--chain``, ``--collateral``: candidates only, never trust anchors), the debug policy
(``--allow-debug``) and the REPORT_DATA rule. Without ``--nonce`` that appraiser does not check
freshness: it is told so, every submodule says ``"freshness": "not checked"`` and so does the
JSON output's top level (docs/local-appraiser.md, "The command line").
"""

from __future__ import annotations

import argparse
import asyncio
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ..engine import Federation, Member
from ..errors import Error, MalformedError, UsageError
from ..evidence import Evidence
from ..keys import SigningKey, load_trust_anchor
from ..quorum import QuorumPolicy
from ..result import AppraisalResult
from ..votes import Vote
from .common import parse_nonce, parse_time
from .output import exit_code, fail, print_json

__all__ = ["FRESHNESS_CHECKED", "FRESHNESS_NOT_CHECKED", "add_parser", "report"]

FRESHNESS_CHECKED = "checked"
FRESHNESS_NOT_CHECKED = "not checked"  # the local appraiser's policy-claims value, too
_LOCAL_ONLY = ("corim", "anchors", "chain", "collateral", "allow_debug", "report_data")
_RULES = ("raw", "sha256", "sha384", "sha512")


def _policy_claims(vote: Vote) -> dict[str, dict[str, Any]]:
    if vote.ear is None:
        return {}
    return {name: dict(a.extensions.get("ear_veraison_policy_claims") or {}) for name, a in vote.ear.submods.items()}


def _submods(vote: Vote) -> dict[str, Any] | None:
    if vote.ear is None:
        return None
    claims = _policy_claims(vote)
    out: dict[str, Any] = {}
    for name, a in vote.ear.submods.items():
        pc = claims[name]
        problem = pc.get("problem")
        out[name] = {"status": a.status.label, "trust_vector": a.trust_vector.to_json() if a.trust_vector else None,
                     **({"problem": problem} if problem else {}),
                     **({"policy_claims": pc} if pc else {})}
    return out


def freshness(result: AppraisalResult) -> str:
    """``"not checked"`` when any vote's appraiser says it did not compare the Evidence with the
    session nonce (a local appraiser without one, or with ``freshness = false``), else ``"checked"``
    (every appraiser was given the session nonce; a mismatch is a failed appraisal, not this)."""
    for vote in result.votes:
        if any(pc.get("freshness") == FRESHNESS_NOT_CHECKED for pc in _policy_claims(vote).values()):
            return FRESHNESS_NOT_CHECKED
    return FRESHNESS_CHECKED


def report(result: AppraisalResult) -> dict[str, Any]:
    d = result.decision
    return {
        "status": result.status,
        "decision": d.explain(),
        "freshness": freshness(result),
        "nonce": result.nonce.hex(),
        "submods": {n: {"status": s.status.label, "trust_vector": s.trust_vector.to_json(),
                        "supporters": list(s.supporters)} for n, s in d.submods.items()},
        "votes": [{"name": v.backend, "operator": v.operator, "kind": v.kind, "outcome": v.outcome.value,
                   "status": v.ear.status.label if v.ear else None, "detail": v.detail,
                   "submods": _submods(v), "latency_ms": round(v.latency_ms, 2) if v.latency_ms is not None else None}
                  for v in result.votes],
        "token": result.token.decode("ascii") if result.format == "jwt" else result.token.hex(),
    }


def _local_federation(args: argparse.Namespace, evidence: Evidence, now: int) -> Federation:
    """One in-process local appraiser from the command line's flags (1-of-1).

    Unsigned CoRIMs named here are trusted as the operator's own input; signed ones must verify
    under ``--anchors``. ``--chain`` and ``--collateral`` files form one offline collateral store
    (certificates there are candidates: chains must still end in a pinned root). Without
    ``--nonce`` freshness is not checked (the federation still binds the result to its own nonce).
    """
    from verifiers.local.appraiser import LocalAppraiser
    from verifiers.local.backend import LocalBackend, cvm_schemes
    from verifiers.local.collateral.folder import FolderStore
    from verifiers.local.corim.store import load_paths
    from verifiers.local.schemes import BUILTIN

    anchors = [load_trust_anchor(a) for a in args.anchors or ()]
    store = load_paths(args.corim or [], anchors, datetime.fromtimestamp(now, UTC), trust_unsigned=True)
    schemes = {**BUILTIN, **cvm_schemes(allow_debug=args.allow_debug, report_data=args.report_data or "raw")}
    appraiser = LocalAppraiser(list(schemes.values()), store)
    try:
        appraiser.route(evidence.media_type)
    except MalformedError as exc:
        raise UsageError(f"{exc.detail}; this appraiser reads {', '.join(appraiser.media_types)}") from exc
    files = [*(args.chain or ()), *(args.collateral or ())]
    collateral = FolderStore(files) if files else None
    backend = LocalBackend("local", "local", appraiser, SigningKey.generate(), collateral=collateral,
                           freshness=args.nonce is not None)
    return Federation([Member(backend, backend.public_anchor)], QuorumPolicy(1, 1), SigningKey.generate(),
                      federation_id="ratsfed-appraise")


async def _appraise(args: argparse.Namespace) -> AppraisalResult:
    import verifiers.local.evidence  # noqa: F401 - registers the media-type sniffers

    evidence = Evidence.from_file(args.evidence, args.media_type)
    now = args.at if args.at is not None else int(time.time())
    fed = Federation.from_config(args.config) if args.config else _local_federation(args, evidence, now)
    async with fed:
        return await fed.appraise(evidence, args.nonce, now=now)


def _check(args: argparse.Namespace) -> None:
    if args.config:
        given = [f"--{name.replace('_', '-')}" for name in _LOCAL_ONLY
                 if getattr(args, name) not in (None, False, [])]
        if given:
            raise UsageError(f"{', '.join(given)}: only without --config (they build the one local appraiser; "
                             "with --config, set the local verifiers' options in the config)")


def _run(args: argparse.Namespace) -> int:
    try:
        _check(args)
        result = asyncio.run(_appraise(args))
    except Error as exc:
        return fail(exc, as_json=args.json)
    if args.out:
        Path(args.out).write_bytes(result.token)
    if args.json:
        print_json(report(result))
    else:
        print(f"status: {result.status}\n  {result.decision.explain()}")
        fresh = freshness(result)
        if fresh == FRESHNESS_NOT_CHECKED:
            print("  freshness: not checked (no session nonce was compared with the Evidence; pass --nonce)")
        for v in result.votes:
            print(f"    {v.backend} ({v.operator}): {v.outcome.value} {v.ear.status.label if v.ear else v.detail}")
            for name, sub in (_submods(v) or {}).items():
                print(f"      {name}: {sub['status']} {sub['trust_vector']} {sub.get('problem', '')}".rstrip())
        if args.out:
            print(f"  combined result written to {args.out}")
    return exit_code(result.decision.status)


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "appraise", help="appraise Evidence with the federation a config describes, or one local appraiser",
        description="With --config: the federation the config describes. Without: one in-process local "
                    "appraiser (all schemes, including SEV-SNP and TDX) built from the flags below. Without "
                    "--nonce freshness is not checked, and the result says so (\"freshness\": \"not checked\").")
    p.add_argument("evidence", help="Evidence file")
    p.add_argument("--media-type", help="the Evidence's media type (sniffed when omitted: PSA, CCA, EAT, TDX quotes, "
                   "SEV-SNP reports, TSM reports, CMW)")
    p.add_argument("--nonce", type=parse_nonce, help="hex session nonce the Evidence must be bound to (8..64 bytes; "
                   "without it freshness is not checked)")
    p.add_argument("--at", type=parse_time, help="appraisal time (epoch or ISO 8601; default now)")
    p.add_argument("--config", help="federation config (TOML)")
    p.add_argument("--corim", action="append", help="without --config: a CoRIM file or folder for the local "
                   "appraiser (repeatable; unsigned ones are trusted as local input; optional)")
    p.add_argument("--anchors", action="append", help="without --config: endorser key/certificate file for signed "
                   "--corim files (repeatable)")
    p.add_argument("--chain", action="append", help="without --config: certificates (DER or PEM, bundles allowed) "
                   "for the Evidence, e.g. a VCEK and the ASK/ARK (repeatable; not trust anchors)")
    p.add_argument("--collateral", action="append", help="without --config: an offline collateral folder or file "
                   "(AMD certificates/CRLs, Intel PCS responses, a dcap-qvl collateral JSON; repeatable)")
    p.add_argument("--allow-debug", action="store_true", help="without --config: accept debug guests "
                   "(SEV-SNP POLICY.DEBUG, TDX DEBUG attribute), contraindicated by default")
    p.add_argument("--report-data", choices=_RULES, help="without --config: how SEV-SNP/TDX REPORT_DATA binds the "
                   "nonce (default raw: the nonce zero-padded to 64 bytes)")
    p.add_argument("--out", help="write the combined result token here")
    p.add_argument("--json", action="store_true", help="one JSON object on stdout")
    p.set_defaults(func=_run)
