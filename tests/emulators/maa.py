"""Microsoft Azure Attestation (MAA) emulator: ``/attest/TdxVm``, RS256 tokens, an x5c-only ``/certs``.

Contract: the Azure REST API specs (``AttestTdxVm.json``, api-version 2025-06-01), Microsoft's Azure
Attestation documentation (token examples, the TDX EAT profile) and the Azure CVM guest attestation
library (Azure/confidential-computing-cvm-guest-attestation). What it reproduces, and why:

* ``POST /attest/TdxVm?api-version=…`` and ``/attest/SevSnpVm?api-version=…``, anonymous. The
  ``api-version`` query is required (400 ``MissingApiVersionParameter`` without it,
  ``InvalidApiVersionParameter`` for one MAA does not serve). Errors are
  ``{"error": {"code", "message"}}`` JSON.
* TdxVm body ``{"quote", "runtimeData": {"data", "dataType": "Binary"|"JSON"}, "initTimeData",
  "nonce", "draftPolicyForAttestation"}``; ``quote`` and ``data`` are base64url (standard base64
  is accepted too). The quote is verified (tests/emulators/quote.py). With ``runtimeData``,
  REPORT_DATA[0:32] must equal SHA-256 of the decoded ``data`` bytes — the exact bytes sent,
  never a re-serialisation — else 400; with ``dataType`` JSON the same bytes are parsed and
  surfaced as ``x-ms-runtime``. ``nonce`` is echoed as the ``nonce`` claim.
* The answer is ``{"token": JWT}``: RS256, header ``{alg, jku: <instance>/certs, kid, typ}``
  where ``kid`` is standard base64 of 32 bytes (SHA-256 of the signing certificate); claims as
  the TdxVm sample in Microsoft's docs: ``attester_tcb_status``, ``dbgstat``, ``eat_profile``,
  ``intuse``, the flat ``tdx_*`` claims, ``x-ms-attestation-type`` "tdxvm",
  ``x-ms-compliance-status`` (switch), ``x-ms-policy-hash`` (base64url SHA-256 of the policy
  text), ``x-ms-runtime``, ``x-ms-ver`` "1.0", ``iss`` = the instance URL, ``jti``, and
  ``iat``/``nbf``/``exp`` with an 8-hour lifetime. No ``aud``.
* ``GET /certs``: ``{"keys": [{"kid", "kty": "RSA", "x5c": [<self-issued cert>]}, …]}`` — the
  key only inside the certificate, **no n/e** (libraries expecting n/e fail), two keys by
  default (MAA has several live), the signer among them; certificates are self-issued with
  ``CN=<instance URL>`` as MAA's are (``instance``, or :data:`DEFAULT_INSTANCE` when the
  instance URL is taken from the request, since the certificates exist before the server runs).
  ``GET /.well-known/openid-configuration`` points at it.
* Every response carries ``x-ms-maa-service-version``.

Draft policies: Microsoft's REST API documentation says only that a token made under
``draftPolicyForAttestation`` is for testing and must be refused. The Azure SDK for Python
(azure-security-attestation, ``AttestationClient.attest_*`` docstrings) states the concrete
marker: "if the draft_policy parameter is provided, the resulting attestation token will be an
unsecured attestation token". So a draft request is answered with an **unsecured JWT**
(``alg: none``, empty signature), ``x-ms-policy-hash`` computed over the draft text. No
signature check can pass on it, which is the point.

Trust anchor for a relying party: :meth:`MaaEmulator.jwks` (the x5c-only JWKS, "this instance's
/certs as configured"). Switches: ``tcb_status`` (default UpToDate), ``compliance_status``
(default "azure-compliant-cvm"; ``None`` omits the claim), ``signer`` (index of the signing key
in ``keys``; change it to rotate), ``policy``, ``token_lifetime`` (28800 s), ``instance``
(default: the URL the client used), plus the common ones (clock, 429/503, replay).

Deviation: ``/attest/SevSnpVm`` checks the api-version and the JSON body, then answers 400
``NotSupportedByEmulator``: the SevSnpVm ``report`` is a guest-tooling JSON wrapper (SNP report
plus VCEK chain) whose exact format no source read here pins down, and this emulator has no
stand-in AMD PKI. ``initTimeData`` is accepted and ignored.
"""

from __future__ import annotations

import base64
import hashlib
import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import jwt
from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from .common import Emulator, b64url, cert_der_b64, issue_cert, lenient_b64decode, rsa_key
from .quote import QuoteRejected, check_quote, flat_tdx_claims

__all__ = ["API_VERSIONS", "DEFAULT_INSTANCE", "DEFAULT_POLICY", "MaaEmulator", "policy_hash", "runtime_report_data"]

API_VERSIONS = frozenset({"2020-10-01", "2022-08-01", "2022-09-01-preview", "2025-06-01"})
DEFAULT_POLICY = "version= 1.0;\nauthorizationrules\n{\n    => permit();\n};\nissuancerules\n{\n};\n"
EAT_PROFILE = "https://aka.ms/maa-eat-profile-tdxvm"
SERVICE_VERSION = "1.11.02750.0001-emulator"
DEFAULT_INSTANCE = "https://maaemulator.emu.attest.azure.net"


def runtime_report_data(data: bytes) -> bytes:
    """REPORT_DATA a TdxVm client puts in its quote for runtime data *data*: SHA-256 then 32 zeros."""
    return hashlib.sha256(data).digest() + bytes(32)


def policy_hash(text: str) -> str:
    return b64url(hashlib.sha256(text.encode()).digest())


@dataclass(eq=False)
class _Signer:
    key: rsa.RSAPrivateKey
    cert: x509.Certificate
    kid: str


class _Refused(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(eq=False, kw_only=True)
class MaaEmulator(Emulator):
    """An MAA instance. ``keys`` are its token-signing keys (≥ 2; pass pre-generated ones to save time)."""

    intel_roots: Sequence[x509.Certificate] = ()
    keys: list[rsa.RSAPrivateKey] = field(default_factory=lambda: [rsa_key(), rsa_key()])
    instance: str | None = None
    signer: int = 0
    tcb_status: str = "UpToDate"
    compliance_status: str | None = "azure-compliant-cvm"
    # Report the TD as a debug TD whatever the quote says (a verdict switch: "one service reports debug").
    report_debug: bool = False
    policy: str = DEFAULT_POLICY
    token_lifetime: int = 8 * 3600

    key_paths: ClassVar[tuple[str, ...]] = ("/certs", "/.well-known/openid-configuration")

    def __post_init__(self) -> None:
        cn = self.instance or DEFAULT_INSTANCE
        self.signers: list[_Signer] = []
        for key in self.keys:
            cert = issue_cert(cn, key, ca=False)
            kid = base64.b64encode(hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).digest()).decode()
            self.signers.append(_Signer(key, cert, kid))

    # -- anchors -------------------------------------------------------------------------------

    def jwks(self) -> dict[str, Any]:
        """``/certs``: every key as ``{kid, kty, x5c}`` only — no ``n``/``e``, as MAA serves them."""
        return {"keys": [{"kid": s.kid, "kty": "RSA", "x5c": [cert_der_b64(s.cert)]} for s in self.signers]}

    # -- HTTP ----------------------------------------------------------------------------------

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/attest/TdxVm", self.attest_tdx)
        app.router.add_post("/attest/SevSnpVm", self.attest_snp)
        app.router.add_get("/certs", self.certs)
        app.router.add_get("/.well-known/openid-configuration", self.openid)

    def error(self, status: int, message: str, code: str | None = None) -> web.Response:
        codes = {400: "BadRequest", 401: "Unauthorized", 404: "NotFound", 405: "MethodNotAllowed",
                 429: "TooManyRequests", 500: "InternalServerError", 503: "ServiceUnavailable"}
        return web.json_response({"error": {"code": code or codes.get(status, "Error"), "message": message}},
                                 status=status)

    def decorate(self, request: web.Request, response: web.StreamResponse) -> None:
        response.headers["x-ms-maa-service-version"] = SERVICE_VERSION

    def _instance(self, request: web.Request) -> str:
        return self.instance or self.base_url(request)

    async def certs(self, request: web.Request) -> web.StreamResponse:
        return web.json_response(self.jwks())

    async def openid(self, request: web.Request) -> web.StreamResponse:
        base = self._instance(request)
        return web.json_response({"issuer": base, "jwks_uri": f"{base}/certs",
                                  "claims_supported": ["tdx_mrtd", "x-ms-attestation-type"]})

    async def _body(self, request: web.Request) -> dict[str, Any]:
        version = request.query.get("api-version")
        if version is None:
            raise _Refused("MissingApiVersionParameter",
                           "The api-version query parameter (?api-version=) is required for all requests.")
        if version not in API_VERSIONS:
            raise _Refused("InvalidApiVersionParameter", f"The api-version '{version}' is invalid. "
                           f"The supported versions are '{','.join(sorted(API_VERSIONS))}'.")
        try:
            doc = json.loads(await request.text())
        except ValueError as exc:
            raise _Refused("InvalidParameter", "The request body is not valid JSON.") from exc
        if not isinstance(doc, dict):
            raise _Refused("InvalidParameter", "The request body must be a JSON object.")
        return doc

    async def attest_snp(self, request: web.Request) -> web.StreamResponse:
        try:
            await self._body(request)
        except _Refused as exc:
            return self.error(400, exc.message, exc.code)
        return self.error(400, "SEV-SNP reports are not verified by this emulator (TdxVm only).",
                          "NotSupportedByEmulator")

    async def attest_tdx(self, request: web.Request) -> web.StreamResponse:
        try:
            doc = await self._body(request)
            if self.replay_token is not None:
                return web.json_response({"token": self.replay_token})
            token = self._appraise(doc, self._instance(request))
        except _Refused as exc:
            return self.error(400, exc.message, exc.code)
        return web.json_response({"token": self.record(token)})

    # -- appraisal -----------------------------------------------------------------------------

    def _appraise(self, doc: dict[str, Any], instance: str) -> str:
        try:
            raw = lenient_b64decode(doc.get("quote"))
        except ValueError as exc:
            raise _Refused("InvalidParameter", f"quote: {exc}") from exc
        runtime = doc.get("runtimeData")
        data: bytes | None = None
        data_type = None
        if runtime is not None:
            if not isinstance(runtime, dict) or runtime.get("dataType") not in ("Binary", "JSON"):
                raise _Refused("InvalidParameter", "runtimeData must be {data, dataType: Binary|JSON}.")
            try:
                data = lenient_b64decode(runtime.get("data"))
            except ValueError as exc:
                raise _Refused("InvalidParameter", f"runtimeData.data: {exc}") from exc
            data_type = runtime["dataType"]
        nonce = doc.get("nonce")
        if nonce is not None and not isinstance(nonce, str):
            raise _Refused("InvalidParameter", "nonce must be a string.")
        draft = doc.get("draftPolicyForAttestation")
        if draft is not None and not isinstance(draft, str):
            raise _Refused("InvalidParameter", "draftPolicyForAttestation must be a string.")

        try:
            quote = check_quote(raw, self.intel_roots, self.at())
        except QuoteRejected as exc:
            raise _Refused("InvalidParameter", f"Quote verification failed: {exc.detail}") from exc
        claims: dict[str, Any] = {
            **flat_tdx_claims(quote),
            "attester_tcb_status": self.tcb_status,
            "dbgstat": "enabled" if quote.body.debug else "disabled",
            "eat_profile": EAT_PROFILE,
            "intuse": "generic",
            "iss": instance,
            "jti": hashlib.sha256(uuid.uuid4().bytes).hexdigest(),
            **self.window(self.token_lifetime, self.seconds()),
            "x-ms-attestation-type": "tdxvm",
            "x-ms-policy-hash": policy_hash(draft if draft is not None else self.policy),
            "x-ms-ver": "1.0",
        }
        if self.report_debug:
            claims.update({"tdx_td_attributes_debug": True, "dbgstat": "enabled"})
        if self.compliance_status is not None:
            claims["x-ms-compliance-status"] = self.compliance_status
        if data is not None:
            if quote.body.report_data[:32] != hashlib.sha256(data).digest():
                raise _Refused("InvalidParameter", "The runtime data hash does not match the report data "
                               "(REPORT_DATA[0:32] must be SHA-256 of runtimeData.data).")
            if data_type == "JSON":
                try:
                    claims["x-ms-runtime"] = json.loads(data)
                except ValueError as exc:
                    raise _Refused("InvalidParameter", "runtimeData of dataType JSON is not JSON.") from exc
        if nonce is not None:
            claims["nonce"] = nonce
        if draft is not None:
            return jwt.encode(claims, "", algorithm="none", headers={"typ": "JWT"})  # unsecured: no key
        s = self.signers[self.signer]
        return jwt.encode(claims, s.key, algorithm="RS256",
                          headers={"jku": f"{instance}/certs", "kid": s.kid, "typ": "JWT"})
