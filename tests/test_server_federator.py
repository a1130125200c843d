"""``ratsfed serve`` in the federator role: a federation of local PSA appraisers behind Veraison's
API returns the combined, federation-signed EAR; readiness follows backend health; metrics count
outcomes, dissent and quorum failures; the concurrency limit answers 503."""

from __future__ import annotations

import asyncio
import base64
from typing import Any

from fakes import NOW, FakeVerifier
from server_helpers import GOOD, MT, N32, N32_B64, SESSION, local_backend, psa_good, serve, verify

from federation import Federation, Member, QuorumPolicy, SigningKey, TrustAnchor, verify_result
from federation.ar4si import Tier
from federation.config import ServerConfig
from federation.server import FederatorRole, create_app

CR = "/challenge-response/v1"
ACCEPT = {"Accept": SESSION}


def psa_federation() -> tuple[Federation, dict[str, TrustAnchor]]:
    members, anchors = [], {}
    for op in ("acme", "globex", "initech"):
        backend = local_backend(f"{op}-local", op)
        members.append(Member(backend, backend.public_anchor))
        anchors[backend.name] = backend.public_anchor
    policy = QuorumPolicy(k=2, n=3, distinct_operators=True)
    return Federation(members, policy, SigningKey.generate(), federation_id="test-fed"), anchors


def fake_federation(*fakes: FakeVerifier, k: int = 2) -> Federation:
    """Fakes sign at the fixed time NOW, so the federation checks freshness at NOW."""
    return Federation([f.member() for f in fakes], QuorumPolicy(k=k, n=len(fakes)), SigningKey.generate(),
                      clock=lambda: float(NOW))


def federator(fed: Federation, **settings: Any) -> Any:
    return create_app(FederatorRole(fed, unhealthy_after=settings.pop("unhealthy_after", 3)),
                      ServerConfig(role="federator", **settings))


async def test_psa_vectors_through_the_federator_session_api_are_affirming() -> None:
    fed, anchors = psa_federation()
    async with serve(federator(fed)) as client:
        resp = await client.post(f"{CR}/newSession?nonce={N32_B64}", headers=ACCEPT)
        assert resp.status == 201
        session = await resp.json(content_type=None)
        assert MT in session["accept"]  # the members' media types
        url = f"{CR}/{resp.headers['Location']}"
        resp = await client.post(url, data=GOOD, headers={**ACCEPT, "Content-Type": MT})
        done = await resp.json(content_type=None)
        assert resp.status == 200 and done["status"] == "complete"

        well_known = await (await client.get("/.well-known/veraison/verification")).json(content_type=None)
        assert well_known["role"] == "federator"
        key = well_known["ear-verification-key"]
        assert key["kid"] == fed.signing_key.kid
        verified = verify(done["result"], key, nonce=N32)  # eat_nonce is the session nonce
        assert verified.ear.status.label == "affirming"
        # The relying party can re-verify every vote under each verifier's own key.
        checked = verify_result(done["result"], TrustAnchor((fed.signing_key.public,)), nonce=N32, reverify=True,
                                anchors=anchors)
        assert checked.status == "affirming" and checked.decision is not None
        assert len(checked.decision.agreed) == 3

        resp = await client.post(f"/v1/appraise?nonce={N32.hex()}", data=GOOD, headers={"Content-Type": MT})
        assert resp.status == 409  # the same nonce again: a replay (one nonce, one appraisal)
        fresh = bytes(range(64, 96))
        resp = await client.post(f"/v1/appraise?nonce={fresh.hex()}", data=psa_good(fresh),
                                 headers={"Content-Type": MT})
        doc = await resp.json()
        assert (doc["status"], doc["nonce"]) == ("affirming", fresh.hex())
        assert doc["decision"].startswith("affirming: 2-of-3")
        assert [v["outcome"] for v in doc["votes"]] == ["ok", "ok", "ok"]
        assert verify(doc["token"], key, fresh).ear.status.label == "affirming"

        # Every member declares its media types, so the federator can refuse others.
        resp = await client.post("/v1/appraise", data=GOOD, headers={"Content-Type": "application/x-nope"})
        assert resp.status == 415 and MT in resp.headers["Accept"]

        text = await (await client.get("/metrics")).text()
        for name in ("acme-local", "globex-local", "initech-local"):
            assert f'ratsfed_backend_outcomes_total{{backend="{name}",outcome="ok"}} 2' in text
            assert f'ratsfed_backend_latency_seconds_count{{backend="{name}"}} 2' in text
            assert f'ratsfed_backend_dissents_total{{backend="{name}"}} 0' in text
            assert f'ratsfed_backend_healthy{{backend="{name}"}} 1' in text
        assert 'ratsfed_appraisals_total{status="affirming"} 2' in text
        ready = await (await client.get("/readyz")).json()
        assert ready["ready"] is True and ready["backends"] == dict.fromkeys(anchors, True)


async def test_dissent_and_quorum_failures_are_counted() -> None:
    a, b, c = FakeVerifier("a"), FakeVerifier("b"), FakeVerifier("c", status=Tier.WARNING)
    async with serve(federator(fake_federation(a, b, c))) as client:
        doc = await (await client.post("/v1/appraise", data=b"x", headers={"Content-Type": MT})).json()
        assert doc["status"] == "affirming"
        b.fault, c.fault = "unreachable", "raise"
        doc = await (await client.post("/v1/appraise", data=b"x", headers={"Content-Type": MT})).json()
        assert doc["status"] == "none"  # one ok vote: no tier reaches k=2
        text = await (await client.get("/metrics")).text()
    assert 'ratsfed_backend_dissents_total{backend="c"} 1' in text
    assert 'ratsfed_backend_outcomes_total{backend="b",outcome="unreachable"} 1' in text
    assert 'ratsfed_backend_outcomes_total{backend="c",outcome="error"} 1' in text
    assert 'ratsfed_appraisals_total{status="none"} 1' in text
    assert "ratsfed_quorum_failures_total 1" in text


async def test_readiness_follows_failure_streaks() -> None:
    a, b, c = FakeVerifier("a"), FakeVerifier("b", fault="unreachable"), FakeVerifier("c")
    async with serve(federator(fake_federation(a, b, c), unhealthy_after=2)) as client:
        assert (await client.get("/readyz")).status == 200  # no votes yet: every backend counts as healthy
        for _ in range(2):
            await client.post("/v1/appraise", data=b"x", headers={"Content-Type": MT})
        ready = await client.get("/readyz")
        doc = await ready.json()
        assert ready.status == 200 and doc["backends"] == {"a": True, "b": False, "c": True}  # 2 healthy, k=2
        c.fault = "raise"
        for _ in range(2):
            await client.post("/v1/appraise", data=b"x", headers={"Content-Type": MT})
        ready = await client.get("/readyz")
        doc = await ready.json()
        assert ready.status == 503 and doc["ready"] is False
        assert "1 healthy backends for k=2" in doc["detail"] and "c (2 failures in a row, last error)" in doc["detail"]
        c.fault = "none"  # one ok vote ends the streak
        await client.post("/v1/appraise", data=b"x", headers={"Content-Type": MT})
        assert (await client.get("/readyz")).status == 200


async def test_a_backend_that_reports_itself_unhealthy_counts_as_unhealthy() -> None:
    a, b = FakeVerifier("a"), FakeVerifier("b")
    b.healthy = False  # type: ignore[attr-defined]  # e.g. a remote client's open circuit breaker
    async with serve(federator(fake_federation(a, b))) as client:
        ready = await client.get("/readyz")
        assert ready.status == 503 and "b (reports itself unhealthy)" in (await ready.json())["detail"]


async def test_503_with_retry_after_when_every_appraisal_slot_is_taken() -> None:
    slow = [FakeVerifier(n, delay=0.5) for n in "abc"]
    app = federator(fake_federation(*slow), max_concurrency=1)
    async with serve(app) as client:
        resp = await client.post(f"{CR}/newSession?nonce={N32_B64}", headers=ACCEPT)
        url = f"{CR}/{resp.headers['Location']}"
        first = asyncio.create_task(client.post("/v1/appraise", data=b"x", headers={"Content-Type": MT}))
        for _ in range(100):
            if slow[0].calls:
                break
            await asyncio.sleep(0.01)
        resp = await client.post(url, data=b"x", headers={**ACCEPT, "Content-Type": MT})
        assert resp.status == 503 and resp.headers["Retry-After"] == "1"
        assert (await resp.json(content_type=None))["status"] == 503
        busy = await client.post("/v1/appraise", data=b"x", headers={"Content-Type": MT})
        assert busy.status == 503
        assert (await (await first).json())["status"] == "affirming"
        session = await (await client.get(url, headers=ACCEPT)).json(content_type=None)
        assert session["status"] == "waiting"  # the refused submission did not consume the session
        resp = await client.post(url, data=b"x", headers={**ACCEPT, "Content-Type": MT})
        assert (await resp.json(content_type=None))["status"] == "complete"
        text = await (await client.get("/metrics")).text()
        assert 'ratsfed_rejected_requests_total{reason="overloaded"} 2' in text


async def test_members_without_declared_media_types_leave_the_federator_open() -> None:
    async with serve(federator(fake_federation(FakeVerifier("a"), FakeVerifier("b")))) as client:
        resp = await client.post("/v1/appraise", data=b"x", headers={"Content-Type": "application/x-any"})
        assert resp.status == 200
        session = await (await client.post(f"{CR}/newSession", headers=ACCEPT)).json(content_type=None)
        assert session["accept"] == []
        nonce = base64.urlsafe_b64decode(session["nonce"] + "==")
        assert len(nonce) == 32


class ChallengingFake(FakeVerifier):
    """A verifier that mints its own challenge in phase 1 (DESIGN §8)."""

    async def challenge(self, nonce: bytes, deadline: float) -> bytes | None:
        return b"vendor-challenge-" + nonce[:4]


async def test_backend_challenges_are_collected_at_new_session_and_shown_in_the_session() -> None:
    fed = fake_federation(ChallengingFake("a"), FakeVerifier("b"))
    async with serve(federator(fed)) as client:
        resp = await client.post(f"{CR}/newSession?nonce={N32_B64}", headers=ACCEPT)
        session = await resp.json(content_type=None)
        assert base64.urlsafe_b64decode(session["challenges"]["a"] + "==") == b"vendor-challenge-" + N32[:4]
        url = f"{CR}/{resp.headers['Location']}"
        done = await (await client.post(url, data=b"x", headers={**ACCEPT, "Content-Type": MT})).json(
            content_type=None)
        assert done["status"] == "complete" and done["challenges"] == session["challenges"]
