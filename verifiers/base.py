"""The backend plug-in boundary: what a verifier must do to take part in a federation.

A backend is anything with a name, an operator, a kind and one coroutine, ``appraise``, that
returns the verifier's *raw* signed result. It does not judge its own result: the federation
checks every result on one path (signature under that backend's trust anchor, nonce echo,
freshness), whatever the backend's origin. Backends raise :class:`federation.errors.BackendError`
subclasses for transport failures; anything else they raise is recorded as ``error``.
"""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from federation.binding import Binding
from federation.evidence import Evidence

__all__ = [
    "Backend", "ChallengingBackend", "ClosableBackend", "PrefixingBackend", "RawResult", "appraisal_time",
    "session_binding",
]

# The appraisal's time (epoch seconds) when the caller fixed one (``appraise(now=...)``, ``--at``).
# In-process backends that check validity periods read it, so that one ``now`` governs the whole
# appraisal; remote verifiers keep their own clocks.
appraisal_time: ContextVar[int | None] = ContextVar("appraisal_time", default=None)

# The session's REPORT_DATA rule (federation.binding), set by the engine around every appraisal:
# backends that send runtime data to a vendor service read it to make the service's own binding
# rule land on the federation's REPORT_DATA. None outside an appraisal.
session_binding: ContextVar[Binding | None] = ContextVar("session_binding", default=None)


@dataclass(frozen=True, slots=True)
class RawResult:
    """A verifier's answer as received: the signed token and its media type."""

    token: bytes
    media_type: str = "application/eat+jwt"


@runtime_checkable
class Backend(Protocol):
    name: str
    operator: str
    kind: str

    async def appraise(self, evidence: Evidence, nonce: bytes, deadline: float) -> RawResult:
        """Ask the verifier about *evidence* bound to *nonce*; finish before *deadline*
        (``asyncio`` loop time). The federation also enforces the deadline."""
        ...


@runtime_checkable
class ChallengingBackend(Backend, Protocol):
    """A verifier that mints its own challenge (phase 1 of the session, DESIGN §8)."""

    async def challenge(self, nonce: bytes, deadline: float) -> bytes | None: ...


@runtime_checkable
class PrefixingBackend(ChallengingBackend, Protocol):
    """A challenging backend whose service hashes its challenge *before* the runtime data
    (Intel Trust Authority: SHA-512(nonce.val ‖ nonce.iat ‖ runtime_data)). At most one member
    of a federation may be one: its prefix starts the federation's REPORT_DATA input."""

    def report_data_prefix(self, challenge: bytes) -> bytes: ...


@runtime_checkable
class ClosableBackend(Backend, Protocol):
    async def aclose(self) -> None: ...
