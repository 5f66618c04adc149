"""The experiment readout in scale mode: the memory readout from sums, nothing per customer."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

import cxkit
from cxkit import experiments
from cxkit.scale import SCALE_ENV, ScaleSettings
from tests.backends import postgres_server, spark_session  # noqa: F401 - fixtures
from tests.collects import Collects
from tests.experiments.test_outcomes import AT, _tiny

#: Far below the demo's assigned customers: a per-customer collect could not pass unseen.
LIMIT = 200
SETTINGS = ScaleSettings(mode="scale", sample_rows=100, max_collect_rows=LIMIT, batch_rows=100)
TABLES = ("readout", "sequential", "assignments", "srm")


@pytest.fixture
def collected(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The row count of every result DuckDB hands to Python (:class:`tests.collects.Collects`)."""
    return Collects(monkeypatch).rows


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
    demo_data: cxkit.CXData, collected: list[int]
) -> None:
    memory = experiments.analyze(demo_data, mode="memory")
    assigned = len(memory.outcomes)
    assert assigned > 2 * LIMIT  # the memory mode collects every assigned customer
    assert max(collected) >= assigned
    collected.clear()
    scaled = experiments.analyze(demo_data, mode="scale")
    assert collected and max(collected) <= 40  # arms and looks, not customers
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


def test_scale_mode_comes_from_the_settings(
    demo_data: cxkit.CXData, monkeypatch: pytest.MonkeyPatch, collected: list[int]
) -> None:
    monkeypatch.setenv(SCALE_ENV, SETTINGS.to_json())
    res = experiments.analyze(demo_data, metrics=("conversion",), sequential=False)
    assert res.outcomes is None and "Scale mode" in res.notes[-1]
    assert max(collected) <= 10


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


@pytest.mark.postgres
@pytest.mark.slow
def test_readout_on_postgres_matches_duckdb_in_both_modes(
    postgres_server: str,  # noqa: F811
    demo_dir: Path,
) -> None:
    from tests.test_backends import into_postgres

    _assert_engine_readouts(into_postgres(postgres_server, _engine_tables(demo_dir)), demo_dir)


@pytest.mark.spark
@pytest.mark.slow
def test_readout_on_spark_matches_duckdb_in_both_modes(
    spark_session: object,  # noqa: F811
    demo_dir: Path,
) -> None:
    from tests.test_backends import into_spark

    _assert_engine_readouts(into_spark(spark_session, _engine_tables(demo_dir)), demo_dir)
