"""Arm CCA attestation tokens (``ARM_CCA``), appraised the way Veraison's arm-cca scheme does.

One token, two submodules, as Veraison names them: ``CCA_SSD_PLATFORM`` (the platform token)
and ``CCA_REALM`` (the realm token). A failure that makes the whole token untrustworthy is one
``ARM_CCA`` submodule, all claims 99, as Veraison reports it (its failure path runs before the
scheme splits the result).

Steps (Veraison at 6b88102: ``scheme/arm-cca/scheme.go``, failures as
``vts/trustedservices/trustedservices_grpc.go`` reports them):

1. decode both tokens and validate their claims, either envelope (tag 399 EAT collection or
   tag 907 CMW collection) -> "could not establish identity from evidence";
2. find the platform attestation key (IAK) through CCA-platform attest-key triples by
   implementation id + instance id -> "no trust anchor for evidence";
3. freshness: the realm challenge must equal the session nonce zero-padded to 64 bytes
   (the RMM pads a shorter challenge; an empty session nonce means freshness is not checked,
   and the appraiser says so in ``ear.veraison.policy-claims``), then the platform signature
   under the IAK, the realm signature under the RAK it carries and the platform-to-realm
   binding (platform challenge = hash of the RAK claim) -> "integrity validation failed: bad
   evidence: ...";
4. platform, as PSA: hardware 2; lifecycle secured or non-CCA-platform-debug -> instance-identity,
   runtime-opaque and storage-opaque 2, otherwise 96; every software component matching a
   ``cca.software-component`` reference -> executables 2, otherwise 33; plus configuration:
   ``cca-platform-config`` equal to a ``cca.platform-config`` reference raw value -> 2,
   otherwise 32;
5. realm: instance-identity 2; realm reference values are found by class-id = the realm's RIM
   (``tag:arm.com,2025:cca_realm#1.0.0``); executables 33 with none; per reference triple in
   order: a RIM that differs sets every claim to -1 (Veraison: the store handed back a triple
   for another RIM, a verifier malfunction) and stops; an RPV that differs gives 96 and moves
   on to the next triple; otherwise 3 (RIM and RPV approved), 2 when every REM the reference
   names also matches, and stops.

Status is Veraison's: the tier of the worst claim (``none`` when every claim is in the none
tier). Reference values and keys are taken only from CoRIMs of the two CCA profiles.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from federation.ar4si import TrustVector
from federation.ear.model import Appraisal
from federation.errors import Error, MalformedError, VerificationError
from federation.evidence import Evidence
from federation.keys import TrustAnchor, VerificationKey

from ..corim.model import ClassMap, Environment, Measurement, ReferenceTriple, Tagged
from ..corim.profiles import CCA_PLATFORM, CCA_REALM
from ..corim.store import Provenance, Stored
from ..endorsements import EXTENSION, endorsement_records
from ..evidence._claims import to_json
from ..evidence.cca import (
    MEDIA_TYPE,
    PLATFORM_CLAIMS,
    REALM_CLAIMS,
    CcaPlatformClaims,
    CcaRealmClaims,
    CcaToken,
    SwComponent,
    decode_cca,
    verify_cca,
)
from ..scheme import BadEvidence, Context, SchemeDescriptor, normalize_media_type
from .arm_identity import TAG_BYTES, attestation_key, implementation

__all__ = ["PLATFORM", "REALM", "SCHEME", "CcaScheme"]

NAME = "ARM_CCA"
PLATFORM = "CCA_SSD_PLATFORM"
REALM = "CCA_REALM"
POLICY_ID = f"policy:{NAME}"
SW_MKEY, CONFIG_MKEY = "cca.software-component", "cca.platform-config"
RIM_MKEY, RPV_MKEY = "cca.rim", "cca.rpv"
REM_MKEYS = tuple(f"cca.rem{i}" for i in range(4))
REALM_CHALLENGE_SIZE = 64
_TAG_BYTES = TAG_BYTES
# Lifecycle ranges Veraison treats as trustworthy (secured, non-CCA-platform debug).
_TRUSTED_LIFECYCLES = ((0x3000, 0x30FF), (0x4000, 0x40FF))
_MALFUNCTION = -1
_Used = list[tuple[Provenance, str]]


def _vector(**claims: int) -> TrustVector:
    """A full eight-claim vector (Veraison writes every claim, 0 included)."""
    base = dict.fromkeys(("instance-identity", "configuration", "executables", "file-system", "hardware",
                          "runtime-opaque", "storage-opaque", "sourced-data"), 0)
    base.update({k.replace("_", "-"): v for k, v in claims.items()})
    return TrustVector.of(base)


def _appraisal(vector: TrustVector, annotated: Mapping[str, object], used: _Used) -> Appraisal:
    # Veraison's UpdateStatusFromTrustVector: the worst claim's tier, none when all are none.
    return Appraisal.make(vector.worst_tier(), vector, (POLICY_ID,), {
        "ear_veraison_annotated_evidence": dict(annotated),
        EXTENSION: endorsement_records(used),
    })


def _mkey(m: Measurement) -> str | None:
    k = m.mkey
    return k.value if k is not None and k.type == "string" and isinstance(k.value, str) else None


def _component_matches(comp: SwComponent, ref: Measurement) -> bool:
    """As PSA: a reference digest equal to the measurement (any algorithm), then the reference's
    label and version when it has them; the signer id is not compared (Veraison)."""
    if _mkey(ref) != SW_MKEY:
        return False
    mv = ref.mval
    if not mv.digests or not any(d.value == comp.measurement_value for d in mv.digests):
        return False
    if mv.name is not None and mv.name != comp.measurement_type:
        return False
    return mv.version is None or mv.version.version == comp.version


def _trusted_lifecycle(value: int) -> bool:
    return any(lo <= value <= hi for lo, hi in _TRUSTED_LIFECYCLES)


@dataclass(frozen=True, slots=True)
class _RealmReference:
    """One realm reference-value triple, read as Veraison reads it."""

    rim: bytes
    rpv: bytes | None
    rems: tuple[bytes | None, ...]
    source: Stored[ReferenceTriple]

    @classmethod
    def read(cls, hit: Stored[ReferenceTriple]) -> _RealmReference | None:
        rim: bytes | None = None
        rpv: bytes | None = None
        rems: list[bytes | None] = [None] * len(REM_MKEYS)
        for m in hit.triple.measurements:
            key = _mkey(m)
            digest = m.mval.digests[0].value if m.mval.digests else None  # the profile allows exactly one
            if key == RIM_MKEY:
                rim = digest
            elif key in REM_MKEYS:
                rems[REM_MKEYS.index(key)] = digest
            elif key == RPV_MKEY and m.mval.raw is not None:
                rpv = m.mval.raw.value
        return None if rim is None else cls(rim, rpv, tuple(rems), hit)

    def rems_match(self, evidence: Sequence[bytes]) -> bool:
        """Every REM the reference names equals the token's (Veraison's ``allMatch``)."""
        return len(self.rems) == len(evidence) and all(
            not ref or ref == ev for ref, ev in zip(self.rems, evidence, strict=True))


class CcaScheme:
    descriptor = SchemeDescriptor(
        NAME,
        # Veraison's one CCA media type; both envelopes travel under it (ccatoken, and our sniffer,
        # tell them apart by CBOR tag). No separate media type is registered for the tag-907 form.
        frozenset({normalize_media_type(MEDIA_TYPE)}),
        frozenset({CCA_PLATFORM.id, CCA_REALM.id}),
    )

    def appraise(self, evidence: Evidence, ctx: Context) -> Mapping[str, Appraisal]:
        try:
            token = decode_cca(evidence.data)
        except (MalformedError, VerificationError) as exc:  # e.g. an algorithm we do not accept
            raise BadEvidence(f"could not establish identity from evidence: {exc.detail}") from exc
        key, key_prov = attestation_key(ctx, token.platform.implementation_id, token.platform.instance_id,
                                        profiles=(CCA_PLATFORM.id,))
        self._check_integrity(evidence.data, token, key, ctx)
        return {
            PLATFORM: self._platform(token.platform, ctx, key_prov),
            REALM: self._realm(token.realm, ctx, key_prov),
        }

    # -- trust anchor and integrity --------------------------------------------------------------

    @staticmethod
    def _check_integrity(data: bytes, token: CcaToken, key: VerificationKey | TrustAnchor, ctx: Context) -> None:
        # Freshness first, as Veraison does: the RMM zero-pads a shorter challenge to 64 bytes.
        # A session nonce longer than 64 bytes can never be carried, so it never matches.
        # An empty session nonce: freshness is not checked (the appraiser says so).
        padded = ctx.nonce.ljust(REALM_CHALLENGE_SIZE, b"\x00")
        if ctx.nonce and (len(ctx.nonce) > REALM_CHALLENGE_SIZE or token.realm.challenge != padded):
            raise BadEvidence(
                "integrity validation failed: bad evidence: freshness: realm challenge "
                f"({token.realm.challenge.hex()}) does not match session nonce ({ctx.nonce.hex()})")
        try:
            verify_cca(data, key, ctx.now)
        except Error as exc:
            raise BadEvidence(f"integrity validation failed: bad evidence: {exc.detail}") from exc

    # -- the platform submodule ------------------------------------------------------------------

    def _platform(self, claims: CcaPlatformClaims, ctx: Context, key_prov: Provenance) -> Appraisal:
        used: _Used = [(key_prov, "attest-key")]
        refs = ctx.store.reference_values(
            implementation(claims.implementation_id), ctx.now,
            by_identity=True, profiles=(CCA_PLATFORM.id,))
        config_ok = self._config_ok(claims, refs, used)
        software_ok = self._software_ok(claims, refs, used)
        protected = 2 if _trusted_lifecycle(claims.security_lifecycle) else 96
        vector = _vector(instance_identity=protected, configuration=2 if config_ok else 32,
                         executables=2 if software_ok else 33, hardware=2, runtime_opaque=protected,
                         storage_opaque=protected)
        return _appraisal(vector, to_json(claims, PLATFORM_CLAIMS), used)

    @staticmethod
    def _config_ok(claims: CcaPlatformClaims, refs: Sequence[Stored[ReferenceTriple]], used: _Used) -> bool:
        """The platform config equals a ``cca.platform-config`` raw value, byte for byte (Veraison
        compares the raw value and ignores the mask the profile requires)."""
        for hit in refs:
            for m in hit.triple.measurements:
                if _mkey(m) == CONFIG_MKEY and m.mval.raw is not None and m.mval.raw.value == claims.config:
                    used.append((hit.provenance, "reference-values"))
                    return True
        return False

    @staticmethod
    def _software_ok(claims: CcaPlatformClaims, refs: Sequence[Stored[ReferenceTriple]], used: _Used) -> bool:
        found: _Used = []
        for comp in claims.software_components:
            hit = next((r for r in refs for m in r.triple.measurements if _component_matches(comp, m)), None)
            if hit is None:
                return False
            found.append((hit.provenance, "reference-values"))
        used.extend(found)
        return bool(claims.software_components)

    # -- the realm submodule ---------------------------------------------------------------------

    @staticmethod
    def _realm(claims: CcaRealmClaims, ctx: Context, key_prov: Provenance) -> Appraisal:
        # The realm is trusted through the platform: its key is the one the IAK vouched for.
        used: _Used = [(key_prov, "attest-key")]
        hits = ctx.store.reference_values(
            Environment(ClassMap(Tagged("bytes", claims.initial_measurement, _TAG_BYTES))), ctx.now,
            by_identity=True, profiles=(CCA_REALM.id,))
        executables, malfunction = 33, False
        decisive: _RealmReference | None = None  # the triple the verdict rests on
        for ref in filter(None, map(_RealmReference.read, hits)):
            decisive = ref
            if ref.rim != claims.initial_measurement:
                malfunction = True  # Veraison: SetAll(verifier malfunction), then stop
                break
            if ref.rpv is not None and ref.rpv != claims.personalization_value:
                executables = 96  # a known RIM personalised as another realm; look further
                continue
            executables = 2 if ref.rems_match(claims.extensible_measurements) else 3
            break
        if decisive is not None:
            used.append((decisive.source.provenance, "reference-values"))
        if malfunction:
            vector = TrustVector.uniform(_MALFUNCTION)
        else:
            vector = _vector(instance_identity=2, executables=executables)
        return _appraisal(vector, to_json(claims, REALM_CLAIMS), used)


SCHEME = CcaScheme()
