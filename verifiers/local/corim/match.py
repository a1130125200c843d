"""Comparison rules of draft-ietf-rats-corim ("Rules of Comparison"), as pure predicates.

Vocabulary: a **condition** (what a reference-value or endorsement triple requires) is compared
with an **entry** (what the Attester's evidence, or an earlier accepted claim, says). A
condition matches when it is *contained in* the entry (Attribute Path Containment): every
attribute the condition sets is present in the entry and the entry's value satisfies it;
attributes only the entry has are ignored.

Per-attribute rules (one function each, listed in ``_MVAL_RULES``; a new code point is a row):

* environment, class attributes, mkey, version, names, addresses: equality (our model values
  are the deterministic-CBOR content, so equality is the draft's binary comparison);
* svn: plain vs plain is equality; a min-svn (553) condition matches an entry ≥ it; a min-svn
  entry matches only a min-svn condition of equal value;
* digests: ≥ 1 algorithm in common, every common algorithm's value equal; a duplicate algorithm
  on either side, or an empty condition, is no match (anti-downgrade). Algorithms named by text
  (``"sha-256"``) are recognised as their registry id (1) so that mixed naming cannot hide a
  common algorithm;
* raw-value: equal lengths, bits compared under the mask (no mask = all ones); a masked entry
  is not a valid entry (no match);
* cryptokeys: element-wise, same tag and identical content, in order;
* integrity registers: each condition register must exist in the entry and its digests match;
* int-range: the condition range contains the entry range (ints are ``[v, v]``), which is the
  draft's four int/range cases in one rule;
* unknown or profile code points (``extensions``): compared only by a comparator the caller's
  profile supplies; without one the condition does not match (draft: unknown rule → no match).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from .model import (
    EMPTY,
    HASH_ALGORITHMS,
    ClassMap,
    Digest,
    Environment,
    IntRange,
    Measurement,
    MeasurementValues,
    RawValue,
    Svn,
    Tagged,
)

__all__ = [
    "Comparator",
    "match_class",
    "match_cryptokeys",
    "match_digests",
    "match_environment",
    "match_flags",
    "match_int_range",
    "match_integrity_registers",
    "match_measurement",
    "match_measurements",
    "match_raw_value",
    "match_svn",
    "match_values",
]

Comparator = Callable[[Any, Any], bool]
"""``(condition_value, entry_value) -> bool`` for one attribute."""

_ALG_IDS: Mapping[str, int] = {name: ident for ident, (name, _) in HASH_ALGORITHMS.items()}
_CLASS_ATTRS = ("class_id", "vendor", "model", "layer", "index")


def _equal(condition: Any, entry: Any) -> bool:
    return bool(condition == entry)


def match_class(condition: ClassMap, entry: ClassMap) -> bool:
    """Every class attribute the condition sets is present and equal in the entry."""
    return all(
        getattr(condition, a) is None or getattr(condition, a) == getattr(entry, a) for a in _CLASS_ATTRS
    )


def match_environment(condition: Environment, entry: Environment) -> bool:
    """Environment Comparison: class (attribute by attribute), instance and group, by containment."""
    if condition.class_ is not None and (entry.class_ is None or not match_class(condition.class_, entry.class_)):
        return False
    return all(
        c is None or c == e for c, e in ((condition.instance, entry.instance), (condition.group, entry.group))
    )


def match_svn(condition: Svn, entry: Svn) -> bool:
    if entry.minimum:
        return condition.minimum and condition.value == entry.value
    return entry.value >= condition.value if condition.minimum else entry.value == condition.value


def _by_alg(digests: Sequence[Digest]) -> dict[int | str, bytes] | None:
    """Digests by canonical algorithm id; None when an algorithm repeats (no match)."""
    out: dict[int | str, bytes] = {}
    for d in digests:
        alg = _ALG_IDS.get(d.alg, d.alg) if isinstance(d.alg, str) else d.alg
        if alg in out:
            return None
        out[alg] = d.value
    return out


def match_digests(condition: Sequence[Digest], entry: Sequence[Digest]) -> bool:
    """Comparison for digests: at least one common algorithm, and every common one agrees."""
    cond, ent = _by_alg(condition), _by_alg(entry)
    if not cond or ent is None:
        return False
    common = cond.keys() & ent.keys()
    return bool(common) and all(cond[a] == ent[a] for a in common)


def match_raw_value(condition: RawValue, entry: RawValue) -> bool:
    """Comparison for raw-value: equal lengths; bits where the mask is 1 must be equal."""
    if entry.mask is not None or len(entry.value) != len(condition.value):
        return False
    mask = condition.mask if condition.mask is not None else b"\xff" * len(condition.value)
    if len(mask) != len(condition.value):
        return False
    return all((c ^ e) & m == 0 for c, e, m in zip(condition.value, entry.value, mask, strict=True))


def match_cryptokeys(condition: Sequence[Tagged], entry: Sequence[Tagged]) -> bool:
    """Comparison for cryptokeys: element by element, same tag and identical content.

    The draft walks the condition's array against the entry's in order; an entry may carry
    further keys after those the condition lists.
    """
    return len(condition) <= len(entry) and all(c == e for c, e in zip(condition, entry, strict=False))


def match_integrity_registers(condition: Mapping[int | str, Sequence[Digest]],
                              entry: Mapping[int | str, Sequence[Digest]]) -> bool:
    """Integrity registers: every register the condition names exists in the entry, digests match."""
    return all(k in entry and match_digests(v, entry[k]) for k, v in condition.items())


def match_int_range(condition: IntRange, entry: IntRange) -> bool:
    """Comparison for int-range: the condition range contains the entry range (``v`` is ``[v, v]``)."""
    low_ok = condition.min is None or (entry.min is not None and entry.min >= condition.min)
    high_ok = condition.max is None or (entry.max is not None and entry.max <= condition.max)
    return low_ok and high_ok


def match_flags(condition: Mapping[int, bool], entry: Mapping[int, bool]) -> bool:
    """Each flag the condition sets is set to the same value in the entry."""
    return all(k in entry and entry[k] is v for k, v in condition.items())


_MVAL_RULES: tuple[tuple[str, Comparator], ...] = (
    ("version", _equal),
    ("svn", match_svn),
    ("digests", match_digests),
    ("flags", match_flags),
    ("raw", match_raw_value),
    ("mac_addr", _equal),
    ("ip_addr", _equal),
    ("serial_number", _equal),
    ("ueid", _equal),
    ("uuid", _equal),
    ("name", _equal),
    ("cryptokeys", match_cryptokeys),
    ("integrity_registers", match_integrity_registers),
    ("int_range", match_int_range),
)


def match_values(condition: MeasurementValues, entry: MeasurementValues, *,
                 extensions: Mapping[int, Comparator] = EMPTY) -> bool:
    """Measurement Values Map Comparison: the condition's mval is contained in the entry's.

    ``extensions`` supplies the profile's comparators for its own code points (e.g. PSA's 100
    ``psa-cert-num``); a condition code point without a comparator never matches.
    """
    for attr, rule in _MVAL_RULES:
        c = getattr(condition, attr)
        if c is None:
            continue
        e = getattr(entry, attr)
        if e is None or not rule(c, e):
            return False
    for key, c in condition.extensions.items():
        compare = extensions.get(key)
        if compare is None or key not in entry.extensions or not compare(c, entry.extensions[key]):
            return False
    return True


def match_measurement(condition: Measurement, entry: Measurement, *,
                      extensions: Mapping[int, Comparator] = EMPTY) -> bool:
    """Element Map Comparison: same mkey (both absent or equal), authority and values contained."""
    if condition.mkey != entry.mkey:
        return False
    if condition.authorized_by and not (
        entry.authorized_by and all(k in entry.authorized_by for k in condition.authorized_by)
    ):
        return False
    return match_values(condition.mval, entry.mval, extensions=extensions)


def match_measurements(conditions: Sequence[Measurement], entries: Sequence[Measurement], *,
                       extensions: Mapping[int, Comparator] = EMPTY) -> bool:
    """Element List Comparison: every condition measurement matches some entry measurement."""
    return all(any(match_measurement(c, e, extensions=extensions) for e in entries) for c in conditions)
