"""What an evidence scheme is: a descriptor (data) and one pure appraisal function.

Why descriptors: the appraiser routes Evidence by media type and the store filters reference
values by CoRIM profile, both from the same table a scheme declares (as Veraison's scheme
descriptors do). A scheme never does I/O and never reads the clock: it gets the Evidence, the
session nonce, the store and ``now`` and returns appraisals per submodule.

Failures are split the way Veraison splits them (and AR4SI wants): :class:`BadEvidence` means the
Evidence is at fault and becomes a contraindicated appraisal (all claims 99, the problem stated in
``policy-claims``); any other exception is a verifier malfunction and propagates.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol, runtime_checkable

from federation.ear.model import Appraisal
from federation.evidence import Evidence

from .collateral.base import Collateral, CollateralRequest
from .corim.store import ReferenceValueStore

__all__ = ["BadEvidence", "Context", "NeedsCollateral", "Scheme", "SchemeDescriptor", "normalize_media_type"]


class BadEvidence(Exception):
    """The Evidence failed appraisal for a reason the attester is responsible for."""

    def __init__(self, problem: str) -> None:
        super().__init__(problem)
        self.problem = problem


def normalize_media_type(media_type: str) -> str:
    """Lower-case, no spaces, no quotes: ``application/eat+cwt;eat_profile=http://...``."""
    base, _, params = media_type.partition(";")
    out = base.strip().lower()
    for param in (p for p in params.split(";") if p.strip()):
        name, _, value = param.partition("=")
        out += f";{name.strip().lower()}={value.strip().strip(chr(34))}"
    return out


@dataclass(frozen=True, slots=True)
class SchemeDescriptor:
    name: str  # also the default submodule name (Veraison's scheme name)
    media_types: frozenset[str]  # normalized (see normalize_media_type)
    corim_profiles: frozenset[str]

    def __post_init__(self) -> None:
        if not self.name or not self.media_types:
            raise ValueError("a scheme needs a name and at least one media type")


@dataclass(frozen=True, slots=True)
class Context:
    nonce: bytes
    now: datetime
    store: ReferenceValueStore
    collateral: Mapping[CollateralRequest, Collateral] = field(default_factory=dict)


class Scheme(Protocol):
    descriptor: SchemeDescriptor

    def appraise(self, evidence: Evidence, ctx: Context) -> Mapping[str, Appraisal]:
        """Appraise *evidence*; raise :class:`BadEvidence` when the Evidence is at fault."""
        ...


@runtime_checkable
class NeedsCollateral(Protocol):
    """A scheme whose appraisal needs collateral the Evidence does not carry (certificates,
    TCB info, CRLs). The backend resolves the requests before calling ``appraise``."""

    def collateral_requests(self, evidence: Evidence) -> list[CollateralRequest]:
        """What to look up for *evidence* (parsing only; a malformed one may return [])."""
        ...
