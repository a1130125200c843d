"""Endorsement provenance: who authorized each reference value or key the appraiser relied on.

It travels in each appraisal as the ``ear_ratsfed_endorsements`` extension (CWT key -71001) and
from there into the federation's combined result, so a relying party can see which CoRIM (id,
CoMID tag id and version), signed by whom (name, key thumbprint), endorsed what the verdict rests
on, and follow the CoRIM's ``dependent-rims`` links (e.g. to SLSA build provenance).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from .corim.store import Provenance

__all__ = ["EXTENSION", "endorsement_records"]

EXTENSION = "ear_ratsfed_endorsements"


def _record(p: Provenance, role: str) -> dict[str, Any]:
    rec: dict[str, Any] = {
        "role": role,
        "corim_id": p.corim_id,
        "comid_id": p.comid_id,
        "comid_version": p.comid_version,
        "profile": p.profile,
        "signer": p.signer_name,
        "key_thumbprint": p.key_thumbprint,
        "corim_sha256": p.corim_sha256,
    }
    links = [href for loc in p.dependent_rims for href in loc.href]
    if links:
        rec["dependent_rims"] = links
    return {k: v for k, v in rec.items() if v is not None}


def endorsement_records(used: Iterable[tuple[Provenance, str]]) -> list[dict[str, Any]]:
    """One record per (CoMID, role), in first-use order."""
    out: list[dict[str, Any]] = []
    for prov, role in used:
        rec = _record(prov, role)
        if rec not in out:
            out.append(rec)
    return out
