"""Generic EAT evidence (RFC 9711) as CWT or JWT, in this project's EAT profile.

Theory of operation. One claims table (below) names each claim's CBOR key and JSON name and
how it reads and writes in either serialization; :func:`decode_eat` picks the envelope (a JWS
compact string, or a COSE_Sign1 optionally inside CWT tag 61), reads the claims through the
table and returns a validated :class:`EatClaims`. :func:`verify_eat` also checks the signature
under the attester key the caller supplies (e.g. from CoRIM attest-key triples) and ``exp`` /
``nbf`` against the caller's ``now``.

The profile (``PROFILE``, carried in ``eat_profile``; a token without the claim is read under
it, a token naming another profile is refused):

* ``eat_nonce`` (10) is mandatory: a byte string of 8..64 bytes, or an array of at least two.
  In JWTs each nonce is the base64url text of those bytes (RFC 9711 leaves JSON nonces opaque
  text; fixing the encoding lets one session nonce be compared in both serializations).
* ``ueid`` (256, 7..33 bytes), ``oemid`` (258: PEN int, 3-byte IEEE or 16-byte random id),
  ``hwmodel`` (259, 1..32 bytes), ``swname`` (270), ``swversion`` (271, ``[text, ? scheme]``),
  ``iat``/``nbf``/``exp`` (6/5/4, integer NumericDate) are optional, as in RFC 9711.
* ``measurements`` (273) entries must be measured components (Content-Format 295 CBOR or 296
  JSON, :mod:`.measured_component`); other formats are refused rather than ignored, so a
  verifier never affirms what it could not read. JSON bytes are base64url throughout.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from federation import cbor, cose
from federation.ear.token import decode_json
from federation.errors import Error, MalformedError, StaleError
from federation.keys import SigningKey, TrustAnchor, VerificationKey, b64url_encode

from . import _jws, _sign1
from ._claims import b64url, blob, fail, integer, text
from .measured_component import MeasuredComponent, Version

__all__ = [
    "CWT_MEDIA_TYPE",
    "FIELDS",
    "JWT_MEDIA_TYPE",
    "PROFILE",
    "EatClaims",
    "EatToken",
    "Format",
    "MeasuredComponent",
    "Version",
    "decode_eat",
    "encode_eat",
    "sniff",
    "verify_eat",
]

PROFILE = "tag:github.com,2026:rats-federation/eat-evidence#1.0.0"
CWT_MEDIA_TYPE = "application/eat+cwt"
JWT_MEDIA_TYPE = "application/eat+jwt"
CWT_TAG = 61
MAX_TOKEN = 1 << 16  # bytes
MAX_MEASUREMENTS = 256
Format = Literal["cwt", "jwt"]
_WHERE = "eat"


def _bytes_in(raw: Any, claim: str, js: bool, sizes: range | tuple[int, ...]) -> bytes:
    return blob(b64url(raw, claim) if js else raw, claim, sizes)


def _bytes_out(value: bytes, js: bool) -> Any:
    return b64url_encode(value) if js else value


def _nonces(raw: Any, claim: str, js: bool) -> tuple[bytes, ...]:
    if isinstance(raw, list):
        if len(raw) < 2:
            fail(claim, "an array of nonces must have at least two entries")
        return tuple(_bytes_in(n, f"{claim}[{i}]", js, range(8, 65)) for i, n in enumerate(raw))
    return (_bytes_in(raw, claim, js, range(8, 65)),)


def _nonces_out(value: tuple[bytes, ...], js: bool) -> Any:
    out = [_bytes_out(n, js) for n in value]
    return out[0] if len(out) == 1 else out


def _oemid(raw: Any, claim: str, js: bool) -> int | bytes:
    if isinstance(raw, int) and not isinstance(raw, bool):
        return integer(raw, claim, 0, (1 << 64) - 1)
    return _bytes_in(raw, claim, js, (3, 16))


def _profile(raw: Any, claim: str, js: bool) -> str:
    if text(raw, claim) != PROFILE:
        fail(claim, f"{raw!r:.60} is not this verifier's EAT profile ({PROFILE})")
    return str(raw)


def _measurements(raw: Any, claim: str, js: bool) -> tuple[MeasuredComponent, ...]:
    if not isinstance(raw, list) or not 1 <= len(raw) <= MAX_MEASUREMENTS:
        fail(claim, f"must be an array of 1..{MAX_MEASUREMENTS} entries")
    return tuple(MeasuredComponent.from_measurement(m, f"{claim}[{i}]", json_token=js) for i, m in enumerate(raw))


def _time(raw: Any, claim: str, js: bool) -> int:
    return integer(raw, claim, 0, (1 << 53) - 1)


def _same(value: Any, js: bool) -> Any:
    return value


@dataclass(frozen=True, slots=True)
class _Field:
    """One claim: its CBOR key, JSON name, field, reader and writer (both take ``js``: JSON?)."""

    key: int
    name: str
    attr: str
    read: Callable[[Any, str, bool], Any]
    emit: Callable[[Any, bool], Any] = _same
    required: bool = False


FIELDS: tuple[_Field, ...] = (
    _Field(10, "eat_nonce", "nonces", _nonces, _nonces_out, required=True),
    _Field(265, "eat_profile", "profile", _profile),
    _Field(256, "ueid", "ueid", lambda r, c, js: _bytes_in(r, c, js, range(7, 34)), _bytes_out),
    _Field(258, "oemid", "oemid", _oemid, lambda v, js: v if isinstance(v, int) else _bytes_out(v, js)),
    _Field(259, "hwmodel", "hwmodel", lambda r, c, js: _bytes_in(r, c, js, range(1, 33)), _bytes_out),
    _Field(270, "swname", "swname", lambda r, c, js: text(r, c)),
    _Field(271, "swversion", "swversion", lambda r, c, js: Version.read(r, c), lambda v, js: v.wire()),
    _Field(273, "measurements", "measurements", _measurements,
           lambda v, js: [m.to_measurement(json_token=js) for m in v]),
    _Field(6, "iat", "iat", _time),
    _Field(5, "nbf", "nbf", _time),
    _Field(4, "exp", "exp", _time),
)


@dataclass(frozen=True, slots=True)
class EatClaims:
    """The validated claims of an EAT in this profile; valid once built."""

    nonces: tuple[bytes, ...]
    profile: str | None = PROFILE
    ueid: bytes | None = None
    oemid: int | bytes | None = None
    hwmodel: bytes | None = None
    swname: str | None = None
    swversion: Version | None = None
    measurements: tuple[MeasuredComponent, ...] = ()
    iat: int | None = None
    nbf: int | None = None
    exp: int | None = None

    def __post_init__(self) -> None:
        _check(self.to_claims(json_token=False), json_token=False)

    @property
    def nonce(self) -> bytes:
        """The nonce, when the token carries exactly one (the usual case)."""
        if len(self.nonces) != 1:
            raise MalformedError(f"{_WHERE}: eat_nonce: {len(self.nonces)} nonces, want exactly 1")
        return self.nonces[0]

    def to_claims(self, *, json_token: bool) -> dict[Any, Any]:
        """The claims-set as signed: integer keys (CWT) or JSON names (JWT)."""
        out: dict[Any, Any] = {}
        for f in FIELDS:
            value = getattr(self, f.attr)
            if value is not None and value != ():
                out[f.name if json_token else f.key] = f.emit(value, json_token)
        return out


@dataclass(frozen=True, slots=True)
class EatToken:
    """A decoded EAT: its claims, the envelope it came in and the signature algorithm."""

    claims: EatClaims
    format: Format
    algorithm: str


def _check(raw: Any, *, json_token: bool) -> dict[str, Any]:
    if not isinstance(raw, Mapping):
        fail(_WHERE, "claims-set must be a map")
    missing = [f.name for f in FIELDS if f.required and (f.name if json_token else f.key) not in raw]
    if missing:
        fail(_WHERE, f"missing mandatory claim(s): {', '.join(missing)}")
    args: dict[str, Any] = {}
    for f in FIELDS:
        label = f.name if json_token else f.key
        if label in raw:
            args[f.attr] = f.read(raw[label], f"{_WHERE}: {f.name}", json_token)
    args.setdefault("profile", None)
    return args


def _format(token: bytes) -> Format:
    """A JWS compact string starts with the base64url of '{"' (no CBOR EAT starts with 'ey')."""
    return "jwt" if token[:2] == b"ey" else "cwt"


def _cwt_item(token: bytes) -> Any:
    """The COSE_Sign1 item, unwrapped from the optional CWT tag (61)."""
    try:
        item = cbor.loads(token, max_size=MAX_TOKEN, max_depth=_sign1.MAX_CLAIMS_DEPTH)
    except MalformedError as exc:
        raise MalformedError(f"{_WHERE}: {exc.detail}") from exc
    return item.value if isinstance(item, cbor.CBORTag) and item.tag == CWT_TAG else item


def decode_eat(token: bytes) -> EatToken:
    """Parse an EAT (CWT or JWT) and validate its claims; the signature is NOT checked."""
    if _format(token) == "jwt":
        jws = _jws.parse(token, _WHERE, MAX_TOKEN)
        claims = EatClaims(**_check(decode_json(jws.payload), json_token=True))
        return EatToken(claims, "jwt", jws.algorithm.name)
    msg = _sign1.decode_tagged(_cwt_item(token), _WHERE, MAX_TOKEN)
    claims = EatClaims(**_check(_sign1.claims_map(msg, _WHERE, MAX_TOKEN), json_token=False))
    return EatToken(claims, "cwt", msg.algorithm.name)


def verify_eat(token: bytes, key: VerificationKey | TrustAnchor, now: datetime) -> EatToken:
    """Decode, check the signature under *key* (the attester key) and ``exp``/``nbf`` at *now*.

    Raises :class:`~federation.errors.MalformedError`, a
    :class:`~federation.errors.VerificationError` for the signature, or
    :class:`~federation.errors.StaleError` for a token outside its validity window.
    """
    decoded = decode_eat(token)
    if decoded.format == "jwt":
        _jws.verify(_jws.parse(token, _WHERE, MAX_TOKEN), _sign1.anchor_of(key), now, _WHERE)
    else:
        _sign1.verify(_cwt_item(token), key, now, _WHERE, MAX_TOKEN)
    at = int(now.timestamp())
    if decoded.claims.exp is not None and at >= decoded.claims.exp:
        raise StaleError(f"{_WHERE}: expired at {decoded.claims.exp} (now {at})")
    if decoded.claims.nbf is not None and at < decoded.claims.nbf:
        raise StaleError(f"{_WHERE}: not valid before {decoded.claims.nbf} (now {at})")
    return decoded


def encode_eat(claims: EatClaims, key: SigningKey, *, fmt: Format = "cwt") -> bytes:
    """Sign *claims* as a CWT (tagged COSE_Sign1) or a JWT (compact JWS, ``typ`` eat+jwt)."""
    if fmt == "jwt":
        return _jws.sign(claims.to_claims(json_token=True), key, typ="eat+jwt")
    return cose.sign1(cbor.dumps(claims.to_claims(json_token=False)), key)


def _media_type(base: str, claims: Mapping[Any, Any], label: Any) -> str:
    profile = claims.get(label)
    return f'{base}; eat_profile="{profile}"' if isinstance(profile, str) and '"' not in profile else base


def sniff(data: bytes) -> str | None:
    """``application/eat+jwt`` / ``application/eat+cwt`` (with ``eat_profile``) for EAT claims-sets.

    A claims-set counts as an EAT when it has a nonce, a UEID or a profile claim.
    """
    try:
        if _format(data) == "jwt":
            payload = decode_json(_jws.parse(data, _WHERE, MAX_TOKEN).payload)
            if isinstance(payload, dict) and {"eat_nonce", "ueid", "eat_profile"} & set(payload):
                return _media_type(JWT_MEDIA_TYPE, payload, "eat_profile")
            return None
        if data[:1] not in (b"\xd2", b"\xd8"):
            return None
        claims = _sign1.claims_map(_sign1.decode_tagged(_cwt_item(data), _WHERE, MAX_TOKEN), _WHERE, MAX_TOKEN)
    except Error:  # any failure means "not mine"
        return None
    if {10, 256, 265} & set(claims):
        return _media_type(CWT_MEDIA_TYPE, claims, 265)
    return None
