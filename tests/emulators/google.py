"""Google Cloud Attestation (Confidential Space) emulator: challenges, TD-quote verification, OIDC/PKI tokens.

Contract: ``google/cloud/confidentialcomputing/v1/service.proto`` (googleapis), go-tpm-tools' REST
client (``verifier/rest``) and Google's Confidential Space token-claims reference. What it
reproduces, and why:

* Every call needs ``Authorization: Bearer <access_token>`` (401 ``UNAUTHENTICATED`` without it).
  Errors are Google RPC status JSON ``{"error": {"code", "message", "status"}}``.
* ``POST /v1/projects/{p}/locations/{l}/challenges`` → ``{"name", "createTime", "expireTime",
  "used": false, "tpmNonce"}`` (``tpmNonce`` standard base64). A challenge is **single-use**:
  the first verify call that reaches the attestation step consumes it, whatever the outcome; a
  second one gets 400 ``FAILED_PRECONDITION``, as does an expired one; an unknown one 404.
* ``POST …/challenges/{id}:verifyConfidentialSpace`` with lowerCamelCase JSON ``{"challenge"?,
  "tdCcel": {"tdQuote", …}, "options": {"audience", "nonce": [...], "signatureType"}}`` →
  ``{"attestationToken", "partialErrors"}``; ``…:verifyAttestation`` with ``"tokenOptions":
  {"audience", "nonce", "tokenType"}`` → ``{"oidcClaimsToken", "partialErrors"}``. Nonces are
  10-74 bytes each and need an ``audience`` (400 ``INVALID_ARGUMENT`` otherwise). The quote's
  signatures and PCK chain are verified (tests/emulators/quote.py); a bad quote is 400
  ``INVALID_ARGUMENT``. ``partialErrors`` is always present (``[]`` by default; switch).
* Tokens are RS256. ``SIGNATURE_TYPE_PKI`` / ``TOKEN_TYPE_PKI``: header ``{alg, kid, typ, x5c:
  [leaf "Confidential Space Leaf Certificate", "Confidential Space Intermediate CA",
  "Confidential Space Root CA"]}`` signed by the leaf key; OIDC (the default): ``{alg, kid, typ}``
  with the key in the JWKS at :data:`JWKS_PATH` (Google's real path, also linked from
  ``/.well-known/openid-configuration``). Claims as Google's token-claims reference lists them:
  ``iss``, ``aud`` (default ``https://sts.googleapis.com``), ``sub`` (the GCE instance URL),
  ``eat_nonce`` (a string for one nonce, a list for several, absent for none), ``eat_profile``,
  ``hwmodel``, ``swname``, ``swversion``, ``dbgstat`` ("disabled-since-boot", or "enabled" when the
  quote's TD is debug or ``debug_image`` is set), ``secboot``, ``oemid`` 11129, ``attester_tcb``
  ["INTEL"], ``submods`` {confidential_space, container, gce}, ``google_service_accounts``,
  ``iat``/``nbf``/``exp`` (1 h). No TCB status or measurements: Google exposes none.

Binding: Google's ``tpmNonce`` cannot be bound into a TDX quote by this flow (the caller's nonce is
carried only as ``eat_nonce``: ``options.nonce`` / ``tokenOptions.nonce`` in ``service.proto``), so
the emulator does **not** require it in REPORT_DATA; it models the eat_nonce-only binding. The quote
is still verified.

Trust anchors: :meth:`GoogleEmulator.root_pem` (PKI tokens: verify x5c[0]'s signature, the chain
to this root at the token's ``iat``), :meth:`GoogleEmulator.jwks` (OIDC tokens). Switches:
``debug_image``, ``hwmodel``, ``swname``, ``swversion``, ``secboot``, ``support_attributes``,
``container``, ``gce``, ``service_accounts``, ``partial_errors``, ``challenge_ttl`` (3600 s),
``token_lifetime`` (3600 s), ``leaf_validity`` (default: the clock at construction -1 day to
+60 days, Google's ~2-month leaves), plus the common ones (clock, 429/503, replay).

Not modelled: ``tpmAttestation``/``sevSnpAttestation`` evidence (400: the emulator verifies TD
quotes), image-signature checking, AWS token profiles, ``verifyConfidentialGke``.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, ClassVar

import jwt
from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from .common import Emulator, b64, b64url, cert_der_b64, issue_cert, lenient_b64decode, rsa_jwk, rsa_key, utc
from .quote import QuoteRejected, check_quote

__all__ = ["ISSUER", "JWKS_PATH", "GoogleEmulator", "GoogleKeys"]

ISSUER = "https://confidentialcomputing.googleapis.com"
JWKS_PATH = "/service_accounts/v1/metadata/jwk/signer@confidentialspace-sign.iam.gserviceaccount.com"
EAT_PROFILE = "https://cloud.google.com/confidential-computing/confidential-space/docs/reference/token-claims"
DEFAULT_AUDIENCE = "https://sts.googleapis.com"
ORG = "Google LLC"
_RPC_STATUS = {400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED", 404: "NOT_FOUND",
               405: "UNIMPLEMENTED", 409: "ABORTED", 429: "RESOURCE_EXHAUSTED", 500: "INTERNAL", 503: "UNAVAILABLE",
               504: "DEADLINE_EXCEEDED"}


@dataclass(eq=False, frozen=True)
class GoogleKeys:
    """The OIDC signing key and the PKI chain's keys (RSA-2048 throughout: Google's CAs are
    RSA-4096, but key size is invisible to a client and 4096-bit generation is slow)."""

    oidc: rsa.RSAPrivateKey
    leaf: rsa.RSAPrivateKey
    intermediate: rsa.RSAPrivateKey
    root: rsa.RSAPrivateKey

    @classmethod
    def generate(cls) -> GoogleKeys:
        return cls(rsa_key(), rsa_key(), rsa_key(), rsa_key())


@dataclass(eq=False)
class Challenge:
    name: str
    created: float
    expires: float
    tpm_nonce: bytes
    used: bool = False

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "createTime": _rfc3339(self.created), "expireTime": _rfc3339(self.expires),
                "used": self.used, "tpmNonce": b64(self.tpm_nonce)}


def _rfc3339(t: float) -> str:
    return utc(t).isoformat(timespec="microseconds").replace("+00:00", "Z")


class _Rpc(Exception):
    def __init__(self, status: int, message: str, rpc_status: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.rpc_status = rpc_status


def _default_container() -> dict[str, Any]:
    return {"image_reference": "us-docker.pkg.dev/emulator/workloads/app:latest",
            "image_digest": "sha256:" + hashlib.sha256(b"emulated workload image").hexdigest(),
            "image_id": "sha256:" + hashlib.sha256(b"emulated workload image id").hexdigest(),
            "restart_policy": "Never", "env": {"HOSTNAME": "emulated-cs-vm"}, "args": ["/app"]}


def _default_gce() -> dict[str, str]:
    return {"zone": "us-central1-a", "project_id": "emulated-project", "project_number": "123456789012",
            "instance_name": "emulated-cs-vm", "instance_id": "4242424242424242424"}


@dataclass(eq=False, kw_only=True)
class GoogleEmulator(Emulator):
    """The Confidential Computing API (``confidentialcomputing.googleapis.com``) for TDX Confidential Space."""

    intel_roots: Sequence[x509.Certificate] = ()
    access_token: str = "google-emulator-access-token"
    keys: GoogleKeys = field(default_factory=GoogleKeys.generate)
    issuer: str = ISSUER
    challenge_ttl: int = 3600
    token_lifetime: int = 3600
    debug_image: bool = False
    hwmodel: str = "GCP_INTEL_TDX"
    swname: str = "CONFIDENTIAL_SPACE"
    swversion: list[str] = field(default_factory=lambda: ["250301"])
    secboot: bool = True
    support_attributes: list[str] = field(default_factory=lambda: ["LATEST", "STABLE", "USABLE"])
    container: dict[str, Any] = field(default_factory=_default_container)
    gce: dict[str, str] = field(default_factory=_default_gce)
    service_accounts: list[str] = field(
        default_factory=lambda: ["workload@emulated-project.iam.gserviceaccount.com"])
    partial_errors: list[dict[str, Any]] = field(default_factory=list)
    leaf_validity: tuple[datetime, datetime] | None = None

    key_paths: ClassVar[tuple[str, ...]] = (JWKS_PATH, "/.well-known/openid-configuration")

    def __post_init__(self) -> None:
        self.challenges: dict[str, Challenge] = {}
        self.root = issue_cert("Confidential Space Root CA", self.keys.root, ca=True, org=ORG)
        self.intermediate = issue_cert("Confidential Space Intermediate CA", self.keys.intermediate,
                                       issuer="Confidential Space Root CA", issuer_key=self.keys.root, ca=True, org=ORG)
        start = self.at() - timedelta(days=1)
        not_before, not_after = self.leaf_validity or (start, start + timedelta(days=61))
        self.leaf = issue_cert("Confidential Space Leaf Certificate", self.keys.leaf,
                               issuer="Confidential Space Intermediate CA", issuer_key=self.keys.intermediate,
                               ca=False, org=ORG, not_before=not_before, not_after=not_after)
        self.pki_kid = b64url(hashlib.sha256(self.leaf.public_bytes(serialization.Encoding.DER)).digest())
        oidc_der = self.keys.oidc.public_key().public_bytes(serialization.Encoding.DER,
                                                             serialization.PublicFormat.SubjectPublicKeyInfo)
        self.oidc_kid = hashlib.sha1(oidc_der).hexdigest()  # an identifier (Google kids are 40 hex), not a MAC

    # -- anchors -------------------------------------------------------------------------------

    def root_pem(self) -> bytes:
        """The PKI-token trust anchor (PEM), as the real "Confidential Space Root CA" is pinned."""
        return self.root.public_bytes(serialization.Encoding.PEM)

    def jwks(self) -> dict[str, Any]:
        """The OIDC-token JWKS served at :data:`JWKS_PATH`."""
        return {"keys": [{**rsa_jwk(self.keys.oidc.public_key()), "alg": "RS256", "use": "sig",
                          "kid": self.oidc_kid}]}

    # -- HTTP ----------------------------------------------------------------------------------

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/v1/projects/{project}/locations/{location}/challenges", self.create_challenge)
        app.router.add_post("/v1/projects/{project}/locations/{location}/challenges/{rest}", self.verify)
        app.router.add_get(JWKS_PATH, self.serve_jwks)
        app.router.add_get("/.well-known/openid-configuration", self.openid)

    def error(self, status: int, message: str, rpc_status: str | None = None) -> web.Response:
        return web.json_response({"error": {"code": status, "message": message,
                                            "status": rpc_status or _RPC_STATUS.get(status, "UNKNOWN")}},
                                 status=status)

    async def serve_jwks(self, request: web.Request) -> web.StreamResponse:
        return web.json_response(self.jwks())

    async def openid(self, request: web.Request) -> web.StreamResponse:
        base = self.base_url(request)
        return web.json_response({"issuer": self.issuer, "jwks_uri": f"{base}{JWKS_PATH}",
                                  "id_token_signing_alg_values_supported": ["RS256"]})

    def _check_auth(self, request: web.Request) -> None:
        if request.headers.get("Authorization") != f"Bearer {self.access_token}":
            raise _Rpc(401, "Request had invalid authentication credentials. Expected OAuth 2 access token, login "
                       "cookie or other valid authentication credential.")

    async def create_challenge(self, request: web.Request) -> web.StreamResponse:
        try:
            self._check_auth(request)
        except _Rpc as exc:
            return self.error(exc.status, exc.message, exc.rpc_status)
        p, loc = request.match_info["project"], request.match_info["location"]
        now = self.now()
        ch = Challenge(f"projects/{p}/locations/{loc}/challenges/{uuid.uuid4()}", now, now + self.challenge_ttl,
                       secrets.token_bytes(32))
        self.challenges[ch.name] = ch
        return web.json_response(ch.to_json())

    async def verify(self, request: web.Request) -> web.StreamResponse:
        try:
            self._check_auth(request)
            cid, _, method = request.match_info["rest"].partition(":")
            if method not in ("verifyConfidentialSpace", "verifyAttestation"):
                raise _Rpc(404, f"Method {method or '(none)'} not found.")
            name = f"projects/{request.match_info['project']}/locations/{request.match_info['location']}" \
                   f"/challenges/{cid}"
            try:
                doc = json.loads(await request.text())
            except ValueError as exc:
                raise _Rpc(400, "Invalid JSON payload received.") from exc
            if not isinstance(doc, dict):
                raise _Rpc(400, "Invalid JSON payload received: expected an object.")
            if self.replay_token is not None:
                return self._answer(method, self.replay_token)
            token = self._verify(name, method, doc)
        except _Rpc as exc:
            return self.error(exc.status, exc.message, exc.rpc_status)
        return self._answer(method, self.record(token))

    def _answer(self, method: str, token: str) -> web.Response:
        key = "attestationToken" if method == "verifyConfidentialSpace" else "oidcClaimsToken"
        return web.json_response({key: token, "partialErrors": list(self.partial_errors)})

    # -- verification --------------------------------------------------------------------------

    def _options(self, method: str, doc: dict[str, Any]) -> tuple[str | None, list[str], bool]:
        """(audience, nonces, pki) from ``options`` or ``tokenOptions``, validated."""
        opts = doc.get("options" if method == "verifyConfidentialSpace" else "tokenOptions") or {}
        if not isinstance(opts, dict):
            raise _Rpc(400, "options must be an object.")
        audience = opts.get("audience")
        nonces = opts.get("nonce") or []
        if audience is not None and not isinstance(audience, str):
            raise _Rpc(400, "audience must be a string.")
        if not isinstance(nonces, list) or not all(isinstance(n, str) for n in nonces):
            raise _Rpc(400, "nonce must be a list of strings.")
        for n in nonces:
            if not 10 <= len(n.encode()) <= 74:
                raise _Rpc(400, f"nonce must be between 10 and 74 bytes, got {len(n.encode())}.")
        if nonces and not audience:
            raise _Rpc(400, "audience is required when nonces are given.")
        if method == "verifyConfidentialSpace":
            kind = opts.get("signatureType", "SIGNATURE_TYPE_OIDC")
            allowed = {"SIGNATURE_TYPE_UNSPECIFIED": False, "SIGNATURE_TYPE_OIDC": False, "SIGNATURE_TYPE_PKI": True}
        else:
            kind = opts.get("tokenType", "TOKEN_TYPE_OIDC")
            allowed = {"TOKEN_TYPE_UNSPECIFIED": False, "TOKEN_TYPE_OIDC": False, "TOKEN_TYPE_PKI": True}
        if kind not in allowed:
            raise _Rpc(400, f"token type {kind!r} is not supported by this emulator.")
        return audience, nonces, allowed[kind]

    def _verify(self, name: str, method: str, doc: dict[str, Any]) -> str:
        if doc.get("challenge") not in (None, name):
            raise _Rpc(400, "challenge in the body does not match the URL.")
        audience, nonces, pki = self._options(method, doc)
        td = doc.get("tdCcel")
        if not isinstance(td, dict) or "tdQuote" not in td:
            raise _Rpc(400, "tdCcel.tdQuote is required (this emulator verifies Intel TDX Confidential Space).")
        try:
            raw = lenient_b64decode(td["tdQuote"])
        except ValueError as exc:
            raise _Rpc(400, f"tdCcel.tdQuote: {exc}") from exc
        challenge = self.challenges.get(name)
        if challenge is None:
            raise _Rpc(404, f"Challenge {name} not found.")
        if challenge.used:
            raise _Rpc(400, f"Challenge {name} has already been used.", "FAILED_PRECONDITION")
        if self.now() >= challenge.expires:
            raise _Rpc(400, f"Challenge {name} has expired.", "FAILED_PRECONDITION")
        challenge.used = True
        try:
            quote = check_quote(raw, self.intel_roots, self.at())
        except QuoteRejected as exc:
            raise _Rpc(400, f"TD quote verification failed: {exc.detail}") from exc
        return self._sign(self._claims(audience, nonces, debug=quote.body.debug), pki)

    def _claims(self, audience: str | None, nonces: list[str], *, debug: bool) -> dict[str, Any]:
        now = self.seconds()
        g = self.gce
        claims: dict[str, Any] = {
            "aud": audience or DEFAULT_AUDIENCE, "exp": now + self.token_lifetime, "iat": now, "iss": self.issuer,
            "nbf": now,
            "sub": f"https://www.googleapis.com/compute/v1/projects/{g['project_id']}/zones/{g['zone']}"
                   f"/instances/{g['instance_name']}",
        }
        if nonces:
            claims["eat_nonce"] = nonces[0] if len(nonces) == 1 else list(nonces)
        claims.update({
            "eat_profile": EAT_PROFILE, "secboot": self.secboot, "oemid": 11129, "hwmodel": self.hwmodel,
            "swname": self.swname, "swversion": list(self.swversion),
            "dbgstat": "enabled" if debug or self.debug_image else "disabled-since-boot",
            "attester_tcb": ["INTEL"],
            "submods": {"confidential_space": {"support_attributes": list(self.support_attributes),
                                               "monitoring_enabled": {"memory": False}},
                        "container": dict(self.container), "gce": dict(g)},
            "google_service_accounts": list(self.service_accounts),
        })
        return claims

    def _sign(self, claims: dict[str, Any], pki: bool) -> str:
        if pki:
            x5c = [cert_der_b64(c) for c in (self.leaf, self.intermediate, self.root)]
            return jwt.encode(claims, self.keys.leaf, algorithm="RS256",
                              headers={"kid": self.pki_kid, "typ": "JWT", "x5c": x5c})
        return jwt.encode(claims, self.keys.oidc, algorithm="RS256", headers={"kid": self.oidc_kid, "typ": "JWT"})
