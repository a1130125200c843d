"""From a backend's raw result to a verified EAR: one way in for every result (DESIGN data path).

Normalizers are chosen by the result's media type. EARs (JWT or CWT) need only verification;
other result formats (vendor tokens) register a normalizer that verifies *and* maps their claims
to EAR. Every normalizer checks the signature under the backend's own anchor, the nonce echo and
freshness, and raises a typed error otherwise.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from federation.ear.token import VerifiedEar, verify_ear
from federation.errors import MalformedError
from federation.keys import TrustAnchor

from .base import RawResult

__all__ = ["Check", "Normalizer", "normalize", "register_normalizer"]


@dataclass(frozen=True, slots=True)
class Check:
    """What a result must satisfy: the backend's anchor, this session's nonce, the time window."""

    anchor: TrustAnchor
    nonce: bytes | None
    now: int
    max_age: int | None = 300
    leeway: int = 60


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


def register_normalizer(media_type: str, normalizer: Normalizer) -> None:
    _NORMALIZERS[media_type.lower()] = normalizer


def normalize(raw: RawResult, check: Check) -> VerifiedEar:
    base = raw.media_type.split(";", 1)[0].strip().lower()
    normalizer = _NORMALIZERS.get(base)
    if normalizer is None:
        raise MalformedError(f"no normalizer for result media type {base!r:.60}")
    return normalizer(raw, check)
