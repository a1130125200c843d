"""Explicit tables for the quorum rule: the tie rule, k-of-n, distinct operators, the veto,
``explain()``, ``is_final`` and QuorumPolicy validation (the properties live in
test_quorum_properties.py)."""

from __future__ import annotations

from collections.abc import Mapping

import pytest

from federation.ar4si import Tier, TrustVector, claim_rank, tier_of_claim
from federation.ear import Appraisal, Ear, VerifierId
from federation.ear.model import PROFILE_VERAISON
from federation.errors import ConfigError
from federation.quorum import FALLBACK_SUBMOD, QuorumPolicy, claim_order, decide, is_final
from federation.votes import Outcome, Vote

A, W, C, N = Tier.AFFIRMING, Tier.WARNING, Tier.CONTRAINDICATED, Tier.NONE
SUB = "PSA_IOT"


def vote(backend: str, status: Tier | Mapping[str, Tier], *, operator: str | None = None,
         vector: Mapping[str, int] | None = None) -> Vote:
    statuses = status if isinstance(status, Mapping) else {SUB: status}
    tv = TrustVector.of(vector) if vector is not None else None
    ear = Ear(PROFILE_VERAISON, 1_760_000_000, VerifierId("test", backend),
              {n: Appraisal.make(s, tv) for n, s in statuses.items()})
    return Vote(backend, operator or f"op-{backend}", "test", Outcome.OK, ear=ear)


def failed(backend: str, outcome: Outcome = Outcome.TIMEOUT, operator: str | None = None) -> Vote:
    return Vote(backend, operator or f"op-{backend}", "test", outcome, detail="injected")


def votes_of(*statuses: Tier) -> list[Vote]:
    return [vote(f"v{i}", s) for i, s in enumerate(statuses)]


# --- the tie rule ------------------------------------------------------------------------------------

@pytest.mark.parametrize(("better", "worse"), [
    # tier first: affirming > warning > contraindicated > none (support order)
    (2, 32), (31, 32), (-2, 32), (95, 96), (-33, 96), (96, 0), (127, 1), (-128, -1),
    # inside a tier: a standard (non-negative) value above a non-standard (negative) one
    (2, -2), (31, -2), (32, -33), (96, -97), (0, -1), (1, -1),
    # among standard values of a tier the smaller ranks higher (larger codes carry the caveat)
    (2, 3), (3, 31), (32, 33), (33, 95), (96, 97), (97, 99), (99, 127), (0, 1),
    # among negative values of a tier the one closer to zero ranks higher
    (-2, -3), (-33, -96), (-97, -128),
])
def test_claim_rank_tie_rule(better: int, worse: int) -> None:
    assert claim_rank(better) > claim_rank(worse)


@pytest.mark.parametrize(("value", "tier"), [
    (-1, N), (0, N), (1, N), (2, A), (31, A), (-2, A), (-32, A), (32, W), (95, W), (-33, W), (-96, W),
    (96, C), (99, C), (127, C), (-97, C), (-128, C),
])
def test_claim_ranges(value: int, tier: Tier) -> None:
    assert tier_of_claim(value) is tier


@pytest.mark.parametrize(("better", "worse"), [
    # the quorum's order statistic: affirming > no claim > absent > warning > contraindicated
    (2, 0), (-32, 0), (0, 1), (1, -1), (-1, None), (None, 32), (0, 95), (None, -33),
    (32, 96), (-96, 96), (96, 99), (99, -128),
    # and claim_rank's tie rule inside a range
    (2, 3), (2, -2), (32, 33), (32, -33),
])
def test_claim_order_of_the_trust_vector(better: int | None, worse: int | None) -> None:
    assert claim_order(better) > claim_order(worse)


# --- k-of-n ------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("k", "statuses", "veto", "expected"), [
    (2, (A, A, W), True, A),
    (2, (A, W, W), True, W),
    (2, (A, W, N), True, W),
    (2, (A, N, N), True, N),  # quorum not reached
    (2, (A, A, C), True, C),  # veto
    (2, (A, A, C), False, A),
    (2, (C, C, A), False, C),
    (2, (W, C, N), False, C),
    (2, (W, N, N), False, N),
    (3, (A, A, W), True, W),
    (3, (A, A, N), True, N),
    (1, (A, W, N), True, A),
    (1, (W, N, N), True, W),
    (1, (N, N, N), True, N),
    (3, (A, A, A, A, W), True, A),
    (4, (A, A, A, W, W), True, W),
    (5, (A, A, A, W, W), True, W),
    (5, (A, A, A, W, N), True, N),
])
def test_k_of_n(k: int, statuses: tuple[Tier, ...], veto: bool, expected: Tier) -> None:
    d = decide(QuorumPolicy(k=k, n=len(statuses), veto=veto), votes_of(*statuses))
    assert d.submods[SUB].status is expected
    assert d.status is expected


def test_failures_do_not_count_toward_k() -> None:
    policy = QuorumPolicy(k=2, n=3)
    d = decide(policy, [vote("a", A), failed("b", Outcome.BAD_SIGNATURE), failed("c", Outcome.STALE)])
    assert d.status is N
    assert d.voters == 1
    assert d.failed == (("b", Outcome.BAD_SIGNATURE), ("c", Outcome.STALE))


def test_a_failed_contraindicated_result_does_not_veto() -> None:
    d = decide(QuorumPolicy(k=1, n=2), [vote("a", A), failed("b", Outcome.BAD_SIGNATURE)])
    assert d.status is A


def test_no_ok_vote_gives_the_fallback_submod() -> None:
    d = decide(QuorumPolicy(k=1, n=2), [failed("a"), failed("b", Outcome.NOT_AWAITED)])
    assert list(d.submods) == [FALLBACK_SUBMOD]
    assert d.status is N
    assert d.not_awaited == ("b",)
    assert d.failed == (("a", Outcome.TIMEOUT),)


def test_each_submod_needs_its_own_quorum() -> None:
    policy = QuorumPolicy(k=2, n=3)
    d = decide(policy, [vote("a", {"cpu": A, "gpu": A}), vote("b", {"cpu": A}), vote("c", {"cpu": W, "gpu": A})])
    assert d.submods["cpu"].status is A
    assert d.submods["gpu"].status is A
    d = decide(policy, [vote("a", {"cpu": A, "gpu": A}), vote("b", {"cpu": A}), vote("c", {"cpu": A})])
    assert d.submods["gpu"].status is N  # only one verifier reported it
    assert d.status is N


def test_contraindicated_anywhere_beats_none_elsewhere() -> None:
    d = decide(QuorumPolicy(k=2, n=2), [vote("a", {"cpu": C, "gpu": A}), vote("b", {"gpu": A})])
    assert (d.submods["cpu"].status, d.submods["gpu"].status) == (C, A)
    assert d.status is C


def test_trust_vector_is_the_kth_best_claim() -> None:
    policy = QuorumPolicy(k=2, n=3)
    d = decide(policy, [
        vote("a", A, vector={"hardware": 2, "executables": 2}),
        vote("b", A, vector={"hardware": 3, "executables": 2}),
        vote("c", W, vector={"hardware": 2, "executables": 33}),
    ])
    assert d.submods[SUB].trust_vector.as_dict() == {"hardware": 2, "executables": 2}
    assert d.status is A
    d = decide(QuorumPolicy(k=3, n=3), [
        vote("a", A, vector={"hardware": 2, "executables": 2}),
        vote("b", A, vector={"hardware": 3, "executables": 2}),
        vote("c", W, vector={"hardware": 2, "executables": 33}),
    ])
    assert d.submods[SUB].trust_vector.as_dict() == {"hardware": 3, "executables": 33}
    assert d.status is W  # capped by its own vector


def test_a_claim_needs_k_voters() -> None:
    d = decide(QuorumPolicy(k=2, n=2), [vote("a", A, vector={"hardware": 2}), vote("b", A, vector={})])
    assert d.submods[SUB].trust_vector.get("hardware") is None
    d = decide(QuorumPolicy(k=2, n=2), [vote("a", A, vector={"hardware": 2}), vote("b", A, vector={"hardware": 3})])
    assert d.submods[SUB].trust_vector.get("hardware") == 3


def test_veto_makes_the_worst_contraindicated_claim_win() -> None:
    d = decide(QuorumPolicy(k=1, n=3), [
        vote("a", A, vector={"hardware": 2}), vote("b", C, vector={"hardware": 96}),
        vote("c", C, vector={"hardware": 99}),
    ])
    assert d.submods[SUB].trust_vector.get("hardware") == 99
    assert d.submods[SUB].vetoed_by == ("b", "c")
    assert d.status is C


# --- distinct operators --------------------------------------------------------------------------------

@pytest.mark.parametrize(("k", "members", "expected"), [
    (2, (("a", "acme", A), ("b", "acme", A)), N),  # one operator counts once
    (2, (("a", "acme", A), ("b", "globex", A)), A),
    (2, (("a", "acme", A), ("b", "acme", A), ("c", "globex", W)), W),
    (2, (("a", "acme", A), ("b", "acme", W), ("c", "globex", A)), A),  # acme counts at its best
    (2, (("a", "acme", A), ("b", "acme", C), ("c", "globex", A)), C),  # but any ok backend vetoes
    (1, (("a", "acme", W), ("b", "acme", A)), A),
    (3, (("a", "acme", A), ("b", "globex", A), ("c", "initech", A), ("d", "initech", A)), A),
    (3, (("a", "acme", A), ("b", "globex", A), ("c", "globex", A), ("d", "globex", A)), N),
])
def test_distinct_operators(k: int, members: tuple[tuple[str, str, Tier], ...], expected: Tier) -> None:
    policy = QuorumPolicy(k=k, n=len(members), distinct_operators=True)
    votes = [vote(b, s, operator=op) for b, op, s in members]
    d = decide(policy, votes)
    assert d.status is expected
    assert d.voters == len({op for _, op, _ in members})
    # without distinctness every backend is a voter
    plain = decide(QuorumPolicy(k=k, n=len(members)), votes)
    assert plain.voters == len(members)


def test_distinct_operators_off_counts_backends() -> None:
    votes = [vote("a", A, operator="acme"), vote("b", A, operator="acme")]
    assert decide(QuorumPolicy(k=2, n=2), votes).status is A
    assert decide(QuorumPolicy(k=2, n=2, distinct_operators=True), votes).status is N


# --- explain() -----------------------------------------------------------------------------------------

def test_explain_is_one_line_naming_everyone() -> None:
    policy = QuorumPolicy(k=2, n=4)
    d = decide(policy, [vote("a", A), vote("b", A), vote("c", W), failed("d", Outcome.TIMEOUT)])
    line = d.explain()
    assert "\n" not in line
    assert line == "affirming: 2-of-4, veto, wait=all: 3 ok voter(s); agreed a,b; dissented c; failed d (timeout)"


def test_explain_names_vetoes_not_awaited_and_distinctness() -> None:
    policy = QuorumPolicy(k=2, n=4, wait="quorum", distinct_operators=True)
    d = decide(policy, [vote("a", A, operator="x"), vote("b", C, operator="y"), failed("c", Outcome.MALFORMED),
                        failed("d", Outcome.NOT_AWAITED)])
    line = d.explain()
    assert "\n" not in line
    assert line.startswith("contraindicated: 2-of-4, veto, wait=quorum, distinct operators: 2 ok voter(s)")
    assert "agreed b" in line and "dissented a" in line
    assert "failed c (malformed)" in line
    assert "not awaited d (veto applied to received votes only)" in line
    assert line.endswith("vetoed by b")


def test_explain_without_veto() -> None:
    d = decide(QuorumPolicy(k=1, n=1, veto=False), [vote("a", N)])
    assert d.explain() == "none: 1-of-1, no veto, wait=all: 1 ok voter(s); agreed a"


def test_policy_describe_and_as_dict() -> None:
    p = QuorumPolicy(k=3, n=5, veto=False, wait="quorum", distinct_operators=True, id="acme:policy/7")
    assert p.describe() == "3-of-5, no veto, wait=quorum, distinct operators"
    assert p.as_dict() == {"id": "acme:policy/7", "k": 3, "n": 5, "veto": False, "wait": "quorum",
                           "distinct_operators": True}


# --- is_final ------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("k", "received", "pending", "final"), [
    (2, (A, A), 1, True),  # k affirm: nothing can raise
    (2, (A,), 2, False),
    (2, (A, W), 1, False),  # a third affirming would make it affirming
    (3, (A, A, W), 1, False),  # a fourth affirming makes three
    (2, (C,), 2, True),  # vetoed: nothing can lift a veto
    (2, (), 2, False),
    (3, (N,), 2, True),  # two pending can never make three
    (2, (W, W), 1, True),  # one more affirming cannot make two
    (2, (W, W, N), 2, False),
])
def test_is_final(k: int, received: tuple[Tier, ...], pending: int, final: bool) -> None:
    votes = votes_of(*received)
    waiting = [(f"p{i}", f"op-p{i}") for i in range(pending)]
    policy = QuorumPolicy(k=k, n=len(received) + pending, wait="quorum")
    assert is_final(policy, votes, waiting) is final


def test_is_final_with_nothing_pending() -> None:
    assert is_final(QuorumPolicy(k=1, n=1), [failed("a")], [])


def test_is_final_counts_pending_operators_once() -> None:
    policy = QuorumPolicy(k=2, n=3, wait="quorum", distinct_operators=True)
    received = [vote("a", A, operator="acme")]
    assert is_final(policy, received, [("b", "acme"), ("c", "acme")])  # acme is already counted
    assert not is_final(policy, received, [("b", "acme"), ("c", "globex")])


# --- QuorumPolicy validation -----------------------------------------------------------------------------

@pytest.mark.parametrize(("kwargs", "key"), [
    ({"k": 0, "n": 3}, "quorum.k"),
    ({"k": -1, "n": 3}, "quorum.k"),
    ({"k": 4, "n": 3}, "quorum.k"),
    ({"k": 1, "n": 0}, "quorum.k"),
    ({"k": True, "n": 3}, "quorum.k"),
    ({"k": 2.0, "n": 3}, "quorum.k"),
    ({"k": "2", "n": 3}, "quorum.k"),
    ({"k": 2, "n": 3, "wait": "some"}, "quorum.wait"),
    ({"k": 2, "n": 3, "wait": "ALL"}, "quorum.wait"),
    ({"k": 2, "n": 3, "veto": "no"}, "quorum.veto"),
    ({"k": 2, "n": 3, "distinct_operators": 1}, "quorum.distinct_operators"),
])
def test_policy_validation(kwargs: dict[str, object], key: str) -> None:
    with pytest.raises(ConfigError) as err:
        QuorumPolicy(**kwargs)  # type: ignore[arg-type]
    assert err.value.key == key
    assert key in str(err.value)


def test_policy_defaults_are_the_safe_ones() -> None:
    p = QuorumPolicy(k=2, n=3)
    assert (p.veto, p.wait, p.distinct_operators) == (True, "all", False)
