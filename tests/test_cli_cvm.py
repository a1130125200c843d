"""``ratsfed appraise`` without a config on every SEV-SNP and TDX vector in ../shared/vectors: one
in-process local appraiser, the media type sniffed, certificates from ``--chain``, Intel collateral
from ``--collateral``, at the times the vectors' SOURCES.md name, with the outcome it states.

No ``--corim`` here: the chain, signatures, policy and TCB are appraised and the measurements
reported unrecognized (executables 33), so a report that passes everything is ``warning``."""

from __future__ import annotations

import json
import ssl
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from federation.cli.main import main
from verifiers.local.evidence.tdx import parse_quote

VECTORS = Path(__file__).resolve().parents[2] / "shared" / "vectors"
SNP = VECTORS / "sev-snp"
GSG = SNP / "go-sev-guest"
MILAN = GSG / "attestation.bin"
VCEK = GSG / "vcek.testcer"
MILAN_CHAIN = GSG / "trust" / "ask_ark_milan.pem"
GENOA_TSM = SNP / "veraison" / "sevsnp-tsm-report.cbor"
TDX = VECTORS / "tdx"
DCAP = TDX / "dcap-qvl"
GTG = TDX / "go-tdx-guest"

MILAN_AT, GENOA_AT = "2024-01-01T00:00:00Z", "2026-01-01T00:00:00Z"
MILAN_NONCE = "0102030405000000"  # REPORT_DATA is 01 02 03 04 05 00..: the raw rule zero-pads a nonce of 8 bytes
GENOA_NONCE = (b"MIDBNH28iioisjPyxxxxxxxxxxxxxxxx" * 2).hex()
FRESH, NOT_FRESH = "checked", "not checked"


def appraise(capsys: pytest.CaptureFixture[str], *args: str | Path) -> tuple[int, dict[str, Any]]:
    code = main(["appraise", *map(str, args), "--json"])
    return code, json.loads(capsys.readouterr().out)


def sub(doc: dict[str, Any], name: str) -> dict[str, Any]:
    """The one vote's submodule *name* (the 1-of-1 federation of the no-config mode)."""
    [vote] = doc["votes"]
    assert vote["outcome"] == "ok" and vote["name"] == "local"
    assert set(vote["submods"]) == {name}
    out: dict[str, Any] = vote["submods"][name]
    assert doc["submods"][name]["trust_vector"] == out["trust_vector"]  # the federation's verdict is the vote's
    return out


def report_data(quote: Path) -> str:
    return parse_quote(quote.read_bytes()).body.report_data.hex()


@pytest.fixture(scope="module")
def go_tdx_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """go-tdx-guest's PCS files as an offline folder, plus the only TCB signing chain in the vectors
    (dcap-qvl's collateral JSON carries it; PCS serves it as a response header)."""
    folder = tmp_path_factory.mktemp("go-tdx-guest")
    for f in GTG.iterdir():
        if f.name.startswith("sample_") or f.name in ("pckcrl", "rootcrl.der"):
            (folder / f.name).write_bytes(f.read_bytes())
    chain = json.loads((DCAP / "tdx_quote_collateral.json").read_text())["tcb_info_issuer_chain"]
    (folder / "tcb_signing_chain.pem").write_text(chain)
    return folder


# -- SEV-SNP ---------------------------------------------------------------------------------------


def test_milan_report_is_contraindicated_under_the_default_no_debug_policy(capsys: pytest.CaptureFixture[str]) -> None:
    code, doc = appraise(capsys, MILAN, "--chain", VCEK, "--chain", MILAN_CHAIN, "--at", MILAN_AT,
                         "--nonce", MILAN_NONCE)
    assert (code, doc["status"], doc["freshness"]) == (4, "contraindicated", FRESH)
    s = sub(doc, "SEVSNP")
    tv = s["trust_vector"]
    # the chain and signature verified (instance-identity, hardware 2); the guest policy's DEBUG is 96
    assert (tv["instance-identity"], tv["hardware"], tv["configuration"], tv["executables"]) == (2, 2, 96, 33)
    assert any("debug" in f for f in s["policy_claims"]["findings"])


def test_milan_report_with_debug_allowed_is_not_contraindicated(capsys: pytest.CaptureFixture[str]) -> None:
    code, doc = appraise(capsys, MILAN, "--chain", VCEK, "--chain", MILAN_CHAIN, "--at", MILAN_AT,
                         "--nonce", MILAN_NONCE, "--allow-debug")
    assert (code, doc["status"]) == (3, "warning")  # no --corim: the measurement is unrecognized, nothing worse
    tv = sub(doc, "SEVSNP")["trust_vector"]
    assert tv == {"instance-identity": 2, "configuration": 2, "executables": 33, "file-system": 0, "hardware": 2,
                  "runtime-opaque": 2, "storage-opaque": 0, "sourced-data": 0}


def test_chain_accepts_der_pem_and_bundles_in_any_order(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ask, ark = x509.load_pem_x509_certificates(MILAN_CHAIN.read_bytes())
    vcek = VCEK.read_bytes()  # DER; its serial number 0 makes cryptography warn, so it is not parsed here
    bundle = tmp_path / "bundle.pem"  # one PEM bundle: ARK first, then the VCEK, then the ASK
    bundle.write_text(ark.public_bytes(Encoding.PEM).decode() + ssl.DER_cert_to_PEM_cert(vcek)
                      + ask.public_bytes(Encoding.PEM).decode())
    ders = []
    for name, der in (("ark.der", ark.public_bytes(Encoding.DER)), ("ask.cer", ask.public_bytes(Encoding.DER)),
                      ("vcek.der", vcek)):
        (tmp_path / name).write_bytes(der)
        ders += ["--chain", tmp_path / name]
    for chain in (["--chain", bundle], ders):
        code, doc = appraise(capsys, MILAN, *chain, "--at", MILAN_AT, "--nonce", MILAN_NONCE, "--allow-debug")
        assert (code, doc["status"]) == (3, "warning")
        assert sub(doc, "SEVSNP")["trust_vector"]["instance-identity"] == 2


def test_milan_report_outside_the_vcek_validity_fails_saying_so(capsys: pytest.CaptureFixture[str]) -> None:
    code, doc = appraise(capsys, MILAN, "--chain", VCEK, "--chain", MILAN_CHAIN, "--at", "2030-01-01T00:00:00Z",
                         "--nonce", MILAN_NONCE, "--allow-debug")
    assert (code, doc["status"]) == (4, "contraindicated")
    s = sub(doc, "SEVSNP")
    assert set(s["trust_vector"].values()) == {99}
    assert "VCEK certificate is not valid at 2030-01-01" in s["problem"]


def test_milan_report_without_its_vcek_has_no_trust_anchor(capsys: pytest.CaptureFixture[str]) -> None:
    code, doc = appraise(capsys, MILAN, "--chain", MILAN_CHAIN, "--at", MILAN_AT, "--allow-debug")
    assert (code, doc["status"]) == (4, "contraindicated")
    assert sub(doc, "SEVSNP")["problem"].startswith("no trust anchor for evidence: no VCEK certificate")


def test_genoa_tsm_report_verifies_with_the_certificates_it_carries(capsys: pytest.CaptureFixture[str]) -> None:
    code, doc = appraise(capsys, GENOA_TSM, "--at", GENOA_AT, "--nonce", GENOA_NONCE)
    assert (code, doc["status"], doc["freshness"]) == (3, "warning", FRESH)
    tv = sub(doc, "SEVSNP")["trust_vector"]
    assert (tv["instance-identity"], tv["hardware"], tv["configuration"], tv["executables"]) == (2, 2, 2, 33)


def test_genoa_tsm_report_bound_to_another_nonce_fails_freshness(capsys: pytest.CaptureFixture[str]) -> None:
    code, doc = appraise(capsys, GENOA_TSM, "--at", GENOA_AT, "--nonce", "00" * 32)
    assert (code, doc["status"], doc["freshness"]) == (4, "contraindicated", FRESH)
    assert "REPORT_DATA" in sub(doc, "SEVSNP")["problem"] and "nonce" in sub(doc, "SEVSNP")["problem"]


def test_report_data_rule_is_selectable(capsys: pytest.CaptureFixture[str]) -> None:
    code, doc = appraise(capsys, GENOA_TSM, "--at", GENOA_AT, "--nonce", GENOA_NONCE, "--report-data", "sha512")
    assert (code, doc["status"]) == (4, "contraindicated")
    assert "'sha512' rule" in sub(doc, "SEVSNP")["problem"]


# -- TDX -------------------------------------------------------------------------------------------


def tdx_claims(doc: dict[str, Any]) -> dict[str, Any]:
    s = sub(doc, "INTEL_TDX")
    claims: dict[str, Any] = s["policy_claims"]
    claims["_vector"] = s["trust_vector"]
    return claims


def test_dcap_qvl_quote_with_full_collateral_is_up_to_date(capsys: pytest.CaptureFixture[str]) -> None:
    quote = DCAP / "tdx_quote"
    code, doc = appraise(capsys, quote, "--collateral", DCAP / "tdx_quote_collateral.json",
                         "--at", "2025-07-01T00:00:00Z", "--nonce", report_data(quote))
    assert (code, doc["status"], doc["freshness"]) == (3, "warning", FRESH)  # executables 33: no --corim
    c = tdx_claims(doc)
    assert (c["tcb_status"], c["advisory_ids"], c["collateral"]["complete"]) == ("UpToDate", [], True)
    assert c["report_data"] == {"rule": "raw", "checked": True}
    assert (c["_vector"]["hardware"], c["_vector"]["instance-identity"], c["_vector"]["executables"]) == (2, 2, 33)


def test_outdated_v5_quote_matches_no_tcb_level(capsys: pytest.CaptureFixture[str]) -> None:
    quote = DCAP / "tdx_quote_outdated"
    code, doc = appraise(capsys, quote, "--collateral", DCAP / "tdx_quote_outdated_collateral.json",
                         "--at", "2026-03-01T00:00:00Z", "--nonce", report_data(quote))
    assert (code, doc["status"]) == (4, "contraindicated")
    c = tdx_claims(doc)
    assert c["tcb_status"] == "NotSupported" and "no matching TCB level" in c["tcb_problem"]
    assert c["collateral"]["complete"] is True and c["_vector"]["hardware"] == 97


def test_go_tdx_guest_v5_quote_with_the_same_fmspc_collateral_is_up_to_date(capsys: pytest.CaptureFixture[str]
                                                                            ) -> None:
    quote = GTG / "quote_v5_sample.dat"
    code, doc = appraise(capsys, quote, "--collateral", DCAP / "tdx_quote_outdated_collateral.json",
                         "--at", "2026-03-01T00:00:00Z", "--nonce", report_data(quote))
    assert (code, doc["status"]) == (3, "warning")
    c = tdx_claims(doc)
    assert (c["tcb_status"], c["collateral"]["complete"], c["_vector"]["hardware"]) == ("UpToDate", True, 2)


def test_go_tdx_guest_v5_quote_with_its_own_pcs_files(go_tdx_folder: Path, capsys: pytest.CaptureFixture[str]
                                                      ) -> None:
    quote = GTG / "quote_v5_sample.dat"
    code, doc = appraise(capsys, quote, "--collateral", go_tdx_folder, "--at", "2026-02-03T01:00:00Z")
    assert (code, doc["status"]) == (3, "warning")
    c = tdx_claims(doc)
    # the 2026 TCB info is current: UpToDate (TDX_01); the 2023 QE identity and CRLs are not, so the
    # collateral is incomplete and good news does not count (hardware 0)
    assert (c["tcb_status"], c["module_status"], c["collateral"]["tcb_info"]) == ("UpToDate", "UpToDate", "accepted")
    assert c["collateral"]["qe_identity"].startswith("rejected: QE identity is not current")
    assert (c["collateral"]["complete"], c["_vector"]["hardware"]) == (False, 0)


def test_spr_quote_with_trailing_bytes_and_the_2023_collateral(go_tdx_folder: Path, capsys: pytest.CaptureFixture[str]
                                                               ) -> None:
    quote = GTG / "tdx_prod_quote_SPR_E4.dat"
    code, doc = appraise(capsys, quote, "--collateral", go_tdx_folder, "--at", "2023-07-01T01:00:00Z",
                         "--nonce", report_data(quote))
    assert (code, doc["status"]) == (3, "warning")
    c = tdx_claims(doc)
    assert (c["collateral"]["root_ca_crl"], c["collateral"]["pck_crl"]) == ("accepted", "accepted")
    # the only TCB signing certificate in the vectors is valid from 2025-05-06 (SOURCES.md)
    assert "not valid at 2023-07-01" in c["collateral"]["tcb_info"]
    assert "tcb_status" not in c and c["_vector"]["hardware"] == 0 and c["_vector"]["instance-identity"] == 2


def test_cos_quote_without_collateral_is_verified_without_a_tcb_status(capsys: pytest.CaptureFixture[str]) -> None:
    quote = GTG / "cos-113-tdx-quote.dat"
    code, doc = appraise(capsys, quote, "--at", "2025-01-01T00:00:00Z", "--nonce", report_data(quote))
    assert (code, doc["status"]) == (3, "warning")
    c = tdx_claims(doc)
    assert "tcb_status" not in c and c["collateral"]["complete"] is False
    assert (c["_vector"]["instance-identity"], c["_vector"]["hardware"]) == (2, 0)


def test_tdx_quote_bound_to_another_nonce_fails(capsys: pytest.CaptureFixture[str]) -> None:
    code, doc = appraise(capsys, DCAP / "tdx_quote", "--collateral", DCAP / "tdx_quote_collateral.json",
                         "--at", "2025-07-01T00:00:00Z", "--nonce", "00" * 32)
    assert (code, doc["status"]) == (4, "contraindicated")
    assert "REPORT_DATA does not match the session nonce" in sub(doc, "INTEL_TDX")["problem"]


# -- freshness, media types, usage ---------------------------------------------------------------


CASES_WITHOUT_NONCE = [
    ("SEVSNP", [MILAN, "--chain", VCEK, "--chain", MILAN_CHAIN, "--at", MILAN_AT, "--allow-debug"], "warning"),
    ("SEVSNP", [GENOA_TSM, "--at", GENOA_AT], "warning"),
    ("INTEL_TDX", [DCAP / "tdx_quote", "--collateral", DCAP / "tdx_quote_collateral.json",
                   "--at", "2025-07-01T00:00:00Z"], "warning"),
    ("INTEL_TDX", [GTG / "cos-113-tdx-quote.dat", "--at", "2025-01-01T00:00:00Z"], "warning"),
]


@pytest.mark.parametrize(("scheme", "args", "status"), CASES_WITHOUT_NONCE)
def test_without_a_nonce_freshness_is_not_checked_and_the_result_says_so(
        capsys: pytest.CaptureFixture[str], scheme: str, args: list[str | Path], status: str) -> None:
    code, doc = appraise(capsys, *args)
    assert (code, doc["status"], doc["freshness"]) == (3, status, NOT_FRESH)
    assert sub(doc, scheme)["policy_claims"]["freshness"] == NOT_FRESH
    assert len(bytes.fromhex(doc["nonce"])) == 32  # the federation's own nonce, echoed by the local EAR


def test_text_output_states_that_freshness_was_not_checked(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["appraise", str(GENOA_TSM), "--at", GENOA_AT]) == 3
    out = capsys.readouterr().out
    assert "status: warning" in out and "freshness: not checked" in out
    assert main(["appraise", str(GENOA_TSM), "--at", GENOA_AT, "--nonce", GENOA_NONCE]) == 3
    assert "freshness" not in capsys.readouterr().out


@pytest.mark.parametrize(("evidence", "media_type"), [
    (MILAN, "application/vnd.amd.sev.snp.attestation-report"),
    (GENOA_TSM, "application/vnd.veraison.tsm-report+cbor"),
    (DCAP / "tdx_quote", "application/vnd.intel.tdx-quote"),
])
def test_explicit_media_type_gives_the_sniffed_verdict(capsys: pytest.CaptureFixture[str], evidence: Path,
                                                       media_type: str) -> None:
    common = ["--chain", VCEK, "--chain", MILAN_CHAIN, "--collateral", DCAP / "tdx_quote_collateral.json",
              "--at", "2025-07-01T00:00:00Z", "--allow-debug"]
    sniffed = appraise(capsys, evidence, *common)[1]
    given = appraise(capsys, evidence, *common, "--media-type", media_type)[1]
    assert given["submods"] == sniffed["submods"]


def test_local_flags_are_refused_with_a_config(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = tmp_path / "fed.toml"
    cfg.write_text('[quorum]\nk = 1\n[[verifiers]]\nname = "v"\nkind = "local"\noperator = "o"\n')
    for flags in (["--chain", str(VCEK)], ["--collateral", str(DCAP)], ["--allow-debug"], ["--corim", "x.cbor"]):
        code, doc = appraise(capsys, GENOA_TSM, "--config", cfg, *flags)
        assert (code, doc["error"]["reason"]) == (2, "usage")
        assert flags[0] in doc["error"]["detail"]


def test_config_mode_still_works_with_the_new_options(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = tmp_path / "fed.toml"
    cfg.write_text("[quorum]\nk = 2\n" + "".join(
        f'[[verifiers]]\nname = "v{i}"\nkind = "local"\noperator = "op{i}"\n'
        f'options = {{ collateral = ["{VCEK}", "{MILAN_CHAIN}"], allow_debug = true, at = "{MILAN_AT}" }}\n'
        for i in range(3)))
    code, doc = appraise(capsys, MILAN, "--config", cfg, "--nonce", MILAN_NONCE, "--at", MILAN_AT)
    assert (code, doc["status"], doc["freshness"]) == (3, "warning", FRESH)
    assert [v["outcome"] for v in doc["votes"]] == ["ok"] * 3


def test_missing_chain_file_is_an_input_error(capsys: pytest.CaptureFixture[str]) -> None:
    code, doc = appraise(capsys, MILAN, "--chain", "/nonexistent/vcek.der", "--at", MILAN_AT)
    assert (code, doc["error"]["reason"]) == (2, "config")
    assert "/nonexistent/vcek.der" in doc["error"]["detail"]


def test_evidence_no_local_scheme_reads_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    evidence = tmp_path / "e.bin"
    evidence.write_bytes(b"opaque")
    code, doc = appraise(capsys, evidence, "--media-type", "application/octet-stream")
    assert (code, doc["error"]["reason"]) == (2, "usage")
    assert "application/vnd.intel.tdx-quote" in doc["error"]["detail"]  # it lists what it reads
