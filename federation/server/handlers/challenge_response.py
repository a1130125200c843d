"""``/challenge-response/v1``: Veraison's session resource (``newSession``, then Evidence, GET, DELETE).

Status codes and their order follow Veraison (``verification/api/handler.go``): 406 before
anything when ``Accept`` excludes the session media type; 400 for a bad nonce request, an empty
body, a bad CMW or a session id that is not a UUID; 415 with ``Accept``; 404 for an unknown or
expired session; 500 when the verifier malfunctions (the session becomes ``failed``). Evidence
problems are not HTTP errors: they are inside the EAR (``complete``, contraindicated).

Two additions: 503 + ``Retry-After`` when the session store or the appraisal slots are full, and
409 when Evidence arrives for a session that already has some (one session, one Evidence), and 409
when a nonce is reused across sessions against the role's replay cache (:mod:`federation.replay`;
the session then fails):

* federator: ``newSession?nonce=`` with a nonce an appraisal already consumed, or Evidence for a
  second session with the same nonce (one nonce, one appraisal);
* verifier: Evidence for a second session with the same nonce *and other Evidence* (one nonce, one
  Evidence). The same Evidence under the same nonce in a new session is an idempotent retry and is
  appraised again (a federator retrying after a lost answer, or two federations sharing this
  verifier), so ``newSession?nonce=`` never refuses a remembered nonce here.
"""

from __future__ import annotations

import logging
import os
import uuid

from aiohttp import web

from ...errors import ReplayError, StaleError
from ..problems import SESSION_MEDIA_TYPE, Problem, json_response, negotiate
from ..roles import AppraisalFailed
from ..sessions import SessionRecord, SessionStatus, SessionStoreFull
from ..state import STATE
from .common import appraise, parse_session_nonce, read_evidence, replayed

__all__ = ["routes"]

log = logging.getLogger("ratsfed.server")
PREFIX = "/challenge-response/v1"


def _session_response(record: SessionRecord, status: int = 200, headers: dict[str, str] | None = None
                      ) -> web.Response:
    return json_response(record.view(), SESSION_MEDIA_TYPE, status=status, headers=headers)


def _accept(request: web.Request) -> None:
    if negotiate(request, [SESSION_MEDIA_TYPE]) is None:
        raise Problem(406, f"the only supported output format is {SESSION_MEDIA_TYPE}")


def _session_id(request: web.Request) -> str:
    raw = request.match_info["id"]
    try:
        return str(uuid.UUID(raw))
    except ValueError as exc:
        raise Problem(400, f"invalid session id ({raw[:64]}) in path segment") from exc


async def new_session(request: web.Request) -> web.Response:
    state = request.app[STATE]
    _accept(request)
    nonce = parse_session_nonce(request.query)
    if nonce is None:
        nonce = os.urandom(32)  # Veraison's default nonce size
    try:
        challenges = await state.role.challenge(nonce)
    except ReplayError as exc:
        raise replayed(exc) from exc
    now = state.clock()
    ttl = state.settings.session_ttl
    describe = getattr(state.role, "binding", None)  # the federator role states the REPORT_DATA rule
    binding = dict(describe(nonce, challenges)) if callable(describe) else {}
    record = SessionRecord(str(uuid.uuid4()), nonce, now, now + ttl, state.role.media_types(),
                           challenges=dict(challenges), binding=binding)
    try:
        await state.store.put(record, ttl)
    except SessionStoreFull as exc:
        raise Problem(503, "too many open sessions; retry later", headers={"Retry-After": "5"}) from exc
    state.metrics.sessions_created.inc()
    log.info("session created", extra={"ratsfed": {"session": record.id, "nonce_bytes": len(nonce)}})
    return _session_response(record, 201, {"Location": f"session/{record.id}"})


async def submit_evidence(request: web.Request) -> web.Response:
    state = request.app[STATE]
    _accept(request)
    evidence = await read_evidence(request, state)
    sid = _session_id(request)
    record = await state.store.get(sid)
    if record is None:
        raise Problem(404, f"no session {sid} (unknown, deleted or expired)")
    if record.status in (SessionStatus.PROCESSING, SessionStatus.COMPLETE):
        raise Problem(409, f"session {sid} already has evidence ({record.status.value}); start a new session")
    async with state.gate.slot():  # before claiming: a 503 leaves the session as it was
        claimed = record.with_status(SessionStatus.PROCESSING, evidence_type=evidence.media_type,
                                     evidence=evidence.data)
        if not await state.store.replace_if(claimed, record.status):  # compare-and-set: one submission wins
            raise Problem(409, f"session {sid} changed while submitting; start a new session")
        try:
            verdict = await appraise(state, evidence, record.nonce, session=sid, created=record.created,
                                     challenges=record.challenges)
        except StaleError as exc:
            await state.store.delete(sid)
            raise Problem(404, f"session {sid} expired") from exc
        except AppraisalFailed as exc:
            await state.store.replace_if(claimed.with_status(SessionStatus.FAILED), SessionStatus.PROCESSING)
            raise Problem(500, f"error encountered while processing evidence: {exc.detail}") from exc
        except BaseException:  # a bug or a cancelled request: never leave the session "processing"
            await state.store.replace_if(claimed.with_status(SessionStatus.FAILED), SessionStatus.PROCESSING)
            raise
    done = claimed.with_status(SessionStatus.COMPLETE, result=verdict.token_text)
    await state.store.replace_if(done, SessionStatus.PROCESSING)  # deleted or expired meanwhile: still answered
    return _session_response(done)


async def get_session(request: web.Request) -> web.Response:
    state = request.app[STATE]
    _accept(request)
    sid = _session_id(request)
    record = await state.store.get(sid)
    if record is None:
        raise Problem(404, f"no session {sid} (unknown, deleted or expired)")
    return _session_response(record)


async def delete_session(request: web.Request) -> web.Response:
    state = request.app[STATE]
    sid = _session_id(request)
    if await state.store.delete(sid):
        log.info("session deleted", extra={"ratsfed": {"session": sid}})
    return web.Response(status=204)  # as Veraison: deleting an unknown session is not an error


def routes() -> list[web.RouteDef]:
    return [
        web.post(f"{PREFIX}/newSession", new_session, name="new-session"),
        web.post(f"{PREFIX}/session/{{id}}", submit_evidence, name="session-submit"),
        web.get(f"{PREFIX}/session/{{id}}", get_session, name="session-get", allow_head=False),
        web.delete(f"{PREFIX}/session/{{id}}", delete_session, name="session-delete"),
    ]
