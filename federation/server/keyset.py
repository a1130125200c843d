"""The result-verification keys a server publishes: its signing key and, for rotation, old ones.

Rotation: start signing with the new key and list the old public key under ``[server]
previous_keys``; the JWKS keeps publishing it (with its ``kid``) until every result it signed has
expired, so relying parties that fetch the JWKS by ``kid`` keep verifying. The discovery
document's ``ear-verification-key`` is always the current signing key.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from ..keys import SigningKey, VerificationKey, load_trust_anchor

__all__ = ["KeySet"]


@dataclass(frozen=True, slots=True)
class KeySet:
    current: SigningKey
    previous: tuple[VerificationKey, ...] = ()

    @classmethod
    def load(cls, current: SigningKey, previous: Iterable[Path]) -> KeySet:
        keys: list[VerificationKey] = []
        for path in previous:
            anchor = load_trust_anchor(path)
            if not anchor.keys:
                raise ConfigError("must hold public keys (JWK, JWKS or PEM), not certificates",
                                  key="server.previous_keys", file=str(path))
            keys += [k if k.kid is not None else replace(k, kid=k.thumbprint) for k in anchor.keys]
        now = current.public.thumbprint
        return cls(current, tuple(k for k in keys if k.thumbprint != now))

    def current_jwk(self) -> dict[str, Any]:
        return dict(self.current.public.jwk())

    def jwks(self) -> dict[str, Any]:
        keys = [self.current.public, *self.previous]
        return {"keys": [{**k.jwk(), "use": "sig"} for k in keys]}
