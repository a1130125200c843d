"""Optional bearer-token auth for the API (RFC 6750), compared in constant time.

Tokens come from the environment variable named by ``[server] auth_tokens_env`` (comma-
separated, so an operator can add a new token before retiring the old one). Only SHA-256 digests
are kept; a presented token is hashed and compared with every configured digest using
:func:`hmac.compare_digest`, without stopping at the first match, so neither the position of a
match nor a token's length shows in the timing. Tokens are never logged.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Iterable, Mapping

from aiohttp import web

from ..errors import ConfigError
from .problems import Problem

__all__ = ["MIN_TOKEN_LENGTH", "BearerAuth"]

MIN_TOKEN_LENGTH = 16  # characters; shorter tokens are refused at start


class BearerAuth:
    def __init__(self, tokens: Iterable[str]) -> None:
        clean = [t.strip() for t in tokens if t.strip()]
        if not clean:
            raise ConfigError("no bearer tokens given", key="server.auth_tokens_env")
        if any(len(t) < MIN_TOKEN_LENGTH for t in clean):
            raise ConfigError(f"every bearer token must have at least {MIN_TOKEN_LENGTH} characters",
                              key="server.auth_tokens_env")
        self._digests = tuple(hashlib.sha256(t.encode()).digest() for t in clean)

    @classmethod
    def from_env(cls, name: str, environ: Mapping[str, str] | None = None) -> BearerAuth:
        value = (os.environ if environ is None else environ).get(name, "")
        if not value.strip():
            raise ConfigError(f"environment variable {name} is not set (auth is configured: refusing to run "
                              "without tokens)", key="server.auth_tokens_env")
        return cls(value.split(","))

    def allows(self, presented: str) -> bool:
        digest = hashlib.sha256(presented.encode()).digest()
        match = False
        for known in self._digests:
            match |= hmac.compare_digest(digest, known)
        return match

    def check(self, request: web.Request) -> None:
        """Raise a 401 problem unless the request carries a configured bearer token."""
        header = request.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Problem(401, "a bearer token is required",
                          headers={"WWW-Authenticate": 'Bearer realm="ratsfed"'})
        if not self.allows(token.strip()):
            raise Problem(401, "the bearer token is not valid",
                          headers={"WWW-Authenticate": 'Bearer realm="ratsfed", error="invalid_token"'})
