"""The k-of-n quorum rule (DESIGN §3-7) as a pure function of the votes.

Theory of operation, per submodule:

1. Only ``ok`` votes count. Votes are grouped by *voter*: the backend, or its operator when
   ``distinct_operators`` is on; a voter with several backends counts once, at the best of its
   statuses (DESIGN §3: "at least k ok results, counting distinct operators"). So an operator
   never counts twice, and a failing second backend of an operator can never help it.
2. Status: the best tier T (affirming > warning > contraindicated) such that at least k voters
   report a status at least as good as T; ``none`` supports nothing. No tier reaches k -> none.
3. Veto (default on): any ok vote saying contraindicated makes the submodule contraindicated.
4. Trust vector: each claim is the k-th best value over *all* ok voters, in the order of
   :func:`claim_order`: affirming values > no claim (0, 1, -1, then absent) > warning values >
   contraindicated values, with :func:`federation.ar4si.claim_rank`'s tie rule inside a range.
   A voter that is silent on a claim raised no finding against it, so it ranks above one that
   reports a warning: a warning claim reaches the combined vector only when it keeps k voters
   from agreeing on better, exactly as a warning status does. Fewer than k voters -> absent;
   with veto, a contraindicated value wins.
5. The status is then capped by its own vector's worst claim (EAR §3.1).

Each step can only lower the result when a vote gets worse or fails: that is the fail-closed
property the tests check with hypothesis. (Ranking "no claim" *below* warning values, as the
support order of ``claim_rank`` does, breaks it: an affirming voter that stops reporting a claim
would uncap a lone warning and raise the status.) :func:`is_final` answers the ``wait = "quorum"``
question "can the backends still pending change any status?" by deciding again with every
pending backend imagined perfect, which is sound because of that monotonicity.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

from .ar4si import Tier, TrustVector, cap_status, claim_rank, tier_of_claim
from .ear.model import PROFILE_VERAISON, Appraisal, Ear, VerifierId
from .errors import ConfigError
from .votes import Outcome, Vote

__all__ = ["FALLBACK_SUBMOD", "Decision", "QuorumPolicy", "SubmodDecision", "Wait", "claim_order", "decide", "is_final"]

Wait = Literal["all", "quorum"]
FALLBACK_SUBMOD = "federation"  # the submodule reported when no ok vote named any


@dataclass(frozen=True, slots=True)
class QuorumPolicy:
    """k-of-n with veto, waiting mode and operator distinctness; valid once built."""

    k: int
    n: int
    veto: bool = True
    wait: Wait = "all"
    distinct_operators: bool = False
    id: str = "ratsfed:quorum/v1"
    # Count votes bound to the session only by an echoed nonce (federation.binding)? Off: such a
    # vote would be the same for a replayed quote.
    weak_binding: bool = False

    def __post_init__(self) -> None:
        if any(not isinstance(x, int) or isinstance(x, bool) for x in (self.k, self.n)) or not (
                1 <= self.k <= self.n):
            raise ConfigError(f"quorum needs 1 <= k <= n (k={self.k!r}, n={self.n!r})", key="quorum.k")
        if self.wait not in ("all", "quorum"):
            raise ConfigError(f"wait must be 'all' or 'quorum', not {self.wait!r}", key="quorum.wait")
        # Also built from a token's provenance: "veto": "no" must not read as true.
        for key in ("veto", "distinct_operators", "weak_binding"):
            if not isinstance(getattr(self, key), bool):
                raise ConfigError(f"{key} must be true or false", key=f"quorum.{key}")
        if not isinstance(self.id, str):
            raise ConfigError("policy id must be text", key="quorum.policy_id")

    def describe(self) -> str:
        parts = [f"{self.k}-of-{self.n}", "veto" if self.veto else "no veto", f"wait={self.wait}"]
        if self.distinct_operators:
            parts.append("distinct operators")
        if self.weak_binding:
            parts.append("nonce-echo votes count")
        return ", ".join(parts)

    def as_dict(self) -> dict[str, object]:
        out: dict[str, object] = {"id": self.id, "k": self.k, "n": self.n, "veto": self.veto, "wait": self.wait,
                                  "distinct_operators": self.distinct_operators}
        if self.weak_binding:  # only when on, so results of policies without it stay byte-identical
            out["weak_binding"] = True
        return out


@dataclass(frozen=True, slots=True)
class SubmodDecision:
    status: Tier
    trust_vector: TrustVector
    supporters: tuple[str, ...] = ()  # ok backends whose status here is at least ``status``
    vetoed_by: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Decision:
    """The quorum's verdict and who it rests on; explains itself in one line."""

    policy: QuorumPolicy
    submods: Mapping[str, SubmodDecision]
    agreed: tuple[str, ...] = ()
    dissented: tuple[str, ...] = ()
    failed: tuple[tuple[str, Outcome], ...] = ()
    not_awaited: tuple[str, ...] = ()
    voters: int = 0  # distinct ok voters
    notes: tuple[str, ...] = field(default=())

    @property
    def status(self) -> Tier:
        statuses = [d.status for d in self.submods.values()]
        if Tier.CONTRAINDICATED in statuses:
            return Tier.CONTRAINDICATED
        return min(statuses, key=lambda t: t.rank)

    def explain(self) -> str:
        """One line, e.g. ``affirming: 2-of-3, veto, wait=all: agreed a,b; dissented c; failed d (timeout)``."""
        out = f"{self.status.label}: {self.policy.describe()}: {self.voters} ok voter(s)"
        if self.agreed:
            out += f"; agreed {','.join(self.agreed)}"
        if self.dissented:
            out += f"; dissented {','.join(self.dissented)}"
        if self.failed:
            out += "; failed " + ",".join(f"{b} ({o.value})" for b, o in self.failed)
        if self.not_awaited:
            out += f"; not awaited {','.join(self.not_awaited)} (veto applied to received votes only)"
        vetoes = sorted({b for d in self.submods.values() for b in d.vetoed_by})
        if vetoes:
            out += f"; vetoed by {','.join(vetoes)}"
        return out


def _status_in(vote: Vote, name: str) -> Tier:
    assert vote.ear is not None
    a = vote.ear.submods.get(name)
    return a.status if a is not None else Tier.NONE


def _claim_in(vote: Vote, name: str, claim: str) -> int | None:
    assert vote.ear is not None
    a = vote.ear.submods.get(name)
    if a is None or a.trust_vector is None:
        return None
    return a.trust_vector.get(claim)


_CLAIM_GROUP = {Tier.AFFIRMING: 3, Tier.NONE: 2, Tier.WARNING: 1, Tier.CONTRAINDICATED: 0}


def claim_order(value: int | None) -> tuple[int, int, int]:
    """The order of the trust-vector order statistic (larger = better; ``None`` = absent).

    Ranges: affirming > no claim > warning > contraindicated; inside a range the tie rule of
    :func:`federation.ar4si.claim_rank`; absent is the lowest of the no-claim range.
    """
    if value is None:
        return (_CLAIM_GROUP[Tier.NONE], -1, 0)
    _, standard, closeness = claim_rank(value)
    return (_CLAIM_GROUP[tier_of_claim(value)], standard, closeness)


def _voter(policy: QuorumPolicy, vote: Vote) -> str:
    return vote.operator if policy.distinct_operators else vote.backend


def _decide_submod(policy: QuorumPolicy, ok: Sequence[Vote], name: str) -> SubmodDecision:
    per_voter: dict[str, Tier] = {}
    for v in ok:
        key, st = _voter(policy, v), _status_in(v, name)
        prev = per_voter.get(key)
        per_voter[key] = st if prev is None or st.rank > prev.rank else prev
    status = Tier.NONE
    for tier in (Tier.AFFIRMING, Tier.WARNING, Tier.CONTRAINDICATED):
        if sum(1 for s in per_voter.values() if s.at_least(tier)) >= policy.k:
            status = tier
            break
    vetoers = tuple(v.backend for v in ok if _status_in(v, name) is Tier.CONTRAINDICATED)
    if policy.veto and vetoers:
        status = Tier.CONTRAINDICATED
    vector = _combine_vector(policy, ok, name)
    status = cap_status(status, vector)
    supporters = tuple(v.backend for v in ok if status is not Tier.NONE and _status_in(v, name).at_least(status))
    return SubmodDecision(status, vector, supporters, vetoers if policy.veto else ())


def _combine_vector(policy: QuorumPolicy, ok: Sequence[Vote], name: str) -> TrustVector:
    claims: set[str] = set()
    for v in ok:
        assert v.ear is not None
        a = v.ear.submods.get(name)
        if a is not None and a.trust_vector is not None:
            claims.update(c for c, _ in a.trust_vector)
    out: dict[str, int] = {}
    for claim in claims:
        per_voter: dict[str, int | None] = {}
        for v in ok:
            key, val = _voter(policy, v), _claim_in(v, name, claim)
            if key not in per_voter or claim_order(val) > claim_order(per_voter[key]):
                per_voter[key] = val
        values = sorted(per_voter.values(), key=claim_order, reverse=True)
        chosen: int | None = values[policy.k - 1] if len(values) >= policy.k else None
        if policy.veto:
            contra = [x for v in ok if (x := _claim_in(v, name, claim)) is not None
                      and tier_of_claim(x) is Tier.CONTRAINDICATED]
            if contra:
                chosen = min(contra, key=claim_rank)
        if chosen is not None:
            out[claim] = chosen
    return TrustVector.of(out)


def decide(policy: QuorumPolicy, votes: Sequence[Vote]) -> Decision:
    """The combined verdict over *votes* (one per backend that was asked)."""
    ok = [v for v in votes if v.ok]
    names = sorted({n for v in ok if v.ear is not None for n in v.ear.submods})
    submods = {n: _decide_submod(policy, ok, n) for n in names}
    if not submods:
        submods = {FALLBACK_SUBMOD: SubmodDecision(Tier.NONE, TrustVector())}
    decision = Decision(policy, submods)
    status = decision.status
    agreed = tuple(v.backend for v in ok if v.ear is not None and v.ear.status is status)
    dissented = tuple(v.backend for v in ok if v.ear is not None and v.ear.status is not status)
    failed = tuple((v.backend, v.outcome) for v in votes if not v.ok and v.outcome is not Outcome.NOT_AWAITED)
    not_awaited = tuple(v.backend for v in votes if v.outcome is Outcome.NOT_AWAITED)
    voters = len({_voter(policy, v) for v in ok})
    return Decision(policy, submods, agreed, dissented, failed, not_awaited, voters)


def _perfect(names: Sequence[str]) -> Ear:
    best = Appraisal(Tier.AFFIRMING, TrustVector.uniform(2))
    return Ear(PROFILE_VERAISON, 0, VerifierId("-", "-"), dict.fromkeys(names, best))


def is_final(policy: QuorumPolicy, received: Sequence[Vote], pending: Sequence[tuple[str, str]]) -> bool:
    """True when no answer from the *pending* (backend, operator) pairs could raise any status."""
    if not pending:
        return True
    # Cheap pre-check (decide() is O(n) per call and runs after every arrival): while fewer than
    # k voters have answered ok and nothing vetoed, every status is still none; it is final only
    # if the pending backends cannot make up the difference.
    ok = [v for v in received if v.ok]
    voters = {_voter(policy, v) for v in ok}
    vetoed = policy.veto and any(
        a.status is Tier.CONTRAINDICATED for v in ok if v.ear is not None for a in v.ear.submods.values())
    if len(voters) < policy.k and not vetoed:
        supporting = {_voter(policy, v) for v in ok if v.ear is not None
                      and any(a.status is not Tier.NONE for a in v.ear.submods.values())}
        possible = supporting | {o if policy.distinct_operators else b for b, o in pending}
        return len(possible) < policy.k
    current = decide(policy, received)
    names = [n for n in current.submods if n != FALLBACK_SUBMOD] or ["*"]
    hopeful = [Vote(b, o, "pending", Outcome.OK, ear=_perfect(names)) for b, o in pending]
    best = decide(policy, [*received, *hopeful])
    if names == ["*"]:
        return best.status is Tier.NONE
    if any(current.submods[n].status is not best.submods[n].status for n in names):
        return False
    return current.status is best.status
