"""TOML configuration, validated strictly: unknown keys and wrong types fail at load, naming the
key and the file (a typo must never silently become a default that weakens the policy).

Shape (see config/*.toml for examples and docs/configuration.md for every key)::

    [federation]   id, signing_key, algorithm, result_format, spelling, deadline, result_ttl,
                   embed_results, session_ttl
    [quorum]       k, veto, wait, distinct_operators, policy_id
    [[verifiers]]  name, kind, operator, trust_anchor, algorithms, timeout, retries, max_age,
                   leeway, rename, options (kind-specific table)

Relative paths are resolved against the config file's folder.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from verifiers.registry import VerifierSpec, create

from .ear.model import Spelling
from .errors import ConfigError, Error
from .keys import SigningKey, TrustAnchor, load_signing_key, load_trust_anchor
from .quorum import QuorumPolicy

__all__ = ["Config", "VerifierConfig", "load_config", "parse_config"]

_Types = type | tuple[type, ...]
_FEDERATION: dict[str, _Types] = {
    "id": str, "signing_key": str, "algorithm": str, "result_format": str, "spelling": str,
    "deadline": (int, float), "result_ttl": int, "embed_results": bool, "session_ttl": (int, float),
}
_QUORUM: dict[str, _Types] = {
    "k": int, "veto": bool, "wait": str, "distinct_operators": bool, "policy_id": str,
}
_VERIFIER: dict[str, _Types] = {
    "name": str, "kind": str, "operator": str, "trust_anchor": str, "algorithms": list,
    "timeout": (int, float), "retries": int, "max_age": int, "leeway": int, "rename": dict, "options": dict,
}
_TOP: dict[str, _Types] = {"federation": dict, "quorum": dict, "verifiers": list}


def _check(table: Mapping[str, Any], schema: Mapping[str, _Types], where: str, file: str) -> None:
    for key, value in table.items():
        if key not in schema:
            raise ConfigError(f"unknown key (allowed: {', '.join(sorted(schema))})", key=f"{where}{key}",
                              file=file)
        expected = schema[key]
        if not isinstance(value, expected) or (isinstance(value, bool) and expected in (int, (int, float))):
            raise ConfigError(f"wrong type {type(value).__name__}", key=f"{where}{key}", file=file)


def _choice(value: str, allowed: tuple[str, ...], key: str, file: str) -> str:
    if value not in allowed:
        raise ConfigError(f"must be one of {', '.join(allowed)}", key=key, file=file)
    return value


@dataclass(frozen=True, slots=True)
class VerifierConfig:
    spec: VerifierSpec
    trust_anchor: Path | None
    algorithms: tuple[str, ...] | None
    timeout: float
    retries: int
    max_age: int | None
    leeway: int
    rename: Mapping[str, str]


@dataclass(frozen=True, slots=True)
class Config:
    path: Path
    federation_id: str
    signing_key: str | None  # path (resolved) or env:NAME; None = ephemeral key (demo/tests only)
    algorithm: str | None
    result_format: str
    spelling: Spelling
    deadline: float
    result_ttl: int
    embed_results: bool
    session_ttl: float
    policy: QuorumPolicy
    verifiers: tuple[VerifierConfig, ...]

    def load_signing_key(self) -> SigningKey:
        if self.signing_key is None:
            return SigningKey.generate(self.algorithm or "ES256")
        return load_signing_key(self.signing_key, algorithm=self.algorithm)

    def build(self) -> Any:
        """Build the :class:`federation.Federation` this config describes (backends included)."""
        from .engine import Federation, Member

        members = []
        for vc in self.verifiers:
            backend = create(vc.spec)
            anchor = self._anchor(vc, backend)
            members.append(Member(backend, anchor, vc.timeout, vc.retries, vc.max_age, vc.leeway, vc.rename))
        return Federation(
            members, self.policy, self.load_signing_key(), federation_id=self.federation_id,
            result_format="cwt" if self.result_format == "cwt" else "jwt", spelling=self.spelling,
            deadline=self.deadline, ttl=self.result_ttl, session_ttl=self.session_ttl,
            embed_results=self.embed_results,
        )

    def _anchor(self, vc: VerifierConfig, backend: Any) -> TrustAnchor:
        if vc.trust_anchor is not None:
            return load_trust_anchor(vc.trust_anchor, algorithms=vc.algorithms)
        # An in-process backend may publish the key it signs with; a remote one must be configured.
        public = getattr(backend, "public_anchor", None)
        if isinstance(public, TrustAnchor):
            return public
        raise ConfigError("trust_anchor is required for this kind", key=f"verifiers.{vc.spec.name}.trust_anchor",
                          file=str(self.path))

    def anchors(self) -> dict[str, TrustAnchor]:
        """Each backend's anchor by name, for ``verify_result(reverify=True)`` on the RP side."""
        out = {}
        for vc in self.verifiers:
            if vc.trust_anchor is not None:
                out[vc.spec.name] = load_trust_anchor(vc.trust_anchor, algorithms=vc.algorithms)
        return out


def _path(base: Path, value: str) -> str:
    if value.startswith("env:"):
        return value
    p = Path(value).expanduser()
    return str(p if p.is_absolute() else base / p)


def parse_config(doc: Mapping[str, Any], path: Path) -> Config:
    file = str(path)
    base = path.parent
    _check(doc, _TOP, "", file)
    fed = doc.get("federation", {})
    quorum = doc.get("quorum", {})
    _check(fed, _FEDERATION, "federation.", file)
    _check(quorum, _QUORUM, "quorum.", file)
    raw_verifiers = doc.get("verifiers", [])
    if not raw_verifiers:
        raise ConfigError("at least one [[verifiers]] entry is required", key="verifiers", file=file)
    verifiers = []
    for i, v in enumerate(raw_verifiers):
        if not isinstance(v, Mapping):
            raise ConfigError("must be a table", key=f"verifiers[{i}]", file=file)
        _check(v, _VERIFIER, f"verifiers[{i}].", file)
        for required in ("name", "kind", "operator"):
            if not v.get(required):
                raise ConfigError("is required", key=f"verifiers[{i}].{required}", file=file)
        name = v["name"]
        rename = v.get("rename", {})
        if not all(isinstance(x, str) for x in (*rename.keys(), *rename.values())) or len(
                set(rename.values())) != len(rename):
            raise ConfigError("must map text to distinct text", key=f"verifiers.{name}.rename", file=file)
        algs = v.get("algorithms")
        if algs is not None and not all(isinstance(a, str) for a in algs):
            raise ConfigError("must be a list of algorithm names", key=f"verifiers.{name}.algorithms", file=file)
        timeout = float(v.get("timeout", 10.0))
        if timeout <= 0 or v.get("retries", 1) < 0:
            raise ConfigError("timeout must be > 0 and retries >= 0", key=f"verifiers.{name}", file=file)
        verifiers.append(VerifierConfig(
            spec=VerifierSpec(name, v["kind"], v["operator"], v.get("options", {}), base, file),
            trust_anchor=Path(_path(base, v["trust_anchor"])) if "trust_anchor" in v else None,
            algorithms=tuple(algs) if algs is not None else None,
            timeout=timeout,
            retries=v.get("retries", 1),
            max_age=v.get("max_age", 300),
            leeway=v.get("leeway", 60),
            rename=dict(rename),
        ))
    if len({vc.spec.name for vc in verifiers}) != len(verifiers):
        raise ConfigError("verifier names must be unique", key="verifiers.name", file=file)
    try:
        policy = QuorumPolicy(
            k=quorum.get("k", len(verifiers) // 2 + 1), n=len(verifiers), veto=quorum.get("veto", True),
            wait=quorum.get("wait", "all"), distinct_operators=quorum.get("distinct_operators", False),
            id=quorum.get("policy_id", "ratsfed:quorum/v1"),
        )
    except ConfigError as exc:
        raise ConfigError(exc.detail, key=exc.key, file=file) from exc
    deadline = float(fed.get("deadline", 15.0))
    if deadline <= 0:
        raise ConfigError("must be > 0", key="federation.deadline", file=file)
    return Config(
        path=path,
        federation_id=fed.get("id", "ratsfed"),
        signing_key=_path(base, fed["signing_key"]) if "signing_key" in fed else None,
        algorithm=fed.get("algorithm"),
        result_format=_choice(fed.get("result_format", "jwt"), ("jwt", "cwt"), "federation.result_format", file),
        spelling=Spelling(_choice(fed.get("spelling", "veraison"), ("veraison", "draft-03"), "federation.spelling",
                                  file)),
        deadline=deadline,
        result_ttl=fed.get("result_ttl", 300),
        embed_results=fed.get("embed_results", True),
        session_ttl=float(fed.get("session_ttl", 300.0)),
        policy=policy,
        verifiers=tuple(verifiers),
    )


def load_config(path: str | Path) -> Config:
    """Read and validate a TOML config file."""
    p = Path(path)
    try:
        with p.open("rb") as fh:
            doc = tomllib.load(fh)
    except OSError as exc:
        raise ConfigError(f"cannot read: {exc.strerror}", file=str(p)) from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"not valid TOML: {exc}", file=str(p)) from exc
    try:
        return parse_config(doc, p)
    except ConfigError:
        raise
    except Error as exc:
        raise ConfigError(str(exc), file=str(p)) from exc
