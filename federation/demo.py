"""``ratsfed demo``: a whole federation on embedded defaults, every step real.

Nothing is mocked and nothing is read from disk: the demo generates the keys, has an endorser
sign a CoRIM (device attestation key + firmware reference values + a build-provenance link),
has a PSA device sign tokens bound to each session's nonce, runs three local appraisers run by
three operators (each with its own result-signing key, each trusting the endorser's key) under a
2-of-3 quorum with veto and distinct operators, and finally verifies every combined result as a
relying party would, re-verifying every vote.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from verifiers.local.appraiser import LocalAppraiser
from verifiers.local.backend import LocalBackend
from verifiers.local.corim.encode import sign_corim
from verifiers.local.corim.model import (
    ClassMap,
    Comid,
    Corim,
    CorimMeta,
    Digest,
    Environment,
    KeyTriple,
    Locator,
    Measurement,
    MeasurementValues,
    ProfileId,
    ReferenceTriple,
    Tagged,
    Triples,
    Validity,
)
from verifiers.local.corim.signed import verify_corim
from verifiers.local.corim.store import ReferenceValueStore
from verifiers.local.evidence.psa import PROFILE_P2, PsaClaims, SwComponent, encode_psa
from verifiers.local.schemes import PSA

from .engine import Federation, Member, Session
from .evidence import Evidence
from .keys import SigningKey, TrustAnchor
from .quorum import QuorumPolicy
from .result import AppraisalResult, verify_result

__all__ = ["Case", "run_demo"]

PSA_PROFILE = "tag:arm.com,2025:psa#1.0.0"
IMPL_ID = b"demo-implementation-id-000000001"
INSTANCE_ID = b"\x01" + hashlib.sha256(b"demo device").digest()
FIRMWARE = (("BL", "2.1.0"), ("PRoT", "1.3.5"), ("ARoT", "0.1.4"))
PROVENANCE_LINK = "https://builds.example/acme/firmware/2.1.0/provenance.intoto.jsonl"
OPERATORS = ("acme", "globex", "initech")


def _digest(name: str, version: str) -> bytes:
    return hashlib.sha256(f"{name} {version} firmware image".encode()).digest()


def _corim(device: SigningKey, endorser: SigningKey, now: datetime) -> bytes:
    impl = Tagged("bytes", IMPL_ID, 560)
    refs = tuple(
        Measurement(MeasurementValues(digests=(Digest(1, _digest(n, v)),), name=n,
                                      cryptokeys=(Tagged("bytes", hashlib.sha256(b"acme signer").digest(), 560),)),
                    mkey=Tagged("string", "psa.software-component"))
        for n, v in FIRMWARE
    )
    pem = device.public.key.public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo).decode()
    triples = Triples(
        reference=(ReferenceTriple(Environment(ClassMap(impl)), refs),),
        attest_key=(KeyTriple(Environment(ClassMap(impl), instance=Tagged("ueid", INSTANCE_ID, 550)),
                              (Tagged("pkix-base64-key", pem, 554),)),),
    )
    corim = Corim("demo-firmware-2.1.0", (Comid("acme-psa-firmware", triples, 1),), ProfileId(PSA_PROFILE),
                  dependent_rims=(Locator((PROVENANCE_LINK,)),))
    meta = CorimMeta("ACME Firmware Signing", signature_validity=Validity(now - timedelta(days=1),
                                                                          now + timedelta(days=365)))
    return sign_corim(corim, endorser, meta)


def _token(device: SigningKey, nonce: bytes, firmware: tuple[tuple[str, str], ...] = FIRMWARE) -> bytes:
    claims = PsaClaims(
        profile=PROFILE_P2, client_id=1, security_lifecycle=0x3000, implementation_id=IMPL_ID,
        instance_id=INSTANCE_ID, nonce=nonce,
        software_components=tuple(SwComponent(_digest(n, v), hashlib.sha256(b"acme signer").digest(), n, v)
                                  for n, v in firmware),
        boot_seed=bytes(32), verification_service="https://verifier.example",
    )
    return encode_psa(claims, device)


@dataclass(frozen=True, slots=True)
class Case:
    title: str
    expected: str
    result: AppraisalResult
    verified_status: str
    reverified: bool


async def _run(now: int) -> tuple[list[Case], dict[str, Any]]:
    when = datetime.fromtimestamp(now, UTC)
    device, endorser, rogue = SigningKey.generate(), SigningKey.generate(), SigningKey.generate()
    signed_corim = _corim(device, endorser, when)
    endorser_anchor = TrustAnchor((endorser.public,))
    members, anchors = [], {}
    for op in OPERATORS:
        store = ReferenceValueStore()
        store.add(verify_corim(signed_corim, [endorser_anchor], when), source="demo CoRIM")
        backend = LocalBackend(f"{op}-verifier", op, LocalAppraiser([PSA], store), SigningKey.generate())
        members.append(Member(backend, backend.public_anchor))
        anchors[backend.name] = backend.public_anchor
    policy = QuorumPolicy(k=2, n=3, veto=True, wait="quorum", distinct_operators=True, id="demo:2-of-3")
    fed_key = SigningKey.generate()
    old_nonce = b"\x5a" * 32

    def build(token: Callable[[Session], bytes]) -> Callable[[Federation], Awaitable[tuple[AppraisalResult, bytes]]]:
        async def go(fed: Federation) -> tuple[AppraisalResult, bytes]:
            session = await fed.challenge()
            evidence = Evidence("application/psa-attestation-token", token(session))
            return await fed.appraise(evidence, session=session, now=now), session.nonce
        return go

    scenarios = [
        ("genuine device, endorsed firmware", "affirming", build(lambda s: _token(device, s.nonce))),
        ("unknown bootloader build", "warning",
         build(lambda s: _token(device, s.nonce, (("BL", "2.2.0-dev"), *FIRMWARE[1:])))),
        ("token signed by a key the endorser never vouched for", "contraindicated",
         build(lambda s: _token(rogue, s.nonce))),
        ("replay of a token bound to an old nonce", "contraindicated", build(lambda s: _token(device, old_nonce))),
    ]
    cases = []
    async with Federation(members, policy, fed_key, federation_id="ratsfed-demo", clock=lambda: float(now)) as fed:
        for title, expected, go in scenarios:
            result, nonce = await go(fed)
            checked = verify_result(result.token, TrustAnchor((fed_key.public,)), nonce=nonce, reverify=True,
                                    anchors=anchors, now=now)
            cases.append(Case(title, expected, result, checked.status, checked.decision is not None))
    world = {"federation_key": fed_key.public.jwk(), "endorser_key": endorser.public.jwk(),
             "verifiers": {n: a.jwks() for n, a in anchors.items()}, "policy": policy.describe()}
    return cases, world


def run_demo(now: int | None = None) -> tuple[list[Case], dict[str, Any]]:
    """Run the scenarios; returns the cases and the public keys an RP would configure."""
    return asyncio.run(_run(int(time.time()) if now is None else now))
