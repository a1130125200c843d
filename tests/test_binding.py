"""The federation's REPORT_DATA rule (federation.binding) and how the engine applies it.

What a user relies on: the 64 bytes commit to the session nonce and to every backend's challenge
(change any input and they change); a stored session rebuilds the same bytes; a member configured
with ``nonce = "report-data"`` is sent exactly those bytes and its echo is checked against them; a
vote bound only by an echoed nonce never counts unless the policy says so, and the RP's
re-verification holds the federation to the same rule.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import pytest
from fakes import NOW, FakeVerifier
from hypothesis import given
from hypothesis import strategies as st

from federation.binding import Binding, BindingStrength
from federation.ear.token import VerifiedEar, verify_ear
from federation.engine import Federation, Member
from federation.errors import ConfigError, PolicyError
from federation.evidence import Evidence
from federation.keys import SigningKey, TrustAnchor, b64url_decode
from federation.quorum import QuorumPolicy
from federation.result import verify_result
from federation.votes import Outcome
from verifiers.base import RawResult, session_binding
from verifiers.normalize import Check, register_checker

EVIDENCE = Evidence("application/octet-stream", b"evidence bytes")
N = bytes(range(32))


def test_report_data_is_sha512_over_prefix_and_canonical_runtime_data() -> None:
    b = Binding(N, {"ita": b"\x01\x02", "google": b"ch"}, prefix=b"VAL" + b"IAT")
    doc = json.loads(b.runtime_data)
    nonce_b64 = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8"
    assert doc == {"challenges": {"google": "Y2g", "ita": "AQI"}, "nonce": nonce_b64}
    assert b.runtime_data == json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()
    assert b.report_data == hashlib.sha512(b"VALIAT" + b.runtime_data).digest()
    assert len(b.report_data) == 64 and b.hashed == b"VALIAT" + b.runtime_data
    assert b.matches(b.report_data) and b.matches(b.report_data.hex()) and b.matches(b.report_data.hex().upper())
    assert not b.matches(b.report_data[:32]) and not b.matches("zz") and not b.matches(None)
    assert Binding(N).runtime_data == b'{"nonce":"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8"}'


@given(st.binary(min_size=8, max_size=64), st.dictionaries(st.sampled_from(["a", "b", "c"]),
                                                           st.binary(max_size=40), max_size=3),
       st.binary(max_size=16))
def test_every_input_is_committed(nonce: bytes, challenges: dict[str, bytes], prefix: bytes) -> None:
    b = Binding(nonce, challenges, prefix)
    assert Binding(nonce, dict(challenges), prefix).report_data == b.report_data  # deterministic
    assert Binding(nonce + b"x", challenges, prefix).report_data != b.report_data
    assert Binding(nonce, {**challenges, "d": b""}, prefix).report_data != b.report_data
    if challenges:
        name = sorted(challenges)[0]
        assert Binding(nonce, {**challenges, name: challenges[name] + b"!"}, prefix).report_data != b.report_data
    assert Binding(nonce, challenges, prefix + b"p").report_data != b.report_data


@dataclass
class Prefixing(FakeVerifier):
    """A verifier that mints a challenge and hashes it before the runtime data (as Intel TA does)."""

    challenge_bytes: bytes = b"challenge-1"
    seen: list[Binding | None] = field(default_factory=list)

    async def challenge(self, nonce: bytes, deadline: float) -> bytes | None:
        return self.challenge_bytes

    def report_data_prefix(self, challenge: bytes) -> bytes:
        return b"P:" + challenge

    async def appraise(self, evidence: Evidence, nonce: bytes, deadline: float) -> RawResult:
        self.seen.append(session_binding.get())
        return await super().appraise(evidence, nonce, deadline)


def fed(members: list[Member], k: int = 1, **policy: Any) -> Federation:
    return Federation(members, QuorumPolicy(k=k, n=len(members), **policy), SigningKey.generate(),
                      clock=lambda: float(NOW))


async def test_a_session_binds_the_challenges_and_the_prefix_and_backends_see_it() -> None:
    ita = Prefixing("ita")
    async with fed([member(ita), member(FakeVerifier("other"))]) as f:
        session = await f.challenge(N)
        assert session.challenges == {"ita": b"challenge-1"}
        assert session.binding == Binding(N, {"ita": b"challenge-1"}, b"P:challenge-1")
        assert f.binding(N, session.challenges) == session.binding  # a stored session rebuilds it
        result = await f.appraise(EVIDENCE, session=replace(session, binding=None), now=NOW)
    assert ita.seen == [session.binding]
    prov = result.claims["ear.ratsfed.provenance"]
    assert prov["binding"]["report_data"] == session.binding.report_data.hex()
    assert b64url_decode(prov["binding"]["prefix"]) == b"P:challenge-1"


def test_two_prefixing_verifiers_cannot_share_one_report_data() -> None:
    with pytest.raises(ConfigError, match="only one verifier may hash its challenge"):
        fed([member(Prefixing("ita-us")), member(Prefixing("ita-eu"))])


async def test_a_report_data_member_is_sent_report_data_and_must_echo_it() -> None:
    sent: list[bytes] = []

    @dataclass
    class Recording(FakeVerifier):
        async def appraise(self, evidence: Evidence, nonce: bytes, deadline: float) -> RawResult:
            sent.append(nonce)
            return await super().appraise(evidence, nonce, deadline)

    rd = Recording("rd")
    async with fed([replace(member(rd), nonce="report-data"), member(FakeVerifier("plain"))], k=2) as f:
        session = await f.challenge(N)
        result = await f.appraise(EVIDENCE, session=session, now=NOW)
        assert sent == [session.binding.report_data] and len(sent[0]) == 64
        assert result.status == "affirming"
        prov = result.claims["ear.ratsfed.provenance"]
        assert [v.get("nonce") for v in prov["votes"]] == ["report-data", None]
    # The RP's re-verification rebuilds the binding and checks the echo against REPORT_DATA.
    anchors = {m.backend.name: m.anchor for m in f.members}
    assert verify_result(result.token, _anchor(f.signing_key), reverify=True, anchors=anchors, now=NOW).decision
    # A provenance whose binding does not reproduce its REPORT_DATA is refused.
    forged = dict(prov, binding={**prov["binding"], "report_data": "00" * 64})
    with pytest.raises(PolicyError, match="does not follow"):
        _reverify_with(forged, result.ear, anchors)


WEAK_KIND = "test-weak"


def _weak_checker(raw: RawResult, check: Check) -> VerifiedEar:
    v = verify_ear(raw.token, check.anchor, now=check.now, nonce=check.nonce, max_age=check.max_age,
                   leeway=check.leeway)
    return replace(v, binding=BindingStrength.EAT_NONCE)


register_checker(WEAK_KIND, _weak_checker)


@pytest.mark.parametrize("allowed", [False, True])
async def test_a_nonce_echo_only_vote_counts_only_when_the_policy_says_so(allowed: bool) -> None:
    weak = FakeVerifier("google", kind=WEAK_KIND)
    strong = FakeVerifier("local")
    async with fed([member(weak), member(strong)], k=2, weak_binding=allowed) as f:
        result = await f.appraise(EVIDENCE, N, now=NOW)
    by_name = {v.backend: v for v in result.votes}
    assert by_name["google"].binding == "eat-nonce" and by_name["local"].binding == "evidence"
    if allowed:
        assert by_name["google"].outcome is Outcome.OK and result.status == "affirming"
    else:
        assert by_name["google"].outcome is Outcome.WEAK_BINDING and "weak_binding" in (by_name["google"].detail or "")
        assert result.status == "none"  # 2-of-2 cannot be reached with one counted vote


async def test_reverification_refuses_a_counted_weak_vote_under_a_strict_policy() -> None:
    weak = FakeVerifier("google", kind=WEAK_KIND)
    async with fed([member(weak)], k=1, weak_binding=True) as f:
        result = await f.appraise(EVIDENCE, N, now=NOW)
    anchors = {"google": weak.member().anchor}
    assert verify_result(result.token, _anchor(f.signing_key), reverify=True, anchors=anchors, now=NOW).decision
    prov = result.claims["ear.ratsfed.provenance"]
    strict = dict(prov, policy={k: v for k, v in prov["policy"].items() if k != "weak_binding"})
    with pytest.raises(PolicyError, match="bound only by an echoed nonce"):
        _reverify_with(strict, result.ear, anchors)
    with pytest.raises(PolicyError, match="weaker than required"):
        verify_result(result.token, _anchor(f.signing_key), now=NOW,
                      expect_policy=QuorumPolicy(k=1, n=1))


def member(v: FakeVerifier) -> Member:
    return v.member()


def _anchor(key: SigningKey) -> TrustAnchor:
    return TrustAnchor((key.public,))


def _reverify_with(prov: dict[str, Any], ear: Any, anchors: Mapping[str, TrustAnchor]) -> Any:
    from federation.provenance import parse_provenance
    from federation.result import _reverify

    return _reverify(parse_provenance(prov), ear, anchors, 60)


def test_provenance_keeps_weak_binding_off_by_default() -> None:
    assert "weak_binding" not in QuorumPolicy(k=1, n=1).as_dict()
    assert QuorumPolicy(k=1, n=1, weak_binding=True).as_dict()["weak_binding"] is True
    with pytest.raises(ConfigError):
        QuorumPolicy(k=1, n=1, weak_binding="yes")  # type: ignore[arg-type]


def test_the_worked_example_in_the_docs_is_what_the_code_computes() -> None:
    """docs/binding.md's example is recomputed from the inputs it states, so it cannot drift."""
    import base64
    import itertools
    import re
    from pathlib import Path

    doc = (Path(__file__).parent.parent / "docs" / "binding.md").read_text()
    ita = re.search(r'`(\{"iat":"[^`]+\})`', doc)
    google = re.search(r'`(\{"name":"[^`]+\})`', doc)
    assert ita and google
    ita_doc = json.loads(ita.group(1))
    val, iat = (base64.b64decode(ita_doc[k]) for k in ("val", "iat"))
    b = Binding(bytes(range(32)), {"intel-ta": ita.group(1).encode(), "google-cs": google.group(1).encode()},
                val + iat)
    assert f"runtime_data = {b.runtime_data.decode()}" in doc
    hexes = re.findall(r"[0-9a-f]{64}", doc)
    pairs = {a + c for a, c in itertools.pairwise(hexes)}
    assert b.report_data.hex() in pairs
    assert Binding(bytes(range(32))).report_data.hex() in pairs
