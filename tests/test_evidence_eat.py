"""Generic EAT evidence (CWT and JWT) in our profile. No vector of this profile exists (we define
it), so tokens are built with generated keys; the measured-component layout follows
draft-ietf-rats-eat-measured-component and the claim keys RFC 9711."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from federation import cbor, cose
from federation.algorithms import by_name, raw_sign
from federation.errors import AlgorithmError, BadSignatureError, Error, MalformedError, StaleError, VerificationError
from federation.evidence import sniff
from federation.keys import SigningKey, TrustAnchor, VerificationKey, b64url_encode
from verifiers.local.evidence import eat
from verifiers.local.evidence.eat import EatClaims, MeasuredComponent, Version, decode_eat, encode_eat, verify_eat
from verifiers.local.evidence.measured_component import CBOR_CONTENT_FORMAT, JSON_CONTENT_FORMAT

NOW = datetime(2026, 1, 1, tzinfo=UTC)
T = int(NOW.timestamp())
NONCE = hashlib.sha256(b"session").digest()
FORMATS: tuple[eat.Format, ...] = ("cwt", "jwt")


@pytest.fixture(scope="module")
def key() -> SigningKey:
    return SigningKey.generate("ES256")


def components() -> tuple[MeasuredComponent, ...]:
    return (
        MeasuredComponent("bootloader", "sha-256", hashlib.sha256(b"bl").digest(), version=Version("1.2.3", 16384),
                          authorities=(hashlib.sha256(b"signer").digest(),), flags=bytes(7) + b"\x01"),
        MeasuredComponent("kernel", 7, hashlib.sha384(b"k").digest()),
        MeasuredComponent("config", raw=b"\x00\x01"),
    )


def claims(**changes: Any) -> EatClaims:
    base: dict[str, Any] = {
        "nonces": (NONCE,), "ueid": b"\x01" + bytes(32), "oemid": 4128, "hwmodel": b"board-7",
        "swname": "firmware", "swversion": Version("2.0.1"), "measurements": components(),
        "iat": T - 60, "exp": T + 300,
    }
    return EatClaims(**(base | changes))


# -- round trips -----------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", FORMATS)
def test_round_trip_and_verify(key: SigningKey, fmt: eat.Format) -> None:
    token = encode_eat(claims(), key, fmt=fmt)
    got = verify_eat(token, key.public, NOW)
    assert got.claims == claims() and got.format == fmt and got.algorithm == "ES256"
    assert got.claims.nonce == NONCE and got.claims.profile == eat.PROFILE
    assert [m.name for m in got.claims.measurements] == ["bootloader", "kernel", "config"]
    assert decode_eat(token).claims == got.claims
    media = eat.CWT_MEDIA_TYPE if fmt == "cwt" else eat.JWT_MEDIA_TYPE
    assert sniff(token) == f'{media}; eat_profile="{eat.PROFILE}"'


def test_cwt_wire_form_uses_rfc9711_keys(key: SigningKey) -> None:
    msg = cose.decode_sign1(encode_eat(claims(), key))
    wire = cbor.loads(msg.payload or b"")
    assert set(wire) == {10, 265, 256, 258, 259, 270, 271, 273, 6, 4}
    assert wire[10] == NONCE and wire[271] == ["2.0.1"]
    cf, body = wire[273][0]
    assert cf == CBOR_CONTENT_FORMAT == 295
    assert cbor.loads(body) == {1: ["bootloader", ["1.2.3", 16384]], 2: ["sha-256", hashlib.sha256(b"bl").digest()],
                                3: [hashlib.sha256(b"signer").digest()], 4: bytes(7) + b"\x01"}


def test_jwt_wire_form_uses_rfc9711_names(key: SigningKey) -> None:
    token = encode_eat(claims(), key, fmt="jwt")
    header_b64, payload_b64, _ = token.split(b".")
    header = json.loads(base64.urlsafe_b64decode(header_b64 + b"=="))
    payload = json.loads(base64.urlsafe_b64decode(payload_b64 + b"=="))
    assert header == {"alg": "ES256", "kid": key.kid, "typ": "eat+jwt"}
    assert payload["eat_nonce"] == b64url_encode(NONCE)
    assert payload["ueid"] == b64url_encode(b"\x01" + bytes(32)) and payload["oemid"] == 4128
    cf, body = payload["measurements"][0]
    assert cf == JSON_CONTENT_FORMAT == 296
    assert json.loads(body)["digested-measurement"] == ["sha-256", b64url_encode(hashlib.sha256(b"bl").digest())]


def test_cwt_tag_61_and_both_measurement_carriages(key: SigningKey) -> None:
    wire = claims().to_claims(json_token=False)
    mc = components()[0]
    wire[273] = [mc.to_measurement(json_token=False), mc.to_measurement(json_token=True)]  # CBOR + JSON "tunnel"
    signed = cose.sign1(cbor.dumps(wire), key)
    token = cbor.dumps(cbor.CBORTag(61, cbor.loads(signed)))
    got = verify_eat(token, key.public, NOW)
    assert got.claims.measurements == (mc, mc)
    # and in a JWT, a CBOR component travels as base64url text
    jwt_wire = claims().to_claims(json_token=True)
    jwt_wire["measurements"] = [[CBOR_CONTENT_FORMAT, b64url_encode(cbor.dumps(mc.wire()))]]
    jwt = sign_jwt(jwt_wire, key)
    assert verify_eat(jwt, key.public, NOW).claims.measurements == (mc,)


def test_minimal_token_and_multiple_nonces(key: SigningKey) -> None:
    minimal = EatClaims(nonces=(bytes(8),), profile=None)
    for fmt in FORMATS:
        assert verify_eat(encode_eat(minimal, key, fmt=fmt), key.public, NOW).claims == minimal
    two = claims(nonces=(bytes(8), bytes(64)))
    assert verify_eat(encode_eat(two, key), key.public, NOW).claims.nonces == (bytes(8), bytes(64))
    with pytest.raises(MalformedError, match="2 nonces, want exactly 1"):
        _ = two.nonce


@pytest.mark.parametrize("alg", ["ES384", "EdDSA", "PS256"])
def test_other_algorithms(alg: str) -> None:
    k = SigningKey.generate(alg)
    for fmt in FORMATS:
        assert verify_eat(encode_eat(claims(), k, fmt=fmt), k.public, NOW).algorithm == alg


# -- signatures, keys and time ---------------------------------------------------------------------


@pytest.mark.parametrize("fmt", FORMATS)
def test_wrong_key_is_refused(key: SigningKey, fmt: eat.Format) -> None:
    token = encode_eat(claims(), key, fmt=fmt)
    with pytest.raises(BadSignatureError, match="eat"):
        verify_eat(token, VerificationKey.of(SigningKey.generate("ES256").key.public_key()), NOW)
    assert verify_eat(token, TrustAnchor(keys=(key.public,)), NOW).format == fmt


@pytest.mark.parametrize("fmt", FORMATS)
def test_time_window(key: SigningKey, fmt: eat.Format) -> None:
    token = encode_eat(claims(nbf=T - 10, exp=T + 10), key, fmt=fmt)
    assert verify_eat(token, key.public, NOW).claims.nbf == T - 10
    with pytest.raises(StaleError, match="expired"):
        verify_eat(token, key.public, datetime.fromtimestamp(T + 10, UTC))
    with pytest.raises(StaleError, match="not valid before"):
        verify_eat(token, key.public, datetime.fromtimestamp(T - 11, UTC))


def flips(data: bytes) -> list[bytes]:
    """For every byte, two variants: its low bit and a rotating higher bit changed."""
    return [data[:i] + bytes([data[i] ^ bit]) + data[i + 1:] for i in range(len(data))
            for bit in {1, 1 << (1 + i % 7)}]


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_one_bit_change_anywhere_is_rejected(fmt: eat.Format) -> None:
    k = SigningKey.generate("ES256")
    token = encode_eat(EatClaims(nonces=(NONCE,), ueid=b"\x01" + bytes(32),
                                 measurements=components()[:1]), k, fmt=fmt)
    for variant in flips(token):
        with pytest.raises(Error):
            verify_eat(variant, k.public, NOW)


def sign_jwt(payload: dict[str, Any], key: SigningKey, header: dict[str, Any] | None = None) -> bytes:
    head = header or {"alg": key.algorithm}
    signing_input = (b64url_encode(json.dumps(head).encode()) + "." + b64url_encode(json.dumps(payload).encode()))
    sig = raw_sign(by_name(key.algorithm), key.key, signing_input.encode())
    return (signing_input + "." + b64url_encode(sig)).encode()


def test_jose_header_rules(key: SigningKey) -> None:
    payload = claims().to_claims(json_token=True)
    _, body, _ = sign_jwt(payload, key).split(b".")
    unsigned = b".".join([b64url_encode(b'{"alg":"none"}').encode(), body, b""])
    with pytest.raises(AlgorithmError):
        verify_eat(unsigned, key.public, NOW)
    with pytest.raises(AlgorithmError):
        verify_eat(sign_jwt(payload, key, {"alg": "HS256"}), key.public, NOW)
    with pytest.raises(VerificationError, match="critical"):
        verify_eat(sign_jwt(payload, key, {"alg": "ES256", "crit": ["exp"]}), key.public, NOW)
    with pytest.raises(MalformedError, match="b64"):
        verify_eat(sign_jwt(payload, key, {"alg": "ES256", "b64": False}), key.public, NOW)
    # a key offered by the token itself is never used
    attacker = SigningKey.generate("ES256")
    jwk_header = {"alg": "ES256", "jwk": attacker.public.jwk()}
    with pytest.raises(BadSignatureError):
        verify_eat(sign_jwt(payload, attacker, jwk_header), key.public, NOW)
    with pytest.raises(MalformedError, match="canonical"):
        verify_eat(sign_jwt(payload, key) + b"==", key.public, NOW)


# -- claim rules -----------------------------------------------------------------------------------

CWT_CASES: list[tuple[str, dict[int, Any], tuple[int, ...], str]] = [
    ("nonce-missing", {}, (10,), r"eat: missing mandatory claim\(s\): eat_nonce"),
    ("nonce-short", {10: bytes(7)}, (), r"eat_nonce: length 7 is invalid \(must be between 8 and 64"),
    ("nonce-long", {10: bytes(65)}, (), r"eat_nonce: length 65"),
    ("nonce-array-of-one", {10: [bytes(8)]}, (), r"eat_nonce: an array of nonces must have at least two"),
    ("nonce-text-in-cwt", {10: "abcdefghij"}, (), r"eat_nonce: must be a byte string"),
    ("ueid-long", {256: bytes(34)}, (), r"ueid: length 34"),
    ("ueid-short", {256: bytes(6)}, (), r"ueid: length 6"),
    ("oemid-size", {258: bytes(4)}, (), r"oemid: length 4 is invalid \(must be 3 or 16"),
    ("oemid-negative", {258: -1}, (), r"oemid: value -1 out of range"),
    ("hwmodel-long", {259: bytes(33)}, (), r"hwmodel: length 33"),
    ("swname-type", {270: b"fw"}, (), r"swname: must be a text string"),
    ("swversion-shape", {271: "2.0"}, (), r"swversion: must be \[version, \? scheme\]"),
    ("profile-other", {265: "tag:example.com,2024:other"}, (), r"eat_profile: .* is not this verifier's EAT"),
    ("iat-float", {6: 1.5}, (), r"iat: must be an integer"),
    ("exp-bool", {4: True}, (), r"exp: must be an integer"),
    ("measurements-empty", {273: []}, (), r"measurements: must be an array of 1..256"),
    ("measurement-coswid", {273: [[258, b"\xa0"]]}, (), r"measurements\[0\]: measurement format 258 is not a"),
    ("measurement-shape", {273: [[295]]}, (), r"measurements\[0\]: must be \[content-format, content\]"),
    ("measurement-not-cbor", {273: [[295, b"\xff"]]}, (), r"cbor"),
    ("mc-no-measurement", {273: [[295, cbor.dumps({1: ["x"]})]]}, (), r"exactly one of digested-measurement"),
    ("mc-both", {273: [[295, cbor.dumps({1: ["x"], 2: ["sha-256", bytes(32)], 5: b"r"})]]}, (),
     r"exactly one of digested-measurement and raw-measurement"),
    ("mc-digest-size", {273: [[295, cbor.dumps({1: ["x"], 2: [1, bytes(31)]})]]}, (),
     r"digested-measurement: 1 digest must be 32 bytes, got 31"),
    ("mc-unknown-alg-ok", {273: [[295, cbor.dumps({1: ["x"], 2: [99, bytes(5)]})]]}, (), ""),
    ("mc-flags-size", {273: [[295, cbor.dumps({1: ["x"], 5: b"r", 4: bytes(4)})]]}, (), r"flags: length 4"),
    ("mc-unknown-member", {273: [[295, cbor.dumps({1: ["x"], 5: b"r", 9: 0})]]}, (), r"unknown member"),
    ("mc-no-name", {273: [[295, cbor.dumps({5: b"r"})]]}, (), r"id: must be \[name, \? version\]"),
    ("mc-empty-authorities", {273: [[295, cbor.dumps({1: ["x"], 5: b"r", 3: []})]]}, (),
     r"authorities: must be a non-empty array"),
    ("mc-json-bad", {273: [[296, '{"id": ["x"], "raw-measurement": "***"}']]}, (),
     r"raw-measurement: is not valid base64url"),
]


@pytest.mark.parametrize(("case", "change", "drop", "reason"), CWT_CASES, ids=[c[0] for c in CWT_CASES])
def test_cwt_claim_rules(key: SigningKey, case: str, change: dict[int, Any], drop: tuple[int, ...],
                         reason: str) -> None:
    wire = claims().to_claims(json_token=False) | change
    for k in drop:
        del wire[k]
    token = cose.sign1(cbor.dumps(wire), key)
    if not reason:
        assert verify_eat(token, key.public, NOW).claims.nonces == (NONCE,)
        return
    with pytest.raises(MalformedError, match=reason):
        decode_eat(token)


JWT_CASES: list[tuple[str, dict[str, Any], str]] = [
    ("nonce-not-b64url", {"eat_nonce": "not base64!"}, r"eat_nonce: is not valid base64url"),
    ("nonce-short", {"eat_nonce": b64url_encode(bytes(4))}, r"eat_nonce: length 4"),
    ("ueid-bytes-as-number", {"ueid": 5}, r"ueid: must be a base64url string"),
    ("oemid-ieee-ok", {"oemid": b64url_encode(b"\x00\x1a\x2b")}, ""),
    ("measurement-json-object", {"measurements": [[296, {"id": ["x"]}]]}, r"measurements\[0\]: must be a text"),
    ("profile-oid", {"eat_profile": "1.2.3"}, r"eat_profile: .* is not this verifier's EAT profile"),
]


@pytest.mark.parametrize(("case", "change", "reason"), JWT_CASES, ids=[c[0] for c in JWT_CASES])
def test_jwt_claim_rules(key: SigningKey, case: str, change: dict[str, Any], reason: str) -> None:
    token = sign_jwt(claims().to_claims(json_token=True) | change, key)
    if not reason:
        assert verify_eat(token, key.public, NOW).claims.oemid == b"\x00\x1a\x2b"
        return
    with pytest.raises(MalformedError, match=reason):
        decode_eat(token)


def test_envelope_rules(key: SigningKey) -> None:
    msg = cose.decode_sign1(encode_eat(claims(), key))
    with pytest.raises(MalformedError, match="eat: cose: COSE_Sign1 tag"):
        decode_eat(cbor.dumps([msg.protected_raw, {}, msg.payload, msg.signature]))
    with pytest.raises(MalformedError, match=r"payload is not a claims map"):
        decode_eat(cose.sign1(cbor.dumps([1]), key))
    with pytest.raises(MalformedError, match="claims-set must be a map"):
        decode_eat(sign_jwt([1], key))  # type: ignore[arg-type]
    with pytest.raises(MalformedError, match="three dot-separated parts"):
        decode_eat(b"eyJhbGciOiJFUzI1NiJ9.e30")
    with pytest.raises(MalformedError, match="exceeds"):
        decode_eat(b"ey" + b"A" * eat.MAX_TOKEN + b"..")


def test_claims_objects_are_valid_once_built() -> None:
    with pytest.raises(MalformedError, match="eat_nonce"):
        EatClaims(nonces=())
    with pytest.raises(MalformedError, match="ueid"):
        claims(ueid=b"")
    with pytest.raises(MalformedError, match="digest must be 48 bytes"):
        MeasuredComponent("k", "sha-384", bytes(32))
    with pytest.raises(MalformedError, match="exactly one of"):
        MeasuredComponent("k")


def test_sniff_needs_eat_claims(key: SigningKey) -> None:
    assert eat.sniff(cose.sign1(cbor.dumps({1: "issuer"}), key)) is None
    assert eat.sniff(sign_jwt({"iss": "x"}, key)) is None
    assert eat.sniff(sign_jwt({"eat_nonce": "x"}, key)) == eat.JWT_MEDIA_TYPE
    assert eat.sniff(b"") is None and eat.sniff(b"\x00") is None


# -- hostile bytes ---------------------------------------------------------------------------------

_KEY = SigningKey.generate("ES256")
_SAMPLE = {f: encode_eat(claims(), _KEY, fmt=f) for f in FORMATS}


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=64) | st.builds(
    lambda fmt, cut, junk: _SAMPLE[fmt][:cut] + junk + _SAMPLE[fmt][cut + len(junk):],
    st.sampled_from(FORMATS), st.integers(0, 1000), st.binary(max_size=4)))
def test_hostile_input_only_raises_typed_errors(data: bytes) -> None:
    with contextlib.suppress(Error):
        decode_eat(data)
    assert eat.sniff(data) is None or eat.sniff(data).startswith("application/eat+")  # type: ignore[union-attr]
