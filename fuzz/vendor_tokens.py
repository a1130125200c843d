"""verifiers.vendor.verify_token (ita, maa, google, trustee): real-shaped tokens, mutated and re-signed.

Keys are made once at import, deterministically (a crash input replays in another process): RSA
for ita/maa/google, P-256 for trustee, and a P-256 root that certifies the RSA key for Google's PKI
tokens (``x5c``). Byte 0 picks the kind whose skeleton is used and the source of the token:

* ``ops``: the kind's skeleton (header and claims shaped like the service's, as
  tests/test_vendor_tokens.py builds them) changed by up to eight :func:`fuzz.vendor_claims.edit`
  (set a member of the header or the claims, at the top or further down, to a value decoded with
  :class:`fuzz.vendor_claims.Choices`, delete it, or copy another member onto it), then re-signed;
* ``text``: the rest of the input is the header JSON, a newline, and the claims JSON, signed as
  they are (the byte mutator edits JSON text; invalid JSON reaches the parsers with a valid
  signature);
* ``raw``: the rest of the input is the token.

The token (re-signed with the key its ``alg`` names, else the kind's) is then verified as its kind
with the session's :class:`~federation.binding.Binding`, with the nonce only, and with neither, and
as every other kind with the binding (ita, maa and google tokens share the RSA key, so an RS256
token gets through to each mapping), under the relying party's expectations picked by the input; a
token that verifies is encoded as the federation encodes votes. Only
:class:`federation.errors.Error` may escape.
"""

from __future__ import annotations

import base64
import json
import math
import random
from datetime import UTC, datetime, timedelta
from functools import cache, lru_cache
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from federation.algorithms import by_name, raw_sign
from federation.errors import AlgorithmError, Error
from federation.keys import TrustAnchor, VerificationKey, public_to_jwk
from fuzz._harness import attempt, read_vectors
from fuzz.vendor_claims import (
    BINDINGS,
    CONFUSERS,
    KINDS,
    MAX_EDITS,
    NONCE,
    NOW_S,
    SEED_EDITS,
    SET,
    SKELETONS,
    Choices,
    edit,
    encode_edit,
    encode_path_edit,
    encoded,
    expectation,
    member_paths,
)
from verifiers import vendor

RSA_KID = "fuzz-rsa"
EC_KID = "fuzz-ec"
SOURCES = ("ops", "text", "raw")


# -- keys (deterministic) -------------------------------------------------------------------------

_PRIMORIAL = math.prod(p for p in range(3, 2000, 2) if all(p % q for q in range(3, int(p**0.5) + 1, 2)))


def _probable_prime(n: int, rng: random.Random) -> bool:
    if math.gcd(n, _PRIMORIAL) != 1:
        return False
    d, s = n - 1, 0
    while d % 2 == 0:
        d, s = d // 2, s + 1
    for _ in range(16):
        x = pow(rng.randrange(2, n - 1), d, n)
        if x in (1, n - 1):
            continue
        for _ in range(s - 1):
            x = x * x % n
            if x == n - 1:
                break
        else:
            return False
    return True


def _rsa_key(seed: int, bits: int = 2048) -> rsa.RSAPrivateKey:
    """An RSA key from *seed* (a test key: primes from a seeded PRNG, Miller-Rabin)."""
    rng = random.Random(seed)
    e = 65537
    primes: list[int] = []
    while len(primes) < 2:
        c = rng.getrandbits(bits // 2) | 3 << (bits // 2 - 2) | 1
        if c % e != 1 and c not in primes and _probable_prime(c, rng):
            primes.append(c)
    p, q = primes
    d = pow(e, -1, (p - 1) * (q - 1))
    return rsa.RSAPrivateNumbers(p, q, d, rsa.rsa_crt_dmp1(d, p), rsa.rsa_crt_dmq1(d, q), rsa.rsa_crt_iqmp(p, q),
                                 rsa.RSAPublicNumbers(e, p * q)).private_key()


RSA_KEY = _rsa_key(0x5EED_F022_7E2D)
EC_KEY = ec.derive_private_key(0x5EED_F022_7E2D_0000_0000_0000_0000_0002, ec.SECP256R1())
ROOT_KEY = ec.derive_private_key(0x5EED_F022_7E2D_0000_0000_0000_0000_0003, ec.SECP256R1())


def _cert(subject: str, key: Any, issuer: str, issuer_key: Any, ca: bool, serial: int) -> x509.Certificate:
    start = datetime.fromtimestamp(NOW_S, UTC) - timedelta(days=30)
    return (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
            .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer)]))
            .public_key(key.public_key()).serial_number(serial)
            .not_valid_before(start).not_valid_after(start + timedelta(days=400))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=not ca, content_commitment=False, key_encipherment=False,
                                         data_encipherment=False, key_agreement=False, key_cert_sign=ca,
                                         crl_sign=ca, encipher_only=False, decipher_only=False), critical=True)
            .sign(issuer_key, hashes.SHA256()))


ROOT = _cert("fuzz confidential space root", ROOT_KEY, "fuzz confidential space root", ROOT_KEY, True, 1)
LEAF = _cert("fuzz confidential space signer", RSA_KEY, "fuzz confidential space root", ROOT_KEY, False, 2)


def _der_b64(cert: x509.Certificate) -> str:
    return base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode()


_RSA_ANCHOR = TrustAnchor((VerificationKey.of(RSA_KEY.public_key(), kid=RSA_KID),))
ANCHORS: dict[str, TrustAnchor] = {
    "ita": _RSA_ANCHOR,
    "maa": _RSA_ANCHOR,
    "google": TrustAnchor(_RSA_ANCHOR.keys, (ROOT,)),  # OIDC tokens by kid, PKI tokens by x5c to ROOT
    "trustee": TrustAnchor((VerificationKey.of(EC_KEY.public_key(), kid=EC_KID),)),
}

HEADERS: dict[str, list[dict[str, Any]]] = {
    "ita": [{"alg": "PS384", "jku": "https://portal.trustauthority.intel.com/certs", "kid": RSA_KID, "typ": "JWT"},
            {"alg": "RS256", "kid": RSA_KID, "typ": "JWT"}],
    "maa": [{"alg": "RS256", "jku": "https://fuzz.weu.attest.azure.net/certs", "kid": RSA_KID, "typ": "JWT"}],
    "google": [{"alg": "RS256", "kid": RSA_KID, "typ": "JWT"},
               {"alg": "RS256", "typ": "JWT", "x5c": [_der_b64(LEAF), _der_b64(ROOT)]}],
    "trustee": [{"alg": "ES256", "typ": "JWT", "jwk": public_to_jwk(EC_KEY.public_key())},
                {"alg": "ES256", "kid": EC_KID, "typ": "JWT"}],
}
DEFAULT_ALG = {"ita": "PS384", "maa": "RS256", "google": "RS256", "trustee": "ES256"}


# -- tokens ---------------------------------------------------------------------------------------


def _b64(data: bytes) -> bytes:
    return base64.urlsafe_b64encode(data).rstrip(b"=")


@lru_cache(maxsize=4096)
def _signature(alg: str, signing_input: bytes) -> bytes:
    """With the key *alg* fits (RSA or P-256); a signature nothing verifies when none does."""
    try:
        algorithm = by_name(alg)
    except Error:
        return b"\0" * 64
    for key in (RSA_KEY, EC_KEY):
        try:
            return raw_sign(algorithm, key, signing_input)
        except AlgorithmError:
            continue
    return b"\0" * 64


def sign(header: bytes, claims: bytes, alg: str) -> bytes:
    """A compact JWS of the exact *header* and *claims* bytes."""
    signing_input = _b64(header) + b"." + _b64(claims)
    return signing_input + b"." + _b64(_signature(alg, signing_input))


def _alg_of(header: bytes, kind: str) -> str:
    try:
        alg = json.loads(header).get("alg")
    except (ValueError, RecursionError, AttributeError):
        return DEFAULT_ALG[kind]
    return alg if isinstance(alg, str) else DEFAULT_ALG[kind]


def skeleton(kind: str, variant: int) -> tuple[dict[str, Any], dict[str, Any]]:
    headers, claims = HEADERS[kind], SKELETONS[kind]
    return headers[variant % len(headers)], claims[variant // len(headers) % len(claims)]


@cache
def _skeleton_json(kind: str, variant: int) -> tuple[str, str]:
    header, claims = skeleton(kind, variant)
    return json.dumps(header), json.dumps(claims)


def token_of(data: bytes) -> tuple[str, int, bytes]:
    """(kind, selector of the expectations, token) for an input."""
    c = Choices(data)
    kind = c.pick(KINDS)
    source = SOURCES[c.byte() % len(SOURCES)]
    variant = c.byte()
    selector = c.byte()
    if source == "raw":
        return kind, selector, c.rest()
    header_text, claims_text = _skeleton_json(kind, variant)
    if source == "ops":
        header, claims = json.loads(header_text), json.loads(claims_text)
        for _ in range(c.byte() % (MAX_EDITS + 1)):
            edit(c, claims, header)
        header_bytes, claims_bytes = json.dumps(header).encode(), json.dumps(claims).encode()
    else:
        rest = c.rest()
        if b"\n" in rest:
            header_bytes, claims_bytes = rest.split(b"\n", 1)
        else:
            header_bytes, claims_bytes = header_text.encode(), rest
    return kind, selector, sign(header_bytes, claims_bytes, _alg_of(header_bytes, kind))


# -- seeds ----------------------------------------------------------------------------------------


def seeds() -> list[bytes]:
    out: list[bytes] = []
    ops, text, raw = (SOURCES.index(s) for s in ("ops", "text", "raw"))
    for k, kind in enumerate(KINDS):
        headers = len(HEADERS[kind])
        for variant in range(headers * len(SKELETONS[kind])):
            header, claims = skeleton(kind, variant)
            out += [bytes([k, ops, variant, selector, 0]) for selector in (0, 1)]
            for alg in ("RS256", "PS384", "ES256", "none"):
                out.append(bytes([k, ops, variant, 0, 1]) + encode_edit(SET, "alg", alg, second=True))
            header_json, claims_json = json.dumps(header).encode(), json.dumps(claims).encode()
            out.append(bytes([k, text, variant, 1]) + header_json + b"\n" + claims_json)
            out.append(bytes([k, raw, variant, 0]) + sign(header_json, claims_json, _alg_of(header_json, kind)))
            if variant % headers == 0:  # each claim and its members once of another type (deleting is a bit away)
                for n, path in enumerate(member_paths(claims)[:SEED_EDITS // 2]):
                    out.append(bytes([k, ops, variant, n % 2, 1]) + encode_path_edit(path, CONFUSERS[n % len(
                        CONFUSERS)]))
    for k, kind in enumerate(KINDS):  # the real tokens (their keys are not the anchors: up to the signature)
        out += [bytes([k, raw, 0, 0]) + token.strip() for token in read_vectors(f"vendor-results/{kind}/*.jwt")]
    return out


# -- the target -----------------------------------------------------------------------------------


def _verify(kind: str, token: bytes | str, setup: int, selector: int) -> None:
    binding = BINDINGS[kind] if setup == 0 else None
    nonce = NONCE if setup == 1 else None
    view = vendor.verify_token(kind, token, ANCHORS[kind], now=NOW_S, expect=expectation(kind, selector),
                               binding=binding, nonce=nonce, max_age=3600 if setup < 2 else None)
    encoded(view)
    if view.binding is not None:
        view.verified_ear()


def TestOneInput(data: bytes) -> None:
    kind, selector, token = token_of(data)
    attempt(*(lambda setup=setup: _verify(kind, token, setup, selector) for setup in range(3)),
            *(lambda k=k: _verify(k, token, 0, selector) for k in KINDS if k != kind),
            lambda: _verify(kind, token.decode("latin-1"), 0, selector))
