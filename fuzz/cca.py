"""verifiers.local.evidence.cca: decode_cca and verify_cca (both envelopes) under a fixed platform key."""

from __future__ import annotations

import hashlib

from cryptography.hazmat.primitives.asymmetric import ec

from federation.keys import SigningKey
from fuzz._harness import NOW, fixed_anchor, fixed_key, typed_errors_only
from verifiers.local.evidence import cca
from verifiers.local.evidence.psa import SwComponent


def _token(encoding: cca.Encoding, *, cose_key: bool) -> bytes:
    rak = SigningKey.of(ec.derive_private_key(0xCCA, ec.SECP384R1()), "ES384", kid="rak")
    pub = rak.key.public_key()
    assert isinstance(pub, ec.EllipticCurvePublicKey)
    realm = cca.CcaRealmClaims(
        challenge=bytes(range(64)), personalization_value=b"P" * 64,
        initial_measurement=hashlib.sha256(b"rim").digest(),
        extensible_measurements=tuple(hashlib.sha256(bytes([i])).digest() for i in range(4)),
        hash_algorithm="sha-256", public_key=cca.rak_claim(pub, cose_key=cose_key),
        public_key_hash_algorithm="sha-256", profile=cca.REALM_PROFILE if cose_key else None,
    )
    platform = cca.CcaPlatformClaims(
        profile=cca.PLATFORM_PROFILE, challenge=cca.binder(realm), implementation_id=b"I" * 32,
        instance_id=b"\x01" + b"i" * 32, config=b"\x01\x02\x03", security_lifecycle=0x3000,
        software_components=(SwComponent(hashlib.sha256(b"bl").digest(), b"S" * 32, "BL", "1.0.0", "sha-256"),),
        hash_algorithm="sha-256", verification_service="https://veraison.example/v1/challenge-response",
    )
    return cca.encode_cca(platform, realm, fixed_key(), rak, encoding=encoding)


def seeds() -> list[bytes]:
    return [_token(enc, cose_key=ck) for enc in ("eat-collection", "cmw-collection") for ck in (True, False)]


def _run(data: bytes) -> None:
    cca.sniff(data)
    cca.verify_cca(data, fixed_anchor(), NOW)


TestOneInput = typed_errors_only(_run)
