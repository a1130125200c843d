"""Outcomes and votes: what each backend's participation in one appraisal came to.

Every backend ends in exactly one outcome (DESIGN §1). Only ``ok`` votes count toward a quorum;
the others are recorded with their reason, so an operator can see *why* a verifier did not count.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from .ear.model import Ear
from .errors import (
    AlgorithmError,
    BackendError,
    BadSignatureError,
    Error,
    MalformedError,
    NonceMismatchError,
    StaleError,
    UntrustedKeyError,
)

__all__ = ["Outcome", "Vote", "outcome_of"]


class Outcome(StrEnum):
    OK = "ok"
    TIMEOUT = "timeout"
    UNREACHABLE = "unreachable"
    HTTP_ERROR = "http-error"
    MALFORMED = "malformed"
    BAD_SIGNATURE = "bad-signature"
    UNTRUSTED_KEY = "untrusted-key"
    NONCE_MISMATCH = "nonce-mismatch"
    STALE = "stale"
    NOT_AWAITED = "not-awaited"
    WEAK_BINDING = "weak-binding"  # verified, but only echoed a nonce; the policy does not count that
    ERROR = "error"


# Error class -> outcome, most specific first.
_OUTCOMES: tuple[tuple[type[Error], Outcome], ...] = (
    (BadSignatureError, Outcome.BAD_SIGNATURE),
    (UntrustedKeyError, Outcome.UNTRUSTED_KEY),
    (AlgorithmError, Outcome.UNTRUSTED_KEY),
    (NonceMismatchError, Outcome.NONCE_MISMATCH),
    (StaleError, Outcome.STALE),
    (MalformedError, Outcome.MALFORMED),
)


def outcome_of(exc: BaseException) -> Outcome:
    """Map an exception to the outcome it records (unknown failures are ``error``)."""
    for cls, outcome in _OUTCOMES:
        if isinstance(exc, cls):
            return outcome
    if isinstance(exc, BackendError):
        try:
            return Outcome(exc.reason)
        except ValueError:
            return Outcome.ERROR
    if isinstance(exc, Error) and exc.reason == "verification":
        return Outcome.MALFORMED
    return Outcome.ERROR


@dataclass(frozen=True, slots=True)
class Vote:
    """One backend's recorded participation. ``ear`` is set exactly when ``outcome`` is ok."""

    backend: str
    operator: str
    kind: str
    outcome: Outcome
    ear: Ear | None = None
    detail: str | None = None
    raw: bytes | None = None  # the token as received (also for failures, when one arrived)
    media_type: str | None = None
    key_thumbprint: str | None = None
    latency_ms: float | None = None
    binding: str | None = None  # federation.binding.BindingStrength of a verified result

    def __post_init__(self) -> None:
        if (self.outcome is Outcome.OK) != (self.ear is not None):
            raise ValueError("a vote carries an EAR exactly when its outcome is ok")

    @property
    def ok(self) -> bool:
        return self.outcome is Outcome.OK
