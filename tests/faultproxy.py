"""A fault-injecting HTTP/1.1 proxy on 127.0.0.1, and real ``ratsfed serve`` verifiers to put behind it.

:class:`FaultProxy` sits between a ``kind = "veraison"`` backend and a verifier process. It reads each
request from the client socket itself (a small HTTP/1.1 reader: keep-alive, ``Content-Length`` and
chunked bodies), forwards it upstream with aiohttp, and writes the answer back itself, so that it
controls every byte and every socket event. Its :class:`Plan` says what goes wrong:

============== ====================================================================================
mode           what the client sees
============== ====================================================================================
pass           the verifier's answer, unchanged
refuse         the connection closed at once (RST, no answer); ``scope = "connection"`` closes every
               new connection at accept, before a byte is read (and a pooled one at its next request)
reset          the answer's head and half its body, then RST
latency        the answer after ``latency`` + uniform(0, ``jitter``) seconds (``scope =
               "connection"``: once, when the connection is accepted)
hang           nothing until ``hang`` seconds have passed (or the client gave up), then a close
truncate       the head with the full ``Content-Length`` and part of the body, then FIN (``variant
               = "short"``: a consistent ``Content-Length`` on a cut JSON body)
garbage        HTTP 200 with the session media type and random bytes (or an HTML error page)
http-5xx       ``status`` (500/502/503/504) with an RFC 7807 body, the verifier not asked
http-429       429 with ``Retry-After: retry_after`` (delta-seconds or an HTTP-date)
flap           alternately a pass and a failure (``flap_with``: http-5xx or refuse), per request or
               (``scope = "connection"``) per connection
replay         a result this verifier really signed for an *earlier* session (another nonce), verbatim
other-session  the result of a concurrent session the proxy opens itself, with another nonce and
               Evidence made for it (a genuine, affirming, validly signed EAR of the wrong session)
expired        the result re-signed with the verifier's own key, upgraded to affirming, with the
               right nonce but outside its validity (``variant``: old iat, exp passed, iat in the future)
rotated-key    the result re-signed with the verifier's rotated-out key (its ``kid``), upgraded
tamper         the result's claims upgraded to affirming, the verifier's signature kept
backend-bug    (in-process backends of ``fault_trials`` only: the backend raises; the proxy passes)
stubborn       (in-process only: the backend hangs and, when cancelled, takes ``latency`` seconds to stop)
============== ====================================================================================

``target`` picks the requests a fault hits (``evidence``: the POST that returns the result;
``newSession``; ``any``), ``times`` how many of them (then the proxy passes). Lying modes always
target the answer that carries ``result``. The proxy also keeps the ground truth: every result
the verifier genuinely issued, by session nonce (:meth:`FaultProxy.take_genuine`), and counts the
faults it actually injected (:attr:`FaultProxy.injected`).

:class:`VerifierCluster` makes keys with ``ratsfed keys generate`` (each verifier a current and a
rotated-out key), writes the configs and runs one ``ratsfed serve`` verifier-role process per
verifier (process groups, stopped on exit); :class:`Attester` makes PSA Evidence bound to a nonce.
Only loopback addresses are used; every wait is bounded.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import random
import socket
import struct
import subprocess
import time
from collections import Counter, deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal
from urllib.parse import unquote

import aiohttp
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from process_helpers import ServerProcess, ratsfed, start_servers, stop_all

from federation import cbor
from federation.ar4si import Tier, TrustVector
from federation.demo import FIRMWARE, PSA_IMPL_ID, PSA_INSTANCE_ID, PSA_SIGNER_ID
from federation.demo_attester import PsaDevice, firmware_digest
from federation.ear import Appraisal, Ear, Spelling, encode_ear
from federation.ear.codec import from_cbor_claims, from_json_claims, to_cbor_claims, to_json_claims
from federation.ear.token import peek_claims
from federation.evidence import Evidence
from federation.keys import SigningKey, TrustAnchor, b64url_decode, b64url_encode, load_signing_key, load_trust_anchor
from verifiers.local.corim.encode import sign_corim
from verifiers.local.corim.model import (
    ClassMap,
    Comid,
    Corim,
    CorimMeta,
    Digest,
    Environment,
    KeyTriple,
    Measurement,
    MeasurementValues,
    ReferenceTriple,
    Tagged,
    Triples,
    Validity,
)

__all__ = [
    "LYING",
    "Attester",
    "FaultProxy",
    "Mode",
    "Plan",
    "VerifierCluster",
    "VerifierInfo",
    "raw_of_result",
]

HOST = "127.0.0.1"
SESSION_TYPE = "application/vnd.veraison.challenge-response-session+json"
CR = "/challenge-response/v1"
MAX_HEAD = 64 << 10  # bytes of a request head
MAX_BODY = 4 << 20  # bytes of a request or upstream response body
MAX_HANG = 30.0  # seconds a hang may last, whatever the plan says
UPSTREAM_TIMEOUT = 30.0  # seconds for one upstream exchange
HOP_BY_HOP = frozenset({"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer",
                        "transfer-encoding", "upgrade", "host", "content-length"})
REASONS = {200: "OK", 201: "Created", 202: "Accepted", 204: "No Content", 400: "Bad Request", 404: "Not Found",
           429: "Too Many Requests", 500: "Internal Server Error", 502: "Bad Gateway", 503: "Service Unavailable",
           504: "Gateway Timeout"}


class Mode(StrEnum):
    PASS = "pass"
    REFUSE = "refuse"
    RESET = "reset"
    LATENCY = "latency"
    HANG = "hang"
    TRUNCATE = "truncate"
    GARBAGE = "garbage"
    HTTP_5XX = "http-5xx"
    HTTP_429 = "http-429"
    FLAP = "flap"
    REPLAY = "replay"
    OTHER_SESSION = "other-session"
    EXPIRED = "expired"
    ROTATED_KEY = "rotated-key"
    TAMPER = "tamper"
    BUG = "backend-bug"  # in-process backends only (the backend raises); the proxy passes
    STUBBORN = "stubborn"  # in-process backends only: hangs, and takes ``latency`` s to stop when cancelled



LYING = frozenset({Mode.REPLAY, Mode.OTHER_SESSION, Mode.EXPIRED, Mode.ROTATED_KEY, Mode.TAMPER})
Target = Literal["evidence", "newSession", "any"]
Scope = Literal["request", "connection"]


@dataclass(frozen=True, slots=True)
class Plan:
    """What the proxy does to the requests it sees (see the module docstring)."""

    mode: Mode = Mode.PASS
    target: Target = "evidence"
    scope: Scope = "request"
    times: int | None = None  # faults injected before the proxy passes again (None: every time)
    latency: float = 0.0  # seconds
    jitter: float = 0.0  # seconds, uniform on top of latency
    hang: float = 10.0  # seconds a hang holds the request (bounded by MAX_HANG)
    status: int = 503  # http-5xx
    retry_after: str | None = "1"  # http-429 (and http-5xx when set): the header's value
    flap_with: Literal["http-5xx", "refuse"] = "http-5xx"
    variant: str = ""  # truncate: "" | "short"; garbage: "" | "html"; expired: "old" | "exp" | "future"

    def describe(self) -> str:
        out = self.mode.value
        if self.mode is Mode.LATENCY:
            out += f"({self.latency:.2f}+{self.jitter:.2f}s)"
        elif self.mode is Mode.HTTP_5XX:
            out += f"({self.status})"
        elif self.mode is Mode.HTTP_429:
            out += f"(Retry-After {self.retry_after})"
        elif self.mode is Mode.FLAP:
            out += f"({self.flap_with})"
        if self.variant:
            out += f"[{self.variant}]"
        if self.mode is not Mode.PASS:
            out += f" on {self.target}"
            if self.scope == "connection":
                out += " per connection"
            if self.times is not None:
                out += f" x{self.times}"
        return out


@dataclass(slots=True)
class _Request:
    method: str
    target: str
    headers: list[tuple[str, str]]
    body: bytes
    keep_alive: bool

    def header(self, name: str) -> str | None:
        name = name.lower()
        return next((v for k, v in self.headers if k.lower() == name), None)

    @property
    def path(self) -> str:
        return self.target.split("?", 1)[0]

    @property
    def route(self) -> str:
        path = self.path
        if path.endswith("/newSession"):
            return "newSession"
        if "/session/" in path:
            return {"POST": "evidence", "GET": "poll", "DELETE": "delete"}.get(self.method, "other")
        if path.startswith("/.well-known/"):
            return "discovery"
        return "other"

    def query(self, name: str) -> str | None:
        if "?" not in self.target:
            return None
        for part in self.target.split("?", 1)[1].split("&"):
            key, _, value = part.partition("=")
            if key == name:
                return value
        return None


@dataclass(slots=True)
class _Response:
    status: int
    headers: list[tuple[str, str]]
    body: bytes

    def head(self, content_length: int | None = None) -> bytes:
        length = len(self.body) if content_length is None else content_length
        lines = [f"HTTP/1.1 {self.status} {REASONS.get(self.status, 'Status')}"]
        lines += [f"{k}: {v}" for k, v in self.headers]
        lines.append(f"Content-Length: {length}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


class _Closed(Exception):
    """The client closed the connection (or sent something that is not HTTP)."""


async def _read_request(reader: asyncio.StreamReader) -> _Request:
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError) as exc:
        raise _Closed from exc
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
        raise _Closed
    headers = []
    for line in lines[1:]:
        if line:
            name, _, value = line.partition(":")
            headers.append((name.strip(), value.strip()))
    req = _Request(parts[0], parts[1], headers, b"", True)
    conn = (req.header("Connection") or "").lower()
    req.keep_alive = conn != "close" if parts[2] == "HTTP/1.1" else conn == "keep-alive"
    try:
        if (req.header("Transfer-Encoding") or "").lower() == "chunked":
            chunks: list[bytes] = []
            size = 0
            while True:
                n = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
                size += n
                if size > MAX_BODY:
                    raise _Closed
                if n == 0:
                    while (await reader.readuntil(b"\r\n")) != b"\r\n":  # trailers
                        pass
                    break
                chunks.append(await reader.readexactly(n))
                await reader.readexactly(2)
            req.body = b"".join(chunks)
        else:
            length = int(req.header("Content-Length") or "0")
            if not 0 <= length <= MAX_BODY:
                raise _Closed
            req.body = await reader.readexactly(length) if length else b""
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError, ValueError) as exc:
        raise _Closed from exc
    return req


def _rst(writer: asyncio.StreamWriter) -> None:
    """Close with a TCP reset (SO_LINGER 0), as a crashed peer or a middlebox would."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


def raw_of_result(result: str) -> bytes:
    """A session document's ``result`` as the backend hands it on: a JWT's bytes, or a CWT decoded
    from base64url (see ``verifiers.remote.veraison._result_token``)."""
    return result.encode("ascii") if result.count(".") == 2 else b64url_decode(result)


def _result_of_raw(raw: bytes, cwt: bool) -> str:
    return b64url_encode(raw) if cwt else raw.decode("ascii")


def _problem(status: int, title: str, headers: Sequence[tuple[str, str]] = ()) -> _Response:
    body = json.dumps({"type": "about:blank", "title": title, "status": status}).encode()
    return _Response(status, [("Content-Type", "application/problem+json"), *headers], body)


AFFIRMING_VECTOR = TrustVector.of({"instance-identity": 2, "configuration": 2, "executables": 2,
                                   "file-system": 2, "hardware": 2, "runtime-opaque": 2, "storage-opaque": 2,
                                   "sourced-data": 2})


class Liar:
    """What the lying modes substitute: validly signed (or tampered) EARs that must not count."""

    def __init__(self, key: SigningKey | None, old_key: SigningKey | None, spelling: Spelling = Spelling.VERAISON
                 ) -> None:
        self.key = key
        self.old_key = old_key
        self.spelling = spelling

    @staticmethod
    def decode(raw: bytes) -> tuple[Literal["jwt", "cwt"], Ear]:
        fmt, claims = peek_claims(raw)
        return fmt, from_json_claims(claims) if fmt == "jwt" else from_cbor_claims(claims)

    @staticmethod
    def upgraded(ear: Ear) -> Ear:
        """Every submodule affirming with an all-affirming trust vector (the lie that would help)."""
        subs = {n: Appraisal.make(Tier.AFFIRMING, AFFIRMING_VECTOR, a.policy_ids) for n, a in ear.submods.items()}
        return replace(ear, submods=subs, reported_status=None)

    def resign(self, raw: bytes, *, key: SigningKey, nonce: bytes | None = None, iat: int | None = None,
               exp: int | None = None) -> bytes:
        """*raw*'s claims upgraded (and given another nonce, iat, exp), signed with *key*."""
        fmt, ear = self.decode(raw)
        ear = self.upgraded(ear)
        if nonce is not None:
            ear = replace(ear, nonce=nonce)
        if iat is not None:
            ear = replace(ear, iat=iat, exp=exp if exp is not None else ear.exp)
        return encode_ear(ear, key, fmt=fmt, spelling=self.spelling)

    def expired(self, raw: bytes, variant: str, now: int) -> bytes:
        assert self.key is not None
        if variant == "future":
            return self.resign(raw, key=self.key, iat=now + 3600, exp=now + 7200)
        if variant == "exp":  # recent iat, but exp well past (beyond any leeway)
            return self.resign(raw, key=self.key, iat=now - 200, exp=now - 120)
        return self.resign(raw, key=self.key, iat=now - 3600, exp=now - 3300)  # "old"

    def tamper(self, raw: bytes) -> bytes:
        """The claims upgraded, the signature left as it was (a MITM without the key)."""
        fmt, ear = self.decode(raw)
        better = self.upgraded(ear)
        if fmt == "jwt":
            head, _, sig = raw.split(b".")
            payload = json.dumps(to_json_claims(better, self.spelling), separators=(",", ":")).encode()
            return b".".join((head, b64url_encode(payload).encode("ascii"), sig))
        item = cbor.loads(raw)
        msg = list(item.value if isinstance(item, cbor.CBORTag) else item)
        msg[2] = cbor.dumps(to_cbor_claims(better, self.spelling))
        return cbor.dumps(cbor.CBORTag(item.tag, msg) if isinstance(item, cbor.CBORTag) else msg)


class FaultProxy:
    """One fault-injecting proxy in front of one upstream service (see the module docstring).

    Runs in the caller's event loop: ``await start()``, set :attr:`plan` between appraisals,
    ``await aclose()`` at the end (it closes every client connection and the upstream pool).
    """

    def __init__(self, upstream: str, *, liar: Liar | None = None, attester: Callable[[bytes], Evidence] | None = None,
                 rng: random.Random | None = None, clock: Callable[[], float] = time.time) -> None:
        self.upstream = upstream.rstrip("/")
        self.liar = liar or Liar(None, None)
        self.attester = attester
        self.rng = rng or random.Random(0)
        self.clock = clock
        self._plan = Plan()
        self._armed: bytes | None = None  # the session nonce the plan is for (None: every request)
        self._generation = 0  # plans armed so far
        self._hits = 0  # faults injected under the current plan (for ``times``)
        self._flaps = 0  # matching requests/connections seen under the current plan (for flap)
        self._server: asyncio.Server | None = None
        self._session: aiohttp.ClientSession | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._sessions: dict[str, bytes] = {}  # session id -> nonce (from newSession's Location)
        self._genuine: dict[bytes, set[bytes]] = {}  # nonce -> raw results the verifier issued
        self._history: deque[tuple[bytes, Tier]] = deque(maxlen=16)  # earlier genuine results
        self.injected: Counter[str] = Counter()  # mode -> faults actually injected
        self.requests: Counter[str] = Counter()  # route -> requests seen
        self.url = ""

    # --- lifecycle -------------------------------------------------------------------------------

    async def start(self) -> str:
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=32), auto_decompress=False, trust_env=False,
            timeout=aiohttp.ClientTimeout(total=UPSTREAM_TIMEOUT))
        self._server = await asyncio.start_server(self._serve, HOST, 0, limit=MAX_HEAD)
        port = self._server.sockets[0].getsockname()[1]
        self.url = f"http://{HOST}:{port}"
        return self.url

    async def aclose(self) -> None:
        if self._server is not None:
            self._server.close()
        for w in list(self._writers):
            w.transport.abort()
        for t in list(self._tasks):
            t.cancel()
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=5.0)
        if self._server is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._server.wait_closed(), 5.0)
            self._server = None
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def __aenter__(self) -> FaultProxy:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # --- the plan and the ground truth -----------------------------------------------------------

    @property
    def plan(self) -> Plan:
        return self._plan

    @plan.setter
    def plan(self, plan: Plan) -> None:
        self.arm(plan)

    def arm(self, plan: Plan, nonce: bytes | None = None) -> None:
        """Use *plan* from now on; with *nonce*, per-request faults hit only the requests of
        sessions with that nonce (so a background DELETE of an earlier appraisal cannot use up
        ``times``). Connection-scope faults act at accept, before any request is read."""
        self._plan = plan
        self._armed = nonce
        self._generation += 1  # connection-scope faults end with the plan they were decided under
        self._hits = 0
        self._flaps = 0

    def disarm(self) -> None:
        self.arm(Plan())

    def take_genuine(self, nonce: bytes) -> set[bytes]:
        """The raw results the verifier really issued for sessions with *nonce* (forgotten after)."""
        return self._genuine.pop(nonce, set())

    def forget(self) -> None:
        self._genuine.clear()
        self._sessions.clear()

    def idle_connections(self) -> int:
        return len(self._writers)

    # --- serving ---------------------------------------------------------------------------------

    def _due(self) -> bool:
        """Whether the next matching request/connection gets the fault (``times`` not used up)."""
        p = self._plan
        return p.times is None or self._hits < p.times

    def _hit(self, plan: Plan, generation: int) -> None:
        """A fault of *plan* was injected: counted under its mode (a flap's failure counts as flap),
        and against ``times`` only while that plan is still the current one (a straggler of an
        earlier appraisal must not use up the next plan's faults)."""
        if generation == self._generation:
            self._hits += 1
        self.injected[plan.mode.value] += 1

    def _flap_fails(self) -> bool:
        self._flaps += 1
        return self._flaps % 2 == 1  # fail first, then pass, then fail, ...

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self._writers.add(writer)
        try:
            p = self._plan
            generation = self._generation
            conn_fault: Mode | None = None
            if p.scope == "connection" and p.mode in (Mode.REFUSE, Mode.LATENCY, Mode.FLAP) and self._due():
                if p.mode is Mode.FLAP:  # this connection fails (refused, or 5xx on each request) or passes
                    if self._flap_fails():
                        conn_fault = Mode.REFUSE if p.flap_with == "refuse" else Mode.HTTP_5XX
                else:
                    conn_fault = p.mode
                if conn_fault is Mode.REFUSE:
                    self._hit(p, generation)
                    _rst(writer)
                    return
                if conn_fault is Mode.LATENCY:
                    self._hit(p, generation)
                    await asyncio.sleep(min(MAX_HANG, p.latency + self.rng.uniform(0, p.jitter)))
            while True:
                try:
                    req = await _read_request(reader)
                except _Closed:
                    return
                self.requests[req.route] += 1
                if generation != self._generation:
                    conn_fault = None  # decided under an earlier plan: this connection is healthy now
                keep = await self._handle(req, reader, writer, conn_fault)
                if not keep or not req.keep_alive:
                    return
        except (ConnectionError, OSError):
            return
        except asyncio.CancelledError:  # aclose(): this connection's task ends here, quietly
            return
        finally:
            self._writers.discard(writer)
            self._tasks.discard(task)
            if not writer.transport.is_closing():
                writer.close()

    def _request_nonce(self, req: _Request) -> bytes | None:
        if req.route == "newSession":
            return _b64_nonce(unquote(req.query("nonce") or ""))
        return self._sessions.get(req.path.rsplit("/", 1)[-1])

    def _matches(self, req: _Request) -> bool:
        p = self._plan
        if p.mode is Mode.PASS:
            return False
        if self._armed is not None and self._request_nonce(req) != self._armed:
            return False
        if p.mode in LYING:
            return req.route in ("evidence", "poll")
        if p.target == "any":
            return req.route in ("newSession", "evidence", "poll", "delete")
        return req.route == p.target

    async def _handle(self, req: _Request, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                      conn_fault: Mode | None) -> bool:
        """Serve one request; False when the connection must end."""
        p = self._plan
        generation = self._generation
        mode = Mode.PASS
        if conn_fault is Mode.HTTP_5XX and self._matches(req):
            mode = Mode.HTTP_5XX
        elif p.scope == "request" and self._matches(req) and self._due():
            mode = p.mode
            if mode is Mode.FLAP:
                mode = (Mode.REFUSE if p.flap_with == "refuse" else Mode.HTTP_5XX) if self._flap_fails() \
                    else Mode.PASS
        elif p.scope == "connection" and p.mode not in (Mode.LATENCY, Mode.FLAP) and self._matches(req) \
                and self._due():
            # a connection accepted before the plan (a pooled one) is refused at its next request;
            # other modes per connection: the same as per request on this connection
            mode = p.mode
        if mode is Mode.REFUSE:
            self._hit(p, generation)
            _rst(writer)
            return False
        if mode is Mode.HANG:
            self._hit(p, generation)
            await self._hang(reader, min(p.hang, MAX_HANG))
            _rst(writer)
            return False
        if mode is Mode.HTTP_5XX:
            self._hit(p, generation)
            extra = [("Retry-After", p.retry_after)] if p.retry_after is not None else []
            writer.write(_problem(p.status, "injected failure", extra).head() +
                         _problem(p.status, "injected failure").body)
            await writer.drain()
            return True
        if mode is Mode.HTTP_429:
            self._hit(p, generation)
            extra = [("Retry-After", p.retry_after)] if p.retry_after is not None else []
            resp = _problem(429, "slow down", extra)
            writer.write(resp.head() + resp.body)
            await writer.drain()
            return True
        if mode is Mode.LATENCY:
            self._hit(p, generation)
            await asyncio.sleep(min(MAX_HANG, p.latency + self.rng.uniform(0, p.jitter)))
        resp = await self._forward(req)
        if mode in LYING:
            forged = await self._lie(mode, req, resp)
            if forged is not None:
                self._hit(p, generation)
                resp = forged
        if mode is Mode.RESET:
            self._hit(p, generation)
            writer.write(resp.head() + resp.body[: len(resp.body) // 2])
            await writer.drain()
            _rst(writer)
            return False
        if mode is Mode.TRUNCATE:
            self._hit(p, generation)
            cut = resp.body[: max(1, len(resp.body) // 3)]
            writer.write((resp.head(len(cut)) if p.variant == "short" else resp.head()) + cut)
            await writer.drain()
            writer.close()
            return False
        if mode is Mode.GARBAGE:
            self._hit(p, generation)
            if p.variant == "html":
                body = b"<html><body><h1>502 Bad Gateway</h1></body></html>"
            else:
                body = self.rng.randbytes(self.rng.randint(1, 512))
            resp = _Response(200, [("Content-Type", SESSION_TYPE)], body)
        writer.write(resp.head() + resp.body)
        await writer.drain()
        return True

    async def _hang(self, reader: asyncio.StreamReader, seconds: float) -> None:
        """Say nothing for *seconds*, or until the client closes its end."""
        with contextlib.suppress(TimeoutError, ConnectionError, OSError):
            async with asyncio.timeout(seconds):
                while await reader.read(4096):
                    pass

    async def _forward(self, req: _Request) -> _Response:
        assert self._session is not None
        headers = [(k, v) for k, v in req.headers if k.lower() not in HOP_BY_HOP]
        try:
            async with self._session.request(req.method, self.upstream + req.target, headers=headers,
                                             data=req.body if req.body else None, allow_redirects=False) as up:
                body = await up.content.read(MAX_BODY + 1)
                if len(body) > MAX_BODY:
                    return _problem(502, "upstream answer too large")
                out = [(k, v) for k, v in up.headers.items() if k.lower() not in HOP_BY_HOP]
                resp = _Response(up.status, out, body)
        except (aiohttp.ClientError, TimeoutError):
            return _problem(502, "upstream unreachable")
        self._observe(req, resp)
        return resp

    def _observe(self, req: _Request, resp: _Response) -> None:
        """Record the ground truth: session -> nonce, and every result the verifier issued."""
        doc = _json(resp.body)
        if not isinstance(doc, dict):
            return
        if req.route == "newSession" and resp.status == 201:
            location = next((v for k, v in resp.headers if k.lower() == "location"), "")
            nonce = _nonce_of(doc)
            if nonce is not None and location:
                self._sessions[location.rsplit("/", 1)[-1]] = nonce
                if len(self._sessions) > 10_000:  # bounded: forget the oldest
                    self._sessions.pop(next(iter(self._sessions)))
        elif req.route in ("evidence", "poll") and isinstance(doc.get("result"), str):
            nonce = self._sessions.get(req.path.rsplit("/", 1)[-1]) or _nonce_of(doc)
            raw = raw_of_result(doc["result"])
            if nonce is not None:
                self._genuine.setdefault(nonce, set()).add(raw)
                while len(self._genuine) > 1000:
                    self._genuine.pop(next(iter(self._genuine)))
            with contextlib.suppress(Exception):
                self._history.append((raw, Liar.decode(raw)[1].status))

    async def _lie(self, mode: Mode, req: _Request, resp: _Response) -> _Response | None:
        doc = _json(resp.body)
        if not isinstance(doc, dict) or not isinstance(doc.get("result"), str):
            return None  # nothing to lie about (no result in this answer): passed as it is
        result: str = doc["result"]
        raw = raw_of_result(result)
        cwt = result.count(".") != 2
        nonce = _nonce_of(doc) or b""
        fake: bytes | None = None
        if mode is Mode.REPLAY:
            earlier = [r for r, s in self._history if r != raw and r not in self._genuine.get(nonce, ())]
            good = [r for r, s in self._history if s is Tier.AFFIRMING and r in earlier]
            if good or earlier:
                fake = self.rng.choice(good or earlier)
            elif self.liar.key is not None:  # nothing captured yet: the same result, bound to another nonce
                fake = self.liar.resign(raw, key=self.liar.key, nonce=os.urandom(32))
        elif mode is Mode.OTHER_SESSION:
            fake = await self._other_session(req, nonce)
        elif mode is Mode.EXPIRED and self.liar.key is not None:
            fake = self.liar.expired(raw, self._plan.variant or "old", int(self.clock()))
        elif mode is Mode.ROTATED_KEY and self.liar.old_key is not None:
            fake = self.liar.resign(raw, key=self.liar.old_key)
        elif mode is Mode.TAMPER:
            fake = self.liar.tamper(raw)
        if fake is None:
            return None
        doc["result"] = _result_of_raw(fake, cwt)
        body = json.dumps(doc).encode()
        return _Response(resp.status, resp.headers, body)

    async def _other_session(self, req: _Request, nonce: bytes) -> bytes | None:
        """Open a session of our own with another nonce and take its (genuine) result."""
        assert self._session is not None
        other = os.urandom(len(nonce) if 8 <= len(nonce) <= 64 else 32)
        base = self.upstream + req.path.split("/session/", 1)[0]
        q = base64.urlsafe_b64encode(other).decode()
        evidence = self.attester(other) if self.attester is not None else None
        body = evidence.data if evidence is not None else req.body
        ctype = evidence.media_type if evidence is not None else (req.header("Content-Type") or "")
        try:
            async with self._session.post(f"{base}/newSession?nonce={q}", headers={"Accept": SESSION_TYPE}) as r:
                location = r.headers.get("Location", "")
                await r.read()
            if r.status != 201 or not location:
                return None
            url = f"{base}/{location}"
            async with self._session.post(url, data=body, headers={"Accept": SESSION_TYPE,
                                                                   "Content-Type": ctype}) as r:
                doc = _json(await r.read())
            async with self._session.delete(url) as r:
                await r.read()
        except (aiohttp.ClientError, TimeoutError):
            return None
        if isinstance(doc, dict) and isinstance(doc.get("result"), str):
            return raw_of_result(doc["result"])
        return None


def _json(body: bytes) -> Any:
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return None


def _b64_nonce(value: object) -> bytes | None:
    if not isinstance(value, str) or not value:
        return None
    value = value.rstrip("=").replace("+", "-").replace("/", "_")
    try:
        return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
    except ValueError:
        return None


def _nonce_of(doc: Mapping[str, Any]) -> bytes | None:
    return _b64_nonce(doc.get("nonce"))


# --- the attester ------------------------------------------------------------------------------------

DEV_FIRMWARE = (("BL", "2.2.0-dev"), *FIRMWARE[1:])  # a bootloader build only the lenient verifier endorses


class Attester:
    """The demo's PSA device: Evidence bound to any nonce, and the variants the trials use.

    ``good``: endorsed firmware (affirming); ``dev``: an unendorsed bootloader build (warning, but
    affirming at a verifier whose CoRIM also endorses it); ``rogue``: signed by a key nobody
    endorsed (contraindicated); ``stale``: good firmware bound to another nonce (contraindicated).
    """

    VARIANTS = ("good", "dev", "rogue", "stale")

    def __init__(self, key: SigningKey | None = None) -> None:
        self.key = key or SigningKey.generate()
        self.device = PsaDevice(self.key, PSA_IMPL_ID, PSA_INSTANCE_ID, PSA_SIGNER_ID)
        self.rogue = PsaDevice(SigningKey.generate(), PSA_IMPL_ID, PSA_INSTANCE_ID, PSA_SIGNER_ID)

    def evidence(self, nonce: bytes, variant: str = "good") -> Evidence:
        if variant == "dev":
            return self.device.token(nonce, DEV_FIRMWARE)
        if variant == "rogue":
            return self.rogue.token(nonce, FIRMWARE)
        if variant == "stale":
            return self.device.token(bytes(b ^ 0x5A for b in nonce), FIRMWARE)
        return self.device.token(nonce, FIRMWARE)

    def corim(self, endorser: SigningKey, now: datetime, *, lenient: bool = False) -> bytes:
        """The endorser's CoRIM for this device: its key and firmware (``lenient``: also the dev
        bootloader build)."""
        d = self.device
        impl = Tagged("bytes", d.implementation_id, 560)
        signer = Tagged("bytes", d.signer_id, 560)
        builds = [*FIRMWARE, *(DEV_FIRMWARE[:1] if lenient else ())]
        firmware = tuple(
            Measurement(MeasurementValues(digests=(Digest(1, firmware_digest(n, v)),), name=n, cryptokeys=(signer,)),
                        mkey=Tagged("string", "psa.software-component"))
            for n, v in builds)
        pem = d.key.public.key.public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo).decode()
        psa = Triples(
            reference=(ReferenceTriple(Environment(ClassMap(impl)), firmware),),
            attest_key=(KeyTriple(Environment(ClassMap(impl), instance=Tagged("ueid", d.instance_id, 550)),
                                  (Tagged("pkix-base64-key", pem, 554),)),),
        )
        corim = Corim("fault-firmware" + ("-lenient" if lenient else ""), (Comid("fault-psa", psa, 1),))
        meta = CorimMeta("Fault Campaign Endorser",
                         signature_validity=Validity(now - timedelta(days=1), now + timedelta(days=30)))
        return sign_corim(corim, endorser, meta)


# --- verifier processes ------------------------------------------------------------------------------


@dataclass
class VerifierInfo:
    name: str
    operator: str
    url: str
    key: SigningKey  # its current result-signing key (the proxy's lying modes re-sign with it)
    old_key: SigningKey  # its rotated-out key: still in its JWKS as previous, no longer trusted
    anchor: TrustAnchor  # what the federation trusts for its results: the current public key only
    anchor_path: Path
    result_format: Literal["jwt", "cwt"]
    lenient: bool


@dataclass
class VerifierCluster:
    """``ratsfed serve`` verifier-role processes, one per name, with keys and CoRIMs generated here."""

    root: Path
    attester: Attester
    verifiers: dict[str, VerifierInfo] = field(default_factory=dict)
    processes: list[ServerProcess] = field(default_factory=list)

    @classmethod
    @contextlib.contextmanager
    def running(cls, root: Path, names: Sequence[str] = ("alpha", "beta", "gamma", "delta"), *,
                cwt: Sequence[str] = ("gamma",), lenient: Sequence[str] = ("beta",),
                max_concurrency: int = 64) -> Iterator[VerifierCluster]:
        """Start the verifiers; on exit (also on error) stop every process and check none is left."""
        root.mkdir(parents=True, exist_ok=True)
        cluster = cls(root, Attester())
        try:
            cluster._start(names, set(cwt), set(lenient), max_concurrency)
            asyncio.run(cluster.warm_up())
            yield cluster
        finally:
            left = stop_all(cluster.processes)
            if left:
                raise AssertionError(f"verifier processes left behind: {left}")

    def _start(self, names: Sequence[str], cwt: set[str], lenient: set[str], max_concurrency: int) -> None:
        keys = self.root / "keys"
        wanted = ["endorser", *names, *(f"{n}-old" for n in names)]
        procs = [subprocess.Popen(ratsfed("keys", "generate", "--out", str(keys / k)), stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, start_new_session=True) for k in wanted]
        for p in procs:
            out, err = p.communicate(timeout=120)
            if p.returncode != 0:
                raise RuntimeError(f"ratsfed keys generate failed: {out!r} {err!r}")
        endorser = load_signing_key(keys / "endorser" / "private.pem")
        now = datetime.now(UTC)
        (self.root / "corim-strict.cbor").write_bytes(self.attester.corim(endorser, now))
        (self.root / "corim-lenient.cbor").write_bytes(self.attester.corim(endorser, now, lenient=True))
        specs = []
        for n in names:
            corim = self.root / ("corim-lenient.cbor" if n in lenient else "corim-strict.cbor")
            fmt = "cwt" if n in cwt else "jwt"
            config = self.root / f"{n}.toml"
            config.write_text(f"""
[federation]
id = "{n}-verifier"

[server]
role = "verifier"
verifier = "{n}"
port = 0
max_concurrency = {max_concurrency}
previous_keys = ["{keys / f'{n}-old' / 'public.jwk'}"]

[[verifiers]]
name = "{n}"
kind = "local"
operator = "op-{n}"
timeout = 10
options = {{ corim = ["{corim}"], endorsers = ["{keys / 'endorser' / 'public.jwk'}"], \
signing_key = "{keys / n / 'private.pem'}", result_format = "{fmt}" }}
""")
            specs.append((n, config))
        procs_started = start_servers(specs, self.root / "logs", self.processes, timeout=60.0)
        for n, proc in zip(names, procs_started, strict=True):
            self.verifiers[n] = VerifierInfo(
                n, f"op-{n}", proc.url, load_signing_key(keys / n / "private.pem"),
                load_signing_key(keys / f"{n}-old" / "private.pem"), load_trust_anchor(keys / n / "public.jwk"),
                keys / n / "public.jwk", "cwt" if n in cwt else "jwt", n in lenient)

    async def warm_up(self, rounds: int = 3) -> None:
        """A few appraisals at every verifier (a cold process answers its first ones slowly)."""
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as http:
            for _ in range(rounds):
                for v in self.verifiers.values():
                    nonce = os.urandom(32)
                    evidence = self.attester.evidence(nonce)
                    async with http.post(f"{v.url}/v1/appraise?nonce={nonce.hex()}", data=evidence.data,
                                         headers={"Content-Type": evidence.media_type}) as resp:
                        if resp.status != 200:
                            raise RuntimeError(f"{v.name} did not appraise: HTTP {resp.status} {await resp.text()}")

    def generate_key(self, name: str) -> Path:
        """``ratsfed keys generate --out keys/NAME``; the path of its private.pem."""
        out = self.root / "keys" / name
        subprocess.run(ratsfed("keys", "generate", "--out", str(out)), check=True, capture_output=True, timeout=120)
        return out / "private.pem"

    def proxy(self, name: str, *, rng: random.Random | None = None) -> FaultProxy:
        v = self.verifiers[name]
        return FaultProxy(v.url, liar=Liar(v.key, v.old_key), attester=lambda n: self.attester.evidence(n),
                          rng=rng)

    def expected_status(self, name: str, variant: str) -> Tier:
        """What verifier *name* genuinely says about the attester's *variant* Evidence."""
        if variant == "good":
            return Tier.AFFIRMING
        if variant == "dev":
            return Tier.AFFIRMING if self.verifiers[name].lenient else Tier.WARNING
        return Tier.CONTRAINDICATED


def http_date(seconds_from_now: float) -> str:
    """An HTTP-date *seconds_from_now* in the future (a ``Retry-After`` in its other form)."""
    return format_datetime(datetime.now(UTC) + timedelta(seconds=seconds_from_now), usegmt=True)
