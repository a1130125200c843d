"""Intel collateral for TDX quotes: PCK chains, CRLs, TCB info and QE identity, checked at ``now``.

What this module decides (pure: bytes and a time in, typed results or errors out):

* **Chains to the pinned root.** :func:`validate_chain` builds the path leaf → ... → root from
  the certificates given (a quote's PCK chain, a PCS issuer chain) plus the operator's roots,
  and accepts it only when the top is self-signed and its public key is pinned
  (:mod:`verifiers.local.roots_intel`) or is an operator-configured root; every certificate must
  be valid at ``now``, ECDSA P-256 / SHA-256, every issuer a CA; the leaf's common name must be
  the one expected (``Intel SGX PCK Certificate``, ``Intel SGX TCB Signing``).
* **CRLs.** The root CA CRL must be signed by the pinned root, the PCK CRL by the PCK chain's
  intermediate (Platform or Processor CA); each is used only inside ``thisUpdate ≤ now <
  nextUpdate`` (:func:`accept_crl`). A certificate on an accepted CRL is revoked
  (:class:`RevokedError`).
* **Caches.** Parsed certificates, chains (all but the time checks), CRLs (all but the window),
  collateral documents and verified signatures are cached by their exact bytes: pure functions of
  their keys, bounded, never caching a failure. The same PCK chain and PCS documents arrive with
  every quote of a platform; the per-quote signatures and every time check are done every time.
* **TCB info / QE identity.** Signature (ECDSA P-256, r‖s hex) over the *exact* bytes of the
  inner JSON object as published, by the ``Intel SGX TCB Signing`` certificate whose chain reaches
  the pinned root (and is not on the root CRL); then the document is parsed strictly and used
  only inside ``issueDate ≤ now < nextUpdate``.
* **TCB status.** :func:`evaluate_tcb` matches the platform (PCK SGX TCB components, PCESVN),
  the TDX module (``TEE_TCB_SVN``, MRSIGNERSEAM, SEAM attributes, ``tdxModuleIdentities``) and
  the QE (QE identity) and converges the three statuses the way Intel's QVL does (Revoked wins;
  out of date and configuration-needed combine into ``OutOfDateConfigurationNeeded``; ...).
  No matching level, or an identity that does not match, is status ``NotSupported``.

Collateral travels as one JSON document per quote, the form of dcap-qvl's
``QuoteCollateralV3`` (``sample/tdx_quote_collateral.json``): PEM issuer chains, hex DER CRLs,
the TCB info and QE identity as the exact signed JSON text with hex signatures. Any member may be
missing (partial collateral is reported as such). :func:`parse_collateral` reads it;
:func:`collateral_json` writes it. The request for it is ``intel-tdx-collateral (fmspc, ca)``
(:func:`collateral_request`): one document per platform family and PCK CA, as PCS serves TCB info
per FMSPC and the PCK CRL per CA; a fetching, caching store (Intel PCS, a PCCS) can answer the
same request later.

The Intel half of the offline collateral folder is here too (:class:`IntelHandler`, registered
with :mod:`.folder`). It reads, by content (file names vary: PCS responses saved from a browser,
go-tdx-guest's ``sample_tcbInfo_response``, ``pckcrl``, ``rootcrl.der``):

* dcap-qvl collateral documents, indexed by their TCB info's FMSPC (and their PCK CRL's CA, or
  both CAs when they have none), as they are;
* PCS TCB info responses ``{"tcbInfo": ..., "signature": ...}`` (TDX only) and TD QE identity
  responses ``{"enclaveIdentity": ...}``, the signed member kept byte for byte;
* certificate chains (PEM or DER): the TCB signing chain (the PCS ``TCB-Info-Issuer-Chain``
  header saved as a file) and the root, which completes a chain saved without it;
* CRLs (DER or PEM) of the Intel SGX Root CA and of the PCK Platform / Processor CA.

From the pieces it assembles one document per (FMSPC of a TCB info, CA). When a folder holds
several versions of a piece, the newest (issue date, CRL this-update) is used: the handler
indexes once, without a clock; the appraisal then decides whether it is current at ``now``.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import PurePosixPath
from types import MappingProxyType
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from cryptography.x509.oid import NameOID, SignatureAlgorithmOID

from federation.errors import (
    BadSignatureError,
    MalformedError,
    StaleError,
    UntrustedKeyError,
    VerificationError,
)

from ..evidence.tdx import load_certificates
from ..roots_intel import INTEL_ROOT_PINS, spki_sha256
from .base import Collateral, CollateralRequest
from .folder import FolderFile, register_handler

__all__ = [
    "COLLATERAL_KIND",
    "PCK_LEAF",
    "TCB_SIGNING",
    "TCB_STATUSES",
    "HANDLER",
    "CollateralError",
    "IntelCollateral",
    "IntelHandler",
    "PckInfo",
    "QeIdentity",
    "RevokedError",
    "TcbInfo",
    "TcbResult",
    "VerifiedChain",
    "Revocations",
    "accept_crl",
    "clear_caches",
    "collateral_json",
    "collateral_request",
    "converge",
    "evaluate_tcb",
    "index_intel",
    "load_crl",
    "parse_collateral",
    "parse_pck_info",
    "parse_qe_identity",
    "parse_tcb_info",
    "pcs_member",
    "validate_chain",
    "verify_qe_identity",
    "verify_tcb_info",
]

COLLATERAL_KIND = "intel-tdx-collateral"
"""Request kind: key ``(fmspc, ca)`` (lower-case hex FMSPC; ``platform`` or ``processor``)."""

PCK_LEAF = "Intel SGX PCK Certificate"
PCK_CAS = {"Intel SGX PCK Platform CA": "platform", "Intel SGX PCK Processor CA": "processor"}
TCB_SIGNING = "Intel SGX TCB Signing"

TCB_STATUSES = ("UpToDate", "SWHardeningNeeded", "ConfigurationNeeded", "ConfigurationAndSWHardeningNeeded",
                "OutOfDate", "OutOfDateConfigurationNeeded", "Revoked")
NOT_SUPPORTED = "NotSupported"
"""Our status when Intel's collateral lists no level the platform reaches, or an identity differs."""

MAX_CHAIN = 4
MAX_COLLATERAL = 1 << 20  # one collateral document
MAX_LEVELS = 256
MAX_ADVISORIES = 512
_SGX_EXT = x509.ObjectIdentifier("1.2.840.113741.1.13.1")
_DER = Encoding.DER


class CollateralError(MalformedError):
    """Collateral does not parse or breaks its format (the collateral, not the Evidence, is at fault)."""


class RevokedError(VerificationError):
    """A certificate is listed on an accepted CRL."""

    reason = "revoked"


# --- a small DER reader for the SGX PCK extension (bounded; definite lengths only) ------------

def _tlv(data: bytes, pos: int, end: int) -> tuple[int, bytes, int]:
    """(tag, content, next position) of the DER element at *pos*."""
    if pos + 2 > end:
        raise CollateralError("PCK extension: truncated DER")
    tag, first = data[pos], data[pos + 1]
    if tag & 0x1F == 0x1F:
        raise CollateralError("PCK extension: high tag numbers are not used here")
    pos += 2
    if first < 0x80:
        length = first
    else:
        n = first & 0x7F
        if not 1 <= n <= 3 or pos + n > end:
            raise CollateralError("PCK extension: bad DER length")
        length = int.from_bytes(data[pos:pos + n], "big")
        pos += n
    if pos + length > end:
        raise CollateralError("PCK extension: DER element runs past its container")
    return tag, data[pos:pos + length], pos + length


def _children(content: bytes) -> list[tuple[int, bytes]]:
    out: list[tuple[int, bytes]] = []
    pos = 0
    while pos < len(content):
        tag, value, pos = _tlv(content, pos, len(content))
        out.append((tag, value))
        if len(out) > 64:
            raise CollateralError("PCK extension: too many elements")
    return out


def _oid(content: bytes) -> str:
    if not content or len(content) > 32:
        raise CollateralError("PCK extension: bad OID")
    arcs = [content[0] // 40 if content[0] < 80 else 2, content[0] - 40 * min(content[0] // 40, 2)]
    value = 0
    for b in content[1:]:
        value = (value << 7) | (b & 0x7F)
        if not b & 0x80:
            arcs.append(value)
            value = 0
    if content[-1] & 0x80:
        raise CollateralError("PCK extension: truncated OID")
    return ".".join(map(str, arcs))


def _uint(content: bytes) -> int:
    if not content or len(content) > 9 or content[0] & 0x80:
        raise CollateralError("PCK extension: bad INTEGER")
    return int.from_bytes(content, "big")


_SEQ, _OID, _INT, _OCTETS, _ENUM = 0x30, 0x06, 0x02, 0x04, 0x0A
_SGX = "1.2.840.113741.1.13.1"


@dataclass(frozen=True, slots=True)
class PckInfo:
    """What the PCK certificate's SGX extension says about the platform."""

    ppid: bytes
    cpu_svn_components: tuple[int, ...]  # 16 SGX TCB component SVNs
    pce_svn: int
    cpu_svn: bytes
    pce_id: bytes
    fmspc: bytes
    sgx_type: int | None
    ca: str  # "platform" or "processor", from the issuer's name

    def to_json(self) -> dict[str, Any]:
        return {"fmspc": self.fmspc.hex(), "pce_id": self.pce_id.hex(), "pce_svn": self.pce_svn,
                "cpu_svn": self.cpu_svn.hex(), "sgx_tcb_components": list(self.cpu_svn_components), "ca": self.ca}


def _common_name(name: x509.Name) -> str | None:
    attrs = name.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(attrs[0].value) if len(attrs) == 1 else None


@lru_cache(maxsize=256)
def parse_pck_info(cert: x509.Certificate) -> PckInfo:
    """Read the SGX extension (1.2.840.113741.1.13.1) of a PCK certificate."""
    ca = PCK_CAS.get(_common_name(cert.issuer) or "")
    if ca is None:
        raise CollateralError(f"PCK certificate issuer {cert.issuer.rfc4514_string()!r:.120} is not a PCK CA")
    try:
        ext = cert.extensions.get_extension_for_oid(_SGX_EXT).value
    except x509.ExtensionNotFound as exc:
        raise CollateralError("PCK certificate has no SGX extension") from exc
    if not isinstance(ext, x509.UnrecognizedExtension):
        raise CollateralError("PCK certificate SGX extension has an unexpected form")
    tag, content, end = _tlv(ext.value, 0, len(ext.value))
    if tag != _SEQ or end != len(ext.value):
        raise CollateralError("PCK extension: not one SEQUENCE")
    fields: dict[str, tuple[int, bytes]] = {}
    for tag, item in _children(content):
        parts = _children(item) if tag == _SEQ else []
        if len(parts) != 2 or parts[0][0] != _OID:
            raise CollateralError("PCK extension: entries must be (OID, value)")
        fields[_oid(parts[0][1])] = parts[1]
    try:
        ppid, tcb, pce_id, fmspc = (fields[f"{_SGX}.{i}"] for i in (1, 2, 3, 4))
    except KeyError as exc:
        raise CollateralError(f"PCK extension: missing {exc.args[0]}") from exc
    if ppid[0] != _OCTETS or pce_id[0] != _OCTETS or fmspc[0] != _OCTETS or tcb[0] != _SEQ:
        raise CollateralError("PCK extension: PPID, PCE-ID and FMSPC must be OCTET STRINGs, TCB a SEQUENCE")
    if len(fmspc[1]) != 6 or len(pce_id[1]) != 2:
        raise CollateralError("PCK extension: FMSPC must be 6 bytes and PCE-ID 2")
    comps: dict[str, tuple[int, bytes]] = {}
    for tag, item in _children(tcb[1]):
        parts = _children(item) if tag == _SEQ else []
        if len(parts) != 2 or parts[0][0] != _OID:
            raise CollateralError("PCK extension: TCB entries must be (OID, value)")
        comps[_oid(parts[0][1])] = parts[1]
    try:
        svns = tuple(_uint(comps[f"{_SGX}.2.{i}"][1]) for i in range(1, 17))
        pce_svn = _uint(comps[f"{_SGX}.2.17"][1])
        cpu_svn = comps[f"{_SGX}.2.18"][1]
    except KeyError as exc:
        raise CollateralError(f"PCK extension: missing TCB component {exc.args[0]}") from exc
    if any(s > 255 for s in svns) or pce_svn > 0xFFFF or len(cpu_svn) != 16:
        raise CollateralError("PCK extension: TCB component out of range")
    sgx_type = _uint(fields[f"{_SGX}.5"][1]) if f"{_SGX}.5" in fields else None
    return PckInfo(ppid[1], svns, pce_svn, cpu_svn, pce_id[1], fmspc[1], sgx_type, ca)


# --- chains and CRLs ----------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class VerifiedChain:
    """A chain that validated at ``now``: leaf first, pinned (or configured) root last."""

    certs: tuple[x509.Certificate, ...]
    root_name: str

    @property
    def leaf(self) -> x509.Certificate:
        return self.certs[0]

    @property
    def leaf_key(self) -> ec.EllipticCurvePublicKey:
        key = self.certs[0].public_key()
        assert isinstance(key, ec.EllipticCurvePublicKey)  # validate_chain accepts P-256 keys only
        return key


def _when(dt: datetime) -> str:
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _label(cert: x509.Certificate) -> str:
    return _common_name(cert.subject) or cert.subject.rfc4514_string()[:80]


def _check_static(cert: x509.Certificate, *, ca: bool) -> None:
    if cert.signature_algorithm_oid != SignatureAlgorithmOID.ECDSA_WITH_SHA256:
        raise BadSignatureError(f"certificate {_label(cert)!r} is not signed with ECDSA/SHA-256")
    key = cert.public_key()
    if not isinstance(key, ec.EllipticCurvePublicKey) or key.curve.name != "secp256r1":
        raise BadSignatureError(f"certificate {_label(cert)!r} does not hold a P-256 key")
    if ca:
        try:
            bc = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
        except x509.ExtensionNotFound:
            bc = None
        if bc is None or not bc.ca:
            raise UntrustedKeyError(f"certificate {_label(cert)!r} issues certificates but is not a CA")


def _check_time(cert: x509.Certificate, now: datetime) -> None:
    nb, na = cert.not_valid_before_utc, cert.not_valid_after_utc
    if not nb <= now <= na:
        raise StaleError(f"certificate {_label(cert)!r} is not valid at {_when(now)} "
                         f"(valid {_when(nb)} to {_when(na)})")


# Verified-signature facts, keyed by (SHA-256 of the signed bytes, signature, signer's SPKI): a
# pure function of its key, so a hit is exactly as good as a verification. The same PCK chains,
# CRLs and PCS documents recur for every quote of a platform; bounded, cleared when full.
_VERIFIED: dict[tuple[bytes, bytes, bytes], bool] = {}
_MAX_VERIFIED = 4096


def _ecdsa_ok(key: ec.EllipticCurvePublicKey, data: bytes, der_signature: bytes) -> bool:
    spki = key.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    k = (hashlib.sha256(data).digest(), der_signature, spki)
    ok = _VERIFIED.get(k)
    if ok is None:
        try:
            key.verify(der_signature, data, ec.ECDSA(hashes.SHA256()))
            ok = True
        except InvalidSignature:
            ok = False
        if len(_VERIFIED) >= _MAX_VERIFIED:
            _VERIFIED.clear()
        _VERIFIED[k] = ok
    return ok


def _raw_ok(key: ec.EllipticCurvePublicKey, data: bytes, signature: bytes) -> bool:
    """An r‖s (P-256: 64 bytes) signature, as PCS publishes them."""
    if len(signature) != 64:
        return False
    r, s = int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")
    return _ecdsa_ok(key, data, encode_dss_signature(r, s))


def _signed_by(cert: x509.Certificate, issuer: x509.Certificate) -> None:
    key = issuer.public_key()
    if cert.issuer != issuer.subject or not isinstance(key, ec.EllipticCurvePublicKey) or not _ecdsa_ok(
            key, cert.tbs_certificate_bytes, cert.signature):
        raise BadSignatureError(f"certificate {_label(cert)!r} is not signed by {_label(issuer)!r}")


@lru_cache(maxsize=256)
def _chain(certs: tuple[x509.Certificate, ...], leaf_name: str, roots: tuple[x509.Certificate, ...],
           pins: frozenset[tuple[str, str]]) -> tuple[tuple[x509.Certificate, ...], str]:
    """The path and root name of a chain: everything but the time (a pure function, cached)."""
    if not certs:
        raise UntrustedKeyError("empty certificate chain")
    leaf = certs[0]
    if _common_name(leaf.subject) != leaf_name:
        raise UntrustedKeyError(f"chain leaf is {_label(leaf)!r}, expected {leaf_name!r}")
    pool = list(certs[1:])
    path = [leaf]
    while path[-1].issuer != path[-1].subject:
        if len(path) >= MAX_CHAIN:
            raise UntrustedKeyError(f"certificate chain longer than {MAX_CHAIN}")
        parent = next((c for c in pool if c.subject == path[-1].issuer), None)
        if parent is None:
            parent = next((c for c in roots if c.subject == path[-1].issuer), None)
        if parent is None:
            raise UntrustedKeyError(f"no issuer for {_label(path[-1])!r} in the chain or the configured roots")
        path.append(parent)
        if parent in pool:
            pool.remove(parent)
    if len(path) < 2:
        raise UntrustedKeyError(f"{_label(leaf)!r} is self-signed: a chain needs an issuer")
    root = path[-1]
    digest = spki_sha256(root)
    pinned = dict(pins)
    configured = any(r.subject == root.subject and spki_sha256(r) == digest for r in roots)
    if digest not in pinned and not configured:
        raise UntrustedKeyError(f"root {_label(root)!r} has a public key that matches no pinned or configured root "
                                f"(SPKI SHA-256 {digest})")
    for i, cert in enumerate(path):
        _check_static(cert, ca=i > 0)
        _signed_by(cert, path[i + 1] if i + 1 < len(path) else cert)
    return tuple(path), pinned.get(digest, _label(root))


def validate_chain(certs: Sequence[x509.Certificate], now: datetime, *, leaf_name: str,
                   roots: Sequence[x509.Certificate] = (), pins: Mapping[str, str] = INTEL_ROOT_PINS) -> VerifiedChain:
    """Validate *certs* (leaf first) to a pinned or operator-configured root at *now*.

    Raises :class:`UntrustedKeyError` (no path to a trusted root, a root key matching no pin),
    :class:`BadSignatureError`, then :class:`StaleError` (a certificate not valid at *now*). The
    checks that do not depend on the time are cached by the exact certificates.
    """
    path, name = _chain(tuple(certs), leaf_name, tuple(roots), frozenset(pins.items()))
    for cert in path:
        _check_time(cert, now)
    return VerifiedChain(path, name)


def load_crl(data: bytes) -> x509.CertificateRevocationList:
    """A CRL from DER or PEM bytes."""
    try:
        crl = x509.load_pem_x509_crl(data.strip()) if data.lstrip().startswith(b"-----BEGIN") \
            else x509.load_der_x509_crl(data)
        _ = (crl.issuer, crl.last_update_utc, crl.next_update_utc, crl.signature_algorithm_oid,
             [r.serial_number for r in crl])  # parsed lazily otherwise
    except (ValueError, TypeError, x509.InvalidVersion, x509.DuplicateExtension,
            x509.UnsupportedGeneralNameType) as exc:  # found by fuzzing: InvalidVersion
        raise CollateralError(f"CRL does not parse: {exc}") from exc
    return crl


@dataclass(frozen=True, slots=True)
class Revocations:
    """A CRL whose signature verified for its issuer; :meth:`current_at` checks its window."""

    issuer: x509.Name
    issuer_label: str
    serials: frozenset[int]
    this_update: datetime
    next_update: datetime | None

    def current_at(self, now: datetime) -> None:
        last, nxt = self.this_update, self.next_update
        if nxt is None or not last <= now < nxt:
            raise StaleError(f"CRL of {self.issuer_label!r} is not current at {_when(now)} "
                             f"(this update {_when(last)}, next update {_when(nxt) if nxt else 'none'})")

    def check(self, cert: x509.Certificate) -> None:
        """Raise :class:`RevokedError` when *cert* is listed."""
        if cert.serial_number in self.serials and cert.issuer == self.issuer:
            raise RevokedError(f"certificate {_label(cert)!r} (serial {cert.serial_number:x}) is revoked")


@lru_cache(maxsize=64)
def _revocations(data: bytes, issuer: x509.Certificate) -> Revocations:
    crl = load_crl(data)
    if crl.issuer != issuer.subject:
        raise UntrustedKeyError(f"CRL issuer {crl.issuer.rfc4514_string()!r:.100} is not {_label(issuer)!r}")
    key = issuer.public_key()
    if (crl.signature_algorithm_oid != SignatureAlgorithmOID.ECDSA_WITH_SHA256
            or not isinstance(key, ec.EllipticCurvePublicKey)
            or not _ecdsa_ok(key, crl.tbs_certlist_bytes, crl.signature)):
        raise BadSignatureError(f"CRL of {_label(issuer)!r} has a bad signature")
    return Revocations(crl.issuer, _label(issuer), frozenset(r.serial_number for r in crl), crl.last_update_utc,
                       crl.next_update_utc)


def accept_crl(data: bytes, issuer: x509.Certificate, now: datetime) -> Revocations:
    """The CRL in *data* (DER or PEM), if it is *issuer*'s, its signature verifies and
    ``thisUpdate ≤ now < nextUpdate``; raises a typed error otherwise."""
    revocations = _revocations(data, issuer)
    revocations.current_at(now)
    return revocations


def clear_caches() -> None:
    """Forget verified signatures, chains and parsed collateral (benchmarks measure cold appraisals)."""
    _VERIFIED.clear()
    for fn in (load_certificates, _chain, _revocations, parse_collateral, parse_tcb_info, parse_qe_identity,
               parse_pck_info):
        fn.cache_clear()


# --- TCB info and QE identity -------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class TcbLevel:
    sgx_components: tuple[int, ...]
    pce_svn: int
    tdx_components: tuple[int, ...]
    tcb_date: str
    status: str
    advisory_ids: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class IsvLevel:
    """A TCB level of a TDX module identity or of a QE identity (by ISVSVN)."""

    isv_svn: int
    tcb_date: str
    status: str
    advisory_ids: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ModuleIdentity:
    id: str
    mr_signer: bytes
    attributes: bytes
    attributes_mask: bytes
    levels: tuple[IsvLevel, ...] = ()


@dataclass(frozen=True, slots=True)
class TcbInfo:
    id: str
    version: int
    issue_date: datetime
    next_update: datetime
    fmspc: bytes
    pce_id: bytes
    evaluation_number: int
    module: ModuleIdentity | None
    module_identities: tuple[ModuleIdentity, ...]
    levels: tuple[TcbLevel, ...]  # in Intel QVL's order (highest first)

    def current_at(self, now: datetime) -> None:
        _window("TCB info", self.issue_date, self.next_update, now)


@dataclass(frozen=True, slots=True)
class QeIdentity:
    id: str
    version: int
    issue_date: datetime
    next_update: datetime
    evaluation_number: int
    miscselect: int
    miscselect_mask: int
    attributes: bytes
    attributes_mask: bytes
    mr_signer: bytes
    isv_prod_id: int
    levels: tuple[IsvLevel, ...]  # highest ISVSVN first

    def current_at(self, now: datetime) -> None:
        _window("QE identity", self.issue_date, self.next_update, now)


def _window(what: str, issued: datetime, nxt: datetime, now: datetime) -> None:
    if not issued <= now < nxt:
        raise StaleError(f"{what} is not current at {_when(now)} (issued {_when(issued)}, next update {_when(nxt)})")


class _Doc:
    """Strict typed reads from a parsed JSON object, errors naming the document and member."""

    def __init__(self, what: str, obj: Any) -> None:
        if not isinstance(obj, dict):
            raise CollateralError(f"{what}: not a JSON object")
        self.what, self.obj = what, obj

    def get(self, key: str, kind: type | tuple[type, ...], *, optional: bool = False) -> Any:
        if key not in self.obj:
            if optional:
                return None
            raise CollateralError(f"{self.what}: missing {key!r}")
        value = self.obj[key]
        if not isinstance(value, kind) or isinstance(value, bool):
            raise CollateralError(f"{self.what}: {key!r} has the wrong type")
        return value

    def uint(self, key: str, limit: int) -> int:
        value: int = self.get(key, int)
        if not 0 <= value <= limit:
            raise CollateralError(f"{self.what}: {key!r} out of range")
        return value

    def hexbytes(self, key: str, size: int | None = None) -> bytes:
        text: str = self.get(key, str)
        try:
            value = bytes.fromhex(text)
        except ValueError as exc:
            raise CollateralError(f"{self.what}: {key!r} is not hex") from exc
        if size is not None and len(value) != size:
            raise CollateralError(f"{self.what}: {key!r} must be {size} bytes")
        return value

    def time(self, key: str) -> datetime:
        text: str = self.get(key, str)
        if not re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z", text):
            raise CollateralError(f"{self.what}: {key!r} is not an RFC 3339 UTC time")
        try:
            return datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError as exc:  # found by fuzzing: well-formed but impossible ("minute must be in 0..59")
            raise CollateralError(f"{self.what}: {key!r} is not a valid time") from exc

    def status(self) -> str:
        value: str = self.get("tcbStatus", str)
        if value not in TCB_STATUSES:
            raise CollateralError(f"{self.what}: unknown tcbStatus {value!r:.40}")
        return value

    def advisories(self) -> tuple[str, ...]:
        ids = self.get("advisoryIDs", list, optional=True) or []
        if len(ids) > MAX_ADVISORIES or not all(isinstance(i, str) and len(i) <= 64 for i in ids):
            raise CollateralError(f"{self.what}: advisoryIDs must be a list of short strings")
        return tuple(ids)

    def items(self, key: str, limit: int = MAX_LEVELS) -> list[_Doc]:
        items: list[Any] = self.get(key, list)
        if len(items) > limit:
            raise CollateralError(f"{self.what}: more than {limit} {key}")
        return [_Doc(f"{self.what}.{key}[{i}]", x) for i, x in enumerate(items)]


def _components(doc: _Doc, key: str) -> tuple[int, ...]:
    comps = tuple(c.uint("svn", 255) for c in doc.items(key, 16))
    if len(comps) != 16:
        raise CollateralError(f"{doc.what}: {key} must list 16 components")
    return comps


def _isv_levels(doc: _Doc) -> tuple[IsvLevel, ...]:
    levels = []
    for lv in doc.items("tcbLevels"):
        tcb = _Doc(f"{lv.what}.tcb", lv.get("tcb", dict))
        levels.append(IsvLevel(tcb.uint("isvsvn", 0xFFFF), lv.get("tcbDate", str), lv.status(), lv.advisories()))
    return tuple(sorted(levels, key=lambda lv: lv.isv_svn, reverse=True))


def _module(doc: _Doc, *, with_levels: bool) -> ModuleIdentity:
    return ModuleIdentity(
        doc.get("id", str) if with_levels else "",
        doc.hexbytes("mrsigner", 48), doc.hexbytes("attributes", 8), doc.hexbytes("attributesMask", 8),
        _isv_levels(doc) if with_levels else ())


def _load_json(what: str, raw: bytes) -> Any:
    if len(raw) > MAX_COLLATERAL:
        raise CollateralError(f"{what}: larger than {MAX_COLLATERAL} bytes")
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise CollateralError(f"{what}: not JSON: {exc}") from exc


@lru_cache(maxsize=256)
def parse_tcb_info(raw: bytes) -> TcbInfo:
    """Parse the signed ``tcbInfo`` object (TDX, version 3)."""
    d = _Doc("TCB info", _load_json("TCB info", raw))
    ident, version = d.get("id", str), d.uint("version", 0xFFFF)
    if ident != "TDX" or version < 3:
        raise CollateralError(f"TCB info: id {ident!r:.20} version {version} is not TDX TCB info (id TDX, version 3)")
    base = d.get("tdxModule", dict, optional=True)
    levels = []
    for lv in d.items("tcbLevels"):
        tcb = _Doc(f"{lv.what}.tcb", lv.get("tcb", dict))
        levels.append(TcbLevel(_components(tcb, "sgxtcbcomponents"), tcb.uint("pcesvn", 0xFFFF),
                               _components(tcb, "tdxtcbcomponents"), lv.get("tcbDate", str), lv.status(),
                               lv.advisories()))
    levels.sort(key=lambda lv: (lv.sgx_components, lv.pce_svn, lv.tdx_components), reverse=True)
    idents = (tuple(_module(m, with_levels=True) for m in d.items("tdxModuleIdentities", 64))
              if "tdxModuleIdentities" in d.obj else ())
    return TcbInfo(ident, version, d.time("issueDate"), d.time("nextUpdate"), d.hexbytes("fmspc", 6),
                   d.hexbytes("pceId", 2), d.uint("tcbEvaluationDataNumber", 1 << 32),
                   _module(_Doc("TCB info.tdxModule", base), with_levels=False) if base is not None else None,
                   idents, tuple(levels))


@lru_cache(maxsize=256)
def parse_qe_identity(raw: bytes) -> QeIdentity:
    """Parse the signed ``enclaveIdentity`` object of the TD quoting enclave (id TD_QE)."""
    d = _Doc("QE identity", _load_json("QE identity", raw))
    ident, version = d.get("id", str), d.uint("version", 0xFFFF)
    if ident != "TD_QE" or version not in (2, 3):
        raise CollateralError(f"QE identity: id {ident!r:.20} version {version} is not the TD QE identity")
    return QeIdentity(ident, version, d.time("issueDate"), d.time("nextUpdate"),
                      d.uint("tcbEvaluationDataNumber", 1 << 32),
                      int.from_bytes(d.hexbytes("miscselect", 4), "little"),
                      int.from_bytes(d.hexbytes("miscselectMask", 4), "little"),
                      d.hexbytes("attributes", 16), d.hexbytes("attributesMask", 16), d.hexbytes("mrsigner", 32),
                      d.uint("isvprodid", 0xFFFF), _isv_levels(d))


def _verify_signed(what: str, raw: bytes, signature: bytes, chain: Sequence[x509.Certificate], now: datetime,
                   roots: Sequence[x509.Certificate], root_crl: Revocations | None) -> VerifiedChain:
    verified = validate_chain(chain, now, leaf_name=TCB_SIGNING, roots=roots)
    if root_crl is not None:
        for cert in verified.certs[:-1]:
            root_crl.check(cert)
    if not _raw_ok(verified.leaf_key, raw, signature):
        raise BadSignatureError(f"{what}: signature by {TCB_SIGNING!r} does not verify")
    return verified


def verify_tcb_info(raw: bytes, signature: bytes, chain: Sequence[x509.Certificate], now: datetime, *,
                    roots: Sequence[x509.Certificate] = (),
                    root_crl: Revocations | None = None) -> TcbInfo:
    """Signature over the exact bytes, signing chain to the pinned root, then parse and window at *now*."""
    _verify_signed("TCB info", raw, signature, chain, now, roots, root_crl)
    info = parse_tcb_info(raw)
    info.current_at(now)
    return info


def verify_qe_identity(raw: bytes, signature: bytes, chain: Sequence[x509.Certificate], now: datetime, *,
                       roots: Sequence[x509.Certificate] = (),
                       root_crl: Revocations | None = None) -> QeIdentity:
    """As :func:`verify_tcb_info`, for the QE identity."""
    _verify_signed("QE identity", raw, signature, chain, now, roots, root_crl)
    ident = parse_qe_identity(raw)
    ident.current_at(now)
    return ident


# --- TCB status ---------------------------------------------------------------------------------

_FLAGS: Mapping[str, frozenset[str]] = {
    "UpToDate": frozenset(),
    "SWHardeningNeeded": frozenset({"sw"}),
    "ConfigurationNeeded": frozenset({"config"}),
    "ConfigurationAndSWHardeningNeeded": frozenset({"config", "sw"}),
    "OutOfDate": frozenset({"ood"}),
    "OutOfDateConfigurationNeeded": frozenset({"ood", "config"}),
    "Revoked": frozenset({"revoked"}),
}


def converge(*statuses: str) -> str:
    """Combine statuses as Intel's QVL does: revoked wins; out of date absorbs SW hardening and
    keeps configuration-needed (``OutOfDateConfigurationNeeded``); otherwise the flags add up."""
    flags = frozenset().union(*(_FLAGS[s] for s in statuses))
    if "revoked" in flags:
        return "Revoked"
    if "ood" in flags:
        return "OutOfDateConfigurationNeeded" if "config" in flags else "OutOfDate"
    if "config" in flags:
        return "ConfigurationAndSWHardeningNeeded" if "sw" in flags else "ConfigurationNeeded"
    return "SWHardeningNeeded" if "sw" in flags else "UpToDate"


@dataclass(frozen=True, slots=True)
class TcbResult:
    """The TCB status of a quote's platform, TDX module and QE, and the advisories that apply."""

    status: str  # one of TCB_STATUSES, or NOT_SUPPORTED
    advisory_ids: tuple[str, ...] = ()
    platform: str | None = None
    module: str | None = None
    qe: str | None = None
    tcb_date: str | None = None
    problem: str | None = None  # why NOT_SUPPORTED
    evaluation_number: int | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"tcb_status": self.status, "advisory_ids": list(self.advisory_ids)}
        names = {"platform": "platform_status", "module": "module_status", "qe": "qe_status", "tcb_date": "tcb_date",
                 "problem": "tcb_problem", "evaluation_number": "evaluation_number"}
        for name, key in names.items():
            value = getattr(self, name)
            if value is not None:
                out[key] = value
        return out


def _masked_equal(value: bytes, expected: bytes, mask: bytes) -> bool:
    return len(value) == len(expected) == len(mask) and all(
        (v & m) == (e & m) for v, e, m in zip(value, expected, mask, strict=True))


def _module_status(info: TcbInfo, tee_tcb_svn: bytes, mr_signer_seam: bytes, seam_attributes: bytes
                   ) -> tuple[IsvLevel | None, str | None]:
    """(matched module level or None, problem) for the TDX module, as Intel's QVL checks it."""
    expected = info.module
    version = tee_tcb_svn[1]
    if version > 0 and info.module_identities:
        wanted = f"TDX_{version:02X}"
        expected = next((m for m in info.module_identities if m.id.upper() == wanted), None)
        if expected is None:
            return None, f"no TDX module identity {wanted} in the TCB info"
    if expected is None:
        return None, "the TCB info has no tdxModule"
    if mr_signer_seam != expected.mr_signer:
        return None, "MRSIGNERSEAM is not the TDX module signer the TCB info names"
    if not _masked_equal(seam_attributes, expected.attributes, expected.attributes_mask) or any(
            a & ~m for a, m in zip(seam_attributes, expected.attributes_mask, strict=True)):
        return None, "SEAM attributes do not match the TCB info"
    if not expected.levels:
        return None, None
    level = next((lv for lv in expected.levels if tee_tcb_svn[0] >= lv.isv_svn), None)
    if level is None:
        return None, f"TDX module ISVSVN {tee_tcb_svn[0]} is below every level of {expected.id}"
    return level, None


def _qe_status(ident: QeIdentity, qe: Any) -> tuple[IsvLevel | None, str | None]:
    if qe.mr_signer != ident.mr_signer:
        return None, "QE MRSIGNER is not the one the QE identity names"
    if qe.isv_prod_id != ident.isv_prod_id:
        return None, f"QE ISVPRODID {qe.isv_prod_id} is not {ident.isv_prod_id}"
    if (qe.miscselect & ident.miscselect_mask) != (ident.miscselect & ident.miscselect_mask):
        return None, "QE MISCSELECT does not match the QE identity"
    if not _masked_equal(qe.attributes, ident.attributes, ident.attributes_mask):
        return None, "QE attributes do not match the QE identity"
    level = next((lv for lv in ident.levels if qe.isv_svn >= lv.isv_svn), None)
    if level is None:
        return None, f"QE ISVSVN {qe.isv_svn} is below every level of the QE identity"
    return level, None


def _merge_advisories(*groups: Iterable[str]) -> tuple[str, ...]:
    out: list[str] = []
    for group in groups:
        out.extend(a for a in group if a not in out)
    return tuple(out)


def evaluate_tcb(info: TcbInfo, pck: PckInfo, body: Any, qe_identity: QeIdentity | None = None,
                 qe_report: Any = None) -> TcbResult:
    """TCB status of a quote (its body and QE report) on the platform *pck* describes.

    *info* must already be verified and current, and its FMSPC / PCE-ID the platform's (the
    caller checks; a mismatch means the collateral is for another platform, not a status).
    Platform level: the first level, in Intel's order, that the PCK's 16 SGX component SVNs and
    PCESVN reach and that TEE_TCB_SVN reaches component by component, skipping the first two
    (the module's own SVN and version) when TEE_TCB_SVN[1] > 0, as Intel's QVL and go-tdx-guest do.
    """
    svn: bytes = body.tee_tcb_svn
    start = 2 if svn[1] > 0 else 0
    platform = next((
        lv for lv in info.levels
        if all(p >= r for p, r in zip(pck.cpu_svn_components, lv.sgx_components, strict=True))
        and pck.pce_svn >= lv.pce_svn
        and all(svn[i] >= lv.tdx_components[i] for i in range(start, 16))), None)
    if platform is None:
        return TcbResult(NOT_SUPPORTED, problem="no matching TCB level: the platform is below every level of the "
                         "TCB info", evaluation_number=info.evaluation_number)
    module, problem = _module_status(info, svn, body.mr_signer_seam, body.seam_attributes)
    qe: IsvLevel | None = None
    if problem is None and qe_identity is not None and qe_report is not None:
        qe, problem = _qe_status(qe_identity, qe_report)
    if problem is not None:
        return TcbResult(NOT_SUPPORTED, platform=platform.status, tcb_date=platform.tcb_date, problem=problem,
                         evaluation_number=info.evaluation_number)
    parts = [platform.status] + [x.status for x in (module, qe) if x is not None]
    return TcbResult(converge(*parts),
                     _merge_advisories(platform.advisory_ids, *(x.advisory_ids for x in (module, qe) if x)),
                     platform.status, module.status if module else None, qe.status if qe else None,
                     platform.tcb_date, None, info.evaluation_number)


# --- the collateral document (dcap-qvl QuoteCollateralV3 form) --------------------------------

@dataclass(frozen=True, slots=True)
class IntelCollateral:
    """Collateral for one quote; any member may be missing. Texts are kept exactly as signed."""

    pck_crl_issuer_chain: tuple[x509.Certificate, ...] | None = None
    root_ca_crl: bytes | None = None  # DER
    pck_crl: bytes | None = None  # DER
    tcb_info_issuer_chain: tuple[x509.Certificate, ...] | None = None
    tcb_info: bytes | None = None
    tcb_info_signature: bytes | None = None
    qe_identity_issuer_chain: tuple[x509.Certificate, ...] | None = None
    qe_identity: bytes | None = None
    qe_identity_signature: bytes | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)


_CHAINS = ("pck_crl_issuer_chain", "tcb_info_issuer_chain", "qe_identity_issuer_chain")
_HEX = ("root_ca_crl", "pck_crl", "tcb_info_signature", "qe_identity_signature")
_TEXTS = ("tcb_info", "qe_identity")


def _pem_chain(what: str, text: str) -> tuple[x509.Certificate, ...]:
    try:
        certs = load_certificates(text.encode("ascii").rstrip(b"\x00"))
    except (ValueError, UnicodeEncodeError) as exc:
        raise CollateralError(f"collateral: {what} is not a PEM certificate chain") from exc
    if not 1 <= len(certs) <= MAX_CHAIN:
        raise CollateralError(f"collateral: {what} must hold 1..{MAX_CHAIN} certificates")
    return certs


@lru_cache(maxsize=256)
def parse_collateral(data: bytes) -> IntelCollateral:
    """Read the dcap-qvl collateral JSON (members optional; unknown members kept in ``extra``)."""
    obj = _load_json("collateral", data)
    if not isinstance(obj, dict):
        raise CollateralError("collateral: not a JSON object")
    values: dict[str, Any] = {}
    for key, value in obj.items():
        if value is None:
            continue
        if key in _CHAINS + _HEX + _TEXTS and not isinstance(value, str):
            raise CollateralError(f"collateral: {key!r} must be a string")
        if key in _CHAINS:
            values[key] = _pem_chain(key, value)
        elif key in _HEX:
            try:
                values[key] = bytes.fromhex(value)
            except ValueError as exc:
                raise CollateralError(f"collateral: {key!r} is not hex") from exc
        elif key in _TEXTS:
            values[key] = value.encode("utf-8")
    extra = MappingProxyType({k: v for k, v in obj.items() if k not in _CHAINS + _HEX + _TEXTS})
    return IntelCollateral(**values, extra=extra)


def collateral_json(c: IntelCollateral) -> bytes:
    """Write *c* in the dcap-qvl form (the inverse of :func:`parse_collateral`)."""
    out: dict[str, Any] = dict(c.extra)
    for key in _CHAINS:
        chain = getattr(c, key)
        if chain is not None:
            out[key] = "".join(cert.public_bytes(Encoding.PEM).decode("ascii") for cert in chain)
    for key in _HEX:
        value = getattr(c, key)
        if value is not None:
            out[key] = value.hex()
    for key in _TEXTS:
        value = getattr(c, key)
        if value is not None:
            out[key] = value.decode("utf-8")
    return json.dumps(out, indent=1).encode("utf-8")


def pcs_member(body: bytes, name: str) -> tuple[bytes, bytes]:
    """From a PCS response body ``{"<name>": {...}, "signature": "<hex>"}``: the exact bytes of
    the signed member and the signature. The member's text is located by scanning the top-level
    object with the JSON decoder, so it is returned byte for byte as served (never re-serialized).
    """
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CollateralError("PCS response is not UTF-8") from exc
    decoder = json.JSONDecoder()
    spans: dict[str, tuple[int, int, Any]] = {}
    ws = re.compile(r"[ \t\n\r]*")

    def skip(i: int) -> int:
        m = ws.match(text, i)
        return m.end() if m else i

    try:
        i = skip(0)
        if text[i:i + 1] != "{":
            raise CollateralError("PCS response is not a JSON object")
        i = skip(i + 1)
        while text[i:i + 1] != "}":
            key, i = decoder.raw_decode(text, i)
            i = skip(i)
            if not isinstance(key, str) or text[i:i + 1] != ":":
                raise CollateralError("PCS response: bad member")
            start = skip(i + 1)
            value, end = decoder.raw_decode(text, start)
            spans[key] = (start, end, value)
            i = skip(end)
            if text[i:i + 1] == ",":
                i = skip(i + 1)
            elif text[i:i + 1] != "}":
                raise CollateralError("PCS response: expected ',' or '}'")
        if text[skip(i + 1):]:
            raise CollateralError("PCS response: data after the object")
    except (ValueError, IndexError) as exc:
        raise CollateralError(f"PCS response is not JSON: {exc}") from exc
    if name not in spans or "signature" not in spans or not isinstance(spans["signature"][2], str):
        raise CollateralError(f"PCS response has no {name!r} with a 'signature'")
    start, end, _ = spans[name]
    try:
        sig = bytes.fromhex(spans["signature"][2])
    except ValueError as exc:
        raise CollateralError("PCS response: signature is not hex") from exc
    return text[start:end].encode("utf-8"), sig


def collateral_request(fmspc: bytes, ca: str) -> tuple[str, tuple[str, str]]:
    """(kind, key) of the collateral request for a platform: FMSPC as lower-case hex, PCK CA."""
    return COLLATERAL_KIND, (fmspc.hex(), ca)



# --- the offline folder: PCS files and dcap-qvl documents -> one document per (FMSPC, CA) ------

INTEL_FILE_SUFFIXES = frozenset({".json", ".pem", ".der", ".crl", ".crt", ".cer"})
_NAME_HINTS = ("tcb", "identity", "crl", "intel", "sgx", "tdx", "collateral", "pck")


def _certs_in(data: bytes) -> tuple[x509.Certificate, ...]:
    try:
        pem = b"-----BEGIN CERTIFICATE-----" in data
        return load_certificates(data.rstrip(b"\x00") if pem else data, pem=pem)
    except ValueError:
        return ()


def _crl_in(data: bytes) -> x509.CertificateRevocationList | None:
    try:
        return load_crl(data)
    except CollateralError:
        return None


@dataclass
class _Pieces:
    bundles: list[tuple[FolderFile, IntelCollateral]] = field(default_factory=list)
    tcb_infos: dict[bytes, tuple[datetime, bytes, bytes, str]] = field(default_factory=dict)  # by FMSPC
    qe: tuple[datetime, bytes, bytes, str] | None = None
    signing_chain: tuple[tuple[x509.Certificate, ...], str] | None = None
    roots: list[x509.Certificate] = field(default_factory=list)
    crls: dict[str, tuple[datetime, bytes, str]] = field(default_factory=dict)  # "root"/"platform"/...
    ca_chains: dict[str, tuple[tuple[x509.Certificate, ...], str]] = field(default_factory=dict)


def _json_piece(f: FolderFile, obj: dict[str, Any], out: _Pieces) -> None:
    if "tcbInfo" in obj:
        raw, sig = pcs_member(f.data, "tcbInfo")
        info = parse_tcb_info(raw)
        newest = out.tcb_infos.get(info.fmspc)
        if newest is None or info.issue_date > newest[0]:
            out.tcb_infos[info.fmspc] = (info.issue_date, raw, sig, f.path)
    elif "enclaveIdentity" in obj:
        raw, sig = pcs_member(f.data, "enclaveIdentity")
        ident = parse_qe_identity(raw)
        if out.qe is None or ident.issue_date > out.qe[0]:
            out.qe = (ident.issue_date, raw, sig, f.path)
    elif any(k in obj for k in _CHAINS + _HEX + _TEXTS):
        out.bundles.append((f, parse_collateral(f.data)))


def _sort_file(f: FolderFile, out: _Pieces) -> None:
    data = f.data.strip()
    if data.startswith(b"{"):
        obj = _load_json(f.path, f.data)
        if isinstance(obj, dict):
            _json_piece(f, obj, out)
        return
    crl = _crl_in(f.data) if b"CERTIFICATE-----" not in data else None
    if crl is not None:
        kind = {"Intel SGX Root CA": "root", **PCK_CAS}.get(_common_name(crl.issuer) or "")
        if kind is not None and (kind not in out.crls or crl.last_update_utc > out.crls[kind][0]):
            out.crls[kind] = (crl.last_update_utc, crl.public_bytes(_DER), f.path)
        return
    certs = _certs_in(f.data)
    if not certs:
        return
    first = _common_name(certs[0].subject)
    if first == TCB_SIGNING:
        out.signing_chain = (certs, f.path)
    elif first in PCK_CAS:
        out.ca_chains[PCK_CAS[first]] = (certs, f.path)
    elif first == "Intel SGX Root CA" and len(certs) == 1:
        out.roots.append(certs[0])


def _completed(chain: tuple[x509.Certificate, ...], roots: Sequence[x509.Certificate]) -> tuple[x509.Certificate, ...]:
    """*chain* with a root appended when it stops below one (a PCS header saved without its root)."""
    last = chain[-1]
    if last.issuer == last.subject:
        return chain
    root = next((r for r in roots if r.subject == last.issuer), None)
    return (*chain, root) if root is not None else chain


def _bundle_key(doc: IntelCollateral) -> list[tuple[bytes, str]]:
    if doc.tcb_info is None:
        return []
    try:
        fmspc = parse_tcb_info(doc.tcb_info).fmspc
    except CollateralError:
        return []
    cas = ["platform", "processor"]
    if doc.pck_crl is not None:
        crl = _crl_in(doc.pck_crl)
        ca = PCK_CAS.get(_common_name(crl.issuer) or "") if crl is not None else None
        cas = [ca] if ca is not None else cas
    return [(fmspc, ca) for ca in cas]


def index_intel(files: Sequence[FolderFile]) -> list[Collateral]:
    """The Intel collateral documents the files hold (unusable files are skipped, not errors)."""
    pieces = _Pieces()
    for f in files:
        try:
            _sort_file(f, pieces)
        except (CollateralError, MalformedError):
            continue
    out: list[Collateral] = []
    for f, doc in pieces.bundles:
        for fmspc, ca in _bundle_key(doc):
            out.append(Collateral(CollateralRequest(*collateral_request(fmspc, ca)), f.data, f.path))
    signing = (_completed(pieces.signing_chain[0], pieces.roots), pieces.signing_chain[1]) \
        if pieces.signing_chain else None
    for fmspc, (_, raw, sig, path) in sorted(pieces.tcb_infos.items()):
        for ca in ("platform", "processor"):
            sources = [path]
            values: dict[str, Any] = {"tcb_info": raw, "tcb_info_signature": sig}
            if signing is not None:
                values["tcb_info_issuer_chain"] = values["qe_identity_issuer_chain"] = signing[0]
                sources.append(signing[1])
            if pieces.qe is not None:
                values["qe_identity"], values["qe_identity_signature"] = pieces.qe[1], pieces.qe[2]
                sources.append(pieces.qe[3])
            for kind, name in (("root", "root_ca_crl"), (ca, "pck_crl")):
                if kind in pieces.crls:
                    values[name] = pieces.crls[kind][1]
                    sources.append(pieces.crls[kind][2])
            if ca in pieces.ca_chains:
                values["pck_crl_issuer_chain"] = _completed(pieces.ca_chains[ca][0], pieces.roots)
            doc = IntelCollateral(**values)
            out.append(Collateral(CollateralRequest(*collateral_request(fmspc, ca)), collateral_json(doc),
                                  "; ".join(dict.fromkeys(sources))))
    return out


class IntelHandler:
    """The Intel vendor handler of :class:`~.folder.FolderStore`."""

    name = "intel"

    def wants(self, relpath: PurePosixPath) -> bool:
        name = relpath.name.lower()
        return relpath.suffix.lower() in INTEL_FILE_SUFFIXES or any(h in name for h in _NAME_HINTS)

    def index(self, files: Sequence[FolderFile]) -> Iterable[Collateral]:
        return index_intel(files)


HANDLER = register_handler(IntelHandler())
