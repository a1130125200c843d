"""The draft's comparison rules, one test group per rule, mostly with generated values.

Where the draft gives an algorithm (svn pseudocode, int-range cases), the test states that
algorithm independently and checks ours against it over generated inputs.
"""

from __future__ import annotations

from dataclasses import replace

from hypothesis import assume, given
from hypothesis import strategies as st

from verifiers.local.corim import (
    ClassMap,
    Digest,
    Environment,
    IntRange,
    Measurement,
    MeasurementValues,
    RawValue,
    Svn,
    Tagged,
    Version,
    match_digests,
    match_environment,
    match_int_range,
    match_measurement,
    match_measurements,
    match_raw_value,
    match_svn,
    match_values,
)
from verifiers.local.corim.match import match_class, match_cryptokeys, match_flags, match_integrity_registers

# --- environments --------------------------------------------------------------------------

tagged_ids = st.builds(lambda tag, v: Tagged({560: "bytes", 37: "uuid"}[tag], v, tag),
                       st.sampled_from([560, 37]), st.binary(min_size=16, max_size=16))
class_maps = st.builds(ClassMap, st.none() | tagged_ids, st.none() | st.text(max_size=4),
                       st.none() | st.text(max_size=4), st.none() | st.integers(0, 3), st.none() | st.integers(0, 3))
environments = st.builds(Environment, st.none() | class_maps, st.none() | tagged_ids, st.none() | tagged_ids)


def _drop(env: Environment, keep: list[bool]) -> Environment:
    """A condition made of a subset of *env*'s attributes."""
    cls = env.class_
    if cls is not None:
        cls = ClassMap(*(v if k else None for v, k in zip(
            (cls.class_id, cls.vendor, cls.model, cls.layer, cls.index), keep[:5], strict=True)))
        cls = cls if cls != ClassMap() else None
    return Environment(cls if keep[5] else None, env.instance if keep[6] else None, env.group if keep[7] else None)


@given(environments, st.lists(st.booleans(), min_size=8, max_size=8))
def test_environment_condition_contained_in_entry_matches(entry: Environment, keep: list[bool]) -> None:
    assert match_environment(_drop(entry, keep), entry)


@given(environments, environments)
def test_environment_match_is_attribute_containment(cond: Environment, entry: Environment) -> None:
    expected = all(
        c is None or c == e for c, e in (
            (cond.instance, entry.instance), (cond.group, entry.group))
    ) and (cond.class_ is None or (entry.class_ is not None and all(
        getattr(cond.class_, a) is None or getattr(cond.class_, a) == getattr(entry.class_, a)
        for a in ("class_id", "vendor", "model", "layer", "index"))))
    assert match_environment(cond, entry) is expected


def test_environment_examples() -> None:
    impl = Tagged("bytes", b"\x01" * 32, 560)
    inst = Tagged("ueid", b"\x01" * 33, 550)
    rv = Environment(ClassMap(impl))
    assert match_environment(rv, Environment(ClassMap(impl, vendor="ACME"), inst))  # extra entry attributes ignored
    assert not match_environment(Environment(ClassMap(impl, vendor="ACME")), Environment(ClassMap(impl), inst))
    assert not match_environment(rv, Environment(instance=inst))
    # Same bytes, different tag: not binary-identical, no match.
    assert not match_environment(rv, Environment(ClassMap(Tagged("uuid", impl.value, 37))))
    assert match_class(ClassMap(), ClassMap(impl))


# --- digests -------------------------------------------------------------------------------

digest_maps = st.dictionaries(st.sampled_from([1, 7, 8, 10]), st.binary(min_size=1, max_size=4), min_size=1)


def _digests(m: dict[int, bytes]) -> tuple[Digest, ...]:
    return tuple(Digest(a, v) for a, v in m.items())


@given(digest_maps, st.data())
def test_digests_common_algorithms_must_agree(entry: dict[int, bytes], data: st.DataObject) -> None:
    common = data.draw(st.lists(st.sampled_from(sorted(entry)), min_size=1, unique=True))
    extra = data.draw(st.dictionaries(st.sampled_from([2, 3, 4]), st.binary(max_size=2)))  # algs entry lacks
    cond = {**{a: entry[a] for a in common}, **extra}
    assert match_digests(_digests(cond), _digests(entry))
    bad = data.draw(st.sampled_from(common))
    changed = {**cond, bad: cond[bad] + b"\x00"}
    assert not match_digests(_digests(changed), _digests(entry))  # anti-downgrade: every common alg counts


@given(st.permutations([1, 7, 8, 10, "sha3-224"]), st.integers(1, 4), st.binary(max_size=2))
def test_digests_without_a_common_algorithm_never_match(algs: list[int | str], split: int, value: bytes) -> None:
    cond = tuple(Digest(a, value) for a in algs[:split])
    entry = tuple(Digest(a, value) for a in algs[split:])  # same bytes, disjoint algorithms
    assert not match_digests(cond, entry)


def test_digest_edge_cases() -> None:
    d = Digest(1, b"\x01" * 32)
    assert match_digests((d,), (d,))
    assert not match_digests((), (d,))  # an empty condition never matches
    assert not match_digests((d, d), (d,))  # duplicate algorithm in the condition
    assert not match_digests((d,), (d, Digest(1, b"\x02" * 32)))  # duplicate algorithm in the entry
    # A text name and its registry id are one algorithm: mixed naming cannot hide a mismatch...
    assert not match_digests((Digest("sha-256", b"\x02" * 32), Digest(7, b"\x03" * 48)), (d, Digest(7, b"\x03" * 48)))
    # ...nor a match.
    assert match_digests((Digest("sha-256", d.value),), (d,))
    assert not match_digests((Digest("sha-256", d.value), d), (d,))  # the same algorithm twice
    assert match_digests((Digest("private-alg", b"x"),), (Digest("private-alg", b"x"),))


# --- svn -----------------------------------------------------------------------------------

svns = st.builds(Svn, st.integers(0, 6), st.booleans())


def draft_svn(cond: Svn, entry: Svn) -> bool:
    """The draft's pseudocode (fig-comp-svn), transcribed."""
    if not entry.minimum:
        return cond.value == entry.value if not cond.minimum else cond.value <= entry.value
    return False if not cond.minimum else cond.value == entry.value


@given(svns, svns)
def test_svn_follows_the_draft(cond: Svn, entry: Svn) -> None:
    assert match_svn(cond, entry) is draft_svn(cond, entry)


def test_svn_examples() -> None:
    assert match_svn(Svn(3, minimum=True), Svn(5)) and not match_svn(Svn(6, minimum=True), Svn(5))
    assert match_svn(Svn(5), Svn(5)) and not match_svn(Svn(4), Svn(5))
    assert not match_svn(Svn(5), Svn(5, minimum=True))  # an endorsed minimum is not an exact state


# --- raw values ----------------------------------------------------------------------------

@given(st.binary(min_size=1, max_size=16), st.data())
def test_raw_value_compares_masked_bits_only(value: bytes, data: st.DataObject) -> None:
    mask = data.draw(st.binary(min_size=len(value), max_size=len(value)))
    noise = data.draw(st.binary(min_size=len(value), max_size=len(value)))
    entry = bytes(v ^ (n & ~m & 0xFF) for v, n, m in zip(value, noise, mask, strict=True))  # differs off-mask only
    assert match_raw_value(RawValue(value, mask), RawValue(entry))
    bits = [i for i in range(len(value) * 8) if mask[i // 8] >> (i % 8) & 1]
    if bits:
        bit = data.draw(st.sampled_from(bits))
        flipped = bytearray(entry)
        flipped[bit // 8] ^= 1 << (bit % 8)
        assert not match_raw_value(RawValue(value, mask), RawValue(bytes(flipped)))


@given(st.binary(min_size=1, max_size=8), st.binary(min_size=1, max_size=8))
def test_raw_value_without_mask_is_equality(a: bytes, b: bytes) -> None:
    assert match_raw_value(RawValue(a), RawValue(b)) is (a == b)


def test_raw_value_lengths() -> None:
    assert not match_raw_value(RawValue(b"\x01"), RawValue(b"\x01\x00"))
    assert not match_raw_value(RawValue(b"\x01\x02", b"\xff"), RawValue(b"\x01\x02"))  # mask length differs
    assert not match_raw_value(RawValue(b"\x01"), RawValue(b"\x01", b"\xff"))  # a masked entry is not an entry
    assert match_raw_value(RawValue(b"\xf0", b"\xf0"), RawValue(b"\xff"))


# --- int ranges ----------------------------------------------------------------------------

bounds = st.none() | st.integers(-5, 5)


@given(bounds, bounds, bounds, bounds)
def test_int_range_is_containment(cmin: int | None, cmax: int | None, emin: int | None, emax: int | None) -> None:
    assume(cmin is None or cmax is None or cmin <= cmax)
    assume(emin is None or emax is None or emin <= emax)
    # Independent statement: every integer the entry allows (over a window wider than all bounds,
    # with None as unbounded) is allowed by the condition.
    window = range(-20, 21)
    entry_values = [v for v in window if (emin is None or v >= emin) and (emax is None or v <= emax)]
    inside = all((cmin is None or v >= cmin) and (cmax is None or v <= cmax) for v in entry_values)
    assert match_int_range(IntRange(cmin, cmax), IntRange(emin, emax)) is inside


def test_int_range_draft_cases() -> None:
    assert match_int_range(IntRange(3, 3), IntRange(3, 3))  # int vs int: equality
    assert not match_int_range(IntRange(3, 3), IntRange(2, 3))  # int vs range: range must be exactly [int, int]
    assert match_int_range(IntRange(None, 5), IntRange(-100, -100))  # range vs int: inclusion
    assert not match_int_range(IntRange(0, None), IntRange(None, 3))  # an unbounded entry end escapes a bound


# --- other attributes ----------------------------------------------------------------------

KEY_A, KEY_B = Tagged("pkix-base64-key", "A", 554), Tagged("pkix-base64-key", "B", 554)


def test_version_is_equality_including_scheme() -> None:
    v = MeasurementValues(version=Version("1.0.0", 16384))
    assert match_values(v, v)
    assert not match_values(v, MeasurementValues(version=Version("1.0.0")))
    assert not match_values(v, MeasurementValues(version=Version("1.0.1", 16384)))


def test_cryptokeys_element_wise_in_order() -> None:
    assert match_cryptokeys((KEY_A,), (KEY_A, KEY_B))
    assert not match_cryptokeys((KEY_B,), (KEY_A, KEY_B))
    assert not match_cryptokeys((KEY_A, KEY_B), (KEY_A,))
    assert not match_cryptokeys((KEY_A,), (Tagged("pkix-base64-cert", "A", 555),))  # same content, other tag


def test_integrity_registers() -> None:
    d1, d2 = Digest(1, b"\x01" * 32), Digest(1, b"\x02" * 32)
    entry = {0: (d1,), "pcr-1": (d2,), 5: (d2,)}
    assert match_integrity_registers({0: (d1,)}, entry)  # a subset of registers is enough
    assert not match_integrity_registers({0: (d2,)}, entry)
    assert not match_integrity_registers({"5": (d2,)}, entry)  # 5 and "5" are different registers
    assert not match_integrity_registers({9: (d1,)}, entry)


def test_flags() -> None:
    assert match_flags({3: False}, {3: False, 8: True})
    assert not match_flags({3: True}, {3: False}) and not match_flags({3: False}, {8: True})


@given(st.sampled_from(["serial_number", "name"]), st.text(max_size=3), st.text(max_size=3))
def test_plain_attributes_are_equality(attr: str, a: str, b: str) -> None:
    assert match_values(MeasurementValues(**{attr: a}), MeasurementValues(**{attr: b})) is (a == b)


def test_absent_entry_attribute_fails_extra_entry_attribute_ignored() -> None:
    cond = MeasurementValues(name="BL")
    assert not match_values(cond, MeasurementValues(serial_number="x"))
    assert match_values(cond, MeasurementValues(name="BL", serial_number="x", svn=Svn(1)))


def test_extension_code_points_need_a_comparator() -> None:
    cond, entry = MeasurementValues(extensions={100: "a"}), MeasurementValues(extensions={100: "a"})
    assert not match_values(cond, entry)  # unknown comparison rule: no match
    assert match_values(cond, entry, extensions={100: lambda c, e: c == e})
    assert not match_values(cond, MeasurementValues(name="x"), extensions={100: lambda c, e: c == e})
    assert match_values(MeasurementValues(name="x"), replace(entry, name="x"))  # entry-only extensions ignored


# --- measurements --------------------------------------------------------------------------

SW = Measurement(MeasurementValues(digests=(Digest(1, b"\x01" * 32),), name="BL"),
                 Tagged("string", "psa.software-component"))


def test_measurement_mkey_and_authority() -> None:
    assert match_measurement(SW, SW)
    assert not match_measurement(replace(SW, mkey=None), SW)  # both absent or both equal
    assert match_measurement(replace(SW, mkey=None), replace(SW, mkey=None))
    assert not match_measurement(SW, replace(SW, mkey=Tagged("string", "other")))
    authored = replace(SW, authorized_by=(KEY_A,))
    assert match_measurement(authored, replace(SW, authorized_by=(KEY_B, KEY_A)))  # order does not matter
    assert not match_measurement(authored, SW)
    assert match_measurement(SW, authored)


def test_measurement_list_every_condition_matches_some_entry() -> None:
    other = replace(SW, mval=replace(SW.mval, name="PRoT", digests=(Digest(1, b"\x02" * 32),)))
    assert match_measurements([SW], [other, SW])
    assert match_measurements([SW, other], [other, SW])
    assert not match_measurements([SW, other], [SW])
    assert match_measurements([], [SW])
