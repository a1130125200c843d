"""Signature algorithms, described by data, and the raw sign/verify both JOSE and COSE use.

Why one table: JWS and COSE name the same algorithms differently (``"ES256"`` / ``-7``) and
both carry ECDSA signatures as fixed-width ``r || s``; keeping the mapping in one place means an
algorithm is allowed or refused the same way on every path. All operations run on
``cryptography`` (constant-time OpenSSL), never on a pure-Python ECDSA.
"""

from __future__ import annotations

from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature

from .errors import AlgorithmError, BadSignatureError

__all__ = [
    "ALGORITHMS",
    "Algorithm",
    "PrivateKey",
    "PublicKey",
    "by_cose_id",
    "by_name",
    "check_key",
    "default_algorithms",
    "raw_sign",
    "raw_verify",
]

PublicKey = ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey | rsa.RSAPublicKey
PrivateKey = ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey | rsa.RSAPrivateKey


@dataclass(frozen=True, slots=True)
class Algorithm:
    name: str  # JOSE name
    cose_id: int  # COSE algorithm identifier
    family: str  # "ec" | "okp" | "rsa-pss" | "rsa-pkcs1"
    hash_name: str | None
    curve: str | None = None  # for ECDSA: the curve the key must be on
    size: int = 0  # ECDSA coordinate size in bytes

    def _hash(self) -> hashes.HashAlgorithm:
        return {"sha256": hashes.SHA256(), "sha384": hashes.SHA384(), "sha512": hashes.SHA512()}[
            self.hash_name or ""
        ]


ALGORITHMS: tuple[Algorithm, ...] = (
    Algorithm("ES256", -7, "ec", "sha256", "secp256r1", 32),
    Algorithm("ES384", -35, "ec", "sha384", "secp384r1", 48),
    Algorithm("ES512", -36, "ec", "sha512", "secp521r1", 66),
    Algorithm("EdDSA", -8, "okp", None),
    Algorithm("PS256", -37, "rsa-pss", "sha256"),
    Algorithm("PS384", -38, "rsa-pss", "sha384"),
    Algorithm("PS512", -39, "rsa-pss", "sha512"),
    Algorithm("RS256", -257, "rsa-pkcs1", "sha256"),
)
_BY_NAME = {a.name: a for a in ALGORITHMS}
_BY_COSE = {a.cose_id: a for a in ALGORITHMS}


def by_name(name: object) -> Algorithm:
    """The algorithm a JOSE header names; ``none``, HMAC and anything unknown are refused."""
    if isinstance(name, str) and name in _BY_NAME:
        return _BY_NAME[name]
    raise AlgorithmError(f"algorithm {name!r:.20} is not supported")


def by_cose_id(ident: object) -> Algorithm:
    if isinstance(ident, int) and not isinstance(ident, bool) and ident in _BY_COSE:
        return _BY_COSE[ident]
    raise AlgorithmError(f"COSE algorithm {ident!r:.20} is not supported")


def default_algorithms(key: PublicKey) -> frozenset[str]:
    """The algorithms a key may be used with when the config does not say (one per key type)."""
    if isinstance(key, ec.EllipticCurvePublicKey):
        return frozenset(a.name for a in ALGORITHMS if a.curve == key.curve.name)
    if isinstance(key, ed25519.Ed25519PublicKey):
        return frozenset({"EdDSA"})
    if isinstance(key, rsa.RSAPublicKey):
        return frozenset({"PS256", "PS384", "PS512"})
    raise AlgorithmError(f"unsupported key type {type(key).__name__}")


def check_key(alg: Algorithm, key: PublicKey | PrivateKey) -> None:
    """Raise :class:`AlgorithmError` unless *key* can be used with *alg* (type, curve, RSA size)."""
    ok = (
        (alg.family == "ec" and isinstance(key, ec.EllipticCurvePublicKey | ec.EllipticCurvePrivateKey)
         and key.curve.name == alg.curve)
        or (alg.family == "okp" and isinstance(key, ed25519.Ed25519PublicKey | ed25519.Ed25519PrivateKey))
        or (alg.family.startswith("rsa") and isinstance(key, rsa.RSAPublicKey | rsa.RSAPrivateKey)
            and key.key_size >= 2048)
    )
    if not ok:
        raise AlgorithmError(f"{alg.name} cannot be used with this key")


def raw_sign(alg: Algorithm, key: PrivateKey, data: bytes) -> bytes:
    """Sign *data*; ECDSA output is the fixed-width ``r || s`` of JWS/COSE."""
    check_key(alg, key)
    if isinstance(key, ec.EllipticCurvePrivateKey):
        der = key.sign(data, ec.ECDSA(alg._hash()))
        r, s = decode_dss_signature(der)
        return r.to_bytes(alg.size, "big") + s.to_bytes(alg.size, "big")
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return key.sign(data)
    if alg.family == "rsa-pss":
        h = alg._hash()
        return key.sign(data, padding.PSS(padding.MGF1(h), h.digest_size), h)
    return key.sign(data, padding.PKCS1v15(), alg._hash())


def raw_verify(alg: Algorithm, key: PublicKey, data: bytes, signature: bytes) -> None:
    """Return if *signature* is valid, raise :class:`BadSignatureError` otherwise."""
    check_key(alg, key)
    try:
        if isinstance(key, ec.EllipticCurvePublicKey):
            if len(signature) != 2 * alg.size:
                raise BadSignatureError(f"{alg.name} signature must be {2 * alg.size} bytes")
            r = int.from_bytes(signature[: alg.size], "big")
            s = int.from_bytes(signature[alg.size :], "big")
            key.verify(encode_dss_signature(r, s), data, ec.ECDSA(alg._hash()))
        elif isinstance(key, ed25519.Ed25519PublicKey):
            key.verify(signature, data)
        elif alg.family == "rsa-pss":
            h = alg._hash()
            # Verify with the salt length fixed to the hash size, as RFC 7518/8230 require.
            key.verify(signature, data, padding.PSS(padding.MGF1(h), h.digest_size), h)
        else:
            key.verify(signature, data, padding.PKCS1v15(), alg._hash())
    except InvalidSignature as exc:
        raise BadSignatureError(f"{alg.name} signature does not verify") from exc
