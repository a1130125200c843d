"""CBOR-level readers shared by the CoRIM and CoMID decoders: typed values, digests, times, maps.

Theory of operation: every reader is a pure function ``(item, where) -> value`` over an item our
bounded decoder (:func:`federation.cbor.loads`) produced, and raises :class:`MalformedError`
whose message starts with ``where`` (a path such as ``comid.triples.reference-triples[0]``) so
that a rejection names what is wrong. Maps are read through :func:`read_map` and a table of
:class:`Field` rows per CDDL map (h11 style: the rules are data, the code is one loop).

The tag tables say, for each CBOR tag a CoRIM may carry as an identifier or key, its type name
(the draft's / Veraison's vocabulary, used in profile messages) and how its content is read.
The legacy tags 600 (``psa.impl-id``) and 601 (``psa.refval-id``) of Veraison's pre-2026 PSA
encoding are read here too; only the legacy PSA profile accepts them (``profiles``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any

from federation import cbor
from federation.cbor import CBORTag
from federation.errors import MalformedError

from .model import HASH_ALGORITHMS, Digest, Identifier, Tagged, Validity

__all__ = [
    "CLASS_ID_TAGS",
    "CRYPTO_KEY_TAGS",
    "GROUP_TAGS",
    "INSTANCE_TAGS",
    "MKEY_TAGS",
    "TAG_TYPES",
    "VALIDITY_FIELDS",
    "Field",
    "Reader",
    "as_bytes",
    "as_list",
    "as_map",
    "as_text",
    "as_uint",
    "digest",
    "digests",
    "epoch_time",
    "identifier",
    "list_of",
    "read_map",
    "tagged",
    "uri",
    "validity",
]

Reader = Callable[[Any, str], Any]

TAG_URI, TAG_EPOCH = 32, 1


def _kind(item: Any) -> str:
    """The CBOR type of *item*, for messages."""
    if isinstance(item, bool):
        return "bool"
    if isinstance(item, CBORTag):
        return f"tag {item.tag}"
    return {int: "int", str: "text", bytes: "bytes", list: "array", dict: "map", float: "float",
            type(None): "null"}.get(type(item), type(item).__name__)


def _fail(where: str, what: str, item: Any) -> MalformedError:
    return MalformedError(f"{where}: expected {what}, got {_kind(item)}")


def as_map(item: Any, where: str, *, nonempty: bool = False) -> dict[Any, Any]:
    if not isinstance(item, dict):
        raise _fail(where, "a map", item)
    if nonempty and not item:
        raise MalformedError(f"{where}: must not be empty")
    return item


def as_list(item: Any, where: str, *, nonempty: bool = True, size: Collection[int] | None = None) -> list[Any]:
    if not isinstance(item, list):
        raise _fail(where, "an array", item)
    if nonempty and not item:
        raise MalformedError(f"{where}: must not be empty")
    if size is not None and len(item) not in size:
        raise MalformedError(f"{where}: expected {' or '.join(map(str, sorted(size)))} elements, got {len(item)}")
    return item


def list_of(read: Reader, *, nonempty: bool = True) -> Reader:
    """A reader for ``[+ x]`` (or ``[* x]``) given the reader of ``x``; returns a tuple."""

    def read_list(item: Any, where: str) -> tuple[Any, ...]:
        return tuple(read(x, f"{where}[{i}]") for i, x in enumerate(as_list(item, where, nonempty=nonempty)))

    return read_list


def as_text(item: Any, where: str) -> str:
    if not isinstance(item, str):
        raise _fail(where, "text", item)
    return item


def as_uint(item: Any, where: str) -> int:
    if isinstance(item, bool) or not isinstance(item, int) or item < 0:
        raise _fail(where, "an unsigned integer", item)
    return item


def as_int(item: Any, where: str) -> int:
    if isinstance(item, bool) or not isinstance(item, int):
        raise _fail(where, "an integer", item)
    return item


def as_bool(item: Any, where: str) -> bool:
    if not isinstance(item, bool):
        raise _fail(where, "a bool", item)
    return item


def as_bytes(item: Any, where: str, sizes: Collection[int] | range | None = None) -> bytes:
    if not isinstance(item, bytes):
        raise _fail(where, "bytes", item)
    if sizes is not None and len(item) not in sizes:
        raise MalformedError(f"{where}: {len(item)} bytes is not an allowed length")
    return item


def uri(item: Any, where: str) -> str:
    """CDDL prelude ``uri`` = ``#6.32(tstr)``."""
    if not isinstance(item, CBORTag) or item.tag != TAG_URI:
        raise _fail(where, "a URI (tag 32)", item)
    return as_text(item.value, where)


def identifier(item: Any, where: str) -> Identifier:
    """``tstr / uuid-type`` (corim-id, tag-id): text or a 16-byte binary UUID."""
    if isinstance(item, str):
        return item
    if isinstance(item, bytes):
        return as_bytes(item, where, (16,))
    raise _fail(where, "text or a 16-byte UUID", item)


def digest(item: Any, where: str) -> Digest:
    """``[alg: int / tstr, val: bytes]``; a known algorithm must come with its digest length."""
    alg, value = as_list(item, where, size=(2,))
    if isinstance(alg, bool) or not isinstance(alg, int | str):
        raise _fail(f"{where}.alg", "an integer or text", alg)
    value = as_bytes(value, f"{where}.val")
    known = HASH_ALGORITHMS.get(alg) if isinstance(alg, int) else next(
        (spec for spec in HASH_ALGORITHMS.values() if spec[0] == alg), None)
    if known is not None and len(value) != known[1]:
        raise MalformedError(f"{where}: {known[0]} digest must be {known[1]} bytes, got {len(value)}")
    return Digest(alg, value)


def digests(item: Any, where: str) -> tuple[Digest, ...]:
    """``digests-type = [+ digest]``; each algorithm at most once (draft "Digest")."""
    out = list_of(digest)(item, where)
    algs = [d.alg for d in out]
    if len(set(algs)) != len(algs):
        raise MalformedError(f"{where}: an algorithm appears more than once")
    return tuple(out)


def epoch_time(item: Any, where: str) -> datetime:
    """A numeric date (int or float seconds since the epoch) as an aware UTC datetime."""
    if isinstance(item, bool) or not isinstance(item, int | float) or (
            isinstance(item, float) and not math.isfinite(item)):
        raise _fail(where, "a numeric date", item)
    try:
        return datetime.fromtimestamp(item, UTC)
    except (OverflowError, OSError, ValueError) as exc:
        raise MalformedError(f"{where}: date out of range") from exc


def _tagged_time(item: Any, where: str) -> datetime:
    """CDDL prelude ``time`` = ``#6.1(number)``."""
    if not isinstance(item, CBORTag) or item.tag != TAG_EPOCH:
        raise _fail(where, "an epoch time (tag 1)", item)
    return epoch_time(item.value, where)


def validity(item: Any, where: str) -> Validity:
    """``validity-map = {? 0: time, 1: time}``; not-before must not be after not-after."""
    f, _ = read_map(item, VALIDITY_FIELDS, where)
    v = Validity(**f)
    if v.not_before is not None and v.not_after is not None and v.not_before > v.not_after:
        raise MalformedError(f"{where}: not-before is after not-after")
    return v


# --- typed values ---------------------------------------------------------------------------

def _bytes_of(sizes: Collection[int] | range | None = None) -> Reader:
    return lambda item, where: as_bytes(item, where, sizes)


def _encoded_map(item: Any, where: str) -> bytes:
    """Structured content kept as deterministic CBOR: equality is then binary comparison."""
    return cbor.dumps(as_map(item, where, nonempty=True))


@dataclass(frozen=True, slots=True)
class _TagType:
    name: str
    read: Reader


TAG_TYPES: Mapping[int, _TagType] = MappingProxyType({
    37: _TagType("uuid", _bytes_of((16,))),
    111: _TagType("oid", _bytes_of(range(1, 256))),
    550: _TagType("ueid", _bytes_of(range(7, 34))),
    554: _TagType("pkix-base64-key", as_text),
    555: _TagType("pkix-base64-cert", as_text),
    556: _TagType("pkix-base64-cert-path", as_text),
    557: _TagType("thumbprint", digest),
    558: _TagType("cose-key", _encoded_map),
    559: _TagType("cert-thumbprint", digest),
    560: _TagType("bytes", _bytes_of()),
    561: _TagType("cert-path-thumbprint", digest),
    562: _TagType("pkix-asn1der-cert", _bytes_of(range(1, 1 << 16))),
    600: _TagType("psa.impl-id", _bytes_of()),  # legacy Veraison PSA encoding
    601: _TagType("psa.refval-id", _encoded_map),  # legacy Veraison PSA encoding
})

# Which tags each position accepts ($...-type-choice in the CDDL, plus the legacy ones).
CLASS_ID_TAGS = frozenset({111, 37, 560, 600})
INSTANCE_TAGS = frozenset({550, 37, 560, 554, 555, 558, 557, 559, 562})
GROUP_TAGS = frozenset({37, 560})
CRYPTO_KEY_TAGS = frozenset({554, 555, 556, 557, 558, 559, 561, 562, 560})
MKEY_TAGS = frozenset({111, 37, 601})
_UNTAGGED_MKEY: Mapping[type, tuple[str, Reader]] = MappingProxyType(
    {str: ("string", as_text), int: ("uint", as_uint)})


def tagged(allowed: frozenset[int], *, untagged: bool = False) -> Reader:
    """A reader for a ``$...-type-choice`` of tagged values (and, for mkeys, uint / tstr)."""

    def read(item: Any, where: str) -> Tagged:
        if isinstance(item, CBORTag):
            spec = TAG_TYPES.get(item.tag) if item.tag in allowed else None
            if spec is None:
                raise MalformedError(f"{where}: CBOR tag {item.tag} is not allowed here")
            return Tagged(spec.name, spec.read(item.value, where), item.tag)
        plain = _UNTAGGED_MKEY.get(type(item)) if untagged else None
        if plain is None:
            raise _fail(where, "a tagged value", item)
        return Tagged(plain[0], plain[1](item, where))

    return read


# --- maps -----------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Field:
    """One row of a map table: CDDL member name (for messages), attribute name, reader."""

    name: str
    attr: str
    read: Reader
    required: bool = False


def read_map(item: Any, table: Mapping[int, Field], where: str, *, extensible: bool = False,
             nonempty: bool = False) -> tuple[dict[str, Any], Mapping[int, Any]]:
    """Read a CBOR map through its table: ``(attributes, extensions)``.

    Unknown integer keys are extensions where the CDDL has an extension socket (``extensible``)
    and an error elsewhere; a missing required member is an error naming it.
    """
    m = as_map(item, where, nonempty=nonempty)
    out: dict[str, Any] = {}
    ext: dict[int, Any] = {}
    for key, value in m.items():
        f = table.get(key) if isinstance(key, int) and not isinstance(key, bool) else None
        if f is not None:
            out[f.attr] = f.read(value, f"{where}.{f.name}")
        elif extensible and isinstance(key, int) and not isinstance(key, bool):
            ext[key] = value
        else:
            raise MalformedError(f"{where}: unexpected key {key!r:.40}")
    for f in table.values():
        if f.required and f.attr not in out:
            raise MalformedError(f"{where}: {f.name} is missing")
    return out, MappingProxyType(ext) if ext else MappingProxyType({})


VALIDITY_FIELDS: Mapping[int, Field] = {
    0: Field("not-before", "not_before", _tagged_time),
    1: Field("not-after", "not_after", _tagged_time, required=True),
}
