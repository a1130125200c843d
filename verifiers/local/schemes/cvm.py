"""What the SEVSNP and INTEL_TDX schemes share for confidential-VM firmware CoRIMs (docs/cvm-corim.md).

Both read reference values and endorsed values from CoRIMs under the CVM firmware profile
(``tag:github.com,2026:rats-federation/cvm-firmware#1.0.0``) and from CoRIMs without a profile
(the base CoRIMs docs/sevsnp.md and docs/tdx.md describe); a CoRIM under any other profile is
not read. Both put the same ``cvm`` section into ``ear.veraison.annotated-evidence``: which
measurements were compared, which CoRIM (and signer) each match and each SVN lower bound came
from, the TCB the bounds were compared with, and the debug policy. The provenance records
(``ear.ratsfed.endorsements``) name the same CoMIDs; the annotation says what each one decided.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ..corim.profiles import CVM_FIRMWARE_ID
from ..corim.store import Provenance

__all__ = ["CVM_PROFILES", "bound_note", "match_note", "source"]

CVM_PROFILES: frozenset[str | None] = frozenset({None, CVM_FIRMWARE_ID})
"""Profiles whose CoRIMs the CVM schemes read (None: CoRIMs without a profile)."""


def source(prov: Provenance) -> dict[str, Any]:
    """Who authorized a triple: CoRIM, CoMID, signer, key, and until when it may be used."""
    out: dict[str, Any] = {"corim_id": prov.corim_id, "comid_id": prov.comid_id, "profile": prov.profile,
                           "signer": prov.signer_name, "key_thumbprint": prov.key_thumbprint}
    if prov.validity is not None and prov.validity.not_after is not None:
        out["valid_until"] = prov.validity.not_after.isoformat().replace("+00:00", "Z")
    return {k: v for k, v in out.items() if v is not None}


def match_note(prov: Provenance, mkeys: Iterable[int | str]) -> dict[str, Any]:
    """A reference triple that matched, and the measurement keys it constrained."""
    return {"role": "reference-values", "mkeys": sorted(mkeys, key=str), **source(prov)}


def bound_note(prov: Provenance, role: str, mkey: int | str, minimum: Any, actual: Any, met: bool) -> dict[str, Any]:
    """An SVN lower bound (min-svn) applied: what it required, what the Evidence has, whether it holds."""
    return {"role": role, "mkey": mkey, "minimum": minimum, "actual": actual, "met": met, **source(prov)}
