"""Fault-injecting verifier backends that implement the real Backend protocol.

They sign real EARs with real keys; a fault is a real defect in what they send (wrong key,
wrong nonce, old iat, garbage), so the federation's real checks are what catch it.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Literal

import jwt as pyjwt

from federation import cbor, cose
from federation.ar4si import Tier, TrustVector
from federation.ear import Appraisal, Ear, Spelling, VerifierId, encode_ear
from federation.engine import Member
from federation.errors import BackendHTTPError, BackendUnreachableError
from federation.evidence import Evidence
from federation.keys import SigningKey, TrustAnchor
from verifiers.base import RawResult

Fault = Literal[
    "none", "slow", "hang", "raise", "unreachable", "bad-signature", "untrusted-key", "wrong-nonce",
    "stale", "malformed", "flaky", "garbage", "http-error", "no-token",
]
# malformed:  signed with the right key, but the claims are not an EAR (so it is the *parse* that fails)
# garbage:    bytes that are no token at all (an error page where the token should be)
# http-error: the verifier answers HTTP 503 every time (transient: retried, then recorded)
# no-token:   the backend returns something that is not a RawResult (a backend bug)

NOW = 1_760_000_000  # a fixed appraisal time for tests

VECTORS = {
    Tier.AFFIRMING: {"instance-identity": 2, "executables": 2, "hardware": 2, "configuration": 0},
    Tier.WARNING: {"instance-identity": 2, "executables": 33, "hardware": 2, "configuration": 0},
    Tier.CONTRAINDICATED: {"instance-identity": 99, "executables": 99, "hardware": 99, "configuration": 99},
    Tier.NONE: {"instance-identity": 0},
}


@dataclass
class FakeVerifier:
    name: str
    operator: str = ""
    status: Tier = Tier.AFFIRMING
    fault: Fault = "none"
    delay: float = 0.0
    submod: str = "PSA_IOT"
    fmt: Literal["jwt", "cwt"] = "jwt"
    kind: str = "fake"
    key: SigningKey = field(default_factory=lambda: SigningKey.generate("ES256"))
    calls: int = 0
    more_submods: dict[str, Tier] = field(default_factory=dict)  # further submods reported, by status

    def __post_init__(self) -> None:
        self.operator = self.operator or f"op-{self.name}"

    async def appraise(self, evidence: Evidence, nonce: bytes, deadline: float) -> RawResult:
        self.calls += 1
        if self.fault == "hang":
            await asyncio.sleep(3600)
        if self.delay or self.fault == "slow":
            await asyncio.sleep(self.delay or 0.2)
        if self.fault == "raise":
            raise RuntimeError("backend bug")
        if self.fault == "unreachable" or (self.fault == "flaky" and self.calls == 1):
            raise BackendUnreachableError("connection refused")
        if self.fault == "http-error":
            raise BackendHTTPError("service unavailable", status=503)
        if self.fault == "garbage":
            return RawResult(b"<html><body>502 Bad Gateway</body></html>")
        if self.fault == "no-token":
            return "not a RawResult"  # type: ignore[return-value]
        if self.fault == "malformed":
            return self._signed_non_ear(nonce)
        ear = Ear(
            Spelling.VERAISON.profile,
            NOW - 4000 if self.fault == "stale" else NOW,
            VerifierId("fake", self.name),
            {name: Appraisal.make(status, TrustVector.of(VECTORS[status]))
             for name, status in {self.submod: self.status, **self.more_submods}.items()},
            nonce=b"\x00" * 32 if self.fault == "wrong-nonce" else nonce,
        )
        key = self.key
        if self.fault == "bad-signature":
            key = SigningKey.of(SigningKey.generate("ES256").key, "ES256", kid=self.key.kid)
        elif self.fault == "untrusted-key":
            key = SigningKey.generate("ES256")
        token = encode_ear(ear, key, fmt=self.fmt)
        return RawResult(token, "application/eat+jwt" if self.fmt == "jwt" else "application/eat+cwt")

    @property
    def public_anchor(self) -> TrustAnchor:
        """An in-process backend may publish its key (config uses it when no anchor is set)."""
        return TrustAnchor((self.key.public,))

    def _signed_non_ear(self, nonce: bytes) -> RawResult:
        """A correctly signed token whose claims are not an EAR (unknown profile, no submods)."""
        if self.fmt == "jwt":
            claims = {"eat_profile": "tag:example.com,2024:not-ear", "iat": NOW, "eat_nonce": nonce.hex()}
            text = pyjwt.encode(claims, self.key.key, algorithm=self.key.algorithm, headers={"kid": self.key.kid})
            return RawResult(text.encode("ascii"), "application/eat+jwt")
        payload = cbor.dumps({265: "tag:example.com,2024:not-ear", 6: NOW, 10: nonce})
        return RawResult(cose.sign1(payload, self.key), "application/eat+cwt")

    def member(self, **kw: object) -> Member:
        return Member(self, TrustAnchor((self.key.public,)), **kw)  # type: ignore[arg-type]


EVIDENCE = Evidence("application/psa-attestation-token", b"\xd2evidence-bytes")


def register_fake_kind() -> None:
    """Make ``kind = "fake"`` available to configs in tests (options: status, fault, delay)."""
    from verifiers.registry import Kind, VerifierSpec, register

    def factory(spec: VerifierSpec) -> FakeVerifier:
        from federation.keys import load_signing_key

        o = spec.options
        extra = {"key": load_signing_key(spec.path(o["key"]))} if "key" in o else {}
        return FakeVerifier(spec.name, spec.operator, status=Tier.parse(o.get("status", "affirming")),
                            fault=o.get("fault", "none"), delay=float(o.get("delay", 0.0)), **extra)

    register(Kind("fake", factory, {"status": str, "fault": str, "delay": (int, float), "key": str}))
