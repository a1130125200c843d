"""HTTP plumbing for remote backends: one pooled session, bounded exchanges, mapped errors.

Why a boundary module: aiohttp's exceptions, timeouts and TLS settings stop here. Above it a
backend sees :class:`Response` values or this package's errors, never an ``aiohttp`` type
(httpx's rule: map foreign exceptions at the edge, the most specific first, chained with
``from``). Every exchange is bounded: in time (the caller's deadline, loop time), in size
(``max_response``, counted while streaming, so a missing or lying ``Content-Length`` and a
compressed body cannot get past it) and in reach (only URLs under the configured base URL; no
redirects are followed, so neither evidence nor a bearer token can be led to another host).

    aiohttp / asyncio                         ->  federation error (outcome)
    TLS handshake or certificate failure      ->  TLSError (unreachable; not worth retrying)
    TimeoutError (connect, read, total)       ->  BackendTimeoutError (timeout)
    ClientPayloadError (truncated body)       ->  MalformedError (malformed)
    ClientResponseError (not HTTP)            ->  MalformedError (malformed)
    ClientConnectionError, other ClientError  ->  BackendUnreachableError (unreachable)
    HTTP status >= 300 (see ``status_error``) ->  BackendHTTPError (http-error), or
                                                  RetryAfterError when the server said when
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import ssl
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

import aiohttp
from multidict import CIMultiDict
from yarl import URL

from federation.errors import (
    BackendHTTPError,
    BackendTimeoutError,
    BackendUnreachableError,
    ConfigError,
    MalformedError,
    UsageError,
)

from .breaker import CircuitBreaker

__all__ = [
    "DEFAULT_MAX_RESPONSE",
    "HttpBackend",
    "HttpClient",
    "Response",
    "RetryAfterError",
    "TLSError",
    "TransportOptions",
    "error_for",
    "parse_retry_after",
    "status_error",
]

log = logging.getLogger(__name__)

# A session document echoes the evidence (base64, evidence is at most 1 MiB) next to the result.
DEFAULT_MAX_RESPONSE = 4 << 20  # bytes
DEFAULT_CONNECTIONS = 16  # pooled connections per backend
_CHUNK = 1 << 16
_DETAIL_MAX = 160  # characters of a server's problem text kept in an error (it is untrusted)


class RetryAfterError(BackendHTTPError):
    """An HTTP error whose response said when to try again (``Retry-After``, seconds)."""

    def __init__(self, detail: str, *, status: int, retry_after: float) -> None:
        super().__init__(detail, status=status)
        self.retry_after = retry_after


class TLSError(BackendUnreachableError):
    """The TLS handshake failed (e.g. an untrusted certificate): retrying cannot help."""

    retry_after = math.inf


@dataclass(frozen=True, slots=True)
class TransportOptions:
    """How to reach one service: TLS trust, response size bound, pool size."""

    tls_verify: bool = True
    ca_file: Path | None = None  # PEM; when set, the only CAs trusted for this service
    max_response: int = DEFAULT_MAX_RESPONSE
    connections: int = DEFAULT_CONNECTIONS
    ssl_context: ssl.SSLContext | bool = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.max_response <= 0:
            raise ConfigError("must be > 0", key="max_response")
        if self.connections <= 0:
            raise ConfigError("must be > 0", key="connections")
        if not self.tls_verify and self.ca_file is not None:
            raise ConfigError("makes no sense with tls_verify = false", key="ca_file")
        ctx: ssl.SSLContext | bool
        if not self.tls_verify:
            ctx = False
        else:
            try:
                # cafile given: only that file's CAs (the system store is not loaded).
                ctx = ssl.create_default_context(cafile=str(self.ca_file) if self.ca_file else None)
            except (OSError, ssl.SSLError) as exc:
                raise ConfigError(f"cannot load CA file {self.ca_file}: {exc}", key="ca_file") from exc
        object.__setattr__(self, "ssl_context", ctx)


@dataclass(frozen=True, slots=True)
class Response:
    """A complete, size-bounded HTTP response."""

    status: int
    headers: Mapping[str, str]
    body: bytes
    url: URL

    def json(self, what: str) -> Any:
        try:
            return json.loads(self.body)
        except (ValueError, RecursionError) as exc:
            raise MalformedError(f"{what}: body is not JSON") from exc


def _clean(text: object) -> str:
    """Untrusted text made safe for logs and vote details: printable, one line, short."""
    s = "".join(c if c.isprintable() else " " for c in str(text))
    return s[:_DETAIL_MAX] + ("…" if len(s) > _DETAIL_MAX else "")


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """``Retry-After`` (RFC 9110 §10.2.3): delta-seconds or an HTTP-date; None if absent/invalid."""
    if value is None:
        return None
    value = value.strip()
    if value.isdigit():  # str.isdigit also says yes to "²" and other non-ASCII digits
        if not value.isascii() or len(value) > 12:  # > ~30,000 years: not a wait, a malformed header
            return None
        return float(int(value))
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def status_error(resp: Response, what: str) -> BackendHTTPError:
    """The error for a non-success status, with the server's RFC 7807 title/detail if any."""
    detail = f"{what}: HTTP {resp.status}"
    if resp.headers.get("Content-Type", "").startswith(("application/problem+json", "application/json")):
        try:
            problem = json.loads(resp.body)
        except (ValueError, RecursionError):
            problem = None
        if isinstance(problem, dict):
            text = problem.get("detail") or problem.get("title")
            if isinstance(text, str) and text:
                detail += f" ({_clean(text)})"
    return error_for(resp, detail)


def error_for(resp: Response, detail: str) -> BackendHTTPError:
    """``RetryAfterError`` for a 429/5xx with a usable ``Retry-After`` (the engine waits that long
    before its next attempt), else ``BackendHTTPError``: one rule for every remote backend."""
    retry_after = parse_retry_after(resp.headers.get("Retry-After"))
    if retry_after is not None and (resp.status == 429 or resp.status >= 500):
        return RetryAfterError(detail, status=resp.status, retry_after=retry_after)
    return BackendHTTPError(detail, status=resp.status)


@contextmanager
def mapped_errors(what: str) -> Iterator[None]:
    """Translate aiohttp/asyncio failures into federation errors (most specific first)."""
    try:
        yield
    except (aiohttp.ClientSSLError, aiohttp.ServerFingerprintMismatch) as exc:
        raise TLSError(f"{what}: TLS failed: {_clean(exc)}") from exc
    except TimeoutError as exc:  # aiohttp's timeouts subclass it; cancellation is not caught
        raise BackendTimeoutError(f"{what}: no answer in time") from exc
    except aiohttp.ClientPayloadError as exc:
        raise MalformedError(f"{what}: truncated or corrupt response body") from exc
    except aiohttp.ClientResponseError as exc:
        raise MalformedError(f"{what}: not a valid HTTP response: {_clean(exc.message)}") from exc
    except aiohttp.ClientConnectionError as exc:
        raise BackendUnreachableError(f"{what}: {_clean(exc) or type(exc).__name__}") from exc
    except aiohttp.ClientError as exc:
        raise BackendUnreachableError(f"{what}: {type(exc).__name__}") from exc


class HttpClient:
    """Requests to one service under *base*. Owns its pooled session unless one is injected.

    The session is created on first use, inside the running loop, and bound to that loop.
    """

    def __init__(self, base: URL, options: TransportOptions, *, headers: Mapping[str, str] | None = None,
                 session: aiohttp.ClientSession | None = None) -> None:
        if not base.is_absolute() or base.scheme not in ("http", "https") or not base.host:
            raise ConfigError(f"not an http(s) URL: {base}", key="url")
        if base.user or base.password or base.query_string or base.fragment:
            raise ConfigError("the URL must not carry credentials, a query or a fragment", key="url")
        self.base = base if base.path.endswith("/") else base.with_path(base.path + "/")
        self.options = options
        self._headers = dict(headers or {})  # may hold a bearer token: never logged or repr'd
        self._session = session
        self._owned = session is None
        self._loop: asyncio.AbstractEventLoop | None = None

    def __repr__(self) -> str:
        return f"HttpClient({str(self.base)!r})"

    def url(self, path: str) -> URL:
        """*path* (relative, no leading slash) under the base URL."""
        return self.base.join(URL(path))

    def within(self, url: URL) -> bool:
        """Is *url* on this service: same origin and under the base path?"""
        return (url.is_absolute() and url.origin() == self.base.origin()
                and url.path.startswith(self.base.path))

    def _client(self) -> aiohttp.ClientSession:
        loop = asyncio.get_running_loop()
        if self._loop is not None and self._loop is not loop:
            raise UsageError("a remote backend is bound to the event loop that first used it")
        self._loop = loop
        if self._session is None:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self.options.connections, ssl=self.options.ssl_context),
                trust_env=False,
            )
        return self._session

    async def request(self, method: str, url: URL, *, deadline: float, what: str,
                      headers: Mapping[str, str] | None = None, data: bytes | None = None) -> Response:
        """One exchange, finished by *deadline* (loop time), body read up to ``max_response``."""
        if not self.within(url):
            raise MalformedError(f"{what}: refusing to contact {_clean(url.origin())}: not under the configured URL")
        remaining = deadline - asyncio.get_running_loop().time()
        if remaining <= 0:
            raise BackendTimeoutError(f"{what}: deadline passed")
        limit = self.options.max_response
        log.debug("%s %s", method, url)
        with mapped_errors(what):
            async with self._client().request(
                method, url, headers={**self._headers, **(headers or {})}, data=data,
                timeout=aiohttp.ClientTimeout(total=remaining), ssl=self.options.ssl_context,
                allow_redirects=False,
            ) as resp:
                if resp.content_length is not None and resp.content_length > limit:
                    raise MalformedError(f"{what}: response of {resp.content_length} bytes exceeds {limit}")
                chunks: list[bytes] = []
                size = 0
                async for chunk in resp.content.iter_chunked(_CHUNK):
                    size += len(chunk)
                    if size > limit:
                        raise MalformedError(f"{what}: response exceeds {limit} bytes")
                    chunks.append(chunk)
                return Response(resp.status, CIMultiDict(resp.headers), b"".join(chunks), resp.url)

    async def aclose(self) -> None:
        if self._owned and self._session is not None:
            session, self._session = self._session, None
            await session.close()


class HttpBackend:
    """What every HTTP client backend shows the federation and the service alike: a safe ``repr``
    (no secrets: only name and base URL), the base URL, health from its circuit breaker, closing
    its pool. Subclasses set ``name``, ``http`` and ``breaker`` in their constructor."""

    name: str
    http: HttpClient
    breaker: CircuitBreaker

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r}, {str(self.http.base)!r})"

    @property
    def url(self) -> URL:
        return self.http.base

    @property
    def healthy(self) -> bool:
        """False while the circuit breaker is open or half-open."""
        return self.breaker.healthy

    async def aclose(self) -> None:
        await self.http.aclose()
