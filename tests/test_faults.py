"""Fault injection (issue 6, item 1), CI-sized: real verifier processes behind a fault-injecting proxy.

Four ``ratsfed serve`` verifier-role processes (keys from ``ratsfed keys generate``; ``gamma`` signs
CWTs, ``beta`` also endorses a development bootloader) each sit behind a
:class:`faultproxy.FaultProxy`. A federation in this process reaches three of them as ``kind =
"veraison"`` backends (2-of-3, veto, distinct operators). Each fault mode is injected once on two of
the three (so k = 2 is reachable only if the faulted ones still count), and the test asserts each
backend's outcome, the combined status, and :func:`fault_trials.judge`'s checks: the combined
result is never better than ``decide()`` over the genuine ``ok`` votes, the token re-verifies under
the verifiers' own keys, and the answer came by the deadline plus :data:`fault_trials.MARGIN`.

Also: retries that recover, ``Retry-After`` past the deadline, the circuit breaker, a backend deaf
to cancellation (the engine answers without it), four ``ratsfed serve`` federator processes answering
a relying party's ``POST /v1/appraise`` under faults (judged from the token alone), and the judge
itself: with the federation's nonce or freshness check switched off it reports the lies that count.
Then randomized trials: a few hundred in process (:class:`fault_trials.FaultyVerifier`), a few dozen
through the proxies. ``bench/faults.py`` runs the long campaign.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator, Iterator

import pytest
from fault_trials import (
    MARGIN,
    SERVICES,
    BackendSpec,
    KeyPool,
    ProxyLane,
    ServiceLane,
    Tally,
    TrialResult,
    TrialSpec,
    random_trial,
    run_inprocess,
    run_proxy,
    run_service,
)
from faultproxy import LYING, Mode, Plan, VerifierCluster, http_date

from federation.ar4si import Tier
from federation.quorum import QuorumPolicy
from federation.votes import Outcome

SEED = 20260601
POLICY = QuorumPolicy(2, 3, veto=True, wait="all", distinct_operators=True, id="fault-tests")
FAULTED = ("alpha", "gamma")  # the JWT and the CWT verifier; beta stays healthy
DEADLINE = 2.0
TIMEOUT = 1.0


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[VerifierCluster]:
    with VerifierCluster.running(tmp_path_factory.mktemp("faults")) as running:
        yield running


@pytest.fixture
async def lane(cluster: VerifierCluster) -> AsyncIterator[ProxyLane]:
    async with ProxyLane(cluster, seed=SEED) as running:
        yield running


def spec_of(lane: ProxyLane, plan: Plan, *, retries: int = 0, policy: QuorumPolicy = POLICY,
            deadline: float = DEADLINE, timeout: float = TIMEOUT, faulted: tuple[str, ...] = FAULTED) -> TrialSpec:
    """alpha, beta, gamma through their proxies (in lane order); *plan* on the *faulted* ones."""
    backends = tuple(
        BackendSpec(f"p{i}", f"op-{name}", timeout, retries, plan if name in faulted else Plan(), name, i)
        for i, name in enumerate(lane.names) if name != "delta")
    return TrialSpec(0, "proxy", policy, deadline, backends, os.urandom(32), "good")


async def trial(lane: ProxyLane, plan: Plan, **kw: object) -> TrialResult:
    return await run_proxy(spec_of(lane, plan, **kw), lane)  # type: ignore[arg-type]


def outcomes(r: TrialResult) -> dict[str, str]:
    return {name: outcome for name, _, outcome, _ in r.outcomes}


def assert_sound(r: TrialResult) -> None:
    assert r.error is None, r.error
    assert not r.violations, r.violations
    assert not r.unexpected, r.unexpected
    assert r.elapsed <= r.spec.deadline + MARGIN


# --- every mode once ------------------------------------------------------------------------------

ONCE: list[tuple[str, Plan, set[str]]] = [
    ("refuse", Plan(Mode.REFUSE), {"unreachable"}),
    ("refuse-per-connection", Plan(Mode.REFUSE, scope="connection"), {"unreachable"}),
    ("refuse-newSession", Plan(Mode.REFUSE, target="newSession"), {"unreachable"}),
    ("reset", Plan(Mode.RESET), {"malformed", "unreachable"}),
    ("latency-past-timeout", Plan(Mode.LATENCY, latency=1.5, jitter=0.2), {"timeout"}),
    ("hang", Plan(Mode.HANG, hang=DEADLINE + 1), {"timeout"}),
    ("hang-newSession", Plan(Mode.HANG, target="newSession", hang=DEADLINE + 1), {"timeout"}),
    ("truncate", Plan(Mode.TRUNCATE), {"malformed"}),
    ("truncate-short", Plan(Mode.TRUNCATE, variant="short"), {"malformed"}),
    ("garbage", Plan(Mode.GARBAGE), {"malformed"}),
    ("garbage-html-newSession", Plan(Mode.GARBAGE, target="newSession", variant="html"), {"malformed"}),
    ("http-500", Plan(Mode.HTTP_5XX, status=500, retry_after=None), {"http-error"}),
    ("http-503-any", Plan(Mode.HTTP_5XX, status=503, target="any"), {"http-error"}),
    ("http-429", Plan(Mode.HTTP_429, retry_after="1"), {"http-error"}),
    ("flap", Plan(Mode.FLAP), {"http-error"}),
    ("replay", Plan(Mode.REPLAY), {"nonce-mismatch"}),
    ("other-session", Plan(Mode.OTHER_SESSION), {"nonce-mismatch"}),
    ("expired-old", Plan(Mode.EXPIRED, variant="old"), {"stale"}),
    ("expired-exp", Plan(Mode.EXPIRED, variant="exp"), {"stale"}),
    ("issued-in-the-future", Plan(Mode.EXPIRED, variant="future"), {"stale"}),
    ("rotated-key", Plan(Mode.ROTATED_KEY), {"untrusted-key"}),
    ("tamper", Plan(Mode.TAMPER), {"bad-signature"}),
]


@pytest.mark.parametrize(("plan", "expected"), [(p, e) for _, p, e in ONCE], ids=[i for i, _, _ in ONCE])
async def test_each_fault_once_on_two_of_three(lane: ProxyLane, plan: Plan, expected: set[str]) -> None:
    if plan.mode is Mode.REPLAY:  # so that a result of an earlier session is there to replay
        assert_sound(await trial(lane, Plan()))
    r = await trial(lane, plan)
    assert_sound(r)
    got = outcomes(r)
    assert got["p1"] == "ok", r.outcomes  # beta, not faulted
    for name in ("p0", "p2"):
        assert got[name] in expected, (name, r.outcomes)
    assert r.status == "none" and r.bound == "none"  # one ok vote cannot reach k = 2
    injected = sum(lane.proxies[i].injected[plan.mode.value] for i in (0, 2))
    assert injected >= 2, (plan.describe(), [dict(p.injected) for p in lane.proxies])
    if plan.mode in LYING:  # the lie was a validly signed, affirming EAR (except tamper: its signature)
        assert all(p.injected[plan.mode.value] for p in (lane.proxies[0], lane.proxies[2]))


async def test_replay_is_a_verbatim_earlier_result(lane: ProxyLane) -> None:
    first = await trial(lane, Plan())
    assert_sound(first)
    assert first.status == "affirming"
    r = await trial(lane, Plan(Mode.REPLAY))
    assert_sound(r)
    assert outcomes(r) == {"p0": "nonce-mismatch", "p1": "ok", "p2": "nonce-mismatch"}


async def test_pass_and_latency_within_the_timeout_are_affirming(lane: ProxyLane) -> None:
    for plan in (Plan(), Plan(Mode.LATENCY, latency=0.2, jitter=0.1),
                 Plan(Mode.LATENCY, scope="connection", latency=0.2)):
        r = await trial(lane, plan)
        assert_sound(r)
        assert outcomes(r) == dict.fromkeys(("p0", "p1", "p2"), "ok"), plan.describe()
        assert r.status == "affirming"


async def test_one_liar_among_three_cannot_lift_a_warning(lane: ProxyLane) -> None:
    """The attester's development bootloader: alpha and gamma say warning, beta (lenient) says
    affirming. alpha's proxy substitutes an affirming EAR of another session: were it counted,
    2-of-3 would be affirming. It is not: the result stays warning."""
    backends = tuple(BackendSpec(f"p{i}", f"op-{n}", TIMEOUT, 0, Plan(Mode.OTHER_SESSION) if n == "alpha" else Plan(),
                                 n, i) for i, n in enumerate(lane.names) if n != "delta")
    spec = TrialSpec(0, "proxy", POLICY, DEADLINE, backends, os.urandom(32), "dev")
    r = await run_proxy(spec, lane)
    assert_sound(r)
    assert outcomes(r) == {"p0": "nonce-mismatch", "p1": "ok", "p2": "ok"}
    assert r.status == "warning" and r.bound == "warning"


async def test_retries_recover_from_transient_faults(lane: ProxyLane) -> None:
    for plan in (Plan(Mode.HTTP_429, retry_after="0", times=1), Plan(Mode.FLAP, retry_after=None),
                 Plan(Mode.HTTP_5XX, status=502, retry_after=None, times=1),
                 Plan(Mode.REFUSE, target="newSession", times=1)):
        r = await trial(lane, plan, retries=1)
        assert_sound(r)
        assert outcomes(r) == dict.fromkeys(("p0", "p1", "p2"), "ok"), plan.describe()
        assert r.status == "affirming"


async def test_retry_after_past_the_deadline_records_the_real_failure(lane: ProxyLane) -> None:
    for after in ("60", http_date(60)):
        start = time.monotonic()
        r = await trial(lane, Plan(Mode.HTTP_429, retry_after=after), retries=2)
        assert_sound(r)
        assert outcomes(r) == {"p0": "http-error", "p1": "ok", "p2": "http-error"}
        assert time.monotonic() - start < 1.0  # no sleeping towards a retry that cannot happen


async def test_wait_quorum_answers_without_the_hung_verifiers(lane: ProxyLane) -> None:
    policy = QuorumPolicy(1, 3, veto=False, wait="quorum", id="fault-tests")
    r = await trial(lane, Plan(Mode.HANG, hang=5.0), policy=policy)
    assert_sound(r)
    assert outcomes(r) == {"p0": "not-awaited", "p1": "ok", "p2": "not-awaited"}
    assert r.status == "affirming" and r.elapsed < 1.0


async def test_breaker_opens_and_a_recovered_verifier_counts_again(cluster: VerifierCluster) -> None:
    """Three refused attempts open alpha's breaker (threshold 3): the next appraisal is
    short-circuited (``unreachable``, circuit open) without touching the proxy; after the cool-down
    the probe goes through and alpha's vote counts again."""
    async with ProxyLane(cluster, seed=SEED) as lane:
        for _ in range(3):
            r = await trial(lane, Plan(Mode.REFUSE), faulted=("alpha",))
            assert_sound(r)
            assert r.status == "affirming"
        alpha = lane.backends[0]
        assert not alpha.healthy
        seen = lane.proxies[0].requests.total()
        r = await trial(lane, Plan())
        assert_sound(r)
        assert outcomes(r)["p0"] == "unreachable" and r.status == "affirming"  # beta and gamma: k = 2
        assert lane.proxies[0].requests.total() == seen
        await asyncio.sleep(1.1)  # the cool-down (1 s)
        r = await trial(lane, Plan())
        assert_sound(r)
        assert outcomes(r) == dict.fromkeys(("p0", "p1", "p2"), "ok") and alpha.healthy


# --- backends deaf to cancellation (in process) ---------------------------------------------------

@pytest.mark.parametrize("wait", ["all", "quorum"])
async def test_a_backend_slow_to_stop_does_not_hold_the_answer(wait: str) -> None:
    """A backend that hangs and, once cancelled, takes 0.8 s to stop: the answer still comes by the
    deadline plus the margin (the engine no longer waits up to 1 s for cancelled backends)."""
    sub = {"PSA_IOT": (Tier.AFFIRMING, {"hardware": 2})}
    policy = QuorumPolicy(1, 2, wait="quorum" if wait == "quorum" else "all", id="fault-tests")
    spec = TrialSpec(0, "in-process", policy, 0.3, (
        BackendSpec("a", "x", 1.0, 0, Plan(), submods=sub),
        BackendSpec("b", "y", 1.0, 0, Plan(Mode.STUBBORN, hang=5.0, latency=0.8), slot=1, submods=sub)),
        os.urandom(32))
    r = await run_inprocess(spec, KeyPool.make(2))
    assert_sound(r)
    assert r.status == "affirming"
    assert outcomes(r)["b"] == ("not-awaited" if wait == "quorum" else "timeout")
    assert r.elapsed < (0.15 if wait == "quorum" else 0.3 + 0.15)


# --- the harness catches a federation that fails open ----------------------------------------------

def _liars_spec(plan: Plan) -> TrialSpec:
    """k = 2 of 4, all genuinely warning: f0 and f3 say so; f1 and f2 lie (affirming)."""
    warning = {"PSA_IOT": (Tier.WARNING, {"instance-identity": 2, "executables": 33})}
    policy = QuorumPolicy(2, 4, veto=True, wait="all", id="fault-tests")
    return TrialSpec(0, "in-process", policy, 0.5, (
        BackendSpec("f0", "a", 0.4, 0, Plan(), slot=0, submods=warning),
        BackendSpec("f1", "b", 0.4, 0, plan, slot=1, submods=warning),
        BackendSpec("f2", "c", 0.4, 0, plan, slot=2, submods=warning),
        BackendSpec("f3", "d", 0.4, 0, Plan(), slot=3, submods=warning)), os.urandom(32))


@pytest.mark.parametrize("mode", [Mode.OTHER_SESSION, Mode.EXPIRED])
async def test_the_judge_catches_a_federation_that_skips_a_check(monkeypatch: pytest.MonkeyPatch, mode: Mode) -> None:
    """The checks are not vacuous: with the federation's nonce (or freshness) check switched off,
    the liars' affirming EARs count, and judge() reports the result as better than allowed."""
    import federation.engine as engine
    from verifiers.normalize import Check, normalize

    pool = KeyPool.make(4)
    honest = await run_inprocess(_liars_spec(Plan(mode)), pool)
    assert_sound(honest)
    assert honest.status == "warning"

    def lax(raw: object, check: Check, **kw: object) -> object:
        if mode is Mode.OTHER_SESSION:
            check = Check(check.anchor, None, check.now, check.max_age, check.leeway)
        else:
            check = Check(check.anchor, check.nonce, check.now, None, 10**9)
        return normalize(raw, check, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(engine, "normalize", lax)
    broken = await run_inprocess(_liars_spec(Plan(mode)), pool)
    assert broken.status == "affirming"
    assert any("not genuine was counted" in v for v in broken.violations), broken.violations
    assert any("better than the verified votes allow" in v for v in broken.violations), broken.violations


# --- randomized trials ----------------------------------------------------------------------------

# The campaign's timing promise is deadline + MARGIN (250 ms), measured by bench/faults.py on a
# machine doing nothing else (docs/reliability.md). CI shares its CPUs with the rest of the suite,
# where a scheduler stall can outlast 250 ms without the federation being late by its own doing;
# here lateness is held to a looser bound, and every *safety* violation still fails the test.
CI_LATENESS = 1.0  # seconds past the deadline


def _assert_campaign(tally: Tally, trials: int) -> None:
    assert tally.total == trials
    safety = [v for v in tally.violations if "after the deadline (margin" not in v]
    assert not safety, safety[:5]
    assert tally.unanswered == 0
    assert tally.max_lateness <= CI_LATENESS, f"answered {tally.max_lateness * 1000:.0f} ms after the deadline"
    # Outcomes off their fault's allowed set: none, but for timing on a loaded machine (a backend
    # that timed out or was not awaited): those are not safety failures and are tolerated here.
    timing = {o.value for o in (Outcome.TIMEOUT, Outcome.NOT_AWAITED, Outcome.UNREACHABLE)}
    strange = [u for u in tally.unexpected if not any(f": {t} (" in u for t in timing)]
    assert not strange, strange[:5]


async def test_randomized_in_process_trials() -> None:
    pool = KeyPool.make()
    tally = Tally()
    gate = asyncio.Semaphore(4)

    async def one(i: int) -> None:
        async with gate:
            tally.add(await run_inprocess(random_trial(SEED, i, "in-process"), pool))

    await asyncio.gather(*(one(i) for i in range(300)))
    _assert_campaign(tally, 300)
    modes = set(tally.outcomes)
    assert modes >= {m.value for m in Mode}, modes  # every mode drawn at least once


async def test_randomized_proxy_trials(lane: ProxyLane) -> None:
    tally = Tally()
    for i in range(30):
        tally.add(await run_proxy(random_trial(SEED, i, "proxy", proxied_names=lane.names), lane))
    _assert_campaign(tally, 30)


async def test_federator_processes_answer_every_request_and_never_better(cluster: VerifierCluster) -> None:
    """The relying party's view: ``POST /v1/appraise`` to four ``ratsfed serve`` federator processes
    (their policies in SERVICES), whose members reach the verifiers through proxies. First every
    federator with its members lying (other sessions' and re-signed EARs) on all but one verifier,
    then randomized faults; every answer is judged from its token alone."""
    tally = Tally()
    async with ServiceLane(cluster, seed=SEED) as lane:
        for f, svc in enumerate(SERVICES):
            lies = (Mode.OTHER_SESSION, Mode.ROTATED_KEY, Mode.EXPIRED, Plan().mode)
            backends = tuple(BackendSpec(n, svc.operators[i], svc.timeouts[i], svc.retries[i], Plan(lies[i]), n, i)
                             for i, n in enumerate(lane.names))
            r = await run_service(TrialSpec(f, "service", svc.policy, svc.deadline, backends, os.urandom(32),
                                            "good", f), lane)
            assert_sound(r)
            ok = [name for name, _, outcome, _ in r.outcomes if outcome == "ok"]
            assert ok in (["delta"], []), r.outcomes  # delta told the truth (or was not awaited)
            assert r.status == ("affirming" if svc.policy.k == 1 and ok else "none"), (svc.policy.describe(), r)
            tally.add(r)
        for i in range(16):
            tally.add(await run_service(random_trial(SEED, i, "service", proxied_names=lane.names), lane))
    _assert_campaign(tally, 4 + 16)


def test_cluster_processes_are_process_group_leaders(cluster: VerifierCluster) -> None:
    assert len(cluster.processes) == 4
    for p in cluster.processes:
        assert p.proc.poll() is None
        assert os.getpgid(p.pid) == p.pid
