"""A small rule language for CoRIM profiles: constraints are data, one interpreter checks them.

Why: a profile (PSA, CCA, ...) is a list of "this value must be present / of this type / this
long / exactly one of these" statements about triples. Writing them as :class:`Slot` rows keeps
every profile readable side by side (``profiles``) and makes the rejection messages uniform,
in the words Veraison uses (``"implementation-id must be of type 'bytes', got 'uuid'"``).

Theory of operation: :func:`check_triples` walks the triple kinds a profile constrains
(:class:`TripleRules`, keyed by :class:`~.model.Triples` attribute name) and returns the first
violation as text, prefixed by where it is (``"attester verification key at index 0: ..."``),
or None. It never raises: the caller (``profiles``) decides which error to raise.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .model import EMPTY, Digest, Measurement, Tagged, Triples

__all__ = ["MeasurementRules", "Slot", "TripleRules", "check_triples"]

_WORDS = {1: "one", 2: "two", 3: "three"}


@dataclass(frozen=True, slots=True)
class Slot:
    """One constrained value of a triple, environment or measurement.

    ``get`` selects it (None = absent). A tuple value is a sequence: ``count`` fixes its length
    and the other checks apply to each item (named ``item`` in messages). Checks, in order:
    ``missing`` (message when absent; None = optional), ``forbidden`` (message when present),
    ``types`` (allowed :class:`Tagged` type names), ``sizes`` (allowed byte lengths),
    ``first_byte`` (required first byte and its name), ``values`` (allowed contents).
    """

    name: str
    get: Callable[[Any], Any]
    missing: str | None = None
    forbidden: str | None = None
    count: int | None = None
    item: str | None = None
    types: tuple[str, ...] = ()
    sizes: tuple[int, ...] = ()
    first_byte: tuple[int, str] | None = None
    values: tuple[object, ...] = ()


@dataclass(frozen=True, slots=True)
class MeasurementRules:
    """Rules for each measurement of a triple: ``common`` ones, then those of its mkey.

    With ``by_mkey`` set, an mkey it does not list is rejected; ``counts`` bounds how many
    measurements of an mkey one triple may carry (``(min, max)``, max None = unbounded). Keys are
    text mkeys or uint mkeys (``0``, ``7``, ...).
    """

    common: tuple[Slot, ...] = ()
    by_mkey: Mapping[str | int, tuple[Slot, ...]] = field(default_factory=lambda: EMPTY)
    counts: Mapping[str | int, tuple[int, int | None]] = field(default_factory=lambda: EMPTY)


@dataclass(frozen=True, slots=True)
class TripleRules:
    """What a profile requires of one kind of triple; ``label`` names it in messages.

    ``whole`` slots read the triple itself, for rules that tie its environment to its
    measurements (e.g. "an SEV-SNP environment takes uint mkeys"); they run last.
    """

    label: str
    environment: tuple[Slot, ...] = ()
    keys: tuple[Slot, ...] = ()
    measurements: MeasurementRules | None = None
    whole: tuple[Slot, ...] = ()


def _type_name(v: Any) -> str:
    return v.type if isinstance(v, Tagged) else type(v).__name__


def _size(v: Any) -> int | None:
    inner = v.value if isinstance(v, Tagged | Digest) else v
    return len(inner) if isinstance(inner, bytes) else None


def _quote(v: object) -> str:
    return json.dumps(v) if isinstance(v, str) else repr(v)


def _single_quote(v: object) -> str:
    return f"'{v}'"


def _one_of(options: Sequence[object], render: Callable[[object], str]) -> str:
    shown = [render(o) for o in options]
    return shown[0] if len(shown) == 1 else ", ".join(shown[:-1]) + ", or " + shown[-1]


def _check_item(slot: Slot, v: Any) -> str | None:
    name = slot.item or slot.name
    if slot.types and _type_name(v) not in slot.types:
        return f"{name} must be of type {_one_of(slot.types, _single_quote)}, got '{_type_name(v)}'"
    n = _size(v)
    if slot.sizes and n not in slot.sizes:
        if len(slot.sizes) == 1:
            return f"{name} must be exactly {slot.sizes[0]} bytes (got {n})"
        return f"{name} must be {_one_of(slot.sizes, str)} bytes (got {n})"
    if slot.first_byte is not None:
        want, label = slot.first_byte
        raw = v.value if isinstance(v, Tagged) else v
        if isinstance(raw, bytes) and raw and raw[0] != want:
            return f"{name} must have {label} type (0x{want:02x}), got 0x{raw[0]:02x}"
    content = v.value if isinstance(v, Tagged) else v
    if slot.values and content not in slot.values:
        return f"{name} must be {_one_of(slot.values, _quote)}, got {_quote(content)}"
    return None


def check_slot(slot: Slot, subject: Any) -> str | None:
    """The first violation of *slot* on *subject*, or None."""
    v = slot.get(subject)
    if v is None:
        return slot.missing
    if slot.forbidden is not None:
        return slot.forbidden
    if not isinstance(v, tuple):
        return _check_item(slot, v)
    if slot.count is not None and len(v) != slot.count:
        entries = "entry" if slot.count == 1 else "entries"
        return f"{slot.name} must contain exactly {_WORDS.get(slot.count, slot.count)} {entries}, got {len(v)}"
    return next((msg for x in v if (msg := _check_item(slot, x)) is not None), None)


def _first(slots: Sequence[Slot], subject: Any) -> str | None:
    return next((msg for s in slots if (msg := check_slot(s, subject)) is not None), None)


def _mkey_key(m: Measurement) -> str | int | None:
    """The mkey as a ``by_mkey`` key: its text, or its number for a uint mkey."""
    if m.mkey is None:
        return None
    value = m.mkey.value
    if isinstance(value, str) or (m.mkey.type == "uint" and isinstance(value, int)):
        return value
    return None


def _check_measurements(rules: MeasurementRules, measurements: Sequence[Measurement], where: str) -> str | None:
    seen: dict[str | int, int] = {}
    for j, m in enumerate(measurements):
        at = f"{where}, measurement at index {j}"
        msg = _first(rules.common, m)
        key = _mkey_key(m)
        if msg is None and rules.by_mkey:
            slots = rules.by_mkey.get(key) if key is not None else None
            if slots is None:
                msg = f"invalid mkey {_quote(key)}, expected {_one_of(list(rules.by_mkey), _quote)}"
            else:
                msg = _first(slots, m)
        if msg is not None:
            return f"{at}: {msg}"
        if key is not None:
            seen[key] = seen.get(key, 0) + 1
    for key, (low, high) in rules.counts.items():
        n = seen.get(key, 0)
        if n < low or (high is not None and n > high):
            bound = f"exactly {low}" if low == high else f"at least {low}" if high is None else f"{low} to {high}"
            return f"{where}: {bound} {_quote(key)} measurement(s) required, found {n}"
    return None


def check_triples(triples: Triples, rules: Mapping[str, TripleRules]) -> str | None:
    """The first violation of *rules* in *triples* (with its location), or None."""
    for attr, tr in rules.items():
        for i, t in enumerate(getattr(triples, attr)):
            where = f"{tr.label} at index {i}"
            msg = _first(tr.environment, t.environment) or _first(tr.keys, t)
            if msg is not None:
                return f"{where}: {msg}"
            if tr.measurements is not None:
                msg = _check_measurements(tr.measurements, t.measurements, where)
                if msg is not None:
                    return msg
            msg = _first(tr.whole, t)
            if msg is not None:
                return f"{where}: {msg}"
    return None
