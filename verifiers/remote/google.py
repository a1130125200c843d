"""``kind = "google"``: Google Cloud Attestation for Confidential Space, TDX quotes
(``google/cloud/confidentialcomputing/v1/service.proto``).

Two phases, OAuth2 bearer token on every call::

    phase 1  POST {url}/v1/projects/{project}/locations/{location}/challenges  {}
             -> {"name": "projects/…/challenges/<id>", "tpmNonce", "createTime", "expireTime", "used"}
             the challenge is compact JSON {"name", "tpmNonce"} (sorted keys)
    phase 2  POST {url}/v1/{name}:verifyConfidentialSpace
             {"challenge": name, "tdCcel": {"tdQuote": b64(quote)},
              "options": {"audience", "nonce": [b64url(nonce)], "signatureType": "SIGNATURE_TYPE_PKI|OIDC"}}
             -> {"attestationToken": JWT, "partialErrors": [Status, …]}

Google cannot check the federation's REPORT_DATA: its only tie to the session is the nonce it echoes
in ``eat_nonce`` (sent as ``options.nonce``). The challenge is still committed into the federation's
runtime data (federation/binding.py), and a Challenge is single-use on Google's side. The ``google``
checker records such a vote's binding as ``eat-nonce`` (weak), and the quorum policy's
``weak_binding`` decides whether it counts.

Without a challenge for this session (a one-shot appraisal, or phase 1 failed) one is created in
phase 2, just before it is used. ``partialErrors`` (e.g. an image signature that did not verify;
the token then omits those claims) are logged and kept on the result
(:attr:`GoogleResult.partial_errors`).
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Literal

import aiohttp
from yarl import URL

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
from .http import HttpBackend, HttpClient, TransportOptions, _clean

__all__ = ["DEFAULT_ISSUER", "DEFAULT_URL", "GoogleBackend", "GoogleResult"]

log = logging.getLogger(__name__)

DEFAULT_URL = "https://confidentialcomputing.googleapis.com"
DEFAULT_ISSUER = "https://confidentialcomputing.googleapis.com"
MAX_RESPONSE = 256 << 10  # bytes; a PKI token with its three-certificate x5c is ~8 KiB
MAX_CHALLENGE_RESPONSE = 4 << 10  # bytes
EAT_NONCE_LENGTH = (10, 74)  # bytes of each options.nonce string Google accepts (service.proto)
MAX_PARTIAL_ERRORS = 32
ACCEPTED = frozenset({TDX_QUOTE})
SIGNATURE_TYPES = {"PKI": "SIGNATURE_TYPE_PKI", "OIDC": "SIGNATURE_TYPE_OIDC"}
_ID = r"[A-Za-z0-9][A-Za-z0-9._~-]{0,127}"  # a project, location or challenge id: one path segment
_ID_RE = re.compile(_ID)
_CHALLENGE_MEMBERS = ("name", "tpmNonce")

SignatureType = Literal["PKI", "OIDC"]


@dataclass(frozen=True, slots=True)
class GoogleResult(RawResult):
    """The token, and Google's ``partialErrors`` (``"STATUS code: message"``, cleaned) if any."""

    partial_errors: tuple[str, ...] = ()


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def _partial_errors(value: object, token: Secret) -> tuple[str, ...]:
    if not isinstance(value, list) or len(value) > MAX_PARTIAL_ERRORS:
        raise MalformedError(f"verifyConfidentialSpace: partialErrors is not a list of ≤ {MAX_PARTIAL_ERRORS}")
    out = []
    for status in value:
        if not isinstance(status, dict):
            raise MalformedError("verifyConfidentialSpace: a partialErrors entry is not a Status")
        code, message = status.get("code", 0), status.get("message", "")
        if isinstance(code, bool) or not isinstance(code, int) or not isinstance(message, str):
            raise MalformedError("verifyConfidentialSpace: a partialErrors entry is not a Status")
        text = f"{code}: {message}" if message else str(code)
        out.append(_clean(text.replace(token.reveal(), "***")))
    return tuple(out)


class GoogleBackend(HttpBackend):
    """A client of Google Cloud Attestation (Confidential Space) for one project and location."""

    kind = "google"

    def __init__(self, name: str, operator: str, url: str | URL = DEFAULT_URL, *, project: str, location: str,
                 bearer_token: str | Secret, audience: str, signature_type: SignatureType = "PKI",
                 issuer: str = DEFAULT_ISSUER, image_digests: tuple[str, ...] | None = None,
                 transport: TransportOptions | None = None, breaker: CircuitBreaker | None = None,
                 session: aiohttp.ClientSession | None = None) -> None:
        for key, value in (("project", project), ("location", location)):
            if not isinstance(value, str) or not _ID_RE.fullmatch(value):
                raise ConfigError("must be a single id (letters, digits, . _ ~ -)", key=key)
        if not audience:
            raise ConfigError("must not be empty", key="audience")
        if signature_type not in SIGNATURE_TYPES:
            raise ConfigError(f"must be one of {', '.join(SIGNATURE_TYPES)}", key="signature_type")
        if not issuer:
            raise ConfigError("must not be empty", key="issuer")
        self.name = name
        self.operator = operator
        self._token = bearer_token if isinstance(bearer_token, Secret) else Secret(bearer_token)
        self.http = HttpClient(URL(str(url)), transport or TransportOptions(max_response=MAX_RESPONSE),
                               session=session)
        self.project = project
        self.location = location
        self.audience = audience
        self.signature_type: SignatureType = signature_type
        self.breaker = breaker or CircuitBreaker()
        self._parent = f"projects/{project}/locations/{location}"
        self._name_re = re.compile(re.escape(self._parent) + "/challenges/" + _ID)
        expect: dict[str, Any] = {"name": name, "issuer": issuer, "audience": audience,
                                  "signature_type": signature_type}
        if image_digests is not None:  # reference workload images (the google checker's executables)
            expect["image_digests"] = tuple(image_digests)
        self.expect: Mapping[str, Any] = MappingProxyType(expect)

    def __repr__(self) -> str:
        return f"GoogleBackend({self.name!r}, {str(self.http.base)!r}, {self._parent!r})"

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self._token.reveal()}", "Accept": "application/json",
                "Content-Type": "application/json"}

    # --- phase 1 --------------------------------------------------------------------------------

    async def challenge(self, nonce: bytes, deadline: float) -> bytes | None:
        """A new Google Challenge as compact JSON ``{"name", "tpmNonce"}``. *nonce* is not sent
        here: Google gets the federation's nonce in phase 2 (``options.nonce``)."""
        loop = asyncio.get_running_loop()
        with self.breaker.attempt(timed_out=lambda: loop.time() >= deadline):
            return await self._create_challenge(deadline)

    async def _create_challenge(self, deadline: float) -> bytes:
        what = "CreateChallenge"
        resp = await self.http.request("POST", self.http.url(f"v1/{self._parent}/challenges"), deadline=deadline,
                                       what=what, headers=self._headers(), data=b"{}")
        if resp.status != 200:
            raise vendor_error(resp, what, secrets=(self._token,))
        doc = strict_json(resp, what, required=_CHALLENGE_MEMBERS,
                          optional=("createTime", "expireTime", "used"), max_size=MAX_CHALLENGE_RESPONSE)
        if doc.get("used", False) is not False:
            raise MalformedError(f"{what}: the new challenge is already used")
        return json.dumps(self._challenge_object(doc, what), sort_keys=True, separators=(",", ":")).encode()

    def _challenge_object(self, doc: Mapping[str, Any], what: str) -> dict[str, str]:
        name = doc.get("name")
        # The name becomes part of the next URL: one challenge under the configured parent, nothing else.
        if not isinstance(name, str) or not self._name_re.fullmatch(name):
            raise MalformedError(f"{what}: the challenge name is not under {self._parent}/challenges/")
        if not b64decode_strict(doc.get("tpmNonce"), f"{what}: tpmNonce"):
            raise MalformedError(f"{what}: tpmNonce is empty")
        return {"name": name, "tpmNonce": doc["tpmNonce"]}

    def _challenge_name(self, challenge: bytes) -> str:
        try:
            doc = json.loads(challenge)
        except (ValueError, RecursionError) as exc:
            raise MalformedError("Google challenge: not JSON") from exc
        if not isinstance(doc, dict) or sorted(doc) != list(_CHALLENGE_MEMBERS):
            raise MalformedError("Google challenge: not {name, tpmNonce}")
        return self._challenge_object(doc, "Google challenge")["name"]

    # --- phase 2 --------------------------------------------------------------------------------

    def request_body(self, evidence: Evidence, nonce: bytes, challenge_name: str) -> dict[str, Any]:
        encoded = _b64url(nonce)
        low, high = EAT_NONCE_LENGTH
        if not low <= len(encoded) <= high:
            raise UsageError(f"Google takes eat_nonce values of {low}..{high} bytes; this nonce encodes to "
                             f"{len(encoded)} (use a nonce of 8..55 bytes)")
        return {"challenge": challenge_name, "tdCcel": {"tdQuote": base64.b64encode(evidence.data).decode("ascii")},
                "options": {"audience": self.audience, "nonce": [encoded],
                            "signatureType": SIGNATURE_TYPES[self.signature_type]}}

    async def appraise(self, evidence: Evidence, nonce: bytes, deadline: float) -> RawResult:
        require_media_type(evidence, ACCEPTED, "Google Cloud Attestation")
        binding = session_binding.get()
        challenge = binding.challenges.get(self.name) if binding is not None else None
        name = self._challenge_name(challenge) if challenge is not None else None
        body = self.request_body(evidence, nonce, name or "")  # checks the nonce before any request
        what = "verifyConfidentialSpace"
        loop = asyncio.get_running_loop()
        with self.breaker.attempt(timed_out=lambda: loop.time() >= deadline):
            if name is None:  # no phase 1 for this session: a challenge now (it binds nothing either way)
                name = self._challenge_name(await self._create_challenge(deadline))
                body["challenge"] = name
            resp = await self.http.request("POST", self.http.url(f"v1/{name}:{what}"), deadline=deadline,
                                           what=what, headers=self._headers(),
                                           data=json.dumps(body, separators=(",", ":")).encode())
            if resp.status != 200:
                raise vendor_error(resp, what, secrets=(self._token,))
            doc = strict_json(resp, what, required=("attestationToken",), optional=("partialErrors",))
            token = compact_jws(doc["attestationToken"], f"{what}: attestationToken")
            partial = _partial_errors(doc.get("partialErrors", []), self._token)
        if partial:
            log.warning("%s: Google reported %d partial error(s): %s", self.name, len(partial), "; ".join(partial))
        return GoogleResult(token, JWT, partial)



# --- config -------------------------------------------------------------------------------------

def from_spec(spec: VerifierSpec) -> GoogleBackend:
    o = spec.options
    with config_errors(spec):
        url = URL(o.get("url", DEFAULT_URL))
        return GoogleBackend(
            spec.name, spec.operator, url, project=o["project"], location=o["location"],
            bearer_token=secret_from(spec, "bearer_token", "bearer_token_env", required=True),
            audience=o["audience"], signature_type=o.get("signature_type", "PKI"),
            issuer=o.get("issuer", DEFAULT_ISSUER),
            image_digests=str_list(spec, "image_digests") if "image_digests" in o else None,
            transport=transport_from(spec, url, MAX_RESPONSE), breaker=breaker_from(spec),
        )


register(Kind("google", from_spec, {
    **TRANSPORT_OPTIONS, "project": str, "location": str, "bearer_token": str, "bearer_token_env": str,
    "audience": str, "signature_type": str, "issuer": str, "image_digests": list,
}, required=frozenset({"project", "location", "audience"})))
