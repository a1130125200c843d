"""The session store (bounds, expiry, compare-and-set, JSON form for shared stores), the hand-written
Prometheus exposition, content negotiation and the health tracker, without a server."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from aiohttp.test_utils import make_mocked_request
from fakes import FakeVerifier

from federation import QuorumPolicy
from federation.server import MemorySessionStore, SessionRecord, SessionStatus, SessionStore, SessionStoreFull
from federation.server.health import HealthTracker
from federation.server.metrics import Counter, Histogram, Registry
from federation.server.problems import negotiate
from federation.votes import Outcome, Vote


def record(sid: str, evidence: bytes | None = None) -> SessionRecord:
    return SessionRecord(sid, b"n" * 32, 100.0, 110.0, ("application/psa-attestation-token",), evidence=evidence)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


async def test_store_bounds_count_and_bytes_and_frees_room_as_sessions_expire() -> None:
    clock = Clock()
    store = MemorySessionStore(max_sessions=2, max_bytes=4096, clock=clock)
    assert isinstance(store, SessionStore)
    await store.put(record("a"), 10)
    clock.now += 5
    await store.put(record("b"), 10)
    with pytest.raises(SessionStoreFull):
        await store.put(record("c"), 10)
    clock.now += 5.5  # "a" expired
    await store.put(record("c"), 10)
    assert await store.get("a") is None and await store.count() == 2
    big = MemorySessionStore(max_sessions=10, max_bytes=2000, clock=clock)
    await big.put(record("x", b"e" * 1000), 10)
    with pytest.raises(SessionStoreFull):
        await big.put(record("y", b"e" * 1000), 10)
    assert await big.delete("x") and not await big.delete("x")
    assert big.bytes_held == 0
    await big.put(record("y", b"e" * 1000), 10)


async def test_replace_if_is_a_compare_and_set_that_keeps_the_expiry() -> None:
    clock = Clock()
    store = MemorySessionStore(clock=clock)
    rec = record("s")
    await store.put(rec, 10)
    processing = rec.with_status(SessionStatus.PROCESSING, evidence_type="t", evidence=b"e")
    assert await store.replace_if(processing, SessionStatus.WAITING)
    assert not await store.replace_if(processing, SessionStatus.WAITING)  # a second submitter loses
    assert await store.replace_if(processing.with_status(SessionStatus.COMPLETE, result="r.r.r"),
                                  SessionStatus.PROCESSING)
    clock.now += 10
    assert await store.get("s") is None  # the update did not extend the session
    assert not await store.replace_if(rec, SessionStatus.COMPLETE)
    assert store.bytes_held == 0


def test_records_round_trip_through_json_and_render_as_veraison_sessions() -> None:
    rec = SessionRecord("id", bytes(range(32)), 1.5, 1_800_000_000.25, ("a/b",), SessionStatus.COMPLETE, "a/b",
                        b"\x00\xffevidence", "h.p.s", {"vendor": b"challenge"})
    assert SessionRecord.from_json(rec.to_json()) == rec
    view = rec.view()
    assert list(view) == ["status", "nonce", "expiry", "accept", "evidence", "result", "challenges"]
    assert view["nonce"] == base64.urlsafe_b64encode(bytes(range(32))).decode().rstrip("=")
    assert view["expiry"] == "2027-01-15T08:00:00.250000Z"
    assert view["evidence"] == {"type": "a/b", "value": base64.b64encode(b"\x00\xffevidence").decode()}
    assert "evidence" not in record("w").view() and "challenges" not in record("w").view()


def test_prometheus_text_format() -> None:
    r = Registry()
    c = r.add(Counter("x_total", "Things.", ["name"]))
    c.inc('we"ird\\na\nme')
    c.inc("plain", amount=2)
    h = r.add(Histogram("lat_seconds", "Latency.", ["b"], buckets=(0.1, 1.0)))
    h.observe(0.05, "x")
    h.observe(5, "x")
    text = r.render()
    assert text.splitlines() == [
        "# HELP x_total Things.", "# TYPE x_total counter",
        'x_total{name="plain"} 2', 'x_total{name="we\\"ird\\\\na\\nme"} 1',
        "# HELP lat_seconds Latency.", "# TYPE lat_seconds histogram",
        'lat_seconds_bucket{b="x",le="0.1"} 1', 'lat_seconds_bucket{b="x",le="1"} 1',
        'lat_seconds_bucket{b="x",le="+Inf"} 2', 'lat_seconds_sum{b="x"} 5.05', 'lat_seconds_count{b="x"} 2',
    ]
    with pytest.raises(ValueError):
        c.inc("a", "b")
    with pytest.raises(ValueError):
        c.inc("a", amount=-1)


@pytest.mark.parametrize(
    ("accept", "offered", "chosen"),
    [
        (None, ["a/b", "c/d"], "a/b"),
        ("*/*", ["a/b"], "a/b"),
        ("c/*", ["a/b", "c/d"], "c/d"),
        ("a/b;q=0, */*;q=0.1", ["a/b"], None),  # the more specific range decides
        ("a/b;q=0, */*;q=0.1", ["a/b", "c/d"], "c/d"),
        ("a/b;q=0.5, c/d", ["a/b", "c/d"], "c/d"),  # the higher q wins
        ("a/b, c/d", ["c/d", "a/b"], "c/d"),  # ties: the server's order
        ("a/b;q=0", ["a/b"], None),
        ("a/b;q=x", ["a/b"], None),
        ("text/html", ["a/b"], None),
        ("application/json;charset=utf-8", ["application/json"], "application/json"),
    ],
)
def test_negotiate(accept: str | None, offered: list[str], chosen: str | None) -> None:
    headers: Any = {"Accept": accept} if accept is not None else {}
    assert negotiate(make_mocked_request("GET", "/", headers=headers), offered) == chosen


def test_health_tracker_streaks_operators_and_not_awaited() -> None:
    fakes = [FakeVerifier("a", "op1"), FakeVerifier("b", "op1"), FakeVerifier("c", "op2")]
    members = [f.member() for f in fakes]
    tracker = HealthTracker(members, QuorumPolicy(k=2, n=3, distinct_operators=True), unhealthy_after=2)
    fail = [Vote("c", "op2", "fake", Outcome.TIMEOUT)]
    assert tracker.ready()[0]
    tracker.record(fail)
    tracker.record([Vote("c", "op2", "fake", Outcome.NOT_AWAITED)])  # says nothing about the backend
    assert tracker.healthy("c")
    tracker.record(fail)
    ready, detail = tracker.ready()
    assert not ready and "1 healthy distinct operators for k=2" in detail and "last timeout" in detail
    with pytest.raises(ValueError):
        HealthTracker(members, QuorumPolicy(k=1, n=3), unhealthy_after=0)
