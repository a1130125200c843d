"""Discovery: Veraison's ``/.well-known/veraison/verification`` and a JWKS for key rotation.

The well-known document has Veraison's shape (``capability/well-known.go``):
``ear-verification-key`` (the current result-signing key as a JWK, with ``kid`` and ``alg``),
``media-types``, ``version``, ``service-state``, ``api-endpoints``; served as
``application/vnd.veraison.discovery+json`` (or ``application/json`` when asked), cacheable for
60 s. ``/.well-known/jwks.json`` lists the current key and every ``previous_keys`` entry.
Both are public: they hold nothing but public keys.
"""

from __future__ import annotations

from aiohttp import web

from ... import __version__
from ..problems import DISCOVERY_MEDIA_TYPE, JSON_MEDIA_TYPE, Problem, json_response, negotiate
from ..state import STATE

__all__ = ["ENDPOINTS", "routes"]

ENDPOINTS = {
    "newChallengeResponseSession": "/challenge-response/v1/newSession",
    "appraise": "/v1/appraise",
    "jwks": "/.well-known/jwks.json",
}
_CACHE = {"Cache-Control": "max-age=60"}
JWKS_MEDIA_TYPE = "application/jwk-set+json"


async def well_known(request: web.Request) -> web.Response:
    state = request.app[STATE]
    media = negotiate(request, [DISCOVERY_MEDIA_TYPE, JSON_MEDIA_TYPE])
    if media is None:
        raise Problem(406, f"the only supported output format is {DISCOVERY_MEDIA_TYPE}")
    doc = {
        "ear-verification-key": state.keys.current_jwk(),
        "media-types": list(state.role.media_types()),
        "version": __version__,
        "service-state": state.service_state,
        "api-endpoints": ENDPOINTS,
        "role": state.role.name,
    }
    return json_response(doc, media, headers=_CACHE)


async def jwks(request: web.Request) -> web.Response:
    state = request.app[STATE]
    media = negotiate(request, [JSON_MEDIA_TYPE, JWKS_MEDIA_TYPE])
    if media is None:
        raise Problem(406, f"the JWKS is served as {JSON_MEDIA_TYPE} or {JWKS_MEDIA_TYPE}")
    return json_response(state.keys.jwks(), media, headers=_CACHE)


def routes() -> list[web.RouteDef]:
    return [
        web.get("/.well-known/veraison/verification", well_known, name="discovery", allow_head=False),
        web.get("/.well-known/jwks.json", jwks, name="jwks", allow_head=False),
    ]
