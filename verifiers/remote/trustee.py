"""``kind = "trustee"``: the Confidential Containers Trustee Attestation Service (restful-as),
appraising TDX quotes.

One request::

    POST {url}/attestation
         {"verification_requests": [{"tee": "tdx",
                                     "evidence": b64url-nopad(JSON {"quote": b64(quote)}),
                                     "runtime_data": {"raw": b64url-nopad(binding.report_data)}}],
          "policy_ids": [...]}
    -> 200, body = the EAR as bare JWT text

**Binding.** Trustee takes ``raw`` runtime data *as given*, unhashed, as the expected REPORT_DATA
(zero-padded or cut to 64 bytes; ``runtime_data_hash_algorithm`` applies only to ``structured``
data): trustee ``attestation-service/src/lib.rs`` ``parse_runtime_data``,
``RuntimeData::Raw(raw) => Ok((Some(raw), Value::Null))``, the same in every revision found.
Trustee's documentation (``attestation-service/docs/restful-as.md``) can be read as hashing ``raw``
runtime data, which its source does not bear out. So the backend sends the session's 64-byte
``binding.report_data`` itself, and Trustee checks the quote's REPORT_DATA equals it: the
federation's rule (SHA-512(prefix ‖ runtime_data), federation/binding.py) is met natively.
(``structured`` data would be hashed by Trustee, but only JSON can be sent that way, and with an ITA
prefix the hashed bytes are not JSON.) The token has no ``eat_nonce``; the ``trustee`` checker
matches the REPORT_DATA Trustee reports in the EAR's annotated evidence.

**Errors.** Trustee (at 78962cd, the revision the tests' emulator follows) answers every failure
(bad base64, a quote that does not verify, REPORT_DATA mismatch, a policy error) with HTTP 500 and
plain text ``An internal error occured: …``; it has no 4xx. Retrying such an answer cannot change it
and would only spend the deadline, so a 500 is raised as :class:`TrusteeRefusal`: a
``BackendHTTPError`` (outcome ``http-error``, status 500, Trustee's text in the detail) whose
``retry_after`` is infinite, which stops the engine's retries the way a TLS failure or an open
circuit breaker does (the engine never sleeps past the deadline). For the circuit breaker such an
answer proves the service alive: it counts as a success. Later restful-as revisions answer RFC
7807 problem documents with a ``code`` and a ``retryable`` flag (400/422 for bad or unbound
evidence, 502/503 for a dependency): those are handled as for every backend (4xx not retried,
429 and 5xx transient with ``Retry-After``), and a 500 whose problem document says
``"retryable": true`` is transient too. 401/403 (a wrong bearer token at a proxy) are not retried.
"""

from __future__ import annotations

import asyncio
import base64
import json
import math
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

import aiohttp
from yarl import URL

from federation.binding import Binding
from federation.errors import BackendHTTPError, ConfigError, MalformedError
from federation.evidence import Evidence

from ..base import RawResult, session_binding
from ..registry import Kind, VerifierSpec, register
from ._vendor import (
    JWT,
    TDX_QUOTE,
    TRANSPORT_OPTIONS,
    Secret,
    breaker_from,
    compact_jws,
    config_errors,
    require_media_type,
    secret_from,
    str_list,
    transport_from,
    vendor_error,
)
from .breaker import CircuitBreaker
from .http import HttpBackend, HttpClient, Response, TransportOptions

__all__ = ["DEFAULT_ISSUER", "TrusteeBackend", "TrusteeRefusal"]

DEFAULT_ISSUER = "CoCo-Attestation-Service"  # Trustee's default token issuer (configurable there)
MAX_RESPONSE = 256 << 10  # bytes; the EAR carries the parsed quote as annotated evidence
ACCEPTED = frozenset({TDX_QUOTE})


class TrusteeRefusal(BackendHTTPError):
    """Trustee's HTTP 500: it looked at the request and refused it. Not worth retrying."""

    retry_after = math.inf

    def __init__(self, detail: str) -> None:
        super().__init__(detail, status=500)


def _retryable(resp: Response) -> bool:
    """Does an RFC 7807 problem document (later restful-as revisions) say ``"retryable": true``?"""
    if not resp.headers.get("Content-Type", "").startswith("application/problem+json"):
        return False
    try:
        doc = json.loads(resp.body)
    except (ValueError, RecursionError):
        return False
    return isinstance(doc, dict) and doc.get("retryable") is True


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


class TrusteeBackend(HttpBackend):
    """A client of a Trustee Attestation Service (``restful-as``)."""

    kind = "trustee"

    def __init__(self, name: str, operator: str, url: str | URL, *, policy_ids: tuple[str, ...] = (),
                 bearer_token: str | Secret | None = None, issuer: str = DEFAULT_ISSUER,
                 transport: TransportOptions | None = None, breaker: CircuitBreaker | None = None,
                 session: aiohttp.ClientSession | None = None) -> None:
        if not issuer:
            raise ConfigError("must not be empty", key="issuer")
        self.name = name
        self.operator = operator
        self._token = bearer_token if isinstance(bearer_token, Secret | None) else Secret(bearer_token)
        self.http = HttpClient(URL(str(url)), transport or TransportOptions(max_response=MAX_RESPONSE),
                               session=session)
        self.policy_ids = tuple(policy_ids)
        self.breaker = breaker or CircuitBreaker()
        self.expect: Mapping[str, Any] = MappingProxyType({
            "name": name, "issuer": issuer, "policy_ids": self.policy_ids,
        })


    def request_body(self, evidence: Evidence, binding: Binding) -> dict[str, Any]:
        """The /attestation body for *evidence* under *binding* (pure; for tests and docs)."""
        tdx_evidence = json.dumps({"quote": base64.b64encode(evidence.data).decode("ascii")},
                                  separators=(",", ":")).encode()
        return {
            "verification_requests": [{
                "tee": "tdx",
                "evidence": _b64url(tdx_evidence),
                "runtime_data": {"raw": _b64url(binding.report_data)},  # Trustee compares it unhashed
            }],
            "policy_ids": list(self.policy_ids),  # empty: Trustee uses its "default" policy
        }

    async def appraise(self, evidence: Evidence, nonce: bytes, deadline: float) -> RawResult:
        require_media_type(evidence, ACCEPTED, "Trustee")
        binding = session_binding.get() or Binding(nonce)  # one-shot use: the nonce alone
        data = json.dumps(self.request_body(evidence, binding), separators=(",", ":")).encode()
        headers = {"Content-Type": "application/json", "Accept": "application/jwt, text/plain"}
        if self._token is not None:
            headers["Authorization"] = f"Bearer {self._token.reveal()}"
        loop = asyncio.get_running_loop()
        with self.breaker.attempt(timed_out=lambda: loop.time() >= deadline):
            resp = await self.http.request("POST", self.http.url("attestation"), deadline=deadline,
                                           what="Trustee attestation", headers=headers, data=data)
            if resp.status == 200:
                return RawResult(self._token_of(resp), JWT)
            if resp.status != 500 or _retryable(resp):
                raise vendor_error(resp, "Trustee attestation", secrets=(self._token,))
        # Outside the breaker: a refusal is an answer from a live service (see the module docstring).
        raise TrusteeRefusal(vendor_error(resp, "Trustee attestation refused", secrets=(self._token,)).detail)

    @staticmethod
    def _token_of(resp: Response) -> bytes:
        try:
            text = resp.body.decode("ascii").strip()
        except UnicodeDecodeError as exc:
            raise MalformedError("Trustee attestation: body is not a JWT") from exc
        return compact_jws(text, "Trustee attestation")



# --- config -------------------------------------------------------------------------------------

def from_spec(spec: VerifierSpec) -> TrusteeBackend:
    o = spec.options
    with config_errors(spec):
        url = URL(o["url"])
        return TrusteeBackend(
            spec.name, spec.operator, url, policy_ids=str_list(spec, "policy_ids"),
            bearer_token=secret_from(spec, "bearer_token", "bearer_token_env", required=False),
            issuer=o.get("issuer", DEFAULT_ISSUER), transport=transport_from(spec, url, MAX_RESPONSE),
            breaker=breaker_from(spec),
        )


register(Kind("trustee", from_spec, {
    **TRANSPORT_OPTIONS, "policy_ids": list, "bearer_token_env": str, "issuer": str,
}, required=frozenset({"url"})))
