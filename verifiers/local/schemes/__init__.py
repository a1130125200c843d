"""Evidence schemes of the local appraiser, by name (each module exports ``SCHEME``)."""

from __future__ import annotations

from ..scheme import Scheme
from .psa import SCHEME as PSA

__all__ = ["BUILTIN", "PSA"]

BUILTIN: dict[str, Scheme] = {PSA.descriptor.name: PSA}
