"""Shared pieces of the server tests: local PSA appraisers, apps on 127.0.0.1, key checks."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from test_local_psa import MT, N32, PSA, key

from federation import cbor, cose
from federation.ear.token import VerifiedEar, verify_ear
from federation.keys import SigningKey, TrustAnchor, VerificationKey, jwk_to_public
from verifiers.local.appraiser import LocalAppraiser
from verifiers.local.backend import LocalBackend
from verifiers.local.corim.store import load_paths
from verifiers.local.evidence.psa import json_to_cbor_claims
from verifiers.local.schemes import BUILTIN

__all__ = [
    "GOOD", "MT", "N32", "N32_B64", "PSA", "SESSION", "anchor_of", "local_backend", "psa_good", "serve", "verify",
]

SESSION = "application/vnd.veraison.challenge-response-session+json"
CORIM = PSA / "endorsements" / "corim-psa-valid.cbor"
GOOD = (PSA / "evidence" / "psa.good.cose").read_bytes()
N32_B64 = "QUp8F0FBs9DpodKK8xUg8NQimf6sQAfe2J1ormzZLxk="  # padded base64url, as Veraison's vectors write it
assert base64.urlsafe_b64decode(N32_B64) == N32


def psa_good(nonce: bytes) -> bytes:
    """Veraison's ``psa.good`` claims bound to *nonce* (``psa.good.cose`` is bound to N32), signed by
    the key ``corim-psa-valid.cbor`` endorses: affirming Evidence for a fresh nonce, since a federator
    appraises each nonce once and a verifier takes one Evidence per nonce (``federation.replay``).
    ECDSA signatures are randomized: two calls give two different Evidence for one nonce."""
    claims = json_to_cbor_claims((PSA / "claims" / "psa.good.json").read_text())
    return cose.sign1(cbor.dumps({**claims, 10: nonce}), key("ec.p256.jwk"))


def local_backend(name: str = "acme-local", operator: str = "acme") -> LocalBackend:
    """A local PSA appraiser over Veraison's reference values, signing with a fresh key."""
    store = load_paths([CORIM], [], datetime.now(UTC), trust_unsigned=True)
    return LocalBackend(name, operator, LocalAppraiser(list(BUILTIN.values()), store), SigningKey.generate())


@asynccontextmanager
async def serve(app: web.Application) -> AsyncIterator[TestClient[web.Request, web.Application]]:
    """The app on a real server at 127.0.0.1 (a free port), with a client for it."""
    async with TestClient(TestServer(app, host="127.0.0.1")) as client:
        yield client


def anchor_of(jwk: dict[str, Any]) -> TrustAnchor:
    alg = jwk.get("alg")
    return TrustAnchor((VerificationKey.of(jwk_to_public(jwk), kid=jwk.get("kid"),
                                           algorithms=[alg] if alg else None),))


def verify(token: str, jwk: dict[str, Any], nonce: bytes | None = None) -> VerifiedEar:
    """Verify a result as a relying party would: with the key the discovery document published."""
    return verify_ear(token, anchor_of(jwk), now=datetime.now(UTC), nonce=nonce)
