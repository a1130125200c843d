"""CoRIM JSON templates in the vocabulary of Veraison's ``cocli``: template → model, and back.

Why: ``ratsfed corim create`` builds CoRIMs from the JSON templates people already write for
Veraison (``corim-*.json``, ``comid-*.json``), and ``ratsfed corim show --json`` prints a CoRIM
as such a template, so that what ``show`` prints can be fed back to ``create`` (the round trip
the tests check). Names follow veraison/corim (read at 53b3014): the member names of its Go
types' JSON encodings, and ``{"type": ..., "value": ...}`` objects for every type choice.

Theory of operation: :class:`_Reader` turns JSON objects into model dataclasses, one method per
CDDL structure, with a path (``comids[1].triples.reference-values[0].environment.class.id``) in
every error. Unknown members are errors (a typo in a template must not silently drop a reference
value). The finished :class:`Corim` is then encoded and decoded once, so anything the decoder
would refuse (a digest of the wrong length, an empty map) is refused here too, and the result is
exactly what a verifier will read. ``corim_to_template`` is the inverse. Everything is pure
except :func:`load_template`, which reads the template and the CoMID files it names.

CoRIM template members: ``corim-id`` (text; a UUID string becomes a binary UUID, as in cocli),
``profile`` (``{"type": "uri" | "oid", "value"}`` or a string; legacy ``profiles: [one]``),
``dependent-rims`` (``[{"href", "thumbprint"}]``), ``validity`` (rim-validity, RFC 3339 or epoch
seconds), ``entities`` (roles ``manifestCreator`` / ``manifestSigner``), and — our addition —
``comids``: inline CoMID templates or paths of CoMID template (or CBOR CoMID) files relative to
the template. ``other-tags`` (``[{"tag": 505 | 508, "data"}]``) carries CoSWID / CoTL tags.

CoMID template members: ``lang``, ``tag-identity`` (``id``, ``version``), ``entities`` (roles
``tagCreator`` / ``creator`` / ``maintainer``), ``linked-tags`` (``target``, ``rel``), and
``triples``: ``reference-values`` and ``endorsed-values`` (``environment``, ``measurements``),
``attester-verification-keys`` and ``dev-identity-keys`` (``environment``, ``verification-keys``,
``conditions``), ``dependency-triples`` (``domain-id``, ``trustees``), ``membership-triples``
(``domain-id``, ``members``), ``coswid-triples``, ``conditional-endorsement-series`` and
``conditional-endorsements``.

Typed values: class ids ``bytes`` / ``uuid`` / ``oid`` / ``psa.impl-id`` (32 bytes; tag 560 as
Veraison writes it today, tag 600 under the legacy profile ``http://arm.com/psa/iot/1``);
instances ``ueid`` / ``uuid`` / ``bytes`` (and key types); measurement keys ``string`` / ``uint``
/ ``uuid`` / ``oid`` / ``psa.refval-id`` (``label``, ``version``, ``signer-id``); crypto keys
``pkix-base64-key`` / ``pkix-base64-cert`` / ``pkix-base64-cert-path`` / ``cose-key`` /
``thumbprint`` / ``cert-thumbprint`` / ``cert-path-thumbprint`` / ``pkix-asn1der-cert`` / ``bytes``.
Measurement values: ``version`` (``value``, ``scheme``), ``svn`` (``exact-value`` / ``min-value``
or a number), ``digests`` (``[alg, base64url]`` or ``"alg;base64url"``), ``flags``, ``raw-value``
(``bytes`` or ``masked``), ``raw-value-mask``, ``mac-addr``, ``ip-addr``, ``serial-number``,
``ueid``, ``uuid``, ``name``, ``cryptokeys``, ``integrity-registers``, ``int-range``,
``psa-cert-num``. Binary values are base64 in either alphabet, padded or not (cocli writes the
standard one); ``corim_to_template`` writes base64url without padding throughout.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import json
import re
import uuid
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import MappingProxyType
from typing import Any

from federation import cbor
from federation.errors import ConfigError, Error
from federation.keys import b64url_encode as _b64_out

from .comid import decode_comid
from .decode import decode_corim
from .encode import encode_corim
from .model import (
    HASH_ALGORITHMS,
    ClassMap,
    Comid,
    ConditionalEndorsement,
    ConditionalSeries,
    Corim,
    CoswidTriple,
    Digest,
    DomainTriple,
    EndorsedTriple,
    Entity,
    Environment,
    Identifier,
    IntRange,
    KeyTriple,
    LinkedTag,
    Locator,
    Measurement,
    MeasurementValues,
    OpaqueTag,
    ProfileId,
    RawValue,
    ReferenceTriple,
    SeriesRecord,
    StatefulEnvironment,
    Svn,
    Tagged,
    Triples,
    Validity,
    Version,
)
from .profiles import PSA_LEGACY

__all__ = [
    "MAX_TEMPLATE_SIZE",
    "TemplateError",
    "comid_from_template",
    "comid_to_template",
    "corim_from_template",
    "corim_to_template",
    "load_template",
]

MAX_TEMPLATE_SIZE = 4 << 20  # bytes, per template or CoMID file
_MAX_COMIDS = 1000

Json = Any
ComidSource = Mapping[str, Any] | Comid | str
"""A CoMID in a template: an inline template, an already built CoMID, or a path to load."""


class TemplateError(ConfigError):
    """A template is not a valid CoRIM description; ``key`` is the JSON path, ``file`` the file."""

    def __init__(self, message: str, *, key: str | None = None, file: str | None = None) -> None:
        super().__init__(message, key=key, file=file)
        self.message = message

    def located(self, file: str) -> TemplateError:
        """The same error, naming the file it is in."""
        return TemplateError(self.message, key=self.key, file=file)


def _err(where: str, detail: str) -> TemplateError:
    return TemplateError(detail, key=where or None)


# --- vocabularies ---------------------------------------------------------------------------

_COMID_ROLES: Mapping[str, int] = MappingProxyType({"tagCreator": 0, "creator": 1, "maintainer": 2})
_CORIM_ROLES: Mapping[str, int] = MappingProxyType({"manifestCreator": 1, "manifestSigner": 2})
_RELS: Mapping[str, int] = MappingProxyType({"supplements": 0, "replaces": 1})
_VERSION_SCHEMES: Mapping[str, int] = MappingProxyType({
    "multipartnumeric": 1, "multipartnumeric+suffix": 2, "alphanumeric": 3, "decimal": 4, "semver": 16384})
_FLAGS: Mapping[str, int] = MappingProxyType({
    "is-configured": 0, "is-secure": 1, "is-recovery": 2, "is-debug": 3, "is-replay-protected": 4,
    "is-integrity-protected": 5, "is-runtime-meas": 6, "is-immutable": 7, "is-tcb": 8,
    "is-confidentiality-protected": 9})
_HASH_NAMES: Mapping[str, int] = MappingProxyType({name: alg for alg, (name, _) in HASH_ALGORITHMS.items()})
_PSA_CERT_NUM = 100  # measurement-values extension of the PSA profile
_LEGACY_REFVAL = (("label", 1), ("version", 4), ("signer-id", 5))
_UUID_TEXT = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")


def _inverse(table: Mapping[str, int]) -> dict[int, str]:
    return {v: k for k, v in table.items()}


# --- scalar readers -------------------------------------------------------------------------

def _text(v: Json, where: str) -> str:
    if not isinstance(v, str) or not v:
        raise _err(where, "expected a non-empty string")
    return v


def _uint(v: Json, where: str) -> int:
    if isinstance(v, bool) or not isinstance(v, int) or v < 0:
        raise _err(where, "expected an unsigned integer")
    return v


def _int(v: Json, where: str) -> int:
    if isinstance(v, bool) or not isinstance(v, int):
        raise _err(where, "expected an integer")
    return v


def _bool(v: Json, where: str) -> bool:
    if not isinstance(v, bool):
        raise _err(where, "expected true or false")
    return v


def _list(v: Json, where: str, *, nonempty: bool = True) -> list[Any]:
    if not isinstance(v, list):
        raise _err(where, "expected an array")
    if nonempty and not v:
        raise _err(where, "must not be empty")
    return v


def _each(read: Callable[[Json, str], Any], v: Json, where: str, *, nonempty: bool = True) -> tuple[Any, ...]:
    return tuple(read(x, f"{where}[{i}]") for i, x in enumerate(_list(v, where, nonempty=nonempty)))


def _many(read: Callable[[Json, str], Any], *, nonempty: bool = True) -> Callable[[Json, str], tuple[Any, ...]]:
    """A reader of a JSON array of what *read* reads."""
    return lambda v, where: _each(read, v, where, nonempty=nonempty)


def _b64(v: Json, where: str, sizes: Collection[int] | None = None) -> bytes:
    """Base64 in either alphabet, padding optional (cocli writes the standard one, we write url)."""
    if not isinstance(v, str):
        raise _err(where, "expected a base64 string")
    s = v.strip().rstrip("=")
    if ("-" in s or "_" in s) and ("+" in s or "/" in s):
        raise _err(where, "mixes the base64 and base64url alphabets")
    try:
        data = base64.b64decode(s.replace("-", "+").replace("_", "/") + "=" * (-len(s) % 4), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise _err(where, f"not valid base64: {exc}") from exc
    if sizes is not None and len(data) not in sizes:
        raise _err(where, f"{len(data)} bytes is not an allowed length ({_sizes_text(sizes)})")
    return data


def _sizes_text(sizes: Collection[int]) -> str:
    if isinstance(sizes, range):
        return f"{sizes.start}..{sizes.stop - 1}"
    return " or ".join(map(str, sorted(sizes)))


def _uuid(v: Json, where: str) -> bytes:
    if not isinstance(v, str) or not _UUID_TEXT.fullmatch(v):
        raise _err(where, "expected a UUID (xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx)")
    return uuid.UUID(v).bytes


def _uuid_out(data: bytes) -> str:
    return str(uuid.UUID(bytes=data))


def _oid(v: Json, where: str) -> bytes:
    """Dotted OID text → BER content octets (RFC 9090 tag 111)."""
    if not isinstance(v, str) or not re.fullmatch(r"[0-2](\.(0|[1-9][0-9]*))+", v):
        raise _err(where, "expected a dotted OID such as 1.3.6.1.4.1.4128")
    arcs = [int(a) for a in v.split(".")]
    if arcs[0] < 2 and arcs[1] >= 40:
        raise _err(where, "the second arc of an OID under 0 or 1 must be below 40")
    out = bytearray()
    for n in [40 * arcs[0] + arcs[1], *arcs[2:]]:
        chunk = [n & 0x7F]
        while n := n >> 7:
            chunk.append(0x80 | (n & 0x7F))
        out.extend(reversed(chunk))
    return bytes(out)


def _oid_out(der: bytes) -> str:
    arcs: list[int] = []
    value = 0
    for byte in der:
        value = (value << 7) | (byte & 0x7F)
        if not byte & 0x80:
            arcs.append(value)
            value = 0
    if not arcs:
        return der.hex()
    first = min(arcs[0] // 40, 2)
    return ".".join(map(str, [first, arcs[0] - 40 * first, *arcs[1:]]))


def _time(v: Json, where: str) -> datetime:
    """RFC 3339 / ISO 8601 text (UTC unless it says otherwise) or seconds since the epoch."""
    if isinstance(v, int | float) and not isinstance(v, bool):
        try:
            return datetime.fromtimestamp(v, UTC)
        except (OverflowError, OSError, ValueError) as exc:
            raise _err(where, "time out of range") from exc
    if not isinstance(v, str):
        raise _err(where, "expected an RFC 3339 time or epoch seconds")
    try:
        when = datetime.fromisoformat(v.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError as exc:
        raise _err(where, f"not an RFC 3339 time: {v!r:.40}") from exc
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def _time_out(t: datetime) -> str:
    return t.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _identifier(v: Json, where: str) -> Identifier:
    """corim-id / tag-id / linked tag: a UUID string becomes a binary UUID (as in cocli), other text stays.

    ``{"type": "text" | "uuid", "value"}`` says which explicitly.
    """
    if isinstance(v, dict):
        o = _Obj(v, where, ("type", "value"))
        kind = o.need("type", _text)
        if kind == "uuid":
            as_uuid: bytes = o.need("value", _uuid)
            return as_uuid
        if kind in ("text", "string"):
            as_text: str = o.need("value", _text)
            return as_text
        raise _err(f"{where}.type", f"unknown identifier type {kind!r:.40} (known: text, uuid)")
    text = _text(v, where)
    return uuid.UUID(text).bytes if _UUID_TEXT.fullmatch(text) else text


def _identifier_out(ident: Identifier) -> Json:
    if isinstance(ident, bytes):
        return _uuid_out(ident)  # the decoder admits only 16-byte binary identifiers
    return {"type": "text", "value": ident} if _UUID_TEXT.fullmatch(ident) else ident


def _named(table: Mapping[str, int], what: str) -> Callable[[Json, str], int]:
    def read(v: Json, where: str) -> int:
        if isinstance(v, str):
            if v not in table:
                raise _err(where, f"unknown {what} {v!r:.40} (known: {', '.join(table)})")
            return table[v]
        return _uint(v, where)

    return read


def _named_out(table: Mapping[str, int], n: int) -> Json:
    return _inverse(table).get(n, n)


# --- objects --------------------------------------------------------------------------------

class _Obj:
    """A JSON object whose members are all known; ``need`` / ``get`` read one member each."""

    def __init__(self, value: Json, where: str, known: Collection[str]) -> None:
        if not isinstance(value, dict):
            raise _err(where, "expected an object")
        unknown = sorted(set(value) - set(known))
        if unknown:
            raise _err(where, f"unknown member {unknown[0]!r:.60} (known: {', '.join(known)})")
        self.value: dict[str, Any] = value
        self.where = where

    def _at(self, name: str) -> str:
        return f"{self.where}.{name}" if self.where else name

    def need(self, name: str, read: Callable[[Json, str], Any]) -> Any:
        if self.value.get(name) is None:
            raise _err(self.where, f"{name} is missing")
        return read(self.value[name], self._at(name))

    def get(self, name: str, read: Callable[[Json, str], Any], default: Any = None) -> Any:
        if self.value.get(name) is None:
            return default
        return read(self.value[name], self._at(name))


def _digest(v: Json, where: str) -> Digest:
    """``[alg, base64url]`` (cocli) or ``"alg;base64url"``; alg an id or a registry name."""
    alg: Json
    value: Json
    if isinstance(v, str):
        alg, sep, value = v.partition(";")
        if not sep:
            raise _err(where, "expected \"alg;base64url\" or [alg, base64url]")
    else:
        pair = _list(v, where)
        if len(pair) != 2:
            raise _err(where, "expected [alg, base64url]")
        alg, value = pair
    if isinstance(alg, str):
        alg = _HASH_NAMES.get(alg, int(alg) if alg.isdigit() else alg)
    if isinstance(alg, bool) or not isinstance(alg, int | str) or alg in ("", 0):
        raise _err(f"{where}.alg", "expected a hash algorithm id or name")
    data = _b64(value, f"{where}.value")
    known = HASH_ALGORITHMS.get(alg) if isinstance(alg, int) else None
    if known is not None and len(data) != known[1]:
        raise _err(where, f"a {known[0]} digest is {known[1]} bytes, got {len(data)}")
    if not data:
        raise _err(where, "empty digest")
    return Digest(alg, data)


def _digest_out(d: Digest) -> Json:
    return [d.alg, _b64_out(d.value)]


def _digest_text_out(d: Digest) -> str:
    alg = HASH_ALGORITHMS[d.alg][0] if isinstance(d.alg, int) and d.alg in HASH_ALGORITHMS else str(d.alg)
    return f"{alg};{_b64_out(d.value)}"


def _digests(v: Json, where: str) -> tuple[Digest, ...]:
    out = _each(_digest, v, where)
    algs = [d.alg for d in out]
    if len(set(algs)) != len(algs):
        raise _err(where, "an algorithm appears more than once")
    return out


def _cose_key(v: Json, where: str) -> bytes:
    data = _b64(v, where)
    try:
        item = cbor.loads(data, max_depth=4)
    except Error as exc:
        raise _err(where, f"not a CBOR COSE_Key: {exc.detail}") from exc
    if not isinstance(item, dict) or not item:
        raise _err(where, "not a COSE_Key map")
    return cbor.dumps(item)


@dataclass(frozen=True, slots=True)
class _Kind:
    """One ``type`` of a type choice: how its ``value`` is read, the model type name and tag."""

    read: Callable[[Json, str], Any]
    model_type: str
    tag: int | None


def _kinds(*kinds: tuple[str, _Kind]) -> Mapping[str, _Kind]:
    return MappingProxyType(dict(kinds))


def _sized(sizes: Collection[int]) -> Callable[[Json, str], bytes]:
    return lambda v, where: _b64(v, where, sizes)


_BYTES = _Kind(_b64, "bytes", 560)
_UEID = _Kind(_sized(range(7, 34)), "ueid", 550)
_UUID = _Kind(_uuid, "uuid", 37)
_OID = _Kind(_oid, "oid", 111)
_IMPL_ID = _Kind(_sized((32,)), "bytes", 560)  # veraison/corim profiles/psa: psa.impl-id is tagged bytes
_LEGACY_IMPL_ID = _Kind(_sized((32,)), "psa.impl-id", 600)  # pre-2026 Veraison encoding
_KEY_KINDS = _kinds(
    ("pkix-base64-key", _Kind(_text, "pkix-base64-key", 554)),
    ("pkix-base64-cert", _Kind(_text, "pkix-base64-cert", 555)),
    ("pkix-base64-cert-path", _Kind(_text, "pkix-base64-cert-path", 556)),
    ("thumbprint", _Kind(_digest, "thumbprint", 557)),
    ("cose-key", _Kind(_cose_key, "cose-key", 558)),
    ("cert-thumbprint", _Kind(_digest, "cert-thumbprint", 559)),
    ("bytes", _BYTES),
    ("cert-path-thumbprint", _Kind(_digest, "cert-path-thumbprint", 561)),
    ("pkix-asn1der-cert", _Kind(_sized(range(1, 1 << 16)), "pkix-asn1der-cert", 562)),
)
_CLASS_KINDS = _kinds(("bytes", _BYTES), ("uuid", _UUID), ("oid", _OID))
_INSTANCE_KINDS = _kinds(("ueid", _UEID), ("uuid", _UUID), *(
    (k, _KEY_KINDS[k]) for k in ("bytes", "pkix-base64-key", "pkix-base64-cert", "cose-key", "thumbprint",
                                 "cert-thumbprint", "pkix-asn1der-cert")))
_GROUP_KINDS = _kinds(("uuid", _UUID), ("bytes", _BYTES))


def _legacy_refval(v: Json, where: str) -> bytes:
    o = _Obj(v, where, [name for name, _ in _LEGACY_REFVAL])
    ref: dict[int, Any] = {1: o.get("label", _text), 4: o.get("version", _text),
                           5: o.need("signer-id", lambda x, w: _b64(x, w, (32, 48, 64)))}
    return cbor.dumps({k: x for k, x in ref.items() if x is not None})


_MKEY_KINDS = _kinds(
    ("string", _Kind(_text, "string", None)),
    ("uint", _Kind(_uint, "uint", None)),
    ("uuid", _UUID),
    ("oid", _OID),
    ("psa.refval-id", _Kind(_legacy_refval, "psa.refval-id", 601)),  # pre-2026 Veraison encoding
)


def _typed(kinds: Mapping[str, _Kind], what: str) -> Callable[[Json, str], Tagged]:
    """A reader of ``{"type": name, "value": ...}`` for one type choice."""

    def read(v: Json, where: str) -> Tagged:
        o = _Obj(v, where, ("type", "value"))
        name = o.need("type", _text)
        kind = kinds.get(name)
        if kind is None:
            raise _err(f"{where}.type", f"unknown {what} type {name!r:.40} (known: {', '.join(kinds)})")
        return Tagged(kind.model_type, o.need("value", kind.read), kind.tag)

    return read


_crypto_key = _typed(_KEY_KINDS, "crypto key")
_instance = _typed(_INSTANCE_KINDS, "instance")
_group = _typed(_GROUP_KINDS, "group")
_mkey = _typed(_MKEY_KINDS, "measurement key")


_crypto_keys = _many(_crypto_key)


# --- measurement values ---------------------------------------------------------------------

def _version(v: Json, where: str) -> Version:
    o = _Obj(v, where, ("value", "scheme"))

    def scheme(x: Json, w: str) -> int | str:
        if isinstance(x, str):
            return _VERSION_SCHEMES.get(x, x)
        return _int(x, w)

    return Version(o.need("value", _text), o.get("scheme", scheme))


def _svn(v: Json, where: str) -> Svn:
    if not isinstance(v, dict):
        return Svn(_uint(v, where))
    o = _Obj(v, where, ("type", "value"))
    kind = o.need("type", _text)
    if kind not in ("exact-value", "min-value"):
        raise _err(f"{where}.type", f"unknown svn type {kind!r:.40} (known: exact-value, min-value)")
    return Svn(o.need("value", _uint), minimum=kind == "min-value")


def _raw(v: Json, where: str) -> RawValue:
    o = _Obj(v, where, ("type", "value"))
    kind = o.need("type", _text)
    if kind == "bytes":
        return RawValue(o.need("value", _b64))
    if kind == "masked":
        def masked(x: Json, w: str) -> RawValue:
            m = _Obj(x, w, ("value", "mask"))
            return RawValue(m.need("value", _b64), m.need("mask", _b64))

        return o.need("value", masked)  # type: ignore[no-any-return]
    raise _err(f"{where}.type", f"unknown raw-value type {kind!r:.40} (known: bytes, masked)")


def _mac(v: Json, where: str) -> bytes:
    if not isinstance(v, str) or not re.fullmatch(r"[0-9a-fA-F]{2}([:-][0-9a-fA-F]{2}){5}([:-][0-9a-fA-F]{2}){0,2}", v):
        raise _err(where, "expected a MAC address such as 02:00:5e:10:00:00:00:01")
    data = bytes.fromhex(re.sub("[:-]", "", v))
    if len(data) not in (6, 8):
        raise _err(where, "a MAC address is 6 or 8 bytes")
    return data


def _ip(v: Json, where: str) -> bytes:
    try:
        return ipaddress.ip_address(_text(v, where)).packed
    except ValueError as exc:
        raise _err(where, f"not an IP address: {v!r:.40}") from exc


def _flags(v: Json, where: str) -> Mapping[int, bool]:
    if not isinstance(v, dict) or not v:
        raise _err(where, "expected a non-empty object of flags")
    out: dict[int, bool] = {}
    for name, value in v.items():
        key = _FLAGS.get(name, int(name) if name.isdigit() else None)
        if key is None:
            raise _err(where, f"unknown flag {name!r:.40} (known: {', '.join(_FLAGS)})")
        out[key] = _bool(value, f"{where}.{name}")
    return MappingProxyType(out)


def _registers(v: Json, where: str) -> Mapping[int | str, tuple[Digest, ...]]:
    if not isinstance(v, dict) or not v:
        raise _err(where, "expected a non-empty object of registers")
    out: dict[int | str, tuple[Digest, ...]] = {}
    for name, entry in v.items():
        o = _Obj(entry, f"{where}.{name}", ("key-type", "value"))
        kind = o.need("key-type", _text)
        if kind == "uint":
            if not name.isdigit():
                raise _err(f"{where}.{name}", "a uint register index must be digits")
            key: int | str = int(name)
        elif kind == "text":
            key = name
        else:
            raise _err(f"{where}.{name}.key-type", "expected uint or text")
        out[key] = o.need("value", _digests)
    return MappingProxyType(out)


def _int_range(v: Json, where: str) -> IntRange:
    if not isinstance(v, dict):
        n = _int(v, where)
        return IntRange(n, n)
    o = _Obj(v, where, ("type", "value"))
    kind = o.need("type", _text)
    if kind == "rawIntInteger":
        n = o.need("value", _int)
        return IntRange(n, n)
    if kind == "rawIntRange":
        def bounds(x: Json, w: str) -> IntRange:
            b = _Obj(x, w, ("min", "max"))
            lo, hi = b.get("min", _int), b.get("max", _int)
            if lo is not None and hi is not None and lo > hi:
                raise _err(w, f"min {lo} is greater than max {hi}")
            return IntRange(lo, hi)

        return o.need("value", bounds)  # type: ignore[no-any-return]
    raise _err(f"{where}.type", f"unknown int-range type {kind!r:.40} (known: rawIntInteger, rawIntRange)")


_MVAL_MEMBERS = ("version", "svn", "digests", "flags", "raw-value", "raw-value-mask", "mac-addr", "ip-addr",
                 "serial-number", "ueid", "uuid", "name", "cryptokeys", "integrity-registers", "int-range",
                 "psa-cert-num")


def _mval(v: Json, where: str) -> MeasurementValues:
    o = _Obj(v, where, _MVAL_MEMBERS)
    if not o.value:
        raise _err(where, "must set at least one measurement value")
    raw = o.get("raw-value", _raw)
    mask = o.get("raw-value-mask", _b64)
    if mask is not None:
        if raw is None or raw.mask is not None:
            raise _err(f"{where}.raw-value-mask", "needs an unmasked raw-value")
        raw = RawValue(raw.value, mask)
    cert_num = o.get("psa-cert-num", _text)
    return MeasurementValues(
        version=o.get("version", _version),
        svn=o.get("svn", _svn),
        digests=o.get("digests", _digests),
        flags=o.get("flags", _flags),
        raw=raw,
        mac_addr=o.get("mac-addr", _mac),
        ip_addr=o.get("ip-addr", _ip),
        serial_number=o.get("serial-number", _text),
        ueid=o.get("ueid", _sized(range(7, 34))),
        uuid=o.get("uuid", _uuid),
        name=o.get("name", _text),
        cryptokeys=o.get("cryptokeys", _crypto_keys),
        integrity_registers=o.get("integrity-registers", _registers),
        int_range=o.get("int-range", _int_range),
        extensions=MappingProxyType({_PSA_CERT_NUM: cert_num} if cert_num is not None else {}),
    )


def _measurement(v: Json, where: str) -> Measurement:
    o = _Obj(v, where, ("key", "value", "authorized-by"))
    return Measurement(o.need("value", _mval), o.get("key", _mkey), o.get("authorized-by", _crypto_keys))


_measurements = _many(_measurement)


# --- environments and triples (profile-dependent: the legacy PSA class id) ------------------

class _Reader:
    """Template → model for one CoRIM; ``legacy`` selects the pre-2026 PSA tags (600) for psa.impl-id."""

    def __init__(self, *, legacy: bool) -> None:
        self.class_id = _typed(
            MappingProxyType({**_CLASS_KINDS, "psa.impl-id": _LEGACY_IMPL_ID if legacy else _IMPL_ID}), "class id")

    def environment(self, v: Json, where: str) -> Environment:
        o = _Obj(v, where, ("class", "instance", "group"))
        env = Environment(o.get("class", self._class), o.get("instance", _instance), o.get("group", _group))
        if env == Environment():
            raise _err(where, "an environment needs a class, an instance or a group")
        return env

    def _class(self, v: Json, where: str) -> ClassMap:
        o = _Obj(v, where, ("id", "vendor", "model", "layer", "index"))
        c = ClassMap(o.get("id", self.class_id), o.get("vendor", _text), o.get("model", _text),
                     o.get("layer", _uint), o.get("index", _uint))
        if c == ClassMap():
            raise _err(where, "a class needs at least one of id, vendor, model, layer, index")
        return c

    def _values(self, v: Json, where: str) -> tuple[Environment, tuple[Measurement, ...]]:
        o = _Obj(v, where, ("environment", "measurements"))
        return o.need("environment", self.environment), o.need("measurements", _measurements)

    def reference(self, v: Json, where: str) -> ReferenceTriple:
        return ReferenceTriple(*self._values(v, where))

    def endorsed(self, v: Json, where: str) -> EndorsedTriple:
        return EndorsedTriple(*self._values(v, where))

    def key_triple(self, v: Json, where: str) -> KeyTriple:
        o = _Obj(v, where, ("environment", "verification-keys", "conditions"))
        cond = o.get("conditions", lambda x, w: _Obj(x, w, ("mkey", "authorized-by")))
        mkey = cond.get("mkey", _mkey) if cond is not None else None
        auth = cond.get("authorized-by", _crypto_keys) if cond is not None else None
        if cond is not None and mkey is None and auth is None:
            raise _err(f"{where}.conditions", "must set mkey or authorized-by")
        return KeyTriple(o.need("environment", self.environment), o.need("verification-keys", _crypto_keys),
                         mkey, auth)

    def _domain(self, members: str) -> Callable[[Json, str], DomainTriple]:
        def read(v: Json, where: str) -> DomainTriple:
            o = _Obj(v, where, ("domain-id", members))
            return DomainTriple(o.need("domain-id", self.environment), o.need(members, _many(self.environment)))

        return read

    def coswid(self, v: Json, where: str) -> CoswidTriple:
        o = _Obj(v, where, ("environment", "tag-ids"))
        return CoswidTriple(o.need("environment", self.environment),
                            o.need("tag-ids", _many(_identifier)))

    def series(self, v: Json, where: str) -> ConditionalSeries:
        o = _Obj(v, where, ("condition", "series"))
        c = o.need("condition", lambda x, w: _Obj(x, w, ("environment", "measurements", "authorized-by")))

        def record(x: Json, w: str) -> SeriesRecord:
            r = _Obj(x, w, ("selection", "addition"))
            return SeriesRecord(r.need("selection", _measurements), r.need("addition", _measurements))

        return ConditionalSeries(
            c.need("environment", self.environment),
            c.get("measurements", _many(_measurement, nonempty=False), ()),
            o.need("series", _many(record)),
            c.get("authorized-by", _crypto_keys))

    def conditional(self, v: Json, where: str) -> ConditionalEndorsement:
        o = _Obj(v, where, ("conditions", "endorsements"))

        def stateful(x: Json, w: str) -> StatefulEnvironment:
            return StatefulEnvironment(*self._values(x, w))

        return ConditionalEndorsement(o.need("conditions", _many(stateful)),
                                      o.need("endorsements", _many(self.endorsed)))

    def triples(self, v: Json, where: str) -> Triples:
        readers: dict[str, tuple[str, Callable[[Json, str], Any]]] = {
            "reference-values": ("reference", self.reference),
            "endorsed-values": ("endorsed", self.endorsed),
            "dev-identity-keys": ("identity", self.key_triple),
            "attester-verification-keys": ("attest_key", self.key_triple),
            "dependency-triples": ("dependency", self._domain("trustees")),
            "membership-triples": ("membership", self._domain("members")),
            "coswid-triples": ("coswid", self.coswid),
            "conditional-endorsement-series": ("conditional_series", self.series),
            "conditional-endorsements": ("conditional", self.conditional),
        }
        o = _Obj(v, where, readers)
        fields = {attr: o.get(name, _many(read)) for name, (attr, read) in readers.items()}
        present = {k: x for k, x in fields.items() if x is not None}
        if not present:
            raise _err(where, f"no triples (known: {', '.join(readers)})")
        return Triples(**present)

    def comid(self, v: Json, where: str) -> Comid:
        o = _Obj(v, where, ("lang", "tag-identity", "entities", "linked-tags", "triples"))
        ident = o.need("tag-identity", lambda x, w: _Obj(x, w, ("id", "version")))
        return Comid(
            tag_id=ident.need("id", _identifier),
            tag_version=ident.get("version", _uint, 0),
            language=o.get("lang", _text),
            entities=o.get("entities", _many(_entity(_COMID_ROLES)), ()),
            linked_tags=o.get("linked-tags", _many(_linked_tag), ()),
            triples=o.need("triples", self.triples),
        )


def _entity(roles: Mapping[str, int]) -> Callable[[Json, str], Entity]:
    def read(v: Json, where: str) -> Entity:
        o = _Obj(v, where, ("name", "regid", "roles"))
        return Entity(o.need("name", _text), o.need("roles", _many(_named(roles, "role"))), o.get("regid", _text))

    return read


def _linked_tag(v: Json, where: str) -> LinkedTag:
    o = _Obj(v, where, ("target", "rel"))
    return LinkedTag(o.need("target", _identifier), o.need("rel", _named(_RELS, "rel")))


# --- the CoRIM ------------------------------------------------------------------------------

def _profile(v: Json, where: str) -> ProfileId:
    if isinstance(v, str):
        return ProfileId(_text(v, where), "uri")
    o = _Obj(v, where, ("type", "value"))
    kind = o.need("type", _text)
    if kind not in ("uri", "oid", "text"):
        raise _err(f"{where}.type", f"unknown profile type {kind!r:.40} (known: uri, oid, text)")
    if kind == "oid":
        o.need("value", _oid)  # checks the dotted form
    return ProfileId(o.need("value", _text), kind)


def _legacy_profiles(v: Json, where: str) -> ProfileId:
    items = _list(v, where)
    if len(items) != 1:
        raise _err(where, "a CoRIM has exactly one profile")
    return ProfileId(_text(items[0], f"{where}[0]"), "uri")


def _locator(v: Json, where: str) -> Locator:
    o = _Obj(v, where, ("href", "thumbprint"))

    def hrefs(x: Json, w: str) -> tuple[str, ...]:
        return _each(_text, x, w) if isinstance(x, list) else (_text(x, w),)

    def thumbprints(x: Json, w: str) -> tuple[Digest, ...]:
        """One digest (``[alg, value]`` or ``"alg;value"``) or an array of them."""
        several = isinstance(x, list) and bool(x) and (
            isinstance(x[0], list) or (isinstance(x[0], str) and ";" in x[0]))
        return _each(_digest, x, w) if several else (_digest(x, w),)

    return Locator(o.need("href", hrefs), o.get("thumbprint", thumbprints, ()))


def _validity(v: Json, where: str) -> Validity:
    o = _Obj(v, where, ("not-before", "not-after"))
    validity = Validity(o.get("not-before", _time), o.need("not-after", _time))
    if validity.not_before is not None and validity.not_after is not None and validity.not_before > validity.not_after:
        raise _err(where, "not-before is after not-after")
    return validity


def _opaque(v: Json, where: str) -> OpaqueTag:
    o = _Obj(v, where, ("tag", "data"))
    tag = o.need("tag", _uint)
    if tag not in (505, 508):
        raise _err(f"{where}.tag", "only CoSWID (505) and CoTL (508) tags are carried as data")
    return OpaqueTag(tag, o.need("data", _b64))


_CORIM_MEMBERS = ("corim-id", "profile", "profiles", "dependent-rims", "validity", "entities", "comids",
                  "other-tags")


def corim_from_template(doc: Json, *, extra_comids: Sequence[ComidSource] = (),
                        load: Callable[[str], Mapping[str, Any] | Comid] | None = None) -> Corim:
    """The CoRIM a template describes (validated by one encode/decode round).

    CoMIDs come from the template's ``comids`` and then *extra_comids*; each is an inline
    template, a built :class:`Comid`, or a path string handed to *load* (which returns a
    template or a CoMID). Raises :class:`TemplateError` naming the member at fault.
    """
    o = _Obj(doc, "", _CORIM_MEMBERS)
    if "profile" in o.value and "profiles" in o.value:
        raise _err("profiles", "give profile or profiles, not both")
    profile = o.get("profile", _profile) or o.get("profiles", _legacy_profiles)
    reader = _Reader(legacy=profile is not None and profile.value == PSA_LEGACY.id)
    sources: list[tuple[str, ComidSource]] = [
        (f"comids[{i}]", s) for i, s in enumerate(o.get("comids", lambda x, w: _list(x, w, nonempty=False), []))]
    sources += [(f"comid {i}", s) for i, s in enumerate(extra_comids)]
    if len(sources) > _MAX_COMIDS:
        raise _err("comids", f"more than {_MAX_COMIDS} CoMIDs")
    tags: list[Comid | OpaqueTag] = [_resolve(reader, where, s, load) for where, s in sources]
    tags += o.get("other-tags", _many(_opaque), ())
    if not tags:
        raise _err("comids", "a CoRIM needs at least one CoMID (in comids, or given separately)")
    corim = Corim(
        id=o.need("corim-id", _identifier),
        tags=tuple(tags),
        profile=profile,
        dependent_rims=o.get("dependent-rims", _many(_locator), ()),
        rim_validity=o.get("validity", _validity),
        entities=o.get("entities", _many(_entity(_CORIM_ROLES)), ()),
    )
    return _checked(corim)


def _resolve(reader: _Reader, where: str, source: ComidSource,
             load: Callable[[str], Mapping[str, Any] | Comid] | None) -> Comid:
    if isinstance(source, Comid):
        return source
    if isinstance(source, str):
        if load is None:
            raise _err(where, "a CoMID given by path needs a template file to be relative to")
        loaded = load(source)
        if isinstance(loaded, Comid):
            return loaded
        try:
            return reader.comid(loaded, "")
        except TemplateError as exc:
            raise exc.located(source) from exc
    return reader.comid(source, where)


def _checked(corim: Corim) -> Corim:
    """Encode and decode once: the decoder's rules apply, and the result is what a verifier reads."""
    try:
        decoded = decode_corim(encode_corim(corim))
    except Error as exc:
        raise TemplateError(f"the CoRIM it describes does not encode validly: {exc.detail}") from exc
    return decoded


def comid_from_template(doc: Json, *, legacy: bool = False) -> Comid:
    """One CoMID template (``legacy``: ``psa.impl-id`` class ids as tag 600, pre-2026 Veraison)."""
    return _Reader(legacy=legacy).comid(doc, "")


# --- the edge: files ------------------------------------------------------------------------

def _read_file(path: Path) -> bytes:
    try:
        with path.open("rb") as fh:
            data = fh.read(MAX_TEMPLATE_SIZE + 1)
    except OSError as exc:
        raise TemplateError(f"cannot read: {exc.strerror}", file=str(path)) from exc
    if len(data) > MAX_TEMPLATE_SIZE:
        raise TemplateError(f"larger than {MAX_TEMPLATE_SIZE} bytes", file=str(path))
    return data


def _json(data: bytes, path: Path) -> Json:
    try:
        return json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise TemplateError(f"not JSON: {exc}", file=str(path)) from exc


def load_comid_source(path: Path) -> Mapping[str, Any] | Comid:
    """A CoMID file: a JSON template, or a CBOR CoMID (``506(bstr)`` or the bare map)."""
    data = _read_file(path)
    if data.lstrip()[:1] == b"{":
        doc = _json(data, path)
        if not isinstance(doc, dict):
            raise TemplateError("expected a JSON object", file=str(path))
        return doc
    try:
        return decode_comid(data, where=path.name)
    except Error as exc:
        raise TemplateError(f"neither a JSON template nor a CBOR CoMID: {exc.detail}", file=str(path)) from exc


def load_template(path: str | Path, *, extra_comids: Sequence[str | Path] = ()) -> Corim:
    """Read a CoRIM template and the CoMID files it names (relative to it), and build the CoRIM.

    *extra_comids* are further CoMID files (JSON templates or CBOR), as cocli's ``--comid``.
    """
    path = Path(path)
    doc = _json(_read_file(path), path)
    base = path.parent

    def load(ref: str) -> Mapping[str, Any] | Comid:
        return load_comid_source(base / ref)  # an absolute ref stays as it is

    extras = [str(Path(p).resolve()) for p in extra_comids]
    try:
        return corim_from_template(doc, extra_comids=extras, load=load)
    except TemplateError as exc:
        if exc.file is None:
            raise exc.located(str(path)) from exc
        raise


# --- model → template -----------------------------------------------------------------------

def _tagged_out(t: Tagged) -> Json:
    v = t.value
    value: Json
    if t.type == "psa.refval-id" and isinstance(v, bytes):
        ref = cbor.loads(v)
        names = {k: n for n, k in _LEGACY_REFVAL}
        value = {names.get(k, str(k)): _b64_out(x) if isinstance(x, bytes) else x for k, x in ref.items()}
    elif isinstance(v, Digest):
        value = _digest_text_out(v)
    elif t.type == "uuid" and isinstance(v, bytes) and len(v) == 16:
        value = _uuid_out(v)
    elif t.type == "oid" and isinstance(v, bytes):
        value = _oid_out(v)
    elif isinstance(v, bytes):
        value = _b64_out(v)
    else:
        value = v
    return {"type": t.type, "value": value}


def _environment_out(e: Environment) -> Json:
    out: dict[str, Any] = {}
    if e.class_ is not None:
        c = e.class_
        cls = {"id": _tagged_out(c.class_id) if c.class_id is not None else None, "vendor": c.vendor,
               "model": c.model, "layer": c.layer, "index": c.index}
        out["class"] = {k: x for k, x in cls.items() if x is not None}
    if e.instance is not None:
        out["instance"] = _tagged_out(e.instance)
    if e.group is not None:
        out["group"] = _tagged_out(e.group)
    return out


def _mval_out(m: MeasurementValues) -> Json:
    out: dict[str, Any] = {}
    if m.version is not None:
        out["version"] = {"value": m.version.version}
        if m.version.scheme is not None:
            scheme = m.version.scheme
            out["version"]["scheme"] = _named_out(_VERSION_SCHEMES, scheme) if isinstance(scheme, int) else scheme
    if m.svn is not None:
        out["svn"] = {"type": "min-value" if m.svn.minimum else "exact-value", "value": m.svn.value}
    if m.digests is not None:
        out["digests"] = [_digest_out(d) for d in m.digests]
    if m.flags is not None:
        flag_names = _inverse(_FLAGS)
        out["flags"] = {flag_names.get(k, str(k)): b for k, b in m.flags.items()}
    if m.raw is not None:
        out["raw-value"] = ({"type": "bytes", "value": _b64_out(m.raw.value)} if m.raw.mask is None else
                            {"type": "masked", "value": {"value": _b64_out(m.raw.value), "mask": _b64_out(m.raw.mask)}})
    if m.mac_addr is not None:
        out["mac-addr"] = ":".join(f"{b:02x}" for b in m.mac_addr)
    if m.ip_addr is not None:
        out["ip-addr"] = str(ipaddress.ip_address(m.ip_addr))
    for name, value in (("serial-number", m.serial_number), ("name", m.name)):
        if value is not None:
            out[name] = value
    if m.ueid is not None:
        out["ueid"] = _b64_out(m.ueid)
    if m.uuid is not None:
        out["uuid"] = _uuid_out(m.uuid)
    if m.cryptokeys is not None:
        out["cryptokeys"] = [_tagged_out(k) for k in m.cryptokeys]
    if m.integrity_registers is not None:
        out["integrity-registers"] = {
            str(k): {"key-type": "uint" if isinstance(k, int) else "text", "value": [_digest_out(d) for d in ds]}
            for k, ds in m.integrity_registers.items()}
    if m.int_range is not None:
        r = m.int_range
        out["int-range"] = ({"type": "rawIntInteger", "value": r.min} if r.min is not None and r.min == r.max else
                            {"type": "rawIntRange", "value": {k: x for k, x in (("min", r.min), ("max", r.max))
                                                              if x is not None}})
    ext = dict(m.extensions)
    cert_num = ext.pop(_PSA_CERT_NUM, None)
    if isinstance(cert_num, str):
        out["psa-cert-num"] = cert_num
    elif cert_num is not None:
        ext[_PSA_CERT_NUM] = cert_num
    if ext:
        out["extensions"] = {str(k): x for k, x in ext.items()}  # shown, not accepted back
    return out


def _measurement_out(m: Measurement) -> Json:
    out: dict[str, Any] = {}
    if m.mkey is not None:
        out["key"] = _tagged_out(m.mkey)
    out["value"] = _mval_out(m.mval)
    if m.authorized_by is not None:
        out["authorized-by"] = [_tagged_out(k) for k in m.authorized_by]
    return out


def _values_out(env: Environment, ms: Sequence[Measurement]) -> Json:
    return {"environment": _environment_out(env), "measurements": [_measurement_out(m) for m in ms]}


def _key_triple_out(t: KeyTriple) -> Json:
    out: dict[str, Any] = {"environment": _environment_out(t.environment),
                           "verification-keys": [_tagged_out(k) for k in t.keys]}
    cond: dict[str, Any] = {}
    if t.mkey is not None:
        cond["mkey"] = _tagged_out(t.mkey)
    if t.authorized_by is not None:
        cond["authorized-by"] = [_tagged_out(k) for k in t.authorized_by]
    if cond:
        out["conditions"] = cond
    return out


def _triples_out(t: Triples) -> Json:
    out: dict[str, Any] = {}
    if t.reference:
        out["reference-values"] = [_values_out(x.environment, x.measurements) for x in t.reference]
    if t.endorsed:
        out["endorsed-values"] = [_values_out(x.environment, x.measurements) for x in t.endorsed]
    if t.identity:
        out["dev-identity-keys"] = [_key_triple_out(x) for x in t.identity]
    if t.attest_key:
        out["attester-verification-keys"] = [_key_triple_out(x) for x in t.attest_key]
    if t.dependency:
        out["dependency-triples"] = [{"domain-id": _environment_out(x.domain),
                                      "trustees": [_environment_out(m) for m in x.members]} for x in t.dependency]
    if t.membership:
        out["membership-triples"] = [{"domain-id": _environment_out(x.domain),
                                      "members": [_environment_out(m) for m in x.members]} for x in t.membership]
    if t.coswid:
        out["coswid-triples"] = [{"environment": _environment_out(x.environment),
                                  "tag-ids": [_identifier_out(i) for i in x.tag_ids]} for x in t.coswid]
    if t.conditional_series:
        out["conditional-endorsement-series"] = [_series_out(x) for x in t.conditional_series]
    if t.conditional:
        out["conditional-endorsements"] = [
            {"conditions": [_values_out(c.environment, c.measurements) for c in x.conditions],
             "endorsements": [_values_out(e.environment, e.measurements) for e in x.endorsements]}
            for x in t.conditional]
    if t.extensions:
        out["extensions"] = {str(k): x for k, x in t.extensions.items()}  # shown, not accepted back
    return out


def _series_out(s: ConditionalSeries) -> Json:
    cond: dict[str, Any] = _values_out(s.environment, s.measurements)
    if s.authorized_by is not None:
        cond["authorized-by"] = [_tagged_out(k) for k in s.authorized_by]
    return {"condition": cond, "series": [{"selection": [_measurement_out(m) for m in r.condition],
                                           "addition": [_measurement_out(m) for m in r.addition]} for r in s.series]}


def _entity_out(e: Entity, roles: Mapping[str, int]) -> Json:
    out: dict[str, Any] = {"name": e.name}
    if e.reg_id is not None:
        out["regid"] = e.reg_id
    out["roles"] = [_named_out(roles, r) for r in e.roles]
    return out


def comid_to_template(c: Comid) -> dict[str, Any]:
    """A CoMID as a cocli-style JSON template (JSON-ready: only str, int, bool, list, dict)."""
    out: dict[str, Any] = {}
    if c.language is not None:
        out["lang"] = c.language
    out["tag-identity"] = {"id": _identifier_out(c.tag_id), "version": c.tag_version}
    if c.entities:
        out["entities"] = [_entity_out(e, _COMID_ROLES) for e in c.entities]
    if c.linked_tags:
        out["linked-tags"] = [{"target": _identifier_out(lt.tag_id), "rel": _named_out(_RELS, lt.rel)}
                              for lt in c.linked_tags]
    out["triples"] = _triples_out(c.triples)
    if c.extensions:
        out["extensions"] = {str(k): x for k, x in c.extensions.items()}  # shown, not accepted back
    return out


def validity_to_template(v: Validity) -> dict[str, str]:
    """``{"not-before", "not-after"}`` as RFC 3339 UTC times (absent ends left out)."""
    return {k: _time_out(t) for k, t in (("not-before", v.not_before), ("not-after", v.not_after)) if t is not None}


def corim_to_template(c: Corim) -> dict[str, Any]:
    """A CoRIM as a template :func:`corim_from_template` reads back to an equal CoRIM (CoMIDs inline).

    Extension code points the vocabulary has no name for are shown under ``extensions`` and are
    not accepted back.
    """
    out: dict[str, Any] = {"corim-id": _identifier_out(c.id)}
    if c.profile is not None:
        out["profile"] = {"type": c.profile.kind, "value": c.profile.value}
    if c.dependent_rims:
        out["dependent-rims"] = [
            {"href": loc.href[0] if len(loc.href) == 1 else list(loc.href),
             **({"thumbprint": [_digest_out(d) for d in loc.thumbprints]} if loc.thumbprints else {})}
            for loc in c.dependent_rims]
    if c.rim_validity is not None:
        out["validity"] = validity_to_template(c.rim_validity)
    if c.entities:
        out["entities"] = [_entity_out(e, _CORIM_ROLES) for e in c.entities]
    out["comids"] = [comid_to_template(t) for t in c.comids]
    others = [t for t in c.tags if isinstance(t, OpaqueTag)]
    if others:
        out["other-tags"] = [{"tag": t.tag, "data": _b64_out(t.data)} for t in others]
    if c.extensions:
        out["extensions"] = {str(k): x for k, x in c.extensions.items()}  # shown, not accepted back
    return out
