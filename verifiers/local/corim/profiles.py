"""CoRIM profiles, described by data: what each profile requires, and the registry that applies them.

Why data: Veraison registers one Go validator per profile; here a profile is a :class:`Profile`
row of :mod:`.rules` constraints, so PSA and CCA read side by side and a new profile is a new
row, not new control flow. The draft requires a processor to reject a CoRIM whose profile it
does not recognise, so the registry is closed: unknown profile → :class:`ProfileError`.

Entries (constraints and messages follow veraison/corim ``profiles/psa/psa.go`` (read at
04499b7) and ``profiles/cca/{platform,realm}.go`` (read at 0381366)):

* ``tag:arm.com,2025:psa#1.0.0`` — reference values: class-id 560, 32 bytes; mkey
  ``"psa.software-component"``; exactly one signer-id (560, 32/48/64 bytes) in cryptokeys.
  Attest keys: class-id as above; instance 550 UEID, 33 bytes, first byte 0x01; exactly one
  ``pkix-base64-key``. Measurement extension 100 ``psa-cert-num``.
* ``http://arm.com/psa/iot/1`` — **legacy** PSA encoding (Veraison before 2026): class-id
  600, mkey 601 ``{1: label, 4: version, 5: signer-id}``, profile as untagged text. Accepted
  explicitly: checked with the legacy rules Veraison used (veraison/services
  ``scheme/psa-iot/corim.go`` as read at ccc65e2), then rewritten into the current PSA shape
  (class-id 560; mkey ``"psa.software-component"`` with ``name``/``version``/``cryptokeys``
  from the refval-id), so that appraisal code sees one shape. Provenance keeps the legacy id.
* ``tag:arm.com,2025:cca_platform#1.0.0`` and ``tag:arm.com,2025:cca_realm#1.0.0``.
* ``tag:github.com,2026:rats-federation/cvm-firmware#1.0.0`` — ours (docs/cvm-corim.md):
  confidential-VM firmware reference values for AMD SEV-SNP and Intel TDX in one CoMID,
  distinguished by environment class; TCB / SEAM SVN lower bounds; short-lived endorsed values
  ("firmware SVN n is current").

A CoRIM without a profile gets only the base rule: the legacy tags (600, 601) need the legacy
profile. Every rejection is a :class:`ProfileError` (a :class:`MalformedError`: the CoRIM does
not follow the format it declares) naming the profile, the CoMID and what is wrong.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import Any

from federation import cbor
from federation.errors import MalformedError

from .match import Comparator
from .model import (
    EMPTY,
    ClassMap,
    Comid,
    ConditionalEndorsement,
    ConditionalSeries,
    Corim,
    Environment,
    Measurement,
    ProfileId,
    Tagged,
    Triples,
    Version,
)
from .rules import MeasurementRules, Slot, TripleRules, check_slot, check_triples

__all__ = [
    "CCA_PLATFORM",
    "CCA_REALM",
    "CVM_ENDORSED_MAX_VALIDITY",
    "CVM_FIRMWARE",
    "CVM_FIRMWARE_ID",
    "DEFAULT_PROFILES",
    "PSA",
    "PSA_LEGACY",
    "SNP_CLASS_VCEK",
    "SNP_CLASS_VLEK",
    "SNP_PRODUCTS",
    "TDX_CLASS",
    "Extension",
    "Profile",
    "ProfileError",
    "ProfileRegistry",
    "validate_profile",
]


class ProfileError(MalformedError):
    """A CoRIM breaks the rules of its (or any) profile; ``profile`` names it (None: no profile)."""

    def __init__(self, detail: str, *, profile: str | None = None) -> None:
        super().__init__(detail)
        self.profile = profile


@dataclass(frozen=True, slots=True)
class Extension:
    """A measurement-values code point a profile defines: how to check it and compare it."""

    name: str
    check: Callable[[Any], bool]
    expected: str
    compare: Comparator


@dataclass(frozen=True, slots=True)
class Profile:
    """One CoRIM profile: its id, its triple rules, its extensions, and (legacy) a rewrite.

    ``corim`` slots read the :class:`~.model.Corim` itself (e.g. its ``rim-validity``).
    """

    id: str
    triples: Mapping[str, TripleRules]
    description: str = ""
    corim: tuple[Slot, ...] = ()
    extensions: Mapping[int, Extension] = field(default_factory=lambda: EMPTY)
    accepts_untagged_id: bool = False
    allows_legacy_types: bool = False
    normalize: Callable[[Corim], Corim] | None = None

    @property
    def comparators(self) -> Mapping[int, Comparator]:
        """Comparators for :func:`.match.match_values` ``extensions=``."""
        return {k: e.compare for k, e in self.extensions.items()}


# --- shared slots ---------------------------------------------------------------------------

_HASH_SIZES = (32, 48, 64)  # psa-hash-type: SHA-256, SHA-384, SHA-512


def _class(env: Environment) -> Any:
    return env.class_


def _class_id(env: Environment) -> Any:
    return env.class_id


def _instance(env: Environment) -> Any:
    return env.instance


def _keys(t: Any) -> Any:
    return t.keys


def _mkey(m: Measurement) -> Any:
    return m.mkey


def _cryptokeys(m: Measurement) -> Any:
    return m.mval.cryptokeys


def _digests(m: Measurement) -> Any:
    return m.mval.digests


def _raw(m: Measurement) -> Any:
    return m.mval.raw.value if m.mval.raw is not None else None


def _raw_mask(m: Measurement) -> Any:
    return m.mval.raw.mask if m.mval.raw is not None else None


def _version_scheme(m: Measurement) -> Any:
    return m.mval.version.scheme if m.mval.version is not None else None


_CLASS = Slot("class", _class, missing="environment.class is required")
_IMPL_ID = Slot("implementation-id", _class_id, missing="environment.class.id (implementation-id) is required",
                types=("bytes",), sizes=(32,))
_INSTANCE_ID = Slot("instance-id", _instance, missing="environment.instance (instance-id) is required",
                    types=("ueid",), sizes=(33,), first_byte=(0x01, "RAND"))
_ONE_PKIX_KEY = Slot("verification-keys", _keys, count=1, item="verification-key", types=("pkix-base64-key",))
_STRING_MKEY = Slot("mkey", _mkey, missing="mkey is mandatory but not set", types=("string",))
_SIGNER_ID = Slot("cryptokeys", _cryptokeys, missing="cryptokeys (signer-id) is mandatory but not set", count=1,
                  item="signer-id", types=("bytes",), sizes=_HASH_SIZES)
_DIGESTS = Slot("digests", _digests, missing="digests field is mandatory but not set", item="hash value",
                sizes=_HASH_SIZES)


def _mkey_is(*names: str) -> Slot:
    return Slot("mkey", _mkey, values=names)


# --- PSA ------------------------------------------------------------------------------------

_PSA_CERT_NUM = re.compile(r"[0-9]{13} - [0-9]{5}")

PSA = Profile(
    id="tag:arm.com,2025:psa#1.0.0",
    description="PSA endorsements (draft-fdb-rats-psa-endorsements), as veraison/corim profiles/psa",
    triples={
        "reference": TripleRules(
            "reference value", environment=(_CLASS, _IMPL_ID),
            measurements=MeasurementRules(common=(_STRING_MKEY, _mkey_is("psa.software-component"), _SIGNER_ID))),
        "attest_key": TripleRules(
            "attester verification key", environment=(_CLASS, _IMPL_ID, _INSTANCE_ID), keys=(_ONE_PKIX_KEY,)),
    },
    extensions={
        100: Extension("psa-cert-num", lambda v: isinstance(v, str) and _PSA_CERT_NUM.fullmatch(v) is not None,
                       "text of the form 'NNNNNNNNNNNNN - NNNNN'", lambda c, e: bool(c == e)),
    },
)

# --- legacy PSA (Veraison before 2026) ------------------------------------------------------

_LEGACY_IMPL_ID = Slot("class ID", _class_id, missing="class ID missing", types=("psa.impl-id",), sizes=(32,))
_LEGACY_CLASS = Slot("class", _class, missing="class missing")

_LEGACY_REFVAL_ID = {1: "label", 4: "version", 5: "signer-id"}


def _legacy_measurement(m: Measurement, where: str) -> Measurement:
    """601({1: label, 4: version, 5: signer-id}) → "psa.software-component" with name/version/cryptokeys."""
    if m.mkey is None or m.mkey.type != "psa.refval-id" or not isinstance(m.mkey.value, bytes):
        return m
    ref = cbor.loads(m.mkey.value)  # our own deterministic encoding of an already-checked map
    unknown = set(ref) - set(_LEGACY_REFVAL_ID)
    label, version, signer = ref.get(1), ref.get(4), ref.get(5)
    if unknown or not isinstance(signer, bytes) or len(signer) not in _HASH_SIZES or not (
            label is None or isinstance(label, str)) or not (version is None or isinstance(version, str)):
        raise ProfileError(f"{where}: psa.refval-id must be {{1: label, 4: version, 5: signer-id (32, 48 or 64 "
                           f"bytes)}}", profile=PSA_LEGACY_ID)
    mval = replace(m.mval, name=m.mval.name if label is None else label,
                   version=m.mval.version if version is None else Version(version),
                   cryptokeys=(Tagged("bytes", signer, 560),))
    return Measurement(mval, Tagged("string", "psa.software-component"), m.authorized_by)


def _legacy_environment(env: Environment) -> Environment:
    cid = env.class_id
    if env.class_ is None or cid is None or cid.type != "psa.impl-id":
        return env
    return replace(env, class_=replace(env.class_, class_id=Tagged("bytes", cid.value, 560)))


def _normalize_legacy(corim: Corim) -> Corim:
    tags = tuple(
        replace(t, triples=_map_triples(t, _legacy_environment, _legacy_measurement)) if isinstance(t, Comid) else t
        for t in corim.tags)
    return replace(corim, tags=tags)


PSA_LEGACY_ID = "http://arm.com/psa/iot/1"
PSA_LEGACY = Profile(
    id=PSA_LEGACY_ID,
    description="legacy Veraison PSA endorsements (tags 600/601); rewritten into the PSA 1.0.0 shape",
    triples={
        "reference": TripleRules(
            "reference value",
            environment=(_LEGACY_CLASS, _LEGACY_IMPL_ID,
                         Slot("instance", _instance, forbidden="instance set for reference value")),
            measurements=MeasurementRules(common=(
                Slot("mkey", _mkey, missing="mkey is mandatory but not set", types=("psa.refval-id",)),
                Slot("digests", _digests, missing="no digests")))),
        "attest_key": TripleRules(
            "attester verification key",
            environment=(_LEGACY_CLASS, _LEGACY_IMPL_ID,
                         Slot("instance", _instance, missing="instance not set for trust anchor", types=("ueid",))),
            keys=(_ONE_PKIX_KEY,)),
    },
    accepts_untagged_id=True,
    allows_legacy_types=True,
    normalize=_normalize_legacy,
)

# --- CCA ------------------------------------------------------------------------------------

CCA_PLATFORM = Profile(
    id="tag:arm.com,2025:cca_platform#1.0.0",
    description="Arm CCA platform endorsements, as veraison/corim profiles/cca/platform.go",
    triples={
        "reference": TripleRules(
            "platform reference value", environment=(_CLASS, _IMPL_ID),
            measurements=MeasurementRules(
                common=(_STRING_MKEY,),
                by_mkey={
                    "cca.software-component": (
                        _DIGESTS, _SIGNER_ID,
                        Slot("version-scheme", _version_scheme,
                             forbidden="version-scheme field MUST NOT be present in cca.software-component")),
                    "cca.platform-config": (
                        Slot("raw-value", _raw, missing="raw-value is mandatory for cca.platform-config"),
                        Slot("raw-value-mask", _raw_mask,
                             missing="raw-value-mask is mandatory for cca.platform-config")),
                },
                counts={"cca.software-component": (1, None), "cca.platform-config": (1, 1)})),
        "attest_key": TripleRules(
            "platform attestation verification key", environment=(_CLASS, _IMPL_ID, _INSTANCE_ID),
            keys=(_ONE_PKIX_KEY,)),
    },
)

_REALM_MEASUREMENT = (Slot("digests", _digests, missing="digests field is mandatory but not set", count=1,
                           item="hash value", sizes=_HASH_SIZES),)

CCA_REALM = Profile(
    id="tag:arm.com,2025:cca_realm#1.0.0",
    description="Arm CCA realm endorsements, as veraison/corim profiles/cca/realm.go",
    triples={
        "reference": TripleRules(
            "realm reference value",
            environment=(Slot("class", _class, missing="environment.class is required for CCA Realm profile"),
                         Slot("RIM", _class_id, missing="environment.class.id (RIM) is required for CCA Realm profile",
                              types=("bytes",), sizes=_HASH_SIZES)),
            measurements=MeasurementRules(
                common=(_STRING_MKEY,),
                by_mkey={
                    "cca.rim": _REALM_MEASUREMENT,
                    **{f"cca.rem{i}": _REALM_MEASUREMENT for i in range(4)},
                    "cca.rpv": (Slot("raw-value", _raw, missing="raw-value is mandatory for cca.rpv"),),
                },
                counts={"cca.rim": (1, None)})),
    },
)


# --- confidential-VM firmware (AMD SEV-SNP and Intel TDX in one CoMID) ----------------------

CVM_FIRMWARE_ID = "tag:github.com,2026:rats-federation/cvm-firmware#1.0.0"
SNP_CLASS_VCEK = Tagged("uuid", uuid.UUID("d05e6d1b-9f46-4ae2-a610-ce3e6ee7e153").bytes, 37)
"""SEV-SNP attested by chip (VCEK): draft-deeglaze-amd-sev-snp-corim-profile's class id (as the scheme reads it)."""
SNP_CLASS_VLEK = Tagged("uuid", uuid.UUID("89a7a1f0-e704-4faa-acbd-81c86df8a961").bytes, 37)
"""SEV-SNP attested by cloud provider (VLEK)."""
TDX_CLASS = ClassMap(vendor="Intel Corporation", model="TDX")
"""The Intel TDX environment class (docs/tdx.md)."""
SNP_PRODUCTS = (b"Milan", b"Genoa", b"Turin")
"""Product lines, as the SEV-SNP Attester's environment group ``560(product)``: TCB layouts differ by product."""
CVM_ENDORSED_MAX_VALIDITY = timedelta(days=31)
"""Endorsed values ("firmware SVN n is current") say what is current: a month at most, as Intel's TCB info."""

_SNP_CLASSES: Mapping[ClassMap, str] = {
    ClassMap(SNP_CLASS_VCEK): "SEV-SNP by chip (VCEK)",
    ClassMap(SNP_CLASS_VLEK): "SEV-SNP by cloud provider (VLEK)",
}
_TDX_LABEL = "Intel TDX"
_SNP_RAW_SIZES = {3: 32, 4: 32, 5: 48, 6: 48}  # REPORT_ID(_MA), ID / author key digests: raw-value lengths
_SNP_TCB_MKEYS = (7, 9, 10)  # REPORTED_TCB, COMMITTED_TCB, LAUNCH_TCB
_TDX_REGISTERS = ("tdx.mrtd", "tdx.rtmr0", "tdx.rtmr1", "tdx.rtmr2", "tdx.rtmr3", "tdx.mrseam", "tdx.mrsignerseam",
                  "tdx.mrconfigid", "tdx.mrowner", "tdx.mrownerconfig", "tdx.mrservicetd")
_TDX_FIELDS = {"tdx.td-attributes": 8, "tdx.xfam": 8, "tdx.seam-attributes": 8, "tdx.tee-tcb-svn": 16}
_TDX_SEAM_SVN = "tdx.seam-svn"
_SHA384 = (7, "sha-384")


def _class_label(env: Environment) -> str | None:
    """Which CVM class an environment names (None: no class), else a description of what it names."""
    c = env.class_
    if c is None:
        return None
    if c in _SNP_CLASSES:
        return _SNP_CLASSES[c]
    if c == TDX_CLASS:
        return _TDX_LABEL
    named = [f"{a}={getattr(c, a)}" for a in ("class_id", "vendor", "model", "layer", "index")
             if getattr(c, a) is not None]
    return "class with " + ", ".join(named)


def _is_snp(env: Environment) -> bool:
    return env.class_ in _SNP_CLASSES


def _is_tdx(env: Environment) -> bool:
    return env.class_ == TDX_CLASS


def _vcek_instance(env: Environment) -> Any:
    return env.instance if env.class_ == ClassMap(SNP_CLASS_VCEK) else None


def _vlek_instance(env: Environment) -> Any:
    return env.instance if env.class_ == ClassMap(SNP_CLASS_VLEK) else None


def _snp_group(env: Environment) -> Any:
    return env.group if _is_snp(env) else None


def _tdx_extras(env: Environment) -> Any:
    return (env.instance or env.group) if _is_tdx(env) else None


_CVM_ENVIRONMENT = (
    Slot("environment.class", _class_label, missing="environment.class is required",
         values=(*_SNP_CLASSES.values(), _TDX_LABEL)),
    Slot("CHIP_ID instance", _vcek_instance, types=("bytes",), sizes=(64,)),
    Slot("CSP_ID instance", _vlek_instance, types=("bytes",)),
    Slot("product group", _snp_group, types=("bytes",), values=SNP_PRODUCTS),
    Slot("TDX environment", _tdx_extras,
         forbidden="a TDX environment is the class alone (the Attester has no instance or group)"),
)


def _svn_kind(m: Measurement) -> Any:
    svn = m.mval.svn
    return None if svn is None else "min-svn" if svn.minimum else "exact svn"


def _digest_algs(m: Measurement) -> Any:
    return tuple(d.alg for d in m.mval.digests) if m.mval.digests is not None else None


def _digest_or_raw(m: Measurement) -> Any:
    return m.mval.digests or m.mval.raw


def _version(m: Measurement) -> Any:
    return m.mval.version


def _svn(m: Measurement) -> Any:
    return m.mval.svn


_MIN_SVN = (Slot("svn", _svn, missing="svn (a min-svn lower bound) is mandatory"),
            Slot("svn", _svn_kind, values=("min-svn",)))
_OPTIONAL_MIN_SVN = (Slot("svn", _svn_kind, values=("min-svn",)),)
_SHA384_DIGESTS = (Slot("digests", _digests, item="digest", sizes=(48,)),
                   Slot("digests", _digest_algs, item="digest algorithm", values=_SHA384))


def _sized_raw(size: int, *, required: bool) -> tuple[Slot, ...]:
    return (Slot("raw-value", _raw, missing="raw-value is mandatory" if required else None, sizes=(size,)),
            Slot("raw-value-mask", _raw_mask, sizes=(size,)))


_CVM_REFERENCE_MKEYS: Mapping[str | int, tuple[Slot, ...]] = {
    0: (*_SHA384_DIGESTS,),  # MEASUREMENT (sha-384), GUEST_SVN, is-debug, ID block values
    1: (Slot("version", _version, missing="version (the guest policy ABI, semver) is mandatory"),),
    **{k: _sized_raw(n, required=True) for k, n in _SNP_RAW_SIZES.items()},
    7: _MIN_SVN,
    8: _sized_raw(32, required=False),  # CURRENT version; HOST_DATA
    9: _OPTIONAL_MIN_SVN,  # COMMITTED version; COMMITTED_TCB lower bound
    10: _MIN_SVN,
    **{k: (Slot("digests or raw-value", _digest_or_raw, missing="digests (sha-384) or a raw-value is mandatory"),
           *_SHA384_DIGESTS, *_sized_raw(48, required=False)) for k in _TDX_REGISTERS},
    **{k: _sized_raw(n, required=True) for k, n in _TDX_FIELDS.items()},
    _TDX_SEAM_SVN: _MIN_SVN,
}
_CVM_ENDORSED_MKEYS: Mapping[str | int, tuple[Slot, ...]] = {
    **{k: _MIN_SVN for k in _SNP_TCB_MKEYS},
    _TDX_SEAM_SVN: _MIN_SVN,
}


def _foreign_mkey(t: Any) -> Any:
    """A measurement key of the other platform: SEV-SNP takes uint mkeys, TDX text ``tdx.*`` mkeys."""
    want: type = int if _is_snp(t.environment) else str
    for m in t.measurements:
        if m.mkey is not None and not isinstance(m.mkey.value, want):
            return m.mkey
    return None


def _tcb_bound_without_product(t: Any) -> Any:
    env = t.environment
    if not _is_snp(env) or env.group is not None:
        return None
    for m in t.measurements:
        if m.mkey is not None and m.mkey.value in _SNP_TCB_MKEYS and m.mval.svn is not None and m.mval.svn.minimum:
            return m.mkey
    return None


_CVM_WHOLE = (
    Slot("mkey", _foreign_mkey,
         forbidden="an SEV-SNP environment takes the uint mkeys 0..10, a TDX environment the text mkeys tdx.*"),
    Slot("TCB lower bound", _tcb_bound_without_product,
         forbidden="a TCB lower bound (min-svn on mkey 7, 9 or 10) needs the product line as the environment's "
                   "group 560('Milan' | 'Genoa' | 'Turin'): the TCB layout differs by product"),
)


def _has_endorsed(corim: Corim) -> bool:
    return any(c.triples.endorsed for c in corim.comids)


def _endorsed_unbounded(corim: Corim) -> Any:
    v = corim.rim_validity
    return True if _has_endorsed(corim) and (v is None or v.not_before is None or v.not_after is None) else None


def _endorsed_too_long(corim: Corim) -> Any:
    v = corim.rim_validity
    if not _has_endorsed(corim) or v is None or v.not_before is None or v.not_after is None:
        return None
    return True if v.not_after - v.not_before > CVM_ENDORSED_MAX_VALIDITY else None


CVM_FIRMWARE = Profile(
    id=CVM_FIRMWARE_ID,
    description="confidential-VM firmware: SEV-SNP launch and TDX MRTD/RTMR reference values in one CoMID, "
                "TCB / SEAM SVN lower bounds, short-lived 'firmware SVN n is current' endorsed values",
    triples={
        "reference": TripleRules(
            "reference value", environment=_CVM_ENVIRONMENT,
            measurements=MeasurementRules(
                common=(Slot("mkey", _mkey, missing="mkey is mandatory but not set", types=("uint", "string")),),
                by_mkey=_CVM_REFERENCE_MKEYS,
                counts={k: (0, 1) for k in _CVM_REFERENCE_MKEYS}),
            whole=_CVM_WHOLE),
        "endorsed": TripleRules(
            "endorsed value", environment=_CVM_ENVIRONMENT,
            measurements=MeasurementRules(
                common=(Slot("mkey", _mkey, missing="mkey is mandatory but not set", types=("uint", "string")),),
                by_mkey=_CVM_ENDORSED_MKEYS,
                counts={k: (0, 1) for k in _CVM_ENDORSED_MKEYS}),
            whole=_CVM_WHOLE),
    },
    corim=(
        Slot("rim-validity", _endorsed_unbounded,
             forbidden="endorsed values ('firmware SVN n is current') are short-lived: the CoRIM needs a "
                       "rim-validity with not-before and not-after"),
        Slot("rim-validity", _endorsed_too_long,
             forbidden=f"endorsed values ('firmware SVN n is current') may be valid for at most "
                       f"{CVM_ENDORSED_MAX_VALIDITY.days} days"),
    ),
)


# --- applying profiles ----------------------------------------------------------------------

_LEGACY_TYPES = frozenset({"psa.impl-id", "psa.refval-id"})


def _map_triples(comid: Comid, env_fn: Callable[[Environment], Environment],
                 m_fn: Callable[[Measurement, str], Measurement]) -> Triples:
    """The CoMID's triples with every environment and measurement passed through the functions."""
    where = f"comid {comid.tag_id_text}"

    def ms(seq: tuple[Measurement, ...]) -> tuple[Measurement, ...]:
        return tuple(m_fn(m, where) for m in seq)

    t = comid.triples
    return replace(
        t,
        reference=tuple(replace(x, environment=env_fn(x.environment), measurements=ms(x.measurements))
                        for x in t.reference),
        endorsed=tuple(replace(x, environment=env_fn(x.environment), measurements=ms(x.measurements))
                       for x in t.endorsed),
        identity=tuple(replace(x, environment=env_fn(x.environment)) for x in t.identity),
        attest_key=tuple(replace(x, environment=env_fn(x.environment)) for x in t.attest_key),
        dependency=tuple(replace(x, domain=env_fn(x.domain), members=tuple(map(env_fn, x.members)))
                         for x in t.dependency),
        membership=tuple(replace(x, domain=env_fn(x.domain), members=tuple(map(env_fn, x.members)))
                         for x in t.membership),
        coswid=tuple(replace(x, environment=env_fn(x.environment)) for x in t.coswid),
        conditional_series=tuple(
            ConditionalSeries(env_fn(x.environment), ms(x.measurements),
                              tuple(replace(s, condition=ms(s.condition), addition=ms(s.addition)) for s in x.series),
                              x.authorized_by)
            for x in t.conditional_series),
        conditional=tuple(
            ConditionalEndorsement(
                tuple(replace(c, environment=env_fn(c.environment), measurements=ms(c.measurements))
                      for c in x.conditions),
                tuple(replace(e, environment=env_fn(e.environment), measurements=ms(e.measurements))
                      for e in x.endorsements))
            for x in t.conditional),
    )


def _legacy_type_used(comid: Comid) -> str | None:
    for env in comid.triples.environments():
        if env.class_id is not None and env.class_id.type in _LEGACY_TYPES:
            return f"class-id of type '{env.class_id.type}' (tag {env.class_id.tag})"
    for m in comid.triples.measurements():
        if m.mkey is not None and m.mkey.type in _LEGACY_TYPES:
            return f"mkey of type '{m.mkey.type}' (tag {m.mkey.tag})"
    return None


class ProfileRegistry:
    """The profiles this verifier understands, by id; :meth:`validate` applies one to a CoRIM."""

    def __init__(self, profiles: Iterable[Profile]) -> None:
        self._by_id: dict[str, Profile] = {}
        for p in profiles:
            if p.id in self._by_id:
                raise ValueError(f"profile {p.id!r} registered twice")
            self._by_id[p.id] = p

    def __contains__(self, profile_id: object) -> bool:
        return profile_id in self._by_id

    def __iter__(self) -> Iterator[Profile]:
        return iter(self._by_id.values())

    def get(self, profile: ProfileId | str) -> Profile:
        """The profile named; :class:`ProfileError` if unknown or written in a form it does not accept."""
        pid = profile if isinstance(profile, ProfileId) else ProfileId(profile)
        found = self._by_id.get(pid.value)
        if found is None:
            raise ProfileError(f"corim profile {pid.value!r} is not supported", profile=pid.value)
        if pid.kind == "text" and not found.accepts_untagged_id:
            raise ProfileError(f"corim profile {pid.value!r} must be a tagged URI (tag 32)", profile=pid.value)
        return found

    def validate(self, corim: Corim) -> Corim:
        """Check *corim* against its profile and return it in the profile's canonical shape.

        Raises :class:`ProfileError` naming the profile, the CoMID and the rule broken.
        """
        profile = self.get(corim.profile) if corim.profile is not None else None
        pid = profile.id if profile is not None else None
        if profile is not None:
            msg = next((m for slot in profile.corim if (m := check_slot(slot, corim)) is not None), None)
            if msg is not None:
                raise ProfileError(f"profile {pid}: corim {corim.id_text}: {msg}", profile=pid)
        for comid in corim.comids:
            where = f"comid {comid.tag_id_text}"
            legacy = None if profile is not None and profile.allows_legacy_types else _legacy_type_used(comid)
            if legacy is not None:
                raise ProfileError(f"{where}: {legacy} is only accepted under the legacy profile {PSA_LEGACY_ID!r}",
                                   profile=pid)
            if profile is None:
                continue
            msg = check_triples(comid.triples, profile.triples) or _check_extensions(profile, comid)
            if msg is not None:
                raise ProfileError(f"profile {pid}: {where}: {msg}", profile=pid)
        if profile is not None and profile.normalize is not None:
            return profile.normalize(corim)
        return corim


def _check_extensions(profile: Profile, comid: Comid) -> str | None:
    for m in comid.triples.measurements():
        for key, ext in profile.extensions.items():
            if key in m.mval.extensions and not ext.check(m.mval.extensions[key]):
                return f"measurement {m.mkey}: {ext.name} must be {ext.expected}"
    return None


DEFAULT_PROFILES = ProfileRegistry((PSA, PSA_LEGACY, CCA_PLATFORM, CCA_REALM, CVM_FIRMWARE))


def validate_profile(corim: Corim, registry: ProfileRegistry = DEFAULT_PROFILES) -> Corim:
    """Check *corim* against its declared profile (base rules if none); see :meth:`ProfileRegistry.validate`."""
    return registry.validate(corim)
