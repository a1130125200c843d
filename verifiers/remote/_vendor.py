"""What the vendor backends (``ita``, ``maa``, ``google``, ``trustee``) share.

* :class:`Secret`: an API key or bearer token. Its ``repr``/``str`` never show the value, the
  backends pass it to :class:`~verifiers.remote.http.HttpClient` per request (so no long-lived
  object but the :class:`Secret` holds it), and :func:`vendor_error` blanks it out of any error
  text a service echoes back.
* :func:`strict_json`: a response body parsed as one JSON object with exactly the expected
  members (duplicates and unknown members refused), under a size cap. Vendor clients decode
  strictly too (Intel's Go client, go-connector: ``DisallowUnknownFields``): a
  response that does not have the documented shape means we are not talking the protocol we
  think, and the token is not trusted to mean what it would mean otherwise.
* :func:`vendor_error`: a non-success response as the http.py error (``RetryAfterError`` for
  429/5xx with ``Retry-After``, else ``BackendHTTPError``), with the service's own error code and
  message (Google/Azure ``{"error":{"code","message"[,"status"]}}``, RFC 7807, or plain text) in
  the detail, cleaned and cut because it is untrusted.
* :func:`require_media_type`: evidence of a type the service cannot take raises
  :class:`UnsupportedEvidenceError`, a :class:`~federation.errors.UsageError`: the bytes are not
  at fault (they may be a perfectly good SEV-SNP report), the deployment sent them to a verifier
  that does not appraise that format. ``malformed`` would blame the attester in the record. It is
  raised before any request, is not retried and says nothing about the service's health.
* config helpers: transport and breaker options parsed as for ``kind = "veraison"``, errors
  re-keyed ``verifiers.<name>.<option>`` with the file.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import re
from collections.abc import Collection, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal, overload

from yarl import URL

from federation.errors import BackendHTTPError, ConfigError, MalformedError, UsageError
from federation.evidence import Evidence

from ..registry import VerifierSpec
from .breaker import CircuitBreaker
from .http import Response, TransportOptions, _clean, error_for

__all__ = [
    "JWT",
    "TDX_QUOTE",
    "TRANSPORT_OPTIONS",
    "Secret",
    "UnsupportedEvidenceError",
    "b64decode_strict",
    "breaker_from",
    "compact_jws",
    "config_errors",
    "number",
    "require_media_type",
    "secret_from",
    "str_list",
    "strict_json",
    "transport_from",
    "vendor_error",
]

JWT = "application/jwt"  # what every vendor backend returns; the kind's checker verifies it
# verifiers.local.evidence.tdx.MEDIA_TYPE, spelled out so that loading a remote backend does not
# import the local appraiser (tests/test_vendor_backends.py checks that the two agree).
TDX_QUOTE = "application/vnd.intel.tdx-quote"

_JWS = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+")
_HEADER_SAFE = re.compile(r"[\x21-\x7e]+")  # a token as an HTTP header value: visible ASCII, no spaces


class Secret:
    """A credential. Shown as ``Secret('***')`` everywhere; :meth:`reveal` is for the header."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        if not isinstance(value, str) or not _HEADER_SAFE.fullmatch(value):
            raise ConfigError("must be non-empty visible ASCII without spaces (it is sent as an HTTP header)")
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__

    def __reduce__(self) -> Any:  # no pickling a credential into a cache or a crash dump
        raise TypeError("a Secret cannot be pickled")


class UnsupportedEvidenceError(UsageError):
    """The Evidence's media type is not one this backend's service appraises."""


def require_media_type(evidence: Evidence, accepted: Collection[str], service: str) -> str:
    """*evidence*'s base media type, if *service* takes it; else :class:`UnsupportedEvidenceError`."""
    media_type = evidence.base_type
    if media_type not in accepted:
        raise UnsupportedEvidenceError(
            f"{service} does not appraise evidence of type {_clean(media_type)!r}; it takes "
            f"{', '.join(sorted(accepted))}")
    return media_type


def b64decode_strict(text: object, what: str) -> bytes:
    """Standard base64 (padded, alphabet checked), or :class:`MalformedError`."""
    if not isinstance(text, str) or not text.isascii():
        raise MalformedError(f"{what}: not a base64 string")
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise MalformedError(f"{what}: not base64") from exc


def compact_jws(text: object, what: str) -> bytes:
    """A compact JWS (three base64url parts) as ASCII bytes, or :class:`MalformedError`."""
    if not isinstance(text, str) or not _JWS.fullmatch(text):
        raise MalformedError(f"{what}: not a compact JWT")
    return text.encode("ascii")


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise MalformedError(f"duplicate member {_clean(key)!r}")
        out[key] = value
    return out


def strict_json(resp: Response, what: str, *, required: Collection[str], optional: Collection[str] = (),
                max_size: int | None = None) -> dict[str, Any]:
    """The body as a JSON object with all *required* members, no member outside *required* and
    *optional*, no duplicate member, and at most *max_size* bytes."""
    if max_size is not None and len(resp.body) > max_size:
        raise MalformedError(f"{what}: response of {len(resp.body)} bytes exceeds {max_size}")
    try:
        doc = json.loads(resp.body, object_pairs_hook=_no_duplicates)
    except MalformedError as exc:
        raise MalformedError(f"{what}: {exc.detail}") from exc
    except (ValueError, RecursionError) as exc:
        raise MalformedError(f"{what}: body is not JSON") from exc
    if not isinstance(doc, dict):
        raise MalformedError(f"{what}: body is not a JSON object")
    unknown = sorted(set(doc) - set(required) - set(optional))
    if unknown:
        raise MalformedError(f"{what}: unexpected member(s) {_clean(', '.join(unknown))}")
    missing = sorted(set(required) - set(doc))
    if missing:
        raise MalformedError(f"{what}: missing member(s) {', '.join(missing)}")
    return doc


def _service_text(resp: Response) -> str | None:
    """The service's own account of an error, if its body has one we know how to read."""
    content_type = resp.headers.get("Content-Type", "").split(";", 1)[0].strip().lower()
    if content_type in ("application/json", "application/problem+json") or content_type.endswith("+json"):
        try:
            doc = json.loads(resp.body)
        except (ValueError, RecursionError):
            return None
        if not isinstance(doc, dict):
            return None
        err = doc.get("error")
        if isinstance(err, dict):  # Google RPC status / Azure: {"error": {"code", "message"[, "status"]}}
            parts = [str(err[k]) for k in ("status", "code") if isinstance(err.get(k), str | int)
                     and not isinstance(err.get(k), bool)]
            message = err.get("message")
            if isinstance(message, str) and message:
                parts.append(message)
            return ": ".join(parts) or None
        text = doc.get("detail") or doc.get("title")  # RFC 7807 (Trustee adds a "code")
        if not isinstance(text, str) or not text:
            return None
        code = doc.get("code")
        return f"{code}: {text}" if isinstance(code, str) and code else text
    if content_type in ("text/plain", ""):
        text = resp.body[:512].decode("utf-8", "replace").strip()
        return " ".join(text.split()) or None
    return None


def vendor_error(resp: Response, what: str, *, secrets: Collection[Secret | None] = ()) -> BackendHTTPError:
    """The error for a non-success *resp*: ``RetryAfterError`` for 429/5xx with ``Retry-After``
    (the engine waits that long before its next attempt), else ``BackendHTTPError``. The detail
    carries the service's error text (and ``trace-id``/``request-id`` when sent), cleaned, cut,
    and with any of *secrets* blanked out."""
    detail = f"{what}: HTTP {resp.status}"
    text = _service_text(resp)
    if text:
        for s in secrets:
            if s is not None:
                text = text.replace(s.reveal(), "***")
        detail += f" ({_clean(text)})"
    for header in ("trace-id", "request-id", "x-ms-request-id"):
        value = resp.headers.get(header)
        if value:
            detail += f" [{header} {_clean(value)[:64]}]"
            break
    return error_for(resp, detail)


# --- config -------------------------------------------------------------------------------------

@contextmanager
def config_errors(spec: VerifierSpec) -> Iterator[None]:
    """ConfigErrors raised with an option's name as key, re-raised naming the verifier and file."""
    try:
        yield
    except ConfigError as exc:
        if exc.file is not None:
            raise
        option = exc.key or "url"
        raise ConfigError(exc.detail.removeprefix(f"{option}: "), key=f"verifiers.{spec.name}.{option}",
                          file=spec.source) from exc
    except ValueError as exc:  # yarl on a malformed URL
        raise ConfigError(f"not a URL: {exc}", key=f"verifiers.{spec.name}.url", file=spec.source) from exc


def number(spec: VerifierSpec, key: str, default: float) -> float:
    value = spec.options.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise ConfigError("must be a number > 0", key=key)
    return float(value)


def str_list(spec: VerifierSpec, key: str, *, max_items: int | None = None) -> tuple[str, ...]:
    value = spec.options.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) and v and v.isprintable() for v in value):
        raise ConfigError("must be a list of non-empty strings", key=key)
    if max_items is not None and len(value) > max_items:
        raise ConfigError(f"at most {max_items} entries", key=key)
    if len(set(value)) != len(value):
        raise ConfigError("has duplicate entries", key=key)
    return tuple(value)


@overload
def secret_from(spec: VerifierSpec, key: str, env_key: str, *, required: Literal[True]) -> Secret: ...
@overload
def secret_from(spec: VerifierSpec, key: str, env_key: str, *, required: bool) -> Secret | None: ...
def secret_from(spec: VerifierSpec, key: str, env_key: str, *, required: bool) -> Secret | None:
    """A credential from option *key* or from the environment variable named by *env_key* (one of
    the two; the variable must be set when the config is loaded). The value is never in a message."""
    o = spec.options
    if key in o and env_key in o:
        raise ConfigError(f"give {key} or {env_key}, not both", key=key)
    if env_key in o:
        name = o[env_key]
        value = os.environ.get(name) if isinstance(name, str) and name else None
        if not value:
            raise ConfigError(f"environment variable {_clean(name)} is not set", key=env_key)
        try:
            return Secret(value)
        except ConfigError as exc:
            raise ConfigError(f"environment variable {_clean(name)} {exc.detail}", key=env_key) from None
    if key in o:
        try:
            return Secret(o[key])
        except ConfigError as exc:
            raise ConfigError(exc.detail, key=key) from None
    if required:
        raise ConfigError(f"one of {key}, {env_key} is required", key=key)
    return None


def transport_from(spec: VerifierSpec, url: URL, default_max: int) -> TransportOptions:
    o = spec.options
    ca_file: Path | None = spec.path(o["ca_file"]) if "ca_file" in o else None
    if ca_file is not None and url.scheme != "https":
        raise ConfigError("ca_file is given but the url is not https", key="ca_file")
    return TransportOptions(tls_verify=o.get("tls_verify", True), ca_file=ca_file,
                            max_response=int(number(spec, "max_response", default_max)))


def breaker_from(spec: VerifierSpec) -> CircuitBreaker:
    return CircuitBreaker(int(number(spec, "breaker_failures", 5)), number(spec, "breaker_cooldown", 30.0))


# Option types every vendor kind takes (registry.Kind.options), as for kind = "veraison".
TRANSPORT_OPTIONS: Mapping[str, type | tuple[type, ...]] = {
    "url": str, "ca_file": str, "tls_verify": bool, "max_response": int, "breaker_failures": int,
    "breaker_cooldown": (int, float),
}

