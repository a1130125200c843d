"""A second implementation agrees with ours: jwcrypto for JWT, pycose for COSE_Sign1/CWT, in
both directions; and the bounded CBOR decoder refuses what an attacker could send.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import cbor2
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from jwcrypto import jwk as jose_jwk
from jwcrypto import jws as jose_jws
from jwcrypto import jwt as jose_jwt
from pycose.algorithms import EdDSA, Es256, Es384, Ps256
from pycose.headers import KID, Algorithm
from pycose.keys import EC2Key, OKPKey, RSAKey
from pycose.keys.curves import P256, P384, Ed25519
from pycose.messages import Sign1Message

from federation import cbor, cose
from federation.ar4si import Tier, TrustVector
from federation.ear import (
    Appraisal,
    Ear,
    Spelling,
    VerifierId,
    encode_ear,
    from_cbor_claims,
    from_json_claims,
    to_cbor_claims,
    to_json_claims,
    verify_ear,
)
from federation.errors import BadSignatureError, MalformedError
from federation.keys import SigningKey, TrustAnchor, VerificationKey, jwk_to_public, thumbprint

ALGS = ["ES256", "ES384", "EdDSA", "PS256"]
NOW = 1_750_000_000
NONCE = bytes(range(100, 132))


@pytest.fixture(scope="module")
def keys() -> dict[str, SigningKey]:
    return {alg: SigningKey.generate(alg) for alg in ALGS}


@pytest.fixture(scope="module")
def ear() -> Ear:
    return Ear(
        profile="tag:ietf.org,2026:rats/ear#03",
        iat=NOW,
        verifier_id=VerifierId("https://example.org/ratsfed", "0.1.0"),
        submods={
            "PSA_IOT": Appraisal.make(Tier.AFFIRMING, TrustVector.of(
                {"instance-identity": 2, "executables": 2, "hardware": 2}), ("policy:PSA_IOT",)),
            "CCA_REALM": Appraisal.make(Tier.WARNING, TrustVector.of({"executables": 33}), ("policy:CCA",)),
        },
        nonce=NONCE,
        raw_evidence=b"\xde\xad\xbe\xef",
    )


def anchor_of(key: SigningKey) -> TrustAnchor:
    return TrustAnchor((VerificationKey.of(key.key.public_key()),))


# --- JWT: jwcrypto ---------------------------------------------------------------------------------


@pytest.mark.parametrize("spelling", list(Spelling))
@pytest.mark.parametrize("alg", ALGS)
def test_our_jwt_verifies_with_jwcrypto(keys: dict[str, SigningKey], ear: Ear, alg: str,
                                        spelling: Spelling) -> None:
    key = keys[alg]
    token = encode_ear(ear, key, fmt="jwt", spelling=spelling).decode("ascii")
    public = jose_jwk.JWK.from_pyca(key.key.public_key())
    assert public.thumbprint() == thumbprint(key.key.public_key())
    parsed = jose_jwt.JWT(jwt=token, key=public, algs=[alg])
    header = json.loads(parsed.header)
    assert header["alg"] == alg and header["kid"] == key.kid
    claims = json.loads(parsed.claims)
    assert claims == to_json_claims(ear, spelling)
    assert from_json_claims(claims).submods == ear.submods


def test_our_jwt_with_another_key_is_refused_by_jwcrypto(keys: dict[str, SigningKey], ear: Ear) -> None:
    token = encode_ear(ear, keys["ES256"], fmt="jwt").decode("ascii")
    other = jose_jwk.JWK.generate(kty="EC", crv="P-256")
    with pytest.raises(jose_jws.InvalidJWSSignature):
        jose_jwt.JWT(jwt=token, key=other, algs=["ES256"])


def _jwcrypto_key(alg: str) -> jose_jwk.JWK:
    if alg == "ES256":
        return jose_jwk.JWK.generate(kty="EC", crv="P-256")
    if alg == "ES384":
        return jose_jwk.JWK.generate(kty="EC", crv="P-384")
    if alg == "EdDSA":
        return jose_jwk.JWK.generate(kty="OKP", crv="Ed25519")
    return jose_jwk.JWK.generate(kty="RSA", size=2048)


@pytest.mark.parametrize("spelling", list(Spelling))
@pytest.mark.parametrize("alg", ALGS)
def test_jwcrypto_jwt_verifies_with_ours(keys: dict[str, SigningKey], ear: Ear, alg: str,
                                        spelling: Spelling) -> None:
    key = _jwcrypto_key(alg)
    token = jose_jwt.JWT(header={"alg": alg, "typ": "JWT", "kid": key.thumbprint()},
                         claims=json.dumps(to_json_claims(ear, spelling)))
    token.make_signed_token(key)
    # The trust anchor is the exported public JWK, read by our JWK parser.
    public = jwk_to_public(json.loads(key.export_public()))
    anchor = TrustAnchor((VerificationKey.of(public),))
    verified = verify_ear(token.serialize(), anchor, now=NOW, nonce=NONCE)
    assert (verified.format, verified.algorithm) == ("jwt", alg)
    assert verified.key.thumbprint == key.thumbprint()
    assert verified.ear.submods == ear.submods
    assert verified.ear.raw_evidence == ear.raw_evidence
    assert verified.ear.status is Tier.WARNING
    with pytest.raises(BadSignatureError):
        verify_ear(token.serialize(), anchor_of(keys[alg]), now=NOW)  # same algorithm, another key


# --- COSE: pycose ----------------------------------------------------------------------------------


def thaw(value: Any) -> Any:
    """cbor2 >= 6 decodes tag content as tuples/frozen maps, which pycose refuses; undo that."""
    if isinstance(value, tuple | list):
        return [thaw(v) for v in value]
    if isinstance(value, Mapping):
        return {k: thaw(v) for k, v in value.items()}
    return value


def pycose_decode(data: bytes) -> Sign1Message:
    item = cbor2.loads(data)
    assert isinstance(item, cbor2.CBORTag) and item.tag == cose.COSE_SIGN1_TAG
    return Sign1Message.from_cose_obj(thaw(item.value), True)


_COSE_ALG = {"ES256": Es256, "ES384": Es384, "EdDSA": EdDSA, "PS256": Ps256}


def pycose_key(key: ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey | rsa.RSAPrivateKey,
               private: bool) -> Any:
    """A pycose key built from raw numbers of a ``cryptography`` key."""
    if isinstance(key, ec.EllipticCurvePrivateKey):
        size = (key.curve.key_size + 7) // 8
        nums = key.private_numbers()
        pub = nums.public_numbers
        curve = {"secp256r1": P256, "secp384r1": P384}[key.curve.name]
        return EC2Key(crv=curve, x=pub.x.to_bytes(size, "big"), y=pub.y.to_bytes(size, "big"),
                      d=nums.private_value.to_bytes(size, "big") if private else b"")
    if isinstance(key, ed25519.Ed25519PrivateKey):
        x = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        d = key.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
                              serialization.NoEncryption())
        return OKPKey(crv=Ed25519, x=x, d=d if private else b"")

    def b(n: int) -> bytes:
        return n.to_bytes((n.bit_length() + 7) // 8, "big")

    priv = key.private_numbers()
    pub = priv.public_numbers
    if not private:
        return RSAKey(n=b(pub.n), e=b(pub.e))
    return RSAKey(n=b(pub.n), e=b(pub.e), d=b(priv.d), p=b(priv.p), q=b(priv.q), dp=b(priv.dmp1),
                  dq=b(priv.dmq1), qinv=b(priv.iqmp))


@pytest.mark.parametrize("alg", ALGS)
def test_our_cwt_verifies_with_pycose(keys: dict[str, SigningKey], ear: Ear, alg: str) -> None:
    key = keys[alg]
    token = encode_ear(ear, key, fmt="cwt", spelling=Spelling.DRAFT03)
    msg = pycose_decode(token)
    msg.key = pycose_key(key.key, private=False)
    assert msg.verify_signature() is True
    assert msg.phdr[Algorithm] is _COSE_ALG[alg]
    assert msg.phdr[KID] == key.kid.encode()
    claims = cbor2.loads(msg.payload)
    assert claims[10] == NONCE
    assert from_cbor_claims(thaw(claims)).submods == ear.submods
    # pycose answers False (it does not raise) for a key that did not sign.
    msg.key = pycose_key(SigningKey.generate(alg).key, private=False)
    assert msg.verify_signature() is False


@pytest.mark.parametrize("alg", ALGS)
def test_pycose_sign1_verifies_with_ours(keys: dict[str, SigningKey], ear: Ear, alg: str) -> None:
    key = keys[alg]
    payload = cbor.dumps(to_cbor_claims(ear, Spelling.DRAFT03))
    msg = Sign1Message(phdr={Algorithm: _COSE_ALG[alg], KID: b"pycose-signer"}, payload=payload)
    msg.key = pycose_key(key.key, private=True)
    token = msg.encode()
    anchor = anchor_of(key)

    sign1, used = cose.verify_sign1(token, anchor, datetime.fromtimestamp(NOW, UTC))
    assert sign1.payload == payload
    assert sign1.algorithm.name == alg
    assert sign1.kid == "pycose-signer"
    assert used.thumbprint == thumbprint(key.key.public_key())

    verified = verify_ear(token, anchor, now=NOW, nonce=NONCE)
    assert (verified.format, verified.algorithm) == ("cwt", alg)
    assert verified.ear.submods == ear.submods
    assert verified.ear.status is Tier.WARNING

    with pytest.raises(BadSignatureError):
        cose.verify_sign1(token, anchor_of(SigningKey.generate(alg)), datetime.fromtimestamp(NOW, UTC))


def test_pycose_untagged_and_external_aad(keys: dict[str, SigningKey]) -> None:
    key = keys["EdDSA"]
    msg = Sign1Message(phdr={Algorithm: EdDSA}, payload=b"payload", external_aad=b"context")
    msg.key = pycose_key(key.key, private=True)
    untagged = msg.encode(tag=False)
    when = datetime.fromtimestamp(NOW, UTC)
    sign1, _ = cose.verify_sign1(untagged, anchor_of(key), when, external_aad=b"context")
    assert sign1.payload == b"payload"
    with pytest.raises(BadSignatureError):
        cose.verify_sign1(untagged, anchor_of(key), when, external_aad=b"other")
    with pytest.raises(MalformedError):
        cose.decode_sign1(untagged, require_tag=True)


# --- the bounded CBOR decoder ----------------------------------------------------------------------


def test_cbor_round_trip_of_our_encoding() -> None:
    value = {1: [b"\x00\x01", "text", -5, 2**40, None, True, 1.5], "k": {"nested": []}}
    assert cbor.loads(cbor.dumps(value)) == value


@pytest.mark.parametrize("data", [
    pytest.param(bytes.fromhex("0100"), id="int+1"),
    pytest.param(bytes.fromhex("a10102") + b"\xff", id="map+break"),
    pytest.param(cbor2.dumps({1: 2}) + cbor2.dumps({1: 2}), id="two-items"),
])
def test_cbor_rejects_trailing_bytes(data: bytes) -> None:
    with pytest.raises(MalformedError, match="trailing"):
        cbor.loads(data)


@pytest.mark.parametrize("data", [
    pytest.param(bytes.fromhex("a2 01 01 01 02".replace(" ", "")), id="int-keys"),
    pytest.param(bytes.fromhex("a2 61 61 00 61 61 01".replace(" ", "")), id="text-keys"),
    pytest.param(bytes.fromhex("a2 c1 01 00 c1 01 01".replace(" ", "")), id="tagged-keys"),
])
def test_cbor_rejects_duplicate_map_keys(data: bytes) -> None:
    with pytest.raises(MalformedError, match="duplicate"):
        cbor.loads(data)


def test_cbor_nesting_is_bounded() -> None:
    assert cbor.loads(b"\x81" * 15 + b"\x80") == [[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]  # 16 levels: default
    with pytest.raises(MalformedError, match="nesting"):
        cbor.loads(b"\x81" * 16 + b"\x80")
    with pytest.raises(MalformedError, match="nesting"):
        cbor.loads(b"\xa1\x01" * 16 + b"\xa0")
    with pytest.raises(MalformedError, match="nesting"):
        cbor.loads(b"\xc1" * 16 + b"\x80")  # tags count too
    assert cbor.loads(b"\x81\x80", max_depth=2) == [[]]
    with pytest.raises(MalformedError, match="nesting"):
        cbor.loads(b"\x81\x81\x80", max_depth=2)
    with pytest.raises(MalformedError):
        cbor.loads(b"\x81" * 100_000 + b"\x80", max_depth=10**6)  # no RecursionError escapes


@pytest.mark.parametrize(("data", "value"), [
    pytest.param(bytes.fromhex("9f0102ff"), [1, 2], id="array"),
    pytest.param(bytes.fromhex("bf0102ff"), {1: 2}, id="map"),
    pytest.param(bytes.fromhex("5f42010241 03ff"), b"\x01\x02\x03", id="bytes"),
    pytest.param(bytes.fromhex("7f6161 6162ff"), "ab", id="text"),
])
def test_cbor_indefinite_lengths_only_when_allowed(data: bytes, value: Any) -> None:
    with pytest.raises(MalformedError, match="indefinite"):
        cbor.loads(data)
    assert cbor.loads(data, allow_indefinite=True) == value


def test_cbor_indefinite_string_chunks_must_match_type() -> None:
    with pytest.raises(MalformedError):
        cbor.loads(bytes.fromhex("5f6161ff"), allow_indefinite=True)  # text chunk in a byte string


def test_cbor_rejects_every_truncation() -> None:
    full = cbor.dumps({1: [b"\x00" * 30, "some text", -70000, {"k": 1.25}], 266: {"PSA": {1000: 2}}})
    assert cbor.loads(full)
    for cut in range(len(full)):
        with pytest.raises(MalformedError):
            cbor.loads(full[:cut])


def test_cbor_declared_length_beyond_input_is_refused_without_allocating() -> None:
    with pytest.raises(MalformedError):
        cbor.loads(b"\x5b" + (2**63).to_bytes(8, "big") + b"\x00")
    with pytest.raises(MalformedError):
        cbor.loads(b"\x9b" + (2**63).to_bytes(8, "big"))


def test_cbor_size_is_bounded() -> None:
    data = cbor.dumps(b"\x00" * 1000)
    assert cbor.loads(data, max_size=len(data)) == b"\x00" * 1000
    with pytest.raises(MalformedError, match="exceeds"):
        cbor.loads(data, max_size=len(data) - 1)
    with pytest.raises(MalformedError, match="exceeds"):
        cbor.loads(cbor.dumps(b"\x00" * (cbor.DEFAULT_MAX_SIZE + 1)))


@pytest.mark.parametrize("data", [
    pytest.param(b"", id="empty"),
    pytest.param(b"\x1c", id="reserved-ai"),
    pytest.param(b"\xf7", id="undefined"),
    pytest.param(b"\xff", id="lone-break"),
    pytest.param(b"\x62\xc3\x28", id="bad-utf8"),
    pytest.param(b"\xa1\x80\x01", id="array-key"),
    pytest.param(b"\x1f", id="indefinite-int"),
])
def test_cbor_rejects_invalid_items(data: bytes) -> None:
    with pytest.raises(MalformedError):
        cbor.loads(data)


@pytest.mark.parametrize(("data", "tag", "content", "cbor2_value"), [
    pytest.param(bytes.fromhex("c11a514b67b0"), 1, 1363896240, datetime(2013, 3, 21, 20, 4, tzinfo=UTC),
                 id="epoch-1"),
    pytest.param(bytes.fromhex("c249010000000000000000"), 2, bytes.fromhex("010000000000000000"), 2**64,
                 id="bignum-2"),
    pytest.param(bytes.fromhex("d81c820102"), 28, [1, 2], None, id="shareable-28"),
    pytest.param(bytes.fromhex("d81d00"), 29, 0, None, id="sharedref-29"),
    pytest.param(bytes.fromhex("d9010282 0102"), 258, [1, 2], {1, 2}, id="set-258"),
])
def test_cbor_tags_are_returned_raw(data: bytes, tag: int, content: Any, cbor2_value: Any) -> None:
    value = cbor.loads(data)
    assert isinstance(value, cbor.CBORTag)
    assert (value.tag, value.value) == (tag, content)
    if cbor2_value is not None:  # what a semantic decoder would have made of the same bytes
        assert cbor2.loads(data) == cbor2_value
