"""The vendor backends (``ita``, ``maa``, ``google``, ``trustee``) against real HTTP servers on 127.0.0.1.

Two kinds of server:

* the vendor emulators (tests/emulators/): protocol-faithful services that parse and verify the
  quote, check each vendor's own REPORT_DATA rule and sign tokens. A token coming back proves the
  backend's request was the vendor's shape and that the federation's binding
  (federation/binding.py) lands on each vendor's rule;
* :class:`Stub`: answers scripted byte for byte, for the faults a faithful emulator has no reason
  to produce (an extra member, a body over the cap, a duplicate key, a secret echoed back).

The backends return tokens raw; verifying them is the checkers' job (verifiers/vendor/), so here a
token is only decoded to see that it is the one the service issued for this request.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import logging
import math
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jwt as pyjwt
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from emulators import GoogleEmulator, GoogleKeys, ItaEmulator, ItaKeys, MaaEmulator, TrusteeEmulator, running
from emulators.common import rsa_key
from tdx_fakes import FakeIntel, td_quote

from federation.binding import Binding
from federation.engine import Federation, Member
from federation.errors import BackendHTTPError, BackendTimeoutError, ConfigError, MalformedError, UsageError
from federation.evidence import Evidence
from federation.keys import SigningKey, TrustAnchor, load_trust_anchor
from federation.quorum import QuorumPolicy
from federation.votes import Outcome
from verifiers.base import ChallengingBackend, ClosableBackend, PrefixingBackend, RawResult, session_binding
from verifiers.local.evidence import tdx as tdx_evidence
from verifiers.registry import VerifierSpec, create, kinds
from verifiers.remote import CircuitBreaker, RetryAfterError, State
from verifiers.remote._vendor import TDX_QUOTE, Secret, UnsupportedEvidenceError
from verifiers.remote.google import GoogleBackend, GoogleResult
from verifiers.remote.ita import ItaBackend
from verifiers.remote.maa import MaaBackend
from verifiers.remote.trustee import TrusteeBackend, TrusteeRefusal

NONCE = bytes(range(32))
SNP = Evidence("application/vnd.amd.sev.snp.attestation-report", b"\x02" * 1184)
FED_KEY = SigningKey.generate("ES256")
API_KEY = "ita-key-0123456789abcdef"
BEARER = "ya29.bearer-token-s3cret"
ITA_NONCE = {"val": base64.b64encode(b"v" * 88).decode(), "iat": base64.b64encode(b"2026-06-01 00:00:00 +0000 UTC")
             .decode(), "signature": base64.b64encode(b"s" * 384).decode()}
CHALLENGE_NAME = "projects/p1/locations/us-central1/challenges/0f1e2d3c"


def jwt(claims: dict[str, Any] | None = None) -> str:
    """A compact JWS-shaped token (unsigned: these backends never look inside)."""
    def part(obj: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).decode().rstrip("=")
    return f"{part({'alg': 'RS256', 'typ': 'JWT'})}.{part(claims or {'iss': 'test'})}.c2ln"


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def tdx(data: bytes = b"\x04\x00\x02\x00\x81\x00\x00\x00" + bytes(600)) -> Evidence:
    return Evidence(TDX_QUOTE, data)


# --- a scripted server ------------------------------------------------------------------------------

@dataclass
class Seen:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


Answer = Callable[[], web.StreamResponse]


def answer(status: int = 200, body: Any = None, *, text: str | None = None, headers: dict[str, str] | None = None,
           content_type: str = "application/json") -> Answer:
    def make() -> web.StreamResponse:
        payload = text if text is not None else json.dumps(body)
        return web.Response(status=status, text=payload, headers=headers, content_type=content_type)
    return make


@dataclass
class Stub:
    """Answers each path from its script (one answer per request, the last one repeating)."""

    script: dict[str, list[Answer]] = field(default_factory=dict)
    seen: list[Seen] = field(default_factory=list)
    hang: asyncio.Event | None = None  # when set: every request waits for it

    def on(self, path: str, *answers: Answer) -> Stub:
        self.script[path] = list(answers)
        return self

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self.handle)
        return app

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.seen.append(Seen(request.method, request.path, dict(request.query), dict(request.headers),
                              await request.read()))
        if self.hang is not None:
            await self.hang.wait()
        answers = self.script.get(request.path)
        if not answers:
            return web.Response(status=404, text="no route")
        return (answers.pop(0) if len(answers) > 1 else answers[0])()

    def count(self, path: str) -> int:
        return sum(1 for s in self.seen if s.path == path)


@pytest.fixture
async def stub() -> AsyncIterator[tuple[Stub, str]]:
    s = Stub()
    server = TestServer(s.app(), host="127.0.0.1")
    await server.start_server()
    yield s, str(server.make_url("/")).rstrip("/")
    if s.hang is not None:
        s.hang.set()
    await server.close()


def deadline(seconds: float = 5.0) -> float:
    return asyncio.get_running_loop().time() + seconds


def ita(url: str, **kw: Any) -> ItaBackend:
    return ItaBackend(kw.pop("name", "ita"), "intel", url, api_key=kw.pop("api_key", API_KEY), **kw)


def google(url: str, **kw: Any) -> GoogleBackend:
    kw.setdefault("project", "p1")
    kw.setdefault("location", "us-central1")
    return GoogleBackend(kw.pop("name", "google"), "google", url, bearer_token=kw.pop("bearer_token", BEARER),
                         audience=kw.pop("audience", "https://federation.example"), **kw)


def member(b: Any, retries: int = 1, timeout: float = 5.0) -> Member:
    return Member(b, TrustAnchor((SigningKey.generate("ES256").public,)), timeout=timeout, retries=retries)


# --- registry and config ----------------------------------------------------------------------------

def test_the_four_kinds_are_registered_and_built_from_config(monkeypatch: pytest.MonkeyPatch) -> None:
    assert {"ita", "maa", "google", "trustee"} <= set(kinds())
    monkeypatch.setenv("ITA_KEY", API_KEY)
    monkeypatch.setenv("GOOGLE_TOKEN", BEARER)
    built = [
        create(VerifierSpec("i", "ita", "intel", {"url": "https://api.trustauthority.intel.com",
                                                   "api_key_env": "ITA_KEY", "policy_ids": ["a", "b"],
                                                   "token_signing_alg": "RS256"})),
        create(VerifierSpec("m", "maa", "ms", {"url": "https://x.weu.attest.azure.net/"})),
        create(VerifierSpec("g", "google", "goog", {"project": "p", "location": "l", "audience": "aud",
                                                     "bearer_token_env": "GOOGLE_TOKEN"})),
        create(VerifierSpec("t", "trustee", "coco", {"url": "https://as.example:8080", "policy_ids": ["default"]})),
    ]
    assert [b.kind for b in built] == ["ita", "maa", "google", "trustee"]
    i, m, g, t = built
    assert isinstance(i, ItaBackend) and isinstance(i, PrefixingBackend) and isinstance(i, ClosableBackend)
    assert dict(i.expect) == {"name": "i", "issuer": "Intel Trust Authority", "algorithms": ("RS256",),
                              "policy_ids": ("a", "b"), "policy_must_match": False}
    assert isinstance(m, MaaBackend) and not isinstance(m, ChallengingBackend)
    assert dict(m.expect) == {"name": "m", "issuer": "https://x.weu.attest.azure.net"}
    assert isinstance(g, GoogleBackend) and isinstance(g, ChallengingBackend) and not isinstance(g, PrefixingBackend)
    assert str(g.url).rstrip("/") == "https://confidentialcomputing.googleapis.com"
    assert dict(g.expect) == {"name": "g", "issuer": "https://confidentialcomputing.googleapis.com",
                              "audience": "aud", "signature_type": "PKI"}
    assert isinstance(t, TrusteeBackend) and not isinstance(t, ChallengingBackend)
    assert dict(t.expect) == {"name": "t", "issuer": "CoCo-Attestation-Service", "policy_ids": ("default",)}
    with pytest.raises(TypeError):
        i.expect["issuer"] = "someone else"  # type: ignore[index]
    # Reference values the checkers read come from config too.
    m = create(VerifierSpec("m", "maa", "ms", {"url": "https://x", "policy_hash": "abc", "issuer": "https://y"}))
    assert dict(getattr(m, "expect", {})) == {"name": "m", "issuer": "https://y", "policy_hash": "abc"}
    g = create(VerifierSpec("g", "google", "goog", {"project": "p", "location": "l", "audience": "aud",
                                                     "bearer_token": "t", "image_digests": ["sha256:ab"]}))
    assert getattr(g, "expect", {})["image_digests"] == ("sha256:ab",)


@pytest.mark.parametrize(("kind", "options", "key"), [
    ("ita", {"url": "https://a"}, "verifiers.v.api_key"),  # neither api_key nor api_key_env
    ("ita", {"url": "https://a", "api_key": "k", "api_key_env": "K"}, "verifiers.v.api_key"),
    ("ita", {"url": "https://a", "api_key_env": "RATSFED_TEST_UNSET"}, "verifiers.v.api_key_env"),
    ("ita", {"url": "https://a", "api_key": "two words"}, "verifiers.v.api_key"),
    ("ita", {"url": "https://a", "api_key": "k", "policy_ids": [str(i) for i in range(11)]}, "verifiers.v.policy_ids"),
    ("ita", {"url": "https://a", "api_key": "k", "policy_ids": ["a", 1]}, "verifiers.v.policy_ids"),
    ("ita", {"url": "https://a", "api_key": "k", "token_signing_alg": "HS256"}, "verifiers.v.token_signing_alg"),
    ("ita", {"url": "https://a", "api_key": "k", "api_version": "v3"}, "verifiers.v.api_version"),
    ("ita", {"url": "ftp://a", "api_key": "k"}, "verifiers.v.url"),
    ("ita", {"url": "https://a", "api_key": "k", "draft": True}, "verifiers.v.draft"),
    ("maa", {"url": "https://a", "draft_policy": "x"}, "verifiers.v.draft_policy"),  # never an option
    ("maa", {"url": "http://a", "ca_file": "ca.pem"}, "verifiers.v.ca_file"),
    ("maa", {"url": "https://a", "api_version": "2025/06"}, "verifiers.v.api_version"),
    ("google", {"project": "p", "location": "l", "audience": "a"}, "verifiers.v.bearer_token"),
    ("google", {"project": "p/../x", "location": "l", "audience": "a", "bearer_token": "t"}, "verifiers.v.project"),
    ("google", {"project": "p", "location": "l", "audience": "", "bearer_token": "t"}, "verifiers.v.audience"),
    ("google", {"project": "p", "location": "l", "audience": "a", "bearer_token": "t", "signature_type": "X"},
     "verifiers.v.signature_type"),
    ("google", {"location": "l", "audience": "a", "bearer_token": "t"}, "verifiers.v"),  # project missing
    ("trustee", {"url": "https://a", "bearer_token_env": "RATSFED_TEST_UNSET"}, "verifiers.v.bearer_token_env"),
    ("trustee", {"url": "https://a", "bearer_token": "t"}, "verifiers.v.bearer_token"),  # env only
    ("trustee", {"url": "https://a", "breaker_failures": 0}, "verifiers.v.breaker_failures"),
    ("maa", {"url": "https://a", "policy_hash": ""}, "verifiers.v.policy_hash"),
    ("google", {"project": "p", "location": "l", "audience": "a", "bearer_token": "t", "image_digests": [""]},
     "verifiers.v.image_digests"),
])
def test_bad_options_name_the_key_and_file(kind: str, options: dict[str, Any], key: str,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RATSFED_TEST_UNSET", raising=False)
    with pytest.raises(ConfigError) as info:
        create(VerifierSpec("v", kind, "op", options, source="fed.toml"))
    assert info.value.key == key
    assert info.value.file == "fed.toml"


def test_secrets_are_never_shown(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RATSFED_TEST_KEY", "two words s3cret")
    with pytest.raises(ConfigError) as info:  # a bad value is refused without being quoted
        create(VerifierSpec("v", "ita", "op", {"url": "https://a", "api_key_env": "RATSFED_TEST_KEY"}))
    assert "s3cret" not in str(info.value)
    s = Secret(API_KEY)
    assert API_KEY not in repr(s) + str(s) + f"{s}" + repr([s])
    with pytest.raises(TypeError):
        import pickle
        pickle.dumps(s)
    i, g = ita("https://a"), google("https://g")
    t = TrusteeBackend("t", "coco", "https://t", bearer_token=BEARER)
    for b in (i, g, t):
        shown = repr(b) + repr(vars(b) if hasattr(b, "__dict__") else "") + repr(b.http)
        assert API_KEY not in shown and BEARER not in shown


def test_the_tdx_media_type_is_the_local_schemes() -> None:
    assert TDX_QUOTE == tdx_evidence.MEDIA_TYPE


# --- evidence the services cannot take ------------------------------------------------------------------

async def test_unsupported_evidence_is_a_usage_error_before_any_request(stub: tuple[Stub, str]) -> None:
    s, url = stub
    backends: list[ItaBackend | MaaBackend | GoogleBackend | TrusteeBackend] = [
        ita(url), MaaBackend("m", "ms", url), google(url), TrusteeBackend("t", "coco", url)]
    for b in backends:
        with pytest.raises(UnsupportedEvidenceError) as info:
            await b.appraise(SNP, NONCE, deadline())
        assert isinstance(info.value, UsageError)
        assert "application/vnd.amd.sev.snp.attestation-report" in info.value.detail
        assert TDX_QUOTE in info.value.detail
        assert b.breaker.failures == 0
        await b.aclose()
    assert s.seen == []
    # Media type parameters and case do not matter.
    s.on("/attest/TdxVm", answer(body={"token": jwt()}))
    m = MaaBackend("m", "ms", url)
    await m.appraise(Evidence("Application/Vnd.Intel.TDX-Quote; v=4", b"q"), NONCE, deadline())
    await m.aclose()


async def test_unsupported_evidence_is_recorded_as_an_error_vote_and_not_retried(stub: tuple[Stub, str]) -> None:
    _, url = stub
    b = TrusteeBackend("t", "coco", url)
    async with Federation([member(b, retries=3)], QuorumPolicy(k=1, n=1), FED_KEY) as fed:
        r = await fed.appraise(SNP)
    (vote,) = r.votes
    assert vote.outcome is Outcome.ERROR
    assert vote.detail is not None and vote.detail.startswith("usage: Trustee does not appraise")


# --- ITA ---------------------------------------------------------------------------------------------

async def test_ita_challenge_is_the_canonical_nonce_and_its_prefix_starts_report_data(
        stub: tuple[Stub, str]) -> None:
    s, url = stub
    s.on("/appraisal/v2/nonce", answer(body={"signature": ITA_NONCE["signature"], "val": ITA_NONCE["val"],
                                             "iat": ITA_NONCE["iat"]}))
    b = ita(url)
    challenge = await b.challenge(NONCE, deadline())
    assert challenge == json.dumps(ITA_NONCE, sort_keys=True, separators=(",", ":")).encode()
    (req,) = s.seen
    assert req.method == "GET" and req.headers["x-api-key"] == API_KEY
    prefix = b.report_data_prefix(challenge)
    assert prefix == b"v" * 88 + b"2026-06-01 00:00:00 +0000 UTC"
    binding = Binding(NONCE, {"ita": challenge}, prefix)
    body = b.request_body(tdx(), binding)
    assert body["verifier_nonce"] == ITA_NONCE
    runtime = base64.b64decode(body["runtime_data"])
    assert runtime == binding.runtime_data
    # ITA's own rule, SHA-512(val ‖ iat ‖ runtime_data), is the federation's REPORT_DATA.
    assert hashlib.sha512(base64.b64decode(ITA_NONCE["val"]) + base64.b64decode(ITA_NONCE["iat"])
                          + runtime).digest() == binding.report_data
    assert body["token_signing_alg"] == "PS384" and body["policy_must_match"] is False
    assert "policy_ids" not in body
    await b.aclose()


def test_ita_without_a_challenge_sends_the_hashed_bytes_and_no_verifier_nonce() -> None:
    b = ita("https://a", policy_ids=("p1",), policy_must_match=True, token_signing_alg="RS256")
    binding = Binding(NONCE, {"google": b'{"name":"x"}'})
    body = b.request_body(tdx(), binding)
    assert "verifier_nonce" not in body
    assert hashlib.sha512(base64.b64decode(body["runtime_data"])).digest() == binding.report_data
    assert body["policy_ids"] == ["p1"] and body["policy_must_match"] is True and body["token_signing_alg"] == "RS256"


def test_ita_refuses_a_binding_whose_prefix_is_not_its_nonce() -> None:
    b = ita("https://a")
    challenge = json.dumps(ITA_NONCE, sort_keys=True, separators=(",", ":")).encode()
    with pytest.raises(UsageError, match="prefix"):
        b.request_body(tdx(), Binding(NONCE, {"ita": challenge}, b"other"))
    for bad in (b"not json", b"[]", b'{"val":"AA=="}', json.dumps({**ITA_NONCE, "val": "*"}).encode()):
        with pytest.raises(MalformedError):
            b.report_data_prefix(bad)


async def test_ita_without_verifier_nonce_makes_no_phase_1_request(stub: tuple[Stub, str]) -> None:
    s, url = stub
    b = ita(url, verifier_nonce=False)
    assert await b.challenge(NONCE, deadline()) is None
    assert s.seen == []
    await b.aclose()


@pytest.mark.parametrize(("doc", "why"), [
    ({**ITA_NONCE, "extra": "x"}, "unexpected member"),
    ({"val": ITA_NONCE["val"], "iat": ITA_NONCE["iat"]}, "missing member"),
    ({**ITA_NONCE, "val": "not base64!"}, "not base64"),
    ({**ITA_NONCE, "val": ""}, "empty"),
    ({**ITA_NONCE, "iat": 5}, "not a base64 string"),
    ([ITA_NONCE], "not a JSON object"),
    ({**ITA_NONCE, "signature": base64.b64encode(bytes(4096)).decode()}, "exceeds 4096"),
])
async def test_ita_nonce_responses_must_have_exactly_the_three_members(
        stub: tuple[Stub, str], doc: Any, why: str) -> None:
    s, url = stub
    s.on("/appraisal/v2/nonce", answer(body=doc))
    b = ita(url)
    with pytest.raises(MalformedError, match=why):
        await b.challenge(NONCE, deadline())
    assert b.breaker.failures == 0  # an unusable body says nothing about the service's health
    await b.aclose()


async def test_ita_duplicate_members_are_refused(stub: tuple[Stub, str]) -> None:
    s, url = stub
    token = jwt()
    s.on("/appraisal/v2/attest", answer(text=f'{{"token":"{token}","token":"{token}"}}'))
    b = ita(url)
    with pytest.raises(MalformedError, match="duplicate member"):
        await b.appraise(tdx(), NONCE, deadline())
    await b.aclose()


@pytest.mark.parametrize(("body", "why"), [
    ({"token": jwt(), "trace": "x"}, "unexpected member"),
    ({"jwt": jwt()}, "unexpected member"),
    ({"token": "not-a-jwt"}, "not a compact JWT"),
    ({"token": jwt() + "\n"}, "not a compact JWT"),
    ({"token": jwt({"pad": "x" * (70 << 10)})}, "exceeds"),
])
async def test_ita_attest_responses_are_checked(stub: tuple[Stub, str], body: Any, why: str) -> None:
    s, url = stub
    s.on("/appraisal/v2/attest", answer(body=body))
    b = ita(url)
    with pytest.raises(MalformedError, match=why):
        await b.appraise(tdx(), NONCE, deadline())
    await b.aclose()


async def test_ita_one_shot_appraisal_binds_the_nonce_alone(stub: tuple[Stub, str]) -> None:
    s, url = stub
    token = jwt()
    s.on("/appraisal/v2/attest", answer(body={"token": token}))
    b = ita(url, api_version="v1")
    s.on("/appraisal/v1/attest", answer(body={"token": token}))
    assert session_binding.get() is None
    raw = await b.appraise(tdx(b"quote"), NONCE, deadline())
    assert raw == RawResult(token.encode(), "application/jwt")
    (req,) = s.seen
    assert req.path == "/appraisal/v1/attest"
    assert req.headers["x-api-key"] == API_KEY and req.headers["Content-Type"] == "application/json"
    body = req.json()
    assert base64.b64decode(body["quote"]) == b"quote"
    assert base64.b64decode(body["runtime_data"]) == Binding(NONCE).hashed
    await b.aclose()


# --- errors common to the four kinds ----------------------------------------------------------------

def _backends(url: str) -> dict[str, Any]:
    return {
        "/appraisal/v2/attest": ita(url),
        "/attest/TdxVm": MaaBackend("m", "ms", url),
        f"/v1/{CHALLENGE_NAME}:verifyConfidentialSpace": google(url),
        "/attestation": TrusteeBackend("t", "coco", url, bearer_token=BEARER),
    }


def _google_challenge(s: Stub) -> None:
    s.on("/v1/projects/p1/locations/us-central1/challenges",
         answer(body={"name": CHALLENGE_NAME, "tpmNonce": base64.b64encode(b"n" * 32).decode(), "used": False,
                      "createTime": "2026-06-01T00:00:00Z", "expireTime": "2026-06-01T01:00:00Z"}))


@pytest.mark.parametrize("path", ["/appraisal/v2/attest", "/attest/TdxVm",
                                  f"/v1/{CHALLENGE_NAME}:verifyConfidentialSpace", "/attestation"])
async def test_429_with_retry_after_and_503_are_transient(stub: tuple[Stub, str], path: str) -> None:
    s, url = stub
    _google_challenge(s)
    s.on(path, answer(429, {"error": {"code": 429, "message": "slow down"}}, headers={"Retry-After": "7"}),
         answer(503, {"error": {"code": 503, "message": "down"}}, headers={"Retry-After": "2"}),
         answer(503, text="down", content_type="text/plain"))
    b = _backends(url)[path]
    with pytest.raises(RetryAfterError) as info:
        await b.appraise(tdx(), NONCE, deadline())
    assert info.value.status == 429 and info.value.retry_after == 7.0
    assert b.breaker.failures == 0  # 429: neutral
    with pytest.raises(RetryAfterError) as info:
        await b.appraise(tdx(), NONCE, deadline())
    assert info.value.status == 503 and info.value.retry_after == 2.0
    with pytest.raises(BackendHTTPError) as plain:
        await b.appraise(tdx(), NONCE, deadline())
    assert plain.value.status == 503 and not isinstance(plain.value, RetryAfterError)
    assert b.breaker.failures == 2  # 5xx: the service failed us
    await b.aclose()


@pytest.mark.parametrize(("path", "secret"), [("/appraisal/v2/attest", API_KEY), ("/attest/TdxVm", None),
                                            (f"/v1/{CHALLENGE_NAME}:verifyConfidentialSpace", BEARER),
                                            ("/attestation", BEARER)])
async def test_401_is_not_transient_and_echoed_secrets_are_blanked(
        stub: tuple[Stub, str], path: str, secret: str | None, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    s, url = stub
    _google_challenge(s)
    s.on(path, answer(401, {"error": {"code": "Unauthenticated", "status": "UNAUTHENTICATED",
                                      "message": f"credential {secret} is not valid"}},
                      headers={"trace-id": "t-123"}))
    b = _backends(url)[path]
    async with Federation([member(b, retries=3)], QuorumPolicy(k=1, n=1), FED_KEY) as fed:
        r = await fed.appraise(tdx())
    (vote,) = r.votes
    assert vote.outcome is Outcome.HTTP_ERROR
    assert vote.detail is not None and "HTTP 401" in vote.detail
    assert s.count(path) == 1  # not retried
    assert b.breaker.state is State.CLOSED and b.breaker.failures == 0  # the service answered
    if path != "/attestation":  # JSON error bodies: the vendor's code is in the detail
        assert "UNAUTHENTICATED: Unauthenticated: credential" in vote.detail and "[trace-id t-123]" in vote.detail
    if secret is not None:
        assert "credential *** is not valid" in vote.detail or path == "/attestation"
        assert secret not in vote.detail
        assert secret not in caplog.text
        assert any(secret in x.headers.values() or f"Bearer {secret}" in x.headers.values() for x in s.seen)


async def test_the_engine_stops_when_retry_after_ends_past_the_deadline(stub: tuple[Stub, str]) -> None:
    s, url = stub
    s.on("/attest/TdxVm", answer(429, {"error": {"code": "TooManyRequests", "message": "x"}},
                                 headers={"Retry-After": "60"}))
    b = MaaBackend("m", "ms", url)
    async with Federation([member(b, retries=3, timeout=3)], QuorumPolicy(k=1, n=1), FED_KEY) as fed:
        r = await fed.appraise(tdx())
    (vote,) = r.votes
    assert vote.outcome is Outcome.HTTP_ERROR and "TooManyRequests" in (vote.detail or "")
    assert s.count("/attest/TdxVm") == 1


async def test_a_hanging_service_ends_at_the_deadline(stub: tuple[Stub, str]) -> None:
    s, url = stub
    s.hang = asyncio.Event()
    b = MaaBackend("m", "ms", url)
    loop = asyncio.get_running_loop()
    start = loop.time()
    with pytest.raises(BackendTimeoutError):
        await b.appraise(tdx(), NONCE, loop.time() + 0.3)
    assert loop.time() - start < 2
    s.hang.set()
    await b.aclose()


# --- MAA ---------------------------------------------------------------------------------------------

async def test_maa_sends_the_quote_and_nonce_and_no_runtime_data(stub: tuple[Stub, str]) -> None:
    s, url = stub
    token = jwt()
    s.on("/attest/TdxVm", answer(body={"token": token}))
    b = MaaBackend("m", "ms", url + "/", api_version="2025-06-01")
    raw = await b.appraise(tdx(b"\xfb\xff quote"), NONCE, deadline())
    assert raw == RawResult(token.encode(), "application/jwt")
    (req,) = s.seen
    assert req.query == {"api-version": "2025-06-01"}
    assert "Authorization" not in req.headers  # MAA attest calls are anonymous
    body = req.json()
    assert set(body) == {"quote", "nonce"}  # no runtimeData, no draftPolicyForAttestation
    assert b64url_decode(body["quote"]) == b"\xfb\xff quote" and "=" not in body["quote"]
    assert b64url_decode(body["nonce"]) == NONCE
    await b.aclose()


async def test_maa_error_bodies_put_the_code_in_the_detail(stub: tuple[Stub, str]) -> None:
    s, url = stub
    s.on("/attest/TdxVm", answer(400, {"error": {"code": "InvalidParameter", "message": "quote is bad"}}))
    b = MaaBackend("m", "ms", url)
    with pytest.raises(BackendHTTPError) as info:
        await b.appraise(tdx(), NONCE, deadline())
    assert info.value.status == 400
    assert "InvalidParameter: quote is bad" in info.value.detail
    await b.aclose()


# --- Google ------------------------------------------------------------------------------------------

async def test_google_challenge_and_verify(stub: tuple[Stub, str], caplog: pytest.LogCaptureFixture) -> None:
    s, url = stub
    _google_challenge(s)
    token = jwt()
    s.on(f"/v1/{CHALLENGE_NAME}:verifyConfidentialSpace",
         answer(body={"attestationToken": token, "partialErrors": [{"code": 3, "message": "image signature bad"}]}))
    b = google(url, signature_type="OIDC")
    challenge = await b.challenge(NONCE, deadline())
    assert challenge is not None
    assert json.loads(challenge) == {"name": CHALLENGE_NAME, "tpmNonce": base64.b64encode(b"n" * 32).decode()}
    assert challenge == json.dumps(json.loads(challenge), sort_keys=True, separators=(",", ":")).encode()
    binding = Binding(NONCE, {"google": challenge})
    caplog.set_level(logging.DEBUG)
    reset = session_binding.set(binding)
    try:
        raw = await b.appraise(tdx(b"quote"), NONCE, deadline())
    finally:
        session_binding.reset(reset)
    assert isinstance(raw, GoogleResult) and raw.token == token.encode() and raw.media_type == "application/jwt"
    assert raw.partial_errors == ("3: image signature bad",)
    assert "image signature bad" in caplog.text and BEARER not in caplog.text
    create, verify = s.seen
    assert create.body == b"{}" and verify.headers["Authorization"] == f"Bearer {BEARER}"
    body = verify.json()
    assert body == {"challenge": CHALLENGE_NAME, "tdCcel": {"tdQuote": base64.b64encode(b"quote").decode()},
                    "options": {"audience": "https://federation.example", "nonce": [body["options"]["nonce"][0]],
                                "signatureType": "SIGNATURE_TYPE_OIDC"}}
    assert b64url_decode(body["options"]["nonce"][0]) == NONCE
    await b.aclose()


async def test_google_one_shot_appraisal_creates_its_challenge(stub: tuple[Stub, str]) -> None:
    s, url = stub
    _google_challenge(s)
    s.on(f"/v1/{CHALLENGE_NAME}:verifyConfidentialSpace", answer(body={"attestationToken": jwt()}))
    b = google(url)
    raw = await b.appraise(tdx(), NONCE, deadline())
    assert isinstance(raw, GoogleResult) and raw.partial_errors == ()
    assert [x.path for x in s.seen] == ["/v1/projects/p1/locations/us-central1/challenges",
                                        f"/v1/{CHALLENGE_NAME}:verifyConfidentialSpace"]
    assert s.seen[1].json()["options"]["signatureType"] == "SIGNATURE_TYPE_PKI"
    await b.aclose()


@pytest.mark.parametrize("name", [
    "projects/p1/locations/us-central1/challenges/../../../evil",
    "projects/other/locations/us-central1/challenges/x",
    "projects/p1/locations/us-central1/challenges/x?y=1",
    "projects/p1/locations/us-central1/challenges/",
    "https://evil.example/x",
])
async def test_google_challenge_names_must_stay_under_the_configured_parent(
        stub: tuple[Stub, str], name: str) -> None:
    s, url = stub
    s.on("/v1/projects/p1/locations/us-central1/challenges",
         answer(body={"name": name, "tpmNonce": base64.b64encode(b"n").decode()}))
    b = google(url)
    with pytest.raises(MalformedError, match="not under"):
        await b.challenge(NONCE, deadline())
    with pytest.raises(MalformedError, match="not under"):
        await b.appraise(tdx(), NONCE, deadline())
    assert all(x.path.endswith("/challenges") for x in s.seen)  # nothing sent anywhere else
    await b.aclose()


@pytest.mark.parametrize(("body", "why"), [
    ({"name": CHALLENGE_NAME, "tpmNonce": "AA==", "extra": 1}, "unexpected member"),
    ({"name": CHALLENGE_NAME}, "missing member"),
    ({"name": CHALLENGE_NAME, "tpmNonce": "AA==", "used": True}, "already used"),
    ({"name": CHALLENGE_NAME, "tpmNonce": "%%"}, "not base64"),
])
async def test_google_challenge_responses_are_checked(stub: tuple[Stub, str], body: Any, why: str) -> None:
    s, url = stub
    s.on("/v1/projects/p1/locations/us-central1/challenges", answer(body=body))
    b = google(url)
    with pytest.raises(MalformedError, match=why):
        await b.challenge(NONCE, deadline())
    await b.aclose()


@pytest.mark.parametrize(("body", "why"), [
    ({"attestationToken": jwt(), "oidcClaimsToken": jwt()}, "unexpected member"),
    ({"partialErrors": []}, "missing member"),
    ({"attestationToken": jwt(), "partialErrors": {}}, "partialErrors"),
    ({"attestationToken": jwt(), "partialErrors": [{"code": "3"}]}, "partialErrors"),
])
async def test_google_verify_responses_are_checked(stub: tuple[Stub, str], body: Any, why: str) -> None:
    s, url = stub
    _google_challenge(s)
    s.on(f"/v1/{CHALLENGE_NAME}:verifyConfidentialSpace", answer(body=body))
    b = google(url)
    with pytest.raises(MalformedError, match=why):
        await b.appraise(tdx(), NONCE, deadline())
    await b.aclose()


async def test_google_refuses_a_nonce_it_cannot_echo(stub: tuple[Stub, str]) -> None:
    s, url = stub
    b = google(url)
    with pytest.raises(UsageError, match=r"10\.\.74"):
        await b.appraise(tdx(), bytes(64), deadline())  # e.g. REPORT_DATA given as the nonce
    assert s.seen == []
    await b.aclose()


# --- Trustee -----------------------------------------------------------------------------------------

async def test_trustee_request_binds_report_data_natively(stub: tuple[Stub, str]) -> None:
    s, url = stub
    token = jwt()
    s.on("/attestation", answer(text=token + "\n", content_type="text/plain"))
    b = TrusteeBackend("t", "coco", url, policy_ids=("default",))
    binding = Binding(NONCE, {"ita": b"c"}, b"prefix")
    reset = session_binding.set(binding)
    try:
        raw = await b.appraise(tdx(b"quote"), NONCE, deadline())
    finally:
        session_binding.reset(reset)
    assert raw == RawResult(token.encode(), "application/jwt")
    (req,) = s.seen
    assert "Authorization" not in req.headers
    body = req.json()
    assert body["policy_ids"] == ["default"]
    (vr,) = body["verification_requests"]
    assert set(vr) == {"tee", "evidence", "runtime_data"} and vr["tee"] == "tdx"
    assert "=" not in vr["evidence"] and "=" not in vr["runtime_data"]["raw"]
    assert json.loads(b64url_decode(vr["evidence"])) == {"quote": base64.b64encode(b"quote").decode()}
    # Trustee compares raw runtime data, unhashed, with REPORT_DATA: the session's 64 bytes themselves.
    assert b64url_decode(vr["runtime_data"]["raw"]) == binding.report_data
    await b.aclose()


async def test_trustee_500_is_a_refusal_not_retried_and_not_a_breaker_failure(stub: tuple[Stub, str]) -> None:
    s, url = stub
    s.on("/attestation", answer(500, text="An internal error occured: \n0: REPORT_DATA mismatch\n1: x",
                                content_type="text/plain"))
    b = TrusteeBackend("t", "coco", url, breaker=CircuitBreaker(threshold=2))
    with pytest.raises(TrusteeRefusal) as info:
        await b.appraise(tdx(), NONCE, deadline())
    assert info.value.status == 500 and info.value.retry_after == math.inf
    assert "REPORT_DATA mismatch" in info.value.detail
    async with Federation([member(b, retries=3)], QuorumPolicy(k=1, n=1), FED_KEY) as fed:
        r = await fed.appraise(tdx())
    (vote,) = r.votes
    assert vote.outcome is Outcome.HTTP_ERROR and "REPORT_DATA mismatch" in (vote.detail or "")
    assert s.count("/attestation") == 2  # one per appraisal: never retried
    assert b.breaker.state is State.CLOSED and b.breaker.failures == 0


@pytest.mark.parametrize(("status", "retryable", "refusal", "transient"), [
    (500, False, True, False),  # an internal error it says is final
    (500, True, False, True),
    (422, False, False, False),  # AS.EVIDENCE.BINDING_MISMATCH
    (400, False, False, False),
    (503, True, False, True),  # AS.DEPENDENCY.UNAVAILABLE
])
async def test_trustee_problem_documents_of_later_revisions(stub: tuple[Stub, str], status: int, retryable: bool,
                                                            refusal: bool, transient: bool) -> None:
    s, url = stub
    problem = {"type": "https://github.com/confidential-containers/attestation-service/errors/X",
               "title": "Evidence binding mismatch", "status": status, "code": "AS.EVIDENCE.BINDING_MISMATCH",
               "detail": "The evidence is not bound to the expected data.", "retryable": retryable}
    s.on("/attestation", answer(status, problem, content_type="application/problem+json"))
    b = TrusteeBackend("t", "coco", url)
    with pytest.raises(BackendHTTPError) as info:
        await b.appraise(tdx(), NONCE, deadline())
    assert info.value.status == status
    assert isinstance(info.value, TrusteeRefusal) is refusal
    assert "AS.EVIDENCE.BINDING_MISMATCH: The evidence is not bound" in info.value.detail
    from federation.engine import _transient
    retried = _transient(info.value) and getattr(info.value, "retry_after", 0) != math.inf
    assert retried is transient
    await b.aclose()


@pytest.mark.parametrize("status", [502, 503, 504])
async def test_trustee_gateway_errors_stay_transient(stub: tuple[Stub, str], status: int) -> None:
    s, url = stub
    s.on("/attestation", answer(status, text="bad gateway", content_type="text/plain"),
         answer(text=jwt(), content_type="text/plain"))
    b = TrusteeBackend("t", "coco", url)
    async with Federation([member(b, retries=1)], QuorumPolicy(k=1, n=1), FED_KEY) as fed:
        await fed.appraise(tdx())
    assert s.count("/attestation") == 2  # retried once (the vote then rests with the trustee checker)


@pytest.mark.parametrize("text", ["", "not a jwt", '{"token": "a.b.c"}', "a.b.c.d"])
async def test_trustee_bodies_that_are_not_a_jwt_are_malformed(stub: tuple[Stub, str], text: str) -> None:
    s, url = stub
    s.on("/attestation", answer(text=text, content_type="text/plain"))
    b = TrusteeBackend("t", "coco", url)
    with pytest.raises(MalformedError):
        await b.appraise(tdx(), NONCE, deadline())
    await b.aclose()


# === against the vendor emulators ========================================================================

@pytest.fixture(scope="module")
def intel() -> FakeIntel:
    return FakeIntel()


@pytest.fixture(scope="module")
def ita_keys() -> ItaKeys:
    return ItaKeys.generate()


@pytest.fixture(scope="module")
def google_keys() -> GoogleKeys:
    return GoogleKeys.generate()


@pytest.fixture(scope="module")
def maa_keys() -> list[Any]:
    return [rsa_key(), rsa_key()]


def claims(token: bytes | str) -> dict[str, Any]:
    """The payload, unverified: these tests check *which* token came back; checkers verify it."""
    out: dict[str, Any] = pyjwt.decode(token, options={"verify_signature": False})
    return out


def quote_for(intel: FakeIntel, binding: Binding, **kw: Any) -> Evidence:
    return Evidence(TDX_QUOTE, td_quote(intel, binding.report_data, **kw))


async def with_binding(binding: Binding, coro: Any) -> Any:
    reset = session_binding.set(binding)
    try:
        return await coro
    finally:
        session_binding.reset(reset)


# --- ITA -----------------------------------------------------------------------------------------------

async def test_ita_emulator_two_phases(intel: FakeIntel, ita_keys: ItaKeys) -> None:
    emu = ItaEmulator(intel_roots=[intel.root], keys=ita_keys, api_key=API_KEY)
    async with running(emu.app()) as url:
        b = ita(url, policy_ids=("p-ok",), token_signing_alg="RS256")
        challenge = await b.challenge(NONCE, deadline())
        assert challenge is not None
        binding = Binding(NONCE, {"ita": challenge}, b.report_data_prefix(challenge))
        raw = await with_binding(binding, b.appraise(quote_for(intel, binding), NONCE, deadline()))
        await b.aclose()
    assert raw.media_type == "application/jwt" and raw.token.decode() in emu.issued
    assert pyjwt.get_unverified_header(raw.token)["alg"] == "RS256"
    c = claims(raw.token)
    assert c["iss"] == b.expect["issuer"]
    assert c["verifier_nonce"] == json.loads(challenge)  # the nonce this session got in phase 1
    assert base64.b64decode(c["attester_held_data"]) == binding.runtime_data  # the federation's nonce is in it
    assert bytes.fromhex(c["tdx_report_data"]) == binding.report_data
    assert [p["id"] for p in c["policy_ids_matched"]] == ["p-ok"]


async def test_ita_emulator_without_verifier_nonce(intel: FakeIntel, ita_keys: ItaKeys) -> None:
    emu = ItaEmulator(intel_roots=[intel.root], keys=ita_keys, api_key=API_KEY)
    async with running(emu.app()) as url:
        b = ita(url, verifier_nonce=False)
        assert await b.challenge(NONCE, deadline()) is None
        binding = Binding(NONCE)  # one-shot: no session binding set, the backend builds this one
        raw = await b.appraise(quote_for(intel, binding), NONCE, deadline())
        await b.aclose()
    c = claims(raw.token)
    assert "verifier_nonce" not in c
    assert bytes.fromhex(c["tdx_report_data"]) == binding.report_data
    assert [m for m, _ in emu.log] == ["POST"]


async def test_ita_emulator_refuses_a_quote_bound_elsewhere(intel: FakeIntel, ita_keys: ItaKeys) -> None:
    emu = ItaEmulator(intel_roots=[intel.root], keys=ita_keys, api_key=API_KEY)
    async with running(emu.app()) as url:
        b = ita(url)
        challenge = await b.challenge(NONCE, deadline())
        assert challenge is not None
        binding = Binding(NONCE, {"ita": challenge}, b.report_data_prefix(challenge))
        stale = Binding(b"another session nonce")
        with pytest.raises(BackendHTTPError) as info:
            await with_binding(binding, b.appraise(quote_for(intel, stale), NONCE, deadline()))
        await b.aclose()
    assert info.value.status == 400 and "REPORT_DATA does not match" in info.value.detail
    assert "[request-id " in info.value.detail or "[trace-id " in info.value.detail


async def test_ita_emulator_wrong_api_key_is_401(intel: FakeIntel, ita_keys: ItaKeys,
                                                 caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    emu = ItaEmulator(intel_roots=[intel.root], keys=ita_keys, api_key=API_KEY)
    async with running(emu.app()) as url:
        b = ita(url, api_key="wrong-key-s3cret")
        with pytest.raises(BackendHTTPError) as info:
            await b.challenge(NONCE, deadline())
        with pytest.raises(BackendHTTPError) as info2:
            await b.appraise(quote_for(intel, Binding(NONCE)), NONCE, deadline())
        await b.aclose()
    assert info.value.status == 401 == info2.value.status
    assert not isinstance(info.value, RetryAfterError)
    assert "s3cret" not in caplog.text + info.value.detail + info2.value.detail + repr(b)


async def test_ita_emulator_429_and_503(intel: FakeIntel, ita_keys: ItaKeys) -> None:
    emu = ItaEmulator(intel_roots=[intel.root], keys=ita_keys, api_key=API_KEY, retry_after="3")
    emu.fail_next = [429, 503]
    async with running(emu.app()) as url:
        b = ita(url)
        with pytest.raises(RetryAfterError) as info:
            await b.challenge(NONCE, deadline())
        assert info.value.status == 429 and info.value.retry_after == 3.0
        with pytest.raises(BackendHTTPError) as info2:
            await b.challenge(NONCE, deadline())
        assert info2.value.status == 503
        assert await b.challenge(NONCE, deadline()) is not None
        await b.aclose()


# --- MAA -----------------------------------------------------------------------------------------------

async def test_maa_emulator_echoes_the_report_data_and_the_nonce(intel: FakeIntel, maa_keys: list[Any]) -> None:
    emu = MaaEmulator(intel_roots=[intel.root], keys=maa_keys)
    async with running(emu.app()) as url:
        b = MaaBackend("maa", "ms", url)
        binding = Binding(NONCE, {"ita": b"x"}, b"prefix")
        raw = await with_binding(binding, b.appraise(quote_for(intel, binding), NONCE, deadline()))
        await b.aclose()
    assert raw.token.decode() in emu.issued
    c = claims(raw.token)
    assert c["iss"] == b.expect["issuer"] == url
    assert bytes.fromhex(c["tdx_report_data"]) == binding.report_data  # what the maa checker compares
    assert b64url_decode(c["nonce"]) == NONCE
    assert "x-ms-runtime" not in c


async def test_maa_emulator_errors(intel: FakeIntel, maa_keys: list[Any]) -> None:
    emu = MaaEmulator(intel_roots=[intel.root], keys=maa_keys, retry_after="5")
    async with running(emu.app()) as url:
        b = MaaBackend("maa", "ms", url, api_version="2019-01-01")
        with pytest.raises(BackendHTTPError) as info:
            await b.appraise(quote_for(intel, Binding(NONCE)), NONCE, deadline())
        assert info.value.status == 400 and "InvalidApiVersionParameter" in info.value.detail
        b = MaaBackend("maa", "ms", url)
        with pytest.raises(BackendHTTPError) as info:
            await b.appraise(tdx(b"not a quote"), NONCE, deadline())
        assert info.value.status == 400 and "InvalidParameter" in info.value.detail
        emu.fail_next = [429, 503]
        with pytest.raises(RetryAfterError) as retry:
            await b.appraise(quote_for(intel, Binding(NONCE)), NONCE, deadline())
        assert retry.value.retry_after == 5.0
        with pytest.raises(BackendHTTPError) as unavailable:
            await b.appraise(quote_for(intel, Binding(NONCE)), NONCE, deadline())
        assert unavailable.value.status == 503
        await b.aclose()


# --- Google --------------------------------------------------------------------------------------------

async def test_google_emulator_two_phases(intel: FakeIntel, google_keys: GoogleKeys) -> None:
    emu = GoogleEmulator(intel_roots=[intel.root], keys=google_keys, access_token=BEARER)
    async with running(emu.app()) as url:
        b = google(url, project="emulated-project", location="us-central1")
        challenge = await b.challenge(NONCE, deadline())
        assert challenge is not None
        binding = Binding(NONCE, {"google": challenge})
        raw = await with_binding(binding, b.appraise(quote_for(intel, binding), NONCE, deadline()))
        # A Google challenge is single-use: the same session again is refused, not retried.
        with pytest.raises(BackendHTTPError) as again:
            await with_binding(binding, b.appraise(quote_for(intel, binding), NONCE, deadline()))
        await b.aclose()
    assert isinstance(raw, GoogleResult) and raw.token.decode() in emu.issued
    header = pyjwt.get_unverified_header(raw.token)
    assert len(header["x5c"]) == 3  # PKI by default
    c = claims(raw.token)
    assert c["iss"] == b.expect["issuer"] and c["aud"] == b.expect["audience"]
    assert b64url_decode(c["eat_nonce"]) == NONCE
    assert again.value.status == 400 and "FAILED_PRECONDITION" in again.value.detail
    assert json.loads(challenge)["name"] in emu.challenges


async def test_google_emulator_partial_errors_and_oidc(intel: FakeIntel, google_keys: GoogleKeys,
                                                       caplog: pytest.LogCaptureFixture) -> None:
    emu = GoogleEmulator(intel_roots=[intel.root], keys=google_keys, access_token=BEARER,
                         partial_errors=[{"code": 3, "message": "container image signature did not verify"}])
    caplog.set_level(logging.DEBUG)
    async with running(emu.app()) as url:
        b = google(url, signature_type="OIDC")
        raw = await b.appraise(quote_for(intel, Binding(NONCE)), NONCE, deadline())  # one-shot: own challenge
        await b.aclose()
    assert isinstance(raw, GoogleResult)
    assert raw.partial_errors == ("3: container image signature did not verify",)
    assert "x5c" not in pyjwt.get_unverified_header(raw.token)
    assert "container image signature did not verify" in caplog.text and BEARER not in caplog.text
    assert [p.rsplit("/", 1)[-1].split(":")[-1] for _, p in emu.log] == ["challenges", "verifyConfidentialSpace"]


async def test_google_emulator_bad_token_and_outages(intel: FakeIntel, google_keys: GoogleKeys) -> None:
    emu = GoogleEmulator(intel_roots=[intel.root], keys=google_keys, access_token=BEARER, retry_after="4")
    async with running(emu.app()) as url:
        b = google(url, bearer_token="expired-s3cret")
        with pytest.raises(BackendHTTPError) as info:
            await b.challenge(NONCE, deadline())
        assert info.value.status == 401 and "UNAUTHENTICATED" in info.value.detail
        assert "s3cret" not in info.value.detail
        b = google(url)
        emu.fail_next = [429, 503]
        with pytest.raises(RetryAfterError) as retry:
            await b.challenge(NONCE, deadline())
        assert retry.value.status == 429 and retry.value.retry_after == 4.0
        with pytest.raises(BackendHTTPError) as unavailable:
            await b.challenge(NONCE, deadline())
        assert unavailable.value.status == 503 and "UNAVAILABLE" in unavailable.value.detail
        await b.aclose()


# --- Trustee -------------------------------------------------------------------------------------------

async def test_trustee_emulator_binds_natively(intel: FakeIntel) -> None:
    emu = TrusteeEmulator(intel_roots=[intel.root])
    async with running(emu.app()) as url:
        b = TrusteeBackend("trustee", "coco", url, policy_ids=("default",))
        binding = Binding(NONCE, {"ita": b"c"}, b"val-iat-prefix")
        raw = await with_binding(binding, b.appraise(quote_for(intel, binding), NONCE, deadline()))
        await b.aclose()
    assert raw.token.decode() in emu.issued
    c = claims(raw.token)
    assert c["iss"] == b.expect["issuer"]
    annotated = c["submods"]["cpu0"]["ear.veraison.annotated-evidence"]
    assert bytes.fromhex(annotated["report_data"]) == binding.report_data
    assert c["submods"]["cpu0"]["ear.appraisal-policy-id"] == "default"


async def test_trustee_emulator_refusals_are_not_retried(intel: FakeIntel) -> None:
    emu = TrusteeEmulator(intel_roots=[intel.root])
    async with running(emu.app()) as url:
        b = TrusteeBackend("trustee", "coco", url)
        with pytest.raises(TrusteeRefusal) as info:  # bound to another session
            await with_binding(Binding(NONCE), b.appraise(quote_for(intel, Binding(b"other nonce")), NONCE,
                                                          deadline()))
        assert "REPORT_DATA is different" in info.value.detail and info.value.retry_after == math.inf
        async with Federation([member(b, retries=3)], QuorumPolicy(k=1, n=1), FED_KEY) as fed:
            r = await fed.appraise(quote_for(intel, Binding(b"yet another nonce")))
        (vote,) = r.votes
        assert vote.outcome is Outcome.HTTP_ERROR
        assert [p for _, p in emu.log].count("/attestation") == 2
        assert b.breaker.failures == 0
        emu.down = True  # an ingress in front of a stopped AS: 503, transient
        with pytest.raises(BackendHTTPError) as down:
            await b.appraise(quote_for(intel, Binding(NONCE)), NONCE, deadline())
        assert down.value.status == 503 and not isinstance(down.value, TrusteeRefusal)
        assert b.breaker.failures == 1
        await b.aclose()


# --- the four together ---------------------------------------------------------------------------------

async def test_one_quote_one_report_data_four_vendors(intel: FakeIntel, ita_keys: ItaKeys, maa_keys: list[Any],
                                                      google_keys: GoogleKeys, tmp_path: Path) -> None:
    """Phase 1 collects ITA's nonce and Google's challenge; the attester binds the one REPORT_DATA
    the federation derives; phase 2 gets a token from each service, and each vote passes its
    kind's checker under the service's anchor (configured from files, as an operator would)."""
    e_ita = ItaEmulator(intel_roots=[intel.root], keys=ita_keys, api_key=API_KEY)
    e_maa = MaaEmulator(intel_roots=[intel.root], keys=maa_keys)
    e_google = GoogleEmulator(intel_roots=[intel.root], keys=google_keys, access_token=BEARER)
    e_trustee = TrusteeEmulator(intel_roots=[intel.root])
    emus: dict[str, ItaEmulator | MaaEmulator | GoogleEmulator | TrusteeEmulator] = {
        "ita": e_ita, "maa": e_maa, "google": e_google, "trustee": e_trustee}
    anchors = {"ita.jwks": json.dumps(e_ita.jwks()), "maa.jwks": json.dumps(e_maa.jwks()),
               "google.pem": e_google.root_pem().decode(), "trustee.jwks": json.dumps(e_trustee.jwks())}
    for file, text in anchors.items():
        (tmp_path / file).write_text(text)

    def anchored(b: Any, file: str) -> Member:
        return Member(b, load_trust_anchor(tmp_path / file), timeout=5.0)

    async with running(emus["ita"].app()) as u1, running(emus["maa"].app()) as u2, \
            running(emus["google"].app()) as u3, running(emus["trustee"].app()) as u4:
        i = ita(u1)
        members = [anchored(i, "ita.jwks"), anchored(MaaBackend("maa", "ms", u2), "maa.jwks"),
                   anchored(google(u3), "google.pem"),
                   anchored(TrusteeBackend("trustee", "coco", u4), "trustee.jwks")]
        async with Federation(members, QuorumPolicy(k=3, n=4), FED_KEY) as fed:
            session = await fed.challenge()
            assert set(session.challenges) == {"ita", "google"}
            binding = session.binding
            assert binding is not None and binding.prefix == i.report_data_prefix(session.challenges["ita"])
            r = await fed.appraise(quote_for(intel, binding), session=session)
    for vote in r.votes:
        assert vote.raw is not None, (vote.backend, vote.outcome, vote.detail)
        assert vote.raw.decode() in emus[vote.backend].issued, vote.backend
        assert vote.media_type == "application/jwt"
    by_name = {v.backend: claims(v.raw or b"") for v in r.votes}
    assert bytes.fromhex(by_name["ita"]["tdx_report_data"]) == binding.report_data
    assert bytes.fromhex(by_name["maa"]["tdx_report_data"]) == binding.report_data
    assert bytes.fromhex(by_name["trustee"]["submods"]["cpu0"]["ear.veraison.annotated-evidence"]["report_data"]) \
        == binding.report_data
    assert b64url_decode(by_name["google"]["eat_nonce"]) == session.nonce
    # Each vote as its kind's checker judged it: bound natively (ITA, Trustee) or by the echoed
    # REPORT_DATA (MAA); Google's echoed nonce is weak, which the default policy does not count.
    outcomes = {v.backend: (v.outcome, v.binding) for v in r.votes}
    assert outcomes["ita"][0] is Outcome.OK and outcomes["maa"][0] is Outcome.OK, r.votes
    assert outcomes["trustee"][0] is Outcome.OK, r.votes
    assert outcomes["google"][0] in (Outcome.OK, Outcome.WEAK_BINDING), r.votes
