"""The two roles of ``ratsfed serve``: one local appraiser, or a whole federation.

Both answer the same questions for the handlers: which evidence media types are accepted, what
phase 1 of a session collects (:meth:`Role.challenge`), and one appraisal as a :class:`Verdict`
(the signed token, its status, the votes behind it, and a JSON summary for ``/v1/appraise``).

* ``verifier``: the local appraiser's own signed EAR, bound to the nonce it is given. Evidence
  problems are inside the EAR (contraindicated, the problem stated), as Veraison reports them;
  only a malfunction raises :class:`AppraisalFailed`.
* ``federator``: :meth:`federation.Federation.appraise` with a session, so every member vote is
  checked and the combined EAR signed; the votes also feed backend health (``/readyz``).

Both record each appraisal's nonce in a replay cache (:mod:`federation.replay`; the federator's
is its Federation's), with different rules (a full cache raises :class:`ReplayCacheFull`: 503):

* the federator consumes it: one nonce, one appraisal. :meth:`Role.challenge` raises
  :class:`ReplayError` for a nonce already spent and :meth:`Role.appraise` for a second appraisal
  under it (the handlers answer 409).
* the verifier remembers it with the SHA-256 of the Evidence (media type and bytes): one nonce,
  one Evidence. The same Evidence again under the same nonce within the window is an idempotent
  retry, answered normally (a federator retrying after a lost answer; two federations whose members
  share this verifier); other Evidence under it raises :class:`ReplayError` (409). So
  :meth:`Role.challenge` does not refuse a remembered nonce: which Evidence comes is not yet known.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, Protocol

from ..config import Config
from ..ear.codec import from_cbor_claims, from_json_claims
from ..ear.model import Ear
from ..ear.token import Format, peek_claims
from ..engine import Federation, Session
from ..errors import ConfigError, Error, ReplayError, StaleError
from ..evidence import Evidence
from ..keys import SigningKey, b64url_encode
from ..quorum import Decision
from ..replay import MemoryReplayCache, ReplayCache, ReplayCacheFull
from ..votes import Outcome, Vote, outcome_of
from .health import HealthTracker

if TYPE_CHECKING:
    from verifiers.local.backend import LocalBackend

__all__ = [
    "AppraisalFailed", "FederatorRole", "Role", "Verdict", "VerifierRole", "build_role", "evidence_digest",
    "supported", "token_text",
]

log = logging.getLogger("ratsfed.server")
RoleName = Literal["verifier", "federator"]


class AppraisalFailed(Exception):
    """The verifier malfunctioned (no result at all); Veraison answers 500 and fails the session."""

    def __init__(self, detail: str, votes: tuple[Vote, ...] = ()) -> None:
        super().__init__(detail)
        self.detail = detail
        self.votes = votes


@dataclass(frozen=True, slots=True)
class Verdict:
    token: bytes
    format: Format
    status: str
    nonce: bytes
    votes: tuple[Vote, ...]
    decision: Decision | None
    summary: dict[str, Any]

    @property
    def token_text(self) -> str:
        return token_text(self.token, self.format)


def token_text(token: bytes, fmt: Format) -> str:
    """A token as a JSON string: a JWT as is, a CWT in base64url."""
    return token.decode("ascii") if fmt == "jwt" else b64url_encode(token)


class Role(Protocol):
    name: RoleName
    signing_key: SigningKey
    backends: tuple[str, ...]

    def media_types(self) -> tuple[str, ...]: ...

    def accepts(self, media_type: str) -> bool: ...

    async def challenge(self, nonce: bytes) -> Mapping[str, bytes]: ...

    async def appraise(self, evidence: Evidence, nonce: bytes, *, created: float | None = None,
                       challenges: Mapping[str, bytes] | None = None) -> Verdict: ...

    def readiness(self) -> tuple[bool, str]: ...

    def health(self) -> dict[str, bool] | None: ...

    async def aclose(self) -> None: ...


def _normalize(media_type: str) -> str:
    from verifiers.local.scheme import normalize_media_type

    return normalize_media_type(media_type)


def supported(media_type: str, types: frozenset[str]) -> bool:
    """Whether *media_type* routes to one of *types* (exact with parameters, else the bare type)."""
    mt = _normalize(media_type)
    return mt in types or mt.split(";", 1)[0] in types


def _decode(token: bytes) -> tuple[Format, Ear]:
    fmt, claims = peek_claims(token)  # our own, just signed: decoded for its status, not trusted input
    return fmt, from_json_claims(claims) if fmt == "jwt" else from_cbor_claims(claims)


def _submods(ear: Ear) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, a in ear.submods.items():
        problem = (a.extensions.get("ear_veraison_policy_claims") or {}).get("problem")
        out[name] = {"status": a.status.label, "trust_vector": a.trust_vector.to_json() if a.trust_vector else None,
                     **({"problem": problem} if problem else {})}
    return out


def evidence_digest(evidence: Evidence) -> bytes:
    """SHA-256 over the Evidence's media type (normalized: spellings that route alike are one
    type) and its bytes, length-prefixed so that no two (type, bytes) pairs share a preimage."""
    mt = _normalize(evidence.media_type).encode("utf-8", "surrogateescape")
    return hashlib.sha256(len(mt).to_bytes(4, "big") + mt + evidence.data).digest()


class VerifierRole:
    """Exposes one local appraiser (``kind = "local"``) and its result-signing key."""

    name: RoleName = "verifier"

    def __init__(self, backend: LocalBackend, *, timeout: float = 10.0, replay: ReplayCache | None = None,
                 replay_ttl: float = 300.0) -> None:
        self.backend = backend
        self.timeout = timeout
        self.replay: ReplayCache = replay if replay is not None else MemoryReplayCache()
        self.replay_ttl = replay_ttl
        self.signing_key = backend.key
        self.backends: tuple[str, ...] = (backend.name,)

    def media_types(self) -> tuple[str, ...]:
        return tuple(self.backend.appraiser.media_types)

    def accepts(self, media_type: str) -> bool:
        try:
            self.backend.appraiser.route(media_type)
        except Error:
            return False
        return True

    async def challenge(self, nonce: bytes) -> Mapping[str, bytes]:
        # A remembered nonce is not refused here: the same Evidence may come again under it (an
        # idempotent retry, or another federation sharing this verifier); appraise() decides.
        return {}

    async def appraise(self, evidence: Evidence, nonce: bytes, *, created: float | None = None,
                       challenges: Mapping[str, bytes] | None = None) -> Verdict:
        b = self.backend
        # Before the appraisal: one nonce, one Evidence. The first Evidence's digest stays for
        # the whole window, so a retry is recognised however many times it comes.
        digest = evidence_digest(evidence)
        first = await self.replay.add_or_get(nonce, self.replay_ttl, digest)
        if first is not None and first != digest:
            raise ReplayError(f"this nonce was already used for other evidence in the last {self.replay_ttl:g}s")
        if first is not None:
            log.info("the same evidence again under its nonce: appraised as a retry",
                     extra={"ratsfed": {"verifier": b.name}})
        loop = asyncio.get_running_loop()
        start = loop.time()
        try:
            async with asyncio.timeout(self.timeout):
                raw = await b.appraise(evidence, nonce, start + self.timeout)
            fmt, ear = _decode(raw.token)
        except Exception as exc:  # a malfunction: recorded and reported, never the traceback to clients
            outcome = Outcome.TIMEOUT if isinstance(exc, TimeoutError) else outcome_of(exc)
            detail = f"appraisal timed out after {self.timeout}s" if outcome is Outcome.TIMEOUT else (
                f"appraiser raised {type(exc).__name__}")
            log.warning("appraisal failed", exc_info=not isinstance(exc, TimeoutError | Error),
                        extra={"ratsfed": {"verifier": b.name, "reason": detail}})
            raise AppraisalFailed(detail, (Vote(b.name, b.operator, b.kind, outcome, detail=detail,
                                                latency_ms=(loop.time() - start) * 1000),)) from exc
        vote = Vote(b.name, b.operator, b.kind, Outcome.OK, ear=ear, raw=raw.token, media_type=raw.media_type,
                    key_thumbprint=b.key.public.thumbprint, latency_ms=(loop.time() - start) * 1000)
        status = ear.status.label
        summary = {"status": status, "nonce": nonce.hex(), "verifier": {"name": b.name, "operator": b.operator},
                   "submods": _submods(ear), "format": fmt, "token": token_text(raw.token, fmt)}
        return Verdict(raw.token, fmt, status, nonce, (vote,), None, summary)

    def readiness(self) -> tuple[bool, str]:
        # The reference-value store is loaded when the backend is built, before the server listens;
        # a store that failed to load fails the start instead (a config error, exit 2).
        entries = len(self.backend.appraiser.store)
        return True, (f"local appraiser {self.backend.name!r} loaded: {entries} store entries, "
                      f"{len(self.media_types())} media types")

    def health(self) -> dict[str, bool] | None:
        return None

    async def aclose(self) -> None:
        return None


def _declared(backend: object) -> frozenset[str] | None:
    """The media types a backend says it accepts (``media_types``, or its appraiser's), if any."""
    types = getattr(backend, "media_types", None)
    if types is None:
        types = getattr(getattr(backend, "appraiser", None), "media_types", None)
    if isinstance(types, list | tuple | set | frozenset) and types and all(isinstance(t, str) for t in types):
        return frozenset(_normalize(t) for t in types)
    return None


class FederatorRole:
    """Exposes a :class:`federation.Federation`; results are the combined, federation-signed EARs."""

    name: RoleName = "federator"

    def __init__(self, fed: Federation, *, unhealthy_after: int = 3) -> None:
        self.fed = fed
        self.signing_key = fed.signing_key
        self.backends = tuple(m.backend.name for m in fed.members)
        self.tracker = HealthTracker(fed.members, fed.policy, unhealthy_after=unhealthy_after)
        declared = [_declared(m.backend) for m in fed.members]
        self._types = frozenset(t for d in declared if d for t in d)
        # A member that declares nothing (e.g. a remote verifier that did not say) may accept
        # anything: then the federator cannot refuse a type on the members' behalf.
        self._open = any(d is None for d in declared)

    def media_types(self) -> tuple[str, ...]:
        return tuple(sorted(self._types))

    def accepts(self, media_type: str) -> bool:
        return self._open or supported(media_type, self._types)

    async def challenge(self, nonce: bytes) -> Mapping[str, bytes]:
        return (await self.fed.challenge(nonce)).challenges

    def binding(self, nonce: bytes, challenges: Mapping[str, bytes]) -> Mapping[str, str]:
        """What a TEE quote's REPORT_DATA must be for this session (docs/binding.md)."""
        return self.fed.binding(nonce, challenges).describe()

    async def appraise(self, evidence: Evidence, nonce: bytes, *, created: float | None = None,
                       challenges: Mapping[str, bytes] | None = None) -> Verdict:
        from ..cli.appraise_cmd import report

        try:
            if created is not None:
                session = Session(nonce, created, dict(challenges or {}))
                result = await self.fed.appraise(evidence, session=session)
            else:
                result = await self.fed.appraise(evidence, nonce)
        except StaleError:
            raise  # the session outlived the federation's session_ttl: the handler answers 404
        except (ReplayError, ReplayCacheFull):
            raise  # a refused nonce, not a malfunction: the handler answers 409 / 503
        except Exception as exc:  # backend failures are votes; anything raised here is a malfunction
            log.error("federation raised", exc_info=True, extra={"ratsfed": {"federation": self.fed.federation_id}})
            raise AppraisalFailed(f"federation raised {type(exc).__name__}") from exc
        self.tracker.record(result.votes)
        summary = {**report(result), "format": result.format, "token": token_text(result.token, result.format)}
        return Verdict(result.token, result.format, result.status, result.nonce, result.votes, result.decision,
                       summary)

    def readiness(self) -> tuple[bool, str]:
        return self.tracker.ready()

    async def probe(self) -> None:
        await self.tracker.probe_unhealthy()

    def health(self) -> dict[str, bool] | None:
        return self.tracker.states()

    async def aclose(self) -> None:
        await self.fed.aclose()


def build_role(config: Config) -> Role:
    """Build the role ``config.server`` asks for (backends, keys and reference values loaded)."""
    s = config.server
    if s.role == "verifier":
        from verifiers.local.backend import LocalBackend
        from verifiers.registry import create

        vc = next(v for v in config.verifiers if v.spec.name == s.verifier)
        backend = create(vc.spec)
        if not isinstance(backend, LocalBackend):
            raise ConfigError("a verifier-role server exposes a local appraiser", key="server.verifier",
                              file=str(config.path))
        backend.spelling = s.spelling or config.spelling
        if "signing_key" not in vc.spec.options:
            log.warning("no signing_key for the exposed verifier: results are signed with a key generated "
                        "for this run only", extra={"ratsfed": {"verifier": vc.spec.name}})
        return VerifierRole(backend, timeout=vc.timeout, replay_ttl=s.session_ttl)
    fed: Federation = config.build()
    if s.spelling is not None:
        fed.spelling = s.spelling
    if config.signing_key is None:
        log.warning("no federation.signing_key: combined results are signed with a key generated for this "
                    "run only", extra={"ratsfed": {"federation": config.federation_id}})
    return FederatorRole(fed, unhealthy_after=s.unhealthy_after)
