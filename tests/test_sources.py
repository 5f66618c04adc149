"""Source specs (cxkit.sources): a database URL with table names, or Spark with locations.

The checks of a spec run without an engine; the Spark tests start the session's local
Spark (tests/backends.py) and read the demo's Parquet files through a spec, as a report
kernel does, and compare every table with DuckDB's reading of the same folder.
"""

from __future__ import annotations

import socket
import time
from pathlib import Path

import ibis
import pandas as pd
import pytest

import cxkit
from cxkit import sources
from cxkit.data import TABLES
from cxkit.errors import DataError, UsageError


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.parametrize(
    ("spec", "words"),
    [
        ({"url": "duckdb://x", "spark": {}}, "not both"),
        ({"tables": {"orders": "sales"}}, "give 'url'"),
        ({"url": "duckdb://x", "colour": 1}, "unknown key(s) 'colour'"),
        ({"spark": {"master": "local[2]", "cores": 2}}, "unknown key(s) 'cores'"),
        ({"spark": "local[2]"}, "must be a section"),
        ({"spark": {"conf": ["a"]}}, "must map Spark settings"),
        ({"url": "duckdb://x", "tables": {"sales": "orders"}}, "unknown table(s) ['sales']"),
        ({"url": "duckdb://x", "tables": ["orders"]}, "must map contract tables"),
        ({"url": "duckdb://x", "tables": {"orders": ""}}, "table name or a path"),
        (
            {"spark": {"conf": {"spark.sql.catalogImplementation": "hive"}}},
            "embedded Derby metastore",
        ),
    ],
)
def test_bad_spec_is_a_usage_error_naming_the_setting(spec: dict, words: str) -> None:
    with pytest.raises(UsageError) as err:
        sources.parse_source_spec(spec, valid_tables=TABLES)
    assert words in str(err.value)


def test_spec_resolves_relative_paths_and_keeps_catalog_names(tmp_path: Path) -> None:
    spec = sources.parse_source_spec(
        {
            "spark": {"master": "local[1]", "conf": {"spark.sql.shuffle.partitions": 4}},
            "tables": {"orders": "lake/orders", "events": "warehouse.events", "x": "s3a://b/c"},
        },
        base=tmp_path,
    )
    assert spec.tables["orders"] == str(tmp_path / "lake" / "orders")
    assert spec.tables["events"] == "warehouse.events"  # a catalog table, left alone
    assert spec.tables["x"] == "s3a://b/c"
    conf = spec.spark.effective_conf() if spec.spark else {}
    assert conf["spark.sql.shuffle.partitions"] == "4"  # YAML numbers become strings
    assert conf["spark.sql.session.timeZone"] == "UTC"  # a default the spec did not set
    hive_ok = {"spark.sql.catalogImplementation": "hive", "spark.hadoop.hive.metastore.uris": "x"}
    assert sources.parse_source_spec({"spark": {"conf": hive_ok}}).spark is not None


def test_is_source_spec_tells_specs_from_frames() -> None:
    assert sources.is_source_spec({"url": "duckdb://"})
    assert not sources.is_source_spec({"orders": pd.DataFrame()})
    assert not sources.is_source_spec({})


def test_database_spec_maps_contract_tables_onto_other_names(
    demo_dir: Path, tmp_path: Path
) -> None:
    path = tmp_path / "shop.duckdb"
    con = ibis.duckdb.connect(str(path))
    con.create_table("sales", pd.read_parquet(demo_dir / "orders.parquet"))
    con.create_table("people", pd.read_parquet(demo_dir / "customers.parquet"))
    con.disconnect()
    data = cxkit.load(
        {"url": f"duckdb:///{path}", "tables": {"orders": "sales", "customers": "people"}}
    )
    assert data.names == ["customers", "orders"]
    want = cxkit.load(demo_dir).to_pandas("orders").sort_values("order_id")
    got = data.to_pandas("orders").sort_values("order_id")
    pd.testing.assert_frame_equal(got.reset_index(drop=True), want.reset_index(drop=True))
    with pytest.raises(DataError) as err:
        cxkit.load({"url": f"duckdb:///{path}", "tables": {"orders": "sale"}})
    assert "'sale' was named for orders but does not exist" in str(err.value)


def test_pyspark_url_says_to_use_a_spark_section() -> None:
    with pytest.raises(UsageError) as err:
        cxkit.load("pyspark:///tmp/warehouse")
    assert "spark (master, conf) and tables" in str(err.value)


def test_unreachable_master_fails_fast_with_the_fix() -> None:
    master = f"spark://127.0.0.1:{_free_port()}"
    t0 = time.monotonic()
    with pytest.raises(DataError) as err:
        cxkit.load({"spark": {"master": master}, "tables": {"orders": "/nowhere"}})
    assert time.monotonic() - t0 < 3 * sources.MASTER_TIMEOUT_S
    assert "did not answer" in str(err.value)
    assert "local[2]" in str(err.value)  # the fix


def _spark_spec(folder: Path, **tables: str) -> dict:
    locations = {p.stem: str(p) for p in folder.glob("*.parquet") if not p.name.startswith("_")}
    locations.update(tables)
    return {"spark": {"master": "local[2]"}, "tables": locations}


def test_spark_spec_reads_every_table_as_duckdb_does(spark_session: object, demo_dir: Path) -> None:
    on_spark = cxkit.load(_spark_spec(demo_dir))
    on_duckdb = cxkit.load(demo_dir)
    assert on_spark.source == "spark (local[2])"
    assert on_spark.names == on_duckdb.names
    for name in on_duckdb.names:
        cols = list(on_duckdb.table(name).columns)
        got = on_spark.to_pandas(name).sort_values(cols).reset_index(drop=True)
        want = on_duckdb.to_pandas(name).sort_values(cols).reset_index(drop=True)
        pd.testing.assert_frame_equal(got, want, check_dtype=False, obj=name)
    assert on_spark.cache_token and on_spark.cache_token != on_duckdb.cache_token
    assert cxkit.load(_spark_spec(demo_dir)).cache_token == on_spark.cache_token


def test_spark_spec_missing_path_and_catalog_table_name_the_table(
    spark_session: object, demo_dir: Path, tmp_path: Path
) -> None:
    with pytest.raises(DataError) as err:
        cxkit.load(_spark_spec(demo_dir, orders=str(tmp_path / "gone.parquet")))
    assert str(err.value).startswith("orders: the path")
    assert "does not exist" in str(err.value)
    with pytest.raises(DataError) as err:
        cxkit.load(_spark_spec(demo_dir, orders="warehouse_orders"))
    assert "catalog table 'warehouse_orders' named for orders does not exist" in str(err.value)
