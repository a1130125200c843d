"""Replay protection: one nonce, one Evidence, within a time window.

Theory of operation. A nonce binds Evidence (and every vote and the combined result) to one
appraisal. A nonce the *caller* chooses (``Federation.appraise(evidence, nonce)``, a session's
nonce, ``newSession?nonce=``, ``/v1/appraise?nonce=``) could be offered twice, and a second
appraisal under it would give old Evidence a fresh, correctly bound result: a replay. So every
nonce an appraisal is bound to is recorded here first, atomically, and a nonce already remembered
is refused with :class:`federation.errors.ReplayError` (reason ``replay``). Nonces the federation
mints itself for one appraisal are unique by construction and are not recorded.

Two users, two rules:

* the federator (:meth:`federation.Federation.appraise`) *consumes* each nonce
  (:meth:`ReplayCache.seen_or_add`): one nonce, one appraisal. Opening a session checks (without
  consuming) that its nonce is not already spent, so the caller learns early; an abandoned
  session, or a ``newSession`` retried after a lost response, does not burn its nonce.
* a verifier service (:class:`federation.server.roles.VerifierRole`) records each nonce *with a
  digest of the Evidence* appraised under it (:meth:`ReplayCache.add_or_get`): one nonce, one
  Evidence. The same Evidence again under the same nonce is an idempotent retry (a federator whose
  answer was lost, or two federations whose members share this verifier: the federation nonce is
  meant to serve n verifiers' freshness) and is answered normally; it gives the caller nothing it
  did not already have. Other Evidence under a remembered nonce is refused.

The window is the cache's TTL (the session lifetime by default): after it the nonce is forgotten,
which is safe as long as nothing bound to it is accepted any longer (sessions expire, results carry
``exp``); the relying party's own nonce check stays the primary defence.

:class:`ReplayCache` is a small async interface so that a shared store can replace the in-memory
one when several federator processes serve one fleet (DESIGN "Growth path"); with Redis:
``seen_or_add`` is ``SET <prefix><hex(nonce)> 1 NX PX <ttl ms>`` (a nil answer means not seen),
``add_or_get`` is ``SET <prefix><hex(nonce)> <value> NX GET PX <ttl ms>`` (Redis 7: the answer is
the value remembered, nil when the nonce was recorded now) and ``seen`` is ``EXISTS``.
:class:`MemoryReplayCache` is per process and bounded: when full of live entries it refuses to
record more (:class:`ReplayCacheFull`, the API answers 503) rather than forget a live nonce, which
would re-open the replay it guards against.
"""

from __future__ import annotations

import heapq
import time
from collections.abc import Callable
from typing import Protocol, runtime_checkable

from .errors import UsageError

__all__ = ["DEFAULT_MAX_ENTRIES", "MemoryReplayCache", "ReplayCache", "ReplayCacheFull"]

DEFAULT_MAX_ENTRIES = 100_000  # ~250 bytes each with a 32-byte value: about 25 MiB when full


class ReplayCacheFull(Exception):
    """No room to remember another nonce: the appraisal cannot be proven not to be a replay."""


@runtime_checkable
class ReplayCache(Protocol):
    """Remembers nonces (each with an optional value) for a while. Expired entries are never
    reported as seen."""

    async def seen_or_add(self, nonce: bytes, ttl: float) -> bool:
        """Atomically: True if *nonce* is remembered (a replay); otherwise remember it for *ttl*
        seconds and return False. May raise :class:`ReplayCacheFull`."""
        ...

    async def add_or_get(self, nonce: bytes, ttl: float, value: bytes) -> bytes | None:
        """Atomically: the value remembered with *nonce* if it is remembered (``b""`` when it was
        recorded by :meth:`seen_or_add`); otherwise remember *nonce* with *value* for *ttl*
        seconds and return None. The first value stays: a later call never replaces it, nor
        extends its window. May raise :class:`ReplayCacheFull`."""
        ...

    async def seen(self, nonce: bytes) -> bool:
        """Whether *nonce* is remembered, without recording it."""
        ...


class MemoryReplayCache:
    """A per-process replay cache bounded by entry count.

    Entries live in a dict (nonce → expiry, value); a min-heap of (expiry, nonce) says which expire
    first, so forgetting expired nonces costs O(log n) each, once, and checking whether any is due
    costs O(1): no pass over the whole cache per call, whatever the mix of TTLs. A nonce found
    expired on lookup is dropped at once; its heap record goes on the next sweep (the heap never
    holds more than the live entries plus those expired since the last sweep).
    """

    def __init__(self, *, max_entries: int = DEFAULT_MAX_ENTRIES, clock: Callable[[], float] = time.monotonic
                 ) -> None:
        if max_entries < 1:
            raise UsageError("replay cache bound must be positive")
        self.max_entries = max_entries
        self._clock = clock
        self._entries: dict[bytes, tuple[float, bytes]] = {}  # nonce -> (expiry, value)
        self._heap: list[tuple[float, bytes]] = []  # (expiry, nonce); stale records are skipped

    def __len__(self) -> int:
        return len(self._entries)

    def _sweep(self, now: float) -> None:
        """Forget every nonce expired by *now*: pops the heap only while its head is due."""
        heap, entries = self._heap, self._entries
        while heap and heap[0][0] <= now:
            expiry, nonce = heapq.heappop(heap)
            entry = entries.get(nonce)
            if entry is not None and entry[0] == expiry:  # not a record of an earlier, forgotten life
                del entries[nonce]

    def _get(self, nonce: bytes, now: float) -> tuple[float, bytes] | None:
        entry = self._entries.get(nonce)
        if entry is None:
            return None
        if entry[0] <= now:
            del self._entries[nonce]
            return None
        return entry

    async def add_or_get(self, nonce: bytes, ttl: float, value: bytes) -> bytes | None:
        if not isinstance(nonce, bytes) or not isinstance(value, bytes) or not ttl > 0:
            raise UsageError("add_or_get needs a bytes nonce, a bytes value and a positive ttl")
        now = self._clock()  # no await below: atomic with respect to other tasks
        self._sweep(now)
        entry = self._get(nonce, now)
        if entry is not None:
            return entry[1]
        if len(self._entries) >= self.max_entries:  # every entry is live after the sweep
            raise ReplayCacheFull(f"{len(self._entries)} nonces are within their replay window")
        expiry = now + ttl
        self._entries[nonce] = (expiry, value)
        heapq.heappush(self._heap, (expiry, nonce))
        return None

    async def seen_or_add(self, nonce: bytes, ttl: float) -> bool:
        if not isinstance(nonce, bytes) or not ttl > 0:
            raise UsageError("seen_or_add needs a bytes nonce and a positive ttl")
        return await self.add_or_get(nonce, ttl, b"") is not None

    async def seen(self, nonce: bytes) -> bool:
        return isinstance(nonce, bytes) and self._get(nonce, self._clock()) is not None
