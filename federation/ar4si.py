"""AR4SI trustworthiness tiers, claims and vectors (draft-ietf-rats-ar4si §2.3, EAR §3).

Why tiers carry a *support rank*: the quorum rule asks "how many results support at least tier
T?". affirming > warning > contraindicated, and ``none`` supports nothing (rank 0), so an
all-zero vector can never pass as agreement. Claim values map to tiers by range; within a tier
the tie rule (used by the order statistic) is documented on :func:`claim_rank`.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any

from .errors import MalformedError

__all__ = [
    "CLAIMS",
    "CLAIM_VALUE_NAMES",
    "Tier",
    "TrustVector",
    "cap_status",
    "claim_rank",
    "tier_of_claim",
    "worse",
]


class Tier(Enum):
    """The four AR4SI tiers, with their EAR encodings (JSON name, CBOR int)."""

    NONE = ("none", 0, 0)
    CONTRAINDICATED = ("contraindicated", 96, 1)
    WARNING = ("warning", 32, 2)
    AFFIRMING = ("affirming", 2, 3)

    def __init__(self, label: str, code: int, rank: int) -> None:
        self.label = label
        self.code = code
        self.rank = rank  # how much this tier supports; none supports nothing

    @classmethod
    def parse(cls, value: object) -> Tier:
        """From an EAR status: a name (JSON) or 0/2/32/96 (CBOR, also seen in JSON)."""
        for t in cls:
            if value == t.label or (isinstance(value, int) and not isinstance(value, bool) and value == t.code):
                return t
        raise MalformedError(f"ear: invalid status {value!r:.20}")

    def at_least(self, other: Tier) -> bool:
        """True when this tier is as good as *other* and supports something."""
        return self.rank >= other.rank and self.rank > 0

    @property
    def severity(self) -> int:
        """Order of badness used by 'status no better than its worst claim': none is ignored."""
        return {Tier.NONE: 0, Tier.AFFIRMING: 1, Tier.WARNING: 2, Tier.CONTRAINDICATED: 3}[self]

    def __str__(self) -> str:
        return self.label


def worse(a: Tier, b: Tier) -> Tier:
    """The less trustworthy of two statuses (none < contraindicated < warning < affirming)."""
    return a if a.rank <= b.rank else b


# The eight claims: JSON name -> CBOR key (ar4si.cddl).
CLAIMS: dict[str, int] = {
    "instance-identity": 0,
    "configuration": 1,
    "executables": 2,
    "file-system": 3,
    "hardware": 4,
    "runtime-opaque": 5,
    "storage-opaque": 6,
    "sourced-data": 7,
}
_CLAIM_BY_KEY = {v: k for k, v in CLAIMS.items()}

# Symbolic names veraison/ear accepts for claim values (trustclaim.go); ints are the norm.
CLAIM_VALUE_NAMES: dict[str, int] = {
    "no_claim": 0, "unexpected_evidence": 1, "unexected_evidence": 1, "verifier_malfunction": -1,
    "crypto_failed": 99, "recognized_instance": 2, "untrustworthy_instance": 96,
    "unrecognized_instance": 97, "approved_config": 2, "safe_config": 3, "unsafe_config": 32,
    "unavailable_config": 36, "unsupportable_config": 96, "approved_rt": 2, "approved_boot": 3,
    "unsafe_rt": 32, "unrecognized_rt": 33, "contraindicated_rt": 96, "approved_fs": 2,
    "unrecognized_fs": 32, "contraindicated_fs": 96, "genuine_hw": 2, "unsafe_hw": 32,
    "contraindicated_hw": 96, "unrecognized_hw": 97, "encrypted_rt": 2, "isolated_rt": 32,
    "visible_rt": 96, "hw_encrypted_secrets": 2, "sw_encrypted_secrets": 32,
    "unencrypted_secrets": 96, "trusted_sources": 2, "untrusted_sources": 32,
    "contraindicated_sources": 96,
}


def tier_of_claim(value: int) -> Tier:
    """AR4SI §2.3.1 ranges: [-1, 1] none; 2..31 / -2..-32 affirming; 32..95 / -33..-96 warning;
    96..127 / -97..-128 contraindicated."""
    if -1 <= value <= 1:
        return Tier.NONE
    if 2 <= value <= 31 or -32 <= value <= -2:
        return Tier.AFFIRMING
    if 32 <= value <= 95 or -96 <= value <= -33:
        return Tier.WARNING
    return Tier.CONTRAINDICATED


def claim_rank(value: int) -> tuple[int, int, int]:
    """Total order of claim values by how much they support (larger = better).

    Tie rule inside a tier: a standard (non-negative) value ranks above a non-standard
    (negative) one, since a relying party cannot interpret the latter; among standard values
    of a tier the smaller number ranks higher (2 "approved" above 3 "approved boot only",
    32 above 33), following AR4SI's convention that larger codes carry the stronger caveat.
    """
    tier = tier_of_claim(value)
    return (tier.rank, 1 if value >= 0 else 0, -abs(value))


def _claim_value(name: str, value: Any) -> int:
    if isinstance(value, str) and value in CLAIM_VALUE_NAMES:
        value = CLAIM_VALUE_NAMES[value]
    if not isinstance(value, int) or isinstance(value, bool) or not -128 <= value <= 127:
        raise MalformedError(f"ear: trust claim {name!r} must be an int in -128..127")
    return value


@dataclass(frozen=True, slots=True)
class TrustVector:
    """An AR4SI trustworthiness vector: claim name -> value; absent means no claim."""

    claims: tuple[tuple[str, int], ...] = ()

    @classmethod
    def of(cls, mapping: Mapping[str, int]) -> TrustVector:
        for name in mapping:
            if name not in CLAIMS:
                raise MalformedError(f"ear: unknown trust claim {name!r:.40}")
        return cls(tuple(sorted(((k, int(v)) for k, v in mapping.items()), key=lambda kv: CLAIMS[kv[0]])))

    @classmethod
    def parse(cls, raw: object) -> TrustVector:
        """From JSON (names) or CBOR (int keys); unknown keys are refused (no silent loss)."""
        if not isinstance(raw, Mapping):
            raise MalformedError("ear: trustworthiness vector must be a map")
        out: dict[str, int] = {}
        for k, v in raw.items():
            name = _CLAIM_BY_KEY.get(k) if isinstance(k, int) and not isinstance(k, bool) else k
            if not isinstance(name, str) or name not in CLAIMS:
                raise MalformedError(f"ear: unknown trust claim {k!r:.40}")
            out[name] = _claim_value(name, v)
        return cls.of(out)

    @classmethod
    def uniform(cls, value: int) -> TrustVector:
        return cls.of(dict.fromkeys(CLAIMS, value))

    def as_dict(self) -> dict[str, int]:
        return dict(self.claims)

    def get(self, name: str) -> int | None:
        for claim, value in self.claims:  # at most 8 entries: a scan beats building a dict
            if claim == name:
                return value
        return None

    def __iter__(self) -> Iterator[tuple[str, int]]:
        return iter(self.claims)

    def __len__(self) -> int:
        return len(self.claims)

    def worst_tier(self) -> Tier:
        """The tier of the worst claim, ignoring none-tier claims (which neither help nor hurt)."""
        tiers = [tier_of_claim(v) for _, v in self.claims]
        return max(tiers, key=lambda t: t.severity, default=Tier.NONE)

    def to_json(self) -> dict[str, int]:
        return self.as_dict()

    def to_cbor(self) -> dict[int, int]:
        return {CLAIMS[k]: v for k, v in self.claims}


def cap_status(status: Tier, vector: TrustVector) -> Tier:
    """EAR §3.1: a status is no better than the worst claim of its vector. Fail closed.

    A contraindicated claim always wins (a crypto failure must not hide behind ``none``); a
    ``none`` status is never raised by good claims.
    """
    worst = vector.worst_tier()
    if worst is Tier.CONTRAINDICATED:
        return worst
    if status is Tier.NONE:
        return status
    return worst if worst.severity > status.severity else status
