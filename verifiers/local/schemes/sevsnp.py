"""AMD SEV-SNP attestation reports (``SEVSNP``, Veraison's scheme name), appraised locally.

Evidence (media types in :mod:`..evidence.sevsnp`, documented in docs/sevsnp.md): the bare
1184-byte report, the configfs-tsm report (CBOR or JSON) with its certificate table, or our CMW
collection. Certificates the Evidence does not carry come from the collateral store
(:meth:`SevSnpScheme.collateral_requests`); whatever their source they are judged the same way,
and the chain must end in an ARK pinned in :mod:`..roots_amd` or configured by the operator.

Steps and failures, in order (problem texts follow the Veraison schemes):

1. decode the envelope and the report (versions 2, 3, 5; reserved bytes zero) -> "could not
   establish identity from evidence: ...";
2. the signing key: the VCEK (or VLEK) whose hwID equals CHIP_ID (unless the chip key is masked)
   and whose SPL extensions compose REPORTED_TCB in the product's layout -> "integrity
   validation failed: bad evidence: ..." when only mismatching ones exist, "no trust anchor for
   evidence: ..." when there is none;
3. the chain ARK -> ASK/ASVK -> VCEK/VLEK at ``now`` (:func:`..collateral.amd.verify_chain`) and
   any CRL of that ARK -> "no trust anchor for evidence: ..." (no ASK/ARK, or an ARK that matches
   no pin and no operator root) or "integrity validation failed: bad evidence: ..." (signature,
   validity, profile);
4. the product: the chain's product line must agree with the report's CPUID (v3+) or, for a v2
   report, with :attr:`SnpPolicy.product` when set;
5. the report signature (ECDSA P-384, r/s little-endian) under the VCEK/VLEK; REPORTED_TCB no
   newer than CURRENT_TCB; then freshness: REPORT_DATA bound to the session nonce by
   :attr:`SnpPolicy.report_data` (default ``raw``: REPORT_DATA == nonce zero-padded to 64 bytes;
   an empty nonce: not checked, and the result says so) ->
   "integrity validation failed: bad evidence: ...";
6. the trust vector: instance-identity 2 (the chain verified), runtime-opaque 2 (SNP encrypts
   and integrity-protects guest memory), configuration from :class:`SnpPolicy` (2 approved; 32
   when a soft rule fails: SMT where forbidden, guest ABI below the minimum, PLATFORM_INFO bits;
   96 when debug or a migration agent is allowed against policy, or the VMPL is above the
   maximum), hardware 2 (genuine, TCB at or above every minimum the CoRIMs set) or 32 (a
   reported/committed/launch TCB below a minimum, or provisional firmware: COMMITTED != CURRENT),
   executables 2 when a CoRIM reference triple naming the launch MEASUREMENT matches, else 33;
   file-system, storage-opaque and sourced-data 0.

CoRIM (draft-deeglaze-amd-sev-snp-corim-profile, read at its latest revision): the Attester's
environment is class-id ``37(d05e6d1b-9f46-4ae2-a610-ce3e6ee7e153)`` (attested by chip, VCEK)
or ``37(89a7a1f0-e704-4faa-acbd-81c86df8a961)`` (by cloud provider, VLEK), instance
``560(CHIP_ID)`` (``560(cspID)`` for a VLEK); the report becomes measurements under uint mkeys
0..10 (:func:`evidence_measurements`). Reference triples are found by the draft's rule (the
triple's environment contained in the Attester's) and matched with :mod:`..corim.match`, except
that a min-svn on a TCB mkey (7 REPORTED_TCB, 9 COMMITTED_TCB, 10 LAUNCH_TCB) is a lower bound
compared component by component in the product's TCB layout, never as a u64 (a newer microcode
must not hide an older SNP firmware), and grades hardware instead of deciding the match.
Endorsed triples of the environment contribute the same lower bounds ("firmware SVN n is
current", typically short-lived). Provenance records name every CoMID the verdict used.

Which CoRIMs: those without a profile and those under the CVM firmware profile
(``tag:github.com,2026:rats-federation/cvm-firmware#1.0.0``, docs/cvm-corim.md), which keeps SNP
and TDX reference values in one CoMID by environment class. The Attester's environment also
carries the product line as its group ``560('Milan' | 'Genoa' | 'Turin')`` (the draft leaves the
group to the Verifier), so that a triple can scope a TCB bound to the product whose layout it is
written in; a triple without a group applies to every product. The ``cvm`` section of the
annotated evidence says which triple matched and which bound held (:mod:`.cvm`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from cryptography import x509

from federation.ar4si import TrustVector
from federation.ear.model import Appraisal
from federation.errors import Error, MalformedError, UntrustedKeyError, UsageError
from federation.evidence import Evidence

from ..collateral.amd import (
    KeyKind,
    TrustedRoots,
    VerifiedChain,
    cert_role,
    chain_request,
    check_crls,
    crl_request,
    load_certificates,
    load_crls,
    vcek_request,
    vek_extensions,
    verify_chain,
    vlek_request,
)
from ..collateral.base import CollateralRequest
from ..corim.match import match_measurements
from ..corim.model import (
    ClassMap,
    Digest,
    Environment,
    Measurement,
    MeasurementValues,
    RawValue,
    Svn,
    Tagged,
    Version,
)
from ..corim.profiles import CVM_FIRMWARE_ID, SNP_CLASS_VCEK, SNP_CLASS_VLEK
from ..corim.store import Provenance
from ..endorsements import EXTENSION, endorsement_records
from ..evidence.sevsnp import (
    MEDIA_TYPE_CMW_CBOR,
    MEDIA_TYPE_CMW_JSON,
    MEDIA_TYPE_REPORT,
    MEDIA_TYPE_TSM_CBOR,
    MEDIA_TYPE_TSM_JSON,
    MEDIA_TYPE_TSM_JSON_VERAISON,
    PRODUCTS,
    AttestationReport,
    Form,
    SnpEvidence,
    TcbVersion,
    decode_evidence,
    verify_report_signature,
)
from ..scheme import BadEvidence, Context, SchemeDescriptor, normalize_media_type
from .cvm import CVM_PROFILES, bound_note, match_note

__all__ = [
    "CLASS_VCEK",
    "CLASS_VLEK",
    "MKEY_GUEST",
    "MKEY_TCB",
    "NAME",
    "SCHEME",
    "SevSnpScheme",
    "REPORT_DATA_RULES",
    "SnpPolicy",
    "attester_environment",
    "evidence_measurements",
]

NAME = "SEVSNP"
POLICY_ID = f"policy:{NAME}"
REPORT_DATA_SIZE = 64
CLASS_VCEK = SNP_CLASS_VCEK  # 37(d05e6d1b-9f46-4ae2-a610-ce3e6ee7e153)
CLASS_VLEK = SNP_CLASS_VLEK  # 37(89a7a1f0-e704-4faa-acbd-81c86df8a961)
_TAG_BYTES = 560
SHA384 = 7  # named-information hash algorithm id
SEMVER = 16384  # CoSWID version scheme
MKEY_GUEST, MKEY_ABI, MKEY_REPORT_ID, MKEY_REPORT_ID_MA = 0, 1, 3, 4
MKEY_ID_KEY, MKEY_AUTHOR_KEY, MKEY_HOST, MKEY_COMMITTED = 5, 6, 8, 9
MKEY_TCB: Mapping[int, str] = {7: "reported", 9: "committed", 10: "launch"}  # TCB_VERSION mkeys
_FLAG_DEBUG = 3  # flags-map is-debug

_MEDIA_TYPES: tuple[tuple[str, Form], ...] = (
    (MEDIA_TYPE_REPORT, "report"),
    (MEDIA_TYPE_TSM_CBOR, "tsm-cbor"),
    (MEDIA_TYPE_TSM_JSON, "tsm-json"),
    (MEDIA_TYPE_TSM_JSON_VERAISON, "tsm-json"),
    (MEDIA_TYPE_CMW_CBOR, "cmw"),
    (MEDIA_TYPE_CMW_JSON, "cmw"),
)
_FORMS: Mapping[str, Form] = {normalize_media_type(mt): form for mt, form in _MEDIA_TYPES}
_Used = list[tuple[Provenance, str]]


def _pad(data: bytes, size: int = REPORT_DATA_SIZE) -> bytes | None:
    return data + bytes(size - len(data)) if len(data) <= size else None


# How REPORT_DATA must commit to the session nonce (the same rules, by the same names, as the TDX
# scheme: DESIGN §8 has the federation fix one rule). None: this nonce can never be carried.
REPORT_DATA_RULES: Mapping[str, Callable[[bytes], bytes | None]] = {
    "raw": _pad,  # the nonce itself, zero-padded to 64 bytes (a nonce of at most 64 bytes)
    "sha256": lambda n: _pad(hashlib.sha256(n).digest()),
    "sha384": lambda n: _pad(hashlib.sha384(n).digest()),
    "sha512": lambda n: hashlib.sha512(n).digest(),
}
RULE_TEXT: Mapping[str, str] = {
    "raw": "REPORT_DATA == nonce zero-padded to 64 bytes",
    "sha256": "REPORT_DATA == SHA-256(nonce) zero-padded to 64 bytes",
    "sha384": "REPORT_DATA == SHA-384(nonce) zero-padded to 64 bytes",
    "sha512": "REPORT_DATA == SHA-512(nonce)",
}


@dataclass(frozen=True, slots=True)
class SnpPolicy:
    """What this verifier accepts of a guest's launch policy and its host (safe defaults).

    ``platform_required`` / ``platform_forbidden`` are PLATFORM_INFO bit masks (bit 0 SMT_EN,
    1 TSME_EN, 2 ECC_EN, 3 RAPL_DIS, 4 CIPHERTEXT_HIDING_EN, 5 ALIAS_CHECK_COMPLETE, 7 TIO_EN).
    ``product`` names the product line of version-2 reports, which do not carry CPUID (None:
    take it from the VCEK's productName). ``report_data`` is the nonce binding rule
    (:data:`REPORT_DATA_RULES`; an empty session nonce means freshness is not checked).
    """

    allow_debug: bool = False
    allow_migration_agent: bool = False
    allow_smt: bool = True
    min_abi: tuple[int, int] = (0, 0)
    max_vmpl: int = 3
    platform_required: int = 0
    platform_forbidden: int = 0
    allow_provisional_firmware: bool = False
    report_data: str = "raw"
    product: str | None = None

    def __post_init__(self) -> None:
        if self.report_data not in REPORT_DATA_RULES:
            raise UsageError(f"report_data must be one of {', '.join(REPORT_DATA_RULES)}")
        if self.product is not None and self.product not in PRODUCTS:
            raise UsageError(f"product must be one of {', '.join(PRODUCTS)}")
        if not 0 <= self.max_vmpl <= 3:
            raise UsageError("max_vmpl must be 0..3")
        if len(self.min_abi) != 2 or not all(0 <= v <= 255 for v in self.min_abi):
            raise UsageError("min_abi is (major, minor), each 0..255")
        if self.platform_required & self.platform_forbidden:
            raise UsageError("a PLATFORM_INFO bit cannot be both required and forbidden")


@dataclass
class _Grades:
    """Findings as they accumulate: (claim, value, text)."""

    items: list[tuple[str, int, str]] = field(default_factory=list)

    def add(self, claim: str, value: int, text: str) -> None:
        self.items.append((claim, value, text))

    def value(self, claim: str, default: int) -> int:
        return max((v for c, v, _ in self.items if c == claim), default=default)

    def texts(self, claim: str) -> list[str]:
        return [t for c, _, t in self.items if c == claim]


def attester_environment(report: AttestationReport, chain: VerifiedChain | None = None,
                         product: str | None = None) -> Environment:
    """The CoRIM environment of a report: class by signer, instance = CHIP_ID (or the VLEK cspID),
    group = the product line (``560('Milan')``, ...) when *product* is known."""
    group = Tagged("bytes", product.encode(), _TAG_BYTES) if product is not None else None
    if report.key_info.signer == "vlek":
        csp = chain.extensions.csp_id if chain is not None else None
        return Environment(ClassMap(CLASS_VLEK), instance=Tagged("bytes", csp.encode(), _TAG_BYTES) if csp else None,
                           group=group)
    chip = Tagged("bytes", report.chip_id, _TAG_BYTES) if any(report.chip_id) else None
    return Environment(ClassMap(CLASS_VCEK), instance=chip, group=group)


def _m(mkey: int, **values: Any) -> Measurement:
    return Measurement(MeasurementValues(**values), Tagged("uint", mkey))


def evidence_measurements(report: AttestationReport) -> tuple[Measurement, ...]:
    """The report as CoRIM measurements (draft-deeglaze-amd-sev-snp-corim-profile "Evidence
    Translation"): 0 guest (GUEST_SVN, MEASUREMENT as sha-384, is-debug, FAMILY_ID/IMAGE_ID when
    an ID block was used), 1 POLICY ABI as semver, 3/4 REPORT_ID(_MA), 5/6 ID/author key digests
    when non-zero, 7 REPORTED_TCB, 8 CURRENT version and HOST_DATA, 9 COMMITTED version and TCB,
    10 LAUNCH_TCB (TCBs as the little-endian u64)."""
    id_block = any(report.id_key_digest)
    guest: dict[str, Any] = {"svn": Svn(report.guest_svn), "digests": (Digest(SHA384, report.measurement),),
                             "flags": {_FLAG_DEBUG: report.policy.debug}}
    if id_block:
        guest |= {"version": Version(report.image_id.hex()), "raw": RawValue(report.family_id)}
    out = [
        _m(MKEY_GUEST, **guest),
        _m(MKEY_ABI, version=Version("{}.{}.0".format(*report.policy.abi), SEMVER)),
        _m(MKEY_REPORT_ID, raw=RawValue(report.report_id)),
        _m(MKEY_REPORT_ID_MA, raw=RawValue(report.report_id_ma)),
    ]
    for mkey, digest in ((MKEY_ID_KEY, report.id_key_digest), (MKEY_AUTHOR_KEY, report.author_key_digest)):
        if any(digest):
            out.append(_m(mkey, raw=RawValue(digest)))
    host: dict[str, Any] = {"version": Version("{}.{}.{}".format(*report.current_version), SEMVER)}
    if any(report.host_data):
        host["raw"] = RawValue(report.host_data)
    out += [
        _m(7, svn=Svn(report.reported_tcb.value)),
        _m(MKEY_HOST, **host),
        _m(MKEY_COMMITTED, version=Version("{}.{}.{}".format(*report.committed_version), SEMVER),
           svn=Svn(report.committed_tcb.value)),
        _m(10, svn=Svn(report.launch_tcb.value)),
    ]
    return tuple(out)


def _tcb_of(report: AttestationReport, which: str) -> TcbVersion:
    return {"reported": report.reported_tcb, "committed": report.committed_tcb, "launch": report.launch_tcb}[which]


def _mkey_int(m: Measurement) -> int | None:
    k = m.mkey
    return k.value if k is not None and k.type == "uint" and isinstance(k.value, int) else None


def _split(measurements: Sequence[Measurement]) -> tuple[list[Measurement], list[tuple[int, int]]]:
    """(conditions to match, TCB lower bounds as (mkey, min-svn)) of a triple's measurements."""
    conditions: list[Measurement] = []
    bounds: list[tuple[int, int]] = []
    for m in measurements:
        key = _mkey_int(m)
        svn = m.mval.svn
        if key is not None and key in MKEY_TCB and svn is not None and svn.minimum:
            bounds.append((key, svn.value))
            rest = replace(m, mval=replace(m.mval, svn=None))
            if rest.mval != MeasurementValues():
                conditions.append(rest)
        else:
            conditions.append(m)
    return conditions, bounds


def _names_measurement(conditions: Iterable[Measurement]) -> bool:
    return any(_mkey_int(m) == MKEY_GUEST and m.mval.digests for m in conditions)


class SevSnpScheme:
    """The ``SEVSNP`` scheme under one :class:`SnpPolicy` and one set of trusted roots."""

    descriptor = SchemeDescriptor(NAME, frozenset(_FORMS), frozenset({CVM_FIRMWARE_ID}))

    def __init__(self, policy: SnpPolicy | None = None, roots: TrustedRoots | None = None) -> None:
        self.policy = policy if policy is not None else SnpPolicy()
        self.roots = roots if roots is not None else TrustedRoots.default()

    def with_policy(self, **changes: Any) -> SevSnpScheme:
        """The same scheme with some policy fields changed (e.g. ``allow_debug=True``)."""
        return SevSnpScheme(replace(self.policy, **changes), self.roots)

    # -- decoding -------------------------------------------------------------------------------

    @staticmethod
    def _form(media_type: str) -> Form:
        mt = normalize_media_type(media_type)
        form = _FORMS.get(mt) or _FORMS.get(mt.split(";", 1)[0])
        if form is None:
            raise BadEvidence(f"could not establish identity from evidence: media type {media_type!r:.80}")
        return form

    def _decode(self, evidence: Evidence) -> SnpEvidence:
        try:
            return decode_evidence(evidence.data, self._form(evidence.media_type))
        except MalformedError as exc:
            raise BadEvidence(f"could not establish identity from evidence: {exc.detail}") from exc

    @staticmethod
    def _evidence_certs(ev: SnpEvidence) -> tuple[list[x509.Certificate], list[x509.CertificateRevocationList]]:
        certs: list[x509.Certificate] = []
        crls: list[x509.CertificateRevocationList] = []
        for blob in ev.blobs:
            try:
                if blob.crl:
                    crls.extend(load_crls(blob.data))
                else:
                    certs.extend(load_certificates(blob.data))
            except MalformedError as exc:
                raise BadEvidence(f"could not establish identity from evidence: {blob.origin}: {exc.detail}") from exc
        return certs, crls

    def _products(self, report: AttestationReport, certs: Sequence[x509.Certificate]) -> tuple[str, ...]:
        """Product lines to ask collateral for: CPUID, else policy, else a carried VCEK, else a guess."""
        if report.product_from_cpuid is not None:
            return (report.product_from_cpuid,)
        if self.policy.product is not None:
            return (self.policy.product,)
        for cert in certs:
            role = cert_role(cert)
            if role is not None and role[0] == report.key_info.signer:
                try:
                    line = vek_extensions(cert).product_line
                except MalformedError:
                    continue
                if line in PRODUCTS:
                    return (line,)
        return ("Turin",) if report.chip_id_turin_like else ("Milan", "Genoa")

    def collateral_requests(self, evidence: Evidence) -> list[CollateralRequest]:
        """The VCEK/VLEK, chain and CRLs the Evidence does not carry, for each candidate product."""
        try:
            ev = decode_evidence(evidence.data, self._form(evidence.media_type))
            certs, _ = self._evidence_certs(ev)
        except (Error, BadEvidence):
            return []
        report = ev.report
        kind = report.key_info.signer
        if kind == "none":
            return []
        roles = {r[0] for r in map(cert_role, certs) if r is not None}
        inter = "ask" if kind == "vcek" else "asvk"
        out: list[CollateralRequest] = []
        for product in self._products(report, certs):
            if kind not in roles:
                if kind == "vlek":
                    out.append(vlek_request(product, report.reported_tcb))
                elif any(report.chip_id):
                    out.append(vcek_request(product, report.chip_id, report.reported_tcb))
            if not {inter, "ark"} <= roles:
                out.append(chain_request(product, kind))
            out.append(crl_request(product))
        return out

    # -- appraisal ------------------------------------------------------------------------------

    def appraise(self, evidence: Evidence, ctx: Context) -> Mapping[str, Appraisal]:
        ev = self._decode(evidence)
        report = ev.report
        kind = report.key_info.signer
        if kind == "none":
            raise BadEvidence("could not establish identity from evidence: the report is not signed (SIGNING_KEY 7)")
        certs, crls = self._evidence_certs(ev)
        certs += self._collateral_certs(ctx)
        crls += self._collateral_crls(ctx)
        chain, crl_notes = self._chain(report, kind, certs, crls, ctx)
        product = chain.product
        self._integrity(report, chain, product, ctx)
        grades = _Grades()
        self._policy(report, grades)
        self._firmware(report, product, grades)
        used: _Used = []
        executables, cvm = self._reference_values(report, chain, product, ctx, grades, used)
        cvm["debug"] = {"debug": report.policy.debug, "allowed": self.policy.allow_debug}
        vector = TrustVector.of({
            "instance-identity": 2, "configuration": grades.value("configuration", 2),
            "executables": executables, "file-system": 0, "hardware": grades.value("hardware", 2),
            "runtime-opaque": 2, "storage-opaque": 0, "sourced-data": 0,
        })
        annotated = {
            "report": report.to_json(product), "product": product, "chain": chain.to_json(),
            "report_data": {"rule": self.policy.report_data, "checked": bool(ctx.nonce),
                            "binding": RULE_TEXT[self.policy.report_data]},
            "configuration": grades.texts("configuration"), "hardware": grades.texts("hardware"),
            "measurement_recognized": executables == 2,
            "cvm": cvm,
        }
        if crl_notes:
            annotated["crls"] = crl_notes
        extensions: dict[str, Any] = {"ear_veraison_annotated_evidence": annotated,
                                      EXTENSION: endorsement_records(used)}
        findings = [t for _, v, t in grades.items if v > 2]
        if findings:
            extensions["ear_veraison_policy_claims"] = {"findings": findings}
        return {NAME: Appraisal.make(vector.worst_tier(), vector, (POLICY_ID,), extensions)}

    @staticmethod
    def _collateral_certs(ctx: Context) -> list[x509.Certificate]:
        out: list[x509.Certificate] = []
        for req, found in ctx.collateral.items():
            if req.kind in ("amd-vcek", "amd-vlek", "amd-chain"):
                out.extend(load_certificates(found.data))  # the store indexed these: a failure is ours
        return out

    @staticmethod
    def _collateral_crls(ctx: Context) -> list[x509.CertificateRevocationList]:
        return [crl for req, found in ctx.collateral.items() if req.kind == "amd-crl" for crl in load_crls(found.data)]

    def _chain(self, report: AttestationReport, kind: KeyKind, certs: list[x509.Certificate],
               crls: list[x509.CertificateRevocationList], ctx: Context
               ) -> tuple[VerifiedChain, list[dict[str, Any]]]:
        candidates = list(dict.fromkeys(c for c in certs if (cert_role(c) or ("", None))[0] == kind))
        name = kind.upper()
        if not candidates:
            raise BadEvidence(f"no trust anchor for evidence: no {name} certificate in the evidence or the "
                              f"collateral (chip {report.chip_id[:8].hex()}..., reported TCB "
                              f"{report.reported_tcb.raw.hex()})")
        mismatch: str | None = None
        failure: Error | None = None
        for vek in candidates:
            problem = self._key_mismatch(report, kind, vek)
            if problem is not None:
                mismatch = mismatch or problem
                continue
            try:
                chain = verify_chain(vek, kind, certs, self.roots, ctx.now)
            except Error as exc:
                failure = failure or exc
                continue
            try:
                return chain, check_crls(chain, crls, ctx.now)
            except Error as exc:  # a revoked ASK/ASVK, or a CRL that does not verify
                raise BadEvidence(f"integrity validation failed: bad evidence: {exc.detail}") from exc
        if isinstance(failure, UntrustedKeyError):
            raise BadEvidence(f"no trust anchor for evidence: {failure.detail}") from failure
        if failure is not None:
            raise BadEvidence(f"integrity validation failed: bad evidence: {failure.detail}") from failure
        raise BadEvidence(f"integrity validation failed: bad evidence: {mismatch}")

    @staticmethod
    def _key_mismatch(report: AttestationReport, kind: KeyKind, vek: x509.Certificate) -> str | None:
        """Why this VCEK/VLEK cannot be the report's key (hwID, TCB), or None."""
        name = kind.upper()
        try:
            ext = vek_extensions(vek)
            if ext.product_line not in PRODUCTS:
                return f"{name} names unknown product {ext.product_name!r}"
            tcb = ext.tcb(ext.product_line)
        except MalformedError as exc:
            return exc.detail
        if kind == "vcek" and not report.key_info.mask_chip_key:
            hwid = ext.hwid or b""
            if report.chip_id[:len(hwid)] != hwid or any(report.chip_id[len(hwid):]):
                return f"VCEK hwID {hwid[:8].hex()}... does not match CHIP_ID {report.chip_id[:8].hex()}..."
        if tcb.raw != report.reported_tcb.raw:
            return (f"{name} TCB {tcb.to_json(ext.product_line)} does not match REPORTED_TCB "
                    f"{report.reported_tcb.to_json(ext.product_line)}")
        return None

    def _integrity(self, report: AttestationReport, chain: VerifiedChain, product: str, ctx: Context) -> None:
        def fail(problem: str) -> BadEvidence:
            return BadEvidence(f"integrity validation failed: bad evidence: {problem}")

        declared = report.product_from_cpuid or self.policy.product
        if declared is not None and declared != product:
            raise fail(f"the report is from a {declared} part but its key chains to ARK-{product}")
        try:
            verify_report_signature(report, chain.public_key)
        except Error as exc:
            raise fail(exc.detail) from exc
        if not report.current_tcb.at_least(report.reported_tcb, product):
            raise fail(f"REPORTED_TCB {report.reported_tcb.to_json(product)} is newer than CURRENT_TCB "
                       f"{report.current_tcb.to_json(product)}")
        if not ctx.nonce:
            return  # no session nonce: freshness is not checked (the annotated evidence says so)
        expected = REPORT_DATA_RULES[self.policy.report_data](ctx.nonce)
        if expected is None or report.report_data != expected:
            raise fail(f"freshness: REPORT_DATA ({report.report_data.hex()}) is not bound to the session nonce "
                       f"({ctx.nonce.hex()}) by the {self.policy.report_data!r} rule: "
                       f"{RULE_TEXT[self.policy.report_data]}")

    def _policy(self, report: AttestationReport, grades: _Grades) -> None:
        p, pol, info = self.policy, report.policy, report.platform_info.raw
        if pol.debug and not p.allow_debug:
            grades.add("configuration", 96, "guest policy allows debugging (the host can read guest memory)")
        if pol.migrate_ma and not p.allow_migration_agent:
            grades.add("configuration", 96, "guest policy allows a migration agent")
        if report.vmpl > p.max_vmpl:
            grades.add("configuration", 96, f"report requested at VMPL {report.vmpl} (maximum {p.max_vmpl})")
        if pol.smt and not p.allow_smt:
            grades.add("configuration", 32, "guest policy allows SMT")
        if pol.abi < p.min_abi:
            grades.add("configuration", 32, "guest policy ABI {}.{} is below the minimum {}.{}".format(
                *pol.abi, *p.min_abi))
        if info & p.platform_required != p.platform_required:
            grades.add("configuration", 32, f"PLATFORM_INFO 0x{info:x} lacks required bits "
                       f"0x{p.platform_required & ~info:x}")
        if info & p.platform_forbidden:
            grades.add("configuration", 32, f"PLATFORM_INFO 0x{info:x} has forbidden bits "
                       f"0x{info & p.platform_forbidden:x}")

    def _firmware(self, report: AttestationReport, product: str, grades: _Grades) -> None:
        if report.committed_tcb.raw != report.current_tcb.raw and not self.policy.allow_provisional_firmware:
            grades.add("hardware", 32, f"provisional firmware: COMMITTED_TCB {report.committed_tcb.to_json(product)}"
                       f" differs from CURRENT_TCB {report.current_tcb.to_json(product)}")

    @staticmethod
    def _reference_values(report: AttestationReport, chain: VerifiedChain, product: str, ctx: Context,
                          grades: _Grades, used: _Used) -> tuple[int, dict[str, Any]]:
        """The executables claim and the ``cvm`` annotation (what matched, which bounds held)."""
        env = attester_environment(report, chain, product)
        ect = evidence_measurements(report)
        executables = 33
        matched: list[dict[str, Any]] = []
        bounds_seen: list[dict[str, Any]] = []

        def bound(mkey: int, value: int, prov: Provenance, role: str) -> None:
            # the CoRIM decoder admits svn values up to 2**64 - 1 only: a TCB_VERSION always fits
            which = MKEY_TCB[mkey]
            minimum, actual = TcbVersion(value.to_bytes(8, "little")), _tcb_of(report, which)
            met = actual.at_least(minimum, product)
            bounds_seen.append(bound_note(prov, role, mkey, minimum.to_json(product), actual.to_json(product), met))
            if not met:
                grades.add("hardware", 32, f"{which} TCB {actual.components(product)} is below the minimum "
                           f"{minimum.components(product)} of CoRIM {prov.corim_id}")

        for hit in ctx.store.reference_values(env, ctx.now, profiles=CVM_PROFILES):
            conditions, bounds = _split(hit.triple.measurements)
            if conditions and not match_measurements(conditions, ect):
                continue
            if _names_measurement(conditions):
                executables = 2
                matched.append(match_note(hit.provenance, {k for m in conditions if (k := _mkey_int(m)) is not None}))
            if _names_measurement(conditions) or bounds:
                used.append((hit.provenance, "reference-values"))
            for mkey, value in bounds:
                bound(mkey, value, hit.provenance, "reference-values")
        for e in ctx.store.endorsed_values(env, ctx.now, profiles=CVM_PROFILES):
            _, bounds = _split(e.triple.measurements)
            if bounds:
                used.append((e.provenance, "endorsed-values"))
            for mkey, value in bounds:
                bound(mkey, value, e.provenance, "endorsed-values")
        cvm: dict[str, Any] = {
            "platform": "amd-sev-snp", "product": product, "attestation_key": report.key_info.signer,
            "measurements": {"0": report.measurement.hex()},
            "tcb": {which: _tcb_of(report, which).to_json(product) for which in MKEY_TCB.values()}
            | {"current": report.current_tcb.to_json(product)},
            "matched": matched, "tcb_bounds": bounds_seen,
        }
        return executables, cvm


SCHEME = SevSnpScheme()
