"""A circuit breaker: stop asking a verifier that keeps failing, and probe it after a cool-down.

Why: a dead or drowning verifier costs every appraisal its full timeout (and its retries) and
adds load to a service that is already in trouble. After ``threshold`` consecutive failures the
breaker *opens*: attempts fail at once with :class:`CircuitOpenError` (outcome ``unreachable``,
detail ``circuit open``), which the engine does not retry (``retry_after`` is infinite). Waiting
for the cool-down to end would hold every appraisal that arrives in its last ``timeout`` seconds
until then (with ``wait = "all"`` the whole answer), and only one of them could be the probe: under
load that piles appraisals up to the concurrency limit (``bench/soak.py`` found it). Once
``cooldown`` seconds have passed the breaker is *half-open*: exactly one
attempt (the probe: a real appraisal, or :meth:`VeraisonBackend.probe`) goes through while the
others still short-circuit. The probe's success closes the breaker; its failure re-opens it for
another cool-down.

What counts (:func:`verdict`): a failure is an attempt that could not reach the service or that
the service could not serve (unreachable, timeout, HTTP 5xx, a session the verifier failed). Any
other HTTP answer proves the service alive and counts as a success. 429 (it asked us to slow
down), an unusable body, and a cancellation before the attempt's deadline (a quorum decided
without it) say nothing about health: they are neutral. The clock is injectable for tests.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from enum import StrEnum

from federation.errors import BackendError, BackendHTTPError, BackendTimeoutError, BackendUnreachableError

__all__ = ["CircuitBreaker", "CircuitOpenError", "State", "verdict"]


class CircuitOpenError(BackendUnreachableError):
    """Short-circuited: the backend is marked unhealthy. Never worth retrying within one appraisal
    (``retry_after`` is infinite, as for a TLS failure); ``probe_in``: seconds until the next
    attempt may be the probe (None while a probe is in flight)."""

    retry_after = math.inf

    def __init__(self, probe_in: float | None) -> None:
        super().__init__("circuit open")
        self.probe_in = probe_in


class State(StrEnum):
    CLOSED = "closed"  # healthy: attempts go through
    OPEN = "open"  # unhealthy: attempts short-circuit until the cool-down ends
    HALF_OPEN = "half-open"  # cool-down over: one probe goes through


def verdict(exc: BaseException | None) -> bool | None:
    """True: the service served us; False: it failed us; None: says nothing about its health."""
    if exc is None:
        return True
    if isinstance(exc, BackendHTTPError):
        if exc.status == 429:
            return None
        return exc.status < 500
    if isinstance(exc, BackendTimeoutError | BackendUnreachableError):
        return False
    if isinstance(exc, BackendError):  # e.g. the verifier reported the session failed
        return False
    return None


class CircuitBreaker:
    """Consecutive-failure breaker for one backend. Not thread-safe; one event loop."""

    def __init__(self, threshold: int = 5, cooldown: float = 30.0, *,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if threshold < 1 or cooldown <= 0:
            raise ValueError("threshold must be >= 1 and cooldown > 0")
        self.threshold = threshold
        self.cooldown = cooldown
        self._clock = clock
        self._failures = 0
        self._opened_at: float | None = None
        self._probing = False

    @property
    def state(self) -> State:
        if self._opened_at is None:
            return State.CLOSED
        if self._clock() - self._opened_at < self.cooldown:
            return State.OPEN
        return State.HALF_OPEN

    @property
    def healthy(self) -> bool:
        """Closed: the last attempts succeeded (or too few failed to trip it)."""
        return self._opened_at is None

    @property
    def failures(self) -> int:
        return self._failures

    def _admit(self) -> bool:
        """Let an attempt through or raise; True when the attempt is the half-open probe."""
        state = self.state
        if state is State.CLOSED:
            return False
        if state is State.OPEN:
            assert self._opened_at is not None
            raise CircuitOpenError(self._opened_at + self.cooldown - self._clock())
        if self._probing:
            raise CircuitOpenError(None)  # a probe is in flight; its answer decides
        self._probing = True
        return True

    def _record(self, ok: bool | None, probe: bool) -> None:
        if probe:
            self._probing = False
        if ok is True:
            self._failures = 0
            self._opened_at = None
        elif ok is False:
            self._failures += 1
            if probe or self._failures >= self.threshold:
                self._opened_at = self._clock()

    @contextmanager
    def attempt(self, *, timed_out: Callable[[], bool] = lambda: False) -> Iterator[None]:
        """Guard one attempt. *timed_out* tells whether a cancellation came at or after the
        attempt's deadline (then it is a failure: the service hung) or before (neutral)."""
        probe = self._admit()
        try:
            yield
        except BaseException as exc:
            if isinstance(exc, Exception):
                self._record(verdict(exc), probe)
            else:  # CancelledError, KeyboardInterrupt, ...
                self._record(False if timed_out() else None, probe)
            raise
        self._record(True, probe)

    def reset(self) -> None:
        self._failures = 0
        self._opened_at = None
        self._probing = False
