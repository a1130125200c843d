"""Evidence schemes of the local appraiser, by name (each module exports ``SCHEME``)."""

from __future__ import annotations

from ..scheme import Scheme
from .cca import SCHEME as CCA
from .eat import SCHEME as EAT
from .psa import SCHEME as PSA
from .sevsnp import SCHEME as SEVSNP
from .tdx import SCHEME as TDX

__all__ = ["BUILTIN", "CCA", "EAT", "PSA", "SEVSNP"]

BUILTIN: dict[str, Scheme] = {s.descriptor.name: s for s in (PSA, CCA, EAT, TDX, SEVSNP)}
