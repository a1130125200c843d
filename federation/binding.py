"""One Evidence, n verifiers, one freshness: the REPORT_DATA rule the federation fixes (DESIGN §8).

Vendor services bind a caller's data into a TEE report with conflicting rules (Intel Trust
Authority SHA-512(nonce.val ‖ nonce.iat ‖ runtime_data), Azure Attestation SHA-256(runtimeData),
Trustee raw runtime data as is or a hash of structured data, Google its raw challenge), so one
quote can satisfy at most one of them as they stand. The federation therefore fixes one rule and
tells each backend how to reach it; a vote counts only when the verifier's signed result shows the
evidence was bound to *this* session.

The construction, for a session nonce ``N`` and the challenges the backends minted in phase 1::

    runtime_data = canonical JSON {"challenges": {name: b64url(challenge), ...}, "nonce": b64url(N)}
                   (keys sorted, no spaces; "challenges" omitted when there are none)
    prefix       = the bytes one challenging backend requires before the runtime data
                   (Intel Trust Authority: nonce.val ‖ nonce.iat), else empty
    REPORT_DATA  = SHA-512(prefix ‖ runtime_data)                       (64 bytes)

Every input is committed: the nonce and every backend's challenge are inside ``runtime_data``, and
SHA-512 is collision resistant, so a REPORT_DATA made for one session matches no other. Each kind
of backend reaches the same 64 bytes its own way (docs/binding.md has the worked example):
Intel Trust Authority natively (``runtime_data`` with its nonce, or ``prefix ‖ runtime_data``
without); Trustee natively (REPORT_DATA itself as raw runtime data, which it compares unhashed); Azure
Attestation by echoing the REPORT_DATA it verified; Veraison-style verifiers and the local
appraiser by receiving REPORT_DATA itself as their nonce (member option ``nonce = "report-data"``).
Google can only echo a nonce in ``eat_nonce``: that vote is bound more weakly, which the vote
records and the quorum policy's ``weak_binding`` decides.

Pure: no I/O, no clock. The same (nonce, challenges, prefix) always gives the same binding, so a
stateless server can rebuild it from a stored session.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from .errors import UsageError
from .keys import b64url_encode

__all__ = ["Binding", "BindingStrength", "REPORT_DATA_SIZE"]

REPORT_DATA_SIZE = 64  # bytes: TDX and SEV-SNP REPORT_DATA
_MAX_CHALLENGE = 4096  # bytes per backend challenge (an ITA nonce is ~700)
_MAX_CHALLENGES = 32


class BindingStrength(StrEnum):
    """How a vote is tied to this session, strongest first.

    * ``evidence``: the verifier checked the Evidence against what it was sent for this session
      and signed the echo (an EAR's ``eat_nonce`` from a verifier of Evidence; a vendor whose own
      REPORT_DATA rule we satisfied and whose token echoes it);
    * ``report-data``: the verifier's signed result echoes the REPORT_DATA it verified, and the
      federation matched that echo to this session;
    * ``eat-nonce``: the verifier only echoed a nonce it was handed; nothing shows the Evidence
      itself was made for this session (a replayed quote would get the same vote).
    """

    EVIDENCE = "evidence"
    REPORT_DATA = "report-data"
    EAT_NONCE = "eat-nonce"

    @property
    def weak(self) -> bool:
        return self is BindingStrength.EAT_NONCE


@dataclass(frozen=True, slots=True)
class Binding:
    """What this session's Evidence must commit to, and the 64 bytes that prove it did."""

    nonce: bytes
    challenges: Mapping[str, bytes] = field(default_factory=dict)
    prefix: bytes = b""
    runtime_data: bytes = field(init=False)
    report_data: bytes = field(init=False)

    def __post_init__(self) -> None:
        if not isinstance(self.nonce, bytes) or not self.nonce:
            raise UsageError("a binding needs the session nonce")
        if len(self.challenges) > _MAX_CHALLENGES or any(
                not isinstance(c, bytes) or len(c) > _MAX_CHALLENGE for c in self.challenges.values()):
            raise UsageError("too many or too large backend challenges")
        doc: dict[str, object] = {"nonce": b64url_encode(self.nonce)}
        if self.challenges:
            doc["challenges"] = {name: b64url_encode(c) for name, c in sorted(self.challenges.items())}
        runtime = json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()
        object.__setattr__(self, "runtime_data", runtime)
        object.__setattr__(self, "report_data", hashlib.sha512(self.prefix + runtime).digest())

    @property
    def hashed(self) -> bytes:
        """The exact bytes SHA-512 is taken over: ``prefix ‖ runtime_data``."""
        return self.prefix + self.runtime_data

    def matches(self, echoed: bytes | str | None) -> bool:
        """Whether a verifier's echo of REPORT_DATA (bytes or hex) is this session's."""
        if isinstance(echoed, str):
            try:
                echoed = bytes.fromhex(echoed)
            except ValueError:
                return False
        return isinstance(echoed, bytes) and echoed == self.report_data

    def describe(self) -> dict[str, str]:
        """For provenance and the session document: what the attester had to commit to."""
        out = {"rule": "sha512(prefix || runtime_data)", "runtime_data": b64url_encode(self.runtime_data),
               "report_data": self.report_data.hex()}
        if self.prefix:
            out["prefix"] = b64url_encode(self.prefix)
        return out
