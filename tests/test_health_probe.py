"""A federator taken out of rotation by /readyz must be able to come back without traffic."""

from __future__ import annotations

from dataclasses import dataclass

from fakes import FakeVerifier

from federation.quorum import QuorumPolicy
from federation.server.health import HealthTracker
from federation.votes import Outcome, Vote


@dataclass
class Probing(FakeVerifier):
    up: bool = False
    probes: int = 0

    async def probe(self) -> bool:
        self.probes += 1
        return self.up


async def test_unhealthy_backend_recovers_through_its_probe() -> None:
    a, b = Probing("a"), Probing("b", up=True)
    tracker = HealthTracker([a.member(), b.member()], QuorumPolicy(k=2, n=2), unhealthy_after=1)
    tracker.record([Vote("a", a.operator, a.kind, Outcome.UNREACHABLE), Vote("b", b.operator, b.kind,
                                                                             Outcome.UNREACHABLE)])
    assert tracker.ready()[0] is False
    await tracker.probe_unhealthy()
    assert tracker.states() == {"a": False, "b": True}  # a's probe says it is still down
    assert tracker.ready()[0] is False
    a.up = True
    await tracker.probe_unhealthy()
    assert tracker.ready() == (True, "2 healthy backends for k=2")
    probes = (a.probes, b.probes)
    await tracker.probe_unhealthy()
    assert (a.probes, b.probes) == probes  # healthy backends are not probed
