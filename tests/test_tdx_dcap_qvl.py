"""TDX TCB status: our INTEL_TDX scheme against an independent verifier, dcap-qvl (PyPI, Rust).

Every quote + collateral pair the vectors form (../shared/vectors/tdx/SOURCES.md) is given, as
the same dcap-qvl-form collateral document, to ``dcap_qvl.verify`` and to our scheme at the time
SOURCES.md names, and the statuses must agree:

* dcap-qvl's status names are ours (UpToDate, SWHardeningNeeded, ConfigurationNeeded,
  ConfigurationAndSWHardeningNeeded, OutOfDate, OutOfDateConfigurationNeeded, Revoked); its
  advisory ids must equal ours too;
* dcap-qvl's error "No matching TCB level found" is our ``NotSupported`` (hardware 97): the
  platform is below every TCB level;
* any other dcap-qvl error about the collateral (a CRL past its next update, a TCB signing
  certificate not yet valid) is our "no TCB status asserted": hardware 0, because the TCB info is
  rejected, or because the status was computed from incomplete collateral and is never affirmed.

The pairs: the two dcap-qvl samples with their own collateral; go-tdx-guest's v5 sample with the
dcap-qvl 2026 collateral (same FMSPC); that collateral with go-tdx-guest's v5 TCB info (TDX
module identities) in place of its own, for the v5 sample and for dcap-qvl's outdated quote; and
go-tdx-guest's quotes with go-tdx-guest's own PCS files (made into one document: the TCB info
and QE identity cut byte-exact from the PCS responses, the CRLs, the TCB signing chain from the
dcap-qvl collateral, the quote's own PCK CA chain as the CRL issuer chain) at its tests' times.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import dcap_qvl  # type: ignore[import-untyped]  # ships a .pyi but no py.typed marker
import pytest
from cryptography.hazmat.primitives import serialization

from federation.ear.model import Appraisal
from federation.evidence import Evidence
from verifiers.local.collateral.base import Collateral
from verifiers.local.collateral.intel import pcs_member
from verifiers.local.corim.store import ReferenceValueStore
from verifiers.local.evidence.tdx import MEDIA_TYPE, parse_quote
from verifiers.local.scheme import Context
from verifiers.local.schemes.tdx import SCHEME

TDX = Path(__file__).resolve().parents[2] / "shared" / "vectors" / "tdx"
NO_MATCHING_LEVEL = "No matching TCB level found"


def _pem(certs: Any) -> str:
    return "".join(c.public_bytes(serialization.Encoding.PEM).decode("ascii") for c in certs)


def _dcap(name: str) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((TDX / "dcap-qvl" / name).read_text())
    return doc


def _with_v5_tcb_info(doc: dict[str, Any]) -> dict[str, Any]:
    """*doc* with go-tdx-guest's v5 TCB info (same FMSPC 90c06f000000, same signer) in place of its own."""
    info, signature = pcs_member((TDX / "go-tdx-guest" / "sample_tcbinfo_response_v5").read_bytes(), "tcbInfo")
    return {**doc, "tcb_info": info.decode("utf-8"), "tcb_info_signature": signature.hex()}


def _go_tdx_guest(quote: str, tcb_info: str) -> dict[str, Any]:
    """go-tdx-guest's PCS files as one document, as a PCCS would serve them for *quote*."""
    files = TDX / "go-tdx-guest"
    info, info_sig = pcs_member((files / tcb_info).read_bytes(), "tcbInfo")
    qe, qe_sig = pcs_member((files / "sample_qeIdentity_response").read_bytes(), "enclaveIdentity")
    signing_chain = _dcap("tdx_quote_collateral.json")["tcb_info_issuer_chain"]  # the only copy in the vectors
    return {
        "pck_crl_issuer_chain": _pem(parse_quote((files / quote).read_bytes()).pck_chain[1:]),
        "root_ca_crl": (files / "rootcrl.der").read_bytes().hex(),
        "pck_crl": (files / "pckcrl").read_bytes().hex(),
        "tcb_info_issuer_chain": signing_chain, "tcb_info": info.decode("utf-8"), "tcb_info_signature": info_sig.hex(),
        "qe_identity_issuer_chain": signing_chain, "qe_identity": qe.decode("utf-8"),
        "qe_identity_signature": qe_sig.hex(),
    }


@dataclass(frozen=True)
class Pair:
    quote: str
    collateral: dict[str, Any]
    at: datetime
    expected: str | None  # the agreed status; None: no status (collateral refused)
    dcap_error: str | None = None  # what dcap-qvl's error must say, when it raises


MARCH_2026 = datetime(2026, 3, 1, tzinfo=UTC)
PAIRS = {
    "dcap-qvl quote, its collateral": Pair(
        "dcap-qvl/tdx_quote", _dcap("tdx_quote_collateral.json"), datetime(2025, 7, 1, tzinfo=UTC), "UpToDate"),
    "dcap-qvl outdated quote, its collateral": Pair(
        "dcap-qvl/tdx_quote_outdated", _dcap("tdx_quote_outdated_collateral.json"), MARCH_2026, "NotSupported",
        NO_MATCHING_LEVEL),
    "go-tdx-guest v5 sample, dcap-qvl 2026 collateral": Pair(
        "go-tdx-guest/quote_v5_sample.dat", _dcap("tdx_quote_outdated_collateral.json"), MARCH_2026, "UpToDate"),
    "go-tdx-guest v5 sample, v5 TCB info (TDX_01)": Pair(
        "go-tdx-guest/quote_v5_sample.dat", _with_v5_tcb_info(_dcap("tdx_quote_outdated_collateral.json")),
        MARCH_2026, "UpToDate"),
    "dcap-qvl outdated quote, v5 TCB info": Pair(
        "dcap-qvl/tdx_quote_outdated", _with_v5_tcb_info(_dcap("tdx_quote_outdated_collateral.json")),
        MARCH_2026, "NotSupported", NO_MATCHING_LEVEL),
    "go-tdx-guest v5 sample, go-tdx-guest files at 2026-02-03": Pair(
        "go-tdx-guest/quote_v5_sample.dat", _go_tdx_guest("quote_v5_sample.dat", "sample_tcbinfo_response_v5"),
        datetime(2026, 2, 3, 1, tzinfo=UTC), None, "CrlExpired"),
    "go-tdx-guest SPR quote, go-tdx-guest files at 2023-07-01": Pair(
        "go-tdx-guest/tdx_prod_quote_SPR_E4.dat", _go_tdx_guest("tdx_prod_quote_SPR_E4.dat", "sample_tcbInfo_response"),
        datetime(2023, 7, 1, 1, tzinfo=UTC), None, "CertNotValidYet"),
}


def theirs(pair: Pair, quote: bytes) -> tuple[str | None, list[str], str | None]:
    """dcap-qvl's (status, advisory ids, error) on the pair; a no-matching-level error is NotSupported."""
    collateral = dcap_qvl.QuoteCollateralV3.from_json(json.dumps(pair.collateral))
    try:
        report = dcap_qvl.verify(quote, collateral, int(pair.at.timestamp()))
    except ValueError as exc:
        status = "NotSupported" if NO_MATCHING_LEVEL in str(exc) else None
        return status, [], str(exc)
    return str(report.status), list(report.advisory_ids), None


def ours(pair: Pair, quote: bytes) -> tuple[str | None, list[str], Appraisal]:
    """Our scheme's (asserted status, advisory ids, appraisal) on the same document."""
    evidence = Evidence(MEDIA_TYPE, quote)
    (request,) = SCHEME.collateral_requests(evidence)
    found = {request: Collateral(request, json.dumps(pair.collateral).encode(), pair.quote)}
    ctx = Context(parse_quote(quote).body.report_data, pair.at, ReferenceValueStore(), found)
    appraisal = SCHEME.appraise(evidence, ctx)["INTEL_TDX"]
    claims = appraisal.extensions["ear_veraison_policy_claims"]
    assert "problem" not in claims, claims  # every quote verifies: only the TCB status is compared
    assert appraisal.trust_vector is not None
    hardware = appraisal.trust_vector.get("hardware")
    status = claims.get("tcb_status") if hardware != 0 else None  # hardware 0: no status is asserted
    return status, list(claims.get("advisory_ids", [])), appraisal


@pytest.mark.parametrize("name", sorted(PAIRS))
def test_tcb_status_agrees_with_dcap_qvl(name: str) -> None:
    pair = PAIRS[name]
    quote = (TDX / pair.quote).read_bytes()
    their_status, their_advisories, error = theirs(pair, quote)
    our_status, our_advisories, appraisal = ours(pair, quote)
    assert our_status == their_status == pair.expected, (name, error, appraisal.extensions)
    assert our_advisories == their_advisories
    if pair.dcap_error is None:
        assert error is None
    else:
        assert error is not None and pair.dcap_error in error
    claims = appraisal.extensions["ear_veraison_policy_claims"]
    if pair.expected == "NotSupported":
        assert claims["tcb_problem"].startswith("no matching TCB level")
    if pair.expected is None:  # the collateral, not the platform, is why there is no status
        assert claims["collateral"]["complete"] is False

