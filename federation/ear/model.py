"""The EAR (draft-ietf-rats-ear) claims-set as typed, validated values.

Objects are valid once built (sigstore's rule): a decoded :class:`Ear` has a profile, an integer
``iat``, a verifier id and at least one submodule, and every appraisal's effective status is no
better than its worst trust claim (EAR §3.1), whatever the issuer wrote.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from enum import Enum
from typing import Any

from ..ar4si import Tier, TrustVector, cap_status
from ..errors import MalformedError

__all__ = ["PROFILES", "Appraisal", "Ear", "Spelling", "VerifierId"]


class Spelling(Enum):
    """Which generation of claim names to emit; both are always accepted on input."""

    VERAISON = "veraison"  # dotted names, profile tag:github.com,2023:veraison/ear (deployed today)
    DRAFT03 = "draft-03"  # underscore names, profile tag:ietf.org,2026:rats/ear#03

    @property
    def profile(self) -> str:
        return PROFILE_VERAISON if self is Spelling.VERAISON else PROFILE_DRAFT03


PROFILE_VERAISON = "tag:github.com,2023:veraison/ear"
PROFILE_TRUSTEE = "tag:github.com,2024:confidential-containers/Trustee"
PROFILE_DRAFT02 = "tag:ietf.org,2025-07:ear"
PROFILE_DRAFT03 = "tag:ietf.org,2026:rats/ear#03"
PROFILES = frozenset({PROFILE_VERAISON, PROFILE_TRUSTEE, PROFILE_DRAFT02, PROFILE_DRAFT03})


@dataclass(frozen=True, slots=True)
class VerifierId:
    developer: str
    build: str

    def __post_init__(self) -> None:
        if not isinstance(self.developer, str) or not isinstance(self.build, str):
            raise MalformedError("ear: verifier id needs text 'developer' and 'build'")


@dataclass(frozen=True, slots=True)
class Appraisal:
    """One submodule's appraisal. ``status`` is the effective (capped) status."""

    status: Tier
    trust_vector: TrustVector | None = None
    policy_ids: tuple[str, ...] = ()
    reported_status: Tier | None = None  # what the issuer wrote, when it differs from ``status``
    extensions: Mapping[str, Any] = field(default_factory=dict)  # by draft-03 name, raw values

    @classmethod
    def make(cls, reported: Tier, vector: TrustVector | None = None, policy_ids: tuple[str, ...] = (),
             extensions: Mapping[str, Any] | None = None) -> Appraisal:
        effective = cap_status(reported, vector) if vector is not None else reported
        return cls(effective, vector, policy_ids, reported if effective is not reported else None,
                   dict(extensions or {}))


@dataclass(frozen=True, slots=True)
class Ear:
    profile: str
    iat: int
    verifier_id: VerifierId
    submods: Mapping[str, Appraisal]
    exp: int | None = None
    nonce: bytes | str | None = None  # CBOR: bytes; JSON: the text as issued
    raw_evidence: bytes | None = None
    reported_status: Tier | None = None  # top-level ear_status (-03), when present
    extra: Mapping[Any, Any] = field(default_factory=dict)  # unknown/extension top-level claims (str or int keys)

    def __post_init__(self) -> None:
        if self.profile not in PROFILES:
            raise MalformedError(f"ear: unknown eat_profile {self.profile!r:.60}")
        if not self.submods:
            raise MalformedError("ear: at least one submod is required")
        for value in (self.iat, self.exp):
            if value is not None and (not isinstance(value, int) or isinstance(value, bool)):
                raise MalformedError("ear: iat/exp must be integers (floating point is not allowed)")
        if isinstance(self.nonce, bytes) and not 8 <= len(self.nonce) <= 64:
            raise MalformedError("ear: eat_nonce must be 8..64 bytes")
        if isinstance(self.nonce, str) and not 8 <= len(self.nonce) <= 88:
            raise MalformedError("ear: eat_nonce must be 8..88 characters")

    @property
    def status(self) -> Tier:
        """Overall status: the worst submodule, no better than a reported top-level status;
        contraindicated anywhere wins over ``none`` elsewhere (it is the stronger statement)."""
        statuses = [a.status for a in self.submods.values()]
        if self.reported_status is not None:
            statuses.append(self.reported_status)
        if Tier.CONTRAINDICATED in statuses:
            return Tier.CONTRAINDICATED
        return min(statuses, key=lambda t: t.rank)

    def with_extra(self, **claims: Any) -> Ear:
        return replace(self, extra={**self.extra, **claims})
