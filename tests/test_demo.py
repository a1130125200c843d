"""``ratsfed demo`` as a user runs it: a subprocess that starts four ``ratsfed serve`` processes,
attests over HTTP, and stops them all.

The must-show: it exits 0 with every case at its expected status, in under a minute, leaves no
process behind, and its combined token verifies with ``ratsfed verify`` and with an independent
JOSE library (jwcrypto); ``--out DIR`` leaves configs from which ``ratsfed serve`` starts the same
federation, which then answers an appraisal.

Both runs (``--out DIR --json`` and the README's plain ``ratsfed demo``) start together in one
module fixture, so the suite waits for one demo's time, not two.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import stat
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from jwcrypto import jwk, jws

from federation import TrustAnchor, verify_result
from federation.cli.main import main
from federation.keys import b64url_decode, load_trust_anchor

EXPECTED = ["affirming", "affirming", "warning", "contraindicated", "contraindicated", "contraindicated"]
RATSFED = Path(sys.executable).with_name("ratsfed")  # the console script the README's install puts there


def ratsfed(*args: str) -> list[str]:
    return [str(RATSFED), *args] if RATSFED.exists() else [sys.executable, "-m", "federation", *args]


def alive(pid: int, marker: str) -> bool:
    """Whether *pid* still exists as one of ours: its command line names *marker* (the demo's folder),
    so that a pid the system reused for something else does not count."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (FileNotFoundError, ProcessLookupError):
        return False
    return marker.encode() in cmdline


def processes_naming(marker: str) -> list[tuple[int, str]]:
    """Every process on this machine whose command line names *marker*."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if marker.encode() in cmdline:
            found.append((int(entry.name), cmdline.replace(b"\0", b" ").decode(errors="replace")))
    return found


@dataclass
class Runs:
    out: Path
    doc: dict[str, Any]
    code: int
    seconds: float
    stderr: str
    text_code: int
    text: str
    text_tmp: Path


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Runs:
    base = tmp_path_factory.mktemp("demo")
    out, tmp = base / "out", base / "tmp"
    tmp.mkdir()
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    started = time.monotonic()
    with (base / "json.out").open("wb") as jout, (base / "json.err").open("wb") as jerr, \
            (base / "text.out").open("wb") as tout:
        as_json = subprocess.Popen(ratsfed("demo", "--out", str(out), "--json"), stdout=jout, stderr=jerr, env=env)
        as_text = subprocess.Popen(ratsfed("demo"), stdout=tout, stderr=subprocess.STDOUT,
                                   env={**env, "TMPDIR": str(tmp)})
        try:
            code = as_json.wait(timeout=120)
            seconds = time.monotonic() - started
            text_code = as_text.wait(timeout=120)
        finally:
            for p in (as_json, as_text):
                if p.poll() is None:
                    p.kill()
                    p.wait()
    stderr = (base / "json.err").read_text()
    raw = (base / "json.out").read_text()
    assert raw.strip(), f"no JSON on stdout; stderr: {stderr[-2000:]}"
    return Runs(out, json.loads(raw), code, seconds, stderr, text_code, (base / "text.out").read_text(), tmp)


def test_the_demo_reaches_every_expected_status_in_under_a_minute(runs: Runs) -> None:
    doc = runs.doc
    assert runs.code == 0, runs.stderr[-2000:]
    assert doc["status"] == "affirming"
    cases = doc["cases"]
    assert [c["status"] for c in cases] == EXPECTED
    assert [c["evidence"] for c in cases] == ["SEV-SNP", "PSA", "PSA", "PSA", "PSA", "SEV-SNP"]
    for c in cases:
        assert c["ok"] and c["votes_reverified"] and c["status"] == c["expected"]
        votes = c["votes"]
        assert [v["outcome"] for v in votes] == ["ok"] * 3
        assert {v["operator"] for v in votes} == {"acme", "globex", "initech"}
        assert all(v["status"] == c["status"] and v["latency_ms"] is not None for v in votes)
    problems = [next(v["problem"] for v in c["votes"]) for c in cases[3:]]
    assert "signature does not verify" in problems[0]
    assert "nonce" in problems[1]
    assert "debugging" in problems[2]
    assert runs.seconds < 60 and doc["seconds"] < 60
    services = doc["services"]
    assert [(s["role"], s["exit_code"]) for s in services] == [("verifier", 0)] * 3 + [("federator", 0)]
    assert all(s["url"].startswith("http://127.0.0.1:") for s in services)


def test_no_process_is_left_behind(runs: Runs) -> None:
    services = runs.doc["services"]
    assert len(services) == 4
    assert not [s["pid"] for s in services if alive(s["pid"], str(runs.out))]
    assert processes_naming(str(runs.out)) == []
    # the plain run too: its services named its temporary folder
    assert processes_naming(str(runs.text_tmp)) == []
    pids = [int(p) for p in re.findall(r"\bpid (\d+)", runs.text)]
    assert len(pids) == 4 and not [p for p in pids if alive(p, str(runs.text_tmp))]


def test_the_plain_demo_prints_the_table_and_how_to_verify(runs: Runs) -> None:
    text = runs.text
    assert runs.text_code == 0, text[-3000:]
    assert re.search(r"#\s+case\s+acme\s+globex\s+initech\s+combined", text)
    rows = [line for line in text.splitlines() if re.match(r"\s+\d\s+(SEV-SNP|PSA):", line)]
    assert [line.split()[-2] for line in rows] == EXPECTED and all(line.endswith(" ok") for line in rows)
    assert re.search(r"affirming\s+\d+ms", text)
    assert "6/6 cases got their expected status" in text
    match = re.search(r"verify (\S+combined\.jwt) --keys (\S+federation\.jwk)\n", text)
    assert match is not None
    token, keys = Path(match.group(1)), Path(match.group(2))
    assert token.is_relative_to(runs.text_tmp) and token.exists() and keys.exists()
    seconds = re.search(r"finished in ([\d.]+) s", text)
    assert seconds is not None and float(seconds.group(1)) < 60


def test_the_combined_token_verifies_with_ratsfed_verify(runs: Runs) -> None:
    out = runs.out
    done = subprocess.run(ratsfed("verify", str(out / "combined.jwt"), "--keys", str(out / "federation.jwk"), "--json"),
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    doc = json.loads(done.stdout)
    assert doc["status"] == "affirming" and doc["verified"] is True
    assert list(doc["submods"]) == ["SEVSNP"]
    again = subprocess.run(ratsfed("verify", str(out / "combined.jwt"), "--keys", str(out / "federation.jwk"),
                                   "--reverify", "--config", str(out / "federator.toml"), "--json"),
                           capture_output=True, text=True, timeout=60)
    assert again.returncode == 0, again.stdout + again.stderr
    assert json.loads(again.stdout)["reverified"]["decision"].startswith("affirming")


def test_the_combined_token_verifies_with_jwcrypto(runs: Runs) -> None:
    """An independent JOSE library: the combined result under federation.jwk, and every vote embedded
    in it under that verifier's public key from the --out folder."""
    out = runs.out
    key = jwk.JWK.from_json((out / "federation.jwk").read_text())
    token = jws.JWS()
    token.deserialize((out / "combined.jwt").read_text())
    token.verify(key, alg="ES256")
    header = token.jose_header
    assert header["alg"] == "ES256" and header["kid"] == key.thumbprint()
    claims = json.loads(token.payload)
    assert claims["submods"]["SEVSNP"]["ear.status"] == "affirming"
    assert b64url_decode(claims["eat_nonce"]).hex() == runs.doc["cases"][0]["nonce"]  # case 1's session nonce
    votes = claims["ear.ratsfed.provenance"]["votes"]
    assert len(votes) == 3
    for vote in votes:
        op = vote["operator"]
        inner = jws.JWS()
        inner.deserialize(vote["result"])
        inner.verify(jwk.JWK.from_json((out / "keys" / op / "public.jwk").read_text()), alg="ES256")
        vote_claims = json.loads(inner.payload)
        assert vote_claims["eat_nonce"] == claims["eat_nonce"]
        assert vote_claims["submods"]["SEVSNP"]["ear.status"] == "affirming"
    with pytest.raises(jws.InvalidJWSSignature):
        token.verify(jwk.JWK.from_json((out / "keys" / "acme" / "public.jwk").read_text()), alg="ES256")


START_BOUND = 240.0  # seconds for a demo's three verifiers to listen: a hang guard, not a speed target
STOP_BOUND = 60.0  # seconds, from a demo's signal, for it and every process it started to be gone


def test_an_interrupted_or_killed_demo_leaves_no_process_behind(tmp_path: Path) -> None:
    """SIGTERM (like Ctrl-C) makes the demo stop what it started; if the demo itself is killed
    (SIGKILL, no clean-up possible), its services still go: they get SIGTERM when it dies.

    Each demo is signalled once its three verifiers listen (it is then starting the federator).
    The bounds are per demo and per phase, and generous: each demo first makes two RSA-4096 keys,
    whose time varies by several times from one run to the next and more on a shared machine
    (two demos run at once here); one deadline for everything, counted from the start, used to
    run out on a busy machine before the clean-up was even looked at."""
    demos: dict[signal.Signals, tuple[Path, subprocess.Popen[str], float]] = {}
    for how in (signal.SIGTERM, signal.SIGKILL):
        out = tmp_path / how.name
        demos[how] = (out, subprocess.Popen(ratsfed("demo", "--out", str(out), "--json"), stdout=subprocess.DEVNULL,
                                            stderr=subprocess.PIPE, text=True), time.monotonic())
    signalled: dict[signal.Signals, float] = {}
    try:
        pending = dict(demos)
        while pending:
            for how, (out, proc, started) in list(pending.items()):
                logs = [out / "logs" / f"{op}-verifier.stdout" for op in ("acme", "globex", "initech")]
                if all(p.exists() and "listening" in p.read_text() for p in logs):
                    assert proc.poll() is None, "the demo ended before it could be interrupted"
                    assert len(processes_naming(str(out))) >= 4  # the demo and its services
                    proc.send_signal(how)
                    signalled[how] = time.monotonic()
                    del pending[how]
                else:
                    assert proc.poll() is None, f"{how.name} demo exited {proc.returncode} before its verifiers " \
                                                f"listened: {proc.stderr.read() if proc.stderr else ''}"
                    assert time.monotonic() - started < START_BOUND, f"the {how.name} demo did not start its " \
                                                                     f"verifiers within {START_BOUND:.0f} s"
            time.sleep(0.01)
        for how, (out, proc, _) in demos.items():
            _, stderr = proc.communicate(timeout=STOP_BOUND)
            assert proc.returncode == (130 if how == signal.SIGTERM else -signal.SIGKILL), stderr
            if how == signal.SIGTERM:
                assert "every process it started was stopped" in stderr
            gone_by = signalled[how] + STOP_BOUND
            while processes_naming(str(out)) and time.monotonic() < gone_by:
                time.sleep(0.05)
            assert processes_naming(str(out)) == [], f"{how.name}: left behind after {STOP_BOUND:.0f} s"
    finally:
        for out, proc, _ in demos.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            for pid, _ in processes_naming(str(out)):  # only on failure: what this test started, by pid
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)


def test_a_service_that_does_not_start_fails_the_demo_cleanly(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    import federation.demo

    good = federation.demo._verifier_config

    def broken(m: federation.demo.Material, op: str, port: int) -> str:
        return good(m, op, port) + ("no_such_option = 1\n" if op == "globex" else "")

    monkeypatch.setattr(federation.demo, "_verifier_config", broken)
    out = tmp_path / "out"
    assert main(["demo", "--out", str(out), "--json"]) == 2
    doc = json.loads(capsys.readouterr().out)
    assert doc["error"]["reason"] == "demo"
    assert "globex-verifier exited with 2 before listening" in doc["error"]["detail"]
    assert "no_such_option" in doc["error"]["detail"]
    deadline = time.monotonic() + 15
    while processes_naming(str(out)) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert processes_naming(str(out)) == []
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    assert main(["demo", "--out", str(blocker), "--json"]) == 2
    assert "cannot write the demo's files" in json.loads(capsys.readouterr().out)["error"]["detail"]


class Serve:
    """``ratsfed serve --config FILE`` in its own process group, as a user would start it."""

    def __init__(self, config: Path, logs: Path) -> None:
        self.out = logs / f"{config.stem}.stdout"
        with self.out.open("wb") as out, (logs / f"{config.stem}.stderr").open("wb") as err:
            self.proc = subprocess.Popen(ratsfed("serve", "--config", str(config)), stdout=out, stderr=err,
                                         stdin=subprocess.DEVNULL, start_new_session=True,
                                         env={**os.environ, "PYTHONUNBUFFERED": "1"})

    def url(self, deadline: float) -> str:
        while time.monotonic() < deadline:
            for line in self.out.read_text().splitlines():
                if " listening on " in line:
                    return line.rsplit(" ", 1)[1].rstrip("/")
            if self.proc.poll() is not None:
                raise AssertionError(f"exited {self.proc.returncode}: {self.out.with_suffix('.stderr').read_text()}")
            time.sleep(0.05)
        raise AssertionError(f"{self.out.stem} did not listen")

    def stop(self) -> int:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        return self.proc.returncode


@pytest.fixture
def served(runs: Runs, tmp_path: Path) -> Iterator[tuple[str, list[Serve]]]:
    out = runs.out
    servers: list[Serve] = []
    try:
        for op in ("acme", "globex", "initech"):
            servers.append(Serve(out / f"verifier-{op}.toml", tmp_path))
        deadline = time.monotonic() + 60
        for s in servers:
            s.url(deadline)
        servers.append(Serve(out / "federator.toml", tmp_path))
        yield servers[-1].url(deadline), servers
    finally:
        codes = [s.stop() for s in reversed(servers)]
        assert codes == [0] * len(servers)
        assert not [s.proc.pid for s in servers if alive(s.proc.pid, str(out))]


def test_the_out_folder_starts_the_same_federation_with_ratsfed_serve(runs: Runs,
                                                                      served: tuple[str, list[Serve]]) -> None:
    out = runs.out
    for private in out.glob("keys/*/private.pem"):
        assert stat.S_IMODE(private.stat().st_mode) == 0o600
    assert sorted(p.name for p in out.glob("*.toml")) == [
        "federator.toml", "verifier-acme.toml", "verifier-globex.toml", "verifier-initech.toml"]
    url, _ = served
    index = json.loads((out / "evidence" / "index.json").read_text())
    anchors = {f"{op}-verifier": load_trust_anchor(out / "keys" / op / "public.jwk")
               for op in ("acme", "globex", "initech")}
    fed_key = load_trust_anchor(out / "federation.jwk")
    assert isinstance(fed_key, TrustAnchor)
    for entry in index[:3]:  # the CVM, the PSA device, the unknown bootloader: replayed with their own nonces
        request = urllib.request.Request(
            f"{url}/v1/appraise?nonce={entry['nonce']}", data=(out / "evidence" / entry["file"]).read_bytes(),
            headers={"Content-Type": entry["media_type"], "Accept": "application/json"}, method="POST")
        with urllib.request.urlopen(request, timeout=30) as resp:
            doc = json.loads(resp.read())
        assert doc["status"] == entry["expected"], doc
        checked = verify_result(doc["token"], fed_key, nonce=bytes.fromhex(entry["nonce"]), reverify=True,
                                anchors=anchors)
        assert checked.status == entry["expected"]
