"""Decode CoRIMs: unsigned (tag 501) and signed (COSE_Sign1, tag 18), without verifying anything.

Theory of operation: bytes go through our bounded strict decoder (size, depth, item count, no
trailing bytes, no duplicate keys), then through the tables in ``wire`` / ``comid``. CoMIDs are
``506(bstr)`` inside ``tags`` and are decoded with their own bounds. A signed CoRIM's protected
header must say ``content-type: "application/rim+cbor"`` and carry ``corim-meta`` (8) and/or
``CWT-Claims`` (15); when both are present they must agree (the draft's "Protected Header Map").
Hash-envelope and detached payloads are refused with a reason (not supported here).

Decoding a signed CoRIM does not verify it: ``signed.verify_corim`` does, and only its result
should feed a store. Malformed input raises :class:`MalformedError`; from the COSE layer
(``federation.cose``) an unsupported algorithm raises ``AlgorithmError`` and a ``crit`` header
``VerificationError``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from federation import cbor, cose
from federation.cbor import CBORTag
from federation.errors import MalformedError

from . import wire
from .comid import COMID_TAG, MAX_COMID_DEPTH, entity, read_comid
from .model import Comid, Corim, CorimMeta, Locator, OpaqueTag, ProfileId, Validity
from .wire import Field, as_text, list_of, read_map

__all__ = [
    "CONTENT_TYPE",
    "CORIM_FIELDS",
    "CORIM_TAG",
    "MAX_CORIM_SIZE",
    "SIGNED_MAGIC",
    "UNSIGNED_MAGIC",
    "SignedCorim",
    "decode",
    "decode_corim",
    "decode_envelope",
    "decode_signed_corim",
    "is_signed",
    "read_corim",
    "read_meta",
    "signed_content",
]

CORIM_TAG = 501
CONTENT_TYPE = "application/rim+cbor"
MAX_CORIM_SIZE = 4 << 20  # bytes, for a whole (signed) CoRIM
UNSIGNED_MAGIC, SIGNED_MAGIC = b"\xd9\x01\xf5", b"\xd2\x84"  # the media types' magic numbers
_MAX_DEPTH = 10  # nesting of the corim-map itself (CoMIDs are decoded separately)
_OPAQUE_TAGS = frozenset({505, 508})  # CoSWID, CoTL: carried, not interpreted
_LEGACY_WRAPPER = 500
H_CORIM_META, H_CWT_CLAIMS = 8, 15
H_PAYLOAD_HASH_ALG, H_PREIMAGE_CONTENT_TYPE = 258, 259
TAG_OID = 111


@dataclass(frozen=True, slots=True)
class SignedCorim:
    """A decoded, *unverified* signed CoRIM: the envelope, its metadata and the CoRIM inside."""

    sign1: cose.Sign1
    meta: CorimMeta
    corim: Corim


# --- corim-map ------------------------------------------------------------------------------

def _concise_tag(item: Any, where: str) -> Comid | OpaqueTag:
    if not isinstance(item, CBORTag) or not isinstance(item.value, bytes):
        raise MalformedError(f"{where}: expected a tagged bstr (505, 506 or 508)")
    if item.tag == COMID_TAG:
        inner = cbor.loads(item.value, max_size=len(item.value), max_depth=MAX_COMID_DEPTH)
        return read_comid(inner, f"{where}.comid")
    if item.tag in _OPAQUE_TAGS:
        return OpaqueTag(item.tag, item.value)
    raise MalformedError(f"{where}: CBOR tag {item.tag} is not a CoMID, CoSWID or CoTL")


def _profile(item: Any, where: str) -> ProfileId:
    """``uri / tagged-oid-type``; untagged text is kept as kind "text" for the legacy profile to judge."""
    if isinstance(item, str):
        return ProfileId(item, "text")
    if isinstance(item, CBORTag) and item.tag == TAG_OID:
        return ProfileId(_oid_text(wire.as_bytes(item.value, where, range(1, 128)), where), "oid")
    return ProfileId(wire.uri(item, where), "uri")


def _oid_text(der: bytes, where: str) -> str:
    """Dotted form of BER-encoded OID content (RFC 9090), e.g. ``1.3.6.1.4.1.4128.2100.1``."""
    arcs: list[int] = []
    value = 0
    for i, byte in enumerate(der):
        if value == 0 and byte == 0x80:
            raise MalformedError(f"{where}: OID arc has a leading 0x80")
        value = (value << 7) | (byte & 0x7F)
        if not byte & 0x80:
            arcs.append(value)
            value = 0
        elif i == len(der) - 1:
            raise MalformedError(f"{where}: OID ends inside an arc")
    first = min(arcs[0] // 40, 2)
    return ".".join(map(str, [first, arcs[0] - 40 * first, *arcs[1:]]))


def _uris(item: Any, where: str) -> tuple[str, ...]:
    """``uri / [+ uri]``."""
    return tuple(list_of(wire.uri)(item, where)) if isinstance(item, list) else (wire.uri(item, where),)


def _digests_or_one(item: Any, where: str) -> tuple[Any, ...]:
    """``digest / [+ digest]``: a digest is itself an array, so look one level in."""
    if isinstance(item, list) and item and isinstance(item[0], list):
        return tuple(list_of(wire.digest)(item, where))
    return (wire.digest(item, where),)


_LOCATOR: Mapping[int, Field] = {
    0: Field("href", "href", _uris, required=True),
    1: Field("thumbprint", "thumbprints", _digests_or_one),
}


def _locator(item: Any, where: str) -> Locator:
    f, _ = read_map(item, _LOCATOR, where)
    return Locator(**f)


CORIM_FIELDS: Mapping[int, Field] = {
    0: Field("id", "id", wire.identifier, required=True),
    1: Field("tags", "tags", list_of(_concise_tag), required=True),
    2: Field("dependent-rims", "dependent_rims", list_of(_locator)),
    3: Field("profile", "profile", _profile),
    4: Field("rim-validity", "rim_validity", wire.validity),
    5: Field("entities", "entities", list_of(entity)),
}


def read_corim(item: Any, where: str = "corim") -> Corim:
    """Build a :class:`Corim` from an already-decoded ``501(corim-map)`` item."""
    if not isinstance(item, CBORTag):
        raise MalformedError(f"{where}: expected tag {CORIM_TAG} (tagged-unsigned-corim-map)")
    if item.tag == _LEGACY_WRAPPER:
        raise MalformedError(f"{where}: tag 500 (pre-draft CoRIM wrapper) is not supported")
    if item.tag != CORIM_TAG:
        raise MalformedError(f"{where}: tag {item.tag} is not an unsigned CoRIM (501)")
    f, ext = read_map(item.value, CORIM_FIELDS, where, extensible=True)
    return Corim(**f, extensions=ext)


def decode_corim(data: bytes, *, max_size: int = MAX_CORIM_SIZE) -> Corim:
    """Decode an unsigned CoRIM (``501(corim-map)``). Raises :class:`MalformedError`."""
    return read_corim(cbor.loads(data, max_size=max_size, max_depth=_MAX_DEPTH))


# --- signed CoRIM ---------------------------------------------------------------------------

_SIGNER: Mapping[int, Field] = {
    0: Field("signer-name", "signer_name", as_text, required=True),
    1: Field("signer-uri", "signer_uri", wire.uri),
}


def _signer(item: Any, where: str) -> dict[str, Any]:
    f, _ = read_map(item, _SIGNER, where, extensible=True)
    return f


_META: Mapping[int, Field] = {
    0: Field("signer", "signer", _signer, required=True),
    1: Field("signature-validity", "signature_validity", wire.validity),
}

_CWT: Mapping[int, Field] = {
    1: Field("iss", "iss", as_text, required=True),
    2: Field("sub", "sub", as_text),
    4: Field("exp", "exp", wire.epoch_time),
    5: Field("nbf", "nbf", wire.epoch_time),
}


def _corim_meta(raw: Any, where: str) -> CorimMeta:
    """``corim-meta`` (header 8) is ``bstr .cbor corim-meta-map``."""
    data = wire.as_bytes(raw, where)
    f, _ = read_map(cbor.loads(data, max_size=len(data), max_depth=4), _META, where)
    return CorimMeta(**f.pop("signer"), **f)


def _cwt_meta(raw: Any, where: str) -> CorimMeta:
    f, _ = read_map(raw, _CWT, where, extensible=True)
    validity = None
    if "exp" in f or "nbf" in f:
        validity = Validity(not_before=f.get("nbf"), not_after=f.get("exp"))
        if validity.not_before and validity.not_after and validity.not_before > validity.not_after:
            raise MalformedError(f"{where}: nbf is after exp")
    return CorimMeta(f["iss"], None, validity)


def read_meta(protected: Mapping[Any, Any], where: str = "protected") -> CorimMeta:
    """The signer and signature validity from a signed CoRIM's protected header.

    Needs ``corim-meta`` (8) or ``CWT-Claims`` (15); when both are present, ``iss`` must equal
    ``signer-name`` and ``nbf``/``exp`` must equal ``signature-validity`` (draft "Protected Header Map").
    """
    meta = _corim_meta(protected[H_CORIM_META], f"{where}.corim-meta") if H_CORIM_META in protected else None
    cwt = _cwt_meta(protected[H_CWT_CLAIMS], f"{where}.CWT-Claims") if H_CWT_CLAIMS in protected else None
    if meta is None:
        if cwt is None:
            raise MalformedError(f"{where}: neither corim-meta (8) nor CWT-Claims (15) is present")
        return cwt
    if cwt is not None:
        if meta.signer_name != cwt.signer_name:
            raise MalformedError(f"{where}: CWT iss {cwt.signer_name!r} differs from signer-name "
                                 f"{meta.signer_name!r}")
        if meta.signature_validity != cwt.signature_validity:
            raise MalformedError(f"{where}: CWT nbf/exp differ from corim-meta signature-validity")
    return meta


def _check_envelope(sign1: cose.Sign1) -> bytes:
    """The directly signed payload bytes, after the draft's "Protected Header Map" rules."""
    if H_PAYLOAD_HASH_ALG in sign1.protected or H_PREIMAGE_CONTENT_TYPE in sign1.protected:
        raise MalformedError("signed corim: hash-envelope payloads are not supported")
    ctype = sign1.protected.get(cose.H_CTY)
    if ctype != CONTENT_TYPE:
        raise MalformedError(f"signed corim: content-type must be {CONTENT_TYPE!r}, got {ctype!r:.60}")
    if sign1.payload is None:
        raise MalformedError("signed corim: detached payloads are not supported")
    return sign1.payload


def decode_envelope(data: bytes, *, max_size: int = MAX_CORIM_SIZE) -> tuple[Any, cose.Sign1]:
    """The decoded COSE_Sign1 item and its parsed form, header rules checked, payload not yet read."""
    item = cbor.loads(data, max_size=max_size, max_depth=_MAX_DEPTH)
    if not isinstance(item, CBORTag) or item.tag != cose.COSE_SIGN1_TAG:
        raise MalformedError("signed corim: expected COSE_Sign1 (tag 18)")
    sign1 = cose.decode_sign1(item)
    _check_envelope(sign1)
    return item, sign1


def signed_content(sign1: cose.Sign1, *, max_size: int = MAX_CORIM_SIZE) -> tuple[CorimMeta, Corim]:
    """The signer metadata and the CoRIM of an envelope (call after verifying it)."""
    meta = read_meta(sign1.protected)
    return meta, decode_corim(_check_envelope(sign1), max_size=max_size)


def decode_signed_corim(data: bytes, *, max_size: int = MAX_CORIM_SIZE) -> SignedCorim:
    """Decode (without verifying) a signed CoRIM ``18([protected, unprotected, payload, sig])``."""
    _, sign1 = decode_envelope(data, max_size=max_size)
    meta, corim = signed_content(sign1, max_size=max_size)
    return SignedCorim(sign1, meta, corim)


def is_signed(data: bytes) -> bool:
    """True for ``application/rim+cose`` (starts ``D2 84``), False for ``application/rim+cbor`` (``D9 01 F5``).

    Anything else is neither and raises :class:`MalformedError`.
    """
    if data[:3] == UNSIGNED_MAGIC:
        return False
    if data[:2] == SIGNED_MAGIC:
        return True
    raise MalformedError("corim: neither an unsigned CoRIM (tag 501) nor a signed one (tag 18)")


def decode(data: bytes, *, max_size: int = MAX_CORIM_SIZE) -> Corim | SignedCorim:
    """Decode either form, told apart by the outer tag (501 unsigned, 18 signed)."""
    if is_signed(data):
        return decode_signed_corim(data, max_size=max_size)
    return decode_corim(data, max_size=max_size)
