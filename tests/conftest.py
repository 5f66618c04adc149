"""Shared fixtures: a small demo dataset with planted truth, written once per session."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import cxkit
from cxkit import synth

pytest_plugins = ["tests.backends"]

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "reports.yml"

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


HOSTILE = [
    '<script>alert("xss")</script> great service',
    '<img src=x onerror="alert(2)"> slow delivery',
    "</script><script>alert(3)</script>",
]


@pytest.fixture(scope="session")
def hostile_demo(demo_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo with hostile HTML in a few survey comments (untrusted text, DESIGN §3)."""
    import pandas as pd

    out = tmp_path_factory.mktemp("hostile") / "demo"
    shutil.copytree(demo_dir, out)
    path = out / "responses.parquet"
    if path.exists():
        df = pd.read_parquet(path)
        if "comment" in df.columns:
            idx = df.index[df["comment"].notna()][: len(HOSTILE)]
            df.loc[idx, "comment"] = HOSTILE[: len(idx)]
            df.to_parquet(path, index=False)
    return out


@pytest.fixture(scope="session")
def report_run(hostile_demo: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    out = tmp_path_factory.mktemp("browser") / "reports"
    cmd = [sys.executable, "-m", "cxkit.cli", "report", "--config", str(CONFIG)]
    cmd += ["--data", str(hostile_demo), "--out", str(out), "--jobs", "2"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=1200, cwd=ROOT)
    manifest = (
        json.loads((out / "manifest.json").read_text()) if (out / "manifest.json").exists() else {}
    )
    return {"out": out, "proc": proc, "manifest": manifest}
