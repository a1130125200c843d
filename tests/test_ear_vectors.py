"""EAR vectors from veraison/ear, veraison/services and the EAR draft decode to what their
SOURCES.md says; signed vectors verify, and every tampered or out-of-policy token is refused
with the specific typed error.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import shutil
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import cbor_diag
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from federation import cbor, cose
from federation.algorithms import by_name, raw_sign, raw_verify
from federation.ar4si import Tier, TrustVector
from federation.ear import (
    Appraisal,
    Ear,
    Spelling,
    VerifierId,
    encode_ear,
    from_cbor_claims,
    from_json_claims,
    nonce_matches,
    peek_claims,
    to_cbor_claims,
    verify_ear,
)
from federation.errors import (
    AlgorithmError,
    BadSignatureError,
    ConfigError,
    Error,
    MalformedError,
    NonceMismatchError,
    StaleError,
    UntrustedKeyError,
    VerificationError,
)
from federation.keys import (
    SigningKey,
    TrustAnchor,
    VerificationKey,
    b64url_decode,
    b64url_encode,
    load_signing_key,
    load_trust_anchor,
    public_to_jwk,
    thumbprint,
)

PROFILE_VERAISON = "tag:github.com,2023:veraison/ear"
PROFILE_02 = "tag:ietf.org,2025-07:ear"
PROFILE_03 = "tag:ietf.org,2026:rats/ear#03"
POLICY = "https://veraison.example/policy/1/60a0068d"
VTS = ("https://veraison-project.org", "vts 0.0.1")
ACME = ("Acme Inc.", "rrtrap-v1.0.0")
TRISECT = b"74726973656374\n"  # base64url "NzQ3MjY5NzM2NTYzNzQK"
AFF, WARN, CONTRA, NONE = Tier.AFFIRMING, Tier.WARNING, Tier.CONTRAINDICATED, Tier.NONE
ANNOTATED = "ear_veraison_annotated_evidence"
POLICY_CLAIMS = "ear_veraison_policy_claims"
KEY_ATTESTATION = "ear_veraison_key_attestation"
TEEP = "ear_teep_claims"


@dataclass(frozen=True)
class Sub:
    status: Tier
    vector: dict[str, int] | None
    policy: tuple[str, ...]
    extensions: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Expect:
    iat: int
    verifier: tuple[str, str]
    submods: dict[str, Sub]
    raw_evidence: bytes | None = None
    extra: frozenset[str] = field(default_factory=frozenset)


def check(ear: Ear, want: Expect, profile: str) -> None:
    assert ear.profile == profile
    assert ear.iat == want.iat
    assert ear.verifier_id == VerifierId(*want.verifier)
    assert ear.raw_evidence == want.raw_evidence
    assert set(ear.extra) == want.extra
    assert set(ear.submods) == set(want.submods)
    for name, sub in want.submods.items():
        got = ear.submods[name]
        assert got.status is sub.status, name
        assert got.reported_status is None, "the issuer's status is consistent with its vector"
        assert (got.trust_vector.as_dict() if got.trust_vector is not None else None) == sub.vector
        assert got.policy_ids == sub.policy
        assert set(got.extensions) == sub.extensions
    worst = min((s.status for s in want.submods.values()), key=lambda t: t.rank)
    assert ear.status is worst


# --- veraison/ear arc/data (unsigned JSON claims-sets, dotted names) -------------------------------

VERAISON_EAR: dict[str, Expect] = {
    "ear-claims.json": Expect(
        1666091373, ACME, {"test": Sub(AFF, None, (POLICY,))}),
    "ear-claims-tv-ok.json": Expect(
        1666091373, ACME,
        {"test": Sub(AFF, {"instance-identity": 2, "configuration": 2, "executables": 3, "file-system": 2,
                           "hardware": 2, "runtime-opaque": 2, "storage-opaque": 2, "sourced-data": 2},
                     (POLICY,))},
        raw_evidence=bytes.fromhex("deadbeef")),
    "ear-claims-extension-ok.json": Expect(
        1666091373, ACME, {"test": Sub(AFF, None, ("policy://test/01234",))},
        extra=frozenset({"ear.veraison.annotated-evidence", "ear.veraison.policy-claims"})),
    "ear-claims-key-attestation-ok.json": Expect(
        1666529184, VTS,
        {"PARSEC_TPM": Sub(AFF, {"instance-identity": 2, "executables": 2, "hardware": 2},
                           ("policy://parsec/60a0068d",), frozenset({KEY_ATTESTATION}))},
        raw_evidence=TRISECT),
    "ear-claims-key-attestation-ko.json": Expect(
        1666529184, VTS,
        {"PARSEC_TPM": Sub(CONTRA, {"instance-identity": 2, "executables": 96, "hardware": 2},
                           ("policy://parsec/60a0068d",), frozenset({KEY_ATTESTATION}))},
        raw_evidence=TRISECT),
}
VERAISON_EAR_OTHER = {"SOURCES.md", "pkey.json", "skey.json"}

# --- draft-ietf-rats-ear cddl/examples (same content at -02 and -03, different spelling) -----------

_PSA_CONTRA = {"instance-identity": 2, "executables": 96, "hardware": 2}
_PSA_AFF4 = {"instance-identity": 2, "configuration": 2, "executables": 2, "hardware": 2}
IETF_EAR: dict[str, Expect] = {
    "ear-json-1.diag": Expect(1666529184, VTS, {"PSA": Sub(CONTRA, _PSA_CONTRA, (POLICY,))},
                              raw_evidence=TRISECT),
    "ear-cbor-1.diag": Expect(1666529184, VTS, {"PSA": Sub(CONTRA, _PSA_CONTRA, (POLICY,))},
                              raw_evidence=b"lifeboatman"),
    "ear-json-2.diag": Expect(
        1666529300, VTS,
        {"CCA Platform": Sub(AFF, {"instance-identity": 2, "executables": 2, "hardware": 2}, (POLICY,)),
         "CCA Realm": Sub(AFF, {"instance-identity": 2}, (POLICY,))},
        raw_evidence=TRISECT * 2),
    "ext-veraison-json-1.diag": Expect(
        1666529184, VTS,
        {"PSA_IOT": Sub(CONTRA, _PSA_CONTRA, (POLICY,), frozenset({ANNOTATED, POLICY_CLAIMS}))},
        raw_evidence=TRISECT),
    # Status 0 (none) with an affirming-only vector: none must stay none, never be raised.
    "ext-veraison-cbor-1.diag": Expect(
        1666529184, VTS,
        {"PSA_IOT": Sub(NONE, _PSA_AFF4, (POLICY,), frozenset({ANNOTATED, POLICY_CLAIMS}))},
        raw_evidence=b"lifeboatman"),
    "ext-veraison-json-2.diag": Expect(
        1666529184, VTS,
        {"PARSEC_TPM": Sub(AFF, {"instance-identity": 2, "executables": 2, "hardware": 2}, (POLICY,),
                           frozenset({KEY_ATTESTATION}))},
        raw_evidence=TRISECT),
    "ext-teep-json-1.diag": Expect(
        1666529184, VTS, {"PSA": Sub(CONTRA, _PSA_CONTRA, (POLICY,), frozenset({TEEP}))},
        raw_evidence=TRISECT),
    "ext-teep-cbor-1.diag": Expect(
        1666529184, VTS, {"PSA": Sub(NONE, _PSA_AFF4, (POLICY,), frozenset({TEEP}))},
        raw_evidence=b"lifeboatman"),
}
DRAFTS = {"draft-02": PROFILE_02, "draft-03": PROFILE_03}


def veraison_claims(vectors: Path, name: str) -> Ear:
    return from_json_claims(json.loads((vectors / "veraison-ear" / name).read_bytes()))


def load_diag(path: Path) -> tuple[str, Any]:
    """A .diag file is either JSON (JSON-in-diag) or CBOR diagnostic notation."""
    text = path.read_text(encoding="utf-8")
    try:
        return "json", json.loads(text)
    except json.JSONDecodeError:
        return "cbor", cbor.loads(cbor_diag.diag2cbor(text))


def decode_diag(path: Path) -> tuple[str, Any, Ear]:
    kind, claims = load_diag(path)
    ear = from_json_claims(claims) if kind == "json" else from_cbor_claims(claims)
    return kind, claims, ear


def test_every_vector_file_has_an_expectation(vectors: Path) -> None:
    assert {p.name for p in (vectors / "veraison-ear").iterdir()} == set(VERAISON_EAR) | VERAISON_EAR_OTHER
    for draft in DRAFTS:
        assert {p.name for p in (vectors / "ietf-rats-ear" / draft).iterdir()} == set(IETF_EAR)
    assert {p.name for p in (vectors / "ietf-rats-ear").iterdir()} == {
        "SOURCES.md", "opa-appendix-ear.jwt", *DRAFTS}
    assert {p.name for p in (vectors / "veraison-services" / "ear").iterdir()} == {
        "skey.jwk", "verifier.jwk", "walkthrough-psa-ear.jwt"}


@pytest.mark.parametrize("name", sorted(VERAISON_EAR))
def test_veraison_ear_claims_decode(vectors: Path, name: str) -> None:
    ear = veraison_claims(vectors, name)
    check(ear, VERAISON_EAR[name], PROFILE_VERAISON)


def test_veraison_extension_claims_at_top_level_are_kept_not_interpreted(vectors: Path) -> None:
    ear = veraison_claims(vectors, "ear-claims-extension-ok.json")
    assert ear.extra == {"ear.veraison.annotated-evidence": {"k1": "v1", "k2": "v2"},
                         "ear.veraison.policy-claims": {"foo": "bar", "bar": "baz"}}
    assert ear.submods["test"].extensions == {}


def test_key_attestation_akpub_is_a_p256_key_and_ko_has_none(vectors: Path) -> None:
    ok = veraison_claims(vectors, "ear-claims-key-attestation-ok.json")
    akpub = ok.submods["PARSEC_TPM"].extensions[KEY_ATTESTATION]["akpub"]
    key = serialization.load_der_public_key(b64url_decode(akpub))
    assert isinstance(key, ec.EllipticCurvePublicKey)
    assert key.curve.name == "secp256r1"
    ko = veraison_claims(vectors, "ear-claims-key-attestation-ko.json")
    assert ko.submods["PARSEC_TPM"].extensions[KEY_ATTESTATION] == {}
    assert ko.status is CONTRA


@pytest.mark.parametrize("draft", sorted(DRAFTS))
@pytest.mark.parametrize("name", sorted(IETF_EAR))
def test_ietf_ear_examples_decode(vectors: Path, draft: str, name: str) -> None:
    kind, _, ear = decode_diag(vectors / "ietf-rats-ear" / draft / name)
    assert kind == ("cbor" if "-cbor-" in name else "json")
    check(ear, IETF_EAR[name], DRAFTS[draft])


@pytest.mark.parametrize("name", sorted(n for n in IETF_EAR if "-json-" in n))
def test_ietf_json_spellings_differ_but_decode_alike(vectors: Path, name: str) -> None:
    _, raw02, ear02 = decode_diag(vectors / "ietf-rats-ear" / "draft-02" / name)
    _, raw03, ear03 = decode_diag(vectors / "ietf-rats-ear" / "draft-03" / name)
    assert "ear.verifier-id" in raw02 and "ear_verifier_id" not in raw02
    assert "ear_verifier_id" in raw03 and "ear.verifier-id" not in raw03
    for sub02, sub03 in zip(raw02["submods"].values(), raw03["submods"].values(), strict=True):
        assert isinstance(sub02["ear.appraisal-policy-id"], str) and "ear.status" in sub02
        assert isinstance(sub03["ear_appraisal_policy_ids"], list) and "ear_status" in sub03
    assert replace(ear02, profile=PROFILE_03) == ear03


@pytest.mark.parametrize("name", sorted(n for n in IETF_EAR if "-cbor-" in n))
def test_ietf_cbor_policy_id_text_in_02_array_in_03(vectors: Path, name: str) -> None:
    _, raw02, ear02 = decode_diag(vectors / "ietf-rats-ear" / "draft-02" / name)
    _, raw03, ear03 = decode_diag(vectors / "ietf-rats-ear" / "draft-03" / name)
    sub = next(iter(raw02[266]))
    assert raw02[266][sub][1003] == POLICY
    assert raw03[266][sub][1003] == [POLICY]
    assert replace(ear02, profile=PROFILE_03) == ear03


@pytest.mark.parametrize("draft", sorted(DRAFTS))
def test_ietf_cbor_equivalent_of_json_has_same_appraisal(vectors: Path, draft: str) -> None:
    _, _, js = decode_diag(vectors / "ietf-rats-ear" / draft / "ear-json-1.diag")
    _, _, cb = decode_diag(vectors / "ietf-rats-ear" / draft / "ear-cbor-1.diag")
    assert cb.submods == js.submods
    assert (cb.profile, cb.iat, cb.verifier_id) == (js.profile, js.iat, js.verifier_id)


@pytest.mark.parametrize("draft", sorted(DRAFTS))
def test_ietf_none_status_is_never_raised_by_affirming_claims(vectors: Path, draft: str) -> None:
    for name, sub in (("ext-veraison-cbor-1.diag", "PSA_IOT"), ("ext-teep-cbor-1.diag", "PSA")):
        _, raw, ear = decode_diag(vectors / "ietf-rats-ear" / draft / name)
        assert raw[266][sub][1000] == 0
        appraisal = ear.submods[sub]
        assert appraisal.trust_vector is not None
        assert appraisal.trust_vector.worst_tier() is AFF
        assert appraisal.status is NONE
        assert ear.status is NONE


@pytest.mark.parametrize("draft", sorted(DRAFTS))
def test_ietf_extension_values_are_carried(vectors: Path, draft: str) -> None:
    d = vectors / "ietf-rats-ear" / draft
    for name in ("ext-veraison-json-1.diag", "ext-veraison-cbor-1.diag"):
        ext = decode_diag(d / name)[2].submods["PSA_IOT"].extensions
        assert ext[ANNOTATED]["psa-security-lifecycle"] == 12288
        assert ext[ANNOTATED]["eat-profile"] == "http://arm.com/psa/2.0.0"
        assert len(ext[ANNOTATED]["psa-software-components"]) == 2
        assert ext[POLICY_CLAIMS]["psa-certified"]["test-lab"] == "Riscure"
    akpub = decode_diag(d / "ext-veraison-json-2.diag")[2].submods["PARSEC_TPM"].extensions[KEY_ATTESTATION]
    assert akpub == {"akpub": "MFkwEwYHKoZIzj0CAQYIKoZIz___"}
    teep_cbor = decode_diag(d / "ext-teep-cbor-1.diag")[2].submods["PSA"].extensions[TEEP]
    assert teep_cbor[10] == bytes.fromhex("948f8860d13a463e")
    assert teep_cbor[258] == 64242
    assert teep_cbor[260] == ["1.2.5", 16384]
    teep_json = decode_diag(d / "ext-teep-json-1.diag")[2].submods["PSA"].extensions[TEEP]
    assert teep_json["oemid"] == "Av8B"
    assert teep_json["hwversion"] == ["1.2.5", 16384]


# --- signed vectors --------------------------------------------------------------------------------

WALKTHROUGH_IAT = 1706023979
WALKTHROUGH_NONCE = "FeiBL0Ys0yvXiBbAFMs1OHDXXtw08RGq_SESJdSaXPsKk2A8_AruL45Z8QqukT8o"


@pytest.fixture(scope="module")
def veraison_anchor(vectors: Path) -> TrustAnchor:
    return load_trust_anchor(vectors / "veraison-services" / "ear" / "verifier.jwk")


@pytest.fixture(scope="module")
def walkthrough(vectors: Path) -> bytes:
    return (vectors / "veraison-services" / "ear" / "walkthrough-psa-ear.jwt").read_bytes()


def test_walkthrough_jwt_verifies_with_veraison_key(walkthrough: bytes, veraison_anchor: TrustAnchor) -> None:
    nonce = b64url_decode(WALKTHROUGH_NONCE)
    assert len(nonce) == 48
    v = verify_ear(walkthrough, veraison_anchor, now=WALKTHROUGH_IAT, nonce=nonce)
    assert (v.format, v.algorithm) == ("jwt", "ES256")
    assert v.key.thumbprint == veraison_anchor.keys[0].thumbprint
    ear = v.ear
    assert ear.profile == PROFILE_VERAISON
    assert ear.iat == WALKTHROUGH_IAT
    assert ear.exp is None
    assert ear.verifier_id == VerifierId("Veraison Project", "N/A")
    assert ear.nonce == WALKTHROUGH_NONCE
    assert list(ear.submods) == ["PSA_IOT"]
    psa = ear.submods["PSA_IOT"]
    assert psa.status is AFF and ear.status is AFF
    assert psa.trust_vector is not None
    assert psa.trust_vector.as_dict() == {
        "instance-identity": 2, "configuration": 0, "executables": 2, "file-system": 0, "hardware": 2,
        "runtime-opaque": 2, "storage-opaque": 2, "sourced-data": 0}
    assert psa.policy_ids == ("policy:PSA_IOT",)
    annotated = psa.extensions[ANNOTATED]
    assert annotated["psa-security-lifecycle"] == 12288
    # The evidence's nonce (standard base64) is the same bytes the EAR echoes (base64url).
    assert base64.b64decode(annotated["psa-nonce"]) == nonce
    assert nonce_matches(annotated["psa-nonce"], nonce)


def test_opa_appendix_jwt_signature_is_good_but_float_iat_is_refused(
        vectors: Path, veraison_anchor: TrustAnchor) -> None:
    token = (vectors / "ietf-rats-ear" / "opa-appendix-ear.jwt").read_bytes()
    head, payload, sig = token.split(b".")
    # The signature itself is good under the published Veraison key ...
    raw_verify(by_name("ES256"), veraison_anchor.keys[0].key, head + b"." + payload, b64url_decode(sig))
    _, claims = peek_claims(token)
    assert claims["iat"] == 1666529184.0 and isinstance(claims["iat"], float)
    assert claims["submods"]["PARSEC_TPM"]["ear.status"] == "affirming"
    # ... but an EAR with a floating-point iat is malformed (EAT §4.3.1, EAR -03).
    with pytest.raises(MalformedError, match="floating point"):
        verify_ear(token, veraison_anchor, now=claims["nbf"])


def test_signing_key_file_readable_by_others_is_refused(vectors: Path) -> None:
    path = vectors / "veraison-ear" / "skey.json"
    assert path.stat().st_mode & 0o077
    with pytest.raises(ConfigError, match="chmod 600"):
        load_signing_key(path)


@pytest.fixture(scope="module")
def veraison_key(vectors: Path, tmp_path_factory: pytest.TempPathFactory) -> SigningKey:
    private = tmp_path_factory.mktemp("keys") / "skey.json"
    shutil.copyfile(vectors / "veraison-ear" / "skey.json", private)
    os.chmod(private, 0o600)
    return load_signing_key(private, algorithm="ES256")


@pytest.fixture(scope="module")
def pkey_anchor(vectors: Path) -> TrustAnchor:
    return load_trust_anchor(vectors / "veraison-ear" / "pkey.json")


@pytest.mark.parametrize("spelling", list(Spelling))
@pytest.mark.parametrize("fmt", ["jwt", "cwt"])
@pytest.mark.parametrize("name", sorted(VERAISON_EAR))
def test_veraison_claims_signed_with_skey_verify_with_pkey(
        vectors: Path, veraison_key: SigningKey, pkey_anchor: TrustAnchor, name: str, fmt: str,
        spelling: Spelling) -> None:
    original = veraison_claims(vectors, name)
    token = encode_ear(original, veraison_key, fmt=fmt, spelling=spelling)  # type: ignore[arg-type]
    v = verify_ear(token, pkey_anchor, now=original.iat)
    assert (v.format, v.algorithm) == (fmt, "ES256")
    assert v.key.thumbprint == thumbprint(veraison_key.key.public_key())
    got = v.ear
    assert (got.profile, got.iat, got.verifier_id, got.raw_evidence) == (
        original.profile, original.iat, original.verifier_id, original.raw_evidence)
    assert got.submods == original.submods
    # Top-level claims named by text only (no CBOR key) travel in a JWT, not in a CWT.
    check(got, replace(VERAISON_EAR[name], extra=VERAISON_EAR[name].extra if fmt == "jwt" else frozenset()),
          PROFILE_VERAISON)
    _, claims = peek_claims(token)
    sub = next(iter(claims["submods" if fmt == "jwt" else 266].values()))
    if fmt == "jwt":
        assert got.extra == original.extra
        if spelling is Spelling.DRAFT03:
            assert "ear_verifier_id" in claims and claims["ear_status"] == original.status.label
            assert isinstance(sub["ear_appraisal_policy_ids"], list)
        else:
            assert "ear.verifier-id" in claims and "ear_status" not in claims
            assert isinstance(sub["ear.appraisal-policy-id"], str)
    else:
        assert claims[1004] == {0: original.verifier_id.developer, 1: original.verifier_id.build}
        assert sub[1000] == original.submods[next(iter(original.submods))].status.code
        assert isinstance(sub[1003], list if spelling is Spelling.DRAFT03 else str)
        assert (1000 in claims) is (spelling is Spelling.DRAFT03)


@pytest.mark.parametrize("fmt", ["jwt", "cwt"])
def test_walkthrough_resigned_keeps_nonce_binding(
        walkthrough: bytes, veraison_anchor: TrustAnchor, fmt: str) -> None:
    """A JSON EAR's base64url nonce re-issued as CWT must carry the nonce bytes, not the text."""
    ear = verify_ear(walkthrough, veraison_anchor, now=WALKTHROUGH_IAT).ear
    key = SigningKey.generate("ES256")
    token = encode_ear(ear, key, fmt=fmt)  # type: ignore[arg-type]
    nonce = b64url_decode(WALKTHROUGH_NONCE)
    v = verify_ear(token, TrustAnchor((key.public,)), now=WALKTHROUGH_IAT, nonce=nonce)
    assert v.ear.submods == ear.submods
    with pytest.raises(NonceMismatchError):
        verify_ear(token, TrustAnchor((key.public,)), now=WALKTHROUGH_IAT, nonce=bytes(48))


# --- tamper: one flipped bit anywhere in a signed token must never verify --------------------------


def _outcome(token: bytes, anchor: TrustAnchor, now: int) -> type[Error] | None:
    """The error class verification raised, or None if it (wrongly) succeeded.
    Any exception that is not a federation Error propagates and fails the test."""
    try:
        verify_ear(token, anchor, now=now)
    except Error as exc:
        return type(exc)
    return None


def test_walkthrough_every_decoded_bit_flip_is_refused(
        walkthrough: bytes, veraison_anchor: TrustAnchor) -> None:
    parts = walkthrough.split(b".")
    accepted: list[tuple[int, int]] = []
    kinds: list[set[type[Error]]] = [set(), set(), set()]
    for seg, text in enumerate(parts):
        decoded = b64url_decode(text)
        for pos in range(len(decoded)):
            bits = range(8) if seg != 1 else (pos % 8,)  # every bit of header and signature
            for bit in bits:
                flipped = bytearray(decoded)
                flipped[pos] ^= 1 << bit
                token = b".".join(
                    b64url_encode(bytes(flipped)).encode() if i == seg else p for i, p in enumerate(parts))
                kind = _outcome(token, veraison_anchor, WALKTHROUGH_IAT)
                if kind is None:
                    accepted.append((seg, pos))
                else:
                    kinds[seg].add(kind)
    assert accepted == []
    assert kinds[1] == {BadSignatureError}  # payload: always the signature that fails
    assert kinds[2] == {BadSignatureError}  # signature
    assert all(issubclass(k, Error) for k in kinds[0])


def test_walkthrough_every_raw_character_flip_is_refused(
        walkthrough: bytes, veraison_anchor: TrustAnchor) -> None:
    assert _outcome(walkthrough, veraison_anchor, WALKTHROUGH_IAT) is None
    accepted = []
    for pos in range(len(walkthrough)):
        token = bytearray(walkthrough)
        token[pos] ^= 1 << (pos % 8)
        if _outcome(bytes(token), veraison_anchor, WALKTHROUGH_IAT) is None:
            accepted.append(pos)
    assert accepted == []


def test_cwt_every_bit_flip_is_refused(
        vectors: Path, veraison_key: SigningKey, pkey_anchor: TrustAnchor) -> None:
    ear = veraison_claims(vectors, "ear-claims-tv-ok.json")
    token = encode_ear(ear, veraison_key, fmt="cwt", spelling=Spelling.DRAFT03)
    assert _outcome(token, pkey_anchor, ear.iat) is None
    accepted = []
    for pos in range(len(token)):
        for bit in range(8):
            flipped = bytearray(token)
            flipped[pos] ^= 1 << bit
            if _outcome(bytes(flipped), pkey_anchor, ear.iat) is None:
                accepted.append((pos, bit))
    assert accepted == []


# --- negative cases: each refused with its specific error -----------------------------------------

NOW = 1_750_000_000
NONCE = bytes(range(32))


def claims03(**over: Any) -> dict[str, Any]:
    c: dict[str, Any] = {
        "eat_profile": PROFILE_03,
        "iat": NOW - 10,
        "ear_verifier_id": {"developer": "https://example.org", "build": "t 1"},
        "submods": {"PSA": {"ear_status": "affirming",
                            "ear_trustworthiness_vector": {"hardware": 2, "instance-identity": 2}}},
    }
    for k, v in over.items():
        if v is None:
            c.pop(k, None)
        else:
            c[k] = v
    return c


def _sub(**entry: Any) -> dict[str, Any]:
    return {"PSA": {"ear_status": "affirming", **entry}}


def test_base_claims_are_valid() -> None:
    ear = from_json_claims(claims03())
    assert ear.status is AFF and ear.iat == NOW - 10


@pytest.mark.parametrize("claims", [
    pytest.param(claims03(iat=None), id="missing-iat"),
    pytest.param(claims03(iat=float(NOW)), id="float-iat"),
    pytest.param(claims03(exp=float(NOW + 60)), id="float-exp"),
    pytest.param(claims03(iat=True), id="bool-iat"),
    pytest.param(claims03(eat_profile="tag:example.com,2024:not-ear"), id="unknown-profile"),
    pytest.param(claims03(eat_profile=None), id="missing-profile"),
    pytest.param(claims03(submods={}), id="empty-submods"),
    pytest.param(claims03(submods=_sub(ear_status="excellent")), id="bad-status-string"),
    pytest.param(claims03(submods={"PSA": {"ear_trustworthiness_vector": {"hardware": 2}}}), id="no-status"),
    pytest.param(claims03(submods=_sub(ear_trustworthiness_vector={"hardware": 128})), id="claim-128"),
    pytest.param(claims03(submods=_sub(ear_trustworthiness_vector={"hardware": -129})), id="claim--129"),
    pytest.param(claims03(submods=_sub(ear_trustworthiness_vector={"hardware": 2.0})), id="claim-float"),
    pytest.param(claims03(submods=_sub(ear_trustworthiness_vector={"firmware": 2})), id="unknown-claim"),
    pytest.param(claims03(submods=_sub(ear_appraisal_policy_ids=[])), id="empty-policy-ids"),
    pytest.param(claims03(ear_verifier_id=None), id="missing-verifier-id"),
    pytest.param(claims03(ear_verifier_id={"developer": "x"}), id="verifier-id-without-build"),
    pytest.param(claims03(submods={"PSA": {"ear_status": "affirming", "ear.status": "affirming"}}),
                 id="status-under-two-names"),
    pytest.param(claims03(eat_nonce="short"), id="nonce-too-short"),
])
def test_malformed_json_claims_are_refused(claims: dict[str, Any]) -> None:
    with pytest.raises(MalformedError):
        from_json_claims(claims)


@pytest.mark.parametrize("claims", [
    pytest.param({265: PROFILE_03, 1004: {0: "d", 1: "b"}, 266: {"S": {1000: 2}}}, id="missing-iat"),
    pytest.param({265: PROFILE_03, 6: 1.5e9, 1004: {0: "d", 1: "b"}, 266: {"S": {1000: 2}}}, id="float-iat"),
    pytest.param({265: PROFILE_03, 6: NOW, 4: 1.5e9, 1004: {0: "d", 1: "b"}, 266: {"S": {1000: 2}}},
                 id="float-exp"),
    pytest.param({265: "urn:x", 6: NOW, 1004: {0: "d", 1: "b"}, 266: {"S": {1000: 2}}}, id="unknown-profile"),
    pytest.param({265: PROFILE_03, 6: NOW, 1004: {0: "d", 1: "b"}, 266: {}}, id="empty-submods"),
    pytest.param({265: PROFILE_03, 6: NOW, 1004: {0: "d", 1: "b"}, 266: {"S": {1000: 1}}},
                 id="bad-status-int"),
    pytest.param({265: PROFILE_03, 6: NOW, 1004: {0: "d", 1: "b"}, 266: {"S": {1000: 2, 1001: {4: 200}}}},
                 id="claim-200"),
    pytest.param({265: PROFILE_03, 6: NOW, 1004: {0: "d", 1: "b"}, 266: {"S": {1000: 2}}, 10: b"1234567"},
                 id="nonce-7-bytes"),
])
def test_malformed_cbor_claims_are_refused(claims: dict[Any, Any]) -> None:
    with pytest.raises(MalformedError):
        from_cbor_claims(claims)


def compact(header: dict[str, Any], payload: bytes, key: SigningKey | None) -> bytes:
    """A JWS built by hand, so that tests can put anything in the header or the payload."""
    signing_input = (b64url_encode(json.dumps(header).encode()) + "." + b64url_encode(payload)).encode()
    sig = raw_sign(by_name(key.algorithm), key.key, signing_input) if key is not None else b""
    return signing_input + b"." + b64url_encode(sig).encode()


@pytest.fixture(scope="module")
def signer() -> SigningKey:
    return SigningKey.generate("ES256")


@pytest.fixture(scope="module")
def anchor(signer: SigningKey) -> TrustAnchor:
    """Like a JWK file without "kid": any kid in a token may name it."""
    return TrustAnchor((VerificationKey.of(signer.key.public_key()),))


def _sign(claims: dict[str, Any], key: SigningKey, fmt: str) -> bytes:
    ear = from_json_claims(claims)
    return encode_ear(ear, key, fmt=fmt, spelling=Spelling.DRAFT03)  # type: ignore[arg-type]


def test_hand_built_jws_verifies(signer: SigningKey, anchor: TrustAnchor) -> None:
    token = compact({"alg": "ES256", "kid": signer.kid}, json.dumps(claims03()).encode(), signer)
    assert verify_ear(token, anchor, now=NOW).ear.submods["PSA"].status is AFF


def test_duplicate_json_key_in_payload_is_malformed(signer: SigningKey, anchor: TrustAnchor) -> None:
    body = json.dumps(claims03())
    assert body.startswith('{"eat_profile"')
    dup = f'{{"iat": {NOW + 10**6}, ' + body[1:]  # iat twice: which one counts is ambiguous
    with pytest.raises(MalformedError, match="duplicate"):
        verify_ear(compact({"alg": "ES256"}, dup.encode(), signer), anchor, now=NOW)


def test_alg_none_is_refused(anchor: TrustAnchor) -> None:
    token = compact({"alg": "none"}, json.dumps(claims03()).encode(), None)
    with pytest.raises(AlgorithmError):
        verify_ear(token, anchor, now=NOW)


def test_hs256_with_public_key_as_secret_is_refused(signer: SigningKey, anchor: TrustAnchor) -> None:
    secret = signer.key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    head = b64url_encode(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    body = b64url_encode(json.dumps(claims03()).encode())
    mac = hmac.new(secret, f"{head}.{body}".encode(), hashlib.sha256).digest()
    with pytest.raises(AlgorithmError):
        verify_ear(f"{head}.{body}.{b64url_encode(mac)}", anchor, now=NOW)


def test_crit_header_is_refused(signer: SigningKey, anchor: TrustAnchor) -> None:
    token = compact({"alg": "ES256", "crit": ["exp"], "exp": NOW}, json.dumps(claims03()).encode(), signer)
    with pytest.raises(VerificationError, match="critical") as info:
        verify_ear(token, anchor, now=NOW)
    assert info.type is VerificationError


def test_cose_crit_header_is_refused(signer: SigningKey, anchor: TrustAnchor) -> None:
    payload = cbor.dumps(to_cbor_claims(from_json_claims(claims03()), Spelling.DRAFT03))
    token = cose.sign1(payload, signer, extra_protected={2: [4]})
    with pytest.raises(VerificationError, match="critical") as info:
        verify_ear(token, anchor, now=NOW)
    assert info.type is VerificationError


def test_key_in_jwt_header_is_not_honoured(anchor: TrustAnchor) -> None:
    attacker = SigningKey.generate("ES256")
    header = {"alg": "ES256", "jwk": public_to_jwk(attacker.key.public_key())}
    token = compact(header, json.dumps(claims03()).encode(), attacker)
    with pytest.raises(BadSignatureError):
        verify_ear(token, anchor, now=NOW)


@pytest.mark.parametrize("fmt", ["jwt", "cwt"])
def test_wrong_key_is_bad_signature(fmt: str, anchor: TrustAnchor) -> None:
    other = SigningKey.generate("ES256")
    with pytest.raises(BadSignatureError):
        verify_ear(_sign(claims03(), other, fmt), anchor, now=NOW)


@pytest.mark.parametrize("fmt", ["jwt", "cwt"])
def test_unknown_kid_is_untrusted_key(fmt: str, signer: SigningKey) -> None:
    anchor = TrustAnchor((VerificationKey.of(signer.key.public_key(), kid="someone-else"),))
    with pytest.raises(UntrustedKeyError):
        verify_ear(_sign(claims03(), signer, fmt), anchor, now=NOW)


@pytest.mark.parametrize("fmt", ["jwt", "cwt"])
def test_key_not_allowed_for_algorithm(fmt: str) -> None:
    key = SigningKey.generate("EdDSA")
    anchor = TrustAnchor((VerificationKey.of(key.key.public_key(), algorithms=["PS256"]),))
    with pytest.raises(AlgorithmError):
        verify_ear(_sign(claims03(), key, fmt), anchor, now=NOW)


@pytest.mark.parametrize("fmt", ["jwt", "cwt"])
def test_nonce_must_be_echoed(fmt: str, signer: SigningKey, anchor: TrustAnchor) -> None:
    token = _sign(claims03(eat_nonce=b64url_encode(NONCE)), signer, fmt)
    assert verify_ear(token, anchor, now=NOW, nonce=NONCE).ear.submods["PSA"].status is AFF
    with pytest.raises(NonceMismatchError):
        verify_ear(token, anchor, now=NOW, nonce=bytes(reversed(NONCE)))
    with pytest.raises(NonceMismatchError):
        verify_ear(_sign(claims03(), signer, fmt), anchor, now=NOW, nonce=NONCE)


@pytest.mark.parametrize("fmt", ["jwt", "cwt"])
def test_expired_exp_is_stale(fmt: str, signer: SigningKey, anchor: TrustAnchor) -> None:
    token = _sign(claims03(iat=NOW - 200, exp=NOW - 100), signer, fmt)
    assert verify_ear(token, anchor, now=NOW - 100 + 59).ear.exp == NOW - 100  # within leeway
    with pytest.raises(StaleError, match="expired"):
        verify_ear(token, anchor, now=NOW)
    with pytest.raises(StaleError):
        verify_ear(token, anchor, now=NOW - 100, leeway=0)


@pytest.mark.parametrize("fmt", ["jwt", "cwt"])
def test_iat_in_the_future_is_stale(fmt: str, signer: SigningKey, anchor: TrustAnchor) -> None:
    token = _sign(claims03(iat=NOW + 600), signer, fmt)
    with pytest.raises(StaleError, match="future"):
        verify_ear(token, anchor, now=NOW)
    assert verify_ear(token, anchor, now=NOW + 540).ear.iat == NOW + 600  # exactly the leeway


@pytest.mark.parametrize("fmt", ["jwt", "cwt"])
def test_max_age_exceeded_is_stale(fmt: str, signer: SigningKey, anchor: TrustAnchor) -> None:
    token = _sign(claims03(iat=NOW - 300), signer, fmt)
    assert verify_ear(token, anchor, now=NOW, max_age=300).ear.iat == NOW - 300
    with pytest.raises(StaleError, match="ago"):
        verify_ear(token, anchor, now=NOW + 1, max_age=300)


def test_walkthrough_surrounding_whitespace_is_ignored_but_padding_is_refused(
        walkthrough: bytes, veraison_anchor: TrustAnchor) -> None:
    for variant in (walkthrough + b"\n", b" " + walkthrough + b"\r\n", walkthrough.decode() + "\n"):
        assert verify_ear(variant, veraison_anchor, now=WALKTHROUGH_IAT).raw == walkthrough
    # "sig==" decodes to the same signature: accepting it would make one EAR have many encodings.
    with pytest.raises(MalformedError, match="padding"):
        verify_ear(walkthrough + b"==", veraison_anchor, now=WALKTHROUGH_IAT)


def test_walkthrough_negative_cases(walkthrough: bytes, veraison_anchor: TrustAnchor) -> None:
    with pytest.raises(StaleError):
        verify_ear(walkthrough, veraison_anchor, now=WALKTHROUGH_IAT + 3600, max_age=300)
    with pytest.raises(StaleError):
        verify_ear(walkthrough, veraison_anchor, now=WALKTHROUGH_IAT - 3600)
    with pytest.raises(NonceMismatchError):
        verify_ear(walkthrough, veraison_anchor, now=WALKTHROUGH_IAT, nonce=bytes(48))
    with pytest.raises(BadSignatureError):
        verify_ear(walkthrough, TrustAnchor((SigningKey.generate("ES256").public,)), now=WALKTHROUGH_IAT)


def test_status_is_capped_by_vector_and_reported_value_kept() -> None:
    """An issuer claiming affirming with a contraindicated claim is read as contraindicated."""
    ear = from_json_claims(claims03(submods=_sub(ear_trustworthiness_vector={"executables": 96})))
    psa = ear.submods["PSA"]
    assert psa.status is CONTRA and psa.reported_status is AFF
    assert ear.status is CONTRA
    assert Appraisal.make(NONE, TrustVector.of({"hardware": 2})).status is NONE
