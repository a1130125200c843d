"""Replay protection: one nonce, one appraisal, within a time window.

Theory of operation. A nonce binds Evidence (and every vote and the combined result) to one
appraisal. A nonce the *caller* chooses (``Federation.appraise(evidence, nonce)``, a session's
nonce, ``newSession?nonce=``, ``/v1/appraise?nonce=``) could be offered twice, and a second
appraisal under it would give old Evidence a fresh, correctly bound result: a replay. So every
nonce an appraisal is bound to is *consumed* here first, atomically; a nonce already remembered
is refused with :class:`federation.errors.ReplayError` (reason ``replay``). Nonces the federation
mints itself for one appraisal are unique by construction and are not recorded.

A nonce is consumed when an appraisal runs under it, not when a session is opened: an abandoned
session, or a ``newSession`` retried after a lost response, does not burn its nonce; a second
appraisal under it does. Opening a session checks (without consuming) that its nonce is not
already spent, so the caller learns early.

The window is the cache's TTL (the session lifetime by default): after it the nonce is forgotten,
which is safe as long as nothing bound to it is accepted any longer (sessions expire, results carry
``exp``); the relying party's own nonce check stays the primary defence.

:class:`ReplayCache` is a small async interface so that a shared store can replace the in-memory
one when several federator processes serve one fleet (DESIGN "Growth path"); with Redis:
``seen_or_add`` is ``SET <prefix><hex(nonce)> 1 NX PX <ttl ms>`` (a nil answer means seen) and
``seen`` is ``EXISTS``. :class:`MemoryReplayCache` is per process and bounded: when full of live
entries it refuses to record more (:class:`ReplayCacheFull`, the API answers 503) rather than
forget a live nonce, which would re-open the replay it guards against.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Protocol, runtime_checkable

from .errors import UsageError

__all__ = ["DEFAULT_MAX_ENTRIES", "MemoryReplayCache", "ReplayCache", "ReplayCacheFull"]

DEFAULT_MAX_ENTRIES = 100_000  # ~150 bytes each: about 15 MiB when full


class ReplayCacheFull(Exception):
    """No room to remember another nonce: the appraisal cannot be proven not to be a replay."""


@runtime_checkable
class ReplayCache(Protocol):
    """Remembers consumed nonces for a while. Expired entries are never reported as seen."""

    async def seen_or_add(self, nonce: bytes, ttl: float) -> bool:
        """Atomically: True if *nonce* is remembered (a replay); otherwise remember it for *ttl*
        seconds and return False. May raise :class:`ReplayCacheFull`."""
        ...

    async def seen(self, nonce: bytes) -> bool:
        """Whether *nonce* is remembered, without recording it."""
        ...


class MemoryReplayCache:
    """A per-process replay cache bounded by entry count; expiry checked on access."""

    def __init__(self, *, max_entries: int = DEFAULT_MAX_ENTRIES, clock: Callable[[], float] = time.monotonic
                 ) -> None:
        if max_entries < 1:
            raise UsageError("replay cache bound must be positive")
        self.max_entries = max_entries
        self._clock = clock
        self._expiry: dict[bytes, float] = {}  # insertion order ~ expiry order (one TTL per user)

    def __len__(self) -> int:
        return len(self._expiry)

    def _sweep(self, now: float, *, full: bool = False) -> None:
        """Forget expired nonces: from the oldest until a live one (or all of them when *full*)."""
        for nonce, expiry in list(self._expiry.items()):
            if expiry <= now:
                del self._expiry[nonce]
            elif not full:
                break

    def _live(self, nonce: bytes, now: float) -> bool:
        expiry = self._expiry.get(nonce)
        if expiry is None:
            return False
        if expiry <= now:
            del self._expiry[nonce]
            return False
        return True

    async def seen_or_add(self, nonce: bytes, ttl: float) -> bool:
        if not isinstance(nonce, bytes) or not ttl > 0:
            raise UsageError("seen_or_add needs a bytes nonce and a positive ttl")
        now = self._clock()  # no await below: atomic with respect to other tasks
        self._sweep(now)
        if self._live(nonce, now):
            return True
        if len(self._expiry) >= self.max_entries:
            self._sweep(now, full=True)
            if len(self._expiry) >= self.max_entries:
                raise ReplayCacheFull(f"{len(self._expiry)} nonces are within their replay window")
        self._expiry[nonce] = now + ttl
        return False

    async def seen(self, nonce: bytes) -> bool:
        return isinstance(nonce, bytes) and self._live(nonce, self._clock())
