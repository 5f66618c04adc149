"""The loader: every source kind gives the same typed tables."""

from __future__ import annotations

from pathlib import Path

import ibis
import pandas as pd
import pytest

import cxkit
from cxkit.data import SCHEMA, normalize_frame, resolve_as_of
from cxkit.errors import DataError, NotAvailableError, UsageError

EXPECTED_DTYPES = {
    "customers": {"customer_id": "string", "signup_at": "datetime64[ns]", "region": "string"},
    "orders": {
        "order_id": "string",
        "customer_id": "string",
        "ts": "datetime64[ns]",
        "amount": "float64",
    },
    "responses": {
        "response_id": "string",
        "customer_id": "string",
        "ts": "datetime64[ns]",
        "survey": "string",
        "score": "Int64",
    },
}


def _tables() -> dict[str, pd.DataFrame]:
    return {
        "customers": pd.DataFrame(
            {
                "customer_id": ["00042", "00007"],
                "signup_at": pd.to_datetime(["2024-01-01", "2024-02-01"]),
                "region": ["north", "south"],
            }
        ),
        "orders": pd.DataFrame(
            {
                "order_id": ["1", "2", "3"],
                "customer_id": ["00042", "00042", "00007"],
                "ts": pd.to_datetime(["2024-01-05 10:00", "2024-03-01 00:00", "2024-02-03 00:00"]),
                "amount": [10.5, 20.0, 5.25],
            }
        ),
        "responses": pd.DataFrame(
            {
                "response_id": ["r1"],
                "customer_id": ["00007"],
                "ts": pd.to_datetime(["2024-02-04"]),
                "survey": ["nps"],
                "score": pd.array([9], dtype="Int64"),
            }
        ),
    }


def _check(data: cxkit.CXData) -> None:
    for name, dtypes in EXPECTED_DTYPES.items():
        df = data.to_pandas(name)
        for col, dtype in dtypes.items():
            assert str(df[col].dtype) == dtype, (name, col, df[col].dtype)
    orders = data.to_pandas("orders").sort_values("order_id")
    assert orders.customer_id.tolist() == ["00042", "00042", "00007"]
    assert orders.ts.iloc[0] == pd.Timestamp("2024-01-05 10:00")
    assert data.to_pandas("responses").score.iloc[0] == 9


def test_load_dict_of_frames() -> None:
    _check(cxkit.load(_tables()))


def test_load_parquet_folder_ignores_underscore_files(tmp_path: Path) -> None:
    for name, df in _tables().items():
        df.to_parquet(tmp_path / f"{name}.parquet")
    pd.DataFrame({"x": [1]}).to_parquet(tmp_path / "_truth.parquet")
    data = cxkit.load(tmp_path)
    assert data.names == ["customers", "orders", "responses"]
    _check(data)


def test_load_csv_folder_keeps_leading_zeros(tmp_path: Path) -> None:
    for name, df in _tables().items():
        df.to_csv(tmp_path / f"{name}.csv", index=False)
    data = cxkit.load(tmp_path)
    _check(data)


def test_load_duckdb_file_url(tmp_path: Path) -> None:
    path = tmp_path / "cx.db"
    con = ibis.duckdb.connect(str(path))
    for name, df in _tables().items():
        con.create_table(name, df)
    con.disconnect()
    _check(cxkit.load(f"duckdb:///{path}"))


def test_load_live_connection_with_table_map() -> None:
    con = ibis.duckdb.connect()
    t = _tables()
    con.create_table("crm_customers", t["customers"])
    con.create_table("sales", t["orders"])
    con.create_table("responses", t["responses"])
    data = cxkit.load(con, tables={"customers": "crm_customers", "orders": "sales"})
    assert data.names == ["customers", "orders", "responses"]
    _check(data)


def test_load_connection_names_missing_table() -> None:
    con = ibis.duckdb.connect()
    with pytest.raises(DataError, match="table 'sales' was named for orders but does not exist"):
        cxkit.load(con, tables={"orders": "sales"})


def test_column_mapping_renames_user_columns(tmp_path: Path) -> None:
    orders = _tables()["orders"].rename(columns={"ts": "order_ts", "amount": "total"})
    orders.to_csv(tmp_path / "orders.csv", index=False)
    data = cxkit.load(tmp_path, mapping={"orders": {"order_ts": "ts", "total": "amount"}})
    df = data.to_pandas("orders")
    assert {"ts", "amount"} <= set(df.columns)
    assert df.amount.sum() == pytest.approx(35.75)


def test_zone_aware_timestamps_become_naive_utc(tmp_path: Path) -> None:
    orders = pd.DataFrame(
        {
            "order_id": ["1", "2"],
            "customer_id": ["a", "b"],
            "ts": ["2024-01-01T10:00:00+02:00", "2024-01-01T10:00:00Z"],
            "amount": [1.0, 2.0],
        }
    )
    orders.to_csv(tmp_path / "orders.csv", index=False)
    df = cxkit.load(tmp_path).to_pandas("orders").sort_values("order_id")
    assert df.ts.tolist() == [pd.Timestamp("2024-01-01 08:00"), pd.Timestamp("2024-01-01 10:00")]
    aware = orders.assign(ts=pd.to_datetime(orders.ts, utc=True).dt.tz_convert("Asia/Tokyo"))
    df2 = cxkit.load({"orders": aware}).to_pandas("orders").sort_values("order_id")
    assert df2.ts.tolist() == df.ts.tolist()
    assert str(df2.ts.dtype) == "datetime64[ns]"


def test_upto_drops_later_activity_and_later_churn() -> None:
    t = _tables()
    t["customers"]["churned_at"] = pd.to_datetime(["2024-06-01", None])
    data = cxkit.load(t).upto("2024-02-03")
    orders = data.to_pandas("orders")
    # a date-only as_of includes the whole day
    assert sorted(orders.order_id) == ["1", "3"]
    assert data.to_pandas("customers").churned_at.isna().all()
    assert data.as_of == pd.Timestamp("2024-02-03 23:59:59.999999")  # the whole day
    assert resolve_as_of(data, None) == pd.Timestamp("2024-02-03 23:59:59.999999")


def test_as_of_defaults_to_latest_timestamp_and_rejects_garbage() -> None:
    data = cxkit.load(_tables())
    assert resolve_as_of(data, None) == pd.Timestamp("2024-03-01 23:59:59.999999")
    with pytest.raises(UsageError, match="as_of must be an ISO date like '2024-06-30', got 'soon'"):
        resolve_as_of(data, "soon")


def test_require_names_missing_table_and_column() -> None:
    data = cxkit.load({"orders": _tables()["orders"]})
    with pytest.raises(NotAvailableError, match="this needs the table 'events'"):
        data.require("events", analysis="The funnel")
    with pytest.raises(NotAvailableError, match="column\\(s\\) 'channel'"):
        data.require("orders", "channel")
    assert data.has("orders", "amount") and not data.has("orders", "channel")


def test_fingerprint_changes_with_data() -> None:
    a = cxkit.load(_tables()).fingerprint()
    t = _tables()
    t["orders"].loc[0, "amount"] = 11.5
    b = cxkit.load(t).fingerprint()
    assert a["tables"]["orders"]["rows"] == 3
    assert a["hash"] != b["hash"]
    assert a == cxkit.load(_tables()).fingerprint()


def test_missing_folder_and_unknown_source() -> None:
    with pytest.raises(DataError, match="the data folder does not exist"):
        cxkit.load("/no/such/folder")
    with pytest.raises(UsageError, match="cannot load from int"):
        cxkit.load(42)
    with pytest.raises(UsageError, match="unknown table\\(s\\) \\['sales'\\]"):
        cxkit.load({"sales": _tables()["orders"]})


def test_normalize_frame_matches_schema() -> None:
    df = normalize_frame("orders", _tables()["orders"].astype({"customer_id": object}))
    assert str(df.customer_id.dtype) == "string"
    assert {c.name for c in SCHEMA["orders"]} >= {"order_id", "amount"}
