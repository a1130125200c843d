"""The AMD root keys (ARK) an SEV-SNP chain may end in, pinned by the SHA-256 of their public keys.

Why pins, and why of keys: DESIGN §9 — a vendor root is trusted only when its key matches a pin
compiled in here or a root the operator configured, never because the Evidence carries it (the
configfs-tsm ``auxblob`` ships an ARK, and so could an attacker). Certificates come with the
Evidence, from the collateral store or from the operator; only the key they carry is judged.
Pinning the SubjectPublicKeyInfo (not the certificate) lets AMD re-issue an ARK certificate for
the same key without a code change.

Each value is ``sha256(SubjectPublicKeyInfo DER)`` of the self-signed ARK of a product line,
computed from the certificates in ``shared/vectors/sev-snp/go-sev-guest/trust/*.pem`` (copies of
AMD KDS ``/vcek/v1/{product}/cert_chain`` and ``/vlek/v1/{product}/cert_chain``; the VCEK and
VLEK bundles of a product end in the same ARK). ``tests/test_sevsnp_amd.py`` recomputes them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes

__all__ = ["ARK_PINS", "PINS_BY_SHA256", "AmdRoot", "spki_sha256"]


@dataclass(frozen=True, slots=True)
class AmdRoot:
    """One pinned AMD Root Key: its product line, the common name AMD gives it, its key digest."""

    product: str
    common_name: str
    spki_sha256: str  # lower-case hex


ARK_PINS: tuple[AmdRoot, ...] = (
    AmdRoot("Milan", "ARK-Milan", "9f056bee44377e29308cb5ffa895bdfb62d18881fa6bed8d6f075b0204089cb9"),
    AmdRoot("Genoa", "ARK-Genoa", "429a69c9422aa258ee4d8db5fcda9c6470ef15f8cd5a9cebd6cbc7d90b863831"),
    AmdRoot("Turin", "ARK-Turin", "4f125410563a2ab9a50356f9243f6fe0b6f73de98603f53f90339c70e9d7ad08"),
)

PINS_BY_SHA256: Mapping[str, AmdRoot] = MappingProxyType({r.spki_sha256: r for r in ARK_PINS})


def spki_sha256(key: PublicKeyTypes) -> str:
    """Lower-case hex SHA-256 of a public key's SubjectPublicKeyInfo (DER): what a pin names."""
    der = key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(der).hexdigest()
