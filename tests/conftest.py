"""Shared fixtures. Vectors are read in place from ../shared/vectors (never copied into the repo)."""

from __future__ import annotations

from pathlib import Path

import pytest

VECTORS = Path(__file__).resolve().parents[2] / "shared" / "vectors"


@pytest.fixture(scope="session")
def vectors() -> Path:
    """The shared test-vector tree (each folder's SOURCES.md says what its files are)."""
    assert VECTORS.is_dir(), f"test vectors not found at {VECTORS}"
    return VECTORS
