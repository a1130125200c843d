"""The CoRIM / CoMID data model: frozen dataclasses, valid once the decoder has built them.

Why one model for every layer: the decoder (``decode``, ``comid``), the profile rules
(``profiles``), the comparison rules (``match``) and the store (``store``) all read the same
objects, so a rule is written once against names (``environment.class_.class_id``), never
against CBOR map keys. Names follow draft-ietf-rats-corim (≈ -11) CDDL member names.

Values whose CBOR tag says what they are (class ids, instance ids, group ids, measurement keys,
crypto keys) are :class:`Tagged`: a type name from the draft's (or Veraison's) vocabulary, the
content, and the tag. Structured content (a COSE_Key map, a legacy ``psa.refval-id`` map) is kept
as its deterministic CBOR encoding, so that equality of two ``Tagged`` values is exactly the
draft's "binary comparison of the deterministic encoding" and every value is hashable.

Maps that are only read, never used as keys (flags, integrity registers, extension code points)
are read-only ``Mapping`` views.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType
from typing import Any

__all__ = [
    "EMPTY",
    "HASH_ALGORITHMS",
    "ClassMap",
    "Comid",
    "ConditionalEndorsement",
    "ConditionalSeries",
    "CoswidTriple",
    "Corim",
    "CorimMeta",
    "Digest",
    "DomainTriple",
    "EndorsedTriple",
    "Entity",
    "Environment",
    "Identifier",
    "IntRange",
    "KeyTriple",
    "LinkedTag",
    "Locator",
    "Measurement",
    "MeasurementValues",
    "OpaqueTag",
    "ProfileId",
    "RawValue",
    "ReferenceTriple",
    "SeriesRecord",
    "StatefulEnvironment",
    "Svn",
    "Tagged",
    "Triples",
    "Validity",
    "Version",
    "id_text",
]

EMPTY: Mapping[Any, Any] = MappingProxyType({})

Identifier = str | bytes
"""A CoRIM id or CoMID tag id: text, or a 16-byte binary UUID."""

# IANA "Named Information Hash Algorithm Registry" (RFC 6920): id -> (name, digest length).
# Digests may name an algorithm by id (preferred) or by name; the matcher treats both as one.
HASH_ALGORITHMS: Mapping[int, tuple[str, int]] = MappingProxyType({
    1: ("sha-256", 32),
    2: ("sha-256-128", 16),
    3: ("sha-256-120", 15),
    4: ("sha-256-96", 12),
    5: ("sha-256-64", 8),
    6: ("sha-256-32", 4),
    7: ("sha-384", 48),
    8: ("sha-512", 64),
    9: ("sha3-224", 28),
    10: ("sha3-256", 32),
    11: ("sha3-384", 48),
    12: ("sha3-512", 64),
})


def id_text(ident: Identifier) -> str:
    """A CoRIM/CoMID identifier as people read it: text as is, a binary UUID in its 8-4-4-4-12 form."""
    if isinstance(ident, bytes):
        return str(uuid.UUID(bytes=ident)) if len(ident) == 16 else ident.hex()
    return ident


@dataclass(frozen=True, slots=True)
class Digest:
    """``[alg, value]`` (EAT measured-component digest); ``alg`` is a registry id or name."""

    alg: int | str
    value: bytes


@dataclass(frozen=True, slots=True)
class Tagged:
    """A typed identifier or key.

    ``type`` is the name of the variant (``"bytes"`` for tag 560, ``"uuid"`` for 37, ``"ueid"``
    for 550, ``"pkix-base64-key"`` for 554, ``"string"`` / ``"uint"`` for untagged measurement
    keys, ...); ``tag`` is the CBOR tag (None when untagged); ``value`` the content: bytes, text,
    an int, a :class:`Digest` (thumbprints), or the deterministic CBOR of structured content.
    """

    type: str
    value: bytes | str | int | Digest
    tag: int | None = None

    def __str__(self) -> str:
        v = self.value
        if self.type == "uuid" and isinstance(v, bytes) and len(v) == 16:
            shown = str(uuid.UUID(bytes=v))
        elif isinstance(v, bytes):
            shown = v.hex()
        elif isinstance(v, Digest):
            shown = f"{v.alg}:{v.value.hex()}"
        else:
            shown = str(v)
        return f"{self.type}:{shown}"


@dataclass(frozen=True, slots=True)
class ClassMap:
    """``class-map``: what kind of environment (at least one attribute is set)."""

    class_id: Tagged | None = None
    vendor: str | None = None
    model: str | None = None
    layer: int | None = None
    index: int | None = None


@dataclass(frozen=True, slots=True)
class Environment:
    """``environment-map``: class, instance and/or group (at least one is set)."""

    class_: ClassMap | None = None
    instance: Tagged | None = None
    group: Tagged | None = None

    @property
    def class_id(self) -> Tagged | None:
        return self.class_.class_id if self.class_ is not None else None


@dataclass(frozen=True, slots=True)
class Version:
    """``version-map``: a version text and, optionally, its CoSWID version scheme (16384 = semver)."""

    version: str
    scheme: int | str | None = None


@dataclass(frozen=True, slots=True)
class Svn:
    """A security version number: exact (plain or tag 552) or a minimum (tag 553)."""

    value: int
    minimum: bool = False


@dataclass(frozen=True, slots=True)
class RawValue:
    """``raw-value``: bytes (tag 560), optionally with a mask (tag 563, or the deprecated key 5).

    No mask means every bit is compared.
    """

    value: bytes
    mask: bytes | None = None


@dataclass(frozen=True, slots=True)
class IntRange:
    """``int-range-type-choice``; ``None`` is an unbounded end (the CDDL's null infinities).

    A plain integer ``v`` is the range ``[v, v]``: with that reading the draft's four int/range
    comparison cases are all one rule (the condition range contains the entry range).
    """

    min: int | None
    max: int | None


@dataclass(frozen=True, slots=True)
class MeasurementValues:
    """``measurement-values-map`` (mval). Unknown and profile code points land in ``extensions``."""

    version: Version | None = None
    svn: Svn | None = None
    digests: tuple[Digest, ...] | None = None
    flags: Mapping[int, bool] | None = None
    raw: RawValue | None = None
    mac_addr: bytes | None = None
    ip_addr: bytes | None = None
    serial_number: str | None = None
    ueid: bytes | None = None
    uuid: bytes | None = None
    name: str | None = None
    cryptokeys: tuple[Tagged, ...] | None = None
    integrity_registers: Mapping[int | str, tuple[Digest, ...]] | None = None
    int_range: IntRange | None = None
    extensions: Mapping[int, Any] = field(default_factory=lambda: EMPTY)


@dataclass(frozen=True, slots=True)
class Measurement:
    """``measurement-map``: an optional key naming the measured element, its values, its authority."""

    mval: MeasurementValues
    mkey: Tagged | None = None
    authorized_by: tuple[Tagged, ...] | None = None


@dataclass(frozen=True, slots=True)
class ReferenceTriple:
    """Reference-values triple (key 0): the environment is expected to be in this state."""

    environment: Environment
    measurements: tuple[Measurement, ...]


@dataclass(frozen=True, slots=True)
class EndorsedTriple:
    """Endorsed-values triple (key 1): the endorser asserts these values for the environment."""

    environment: Environment
    measurements: tuple[Measurement, ...]


@dataclass(frozen=True, slots=True)
class KeyTriple:
    """Identity (key 2) or attest-key (key 3) triple: keys bound to an environment."""

    environment: Environment
    keys: tuple[Tagged, ...]
    mkey: Tagged | None = None
    authorized_by: tuple[Tagged, ...] | None = None


@dataclass(frozen=True, slots=True)
class DomainTriple:
    """Trust-dependency (key 4) or domain-membership (key 5) triple."""

    domain: Environment
    members: tuple[Environment, ...]


@dataclass(frozen=True, slots=True)
class CoswidTriple:
    """CoMID-CoSWID linking triple (key 6)."""

    environment: Environment
    tag_ids: tuple[Identifier, ...]


@dataclass(frozen=True, slots=True)
class StatefulEnvironment:
    """An environment in a given state: the condition of a conditional endorsement."""

    environment: Environment
    measurements: tuple[Measurement, ...]


@dataclass(frozen=True, slots=True)
class ConditionalEndorsement:
    """Conditional-endorsement triple (key 10): when every condition holds, add the endorsements."""

    conditions: tuple[StatefulEnvironment, ...]
    endorsements: tuple[EndorsedTriple, ...]


@dataclass(frozen=True, slots=True)
class SeriesRecord:
    """One step of a conditional-endorsement series: if ``condition`` matches, add ``addition``."""

    condition: tuple[Measurement, ...]
    addition: tuple[Measurement, ...]


@dataclass(frozen=True, slots=True)
class ConditionalSeries:
    """Conditional-endorsement-series triple (key 8): a common condition, then the first matching step."""

    environment: Environment
    measurements: tuple[Measurement, ...]
    series: tuple[SeriesRecord, ...]
    authorized_by: tuple[Tagged, ...] | None = None


@dataclass(frozen=True, slots=True)
class Triples:
    """``triples-map`` (at least one kind present); attribute names are the store's vocabulary."""

    reference: tuple[ReferenceTriple, ...] = ()
    endorsed: tuple[EndorsedTriple, ...] = ()
    identity: tuple[KeyTriple, ...] = ()
    attest_key: tuple[KeyTriple, ...] = ()
    dependency: tuple[DomainTriple, ...] = ()
    membership: tuple[DomainTriple, ...] = ()
    coswid: tuple[CoswidTriple, ...] = ()
    conditional_series: tuple[ConditionalSeries, ...] = ()
    conditional: tuple[ConditionalEndorsement, ...] = ()
    extensions: Mapping[int, Any] = field(default_factory=lambda: EMPTY)

    def environments(self) -> Iterator[Environment]:
        """Every environment any triple names (conditions, subjects, domains, members)."""
        subjects: tuple[ReferenceTriple | EndorsedTriple | KeyTriple | CoswidTriple, ...] = (
            *self.reference, *self.endorsed, *self.identity, *self.attest_key, *self.coswid)
        for t in subjects:
            yield t.environment
        for d in (*self.dependency, *self.membership):
            yield d.domain
            yield from d.members
        for s in self.conditional_series:
            yield s.environment
        for c in self.conditional:
            for cond in c.conditions:
                yield cond.environment
            for e in c.endorsements:
                yield e.environment

    def measurements(self) -> Iterator[Measurement]:
        """Every measurement any triple carries (reference, endorsed, conditions, additions)."""
        valued: tuple[ReferenceTriple | EndorsedTriple, ...] = (*self.reference, *self.endorsed)
        for t in valued:
            yield from t.measurements
        for s in self.conditional_series:
            yield from s.measurements
            for step in s.series:
                yield from step.condition
                yield from step.addition
        for c in self.conditional:
            for cond in c.conditions:
                yield from cond.measurements
            for e in c.endorsements:
                yield from e.measurements


@dataclass(frozen=True, slots=True)
class Entity:
    """An entity (CoRIM roles: 1 manifest-creator, 2 manifest-signer; CoMID: 0 tag-creator, 1 creator, 2 maintainer)."""

    name: str
    roles: tuple[int, ...]
    reg_id: str | None = None


@dataclass(frozen=True, slots=True)
class LinkedTag:
    """A link to another tag: ``rel`` 0 supplements, 1 replaces."""

    tag_id: Identifier
    rel: int


@dataclass(frozen=True, slots=True)
class Comid:
    """A Concise Module Identifier tag."""

    tag_id: Identifier
    triples: Triples
    tag_version: int = 0
    language: str | None = None
    entities: tuple[Entity, ...] = ()
    linked_tags: tuple[LinkedTag, ...] = ()
    extensions: Mapping[int, Any] = field(default_factory=lambda: EMPTY)

    @property
    def tag_id_text(self) -> str:
        return id_text(self.tag_id)


@dataclass(frozen=True, slots=True)
class OpaqueTag:
    """A CoSWID (505) or CoTL (508) tag, carried but not interpreted by this library."""

    tag: int
    data: bytes


@dataclass(frozen=True, slots=True)
class Locator:
    """``corim-locator-map``: where a dependent manifest (e.g. SLSA build provenance) lives.

    Purely advisory: nothing here is ever fetched; it travels into provenance.
    """

    href: tuple[str, ...]
    thumbprints: tuple[Digest, ...] = ()


@dataclass(frozen=True, slots=True)
class Validity:
    """``validity-map`` (or CWT ``nbf``/``exp``): when the signer vouches for it, ends inclusive.

    A ``validity-map`` always has ``not_after``; CWT claims may leave either end open.
    """

    not_before: datetime | None = None
    not_after: datetime | None = None

    def covers(self, now: datetime) -> bool:
        return (self.not_before is None or self.not_before <= now) and (
            self.not_after is None or now <= self.not_after
        )


@dataclass(frozen=True, slots=True)
class ProfileId:
    """A CoRIM profile: ``kind`` is ``"uri"`` (tag 32), ``"oid"`` (tag 111, dotted) or ``"text"``.

    ``"text"`` is the untagged string legacy encoders wrote; the draft requires a tagged URI, so
    only a profile entry that says it accepts the untagged form (``profiles``) will take it.
    """

    value: str
    kind: str = "uri"

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True, slots=True)
class Corim:
    """An unsigned CoRIM (``tagged-unsigned-corim-map``, tag 501)."""

    id: Identifier
    tags: tuple[Comid | OpaqueTag, ...]
    profile: ProfileId | None = None
    dependent_rims: tuple[Locator, ...] = ()
    rim_validity: Validity | None = None
    entities: tuple[Entity, ...] = ()
    extensions: Mapping[int, Any] = field(default_factory=lambda: EMPTY)

    @property
    def id_text(self) -> str:
        return id_text(self.id)

    @property
    def comids(self) -> tuple[Comid, ...]:
        return tuple(t for t in self.tags if isinstance(t, Comid))


@dataclass(frozen=True, slots=True)
class CorimMeta:
    """Who signed a CoRIM and for how long they vouch for it (corim-meta and/or CWT claims)."""

    signer_name: str
    signer_uri: str | None = None
    signature_validity: Validity | None = None
