"""Signed EARs: JWT (via pyjwt) and CWT (COSE_Sign1 via :mod:`federation.cose`).

Verification order follows "couldn't verify is not verified false": bounds and header checks,
then the signature under the caller's trust anchor, then the claims, then time and nonce, each
failure a typed error. The time is an argument (``now``); nothing here reads the clock.
Header rules: ``alg`` must be allow-listed for the key (``none`` and HMAC never are); ``crit``,
``b64: false`` and key-bearing headers (``jwk``, ``jku``, ``x5u``) are never honoured; ``kid`` is
a string or absent; a detached (empty) payload segment is refused. The attacks these rules answer
are catalogued, with their tests, in ``docs/attacks.md``.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

import jwt as pyjwt

from .. import cbor, cose
from ..algorithms import by_name, check_key, raw_verify
from ..binding import BindingStrength
from ..errors import BadSignatureError, MalformedError, NonceMismatchError, StaleError, VerificationError
from ..keys import SigningKey, TrustAnchor, VerificationKey, b64url_decode
from .codec import from_cbor_claims, from_json_claims, nonce_matches, to_cbor_claims, to_json_claims
from .model import Ear, Spelling

__all__ = [
    "DEFAULT_MAX_TOKEN",
    "Format",
    "VerifiedEar",
    "jwt_header",
    "verify_jwt",
    "decode_json",
    "detect_format",
    "encode_ear",
    "peek_claims",
    "verify_ear",
]

Format = Literal["jwt", "cwt"]
DEFAULT_MAX_TOKEN = 1 << 20  # bytes
CWT_TAG = 61


@dataclass(frozen=True, slots=True)
class VerifiedEar:
    """An EAR whose signature verified under a configured key; freshness checked as asked."""

    ear: Ear
    format: Format
    key: VerificationKey
    algorithm: str
    raw: bytes
    claims: Mapping[Any, Any]
    # How the result is tied to the session (federation.binding); vendor checkers may say less.
    binding: BindingStrength = BindingStrength.EVIDENCE


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in pairs:
        if k in out:
            raise MalformedError(f"json: duplicate key {k!r:.40}")
        out[k] = v
    return out


def _no_constant(name: str) -> Any:
    raise MalformedError(f"json: {name} is not allowed")


def decode_json(data: bytes | str) -> Any:
    """Strict JSON for untrusted input: no duplicate keys, no NaN/Infinity, bounded nesting."""
    try:
        return json.loads(data, object_pairs_hook=_no_duplicates, parse_constant=_no_constant)
    except (ValueError, RecursionError) as exc:
        if isinstance(exc, MalformedError):
            raise
        raise MalformedError(f"json: {type(exc).__name__}") from exc


def detect_format(token: bytes | str) -> Format:
    data = token.encode("ascii", "replace") if isinstance(token, str) else token
    head = data.lstrip()[:2]
    if head == b"ey" and data.count(b".") == 2:
        return "jwt"
    return "cwt"


def _as_bytes(token: bytes | str) -> bytes:
    return token.strip().encode("ascii", "replace") if isinstance(token, str) else bytes(token)


def _jwt_split(data: bytes) -> tuple[dict[str, Any], bytes, bytes, bytes]:
    """(header, payload, signing input, signature) of a JWS compact serialization, strictly."""
    parts = data.strip().split(b".")
    if len(parts) != 3:
        raise MalformedError("jwt: must have three parts (JWS compact serialization)")
    if any(p.endswith(b"=") for p in parts):  # RFC 7515 §2: no padding; padded variants are malleable
        raise MalformedError("jwt: base64url padding is not allowed")
    if not parts[1]:  # RFC 7515 App. F: the payload would come from elsewhere; a swap would verify
        raise MalformedError("jwt: detached payloads (an empty payload segment) are not accepted")
    header = decode_json(b64url_decode(parts[0]))
    if not isinstance(header, dict):
        raise MalformedError("jwt: header is not an object")
    return header, b64url_decode(parts[1]), parts[0] + b"." + parts[1], b64url_decode(parts[2])


def _jwt_parts(data: bytes) -> tuple[dict[str, Any], bytes]:
    header, payload, _, _ = _jwt_split(data)
    return header, payload


def _jwt_verify(data: bytes, anchor: TrustAnchor, now: datetime) -> tuple[Any, VerificationKey, str]:
    """Verify with :func:`federation.algorithms.raw_verify` (cryptography) over the parts decoded
    once here: the JWS rules are ours (above), and a second decoder would only cost time (pyjwt's
    per-character checks were two thirds of checking a 10 KB vendor token)."""
    header, payload, signing_input, signature = _jwt_split(data)
    algorithm = by_name(header.get("alg"))
    alg = algorithm.name
    if "crit" in header:
        raise VerificationError("jwt: critical header parameters are not supported")
    if header.get("b64", True) is not True:
        raise MalformedError("jwt: unencoded payloads (b64: false) are not accepted")
    kid = header.get("kid")
    if "kid" in header and not isinstance(kid, str):  # null included
        raise MalformedError("jwt: kid must be a string")
    x5c_raw = header.get("x5c")
    x5c = None
    if x5c_raw is not None:
        if not isinstance(x5c_raw, list) or not all(isinstance(c, str) for c in x5c_raw):
            raise MalformedError("jwt: x5c must be an array of base64 strings")
        try:
            x5c = [base64.b64decode(c, validate=True) for c in x5c_raw]
        except ValueError as exc:
            raise MalformedError("jwt: x5c is not base64") from exc
    candidates = anchor.candidates(alg, kid, x5c, now)
    for key in candidates:
        check_key(algorithm, key.key)  # bad-algorithm, not malformed, for a key of the wrong type
        try:
            raw_verify(algorithm, key.key, signing_input, signature)
        except BadSignatureError:
            continue
        return decode_json(payload), key, alg
    raise BadSignatureError("jwt: signature does not verify under the configured key(s)")


def verify_jwt(token: bytes | str, anchor: TrustAnchor, *, now: datetime | int,
               max_size: int = DEFAULT_MAX_TOKEN) -> tuple[dict[str, Any], VerificationKey, str]:
    """Verify a JWS-compact JWT's signature under *anchor*; return (claims, key, alg).

    For result formats other than EAR (vendor tokens): the same header rules as EARs (no
    ``crit``, no ``b64: false``, no detached payload, padding refused, ``x5c`` only to configured
    roots at *now*); ``jwk``, ``jku`` and ``x5u`` are never used. Time claims are the caller's.
    """
    data = _as_bytes(token).strip()
    if len(data) > max_size:
        raise MalformedError(f"token of {len(data)} bytes exceeds {max_size}")
    if detect_format(data) != "jwt":
        raise MalformedError("not a JWT")
    claims, key, alg = _jwt_verify(data, anchor, _when(now))
    if not isinstance(claims, dict):
        raise MalformedError("jwt: claims are not an object")
    return claims, key, alg


def jwt_header(token: bytes | str) -> dict[str, Any]:
    """The (unverified) JOSE header: for diagnostics and for choosing nothing security-relevant."""
    return _jwt_parts(_as_bytes(token))[0]


def _unwrap_cwt(data: bytes, max_size: int) -> Any:
    item = cbor.loads(data, max_size=max_size)
    if isinstance(item, cbor.CBORTag) and item.tag == CWT_TAG:
        item = item.value
    return item


def peek_claims(token: bytes | str, *, max_size: int = DEFAULT_MAX_TOKEN) -> tuple[Format, Any]:
    """Decode the claims *without verifying*: for display and diagnostics only."""
    data = _as_bytes(token)
    if len(data) > max_size:
        raise MalformedError(f"token of {len(data)} bytes exceeds {max_size}")
    fmt = detect_format(data)
    if fmt == "jwt":
        return fmt, decode_json(_jwt_parts(data)[1])
    msg = cose.decode_sign1(_unwrap_cwt(data, max_size))
    return fmt, cbor.loads(msg.payload or b"", max_size=max_size)


def _epoch(now: datetime | int) -> int:
    return now if isinstance(now, int) else int(now.timestamp())


def _when(now: datetime | int) -> datetime:
    return datetime.fromtimestamp(now, UTC) if isinstance(now, int) else now


def verify_ear(
    token: bytes | str,
    anchor: TrustAnchor,
    *,
    now: datetime | int,
    nonce: bytes | None = None,
    max_age: int | None = None,
    leeway: int = 60,
    max_size: int = DEFAULT_MAX_TOKEN,
) -> VerifiedEar:
    """Verify a JWT or CWT EAR under *anchor* at *now*; return it or raise a typed error.

    ``nonce``: the EAR must echo it as ``eat_nonce``. ``max_age``: seconds ``iat`` may lie in
    the past. ``iat`` may lie at most ``leeway`` seconds in the future; ``exp``/``nbf`` honoured.
    """
    data = _as_bytes(token)
    if len(data) > max_size:
        raise MalformedError(f"token of {len(data)} bytes exceeds {max_size}")
    when, t = _when(now), _epoch(now)
    fmt = detect_format(data)
    claims: Any
    if fmt == "jwt":
        data = data.strip()  # a token file's trailing newline is not part of the JWS
        claims, key, alg = _jwt_verify(data, anchor, when)
        ear = from_json_claims(claims)
        nbf = claims.get("nbf") if isinstance(claims, dict) else None
    else:
        msg, key = cose.verify_sign1(_unwrap_cwt(data, max_size), anchor, when, max_size=max_size)
        alg = msg.algorithm.name
        claims = cbor.loads(msg.payload or b"", max_size=max_size)
        ear = from_cbor_claims(claims)
        nbf = claims.get(5) if isinstance(claims, dict) else None
    if nbf is not None and (not isinstance(nbf, int) or isinstance(nbf, bool)):
        raise MalformedError("ear: nbf must be an integer NumericDate")  # never silently ignored
    if ear.iat > t + leeway:
        raise StaleError(f"issued in the future (iat {ear.iat} > now {t})")
    if ear.exp is not None and t >= ear.exp + leeway:
        raise StaleError(f"expired at {ear.exp} (now {t})")
    if isinstance(nbf, int) and t + leeway < nbf:
        raise StaleError(f"not valid before {nbf} (now {t})")
    if max_age is not None and t - ear.iat > max_age:
        raise StaleError(f"issued {t - ear.iat}s ago, more than {max_age}s")
    if nonce is not None and not nonce_matches(ear.nonce, nonce):
        raise NonceMismatchError("eat_nonce does not echo this session's nonce")
    return VerifiedEar(ear, fmt, key, alg, data, claims)


def encode_ear(ear: Ear, key: SigningKey, *, fmt: Format = "jwt", spelling: Spelling = Spelling.VERAISON
               ) -> bytes:
    """Sign *ear* as a JWT (compact, ASCII bytes) or a CWT (tagged COSE_Sign1)."""
    if fmt == "jwt":
        claims = to_json_claims(ear, spelling)
        text = pyjwt.encode(claims, key.key, algorithm=key.algorithm, headers={"kid": key.kid, "typ": "JWT"})
        return text.encode("ascii")
    return cose.sign1(cbor.dumps(to_cbor_claims(ear, spelling)), key)
