"""``ratsfed verify``: check any EAR (JWT or CWT) as a relying party would, and explain it.

With ``--kind ita|maa|google|trustee`` the token is a vendor verification service's result instead:
it is checked as the federation checks that kind's votes (:mod:`verifiers.vendor`) and shown as
the EAR it normalizes to (submodules, trust vectors, annotated evidence, binding, table version).
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import time
from typing import TYPE_CHECKING, Any

from ..ear.codec import to_json_claims
from ..ear.token import peek_claims
from ..errors import Error, UsageError
from ..keys import TrustAnchor, load_trust_anchor
from ..result import VerifiedResult, verify_result
from .common import parse_nonce, parse_time, read_input
from .output import exit_code, fail, print_json

if TYPE_CHECKING:
    from verifiers.vendor import VendorView

__all__ = ["add_parser"]


def _anchors(args: argparse.Namespace) -> dict[str, TrustAnchor]:
    anchors: dict[str, TrustAnchor] = {}
    if args.config:
        from ..config import load_config

        anchors.update(load_config(args.config).anchors())
    for item in args.anchor or ():
        name, sep, path = item.partition("=")
        if not sep or not name or not path:
            raise UsageError(f"--anchor takes NAME=FILE, not {item!r}")
        anchors[name] = load_trust_anchor(path)
    return anchors


def _report(result: VerifiedResult) -> dict[str, Any]:
    ear = result.ear
    doc: dict[str, Any] = {
        "status": ear.status.label,
        "verified": True,
        "format": result.verified.format,
        "algorithm": result.verified.algorithm,
        "key_thumbprint": result.verified.key.thumbprint,
        "issued_at": ear.iat,
        "expires": ear.exp,
        "verifier_id": {"developer": ear.verifier_id.developer, "build": ear.verifier_id.build},
        "submods": {
            name: {"status": a.status.label,
                   "trust_vector": a.trust_vector.to_json() if a.trust_vector is not None else None,
                   "policy_ids": list(a.policy_ids)}
            for name, a in ear.submods.items()
        },
        "claims": to_json_claims(ear) if result.verified.format == "cwt" else result.verified.claims,
    }
    if result.provenance is not None:
        doc["provenance"] = result.provenance.raw
    if result.decision is not None:
        doc["reverified"] = {"decision": result.decision.explain()}
    return doc


def _human(doc: dict[str, Any]) -> None:
    print(f"status: {doc['status']} (signature verified, {doc['algorithm']}, key {doc['key_thumbprint']})")
    for name, s in doc["submods"].items():
        print(f"  {name}: {s['status']} {s['trust_vector'] or ''}")
    prov = doc.get("provenance")
    if prov:
        print(f"  decision: {prov.get('decision')}")
        for v in prov.get("votes", []):
            print(f"    {v.get('name')} ({v.get('operator')}): {v.get('outcome')} {v.get('status', '')}")
    if "reverified" in doc:
        print(f"  re-verified every vote: {doc['reverified']['decision']}")


VENDOR_KINDS = ("ita", "maa", "google", "trustee")


def _vendor_report(view: VendorView) -> dict[str, Any]:
    ear = view.ear
    return {
        "status": ear.status.label,
        "verified": True,
        "kind": view.service,
        "algorithm": view.algorithm,
        "key_thumbprint": view.key.thumbprint if view.key is not None else None,
        "issued_at": ear.iat,
        "expires": ear.exp,
        "issuer": view.claims.get("iss"),
        "verifier_id": {"developer": ear.verifier_id.developer, "build": ear.verifier_id.build},
        "binding": view.binding.value if view.binding is not None else "unchecked",
        "mapping": view.mapping,
        "submods": {
            name: {"status": a.status.label,
                   "trust_vector": a.trust_vector.to_json() if a.trust_vector is not None else None,
                   "policy_ids": list(a.policy_ids),
                   "rows": {c: r for c, r in view.fired.get(name, {}).items() if r is not None},
                   "annotated_evidence": view.evidence.get(name, {})}
            for name, a in ear.submods.items()
        },
    }


def _vendor_human(doc: dict[str, Any]) -> None:
    print(f"status: {doc['status']} ({doc['kind']} token verified, {doc['algorithm']}, key {doc['key_thumbprint']}; "
          f"binding {doc['binding']}; mapping {doc['mapping']})")
    for name, s in doc["submods"].items():
        print(f"  {name}: {s['status']} {s['trust_vector'] or ''}")
        for claim, value in s["annotated_evidence"].items():
            print(f"    {claim}: {value}")


def _failed(exc: Error, args: argparse.Namespace) -> int:
    """Report a failed verification (with ``--show-claims``, the unverified claims to stderr)."""
    if not args.json and args.show_claims:
        with contextlib.suppress(Error):
            print(peek_claims(read_input(args.token))[1], file=sys.stderr)
    return fail(exc, as_json=args.json)


def _run_vendor(args: argparse.Namespace) -> int:
    from verifiers.vendor import verify_token  # only --kind needs the vendor tables

    try:
        if args.reverify or args.config or args.anchor:
            raise UsageError("--kind checks one vendor token: --reverify, --config and --anchor do not apply")
        token = read_input(args.token)
        view = verify_token(args.kind, token, load_trust_anchor(args.keys),
                            now=args.at if args.at is not None else int(time.time()), nonce=args.nonce,
                            max_age=args.max_age)
    except Error as exc:
        return _failed(exc, args)
    doc = _vendor_report(view)
    if args.json:
        print_json(doc)
    else:
        _vendor_human(doc)
    return exit_code(view.ear.status)


def _run(args: argparse.Namespace) -> int:
    if args.kind is not None:
        return _run_vendor(args)
    try:
        token = read_input(args.token)
        anchors = _anchors(args) if args.reverify else {}
        result = verify_result(
            token, args.keys, nonce=args.nonce, reverify=args.reverify, anchors=anchors,
            now=args.at if args.at is not None else int(time.time()), max_age=args.max_age,
        )
    except Error as exc:
        return _failed(exc, args)
    doc = _report(result)
    if args.json:
        print_json(doc)
    else:
        _human(doc)
    return exit_code(result.ear.status)


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("verify", help="verify an EAR (JWT or CWT) or a combined result")
    p.add_argument("token", help="token file, or - for standard input")
    p.add_argument("--keys", required=True, help="JWK, JWKS, PEM key(s) or root certificate(s) of the signer")
    p.add_argument("--nonce", type=parse_nonce, help="hex nonce the result must echo (with --kind: the expected "
                   "REPORT_DATA, or for google/maa the echoed nonce)")
    p.add_argument("--at", type=parse_time, help="verification time (epoch or ISO 8601; default now)")
    p.add_argument("--max-age", type=int, help="refuse results issued more than this many seconds ago")
    p.add_argument("--reverify", action="store_true", help="re-verify every embedded backend result")
    p.add_argument("--config", help="federation config whose verifier anchors --reverify uses")
    p.add_argument("--anchor", action="append", metavar="NAME=FILE", help="a backend's anchor for --reverify")
    p.add_argument("--show-claims", action="store_true", help="on failure, print the unverified claims")
    p.add_argument("--kind", choices=VENDOR_KINDS, help="TOKEN is this vendor service's token, not an EAR: "
                   "verify it as the federation does and show the EAR it maps to")
    p.add_argument("--json", action="store_true", help="one JSON object on stdout")
    p.set_defaults(func=_run)
