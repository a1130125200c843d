"""The simulated attesters of ``ratsfed demo``: a confidential VM on an SEV-SNP-shaped chip and a
PSA device, each producing fresh Evidence bound to a session nonce.

Nothing here is AMD's or Arm's: the demo generates, for one run,

* a **demo hardware vendor** shaped like AMD's key hierarchy: a self-signed root (``ARK-Genoa``,
  RSA, certificates signed with RSASSA-PSS / SHA-384 / salt 48 as AMD signs them), an
  intermediate (``SEV-Genoa``) and a chip key (``SEV-VCEK``, ECDSA P-384) whose certificate
  carries the KDS extensions (productName, the TCB security patch levels, hwID = the chip's
  CHIP_ID). The names are AMD's because the SEV-SNP scheme classifies certificates by them; the
  organisation says "demo". The root is *not* one of the pinned AMD roots: a verifier trusts it
  only when its operator configures it (``amd_roots``), which the demo's configs do and say so.
* **SEV-SNP attestation reports** (version 5, 1184 bytes, ECDSA P-384 over bytes 0x000..0x29F,
  r and s little-endian) whose REPORT_DATA commits to the session nonce by the scheme's default
  ``raw`` rule (the nonce zero-padded to 64 bytes), carried as the Linux configfs-tsm report in
  Veraison's CBOR encoding (``outblob`` = report, ``auxblob`` = the GHCB certificate table with
  the VCEK, ASK and ARK), i.e. what a guest reads from ``/sys/kernel/config/tsm/report``;
* **PSA attestation tokens** (PSA profile 2, COSE_Sign1) signed by a device key.

This is product code (the demo needs it on a fresh install); the test suite has its own forge.
"""

from __future__ import annotations

import hashlib
import os
import struct
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta

import cbor2
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.x509.oid import NameOID, ObjectIdentifier

from verifiers.local.evidence.psa import PROFILE_P2, PsaClaims, SwComponent, encode_psa
from verifiers.local.evidence.sevsnp import MEDIA_TYPE_TSM_CBOR, REPORT_SIZE, SIGNED_SIZE, encode_cert_table

from .evidence import Evidence
from .keys import SigningKey

__all__ = [
    "GENOA_CPUID",
    "GENOA_TCB",
    "MEDIA_TYPE_PSA",
    "POLICY_DEBUG",
    "POLICY_DEFAULT",
    "PsaDevice",
    "SnpChip",
    "SnpGuest",
    "SnpVendor",
    "firmware_digest",
    "report_data_for",
]

MEDIA_TYPE_PSA = "application/psa-attestation-token"
VENDOR_ORG = "rats-federation demo hardware vendor (not AMD)"
PRODUCT = "Genoa"
GENOA_CPUID = bytes([0x19, 0x11, 0x01])  # family 0x19, model 0x11, stepping 1
GENOA_TCB = bytes([10, 0, 0, 0, 0, 0, 23, 84])  # Genoa layout: boot loader 10, TEE 0, SNP 23, microcode 84
_GENOA_SPL = {"3.1": GENOA_TCB[0], "3.2": GENOA_TCB[1], "3.3": GENOA_TCB[6], "3.4": 0, "3.5": 0, "3.6": 0,
              "3.7": 0, "3.8": GENOA_TCB[7]}  # KDS OIDs 1.3.6.1.4.1.3704.1.3.x: blSPL, teeSPL, snpSPL, spl4-7, ucodeSPL
POLICY_DEFAULT = 1 << 17 | 1 << 16  # bit 17 must be one; bit 16: SMT allowed; ABI 0.0; no debug, no migration agent
POLICY_DEBUG = 1 << 19
_KDS = "1.3.6.1.4.1.3704.1."
_PSS = padding.PSS(mgf=padding.MGF1(hashes.SHA384()), salt_length=48)


def report_data_for(nonce: bytes, rule: str = "raw") -> bytes:
    """REPORT_DATA committing to *nonce* by one of the SEV-SNP scheme's rules (docs/sevsnp.md)."""
    if rule == "raw":
        if len(nonce) > 64:
            raise ValueError("a nonce of more than 64 bytes cannot be carried raw")
        return nonce.ljust(64, b"\x00")
    if rule in ("sha256", "sha384", "sha512"):
        return hashlib.new(rule, nonce).digest().ljust(64, b"\x00")
    raise ValueError(f"unknown REPORT_DATA rule {rule!r}")


def _name(cn: str) -> x509.Name:
    return x509.Name([
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, VENDOR_ORG),
        x509.NameAttribute(NameOID.COMMON_NAME, cn),
    ])


def _der_int(v: int) -> bytes:
    body = v.to_bytes(max(1, (v.bit_length() + 8) // 8), "big")
    return b"\x02" + bytes([len(body)]) + body


def _der_ia5(s: str) -> bytes:
    return b"\x16" + bytes([len(s)]) + s.encode("ascii")


def _kds(suffix: str, value: bytes) -> x509.UnrecognizedExtension:
    return x509.UnrecognizedExtension(ObjectIdentifier(_KDS + suffix), value)


def _ca(cn: str, key: rsa.RSAPrivateKey, issuer_cn: str, issuer_key: rsa.RSAPrivateKey, now: datetime,
        years: int) -> x509.Certificate:
    usage = x509.KeyUsage(digital_signature=False, content_commitment=False, key_encipherment=False,
                          data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
                          encipher_only=False, decipher_only=False)
    builder = (x509.CertificateBuilder().subject_name(_name(cn)).issuer_name(_name(issuer_cn))
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - timedelta(days=1)).not_valid_after(now + timedelta(days=365 * years))
               .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
               .add_extension(usage, critical=True))
    return builder.sign(issuer_key, hashes.SHA384(), rsa_padding=_PSS)


def _pem(*certs: x509.Certificate) -> bytes:
    return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certs)


@dataclass(frozen=True)
class SnpVendor:
    """The demo hardware vendor's root (ARK-shaped) and intermediate (ASK-shaped), RSA-PSS."""

    ark_key: rsa.RSAPrivateKey
    ark: x509.Certificate
    ask_key: rsa.RSAPrivateKey
    ask: x509.Certificate

    @classmethod
    def generate(cls, now: datetime, *, bits: int = 4096) -> SnpVendor:
        """A root and an intermediate for this run (RSA-*bits*; AMD's are RSA-4096)."""
        with ThreadPoolExecutor(max_workers=2) as pool:  # RSA key generation releases the GIL: both at once
            ark_job, ask_job = (pool.submit(rsa.generate_private_key, 65537, bits) for _ in range(2))
            ark_key, ask_key = ark_job.result(), ask_job.result()
        ark = _ca(f"ARK-{PRODUCT}", ark_key, f"ARK-{PRODUCT}", ark_key, now, 25)
        ask = _ca(f"SEV-{PRODUCT}", ask_key, f"ARK-{PRODUCT}", ark_key, now, 25)
        return cls(ark_key, ark, ask_key, ask)

    @property
    def root_pem(self) -> bytes:
        """The root certificate, as an operator would configure it (``amd_roots``)."""
        return _pem(self.ark)


@dataclass(frozen=True)
class SnpChip:
    """One chip of the demo vendor: its CHIP_ID, its firmware TCB and its VCEK-shaped key."""

    vendor: SnpVendor
    chip_id: bytes
    tcb: bytes
    vcek_key: ec.EllipticCurvePrivateKey
    vcek: x509.Certificate

    @classmethod
    def generate(cls, vendor: SnpVendor, now: datetime, *, chip_id: bytes | None = None,
                 tcb: bytes = GENOA_TCB) -> SnpChip:
        chip = chip_id if chip_id is not None else os.urandom(64)
        key = ec.generate_private_key(ec.SECP384R1())
        spl = dict(_GENOA_SPL)
        spl.update({"3.1": tcb[0], "3.2": tcb[1], "3.3": tcb[6], "3.8": tcb[7]})
        builder = (x509.CertificateBuilder().subject_name(_name("SEV-VCEK")).issuer_name(vendor.ask.subject)
                   .public_key(key.public_key()).serial_number(x509.random_serial_number())
                   .not_valid_before(now - timedelta(days=1)).not_valid_after(now + timedelta(days=365 * 7))
                   .add_extension(_kds("1", _der_int(0)), critical=False)  # structVersion
                   .add_extension(_kds("2", _der_ia5(PRODUCT)), critical=False))  # productName
        for suffix, value in spl.items():
            builder = builder.add_extension(_kds(suffix, _der_int(value)), critical=False)
        builder = builder.add_extension(_kds("4", chip), critical=False)  # hwID, raw as in AMD's VCEKs
        vcek = builder.sign(vendor.ask_key, hashes.SHA384(), rsa_padding=_PSS)
        return cls(vendor, chip, tcb, key, vcek)

    def report(self, guest: SnpGuest, report_data: bytes, *, version: int = 5) -> bytes:
        """A signed ATTESTATION_REPORT of *guest* on this chip (layout: docs/sevsnp.md)."""
        if len(report_data) != 64:
            raise ValueError("REPORT_DATA is 64 bytes")
        r = bytearray(REPORT_SIZE)
        struct.pack_into("<IIQ", r, 0x000, version, guest.svn, guest.policy)
        struct.pack_into("<II", r, 0x030, guest.vmpl, 1)  # VMPL, SIGNATURE_ALGO 1 = ECDSA P-384 / SHA-384
        r[0x038:0x040] = self.tcb  # CURRENT_TCB
        struct.pack_into("<QI", r, 0x040, 0x25, 0)  # PLATFORM_INFO SMT_EN, ECC_EN, ALIAS_CHECK_COMPLETE; KEY_INFO VCEK
        r[0x050:0x090] = report_data
        r[0x090:0x0C0] = guest.measurement
        r[0x140:0x160] = os.urandom(32)  # REPORT_ID
        r[0x160:0x180] = b"\xff" * 32  # REPORT_ID_MA: no migration agent
        r[0x180:0x188] = self.tcb  # REPORTED_TCB: what the VCEK was derived for
        if version >= 3:
            r[0x188:0x18B] = GENOA_CPUID
        r[0x1A0:0x1E0] = self.chip_id
        r[0x1E0:0x1E8] = self.tcb  # COMMITTED_TCB
        r[0x1E8:0x1EB] = r[0x1EC:0x1EF] = bytes([40, 55, 1])  # CURRENT/COMMITTED build, minor, major: 1.55.40
        r[0x1F0:0x1F8] = self.tcb  # LAUNCH_TCB
        # version 5: LAUNCH_MIT_VECTOR and CURRENT_MIT_VECTOR at 0x1F8 and 0x200 stay 0
        der = self.vcek_key.sign(bytes(r[:SIGNED_SIZE]), ec.ECDSA(hashes.SHA384()))
        sig_r, sig_s = decode_dss_signature(der)
        r[0x2A0:0x2E8] = sig_r.to_bytes(72, "little")
        r[0x2E8:0x330] = sig_s.to_bytes(72, "little")
        return bytes(r)

    def evidence(self, guest: SnpGuest, nonce: bytes, *, rule: str = "raw", version: int = 5) -> Evidence:
        """The configfs-tsm report (Veraison's CBOR form) for *nonce*, with the certificate table."""
        table = encode_cert_table({"vcek": _pem(self.vcek), "ask": _pem(self.vendor.ask),
                                   "ark": _pem(self.vendor.ark)})
        report = self.report(guest, report_data_for(nonce, rule), version=version)
        body = cbor2.dumps({"provider": "sev_guest", "outblob": report, "auxblob": table})
        return Evidence(MEDIA_TYPE_TSM_CBOR, body)


@dataclass(frozen=True)
class SnpGuest:
    """What the guest owner launched: the launch MEASUREMENT (SHA-384) and the guest POLICY."""

    measurement: bytes
    policy: int = POLICY_DEFAULT
    svn: int = 1
    vmpl: int = 0

    @classmethod
    def of_image(cls, image: str, *, policy: int = POLICY_DEFAULT) -> SnpGuest:
        """A guest whose launch digest stands for *image* (firmware + kernel + initrd + command line)."""
        return cls(hashlib.sha384(f"{image} launch digest".encode()).digest(), policy)


@dataclass(frozen=True)
class PsaDevice:
    """A PSA device: its attestation key, implementation and instance ids, and firmware."""

    key: SigningKey
    implementation_id: bytes
    instance_id: bytes
    signer_id: bytes

    def token(self, nonce: bytes, firmware: tuple[tuple[str, str], ...]) -> Evidence:
        """A PSA token (profile 2) bound to *nonce*, measuring each (name, version) of *firmware*."""
        claims = PsaClaims(
            profile=PROFILE_P2, client_id=1, security_lifecycle=0x3000,
            implementation_id=self.implementation_id, instance_id=self.instance_id, nonce=nonce,
            software_components=tuple(SwComponent(firmware_digest(n, v), self.signer_id, n, v) for n, v in firmware),
            boot_seed=bytes(32), verification_service="https://verifier.example",
        )
        return Evidence(MEDIA_TYPE_PSA, encode_psa(claims, self.key))


def firmware_digest(name: str, version: str) -> bytes:
    """The SHA-256 a device measures for firmware component *name* at *version* (the demo's images)."""
    return hashlib.sha256(f"{name} {version} firmware image".encode()).digest()
