"""``kind = "veraison"`` against real HTTP servers on 127.0.0.1.

:class:`FakeVeraison` is a test double of the *remote service* (not of the code under test): a
small aiohttp app speaking Veraison's challenge-response API (veraison/services
``verification/api``) that signs real EARs bound to the session nonce the client gave. Faults are
real defects on the wire (status codes, hangs, bodies that are cut, too big, or not JSON); the
backend, the engine's retries and the federation's checks are what must catch them, each ending in
its DESIGN §1 outcome.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import ipaddress
import json
import logging
import math
import socket
import ssl
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from yarl import URL

from federation.ar4si import Tier, TrustVector
from federation.ear import Appraisal, Ear, Spelling, VerifierId, encode_ear
from federation.engine import Federation, Member
from federation.errors import (
    BackendError,
    BackendHTTPError,
    BackendTimeoutError,
    BackendUnreachableError,
    ConfigError,
    MalformedError,
)
from federation.evidence import Evidence
from federation.keys import SigningKey, TrustAnchor
from federation.quorum import QuorumPolicy
from federation.result import AppraisalResult
from federation.votes import Outcome
from verifiers.registry import VerifierSpec, create
from verifiers.remote import CircuitBreaker, CircuitOpenError, State, TransportOptions, VeraisonBackend
from verifiers.remote.http import parse_retry_after

PSA = "application/psa-attestation-token"
EVIDENCE = Evidence(PSA, b"\xd2\x84psa-token-bytes")
SESSION_TYPE = "application/vnd.veraison.challenge-response-session+json"
CR = "/challenge-response/v1"
FED_KEY = SigningKey.generate("ES256")


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class FakeVeraison:
    """A Veraison-compatible verification service with scripted faults.

    ``faults`` are consumed one per evidence POST (then it behaves); ``always`` applies to every
    newSession. ``log`` records (method, path) of every request it served.
    """

    def __init__(self) -> None:
        self.key = SigningKey.generate("ES256")
        self.sessions: dict[str, dict[str, Any]] = {}
        self.log: list[tuple[str, str]] = []
        self.nonces: list[bytes] = []  # as received in newSession?nonce=
        self.faults: list[str] = []
        self.always: str | None = None
        self.retry_after = "1"
        self.polls = 2  # GETs answered "processing" after a 202
        self.token: str | None = None  # bearer token required, when set
        self.authorizations: list[str | None] = []
        self.location_base: str | None = None  # absolute base for Location (a lying server)
        self.api_endpoint = "/challenge-response/v1/newSession"
        self.release = asyncio.Event()

    def count(self, method: str, prefix: str) -> int:
        return sum(1 for m, p in self.log if m == method and p.startswith(prefix))

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._middleware])
        app.router.add_post(f"{CR}/newSession", self.new_session)
        app.router.add_post(f"{CR}/session/{{sid}}", self.submit)
        app.router.add_get(f"{CR}/session/{{sid}}", self.get)
        app.router.add_delete(f"{CR}/session/{{sid}}", self.delete)
        app.router.add_get("/.well-known/veraison/verification", self.discovery)
        return app

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Any) -> web.StreamResponse:
        self.log.append((request.method, request.path))
        self.authorizations.append(request.headers.get("Authorization"))
        if self.token is not None and request.headers.get("Authorization") != f"Bearer {self.token}":
            return problem(401, "Unauthorized")
        resp: web.StreamResponse = await handler(request)
        return resp

    def doc(self, sid: str) -> dict[str, Any]:
        s = self.sessions[sid]
        out = {"status": s["status"], "nonce": base64.urlsafe_b64encode(s["nonce"]).decode().rstrip("="),
               "expiry": (dt.datetime.now(dt.UTC) + dt.timedelta(seconds=150)).isoformat(), "accept": [PSA]}
        if "evidence" in s:
            out["evidence"] = {"type": s["evidence"][0], "value": base64.b64encode(s["evidence"][1]).decode()}
        if "result" in s:
            out["result"] = s["result"]
        return out

    def ear(self, nonce: bytes, key: SigningKey | None = None) -> str:
        vector = TrustVector.of({"instance-identity": 2, "executables": 2, "hardware": 2})
        ear = Ear(Spelling.VERAISON.profile, int(time.time()), VerifierId("Veraison Project", "N/A"),
                  {"PSA_IOT": Appraisal.make(Tier.AFFIRMING, vector, ("policy:PSA_IOT",))}, nonce=nonce)
        return encode_ear(ear, key or self.key).decode()

    async def new_session(self, request: web.Request) -> web.StreamResponse:
        if self.always == "500":
            return problem(500, "verifier down")
        raw = request.query.get("nonce")
        nonce = b64url_decode(raw) if raw else b"\x07" * 32
        if not 8 <= len(nonce) <= 64:
            return problem(400, "bad nonce")
        self.nonces.append(nonce)
        sid = str(uuid.uuid4())
        self.sessions[sid] = {"status": "waiting", "nonce": nonce if self.always != "own-nonce" else b"\x01" * 32}
        location = f"{self.location_base}{CR}/session/{sid}" if self.location_base else f"session/{sid}"
        return web.json_response(self.doc(sid), status=201, headers={"Location": location},
                                 content_type=SESSION_TYPE)

    async def submit(self, request: web.Request) -> web.StreamResponse:
        sid = request.match_info["sid"]
        if sid not in self.sessions:
            return problem(404, "no such session")
        if request.content_type != PSA:
            return problem(415, "unsupported media type", headers={"Accept": PSA})
        s = self.sessions[sid]
        s["evidence"] = (request.content_type, await request.read())
        fault = self.faults.pop(0) if self.faults else "none"
        if fault == "500":
            s["status"] = "failed"
            return problem(500, "internal error")
        if fault == "429":
            return problem(429, "slow down", headers={"Retry-After": self.retry_after})
        if fault == "hang":
            await self.release.wait()
        if fault == "garbage":
            return web.Response(body=b"<html>502 Bad Gateway</html>", content_type="text/html")
        if fault == "oversize":
            return web.json_response({"status": "complete", "pad": "x" * (200 << 10)}, content_type=SESSION_TYPE)
        if fault == "oversize-chunked":
            resp = web.StreamResponse(headers={"Content-Type": SESSION_TYPE})
            resp.enable_chunked_encoding()
            await resp.prepare(request)
            for _ in range(50):
                await resp.write(b" " * 8192)
            await resp.write_eof()
            return resp
        if fault == "no-result":
            s["status"] = "complete"
            return web.json_response(self.doc(sid), content_type=SESSION_TYPE)
        if fault == "failed":
            s["status"] = "failed"
            return web.json_response(self.doc(sid), content_type=SESSION_TYPE)
        key = None
        if fault == "wrong-key":
            key = SigningKey.generate("ES256")
        elif fault == "bad-signature":  # claims this service's kid, signed by another key
            key = SigningKey.of(SigningKey.generate("ES256").key, "ES256", kid=self.key.kid)
        s["result"] = self.ear(s["nonce"], key)
        if fault == "async":
            s["status"] = "processing"
            s["polls"] = self.polls
            return web.json_response({k: v for k, v in self.doc(sid).items() if k != "result"}, status=202,
                                     content_type=SESSION_TYPE)
        s["status"] = "complete"
        return web.json_response(self.doc(sid), content_type=SESSION_TYPE)

    async def get(self, request: web.Request) -> web.StreamResponse:
        sid = request.match_info["sid"]
        if sid not in self.sessions:
            return problem(404, "no such session")
        s = self.sessions[sid]
        if s["status"] == "processing":
            s["polls"] -= 1
            if s["polls"] < 0:
                s["status"] = "complete"
        doc = self.doc(sid)
        if s["status"] == "processing":
            doc.pop("result", None)
        return web.json_response(doc, content_type=SESSION_TYPE)

    async def delete(self, request: web.Request) -> web.StreamResponse:
        self.sessions.pop(request.match_info["sid"], None)
        return web.Response(status=204)

    async def discovery(self, request: web.Request) -> web.StreamResponse:
        jwk = {k: v for k, v in self.key.public.jwk().items() if k != "kid"}  # Veraison's JWK has no kid
        return web.json_response({
            "ear-verification-key": jwk, "media-types": [PSA], "version": "test", "service-state": "READY",
            "api-endpoints": {"newChallengeResponseSession": self.api_endpoint},
        }, content_type="application/vnd.veraison.discovery+json")


def problem(status: int, title: str, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(status=status, headers=headers, content_type="application/problem+json",
                        text=json.dumps({"type": "about:blank", "title": title, "status": status}))


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


# --- fixtures -------------------------------------------------------------------------------------

async def serve(fake: FakeVeraison, ssl_ctx: ssl.SSLContext | None = None) -> TestServer:
    server = TestServer(fake.app(), host="127.0.0.1")
    await server.start_server(ssl=ssl_ctx)
    return server


@pytest.fixture
async def fake() -> AsyncIterator[tuple[FakeVeraison, TestServer]]:
    f = FakeVeraison()
    server = await serve(f)
    yield f, server
    f.release.set()
    await server.close()


@pytest.fixture
async def other() -> AsyncIterator[tuple[FakeVeraison, TestServer]]:
    """A second service: where a lying response might try to send us."""
    f = FakeVeraison()
    server = await serve(f)
    yield f, server
    await server.close()


@pytest.fixture
def closed_port() -> Iterator[int]:
    """A loopback port that refuses connections (bound, never listening: no race with others)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    yield s.getsockname()[1]
    s.close()


def backend(server: TestServer | str, **kw: Any) -> VeraisonBackend:
    url = str(server.make_url("/")) if isinstance(server, TestServer) else server
    kw.setdefault("poll_interval", 0.02)
    return VeraisonBackend(kw.pop("name", "veraison"), kw.pop("operator", "op-v"), url, **kw)


def federation(*members: Member, k: int = 1, deadline: float = 10.0) -> Federation:
    return Federation(list(members), QuorumPolicy(k=k, n=len(members)), FED_KEY, deadline=deadline)


def member(b: VeraisonBackend, anchor: TrustAnchor | SigningKey, timeout: float = 5.0, retries: int = 1) -> Member:
    a = anchor if isinstance(anchor, TrustAnchor) else TrustAnchor((anchor.public,))
    return Member(b, a, timeout=timeout, retries=retries)


async def appraise(b: VeraisonBackend, anchor: TrustAnchor | SigningKey, **kw: Any) -> AppraisalResult:
    async with federation(member(b, anchor, **kw)) as fed:
        return await fed.appraise(EVIDENCE)


def state(b: VeraisonBackend) -> State:
    return b.breaker.state  # (a call: the state changes under mypy's narrowing)


def outcome(r: AppraisalResult) -> Outcome:
    (vote,) = r.votes
    return vote.outcome


# --- the exchange ---------------------------------------------------------------------------------

async def test_a_veraison_service_affirms_through_the_federation(fake: tuple[FakeVeraison, TestServer]) -> None:
    f, server = fake
    b = backend(server)
    r = await appraise(b, f.key)
    (vote,) = r.votes
    assert vote.outcome is Outcome.OK, vote.detail
    assert r.status == "affirming"
    assert vote.key_thumbprint == f.key.public.thumbprint
    assert vote.media_type == "application/eat+jwt"
    assert f.nonces == [r.nonce]  # the federation's own nonce, via newSession?nonce= (DESIGN §8)
    (sid,) = {p.rsplit("/", 1)[1] for m, p in f.log if m == "POST" and "/session/" in p}
    assert ("DELETE", f"{CR}/session/{sid}") in f.log  # cleaned up (aclose waits for it)
    assert f.sessions == {}
    assert f.count("GET", "/.well-known") == 0  # no TOFU: the discovery document is never read


async def test_a_processing_session_is_polled_until_complete(fake: tuple[FakeVeraison, TestServer]) -> None:
    f, server = fake
    f.faults = ["async"]
    r = await appraise(backend(server), f.key)
    assert outcome(r) is Outcome.OK
    assert f.count("GET", f"{CR}/session/") == f.polls + 1


async def test_a_500_is_retried_with_a_new_session(fake: tuple[FakeVeraison, TestServer]) -> None:
    f, server = fake
    f.faults = ["500"]
    r = await appraise(backend(server), f.key, retries=1)
    assert outcome(r) is Outcome.OK
    assert f.count("POST", f"{CR}/newSession") == 2
    assert f.count("DELETE", f"{CR}/session/") == 2 and f.sessions == {}


async def test_a_500_on_every_attempt_is_an_http_error(fake: tuple[FakeVeraison, TestServer]) -> None:
    f, server = fake
    f.always = "500"
    r = await appraise(backend(server), f.key, retries=2)
    assert outcome(r) is Outcome.HTTP_ERROR
    assert "HTTP 500" in (r.votes[0].detail or "") and "verifier down" in (r.votes[0].detail or "")
    assert f.count("POST", f"{CR}/newSession") == 3


async def test_429_retry_after_is_honoured(fake: tuple[FakeVeraison, TestServer]) -> None:
    f, server = fake
    f.faults, f.retry_after = ["429"], "1"
    start = time.monotonic()
    r = await appraise(backend(server), f.key, retries=1)
    assert outcome(r) is Outcome.OK
    assert time.monotonic() - start >= 1.0  # waited as told, not the engine's 50 ms backoff
    assert f.count("POST", f"{CR}/newSession") == 2


async def test_retry_after_beyond_the_budget_gives_up_at_once(fake: tuple[FakeVeraison, TestServer]) -> None:
    f, server = fake
    f.faults, f.retry_after = ["429"], "60"
    start = time.monotonic()
    r = await appraise(backend(server), f.key, retries=3, timeout=3.0)
    assert outcome(r) is Outcome.HTTP_ERROR  # the real reason, not a timeout after sleeping 3 s
    assert time.monotonic() - start < 2.5
    assert f.count("POST", f"{CR}/newSession") == 1


@pytest.mark.parametrize(("value", "expected"), [
    ("3", 3.0), (" 0 ", 0.0), ("soon", None), ("-1", None), (None, None), ("1.5", None),
])
def test_retry_after_delta_seconds(value: str | None, expected: float | None) -> None:
    assert parse_retry_after(value) == expected


def test_retry_after_http_date() -> None:
    now = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    assert parse_retry_after(format_datetime(now + dt.timedelta(seconds=90), usegmt=True), now) == 90.0
    assert parse_retry_after(format_datetime(now - dt.timedelta(seconds=90), usegmt=True), now) == 0.0


async def test_a_closed_port_is_unreachable(closed_port: int) -> None:
    b = backend(f"http://127.0.0.1:{closed_port}/")
    r = await appraise(b, FED_KEY, retries=1)
    assert outcome(r) is Outcome.UNREACHABLE
    assert b.breaker.failures == 2  # both attempts counted


async def test_a_hang_past_the_backends_timeout_is_a_timeout(fake: tuple[FakeVeraison, TestServer]) -> None:
    f, server = fake
    f.faults = ["hang"]
    b = backend(server)
    start = time.monotonic()
    r = await appraise(b, f.key, timeout=0.5)
    assert outcome(r) is Outcome.TIMEOUT
    assert time.monotonic() - start < 2.0
    assert b.breaker.failures == 1  # a hang past its deadline counts against the service


async def test_the_backend_keeps_its_own_deadline(fake: tuple[FakeVeraison, TestServer]) -> None:
    f, server = fake
    f.faults = ["hang"]
    b = backend(server)
    try:
        with pytest.raises(BackendTimeoutError):
            await b.appraise(EVIDENCE, b"n" * 32, asyncio.get_running_loop().time() + 0.3)
    finally:
        await b.aclose()


@pytest.mark.parametrize("fault", ["garbage", "oversize", "oversize-chunked", "no-result"])
async def test_unusable_bodies_are_malformed(fake: tuple[FakeVeraison, TestServer], fault: str) -> None:
    f, server = fake
    f.faults = [fault]
    r = await appraise(backend(server, transport=TransportOptions(max_response=64 << 10)), f.key)
    assert outcome(r) is Outcome.MALFORMED, r.votes[0].detail
    assert f.count("POST", f"{CR}/newSession") == 1  # malformed is not transient: no retry
    assert f.sessions == {}  # the session is deleted on failure too


async def test_a_truncated_body_is_malformed() -> None:
    async def cut(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 201 Created\r\nContent-Type: application/json\r\nContent-Length: 400\r\n"
                     b"Location: session/1\r\n\r\n{\"status\": \"wai")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(cut, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        r = await appraise(backend(f"http://127.0.0.1:{port}/"), FED_KEY)
    finally:
        server.close()
        await server.wait_closed()
    assert outcome(r) is Outcome.MALFORMED, r.votes[0].detail
    assert "truncated" in (r.votes[0].detail or "")


async def test_a_session_the_verifier_failed_is_an_error(fake: tuple[FakeVeraison, TestServer]) -> None:
    f, server = fake
    f.faults = ["failed"]
    r = await appraise(backend(server), f.key)
    assert outcome(r) is Outcome.ERROR


async def test_an_unsupported_media_type_is_an_http_error_without_retry(
        fake: tuple[FakeVeraison, TestServer]) -> None:
    f, server = fake
    b = backend(server)
    async with federation(member(b, f.key)) as fed:
        r = await fed.appraise(Evidence("application/x-unknown", b"evidence"))
    assert outcome(r) is Outcome.HTTP_ERROR
    assert "HTTP 415" in (r.votes[0].detail or "")
    assert f.count("POST", f"{CR}/newSession") == 1
    assert b.healthy  # the service answered: that is no failure of the service


async def test_a_service_that_ignores_the_nonce_is_a_nonce_mismatch(fake: tuple[FakeVeraison, TestServer]) -> None:
    f, server = fake
    f.always = "own-nonce"
    r = await appraise(backend(server), f.key)
    assert outcome(r) is Outcome.NONCE_MISMATCH
    assert f.count("POST", f"{CR}/session/") == 0  # no evidence sent into a session bound elsewhere


async def test_a_location_on_another_host_is_refused(fake: tuple[FakeVeraison, TestServer],
                                                   other: tuple[FakeVeraison, TestServer]) -> None:
    f, server = fake
    o, elsewhere = other
    f.location_base = str(elsewhere.make_url("")).rstrip("/")
    r = await appraise(backend(server), f.key)
    assert outcome(r) is Outcome.MALFORMED
    assert o.log == []  # neither the evidence nor a DELETE went there


# --- the result's key -----------------------------------------------------------------------------

@pytest.mark.parametrize(("fault", "expected"), [
    ("wrong-key", Outcome.UNTRUSTED_KEY), ("bad-signature", Outcome.BAD_SIGNATURE),
])
async def test_a_result_not_signed_by_the_anchor_fails_at_the_federation(
        fake: tuple[FakeVeraison, TestServer], fault: str, expected: Outcome) -> None:
    f, server = fake
    f.faults = [fault]
    r = await appraise(backend(server), f.key)
    assert outcome(r) is expected
    assert r.status == "none"


async def test_without_tofu_there_is_no_anchor_but_the_configured_one(
        fake: tuple[FakeVeraison, TestServer]) -> None:
    f, server = fake
    b = backend(server)
    assert b.public_anchor is None  # config then insists on trust_anchor
    r = await appraise(b, SigningKey.generate("ES256"))
    assert outcome(r) is Outcome.UNTRUSTED_KEY
    assert f.count("GET", "/.well-known") == 0


async def test_tofu_pins_the_discovery_key_once(fake: tuple[FakeVeraison, TestServer],
                                                other: tuple[FakeVeraison, TestServer]) -> None:
    f, server = fake
    o, elsewhere = other
    f.api_endpoint = str(elsewhere.make_url(f"{CR}/newSession"))  # a URL in the response: never used
    b = backend(server, trust_on_first_use=True)
    anchor = b.public_anchor
    assert anchor is not None
    async with federation(member(b, anchor)) as fed:
        assert outcome(await fed.appraise(EVIDENCE)) is Outcome.OK
        assert b.pinned_key is not None and b.pinned_key.thumbprint == f.key.public.thumbprint
        assert outcome(await fed.appraise(EVIDENCE)) is Outcome.OK
        assert f.count("GET", "/.well-known/veraison/verification") == 1
        f.key = SigningKey.generate("ES256")  # the service (or someone in its place) changes keys
        # The pin holds: Veraison's JWK has no kid, so the pinned key is the only candidate, and
        # the new key's signature does not verify under it.
        assert outcome(await fed.appraise(EVIDENCE)) is Outcome.BAD_SIGNATURE
    assert f.count("GET", "/.well-known/veraison/verification") == 1
    assert o.log == []


# --- circuit breaker ------------------------------------------------------------------------------

async def test_the_breaker_opens_after_n_failures_and_a_probe_closes_it(
        fake: tuple[FakeVeraison, TestServer]) -> None:
    f, server = fake
    clock = Clock()
    b = backend(server, breaker=CircuitBreaker(threshold=2, cooldown=30.0, clock=clock))
    deadline = asyncio.get_running_loop().time() + 5
    f.always = "500"
    try:
        for _ in range(2):
            with pytest.raises(BackendHTTPError):
                await b.appraise(EVIDENCE, b"n" * 32, deadline)
        assert state(b) is State.OPEN and not b.healthy
        served = len(f.log)
        with pytest.raises(CircuitOpenError) as err:
            await b.appraise(EVIDENCE, b"n" * 32, deadline)
        assert err.value.reason == "unreachable" and str(err.value) == "unreachable: circuit open"
        assert err.value.probe_in == 30.0 and err.value.retry_after == math.inf  # never retried
        assert not await b.probe()  # still cooling down: no request either
        assert len(f.log) == served
        clock.now += 31  # cool-down over: the next attempt is the probe; it fails, so it re-opens
        assert state(b) is State.HALF_OPEN
        with pytest.raises(BackendHTTPError):
            await b.appraise(EVIDENCE, b"n" * 32, deadline)
        assert state(b) is State.OPEN
        clock.now += 31
        f.always = None  # the service recovers; the probe succeeds and closes the breaker
        assert (await b.appraise(EVIDENCE, b"n" * 32, deadline)).token
        assert state(b) is State.CLOSED and b.healthy and b.breaker.failures == 0
    finally:
        await b.aclose()


async def test_an_active_probe_closes_the_breaker(fake: tuple[FakeVeraison, TestServer]) -> None:
    _, server = fake
    clock = Clock()
    b = backend(server, breaker=CircuitBreaker(threshold=1, cooldown=10.0, clock=clock))
    try:
        b.breaker._record(False, probe=False)  # one failure trips a threshold-1 breaker
        assert not b.healthy
        clock.now += 11
        assert await b.probe()  # GET of the discovery document
        assert b.healthy
    finally:
        await b.aclose()


async def test_an_open_circuit_is_unreachable_and_not_retried(closed_port: int) -> None:
    clock = Clock()
    b = backend(f"http://127.0.0.1:{closed_port}/", breaker=CircuitBreaker(threshold=2, cooldown=60, clock=clock))
    r = await appraise(b, FED_KEY, retries=1)  # two refused attempts trip it
    assert outcome(r) is Outcome.UNREACHABLE and state(b) is State.OPEN
    start = time.monotonic()
    r = await appraise(b, FED_KEY, retries=5, timeout=5.0)
    assert outcome(r) is Outcome.UNREACHABLE
    assert r.votes[0].detail == "unreachable: circuit open"  # not a timeout: it did not wait for the probe
    assert time.monotonic() - start < 2.0  # the cool-down outlasts the budget: no retries, no waiting


async def test_an_open_circuit_fails_fast_even_when_its_cool_down_ends_within_the_budget(closed_port: int) -> None:
    """Regression (bench/soak.py, a verifier killed under load): appraisals arriving in the last
    ``timeout`` seconds of the cool-down used to sleep until it ended (the breaker's rest of the
    cool-down was honoured as a Retry-After), holding every answer that long, only for one of them
    to be the probe and the others to fail anyway."""
    clock = Clock()
    b = backend(f"http://127.0.0.1:{closed_port}/", breaker=CircuitBreaker(threshold=2, cooldown=60, clock=clock))
    r = await appraise(b, FED_KEY, retries=1)  # two refused attempts trip it
    assert state(b) is State.OPEN
    clock.now += 59  # one second of cool-down left, well within the 5 s budget
    start = time.monotonic()
    r = await appraise(b, FED_KEY, retries=5, timeout=5.0)
    assert outcome(r) is Outcome.UNREACHABLE and r.votes[0].detail == "unreachable: circuit open"
    assert time.monotonic() - start < 0.5  # at once: no sleep until the cool-down ends
    assert state(b) is State.OPEN


async def test_appraisals_during_a_probe_fail_fast_and_the_probe_decides(
        fake: tuple[FakeVeraison, TestServer]) -> None:
    """Half-open: the first appraisal is the probe; one arriving while the probe is in flight is
    short-circuited at once (``retry_after`` infinite: the engine's retry loop stops instead of
    sleeping until the probe ends, however many retries and however long the budget); the probe's
    success then closes the breaker for everyone."""
    f, server = fake
    clock = Clock()
    b = backend(server, breaker=CircuitBreaker(threshold=1, cooldown=10.0, clock=clock))
    b.breaker._record(False, probe=False)  # tripped
    clock.now += 11
    assert state(b) is State.HALF_OPEN
    f.faults = ["hang"]  # the probe's Evidence POST waits for f.release
    async with federation(member(b, f.key, timeout=5.0, retries=5)) as fed:
        probe = asyncio.create_task(fed.appraise(EVIDENCE))
        for _ in range(500):
            if f.count("POST", f"{CR}/session/"):
                break
            await asyncio.sleep(0.01)
        assert f.count("POST", f"{CR}/session/") == 1  # the probe is in flight
        start = time.monotonic()
        during = await fed.appraise(EVIDENCE)
        assert outcome(during) is Outcome.UNREACHABLE and during.votes[0].detail == "unreachable: circuit open"
        assert time.monotonic() - start < 0.5 and not probe.done()
        assert f.count("POST", f"{CR}/newSession") == 1  # short-circuited: no request at all
        f.release.set()
        assert outcome(await probe) is Outcome.OK
        assert state(b) is State.CLOSED
        assert outcome(await fed.appraise(EVIDENCE)) is Outcome.OK


def test_breaker_cancellation_before_the_deadline_is_neutral() -> None:
    clock = Clock()
    br = CircuitBreaker(threshold=1, cooldown=5, clock=clock)
    with pytest.raises(asyncio.CancelledError), br.attempt(timed_out=lambda: False):
        raise asyncio.CancelledError  # a quorum decided without it
    assert br.healthy
    with pytest.raises(asyncio.CancelledError), br.attempt(timed_out=lambda: True):
        raise asyncio.CancelledError  # cancelled at its deadline: it hung
    assert br.state is State.OPEN


@pytest.mark.parametrize(("exc", "counts"), [
    (BackendHTTPError("x", status=503), False), (BackendTimeoutError("x"), False),
    (BackendUnreachableError("x"), False), (BackendError("session failed"), False),
    (BackendHTTPError("x", status=429), None), (MalformedError("x"), None),
    (BackendHTTPError("x", status=415), True), (None, True),
])
def test_breaker_verdicts(exc: Exception | None, counts: bool | None) -> None:
    from verifiers.remote.breaker import verdict

    assert verdict(exc) is counts


def test_a_half_open_breaker_lets_one_probe_through() -> None:
    clock = Clock()
    br = CircuitBreaker(threshold=1, cooldown=5, clock=clock)
    br._record(False, probe=False)
    clock.now += 6
    with br.attempt():
        with pytest.raises(CircuitOpenError) as err, br.attempt():
            pass  # a second caller while the probe is in flight
        assert err.value.probe_in is None and err.value.retry_after == math.inf
    assert br.healthy


# --- TLS ------------------------------------------------------------------------------------------

def _certs(tmp: Path) -> tuple[Path, Path, Path]:
    """A private CA and a server certificate for 127.0.0.1 (files: ca.pem, cert.pem, key.pem)."""
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ratsfed test CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
          .not_valid_after(now + dt.timedelta(hours=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
          .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])).issuer_name(ca_name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(hours=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256()))
    paths = tmp / "ca.pem", tmp / "cert.pem", tmp / "key.pem"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return paths


async def test_tls_an_unknown_ca_is_refused_and_a_pinned_ca_file_accepted(tmp_path: Path) -> None:
    ca, cert, key = _certs(tmp_path)
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert, key)
    f = FakeVeraison()
    server = await serve(f, ctx)
    try:
        url = str(server.make_url("/"))
        assert url.startswith("https://127.0.0.1:")
        b = backend(url)
        r = await appraise(b, f.key, retries=3)
        assert outcome(r) is Outcome.UNREACHABLE
        assert "TLS" in (r.votes[0].detail or "")
        assert b.breaker.failures == 1  # one attempt: a certificate failure is not retried
        assert f.log == []
        r = await appraise(backend(url, transport=TransportOptions(ca_file=ca)), f.key)
        assert outcome(r) is Outcome.OK, r.votes[0].detail
        assert r.status == "affirming"
    finally:
        await server.close()


def test_tls_options_are_checked(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="ca_file"):
        TransportOptions(tls_verify=False, ca_file=tmp_path / "ca.pem")
    with pytest.raises(ConfigError, match="CA file"):
        TransportOptions(ca_file=tmp_path / "missing.pem")
    assert TransportOptions(tls_verify=False).ssl_context is False


# --- auth and config ------------------------------------------------------------------------------

def spec(url: str, **options: Any) -> VerifierSpec:
    return VerifierSpec("v1", "veraison", "op-v", {"url": url, **options}, source="test.toml")


async def test_the_bearer_token_is_sent_and_never_shown(fake: tuple[FakeVeraison, TestServer],
                                                        monkeypatch: pytest.MonkeyPatch,
                                                        caplog: pytest.LogCaptureFixture) -> None:
    f, server = fake
    f.token = "s3cret-token"
    monkeypatch.setenv("VERAISON_TOKEN", "s3cret-token")
    b = create(spec(str(server.make_url("/")), auth_token_env="VERAISON_TOKEN", poll_interval=0.02))
    assert isinstance(b, VeraisonBackend)
    caplog.set_level(logging.DEBUG)
    r = await appraise(b, f.key)
    assert outcome(r) is Outcome.OK
    assert set(f.authorizations) == {"Bearer s3cret-token"}
    assert "s3cret" not in repr(b) + repr(b.http) + caplog.text + (r.votes[0].detail or "")
    r = await appraise(backend(server), f.key)  # no token configured
    assert outcome(r) is Outcome.HTTP_ERROR and "HTTP 401" in (r.votes[0].detail or "")


@pytest.mark.parametrize(("options", "key"), [
    ({"bogus": 1}, "verifiers.v1.bogus"),
    ({"auth_token_env": "RATSFED_TEST_UNSET_VARIABLE"}, "verifiers.v1.auth_token_env"),
    ({"poll_interval": 0}, "verifiers.v1.poll_interval"),
    ({"poll_interval": True}, "verifiers.v1.poll_interval"),
    ({"max_response": -1}, "verifiers.v1.max_response"),
    ({"tls_verify": False, "ca_file": "ca.pem"}, "verifiers.v1.ca_file"),
    ({"ca_file": "ca.pem"}, "verifiers.v1.ca_file"),  # http:// url
    ({"tls_verify": "yes"}, "verifiers.v1.tls_verify"),
])
def test_bad_options_fail_at_load_naming_the_key(options: dict[str, Any], key: str) -> None:
    with pytest.raises(ConfigError) as err:
        create(spec("http://127.0.0.1:9/", **options))
    assert err.value.key == key, err.value
    assert err.value.file == "test.toml"


@pytest.mark.parametrize("url", ["ftp://127.0.0.1/", "127.0.0.1:8080", "http://user:pw@127.0.0.1/",
                                 "http://127.0.0.1/?x=1"])
def test_bad_urls_fail_at_load(url: str) -> None:
    with pytest.raises(ConfigError) as err:
        create(spec(url))
    assert err.value.key == "verifiers.v1.url"


def test_a_url_with_a_path_prefix_keeps_it() -> None:
    b = create(spec("https://verifier.example/veraison"))
    assert isinstance(b, VeraisonBackend)
    assert str(b.http.url("challenge-response/v1/newSession")) == \
        "https://verifier.example/veraison/challenge-response/v1/newSession"
    assert not b.http.within(URL("https://verifier.example/other/session/1"))
    assert not b.http.within(URL("https://verifier.example:444/veraison/session/1"))


def write_config(tmp_path: Path, url: str, anchor: str | None, **options: Any) -> Path:
    opts = ", ".join(f"{k} = {json.dumps(v)}" for k, v in {"url": url, **options}.items())
    lines = ['[federation]\nid = "test"\n\n[quorum]\nk = 1\n\n[[verifiers]]\nname = "veraison"',
             'kind = "veraison"\noperator = "op-v"\ntimeout = 5', f"options = {{ {opts} }}"]
    if anchor:
        lines.append(f'trust_anchor = "{anchor}"')
    path = tmp_path / "federation.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


async def test_a_config_with_a_veraison_verifier(fake: tuple[FakeVeraison, TestServer], tmp_path: Path) -> None:
    f, server = fake
    (tmp_path / "veraison.jwk").write_text(json.dumps(f.key.public.jwk()))
    path = write_config(tmp_path, str(server.make_url("/")), "veraison.jwk", poll_interval=0.05)
    async with Federation.from_config(path) as fed:
        r = await fed.appraise(EVIDENCE)
    assert r.status == "affirming" and outcome(r) is Outcome.OK
    assert [v.kind for v in r.votes] == ["veraison"]


def test_config_requires_a_trust_anchor_unless_tofu(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="trust_anchor is required"):
        Federation.from_config(write_config(tmp_path, "http://127.0.0.1:9/", None))
    fed = Federation.from_config(write_config(tmp_path, "http://127.0.0.1:9/", None, trust_on_first_use=True))
    (m,) = fed.members
    assert isinstance(m.backend, VeraisonBackend) and m.anchor is m.backend.public_anchor


def test_retry_hints_are_typed() -> None:
    from verifiers.remote import TLSError

    assert TLSError("x").retry_after == math.inf
    assert TLSError("x").reason == "unreachable"


# --- against our own service (``ratsfed serve``) ----------------------------------------------------

async def our_server(app: web.Application) -> TestServer:
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    return server


@pytest.mark.parametrize("fmt", ["jwt", "cwt"])
async def test_our_verifier_role_is_a_veraison_backend(fmt: str) -> None:
    from server_helpers import GOOD, MT, N32, local_backend

    from federation.config import ServerConfig
    from federation.server import VerifierRole, create_app

    local = local_backend()
    local.fmt = fmt  # type: ignore[assignment]
    server = await our_server(create_app(VerifierRole(local), ServerConfig(role="verifier")))
    try:
        b = backend(server)
        async with federation(member(b, local.key)) as fed:
            r = await fed.appraise(Evidence(MT, GOOD), nonce=N32)  # the vector's nonce
        (vote,) = r.votes
        assert vote.outcome is Outcome.OK, vote.detail
        assert vote.media_type == f"application/eat+{fmt}"
        assert r.status == "affirming"
        assert vote.key_thumbprint == local.key.public.thumbprint
    finally:
        await server.close()


async def test_our_verifier_role_with_trust_on_first_use() -> None:
    from server_helpers import GOOD, MT, N32, local_backend

    from federation.config import ServerConfig
    from federation.server import VerifierRole, create_app

    local = local_backend()
    server = await our_server(create_app(VerifierRole(local), ServerConfig(role="verifier")))
    try:
        b = backend(server, trust_on_first_use=True)
        assert b.public_anchor is not None
        async with federation(member(b, b.public_anchor)) as fed:
            r = await fed.appraise(Evidence(MT, GOOD), nonce=N32)
        assert outcome(r) is Outcome.OK, r.votes[0].detail
        assert b.pinned_key is not None and b.pinned_key.thumbprint == local.key.public.thumbprint
    finally:
        await server.close()


async def test_a_federation_is_a_backend_of_another() -> None:
    """Inner: a federator (2-of-2 local appraisers) served over HTTP; outer: 1-of-1 over it."""
    from server_helpers import GOOD, MT, N32, local_backend

    from federation.config import ServerConfig
    from federation.server import FederatorRole, create_app

    locals_ = [local_backend("a-local", "a"), local_backend("b-local", "b")]
    inner_key = SigningKey.generate("ES256")
    inner = Federation([Member(x, x.public_anchor) for x in locals_], QuorumPolicy(k=2, n=2), inner_key,
                       federation_id="inner")
    server = await our_server(create_app(FederatorRole(inner), ServerConfig(role="federator")))
    try:
        async with federation(member(backend(server, name="inner"), inner_key)) as fed:
            r = await fed.appraise(Evidence(MT, GOOD), nonce=N32)
        assert outcome(r) is Outcome.OK, r.votes[0].detail
        assert r.status == "affirming"
    finally:
        await server.close()


def test_the_remote_package_surface_is_deliberate() -> None:
    import verifiers.remote
    from verifiers.registry import kinds

    assert verifiers.remote.__all__ == sorted(verifiers.remote.__all__)
    assert set(verifiers.remote.__all__) == {
        "CircuitBreaker", "CircuitOpenError", "HttpClient", "KeyPin", "PinnedAnchor", "Response",
        "RetryAfterError", "State", "TLSError", "TransportOptions", "VeraisonBackend",
    }
    assert "veraison" in kinds()
