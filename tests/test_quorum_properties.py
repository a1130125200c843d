"""Property tests (hypothesis) for DESIGN §6 on the pure quorum function.

Random policies (k, n, veto, distinct_operators, wait) meet random votes: ok or any failure
outcome, 1-3 submodules from a small pool, every status, trust vectors with values from every
AR4SI range (negative, 0, 1, -1, 99, ...), operators from a small pool so that distinctness bites.
No signing: :func:`federation.quorum.decide` is a pure function of the votes.

What "worse" and "better" mean (the orders the properties are stated in)
------------------------------------------------------------------------
*Statuses.* With veto on, a contraindicated ok vote is the strongest negative statement (it vetoes),
so the order is ``affirming > warning > none > contraindicated``. With veto off a contraindicated
vote only supports the contraindicated tier, and ``none`` (quorum not reached) is no better than
it: ``affirming > warning > {contraindicated, none}`` (the last two share the bottom).

*Claims.* Each AR4SI claim is ranked ``affirming-range > no claim > warning-range >
contraindicated-range``, with :func:`federation.ar4si.claim_rank`'s tie rule inside a range, and an
absent claim the lowest of the no-claim range (below 0, 1 and -1). A warning or contraindicated
value is a *finding against* the attester: lowering 0 to 33 makes a vote worse, never better.
(:func:`~federation.ar4si.claim_rank` alone puts contraindicated above "no claim"; in that order no
combination rule can both cap the status by its vector (EAR §3.1) and be monotone: an affirming
voter that stops saying "hardware: 2" would uncap a lone "hardware: 33" and *raise* the status.
``test_silence_does_not_uncap`` pins that case.)

*Failures.* A vote turned into a failure is removed from the count. With veto on, removing a vote
that says contraindicated somewhere lifts its veto: that is DESIGN §7's documented limit ("the veto
applies only to what was received"), so those removals are not "worsenings" here.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import replace

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from federation.ar4si import Tier, TrustVector, cap_status, tier_of_claim
from federation.ear import Appraisal, Ear, VerifierId
from federation.ear.model import PROFILE_VERAISON
from federation.quorum import FALLBACK_SUBMOD, Decision, QuorumPolicy, decide, is_final
from federation.votes import Outcome, Vote

SUBMODS = ("PSA_IOT", "TDX", "SEV")
OPERATORS = ("acme", "globex", "initech")
CLAIM_NAMES = ("instance-identity", "executables", "hardware", "configuration")
# Every AR4SI range and its edges, standard and non-standard (negative) values.
CLAIM_VALUES = (-128, -97, -96, -50, -33, -32, -3, -2, -1, 0, 1, 2, 3, 31, 32, 33, 95, 96, 97, 99, 127)
FAILURES = tuple(o for o in Outcome if o is not Outcome.OK)
TIERS = tuple(Tier)
# What votes are drawn from: weighted towards agreement, so that affirming and warning outcomes
# (where fail-open bugs would show) are common, while every range stays reachable.
DRAWN_STATUSES = (Tier.AFFIRMING,) * 5 + (Tier.WARNING,) * 2 + (Tier.NONE, Tier.CONTRAINDICATED)
DRAWN_CLAIMS = CLAIM_VALUES + (2,) * 12 + (3, 0, 0, 33, 33, 32)

PROPS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# --- the orders ----------------------------------------------------------------------------------

def status_key(t: Tier, policy: QuorumPolicy) -> int:
    if policy.veto:
        return {Tier.CONTRAINDICATED: 0, Tier.NONE: 1, Tier.WARNING: 2, Tier.AFFIRMING: 3}[t]
    return {Tier.CONTRAINDICATED: 0, Tier.NONE: 0, Tier.WARNING: 2, Tier.AFFIRMING: 3}[t]


_CLAIM_GROUP = {Tier.AFFIRMING: 3, Tier.NONE: 2, Tier.WARNING: 1, Tier.CONTRAINDICATED: 0}


def claim_key(value: int | None) -> tuple[int, int, int]:
    if value is None:
        return (2, -1, 0)
    return (_CLAIM_GROUP[tier_of_claim(value)], 1 if value >= 0 else 0, -abs(value))


# --- building votes --------------------------------------------------------------------------------

def ear_of(submods: Mapping[str, Appraisal], name: str = "v") -> Ear:
    return Ear(PROFILE_VERAISON, 1_760_000_000, VerifierId("test", name), dict(submods))


def ok_vote(backend: str, operator: str, submods: Mapping[str, Appraisal]) -> Vote:
    return Vote(backend, operator, "test", Outcome.OK, ear=ear_of(submods, backend))


def appraisal(status: Tier, vector: Mapping[str, int] | None) -> Appraisal:
    return Appraisal.make(status, TrustVector.of(vector) if vector is not None else None)


@st.composite
def appraisals(draw: st.DrawFn) -> Appraisal:
    """Cheap to draw (a few integers), shrinking towards status none with an empty vector."""
    status = DRAWN_STATUSES[draw(st.integers(0, len(DRAWN_STATUSES) - 1))]
    mask = draw(st.integers(0, 1 << len(CLAIM_NAMES)))  # the top value: no vector at all
    if mask == 1 << len(CLAIM_NAMES):
        return appraisal(status, None)
    return appraisal(status, {c: DRAWN_CLAIMS[draw(st.integers(0, len(DRAWN_CLAIMS) - 1))]
                              for i, c in enumerate(CLAIM_NAMES) if mask >> i & 1})


@st.composite
def vote_for(draw: st.DrawFn, backend: str, operator: str | None = None) -> Vote:
    op = operator if operator is not None else OPERATORS[draw(st.integers(0, len(OPERATORS) - 1))]
    failure = draw(st.integers(0, 6 * len(FAILURES) - 1))  # about one vote in six fails
    if failure < len(FAILURES):
        return Vote(backend, op, "test", FAILURES[failure], detail="injected")
    mask = draw(st.integers(1, (1 << len(SUBMODS)) - 1))
    return ok_vote(backend, op, {n: draw(appraisals()) for i, n in enumerate(SUBMODS) if mask >> i & 1})


@st.composite
def vote_lists(draw: st.DrawFn, min_size: int = 1, max_size: int = 6) -> list[Vote]:
    n = draw(st.integers(min_size, max_size))
    return [draw(vote_for(f"b{i}")) for i in range(n)]


@st.composite
def policies(draw: st.DrawFn, n: int, wait: str | None = None) -> QuorumPolicy:
    return QuorumPolicy(
        k=draw(st.integers(1, n)), n=n, veto=draw(st.booleans()),
        wait=wait or draw(st.sampled_from(("all", "quorum"))),  # type: ignore[arg-type]
        distinct_operators=draw(st.booleans()),
    )


@st.composite
def scenarios(draw: st.DrawFn, wait: str | None = None) -> tuple[QuorumPolicy, list[Vote]]:
    votes = draw(vote_lists())
    return draw(policies(len(votes), wait)), votes


def voter(policy: QuorumPolicy, v: Vote) -> str:
    return v.operator if policy.distinct_operators else v.backend


def status_in(v: Vote, name: str) -> Tier:
    assert v.ear is not None
    a = v.ear.submods.get(name)
    return a.status if a is not None else Tier.NONE


def named(d: Decision) -> dict[str, Tier]:
    return {n: s.status for n, s in d.submods.items() if n != FALLBACK_SUBMOD}


# --- invariants of one decision: (a), (d), (e), DESIGN §5, only ok votes count ---------------------

def check_never_affirming_without_k(policy: QuorumPolicy, votes: Sequence[Vote], d: Decision) -> None:
    """(a) per submod: affirming needs k affirming ok voters (distinct operators when on)."""
    ok = [v for v in votes if v.ok]
    for name, sub in d.submods.items():
        affirming = {voter(policy, v) for v in ok if status_in(v, name) is Tier.AFFIRMING}
        warning_or_better = {voter(policy, v) for v in ok if status_in(v, name).at_least(Tier.WARNING)}
        if sub.status is Tier.AFFIRMING:
            assert len(affirming) >= policy.k, (name, d.explain())
        if sub.status is Tier.WARNING:
            assert len(warning_or_better) >= policy.k, (name, d.explain())
    if d.status is Tier.AFFIRMING:
        assert d.voters >= policy.k
        assert all(s.status is Tier.AFFIRMING for s in d.submods.values())


def check_veto(policy: QuorumPolicy, votes: Sequence[Vote], d: Decision) -> None:
    """(d) with veto, any ok contraindicated vote in a submod makes it contraindicated."""
    for name, sub in d.submods.items():
        vetoers = {v.backend for v in votes if v.ok and status_in(v, name) is Tier.CONTRAINDICATED}
        if policy.veto and vetoers:
            assert sub.status is Tier.CONTRAINDICATED
            assert set(sub.vetoed_by) == vetoers
            assert d.status is Tier.CONTRAINDICATED
            assert "vetoed by" in d.explain()
        else:
            assert sub.vetoed_by == ()


def check_cap(d: Decision) -> None:
    """(e) a combined status is never better than its own vector's worst claim (EAR §3.1)."""
    for sub in d.submods.values():
        assert cap_status(sub.status, sub.trust_vector) is sub.status
        worst = sub.trust_vector.worst_tier()
        if worst is Tier.CONTRAINDICATED:
            assert sub.status is Tier.CONTRAINDICATED
        if worst is Tier.WARNING:
            assert sub.status is not Tier.AFFIRMING


def check_claims_supported(policy: QuorumPolicy, votes: Sequence[Vote], d: Decision) -> None:
    """DESIGN §5 in the claim order: at least k voters report a value at least as good (a voter
    silent on a claim counts as absent); with veto a contraindicated value wins."""
    ok = [v for v in votes if v.ok]
    for name, sub in d.submods.items():
        for claim, value in sub.trust_vector:
            if policy.veto and tier_of_claim(value) is Tier.CONTRAINDICATED:
                assert any(v.ear is not None and (a := v.ear.submods.get(name)) is not None
                           and a.trust_vector is not None and a.trust_vector.get(claim) == value for v in ok)
                continue
            support = set()
            for v in ok:
                assert v.ear is not None
                a = v.ear.submods.get(name)
                mine = a.trust_vector.get(claim) if a is not None and a.trust_vector is not None else None
                if claim_key(mine) >= claim_key(value):
                    support.add(voter(policy, v))
            assert len(support) >= policy.k, (name, claim, value)


def check_only_ok_votes_count(policy: QuorumPolicy, votes: Sequence[Vote], d: Decision) -> None:
    only_ok = decide(policy, [v for v in votes if v.ok])
    assert {n: (s.status, s.trust_vector) for n, s in d.submods.items()} == {
        n: (s.status, s.trust_vector) for n, s in only_ok.submods.items()}
    assert {b for b, _ in d.failed} | set(d.not_awaited) == {v.backend for v in votes if not v.ok}
    assert d.voters == len({voter(policy, v) for v in votes if v.ok})


@PROPS
@given(scenarios())
def test_decision_invariants(case: tuple[QuorumPolicy, list[Vote]]) -> None:
    policy, votes = case
    d = decide(policy, votes)
    check_never_affirming_without_k(policy, votes, d)
    check_veto(policy, votes, d)
    check_cap(d)
    check_claims_supported(policy, votes, d)
    check_only_ok_votes_count(policy, votes, d)


# --- (b) arrival order ---------------------------------------------------------------------------

@PROPS
@given(scenarios(wait="all"), st.randoms(use_true_random=False))
def test_arrival_order_never_changes_the_outcome(case: tuple[QuorumPolicy, list[Vote]],
                                                 rnd: random.Random) -> None:
    policy, votes = case
    shuffled = list(votes)
    rnd.shuffle(shuffled)
    a, b = decide(policy, votes), decide(policy, shuffled)
    assert {n: (s.status, s.trust_vector) for n, s in a.submods.items()} == {
        n: (s.status, s.trust_vector) for n, s in b.submods.items()}
    assert a.status is b.status
    assert (set(a.agreed), set(a.dissented), set(a.failed), a.voters) == (
        set(b.agreed), set(b.dissented), set(b.failed), b.voters)


# --- (c) making one vote worse never makes the result better ----------------------------------------

def lower_claim(value: int | None, draw: st.DrawFn) -> int | None:
    """A value no better than *value* in the claim order (possibly absent, possibly unchanged)."""
    options: list[int | None] = [x for x in CLAIM_VALUES if claim_key(x) <= claim_key(value)]
    if claim_key(None) <= claim_key(value):
        options.append(None)
    return draw(st.sampled_from(options))


@st.composite
def worse_appraisal(draw: st.DrawFn, a: Appraisal, policy: QuorumPolicy) -> Appraisal:
    reported = a.reported_status or a.status
    status = draw(st.sampled_from([t for t in TIERS if status_key(t, policy) <= status_key(reported, policy)]))
    old = a.trust_vector.as_dict() if a.trust_vector is not None else {}
    new: dict[str, int] = {}
    for claim in CLAIM_NAMES:
        value = old.get(claim)
        if draw(st.booleans()):
            value = lower_claim(value, draw)
        if value is not None:
            new[claim] = value
    keep_none = a.trust_vector is None and not new
    return appraisal(status, None if keep_none else new)


@st.composite
def worsened(draw: st.DrawFn, vote: Vote, policy: QuorumPolicy) -> Vote:
    """*vote* made worse: a failure, or some of its submods' statuses and claims lowered."""
    can_fail = not (policy.veto and vote.ok and any(
        status_in(vote, n) is Tier.CONTRAINDICATED for n in SUBMODS))
    if not vote.ok or (can_fail and draw(st.integers(0, 3)) == 0):  # a quarter become failures
        return Vote(vote.backend, vote.operator, vote.kind, draw(st.sampled_from(FAILURES)), detail="worse")
    assert vote.ear is not None
    submods = {n: (draw(worse_appraisal(a, policy)) if draw(st.booleans()) else a)
               for n, a in vote.ear.submods.items()}
    return replace(vote, ear=replace(vote.ear, submods=submods))


def is_no_better(new: Vote, old: Vote, policy: QuorumPolicy) -> bool:
    """The vote order: every submod's status and every claim no better (a failure is 'nothing')."""
    if not new.ok:
        return True
    if not old.ok:
        return False
    assert new.ear is not None and old.ear is not None
    for name in set(new.ear.submods) | set(old.ear.submods):
        a, b = new.ear.submods.get(name), old.ear.submods.get(name)
        if status_key(a.status if a else Tier.NONE, policy) > status_key(b.status if b else Tier.NONE, policy):
            return False
        va = a.trust_vector.as_dict() if a and a.trust_vector else {}
        vb = b.trust_vector.as_dict() if b and b.trust_vector else {}
        if any(claim_key(va.get(c)) > claim_key(vb.get(c)) for c in CLAIM_NAMES):
            return False
    return True


def assert_no_better(worse: Decision, base: Decision, policy: QuorumPolicy, why: str) -> None:
    for name, sub in worse.submods.items():
        if name not in base.submods or name == FALLBACK_SUBMOD:
            continue  # a submod nobody named before is out of scope
        before = base.submods[name]
        assert status_key(sub.status, policy) <= status_key(before.status, policy), (
            f"{name}: {before.status} -> {sub.status} after {why}\n  {base.explain()}\n  {worse.explain()}")
        if worse.voters >= policy.k:  # below k voters every claim is absent and the status none
            old_v, new_v = before.trust_vector.as_dict(), sub.trust_vector.as_dict()
            for claim in set(old_v) | set(new_v):
                assert claim_key(new_v.get(claim)) <= claim_key(old_v.get(claim)), (
                    f"{name}.{claim}: {old_v.get(claim)} -> {new_v.get(claim)} after {why}")
    if set(named(worse)) == set(named(base)):
        assert status_key(worse.status, policy) <= status_key(base.status, policy)


@PROPS
@given(st.data())
def test_a_worse_vote_never_makes_the_result_better(data: st.DataObject) -> None:
    policy, votes = data.draw(scenarios())
    i = data.draw(st.integers(0, len(votes) - 1))
    new = data.draw(worsened(votes[i], policy))
    assert is_no_better(new, votes[i], policy), "generator: the new vote must be no better"
    changed = [*votes[:i], new, *votes[i + 1:]]
    assert_no_better(decide(policy, changed), decide(policy, votes), policy, f"{votes[i]} -> {new}")


# --- (f) is_final is sound -----------------------------------------------------------------------

@st.composite
def waiting(draw: st.DrawFn) -> tuple[QuorumPolicy, list[Vote], list[Vote]]:
    """A quorum-mode policy, the votes received so far and one completion of the pending ones."""
    n_recv, n_pend = draw(st.integers(0, 5)), draw(st.integers(1, 4))
    received = [draw(vote_for(f"r{i}")) for i in range(n_recv)]
    pending = [draw(vote_for(f"p{i}")) for i in range(n_pend)]
    return draw(policies(n_recv + n_pend, "quorum")), received, pending


@PROPS
@given(waiting())
def test_is_final_is_sound(case: tuple[QuorumPolicy, list[Vote], list[Vote]]) -> None:
    policy, received, completion = case
    pending = [(v.backend, v.operator) for v in completion]
    if not is_final(policy, received, pending):
        return
    now, later = decide(policy, received), decide(policy, [*received, *completion])
    decided = named(now)
    if not decided:  # nothing named yet: is_final promised that nothing can reach any tier
        assert all(status_key(s, policy) <= status_key(Tier.NONE, policy) for s in named(later).values())
        return
    for name, status in decided.items():
        assert status_key(later.submods[name].status, policy) <= status_key(status, policy), (
            f"{name}: final at {status}, became {later.submods[name].status}\n"
            f"  {now.explain()}\n  {later.explain()}")


# --- pinned examples (the counterexamples that motivated the orders above) -------------------------

def _votes(*specs: tuple[str, str, Tier, Mapping[str, int] | None]) -> list[Vote]:
    return [ok_vote(b, op, {"PSA_IOT": appraisal(t, vec)}) for b, op, t, vec in specs]


def _fail(backend: str, operator: str) -> Vote:
    return Vote(backend, operator, "test", Outcome.TIMEOUT)


def test_silence_does_not_uncap() -> None:
    """2-of-4, three affirming voters (two silent on 'hardware', one saying 2) and one saying
    'hardware: 33'. Affirming (k agree, the lone warning is outvoted), and the reporter timing out
    must not change that. (The support order used to cap this to warning, and a timeout of the
    'hardware: 2' reporter then raised it to affirming: a failure raising the result.)"""
    policy = QuorumPolicy(k=2, n=4)
    base = _votes(("a", "a", Tier.AFFIRMING, {}), ("b", "b", Tier.AFFIRMING, {}),
                  ("w", "w", Tier.WARNING, {"hardware": 33}))
    with_reporter = decide(policy, [*base, *_votes(("p", "p", Tier.AFFIRMING, {"hardware": 2}))])
    without = decide(policy, [*base, _fail("p", "p")])
    assert with_reporter.status is Tier.AFFIRMING
    assert without.status is Tier.AFFIRMING
    assert with_reporter.submods["PSA_IOT"].trust_vector.get("hardware") is None


def test_a_lone_warning_claim_caps_when_it_keeps_k_from_agreeing() -> None:
    policy = QuorumPolicy(k=2, n=2)
    d = decide(policy, _votes(("a", "a", Tier.AFFIRMING, {"hardware": 2}), ("w", "w", Tier.WARNING, {"hardware": 33})))
    assert d.status is Tier.WARNING
    assert d.submods["PSA_IOT"].trust_vector.get("hardware") == 33


def test_a_failed_backend_of_a_shared_operator_does_not_help() -> None:
    """An operator counts once, at the best of its ok backends: its other backend failing can
    only take support away (it used to count at the worst, so a failure raised the result)."""
    policy = QuorumPolicy(k=1, n=2, distinct_operators=True)
    both = decide(policy, _votes(("a", "acme", Tier.AFFIRMING, None), ("b", "acme", Tier.WARNING, None)))
    one_failed = decide(policy, [*_votes(("a", "acme", Tier.AFFIRMING, None)), _fail("b", "acme")])
    assert both.status is Tier.AFFIRMING and both.voters == 1
    assert one_failed.status is Tier.AFFIRMING
    two_ops = QuorumPolicy(k=2, n=2, distinct_operators=True)
    assert decide(two_ops, _votes(("a", "acme", Tier.AFFIRMING, None),
                                  ("b", "acme", Tier.AFFIRMING, None))).status is Tier.NONE


def test_is_final_waits_when_a_silent_answer_would_raise() -> None:
    policy = QuorumPolicy(k=2, n=3, wait="quorum")
    received = _votes(("a", "a", Tier.AFFIRMING, {}), ("w", "w", Tier.WARNING, {"hardware": 33}))
    assert decide(policy, received).status is Tier.WARNING
    assert not is_final(policy, received, [("p", "p")])
    assert decide(policy, [*received, *_votes(("p", "p", Tier.AFFIRMING, {}))]).status is Tier.AFFIRMING
