"""End to end over loopback with real processes: three ``ratsfed serve`` verifier-role services
(each its own result-signing key from ``ratsfed keys generate`` and its own operator, the same
CoRIMs) behind one ``ratsfed serve`` federator (k = 2 of three ``kind = "veraison"`` backends, each
pinned to its verifier's public JWK), driven over HTTP as a relying party would: Veraison's
challenge-response flow and ``POST /v1/appraise``.

* Veraison's PSA vector ``psa.good.cose`` (nonce N32) is affirming and the combined token verifies
  with every vote re-verified under the verifiers' own keys; offered again under its nonce to the
  federator it is refused (409: one nonce, one appraisal, ``federation.replay``); its claims bound to a fresh nonce
  are affirming through ``/v1/appraise`` too; a token signed by another key is contraindicated.
* Demo-style fresh evidence (a CoRIM signed by a generated endorser key, trusted through
  ``endorsers``; a PSA token bound to the federator session's nonce) is affirming; the same token
  replayed in a new session is contraindicated.
* The Genoa SEV-SNP TSM report from Veraison's vectors (nonce = its REPORT_DATA) is affirming under
  a CoRIM naming its launch measurement, and refused when replayed.
* A verifier process killed (SIGKILL) while appraisals run (the PSA vector's claims, each bound to a
  fresh nonce): every result stays affirming and the dead backend is recorded ``unreachable``; with a
  second one killed every result is ``none``.

The verifiers validate at ``at = 2026-01-01`` (the Genoa report's time; the PSA vectors' CoRIM is
unsigned and undated, and the demo CoRIM is made valid around that time). Results are issued at
the wall clock, so the federator checks freshness as in production.
"""

from __future__ import annotations

import asyncio
import base64
import os
import subprocess
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from process_helpers import ServerProcess, ratsfed, start_servers, stop_all
from test_local_psa import MT, N32, PSA, key

from federation import cbor, cose, verify_result
from federation.demo import _corim, _token
from federation.keys import SigningKey, TrustAnchor, load_signing_key, load_trust_anchor
from federation.result import VerifiedResult
from verifiers.local.corim.encode import sign_corim
from verifiers.local.corim.model import (
    ClassMap,
    Comid,
    Corim,
    CorimMeta,
    Digest,
    Environment,
    Measurement,
    MeasurementValues,
    ReferenceTriple,
    Tagged,
    Triples,
    Validity,
)
from verifiers.local.evidence.psa import json_to_cbor_claims
from verifiers.local.evidence.sevsnp import MEDIA_TYPE_TSM_CBOR
from verifiers.local.schemes.sevsnp import CLASS_VCEK

VECTORS = Path(__file__).resolve().parents[2] / "shared" / "vectors"
GOOD = (PSA / "evidence" / "psa.good.cose").read_bytes()
PSA_CORIM = PSA / "endorsements" / "corim-psa-valid.cbor"
GENOA = VECTORS / "sev-snp" / "veraison" / "sevsnp-tsm-report.cbor"
GENOA_RD = b"MIDBNH28iioisjPyxxxxxxxxxxxxxxxx" * 2  # the report's REPORT_DATA: the nonce it answers
GENOA_MEASUREMENT = bytes.fromhex("7699e6ac12ccdfd1dfac70e649ce1f046cb2afbb003438f4"
                                  "cdddfe2ccbe182fa5ffbe8dcdb930454324e10c52c788980")
AT = datetime(2026, 1, 1, tzinfo=UTC)
OPERATORS = ("acme", "globex", "initech")
SESSION = "application/vnd.veraison.challenge-response-session+json"
CR = "/challenge-response/v1"
DEMO_SIGNER = "ACME Firmware Signing"  # federation.demo's CoRIM signer
SNP_SIGNER = "Cloud Firmware Signing"


def vector_token(nonce: bytes, signer: str = "ec.p256.jwk") -> bytes:
    """Veraison's ``psa.good`` claims bound to *nonce* (as ``psa.good.cose`` is to N32), signed by
    *signer* (``ec.p256.jwk``: the key ``corim-psa-valid.cbor`` endorses)."""
    claims = json_to_cbor_claims((PSA / "claims" / "psa.good.json").read_text())
    return cose.sign1(cbor.dumps({**claims, 10: nonce}), key(signer))


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


# -- the world: keys, CoRIMs, configs -------------------------------------------------------------


@dataclass
class World:
    root: Path
    device: SigningKey  # the demo PSA attestation key, endorsed in the demo CoRIM
    anchors: dict[str, TrustAnchor]  # backend name -> the verifier's public key (for --reverify)
    federation: TrustAnchor

    def key_dir(self, name: str) -> Path:
        return self.root / "keys" / name


def generate_keys(root: Path, names: tuple[str, ...]) -> None:
    """``ratsfed keys generate --out keys/NAME`` for every name, the processes in parallel."""
    procs = [subprocess.Popen(ratsfed("keys", "generate", "--out", str(root / "keys" / n)),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE) for n in names]
    for p in procs:
        out, err = p.communicate(timeout=60)
        assert p.returncode == 0, (out, err)


def snp_corim(endorser: SigningKey) -> bytes:
    """Reference values naming the Genoa report's launch measurement (docs/sevsnp.md)."""
    launch = ReferenceTriple(Environment(ClassMap(CLASS_VCEK)), (
        Measurement(MeasurementValues(digests=(Digest(7, GENOA_MEASUREMENT),)), Tagged("uint", 0)),))
    corim = Corim("cvm-firmware-2026", (Comid("snp-launch", Triples(reference=(launch,))),))
    meta = CorimMeta(SNP_SIGNER, signature_validity=Validity(AT - timedelta(days=1), AT + timedelta(days=30)))
    return sign_corim(corim, endorser, meta)


def toml_list(paths: list[Path]) -> str:
    return "[" + ", ".join(f'"{p}"' for p in paths) + "]"


def make_world(root: Path) -> World:
    generate_keys(root, (*OPERATORS, "federation", "endorser"))
    endorser = load_signing_key(root / "keys" / "endorser" / "private.pem")
    device = SigningKey.generate()
    corims = root / "corim"
    corims.mkdir()
    (corims / "demo.cbor").write_bytes(_corim(device, endorser, AT))
    (corims / "snp.cbor").write_bytes(snp_corim(endorser))
    corim_files = [PSA_CORIM, corims / "demo.cbor", corims / "snp.cbor"]
    for op in OPERATORS:
        (root / f"{op}.toml").write_text(f"""
[federation]
id = "{op}-verifier"

[server]
role = "verifier"
verifier = "{op}"
port = 0

[[verifiers]]
name = "{op}"
kind = "local"
operator = "{op}"
timeout = 5
options = {{ corim = {toml_list(corim_files)}, trust_unsigned = true, at = "{AT.isoformat()}", \
    endorsers = ["{root}/keys/endorser/public.jwk"], signing_key = "{root}/keys/{op}/private.pem" }}
""")
    anchors = {op: load_trust_anchor(root / "keys" / op / "public.jwk") for op in OPERATORS}
    return World(root, device, anchors, load_trust_anchor(root / "keys" / "federation" / "public.jwk"))


def federator_config(world: World, urls: dict[str, str], path: Path) -> Path:
    backends = "".join(f"""
[[verifiers]]
name = "{op}"
kind = "veraison"
operator = "{op}"
trust_anchor = "{world.root}/keys/{op}/public.jwk"
timeout = 2
retries = 0
options = {{ url = "{urls[op]}", breaker_failures = 2, breaker_cooldown = 30 }}
""" for op in OPERATORS)
    path.write_text(f"""
[federation]
id = "e2e-federation"
signing_key = "{world.root}/keys/federation/private.pem"
deadline = 5

[quorum]
k = 2
veto = true
wait = "all"
distinct_operators = true

[server]
role = "federator"
port = 0
unhealthy_after = 1
{backends}""")
    return path


@dataclass
class Cluster:
    world: World
    verifiers: dict[str, ServerProcess]
    federator: ServerProcess

    @property
    def url(self) -> str:
        return self.federator.url


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    return make_world(tmp_path_factory.mktemp("e2e-world"))


@contextmanager
def run_cluster(world: World, logs: Path) -> Iterator[Cluster]:
    """Start the three verifiers, then the federator over them. Afterwards (also when the test
    failed) stop every one, SIGTERM then SIGKILL, and check that none of their pids is left; when
    the test passed, the ones still running must also have stopped gracefully (exit 0)."""
    started: list[ServerProcess] = []
    running: list[ServerProcess] = []
    try:
        verifiers = start_servers([(op, world.root / f"{op}.toml") for op in OPERATORS], logs, started)
        urls = {p.name: p.url for p in verifiers}
        config = federator_config(world, urls, logs / "federator.toml")
        (federator,) = start_servers([("federator", config)], logs, started)
        yield Cluster(world, {p.name: p for p in verifiers}, federator)
        running = [p for p in started if p.proc.poll() is None]
    finally:
        left = stop_all(started)
        assert started and not left, f"processes left behind: {left}"
    codes = {p.name: p.proc.returncode for p in running}
    assert codes == dict.fromkeys(codes, 0), {p.name: (p.proc.returncode, p.stderr()[-1000:]) for p in running}


@pytest.fixture(scope="module")
def cluster(world: World, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with run_cluster(world, tmp_path_factory.mktemp("e2e-cluster")) as running:
        yield running


# -- the relying party -----------------------------------------------------------------------------


def client() -> aiohttp.ClientSession:
    return aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=20))


async def challenge_response(http: aiohttp.ClientSession, base: str, media_type: str,
                             evidence: Callable[[bytes], bytes], nonce: bytes | None = None
                             ) -> tuple[dict[str, Any], bytes]:
    """Veraison's sequence: newSession (?nonce= or ?nonceSize=32), POST the Evidence made for the
    session's nonce, read ``result``; then DELETE. Returns (final session document, nonce)."""
    query = f"nonce={b64url(nonce)}" if nonce is not None else "nonceSize=32"
    async with http.post(f"{base}{CR}/newSession?{query}", headers={"Accept": SESSION}) as resp:
        assert resp.status == 201, await resp.text()
        session = await resp.json(content_type=None)
        location = resp.headers["Location"]
    assert session["status"] == "waiting"
    got = b64url_decode(session["nonce"])
    assert nonce is None or got == nonce
    url = f"{base}{CR}/{location}"
    async with http.post(url, data=evidence(got), headers={"Accept": SESSION, "Content-Type": media_type}) as resp:
        assert resp.status == 200, await resp.text()
        done = await resp.json(content_type=None)
    assert done["status"] == "complete"
    async with http.get(url, headers={"Accept": SESSION}) as resp:
        assert (await resp.json(content_type=None))["result"] == done["result"]
    async with http.delete(url) as resp:
        assert resp.status == 204
    return done, got


async def appraise(http: aiohttp.ClientSession, base: str, media_type: str, body: bytes, nonce: bytes
                   ) -> dict[str, Any]:
    async with http.post(f"{base}/v1/appraise?nonce={nonce.hex()}", data=body,
                         headers={"Content-Type": media_type, "Accept": "application/json"}) as resp:
        assert resp.status == 200, await resp.text()
        doc: dict[str, Any] = await resp.json()
    assert doc["nonce"] == nonce.hex()
    return doc


async def refused_replay(http: aiohttp.ClientSession, base: str, media_type: str, body: bytes, nonce: bytes
                         ) -> None:
    """The same Evidence under a nonce already appraised: 409, whatever the Evidence's verdict."""
    async with http.post(f"{base}/v1/appraise?nonce={nonce.hex()}", data=body,
                         headers={"Content-Type": media_type, "Accept": "application/json"}) as resp:
        assert resp.status == 409, await resp.text()
        assert "nonce already used" in (await resp.json(content_type=None))["detail"]


async def appraise_fresh(http: aiohttp.ClientSession, base: str) -> tuple[dict[str, Any], bytes]:
    nonce = os.urandom(32)
    return await appraise(http, base, MT, vector_token(nonce), nonce), nonce


def check(world: World, result: str, nonce: bytes) -> VerifiedResult:
    """As a relying party: the federation's key, the nonce, every vote re-verified under its
    verifier's own key and the decision recomputed."""
    checked = verify_result(result, world.federation, nonce=nonce, reverify=True, anchors=world.anchors)
    assert checked.decision is not None and checked.provenance is not None
    return checked


def outcomes(checked: VerifiedResult) -> dict[str, str]:
    assert checked.provenance is not None
    return {v.name: v.outcome.value for v in checked.provenance.votes}


# -- all three verifiers up ------------------------------------------------------------------------


async def test_services_publish_the_generated_keys(cluster: Cluster) -> None:
    async with client() as http:
        for op, proc in cluster.verifiers.items():
            async with http.get(f"{proc.url}/.well-known/veraison/verification") as resp:
                doc = await resp.json(content_type=None)
            assert doc["role"] == "verifier"
            assert doc["ear-verification-key"]["kid"] == cluster.world.anchors[op].keys[0].kid
        async with http.get(f"{cluster.url}/.well-known/veraison/verification") as resp:
            doc = await resp.json(content_type=None)
        assert doc["role"] == "federator" and doc["ear-verification-key"]["kid"] == cluster.world.federation.keys[0].kid
        async with http.get(f"{cluster.url}/readyz") as resp:
            assert resp.status == 200
            assert (await resp.json())["backends"] == dict.fromkeys(OPERATORS, True)


async def test_psa_vector_is_affirming_and_reverifies_under_the_verifiers_keys(cluster: Cluster) -> None:
    async with client() as http:
        done, _ = await challenge_response(http, cluster.url, MT, lambda _: GOOD, N32)
        await refused_replay(http, cluster.url, MT, GOOD, N32)
        doc, nonce = await appraise_fresh(http, cluster.url)
    checked = check(cluster.world, done["result"], N32)
    assert checked.status == "affirming"
    assert outcomes(checked) == dict.fromkeys(OPERATORS, "ok")
    assert checked.decision is not None and len(checked.decision.agreed) == 3
    assert doc["status"] == "affirming" and doc["decision"].startswith("affirming: 2-of-3")
    assert [(v["outcome"], v["status"]) for v in doc["votes"]] == [("ok", "affirming")] * 3
    assert check(cluster.world, doc["token"], nonce).status == "affirming"


async def test_psa_token_signed_by_another_key_is_contraindicated(cluster: Cluster) -> None:
    async with client() as http:  # Veraison's alternative test key: not the device's
        done, nonce = await challenge_response(http, cluster.url, MT, lambda n: vector_token(n, "ec.p256.alt.jwk"))
    checked = check(cluster.world, done["result"], nonce)
    assert checked.status == "contraindicated"
    assert outcomes(checked) == dict.fromkeys(OPERATORS, "ok")  # the verifiers answered: the evidence is bad
    assert checked.provenance is not None
    assert {v.status for v in checked.provenance.votes} == {"contraindicated"}


async def test_fresh_demo_evidence_bound_to_the_session_nonce_is_affirming(cluster: Cluster) -> None:
    world = cluster.world
    async with client() as http:
        done, nonce = await challenge_response(http, cluster.url, MT, lambda n: _token(world.device, n))
        assert len(nonce) == 32
        checked = check(world, done["result"], nonce)
        assert checked.status == "affirming"
        assert outcomes(checked) == dict.fromkeys(OPERATORS, "ok")
        assert checked.provenance is not None
        assert {e["signer"] for e in checked.provenance.endorsements} == {DEMO_SIGNER}
        # the same token replayed in another session (another nonce): contraindicated
        replayed, other = await challenge_response(http, cluster.url, MT, lambda _: _token(world.device, nonce))
    assert other != nonce
    assert check(world, replayed["result"], other).status == "contraindicated"


async def test_sevsnp_genoa_vector_is_affirming(cluster: Cluster) -> None:
    report = GENOA.read_bytes()
    async with client() as http:
        done, _ = await challenge_response(http, cluster.url, MEDIA_TYPE_TSM_CBOR, lambda _: report, GENOA_RD)
        await refused_replay(http, cluster.url, MEDIA_TYPE_TSM_CBOR, report, GENOA_RD)
    checked = check(cluster.world, done["result"], GENOA_RD)
    assert checked.status == "affirming"
    assert outcomes(checked) == dict.fromkeys(OPERATORS, "ok")
    assert checked.provenance is not None
    assert [v.status for v in checked.provenance.votes] == ["affirming"] * 3
    assert {e["signer"] for e in checked.provenance.endorsements} == {SNP_SIGNER}


# -- verifiers dying -------------------------------------------------------------------------------


async def test_killed_verifiers_quorum_holds_with_one_down_and_none_with_two(world: World, tmp_path: Path) -> None:
    with run_cluster(world, tmp_path) as cluster:
        await killing_verifiers(cluster)


async def killing_verifiers(cluster: Cluster) -> None:
    world = cluster.world
    acme, globex = cluster.verifiers["acme"], cluster.verifiers["globex"]
    async with client() as http:
        before, _ = await appraise_fresh(http, cluster.url)
        assert before["status"] == "affirming"

        # SIGKILL acme while appraisals keep coming (a stream of them, four at a time)
        results: list[tuple[bool, dict[str, Any]]] = []
        warm, killed = asyncio.Event(), asyncio.Event()

        async def stream() -> None:
            while len(results) < 40:
                after = killed.is_set()
                fresh = await asyncio.gather(*(appraise_fresh(http, cluster.url) for _ in range(4)))
                results.extend((after, d) for d, _ in fresh)
                if len(results) >= 8:
                    warm.set()

        task = asyncio.create_task(stream())
        await warm.wait()
        await asyncio.to_thread(acme.kill)
        killed.set()
        await task
        assert acme.proc.returncode is not None and acme.proc.returncode < 0
        assert all(d["status"] == "affirming" for _, d in results), [d["decision"] for _, d in results]
        after = [d for was_killed, d in results if was_killed]
        assert len(after) >= 8
        for d in after:
            votes = {v["name"]: v for v in d["votes"]}
            assert votes["acme"]["outcome"] == "unreachable", votes["acme"]
            assert votes["globex"]["outcome"] == votes["initech"]["outcome"] == "ok"

        # the session flow after the kill: the provenance records acme unreachable
        done, nonce = await challenge_response(http, cluster.url, MT, vector_token)
        checked = check(world, done["result"], nonce)
        assert checked.status == "affirming"
        assert outcomes(checked) == {"acme": "unreachable", "globex": "ok", "initech": "ok"}
        async with http.get(f"{cluster.url}/readyz") as resp:
            assert resp.status == 200  # two healthy backends still reach k = 2
            assert (await resp.json())["backends"] == {"acme": False, "globex": True, "initech": True}

        # a second verifier killed: no tier reaches k, so none, never affirming
        await asyncio.to_thread(globex.kill)
        for _ in range(3):  # the breakers open on the way: still unreachable ("circuit open")
            doc, nonce = await appraise_fresh(http, cluster.url)
            assert doc["status"] == "none", doc["decision"]
            assert {v["name"]: v["outcome"] for v in doc["votes"]} == {
                "acme": "unreachable", "globex": "unreachable", "initech": "ok"}
            assert check(world, doc["token"], nonce).status == "none"
        assert "circuit open" in {v["name"]: v for v in doc["votes"]}["acme"]["detail"]
        done, _ = await challenge_response(http, cluster.url, MT, lambda n: _token(world.device, n))
        checked = check(world, done["result"], b64url_decode(done["nonce"]))
        assert checked.status == "none"
        assert outcomes(checked) == {"acme": "unreachable", "globex": "unreachable", "initech": "ok"}
        async with http.get(f"{cluster.url}/readyz") as resp:
            assert resp.status == 503
        async with http.get(f"{cluster.url}/metrics") as resp:
            metrics = await resp.text()
    assert 'ratsfed_backend_outcomes_total{backend="acme",outcome="unreachable"}' in metrics
    assert 'ratsfed_appraisals_total{status="none"} 4' in metrics
