"""COSE_Sign1 plumbing shared by the CBOR token parsers (PSA, CCA, EAT CWT).

Why a helper: every scheme decodes the same way (bounded input, tagged COSE_Sign1, attached
payload, payload a CBOR map) and verifies the same way (an explicit key or trust anchor, never a
key named by the token), and every failure must say which scheme's token was at fault.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from federation import cbor, cose
from federation.errors import Error, MalformedError
from federation.keys import TrustAnchor, VerificationKey

__all__ = ["MAX_CLAIMS_DEPTH", "anchor_of", "claims_map", "decode_tagged", "verify"]

MAX_CLAIMS_DEPTH = 8  # nesting in a claims map (map -> array -> component map -> ...)


def anchor_of(key: VerificationKey | TrustAnchor) -> TrustAnchor:
    """Accept a single key where a trust anchor is expected (the common case for attestation keys)."""
    return key if isinstance(key, TrustAnchor) else TrustAnchor(keys=(key,))


def _prefixed(where: str, exc: Error) -> Error:
    return type(exc)(f"{where}: {exc.detail}") if type(exc).__init__ is Error.__init__ else exc


def decode_tagged(data: Any, where: str, max_size: int) -> cose.Sign1:
    """A tagged (18) COSE_Sign1 with an attached payload, from bytes or a decoded CBOR item."""
    try:
        msg = cose.decode_sign1(data, max_size=max_size, require_tag=True)
    except Error as exc:
        raise _prefixed(where, exc) from exc
    if msg.payload is None:
        raise MalformedError(f"{where}: detached payloads are not supported")
    return msg


def claims_map(msg: cose.Sign1, where: str, max_size: int) -> dict[Any, Any]:
    """The payload of *msg* decoded as a CBOR map."""
    try:
        claims = cbor.loads(msg.payload or b"", max_size=max_size, max_depth=MAX_CLAIMS_DEPTH)
    except MalformedError as exc:
        raise MalformedError(f"{where}: payload: {exc.detail}") from exc
    if not isinstance(claims, dict):
        raise MalformedError(f"{where}: payload is not a claims map")
    if not all(isinstance(k, int | str) and not isinstance(k, bool) for k in claims):
        # RFC 8392 claim keys are ints or text: a tagged key must not sit beside the claim it mimics
        raise MalformedError(f"{where}: claim keys must be integers or text strings")
    return claims


def verify(data: Any, key: VerificationKey | TrustAnchor, now: datetime, where: str,
           max_size: int) -> VerificationKey:
    """Check the signature of a COSE_Sign1 under *key*; return the key that verified it."""
    try:
        _, used = cose.verify_sign1(data, anchor_of(key), now, max_size=max_size)
    except Error as exc:
        raise _prefixed(where, exc) from exc
    return used
