"""From a backend's raw result to a verified EAR: one way in for every result (DESIGN data path).

Normalizers are chosen by the result's media type. EARs (JWT or CWT) need only verification;
other result formats (vendor tokens) register a normalizer that verifies *and* maps their claims
to EAR. Every normalizer checks the signature under the backend's own anchor, the nonce echo and
freshness, and raises a typed error otherwise.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from federation.binding import Binding
from federation.ear.token import VerifiedEar, verify_ear
from federation.errors import MalformedError
from federation.keys import TrustAnchor

from .base import RawResult

__all__ = ["Check", "Normalizer", "checker_for", "normalize", "register_checker", "register_normalizer"]


@dataclass(frozen=True, slots=True)
class Check:
    """What a result must satisfy: the backend's anchor, this session's nonce, the time window.

    ``nonce`` is what *this* backend was sent (the session nonce, or the binding's REPORT_DATA for
    members with ``nonce = "report-data"``); ``binding`` is the session's REPORT_DATA rule, for
    checkers of results that echo REPORT_DATA; ``expect`` holds a backend's own expectations from
    its config (issuer, audience, ...), read by the checker of its kind.
    """

    anchor: TrustAnchor
    nonce: bytes | None
    now: int
    max_age: int | None = 300
    leeway: int = 60
    binding: Binding | None = None
    expect: Mapping[str, Any] = field(default_factory=dict)


Normalizer = Callable[[RawResult, Check], VerifiedEar]


def _ear(raw: RawResult, check: Check) -> VerifiedEar:
    return verify_ear(raw.token, check.anchor, now=check.now, nonce=check.nonce, max_age=check.max_age,
                      leeway=check.leeway)


_NORMALIZERS: dict[str, Normalizer] = {
    "application/eat+jwt": _ear,
    "application/eat-jwt": _ear,
    "application/jwt": _ear,
    "application/eat+cwt": _ear,
    "application/eat-cwt": _ear,
    "application/cwt": _ear,
}


# Checkers by backend kind, for result formats that are not EAR (vendor tokens): the kind, not
# the (backend-reported) media type, picks them, so a backend cannot choose a laxer checker.
_CHECKERS: dict[str, Normalizer] = {}
_BUILTIN_CHECKERS: dict[str, str] = {
    "ita": "verifiers.vendor.ita", "maa": "verifiers.vendor.maa", "google": "verifiers.vendor.google",
    "trustee": "verifiers.vendor.trustee",
}


def register_normalizer(media_type: str, normalizer: Normalizer) -> None:
    _NORMALIZERS[media_type.lower()] = normalizer


def register_checker(kind: str, checker: Normalizer) -> None:
    _CHECKERS[kind] = checker


def checker_for(kind: str) -> Normalizer | None:
    """The result checker registered for *kind* (importing a built-in one on first use), or None."""
    if kind not in _CHECKERS and kind in _BUILTIN_CHECKERS:
        importlib.import_module(_BUILTIN_CHECKERS[kind])
    return _CHECKERS.get(kind)


def normalize(raw: RawResult, check: Check, *, kind: str | None = None) -> VerifiedEar:
    """Verify *raw* and return it as EAR: by *kind*'s checker when it has one, else by media type."""
    checker = checker_for(kind) if kind is not None else None
    if checker is not None:
        return checker(raw, check)
    base = raw.media_type.split(";", 1)[0].strip().lower()
    normalizer = _NORMALIZERS.get(base)
    if normalizer is None:
        raise MalformedError(f"no normalizer for result media type {base!r:.60}")
    return normalizer(raw, check)
