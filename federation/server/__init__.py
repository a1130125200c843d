"""``ratsfed serve``: the federation (or one local appraiser) as an HTTP service.

The API is Veraison's challenge-response API (``/challenge-response/v1``, the well-known
discovery document), so Veraison clients work unchanged, plus ``POST /v1/appraise``, a JWKS,
health, readiness and Prometheus metrics. See docs/service.md.

    app = build_app(load_config("config/verifier.toml"))     # an aiohttp Application
    server = await start(load_config("config/federator.toml"))  # listening; server.url
"""

from .app import RunningServer, build_app, create_app, serve, start
from .roles import FederatorRole, Role, Verdict, VerifierRole, build_role
from .sessions import MemorySessionStore, SessionRecord, SessionStatus, SessionStore, SessionStoreFull

__all__ = [
    "FederatorRole",
    "MemorySessionStore",
    "Role",
    "RunningServer",
    "SessionRecord",
    "SessionStatus",
    "SessionStore",
    "SessionStoreFull",
    "Verdict",
    "VerifierRole",
    "build_app",
    "build_role",
    "create_app",
    "serve",
    "start",
]
