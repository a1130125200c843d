"""PSA tokens: Veraison's and TF-M's real tokens first, then Veraison's claims files signed with the
published test key, then one broken rule at a time (each must be named in the error)."""

from __future__ import annotations

import contextlib
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from hypothesis import given, settings
from hypothesis import strategies as st

from federation import cbor, cose
from federation.errors import AlgorithmError, BadSignatureError, Error, MalformedError
from federation.evidence import sniff
from federation.keys import SigningKey, TrustAnchor, VerificationKey, jwk_to_private
from verifiers.local.evidence import psa
from verifiers.local.evidence.psa import PsaClaims, SwComponent, decode_psa, encode_psa, verify_psa

NOW = datetime(2026, 1, 1, tzinfo=UTC)
N32 = bytes.fromhex("414a7c174141b3d0e9a1d28af31520f0d42299feac4007ded89d68ae6cd92f19")


@pytest.fixture(scope="module")
def psa_dir(vectors: Path) -> Path:
    return vectors / "veraison-services" / "psa"


@pytest.fixture(scope="module")
def tfm_dir(vectors: Path) -> Path:
    return vectors / "veraison-psatoken" / "tf-m"


@pytest.fixture(scope="module")
def iak(psa_dir: Path) -> SigningKey:
    """The published Veraison test IAK (keys/ec.p256.jwk, private part included)."""
    return SigningKey.of(jwk_to_private(json.loads((psa_dir / "keys" / "ec.p256.jwk").read_text())))


@pytest.fixture(scope="module")
def alt_key(psa_dir: Path) -> SigningKey:
    return SigningKey.of(jwk_to_private(json.loads((psa_dir / "keys" / "ec.p256.alt.jwk").read_text())))


@pytest.fixture(scope="module")
def tfm_key(tfm_dir: Path) -> VerificationKey:
    pub = serialization.load_pem_public_key((tfm_dir / "public.pem").read_bytes())
    return VerificationKey.of(pub)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def good_token(psa_dir: Path) -> bytes:
    return (psa_dir / "evidence" / "psa.good.cose").read_bytes()


def claims_file(psa_dir: Path, name: str) -> bytes:
    return (psa_dir / "claims" / f"psa.{name}.json").read_bytes()


# -- real tokens -----------------------------------------------------------------------------------


def test_veraison_good_token_decodes_to_its_claims_file(good_token: bytes, psa_dir: Path) -> None:
    msg, claims = decode_psa(good_token)
    assert msg.algorithm.name == "ES256"
    assert claims == PsaClaims.from_json(claims_file(psa_dir, "good"))
    assert claims.profile == psa.PROFILE_P2
    assert claims.nonce == N32
    assert claims.implementation_id == b"acme-implementation-id-000000001"
    assert claims.instance_id[0] == 0x01 and len(claims.instance_id) == 33
    assert claims.lifecycle_state == "secured"
    assert [c.measurement_type for c in claims.software_components] == ["BL", "PRoT", "ARoT"]
    assert claims.to_json() == json.loads(claims_file(psa_dir, "good"))


def test_veraison_good_token_verifies_with_the_published_key(good_token: bytes, iak: SigningKey) -> None:
    public = VerificationKey.of(iak.key.public_key())
    assert verify_psa(good_token, public, NOW).nonce == N32
    assert verify_psa(good_token, TrustAnchor(keys=(public,)), NOW).client_id == 1


def test_veraison_good_token_does_not_verify_with_the_alt_key(good_token: bytes, alt_key: SigningKey) -> None:
    with pytest.raises(BadSignatureError, match="psa"):
        verify_psa(good_token, VerificationKey.of(alt_key.key.public_key()), NOW)


@pytest.mark.parametrize(("name", "profile", "cert_ref_key"), [
    ("psa-2_0_0_sign1.bin", psa.PROFILE_P2, 2398),
    ("psa-iot-1_sign1.bin", psa.PROFILE_P1, -75005),
])
def test_tfm_tokens_verify(tfm_dir: Path, tfm_key: VerificationKey, name: str, profile: str,
                           cert_ref_key: int) -> None:
    token = (tfm_dir / name).read_bytes()
    claims = verify_psa(token, tfm_key, NOW)
    assert claims.profile == profile
    assert claims.client_id == 3002 and claims.lifecycle_state == "secured"
    assert claims.nonce == bytes(64)
    assert claims.boot_seed == bytes(range(0xA0, 0xC0))
    assert claims.certification_reference == "0604565272829-10010"
    assert claims.verification_service == "www.trustedfirmware.org"
    assert [(c.measurement_type, c.version, c.measurement_description) for c in claims.software_components] == [
        ("SPE", "1.6.0", "SHA256"), ("NSPE", "0.0.0", "SHA256")]
    assert cert_ref_key in claims.to_cbor_claims()
    assert sniff(token) == psa.MEDIA_TYPE


def test_tfm_p2_claims_match_their_diagnostic_notation(tfm_dir: Path) -> None:
    import cbor_diag
    expected = cbor.loads(cbor_diag.diag2cbor((tfm_dir / "psa-2_0_0_claims.diag").read_text()))
    _, claims = decode_psa((tfm_dir / "psa-2_0_0_sign1.bin").read_bytes())
    assert claims.to_cbor_claims() == expected


def test_sniff(good_token: bytes) -> None:
    assert psa.sniff(good_token) == psa.MEDIA_TYPE
    assert sniff(good_token) == "application/psa-attestation-token"
    assert psa.sniff(b"\xd2\x84\x40\xa0\x40\x40") is None
    assert psa.sniff(b"not cbor") is None


# -- one-bit changes -------------------------------------------------------------------------------


def flips(data: bytes) -> list[bytes]:
    """Every single-bit variant of *data*."""
    return [data[:i] + bytes([data[i] ^ (1 << b)]) + data[i + 1:] for i in range(len(data)) for b in range(8)]


def test_every_one_bit_change_is_rejected(good_token: bytes, iak: SigningKey) -> None:
    public = VerificationKey.of(iak.key.public_key())
    for variant in flips(good_token):
        with pytest.raises(Error):
            verify_psa(variant, public, NOW)


# -- Veraison's claims files, signed with the published key ----------------------------------------


def test_badswcomp_and_badinstance_sign_and_decode(psa_dir: Path, iak: SigningKey) -> None:
    good = PsaClaims.from_json(claims_file(psa_dir, "good"))
    for name in ("badswcomp", "badinstance"):
        claims = PsaClaims.from_json(claims_file(psa_dir, name))
        token = encode_psa(claims, iak)
        assert verify_psa(token, iak.public, NOW) == claims
        assert claims != good
    bad_sw = PsaClaims.from_json(claims_file(psa_dir, "badswcomp"))
    assert bad_sw.software_components[0].measurement_value != good.software_components[0].measurement_value
    assert bad_sw.software_components[1:] == good.software_components[1:]


def test_badcrypto_is_the_good_claims_under_the_wrong_key(psa_dir: Path, iak: SigningKey,
                                                          alt_key: SigningKey) -> None:
    token = encode_psa(PsaClaims.from_json(claims_file(psa_dir, "good")), alt_key)
    assert decode_psa(token)[1].nonce == N32  # well-formed ...
    with pytest.raises(BadSignatureError):  # ... but not signed by the device's key
        verify_psa(token, VerificationKey.of(iak.key.public_key()), NOW)


@pytest.mark.parametrize(("name", "reason"), [
    ("multinonce", r"psa-nonce: got 2 nonces, want exactly 1"),
    ("missingclaims", r"missing mandatory claim\(s\): psa-client-id, psa-security-lifecycle, "
                      r"psa-software-components, psa-nonce"),
])
def test_invalid_claims_files_are_rejected_naming_the_claim(psa_dir: Path, iak: SigningKey, name: str,
                                                             reason: str) -> None:
    with pytest.raises(MalformedError, match=reason):
        PsaClaims.from_json(claims_file(psa_dir, name))
    # signed anyway (as an attacker or a broken attester could), the token is refused on decode
    token = cose.sign1(cbor.dumps(psa.json_to_cbor_claims(claims_file(psa_dir, name))), iak)
    with pytest.raises(MalformedError, match=reason):
        decode_psa(token)
    with pytest.raises(MalformedError, match=reason):
        verify_psa(token, iak.public, NOW)


def test_round_trip_through_encode(psa_dir: Path, tfm_dir: Path, iak: SigningKey) -> None:
    for claims in (PsaClaims.from_json(claims_file(psa_dir, "good")),
                   decode_psa((tfm_dir / "psa-iot-1_sign1.bin").read_bytes())[1]):
        token = encode_psa(claims, iak)
        assert token[:1] == b"\xd2"
        assert verify_psa(token, iak.public, NOW) == claims


# -- one rule at a time ----------------------------------------------------------------------------


def good_map(psa_dir: Path) -> dict[int, Any]:
    return PsaClaims.from_json(claims_file(psa_dir, "good")).to_cbor_claims()


SW = {1: "BL", 2: bytes(32), 4: "1.0", 5: bytes(32)}  # a software component map


def without(m: dict[int, Any], *keys: int) -> dict[int, Any]:
    return {k: v for k, v in m.items() if k not in keys}


P2_CASES: list[tuple[str, dict[int, Any], str]] = [
    ("nonce-short", {10: bytes(31)}, r"psa-nonce: length 31 is invalid \(must be 32 or 48 or 64 bytes\)"),
    ("nonce-empty-array", {10: []}, r"psa-nonce: got 0 nonces"),
    ("nonce-text", {10: "abc"}, r"psa-nonce: must be a byte string"),
    ("nonce-48-in-array", {10: [bytes(48)]}, ""),
    ("instance-id-type", {256: b"\x02" + bytes(32)}, r"psa-instance-id: UEID type 0x02 is invalid"),
    ("instance-id-length", {256: b"\x01" + bytes(31)}, r"psa-instance-id: length 32 is invalid"),
    ("impl-id-length", {2396: bytes(31)}, r"psa-implementation-id: length 31 is invalid \(must be 32 bytes\)"),
    ("lifecycle-range", {2395: 0x7000}, r"psa-security-lifecycle: value 0x7000 is in no defined"),
    ("lifecycle-uint16", {2395: 0x10000}, r"psa-security-lifecycle: value 65536 out of range"),
    ("lifecycle-debug-ok", {2395: 0x4001}, ""),
    ("client-id-int32", {2394: 1 << 31}, r"psa-client-id: value 2147483648 out of range"),
    ("client-id-negative-ok", {2394: -1}, ""),
    ("client-id-bool", {2394: True}, r"psa-client-id: must be an integer"),
    ("boot-seed-short", {2397: bytes(7)}, r"psa-boot-seed: length 7 is invalid \(must be between 8 and 32"),
    ("boot-seed-long", {2397: bytes(33)}, r"psa-boot-seed: length 33"),
    ("cert-ref-ean13-only", {2398: "1234567890123"}, r"psa-certification-reference: .* EAN-13\+5 format"),
    ("cert-ref-ok", {2398: "1234567890123-12345"}, ""),
    ("cert-ref-unicode-digits", {2398: "١٢٣٤٥٦٧٨٩٠١٢٣-12345"}, r"psa-certification-reference"),
    ("vsi-empty", {2400: ""}, r"psa-verification-service-indicator: must not be empty"),
    ("sw-empty", {2399: []}, r"psa-software-components: must have at least one entry"),
    ("sw-not-array", {2399: {}}, r"psa-software-components: must be an array"),
    ("sw-no-signer", {2399: [without(SW, 5)]}, r"psa-software-components\[0\]: missing mandatory claim\(s\): "
                                               r"signer-id"),
    ("sw-value-size", {2399: [SW | {2: bytes(20)}]}, r"psa-software-components\[0\]: measurement-value: "
                                                     r"length 20"),
    ("sw-version-type", {2399: [SW | {4: 1}]}, r"psa-software-components\[0\]: version: must be a text"),
    ("sw-minimal-ok", {2399: [without(SW, 1, 4)]}, ""),
    ("sw-second-entry", {2399: [SW, SW | {5: "x"}]}, r"psa-software-components\[1\]: signer-id"),
    ("profile-unknown", {265: "http://example.com/other"}, r"eat-profile: .* is not a PSA profile"),
    ("profile-p1-name-in-eat-profile", {265: psa.PROFILE_P1}, r"eat-profile: .* is not a PSA profile"),
    ("profile-rfc9783-ok", {265: psa.PROFILE_RFC9783}, ""),
]


@pytest.mark.parametrize(("case", "change", "reason"), P2_CASES, ids=[c[0] for c in P2_CASES])
def test_p2_rules(psa_dir: Path, iak: SigningKey, case: str, change: dict[int, Any], reason: str) -> None:
    claims = good_map(psa_dir) | change
    token = cose.sign1(cbor.dumps(claims), iak)
    if not reason:
        assert verify_psa(token, iak.public, NOW).profile in (psa.PROFILE_P2, psa.PROFILE_RFC9783)
        return
    with pytest.raises(MalformedError, match=reason):
        decode_psa(token)


@pytest.mark.parametrize("missing", [265, 2394, 2395, 2396, 2399, 10, 256])
def test_p2_mandatory_claims(psa_dir: Path, iak: SigningKey, missing: int) -> None:
    claims = good_map(psa_dir)
    name = next(c.name for c in psa.P2_CLAIMS if c.key == missing)
    del claims[missing]
    with pytest.raises(MalformedError, match=f"missing mandatory claim\\(s\\): {name}$"):
        decode_psa(cose.sign1(cbor.dumps(claims), iak))


@pytest.mark.parametrize("optional", [2397, 2398, 2400])
def test_p2_optional_claims(psa_dir: Path, iak: SigningKey, optional: int) -> None:
    claims = good_map(psa_dir) | {2398: "1234567890123-12345"}
    del claims[optional]
    assert optional not in verify_psa(cose.sign1(cbor.dumps(claims), iak), iak.public, NOW).to_cbor_claims()


def p1_map(tfm_dir: Path) -> dict[int, Any]:
    return decode_psa((tfm_dir / "psa-iot-1_sign1.bin").read_bytes())[1].to_cbor_claims()


P1_CASES: list[tuple[str, dict[int, Any], tuple[int, ...], str]] = [
    ("no-profile-claim-is-p1", {}, (-75000,), ""),
    ("other-profile", {-75000: "PSA_IOT_PROFILE_2"}, (), r"psa-profile: .* is not PSA_IOT_PROFILE_1"),
    ("boot-seed-mandatory", {}, (-75004,), r"missing mandatory claim\(s\): psa-boot-seed"),
    ("boot-seed-32", {-75004: bytes(16)}, (), r"psa-boot-seed: length 16 is invalid \(must be 32 bytes\)"),
    ("hwver-ean13-ok", {-75005: "1234567890123"}, (), ""),
    ("hwver-bad", {-75005: "12345"}, (), r"psa-hwver: .* EAN-13 or EAN-13\+5"),
    ("nonce-plain-bstr-only", {-75008: [bytes(32)]}, (), r"psa-nonce: must be a byte string"),
    ("no-sw-measurements-ok", {-75007: 1}, (-75006,), ""),
    ("sw-and-no-sw", {-75007: 1}, (), r"exactly one of psa-software-components and psa-no-software"),
    ("neither-sw-nor-no-sw", {}, (-75006,), r"exactly one of psa-software-components and psa-no-software"),
]


@pytest.mark.parametrize(("case", "change", "drop", "reason"), P1_CASES, ids=[c[0] for c in P1_CASES])
def test_p1_rules(tfm_dir: Path, iak: SigningKey, case: str, change: dict[int, Any], drop: tuple[int, ...],
                  reason: str) -> None:
    claims = p1_map(tfm_dir) | change
    for key in drop:
        del claims[key]
    token = cose.sign1(cbor.dumps(claims), iak)
    if reason:
        with pytest.raises(MalformedError, match=reason):
            decode_psa(token)
    else:
        assert verify_psa(token, iak.public, NOW).profile == psa.PROFILE_P1


def test_p1_without_software_measurements_round_trips(tfm_dir: Path, iak: SigningKey) -> None:
    claims = p1_map(tfm_dir) | {-75007: 1}
    del claims[-75006]
    decoded = decode_psa(cose.sign1(cbor.dumps(claims), iak))[1]
    assert decoded.no_software_measurements and decoded.software_components == ()
    assert decoded.to_cbor_claims()[-75007] == 1
    assert verify_psa(encode_psa(decoded, iak), iak.public, NOW) == decoded


# -- envelope --------------------------------------------------------------------------------------


def test_envelope_rules(good_token: bytes, iak: SigningKey) -> None:
    msg = cose.decode_sign1(good_token)
    untagged = cbor.dumps([msg.protected_raw, {}, msg.payload, msg.signature])
    with pytest.raises(MalformedError, match="psa: cose: COSE_Sign1 tag"):
        decode_psa(untagged)
    mac0 = cbor.dumps(cbor.CBORTag(17, [msg.protected_raw, {}, msg.payload, msg.signature]))
    with pytest.raises(MalformedError, match="tag 17 is not COSE_Sign1"):
        decode_psa(mac0)
    detached = cbor.dumps(cbor.CBORTag(18, [msg.protected_raw, {}, None, msg.signature]))
    with pytest.raises(MalformedError, match="detached"):
        decode_psa(detached)
    with pytest.raises(MalformedError, match="payload is not a claims map"):
        decode_psa(cose.sign1(cbor.dumps([1, 2]), iak))
    with pytest.raises(MalformedError, match="trailing"):
        decode_psa(good_token + b"\x00")
    with pytest.raises(MalformedError, match="exceeds"):
        decode_psa(b"\xd2" + bytes(psa.MAX_TOKEN))
    hs256 = cbor.dumps(cbor.CBORTag(18, [cbor.dumps({1: 5}), {}, msg.payload, msg.signature]))
    with pytest.raises(AlgorithmError):
        decode_psa(hs256)


def test_claims_objects_are_valid_once_built(psa_dir: Path) -> None:
    good = PsaClaims.from_json(claims_file(psa_dir, "good"))
    with pytest.raises(MalformedError, match="psa-nonce"):
        PsaClaims(good.profile, good.client_id, good.security_lifecycle, good.implementation_id,
                  good.instance_id, b"short", good.software_components)
    with pytest.raises(MalformedError, match="signer-id"):
        PsaClaims(good.profile, good.client_id, good.security_lifecycle, good.implementation_id,
                  good.instance_id, good.nonce, (SwComponent(bytes(32), b"x"),))
    with pytest.raises(MalformedError, match="is not a PSA profile"):
        PsaClaims("nope", good.client_id, good.security_lifecycle, good.implementation_id,
                  good.instance_id, good.nonce, good.software_components)


def test_json_claims_with_unknown_members_or_bad_base64_are_refused(psa_dir: Path) -> None:
    doc = json.loads(claims_file(psa_dir, "good"))
    with pytest.raises(MalformedError, match=r"unknown member.*psa-noonce"):
        PsaClaims.from_json(doc | {"psa-noonce": doc["psa-nonce"]})
    with pytest.raises(MalformedError, match="psa-nonce: is not valid base64"):
        PsaClaims.from_json(doc | {"psa-nonce": "%%%"})
    with pytest.raises(MalformedError, match="not a PSA profile"):
        PsaClaims.from_json(doc | {"eat-profile": "http://example.com"})


# -- hostile bytes ---------------------------------------------------------------------------------


@settings(max_examples=150, deadline=None)
@given(cut=st.integers(0, 546), junk=st.binary(max_size=16))
def test_hostile_input_only_raises_typed_errors(good_token: bytes, cut: int, junk: bytes) -> None:
    data = good_token[:cut] + junk  # cut = 0: random bytes; otherwise a truncated, extended token
    with contextlib.suppress(Error):
        decode_psa(data)
    assert psa.sniff(data) in (None, psa.MEDIA_TYPE)


# -- the package -----------------------------------------------------------------------------------


def test_package_surface_and_sniffer_order() -> None:
    import verifiers.local.evidence as evidence

    assert sorted(evidence.__all__) == sorted([
        "SNIFFERS", "CcaPlatformClaims", "CcaRealmClaims", "CcaToken", "EatClaims", "EatToken",
        "MeasuredComponent", "PsaClaims", "SwComponent", "Version", "cca", "cmw", "decode_cca", "decode_eat",
        "decode_psa", "eat", "encode_cca", "encode_eat", "encode_psa", "psa", "sevsnp", "tdx", "verify_cca",
        "verify_eat", "verify_psa",
    ])
    assert all(hasattr(evidence, name) for name in evidence.__all__)
    # most specific first: a PSA token is also an EAT, a CCA collection and the SEV-SNP evidence
    # collection are also CMW-shaped
    assert (evidence.psa.sniff, evidence.cca.sniff, evidence.eat.sniff, evidence.tdx.sniff, evidence.sevsnp.sniff,
            evidence.cmw.sniff) == evidence.SNIFFERS
