"""A stand-in Intel PKI and TDX quote builder, shared by the TDX tests and the vendor-service emulators.

No real vector shows a debug TD, a revoked PCK, a chosen REPORT_DATA or a chosen TCB level, and
the vendor emulators (tests/emulators/) need quotes bound to whatever nonce a test picks. So
:class:`FakeIntel` is a stand-in PKI with Intel's names (its root is *not* pinned: the local
scheme and the emulators trust it only as an operator-configured root): it issues PCK
certificates with a real SGX extension, signs quotes with the exact layout of v4/v5 quotes, and
signs TCB info, QE identity and CRLs in the dcap-qvl collateral form. :func:`td_quote` is the
short way to a quote with a given REPORT_DATA and debug bit.

Moved here from tests/test_tdx_synthetic.py, unchanged, so that more than one test module can
build quotes.
"""

from __future__ import annotations

import hashlib
import json
import struct
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.x509.oid import NameOID

from verifiers.local.evidence.tdx import INTEL_QE_VENDOR_ID

__all__ = [
    "COMPS", "FMSPC", "NONCE", "NOW", "QE_MRSIGNER", "SGX", "TD_ATTR_DEBUG", "TD_ATTR_SEPT_VE_DISABLE", "Body",
    "FakeIntel", "cert", "level", "pem", "raw_sign", "sgx_extension", "td_attributes", "td_quote",
]

NOW = datetime(2026, 6, 1, tzinfo=UTC)
QE_MRSIGNER = bytes.fromhex("DC9E2A7C6F948F17474E34A7FC43ED030F7C1563F1BABDDF6340C82E0E54A8C5")
FMSPC = bytes.fromhex("00a06f000000")
NONCE = hashlib.sha256(b"tdx session").digest()
SGX = "1.2.840.113741.1.13.1"
COMPS = (4, 4, 2, 2, 4, 1, 0, 5) + (0,) * 8


# -- DER, just enough for the SGX extension --------------------------------------------------------

def _der(tag: int, content: bytes) -> bytes:
    n = len(content)
    length = bytes([n]) if n < 0x80 else bytes([0x80 | ((n.bit_length() + 7) // 8)]) + n.to_bytes(
        (n.bit_length() + 7) // 8, "big")
    return bytes([tag]) + length + content


def _oid(dotted: str) -> bytes:
    arcs = [int(a) for a in dotted.split(".")]
    out = bytes([40 * arcs[0] + arcs[1]])
    for arc in arcs[2:]:
        chunk = [arc & 0x7F]
        arc >>= 7
        while arc:
            chunk.append(0x80 | (arc & 0x7F))
            arc >>= 7
        out += bytes(reversed(chunk))
    return _der(0x06, out)


def _int(v: int) -> bytes:
    return _der(0x02, v.to_bytes(max(1, (v.bit_length() + 8) // 8), "big"))


def sgx_extension(fmspc: bytes, comps: tuple[int, ...], pcesvn: int, pce_id: bytes = b"\x00\x00") -> bytes:
    def entry(oid: str, value: bytes) -> bytes:
        return _der(0x30, _oid(oid) + value)

    tcb = b"".join(entry(f"{SGX}.2.{i + 1}", _int(c)) for i, c in enumerate(comps))
    tcb += entry(f"{SGX}.2.17", _int(pcesvn)) + entry(f"{SGX}.2.18", _der(0x04, bytes(comps)))
    return _der(0x30, entry(f"{SGX}.1", _der(0x04, bytes(16))) + entry(f"{SGX}.2", _der(0x30, tcb))
                + entry(f"{SGX}.3", _der(0x04, pce_id)) + entry(f"{SGX}.4", _der(0x04, fmspc))
                + entry(f"{SGX}.5", _der(0x0A, b"\x00")))


# -- the stand-in PKI ------------------------------------------------------------------------------

def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn),
                      x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Intel Corporation")])


def cert(subject: str, key: ec.EllipticCurvePrivateKey, issuer: str, issuer_key: ec.EllipticCurvePrivateKey, *,
         ca: bool, extension: bytes | None = None, not_before: datetime | None = None,
         not_after: datetime | None = None, serial: int | None = None) -> x509.Certificate:
    b = (x509.CertificateBuilder().subject_name(_name(subject)).issuer_name(_name(issuer))
         .public_key(key.public_key()).serial_number(serial or x509.random_serial_number())
         .not_valid_before(not_before or NOW - timedelta(days=365))
         .not_valid_after(not_after or NOW + timedelta(days=3650))
         .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if extension is not None:
        b = b.add_extension(x509.UnrecognizedExtension(x509.ObjectIdentifier(SGX), extension), critical=False)
    return b.sign(issuer_key, hashes.SHA256())


def raw_sign(key: ec.EllipticCurvePrivateKey, data: bytes) -> bytes:
    r, s = decode_dss_signature(key.sign(data, ec.ECDSA(hashes.SHA256())))
    return r.to_bytes(32, "big") + s.to_bytes(32, "big")


def pem(*certs: x509.Certificate) -> bytes:
    return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certs)


@dataclass
class Body:
    """TD report fields (defaults: a production TD, TDX module 1.5 version 1)."""

    tee_tcb_svn: bytes = bytes([6, 1, 3]) + bytes(13)
    mr_seam: bytes = b"\x5e" * 48
    mr_signer_seam: bytes = bytes(48)
    seam_attributes: bytes = bytes(8)
    td_attributes: bytes = (1 << 28).to_bytes(8, "little")
    xfam: bytes = bytes.fromhex("e702060000000000")
    mr_td: bytes = b"\x01" * 48
    mr_config_id: bytes = bytes(48)
    mr_owner: bytes = bytes(48)
    mr_owner_config: bytes = bytes(48)
    rtmrs: tuple[bytes, ...] = (b"\x10" * 48, b"\x11" * 48, b"\x12" * 48, bytes(48))
    report_data: bytes = NONCE + bytes(32)

    def encode(self, tdx15: bool) -> bytes:
        out = (self.tee_tcb_svn + self.mr_seam + self.mr_signer_seam + self.seam_attributes + self.td_attributes
               + self.xfam + self.mr_td + self.mr_config_id + self.mr_owner + self.mr_owner_config
               + b"".join(self.rtmrs) + self.report_data)
        return out + (bytes(16) + bytes(48) if tdx15 else b"")


def level(status: str, *, sgx: tuple[int, ...] = COMPS, pcesvn: int = 11, tdx: tuple[int, ...] = (0, 0, 3),
          advisories: tuple[str, ...] = ()) -> dict[str, Any]:
    out: dict[str, Any] = {
        "tcb": {"sgxtcbcomponents": [{"svn": s} for s in sgx], "pcesvn": pcesvn,
                "tdxtcbcomponents": [{"svn": s} for s in tdx + (0,) * (16 - len(tdx))]},
        "tcbDate": "2025-01-01T00:00:00Z", "tcbStatus": status}
    if advisories:
        out["advisoryIDs"] = list(advisories)
    return out


@dataclass
class FakeIntel:
    """A root, a PCK Platform CA and a TCB signing key with Intel's names; not the pinned root."""

    root_key: ec.EllipticCurvePrivateKey = field(default_factory=lambda: ec.generate_private_key(ec.SECP256R1()))
    ca_key: ec.EllipticCurvePrivateKey = field(default_factory=lambda: ec.generate_private_key(ec.SECP256R1()))
    tcb_key: ec.EllipticCurvePrivateKey = field(default_factory=lambda: ec.generate_private_key(ec.SECP256R1()))
    pck_key: ec.EllipticCurvePrivateKey = field(default_factory=lambda: ec.generate_private_key(ec.SECP256R1()))
    att_key: ec.EllipticCurvePrivateKey = field(default_factory=lambda: ec.generate_private_key(ec.SECP256R1()))

    def __post_init__(self) -> None:
        self.root = cert("Intel SGX Root CA", self.root_key, "Intel SGX Root CA", self.root_key, ca=True)
        self.ca = cert("Intel SGX PCK Platform CA", self.ca_key, "Intel SGX Root CA", self.root_key, ca=True)
        self.tcb_signer = cert("Intel SGX TCB Signing", self.tcb_key, "Intel SGX Root CA", self.root_key, ca=False)
        self.pck = self.pck_cert()

    def pck_cert(self, *, fmspc: bytes = FMSPC, comps: tuple[int, ...] = COMPS, pcesvn: int = 11,
                 **kw: Any) -> x509.Certificate:
        return cert("Intel SGX PCK Certificate", self.pck_key, "Intel SGX PCK Platform CA", self.ca_key, ca=False,
                    extension=sgx_extension(fmspc, comps, pcesvn), **kw)

    def quote(self, body: Body | None = None, *, version: int = 4, chain: bytes | None = None,
              qe_isvsvn: int = 4, qe_mrsigner: bytes = QE_MRSIGNER) -> bytes:
        body = body or Body()
        header = struct.pack("<HHI", version, 2, 0x81) + bytes(4) + INTEL_QE_VENDOR_ID + bytes(20)
        encoded = body.encode(version == 5)
        signed = header + (struct.pack("<HI", 3, len(encoded)) if version == 5 else b"") + encoded
        point = self.att_key.public_key().public_bytes(serialization.Encoding.X962,
                                                       serialization.PublicFormat.UncompressedPoint)[1:]
        auth = bytes(range(32))
        qe = bytearray(384)
        qe[48:64] = bytes.fromhex("11000000000000000000000000000000")
        qe[128:160] = qe_mrsigner
        struct.pack_into("<HH", qe, 256, 2, qe_isvsvn)
        qe[320:352] = hashlib.sha256(point + auth).digest()
        chain_pem = chain if chain is not None else pem(self.pck, self.ca, self.root)
        cert_data = (bytes(qe) + raw_sign(self.pck_key, bytes(qe)) + struct.pack("<H", len(auth)) + auth
                     + struct.pack("<HI", 5, len(chain_pem)) + chain_pem)
        sig_data = raw_sign(self.att_key, signed) + point + struct.pack("<HI", 6, len(cert_data)) + cert_data
        return signed + struct.pack("<I", len(sig_data)) + sig_data

    def signed_json(self, obj: dict[str, Any]) -> tuple[str, str]:
        text = json.dumps(obj, separators=(",", ":"))
        return text, raw_sign(self.tcb_key, text.encode()).hex()

    def tcb_info(self, levels: list[dict[str, Any]], *, fmspc: bytes = FMSPC,
                 issued: datetime = NOW - timedelta(days=1),
                 module_levels: list[dict[str, Any]] | None = None) -> dict[str, Any]:
        module = {"mrsigner": "00" * 48, "attributes": "00" * 8, "attributesMask": "FF" * 8}
        return {
            "id": "TDX", "version": 3, "issueDate": _t(issued), "nextUpdate": _t(issued + timedelta(days=30)),
            "fmspc": fmspc.hex().upper(), "pceId": "0000", "tcbType": 0, "tcbEvaluationDataNumber": 17,
            "tdxModule": module,
            "tdxModuleIdentities": [{"id": "TDX_01", **module, "tcbLevels": module_levels or [
                {"tcb": {"isvsvn": 4}, "tcbDate": "2025-01-01T00:00:00Z", "tcbStatus": "UpToDate"}]}],
            "tcbLevels": levels,
        }

    def qe_identity(self, *, issued: datetime = NOW - timedelta(days=1), min_isvsvn: int = 4) -> dict[str, Any]:
        return {"id": "TD_QE", "version": 2, "issueDate": _t(issued), "nextUpdate": _t(issued + timedelta(days=30)),
                "tcbEvaluationDataNumber": 17, "miscselect": "00000000", "miscselectMask": "FFFFFFFF",
                "attributes": "11000000000000000000000000000000",
                "attributesMask": "FBFFFFFFFFFFFFFF0000000000000000", "mrsigner": QE_MRSIGNER.hex().upper(),
                "isvprodid": 2, "tcbLevels": [
                    {"tcb": {"isvsvn": min_isvsvn}, "tcbDate": "2025-01-01T00:00:00Z", "tcbStatus": "UpToDate"},
                    {"tcb": {"isvsvn": 1}, "tcbDate": "2020-01-01T00:00:00Z", "tcbStatus": "OutOfDate",
                     "advisoryIDs": ["INTEL-SA-00999"]}]}

    def crl(self, issuer: x509.Certificate, key: ec.EllipticCurvePrivateKey, revoked: tuple[int, ...] = (),
            this: datetime = NOW - timedelta(days=1)) -> bytes:
        b = (x509.CertificateRevocationListBuilder().issuer_name(issuer.subject)
             .last_update(this).next_update(this + timedelta(days=30)))
        for serial in revoked:
            b = b.add_revoked_certificate(x509.RevokedCertificateBuilder().serial_number(serial)
                                          .revocation_date(this).build())
        return b.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)

    def collateral(self, levels: list[dict[str, Any]] | None = None, *, tcb: dict[str, Any] | None = None,
                   qe: dict[str, Any] | None = None, revoked_pck: bool = False, drop: tuple[str, ...] = (),
                   issued: datetime = NOW - timedelta(days=1)) -> bytes:
        """Signed collateral; *issued* dates TCB info, QE identity and CRLs (valid 30 days from it),
        so tests that run on the real clock can have current collateral."""
        chain = pem(self.tcb_signer, self.root).decode()
        tcb_text, tcb_sig = self.signed_json(tcb or self.tcb_info(levels or [level("UpToDate")], issued=issued))
        qe_text, qe_sig = self.signed_json(qe or self.qe_identity(issued=issued))
        doc = {
            "pck_crl_issuer_chain": pem(self.ca, self.root).decode(),
            "root_ca_crl": self.crl(self.root, self.root_key, this=issued).hex(),
            "pck_crl": self.crl(self.ca, self.ca_key, (self.pck.serial_number,) if revoked_pck else (),
                                this=issued).hex(),
            "tcb_info_issuer_chain": chain, "tcb_info": tcb_text, "tcb_info_signature": tcb_sig,
            "qe_identity_issuer_chain": chain, "qe_identity": qe_text, "qe_identity_signature": qe_sig,
        }
        return json.dumps({k: v for k, v in doc.items() if k not in drop}).encode()


def _t(dt: datetime) -> str:
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ")



# -- convenience for quotes bound to a chosen REPORT_DATA ---------------------------------------------

TD_ATTR_DEBUG = 1 << 0
TD_ATTR_SEPT_VE_DISABLE = 1 << 28


def td_attributes(*, debug: bool = False) -> bytes:
    """TD_ATTRIBUTES of a production TD (SEPT_VE_DISABLE set, as :class:`Body` defaults to), with DEBUG on request."""
    return (TD_ATTR_SEPT_VE_DISABLE | (TD_ATTR_DEBUG if debug else 0)).to_bytes(8, "little")


def td_quote(intel: FakeIntel, report_data: bytes, *, debug: bool = False, version: int = 4, **fields: Any) -> bytes:
    """A quote signed by *intel* whose REPORT_DATA is *report_data* (exactly 64 bytes), a debug TD when
    *debug*; other :class:`Body` fields may be given by name (``mr_td=...``).

    Why a helper: every vendor binds its nonce into REPORT_DATA differently (SHA-512, SHA-256 of
    runtime data, SHA-384 of JSON...), so the emulator tests build many quotes that differ only
    there and in the debug bit.
    """
    if len(report_data) != 64:
        raise ValueError(f"REPORT_DATA must be 64 bytes, not {len(report_data)}")
    return intel.quote(Body(report_data=report_data, td_attributes=td_attributes(debug=debug), **fields),
                       version=version)
