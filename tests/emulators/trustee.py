"""Confidential Containers Trustee attestation-service (restful-as) emulator: ``/attestation`` → bare EAR JWT.

Contract: Trustee's documentation (``attestation-service/docs/restful-as.md``), checked against the
Trustee source (confidential-containers/trustee@78962cd: ``attestation-service/src/bin/restful/
mod.rs``, ``src/lib.rs``, ``src/ear_token/broker.rs``, ``ear_default_policy_cpu.rego``,
``deps/verifier/src/tdx/``). What it reproduces, and why:

* ``POST /attestation`` ``{"verification_requests": [{"tee": "tdx", "evidence": <base64url, no
  padding, of the evidence JSON>, "runtime_data": {"raw": <base64url-nopad>} | {"structured":
  {...}}, "init_data": {"init_data_digest": <base64url-nopad>}, "runtime_data_hash_algorithm":
  "sha256"|"sha384"|"sha512"}], "policy_ids": [...]}``. The TDX evidence JSON is Trustee's
  ``{"quote": <standard base64 of the quote>, "cc_eventlog": <optional>}``. Padding in a
  base64url field is an error (``URL_SAFE_NO_PAD``). The quote is verified
  (tests/emulators/quote.py).
* REPORT_DATA binding (``lib.rs parse_runtime_data``, ``deps/verifier regularize_data``):
  ``structured`` is serialised with sorted keys and compact separators and hashed with the
  chosen algorithm (default **SHA-384**); ``raw`` is used **as given, not hashed** (see the
  deviation note below); either is then right-padded with zeros (or truncated) to 64 bytes and
  must equal REPORT_DATA. ``init_data_digest`` is regularised to 48 bytes and must equal
  MRCONFIGID. Without ``runtime_data`` nothing is checked.
* Success: 200 with the **bare JWT** as the body (not JSON). Any failure of the evaluation (bad
  base64, bad evidence, a quote that does not verify, a binding mismatch, an unknown policy):
  HTTP 500 with the plain-text body ``An internal error occured: \\n0: …\\n1: …`` (Trustee's typo
  and its anyhow error chain). A body that does not deserialize into the request struct (not
  JSON, a missing field, an unknown ``runtime_data`` variant) or a non-JSON content type is
  rejected earlier by actix's ``web::Json`` extractor (no custom ``JsonConfig`` in
  ``restful-as.rs``): 400 with ``Json deserialize error: …`` / ``Content type error``.
* The EAR: ES256, header ``{"alg": "ES256", "typ": "JWT", "jwk": {EC P-256 public key, "alg":
  "ES256"[, "x5c"]}}`` (``x5c`` when ``with_cert``). Claims: ``eat_profile``
  "tag:github.com,2024:confidential-containers/Trustee", ``iat``, ``exp`` = iat + 300,
  ``iss`` "CoCo-Attestation-Service", ``ear.verifier-id`` {developer, build}, ``submods``
  {``cpu0``: {``ear.status``, ``ear.trustworthiness-vector``, ``ear.appraisal-policy-id`` (the
  first policy ID), ``ear.veraison.annotated-evidence`` {``init_data`` (MRCONFIGID hex),
  ``init_data_claims``, ``report_data`` (REPORT_DATA hex), ``runtime_data_claims`` (the
  structured object, null for raw), ``tdx`` {parsed quote, ``td_attributes``, ``tcb_status``,
  ``advisory_ids``, …}}}}. **No eat_nonce** (Trustee sets ``nonce: None``).
* The vector follows the default CPU rego for TDX: defaults hardware 97, executables 33,
  configuration 36, the rest 0; hardware 2 when ``mr_td`` is in the reference values and the
  TCB status is UpToDate; configuration 2 when the TD is not debug and ``xfam`` is in the
  reference values; executables 4 when ``rtmr_1`` and ``rtmr_2`` are (3 needs UEFI event-log
  digests of kernel and cmdline, which the emulator has no event log for). ``ear.status`` is the
  worst AR4SI tier in the vector (0/1 none, 2-31 affirming, 32-95 warning, 96-127
  contraindicated).
* ``GET /.well-known/jwks.json`` ``{"keys": [{"kty": "EC", "crv": "P-256", "alg": "ES256", "x",
  "y"[, "x5c"]}]}`` — no ``kid``. ``GET /healthz``.

Trust anchor: :meth:`TrusteeEmulator.jwks` (the AS key; the header ``jwk`` is self-asserted and
never an anchor). Switches: ``tcb_status`` (default UpToDate), ``advisory_ids``, ``debug``
(``None``: from the quote; ``True``/``False`` overrides what the policy sees), ``reference_values``
(RVPS-style ``{"mr_td": [hex…], "xfam": [...], "rtmr_1": [...], "rtmr_2": [...]}``;
:meth:`TrusteeEmulator.reference_values_of` builds a matching set from a quote),
``vector_override`` (claims a custom policy would set), ``policies`` (known policy IDs),
``down`` (every path answers 503, as the ingress in front of a stopped AS would),
``with_cert``, ``hash_raw_runtime_data``, ``token_lifetime``, plus the common ones.

Deviations, each following Trustee's source: (1) Trustee's ``docs/restful-as.md`` says ``raw``
runtime data is "accumulated into a digest"; ``lib.rs parse_runtime_data`` uses raw bytes
**unhashed** as the expected REPORT_DATA (``RuntimeData::Raw(raw) => Ok((Some(raw), Value::Null))``,
and its unit test ``parse_runtimedata_json_binding`` asserts it), so this emulator does too;
``hash_raw_runtime_data=True`` reproduces the documentation's reading. (2) Not every failure is a
500: evaluation errors are, bodies the JSON extractor refuses get 400 (above). (3) A reference-value
match does not raise instance-identity or runtime-opaque: the default rego never sets them (they
stay 0), and executables is 4, not 3, without an event log; ``vector_override`` can set any claim.
Not modelled: TEEs other than ``tdx`` (500), ``init_data_toml`` (500), the KBS RCAR flow
(``kbs/docs/kbs_attestation_protocol.md``), ``/challenge`` and ``/policy``.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import jwt
from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec

from verifiers.local.evidence.tdx import TdxQuote, parse_quote

from .common import Emulator, b64url, cert_der_b64, issue_cert, strict_b64url_nopad_decode
from .quote import QuoteRejected, check_quote, trustee_tdx_claims

__all__ = ["TrusteeEmulator", "ar4si_status", "structured_report_data"]

EAT_PROFILE = "tag:github.com,2024:confidential-containers/Trustee"
DEFAULTS = {"instance-identity": 0, "configuration": 36, "executables": 33, "file-system": 0, "hardware": 97,
            "runtime-opaque": 0, "storage-opaque": 0, "sourced-data": 0}
_HASHES = {"sha256": hashlib.sha256, "sha384": hashlib.sha384, "sha512": hashlib.sha512}


def canonical_json(value: Any) -> bytes:
    """Trustee's hash input for ``structured`` runtime data: keys sorted at every level, compact."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def structured_report_data(value: Any, algorithm: str = "sha384") -> bytes:
    """REPORT_DATA a Trustee client puts in its quote for ``{"structured": value}``: the digest, zero-padded to 64."""
    return _regularize(_HASHES[algorithm](canonical_json(value)).digest(), 64)


def _regularize(data: bytes, size: int) -> bytes:
    return data[:size] + bytes(max(0, size - len(data)))


def ar4si_status(vector: dict[str, int]) -> str:
    """The worst tier among the claims (veraison/ear ``update_status_from_trust_vector``)."""
    rank = {"none": 0, "affirming": 1, "warning": 2, "contraindicated": 3}

    def tier(v: int) -> str:
        if 2 <= v <= 31:
            return "affirming"
        if 32 <= v <= 95:
            return "warning"
        if 96 <= v <= 127:
            return "contraindicated"
        return "none"

    return max((tier(v) for v in vector.values()), key=rank.__getitem__, default="none")


_TEES = frozenset({"az-snp-vtpm", "sev", "sgx", "snp", "tdx", "cca", "csv", "sample", "sampledevice", "az-tdx-vtpm",
                   "se", "hygondcu"})


def _check_shape(doc: Any) -> None:
    """What serde checks when actix deserializes ``AttestationRequest`` (unknown fields are ignored;
    ``runtime_data``/``init_data`` are externally tagged enums: exactly one known key)."""
    if not isinstance(doc, dict):
        raise ValueError("expected struct AttestationRequest")
    requests, policy_ids = doc.get("verification_requests"), doc.get("policy_ids")
    if not isinstance(requests, list):
        raise ValueError("missing field `verification_requests`")
    if not isinstance(policy_ids, list) or not all(isinstance(p, str) for p in policy_ids):
        raise ValueError("missing field `policy_ids` (a list of strings)")
    for req in requests:
        if not isinstance(req, dict) or not isinstance(req.get("tee"), str) or not isinstance(req.get("evidence"), str):
            raise ValueError("a verification request needs `tee` and `evidence` strings")
        runtime, init, alg = req.get("runtime_data"), req.get("init_data"), req.get("runtime_data_hash_algorithm")
        if runtime is not None and not (isinstance(runtime, dict) and len(runtime) == 1 and (
                "structured" in runtime or isinstance(runtime.get("raw"), str))):
            raise ValueError("unknown variant of `runtime_data`, expected `raw` or `structured`")
        if init is not None and not (isinstance(init, dict) and len(init) == 1 and (
                isinstance(init.get("init_data_digest"), str) or isinstance(init.get("init_data_toml"), str))):
            raise ValueError("unknown variant of `init_data`, expected `init_data_digest` or `init_data_toml`")
        if alg is not None and not isinstance(alg, str):
            raise ValueError("`runtime_data_hash_algorithm` must be a string")


def _init_data(init: dict[str, str] | None) -> bytes | None:
    if init is None:
        return None
    if "init_data_digest" in init:
        try:
            return strict_b64url_nopad_decode(init["init_data_digest"])
        except ValueError as exc:
            raise _Failure("decode given Init Data", "base64 decode raw init data", str(exc)) from exc
    raise _Failure("attestation report evaluate", "init_data_toml is not supported by this emulator")


class _Failure(Exception):
    """An error stack, outermost context first (anyhow's ``chain()``)."""

    def __init__(self, *causes: str) -> None:
        super().__init__(causes[-1])
        self.causes = causes


@dataclass(eq=False, kw_only=True)
class TrusteeEmulator(Emulator):
    """A restful-as instance with the default EAR policy and an RVPS holding ``reference_values``."""

    intel_roots: Sequence[x509.Certificate] = ()
    key: ec.EllipticCurvePrivateKey = field(default_factory=lambda: ec.generate_private_key(ec.SECP256R1()))
    with_cert: bool = False
    issuer: str = "CoCo-Attestation-Service"
    build: str = "attestation-service 0.1.0"
    token_lifetime: int = 300
    tcb_status: str = "UpToDate"
    tcb_date: str = "2024-03-13T00:00:00Z"
    advisory_ids: list[str] = field(default_factory=list)
    debug: bool | None = None
    reference_values: dict[str, list[str]] = field(default_factory=dict)
    vector_override: dict[str, int] = field(default_factory=dict)
    policies: set[str] = field(default_factory=lambda: {"default"})
    down: bool = False
    hash_raw_runtime_data: bool = False

    key_paths: ClassVar[tuple[str, ...]] = ("/.well-known/jwks.json", "/healthz")

    def __post_init__(self) -> None:
        self.cert = issue_cert("trustee-emulator", self.key, ca=False) if self.with_cert else None

    # -- anchors -------------------------------------------------------------------------------

    def public_jwk(self) -> dict[str, Any]:
        nums = self.key.public_key().public_numbers()
        jwk: dict[str, Any] = {"kty": "EC", "crv": "P-256", "alg": "ES256", "x": b64url(nums.x.to_bytes(32, "big")),
                               "y": b64url(nums.y.to_bytes(32, "big"))}
        if self.cert is not None:
            jwk["x5c"] = [cert_der_b64(self.cert)]
        return jwk

    def jwks(self) -> dict[str, Any]:
        """``/.well-known/jwks.json``: the one AS key, no ``kid``."""
        return {"keys": [self.public_jwk()]}

    @staticmethod
    def reference_values_of(quote: bytes) -> dict[str, list[str]]:
        """RVPS values that make the default policy affirm *quote* (mr_td, xfam, rtmr_1, rtmr_2)."""
        body = parse_quote(quote).body
        return {"mr_td": [body.mr_td.hex()], "xfam": [body.xfam.hex()], "rtmr_1": [body.rtmrs[1].hex()],
                "rtmr_2": [body.rtmrs[2].hex()]}

    # -- HTTP ----------------------------------------------------------------------------------

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/attestation", self.attestation)
        app.router.add_get("/.well-known/jwks.json", self.serve_jwks)
        app.router.add_get("/healthz", self.healthz)

    def _scripted_failure(self, path: str) -> int | None:
        return 503 if self.down else super()._scripted_failure(path)

    def error(self, status: int, message: str) -> web.Response:
        if status == 500:
            return self._internal(_Failure(message))
        return web.Response(status=status, text=message)

    @staticmethod
    def _internal(failure: _Failure) -> web.Response:
        stack = "\n".join(f"{i}: {cause}" for i, cause in enumerate(failure.causes))
        return web.Response(status=500, text=f"An internal error occured: \n{stack}")

    async def serve_jwks(self, request: web.Request) -> web.StreamResponse:
        return web.json_response(self.jwks())

    async def healthz(self, request: web.Request) -> web.StreamResponse:
        return web.Response(text="")

    async def attestation(self, request: web.Request) -> web.StreamResponse:
        # actix's Json extractor runs before the handler: a wrong content type or a body that does
        # not deserialize into AttestationRequest is its 400, with its error text.
        subtype = request.content_type.split("/")[-1]
        if subtype != "json" and not subtype.endswith("+json"):
            return web.Response(status=400, text="Content type error")
        try:
            doc = json.loads(await request.text())
            _check_shape(doc)
        except ValueError as exc:
            return web.Response(status=400, text=f"Json deserialize error: {exc}")
        if self.replay_token is not None:
            return web.Response(text=self.replay_token)
        try:
            token = self._evaluate(doc["verification_requests"], doc["policy_ids"] or ["default"])
        except _Failure as exc:
            return self._internal(exc)
        return web.Response(text=self.record(token))

    # -- evaluation ----------------------------------------------------------------------------

    def _evaluate(self, requests: list[dict[str, Any]], policy_ids: list[str]) -> str:
        decoded = [self._decode(req) for req in requests]  # restful/mod.rs, before the service is called
        if not decoded:
            raise _Failure("attestation report evaluate", "No verification requests provided.")
        submods: dict[str, Any] = {}
        for i, (raw, expected, runtime_claims, init_digest) in enumerate(decoded):
            annotated = self._verify(raw, expected, runtime_claims, init_digest)
            vector = self._vector(annotated["tdx"])
            submods[f"cpu{i}"] = {"ear.status": ar4si_status(vector), "ear.trustworthiness-vector": vector,
                                  "ear.appraisal-policy-id": policy_ids[0],
                                  "ear.veraison.annotated-evidence": annotated}
        if policy_ids[0] not in self.policies:
            raise _Failure("attestation report evaluate", f"Policy {policy_ids[0]}_cpu not found")
        now = self.seconds()
        claims = {"eat_profile": EAT_PROFILE, "iat": now,
                  "ear.verifier-id": {"developer": "https://confidentialcontainers.org", "build": self.build},
                  "submods": submods, "exp": now + self.token_lifetime, "iss": self.issuer}
        return jwt.encode(claims, self.key, algorithm="ES256", headers={"typ": "JWT", "jwk": self.public_jwk()})

    def _decode(self, req: dict[str, Any]) -> tuple[bytes, bytes | None, Any, bytes | None]:
        """(quote, expected REPORT_DATA, runtime_data_claims, expected MRCONFIGID) of one request."""
        try:
            evidence = strict_b64url_nopad_decode(req["evidence"])
        except ValueError as exc:
            raise _Failure("base64 decode evidence", str(exc)) from exc
        try:
            doc = json.loads(evidence)
        except ValueError as exc:
            raise _Failure("failed to parse evidence as JSON", str(exc)) from exc
        if req["tee"] not in _TEES:
            raise _Failure(f"tee `{req['tee']} not supported`")
        if req["tee"] != "tdx":
            raise _Failure(f"tee `{req['tee']}` is not verified by this emulator (tdx only)")
        algorithm = req.get("runtime_data_hash_algorithm") or "sha384"
        runtime = req.get("runtime_data")
        raw_runtime = None
        if runtime is not None and "raw" in runtime:
            try:
                raw_runtime = strict_b64url_nopad_decode(runtime["raw"])
            except ValueError as exc:
                raise _Failure("decode given Runtime Data", "base64 decode raw runtime data", str(exc)) from exc
        init_digest = _init_data(req.get("init_data"))
        if algorithm not in _HASHES:
            raise _Failure("parse runtime data HashAlgorithm failed", f"unsupported hash algorithm {algorithm}")
        expected: bytes | None = None
        runtime_claims: Any = None
        if raw_runtime is not None:
            expected = _HASHES[algorithm](raw_runtime).digest() if self.hash_raw_runtime_data else raw_runtime
        elif runtime is not None:
            runtime_claims = runtime["structured"]
            expected = _HASHES[algorithm](canonical_json(runtime_claims)).digest()
        try:
            if not isinstance(doc, dict) or not isinstance(doc.get("quote"), str):
                raise ValueError("missing field `quote`")
            raw = base64.b64decode(doc["quote"], validate=True)
        except ValueError as exc:
            raise _Failure("attestation report evaluate",
                           f"Verifier evaluate failed: Deserialize TDX Evidence failed: {exc}") from exc
        return raw, expected, runtime_claims, init_digest

    def _verify(self, raw: bytes, expected: bytes | None, runtime_claims: Any,
                init_digest: bytes | None) -> dict[str, Any]:
        try:
            quote = check_quote(raw, self.intel_roots, self.at())
        except QuoteRejected as exc:
            raise _Failure("attestation report evaluate", f"Verifier evaluate failed: {exc.detail}") from exc
        body = quote.body
        if expected is not None and _regularize(expected, 64) != body.report_data:
            raise _Failure("attestation report evaluate",
                           "Verifier evaluate failed: REPORT_DATA is different from that in TDX Quote")
        if init_digest is not None and _regularize(init_digest, 48) != body.mr_config_id:
            raise _Failure("attestation report evaluate",
                           "Verifier evaluate failed: MRCONFIGID is different from that in TDX Quote")
        return {"init_data": body.mr_config_id.hex(), "init_data_claims": None, "report_data": body.report_data.hex(),
                "runtime_data_claims": runtime_claims, "tdx": self._tdx_claims(quote)}

    def _tdx_claims(self, quote: TdxQuote) -> dict[str, Any]:
        claims = trustee_tdx_claims(quote, tcb_status=self.tcb_status, advisory_ids=self.advisory_ids,
                                    tcb_date=self.tcb_date)
        if self.debug is not None:
            claims["td_attributes"]["debug"] = self.debug
        return claims

    def _vector(self, tdx: dict[str, Any]) -> dict[str, int]:
        """The default CPU rego's TDX rules over the claims the policy sees."""
        body = tdx["quote"]["body"]

        def known(name: str) -> bool:
            return body[name] in self.reference_values.get(name, [])

        vector = dict(DEFAULTS)
        if (tdx["quote"]["header"]["tee_type"] == "81000000" and known("mr_td") and tdx["tcb_status"] == "UpToDate"
                and tdx["collateral_expiration_status"] == "0"):
            vector["hardware"] = 2
        if tdx["td_attributes"]["debug"] is False and known("xfam"):
            vector["configuration"] = 2
        if known("rtmr_1") and known("rtmr_2"):
            vector["executables"] = 4
        vector.update(self.vector_override)
        return vector

