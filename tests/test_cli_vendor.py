"""``ratsfed verify --kind``: a vendor token checked as the federation checks it, shown as its EAR.

Runs the CLI's main function on the real tokens in ../shared/vectors/vendor-results, each at its
own time (``--at``), with the usual exit codes (0 affirming, 3 warning, 4 contraindicated, 2 for a
token that does not verify or a usage error).
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import jwt as pyjwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from federation.cli.main import main
from federation.keys import public_to_jwk
from verifiers.vendor import ita

VR = Path(__file__).resolve().parents[2] / "shared" / "vectors" / "vendor-results"
EAR_DIR = Path(__file__).resolve().parents[2] / "shared" / "vectors" / "veraison-services" / "ear"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict[str, Any]]:
    code = main(list(argv))
    out = capsys.readouterr().out
    return code, json.loads(out) if out.strip().startswith("{") else {"text": out}


def iat(path: Path) -> int:
    payload = path.read_text().strip().split(".")[1]
    return int(json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))["iat"])


ITA_SGX = VR / "ita" / "sgx-v1-dev-c-client.jwt"
ITA_JWKS = VR / "ita" / "sgx-v1-dev-c-client.jwks.json"
MAA = VR / "maa" / "azurevm-sevsnp-sharedweu-cvm-clientlib.jwt"
MAA_JWKS = VR / "maa" / "sharedweu-signing-key.jwks.json"
GOOGLE = VR / "google" / "cs-pki-sev-debug-oak.jwt"
GOOGLE_ROOT = VR / "google" / "confidential-space-root-ca.crt"


def test_ita_sgx_token_is_warning(capsys: pytest.CaptureFixture[str]) -> None:
    code, doc = run(capsys, "verify", str(ITA_SGX), "--keys", str(ITA_JWKS), "--kind", "ita",
                    "--at", "2024-06-11T04:11:04Z", "--json")
    assert (code, doc["status"], doc["verified"], doc["kind"]) == (3, "warning", True, "ita")
    assert (doc["algorithm"], doc["binding"], doc["mapping"]) == ("PS384", "unchecked", "ita@1")
    sgx = doc["submods"]["sgx"]
    assert sgx["trust_vector"] == {"instance-identity": 2, "configuration": 2, "executables": 33, "file-system": 0,
                                   "hardware": 32, "runtime-opaque": 2, "storage-opaque": 0, "sourced-data": 0}
    assert sgx["annotated_evidence"]["sgx_mrenclave"].startswith("83f4e819")
    assert ita.TABLE.rules[sgx["rows"]["executables"] - 1].when.reads() == ("policy_ids_unmatched",)
    assert doc["issuer"] == "Intel Trust Authority"


def test_ita_sgx_token_with_its_report_data(capsys: pytest.CaptureFixture[str]) -> None:
    payload = ITA_SGX.read_text().split(".")[1]
    rd = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))["sgx_report_data"][:64]
    code, doc = run(capsys, "verify", str(ITA_SGX), "--keys", str(ITA_JWKS), "--kind", "ita",
                    "--at", str(iat(ITA_SGX) + 1), "--nonce", rd, "--json")
    assert (code, doc["binding"]) == (3, "report-data")
    code, doc = run(capsys, "verify", str(ITA_SGX), "--keys", str(ITA_JWKS), "--kind", "ita",
                    "--at", str(iat(ITA_SGX) + 1), "--nonce", "11" * 32, "--json")
    assert (code, doc["error"]["reason"]) == (2, "nonce-mismatch")


def test_ita_production_token_has_no_key_here(capsys: pytest.CaptureFixture[str]) -> None:
    token = VR / "ita" / "tdx-v1-prod-kbs-test.jwt"
    code, doc = run(capsys, "verify", str(token), "--keys", str(ITA_JWKS), "--kind", "ita",
                    "--at", str(iat(token) + 1), "--json")
    assert (code, doc["verified"], doc["error"]["reason"]) == (2, False, "untrusted-key")


def test_ita_token_is_stale_at_the_current_time(capsys: pytest.CaptureFixture[str]) -> None:
    code, doc = run(capsys, "verify", str(ITA_SGX), "--keys", str(ITA_JWKS), "--kind", "ita", "--json")
    assert (code, doc["error"]["reason"]) == (2, "stale")


def test_maa_azurevm_token_is_affirming(capsys: pytest.CaptureFixture[str]) -> None:
    code, doc = run(capsys, "verify", str(MAA), "--keys", str(MAA_JWKS), "--kind", "maa",
                    "--at", str(iat(MAA) + 1), "--json")
    assert (code, doc["status"], doc["mapping"]) == (0, "affirming", "maa@1")
    snp = doc["submods"]["sev-snp"]
    assert snp["trust_vector"]["hardware"] == 2
    assert snp["annotated_evidence"]["x-ms-compliance-status"] == "azure-compliant-cvm"
    assert doc["issuer"] == "https://sharedweu.weu.attest.azure.net"


def test_google_debug_image_is_contraindicated(capsys: pytest.CaptureFixture[str]) -> None:
    nonce = b"a nonce between 10 and 74 characters".hex()
    code, doc = run(capsys, "verify", str(GOOGLE), "--keys", str(GOOGLE_ROOT), "--kind", "google",
                    "--at", str(iat(GOOGLE) + 1), "--nonce", nonce, "--json")
    assert (code, doc["status"], doc["binding"]) == (4, "contraindicated", "eat-nonce")
    assert doc["submods"]["sev"]["trust_vector"]["configuration"] == 96
    assert doc["submods"]["sev"]["trust_vector"]["hardware"] == 2


def test_google_badsig_and_expired_leaf(capsys: pytest.CaptureFixture[str]) -> None:
    badsig = VR / "google" / "cs-pki-sev-debug-oak-badsig.jwt"
    code, doc = run(capsys, "verify", str(badsig), "--keys", str(GOOGLE_ROOT), "--kind", "google",
                    "--at", str(iat(badsig) + 1), "--json")
    assert (code, doc["error"]["reason"]) == (2, "bad-signature")
    code, doc = run(capsys, "verify", str(GOOGLE), "--keys", str(GOOGLE_ROOT), "--kind", "google", "--json")
    assert code == 2 and doc["error"]["reason"] in ("untrusted-key", "stale")


def test_trustee_example_and_legacy_token(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    claims = json.loads((VR / "trustee" / "ear-claims-example.json").read_text())
    key = ec.generate_private_key(ec.SECP256R1())
    jwk = public_to_jwk(key.public_key(), alg="ES256")
    token = tmp_path / "ear.jwt"
    token.write_text(pyjwt.encode(claims, key, algorithm="ES256", headers={"jwk": jwk}))
    jwks = tmp_path / "jwks.json"
    jwks.write_text(json.dumps({"keys": [jwk]}))
    code, doc = run(capsys, "verify", str(token), "--keys", str(jwks), "--kind", "trustee",
                    "--at", str(claims["iat"] + 1), "--nonce", b"test".hex() + "00" * 8, "--json")
    assert (code, doc["status"], doc["binding"]) == (4, "contraindicated", "report-data")
    assert doc["submods"]["cpu0"]["trust_vector"]["hardware"] == 97
    # the token's own jwk header is not an anchor: under Trustee's published fixture key it fails
    code, doc = run(capsys, "verify", str(token), "--keys", str(VR / "trustee" / "as-jwks-fixture.json"),
                    "--kind", "trustee", "--at", str(claims["iat"] + 1), "--json")
    assert (code, doc["error"]["reason"]) == (2, "bad-signature")
    legacy = VR / "trustee" / "legacy-coco-as-token.jwt"
    code, doc = run(capsys, "verify", str(legacy), "--keys", str(VR / "trustee" / "as-jwks-fixture.json"),
                    "--kind", "trustee", "--at", "1701672666", "--json")
    assert (code, doc["error"]["reason"]) == (2, "bad-algorithm")


def test_human_output(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["verify", str(MAA), "--keys", str(MAA_JWKS), "--kind", "maa", "--at", str(iat(MAA) + 1)])
    out = capsys.readouterr().out
    assert code == 0
    assert out.startswith("status: affirming (maa token verified, RS256")
    assert "binding unchecked; mapping maa@1" in out
    assert "  sev-snp: affirming" in out
    assert "x-ms-sevsnpvm-launchmeasurement: 8962" in out


def test_usage_errors(capsys: pytest.CaptureFixture[str]) -> None:
    code, doc = run(capsys, "verify", str(MAA), "--keys", str(MAA_JWKS), "--kind", "maa", "--reverify", "--json")
    assert (code, doc["error"]["reason"]) == (2, "usage")
    assert main(["verify", str(MAA), "--keys", str(MAA_JWKS), "--kind", "veraison"]) == 2
    capsys.readouterr()
    code, doc = run(capsys, "verify", str(MAA), "--keys", str(VR / "maa" / "missing.json"), "--kind", "maa",
                    "--json")
    assert (code, doc["verified"]) == (2, False)


def test_without_kind_verify_is_unchanged(capsys: pytest.CaptureFixture[str]) -> None:
    code, doc = run(capsys, "verify", str(EAR_DIR / "walkthrough-psa-ear.jwt"), "--keys",
                    str(EAR_DIR / "verifier.jwk"), "--json")
    assert (code, doc["status"]) == (0, "affirming")
    assert "kind" not in doc and "mapping" not in doc
    # a vendor token is not an EAR: without --kind it does not pass as one
    code, doc = run(capsys, "verify", str(MAA), "--keys", str(MAA_JWKS), "--at", str(iat(MAA) + 1), "--json")
    assert code == 2 and doc["verified"] is False
