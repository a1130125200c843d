"""Vendor tokens (Intel Trust Authority, Azure Attestation, Google, Trustee) through verifiers.vendor.

Real tokens are read in place from ../shared/vectors/vendor-results (each folder's SOURCES.md says
where they come from, whether their signature verifies and what they should normalize to); every
token here is checked at its own time (iat + 1), since all of them have long expired. Negative
cases sign tokens with keys generated in the test.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jwt as pyjwt
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from federation.ar4si import Tier
from federation.binding import Binding, BindingStrength
from federation.ear.model import Spelling
from federation.ear.token import encode_ear, verify_ear
from federation.errors import (
    AlgorithmError,
    BadSignatureError,
    ConfigError,
    MalformedError,
    NonceMismatchError,
    PolicyError,
    StaleError,
    UntrustedKeyError,
    UsageError,
)
from federation.keys import SigningKey, TrustAnchor, VerificationKey, b64url_encode, load_trust_anchor, public_to_jwk
from federation.quorum import QuorumPolicy, decide
from federation.votes import Outcome, Vote
from verifiers import vendor
from verifiers.base import RawResult
from verifiers.normalize import Check, checker_for, normalize
from verifiers.vendor import google, ita, maa, trustee

VR = Path(__file__).resolve().parents[2] / "shared" / "vectors" / "vendor-results"
NOW = 1_800_000_000
FULL = ("instance-identity", "configuration", "executables", "file-system", "hardware", "runtime-opaque",
        "storage-opaque", "sourced-data")
REJECTED = (UntrustedKeyError, BadSignatureError)


def claims_of(path: Path) -> dict[str, Any]:
    payload = path.read_text().strip().split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def vector(view: vendor.VendorView, submod: str) -> dict[str, int]:
    tv = view.ear.submods[submod].trust_vector
    assert tv is not None
    return tv.as_dict()


def expect_vector(**values: int) -> dict[str, int]:
    out = dict.fromkeys(FULL, 0)
    out.update({k.replace("_", "-"): v for k, v in values.items()})
    return out


# --------------------------------------------------------------------------- keys and token makers

@pytest.fixture(scope="module")
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def other_rsa() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def ec_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def sign(claims: Mapping[str, Any], key: Any, alg: str, kid: str | None = "test-kid",
         headers: Mapping[str, Any] | None = None) -> bytes:
    hdr: dict[str, Any] = {"typ": "JWT", **(headers or {})}
    if kid is not None:
        hdr["kid"] = kid
    return pyjwt.encode(dict(claims), key, algorithm=alg, headers=hdr).encode()


def anchor_of(key: Any, kid: str | None = "test-kid", algorithms: tuple[str, ...] | None = None) -> TrustAnchor:
    return TrustAnchor((VerificationKey.of(key.public_key(), kid=kid, algorithms=algorithms),))


def self_signed(key: Any, name: str = "test signer", ca: bool = False) -> x509.Certificate:
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    start = datetime.fromtimestamp(NOW, UTC) - timedelta(days=1)
    return (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(start)
            .not_valid_after(start + timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))


def der_b64(cert: x509.Certificate) -> str:
    return base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode()


BINDING = Binding(b"session-nonce-0123456789abcdef!!", {"ita": b"ita-challenge"}, prefix=b"VAL" + b"IAT")
PLAIN_BINDING = Binding(b"session-nonce-0123456789abcdef!!")
VERIFIER_NONCE = {"val": base64.b64encode(b"V" * 88).decode(), "iat": base64.b64encode(b"2026-01-01").decode(),
                  "signature": base64.b64encode(b"S" * 384).decode()}


def ita_claims(**over: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "iss": "Intel Trust Authority", "iat": NOW, "nbf": NOW, "exp": NOW + 300, "jti": "j", "ver": "1.0.0",
        "attester_type": "TDX", "attester_tcb_status": "UpToDate", "attester_tcb_date": "2025-01-01T00:00:00Z",
        "dbgstat": "disabled", "tdx_td_attributes_debug": False, "tdx_is_debuggable": False,
        "tdx_mrtd": "aa" * 48, "tdx_report_data": BINDING.report_data.hex(), "verifier_nonce": VERIFIER_NONCE,
        "attester_held_data": base64.b64encode(BINDING.runtime_data).decode(),
        "policy_ids_matched": [{"id": "p1", "version": "v1"}], "policy_ids_unmatched": None,
    }
    base.update(over)
    return {k: v for k, v in base.items() if v is not ...}


def maa_claims(**over: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "iss": "https://test.weu.attest.azure.net", "iat": NOW, "nbf": NOW, "exp": NOW + 28800, "jti": "j",
        "x-ms-attestation-type": "sevsnpvm", "x-ms-compliance-status": "azure-compliant-cvm",
        "x-ms-sevsnpvm-is-debuggable": False, "x-ms-sevsnpvm-launchmeasurement": "bb" * 48,
        "x-ms-sevsnpvm-reportdata": PLAIN_BINDING.report_data.hex(), "x-ms-policy-hash": "hash", "x-ms-ver": "1.0",
    }
    base.update(over)
    return {k: v for k, v in base.items() if v is not ...}


def google_claims(**over: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "iss": google.ISSUER, "aud": "https://rp.example", "iat": NOW, "nbf": NOW, "exp": NOW + 3600,
        "sub": "https://www.googleapis.com/compute/v1/projects/p/zones/z/instances/i",
        "eat_nonce": [b64url_encode(PLAIN_BINDING.nonce)], "hwmodel": "GCP_INTEL_TDX", "swname": "CONFIDENTIAL_SPACE",
        "dbgstat": "disabled-since-boot", "attester_tcb": ["INTEL"],
        "submods": {"confidential_space": {"support_attributes": ["LATEST", "STABLE", "USABLE"]},
                    "container": {"image_digest": "sha256:" + "cc" * 32}},
    }
    base.update(over)
    return {k: v for k, v in base.items() if v is not ...}


def trustee_claims(report_data: str | None = None, **over: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "eat_profile": "tag:github.com,2024:confidential-containers/Trustee", "iat": NOW, "exp": NOW + 300,
        "iss": "CoCo-Attestation-Service",
        "ear.verifier-id": {"developer": "https://confidentialcontainers.org", "build": "attestation-service 0.1.0"},
        "submods": {"cpu0": {
            "ear.status": "affirming",
            "ear.trustworthiness-vector": {"instance-identity": 2, "configuration": 2, "executables": 3,
                                           "hardware": 2, "runtime-opaque": 2},
            "ear.appraisal-policy-id": "default",
            "ear.veraison.annotated-evidence": {
                "report_data": report_data if report_data is not None else PLAIN_BINDING.report_data.hex(),
                "tdx": {"quote": {"body": {"mr_td": "dd" * 48}}, "tcb_status": "UpToDate"}},
        }},
    }
    base.update(over)
    return {k: v for k, v in base.items() if v is not ...}


# --------------------------------------------------------------------------- Intel Trust Authority (real)

ITA_SGX = VR / "ita" / "sgx-v1-dev-c-client.jwt"
ITA_JWKS = VR / "ita" / "sgx-v1-dev-c-client.jwks.json"
ITA_TDX = VR / "ita" / "tdx-v1-prod-kbs-test.jwt"


def test_ita_real_sgx_token_verifies_and_normalizes_to_warning() -> None:
    at = claims_of(ITA_SGX)["iat"] + 1
    view = ita.verify_token(ITA_SGX.read_bytes(), load_trust_anchor(ITA_JWKS), now=at)
    assert (view.service, view.algorithm, view.mapping, view.binding) == ("ita", "PS384", "ita@1", None)
    assert list(view.ear.submods) == ["sgx"]
    assert vector(view, "sgx") == expect_vector(hardware=32, configuration=2, instance_identity=2,
                                                runtime_opaque=2, executables=33)
    assert view.ear.status is Tier.WARNING
    assert (view.ear.iat, view.ear.exp) == (at - 1, at - 1 + 1800)
    assert view.ear.verifier_id.developer == "https://trustauthority.intel.com"
    evidence = view.evidence["sgx"]
    assert evidence["sgx_mrenclave"].startswith("83f4e819")
    assert evidence["attester_tcb_status"] == "OutOfDate"
    assert evidence["policy_ids_unmatched"][0]["id"] == "102717ee-c41a-4807-9d0b-b8c625217e2f"
    assert len(evidence["attester_advisory_ids"]) == 9
    sub = view.ear.submods["sgx"]
    assert sub.extensions["ear_veraison_annotated_evidence"] == evidence
    assert sub.policy_ids == (ita.TABLE.policy_id,)


def test_ita_real_sgx_token_with_its_report_data_as_nonce() -> None:
    claims = claims_of(ITA_SGX)
    anchor = load_trust_anchor(ITA_JWKS)
    rd = bytes.fromhex(claims["sgx_report_data"])
    view = ita.verify_token(ITA_SGX.read_bytes(), anchor, now=claims["iat"] + 1, nonce=rd[:32])
    assert view.binding is BindingStrength.REPORT_DATA
    with pytest.raises(NonceMismatchError):
        ita.verify_token(ITA_SGX.read_bytes(), anchor, now=claims["iat"] + 1, nonce=b"\x01" * 32)
    with pytest.raises(NonceMismatchError, match="only TDX"):  # SGX cannot carry the session's REPORT_DATA
        ita.verify_token(ITA_SGX.read_bytes(), anchor, now=claims["iat"] + 1, binding=BINDING)


def test_ita_real_token_after_exp_is_stale() -> None:
    claims = claims_of(ITA_SGX)
    with pytest.raises(StaleError):
        ita.verify_token(ITA_SGX.read_bytes(), load_trust_anchor(ITA_JWKS), now=claims["exp"] + 61)
    with pytest.raises(StaleError):  # the federation's max_age
        ita.verify_token(ITA_SGX.read_bytes(), load_trust_anchor(ITA_JWKS), now=claims["iat"] + 400, max_age=300)


def test_ita_real_production_tdx_token_has_no_key_here(tmp_path: Path, rsa_key: rsa.RSAPrivateKey) -> None:
    at = claims_of(ITA_TDX)["iat"] + 1
    with pytest.raises(REJECTED):  # the dev instance's key set: the kid is unknown
        ita.verify_token(ITA_TDX.read_bytes(), load_trust_anchor(ITA_JWKS), now=at)
    jwks = tmp_path / "k.json"
    jwks.write_text(json.dumps({"keys": [public_to_jwk(rsa_key.public_key(), alg="PS384")]}))
    with pytest.raises(REJECTED):  # a key without kid: tried, and the signature does not verify
        ita.verify_token(ITA_TDX.read_bytes(), load_trust_anchor(jwks), now=at)


def test_ita_real_production_tdx_claims_normalize_to_warning() -> None:
    view = ita.map_claims(claims_of(ITA_TDX))
    assert (view.key, view.binding) == (None, None)
    assert list(view.ear.submods) == ["tdx"]
    assert vector(view, "tdx") == expect_vector(hardware=32, configuration=2, instance_identity=2, runtime_opaque=2)
    assert view.ear.status is Tier.WARNING
    assert view.evidence["tdx"]["tdx_mrtd"].startswith("5f53c388")
    with pytest.raises(MalformedError):  # a claims-only mapping is never a vote
        view.verified_ear()


def test_ita_real_report_data_follows_the_documented_rule() -> None:
    """Independent of federation.binding: TDX REPORT_DATA = SHA-512(val ‖ iat ‖ held data), SGX SHA-256 ‖ 0s."""
    for path, field, digest, size in ((ITA_TDX, "tdx_report_data", hashlib.sha512, 64),
                                      (ITA_SGX, "sgx_report_data", hashlib.sha256, 32)):
        claims = claims_of(path)
        nonce = claims["verifier_nonce"]
        data = (base64.b64decode(nonce["val"]) + base64.b64decode(nonce["iat"])
                + base64.b64decode(claims["attester_held_data"]))
        expected = digest(data).digest().ljust(64, b"\0")
        assert bytes.fromhex(claims[field]) == expected
        assert len(digest(data).digest()) == size


# --------------------------------------------------------------------------- Intel Trust Authority (generated)

def test_ita_binding_and_verifier_nonce(rsa_key: rsa.RSAPrivateKey) -> None:
    token = sign(ita_claims(), rsa_key, "PS384")
    anchor = anchor_of(rsa_key, algorithms=("PS384", "RS256"))
    view = ita.verify_token(token, anchor, now=NOW + 1, binding=BINDING)
    assert view.binding is BindingStrength.REPORT_DATA
    assert view.ear.status is Tier.AFFIRMING
    view = ita.verify_token(token, anchor, now=NOW + 1, binding=BINDING, expect={"verifier_nonce": VERIFIER_NONCE})
    assert view.binding is BindingStrength.EVIDENCE
    other = dict(VERIFIER_NONCE, val=base64.b64encode(b"W" * 88).decode())
    with pytest.raises(NonceMismatchError, match="verifier_nonce"):
        ita.verify_token(token, anchor, now=NOW + 1, binding=BINDING, expect={"verifier_nonce": other})
    with pytest.raises(NonceMismatchError):
        ita.verify_token(token, anchor, now=NOW + 1, binding=PLAIN_BINDING)


def test_ita_verifier_nonce_from_the_session_challenge(rsa_key: rsa.RSAPrivateKey) -> None:
    """The engine records the nonce ITA issued as this member's challenge (compact JSON): echoed -> evidence."""
    challenge = json.dumps(VERIFIER_NONCE, sort_keys=True, separators=(",", ":")).encode()
    binding = Binding(b"session-nonce-0123456789abcdef!!", {"ita-1": challenge},
                      prefix=base64.b64decode(VERIFIER_NONCE["val"]) + base64.b64decode(VERIFIER_NONCE["iat"]))
    token = sign(ita_claims(tdx_report_data=binding.report_data.hex()), rsa_key, "PS384")
    anchor = anchor_of(rsa_key)
    view = ita.verify_token(token, anchor, now=NOW, binding=binding, expect={"name": "ita-1"})
    assert view.binding is BindingStrength.EVIDENCE
    assert ita.verify_token(token, anchor, now=NOW, binding=binding, expect={"name": "other"}).binding is \
        BindingStrength.REPORT_DATA  # no challenge recorded for that member
    stale = dict(VERIFIER_NONCE, iat=base64.b64encode(b"2025-01-01").decode())
    token = sign(ita_claims(tdx_report_data=binding.report_data.hex(), verifier_nonce=stale), rsa_key, "PS384")
    with pytest.raises(NonceMismatchError, match="verifier_nonce"):
        ita.verify_token(token, anchor, now=NOW, binding=binding, expect={"name": "ita-1"})


def test_ita_member_policies_and_signing_algorithm(rsa_key: rsa.RSAPrivateKey) -> None:
    anchor = anchor_of(rsa_key)
    token = sign(ita_claims(policy_ids_unmatched=[{"id": "p2"}]), rsa_key, "PS384")
    view = ita.verify_token(token, anchor, now=NOW, binding=BINDING, expect={"policy_ids": ["p1", "p2"]})
    assert vector(view, "tdx")["executables"] == 33
    with pytest.raises(PolicyError, match="p3"):
        ita.verify_token(token, anchor, now=NOW, binding=BINDING, expect={"policy_ids": ["p1", "p3"]})
    with pytest.raises(PolicyError, match="policy_must_match"):
        ita.verify_token(token, anchor, now=NOW, binding=BINDING, expect={"policy_must_match": True})
    with pytest.raises(AlgorithmError):  # the member asked for RS256 tokens
        ita.verify_token(token, anchor, now=NOW, binding=BINDING, expect={"algorithms": ("RS256",)})


def test_ita_v2_nested_layout(rsa_key: rsa.RSAPrivateKey) -> None:
    flat = ita_claims()
    tdx = {k: flat.pop(k) for k in list(flat) if k.startswith(("tdx_", "attester_"))}
    nested = {**flat, "ver": "2.0.0", "tdx": tdx}
    anchor = anchor_of(rsa_key)
    view = ita.verify_token(sign(nested, rsa_key, "PS384"), anchor, now=NOW, binding=BINDING)
    assert list(view.ear.submods) == ["tdx"]
    assert view.ear.status is Tier.AFFIRMING
    assert view.evidence["tdx"]["tdx_mrtd"] == "aa" * 48
    clash = {**nested, "tdx_mrtd": "ee" * 48}
    with pytest.raises(MalformedError, match="twice"):
        ita.verify_token(sign(clash, rsa_key, "PS384"), anchor, now=NOW, binding=BINDING)


def test_ita_rs256_on_request_and_other_algorithms_refused(rsa_key: rsa.RSAPrivateKey) -> None:
    anchor = anchor_of(rsa_key, algorithms=None)  # no algorithm configured: the service's list applies
    assert ita.verify_token(sign(ita_claims(), rsa_key, "RS256"), anchor, now=NOW, binding=BINDING).algorithm == "RS256"
    for alg in ("PS256", "PS512"):
        with pytest.raises(AlgorithmError):
            ita.verify_token(sign(ita_claims(), rsa_key, alg), anchor, now=NOW, binding=BINDING)


# --------------------------------------------------------------------------- Azure Attestation (real)

MAA_TOKEN = VR / "maa" / "azurevm-sevsnp-sharedweu-cvm-clientlib.jwt"
MAA_JWKS = VR / "maa" / "sharedweu-signing-key.jwks.json"


def test_maa_real_azurevm_token_is_affirming() -> None:
    claims = claims_of(MAA_TOKEN)
    view = maa.verify_token(MAA_TOKEN.read_bytes(), load_trust_anchor(MAA_JWKS), now=claims["iat"] + 1)
    assert (view.algorithm, view.mapping) == ("RS256", "maa@1")
    assert list(view.ear.submods) == ["sev-snp"]
    assert vector(view, "sev-snp") == expect_vector(hardware=2, configuration=2, instance_identity=2,
                                                    runtime_opaque=2)
    assert view.ear.status is Tier.AFFIRMING
    evidence = view.evidence["sev-snp"]
    assert evidence["x-ms-sevsnpvm-launchmeasurement"].startswith("8962")
    assert evidence["x-ms-compliance-status"] == "azure-compliant-cvm"
    assert evidence["x-ms-attestation-type"] == "azurevm"


def test_maa_real_token_nonce_echoes() -> None:
    claims = claims_of(MAA_TOKEN)
    anchor = load_trust_anchor(MAA_JWKS)
    at = claims["iat"] + 1
    # x-ms-runtime.client-payload.nonce is "QURFMDEwMQ==" (base64 of "ADE0101")
    assert maa.verify_token(MAA_TOKEN.read_bytes(), anchor, now=at, nonce=b"ADE0101").binding is \
        BindingStrength.EAT_NONCE
    rd = bytes.fromhex(claims["x-ms-isolation-tee"]["x-ms-sevsnpvm-reportdata"])[:32]
    assert maa.verify_token(MAA_TOKEN.read_bytes(), anchor, now=at, nonce=rd).binding is BindingStrength.REPORT_DATA
    with pytest.raises(NonceMismatchError):
        maa.verify_token(MAA_TOKEN.read_bytes(), anchor, now=at, nonce=b"other-nonce")
    with pytest.raises(NonceMismatchError):  # azurevm REPORT_DATA is the HCL's, never this session's
        maa.verify_token(MAA_TOKEN.read_bytes(), anchor, now=at, binding=PLAIN_BINDING)


@pytest.mark.parametrize(("name", "submod"), [("docs-sevsnpvm-claims.json", "sev-snp"),
                                              ("docs-tdxvm-claims.json", "tdx"),
                                              ("azurevm-sevsnp-claims-sample.json", "sev-snp")])
def test_maa_published_claims_are_affirming(name: str, submod: str) -> None:
    view = maa.map_claims(json.loads((VR / "maa" / name).read_text()))
    assert list(view.ear.submods) == [submod]
    assert vector(view, submod) == expect_vector(hardware=2, configuration=2, instance_identity=2, runtime_opaque=2)
    assert view.ear.status is Tier.AFFIRMING


def test_maa_x5c_only_jwks_as_served_by_certs(tmp_path: Path, rsa_key: rsa.RSAPrivateKey) -> None:
    """MAA's /certs lists certificates only (no n/e): the key is taken from x5c[0]."""
    jwks = tmp_path / "certs.json"
    jwks.write_text(json.dumps({"keys": [{"kid": "maa-kid", "kty": "RSA", "x5c": [der_b64(self_signed(rsa_key))]}]}))
    anchor = load_trust_anchor(jwks)
    view = maa.verify_token(sign(maa_claims(), rsa_key, "RS256", kid="maa-kid"), anchor, now=NOW,
                            binding=PLAIN_BINDING)
    assert view.binding is BindingStrength.REPORT_DATA
    assert view.ear.status is Tier.AFFIRMING


def test_x5c_only_jwk_must_match_its_kty(tmp_path: Path, ec_key: ec.EllipticCurvePrivateKey) -> None:
    jwks = tmp_path / "certs.json"
    jwks.write_text(json.dumps({"keys": [{"kid": "k", "kty": "RSA", "x5c": [der_b64(self_signed(ec_key))]}]}))
    with pytest.raises(ConfigError, match="kty"):
        load_trust_anchor(jwks)
    jwks.write_text(json.dumps({"keys": [{"kid": "k", "kty": "RSA", "x5c": ["not base64!"]}]}))
    with pytest.raises(ConfigError):
        load_trust_anchor(jwks)


# --------------------------------------------------------------------------- Azure Attestation (generated)

def test_maa_draft_policy_tokens_are_refused(rsa_key: rsa.RSAPrivateKey) -> None:
    anchor = anchor_of(rsa_key)
    for claims in (maa_claims(**{"x-ms-policy": "version=1.0; authorizationrules{=> permit();};"}),
                   maa_claims(**{"x-ms-attestation-draft-policy": True}),
                   maa_claims(**{"x-ms-attestation-type": "azurevm", "x-ms-isolation-tee": {
                       "x-ms-attestation-type": "sevsnpvm", "x-ms-policy": "draft"}})):
        with pytest.raises(PolicyError, match="draft"):
            maa.verify_token(sign(claims, rsa_key, "RS256"), anchor, now=NOW, binding=PLAIN_BINDING)
    with pytest.raises(PolicyError, match="draft"):
        maa.map_claims(maa_claims(**{"x-ms-policy": "draft"}))


def test_maa_policy_hash_pin_and_nonce_claim(rsa_key: rsa.RSAPrivateKey) -> None:
    anchor = anchor_of(rsa_key)
    token = sign(maa_claims(nonce=b64url_encode(b"maa-session-nonce")), rsa_key, "RS256")
    view = maa.verify_token(token, anchor, now=NOW, nonce=b"maa-session-nonce", expect={"policy_hash": "hash"})
    assert view.binding is BindingStrength.EAT_NONCE
    with pytest.raises(PolicyError, match="policy-hash"):
        maa.verify_token(token, anchor, now=NOW, nonce=b"maa-session-nonce", expect={"policy_hash": "other"})


def test_maa_tdxvm_binding(rsa_key: rsa.RSAPrivateKey) -> None:
    claims = maa_claims(**{"x-ms-attestation-type": "tdxvm", "x-ms-sevsnpvm-reportdata": ...,
                           "x-ms-sevsnpvm-is-debuggable": ..., "x-ms-sevsnpvm-launchmeasurement": ...,
                           "attester_tcb_status": "UpToDate", "tdx_td_attributes_debug": False,
                           "tdx_report_data": PLAIN_BINDING.report_data.hex()})
    view = maa.verify_token(sign(claims, rsa_key, "RS256"), anchor_of(rsa_key), now=NOW, binding=PLAIN_BINDING)
    assert (list(view.ear.submods), view.binding, view.ear.status) == (["tdx"], BindingStrength.REPORT_DATA,
                                                                       Tier.AFFIRMING)


def test_maa_token_size_bound(rsa_key: rsa.RSAPrivateKey) -> None:
    anchor = anchor_of(rsa_key)
    big = sign(maa_claims(padding="x" * (100 << 10)), rsa_key, "RS256")  # MAA allows 256 KiB
    assert maa.verify_token(big, anchor, now=NOW, binding=PLAIN_BINDING).ear.status is Tier.AFFIRMING
    huge = sign(maa_claims(padding="x" * (300 << 10)), rsa_key, "RS256")
    with pytest.raises(MalformedError, match="exceeds"):
        maa.verify_token(huge, anchor, now=NOW, binding=PLAIN_BINDING)
    with pytest.raises(MalformedError, match="exceeds"):  # 64 KiB for the others
        ita.verify_token(sign(ita_claims(padding="x" * (100 << 10)), rsa_key, "PS384"), anchor, now=NOW,
                         binding=BINDING)


# --------------------------------------------------------------------------- Google (real)

GOOGLE_TOKEN = VR / "google" / "cs-pki-sev-debug-oak.jwt"
GOOGLE_BADSIG = VR / "google" / "cs-pki-sev-debug-oak-badsig.jwt"
GOOGLE_ROOT = VR / "google" / "confidential-space-root-ca.crt"
OAK_NONCE = b"a nonce between 10 and 74 characters"


def test_google_real_pki_token_is_contraindicated_debug_image() -> None:
    at = claims_of(GOOGLE_TOKEN)["iat"] + 1
    view = google.verify_token(GOOGLE_TOKEN.read_bytes(), load_trust_anchor(GOOGLE_ROOT), now=at, nonce=OAK_NONCE,
                               expect={"audience": "https://echo.oak.dev"})
    assert (view.algorithm, view.binding, view.mapping) == ("RS256", BindingStrength.EAT_NONCE, "google@1")
    assert list(view.ear.submods) == ["sev"]
    assert vector(view, "sev") == expect_vector(hardware=2, configuration=96, instance_identity=2,
                                                runtime_opaque=2)
    assert view.ear.status is Tier.CONTRAINDICATED
    assert view.evidence["sev"]["submods.container.image_digest"].startswith("sha256:313b8a83")
    with pytest.raises(PolicyError, match="audience"):
        google.verify_token(GOOGLE_TOKEN.read_bytes(), load_trust_anchor(GOOGLE_ROOT), now=at,
                            expect={"audience": "https://other.example"})
    with pytest.raises(NonceMismatchError):
        google.verify_token(GOOGLE_TOKEN.read_bytes(), load_trust_anchor(GOOGLE_ROOT), now=at, nonce=b"0" * 32)


def test_google_real_token_image_reference_values() -> None:
    claims = claims_of(GOOGLE_TOKEN)
    anchor = load_trust_anchor(GOOGLE_ROOT)
    digest = claims["submods"]["container"]["image_digest"]
    ok = google.verify_token(GOOGLE_TOKEN.read_bytes(), anchor, now=claims["iat"] + 1,
                             expect={"image_digests": [digest]})
    assert vector(ok, "sev")["executables"] == 2
    bad = google.verify_token(GOOGLE_TOKEN.read_bytes(), anchor, now=claims["iat"] + 1,
                              expect={"image_digests": "sha256:" + "00" * 32})
    assert vector(bad, "sev")["executables"] == 33


def test_google_real_badsig_is_bad_signature() -> None:
    at = claims_of(GOOGLE_BADSIG)["iat"] + 1
    with pytest.raises(BadSignatureError):
        google.verify_token(GOOGLE_BADSIG.read_bytes(), load_trust_anchor(GOOGLE_ROOT), now=at, nonce=OAK_NONCE)


def test_google_real_chain_is_checked_at_the_verification_time() -> None:
    later = int(datetime(2025, 9, 1, tzinfo=UTC).timestamp())  # the 2-month leaf has expired
    with pytest.raises(UntrustedKeyError):
        google.verify_token(GOOGLE_TOKEN.read_bytes(), load_trust_anchor(GOOGLE_ROOT), now=later)
    with pytest.raises(REJECTED):  # another root
        other_root = load_trust_anchor(VR / "trustee" / "as-jwks-fixture-cert-chain.pem")
        google.verify_token(GOOGLE_TOKEN.read_bytes(), other_root, now=claims_of(GOOGLE_TOKEN)["iat"] + 1)


# --------------------------------------------------------------------------- Google (generated)

def test_google_generated_token_binding_and_issuer(rsa_key: rsa.RSAPrivateKey) -> None:
    anchor = anchor_of(rsa_key)
    view = google.verify_token(sign(google_claims(), rsa_key, "RS256"), anchor, now=NOW, binding=PLAIN_BINDING)
    assert (list(view.ear.submods), view.binding, view.ear.status) == (["tdx"], BindingStrength.EAT_NONCE,
                                                                       Tier.AFFIRMING)
    single = sign(google_claims(eat_nonce=b64url_encode(b"x" * 16)), rsa_key, "RS256")
    assert google.verify_token(single, anchor, now=NOW, nonce=b"x" * 16).binding is BindingStrength.EAT_NONCE
    with pytest.raises(NonceMismatchError):
        google.verify_token(single, anchor, now=NOW, binding=PLAIN_BINDING)
    with pytest.raises(MalformedError):
        google.verify_token(sign(google_claims(eat_nonce=[1, 2]), rsa_key, "RS256"), anchor, now=NOW,
                            binding=PLAIN_BINDING)
    wrong = sign(google_claims(iss="https://evil.example"), rsa_key, "RS256")
    with pytest.raises(PolicyError, match="issuer"):
        google.verify_token(wrong, anchor, now=NOW, binding=PLAIN_BINDING)
    assert google.verify_token(wrong, anchor, now=NOW, binding=PLAIN_BINDING,
                               expect={"issuer": "https://evil.example"}).ear.status is Tier.AFFIRMING


def test_google_x5c_to_a_root_not_configured_is_refused(rsa_key: rsa.RSAPrivateKey) -> None:
    leaf = self_signed(rsa_key, "Confidential Space Leaf Certificate")
    token = sign(google_claims(), rsa_key, "RS256", headers={"x5c": [der_b64(leaf)]})
    with pytest.raises(UntrustedKeyError):
        google.verify_token(token, load_trust_anchor(GOOGLE_ROOT), now=NOW, binding=PLAIN_BINDING)


# --------------------------------------------------------------------------- Trustee

TRUSTEE_EXAMPLE = VR / "trustee" / "ear-claims-example.json"
LEGACY = VR / "trustee" / "legacy-coco-as-token.jwt"


def test_trustee_example_claims_pass_through() -> None:
    view = trustee.map_claims(json.loads(TRUSTEE_EXAMPLE.read_text()))
    assert list(view.ear.submods) == ["cpu0"]
    assert vector(view, "cpu0") == expect_vector(hardware=97, configuration=36, executables=33)
    assert view.ear.status is Tier.CONTRAINDICATED
    assert view.evidence["cpu0"]["sgx"]["tcb_status"] == "OutOfDate"
    assert view.ear.verifier_id.developer == "https://confidentialcontainers.org"
    assert view.ear.submods["cpu0"].policy_ids == ("default", trustee.TABLE.policy_id)


def test_trustee_example_signed_verifies_with_binding_echo(ec_key: ec.EllipticCurvePrivateKey) -> None:
    claims = json.loads(TRUSTEE_EXAMPLE.read_text())
    jwk = public_to_jwk(ec_key.public_key(), alg="ES256")
    token = sign(claims, ec_key, "ES256", kid=None, headers={"jwk": jwk})
    anchor = anchor_of(ec_key, kid=None)
    at = claims["iat"] + 1
    view = trustee.verify_token(token, anchor, now=at, nonce=b"test")  # report_data is "test" zero-padded
    assert view.binding is BindingStrength.REPORT_DATA
    assert view.ear.status is Tier.CONTRAINDICATED
    with pytest.raises(NonceMismatchError):
        trustee.verify_token(token, anchor, now=at, binding=PLAIN_BINDING)
    with pytest.raises(PolicyError):  # the example has no iss: an expected issuer makes it required
        trustee.verify_token(token, anchor, now=at, nonce=b"test", expect={"issuer": "CoCo-Attestation-Service"})


def test_trustee_draft03_names_and_session_binding(ec_key: ec.EllipticCurvePrivateKey) -> None:
    claims = trustee_claims(
        eat_profile="tag:ietf.org,2026:rats/ear#03",
        submods={"cpu0": {"ear_status": "affirming",
                          "ear_trustworthiness_vector": {"hardware": 2, "instance-identity": 2},
                          "ear_veraison_annotated_evidence": {"report_data": PLAIN_BINDING.report_data.hex()}},
                 "gpu0": {"ear_status": "warning", "ear_trustworthiness_vector": {"hardware": 32}}},
        **{"ear.verifier-id": ..., "ear_verifier_id": {"developer": "d", "build": "b"}})
    view = trustee.verify_token(sign(claims, ec_key, "ES256", kid=None), anchor_of(ec_key, kid=None), now=NOW,
                                binding=PLAIN_BINDING, expect={"issuer": "CoCo-Attestation-Service"})
    assert view.binding is BindingStrength.REPORT_DATA
    assert vector(view, "cpu0") == {"instance-identity": 2, "hardware": 2}  # absent stays absent
    assert view.ear.submods["gpu0"].status is Tier.WARNING
    assert view.ear.status is Tier.WARNING


def test_trustee_appraisal_policy_of_the_member(ec_key: ec.EllipticCurvePrivateKey) -> None:
    token = sign(trustee_claims(), ec_key, "ES256", kid=None)
    anchor = anchor_of(ec_key, kid=None)
    view = trustee.verify_token(token, anchor, now=NOW, binding=PLAIN_BINDING, expect={"policy_ids": ["default"]})
    assert view.ear.submods["cpu0"].policy_ids[0] == "default"
    with pytest.raises(PolicyError, match="mine"):
        trustee.verify_token(token, anchor, now=NOW, binding=PLAIN_BINDING, expect={"policy_ids": ["mine"]})


def test_trustee_status_never_better_than_its_vector(ec_key: ec.EllipticCurvePrivateKey) -> None:
    claims = trustee_claims()
    claims["submods"]["cpu0"]["ear.trustworthiness-vector"]["configuration"] = 96
    view = trustee.verify_token(sign(claims, ec_key, "ES256", kid=None), anchor_of(ec_key, kid=None), now=NOW,
                                binding=PLAIN_BINDING)
    assert view.ear.submods["cpu0"].status is Tier.CONTRAINDICATED


def test_trustee_legacy_token_is_refused(tmp_path: Path) -> None:
    claims = claims_of(LEGACY)
    at = claims["nbf"] + 1
    with pytest.raises(AlgorithmError):  # RS384 is not Trustee's ES256
        trustee.verify_token(LEGACY.read_bytes(), load_trust_anchor(VR / "trustee" / "as-jwks-fixture.json"), now=at)
    own = tmp_path / "own.jwk"  # even an operator who pinned the key from its own jwk claim
    own.write_text(json.dumps({k: v for k, v in claims["jwk"].items() if k != "alg"}))  # RS384 is unknown here
    with pytest.raises((AlgorithmError, UntrustedKeyError)):
        trustee.verify_token(LEGACY.read_bytes(), load_trust_anchor(own), now=at)
    with pytest.raises(MalformedError):  # and its claims are not an EAR
        trustee.map_claims(claims)


# --------------------------------------------------------------------------- every service: negatives

def _cases(rsa_key: Any, ec_key: Any) -> list[tuple[Any, Any, Any, str, dict[str, Any]]]:
    """(module, signing key, claims maker, alg, verify kwargs) for a good token of each service."""
    return [
        (ita, rsa_key, ita_claims, "PS384", {"binding": BINDING}),
        (maa, rsa_key, maa_claims, "RS256", {"binding": PLAIN_BINDING}),
        (google, rsa_key, google_claims, "RS256", {"binding": PLAIN_BINDING}),
        (trustee, ec_key, trustee_claims, "ES256", {"binding": PLAIN_BINDING}),
    ]


SERVICES = ["ita", "maa", "google", "trustee"]


@pytest.fixture
def case(request: pytest.FixtureRequest, rsa_key: Any, ec_key: Any) -> tuple[Any, Any, Any, str, dict[str, Any]]:
    return {c[0].SERVICE.kind: c for c in _cases(rsa_key, ec_key)}[request.param]


@pytest.mark.parametrize("case", SERVICES, indirect=True)
def test_good_generated_token_verifies(case: Any) -> None:
    module, key, make, alg, kw = case
    view = module.verify_token(sign(make(), key, alg), anchor_of(key), now=NOW + 1, **kw)
    assert view.ear.status is Tier.AFFIRMING
    assert view.binding is not None


@pytest.mark.parametrize("case", SERVICES, indirect=True)
def test_wrong_anchor_is_refused(case: Any, other_rsa: Any) -> None:
    module, key, make, alg, kw = case
    other = other_rsa if alg != "ES256" else ec.generate_private_key(ec.SECP256R1())
    with pytest.raises(REJECTED):
        module.verify_token(sign(make(), key, alg), anchor_of(other), now=NOW, **kw)
    with pytest.raises(REJECTED):  # another key with another kid
        module.verify_token(sign(make(), key, alg), anchor_of(other, kid="other"), now=NOW, **kw)


@pytest.mark.parametrize("case", SERVICES, indirect=True)
def test_expired_and_future_tokens_are_stale(case: Any) -> None:
    module, key, make, alg, kw = case
    token = sign(make(), key, alg)
    with pytest.raises(StaleError):
        module.verify_token(token, anchor_of(key), now=NOW + 100_000, **kw)
    with pytest.raises(StaleError):
        module.verify_token(token, anchor_of(key), now=NOW - 3600, **kw)
    with pytest.raises(StaleError):
        module.verify_token(sign(make(nbf=NOW + 600), key, alg), anchor_of(key), now=NOW, **kw)


@pytest.mark.parametrize("case", SERVICES, indirect=True)
def test_missing_exp(case: Any) -> None:
    module, key, make, alg, kw = case
    token = sign(make(exp=...), key, alg)
    if module is trustee:  # Trustee's documented example has exp, but an EAR may omit it
        assert module.verify_token(token, anchor_of(key), now=NOW, **kw).ear.exp is None
    else:
        with pytest.raises(MalformedError, match="exp"):
            module.verify_token(token, anchor_of(key), now=NOW, **kw)


@pytest.mark.parametrize("case", SERVICES, indirect=True)
def test_key_supplied_in_the_token_header_is_never_used(case: Any, tmp_path: Path) -> None:
    module, key, make, alg, kw = case
    attacker = rsa.generate_private_key(public_exponent=65537, key_size=2048) if alg != "ES256" \
        else ec.generate_private_key(ec.SECP256R1())
    jwk = public_to_jwk(attacker.public_key(), kid="test-kid", alg=alg)
    headers = {"jwk": jwk, "jku": "https://attacker.example/certs", "x5u": "https://attacker.example/cert.pem",
               "x5c": [der_b64(self_signed(attacker))]}
    token = sign(make(), attacker, alg, headers=headers)
    with pytest.raises(REJECTED):  # the configured anchor: the service's real key
        module.verify_token(token, anchor_of(key), now=NOW, **kw)
    roots = tmp_path / "root.pem"
    roots.write_bytes(self_signed(key, ca=True).public_bytes(serialization.Encoding.PEM))
    with pytest.raises(REJECTED):  # a configured root: the self-signed x5c does not chain to it
        module.verify_token(token, load_trust_anchor(roots), now=NOW, **kw)


@pytest.mark.parametrize("case", SERVICES, indirect=True)
def test_algorithm_not_allowed_for_the_service(case: Any) -> None:
    module, key, make, alg, kw = case
    other_alg = "PS256" if alg != "ES256" else "ES384"
    other_key = key if alg != "ES256" else ec.generate_private_key(ec.SECP384R1())
    with pytest.raises(AlgorithmError):
        module.verify_token(sign(make(), other_key, other_alg), anchor_of(other_key), now=NOW, **kw)
    header = b64url_encode(json.dumps({"alg": "none", "typ": "JWT"}).encode())
    payload = b64url_encode(json.dumps(make()).encode())
    with pytest.raises(AlgorithmError):
        module.verify_token(f"{header}.{payload}.".encode(), anchor_of(key), now=NOW, **kw)


@pytest.mark.parametrize("case", SERVICES, indirect=True)
def test_issuer_mismatch(case: Any) -> None:
    module, key, make, alg, kw = case
    token = sign(make(iss="https://impostor.example"), key, alg)
    with pytest.raises(PolicyError, match="issuer"):
        module.verify_token(token, anchor_of(key), now=NOW, expect={"issuer": "https://expected.example"}, **kw)


@pytest.mark.parametrize("case", SERVICES, indirect=True)
def test_binding_mismatch(case: Any) -> None:
    module, key, make, alg, _ = case
    other = Binding(b"another-session-nonce-0123456789")
    with pytest.raises(NonceMismatchError):
        module.verify_token(sign(make(), key, alg), anchor_of(key), now=NOW, binding=other)


@pytest.mark.parametrize("case", SERVICES, indirect=True)
def test_claims_nesting_is_bounded(case: Any) -> None:
    module, key, make, alg, kw = case
    deep: Any = "x"
    for _ in range(40):
        deep = {"d": deep}
    with pytest.raises(MalformedError, match="nested"):
        module.verify_token(sign(make(deep=deep), key, alg), anchor_of(key), now=NOW, **kw)


@pytest.mark.parametrize("case", SERVICES, indirect=True)
def test_federation_checker_fails_closed_and_reports_binding(case: Any) -> None:
    module, key, make, alg, kw = case
    kind = module.SERVICE.kind
    assert checker_for(kind) is module.check
    raw = RawResult(sign(make(), key, alg), "application/jwt")
    with pytest.raises(NonceMismatchError, match="no session nonce"):
        normalize(raw, Check(anchor_of(key), None, NOW), kind=kind)
    verified = normalize(raw, Check(anchor_of(key), PLAIN_BINDING.nonce, NOW + 1, binding=kw["binding"]), kind=kind)
    assert verified.format == "jwt"
    assert verified.ear.status is Tier.AFFIRMING
    assert verified.binding is (BindingStrength.EAT_NONCE if kind == "google" else BindingStrength.REPORT_DATA)
    assert verified.key.thumbprint == VerificationKey.of(key.public_key()).thumbprint
    with pytest.raises(StaleError):  # the member's max_age
        normalize(raw, Check(anchor_of(key), PLAIN_BINDING.nonce, NOW + 1000, max_age=300, leeway=60,
                             binding=kw["binding"]), kind=kind)


def test_votes_from_two_services_reach_a_quorum(rsa_key: rsa.RSAPrivateKey) -> None:
    """ITA and MAA both name the TDX submodule ``tdx``: the quorum combines their vectors."""
    ita_view = ita.verify_token(sign(ita_claims(), rsa_key, "PS384"), anchor_of(rsa_key), now=NOW, binding=BINDING)
    maa_tdx = maa_claims(**{"x-ms-attestation-type": "tdxvm", "x-ms-sevsnpvm-reportdata": ...,
                            "x-ms-sevsnpvm-is-debuggable": ..., "attester_tcb_status": "OutOfDate",
                            "tdx_td_attributes_debug": False, "tdx_report_data": BINDING.report_data.hex()})
    maa_view = maa.verify_token(sign(maa_tdx, rsa_key, "RS256"), anchor_of(rsa_key), now=NOW, binding=BINDING)
    votes = [Vote("ita", "intel", "ita", Outcome.OK, ear=ita_view.ear),
             Vote("maa", "microsoft", "maa", Outcome.OK, ear=maa_view.ear)]
    decision = decide(QuorumPolicy(k=2, n=2), votes)
    assert decision.submods["tdx"].status is Tier.WARNING  # both support warning; only ITA affirming
    assert decide(QuorumPolicy(k=1, n=2), votes).submods["tdx"].status is Tier.AFFIRMING


def test_normalized_ear_is_a_valid_ear(rsa_key: rsa.RSAPrivateKey) -> None:
    view = ita.verify_token(sign(ita_claims(), rsa_key, "PS384"), anchor_of(rsa_key), now=NOW, binding=BINDING)
    signer = SigningKey.generate("ES256")
    for spelling in Spelling:
        again = verify_ear(encode_ear(view.ear, signer, spelling=spelling), TrustAnchor((signer.public,)), now=NOW)
        assert again.ear.submods["tdx"].trust_vector == view.ear.submods["tdx"].trust_vector
        assert again.ear.status is view.ear.status
        ext = again.ear.submods["tdx"].extensions
        assert ext["ear_veraison_annotated_evidence"]["tdx_mrtd"] == "aa" * 48
        assert ext["ear_veraison_policy_claims"]["vendor-map"] == "ita@1"


def test_dispatch_by_kind() -> None:
    claims = json.loads((VR / "maa" / "docs-tdxvm-claims.json").read_text())
    assert vendor.map_claims("maa", claims).ear.status is Tier.AFFIRMING
    with pytest.raises(UsageError):
        vendor.map_claims("nope", claims)
