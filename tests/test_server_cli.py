"""``ratsfed serve`` as a real process: Veraison's curl sequence against it (newSession, Evidence
POST, read ``result``), structured logs without secrets, graceful stop on SIGTERM; startup errors
exit 2."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from server_helpers import CORIM, GOOD, MT, N32, N32_B64, SESSION, verify
from test_server_config import example

from federation.cli.main import main

CURL = shutil.which("curl")


def curl(*args: str) -> str:
    assert CURL is not None, "curl is needed to replay Veraison's documented sequence"
    out = subprocess.run([CURL, "-s", "--max-time", "20", *args], check=True, capture_output=True, timeout=30)
    return out.stdout.decode()


def start(config: Path) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "federation", "serve", "--config", str(config), "--port", "0", "--host", "127.0.0.1"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    assert proc.stdout is not None
    line = proc.stdout.readline()  # "ratsfed serve: verifier listening on http://127.0.0.1:PORT"
    if "listening on " not in line:
        proc.kill()
        raise AssertionError(f"server did not start: {line!r} {proc.stderr.read() if proc.stderr else ''}")
    return proc, line.rsplit(" ", 1)[1].strip()


def test_veraisons_curl_sequence_against_ratsfed_serve(tmp_path: Path) -> None:
    config = example(tmp_path, "verifier.toml", "verifier")
    proc, base = start(config)
    try:
        # (1) newSession, as in Veraison's API docs and integration tests (only host and port differ)
        head = curl("-i", "-X", "POST", "-H", f"Accept: {SESSION}",
                    f"{base}/challenge-response/v1/newSession?nonce={N32_B64}")
        status_line, _, rest = head.partition("\r\n")
        assert " 201 " in status_line
        headers, _, body = rest.partition("\r\n\r\n")
        location = next(h.split(":", 1)[1].strip() for h in headers.split("\r\n") if h.lower().startswith("location:"))
        assert json.loads(body)["status"] == "waiting"
        session_url = f"{base}/challenge-response/v1/{location}"  # relative Location, resolved as clients do
        # (2) the Evidence with its media type; (3) read "result"
        evidence = tmp_path / "psa.good.cose"
        evidence.write_bytes(GOOD)
        done = json.loads(curl("-X", "POST", "-H", f"Accept: {SESSION}", "-H", f"Content-Type: {MT}",
                               "--data-binary", f"@{evidence}", session_url))
        assert done["status"] == "complete"
        result = done["result"]
        # the verification key from the well-known endpoint, as Veraison's walkthrough fetches it
        key = json.loads(curl(f"{base}/.well-known/veraison/verification"))["ear-verification-key"]
        assert verify(result, key, N32).ear.status.label == "affirming"
        assert json.loads(curl(session_url, "-H", f"Accept: {SESSION}"))["result"] == result
        curl("-X", "DELETE", session_url)
        assert json.loads(curl(session_url))["status"] == 404
    finally:
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=20)
    assert proc.returncode == 0
    logs = [json.loads(line) for line in stderr.splitlines() if line.startswith("{")]
    appraisals = [r for r in logs if r["msg"] == "appraisal"]
    assert appraisals and appraisals[0]["status"] == "affirming" and appraisals[0]["evidence_bytes"] == len(GOOD)
    assert any(r["msg"] == "request" and r["route"] == "/challenge-response/v1/session/{id}" for r in logs)
    assert result.split(".")[2] not in stderr  # no token in the logs
    for secret in (GOOD.hex()[:40], (config.parent / "keys/verifier/private.pem").read_text().splitlines()[1]):
        assert secret not in stderr


def test_startup_errors_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                              monkeypatch: pytest.MonkeyPatch) -> None:
    import federation.server.logs

    monkeypatch.setattr(federation.server.logs, "configure", lambda *a: None)  # keep this process's logging
    bad = tmp_path / "bad.toml"
    bad.write_text('[server]\nrole = "verifier"\nportt = 1\n'
                   '[[verifiers]]\nname = "v"\nkind = "local"\noperator = "o"\n')
    assert main(["serve", "--config", str(bad)]) == 2
    assert "server.portt" in capsys.readouterr().err
    auth = tmp_path / "auth.toml"
    auth.write_text(f'[server]\nrole = "verifier"\nport = 0\nauth_tokens_env = "RATSFED_NO_SUCH_VAR"\n'
                    f'[[verifiers]]\nname = "v"\nkind = "local"\noperator = "o"\n'
                    f'options = {{ corim = ["{CORIM}"], trust_unsigned = true }}\n')
    assert main(["serve", "--config", str(auth)]) == 2
    assert "RATSFED_NO_SUCH_VAR is not set" in capsys.readouterr().err
