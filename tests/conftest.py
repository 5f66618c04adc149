"""Shared fixtures: a small demo dataset with planted truth, written once per session."""

from __future__ import annotations

from pathlib import Path

import pytest

import cxkit
from cxkit import synth

DEMO_CUSTOMERS = 2_000
DEMO_SEED = 7


@pytest.fixture(scope="session")
def demo_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2,000-customer demo (seed 7, default dates) as Parquet, with ``_truth.*``."""
    out = tmp_path_factory.mktemp("demo") / "demo"
    return synth.write_demo(out, customers=DEMO_CUSTOMERS, seed=DEMO_SEED)


@pytest.fixture(scope="session")
def demo_data(demo_dir: Path) -> cxkit.CXData:
    """The 2,000-customer demo loaded with :func:`cxkit.load`."""
    return cxkit.load(demo_dir)
