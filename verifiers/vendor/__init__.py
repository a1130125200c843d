"""Vendor verification services' tokens as EAR: Intel Trust Authority (``ita``), Microsoft Azure
Attestation (``maa``), Google Cloud Attestation (``google``) and Confidential Containers Trustee
(``trustee``).

Each service module holds a pure checker, registered for its backend kind with
:func:`verifiers.normalize.register_checker` on import, and a lower-level ``verify_token`` that
the checker and ``ratsfed verify --kind`` share. Every token is verified (signature under the
configured anchor only, algorithm allow-list, time, issuer/audience, binding) *before* its claims
are mapped by the service's versioned table (:mod:`.mapping`; rendered into docs/backends.md by
:mod:`.doc`). Nothing here does I/O or reads the clock.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from federation.binding import Binding
from federation.errors import UsageError
from federation.keys import TrustAnchor

from . import google, ita, maa, trustee
from .common import EMPTY, Service, VendorView
from .mapping import MappingTable

__all__ = ["KINDS", "SERVICES", "TABLES", "Service", "VendorView", "map_claims", "verify_token"]

_MODULES = {"ita": ita, "maa": maa, "google": google, "trustee": trustee}
KINDS: tuple[str, ...] = tuple(_MODULES)
SERVICES: dict[str, Service] = {k: m.SERVICE for k, m in _MODULES.items()}
TABLES: dict[str, MappingTable] = {k: m.TABLE for k, m in _MODULES.items()}


def _module(kind: str) -> Any:
    try:
        return _MODULES[kind]
    except KeyError:
        raise UsageError(f"unknown vendor kind {kind!r:.20} (one of {', '.join(KINDS)})") from None


def verify_token(kind: str, token: bytes | str, anchor: TrustAnchor, *, now: int,
                 expect: Mapping[str, Any] = EMPTY, binding: Binding | None = None, nonce: bytes | None = None,
                 leeway: int = 60, max_age: int | None = None) -> VendorView:
    """Verify a *kind* token and map it (see the service modules); raises typed errors."""
    view: VendorView = _module(kind).verify_token(token, anchor, now=now, expect=expect, binding=binding,
                                                  nonce=nonce, leeway=leeway, max_age=max_age)
    return view


def map_claims(kind: str, claims: Mapping[str, Any], *, expect: Mapping[str, Any] = EMPTY) -> VendorView:
    """Map a *kind* claims set without verifying anything (tokens whose key is unknown, samples)."""
    view: VendorView = _module(kind).map_claims(claims, expect=expect)
    return view
