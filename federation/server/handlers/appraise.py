"""``POST /v1/appraise``: one appraisal without a session, for relying parties that hold the
nonce themselves (or need none). Body: the Evidence, ``Content-Type``: its media type;
``?nonce=``: hex or base64url (absent: a fresh random one, which Evidence cannot be bound to).

The answer is the same JSON as ``ratsfed appraise --json``: ``status``, ``token``, ``format``,
``nonce`` (hex), and the decoded summary (``decision``, ``submods``, ``votes`` for a federator;
the verifier and its ``submods`` for a verifier).
"""

from __future__ import annotations

import os

from aiohttp import web

from ..problems import JSON_MEDIA_TYPE, Problem, json_response, negotiate
from ..roles import AppraisalFailed
from ..state import STATE
from .common import appraise, parse_hex_or_b64url_nonce, read_evidence

__all__ = ["routes"]


async def appraise_direct(request: web.Request) -> web.Response:
    state = request.app[STATE]
    if negotiate(request, [JSON_MEDIA_TYPE]) is None:
        raise Problem(406, f"the only supported output format is {JSON_MEDIA_TYPE}")
    nonce = parse_hex_or_b64url_nonce(request.query.get("nonce"))
    evidence = await read_evidence(request, state)
    async with state.gate.slot():
        try:
            verdict = await appraise(state, evidence, nonce if nonce is not None else os.urandom(32))
        except AppraisalFailed as exc:
            raise Problem(500, f"error encountered while processing evidence: {exc.detail}") from exc
    return json_response(verdict.summary)


def routes() -> list[web.RouteDef]:
    return [web.post("/v1/appraise", appraise_direct, name="appraise")]
