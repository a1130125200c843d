"""Intel collateral on the real files in ../shared/vectors/tdx: pin, chains, CRLs, TCB info, QE
identity, TCB status, the dcap-qvl document form and the offline folder handler.

Times come from tdx/SOURCES.md: dcap-qvl's complete collateral is current from
2025-06-19T10:32:27Z to 2025-07-19T10:00:35Z, the outdated one from 2026-02-18T10:58:51Z to
2026-03-20T10:41:15Z, go-tdx-guest's 2023 files around 2023-07-01, its v5 TCB info from
2026-02-01T14:49:26Z to 2026-03-03T14:49:26Z.
"""

from __future__ import annotations

import asyncio
import json
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path, PurePosixPath
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from federation.errors import BadSignatureError, StaleError, UntrustedKeyError
from verifiers.local.collateral.base import CollateralRequest
from verifiers.local.collateral.folder import FolderFile, FolderStore, handlers
from verifiers.local.collateral.intel import (
    COLLATERAL_KIND,
    HANDLER,
    PCK_LEAF,
    TCB_SIGNING,
    CollateralError,
    IntelCollateral,
    RevokedError,
    accept_crl,
    collateral_json,
    converge,
    evaluate_tcb,
    index_intel,
    load_crl,
    parse_collateral,
    parse_pck_info,
    parse_qe_identity,
    parse_tcb_info,
    pcs_member,
    validate_chain,
    verify_qe_identity,
    verify_tcb_info,
)
from verifiers.local.evidence.tdx import TdxQuote, parse_quote
from verifiers.local.roots_intel import INTEL_ROOT_PINS, INTEL_SGX_ROOT_CA, spki_sha256

JULY_2025 = datetime(2025, 7, 1, tzinfo=UTC)
MARCH_2026 = datetime(2026, 3, 1, tzinfo=UTC)
FEB_2026 = datetime(2026, 2, 3, 1, tzinfo=UTC)
JULY_2023 = datetime(2023, 7, 1, 1, tzinfo=UTC)


def tdx(vectors: Path, name: str) -> Path:
    return vectors / "tdx" / name


def quote(vectors: Path, name: str) -> TdxQuote:
    return parse_quote(tdx(vectors, name).read_bytes())


def document(vectors: Path, name: str = "dcap-qvl/tdx_quote_collateral.json") -> IntelCollateral:
    return parse_collateral(tdx(vectors, name).read_bytes())


def signing_chain(vectors: Path) -> tuple[x509.Certificate, ...]:
    chain = document(vectors).tcb_info_issuer_chain
    assert chain is not None
    return chain


# -- the pin ------------------------------------------------------------------------------------------

def test_the_pin_is_the_vector_roots_key(vectors: Path) -> None:
    der = x509.load_der_x509_certificate(tdx(vectors, "dcap-qvl/TrustedRootCA.der").read_bytes())
    pem = x509.load_pem_x509_certificate(tdx(vectors, "go-tdx-guest/trusted_root.pem").read_bytes())
    assert spki_sha256(der) == spki_sha256(pem) == INTEL_SGX_ROOT_CA
    assert INTEL_ROOT_PINS[INTEL_SGX_ROOT_CA] == "Intel SGX Root CA"
    for name in ("dcap-qvl/tdx_quote", "go-tdx-guest/quote_v5_sample.dat"):
        assert quote(vectors, name).pck_chain[-1] == der  # the root the quotes carry, byte for byte


# -- chains ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("name", "when"), [
    ("dcap-qvl/tdx_quote", JULY_2025), ("dcap-qvl/tdx_quote_outdated", MARCH_2026),
    ("go-tdx-guest/quote_v5_sample.dat", FEB_2026), ("go-tdx-guest/tdx_prod_quote_SPR_E4.dat", JULY_2023),
    ("go-tdx-guest/cos-113-tdx-quote.dat", datetime(2025, 1, 1, tzinfo=UTC)),
])
def test_pck_chains_validate_to_the_pin(vectors: Path, name: str, when: datetime) -> None:
    chain = validate_chain(quote(vectors, name).pck_chain, when, leaf_name=PCK_LEAF)
    assert chain.root_name == "Intel SGX Root CA" and len(chain.certs) == 3


def test_a_pck_outside_its_validity_is_stale(vectors: Path) -> None:
    q = quote(vectors, "go-tdx-guest/quote_v5_sample.dat")
    with pytest.raises(StaleError, match=r"'Intel SGX PCK Certificate' is not valid at 2034-01-01T00:00:00Z \(valid "
                                         r"2026-01-27T.*Z to 2033-01-27T.*Z\)"):
        validate_chain(q.pck_chain, datetime(2034, 1, 1, tzinfo=UTC), leaf_name=PCK_LEAF)
    with pytest.raises(StaleError, match="not valid at 2025-12-31"):
        validate_chain(q.pck_chain, datetime(2025, 12, 31, tzinfo=UTC), leaf_name=PCK_LEAF)


def _self_signed(name: x509.Name) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(datetime(2018, 1, 1, tzinfo=UTC)).not_valid_after(datetime(2049, 1, 1, tzinfo=UTC))
            .add_extension(x509.BasicConstraints(ca=True, path_length=1), critical=True)
            .sign(key, hashes.SHA256()))
    return cert, key


def test_an_evidence_supplied_root_that_matches_no_pin_is_never_trusted(vectors: Path) -> None:
    q = quote(vectors, "dcap-qvl/tdx_quote")
    impostor, key = _self_signed(q.pck_chain[2].subject)  # Intel's exact name, another key
    assert impostor.subject.rfc4514_string().endswith("CN=Intel SGX Root CA")
    with pytest.raises(UntrustedKeyError, match="matches no pinned or configured root"):
        validate_chain((*q.pck_chain[:2], impostor), JULY_2025, leaf_name=PCK_LEAF)
    # a whole chain under it, as an attacker would build one
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (x509.CertificateBuilder().subject_name(q.pck_chain[1].subject).issuer_name(impostor.subject)
          .public_key(ca_key.public_key()).serial_number(7)
          .not_valid_before(datetime(2018, 1, 1, tzinfo=UTC)).not_valid_after(datetime(2040, 1, 1, tzinfo=UTC))
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True).sign(key, hashes.SHA256()))
    leaf = (x509.CertificateBuilder().subject_name(q.pck_chain[0].subject).issuer_name(ca.subject)
            .public_key(ec.generate_private_key(ec.SECP256R1()).public_key()).serial_number(8)
            .not_valid_before(datetime(2018, 1, 1, tzinfo=UTC)).not_valid_after(datetime(2040, 1, 1, tzinfo=UTC))
            .sign(ca_key, hashes.SHA256()))
    with pytest.raises(UntrustedKeyError, match="matches no pinned or configured root"):
        validate_chain((leaf, ca, impostor), JULY_2025, leaf_name=PCK_LEAF)
    # ... unless the operator configured that root
    assert validate_chain((leaf, ca, impostor), JULY_2025, leaf_name=PCK_LEAF, roots=(impostor,)).root_name == (
        "Intel SGX Root CA")
    # a chain that stops below the root is completed only from the configured roots
    with pytest.raises(UntrustedKeyError, match="no issuer for 'Intel SGX PCK Platform CA'"):
        validate_chain(q.pck_chain[:2], JULY_2025, leaf_name=PCK_LEAF)
    assert len(validate_chain(q.pck_chain[:2], JULY_2025, leaf_name=PCK_LEAF,
                              roots=(q.pck_chain[2],)).certs) == 3


def test_the_leaf_must_be_what_the_chain_is_for(vectors: Path) -> None:
    q = quote(vectors, "dcap-qvl/tdx_quote")
    with pytest.raises(UntrustedKeyError, match="expected 'Intel SGX TCB Signing'"):
        validate_chain(q.pck_chain, JULY_2025, leaf_name=TCB_SIGNING)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    other_ca = (x509.CertificateBuilder().subject_name(q.pck_chain[1].subject).issuer_name(q.pck_chain[2].subject)
                .public_key(ca_key.public_key()).serial_number(9)
                .not_valid_before(datetime(2018, 1, 1, tzinfo=UTC)).not_valid_after(datetime(2040, 1, 1, tzinfo=UTC))
                .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
                .sign(ca_key, hashes.SHA256()))  # Intel's CA name, not signed by Intel's root
    with pytest.raises(BadSignatureError, match="'Intel SGX PCK Certificate' is not signed by 'Intel SGX PCK Platform"):
        validate_chain((q.pck_chain[0], other_ca, q.pck_chain[2]), JULY_2025, leaf_name=PCK_LEAF)


# -- CRLs -----------------------------------------------------------------------------------------------

def test_vector_crls_verify_and_revoke_nothing_here(vectors: Path) -> None:
    for doc_name, qname, when in (("dcap-qvl/tdx_quote_collateral.json", "dcap-qvl/tdx_quote", JULY_2025),
                                  ("dcap-qvl/tdx_quote_outdated_collateral.json", "dcap-qvl/tdx_quote_outdated",
                                   MARCH_2026)):
        doc = document(vectors, doc_name)
        chain = validate_chain(quote(vectors, qname).pck_chain, when, leaf_name=PCK_LEAF)
        assert doc.root_ca_crl is not None and doc.pck_crl is not None
        root_crl = accept_crl(doc.root_ca_crl, chain.certs[2], when)
        pck_crl = accept_crl(doc.pck_crl, chain.certs[1], when)
        root_crl.check(chain.certs[1])
        pck_crl.check(chain.leaf)
    chain = validate_chain(quote(vectors, "go-tdx-guest/tdx_prod_quote_SPR_E4.dat").pck_chain, JULY_2023,
                           leaf_name=PCK_LEAF)
    pck_crl = accept_crl(tdx(vectors, "go-tdx-guest/pckcrl").read_bytes(), chain.certs[1], JULY_2023)
    assert len(pck_crl.serials) == 44
    root_crl = accept_crl(tdx(vectors, "go-tdx-guest/rootcrl.der").read_bytes(), chain.certs[2], JULY_2023)
    assert root_crl.serials == frozenset()


def test_a_revoked_serial_is_found(vectors: Path) -> None:
    doc = document(vectors)
    assert doc.pck_crl is not None
    chain = quote(vectors, "dcap-qvl/tdx_quote").pck_chain
    crl = accept_crl(doc.pck_crl, chain[1], JULY_2025)
    listed = next(iter(load_crl(doc.pck_crl)))

    class Listed:  # a PCK certificate with a listed serial, as far as the check reads it
        issuer = chain[0].issuer
        serial_number = listed.serial_number
        subject = chain[0].subject

    with pytest.raises(RevokedError, match="is revoked"):
        crl.check(Listed())  # type: ignore[arg-type]


def test_crl_faults(vectors: Path) -> None:
    doc = document(vectors)
    assert doc.pck_crl is not None and doc.root_ca_crl is not None
    chain = quote(vectors, "dcap-qvl/tdx_quote").pck_chain
    with pytest.raises(StaleError, match=r"CRL of 'Intel SGX PCK Platform CA' is not current at 2025-07-20"):
        accept_crl(doc.pck_crl, chain[1], datetime(2025, 7, 20, tzinfo=UTC))
    with pytest.raises(StaleError, match=r"is not current at 2025-06-19T10:00:34Z \(this update 2025-06-19T10:00:35Z"):
        accept_crl(doc.pck_crl, chain[1], datetime(2025, 6, 19, 10, 0, 34, tzinfo=UTC))
    with pytest.raises(UntrustedKeyError, match="is not 'Intel SGX Root CA'"):
        accept_crl(doc.pck_crl, chain[2], JULY_2025)
    flipped = bytearray(doc.pck_crl)
    flipped[-5] ^= 1  # in the signature
    with pytest.raises(BadSignatureError, match="has a bad signature"):
        accept_crl(bytes(flipped), chain[1], JULY_2025)
    flipped = bytearray(doc.pck_crl)
    flipped[300] ^= 1  # in a revoked entry
    with pytest.raises((BadSignatureError, CollateralError)):
        accept_crl(bytes(flipped), chain[1], JULY_2025)
    pem = load_crl(doc.root_ca_crl).public_bytes(serialization.Encoding.PEM)
    assert load_crl(pem) == load_crl(doc.root_ca_crl)
    assert accept_crl(pem, chain[2], JULY_2025) == accept_crl(doc.root_ca_crl, chain[2], JULY_2025)
    with pytest.raises(CollateralError):
        load_crl(b"not a crl")


# -- TCB info and QE identity ------------------------------------------------------------------------------

@pytest.mark.parametrize(("name", "when"), [("dcap-qvl/tdx_quote_collateral.json", JULY_2025),
                                            ("dcap-qvl/tdx_quote_outdated_collateral.json", MARCH_2026)])
def test_dcap_qvl_documents_verify(vectors: Path, name: str, when: datetime) -> None:
    doc = document(vectors, name)
    assert doc.tcb_info and doc.tcb_info_signature and doc.tcb_info_issuer_chain
    assert doc.qe_identity and doc.qe_identity_signature and doc.qe_identity_issuer_chain
    info = verify_tcb_info(doc.tcb_info, doc.tcb_info_signature, doc.tcb_info_issuer_chain, when)
    ident = verify_qe_identity(doc.qe_identity, doc.qe_identity_signature, doc.qe_identity_issuer_chain, when)
    assert (info.id, info.version, ident.id, ident.isv_prod_id) == ("TDX", 3, "TD_QE", 2)
    assert ident.mr_signer.hex().upper() == "DC9E2A7C6F948F17474E34A7FC43ED030F7C1563F1BABDDF6340C82E0E54A8C5"


def test_one_changed_byte_of_signed_collateral_fails(vectors: Path) -> None:
    doc = document(vectors)
    assert doc.tcb_info and doc.tcb_info_signature and doc.tcb_info_issuer_chain
    for i in range(0, len(doc.tcb_info), 97):
        changed = doc.tcb_info[:i] + bytes([doc.tcb_info[i] ^ 1]) + doc.tcb_info[i + 1:]
        with pytest.raises(BadSignatureError):
            verify_tcb_info(changed, doc.tcb_info_signature, doc.tcb_info_issuer_chain, JULY_2025)
    sig = bytes([doc.tcb_info_signature[0] ^ 1]) + doc.tcb_info_signature[1:]
    with pytest.raises(BadSignatureError):
        verify_tcb_info(doc.tcb_info, sig, doc.tcb_info_issuer_chain, JULY_2025)


def test_collateral_outside_its_window_is_stale(vectors: Path) -> None:
    doc = document(vectors)
    assert doc.tcb_info and doc.tcb_info_signature and doc.tcb_info_issuer_chain
    with pytest.raises(StaleError, match=r"TCB info is not current at 2025-07-19T10:16:03Z \(issued "
                                         r"2025-06-19T10:16:03Z, next update 2025-07-19T10:16:03Z\)"):
        verify_tcb_info(doc.tcb_info, doc.tcb_info_signature, doc.tcb_info_issuer_chain,
                        datetime(2025, 7, 19, 10, 16, 3, tzinfo=UTC))
    with pytest.raises(StaleError, match="TCB info is not current"):
        verify_tcb_info(doc.tcb_info, doc.tcb_info_signature, doc.tcb_info_issuer_chain,
                        datetime(2025, 6, 19, 10, 16, 2, tzinfo=UTC))


def test_pcs_responses_keep_the_signed_bytes(vectors: Path) -> None:
    body = tdx(vectors, "go-tdx-guest/sample_tcbinfo_response_v5").read_bytes()
    raw, sig = pcs_member(body, "tcbInfo")
    assert body.startswith(b'{"tcbInfo":' + raw + b',"signature":"')
    info = verify_tcb_info(raw, sig, signing_chain(vectors), FEB_2026)
    assert info.fmspc.hex() == "90c06f000000" and {m.id for m in info.module_identities} == {"TDX_01", "TDX_03"}
    spaced = b'{ "signature" : "' + sig.hex().encode() + b'" ,\n "tcbInfo" :\t' + raw + b" }"
    assert pcs_member(spaced, "tcbInfo") == (raw, sig)
    for bad in (b"[]", b'{"tcbInfo": {}}', b'{"tcbInfo": {}, "signature": "zz"}', b'{"tcbInfo": {} "x": 1}',
                b'{"tcbInfo": {}, "signature": ""} trailing', b"\xff"):
        with pytest.raises(CollateralError):
            pcs_member(bad, "tcbInfo")


def test_the_2023_tcb_info_needs_a_signing_certificate_valid_in_2023(vectors: Path) -> None:
    """The TCB signing certificate in the vectors is valid from 2025-05-06: at go-tdx-guest's 2023
    time the TCB info cannot be verified strictly (SOURCES.md); its signature itself is good."""
    raw, sig = pcs_member(tdx(vectors, "go-tdx-guest/sample_tcbInfo_response").read_bytes(), "tcbInfo")
    with pytest.raises(StaleError, match="'Intel SGX TCB Signing' is not valid at 2023-07-01T01:00:00Z"):
        verify_tcb_info(raw, sig, signing_chain(vectors), JULY_2023)
    with pytest.raises(StaleError, match="TCB info is not current at 2025-07-01"):
        verify_tcb_info(raw, sig, signing_chain(vectors), JULY_2025)  # the signature checked before the window
    raw, sig = pcs_member(tdx(vectors, "go-tdx-guest/sample_qeIdentity_response").read_bytes(), "enclaveIdentity")
    with pytest.raises(StaleError, match="QE identity is not current"):
        verify_qe_identity(raw, sig, signing_chain(vectors), JULY_2025)


def test_malformed_tcb_info_is_a_collateral_error(vectors: Path) -> None:
    doc = json.loads(document(vectors).tcb_info or b"")
    cases: list[dict[str, Any]] = [
        {**doc, "id": "SGX"}, {**doc, "version": 2}, {**doc, "fmspc": "B0C0"}, {**doc, "issueDate": "yesterday"},
        {**doc, "tcbLevels": [{**doc["tcbLevels"][0], "tcbStatus": "Fine"}]},
        {**doc, "tcbLevels": [{**doc["tcbLevels"][0], "tcb": {**doc["tcbLevels"][0]["tcb"], "pcesvn": -1}}]},
        {**doc, "tcbLevels": [{**doc["tcbLevels"][0], "tcb": {**doc["tcbLevels"][0]["tcb"],
                                                              "sgxtcbcomponents": [{"svn": 1}] * 15}}]},
        {**doc, "tcbLevels": "none"}, {k: v for k, v in doc.items() if k != "nextUpdate"},
    ]
    for case in cases:
        with pytest.raises(CollateralError):
            parse_tcb_info(json.dumps(case).encode())
    with pytest.raises(CollateralError):
        parse_tcb_info(b"[1]")
    with pytest.raises(CollateralError):
        parse_qe_identity(json.dumps({**json.loads(document(vectors).qe_identity or b""), "id": "QE"}).encode())


# -- TCB status on the vectors ------------------------------------------------------------------------------

def _status(vectors: Path, qname: str, tcb_raw: bytes, qe_raw: bytes | None = None) -> Any:
    q = quote(vectors, qname)
    pck = parse_pck_info(q.pck_chain[0])
    info = parse_tcb_info(tcb_raw)
    assert info.fmspc == pck.fmspc
    return evaluate_tcb(info, pck, q.body, parse_qe_identity(qe_raw) if qe_raw else None, q.qe_report)


def test_tcb_status_of_each_vector_pair(vectors: Path) -> None:
    doc = document(vectors)
    r = _status(vectors, "dcap-qvl/tdx_quote", doc.tcb_info or b"", doc.qe_identity)
    assert (r.status, r.advisory_ids, r.platform, r.module, r.qe, r.evaluation_number) == (
        "UpToDate", (), "UpToDate", "UpToDate", "UpToDate", 17)
    out = document(vectors, "dcap-qvl/tdx_quote_outdated_collateral.json")
    r = _status(vectors, "dcap-qvl/tdx_quote_outdated", out.tcb_info or b"", out.qe_identity)
    assert (r.status, r.problem) == ("NotSupported", "no matching TCB level: the platform is below every level of "
                                                     "the TCB info")
    r = _status(vectors, "go-tdx-guest/quote_v5_sample.dat", out.tcb_info or b"", out.qe_identity)
    assert (r.status, r.module) == ("UpToDate", "UpToDate")  # same FMSPC, a newer platform
    v5, _ = pcs_member(tdx(vectors, "go-tdx-guest/sample_tcbinfo_response_v5").read_bytes(), "tcbInfo")
    qe23, _ = pcs_member(tdx(vectors, "go-tdx-guest/sample_qeIdentity_response").read_bytes(), "enclaveIdentity")
    r = _status(vectors, "go-tdx-guest/quote_v5_sample.dat", v5, qe23)
    assert (r.status, r.platform, r.module, r.qe, r.tcb_date) == ("UpToDate", "UpToDate", "UpToDate", "UpToDate",
                                                                  "2024-11-13T00:00:00Z")
    assert _status(vectors, "dcap-qvl/tdx_quote_outdated", v5).status == "NotSupported"
    spr, _ = pcs_member(tdx(vectors, "go-tdx-guest/sample_tcbInfo_response").read_bytes(), "tcbInfo")
    assert _status(vectors, "go-tdx-guest/tdx_prod_quote_SPR_E4.dat", spr, qe23).status == "NotSupported"


def test_levels_are_taken_in_intel_order(vectors: Path) -> None:
    """Reversing the JSON order of the levels changes nothing (Intel's QVL sorts them)."""
    doc = json.loads(document(vectors).tcb_info or b"")
    doc["tcbLevels"].reverse()
    r = _status(vectors, "dcap-qvl/tdx_quote", json.dumps(doc).encode())
    assert r.status == "UpToDate"
    doc["tcbLevels"] = doc["tcbLevels"][:1]  # only the 2018 OutOfDate level
    r = _status(vectors, "dcap-qvl/tdx_quote", json.dumps(doc).encode())
    assert (r.status, len(r.advisory_ids)) == ("OutOfDate", 14)


@pytest.mark.parametrize(("parts", "result"), [
    (("UpToDate", "UpToDate"), "UpToDate"),
    (("SWHardeningNeeded", "UpToDate"), "SWHardeningNeeded"),
    (("ConfigurationNeeded", "SWHardeningNeeded"), "ConfigurationAndSWHardeningNeeded"),
    (("ConfigurationNeeded", "OutOfDate"), "OutOfDateConfigurationNeeded"),
    (("SWHardeningNeeded", "OutOfDate"), "OutOfDate"),
    (("ConfigurationAndSWHardeningNeeded", "OutOfDate", "UpToDate"), "OutOfDateConfigurationNeeded"),
    (("OutOfDateConfigurationNeeded", "Revoked"), "Revoked"),
    (("UpToDate",), "UpToDate"),
])
def test_converge(parts: tuple[str, ...], result: str) -> None:
    assert converge(*parts) == result


# -- the document form and the folder handler ---------------------------------------------------------------

def test_the_document_round_trips(vectors: Path) -> None:
    raw = tdx(vectors, "dcap-qvl/tdx_quote_collateral.json").read_bytes()
    doc = parse_collateral(raw)
    again = parse_collateral(collateral_json(doc))
    assert again == doc
    assert json.loads(collateral_json(doc)) == json.loads(raw)
    partial = parse_collateral(json.dumps({"tcb_info": "{}", "pck_crl": None, "x": 1}).encode())
    assert (partial.tcb_info, partial.pck_crl, partial.extra) == (b"{}", None, {"x": 1})
    for bad in (b"[]", b'{"tcb_info": 5}', b'{"pck_crl": "zz"}', b'{"tcb_info_issuer_chain": "no pem"}', b"{"):
        with pytest.raises(CollateralError):
            parse_collateral(bad)


def _request(fmspc: str, ca: str = "platform") -> CollateralRequest:
    return CollateralRequest(COLLATERAL_KIND, (fmspc, ca))


def test_the_intel_handler_is_registered() -> None:
    assert HANDLER in handlers()


def test_a_folder_of_dcap_qvl_documents(vectors: Path) -> None:
    store = FolderStore(tdx(vectors, "dcap-qvl"))
    assert store.requests == {_request("b0c06f000000"), _request("90c06f000000")}
    found = asyncio.run(store.get(_request("b0c06f000000")))
    assert found is not None and found.data == tdx(vectors, "dcap-qvl/tdx_quote_collateral.json").read_bytes()
    named = FolderStore([tdx(vectors, "dcap-qvl/tdx_quote_outdated_collateral.json")])
    assert named.requests == {_request("90c06f000000")}


def test_a_folder_of_pcs_files_is_assembled(vectors: Path, tmp_path: Path) -> None:
    for name in ("sample_tcbInfo_response", "sample_tcbinfo_response_v5", "sample_qeIdentity_response", "pckcrl",
                 "rootcrl.der", "trusted_root.pem"):
        shutil.copy(tdx(vectors, f"go-tdx-guest/{name}"), tmp_path / name)
    # the TCB-Info-Issuer-Chain header, saved without its root (the root file completes it)
    (tmp_path / "tcb-info-issuer-chain.pem").write_bytes(
        signing_chain(vectors)[0].public_bytes(serialization.Encoding.PEM))
    (tmp_path / "notes.txt").write_text("not collateral")
    store = FolderStore(tmp_path)
    assert store.requests == {_request(f, ca) for f in ("50806f000000", "90c06f000000")
                              for ca in ("platform", "processor")}
    found = asyncio.run(store.get(_request("90c06f000000")))
    assert found is not None
    assert found.source.split("; ")[0].endswith("sample_tcbinfo_response_v5")
    doc = parse_collateral(found.data)
    assert doc.tcb_info_issuer_chain is not None and len(doc.tcb_info_issuer_chain) == 2
    assert doc.tcb_info and doc.tcb_info_signature and doc.qe_identity and doc.root_ca_crl and doc.pck_crl
    verify_tcb_info(doc.tcb_info, doc.tcb_info_signature, doc.tcb_info_issuer_chain, FEB_2026)
    processor = asyncio.run(store.get(_request("90c06f000000", "processor")))
    assert processor is not None and parse_collateral(processor.data).pck_crl is None  # only a Platform CA CRL


def test_the_newest_piece_wins(vectors: Path, tmp_path: Path) -> None:
    old = document(vectors, "dcap-qvl/tdx_quote_collateral.json")
    new = document(vectors, "dcap-qvl/tdx_quote_outdated_collateral.json")
    files = []
    for tag, doc in (("old", old), ("new", new)):
        assert doc.qe_identity and doc.qe_identity_signature and doc.root_ca_crl
        body = (b'{"enclaveIdentity":' + doc.qe_identity + b',"signature":"' + doc.qe_identity_signature.hex().encode()
                + b'"}')
        files.append(FolderFile(f"{tag}-qe.json", PurePosixPath(f"{tag}-qe.json"), body))
    v5 = tdx(vectors, "go-tdx-guest/sample_tcbinfo_response_v5").read_bytes()
    files.append(FolderFile("tcb.json", PurePosixPath("tcb.json"), v5))
    (entry, *_) = [c for c in index_intel(files) if c.request == _request("90c06f000000")]
    assert parse_collateral(entry.data).qe_identity == new.qe_identity
    assert "new-qe.json" in entry.source and "old-qe.json" not in entry.source


def test_junk_is_skipped_not_fatal() -> None:
    files = [FolderFile(n, PurePosixPath(n), data) for n, data in (
        ("a.json", b"{broken"), ("b.json", b'{"tcbInfo": 1, "signature": "00"}'), ("c.pem", b"-----BEGIN CERTIFICATE"
                                                                                        b"-----\nAAAA\n"),
        ("d.der", b"\x30\x03\x02\x01\x01"), ("e.json", b'{"pck_crl": "00"}'))]
    assert index_intel(files) == []
    assert HANDLER.wants(PurePosixPath("pckcrl")) and HANDLER.wants(PurePosixPath("x/TCB_info"))
    assert not HANDLER.wants(PurePosixPath("README.md"))


def test_stale_collateral_found_in_a_folder_is_rejected_later(vectors: Path) -> None:
    """The store vouches for nothing: what it finds is judged at the appraisal's now."""
    store = FolderStore(tdx(vectors, "dcap-qvl"))
    found = asyncio.run(store.get(_request("b0c06f000000")))
    assert found is not None
    doc = parse_collateral(found.data)
    assert doc.tcb_info and doc.tcb_info_signature and doc.tcb_info_issuer_chain
    verify_tcb_info(doc.tcb_info, doc.tcb_info_signature, doc.tcb_info_issuer_chain, JULY_2025)
    with pytest.raises(StaleError):
        verify_tcb_info(doc.tcb_info, doc.tcb_info_signature, doc.tcb_info_issuer_chain,
                        JULY_2025 + timedelta(days=30))
