"""Collateral for hardware evidence (AMD certificates, Intel PCS collateral), kept out of the core.

The appraisal code is pure: a scheme first says what collateral the Evidence needs
(:meth:`CollateralRequest` values computed from the parsed Evidence), the backend resolves them
through a :class:`CollateralStore` (async: an offline folder today, a fetching and caching store
for AMD KDS / Intel PCS later), and the scheme then appraises with what was found. Nothing named
inside the Evidence is ever fetched: a store answers requests it can map to its own sources.
"""

from .base import Collateral, CollateralRequest, CollateralStore, EmptyStore

__all__ = ["Collateral", "CollateralRequest", "CollateralStore", "EmptyStore"]
