"""CoRIM profiles: the PSA rules Veraison enforces, the legacy PSA entry, CCA, and the registry.

The five invalid PSA CoRIMs of veraison-services must be rejected with the reasons its
SOURCES.md records; the others are built by changing one field of a good model.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from verifiers.local.corim import (
    DEFAULT_PROFILES,
    PSA,
    ClassMap,
    Comid,
    Corim,
    Digest,
    Environment,
    Measurement,
    MeasurementValues,
    ProfileError,
    ProfileRegistry,
    RawValue,
    Tagged,
    Triples,
    Version,
    decode_corim,
    validate_profile,
)
from verifiers.local.corim.model import KeyTriple, ProfileId, ReferenceTriple
from verifiers.local.corim.profiles import CCA_PLATFORM, CCA_REALM, CVM_FIRMWARE, PSA_LEGACY

ENDORSEMENTS = "veraison-services/psa/endorsements"


@pytest.mark.parametrize(("name", "reason"), [
    ("corim-psa-bad-class.cbor",
     "attester verification key at index 0: implementation-id must be of type 'bytes', got 'uuid'"),
    ("corim-psa-bad-instance.cbor",
     "attester verification key at index 0: instance-id must be of type 'ueid', got 'uuid'"),
    ("corim-psa-bad-ta-no-instance.cbor",
     "attester verification key at index 0: environment.instance (instance-id) is required"),
    ("corim-psa-bad-ta-cert.cbor",
     "attester verification key at index 0: verification-key must be of type 'pkix-base64-key', "
     "got 'pkix-base64-cert'"),
    ("corim-psa-bad-refval-mkey.cbor",
     "reference value at index 0, measurement at index 1: mkey must be of type 'string', got 'uint'"),
])
def test_veraison_invalid_psa_corims(vectors: Path, name: str, reason: str) -> None:
    corim = decode_corim((vectors / ENDORSEMENTS / name).read_bytes())
    with pytest.raises(ProfileError) as info:
        validate_profile(corim)
    assert str(info.value).endswith(reason)
    assert "profile tag:arm.com,2025:psa#1.0.0: comid " in str(info.value)
    assert info.value.profile == PSA.id and info.value.reason == "malformed"


@pytest.mark.parametrize(("name", "reason"), [
    ("psa-invalid-impl-id.cbor", "reference value at index 0: implementation-id must be exactly 32 bytes (got 31)"),
    ("psa-invalid-attest-key.cbor",
     "attester verification key at index 0: verification-keys must contain exactly one entry, got 2"),
])
def test_veraison_corim_invalid_psa_cases(vectors: Path, name: str, reason: str) -> None:
    with pytest.raises(ProfileError, match=f"{reason.replace('(', '[(]').replace(')', '[)]')}$"):
        validate_profile(decode_corim((vectors / "veraison-corim/psa-profile" / name).read_bytes()))


@pytest.mark.parametrize("rel", [
    f"{ENDORSEMENTS}/corim-psa-valid.cbor", "veraison-corim/psa-profile/psa-valid.cbor",
    "veraison-corim/psa-profile/no-profile.cbor", "veraison-corim/corim/unsigned-good-corim.cbor",
])
def test_valid_corims_pass_unchanged(vectors: Path, rel: str) -> None:
    corim = decode_corim((vectors / rel).read_bytes())
    assert validate_profile(corim) is corim


# --- legacy PSA ----------------------------------------------------------------------------

def _refs(corim: Corim) -> dict[str | None, MeasurementValues]:
    return {m.mval.name: m.mval for c in corim.comids for t in c.triples.reference for m in t.measurements}


def test_legacy_psa_is_accepted_and_rewritten(vectors: Path) -> None:
    legacy = decode_corim((vectors / "veraison-services/legacy/psa-endorsements-legacy.cbor").read_bytes())
    current = decode_corim((vectors / ENDORSEMENTS / "corim-psa-valid.cbor").read_bytes())
    out = validate_profile(legacy)
    assert out.profile == legacy.profile  # provenance keeps the legacy id
    ref = out.comids[0].triples.reference[0]
    assert ref.environment.class_id == Tagged("bytes", b"acme-implementation-id-000000001", 560)
    assert all(m.mkey == Tagged("string", "psa.software-component") for m in ref.measurements)
    # "Same reference values as corim-psa-valid.cbor" (SOURCES.md): names and digests agree.
    new, old = _refs(out), _refs(current)
    assert {k: v.digests for k, v in new.items()} == {k: v.digests for k, v in old.items()}
    assert new["BL"].version == Version("2.1.0") and new["PRoT"].version == Version("1.3.5")
    signer = new["BL"].cryptokeys
    assert signer is not None and signer[0] == Tagged("bytes", bytes.fromhex(
        "acbb11c7e4da217205523ce4ce1a245ae1a239ae3c6bfd9e7871f7e5d8bae86b"), 560)
    # The rewritten CoRIM satisfies the current PSA rules as well.
    validate_profile(replace(out, profile=ProfileId(PSA.id)))
    key = out.comids[1].triples.attest_key[0]
    assert key.environment.class_id == ref.environment.class_id
    assert key.keys == current.comids[1].triples.attest_key[0].keys


def test_legacy_tags_need_the_legacy_profile(vectors: Path) -> None:
    legacy = decode_corim((vectors / "veraison-services/legacy/psa-endorsements-legacy.cbor").read_bytes())
    with pytest.raises(ProfileError, match=r"class-id of type 'psa.impl-id' \(tag 600\) is only accepted under "
                                           r"the legacy profile 'http://arm.com/psa/iot/1'"):
        validate_profile(replace(legacy, profile=None))
    with pytest.raises(ProfileError, match=r"tag 600"):
        validate_profile(replace(legacy, profile=ProfileId(PSA.id)))


def test_legacy_rules(vectors: Path) -> None:
    legacy = decode_corim((vectors / "veraison-services/legacy/psa-endorsements-legacy.cbor").read_bytes())
    comid = legacy.comids[0]
    ref = comid.triples.reference[0]
    with_instance = replace(ref, environment=replace(ref.environment, instance=Tagged("ueid", b"\x01" * 33, 550)))
    bad = replace(legacy, tags=(replace(comid, triples=replace(comid.triples, reference=(with_instance,))),))
    with pytest.raises(ProfileError, match="reference value at index 0: instance set for reference value"):
        validate_profile(bad)
    no_digests = replace(ref.measurements[0], mval=replace(ref.measurements[0].mval, digests=None, name="x"))
    bad = replace(legacy, tags=(replace(comid, triples=replace(
        comid.triples, reference=(replace(ref, measurements=(no_digests,)),))),))
    with pytest.raises(ProfileError, match="measurement at index 0: no digests"):
        validate_profile(bad)
    bad_ref_id = replace(ref.measurements[0], mkey=Tagged("psa.refval-id", bytes.fromhex("a10162424c"), 601))
    bad = replace(legacy, tags=(replace(comid, triples=replace(
        comid.triples, reference=(replace(ref, measurements=(bad_ref_id,)),))),))
    with pytest.raises(ProfileError, match=r"psa\.refval-id must be"):
        validate_profile(bad)


# --- PSA rules, one field at a time ---------------------------------------------------------

IMPL = Tagged("bytes", b"\x11" * 32, 560)
INST = Tagged("ueid", b"\x01" + b"\x22" * 32, 550)
SIGNER = Tagged("bytes", b"\x33" * 32, 560)
PEM = Tagged("pkix-base64-key", "-----BEGIN PUBLIC KEY-----", 554)
SW = Measurement(MeasurementValues(digests=(Digest(1, b"\x44" * 32),), name="BL", cryptokeys=(SIGNER,)),
                 Tagged("string", "psa.software-component"))


def psa(ref: ReferenceTriple | None = None, key: KeyTriple | None = None, profile: str = PSA.id) -> Corim:
    triples = Triples(reference=(ref or ReferenceTriple(Environment(ClassMap(IMPL)), (SW,)),),
                      attest_key=(key or KeyTriple(Environment(ClassMap(IMPL), INST), (PEM,)),))
    return Corim("c", (Comid("m", triples),), profile=ProfileId(profile))


def _mval(**changes: object) -> ReferenceTriple:
    return ReferenceTriple(Environment(ClassMap(IMPL)), (replace(SW, mval=replace(SW.mval, **changes)),))


def _env(env: Environment) -> KeyTriple:
    return KeyTriple(env, (PEM,))


@pytest.mark.parametrize(("corim", "reason"), [
    (psa(ReferenceTriple(Environment(instance=INST), (SW,))),
     "reference value at index 0: environment.class is required"),
    (psa(ReferenceTriple(Environment(ClassMap(vendor="ACME")), (SW,))),
     "environment.class.id (implementation-id) is required"),
    (psa(key=_env(Environment(ClassMap(IMPL), Tagged("ueid", b"\x02" + b"\x22" * 32, 550)))),
     "attester verification key at index 0: instance-id must have RAND type (0x01), got 0x02"),
    (psa(key=_env(Environment(ClassMap(IMPL), Tagged("ueid", b"\x01" * 17, 550)))),
     "instance-id must be exactly 33 bytes (got 17)"),
    (psa(ReferenceTriple(Environment(ClassMap(IMPL)), (replace(SW, mkey=None),))),
     "reference value at index 0, measurement at index 0: mkey is mandatory but not set"),
    (psa(ReferenceTriple(Environment(ClassMap(IMPL)), (replace(SW, mkey=Tagged("string", "psa.other")),))),
     'mkey must be "psa.software-component", got "psa.other"'),
    (psa(_mval(cryptokeys=None)), "cryptokeys (signer-id) is mandatory but not set"),
    (psa(_mval(cryptokeys=(SIGNER, SIGNER))), "cryptokeys must contain exactly one entry, got 2"),
    (psa(_mval(cryptokeys=(PEM,))), "signer-id must be of type 'bytes', got 'pkix-base64-key'"),
    (psa(_mval(cryptokeys=(Tagged("bytes", b"\x33" * 20, 560),))), "signer-id must be 32, 48, or 64 bytes (got 20)"),
    (psa(key=KeyTriple(Environment(ClassMap(IMPL), INST), (PEM, PEM))),
     "verification-keys must contain exactly one entry, got 2"),
    (psa(_mval(extensions={100: "12 - 3"})), "psa-cert-num must be text of the form"),
])
def test_psa_rules(corim: Corim, reason: str) -> None:
    with pytest.raises(ProfileError) as info:
        validate_profile(corim)
    assert reason in str(info.value)


def test_psa_good_model_and_cert_num() -> None:
    assert validate_profile(psa(_mval(extensions={100: "1234567890123 - 12345"}))).comids
    assert PSA.comparators[100]("a", "a") and not PSA.comparators[100]("a", "b")


# --- registry ------------------------------------------------------------------------------

def test_unknown_profile_is_rejected() -> None:
    with pytest.raises(ProfileError, match=r"corim profile 'tag:example.com,2025:x' is not supported"):
        validate_profile(psa(profile="tag:example.com,2025:x"))


def test_current_profile_must_be_a_tagged_uri() -> None:
    corim = replace(psa(), profile=ProfileId(PSA.id, "text"))
    with pytest.raises(ProfileError, match="must be a tagged URI"):
        validate_profile(corim)


def test_registry() -> None:
    assert PSA.id in DEFAULT_PROFILES and PSA_LEGACY.id in DEFAULT_PROFILES
    assert {p.id for p in DEFAULT_PROFILES} == {PSA.id, PSA_LEGACY.id, CCA_PLATFORM.id, CCA_REALM.id, CVM_FIRMWARE.id}
    with pytest.raises(ValueError, match="registered twice"):
        ProfileRegistry([PSA, PSA])
    only_psa = ProfileRegistry([PSA])
    with pytest.raises(ProfileError, match="not supported"):
        only_psa.validate(replace(psa(), profile=ProfileId(CCA_PLATFORM.id)))


# --- CCA -----------------------------------------------------------------------------------

CCA_SW = replace(SW, mkey=Tagged("string", "cca.software-component"))
CCA_CFG = Measurement(MeasurementValues(raw=RawValue(b"\x01\x02", b"\xff\xff")),
                      Tagged("string", "cca.platform-config"))


def cca(*measurements: Measurement) -> Corim:
    ref = ReferenceTriple(Environment(ClassMap(IMPL)), measurements)
    triples = Triples(reference=(ref,), attest_key=(KeyTriple(Environment(ClassMap(IMPL), INST), (PEM,)),))
    return Corim("c", (Comid("m", triples),), profile=ProfileId(CCA_PLATFORM.id))


def test_cca_platform_rules() -> None:
    validate_profile(cca(CCA_SW, CCA_CFG))
    cases = {
        "exactly 1 \"cca.platform-config\" measurement(s) required, found 0": cca(CCA_SW),
        "exactly 1 \"cca.platform-config\" measurement(s) required, found 2": cca(CCA_SW, CCA_CFG, CCA_CFG),
        "at least 1 \"cca.software-component\" measurement(s) required, found 0": cca(CCA_CFG),
        'invalid mkey "psa.software-component"': cca(SW, CCA_CFG),
        "raw-value-mask is mandatory for cca.platform-config": cca(
            CCA_SW, replace(CCA_CFG, mval=MeasurementValues(raw=RawValue(b"\x01")))),
        "version-scheme field MUST NOT be present": cca(
            replace(CCA_SW, mval=replace(CCA_SW.mval, version=Version("1", 16384))), CCA_CFG),
        "hash value must be 32, 48, or 64 bytes (got 20)": cca(
            replace(CCA_SW, mval=replace(CCA_SW.mval, digests=(Digest(99, b"\x00" * 20),))), CCA_CFG),
    }
    for reason, corim in cases.items():
        with pytest.raises(ProfileError) as info:
            validate_profile(corim)
        assert reason in str(info.value) and "platform reference value at index 0" in str(info.value)


def realm(class_id: Tagged, *measurements: Measurement) -> Corim:
    triples = Triples(reference=(ReferenceTriple(Environment(ClassMap(class_id)), measurements),))
    return Corim("r", (Comid("m", triples),), profile=ProfileId(CCA_REALM.id))


def test_cca_realm_rules() -> None:
    rim = Tagged("bytes", b"\x55" * 48, 560)
    rim_m = Measurement(MeasurementValues(digests=(Digest(7, b"\x55" * 48),)), Tagged("string", "cca.rim"))
    rpv = Measurement(MeasurementValues(raw=RawValue(b"\x00" * 64)), Tagged("string", "cca.rpv"))
    validate_profile(realm(rim, rim_m, replace(rim_m, mkey=Tagged("string", "cca.rem3")), rpv))
    cases = {
        "RIM must be 32, 48, or 64 bytes (got 5)": realm(Tagged("bytes", b"\x00" * 5, 560), rim_m),
        'at least 1 "cca.rim" measurement(s) required, found 0': realm(rim, rpv),
        "digests must contain exactly one entry, got 2": realm(rim, replace(rim_m, mval=MeasurementValues(
            digests=(Digest(7, b"\x55" * 48), Digest(8, b"\x55" * 64))))),
        "raw-value is mandatory for cca.rpv": realm(rim, rim_m, replace(rpv, mval=MeasurementValues(name="x"))),
    }
    for reason, corim in cases.items():
        with pytest.raises(ProfileError) as info:
            validate_profile(corim)
        assert reason in str(info.value)
