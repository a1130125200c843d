"""AMD SEV-SNP certificate chains: ARK -> ASK -> VCEK and ARK -> ASVK -> VLEK, to a pinned root.

Theory of operation. Certificates arrive untrusted from three places: the Evidence (a GHCB
certificate table, a CMW collection), the collateral store, and the operator. They are pooled,
each classified by its subject (``ARK-<product>``, ``SEV-<product>`` for an ASK,
``SEV-VLEK-<product>`` for an ASVK, ``SEV-VCEK``/``SEV-VLEK`` for the report signing key), and
:func:`verify_chain` builds the one path the report's key needs and checks, at the appraisal's
``now`` (google/go-sev-guest verify/verify.go):

* every certificate is X.509 v3, signed with RSASSA-PSS / SHA-384 / MGF1-SHA-384 / salt 48 (the
  AlgorithmIdentifier inside the signed part must equal the outer one and be exactly AMD's), and
  valid at ``now``;
* VCEK/VLEK: an ECDSA P-384 key, signed by an ASK (VCEK) or ASVK (VLEK) whose subject is its issuer;
* ASK/ASVK: RSA, CA, keyCertSign, signed by the ARK;
* ARK: self-signed, CA, keyCertSign, and its public key's SHA-256 is pinned
  (:mod:`verifiers.local.roots_amd`) or belongs to a root the operator configured
  (:class:`TrustedRoots`). An ARK that matches neither is never trusted, whatever carries it;
* the product line agrees along the path: ARK-X, SEV-X / SEV-VLEK-X, the pin's product, and the
  VCEK/VLEK ``productName`` extension (``Milan-B0`` or ``Genoa``: the part before ``-``).

The VCEK/VLEK extensions (OID arc 1.3.6.1.4.1.3704.1, go-sev-guest kds/kds.go) are read by
:func:`vek_extensions`: ``productName``, the SPL values (bl, tee, snp, ucode, spl4..7 and, on
Turin, fmc) that compose the TCB_VERSION the key was derived for (:meth:`VekExtensions.tcb`, per
product layout), ``hwID`` (VCEK: 64 bytes, Turin 8; raw or as a DER OCTET STRING) and ``cspID``
(VLEK). A CRL, when one is supplied, must be signed by the same ARK and must not list the
ASK/ASVK (:func:`check_crls`).

The AMD half of the offline collateral folder is here too (:class:`AmdHandler`, registered with
:mod:`.folder`): its file-name rules (``*.pem``, ``*.der``, ``*.cer``, ``*.crt``, ``*.crl`` and the
KDS endpoint names ``cert_chain`` and ``crl``) decide which files of a folder it reads; what a
file *is* comes from its contents, so the index keys are the ones a scheme computes from a
report: ``amd-vcek (product, hwid hex, reported-TCB hex)``, ``amd-vlek (product, TCB hex)``,
``amd-chain (product, "vcek"|"vlek")`` and ``amd-crl (product,)``.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from pathlib import Path, PurePosixPath
from typing import Any, Literal

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.utils import CryptographyDeprecationWarning
from cryptography.x509.oid import NameOID

from federation.errors import (
    AlgorithmError,
    BadSignatureError,
    ConfigError,
    MalformedError,
    StaleError,
    UntrustedKeyError,
)

from ..evidence.sevsnp import PRODUCTS, TcbVersion, tcb_layout
from ..roots_amd import PINS_BY_SHA256, spki_sha256
from .base import Collateral, CollateralRequest
from .folder import FolderFile, register_handler

__all__ = [
    "AMD_FILE_NAMES",
    "AMD_FILE_SUFFIXES",
    "AmdHandler",
    "KeyKind",
    "TrustedRoots",
    "VekExtensions",
    "VerifiedChain",
    "cert_role",
    "chain_request",
    "clear_caches",
    "check_crls",
    "crl_request",
    "hwid_key",
    "index_amd",
    "load_certificates",
    "load_crls",
    "vcek_request",
    "verify_chain",
    "vek_extensions",
    "vlek_request",
]

KeyKind = Literal["vcek", "vlek"]
Role = Literal["ark", "ask", "asvk", "vcek", "vlek"]

MAX_CERTS_PER_BLOB = 16
MIN_RSA_BITS = 2048  # AMD's ARK/ASK/ASVK are RSA-4096; smaller keys are refused below this
_KDS = "1.3.6.1.4.1.3704.1."
_SPL = {"3.1": "bl", "3.2": "tee", "3.3": "snp", "3.4": "spl4", "3.5": "spl5", "3.6": "spl6",
        "3.7": "spl7", "3.8": "ucode", "3.9": "fmc"}
_PSS = padding.PSS(mgf=padding.MGF1(hashes.SHA384()), salt_length=48)
# RSASSA-PSS AlgorithmIdentifier, SHA-384, MGF1-SHA-384, salt 48: as AMD writes it (trailerField 1
# explicit) and in minimal DER (trailerField omitted, as it is the default).
_PSS_PARAMS = ("a00f300d06096086480165030402020500"
               "a11c301a06092a864886f70d010108300d06096086480165030402020500"
               "a203020130")
_AMD_ALGIDS = frozenset({
    bytes.fromhex("304606092a864886f70d01010a3039" + _PSS_PARAMS + "a303020101"),
    bytes.fromhex("304106092a864886f70d01010a3034" + _PSS_PARAMS),
})
_NAMES = {"vcek": "VCEK", "vlek": "VLEK", "ask": "ASK", "asvk": "ASVK", "ark": "ARK"}
_ISSUER_ROLE: Mapping[str, Role] = {"vcek": "ask", "vlek": "asvk"}
_CHAIN_TARGETS: Mapping[str, tuple[KeyKind, ...]] = {"ark": ("vcek", "vlek"), "ask": ("vcek",), "asvk": ("vlek",)}


# -- loading ------------------------------------------------------------------------------------


def _pem_blocks(data: bytes, label: bytes) -> list[bytes]:
    begin, end = b"-----BEGIN " + label + b"-----", b"-----END " + label + b"-----"
    out: list[bytes] = []
    pos = 0
    while (start := data.find(begin, pos)) >= 0:
        stop = data.find(end, start)
        if stop < 0:
            raise MalformedError(f"amd: unterminated PEM {label.decode()}")
        out.append(data[start:stop + len(end)])
        pos = stop + len(end)
        if len(out) > MAX_CERTS_PER_BLOB:
            raise MalformedError(f"amd: more than {MAX_CERTS_PER_BLOB} PEM blocks")
    return out


def load_certificates(blob: bytes) -> list[x509.Certificate]:
    """Certificates from a PEM bundle (any order, trailing NULs and text ignored) or one DER
    certificate; :class:`~federation.errors.MalformedError` if it holds none that parse.

    Small blobs are memoised (the same ASK/ARK bundle arrives with every report of a product):
    parsing is pure, and the certificate objects are immutable.
    """
    if len(blob) <= _CACHEABLE_BLOB:
        return list(_load_certificates_cached(blob))
    return list(_load_certificates(blob))


_CACHEABLE_BLOB = 1 << 14
# What cryptography raises on hostile DER (a bad name type surfaces as TypeError, an unknown key
# algorithm as UnsupportedAlgorithm).
_PARSE_ERRORS = (ValueError, TypeError, x509.InvalidVersion, x509.DuplicateExtension, x509.UnsupportedGeneralNameType,
                 UnsupportedAlgorithm)
_CACHE_SIZE = 1024


@lru_cache(maxsize=_CACHE_SIZE)
def _load_certificates_cached(blob: bytes) -> tuple[x509.Certificate, ...]:
    return _load_certificates(blob)


def _load_certificates(blob: bytes) -> tuple[x509.Certificate, ...]:
    # cryptography's warnings (AMD's VCEK serial number 0; odd attribute lengths) are not ours to show.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            blocks = _pem_blocks(blob, b"CERTIFICATE")
            if blocks:
                return tuple(_eager(x509.load_pem_x509_certificate(block)) for block in blocks)
            return (_eager(x509.load_der_x509_certificate(blob.rstrip(b"\x00"))),)
        except _PARSE_ERRORS as exc:
            raise MalformedError(f"amd: not an X.509 certificate: {exc}") from exc


def _eager(cert: x509.Certificate) -> x509.Certificate:
    """Parse every part now: cryptography decodes names, extensions and keys lazily, and a
    malformed part would otherwise surface as a ValueError deep inside chain building."""
    _ = (cert.subject, cert.issuer, cert.extensions, cert.public_key(), cert.not_valid_before_utc,
         cert.not_valid_after_utc, cert.signature, cert.tbs_certificate_bytes, cert.serial_number)
    _signature_algids(_der(cert))  # the outer structure, strictly (see there)
    return cert


def load_crls(blob: bytes) -> list[x509.CertificateRevocationList]:
    """CRLs from PEM (one or more ``X509 CRL`` blocks) or one DER CRL, parsed eagerly."""
    try:
        blocks = _pem_blocks(blob, b"X509 CRL")
        crls = [x509.load_pem_x509_crl(b) for b in blocks] if blocks else [x509.load_der_x509_crl(blob)]
        for crl in crls:
            _ = (crl.issuer, crl.last_update_utc, crl.next_update_utc, crl.signature, crl.tbs_certlist_bytes,
                 [r.serial_number for r in crl], crl.extensions)
            _signature_algids(crl.public_bytes(serialization.Encoding.DER))
        return crls
    except _PARSE_ERRORS as exc:
        raise MalformedError(f"amd: not an X.509 CRL: {exc}") from exc


@lru_cache(maxsize=_CACHE_SIZE)
def _names(cert: x509.Certificate) -> tuple[bytes, bytes]:
    """(subject, issuer) as DER: compared as bytes (cryptography builds Name objects per access)."""
    return cert.subject.public_bytes(), cert.issuer.public_bytes()


@lru_cache(maxsize=_CACHE_SIZE)
def _key_sha256(cert: x509.Certificate) -> str:
    return spki_sha256(cert.public_key())


@lru_cache(maxsize=_CACHE_SIZE)
def _cert_json(cert: x509.Certificate) -> dict[str, str]:
    return {"subject": cert.subject.rfc4514_string(), "serial": str(_serial(cert)),
            "not_before": cert.not_valid_before_utc.isoformat(), "not_after": cert.not_valid_after_utc.isoformat()}


def _serial(cert: x509.Certificate) -> int:
    with warnings.catch_warnings():  # VCEK serial 0, see _load_der
        warnings.simplefilter("ignore", CryptographyDeprecationWarning)
        return cert.serial_number


def _der(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.DER)


def _cn(name: x509.Name) -> str | None:
    attrs = name.get_attributes_for_oid(NameOID.COMMON_NAME)
    value = attrs[0].value if len(attrs) == 1 else None
    return value if isinstance(value, str) else None


_ROLE_PATTERNS: tuple[tuple[re.Pattern[str], Role], ...] = (
    (re.compile(r"ARK-([A-Za-z0-9]+)"), "ark"),
    (re.compile(r"SEV-VLEK-([A-Za-z0-9]+)"), "asvk"),
    (re.compile(r"SEV-(VCEK|VLEK)"), "vcek"),  # refined below
    (re.compile(r"SEV-([A-Za-z0-9]+)"), "ask"),
)


@lru_cache(maxsize=_CACHE_SIZE)
def cert_role(cert: x509.Certificate) -> tuple[Role, str | None] | None:
    """(role, product line named by the subject) of an AMD certificate; None for any other."""
    cn = _cn(cert.subject)
    if cn is None:
        return None
    for pattern, role in _ROLE_PATTERNS:
        m = pattern.fullmatch(cn)
        if m is None:
            continue
        if role == "vcek":
            return ("vcek" if m.group(1) == "VCEK" else "vlek"), None
        return role, m.group(1)
    return None


# -- the VCEK/VLEK extensions -------------------------------------------------------------------


def _tlv(data: bytes, pos: int, end: int) -> tuple[int, int, int]:
    """(tag, content start, content end) of the DER item at *pos*; bounds-checked."""
    if pos + 2 > end:
        raise MalformedError("amd: truncated DER")
    tag, first = data[pos], data[pos + 1]
    pos += 2
    if first & 0x80:
        n = first & 0x7F
        if not 1 <= n <= 4 or pos + n > end:
            raise MalformedError("amd: bad DER length")
        length = int.from_bytes(data[pos:pos + n], "big")
        pos += n
    else:
        length = first
    if pos + length > end:
        raise MalformedError("amd: DER length exceeds input")
    return tag, pos, pos + length


def _der_value(raw: bytes, tag: int, what: str) -> bytes:
    t, start, stop = _tlv(raw, 0, len(raw))
    if t != tag or stop != len(raw):
        raise MalformedError(f"amd: {what} is not a DER item of tag 0x{tag:02x}")
    return raw[start:stop]


def _der_uint8(raw: bytes, what: str) -> int:
    content = _der_value(raw, 0x02, what)
    value = int.from_bytes(content, "big", signed=True) if content else -1
    if not 0 <= value <= 255:
        raise MalformedError(f"amd: {what} must be an INTEGER 0..255")
    return value


def _der_ia5(raw: bytes, what: str) -> str:
    try:
        return _der_value(raw, 0x16, what).decode("ascii")
    except UnicodeDecodeError as exc:
        raise MalformedError(f"amd: {what} is not ASCII") from exc


def _hwid(raw: bytes) -> bytes:
    """The hwID extension: raw bytes in every real VCEK (64, or 8 on Turin), or an OCTET STRING."""
    if len(raw) in (8, 64):
        return raw
    content = _der_value(raw, 0x04, "hwID")
    if len(content) not in (8, 64):
        raise MalformedError("amd: hwID must be 8 or 64 bytes")
    return content


@dataclass(frozen=True, slots=True)
class VekExtensions:
    """What a VCEK/VLEK certificate says about the key: product, SPLs, hwID or cspID."""

    product_name: str  # "Milan-B0", "Genoa", "Turin-B0", ...
    spl: Mapping[str, int]
    hwid: bytes | None = None  # VCEK
    csp_id: str | None = None  # VLEK
    struct_version: int | None = None

    @property
    def product_line(self) -> str:
        return self.product_name.split("-", 1)[0]

    def tcb(self, product: str) -> TcbVersion:
        """The TCB_VERSION the key was derived for, in *product*'s byte layout."""
        s = self.spl
        need = ("fmc", "bl", "tee", "snp", "ucode") if tcb_layout(product) == "turin" else ("bl", "tee", "snp", "ucode")
        missing = [n for n in need if n not in s]
        if missing:
            raise MalformedError(f"amd: VCEK/VLEK lacks the SPL extension(s) {', '.join(missing)}")
        if tcb_layout(product) == "turin":
            raw = bytes([s["fmc"], s["bl"], s["tee"], s["snp"], 0, 0, 0, s["ucode"]])
        else:
            raw = bytes([s["bl"], s["tee"], s.get("spl4", 0), s.get("spl5", 0), s.get("spl6", 0),
                         s.get("spl7", 0), s["snp"], s["ucode"]])
        return TcbVersion(raw)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"product_name": self.product_name, "spl": dict(self.spl)}
        if self.hwid is not None:
            out["hwid"] = self.hwid.hex()
        if self.csp_id is not None:
            out["csp_id"] = self.csp_id
        return out


@lru_cache(maxsize=_CACHE_SIZE)
def vek_extensions(cert: x509.Certificate) -> VekExtensions:
    """The KDS extensions of a VCEK or VLEK certificate (MalformedError when they are unusable)."""
    product: str | None = None
    spl: dict[str, int] = {}
    hwid: bytes | None = None
    csp: str | None = None
    version: int | None = None
    for ext in cert.extensions:
        oid = ext.oid.dotted_string
        if not oid.startswith(_KDS) or not isinstance(ext.value, x509.UnrecognizedExtension):
            continue
        suffix, raw = oid[len(_KDS):], ext.value.value
        if suffix == "1":
            version = _der_uint8(raw, "structVersion")
        elif suffix == "2":
            product = _der_ia5(raw, "productName")
        elif suffix in _SPL:
            spl[_SPL[suffix]] = _der_uint8(raw, f"SPL {suffix}")
        elif suffix == "4":
            hwid = _hwid(raw)
        elif suffix == "5":
            csp = _der_ia5(raw, "cspID")
    if not product:
        raise MalformedError("amd: VCEK/VLEK lacks the productName extension")
    if hwid is not None and csp is not None:
        raise MalformedError("amd: a certificate cannot carry both hwID and cspID")
    return VekExtensions(product, spl, hwid, csp, version)


# -- trust --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TrustedRoots:
    """The root keys a chain may end in: SPKI SHA-256 -> product line (None: any product), plus
    operator-configured root certificates (their keys are trusted; they also serve as ARKs when
    the Evidence and the collateral carry none)."""

    pins: Mapping[str, str | None]
    certificates: tuple[x509.Certificate, ...] = ()
    operator: frozenset[str] = field(default_factory=frozenset)  # digests added by the operator

    @classmethod
    def default(cls) -> TrustedRoots:
        """The AMD ARKs pinned in :mod:`verifiers.local.roots_amd`."""
        return cls({digest: root.product for digest, root in PINS_BY_SHA256.items()})

    def with_operator_roots(self, certificates: Iterable[x509.Certificate]) -> TrustedRoots:
        """These root certificates trusted as well (e.g. a new product line before a release)."""
        pins, certs, operator = dict(self.pins), list(self.certificates), set(self.operator)
        for cert in certificates:
            digest = spki_sha256(cert.public_key())
            role = cert_role(cert)
            pins.setdefault(digest, role[1] if role is not None and role[0] == "ark" else None)
            operator.add(digest)
            certs.append(cert)
        return TrustedRoots(pins, tuple(certs), frozenset(operator))

    @classmethod
    def from_files(cls, paths: Iterable[str | Path]) -> TrustedRoots:
        """The pinned roots plus the root certificates in *paths* (PEM or DER; operator input)."""
        certs: list[x509.Certificate] = []
        for path in map(Path, paths):
            try:
                certs.extend(load_certificates(path.read_bytes()))
            except OSError as exc:
                raise ConfigError(f"cannot read AMD root: {exc.strerror}", file=str(path)) from exc
            except MalformedError as exc:
                raise ConfigError(exc.detail, file=str(path)) from exc
        return cls.default().with_operator_roots(certs)


@dataclass(frozen=True, slots=True)
class VerifiedChain:
    """A path from a VCEK/VLEK to a trusted ARK, every link checked at ``now``."""

    kind: KeyKind
    vek: x509.Certificate
    extensions: VekExtensions
    intermediate: x509.Certificate
    root: x509.Certificate
    root_sha256: str
    root_source: Literal["pinned", "operator"]
    product: str  # product line (from the ARK/ASK names)

    @property
    def public_key(self) -> ec.EllipticCurvePublicKey:
        key = self.vek.public_key()
        assert isinstance(key, ec.EllipticCurvePublicKey)  # checked by verify_chain
        return key

    def to_json(self) -> dict[str, Any]:
        def cert(c: x509.Certificate) -> dict[str, Any]:
            return dict(_cert_json(c))

        return {"signer": self.kind, "product": self.product, self.kind: cert(self.vek),
                "intermediate": cert(self.intermediate), "ark": cert(self.root),
                "ark_spki_sha256": self.root_sha256, "ark_trusted_by": self.root_source,
                "extensions": self.extensions.to_json()}


def _signature_algids(der: bytes) -> tuple[bytes, bytes]:
    """(AlgorithmIdentifier inside the signed part, outer signatureAlgorithm) of a Certificate or
    CertificateList: the first SEQUENCE inside the TBS part, and the SEQUENCE after it.

    Also holds the outer structure to DER: exactly {TBS, algorithm, BIT STRING} filling the
    input, and a signature BIT STRING with no unused bits (cryptography returns the same bytes
    whatever the unused-bits count says, so a flipped count would otherwise go unnoticed).
    """
    _, start, end = _tlv(der, 0, len(der))
    _, tbs_start, tbs_end = _tlv(der, start, end)
    _, _, alg_end = _tlv(der, tbs_end, end)
    tag, sig_start, sig_end = _tlv(der, alg_end, end)
    if end != len(der) or sig_end != end or tag != 0x03 or sig_start == sig_end or der[sig_start] != 0:
        raise MalformedError("amd: the signature is not a whole-byte BIT STRING closing the structure")
    outer = der[tbs_end:alg_end]
    pos = tbs_start
    while pos < tbs_end:
        t, _, c_end = _tlv(der, pos, tbs_end)
        if t == 0x30:
            return der[pos:c_end], outer
        pos = c_end
    raise MalformedError("amd: no signature algorithm in the signed part")


def _check_algorithm(der: bytes, what: str) -> None:
    inner, outer = _signature_algids(der)
    if inner != outer:
        raise MalformedError(f"amd: {what} signature algorithm differs inside and outside the signed part")
    if outer not in _AMD_ALGIDS:
        raise AlgorithmError(f"amd: {what} is not signed with RSASSA-PSS SHA-384, MGF1-SHA-384, salt 48")


@lru_cache(maxsize=_CACHE_SIZE)
def _check_cert_algorithm(cert: x509.Certificate, what: str) -> None:
    _check_algorithm(_der(cert), what)  # a failure raises, and is not cached


def _check_validity(cert: x509.Certificate, what: str, now: datetime) -> None:
    nb, na = cert.not_valid_before_utc, cert.not_valid_after_utc
    if not nb <= now <= na:
        raise StaleError(f"amd: {what} certificate is not valid at {now.isoformat()} "
                         f"(valid {nb.isoformat()} to {na.isoformat()})")


def _check_common(cert: x509.Certificate, what: str, now: datetime) -> None:
    if cert.version is not x509.Version.v3:
        raise MalformedError(f"amd: {what} certificate is not X.509 v3")
    _check_cert_algorithm(cert, what)
    _check_validity(cert, what, now)


def _check_ca(cert: x509.Certificate, what: str, now: datetime) -> None:
    _static_ca_check(cert, what)
    _check_validity(cert, what, now)


@lru_cache(maxsize=_CACHE_SIZE)
def _static_ca_check(cert: x509.Certificate, what: str) -> None:
    """Everything about a CA certificate that does not depend on time (a failure is not cached)."""
    if cert.version is not x509.Version.v3:
        raise MalformedError(f"amd: {what} certificate is not X.509 v3")
    _check_cert_algorithm(cert, what)
    key = cert.public_key()
    if not isinstance(key, rsa.RSAPublicKey) or key.key_size < MIN_RSA_BITS:
        raise AlgorithmError(f"amd: {what} key must be RSA of at least {MIN_RSA_BITS} bits")
    try:
        bc = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
        ku = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound as exc:
        raise MalformedError(f"amd: {what} lacks basic constraints or key usage") from exc
    if not bc.ca or not ku.key_cert_sign:
        raise MalformedError(f"amd: {what} is not a CA certificate allowed to sign certificates")


@lru_cache(maxsize=_CACHE_SIZE)
def _signed_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    """Whether *issuer*'s RSA key signed *cert* (RSASSA-PSS, SHA-384, salt 48).

    Memoised by the two certificates (hashed and compared by their DER): a signature's validity
    does not depend on time, so a fleet's shared ASK/ARK links are checked once; validity at
    ``now`` is checked on every call of :func:`verify_chain`.
    """
    key = issuer.public_key()
    if not isinstance(key, rsa.RSAPublicKey):
        return False
    try:
        key.verify(cert.signature, cert.tbs_certificate_bytes, _PSS, hashes.SHA384())
    except InvalidSignature:
        return False
    return True


def verify_chain(vek: x509.Certificate, kind: KeyKind, pool: Sequence[x509.Certificate], roots: TrustedRoots,
                 now: datetime) -> VerifiedChain:
    """The path from *vek* to a trusted ARK through *pool* (untrusted candidates), checked at *now*.

    Raises MalformedError (a certificate breaks AMD's profile), AlgorithmError, BadSignatureError,
    StaleError (not valid at *now*, naming the certificate and its window) or UntrustedKeyError
    (no ASK/ARK, or an ARK whose key matches no pin and no operator root).
    """
    name = _NAMES[kind]
    role = cert_role(vek)
    if role is None or role[0] != kind:
        raise MalformedError(f"amd: the {name} certificate's subject is not CN=SEV-{name}")
    _check_common(vek, name, now)
    key = vek.public_key()
    if not isinstance(key, ec.EllipticCurvePublicKey) or key.curve.name != "secp384r1":
        raise AlgorithmError(f"amd: {name} key must be ECDSA P-384")
    ext = vek_extensions(vek)
    if kind == "vcek" and (ext.hwid is None or ext.csp_id is not None):
        raise MalformedError("amd: a VCEK needs the hwID extension and no cspID")
    if kind == "vlek" and (ext.csp_id is None or ext.hwid is not None):
        raise MalformedError("amd: a VLEK needs the cspID extension and no hwID")

    inter_role = _ISSUER_ROLE[kind]
    inter_name = _NAMES[inter_role]
    issuers = [c for c in _unique(pool)
               if _names(c)[0] == _names(vek)[1] and (cert_role(c) or ("", None))[0] == inter_role]
    if not issuers:
        raise UntrustedKeyError(f"amd: no {inter_name} certificate for the {name} (issuer {_cn(vek.issuer)})")
    failure: Exception | None = None
    for inter in issuers:
        try:
            _check_ca(inter, inter_name, now)
            if not _signed_by(vek, inter):
                raise BadSignatureError(f"amd: the {name} signature does not verify under the {inter_name}")
            return _to_root(vek, kind, ext, inter, inter_name, pool, roots, now)
        except (MalformedError, AlgorithmError, BadSignatureError, StaleError, UntrustedKeyError) as exc:
            failure = failure or exc
    assert failure is not None
    raise failure


def _unique(certs: Iterable[x509.Certificate]) -> list[x509.Certificate]:
    return list(dict.fromkeys(certs))  # certificates compare and hash by their DER


def _to_root(vek: x509.Certificate, kind: KeyKind, ext: VekExtensions, inter: x509.Certificate, inter_name: str,
             pool: Sequence[x509.Certificate], roots: TrustedRoots, now: datetime) -> VerifiedChain:
    candidates = [c for c in _unique([*pool, *roots.certificates])
                  if _names(c)[0] == _names(inter)[1] and (cert_role(c) or ("", None))[0] == "ark"]
    if not candidates:
        raise UntrustedKeyError(f"amd: no ARK certificate for the {inter_name} (issuer {_cn(inter.issuer)})")
    untrusted: list[str] = []
    failure: Exception | None = None
    for ark in candidates:
        digest = _key_sha256(ark)
        if digest not in roots.pins:
            untrusted.append(digest)
            continue
        try:
            _check_ca(ark, "ARK", now)
            if _names(ark)[0] != _names(ark)[1] or not _signed_by(ark, ark):
                raise BadSignatureError("amd: the ARK is not validly self-signed")
            if not _signed_by(inter, ark):
                raise BadSignatureError(f"amd: the {inter_name} signature does not verify under the ARK")
            product = _product(kind, ext, inter, ark, roots.pins[digest])
        except (MalformedError, AlgorithmError, BadSignatureError, StaleError) as exc:
            failure = failure or exc
            continue
        source: Literal["pinned", "operator"] = "operator" if digest in roots.operator else "pinned"
        return VerifiedChain(kind, vek, ext, inter, ark, digest, source, product)
    if failure is not None:
        raise failure
    raise UntrustedKeyError(f"amd: ARK key sha256:{untrusted[0]} matches no pinned AMD root "
                            "and no operator-configured root")


def _product(kind: KeyKind, ext: VekExtensions, inter: x509.Certificate, ark: x509.Certificate,
             pinned: str | None) -> str:
    """The product line every link agrees on (ARK-X, SEV-X / SEV-VLEK-X, the pin, productName)."""
    ark_role, inter_role = cert_role(ark), cert_role(inter)
    names = {"ARK": ark_role[1] if ark_role else None,
             _NAMES[_ISSUER_ROLE[kind]]: inter_role[1] if inter_role else None,
             "pin": pinned, f"{_NAMES[kind]} productName": ext.product_line}
    lines = {v for v in names.values() if v is not None}
    if len(lines) != 1:
        shown = ", ".join(f"{k} {v}" for k, v in names.items() if v is not None)
        raise MalformedError(f"amd: the chain names different product lines ({shown})")
    return lines.pop()


def check_crls(chain: VerifiedChain, crls: Sequence[x509.CertificateRevocationList], now: datetime
               ) -> list[dict[str, Any]]:
    """Apply each CRL issued by the chain's ARK: a valid signature is required and a listed
    ASK/ASVK is revoked (UntrustedKeyError). CRLs of other issuers are skipped. Returns one
    record per CRL applied, saying whether it was current at *now* (a stale CRL still revokes)."""
    out: list[dict[str, Any]] = []
    ark_key = chain.root.public_key()
    assert isinstance(ark_key, rsa.RSAPublicKey)
    for crl in crls:
        if crl.issuer != chain.root.subject:
            continue
        _check_algorithm(crl.public_bytes(serialization.Encoding.DER), "CRL")
        try:
            ark_key.verify(crl.signature, crl.tbs_certlist_bytes, _PSS, hashes.SHA384())
        except InvalidSignature as exc:
            raise BadSignatureError("amd: the CRL signature does not verify under the ARK") from exc
        serial = _serial(chain.intermediate)
        revoked = crl.get_revoked_certificate_by_serial_number(serial)
        if revoked is not None:
            raise UntrustedKeyError(f"amd: the {_NAMES[_ISSUER_ROLE[chain.kind]]} (serial {serial}) was revoked on "
                                    f"{revoked.revocation_date_utc.isoformat()}")
        next_update = crl.next_update_utc
        out.append({"issuer": _cn(crl.issuer), "last_update": crl.last_update_utc.isoformat(),
                    "current": crl.last_update_utc <= now and (next_update is None or now <= next_update)})
    return out


def clear_caches() -> None:
    """Forget every memoised parse and signature check (benchmarks measure cold appraisals)."""
    for cached in (_load_certificates_cached, cert_role, vek_extensions, _check_cert_algorithm, _signed_by, _names,
                   _key_sha256, _cert_json, _static_ca_check):
        cached.cache_clear()


# -- collateral requests ------------------------------------------------------------------------


def hwid_key(chip_id: bytes, product: str) -> str:
    """The hwID as KDS names it: the 64-byte CHIP_ID, or its first 8 bytes on Turin."""
    return (chip_id[:8] if tcb_layout(product) == "turin" else chip_id).hex()


def vcek_request(product: str, chip_id: bytes, tcb: TcbVersion) -> CollateralRequest:
    """The VCEK of a chip at a TCB (KDS ``/vcek/v1/{product}/{hwid}?blSPL=..``)."""
    return CollateralRequest("amd-vcek", (product, hwid_key(chip_id, product), tcb.raw.hex()))


def vlek_request(product: str, tcb: TcbVersion) -> CollateralRequest:
    return CollateralRequest("amd-vlek", (product, tcb.raw.hex()))


def chain_request(product: str, kind: KeyKind) -> CollateralRequest:
    """ASK (or ASVK) and ARK of a product line (KDS ``/{vcek|vlek}/v1/{product}/cert_chain``)."""
    return CollateralRequest("amd-chain", (product, kind))


def crl_request(product: str) -> CollateralRequest:
    """Every CRL issued by the product's ARK (KDS ``/{vcek|vlek}/v1/{product}/crl``)."""
    return CollateralRequest("amd-crl", (product,))


# -- the offline folder: AMD's file-name rules and content index --------------------------------

AMD_FILE_SUFFIXES = frozenset({".pem", ".der", ".cer", ".crt", ".crl"})
AMD_FILE_NAMES = frozenset({"cert_chain", "crl"})  # KDS endpoint names, saved as is


def _pem(certs: Iterable[x509.Certificate]) -> bytes:
    return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certs)


def index_amd(files: Sequence[FolderFile]) -> list[Collateral]:
    """Collateral entries for the AMD certificates and CRLs in *files*, keyed by content."""
    found: dict[CollateralRequest, tuple[list[bytes], list[str]]] = {}

    def add(req: CollateralRequest, blob: bytes, source: str) -> None:
        blobs, sources = found.setdefault(req, ([], []))
        if blob not in blobs:
            blobs.append(blob)
        if source not in sources:
            sources.append(source)

    for f in files:
        for cert in _certs_or_none(f.data):
            role = cert_role(cert)
            if role is None:
                continue
            kind, product = role
            pem = cert.public_bytes(serialization.Encoding.PEM)
            if kind in ("vcek", "vlek"):
                try:
                    ext = vek_extensions(cert)
                    line = ext.product_line
                    tcb = ext.tcb(line)
                except MalformedError:
                    continue  # not usable as a VCEK/VLEK: the appraisal would reject it anyway
                if kind == "vcek" and ext.hwid is not None:
                    add(CollateralRequest("amd-vcek", (line, ext.hwid.hex(), tcb.raw.hex())), pem, f.path)
                elif kind == "vlek":
                    add(vlek_request(line, tcb), pem, f.path)
            elif product in PRODUCTS:
                targets = _CHAIN_TARGETS[kind]
                for target in targets:
                    add(chain_request(product, target), pem, f.path)
        for crl in _crls_or_none(f.data):
            issuer = _cn(crl.issuer) or ""
            if issuer.startswith("ARK-") and issuer[4:] in PRODUCTS:
                add(crl_request(issuer[4:]), crl.public_bytes(serialization.Encoding.PEM), f.path)
    return [Collateral(req, b"".join(blobs), ", ".join(sources)) for req, (blobs, sources) in found.items()]


def _certs_or_none(data: bytes) -> list[x509.Certificate]:
    if b"-----BEGIN X509 CRL" in data and b"-----BEGIN CERTIFICATE" not in data:
        return []
    try:
        return load_certificates(data)
    except MalformedError:
        return []


def _crls_or_none(data: bytes) -> list[x509.CertificateRevocationList]:
    if b"-----BEGIN CERTIFICATE" in data and b"-----BEGIN X509 CRL" not in data:
        return []
    try:
        return load_crls(data)
    except MalformedError:
        return []


class AmdHandler:
    """The AMD vendor handler of :class:`~.folder.FolderStore`."""

    name = "amd"

    def wants(self, relpath: PurePosixPath) -> bool:
        return relpath.suffix.lower() in AMD_FILE_SUFFIXES or relpath.name in AMD_FILE_NAMES

    def index(self, files: Sequence[FolderFile]) -> Iterable[Collateral]:
        return index_amd(files)


HANDLER = register_handler(AmdHandler())
