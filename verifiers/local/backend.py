"""``kind = "local"``: the local appraiser as a federation backend that signs its own EAR.

It issues a signed EAR like any remote verifier (its own key), and the federation checks it on
the same path as every other result: one way in for results, whatever their origin. Appraisal is
CPU work on the event loop (parsing plus a few signature checks, about a millisecond; a cold
SEV-SNP or TDX appraisal verifies a certificate chain and collateral, a few milliseconds);
loading CoRIMs, collateral folders and root certificates is file I/O done once, at construction.

Options (``options`` of a ``kind = "local"`` verifier, validated strictly: an unknown key, a
wrong type or a bad value is a :class:`~federation.errors.ConfigError` naming the key and file;
docs/local-appraiser.md has the table): ``corim``, ``endorsers``, ``trust_unsigned``,
``signing_key``, ``at``, ``schemes``, ``annotate``, ``result_format``; for the confidential-VM
schemes ``collateral`` (files and folders of an offline :class:`~.collateral.folder.FolderStore`),
``amd_roots`` / ``intel_roots`` (root certificates trusted in addition to the pinned ones),
``allow_debug`` and ``report_data`` (the SEV-SNP policy and the TDX scheme); and ``freshness``
(false: the schemes get an empty nonce, every submodule says ``"freshness": "not checked"``, and
the EAR still echoes the session nonce).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal, TypeVar

from cryptography import x509

from federation.ear.model import Spelling
from federation.ear.token import encode_ear
from federation.errors import ConfigError, Error
from federation.evidence import Evidence
from federation.keys import SigningKey, TrustAnchor, load_signing_key, load_trust_anchor

from ..base import RawResult, appraisal_time
from ..registry import Kind, VerifierSpec, register
from .appraiser import LocalAppraiser
from .collateral.amd import TrustedRoots
from .collateral.base import CollateralStore, EmptyStore, resolve
from .collateral.folder import FolderStore
from .corim.store import ReferenceValueStore, load_paths
from .evidence.tdx import load_certificates
from .scheme import Scheme
from .schemes import BUILTIN
from .schemes.sevsnp import REPORT_DATA_RULES, SevSnpScheme, SnpPolicy
from .schemes.tdx import TdxScheme

__all__ = ["OPTIONS", "LocalBackend", "cvm_schemes", "intel_roots"]


class LocalBackend:
    kind = "local"

    def __init__(self, name: str, operator: str, appraiser: LocalAppraiser, key: SigningKey, *,
                 fmt: Literal["jwt", "cwt"] = "jwt", spelling: Spelling = Spelling.VERAISON,
                 at: int | None = None, collateral: CollateralStore | None = None, freshness: bool = True) -> None:
        self.name = name
        self.operator = operator
        self.appraiser = appraiser
        self.key = key
        self.fmt: Literal["jwt", "cwt"] = fmt
        self.spelling = spelling
        self.at = at
        self.collateral: CollateralStore = collateral if collateral is not None else EmptyStore()
        self.freshness = freshness  # false: the Evidence is not checked against the session nonce

    @property
    def public_anchor(self) -> TrustAnchor:
        return TrustAnchor((self.key.public,))

    def times(self) -> tuple[datetime, int]:
        """(time for validity checks, iat): the configured ``at`` governs validity only; a time
        the federation fixed for this appraisal governs both; otherwise the clock."""
        fixed = appraisal_time.get()
        issued = fixed if fixed is not None else int(time.time())
        check = self.at if self.at is not None else issued
        return datetime.fromtimestamp(check, UTC), issued

    async def appraise(self, evidence: Evidence, nonce: bytes, deadline: float) -> RawResult:
        now, issued = self.times()
        found = await resolve(self.collateral, self.appraiser.collateral_requests(evidence))
        ear = self.appraiser.appraise(evidence, nonce, now, issued_at=issued, collateral=found,
                                      freshness=self.freshness)
        if self.spelling is not Spelling.VERAISON:
            ear = replace(ear, profile=self.spelling.profile)  # claim names and profile go together
        token = encode_ear(ear, self.key, fmt=self.fmt, spelling=self.spelling)
        return RawResult(token, "application/eat+jwt" if self.fmt == "jwt" else "application/eat+cwt")


def _time(value: object, spec: VerifierSpec) -> int | None:
    if value is None:
        return None
    if isinstance(value, int):
        return value
    try:
        return int(datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp())
    except ValueError as exc:
        raise ConfigError("not an ISO 8601 time", key=f"verifiers.{spec.name}.at", file=spec.source) from exc


def _key(spec: VerifierSpec, option: str) -> str:
    return f"verifiers.{spec.name}.{option}"


def _strings(spec: VerifierSpec, option: str) -> list[str]:
    """A list option whose items must all be text (paths or names)."""
    value = spec.options.get(option, [])
    for i, item in enumerate(value):
        if not isinstance(item, str):
            raise ConfigError(f"item {i} is {type(item).__name__}, want a string", key=_key(spec, option),
                              file=spec.source)
    return list(value)


def intel_roots(paths: Sequence[str | Path]) -> tuple[x509.Certificate, ...]:
    """The certificates in *paths* (PEM, several per file, or one DER each): Intel roots the
    operator trusts in addition to the pinned Intel SGX Root CA."""
    certs: list[x509.Certificate] = []
    for path in map(Path, paths):
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise ConfigError(f"cannot read Intel root: {exc.strerror}", file=str(path)) from exc
        try:
            found = load_certificates(data, pem=b"-----BEGIN" in data)
        except ValueError as exc:
            raise ConfigError(f"not a PEM or DER certificate: {exc}", file=str(path)) from exc
        if not found:
            raise ConfigError("no certificate in the file", file=str(path))
        certs.extend(found)
    return tuple(certs)


def cvm_schemes(*, allow_debug: bool = False, report_data: str = "raw", amd_roots: Sequence[str | Path] = (),
                intel_root_files: Sequence[str | Path] = ()) -> dict[str, Scheme]:
    """The SEV-SNP and TDX schemes under one policy, by scheme name: *allow_debug* (SNP guest
    policy DEBUG, TDX DEBUG attribute), the REPORT_DATA rule, and root certificate files trusted
    in addition to the pinned AMD ARKs and Intel SGX Root CA (a ConfigError names a bad file)."""
    return _cvm(allow_debug, report_data, TrustedRoots.from_files(amd_roots), intel_roots(intel_root_files))


def _cvm(allow_debug: bool, report_data: str, amd: TrustedRoots, intel: Sequence[x509.Certificate]
         ) -> dict[str, Scheme]:
    snp = SevSnpScheme(SnpPolicy(allow_debug=allow_debug, report_data=report_data), amd)
    tdx = TdxScheme(allow_debug=allow_debug, report_data=report_data, roots=intel)
    return {snp.descriptor.name: snp, tdx.descriptor.name: tdx}


def _rooted(spec: VerifierSpec, option: str) -> list[Path]:
    return [spec.path(p) for p in _strings(spec, option)]


_T = TypeVar("_T")


def _load(spec: VerifierSpec, option: str, what: Callable[[], _T]) -> _T:
    """Run *what* (file loading for *option*); a ConfigError names the option's key too."""
    try:
        return what()
    except ConfigError as exc:
        raise ConfigError(exc.detail, key=_key(spec, option), file=spec.source) from exc


def from_spec(spec: VerifierSpec) -> LocalBackend:
    o = spec.options
    at = _time(o.get("at"), spec)
    now = datetime.fromtimestamp(at if at is not None else time.time(), UTC)
    corims, endorsers = _rooted(spec, "corim"), _rooted(spec, "endorsers")
    trust_unsigned = bool(o.get("trust_unsigned", False))
    try:
        anchors = [load_trust_anchor(p) for p in endorsers]
        store: ReferenceValueStore = load_paths(corims, anchors, now, trust_unsigned=trust_unsigned)
    except ConfigError:
        raise
    except Error as exc:
        raise ConfigError(str(exc), key=_key(spec, "corim"), file=spec.source) from exc
    report_data = o.get("report_data", "raw")
    if report_data not in REPORT_DATA_RULES:
        raise ConfigError(f"must be one of {', '.join(REPORT_DATA_RULES)}", key=_key(spec, "report_data"),
                          file=spec.source)
    amd_files, intel_files = _rooted(spec, "amd_roots"), _rooted(spec, "intel_roots")
    amd = _load(spec, "amd_roots", lambda: TrustedRoots.from_files(amd_files))
    intel = _load(spec, "intel_roots", lambda: intel_roots(intel_files))
    available: dict[str, Scheme] = {**BUILTIN, **_cvm(bool(o.get("allow_debug", False)), report_data, amd, intel)}
    names = _strings(spec, "schemes") if "schemes" in o else sorted(BUILTIN)
    unknown = [n for n in names if n not in BUILTIN]
    if unknown:
        raise ConfigError(f"unknown scheme(s) {', '.join(unknown)}; known: {', '.join(sorted(BUILTIN))}",
                          key=_key(spec, "schemes"), file=spec.source)
    appraiser = LocalAppraiser([available[n] for n in names], store, build=f"ratsfed-local ({spec.name})",
                               annotate=bool(o.get("annotate", True)))
    paths = _rooted(spec, "collateral")
    collateral = _load(spec, "collateral", lambda: FolderStore(paths)) if paths else None
    key = load_signing_key(spec.path(o["signing_key"])) if "signing_key" in o else SigningKey.generate("ES256")
    fmt = o.get("result_format", "jwt")
    if fmt not in ("jwt", "cwt"):
        raise ConfigError("must be jwt or cwt", key=_key(spec, "result_format"), file=spec.source)
    return LocalBackend(spec.name, spec.operator, appraiser, key, fmt=fmt, at=at, collateral=collateral,
                        freshness=bool(o.get("freshness", True)))


OPTIONS: Mapping[str, type | tuple[type, ...]] = {
    "corim": list, "endorsers": list, "trust_unsigned": bool, "signing_key": str, "at": (str, int),
    "schemes": list, "annotate": bool, "result_format": str,
    "collateral": list, "amd_roots": list, "intel_roots": list, "allow_debug": bool, "report_data": str,
    "freshness": bool,
}
"""The options of ``kind = "local"`` and their types (docs/local-appraiser.md)."""

register(Kind("local", from_spec, OPTIONS))
