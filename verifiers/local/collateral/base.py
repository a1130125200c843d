"""The collateral store boundary: typed requests in, bytes with their origin out."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

__all__ = ["Collateral", "CollateralRequest", "CollateralStore", "EmptyStore", "resolve"]


@dataclass(frozen=True, slots=True)
class CollateralRequest:
    """What a scheme needs, e.g. ``("amd-vcek", ("Genoa", hwid_hex, tcb_hex))``,
    ``("amd-chain", ("Milan", "vcek"))``, ``("intel-tcb-info", (fmspc_hex,))``,
    ``("intel-qe-identity", ())``, ``("intel-crl", ("platform",))``."""

    kind: str
    key: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Collateral:
    """Collateral as found: raw bytes (DER, PEM or JSON as published) and where they came from.

    The store vouches for nothing: signatures, chains and validity at the appraisal's ``now`` are
    checked by the scheme, exactly as for Evidence.
    """

    request: CollateralRequest
    data: bytes
    source: str


@runtime_checkable
class CollateralStore(Protocol):
    async def get(self, request: CollateralRequest) -> Collateral | None:
        """The collateral for *request*, or None when this store has none."""
        ...


class EmptyStore:
    """A store with nothing in it (evidence that carries its own certificates still verifies)."""

    async def get(self, request: CollateralRequest) -> Collateral | None:
        return None


async def resolve(store: CollateralStore, requests: list[CollateralRequest]
                  ) -> Mapping[CollateralRequest, Collateral]:
    out: dict[CollateralRequest, Collateral] = {}
    for req in requests:
        found = await store.get(req)
        if found is not None:
            out[req] = found
    return out
