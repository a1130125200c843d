"""The reference-value store: loading files and folders, lookups, provenance, validity at ``now``."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cbor_diag import diag2cbor
from cryptography.hazmat.primitives.asymmetric import ec

from federation.errors import ConfigError, MalformedError, StaleError, UntrustedKeyError, UsageError
from federation.keys import SigningKey, TrustAnchor, load_trust_anchor
from verifiers.local.corim import (
    ClassMap,
    Comid,
    Corim,
    CorimMeta,
    Environment,
    ProfileError,
    ReferenceValueStore,
    Tagged,
    Triples,
    Validity,
    accept_unsigned,
    decode_comid,
    load_paths,
    public_key,
    sign_corim,
    verify_signed_corim,
)
from verifiers.local.corim.model import Digest, KeyTriple, Locator, ProfileId

NOW = datetime(2024, 6, 1, tzinfo=UTC)
IMPL = Tagged("bytes", b"acme-implementation-id-000000001", 560)
INST_1 = Tagged("ueid", bytes.fromhex("01ceebae7b8927a3227e5303cf5e0f1f7b34bb542ad7250ac03fbcde36ec2f1508"), 550)
INST_2 = Tagged("ueid", bytes.fromhex("014ca3e4f50bf248c39787020d68ffd05c88767751bf2645ca923f57a98becd296"), 550)
PSA_ID = "tag:arm.com,2025:psa#1.0.0"


@pytest.fixture(scope="module")
def iak(vectors: Path) -> TrustAnchor:
    return load_trust_anchor(vectors / "veraison-services/psa/keys/ec.p256.jwk")


@pytest.fixture(scope="module")
def psa_store(vectors: Path, iak: TrustAnchor) -> ReferenceValueStore:
    return load_paths([vectors / "veraison-services/psa/endorsements/corim-psa-valid.cbor"], [iak], NOW,
                      trust_unsigned=True)


def test_psa_attest_key_lookup(psa_store: ReferenceValueStore, iak: TrustAnchor) -> None:
    (hit,) = psa_store.attest_keys(Environment(ClassMap(IMPL), INST_1), NOW)
    key = public_key(hit.triple.keys[0])
    assert isinstance(key, ec.EllipticCurvePublicKey)
    assert key.public_numbers() == iak.keys[0].key.public_numbers()  # type: ignore[union-attr]
    p = hit.provenance
    assert (p.corim_id, p.comid_id, p.comid_version, p.profile) == (
        "00000000-0000-0000-065a-0000000000001", "366d0a0a-5988-45ed-8488-2f2a544f6242", 0, PSA_ID)
    assert p.signer_name is None and p.key_thumbprint is None  # trusted local input
    assert p.source is not None and p.source.endswith("corim-psa-valid.cbor")
    # The second device's triple also names vendor and model: found by identity all the same.
    (second,) = psa_store.attest_keys(Environment(ClassMap(IMPL), INST_2), NOW)
    assert second.triple.environment.class_ == ClassMap(IMPL, "ACME", "RoadRunner")
    assert psa_store.attest_keys(Environment(ClassMap(IMPL), Tagged("ueid", b"\x01" * 33, 550)), NOW) == []
    assert len(psa_store.attest_keys(Environment(ClassMap(IMPL)), NOW)) == 2
    assert len(psa_store.attest_keys(Environment(instance=INST_1), NOW)) == 1


def test_psa_reference_value_lookup(psa_store: ReferenceValueStore) -> None:
    (hit,) = psa_store.reference_values(Environment(ClassMap(IMPL), INST_1), NOW)
    assert [m.mval.name for m in hit.triple.measurements] == ["BL", "PRoT", "ARoT"]
    assert psa_store.reference_values(Environment(ClassMap(Tagged("bytes", b"\x00" * 32, 560))), NOW) == []
    assert psa_store.reference_values(Environment(ClassMap(IMPL)), NOW, profiles={"other"}) == []
    assert len(psa_store) == 3 and len(psa_store.sources) == 2


def test_reference_lookup_modes(vectors: Path, iak: TrustAnchor) -> None:
    """psa-valid.cbor's reference triple names vendor and model too; PSA evidence carries only the impl id."""
    store = load_paths([vectors / "veraison-corim/psa-profile/psa-valid.cbor"], [iak], NOW, trust_unsigned=True)
    impl = Tagged("bytes", b"01234567890123456789012345678901", 560)
    assert store.reference_values(Environment(ClassMap(impl)), NOW) == []  # the draft: vendor is a condition
    assert len(store.reference_values(Environment(ClassMap(impl)), NOW, by_identity=True)) == 1  # Veraison's way
    assert len(store.reference_values(Environment(ClassMap(impl, "ACME", "RoadRunner")), NOW)) == 1


def test_empty_query_is_a_usage_error(psa_store: ReferenceValueStore) -> None:
    with pytest.raises(UsageError):
        psa_store.attest_keys(Environment(), NOW)


def test_legacy_and_current_encodings_answer_alike(vectors: Path, iak: TrustAnchor,
                                                   psa_store: ReferenceValueStore) -> None:
    legacy = load_paths([vectors / "veraison-services/legacy"], [iak], NOW, trust_unsigned=True)
    (hit,) = legacy.attest_keys(Environment(ClassMap(IMPL), INST_1), NOW)
    assert hit.provenance.profile == "http://arm.com/psa/iot/1"
    assert hit.triple.keys == psa_store.attest_keys(Environment(ClassMap(IMPL), INST_1), NOW)[0].triple.keys
    (refs,) = legacy.reference_values(Environment(ClassMap(IMPL)), NOW, by_identity=True)  # names vendor, model
    current = psa_store.reference_values(Environment(ClassMap(IMPL)), NOW)[0]
    assert [m.mval.digests for m in refs.triple.measurements] == [m.mval.digests for m in current.triple.measurements]


def test_folder_with_invalid_corims(vectors: Path, iak: TrustAnchor) -> None:
    folder = vectors / "veraison-services/psa/endorsements"
    with pytest.raises(ProfileError, match=r"corim-psa-bad-class\.cbor: profile tag:arm.com,2025:psa#1\.0\.0"):
        load_paths([folder], [iak], NOW, trust_unsigned=True)
    store = load_paths([folder], [iak], NOW, trust_unsigned=True, skip_invalid=True)
    assert sorted(Path(r.source).name for r in store.rejected) == [
        "corim-psa-bad-class.cbor", "corim-psa-bad-instance.cbor", "corim-psa-bad-refval-mkey.cbor",
        "corim-psa-bad-ta-cert.cbor", "corim-psa-bad-ta-no-instance.cbor"]
    assert all(r.error.reason == "malformed" and isinstance(r.error, ProfileError) for r in store.rejected)
    assert len(store.attest_keys(Environment(ClassMap(IMPL), INST_1), NOW)) == 1  # the valid one is in


def test_unsigned_files_need_the_operator_mark(vectors: Path, iak: TrustAnchor) -> None:
    with pytest.raises(UntrustedKeyError, match=r"corim-psa-valid\.cbor: unsigned corim"):
        load_paths([vectors / "veraison-services/psa/endorsements/corim-psa-valid.cbor"], [iak], NOW)


def test_folder_scan_picks_corim_suffixes_only(vectors: Path, iak: TrustAnchor) -> None:
    """veraison-corim holds SOURCES.md and src/*.yaml next to the CBOR files."""
    store = load_paths([vectors / "veraison-corim"], [iak], NOW, trust_unsigned=True, skip_invalid=True)
    assert {Path(r.source).name for r in store.rejected} == {"psa-invalid-attest-key.cbor", "psa-invalid-impl-id.cbor"}
    assert {Path(p.source or "").name for p in store.sources} == {
        "signed-good-corim.cbor", "unsigned-good-corim.cbor", "no-profile.cbor", "psa-valid.cbor"}


def test_signed_corim_provenance_and_expiry(vectors: Path, iak: TrustAnchor) -> None:
    store = load_paths([vectors / "veraison-corim/corim/signed-good-corim.cbor"], [iak], NOW)
    env = Environment(ClassMap(IMPL, "ACME", "RoadRunner"))
    (hit,) = store.reference_values(env, NOW)
    p = hit.provenance
    assert p.signer_name == "ACME Ltd signing key" and p.key_thumbprint == iak.keys[0].thumbprint
    assert p.corim_sha256.startswith("99fcfe7d27304529")
    later = datetime(2026, 1, 1, tzinfo=UTC)
    assert store.reference_values(env, later) == []  # an expired CoRIM contributes nothing
    with pytest.raises(StaleError, match=r"signed-good-corim\.cbor: .*expired"):
        load_paths([vectors / "veraison-corim/corim/signed-good-corim.cbor"], [iak], later)


def test_dependent_rims_and_versions_travel_into_provenance() -> None:
    key = SigningKey.generate("ES256")
    slsa = Locator(("https://builds.example/provenance/fw-1.2.3.intoto.jsonl",), (Digest(1, b"\x07" * 32),))
    triples = Triples(attest_key=(KeyTriple(Environment(ClassMap(IMPL), INST_1),
                                            (Tagged("pkix-base64-key", "PEM", 554),)),))
    corim = Corim("fw-1.2.3", (Comid("comid-a", triples, tag_version=4),), dependent_rims=(slsa,),
                  rim_validity=Validity(None, NOW + timedelta(days=30)))
    meta = CorimMeta("Firmware Vendor", "https://vendor.example",
                     Validity(NOW - timedelta(days=1), NOW + timedelta(days=365)))
    verified = verify_signed_corim(sign_corim(corim, key, meta), [TrustAnchor((key.public,))], NOW)
    store = ReferenceValueStore()
    assert store.add(verified, source="config:corims[0]") == 1
    (hit,) = store.attest_keys(Environment(ClassMap(IMPL), INST_1), NOW)
    p = hit.provenance
    assert p.dependent_rims == (slsa,) and (p.comid_id, p.comid_version) == ("comid-a", 4)
    assert (p.signer_name, p.signer_uri, p.key_thumbprint, p.source) == (
        "Firmware Vendor", "https://vendor.example", key.public.thumbprint, "config:corims[0]")
    assert p.validity == Validity(NOW - timedelta(days=1), NOW + timedelta(days=30))
    assert store.attest_keys(Environment(ClassMap(IMPL), INST_1), NOW + timedelta(days=31)) == []
    assert store.attest_keys(Environment(ClassMap(IMPL), INST_1), NOW - timedelta(days=2)) == []


def test_profile_violation_adds_nothing(vectors: Path) -> None:
    store = ReferenceValueStore()
    bad = accept_unsigned((vectors / "veraison-corim/psa-profile/psa-invalid-attest-key.cbor").read_bytes(), NOW)
    with pytest.raises(ProfileError):
        store.add(bad)
    assert len(store) == 0 and store.sources == []


def test_conditional_endorsements_are_served(vectors: Path) -> None:
    comid = decode_comid(bytes(diag2cbor((vectors / "ietf-rats-corim/comid-psa-endval.diag").read_text())))
    store = ReferenceValueStore()
    store.add(accept_unsigned(Corim("certifier", (comid,), profile=ProfileId(PSA_ID)), NOW))
    (hit,) = store.conditional_endorsements(NOW)
    assert hit.provenance.comid_id == "certifier.example/gizmo-v1"
    assert store.conditional_series(NOW) == []


def test_missing_path_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such CoRIM file or folder"):
        load_paths([tmp_path / "absent"], [], NOW)
    (tmp_path / "junk.cbor").write_bytes(b"\x00")
    with pytest.raises(MalformedError, match=r"junk\.cbor: corim: neither"):
        load_paths([tmp_path], [], NOW)
