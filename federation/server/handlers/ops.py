"""Operations: ``/healthz`` (the process answers), ``/readyz`` (it should get traffic) and
``/metrics`` (Prometheus text format).

Ready means: the service finished starting and is not shutting down, and the role is ready — a
verifier once its reference values are loaded (before it listens), a federator while its healthy
backends can still reach k (see :mod:`federation.server.health`). Not ready answers 503 with the
reason, so a load balancer stops routing and an operator sees why.
"""

from __future__ import annotations

from aiohttp import web

from ..metrics import CONTENT_TYPE
from ..problems import json_response
from ..state import STATE

__all__ = ["routes"]


async def healthz(request: web.Request) -> web.Response:
    return json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    state = request.app[STATE]
    probe = getattr(state.role, "probe", None)
    if probe is not None:
        await probe()  # unhealthy backends that can probe themselves get their chance to recover
    ready, detail = state.role.readiness()
    if state.service_state != "READY":
        ready, detail = False, f"service is {state.service_state.lower()}"
    doc: dict[str, object] = {"ready": ready, "role": state.role.name, "service-state": state.service_state,
                              "detail": detail}
    health = state.role.health()
    if health is not None:
        doc["backends"] = health
    return json_response(doc, status=200 if ready else 503)


async def metrics(request: web.Request) -> web.Response:
    state = request.app[STATE]
    text = state.metrics.render(await state.store.count())
    return web.Response(text=text, headers={"Content-Type": CONTENT_TYPE})


def routes() -> list[web.RouteDef]:
    return [
        web.get("/healthz", healthz, name="healthz", allow_head=False),
        web.get("/readyz", readyz, name="readyz", allow_head=False),
        web.get("/metrics", metrics, name="metrics", allow_head=False),
    ]
