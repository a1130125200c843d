"""The engine with fault-injecting backends that implement the real Backend protocol.

Every fault is a real defect in what a backend sends or does (tests/fakes.py), caught by the
federation's real checks: each ends in its DESIGN §1 outcome, and none can raise the combined
status. Waiting, stragglers, sessions and the combined token are checked end to end.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import pytest
from fakes import EVIDENCE, NOW, FakeVerifier, Fault

from federation.ar4si import Tier
from federation.ear import peek_claims
from federation.engine import Federation, Member, Session
from federation.errors import ConfigError, StaleError, UsageError
from federation.evidence import Evidence
from federation.keys import SigningKey, TrustAnchor
from federation.provenance import find_provenance, parse_provenance
from federation.quorum import QuorumPolicy
from federation.result import AppraisalResult, verify_result
from federation.votes import Outcome
from verifiers.base import Backend, ChallengingBackend, RawResult

A, W, C, N = Tier.AFFIRMING, Tier.WARNING, Tier.CONTRAINDICATED, Tier.NONE

# fault -> the outcome it must end in (the backend would otherwise have affirmed)
FAULTS: dict[Fault, Outcome] = {
    "hang": Outcome.TIMEOUT,
    "raise": Outcome.ERROR,
    "unreachable": Outcome.UNREACHABLE,
    "http-error": Outcome.HTTP_ERROR,
    "bad-signature": Outcome.BAD_SIGNATURE,
    "untrusted-key": Outcome.UNTRUSTED_KEY,
    "wrong-nonce": Outcome.NONCE_MISMATCH,
    "stale": Outcome.STALE,
    "malformed": Outcome.MALFORMED,
    "garbage": Outcome.MALFORMED,
    "no-token": Outcome.MALFORMED,
}
FORMATS = ("jwt", "cwt")
TIMEOUT = 0.3  # per-backend timeout in the fault tests: "hang" ends here


@pytest.fixture(scope="module")
def fed_key() -> SigningKey:
    return SigningKey.generate("ES256")


@pytest.fixture(scope="module")
def fed_anchor(fed_key: SigningKey) -> TrustAnchor:
    return TrustAnchor((fed_key.public,))


def federation(fed_key: SigningKey, backends: Sequence[FakeVerifier], k: int, *, timeout: float = TIMEOUT,
               clock: Callable[[], float] = lambda: NOW, **kw: object) -> Federation:
    policy_kw = {x: kw.pop(x) for x in ("veto", "wait", "distinct_operators") if x in kw}
    policy = QuorumPolicy(k=k, n=len(backends), **policy_kw)  # type: ignore[arg-type]
    return Federation([b.member(timeout=timeout) for b in backends], policy, fed_key, clock=clock,
                      **kw)  # type: ignore[arg-type]


def outcomes(r: AppraisalResult) -> dict[str, Outcome]:
    return {v.backend: v.outcome for v in r.votes}


# --- each fault ends in its outcome ---------------------------------------------------------------

@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize(("fault", "outcome"), list(FAULTS.items()))
async def test_fault_ends_in_its_outcome(fed_key: SigningKey, fault: Fault, outcome: Outcome, fmt: str) -> None:
    bad = FakeVerifier("bad", fault=fault, fmt=fmt)  # type: ignore[arg-type]
    r = await federation(fed_key, [bad], 1).appraise(EVIDENCE)
    (vote,) = r.votes
    assert vote.outcome is outcome, vote.detail
    assert vote.ear is None
    assert vote.detail
    assert r.status == "none"
    assert r.decision.failed == (("bad", outcome),)


@pytest.mark.parametrize("fmt", FORMATS)
async def test_a_healthy_backend_is_ok(fed_key: SigningKey, fmt: str) -> None:
    good = FakeVerifier("good", fmt=fmt)  # type: ignore[arg-type]
    r = await federation(fed_key, [good], 1).appraise(EVIDENCE)
    (vote,) = r.votes
    assert vote.outcome is Outcome.OK
    assert vote.key_thumbprint == good.key.public.thumbprint
    assert vote.latency_ms is not None and vote.latency_ms >= 0
    assert r.status == "affirming"


async def test_slow_but_in_time_is_ok_and_slow_past_its_timeout_is_a_timeout(fed_key: SigningKey) -> None:
    slow = FakeVerifier("slow", fault="slow", delay=0.1)
    r = await federation(fed_key, [slow], 1, timeout=2.0).appraise(EVIDENCE)
    assert outcomes(r) == {"slow": Outcome.OK}
    assert r.votes[0].latency_ms is not None and r.votes[0].latency_ms >= 90
    r = await federation(fed_key, [FakeVerifier("slow", fault="slow", delay=0.5)], 1, timeout=0.1).appraise(EVIDENCE)
    assert outcomes(r) == {"slow": Outcome.TIMEOUT}


async def test_transient_failures_are_retried(fed_key: SigningKey) -> None:
    flaky = FakeVerifier("flaky", fault="flaky")
    r = await federation(fed_key, [flaky], 1, timeout=5.0).appraise(EVIDENCE)
    assert outcomes(r) == {"flaky": Outcome.OK}
    assert flaky.calls == 2
    down = FakeVerifier("down", fault="unreachable")
    r = await federation(fed_key, [down], 1, timeout=5.0).appraise(EVIDENCE)
    assert outcomes(r) == {"down": Outcome.UNREACHABLE}
    assert down.calls == 2  # Member.retries = 1 extra attempt
    busy = FakeVerifier("busy", fault="http-error")
    await federation(fed_key, [busy], 1, timeout=5.0).appraise(EVIDENCE)
    assert busy.calls == 2  # 503 is transient too


@pytest.mark.parametrize("fault", ["raise", "bad-signature", "wrong-nonce", "stale", "malformed"])
async def test_verification_failures_are_not_retried(fed_key: SigningKey, fault: Fault) -> None:
    bad = FakeVerifier("bad", fault=fault)
    await federation(fed_key, [bad], 1, timeout=5.0).appraise(EVIDENCE)
    assert bad.calls == 1


# --- no fault can raise the combined status -----------------------------------------------------

@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("fault", list(FAULTS))
async def test_no_fault_raises_the_combined_status(fed_key: SigningKey, fault: Fault, fmt: str) -> None:
    def build(f: Fault, k: int, good: Sequence[Tier]) -> Federation:
        vs = [FakeVerifier(f"good{i}", status=s, fmt=fmt) for i, s in enumerate(good)]  # type: ignore[arg-type]
        vs.append(FakeVerifier("third", status=A, fault=f, fmt=fmt))  # type: ignore[arg-type]
        return federation(fed_key, vs, k)

    # 2-of-3, two good affirming: still affirming, decided by the good ones alone.
    r = await build(fault, 2, [A, A]).appraise(EVIDENCE)
    assert r.status == "affirming"
    assert r.decision.agreed == ("good0", "good1")
    assert outcomes(r)["third"] is FAULTS[fault]
    # 3-of-3 with one faulty: quorum cannot be reached (the honest twin would have affirmed).
    assert (await build("none", 3, [A, A]).appraise(EVIDENCE)).status == "affirming"
    assert (await build(fault, 3, [A, A]).appraise(EVIDENCE)).status == "none"
    # 2-of-3 over two good warnings: the faulty "affirming" cannot lift it.
    assert (await build("none", 2, [A, W]).appraise(EVIDENCE)).status == "affirming"
    assert (await build(fault, 2, [A, W]).appraise(EVIDENCE)).status == "warning"
    # 1-of-2: one good warning; an honest affirming twin would make it affirming, the faulty one cannot.
    assert (await build("none", 1, [W]).appraise(EVIDENCE)).status == "affirming"
    assert (await build(fault, 1, [W]).appraise(EVIDENCE)).status == "warning"


@pytest.mark.parametrize("fault", ["bad-signature", "untrusted-key", "wrong-nonce", "stale"])
async def test_a_faulty_contraindicated_result_cannot_veto(fed_key: SigningKey, fault: Fault) -> None:
    """The other direction: only ok results count, so a forged 'contraindicated' is ignored too."""
    vs = [FakeVerifier("good"), FakeVerifier("liar", status=C, fault=fault)]
    r = await federation(fed_key, vs, 1).appraise(EVIDENCE)
    assert r.status == "affirming"
    r = await federation(fed_key, [FakeVerifier("good"), FakeVerifier("honest", status=C)], 1).appraise(EVIDENCE)
    assert r.status == "contraindicated"


async def test_a_raising_backend_never_crashes_the_federation(fed_key: SigningKey) -> None:
    @dataclass
    class Exploding:
        name: str = "boom"
        operator: str = "op-boom"
        kind: str = "fake"

        async def appraise(self, evidence: Evidence, nonce: bytes, deadline: float) -> RawResult:
            raise ZeroDivisionError("bug")

    boom = Exploding()
    assert isinstance(boom, Backend)
    good = FakeVerifier("good")
    members = [good.member(), Member(boom, good.public_anchor, timeout=1.0)]
    fed = Federation(members, QuorumPolicy(1, 2), fed_key, clock=lambda: NOW)
    r = await fed.appraise(EVIDENCE)
    assert outcomes(r) == {"good": Outcome.OK, "boom": Outcome.ERROR}
    assert r.status == "affirming"


# --- waiting --------------------------------------------------------------------------------------

async def timed(fed: Federation, evidence: Evidence = EVIDENCE) -> tuple[AppraisalResult, float]:
    loop = asyncio.get_running_loop()
    start = loop.time()
    r = await fed.appraise(evidence)
    return r, loop.time() - start


async def test_wait_quorum_does_not_wait_for_a_hung_backend(fed_key: SigningKey) -> None:
    hung = FakeVerifier("hung", fault="hang")
    fast = [FakeVerifier("fast1", delay=0.05), FakeVerifier("fast2", delay=0.05)]
    fed = federation(fed_key, [*fast, hung], 2, timeout=3600.0, wait="quorum", deadline=3600.0)
    r, elapsed = await timed(fed)
    assert elapsed < 1.0
    assert r.status == "affirming"
    assert outcomes(r) == {"fast1": Outcome.OK, "fast2": Outcome.OK, "hung": Outcome.NOT_AWAITED}
    assert r.decision.not_awaited == ("hung",)
    assert "not awaited hung (veto applied to received votes only)" in r.decision.explain()
    prov = parse_provenance(find_provenance(r.ear))
    assert [v.outcome for v in prov.votes] == [Outcome.OK, Outcome.OK, Outcome.NOT_AWAITED]


async def test_wait_all_waits_for_the_hung_backends_timeout(fed_key: SigningKey) -> None:
    hung = FakeVerifier("hung", fault="hang")
    fast = [FakeVerifier("fast1", delay=0.05), FakeVerifier("fast2", delay=0.05)]
    r, elapsed = await timed(federation(fed_key, [*fast, hung], 2, timeout=0.5, wait="all"))
    assert 0.45 <= elapsed < 3.0
    assert outcomes(r) == {"fast1": Outcome.OK, "fast2": Outcome.OK, "hung": Outcome.TIMEOUT}
    assert r.status == "affirming"


async def test_wait_quorum_decides_at_the_kth_fastest(fed_key: SigningKey) -> None:
    vs = [FakeVerifier("f1", delay=0.05), FakeVerifier("f2", delay=0.1), FakeVerifier("slow", delay=2.0)]
    r, elapsed = await timed(federation(fed_key, vs, 2, timeout=10.0, wait="quorum"))
    assert elapsed < 1.0
    assert outcomes(r)["slow"] is Outcome.NOT_AWAITED


async def test_wait_quorum_keeps_waiting_while_a_pending_answer_could_raise(fed_key: SigningKey) -> None:
    """Fast votes disagree (affirming, warning): the third could still make it affirming."""
    vs = [FakeVerifier("f1", delay=0.05), FakeVerifier("f2", status=W, delay=0.05),
          FakeVerifier("late", delay=0.4)]
    r, elapsed = await timed(federation(fed_key, vs, 2, timeout=5.0, wait="quorum"))
    assert elapsed >= 0.35
    assert outcomes(r)["late"] is Outcome.OK
    assert r.status == "affirming"


async def test_wait_quorum_stops_once_a_veto_is_in(fed_key: SigningKey) -> None:
    vs = [FakeVerifier("veto", status=C, delay=0.05), FakeVerifier("hung", fault="hang")]
    r, elapsed = await timed(federation(fed_key, vs, 1, timeout=3600.0, wait="quorum", deadline=3600.0))
    assert elapsed < 1.0
    assert r.status == "contraindicated"
    assert outcomes(r)["hung"] is Outcome.NOT_AWAITED


async def test_the_overall_deadline_bounds_everything(fed_key: SigningKey) -> None:
    vs = [FakeVerifier("fast", delay=0.05), FakeVerifier("hung", fault="hang")]
    r, elapsed = await timed(federation(fed_key, vs, 2, timeout=3600.0, wait="all", deadline=0.4))
    assert 0.35 <= elapsed < 2.0
    assert outcomes(r) == {"fast": Outcome.OK, "hung": Outcome.TIMEOUT}
    assert r.status == "none"


async def test_a_cancelled_straggler_is_really_cancelled(fed_key: SigningKey) -> None:
    started = asyncio.Event()
    finished: list[str] = []

    @dataclass
    class Sleeper:
        name: str = "sleeper"
        operator: str = "op-s"
        kind: str = "fake"

        async def appraise(self, evidence: Evidence, nonce: bytes, deadline: float) -> RawResult:
            started.set()
            await asyncio.sleep(3600)
            finished.append(self.name)  # pragma: no cover - must never run
            raise AssertionError("not cancelled")

    good = [FakeVerifier("a", delay=0.02), FakeVerifier("b", delay=0.02)]
    members = [g.member(timeout=60.0) for g in good] + [Member(Sleeper(), good[0].public_anchor, timeout=60.0)]
    fed = Federation(members, QuorumPolicy(2, 3, wait="quorum"), fed_key, clock=lambda: NOW, deadline=60.0)
    r = await fed.appraise(EVIDENCE)
    assert started.is_set()
    assert outcomes(r)["sleeper"] is Outcome.NOT_AWAITED
    await asyncio.sleep(0.05)
    assert finished == []
    assert not [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]


# --- sessions and nonces ------------------------------------------------------------------------------

@dataclass
class Clock:
    now: float = NOW

    def __call__(self) -> float:
        return self.now


async def test_two_phase_session_binds_every_vote_to_the_session_nonce(fed_key: SigningKey,
                                                                       fed_anchor: TrustAnchor) -> None:
    vs = [FakeVerifier("a"), FakeVerifier("b", fmt="cwt")]
    fed = federation(fed_key, vs, 2)
    s = await fed.challenge()
    assert isinstance(s, Session) and len(s.nonce) == 32
    r = await fed.appraise(EVIDENCE, session=s)
    assert r.nonce == s.nonce
    assert r.ear.nonce == s.nonce
    assert r.status == "affirming"
    for v in r.votes:  # each backend's own signed result echoes the session nonce
        assert v.raw is not None
        fmt, claims = peek_claims(v.raw)
        echoed = claims["eat_nonce"] if fmt == "jwt" else claims[10]
        assert (base64.urlsafe_b64decode(echoed) if isinstance(echoed, str) else echoed) == s.nonce
    verify_result(r.token, fed_anchor, nonce=s.nonce, now=NOW)
    other = await fed.challenge()
    assert other.nonce != s.nonce


async def test_a_given_nonce_is_used_and_checked(fed_key: SigningKey) -> None:
    fed = federation(fed_key, [FakeVerifier("a")], 1)
    nonce = bytes(range(16))
    s = await fed.challenge(nonce)
    assert s.nonce == nonce
    assert (await fed.appraise(EVIDENCE, nonce)).nonce == nonce
    with pytest.raises(UsageError):
        await fed.appraise(EVIDENCE, b"\x01" * 16, session=s)
    for bad in (b"short", b"x" * 65):
        with pytest.raises(UsageError):
            await fed.appraise(EVIDENCE, bad)
        with pytest.raises(UsageError):
            await fed.challenge(bad)


async def test_every_appraisal_gets_a_fresh_nonce(fed_key: SigningKey) -> None:
    fed = federation(fed_key, [FakeVerifier("a")], 1)
    first, second = await fed.appraise(EVIDENCE), await fed.appraise(EVIDENCE)
    assert first.nonce != second.nonce and len(first.nonce) == 32


async def test_an_expired_session_is_stale(fed_key: SigningKey) -> None:
    clock = Clock()
    fed = federation(fed_key, [FakeVerifier("a")], 1, clock=clock, session_ttl=60.0)
    s = await fed.challenge()
    clock.now += 59
    assert (await fed.appraise(EVIDENCE, session=s)).status == "affirming"
    clock.now += 2
    with pytest.raises(StaleError):
        await fed.appraise(EVIDENCE, session=s)


async def test_backends_that_mint_their_own_challenge_are_asked_in_phase_1(fed_key: SigningKey) -> None:
    @dataclass
    class Challenging(FakeVerifier):
        seen: bytes | None = None

        async def challenge(self, nonce: bytes, deadline: float) -> bytes | None:
            self.seen = nonce
            return b"vendor-challenge-" + nonce[:4]

    minting = Challenging("minting")
    assert isinstance(minting, ChallengingBackend)
    plain = FakeVerifier("plain")
    assert not isinstance(plain, ChallengingBackend)
    fed = federation(fed_key, [minting, plain], 2)
    s = await fed.challenge()
    assert minting.seen == s.nonce
    assert s.challenges == {"minting": b"vendor-challenge-" + s.nonce[:4]}


# --- the combined token ----------------------------------------------------------------------------

def sha256_b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


@pytest.mark.parametrize("fmt", FORMATS)
async def test_the_combined_token_carries_nonce_provenance_digests_and_thumbprints(
        fed_key: SigningKey, fed_anchor: TrustAnchor, fmt: str) -> None:
    vs = [FakeVerifier("a"), FakeVerifier("b", status=W, fmt="cwt"), FakeVerifier("c", fault="bad-signature"),
          FakeVerifier("d", fault="hang")]
    fed = federation(fed_key, vs, 2, result_format=fmt, federation_id="fed-test")
    s = await fed.challenge()
    r = await fed.appraise(EVIDENCE, session=s)
    assert r.format == fmt
    assert r.status == "warning"
    verified = verify_result(r.token, fed_anchor, nonce=s.nonce, now=NOW)
    assert verified.status == "warning"
    assert verified.ear.nonce in (s.nonce, base64.urlsafe_b64encode(s.nonce).decode())
    assert verified.ear.iat == NOW and verified.ear.exp == NOW + fed.ttl
    assert set(verified.ear.submods) == {"PSA_IOT"}
    prov = verified.provenance
    assert prov is not None
    assert prov.federation == "fed-test"
    assert prov.policy == fed.policy
    assert prov.decision == r.decision.explain()
    assert [v.name for v in prov.votes] == ["a", "b", "c", "d"]
    assert [v.outcome for v in prov.votes] == [Outcome.OK, Outcome.OK, Outcome.BAD_SIGNATURE, Outcome.TIMEOUT]
    by_name = {v.backend: v for v in r.votes}
    for rec in prov.votes:
        vote = by_name[rec.name]
        assert rec.operator == f"op-{rec.name}"
        if vote.raw is not None:
            assert rec.result_sha256 == sha256_b64url(vote.raw)
            assert rec.result == vote.raw  # embedded
        else:
            assert rec.result_sha256 is None and rec.result is None
    assert prov.votes[0].key_thumbprint == vs[0].key.public.thumbprint
    assert prov.votes[1].key_thumbprint == vs[1].key.public.thumbprint
    assert prov.votes[2].key_thumbprint is None  # it never verified: no key to name
    assert (prov.votes[0].status, prov.votes[1].status) == ("affirming", "warning")
    assert prov.raw["evidence"] == {"media_type": EVIDENCE.media_type, "sha256": sha256_b64url(EVIDENCE.data)}
    # and the RP can re-verify every vote with the backends' anchors
    again = verify_result(r.token, fed_anchor, nonce=s.nonce, now=NOW, reverify=True,
                          anchors={b.name: b.public_anchor for b in vs})
    assert again.decision is not None and again.decision.status is W


async def test_results_are_not_embedded_when_told_not_to(fed_key: SigningKey, fed_anchor: TrustAnchor) -> None:
    vs = [FakeVerifier("a"), FakeVerifier("b")]
    r = await federation(fed_key, vs, 2, embed_results=False).appraise(EVIDENCE)
    prov = verify_result(r.token, fed_anchor, now=NOW).provenance
    assert prov is not None
    assert all(v.result is None and v.result_sha256 for v in prov.votes)


async def test_rename_maps_backend_submods_to_federation_names(fed_key: SigningKey) -> None:
    a, b = FakeVerifier("a", submod="PSA_IOT"), FakeVerifier("b", submod="psa-iot")
    fed = Federation([a.member(), b.member(rename={"psa-iot": "PSA_IOT"})], QuorumPolicy(2, 2), fed_key,
                     clock=lambda: NOW)
    r = await fed.appraise(EVIDENCE)
    assert set(r.ear.submods) == {"PSA_IOT"}
    assert r.status == "affirming"


# --- construction ----------------------------------------------------------------------------------

def test_federation_validates_its_policy(fed_key: SigningKey) -> None:
    a, b = FakeVerifier("a", operator="acme"), FakeVerifier("b", operator="acme")
    with pytest.raises(ConfigError, match="n=3"):
        Federation([a.member(), b.member()], QuorumPolicy(2, 3), fed_key)
    with pytest.raises(ConfigError, match="distinct operators"):
        Federation([a.member(), b.member()], QuorumPolicy(2, 2, distinct_operators=True), fed_key)
    with pytest.raises(ConfigError, match="unique"):
        Federation([a.member(), FakeVerifier("a").member()], QuorumPolicy(1, 2), fed_key)
    with pytest.raises(ConfigError):
        Federation([a.member()], QuorumPolicy(1, 1), fed_key, deadline=0)


async def test_the_federation_is_an_async_context_manager(fed_key: SigningKey) -> None:
    closed: list[str] = []

    @dataclass
    class Closable(FakeVerifier):
        async def aclose(self) -> None:
            closed.append(self.name)
            raise RuntimeError("closing must not mask the caller's outcome")

    async with Federation([Closable("a").member(), FakeVerifier("b").member()], QuorumPolicy(1, 2), fed_key,
                          clock=lambda: NOW) as fed:
        assert (await fed.appraise(EVIDENCE)).status == "affirming"
    assert closed == ["a"]
