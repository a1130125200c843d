"""JWS compact serialization, verified on the project's algorithm table (no JOSE library).

Why not reuse pyjwt here: evidence JWTs are verified under an attester key from endorsements,
with the same allow-list, ``kid``/``x5c`` handling and raw ``r || s`` ECDSA as COSE; going
through :mod:`federation.algorithms` directly keeps one rule set for both envelopes. Header
rules: ``alg`` must be allow-listed for the key (``none`` and HMAC never are); ``crit`` and
``b64: false`` are refused; key-bearing headers (``jwk``, ``jku``, ``x5u``) are ignored; ``kid``
is a string or absent; a detached (empty) payload segment is refused.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from federation.algorithms import Algorithm, by_name, raw_sign, raw_verify
from federation.ear.token import decode_json
from federation.errors import BadSignatureError, MalformedError, VerificationError
from federation.keys import SigningKey, TrustAnchor, VerificationKey, b64url_decode, b64url_encode

__all__ = ["Jws", "parse", "sign", "verify"]


@dataclass(frozen=True, slots=True)
class Jws:
    """A parsed (not yet verified) compact JWS."""

    header: Mapping[str, Any]
    payload: bytes
    signing_input: bytes
    signature: bytes
    algorithm: Algorithm


def parse(data: bytes, where: str, max_size: int) -> Jws:
    if len(data) > max_size:
        raise MalformedError(f"{where}: token of {len(data)} bytes exceeds {max_size}")
    parts = data.strip().split(b".")
    if len(parts) != 3:
        raise MalformedError(f"{where}: a JWT has three dot-separated parts")
    if not parts[1]:
        raise MalformedError(f"{where}: detached payloads (an empty payload segment) are not accepted")
    raw = [_canonical_b64url(p, where) for p in parts]
    header, payload, signature = decode_json(raw[0]), raw[1], raw[2]
    if not isinstance(header, dict):
        raise MalformedError(f"{where}: JOSE header is not an object")
    if "crit" in header:
        raise VerificationError(f"{where}: critical header parameters are not supported")
    if header.get("b64", True) is not True:
        raise MalformedError(f"{where}: unencoded payloads (b64: false) are not accepted")
    if "kid" in header and not isinstance(header["kid"], str):
        raise MalformedError(f"{where}: kid must be a string")
    return Jws(header, payload, parts[0] + b"." + parts[1], signature, by_name(header.get("alg")))


def _canonical_b64url(part: bytes, where: str) -> bytes:
    """Base64url that re-encodes to itself: stray low bits in the last character would let two
    spellings carry one signature, so a changed token could still verify."""
    try:
        raw = b64url_decode(part)
    except MalformedError as exc:
        raise MalformedError(f"{where}: {exc.detail}") from exc
    if b64url_encode(raw).encode("ascii") != part:
        raise MalformedError(f"{where}: base64url is not in canonical form (no padding, no stray bits)")
    return raw


def _x5c(header: Mapping[str, Any], where: str) -> list[bytes] | None:
    chain = header.get("x5c")
    if chain is None:
        return None
    if not isinstance(chain, list) or not all(isinstance(c, str) for c in chain):
        raise MalformedError(f"{where}: x5c must be an array of base64 strings")
    try:
        return [base64.b64decode(c, validate=True) for c in chain]
    except (binascii.Error, ValueError) as exc:
        raise MalformedError(f"{where}: x5c is not base64") from exc


def verify(jws: Jws, anchor: TrustAnchor, now: datetime, where: str) -> VerificationKey:
    """Return the configured key that made the signature; raise otherwise."""
    kid = jws.header.get("kid")  # a string or absent (checked by parse)
    candidates = anchor.candidates(jws.algorithm.name, kid, _x5c(jws.header, where), now)
    for key in candidates:
        try:
            raw_verify(jws.algorithm, key.key, jws.signing_input, jws.signature)
        except BadSignatureError:
            continue
        return key
    raise BadSignatureError(f"{where}: signature does not verify under the configured key(s)")


def sign(payload: Mapping[str, Any], key: SigningKey, *, typ: str) -> bytes:
    """A compact JWS over the JSON *payload*, with ``alg``, ``kid`` and ``typ`` in the header."""
    alg = by_name(key.algorithm)
    header = {"alg": alg.name, "kid": key.kid, "typ": typ}
    signing_input = (b64url_encode(json.dumps(header, separators=(",", ":")).encode()) + "."
                     + b64url_encode(json.dumps(payload, separators=(",", ":")).encode())).encode("ascii")
    return signing_input + b"." + b64url_encode(raw_sign(alg, key.key, signing_input)).encode("ascii")
