"""Intel TDX quotes (``INTEL_TDX``): quote v4/v5 to the Intel SGX Root CA, TCB status from PCS
collateral, TD measurements against CoRIM reference values, REPORT_DATA bound to the session.

Steps, in order (docs/tdx.md has the full rules and the AR4SI table):

1. parse the quote (v4 or v5, TDX 1.0/1.5 body; padding after the signature data ignored)
   -> "could not establish identity from evidence: ...";
2. PCK chain from the quote's certification data to a pinned Intel root (or one the operator
   configured) -> "no trust anchor for evidence: ..."; a certificate not valid at ``now`` or a bad
   signature in it -> "integrity validation failed: bad evidence: ...";
3. quote signature by the attestation key, QE report signature by the PCK, attestation key bound
   in the QE report data -> "integrity validation failed: bad evidence: ...";
4. REPORT_DATA against the session nonce under the scheme's rule (default: the nonce
   zero-padded to 64 bytes) -> "integrity validation failed: bad evidence: ..."; an empty
   session nonce means freshness is not checked, and the result says so;
5. collateral (one dcap-qvl-form document per FMSPC and PCK CA, from the collateral store): each
   piece verified at ``now`` on its own (CRLs, TCB info, QE identity); a piece that fails is
   reported as rejected and not used; a revoked PCK chain is status ``Revoked``;
6. TCB status and advisories (:func:`..collateral.intel.evaluate_tcb`) -> hardware claim;
7. measurements (MRTD, RTMR0-3, MRSEAM, ...) against reference triples for the TDX environment
   -> executables; the DEBUG TD attribute -> configuration and runtime-opaque;
8. SEAM SVN lower bounds (``tdx.seam-svn`` min-svn: TEE_TCB_SVN[1] * 256 + TEE_TCB_SVN[0], the
   TDX module's major version and SVN) from matching reference triples and from endorsed values
   ("firmware SVN n is current", short-lived) -> hardware 32 when one does not hold.

CoRIMs read: those without a profile and those under the CVM firmware profile (docs/cvm-corim.md).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from cryptography import x509

from federation.ar4si import Tier, TrustVector
from federation.ear.model import Appraisal
from federation.errors import MalformedError, UntrustedKeyError, UsageError, VerificationError
from federation.evidence import Evidence

from ..collateral.base import Collateral, CollateralRequest
from ..collateral.intel import (
    NOT_SUPPORTED,
    PCK_LEAF,
    CollateralError,
    IntelCollateral,
    PckInfo,
    QeIdentity,
    Revocations,
    RevokedError,
    TcbInfo,
    TcbResult,
    VerifiedChain,
    accept_crl,
    collateral_request,
    evaluate_tcb,
    parse_collateral,
    parse_pck_info,
    validate_chain,
    verify_qe_identity,
    verify_tcb_info,
)
from ..corim.match import match_measurement
from ..corim.model import Digest, Environment, Measurement, MeasurementValues, RawValue, Svn
from ..corim.profiles import CVM_FIRMWARE_ID, TDX_CLASS
from ..corim.store import Provenance
from ..endorsements import EXTENSION, endorsement_records
from ..evidence.tdx import MEDIA_TYPE, TdReport, TdxQuote, parse_quote, verify_quote
from ..scheme import BadEvidence, Context, SchemeDescriptor, normalize_media_type
from .cvm import CVM_PROFILES, bound_note, match_note

__all__ = ["HARDWARE", "MKEYS", "MKEY_SEAM_SVN", "REPORT_DATA_RULES", "SCHEME", "TDX_ENVIRONMENT", "TdxScheme",
           "seam_svn"]

NAME = "INTEL_TDX"
POLICY_ID = f"policy:{NAME}"
TDX_ENVIRONMENT = Environment(TDX_CLASS)
"""The Attester's environment for reference-value lookups (docs/tdx.md)."""

HARDWARE: Mapping[str, int] = {
    "UpToDate": 2,
    "SWHardeningNeeded": 32,
    "ConfigurationNeeded": 32,
    "ConfigurationAndSWHardeningNeeded": 32,
    "OutOfDate": 32,
    "OutOfDateConfigurationNeeded": 32,
    "Revoked": 96,
    NOT_SUPPORTED: 97,
}
"""TCB status -> AR4SI hardware claim (no TCB status: 0, and the status is at most warning)."""
_CONFIG_NEEDED = frozenset({"ConfigurationNeeded", "ConfigurationAndSWHardeningNeeded", "OutOfDateConfigurationNeeded"})


def _pad(data: bytes, size: int = 64) -> bytes | None:
    return data + bytes(size - len(data)) if len(data) <= size else None


REPORT_DATA_RULES: Mapping[str, Callable[[bytes], bytes | None]] = {
    "raw": _pad,  # the nonce itself, zero-padded to 64 bytes (at most 64 bytes)
    "sha256": lambda n: _pad(hashlib.sha256(n).digest()),
    "sha384": lambda n: _pad(hashlib.sha384(n).digest()),
    "sha512": lambda n: hashlib.sha512(n).digest(),
}
"""How REPORT_DATA must commit to the session nonce: the expected 64 bytes for a nonce."""



def _rtmr(i: int) -> Callable[[TdReport], bytes | None]:
    return lambda b: b.rtmrs[i]


MKEYS: Mapping[str, Callable[[TdReport], bytes | None]] = {
    "tdx.mrtd": lambda b: b.mr_td,
    **{f"tdx.rtmr{i}": _rtmr(i) for i in range(4)},
    "tdx.mrseam": lambda b: b.mr_seam,
    "tdx.mrsignerseam": lambda b: b.mr_signer_seam,
    "tdx.mrconfigid": lambda b: b.mr_config_id,
    "tdx.mrowner": lambda b: b.mr_owner,
    "tdx.mrownerconfig": lambda b: b.mr_owner_config,
    "tdx.mrservicetd": lambda b: b.mr_service_td,
    "tdx.td-attributes": lambda b: b.td_attributes,
    "tdx.xfam": lambda b: b.xfam,
    "tdx.seam-attributes": lambda b: b.seam_attributes,
    "tdx.tee-tcb-svn": lambda b: b.tee_tcb_svn,
}
"""Measurement keys (CoRIM ``mkey`` text) of the TD report fields reference values may constrain."""
MKEY_SEAM_SVN = "tdx.seam-svn"
"""The TDX module's version and SVN as one number: a min-svn on it is a lower bound (grades hardware)."""
_REGISTERS = frozenset({"tdx.mrtd", "tdx.rtmr0", "tdx.rtmr1", "tdx.rtmr2", "tdx.rtmr3", "tdx.mrseam"})
_SHA384 = 7


def _utc(now: datetime) -> datetime:
    return now if now.tzinfo is not None else now.replace(tzinfo=UTC)


def _entry(name: str, value: bytes) -> MeasurementValues:
    """A TD report field as a CoRIM entry: raw value always; a SHA-384 digest for 48-byte registers."""
    digests = (Digest(_SHA384, value),) if len(value) == 48 else None
    return MeasurementValues(digests=digests, raw=RawValue(value))


def seam_svn(body: TdReport) -> int:
    """TEE_TCB_SVN[1] * 256 + TEE_TCB_SVN[0]: the TDX module's major version, then its SVN."""
    return body.tee_tcb_svn[1] << 8 | body.tee_tcb_svn[0]


def _split(measurements: Sequence[Measurement]) -> tuple[list[Measurement], list[int]]:
    """(conditions, SEAM SVN lower bounds) of a triple's measurements."""
    conditions: list[Measurement] = []
    bounds: list[int] = []
    for m in measurements:
        svn = m.mval.svn
        if _mkey_name(m) == MKEY_SEAM_SVN and svn is not None and svn.minimum:
            bounds.append(svn.value)
            rest = replace(m, mval=replace(m.mval, svn=None))
            if rest.mval != MeasurementValues():
                conditions.append(rest)
        else:
            conditions.append(m)
    return conditions, bounds


def _mkey_name(m: Measurement) -> str | None:
    key = m.mkey
    return key.value if key is not None and key.type == "string" and isinstance(key.value, str) else None


@dataclass
class _Collateral:
    """What the collateral contributed, and a note per piece for the result."""

    notes: dict[str, Any] = field(default_factory=dict)
    tcb: TcbResult | None = None
    revoked: str | None = None
    complete: bool = False


@dataclass
class _References:
    """What reference values and endorsed values decided, for the vector and the annotation."""

    approved: bool = False
    constrained: set[str] = field(default_factory=set)
    covered: set[str] = field(default_factory=set)
    matched: list[dict[str, Any]] = field(default_factory=list)
    bounds: list[dict[str, Any]] = field(default_factory=list)

    @property
    def bounds_met(self) -> bool:
        return all(b["met"] for b in self.bounds)

    def claims(self) -> dict[str, Any]:
        return {"constrained": sorted(self.constrained), "matched": sorted(self.covered),
                "unmatched": sorted(self.constrained - self.covered)}


class TdxScheme:
    """The TDX scheme; one instance per policy (debug, REPORT_DATA rule, extra roots)."""

    descriptor = SchemeDescriptor(NAME, frozenset({normalize_media_type(MEDIA_TYPE)}), frozenset({CVM_FIRMWARE_ID}))

    def __init__(self, *, allow_debug: bool = False, report_data: str = "raw",
                 roots: Sequence[x509.Certificate] = ()) -> None:
        if report_data not in REPORT_DATA_RULES:
            raise UsageError(f"unknown REPORT_DATA rule {report_data!r}; known: {', '.join(REPORT_DATA_RULES)}")
        self.allow_debug = allow_debug
        self.report_data = report_data
        self.roots = tuple(roots)

    # -- collateral boundary -----------------------------------------------------------------

    @staticmethod
    def _request(pck: PckInfo) -> CollateralRequest:
        kind, key = collateral_request(pck.fmspc, pck.ca)
        return CollateralRequest(kind, key)

    def collateral_requests(self, evidence: Evidence) -> list[CollateralRequest]:
        """The Intel collateral document for the quote's platform (FMSPC, PCK CA); none if malformed."""
        try:
            quote = parse_quote(evidence.data)
            return [self._request(parse_pck_info(quote.pck_chain[0]))]
        except MalformedError:
            return []

    # -- appraisal -----------------------------------------------------------------------------

    def appraise(self, evidence: Evidence, ctx: Context) -> Mapping[str, Appraisal]:
        now = _utc(ctx.now)
        try:
            quote = parse_quote(evidence.data)
        except MalformedError as exc:
            raise BadEvidence(f"could not establish identity from evidence: {exc.detail}") from exc
        chain = self._pck_chain(quote, now)
        try:
            pck = parse_pck_info(chain.leaf)
        except CollateralError as exc:
            raise BadEvidence(f"could not establish identity from evidence: {exc.detail}") from exc
        try:
            verify_quote(quote, chain.leaf_key)
        except VerificationError as exc:
            raise BadEvidence(f"integrity validation failed: bad evidence: {exc.detail}") from exc
        binding = self._report_data(quote, ctx.nonce)
        found = self._collateral(quote, pck, chain, ctx.collateral.get(self._request(pck)), now)
        used: list[tuple[Provenance, str]] = []
        refs = self._reference_values(quote.body, ctx, now, used)
        vector, reported = self._vector(quote, found, refs)
        claims: dict[str, Any] = {}
        if found.tcb is not None:
            claims.update(found.tcb.to_json())
        claims["collateral"] = found.notes
        claims["report_data"] = binding
        claims["reference_values"] = refs.claims()
        claims["debug"] = {"td_debug": quote.body.debug, "allowed": self.allow_debug}
        annotated = {**quote.to_json(), "pck": pck.to_json(), "root": chain.root_name,
                     "trailing_bytes": quote.trailing, "cvm": self._cvm(quote.body, found, refs)}
        return {NAME: Appraisal.make(reported, vector, (POLICY_ID,), {
            "ear_veraison_annotated_evidence": annotated,
            "ear_veraison_policy_claims": claims,
            EXTENSION: endorsement_records(used),
        })}

    def _pck_chain(self, quote: TdxQuote, now: datetime) -> VerifiedChain:
        try:
            return validate_chain(quote.pck_chain, now, leaf_name=PCK_LEAF, roots=self.roots)
        except UntrustedKeyError as exc:
            raise BadEvidence(f"no trust anchor for evidence: PCK chain: {exc.detail}") from exc
        except VerificationError as exc:
            raise BadEvidence(f"integrity validation failed: bad evidence: PCK chain: {exc.detail}") from exc

    def _report_data(self, quote: TdxQuote, nonce: bytes) -> dict[str, Any]:
        if not nonce:
            return {"rule": self.report_data, "checked": False}
        expected = REPORT_DATA_RULES[self.report_data](nonce)
        if expected is None or expected != quote.body.report_data:
            raise BadEvidence(f"integrity validation failed: bad evidence: REPORT_DATA does not match the session "
                              f"nonce under the {self.report_data!r} rule")
        return {"rule": self.report_data, "checked": True}

    def _collateral(self, quote: TdxQuote, pck: PckInfo, chain: VerifiedChain, found: Collateral | None,
                    now: datetime) -> _Collateral:
        out = _Collateral()
        names = ("root_ca_crl", "pck_crl", "tcb_info", "qe_identity")
        if found is None:
            out.notes = {"source": None, "complete": False, **dict.fromkeys(names, "missing")}
            return out
        out.notes["source"] = found.source
        try:
            doc = parse_collateral(found.data)
        except MalformedError as exc:
            out.notes.update({"complete": False, **dict.fromkeys(names, f"rejected: {exc.detail}")})
            return out
        root_crl = self._crl(out, "root_ca_crl", doc.root_ca_crl, chain.certs[-1], now)
        pck_crl = self._crl(out, "pck_crl", doc.pck_crl, chain.certs[1], now)
        try:
            if root_crl is not None:
                for cert in chain.certs[1:-1]:
                    root_crl.check(cert)
            if pck_crl is not None:
                pck_crl.check(chain.leaf)
        except RevokedError as exc:
            out.revoked = f"PCK chain: {exc.detail}"
        info = self._piece(out, "tcb_info", doc, pck, now, root_crl)
        qe = self._piece(out, "qe_identity", doc, pck, now, root_crl)
        out.complete = all(out.notes[n] == "accepted" for n in names)
        out.notes["complete"] = out.complete
        if out.revoked is not None:
            out.tcb = TcbResult("Revoked", problem=out.revoked)
        elif isinstance(info, TcbInfo):
            out.tcb = evaluate_tcb(info, pck, quote.body, qe if isinstance(qe, QeIdentity) else None,
                                   quote.qe_report)
        return out

    @staticmethod
    def _crl(out: _Collateral, name: str, der: bytes | None, issuer: x509.Certificate, now: datetime
             ) -> Revocations | None:
        if der is None:
            out.notes[name] = "missing"
            return None
        try:
            crl = accept_crl(der, issuer, now)
        except (MalformedError, VerificationError) as exc:
            out.notes[name] = f"rejected: {exc.detail}"
            return None
        out.notes[name] = "accepted"
        return crl

    def _piece(self, out: _Collateral, name: str, doc: IntelCollateral, pck: PckInfo, now: datetime,
               root_crl: Revocations | None) -> TcbInfo | QeIdentity | None:
        raw, sig, chain = (getattr(doc, name), getattr(doc, f"{name}_signature"), getattr(doc, f"{name}_issuer_chain"))
        if raw is None:
            out.notes[name] = "missing"
            return None
        if sig is None or chain is None:
            out.notes[name] = "rejected: no signature or issuer chain"
            return None
        try:
            if name == "tcb_info":
                info = verify_tcb_info(raw, sig, chain, now, roots=self.roots, root_crl=root_crl)
                if info.fmspc != pck.fmspc or info.pce_id != pck.pce_id:
                    raise CollateralError(f"TCB info is for FMSPC {info.fmspc.hex()} / PCE-ID {info.pce_id.hex()}, "
                                          f"the platform is {pck.fmspc.hex()} / {pck.pce_id.hex()}")
                result: TcbInfo | QeIdentity = info
            else:
                result = verify_qe_identity(raw, sig, chain, now, roots=self.roots, root_crl=root_crl)
        except (MalformedError, VerificationError) as exc:
            out.notes[name] = f"rejected: {exc.detail}"
            return None
        out.notes[name] = "accepted"
        return result

    @staticmethod
    def _reference_values(body: TdReport, ctx: Context, now: datetime,
                          used: list[tuple[Provenance, str]]) -> _References:
        """Reference triples for the TDX environment, each a set of conditions on TD report fields.

        A triple applies when every measurement it lists has a known ``tdx.*`` mkey; it matches
        when each is contained in the quote's value. The measurements are approved when MRTD and
        every field any applicable triple constrains are covered by matching triples. A min-svn
        on ``tdx.seam-svn`` is not a condition but a lower bound, applied when the rest of its
        triple matches (or always, when it is alone); endorsed triples add bounds the same way.
        """
        entries = {name: _entry(name, value) for name, get in MKEYS.items() if (value := get(body)) is not None}
        entries[MKEY_SEAM_SVN] = MeasurementValues(svn=Svn(seam_svn(body)))
        out = _References()

        def bound(minimum: int, prov: Provenance, role: str) -> None:
            actual = seam_svn(body)
            out.bounds.append(bound_note(prov, role, MKEY_SEAM_SVN, minimum, actual, actual >= minimum))

        for hit in ctx.store.reference_values(TDX_ENVIRONMENT, now, profiles=CVM_PROFILES):
            ms = hit.triple.measurements
            names = [_mkey_name(m) for m in ms]
            if not ms or any(n is None or n not in entries for n in names):
                continue
            conditions, bounds = _split(ms)
            keys = [n for m in conditions if (n := _mkey_name(m)) is not None]
            out.constrained.update(keys)
            if not all(match_measurement(m, Measurement(entries[n], m.mkey)) for m, n in zip(conditions, keys,
                                                                                              strict=True)):
                continue
            out.covered.update(keys)
            used.append((hit.provenance, "reference-values"))
            if keys:
                out.matched.append(match_note(hit.provenance, keys))
            for minimum in bounds:
                bound(minimum, hit.provenance, "reference-values")
        for e in ctx.store.endorsed_values(TDX_ENVIRONMENT, now, profiles=CVM_PROFILES):
            _, bounds = _split(e.triple.measurements)
            if bounds:
                used.append((e.provenance, "endorsed-values"))
            for minimum in bounds:
                bound(minimum, e.provenance, "endorsed-values")
        out.approved = "tdx.mrtd" in out.covered and out.constrained <= out.covered
        return out

    def _cvm(self, body: TdReport, found: _Collateral, refs: _References) -> dict[str, Any]:
        """The ``cvm`` annotation: registers compared, what matched, the TCB and the bounds, debug."""
        tcb: dict[str, Any] = {"tee_tcb_svn": body.tee_tcb_svn.hex(), "seam_svn": seam_svn(body),
                               "module_major": body.tee_tcb_svn[1], "module_svn": body.tee_tcb_svn[0]}
        if found.tcb is not None:
            tcb["status"] = found.tcb.status
        return {
            "platform": "intel-tdx",
            "measurements": {name: value.hex() for name in sorted(_REGISTERS)
                             if (value := MKEYS[name](body)) is not None},
            "tcb": tcb, "matched": refs.matched, "tcb_bounds": refs.bounds,
            "debug": {"debug": body.debug, "allowed": self.allow_debug},
        }

    def _vector(self, quote: TdxQuote, found: _Collateral, refs: _References) -> tuple[TrustVector, Tier]:
        debug = quote.body.debug
        tcb = found.tcb
        hardware = 0
        if tcb is not None:
            value = HARDWARE[tcb.status]
            # Good news needs complete collateral; bad news counts from whatever was verified.
            hardware = value if value != 2 or found.complete else 0
        if not refs.bounds_met:
            hardware = max(hardware, 32)  # a TDX module older than a CoRIM's minimum: known-vulnerable
        if debug and not self.allow_debug:
            configuration, runtime = 96, 96
        elif tcb is not None and tcb.status in _CONFIG_NEEDED:
            configuration, runtime = 32, 0 if debug else 2
        else:
            configuration, runtime = (0, 0) if debug else (2, 2)
        vector = TrustVector.of({
            "instance-identity": 96 if found.revoked else 2, "configuration": configuration,
            "executables": 2 if refs.approved else 33, "file-system": 0, "hardware": hardware,
            "runtime-opaque": runtime, "storage-opaque": 0, "sourced-data": 0,
        })
        reported = vector.worst_tier()
        if hardware == 0 and reported.severity < Tier.WARNING.severity:
            reported = Tier.WARNING  # an unknown TCB status is never read as up to date
        return vector, reported


SCHEME = TdxScheme()
