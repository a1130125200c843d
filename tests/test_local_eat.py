"""The local appraiser on generic EAT evidence (scheme EAT) in our EAT profile.

The profile is ours, so no real token of it exists anywhere (none in ../shared/vectors): tokens are
built with generated keys (CWT and JWT), CoRIMs with our encoder (no CoRIM profile), signed by a
generated endorser key and loaded through ``load_paths`` with that key as the anchor. The mapping
checked here is the one docs/schemes.md defines.
"""

from __future__ import annotations

import hashlib
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import pytest
from cryptography.hazmat.primitives import serialization

from federation import Federation, Member, QuorumPolicy, cbor, cose, verify_result
from federation.ear.model import Appraisal, Ear
from federation.errors import MalformedError
from federation.evidence import Evidence, sniff
from federation.keys import SigningKey, TrustAnchor
from verifiers.local.appraiser import LocalAppraiser
from verifiers.local.backend import LocalBackend
from verifiers.local.corim.encode import sign_corim
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
    Svn,
    Tagged,
    Triples,
    Validity,
    Version,
)
from verifiers.local.corim.profiles import PSA
from verifiers.local.corim.store import ReferenceValueStore, load_paths
from verifiers.local.evidence import eat
from verifiers.local.evidence.eat import EatClaims, MeasuredComponent, encode_eat
from verifiers.local.evidence.measured_component import Version as McVersion
from verifiers.local.schemes import BUILTIN
from verifiers.local.schemes.eat import attester_environment, component_matches

NOW = datetime(2026, 6, 1, tzinfo=UTC)
T = int(NOW.timestamp())
VALID = Validity(NOW - timedelta(days=30), NOW + timedelta(days=30))
LATER = NOW + timedelta(days=31)
NONCE = hashlib.sha256(b"federation session").digest()
UEID = b"\x01" + bytes(range(32))
OEMID, HWMODEL = 4128, b"board-7"
VENDOR, MODEL = "4128", HWMODEL.hex()  # the profile's mapping of oemid / hwmodel
ENDORSER = "EAT Test Endorser"
LINK = "https://endorser.example/slsa/firmware-2.0.1.intoto.jsonl"
FORMATS: tuple[eat.Format, ...] = ("cwt", "jwt")
MEDIA = {"cwt": eat.CWT_MEDIA_TYPE, "jwt": eat.JWT_MEDIA_TYPE}
GOOD = {"instance-identity": 2, "configuration": 0, "executables": 2, "file-system": 0, "hardware": 2,
        "runtime-opaque": 0, "storage-opaque": 0, "sourced-data": 0}


def components() -> tuple[MeasuredComponent, ...]:
    return (
        MeasuredComponent("bootloader", "sha-256", hashlib.sha256(b"bl").digest(), version=McVersion("1.2.3", 16384),
                          authorities=(hashlib.sha256(b"signer").digest(),)),
        MeasuredComponent("kernel", 7, hashlib.sha384(b"k").digest(), version=McVersion("6.1")),
        MeasuredComponent("config", raw=b"\x00\x01\x02\x03"),
    )


def claims(**changes: Any) -> EatClaims:
    base: dict[str, Any] = {
        "nonces": (NONCE,), "profile": eat.PROFILE, "ueid": UEID, "oemid": OEMID, "hwmodel": HWMODEL,
        "swname": "firmware", "swversion": McVersion("2.0.1"), "measurements": components(),
        "iat": T - 60, "exp": T + 300,
    }
    return EatClaims(**(base | changes))


@pytest.fixture(scope="module")
def attester() -> SigningKey:
    return SigningKey.generate("ES256")


@pytest.fixture(scope="module")
def endorser() -> SigningKey:
    return SigningKey.generate("ES256")


def pem(key: SigningKey) -> str:
    return key.public.key.public_bytes(serialization.Encoding.PEM,
                                       serialization.PublicFormat.SubjectPublicKeyInfo).decode()


# -- CoRIMs ----------------------------------------------------------------------------------------


def reference(mkey: str, **mval: Any) -> Measurement:
    return Measurement(MeasurementValues(**mval), Tagged("string", mkey))


def references() -> tuple[Measurement, ...]:
    return (
        reference("bootloader", digests=(Digest(1, hashlib.sha256(b"bl").digest()),), version=Version("1.2.3")),
        reference("kernel", digests=(Digest("sha-384", hashlib.sha384(b"k").digest()),)),
        reference("config", raw=RawValue(b"\x00\x01\x00\x00", b"\xff\xff\x00\x00")),  # the first two bytes matter
    )


def key_triple(attester: SigningKey, **cls: Any) -> KeyTriple:
    cmap = ClassMap(**cls) if cls else None
    return KeyTriple(Environment(cmap, instance=Tagged("ueid", UEID, 550)),
                     (Tagged("pkix-base64-key", pem(attester), 554),))


def corim(attester: SigningKey, *, refs: tuple[Measurement, ...] | None = None,
          key_class: dict[str, Any] | None = None, ref_env: Environment | None = None,
          rim_validity: Validity | None = None) -> Corim:
    key = key_triple(attester, **({"vendor": VENDOR, "model": MODEL} if key_class is None else key_class))
    env = ref_env or Environment(ClassMap(vendor=VENDOR, model=MODEL))
    return Corim("eat-corim", (
        Comid("eat-key", Triples(attest_key=(key,)), tag_version=2),
        Comid("eat-refs", Triples(reference=(ReferenceTriple(env, references() if refs is None else refs),))),
    ), dependent_rims=(Locator((LINK,)),), rim_validity=rim_validity)


def store_of(tmp: Path, endorser: SigningKey, *corims: Corim) -> ReferenceValueStore:
    paths = []
    for i, c in enumerate(corims):
        path = tmp / f"eat-{i}.cbor"
        path.write_bytes(sign_corim(c, endorser, CorimMeta(ENDORSER, "https://endorser.example", VALID)))
        paths.append(path)
    return load_paths(paths, [TrustAnchor((endorser.public,))], NOW)


@pytest.fixture(scope="module")
def good_store(tmp_path_factory: pytest.TempPathFactory, attester: SigningKey, endorser: SigningKey
               ) -> ReferenceValueStore:
    return store_of(tmp_path_factory.mktemp("eat"), endorser, corim(attester))


def appraise(store: ReferenceValueStore, data: bytes, *, fmt: eat.Format = "cwt", nonce: bytes = NONCE,
             now: datetime = NOW, media_type: str | None = None) -> Ear:
    app = LocalAppraiser(list(BUILTIN.values()), store)
    return app.appraise(Evidence(media_type or MEDIA[fmt], data), nonce, now)


def sub(ear: Ear) -> Appraisal:
    assert set(ear.submods) == {"EAT"}
    return ear.submods["EAT"]


def vector(a: Appraisal) -> dict[str, int]:
    assert a.trust_vector is not None
    return a.trust_vector.as_dict()


def problem(ear: Ear) -> str:
    a = sub(ear)
    assert a.status.label == "contraindicated" and set(vector(a).values()) == {99}
    assert a.policy_ids == ("policy:EAT",)
    text: str = a.extensions["ear_veraison_policy_claims"]["problem"]
    return text


def executables(store: ReferenceValueStore, attester: SigningKey, **changes: Any) -> int:
    return vector(sub(appraise(store, encode_eat(claims(**changes), attester))))["executables"]


# -- good tokens -----------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", FORMATS)
def test_good_token_is_affirming(good_store: ReferenceValueStore, attester: SigningKey, fmt: eat.Format) -> None:
    data = encode_eat(claims(), attester, fmt=fmt)
    ear = appraise(good_store, data, fmt=fmt)
    a = sub(ear)
    assert (a.status.label, vector(a)) == ("affirming", GOOD)
    assert a.policy_ids == ("policy:EAT",)
    ann = a.extensions["ear_veraison_annotated_evidence"]
    assert ann["eat_profile"] == eat.PROFILE and [m["id"][0] for m in ann["measurements"]] == [
        "bootloader", "kernel", "config"]
    assert ear.nonce == NONCE


@pytest.mark.parametrize("fmt", FORMATS)
def test_media_types_with_and_without_the_profile(good_store: ReferenceValueStore, attester: SigningKey,
                                                  fmt: eat.Format) -> None:
    data = encode_eat(claims(), attester, fmt=fmt)
    sniffed = sniff(data)
    assert sniffed == f'{MEDIA[fmt]}; eat_profile="{eat.PROFILE}"'
    for mt in (sniffed, MEDIA[fmt]):
        assert sub(appraise(good_store, data, media_type=mt)).status.label == "affirming"


def test_a_token_without_the_profile_claim_is_read_under_it(good_store: ReferenceValueStore,
                                                            attester: SigningKey) -> None:
    assert sub(appraise(good_store, encode_eat(claims(profile=None), attester))).status.label == "affirming"


def test_the_session_nonce_may_be_one_of_several(good_store: ReferenceValueStore, attester: SigningKey) -> None:
    data = encode_eat(claims(nonces=(b"\x07" * 16, NONCE)), attester)
    assert sub(appraise(good_store, data)).status.label == "affirming"


# -- failures: contraindicated, all 99 -------------------------------------------------------------


@pytest.mark.parametrize("fmt", FORMATS)
def test_other_session_nonce_fails_integrity(good_store: ReferenceValueStore, attester: SigningKey,
                                             fmt: eat.Format) -> None:
    ear = appraise(good_store, encode_eat(claims(), attester, fmt=fmt), fmt=fmt, nonce=b"\x00" * 32)
    assert problem(ear) == "integrity validation failed: bad evidence: nonce does not match the session"


@pytest.mark.parametrize("fmt", FORMATS)
def test_wrong_attester_key_fails_integrity(good_store: ReferenceValueStore, fmt: eat.Format) -> None:
    ear = appraise(good_store, encode_eat(claims(), SigningKey.generate("ES256"), fmt=fmt), fmt=fmt)
    assert problem(ear).startswith("integrity validation failed: bad evidence: ")


@pytest.mark.parametrize(("changes", "why"), [({"exp": T - 1}, "expired"), ({"nbf": T + 60}, "not valid before")])
def test_token_outside_its_validity_fails_integrity(good_store: ReferenceValueStore, attester: SigningKey,
                                                    changes: dict[str, Any], why: str) -> None:
    text = problem(appraise(good_store, encode_eat(claims(**changes), attester)))
    assert text.startswith("integrity validation failed: bad evidence: ") and why in text


def test_unknown_ueid_has_no_trust_anchor(good_store: ReferenceValueStore, attester: SigningKey) -> None:
    ear = appraise(good_store, encode_eat(claims(ueid=b"\x01" + b"\xee" * 32), attester))
    assert problem(ear) == "no trust anchor for evidence"


def test_token_without_ueid_establishes_no_identity(good_store: ReferenceValueStore, attester: SigningKey) -> None:
    text = problem(appraise(good_store, encode_eat(claims(ueid=None), attester)))
    assert text.startswith("could not establish identity from evidence: ") and "ueid" in text


@pytest.mark.parametrize("data", [
    b"not a token", b"\xd2\x84\x40\xa0\x40\x40", b"eyJhbGciOiJFUzI1NiJ9.e30.AA",
    b"eyJhbGciOiJIUzI1NiJ9.e30.AA",  # HS256: an algorithm refused on sight is the token's fault too
])
def test_undecodable_evidence_establishes_no_identity(good_store: ReferenceValueStore, data: bytes) -> None:
    assert problem(appraise(good_store, data)).startswith("could not establish identity from evidence: ")


def test_another_eat_profile_establishes_no_identity(good_store: ReferenceValueStore, attester: SigningKey) -> None:
    raw = claims().to_claims(json_token=False) | {265: "tag:example.com,2026:other"}
    text = problem(appraise(good_store, cose.sign1(cbor.dumps(raw), attester)))
    assert "is not this verifier's EAT profile" in text


@pytest.mark.parametrize(("token_changes", "key_class", "affirming"), [
    ({}, {}, True),  # the triple names only the instance
    ({}, {"vendor": VENDOR}, True),
    ({"oemid": None, "hwmodel": None}, {"vendor": VENDOR, "model": MODEL}, True),  # the endorser describes it
    ({}, {"vendor": "9999"}, False),  # another vendor
    ({"hwmodel": b"board-8"}, {"vendor": VENDOR, "model": MODEL}, False),  # another model
    ({"oemid": bytes.fromhex("0a0b0c")}, {"vendor": "0a0b0c"}, True),  # an IEEE OUI oemid, as hex
])
def test_the_key_triple_class_must_agree_with_the_token(tmp_path: Path, attester: SigningKey, endorser: SigningKey,
                                                        token_changes: dict[str, Any], key_class: dict[str, Any],
                                                        affirming: bool) -> None:
    ref_env = Environment(ClassMap(vendor=key_class["vendor"])) if "vendor" in key_class else None
    store = store_of(tmp_path, endorser, corim(attester, key_class=key_class,
                                               ref_env=ref_env or Environment(instance=Tagged("ueid", UEID, 550))))
    ear = appraise(store, encode_eat(claims(**token_changes), attester))
    if affirming:
        assert (sub(ear).status.label, vector(sub(ear))) == ("affirming", GOOD)
    else:
        assert problem(ear) == "no trust anchor for evidence"


def test_reference_values_are_found_with_the_class_the_key_triple_adds(tmp_path: Path, attester: SigningKey,
                                                                       endorser: SigningKey) -> None:
    store = store_of(tmp_path, endorser, corim(attester))  # references under vendor + model
    bare = encode_eat(claims(oemid=None, hwmodel=None), attester)
    assert vector(sub(appraise(store, bare))) == GOOD
    store = store_of(tmp_path, endorser, corim(attester, key_class={}))  # the key triple says nothing more
    assert vector(sub(appraise(store, bare)))["executables"] == 33


def test_references_for_another_model_do_not_apply(tmp_path: Path, attester: SigningKey, endorser: SigningKey) -> None:
    other = Environment(ClassMap(vendor=VENDOR, model=b"board-8".hex()))
    store = store_of(tmp_path, endorser, corim(attester, ref_env=other))
    assert executables(store, attester) == 33


# -- executables -----------------------------------------------------------------------------------


def test_any_unmatched_component_is_executables_33(good_store: ReferenceValueStore, attester: SigningKey) -> None:
    comps = components()
    cases = [
        (replace(comps[0], digest=hashlib.sha256(b"other").digest()), *comps[1:]),  # another build
        (comps[0], MeasuredComponent("kernel", 1, hashlib.sha256(b"k").digest(), version=McVersion("6.1")),
         comps[2]),  # no algorithm in common with the reference
        (replace(comps[0], version=McVersion("1.2.4", 16384)), *comps[1:]),  # another version
        (*comps, MeasuredComponent("initrd", 1, hashlib.sha256(b"i").digest())),  # nothing known about it
        (comps[0], comps[1], MeasuredComponent("config", raw=b"\x00\x02\x02\x03")),  # masked bits differ
    ]
    for changed in cases:
        a = sub(appraise(good_store, encode_eat(claims(measurements=changed), attester)))
        assert (a.status.label, vector(a)) == ("warning", GOOD | {"executables": 33}), changed


def test_a_token_without_measurements_is_executables_33(good_store: ReferenceValueStore, attester: SigningKey) -> None:
    assert executables(good_store, attester, measurements=()) == 33


def test_masked_raw_value_bits_outside_the_mask_do_not_matter(good_store: ReferenceValueStore,
                                                              attester: SigningKey) -> None:
    comps = (*components()[:2], MeasuredComponent("config", raw=b"\x00\x01\xff\xff"))
    assert executables(good_store, attester, measurements=comps) == 2


def test_component_matching_rules() -> None:
    bl = components()[0]
    digest = (Digest(1, bl.digest or b""),)
    assert component_matches(bl, reference("bootloader", digests=digest))
    assert component_matches(bl, Measurement(MeasurementValues(digests=digest, name="bootloader")))  # no mkey: name
    assert not component_matches(bl, Measurement(MeasurementValues(digests=digest, name="kernel")))
    assert not component_matches(bl, Measurement(MeasurementValues(digests=digest)))  # names no component
    assert not component_matches(bl, reference("bootloader", name="bootloader"))  # descriptive only
    assert not component_matches(bl, Measurement(MeasurementValues(digests=digest), Tagged("uint", 1)))
    assert component_matches(bl, reference("bootloader", digests=digest, version=Version("1.2.3", 16384)))
    assert not component_matches(bl, reference("bootloader", digests=digest, version=Version("1.2.3", 1)))
    # authorities are the component's signer key ids, compared as 560(bytes) cryptokeys
    assert component_matches(bl, reference("bootloader", digests=digest,
                                           cryptokeys=(Tagged("bytes", bl.authorities[0], 560),)))
    assert not component_matches(bl, reference("bootloader", digests=digest,
                                               cryptokeys=(Tagged("bytes", b"\x00" * 32, 560),)))
    # a condition the component cannot satisfy (an svn) never matches
    assert not component_matches(bl, reference("bootloader", digests=digest, svn=Svn(1)))
    # digests: every algorithm in common must agree
    both = (*digest, Digest(7, b"\x00" * 48))
    assert component_matches(bl, reference("bootloader", digests=both))


def test_attester_environment_mapping() -> None:
    env = attester_environment(claims())
    assert env == Environment(ClassMap(vendor="4128", model="626f6172642d37"), instance=Tagged("ueid", UEID, 550))
    env = attester_environment(claims(oemid=b"\x00" * 16, hwmodel=None))
    assert env.class_ == ClassMap(vendor="00" * 16)
    assert attester_environment(claims(oemid=None, hwmodel=None)).class_ is None


# -- CoRIM validity and provenance -----------------------------------------------------------------


def test_expired_corim_contributes_nothing(tmp_path: Path, attester: SigningKey, endorser: SigningKey) -> None:
    store = store_of(tmp_path, endorser, corim(attester))
    data = encode_eat(claims(exp=None), attester)
    assert sub(appraise(store, data)).status.label == "affirming"
    assert problem(appraise(store, data, now=LATER)) == "no trust anchor for evidence"


def test_expired_reference_values_contribute_nothing(tmp_path: Path, attester: SigningKey,
                                                     endorser: SigningKey) -> None:
    keys = corim(attester, refs=())
    keys = replace(keys, tags=keys.tags[:1], id="keys")
    refs = replace(corim(attester, rim_validity=Validity(None, NOW + timedelta(days=1))), id="refs")
    refs = replace(refs, tags=refs.tags[1:])
    store = store_of(tmp_path, endorser, keys, refs)
    data = encode_eat(claims(exp=None), attester)
    assert executables(store, attester) == 2
    a = sub(appraise(store, data, now=NOW + timedelta(days=2)))
    assert (a.status.label, vector(a)) == ("warning", GOOD | {"executables": 33})


@pytest.mark.parametrize("fmt", FORMATS)
def test_endorsement_provenance_names_who_endorsed_what(good_store: ReferenceValueStore, attester: SigningKey,
                                                        endorser: SigningKey, fmt: eat.Format) -> None:
    records = sub(appraise(good_store, encode_eat(claims(), attester, fmt=fmt), fmt=fmt)
                  ).extensions["ear_ratsfed_endorsements"]
    assert [(r["role"], r["comid_id"]) for r in records] == [("attest-key", "eat-key"),
                                                             ("reference-values", "eat-refs")]
    for r in records:
        assert (r["corim_id"], r["signer"], r["key_thumbprint"]) == ("eat-corim", ENDORSER, endorser.public.thumbprint)
        assert r["dependent_rims"] == [LINK] and "profile" not in r
    assert records[0]["comid_version"] == 2


@pytest.mark.parametrize("fmt", FORMATS)
def test_every_one_bit_change_is_never_affirming(good_store: ReferenceValueStore, attester: SigningKey,
                                                 fmt: eat.Format) -> None:
    good = encode_eat(claims(), attester, fmt=fmt)
    app = LocalAppraiser(list(BUILTIN.values()), good_store)
    mt = MEDIA[fmt]
    assert app.appraise(Evidence(mt, good), NONCE, NOW).status.label == "affirming"
    for i in range(len(good)):
        bad = bytearray(good)
        bad[i] ^= 0x01
        try:
            ear = app.appraise(Evidence(mt, bytes(bad)), NONCE, NOW)
        except MalformedError:
            continue  # no EAR at all: never affirming
        assert ear.status.label != "affirming", f"byte {i}"


async def test_three_local_appraisers_agree(good_store: ReferenceValueStore, attester: SigningKey) -> None:
    """The scheme's EAR survives signing (JWT and CWT), the federator's checks and RP re-verification."""
    members, anchors = [], {}
    formats: tuple[tuple[str, Literal["jwt", "cwt"]], ...] = (("acme", "cwt"), ("globex", "jwt"), ("initech", "jwt"))
    for op, fmt in formats:
        backend = LocalBackend(f"{op}-local", op, LocalAppraiser(list(BUILTIN.values()), good_store),
                               SigningKey.generate(), fmt=fmt)
        members.append(Member(backend, backend.public_anchor))
        anchors[backend.name] = backend.public_anchor
    fed_key = SigningKey.generate()
    policy = QuorumPolicy(k=2, n=3, distinct_operators=True)
    # Two Evidence under one nonce: two federations (each appraises a nonce once: federation.replay).
    fed, again = (Federation(members, policy, fed_key, clock=lambda: float(T)) for _ in range(2))
    async with fed:
        good = await fed.appraise(Evidence(MEDIA["jwt"], encode_eat(claims(), attester, fmt="jwt")), NONCE, now=T)
        unknown = claims(measurements=(*components(), MeasuredComponent("initrd", 1, b"\x01" * 32)))
        warn = await again.appraise(Evidence(MEDIA["cwt"], encode_eat(unknown, attester)), NONCE, now=T)
    assert (good.status, warn.status) == ("affirming", "warning")
    assert warn.claims["submods"]["EAT"]["ear.trustworthiness-vector"]["executables"] == 33
    checked = verify_result(good.token, TrustAnchor((fed_key.public,)), nonce=NONCE, reverify=True,
                            anchors=anchors, now=T)
    assert checked.status == "affirming"


def test_keys_and_references_under_a_corim_profile_are_not_used(tmp_path: Path, attester: SigningKey,
                                                                endorser: SigningKey) -> None:
    """A PSA-profile attest-key triple for the same UEID is a PSA IAK, not an EAT attester key."""
    env = Environment(ClassMap(Tagged("bytes", bytes(32), 560)), instance=Tagged("ueid", UEID, 550))
    psa = Corim("psa", (Comid("psa-key", Triples(attest_key=(
        KeyTriple(env, (Tagged("pkix-base64-key", pem(attester), 554),)),))),), ProfileId(PSA.id))
    store = store_of(tmp_path, endorser, psa)
    assert problem(appraise(store, encode_eat(claims(), attester))) == "no trust anchor for evidence"
