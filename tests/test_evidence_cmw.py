"""CMW: every example of draft-ietf-rats-msg-wrap-23 and every veraison/cmw test vector decodes to
the tree its SOURCES.md describes; then the draft's rules, one at a time."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any

import cbor_diag
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from federation import cbor
from federation.errors import MalformedError, UsageError
from federation.evidence import sniff
from verifiers.local.evidence import cmw
from verifiers.local.evidence.cmw import Collection, Record

TAG_64999 = 1668612070  # TN(64999), RFC 9277


def load(path: Path) -> bytes:
    """Vector bytes: .diag through cbor-diag, .cbor and .json as they are."""
    return cbor_diag.diag2cbor(path.read_text()) if path.suffix == ".diag" else path.read_bytes()


def tree(c: cmw.Cmw) -> Any:
    """A plain view of a CMW for comparisons: records as tuples, collections as dicts."""
    if isinstance(c, Record):
        return (c.type, c.value.hex(), c.ind, c.tagged)
    return {"__cmwc_t": c.ctype, **{k: tree(v) for k, v in c.entries}}


IETF: dict[str, Any] = {
    "cmw-example-1.json": ("application/vnd.example.rats-conceptual-msg", "2347da55", None, False),
    "cmw-example-1.diag": (64999, "2347da55", None, False),
    "cmw-example-2.json": ('application/eat+cwt; eat_profile="tag:psacertified.org,2023:psa#tfm"', "2347da55",
                           None, False),
    "cmw-example-2.diag": ("application/vnd.example.rats-conceptual-msg", "2347da55", None, False),
    "cmw-example-3.diag": ("application/rim+cose", "d28440a044d901f5a040", 3, False),
    "cmw-example-tag-1.diag": (64999, "2347da55", None, True),
    "cmw-example-tag-2.diag": (64998, cbor.dumps({10: bytes.fromhex("a7c76d8424a96fb4")}).hex(), None, True),
    "collection-example-1.json": {"__cmwc_t": None,
                                  "attester A": ("application/eat-ucs+json", b"{}\n".hex(), 4, False),
                                  "attester B": ("application/eat-ucs+cbor", "a0", 4, False)},
    "collection-example-1.diag": {"__cmwc_t": "tag:example.com,2024:composite-attester",
                                  0: (64999, "2347da55", 4, False), 1: (64999, "2347da55", None, True),
                                  2: ("application/eat+jwt", "4c693475", 8, False)},
    "collection-example-2.json": {"__cmwc_t": "tag:example.com,2024:another-composite-attester",
                                  "attester A": ("application/eat-ucs+json", b"{}\n".hex(), 4, False),
                                  "attester B": ("application/eat-ucs+cbor", "a0", 4, False)},
    "collection-example-2.diag": {"__cmwc_t": "tag:example.com,2024:composite-attester",
                                  0: (64999, "2347da55", 4, False), 1: (64999, "2347da55", None, True),
                                  2: ("application/eat+jwt", "2e2e2e", 8, False)},
}

VERAISON: dict[str, Any] = {
    "collection-cbor-ok": {"__cmwc_t": None, 1: ("application/signed-corim+cbor", "d28443a10126a1", 3, False),
                           2: (29884, "2347da55", None, True), "s": (30001, "2347da55", None, False)},
    "collection-cbor-ok-2": {"__cmwc_t": None, 1: ("application/vnd.1", "deadbeef", None, False)},
    "collection-cbor-mixed-keys": {"__cmwc_t": None, "string": (0, "ff", None, False),
                                   1024: (0, "aa", None, True)},
}


@pytest.mark.parametrize("name", sorted(IETF))
def test_draft_examples(vectors: Path, name: str) -> None:
    data = load(vectors / "ietf-rats-msg-wrap" / name)
    got = cmw.decode(data)
    assert tree(got) == IETF[name]
    assert sniff(data) == (cmw.JSON_MEDIA_TYPE if name.endswith(".json") else cmw.CBOR_MEDIA_TYPE)
    # our encoders reproduce the same tree
    reencoded = cmw.encode_json(got) if name.endswith(".json") else cmw.encode_cbor(got)
    assert tree(cmw.decode(reencoded)) == IETF[name]


@pytest.mark.parametrize("name", sorted(VERAISON))
@pytest.mark.parametrize("suffix", [".cbor", ".diag"])
def test_veraison_vectors(vectors: Path, name: str, suffix: str) -> None:
    data = load(vectors / "veraison-cmw" / f"{name}{suffix}")
    assert tree(cmw.decode_cbor(data)) == VERAISON[name]
    assert cmw.sniff(data) == cmw.CBOR_MEDIA_TYPE


def test_veraison_json_collection(vectors: Path) -> None:
    got = cmw.decode((vectors / "veraison-cmw" / "collection-ok.json").read_bytes())
    assert isinstance(got, Collection) and got.labels == ("a", "b")
    assert got["a"] == Record("application/vnd.a", b"a") and got["b"] == Record("application/vnd.b", b"b")


def test_cmw_claim_of_a_jwt_claims_set(vectors: Path) -> None:
    claims = json.loads((vectors / "ietf-rats-msg-wrap" / "eat-example-1.json").read_text())
    got = cmw.from_json_item(claims["cmw"])
    assert tree(got) == IETF["collection-example-2.json"]
    assert cmw.sniff(json.dumps(claims).encode()) is None  # the claims-set itself is not a CMW


def test_leaves_and_media_types(vectors: Path) -> None:
    got = cmw.decode(load(vectors / "ietf-rats-msg-wrap" / "collection-example-1.diag"))
    paths = [(path, leaf.media_type, leaf.content_format) for path, leaf in cmw.leaves(got)]
    assert paths == [((0,), None, 64999), ((1,), None, 64999), ((2,), "application/eat+jwt", None)]
    assert Record(263, b"").media_type == "application/eat+cwt"


def test_tn_transform() -> None:
    assert cmw.tag_of_content_format(64999) == TAG_64999
    assert cmw.content_format_of_tag(TAG_64999) == 64999
    for cf in (0, 1, 254, 255, 256, 263, 10003, 65024):
        assert cmw.content_format_of_tag(cmw.tag_of_content_format(cf)) == cf
    assert cmw.content_format_of_tag(1668546817 + 255) is None  # low byte 0xff is never produced
    assert cmw.content_format_of_tag(1668612096) is None and cmw.content_format_of_tag(18) is None
    with pytest.raises(UsageError):
        cmw.tag_of_content_format(65025)


# -- the draft's rules, one at a time --------------------------------------------------------------

CBOR_CASES: list[tuple[str, Any, str]] = [
    ("record-4-elements", ["a/b", b"", 1, 2], r"a record has 2 or 3 elements, not 4"),
    ("record-1-element", ["a/b"], r"a record has 2 or 3 elements, not 1"),
    ("record-text-value", ["a/b", "text"], r"a CBOR record value must be a byte string"),
    ("cf-too-big", [65536, b""], r"Content-Format 65536 is not a 2-byte uint"),
    ("cf-negative", [-1, b""], r"Content-Format -1 is not a 2-byte uint"),
    ("type-not-media-type", ["not a media type", b""], r"type 'not a media type' is not a media type"),
    ("type-bytes", [b"a/b", b""], r"is not a media type"),
    ("ind-zero", ["a/b", b"", 0], r"ind must be a non-zero uint of at most 4 bytes"),
    ("ind-too-big", ["a/b", b"", 1 << 32], r"ind must be a non-zero uint"),
    ("ind-bool", ["a/b", b"", True], r"ind must be a non-zero uint"),
    ("tag-outside-range", cbor.CBORTag(1668546816, b""), r"tag 1668546816 is not a CMW tag"),
    ("tag-cose", cbor.CBORTag(18, b""), r"tag 18 is not a CMW tag"),
    ("tag-not-bytes", cbor.CBORTag(TAG_64999, "x"), r"a tag CMW must wrap a byte string"),
    ("collection-empty", {}, r"a collection must have at least one entry"),
    ("collection-only-type", {"__cmwc_t": "tag:x.com,2024:y"}, r"at least one entry"),
    ("collection-bad-type", {"__cmwc_t": "no scheme", 1: ["a/b", b""]}, r"__cmwc_t .* neither an absolute URI"),
    ("collection-type-relative", {"__cmwc_t": "/path", 1: ["a/b", b""]}, r"neither an absolute URI nor an OID"),
    ("collection-bytes-label", {b"k": ["a/b", b""]}, r"label b'k' must be text or int"),
    ("collection-bad-child", {"x": {"y": [0, "t"]}}, r"cmw: x.y: a CBOR record value must be a byte string"),
    ("scalar", 5, r"int is not a CMW"),
]


@pytest.mark.parametrize(("case", "item", "reason"), CBOR_CASES, ids=[c[0] for c in CBOR_CASES])
def test_cbor_rules(case: str, item: Any, reason: str) -> None:
    data = cbor.dumps(item)
    with pytest.raises(MalformedError, match=reason):
        cmw.decode_cbor(data)
    assert cmw.sniff(data) is None


def test_oid_collection_type_and_indefinite_record() -> None:
    got = cmw.decode_cbor(cbor.dumps({"__cmwc_t": "1.2.840.113549", "k": [60, b"\xa0"]}))
    assert isinstance(got, Collection) and got.ctype == "1.2.840.113549"
    indefinite = b"\x9f\x63a/b\x41\x00\xff"  # [_ "a/b", h'00'], which the draft's demux names (0x9f)
    assert cmw.decode(indefinite) == Record("a/b", b"\x00")


JSON_CASES: list[tuple[str, Any, str]] = [
    ("padding", ["a/b", "YQ=="], r"base64url without padding"),
    ("std-alphabet", ["a/b", "+/8"], r"base64url without padding"),
    ("stray-bits", ["a/b", "YR"], r"base64url without padding"),
    ("bad-length", ["a/b", "Y"], r"base64url without padding"),
    ("cf-in-json", [64999, "YQ"], r"type 64999 is not a media type"),
    ("ind-zero", ["a/b", "YQ", 0], r"ind must be a non-zero uint"),
    ("ind-float", ["a/b", "YQ", 4.0], r"ind must be a non-zero uint"),
    ("empty-collection", {}, r"at least one entry"),
    ("scalar-entry", {"a": "b"}, r"cmw: a: str is not a JSON CMW"),
]


@pytest.mark.parametrize(("case", "item", "reason"), JSON_CASES, ids=[c[0] for c in JSON_CASES])
def test_json_rules(case: str, item: Any, reason: str) -> None:
    data = json.dumps(item).encode()
    with pytest.raises(MalformedError, match=reason):
        cmw.decode(data)
    assert cmw.sniff(data) is None


def test_json_is_strict() -> None:
    with pytest.raises(MalformedError, match="duplicate key"):
        cmw.decode(b'{"a": ["a/b", "YQ"], "a": ["a/b", "Yg"]}')
    with pytest.raises(MalformedError):
        cmw.decode(b'["a/b", "YQ"')


def nest(leaf: Any, levels: int) -> Any:
    for _ in range(levels):
        leaf = {"n": leaf}
    return leaf


def test_depth_and_size_bounds() -> None:
    deepest_ok = nest(["a/b", b""], cmw.MAX_DEPTH)
    assert isinstance(cmw.decode_cbor(cbor.dumps(deepest_ok)), Collection)
    with pytest.raises(MalformedError, match="nest"):  # the CBOR decoder's bound follows max_depth
        cmw.decode_cbor(cbor.dumps({"n": deepest_ok}))
    with pytest.raises(MalformedError, match="nest"):
        cmw.decode_cbor(cbor.dumps(deepest_ok), max_depth=cmw.MAX_DEPTH - 1)
    with pytest.raises(MalformedError, match="collections nested too deeply"):
        cmw.from_cbor_item({"n": deepest_ok})
    with pytest.raises(MalformedError, match="collections nested too deeply"):
        cmw.decode_json_cmw(json.dumps(nest(["a/b", "AA"], 3)), max_depth=2)
    assert isinstance(cmw.decode_json_cmw(json.dumps(nest(["a/b", "AA"], 3)), max_depth=3), Collection)
    with pytest.raises(MalformedError, match="exceeds"):
        cmw.decode(cbor.dumps(["a/b", bytes(64)]), max_size=32)
    with pytest.raises(MalformedError, match="exceeds"):
        cmw.decode(json.dumps(["a/b", "A" * 64]).encode(), max_size=32)
    with pytest.raises(MalformedError, match="empty input"):
        cmw.decode(b"")


def test_encoders_refuse_what_the_serialization_cannot_carry() -> None:
    with pytest.raises(UsageError):
        cmw.encode_json(Record(64999, b""))
    with pytest.raises(UsageError):
        cmw.encode_json(Collection(((1, Record("a/b", b"")),)))
    with pytest.raises(UsageError):
        cmw.encode_cbor(Record("a/b", b"", tagged=True))
    tagged = Record(64999, b"\x23\x47\xda\x55", tagged=True)
    assert cmw.encode_cbor(tagged) == bytes.fromhex("da6374ffe6442347da55")  # cmw-example-tag-1


def test_collection_lookup() -> None:
    c = Collection(((1, Record("a/b", b"1")), ("1", Record("a/b", b"2"))), "tag:x.com,2024:y")
    assert c[1].value == b"1" and c["1"].value == b"2"  # type: ignore[union-attr]
    with pytest.raises(KeyError):
        c[2]


# -- hostile bytes ---------------------------------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=64) | st.text(max_size=64).map(str.encode)
       | st.recursive(st.lists(st.binary(max_size=4), max_size=3) | st.integers(-2, 70000) | st.text(max_size=8),
                      lambda inner: st.dictionaries(st.text(max_size=3) | st.integers(-2, 3), inner, max_size=3)
                      | st.lists(inner, max_size=4), max_leaves=12).map(cbor.dumps))
def test_hostile_input_only_raises_typed_errors(data: bytes) -> None:
    with contextlib.suppress(MalformedError):
        cmw.decode(data)
    assert cmw.sniff(data) in (None, cmw.CBOR_MEDIA_TYPE, cmw.JSON_MEDIA_TYPE)
