"""What every vendor emulator shares: the clock, scripted outages, replay, keys and encodings.

Why a base class: each emulator must let a test choose *when* it is (a settable clock, so token
lifetimes and certificate windows can be exercised without sleeping), make the service fail the
way the real one does under load (429 with ``Retry-After``, 503), and misbehave on purpose (answer
with a token it issued earlier). Only the error *body* differs per vendor, so subclasses supply
:meth:`Emulator.error`; the middleware here applies the switches before any handler runs.
"""

from __future__ import annotations

import base64
import binascii
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, ClassVar

from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

__all__ = [
    "FAR_FUTURE", "LONG_AGO", "Clock", "Emulator", "PrivateKey", "b64", "b64url", "cert_der_b64", "issue_cert",
    "lenient_b64decode", "rsa_jwk", "rsa_key", "strict_b64url_nopad_decode", "utc",
]

Clock = Callable[[], float]
PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

LONG_AGO = datetime(2020, 1, 1, tzinfo=UTC)
FAR_FUTURE = datetime(2049, 12, 31, tzinfo=UTC)
"""CA certificates span these dates, so any clock a test picks is inside their windows."""


def utc(t: float) -> datetime:
    return datetime.fromtimestamp(t, UTC)


def b64(data: bytes) -> str:
    """Standard base64 with padding (Go's ``[]byte`` in JSON, Google's proto ``bytes``)."""
    return base64.b64encode(data).decode()


def b64url(data: bytes) -> str:
    """base64url without padding (JOSE, Trustee)."""
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def lenient_b64decode(text: Any) -> bytes:
    """Standard or URL-safe base64, padded or not; ``ValueError`` otherwise.

    MAA documents ``b64url`` for quotes and runtime data while its own spec example uses standard
    base64; ITA and Google use standard base64. Accepting both costs nothing here: the emulators
    test what the *clients* send, and a client is not wrong for either.
    """
    if not isinstance(text, str):
        raise ValueError("expected a base64 string")
    t = text.strip().replace("-", "+").replace("_", "/")
    try:
        return base64.b64decode(t + "=" * (-len(t) % 4), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError(f"not base64: {exc}") from exc


def strict_b64url_nopad_decode(text: Any) -> bytes:
    """base64url *without* padding, as Trustee's ``URL_SAFE_NO_PAD`` engine decodes: padding is an error."""
    if not isinstance(text, str) or "=" in text or "+" in text or "/" in text:
        raise ValueError("expected base64url without padding")
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError) as exc:
        raise ValueError(f"not base64url: {exc}") from exc


def rsa_key(bits: int = 2048) -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=bits)


def rsa_jwk(key: rsa.RSAPublicKey) -> dict[str, str]:
    """``kty``/``n``/``e`` of an RSA public key (base64url, big-endian, no leading zeros)."""
    nums = key.public_numbers()
    return {"kty": "RSA", "n": b64url(nums.n.to_bytes((nums.n.bit_length() + 7) // 8, "big")),
            "e": b64url(nums.e.to_bytes((nums.e.bit_length() + 7) // 8, "big"))}


def _name(cn: str, org: str | None) -> x509.Name:
    attrs = [x509.NameAttribute(NameOID.COMMON_NAME, cn)]
    if org:
        attrs.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, org))
    return x509.Name(attrs)


def issue_cert(subject: str, key: PrivateKey, *, issuer: str | None = None, issuer_key: PrivateKey | None = None,
               ca: bool, org: str | None = None, not_before: datetime = LONG_AGO,
               not_after: datetime = FAR_FUTURE) -> x509.Certificate:
    """A certificate for *key*; self-signed when no issuer is given. SHA-256 signatures throughout."""
    builder = (x509.CertificateBuilder().subject_name(_name(subject, org))
               .issuer_name(_name(issuer or subject, org)).public_key(key.public_key())
               .serial_number(x509.random_serial_number()).not_valid_before(not_before).not_valid_after(not_after)
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
               .add_extension(x509.KeyUsage(digital_signature=not ca, content_commitment=False, key_encipherment=False,
                                            data_encipherment=False, key_agreement=False, key_cert_sign=ca,
                                            crl_sign=ca, encipher_only=False, decipher_only=False), critical=True))
    return builder.sign(issuer_key or key, hashes.SHA256())


def cert_der_b64(cert: x509.Certificate) -> str:
    """An ``x5c`` entry: standard base64 of the DER (RFC 7515 §4.1.6)."""
    return b64(cert.public_bytes(serialization.Encoding.DER))


@dataclass(eq=False, kw_only=True)
class Emulator:
    """Switches every emulator honours (set them at any time; each request reads them afresh).

    * ``now``: the service's clock (seconds since the epoch); token ``iat``, challenge and nonce
      times, and the PCK-chain validity check all use it.
    * ``fail_next``: HTTP statuses answered, one per API request, before the service behaves
      again (e.g. ``[503, 503]`` to exercise a client's retries); ``fail_always``: a status
      answered to every API request. 429 carries ``Retry-After: retry_after``. Key-discovery
      paths (JWKS, certs) are never failed, so a test can fail attestation and still fetch keys.
    * ``replay_token``: when set, every attestation call is answered with this token, without
      looking at the evidence (a misbehaving or replaying service, or a man in the middle);
      :attr:`issued` lists every token the emulator signed, in order, to pick one from.
    * ``log``: (method, path) of every request served.
    """

    now: Clock = time.time
    fail_next: list[int] = field(default_factory=list)
    fail_always: int | None = None
    retry_after: str = "1"
    replay_token: str | None = None
    issued: list[str] = field(default_factory=list)
    log: list[tuple[str, str]] = field(default_factory=list)

    key_paths: ClassVar[tuple[str, ...]] = ()
    """Paths never failed by ``fail_next``/``fail_always`` (set by each subclass)."""

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._middleware])
        self.routes(app)
        return app

    def routes(self, app: web.Application) -> None:
        raise NotImplementedError

    def error(self, status: int, message: str) -> web.Response:
        """The vendor's error response for *status* (subclasses shape the body)."""
        return web.Response(status=status, text=message)

    def decorate(self, request: web.Request, response: web.StreamResponse) -> None:
        """Headers the vendor adds to every response (ITA: request-id/trace-id; MAA: service version)."""

    def base_url(self, request: web.Request) -> str:
        """Where the client reached us: the URL it was configured with (``http://127.0.0.1:<port>``)."""
        return str(request.url.origin())

    def _scripted_failure(self, path: str) -> int | None:
        if path in self.key_paths:
            return None
        if self.fail_next:
            return self.fail_next.pop(0)
        return self.fail_always

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        self.log.append((request.method, request.path))
        status = self._scripted_failure(request.path)
        if status is not None:
            response: web.StreamResponse = self.error(status, _REASONS.get(status, "scripted failure"))
            if status == 429:
                response.headers["Retry-After"] = self.retry_after
        else:
            try:
                response = await handler(request)
            except web.HTTPException as exc:  # unknown route or method: the vendor's error shape
                response = self.error(exc.status, exc.reason)
        self.decorate(request, response)
        return response

    def record(self, token: str) -> str:
        """Remember a freshly signed token (for :attr:`issued`) and return it."""
        self.issued.append(token)
        return token

    def at(self) -> datetime:
        return utc(self.now())

    def seconds(self) -> int:
        return int(self.now())

    @staticmethod
    def window(lifetime: int, at: int) -> dict[str, int]:
        return {"iat": at, "nbf": at, "exp": at + lifetime}


_REASONS = {429: "Too Many Requests", 500: "Internal Server Error", 502: "Bad Gateway", 503: "Service Unavailable",
            504: "Gateway Timeout"}
