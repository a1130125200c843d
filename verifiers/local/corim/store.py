"""The reference-value store: triples from accepted CoRIMs, each with who authorised it.

Theory of operation: :meth:`ReferenceValueStore.add` takes a :class:`VerifiedCorim` (signed under
a configured anchor, or unsigned input the operator marked as trusted), applies its profile
(``profiles``: rejects what breaks it, rewrites legacy encodings) and indexes every triple by
kind and class-id, next to its :class:`Provenance`: CoRIM id, CoMID tag id and version, profile,
signer name and key thumbprint (None for local input), the ``dependent-rims`` locators (e.g. a
link to SLSA build provenance) and the window in which it may be used.

Lookups take the appraisal's ``now`` and return only triples whose window covers it, so an
expired CoRIM contributes nothing even in a long-running process. Two lookup directions:

* values (reference, endorsed): by default the draft's rule: the triple's environment is the
  *condition*, contained in the Attester's environment (``match.match_environment``); with
  ``by_identity=True`` the identity rule below, which is how Veraison finds PSA reference
  values (by implementation id; a triple's vendor/model are descriptive there);
* keys (attest-key, identity): found by identity: every attribute the caller names (e.g. PSA
  implementation id and instance id) must be present and equal in the triple's environment;
  descriptive extras in the triple (vendor, model) do not hide it.

Only :func:`load_paths` touches the file system; everything else is pure.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Generic, TypeVar

from federation.errors import ConfigError, Error, UsageError
from federation.keys import TrustAnchor

from .decode import MAX_CORIM_SIZE
from .match import match_environment
from .model import (
    ConditionalEndorsement,
    ConditionalSeries,
    EndorsedTriple,
    Environment,
    KeyTriple,
    Locator,
    ReferenceTriple,
    Tagged,
    Validity,
)
from .profiles import DEFAULT_PROFILES, ProfileRegistry
from .signed import VerifiedCorim, verify_corim

__all__ = ["CORIM_SUFFIXES", "Provenance", "ReferenceValueStore", "Rejected", "Stored", "load_paths"]

T = TypeVar("T")
CORIM_SUFFIXES = frozenset({".cbor", ".corim", ".cose"})  # what a folder scan picks up
_MAX_FILES = 10_000  # per load_paths call


@dataclass(frozen=True, slots=True)
class Provenance:
    """Who authorised a stored triple, and where it came from (travels into the EAR)."""

    corim_id: str
    comid_id: str
    comid_version: int
    profile: str | None
    signer_name: str | None
    signer_uri: str | None
    key_thumbprint: str | None
    dependent_rims: tuple[Locator, ...]
    validity: Validity | None
    corim_sha256: str
    source: str | None = None

    def valid_at(self, now: datetime) -> bool:
        return self.validity is None or self.validity.covers(now)


@dataclass(frozen=True)
class Stored(Generic[T]):
    """A triple and its provenance."""

    triple: T
    provenance: Provenance


@dataclass(frozen=True, slots=True)
class Rejected:
    """A file :func:`load_paths` skipped (``skip_invalid=True``), and why."""

    source: str
    error: Error


class _Index(Generic[T]):
    """Triples of one kind, with their environments, bucketed by class-id (None: no class-id)."""

    def __init__(self) -> None:
        self._by_class: dict[Tagged | None, list[tuple[Environment, Stored[T]]]] = {}

    def add(self, item: Stored[T], env: Environment) -> None:
        self._by_class.setdefault(env.class_id, []).append((env, item))

    def candidates(self, class_id: Tagged | None) -> list[tuple[Environment, Stored[T]]]:
        if class_id is None:
            return [s for bucket in self._by_class.values() for s in bucket]
        return [*self._by_class.get(class_id, ()), *self._by_class.get(None, ())]

    def __len__(self) -> int:
        return sum(map(len, self._by_class.values()))


def _identity_match(query: Environment, env: Environment) -> bool:
    """Keys are found by identity: the query's attributes are contained in the triple's environment."""
    return match_environment(query, env)


def _value_match(query: Environment, env: Environment) -> bool:
    """Values follow the draft: the triple's environment (condition) is contained in the Attester's."""
    return match_environment(env, query)


class ReferenceValueStore:
    """Reference values, endorsements and keys from accepted CoRIMs, with provenance."""

    def __init__(self, profiles: ProfileRegistry = DEFAULT_PROFILES) -> None:
        self._profiles = profiles
        self._reference: _Index[ReferenceTriple] = _Index()
        self._endorsed: _Index[EndorsedTriple] = _Index()
        self._attest_key: _Index[KeyTriple] = _Index()
        self._identity: _Index[KeyTriple] = _Index()
        self._conditional: list[Stored[ConditionalEndorsement]] = []
        self._series: list[Stored[ConditionalSeries]] = []
        self.sources: list[Provenance] = []  # one per accepted CoMID
        self.rejected: list[Rejected] = []

    def add(self, verified: VerifiedCorim, *, source: str | None = None) -> int:
        """Apply the CoRIM's profile and index its triples; return how many were added.

        Raises :class:`~.profiles.ProfileError` if the CoRIM breaks its profile (nothing is added).
        """
        corim = self._profiles.validate(verified.corim)
        added = 0
        for comid in corim.comids:
            prov = Provenance(
                corim_id=corim.id_text, comid_id=comid.tag_id_text, comid_version=comid.tag_version,
                profile=corim.profile.value if corim.profile is not None else None,
                signer_name=verified.signer_name, signer_uri=verified.signer_uri,
                key_thumbprint=verified.key_thumbprint, dependent_rims=corim.dependent_rims,
                validity=verified.validity, corim_sha256=verified.sha256, source=source)
            self.sources.append(prov)
            t = comid.triples
            for r in t.reference:
                self._reference.add(Stored(r, prov), r.environment)
            for e in t.endorsed:
                self._endorsed.add(Stored(e, prov), e.environment)
            for k in t.attest_key:
                self._attest_key.add(Stored(k, prov), k.environment)
            for k in t.identity:
                self._identity.add(Stored(k, prov), k.environment)
            self._conditional.extend(Stored(c, prov) for c in t.conditional)
            self._series.extend(Stored(s, prov) for s in t.conditional_series)
            added += (len(t.reference) + len(t.endorsed) + len(t.attest_key) + len(t.identity)
                      + len(t.conditional) + len(t.conditional_series))
        return added

    def __len__(self) -> int:
        return (len(self._reference) + len(self._endorsed) + len(self._attest_key) + len(self._identity)
                + len(self._conditional) + len(self._series))

    @staticmethod
    def _select(index: _Index[T], query: Environment, now: datetime, match: Callable[[Environment, Environment], bool],
                profiles: Collection[str | None] | None) -> list[Stored[T]]:
        if query == Environment():
            raise UsageError("a store lookup needs at least one environment attribute")
        return [
            s for env, s in index.candidates(query.class_id)
            if s.provenance.valid_at(now)
            and (profiles is None or s.provenance.profile in profiles)
            and match(query, env)
        ]

    def reference_values(self, env: Environment, now: datetime, *, by_identity: bool = False,
                         profiles: Collection[str | None] | None = None) -> list[Stored[ReferenceTriple]]:
        """Reference-value triples for the Attester's *env*.

        By default the draft's rule (the triple's environment is contained in *env*). With
        *by_identity*, the triples whose environment contains what *env* names, as Veraison
        looks PSA reference values up by implementation id alone (a triple's vendor/model are
        then descriptive, not conditions). *profiles* keeps only triples of CoRIMs with one of
        these profile ids (``None`` in it: CoRIMs without a profile); None keeps all.
        """
        return self._select(self._reference, env, now, _identity_match if by_identity else _value_match, profiles)

    def endorsed_values(self, env: Environment, now: datetime, *, by_identity: bool = False,
                        profiles: Collection[str | None] | None = None) -> list[Stored[EndorsedTriple]]:
        """Endorsed-value triples for the Attester's *env* (same two modes as :meth:`reference_values`)."""
        return self._select(self._endorsed, env, now, _identity_match if by_identity else _value_match, profiles)

    def attest_keys(self, env: Environment, now: datetime, *,
                    profiles: Collection[str | None] | None = None) -> list[Stored[KeyTriple]]:
        """Attest-key triples for the identity *env* names (e.g. implementation id + instance id)."""
        return self._select(self._attest_key, env, now, _identity_match, profiles)

    def identity_keys(self, env: Environment, now: datetime, *,
                      profiles: Collection[str | None] | None = None) -> list[Stored[KeyTriple]]:
        """Identity triples for the identity *env* names."""
        return self._select(self._identity, env, now, _identity_match, profiles)

    def conditional_endorsements(self, now: datetime) -> list[Stored[ConditionalEndorsement]]:
        """Every conditional-endorsement triple usable at *now* (the caller evaluates conditions)."""
        return [s for s in self._conditional if s.provenance.valid_at(now)]

    def conditional_series(self, now: datetime) -> list[Stored[ConditionalSeries]]:
        """Every conditional-endorsement-series triple usable at *now*."""
        return [s for s in self._series if s.provenance.valid_at(now)]


# --- the edge: files and folders ------------------------------------------------------------

def _files(paths: Iterable[str | Path]) -> list[Path]:
    """Named files as given; folders scanned recursively for CoRIM suffixes, in sorted order."""
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            out.extend(sorted(f for f in p.rglob("*") if f.is_file() and f.suffix.lower() in CORIM_SUFFIXES))
        elif p.is_file():
            out.append(p)
        else:
            raise ConfigError("no such CoRIM file or folder", file=str(p))
        if len(out) > _MAX_FILES:
            raise ConfigError(f"more than {_MAX_FILES} CoRIM files", file=str(p))
    return out


def _read(path: Path) -> bytes:
    try:
        with path.open("rb") as fh:
            data = fh.read(MAX_CORIM_SIZE + 1)
    except OSError as exc:
        raise ConfigError(f"cannot read CoRIM: {exc.strerror}", file=str(path)) from exc
    if len(data) > MAX_CORIM_SIZE:
        raise ConfigError(f"CoRIM larger than {MAX_CORIM_SIZE} bytes", file=str(path))
    return data


def _located(exc: Error, path: Path) -> Error:
    """The same kind of error (same reason code and attributes), with the file named."""
    try:
        located = type(exc)(f"{path}: {exc.detail}")
    except TypeError:  # an error type that needs more than a message: keep it as it is
        return exc
    for name, value in vars(exc).items():
        if name != "detail":
            setattr(located, name, value)
    return located


def load_paths(paths: Sequence[str | Path], anchors: Sequence[TrustAnchor], now: datetime, *,
               trust_unsigned: bool = False, skip_invalid: bool = False,
               profiles: ProfileRegistry = DEFAULT_PROFILES) -> ReferenceValueStore:
    """Build a store from CoRIM files and folders (the only function here that does I/O).

    Signed CoRIMs must verify under one of *anchors* at *now*; unsigned ones are accepted only
    with *trust_unsigned* (operator-provided local input). By default the first bad file raises
    its error, with the file named; with *skip_invalid* it is recorded in ``store.rejected``.
    """
    store = ReferenceValueStore(profiles)
    for path in _files(paths):
        try:
            verified = verify_corim(_read(path), anchors, now, trust_unsigned=trust_unsigned)
            store.add(verified, source=str(path))
        except ConfigError:
            raise
        except Error as exc:
            located = _located(exc, path)
            if not skip_invalid:
                raise located from exc
            store.rejected.append(Rejected(str(path), located))
    return store

