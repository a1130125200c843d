"""AMD SEV-SNP attestation reports and their envelopes: bytes in, a validated report out (sans-IO).

Theory of operation. An ``ATTESTATION_REPORT`` is 0x4A0 (1184) little-endian bytes; the AMD
Secure Processor signs bytes 0x000..0x29F with ECDSA P-384/SHA-384 under the chip's VCEK (or a
cloud provider's VLEK) and stores r and s little-endian, zero-extended to 72 bytes each
(google/go-sev-guest abi.go, virtee/sev snp.rs).
:func:`parse_report` accepts report versions 2, 3 and 5 (4 has not been seen and is refused,
like 0, 1 and anything newer, until a vector exists), checks every reserved (must-be-zero) byte,
the POLICY bits (bit 17 must be one, bits 63:26 zero), the KEY_INFO bits and the signature
algorithm, and keeps the raw bytes: the signature is always checked over the bytes as received
(:func:`verify_report_signature`), never over a re-encoding.

Four envelopes carry a report and, optionally, the certificates that vouch for its key:

* the bare report (``application/vnd.amd.sev.snp.attestation-report``, the name
  draft-deeglaze-amd-sev-snp-corim-profile registers); certificates then come from collateral;
* the Linux configfs-tsm report as Veraison/ratsd encode it, CBOR
  (``application/vnd.veraison.tsm-report+cbor``) or JSON (``...tsm-report+json``, also accepted
  under Veraison's scheme name ``application/vnd.veraison.configfs-tsm+json``): ``outblob`` is the
  report, ``auxblob`` the GHCB certificate table;
* a CMW collection (``application/cmw+cbor`` or ``+json`` with ``cmwc_t`` =
  :data:`COLLECTION_TYPE`): one record of the report type, optionally a certificate table
  (``application/vnd.amd.ghcb.guid-table``), PEM chains (``application/pem-certificate-chain``),
  DER certificates (``application/pkix-cert``) and CRLs (``application/pkix-crl``).

Every fault raises :class:`SnpFormatError` (a :class:`~federation.errors.MalformedError`) whose
``code`` names the rule broken (see :data:`ERROR_CODES`) and, for report fields, the offset.
Sizes are bounded before anything is decoded. Nothing here trusts a certificate: the envelopes
only deliver candidate certificates, which :mod:`verifiers.local.collateral.amd` validates to a
pinned AMD root.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import struct
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from federation import cbor
from federation.errors import AlgorithmError, BadSignatureError, Error, MalformedError

from . import cmw

__all__ = [
    "CERT_TABLE_ROLES",
    "COLLECTION_TYPE",
    "ERROR_CODES",
    "MEDIA_TYPE_CERT_TABLE",
    "MEDIA_TYPE_CMW_CBOR",
    "MEDIA_TYPE_CMW_JSON",
    "MEDIA_TYPE_REPORT",
    "MEDIA_TYPE_TSM_CBOR",
    "MEDIA_TYPE_TSM_JSON",
    "MEDIA_TYPE_TSM_JSON_VERAISON",
    "PRODUCTS",
    "REPORT_SIZE",
    "SIGNED_SIZE",
    "VERSIONS",
    "AttestationReport",
    "CertBlob",
    "CertEntry",
    "CertTable",
    "Form",
    "GuestPolicy",
    "KeyInfo",
    "PlatformInfo",
    "SnpEvidence",
    "SnpFormatError",
    "TcbVersion",
    "TsmReport",
    "decode_evidence",
    "decode_tsm_cbor",
    "decode_tsm_json",
    "encode_cert_table",
    "normalize_report",
    "parse_cert_table",
    "parse_report",
    "product_of_cpuid",
    "sniff",
    "verify_report_signature",
]

REPORT_SIZE = 0x4A0
SIGNED_SIZE = 0x2A0
VERSIONS = frozenset({2, 3, 5})
SIG_ALGO_ECDSA_P384_SHA384 = 1
PRODUCTS = ("Milan", "Genoa", "Turin")  # KDS product lines

MEDIA_TYPE_REPORT = "application/vnd.amd.sev.snp.attestation-report"
MEDIA_TYPE_CERT_TABLE = "application/vnd.amd.ghcb.guid-table"
MEDIA_TYPE_TSM_CBOR = "application/vnd.veraison.tsm-report+cbor"
MEDIA_TYPE_TSM_JSON = "application/vnd.veraison.tsm-report+json"
MEDIA_TYPE_TSM_JSON_VERAISON = "application/vnd.veraison.configfs-tsm+json"
COLLECTION_TYPE = "tag:github.com,2026:rats-federation/sevsnp-evidence"  # an absolute URI: no fragment
MEDIA_TYPE_CMW_CBOR = f'application/cmw+cbor; cmwc_t="{COLLECTION_TYPE}"'
MEDIA_TYPE_CMW_JSON = f'application/cmw+json; cmwc_t="{COLLECTION_TYPE}"'
_PEM_CHAIN = "application/pem-certificate-chain"
_PKIX_CERT = "application/pkix-cert"
_PKIX_CRL = "application/pkix-crl"

MAX_ENVELOPE = 1 << 20  # bytes, any envelope
MAX_CERT_TABLE = 1 << 18  # bytes; real tables are ~7 KiB
MAX_CERT_ENTRIES = 16
MAX_CERT_BLOBS = 16  # certificate and CRL blobs one Evidence may carry
TSM_PROVIDER = "sev_guest"

ERROR_CODES = frozenset({
    "size",  # wrong length, or an envelope/table over its bound
    "encoding",  # text that is neither hex nor base64 of a report
    "version",  # report version not 2, 3 or 5
    "signature-algorithm",  # SIGNATURE_ALGO other than 1 (ECDSA P-384 with SHA-384)
    "signature",  # r or s wider than 48 bytes
    "reserved",  # a must-be-zero byte is not zero
    "policy",  # POLICY bit 17 clear, or an undefined bit (63:26) set
    "key-info",  # KEY_INFO bits 31:5 set, or a reserved SIGNING_KEY value
    "vmpl",  # VMPL above 3
    "cert-table",  # the GHCB certificate table breaks its layout
    "tsm",  # the configfs-tsm envelope is not one of an SEV guest
    "collection",  # the CMW collection is not ours or holds something else
})

Form = Literal["report", "tsm-cbor", "tsm-json", "cmw"]


class SnpFormatError(MalformedError):
    """Untrusted SEV-SNP bytes break a format rule; ``code`` (in :data:`ERROR_CODES`) says which,
    ``offset`` where in the report (None outside it)."""

    def __init__(self, code: str, detail: str, *, offset: int | None = None) -> None:
        where = f" at 0x{offset:03X}" if offset is not None else ""
        super().__init__(f"sev-snp: {detail}{where}")
        self.code = code
        self.offset = offset


# -- field types -------------------------------------------------------------------------------

# TCB_VERSION byte positions (virtee/sev snp.rs from_legacy_bytes/from_turin_bytes).
_LEGACY_TCB = (("boot_loader", 0), ("tee", 1), ("snp", 6), ("microcode", 7))
_TURIN_TCB = (("fmc", 0), ("boot_loader", 1), ("tee", 2), ("snp", 3), ("microcode", 7))
_RESERVED_TCB = {"legacy": (2, 3, 4, 5), "turin": (4, 5, 6)}


def tcb_layout(product: str) -> Literal["legacy", "turin"]:
    """Milan and Genoa use the legacy TCB_VERSION layout; Turin its own (FMC first)."""
    if product not in PRODUCTS:
        raise MalformedError(f"sev-snp: unknown product line {product!r:.20}")
    return "turin" if product == "Turin" else "legacy"


@dataclass(frozen=True, slots=True)
class TcbVersion:
    """A TCB_VERSION: 8 raw bytes whose meaning depends on the product (Turin differs)."""

    raw: bytes

    @property
    def value(self) -> int:
        """The little-endian u64 (how CoRIM svn values and KDS URLs name a TCB)."""
        return int.from_bytes(self.raw, "little")

    def components(self, product: str) -> dict[str, int]:
        """The security patch levels by name, in the product's layout."""
        table = _TURIN_TCB if tcb_layout(product) == "turin" else _LEGACY_TCB
        return {name: self.raw[i] for name, i in table}

    def reserved(self, product: str) -> bytes:
        """The bytes the product's layout does not name (zero on every part seen)."""
        return bytes(self.raw[i] for i in _RESERVED_TCB[tcb_layout(product)])

    def at_least(self, other: TcbVersion, product: str) -> bool:
        """Component-wise ``self >= other`` (never the u64 order: a newer microcode must not
        hide an older SNP firmware)."""
        mine, theirs = self.components(product), other.components(product)
        return all(mine[k] >= theirs[k] for k in mine)

    def to_json(self, product: str | None) -> dict[str, Any]:
        out: dict[str, Any] = {"raw": self.raw.hex(), "value": self.value}
        if product is not None:
            out.update(self.components(product))
        return out


_POLICY_BITS: Mapping[int, str] = {
    16: "smt", 17: "reserved_1", 18: "migrate_ma", 19: "debug", 20: "single_socket", 21: "cxl_allow",
    22: "mem_aes_256_xts", 23: "rapl_dis", 24: "ciphertext_hiding_dram", 25: "page_swap_disable",
}
_POLICY_DEFINED = (1 << 26) - 1
_PLATFORM_BITS: Mapping[int, str] = {
    0: "smt_en", 1: "tsme_en", 2: "ecc_en", 3: "rapl_dis", 4: "ciphertext_hiding_en",
    5: "alias_check_complete", 7: "tio_en",
}


@dataclass(frozen=True, slots=True)
class GuestPolicy:
    """POLICY (go-sev-guest abi.go; virtee/sev snp.rs ``GuestPolicy``): the guest owner's launch
    policy, enforced by the firmware."""

    raw: int

    def bit(self, n: int) -> bool:
        return bool(self.raw >> n & 1)

    @property
    def abi(self) -> tuple[int, int]:
        """(ABI_MAJOR, ABI_MINOR): the oldest firmware ABI the guest agreed to run on."""
        return (self.raw >> 8 & 0xFF, self.raw & 0xFF)

    @property
    def smt(self) -> bool:
        return self.bit(16)

    @property
    def migrate_ma(self) -> bool:
        return self.bit(18)

    @property
    def debug(self) -> bool:
        return self.bit(19)

    def to_json(self) -> dict[str, Any]:
        return {"raw": self.raw, "abi_major": self.abi[0], "abi_minor": self.abi[1],
                **{name: self.bit(n) for n, name in _POLICY_BITS.items() if name != "reserved_1"}}


@dataclass(frozen=True, slots=True)
class PlatformInfo:
    """PLATFORM_INFO: how the host platform is configured (bits above 7 are kept, not named)."""

    raw: int

    def bit(self, n: int) -> bool:
        return bool(self.raw >> n & 1)

    def to_json(self) -> dict[str, Any]:
        return {"raw": self.raw, **{name: self.bit(n) for n, name in _PLATFORM_BITS.items()}}


@dataclass(frozen=True, slots=True)
class KeyInfo:
    """KEY_INFO: which key signed (0 VCEK, 1 VLEK, 7 none) and whether CHIP_ID is masked."""

    author_key_en: bool
    mask_chip_key: bool
    signing_key: int

    @property
    def signer(self) -> Literal["vcek", "vlek", "none"]:
        if self.signing_key == 0:
            return "vcek"
        return "vlek" if self.signing_key == 1 else "none"


_CPUID_PRODUCTS: Mapping[tuple[int, int], str] = {(0x19, 0x01): "Milan", (0x19, 0x11): "Genoa", (0x1A, 0x02): "Turin"}


def product_of_cpuid(family: int, model: int) -> str | None:
    """The KDS product line of a (family, model) pair (google/go-sev-guest abi.go
    ``SevProductFromCpuid1Eax``); None for parts it does not name."""
    return _CPUID_PRODUCTS.get((family, model))


@dataclass(frozen=True, slots=True)
class AttestationReport:
    """A parsed ``ATTESTATION_REPORT``; ``raw`` is the 1184 bytes as received."""

    raw: bytes
    version: int
    guest_svn: int
    policy: GuestPolicy
    family_id: bytes
    image_id: bytes
    vmpl: int
    signature_algo: int
    current_tcb: TcbVersion
    platform_info: PlatformInfo
    key_info: KeyInfo
    report_data: bytes
    measurement: bytes
    host_data: bytes
    id_key_digest: bytes
    author_key_digest: bytes
    report_id: bytes
    report_id_ma: bytes
    reported_tcb: TcbVersion
    cpuid: tuple[int, int, int] | None  # (family, model, stepping), version 3 and later
    chip_id: bytes
    committed_tcb: TcbVersion
    current_version: tuple[int, int, int]  # (major, minor, build)
    committed_version: tuple[int, int, int]
    launch_tcb: TcbVersion
    launch_mit_vector: int | None  # version 5 and later
    current_mit_vector: int | None
    signature_r: int
    signature_s: int

    @property
    def signed_bytes(self) -> bytes:
        return self.raw[:SIGNED_SIZE]

    @property
    def product_from_cpuid(self) -> str | None:
        return product_of_cpuid(self.cpuid[0], self.cpuid[1]) if self.cpuid is not None else None

    @property
    def chip_id_turin_like(self) -> bool:
        """A Turin CHIP_ID has only its first 8 bytes set (virtee ``chip_id_is_turin_like``)."""
        return any(self.chip_id[:8]) and not any(self.chip_id[8:])

    def to_json(self, product: str | None = None) -> dict[str, Any]:
        """The report as annotated evidence (bytes as lower-case hex; TCBs split by *product*)."""
        out: dict[str, Any] = {
            "version": self.version, "guest_svn": self.guest_svn, "policy": self.policy.to_json(),
            "family_id": self.family_id.hex(), "image_id": self.image_id.hex(), "vmpl": self.vmpl,
            "signature_algo": self.signature_algo, "current_tcb": self.current_tcb.to_json(product),
            "platform_info": self.platform_info.to_json(),
            "signer_info": {"signing_key": self.key_info.signer, "mask_chip_key": self.key_info.mask_chip_key,
                            "author_key_en": self.key_info.author_key_en},
            "report_data": self.report_data.hex(), "measurement": self.measurement.hex(),
            "host_data": self.host_data.hex(), "id_key_digest": self.id_key_digest.hex(),
            "author_key_digest": self.author_key_digest.hex(), "report_id": self.report_id.hex(),
            "report_id_ma": self.report_id_ma.hex(), "reported_tcb": self.reported_tcb.to_json(product),
            "chip_id": self.chip_id.hex(), "committed_tcb": self.committed_tcb.to_json(product),
            "current_version": "{}.{}.{}".format(*self.current_version),
            "committed_version": "{}.{}.{}".format(*self.committed_version),
            "launch_tcb": self.launch_tcb.to_json(product),
        }
        if self.cpuid is not None:
            out["cpuid"] = {"family": self.cpuid[0], "model": self.cpuid[1], "stepping": self.cpuid[2]}
        if self.launch_mit_vector is not None:
            out["launch_mit_vector"] = self.launch_mit_vector
            out["current_mit_vector"] = self.current_mit_vector
        return out


# -- the report --------------------------------------------------------------------------------

_HEX_REPORT = re.compile(rb"[0-9A-Fa-f]{%d}" % (2 * REPORT_SIZE))
_B64_REPORT = re.compile(rb"[A-Za-z0-9+/_-]+={0,2}")


def normalize_report(data: bytes) -> bytes:
    """The 1184 report bytes from binary, hex (either case) or base64/base64url text.

    Reports circulate in all three forms; whitespace around text is ignored.
    """
    if len(data) == REPORT_SIZE:
        return data
    if len(data) > 4 * REPORT_SIZE:
        raise SnpFormatError("size", f"report of {len(data)} bytes; expected {REPORT_SIZE}")
    text = b"".join(data.split())
    if _HEX_REPORT.fullmatch(text):
        return bytes.fromhex(text.decode("ascii"))
    if _B64_REPORT.fullmatch(text):
        try:
            raw = base64.b64decode(text.replace(b"-", b"+").replace(b"_", b"/") + b"=" * (-len(text) % 4),
                                   validate=True)
        except binascii.Error:
            raw = b""
        if len(raw) == REPORT_SIZE:
            return raw
    if len(text) in (2 * REPORT_SIZE, (REPORT_SIZE + 2) // 3 * 4):
        raise SnpFormatError("encoding", "report text is neither hex nor base64 of 1184 bytes")
    raise SnpFormatError("size", f"report of {len(data)} bytes; expected {REPORT_SIZE}")


def _u32(raw: bytes, off: int) -> int:
    return int(struct.unpack_from("<I", raw, off)[0])


def _u64(raw: bytes, off: int) -> int:
    return int(struct.unpack_from("<Q", raw, off)[0])


def _zero(raw: bytes, start: int, end: int, what: str) -> None:
    if any(raw[start:end]):
        i = next(i for i in range(start, end) if raw[i])
        raise SnpFormatError("reserved", f"{what} must be zero", offset=i)


def _version3(raw: bytes, off: int) -> tuple[int, int, int]:
    build, minor, major = raw[off], raw[off + 1], raw[off + 2]
    return (major, minor, build)


def parse_report(data: bytes) -> AttestationReport:
    """Parse and validate an ``ATTESTATION_REPORT`` (exactly 1184 bytes; see :func:`normalize_report`)."""
    if not isinstance(data, bytes | bytearray):
        raise SnpFormatError("size", "report is not bytes")
    raw = bytes(data)
    if len(raw) != REPORT_SIZE:
        raise SnpFormatError("size", f"report of {len(raw)} bytes; expected {REPORT_SIZE}")
    version = _u32(raw, 0x000)
    if version not in VERSIONS:
        raise SnpFormatError("version", f"report version {version} is not supported (2, 3 or 5)", offset=0)
    algo = _u32(raw, 0x034)
    if algo != SIG_ALGO_ECDSA_P384_SHA384:
        raise SnpFormatError("signature-algorithm", f"signature algorithm {algo} (only 1, ECDSA P-384 with "
                             "SHA-384, is defined)", offset=0x034)
    policy = _u64(raw, 0x008)
    if not policy >> 17 & 1:
        raise SnpFormatError("policy", "POLICY bit 17 must be one", offset=0x008)
    if policy & ~_POLICY_DEFINED:
        raise SnpFormatError("policy", f"POLICY sets undefined bits 0x{policy & ~_POLICY_DEFINED:x}", offset=0x008)
    vmpl = _u32(raw, 0x030)
    if vmpl > 3:
        raise SnpFormatError("vmpl", f"VMPL {vmpl} is above 3", offset=0x030)
    key_info = _u32(raw, 0x048)
    signing_key = key_info >> 2 & 0x7
    if key_info >> 5 or signing_key not in (0, 1, 7):
        raise SnpFormatError("key-info", f"KEY_INFO 0x{key_info:x} has reserved bits or signing key set",
                             offset=0x048)
    _zero(raw, 0x04C, 0x050, "reserved word after KEY_INFO")
    _zero(raw, 0x188 if version < 3 else 0x18B, 0x1A0, "reserved bytes before CHIP_ID")
    _zero(raw, 0x1EB, 0x1EC, "reserved byte after CURRENT_MAJOR")
    _zero(raw, 0x1EF, 0x1F0, "reserved byte after COMMITTED_MAJOR")
    _zero(raw, 0x1F8 if version < 5 else 0x208, 0x2A0, "reserved bytes before the signature")
    for start in (0x2A0, 0x2E8):  # r and s: 48-byte scalars zero-extended to 72 bytes
        if any(raw[start + 48:start + 72]):
            i = next(i for i in range(start + 48, start + 72) if raw[i])
            raise SnpFormatError("signature", "signature component wider than 48 bytes", offset=i)
    _zero(raw, 0x330, REPORT_SIZE, "reserved bytes after the signature")
    return AttestationReport(
        raw=raw, version=version, guest_svn=_u32(raw, 0x004), policy=GuestPolicy(policy),
        family_id=raw[0x010:0x020], image_id=raw[0x020:0x030], vmpl=vmpl, signature_algo=algo,
        current_tcb=TcbVersion(raw[0x038:0x040]), platform_info=PlatformInfo(_u64(raw, 0x040)),
        key_info=KeyInfo(bool(key_info & 1), bool(key_info & 2), signing_key),
        report_data=raw[0x050:0x090], measurement=raw[0x090:0x0C0], host_data=raw[0x0C0:0x0E0],
        id_key_digest=raw[0x0E0:0x110], author_key_digest=raw[0x110:0x140], report_id=raw[0x140:0x160],
        report_id_ma=raw[0x160:0x180], reported_tcb=TcbVersion(raw[0x180:0x188]),
        cpuid=(raw[0x188], raw[0x189], raw[0x18A]) if version >= 3 else None,
        chip_id=raw[0x1A0:0x1E0], committed_tcb=TcbVersion(raw[0x1E0:0x1E8]),
        current_version=_version3(raw, 0x1E8), committed_version=_version3(raw, 0x1EC),
        launch_tcb=TcbVersion(raw[0x1F0:0x1F8]),
        launch_mit_vector=_u64(raw, 0x1F8) if version >= 5 else None,
        current_mit_vector=_u64(raw, 0x200) if version >= 5 else None,
        signature_r=int.from_bytes(raw[0x2A0:0x2E8], "little"),
        signature_s=int.from_bytes(raw[0x2E8:0x330], "little"),
    )


def verify_report_signature(report: AttestationReport, key: ec.EllipticCurvePublicKey) -> None:
    """ECDSA P-384/SHA-384 over bytes 0x000..0x29F as received; raises on any failure."""
    if not isinstance(key, ec.EllipticCurvePublicKey) or key.curve.name != "secp384r1":
        raise AlgorithmError("sev-snp: the report signing key must be ECDSA P-384")
    try:
        key.verify(encode_dss_signature(report.signature_r, report.signature_s), report.signed_bytes,
                   ec.ECDSA(hashes.SHA384()))
    except InvalidSignature as exc:
        raise BadSignatureError("sev-snp: report signature does not verify under the VCEK/VLEK") from exc


# -- the GHCB certificate table ---------------------------------------------------------------

CERT_TABLE_ROLES: Mapping[uuid.UUID, str] = {
    uuid.UUID("63da758d-e664-4564-adc5-f4b93be8accd"): "vcek",
    uuid.UUID("a8074bc2-a25a-483e-aae6-39c045a0b8a1"): "vlek",
    uuid.UUID("4ab7b379-bbac-4fe4-a02f-05aef327c782"): "ask",  # the ASVK too, in a VLEK table
    uuid.UUID("c0b406a4-a803-4952-9743-3fb6014cd0ae"): "ark",
}
_ENTRY = 24


@dataclass(frozen=True, slots=True)
class CertEntry:
    guid: uuid.UUID
    role: str | None  # from the GUID; None for GUIDs this table does not know
    data: bytes  # PEM or DER, as carried


@dataclass(frozen=True, slots=True)
class CertTable:
    entries: tuple[CertEntry, ...]

    def get(self, role: str) -> bytes | None:
        return next((e.data for e in self.entries if e.role == role), None)


def parse_cert_table(data: bytes) -> CertTable:
    """The GHCB extended-report certificate table: 24-byte entries {GUID (RFC 4122 order),
    offset u32, length u32} up to an all-zero entry; offsets count from the table start."""
    if len(data) > MAX_CERT_TABLE:
        raise SnpFormatError("size", f"certificate table of {len(data)} bytes exceeds {MAX_CERT_TABLE}")
    headers: list[tuple[uuid.UUID, int, int]] = []
    for i in range(MAX_CERT_ENTRIES + 1):
        entry = data[i * _ENTRY:(i + 1) * _ENTRY]
        if len(entry) < _ENTRY:
            raise SnpFormatError("cert-table", "certificate table ends before its all-zero terminator")
        if entry == bytes(_ENTRY):
            break
        if i == MAX_CERT_ENTRIES:
            raise SnpFormatError("cert-table", f"certificate table has more than {MAX_CERT_ENTRIES} entries")
        offset, length = struct.unpack_from("<II", entry, 16)
        headers.append((uuid.UUID(bytes=entry[:16]), offset, length))
    body_start = (len(headers) + 1) * _ENTRY
    entries: list[CertEntry] = []
    for guid, offset, length in headers:
        if any(e.guid == guid for e in entries):
            raise SnpFormatError("cert-table", f"certificate table names {guid} twice")
        if length == 0 or offset < body_start or offset + length > len(data):
            raise SnpFormatError("cert-table", f"entry {guid} points outside the table "
                                 f"(offset {offset}, length {length}, table {len(data)} bytes)")
        entries.append(CertEntry(guid, CERT_TABLE_ROLES.get(guid), data[offset:offset + length]))
    return CertTable(tuple(entries))


def encode_cert_table(entries: Mapping[str, bytes]) -> bytes:
    """A certificate table for *entries* (role -> PEM or DER), for tests and tooling."""
    guids = {role: guid for guid, role in CERT_TABLE_ROLES.items()}
    body_start = (len(entries) + 1) * _ENTRY
    header, body = b"", b""
    for role, blob in entries.items():
        header += guids[role].bytes + struct.pack("<II", body_start + len(body), len(blob))
        body += blob
    return header + bytes(_ENTRY) + body


# -- envelopes ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TsmReport:
    """A Linux configfs-tsm report as Veraison's ratsd encodes it (``tokens/tsm-report.go``)."""

    provider: str
    outblob: bytes
    auxblob: bytes | None = None
    manifestblob: bytes | None = None
    service_provider: str | None = None


def _tsm(fields: Mapping[str, Any], decode_blob: Any) -> TsmReport:
    provider = fields.get("provider")
    if not isinstance(provider, str) or not provider:
        raise SnpFormatError("tsm", "TSM report needs a text 'provider'")
    blobs: dict[str, bytes | None] = {}
    for name in ("outblob", "auxblob", "manifestblob"):
        value = fields.get(name)
        blobs[name] = None if value is None else decode_blob(value, name)
    if not blobs["outblob"]:
        raise SnpFormatError("tsm", "TSM report needs an 'outblob'")
    service = fields.get("service_provider")
    if service is not None and not isinstance(service, str):
        raise SnpFormatError("tsm", "TSM 'service_provider' must be text")
    if blobs["manifestblob"] and not service:
        raise SnpFormatError("tsm", "TSM 'manifestblob' without 'service_provider'")
    return TsmReport(provider, blobs["outblob"] or b"", blobs["auxblob"], blobs["manifestblob"], service)


def decode_tsm_cbor(data: bytes) -> TsmReport:
    """``application/vnd.veraison.tsm-report+cbor``: a CBOR map with text keys."""
    item = cbor.loads(data, max_size=MAX_ENVELOPE, max_depth=4)
    if not isinstance(item, dict) or not all(isinstance(k, str) for k in item):
        raise SnpFormatError("tsm", "TSM report must be a CBOR map with text keys")

    def blob(value: Any, name: str) -> bytes:
        if not isinstance(value, bytes):
            raise SnpFormatError("tsm", f"TSM {name!r} must be a byte string")
        return value

    return _tsm(item, blob)


def decode_tsm_json(data: bytes) -> TsmReport:
    """``application/vnd.veraison.tsm-report+json``: blobs as base64url (padding tolerated)."""
    if len(data) > MAX_ENVELOPE:
        raise SnpFormatError("size", f"TSM report of {len(data)} bytes exceeds {MAX_ENVELOPE}")
    try:
        item = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise SnpFormatError("tsm", "TSM report is not JSON") from exc
    if not isinstance(item, dict):
        raise SnpFormatError("tsm", "TSM report must be a JSON object")

    def blob(value: Any, name: str) -> bytes:
        if isinstance(value, str) and re.fullmatch(r"[A-Za-z0-9_-]*={0,2}", value):
            try:
                return base64.urlsafe_b64decode(value.rstrip("=") + "=" * (-len(value.rstrip("=")) % 4))
            except binascii.Error:
                pass
        raise SnpFormatError("tsm", f"TSM {name!r} must be base64url text")

    return _tsm(item, blob)


@dataclass(frozen=True, slots=True)
class CertBlob:
    """A certificate or CRL the Evidence carries (PEM or DER), untrusted, and where it was."""

    data: bytes
    role: str | None  # the certificate table's GUID role, when it came from a table
    origin: str
    crl: bool = False


@dataclass(frozen=True, slots=True)
class SnpEvidence:
    report: AttestationReport
    blobs: tuple[CertBlob, ...]
    form: Form


def _table_blobs(aux: bytes, origin: str) -> list[CertBlob]:
    return [CertBlob(e.data, e.role, f"{origin}:{e.role or e.guid}") for e in parse_cert_table(aux).entries]


def _from_collection(data: bytes) -> SnpEvidence:
    tree = cmw.decode(data, max_size=MAX_ENVELOPE, max_depth=1)
    if not isinstance(tree, cmw.Collection) or tree.ctype != COLLECTION_TYPE:
        raise SnpFormatError("collection", f"not a CMW collection of type {COLLECTION_TYPE!r}")
    report: bytes | None = None
    blobs: list[CertBlob] = []
    for label, leaf in tree.entries:
        if not isinstance(leaf, cmw.Record) or leaf.media_type is None:
            raise SnpFormatError("collection", f"entry {label!r} is not a record with a media type")
        mt = leaf.media_type.split(";", 1)[0].strip().lower()
        where = f"cmw:{label}"
        if mt == MEDIA_TYPE_REPORT:
            if report is not None:
                raise SnpFormatError("collection", "the collection carries more than one report")
            report = leaf.value
        elif mt == MEDIA_TYPE_CERT_TABLE:
            blobs.extend(_table_blobs(leaf.value, where))
        elif mt in (_PEM_CHAIN, _PKIX_CERT):
            blobs.append(CertBlob(leaf.value, None, where))
        elif mt == _PKIX_CRL:
            blobs.append(CertBlob(leaf.value, None, where, crl=True))
        else:
            raise SnpFormatError("collection", f"entry {label!r} has unexpected type {mt!r:.60}")
    if report is None:
        raise SnpFormatError("collection", f"the collection carries no {MEDIA_TYPE_REPORT} record")
    return SnpEvidence(parse_report(normalize_report(report)), tuple(blobs), "cmw")


def decode_evidence(data: bytes, form: Form) -> SnpEvidence:
    """The report and the certificates (untrusted) an Evidence of *form* carries."""
    if len(data) > MAX_ENVELOPE:
        raise SnpFormatError("size", f"evidence of {len(data)} bytes exceeds {MAX_ENVELOPE}")
    if form == "report":
        return SnpEvidence(parse_report(normalize_report(data)), (), form)
    if form == "cmw":
        out = _from_collection(data)
    else:
        tsm = decode_tsm_cbor(data) if form == "tsm-cbor" else decode_tsm_json(data)
        if tsm.provider.strip() != TSM_PROVIDER:  # configfs keeps the attribute's trailing newline
            raise SnpFormatError("tsm", f"TSM provider {tsm.provider!r:.30} is not {TSM_PROVIDER!r}")
        blobs = _table_blobs(tsm.auxblob, "auxblob") if tsm.auxblob else []
        out = SnpEvidence(parse_report(tsm.outblob), tuple(blobs), form)
    if len(out.blobs) > MAX_CERT_BLOBS:
        raise SnpFormatError("size", f"evidence carries more than {MAX_CERT_BLOBS} certificates")
    return out


def sniff(data: bytes) -> str | None:
    """The media type of a bare report (binary, hex or base64), a TSM report of an SEV guest,
    or our CMW collection; None otherwise."""
    if not data:
        return None
    candidates: tuple[tuple[str, Form], ...]
    if data[:1] == b"{":
        candidates = ((MEDIA_TYPE_TSM_JSON, "tsm-json"), (MEDIA_TYPE_CMW_JSON, "cmw"))
    elif 0xA0 <= data[0] <= 0xBB or data[0] == 0xBF:
        candidates = ((MEDIA_TYPE_TSM_CBOR, "tsm-cbor"), (MEDIA_TYPE_CMW_CBOR, "cmw"))
    else:
        candidates = ((MEDIA_TYPE_REPORT, "report"),)
    for media_type, form in candidates:
        try:
            decode_evidence(data, form)
        except Error:  # any failure means "not this form"
            continue
        return media_type
    return None
