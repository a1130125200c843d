"""Measured components (draft-ietf-rats-eat-measured-component), the measurements of our EAT profile.

Why this format: EAT's ``measurements`` claim (273) is an array of ``[content-format, bytes]``
and CoSWID, its only other registered format, needs a file system to anchor to. A measured
component is just a name (with optional version), a digest (``[alg, value]``; ``alg`` an IANA
named-information id or hash name) or a raw value, optional authorities (signer key ids) and
optional 64-bit profile flags: exactly what a boot-chain measurement is, and what a CoRIM
reference triple compares against.

Both serializations are read into one :class:`MeasuredComponent`, in either carriage: CBOR
(Content-Format 295, ``bstr .cbor``) and JSON (296, text), in CBOR and in JSON EATs (where a
CBOR component travels as base64url text). Unknown map members are refused (a typo must not
silently drop the digest).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from federation import cbor
from federation.ear.token import decode_json
from federation.keys import b64url_encode

from ._claims import b64url, blob, fail, text

__all__ = ["CBOR_CONTENT_FORMAT", "JSON_CONTENT_FORMAT", "MeasuredComponent", "Version"]

CBOR_CONTENT_FORMAT = 295  # application/measured-component+cbor
JSON_CONTENT_FORMAT = 296  # application/measured-component+json
MAX_COMPONENT = 1 << 14  # bytes of one encoded component

# (CBOR key, JSON member) of each measured-component field
_ID, _DIGEST, _AUTHORITIES, _FLAGS, _RAW = 1, 2, 3, 4, 5
_JSON_NAMES: Mapping[str, int] = {"id": _ID, "digested-measurement": _DIGEST, "authorities": _AUTHORITIES,
                                  "flags": _FLAGS, "raw-measurement": _RAW}
_BYTES_IN_JSON = {_FLAGS, _RAW}

# IANA named-information: id and hash name -> digest size, for the algorithms a verifier meets.
DIGEST_SIZES: Mapping[int | str, int] = {
    1: 32, 7: 48, 8: 64,
    "sha-256": 32, "sha-384": 48, "sha-512": 64, "sha3-256": 32, "sha3-384": 48, "sha3-512": 64,
}


@dataclass(frozen=True, slots=True)
class Version:
    """A version string and its optional CoSWID version scheme (e.g. 16384 = semver)."""

    value: str
    scheme: int | str | None = None

    @classmethod
    def read(cls, raw: Any, where: str) -> Version:
        if not isinstance(raw, list) or not 1 <= len(raw) <= 2:
            fail(where, "must be [version, ? scheme]")
        scheme = raw[1] if len(raw) == 2 else None
        if scheme is not None and (isinstance(scheme, bool) or not isinstance(scheme, int | str)):
            fail(where, "version scheme must be an integer or text")
        return cls(text(raw[0], where), scheme)

    def wire(self) -> list[Any]:
        return [self.value] if self.scheme is None else [self.value, self.scheme]


@dataclass(frozen=True, slots=True)
class MeasuredComponent:
    """One measured component: a name, and a digest (with its algorithm) or a raw value."""

    name: str
    digest_algorithm: int | str | None = None
    digest: bytes | None = None
    raw: bytes | None = None
    version: Version | None = None
    authorities: tuple[bytes, ...] = ()
    flags: bytes | None = None

    def __post_init__(self) -> None:
        _check(self.wire(), "measured-component")  # one rule set: a component must read back

    def wire(self) -> dict[int, Any]:
        """The CBOR map (integer keys) of this component."""
        out: dict[int, Any] = {_ID: [self.name] + ([self.version.wire()] if self.version else [])}
        if self.digest is not None:
            out[_DIGEST] = [self.digest_algorithm, self.digest]
        if self.raw is not None:
            out[_RAW] = self.raw
        if self.authorities:
            out[_AUTHORITIES] = list(self.authorities)
        if self.flags is not None:
            out[_FLAGS] = self.flags
        return out

    @classmethod
    def read(cls, raw: Any, where: str) -> MeasuredComponent:
        """A component from its CBOR map; every rule checked, naming the field at fault."""
        return cls(**_check(raw, where))

    # -- carriage in the EAT measurements claim --------------------------------------------------

    @classmethod
    def from_measurement(cls, entry: Any, where: str, *, json_token: bool) -> MeasuredComponent:
        """A component from one ``[content-format, content]`` entry of an EAT measurements claim."""
        if not isinstance(entry, list) or len(entry) != 2:
            fail(where, "must be [content-format, content]")
        cf, content = entry
        if cf == CBOR_CONTENT_FORMAT:
            data = b64url(content, where) if json_token else blob(content, where)
            return cls.read(cbor.loads(data, max_size=MAX_COMPONENT, max_depth=4), where)
        if cf == JSON_CONTENT_FORMAT:
            body = text(content, where)
            if len(body) > MAX_COMPONENT:
                fail(where, "component too large")
            return cls.read(_json_to_wire(decode_json(body), where), where)
        fail(where, f"measurement format {cf!r:.20} is not a measured component (295 or 296)")

    def to_measurement(self, *, json_token: bool) -> list[Any]:
        """The ``[content-format, content]`` entry carrying this component (JSON tokens: JSON form)."""
        if json_token:
            return [JSON_CONTENT_FORMAT, json.dumps(self.to_json(), separators=(",", ":"))]
        return [CBOR_CONTENT_FORMAT, cbor.dumps(self.wire())]

    def to_json(self) -> dict[str, Any]:
        names = {v: k for k, v in _JSON_NAMES.items()}
        out: dict[str, Any] = {}
        for key, value in self.wire().items():
            if key == _DIGEST:
                value = [value[0], b64url_encode(value[1])]
            elif key == _AUTHORITIES:
                value = [b64url_encode(a) for a in value]
            elif key in _BYTES_IN_JSON:
                value = b64url_encode(value)
            out[names[key]] = value
        return out


def _check(raw: Any, where: str) -> dict[str, Any]:
    """Validate a component's CBOR map; return the constructor arguments."""
    if not isinstance(raw, Mapping):
        fail(where, "must be a map")
    unknown = set(raw) - set(_JSON_NAMES.values())
    if unknown:
        fail(where, f"unknown member(s) {sorted(map(str, unknown))}")
    ident = raw.get(_ID)
    if not isinstance(ident, list) or not 1 <= len(ident) <= 2:
        fail(f"{where}: id", "must be [name, ? version]")
    if (_DIGEST in raw) == (_RAW in raw):
        fail(where, "exactly one of digested-measurement and raw-measurement is required")
    alg, digest = _digest(raw[_DIGEST], f"{where}: digested-measurement") if _DIGEST in raw else (None, None)
    authorities = raw.get(_AUTHORITIES, [])
    if not isinstance(authorities, list) or (_AUTHORITIES in raw and not authorities):
        fail(f"{where}: authorities", "must be a non-empty array")
    return {
        "name": text(ident[0], f"{where}: id"),
        "version": Version.read(ident[1], f"{where}: version") if len(ident) == 2 else None,
        "digest_algorithm": alg,
        "digest": digest,
        "raw": blob(raw[_RAW], f"{where}: raw-measurement") if _RAW in raw else None,
        "authorities": tuple(blob(a, f"{where}: authorities") for a in authorities),
        "flags": blob(raw[_FLAGS], f"{where}: flags", (8,)) if _FLAGS in raw else None,
    }


def _digest(raw: Any, where: str) -> tuple[int | str, bytes]:
    if not isinstance(raw, list) or len(raw) != 2:
        fail(where, "must be [alg, value]")
    alg, value = raw
    if isinstance(alg, bool) or not isinstance(alg, int | str):
        fail(where, "alg must be a named-information id or hash name")
    value = blob(value, where)
    size = DIGEST_SIZES.get(alg)
    if size is not None and len(value) != size:
        fail(where, f"{alg} digest must be {size} bytes, got {len(value)}")
    if not value:
        fail(where, "digest must not be empty")
    return alg, value


def _json_to_wire(doc: Any, where: str) -> dict[int, Any]:
    """JSON member names to CBOR keys, base64url to bytes; rules are checked by :meth:`read`."""
    if not isinstance(doc, Mapping):
        fail(where, "must be a JSON object")
    out: dict[int, Any] = {}
    for member, value in doc.items():
        key = _JSON_NAMES.get(member)
        if key is None:
            fail(where, f"unknown member {member!r:.40}")
        if key in _BYTES_IN_JSON:
            value = b64url(value, f"{where}: {member}")
        elif key == _DIGEST and isinstance(value, list) and len(value) == 2:
            value = [value[0], b64url(value[1], f"{where}: {member}")]
        elif key == _AUTHORITIES and isinstance(value, list):
            value = [b64url(a, f"{where}: {member}") for a in value]
        out[key] = value
    return out
