"""The loader: every source kind gives the same typed tables."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import ibis
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import cxkit
import cxkit.data
from cxkit.data import (
    CONTRACT_DTYPES,
    SCHEMA,
    latest_plausible_ts,
    normalize_frame,
    resolve_as_of,
)
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


# ---- one type per contract kind, whatever the file format (issue 22, item 1) -------------


def _activity() -> dict[str, pd.DataFrame]:
    t = _tables()
    t["events"] = pd.DataFrame(
        {
            "customer_id": ["00042", "00007", "00042"],
            "ts": pd.to_datetime(
                ["2024-01-03 09:00:00.123456", "2024-01-04 12:30:00", "2024-02-20 08:15:00"],
                format="ISO8601",
            ),
            "event": ["site_visit", "product_view", "add_to_cart"],
            "store_id": [5, 6, 5],
        }
    )
    return t


def _write_parquet_ts(df: pd.DataFrame, path: Path, ts_type: pa.DataType) -> None:
    """Write ``df`` to Parquet with its timestamp columns stored as ``ts_type``."""
    table = pa.Table.from_pandas(df, preserve_index=False)
    for i, field in enumerate(table.schema):
        if pa.types.is_timestamp(field.type):
            col = table.column(i).cast(pa.timestamp("us", tz="UTC") if ts_type.tz else ts_type)
            table = table.set_column(i, field.name, col.cast(ts_type))
    pq.write_table(table, path)


@pytest.mark.parametrize(
    "ts_type",
    [pa.timestamp("ns"), pa.timestamp("us"), pa.timestamp("us", tz="Europe/Paris")],
    ids=["ns", "us", "zone-aware"],
)
def test_csv_and_parquet_tables_get_the_same_types_and_union(
    tmp_path: Path, ts_type: pa.DataType
) -> None:
    # CSV customers and orders (timestamps parsed from text) beside Parquet events and
    # responses with another timestamp unit or a time zone: before the fix, lifecycle and
    # personas failed with "RelationError: Table schemas must be equal".
    t = _activity()
    for name in ("customers", "orders"):
        t[name].to_csv(tmp_path / f"{name}.csv", index=False)
    for name in ("events", "responses"):
        _write_parquet_ts(t[name], tmp_path / f"{name}.parquet", ts_type)
    data = cxkit.load(tmp_path)
    for name in data.names:
        typed = data.table(name).schema()
        for col in SCHEMA[name]:
            if col.name in typed:
                assert typed[col.name] == CONTRACT_DTYPES[col.kind], (name, col.name)
    assert data.table("events").schema()["store_id"] == CONTRACT_DTYPES["string"]
    parts = [data.table(n).select("customer_id", "ts") for n in ("events", "orders", "responses")]
    both = ibis.union(*parts).to_pandas()
    assert len(both) == 3 + 3 + 1
    # the values are those of the same frames loaded directly
    same = cxkit.load(_activity())
    for name in data.names:
        got = data.to_pandas(name).sort_values(list(data.to_pandas(name).columns[:2]))
        want = same.to_pandas(name).sort_values(list(got.columns[:2]))
        pd.testing.assert_frame_equal(
            got.reset_index(drop=True), want[got.columns].reset_index(drop=True), check_dtype=False
        )


# ---- data sources that cannot be read or reached (issue 22, item 5) ----------------------


def test_truncated_parquet_names_the_table_and_file(tmp_path: Path) -> None:
    _tables()["orders"].to_parquet(tmp_path / "orders.parquet")
    blob = (tmp_path / "orders.parquet").read_bytes()
    (tmp_path / "orders.parquet").write_bytes(blob[: len(blob) // 2])
    with pytest.raises(DataError, match=r"orders: could not read the Parquet file .*orders"):
        cxkit.load(tmp_path)


def test_missing_duckdb_file_is_an_error_and_is_not_created(tmp_path: Path) -> None:
    path = tmp_path / "does_not_exist.duckdb"
    with pytest.raises(DataError, match=r"the duckdb database file .*does_not_exist.duckdb"):
        cxkit.load(f"duckdb:///{path}")
    assert not path.exists()
    with pytest.raises(DataError, match="does not exist"):
        cxkit.load(f"duckdb:///{tmp_path}/missing/dir/x.duckdb")
    assert not (tmp_path / "missing").exists()


def test_unknown_url_scheme_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="unknown kind of data source 'foo://bar'"):
        cxkit.load("foo://bar")


def test_unreachable_postgres_is_a_data_error_without_the_password() -> None:
    with pytest.raises(DataError, match="could not connect to the data source") as info:
        cxkit.load("postgresql://user:secret@127.0.0.1:1/db")
    assert "secret" not in str(info.value)
    assert "postgresql://user@127.0.0.1:1/db" in str(info.value)


@pytest.fixture
def silent_server() -> Iterator[int]:
    """A TCP port that accepts connections and never answers (a hung server)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)
    try:
        yield sock.getsockname()[1]
    finally:
        sock.close()


def test_postgres_connect_times_out(silent_server: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cxkit.data, "CONNECT_TIMEOUT_S", 2)  # libpq's minimum
    with pytest.raises(DataError, match=r"could not connect to the data source: .*timeout"):
        cxkit.load(f"postgresql://user@127.0.0.1:{silent_server}/db")


# ---- as_of does not follow rows dated in the future (issue 22, item 2) ------------------


def test_default_as_of_refuses_rows_in_the_future() -> None:
    t = _tables()
    t["orders"].loc[1, "ts"] = pd.Timestamp("2099-01-01")
    data = cxkit.load(t)
    with pytest.raises(
        DataError, match=r"orders\.ts: rows are dated after today .* \(1 rows\) e\.g\. '2099"
    ):
        resolve_as_of(data, None)
    # an explicit as_of, or a cut data set, is taken as it is
    assert resolve_as_of(data, "2024-03-01") == pd.Timestamp("2024-03-01 23:59:59.999999")
    assert data.upto("2024-03-01").to_pandas("orders").order_id.tolist() == ["1", "3"]
    # a timestamp within a day of now is not "in the future" (time zones)
    t["orders"].loc[1, "ts"] = pd.Timestamp.now(tz="UTC").tz_localize(None).floor("s")
    assert resolve_as_of(cxkit.load(t), None) <= latest_plausible_ts() + pd.Timedelta(days=1)


def test_latest_plausible_ts_allows_one_day() -> None:
    now = pd.Timestamp("2024-06-30 12:00")
    assert latest_plausible_ts(now) == pd.Timestamp("2024-07-01 12:00")
