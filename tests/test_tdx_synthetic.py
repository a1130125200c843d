"""TDX appraisal on quotes and collateral made here, for the cases no real vector shows.

The real vectors (tests/test_tdx_quote.py, test_tdx_collateral.py, test_tdx_scheme.py) are all
production TDs: no debug TD, no revoked PCK, no ConfigurationNeeded or OutOfDate level that
matches, no reference values. :class:`FakeIntel` (in tests/tdx_fakes.py) is a stand-in PKI with
Intel's names (its root is *not* pinned, so the scheme trusts it only as an operator-configured
root): it issues PCK
certificates with a real SGX extension, signs quotes with the exact layout of v4/v5 quotes, and
signs TCB info, QE identity and CRLs in the dcap-qvl collateral form. Everything the scheme
decides is then exercised from bytes.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from tdx_fakes import COMPS, FMSPC, NONCE, NOW, Body, FakeIntel, _t, cert, level, pem, sgx_extension

from federation.ear.model import Appraisal, Ear
from federation.evidence import Evidence
from federation.keys import SigningKey, TrustAnchor
from verifiers.local.appraiser import LocalAppraiser
from verifiers.local.collateral.base import Collateral, CollateralRequest
from verifiers.local.collateral.intel import COLLATERAL_KIND
from verifiers.local.corim.encode import sign_corim
from verifiers.local.corim.model import (
    ClassMap,
    Comid,
    Corim,
    CorimMeta,
    Digest,
    Environment,
    Measurement,
    MeasurementValues,
    RawValue,
    ReferenceTriple,
    Tagged,
    Triples,
    Validity,
)
from verifiers.local.corim.store import ReferenceValueStore, load_paths
from verifiers.local.evidence.tdx import MEDIA_TYPE
from verifiers.local.roots_intel import INTEL_ROOT_PINS
from verifiers.local.scheme import BadEvidence, Context
from verifiers.local.schemes.tdx import TdxScheme

STATUS_ORDER = ("UpToDate", "SWHardeningNeeded", "ConfigurationNeeded", "ConfigurationAndSWHardeningNeeded",
                "OutOfDate", "OutOfDateConfigurationNeeded", "Revoked")


REQUEST = CollateralRequest(COLLATERAL_KIND, (FMSPC.hex(), "platform"))


def appraise(intel: FakeIntel, quote: bytes, collateral: bytes | None = None, *,
             store: ReferenceValueStore | None = None, nonce: bytes = NONCE, now: datetime = NOW,
             scheme: TdxScheme | None = None) -> Appraisal:
    scheme = scheme or TdxScheme(roots=(intel.root,))
    app = LocalAppraiser([scheme], store or ReferenceValueStore())
    evidence = Evidence(MEDIA_TYPE, quote)
    assert app.collateral_requests(evidence) in ([REQUEST], [])
    found = {REQUEST: Collateral(REQUEST, collateral, "test")} if collateral is not None else {}
    ear: Ear = app.appraise(evidence, nonce, now, collateral=found)
    return ear.submods["INTEL_TDX"]


def direct(intel: FakeIntel, quote: bytes, nonce: bytes, scheme: TdxScheme | None = None) -> dict[str, Any]:
    """The scheme's policy claims, or the problem, for nonces an EAR cannot carry (empty, > 64 bytes)."""
    scheme = scheme or TdxScheme(roots=(intel.root,))
    try:
        result = scheme.appraise(Evidence(MEDIA_TYPE, quote), Context(nonce, NOW, ReferenceValueStore()))
    except BadEvidence as exc:
        return {"problem": exc.problem}
    return claims(result["INTEL_TDX"])


def vector(a: Appraisal) -> dict[str, int]:
    assert a.trust_vector is not None
    return a.trust_vector.as_dict()


def claims(a: Appraisal) -> dict[str, Any]:
    out: dict[str, Any] = a.extensions["ear_veraison_policy_claims"]
    return out


@pytest.fixture(scope="module")
def intel() -> FakeIntel:
    return FakeIntel()


# -- the stand-in root: trusted only when configured -----------------------------------------------

def test_the_stand_in_root_is_not_pinned(intel: FakeIntel) -> None:
    from verifiers.local.roots_intel import spki_sha256

    assert spki_sha256(intel.root) not in INTEL_ROOT_PINS
    a = appraise(intel, intel.quote(), scheme=TdxScheme())
    assert set(vector(a).values()) == {99}
    assert claims(a)["problem"].startswith("no trust anchor for evidence: PCK chain: root 'Intel SGX Root CA' has a "
                                           "public key that matches no pinned or configured root")


def test_a_good_quote_with_full_collateral_and_no_reference_values(intel: FakeIntel) -> None:
    a = appraise(intel, intel.quote(), intel.collateral())
    assert vector(a) == {"instance-identity": 2, "configuration": 2, "executables": 33, "file-system": 0,
                         "hardware": 2, "runtime-opaque": 2, "storage-opaque": 0, "sourced-data": 0}
    assert a.status.label == "warning"  # executables unrecognized
    c = claims(a)
    assert (c["tcb_status"], c["advisory_ids"], c["collateral"]["complete"]) == ("UpToDate", [], True)
    assert c["report_data"] == {"rule": "raw", "checked": True}


@pytest.mark.parametrize("version", [4, 5])
def test_both_quote_versions(intel: FakeIntel, version: int) -> None:
    a = appraise(intel, intel.quote(version=version), intel.collateral())
    assert vector(a)["hardware"] == 2
    assert a.extensions["ear_veraison_annotated_evidence"]["version"] == version


# -- TCB status -> AR4SI ----------------------------------------------------------------------------

@pytest.mark.parametrize(("status", "hardware", "configuration", "tier"), [
    ("UpToDate", 2, 2, "warning"),
    ("SWHardeningNeeded", 32, 2, "warning"),
    ("ConfigurationNeeded", 32, 32, "warning"),
    ("ConfigurationAndSWHardeningNeeded", 32, 32, "warning"),
    ("OutOfDate", 32, 2, "warning"),
    ("OutOfDateConfigurationNeeded", 32, 32, "warning"),
    ("Revoked", 96, 2, "contraindicated"),
])
def test_tcb_status_mapping(intel: FakeIntel, status: str, hardware: int, configuration: int, tier: str) -> None:
    advisories = ("INTEL-SA-00837",) if status != "UpToDate" else ()
    a = appraise(intel, intel.quote(), intel.collateral([level(status, advisories=advisories)]))
    v = vector(a)
    assert (v["hardware"], v["configuration"], a.status.label) == (hardware, configuration, tier)
    assert (claims(a)["tcb_status"], claims(a)["advisory_ids"]) == (status, list(advisories))


def test_the_first_level_the_platform_reaches_applies(intel: FakeIntel) -> None:
    higher = tuple(c + 1 for c in COMPS)
    levels = [level("OutOfDate", advisories=("INTEL-SA-00001",)),
              level("UpToDate", sgx=higher)]  # listed second; Intel's order puts it first, but it is not reached
    a = appraise(intel, intel.quote(), intel.collateral(levels))
    assert (claims(a)["tcb_status"], claims(a)["advisory_ids"]) == ("OutOfDate", ["INTEL-SA-00001"])


def test_no_matching_level_is_not_supported(intel: FakeIntel) -> None:
    higher = tuple(c + 1 for c in COMPS)
    a = appraise(intel, intel.quote(), intel.collateral([level("UpToDate", sgx=higher)]))
    assert (vector(a)["hardware"], a.status.label, claims(a)["tcb_status"]) == (97, "contraindicated", "NotSupported")
    assert claims(a)["tcb_problem"].startswith("no matching TCB level")


def test_module_and_qe_statuses_converge(intel: FakeIntel) -> None:
    module = [{"tcb": {"isvsvn": 9}, "tcbDate": "2025-01-01T00:00:00Z", "tcbStatus": "UpToDate"},
              {"tcb": {"isvsvn": 2}, "tcbDate": "2024-01-01T00:00:00Z", "tcbStatus": "OutOfDate",
               "advisoryIDs": ["INTEL-SA-01111"]}]
    tcb = intel.tcb_info([level("ConfigurationNeeded", advisories=("INTEL-SA-00615",))], module_levels=module)
    a = appraise(intel, intel.quote(), intel.collateral(tcb=tcb))
    c = claims(a)
    assert (c["platform_status"], c["module_status"], c["qe_status"]) == ("ConfigurationNeeded", "OutOfDate",
                                                                          "UpToDate")
    assert c["tcb_status"] == "OutOfDateConfigurationNeeded"
    assert c["advisory_ids"] == ["INTEL-SA-00615", "INTEL-SA-01111"]
    # an old QE: the QE identity's OutOfDate level applies
    a = appraise(intel, intel.quote(qe_isvsvn=2), intel.collateral([level("UpToDate")]))
    assert (claims(a)["qe_status"], claims(a)["tcb_status"], claims(a)["advisory_ids"]) == (
        "OutOfDate", "OutOfDate", ["INTEL-SA-00999"])


def test_tdx_components_skip_the_module_svn_when_a_module_version_is_reported(intel: FakeIntel) -> None:
    # TEE_TCB_SVN = 06 01 03: the level asks 9 for component 0, which is the module's own SVN,
    # checked against the TDX_01 module identity instead (Intel QVL, go-tdx-guest).
    a = appraise(intel, intel.quote(), intel.collateral([level("UpToDate", tdx=(9, 0, 3))]))
    assert claims(a)["tcb_status"] == "UpToDate"
    a = appraise(intel, intel.quote(), intel.collateral([level("UpToDate", tdx=(0, 0, 4))]))
    assert claims(a)["tcb_status"] == "NotSupported"


def test_identity_mismatches_are_not_supported(intel: FakeIntel) -> None:
    a = appraise(intel, intel.quote(Body(mr_signer_seam=b"\x01" * 48)), intel.collateral())
    assert claims(a)["tcb_problem"] == "MRSIGNERSEAM is not the TDX module signer the TCB info names"
    a = appraise(intel, intel.quote(Body(tee_tcb_svn=bytes([6, 2, 3]) + bytes(13))), intel.collateral())
    assert claims(a)["tcb_problem"] == "no TDX module identity TDX_02 in the TCB info"
    a = appraise(intel, intel.quote(qe_mrsigner=b"\x02" * 32), intel.collateral())
    assert claims(a)["tcb_problem"] == "QE MRSIGNER is not the one the QE identity names"
    assert vector(a)["hardware"] == 97


def test_a_revoked_pck_is_revoked(intel: FakeIntel) -> None:
    a = appraise(intel, intel.quote(), intel.collateral(revoked_pck=True))
    v = vector(a)
    assert (v["hardware"], v["instance-identity"], a.status.label) == (96, 96, "contraindicated")
    assert claims(a)["tcb_status"] == "Revoked"
    assert "is revoked" in claims(a)["tcb_problem"]


# -- collateral completeness and validity ------------------------------------------------------------

@pytest.mark.parametrize("drop", ["pck_crl", "root_ca_crl", "qe_identity", "qe_identity_signature"])
def test_incomplete_collateral_never_affirms_the_tcb(intel: FakeIntel, drop: str) -> None:
    a = appraise(intel, intel.quote(), intel.collateral(drop=(drop,)))
    c = claims(a)
    assert c["tcb_status"] == "UpToDate" and c["collateral"]["complete"] is False
    assert vector(a)["hardware"] == 0 and a.status.label == "warning"


def test_bad_news_counts_from_incomplete_collateral(intel: FakeIntel) -> None:
    a = appraise(intel, intel.quote(), intel.collateral([level("OutOfDate")], drop=("pck_crl",)))
    assert vector(a)["hardware"] == 32


def test_no_collateral_no_tcb_status(intel: FakeIntel) -> None:
    a = appraise(intel, intel.quote())
    c = claims(a)
    assert "tcb_status" not in c and "advisory_ids" not in c
    assert c["collateral"] == {"source": None, "complete": False, "root_ca_crl": "missing", "pck_crl": "missing",
                               "tcb_info": "missing", "qe_identity": "missing"}
    assert vector(a)["hardware"] == 0 and a.status.label == "warning"


def test_collateral_expires(intel: FakeIntel) -> None:
    later = NOW + timedelta(days=40)
    a = appraise(intel, intel.quote(), intel.collateral(), now=later)
    notes = claims(a)["collateral"]
    assert notes["tcb_info"].startswith("rejected: TCB info is not current at 2026-07-11T00:00:00Z")
    assert notes["qe_identity"].startswith("rejected: QE identity is not current")
    assert notes["pck_crl"].startswith("rejected: CRL of 'Intel SGX PCK Platform CA' is not current")
    assert "tcb_status" not in claims(a) and vector(a)["hardware"] == 0


def test_collateral_for_another_platform_is_not_used(intel: FakeIntel) -> None:
    tcb = intel.tcb_info([level("UpToDate")], fmspc=bytes.fromhex("112233445566"))
    a = appraise(intel, intel.quote(), intel.collateral(tcb=tcb))
    assert claims(a)["collateral"]["tcb_info"].startswith("rejected: TCB info is for FMSPC 112233445566")
    assert vector(a)["hardware"] == 0


def test_tampered_collateral_is_rejected(intel: FakeIntel) -> None:
    doc = json.loads(intel.collateral())
    doc["tcb_info"] = doc["tcb_info"].replace('"UpToDate"', '"UpToDate" ')
    a = appraise(intel, intel.quote(), json.dumps(doc).encode())
    assert claims(a)["collateral"]["tcb_info"] == "rejected: TCB info: signature by 'Intel SGX TCB Signing' does not " \
                                                  "verify"
    a = appraise(intel, intel.quote(), b"{not json")
    assert claims(a)["collateral"]["tcb_info"].startswith("rejected: collateral: not JSON")
    assert vector(a)["hardware"] == 0


def test_collateral_signed_under_another_root_is_rejected(intel: FakeIntel) -> None:
    other = FakeIntel()
    a = appraise(intel, intel.quote(), other.collateral())
    notes = claims(a)["collateral"]
    assert notes["tcb_info"].startswith("rejected: root 'Intel SGX Root CA' has a public key that matches no pinned")
    assert notes["root_ca_crl"] == "rejected: CRL of 'Intel SGX Root CA' has a bad signature"


# -- debug, REPORT_DATA ------------------------------------------------------------------------------

def test_a_debug_td_is_contraindicated_by_default(intel: FakeIntel) -> None:
    body = Body(td_attributes=(1 | 1 << 28).to_bytes(8, "little"))
    a = appraise(intel, intel.quote(body), intel.collateral())
    v = vector(a)
    assert (v["configuration"], v["runtime-opaque"], a.status.label) == (96, 96, "contraindicated")
    a = appraise(intel, intel.quote(body), intel.collateral(), scheme=TdxScheme(allow_debug=True, roots=(intel.root,)))
    v = vector(a)
    assert (v["configuration"], v["runtime-opaque"], v["hardware"]) == (0, 0, 2)
    assert claims(a)["debug"] == {"td_debug": True, "allowed": True}


@pytest.mark.parametrize(("rule", "report_data"), [
    ("raw", NONCE + bytes(32)),
    ("sha256", hashlib.sha256(NONCE).digest() + bytes(32)),
    ("sha384", hashlib.sha384(NONCE).digest() + bytes(16)),
    ("sha512", hashlib.sha512(NONCE).digest()),
], ids=["raw", "sha256", "sha384", "sha512"])
def test_report_data_rules(intel: FakeIntel, rule: str, report_data: bytes) -> None:
    quote = intel.quote(Body(report_data=report_data))
    scheme = TdxScheme(report_data=rule, roots=(intel.root,))
    assert claims(appraise(intel, quote, scheme=scheme))["report_data"] == {"rule": rule, "checked": True}
    other = appraise(intel, quote, scheme=scheme, nonce=b"\x00" * 32)
    assert claims(other)["problem"] == ("integrity validation failed: bad evidence: REPORT_DATA does not match the "
                                        f"session nonce under the {rule!r} rule")
    assert direct(intel, quote, b"", scheme)["report_data"] == {"rule": rule, "checked": False}


def test_a_nonce_longer_than_report_data_cannot_bind_raw(intel: FakeIntel) -> None:
    assert direct(intel, intel.quote(Body(report_data=bytes(64))), bytes(65))["problem"].startswith(
        "integrity validation failed: bad evidence: REPORT_DATA does not match")


def test_an_unknown_rule_is_a_usage_error() -> None:
    from federation.errors import UsageError

    with pytest.raises(UsageError):
        TdxScheme(report_data="sha1")


# -- PCK chain validity --------------------------------------------------------------------------------

def test_an_expired_pck_fails_with_a_reason(intel: FakeIntel) -> None:
    old = FakeIntel()
    old.pck = old.pck_cert(not_before=NOW - timedelta(days=30), not_after=NOW - timedelta(days=1))
    a = appraise(old, old.quote())
    assert claims(a)["problem"] == (
        "integrity validation failed: bad evidence: PCK chain: certificate 'Intel SGX PCK Certificate' is not valid "
        f"at 2026-06-01T00:00:00Z (valid {_t(NOW - timedelta(days=30))} to {_t(NOW - timedelta(days=1))})")


def test_a_pck_signed_by_another_ca_fails(intel: FakeIntel) -> None:
    other = FakeIntel()
    chain = pem(other.pck, intel.ca, intel.root)  # right names, wrong signer
    a = appraise(intel, other.quote(chain=chain))
    assert claims(a)["problem"] == ("integrity validation failed: bad evidence: PCK chain: certificate "
                                    "'Intel SGX PCK Certificate' is not signed by 'Intel SGX PCK Platform CA'")


# -- reference values ---------------------------------------------------------------------------------

ENDORSER = SigningKey.generate("ES256")
TDX_ENV = Environment(ClassMap(vendor="Intel Corporation", model="TDX"))


def ref(name: str, value: bytes, *, digest: bool = True, mask: bytes | None = None) -> Measurement:
    mval = (MeasurementValues(digests=(Digest(7, value),)) if digest
            else MeasurementValues(raw=RawValue(value, mask)))
    return Measurement(mval, Tagged("string", name))


def store(tmp: Path, *triples: tuple[Measurement, ...], env: Environment = TDX_ENV) -> ReferenceValueStore:
    corim = Corim("tdx-firmware", (Comid("tdx-refs", Triples(reference=tuple(
        ReferenceTriple(env, t) for t in triples))),))
    path = tmp / "tdx.cbor"
    path.write_bytes(sign_corim(corim, ENDORSER, CorimMeta("TDX Firmware Vendor", None,
                                                           Validity(NOW - timedelta(days=1), NOW + timedelta(days=1)))))
    return load_paths([path], [TrustAnchor((ENDORSER.public,))], NOW)


def firmware() -> tuple[Measurement, ...]:
    b = Body()
    return (ref("tdx.mrtd", b.mr_td), ref("tdx.rtmr0", b.rtmrs[0]), ref("tdx.mrseam", b.mr_seam, digest=False),
            ref("tdx.td-attributes", bytes(8), digest=False, mask=b"\x01" + bytes(7)),  # not debug
            ref("tdx.xfam", b.xfam, digest=False))


def test_matching_reference_values_affirm(intel: FakeIntel, tmp_path: Path) -> None:
    a = appraise(intel, intel.quote(), intel.collateral(), store=store(tmp_path, firmware()))
    assert (vector(a)["executables"], a.status.label) == (2, "affirming")
    refs = claims(a)["reference_values"]
    assert refs["matched"] == refs["constrained"] == sorted(
        ["tdx.mrtd", "tdx.rtmr0", "tdx.mrseam", "tdx.td-attributes", "tdx.xfam"])
    (record,) = a.extensions["ear_ratsfed_endorsements"]
    assert (record["role"], record["corim_id"], record["signer"]) == ("reference-values", "tdx-firmware",
                                                                      "TDX Firmware Vendor")


def test_one_of_several_acceptable_measurements(intel: FakeIntel, tmp_path: Path) -> None:
    other = (ref("tdx.mrtd", b"\x02" * 48), ref("tdx.rtmr0", b"\x20" * 48))
    s = store(tmp_path, other, firmware())
    assert vector(appraise(intel, intel.quote(), intel.collateral(), store=s))["executables"] == 2


@pytest.mark.parametrize("field_name", ["mr_td", "mr_seam", "xfam"])
def test_a_mismatch_is_unrecognized(intel: FakeIntel, tmp_path: Path, field_name: str) -> None:
    b = Body()
    value = getattr(b, field_name)
    setattr(b, field_name, bytes([value[0] ^ 1]) + value[1:])
    a = appraise(intel, intel.quote(b), intel.collateral(), store=store(tmp_path, firmware()))
    assert (vector(a)["executables"], a.status.label) == (33, "warning")
    assert a.extensions["ear_ratsfed_endorsements"] == []


def test_every_constrained_register_must_be_covered(intel: FakeIntel, tmp_path: Path) -> None:
    kernel = (ref("tdx.rtmr1", b"\x99" * 48), ref("tdx.rtmr2", b"\x98" * 48))  # another kernel
    a = appraise(intel, intel.quote(), intel.collateral(), store=store(tmp_path, firmware(), kernel))
    assert vector(a)["executables"] == 33
    assert claims(a)["reference_values"]["unmatched"] == ["tdx.rtmr1", "tdx.rtmr2"]


def test_mrtd_must_be_covered(intel: FakeIntel, tmp_path: Path) -> None:
    a = appraise(intel, intel.quote(), intel.collateral(), store=store(tmp_path, (ref("tdx.rtmr0", b"\x10" * 48),)))
    assert vector(a)["executables"] == 33


def test_reference_values_for_another_environment_are_not_used(intel: FakeIntel, tmp_path: Path) -> None:
    snp = Environment(ClassMap(vendor="AMD", model="SEV-SNP"))
    a = appraise(intel, intel.quote(), intel.collateral(), store=store(tmp_path, firmware(), env=snp))
    assert vector(a)["executables"] == 33 and claims(a)["reference_values"]["constrained"] == []


def test_a_debug_td_matching_its_reference_values_is_still_contraindicated(intel: FakeIntel, tmp_path: Path) -> None:
    body = Body(td_attributes=(1 | 1 << 28).to_bytes(8, "little"))
    refs = (ref("tdx.mrtd", body.mr_td),)
    a = appraise(intel, intel.quote(body), intel.collateral(), store=store(tmp_path, refs))
    assert vector(a)["executables"] == 2 and a.status.label == "contraindicated"


def test_a_self_signed_pck_is_not_a_chain(intel: FakeIntel) -> None:
    alone = cert("Intel SGX PCK Certificate", intel.pck_key, "Intel SGX PCK Certificate", intel.pck_key, ca=True,
                 extension=sgx_extension(FMSPC, COMPS, 11))
    a = appraise(intel, intel.quote(chain=pem(alone)), scheme=TdxScheme(roots=(alone,)))
    assert claims(a)["problem"] == ("no trust anchor for evidence: PCK chain: 'Intel SGX PCK Certificate' is "
                                    "self-signed: a chain needs an issuer")
