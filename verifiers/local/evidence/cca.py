"""Arm CCA attestation tokens (RMM spec, as Veraison's ccatoken reads them): bytes in, claims out.

Theory of operation. A CCA token bundles two COSE_Sign1 tokens:

* the *platform* token (PSA-like claims plus ``cca-platform-config`` and a hash-algorithm id),
  signed by the platform's Initial Attestation Key (IAK), which the caller supplies;
* the *realm* token (challenge, personalization value, RIM, four REMs, the Realm Attestation
  Key (RAK) and hash-algorithm ids), signed by the RAK *it carries itself*.

The RAK is trustworthy only because the platform vouches for it: the platform challenge must
equal ``H(cca-realm-public-key)``, the hash named by ``cca-realm-public-key-hash-algo-id``,
computed over the claim's bytes as carried. :func:`verify_cca` checks the platform signature,
the realm signature under the RAK, then this binding; failing any of them is an integrity
failure (:class:`~federation.errors.BadSignatureError`).

Two envelopes are in use (both decoded here, told apart by their CBOR tag):

* ``399({44234: platform-bstr, 44241: realm-bstr})``, the EAT collection of RMM 1.0;
* ``907({44234: [263, platform-bstr], 44241: [263, realm-bstr]})``, RMM 1.1's collection of CMW
  records (263 is the CoAP Content-Format of ``application/eat+cwt``), decoded with :mod:`.cmw`.

The RAK is a COSE_Key when the realm token names its profile and, in tokens without a realm
profile (RMM 1.0, e.g. TF-RMM's), a raw uncompressed P-384 point.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from federation import cbor, cose
from federation.errors import BadSignatureError, Error, MalformedError
from federation.keys import SigningKey, TrustAnchor, VerificationKey

from . import _sign1, cmw
from ._claims import (
    Claim,
    Shape,
    SwComponent,
    blob,
    bytes_list,
    fail,
    hash_alg_id,
    impl_id,
    lifecycle,
    lifecycle_state,
    nonempty_text,
    psa_hash,
    read,
    single_nonce,
    sw_components,
    text,
    ueid_rand,
    write,
)

__all__ = [
    "MEDIA_TYPE",
    "PLATFORM_CLAIMS",
    "PLATFORM_PROFILE",
    "PLATFORM_PROFILE_LEGACY",
    "REALM_CLAIMS",
    "REALM_PROFILE",
    "CcaPlatformClaims",
    "CcaRealmClaims",
    "CcaToken",
    "Encoding",
    "SwComponent",
    "binder",
    "decode_cca",
    "encode_cca",
    "rak_claim",
    "sniff",
    "verify_cca",
]

MEDIA_TYPE = 'application/eat-collection; profile="http://arm.com/CCA-SSD/1.0.0"'
PLATFORM_PROFILE_LEGACY = "http://arm.com/CCA-SSD/1.0.0"
PLATFORM_PROFILE = "tag:arm.com,2023:cca_platform#1.0.0"
REALM_PROFILE = "tag:arm.com,2023:realm#1.0.0"
TAG_EAT_COLLECTION = 399
TAG_CMW_COLLECTION = 907
PLATFORM_LABEL = 44234
REALM_LABEL = 44241
EAT_CWT_CONTENT_FORMAT = 263
MAX_TOKEN = 1 << 16  # bytes; real tokens are ~1-2 KiB
Encoding = Literal["eat-collection", "cmw-collection"]

# Hashes a RAK may be bound with (the binder must fit the platform challenge: 32/48/64 bytes).
_BINDER_HASHES: Mapping[str, str] = {"sha-256": "sha256", "sha-384": "sha384", "sha-512": "sha512"}
# COSE_Key EC2 curves (RFC 9053 §7.1) -> (curve, coordinate size)
_COSE_CURVES: Mapping[int, tuple[ec.EllipticCurve, int]] = {
    1: (ec.SECP256R1(), 32), 2: (ec.SECP384R1(), 48), 3: (ec.SECP521R1(), 66),
}
_KTY, _KTY_EC2, _CRV, _X, _Y = 1, 2, -1, -2, -3
_LABEL_NAMES = {PLATFORM_LABEL: "platform", REALM_LABEL: "realm"}


def _one_of(*allowed: str) -> Callable[[Any, str], str]:
    """A reader accepting only the given profile names."""

    def check(value: Any, claim: str) -> str:
        if text(value, claim) not in allowed:
            fail(claim, f"{value!r:.60} is not {' or '.join(allowed)}")
        return str(value)
    return check


def _realm_challenge(value: Any, claim: str) -> bytes:
    return single_nonce(value, claim, (64,))


def _rpv(value: Any, claim: str) -> bytes:
    return blob(value, claim, (64,))


def _rems(value: Any, claim: str) -> tuple[bytes, ...]:
    return bytes_list(value, claim, 4, (32, 48, 64))


def _rak_hash(value: Any, claim: str) -> str:
    name = nonempty_text(value, claim)
    if name not in _BINDER_HASHES:
        fail(claim, f"{name!r:.40} cannot bind the realm key (use {', '.join(_BINDER_HASHES)})")
    return name


PLATFORM_CLAIMS: tuple[Claim, ...] = (
    Claim(265, "cca-platform-profile", "profile", Shape.SCALAR,
          _one_of(PLATFORM_PROFILE_LEGACY, PLATFORM_PROFILE), required=True),
    Claim(10, "cca-platform-challenge", "challenge", Shape.NONCE, single_nonce, required=True),
    Claim(2396, "cca-platform-implementation-id", "implementation_id", Shape.BYTES, impl_id, required=True),
    Claim(256, "cca-platform-instance-id", "instance_id", Shape.BYTES, ueid_rand, required=True),
    Claim(2401, "cca-platform-config", "config", Shape.BYTES, blob, required=True),
    Claim(2395, "cca-platform-lifecycle", "security_lifecycle", Shape.SCALAR, lifecycle, required=True),
    Claim(2399, "cca-platform-sw-components", "software_components", Shape.SW_COMPONENTS, sw_components,
          required=True),
    Claim(2400, "cca-platform-service-indicator", "verification_service", Shape.SCALAR, nonempty_text),
    Claim(2402, "cca-platform-hash-algo-id", "hash_algorithm", Shape.SCALAR, hash_alg_id, required=True),
)

REALM_CLAIMS: tuple[Claim, ...] = (
    Claim(265, "cca-realm-profile", "profile", Shape.SCALAR, _one_of(REALM_PROFILE)),
    Claim(10, "cca-realm-challenge", "challenge", Shape.NONCE, _realm_challenge, required=True),
    Claim(44235, "cca-realm-personalization-value", "personalization_value", Shape.BYTES, _rpv,
          required=True),
    Claim(44238, "cca-realm-initial-measurement", "initial_measurement", Shape.BYTES, psa_hash, required=True),
    Claim(44239, "cca-realm-extensible-measurements", "extensible_measurements", Shape.BYTES_LIST, _rems,
          required=True),
    Claim(44236, "cca-realm-hash-algo-id", "hash_algorithm", Shape.SCALAR, nonempty_text, required=True),
    Claim(44237, "cca-realm-public-key", "public_key", Shape.BYTES, blob, required=True),
    Claim(44240, "cca-realm-public-key-hash-algo-id", "public_key_hash_algorithm", Shape.SCALAR, _rak_hash,
          required=True),
)


@dataclass(frozen=True, slots=True)
class CcaPlatformClaims:
    """The validated claims of a CCA platform token; valid once built."""

    profile: str
    challenge: bytes
    implementation_id: bytes
    instance_id: bytes
    config: bytes
    security_lifecycle: int
    software_components: tuple[SwComponent, ...]
    hash_algorithm: str
    verification_service: str | None = None

    def __post_init__(self) -> None:
        read(self.to_cbor_claims(), PLATFORM_CLAIMS, "cca platform")

    @property
    def lifecycle_state(self) -> str:
        return lifecycle_state(self.security_lifecycle) or "invalid"

    def to_cbor_claims(self) -> dict[int, Any]:
        return write(self, PLATFORM_CLAIMS)


@dataclass(frozen=True, slots=True)
class CcaRealmClaims:
    """The validated claims of a CCA realm token; valid once built (including a usable RAK)."""

    challenge: bytes
    personalization_value: bytes
    initial_measurement: bytes
    extensible_measurements: tuple[bytes, ...]
    hash_algorithm: str
    public_key: bytes  # the claim's bytes: a COSE_Key, or a raw P-384 point without a profile
    public_key_hash_algorithm: str
    profile: str | None = None

    def __post_init__(self) -> None:
        read(self.to_cbor_claims(), REALM_CLAIMS, "cca realm")
        self.rak  # noqa: B018 - parse the key now: a realm claims object always has a usable RAK

    @property
    def rak(self) -> VerificationKey:
        """The Realm Attestation Key the realm token must be signed with."""
        return VerificationKey.of(_parse_rak(self.public_key, cose_key=self.profile is not None))

    def to_cbor_claims(self) -> dict[int, Any]:
        return write(self, REALM_CLAIMS)


@dataclass(frozen=True, slots=True)
class CcaToken:
    """A decoded CCA token: both claim sets, the envelope used and the two signed tokens."""

    platform: CcaPlatformClaims
    realm: CcaRealmClaims
    encoding: Encoding
    platform_token: bytes
    realm_token: bytes


# -- the realm attestation key and the binding -------------------------------------------------


def _parse_rak(data: bytes, *, cose_key: bool) -> ec.EllipticCurvePublicKey:
    claim = "cca realm: cca-realm-public-key"
    try:
        if not cose_key:
            if len(data) != 97 or data[0] != 0x04:
                fail(claim, f"a raw RAK must be a 97-byte uncompressed P-384 point, got {len(data)} bytes")
            return ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP384R1(), data)
        try:
            key = cbor.loads(data, max_size=1024, max_depth=2)
        except MalformedError:
            key = None
        if not isinstance(key, dict) or key.get(_KTY) != _KTY_EC2:
            fail(claim, "must be a COSE_Key of type EC2")
        crv, x, y = key.get(_CRV), key.get(_X), key.get(_Y)
        if not (isinstance(crv, int) and crv in _COSE_CURVES):
            fail(claim, f"COSE_Key curve {crv!r:.20} is not supported (P-256, P-384, P-521)")
        curve, size = _COSE_CURVES[crv]
        if not (isinstance(x, bytes) and isinstance(y, bytes) and len(x) == len(y) == size):
            fail(claim, f"COSE_Key x and y must be {size}-byte coordinates")
        return ec.EllipticCurvePublicNumbers(int.from_bytes(x, "big"), int.from_bytes(y, "big"), curve
                                             ).public_key()
    except ValueError as exc:  # not on the curve
        raise MalformedError(f"{claim}: not a valid EC public key") from exc


def rak_claim(key: ec.EllipticCurvePublicKey, *, cose_key: bool = True) -> bytes:
    """The ``cca-realm-public-key`` claim for *key*: a COSE_Key, or a raw point (RMM 1.0)."""
    if not cose_key:
        return key.public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    crv = next(c for c, (curve, _) in _COSE_CURVES.items() if curve.name == key.curve.name)
    size = _COSE_CURVES[crv][1]
    n = key.public_numbers()
    return cbor.dumps({_KTY: _KTY_EC2, _CRV: crv, _X: n.x.to_bytes(size, "big"), _Y: n.y.to_bytes(size, "big")})


def binder(realm: CcaRealmClaims) -> bytes:
    """What the platform challenge must be: the RAK claim hashed as the realm token says."""
    return hashlib.new(_BINDER_HASHES[realm.public_key_hash_algorithm], realm.public_key).digest()


# -- envelopes ---------------------------------------------------------------------------------


def _split(token: bytes) -> tuple[Encoding, bytes, bytes]:
    """The envelope kind and the two signed tokens inside it."""
    item = cbor.loads(token, max_size=MAX_TOKEN, max_depth=4)
    if not isinstance(item, cbor.CBORTag) or item.tag not in (TAG_EAT_COLLECTION, TAG_CMW_COLLECTION):
        raise MalformedError(f"cca: not a CCA token (want tag {TAG_EAT_COLLECTION} or {TAG_CMW_COLLECTION})")
    if not isinstance(item.value, dict):
        raise MalformedError("cca: the collection must be a map")
    for label in (PLATFORM_LABEL, REALM_LABEL):
        if label not in item.value:
            raise MalformedError(f"cca: the {_LABEL_NAMES[label]} token ({label}) is missing")
    if item.tag == TAG_EAT_COLLECTION:
        platform, realm = item.value[PLATFORM_LABEL], item.value[REALM_LABEL]
        if not isinstance(platform, bytes) or not isinstance(realm, bytes):
            raise MalformedError("cca: collection entries must be byte strings")
        return "eat-collection", platform, realm
    entries = {label: item.value[label] for label in (PLATFORM_LABEL, REALM_LABEL)}
    collection = cmw.from_cbor_item(entries, max_depth=1, where="cca")
    if not isinstance(collection, cmw.Collection):  # pragma: no cover - a map decodes as a collection
        raise MalformedError("cca: the collection must be a CMW collection")
    tokens = [_eat_record(collection[label], label) for label in (PLATFORM_LABEL, REALM_LABEL)]
    return "cmw-collection", tokens[0], tokens[1]


def _eat_record(entry: cmw.Cmw, label: int) -> bytes:
    if not isinstance(entry, cmw.Record) or entry.media_type != "application/eat+cwt":
        raise MalformedError(f"cca: the {_LABEL_NAMES[label]} entry must be an application/eat+cwt record"
                             f" (Content-Format {EAT_CWT_CONTENT_FORMAT})")
    return entry.value


def decode_cca(token: bytes) -> CcaToken:
    """Parse a CCA token of either envelope and validate both claim sets; no signature checks."""
    encoding, platform_raw, realm_raw = _split(token)
    p_msg = _sign1.decode_tagged(platform_raw, "cca platform", MAX_TOKEN)
    r_msg = _sign1.decode_tagged(realm_raw, "cca realm", MAX_TOKEN)
    platform = CcaPlatformClaims(**read(_sign1.claims_map(p_msg, "cca platform", MAX_TOKEN), PLATFORM_CLAIMS,
                                        "cca platform"))
    realm = CcaRealmClaims(**read(_sign1.claims_map(r_msg, "cca realm", MAX_TOKEN), REALM_CLAIMS, "cca realm"))
    return CcaToken(platform, realm, encoding, platform_raw, realm_raw)


def verify_cca(token: bytes, platform_key: VerificationKey | TrustAnchor, now: datetime) -> CcaToken:
    """Decode, then check: the platform signature under *platform_key* (the IAK), the realm
    signature under the RAK it carries, and the platform-to-realm binding. Raises
    :class:`~federation.errors.MalformedError` or a :class:`~federation.errors.VerificationError`.
    """
    cca = decode_cca(token)
    _sign1.verify(cca.platform_token, platform_key, now, "cca platform", MAX_TOKEN)
    _sign1.verify(cca.realm_token, cca.realm.rak, now, "cca realm", MAX_TOKEN)
    if cca.platform.challenge != binder(cca.realm):
        raise BadSignatureError("cca: platform challenge is not the hash of the realm public key"
                                " (the platform does not vouch for this realm token)")
    return cca


def encode_cca(platform: CcaPlatformClaims, realm: CcaRealmClaims, platform_key: SigningKey,
               realm_key: SigningKey, *, encoding: Encoding = "cmw-collection") -> bytes:
    """Sign both claim sets and wrap them in the chosen envelope (claims are signed as given:
    the caller sets ``platform.challenge = binder(realm)`` for a bound token)."""
    p = cose.sign1(cbor.dumps(platform.to_cbor_claims()), platform_key)
    r = cose.sign1(cbor.dumps(realm.to_cbor_claims()), realm_key)
    if encoding == "eat-collection":
        return cbor.dumps(cbor.CBORTag(TAG_EAT_COLLECTION, {PLATFORM_LABEL: p, REALM_LABEL: r}))
    body = cmw.Collection(((PLATFORM_LABEL, cmw.Record(EAT_CWT_CONTENT_FORMAT, p)),
                           (REALM_LABEL, cmw.Record(EAT_CWT_CONTENT_FORMAT, r))))
    return cbor.dumps(cbor.CBORTag(TAG_CMW_COLLECTION, cmw.to_cbor_item(body)))


_HEADS = (b"\xd9\x01\x8f", b"\xd9\x03\x8b")  # tag(399), tag(907)


def sniff(data: bytes) -> str | None:
    """The CCA media type for a tag-399 or tag-907 collection holding both tokens."""
    if data[:3] not in _HEADS:
        return None
    try:
        _split(data)
    except Error:  # any failure means "not mine"
        return None
    return MEDIA_TYPE
