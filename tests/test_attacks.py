"""The attack catalogue (``docs/attacks.md``): every attack on every token and signature path is
rejected with a specific error class and its ``reason``.

Paths: the ways signed bytes from outside come in.

* ``ear-jwt`` / ``ear-cwt``: an EAR under :func:`federation.ear.token.verify_ear`;
* ``backend-jwt`` / ``backend-cwt``: a backend's result through :meth:`Federation.appraise`: the
  vote must record the failure (its outcome and the error's reason) and, being the only vote of a
  1-of-1 policy, leave the combined status ``none``;
* ``combined-jwt`` / ``combined-cwt``: a combined result (claims of a real federation result) under
  :func:`federation.verify_result`;
* ``eat-jwt`` / ``eat-cwt``, ``psa``, ``cca-platform``, ``cca-realm``: Evidence parsers, under the
  attester key (the realm token: under the key it carries, bound by the platform token);
* ``corim``: a signed CoRIM under :func:`verify_signed_corim`.

``ATTACKS`` is data; :func:`test_attack` runs every (attack, variant, path) that applies. The
attacks that are not a matrix over paths (signature malleability, audience and issuer, nonce
reuse, log hygiene) have their own tests below. ``docs/attacks.md`` must list every attack id.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import re
import socket
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path as FilePath
from typing import Any, Literal

import cbor2
import pytest
from aiohttp.test_utils import TestServer
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature
from cryptography.x509.oid import NameOID
from fakes import EVIDENCE, NOW, VECTORS, FakeVerifier
from server_helpers import GOOD, MT, N32, N32_B64, SESSION, local_backend, psa_good, serve

from federation import cbor, cose
from federation.algorithms import by_name
from federation.ar4si import Tier, TrustVector
from federation.config import ServerConfig
from federation.ear import Appraisal, Ear, Spelling, VerifierId, peek_claims
from federation.ear.codec import to_cbor_claims, to_json_claims
from federation.ear.token import DEFAULT_MAX_TOKEN, VerifiedEar, verify_ear
from federation.engine import Federation, Member
from federation.errors import (
    AlgorithmError,
    BackendUnreachableError,
    BadSignatureError,
    Error,
    MalformedError,
    NonceMismatchError,
    PolicyError,
    ReplayError,
    StaleError,
    UntrustedKeyError,
    UsageError,
    VerificationError,
)
from federation.evidence import Evidence
from federation.keys import SigningKey, TrustAnchor, VerificationKey, b64url_decode, b64url_encode, public_to_jwk
from federation.quorum import QuorumPolicy
from federation.replay import MemoryReplayCache, ReplayCache, ReplayCacheFull
from federation.result import VerifiedResult, verify_result
from federation.server import FederatorRole, VerifierRole, create_app
from federation.votes import Outcome, Vote
from verifiers.base import RawResult
from verifiers.local.corim import Corim, VerifiedCorim, encode_corim, verify_signed_corim
from verifiers.local.corim.decode import MAX_CORIM_SIZE
from verifiers.local.corim.model import ClassMap, Comid, Environment, KeyTriple, Tagged, Triples, Validity
from verifiers.local.evidence import cca, eat, psa
from verifiers.local.evidence.cca import CcaPlatformClaims, CcaRealmClaims, binder, rak_claim, verify_cca
from verifiers.local.evidence.eat import EatClaims, verify_eat
from verifiers.local.evidence.psa import PsaClaims, SwComponent, verify_psa
from verifiers.remote import VeraisonBackend

NOW_DT = datetime.fromtimestamp(NOW, UTC)
NONCE = bytes(range(32))
OTHER_NONCE = bytes(range(100, 132))
CATALOGUE = FilePath(__file__).resolve().parents[1] / "docs" / "attacks.md"
CURVE_ORDER = {
    "secp256r1": 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551,
    "secp384r1": 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFC7634D81F4372DDF581A0DB248B0A77AECEC196ACCC52973,
}
OTHER_CURVE_ALG = {"ES256": "ES384", "ES384": "ES256"}


# --- signing anything (attacks need signatures our own signer refuses to make) ------------------

def _hash(alg: str) -> hashes.HashAlgorithm:
    return {"256": hashes.SHA256(), "384": hashes.SHA384(), "512": hashes.SHA512()}[alg[-3:]]


def raw_signature(alg: str, key: Any, data: bytes) -> bytes:
    """Sign *data* the way *alg* says with whatever *key* is given (bytes: an HMAC secret)."""
    if isinstance(key, bytes):
        return hmac.new(key, data, _hash(alg).name).digest()
    if isinstance(key, ec.EllipticCurvePrivateKey):
        r, s = decode_dss_signature(key.sign(data, ec.ECDSA(_hash(alg))))
        size = (key.curve.key_size + 7) // 8
        return r.to_bytes(size, "big") + s.to_bytes(size, "big")
    assert isinstance(key, rsa.RSAPrivateKey)
    if alg.startswith("PS"):
        h = _hash(alg)
        return key.sign(data, padding.PSS(padding.MGF1(h), h.digest_size), h)
    return key.sign(data, padding.PKCS1v15(), _hash(alg))


def b64(data: bytes) -> str:
    return b64url_encode(data)


def jws(header: Mapping[str, Any] | bytes, payload: bytes, key: Any, alg: str, *, signature: bytes | None = None
        ) -> bytes:
    """A compact JWS built by hand: any header (raw bytes too), any payload, any signature."""
    head = header if isinstance(header, bytes) else json.dumps(header).encode()
    signing_input = f"{b64(head)}.{b64(payload)}".encode()
    if signature is None:
        signature = b"" if key is None else raw_signature(alg, key, signing_input)
    return signing_input + b"." + b64(signature).encode()


def sign1(protected: Mapping[Any, Any] | bytes, payload: bytes | None, key: Any, alg: str, *,
          unprotected: Mapping[Any, Any] | None = None, signed_payload: bytes | None = None,
          signature: bytes | None = None) -> Any:
    """A COSE_Sign1 array built by hand (not yet encoded): any header, payload, signature."""
    raw = protected if isinstance(protected, bytes) else cbor2.dumps(protected)
    body = signed_payload if signed_payload is not None else payload
    if signature is None:
        tbs = cbor2.dumps(["Signature1", raw, b"", body])
        signature = b"" if key is None else raw_signature(alg, key, tbs)
    return [raw, dict(unprotected or {}), payload, signature]


def tagged(msg: Any, tag: int = 18) -> bytes:
    return cbor2.dumps(cbor2.CBORTag(tag, msg))


def head(major: int, n: int, *, wide: bool = False) -> bytes:
    """A CBOR initial byte and argument; *wide*: the non-preferred 8-byte form."""
    if wide:
        return bytes([major << 5 | 27]) + n.to_bytes(8, "big")
    if n < 24:
        return bytes([major << 5 | n])
    for info, size in ((24, 1), (25, 2), (26, 4), (27, 8)):
        if n < 1 << (8 * size):
            return bytes([major << 5 | info]) + n.to_bytes(size, "big")
    raise AssertionError(n)


def cbor_key(k: Any, *, wide: bool) -> bytes:
    if wide and isinstance(k, int):
        return head(0, k, wide=True) if k >= 0 else head(1, -1 - k, wide=True)
    return cbor2.dumps(k)


def map_with_duplicate(m: Mapping[Any, Any], *, wide: bool = False) -> bytes:
    """*m* with its first key written twice (the second time non-preferred when *wide*)."""
    items = list(m.items())
    first_key, first_value = items[0]
    body = cbor_key(first_key, wide=wide) + cbor2.dumps(first_value)
    body += b"".join(cbor2.dumps(k) + cbor2.dumps(v) for k, v in items)
    return head(5, len(items) + 1) + body


def nested(depth: int) -> Any:
    value: Any = 0
    for _ in range(depth):
        value = [value]
    return value


# --- a small PKI: a configured root, an attacker's root, leaves of each curve --------------------

def _cert(subject: str, key: Any, issuer: str, issuer_key: Any, *, ca: bool, not_after: datetime) -> x509.Certificate:
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
        .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer)]))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(datetime(2020, 1, 1, tzinfo=UTC))
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()), critical=False)
    )
    if ca:
        builder = builder.add_extension(
            x509.KeyUsage(digital_signature=False, content_commitment=False, key_encipherment=False,
                          data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
                          encipher_only=False, decipher_only=False), critical=True)
    return builder.sign(issuer_key, hashes.SHA256())


@dataclass(frozen=True)
class Pki:
    root: x509.Certificate  # the one the path's anchor configures
    leaf_key: ec.EllipticCurvePrivateKey  # a leaf the configured root issued, valid at NOW
    leaf: x509.Certificate
    expired_key: ec.EllipticCurvePrivateKey  # issued by the configured root, expired before NOW
    expired: x509.Certificate
    rogue_key: ec.EllipticCurvePrivateKey  # the attacker's leaf, under the attacker's own root
    rogue: x509.Certificate
    rogue_root: x509.Certificate


@cache
def pki(curve: str) -> Pki:
    crv: ec.EllipticCurve = ec.SECP256R1() if curve == "secp256r1" else ec.SECP384R1()
    later, earlier = datetime(2030, 1, 1, tzinfo=UTC), datetime(2024, 1, 1, tzinfo=UTC)
    root_key, rogue_root_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    leaf_key, expired_key, rogue_key = (ec.generate_private_key(crv) for _ in range(3))
    root = _cert("Configured Root", root_key, "Configured Root", root_key, ca=True, not_after=later)
    rogue_root = _cert("Configured Root", rogue_root_key, "Configured Root", rogue_root_key, ca=True,
                       not_after=later)  # same name as the configured root: only the key differs
    return Pki(
        root, leaf_key, _cert("Signer", leaf_key, "Configured Root", root_key, ca=False, not_after=later),
        expired_key, _cert("Old Signer", expired_key, "Configured Root", root_key, ca=False, not_after=earlier),
        rogue_key, _cert("Signer", rogue_key, "Configured Root", rogue_root_key, ca=False, not_after=later),
        rogue_root,
    )


def der(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.DER)


# --- the paths --------------------------------------------------------------------------------------

@cache
def fed_key() -> SigningKey:
    return SigningKey.generate("ES256")


def fed_anchor() -> TrustAnchor:
    return TrustAnchor((fed_key().public,))


@cache
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def ear(nonce: bytes = NONCE) -> Ear:
    return Ear(Spelling.VERAISON.profile, NOW, VerifierId("acme", "attack-tests"),
               {"PSA_IOT": Appraisal.make(Tier.AFFIRMING, TrustVector.of(VECTORS[Tier.AFFIRMING]))},
               exp=NOW + 300, nonce=nonce)


@dataclass
class TokenBackend:
    """A backend that answers with whatever token it was given (the attacker's)."""

    token: bytes
    media_type: str
    name: str = "hostile"
    operator: str = "mallory"
    kind: str = "fake"

    async def appraise(self, evidence: object, nonce: bytes, deadline: float) -> RawResult:
        return RawResult(self.token, self.media_type)


ERROR_OF = {c.reason: c for c in (AlgorithmError, BadSignatureError, MalformedError, NonceMismatchError,
                                  PolicyError, StaleError, UntrustedKeyError, VerificationError)}
# The outcome each error reason records for a backend (DESIGN §1), written out independently.
OUTCOME_OF = {"bad-signature": "bad-signature", "untrusted-key": "untrusted-key", "bad-algorithm": "untrusted-key",
              "nonce-mismatch": "nonce-mismatch", "stale": "stale", "malformed": "malformed",
              "verification": "malformed"}


def through_federation(token: bytes, anchor: TrustAnchor, media_type: str) -> Vote:
    """The token as one backend's answer: return its vote if ok, else re-raise what it records."""
    fed = Federation([Member(TokenBackend(token, media_type), anchor)], QuorumPolicy(k=1, n=1), fed_key(),
                     clock=lambda: float(NOW))
    result = asyncio.run(fed.appraise(EVIDENCE, NONCE))
    vote = result.votes[0]
    if vote.outcome is Outcome.OK:
        return vote
    assert result.status == "none", "a failed vote must not count"
    reason, _, detail = (vote.detail or "").partition(": ")
    assert vote.outcome.value == OUTCOME_OF[reason], (vote.outcome, vote.detail)
    raise ERROR_OF[reason](detail)


@cache
def combined_claims(fmt: Literal["jwt", "cwt"]) -> Any:
    """The claims of a real combined result (one honest backend), to be re-signed by attacks."""
    honest = FakeVerifier("acme", fmt=fmt, key=SigningKey.generate("ES256"))
    fed = Federation([honest.member()], QuorumPolicy(k=1, n=1), fed_key(), clock=lambda: float(NOW),
                     result_format=fmt)
    return peek_claims(asyncio.run(fed.appraise(EVIDENCE, NONCE)).token)[1]


def corim_payload(**extra: Any) -> bytes:
    env = Environment(ClassMap(Tagged("bytes", b"\x01" * 32, 560)), Tagged("ueid", b"\x01" + b"\x02" * 32, 550))
    comid = Comid("comid", Triples(attest_key=(KeyTriple(env, (Tagged("pkix-base64-key", "PEM", 554),)),)))
    return encode_corim(Corim("attack-tests", (comid,), **extra))


def corim_meta(not_before: int = NOW - 86400, not_after: int = NOW + 86400) -> bytes:
    return cbor.dumps({0: {0: "ACME Endorser"}, 1: {0: cbor.CBORTag(1, not_before), 1: cbor.CBORTag(1, not_after)}})


@cache
def cca_parts() -> tuple[SigningKey, SigningKey, bytes, bytes]:
    """(IAK, RAK, platform claims, realm claims): a bound pair, RAK on P-384."""
    iak, rak = SigningKey.generate("ES256"), SigningKey.generate("ES384")
    pub = rak.key.public_key()
    assert isinstance(pub, ec.EllipticCurvePublicKey)
    realm = CcaRealmClaims(
        challenge=bytes(range(64)), personalization_value=b"P" * 64,
        initial_measurement=hashlib.sha256(b"rim").digest(),
        extensible_measurements=tuple(hashlib.sha256(bytes([i])).digest() for i in range(4)),
        hash_algorithm="sha-256", public_key=rak_claim(pub), public_key_hash_algorithm="sha-256",
        profile=cca.REALM_PROFILE)
    platform = CcaPlatformClaims(
        profile=cca.PLATFORM_PROFILE, challenge=binder(realm), implementation_id=b"I" * 32,
        instance_id=b"\x01" + b"i" * 32, config=b"\x01\x02\x03", security_lifecycle=0x3000,
        software_components=(SwComponent(hashlib.sha256(b"bl").digest(), b"S" * 32, "BL", "1.0.0", "sha-256"),),
        hash_algorithm="sha-256")
    return iak, rak, cbor.dumps(platform.to_cbor_claims()), cbor.dumps(realm.to_cbor_claims())


def cca_collection(platform: bytes, realm: bytes) -> bytes:
    return cbor2.dumps(cbor2.CBORTag(cca.TAG_EAT_COLLECTION, {cca.PLATFORM_LABEL: platform, cca.REALM_LABEL: realm}))


Family = Literal["jose", "cose"]
KEEP: Any = object()  # "the usual value" for Path.header's kid
Claims = Literal["ear", "eat", "none"]


@dataclass(eq=False)
class Path:
    """One way signed bytes come in: its trusted signer, a valid payload, and its verifier."""

    name: str
    family: Family
    signer: SigningKey
    payload: bytes
    run: Callable[[bytes, TrustAnchor], object]
    max_size: int
    claims: Claims = "none"  # which time claims the payload carries
    extra_header: Mapping[Any, Any] = field(default_factory=dict)  # e.g. CoRIM's content type and metadata
    wrap: Callable[[bytes], bytes] = lambda token: token  # a COSE_Sign1 -> what the path reads
    own_key: bool = False  # the verifying key comes from the token itself (CCA realm): nothing to configure

    def anchor(self, *, algorithms: list[str] | None = None) -> TrustAnchor:
        return TrustAnchor((VerificationKey.of(self.signer.key.public_key(), kid=self.signer.kid,
                                               algorithms=algorithms),))

    def header(self, alg: Any = None, extra: Mapping[Any, Any] | None = None, *, kid: Any = KEEP
               ) -> dict[Any, Any]:
        """The usual header (alg, kid, path extras) with *extra* merged in."""
        h: dict[Any, Any]
        if self.family == "jose":
            h = {"alg": alg if alg is not None else self.signer.algorithm,
                 "kid": self.signer.kid if kid is KEEP else kid}
        else:
            h = {1: alg if alg is not None else by_name(self.signer.algorithm).cose_id,
                 4: self.signer.kid.encode() if kid is KEEP else kid, **self.extra_header}
        h.update(extra or {})
        return h

    def sign(self, header: Mapping[Any, Any] | bytes | None = None, payload: bytes | None = KEEP, *,
             key: Any = None, alg: str | None = None, unsigned: bool = False, **kw: Any) -> bytes:
        """A token for this path: the usual header and payload unless given (a None payload is a
        detached one), signed by the path's signer as its algorithm says unless told otherwise."""
        header = self.header() if header is None else header
        payload = self.payload if payload is KEEP else payload
        key = None if unsigned else (self.signer.key if key is None else key)
        alg = alg or self.signer.algorithm
        if self.family == "jose":
            assert payload is not None  # a JWS is never detached here: its payload segment is emptied instead
            return jws(header, payload, key, alg, **kw)
        return self.wrap(tagged(sign1(header, payload, key, alg, **kw)))

    def check(self, token: bytes, anchor: TrustAnchor | None = None) -> object:
        return self.run(token, anchor if anchor is not None else self.anchor())


def _paths() -> dict[str, Callable[[], Path]]:
    def ear_path(family: Family) -> Path:
        e, key = ear(), SigningKey.generate("ES256")
        if family == "jose":
            return Path("ear-jwt", family, key, json.dumps(to_json_claims(e)).encode(),
                        lambda t, a: verify_ear(t, a, now=NOW, nonce=NONCE), DEFAULT_MAX_TOKEN, "ear")
        return Path("ear-cwt", family, key, cbor.dumps(to_cbor_claims(e)),
                    lambda t, a: verify_ear(t, a, now=NOW, nonce=NONCE), DEFAULT_MAX_TOKEN, "ear")

    def backend(family: Family) -> Path:
        p = ear_path(family)
        media_type = "application/eat+jwt" if family == "jose" else "application/eat+cwt"
        p.name = "backend-jwt" if family == "jose" else "backend-cwt"
        p.run = lambda t, a: through_federation(t, a, media_type)
        return p

    def combined(family: Family) -> Path:
        if family == "jose":
            payload = json.dumps(combined_claims("jwt")).encode()
        else:
            payload = cbor.dumps(combined_claims("cwt"))
        return Path("combined-jwt" if family == "jose" else "combined-cwt", family, fed_key(), payload,
                    lambda t, a: verify_result(t, a, nonce=NONCE, now=NOW), DEFAULT_MAX_TOKEN, "ear")

    def eat_path(family: Family) -> Path:
        claims = EatClaims(nonces=(NONCE,), ueid=b"\x01" + bytes(32), iat=NOW - 60, exp=NOW + 300)
        payload = (json.dumps(claims.to_claims(json_token=True)).encode() if family == "jose"
                   else cbor.dumps(claims.to_claims(json_token=False)))
        return Path("eat-jwt" if family == "jose" else "eat-cwt", family, SigningKey.generate("ES256"), payload,
                    lambda t, a: verify_eat(t, a, NOW_DT), eat.MAX_TOKEN, "eat")

    def psa_path() -> Path:
        claims = PsaClaims(profile=psa.PROFILE_P2, client_id=1, security_lifecycle=0x3000, implementation_id=b"I" * 32,
                           instance_id=b"\x01" + b"i" * 32, nonce=NONCE, software_components=(
                               SwComponent(hashlib.sha256(b"bl").digest(), b"S" * 32, "BL", "1.0.0", "sha-256"),))
        return Path("psa", "cose", SigningKey.generate("ES256"), cbor.dumps(claims.to_cbor_claims()),
                    lambda t, a: verify_psa(t, a, NOW_DT), psa.MAX_TOKEN)

    def cca_platform() -> Path:
        iak, rak, platform, realm = cca_parts()
        realm_token = cose.sign1(realm, rak)
        return Path("cca-platform", "cose", iak, platform, lambda t, a: verify_cca(t, a, NOW_DT), cca.MAX_TOKEN,
                    wrap=lambda p: cca_collection(p, realm_token))

    def cca_realm() -> Path:
        iak, rak, platform, realm = cca_parts()
        platform_token = cose.sign1(platform, iak)
        return Path("cca-realm", "cose", rak, realm, lambda t, _: verify_cca(t, iak.public, NOW_DT), cca.MAX_TOKEN,
                    wrap=lambda r: cca_collection(platform_token, r), own_key=True)

    def corim() -> Path:
        return Path("corim", "cose", SigningKey.generate("ES256"), corim_payload(),
                    lambda t, a: verify_signed_corim(t, [a], NOW_DT), MAX_CORIM_SIZE,
                    extra_header={3: "application/rim+cbor", 8: corim_meta()})

    return {
        "ear-jwt": lambda: ear_path("jose"), "ear-cwt": lambda: ear_path("cose"),
        "backend-jwt": lambda: backend("jose"), "backend-cwt": lambda: backend("cose"),
        "combined-jwt": lambda: combined("jose"), "combined-cwt": lambda: combined("cose"),
        "eat-jwt": lambda: eat_path("jose"), "eat-cwt": lambda: eat_path("cose"),
        "psa": psa_path, "cca-platform": cca_platform, "cca-realm": cca_realm, "corim": corim,
    }


PATH_FACTORIES = _paths()
PATH_FAMILY: dict[str, Family] = {name: "jose" if name.endswith("jwt") else "cose" for name in PATH_FACTORIES}
PATH_CLAIMS: dict[str, Claims] = {name: "ear" if name.startswith(("ear", "backend", "combined"))
                                  else "eat" if name.startswith("eat") else "none" for name in PATH_FACTORIES}


@cache
def path(name: str) -> Path:
    return PATH_FACTORIES[name]()


# --- the attacks --------------------------------------------------------------------------------

@dataclass(frozen=True)
class Ctx:
    path: Path
    variant: str
    url: str  # a listening socket nobody may connect to: where header URLs point


Attempt = bytes | tuple[bytes, TrustAnchor]
Builder = Callable[[Ctx], Attempt]


@dataclass(frozen=True)
class Attack:
    id: str
    expect: type[Error]
    match: str  # what the error's detail must say: the right check refused it, not an accident
    jose: Builder | None = None
    cose: Builder | None = None
    jose_variants: tuple[str, ...] = ("",)
    cose_variants: tuple[str, ...] = ("",)
    applies: Callable[[str], bool] = lambda name: True  # by path name


def _kid(p: Path) -> Any:
    return p.signer.kid if p.family == "jose" else p.signer.kid.encode()


def _hmac_secret(p: Path, form: str) -> bytes:
    pub = p.signer.key.public_key()
    if form == "jwk":
        return json.dumps(public_to_jwk(pub)).encode()
    if form == "der":
        return pub.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return pub.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def alg_none_jose(c: Ctx) -> Attempt:
    return c.path.sign(c.path.header("" if c.variant == "empty" else c.variant), unsigned=True)


def alg_none_cose(c: Ctx) -> Attempt:
    return c.path.sign(c.path.header(0 if c.variant == "0" else "none"), unsigned=True)


def alg_unprotected(c: Ctx) -> Attempt:
    p = c.path
    alg = by_name(p.signer.algorithm).cose_id
    protected = {k: v for k, v in p.header().items() if k != 1}
    if c.variant == "absent":
        return p.sign(protected)
    if c.variant == "unprotected-only":
        return p.sign(protected, unprotected={1: alg})
    return p.sign(p.header(), unprotected={1: alg})  # "both"


def hmac_jose(c: Ctx) -> Attempt:
    alg, form = c.variant.split("-")
    return c.path.sign(c.path.header(alg), key=_hmac_secret(c.path, form), alg=alg)


def hmac_cose(c: Ctx) -> Attempt:
    cose_id, alg = {"HMAC256": (5, "HS256"), "HMAC384": (6, "HS384"), "HMAC512": (7, "HS512")}[c.variant]
    return c.path.sign(c.path.header(cose_id), key=_hmac_secret(c.path, "pem"), alg=alg)


def _alg_value(p: Path, name: str) -> Any:
    return name if p.family == "jose" else by_name(name).cose_id


def other_curve(c: Ctx) -> Attempt:
    p = c.path
    other = OTHER_CURVE_ALG[p.signer.algorithm]  # the trusted key signs, hashing as the other curve's alg
    return p.sign(p.header(_alg_value(p, other)), alg=other)


def other_curve_configured(c: Ctx) -> Attempt:
    p = c.path
    other = OTHER_CURVE_ALG[p.signer.algorithm]
    return p.sign(p.header(_alg_value(p, other)), alg=other), p.anchor(algorithms=[p.signer.algorithm, other])


def pss_on_ec(c: Ctx) -> Attempt:
    p = c.path
    return p.sign(p.header(_alg_value(p, "PS256")), signature=bytes(range(256)))


def pkcs1_when_pss_only(c: Ctx) -> Attempt:
    p, key = c.path, rsa_key()
    anchor = TrustAnchor((VerificationKey.of(key.public_key(), kid=p.signer.kid),))  # RSA: PS256/384/512 only
    return p.sign(p.header(_alg_value(p, "RS256")), key=key, alg="RS256"), anchor


KIDS = {
    "attacker": "attacker-key-1",
    "path-traversal": "../../../../etc/passwd",
    "sql": "x' OR '1'='1' --",
    "nosql-text": '{"$ne": null}',
    "control-chars": "kid\r\nlevel=ERROR msg=forged\x1b[31m\x00",
    "long": "k" * 10_000,
}


def kid_unknown(c: Ctx) -> Attempt:
    kid = KIDS[c.variant]
    return c.path.sign(c.path.header(kid=kid if c.path.family == "jose" else kid.encode()))


def kid_not_a_string(c: Ctx) -> Attempt:
    value: Any = {"int": 42, "object": {"$ne": None}, "array": [_kid(c.path)], "null": None}[c.variant]
    return c.path.sign(c.path.header(kid=value))


def _attacker(p: Path) -> SigningKey:
    return SigningKey.of(SigningKey.generate(p.signer.algorithm).key, p.signer.algorithm, kid=p.signer.kid)


def key_in_header_jose(c: Ctx) -> Attempt:
    p, attacker = c.path, _attacker(c.path)
    carried: dict[str, dict[str, Any]] = {
        "jwk": {"jwk": public_to_jwk(attacker.key.public_key())},
        "jku": {"jku": f"{c.url}/jwks.json"},
        "x5u": {"x5u": f"{c.url}/cert.pem"},
    }
    return p.sign(p.header(extra=carried[c.variant]), key=attacker.key)


def key_in_header_cose(c: Ctx) -> Attempt:
    p, attacker = c.path, _attacker(c.path)
    pub = attacker.key.public_key()
    assert isinstance(pub, ec.EllipticCurvePublicKey)
    n, size = pub.public_numbers(), (pub.curve.key_size + 7) // 8
    cose_key = {1: 2, -1: 1 if size == 32 else 2, -2: n.x.to_bytes(size, "big"), -3: n.y.to_bytes(size, "big")}
    carried: dict[str, dict[int, Any]] = {"x5u": {35: f"{c.url}/cert.der"}, "kccs": {14: {8: {1: cose_key}}}}
    return p.sign(p.header(extra=carried[c.variant]), key=attacker.key)


def _chain_header(p: Path, chain: list[bytes]) -> dict[Any, Any]:
    if p.family == "jose":
        return p.header(extra={"x5c": [base64.b64encode(d).decode() for d in chain]})
    return p.header(extra={33: chain if len(chain) > 1 else chain[0]})


def _curve(p: Path) -> str:
    pub = p.signer.key.public_key()
    assert isinstance(pub, ec.EllipticCurvePublicKey)
    return pub.curve.name


def x5c_untrusted_root(c: Ctx) -> Attempt:
    p, k = c.path, pki(_curve(c.path))
    token = p.sign(_chain_header(p, [der(k.rogue), der(k.rogue_root)]), key=k.rogue_key)
    return token, TrustAnchor(roots=(k.root,))


def x5c_without_roots(c: Ctx) -> Attempt:
    p, k = c.path, pki(_curve(c.path))
    return p.sign(_chain_header(p, [der(k.rogue), der(k.rogue_root)]), key=k.rogue_key)  # anchor: keys only


def x5c_expired_leaf(c: Ctx) -> Attempt:
    p, k = c.path, pki(_curve(c.path))
    return p.sign(_chain_header(p, [der(k.expired)]), key=k.expired_key), TrustAnchor(roots=(k.root,))


def x5c_too_long(c: Ctx) -> Attempt:
    p, k = c.path, pki(_curve(c.path))
    return p.sign(_chain_header(p, [der(k.leaf)] * 6), key=k.leaf_key), TrustAnchor(roots=(k.root,))


def x5c_not_certificates(c: Ctx) -> Attempt:
    p = c.path
    if p.family == "jose":
        return p.sign(p.header(extra={"x5c": ["not base64!"]}))
    return p.sign(p.header(extra={33: 42}))


def crit_jose(c: Ctx) -> Attempt:
    p = c.path
    more: dict[str, dict[str, Any]] = {"exp": {"crit": ["exp"], "exp": NOW}, "empty": {"crit": []},
                                       "kid": {"crit": ["kid"]}}
    return p.sign(p.header(extra=more[c.variant]))


def crit_cose(c: Ctx) -> Attempt:
    p = c.path
    if c.variant == "protected":
        return p.sign(p.header(extra={2: [4]}))
    return p.sign(p.header(), unprotected={2: [4]})


def dup_json_header(c: Ctx) -> Attempt:
    p = c.path
    rest = json.dumps({"kid": p.signer.kid})[1:]
    spelled = '"\\u0061lg"' if c.variant == "escaped" else '"alg"'
    raw = f'{{"alg": "none", {spelled}: "{p.signer.algorithm}", {rest}'.encode()
    return p.sign(raw)


def dup_json_payload(c: Ctx) -> Attempt:
    p = c.path
    body = p.payload.decode()
    first = next(iter(json.loads(body)))
    assert body.startswith("{")
    return p.sign(payload=f'{{{json.dumps(first)}: {json.dumps(json.loads(body)[first])}, {body[1:]}'.encode())


def _claims_map(payload: bytes) -> tuple[int | None, dict[Any, Any]]:
    """(outer tag or None, the map) of a payload, tags kept raw."""
    item = cbor.loads(payload, max_depth=64)
    if isinstance(item, cbor.CBORTag):
        assert isinstance(item.value, dict)
        return item.tag, item.value
    assert isinstance(item, dict)
    return None, item


def dup_cbor_payload(c: Ctx) -> Attempt:
    tag, m = _claims_map(c.path.payload)
    body = map_with_duplicate(m, wide=c.variant == "non-preferred")
    return c.path.sign(payload=(head(6, tag) if tag is not None else b"") + body)


def dup_cbor_protected(c: Ctx) -> Attempt:
    return c.path.sign(map_with_duplicate(c.path.header(), wide=c.variant == "non-preferred"))


def b64_false(c: Ctx) -> Attempt:
    return c.path.sign(c.path.header(extra={"b64": False}))


def b64_false_crit(c: Ctx) -> Attempt:
    return c.path.sign(c.path.header(extra={"b64": False, "crit": ["b64"]}))


def detached_jose(c: Ctx) -> Attempt:
    h, _, s = c.path.sign().split(b".")
    return h + b".." + s  # RFC 7515 App. F: the payload would be supplied out of band


def detached_cose(c: Ctx) -> Attempt:
    return c.path.sign(payload=None, signed_payload=c.path.payload)


def _other_payload(p: Path) -> bytes:
    if p.family == "jose":
        return json.dumps({**json.loads(p.payload), "x-attacker": 1}).encode()
    tag, m = _claims_map(p.payload)
    m = {**m, -77_777: 1}
    return cbor2.dumps(cbor2.CBORTag(tag, m) if tag is not None else m)


def payload_swap_jose(c: Ctx) -> Attempt:
    h, _, s = c.path.sign().split(b".")
    return h + b"." + b64(_other_payload(c.path)).encode() + b"." + s


def payload_swap_cose(c: Ctx) -> Attempt:
    signature = sign1(c.path.header(), c.path.payload, c.path.signer.key, c.path.signer.algorithm)[3]
    return c.path.sign(payload=_other_payload(c.path), signature=signature)


@cache
def honest_signature(p: Path) -> bytes:
    """The raw ``r || s`` of the path's honest token (ECDSA is randomized: computed once)."""
    if p.family == "jose":
        return b64url_decode(p.sign().split(b".")[2])
    return bytes(sign1(p.header(), p.payload, p.signer.key, p.signer.algorithm)[3])


def _curve_size(p: Path) -> int:
    return 32 if _curve(p) == "secp256r1" else 48


def out_of_range(c: Ctx) -> Attempt:
    p = c.path
    size, n = _curve_size(p), CURVE_ORDER[_curve(p)]
    r, s = (int.from_bytes(half, "big") for half in (honest_signature(p)[:size], honest_signature(p)[size:]))
    forged = {
        "s=0": r.to_bytes(size, "big") + bytes(size),
        "r=0": bytes(size) + s.to_bytes(size, "big"),
        "s=n": r.to_bytes(size, "big") + n.to_bytes(size, "big"),
        "r=n": n.to_bytes(size, "big") + s.to_bytes(size, "big"),  # r = 0 mod n: only a reducing verifier sees 0
        "der": encode_dss_signature(r, s),  # the right numbers in the wrong (X9.62 DER) format
    }[c.variant]
    return p.sign(signature=forged)


def noncanonical_b64(c: Ctx) -> Attempt:
    token = c.path.sign()
    if c.variant == "padding":
        return token + b"=="
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    # A 64-byte ES256 signature is 86 characters: the last one carries 2 bits and 4 the decoder drops.
    last = alphabet[alphabet.index(chr(token[-1])) ^ 1]  # flip a dropped bit: same signature bytes
    return token[:-1] + last.encode()


TIME_KEYS: dict[str, dict[str, Any]] = {"jose": {"exp": "exp", "nbf": "nbf", "iat": "iat"},
                                        "cose": {"exp": 4, "nbf": 5, "iat": 6}}


def _edit_claims(p: Path, **changes: Any) -> bytes:
    keys = TIME_KEYS[p.family]
    if p.family == "jose":
        claims = json.loads(p.payload)
        claims.update({keys[k]: v for k, v in changes.items()})
        return json.dumps(claims).encode()
    claims = cbor.loads(p.payload, max_depth=64)
    claims.update({keys[k]: v for k, v in changes.items()})
    return cbor.dumps(claims)


def time_window(c: Ctx) -> Attempt:
    changes: dict[str, Any] = {
        "exp-past": {"iat": NOW - 7200, "exp": NOW - 3600},
        "nbf-future": {"nbf": NOW + 3600},
        "iat-future": {"iat": NOW + 3600, "exp": NOW + 7200},
        "iat-too-old": {"iat": NOW - 3600, "exp": NOW + 3600},
    }[c.variant]
    return c.path.sign(payload=_edit_claims(c.path, **changes))


def nbf_not_integer(c: Ctx) -> Attempt:
    value: Any = {"float": NOW + 3600.5, "text": "2099-01-01T00:00:00Z", "bool": True,
                  "tagged": cbor.CBORTag(1, NOW + 3600)}[c.variant]
    return c.path.sign(payload=_edit_claims(c.path, nbf=value))


def corim_validity(c: Ctx) -> Attempt:
    p = c.path
    if c.variant == "signature-expired":
        return p.sign(p.header(extra={8: corim_meta(NOW - 7200, NOW - 3600)}))
    if c.variant == "signature-not-yet-valid":
        return p.sign(p.header(extra={8: corim_meta(NOW + 3600, NOW + 7200)}))
    return p.sign(payload=corim_payload(rim_validity=Validity(None, NOW_DT - timedelta(hours=1))))


def oversized(c: Ctx) -> Attempt:
    token = c.path.sign()
    pad = c.path.max_size + 1 - len(token)
    # JOSE: trailing whitespace the verifier strips; COSE: trailing bytes. Either way a size check
    # that ran after parsing or stripping would let the (valid) token through or mis-report it.
    return token + (b" " if c.path.family == "jose" else b"\x00") * pad


def deep_jose(c: Ctx) -> Attempt:
    deep = b"[" * 20_000 + b"]" * 20_000  # far beyond the JSON decoder's recursion, inside every size bound
    if c.variant == "payload":
        return c.path.sign(payload=deep)
    return c.path.sign(b'{"alg": "' + c.path.signer.algorithm.encode() + b'", "x": ' + deep + b"}")


def deep_cose(c: Ctx) -> Attempt:
    p = c.path
    if c.variant == "payload":
        tag, m = _claims_map(p.payload)
        m = {**m, -77_777: nested(200)}
        return p.sign(payload=cbor2.dumps(cbor2.CBORTag(tag, m) if tag is not None else m))
    if c.variant == "protected":
        return p.sign(p.header(extra={-77_777: nested(8)}))
    return p.sign(unprotected={-77_777: nested(200)})


def indefinite(c: Ctx) -> Attempt:
    p = c.path
    if c.variant == "payload-map":
        tag, m = _claims_map(p.payload)
        body = b"\xbf" + b"".join(cbor2.dumps(k) + cbor2.dumps(v) for k, v in m.items()) + b"\xff"
        return p.sign(payload=(head(6, tag) if tag is not None else b"") + body)
    if c.variant == "protected-map":
        h = p.header()
        return p.sign(b"\xbf" + b"".join(cbor2.dumps(k) + cbor2.dumps(v) for k, v in h.items()) + b"\xff")
    msg = sign1(p.header(), p.payload, p.signer.key, p.signer.algorithm)
    if c.variant == "outer-array":
        return p.wrap(head(6, 18) + b"\x9f" + b"".join(cbor2.dumps(x) for x in msg) + b"\xff")
    # "payload-bstr": the payload as an indefinite byte string of two chunks (same bytes)
    half = len(msg[2]) // 2
    chunks = b"\x5f" + cbor2.dumps(msg[2][:half]) + cbor2.dumps(msg[2][half:]) + b"\xff"
    return p.wrap(head(6, 18) + b"\x84" + cbor2.dumps(msg[0]) + cbor2.dumps(msg[1]) + chunks + cbor2.dumps(msg[3]))


def tag_around_claims(c: Ctx) -> Attempt:
    return c.path.sign(payload=head(6, 1234) + c.path.payload)


def tag24_claims(c: Ctx) -> Attempt:
    return c.path.sign(payload=cbor2.dumps(cbor2.CBORTag(24, c.path.payload)))


def tag_as_claim_key(c: Ctx) -> Attempt:
    tag, m = _claims_map(c.path.payload)
    first_key, first_value = next(iter(m.items()))
    m = {**m, cbor.CBORTag(1, first_key): first_value}  # a tagged twin beside the claim it mimics
    return c.path.sign(payload=cbor2.dumps(cbor2.CBORTag(tag, m) if tag is not None else m))


def tag_as_header_label(c: Ctx) -> Attempt:
    p = c.path
    return p.sign(p.header(extra={cbor.CBORTag(0, 1): 0}))  # a tagged twin of "alg" naming no algorithm


def tag_around_alg(c: Ctx) -> Attempt:
    p = c.path
    return p.sign(p.header(cbor.CBORTag(0, by_name(p.signer.algorithm).cose_id)))


def tag_around_part(c: Ctx) -> Attempt:
    p = c.path
    msg = sign1(p.header(), p.payload, p.signer.key, p.signer.algorithm)
    index = {"protected-bstr": 0, "payload-bstr": 2, "signature": 3}[c.variant]
    msg[index] = cbor2.CBORTag(24, msg[index])
    return p.wrap(tagged(msg))


def envelope_tag(c: Ctx) -> Attempt:
    p = c.path
    msg = sign1(p.header(), p.payload, p.signer.key, p.signer.algorithm)
    if c.variant == "embedded-24":
        return p.wrap(cbor2.dumps(cbor2.CBORTag(24, tagged(msg))))
    if c.variant == "cwt-61-twice":
        return p.wrap(cbor2.dumps(cbor2.CBORTag(61, cbor2.CBORTag(61, cbor2.CBORTag(18, msg)))))
    return p.wrap(tagged(msg, {"mac0-17": 17, "sign-98": 98}[c.variant]))


OUT_OF_RANGE = ("s=0", "r=0", "s=n", "r=n", "der")
NOT_A_CLAIMS_MAP = r"claims-set must be a map|not a claims map|tag {tag} is not an unsigned CoRIM"


def _not_own_key(name: str) -> bool:
    return name != "cca-realm"


def _claims(*kinds: Claims) -> Callable[[str], bool]:
    return lambda name: PATH_CLAIMS[name] in kinds


ATTACKS: tuple[Attack, ...] = (
    Attack("alg-none", AlgorithmError, r"algorithm .* is not supported", alg_none_jose, alg_none_cose,
           jose_variants=("none", "None", "NONE", "empty"), cose_variants=("0", "text-none")),
    Attack("alg-not-protected", MalformedError, r"algorithm must (be in|not be repeated in)", cose=alg_unprotected,
           cose_variants=("absent", "unprotected-only", "both")),
    Attack("hmac-with-public-key", AlgorithmError, r"algorithm .* is not supported", hmac_jose, hmac_cose,
           jose_variants=("HS256-pem", "HS256-jwk", "HS384-der", "HS512-pem"),
           cose_variants=("HMAC256", "HMAC384", "HMAC512")),
    Attack("alg-other-curve", AlgorithmError, r"is not allowed for the configured key", other_curve, other_curve),
    Attack("alg-other-curve-configured", AlgorithmError, r"cannot be used with this key", other_curve_configured,
           other_curve_configured, applies=_not_own_key),
    Attack("alg-pss-on-ec-key", AlgorithmError, r"PS256 is not allowed for the configured key", pss_on_ec, pss_on_ec),
    Attack("alg-pkcs1-when-pss-only", AlgorithmError, r"RS256 is not allowed for the configured key",
           pkcs1_when_pss_only, pkcs1_when_pss_only, applies=_not_own_key),
    Attack("kid-unknown", UntrustedKeyError, r"no configured key has kid", kid_unknown, kid_unknown,
           jose_variants=tuple(KIDS), cose_variants=tuple(KIDS), applies=_not_own_key),
    Attack("kid-not-a-string", MalformedError, r"kid must be a (byte )?string", kid_not_a_string, kid_not_a_string,
           jose_variants=("int", "object", "array", "null"), cose_variants=("int", "array", "null")),
    Attack("key-in-header", BadSignatureError, r"signature does not verify", key_in_header_jose, key_in_header_cose,
           jose_variants=("jwk", "jku", "x5u"), cose_variants=("x5u", "kccs")),
    Attack("x5c-untrusted-root", UntrustedKeyError, r"does not validate to a configured root", x5c_untrusted_root,
           x5c_untrusted_root, applies=_not_own_key),
    Attack("x5c-without-configured-roots", BadSignatureError, r"signature does not verify", x5c_without_roots,
           x5c_without_roots),
    Attack("x5c-expired-leaf", UntrustedKeyError, r"does not validate to a configured root: .*not valid at",
           x5c_expired_leaf, x5c_expired_leaf, applies=_not_own_key),
    Attack("x5c-chain-too-long", MalformedError, r"x5c chain longer than", x5c_too_long, x5c_too_long,
           applies=_not_own_key),
    Attack("x5c-not-certificates", MalformedError, r"x5c is not base64|x5chain must be", x5c_not_certificates,
           x5c_not_certificates),
    Attack("crit", VerificationError, r"critical header parameters", crit_jose, crit_cose,
           jose_variants=("exp", "empty", "kid"), cose_variants=("protected", "unprotected")),
    Attack("dup-json-header", MalformedError, r"duplicate key 'alg'", dup_json_header,
           jose_variants=("plain", "escaped")),
    Attack("dup-json-payload", MalformedError, r"duplicate key", dup_json_payload),
    Attack("dup-cbor-payload", MalformedError, r"duplicate map key", cose=dup_cbor_payload,
           cose_variants=("preferred", "non-preferred")),
    Attack("dup-cbor-protected", MalformedError, r"duplicate map key 1", cose=dup_cbor_protected,
           cose_variants=("preferred", "non-preferred")),
    Attack("b64-false", MalformedError, r"b64: false", b64_false),
    Attack("b64-false-crit", VerificationError, r"critical header parameters", b64_false_crit),
    Attack("detached-payload", MalformedError, r"detached payload", detached_jose, detached_cose),
    Attack("payload-swap", BadSignatureError, r"signature does not verify", payload_swap_jose, payload_swap_cose),
    Attack("ecdsa-out-of-range", BadSignatureError, r"signature does not verify", out_of_range, out_of_range,
           jose_variants=OUT_OF_RANGE, cose_variants=OUT_OF_RANGE),
    Attack("jws-noncanonical-base64", MalformedError, r"padding|canonical", noncanonical_b64,
           jose_variants=("stray-bits", "padding")),
    Attack("expired-or-not-yet-valid", StaleError, r"expired at|not valid before", time_window, time_window,
           jose_variants=("exp-past", "nbf-future"), cose_variants=("exp-past", "nbf-future"),
           applies=_claims("ear", "eat")),
    Attack("iat-in-the-future", StaleError, r"issued in the future", time_window, time_window,
           jose_variants=("iat-future",), cose_variants=("iat-future",), applies=_claims("ear")),
    Attack("iat-too-old", StaleError, r"issued 3600s ago", time_window, time_window,
           jose_variants=("iat-too-old",), cose_variants=("iat-too-old",),
           applies=lambda name: name.startswith("backend")),
    Attack("nbf-not-an-integer", MalformedError, r"nbf.* integer", nbf_not_integer, nbf_not_integer,
           jose_variants=("float", "text", "bool"), cose_variants=("float", "text", "bool", "tagged"),
           applies=_claims("ear", "eat")),
    Attack("corim-validity", StaleError, r"expired at|not valid before", cose=corim_validity,
           cose_variants=("signature-expired", "signature-not-yet-valid", "rim-validity-expired"),
           applies=lambda name: name == "corim"),
    Attack("oversized", MalformedError, r"exceeds", oversized, oversized),
    Attack("deep-nesting", MalformedError, r"nesting deeper than|RecursionError", deep_jose, deep_cose,
           jose_variants=("payload", "header"), cose_variants=("payload", "protected", "unprotected")),
    Attack("indefinite-length", MalformedError, r"indefinite-length .* not allowed", cose=indefinite,
           cose_variants=("payload-map", "protected-map", "outer-array", "payload-bstr")),
    Attack("tag-around-claims", MalformedError, NOT_A_CLAIMS_MAP.format(tag=1234), cose=tag_around_claims),
    Attack("tag24-embedded-claims", MalformedError, NOT_A_CLAIMS_MAP.format(tag=24), cose=tag24_claims),
    Attack("tag-as-claim-key", MalformedError, r"claim keys must be integers or text|unexpected key CBORTag",
           cose=tag_as_claim_key),
    Attack("tag-as-header-label", MalformedError, r"header labels must be integers or text",
           cose=tag_as_header_label),
    Attack("tag-around-alg", AlgorithmError, r"COSE algorithm CBORTag", cose=tag_around_alg),
    Attack("tag-around-structure", MalformedError, r"bad (header|payload or signature) type", cose=tag_around_part,
           cose_variants=("protected-bstr", "payload-bstr", "signature")),
    Attack("wrong-envelope-tag", MalformedError, r"is not COSE_Sign1|expected COSE_Sign1", cose=envelope_tag,
           cose_variants=("mac0-17", "sign-98", "embedded-24", "cwt-61-twice")),
)

def _cases() -> Iterator[Any]:
    for attack in ATTACKS:
        for name, family in PATH_FAMILY.items():
            builder = attack.jose if family == "jose" else attack.cose
            if builder is None or not attack.applies(name):
                continue
            for variant in attack.jose_variants if family == "jose" else attack.cose_variants:
                label = f"{attack.id}[{variant}]" if variant else attack.id
                yield pytest.param(attack, variant, name, id=f"{label}@{name}")


@pytest.fixture(scope="module")
def listener() -> Iterator[tuple[str, socket.socket]]:
    """A socket on 127.0.0.1 that header URLs point at: nothing may ever connect to it."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)
    sock.setblocking(False)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}", sock
    finally:
        sock.close()


def assert_never_contacted(sock: socket.socket) -> None:
    try:
        conn, _ = sock.accept()
    except BlockingIOError:
        return
    conn.close()
    raise AssertionError("a URL taken from a token header was fetched")


@pytest.mark.parametrize(("attack", "variant", "path_name"), list(_cases()))
def test_attack(attack: Attack, variant: str, path_name: str, listener: tuple[str, socket.socket],
                monkeypatch: pytest.MonkeyPatch) -> None:
    p = path(path_name)
    p.check(p.sign())  # the unattacked token verifies: the rejection below is the attack's doing
    builder = attack.jose if p.family == "jose" else attack.cose
    assert builder is not None
    attempt = builder(Ctx(p, variant, listener[0]))
    token, anchor = attempt if isinstance(attempt, tuple) else (attempt, None)
    if attack.id == "oversized":  # the size bound comes before any parsing: prove no CBOR is decoded
        def refuse(*args: Any, **kw: Any) -> Any:
            raise AssertionError("an oversized token was parsed")
        monkeypatch.setattr(cbor._Decoder, "decode", refuse)
    with pytest.raises(Error) as info:
        p.check(token, anchor)
    assert type(info.value) is attack.expect, f"{type(info.value).__name__}: {info.value}"
    assert info.value.reason == attack.expect.reason
    assert re.search(attack.match, info.value.detail), info.value.detail
    assert_never_contacted(listener[1])


@pytest.mark.parametrize("path_name", [name for name in PATH_FACTORIES if _not_own_key(name)])
def test_x5c_from_the_configured_root_verifies(path_name: str) -> None:
    """The baseline of the x5c attacks: a chain to the configured root, valid at NOW, is accepted,
    so their rejections are about the root, the validity or the length, not a broken chain."""
    p = path(path_name)
    k = pki(_curve(p))
    p.check(p.sign(_chain_header(p, [der(k.leaf)]), key=k.leaf_key), TrustAnchor(roots=(k.root,)))


# --- the catalogue document lists every attack ------------------------------------------------------

SEPARATE_TESTS = (
    "detached-payload-swap", "ecdsa-high-s", "audience-mismatch", "issuer-mismatch", "nonce-reuse", "kid-in-messages",
)


def test_the_catalogue_document_lists_every_attack() -> None:
    text = CATALOGUE.read_text()
    table = text.split("\n## Catalogue\n", 1)[1].split("\n## ", 1)[0]
    ids = set(re.findall(r"^\| `([a-z0-9-]+)` \|", table, flags=re.MULTILINE))
    expected = {a.id for a in ATTACKS} | set(SEPARATE_TESTS)
    assert ids == expected, (sorted(expected - ids), sorted(ids - expected))
    for name in re.findall(r"`(test_[a-z0-9_]+)`", text):
        assert name in globals(), f"docs/attacks.md names {name}, which is not a test here"
    for file, name in re.findall(r"`tests/(test_[a-z0-9_]+\.py)::(test_[a-z0-9_]+)`", text):
        assert f"def {name}(" in (CATALOGUE.parents[1] / "tests" / file).read_text(), f"{file}::{name}"


# --- signature malleability: an ECDSA signature (r, s) has a twin (r, n - s) -------------------------

def high_s_twin(signature: bytes, curve: str) -> bytes:
    size, n = len(signature) // 2, CURVE_ORDER[curve]
    r, s = int.from_bytes(signature[:size], "big"), int.from_bytes(signature[size:], "big")
    return r.to_bytes(size, "big") + (n - s).to_bytes(size, "big")


def jws_twin(token: bytes) -> bytes:
    """The same ES256 JWS with the other of its two valid signatures (no key needed)."""
    h, body, sig = token.split(b".")
    return h + b"." + body + b"." + b64(high_s_twin(b64url_decode(sig), "secp256r1")).encode()


def honest_and_twin(p: Path) -> tuple[bytes, bytes]:
    """A path's honest token and its twin: one signature, both halves."""
    if p.family == "jose":
        honest = p.sign()
        return honest, jws_twin(honest)
    msg = sign1(p.header(), p.payload, p.signer.key, p.signer.algorithm)
    twin = [*msg[:3], high_s_twin(msg[3], _curve(p))]
    return p.wrap(tagged(msg)), p.wrap(tagged(twin))


def verdict(result: object) -> object:
    """What a verification concluded, without the token's own bytes (which the twin changes)."""
    if isinstance(result, Vote):
        return result.outcome, result.ear, result.key_thumbprint
    if isinstance(result, cca.CcaToken):
        return result.platform, result.realm
    if isinstance(result, VerifiedCorim):
        return result.corim, result.key_thumbprint
    if isinstance(result, VerifiedResult):
        return result.ear, result.provenance
    if isinstance(result, VerifiedEar):
        return result.ear, result.key
    assert isinstance(result, eat.EatToken | PsaClaims)
    return result


@pytest.mark.parametrize("path_name", list(PATH_FACTORIES))
def test_ecdsa_high_s_twin_verifies_with_the_same_claims(path_name: str) -> None:
    """Decision (docs/attacks.md, ``ecdsa-high-s``): both (r, s) and (r, n - s) are accepted.

    Go's crypto/ecdsa (Veraison), OpenSSL and pycose/jwcrypto sign with either half at random and
    neither JWS nor COSE requires low-S, so refusing high-S would refuse about half of all honest
    results. The twin signs the very same header and payload: no claim, status or decision can
    change. What differs is the token's bytes, hence the SHA-256 in provenance; that digest names
    the bytes received (and embedded), it is not a uniqueness key: replays are caught by the nonce.
    """
    p = path(path_name)
    honest, twin = honest_and_twin(p)
    assert twin != honest
    first, second = p.check(honest), p.check(twin)
    assert verdict(first) == verdict(second)
    if isinstance(first, Vote) and isinstance(second, Vote):
        assert first.outcome is Outcome.OK and first.raw == honest and second.raw == twin


async def test_a_high_s_twin_from_a_backend_is_recorded_as_received_and_reverifies() -> None:
    honest = FakeVerifier("acme", key=SigningKey.generate("ES256"))
    raw = await honest.appraise(EVIDENCE, NONCE, 0.0)
    twin = jws_twin(raw.token)
    fed = Federation([Member(TokenBackend(twin, raw.media_type, name="acme", operator="op-acme"),
                             honest.public_anchor)], QuorumPolicy(k=1, n=1), fed_key(), clock=lambda: float(NOW))
    result = await fed.appraise(EVIDENCE, NONCE)
    assert result.status == "affirming" and result.votes[0].raw == twin
    checked = verify_result(result.token, fed_anchor(), nonce=NONCE, now=NOW, reverify=True,
                            anchors={"acme": honest.public_anchor})
    assert checked.provenance is not None
    assert checked.provenance.votes[0].result == twin  # the digest is of the bytes received, kept with them


async def test_swapping_an_embedded_result_for_its_twin_breaks_the_combined_signature() -> None:
    """Without the federation key the provenance (and its digests) cannot be changed at all."""
    honest = FakeVerifier("acme", key=SigningKey.generate("ES256"))
    fed = Federation([honest.member()], QuorumPolicy(k=1, n=1), fed_key(), clock=lambda: float(NOW))
    result = await fed.appraise(EVIDENCE, NONCE)
    raw = result.votes[0].raw
    assert raw is not None
    twin = jws_twin(raw)
    h, body, s = result.token.split(b".")
    edited = b64url_decode(body).replace(raw, twin)
    assert edited != b64url_decode(body)
    with pytest.raises(BadSignatureError) as info:
        verify_result(h + b"." + b64(edited).encode() + b"." + s, fed_anchor(), nonce=NONCE, now=NOW)
    assert info.value.reason == "bad-signature"


# --- detached payloads at the COSE API --------------------------------------------------------------

def test_detached_payload_swap_at_the_cose_api() -> None:
    """No path reads detached payloads (``detached-payload``), but :func:`federation.cose.verify_sign1`
    takes one from its caller: a different payload supplied for a detached signature does not verify,
    and a payload supplied for a message that carries one is refused rather than silently preferred."""
    p = path("ear-cwt")
    detached = tagged(sign1(p.header(), None, p.signer.key, p.signer.algorithm, signed_payload=p.payload))
    msg, key = cose.verify_sign1(detached, p.anchor(), NOW_DT, detached_payload=p.payload)  # the baseline
    assert msg.payload is None and key.kid == p.signer.kid
    with pytest.raises(BadSignatureError) as swapped:
        cose.verify_sign1(detached, p.anchor(), NOW_DT, detached_payload=_other_payload(p))
    assert swapped.value.reason == "bad-signature"
    attached = tagged(sign1(p.header(), p.payload, p.signer.key, p.signer.algorithm))
    with pytest.raises(MalformedError, match="a detached payload was also given") as both:
        cose.verify_sign1(attached, p.anchor(), NOW_DT, detached_payload=_other_payload(p))
    assert both.value.reason == "malformed"


# --- audience and issuer ---------------------------------------------------------------------------

async def _combined(fmt: Literal["jwt", "cwt"] = "jwt", nonce: bytes = NONCE, key: SigningKey | None = None) -> bytes:
    honest = FakeVerifier("acme", key=SigningKey.generate("ES256"), fmt=fmt)
    fed = Federation([honest.member()], QuorumPolicy(k=1, n=1), key or fed_key(), clock=lambda: float(NOW),
                     result_format=fmt)
    return (await fed.appraise(EVIDENCE, nonce)).token


@pytest.mark.parametrize("fmt", ["jwt", "cwt"])
async def test_audience_mismatch_a_result_for_another_relying_party(fmt: Literal["jwt", "cwt"]) -> None:
    """EAR has no ``aud``: a relying party binds a result to itself with the nonce it chose. A result
    obtained by (or for) another party carries that party's nonce and is refused."""
    token = await _combined(fmt, nonce=OTHER_NONCE)
    assert verify_result(token, fed_anchor(), nonce=OTHER_NONCE, now=NOW).status == "affirming"
    with pytest.raises(NonceMismatchError) as info:
        verify_result(token, fed_anchor(), nonce=NONCE, now=NOW)
    assert info.value.reason == "nonce-mismatch"


@pytest.mark.parametrize("fmt", ["jwt", "cwt"])
async def test_issuer_mismatch_another_federation_or_a_single_verifier(fmt: Literal["jwt", "cwt"]) -> None:
    """The issuer is the key: a result of another federation fails under ours, even with our
    ``kid``; a single verifier's EAR (signed by a key the relying party also trusts) is not a
    combined result when a policy is expected."""
    impostor = SigningKey.of(SigningKey.generate("ES256").key, "ES256", kid=fed_key().kid)
    with pytest.raises(BadSignatureError) as bad:
        verify_result(await _combined(fmt, key=impostor), fed_anchor(), nonce=NONCE, now=NOW)
    assert bad.value.reason == "bad-signature"
    stranger = SigningKey.generate("ES256")
    with pytest.raises(UntrustedKeyError) as untrusted:
        verify_result(await _combined(fmt, key=stranger), fed_anchor(), nonce=NONCE, now=NOW)
    assert untrusted.value.reason == "untrusted-key"
    single = FakeVerifier("acme", key=fed_key(), fmt=fmt)  # an operator reusing one key for both roles
    vote = await single.appraise(EVIDENCE, NONCE, 0.0)
    assert verify_result(vote.token, fed_anchor(), nonce=NONCE, now=NOW).provenance is None
    with pytest.raises(PolicyError) as policy:
        verify_result(vote.token, fed_anchor(), nonce=NONCE, now=NOW, expect_policy=QuorumPolicy(k=1, n=1))
    assert policy.value.reason == "policy"


# --- kid in messages --------------------------------------------------------------------------------

def test_kid_in_messages_is_escaped_and_bounded() -> None:
    """An injected kid reaches logs only through the error text: repr-escaped and truncated."""
    p = path("ear-jwt")
    with pytest.raises(UntrustedKeyError) as info:
        p.check(kid_unknown(Ctx(p, "control-chars", "")))  # type: ignore[arg-type]
    text = str(info.value)
    assert not set("\r\n\x1b\x00") & set(text) and "\\r\\n" in text
    with pytest.raises(UntrustedKeyError) as long:
        p.check(kid_unknown(Ctx(p, "long", "")))  # type: ignore[arg-type]
    assert len(str(long.value)) < 200


# --- nonce reuse: the replay cache ------------------------------------------------------------------

def honest_federation(**kw: Any) -> Federation:
    return Federation([FakeVerifier("acme", key=SigningKey.generate("ES256")).member()], QuorumPolicy(k=1, n=1),
                      fed_key(), clock=lambda: float(NOW), **kw)


async def test_nonce_reuse_appraising_twice_with_one_caller_nonce_is_a_replay() -> None:
    fed = honest_federation()
    assert (await fed.appraise(EVIDENCE, NONCE)).status == "affirming"
    with pytest.raises(ReplayError) as info:
        await fed.appraise(EVIDENCE, NONCE)
    assert info.value.reason == "replay" and isinstance(info.value, VerificationError)
    with pytest.raises(ReplayError):
        await fed.challenge(NONCE)  # a session cannot even be opened on a spent nonce
    assert (await fed.appraise(EVIDENCE)).status == "affirming"  # fresh nonces are minted: never replays
    assert (await fed.appraise(EVIDENCE)).status == "affirming"


async def test_nonce_reuse_across_sessions_and_within_one() -> None:
    fed = honest_federation()
    first, second = await fed.challenge(OTHER_NONCE), await fed.challenge(OTHER_NONCE)  # not yet consumed
    assert (await fed.appraise(EVIDENCE, session=first)).status == "affirming"
    with pytest.raises(ReplayError):
        await fed.appraise(EVIDENCE, session=second)
    minted = await fed.challenge()
    assert (await fed.appraise(EVIDENCE, session=minted)).status == "affirming"
    with pytest.raises(ReplayError):
        await fed.appraise(EVIDENCE, session=minted)  # one session, one appraisal


async def test_nonce_reuse_is_refused_before_any_backend_is_asked() -> None:
    backend = FakeVerifier("acme", key=SigningKey.generate("ES256"))
    fed = Federation([backend.member()], QuorumPolicy(k=1, n=1), fed_key(), clock=lambda: float(NOW))
    results = await asyncio.gather(*(fed.appraise(EVIDENCE, NONCE) for _ in range(5)), return_exceptions=True)
    assert sum(not isinstance(r, BaseException) for r in results) == 1  # concurrent offers: exactly one wins
    assert all(isinstance(r, ReplayError) for r in results if isinstance(r, BaseException))
    assert backend.calls == 1


async def test_nonce_reuse_after_the_replay_window_is_allowed() -> None:
    now = [float(NOW)]
    fed = Federation([FakeVerifier("acme", key=SigningKey.generate("ES256")).member(max_age=None)],
                     QuorumPolicy(k=1, n=1), fed_key(), clock=lambda: now[0], replay_ttl=60)
    await fed.appraise(EVIDENCE, NONCE)
    now[0] += 59
    with pytest.raises(ReplayError):
        await fed.appraise(EVIDENCE, NONCE)
    now[0] += 1
    assert (await fed.appraise(EVIDENCE, NONCE)).nonce == NONCE


async def test_the_memory_replay_cache_is_bounded_and_fails_closed() -> None:
    now = [0.0]
    replay = MemoryReplayCache(max_entries=3, clock=lambda: now[0])
    assert isinstance(replay, ReplayCache)
    assert [await replay.seen_or_add(bytes([i]) * 8, 10) for i in range(3)] == [False] * 3
    assert await replay.seen_or_add(bytes([1]) * 8, 10) is True
    with pytest.raises(ReplayCacheFull):  # never forgets a live nonce to make room
        await replay.seen_or_add(b"another!", 10)
    assert await replay.seen(bytes([2]) * 8)
    now[0] = 10.0  # all expired: swept, room again, and none is seen any more
    assert not await replay.seen(bytes([2]) * 8)
    assert await replay.seen_or_add(b"another!", 10) is False and len(replay) == 1
    with pytest.raises(UsageError):
        await replay.seen_or_add(b"nonce-00", 0)
    with pytest.raises(UsageError):
        MemoryReplayCache(max_entries=0)


async def test_the_memory_replay_cache_keeps_the_first_value_per_nonce() -> None:
    now = [0.0]
    replay = MemoryReplayCache(max_entries=2, clock=lambda: now[0])
    assert await replay.add_or_get(b"nonce-01", 10, b"digest-a") is None  # recorded now
    assert await replay.add_or_get(b"nonce-01", 10, b"digest-b") == b"digest-a"  # the first value stays
    assert await replay.add_or_get(b"nonce-01", 10, b"digest-a") == b"digest-a"
    assert await replay.seen_or_add(b"nonce-01", 10) is True
    assert await replay.seen_or_add(b"nonce-02", 10) is False
    assert await replay.add_or_get(b"nonce-02", 10, b"digest-c") == b""  # recorded without a value
    with pytest.raises(ReplayCacheFull):  # remembered ones are still answered when full; new ones not
        await replay.add_or_get(b"nonce-03", 10, b"digest-d")
    now[0] = 9.9  # a retry does not extend the window
    assert await replay.add_or_get(b"nonce-01", 10, b"digest-a") == b"digest-a"
    now[0] = 10.0
    assert await replay.add_or_get(b"nonce-01", 10, b"digest-b") is None  # forgotten: the window is over
    with pytest.raises(UsageError):
        await replay.add_or_get(b"nonce-04", 10, "digest")  # type: ignore[arg-type]


async def test_the_memory_replay_cache_forgets_by_expiry_whatever_the_mix_of_ttls() -> None:
    """Expiry order, not insertion order: a long-lived nonce recorded first does not keep later,
    shorter-lived ones alive, and the bound counts live nonces only."""
    now = [0.0]
    replay = MemoryReplayCache(max_entries=4, clock=lambda: now[0])
    assert not await replay.seen_or_add(b"long-ttl", 100)
    assert not await replay.seen_or_add(b"short-01", 5)
    assert not await replay.seen_or_add(b"short-02", 5)
    now[0] = 5.0
    assert not await replay.seen(b"short-01")  # expired on lookup ...
    assert not await replay.seen_or_add(b"short-03", 5)  # ... and both swept: room for new nonces
    assert not await replay.seen_or_add(b"short-04", 5)
    assert len(replay) == 3 and await replay.seen(b"long-ttl")
    assert not await replay.seen_or_add(b"short-01", 5)  # a forgotten nonce may be recorded again
    assert await replay.seen_or_add(b"short-01", 5)
    with pytest.raises(ReplayCacheFull):
        await replay.seen_or_add(b"short-05", 5)
    now[0] = 10.0  # the second life of short-01 ends on time
    assert not await replay.seen(b"short-01")
    assert not await replay.seen_or_add(b"short-05", 5)
    assert len(replay) == 2 and await replay.seen(b"long-ttl")
    now[0] = 100.0
    assert not await replay.seen_or_add(b"short-06", 5) and len(replay) == 1


async def test_the_memory_replay_cache_does_not_scan_itself_on_every_call() -> None:
    """Regression: each call used to copy the whole cache to look for expired nonces, so recording
    n nonces cost O(n^2) (20,000 took minutes). Now a sweep costs nothing when none is due."""
    replay = MemoryReplayCache(max_entries=50_000)
    start = time.perf_counter()
    for i in range(20_000):
        assert not await replay.seen_or_add(i.to_bytes(8, "big"), 300)
    for i in range(20_000):
        assert await replay.add_or_get(i.to_bytes(8, "big"), 300, b"x") == b""
    assert time.perf_counter() - start < 5.0  # about 0.1 s; the old sweep needed minutes


async def test_a_full_replay_cache_refuses_the_appraisal() -> None:
    fed = honest_federation(replay=MemoryReplayCache(max_entries=1))
    await fed.appraise(EVIDENCE, NONCE)
    with pytest.raises(ReplayCacheFull):
        await fed.appraise(EVIDENCE, OTHER_NONCE)


CR = "/challenge-response/v1"
ACCEPT = {"Accept": SESSION}


async def _session(client: Any, query: str) -> Any:
    return await client.post(f"{CR}/newSession{query}", headers=ACCEPT)


async def test_nonce_reuse_across_federator_sessions_and_appraise_calls() -> None:
    """A federator consumes each nonce: ``newSession?nonce=`` with a spent nonce, Evidence for a
    second session with the same nonce (even the same Evidence) and ``/v1/appraise?nonce=`` twice
    are all refused with 409 (the PSA vector is bound to N32)."""
    backend = local_backend()
    fed = Federation([Member(backend, backend.public_anchor)], QuorumPolicy(k=1, n=1), SigningKey.generate())
    app = create_app(FederatorRole(fed), ServerConfig(role="federator"))
    async with serve(app) as client:
        early, late = await _session(client, f"?nonce={N32_B64}"), await _session(client, f"?nonce={N32_B64}")
        assert early.status == late.status == 201  # opening a session does not consume its nonce
        first = await client.post(f"{CR}/{early.headers['Location']}", data=GOOD,
                                  headers={**ACCEPT, "Content-Type": MT})
        assert first.status == 200 and (await first.json(content_type=None))["status"] == "complete"
        second = await client.post(f"{CR}/{late.headers['Location']}", data=GOOD,
                                   headers={**ACCEPT, "Content-Type": MT})
        assert second.status == 409 and "nonce already used" in (await second.json(content_type=None))["detail"]
        assert (await (await client.get(f"{CR}/{late.headers['Location']}", headers=ACCEPT)).json(
            content_type=None))["status"] == "failed"
        assert (await _session(client, f"?nonce={N32_B64}")).status == 409
        again = await client.post(f"/v1/appraise?nonce={N32.hex()}", data=GOOD, headers={"Content-Type": MT})
        assert again.status == 409
        fresh = await _session(client, "")  # a server-minted nonce is unaffected
        assert fresh.status == 201
    await fed.aclose()


async def _submit(client: Any, query: str, body: bytes, media_type: str = MT) -> tuple[int, dict[str, Any]]:
    """A new session (``newSession`` + *query*) and *body* as its Evidence: (status, answer)."""
    opened = await _session(client, query)
    assert opened.status == 201, await opened.text()
    resp = await client.post(f"{CR}/{opened.headers['Location']}", data=body,
                             headers={**ACCEPT, "Content-Type": media_type})
    doc: dict[str, Any] = await resp.json(content_type=None)
    return resp.status, doc


async def test_a_verifier_takes_one_evidence_per_nonce_and_answers_its_retries() -> None:
    """A verifier remembers each nonce with the SHA-256 of its Evidence (media type and bytes): the
    same Evidence under the same nonce, in a new session or on ``/v1/appraise``, is an idempotent
    retry (a federator whose answer was lost; two federations sharing this verifier) and is answered,
    bound to that nonce; other Evidence under it is refused (409), the same claims re-signed included
    (other bytes), and so is the same token announced as another media type."""
    backend = local_backend()
    async with serve(create_app(VerifierRole(backend), ServerConfig(role="verifier"))) as client:
        anchor = TrustAnchor((backend.key.public,))
        for _ in range(2):  # the first appraisal, then a retry in a new session under the same nonce
            status, doc = await _submit(client, f"?nonce={N32_B64}", GOOD)
            assert (status, doc["status"]) == (200, "complete")
            verified = verify_ear(doc["result"], anchor, now=datetime.now(UTC), nonce=N32)
            assert verified.ear.status.label == "affirming"
        direct = await client.post(f"/v1/appraise?nonce={N32.hex()}", data=GOOD,
                                   headers={"Content-Type": MT.upper()})  # one media type, spelled otherwise
        assert direct.status == 200 and (await direct.json())["status"] == "affirming"

        resigned = psa_good(N32)  # the same claims, bound to N32, signed again: other Evidence
        assert resigned != GOOD
        status, doc = await _submit(client, f"?nonce={N32_B64}", resigned)
        assert status == 409 and "nonce already used" in doc["detail"] and "other evidence" in doc["detail"]
        refused = await client.post(f"/v1/appraise?nonce={N32.hex()}", data=resigned, headers={"Content-Type": MT})
        assert refused.status == 409
        psa_as_eat = 'application/eat-cwt; eat_profile="http://arm.com/psa/2.0.0"'
        as_eat = await client.post(f"/v1/appraise?nonce={N32.hex()}", data=GOOD, headers={"Content-Type": psa_as_eat})
        assert as_eat.status == 409  # the same bytes as another media type: another Evidence

        # The first Evidence stays: a retry of it is still answered after the refusals.
        status, doc = await _submit(client, f"?nonce={N32_B64}", GOOD)
        assert (status, doc["status"]) == (200, "complete")
        # Other nonces are untouched: the re-signed token fails there on freshness, inside the EAR.
        fresh = await client.post(f"/v1/appraise?nonce={OTHER_NONCE.hex()}", data=resigned,
                                  headers={"Content-Type": MT})
        assert fresh.status == 200 and (await fresh.json())["status"] == "contraindicated"


async def test_a_verifier_decides_concurrent_evidence_under_one_nonce_once() -> None:
    """Concurrent appraisals under one nonce at one verifier: every copy of the first Evidence is
    answered, every other Evidence refused; whichever Evidence is recorded first is the one."""
    role = VerifierRole(local_backend())
    other = psa_good(N32)
    for first, second in ((GOOD, other), (other, GOOD)):
        nonce = N32 if first is GOOD else OTHER_NONCE
        bodies = [first, first, second, first, second]
        results = await asyncio.gather(*(role.appraise(Evidence(MT, b), nonce) for b in bodies),
                                       return_exceptions=True)
        for body, r in zip(bodies, results, strict=True):
            if body is first:
                assert not isinstance(r, BaseException), r
                assert r.nonce == nonce
            else:
                assert isinstance(r, ReplayError), r


class LosesItsFirstAnswer:
    """A remote backend whose first answer is lost on the way back, after the verifier appraised:
    the engine retries (a transient failure), with the same Evidence under the same nonce."""

    kind = "veraison"

    def __init__(self, inner: VeraisonBackend) -> None:
        self.inner, self.name, self.operator, self.lost = inner, inner.name, inner.operator, 0

    async def appraise(self, evidence: Evidence, nonce: bytes, deadline: float) -> RawResult:
        raw = await self.inner.appraise(evidence, nonce, deadline)
        if not self.lost:
            self.lost += 1
            raise BackendUnreachableError("connection reset while reading the answer")
        return raw

    async def aclose(self) -> None:
        await self.inner.aclose()


async def test_a_federator_retry_and_two_members_sharing_a_verifier_are_answered() -> None:
    """Regression: a verifier used to consume each nonce, so a federator's retry after a lost answer
    (a new session under the same nonce) and the second of two members pointing at one verifier got
    409 (``http-error``), although both bring the same Evidence for the federation's nonce. Both are
    answered now (one nonce, one Evidence); other Evidence under that nonce still is not."""
    verifier = local_backend("shared-local", "shared")
    server = TestServer(create_app(VerifierRole(verifier), ServerConfig(role="verifier")), host="127.0.0.1")
    await server.start_server()
    anchor = TrustAnchor((verifier.key.public,))
    url = str(server.make_url("/"))
    try:
        retried = LosesItsFirstAnswer(VeraisonBackend("retried", "acme", url, poll_interval=0.02))
        twin_a = VeraisonBackend("twin-a", "globex", url, poll_interval=0.02)
        twin_b = VeraisonBackend("twin-b", "initech", url, poll_interval=0.02)
        fed = Federation([Member(retried, anchor, retries=1), Member(twin_a, anchor), Member(twin_b, anchor)],
                         QuorumPolicy(k=3, n=3), fed_key(), federation_id="shared")
        async with fed:
            result = await fed.appraise(Evidence(MT, GOOD), N32)
            assert [(v.backend, v.outcome) for v in result.votes] == [
                ("retried", Outcome.OK), ("twin-a", Outcome.OK), ("twin-b", Outcome.OK)], result.votes
            assert retried.lost == 1 and result.status == "affirming"
            # Another federation sharing the verifier, with the same Evidence and nonce: answered too.
            other_fed = Federation([Member(VeraisonBackend("elsewhere", "umbrella", url, poll_interval=0.02),
                                           anchor)], QuorumPolicy(k=1, n=1), fed_key(), federation_id="other")
            async with other_fed:
                assert (await other_fed.appraise(Evidence(MT, GOOD), N32)).status == "affirming"
            # Other Evidence under that nonce (a third federation: the others consumed N32 themselves)
            # is refused by the verifier: the vote is an http-error, not ok.
            third = Federation([Member(VeraisonBackend("third", "umbrella", url, poll_interval=0.02), anchor,
                                       retries=0)], QuorumPolicy(k=1, n=1), fed_key(), federation_id="third")
            async with third:
                refused = await third.appraise(Evidence(MT, psa_good(N32)), N32)
            assert refused.votes[0].outcome is Outcome.HTTP_ERROR and "409" in refused.votes[0].detail
            assert refused.status == "none"
    finally:
        await server.close()


async def test_a_full_server_replay_cache_answers_503() -> None:
    role = VerifierRole(local_backend(), replay=MemoryReplayCache(max_entries=1))
    async with serve(create_app(role, ServerConfig(role="verifier"))) as client:
        ok = await client.post(f"/v1/appraise?nonce={N32.hex()}", data=GOOD, headers={"Content-Type": MT})
        assert ok.status == 200
        full = await client.post(f"/v1/appraise?nonce={OTHER_NONCE.hex()}", data=GOOD, headers={"Content-Type": MT})
        assert full.status == 503 and full.headers["Retry-After"]


def test_replay_error_is_public_and_distinct() -> None:
    import federation.errors

    assert "ReplayError" in federation.errors.__all__
    assert ReplayError.reason == "replay" and issubclass(ReplayError, VerificationError)
