"""``ratsfed demo``: the main job on embedded defaults (see :mod:`federation.demo`)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..errors import Error
from .output import fail, print_json

__all__ = ["add_parser"]


def _run(args: argparse.Namespace) -> int:
    from ..demo import OPERATORS, run_demo

    try:
        cases, world = run_demo()
    except Error as exc:
        return fail(exc, as_json=args.json)
    good = all(c.result.status == c.expected == c.verified_status and c.reverified for c in cases)
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        for i, c in enumerate(cases, 1):
            (out / f"result-{i}.jwt").write_bytes(c.result.token)
        (out / "keys.json").write_text(json.dumps(world, indent=2) + "\n")
    if args.json:
        print_json({
            "status": "affirming" if good else "none",
            "policy": world["policy"],
            "cases": [{"title": c.title, "expected": c.expected, "status": c.result.status,
                       "decision": c.result.decision.explain(), "relying_party_verified": c.verified_status,
                       "votes_reverified": c.reverified} for c in cases],
        })
        return 0 if good else 5
    print(f"rats-federation demo: local PSA appraisers run by {', '.join(OPERATORS)}; quorum {world['policy']}")
    print("an endorser signed a CoRIM (device key, firmware reference values, build-provenance link);")
    print("every verifier checks it, every vote is checked by the federation, every result by the relying party.\n")
    for c in cases:
        mark = "ok " if c.result.status == c.expected == c.verified_status else "BAD"
        print(f"  [{mark}] {c.title:<55} {c.result.status}")
        print(f"        {c.result.decision.explain()}")
    print(f"\n{sum(c.reverified for c in cases)}/{len(cases)} combined results verified by the relying party, "
          "every embedded vote re-verified under its verifier's own key")
    if args.out:
        print(f"tokens and public keys written to {args.out}")
    return 0 if good else 5


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("demo", help="run a whole federation on embedded defaults")
    p.add_argument("--out", help="write the combined results and public keys to this folder")
    p.add_argument("--json", action="store_true", help="one JSON object on stdout")
    p.set_defaults(func=_run)
