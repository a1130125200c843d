"""The INTEL_TDX scheme on the real quotes and collateral of ../shared/vectors/tdx, end to end.

Outcomes are the ones tdx/SOURCES.md states at the times it names (dcap-qvl 0.7.0 gives the same
statuses on the same pairs: UpToDate, "No matching TCB level found", UpToDate for the v5 sample
under the outdated collateral's FMSPC); the session nonce is each quote's own REPORT_DATA, as the
attester would have committed to it.
"""

from __future__ import annotations

import asyncio
import shutil
import struct
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization

from federation.ear.model import Appraisal, Ear
from federation.ear.token import verify_ear
from federation.evidence import Evidence
from federation.keys import SigningKey, TrustAnchor
from verifiers.local.appraiser import LocalAppraiser
from verifiers.local.backend import LocalBackend
from verifiers.local.collateral.base import CollateralStore, EmptyStore
from verifiers.local.collateral.folder import FolderStore
from verifiers.local.collateral.intel import parse_collateral
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
    ReferenceTriple,
    Tagged,
    Triples,
    Validity,
)
from verifiers.local.corim.store import ReferenceValueStore, load_paths
from verifiers.local.evidence.tdx import MEDIA_TYPE, parse_quote
from verifiers.local.schemes import BUILTIN
from verifiers.local.schemes.tdx import SCHEME, TdxScheme

JULY_2025 = datetime(2025, 7, 1, tzinfo=UTC)
MARCH_2026 = datetime(2026, 3, 1, tzinfo=UTC)
FEB_2026 = datetime(2026, 2, 3, 1, tzinfo=UTC)
JULY_2023 = datetime(2023, 7, 1, 1, tzinfo=UTC)


def tdx(vectors: Path, name: str) -> Path:
    return vectors / "tdx" / name


def folder(tmp: Path, vectors: Path, *names: str, signing_chain: bool = False) -> FolderStore:
    """A collateral folder with copies of the named vector files (and the TCB signing chain PEM)."""
    for name in names:
        shutil.copy(tdx(vectors, name), tmp / Path(name).name)
    if signing_chain:
        doc = parse_collateral(tdx(vectors, "dcap-qvl/tdx_quote_collateral.json").read_bytes())
        assert doc.tcb_info_issuer_chain is not None
        (tmp / "tcb-info-issuer-chain.pem").write_bytes(
            b"".join(c.public_bytes(serialization.Encoding.PEM) for c in doc.tcb_info_issuer_chain))
    return FolderStore(tmp)


def appraise(vectors: Path, name: str, now: datetime, store: CollateralStore | None = None, *,
             nonce: bytes | None = None, refs: ReferenceValueStore | None = None,
             data: bytes | None = None, scheme: TdxScheme = SCHEME) -> Appraisal:
    """One appraisal through the local backend: collateral requested, resolved, appraised, signed."""
    data = data if data is not None else tdx(vectors, name).read_bytes()
    if nonce is None:
        nonce = parse_quote(data).body.report_data
    key = SigningKey.generate("ES256")
    backend = LocalBackend("local", "test", LocalAppraiser([scheme], refs or ReferenceValueStore()), key,
                           at=int(now.timestamp()), collateral=store or EmptyStore())
    raw = asyncio.run(backend.appraise(Evidence(MEDIA_TYPE, data), nonce, deadline=0))
    ear: Ear = verify_ear(raw.token, TrustAnchor((key.public,)), now=int(time.time()), nonce=nonce).ear
    assert set(ear.submods) == {"INTEL_TDX"}
    return ear.submods["INTEL_TDX"]


def vector(a: Appraisal) -> dict[str, int]:
    assert a.trust_vector is not None
    return a.trust_vector.as_dict()


def claims(a: Appraisal) -> dict[str, Any]:
    out: dict[str, Any] = a.extensions["ear_veraison_policy_claims"]
    return out


def test_the_scheme_is_built_in() -> None:
    assert BUILTIN["INTEL_TDX"] is SCHEME
    assert SCHEME.descriptor.media_types == {MEDIA_TYPE}


# -- the outcomes SOURCES.md states ---------------------------------------------------------------------

def test_dcap_qvl_quote_with_full_collateral_is_up_to_date(vectors: Path) -> None:
    a = appraise(vectors, "dcap-qvl/tdx_quote", JULY_2025, FolderStore(tdx(vectors, "dcap-qvl")))
    c = claims(a)
    assert (c["tcb_status"], c["advisory_ids"], c["qe_status"], c["module_status"]) == (
        "UpToDate", [], "UpToDate", "UpToDate")
    assert c["collateral"] == {"source": str(tdx(vectors, "dcap-qvl/tdx_quote_collateral.json")),
                               "root_ca_crl": "accepted", "pck_crl": "accepted", "tcb_info": "accepted",
                               "qe_identity": "accepted", "complete": True}
    assert vector(a) == {"instance-identity": 2, "configuration": 2, "executables": 33, "file-system": 0,
                         "hardware": 2, "runtime-opaque": 2, "storage-opaque": 0, "sourced-data": 0}
    assert a.status.label == "warning"  # no reference values: the measurements are unrecognized
    ann = a.extensions["ear_veraison_annotated_evidence"]
    assert (ann["version"], ann["pck"]["fmspc"], ann["trailing_bytes"], ann["root"]) == (
        4, "b0c06f000000", 70, "Intel SGX Root CA")


def test_dcap_qvl_outdated_quote_has_no_matching_tcb_level(vectors: Path) -> None:
    a = appraise(vectors, "dcap-qvl/tdx_quote_outdated", MARCH_2026, FolderStore(tdx(vectors, "dcap-qvl")))
    c = claims(a)
    assert (c["tcb_status"], c["collateral"]["complete"]) == ("NotSupported", True)
    assert c["tcb_problem"] == "no matching TCB level: the platform is below every level of the TCB info"
    assert (vector(a)["hardware"], vector(a)["instance-identity"], a.status.label) == (97, 2, "contraindicated")


def test_the_v5_sample_under_the_outdated_collateral_is_up_to_date(vectors: Path) -> None:
    """Same FMSPC (90c06f000000): the go-tdx-guest v5 platform reaches the 2026 levels."""
    a = appraise(vectors, "go-tdx-guest/quote_v5_sample.dat", MARCH_2026, FolderStore(tdx(vectors, "dcap-qvl")))
    assert (claims(a)["tcb_status"], claims(a)["collateral"]["complete"], vector(a)["hardware"]) == (
        "UpToDate", True, 2)


def test_the_v5_sample_with_its_own_tcb_info(vectors: Path, tmp_path: Path) -> None:
    """At go-tdx-guest's 2026 time the v5 TCB info is current but its QE identity and CRLs (2023) are
    not: the status is computed (UpToDate, TDX_01) but never affirmed from incomplete collateral."""
    store = folder(tmp_path, vectors, "go-tdx-guest/sample_tcbinfo_response_v5", "go-tdx-guest/pckcrl",
                   "go-tdx-guest/sample_qeIdentity_response", "go-tdx-guest/rootcrl.der", signing_chain=True)
    a = appraise(vectors, "go-tdx-guest/quote_v5_sample.dat", FEB_2026, store)
    c = claims(a)
    assert (c["tcb_status"], c["platform_status"], c["module_status"], c["tcb_date"]) == (
        "UpToDate", "UpToDate", "UpToDate", "2024-11-13T00:00:00Z")
    notes = c["collateral"]
    assert notes["tcb_info"] == "accepted" and notes["complete"] is False
    assert notes["qe_identity"].startswith("rejected: QE identity is not current at 2026-02-03T01:00:00Z")
    assert notes["pck_crl"].startswith("rejected: CRL of 'Intel SGX PCK Platform CA' is not current")
    assert notes["root_ca_crl"].startswith("rejected: CRL of 'Intel SGX Root CA' is not current")
    assert (vector(a)["hardware"], a.status.label) == (0, "warning")


def test_the_spr_quote_at_2023(vectors: Path, tmp_path: Path) -> None:
    """The 2023 CRLs are current; the 2023 TCB info and QE identity cannot be verified with the only
    TCB signing certificate in the vectors (valid from 2025), so no TCB status is claimed."""
    store = folder(tmp_path, vectors, "go-tdx-guest/sample_tcbInfo_response", "go-tdx-guest/pckcrl",
                   "go-tdx-guest/sample_qeIdentity_response", "go-tdx-guest/rootcrl.der", signing_chain=True)
    a = appraise(vectors, "go-tdx-guest/tdx_prod_quote_SPR_E4.dat", JULY_2023, store)
    notes = claims(a)["collateral"]
    assert (notes["pck_crl"], notes["root_ca_crl"]) == ("accepted", "accepted")
    assert notes["tcb_info"] == ("rejected: certificate 'Intel SGX TCB Signing' is not valid at 2023-07-01T01:00:00Z "
                                 "(valid 2025-05-06T09:25:00Z to 2032-05-06T09:25:00Z)")
    assert "tcb_status" not in claims(a)
    assert (vector(a)["hardware"], a.status.label) == (0, "warning")


def test_the_cos_quote_without_collateral(vectors: Path) -> None:
    a = appraise(vectors, "go-tdx-guest/cos-113-tdx-quote.dat", datetime(2025, 1, 1, tzinfo=UTC), nonce=bytes(32))
    c = claims(a)
    assert "tcb_status" not in c and c["collateral"]["complete"] is False
    assert c["report_data"] == {"rule": "raw", "checked": True}
    assert (vector(a)["hardware"], vector(a)["instance-identity"], a.status.label) == (0, 2, "warning")
    assert a.extensions["ear_veraison_annotated_evidence"]["trailing_bytes"] == 3065


def test_expired_collateral_is_rejected_at_a_later_now(vectors: Path) -> None:
    later = datetime(2025, 7, 25, tzinfo=UTC)  # the PCK is still valid; the collateral is not
    a = appraise(vectors, "dcap-qvl/tdx_quote", later, FolderStore(tdx(vectors, "dcap-qvl")))
    notes = claims(a)["collateral"]
    assert notes["tcb_info"] == ("rejected: TCB info is not current at 2025-07-25T00:00:00Z (issued "
                                 "2025-06-19T10:16:03Z, next update 2025-07-19T10:16:03Z)")
    assert notes["qe_identity"].startswith("rejected: QE identity is not current")
    assert notes["pck_crl"].startswith("rejected: CRL of 'Intel SGX PCK Platform CA' is not current")
    assert notes["root_ca_crl"] == "accepted"  # the root CRL runs to 2026-04-03
    assert "tcb_status" not in claims(a) and vector(a)["hardware"] == 0 and a.status.label == "warning"


# -- failures of the Evidence -----------------------------------------------------------------------------

def _problem(a: Appraisal) -> str:
    assert a.status.label == "contraindicated" and set(vector(a).values()) == {99}
    text: str = claims(a)["problem"]
    return text


def test_another_session_nonce_fails(vectors: Path) -> None:
    a = appraise(vectors, "dcap-qvl/tdx_quote", JULY_2025, nonce=b"\x01" * 32)
    assert _problem(a) == ("integrity validation failed: bad evidence: REPORT_DATA does not match the session nonce "
                           "under the 'raw' rule")


def test_a_quote_appraised_after_its_pck_expired_says_so(vectors: Path) -> None:
    a = appraise(vectors, "go-tdx-guest/quote_v5_sample.dat", datetime(2033, 6, 1, tzinfo=UTC))
    assert _problem(a).startswith("integrity validation failed: bad evidence: PCK chain: certificate "
                                  "'Intel SGX PCK Certificate' is not valid at 2033-06-01T00:00:00Z (valid 2026-01-27")


@pytest.mark.parametrize("offset", [0, 20, 48 + 136, 48 + 520, 632 + 4 + 3, 632 + 4 + 134 + 320, 632 + 4 + 134 + 500])
def test_flipped_bits_fail_through_the_scheme(vectors: Path, offset: int) -> None:
    data = bytearray(tdx(vectors, "dcap-qvl/tdx_quote").read_bytes())
    nonce = parse_quote(bytes(data)).body.report_data
    data[offset] ^= 0x04
    a = appraise(vectors, "dcap-qvl/tdx_quote", JULY_2025, nonce=nonce, data=bytes(data))
    assert _problem(a).startswith(("integrity validation failed", "could not establish identity"))


def _with_chain(data: bytes, pem: bytes) -> bytes:
    """The quote with another PCK chain: the nested sizes rewritten, nothing re-signed."""
    q = parse_quote(data)
    at = len(q.signed) + 4
    cert_at = at + 134
    inner_at = cert_at + 384 + 64 + 2 + len(q.qe_auth_data)
    head = data[cert_at:inner_at] + struct.pack("<HI", 5, len(pem)) + pem
    sig = data[at:at + 128] + struct.pack("<HI", 6, len(head)) + head
    return q.signed + struct.pack("<I", len(sig)) + sig


def test_a_quote_carrying_a_root_that_matches_no_pin_has_no_trust_anchor(vectors: Path) -> None:
    from test_tdx_collateral import _self_signed

    data = tdx(vectors, "dcap-qvl/tdx_quote").read_bytes()
    q = parse_quote(data)
    impostor, _ = _self_signed(q.pck_chain[2].subject)
    pem = b"".join(c.public_bytes(serialization.Encoding.PEM) for c in (*q.pck_chain[:2], impostor))
    a = appraise(vectors, "dcap-qvl/tdx_quote", JULY_2025, data=_with_chain(data, pem))
    assert _problem(a).startswith("no trust anchor for evidence: PCK chain: root 'Intel SGX Root CA' has a public key "
                                  "that matches no pinned or configured root")
    # the same quote with Intel's root put back verifies again
    pem = b"".join(c.public_bytes(serialization.Encoding.PEM) for c in q.pck_chain)
    assert appraise(vectors, "dcap-qvl/tdx_quote", JULY_2025, data=_with_chain(data, pem)).status.label == "warning"


def test_garbage_is_not_a_quote(vectors: Path) -> None:
    a = appraise(vectors, "x", JULY_2025, nonce=b"\x00" * 8, data=b"\x04\x00\x02\x00" + bytes(100))
    assert _problem(a).startswith("could not establish identity from evidence: tdx quote:")


# -- reference values for the real quote --------------------------------------------------------------------

def test_reference_values_for_the_dcap_qvl_quote(vectors: Path, tmp_path: Path) -> None:
    body = parse_quote(tdx(vectors, "dcap-qvl/tdx_quote").read_bytes()).body
    endorser = SigningKey.generate("ES256")

    def ref(name: str, value: bytes) -> Measurement:
        return Measurement(MeasurementValues(digests=(Digest("sha-384", value),)), Tagged("string", name))

    vcpus2 = (ref("tdx.mrtd", b"\x00" * 48), ref("tdx.rtmr0", b"\x00" * 48))  # another vCPU count
    vcpus4 = (ref("tdx.mrtd", body.mr_td), ref("tdx.rtmr0", body.rtmrs[0]), ref("tdx.rtmr1", body.rtmrs[1]),
              ref("tdx.rtmr2", body.rtmrs[2]))
    env = Environment(ClassMap(vendor="Intel Corporation", model="TDX"))
    corim = Corim("cloud-firmware", (Comid("tdx-firmware", Triples(reference=(
        ReferenceTriple(env, vcpus2), ReferenceTriple(env, vcpus4)))),))
    path = tmp_path / "tdx.cbor"
    path.write_bytes(sign_corim(corim, endorser, CorimMeta("Cloud Provider", None,
                                                           Validity(JULY_2025 - timedelta(days=1),
                                                                    JULY_2025 + timedelta(days=1)))))
    refs = load_paths([path], [TrustAnchor((endorser.public,))], JULY_2025)
    a = appraise(vectors, "dcap-qvl/tdx_quote", JULY_2025, FolderStore(tdx(vectors, "dcap-qvl")), refs=refs)
    assert (vector(a)["executables"], vector(a)["hardware"], a.status.label) == (2, 2, "affirming")
    (record,) = a.extensions["ear_ratsfed_endorsements"]
    assert (record["corim_id"], record["comid_id"], record["signer"]) == ("cloud-firmware", "tdx-firmware",
                                                                          "Cloud Provider")
    # the same CoRIM, one day later than its validity: nothing is recognized
    later = JULY_2025 + timedelta(days=2)
    a = appraise(vectors, "dcap-qvl/tdx_quote", later, refs=refs)
    assert vector(a)["executables"] == 33
