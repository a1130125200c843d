"""Keys: loading (JWK, JWKS, PEM), thumbprints, signing keys, and per-backend trust anchors.

Why trust anchors are explicit objects: a backend's result may verify only under *that*
backend's configured keys (DESIGN §9). A key is never taken from a token header (``jwk``,
``jku``, ``x5u``); an ``x5c`` chain counts only when it validates to a root the operator
configured, at the appraisal's ``now``. Each key carries its allow-list of algorithms.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import stat
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.verification import ExtensionPolicy, PolicyBuilder, Store, VerificationError

from .algorithms import ALGORITHMS, PrivateKey, PublicKey, by_name, default_algorithms
from .errors import AlgorithmError, ConfigError, MalformedError, UntrustedKeyError

__all__ = [
    "SigningKey",
    "TrustAnchor",
    "VerificationKey",
    "b64url_decode",
    "b64url_encode",
    "jwk_to_private",
    "jwk_to_public",
    "load_signing_key",
    "load_trust_anchor",
    "public_to_jwk",
    "thumbprint",
]

_MAX_KEY_FILE = 1 << 20  # bytes
_MAX_CHAIN = 5  # certificates in an x5c chain
_CURVES: dict[str, ec.EllipticCurve] = {"P-256": ec.SECP256R1(), "P-384": ec.SECP384R1(), "P-521": ec.SECP521R1()}
_CURVE_NAMES = {"secp256r1": "P-256", "secp384r1": "P-384", "secp521r1": "P-521"}
_SIZES = {"P-256": 32, "P-384": 48, "P-521": 66}


def b64url_encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


_B64URL_ALPHABET = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


def b64url_decode(text: str | bytes) -> bytes:
    """Decode base64url with or without padding; strict alphabet (no silent garbage)."""
    try:
        raw = text.encode("ascii") if isinstance(text, str) else text
    except UnicodeEncodeError as exc:  # found by fuzzing (fuzz/provenance.py): non-ASCII text
        raise MalformedError("base64url: invalid character") from exc
    raw = raw.rstrip(b"=")
    if raw.translate(None, _B64URL_ALPHABET):  # anything left is outside the alphabet (C speed)
        raise MalformedError("base64url: invalid character")
    try:
        out = base64.urlsafe_b64decode(raw + b"=" * (-len(raw) % 4))
    except ValueError as exc:
        raise MalformedError("base64url: invalid length") from exc
    if base64.urlsafe_b64encode(out).rstrip(b"=") != raw:  # stray bits in the last character
        raise MalformedError("base64url: not canonical (nonzero trailing bits)")
    return out


def _int_b64(n: int, size: int | None = None) -> str:
    size = size or max(1, (n.bit_length() + 7) // 8)
    return b64url_encode(n.to_bytes(size, "big"))


def _b64_int(value: Any, name: str) -> int:
    if not isinstance(value, str):
        raise MalformedError(f"jwk: member {name!r} missing or not a string")
    return int.from_bytes(b64url_decode(value), "big")


def jwk_to_public(jwk: Mapping[str, Any]) -> PublicKey:
    """The public key of a JWK (a private JWK yields its public half)."""
    kty = jwk.get("kty")
    try:
        if kty == "EC":
            crv = _CURVES.get(str(jwk.get("crv")))
            if crv is None:
                raise MalformedError(f"jwk: unsupported curve {jwk.get('crv')!r:.20}")
            nums = ec.EllipticCurvePublicNumbers(_b64_int(jwk.get("x"), "x"), _b64_int(jwk.get("y"), "y"), crv)
            return nums.public_key()
        if kty == "OKP" and jwk.get("crv") == "Ed25519":
            return ed25519.Ed25519PublicKey.from_public_bytes(b64url_decode(str(jwk.get("x"))))
        if kty == "RSA":
            return rsa.RSAPublicNumbers(_b64_int(jwk.get("e"), "e"), _b64_int(jwk.get("n"), "n")).public_key()
    except ValueError as exc:
        raise MalformedError(f"jwk: invalid key: {exc}") from exc
    raise MalformedError(f"jwk: unsupported key type {kty!r:.20}")


def jwk_to_private(jwk: Mapping[str, Any]) -> PrivateKey:
    if "d" not in jwk:
        raise MalformedError("jwk: not a private key (no 'd')")
    pub = jwk_to_public(jwk)
    try:
        if isinstance(pub, ec.EllipticCurvePublicKey):
            return ec.EllipticCurvePrivateNumbers(_b64_int(jwk["d"], "d"), pub.public_numbers()).private_key()
        if isinstance(pub, ed25519.Ed25519PublicKey):
            return ed25519.Ed25519PrivateKey.from_private_bytes(b64url_decode(str(jwk["d"])))
        p, q, d = (_b64_int(jwk.get(n), n) for n in ("p", "q", "d"))
        return rsa.RSAPrivateNumbers(
            p, q, d, rsa.rsa_crt_dmp1(d, p), rsa.rsa_crt_dmq1(d, q), rsa.rsa_crt_iqmp(p, q), pub.public_numbers()
        ).private_key()
    except ValueError as exc:
        raise MalformedError(f"jwk: invalid private key: {exc}") from exc


def public_to_jwk(key: PublicKey, *, kid: str | None = None, alg: str | None = None) -> dict[str, str]:
    """RFC 7517 JWK of a public key, members in RFC 7638 order first."""
    out: dict[str, str]
    if isinstance(key, ec.EllipticCurvePublicKey):
        crv = _CURVE_NAMES[key.curve.name]
        n = key.public_numbers()
        out = {"crv": crv, "kty": "EC", "x": _int_b64(n.x, _SIZES[crv]), "y": _int_b64(n.y, _SIZES[crv])}
    elif isinstance(key, ed25519.Ed25519PublicKey):
        raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        out = {"crv": "Ed25519", "kty": "OKP", "x": b64url_encode(raw)}
    elif isinstance(key, rsa.RSAPublicKey):
        rn = key.public_numbers()
        out = {"e": _int_b64(rn.e), "kty": "RSA", "n": _int_b64(rn.n)}
    else:
        raise AlgorithmError(f"unsupported key type {type(key).__name__}")
    if kid is not None:
        out["kid"] = kid
    if alg is not None:
        out["alg"] = alg
    return out


def thumbprint(key: PublicKey) -> str:
    """RFC 7638 JWK thumbprint (SHA-256, base64url): a stable name for a key in provenance."""
    jwk = public_to_jwk(key)
    canonical = json.dumps(jwk, sort_keys=True, separators=(",", ":")).encode()
    return b64url_encode(hashlib.sha256(canonical).digest())


@dataclass(frozen=True, slots=True)
class VerificationKey:
    """A public key with the algorithms it may verify, as configured."""

    key: PublicKey
    algorithms: frozenset[str]
    kid: str | None = None
    _cache: dict[str, str] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def of(cls, key: PublicKey, *, kid: str | None = None, algorithms: Iterable[str] | None = None
           ) -> VerificationKey:
        algs = frozenset(algorithms) if algorithms is not None else default_algorithms(key)
        for a in algs:
            by_name(a)
        return cls(key, algs, kid)

    @property
    def thumbprint(self) -> str:
        """RFC 7638 thumbprint, computed once per key object (it names every vote's signer)."""
        if "tp" not in self._cache:
            self._cache["tp"] = thumbprint(self.key)
        return self._cache["tp"]

    def jwk(self) -> dict[str, str]:
        alg = next(iter(self.algorithms)) if len(self.algorithms) == 1 else None
        return public_to_jwk(self.key, kid=self.kid, alg=alg)


@dataclass(frozen=True, slots=True)
class TrustAnchor:
    """What a backend's (or the federation's) results must be signed by.

    ``keys`` sign directly; ``roots`` anchor ``x5c`` chains whose leaf signs (with
    ``chain_algorithms`` allowed). An empty anchor trusts nothing: that is an error at load.
    """

    keys: tuple[VerificationKey, ...] = ()
    roots: tuple[x509.Certificate, ...] = ()
    chain_algorithms: frozenset[str] = field(default_factory=lambda: frozenset(a.name for a in ALGORITHMS))

    def __post_init__(self) -> None:
        if not self.keys and not self.roots:
            raise ConfigError("a trust anchor needs at least one key or root certificate")

    def candidates(self, alg: str, kid: str | None, x5c: Sequence[bytes] | None, now: datetime
                   ) -> list[VerificationKey]:
        """Keys that may have made a signature with *alg*; raise if there are none.

        With a ``kid`` only keys of that id are candidates; without one, every key allowing
        *alg*. An ``x5c`` chain is used only when roots are configured and it validates.
        """
        if x5c and self.roots:
            leaf = self._validate_chain(x5c, now)
            if alg not in self.chain_algorithms:
                raise AlgorithmError(f"{alg} not allowed for x5c chains of this anchor")
            return [VerificationKey.of(leaf, algorithms=[alg])]
        keys = [k for k in self.keys if kid is None or k.kid is None or k.kid == kid]
        if kid is not None and any(k.kid == kid for k in keys):
            keys = [k for k in keys if k.kid == kid]
        if not keys:
            raise UntrustedKeyError(f"no configured key has kid {kid!r:.40}")
        allowed = [k for k in keys if alg in k.algorithms]
        if not allowed:
            raise AlgorithmError(f"{alg} is not allowed for the configured key(s)")
        return allowed

    def _validate_chain(self, x5c: Sequence[bytes], now: datetime) -> PublicKey:
        if len(x5c) > _MAX_CHAIN:
            raise MalformedError(f"x5c chain longer than {_MAX_CHAIN}")
        try:
            certs = [x509.load_der_x509_certificate(der) for der in x5c]
        except ValueError as exc:
            raise MalformedError(f"x5c: bad certificate: {exc}") from exc
        builder = (
            PolicyBuilder()
            .store(Store(list(self.roots)))
            .time(now.astimezone(UTC).replace(tzinfo=None))
            .max_chain_depth(_MAX_CHAIN)
            .extension_policies(
                ca_policy=ExtensionPolicy.webpki_defaults_ca(), ee_policy=ExtensionPolicy.permit_all()
            )
        )
        try:
            builder.build_client_verifier().verify(certs[0], certs[1:])
        except VerificationError as exc:
            raise UntrustedKeyError(f"x5c chain does not validate to a configured root: {exc}") from exc
        key = certs[0].public_key()
        if not isinstance(key, ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey | rsa.RSAPublicKey):
            raise UntrustedKeyError("x5c leaf key type is not supported")
        return key

    def jwks(self) -> dict[str, list[dict[str, str]]]:
        return {"keys": [k.jwk() for k in self.keys]}


def _read_limited(path: Path) -> bytes:
    try:
        with path.open("rb") as fh:
            data = fh.read(_MAX_KEY_FILE + 1)
    except OSError as exc:
        raise ConfigError(f"cannot read key file: {exc.strerror}", file=str(path)) from exc
    if len(data) > _MAX_KEY_FILE:
        raise ConfigError("key file too large", file=str(path))
    return data


def _json_keys(doc: Any) -> list[Mapping[str, Any]]:
    if isinstance(doc, Mapping) and isinstance(doc.get("keys"), list):
        return [k for k in doc["keys"] if isinstance(k, Mapping)]
    if isinstance(doc, Mapping) and "kty" in doc:
        return [doc]
    raise MalformedError("not a JWK or JWKS document")


def _anchor_key(jwk: Mapping[str, Any]) -> PublicKey:
    """A configured JWK's key; one with only ``x5c`` (Azure Attestation's ``/certs``) gives the key
    of ``x5c[0]``, pinned like any configured key (the certificate itself is not validated)."""
    x5c = jwk.get("x5c")
    if "n" in jwk or "x" in jwk or not isinstance(x5c, list) or not x5c or not isinstance(x5c[0], str):
        return jwk_to_public(jwk)
    key = x509.load_der_x509_certificate(base64.b64decode(x5c[0], validate=True)).public_key()
    if not isinstance(key, rsa.RSAPublicKey | ec.EllipticCurvePublicKey) or jwk.get("kty") not in (
            None, "RSA" if isinstance(key, rsa.RSAPublicKey) else "EC"):
        raise MalformedError("jwk: x5c[0] key is not of the JWK's kty (RSA or EC)")
    return key


def load_trust_anchor(path: str | Path, *, algorithms: Iterable[str] | None = None) -> TrustAnchor:
    """Load a JWK, a JWKS, PEM public key(s) or PEM root certificate(s) from a file."""
    path = Path(path)
    data = _read_limited(path)
    keys: list[VerificationKey] = []
    roots: list[x509.Certificate] = []
    try:
        if data.lstrip().startswith(b"{"):
            for jwk in _json_keys(json.loads(data)):
                algs = list(algorithms) if algorithms is not None else ([jwk["alg"]] if "alg" in jwk else None)
                kid = jwk.get("kid")
                keys.append(VerificationKey.of(_anchor_key(jwk), kid=kid if isinstance(kid, str) else None,
                                               algorithms=algs))
        elif b"-----BEGIN CERTIFICATE-----" in data:
            roots = list(x509.load_pem_x509_certificates(data))
        elif data.startswith(b"-----BEGIN"):
            for block in data.split(b"-----END PUBLIC KEY-----"):
                if b"-----BEGIN PUBLIC KEY-----" in block:
                    pub = serialization.load_pem_public_key(block + b"-----END PUBLIC KEY-----\n")
                    if not isinstance(pub, ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey
                                      | rsa.RSAPublicKey):
                        raise MalformedError("unsupported public key type")
                    keys.append(VerificationKey.of(pub, algorithms=algorithms))
        else:
            roots = [x509.load_der_x509_certificate(data)]
    except (ValueError, KeyError, MalformedError, AlgorithmError) as exc:
        raise ConfigError(f"not a usable key or certificate: {exc}", file=str(path)) from exc
    chain_algs = frozenset(algorithms) if algorithms is not None else frozenset(a.name for a in ALGORITHMS)
    return TrustAnchor(tuple(keys), tuple(roots), chain_algs)


@dataclass(frozen=True, slots=True)
class SigningKey:
    """A private key, the one algorithm it signs with, and the ``kid`` it announces.

    The private key never shows in ``repr`` (nor in the repr of anything holding a SigningKey):
    only the algorithm and the ``kid``, which names the public key.
    """

    key: PrivateKey = field(repr=False)
    algorithm: str
    kid: str

    @classmethod
    def generate(cls, algorithm: str = "ES256") -> SigningKey:
        alg = by_name(algorithm)
        private: PrivateKey
        if alg.family == "ec":
            private = ec.generate_private_key(_CURVES[_CURVE_NAMES[alg.curve or ""]])
        elif alg.family == "okp":
            private = ed25519.Ed25519PrivateKey.generate()
        else:
            private = rsa.generate_private_key(public_exponent=65537, key_size=3072)
        return cls.of(private, algorithm)

    @classmethod
    def of(cls, key: PrivateKey, algorithm: str | None = None, kid: str | None = None) -> SigningKey:
        pub = key.public_key()
        algs = default_algorithms(pub)
        alg = algorithm or sorted(algs)[0]
        if alg not in algs:
            raise AlgorithmError(f"{alg} cannot be used with this key")
        return cls(key, alg, kid or thumbprint(pub))

    @property
    def public(self) -> VerificationKey:
        return VerificationKey.of(self.key.public_key(), kid=self.kid, algorithms=[self.algorithm])

    def private_pem(self) -> bytes:
        return self.key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )


def load_signing_key(source: str | Path, *, algorithm: str | None = None, kid: str | None = None) -> SigningKey:
    """Load a private key from a PEM or JWK file, or from ``env:NAME`` (the PEM/JWK text).

    Files readable by group or others are refused: a signing key must be private to its user.
    """
    text = str(source)
    if text.startswith("env:"):
        value = os.environ.get(text[4:])
        if not value:
            raise ConfigError(f"environment variable {text[4:]} is not set", key="signing_key")
        data = value.encode()
        where = text
    else:
        path = Path(text)
        data = _read_limited(path)
        where = str(path)
        mode = path.stat().st_mode
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise ConfigError("signing key file must not be accessible to group/others (chmod 600)",
                              file=where)
    try:
        if data.lstrip().startswith(b"{"):
            jwk = json.loads(data)
            private: Any = jwk_to_private(jwk)
            kid = kid or (jwk.get("kid") if isinstance(jwk.get("kid"), str) else None)
            algorithm = algorithm or (jwk.get("alg") if isinstance(jwk.get("alg"), str) else None)
        else:
            private = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError, MalformedError) as exc:
        raise ConfigError(f"not a usable private key: {type(exc).__name__}", file=where) from exc
    if not isinstance(private, ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey | rsa.RSAPrivateKey):
        raise ConfigError("unsupported private key type", file=where)
    return SigningKey.of(private, algorithm, kid)
