"""AMD certificate chains (verifiers/local/collateral/amd.py), the pinned roots (roots_amd.py) and the
offline collateral folder (collateral/folder.py), on the real certificates of
../shared/vectors/sev-snp and on generated ones.

This module also holds the forge the other SEV-SNP tests use: ``Forge`` builds AMD-shaped chains
(RSA-PSS SHA-384 salt 48, AMD subject names, KDS extensions) and signs reports, for what no
vector covers (Turin and report version 5, VLEK, CRLs, unpinned roots). Its RSA keys are 2048-bit
to keep the suite fast; AMD's are 4096-bit, and the verifier accepts both.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path, PurePosixPath
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.x509.oid import NameOID, ObjectIdentifier

from federation.errors import (
    AlgorithmError,
    BadSignatureError,
    ConfigError,
    Error,
    MalformedError,
    StaleError,
    UntrustedKeyError,
    UsageError,
)
from verifiers.local.collateral import amd, folder
from verifiers.local.collateral.amd import (
    TrustedRoots,
    cert_role,
    check_crls,
    load_certificates,
    load_crls,
    vek_extensions,
    verify_chain,
)
from verifiers.local.collateral.base import Collateral, CollateralRequest
from verifiers.local.collateral.folder import FolderFile, FolderStore, handlers, register_handler
from verifiers.local.evidence.sevsnp import REPORT_SIZE, SIGNED_SIZE, TcbVersion
from verifiers.local.roots_amd import ARK_PINS, PINS_BY_SHA256, spki_sha256

SNP = Path(__file__).resolve().parents[2] / "shared" / "vectors" / "sev-snp"
TRUST = SNP / "go-sev-guest" / "trust"
VCEK_MILAN = SNP / "go-sev-guest" / "vcek.testcer"
MILAN_AT = datetime(2024, 1, 1, tzinfo=UTC)  # SOURCES.md: inside the VCEK's 2022-09-24..2029-09-24
PSS48 = padding.PSS(mgf=padding.MGF1(hashes.SHA384()), salt_length=48)
NOW = datetime(2026, 6, 1, tzinfo=UTC)


def pem_certs(path: Path) -> list[x509.Certificate]:
    return load_certificates(path.read_bytes())


# -- the forge -------------------------------------------------------------------------------------


def amd_name(cn: str) -> x509.Name:
    """A name as AMD writes it (same attributes, same order: a lookalike compares equal)."""
    return x509.Name([
        x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "Engineering"),
        x509.NameAttribute(NameOID.COUNTRY_NAME, "US"),
        x509.NameAttribute(NameOID.LOCALITY_NAME, "Santa Clara"),
        x509.NameAttribute(NameOID.STATE_OR_PROVINCE_NAME, "CA"),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Advanced Micro Devices"),
        x509.NameAttribute(NameOID.COMMON_NAME, cn),
    ])


@cache
def rsa_key(label: str) -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@cache
def ec_key(label: str) -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP384R1())


def der_int(v: int) -> bytes:
    body = v.to_bytes(max(1, (v.bit_length() + 8) // 8), "big")
    return b"\x02" + bytes([len(body)]) + body


def der_ia5(s: str) -> bytes:
    return b"\x16" + bytes([len(s)]) + s.encode()


_SPL_OIDS = {"bl": "3.1", "tee": "3.2", "snp": "3.3", "spl4": "3.4", "spl5": "3.5", "spl6": "3.6",
             "spl7": "3.7", "ucode": "3.8", "fmc": "3.9"}


def kds_ext(suffix: str, value: bytes) -> x509.UnrecognizedExtension:
    return x509.UnrecognizedExtension(ObjectIdentifier(f"1.3.6.1.4.1.3704.1.{suffix}"), value)


def sign_cert(builder: x509.CertificateBuilder, key: rsa.RSAPrivateKey, salt: int = 48) -> x509.Certificate:
    pss = padding.PSS(mgf=padding.MGF1(hashes.SHA384()), salt_length=salt)
    return builder.sign(key, hashes.SHA384(), rsa_padding=pss)


@dataclass
class Chain:
    """A generated AMD-shaped chain for one product line."""

    product: str
    ark: x509.Certificate
    ark_key: rsa.RSAPrivateKey
    ask: x509.Certificate
    ask_key: rsa.RSAPrivateKey
    asvk: x509.Certificate
    asvk_key: rsa.RSAPrivateKey

    @property
    def roots(self) -> TrustedRoots:
        """The pinned roots plus this chain's ARK, as an operator would configure it."""
        return TrustedRoots.default().with_operator_roots([self.ark])

    def pem(self, *certs: x509.Certificate) -> bytes:
        return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certs)


def ca_cert(cn: str, key: rsa.RSAPrivateKey, issuer_cn: str, issuer_key: rsa.RSAPrivateKey, *,
            not_before: datetime = datetime(2020, 1, 1, tzinfo=UTC),
            not_after: datetime = datetime(2045, 1, 1, tzinfo=UTC), serial: int = 65537, salt: int = 48,
            ca: bool = True, key_cert_sign: bool = True) -> x509.Certificate:
    b = (x509.CertificateBuilder().subject_name(amd_name(cn)).issuer_name(amd_name(issuer_cn))
         .public_key(key.public_key()).serial_number(serial).not_valid_before(not_before).not_valid_after(not_after)
         .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
         .add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False, key_encipherment=False,
                                      data_encipherment=False, key_agreement=False, key_cert_sign=key_cert_sign,
                                      crl_sign=True, encipher_only=False, decipher_only=False), critical=True))
    return sign_cert(b, issuer_key, salt)


@cache
def chain(product: str, label: str = "forged") -> Chain:
    ark_key, ask_key, asvk_key = (rsa_key(f"{label}-{product}-{r}") for r in ("ark", "ask", "asvk"))
    ark = ca_cert(f"ARK-{product}", ark_key, f"ARK-{product}", ark_key, serial=65536)
    ask = ca_cert(f"SEV-{product}", ask_key, f"ARK-{product}", ark_key)
    asvk = ca_cert(f"SEV-VLEK-{product}", asvk_key, f"ARK-{product}", ark_key, serial=65793)
    return Chain(product, ark, ark_key, ask, ask_key, asvk, asvk_key)


def vek_cert(c: Chain, kind: str, key: ec.EllipticCurvePrivateKey, *, product_name: str, spl: Mapping[str, int],
             hwid: bytes | None = None, csp_id: str | None = None, hwid_der: bool = False,
             not_before: datetime = datetime(2025, 1, 1, tzinfo=UTC),
             not_after: datetime = datetime(2032, 1, 1, tzinfo=UTC), struct_version: int = 0) -> x509.Certificate:
    issuer, issuer_key = (c.ask, c.ask_key) if kind == "vcek" else (c.asvk, c.asvk_key)
    b = (x509.CertificateBuilder().subject_name(amd_name("SEV-VCEK" if kind == "vcek" else "SEV-VLEK"))
         .issuer_name(issuer.subject).public_key(key.public_key()).serial_number(1)
         .not_valid_before(not_before).not_valid_after(not_after)
         .add_extension(kds_ext("1", der_int(struct_version)), critical=False)
         .add_extension(kds_ext("2", der_ia5(product_name)), critical=False))
    for name, value in spl.items():
        b = b.add_extension(kds_ext(_SPL_OIDS[name], der_int(value)), critical=False)
    if hwid is not None:
        b = b.add_extension(kds_ext("4", b"\x04" + bytes([len(hwid)]) + hwid if hwid_der else hwid), critical=False)
    if csp_id is not None:
        b = b.add_extension(kds_ext("5", der_ia5(csp_id)), critical=False)
    return sign_cert(b, issuer_key)


@dataclass
class ReportSpec:
    """The fields of a generated report (defaults: a Genoa v3 guest under a VCEK)."""

    version: int = 3
    guest_svn: int = 1
    policy: int = 0x30000
    family_id: bytes = bytes(16)
    image_id: bytes = bytes(16)
    vmpl: int = 0
    current_tcb: bytes = bytes([10, 0, 0, 0, 0, 0, 23, 84])
    platform_info: int = 0x25
    key_info: int = 0  # VCEK
    report_data: bytes = bytes(64)
    measurement: bytes = bytes(range(48))
    host_data: bytes = bytes(32)
    id_key_digest: bytes = bytes(48)
    author_key_digest: bytes = bytes(48)
    report_id: bytes = bytes([7]) * 32
    report_id_ma: bytes = b"\xff" * 32
    reported_tcb: bytes | None = None  # None: current
    cpuid: bytes = bytes([0x19, 0x11, 0x01])
    chip_id: bytes = bytes(range(64, 128))
    committed_tcb: bytes | None = None
    current_version: bytes = bytes([40, 55, 1])  # build, minor, major
    committed_version: bytes = bytes([40, 55, 1])
    launch_tcb: bytes | None = None
    launch_mit: int = 0
    current_mit: int = 0
    extra: dict[int, bytes] = field(default_factory=dict)  # raw overrides by offset (before signing)

    def unsigned(self) -> bytearray:
        r = bytearray(REPORT_SIZE)
        cur = self.current_tcb
        struct.pack_into("<IIQ", r, 0, self.version, self.guest_svn, self.policy)
        r[0x10:0x20], r[0x20:0x30] = self.family_id, self.image_id
        struct.pack_into("<II", r, 0x30, self.vmpl, 1)
        r[0x38:0x40] = cur
        struct.pack_into("<QI", r, 0x40, self.platform_info, self.key_info)
        r[0x50:0x90], r[0x90:0xC0], r[0xC0:0xE0] = self.report_data, self.measurement, self.host_data
        r[0xE0:0x110], r[0x110:0x140] = self.id_key_digest, self.author_key_digest
        r[0x140:0x160], r[0x160:0x180] = self.report_id, self.report_id_ma
        r[0x180:0x188] = self.reported_tcb or cur
        if self.version >= 3:
            r[0x188:0x18B] = self.cpuid
        r[0x1A0:0x1E0] = self.chip_id
        r[0x1E0:0x1E8] = self.committed_tcb or cur
        r[0x1E8:0x1EB], r[0x1EC:0x1EF] = self.current_version, self.committed_version
        r[0x1F0:0x1F8] = self.launch_tcb or cur
        if self.version >= 5:
            struct.pack_into("<QQ", r, 0x1F8, self.launch_mit, self.current_mit)
        for off, value in self.extra.items():
            r[off:off + len(value)] = value
        return r

    def signed(self, key: ec.EllipticCurvePrivateKey) -> bytes:
        r = self.unsigned()
        der = key.sign(bytes(r[:SIGNED_SIZE]), ec.ECDSA(hashes.SHA384()))
        sig_r, sig_s = decode_dss_signature(der)
        r[0x2A0:0x2E8] = sig_r.to_bytes(72, "little")
        r[0x2E8:0x330] = sig_s.to_bytes(72, "little")
        return bytes(r)


GENOA_SPL = {"bl": 10, "tee": 0, "snp": 23, "ucode": 84, "spl4": 0, "spl5": 0, "spl6": 0, "spl7": 0}
TURIN_TCB = bytes([3, 1, 2, 4, 0, 0, 0, 0x48])  # fmc 3, bl 1, tee 2, snp 4, ucode 0x48
TURIN_SPL = {"fmc": 3, "bl": 1, "tee": 2, "snp": 4, "ucode": 0x48}


# -- the pins ----------------------------------------------------------------------------------------


def test_the_forge_names_like_amd() -> None:
    real_ark = pem_certs(TRUST / "ask_ark_genoa.pem")[1]
    assert amd_name("ARK-Genoa") == real_ark.subject


def test_pins_are_the_sha256_of_the_ark_keys_in_the_vectors() -> None:
    seen: dict[str, str] = {}
    for bundle in sorted(TRUST.glob("*.pem")):
        arks = [c for c in pem_certs(bundle) if (cert_role(c) or ("",))[0] == "ark"]
        assert len(arks) == 1, bundle.name
        seen.setdefault(arks[0].subject.rfc4514_string(), spki_sha256(arks[0].public_key()))
        assert spki_sha256(arks[0].public_key()) in PINS_BY_SHA256, bundle.name  # VLEK bundles: same ARK
    assert {r.spki_sha256 for r in ARK_PINS} == set(seen.values())
    for root in ARK_PINS:
        assert any(root.common_name in subject for subject in seen), root


# -- real chains -------------------------------------------------------------------------------------


@pytest.mark.parametrize(("bundle", "product"), [
    ("ask_ark_milan.pem", "Milan"), ("ask_ark_genoa.pem", "Genoa"), ("ask_ark_turin_vcek.pem", "Turin"),
    ("ask_ark_milan_vlek.pem", "Milan"), ("ask_ark_genoa_vlek.pem", "Genoa"), ("ask_ark_turin_vlek.pem", "Turin"),
])
def test_every_real_bundle_classifies_by_subject(bundle: str, product: str) -> None:
    roles = sorted(cert_role(c) or ("?", None) for c in pem_certs(TRUST / bundle))
    inter = "asvk" if "vlek" in bundle else "ask"
    assert roles == sorted([("ark", product), (inter, product)])


def test_milan_vcek_chain_verifies_to_the_pinned_ark() -> None:
    vcek = pem_certs(VCEK_MILAN)[0]
    got = verify_chain(vcek, "vcek", pem_certs(TRUST / "ask_ark_milan.pem"), TrustedRoots.default(), MILAN_AT)
    assert (got.product, got.root_source, got.kind) == ("Milan", "pinned", "vcek")
    assert got.root_sha256 == next(r.spki_sha256 for r in ARK_PINS if r.product == "Milan")
    ext = got.extensions
    assert ext.product_name == "Milan-B0" and ext.product_line == "Milan"
    assert ext.tcb("Milan") == TcbVersion(bytes.fromhex("0200000000000544"))
    assert ext.hwid is not None and ext.hwid.hex().startswith("3ac3fe21")
    assert got.to_json()["ark_trusted_by"] == "pinned"


def test_bundle_order_does_not_matter_and_extra_certificates_are_ignored() -> None:
    vcek = pem_certs(VCEK_MILAN)[0]
    pool = [*reversed(pem_certs(TRUST / "ask_ark_milan.pem")), *pem_certs(TRUST / "ask_ark_genoa.pem"),
            *pem_certs(TRUST / "ask_ark_milan_vlek.pem")]
    assert verify_chain(vcek, "vcek", pool, TrustedRoots.default(), MILAN_AT).product == "Milan"


def test_a_vcek_outside_its_validity_fails_with_a_reason_naming_the_window() -> None:
    vcek = pem_certs(VCEK_MILAN)[0]
    pool = pem_certs(TRUST / "ask_ark_milan.pem")
    for when in (datetime(2022, 9, 23, tzinfo=UTC), datetime(2030, 1, 1, tzinfo=UTC)):
        with pytest.raises(StaleError, match=r"VCEK certificate is not valid at .*valid 2022-09-24T00:55:28"):
            verify_chain(vcek, "vcek", pool, TrustedRoots.default(), when)


def test_missing_links_are_named() -> None:
    vcek = pem_certs(VCEK_MILAN)[0]
    ask, ark = pem_certs(TRUST / "ask_ark_milan.pem")
    with pytest.raises(UntrustedKeyError, match="no ASK certificate"):
        verify_chain(vcek, "vcek", [ark], TrustedRoots.default(), MILAN_AT)
    with pytest.raises(UntrustedKeyError, match="no ARK certificate"):
        verify_chain(vcek, "vcek", [ask], TrustedRoots.default(), MILAN_AT)
    with pytest.raises(MalformedError, match="subject is not CN=SEV-VLEK"):
        verify_chain(vcek, "vlek", [ask, ark], TrustedRoots.default(), MILAN_AT)
    # the ARK of an operator-configured root set serves when nothing else carries it
    assert verify_chain(vcek, "vcek", [ask], TrustedRoots.default().with_operator_roots([ark]), MILAN_AT)


def test_an_ask_from_another_product_does_not_vouch() -> None:
    vcek = pem_certs(VCEK_MILAN)[0]
    with pytest.raises(UntrustedKeyError, match="no ASK"):
        verify_chain(vcek, "vcek", pem_certs(TRUST / "ask_ark_genoa.pem"), TrustedRoots.default(), MILAN_AT)


def test_an_empty_root_set_trusts_nothing() -> None:
    vcek = pem_certs(VCEK_MILAN)[0]
    with pytest.raises(UntrustedKeyError, match="matches no pinned AMD root"):
        verify_chain(vcek, "vcek", pem_certs(TRUST / "ask_ark_milan.pem"), TrustedRoots({}), MILAN_AT)


def flips(data: bytes) -> list[tuple[int, bytes]]:
    """One single-bit change in every byte, the bit position rotating through 0..7 (every bit of
    every byte would be 8 times the work for the same fields: DER is byte-structured)."""
    out = []
    for i in range(len(data)):
        flipped = bytearray(data)
        flipped[i] ^= 1 << (i * 3 % 8)
        out.append((i, bytes(flipped)))
    return out


@pytest.mark.parametrize("which", ["vcek", "ask", "ark"])
def test_flipping_a_bit_anywhere_in_any_certificate_breaks_the_chain(which: str) -> None:
    """A single-bit change in any byte of the VCEK, the ASK or the ARK makes the chain fail: the
    DER no longer parses, the profile check rejects it, a signature fails, the validity window no
    longer covers the time, or the ARK no longer matches its pin."""
    vcek = VCEK_MILAN.read_bytes()
    ask, ark = (c.public_bytes(serialization.Encoding.DER) for c in pem_certs(TRUST / "ask_ark_milan.pem"))
    certs = {"vcek": vcek, "ask": ask, "ark": ark}
    roots = TrustedRoots.default()
    for i, flipped in flips(certs[which]):
        mine = {**certs, which: bytes(flipped)}
        try:
            parsed = {k: load_certificates(v)[0] for k, v in mine.items()}
            verify_chain(parsed["vcek"], "vcek", [parsed["ask"], parsed["ark"]], roots, MILAN_AT)
        except Error:
            continue
        pytest.fail(f"byte {i} of the {which} changed and the chain still verified")


# -- generated chains --------------------------------------------------------------------------------


def test_a_generated_turin_chain_with_8_byte_hwid_and_fmc() -> None:
    c = chain("Turin")
    hwid = bytes(range(1, 9))
    vcek = vek_cert(c, "vcek", ec_key("turin"), product_name="Turin-B0", spl=TURIN_SPL, hwid=hwid,
                    struct_version=1)
    got = verify_chain(vcek, "vcek", [c.ask, c.ark], c.roots, NOW)
    assert (got.product, got.root_source) == ("Turin", "operator")
    assert got.extensions.hwid == hwid
    assert got.extensions.tcb("Turin").raw == TURIN_TCB
    assert got.extensions.tcb("Turin").components("Turin") == {
        "fmc": 3, "boot_loader": 1, "tee": 2, "snp": 4, "microcode": 0x48}
    # without the operator root the same chain is refused: the ARK is self-signed but not pinned
    with pytest.raises(UntrustedKeyError, match=r"ARK key sha256:[0-9a-f]{64} matches no pinned AMD root"):
        verify_chain(vcek, "vcek", [c.ask, c.ark], TrustedRoots.default(), NOW)


def test_hwid_as_a_der_octet_string_is_accepted() -> None:
    c = chain("Genoa")
    hwid = bytes(range(64))
    vcek = vek_cert(c, "vcek", ec_key("genoa"), product_name="Genoa", spl=GENOA_SPL, hwid=hwid, hwid_der=True)
    assert vek_extensions(vcek).hwid == hwid


def test_a_turin_vcek_without_fmc_has_no_tcb() -> None:
    c = chain("Turin")
    spl = {k: v for k, v in TURIN_SPL.items() if k != "fmc"}
    vcek = vek_cert(c, "vcek", ec_key("turin"), product_name="Turin-B0", spl=spl, hwid=bytes(8))
    with pytest.raises(MalformedError, match="fmc"):
        vek_extensions(vcek).tcb("Turin")


def test_a_generated_vlek_chain() -> None:
    c = chain("Genoa")
    vlek = vek_cert(c, "vlek", ec_key("vlek"), product_name="Genoa", spl=GENOA_SPL, csp_id="CN=cloud.example")
    got = verify_chain(vlek, "vlek", [c.asvk, c.ark, c.ask], c.roots, NOW)
    assert got.intermediate == c.asvk and got.extensions.csp_id == "CN=cloud.example"
    with pytest.raises(UntrustedKeyError, match="no ASVK"):
        verify_chain(vlek, "vlek", [c.ask, c.ark], c.roots, NOW)


def test_a_wrong_pss_salt_is_refused_even_under_a_trusted_root() -> None:
    c = chain("Genoa")
    key = ec_key("genoa")
    vcek = vek_cert(c, "vcek", key, product_name="Genoa", spl=GENOA_SPL, hwid=bytes(64))
    # the AlgorithmIdentifier says salt 32: refused on sight
    builder = (x509.CertificateBuilder().subject_name(vcek.subject).issuer_name(vcek.issuer)
               .public_key(key.public_key()).serial_number(1).not_valid_before(vcek.not_valid_before_utc)
               .not_valid_after(vcek.not_valid_after_utc))
    for ext in vcek.extensions:
        builder = builder.add_extension(ext.value, ext.critical)
    with pytest.raises(AlgorithmError, match="salt 48"):
        verify_chain(sign_cert(builder, c.ask_key, salt=32), "vcek", [c.ask, c.ark], c.roots, NOW)
    # the AlgorithmIdentifier says 48 but the signature was made with salt 32: the signature fails
    der = vcek.public_bytes(serialization.Encoding.DER)
    salt32 = c.ask_key.sign(vcek.tbs_certificate_bytes,
                            padding.PSS(mgf=padding.MGF1(hashes.SHA384()), salt_length=32), hashes.SHA384())
    forged = load_certificates(der[:-len(salt32)] + salt32)[0]
    with pytest.raises(BadSignatureError, match="VCEK signature does not verify"):
        verify_chain(forged, "vcek", [c.ask, c.ark], c.roots, NOW)


def test_a_pkcs1_signed_ask_is_refused() -> None:
    c = chain("Genoa")
    b = (x509.CertificateBuilder().subject_name(c.ask.subject).issuer_name(c.ark.subject)
         .public_key(c.ask_key.public_key()).serial_number(7).not_valid_before(c.ask.not_valid_before_utc)
         .not_valid_after(c.ask.not_valid_after_utc))
    for ext in c.ask.extensions:
        b = b.add_extension(ext.value, ext.critical)
    pkcs1 = b.sign(c.ark_key, hashes.SHA384())
    vcek = vek_cert(c, "vcek", ec_key("genoa"), product_name="Genoa", spl=GENOA_SPL, hwid=bytes(64))
    with pytest.raises(AlgorithmError):
        verify_chain(vcek, "vcek", [pkcs1, c.ark], c.roots, NOW)


def test_an_ask_that_is_not_a_ca_is_refused() -> None:
    c = chain("Genoa")
    not_ca = ca_cert("SEV-Genoa", c.ask_key, "ARK-Genoa", c.ark_key, ca=False)
    vcek = vek_cert(c, "vcek", ec_key("genoa"), product_name="Genoa", spl=GENOA_SPL, hwid=bytes(64))
    with pytest.raises(MalformedError, match="not a CA"):
        verify_chain(vcek, "vcek", [not_ca, c.ark], c.roots, NOW)


def test_products_must_agree_along_the_chain() -> None:
    c = chain("Genoa")
    vcek = vek_cert(c, "vcek", ec_key("genoa"), product_name="Milan-B0", spl=GENOA_SPL, hwid=bytes(64))
    with pytest.raises(MalformedError, match="different product lines"):
        verify_chain(vcek, "vcek", [c.ask, c.ark], c.roots, NOW)
    # a pin says which product its key is for
    pinned_as_milan = TrustedRoots({spki_sha256(c.ark.public_key()): "Milan"})
    good = vek_cert(c, "vcek", ec_key("genoa"), product_name="Genoa", spl=GENOA_SPL, hwid=bytes(64))
    with pytest.raises(MalformedError, match="pin Milan"):
        verify_chain(good, "vcek", [c.ask, c.ark], pinned_as_milan, NOW)


def test_an_expired_ask_or_ark_is_stale() -> None:
    c = chain("Genoa")
    old_ask = ca_cert("SEV-Genoa", c.ask_key, "ARK-Genoa", c.ark_key, not_after=datetime(2026, 1, 1, tzinfo=UTC))
    vcek = vek_cert(c, "vcek", ec_key("genoa"), product_name="Genoa", spl=GENOA_SPL, hwid=bytes(64))
    with pytest.raises(StaleError, match="ASK certificate is not valid"):
        verify_chain(vcek, "vcek", [old_ask, c.ark], c.roots, NOW)


# -- CRLs ------------------------------------------------------------------------------------------


def make_crl(c: Chain, revoked: list[int], *, next_update: datetime, signer: rsa.RSAPrivateKey | None = None
             ) -> x509.CertificateRevocationList:
    b = (x509.CertificateRevocationListBuilder().issuer_name(c.ark.subject)
         .last_update(datetime(2026, 1, 1, tzinfo=UTC)).next_update(next_update))
    for serial in revoked:
        b = b.add_revoked_certificate(x509.RevokedCertificateBuilder().serial_number(serial)
                                      .revocation_date(datetime(2026, 2, 1, tzinfo=UTC)).build())
    return b.sign(signer or c.ark_key, hashes.SHA384(), rsa_padding=PSS48)


def test_crls_revoke_the_ask_and_are_checked_against_the_ark() -> None:
    c = chain("Genoa")
    vcek = vek_cert(c, "vcek", ec_key("genoa"), product_name="Genoa", spl=GENOA_SPL, hwid=bytes(64))
    got = verify_chain(vcek, "vcek", [c.ask, c.ark], c.roots, NOW)
    fresh = make_crl(c, [12345], next_update=NOW + timedelta(days=7))
    stale = make_crl(c, [], next_update=NOW - timedelta(days=1))
    assert [n["current"] for n in check_crls(got, [fresh, stale], NOW)] == [True, False]
    with pytest.raises(UntrustedKeyError, match=r"ASK \(serial 65537\) was revoked"):
        check_crls(got, [make_crl(c, [65537], next_update=NOW - timedelta(days=1))], NOW)  # stale CRLs still revoke
    with pytest.raises(BadSignatureError, match="CRL signature"):
        check_crls(got, [make_crl(c, [], next_update=NOW, signer=c.ask_key)], NOW)
    other = make_crl(chain("Milan"), [65537], next_update=NOW)
    assert check_crls(got, [other], NOW) == []  # another ARK's CRL says nothing about this chain
    pem = b"".join(crl.public_bytes(serialization.Encoding.PEM) for crl in (fresh, stale))
    assert len(load_crls(pem)) == 2
    assert len(load_crls(fresh.public_bytes(serialization.Encoding.DER))) == 1


# -- loading ---------------------------------------------------------------------------------------


def test_loading_refuses_garbage_and_accepts_nul_terminated_der() -> None:
    with pytest.raises(MalformedError):
        load_certificates(b"not a certificate")
    with pytest.raises(MalformedError, match="unterminated"):
        load_certificates(b"-----BEGIN CERTIFICATE-----\nMIIB")
    with pytest.raises(MalformedError, match="more than"):
        load_certificates(TRUST.joinpath("ask_ark_milan.pem").read_bytes() * 9)
    assert load_certificates(VCEK_MILAN.read_bytes() + b"\x00")[0] == pem_certs(VCEK_MILAN)[0]
    with pytest.raises(MalformedError):
        load_crls(b"junk")


def test_trusted_roots_from_files(tmp_path: Path) -> None:
    c = chain("Turin")
    path = tmp_path / "ark.pem"
    path.write_bytes(c.pem(c.ark))
    roots = TrustedRoots.from_files([path])
    assert roots.pins[spki_sha256(c.ark.public_key())] == "Turin"
    assert len(roots.pins) == len(ARK_PINS) + 1
    with pytest.raises(ConfigError, match="cannot read"):
        TrustedRoots.from_files([tmp_path / "missing.pem"])
    (tmp_path / "junk.pem").write_bytes(b"junk")
    with pytest.raises(ConfigError, match=r"not an X\.509"):
        TrustedRoots.from_files([tmp_path / "junk.pem"])


# -- the offline folder ------------------------------------------------------------------------------


def kds_folder(tmp_path: Path) -> Path:
    """A cache laid out as KDS serves it (copied into tmp_path; never into the repo)."""
    root = tmp_path / "amd"
    for product, bundle in (("Milan", "ask_ark_milan.pem"), ("Genoa", "ask_ark_genoa.pem")):
        d = root / "vcek" / "v1" / product
        d.mkdir(parents=True)
        (d / "cert_chain").write_bytes((TRUST / bundle).read_bytes())
    (root / "vcek" / "v1" / "Milan" / "3ac3fe21.der").write_bytes(VCEK_MILAN.read_bytes())
    (root / "vlek" / "v1" / "Milan").mkdir(parents=True)
    (root / "vlek" / "v1" / "Milan" / "cert_chain").write_bytes((TRUST / "ask_ark_milan_vlek.pem").read_bytes())
    (root / "README.txt").write_bytes(b"not collateral")
    (root / "notes.pem").write_bytes(b"-----BEGIN CERTIFICATE-----\nbroken")
    c = chain("Genoa")
    (root / "crl").write_bytes(make_crl(c, [], next_update=NOW).public_bytes(serialization.Encoding.DER))
    return root


async def test_folder_store_indexes_amd_collateral_by_content(tmp_path: Path) -> None:
    store = FolderStore(kds_folder(tmp_path))
    vcek = pem_certs(VCEK_MILAN)[0]
    ext = vek_extensions(vcek)
    req = CollateralRequest("amd-vcek", ("Milan", ext.hwid.hex() if ext.hwid else "", "0200000000000544"))
    found = await store.get(req)
    assert found is not None and load_certificates(found.data) == [vcek] and found.source.endswith("3ac3fe21.der")
    vcek_chain = await store.get(amd.chain_request("Milan", "vcek"))
    assert vcek_chain is not None
    assert sorted(r[0] for r in map(cert_role, load_certificates(vcek_chain.data)) if r) == ["ark", "ask"]
    vlek_chain = await store.get(amd.chain_request("Milan", "vlek"))
    assert vlek_chain is not None
    assert sorted(r[0] for r in map(cert_role, load_certificates(vlek_chain.data)) if r) == ["ark", "asvk"]
    assert await store.get(amd.chain_request("Turin", "vcek")) is None
    crl = await store.get(amd.crl_request("Genoa"))
    assert crl is not None and len(load_crls(crl.data)) == 1
    assert await store.get(CollateralRequest("intel-tcb-info", ("00906ed50000",))) is None
    # the VCEK; the Milan and Genoa chains for VCEKs and, from their ARKs (and the ASVK), for
    # VLEKs; the CRL of the generated ARK-Genoa
    assert len(store) == len(store.requests) == 6


async def test_named_files_bypass_the_name_rules(tmp_path: Path) -> None:
    odd = tmp_path / "vcek.testcer"  # go-sev-guest's name: not a KDS name, so only read when named
    odd.write_bytes(VCEK_MILAN.read_bytes())
    assert len(FolderStore(tmp_path)) == 0
    store = FolderStore([odd, TRUST / "ask_ark_milan.pem"])
    assert len(store) == 3  # the VCEK, and the ASK+ARK bundle for both the VCEK and VLEK chain keys


def test_folder_store_bounds_and_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such collateral"):
        FolderStore(tmp_path / "missing")
    for i in range(3):
        (tmp_path / f"{i}.pem").write_bytes(b"x")
    with pytest.raises(ConfigError, match="more than 2 collateral files"):
        FolderStore(tmp_path, max_files=2)
    (tmp_path / "big.pem").write_bytes(b"x" * 100)
    with pytest.raises(ConfigError, match="larger than 50 bytes"):
        FolderStore(tmp_path, max_file_size=50)


def test_vendor_handlers_register_once_and_the_amd_one_is_built_in(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(folder, "_REGISTRY", dict(folder._REGISTRY))  # leave the real registry alone
    assert "amd" in {h.name for h in handlers()}

    class Other:
        name = "test-vendor"

        def wants(self, relpath: Any) -> bool:
            return str(relpath).endswith(".json")

        def index(self, files: Any) -> list[Collateral]:
            return [Collateral(CollateralRequest("test", (f.relpath.name,)), f.data, f.path) for f in files]

    other = Other()
    assert register_handler(other) is other
    assert register_handler(other) is other  # idempotent for the same handler
    with pytest.raises(UsageError, match="registered twice"):
        register_handler(Other())
    with pytest.raises(UsageError, match="needs name"):
        register_handler(object())  # type: ignore[arg-type]
    assert amd.index_amd([FolderFile("x", PurePosixPath("x.json"), b"{}")]) == []
    store = FolderStore([], vendor_handlers=[other])
    assert len(store) == 0
