"""Turn a CoRIM crypto key (``$crypto-key-type-choice``) into a public key an appraiser can verify with.

Why separate: attest-key and identity triples carry keys as PEM text (554), PEM or DER
certificates (555, 556, 562) or COSE_Key maps (558); scheme code (PSA, CCA, EAT) needs a
``cryptography`` public key and should not care which. Thumbprints (557, 559, 561) and opaque
bytes (560) *name* a key without carrying it, so they are refused here with a reason.
A certificate's key is taken as is: the CoRIM's signer vouches for it; no chain is built.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from federation import cbor
from federation.algorithms import PublicKey
from federation.errors import MalformedError

from .model import Tagged

__all__ = ["public_key"]

_PEM_KEY, _PEM_CERT = b"-----BEGIN PUBLIC KEY-----", b"-----BEGIN CERTIFICATE-----"
# COSE_Key (RFC 9053): kty 2 = EC2 with crv 1/2/3; kty 1 = OKP with crv 6 = Ed25519.
_EC_CURVES: Mapping[int, tuple[ec.EllipticCurve, int]] = MappingProxyType(
    {1: (ec.SECP256R1(), 32), 2: (ec.SECP384R1(), 48), 3: (ec.SECP521R1(), 66)})
_KTY_EC2, _KTY_OKP, _CRV_ED25519 = 2, 1, 6


def _supported(key: Any, what: str) -> PublicKey:
    if not isinstance(key, ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey | rsa.RSAPublicKey):
        raise MalformedError(f"{what}: unsupported public key type {type(key).__name__}")
    return key


def _pem_key(text: Any) -> PublicKey:
    data = str(text).strip().encode()
    if not data.startswith(_PEM_KEY) or data.count(b"-----BEGIN") != 1:
        raise MalformedError("pkix-base64-key: expected exactly one PEM PUBLIC KEY block")
    return _supported(serialization.load_pem_public_key(data), "pkix-base64-key")


def _pem_cert(text: Any) -> PublicKey:
    data = str(text).strip().encode()
    if not data.startswith(_PEM_CERT):
        raise MalformedError("pkix-base64-cert: expected a PEM CERTIFICATE block")
    return _supported(x509.load_pem_x509_certificates(data)[0].public_key(), "pkix-base64-cert")


def _der_cert(data: Any) -> PublicKey:
    return _supported(x509.load_der_x509_certificate(bytes(data)).public_key(), "pkix-asn1der-cert")


def _cose_key(encoded: Any) -> PublicKey:
    key = cbor.loads(bytes(encoded), max_depth=4)
    if not isinstance(key, dict):
        raise MalformedError("cose-key: expected a COSE_Key map")
    kty, crv = key.get(1), key.get(-1)
    spec = _EC_CURVES.get(crv) if isinstance(crv, int) else None
    if kty == _KTY_EC2 and spec is not None and isinstance(key.get(-2), bytes) and isinstance(key.get(-3), bytes):
        curve, size = spec
        x, y = key[-2], key[-3]
        if len(x) != size or len(y) != size:
            raise MalformedError("cose-key: EC coordinates have the wrong length")
        return ec.EllipticCurvePublicNumbers(int.from_bytes(x, "big"), int.from_bytes(y, "big"), curve).public_key()
    if kty == _KTY_OKP and crv == _CRV_ED25519 and isinstance(key.get(-2), bytes):
        return ed25519.Ed25519PublicKey.from_public_bytes(key[-2])
    raise MalformedError(f"cose-key: unsupported key (kty {kty!r:.10}, crv {crv!r:.10})")


_READERS: Mapping[str, Callable[[Any], PublicKey]] = MappingProxyType({
    "pkix-base64-key": _pem_key,
    "pkix-base64-cert": _pem_cert,
    "pkix-base64-cert-path": _pem_cert,  # the first certificate is the one the key belongs to
    "pkix-asn1der-cert": _der_cert,
    "cose-key": _cose_key,
})


def public_key(key: Tagged) -> PublicKey:
    """The public key *key* carries; :class:`MalformedError` if it carries none or does not parse."""
    reader = _READERS.get(key.type)
    if reader is None:
        raise MalformedError(f"crypto key of type '{key.type}' names a key but does not carry one")
    try:
        return reader(key.value)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:  # an unknown key algorithm in a certificate
        raise MalformedError(f"{key.type}: does not parse: {exc}") from exc
