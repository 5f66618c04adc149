"""Tests of the demo-data generator: determinism, the contract, and the planted truth."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pandas as pd
import pytest

import cxkit
from cxkit import synth
from cxkit.errors import UsageError

TABLES = ("customers", "events", "orders", "responses")


def _hashes(folder: Path) -> dict[str, str]:
    return {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.iterdir())
        if p.is_file()
    }


@pytest.fixture(scope="module")
def demo(demo_dir: Path) -> dict[str, pd.DataFrame]:
    frames = {name: pd.read_parquet(demo_dir / f"{name}.parquet") for name in TABLES}
    frames["truth"] = pd.read_parquet(demo_dir / "_truth.parquet")
    return frames


@pytest.fixture(scope="module")
def info(demo_dir: Path) -> dict:
    return json.loads((demo_dir / "_truth.json").read_text())


# ---- files, determinism, format ------------------------------------------------------


def test_writes_every_file(demo_dir: Path) -> None:
    names = {p.name for p in demo_dir.iterdir()}
    assert names == {
        "customers.parquet",
        "events.parquet",
        "orders.parquet",
        "responses.parquet",
        "_truth.parquet",
        "_truth.json",
    }


def test_same_seed_same_bytes_different_seed_different(tmp_path: Path) -> None:
    a = synth.write_demo(tmp_path / "a", customers=300, seed=11)
    b = synth.write_demo(tmp_path / "b", customers=300, seed=11)
    c = synth.write_demo(tmp_path / "c", customers=300, seed=12)
    ha, hb, hc = _hashes(a), _hashes(b), _hashes(c)
    assert ha == hb
    for name in (*(f"{t}.parquet" for t in TABLES), "_truth.parquet"):
        assert ha[name] != hc[name], name


def test_same_seed_same_bytes_across_chunks(tmp_path: Path) -> None:
    a = synth.write_demo(tmp_path / "a", customers=500, seed=3, chunk_size=200)
    b = synth.write_demo(tmp_path / "b", customers=500, seed=3, chunk_size=200)
    assert _hashes(a) == _hashes(b)
    orders = pd.read_parquet(a / "orders.parquet")
    events = pd.read_parquet(a / "events.parquet")
    assert orders.order_id.is_unique and events.event_id.is_unique
    assert pd.read_parquet(a / "customers.parquet").customer_id.is_unique


def test_csv_round_trips_through_load_with_string_ids(tmp_path: Path) -> None:
    folder = synth.write_demo(tmp_path / "csv", customers=200, seed=5, fmt="csv")
    assert {p.name for p in folder.glob("*.csv")} == {f"{t}.csv" for t in TABLES}
    data = cxkit.load(folder)
    assert data.names == list(TABLES)
    customers = data.to_pandas("customers")
    assert customers.customer_id.iloc[0] == "C0000001"
    assert pd.api.types.is_string_dtype(customers.customer_id)
    orders = data.to_pandas("orders")
    assert pd.api.types.is_datetime64_dtype(orders.ts)
    direct = synth.generate(200, seed=5)
    assert len(orders) == len(direct.orders)
    assert orders.amount.sum() == pytest.approx(direct.orders.amount.sum())
    responses = data.to_pandas("responses")
    assert responses.comment.isna().sum() == direct.responses.comment.isna().sum()


def test_rewriting_in_the_other_format_removes_stale_tables(tmp_path: Path) -> None:
    folder = synth.write_demo(tmp_path / "d", customers=100, seed=1, fmt="csv")
    synth.write_demo(folder, customers=100, seed=1)
    assert not list(folder.glob("*.csv"))
    assert not list(folder.glob(".*tmp*"))


def test_bad_arguments_are_usage_errors(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="fmt must be 'parquet' or 'csv', got 'xlsx'"):
        synth.write_demo(tmp_path, customers=10, fmt="xlsx")
    with pytest.raises(UsageError, match="customers must be a positive number"):
        synth.generate(0)
    with pytest.raises(UsageError, match="ISO dates"):
        synth.generate(10, start="soon")
    with pytest.raises(UsageError, match="at least 150 days"):
        synth.generate(10, start="2024-01-01", end="2024-02-01")


def test_demo_validates_cleanly(demo_data: cxkit.CXData) -> None:
    problems = cxkit.validate(demo_data)
    assert [p for p in problems if p.severity == "error"] == []
