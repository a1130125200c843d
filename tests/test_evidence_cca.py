"""Arm CCA tokens. No real CCA token is among ../shared/vectors, so these tests build tokens with
generated keys following the published claim layouts (RMM spec; Veraison ccatoken)."""

from __future__ import annotations

import contextlib
import hashlib
from datetime import UTC, datetime
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from federation import cbor, cose
from federation.errors import BadSignatureError, Error, MalformedError, UntrustedKeyError
from federation.evidence import sniff
from federation.keys import SigningKey, VerificationKey
from verifiers.local.evidence import cca
from verifiers.local.evidence.cca import (
    CcaPlatformClaims,
    CcaRealmClaims,
    binder,
    decode_cca,
    encode_cca,
    rak_claim,
    verify_cca,
)
from verifiers.local.evidence.psa import SwComponent

NOW = datetime(2026, 1, 1, tzinfo=UTC)
ENCODINGS: tuple[cca.Encoding, ...] = ("eat-collection", "cmw-collection")


@pytest.fixture(scope="module")
def iak() -> SigningKey:
    return SigningKey.generate("ES384")


@pytest.fixture(scope="module")
def rak() -> SigningKey:
    return SigningKey.generate("ES384")


def realm_claims(rak: SigningKey, *, cose_key: bool = True, rak_hash: str = "sha-256") -> CcaRealmClaims:
    pub = rak.key.public_key()
    assert isinstance(pub, ec.EllipticCurvePublicKey)
    return CcaRealmClaims(
        challenge=bytes(range(64)),
        personalization_value=b"P" * 64,
        initial_measurement=hashlib.sha256(b"rim").digest(),
        extensible_measurements=tuple(hashlib.sha256(bytes([i])).digest() for i in range(4)),
        hash_algorithm="sha-256",
        public_key=rak_claim(pub, cose_key=cose_key),
        public_key_hash_algorithm=rak_hash,
        profile=cca.REALM_PROFILE if cose_key else None,
    )


def platform_claims(realm: CcaRealmClaims, *, challenge: bytes | None = None,
                    profile: str = cca.PLATFORM_PROFILE) -> CcaPlatformClaims:
    return CcaPlatformClaims(
        profile=profile,
        challenge=binder(realm) if challenge is None else challenge,
        implementation_id=b"I" * 32,
        instance_id=b"\x01" + b"i" * 32,
        config=b"\x01\x02\x03",
        security_lifecycle=0x3000,
        software_components=(SwComponent(hashlib.sha256(b"bl").digest(), b"S" * 32, "BL", "1.0.0", "sha-256"),),
        hash_algorithm="sha-256",
        verification_service="https://veraison.example/v1/challenge-response",
    )


def token(iak: SigningKey, rak: SigningKey, encoding: cca.Encoding = "cmw-collection", **kw: Any) -> bytes:
    realm = realm_claims(rak, **kw)
    return encode_cca(platform_claims(realm), realm, iak, rak, encoding=encoding)


def wrap(p_map: dict[int, Any], r_map: dict[int, Any], iak: SigningKey, rak: SigningKey,
         encoding: str = "eat-collection") -> bytes:
    """Sign raw claim maps (possibly invalid) and wrap them, to test the decoder's rules."""
    p, r = cose.sign1(cbor.dumps(p_map), iak), cose.sign1(cbor.dumps(r_map), rak)
    if encoding == "eat-collection":
        return cbor.dumps(cbor.CBORTag(399, {44234: p, 44241: r}))
    return cbor.dumps(cbor.CBORTag(907, {44234: [263, p], 44241: [263, r]}))


# -- good tokens -----------------------------------------------------------------------------------


@pytest.mark.parametrize("encoding", ENCODINGS)
def test_both_envelopes_verify(iak: SigningKey, rak: SigningKey, encoding: cca.Encoding) -> None:
    data = token(iak, rak, encoding)
    assert data[:3] == (b"\xd9\x01\x8f" if encoding == "eat-collection" else b"\xd9\x03\x8b")
    got = verify_cca(data, iak.public, NOW)
    assert got.encoding == encoding
    realm = realm_claims(rak)
    assert got.realm == realm
    assert got.platform == platform_claims(realm)
    assert got.platform.challenge == hashlib.sha256(realm.public_key).digest()
    assert got.platform.lifecycle_state == "secured"
    assert got.realm.rak.thumbprint == rak.public.thumbprint
    assert sniff(data) == cca.MEDIA_TYPE == 'application/eat-collection; profile="http://arm.com/CCA-SSD/1.0.0"'


def test_cmw_envelope_is_a_cmw_collection_of_eat_cwt_records(iak: SigningKey, rak: SigningKey) -> None:
    item = cbor.loads(token(iak, rak, "cmw-collection"))
    assert item.tag == 907 and set(item.value) == {44234, 44241}
    for entry in item.value.values():
        assert entry[0] == 263 and cose.decode_sign1(entry[1]).payload
    # a text media type in place of the Content-Format is the same record
    spelled = cbor.dumps(cbor.CBORTag(907, {k: ["application/eat+cwt", v[1]] for k, v in item.value.items()}))
    assert verify_cca(spelled, iak.public, NOW).encoding == "cmw-collection"


def test_legacy_raw_rak_without_realm_profile(iak: SigningKey, rak: SigningKey) -> None:
    data = token(iak, rak, "eat-collection", cose_key=False)
    got = verify_cca(data, iak.public, NOW)
    assert got.realm.profile is None and len(got.realm.public_key) == 97
    assert got.platform.challenge == hashlib.sha256(got.realm.public_key).digest()


@pytest.mark.parametrize(("rak_hash", "size"), [("sha-256", 32), ("sha-384", 48), ("sha-512", 64)])
def test_binding_uses_the_realm_key_hash_algorithm(iak: SigningKey, rak: SigningKey, rak_hash: str,
                                                   size: int) -> None:
    got = verify_cca(token(iak, rak, rak_hash=rak_hash), iak.public, NOW)
    assert len(got.platform.challenge) == size
    assert got.platform.challenge == hashlib.new(rak_hash.replace("-", ""), got.realm.public_key).digest()


def test_p256_rak_as_cose_key(iak: SigningKey) -> None:
    rak = SigningKey.generate("ES256")
    assert verify_cca(token(iak, rak), iak.public, NOW).realm.rak.algorithms == {"ES256"}


# -- integrity failures ----------------------------------------------------------------------------


def test_platform_token_must_be_signed_by_the_iak(iak: SigningKey, rak: SigningKey) -> None:
    other = SigningKey.generate("ES384")
    with pytest.raises(BadSignatureError, match="cca platform"):
        verify_cca(token(iak, rak), VerificationKey.of(other.key.public_key()), NOW)
    with pytest.raises(UntrustedKeyError, match="cca platform: no configured key has kid"):
        verify_cca(token(iak, rak), other.public, NOW)  # a key configured with another kid


def test_realm_token_must_be_signed_by_the_rak_it_carries(iak: SigningKey, rak: SigningKey) -> None:
    realm = realm_claims(rak)
    impostor = SigningKey.generate("ES384")
    data = encode_cca(platform_claims(realm), realm, iak, impostor)
    assert decode_cca(data).realm == realm  # well-formed ...
    with pytest.raises(BadSignatureError, match="cca realm"):  # ... but not signed with the RAK
        verify_cca(data, iak.public, NOW)


@pytest.mark.parametrize("encoding", ENCODINGS)
def test_platform_must_vouch_for_the_rak(iak: SigningKey, rak: SigningKey, encoding: cca.Encoding) -> None:
    realm = realm_claims(rak)
    unbound = platform_claims(realm, challenge=bytes(32))  # both signatures are fine
    with pytest.raises(BadSignatureError, match="platform challenge is not the hash of the realm public key"):
        verify_cca(encode_cca(unbound, realm, iak, rak, encoding=encoding), iak.public, NOW)
    # a realm token (with its own RAK) spliced under another platform token is refused the same way
    other_rak = SigningKey.generate("ES384")
    other_realm = realm_claims(other_rak)
    spliced = encode_cca(platform_claims(realm), other_realm, iak, other_rak, encoding=encoding)
    with pytest.raises(BadSignatureError, match="platform challenge"):
        verify_cca(spliced, iak.public, NOW)


def one_bit_per_byte(data: bytes) -> list[bytes]:
    """For every byte, one variant with one bit changed (the bit rotates through the positions)."""
    return [data[:i] + bytes([data[i] ^ (1 << (i % 8))]) + data[i + 1:] for i in range(len(data))]


@pytest.mark.parametrize("encoding", ENCODINGS)
def test_a_one_bit_change_anywhere_is_rejected(iak: SigningKey, rak: SigningKey, encoding: cca.Encoding) -> None:
    data = token(iak, rak, encoding)
    for variant in one_bit_per_byte(data):
        with pytest.raises(Error):
            verify_cca(variant, iak.public, NOW)


# -- claim rules -----------------------------------------------------------------------------------


def maps(iak: SigningKey, rak: SigningKey) -> tuple[dict[int, Any], dict[int, Any]]:
    realm = realm_claims(rak)
    return platform_claims(realm).to_cbor_claims(), realm.to_cbor_claims()


REALM_CASES: list[tuple[str, dict[int, Any], tuple[int, ...], str]] = [
    ("challenge-64", {10: bytes(32)}, (), r"cca realm: cca-realm-challenge: length 32 is invalid \(must be 64"),
    ("challenge-one", {10: [bytes(64), bytes(64)]}, (), r"cca-realm-challenge: got 2 nonces"),
    ("rpv-64", {44235: bytes(63)}, (), r"cca-realm-personalization-value: length 63"),
    ("rim-hash-size", {44238: bytes(20)}, (), r"cca-realm-initial-measurement: length 20"),
    ("rems-four", {44239: [bytes(32)] * 3}, (), r"cca-realm-extensible-measurements: has 3 entries, want 4"),
    ("rem-size", {44239: [bytes(32)] * 3 + [bytes(31)]}, (), r"cca-realm-extensible-measurements\[3\]: length 31"),
    ("hash-alg-empty", {44236: ""}, (), r"cca-realm-hash-algo-id: must not be empty"),
    ("rak-hash-unbindable", {44240: "sha-1"}, (), r"cca-realm-public-key-hash-algo-id: 'sha-1' cannot bind"),
    ("profile", {265: "tag:arm.com,2023:realm#2.0.0"}, (), r"cca-realm-profile: .* is not tag:arm.com"),
    ("rak-missing", {}, (44237,), r"cca realm: missing mandatory claim\(s\): cca-realm-public-key$"),
    ("rak-not-cose-key", {44237: b"\x04" + bytes(96)}, (), r"cca-realm-public-key: must be a COSE_Key of type EC2"),
    ("rak-okp", {44237: cbor.dumps({1: 1, -1: 6, -2: bytes(32)})}, (), r"must be a COSE_Key of type EC2"),
    ("rak-curve", {44237: cbor.dumps({1: 2, -1: 8, -2: bytes(32), -3: bytes(32)})}, (),
     r"COSE_Key curve 8 is not supported"),
    ("rak-off-curve", {44237: cbor.dumps({1: 2, -1: 2, -2: bytes(48), -3: b"\x01" * 48})}, (),
     r"cca-realm-public-key: not a valid EC public key"),
    ("raw-rak-without-profile", {44237: b"\x04" + bytes(96)}, (265,), r"cca-realm-public-key: not a valid EC"),
    ("raw-rak-size", {44237: bytes(65)}, (265,), r"a raw RAK must be a 97-byte uncompressed P-384 point"),
]


@pytest.mark.parametrize(("case", "change", "drop", "reason"), REALM_CASES, ids=[c[0] for c in REALM_CASES])
def test_realm_rules(iak: SigningKey, rak: SigningKey, case: str, change: dict[int, Any], drop: tuple[int, ...],
                     reason: str) -> None:
    p_map, r_map = maps(iak, rak)
    r_map |= change
    for key in drop:
        del r_map[key]
    with pytest.raises(MalformedError, match=reason):
        decode_cca(wrap(p_map, r_map, iak, rak))


PLATFORM_CASES: list[tuple[str, dict[int, Any], tuple[int, ...], str]] = [
    ("profile", {265: "http://arm.com/psa/2.0.0"}, (), r"cca platform: cca-platform-profile: .* is not"),
    ("config-missing", {}, (2401,), r"missing mandatory claim\(s\): cca-platform-config$"),
    ("hash-alg-missing", {}, (2402,), r"missing mandatory claim\(s\): cca-platform-hash-algo-id$"),
    ("hash-alg-unknown", {2402: "sha-999"}, (), r"cca-platform-hash-algo-id: 'sha-999' is not a known hash"),
    ("challenge-multi", {10: [bytes(32), bytes(32)]}, (), r"cca-platform-challenge: got 2 nonces"),
    ("instance-id", {256: b"\x02" + bytes(32)}, (), r"cca-platform-instance-id: UEID type 0x02"),
    ("impl-id", {2396: bytes(16)}, (), r"cca-platform-implementation-id: length 16"),
    ("lifecycle", {2395: 0x6100}, (), r"cca-platform-lifecycle: value 0x6100 is in no defined"),
    ("sw-empty", {2399: []}, (), r"cca-platform-sw-components: must have at least one entry"),
    ("vsi-empty", {2400: ""}, (), r"cca-platform-service-indicator: must not be empty"),
]


@pytest.mark.parametrize(("case", "change", "drop", "reason"), PLATFORM_CASES, ids=[c[0] for c in PLATFORM_CASES])
def test_platform_rules(iak: SigningKey, rak: SigningKey, case: str, change: dict[int, Any],
                        drop: tuple[int, ...], reason: str) -> None:
    p_map, r_map = maps(iak, rak)
    p_map |= change
    for key in drop:
        del p_map[key]
    with pytest.raises(MalformedError, match=reason):
        decode_cca(wrap(p_map, r_map, iak, rak, "cmw-collection"))


def test_legacy_platform_profile_and_optional_vsi(iak: SigningKey, rak: SigningKey) -> None:
    p_map, r_map = maps(iak, rak)
    p_map[265] = cca.PLATFORM_PROFILE_LEGACY
    del p_map[2400]
    got = verify_cca(wrap(p_map, r_map, iak, rak), iak.public, NOW)
    assert got.platform.profile == cca.PLATFORM_PROFILE_LEGACY and got.platform.verification_service is None


# -- envelopes -------------------------------------------------------------------------------------


def test_envelope_rules(iak: SigningKey, rak: SigningKey) -> None:
    p_map, r_map = maps(iak, rak)
    p, r = cose.sign1(cbor.dumps(p_map), iak), cose.sign1(cbor.dumps(r_map), rak)
    cases: list[tuple[Any, str]] = [
        (cbor.CBORTag(400, {44234: p, 44241: r}), r"not a CCA token \(want tag 399 or 907\)"),
        ({44234: p, 44241: r}, r"not a CCA token"),
        (cbor.CBORTag(399, [p, r]), r"the collection must be a map"),
        (cbor.CBORTag(399, {44234: p}), r"the realm token \(44241\) is missing"),
        (cbor.CBORTag(907, {44241: [263, r]}), r"the platform token \(44234\) is missing"),
        (cbor.CBORTag(399, {44234: [263, p], 44241: [263, r]}), r"collection entries must be byte strings"),
        (cbor.CBORTag(907, {44234: p, 44241: r}), r"cmw: cca.44234: bytes is not a CMW"),
        (cbor.CBORTag(907, {44234: [264, p], 44241: [263, r]}), r"platform entry must be an application/eat\+cwt"),
        (cbor.CBORTag(907, {44234: [263, p], 44241: [263, r, 0]}), r"ind must be a non-zero uint"),
        (cbor.CBORTag(399, {44234: cbor.dumps(cose.decode_sign1(p).signature), 44241: r}), r"cca platform: "),
        (cbor.CBORTag(399, {44234: p, 44241: cbor.dumps([1, 2, 3, 4])}), r"cca realm: cose: COSE_Sign1 tag"),
    ]
    for item, reason in cases:
        with pytest.raises(MalformedError, match=reason):
            decode_cca(cbor.dumps(item))
        assert cca.sniff(cbor.dumps(item)) in (None, cca.MEDIA_TYPE)


def test_sniff_needs_the_collection_shape(iak: SigningKey, rak: SigningKey) -> None:
    assert cca.sniff(token(iak, rak, "eat-collection")) == cca.MEDIA_TYPE
    assert cca.sniff(token(iak, rak, "cmw-collection")) == cca.MEDIA_TYPE
    assert cca.sniff(cbor.dumps(cbor.CBORTag(399, {1: b""}))) is None
    assert cca.sniff(b"\xd9\x01\x8f") is None
    assert cca.sniff(b"") is None


def test_claims_objects_are_valid_once_built(rak: SigningKey) -> None:
    realm = realm_claims(rak)
    with pytest.raises(MalformedError, match="cca-realm-extensible-measurements"):
        CcaRealmClaims(realm.challenge, realm.personalization_value, realm.initial_measurement, (),
                       realm.hash_algorithm, realm.public_key, realm.public_key_hash_algorithm, realm.profile)
    with pytest.raises(MalformedError, match="cca-realm-public-key"):
        CcaRealmClaims(realm.challenge, realm.personalization_value, realm.initial_measurement,
                       realm.extensible_measurements, realm.hash_algorithm, b"junk",
                       realm.public_key_hash_algorithm, realm.profile)
    with pytest.raises(MalformedError, match="cca-platform-config"):
        CcaPlatformClaims(cca.PLATFORM_PROFILE, bytes(32), bytes(32), b"\x01" + bytes(32), "cfg",  # type: ignore[arg-type]
                          0x3000, (SwComponent(bytes(32), bytes(32)),), "sha-256")


# -- hostile bytes ---------------------------------------------------------------------------------

_SAMPLE = {e: token(SigningKey.generate("ES384"), SigningKey.generate("ES384"), e) for e in ENCODINGS}


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=64) | st.builds(
    lambda enc, cut, junk: _SAMPLE[enc][:cut] + junk + _SAMPLE[enc][cut + len(junk):],
    st.sampled_from(ENCODINGS), st.integers(0, 1200), st.binary(max_size=4)))
def test_hostile_input_only_raises_typed_errors(data: bytes) -> None:
    with contextlib.suppress(Error):
        decode_cca(data)
    assert cca.sniff(data) in (None, cca.MEDIA_TYPE)
