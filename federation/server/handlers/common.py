"""Shared request steps: evidence intake (size, CMW unwrap, media type), nonces, one appraisal.

Evidence intake follows Veraison's order (``verification/api/handler.go``): read the body (400 when
empty), unwrap a record CMW to its inner type and value (400 when the CMW is malformed), then
check the media type against the role's (415, with ``Accept`` listing the supported types).
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import time
from collections.abc import Mapping

from aiohttp import web

from ...errors import MalformedError, ReplayError
from ...evidence import MAX_EVIDENCE, Evidence
from ...keys import b64url_decode
from ...replay import ReplayCacheFull
from ..limits import check_length
from ..problems import Problem
from ..roles import AppraisalFailed, Verdict
from ..state import ServerState

__all__ = [
    "CMW_MEDIA_TYPES", "appraise", "parse_hex_or_b64url_nonce", "parse_session_nonce", "read_evidence", "replayed",
]

log = logging.getLogger("ratsfed.server")

# Veraison's handler.go isCMW: these Content-Types carry a CMW to unwrap.
CMW_MEDIA_TYPES = frozenset({
    "application/cmw", "application/cmw+json", "application/cmw+cbor",
    "application/vnd.veraison.cmw", "application/vnd.veraison.cmw+cbor", "application/vnd.veraison.cmw+json",
})
NONCE_MIN, NONCE_MAX = 8, 64  # bytes
_HEX_NONCE = re.compile(r"(?:[0-9a-fA-F]{2}){8,64}")


def _unwrap_cmw(data: bytes) -> tuple[str, bytes] | None:
    """A record (or tag) CMW's (media type, value); None for a collection (passed on as-is)."""
    from verifiers.local.evidence import cmw

    try:
        item = cmw.decode(data)
    except MalformedError as exc:
        raise Problem(400, f"could not unwrap the CMW: {exc.detail}") from exc
    if isinstance(item, cmw.Collection):
        return None
    if item.media_type is None:
        raise Problem(400, f"could not unwrap the CMW: unknown Content-Format {item.type}")
    return item.media_type, item.value


async def read_evidence(request: web.Request, state: ServerState) -> Evidence:
    check_length(request, state.settings.max_body)
    data = await request.read()  # aiohttp refuses (413) beyond client_max_size while reading
    if not data:
        raise Problem(400, "unable to read evidence from the request body")
    media_type = request.headers.get("Content-Type", "").strip()  # raw: parameters (profile) matter
    if media_type.split(";", 1)[0].strip().lower() in CMW_MEDIA_TYPES:
        inner = _unwrap_cmw(data)
        if inner is not None:
            media_type, data = inner
    if not media_type or len(media_type) > 256 or not state.role.accepts(media_type):
        supported = ", ".join(state.role.media_types())
        raise Problem(415, f"unsupported evidence media type {media_type[:80]!r}; supported: {supported}",
                      headers={"Accept": supported})
    if len(data) > MAX_EVIDENCE:
        raise Problem(413, f"evidence of {len(data)} bytes exceeds {MAX_EVIDENCE}")
    return Evidence(media_type, data)


def _check_size(nonce: bytes) -> bytes:
    if not NONCE_MIN <= len(nonce) <= NONCE_MAX:
        raise Problem(400, f"nonce must be between {NONCE_MIN} and {NONCE_MAX} bytes long; got {len(nonce)}")
    return nonce


def _b64url(text: str) -> bytes:
    try:
        return b64url_decode(text)
    except MalformedError as exc:
        raise Problem(400, "nonce must be valid base64url") from exc


def parse_session_nonce(query: Mapping[str, str]) -> bytes | None:
    """``newSession``'s ``nonce`` (base64url, padded or not) or ``nonceSize``; None = 32 random bytes."""
    nonce, size = query.get("nonce"), query.get("nonceSize")
    if nonce is not None and size is not None:
        raise Problem(400, "nonce and nonceSize are mutually exclusive")
    if nonce is not None:
        return _check_size(_b64url(nonce))
    if size is not None:
        if not size.isdigit() or not NONCE_MIN <= int(size) <= NONCE_MAX:
            raise Problem(400, f"nonceSize must be in range {NONCE_MIN}..{NONCE_MAX}")
        return os.urandom(int(size))
    return None


def parse_hex_or_b64url_nonce(value: str | None) -> bytes | None:
    """``/v1/appraise``'s ``nonce``: hex when it is an even-length hex string of 8..64 bytes,
    otherwise base64url (so a base64url nonce made only of hex digits must be sent in hex)."""
    if value is None:
        return None
    if _HEX_NONCE.fullmatch(value):
        return bytes.fromhex(value)
    return _check_size(_b64url(value))


def replayed(exc: ReplayError, session: str | None = None) -> Problem:
    """409 for a nonce already spent: by any appraisal on a federator, by other Evidence on a
    verifier (:mod:`federation.replay`)."""
    log.warning("replayed nonce refused", extra={"ratsfed": {"session": session, "reason": exc.reason}})
    return Problem(409, f"nonce already used: {exc.detail}")


async def appraise(state: ServerState, evidence: Evidence, nonce: bytes, *, session: str | None = None,
                   created: float | None = None, challenges: Mapping[str, bytes] | None = None) -> Verdict:
    """One appraisal, measured and logged (never the evidence itself). The caller holds a slot of
    ``state.gate``. A nonce already spent (see :func:`replayed`) answers 409, a full replay cache 503."""
    fields = {"session": session, "media_type": evidence.media_type, "evidence_bytes": len(evidence.data),
              "evidence_sha256": hashlib.sha256(evidence.data).hexdigest()[:16]}
    start = time.perf_counter()
    try:
        verdict = await state.role.appraise(evidence, nonce, created=created, challenges=challenges)
    except ReplayError as exc:
        raise replayed(exc, session) from exc
    except ReplayCacheFull as exc:
        raise Problem(503, "too many recent nonces to prove this one unused; retry later",
                      headers={"Retry-After": "5"}) from exc
    except AppraisalFailed as exc:
        seconds = time.perf_counter() - start
        state.metrics.observe_appraisal("error", seconds, exc.votes, None)
        log.error("appraisal failed", extra={"ratsfed": {**fields, "reason": exc.detail,
                                                          "ms": round(seconds * 1000, 2)}})
        raise
    seconds = time.perf_counter() - start
    state.metrics.observe_appraisal(verdict.status, seconds, verdict.votes, verdict.decision)
    log.info("appraisal", extra={"ratsfed": {
        **fields, "status": verdict.status, "ms": round(seconds * 1000, 2),
        **({"decision": verdict.decision.explain()} if verdict.decision is not None else {}),
    }})
    return verdict
