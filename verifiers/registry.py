"""Backends by ``kind``: the config names a kind, the registry builds the backend.

Why options are declared: config is validated strictly (unknown keys are errors naming the key
and file), so each kind says which options it takes and of which type. Built-in kinds are
imported on first use, so a deployment pays only for the backends it configures.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from federation.errors import ConfigError

from .base import Backend

__all__ = ["Kind", "VerifierSpec", "create", "kinds", "register"]


@dataclass(frozen=True, slots=True)
class VerifierSpec:
    """One ``[[verifiers]]`` entry as the registry sees it."""

    name: str
    kind: str
    operator: str
    options: Mapping[str, Any] = field(default_factory=dict)
    base_dir: Path = Path()
    source: str = "<config>"  # file name, for error messages

    def path(self, value: str) -> Path:
        p = Path(value)
        return p if p.is_absolute() else self.base_dir / p


@dataclass(frozen=True, slots=True)
class Kind:
    name: str
    factory: Callable[[VerifierSpec], Backend]
    options: Mapping[str, type | tuple[type, ...]]  # allowed option keys and their types
    required: frozenset[str] = frozenset()


_KINDS: dict[str, Kind] = {}
# Built-in kinds, imported lazily: kind -> module that calls register() on import.
_BUILTIN: dict[str, str] = {
    "local": "verifiers.local.backend", "veraison": "verifiers.remote.veraison", "ita": "verifiers.remote.ita",
    "maa": "verifiers.remote.maa", "google": "verifiers.remote.google", "trustee": "verifiers.remote.trustee",
}


def register(kind: Kind) -> Kind:
    _KINDS[kind.name] = kind
    return kind


def register_builtin(kind: str, module: str) -> None:
    _BUILTIN[kind] = module


def kinds() -> list[str]:
    return sorted(set(_KINDS) | set(_BUILTIN))


def _lookup(name: str, spec: VerifierSpec) -> Kind:
    if name not in _KINDS and name in _BUILTIN:
        importlib.import_module(_BUILTIN[name])
    if name not in _KINDS:
        raise ConfigError(f"unknown kind {name!r}; known: {', '.join(kinds()) or 'none'}",
                          key=f"verifiers.{spec.name}.kind", file=spec.source)
    return _KINDS[name]


def create(spec: VerifierSpec) -> Backend:
    """Validate *spec*'s options against its kind, then build the backend."""
    kind = _lookup(spec.kind, spec)
    for key, value in spec.options.items():
        if key not in kind.options:
            raise ConfigError(f"unknown option for kind {spec.kind!r}", key=f"verifiers.{spec.name}.{key}",
                              file=spec.source)
        expected = kind.options[key]
        allowed = expected if isinstance(expected, tuple) else (expected,)
        if not isinstance(value, allowed) or (isinstance(value, bool) and bool not in allowed):
            raise ConfigError(f"wrong type {type(value).__name__}", key=f"verifiers.{spec.name}.{key}",
                              file=spec.source)
    missing = kind.required - set(spec.options)
    if missing:
        raise ConfigError(f"missing option(s) {', '.join(sorted(missing))}", key=f"verifiers.{spec.name}",
                          file=spec.source)
    return kind.factory(spec)
