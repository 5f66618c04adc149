"""The experiment readout in scale mode: the memory readout from sums, nothing per customer."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

import cxkit
from cxkit import experiments
from cxkit.scale import ScaleSettings
from tests.backends import postgres_server, spark_session  # noqa: F401 - fixtures
from tests.collects import Collects
from tests.experiments.test_outcomes import AT, _tiny
from tests.test_backends import into_postgres, into_spark

#: Far below the demo's assigned customers: a per-customer collect could not pass unseen.
LIMIT = 200
SETTINGS = ScaleSettings(mode="scale", sample_rows=100, max_collect_rows=LIMIT, batch_rows=100)
TABLES = ("readout", "sequential", "assignments", "srm")


@pytest.fixture
def collects(monkeypatch: pytest.MonkeyPatch) -> Collects:
    """Every result DuckDB hands to Python during the test."""
    return Collects(monkeypatch)


def _same(memory: experiments.ExperimentResult, scaled: experiments.ExperimentResult) -> None:
    for name in TABLES:
        a, b = getattr(memory, name), getattr(scaled, name)
        assert (a is None) == (b is None), name
        if a is not None:
            pd.testing.assert_frame_equal(
                a.reset_index(drop=True),
                b.reset_index(drop=True),
                check_exact=False,
                rtol=1e-7,
                atol=1e-9,
                check_dtype=False,
                obj=name,
            )
    assert [f.sentence for f in memory.findings()] == [f.sentence for f in scaled.findings()]
    assert memory.headline() == scaled.headline()
    assert memory.not_available == scaled.not_available


@pytest.mark.slow
def test_scale_readout_is_the_memory_readout_without_per_customer_collects(
    demo_data: cxkit.CXData, collects: Collects
) -> None:
    memory = experiments.analyze(demo_data, mode="memory")
    assigned = len(memory.outcomes)
    assert assigned > 2 * LIMIT  # the memory mode collects every assigned customer
    assert collects.largest() >= assigned
    collects.clear()
    scaled = experiments.analyze(demo_data, mode="scale")
    collects.assert_at_most(40)  # arms and looks, not customers
    _same(memory, scaled)
    assert scaled.outcomes is None
    assert f"readout of {assigned:,} assigned customers was summed in the engine" in " ".join(
        scaled.notes
    )
    # CUPED ran on sums exactly as on the customers: the same variance reduction
    assert scaled.readout["variance_reduction"].notna().all()


def test_scale_mode_on_contractual_churn_and_missing_tables() -> None:
    tables = _tiny()
    tables["customers"] = pd.DataFrame(
        {
            "customer_id": list("abcde"),
            "churned_at": [AT + pd.Timedelta(days=10), None, AT - pd.Timedelta(days=1), None, None],
        }
    )
    for data in (tables, {k: v for k, v in tables.items() if k != "responses"}):
        d = cxkit.load(data)
        memory = experiments.analyze(d, as_of="2024-07-31", mode="memory")
        scaled = experiments.analyze(d, as_of="2024-07-31", mode="scale")
        _same(memory, scaled)
    none = cxkit.load({"orders": tables["orders"]})
    assert experiments.analyze(none, mode="scale").not_available == (
        experiments.analyze(none, mode="memory").not_available
    )


def test_scale_mode_comes_from_the_settings(demo_data: cxkit.CXData) -> None:
    with Collects.in_scale_mode(SETTINGS) as collects:
        res = experiments.analyze(demo_data, metrics=("conversion",), sequential=False)
    assert res.outcomes is None and "Scale mode" in res.notes[-1]
    collects.assert_at_most(10)


def _engine_tables(demo_dir: Path) -> dict[str, pd.DataFrame]:
    """The demo's assignments with the orders and NPS answers of the assigned customers."""
    a = pd.read_parquet(demo_dir / "assignments.parquet")
    ids = set(a.customer_id)
    out = {"assignments": a}
    for name in ("orders", "responses"):
        t = pd.read_parquet(demo_dir / f"{name}.parquet")
        out[name] = t[t.customer_id.isin(ids)].reset_index(drop=True)
    return out


def _assert_engine_readouts(other: cxkit.CXData, demo_dir: Path) -> None:
    base = experiments.analyze(cxkit.load(_engine_tables(demo_dir)), mode="memory")
    for mode in ("memory", "scale"):
        got = experiments.analyze(other, mode=mode)
        for name in TABLES:
            pd.testing.assert_frame_equal(
                getattr(base, name).reset_index(drop=True),
                getattr(got, name).reset_index(drop=True),
                check_exact=False,
                rtol=1e-7,
                atol=1e-9,
                check_dtype=False,
                obj=f"{mode}: {name}",
            )


#: Each other engine: the fixture that starts it, and how the tables go into it.
ENGINES: dict[str, tuple[str, Callable[[Any, dict[str, pd.DataFrame]], cxkit.CXData]]] = {
    "postgres": ("postgres_server", into_postgres),
    "spark": ("spark_session", into_spark),
}


@pytest.mark.slow
@pytest.mark.parametrize(
    "engine",
    [
        pytest.param("postgres", marks=pytest.mark.postgres),
        pytest.param("spark", marks=pytest.mark.spark),
    ],
)
def test_readout_on_other_engines_matches_duckdb_in_both_modes(
    engine: str, demo_dir: Path, request: pytest.FixtureRequest
) -> None:
    fixture, load = ENGINES[engine]
    other = load(request.getfixturevalue(fixture), _engine_tables(demo_dir))
    _assert_engine_readouts(other, demo_dir)
