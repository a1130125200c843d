"""The service's request bodies: ``POST /v1/appraise`` and the session Evidence ``POST`` of a verifier.

Requests go straight into the aiohttp application (middlewares, routing, handlers, the local
appraiser with every built-in scheme, EAR signing) without a socket: the fuzzer's input picks the
route, the ``Content-Type``, the nonce and the body. The handlers never raise to aiohttp: the
problem middleware turns a bug into a 500 "internal error" and the verifier role turns an
appraiser's crash into a 500 with the traceback logged. Both hide bugs from a fuzzer, so this target
re-raises any exception logged with a traceback that is not a typed error, and treats a 500
"internal error" as a finding too.
"""

from __future__ import annotations

import asyncio
import logging
from functools import cache
from typing import Any

from aiohttp import web
from aiohttp.streams import StreamReader
from aiohttp.test_utils import make_mocked_request

from federation.config import ServerConfig
from federation.errors import Error
from federation.server import VerifierRole, create_app
from federation.server.handlers.common import CMW_MEDIA_TYPES
from federation.server.problems import Problem
from fuzz._harness import NOW, VECTORS, fixed_key, read_vectors
from verifiers.local.appraiser import LocalAppraiser
from verifiers.local.backend import LocalBackend
from verifiers.local.corim.store import load_paths
from verifiers.local.schemes import BUILTIN

NONCE = bytes.fromhex("414a7c174141b3d0e9a1d28af31520f0d42299feac4007ded89d68ae6cd92f19")  # Veraison's PSA nonce
_NONCES = (None, NONCE.hex(), "QUp8F0FBs9DpodKK8xUg8NQimf6sQAfe2J1ormzZLxk", "zz", "A" * 200, "00" * 7)
_ROUTES = ("appraise", "session", "session-bad-id", "new-session")
SESSION = "application/vnd.veraison.challenge-response-session+json"


class _Capture(logging.Handler):
    """Keeps the exceptions the service logged with a traceback (a crash it turned into a 500)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.crashes: list[BaseException] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.exc_info and record.exc_info[1] is not None:
            exc = record.exc_info[1]
            while exc.__cause__ is not None and not isinstance(exc, Error):  # AppraisalFailed from a crash
                exc = exc.__cause__
            if not isinstance(exc, Error | Problem | asyncio.CancelledError):
                self.crashes.append(exc)


@cache
def _service() -> tuple[asyncio.AbstractEventLoop, web.Application, tuple[str, ...], _Capture]:
    corims = [VECTORS / "veraison-services" / "psa" / "endorsements" / "corim-psa-valid.cbor"]
    store = load_paths([p for p in corims if p.is_file()], [], NOW, trust_unsigned=True)
    backend = LocalBackend("fuzz-local", "fuzz", LocalAppraiser(list(BUILTIN.values()), store), fixed_key(),
                           at=int(NOW.timestamp()))
    role = VerifierRole(backend)
    app = create_app(role, ServerConfig(role="verifier"), clock=lambda: NOW.timestamp())
    app.freeze()
    capture = _Capture()
    types = (*role.media_types(), *sorted(CMW_MEDIA_TYPES), "", "text/plain", "application/json")
    return asyncio.new_event_loop(), app, types, capture


def seeds() -> list[bytes]:
    """``[route, content type, nonce]`` then the body, for each Evidence vector a verifier takes."""
    _, _, types, _ = _service()
    out: list[bytes] = []
    bodies = {
        "application/psa-attestation-token": read_vectors("veraison-services/psa/evidence/*.cose",
                                                          "veraison-psatoken/**/*.bin"),
        "application/vnd.veraison.tsm-report+cbor": read_vectors("sev-snp/veraison/*.cbor"),
        "application/cmw+json": read_vectors("veraison-cmw/*.json", "ietf-rats-msg-wrap/cmw-*.json"),
        "application/cmw+cbor": read_vectors("veraison-cmw/*.cbor"),
    }
    for media_type, blobs in bodies.items():
        t = types.index(media_type) if media_type in types else 0
        for body in blobs:
            for route in range(len(_ROUTES)):
                out.append(bytes([route, t, 1]) + body)
            out.append(bytes([0, t, 0]) + body)
    for t, media_type in enumerate(types):
        if "tdx" in media_type:
            out += [bytes([0, t, 1]) + q for q in read_vectors("tdx/go-tdx-guest/*.dat")]
        if "sev" in media_type and "tsm" not in media_type:
            out += [bytes([0, t, 1]) + r for r in read_vectors("sev-snp/go-sev-guest/attestation.bin")]
    return out


def _request(app: web.Application, method: str, path: str, headers: dict[str, str], body: bytes) -> Any:
    loop = asyncio.get_running_loop()
    protocol: Any = _Protocol()
    payload = StreamReader(protocol, 1 << 16, loop=loop)
    if body:
        payload.feed_data(body)
    payload.feed_eof()
    headers = {**headers, "Content-Length": str(len(body))}
    return make_mocked_request(method, path, headers, app=app, payload=payload, client_max_size=app._client_max_size,
                               **_plumbing())


@cache
def _plumbing() -> dict[str, Any]:
    """Mock transport, protocol and writer, made once (building mocks costs more than a request)."""
    req = make_mocked_request("GET", "/")
    return {"transport": req.transport, "protocol": req.protocol, "writer": req._payload_writer}


class _Protocol:
    """What a StreamReader needs of its protocol when the whole body is already there."""

    _reading_paused = False

    def pause_reading(self, *args: object, **kwargs: object) -> None:
        return None

    def resume_reading(self, *args: object, **kwargs: object) -> None:
        return None


async def _call(app: web.Application, method: str, path: str, headers: dict[str, str], body: bytes = b""
                ) -> web.StreamResponse:
    return await app._handle(_request(app, method, path, headers, body))


async def _exchange(data: bytes) -> None:
    _, app, types, _ = _service()
    route = _ROUTES[data[0] % len(_ROUTES)] if data else "appraise"
    media_type = types[data[1] % len(types)] if len(data) > 1 else types[0]
    nonce = _NONCES[data[2] % len(_NONCES)] if len(data) > 2 else None
    body = data[3:]
    query = f"?nonce={nonce}" if nonce is not None else ""
    headers = {"Content-Type": media_type, "Accept": "*/*"}
    responses: list[web.StreamResponse] = []
    if route == "appraise":
        responses.append(await _call(app, "POST", f"/v1/appraise{query}", headers, body))
    elif route == "new-session":  # the body of newSession is ignored, its query is not
        q = query or f"?nonceSize={body[:2].decode('latin-1')}"
        responses.append(await _call(app, "POST", f"/challenge-response/v1/newSession{q}", {"Accept": SESSION}))
    else:
        sid = "not-a-uuid"
        if route == "session":
            created = await _call(app, "POST", f"/challenge-response/v1/newSession{query}", {"Accept": SESSION})
            responses.append(created)
            if created.status == 201:
                sid = created.headers["Location"].rsplit("/", 1)[-1]
        headers["Accept"] = SESSION
        responses.append(await _call(app, "POST", f"/challenge-response/v1/session/{sid}", headers, body))
        if sid != "not-a-uuid":
            responses.append(await _call(app, "GET", f"/challenge-response/v1/session/{sid}", {"Accept": SESSION}))
            responses.append(await _call(app, "DELETE", f"/challenge-response/v1/session/{sid}", {}))
    for resp in responses:
        if resp.status == 500 and isinstance(resp, web.Response) and resp.body is not None and (
                b'"internal error"' in bytes(resp.body)):  # type: ignore[arg-type]
            raise AssertionError(f"500 internal error from {route} ({media_type!r})")
        if resp.status not in (200, 201, 204, 400, 404, 406, 409, 413, 415, 500, 503):
            raise AssertionError(f"unexpected status {resp.status} from {route}")


def TestOneInput(data: bytes) -> None:
    loop, _, _, capture = _service()
    capture.crashes.clear()
    logger = logging.getLogger("ratsfed")  # the service's logs go to the capture only, while it runs
    level, propagate = logger.level, logger.propagate
    logger.addHandler(capture)
    logger.setLevel(logging.WARNING)
    logger.propagate = False
    try:
        loop.run_until_complete(_exchange(data))
    except Error:
        pass
    finally:
        logger.removeHandler(capture)
        logger.setLevel(level)
        logger.propagate = propagate
    if capture.crashes:
        raise capture.crashes[0]
