"""Verify a CoRIM and decide whether it may be used at ``now``; the result is a :class:`VerifiedCorim`.

Theory of operation, in the order the checks run (a forged CoRIM reports ``bad-signature``
before anything about its dates, since its dates are not yet known to be anyone's):

1. decode the COSE_Sign1 envelope (bounded; header rules of the draft's "Protected Header Map");
2. verify the signature under one of the configured endorser :class:`TrustAnchor` s (a key,
   or an X.509 root for the ``x5chain`` header 33, validated at ``now``); a key named by the
   message itself is never trusted (DESIGN §9);
3. enforce the signature validity (``corim-meta`` / CWT ``nbf``, ``exp``) at ``now``;
4. decode the CoRIM payload and enforce its ``rim-validity`` at ``now``.

Expired or not-yet-valid → :class:`StaleError`. An unsigned CoRIM is usable only when the
operator says it is trusted local input (:func:`accept_unsigned`): it then carries no signer and
no key thumbprint, and its ``rim-validity`` still applies. Time is always the caller's ``now``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from federation import cose
from federation.errors import (
    BadSignatureError,
    StaleError,
    UntrustedKeyError,
    UsageError,
    VerificationError,
)
from federation.keys import TrustAnchor

from .decode import MAX_CORIM_SIZE, decode_corim, decode_envelope, is_signed, read_meta, signed_content
from .model import Corim, Validity

__all__ = ["VerifiedCorim", "accept_unsigned", "check_validity", "verify_corim", "verify_signed_corim"]


@dataclass(frozen=True, slots=True)
class VerifiedCorim:
    """A CoRIM whose authority is established: signed under a configured anchor, or trusted local input.

    ``signer_name`` and ``key_thumbprint`` (RFC 7638, of the key that verified) are None for
    unsigned local input. ``validity`` is the window in which it may be used: the intersection
    of the signature validity and the ``rim-validity``. ``sha256`` names the exact input bytes.
    """

    corim: Corim
    signer_name: str | None
    key_thumbprint: str | None
    validity: Validity | None
    sha256: str
    signer_uri: str | None = None

    @property
    def signed(self) -> bool:
        return self.key_thumbprint is not None


def _require_aware(now: datetime) -> None:
    if now.tzinfo is None or now.utcoffset() is None:
        raise UsageError("now must be a timezone-aware datetime")


def check_validity(validity: Validity | None, now: datetime, what: str) -> None:
    """Raise :class:`StaleError` unless *now* lies in *validity* (ends inclusive)."""
    _require_aware(now)
    if validity is None:
        return
    if validity.not_before is not None and now < validity.not_before:
        raise StaleError(f"{what} is not valid before {validity.not_before.isoformat()}")
    if validity.not_after is not None and now > validity.not_after:
        raise StaleError(f"{what} expired at {validity.not_after.isoformat()}")


def _intersect(a: Validity | None, b: Validity | None) -> Validity | None:
    if a is None or b is None:
        return a or b
    starts = [t for t in (a.not_before, b.not_before) if t is not None]
    ends = [t for t in (a.not_after, b.not_after) if t is not None]
    return Validity(max(starts) if starts else None, min(ends) if ends else None)


def _verify_envelope(item: Any, anchors: Sequence[TrustAnchor], now: datetime) -> tuple[cose.Sign1, str]:
    """The first anchor under which the signature verifies wins; otherwise the most telling error."""
    if not anchors:
        raise UntrustedKeyError("signed corim: no endorser trust anchor is configured")
    failures: list[VerificationError] = []
    for anchor in anchors:
        try:
            msg, key = cose.verify_sign1(item, anchor, now)
        except VerificationError as exc:  # untrusted key, bad algorithm, bad signature, bad chain
            failures.append(exc)
            continue
        return msg, key.thumbprint
    bad = [f for f in failures if isinstance(f, BadSignatureError)]
    raise (bad or failures)[0]


def verify_signed_corim(data: bytes, anchors: Sequence[TrustAnchor], now: datetime, *,
                        max_size: int = MAX_CORIM_SIZE) -> VerifiedCorim:
    """Verify a signed CoRIM (COSE_Sign1, tag 18) at *now* under one of *anchors*.

    Raises :class:`MalformedError` (bad structure), :class:`BadSignatureError`,
    :class:`UntrustedKeyError` / :class:`AlgorithmError` (no configured key may have signed it),
    or :class:`StaleError` (signature validity or rim-validity does not cover *now*).
    """
    _require_aware(now)
    item, _ = decode_envelope(data, max_size=max_size)
    sign1, thumbprint = _verify_envelope(item, anchors, now)
    meta = read_meta(sign1.protected)
    check_validity(meta.signature_validity, now, f"signed corim (signer {meta.signer_name!r}) signature")
    _, corim = signed_content(sign1, max_size=max_size)
    check_validity(corim.rim_validity, now, f"corim {corim.id_text!r} rim-validity")
    return VerifiedCorim(
        corim=corim,
        signer_name=meta.signer_name,
        key_thumbprint=thumbprint,
        validity=_intersect(meta.signature_validity, corim.rim_validity),
        sha256=hashlib.sha256(data).hexdigest(),
        signer_uri=meta.signer_uri,
    )


def accept_unsigned(data: bytes | Corim, now: datetime, *, max_size: int = MAX_CORIM_SIZE) -> VerifiedCorim:
    """Accept an unsigned CoRIM the operator has marked as trusted local input.

    Its ``rim-validity`` is still enforced (:class:`StaleError`); it has no signer or key.
    """
    _require_aware(now)
    if isinstance(data, Corim):
        corim, digest = data, ""
    else:
        corim, digest = decode_corim(data, max_size=max_size), hashlib.sha256(data).hexdigest()
    check_validity(corim.rim_validity, now, f"corim {corim.id_text!r} rim-validity")
    return VerifiedCorim(corim, None, None, corim.rim_validity, digest)


def verify_corim(data: bytes, anchors: Sequence[TrustAnchor], now: datetime, *,
                 trust_unsigned: bool = False, max_size: int = MAX_CORIM_SIZE) -> VerifiedCorim:
    """Verify either form: signed ones under *anchors*; unsigned ones only if *trust_unsigned*.

    An unsigned CoRIM without that mark raises :class:`UntrustedKeyError`: nobody vouches for it.
    """
    if is_signed(data):
        return verify_signed_corim(data, anchors, now, max_size=max_size)
    if not trust_unsigned:
        raise UntrustedKeyError("unsigned corim: not marked as trusted local input")
    return accept_unsigned(data, now, max_size=max_size)
