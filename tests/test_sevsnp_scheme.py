"""The SEVSNP scheme of the local appraiser (verifiers/local/schemes/sevsnp.py).

Real vectors (../shared/vectors/sev-snp, read in place) at the times their SOURCES.md names:
the go-sev-guest Milan v2 report with vcek.testcer and trust/ask_ark_milan.pem at 2024-01-01
(DEBUG set: contraindicated by default, passes with debug allowed), and the veraison Genoa v3
TSM report whose auxblob carries VCEK, ASK and ARK at 2026-01-01 (anchored on the pinned ARK,
not on the auxblob's). Both reports carry a fixed REPORT_DATA, so the session nonce passed here
*is* that REPORT_DATA (the default binding: REPORT_DATA == nonce zero-padded to 64 bytes).

Everything no vector covers (Turin and report version 5, VLEK, CMW collections, forged and
unpinned roots, TCB minimums, policy rules) uses reports and chains from the forge in
test_sevsnp_amd.py, trusted through an operator-configured root.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import cbor2
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from test_sevsnp_amd import (
    GENOA_SPL,
    TRUST,
    TURIN_SPL,
    TURIN_TCB,
    VCEK_MILAN,
    Chain,
    ReportSpec,
    ca_cert,
    chain,
    ec_key,
    make_crl,
    vek_cert,
)
from test_sevsnp_report import GENOA_TSM, MILAN

from federation.ar4si import Tier
from federation.ear.model import Appraisal
from federation.ear.token import verify_ear
from federation.errors import MalformedError, UsageError
from federation.evidence import Evidence
from federation.keys import SigningKey
from verifiers.local.appraiser import LocalAppraiser
from verifiers.local.backend import LocalBackend
from verifiers.local.collateral.amd import TrustedRoots, load_certificates
from verifiers.local.collateral.base import Collateral, CollateralRequest, resolve
from verifiers.local.collateral.folder import FolderStore
from verifiers.local.corim.encode import encode_corim
from verifiers.local.corim.model import (
    ClassMap,
    Comid,
    Corim,
    Digest,
    EndorsedTriple,
    Environment,
    Measurement,
    MeasurementValues,
    RawValue,
    ReferenceTriple,
    Svn,
    Tagged,
    Triples,
    Validity,
)
from verifiers.local.corim.signed import verify_corim
from verifiers.local.corim.store import ReferenceValueStore
from verifiers.local.evidence import cmw
from verifiers.local.evidence import sevsnp as snp
from verifiers.local.scheme import BadEvidence, Context
from verifiers.local.schemes import BUILTIN
from verifiers.local.schemes.sevsnp import (
    CLASS_VCEK,
    CLASS_VLEK,
    NAME,
    SCHEME,
    SevSnpScheme,
    SnpPolicy,
    attester_environment,
    evidence_measurements,
)

MILAN_AT = datetime(2024, 1, 1, tzinfo=UTC)
GENOA_AT = datetime(2026, 1, 1, tzinfo=UTC)
NOW = datetime(2026, 6, 1, tzinfo=UTC)
MILAN_EV = Evidence(snp.MEDIA_TYPE_REPORT, MILAN.read_bytes())
MILAN_RD = MILAN.read_bytes()[0x50:0x90]
MILAN_MEASUREMENT = MILAN.read_bytes()[0x90:0xC0]
GENOA_EV = Evidence(snp.MEDIA_TYPE_TSM_CBOR, GENOA_TSM.read_bytes())
GENOA_RD = b"MIDBNH28iioisjPyxxxxxxxxxxxxxxxx" * 2
GENOA_MEASUREMENT = bytes.fromhex("7699e6ac12ccdfd1dfac70e649ce1f046cb2afbb003438f4"
                                  "cdddfe2ccbe182fa5ffbe8dcdb930454324e10c52c788980")
DEBUG_OK = SCHEME.with_policy(allow_debug=True)
NONCE = hashlib.sha256(b"session").digest()
GENOA_TCB = bytes([10, 0, 0, 0, 0, 0, 23, 84])


def collateral(scheme: SevSnpScheme, evidence: Evidence, paths: Sequence[Path]
               ) -> Mapping[CollateralRequest, Collateral]:
    return asyncio.run(resolve(FolderStore(list(paths)), scheme.collateral_requests(evidence)))


MILAN_COLLATERAL = collateral(SCHEME, MILAN_EV, [VCEK_MILAN, TRUST / "ask_ark_milan.pem"])


def appraise(scheme: SevSnpScheme, evidence: Evidence, nonce: bytes, at: datetime, *,
             store: ReferenceValueStore | None = None,
             found: Mapping[CollateralRequest, Collateral] | None = None) -> Appraisal:
    ctx = Context(nonce, at, store if store is not None else ReferenceValueStore(), found or {})
    result = scheme.appraise(evidence, ctx)
    assert list(result) == [NAME]
    return result[NAME]


def problem(scheme: SevSnpScheme, evidence: Evidence, nonce: bytes, at: datetime, **kw: Any) -> str:
    with pytest.raises(BadEvidence) as info:
        appraise(scheme, evidence, nonce, at, **kw)
    return info.value.problem


def vector(a: Appraisal) -> dict[str, int]:
    assert a.trust_vector is not None
    return a.trust_vector.as_dict()


def annotated(a: Appraisal) -> dict[str, Any]:
    doc = a.extensions["ear_veraison_annotated_evidence"]
    assert isinstance(doc, dict)
    return doc


# -- CoRIMs ------------------------------------------------------------------------------------------


def guest(measurement: bytes, **values: Any) -> Measurement:
    return Measurement(MeasurementValues(digests=(Digest(7, measurement),), **values), Tagged("uint", 0))


def tcb_min(mkey: int, raw: bytes) -> Measurement:
    return Measurement(MeasurementValues(svn=Svn(int.from_bytes(raw, "little"), minimum=True)), Tagged("uint", mkey))


def store_of(*reference: ReferenceTriple, endorsed: Sequence[EndorsedTriple] = (),
             validity: Validity | None = None, at: datetime = NOW, corim_id: str = "snp-firmware"
             ) -> ReferenceValueStore:
    corim = Corim(corim_id, (Comid("snp-refs", Triples(reference=tuple(reference), endorsed=tuple(endorsed))),),
                  rim_validity=validity)
    store = ReferenceValueStore()
    store.add(verify_corim(encode_corim(corim), [], at, trust_unsigned=True))
    return store


def refs(*measurements: bytes, cls: Tagged = CLASS_VCEK, extra: Sequence[Measurement] = (),
         instance: Tagged | None = None) -> list[ReferenceTriple]:
    """One reference triple per acceptable measurement (e.g. one per vCPU count)."""
    return [ReferenceTriple(Environment(ClassMap(cls), instance=instance), (guest(m), *extra)) for m in measurements]


# -- forged evidence ---------------------------------------------------------------------------------


@dataclass
class Forged:
    evidence: Evidence
    roots: TrustedRoots
    chain: Chain
    vek: x509.Certificate
    spec: ReportSpec


PRODUCT_SPECS: dict[str, dict[str, Any]] = {
    "Genoa": {"cpuid": bytes([0x19, 0x11, 0x01]), "current_tcb": GENOA_TCB, "spl": GENOA_SPL, "name": "Genoa",
              "chip": bytes(range(64, 128))},
    "Milan": {"cpuid": bytes([0x19, 0x01, 0x01]), "current_tcb": bytes([3, 0, 0, 0, 0, 0, 8, 115]),
              "spl": {"bl": 3, "tee": 0, "snp": 8, "ucode": 115}, "name": "Milan-B0", "chip": bytes(range(64))},
    "Turin": {"cpuid": bytes([0x1A, 0x02, 0x00]), "current_tcb": TURIN_TCB, "spl": TURIN_SPL, "name": "Turin-B0",
              "chip": bytes(range(1, 9)) + bytes(56)},
}


def forge(product: str = "Genoa", *, kind: str = "vcek", envelope: str = "tsm", carry: Sequence[str] = ("vek", "inter",
          "ark"), vek_changes: Mapping[str, Any] | None = None, chain_label: str = "forged", **spec: Any) -> Forged:
    p = PRODUCT_SPECS[product]
    c = chain(product, chain_label)
    key = ec_key(f"{product}-{kind}")
    base: dict[str, Any] = {"cpuid": p["cpuid"], "current_tcb": p["current_tcb"], "chip_id": p["chip"],
                            "report_data": NONCE.ljust(64, b"\x00")}
    if kind == "vlek":
        base |= {"key_info": 1 << 2, "chip_id": bytes(64)}
    s = ReportSpec(**(base | spec))
    reported = s.reported_tcb or s.current_tcb
    if product == "Turin":
        spl = {"fmc": reported[0], "bl": reported[1], "tee": reported[2], "snp": reported[3], "ucode": reported[7]}
    else:
        spl = {"bl": reported[0], "tee": reported[1], "snp": reported[6], "ucode": reported[7]}
    hwid = p["chip"][:8] if product == "Turin" else p["chip"]
    vek_args: dict[str, Any] = {"product_name": p["name"] if kind == "vcek" else product, "spl": spl}
    vek_args |= {"hwid": hwid} if kind == "vcek" else {"csp_id": "CN=cloud.example"}
    vek_args |= dict(vek_changes or {})
    vek = vek_cert(c, kind, key, **vek_args)
    report = s.signed(key)
    inter = c.ask if kind == "vcek" else c.asvk
    pem = {"vek": vek, "inter": inter, "ark": c.ark}
    if envelope == "tsm":
        roles = {"vek": kind, "inter": "ask", "ark": "ark"}
        table = snp.encode_cert_table({roles[k]: pem[k].public_bytes(serialization.Encoding.PEM) for k in carry})
        data = cbor2.dumps({"provider": "sev_guest", "outblob": report, "auxblob": table})
        ev = Evidence(snp.MEDIA_TYPE_TSM_CBOR, data)
    elif envelope == "cmw":
        records = [("report", cmw.Record(snp.MEDIA_TYPE_REPORT, report))]
        if carry:
            records.append(("chain", cmw.Record("application/pem-certificate-chain", c.pem(*(pem[k] for k in carry)))))
        ev = Evidence(snp.MEDIA_TYPE_CMW_CBOR, cmw.encode_cbor(cmw.Collection(tuple(records), snp.COLLECTION_TYPE)))
    else:
        ev = Evidence(snp.MEDIA_TYPE_REPORT, report)
    return Forged(ev, c.roots, c, vek, s)


def with_roots(f: Forged, scheme: SevSnpScheme = SCHEME) -> SevSnpScheme:
    return SevSnpScheme(scheme.policy, f.roots)


# -- the scheme as data --------------------------------------------------------------------------------


def test_the_scheme_is_builtin_and_routes_its_media_types() -> None:
    assert BUILTIN[NAME] is SCHEME
    appraiser = LocalAppraiser([SCHEME], ReferenceValueStore())
    for mt in (snp.MEDIA_TYPE_REPORT, snp.MEDIA_TYPE_TSM_CBOR, snp.MEDIA_TYPE_TSM_JSON,
               snp.MEDIA_TYPE_TSM_JSON_VERAISON, snp.MEDIA_TYPE_CMW_CBOR, snp.MEDIA_TYPE_CMW_JSON,
               "application/cmw+json;cmwc_t=" + snp.COLLECTION_TYPE):
        assert appraiser.route(mt) is SCHEME
    with pytest.raises(MalformedError, match="unsupported"):
        appraiser.route("application/cmw+cbor")  # a bare CMW could be anything: not routed here
    assert SCHEME.descriptor.corim_profiles == frozenset({"tag:github.com,2026:rats-federation/cvm-firmware#1.0.0"})


def test_policy_validation() -> None:
    for bad in ({"report_data": "nonce"}, {"product": "Venice"}, {"max_vmpl": 4}, {"min_abi": (1, 256)},
                {"platform_required": 1, "platform_forbidden": 1}):
        with pytest.raises(UsageError):
            SnpPolicy(**bad)


# -- the vectors ---------------------------------------------------------------------------------------


def test_milan_is_contraindicated_under_the_default_no_debug_policy() -> None:
    a = appraise(SCHEME, MILAN_EV, MILAN_RD, MILAN_AT, found=MILAN_COLLATERAL)
    assert a.status is Tier.CONTRAINDICATED
    assert vector(a) == {"instance-identity": 2, "configuration": 96, "executables": 33, "file-system": 0,
                         "hardware": 2, "runtime-opaque": 2, "storage-opaque": 0, "sourced-data": 0}
    assert a.extensions["ear_veraison_policy_claims"] == {
        "findings": ["guest policy allows debugging (the host can read guest memory)"]}
    doc = annotated(a)
    assert doc["product"] == "Milan" and doc["chain"]["ark_trusted_by"] == "pinned"
    assert doc["chain"]["extensions"]["product_name"] == "Milan-B0"
    assert doc["report_data"] == {"rule": "raw", "binding": "REPORT_DATA == nonce zero-padded to 64 bytes",
                                  "checked": True}


def test_milan_passes_with_debug_allowed_and_a_corim_naming_its_measurement() -> None:
    unrecognized = appraise(DEBUG_OK, MILAN_EV, MILAN_RD, MILAN_AT, found=MILAN_COLLATERAL)
    assert unrecognized.status is Tier.WARNING and vector(unrecognized)["executables"] == 33
    assert "ear_veraison_policy_claims" not in unrecognized.extensions
    store = store_of(*refs(b"\x00" * 48, MILAN_MEASUREMENT), at=MILAN_AT)
    a = appraise(DEBUG_OK, MILAN_EV, MILAN_RD, MILAN_AT, store=store, found=MILAN_COLLATERAL)
    assert a.status is Tier.AFFIRMING
    assert vector(a) == {"instance-identity": 2, "configuration": 2, "executables": 2, "file-system": 0,
                         "hardware": 2, "runtime-opaque": 2, "storage-opaque": 0, "sourced-data": 0}
    [record] = a.extensions["ear_ratsfed_endorsements"]
    assert (record["role"], record["corim_id"], record["comid_id"]) == ("reference-values", "snp-firmware", "snp-refs")
    assert annotated(a)["measurement_recognized"] is True


def test_milan_needs_its_certificates_from_collateral() -> None:
    text = problem(DEBUG_OK, MILAN_EV, MILAN_RD, MILAN_AT)
    assert text.startswith("no trust anchor for evidence: no VCEK certificate")
    only_vcek = collateral(SCHEME, MILAN_EV, [VCEK_MILAN])
    assert problem(DEBUG_OK, MILAN_EV, MILAN_RD, MILAN_AT, found=only_vcek).startswith(
        "no trust anchor for evidence: amd: no ASK certificate")


def test_milan_outside_the_vcek_validity_fails_saying_so() -> None:
    text = problem(DEBUG_OK, MILAN_EV, MILAN_RD, datetime(2030, 1, 1, tzinfo=UTC), found=MILAN_COLLATERAL)
    assert text == ("integrity validation failed: bad evidence: amd: VCEK certificate is not valid at "
                    "2030-01-01T00:00:00+00:00 (valid 2022-09-24T00:55:28+00:00 to 2029-09-24T00:55:28+00:00)")


def test_genoa_tsm_report_verifies_on_the_pinned_ark() -> None:
    a = appraise(SCHEME, GENOA_EV, GENOA_RD, GENOA_AT)
    assert a.status is Tier.WARNING and vector(a)["hardware"] == 2 and vector(a)["configuration"] == 2
    doc = annotated(a)
    assert (doc["product"], doc["chain"]["ark_trusted_by"]) == ("Genoa", "pinned")
    assert doc["report"]["reported_tcb"]["snp"] == 23
    a = appraise(SCHEME, GENOA_EV, GENOA_RD, GENOA_AT, store=store_of(*refs(GENOA_MEASUREMENT), at=GENOA_AT))
    assert a.status is Tier.AFFIRMING


def tsm_with(certs: Mapping[str, bytes]) -> Evidence:
    doc = cbor2.loads(GENOA_TSM.read_bytes())
    doc["auxblob"] = snp.encode_cert_table(certs)
    return Evidence(snp.MEDIA_TYPE_TSM_CBOR, cbor2.dumps(doc))


def genoa_table() -> dict[str, bytes]:
    table = snp.parse_cert_table(cbor2.loads(GENOA_TSM.read_bytes())["auxblob"])
    return {e.role or "": e.data for e in table.entries}


def test_the_auxblob_ark_is_never_the_anchor() -> None:
    table = genoa_table()
    # an ARK-Genoa lookalike, self-signed by another key: its key matches no pin
    fake = chain("Genoa", "lookalike").ark
    evidence = tsm_with({**table, "ark": fake.public_bytes(serialization.Encoding.PEM)})
    assert problem(SCHEME, evidence, GENOA_RD, GENOA_AT).startswith(
        "no trust anchor for evidence: amd: ARK key sha256:")
    # without the ARK in the evidence, the pinned one must come from the collateral
    no_ark = tsm_with({k: v for k, v in table.items() if k != "ark"})
    assert "no ARK certificate" in problem(SCHEME, no_ark, GENOA_RD, GENOA_AT)
    found = collateral(SCHEME, no_ark, [TRUST / "ask_ark_genoa.pem"])
    assert CollateralRequest("amd-chain", ("Genoa", "vcek")) in found
    assert appraise(SCHEME, no_ark, GENOA_RD, GENOA_AT, found=found).status is Tier.WARNING


def test_a_fully_forged_chain_ending_in_an_unpinned_self_signed_ark_is_refused() -> None:
    f = forge("Genoa")
    text = problem(SCHEME, f.evidence, NONCE, NOW)
    assert text.startswith("no trust anchor for evidence: amd: ARK key sha256:")
    assert text.endswith("matches no pinned AMD root and no operator-configured root")
    # the very same evidence passes once the operator configures that root: the pin was the only reason
    a = appraise(with_roots(f), f.evidence, NONCE, NOW)
    assert vector(a)["instance-identity"] == 2 and annotated(a)["chain"]["ark_trusted_by"] == "operator"


# -- tampering -------------------------------------------------------------------------------------------


def rejected(scheme: SevSnpScheme, evidence: Evidence, nonce: bytes, at: datetime,
             found: Mapping[CollateralRequest, Collateral] | None = None) -> bool:
    try:
        appraise(scheme, evidence, nonce, at, found=found)
    except BadEvidence:
        return True
    return False


def flip(data: bytes, i: int) -> bytes:
    """*data* with one bit of byte *i* flipped; the bit position rotates with *i*, so that every
    byte is covered and every bit position is used (~150 times over a report)."""
    out = bytearray(data)
    out[i] ^= 1 << (i * 5 % 8)
    return bytes(out)


def test_flipping_a_bit_in_any_byte_of_the_milan_report_fails() -> None:
    """The signed region (0x000..0x29F), the signature (r, s) and the reserved area after it.

    The suite flips one bit per byte; every bit (9472 flips) was run once by hand with the same
    loop and rejected them all (docs/sevsnp.md, "Tests")."""
    raw = MILAN.read_bytes()
    for i in range(len(raw)):
        if not rejected(DEBUG_OK, Evidence(snp.MEDIA_TYPE_REPORT, flip(raw, i)), MILAN_RD, MILAN_AT,
                        MILAN_COLLATERAL):
            pytest.fail(f"byte 0x{i:03x} changed and the report still passed")


def test_flipping_a_bit_in_any_byte_of_the_genoa_report_fails() -> None:
    doc = cbor2.loads(GENOA_TSM.read_bytes())
    raw = doc["outblob"]
    for i in range(len(raw)):
        doc["outblob"] = flip(raw, i)
        if not rejected(SCHEME, Evidence(snp.MEDIA_TYPE_TSM_CBOR, cbor2.dumps(doc)), GENOA_RD, GENOA_AT):
            pytest.fail(f"byte 0x{i:03x} changed and the report still passed")


def test_flipping_a_bit_in_every_byte_of_the_auxblob_certificates_fails() -> None:
    table = genoa_table()
    for role in ("vcek", "ask", "ark"):
        der = load_certificates(table[role])[0].public_bytes(serialization.Encoding.DER)
        for i in range(0, len(der), 3):  # every third byte: test_sevsnp_amd covers every byte
            if not rejected(SCHEME, tsm_with({**table, role: flip(der, i)}), GENOA_RD, GENOA_AT):
                pytest.fail(f"byte {i} of the auxblob {role} changed and the report still passed")


def test_a_vcek_for_another_chip_or_tcb_does_not_match() -> None:
    f = forge("Genoa", vek_changes={"hwid": bytes(64)})
    assert "VCEK hwID 0000000000000000... does not match CHIP_ID" in problem(with_roots(f), f.evidence, NONCE, NOW)
    f = forge("Genoa", vek_changes={"spl": {**GENOA_SPL, "snp": 22}})
    assert "does not match REPORTED_TCB" in problem(with_roots(f), f.evidence, NONCE, NOW)


def test_the_report_signature_must_be_the_vceks() -> None:
    f = forge("Genoa")
    other = f.spec.signed(ec_key("someone else"))
    doc = cbor2.loads(f.evidence.data)
    doc["outblob"] = other
    evidence = Evidence(snp.MEDIA_TYPE_TSM_CBOR, cbor2.dumps(doc))
    assert "report signature does not verify" in problem(with_roots(f), evidence, NONCE, NOW)


# -- freshness -----------------------------------------------------------------------------------------------


def test_report_data_binding_rules() -> None:
    f = forge("Genoa")
    scheme = with_roots(f)
    assert appraise(scheme, f.evidence, NONCE, NOW)  # 32-byte nonce, zero-padded in REPORT_DATA
    text = problem(scheme, f.evidence, b"\x01" * 32, NOW)
    assert text.startswith("integrity validation failed: bad evidence: freshness: REPORT_DATA (")
    assert text.endswith("by the 'raw' rule: REPORT_DATA == nonce zero-padded to 64 bytes")
    assert "freshness" in problem(scheme, f.evidence, NONCE + b"\x00" * 40, NOW)  # longer than 64: never carried
    for rule, report_data in (("sha256", hashlib.sha256(NONCE).digest().ljust(64, b"\x00")),
                              ("sha384", hashlib.sha384(NONCE).digest().ljust(64, b"\x00")),
                              ("sha512", hashlib.sha512(NONCE).digest())):
        hashed = forge("Genoa", report_data=report_data)
        bound = SevSnpScheme(SnpPolicy(report_data=rule), f.roots)
        assert annotated(appraise(bound, hashed.evidence, NONCE, NOW))["report_data"]["rule"] == rule
        assert f"'{rule}' rule" in problem(bound, f.evidence, NONCE, NOW)
    # no session nonce: freshness is not checked, and the result says so
    a = appraise(scheme, f.evidence, b"", NOW)
    assert annotated(a)["report_data"] == {"rule": "raw", "checked": False,
                                           "binding": "REPORT_DATA == nonce zero-padded to 64 bytes"}


def test_genoa_freshness_fails_on_another_nonce() -> None:
    appraiser = LocalAppraiser([SCHEME], ReferenceValueStore())
    ear = appraiser.appraise(GENOA_EV, NONCE, GENOA_AT)
    sub = ear.submods[NAME]
    assert sub.status is Tier.CONTRAINDICATED and sub.trust_vector is not None
    assert set(sub.trust_vector.as_dict().values()) == {99}
    assert "freshness" in sub.extensions["ear_veraison_policy_claims"]["problem"]


# -- policy ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("spec", "policy", "claim", "value", "text"), [
    ({"policy": 0x30000 | 1 << 18}, {}, "configuration", 96, "migration agent"),
    ({"policy": 0x30000 | 1 << 18}, {"allow_migration_agent": True}, "configuration", 2, None),
    ({"policy": 0x30000}, {"allow_smt": False}, "configuration", 32, "SMT"),
    ({"policy": 0x20000}, {"allow_smt": False}, "configuration", 2, None),
    ({"policy": 0x30000 | 0x0137}, {"min_abi": (1, 56)}, "configuration", 32, "ABI 1.55 is below the minimum 1.56"),
    ({"policy": 0x30000 | 0x0138}, {"min_abi": (1, 56)}, "configuration", 2, None),
    ({"policy": 0x30000 | 0x0200}, {"min_abi": (1, 56)}, "configuration", 2, None),
    ({"vmpl": 2}, {"max_vmpl": 1}, "configuration", 96, "VMPL 2"),
    ({"vmpl": 1}, {"max_vmpl": 1}, "configuration", 2, None),
    ({"platform_info": 0x25}, {"platform_required": 0x12}, "configuration", 32, "lacks required bits 0x12"),
    ({"platform_info": 0x25}, {"platform_forbidden": 0x01}, "configuration", 32, "forbidden bits 0x1"),
    ({"platform_info": 0x25}, {"platform_required": 0x21, "platform_forbidden": 0x10}, "configuration", 2, None),
    ({"committed_tcb": bytes([10, 0, 0, 0, 0, 0, 22, 84])}, {}, "hardware", 32, "provisional firmware"),
    ({"committed_tcb": bytes([10, 0, 0, 0, 0, 0, 22, 84])}, {"allow_provisional_firmware": True}, "hardware", 2,
     None),
])
def test_policy_rules(spec: dict[str, Any], policy: dict[str, Any], claim: str, value: int, text: str | None) -> None:
    f = forge("Genoa", **spec)
    a = appraise(SevSnpScheme(SnpPolicy(**policy), f.roots), f.evidence, NONCE, NOW)
    assert vector(a)[claim] == value
    findings = a.extensions.get("ear_veraison_policy_claims", {}).get("findings", [])
    assert (text is None) == (not findings)
    if text is not None:
        assert any(text in t for t in findings)


def test_debug_is_contraindicated_by_default_and_runtime_opaque_stays_2() -> None:
    f = forge("Genoa", policy=0x30000 | 1 << 19)
    a = appraise(with_roots(f), f.evidence, NONCE, NOW)
    assert (a.status, vector(a)["configuration"], vector(a)["runtime-opaque"]) == (Tier.CONTRAINDICATED, 96, 2)


def test_reported_tcb_newer_than_current_is_an_integrity_failure() -> None:
    f = forge("Genoa", reported_tcb=bytes([10, 0, 0, 0, 0, 0, 24, 84]))
    assert "is newer than CURRENT_TCB" in problem(with_roots(f), f.evidence, NONCE, NOW)


def test_unsigned_reports_and_unknown_media_types() -> None:
    f = forge("Genoa", key_info=7 << 2)
    assert "not signed" in problem(with_roots(f), f.evidence, NONCE, NOW)
    assert with_roots(f).collateral_requests(f.evidence) == []
    wrong = Evidence("application/octet-stream", MILAN.read_bytes())
    assert "media type" in problem(SCHEME, wrong, NONCE, NOW)
    assert SCHEME.collateral_requests(wrong) == []
    assert problem(SCHEME, Evidence(snp.MEDIA_TYPE_REPORT, b"short"), NONCE, NOW).startswith(
        "could not establish identity from evidence: sev-snp: report of 5 bytes")


def test_evidence_certificates_that_do_not_parse_are_the_attesters_fault() -> None:
    evidence = tsm_with({**genoa_table(), "ask": b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"})
    assert problem(SCHEME, evidence, GENOA_RD, GENOA_AT).startswith(
        "could not establish identity from evidence: auxblob:ask: amd: not an X.509 certificate")
    assert SCHEME.collateral_requests(evidence) == []


# -- products ---------------------------------------------------------------------------------------------------


def test_turin_v5_with_its_own_tcb_layout() -> None:
    """No Turin or version-5 vector exists: a generated report and chain in Turin's layout (FMC
    first, 8-byte hwID, fmcSPL extension, mitigation vectors)."""
    f = forge("Turin", version=5, launch_mit=1, current_mit=3)
    requests = with_roots(f).collateral_requests(f.evidence)
    assert requests == [CollateralRequest("amd-crl", ("Turin",))]  # everything else is carried
    a = appraise(with_roots(f), f.evidence, NONCE, NOW, store=store_of(
        *refs(f.spec.measurement, extra=[tcb_min(7, bytes([3, 1, 2, 4, 0, 0, 0, 0x48]))])))
    assert a.status is Tier.AFFIRMING
    doc = annotated(a)
    assert doc["product"] == "Turin" and doc["report"]["version"] == 5
    assert doc["report"]["reported_tcb"] | {"raw": "", "value": 0} == {
        "raw": "", "value": 0, "fmc": 3, "boot_loader": 1, "tee": 2, "snp": 4, "microcode": 0x48}
    assert doc["report"]["current_mit_vector"] == 3
    # the same minimum read in the legacy layout would be a different TCB: Turin's SNP SVN is byte 3
    higher_snp = store_of(*refs(f.spec.measurement, extra=[tcb_min(7, bytes([3, 1, 2, 5, 0, 0, 0, 0x48]))]))
    a = appraise(with_roots(f), f.evidence, NONCE, NOW, store=higher_snp)
    assert vector(a)["hardware"] == 32 and "'snp': 4" in a.extensions["ear_veraison_policy_claims"]["findings"][0]


def test_turin_collateral_requests_use_the_8_byte_hwid() -> None:
    f = forge("Turin", version=5, envelope="report")
    [vcek, chain_req, crl] = with_roots(f).collateral_requests(f.evidence)
    assert vcek == CollateralRequest("amd-vcek", ("Turin", bytes(range(1, 9)).hex(), TURIN_TCB.hex()))
    assert chain_req == CollateralRequest("amd-chain", ("Turin", "vcek"))
    assert crl == CollateralRequest("amd-crl", ("Turin",))


def test_the_report_product_must_match_the_chain() -> None:
    f = forge("Milan", cpuid=bytes([0x19, 0x11, 0x01]))  # says Genoa, chains to ARK-Milan
    assert "from a Genoa part but its key chains to ARK-Milan" in problem(with_roots(f), f.evidence, NONCE, NOW)
    v2 = forge("Milan", version=2)
    assert appraise(with_roots(v2), v2.evidence, NONCE, NOW)  # v2: no CPUID, the VCEK names the product
    told = SevSnpScheme(SnpPolicy(product="Genoa"), v2.roots)
    assert "from a Genoa part" in problem(told, v2.evidence, NONCE, NOW)
    unknown_cpuid = forge("Genoa", cpuid=bytes([0x19, 0xA0, 0x00]))  # not a part KDS names: the chain decides
    assert annotated(appraise(with_roots(unknown_cpuid), unknown_cpuid.evidence, NONCE, NOW))["product"] == "Genoa"


def test_v2_collateral_requests_guess_the_product() -> None:
    requests = SCHEME.collateral_requests(MILAN_EV)
    assert [r.key[0] for r in requests if r.kind == "amd-vcek"] == ["Milan", "Genoa"]
    told = SCHEME.with_policy(product="Milan").collateral_requests(MILAN_EV)
    assert {r.key[0] for r in told} == {"Milan"}
    turin_like = forge("Turin", version=2, envelope="report")
    assert {r.key[0] for r in SCHEME.collateral_requests(turin_like.evidence)} == {"Turin"}
    carried = forge("Genoa", version=2, carry=("vek",))  # the carried VCEK names its product
    assert {r.key[0] for r in SCHEME.collateral_requests(carried.evidence)} == {"Genoa"}


def test_vlek_reports_in_a_cmw_collection() -> None:
    f = forge("Genoa", kind="vlek", envelope="cmw")
    scheme = with_roots(f)
    a = appraise(scheme, f.evidence, NONCE, NOW, store=store_of(*refs(f.spec.measurement, cls=CLASS_VLEK)))
    assert a.status is Tier.AFFIRMING
    assert annotated(a)["chain"]["signer"] == "vlek"
    # a VCEK-class reference does not describe a VLEK-signed report
    a = appraise(scheme, f.evidence, NONCE, NOW, store=store_of(*refs(f.spec.measurement)))
    assert vector(a)["executables"] == 33
    bare = forge("Genoa", kind="vlek", envelope="report")
    assert SevSnpScheme(SnpPolicy(), bare.roots).collateral_requests(bare.evidence) == [
        CollateralRequest("amd-vlek", ("Genoa", GENOA_TCB.hex())), CollateralRequest("amd-chain", ("Genoa", "vlek")),
        CollateralRequest("amd-crl", ("Genoa",))]
    env = attester_environment(snp.parse_report(bare.evidence.data))
    assert env == Environment(ClassMap(CLASS_VLEK))


def test_a_masked_chip_id_skips_the_hwid_comparison() -> None:
    f = forge("Genoa", key_info=2, chip_id=bytes(64))
    a = appraise(with_roots(f), f.evidence, NONCE, NOW)
    assert vector(a)["instance-identity"] == 2
    assert attester_environment(snp.parse_report(cbor2.loads(f.evidence.data)["outblob"])).instance is None


def test_crls_from_collateral_revoke() -> None:
    f = forge("Genoa")
    revoked = make_crl(f.chain, [f.chain.ask.serial_number], next_update=NOW + timedelta(days=1))
    found = {CollateralRequest("amd-crl", ("Genoa",)): Collateral(
        CollateralRequest("amd-crl", ("Genoa",)), revoked.public_bytes(serialization.Encoding.PEM), "test")}
    assert "was revoked" in problem(with_roots(f), f.evidence, NONCE, NOW, found=found)
    fine = make_crl(f.chain, [], next_update=NOW + timedelta(days=1))
    found = {k: replace(v, data=fine.public_bytes(serialization.Encoding.DER)) for k, v in found.items()}
    assert annotated(appraise(with_roots(f), f.evidence, NONCE, NOW, found=found))["crls"][0]["current"] is True


def test_an_expired_ask_in_the_evidence_is_stale() -> None:
    f = forge("Genoa", carry=("vek", "ark"), envelope="cmw")
    c = f.chain
    old_ask = ca_cert("SEV-Genoa", c.ask_key, "ARK-Genoa", c.ark_key, not_after=datetime(2026, 3, 1, tzinfo=UTC))
    found = {CollateralRequest("amd-chain", ("Genoa", "vcek")): Collateral(
        CollateralRequest("amd-chain", ("Genoa", "vcek")), c.pem(old_ask), "test")}
    assert "ASK certificate is not valid at" in problem(with_roots(f), f.evidence, NONCE, NOW, found=found)


# -- CoRIM: measurements and TCB minimums -----------------------------------------------------------------------


def test_evidence_measurements_follow_the_draft_mkeys() -> None:
    r = snp.parse_report(MILAN.read_bytes())
    by_key = {m.mkey.value if m.mkey else None: m.mval for m in evidence_measurements(r)}
    assert sorted(by_key, key=str) == [0, 1, 10, 3, 4, 7, 8, 9]
    assert by_key[0].digests == (Digest(7, MILAN_MEASUREMENT),) and by_key[0].flags == {3: True}
    assert by_key[7].svn == Svn(r.reported_tcb.value)
    assert by_key[1].version is not None and by_key[1].version.version == "0.0.0"
    assert by_key[8].version is not None and by_key[8].version.version == "1.49.3"
    f = forge("Genoa", id_key_digest=b"\x01" * 48, host_data=b"\x02" * 32, image_id=b"\x03" * 16)
    r = snp.parse_report(cbor2.loads(f.evidence.data)["outblob"])
    by_key = {m.mkey.value if m.mkey else None: m.mval for m in evidence_measurements(r)}
    assert by_key[5].raw == RawValue(b"\x01" * 48) and by_key[8].raw == RawValue(b"\x02" * 32)
    assert by_key[0].version is not None and by_key[0].version.version == "03" * 16


def test_several_acceptable_measurements_and_extra_conditions() -> None:
    f = forge("Genoa")
    scheme = with_roots(f)
    m = f.spec.measurement
    assert vector(appraise(scheme, f.evidence, NONCE, NOW, store=store_of(*refs(b"\x01" * 48, m, b"\x02" * 48))))[
        "executables"] == 2
    # a triple that also requires the debug flag off, and a guest SVN of at least 1, still matches
    cond = [ReferenceTriple(Environment(ClassMap(CLASS_VCEK)), (
        guest(m, svn=Svn(1, minimum=True), flags={3: False}),))]
    assert vector(appraise(scheme, f.evidence, NONCE, NOW, store=store_of(*cond)))["executables"] == 2
    too_new_guest = [ReferenceTriple(Environment(ClassMap(CLASS_VCEK)), (guest(m, svn=Svn(2, minimum=True)),))]
    assert vector(appraise(scheme, f.evidence, NONCE, NOW, store=store_of(*too_new_guest)))["executables"] == 33
    # a reference for one chip only (instance = CHIP_ID)
    chip = Tagged("bytes", f.spec.chip_id, 560)
    assert vector(appraise(scheme, f.evidence, NONCE, NOW, store=store_of(*refs(m, instance=chip))))["executables"] == 2
    other_chip = Tagged("bytes", bytes(64), 560)
    assert vector(appraise(scheme, f.evidence, NONCE, NOW, store=store_of(*refs(m, instance=other_chip))))[
        "executables"] == 33


def test_an_expired_corim_contributes_nothing() -> None:
    f = forge("Genoa")
    store = store_of(*refs(f.spec.measurement), validity=Validity(NOW - timedelta(days=60), NOW - timedelta(days=1)),
                     at=NOW - timedelta(days=30))
    a = appraise(with_roots(f), f.evidence, NONCE, NOW, store=store)
    assert vector(a)["executables"] == 33 and a.extensions["ear_ratsfed_endorsements"] == []


@pytest.mark.parametrize(("mkey", "minimum", "hardware"), [
    (7, bytes([10, 0, 0, 0, 0, 0, 23, 84]), 2),  # equal
    (7, bytes([9, 0, 0, 0, 0, 0, 20, 80]), 2),  # below in every component
    (7, bytes([10, 0, 0, 0, 0, 0, 24, 84]), 32),  # SNP firmware too old
    (7, bytes([10, 0, 0, 0, 0, 0, 22, 85]), 32),  # microcode too old, though the u64 is smaller
    (9, bytes([10, 1, 0, 0, 0, 0, 23, 84]), 32),  # committed TEE too old
    (10, bytes([11, 0, 0, 0, 0, 0, 23, 84]), 32),  # launched on an older boot loader
])
def test_tcb_minimums_in_reference_triples_are_component_wise(mkey: int, minimum: bytes, hardware: int) -> None:
    f = forge("Genoa")
    store = store_of(*refs(f.spec.measurement, extra=[tcb_min(mkey, minimum)]))
    a = appraise(with_roots(f), f.evidence, NONCE, NOW, store=store)
    assert (vector(a)["executables"], vector(a)["hardware"]) == (2, hardware)  # the measurement still matched


def test_firmware_is_current_endorsements_grade_hardware() -> None:
    f = forge("Genoa")
    current = EndorsedTriple(Environment(ClassMap(CLASS_VCEK)), (tcb_min(7, bytes([10, 0, 0, 0, 0, 0, 24, 84])),))
    store = store_of(*refs(f.spec.measurement), endorsed=[current],
                     validity=Validity(NOW - timedelta(days=1), NOW + timedelta(days=7)))
    a = appraise(with_roots(f), f.evidence, NONCE, NOW, store=store)
    assert (a.status, vector(a)["hardware"], vector(a)["executables"]) == (Tier.WARNING, 32, 2)
    assert {r["role"] for r in a.extensions["ear_ratsfed_endorsements"]} == {"reference-values", "endorsed-values"}
    assert "reported TCB" in a.extensions["ear_veraison_policy_claims"]["findings"][0]
    # a platform-wide minimum in a reference triple without a measurement applies as well
    platform = ReferenceTriple(Environment(ClassMap(CLASS_VCEK)), (tcb_min(7, bytes([10, 0, 0, 0, 0, 0, 24, 84])),))
    a = appraise(with_roots(f), f.evidence, NONCE, NOW, store=store_of(platform))
    assert (vector(a)["hardware"], vector(a)["executables"]) == (32, 33)


def test_an_exact_tcb_reference_is_a_plain_condition() -> None:
    f = forge("Genoa")
    exact = Measurement(MeasurementValues(svn=Svn(int.from_bytes(GENOA_TCB, "little"))), Tagged("uint", 7))
    a = appraise(with_roots(f), f.evidence, NONCE, NOW, store=store_of(*refs(f.spec.measurement, extra=[exact])))
    assert vector(a)["executables"] == 2
    other = Measurement(MeasurementValues(svn=Svn(1)), Tagged("uint", 7))
    a = appraise(with_roots(f), f.evidence, NONCE, NOW, store=store_of(*refs(f.spec.measurement, extra=[other])))
    assert vector(a)["executables"] == 33


# -- the backend ---------------------------------------------------------------------------------------------


async def test_a_local_backend_with_a_collateral_folder(tmp_path: Path) -> None:
    folder = tmp_path / "amd"
    folder.mkdir()
    (folder / "vcek.der").write_bytes(VCEK_MILAN.read_bytes())
    (folder / "cert_chain").write_bytes((TRUST / "ask_ark_milan.pem").read_bytes())
    appraiser = LocalAppraiser([DEBUG_OK], store_of(*refs(MILAN_MEASUREMENT), at=MILAN_AT))
    backend = LocalBackend("snp", "acme", appraiser, SigningKey.generate(), at=int(MILAN_AT.timestamp()),
                           collateral=FolderStore(folder))
    raw = await backend.appraise(MILAN_EV, MILAN_RD, deadline=0)
    # ``at`` fixes the validity time only; the EAR is issued (iat) at the clock
    ear = verify_ear(raw.token, backend.public_anchor, now=int(time.time()), nonce=MILAN_RD).ear
    assert ear.submods[NAME].status is Tier.AFFIRMING
    empty = LocalBackend("snp", "acme", appraiser, SigningKey.generate(), at=int(MILAN_AT.timestamp()))
    raw = await empty.appraise(MILAN_EV, MILAN_RD, deadline=0)
    ear = verify_ear(raw.token, empty.public_anchor, now=int(time.time())).ear
    assert ear.submods[NAME].status is Tier.CONTRAINDICATED  # no collateral: no VCEK, no trust anchor


def test_the_appraiser_turns_failures_into_veraisons_vector() -> None:
    ear = LocalAppraiser([SCHEME], ReferenceValueStore()).appraise(MILAN_EV, MILAN_RD, MILAN_AT)
    sub = ear.submods[NAME]
    assert sub.status is Tier.CONTRAINDICATED
    assert sub.extensions["ear_veraison_policy_claims"]["problem"].startswith("no trust anchor for evidence")
