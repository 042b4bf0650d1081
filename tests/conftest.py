"""Shared fixtures. Real data lives in ../shared/data (beside the checkout); tests that need it are
skipped with a clear reason when it is absent, and every feature also has a test on generated data."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("EMOLENS_SHARED", REPO.parent / "shared")) / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """Path to ../shared/data, or skip."""
    if not SHARED.is_dir():
        pytest.skip(f"real data not found at {SHARED}")
    return SHARED


@pytest.fixture()
def rng() -> np.random.Generator:
    return np.random.default_rng(0)
