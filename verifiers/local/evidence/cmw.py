"""RATS Conceptual Message Wrappers (draft-ietf-rats-msg-wrap-23): a bounded, pure decoder.

Theory of operation. A CMW is a tree. Leaves are *records* (``[type, value, ? ind]``, in CBOR
or JSON) or *tags* (a CBOR tag whose number is RFC 9277's ``TN()`` of a CoAP Content-Format,
around a byte string); inner nodes are *collections* (a CBOR map or JSON object of labelled
CMWs, optionally typed by ``"__cmwc_t"``). Decoding yields :class:`Record` leaves, each a
(media type or Content-Format, bytes) pair, under :class:`Collection` nodes, and enforces:

* size (bytes in) and depth (nested collections) bounds, both arguments;
* the draft's value rules: a CoAP Content-Format is a uint of at most 2 bytes; JSON values are
  base64url *without* padding; ``ind`` is a non-zero uint of at most 4 bytes; a collection has
  at least one entry; ``"__cmwc_t"`` is an absolute URI or an OID; tag numbers lie in the TN()
  range. Anything else raises :class:`~federation.errors.MalformedError` saying where.

Records are not unwrapped further: a leaf whose type is itself a CMW (``application/cmw+cbor``)
stays a leaf; the caller decides whether to decode it (with its own depth budget).
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, NoReturn

from federation import cbor
from federation.ear.token import decode_json
from federation.errors import Error, MalformedError, UsageError
from federation.keys import b64url_encode

__all__ = [
    "CBOR_MEDIA_TYPE",
    "JSON_MEDIA_TYPE",
    "Cmw",
    "Collection",
    "Record",
    "content_format_of_tag",
    "decode",
    "decode_cbor",
    "decode_json_cmw",
    "encode_cbor",
    "encode_json",
    "from_cbor_item",
    "from_json_item",
    "leaves",
    "sniff",
    "tag_of_content_format",
    "to_cbor_item",
]

CBOR_MEDIA_TYPE = "application/cmw+cbor"
JSON_MEDIA_TYPE = "application/cmw+json"
MAX_SIZE = 1 << 20  # bytes
MAX_DEPTH = 8  # nested collections
COLLECTION_TYPE = "__cmwc_t"

# RFC 9277 Appendix B: TN(ct) = 0x63740101 + (ct // 255) * 256 + ct % 255, for ct <= 65024.
_TN_BASE = 0x63740101
_TN_LAST = 1668612095
_MAX_CF = 0xFFFF
_MAX_IND = 0xFFFFFFFF

# CoAP Content-Formats (IANA "CoAP Content-Formats") of message types a verifier meets.
CONTENT_FORMATS: Mapping[int, str] = {
    0: "text/plain; charset=utf-8",
    18: 'application/cose; cose-type="cose-sign1"',
    42: "application/octet-stream",
    50: "application/json",
    60: "application/cbor",
    61: "application/cwt",
    258: "application/swid+cbor",
    263: "application/eat+cwt",
    264: "application/eat+jwt",
    265: "application/eat-bun+cbor",
    266: "application/eat-bun+json",
    267: "application/eat-ucs+cbor",
    268: "application/eat-ucs+json",
    273: "application/cmw+cbor",
    274: "application/cmw+json",
    275: "application/cmw+cose",
    276: "application/cmw+jws",
    295: "application/measured-component+cbor",
    296: "application/measured-component+json",
    10003: 'application/eat+cwt; eat_profile="tag:psacertified.org,2023:psa#tfm"',
    10004: 'application/eat+cwt; eat_profile="tag:psacertified.org,2019:psa#legacy"',
}
_RESTRICTED_NAME = r"[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}"
_MEDIA_TYPE = re.compile(rf"{_RESTRICTED_NAME}/{_RESTRICTED_NAME}(\s*;.*)?", re.ASCII | re.DOTALL)
_OID = re.compile(r"[0-2](\.0|\.[1-9][0-9]*)*", re.ASCII)
_ABSOLUTE_URI = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:[^\s#]+", re.ASCII)
_B64URL = re.compile(r"[A-Za-z0-9_-]*", re.ASCII)


@dataclass(frozen=True, slots=True)
class Record:
    """A leaf: a conceptual message, its type (media type or CoAP C-F) and optional ``ind`` bits."""

    type: str | int
    value: bytes
    ind: int | None = None
    tagged: bool = False  # received as a Tag CMW rather than a record array

    @property
    def content_format(self) -> int | None:
        return self.type if isinstance(self.type, int) else None

    @property
    def media_type(self) -> str | None:
        """The media type: as carried, or registered for the Content-Format (None if unknown)."""
        return self.type if isinstance(self.type, str) else CONTENT_FORMATS.get(self.type)


@dataclass(frozen=True, slots=True)
class Collection:
    """An inner node: labelled CMWs (labels text, or int in CBOR) and the optional type URI/OID."""

    entries: tuple[tuple[str | int, Cmw], ...]
    ctype: str | None = None

    def __getitem__(self, label: str | int) -> Cmw:
        for key, value in self.entries:
            if key == label and type(key) is type(label):
                return value
        raise KeyError(label)

    @property
    def labels(self) -> tuple[str | int, ...]:
        return tuple(k for k, _ in self.entries)


Cmw = Record | Collection


def _fail(where: str, problem: str) -> NoReturn:
    raise MalformedError(f"cmw: {where}: {problem}" if where else f"cmw: {problem}")


def tag_of_content_format(cf: int) -> int:
    """RFC 9277 TN(): the CBOR tag number that carries Content-Format *cf*."""
    if not 0 <= cf <= 65024:
        raise UsageError(f"Content-Format {cf} has no TN() tag number")
    return _TN_BASE + (cf // 255) * 256 + cf % 255


def content_format_of_tag(tag: int) -> int | None:
    """The Content-Format a TN()-range tag number stands for; None outside the range."""
    offset = tag - _TN_BASE
    if not 0 <= offset <= _TN_LAST - _TN_BASE or offset % 256 == 255:
        return None
    return (offset // 256) * 255 + offset % 256


def _ind(value: Any, where: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= _MAX_IND:
        _fail(where, "ind must be a non-zero uint of at most 4 bytes")
    return value


def _media_type(value: Any, where: str) -> str:
    if not isinstance(value, str) or not _MEDIA_TYPE.fullmatch(value):
        _fail(where, f"type {value!r:.60} is not a media type")
    return value


def _record_type(value: Any, where: str) -> str | int:
    if isinstance(value, int) and not isinstance(value, bool):
        if not 0 <= value <= _MAX_CF:
            _fail(where, f"Content-Format {value} is not a 2-byte uint")
        return value
    return _media_type(value, where)


def _collection_type(value: Any, where: str) -> str:
    if not isinstance(value, str) or not (_OID.fullmatch(value) or _ABSOLUTE_URI.fullmatch(value)):
        _fail(where, f"{COLLECTION_TYPE} {value!r:.60} is neither an absolute URI nor an OID")
    return value


def _label(where: str, key: Any) -> str:
    return f"{where}.{key}" if where else str(key)


# -- CBOR -------------------------------------------------------------------------------------


def from_cbor_item(item: Any, *, max_depth: int = MAX_DEPTH, where: str = "") -> Cmw:
    """A CMW from an already-decoded CBOR item (e.g. a CWT ``cmw`` claim or a CCA collection)."""
    if isinstance(item, list):
        if len(item) not in (2, 3):
            _fail(where, f"a record has 2 or 3 elements, not {len(item)}")
        rtype = _record_type(item[0], where)
        if not isinstance(item[1], bytes):
            _fail(where, "a CBOR record value must be a byte string")
        return Record(rtype, item[1], _ind(item[2], where) if len(item) == 3 else None)
    if isinstance(item, cbor.CBORTag):
        cf = content_format_of_tag(item.tag)
        if cf is None:
            _fail(where, f"tag {item.tag} is not a CMW tag (outside the RFC 9277 TN() range)")
        if not isinstance(item.value, bytes):
            _fail(where, "a tag CMW must wrap a byte string")
        return Record(cf, item.value, tagged=True)
    if isinstance(item, dict):
        return _collection(item, max_depth, where, cbor_labels=True)
    _fail(where, f"{type(item).__name__} is not a CMW (record, tag or collection)")


def _collection(item: Mapping[Any, Any], max_depth: int, where: str, *, cbor_labels: bool) -> Collection:
    if max_depth <= 0:
        _fail(where, "collections nested too deeply")
    ctype = _collection_type(item[COLLECTION_TYPE], where) if COLLECTION_TYPE in item else None
    entries: list[tuple[str | int, Cmw]] = []
    for key, value in item.items():
        if key == COLLECTION_TYPE:
            continue
        if not (isinstance(key, str) or (cbor_labels and isinstance(key, int) and not isinstance(key, bool))):
            _fail(where, f"label {key!r:.40} must be text{' or int' if cbor_labels else ''}")
        child = (from_cbor_item if cbor_labels else from_json_item)(
            value, max_depth=max_depth - 1, where=_label(where, key))
        entries.append((key, child))
    if not entries:
        _fail(where, "a collection must have at least one entry")
    return Collection(tuple(entries), ctype)


def decode_cbor(data: bytes, *, max_size: int = MAX_SIZE, max_depth: int = MAX_DEPTH) -> Cmw:
    """Decode a CBOR CMW (record, tag or collection)."""
    # Each collection level costs two CBOR levels (map, record array); indefinite arrays are
    # allowed because the draft's demux table names them (0x9f).
    item = cbor.loads(data, max_size=max_size, max_depth=2 * max_depth + 2, allow_indefinite=True)
    return from_cbor_item(item, max_depth=max_depth)


def encode_cbor(cmw: Cmw) -> bytes:
    """Deterministic CBOR encoding of a CMW we built (records, tags and collections)."""
    return cbor.dumps(to_cbor_item(cmw))


def to_cbor_item(cmw: Cmw) -> Any:
    """The CBOR data item of a CMW (for embedding, e.g. in a CCA token or a CWT claim)."""
    if isinstance(cmw, Record):
        if cmw.tagged:
            if not isinstance(cmw.type, int):
                raise UsageError("a tag CMW needs a Content-Format type")
            return cbor.CBORTag(tag_of_content_format(cmw.type), cmw.value)
        return [cmw.type, cmw.value] + ([cmw.ind] if cmw.ind is not None else [])
    out: dict[Any, Any] = {k: to_cbor_item(v) for k, v in cmw.entries}
    if cmw.ctype is not None:
        out[COLLECTION_TYPE] = cmw.ctype
    return out


# -- JSON -------------------------------------------------------------------------------------


def _b64url_value(value: Any, where: str) -> bytes:
    """Base64url without padding, canonical (no stray bits), as the draft requires for JSON."""
    if isinstance(value, str) and _B64URL.fullmatch(value) and len(value) % 4 != 1:
        raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
        if b64url_encode(raw) == value:
            return raw
    _fail(where, "a JSON record value must be base64url without padding")


def from_json_item(item: Any, *, max_depth: int = MAX_DEPTH, where: str = "") -> Cmw:
    """A CMW from an already-parsed JSON value (e.g. the ``cmw`` claim of a JWT)."""
    if isinstance(item, list):
        if len(item) not in (2, 3):
            _fail(where, f"a record has 2 or 3 elements, not {len(item)}")
        rtype = _media_type(item[0], where)  # Content-Formats are not used in JSON
        return Record(rtype, _b64url_value(item[1], where), _ind(item[2], where) if len(item) == 3 else None)
    if isinstance(item, dict):
        return _collection(item, max_depth, where, cbor_labels=False)
    _fail(where, f"{type(item).__name__} is not a JSON CMW (record or collection)")


def decode_json_cmw(data: bytes | str, *, max_size: int = MAX_SIZE, max_depth: int = MAX_DEPTH) -> Cmw:
    """Decode a JSON CMW (record or collection)."""
    if len(data) > max_size:
        _fail("", f"input of {len(data)} bytes exceeds {max_size}")
    return from_json_item(decode_json(data), max_depth=max_depth)


def encode_json(cmw: Cmw) -> bytes:
    """The JSON serialization of a CMW (values base64url without padding)."""
    return json.dumps(_to_json_item(cmw), separators=(",", ":")).encode()


def _to_json_item(cmw: Cmw) -> Any:
    if isinstance(cmw, Record):
        if not isinstance(cmw.type, str) or cmw.tagged:
            raise UsageError("a JSON record needs a media type (no Content-Formats, no tags)")
        return [cmw.type, b64url_encode(cmw.value)] + ([cmw.ind] if cmw.ind is not None else [])
    out: dict[str, Any] = {}
    if cmw.ctype is not None:
        out[COLLECTION_TYPE] = cmw.ctype
    for k, v in cmw.entries:
        if not isinstance(k, str):
            raise UsageError("JSON collection labels must be text")
        out[k] = _to_json_item(v)
    return out


# -- both -------------------------------------------------------------------------------------

_JSON_START = frozenset(b"[{")


def decode(data: bytes, *, max_size: int = MAX_SIZE, max_depth: int = MAX_DEPTH) -> Cmw:
    """Decode a CMW of either serialization, told apart by its first byte (draft §3.4)."""
    if not data:
        _fail("", "empty input")
    if data[0] in _JSON_START:
        return decode_json_cmw(data, max_size=max_size, max_depth=max_depth)
    return decode_cbor(data, max_size=max_size, max_depth=max_depth)


def leaves(cmw: Cmw, path: tuple[str | int, ...] = ()) -> Iterator[tuple[tuple[str | int, ...], Record]]:
    """Every record of the tree with the labels that lead to it, depth first."""
    if isinstance(cmw, Record):
        yield path, cmw
        return
    for label, child in cmw.entries:
        yield from leaves(child, (*path, label))


def _cbor_head(first: int) -> bool:
    """The first bytes the draft's demux table assigns to CBOR records, tags and collections."""
    return first in (0x82, 0x83, 0x9F, 0xDA) or 0xA0 <= first <= 0xBB or first == 0xBF


def sniff(data: bytes) -> str | None:
    """``application/cmw+json`` or ``application/cmw+cbor`` when *data* decodes as a CMW."""
    if not data:
        return None
    if data[0] in _JSON_START:
        media_type = JSON_MEDIA_TYPE
    elif _cbor_head(data[0]):
        media_type = CBOR_MEDIA_TYPE
    else:
        return None
    try:
        decode(data)
    except Error:  # any failure means "not mine"
        return None
    return media_type
