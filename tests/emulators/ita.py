"""Intel Trust Authority (ITA) emulator: verifier nonce, TDX appraisal, PS384/RS256 tokens, ``/certs``.

Contract: Intel's public clients, go-connector and go-tdx (intel/trustauthority-client-for-go) and
the Python client (intel/trustauthority-client-for-python), and ITA's token documentation (its EAT
profile page). What it reproduces, and why each matters to a client:

* ``GET /appraisal/v2/nonce`` (and the pre-2024-09 ``/appraisal/v1/nonce``) needs ``x-api-key``
  (401 without it or with a wrong one: the real status is undocumented, 401 is the natural one)
  and answers **exactly** ``{"val","iat","signature"}``, standard base64 each: ``val`` decodes to
  88 ASCII bytes (itself base64 of 64 random bytes), ``iat`` to an ASCII time like
  ``2023-12-05 00:09:10 +0000 UTC``, ``signature`` to a 384-byte PS384 signature by the
  emulator's nonce key over ``val ‖ iat`` (decoded). go-connector decodes with
  ``DisallowUnknownFields``: one extra member would break it.
* ``POST /appraisal/v2/attest`` (and ``/appraisal/v1/attest``) accept the flat body and the v2
  ``{"tdx": {...}}`` body. The quote is verified (tests/emulators/quote.py); a ``verifier_nonce``
  must carry this emulator's signature, and REPORT_DATA must equal
  SHA-512(val ‖ iat ‖ runtime_data) (all base64-decoded) — without a nonce SHA-512(runtime_data);
  with neither, nothing is bound and nothing is checked. Any failure is 400 with a plain-text
  body (ITA's error body is undocumented: clients treat it as opaque text). The answer is exactly
  ``{"token": JWT}``.
* The token: PS384 by default, RS256 when ``token_signing_alg`` says so (anything else: 400);
  header ``{alg, jku: <portal>/certs, kid: <96 hex>, typ: JWT}``; claims v1 flat or, with
  ``layout="v2"``, TEE claims nested under ``"tdx"``; ``exp = iat + token_lifetime`` (300 s).
  Policies: each requested policy ID is matched or not per ``policy_verdicts`` /
  ``policy_default``; the token is **issued even when a policy does not match** (listed in
  ``policy_ids_unmatched``) unless ``policy_must_match`` is true, which gives 400.
* ``GET /certs`` (no API key): the token key listed twice, ``alg`` PS384 and RS256, same
  ``kid``/``n``/``e``, with ``x5c`` [leaf "… Attestation Token Signing", "… ATS Signing CA",
  "… Root CA"] (go-connector classifies the chain by those CN substrings).
* Every response carries ``request-id`` (the request's, else a fresh UUID) and ``trace-id``.

Trust anchors for a relying party: :meth:`ItaEmulator.jwks` (what ``/certs`` serves) or
:meth:`ItaEmulator.root_pem` (the chain's root). Switches: ``tcb_status`` (default ``UpToDate``),
``tcb_date``, ``advisory_ids`` (default ``["INTEL-SA-00837"]`` when not UpToDate, absent when
UpToDate), ``layout``, ``policy_default``/``policy_verdicts``, ``token_lifetime``, ``portal``
(default: the URL the client used), plus the common ones (clock, 429/503, replay:
tests/emulators/common.py).

Not modelled: SGX, NVGPU (``nvgpu`` in a body is a 400), the Azure and GCP attest paths, CRL
distribution points in the chain, nonce expiry (undocumented), the 500 KB body and rate limits.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import secrets
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

import jwt
from aiohttp import web
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from verifiers.local.evidence.tdx import TdxQuote

from .common import Emulator, b64, cert_der_b64, issue_cert, lenient_b64decode, rsa_jwk, rsa_key
from .quote import QuoteRejected, check_quote, flat_tdx_claims

__all__ = ["ItaEmulator", "ItaKeys", "nonce_report_data"]

ISSUER = "Intel Trust Authority"
ALGS = ("PS384", "RS256")
MAX_POLICY_IDS = 10
_PSS = padding.PSS(mgf=padding.MGF1(hashes.SHA384()), salt_length=48)


def nonce_report_data(nonce: dict[str, str] | None, runtime_data: bytes) -> bytes:
    """REPORT_DATA an ITA client puts in its quote: SHA-512(val ‖ iat ‖ runtime_data), val and iat
    base64-decoded from the nonce response; SHA-512(runtime_data) without a nonce (go-tdx
    ``tdx_adapter.go``)."""
    prefix = b""
    if nonce is not None:
        prefix = lenient_b64decode(nonce["val"]) + lenient_b64decode(nonce["iat"])
    return hashlib.sha512(prefix + runtime_data).digest()


@dataclass(eq=False, frozen=True)
class ItaKeys:
    """The emulator's keys; generate once and share between emulators to keep tests fast.

    ``nonce`` and ``token`` are RSA-3072 like ITA's (a 384-byte signature); the two CA keys are
    RSA-2048 (their size is invisible to a client and RSA generation is slow).
    """

    nonce: rsa.RSAPrivateKey
    token: rsa.RSAPrivateKey
    ca: rsa.RSAPrivateKey
    root: rsa.RSAPrivateKey

    @classmethod
    def generate(cls, bits: int = 3072, ca_bits: int = 2048) -> ItaKeys:
        return cls(rsa_key(bits), rsa_key(bits), rsa_key(ca_bits), rsa_key(ca_bits))


class _BadRequest(Exception):
    pass


@dataclass(eq=False, kw_only=True)
class ItaEmulator(Emulator):
    """An ITA API and portal on one server. See the module docstring for the switches."""

    intel_roots: Sequence[x509.Certificate] = ()
    api_key: str = "ita-emulator-api-key"
    keys: ItaKeys = field(default_factory=ItaKeys.generate)
    portal: str | None = None
    tcb_status: str = "UpToDate"
    tcb_date: str = "2024-03-13T00:00:00Z"
    advisory_ids: list[str] | None = None
    layout: Literal["v1", "v2"] = "v1"
    policy_default: bool = True
    policy_verdicts: dict[str, bool] = field(default_factory=dict)
    token_lifetime: int = 300
    verifier_instance_ids: list[str] = field(default_factory=lambda: [str(uuid.uuid4()) for _ in range(3)])
    name_prefix: str = "ITA Emulator"

    key_paths: ClassVar[tuple[str, ...]] = ("/certs",)

    def __post_init__(self) -> None:
        p = self.name_prefix
        self.root = issue_cert(f"{p} Root CA", self.keys.root, ca=True, org="Intel Corporation")
        self.ca = issue_cert(f"{p} ATS Signing CA", self.keys.ca, issuer=f"{p} Root CA", issuer_key=self.keys.root,
                             ca=True, org="Intel Corporation")
        self.leaf = issue_cert(f"{p} Attestation Token Signing", self.keys.token, issuer=f"{p} ATS Signing CA",
                               issuer_key=self.keys.ca, ca=False, org="Intel Corporation")
        self.kid = hashlib.sha384(self.leaf.public_bytes(serialization.Encoding.DER)).hexdigest()

    # -- anchors -------------------------------------------------------------------------------

    def jwks(self) -> dict[str, Any]:
        """``/certs``: the token key twice (PS384, RS256), same kid/n/e, with its x5c chain."""
        public = self.keys.token.public_key()
        base = {**rsa_jwk(public), "kid": self.kid, "x5c": [cert_der_b64(c) for c in (self.leaf, self.ca, self.root)]}
        return {"keys": [dict(sorted({"alg": alg, **base}.items())) for alg in ALGS]}

    def root_pem(self) -> bytes:
        return self.root.public_bytes(serialization.Encoding.PEM)

    def nonce_public_key(self) -> rsa.RSAPublicKey:
        return self.keys.nonce.public_key()

    # -- HTTP ----------------------------------------------------------------------------------

    def routes(self, app: web.Application) -> None:
        for version in ("v1", "v2"):
            app.router.add_get(f"/appraisal/{version}/nonce", self.nonce)
            app.router.add_post(f"/appraisal/{version}/attest", self.attest)
        app.router.add_get("/certs", self.certs)

    def decorate(self, request: web.Request, response: web.StreamResponse) -> None:
        response.headers["request-id"] = request.headers.get("request-id", str(uuid.uuid4()))[:128]
        response.headers["trace-id"] = uuid.uuid4().hex

    def _authorized(self, request: web.Request) -> bool:
        return request.headers.get("x-api-key") == self.api_key

    async def certs(self, request: web.Request) -> web.StreamResponse:
        return web.json_response(self.jwks())

    async def nonce(self, request: web.Request) -> web.StreamResponse:
        if not self._authorized(request):
            return self.error(401, "Unauthorized: missing or invalid x-api-key")
        return web.json_response(self.issue_nonce())

    def issue_nonce(self) -> dict[str, str]:
        """A fresh verifier nonce in the wire form (three base64 strings)."""
        val = b64(secrets.token_bytes(64)).encode()  # 88 ASCII bytes, as in ITA's real nonces
        iat = time.strftime("%Y-%m-%d %H:%M:%S +0000 UTC", time.gmtime(self.now())).encode()
        signature = self.keys.nonce.sign(val + iat, _PSS, hashes.SHA384())
        return {"val": b64(val), "iat": b64(iat), "signature": b64(signature)}

    async def attest(self, request: web.Request) -> web.StreamResponse:
        if not self._authorized(request):
            return self.error(401, "Unauthorized: missing or invalid x-api-key")
        try:
            doc = json.loads(await request.text())
        except ValueError:
            return self.error(400, "request body is not JSON")
        if not isinstance(doc, dict):
            return self.error(400, "request body is not a JSON object")
        if self.replay_token is not None:
            return self._token_response(self.replay_token)
        try:
            portal = self.portal or self.base_url(request)
            return self._token_response(self.record(self._appraise(doc, portal)))
        except _BadRequest as exc:
            return self.error(400, str(exc))

    def _token_response(self, token: str) -> web.Response:
        return web.json_response({"token": token})

    # -- appraisal -----------------------------------------------------------------------------

    def _appraise(self, doc: dict[str, Any], portal: str) -> str:
        if "nvgpu" in doc:
            raise _BadRequest("nvgpu evidence is not supported by this emulator")
        evidence = doc.get("tdx", doc)
        if not isinstance(evidence, dict):
            raise _BadRequest("tdx must be an object")
        try:
            raw = lenient_b64decode(evidence.get("quote"))
            runtime = lenient_b64decode(evidence["runtime_data"]) if evidence.get("runtime_data") else None
        except ValueError as exc:
            raise _BadRequest(f"quote or runtime_data: {exc}") from exc
        nonce = evidence.get("verifier_nonce")
        alg = doc.get("token_signing_alg") or "PS384"
        if alg not in ALGS:
            raise _BadRequest(f"token_signing_alg {alg!r} is not supported (PS384 or RS256)")
        policy_ids = doc.get("policy_ids") or []
        if not isinstance(policy_ids, list) or not all(isinstance(p, str) for p in policy_ids):
            raise _BadRequest("policy_ids must be a list of strings")
        if len(policy_ids) > MAX_POLICY_IDS:
            raise _BadRequest(f"at most {MAX_POLICY_IDS} policy IDs")

        try:
            quote = check_quote(raw, self.intel_roots, self.at())
        except QuoteRejected as exc:
            raise _BadRequest(f"quote verification failed: {exc.detail}") from exc
        if nonce is not None:
            self._check_nonce(nonce)
        if nonce is not None or runtime is not None:
            expected = nonce_report_data(nonce, runtime or b"")
            if quote.body.report_data != expected:
                raise _BadRequest("REPORT_DATA does not match SHA-512(nonce.val || nonce.iat || runtime_data)")

        matched = [p for p in policy_ids if self.policy_verdicts.get(p, self.policy_default)]
        unmatched = [p for p in policy_ids if p not in matched]
        if unmatched and doc.get("policy_must_match") is True:
            raise _BadRequest(f"policies not matched: {', '.join(unmatched)}")

        tee = self._tee_claims(quote, raw, runtime, nonce)
        now = self.seconds()
        top: dict[str, Any] = {
            "ver": "1.0.0" if self.layout == "v1" else "2.0.0",
            "verifier_instance_ids": list(self.verifier_instance_ids),
            "eat_profile": f"{portal}/eat_profile.html",
            "intuse": "generic",
            "jti": str(uuid.uuid4()),
            "iss": ISSUER,
            **self.window(self.token_lifetime, now),
        }
        if policy_ids:
            top["policy_ids_matched"] = [self._policy(p) for p in matched] or None
            top["policy_ids_unmatched"] = [self._policy(p) for p in unmatched] or None
            top["policy_defined_claims"] = None
        if self.layout == "v1":
            claims = {**tee, **top}
        else:
            claims = {**top, "appraisal": {"method": "default", "ver": 2}, "tdx": tee}
        return self._sign(claims, alg, portal)

    def _check_nonce(self, nonce: Any) -> None:
        if not isinstance(nonce, dict) or set(nonce) != {"val", "iat", "signature"}:
            raise _BadRequest("verifier_nonce must be {val, iat, signature}")
        try:
            val, iat, sig = (lenient_b64decode(nonce[k]) for k in ("val", "iat", "signature"))
            self.keys.nonce.public_key().verify(sig, val + iat, _PSS, hashes.SHA384())
        except (ValueError, InvalidSignature) as exc:
            raise _BadRequest("verifier_nonce was not issued by this service") from exc

    @staticmethod
    def _policy(policy_id: str) -> dict[str, str]:
        return {"id": policy_id, "version": "v1", "hash": b64(hashlib.sha384(policy_id.encode()).digest())}

    def _tee_claims(self, quote: TdxQuote, raw: bytes, runtime: bytes | None, nonce: Any) -> dict[str, Any]:
        debug = bool(quote.body.debug)
        out: dict[str, Any] = {
            **flat_tdx_claims(quote, ita_raw=raw),
            "attester_type": "TDX",
            "attester_tcb_status": self.tcb_status,
            "attester_tcb_date": self.tcb_date,
            "dbgstat": "enabled" if debug else "disabled",
        }
        advisories = self.advisory_ids if self.advisory_ids is not None else (
            [] if self.tcb_status == "UpToDate" else ["INTEL-SA-00837"])
        if advisories:
            out["attester_advisory_ids"] = list(advisories)
        if runtime is not None:
            out["attester_held_data"] = b64(runtime)
            if self.layout == "v2":
                with contextlib.suppress(ValueError):  # only JSON runtime data is surfaced
                    out["attester_runtime_data"] = json.loads(runtime)
        if nonce is not None:
            out["verifier_nonce"] = dict(nonce)
        return out

    def _sign(self, claims: dict[str, Any], alg: str, portal: str) -> str:
        return jwt.encode(claims, self.keys.token, algorithm=alg,
                          headers={"jku": f"{portal}/certs", "kid": self.kid, "typ": "JWT"})
