"""PSA attestation tokens (``PSA_IOT``), appraised the way Veraison's psa-iot scheme does.

Steps (Veraison ``scheme/psa-iot``, failures as ``vts/trustedservices/trustedservices_grpc.go``
reports them):

1. decode and validate the claims (bad structure -> "could not establish identity from evidence");
2. find the attestation key through CoRIM attest-key triples by implementation id + instance id
   (none -> "no trust anchor for evidence");
3. check the signature with that key, then the nonce against the session nonce
   (-> "integrity validation failed: ..."); an empty session nonce means freshness is not
   checked (the appraiser then says so in ``ear.veraison.policy-claims``);
4. trust vector: hardware 2 once the key verified; lifecycle secured or non-PSA-RoT-debug ->
   instance-identity, runtime-opaque and storage-opaque 2, otherwise 96; every software
   component matching a reference measurement -> executables 2, otherwise 33; configuration,
   file-system and sourced-data 0.
"""

from __future__ import annotations

from collections.abc import Mapping

from federation.ar4si import Tier, TrustVector
from federation.ear.model import Appraisal
from federation.errors import Error, MalformedError, VerificationError
from federation.evidence import Evidence

from ..corim.model import Measurement, Tagged
from ..corim.store import Provenance
from ..endorsements import EXTENSION, endorsement_records
from ..evidence.psa import PROFILE_P1, PROFILE_P2, PROFILE_RFC9783, PsaClaims, SwComponent, decode_psa, verify_psa
from ..scheme import BadEvidence, Context, SchemeDescriptor, normalize_media_type
from .arm_identity import attestation_key, implementation

__all__ = ["SCHEME", "PsaScheme"]

NAME = "PSA_IOT"
POLICY_ID = f"policy:{NAME}"
MKEY = "psa.software-component"
# Lifecycle ranges that Veraison treats as trustworthy (secured, non-PSA-RoT debug).
_TRUSTED_LIFECYCLES = ((0x3000, 0x30FF), (0x4000, 0x40FF))


def _trusted_lifecycle(value: int) -> bool:
    return any(lo <= value <= hi for lo, hi in _TRUSTED_LIFECYCLES)


def _component_matches(comp: SwComponent, ref: Measurement) -> bool:
    mkey = ref.mkey
    if mkey is not None and not (isinstance(mkey, Tagged) and mkey.value == MKEY):
        return False
    mv = ref.mval
    # PSA tokens carry no hash algorithm id: a reference digest of any algorithm must equal the bytes.
    if not mv.digests or not any(d.value == comp.measurement_value for d in mv.digests):
        return False
    if mv.name is not None and mv.name != comp.measurement_type:
        return False
    # Veraison compares label and version when the reference has them, not the signer id.
    return mv.version is None or mv.version.version == comp.version


class PsaScheme:
    descriptor = SchemeDescriptor(
        NAME,
        frozenset(normalize_media_type(m) for m in (
            "application/psa-attestation-token",
            f'application/eat+cwt; eat_profile="{PROFILE_P2}"',
            f'application/eat+cwt; eat_profile="{PROFILE_RFC9783}"',
            f'application/eat-cwt; eat_profile="{PROFILE_P2}"',
        )),
        frozenset({"tag:arm.com,2025:psa#1.0.0", "http://arm.com/psa/iot/1"}),
    )

    def appraise(self, evidence: Evidence, ctx: Context) -> Mapping[str, Appraisal]:
        try:
            _, claims = decode_psa(evidence.data)
        except (MalformedError, VerificationError) as exc:  # incl. an algorithm we do not support
            raise BadEvidence(f"could not establish identity from evidence: {exc.detail}") from exc
        key, key_prov = attestation_key(ctx, claims.implementation_id, claims.instance_id)
        try:
            verify_psa(evidence.data, key, ctx.now)
        except Error as exc:
            raise BadEvidence(f"integrity validation failed: bad evidence: {exc.detail}") from exc
        if ctx.nonce and claims.nonce != ctx.nonce:  # empty: freshness not checked
            raise BadEvidence("integrity validation failed: bad evidence: nonce does not match the session")
        used: list[tuple[Provenance, str]] = [(key_prov, "attest-key")]
        executables = 2 if self._software_ok(claims, ctx, used) else 33
        protected = 2 if _trusted_lifecycle(claims.security_lifecycle) else 96
        vector = TrustVector.of({
            "instance-identity": protected, "configuration": 0, "executables": executables,
            "file-system": 0, "hardware": 2, "runtime-opaque": protected, "storage-opaque": protected,
            "sourced-data": 0,
        })
        extensions = {
            "ear_veraison_annotated_evidence": claims.to_json(),
            EXTENSION: endorsement_records(used),
        }
        return {NAME: Appraisal.make(Tier.AFFIRMING, vector, (POLICY_ID,), extensions)}

    @staticmethod
    def _software_ok(claims: PsaClaims, ctx: Context, used: list[tuple[Provenance, str]]) -> bool:
        if claims.profile == PROFILE_P1 and claims.no_software_measurements:
            return False
        refs = ctx.store.reference_values(
            implementation(claims.implementation_id), ctx.now, by_identity=True)
        all_matched = True
        for comp in claims.software_components:
            hit = next((r for r in refs for m in r.triple.measurements if _component_matches(comp, m)), None)
            if hit is None:
                all_matched = False  # keep going: provenance names every reference that did match
            else:
                used.append((hit.provenance, "reference-values"))
        return all_matched and bool(claims.software_components)


SCHEME = PsaScheme()
