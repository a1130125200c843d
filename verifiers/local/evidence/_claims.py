"""Claim tables: one row per claim says its CBOR key, its JSON name, its shape and its rule.

Theory of operation. The PSA and CCA token formats are "a CBOR map with integer keys whose
values obey per-key rules", and their JSON twins (evcli naming) are the same maps with names for
keys and standard base64 for bytes. So each profile is a tuple of :class:`Claim` rows, and three
generic functions walk a table:

* :func:`read` turns a decoded CBOR map into constructor arguments, checking every rule and
  naming the claim in the :class:`~federation.errors.MalformedError` it raises;
* :func:`write` turns a claims object back into the CBOR map (the encoder, and the validator:
  a claims object checks itself by reading its own encoding, so there is one rule set);
* :func:`json_to_wire` renames JSON members and decodes base64 by shape, *without* validating,
  so tests can build deliberately broken tokens from Veraison's claims files.

Rules live in the rows (readers), never in ``if`` chains over keys. Unknown keys are ignored,
as Veraison's decoders ignore them.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any, NoReturn

from federation.errors import MalformedError
from federation.keys import b64url_decode

__all__ = [
    "Claim",
    "HASH_ALG_IDS",
    "HASH_SIZES",
    "LIFECYCLE_STATES",
    "SW_COMPONENT",
    "Shape",
    "SwComponent",
    "b64url",
    "blob",
    "bytes_list",
    "fail",
    "hash_alg_id",
    "impl_id",
    "int32",
    "integer",
    "json_to_wire",
    "lifecycle",
    "lifecycle_state",
    "nonempty_text",
    "psa_hash",
    "read",
    "single_nonce",
    "std_b64",
    "sw_components",
    "text",
    "to_json",
    "ueid_rand",
    "uint",
    "write",
]

Reader = Callable[[Any, str], Any]


def fail(claim: str, problem: str) -> NoReturn:
    """Raise the one error type of untrusted input, naming the claim at fault."""
    raise MalformedError(f"{claim}: {problem}")


class Shape(Enum):
    """How a claim's value is spelled on the wire; drives JSON translation and encoding."""

    SCALAR = "scalar"  # int or text: the same in CBOR and JSON
    BYTES = "bytes"  # bstr in CBOR, standard base64 text in JSON
    BYTES_LIST = "bytes-list"  # [* bstr] / [* base64]
    NONCE = "nonce"  # bstr or [+ bstr] (EAT nonce) / base64 or [+ base64]
    SW_COMPONENTS = "sw-components"  # [+ {component map}] / [+ {component object}]


@dataclass(frozen=True, slots=True)
class Claim:
    """One claim of a profile: where it lives, what it is called, and the rule it must obey."""

    key: int
    name: str  # the evcli JSON name; also the claim's name in error reasons
    attr: str  # the field of the claims dataclass
    shape: Shape
    read: Reader  # raw CBOR value -> typed value, or raise naming the claim
    required: bool = False
    emit: Callable[[Any], Any] | None = None  # typed value -> wire value (None: omit); default by shape


# -- readers: each takes the raw CBOR value and the claim's name --------------------------------


def text(value: Any, claim: str) -> str:
    if not isinstance(value, str):
        fail(claim, f"must be a text string, got {type(value).__name__}")
    return value


def nonempty_text(value: Any, claim: str) -> str:
    if not text(value, claim):
        fail(claim, "must not be empty")
    return str(value)


def integer(value: Any, claim: str, lo: int, hi: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        fail(claim, f"must be an integer, got {type(value).__name__}")
    if not lo <= value <= hi:
        fail(claim, f"value {value} out of range [{lo}, {hi}]")
    return value


def int32(value: Any, claim: str) -> int:
    return integer(value, claim, -(1 << 31), (1 << 31) - 1)


def uint(value: Any, claim: str) -> int:
    return integer(value, claim, 0, (1 << 64) - 1)


def blob(value: Any, claim: str, sizes: Sequence[int] | range | None = None) -> bytes:
    if not isinstance(value, bytes):
        fail(claim, f"must be a byte string, got {type(value).__name__}")
    if sizes is not None and len(value) not in sizes:
        fail(claim, f"length {len(value)} is invalid (must be {_sizes_text(sizes)} bytes)")
    return value


def _sizes_text(sizes: Sequence[int] | range) -> str:
    if isinstance(sizes, range):
        return f"between {sizes.start} and {sizes.stop - 1}"
    return " or ".join(str(s) for s in sizes)


HASH_SIZES = (32, 48, 64)  # psa-hash-type: SHA-256/384/512 digests


def psa_hash(value: Any, claim: str) -> bytes:
    return blob(value, claim, HASH_SIZES)


def impl_id(value: Any, claim: str) -> bytes:
    return blob(value, claim, (32,))


def ueid_rand(value: Any, claim: str) -> bytes:
    """A PSA/CCA instance id: a 33-byte UEID of type RAND (first byte 0x01)."""
    data = blob(value, claim, (33,))
    if data[0] != 0x01:
        fail(claim, f"UEID type 0x{data[0]:02x} is invalid (must be RAND = 0x01)")
    return data


def single_nonce(value: Any, claim: str, sizes: Sequence[int] = HASH_SIZES) -> bytes:
    """An EAT nonce claim (bstr or array of bstr) that a PSA/CCA profile restricts to one."""
    if isinstance(value, list):
        if len(value) != 1:
            fail(claim, f"got {len(value)} nonces, want exactly 1")
        value = value[0]
    return blob(value, claim, sizes)


def bytes_list(value: Any, claim: str, count: int, sizes: Sequence[int]) -> tuple[bytes, ...]:
    if not isinstance(value, list):
        fail(claim, f"must be an array, got {type(value).__name__}")
    if len(value) != count:
        fail(claim, f"has {len(value)} entries, want {count}")
    return tuple(blob(v, f"{claim}[{i}]", sizes) for i, v in enumerate(value))


# Security lifecycle: the claim is a uint16 whose high byte names the state (PSA, RFC 9783 §4.2.1;
# the CCA platform reuses the ranges). Values outside these ranges are invalid.
LIFECYCLE_STATES: tuple[tuple[int, str], ...] = (
    (0x0000, "unknown"),
    (0x1000, "assembly-and-test"),
    (0x2000, "psa-rot-provisioning"),
    (0x3000, "secured"),
    (0x4000, "non-psa-rot-debug"),
    (0x5000, "recoverable-psa-rot-debug"),
    (0x6000, "decommissioned"),
)


def lifecycle_state(value: int) -> str | None:
    """The state a lifecycle value falls in, or None if it is in no defined range."""
    for base, name in LIFECYCLE_STATES:
        if base <= value <= base + 0xFF:
            return name
    return None


def lifecycle(value: Any, claim: str) -> int:
    v = integer(value, claim, 0, 0xFFFF)
    if lifecycle_state(v) is None:
        fail(claim, f"value 0x{v:04x} is in no defined lifecycle range")
    return v


# IANA "Hash Function Textual Names", the set psatoken accepts for hash-algo-id claims.
HASH_ALG_IDS = frozenset({"md2", "md5", "sha-1", "sha-224", "sha-256", "sha-384", "sha-512",
                          "shake128", "shake256"})


def hash_alg_id(value: Any, claim: str) -> str:
    name = nonempty_text(value, claim)
    if name not in HASH_ALG_IDS:
        fail(claim, f"{name!r:.40} is not a known hash algorithm name")
    return name


# -- software components (PSA RFC 9783 §4.4.1; reused by the CCA platform token) ---------------


@dataclass(frozen=True, slots=True)
class SwComponent:
    """One measured software component, as the PSA and CCA platform tokens report it."""

    measurement_value: bytes
    signer_id: bytes
    measurement_type: str | None = None
    version: str | None = None
    measurement_description: str | None = None


SW_COMPONENT: tuple[Claim, ...] = (
    Claim(1, "measurement-type", "measurement_type", Shape.SCALAR, text),
    Claim(2, "measurement-value", "measurement_value", Shape.BYTES, psa_hash, required=True),
    Claim(4, "version", "version", Shape.SCALAR, text),
    Claim(5, "signer-id", "signer_id", Shape.BYTES, psa_hash, required=True),
    Claim(6, "measurement-description", "measurement_description", Shape.SCALAR, text),
)


def sw_components(value: Any, claim: str) -> tuple[SwComponent, ...]:
    if not isinstance(value, list):
        fail(claim, f"must be an array, got {type(value).__name__}")
    if not value:
        fail(claim, "must have at least one entry")
    return tuple(SwComponent(**read(item, SW_COMPONENT, f"{claim}[{i}]")) for i, item in enumerate(value))


# -- the three table walkers ---------------------------------------------------------------------


def read(raw: Any, table: Sequence[Claim], where: str) -> dict[str, Any]:
    """Constructor arguments from a decoded CBOR map; every rule checked, all gaps reported."""
    if not isinstance(raw, Mapping):
        fail(where, f"must be a map, got {type(raw).__name__}")
    missing = [c.name for c in table if c.required and c.key not in raw]
    if missing:
        fail(where, f"missing mandatory claim(s): {', '.join(missing)}")
    return {c.attr: c.read(raw[c.key], f"{where}: {c.name}" if where else c.name)
            for c in table if c.key in raw}


def _wire(value: Any, shape: Shape) -> Any:
    if shape is Shape.SW_COMPONENTS:
        return [write(sc, SW_COMPONENT) for sc in value]
    if shape is Shape.BYTES_LIST:
        return list(value)
    return value


def _emitted(obj: Any, claim: Claim) -> Any:
    """The wire value of one claim of *obj*, or None when the claim is absent (None or empty)."""
    value = getattr(obj, claim.attr)
    if value is None or value == ():
        return None
    return claim.emit(value) if claim.emit else _wire(value, claim.shape)


def write(obj: Any, table: Sequence[Claim]) -> dict[int, Any]:
    """The CBOR claims map of a claims object (absent optional claims are omitted)."""
    return {c.key: v for c in table if (v := _emitted(obj, c)) is not None}


def std_b64(value: Any, claim: str) -> bytes:
    """Decode standard base64 (with padding), the way Go's encoding/json spells []byte."""
    if not isinstance(value, str):
        fail(claim, f"must be a base64 string, got {type(value).__name__}")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        fail(claim, "is not valid base64")


def b64url(value: Any, claim: str) -> bytes:
    """Decode base64url (JOSE spelling, padding tolerated), naming the claim on failure."""
    if not isinstance(value, str):
        fail(claim, f"must be a base64url string, got {type(value).__name__}")
    try:
        return b64url_decode(value)
    except MalformedError:
        fail(claim, "is not valid base64url")


def _from_json(value: Any, shape: Shape, claim: str) -> Any:
    if shape is Shape.BYTES:
        return std_b64(value, claim)
    if shape is Shape.BYTES_LIST or (shape is Shape.NONCE and isinstance(value, list)):
        if not isinstance(value, list):
            fail(claim, "must be an array")
        return [std_b64(v, f"{claim}[{i}]") for i, v in enumerate(value)]
    if shape is Shape.NONCE:
        return std_b64(value, claim)
    if shape is Shape.SW_COMPONENTS:
        if not isinstance(value, list):
            fail(claim, "must be an array")
        return [json_to_wire(v, SW_COMPONENT, f"{claim}[{i}]") for i, v in enumerate(value)]
    return value


def json_to_wire(doc: Any, table: Sequence[Claim], where: str) -> dict[int, Any]:
    """Rename JSON members to CBOR keys and decode base64 by shape; rules are NOT checked here.

    Members the table does not name are refused: a typo in a claims file should not silently
    produce a token without the claim.
    """
    if not isinstance(doc, Mapping):
        fail(where, "must be a JSON object")
    by_name = {c.name: c for c in table}
    unknown = sorted(set(doc) - set(by_name))
    if unknown:
        fail(where, f"unknown member(s): {', '.join(unknown)}")
    return {by_name[n].key: _from_json(v, by_name[n].shape, f"{where}: {n}") for n, v in doc.items()}


def to_json(obj: Any, table: Sequence[Claim]) -> dict[str, Any]:
    """The evcli-style JSON object of a claims object (bytes as standard base64)."""
    out: dict[str, Any] = {}
    for c in table:
        value = _emitted(obj, c)
        if value is None:
            continue
        if c.shape in (Shape.BYTES, Shape.NONCE):
            out[c.name] = base64.b64encode(value).decode("ascii")
        elif c.shape is Shape.BYTES_LIST:
            out[c.name] = [base64.b64encode(v).decode("ascii") for v in value]
        elif c.shape is Shape.SW_COMPONENTS:
            out[c.name] = [to_json(sc, SW_COMPONENT) for sc in getattr(obj, c.attr)]
        else:
            out[c.name] = value
    return out
