"""Decode a CoMID (``concise-mid-tag``) into the model.

Theory of operation: each CDDL map is one table of :class:`wire.Field` rows, each CDDL array
record one small reader; the triples map is a table from key to (attribute, record reader), so
supporting a new triple kind is one row. Everything is pure; the bytes come from the caller.
Key numbers are draft-ietf-rats-corim (≈ -11) ``triples-map.cddl``: 0 reference, 1 endorsed,
2 identity, 3 attest-key, 4 dependency, 5 membership, 6 coswid, 8 conditional-endorsement-series,
10 conditional-endorsement (7 and 9 are reserved).
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from federation import cbor
from federation.cbor import CBORTag
from federation.errors import MalformedError

from . import wire
from .model import (
    ClassMap,
    Comid,
    ConditionalEndorsement,
    ConditionalSeries,
    CoswidTriple,
    DomainTriple,
    EndorsedTriple,
    Entity,
    Environment,
    IntRange,
    KeyTriple,
    LinkedTag,
    Measurement,
    MeasurementValues,
    RawValue,
    ReferenceTriple,
    SeriesRecord,
    StatefulEnvironment,
    Svn,
    Triples,
    Version,
)
from .wire import Field, as_bool, as_bytes, as_int, as_list, as_text, as_uint, list_of, read_map

__all__ = [
    "CLASS_FIELDS",
    "COMID_FIELDS",
    "COMID_TAG",
    "ENTITY_FIELDS",
    "ENVIRONMENT_FIELDS",
    "KEY_CONDITION_FIELDS",
    "MAX_COMID_DEPTH",
    "MEASUREMENT_FIELDS",
    "MVAL_FIELDS",
    "TRIPLES_FIELDS",
    "VERSION_FIELDS",
    "decode_comid",
    "entity",
    "read_comid",
]

COMID_TAG = 506
MAX_COMID_DEPTH = 20  # nested arrays/maps/tags inside one CoMID (the deepest CDDL path is ~12)
TAG_SVN, TAG_MIN_SVN, TAG_BYTES, TAG_MASKED_RAW, TAG_INT_RANGE = 552, 553, 560, 563, 564

_class_id = wire.tagged(wire.CLASS_ID_TAGS)
_instance = wire.tagged(wire.INSTANCE_TAGS)
_group = wire.tagged(wire.GROUP_TAGS)
_crypto_key = wire.tagged(wire.CRYPTO_KEY_TAGS)
_crypto_keys = list_of(_crypto_key)
_mkey = wire.tagged(wire.MKEY_TAGS, untagged=True)


# --- environment ----------------------------------------------------------------------------

CLASS_FIELDS: Mapping[int, Field] = {
    0: Field("class-id", "class_id", _class_id),
    1: Field("vendor", "vendor", as_text),
    2: Field("model", "model", as_text),
    3: Field("layer", "layer", as_uint),
    4: Field("index", "index", as_uint),
}


def _class_map(item: Any, where: str) -> ClassMap:
    f, _ = read_map(item, CLASS_FIELDS, where, nonempty=True)
    return ClassMap(**f)


ENVIRONMENT_FIELDS: Mapping[int, Field] = {
    0: Field("class", "class_", _class_map),
    1: Field("instance", "instance", _instance),
    2: Field("group", "group", _group),
}


def environment(item: Any, where: str) -> Environment:
    f, _ = read_map(item, ENVIRONMENT_FIELDS, where, nonempty=True)
    return Environment(**f)


# --- measurement values ---------------------------------------------------------------------

def _version(item: Any, where: str) -> Version:
    f, _ = read_map(item, VERSION_FIELDS, where)
    return Version(**f)


def _scheme(item: Any, where: str) -> int | str:
    if isinstance(item, str):
        return item
    return as_int(item, where)


VERSION_FIELDS: Mapping[int, Field] = {
    0: Field("version", "version", as_text, required=True),
    1: Field("version-scheme", "scheme", _scheme),
}

_SVN_TAGS: Mapping[int, bool] = MappingProxyType({TAG_SVN: False, TAG_MIN_SVN: True})


def _svn(item: Any, where: str) -> Svn:
    """``svn / #6.552(svn) / #6.553(min-svn)``."""
    if isinstance(item, CBORTag):
        if item.tag not in _SVN_TAGS:
            raise MalformedError(f"{where}: CBOR tag {item.tag} is not an svn")
        return Svn(as_uint(item.value, where), minimum=_SVN_TAGS[item.tag])
    return Svn(as_uint(item, where))


def _raw_value(item: Any, where: str) -> RawValue:
    """``#6.560(bytes)`` or ``#6.563([value, mask])``."""
    if isinstance(item, CBORTag) and item.tag == TAG_BYTES:
        return RawValue(as_bytes(item.value, where))
    if isinstance(item, CBORTag) and item.tag == TAG_MASKED_RAW:
        value, mask = as_list(item.value, where, size=(2,))
        return RawValue(as_bytes(value, f"{where}.value"), as_bytes(mask, f"{where}.mask"))
    raise MalformedError(f"{where}: expected tagged-bytes (560) or tagged-masked-raw-value (563)")


def _int_range(item: Any, where: str) -> IntRange:
    """``int / #6.564([min: int / null, max: int / null])``."""
    if isinstance(item, CBORTag) and item.tag == TAG_INT_RANGE:
        lo, hi = as_list(item.value, where, size=(2,))
        lo = None if lo is None else as_int(lo, f"{where}.min")
        hi = None if hi is None else as_int(hi, f"{where}.max")
        if lo is not None and hi is not None and lo > hi:
            raise MalformedError(f"{where}: min {lo} is greater than max {hi}")
        return IntRange(lo, hi)
    v = as_int(item, where)
    return IntRange(v, v)


def _flags(item: Any, where: str) -> Mapping[int, bool]:
    m = wire.as_map(item, where, nonempty=True)
    return MappingProxyType({as_uint(k, f"{where} key"): as_bool(v, f"{where}[{k}]") for k, v in m.items()})


def _register_id(key: Any, where: str) -> int | str:
    return key if isinstance(key, str) else as_uint(key, where)


def _integrity_registers(item: Any, where: str) -> Mapping[int | str, tuple[Any, ...]]:
    m = wire.as_map(item, where, nonempty=True)
    return MappingProxyType({_register_id(k, f"{where} key"): wire.digests(v, f"{where}[{k!r}]")
                             for k, v in m.items()})


MVAL_FIELDS: Mapping[int, Field] = {
    0: Field("version", "version", _version),
    1: Field("svn", "svn", _svn),
    2: Field("digests", "digests", wire.digests),
    3: Field("flags", "flags", _flags),
    4: Field("raw-value", "raw", _raw_value),
    5: Field("raw-value-mask-DEPRECATED", "raw_mask", lambda i, w: as_bytes(i, w)),
    6: Field("mac-addr", "mac_addr", lambda i, w: as_bytes(i, w, (6, 8))),
    7: Field("ip-addr", "ip_addr", lambda i, w: as_bytes(i, w, (4, 16))),
    8: Field("serial-number", "serial_number", as_text),
    9: Field("ueid", "ueid", lambda i, w: as_bytes(i, w, range(7, 34))),
    10: Field("uuid", "uuid", lambda i, w: as_bytes(i, w, (16,))),
    11: Field("name", "name", as_text),
    13: Field("cryptokeys", "cryptokeys", _crypto_keys),
    14: Field("integrity-registers", "integrity_registers", _integrity_registers),
    15: Field("int-range", "int_range", _int_range),
}


def measurement_values(item: Any, where: str) -> MeasurementValues:
    f, ext = read_map(item, MVAL_FIELDS, where, extensible=True, nonempty=True)
    mask = f.pop("raw_mask", None)
    if mask is not None:
        # The deprecated mask (key 5) only qualifies an unmasked raw-value (key 4).
        raw = f.get("raw")
        if raw is None or raw.mask is not None:
            raise MalformedError(f"{where}: raw-value-mask-DEPRECATED needs an unmasked raw-value")
        f["raw"] = RawValue(raw.value, mask)
    return MeasurementValues(**f, extensions=ext)


MEASUREMENT_FIELDS: Mapping[int, Field] = {
    0: Field("mkey", "mkey", _mkey),
    1: Field("mval", "mval", measurement_values, required=True),
    2: Field("authorized-by", "authorized_by", _crypto_keys),
}


def measurement(item: Any, where: str) -> Measurement:
    f, _ = read_map(item, MEASUREMENT_FIELDS, where)
    return Measurement(**f)


_measurements = list_of(measurement)


# --- triple records -------------------------------------------------------------------------

def _reference(item: Any, where: str) -> ReferenceTriple:
    env, claims = as_list(item, where, size=(2,))
    return ReferenceTriple(environment(env, f"{where}.ref-env"), _measurements(claims, f"{where}.ref-claims"))


def _endorsed(item: Any, where: str) -> EndorsedTriple:
    env, claims = as_list(item, where, size=(2,))
    return EndorsedTriple(environment(env, f"{where}.condition"), _measurements(claims, f"{where}.endorsement"))


KEY_CONDITION_FIELDS: Mapping[int, Field] = {
    0: Field("mkey", "mkey", _mkey),
    1: Field("authorized-by", "authorized_by", _crypto_keys),
}


def _key_triple(item: Any, where: str) -> KeyTriple:
    """identity / attest-key record: ``[environment, [+ key], ? conditions]``."""
    parts = as_list(item, where, size=(2, 3))
    env = environment(parts[0], f"{where}.environment")
    keys = _crypto_keys(parts[1], f"{where}.key-list")
    cond: dict[str, Any] = {}
    if len(parts) == 3:
        cond, _ = read_map(parts[2], KEY_CONDITION_FIELDS, f"{where}.conditions", nonempty=True)
    return KeyTriple(env, keys, **cond)


def _domain(item: Any, where: str) -> DomainTriple:
    domain, members = as_list(item, where, size=(2,))
    return DomainTriple(environment(domain, f"{where}.domain-id"),
                        list_of(environment)(members, f"{where}.members"))


def _coswid(item: Any, where: str) -> CoswidTriple:
    env, ids = as_list(item, where, size=(2,))
    return CoswidTriple(environment(env, f"{where}.environment"), list_of(wire.identifier)(ids, f"{where}.tag-ids"))


def _stateful(item: Any, where: str) -> StatefulEnvironment:
    env, claims = as_list(item, where, size=(2,))
    return StatefulEnvironment(environment(env, f"{where}.environment"), _measurements(claims, f"{where}.claims-list"))


def _conditional(item: Any, where: str) -> ConditionalEndorsement:
    conds, endorsements = as_list(item, where, size=(2,))
    return ConditionalEndorsement(list_of(_stateful)(conds, f"{where}.conditions"),
                                  list_of(_endorsed)(endorsements, f"{where}.endorsements"))


def _series_record(item: Any, where: str) -> SeriesRecord:
    cond, addition = as_list(item, where, size=(2,))
    return SeriesRecord(_measurements(cond, f"{where}.condition"), _measurements(addition, f"{where}.addition"))


def _conditional_series(item: Any, where: str) -> ConditionalSeries:
    common, series = as_list(item, where, size=(2,))
    parts = as_list(common, f"{where}.common-condition", size=(2, 3))
    env = environment(parts[0], f"{where}.common-condition.environment")
    claims = list_of(measurement, nonempty=False)(parts[1], f"{where}.common-condition.claims-list")
    auth = _crypto_keys(parts[2], f"{where}.common-condition.authorized-by") if len(parts) == 3 else None
    return ConditionalSeries(env, claims, list_of(_series_record)(series, f"{where}.series"), auth)


TRIPLES_FIELDS: Mapping[int, Field] = {
    0: Field("reference-triples", "reference", list_of(_reference)),
    1: Field("endorsed-triples", "endorsed", list_of(_endorsed)),
    2: Field("identity-triples", "identity", list_of(_key_triple)),
    3: Field("attest-key-triples", "attest_key", list_of(_key_triple)),
    4: Field("dependency-triples", "dependency", list_of(_domain)),
    5: Field("membership-triples", "membership", list_of(_domain)),
    6: Field("coswid-triples", "coswid", list_of(_coswid)),
    8: Field("conditional-endorsement-series-triples", "conditional_series", list_of(_conditional_series)),
    10: Field("conditional-endorsement-triples", "conditional", list_of(_conditional)),
}
_RESERVED_TRIPLES = frozenset({7, 9})


def triples(item: Any, where: str) -> Triples:
    reserved = _RESERVED_TRIPLES & set(wire.as_map(item, where))
    if reserved:
        raise MalformedError(f"{where}: key {min(reserved)} is reserved")
    f, ext = read_map(item, TRIPLES_FIELDS, where, extensible=True, nonempty=True)
    return Triples(**f, extensions=ext)


# --- the tag --------------------------------------------------------------------------------

ENTITY_FIELDS: Mapping[int, Field] = {
    0: Field("entity-name", "name", as_text, required=True),
    1: Field("reg-id", "reg_id", wire.uri),
    2: Field("role", "roles", list_of(as_uint), required=True),
}


def entity(item: Any, where: str) -> Entity:
    f, _ = read_map(item, ENTITY_FIELDS, where, extensible=True)
    return Entity(**f)


TAG_IDENTITY_FIELDS: Mapping[int, Field] = {
    0: Field("tag-id", "tag_id", wire.identifier, required=True),
    1: Field("tag-version", "tag_version", as_uint),
}

LINKED_TAG_FIELDS: Mapping[int, Field] = {
    0: Field("linked-tag-id", "tag_id", wire.identifier, required=True),
    1: Field("tag-rel", "rel", as_uint, required=True),
}


def _linked_tag(item: Any, where: str) -> LinkedTag:
    f, _ = read_map(item, LINKED_TAG_FIELDS, where)
    return LinkedTag(**f)


def _tag_identity(item: Any, where: str) -> dict[str, Any]:
    f, _ = read_map(item, TAG_IDENTITY_FIELDS, where)
    return f


COMID_FIELDS: Mapping[int, Field] = {
    0: Field("language", "language", as_text),
    1: Field("tag-identity", "identity", _tag_identity, required=True),
    2: Field("entities", "entities", list_of(entity)),
    3: Field("linked-tags", "linked_tags", list_of(_linked_tag)),
    4: Field("triples", "triples", triples, required=True),
}


def read_comid(item: Any, where: str = "comid") -> Comid:
    """Build a :class:`Comid` from an already-decoded ``concise-mid-tag`` map."""
    f, ext = read_map(item, COMID_FIELDS, where, extensible=True)
    identity = f.pop("identity")
    return Comid(**identity, **f, extensions=ext)


def decode_comid(data: bytes, *, where: str = "comid", max_size: int = cbor.DEFAULT_MAX_SIZE) -> Comid:
    """Decode CoMID bytes: a ``concise-mid-tag`` map, optionally wrapped in tag 506 (``<<...>>``).

    Raises :class:`MalformedError` naming the first thing that is wrong.
    """
    item = cbor.loads(data, max_size=max_size, max_depth=MAX_COMID_DEPTH)
    if isinstance(item, CBORTag):
        if item.tag != COMID_TAG or not isinstance(item.value, bytes):
            raise MalformedError(f"{where}: expected a CoMID map or 506(bstr), got tag {item.tag}")
        item = cbor.loads(item.value, max_size=max_size, max_depth=MAX_COMID_DEPTH)
    return read_comid(item, where)
