"""RFC 7807 problem documents and content negotiation, the way Veraison's API reports errors.

Every error response of the service is ``application/problem+json`` with ``type``, ``title``,
``status`` and ``detail`` (Veraison uses ``about:blank`` and the HTTP reason phrase as title).
Handlers raise :class:`Problem`; :func:`problem_middleware` also turns aiohttp's own HTTP errors
(404 no route, 405, 413 from the body limit) into problem documents, and any other exception into
a 500 whose detail says nothing about the internals.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from http import HTTPStatus

from aiohttp import web

__all__ = [
    "DISCOVERY_MEDIA_TYPE",
    "JSON_MEDIA_TYPE",
    "PROBLEM_MEDIA_TYPE",
    "SESSION_MEDIA_TYPE",
    "Problem",
    "json_response",
    "negotiate",
    "problem_middleware",
    "problem_response",
]

SESSION_MEDIA_TYPE = "application/vnd.veraison.challenge-response-session+json"
DISCOVERY_MEDIA_TYPE = "application/vnd.veraison.discovery+json"
PROBLEM_MEDIA_TYPE = "application/problem+json"
JSON_MEDIA_TYPE = "application/json"

_KEPT_HEADERS = ("Allow", "Accept", "Retry-After", "WWW-Authenticate")
log = logging.getLogger("ratsfed.server")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def json_response(doc: object, media_type: str = JSON_MEDIA_TYPE, *, status: int = 200,
                  headers: Mapping[str, str] | None = None) -> web.Response:
    """JSON with exactly *media_type* as ``Content-Type`` (no ``charset``: JSON is UTF-8, RFC 8259)."""
    return web.Response(body=json.dumps(doc).encode(), status=status, headers=dict(headers or {}),
                        content_type=media_type)


def problem_response(status: int, detail: str, headers: Mapping[str, str] | None = None) -> web.Response:
    body = {"type": "about:blank", "title": HTTPStatus(status).phrase, "status": status, "detail": detail}
    return json_response(body, PROBLEM_MEDIA_TYPE, status=status, headers=headers)


class Problem(Exception):
    """Raise in a handler to answer with a problem document (and optional headers)."""

    def __init__(self, status: int, detail: str, *, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.headers = dict(headers or {})

    def response(self) -> web.Response:
        return problem_response(self.status, self.detail, self.headers)


@web.middleware
async def problem_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except Problem as p:
        return p.response()
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        headers = {h: exc.headers[h] for h in _KEPT_HEADERS if h in exc.headers}
        detail = exc.text or exc.reason
        if detail == f"{exc.status}: {exc.reason}":  # aiohttp's default text says nothing more
            detail = f"{request.method} {request.path[:200]}: {exc.reason.lower()}"
        return problem_response(exc.status, detail, headers)
    except Exception:  # a bug: log it with its traceback, tell the client nothing about internals
        log.exception("unhandled error", extra={"ratsfed": {"path": request.path}})
        return problem_response(500, "internal error")


def _parse_accept(header: str) -> list[tuple[str, str, float]]:
    """(type, subtype, q) for each media range of an ``Accept`` header; unparsable q counts as 0."""
    out = []
    for part in header.split(","):
        media, *params = (p.strip() for p in part.split(";"))
        if not media:
            continue
        q_text = next((p.split("=", 1)[1].strip() for p in params if p.lower().startswith("q=")), "1")
        try:
            q = float(q_text)
        except ValueError:
            q = 0.0
        kind, _, sub = media.lower().partition("/")
        out.append((kind, sub or "*", q))
    return out


def _quality(media: str, ranges: list[tuple[str, str, float]]) -> float:
    """The q of the most specific range matching *media* (RFC 9110 §12.5.1), 0 when none does."""
    kind, _, sub = media.lower().partition("/")
    best, specificity = 0.0, -1
    for rk, rs, q in ranges:
        if (rk, rs) == (kind, sub):
            level = 2
        elif rk == kind and rs == "*":
            level = 1
        elif (rk, rs) == ("*", "*"):
            level = 0
        else:
            continue
        if level > specificity:
            best, specificity = q, level
    return best


def negotiate(request: web.Request, offered: Sequence[str]) -> str | None:
    """The acceptable one of *offered* with the highest q, earlier first on ties (no Accept: the first)."""
    header = request.headers.get("Accept", "").strip()
    if not header:
        return offered[0]
    ranges = _parse_accept(header)
    scored = [(_quality(media, ranges), -i, media) for i, media in enumerate(offered)]
    q, _, media = max(scored)
    return media if q > 0 else None
