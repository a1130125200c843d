"""Randomized fault trials with the ground truth: shared by ``tests/test_faults.py`` and ``bench/faults.py``.

A *trial* is one :meth:`federation.Federation.appraise` over a random quorum configuration (k, n,
veto, wait, distinct operators, operators drawn from a small pool so that distinctness bites, a
deadline, and per backend a timeout and a retry count) whose backends each suffer a random fault
(:class:`faultproxy.Plan`). Two kinds:

* **in-process**: every backend a :class:`FaultyVerifier`, which implements the real Backend
  protocol and signs real EARs (JWT or CWT) with its own key; its faults are what the HTTP layer
  would hand the engine (a typed transport error, a hang, bytes that are not a token) or a
  validly signed lie (a replay, another session's result, an expired result, a rotated-out key,
  a tampered payload), so the engine's real checks are what catch them;
* **proxy**: 1-4 ``kind = "veraison"`` backends reaching real ``ratsfed serve`` verifier processes
  through :class:`faultproxy.FaultProxy`, plus 0-2 in-process ones (so that votes disagree).

The ground truth is known because the faults were injected: a backend's vote may count only if
the token it carries is one the verifier genuinely issued for this appraisal's nonce
(:attr:`FaultyVerifier.issued`, :meth:`faultproxy.FaultProxy.take_genuine`). :func:`judge` checks,
for every trial:

1. *answered*: ``appraise`` returned a result (no exception), with exactly one vote per backend;
2. *in time*: it returned by the deadline plus :data:`MARGIN`;
3. *never better than the verified votes allow*: no vote counted ``ok`` whose token was not
   genuine; the combined status, every submodule's status and every trust-vector claim are no
   better than :func:`federation.quorum.decide` over the genuine ``ok`` votes (orders as in
   ``tests/test_quorum_properties.py``); and the signed token passes
   ``verify_result(reverify=True)`` under the verifiers' own keys with that same status;
4. *the right outcome*: each backend's outcome is one its fault allows (:func:`allowed`); a miss is
   reported as *unexpected*, apart from the safety checks above.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import time
from collections import Counter, deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import aiohttp
from faultproxy import LYING, Attester, Liar, Mode, Plan, VerifierCluster, http_date

from federation.ar4si import Tier, TrustVector
from federation.ear import Appraisal, Ear, Spelling, VerifierId, encode_ear
from federation.engine import Federation, Member
from federation.errors import BackendHTTPError, BackendTimeoutError, BackendUnreachableError, Error
from federation.evidence import Evidence
from federation.keys import SigningKey, TrustAnchor, load_trust_anchor
from federation.quorum import Decision, QuorumPolicy, claim_order, decide
from federation.result import AppraisalResult, verify_result
from federation.votes import Outcome, Vote
from verifiers.base import RawResult
from verifiers.remote import CircuitBreaker, RetryAfterError, VeraisonBackend
from verifiers.remote.http import parse_retry_after

__all__ = [
    "MARGIN",
    "BackendSpec",
    "FaultyVerifier",
    "KeyPool",
    "ProxyLane",
    "SERVICES",
    "ServiceConfig",
    "ServiceLane",
    "Tally",
    "TrialResult",
    "TrialSpec",
    "allowed",
    "judge",
    "random_plan",
    "random_policy",
    "random_trial",
    "run_inprocess",
    "run_proxy",
    "run_service",
    "status_key",
]

MARGIN = 0.25  # seconds: every appraisal must return by its deadline plus this
SUBMODS = ("PSA_IOT", "TDX", "SEV_SNP")
EVIDENCE = Evidence("application/psa-attestation-token", b"\xd2evidence bytes of the fault trials")
# Backend-side failures the engine retries (verifiers.remote.http / engine._transient).
TRANSIENT = frozenset({Mode.REFUSE, Mode.RESET, Mode.HTTP_5XX, Mode.HTTP_429, Mode.FLAP})
BASE_OUTCOMES: dict[Mode, frozenset[Outcome]] = {
    Mode.PASS: frozenset({Outcome.OK}),
    Mode.REFUSE: frozenset({Outcome.UNREACHABLE}),
    Mode.RESET: frozenset({Outcome.UNREACHABLE, Outcome.MALFORMED}),  # cut in the head or in the body
    Mode.LATENCY: frozenset({Outcome.OK, Outcome.TIMEOUT}),
    Mode.HANG: frozenset({Outcome.TIMEOUT}),
    Mode.TRUNCATE: frozenset({Outcome.MALFORMED, Outcome.BAD_SIGNATURE}),  # a cut token: unparsable or bad sig
    Mode.GARBAGE: frozenset({Outcome.MALFORMED}),
    Mode.HTTP_5XX: frozenset({Outcome.HTTP_ERROR}),
    Mode.HTTP_429: frozenset({Outcome.HTTP_ERROR}),
    Mode.FLAP: frozenset({Outcome.OK, Outcome.HTTP_ERROR, Outcome.UNREACHABLE}),
    Mode.REPLAY: frozenset({Outcome.NONCE_MISMATCH}),
    Mode.OTHER_SESSION: frozenset({Outcome.NONCE_MISMATCH}),
    Mode.EXPIRED: frozenset({Outcome.STALE}),
    Mode.ROTATED_KEY: frozenset({Outcome.UNTRUSTED_KEY}),
    Mode.TAMPER: frozenset({Outcome.BAD_SIGNATURE}),
    Mode.BUG: frozenset({Outcome.ERROR}),
    Mode.STUBBORN: frozenset({Outcome.TIMEOUT}),
}
PROXY_MODES = tuple(m for m in Mode if m not in (Mode.PASS, Mode.BUG, Mode.STUBBORN))
INPROCESS_MODES = tuple(m for m in Mode if m is not Mode.PASS)
VECTORS: dict[Tier, tuple[tuple[str, tuple[int, ...]], ...]] = {
    Tier.AFFIRMING: (("instance-identity", (2,)), ("executables", (2, 3)), ("hardware", (2, 3)),
                     ("configuration", (0, 2))),
    Tier.WARNING: (("instance-identity", (2,)), ("executables", (32, 33)), ("hardware", (2, 32)),
                   ("configuration", (0, 36))),
    Tier.CONTRAINDICATED: (("instance-identity", (2, 96, 97)), ("executables", (33, 99)), ("hardware", (2, 97)),
                           ("configuration", (99,))),
    Tier.NONE: (("instance-identity", (0,)),),
}


# --- orders (as in tests/test_quorum_properties.py) -------------------------------------------------

def status_key(t: Tier, policy: QuorumPolicy) -> int:
    """Larger is better. With veto a contraindicated result is the strongest negative statement;
    without it, contraindicated and none share the bottom."""
    if policy.veto:
        return {Tier.CONTRAINDICATED: 0, Tier.NONE: 1, Tier.WARNING: 2, Tier.AFFIRMING: 3}[t]
    return {Tier.CONTRAINDICATED: 0, Tier.NONE: 0, Tier.WARNING: 2, Tier.AFFIRMING: 3}[t]


# --- in-process fault-injecting backends --------------------------------------------------------------

@dataclass(frozen=True)
class KeyPool:
    """Result-signing keys by backend slot: (current, rotated-out), made once per run."""

    keys: tuple[tuple[SigningKey, SigningKey], ...]
    history: tuple[deque[bytes], ...]  # per slot: genuine tokens of earlier trials (what a replay replays)

    @classmethod
    def make(cls, slots: int = 8) -> KeyPool:
        return cls(tuple((SigningKey.generate("ES256"), SigningKey.generate("ES256")) for _ in range(slots)),
                   tuple(deque(maxlen=8) for _ in range(slots)))

    def anchor(self, slot: int) -> TrustAnchor:
        return TrustAnchor((self.keys[slot][0].public,))


class FaultyVerifier:
    """A verifier backend (the real Backend protocol, real keys and signatures) with one fault."""

    def __init__(self, name: str, operator: str, key: SigningKey, old_key: SigningKey,
                 submods: Mapping[str, tuple[Tier, Mapping[str, int]]], plan: Plan, *,
                 fmt: Literal["jwt", "cwt"] = "jwt", history: deque[bytes] | None = None,
                 rng: random.Random | None = None) -> None:
        self.name = name
        self.operator = operator
        self.kind = "faulty"
        self.key = key
        self.liar = Liar(key, old_key)
        self.submods = dict(submods)
        self.plan = plan
        self.fmt: Literal["jwt", "cwt"] = fmt
        self.history: deque[bytes] = history if history is not None else deque(maxlen=8)
        self.rng = rng or random.Random(0)
        self.issued: set[bytes] = set()  # the genuine tokens this backend issued (ground truth)
        self.injected: Counter[str] = Counter()
        self.calls = 0
        self._hits = 0
        self._flaps = 0

    @property
    def media_type(self) -> str:
        return "application/eat+jwt" if self.fmt == "jwt" else "application/eat+cwt"

    def genuine(self, nonce: bytes) -> bytes:
        ear = Ear(Spelling.VERAISON.profile, int(time.time()), VerifierId("fault-trials", self.name),
                  {n: Appraisal.make(t, TrustVector.of(v)) for n, (t, v) in self.submods.items()}, nonce=nonce)
        token = encode_ear(ear, self.key, fmt=self.fmt)
        self.issued.add(token)
        return token

    def _mode(self) -> Mode:
        p = self.plan
        if p.mode is Mode.PASS or (p.times is not None and self._hits >= p.times):
            return Mode.PASS
        mode = p.mode
        if mode is Mode.FLAP:
            self._flaps += 1
            if self._flaps % 2 == 0:
                return Mode.PASS
            mode = Mode.REFUSE if p.flap_with == "refuse" else Mode.HTTP_5XX
        self._hits += 1
        self.injected[p.mode.value] += 1
        return mode

    async def appraise(self, evidence: Evidence, nonce: bytes, deadline: float) -> RawResult:
        self.calls += 1
        token = self.genuine(nonce)
        p = self.plan
        mode = self._mode()
        if mode is Mode.PASS:
            return RawResult(token, self.media_type)
        if mode is Mode.REFUSE:
            raise BackendUnreachableError("connection refused")
        if mode is Mode.RESET:
            await asyncio.sleep(0.002)
            raise BackendUnreachableError("connection reset by peer")
        if mode is Mode.LATENCY:
            await asyncio.sleep(p.latency + self.rng.uniform(0, p.jitter))
            return RawResult(token, self.media_type)
        if mode is Mode.HANG:
            await asyncio.sleep(p.hang)
            raise BackendTimeoutError("no answer in time")
        if mode is Mode.TRUNCATE:
            return RawResult(token[: self.rng.randint(1, len(token) - 1)], self.media_type)
        if mode is Mode.GARBAGE:
            junk = b"<html><body>502 Bad Gateway</body></html>" if p.variant == "html" else self.rng.randbytes(
                self.rng.randint(1, 400))
            return RawResult(junk, self.media_type)
        if mode in (Mode.HTTP_5XX, Mode.HTTP_429):
            status = 429 if mode is Mode.HTTP_429 else p.status
            after = parse_retry_after(p.retry_after)
            if after is not None:
                raise RetryAfterError(f"HTTP {status}", status=status, retry_after=after)
            raise BackendHTTPError(f"HTTP {status}", status=status)
        if mode is Mode.BUG:
            raise RuntimeError("backend bug")
        if mode is Mode.STUBBORN:
            try:
                await asyncio.sleep(p.hang)
            except asyncio.CancelledError:  # a slow clean-up on the way out, deaf to further cancellation
                loop = asyncio.get_running_loop()
                end = loop.time() + p.latency
                while (left := end - loop.time()) > 0:
                    with contextlib.suppress(asyncio.CancelledError):
                        await asyncio.sleep(left)
                raise
            raise BackendTimeoutError("no answer in time")
        return RawResult(self._lie(mode, token), self.media_type)

    def _lie(self, mode: Mode, token: bytes) -> bytes:
        if mode is Mode.REPLAY:
            earlier = [t for t in self.history if t not in self.issued]
            if earlier:
                return self.rng.choice(earlier)
            return self.liar.resign(token, key=self.key, nonce=os.urandom(32))
        if mode is Mode.OTHER_SESSION:
            return self.liar.resign(token, key=self.key, nonce=os.urandom(32))
        if mode is Mode.EXPIRED:
            return self.liar.expired(token, self.plan.variant or "old", int(time.time()))
        if mode is Mode.ROTATED_KEY:
            assert self.liar.old_key is not None
            return self.liar.resign(token, key=self.liar.old_key)
        assert mode is Mode.TAMPER
        return self.liar.tamper(token)

    def done(self) -> None:
        """After the trial: its genuine tokens become history (what later replays replay)."""
        self.history.extend(self.issued)


# --- trial specifications -------------------------------------------------------------------------------

@dataclass(frozen=True)
class BackendSpec:
    name: str
    operator: str
    timeout: float
    retries: int
    plan: Plan
    proxied: str | None = None  # verifier process name when reached through a proxy
    slot: int = 0
    fmt: Literal["jwt", "cwt"] = "jwt"
    submods: Mapping[str, tuple[Tier, Mapping[str, int]]] = field(default_factory=dict)


Kind = Literal["in-process", "proxy", "service"]


@dataclass(frozen=True)
class TrialSpec:
    index: int
    kind: Kind
    policy: QuorumPolicy
    deadline: float
    backends: tuple[BackendSpec, ...]
    nonce: bytes
    variant: str = "good"  # the attester's Evidence (proxy and service trials)
    federator: int = 0  # service trials: which federator process (SERVICES)

    def describe(self) -> str:
        faults = ", ".join(f"{b.name}:{b.plan.describe()}" for b in self.backends)
        return f"#{self.index} {self.kind} {self.policy.describe()} deadline {self.deadline:.2f}s [{faults}]"


def _submods(rng: random.Random) -> dict[str, tuple[Tier, dict[str, int]]]:
    names = rng.sample(SUBMODS[:2], rng.choice((1, 1, 2)))
    out = {}
    for n in names:
        tier = rng.choices((Tier.AFFIRMING, Tier.WARNING, Tier.CONTRAINDICATED, Tier.NONE), (6, 2, 1.5, 0.5))[0]
        out[n] = (tier, {c: rng.choice(vals) for c, vals in VECTORS[tier]})
    return out


def random_plan(rng: random.Random, timeout: float, deadline: float, modes: Sequence[Mode], *,
                p_pass: float = 0.35, proxied: bool = False) -> Plan:
    if rng.random() < p_pass:
        return Plan()
    mode = rng.choice(modes)
    budget = min(timeout, deadline)
    variant = ""
    if mode is Mode.TRUNCATE:
        variant = rng.choice(("", "short"))
    elif mode is Mode.GARBAGE:
        variant = rng.choice(("", "html"))
    elif mode is Mode.EXPIRED:
        variant = rng.choice(("old", "exp", "future"))
    scope: Literal["request", "connection"] = "request"
    if proxied and mode in (Mode.REFUSE, Mode.LATENCY, Mode.FLAP) and rng.random() < 0.3:
        scope = "connection"
    target: Literal["evidence", "newSession", "any"] = "evidence"
    if proxied and mode not in LYING:
        target = rng.choice(("evidence", "evidence", "newSession", "any"))
    return Plan(
        mode, target=target, scope=scope, times=rng.choice((None, None, 1, 2)),
        latency=rng.uniform(0, 1.5 * budget), jitter=rng.uniform(0, 0.2 * budget),
        hang=deadline + 0.5, status=rng.choice((500, 502, 503, 504)),
        retry_after=rng.choice((None, "0", "1", "3", http_date(1.0))),
        flap_with=rng.choice(("http-5xx", "refuse")), variant=variant)


def random_policy(rng: random.Random, n: int) -> tuple[QuorumPolicy, list[str]]:
    pool = rng.randint(1, n)
    operators = [f"op{rng.randrange(pool)}" for _ in range(n)]
    distinct = rng.random() < 0.5
    reach = len(set(operators)) if distinct else n
    k = rng.randint(1, reach)
    wait: Literal["all", "quorum"] = rng.choice(("all", "quorum"))
    return QuorumPolicy(k, n, veto=rng.random() < 0.7, wait=wait, distinct_operators=distinct,
                        id="fault-trials"), operators


@dataclass(frozen=True)
class ServiceConfig:
    """One ``ratsfed serve`` federator process of the service trials: its policy and its members'
    timeouts, retries and operators (members: every verifier of the cluster, in order)."""

    policy: QuorumPolicy
    deadline: float
    timeouts: tuple[float, ...]
    retries: tuple[int, ...]
    operators: tuple[str, ...]


SERVICES = (
    ServiceConfig(QuorumPolicy(2, 4, veto=True, wait="all", distinct_operators=True, id="svc-a"), 1.2,
                  (0.8, 0.8, 0.6, 1.0), (1, 1, 0, 2), ("acme", "globex", "initech", "initech")),
    ServiceConfig(QuorumPolicy(3, 4, veto=True, wait="quorum", id="svc-b"), 1.0,
                  (0.6, 0.6, 0.6, 0.6), (0, 0, 1, 1), ("acme", "acme", "globex", "initech")),
    ServiceConfig(QuorumPolicy(1, 4, veto=False, wait="quorum", distinct_operators=True, id="svc-c"), 0.8,
                  (1.0, 0.5, 0.7, 0.9), (2, 0, 1, 1), ("acme", "globex", "initech", "umbrella")),
    ServiceConfig(QuorumPolicy(4, 4, veto=True, wait="all", id="svc-d"), 1.5,
                  (1.0, 1.2, 0.4, 0.8), (1, 0, 2, 1), ("acme", "globex", "initech", "umbrella")),
)


def random_trial(seed: int | str, index: int, kind: Kind, *,
                 proxied_names: Sequence[str] = (), slots: int = 8) -> TrialSpec:
    """Trial *index* of the campaign with *seed*: the same (seed, index) gives the same spec."""
    rng = random.Random(f"{seed}:{kind}:{index}")
    if kind == "service":
        f = index % len(SERVICES)  # the federators take turns
        svc = SERVICES[f]
        svc_backends = tuple(
            BackendSpec(name, svc.operators[i], svc.timeouts[i], svc.retries[i],
                        random_plan(rng, svc.timeouts[i], svc.deadline, PROXY_MODES, p_pass=0.45, proxied=True),
                        name, i)
            for i, name in enumerate(proxied_names))
        variant = rng.choices(Attester.VARIANTS, (6, 2, 1, 1))[0]
        return TrialSpec(index, kind, svc.policy, svc.deadline, svc_backends, rng.randbytes(32), variant, f)
    if kind == "in-process":
        n = rng.choices(range(1, 8), (1, 3, 5, 4, 3, 1, 1))[0]
        deadline = rng.uniform(0.15, 0.6)
        proxied = 0
    else:
        proxied = rng.randint(1, min(4, len(proxied_names) or 1))
        n = proxied + rng.choice((0, 0, 1, 2))
        deadline = rng.uniform(0.5, 1.5)
    policy, operators = random_policy(rng, n)
    backends = []
    for i in range(n):
        via = proxied_names[i % len(proxied_names)] if i < proxied else None
        timeout = rng.uniform(0.3, 1.3 * deadline) if via else rng.uniform(0.1, 1.3 * deadline)
        retries = rng.choice((0, 1, 1, 2))
        modes = PROXY_MODES if via else INPROCESS_MODES
        plan = random_plan(rng, timeout, deadline, modes, proxied=via is not None)
        backends.append(BackendSpec(
            f"{'p' if via else 'f'}{i}", operators[i], timeout, retries, plan, via, i % slots,
            rng.choice(("jwt", "jwt", "cwt")), {} if via else _submods(rng)))
    variant = rng.choices(Attester.VARIANTS, (6, 2, 1, 1))[0] if kind == "proxy" else "good"
    return TrialSpec(index, kind, policy, deadline, tuple(backends), rng.randbytes(32), variant)


def allowed(b: BackendSpec, wait: str, *, breaker_open: bool = False) -> frozenset[Outcome]:
    """The outcomes backend *b*'s fault may end in (see the module docstring, check 4)."""
    p = b.plan
    out = set(BASE_OUTCOMES[p.mode])
    if p.mode in TRANSIENT and b.retries > 0:
        # The wait before a retry ends before the deadline by design, but on a busy event loop the
        # deadline can fire first: then the vote is a timeout (no safety issue: it does not count).
        out.add(Outcome.TIMEOUT)
        if p.times is not None or p.scope == "connection":
            out.add(Outcome.OK)  # the retry may pass
    if p.mode is Mode.FLAP and b.retries == 0 and p.scope == "request":
        out.discard(Outcome.OK)
    if b.proxied is not None and p.mode is Mode.OTHER_SESSION:
        out.add(Outcome.TIMEOUT)  # the proxy runs a whole other session before it answers
    # A retry after the verifier appraised but its answer was lost on the way back (reset, refused
    # per connection...) is a new session under the same nonce with the same Evidence: the verifier
    # answers it (one nonce, one Evidence: an idempotent retry), so no HTTP 409 is allowed for it.
    if wait == "quorum":
        out.add(Outcome.NOT_AWAITED)
    if breaker_open:
        out.add(Outcome.UNREACHABLE)  # "circuit open": an earlier trial tripped the breaker
    return frozenset(out)


# --- judging one trial --------------------------------------------------------------------------------

@dataclass
class TrialResult:
    spec: TrialSpec
    elapsed: float  # seconds from calling appraise to its return
    status: str | None  # combined status (None: unanswered)
    bound: str | None  # decide() over the genuine ok votes
    outcomes: list[tuple[str, str, str, bool]]  # (backend, mode, outcome, allowed)
    violations: list[str] = field(default_factory=list)  # safety: better than allowed, lie counted, ...
    unexpected: list[str] = field(default_factory=list)  # an outcome outside its fault's allowed set
    error: str | None = None  # unanswered: what appraise raised

    @property
    def lateness(self) -> float:
        return self.elapsed - self.spec.deadline

    @property
    def late(self) -> bool:
        return self.lateness > MARGIN


def _decode(raw: bytes) -> Ear:
    return Liar.decode(raw)[1]


def _no_better(result: Decision, bound: Decision, policy: QuorumPolicy) -> list[str]:
    out = []
    if status_key(result.status, policy) > status_key(bound.status, policy):
        out.append(f"combined {result.status.label} is better than the verified votes allow ({bound.status.label})")
    for name, d in result.submods.items():
        b = bound.submods.get(name)
        if b is None:
            if d.status is not Tier.NONE and d.status is not Tier.CONTRAINDICATED:
                out.append(f"submod {name} {d.status.label} has no verified support")
            continue
        if status_key(d.status, policy) > status_key(b.status, policy):
            out.append(f"submod {name} {d.status.label} better than {b.status.label}")
        for claim, value in d.trust_vector:
            if claim_order(value) > claim_order(b.trust_vector.get(claim)):
                out.append(f"submod {name} claim {claim}={value} better than {b.trust_vector.get(claim)}")
    return out


def judge(spec: TrialSpec, result: AppraisalResult | None, elapsed: float, genuine: Mapping[str, set[bytes]],
          fed_anchor: TrustAnchor, anchors: Mapping[str, TrustAnchor], *, error: str | None = None,
          breaker_open: Mapping[str, bool] | None = None,
          expected_status: Mapping[str, Tier] | None = None) -> TrialResult:
    """Check one trial (module docstring, checks 1-4)."""
    if result is None:
        return TrialResult(spec, elapsed, None, None, [], [f"unanswered: {error}"], [], error or "no result")
    out = TrialResult(spec, elapsed, result.status, None, [])
    votes = {v.backend: v for v in result.votes}
    if len(result.votes) != len(spec.backends) or set(votes) != {b.name for b in spec.backends}:
        out.violations.append("the result does not hold exactly one vote per backend")
    bound_votes: list[Vote] = []
    for b in spec.backends:
        v = votes.get(b.name)
        if v is None:
            continue
        ok_allowed = allowed(b, spec.policy.wait, breaker_open=bool((breaker_open or {}).get(b.name)))
        fine = v.outcome in ok_allowed
        out.outcomes.append((b.name, b.plan.mode.value, v.outcome.value, fine))
        if not fine:
            out.unexpected.append(f"{b.name} {b.plan.describe()}: {v.outcome.value} ({v.detail})")
        if v.ok:
            if v.raw is None or v.raw not in genuine.get(b.name, set()):
                out.violations.append(f"{b.name}: a result that is not genuine was counted ({b.plan.describe()})")
                bound_votes.append(Vote(b.name, v.operator, v.kind, Outcome.ERROR, detail="not genuine"))
                continue
            ear = _decode(v.raw)
            if expected_status is not None and b.name in expected_status and ear.status is not expected_status[b.name]:
                out.unexpected.append(f"{b.name}: the verifier said {ear.status.label}, "
                                      f"expected {expected_status[b.name].label}")
            bound_votes.append(Vote(b.name, v.operator, v.kind, Outcome.OK, ear=ear, raw=v.raw))
        else:
            bound_votes.append(Vote(b.name, v.operator, v.kind, v.outcome, detail=v.detail))
    bound = decide(spec.policy, bound_votes)
    out.bound = bound.status.label
    out.violations += _no_better(result.decision, bound, spec.policy)
    try:
        checked = verify_result(result.token, fed_anchor, nonce=spec.nonce, reverify=True, anchors=anchors)
    except Error as exc:
        out.violations.append(f"the combined token does not re-verify: {exc}")
    else:
        if checked.status != result.status or checked.decision is None:
            out.violations.append(f"the token says {checked.status}, the result {result.status}")
        elif status_key(checked.decision.status, spec.policy) > status_key(bound.status, spec.policy):
            out.violations.append("the re-verified token is better than the verified votes allow")
    if out.late:
        out.violations.append(f"answered {out.lateness * 1000:.0f} ms after the deadline (margin {MARGIN * 1000:.0f})")
    return out


# --- running trials -----------------------------------------------------------------------------------

async def _timed(fed: Federation, evidence: Evidence, nonce: bytes) -> tuple[AppraisalResult | None, float, str | None]:
    loop = asyncio.get_running_loop()
    start = loop.time()
    try:
        result = await fed.appraise(evidence, nonce)
    except Exception as exc:  # an unanswered request: the very thing the campaign counts
        return None, loop.time() - start, f"{type(exc).__name__}: {exc}"
    return result, loop.time() - start, None


FED_KEY = SigningKey.generate("ES256")


async def run_inprocess(spec: TrialSpec, pool: KeyPool) -> TrialResult:
    """One in-process trial: every backend a :class:`FaultyVerifier`."""
    rng = random.Random(f"{spec.index}:{spec.nonce.hex()}")
    backends = [FaultyVerifier(b.name, b.operator, *pool.keys[b.slot], b.submods, b.plan, fmt=b.fmt,
                               history=pool.history[b.slot], rng=rng) for b in spec.backends]
    members = [Member(f, pool.anchor(b.slot), timeout=b.timeout, retries=b.retries)
               for f, b in zip(backends, spec.backends, strict=True)]
    fed = Federation(members, spec.policy, FED_KEY, federation_id="fault-trials", deadline=spec.deadline)
    result, elapsed, error = await _timed(fed, EVIDENCE, spec.nonce)
    # The relying party's checks run in a worker thread: they are not the federator's work, and on
    # the event loop they would delay the deadlines of the trials running concurrently.
    verdict = await asyncio.to_thread(
        judge, spec, result, elapsed, {f.name: f.issued for f in backends}, TrustAnchor((FED_KEY.public,)),
        {b.name: pool.anchor(b.slot) for b in spec.backends}, error=error)
    for f in backends:
        f.done()
    return verdict


class ProxyLane:
    """Proxies (one per backend slot, each in front of a verifier process) and their backends, for
    proxy trials run one after another. Backends keep their connection pools and circuit breakers
    from trial to trial, as a long-running federator's do."""

    def __init__(self, cluster: VerifierCluster, *, seed: int | str = 0,
                 breaker: Callable[[], CircuitBreaker] = lambda: CircuitBreaker(3, 1.0)) -> None:
        self.cluster = cluster
        self.names = list(cluster.verifiers)
        # One proxy per verifier: the proxied backends of one trial reach distinct verifiers (two
        # backends of one federation on one verifier would present it the same nonce twice).
        self.proxies = [cluster.proxy(n, rng=random.Random(f"{seed}:proxy:{i}")) for i, n in enumerate(self.names)]
        self.backends: list[VeraisonBackend] = []
        self.pool = KeyPool.make(3)
        self.injected: Counter[str] = Counter()
        self._breaker = breaker

    async def start(self) -> None:
        for p in self.proxies:
            await p.start()
            self.backends.append(VeraisonBackend(f"p{len(self.backends)}", "op", p.url, breaker=self._breaker()))

    async def aclose(self) -> None:
        for b in self.backends:
            await b.aclose()
        for p in self.proxies:
            self.injected.update(p.injected)
            await p.aclose()

    async def __aenter__(self) -> ProxyLane:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


async def run_proxy(spec: TrialSpec, lane: ProxyLane) -> TrialResult:
    """One proxy trial: the proxied backends through *lane*, the others in process."""
    rng = random.Random(f"{spec.index}:{spec.nonce.hex()}")
    members: list[Member] = []
    anchors: dict[str, TrustAnchor] = {}
    fakes: list[FaultyVerifier] = []
    expected: dict[str, Tier] = {}
    breaker_open: dict[str, bool] = {}
    used: list[tuple[int, BackendSpec]] = []
    for i, b in enumerate(spec.backends):
        if b.proxied is not None:
            proxy, backend = lane.proxies[i], lane.backends[i]
            assert proxy.upstream == lane.cluster.verifiers[b.proxied].url
            backend.name, backend.operator = b.name, b.operator
            anchor = lane.cluster.verifiers[b.proxied].anchor
            proxy.arm(b.plan, spec.nonce)
            breaker_open[b.name] = not backend.breaker.healthy
            expected[b.name] = lane.cluster.expected_status(b.proxied, spec.variant)
            members.append(Member(backend, anchor, timeout=b.timeout, retries=b.retries))
            used.append((i, b))
        else:
            slot = b.slot % len(lane.pool.keys)
            f = FaultyVerifier(b.name, b.operator, *lane.pool.keys[slot], b.submods, b.plan, fmt=b.fmt,
                               history=lane.pool.history[slot], rng=rng)
            fakes.append(f)
            anchor = lane.pool.anchor(slot)
            members.append(Member(f, anchor, timeout=b.timeout, retries=b.retries))
        anchors[b.name] = anchor
    fed = Federation(members, spec.policy, FED_KEY, federation_id="fault-trials", deadline=spec.deadline)
    evidence = lane.cluster.attester.evidence(spec.nonce, spec.variant)
    try:
        result, elapsed, error = await _timed(fed, evidence, spec.nonce)
    finally:
        for i, _ in used:
            lane.proxies[i].disarm()
    genuine: dict[str, set[bytes]] = {f.name: f.issued for f in fakes}
    for i, b in used:
        genuine[b.name] = lane.proxies[i].take_genuine(spec.nonce)
        breaker_open[b.name] = breaker_open[b.name] or not lane.backends[i].breaker.healthy
    verdict = judge(spec, result, elapsed, genuine, TrustAnchor((FED_KEY.public,)), anchors, error=error,
                    breaker_open=breaker_open, expected_status=expected)
    for f in fakes:
        f.done()
    return verdict


class ServiceLane:
    """The federator processes of :data:`SERVICES`, each reaching every verifier of the cluster
    through proxies of its own (``kind = "veraison"`` members, breakers at 3 failures and 1 s), and
    a relying party's HTTP client. Each federator serves one trial at a time."""

    def __init__(self, cluster: VerifierCluster, *, seed: int | str = 0) -> None:
        self.cluster = cluster
        self.names = list(cluster.verifiers)
        self.proxies = [[cluster.proxy(n, rng=random.Random(f"{seed}:svc:{f}:{i}")) for i, n in enumerate(self.names)]
                        for f in range(len(SERVICES))]
        self.urls: list[str] = []
        self.federation: TrustAnchor | None = None
        self.injected: Counter[str] = Counter()
        self.http: aiohttp.ClientSession | None = None
        self._procs: list[Any] = []

    async def start(self) -> None:
        from process_helpers import start_servers

        for row in self.proxies:
            for p in row:
                await p.start()
        root = self.cluster.root
        key = await asyncio.to_thread(self.cluster.generate_key, "federation")
        self.federation = load_trust_anchor(key.parent / "public.jwk")
        specs = []
        for f, svc in enumerate(SERVICES):
            path = root / f"federator-{f}.toml"
            path.write_text(federator_config(svc, key, self.names, [p.url for p in self.proxies[f]],
                                             [self.cluster.verifiers[n].anchor_path for n in self.names], f))
            specs.append((f"federator-{f}", path))
        await asyncio.to_thread(start_servers, specs, root / "logs", self._procs, 60.0)
        self.urls = [p.url for p in self._procs]
        self.http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30))

    async def aclose(self) -> None:
        from process_helpers import stop_all

        if self.http is not None:
            await self.http.close()
        left = await asyncio.to_thread(stop_all, self._procs)
        for row in self.proxies:
            for p in row:
                self.injected.update(p.injected)
                await p.aclose()
        if left:
            raise AssertionError(f"federator processes left behind: {left}")

    async def __aenter__(self) -> ServiceLane:
        try:
            await self.start()
        except BaseException:
            await self.aclose()
            raise
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


def federator_config(svc: ServiceConfig, key: Any, names: Sequence[str], urls: Sequence[str],
                     anchors: Sequence[Any], index: int) -> str:
    p = svc.policy
    members = "".join(f"""
[[verifiers]]
name = "{n}"
kind = "veraison"
operator = "{svc.operators[i]}"
trust_anchor = "{anchors[i]}"
timeout = {svc.timeouts[i]}
retries = {svc.retries[i]}
options = {{ url = "{urls[i]}", breaker_failures = 3, breaker_cooldown = 1 }}
""" for i, n in enumerate(names))
    return f"""
[federation]
id = "fault-federator-{index}"
signing_key = "{key}"
deadline = {svc.deadline}

[quorum]
k = {p.k}
veto = {str(p.veto).lower()}
wait = "{p.wait}"
distinct_operators = {str(p.distinct_operators).lower()}
policy_id = "{p.id}"

[server]
role = "federator"
port = 0
{members}"""


async def run_service(spec: TrialSpec, lane: ServiceLane) -> TrialResult:
    """One service trial: a relying party's ``POST /v1/appraise`` to federator process
    ``spec.federator``; the votes, the genuine results and the bound are read from the token's
    provenance (every vote's raw result is embedded), re-verified under the verifiers' keys."""
    assert lane.http is not None and lane.federation is not None
    proxies = lane.proxies[spec.federator]
    for p, b in zip(proxies, spec.backends, strict=True):
        p.arm(b.plan, spec.nonce)
    evidence = lane.cluster.attester.evidence(spec.nonce, spec.variant)
    loop = asyncio.get_running_loop()
    start = loop.time()
    doc: Any = None
    error: str | None = None
    try:
        async with lane.http.post(f"{lane.urls[spec.federator]}/v1/appraise?nonce={spec.nonce.hex()}",
                                  data=evidence.data, headers={"Content-Type": evidence.media_type,
                                                               "Accept": "application/json"}) as resp:
            body = await resp.read()
            if resp.status != 200:
                error = f"HTTP {resp.status}: {body[:200]!r}"
            else:
                doc = json.loads(body)
    except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
        error = f"{type(exc).__name__}: {exc}"
    elapsed = loop.time() - start
    for p in proxies:
        p.disarm()
    genuine = {b.name: p.take_genuine(spec.nonce) for p, b in zip(proxies, spec.backends, strict=True)}
    anchors = {n: v.anchor for n, v in lane.cluster.verifiers.items()}
    expected = {b.name: lane.cluster.expected_status(b.name, spec.variant) for b in spec.backends}
    if doc is None:
        return judge(spec, None, elapsed, genuine, lane.federation, anchors, error=error)
    return await asyncio.to_thread(_judge_service, spec, doc, elapsed, genuine, lane.federation, anchors, expected)


def _judge_service(spec: TrialSpec, doc: Mapping[str, Any], elapsed: float, genuine: Mapping[str, set[bytes]],
                   fed_anchor: TrustAnchor, anchors: Mapping[str, TrustAnchor], expected: Mapping[str, Tier]
                   ) -> TrialResult:
    """Rebuild the appraisal's result from the token (the relying party's view) and judge it."""
    try:
        checked = verify_result(doc["token"], fed_anchor, nonce=spec.nonce, reverify=True, anchors=anchors)
        assert checked.provenance is not None and checked.decision is not None
    except (Error, KeyError, AssertionError) as exc:
        out = TrialResult(spec, elapsed, doc.get("status"), None, [])
        out.violations.append(f"the combined token does not re-verify: {exc}")
        return out
    votes: list[Vote] = []
    for rec in checked.provenance.votes:
        if rec.outcome is Outcome.OK:
            assert rec.result is not None
            votes.append(Vote(rec.name, rec.operator, rec.kind, Outcome.OK, ear=_decode(rec.result), raw=rec.result))
        else:
            votes.append(Vote(rec.name, rec.operator, rec.kind, rec.outcome, detail=_detail(doc, rec.name)))
    token = doc["token"].encode("ascii") if isinstance(doc["token"], str) else b""
    result = AppraisalResult(token, checked.ear, checked.decision, tuple(votes), spec.nonce, "jwt")
    # The federator's breakers are not visible from here: a vote short-circuited by one says so.
    tripped = {v.backend: "circuit open" in (v.detail or "") for v in votes}
    out = judge(spec, result, elapsed, genuine, fed_anchor, anchors, breaker_open=tripped, expected_status=expected)
    if doc.get("status") != checked.status:
        out.violations.append(f"the answer says {doc.get('status')}, its token {checked.status}")
    return out


def _detail(doc: Mapping[str, Any], name: str) -> str | None:
    for v in doc.get("votes", ()):
        if isinstance(v, dict) and v.get("name") == name:
            detail = v.get("detail")
            return detail if isinstance(detail, str) else None
    return None


# --- the tally ----------------------------------------------------------------------------------------

@dataclass
class Tally:
    """Counts over many trials, for the summary table and the JSON record."""

    trials: Counter[str] = field(default_factory=Counter)  # by kind
    statuses: Counter[str] = field(default_factory=Counter)
    outcomes: dict[str, Counter[str]] = field(default_factory=dict)  # mode -> outcome -> count
    unexpected_by_mode: Counter[str] = field(default_factory=Counter)
    configs: Counter[str] = field(default_factory=Counter)
    violations: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    unanswered: int = 0
    late: int = 0
    max_lateness: float = float("-inf")
    max_elapsed: float = 0.0
    lateness_over_deadline: list[float] = field(default_factory=list)  # seconds past the deadline, when > 0
    violating_trials: int = 0
    unexpected_trials: int = 0

    def add(self, r: TrialResult) -> None:
        s = r.spec
        self.trials[s.kind] += 1
        self.statuses[r.status or "unanswered"] += 1
        self.configs[f"k={s.policy.k} n={s.policy.n}"] += 1
        self.configs["veto" if s.policy.veto else "no veto"] += 1
        self.configs[f"wait={s.policy.wait}"] += 1
        self.configs["distinct operators" if s.policy.distinct_operators else "operators may repeat"] += 1
        for _, mode, outcome, _ in r.outcomes:
            self.outcomes.setdefault(mode, Counter())[outcome] += 1
        for _, mode, _, fine in r.outcomes:
            if not fine:
                self.unexpected_by_mode[mode] += 1
        if r.error is not None:
            self.unanswered += 1
        if r.late:
            self.late += 1
        self.max_lateness = max(self.max_lateness, r.lateness)
        self.max_elapsed = max(self.max_elapsed, r.elapsed)
        if r.lateness > 0:
            self.lateness_over_deadline.append(r.lateness)
        if r.violations:
            self.violating_trials += 1
            self.violations += [f"{s.describe()}: {v}" for v in r.violations]
        if r.unexpected:
            self.unexpected_trials += 1
            self.unexpected += [f"{s.describe()}: {u}" for u in r.unexpected]

    @property
    def total(self) -> int:
        return sum(self.trials.values())

    def as_dict(self) -> dict[str, Any]:
        over = sorted(self.lateness_over_deadline)
        return {
            "trials": dict(self.trials), "total": self.total, "statuses": dict(self.statuses),
            "better_than_allowed": sum(1 for v in self.violations if "better" in v or "not genuine" in v),
            "violating_trials": self.violating_trials, "unanswered": self.unanswered, "late": self.late,
            "margin_ms": MARGIN * 1000, "max_lateness_ms": round(self.max_lateness * 1000, 1),
            "max_elapsed_ms": round(self.max_elapsed * 1000, 1),
            "answered_after_deadline": len(over),
            "p99_lateness_after_deadline_ms": round(over[int(0.99 * (len(over) - 1))] * 1000, 1) if over else None,
            "outcomes_by_mode": {m: dict(c) for m, c in sorted(self.outcomes.items())},
            "unexpected_by_mode": dict(self.unexpected_by_mode), "unexpected_trials": self.unexpected_trials,
            "configs": dict(sorted(self.configs.items())),
            "violations": self.violations[:100], "unexpected": self.unexpected[:100],
        }

