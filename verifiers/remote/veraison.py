"""``kind = "veraison"``: a client of Veraison's challenge-response API (``verification/api``).

One attempt (the engine retries whole attempts, see docs/remote-backends.md)::

    POST {url}/challenge-response/v1/newSession?nonce=<federation nonce, base64url>  -> 201, Location
    POST {session}   body = evidence, Content-Type = its media type              -> 200 complete | 202
    GET  {session}   every poll_interval while "processing"                      -> 200 complete
    DELETE {session} afterwards, in the background (sessions also expire)        -> 204

The service gets the federation's own nonce (DESIGN §8), and the session document must echo it.
The result (``result``: an EAR JWT; from ``ratsfed serve`` also a base64url CWT) is returned
raw: the federation verifies it under this backend's configured ``trust_anchor``, like every
other result. The one exception is
``trust_on_first_use``: then, and only then, the key is learnt from the discovery document at
the configured URL's ``/.well-known/veraison/verification`` (never from a URL in a response),
pinned in memory, and used as this backend's anchor from then on (DESIGN §9).

Works against Veraison deployments and against ``ratsfed serve`` in the verifier role, so a
federation can be a backend of another one.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import os
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import aiohttp
from yarl import URL

from federation.algorithms import default_algorithms
from federation.ear import nonce_matches
from federation.errors import (
    BackendError,
    BackendUnreachableError,
    ConfigError,
    Error,
    MalformedError,
    NonceMismatchError,
    UntrustedKeyError,
)
from federation.evidence import Evidence
from federation.keys import TrustAnchor, VerificationKey, b64url_decode, jwk_to_public

from ..base import RawResult
from ..registry import Kind, VerifierSpec, register
from .breaker import CircuitBreaker
from .http import DEFAULT_MAX_RESPONSE, HttpBackend, HttpClient, Response, TransportOptions, status_error

__all__ = ["KeyPin", "PinnedAnchor", "VeraisonBackend"]

log = logging.getLogger(__name__)

NEW_SESSION = "challenge-response/v1/newSession"
DISCOVERY = ".well-known/veraison/verification"
SESSION_TYPE = "application/vnd.veraison.challenge-response-session+json"
DISCOVERY_TYPE = "application/vnd.veraison.discovery+json"
EAR_JWT = "application/eat+jwt"
EAR_CWT = "application/eat+cwt"
DEFAULT_POLL_INTERVAL = 0.5  # seconds between GETs of a "processing" session
CLEANUP_TIMEOUT = 5.0  # seconds a background DELETE of a finished session may take
PROBE_TIMEOUT = 5.0  # seconds a health probe may take


class KeyPin:
    """A key learnt on first use: set once, kept in memory for the life of the process."""

    def __init__(self) -> None:
        self._key: VerificationKey | None = None

    @property
    def key(self) -> VerificationKey | None:
        return self._key

    def pin(self, key: VerificationKey) -> VerificationKey:
        """Pin *key* unless one is pinned already; return the pinned key (first use wins)."""
        if self._key is None:
            self._key = key
        return self._key


class PinnedAnchor(TrustAnchor):
    """The anchor of a trust-on-first-use backend: empty (trusts nothing) until its pin is set."""

    __slots__ = ("pin",)
    pin: KeyPin

    def __init__(self, pin: KeyPin) -> None:
        super().__init__()
        object.__setattr__(self, "pin", pin)

    def __post_init__(self) -> None:
        """No key yet is allowed here; :meth:`candidates` refuses until one is pinned."""

    def candidates(self, alg: str, kid: str | None, x5c: Sequence[bytes] | None, now: datetime
                   ) -> list[VerificationKey]:
        key = self.pin.key
        if key is None:
            raise UntrustedKeyError("no key pinned yet (trust on first use)")
        return TrustAnchor((key,)).candidates(alg, kid, None, now)  # chains are never trusted here

    def jwks(self) -> dict[str, list[dict[str, str]]]:
        key = self.pin.key
        return {"keys": [key.jwk()] if key is not None else []}


def _session_doc(resp: Response, what: str, nonce: bytes) -> Mapping[str, Any]:
    doc = resp.json(what)
    if not isinstance(doc, dict) or not isinstance(doc.get("status"), str):
        raise MalformedError(f"{what}: not a challenge-response session document")
    echoed = doc.get("nonce")
    if not isinstance(echoed, str):
        raise MalformedError(f"{what}: session has no nonce")
    if not nonce_matches(echoed, nonce):
        raise NonceMismatchError(f"{what}: the session's nonce is not the federation's")
    return doc


def _result_token(result: object) -> RawResult:
    """The session's ``result``: an EAR JWT (Veraison), or base64url of a CWT (``ratsfed serve``
    with ``result_format = "cwt"``)."""
    if not isinstance(result, str) or not result:
        raise MalformedError("session complete without a result token")
    if not result.isascii():
        raise MalformedError("session result is neither a JWT nor base64url")
    if result.count(".") == 2:
        return RawResult(result.encode("ascii"), EAR_JWT)
    try:
        return RawResult(b64url_decode(result), EAR_CWT)
    except MalformedError as exc:
        raise MalformedError("session result is neither a JWT nor base64url") from exc


def _key_from_discovery(doc: Any) -> VerificationKey:
    jwk = doc.get("ear-verification-key") if isinstance(doc, dict) else None
    if not isinstance(jwk, dict):
        raise MalformedError("discovery: no ear-verification-key")
    try:
        key = jwk_to_public(jwk)  # only the key material is read: no jku/x5u/x5c is followed
        alg = jwk.get("alg")
        allowed = default_algorithms(key)
        if alg is not None and alg not in allowed:
            raise MalformedError(f"discovery: alg {alg!r:.20} does not fit the key")
        kid = jwk.get("kid")
        return VerificationKey.of(key, kid=kid if isinstance(kid, str) else None,
                                  algorithms=[alg] if isinstance(alg, str) else None)
    except MalformedError:
        raise
    except Error as exc:
        raise MalformedError(f"discovery: unusable key: {exc.detail}") from exc


class VeraisonBackend(HttpBackend):
    """A remote verifier speaking Veraison's challenge-response API."""

    kind = "veraison"

    def __init__(self, name: str, operator: str, url: str | URL, *,
                 transport: TransportOptions | None = None, token: str | None = None,
                 trust_on_first_use: bool = False, poll_interval: float = DEFAULT_POLL_INTERVAL,
                 breaker: CircuitBreaker | None = None, session: aiohttp.ClientSession | None = None) -> None:
        if poll_interval <= 0:
            raise ConfigError("must be > 0", key="poll_interval")
        self.name = name
        self.operator = operator
        headers = {"Authorization": f"Bearer {token}"} if token else None
        self.http = HttpClient(URL(str(url)), transport or TransportOptions(), headers=headers, session=session)
        self.poll_interval = poll_interval
        self.breaker = breaker or CircuitBreaker()
        self._pin = KeyPin() if trust_on_first_use else None
        # What config uses when no trust_anchor is set: only a TOFU backend offers one.
        self.public_anchor: TrustAnchor | None = PinnedAnchor(self._pin) if self._pin else None
        self._cleanup: set[asyncio.Task[None]] = set()

    @property
    def pinned_key(self) -> VerificationKey | None:
        return self._pin.key if self._pin else None

    async def appraise(self, evidence: Evidence, nonce: bytes, deadline: float) -> RawResult:
        loop = asyncio.get_running_loop()
        with self.breaker.attempt(timed_out=lambda: loop.time() >= deadline):
            if self._pin is not None and self._pin.key is None:
                await self._learn_key(deadline)
            return await self._exchange(evidence, nonce, deadline)

    async def probe(self, deadline: float | None = None) -> bool:
        """Is the service up? GETs the discovery document through the breaker: while the breaker
        is open this returns False without a request; once the cool-down is over it is the probe
        that closes (or re-opens) it. For readiness checks of a federator. *deadline*: loop time
        (default: in PROBE_TIMEOUT seconds)."""
        loop = asyncio.get_running_loop()
        if deadline is None:
            deadline = loop.time() + PROBE_TIMEOUT
        try:
            with self.breaker.attempt(timed_out=lambda: loop.time() >= deadline):
                doc = await self._discovery(deadline)
                state = doc.get("service-state", "READY") if isinstance(doc, dict) else None
                if state != "READY":
                    raise BackendUnreachableError(f"discovery: service-state {state!r:.20}")
        except Error:
            return False
        return True

    async def aclose(self) -> None:
        """Finish (or, after CLEANUP_TIMEOUT, abandon) pending DELETEs, then close the pool."""
        if self._cleanup:
            _, pending = await asyncio.wait(set(self._cleanup), timeout=CLEANUP_TIMEOUT)
            for t in pending:
                t.cancel()
            if pending:
                await asyncio.wait(pending)
        await self.http.aclose()

    # --- the exchange ---------------------------------------------------------------------------

    async def _exchange(self, evidence: Evidence, nonce: bytes, deadline: float) -> RawResult:
        # Veraison's own client sends the nonce as padded base64url; servers take both forms.
        query = {"nonce": base64.urlsafe_b64encode(nonce).decode("ascii")}
        resp = await self.http.request("POST", self.http.url(NEW_SESSION).with_query(query), deadline=deadline,
                                       what="newSession", headers={"Accept": SESSION_TYPE})
        if resp.status not in (200, 201):
            raise status_error(resp, "newSession")
        location = resp.headers.get("Location")
        if not location:
            raise MalformedError("newSession: no Location for the session")
        session = resp.url.join(URL(location))  # relative ("session/<id>"): against the request URL
        if not self.http.within(session):
            raise MalformedError("newSession: the session is not under the configured URL")
        try:
            doc = _session_doc(resp, "newSession", nonce)
            if doc["status"] != "waiting":
                raise MalformedError(f"newSession: new session is {doc['status']!r:.20}, not waiting")
            resp = await self.http.request("POST", session, deadline=deadline, what="evidence", data=evidence.data,
                                           headers={"Accept": SESSION_TYPE, "Content-Type": evidence.media_type})
            if resp.status not in (200, 202):
                raise status_error(resp, "evidence")
            return await self._result(session, _session_doc(resp, "evidence", nonce), nonce, deadline)
        finally:
            self._forget(session)

    async def _result(self, session: URL, doc: Mapping[str, Any], nonce: bytes, deadline: float) -> RawResult:
        loop = asyncio.get_running_loop()
        while True:
            status = doc["status"]
            if status == "complete":
                return _result_token(doc.get("result"))
            if status == "failed":
                raise BackendError("the verifier failed the session")
            if status != "processing":
                raise MalformedError(f"unexpected session status {status!r:.20}")
            await asyncio.sleep(max(0.0, min(self.poll_interval, deadline - loop.time())))
            resp = await self.http.request("GET", session, deadline=deadline, what="poll",
                                           headers={"Accept": SESSION_TYPE})
            if resp.status != 200:
                raise status_error(resp, "poll")
            doc = _session_doc(resp, "poll", nonce)

    def _forget(self, session: URL) -> None:
        """DELETE *session* in the background: the result must not wait for the clean-up."""
        task = asyncio.get_running_loop().create_task(self._delete(session))
        self._cleanup.add(task)
        task.add_done_callback(self._cleanup.discard)

    async def _delete(self, session: URL) -> None:
        deadline = asyncio.get_running_loop().time() + CLEANUP_TIMEOUT
        try:
            resp = await self.http.request("DELETE", session, deadline=deadline, what="delete")
        except Error as exc:
            log.debug("%s: session clean-up failed: %s", self.name, exc)
            return
        if resp.status not in (200, 204, 404):
            log.debug("%s: session clean-up: HTTP %d", self.name, resp.status)

    # --- trust on first use ---------------------------------------------------------------------

    async def _discovery(self, deadline: float) -> Any:
        resp = await self.http.request("GET", self.http.url(DISCOVERY), deadline=deadline, what="discovery",
                                       headers={"Accept": DISCOVERY_TYPE})
        if resp.status != 200:
            raise status_error(resp, "discovery")
        return resp.json("discovery")

    async def _learn_key(self, deadline: float) -> None:
        assert self._pin is not None
        key = self._pin.pin(_key_from_discovery(await self._discovery(deadline)))
        log.warning("%s: trusting on first use the result key %s from %s", self.name, key.thumbprint,
                    self.http.url(DISCOVERY))


# --- config -------------------------------------------------------------------------------------

def _number(spec: VerifierSpec, key: str, default: float) -> float:
    value = spec.options.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise ConfigError("must be a number > 0", key=f"verifiers.{spec.name}.{key}", file=spec.source)
    return float(value)


def from_spec(spec: VerifierSpec) -> VeraisonBackend:
    o = spec.options
    key = f"verifiers.{spec.name}"
    token = None
    if "auth_token_env" in o:
        token = os.environ.get(o["auth_token_env"])
        if not token:
            raise ConfigError(f"environment variable {o['auth_token_env']} is not set", key=f"{key}.auth_token_env",
                              file=spec.source)
    ca_file: Path | None = spec.path(o["ca_file"]) if "ca_file" in o else None
    try:
        transport = TransportOptions(tls_verify=o.get("tls_verify", True), ca_file=ca_file,
                                     max_response=int(_number(spec, "max_response", DEFAULT_MAX_RESPONSE)))
        url = URL(o["url"])
        if ca_file is not None and url.scheme != "https":
            raise ConfigError("ca_file is given but the url is not https", key="ca_file")
        return VeraisonBackend(
            spec.name, spec.operator, url, transport=transport, token=token,
            trust_on_first_use=o.get("trust_on_first_use", False),
            poll_interval=_number(spec, "poll_interval", DEFAULT_POLL_INTERVAL),
            breaker=CircuitBreaker(int(_number(spec, "breaker_failures", 5)), _number(spec, "breaker_cooldown", 30.0)),
        )
    except ConfigError as exc:  # raised with the option's name as key: say which verifier and file
        if exc.file is not None:
            raise
        option = exc.key or "url"
        raise ConfigError(exc.detail.removeprefix(f"{option}: "), key=f"{key}.{option}", file=spec.source) from exc
    except ValueError as exc:  # yarl on a malformed URL
        raise ConfigError(f"not a URL: {exc}", key=f"{key}.url", file=spec.source) from exc


register(Kind("veraison", from_spec, {
    "url": str, "ca_file": str, "tls_verify": bool, "auth_token_env": str, "max_response": int,
    "trust_on_first_use": bool, "poll_interval": (int, float), "breaker_failures": int,
    "breaker_cooldown": (int, float),
}, required=frozenset({"url"})))
