"""``kind = "ita"``: Intel Trust Authority, appraising TDX quotes.

Two phases (federation/binding.py)::

    phase 1  GET  {url}/appraisal/v2/nonce   x-api-key          -> {"val","iat","signature"} (exactly)
             the challenge is that object as compact JSON (sorted keys); its prefix is
             base64decode(val) ‖ base64decode(iat), which starts the federation's REPORT_DATA input
    phase 2  POST {url}/appraisal/v2/attest  x-api-key, flat body:
             {"quote", "runtime_data": b64(binding.runtime_data), "verifier_nonce": {…},
              "policy_ids", "token_signing_alg", "policy_must_match"}     -> {"token": JWT} (exactly)

ITA checks REPORT_DATA = SHA-512(val ‖ iat ‖ runtime_data), which is the federation's
``binding.report_data`` because the engine made ``val ‖ iat`` the binding's prefix. Without a
challenge for this session (``verifier_nonce = false``, phase 1 failed, or a one-shot appraisal)
the request carries no ``verifier_nonce`` and ``runtime_data = b64(binding.hashed)``: ITA then
checks SHA-512(runtime_data), again ``binding.report_data``. Either way ITA binds natively.

The token is returned raw (``application/jwt``); the ``ita`` checker (verifiers/vendor/ita.py)
verifies it with :attr:`ItaBackend.expect` and the session's challenge
(``Check.binding.challenges[expect["name"]]``).
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, Literal

import aiohttp
from yarl import URL

from federation.binding import Binding
from federation.errors import ConfigError, MalformedError, UsageError
from federation.evidence import Evidence

from ..base import RawResult, session_binding
from ..registry import Kind, VerifierSpec, register
from ._vendor import (
    JWT,
    TDX_QUOTE,
    TRANSPORT_OPTIONS,
    Secret,
    b64decode_strict,
    breaker_from,
    compact_jws,
    config_errors,
    require_media_type,
    secret_from,
    str_list,
    strict_json,
    transport_from,
    vendor_error,
)
from .breaker import CircuitBreaker
from .http import HttpBackend, HttpClient, TransportOptions

__all__ = ["DEFAULT_ISSUER", "ItaBackend", "MAX_POLICY_IDS"]

DEFAULT_ISSUER = "Intel Trust Authority"
SigningAlg = Literal["PS384", "RS256"]

MAX_POLICY_IDS = 10  # Intel's python client: POLICY_IDS_MAX_LEN
MAX_NONCE_RESPONSE = 4 << 10  # bytes (Intel's Go client caps the nonce response at 4 KiB)
MAX_TOKEN_RESPONSE = 64 << 10  # bytes (and the attest response at 64 KiB)
ALGORITHMS = ("PS384", "RS256")  # what ITA signs tokens with (go-connector validJwtTokenSignAlgs)
DEFAULT_ALGORITHM: SigningAlg = "PS384"
API_VERSIONS = ("v1", "v2")
ACCEPTED = frozenset({TDX_QUOTE})
_NONCE_MEMBERS = ("iat", "signature", "val")


def _nonce_object(doc: Mapping[str, Any], what: str) -> dict[str, str]:
    """ITA's verifier nonce, checked: exactly val, iat, signature, each standard base64."""
    for k in _NONCE_MEMBERS:
        if not b64decode_strict(doc[k], f"{what}: {k}"):
            raise MalformedError(f"{what}: {k} is empty")
    return {k: doc[k] for k in _NONCE_MEMBERS}


def _challenge_object(challenge: bytes) -> dict[str, str]:
    try:
        doc = json.loads(challenge)
    except (ValueError, RecursionError) as exc:
        raise MalformedError("ITA challenge: not JSON") from exc
    if not isinstance(doc, dict) or sorted(doc) != list(_NONCE_MEMBERS):
        raise MalformedError("ITA challenge: not a verifier nonce {val, iat, signature}")
    return _nonce_object(doc, "ITA challenge")


class ItaBackend(HttpBackend):
    """A client of Intel Trust Authority's appraisal API (TDX quotes)."""

    kind = "ita"

    def __init__(self, name: str, operator: str, url: str | URL, *, api_key: str | Secret,
                 policy_ids: tuple[str, ...] = (), policy_must_match: bool = False,
                 token_signing_alg: SigningAlg = DEFAULT_ALGORITHM, verifier_nonce: bool = True,
                 issuer: str = DEFAULT_ISSUER, api_version: str = "v2", transport: TransportOptions | None = None,
                 breaker: CircuitBreaker | None = None, session: aiohttp.ClientSession | None = None) -> None:
        if token_signing_alg not in ALGORITHMS:
            raise ConfigError(f"must be one of {', '.join(ALGORITHMS)}", key="token_signing_alg")
        if api_version not in API_VERSIONS:
            raise ConfigError(f"must be one of {', '.join(API_VERSIONS)}", key="api_version")
        if len(policy_ids) > MAX_POLICY_IDS:
            raise ConfigError(f"at most {MAX_POLICY_IDS} entries", key="policy_ids")
        if not issuer:
            raise ConfigError("must not be empty", key="issuer")
        self.name = name
        self.operator = operator
        self._api_key = api_key if isinstance(api_key, Secret) else Secret(api_key)
        self.http = HttpClient(URL(str(url)), transport or TransportOptions(max_response=MAX_TOKEN_RESPONSE),
                               session=session)
        self.policy_ids = tuple(policy_ids)
        self.policy_must_match = policy_must_match
        self.token_signing_alg: SigningAlg = token_signing_alg
        self.verifier_nonce = verifier_nonce
        self.api_version = api_version
        self.breaker = breaker or CircuitBreaker()
        # Static expectations for the ita checker. The per-session verifier nonce is not here (this
        # mapping is per backend, not per session): it is Check.binding.challenges[expect["name"]],
        # absent when the request carried no verifier_nonce.
        self.expect: Mapping[str, Any] = MappingProxyType({
            "name": name, "issuer": issuer, "algorithms": (token_signing_alg,), "policy_ids": self.policy_ids,
            "policy_must_match": policy_must_match,
        })


    def _headers(self, *, body: bool = False) -> dict[str, str]:
        headers = {"x-api-key": self._api_key.reveal(), "Accept": "application/json"}
        if body:
            headers["Content-Type"] = "application/json"
        return headers

    # --- phase 1 --------------------------------------------------------------------------------

    async def challenge(self, nonce: bytes, deadline: float) -> bytes | None:
        """ITA's verifier nonce as compact JSON, or None when ``verifier_nonce`` is off. *nonce*
        is not sent: ITA mints its own, and the federation's nonce reaches it in runtime_data."""
        if not self.verifier_nonce:
            return None
        loop = asyncio.get_running_loop()
        with self.breaker.attempt(timed_out=lambda: loop.time() >= deadline):
            resp = await self.http.request("GET", self.http.url(f"appraisal/{self.api_version}/nonce"),
                                           deadline=deadline, what="ITA nonce", headers=self._headers())
            if resp.status != 200:
                raise vendor_error(resp, "ITA nonce", secrets=(self._api_key,))
            doc = strict_json(resp, "ITA nonce", required=_NONCE_MEMBERS, max_size=MAX_NONCE_RESPONSE)
            return json.dumps(_nonce_object(doc, "ITA nonce"), sort_keys=True, separators=(",", ":")).encode()

    def report_data_prefix(self, challenge: bytes) -> bytes:
        """``val ‖ iat`` (base64-decoded): ITA hashes them before the runtime data."""
        obj = _challenge_object(challenge)
        return base64.b64decode(obj["val"]) + base64.b64decode(obj["iat"])

    # --- phase 2 --------------------------------------------------------------------------------

    def request_body(self, evidence: Evidence, binding: Binding) -> dict[str, Any]:
        """The flat attest body for *evidence* under *binding* (pure; for tests and docs)."""
        body: dict[str, Any] = {"quote": base64.b64encode(evidence.data).decode("ascii")}
        challenge = binding.challenges.get(self.name)
        if challenge is not None:
            if binding.prefix != self.report_data_prefix(challenge):
                raise UsageError(f"{self.name}: the session's REPORT_DATA prefix is not this backend's "
                                 "nonce (val ‖ iat); ITA would check a different REPORT_DATA")
            body["verifier_nonce"] = _challenge_object(challenge)
            body["runtime_data"] = base64.b64encode(binding.runtime_data).decode("ascii")
        else:  # ITA checks REPORT_DATA = SHA-512(runtime_data) = SHA-512(binding.hashed)
            body["runtime_data"] = base64.b64encode(binding.hashed).decode("ascii")
        if self.policy_ids:
            body["policy_ids"] = list(self.policy_ids)
        body["token_signing_alg"] = self.token_signing_alg
        body["policy_must_match"] = self.policy_must_match
        return body

    async def appraise(self, evidence: Evidence, nonce: bytes, deadline: float) -> RawResult:
        require_media_type(evidence, ACCEPTED, "Intel Trust Authority")
        binding = session_binding.get() or Binding(nonce)  # one-shot use: the nonce alone
        data = json.dumps(self.request_body(evidence, binding), separators=(",", ":")).encode()
        loop = asyncio.get_running_loop()
        with self.breaker.attempt(timed_out=lambda: loop.time() >= deadline):
            resp = await self.http.request("POST", self.http.url(f"appraisal/{self.api_version}/attest"),
                                           deadline=deadline, what="ITA attest", headers=self._headers(body=True),
                                           data=data)
            if resp.status != 200:
                raise vendor_error(resp, "ITA attest", secrets=(self._api_key,))
            doc = strict_json(resp, "ITA attest", required=("token",), max_size=MAX_TOKEN_RESPONSE)
            return RawResult(compact_jws(doc["token"], "ITA attest: token"), JWT)



# --- config -------------------------------------------------------------------------------------

def from_spec(spec: VerifierSpec) -> ItaBackend:
    o = spec.options
    with config_errors(spec):
        url = URL(o["url"])
        return ItaBackend(
            spec.name, spec.operator, url,
            api_key=secret_from(spec, "api_key", "api_key_env", required=True),
            policy_ids=str_list(spec, "policy_ids", max_items=MAX_POLICY_IDS),
            policy_must_match=o.get("policy_must_match", False),
            token_signing_alg=o.get("token_signing_alg", DEFAULT_ALGORITHM),
            verifier_nonce=o.get("verifier_nonce", True),
            issuer=o.get("issuer", DEFAULT_ISSUER),
            api_version=o.get("api_version", "v2"),
            transport=transport_from(spec, url, MAX_TOKEN_RESPONSE),
            breaker=breaker_from(spec),
        )


register(Kind("ita", from_spec, {
    **TRANSPORT_OPTIONS, "api_key": str, "api_key_env": str, "policy_ids": list, "policy_must_match": bool,
    "token_signing_alg": str, "verifier_nonce": bool, "issuer": str, "api_version": str,
}, required=frozenset({"url"})))
