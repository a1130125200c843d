"""Intel TDX quotes, versions 4 and 5 (ECDSA P-256 attestation key), parsed and checked (sans-IO).

Layout (Intel ``sgx_quote_4.h`` / ``sgx_quote_5.h``;
little-endian integers):

* header, 48 bytes: version (4 or 5), attestation key type (2 = ECDSA-256 with P-256), TEE type
  (0x81 = TDX), 4 reserved bytes, QE vendor id (16), user data (20);
* v5 only: a body descriptor, body type (2 = TDX 1.0 report body, 584 bytes; 3 = TDX 1.5, 648
  bytes) and body size, which the quote signature covers;
* the TD report body (TEE_TCB_SVN, MRSEAM, MRSIGNERSEAM, SEAM/TD attributes, XFAM, MRTD,
  MRCONFIGID, MROWNER, MROWNERCONFIG, RTMR0-3, REPORT_DATA; TDX 1.5 adds TEE_TCB_SVN2 and
  MRSERVICETD);
* ``u32`` signature data length, then the signature data: quote signature (r‖s), attestation
  public key (x‖y), certification data type 6 (QE report certification data: QE report, its
  signature by the PCK, QE authentication data, and nested certification data type 5: the PCK
  certificate chain as PEM, leaf first).

The quote ends where its signature data ends: bytes after it (buffer padding, which real quotes
carry: 39 to 3065 bytes in the shared vectors) are ignored and counted in ``trailing``. Every
length is checked against what contains it, nested structures must fill their container
exactly, and every fault is a :class:`QuoteFormatError` whose ``code`` names it.

:func:`verify_quote` performs the checks that need no collateral: the quote signature by the
attestation key over header‖[descriptor‖]body, the QE report signature by a given PCK key, and
the binding of the attestation key in the QE report data (SHA-256(attestation key ‖ QE
authentication data) in its first 32 bytes, zeros after). The PCK chain itself is validated by
:mod:`verifiers.local.collateral.intel`.
"""

from __future__ import annotations

import hashlib
import struct
import warnings
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.utils import CryptographyDeprecationWarning

from federation.algorithms import PublicKey, by_name, raw_verify
from federation.errors import BadSignatureError, MalformedError

__all__ = [
    "ATT_KEY_ECDSA_P256",
    "BODY_TDX10",
    "BODY_TDX15",
    "INTEL_QE_VENDOR_ID",
    "MEDIA_TYPE",
    "QeReport",
    "QuoteFormatError",
    "TdReport",
    "TdxQuote",
    "load_certificates",
    "parse_quote",
    "sniff",
    "verify_quote",
]

MEDIA_TYPE = "application/vnd.intel.tdx-quote"
"""No registered media type exists for a TDX quote; this one is ours (docs/tdx.md)."""

TEE_TDX = 0x81
ATT_KEY_ECDSA_P256 = 2
BODY_TDX10, BODY_TDX15 = 2, 3
INTEL_QE_VENDOR_ID = bytes.fromhex("939a7233f79c4ca9940a0db3957f0607")
CERT_PCK_CHAIN, CERT_QE_REPORT = 5, 6

HEADER_SIZE = 48
_BODY_SIZES = {BODY_TDX10: 584, BODY_TDX15: 648}
QE_REPORT_SIZE = 384
MAX_QUOTE = 64 * 1024  # the signed quote itself; trailing padding is not counted
MAX_CERT_DATA = 32 * 1024
MAX_CHAIN_CERTS = 8
_SIG, _KEY = 64, 64

# TD_ATTRIBUTES bits (trustee deps/verifier/src/tdx/claims.rs; Intel TDX module ABI).
TD_ATTR_DEBUG = 1 << 0
TD_ATTR_SEPT_VE_DISABLE = 1 << 28
TD_ATTR_PKS = 1 << 30
TD_ATTR_KL = 1 << 31
TD_ATTR_PERFMON = 1 << 63


class QuoteFormatError(MalformedError):
    """A TDX quote does not parse; ``code`` says what is wrong.

    Codes: ``truncated`` (a field runs past the data), ``too-large``, ``version``,
    ``attestation-key-type``, ``tee-type``, ``qe-vendor``, ``body-type``, ``body-size``,
    ``signature-data`` (its length disagrees with its content), ``certification-data`` (type
    or nesting), ``pck-chain`` (the PEM chain does not parse).
    """

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(f"tdx quote: {detail}")
        self.code = code


class _Reader:
    """Bounded little-endian reads from a byte string; running past the end is ``truncated``."""

    def __init__(self, data: bytes, pos: int = 0, end: int | None = None) -> None:
        self.data = data
        self.pos = pos
        self.end = len(data) if end is None else end

    def take(self, n: int, what: str) -> bytes:
        if n < 0 or self.pos + n > self.end:
            raise QuoteFormatError("truncated", f"{what} runs past the end of its container")
        out = self.data[self.pos:self.pos + n]
        self.pos += n
        return out

    def u16(self, what: str) -> int:
        return int(struct.unpack("<H", self.take(2, what))[0])

    def u32(self, what: str) -> int:
        return int(struct.unpack("<I", self.take(4, what))[0])


@dataclass(frozen=True, slots=True)
class TdReport:
    """The TD quote body (TDX 1.0; the last two fields only in TDX 1.5 bodies)."""

    tee_tcb_svn: bytes
    mr_seam: bytes
    mr_signer_seam: bytes
    seam_attributes: bytes
    td_attributes: bytes
    xfam: bytes
    mr_td: bytes
    mr_config_id: bytes
    mr_owner: bytes
    mr_owner_config: bytes
    rtmrs: tuple[bytes, bytes, bytes, bytes]
    report_data: bytes
    tee_tcb_svn2: bytes | None = None
    mr_service_td: bytes | None = None

    @property
    def td_attributes_value(self) -> int:
        return int.from_bytes(self.td_attributes, "little")

    @property
    def debug(self) -> bool:
        return bool(self.td_attributes_value & TD_ATTR_DEBUG)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "tee_tcb_svn": self.tee_tcb_svn.hex(), "mr_seam": self.mr_seam.hex(),
            "mr_signer_seam": self.mr_signer_seam.hex(), "seam_attributes": self.seam_attributes.hex(),
            "td_attributes": self.td_attributes.hex(), "xfam": self.xfam.hex(), "mr_td": self.mr_td.hex(),
            "mr_config_id": self.mr_config_id.hex(), "mr_owner": self.mr_owner.hex(),
            "mr_owner_config": self.mr_owner_config.hex(),
            **{f"rtmr{i}": r.hex() for i, r in enumerate(self.rtmrs)},
            "report_data": self.report_data.hex(),
            "td_attributes_debug": self.debug,
            "td_attributes_sept_ve_disable": bool(self.td_attributes_value & TD_ATTR_SEPT_VE_DISABLE),
        }
        if self.tee_tcb_svn2 is not None:
            out["tee_tcb_svn2"] = self.tee_tcb_svn2.hex()
        if self.mr_service_td is not None:
            out["mr_service_td"] = self.mr_service_td.hex()
        return out


def _parse_body(data: bytes, body_type: int) -> TdReport:
    r = _Reader(data)
    svn, seam, signer, seam_attr, td_attr, xfam, mrtd, cfg, owner, owner_cfg = (
        r.take(n, "td report") for n in (16, 48, 48, 8, 8, 8, 48, 48, 48, 48))
    rtmrs = (r.take(48, "rtmr"), r.take(48, "rtmr"), r.take(48, "rtmr"), r.take(48, "rtmr"))
    report_data = r.take(64, "report data")
    svn2 = mrservicetd = None
    if body_type == BODY_TDX15:
        svn2, mrservicetd = r.take(16, "tee_tcb_svn2"), r.take(48, "mr_service_td")
    return TdReport(svn, seam, signer, seam_attr, td_attr, xfam, mrtd, cfg, owner, owner_cfg, rtmrs, report_data,
                    svn2, mrservicetd)


@dataclass(frozen=True, slots=True)
class QeReport:
    """The quoting enclave's SGX report (384 bytes), as the PCK signed it."""

    raw: bytes
    cpu_svn: bytes
    miscselect: int
    attributes: bytes
    mr_enclave: bytes
    mr_signer: bytes
    isv_prod_id: int
    isv_svn: int
    report_data: bytes

    @classmethod
    def parse(cls, raw: bytes) -> QeReport:
        if len(raw) != QE_REPORT_SIZE:
            raise QuoteFormatError("certification-data", "QE report must be 384 bytes")
        prod, svn = struct.unpack_from("<HH", raw, 256)
        return cls(raw, raw[0:16], int(struct.unpack_from("<I", raw, 16)[0]), raw[48:64], raw[64:96],
                   raw[128:160], int(prod), int(svn), raw[320:384])

    def to_json(self) -> dict[str, Any]:
        return {"mr_enclave": self.mr_enclave.hex(), "mr_signer": self.mr_signer.hex(),
                "isv_prod_id": self.isv_prod_id, "isv_svn": self.isv_svn, "attributes": self.attributes.hex(),
                "miscselect": f"{self.miscselect:08x}"}


@dataclass(frozen=True, slots=True)
class TdxQuote:
    """A parsed TDX quote. ``signed`` is the exact byte range the attestation key signed."""

    version: int
    tee_type: int
    qe_vendor_id: bytes
    user_data: bytes
    body_type: int
    body: TdReport
    signed: bytes
    signature: bytes
    attestation_key: bytes
    qe_report: QeReport
    qe_report_signature: bytes
    qe_auth_data: bytes
    pck_chain: tuple[x509.Certificate, ...]
    length: int  # bytes of the quote proper
    trailing: int  # ignored bytes after it

    def attestation_public_key(self) -> ec.EllipticCurvePublicKey:
        try:
            return ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), b"\x04" + self.attestation_key)
        except ValueError as exc:
            raise BadSignatureError("tdx quote: attestation key is not a P-256 point") from exc

    def to_json(self) -> dict[str, Any]:
        """The quote's claims for annotated evidence (hex bytes)."""
        return {
            "version": self.version, "body_type": self.body_type, "tee_type": self.tee_type,
            "qe_vendor_id": self.qe_vendor_id.hex(), "user_data": self.user_data.hex(),
            **self.body.to_json(), "qe_report": self.qe_report.to_json(),
        }


@lru_cache(maxsize=256)
def load_certificates(data: bytes, *, pem: bool = True) -> tuple[x509.Certificate, ...]:
    """Certificates from PEM (several) or DER (one), every field the checks read parsed now.

    ``cryptography`` parses some parts lazily (extensions, the public key), so a certificate
    that loads can still fail when first read; here that is a :class:`ValueError` at load time,
    never an unexpected exception in the middle of an appraisal. What ``cryptography`` only warns
    about (a serial number that is not positive) is refused too: Intel issues none. Cached by the
    exact bytes (the same chain arrives with every quote of a platform); failures are not cached.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", CryptographyDeprecationWarning)
            certs = _load_all(data, pem)
    except (ValueError, TypeError, x509.InvalidVersion, x509.DuplicateExtension, x509.UnsupportedGeneralNameType,
            UnsupportedAlgorithm, CryptographyDeprecationWarning) as exc:  # found by fuzzing: DuplicateExtension
        raise ValueError(f"certificate does not parse: {exc}") from exc
    return certs


def _load_all(data: bytes, pem: bool) -> tuple[x509.Certificate, ...]:
    certs = tuple(x509.load_pem_x509_certificates(data) if pem else [x509.load_der_x509_certificate(data)])
    for c in certs:
        c.public_key()
        _ = (c.extensions, c.subject, c.issuer, c.signature_algorithm_oid, c.not_valid_before_utc,
             c.not_valid_after_utc, c.serial_number, c.tbs_certificate_bytes, c.signature)
    return certs


def _parse_pem_chain(pem: bytes) -> tuple[x509.Certificate, ...]:
    text = pem.rstrip(b"\x00")
    if b"\x00" in text:
        raise QuoteFormatError("pck-chain", "PCK certificate chain contains NUL bytes")
    try:
        certs = load_certificates(text)
    except ValueError as exc:
        raise QuoteFormatError("pck-chain", f"PCK certificate chain: {exc}") from exc
    if not 1 <= len(certs) <= MAX_CHAIN_CERTS:
        raise QuoteFormatError("pck-chain", f"PCK certificate chain must hold 1..{MAX_CHAIN_CERTS} certificates")
    return certs


def _parse_certification(data: bytes) -> tuple[QeReport, bytes, bytes, tuple[x509.Certificate, ...]]:
    """Certification data type 6: QE report, its PCK signature, QE auth data, nested type 5 chain."""
    r = _Reader(data)
    qe_report = QeReport.parse(r.take(QE_REPORT_SIZE, "QE report"))
    qe_sig = r.take(_SIG, "QE report signature")
    auth = r.take(r.u16("QE auth data size"), "QE auth data")
    kind = r.u16("inner certification data type")
    size = r.u32("inner certification data size")
    if kind != CERT_PCK_CHAIN:
        raise QuoteFormatError("certification-data",
                               f"inner certification data type {kind} is not supported (need 5, PCK chain)")
    pem = r.take(size, "PCK certificate chain")
    if r.pos != r.end:
        raise QuoteFormatError("certification-data", "QE report certification data has bytes after the PCK chain")
    return qe_report, qe_sig, auth, _parse_pem_chain(pem)


def parse_quote(data: bytes) -> TdxQuote:
    """Parse a TDX quote v4 or v5; bytes after the signature data are tolerated and counted."""
    if not isinstance(data, bytes | bytearray | memoryview):
        raise QuoteFormatError("truncated", "quote must be bytes")
    data = bytes(data)
    r = _Reader(data)
    version = r.u16("version")
    if version not in (4, 5):
        raise QuoteFormatError("version", f"version {version} is not supported (4 or 5)")
    key_type = r.u16("attestation key type")
    if key_type != ATT_KEY_ECDSA_P256:
        raise QuoteFormatError("attestation-key-type", f"attestation key type {key_type} is not supported "
                               "(2, ECDSA-256 with P-256)")
    tee_type = r.u32("tee type")
    if tee_type != TEE_TDX:
        raise QuoteFormatError("tee-type", f"TEE type {tee_type:#x} is not TDX (0x81)")
    r.take(4, "reserved")
    vendor = r.take(16, "QE vendor id")
    if vendor != INTEL_QE_VENDOR_ID:
        raise QuoteFormatError("qe-vendor", f"QE vendor id {vendor.hex()} is not Intel's")
    user_data = r.take(20, "user data")
    if version == 4:
        body_type, body_size = BODY_TDX10, _BODY_SIZES[BODY_TDX10]
    else:
        body_type = r.u16("body type")
        body_size = r.u32("body size")
        if body_type not in _BODY_SIZES:
            raise QuoteFormatError("body-type", f"body type {body_type} is not a TD report (2 or 3)")
        if body_size != _BODY_SIZES[body_type]:
            raise QuoteFormatError("body-size", f"body size {body_size} does not match body type {body_type}")
    body = _parse_body(r.take(body_size, "TD report body"), body_type)
    signed_end = r.pos
    sig_len = r.u32("signature data length")
    if signed_end + 4 + sig_len > MAX_QUOTE:
        raise QuoteFormatError("too-large", f"signature data of {sig_len} bytes exceeds the {MAX_QUOTE}-byte bound")
    s = _Reader(data, r.pos, r.pos + sig_len)
    if s.end > len(data):
        raise QuoteFormatError("truncated", "signature data runs past the end of the quote")
    signature = s.take(_SIG, "quote signature")
    att_key = s.take(_KEY, "attestation key")
    cert_type = s.u16("certification data type")
    cert_size = s.u32("certification data size")
    if cert_type != CERT_QE_REPORT:
        raise QuoteFormatError("certification-data",
                               f"certification data type {cert_type} is not supported (need 6, QE report)")
    if cert_size > MAX_CERT_DATA:
        raise QuoteFormatError("too-large", f"certification data of {cert_size} bytes exceeds {MAX_CERT_DATA}")
    cert = s.take(cert_size, "certification data")
    if s.pos != s.end:
        raise QuoteFormatError("signature-data", "signature data length disagrees with its content")
    qe_report, qe_sig, auth, chain = _parse_certification(cert)
    return TdxQuote(version, tee_type, vendor, user_data, body_type, body, data[:signed_end], signature, att_key,
                    qe_report, qe_sig, auth, chain, s.end, len(data) - s.end)


_ES256 = by_name("ES256")


def verify_quote(quote: TdxQuote, pck_key: PublicKey) -> None:
    """The checks that need no collateral, given the (validated) PCK leaf's public key.

    Raises :class:`BadSignatureError` naming the check that failed.
    """
    try:
        raw_verify(_ES256, quote.attestation_public_key(), quote.signed, quote.signature)
    except BadSignatureError as exc:
        raise BadSignatureError("tdx quote: quote signature by the attestation key does not verify") from exc
    try:
        raw_verify(_ES256, pck_key, quote.qe_report.raw, quote.qe_report_signature)
    except BadSignatureError as exc:
        raise BadSignatureError("tdx quote: QE report signature by the PCK does not verify") from exc
    expected = hashlib.sha256(quote.attestation_key + quote.qe_auth_data).digest() + bytes(32)
    if quote.qe_report.report_data != expected:
        raise BadSignatureError("tdx quote: QE report data does not bind the attestation key "
                                "(SHA-256(attestation key || QE auth data))")


def sniff(data: bytes) -> str | None:
    """``MEDIA_TYPE`` when *data* starts like a TDX quote v4/v5 from Intel's QE."""
    if len(data) < HEADER_SIZE:
        return None
    version, key_type, tee = struct.unpack_from("<HHI", data, 0)
    if version in (4, 5) and key_type == ATT_KEY_ECDSA_P256 and tee == TEE_TDX and data[12:28] == INTEL_QE_VENDOR_ID:
        return MEDIA_TYPE
    return None
