"""Signed CoRIMs: verification under configured anchors, validity at ``now``, tampering, x5chain.

The real vector (veraison-corim signed-good-corim.cbor) is signed by the PSA IAK
(veraison-services/psa/keys/ec.p256.jwk) with signature-validity 2021-12-31 .. 2025-12-31.
Generated CoRIMs use freshly generated keys and certificates.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import cbor2
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from federation import cbor, cose
from federation.errors import (
    BadSignatureError,
    Error,
    MalformedError,
    StaleError,
    UntrustedKeyError,
    UsageError,
)
from federation.keys import SigningKey, TrustAnchor, VerificationKey, jwk_to_public, load_trust_anchor
from verifiers.local.corim import (
    Corim,
    CorimMeta,
    Validity,
    accept_unsigned,
    decode_corim,
    encode_corim,
    sign_corim,
    verify_corim,
    verify_signed_corim,
)
from verifiers.local.corim.model import ClassMap, Comid, Environment, KeyTriple, Tagged, Triples

INSIDE = datetime(2024, 6, 1, tzinfo=UTC)
NOT_AFTER = datetime(2025, 12, 31, tzinfo=UTC)
NOT_BEFORE = datetime(2021, 12, 31, tzinfo=UTC)


@pytest.fixture(scope="module")
def signed_vector(vectors: Path) -> bytes:
    return (vectors / "veraison-corim/corim/signed-good-corim.cbor").read_bytes()


@pytest.fixture(scope="module")
def iak_anchor(vectors: Path) -> TrustAnchor:
    return load_trust_anchor(vectors / "veraison-services/psa/keys/ec.p256.jwk")


@pytest.fixture(scope="module")
def alt_anchor(vectors: Path) -> TrustAnchor:
    return load_trust_anchor(vectors / "veraison-services/psa/keys/ec.p256.alt.jwk")


# --- the real signed vector --------------------------------------------------------------

def test_signed_vector_verifies_inside_its_validity(signed_vector: bytes, iak_anchor: TrustAnchor,
                                                    vectors: Path) -> None:
    v = verify_signed_corim(signed_vector, [iak_anchor], INSIDE)
    jwk = json.loads((vectors / "veraison-services/psa/keys/ec.p256.jwk").read_text())
    assert v.signed and v.signer_name == "ACME Ltd signing key" and v.signer_uri == "https://acme.example"
    assert v.key_thumbprint == VerificationKey.of(jwk_to_public(jwk)).thumbprint
    assert v.validity == Validity(NOT_BEFORE, NOT_AFTER)
    assert v.corim.id == "test corim id"
    assert v.sha256.startswith("99fcfe7d27304529")


@pytest.mark.parametrize("now", [NOT_BEFORE, NOT_AFTER, INSIDE])
def test_validity_ends_are_inclusive(signed_vector: bytes, iak_anchor: TrustAnchor, now: datetime) -> None:
    verify_signed_corim(signed_vector, [iak_anchor], now)


@pytest.mark.parametrize(("now", "message"), [
    (NOT_AFTER + timedelta(seconds=1), r"signature expired at 2025-12-31T00:00:00\+00:00"),
    (datetime(2026, 11, 28, tzinfo=UTC), r"expired"),
    (NOT_BEFORE - timedelta(seconds=1), r"signature is not valid before 2021-12-31"),
])
def test_signed_vector_is_stale_outside_its_validity(signed_vector: bytes, iak_anchor: TrustAnchor,
                                                     now: datetime, message: str) -> None:
    with pytest.raises(StaleError, match=message) as info:
        verify_signed_corim(signed_vector, [iak_anchor], now)
    assert info.value.reason == "stale"


def test_other_key_is_a_bad_signature(signed_vector: bytes, alt_anchor: TrustAnchor) -> None:
    with pytest.raises(BadSignatureError):
        verify_signed_corim(signed_vector, [alt_anchor], INSIDE)


def test_first_anchor_that_verifies_wins(signed_vector: bytes, iak_anchor: TrustAnchor,
                                          alt_anchor: TrustAnchor) -> None:
    assert verify_signed_corim(signed_vector, [alt_anchor, iak_anchor], INSIDE).signed


def test_no_anchor_means_untrusted(signed_vector: bytes) -> None:
    with pytest.raises(UntrustedKeyError, match="no endorser trust anchor"):
        verify_signed_corim(signed_vector, [], INSIDE)


def test_naive_now_is_a_usage_error(signed_vector: bytes, iak_anchor: TrustAnchor) -> None:
    with pytest.raises(UsageError):
        verify_signed_corim(signed_vector, [iak_anchor], datetime(2024, 6, 1))


def test_every_one_bit_change_is_rejected(signed_vector: bytes, iak_anchor: TrustAnchor) -> None:
    """Flip each bit of the signed CoRIM in turn: no variant verifies."""
    reasons: dict[str, int] = {}
    for bit in range(len(signed_vector) * 8):
        mutated = bytearray(signed_vector)
        mutated[bit // 8] ^= 1 << (bit % 8)
        with pytest.raises(Error) as info:
            verify_signed_corim(bytes(mutated), [iak_anchor], INSIDE)
        reasons[info.value.reason] = reasons.get(info.value.reason, 0) + 1
    assert sum(reasons.values()) == len(signed_vector) * 8
    assert reasons.get("bad-signature", 0) > len(signed_vector) * 4  # mostly: the signature catches it


# --- unsigned input -------------------------------------------------------------------------

def test_unsigned_needs_the_operator_mark(vectors: Path, iak_anchor: TrustAnchor) -> None:
    data = (vectors / "veraison-corim/corim/unsigned-good-corim.cbor").read_bytes()
    with pytest.raises(UntrustedKeyError, match="not marked as trusted local input"):
        verify_corim(data, [iak_anchor], INSIDE)
    v = verify_corim(data, [iak_anchor], INSIDE, trust_unsigned=True)
    assert not v.signed and v.signer_name is None and v.key_thumbprint is None


def test_verify_corim_dispatches_signed(signed_vector: bytes, iak_anchor: TrustAnchor) -> None:
    assert verify_corim(signed_vector, [iak_anchor], INSIDE).signer_name == "ACME Ltd signing key"
    with pytest.raises(MalformedError, match="neither an unsigned CoRIM"):
        verify_corim(b"\xa0", [iak_anchor], INSIDE)


def _corim(**extra: Any) -> Corim:
    env = Environment(ClassMap(Tagged("bytes", b"\x01" * 32, 560)), Tagged("ueid", b"\x01" + b"\x02" * 32, 550))
    comid = Comid("comid", Triples(attest_key=(KeyTriple(env, (Tagged("pkix-base64-key", "PEM", 554),)),)))
    return Corim("generated", (comid,), **extra)


def test_rim_validity_applies_to_unsigned_local_input() -> None:
    corim = _corim(rim_validity=Validity(None, INSIDE))
    assert accept_unsigned(encode_corim(corim), INSIDE).validity == Validity(None, INSIDE)
    with pytest.raises(StaleError, match="rim-validity"):
        accept_unsigned(encode_corim(corim), INSIDE + timedelta(days=1))


# --- generated signed CoRIMs ----------------------------------------------------------------

@pytest.fixture(scope="module")
def key() -> SigningKey:
    return SigningKey.generate("ES256")


def _anchor(key: SigningKey) -> TrustAnchor:
    return TrustAnchor((key.public,))


META = CorimMeta("Generated Endorser", "https://endorser.example", Validity(NOT_BEFORE, NOT_AFTER))


def test_generated_corim_meta_round_trip(key: SigningKey) -> None:
    data = sign_corim(_corim(), key, META)
    v = verify_signed_corim(data, [_anchor(key)], INSIDE)
    assert (v.signer_name, v.signer_uri, v.key_thumbprint) == (META.signer_name, META.signer_uri,
                                                               key.public.thumbprint)
    assert v.corim == _corim()


def test_generated_cwt_claims(key: SigningKey) -> None:
    data = sign_corim(_corim(), key, META, cwt_claims=True)
    assert 15 in cbor2.loads(cbor2.loads(data).value[0]) and 8 not in cbor2.loads(cbor2.loads(data).value[0])
    assert verify_signed_corim(data, [_anchor(key)], INSIDE).signer_name == "Generated Endorser"
    with pytest.raises(StaleError):
        verify_signed_corim(data, [_anchor(key)], NOT_AFTER + timedelta(seconds=1))


def test_rim_validity_is_enforced_inside_signature_validity(key: SigningKey) -> None:
    data = sign_corim(_corim(rim_validity=Validity(None, INSIDE)), key, META)
    v = verify_signed_corim(data, [_anchor(key)], INSIDE)
    assert v.validity == Validity(NOT_BEFORE, INSIDE)  # the intersection of both windows
    with pytest.raises(StaleError, match="rim-validity"):
        verify_signed_corim(data, [_anchor(key)], INSIDE + timedelta(days=1))


def _sign_raw(key: SigningKey, payload: bytes, header: dict[int, Any], *, content_type: str | None
              = "application/rim+cbor") -> bytes:
    return cose.sign1(payload, key, content_type=content_type, extra_protected=header)


META_HEADER = {8: cbor.dumps({0: {0: "X"}})}


@pytest.mark.parametrize(("header", "content_type", "message"), [
    ({}, "application/rim+cbor", r"neither corim-meta \(8\) nor CWT-Claims \(15\)"),
    (META_HEADER, None, r"content-type must be 'application/rim\+cbor', got None"),
    (META_HEADER, "application/cbor", r"content-type must be"),
    ({**META_HEADER, 258: -16}, "application/rim+cbor", r"hash-envelope payloads are not supported"),
    ({**META_HEADER, 15: {1: "Y"}}, "application/rim+cbor", r"CWT iss 'Y' differs from signer-name 'X'"),
    ({8: cbor.dumps({0: {0: "X"}, 1: {1: cbor2.CBORTag(1, 10)}}), 15: {1: "X", 4: 11}}, "application/rim+cbor",
     r"CWT nbf/exp differ from corim-meta signature-validity"),
    ({8: b"\xa0"}, "application/rim+cbor", r"corim-meta: signer is missing"),
    ({15: {2: "no issuer"}}, "application/rim+cbor", r"CWT-Claims: iss is missing"),
])
def test_header_rules(key: SigningKey, header: dict[int, Any], content_type: str | None, message: str) -> None:
    data = _sign_raw(key, encode_corim(_corim()), header, content_type=content_type)
    with pytest.raises(MalformedError, match=message):
        verify_signed_corim(data, [_anchor(key)], INSIDE)


def test_consistent_corim_meta_and_cwt_claims_are_accepted(key: SigningKey) -> None:
    header = {8: cbor.dumps({0: {0: "X"}, 1: {0: cbor2.CBORTag(1, 10), 1: cbor2.CBORTag(1, 4_000_000_000)}}),
              15: {1: "X", 5: 10, 4: 4_000_000_000}}
    assert verify_signed_corim(_sign_raw(key, encode_corim(_corim()), header), [_anchor(key)], INSIDE).signer_name \
        == "X"


def test_detached_payload_is_refused(key: SigningKey) -> None:
    data = cbor2.loads(sign_corim(_corim(), key, META))
    detached = cbor2.dumps(cbor2.CBORTag(18, [data.value[0], {}, None, data.value[3]]))
    with pytest.raises(MalformedError, match="detached payloads are not supported"):
        verify_signed_corim(detached, [_anchor(key)], INSIDE)


def test_payload_must_be_a_corim(key: SigningKey) -> None:
    data = _sign_raw(key, cbor.dumps({"not": "a corim"}), META_HEADER)
    with pytest.raises(MalformedError, match="expected tag 501"):
        verify_signed_corim(data, [_anchor(key)], INSIDE)


def test_signature_is_checked_before_the_payload_is_parsed(key: SigningKey) -> None:
    """A forged envelope around garbage reports bad-signature, not a parse error from the payload."""
    other = SigningKey.of(SigningKey.generate("ES256").key, "ES256", kid=key.kid)  # same kid, other key
    data = _sign_raw(other, b"\xff\xff garbage", META_HEADER)
    with pytest.raises(BadSignatureError):
        verify_signed_corim(data, [_anchor(key)], INSIDE)


def test_untagged_sign1_is_refused(key: SigningKey) -> None:
    untagged = cbor2.dumps(cbor2.loads(sign_corim(_corim(), key, META)).value)
    with pytest.raises(MalformedError, match=r"COSE_Sign1 \(tag 18\)"):
        verify_signed_corim(untagged, [_anchor(key)], INSIDE)


# --- x5chain --------------------------------------------------------------------------------

def _cert(subject: str, key: ec.EllipticCurvePrivateKey, issuer: str, issuer_key: ec.EllipticCurvePrivateKey, *,
          ca: bool, not_after: datetime) -> x509.Certificate:
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
        .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer)]))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOT_BEFORE)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()), critical=False)
    )
    if ca:
        builder = builder.add_extension(
            x509.KeyUsage(digital_signature=False, content_commitment=False, key_encipherment=False,
                          data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
                          encipher_only=False, decipher_only=False), critical=True)
    return builder.sign(issuer_key, hashes.SHA256())


@pytest.fixture(scope="module")
def pki() -> tuple[x509.Certificate, x509.Certificate, SigningKey]:
    root_key, leaf_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    root = _cert("Endorser Root", root_key, "Endorser Root", root_key, ca=True, not_after=NOT_AFTER)
    leaf = _cert("Endorser Signer", leaf_key, "Endorser Root", root_key, ca=False, not_after=NOT_AFTER)
    return root, leaf, SigningKey.of(leaf_key, "ES256")


def test_x5chain_to_a_configured_root(pki: tuple[x509.Certificate, x509.Certificate, SigningKey]) -> None:
    root, leaf, leaf_key = pki
    data = sign_corim(_corim(), leaf_key, META, x5chain=[leaf.public_bytes(serialization.Encoding.DER)])
    v = verify_signed_corim(data, [TrustAnchor(roots=(root,))], INSIDE)
    assert v.key_thumbprint == leaf_key.public.thumbprint


def test_x5chain_to_another_root_is_untrusted(pki: tuple[x509.Certificate, x509.Certificate, SigningKey]) -> None:
    _, leaf, leaf_key = pki
    other_key = ec.generate_private_key(ec.SECP256R1())
    other = _cert("Other Root", other_key, "Other Root", other_key, ca=True, not_after=NOT_AFTER)
    data = sign_corim(_corim(), leaf_key, META, x5chain=[leaf.public_bytes(serialization.Encoding.DER)])
    with pytest.raises(UntrustedKeyError):
        verify_signed_corim(data, [TrustAnchor(roots=(other,))], INSIDE)


def test_x5chain_outside_certificate_validity(pki: tuple[x509.Certificate, x509.Certificate, SigningKey]) -> None:
    root, leaf, leaf_key = pki
    meta = CorimMeta("Generated Endorser")  # no signature-validity: only the chain bounds time
    data = sign_corim(_corim(), leaf_key, meta, x5chain=[leaf.public_bytes(serialization.Encoding.DER)])
    assert verify_signed_corim(data, [TrustAnchor(roots=(root,))], INSIDE).validity is None
    with pytest.raises(UntrustedKeyError):
        verify_signed_corim(data, [TrustAnchor(roots=(root,))], NOT_AFTER + timedelta(days=1))


def test_decode_of_generated_corim(key: SigningKey) -> None:
    assert decode_corim(encode_corim(_corim())) == _corim()
