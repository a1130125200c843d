"""PSA attestation tokens (RFC 9783 and its predecessor): bytes in, validated claims out.

Theory of operation. A PSA token is a tagged COSE_Sign1 whose payload is a claims map. Which
claims it carries, under which keys and with which rules, depends on the profile:

* ``PSA_IOT_PROFILE_1`` (P1, draft-tschofenig-rats-psa-token-07 and earlier) uses private keys
  -75000..-75010 and names itself in -75000 (optional: a map without any profile is P1);
* ``http://arm.com/psa/2.0.0`` (P2) and ``tag:psacertified.org,2023:psa#tfm`` (RFC 9783) use
  EAT keys (10 nonce, 256 ueid, 265 eat_profile) and 2394..2400.

Each profile is a table of :class:`~._claims.Claim` rows (below) whose rules are Veraison's
``psatoken`` rules: exactly one nonce of 32, 48 or 64 bytes; a 32-byte implementation id; a
33-byte RAND UEID (0x01...) as instance id; a lifecycle inside a defined range; at least one
software component, each with a measurement value and signer id of hash size; boot seed 32
bytes (P1) or 8..32 (P2); certification reference EAN-13(+5). A violation raises
:class:`~federation.errors.MalformedError` whose text names the claim.

Parsing is pure: :func:`decode_psa` checks structure and claims, :func:`verify_psa` also the
signature under a key the *caller* supplies (found, for instance, through CoRIM attest-key
triples by implementation and instance id). Neither reads a clock or a file.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from federation import cbor, cose
from federation.ear.token import decode_json
from federation.errors import Error
from federation.keys import SigningKey, TrustAnchor, VerificationKey

from . import _sign1
from ._claims import (
    Claim,
    Shape,
    SwComponent,
    blob,
    fail,
    impl_id,
    int32,
    json_to_wire,
    lifecycle,
    lifecycle_state,
    nonempty_text,
    psa_hash,
    read,
    single_nonce,
    sw_components,
    text,
    to_json,
    ueid_rand,
    uint,
    write,
)

__all__ = [
    "MEDIA_TYPE",
    "P1_CLAIMS",
    "P2_CLAIMS",
    "PROFILE_P1",
    "PROFILE_P2",
    "PROFILE_RFC9783",
    "PsaClaims",
    "SwComponent",
    "decode_psa",
    "encode_psa",
    "json_to_cbor_claims",
    "sniff",
    "verify_psa",
]

MEDIA_TYPE = "application/psa-attestation-token"
PROFILE_P1 = "PSA_IOT_PROFILE_1"
PROFILE_P2 = "http://arm.com/psa/2.0.0"
PROFILE_RFC9783 = "tag:psacertified.org,2023:psa#tfm"
MAX_TOKEN = 1 << 16  # bytes; real tokens are ~0.5 KiB
_WHERE = "psa"
_EAT_PROFILE = 265
_P1_PROFILE = -75000


def _boot_seed_p1(value: Any, claim: str) -> bytes:
    return blob(value, claim, (32,))


def _boot_seed_p2(value: Any, claim: str) -> bytes:
    return blob(value, claim, range(8, 33))


_EAN13 = re.compile(r"[0-9]{13}")
_EAN13_5 = re.compile(r"[0-9]{13}-[0-9]{5}")


def _cert_ref_p1(value: Any, claim: str) -> str:
    ref = text(value, claim)
    if not (_EAN13.fullmatch(ref) or _EAN13_5.fullmatch(ref)):
        fail(claim, f"{ref!r:.30} is not in EAN-13 or EAN-13+5 format")
    return ref


def _cert_ref_p2(value: Any, claim: str) -> str:
    ref = text(value, claim)
    if not _EAN13_5.fullmatch(ref):
        fail(claim, f"{ref!r:.30} is not in EAN-13+5 format")
    return ref


def _flag(value: Any, claim: str) -> bool:
    """psa-no-software-measurements: its presence (any uint) is the assertion."""
    uint(value, claim)
    return True


def _emit_flag(value: bool) -> int | None:
    return 1 if value else None


P2_CLAIMS: tuple[Claim, ...] = (
    Claim(265, "eat-profile", "profile", Shape.SCALAR, text, required=True),
    Claim(2394, "psa-client-id", "client_id", Shape.SCALAR, int32, required=True),
    Claim(2395, "psa-security-lifecycle", "security_lifecycle", Shape.SCALAR, lifecycle, required=True),
    Claim(2396, "psa-implementation-id", "implementation_id", Shape.BYTES, impl_id, required=True),
    Claim(2397, "psa-boot-seed", "boot_seed", Shape.BYTES, _boot_seed_p2),
    Claim(2398, "psa-certification-reference", "certification_reference", Shape.SCALAR, _cert_ref_p2),
    Claim(2399, "psa-software-components", "software_components", Shape.SW_COMPONENTS, sw_components,
          required=True),
    Claim(10, "psa-nonce", "nonce", Shape.NONCE, single_nonce, required=True),
    Claim(256, "psa-instance-id", "instance_id", Shape.BYTES, ueid_rand, required=True),
    Claim(2400, "psa-verification-service-indicator", "verification_service", Shape.SCALAR, nonempty_text),
)

P1_CLAIMS: tuple[Claim, ...] = (
    Claim(-75000, "psa-profile", "profile", Shape.SCALAR, text),
    Claim(-75001, "psa-client-id", "client_id", Shape.SCALAR, int32, required=True),
    Claim(-75002, "psa-security-lifecycle", "security_lifecycle", Shape.SCALAR, lifecycle, required=True),
    Claim(-75003, "psa-implementation-id", "implementation_id", Shape.BYTES, impl_id, required=True),
    Claim(-75004, "psa-boot-seed", "boot_seed", Shape.BYTES, _boot_seed_p1, required=True),
    Claim(-75005, "psa-hwver", "certification_reference", Shape.SCALAR, _cert_ref_p1),
    Claim(-75006, "psa-software-components", "software_components", Shape.SW_COMPONENTS, sw_components),
    Claim(-75007, "psa-no-software-measurements", "no_software_measurements", Shape.SCALAR, _flag,
          emit=_emit_flag),
    Claim(-75008, "psa-nonce", "nonce", Shape.BYTES, psa_hash, required=True),
    Claim(-75009, "psa-instance-id", "instance_id", Shape.BYTES, ueid_rand, required=True),
    Claim(-75010, "psa-verification-service-indicator", "verification_service", Shape.SCALAR, nonempty_text),
)

# profile name -> (claims table, the key and JSON member that carry the profile)
_PROFILES: Mapping[str, tuple[tuple[Claim, ...], int, str]] = {
    PROFILE_P1: (P1_CLAIMS, _P1_PROFILE, "psa-profile"),
    PROFILE_P2: (P2_CLAIMS, _EAT_PROFILE, "eat-profile"),
    PROFILE_RFC9783: (P2_CLAIMS, _EAT_PROFILE, "eat-profile"),
}


@dataclass(frozen=True, slots=True)
class PsaClaims:
    """The validated claims of a PSA token; an instance is valid once built.

    ``nonce`` is the single challenge the token carries; ``instance_id`` the UEID bytes (0x01
    followed by 32 bytes). ``software_components`` is empty only for a P1 token asserting
    ``no_software_measurements``.
    """

    profile: str
    client_id: int
    security_lifecycle: int
    implementation_id: bytes
    instance_id: bytes
    nonce: bytes
    software_components: tuple[SwComponent, ...] = ()
    boot_seed: bytes | None = None
    certification_reference: str | None = None
    verification_service: str | None = None
    no_software_measurements: bool = False

    def __post_init__(self) -> None:
        _check(self.to_cbor_claims())  # one rule set: a claims object must read back as itself

    @property
    def table(self) -> tuple[Claim, ...]:
        return _table(self.profile)

    @property
    def lifecycle_state(self) -> str:
        """The lifecycle state name ("secured", "non-psa-rot-debug", ...)."""
        return lifecycle_state(self.security_lifecycle) or "invalid"

    def to_cbor_claims(self) -> dict[int, Any]:
        """The claims map as it is signed (integer keys)."""
        return write(self, self.table)

    def to_json(self) -> dict[str, Any]:
        """The claims in Veraison's evcli JSON naming (bytes as standard base64)."""
        return to_json(self, self.table)

    @classmethod
    def from_json(cls, data: bytes | str | Mapping[str, Any]) -> PsaClaims:
        """Claims from evcli-style JSON (``psa/claims/*.json``), validated like a token's."""
        return _from_map(json_to_cbor_claims(data))


def _table(profile: str) -> tuple[Claim, ...]:
    if profile not in _PROFILES:
        fail(f"{_WHERE}: profile", f"{profile!r:.60} is not a PSA profile")
    return _PROFILES[profile][0]


def _profile_of(claims: Mapping[Any, Any]) -> str:
    """The profile a claims map declares (no profile claim at all means P1, as in psatoken)."""
    if _EAT_PROFILE in claims:
        name = claims[_EAT_PROFILE]
        if not isinstance(name, str) or name not in _PROFILES or name == PROFILE_P1:
            fail(f"{_WHERE}: eat-profile", f"{name!r:.60} is not a PSA profile")
        return name
    if not any(isinstance(k, int) and -75010 <= k <= _P1_PROFILE for k in claims):
        fail(_WHERE, "missing mandatory claim(s): eat-profile")  # and no P1 claim either
    p1 = claims.get(_P1_PROFILE, PROFILE_P1)
    if p1 != PROFILE_P1:
        fail(f"{_WHERE}: psa-profile", f"{p1!r:.60} is not {PROFILE_P1}")
    return PROFILE_P1


def _check(claims: Mapping[Any, Any]) -> dict[str, Any]:
    """Validate a claims map against its profile's table; return the constructor arguments."""
    profile = _profile_of(claims)
    args = read(claims, _table(profile), _WHERE)
    args["profile"] = profile
    if profile == PROFILE_P1 and ("software_components" in args) == ("no_software_measurements" in args):
        fail(f"{_WHERE}: psa-software-components",
             "exactly one of psa-software-components and psa-no-software-measurements must be present")
    return args


def _from_map(claims: Mapping[Any, Any]) -> PsaClaims:
    return PsaClaims(**_check(claims))


def json_to_cbor_claims(data: bytes | str | Mapping[str, Any]) -> dict[int, Any]:
    """Translate evcli-style JSON claims to the CBOR claims map, *without* validating them.

    This is what evcli does before signing; tests use it to build tokens from Veraison's claims
    files, including the deliberately invalid ones (``multinonce``, ``missingclaims``).
    """
    doc = decode_json(data) if isinstance(data, bytes | str) else data
    if not isinstance(doc, Mapping):
        fail(_WHERE, "JSON claims must be an object")
    for profile, (table, _, member) in _PROFILES.items():
        if doc.get(member) == profile:
            return json_to_wire(doc, table, _WHERE)
    if "eat-profile" in doc or ("psa-profile" in doc and doc["psa-profile"] != PROFILE_P1):
        fail(f"{_WHERE}: profile", "not a PSA profile")
    return json_to_wire(doc, P1_CLAIMS, _WHERE)


def decode_psa(token: bytes) -> tuple[cose.Sign1, PsaClaims]:
    """Parse a PSA token and validate its claims; the signature is NOT checked."""
    msg = _sign1.decode_tagged(token, _WHERE, MAX_TOKEN)
    return msg, _from_map(_sign1.claims_map(msg, _WHERE, MAX_TOKEN))


def verify_psa(token: bytes, key: VerificationKey | TrustAnchor, now: datetime) -> PsaClaims:
    """Parse, validate and check the signature under *key* (the device's attestation key).

    Raises :class:`~federation.errors.MalformedError` for bad structure or claims (checked first,
    as Veraison does) and a :class:`~federation.errors.VerificationError` for the signature.
    *now* only matters when *key* is a trust anchor with X.509 roots.
    """
    _, claims = decode_psa(token)
    _sign1.verify(token, key, now, _WHERE, MAX_TOKEN)
    return claims


def encode_psa(claims: PsaClaims, signing_key: SigningKey) -> bytes:
    """Sign *claims* as a PSA token (tagged COSE_Sign1, alg in the protected header)."""
    return cose.sign1(cbor.dumps(claims.to_cbor_claims()), signing_key)


def sniff(data: bytes) -> str | None:
    """``application/psa-attestation-token`` for a COSE_Sign1 whose claims name a PSA profile.

    An RFC 9783 (``psa#tfm``) token is announced with the media type RFC 9783 registers.
    """
    if data[:1] != b"\xd2":
        return None
    try:
        claims = _sign1.claims_map(_sign1.decode_tagged(data, _WHERE, MAX_TOKEN), _WHERE, MAX_TOKEN)
        profile = _profile_of(claims)
    except Error:  # any failure means "not mine"
        return None
    if profile == PROFILE_RFC9783:
        return f'application/eat+cwt; eat_profile="{PROFILE_RFC9783}"'
    return MEDIA_TYPE
