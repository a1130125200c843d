"""``kind = "maa"``: Microsoft Azure Attestation, appraising TDX quotes.

One request, anonymous (MAA attest calls take no credentials)::

    POST {url}/attest/TdxVm?api-version=2025-06-01
         {"quote": b64url(quote), "nonce": b64url(nonce)}                -> {"token": JWT} (exactly)
    errors: {"error": {"code", "message"}}                               -> http-error, code in the detail

No ``runtimeData`` is sent, on purpose: MAA would check REPORT_DATA[0:32] = SHA-256(runtimeData),
and no runtime data can make that hold together with the federation's SHA-512 rule
(federation/binding.py) on the same 64 bytes. MAA's vote is bound instead by the REPORT_DATA it
verified and signed (``tdx_report_data``), which the ``maa`` checker compares with the session's
``binding.report_data`` (binding strength ``report-data``). The nonce comes back in the token's
``nonce`` claim.

``draftPolicyForAttestation`` is not an option: a token made under a draft policy is for testing
only and must be refused by a relying party (Microsoft's REST API documentation).

SEV-SNP (``/attest/SevSnpVm``) is not offered: MAA wants the guest tooling's JSON
``{"SnpReport", "VcekCertChain", …}`` (Azure/confidential-computing-cvm-guest-attestation), which
the federation's SEV-SNP evidence formats do not carry as such; TDX quotes only.
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

import aiohttp
from yarl import URL

from federation.errors import ConfigError
from federation.evidence import Evidence

from ..base import RawResult
from ..registry import Kind, VerifierSpec, register
from ._vendor import (
    JWT,
    TDX_QUOTE,
    TRANSPORT_OPTIONS,
    breaker_from,
    compact_jws,
    config_errors,
    require_media_type,
    strict_json,
    transport_from,
    vendor_error,
)
from .breaker import CircuitBreaker
from .http import HttpBackend, HttpClient, TransportOptions

__all__ = ["DEFAULT_API_VERSION", "MaaBackend"]

DEFAULT_API_VERSION = "2025-06-01"  # the first data-plane version with /attest/TdxVm
MAX_RESPONSE = 256 << 10  # bytes; MAA TDX tokens are a few KiB
ACCEPTED = frozenset({TDX_QUOTE})


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


class MaaBackend(HttpBackend):
    """A client of one Azure Attestation instance (``https://<name>.<region>.attest.azure.net``)."""

    kind = "maa"

    def __init__(self, name: str, operator: str, url: str | URL, *, api_version: str = DEFAULT_API_VERSION,
                 issuer: str | None = None, policy_hash: str | None = None, transport: TransportOptions | None = None,
                 breaker: CircuitBreaker | None = None, session: aiohttp.ClientSession | None = None) -> None:
        if not api_version or not api_version.replace("-", "").isalnum():
            raise ConfigError("must be an api-version such as 2025-06-01", key="api_version")
        self.name = name
        self.operator = operator
        base = URL(str(url))
        self.http = HttpClient(base, transport or TransportOptions(max_response=MAX_RESPONSE), session=session)
        self.api_version = api_version
        self.breaker = breaker or CircuitBreaker()
        # MAA's iss is the instance URL without a trailing slash.
        self.issuer = issuer or str(base).rstrip("/")
        expect: dict[str, Any] = {"name": name, "issuer": self.issuer}
        if policy_hash is not None:  # pins x-ms-policy-hash (the maa checker reads it)
            if not policy_hash:
                raise ConfigError("must not be empty", key="policy_hash")
            expect["policy_hash"] = policy_hash
        self.expect: Mapping[str, Any] = MappingProxyType(expect)


    @staticmethod
    def request_body(evidence: Evidence, nonce: bytes) -> dict[str, Any]:
        """The TdxVm body: the quote and the nonce, no runtimeData (see the module docstring)."""
        return {"quote": _b64url(evidence.data), "nonce": _b64url(nonce)}

    async def appraise(self, evidence: Evidence, nonce: bytes, deadline: float) -> RawResult:
        require_media_type(evidence, ACCEPTED, "Azure Attestation")
        data = json.dumps(self.request_body(evidence, nonce), separators=(",", ":")).encode()
        url = self.http.url("attest/TdxVm").with_query({"api-version": self.api_version})
        loop = asyncio.get_running_loop()
        with self.breaker.attempt(timed_out=lambda: loop.time() >= deadline):
            resp = await self.http.request("POST", url, deadline=deadline, what="MAA attest", data=data,
                                           headers={"Content-Type": "application/json", "Accept": "application/json"})
            if resp.status != 200:
                raise vendor_error(resp, "MAA attest")
            doc = strict_json(resp, "MAA attest", required=("token",))
            return RawResult(compact_jws(doc["token"], "MAA attest: token"), JWT)



# --- config -------------------------------------------------------------------------------------

def from_spec(spec: VerifierSpec) -> MaaBackend:
    o = spec.options
    with config_errors(spec):
        url = URL(o["url"])
        return MaaBackend(spec.name, spec.operator, url, api_version=o.get("api_version", DEFAULT_API_VERSION),
                          issuer=o.get("issuer"), policy_hash=o.get("policy_hash"),
                          transport=transport_from(spec, url, MAX_RESPONSE),
                          breaker=breaker_from(spec))


register(Kind("maa", from_spec, {**TRANSPORT_OPTIONS, "api_version": str, "issuer": str, "policy_hash": str},
              required=frozenset({"url"})))
