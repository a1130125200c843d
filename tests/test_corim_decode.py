"""Malformed CoRIMs: each is refused with a MalformedError whose message names what is wrong.

Every case starts from one good CoRIM (plain dicts, encoded with cbor2) and changes one thing,
the python-tuf way, so that the failure can only come from that change.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import cbor2
import pytest
from cbor2 import CBORTag

from federation.errors import MalformedError
from verifiers.local.corim import decode_comid, decode_corim, encode_corim
from verifiers.local.corim.decode import MAX_CORIM_SIZE
from verifiers.local.corim.model import ProfileId

IMPL = CBORTag(560, b"\x11" * 32)
DIGEST = [1, b"\x22" * 32]


def good_comid() -> dict[int, Any]:
    return {
        1: {0: "comid-1", 1: 3},
        4: {
            0: [[{0: {0: IMPL, 1: "ACME"}}, [{0: "psa.software-component", 1: {2: [DIGEST], 11: "BL"}}]]],
            3: [[{0: {0: IMPL}, 1: CBORTag(550, b"\x01" + b"\x33" * 32)}, [CBORTag(554, "PEM")]]],
        },
    }


def good_corim() -> dict[int, Any]:
    return {0: "corim-1", 1: [CBORTag(506, cbor2.dumps(good_comid()))],
            3: CBORTag(32, "tag:arm.com,2025:psa#1.0.0"),
            4: {0: CBORTag(1, 1_700_000_000), 1: CBORTag(1, 1_800_000_000)}}


def encode(corim: dict[int, Any]) -> bytes:
    return cbor2.dumps(CBORTag(501, corim))


def with_comid(change: Callable[[dict[int, Any]], None]) -> bytes:
    comid = good_comid()
    change(comid)
    return encode({**good_corim(), 1: [CBORTag(506, cbor2.dumps(comid))]})


def with_corim(change: Callable[[dict[int, Any]], None]) -> bytes:
    corim = good_corim()
    change(corim)
    return encode(corim)


def _set(path: tuple[Any, ...], value: Any) -> Callable[[dict[int, Any]], None]:
    def change(m: dict[int, Any]) -> None:
        target: Any = m
        for k in path[:-1]:
            target = target[k]
        target[path[-1]] = value
    return change


def _delete(path: tuple[Any, ...]) -> Callable[[dict[int, Any]], None]:
    def change(m: dict[int, Any]) -> None:
        target: Any = m
        for k in path[:-1]:
            target = target[k]
        del target[path[-1]]
    return change


def _both(*changes: Callable[[dict[int, Any]], None]) -> Callable[[dict[int, Any]], None]:
    def change(m: dict[int, Any]) -> None:
        for c in changes:
            c(m)
    return change


REF = (4, 0, 0)  # the first reference triple
MVAL = (*REF, 1, 0, 1)  # its first measurement's mval

CASES: list[tuple[str, bytes, str]] = [
    ("not tagged", cbor2.dumps(good_corim()), r"expected tag 501"),
    ("legacy wrapper", cbor2.dumps(CBORTag(500, good_corim())), r"tag 500 \(pre-draft CoRIM wrapper\)"),
    ("wrong tag", cbor2.dumps(CBORTag(502, good_corim())), r"tag 502 is not an unsigned CoRIM"),
    ("no id", with_corim(_delete((0,))), r"^malformed: corim: id is missing"),
    ("uuid id of 15 bytes", with_corim(_set((0,), b"\x00" * 15)), r"corim\.id: 15 bytes"),
    ("no tags", with_corim(_set((1,), [])), r"corim\.tags: must not be empty"),
    ("tag 507", with_corim(_set((1,), [CBORTag(507, b"\xa0")])), r"corim\.tags\[0\]: CBOR tag 507"),
    ("comid not bstr", with_corim(_set((1,), [CBORTag(506, {})])), r"corim\.tags\[0\]: expected a tagged bstr"),
    ("profile not a uri", with_corim(_set((3,), CBORTag(32, 7))), r"corim\.profile: expected text, got int"),
    ("validity inverted", with_corim(_set((4,), {0: CBORTag(1, 2), 1: CBORTag(1, 1)})),
     r"rim-validity: not-before is after not-after"),
    ("validity untagged time", with_corim(_set((4,), {1: 1_800_000_000})),
     r"rim-validity\.not-after: expected an epoch time \(tag 1\), got int"),
    ("validity without not-after", with_corim(_set((4,), {0: CBORTag(1, 2)})), r"not-after is missing"),
    ("unknown non-int key", with_corim(_set(("x",), 1)), r"corim: unexpected key 'x'"),
    ("locator href untagged", with_corim(_set((2,), [{0: "https://x"}])),
     r"dependent-rims\[0\]\.href: expected a URI \(tag 32\), got text"),
    ("no tag-identity", with_comid(_delete((1,))), r"comid: tag-identity is missing"),
    ("bool tag-version", with_comid(_set((1, 1), True)), r"tag-version: expected an unsigned integer, got bool"),
    ("empty triples", with_comid(_set((4,), {})), r"comid\.triples: must not be empty"),
    ("reserved triples key", with_comid(_set((4, 7), [])), r"comid\.triples: key 7 is reserved"),
    ("triple of 3", with_comid(_set(REF, [{0: {0: IMPL}}, [], []])), r"reference-triples\[0\]: expected 2 elements"),
    ("empty environment", with_comid(_set((*REF, 0), {})), r"ref-env: must not be empty"),
    ("unknown environment key", with_comid(_set((*REF, 0, 9), 1)), r"ref-env: unexpected key 9"),
    ("class-id tag 38", with_comid(_set((*REF, 0, 0, 0), CBORTag(38, b"x"))),
     r"reference-triples\[0\]\.ref-env\.class\.class-id: CBOR tag 38 is not allowed here"),
    ("class-id untagged", with_comid(_set((*REF, 0, 0, 0), b"x")), r"class-id: expected a tagged value, got bytes"),
    ("uuid class-id of 4 bytes", with_comid(_set((*REF, 0, 0, 0), CBORTag(37, b"abcd"))), r"class-id: 4 bytes"),
    ("negative layer", with_comid(_set((*REF, 0, 0, 3), -1)), r"class\.layer: expected an unsigned integer"),
    ("ueid of 40 bytes", with_comid(_set((4, 3, 0, 0, 1), CBORTag(550, b"\x01" * 40))), r"instance: 40 bytes"),
    ("key type 600", with_comid(_set((4, 3, 0, 1), [CBORTag(600, b"x")])), r"key-list\[0\]: CBOR tag 600"),
    ("no measurements", with_comid(_set((*REF, 1), [])), r"ref-claims: must not be empty"),
    ("no mval", with_comid(_set((*REF, 1, 0), {0: "x"})), r"ref-claims\[0\]: mval is missing"),
    ("empty mval", with_comid(_set(MVAL, {})), r"ref-claims\[0\]\.mval: must not be empty"),
    ("short sha-256", with_comid(_set((*MVAL, 2), [[1, b"\x00" * 31]])), r"sha-256 digest must be 32 bytes, got 31"),
    ("short sha-384 by name", with_comid(_set((*MVAL, 2), [["sha-384", b"\x00" * 32]])),
     r"sha-384 digest must be 48 bytes"),
    ("duplicate digest alg", with_comid(_set((*MVAL, 2), [DIGEST, DIGEST])), r"digests: an algorithm appears more"),
    ("digest alg bool", with_comid(_set((*MVAL, 2), [[True, b"x"]])), r"digests\[0\]\.alg: expected an integer"),
    ("svn tag 554", with_comid(_set((*MVAL, 1), CBORTag(554, 1))), r"mval\.svn: CBOR tag 554 is not an svn"),
    ("raw-value untagged", with_comid(_set((*MVAL, 4), b"x")), r"raw-value: expected tagged-bytes"),
    ("mask without raw-value", with_comid(_set((*MVAL, 5), b"\xff")), r"raw-value-mask-DEPRECATED needs"),
    ("masked raw value plus mask",
     with_comid(_both(_set((*MVAL, 4), CBORTag(563, [b"a", b"b"])), _set((*MVAL, 5), b"c"))),
     r"raw-value-mask-DEPRECATED needs an unmasked raw-value"),
    ("int-range inverted", with_comid(_set((*MVAL, 15), CBORTag(564, [5, 1]))), r"int-range: min 5 is greater"),
    ("int-range float", with_comid(_set((*MVAL, 15), 1.5)), r"int-range: expected an integer, got float"),
    ("mac-addr of 7 bytes", with_comid(_set((*MVAL, 6), b"\x00" * 7)), r"mac-addr: 7 bytes"),
    ("flags not bool", with_comid(_set((*MVAL, 3), {0: 1})), r"flags\[0\]: expected a bool, got int"),
    ("version without text", with_comid(_set((*MVAL, 0), {1: 16384})), r"version: version is missing"),
    ("mkey bytes", with_comid(_set((*REF, 1, 0, 0), b"x")), r"mkey: expected a tagged value, got bytes"),
    ("key triple conditions empty", with_comid(_set((4, 3, 0), [{0: {0: IMPL}}, [CBORTag(554, "k")], {}])),
     r"attest-key-triples\[0\]\.conditions: must not be empty"),
    ("cryptokeys empty", with_comid(_set((*MVAL, 13), [])), r"cryptokeys: must not be empty"),
    ("integrity register bool id", with_comid(_set((*MVAL, 14), {True: [DIGEST]})), r"integrity-registers key"),
]


@pytest.mark.parametrize(("data", "message"), [(d, m) for _, d, m in CASES], ids=[c[0] for c in CASES])
def test_malformed_corim_is_rejected_with_a_reason(data: bytes, message: str) -> None:
    with pytest.raises(MalformedError, match=message) as info:
        decode_corim(data)
    assert info.value.reason == "malformed"


def test_the_good_corim_is_good() -> None:
    corim = decode_corim(encode(good_corim()))
    assert corim.comids[0].tag_version == 3


@pytest.mark.parametrize(("data", "message"), [
    (encode(good_corim())[:-1], r"truncated"),
    (encode(good_corim()) + b"\x00", r"1 trailing bytes"),
    (b"\xd9\x01\xf5\xa2\x00\x61x\x00\x61y", r"duplicate map key"),
    (b"\xd9\x01\xf5\xbf\xff", r"indefinite-length map not allowed"),
])
def test_byte_level_defects(data: bytes, message: str) -> None:
    with pytest.raises(MalformedError, match=message):
        decode_corim(data)


def test_size_is_bounded() -> None:
    big = with_corim(_set((5,), [{0: "x" * 100, 2: [1]}] * 200))
    with pytest.raises(MalformedError, match=r"exceeds 1000"):
        decode_corim(big, max_size=1000)
    assert MAX_CORIM_SIZE >= 1 << 20


def test_depth_is_bounded() -> None:
    deep: Any = 0
    for _ in range(40):
        deep = [deep]
    with pytest.raises(MalformedError, match=r"nesting deeper than"):
        decode_corim(with_corim(_set((99,), deep)))  # an extension key: only the bound can refuse it
    with pytest.raises(MalformedError, match=r"nesting deeper than"):
        decode_corim(with_comid(_set((*MVAL, -1), deep)))


def test_decode_comid_accepts_bare_and_tagged() -> None:
    raw = cbor2.dumps(good_comid())
    assert decode_comid(raw) == decode_comid(cbor2.dumps(CBORTag(506, raw)))
    with pytest.raises(MalformedError, match=r"expected a CoMID map or 506\(bstr\), got tag 505"):
        decode_comid(cbor2.dumps(CBORTag(505, raw)))



def test_oid_profile_round_trip() -> None:
    # id-sha256, 2.16.840.1.101.3.4.2.1, whose BER content is well known (RFC 5754).
    corim = decode_corim(with_corim(_set((3,), CBORTag(111, bytes.fromhex("608648016503040201")))))
    assert corim.profile == ProfileId("2.16.840.1.101.3.4.2.1", "oid")
    assert decode_corim(encode_corim(corim)) == corim
    with pytest.raises(MalformedError, match="OID ends inside an arc"):
        decode_corim(with_corim(_set((3,), CBORTag(111, b"\x2b\x86"))))
