"""The vendor mapping tables are the truth: docs/backends.md shows them as the code has them, and
every row of every table decides a trust claim for some claims set the service can issue.

Each case below is a claims set in the service's own shape, run through the service's claims-level
mapping (the same path as a verified token after its checks); the case states the AR4SI values it
must produce, and the rows that fired are collected so that a row no case reaches fails the suite.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from federation.ar4si import CLAIMS
from federation.errors import MalformedError
from verifiers.vendor import SERVICES, TABLES, doc, google, ita, maa, trustee
from verifiers.vendor.mapping import PASS

DOCS = Path(__file__).resolve().parents[1] / "docs" / "backends.md"
T = {"iat": 1_800_000_000, "exp": 1_800_000_300}


def test_docs_blocks_are_the_rendered_tables() -> None:
    text = DOCS.read_text(encoding="utf-8")
    blocks = doc.blocks(text)
    assert set(blocks) >= set(SERVICES), "docs/backends.md lacks a table block (run python -m verifiers.vendor.doc)"
    for kind in SERVICES:
        assert blocks[kind] == doc.render(kind), (
            f"docs/backends.md table {kind!r} drifted: run python -m verifiers.vendor.doc docs/backends.md")
    assert doc.splice(text) == text


def test_rendering_shows_every_row_and_the_version() -> None:
    for kind, table in TABLES.items():
        text = doc.render(kind)
        assert f"mapping table version {table.version}" in text
        assert table.policy_id in text
        rows = [line for line in text.splitlines() if line.startswith("| ") and not line.startswith("| #")]
        assert len(rows) == len(table.rules)
        for index, (row, rule) in enumerate(zip(rows, table.rules, strict=True), 1):
            assert row.startswith(f"| {index} | {rule.ar4si} |")


def test_splice_appends_missing_blocks_and_keeps_prose() -> None:
    text = "# Title\n\nprose before\n"
    out = doc.splice(text)
    assert out.startswith(text.rstrip("\n"))
    assert set(doc.blocks(out)) == set(SERVICES)
    assert doc.splice(out) == out


def test_tables_cover_every_ar4si_claim_and_are_versioned() -> None:
    for kind, table in TABLES.items():
        assert table.service == kind and table.version >= 1
        assert {r.ar4si for r in table.rules} == set(CLAIMS), f"{kind}: every AR4SI claim has a row"


# --------------------------------------------------------------------------- every row is exercised

ITA_TDX = {**T, "iss": "Intel Trust Authority", "attester_type": "TDX", "attester_tcb_status": "UpToDate",
           "tdx_td_attributes_debug": False, "tdx_is_debuggable": False, "dbgstat": "disabled"}
ITA_SGX = {**T, "iss": "Intel Trust Authority", "attester_type": "SGX", "attester_tcb_status": "UpToDate",
           "sgx_is_debuggable": False, "dbgstat": "disabled"}


def _without(claims: Mapping[str, Any], *names: str) -> dict[str, Any]:
    return {k: v for k, v in claims.items() if k not in names}


ITA_CASES: list[tuple[dict[str, Any], dict[str, int]]] = [
    (ITA_TDX, {"instance-identity": 2, "hardware": 2, "configuration": 2, "executables": 0, "file-system": 0,
               "runtime-opaque": 2, "storage-opaque": 0, "sourced-data": 0}),
    (ITA_SGX, {"hardware": 2, "configuration": 2, "runtime-opaque": 2}),
    ({**ITA_TDX, "attester_tcb_status": "Revoked"}, {"hardware": 96}),
    ({**ITA_TDX, "attester_tcb_status": "OutOfDate"}, {"hardware": 32, "configuration": 2}),
    ({**ITA_TDX, "attester_tcb_status": "SWHardeningNeeded"}, {"hardware": 32, "configuration": 2}),
    ({**ITA_TDX, "attester_tcb_status": "OUT_OF_DATE"}, {"hardware": 32}),  # unknown: never up to date
    (_without(ITA_TDX, "attester_tcb_status"), {"hardware": 0}),  # absent: never up to date
    ({**ITA_TDX, "tdx_td_attributes_debug": True}, {"configuration": 96}),
    ({**ITA_SGX, "sgx_is_debuggable": True}, {"configuration": 96}),
    ({**ITA_TDX, "dbgstat": "enabled"}, {"configuration": 96}),
    ({**ITA_TDX, "attester_tcb_status": "ConfigurationNeeded"}, {"hardware": 32, "configuration": 32}),
    ({**ITA_TDX, "attester_tcb_status": "OutOfDateConfigurationNeeded"}, {"hardware": 32, "configuration": 32}),
    (_without(ITA_TDX, "tdx_td_attributes_debug", "tdx_is_debuggable", "dbgstat"), {"configuration": 0}),
    ({**ITA_TDX, "policy_ids_unmatched": [{"id": "p"}], "policy_ids_matched": [{"id": "q"}]}, {"executables": 33}),
    ({**ITA_TDX, "policy_ids_matched": [{"id": "q"}], "policy_ids_unmatched": None}, {"executables": 2}),
    ({**ITA_TDX, "policy_ids_matched": None, "policy_ids_unmatched": []}, {"executables": 0}),
]

MAA_SNP = {**T, "x-ms-attestation-type": "sevsnpvm", "x-ms-compliance-status": "azure-compliant-cvm",
           "x-ms-sevsnpvm-is-debuggable": False}
MAA_TDX = {**T, "x-ms-attestation-type": "tdxvm", "x-ms-compliance-status": "azure-compliant-cvm",
           "attester_tcb_status": "UpToDate", "tdx_td_attributes_debug": False, "dbgstat": "disabled"}
MAA_AZUREVM = {**T, "x-ms-attestation-type": "azurevm", "x-ms-azurevm-kerneldebug-enabled": False,
               "x-ms-azurevm-testsigning-enabled": False,
               "x-ms-isolation-tee": {"x-ms-attestation-type": "sevsnpvm",
                                      "x-ms-compliance-status": "azure-compliant-cvm",
                                      "x-ms-sevsnpvm-is-debuggable": False}}

MAA_CASES: list[tuple[dict[str, Any], dict[str, int]]] = [
    (MAA_SNP, {"instance-identity": 2, "hardware": 2, "configuration": 2, "executables": 0, "file-system": 0,
               "runtime-opaque": 2, "storage-opaque": 0, "sourced-data": 0}),
    (MAA_TDX, {"hardware": 2, "configuration": 2}),
    (MAA_AZUREVM, {"hardware": 2, "configuration": 2}),
    ({**MAA_SNP, "x-ms-compliance-status": "not-compliant"}, {"hardware": 32}),
    (_without(MAA_SNP, "x-ms-compliance-status"), {"hardware": 32}),  # absent: never up to date
    ({**MAA_SNP, "x-ms-sevsnpvm-is-debuggable": True}, {"configuration": 96}),
    ({**MAA_TDX, "tdx_td_attributes_debug": True}, {"configuration": 96}),
    ({**MAA_TDX, "dbgstat": "enabled"}, {"configuration": 96}),
    ({**MAA_AZUREVM, "x-ms-azurevm-kerneldebug-enabled": True}, {"configuration": 32, "hardware": 2}),
    ({**MAA_AZUREVM, "x-ms-azurevm-testsigning-enabled": True}, {"configuration": 32}),
    ({**MAA_TDX, "attester_tcb_status": "Revoked"}, {"hardware": 96}),
    ({**MAA_TDX, "attester_tcb_status": "OutOfDate"}, {"hardware": 32, "configuration": 2}),
    ({**MAA_TDX, "attester_tcb_status": "SomethingNew"}, {"hardware": 32}),
    (_without(MAA_TDX, "attester_tcb_status"), {"hardware": 0}),  # TDX without status: not compliance-read
    ({**MAA_TDX, "attester_tcb_status": "ConfigurationAndSWHardeningNeeded"}, {"hardware": 32,
                                                                               "configuration": 32}),
    (_without(MAA_SNP, "x-ms-sevsnpvm-is-debuggable"), {"configuration": 0}),
]

GOOGLE_TDX = {**T, "iss": google.ISSUER, "hwmodel": "GCP_INTEL_TDX", "dbgstat": "disabled-since-boot",
              "submods": {"confidential_space": {"support_attributes": ["LATEST", "STABLE", "USABLE"]},
                          "container": {"image_digest": "sha256:aa"}}}

GOOGLE_CASES: list[tuple[dict[str, Any], dict[str, int]] | tuple[dict[str, Any], dict[str, int], dict[str, Any]]]
GOOGLE_CASES = [
    (GOOGLE_TDX, {"instance-identity": 2, "hardware": 2, "configuration": 2, "executables": 0, "file-system": 0,
                  "runtime-opaque": 2, "storage-opaque": 0, "sourced-data": 0}),
    ({**GOOGLE_TDX, "hwmodel": "GCP_AMD_SEV"}, {"hardware": 2, "runtime-opaque": 2}),
    ({**GOOGLE_TDX, "hwmodel": "GCP_SHIELDED_VM"}, {"hardware": 32, "runtime-opaque": 0}),
    ({**GOOGLE_TDX, "hwmodel": "GCP_SOMETHING_ELSE"}, {"hardware": 0, "runtime-opaque": 0}),
    (_without(GOOGLE_TDX, "hwmodel"), {"hardware": 0, "runtime-opaque": 0}),
    ({**GOOGLE_TDX, "dbgstat": "enabled"}, {"configuration": 96}),
    ({**GOOGLE_TDX, "submods": {"confidential_space": {"support_attributes": ["LATEST", "USABLE"]}}},
     {"configuration": 32}),
    ({**GOOGLE_TDX, "submods": {}}, {"configuration": 32}),  # no support attributes: lacks STABLE
    ({**GOOGLE_TDX, "dbgstat": "something"}, {"configuration": 0}),
    (GOOGLE_TDX, {"executables": 2}, {"image_digests": ["sha256:aa", "sha256:bb"]}),
    (GOOGLE_TDX, {"executables": 33}, {"image_digests": "sha256:bb"}),
    ({**GOOGLE_TDX, "submods": {"confidential_space": {"support_attributes": ["STABLE"]}}}, {"executables": 33},
     {"image_digests": ["sha256:bb"]}),  # no image digest at all: not a reference image
]

TRUSTEE_VECTOR = {"instance-identity": 2, "configuration": 36, "executables": 33, "file-system": 2, "hardware": 97,
                  "runtime-opaque": 2, "storage-opaque": 32, "sourced-data": 2}
TRUSTEE_CASES: list[tuple[dict[str, Any], dict[str, int]]] = [
    ({**T, "eat_profile": "tag:github.com,2024:confidential-containers/Trustee",
      "ear.verifier-id": {"developer": "https://confidentialcontainers.org", "build": "as"},
      "submods": {"cpu0": {"ear.status": "contraindicated", "ear.trustworthiness-vector": TRUSTEE_VECTOR}}},
     TRUSTEE_VECTOR),
    ({**T, "eat_profile": "tag:ietf.org,2026:rats/ear#03", "ear_verifier_id": {"developer": "d", "build": "b"},
      "submods": {"cpu0": {"ear_status": "affirming", "ear_trustworthiness_vector": {"hardware": 2}}}},
     {"hardware": 2}),
]

MODULES: dict[str, Any] = {"ita": ita, "maa": maa, "google": google, "trustee": trustee}
CASES: dict[str, list[Any]] = {"ita": ITA_CASES, "maa": MAA_CASES, "google": GOOGLE_CASES, "trustee": TRUSTEE_CASES}


@pytest.mark.parametrize("kind", list(CASES))
def test_every_row_decides_for_some_claims_set(kind: str) -> None:
    table = TABLES[kind]
    fired_rows: set[int] = set()
    for case in CASES[kind]:
        claims, expected, expect = (*case, {}) if len(case) == 2 else case
        view = MODULES[kind].map_claims(claims, expect=expect)
        assert view.mapping == table.id
        for submod, appraisal in view.ear.submods.items():
            assert appraisal.trust_vector is not None
            got = appraisal.trust_vector.as_dict()
            for claim, value in expected.items():
                assert got.get(claim) == value, f"{kind} {claims!r:.200}: {claim} {got.get(claim)} != {value}"
            # the table is the truth: the value is the deciding row's (or passed through as given)
            for claim, row in view.fired[submod].items():
                assert row is not None, f"{kind}: no row decided {claim}"
                rule = table.rules[row - 1]
                assert rule.ar4si == claim
                assert rule.tee in (None, submod)
                if rule.value is not PASS:
                    assert got[claim] == rule.value
                fired_rows.add(row)
            # status per submodule = worst tier of its vector
            assert appraisal.status is appraisal.trust_vector.worst_tier()
            assert appraisal.extensions["ear_veraison_policy_claims"]["vendor-map"] == table.id
    missing = sorted(set(range(1, len(table.rules) + 1)) - fired_rows)
    assert not missing, f"{kind}: rows {missing} are never exercised"


def test_claims_of_the_wrong_type_are_malformed_not_misread() -> None:
    with pytest.raises(MalformedError, match="wrong type"):
        ita.map_claims({**ITA_TDX, "tdx_td_attributes_debug": "false"})
    with pytest.raises(MalformedError, match="wrong type"):
        maa.map_claims({**MAA_SNP, "x-ms-compliance-status": 1})
    with pytest.raises(MalformedError, match="wrong type"):
        google.map_claims({**GOOGLE_TDX, "submods": {"confidential_space": {"support_attributes": "STABLE"}}})
    with pytest.raises(MalformedError, match="wrong type"):
        ita.map_claims({**ITA_TDX, "policy_ids_unmatched": "p"})


def test_submodule_naming() -> None:
    assert list(ita.map_claims(_without(ITA_TDX, "attester_type") | {"tdx_mrtd": "00"}).ear.submods) == ["tdx"]
    assert list(ita.map_claims(_without(ITA_SGX, "attester_type") | {"sgx_mrenclave": "00"}).ear.submods) == ["sgx"]
    with pytest.raises(MalformedError):  # attester type and TEE claims disagree
        ita.map_claims({**ITA_SGX, "tdx_mrtd": "00"})
    with pytest.raises(MalformedError):
        ita.map_claims({**ITA_TDX, "attester_type": "TPM"})
    with pytest.raises(MalformedError):
        maa.map_claims({**MAA_SNP, "x-ms-attestation-type": "sgx"})
    with pytest.raises(MalformedError):  # azurevm without its TEE claims
        maa.map_claims(_without(MAA_AZUREVM, "x-ms-isolation-tee"))
    assert list(google.map_claims({**GOOGLE_TDX, "hwmodel": "GCP_SHIELDED_VM"}).ear.submods) == ["gce"]
    assert list(trustee.map_claims(TRUSTEE_CASES[0][0]).ear.submods) == ["cpu0"]
