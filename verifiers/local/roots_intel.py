"""The Intel SGX Root CA, pinned by the SHA-256 of its public key (DESIGN.md §9).

Data, not certificates: the root certificate arrives with the Evidence (a TDX quote's PCK chain
ends with it), with collateral (PCS issuer chains) or from the operator; it is trusted only when
its SubjectPublicKeyInfo hashes to a pin below or matches a root the operator configured, never
because something carries it.

The pin was computed from the Intel SGX Root CA certificate (``CN=Intel SGX Root CA, O=Intel
Corporation, L=Santa Clara, ST=CA, C=US``, ECDSA P-256, valid 2018-05-21 to 2049-12-31, the
same DER in ``../shared/vectors/tdx/dcap-qvl/TrustedRootCA.der`` and
``go-tdx-guest/trusted_root.pem``) as ``sha256(cert.public_key().public_bytes(DER,
SubjectPublicKeyInfo))``; ``tests/test_tdx_collateral.py`` recomputes it from those files.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from types import MappingProxyType

from cryptography import x509
from cryptography.hazmat.primitives import serialization

__all__ = ["INTEL_ROOT_PINS", "INTEL_SGX_ROOT_CA", "spki_sha256"]

INTEL_SGX_ROOT_CA = "a0af031289f5d5d4132f9186068a7fc13628633ba235777472e29b6b6c67a49e"

INTEL_ROOT_PINS: Mapping[str, str] = MappingProxyType({
    INTEL_SGX_ROOT_CA: "Intel SGX Root CA",
})
"""SPKI SHA-256 (lower-case hex) -> the root's name."""


def spki_sha256(cert: x509.Certificate) -> str:
    """SHA-256 of the certificate's DER SubjectPublicKeyInfo, lower-case hex."""
    spki = cert.public_key().public_bytes(serialization.Encoding.DER,
                                          serialization.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(spki).hexdigest()
