"""``kind = "local"``: the local appraiser as a federation backend that signs its own EAR.

It issues a signed EAR like any remote verifier (its own key), and the federation checks it on
the same path as every other result: one way in for results, whatever their origin. Appraisal is
CPU work on the event loop (parsing plus one or two signature checks, well under a millisecond);
loading CoRIMs is file I/O done once, at construction.
"""

from __future__ import annotations

import time
from dataclasses import replace
from datetime import UTC, datetime
from typing import Literal

from federation.ear.model import Spelling
from federation.ear.token import encode_ear
from federation.errors import ConfigError, Error
from federation.evidence import Evidence
from federation.keys import SigningKey, TrustAnchor, load_signing_key, load_trust_anchor

from ..base import RawResult, appraisal_time
from ..registry import Kind, VerifierSpec, register
from .appraiser import LocalAppraiser
from .collateral.base import CollateralStore, EmptyStore, resolve
from .corim.store import ReferenceValueStore, load_paths
from .schemes import BUILTIN

__all__ = ["LocalBackend"]


class LocalBackend:
    kind = "local"

    def __init__(self, name: str, operator: str, appraiser: LocalAppraiser, key: SigningKey, *,
                 fmt: Literal["jwt", "cwt"] = "jwt", spelling: Spelling = Spelling.VERAISON,
                 at: int | None = None, collateral: CollateralStore | None = None) -> None:
        self.name = name
        self.operator = operator
        self.appraiser = appraiser
        self.key = key
        self.fmt: Literal["jwt", "cwt"] = fmt
        self.spelling = spelling
        self.at = at
        self.collateral: CollateralStore = collateral if collateral is not None else EmptyStore()

    @property
    def public_anchor(self) -> TrustAnchor:
        return TrustAnchor((self.key.public,))

    def times(self) -> tuple[datetime, int]:
        """(time for validity checks, iat): the configured ``at`` governs validity only; a time
        the federation fixed for this appraisal governs both; otherwise the clock."""
        fixed = appraisal_time.get()
        issued = fixed if fixed is not None else int(time.time())
        check = self.at if self.at is not None else issued
        return datetime.fromtimestamp(check, UTC), issued

    async def appraise(self, evidence: Evidence, nonce: bytes, deadline: float) -> RawResult:
        now, issued = self.times()
        found = await resolve(self.collateral, self.appraiser.collateral_requests(evidence))
        ear = self.appraiser.appraise(evidence, nonce, now, issued_at=issued, collateral=found)
        if self.spelling is not Spelling.VERAISON:
            ear = replace(ear, profile=self.spelling.profile)  # claim names and profile go together
        token = encode_ear(ear, self.key, fmt=self.fmt, spelling=self.spelling)
        return RawResult(token, "application/eat+jwt" if self.fmt == "jwt" else "application/eat+cwt")


def _time(value: object, spec: VerifierSpec) -> int | None:
    if value is None:
        return None
    if isinstance(value, int):
        return value
    try:
        return int(datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp())
    except ValueError as exc:
        raise ConfigError("not an ISO 8601 time", key=f"verifiers.{spec.name}.at", file=spec.source) from exc


def from_spec(spec: VerifierSpec) -> LocalBackend:
    o = spec.options
    at = _time(o.get("at"), spec)
    now = datetime.fromtimestamp(at if at is not None else time.time(), UTC)
    try:
        anchors = [load_trust_anchor(spec.path(p)) for p in o.get("endorsers", [])]
        store: ReferenceValueStore = load_paths([spec.path(p) for p in o.get("corim", [])], anchors, now,
                                                trust_unsigned=bool(o.get("trust_unsigned", False)))
    except ConfigError:
        raise
    except Error as exc:
        raise ConfigError(str(exc), key=f"verifiers.{spec.name}.corim", file=spec.source) from exc
    names = o.get("schemes", sorted(BUILTIN))
    unknown = [n for n in names if n not in BUILTIN]
    if unknown:
        raise ConfigError(f"unknown scheme(s) {', '.join(unknown)}; known: {', '.join(sorted(BUILTIN))}",
                          key=f"verifiers.{spec.name}.schemes", file=spec.source)
    appraiser = LocalAppraiser([BUILTIN[n] for n in names], store, build=f"ratsfed-local ({spec.name})",
                               annotate=bool(o.get("annotate", True)))
    key = load_signing_key(spec.path(o["signing_key"])) if "signing_key" in o else SigningKey.generate("ES256")
    fmt = o.get("result_format", "jwt")
    if fmt not in ("jwt", "cwt"):
        raise ConfigError("must be jwt or cwt", key=f"verifiers.{spec.name}.result_format", file=spec.source)
    return LocalBackend(spec.name, spec.operator, appraiser, key, fmt=fmt, at=at)


register(Kind("local", from_spec, {
    "corim": list, "endorsers": list, "trust_unsigned": bool, "signing_key": str, "at": (str, int),
    "schemes": list, "annotate": bool, "result_format": str,
}))
