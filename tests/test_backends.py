"""The same engine code on PostgreSQL and Spark gives exactly DuckDB's results.

The data layer (typed tables, validation, fingerprint) is compared here; the domain
modules add their engine-side functions to ``ENGINE_FUNCTIONS`` in test_backends_domains.
"""

from __future__ import annotations

from collections.abc import Callable

import ibis
import pandas as pd
import pytest

import cxkit


def small_tables() -> dict[str, pd.DataFrame]:
    """A small dataset with every table and a few deliberate problems."""
    ts = pd.to_datetime
    customers = pd.DataFrame(
        {
            "customer_id": ["001", "002", "003", "004"],
            "signup_at": ts(["2024-01-01", "2024-01-02", "2024-01-03", "2024-01-04"]),
            "region": ["north", "south", "north", None],
        }
    )
    events = pd.DataFrame(
        {
            "customer_id": ["001", "001", "002", "003", "999"],
            "ts": ts(
                [
                    "2024-01-01 10:00",
                    "2024-01-02 11:30",
                    "2024-01-03 09:00",
                    "2024-01-05 12:00",
                    "2024-01-06 00:00",
                ]
            ),
            "event": ["site_visit", "product_view", "site_visit", "add_to_cart", "site_visit"],
            "channel": ["web", "app", "web", "store", "web"],
        }
    )
    orders = pd.DataFrame(
        {
            "order_id": ["o1", "o2", "o3", "o3"],
            "customer_id": ["001", "001", "003", "003"],
            "ts": ts(
                ["2024-01-03 08:00", "2024-02-01 08:00", "2024-01-06 10:00", "2024-01-06 10:00"]
            ),
            "amount": [10.0, 25.5, -3.0, -3.0],
        }
    )
    responses = pd.DataFrame(
        {
            "response_id": ["r1", "r2", "r3"],
            "customer_id": ["001", "002", "003"],
            "ts": ts(["2024-01-04", "2024-01-05", "2024-01-07"]),
            "survey": ["nps", "csat", "nps"],
            "score": [10, 6, 3],
        }
    )
    return {"customers": customers, "events": events, "orders": orders, "responses": responses}


def _plain(df: pd.DataFrame) -> pd.DataFrame:
    """Plain numpy/object dtypes, which every engine's loader accepts."""
    out = df.copy()
    for c in out.columns:
        if pd.api.types.is_string_dtype(out[c]):
            col = out[c].astype(object)
            out[c] = col.where(col.notna(), None)
    return out


def into_postgres(url: str, tables: dict[str, pd.DataFrame]) -> cxkit.CXData:
    con = ibis.connect(url)
    for name, df in tables.items():
        con.create_table(name, _plain(df), overwrite=True)
    return cxkit.load(url)


def into_spark(session: object, tables: dict[str, pd.DataFrame]) -> cxkit.CXData:
    for name, df in tables.items():
        session.createDataFrame(_plain(df)).createOrReplaceTempView(name)  # type: ignore[attr-defined]
    return cxkit.load(session)


def _sorted(df: pd.DataFrame) -> pd.DataFrame:
    return df.sort_values(list(df.columns)).reset_index(drop=True)


def assert_same(
    fn: Callable[[cxkit.CXData], object], ref: cxkit.CXData, other: cxkit.CXData
) -> None:
    a, b = fn(ref), fn(other)
    if isinstance(a, pd.DataFrame):
        pd.testing.assert_frame_equal(_sorted(a), _sorted(b), check_dtype=False, rtol=1e-9)
    else:
        assert a == b


def _tables_equal(data: cxkit.CXData) -> dict[str, pd.DataFrame]:
    return {n: _sorted(data.to_pandas(n)[sorted(data.raw[n].columns)]) for n in data.names}


def _problems(data: cxkit.CXData) -> list[tuple]:
    return sorted(
        (p.severity, p.rule, p.table, p.column, p.rows, p.examples) for p in cxkit.validate(data)
    )


def _fingerprint(data: cxkit.CXData) -> dict:
    fp = data.fingerprint()
    fp.pop("source")
    for info in fp["tables"].values():
        info["columns"] = sorted(info["columns"])
    return fp["tables"]


def _check_engine(other: cxkit.CXData) -> None:
    ref = cxkit.load(small_tables())
    a, b = _tables_equal(ref), _tables_equal(other)
    assert a.keys() == b.keys()
    for name in a:
        pd.testing.assert_frame_equal(a[name], b[name], check_dtype=True)
    assert _problems(ref) == _problems(other)
    assert {r for _, r, *_ in _problems(ref)} >= {
        "duplicate_id",
        "negative_amount",
        "orphan_customer_id",
        "duplicate_rows",
    }
    assert _fingerprint(ref) == _fingerprint(other)


@pytest.mark.postgres
@pytest.mark.slow
def test_postgres_matches_duckdb(postgres_server: str) -> None:
    _check_engine(into_postgres(postgres_server, small_tables()))


@pytest.mark.spark
@pytest.mark.slow
def test_spark_matches_duckdb(spark_session: object) -> None:
    _check_engine(into_spark(spark_session, small_tables()))
