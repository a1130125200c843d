"""Challenge-response sessions: the record, the store interface, and a bounded in-memory store.

Theory of operation. A session is created by ``newSession`` (status ``waiting``, a nonce, an
expiry), takes one Evidence submission (``processing``, then ``complete`` with the result or
``failed``), and disappears at its expiry or on ``DELETE``. The expiry is fixed at creation;
later updates keep it (a store sets the remaining TTL, like Redis' ``SET ... KEEPTTL``).

The store is a small async interface so that a shared store (Redis) can replace the in-memory
one without touching the handlers: records serialize to JSON (:meth:`SessionRecord.to_json`),
``replace_if`` is a compare-and-set on the status (Redis: a ``WATCH``/``MULTI`` or a Lua script),
and every method is a coroutine. :class:`MemorySessionStore` bounds both the number of live
sessions and the bytes they hold; creation fails with :class:`SessionStoreFull` (the API answers
503) rather than evicting a live session a client is still using.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Protocol, runtime_checkable

from ..keys import b64url_decode, b64url_encode

__all__ = ["MemorySessionStore", "SessionRecord", "SessionStatus", "SessionStore", "SessionStoreFull", "rfc3339"]

_OVERHEAD = 512  # bytes charged per session besides its evidence and result


class SessionStatus(StrEnum):
    WAITING = "waiting"
    PROCESSING = "processing"
    COMPLETE = "complete"
    FAILED = "failed"


class SessionStoreFull(Exception):
    """No room for another session (count or byte bound reached)."""


def rfc3339(epoch: float) -> str:
    """RFC 3339 in UTC with microseconds, as Go's ``time.Time`` marshals (``...Z``)."""
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


@dataclass(frozen=True, slots=True)
class SessionRecord:
    id: str
    nonce: bytes
    created: float  # epoch seconds
    expiry: float  # epoch seconds
    accept: tuple[str, ...]
    status: SessionStatus = SessionStatus.WAITING
    evidence_type: str | None = None
    evidence: bytes | None = None
    result: str | None = None  # the EAR as sent in the session resource (JWT text)
    challenges: Mapping[str, bytes] = field(default_factory=dict)  # backends' own challenges (phase 1)
    binding: Mapping[str, str] = field(default_factory=dict)  # the REPORT_DATA rule (federation.binding)

    @property
    def size(self) -> int:
        """Bytes this record holds, for the store's byte bound."""
        return (_OVERHEAD + len(self.evidence or b"") + len(self.result or "") + len(self.nonce)
                + sum(len(c) + len(n) for n, c in self.challenges.items())
                + sum(len(k) + len(v) for k, v in self.binding.items()))

    def with_status(self, status: SessionStatus, **changes: Any) -> SessionRecord:
        return replace(self, status=status, **changes)

    def view(self) -> dict[str, Any]:
        """The session resource (``application/vnd.veraison.challenge-response-session+json``)."""
        out: dict[str, Any] = {
            "status": self.status.value,
            "nonce": b64url_encode(self.nonce),
            "expiry": rfc3339(self.expiry),
            "accept": list(self.accept),
        }
        if self.evidence is not None:
            out["evidence"] = {"type": self.evidence_type, "value": base64.b64encode(self.evidence).decode()}
        if self.result is not None:
            out["result"] = self.result
        if self.challenges:  # an extension: what the attester must also bind (DESIGN §8)
            out["challenges"] = {n: b64url_encode(c) for n, c in self.challenges.items()}
        if self.binding:  # an extension: the REPORT_DATA a TEE quote must carry (docs/binding.md)
            out["binding"] = dict(self.binding)
        return out

    def to_json(self) -> dict[str, Any]:
        """A lossless JSON form for shared stores."""
        return {
            "id": self.id, "nonce": b64url_encode(self.nonce), "created": self.created, "expiry": self.expiry,
            "accept": list(self.accept), "status": self.status.value, "evidence_type": self.evidence_type,
            "evidence": b64url_encode(self.evidence) if self.evidence is not None else None,
            "result": self.result, "challenges": {n: b64url_encode(c) for n, c in self.challenges.items()},
            "binding": dict(self.binding),
        }

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> SessionRecord:
        evidence = doc.get("evidence")
        return cls(
            id=str(doc["id"]), nonce=b64url_decode(doc["nonce"]), created=float(doc["created"]),
            expiry=float(doc["expiry"]), accept=tuple(doc["accept"]), status=SessionStatus(doc["status"]),
            evidence_type=doc.get("evidence_type"),
            evidence=b64url_decode(evidence) if evidence is not None else None, result=doc.get("result"),
            challenges={n: b64url_decode(c) for n, c in dict(doc.get("challenges") or {}).items()},
            binding={str(k): str(v) for k, v in dict(doc.get("binding") or {}).items()},
        )


@runtime_checkable
class SessionStore(Protocol):
    """Where sessions live between requests. Expired records are never returned."""

    async def put(self, record: SessionRecord, ttl: float) -> None:
        """Create (or overwrite) *record*, living *ttl* seconds. Raise :class:`SessionStoreFull`."""
        ...

    async def get(self, session_id: str) -> SessionRecord | None:
        """The live record, or None when unknown or expired."""
        ...

    async def replace_if(self, record: SessionRecord, expected: SessionStatus) -> bool:
        """Replace the live record of ``record.id`` if its status is *expected*; keep its expiry."""
        ...

    async def delete(self, session_id: str) -> bool:
        """Forget a session; True if it was live."""
        ...

    async def count(self) -> int:
        """Live sessions (for metrics; may be approximate in shared stores)."""
        ...

    async def aclose(self) -> None: ...


class MemorySessionStore:
    """A per-process store bounded by session count and bytes held; expiry checked on access."""

    def __init__(self, *, max_sessions: int = 10_000, max_bytes: int = 64 << 20,
                 clock: Callable[[], float] = time.time) -> None:
        if max_sessions < 1 or max_bytes < 1:
            raise ValueError("store bounds must be positive")
        self.max_sessions = max_sessions
        self.max_bytes = max_bytes
        self._clock = clock
        self._items: dict[str, tuple[float, SessionRecord]] = {}  # insertion order ~ deadline order
        self._bytes = 0

    @property
    def bytes_held(self) -> int:
        return self._bytes

    def _drop(self, session_id: str) -> None:
        _, rec = self._items.pop(session_id)
        self._bytes -= rec.size

    def _sweep(self, *, full: bool = False) -> None:
        """Drop expired records: from the oldest until a live one (or all of them when *full*)."""
        now = self._clock()
        for sid, (deadline, _) in list(self._items.items()):
            if deadline <= now:
                self._drop(sid)
            elif not full:
                break

    def _live(self, session_id: str) -> SessionRecord | None:
        item = self._items.get(session_id)
        if item is None:
            return None
        if item[0] <= self._clock():
            self._drop(session_id)
            return None
        return item[1]

    async def put(self, record: SessionRecord, ttl: float) -> None:
        self._sweep()
        old = self._items.get(record.id)
        extra = record.size - (old[1].size if old else 0)
        if old is None and (len(self._items) >= self.max_sessions or self._bytes + extra > self.max_bytes):
            self._sweep(full=True)
            if len(self._items) >= self.max_sessions or self._bytes + extra > self.max_bytes:
                raise SessionStoreFull(f"{len(self._items)} sessions holding {self._bytes} bytes")
        if old is not None:
            self._drop(record.id)
        self._items[record.id] = (self._clock() + ttl, record)
        self._bytes += record.size

    async def get(self, session_id: str) -> SessionRecord | None:
        return self._live(session_id)

    async def replace_if(self, record: SessionRecord, expected: SessionStatus) -> bool:
        # Updates may exceed the byte bound by one submission per appraisal in flight: admission
        # control happens at creation, and a result must never be lost for want of room.
        current = self._live(record.id)
        if current is None or current.status is not expected:
            return False
        deadline, _ = self._items[record.id]
        self._bytes += record.size - current.size
        self._items[record.id] = (deadline, record)
        return True

    async def delete(self, session_id: str) -> bool:
        live = self._live(session_id) is not None
        if live:
            self._drop(session_id)
        return live

    async def count(self) -> int:
        self._sweep(full=True)
        return len(self._items)

    async def aclose(self) -> None:
        self._items.clear()
        self._bytes = 0
