"""CoRIM / CoMID decoding against the shared vectors: each decodes to what its SOURCES.md says.

Vectors are read in place (``vectors`` fixture); ``.diag`` files are converted with cbor_diag.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import cbor2
import pytest
from cbor_diag import diag2cbor
from cryptography.hazmat.primitives.asymmetric import ec

from federation.errors import MalformedError
from federation.keys import jwk_to_public
from verifiers.local.corim import Corim, Tagged, decode_comid, decode_corim, encode_corim, public_key
from verifiers.local.corim.decode import SignedCorim, decode, decode_signed_corim, read_meta
from verifiers.local.corim.model import Digest, OpaqueTag, ProfileId, Version

PSA_PROFILE = ProfileId("tag:arm.com,2025:psa#1.0.0", "uri")
IMPL_ID = b"acme-implementation-id-000000001"
SIGNER_ID = bytes.fromhex("5378796307535df3ec8d8b15a2e2dc5641419c3d3060cfe32238c0fa973f7aa3")
INST_1 = bytes.fromhex("01ceebae7b8927a3227e5303cf5e0f1f7b34bb542ad7250ac03fbcde36ec2f1508")
INST_2 = bytes.fromhex("014ca3e4f50bf248c39787020d68ffd05c88767751bf2645ca923f57a98becd296")
PSA_DIGESTS = {
    "BL": "87428fc522803d31065e7bce3cf03fe475096631e5e07bbd7a0fde60c4cf25c7",
    "PRoT": "0263829989b6fd954f72baaf2fc64bc2e2f01d692d4de72986ea808f6e99813f",
    "ARoT": "a3a5e715f0cc574a73c3f9bebb6bc24f32ffd5b67b387244c2c909da779a1478",
}


def _corim(path: Path) -> Corim:
    return decode_corim(path.read_bytes())


def _ec_numbers(key: object) -> tuple[int, int]:
    assert isinstance(key, ec.EllipticCurvePublicKey)
    n = key.public_numbers()
    return n.x, n.y


# --- veraison-services/psa/endorsements --------------------------------------------------

def test_psa_valid_corim(vectors: Path) -> None:
    corim = _corim(vectors / "veraison-services/psa/endorsements/corim-psa-valid.cbor")
    assert corim.id == "00000000-0000-0000-065a-0000000000001"
    assert corim.profile == PSA_PROFILE
    refs, keys = corim.comids
    assert refs.tag_id_text == "43bbe37f-2e61-4b33-aed3-53cff1428b16" and refs.language == "en-GB"
    (triple,) = refs.triples.reference
    assert triple.environment.class_id == Tagged("bytes", IMPL_ID, 560)
    got = {m.mval.name: m for m in triple.measurements}
    assert set(got) == set(PSA_DIGESTS)
    for name, m in got.items():
        assert m.mkey == Tagged("string", "psa.software-component")
        assert m.mval.digests == (Digest(1, bytes.fromhex(PSA_DIGESTS[name])),)
        assert m.mval.cryptokeys == (Tagged("bytes", SIGNER_ID, 560),)
    first, second = keys.triples.attest_key
    assert first.environment.instance == Tagged("ueid", INST_1, 550)
    assert second.environment.instance == Tagged("ueid", INST_2, 550)
    assert second.environment.class_ is not None and second.environment.class_.vendor == "ACME"
    # The first device's attest key is the PSA IAK that signs psa.good.cose.
    iak = jwk_to_public(json.loads((vectors / "veraison-services/psa/keys/ec.p256.jwk").read_text()))
    assert _ec_numbers(public_key(first.keys[0])) == _ec_numbers(iak)


@pytest.mark.parametrize("name", [
    "corim-psa-bad-class.cbor", "corim-psa-bad-instance.cbor", "corim-psa-bad-ta-no-instance.cbor",
    "corim-psa-bad-ta-cert.cbor", "corim-psa-bad-refval-mkey.cbor",
])
def test_psa_invalid_corims_are_structurally_valid(vectors: Path, name: str) -> None:
    """These break the PSA profile (test_corim_profiles), not the CoRIM grammar."""
    corim = _corim(vectors / "veraison-services/psa/endorsements" / name)
    assert corim.profile == PSA_PROFILE and len(corim.comids) == 1


def test_psa_bad_vectors_carry_the_wrong_types(vectors: Path) -> None:
    base = vectors / "veraison-services/psa/endorsements"
    assert _corim(base / "corim-psa-bad-class.cbor").comids[0].triples.attest_key[0].environment.class_id == \
        Tagged("uuid", bytes.fromhex("dd6661f009284401966b589ea74e3272"), 37)
    inst = _corim(base / "corim-psa-bad-instance.cbor").comids[0].triples.attest_key[0].environment.instance
    assert inst is not None and inst.type == "uuid"
    assert _corim(base / "corim-psa-bad-ta-no-instance.cbor").comids[0].triples.attest_key[0].environment.instance \
        is None
    assert _corim(base / "corim-psa-bad-ta-cert.cbor").comids[0].triples.attest_key[0].keys[0].type == \
        "pkix-base64-cert"
    bad = _corim(base / "corim-psa-bad-refval-mkey.cbor").comids[0].triples.reference[0].measurements[1]
    assert bad.mkey == Tagged("uint", 6)


def test_legacy_psa_corim(vectors: Path) -> None:
    corim = _corim(vectors / "veraison-services/legacy/psa-endorsements-legacy.cbor")
    assert corim.id == "00000000-0000-0001-p5a1-000000000001"
    assert corim.profile == ProfileId("http://arm.com/psa/iot/1", "text")
    refs, keys = corim.comids
    assert refs.triples.reference[0].environment.class_id == Tagged("psa.impl-id", IMPL_ID, 600)
    mkeys = [m.mkey for m in refs.triples.reference[0].measurements]
    assert all(k is not None and k.type == "psa.refval-id" and k.tag == 601 for k in mkeys)
    assert cbor2.loads(mkeys[0].value) == {1: "BL", 4: "2.1.0", 5: bytes.fromhex(
        "acbb11c7e4da217205523ce4ce1a245ae1a239ae3c6bfd9e7871f7e5d8bae86b")}
    assert keys.triples.attest_key[0].environment.instance == Tagged("ueid", INST_1, 550)


# --- veraison-corim --------------------------------------------------------------------------

def test_veraison_corim_psa_profile_cases(vectors: Path) -> None:
    base = vectors / "veraison-corim/psa-profile"
    valid = _corim(base / "psa-valid.cbor")
    assert valid.id == "psa-valid-corim" and valid.profile == PSA_PROFILE
    (m,) = valid.comids[0].triples.reference[0].measurements
    assert m.mval.version == Version("2.1.0") and m.mval.name == "BL"
    (ak,) = valid.comids[0].triples.attest_key
    assert ak.environment.instance == Tagged("ueid", b"\x01" + b"01234567890123456789012345678901", 550)
    assert len(ak.keys) == 1
    impl = _corim(base / "psa-invalid-impl-id.cbor").comids[0].triples.reference[0].environment.class_id
    assert impl is not None and isinstance(impl.value, bytes) and len(impl.value) == 31
    assert len(_corim(base / "psa-invalid-attest-key.cbor").comids[0].triples.attest_key[0].keys) == 2
    assert _corim(base / "no-profile.cbor").profile is None


def test_unsigned_good_corim(vectors: Path) -> None:
    corim = _corim(vectors / "veraison-corim/corim/unsigned-good-corim.cbor")
    assert corim.id == "test corim id"
    (triple,) = corim.comids[0].triples.reference
    assert [m.mkey for m in triple.measurements] == [
        Tagged("uuid", bytes.fromhex("31fb5abf023e4992aa4e95f9c1503bfa"), 37)] * 3
    assert [m.mval.digests[0].value.hex() for m in triple.measurements if m.mval.digests] == \
        list(PSA_DIGESTS.values())


def test_signed_good_corim_decodes(vectors: Path) -> None:
    signed = decode_signed_corim((vectors / "veraison-corim/corim/signed-good-corim.cbor").read_bytes())
    assert signed.sign1.algorithm.name == "ES256" and signed.sign1.kid == "1"
    assert signed.sign1.protected[3] == "application/rim+cbor"
    assert signed.meta.signer_name == "ACME Ltd signing key"
    assert signed.meta.signer_uri == "https://acme.example"
    v = signed.meta.signature_validity
    assert v is not None and v.not_before is not None and v.not_after is not None
    assert (v.not_before.isoformat(), v.not_after.isoformat()) == (
        "2021-12-31T00:00:00+00:00", "2025-12-31T00:00:00+00:00")
    assert signed.corim == _corim(vectors / "veraison-corim/corim/unsigned-good-corim.cbor")


def test_decode_sniffs_the_form(vectors: Path) -> None:
    assert isinstance(decode((vectors / "veraison-corim/corim/signed-good-corim.cbor").read_bytes()), SignedCorim)
    assert isinstance(decode((vectors / "veraison-corim/corim/unsigned-good-corim.cbor").read_bytes()), Corim)


# --- ietf-rats-corim (.diag) -------------------------------------------------------------------

def _diag(vectors: Path, name: str) -> bytes:
    return bytes(diag2cbor((vectors / "ietf-rats-corim" / name).read_text()))


def test_ietf_corim_1(vectors: Path) -> None:
    corim = decode_corim(_diag(vectors, "corim-1.diag"))
    assert corim.id_text == "284e6c3e-5d9f-4f6b-851f-5a4247f243a7"
    comid = corim.comids[0]
    assert comid.tag_id_text == "3f06af63-a93c-11e4-9797-00505690773f"
    assert comid.entities[0].name == "ACME Inc." and comid.entities[0].reg_id == "https://acme.example"
    env = comid.triples.reference[0].environment
    assert env.class_ is not None
    assert (env.class_.class_id, env.class_.vendor, env.class_.model, env.class_.layer) == (
        Tagged("uuid", bytes.fromhex("67b28b6c34cc40a19117ab5b05911e37"), 37), "ACME Inc.", "ACME RoadRunner", 1)
    mval = comid.triples.reference[0].measurements[0].mval
    assert mval.version == Version("1.0.0", 16384)
    assert mval.digests == (Digest(1, bytes.fromhex(
        "44aa336af4cb14a879432e53dd6571c7fa9bccafb75f488259262d6ea3a4d91b")),)


def test_ietf_comid_psa_refval(vectors: Path) -> None:
    comid = decode_comid(_diag(vectors, "comid-psa-refval.diag"))
    assert comid.tag_id == "acme.example/gizmo-v1"
    a, b = comid.triples.reference  # two acceptable states of the same environment
    assert a.environment == b.environment
    assert a.measurements[0].mval.digests == (Digest("sha-256", bytes.fromhex(
        "9a271f2a916b0b6ee6cecb2426f0b3206ef074578be55d9bc94f6f3fe3ab86aa")),)
    assert a.measurements[0].mval.name == "PRoT"


def test_ietf_comid_psa_endval(vectors: Path) -> None:
    comid = decode_comid(_diag(vectors, "comid-psa-endval.diag"))
    (ce,) = comid.triples.conditional
    (cond,) = ce.conditions
    assert cond.environment.class_id == Tagged("bytes", IMPL_ID, 560)
    assert cond.measurements[0].mkey == Tagged("string", "psa.software-component")
    (endorsed,) = ce.endorsements
    assert endorsed.measurements[0].mkey == Tagged("string", "psa.certification")
    assert dict(endorsed.measurements[0].mval.extensions) == {100: "1234567890123 - 12345"}


def test_ietf_protected_headers(vectors: Path) -> None:
    meta = read_meta(cbor2.loads(_diag(vectors, "protected-header-map-corim-meta.diag")))
    assert meta.signer_name == "ACME Ltd." and meta.signature_validity is None
    cwt = read_meta(cbor2.loads(_diag(vectors, "protected-header-map-cwt-claims.diag")))
    assert cwt.signer_name == "ACME Ltd."
    v = cwt.signature_validity
    assert v is not None and v.not_before is not None and v.not_after is not None
    assert (int(v.not_before.timestamp()), int(v.not_after.timestamp())) == (1757521286, 1757521287)


def test_ietf_cmw_corim_collection(vectors: Path) -> None:
    """The example has placeholders (TBD1, {{&SELF}}), and its first record writes ``ref-claims`` as
    a bare map where the CDDL says ``[+ measurement-map]``, and its hrefs as bare text where the
    CDDL says ``uri`` (tag 32): that is rejected, naming the path. With the placeholders filled in
    and those two fixed, both CoRIMs decode."""
    text = (vectors / "ietf-rats-corim/cmw-corim-collection.diag").read_text()
    text = re.sub(r"\bTBD1\b", "10570", text).replace("{{&SELF}}", "rfc9999")
    collection = cbor2.loads(bytes(diag2cbor(text)))
    label = "adee8cd4-4e47-461f-b341-2aba3ae4cbda"
    with pytest.raises(MalformedError, match=r"reference-triples\[0\]\.ref-claims: expected an array, got map"):
        decode_corim(collection[label][1])
    outer = cbor2.loads(collection[label][1])
    comid = cbor2.loads(outer.value[1][0].value)
    comid[4][0][0][1] = [comid[4][0][0][1]]
    hrefs = [cbor2.CBORTag(32, h) for h in outer.value[2][0][0]]
    body = {**outer.value, 1: [cbor2.CBORTag(506, cbor2.dumps(comid))], 2: [{0: hrefs}]}
    collection[label] = [collection[label][0], cbor2.dumps(cbor2.CBORTag(501, body))]
    records = {label: decode_corim(rec[1]) for label, rec in collection.items() if label != "__cmwc_t"}
    first = records["adee8cd4-4e47-461f-b341-2aba3ae4cbda"]
    assert first.profile == ProfileId("tag:example.com,2025/example-profile", "text")  # untagged in the example
    assert first.dependent_rims[0].href == (
        "urn:uuid:51a5f633-71c0-45f5-855e-43e8254c1806",
        "https://example.com/369a6688451240b9b74905b1dd5fae9f.corim")
    triples = first.comids[0].triples
    assert dict(triples.reference[0].measurements[0].mval.extensions) == {
        -404: bytes.fromhex("6094685f8bb9b67daaf35707bd2c391f536a1df2ce5152c3cc")}
    assert triples.coswid[0].tag_ids == (bytes.fromhex("369a6688451240b9b74905b1dd5fae9f"),)
    second = records["51a5f633-71c0-45f5-855e-43e8254c1806"]
    (swid,) = second.tags
    assert isinstance(swid, OpaqueTag) and swid.tag == 505


# --- round trips ---------------------------------------------------------------------------

def _all_cbor(vectors: Path) -> list[Path]:
    return sorted([*vectors.glob("veraison-services/psa/endorsements/*.cbor"),
                   *vectors.glob("veraison-services/legacy/*.cbor"), *vectors.glob("veraison-corim/*/*.cbor")])


def test_every_cbor_vector_round_trips_through_the_encoder(vectors: Path) -> None:
    files = _all_cbor(vectors)
    assert len(files) == 13
    for path in files:
        data = path.read_bytes()
        item = decode(data)
        corim = item.corim if isinstance(item, SignedCorim) else item
        assert decode_corim(encode_corim(corim)) == corim, path.name
        if "veraison-services" in str(path):  # Veraison's own encoder is deterministic too
            assert encode_corim(corim) == data, path.name


def test_vector_digests_match_sources(vectors: Path) -> None:
    """Guard against a changed vector: the sha256 prefixes SOURCES.md records."""
    expected = {
        "veraison-services/psa/endorsements/corim-psa-valid.cbor": "340c0044dc4b3d7e",
        "veraison-corim/corim/signed-good-corim.cbor": "99fcfe7d27304529",
        "veraison-services/legacy/psa-endorsements-legacy.cbor": "9ee135b54754eb8d",
    }
    for rel, prefix in expected.items():
        assert hashlib.sha256((vectors / rel).read_bytes()).hexdigest().startswith(prefix)

