"""Backend health for ``/readyz``: a backend is healthy unless it is in a failure streak.

From the votes of recent appraisals, each backend's consecutive failures are counted (``ok``
resets the count; ``not-awaited`` says nothing about the backend and leaves it unchanged). After
``unhealthy_after`` failures in a row the backend is unhealthy until its next ``ok`` vote. A
backend that reports its own health (a remote client's circuit breaker: a ``healthy`` bool
attribute) is unhealthy when it says so. With no votes yet, a backend counts as healthy: the
federator is ready at start and learns from traffic.

The federator is ready when the healthy backends can still reach k: k of them, or k distinct
operators among them when the policy counts operators.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from ..engine import Member
from ..quorum import QuorumPolicy
from ..votes import Outcome, Vote

__all__ = ["HealthTracker"]


class HealthTracker:
    def __init__(self, members: Sequence[Member], policy: QuorumPolicy, *, unhealthy_after: int = 3) -> None:
        if unhealthy_after < 1:
            raise ValueError("unhealthy_after must be >= 1")
        self.members = tuple(members)
        self.policy = policy
        self.unhealthy_after = unhealthy_after
        self._streaks: dict[str, int] = {m.backend.name: 0 for m in self.members}
        self._last: dict[str, str] = {}

    def record(self, votes: Iterable[Vote]) -> None:
        for v in votes:
            if v.backend not in self._streaks or v.outcome is Outcome.NOT_AWAITED:
                continue
            self._last[v.backend] = v.outcome.value
            self._streaks[v.backend] = 0 if v.ok else self._streaks[v.backend] + 1

    async def probe_unhealthy(self) -> None:
        """Ask unhealthy backends that can probe themselves (``async probe() -> bool``) whether
        they are back, so that a federator taken out of rotation by ``/readyz`` can come back
        without traffic (nothing else would ever give it the ``ok`` vote that ends the streak)."""
        for m in self.members:
            name = m.backend.name
            probe = getattr(m.backend, "probe", None)
            if self.healthy(name) or not callable(probe):
                continue
            try:
                ok = await probe()
            except Exception:  # a probe that fails says "still down", nothing more
                ok = False
            if ok is True:
                self._streaks[name] = 0

    def healthy(self, name: str) -> bool:
        member = next(m for m in self.members if m.backend.name == name)
        reported = getattr(member.backend, "healthy", None)
        if isinstance(reported, bool) and not reported:
            return False
        return self._streaks[name] < self.unhealthy_after

    def _why(self, name: str) -> str:
        streak = self._streaks[name]
        if streak < self.unhealthy_after:
            return f"{name} (reports itself unhealthy)"
        return f"{name} ({streak} failures in a row, last {self._last.get(name)})"

    def states(self) -> dict[str, bool]:
        return {m.backend.name: self.healthy(m.backend.name) for m in self.members}

    def ready(self) -> tuple[bool, str]:
        """(ready, one line why) — ready when the healthy backends can still reach k."""
        healthy = [m for m in self.members if self.healthy(m.backend.name)]
        voters = len({m.backend.operator for m in healthy}) if self.policy.distinct_operators else len(healthy)
        unit = "distinct operators" if self.policy.distinct_operators else "backends"
        names = {m.backend.name for m in healthy}
        down = [self._why(m.backend.name) for m in self.members if m.backend.name not in names]
        detail = f"{voters} healthy {unit} for k={self.policy.k}"
        if down:
            detail += "; unhealthy: " + ", ".join(down)
        return voters >= self.policy.k, detail
