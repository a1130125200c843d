"""TDX quote parsing and the collateral-free checks, on the real quotes in ../shared/vectors/tdx.

Each quote parses to what tdx/SOURCES.md states (version, body type, padding, FMSPC, PCK TCB);
its signatures and the QE report binding verify; every byte of the signed region, of the
signature data and of each certificate of the PCK chain, flipped, makes it fail; malformed
quotes fail with the reason code the parser documents.
"""

from __future__ import annotations

import base64
import struct
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.serialization import Encoding

from federation.errors import BadSignatureError, MalformedError, VerificationError
from verifiers.local.collateral.intel import PCK_LEAF, parse_pck_info, validate_chain
from verifiers.local.evidence.tdx import (
    MEDIA_TYPE,
    QuoteFormatError,
    TdxQuote,
    parse_quote,
    sniff,
    verify_quote,
)

# file, version, body type, quote length, trailing bytes, FMSPC, PCK SGX components, PCESVN, QE ISVSVN, a time
# inside the PCK's validity (SOURCES.md)
QUOTES = {
    "go-tdx-guest/tdx_prod_quote_SPR_E4.dat": (4, 2, 4935, 39, "50806f000000", (3, 3, 2, 2, 2, 1, 0, 2), 11, 4,
                                               datetime(2023, 7, 1, 1, tzinfo=UTC)),
    "go-tdx-guest/quote_v5_sample.dat": (5, 3, 5006, 0, "90c06f000000", (4, 4, 2, 2, 4, 1, 0, 5), 13, 7,
                                         datetime(2026, 2, 3, 1, tzinfo=UTC)),
    "go-tdx-guest/cos-113-tdx-quote.dat": (4, 2, 4935, 3065, "00806f050000", None, None, None,
                                           datetime(2025, 1, 1, tzinfo=UTC)),
    "dcap-qvl/tdx_quote": (4, 2, 4936, 70, "b0c06f000000", (3, 3, 2, 2, 4, 1, 0, 5), 11, 6,
                           datetime(2025, 7, 1, tzinfo=UTC)),
    "dcap-qvl/tdx_quote_outdated": (5, 3, 5006, 0, "90c06f000000", (3, 3, 2, 2, 4, 1, 0, 3), 13, None,
                                    datetime(2026, 3, 1, tzinfo=UTC)),
}
NAMES = sorted(QUOTES)


def read(vectors: Path, name: str) -> bytes:
    return (vectors / "tdx" / name).read_bytes()


def checked(data: bytes, when: datetime) -> TdxQuote:
    """Parse, validate the PCK chain to the pinned root at *when*, verify: raises on any failure."""
    quote = parse_quote(data)
    chain = validate_chain(quote.pck_chain, when, leaf_name=PCK_LEAF)
    verify_quote(quote, chain.leaf_key)
    return quote


@pytest.mark.parametrize("name", NAMES)
def test_each_quote_parses_as_sources_says(vectors: Path, name: str) -> None:
    version, body_type, length, trailing, fmspc, comps, pcesvn, qe_svn, when = QUOTES[name]
    data = read(vectors, name)
    assert sniff(data) == MEDIA_TYPE
    quote = checked(data, when)
    assert (quote.version, quote.body_type, quote.length, quote.trailing) == (version, body_type, length, trailing)
    assert quote.length + quote.trailing == len(data)
    assert len(quote.signed) == (632 if version == 4 else 54 + 648)
    assert (quote.body.tee_tcb_svn2 is not None) == (body_type == 3)
    assert not quote.body.debug
    pck = parse_pck_info(quote.pck_chain[0])
    assert (pck.fmspc.hex(), pck.ca, pck.pce_id) == (fmspc, "platform", b"\x00\x00")
    if comps is not None:
        assert pck.cpu_svn_components[:8] == comps and pck.cpu_svn_components[8:] == (0,) * 8
        assert pck.pce_svn == pcesvn
    if qe_svn is not None:
        assert quote.qe_report.isv_svn == qe_svn
    assert [c.subject.rfc4514_string().split(",")[-1] for c in quote.pck_chain] == [
        "CN=Intel SGX PCK Certificate", "CN=Intel SGX PCK Platform CA", "CN=Intel SGX Root CA"]


def test_the_vector_fields_sources_names(vectors: Path) -> None:
    spr = parse_quote(read(vectors, "go-tdx-guest/tdx_prod_quote_SPR_E4.dat"))
    assert spr.body.tee_tcb_svn.hex().startswith("03000400") and spr.body.td_attributes.hex() == "0000004000000000"
    assert read(vectors, "go-tdx-guest/tdx_prod_quote_SPR_E4.dat")[spr.length:] == (
        b"\nextra bytes(only for testing purpose)\n")
    assert parse_quote(read(vectors, "go-tdx-guest/quote_v5_sample.dat")).body.tee_tcb_svn.hex().startswith("0b0104")
    assert parse_quote(read(vectors, "dcap-qvl/tdx_quote")).body.tee_tcb_svn.hex().startswith("060103")
    assert parse_quote(read(vectors, "dcap-qvl/tdx_quote_outdated")).body.tee_tcb_svn.hex().startswith("070103")
    cos = read(vectors, "go-tdx-guest/cos-113-tdx-quote.dat")
    assert parse_quote(cos).body.report_data == bytes(64) and cos[4935:] == bytes(3065)


@pytest.mark.parametrize("name", NAMES)
def test_more_trailing_bytes_change_nothing(vectors: Path, name: str) -> None:
    data = read(vectors, name)
    a, b = parse_quote(data), parse_quote(data + b"\xff" * 1000)
    assert (a.signed, a.signature, a.qe_report, a.length) == (b.signed, b.signature, b.qe_report, b.length)
    assert b.trailing == a.trailing + 1000


# -- one bit flipped anywhere that matters -----------------------------------------------------------

def _flip(data: bytes, index: int, bit: int = 0) -> bytes:
    return data[:index] + bytes([data[index] ^ (1 << bit)]) + data[index + 1:]


def _fails(data: bytes, when: datetime) -> bool:
    try:
        checked(data, when)
    except (MalformedError, VerificationError):
        return True
    return False


@pytest.mark.parametrize("name", NAMES)
def test_every_byte_of_the_signed_region_is_covered(vectors: Path, name: str) -> None:
    data, when = read(vectors, name), QUOTES[name][-1]
    quote = parse_quote(data)
    survivors = [i for i in range(len(quote.signed)) if not _fails(_flip(data, i, i % 8), when)]
    assert survivors == []


@pytest.mark.parametrize("name", NAMES)
def test_every_bit_of_the_header_and_descriptor_is_covered(vectors: Path, name: str) -> None:
    data, when = read(vectors, name), QUOTES[name][-1]
    end = 54 if parse_quote(data).version == 5 else 48
    assert [(i, b) for i in range(end) for b in range(8) if not _fails(_flip(data, i, b), when)] == []


@pytest.mark.parametrize("name", NAMES)
def test_every_byte_of_the_signature_data_before_the_chain_is_covered(vectors: Path, name: str) -> None:
    """Quote signature, attestation key, certification header, QE report, its signature, auth data."""
    data, when = read(vectors, name), QUOTES[name][-1]
    quote = parse_quote(data)
    start = len(quote.signed) + 4
    end = start + 64 + 64 + 6 + 384 + 64 + 2 + len(quote.qe_auth_data) + 6
    assert [i for i in range(start - 4, end) if not _fails(_flip(data, i, i % 8), when)] == []


def _pem_blocks(data: bytes) -> list[tuple[int, int]]:
    out, pos = [], 0
    while (start := data.find(b"-----BEGIN CERTIFICATE-----", pos)) >= 0:
        end = data.index(b"-----END CERTIFICATE-----", start) + len(b"-----END CERTIFICATE-----")
        out.append((start, end))
        pos = end
    return out


@pytest.mark.parametrize("name", NAMES)
def test_a_flipped_bit_in_any_certificate_of_the_chain_fails(vectors: Path, name: str) -> None:
    """The DER of each certificate is flipped (every 3rd byte) and re-encoded as PEM of the same length."""
    data, when = read(vectors, name), QUOTES[name][-1]
    blocks = _pem_blocks(data)
    assert len(blocks) == 3
    survivors = []
    for start, end in blocks:
        block = data[start:end]
        der = base64.b64decode(b"".join(block.splitlines()[1:-1]))
        for i in range(0, len(der), 3):
            body = base64.encodebytes(_flip(der, i, i % 8)).replace(b"\n", b"")
            lines = [body[j:j + 64] for j in range(0, len(body), 64)]
            new = b"\n".join([block.splitlines()[0], *lines, block.splitlines()[-1]])
            assert len(new) == len(block)
            if not _fails(data[:start] + new + data[end:], when):
                survivors.append((start, i))
    assert survivors == []


def test_the_quote_signature_check_is_not_the_only_one(vectors: Path) -> None:
    """Each of the three checks fails on its own, naming itself."""
    data, when = read(vectors, "dcap-qvl/tdx_quote"), QUOTES["dcap-qvl/tdx_quote"][-1]
    quote = parse_quote(data)
    key = validate_chain(quote.pck_chain, when, leaf_name=PCK_LEAF).leaf_key
    sig_start = len(quote.signed) + 4
    cases = {
        sig_start + 5: "quote signature by the attestation key",
        sig_start + 128 + 6 + 100: "QE report signature by the PCK",
        sig_start + 128 + 6 + 384 + 64 + 2 + 3: "QE report data does not bind the attestation key",
    }
    for index, text in cases.items():
        with pytest.raises(BadSignatureError, match=text):
            verify_quote(parse_quote(_flip(data, index)), key)


# -- malformed quotes ------------------------------------------------------------------------------

def _code(data: bytes) -> str:
    with pytest.raises(QuoteFormatError) as info:
        parse_quote(data)
    return info.value.code


def test_every_truncation_is_reported(vectors: Path) -> None:
    for name in ("dcap-qvl/tdx_quote", "go-tdx-guest/quote_v5_sample.dat"):
        data = read(vectors, name)
        length = parse_quote(data).length
        codes = {_code(data[:n]) for n in range(length)}
        assert codes <= {"truncated", "certification-data", "pck-chain", "signature-data"}
        assert _code(data[:10]) == "truncated" and _code(data[:length - 1]) == "truncated"


def _with(data: bytes, offset: int, fmt: str, value: int) -> bytes:
    return data[:offset] + struct.pack(fmt, value) + data[offset + struct.calcsize(fmt):]


@pytest.mark.parametrize(("offset", "fmt", "value", "code"), [
    (0, "<H", 3, "version"),
    (0, "<H", 6, "version"),
    (2, "<H", 3, "attestation-key-type"),
    (4, "<I", 0, "tee-type"),
    (12, "<I", 0, "qe-vendor"),
])
def test_header_faults(vectors: Path, offset: int, fmt: str, value: int, code: str) -> None:
    assert _code(_with(read(vectors, "dcap-qvl/tdx_quote"), offset, fmt, value)) == code


def test_v5_descriptor_faults(vectors: Path) -> None:
    data = read(vectors, "go-tdx-guest/quote_v5_sample.dat")
    assert _code(_with(data, 48, "<H", 1)) == "body-type"  # an SGX enclave report
    assert _code(_with(data, 48, "<H", 2)) == "body-size"  # TDX 1.0 type with the 1.5 size
    assert _code(_with(data, 50, "<I", 584)) == "body-size"


def test_signature_data_faults(vectors: Path) -> None:
    data = read(vectors, "dcap-qvl/tdx_quote")
    quote = parse_quote(data)
    at = len(quote.signed)
    (sig_len,) = struct.unpack_from("<I", data, at)
    assert _code(_with(data, at, "<I", sig_len - 1)) in {"truncated", "certification-data"}
    assert _code(_with(data, at, "<I", 1 << 20)) == "too-large"
    assert _code(_with(data, at + 4 + 128, "<H", 5)) == "certification-data"  # a bare chain, no QE report
    cert_at = at + 4 + 134
    inner = cert_at + 384 + 64 + 2 + 32
    assert _code(_with(data, inner, "<H", 3)) == "certification-data"  # encrypted PPID: needs a PCS lookup
    # the signature data says it is one byte longer than its content
    longer = _with(data, at, "<I", sig_len + 1)[:quote.length] + b"\x00" + data[quote.length:]
    assert _code(longer) == "signature-data"


def test_a_chain_that_is_not_pem_is_malformed(vectors: Path) -> None:
    data = read(vectors, "dcap-qvl/tdx_quote")
    start = data.index(b"-----BEGIN CERTIFICATE-----")
    assert _code(data[:start + 30] + b"*" + data[start + 31:]) == "pck-chain"


def test_sniff_is_specific(vectors: Path) -> None:
    data = read(vectors, "dcap-qvl/tdx_quote")
    assert sniff(data[:47]) is None
    assert sniff(_with(data, 4, "<I", 0)) is None  # an SGX quote
    assert sniff(b"\xd2\x84" + data) is None
    assert sniff(data[:48]) == MEDIA_TYPE


def test_annotated_json_names_every_field(vectors: Path) -> None:
    quote = parse_quote(read(vectors, "go-tdx-guest/quote_v5_sample.dat"))
    j = quote.to_json()
    assert {"mr_td", "rtmr0", "rtmr3", "mr_seam", "xfam", "td_attributes", "report_data", "tee_tcb_svn2",
            "mr_service_td", "qe_report"} <= set(j)
    assert j["mr_td"] == quote.body.mr_td.hex() and j["td_attributes_sept_ve_disable"] is True
    assert quote.pck_chain[0].public_bytes(Encoding.PEM).startswith(b"-----BEGIN CERTIFICATE-----")
