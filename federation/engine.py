"""The federation engine: fan out, check every vote, decide, sign one combined result.

Theory of operation for one ``appraise``:

* every member backend is asked concurrently, each under its own timeout and all under one
  overall deadline; the backend is told the earlier of the two as its ``deadline``;
* transient transport failures (unreachable, HTTP 429/5xx) are retried here and only here
  (tenacity, jittered backoff); a backend's error may carry ``retry_after`` (seconds: an HTTP
  ``Retry-After``, a circuit breaker's cool-down, ``inf`` for "not worth it"), which the wait
  honours; a retry whose wait would end past the backend's deadline is not attempted, so the
  vote records the real failure instead of a timeout;
* each answer goes through :func:`verifiers.normalize.normalize` with *that* member's anchor,
  this session's nonce and one ``now`` for the whole appraisal;
* anything a backend does wrong (raise, hang, lie) becomes a recorded :class:`Vote`, never an
  exception out of the federation; a backend cancelled at the deadline (or when the quorum is
  decided) gets ``_CANCEL_GRACE`` (50 ms) to stop, and one deaf to cancellation finishes in the
  background (:meth:`Federation.aclose` waits up to 1 s for it), so it cannot delay the answer;
* with ``wait = "quorum"`` the engine stops as soon as :func:`federation.quorum.is_final` says no
  pending answer could change a status, cancels the stragglers and records them ``not-awaited``;
* a nonce the caller chose (directly or through a session) is consumed in the replay cache
  (:mod:`federation.replay`) before any backend is asked: a second appraisal under it within
  ``replay_ttl`` raises :class:`~federation.errors.ReplayError`.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import TracebackType
from typing import Literal, Self

from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, wait_exponential_jitter

from verifiers.base import (
    Backend,
    ChallengingBackend,
    ClosableBackend,
    PrefixingBackend,
    RawResult,
    appraisal_time,
    session_binding,
)
from verifiers.normalize import Check, normalize

from .binding import Binding, BindingStrength
from .ear.model import Ear, Spelling
from .ear.token import Format
from .errors import (
    BackendHTTPError,
    BackendUnreachableError,
    ConfigError,
    Error,
    MalformedError,
    ReplayError,
    StaleError,
    UsageError,
)
from .evidence import Evidence
from .keys import SigningKey, TrustAnchor
from .quorum import QuorumPolicy, decide, is_final
from .replay import MemoryReplayCache, ReplayCache
from .result import AppraisalResult, build_combined
from .votes import Outcome, Vote, outcome_of

__all__ = ["Federation", "Member", "Session"]

_NONCE_MIN, _NONCE_MAX = 8, 64  # bytes (EAT nonce bounds)
_CANCEL_GRACE = 0.05  # seconds cancelled backends get to stop before the result goes out without them


@dataclass(frozen=True, slots=True)
class Member:
    """A backend in the federation, with the anchor its results must verify under."""

    backend: Backend
    anchor: TrustAnchor
    timeout: float = 10.0  # seconds, for this backend (all attempts)
    retries: int = 1  # extra attempts on transient transport failures
    max_age: int | None = 300  # seconds a result's iat may lie in the past
    leeway: int = 60  # seconds of clock skew tolerated
    rename: Mapping[str, str] = field(default_factory=dict)  # backend submod name -> federation name
    # What the backend is sent as its nonce: the session nonce, or the binding's 64-byte REPORT_DATA
    # (federation.binding) for verifiers that check REPORT_DATA against the nonce they are given.
    nonce: NonceMode = "session"


NonceMode = Literal["session", "report-data"]


@dataclass(frozen=True, slots=True)
class Session:
    """Phase 1 of an appraisal: the nonce the attester must bind, and backends' own challenges.

    ``binding`` says what the Evidence's REPORT_DATA must be for this session (64 bytes in
    ``binding.report_data``); it is rebuilt from the nonce and challenges when not given.
    """

    nonce: bytes
    created: float
    challenges: Mapping[str, bytes] = field(default_factory=dict)
    binding: Binding | None = None


def _transient(exc: BaseException) -> bool:
    if isinstance(exc, BackendUnreachableError):
        return True
    return isinstance(exc, BackendHTTPError) and (exc.status == 429 or exc.status >= 500)


def _retry_after(exc: BaseException | None) -> float:
    """Seconds the failed backend asked us to wait before the next attempt (0: no wish)."""
    value = getattr(exc, "retry_after", None)
    if isinstance(value, int | float) and not isinstance(value, bool) and value > 0:
        return float(value)
    return 0.0


def _check_nonce(nonce: bytes) -> bytes:
    if not isinstance(nonce, bytes) or not _NONCE_MIN <= len(nonce) <= _NONCE_MAX:
        raise UsageError(f"nonce must be {_NONCE_MIN}..{_NONCE_MAX} bytes")
    return nonce


class Federation:
    """A k-of-n federation of verifier backends. Use as an async context manager."""

    def __init__(
        self,
        members: Sequence[Member],
        policy: QuorumPolicy,
        signing_key: SigningKey,
        *,
        federation_id: str = "ratsfed",
        result_format: Format = "jwt",
        spelling: Spelling = Spelling.VERAISON,
        deadline: float = 15.0,
        ttl: int = 300,
        session_ttl: float = 300.0,
        embed_results: bool = True,
        clock: Callable[[], float] = time.time,
        replay: ReplayCache | None = None,
        replay_ttl: float | None = None,
    ) -> None:
        names = [m.backend.name for m in members]
        if len(set(names)) != len(names):
            raise ConfigError("verifier names must be unique", key="verifiers.name")
        if policy.n != len(members):
            raise ConfigError(f"quorum n={policy.n} but {len(members)} verifiers configured", key="quorum")
        operators = {m.backend.operator for m in members}
        if policy.distinct_operators and policy.k > len(operators):
            raise ConfigError(f"k={policy.k} can never be reached by {len(operators)} distinct operators",
                              key="quorum.k")
        prefixing = [m.backend.name for m in members if isinstance(m.backend, PrefixingBackend)]
        if len(prefixing) > 1:
            raise ConfigError(f"only one verifier may hash its challenge before the runtime data, not "
                              f"{', '.join(prefixing)} (one REPORT_DATA cannot start with two prefixes)",
                              key="verifiers")
        for m in members:
            if m.nonce not in ("session", "report-data"):
                raise ConfigError(f"nonce must be 'session' or 'report-data', not {m.nonce!r}",
                                  key=f"verifiers.{m.backend.name}.nonce")
        if deadline <= 0 or ttl <= 0:
            raise ConfigError("deadline and result ttl must be positive", key="federation.deadline")
        self.members = tuple(members)
        self.policy = policy
        self.signing_key = signing_key
        self.federation_id = federation_id
        self.result_format: Format = result_format
        self.spelling = spelling
        self.deadline = deadline
        self.ttl = ttl
        self.session_ttl = session_ttl
        self.embed_results = embed_results
        self._clock = clock
        self._stragglers: set[asyncio.Task[Vote]] = set()  # cancelled backends still stopping
        # Caller-chosen nonces are single-use for this long (a session's whole life by default).
        self.replay: ReplayCache = replay if replay is not None else MemoryReplayCache(clock=clock)
        self.replay_ttl = float(replay_ttl) if replay_ttl is not None else max(session_ttl, 1.0)
        if self.replay_ttl <= 0:
            raise ConfigError("the replay window must be positive", key="federation.replay_ttl")

    @classmethod
    def from_config(cls, path: str | Path) -> Federation:
        from .config import load_config

        fed: Federation = load_config(path).build()
        return fed

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, et: type[BaseException] | None, e: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        if self._stragglers:  # backends still stopping after an appraisal gave up on them
            await asyncio.wait(set(self._stragglers), timeout=1.0)
        for m in self.members:
            if isinstance(m.backend, ClosableBackend):
                try:
                    await m.backend.aclose()
                except Exception:  # noqa: S112 - closing must not mask the caller's outcome
                    continue

    async def challenge(self, nonce: bytes | None = None) -> Session:
        """Phase 1: fix the nonce (fresh unless given) and collect backends' own challenges.

        A given nonce already consumed by an appraisal raises :class:`ReplayError` (it is only
        checked here: the nonce is consumed by :meth:`appraise`).
        """
        n = _check_nonce(nonce) if nonce is not None else os.urandom(32)
        if nonce is not None and await self.replay.seen(n):
            raise ReplayError("this nonce was already used for an appraisal; start with a fresh one")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.deadline
        challenges: dict[str, bytes] = {}
        for m in self.members:
            if isinstance(m.backend, ChallengingBackend):
                try:
                    async with asyncio.timeout_at(min(deadline, loop.time() + m.timeout)):
                        c = await m.backend.challenge(n, deadline)
                except (TimeoutError, Error):
                    continue  # its vote will fail in phase 2; the session still serves the others
                if c is not None:
                    challenges[m.backend.name] = c
        return Session(n, self._clock(), challenges, self.binding(n, challenges))

    def binding(self, nonce: bytes, challenges: Mapping[str, bytes] | None = None) -> Binding:
        """The REPORT_DATA rule for a session (federation.binding): pure, so a stored session
        (nonce and challenges) always gives the same 64 bytes."""
        challenges = dict(challenges or {})
        prefix = b""
        for m in self.members:
            c = challenges.get(m.backend.name)
            if c is not None and isinstance(m.backend, PrefixingBackend):
                try:
                    prefix = m.backend.report_data_prefix(c)
                except Error as exc:
                    raise MalformedError(f"challenge of {m.backend.name!r} is unusable: {exc.detail}") from exc
        return Binding(nonce, challenges, prefix)

    async def appraise(self, evidence: Evidence, nonce: bytes | None = None, *, session: Session | None = None,
                       now: int | None = None) -> AppraisalResult:
        """Phase 2: appraise *evidence* bound to the session's (or the given, or a fresh) nonce.

        A given or session nonce is consumed first: reused within ``replay_ttl`` it raises
        :class:`ReplayError` (a full in-memory cache raises
        :class:`~federation.replay.ReplayCacheFull`) and no backend is asked.
        """
        chosen = nonce is not None or session is not None
        challenges: Mapping[str, bytes] = {}
        if session is not None:
            if nonce is not None and nonce != session.nonce:
                raise UsageError("nonce and session disagree")
            if self._clock() - session.created > self.session_ttl:
                raise StaleError("session expired; start a new one")
            nonce = session.nonce
            challenges = session.challenges
        nonce = _check_nonce(nonce) if nonce is not None else os.urandom(32)
        # Always derived here from the nonce and the challenges (a session's own ``binding`` is a
        # convenience for the attester, never trusted): what the backends see is what was committed.
        binding = self.binding(nonce, challenges)
        if session is not None and session.binding is not None and session.binding != binding:
            raise UsageError("the session's binding does not follow from its nonce and challenges")
        if chosen and await self.replay.seen_or_add(nonce, self.replay_ttl):
            raise ReplayError(f"this nonce was already used for an appraisal in the last {self.replay_ttl:g}s")
        when = int(now if now is not None else self._clock())
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.deadline
        token_now = appraisal_time.set(when if now is not None else None)
        token_binding = session_binding.set(binding)
        try:  # tasks copy the context: each backend sees this appraisal's time and binding
            tasks = {asyncio.create_task(self._ask(m, evidence, binding, deadline, when)): m for m in self.members}
        finally:
            session_binding.reset(token_binding)
            appraisal_time.reset(token_now)
        votes: dict[str, Vote] = {}
        pending = set(tasks)
        try:
            while pending:
                remaining = deadline - loop.time()
                if remaining <= 0:
                    break
                done, pending = await asyncio.wait(pending, timeout=remaining,
                                                   return_when=asyncio.FIRST_COMPLETED)
                for t in done:
                    vote = t.result()
                    votes[vote.backend] = vote
                if self.policy.wait == "quorum" and pending and is_final(
                        self.policy, list(votes.values()),
                        [(tasks[t].backend.name, tasks[t].backend.operator) for t in pending]):
                    for t in pending:
                        b = tasks[t].backend
                        votes[b.name] = Vote(b.name, b.operator, b.kind, Outcome.NOT_AWAITED,
                                             detail="quorum decided before it answered")
                    break
        finally:
            for t in pending:
                t.cancel()
            if pending:
                # Cancelled backends get a moment to stop, no more: one deaf to cancellation must
                # not hold the answer past the deadline, so it finishes in the background.
                _, stuck = await asyncio.wait(pending, timeout=_CANCEL_GRACE)
                for t in stuck:
                    self._stragglers.add(t)
                    t.add_done_callback(self._stragglers.discard)
        ordered = tuple(votes.get(m.backend.name) or Vote(
            m.backend.name, m.backend.operator, m.backend.kind, Outcome.TIMEOUT,
            detail="overall deadline passed") for m in self.members)
        decision = decide(self.policy, ordered)
        token, ear = build_combined(
            federation_id=self.federation_id, decision=decision, votes=ordered, nonce=nonce, now=when,
            ttl=self.ttl, key=self.signing_key, fmt=self.result_format, spelling=self.spelling,
            embed=self.embed_results, evidence_media_type=evidence.media_type, evidence=evidence.data,
            renames={m.backend.name: m.rename for m in self.members if m.rename}, binding=binding,
            nonce_modes={m.backend.name: m.nonce for m in self.members if m.nonce != "session"},
        )
        return AppraisalResult(token, ear, decision, ordered, nonce, self.result_format)

    async def _call(self, m: Member, evidence: Evidence, nonce: bytes, deadline: float) -> RawResult:
        loop = asyncio.get_running_loop()
        backoff = wait_exponential_jitter(multiplier=0.05, max=1.0, jitter=0.05)

        def wait(rs: RetryCallState) -> float:
            return max(backoff(rs), _retry_after(rs.outcome.exception() if rs.outcome else None))

        def stop(rs: RetryCallState) -> bool:  # sleeping past the deadline would only hide the error
            return rs.attempt_number > m.retries or loop.time() + rs.upcoming_sleep >= deadline

        retrying = AsyncRetrying(
            stop=stop,
            wait=wait,
            retry=retry_if_exception(_transient),
            reraise=True,
        )
        async for attempt in retrying:
            with attempt:
                return await m.backend.appraise(evidence, nonce, deadline)
        raise AssertionError("unreachable: tenacity either returns or re-raises")

    async def _ask(self, m: Member, evidence: Evidence, binding: Binding, deadline: float, when: int) -> Vote:
        b = m.backend
        nonce = binding.report_data if m.nonce == "report-data" else binding.nonce
        loop = asyncio.get_running_loop()
        start = loop.time()
        limit = min(deadline, start + m.timeout)  # this backend's own deadline, all attempts included
        try:
            async with asyncio.timeout_at(limit):
                raw = await self._call(m, evidence, nonce, limit)
        except TimeoutError:
            return Vote(b.name, b.operator, b.kind, Outcome.TIMEOUT, detail=f"no answer within {m.timeout}s")
        except Error as exc:
            return Vote(b.name, b.operator, b.kind, outcome_of(exc), detail=str(exc))
        except Exception as exc:  # a backend bug is a recorded outcome, never a federation crash
            return Vote(b.name, b.operator, b.kind, Outcome.ERROR, detail=f"backend raised {type(exc).__name__}")
        latency = (loop.time() - start) * 1000
        if not isinstance(raw, RawResult) or not isinstance(raw.token, bytes):
            return Vote(b.name, b.operator, b.kind, Outcome.MALFORMED, detail="backend returned no token",
                        latency_ms=latency)
        try:
            check = Check(m.anchor, nonce, when, m.max_age, m.leeway, binding, getattr(b, "expect", None) or {})
            verified = normalize(raw, check, kind=b.kind)
            ear = _renamed(verified.ear, m.rename)
        except Error as exc:
            return Vote(b.name, b.operator, b.kind, outcome_of(exc), detail=str(exc), raw=raw.token,
                        media_type=raw.media_type, latency_ms=latency)
        except Exception as exc:  # a parser bug must not crash the federation either; record it
            return Vote(b.name, b.operator, b.kind, Outcome.ERROR, detail=f"normalizer raised {type(exc).__name__}",
                        raw=raw.token, media_type=raw.media_type, latency_ms=latency)
        strength = BindingStrength(verified.binding)
        if strength.weak and not self.policy.weak_binding:
            return Vote(b.name, b.operator, b.kind, Outcome.WEAK_BINDING, raw=raw.token, media_type=raw.media_type,
                        key_thumbprint=verified.key.thumbprint, latency_ms=latency, binding=strength.value,
                        detail=f"verified ({verified.ear.status.label}), but bound to the session only by an echoed "
                               "nonce; the policy does not count such votes (quorum.weak_binding)")
        return Vote(b.name, b.operator, b.kind, Outcome.OK, ear=ear,
                    raw=raw.token, media_type=raw.media_type, key_thumbprint=verified.key.thumbprint,
                    latency_ms=latency, binding=strength.value)


def _renamed(ear: Ear, rename: Mapping[str, str]) -> Ear:
    if not rename:
        return ear
    submods = {rename.get(n, n): a for n, a in ear.submods.items()}
    if len(submods) != len(ear.submods):  # two submods under one name: one would silently vanish
        raise MalformedError("rename maps two of the result's submods to one name")
    return replace(ear, submods=submods)
