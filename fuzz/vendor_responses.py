"""The vendor backends' response parsing (verifiers/remote/{ita,maa,google,trustee}.py, _vendor.py).

The backends read responses only as the repo's :class:`~verifiers.remote.http.Response` values (no
aiohttp type gets past http.py), so the input scripts them: each backend runs its real exchanges
(``challenge``, then ``appraise`` under the session's binding, or a one-shot ``appraise``) against
an :class:`~verifiers.remote.http.HttpClient` whose ``request`` answers the scripted responses in
order, the way ``HttpClient.request`` returns them (status, headers, body; nothing sent anywhere).

Byte 0 picks the flow; then, per response, a status, a ``Content-Type``, a ``Retry-After`` and a
request-id header (each from a table, or free text from the input); the rest of the input is the
bodies, separated by ``\\x1e``. The first response also goes through the pure parsers directly:
:func:`strict_json` with each backend's members, the ITA nonce object and challenge, Google's
challenge, challenge name and ``partialErrors``, :func:`compact_jws`, :func:`b64decode_strict`,
:func:`vendor_error`, and Trustee's bare-JWT body and retry flag.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
from collections.abc import Mapping
from functools import cache
from typing import Any

from multidict import CIMultiDict
from yarl import URL

from federation.binding import Binding
from federation.errors import BackendUnreachableError, Error, MalformedError
from federation.evidence import Evidence
from fuzz._harness import attempt
from fuzz.vendor_claims import NONCE, VERIFIER_NONCE, Choices, encode_text
from verifiers.base import session_binding
from verifiers.remote import ita as ita_backend
from verifiers.remote._vendor import TDX_QUOTE, Secret, b64decode_strict, compact_jws, strict_json, vendor_error
from verifiers.remote.breaker import CircuitBreaker
from verifiers.remote.google import GoogleBackend, _partial_errors
from verifiers.remote.http import HttpClient, Response
from verifiers.remote.ita import ItaBackend
from verifiers.remote.maa import MaaBackend
from verifiers.remote.trustee import TrusteeBackend, _retryable

FLOWS = ("ita", "ita-oneshot", "maa", "google", "google-oneshot", "trustee")
RESPONSES = 2
SEP = b"\x1e"
API_KEY = Secret("fuzz-ita-api-key-0123456789")
BEARER = Secret("ya29.fuzz-bearer-token")
EVIDENCE = Evidence(TDX_QUOTE, b"\x04\x00\x02\x00\x81\x00\x00\x00" + bytes(632))
CHALLENGE_NAME = "projects/p1/locations/us-central1/challenges/0f1e2d3c"
JWT = "eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9.eyJpc3MiOiJmdXp6In0.c2lnbmF0dXJl"

STATUSES = (200, 200, 200, 200, 201, 204, 301, 400, 401, 403, 404, 409, 413, 422, 429, 500, 500, 502, 503, 504,
            100, 299, 599, 999)
CONTENT_TYPES: tuple[str | None, ...] = (
    None, "application/json", "application/json; charset=utf-8", "application/problem+json", "text/plain",
    "text/plain; charset=utf-8", "", "application/jwt", "APPLICATION/JSON", "application/vnd.example+json",
    "text/html", " application/json ; x", "application/json\u00b2", "\x00",
)
# delta-seconds (RFC 9110 §10.2.3) in every shape a server could send: digits of other scripts
# (str.isdigit), more digits than a float holds or int() reads, HTTP-dates near the calendar's ends
RETRY_AFTERS: tuple[str | None, ...] = (
    None, "1", "0", "120", " 5 ", "-1", "1.5", "1e9", "", "garbage", "\u00b2", "\u0663", "\uff11\uff12",
    "9" * 400, "9" * 5000, "Wed, 21 Oct 2015 07:28:00 GMT", "Fri, 31 Dec 9999 23:59:59 GMT",
    "Mon, 01 Jan 0001 00:00:00 GMT", "Thu, 01 Jan 1970 00:00:00 +0000", "Sun, 06 Nov 1994 08:49:37",
)
ID_NAMES = ("trace-id", "request-id", "x-ms-request-id", "x-request-id")
ID_VALUES = ("abc-123", "\x00\x7f\u2028", "x" * 300, "")
TEXT = 0xF0  # a header choice at or above this is free text from the input


class ScriptedHttp(HttpClient):
    """An :class:`HttpClient` that answers scripted responses in order, as ``request`` returns them."""

    def __init__(self, real: HttpClient) -> None:
        super().__init__(real.base, real.options)
        self.script: list[Response] = []

    async def request(self, method: str, url: URL, *, deadline: float, what: str,
                      headers: Mapping[str, str] | None = None, data: bytes | None = None) -> Response:
        if not self.within(url):
            raise MalformedError(f"{what}: refusing to contact {url.origin()}: not under the configured URL")
        if not self.script:
            raise BackendUnreachableError(f"{what}: no response scripted")
        resp = self.script.pop(0)
        if len(resp.body) > self.options.max_response:  # what request() refuses while reading
            raise MalformedError(f"{what}: response exceeds {self.options.max_response} bytes")
        return Response(resp.status, resp.headers, resp.body, url)


@cache
def _backends() -> dict[str, Any]:
    breaker = CircuitBreaker(1 << 30)  # reset per input: an open breaker would hide the parsing
    backends: dict[str, Any] = {
        "ita": ItaBackend("ita-fuzz", "fuzz", "https://api.trustauthority.intel.com", api_key=API_KEY,
                          policy_ids=("p1",), breaker=breaker),
        "maa": MaaBackend("maa-fuzz", "fuzz", "https://fuzz.weu.attest.azure.net", breaker=breaker),
        "google": GoogleBackend("google-fuzz", "fuzz", project="p1", location="us-central1", bearer_token=BEARER,
                                audience="https://rp.example", breaker=breaker),
        "trustee": TrusteeBackend("trustee-fuzz", "fuzz", "https://trustee.example/as", bearer_token=BEARER,
                                  breaker=breaker),
    }
    for backend in backends.values():
        backend.http = ScriptedHttp(backend.http)
    return backends


@cache
def _loop() -> asyncio.AbstractEventLoop:
    return asyncio.new_event_loop()


# -- the input ------------------------------------------------------------------------------------


def _header(c: Choices, table: tuple[str | None, ...]) -> str | None:
    b = c.byte()
    return c.text() if b >= TEXT else table[b % len(table)]


def _response(c: Choices) -> tuple[int, CIMultiDict[str]]:
    status = STATUSES[c.byte() % len(STATUSES)]
    headers: CIMultiDict[str] = CIMultiDict()
    for name, table in (("Content-Type", CONTENT_TYPES), ("Retry-After", RETRY_AFTERS)):
        value = _header(c, table)
        if value is not None:
            headers[name] = value
    b = c.byte()
    if b & 1:
        headers[ID_NAMES[b >> 1 & 3]] = c.text() if b >= TEXT else ID_VALUES[b >> 3 & 3]
    return status, headers


def responses_of(data: bytes) -> tuple[str, list[Response]]:
    """(flow, scripted responses) for an input."""
    c = Choices(data)
    flow = c.pick(FLOWS)
    heads = [_response(c) for _ in range(RESPONSES)]
    bodies = c.rest().split(SEP, RESPONSES - 1)
    bodies += [b""] * (RESPONSES - len(bodies))
    url = URL("https://vendor.example/")
    return flow, [Response(status, headers, body, url) for (status, headers), body in zip(heads, bodies, strict=True)]


def encode_input(flow: str, *responses: tuple[int, int, int, int, bytes]) -> bytes:
    """An input: *responses* as (status, content-type index, retry-after index, id byte, body)."""
    out = bytes([FLOWS.index(flow)])
    heads = list(responses) + [(200, 0, 0, 0, b"")] * (RESPONSES - len(responses))
    for status, ct, ra, ident, _ in heads:
        out += bytes([STATUSES.index(status), ct, ra, ident])
    return out + SEP.join(r[4] for r in responses)


def _doc(**members: Any) -> bytes:
    return json.dumps(members).encode()


def seeds() -> list[bytes]:
    ct_json, ct_problem, ct_text, ct_jwt = (CONTENT_TYPES.index(t) for t in (
        "application/json", "application/problem+json", "text/plain", "application/jwt"))
    nonce = _doc(**VERIFIER_NONCE)
    token = _doc(token=JWT)
    challenge = _doc(name=CHALLENGE_NAME, tpmNonce=base64.b64encode(b"t" * 32).decode(),
                     createTime="2025-06-01T00:00:00Z", expireTime="2025-06-01T01:00:00Z", used=False)
    verified = _doc(attestationToken=JWT, partialErrors=[{"code": 3, "message": "image signature"}])
    google_error = _doc(error={"code": 403, "message": f"token {BEARER.reveal()} denied",
                               "status": "PERMISSION_DENIED"})
    azure_error = _doc(error={"code": "InvalidParameter", "message": "quote does not parse"})
    problem = _doc(type="about:blank", title="bad evidence", detail="REPORT_DATA mismatch", code="E42",
                   retryable=True)
    ok, busy = RETRY_AFTERS.index("1"), RETRY_AFTERS.index("Wed, 21 Oct 2015 07:28:00 GMT")
    out = [
        encode_input("ita", (200, ct_json, 0, 0, nonce), (200, ct_json, 0, 0, token)),
        encode_input("ita", (401, ct_json, 0, 3, _doc(error={"code": 401, "message": API_KEY.reveal()})),
                     (429, ct_json, ok, 5, b"{}")),
        encode_input("ita-oneshot", (200, ct_json, 0, 0, token)),
        encode_input("ita-oneshot", (503, ct_text, busy, 1, b"busy")),
        encode_input("maa", (200, ct_json, 0, 0, token)),
        encode_input("maa", (400, ct_json, 0, 5, azure_error)),
        encode_input("google", (200, ct_json, 0, 0, challenge), (200, ct_json, 0, 0, verified)),
        encode_input("google", (403, ct_json, 0, 3, google_error), (200, ct_json, 0, 0, verified)),
        encode_input("google-oneshot", (200, ct_json, 0, 0, challenge), (200, ct_json, 0, 0, _doc(
            attestationToken=JWT))),
        encode_input("trustee", (200, ct_jwt, 0, 0, JWT.encode())),
        encode_input("trustee", (500, ct_text, 0, 0, b"An internal error occured: quote verification failed")),
        encode_input("trustee", (500, ct_problem, ok, 0, problem)),
        encode_input("trustee", (400, ct_problem, 0, 0, problem)),
    ]
    text = bytes([FLOWS.index("maa"), STATUSES.index(429), TEXT]) + encode_text("text/plain") + bytes([TEXT])
    out.append(text + encode_text("30") + bytes([TEXT | 1]) + encode_text("req-1") + bytes(4) + b"slow down")
    return out


# -- the target -----------------------------------------------------------------------------------


async def _flow(flow: str, script: list[Response]) -> None:
    backends = _backends()
    backend = backends[flow.split("-")[0]]
    backend.breaker.reset()
    backend.http.script = list(script)
    deadline = asyncio.get_running_loop().time() + 60
    binding = Binding(NONCE)
    if flow in ("ita", "google"):  # phase 1, then the binding as federation.engine makes it
        challenge = None
        with contextlib.suppress(Error):
            challenge = await backend.challenge(NONCE, deadline)
        if challenge is not None:
            prefix = backend.report_data_prefix(challenge) if flow == "ita" else b""
            binding = Binding(NONCE, {backend.name: challenge}, prefix)
    token = session_binding.set(None if flow.endswith("oneshot") else binding)
    try:
        await backend.appraise(EVIDENCE, NONCE, deadline)
    finally:
        session_binding.reset(token)


def _members(resp: Response) -> None:
    """The pure parsers on one response, with each backend's documented members."""
    google = _backends()["google"]
    attempt(lambda: ita_backend._nonce_object(strict_json(resp, "nonce", required=ita_backend._NONCE_MEMBERS,
                                                          max_size=ita_backend.MAX_NONCE_RESPONSE), "nonce"),
            lambda: compact_jws(strict_json(resp, "attest", required=("token",))["token"], "token"),
            lambda: google._challenge_object(strict_json(resp, "challenge", required=("name", "tpmNonce"), optional=(
                "createTime", "expireTime", "used")), "challenge"),
            lambda: _verified(resp))


def _verified(resp: Response) -> None:
    doc = strict_json(resp, "verify", required=("attestationToken",), optional=("partialErrors",))
    compact_jws(doc["attestationToken"], "attestationToken")
    _partial_errors(doc.get("partialErrors", []), BEARER)


def _pure(resp: Response) -> None:
    text = resp.body.decode("utf-8", "surrogateescape")
    backends = _backends()
    attempt(lambda: _members(resp),
            lambda: vendor_error(resp, "fuzz", secrets=(API_KEY, None, BEARER)),
            lambda: _retryable(resp),
            lambda: TrusteeBackend._token_of(resp),
            lambda: compact_jws(text, "body"),
            lambda: b64decode_strict(text, "body"),
            lambda: backends["ita"].report_data_prefix(resp.body),
            lambda: backends["google"]._challenge_name(resp.body))


def TestOneInput(data: bytes) -> None:
    flow, script = responses_of(data)
    _pure(script[0])
    log = logging.getLogger("verifiers.remote.google")  # partialErrors are logged: not on every input
    disabled, log.disabled = log.disabled, True
    try:
        _loop().run_until_complete(_flow(flow, script))
    except Error:
        pass
    finally:
        log.disabled = disabled
