"""What every handler reads: the role, settings, session store, limits, keys and metrics, kept on
the application under one typed key."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from aiohttp import web

from ..config import ServerConfig
from .auth import BearerAuth
from .keyset import KeySet
from .limits import Gate
from .metrics import ServerMetrics
from .roles import Role
from .sessions import SessionStore

__all__ = ["STATE", "ServerState", "ServiceState"]

# Veraison's discovery ``service-state`` values (capability/well-known.go).
ServiceState = Literal["INITIALIZING", "READY", "TERMINATING", "DOWN"]


@dataclass(slots=True)
class ServerState:
    role: Role
    settings: ServerConfig
    store: SessionStore
    metrics: ServerMetrics
    gate: Gate
    keys: KeySet
    auth: BearerAuth | None
    clock: Callable[[], float]
    service_state: ServiceState = "INITIALIZING"


STATE = web.AppKey("ratsfed.server.state", ServerState)
