"""The aiohttp application: middlewares, routes, lifecycle, and running it (TLS included).

Middlewares, outermost first: access (request log line + request metrics), problems (every error
becomes an RFC 7807 document), auth (bearer token on everything but the public routes).
Lifecycle: one ``cleanup_ctx`` marks the service READY once started and, on the way down, marks it
TERMINATING (``/readyz`` answers 503 from ``on_shutdown`` on), then closes the role's backends and
the session store.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import ssl
import time
import uuid
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass

from aiohttp import web

from ..config import Config, ServerConfig
from ..errors import ConfigError, UsageError
from .auth import BearerAuth
from .handlers import appraise, challenge_response, discovery, ops
from .keyset import KeySet
from .limits import Gate
from .metrics import ServerMetrics
from .problems import Handler, problem_middleware
from .roles import Role, build_role
from .sessions import MemorySessionStore, SessionStore
from .state import STATE, ServerState

__all__ = ["PUBLIC_ROUTES", "RunningServer", "build_app", "create_app", "serve", "ssl_context", "start"]

log = logging.getLogger("ratsfed.server")
PUBLIC_ROUTES = frozenset({"healthz", "readyz", "discovery", "jwks"})  # no auth, even when configured
_REJECTED = {401: "unauthorized", 413: "body-too-large", 503: "overloaded"}


def _route(request: web.Request) -> str:
    resource = request.match_info.route.resource
    return resource.canonical if resource is not None else "unmatched"


@web.middleware
async def access_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    state = request.app[STATE]
    start = time.perf_counter()
    request_id = uuid.uuid4().hex[:16]
    status = 500
    try:
        response = await handler(request)
        status = response.status
        response.headers["X-Request-Id"] = request_id
        return response
    except web.HTTPException as exc:  # only non-error statuses get here (problems handles the rest)
        status = exc.status
        raise
    finally:
        route = _route(request)
        state.metrics.requests.inc(request.method, route, str(status))
        if status in _REJECTED:
            state.metrics.rejected.inc(_REJECTED[status])
        log.info("request", extra={"ratsfed": {
            "request_id": request_id, "method": request.method, "route": route, "status": status,
            "ms": round((time.perf_counter() - start) * 1000, 2), "remote": request.remote,
        }})


@web.middleware
async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    auth = request.app[STATE].auth
    info = request.match_info
    if auth is not None and info.http_exception is None and info.route.name not in PUBLIC_ROUTES:
        auth.check(request)
    return await handler(request)


async def _lifecycle(app: web.Application) -> AsyncIterator[None]:
    state = app[STATE]
    state.service_state = "READY"
    log.info("service ready", extra={"ratsfed": {"role": state.role.name, "backends": list(state.role.backends)}})
    yield
    state.service_state = "TERMINATING"
    try:
        await state.role.aclose()
    finally:
        await state.store.aclose()


async def _terminating(app: web.Application) -> None:
    app[STATE].service_state = "TERMINATING"


def create_app(role: Role, settings: ServerConfig | None = None, *, store: SessionStore | None = None,
               keys: KeySet | None = None, auth: BearerAuth | None = None,
               clock: Callable[[], float] = time.time) -> web.Application:
    """The service for *role* (already built), with *settings*' limits. Parts can be injected."""
    s = settings or ServerConfig(role=role.name)
    gate = Gate(s.max_concurrency)

    def health() -> dict[str, bool]:
        return role.health() or {}

    state = ServerState(
        role=role,
        settings=s,
        store=store or MemorySessionStore(max_sessions=s.max_sessions, max_bytes=s.max_session_bytes, clock=clock),
        metrics=ServerMetrics(role.backends, health=health if role.health() is not None else None,
                              in_flight=lambda: gate.in_flight),
        gate=gate,
        keys=keys or KeySet(role.signing_key),
        auth=auth,
        clock=clock,
    )
    app = web.Application(client_max_size=s.max_body,
                          middlewares=[access_middleware, problem_middleware, auth_middleware])
    app[STATE] = state
    for module in (challenge_response, appraise, discovery, ops):
        app.add_routes(module.routes())
    app.cleanup_ctx.append(_lifecycle)
    app.on_shutdown.append(_terminating)
    return app


def build_app(config: Config, *, environ: Mapping[str, str] | None = None) -> web.Application:
    """The service *config* describes: role built, keys loaded, auth tokens read from the environment."""
    s = config.server
    role = build_role(config)
    keys = KeySet.load(role.signing_key, s.previous_keys)
    auth = None
    if s.auth_tokens_env is not None:
        try:
            auth = BearerAuth.from_env(s.auth_tokens_env, environ)
        except ConfigError as exc:
            raise ConfigError(exc.detail, key="server.auth_tokens_env", file=str(config.path)) from exc
    return create_app(role, s, keys=keys, auth=auth)


def ssl_context(settings: ServerConfig) -> ssl.SSLContext | None:
    """A server TLS context (TLS 1.2 or later) from ``tls_cert``/``tls_key``, or None for plain HTTP."""
    if settings.tls_cert is None or settings.tls_key is None:
        return None
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        ctx.load_cert_chain(settings.tls_cert, settings.tls_key)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(f"cannot load the TLS certificate and key: {exc}", key="server.tls_cert") from exc
    return ctx


@dataclass(slots=True)
class RunningServer:
    runner: web.AppRunner
    urls: tuple[str, ...]

    @property
    def url(self) -> str:
        return self.urls[0]

    async def aclose(self) -> None:
        await self.runner.cleanup()


def _url(scheme: str, address: object) -> str:
    host, port = address[:2] if isinstance(address, tuple) else (str(address), 0)
    host = f"[{host}]" if ":" in str(host) else str(host)
    return f"{scheme}://{host}:{port}"


async def start(config: Config, *, environ: Mapping[str, str] | None = None,
                shutdown_timeout: float = 10.0) -> RunningServer:
    """Build and start the service; the caller stops it with :meth:`RunningServer.aclose`."""
    s = config.server
    tls = ssl_context(s)
    app = build_app(config, environ=environ)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=shutdown_timeout)
    await runner.setup()
    try:
        await web.TCPSite(runner, s.host, s.port, ssl_context=tls).start()
    except OSError as exc:
        await runner.cleanup()
        raise UsageError(f"cannot listen on {s.host}:{s.port}: {exc.strerror or exc}") from exc
    scheme = "https" if tls is not None else "http"
    return RunningServer(runner, tuple(_url(scheme, a) for a in runner.addresses))


async def serve(config: Config, *, environ: Mapping[str, str] | None = None,
                announce: Callable[[str], None] = print) -> None:
    """Run until SIGINT or SIGTERM, then shut down gracefully (in-flight requests may finish)."""
    server = await start(config, environ=environ)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    log.info("listening", extra={"ratsfed": {"urls": list(server.urls), "role": config.server.role}})
    for url in server.urls:
        announce(f"ratsfed serve: {config.server.role} listening on {url}")
    try:
        await stop.wait()
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
        log.info("stopping", extra={"ratsfed": {"role": config.server.role}})
        await server.aclose()
