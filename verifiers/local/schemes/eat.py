"""Generic EAT evidence (``EAT``) in this project's EAT profile, appraised like the Veraison schemes.

The profile (``tag:github.com,2026:rats-federation/eat-evidence#1.0.0``, claims in
:mod:`..evidence.eat`, measurements as measured components) is ours, so the CoRIM mapping is
ours too (docs/schemes.md states it in full):

* the Attester's environment: instance = ``550(ueid)``; class vendor = ``oemid`` (an IANA PEN as
  decimal text, a byte id as lower-case hex); class model = ``hwmodel`` as lower-case hex;
* CoRIMs: base CoRIMs only (no CoRIM profile: none is defined for this EAT profile, and a PSA or
  CCA triple means what its own profile says);
* the attester key: attest-key triples found by that instance whose class agrees with the
  token's (every class attribute both name is equal; the triple may name more: the endorser's
  description of the instance);
* reference values: reference triples whose environment is contained in the Attester's
  environment (the draft's rule), the Attester's class completed with the attributes the
  endorsing attest-key triple adds (as Veraison takes a platform's class from its trust anchor);
* a measured component is matched by a reference measurement that names it (``mkey`` text equal
  to the component name, or no ``mkey`` and ``name`` equal to it), carries digests or a raw
  value, and is contained in the component (the CoRIM draft's comparison: digests with
  ``match_digests``, raw value with mask, authorities as ``560(bytes)`` cryptokeys, version text
  and, when the reference gives one, its scheme).

Steps and failures, in order (the problem texts are Veraison's):

1. decode, validate the claims; no ``ueid`` -> "could not establish identity from evidence";
2. attester key -> "no trust anchor for evidence";
3. signature (and ``exp``/``nbf`` at ``now``), then the session nonce among ``eat_nonce``
   -> "integrity validation failed: bad evidence: ..." (an empty session nonce: freshness is not
   checked, and the appraiser says so in ``ear.veraison.policy-claims``);
4. trust vector: hardware and instance-identity 2; executables 2 when every measured component
   matches a reference, 33 when any does not or the token has no measurements; the other
   claims 0 (this profile carries nothing about them).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from federation.ar4si import TrustVector
from federation.ear.model import Appraisal
from federation.errors import Error, MalformedError, VerificationError
from federation.evidence import Evidence
from federation.keys import VerificationKey

from ..corim.cryptokeys import public_key
from ..corim.match import match_values
from ..corim.model import (
    ClassMap,
    Digest,
    Environment,
    KeyTriple,
    Measurement,
    MeasurementValues,
    RawValue,
    ReferenceTriple,
    Tagged,
)
from ..corim.store import Provenance, Stored
from ..endorsements import EXTENSION, endorsement_records
from ..evidence.eat import CWT_MEDIA_TYPE, JWT_MEDIA_TYPE, PROFILE, EatClaims, decode_eat, verify_eat
from ..evidence.measured_component import MeasuredComponent
from ..scheme import BadEvidence, Context, SchemeDescriptor, normalize_media_type

__all__ = ["SCHEME", "EatScheme", "attester_environment"]

NAME = "EAT"
POLICY_ID = f"policy:{NAME}"
_TAG_UEID, _TAG_BYTES = 550, 560
_CLASS_ATTRS = ("class_id", "vendor", "model", "layer", "index")  # ClassMap's fields, in order
_Used = list[tuple[Provenance, str]]


def attester_environment(claims: EatClaims) -> Environment:
    """The CoRIM environment an EAT describes (``ueid`` required: see the module docstring)."""
    if claims.ueid is None:
        raise BadEvidence("could not establish identity from evidence: eat: no ueid claim"
                          " (the attester key is found by ueid)")
    vendor = None
    if claims.oemid is not None:
        vendor = str(claims.oemid) if isinstance(claims.oemid, int) else claims.oemid.hex()
    model = claims.hwmodel.hex() if claims.hwmodel is not None else None
    cls = ClassMap(vendor=vendor, model=model) if vendor is not None or model is not None else None
    return Environment(cls, instance=Tagged("ueid", claims.ueid, _TAG_UEID))


def _agrees(endorsed: Environment, env: Environment) -> bool:
    """Every class attribute both environments name is equal (the triple may name more)."""
    a, b = endorsed.class_, env.class_
    if a is None or b is None:
        return True
    return all(getattr(a, n) is None or getattr(b, n) is None or getattr(a, n) == getattr(b, n)
               for n in _CLASS_ATTRS)


def _completed(env: Environment, endorsed: Environment) -> Environment:
    """*env* with the class attributes it lacks taken from the attest-key triple's environment."""
    if endorsed.class_ is None:
        return env
    mine, theirs = env.class_ or ClassMap(), endorsed.class_
    merged = ClassMap(*(getattr(mine, n) if getattr(mine, n) is not None else getattr(theirs, n)
                        for n in _CLASS_ATTRS))
    return replace(env, class_=merged)


def _reference_name(m: Measurement) -> str | None:
    """The component a reference measurement is about: its text mkey, else (no mkey) its name."""
    if m.mkey is None:
        return m.mval.name
    return m.mkey.value if m.mkey.type == "string" and isinstance(m.mkey.value, str) else None


def _entry(comp: MeasuredComponent) -> MeasurementValues:
    """The component as a CoRIM measurement-values entry (what reference conditions are compared with)."""
    return MeasurementValues(
        name=comp.name,
        digests=(Digest(comp.digest_algorithm, comp.digest),)
        if comp.digest is not None and comp.digest_algorithm is not None else None,
        raw=RawValue(comp.raw) if comp.raw is not None else None,
        cryptokeys=tuple(Tagged("bytes", a, _TAG_BYTES) for a in comp.authorities) or None,
    )


def component_matches(comp: MeasuredComponent, ref: Measurement) -> bool:
    """True when the reference measurement *ref* approves the measured component *comp*."""
    mv = ref.mval
    if _reference_name(ref) != comp.name or (mv.digests is None and mv.raw is None):
        return False  # about another component, or only descriptive (no measurement to compare)
    if mv.version is not None and (
            comp.version is None or mv.version.version != comp.version.value
            or (mv.version.scheme is not None and mv.version.scheme != comp.version.scheme)):
        return False
    return match_values(replace(mv, version=None), _entry(comp))


def _vector(executables: int) -> TrustVector:
    return TrustVector.of({
        "instance-identity": 2, "configuration": 0, "executables": executables, "file-system": 0,
        "hardware": 2, "runtime-opaque": 0, "storage-opaque": 0, "sourced-data": 0,
    })


def _annotated(claims: EatClaims) -> dict[str, Any]:
    """The claims in JSON naming (bytes base64url), measured components in their JSON form."""
    out = claims.to_claims(json_token=True)
    if claims.measurements:
        out["measurements"] = [m.to_json() for m in claims.measurements]
    return out


class EatScheme:
    descriptor = SchemeDescriptor(
        NAME,
        frozenset(normalize_media_type(m) for m in (
            CWT_MEDIA_TYPE,
            JWT_MEDIA_TYPE,
            f'{CWT_MEDIA_TYPE}; eat_profile="{PROFILE}"',
            f'{JWT_MEDIA_TYPE}; eat_profile="{PROFILE}"',
        )),
        frozenset(),  # base CoRIMs: no CoRIM profile is defined for this EAT profile
    )

    def appraise(self, evidence: Evidence, ctx: Context) -> Mapping[str, Appraisal]:
        try:
            claims = decode_eat(evidence.data).claims
        except (MalformedError, VerificationError) as exc:  # e.g. an algorithm we do not accept
            raise BadEvidence(f"could not establish identity from evidence: {exc.detail}") from exc
        env = attester_environment(claims)
        key, key_hit = self._attester_key(env, ctx)
        try:
            verify_eat(evidence.data, key, ctx.now)
        except Error as exc:
            raise BadEvidence(f"integrity validation failed: bad evidence: {exc.detail}") from exc
        if ctx.nonce and ctx.nonce not in claims.nonces:  # empty: freshness not checked
            raise BadEvidence("integrity validation failed: bad evidence: nonce does not match the session")
        used: _Used = [(key_hit.provenance, "attest-key")]
        refs = [r for r in ctx.store.reference_values(_completed(env, key_hit.triple.environment), ctx.now)
                if r.provenance.profile is None]
        executables = 2 if self._measurements_ok(claims.measurements, refs, used) else 33
        vector = _vector(executables)
        return {NAME: Appraisal.make(vector.worst_tier(), vector, (POLICY_ID,), {
            "ear_veraison_annotated_evidence": _annotated(claims),
            EXTENSION: endorsement_records(used),
        })}

    @staticmethod
    def _attester_key(env: Environment, ctx: Context) -> tuple[VerificationKey, Stored[KeyTriple]]:
        lookup = Environment(instance=env.instance)
        for hit in ctx.store.attest_keys(lookup, ctx.now):
            if hit.provenance.profile is not None or not _agrees(hit.triple.environment, env):
                continue  # another profile's key (e.g. a PSA IAK), or another vendor or model
            for material in hit.triple.keys:
                try:
                    return VerificationKey.of(public_key(material), algorithms=None), hit
                except Error:
                    continue
        raise BadEvidence("no trust anchor for evidence")

    @staticmethod
    def _measurements_ok(components: Sequence[MeasuredComponent], refs: Sequence[Stored[ReferenceTriple]],
                         used: _Used) -> bool:
        found: _Used = []
        for comp in components:
            hit = next((r for r in refs for m in r.triple.measurements if component_matches(comp, m)), None)
            if hit is None:
                return False
            found.append((hit.provenance, "reference-values"))
        used.extend(found)
        return bool(components)


SCHEME = EatScheme()
