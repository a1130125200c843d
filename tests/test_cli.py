"""The ``ratsfed`` CLI as a user runs it: JSON with a top-level status, exit codes per DESIGN."""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path

import pytest
from fakes import NOW, register_fake_kind

from federation.cli.main import main

EAR_DIR = Path(__file__).resolve().parents[2] / "shared" / "vectors" / "veraison-services" / "ear"
WALKTHROUGH = EAR_DIR / "walkthrough-psa-ear.jwt"
VERIFIER_JWK = EAR_DIR / "verifier.jwk"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict]:  # type: ignore[type-arg]
    code = main(list(argv))
    out = capsys.readouterr().out
    return code, json.loads(out) if out.strip().startswith("{") else {"text": out}


def test_verify_veraison_ear_prints_status_and_exits_with_its_code(capsys: pytest.CaptureFixture[str]) -> None:
    code, doc = run(capsys, "verify", str(WALKTHROUGH), "--keys", str(VERIFIER_JWK), "--json")
    assert code == 0
    assert doc["status"] == "affirming"
    assert doc["verified"] is True
    assert doc["submods"]["PSA_IOT"]["trust_vector"]["executables"] == 2
    assert doc["verifier_id"] == {"developer": "Veraison Project", "build": "N/A"}


def test_verify_flipped_signature_bit_fails_with_reason(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    header, payload, sig = WALKTHROUGH.read_text().split(".")
    raw = bytearray(base64.urlsafe_b64decode(sig + "=" * (-len(sig) % 4)))
    raw[10] ^= 0x01
    bad = tmp_path / "flipped.jwt"
    bad.write_text(f"{header}.{payload}.{base64.urlsafe_b64encode(bytes(raw)).decode().rstrip('=')}")
    code, doc = run(capsys, "verify", str(bad), "--keys", str(VERIFIER_JWK), "--json")
    assert code == 2
    assert doc["status"] == "none"
    assert doc["verified"] is False
    assert doc["error"]["reason"] == "bad-signature"


def test_verify_nonce_mismatch(capsys: pytest.CaptureFixture[str]) -> None:
    code, doc = run(capsys, "verify", str(WALKTHROUGH), "--keys", str(VERIFIER_JWK), "--nonce", "00" * 32, "--json")
    assert (code, doc["error"]["reason"]) == (2, "nonce-mismatch")


def test_verify_with_the_right_session_nonce(capsys: pytest.CaptureFixture[str]) -> None:
    payload = WALKTHROUGH.read_text().split(".")[1]
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    nonce = base64.urlsafe_b64decode(claims["eat_nonce"]).hex()
    code, doc = run(capsys, "verify", str(WALKTHROUGH), "--keys", str(VERIFIER_JWK), "--nonce", nonce, "--json")
    assert (code, doc["status"]) == (0, "affirming")


def test_keys_generate_writes_private_pem_0600_and_public_jwk(tmp_path: Path) -> None:
    assert main(["keys", "generate", "--out", str(tmp_path / "k"), "--alg", "EdDSA"]) == 0
    assert os.stat(tmp_path / "k" / "private.pem").st_mode & 0o777 == 0o600
    jwk = json.loads((tmp_path / "k" / "public.jwk").read_text())
    assert (jwk["kty"], jwk["crv"], jwk["alg"]) == ("OKP", "Ed25519", "EdDSA")
    assert "d" not in jwk


def _federation(tmp_path: Path, statuses: list[str], k: int) -> Path:
    for name in ("fed", *(f"v{i}" for i in range(len(statuses)))):
        assert main(["keys", "generate", "--out", str(tmp_path / name)]) == 0
    lines = [f'[federation]\nid = "cli-test"\nsigning_key = "fed/private.pem"\n\n[quorum]\nk = {k}\n']
    for i, status in enumerate(statuses):
        lines.append(
            f'[[verifiers]]\nname = "v{i}"\nkind = "fake"\noperator = "op{i}"\n'
            f'trust_anchor = "v{i}/public.jwk"\noptions = {{ status = "{status}", key = "v{i}/private.pem" }}\n'
        )
    cfg = tmp_path / "fed.toml"
    cfg.write_text("\n".join(lines))
    return cfg


@pytest.mark.parametrize(
    ("statuses", "k", "status", "code"),
    [
        (["affirming", "affirming", "affirming"], 2, "affirming", 0),
        (["affirming", "warning", "warning"], 2, "warning", 3),
        (["affirming", "affirming", "contraindicated"], 2, "contraindicated", 4),
        (["affirming", "none", "none"], 2, "none", 5),
    ],
)
def test_appraise_with_config_then_verify_and_reverify(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], statuses: list[str], k: int, status: str, code: int
) -> None:
    register_fake_kind()
    cfg = _federation(tmp_path, statuses, k)
    capsys.readouterr()
    evidence = tmp_path / "evidence.bin"
    evidence.write_bytes(b"opaque evidence")
    out = tmp_path / "result.jwt"
    got, doc = run(capsys, "appraise", str(evidence), "--media-type", "application/octet-stream", "--config",
                   str(cfg), "--out", str(out), "--at", str(NOW), "--nonce", "ab" * 32, "--json")
    assert (got, doc["status"]) == (code, status)
    assert [v["outcome"] for v in doc["votes"]] == ["ok"] * len(statuses)
    anchors = [a for i in range(len(statuses)) for a in ("--anchor", f"v{i}={tmp_path / f'v{i}' / 'public.jwk'}")]
    got, doc = run(capsys, "verify", str(out), "--keys", str(tmp_path / "fed" / "public.jwk"), "--nonce", "ab" * 32,
                   "--at", str(NOW), "--reverify", *anchors, "--json")
    assert (got, doc["status"]) == (code, status)
    assert doc["reverified"]["decision"].startswith(status)
    assert len(doc["provenance"]["votes"]) == len(statuses)


def test_appraise_without_config_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    evidence = tmp_path / "e.bin"
    evidence.write_bytes(b"x")
    code, doc = run(capsys, "appraise", str(evidence), "--media-type", "application/octet-stream", "--json")
    assert (code, doc["error"]["reason"]) == (2, "usage")
