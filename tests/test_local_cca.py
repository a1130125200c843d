"""The local appraiser on Arm CCA tokens (scheme ARM_CCA: submodules CCA_SSD_PLATFORM and CCA_REALM).

No CCA token or CCA CoRIM is among ../shared/vectors, so every token here is built with generated
keys following the published claim layouts (RMM spec, draft-ffm-rats-cca-token, Veraison
ccatoken), and every CoRIM with our encoder under the CCA profiles, signed by a generated
endorser key and loaded through ``load_paths`` with that key as the anchor. Expected verdicts
follow Veraison's scheme/arm-cca (veraison/services ``scheme/arm-cca/scheme.go``).
"""

from __future__ import annotations

import hashlib
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from federation import Federation, Member, QuorumPolicy, cbor, cose, verify_result
from federation.ear.model import Appraisal, Ear
from federation.errors import Error, MalformedError
from federation.evidence import Evidence, sniff
from federation.keys import SigningKey, TrustAnchor
from verifiers.local.appraiser import LocalAppraiser
from verifiers.local.backend import LocalBackend
from verifiers.local.corim.encode import encode_corim, sign_corim
from verifiers.local.corim.model import (
    ClassMap,
    Comid,
    Corim,
    CorimMeta,
    Digest,
    Environment,
    KeyTriple,
    Locator,
    Measurement,
    MeasurementValues,
    ProfileId,
    RawValue,
    ReferenceTriple,
    Tagged,
    Triples,
    Validity,
    Version,
)
from verifiers.local.corim.profiles import CCA_PLATFORM, CCA_REALM, PSA
from verifiers.local.corim.store import ReferenceValueStore, load_paths
from verifiers.local.evidence import cca
from verifiers.local.evidence.cca import CcaPlatformClaims, CcaRealmClaims, binder, encode_cca, rak_claim
from verifiers.local.evidence.psa import SwComponent
from verifiers.local.scheme import BadEvidence, Context
from verifiers.local.schemes import BUILTIN
from verifiers.local.schemes.cca import PLATFORM, REALM, SCHEME

NOW = datetime(2026, 6, 1, tzinfo=UTC)
VALID = Validity(NOW - timedelta(days=30), NOW + timedelta(days=30))
LATER = NOW + timedelta(days=31)  # after every CoRIM's validity
NONCE = hashlib.sha256(b"session").digest()  # 32 bytes: the realm challenge is it zero-padded to 64
IMPL = bytes(range(32))
INST = b"\x01" + bytes(range(100, 132))
CONFIG = b"\x01\x02\x03\x04"
SIGNER = hashlib.sha256(b"firmware signer").digest()
COMPONENTS = (("BL", "3.4.2", b"bl"), ("RMM", "1.1.0", b"rmm"), ("TF-A", "2.10.0", b"tfa"))
RIM = hashlib.sha256(b"realm image").digest()
REMS = tuple(hashlib.sha256(bytes([i])).digest() for i in range(4))
RPV = b"personalization".ljust(64, b"\x00")
ENCODINGS: tuple[cca.Encoding, ...] = ("eat-collection", "cmw-collection")
MT = cca.MEDIA_TYPE
LINK = "https://endorser.example/slsa/rmm-1.1.0.intoto.jsonl"
ENDORSER = "CCA Test Endorser"
ARM = {"ARM_CCA"}


# -- keys ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def iak() -> SigningKey:
    return SigningKey.generate("ES256")


@pytest.fixture(scope="module")
def rak() -> SigningKey:
    return SigningKey.generate("ES384")


@pytest.fixture(scope="module")
def endorser() -> SigningKey:
    return SigningKey.generate("ES256")


def pem(key: SigningKey) -> str:
    return key.public.key.public_bytes(serialization.Encoding.PEM,
                                       serialization.PublicFormat.SubjectPublicKeyInfo).decode()


# -- tokens ----------------------------------------------------------------------------------------


def realm_claims(rak: SigningKey, **changes: Any) -> CcaRealmClaims:
    pub = rak.key.public_key()
    assert isinstance(pub, ec.EllipticCurvePublicKey)
    cose_key = changes.pop("cose_key", True)
    base: dict[str, Any] = {
        "challenge": NONCE.ljust(64, b"\x00"), "personalization_value": RPV, "initial_measurement": RIM,
        "extensible_measurements": REMS, "hash_algorithm": "sha-256",
        "public_key": rak_claim(pub, cose_key=cose_key), "public_key_hash_algorithm": "sha-256",
        "profile": cca.REALM_PROFILE if cose_key else None,
    }
    return CcaRealmClaims(**(base | changes))


def platform_claims(realm: CcaRealmClaims, **changes: Any) -> CcaPlatformClaims:
    base: dict[str, Any] = {
        "profile": cca.PLATFORM_PROFILE, "challenge": binder(realm), "implementation_id": IMPL,
        "instance_id": INST, "config": CONFIG, "security_lifecycle": 0x3000,
        "software_components": tuple(SwComponent(hashlib.sha256(seed).digest(), SIGNER, name, version)
                                     for name, version, seed in COMPONENTS),
        "hash_algorithm": "sha-256", "verification_service": "https://veraison.example/v1/challenge-response",
    }
    return CcaPlatformClaims(**(base | changes))


def token(iak: SigningKey, rak: SigningKey, *, encoding: cca.Encoding = "cmw-collection",
          realm: dict[str, Any] | None = None, platform: dict[str, Any] | None = None,
          realm_signer: SigningKey | None = None) -> bytes:
    r = realm_claims(rak, **(realm or {}))
    p = platform_claims(r, **(platform or {}))
    return encode_cca(p, r, iak, realm_signer or rak, encoding=encoding)


# -- CoRIMs ----------------------------------------------------------------------------------------


def sw_reference(name: str, version: str, seed: bytes) -> Measurement:
    return Measurement(MeasurementValues(version=Version(version), digests=(Digest(1, hashlib.sha256(seed).digest()),),
                                         name=name, cryptokeys=(Tagged("bytes", SIGNER, 560),)),
                       Tagged("string", "cca.software-component"))


def config_reference(value: bytes = CONFIG) -> Measurement:
    return Measurement(MeasurementValues(raw=RawValue(value, b"\xff" * len(value))),
                       Tagged("string", "cca.platform-config"))


def platform_corim(iak: SigningKey, *, components: tuple[tuple[str, str, bytes], ...] = COMPONENTS,
                   config: bytes = CONFIG, instance: bytes = INST, profile: str = CCA_PLATFORM.id) -> Corim:
    cls = ClassMap(Tagged("bytes", IMPL, 560), vendor="ACME")
    refs = ReferenceTriple(Environment(cls), (*(sw_reference(*c) for c in components), config_reference(config)))
    key = KeyTriple(Environment(cls, instance=Tagged("ueid", instance, 550)),
                    (Tagged("pkix-base64-key", pem(iak), 554),))
    if profile == PSA.id:  # the PSA profile's reference values are PSA's; only the key triple matters there
        return Corim("psa-platform", (Comid("psa-key", Triples(attest_key=(key,))),), ProfileId(profile))
    return Corim("cca-platform", (Comid("cca-platform-refs", Triples(reference=(refs,))),
                                  Comid("cca-platform-key", Triples(attest_key=(key,)), tag_version=3)),
                 ProfileId(profile), dependent_rims=(Locator((LINK,)),))


def realm_measurement(mkey: str, digest: bytes) -> Measurement:
    return Measurement(MeasurementValues(digests=(Digest(1, digest),)), Tagged("string", mkey))


def realm_triple(*, rim: bytes = RIM, class_rim: bytes | None = None, rpv: bytes | None = RPV,
                 rems: tuple[bytes | None, ...] = REMS) -> ReferenceTriple:
    ms = [realm_measurement("cca.rim", rim)]
    ms += [realm_measurement(f"cca.rem{i}", r) for i, r in enumerate(rems) if r is not None]
    if rpv is not None:
        ms.append(Measurement(MeasurementValues(raw=RawValue(rpv)), Tagged("string", "cca.rpv")))
    cls = ClassMap(Tagged("bytes", class_rim or rim, 560), vendor="Workload Client Ltd")
    return ReferenceTriple(Environment(cls), tuple(ms))


def realm_corim(*triples: ReferenceTriple) -> Corim:
    return Corim("cca-realm", (Comid("cca-realm-refs", Triples(reference=triples or (realm_triple(),))),),
                 ProfileId(CCA_REALM.id))


def store_of(tmp: Path, endorser: SigningKey, *corims: Corim | tuple[Corim, Validity]) -> ReferenceValueStore:
    """Each CoRIM signed by *endorser* (valid for VALID unless paired with a validity), written to
    a file and loaded at NOW with the endorser as the only anchor."""
    paths = []
    for i, item in enumerate(corims):
        corim, validity = item if isinstance(item, tuple) else (item, VALID)
        path = tmp / f"corim-{i}.cbor"
        path.write_bytes(sign_corim(corim, endorser, CorimMeta(ENDORSER, "https://endorser.example", validity)))
        paths.append(path)
    return load_paths(paths, [TrustAnchor((endorser.public,))], NOW)


@pytest.fixture(scope="module")
def good_store(tmp_path_factory: pytest.TempPathFactory, iak: SigningKey, endorser: SigningKey
               ) -> ReferenceValueStore:
    return store_of(tmp_path_factory.mktemp("cca"), endorser, platform_corim(iak), realm_corim())


def appraiser(store: ReferenceValueStore) -> LocalAppraiser:
    return LocalAppraiser(list(BUILTIN.values()), store)


def appraise(store: ReferenceValueStore, data: bytes, nonce: bytes = NONCE, now: datetime = NOW) -> Ear:
    return appraiser(store).appraise(Evidence(MT, data), nonce, now)


def vector(a: Appraisal) -> dict[str, int]:
    assert a.trust_vector is not None
    return a.trust_vector.as_dict()


def problem(ear: Ear) -> str:
    assert set(ear.submods) == ARM
    a = ear.submods["ARM_CCA"]
    assert a.status.label == "contraindicated" and set(vector(a).values()) == {99}
    assert a.policy_ids == ("policy:ARM_CCA",)
    text: str = a.extensions["ear_veraison_policy_claims"]["problem"]
    return text


PLATFORM_GOOD = {"instance-identity": 2, "configuration": 2, "executables": 2, "file-system": 0, "hardware": 2,
                 "runtime-opaque": 2, "storage-opaque": 2, "sourced-data": 0}
REALM_GOOD = {"instance-identity": 2, "configuration": 0, "executables": 2, "file-system": 0, "hardware": 0,
              "runtime-opaque": 0, "storage-opaque": 0, "sourced-data": 0}


# -- good tokens -----------------------------------------------------------------------------------


@pytest.mark.parametrize("encoding", ENCODINGS)
@pytest.mark.parametrize("cose_key", [True, False])
def test_good_token_is_affirming_in_both_submodules(good_store: ReferenceValueStore, iak: SigningKey,
                                                    rak: SigningKey, encoding: cca.Encoding, cose_key: bool) -> None:
    data = token(iak, rak, encoding=encoding, realm={"cose_key": cose_key})
    assert sniff(data) == MT  # both envelopes travel under Veraison's one media type
    ear = appraise(good_store, data)
    assert set(ear.submods) == {PLATFORM, REALM}
    p, r = ear.submods[PLATFORM], ear.submods[REALM]
    assert (p.status.label, vector(p)) == ("affirming", PLATFORM_GOOD)
    assert (r.status.label, vector(r)) == ("affirming", REALM_GOOD)
    assert p.policy_ids == r.policy_ids == ("policy:ARM_CCA",)
    assert "ear_veraison_policy_claims" not in p.extensions
    ann_p, ann_r = p.extensions["ear_veraison_annotated_evidence"], r.extensions["ear_veraison_annotated_evidence"]
    assert ann_p["cca-platform-config"] == "AQIDBA==" and len(ann_p["cca-platform-sw-components"]) == 3
    assert ann_r["cca-realm-initial-measurement"] and len(ann_r["cca-realm-extensible-measurements"]) == 4
    assert ear.nonce == NONCE


def test_a_full_64_byte_nonce_is_compared_as_is(good_store: ReferenceValueStore, iak: SigningKey,
                                                rak: SigningKey) -> None:
    nonce = hashlib.sha512(b"long").digest()
    ear = appraise(good_store, token(iak, rak, realm={"challenge": nonce}), nonce)
    assert ear.submods[REALM].status.label == "affirming"


def test_legacy_platform_profile_is_accepted(good_store: ReferenceValueStore, iak: SigningKey, rak: SigningKey) -> None:
    ear = appraise(good_store, token(iak, rak, encoding="eat-collection",
                                     platform={"profile": cca.PLATFORM_PROFILE_LEGACY}))
    assert ear.status.label == "affirming"


# -- failures of the whole token: one ARM_CCA submodule, all 99 -----------------------------------


def test_other_session_nonce_is_a_freshness_failure(good_store: ReferenceValueStore, iak: SigningKey,
                                                    rak: SigningKey) -> None:
    text = problem(appraise(good_store, token(iak, rak), b"\x00" * 32))
    assert text.startswith("integrity validation failed: bad evidence: freshness: realm challenge (")
    assert text.endswith(f"does not match session nonce ({'00' * 32})")


def test_a_nonce_longer_than_64_bytes_never_matches(good_store: ReferenceValueStore, iak: SigningKey,
                                                    rak: SigningKey) -> None:
    """The appraiser's EAR refuses such a nonce anyway; the scheme must not truncate it (Go's copy does)."""
    challenge = hashlib.sha512(b"x").digest()
    data = token(iak, rak, realm={"challenge": challenge})
    with pytest.raises(BadEvidence, match="freshness"):
        SCHEME.appraise(Evidence(MT, data), Context(challenge + b"\x00", NOW, good_store))


def test_unknown_instance_has_no_trust_anchor(good_store: ReferenceValueStore, iak: SigningKey,
                                              rak: SigningKey) -> None:
    data = token(iak, rak, platform={"instance_id": b"\x01" + b"\xee" * 32})
    assert problem(appraise(good_store, data)) == "no trust anchor for evidence"


def test_platform_signed_by_another_key_fails_integrity(good_store: ReferenceValueStore, rak: SigningKey) -> None:
    text = problem(appraise(good_store, token(SigningKey.generate("ES256"), rak)))
    assert text.startswith("integrity validation failed: bad evidence: cca platform")


def test_realm_not_signed_by_the_key_it_carries_fails_integrity(good_store: ReferenceValueStore, iak: SigningKey,
                                                                rak: SigningKey) -> None:
    text = problem(appraise(good_store, token(iak, rak, realm_signer=SigningKey.generate("ES384"))))
    assert text.startswith("integrity validation failed: bad evidence: cca realm")


def test_platform_not_bound_to_the_realm_key_fails_integrity(good_store: ReferenceValueStore, iak: SigningKey,
                                                             rak: SigningKey) -> None:
    text = problem(appraise(good_store, token(iak, rak, platform={"challenge": b"\x07" * 32})))
    assert "platform challenge is not the hash of the realm public key" in text


@pytest.mark.parametrize("data", [b"not a token", b"\xd9\x01\x8f\xa0", b"\xd9\x03\x8b\xa1\x19\xac\xca\x40"])
def test_undecodable_evidence_establishes_no_identity(good_store: ReferenceValueStore, data: bytes) -> None:
    assert problem(appraise(good_store, data)).startswith("could not establish identity from evidence: ")


def test_unsupported_cose_algorithm_establishes_no_identity(good_store: ReferenceValueStore) -> None:
    signed = cbor.dumps(cbor.CBORTag(18, [cbor.dumps({1: -999}), {}, cbor.dumps({10: b"x" * 32}), b"sig"]))
    data = cbor.dumps(cbor.CBORTag(399, {44234: signed, 44241: signed}))
    text = problem(appraise(good_store, data))
    assert text.startswith("could not establish identity from evidence: ") and "-999" in text


def test_realm_claims_breaking_the_layout_establish_no_identity(good_store: ReferenceValueStore, iak: SigningKey,
                                                                rak: SigningKey) -> None:
    r = realm_claims(rak)  # a realm token with three REMs cannot be built from valid claims
    bad = r.to_cbor_claims() | {44239: list(REMS[:3])}
    realm_token = cose.sign1(cbor.dumps(bad), rak)
    platform_token = cose.sign1(cbor.dumps(platform_claims(r).to_cbor_claims()), iak)
    data = cbor.dumps(cbor.CBORTag(399, {44234: platform_token, 44241: realm_token}))
    assert "cca-realm-extensible-measurements" in problem(appraise(good_store, data))


def test_keys_of_another_profile_are_not_cca_trust_anchors(tmp_path: Path, iak: SigningKey, rak: SigningKey,
                                                           endorser: SigningKey) -> None:
    store = store_of(tmp_path, endorser, platform_corim(iak, profile=PSA.id), realm_corim())
    assert problem(appraise(store, token(iak, rak))) == "no trust anchor for evidence"


# -- the platform submodule ------------------------------------------------------------------------


def test_unknown_software_component_is_a_warning(tmp_path: Path, iak: SigningKey, rak: SigningKey,
                                                 endorser: SigningKey) -> None:
    store = store_of(tmp_path, endorser, platform_corim(iak, components=COMPONENTS[:2]), realm_corim())
    p = appraise(store, token(iak, rak)).submods[PLATFORM]
    assert (p.status.label, vector(p)) == ("warning", PLATFORM_GOOD | {"executables": 33})


@pytest.mark.parametrize(("field", "value"), [("version", "9.9.9"), ("measurement_type", "OTHER")])
def test_reference_label_and_version_must_agree(good_store: ReferenceValueStore, iak: SigningKey, rak: SigningKey,
                                                field: str, value: str) -> None:
    comps = platform_claims(realm_claims(rak)).software_components
    first = replace(comps[0], version=value) if field == "version" else replace(comps[0], measurement_type=value)
    changed = (first, *comps[1:])
    p = appraise(good_store, token(iak, rak, platform={"software_components": changed})).submods[PLATFORM]
    assert vector(p)["executables"] == 33


def test_other_platform_config_is_configuration_32(good_store: ReferenceValueStore, iak: SigningKey,
                                                   rak: SigningKey) -> None:
    p = appraise(good_store, token(iak, rak, platform={"config": b"\x01\x02\x03\x05"})).submods[PLATFORM]
    assert (p.status.label, vector(p)) == ("warning", PLATFORM_GOOD | {"configuration": 32})


def test_no_platform_reference_values_is_a_warning(tmp_path: Path, iak: SigningKey, rak: SigningKey,
                                                   endorser: SigningKey) -> None:
    key_only = platform_corim(iak)
    key_only = replace(key_only, tags=key_only.tags[1:])
    p = appraise(store_of(tmp_path, endorser, key_only), token(iak, rak)).submods[PLATFORM]
    assert vector(p) == PLATFORM_GOOD | {"configuration": 32, "executables": 33}


@pytest.mark.parametrize(("lifecycle", "protected"), [(0x3000, 2), (0x30FF, 2), (0x4000, 2), (0x1000, 96),
                                                      (0x2000, 96), (0x5000, 96), (0x6000, 96), (0x0000, 96)])
def test_lifecycle_decides_instance_identity_and_opacity(good_store: ReferenceValueStore, iak: SigningKey,
                                                         rak: SigningKey, lifecycle: int, protected: int) -> None:
    p = appraise(good_store, token(iak, rak, platform={"security_lifecycle": lifecycle})).submods[PLATFORM]
    v = vector(p)
    assert (v["instance-identity"], v["runtime-opaque"], v["storage-opaque"]) == (protected,) * 3
    assert p.status.label == ("affirming" if protected == 2 else "contraindicated")


# -- the realm submodule ---------------------------------------------------------------------------


def realm_verdict(tmp: Path, iak: SigningKey, rak: SigningKey, endorser: SigningKey, *triples: ReferenceTriple,
                  realm: dict[str, Any] | None = None) -> Appraisal:
    corims = (platform_corim(iak), realm_corim(*triples)) if triples else (platform_corim(iak),)
    return appraise(store_of(tmp, endorser, *corims), token(iak, rak, realm=realm)).submods[REALM]


def test_no_realm_reference_values_is_executables_33(tmp_path: Path, iak: SigningKey, rak: SigningKey,
                                                     endorser: SigningKey) -> None:
    r = realm_verdict(tmp_path, iak, rak, endorser)
    assert (r.status.label, vector(r)) == ("warning", REALM_GOOD | {"executables": 33})


@pytest.mark.parametrize(
    ("triple", "executables", "status"),
    [
        (realm_triple(), 2, "affirming"),
        (realm_triple(rpv=None), 2, "affirming"),  # no RPV in the reference: one realm per RIM
        (realm_triple(rems=(None, None, None, None)), 2, "affirming"),  # REMs not named match anything
        (realm_triple(rems=(REMS[0], None, REMS[2], None)), 2, "affirming"),
        (realm_triple(rems=(REMS[0], b"\x09" * 32, REMS[2], REMS[3])), 3, "affirming"),  # RIM+RPV approved
        (realm_triple(rpv=b"\x01" * 64), 96, "contraindicated"),  # the RIM personalised as another realm
    ],
)
def test_realm_executables_follow_veraison(tmp_path: Path, iak: SigningKey, rak: SigningKey, endorser: SigningKey,
                                           triple: ReferenceTriple, executables: int, status: str) -> None:
    r = realm_verdict(tmp_path, iak, rak, endorser, triple)
    assert (r.status.label, vector(r)) == (status, REALM_GOOD | {"executables": executables})


def test_an_rpv_mismatch_moves_on_to_the_next_reference(tmp_path: Path, iak: SigningKey, rak: SigningKey,
                                                        endorser: SigningKey) -> None:
    r = realm_verdict(tmp_path, iak, rak, endorser, realm_triple(rpv=b"\x01" * 64), realm_triple())
    assert vector(r)["executables"] == 2


def test_a_reference_for_another_rim_under_this_rim_is_a_verifier_malfunction(
        tmp_path: Path, iak: SigningKey, rak: SigningKey, endorser: SigningKey) -> None:
    """Veraison: RIM class-id found, cca.rim differs -> every claim -1 (status none)."""
    r = realm_verdict(tmp_path, iak, rak, endorser, realm_triple(rim=b"\x05" * 32, class_rim=RIM))
    assert r.status.label == "none"
    assert set(vector(r).values()) == {-1}


def test_realm_references_of_another_rim_do_not_apply(tmp_path: Path, iak: SigningKey, rak: SigningKey,
                                                      endorser: SigningKey) -> None:
    other = hashlib.sha256(b"other image").digest()
    r = realm_verdict(tmp_path, iak, rak, endorser, realm_triple(rim=other))
    assert vector(r)["executables"] == 33


def test_platform_failures_do_not_leak_into_the_realm(good_store: ReferenceValueStore, iak: SigningKey,
                                                      rak: SigningKey) -> None:
    ear = appraise(good_store, token(iak, rak, platform={"security_lifecycle": 0x5000}))
    assert ear.submods[PLATFORM].status.label == "contraindicated"
    assert ear.submods[REALM].status.label == "affirming"
    assert ear.status.label == "contraindicated"


# -- CoRIM validity and trust ----------------------------------------------------------------------


def test_expired_platform_corim_contributes_nothing(tmp_path: Path, iak: SigningKey, rak: SigningKey,
                                                    endorser: SigningKey) -> None:
    store = store_of(tmp_path, endorser, platform_corim(iak), realm_corim())
    assert appraise(store, token(iak, rak)).status.label == "affirming"
    assert problem(appraise(store, token(iak, rak), now=LATER)) == "no trust anchor for evidence"


def test_expired_realm_corim_contributes_nothing(tmp_path: Path, iak: SigningKey, rak: SigningKey,
                                                 endorser: SigningKey) -> None:
    store = store_of(tmp_path, endorser, (platform_corim(iak), Validity(NOW, LATER)), realm_corim())
    assert appraise(store, token(iak, rak)).submods[REALM].status.label == "affirming"
    ear = appraise(store, token(iak, rak), now=LATER)
    assert ear.submods[PLATFORM].status.label == "affirming"
    assert vector(ear.submods[REALM])["executables"] == 33


def test_corim_signed_by_an_untrusted_endorser_is_refused(tmp_path: Path, iak: SigningKey, rak: SigningKey,
                                                          endorser: SigningKey) -> None:
    path = tmp_path / "platform.cbor"
    path.write_bytes(sign_corim(platform_corim(iak), SigningKey.generate(), CorimMeta("Mallory")))
    with pytest.raises(Error):
        load_paths([path], [TrustAnchor((endorser.public,))], NOW)
    store = load_paths([path], [TrustAnchor((endorser.public,))], NOW, skip_invalid=True)
    assert len(store) == 0 and store.rejected
    assert problem(appraise(store, token(iak, rak))) == "no trust anchor for evidence"


def test_unsigned_corims_need_the_operator_mark(tmp_path: Path, iak: SigningKey, rak: SigningKey) -> None:
    path = tmp_path / "platform.cbor"
    path.write_bytes(encode_corim(platform_corim(iak)))
    with pytest.raises(Error):
        load_paths([path], [], NOW)
    store = load_paths([path], [], NOW, trust_unsigned=True)
    assert appraise(store, token(iak, rak)).submods[PLATFORM].status.label == "affirming"


# -- provenance, tampering ------------------------------------------------------------------------


def test_endorsement_provenance_names_who_endorsed_what(good_store: ReferenceValueStore, iak: SigningKey,
                                                        rak: SigningKey, endorser: SigningKey) -> None:
    ear = appraise(good_store, token(iak, rak))
    p = ear.submods[PLATFORM].extensions["ear_ratsfed_endorsements"]
    r = ear.submods[REALM].extensions["ear_ratsfed_endorsements"]
    assert [(x["role"], x["comid_id"]) for x in p] == [("attest-key", "cca-platform-key"),
                                                       ("reference-values", "cca-platform-refs")]
    assert [(x["role"], x["comid_id"]) for x in r] == [("attest-key", "cca-platform-key"),
                                                       ("reference-values", "cca-realm-refs")]
    for rec in (*p, *r):
        assert rec["signer"] == ENDORSER and rec["key_thumbprint"] == endorser.public.thumbprint
        assert len(rec["corim_sha256"]) == 64
    assert p[0]["comid_version"] == 3 and p[0]["profile"] == CCA_PLATFORM.id and p[0]["dependent_rims"] == [LINK]
    assert r[1]["profile"] == CCA_REALM.id and "dependent_rims" not in r[1]


def test_every_one_bit_change_is_never_affirming(good_store: ReferenceValueStore, iak: SigningKey,
                                                 rak: SigningKey) -> None:
    good = token(iak, rak, encoding="eat-collection")
    app = appraiser(good_store)
    assert app.appraise(Evidence(MT, good), NONCE, NOW).status.label == "affirming"
    for i in range(len(good)):
        bad = bytearray(good)
        bad[i] ^= 0x01
        try:
            ear = app.appraise(Evidence(MT, bytes(bad)), NONCE, NOW)
        except MalformedError:
            continue  # no EAR at all: never affirming
        assert all(a.status.label != "affirming" for a in ear.submods.values()), f"byte {i}"


def test_media_type_routes_to_arm_cca_only(good_store: ReferenceValueStore, iak: SigningKey, rak: SigningKey) -> None:
    app = appraiser(good_store)
    assert app.route(MT).descriptor.name == "ARM_CCA"
    assert app.route('application/eat-collection;profile="http://arm.com/CCA-SSD/1.0.0"').descriptor.name == "ARM_CCA"
    with pytest.raises(MalformedError, match="unsupported evidence media type"):
        app.appraise(Evidence("application/eat-collection", token(iak, rak)), NONCE, NOW)


async def test_three_local_appraisers_agree_per_submodule(good_store: ReferenceValueStore, iak: SigningKey,
                                                          rak: SigningKey) -> None:
    """The scheme's EAR survives signing (JWT and CWT), the federator's checks and RP re-verification."""
    members, anchors = [], {}
    formats: tuple[tuple[str, Literal["jwt", "cwt"]], ...] = (("acme", "jwt"), ("globex", "cwt"), ("initech", "jwt"))
    for op, fmt in formats:
        backend = LocalBackend(f"{op}-local", op, appraiser(good_store), SigningKey.generate(), fmt=fmt)
        members.append(Member(backend, backend.public_anchor))
        anchors[backend.name] = backend.public_anchor
    fed_key, epoch = SigningKey.generate(), int(NOW.timestamp())
    policy = QuorumPolicy(k=2, n=3, distinct_operators=True)
    # Two Evidence under one nonce: two federations (each appraises a nonce once: federation.replay).
    fed, again = (Federation(members, policy, fed_key, clock=lambda: float(epoch)) for _ in range(2))
    bad_realm = token(iak, rak, realm={"personalization_value": b"\x01" * 64})
    async with fed:
        good = await fed.appraise(Evidence(MT, token(iak, rak)), NONCE, now=epoch)
        worse = await again.appraise(Evidence(MT, bad_realm), NONCE, now=epoch)
    assert [v.outcome.value for v in good.votes] == ["ok"] * 3
    assert good.status == "affirming" and worse.status == "contraindicated"
    combined = worse.claims["submods"]
    assert combined[PLATFORM]["ear.status"] == "affirming"
    assert (combined[REALM]["ear.status"], combined[REALM]["ear.trustworthiness-vector"]["executables"]) == (
        "contraindicated", 96)
    checked = verify_result(good.token, TrustAnchor((fed_key.public,)), nonce=NONCE, reverify=True,
                            anchors=anchors, now=epoch)
    assert checked.status == "affirming"
    assert checked.provenance is not None
    assert {e["role"] for e in checked.provenance.endorsements} == {"attest-key", "reference-values"}
