"""Encode the model back to CBOR (deterministic), and sign a CoRIM as COSE_Sign1.

Why: ``ratsfed corim create`` and the tests need to produce CoRIMs, and the surest way to keep
an encoder and a decoder in agreement is to make one the inverse of the other: map keys come
from the decoder's own tables (``comid``, ``decode``, ``wire``), so a key number is written in
one place. For every model value ``decode(encode(x)) == x`` (the model does not keep encoding
choices such as 552-tagged vs plain svn, which compare the same).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

from federation import cbor, cose
from federation.cbor import CBORTag
from federation.errors import UsageError
from federation.keys import SigningKey

from . import comid as _c
from . import decode as _d
from . import wire as _w
from .model import (
    Comid,
    Corim,
    CorimMeta,
    Digest,
    Entity,
    Environment,
    IntRange,
    Locator,
    Measurement,
    MeasurementValues,
    ProfileId,
    RawValue,
    Tagged,
    Triples,
    Validity,
)

__all__ = ["comid_item", "corim_item", "encode_comid", "encode_corim", "sign_corim", "tagged_item"]

_STRUCTURED = frozenset({"cose-key", "psa.refval-id"})  # content kept as deterministic CBOR


def _keys(table: Mapping[int, _w.Field]) -> dict[str, int]:
    return {f.attr: k for k, f in table.items()}


def _map(obj: Any, table: Mapping[int, _w.Field], writers: Mapping[str, Callable[[Any], Any]],
         extensions: Mapping[int, Any] | None = None) -> dict[int, Any]:
    """The CBOR map of *obj*: each set attribute under its table key, through its writer."""
    keys = _keys(table)
    out = {keys[attr]: write(getattr(obj, attr)) for attr, write in writers.items()
           if getattr(obj, attr) is not None and getattr(obj, attr) != ()}
    out.update(extensions or {})
    return out


def _same(v: Any) -> Any:
    return v


def tagged_item(t: Tagged) -> Any:
    if t.tag is None:
        return t.value
    content: Any = t.value
    if t.type in _STRUCTURED and isinstance(content, bytes):
        content = cbor.loads(content)
    elif isinstance(content, Digest):
        content = _digest(content)
    return CBORTag(t.tag, content)


def _digest(d: Digest) -> list[Any]:
    return [d.alg, d.value]


def _digests(ds: Sequence[Digest]) -> list[Any]:
    return [_digest(d) for d in ds]


def _tagged_list(ts: Sequence[Tagged]) -> list[Any]:
    return [tagged_item(t) for t in ts]


def _time(t: datetime) -> CBORTag:
    ts = t.timestamp()
    return CBORTag(_w.TAG_EPOCH, int(ts) if ts == int(ts) else ts)


def _validity(v: Validity) -> dict[int, Any]:
    if v.not_after is None:
        raise UsageError("a validity-map needs not-after (use CWT claims for an open end)")
    return _map(v, _w.VALIDITY_FIELDS, {"not_before": _time, "not_after": _time})


def _environment(e: Environment) -> dict[int, Any]:
    class_writers = dict.fromkeys(("vendor", "model", "layer", "index"), _same)
    return _map(e, _c.ENVIRONMENT_FIELDS, {
        "class_": lambda c: _map(c, _c.CLASS_FIELDS, {"class_id": tagged_item, **class_writers}),
        "instance": tagged_item,
        "group": tagged_item,
    })


def _raw(r: RawValue) -> CBORTag:
    if r.mask is None:
        return CBORTag(_c.TAG_BYTES, r.value)
    return CBORTag(_c.TAG_MASKED_RAW, [r.value, r.mask])


def _int_range(r: IntRange) -> Any:
    return r.min if r.min is not None and r.min == r.max else CBORTag(_c.TAG_INT_RANGE, [r.min, r.max])


def _mval(v: MeasurementValues) -> dict[int, Any]:
    return _map(v, _c.MVAL_FIELDS, {
        "version": lambda x: _map(x, _c.VERSION_FIELDS, {"version": _same, "scheme": _same}),
        "svn": lambda s: CBORTag(_c.TAG_MIN_SVN, s.value) if s.minimum else s.value,
        "digests": _digests,
        "flags": dict,
        "raw": _raw,
        **dict.fromkeys(("mac_addr", "ip_addr", "serial_number", "ueid", "uuid", "name"), _same),
        "cryptokeys": _tagged_list,
        "integrity_registers": lambda regs: {k: _digests(d) for k, d in regs.items()},
        "int_range": _int_range,
    }, v.extensions)


def _measurement(m: Measurement) -> dict[int, Any]:
    return _map(m, _c.MEASUREMENT_FIELDS, {"mkey": tagged_item, "mval": _mval, "authorized_by": _tagged_list})


def _measurements(ms: Sequence[Measurement]) -> list[Any]:
    return [_measurement(m) for m in ms]


def _env_values(t: Any) -> list[Any]:
    return [_environment(t.environment), _measurements(t.measurements)]


def _key_triple(t: Any) -> list[Any]:
    out = [_environment(t.environment), _tagged_list(t.keys)]
    cond = _map(t, _c.KEY_CONDITION_FIELDS, {"mkey": tagged_item, "authorized_by": _tagged_list})
    return [*out, cond] if cond else out


def _domain(t: Any) -> list[Any]:
    return [_environment(t.domain), [_environment(m) for m in t.members]]


def _series(t: Any) -> list[Any]:
    common = [_environment(t.environment), _measurements(t.measurements)]
    if t.authorized_by:
        common.append(_tagged_list(t.authorized_by))
    return [common, [[_measurements(s.condition), _measurements(s.addition)] for s in t.series]]


def _conditional(t: Any) -> list[Any]:
    return [[_env_values(c) for c in t.conditions], [_env_values(e) for e in t.endorsements]]


def _each(write: Callable[[Any], Any]) -> Callable[[Sequence[Any]], list[Any]]:
    return lambda items: [write(x) for x in items]


_TRIPLE_WRITERS: Mapping[str, Callable[[Any], Any]] = {
    "reference": _each(_env_values),
    "endorsed": _each(_env_values),
    "identity": _each(_key_triple),
    "attest_key": _each(_key_triple),
    "dependency": _each(_domain),
    "membership": _each(_domain),
    "coswid": _each(lambda t: [_environment(t.environment), list(t.tag_ids)]),
    "conditional_series": _each(_series),
    "conditional": _each(_conditional),
}


def _triples(t: Triples) -> dict[int, Any]:
    return _map(t, _c.TRIPLES_FIELDS, _TRIPLE_WRITERS, t.extensions)


def _entity(e: Entity) -> dict[int, Any]:
    return _map(e, _c.ENTITY_FIELDS, {"name": _same, "reg_id": lambda u: CBORTag(_w.TAG_URI, u), "roles": list})


def comid_item(c: Comid) -> dict[int, Any]:
    out = _map(c, _c.COMID_FIELDS, {"language": _same, "entities": _each(_entity),
                              "linked_tags": _each(lambda lt: {0: lt.tag_id, 1: lt.rel}),
                              "triples": _triples}, c.extensions)
    identity: dict[int, Any] = {0: c.tag_id}
    if c.tag_version:
        identity[1] = c.tag_version
    out[_keys(_c.COMID_FIELDS)["identity"]] = identity
    return out


def encode_comid(c: Comid) -> bytes:
    """Deterministic CBOR of a CoMID map (untagged; wrap in 506 to put it in a CoRIM)."""
    return cbor.dumps(comid_item(c))


def _oid_der(dotted: str) -> bytes:
    """BER content of an OID (RFC 9090 tag 111): base-128 arcs, the first two combined."""
    arcs = [int(a) for a in dotted.split(".")]
    out = bytearray()
    for n in [40 * arcs[0] + arcs[1], *arcs[2:]]:
        chunk = [n & 0x7F]
        while n := n >> 7:
            chunk.append(0x80 | (n & 0x7F))
        out.extend(reversed(chunk))
    return bytes(out)


def _profile(p: ProfileId) -> Any:
    if p.kind == "text":
        return p.value
    if p.kind == "oid":
        return CBORTag(_d.TAG_OID, _oid_der(p.value))
    return CBORTag(_w.TAG_URI, p.value)


def _locator(loc: Locator) -> dict[int, Any]:
    href: Any = [CBORTag(_w.TAG_URI, h) for h in loc.href]
    out: dict[int, Any] = {0: href[0] if len(href) == 1 else href}
    if loc.thumbprints:
        out[1] = _digest(loc.thumbprints[0]) if len(loc.thumbprints) == 1 else _digests(loc.thumbprints)
    return out


def _tag(t: Any) -> CBORTag:
    if isinstance(t, Comid):
        return CBORTag(_c.COMID_TAG, encode_comid(t))
    return CBORTag(t.tag, t.data)


def corim_item(c: Corim) -> CBORTag:
    body = _map(c, _d.CORIM_FIELDS, {"id": _same, "tags": _each(_tag), "dependent_rims": _each(_locator),
                               "profile": _profile, "rim_validity": _validity, "entities": _each(_entity)},
                c.extensions)
    return CBORTag(_d.CORIM_TAG, body)


def encode_corim(c: Corim) -> bytes:
    """Deterministic CBOR of an unsigned CoRIM, ``501(corim-map)``."""
    return cbor.dumps(corim_item(c))


def sign_corim(c: Corim, key: SigningKey, meta: CorimMeta, *, x5chain: Sequence[bytes] | None = None,
               cwt_claims: bool = False) -> bytes:
    """A signed CoRIM: COSE_Sign1 over ``encode_corim(c)`` with ``corim-meta`` (or CWT claims).

    The protected header carries alg, kid, content-type ``application/rim+cbor``, corim-meta
    (8) — or, with *cwt_claims*, CWT-Claims (15) ``iss``/``nbf``/``exp`` — and *x5chain* (33).
    """
    header: dict[int, Any] = {}
    if cwt_claims:
        claims: dict[int, Any] = {1: meta.signer_name}
        v = meta.signature_validity
        if v is not None and v.not_before is not None:
            claims[5] = int(v.not_before.timestamp())
        if v is not None and v.not_after is not None:
            claims[4] = int(v.not_after.timestamp())
        header[_d.H_CWT_CLAIMS] = claims
    else:
        signer: dict[int, Any] = {0: meta.signer_name}
        if meta.signer_uri is not None:
            signer[1] = CBORTag(_w.TAG_URI, meta.signer_uri)
        meta_map: dict[int, Any] = {0: signer}
        if meta.signature_validity is not None:
            meta_map[1] = _validity(meta.signature_validity)
        header[_d.H_CORIM_META] = cbor.dumps(meta_map)
    if x5chain:
        header[cose.H_X5CHAIN] = list(x5chain) if len(x5chain) > 1 else x5chain[0]
    return cose.sign1(encode_corim(c), key, content_type=_d.CONTENT_TYPE, extra_protected=header)
