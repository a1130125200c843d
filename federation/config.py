"""TOML configuration, validated strictly: unknown keys and wrong types fail at load, naming the
key and the file (a typo must never silently become a default that weakens the policy).

Shape (see config/*.toml for examples and docs/configuration.md for every key)::

    [federation]   id, signing_key, algorithm, result_format, spelling, deadline, result_ttl,
                   embed_results, session_ttl
    [quorum]       k, veto, wait, distinct_operators, weak_binding, policy_id
    [[verifiers]]  name, kind, operator, trust_anchor, algorithms, timeout, retries, max_age,
                   leeway, rename, nonce, options (kind-specific table)
    [server]       role, host, port, max_body, max_concurrency, session_ttl, max_sessions,
                   max_session_bytes, auth_tokens_env, tls_cert, tls_key, verifier, spelling,
                   previous_keys, unhealthy_after (``ratsfed serve``; see docs/service.md)

Relative paths are resolved against the config file's folder.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from verifiers.registry import VerifierSpec, create

from .ear.model import Spelling
from .errors import ConfigError, Error
from .keys import SigningKey, TrustAnchor, load_signing_key, load_trust_anchor
from .quorum import QuorumPolicy

__all__ = ["Config", "ServerConfig", "VerifierConfig", "load_config", "parse_config"]

_Types = type | tuple[type, ...]
_FEDERATION: dict[str, _Types] = {
    "id": str, "signing_key": str, "algorithm": str, "result_format": str, "spelling": str,
    "deadline": (int, float), "result_ttl": int, "embed_results": bool, "session_ttl": (int, float),
}
_QUORUM: dict[str, _Types] = {
    "k": int, "veto": bool, "wait": str, "distinct_operators": bool, "weak_binding": bool, "policy_id": str,
}
_VERIFIER: dict[str, _Types] = {
    "name": str, "kind": str, "operator": str, "trust_anchor": str, "algorithms": list,
    "timeout": (int, float), "retries": int, "max_age": int, "leeway": int, "rename": dict, "nonce": str,
    "options": dict,
}
_SERVER: dict[str, _Types] = {
    "role": str, "host": str, "port": int, "max_body": int, "max_concurrency": int, "session_ttl": (int, float),
    "max_sessions": int, "max_session_bytes": int, "auth_tokens_env": str, "tls_cert": str, "tls_key": str,
    "verifier": str, "spelling": str, "previous_keys": list, "unhealthy_after": int,
}
_TOP: dict[str, _Types] = {"federation": dict, "quorum": dict, "verifiers": list, "server": dict}
_MAX_BODY = 4 << 20  # bytes: the largest request body a server may be configured to accept


def _check(table: Mapping[str, Any], schema: Mapping[str, _Types], where: str, file: str) -> None:
    for key, value in table.items():
        if key not in schema:
            raise ConfigError(f"unknown key (allowed: {', '.join(sorted(schema))})", key=f"{where}{key}",
                              file=file)
        expected = schema[key]
        allowed = expected if isinstance(expected, tuple) else (expected,)
        if not isinstance(value, allowed) or (isinstance(value, bool) and bool not in allowed):
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
    nonce: Literal["session", "report-data"] = "session"


@dataclass(frozen=True, slots=True)
class ServerConfig:
    """``[server]``: how ``ratsfed serve`` exposes this config (limits have units in comments)."""

    role: Literal["verifier", "federator"] = "federator"
    host: str = "127.0.0.1"
    port: int = 8080  # 0 = any free port (the bound address is printed at start)
    max_body: int = 1 << 20  # bytes per request body (413 above)
    max_concurrency: int = 64  # appraisals in flight (503 + Retry-After above)
    session_ttl: float = 150.0  # seconds a challenge-response session lives (Veraison: 2m30s)
    max_sessions: int = 10_000  # live sessions held at once (503 above)
    max_session_bytes: int = 64 << 20  # bytes of evidence + results held in sessions at once
    auth_tokens_env: str | None = None  # env var with comma-separated bearer tokens; None = no auth
    tls_cert: Path | None = None
    tls_key: Path | None = None
    verifier: str | None = None  # verifier role: the [[verifiers]] entry (kind local) to expose
    spelling: Spelling | None = None  # EAR spelling of results; None = [federation].spelling
    previous_keys: tuple[Path, ...] = ()  # public keys still published in the JWKS (rotation)
    unhealthy_after: int = 3  # consecutive failed votes that make a backend unhealthy


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
    server: ServerConfig = ServerConfig()

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
            members.append(Member(backend, anchor, vc.timeout, vc.retries, vc.max_age, vc.leeway, vc.rename,
                                  vc.nonce))
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


def _positive(table: Mapping[str, Any], key: str, default: Any, file: str, *, low: float = 1,
              high: float | None = None) -> Any:
    value = table.get(key, default)
    if value < low or (high is not None and value > high):
        bounds = f"{low}..{high}" if high is not None else f">= {low}"
        raise ConfigError(f"must be {bounds}", key=f"server.{key}", file=file)
    return value


def _server(table: Mapping[str, Any], base: Path, file: str, verifiers: list[VerifierConfig],
            federation: Mapping[str, Any]) -> ServerConfig:
    _check(table, _SERVER, "server.", file)
    role = _choice(table.get("role", "federator"), ("verifier", "federator"), "server.role", file)
    d = ServerConfig()
    tls = [table.get("tls_cert"), table.get("tls_key")]
    if (tls[0] is None) != (tls[1] is None):
        raise ConfigError("tls_cert and tls_key go together", key="server.tls_cert", file=file)
    keys = table.get("previous_keys", [])
    if not all(isinstance(k, str) for k in keys):
        raise ConfigError("must be a list of public key file paths", key="server.previous_keys", file=file)
    env = table.get("auth_tokens_env")
    if env is not None and (not env or not env.replace("_", "").isalnum()):
        raise ConfigError("must name an environment variable", key="server.auth_tokens_env", file=file)
    verifier = table.get("verifier")
    if role == "verifier":
        local = [vc for vc in verifiers if vc.spec.kind == "local"]
        if verifier is None and len(verifiers) == 1:
            verifier = verifiers[0].spec.name
        chosen = [vc for vc in verifiers if vc.spec.name == verifier]
        if not chosen:
            names = ", ".join(vc.spec.name for vc in local) or "none configured"
            raise ConfigError(f"name the [[verifiers]] entry to expose (kind local: {names})",
                              key="server.verifier", file=file)
        if chosen[0].spec.kind != "local":
            raise ConfigError(f"verifier {verifier!r} is kind {chosen[0].spec.kind!r}; a verifier-role server "
                              "exposes a local appraiser", key="server.verifier", file=file)
    elif verifier is not None:
        raise ConfigError("only for role = \"verifier\"", key="server.verifier", file=file)
    session_ttl = float(_positive(table, "session_ttl", d.session_ttl, file, low=1))
    fed_ttl = float(federation.get("session_ttl", 300.0))
    if role == "federator" and session_ttl > fed_ttl:
        raise ConfigError(f"must not exceed federation.session_ttl ({fed_ttl:g}s): the federation refuses "
                          "older sessions", key="server.session_ttl", file=file)
    spelling = table.get("spelling")
    return ServerConfig(
        role="verifier" if role == "verifier" else "federator",
        host=table.get("host", d.host),
        port=_positive(table, "port", d.port, file, low=0, high=65535),
        max_body=_positive(table, "max_body", d.max_body, file, high=_MAX_BODY),
        max_concurrency=_positive(table, "max_concurrency", d.max_concurrency, file),
        session_ttl=session_ttl,
        max_sessions=_positive(table, "max_sessions", d.max_sessions, file),
        max_session_bytes=_positive(table, "max_session_bytes", d.max_session_bytes, file, low=1024),
        auth_tokens_env=env,
        tls_cert=Path(_path(base, tls[0])) if tls[0] is not None else None,
        tls_key=Path(_path(base, tls[1])) if tls[1] is not None else None,
        verifier=verifier,
        spelling=Spelling(_choice(spelling, ("veraison", "draft-03"), "server.spelling", file))
        if spelling is not None else None,
        previous_keys=tuple(Path(_path(base, k)) for k in keys),
        unhealthy_after=_positive(table, "unhealthy_after", d.unhealthy_after, file),
    )


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
        nonce_mode = v.get("nonce", "session")
        if nonce_mode not in ("session", "report-data"):
            raise ConfigError("must be 'session' or 'report-data'", key=f"verifiers.{name}.nonce", file=file)
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
            nonce="report-data" if nonce_mode == "report-data" else "session",
        ))
    if len({vc.spec.name for vc in verifiers}) != len(verifiers):
        raise ConfigError("verifier names must be unique", key="verifiers.name", file=file)
    try:
        policy = QuorumPolicy(
            k=quorum.get("k", len(verifiers) // 2 + 1), n=len(verifiers), veto=quorum.get("veto", True),
            wait=quorum.get("wait", "all"), distinct_operators=quorum.get("distinct_operators", False),
            id=quorum.get("policy_id", "ratsfed:quorum/v1"), weak_binding=quorum.get("weak_binding", False),
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
        server=_server(doc.get("server", {}), base, file, verifiers, fed),
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
