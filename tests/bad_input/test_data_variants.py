"""Broken data sources and data (issue 22): exit 2 with a plain message, or a correct OK.

Each variant builds a broken copy of a 300-customer synth demo (or names a source that
cannot be opened) and runs ``cxkit validate`` and ``cxkit report`` in-process. Both must
exit 2 without a traceback, with a message that names where the problem is and the fix,
and ``report`` must stop before any notebook runs (no ``_runs`` folder, nothing
published). Data that is only unusual — tables mixing CSV and Parquet with different
timestamp types, rows dated in the future cut off by an explicit ``--as-of`` — must give
a report that is OK and right.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import cxkit
from cxkit import lifecycle, synth
from cxkit.cli import main

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "reports.yml"


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 300-customer demo as Parquet (seed 5)."""
    return synth.write_demo(tmp_path_factory.mktemp("small") / "demo", customers=300, seed=5)


def _copy(small: Path, tmp_path: Path) -> Path:
    out = tmp_path / "data"
    shutil.copytree(small, out)
    return out


def _truncated_parquet(small: Path, tmp_path: Path) -> str:
    folder = _copy(small, tmp_path)
    path = folder / "orders.parquet"
    blob = path.read_bytes()
    path.write_bytes(blob[: len(blob) // 2])
    return str(folder)


def _not_gzip_csv(small: Path, tmp_path: Path) -> str:
    folder = _copy(small, tmp_path)
    (folder / "orders.parquet").unlink()
    (folder / "orders.csv.gz").write_bytes(b"order_id,customer_id,ts,amount\n")  # not gzip
    return str(folder)


def _future_orders(small: Path, tmp_path: Path) -> str:
    folder = _copy(small, tmp_path)
    path = folder / "orders.parquet"
    df = pd.read_parquet(path)
    df.loc[df.index[:5], "ts"] = pd.Timestamp("2099-03-01 10:00")
    df.to_parquet(path, index=False)
    return str(folder)


def _pre_1970_signups(small: Path, tmp_path: Path) -> str:
    folder = _copy(small, tmp_path)
    path = folder / "customers.parquet"
    df = pd.read_parquet(path)
    df.loc[df.index[:3], "signup_at"] = pd.Timestamp("1900-01-01")
    df.to_parquet(path, index=False)
    return str(folder)


def _missing_duckdb_file(small: Path, tmp_path: Path) -> str:
    return f"duckdb:///{tmp_path / 'does_not_exist.duckdb'}"


#: name -> (build the source, texts the message must contain)
VARIANTS: dict[str, tuple[Callable[[Path, Path], str], tuple[str, ...]]] = {
    "truncated_parquet": (
        _truncated_parquet,
        ("orders: could not read the Parquet file", "orders.parquet", "Fix: "),
    ),
    "not_gzip_csv": (
        _not_gzip_csv,
        ("orders: could not read the CSV file", "orders.csv.gz", "Fix: "),
    ),
    "future_orders": (
        _future_orders,
        ("orders.ts: timestamp is in the future", "(5 rows)", "'2099-03-01 10:00:00'", "Fix: "),
    ),
    "pre_1970_signups": (
        _pre_1970_signups,
        ("customers.signup_at: timestamp is before 1970-01-01", "(3 rows)", "Fix: "),
    ),
    "postgres_unreachable": (
        lambda small, tmp: "postgresql://user@127.0.0.1:1/db",
        ("postgresql://user@127.0.0.1:1/db: could not connect", "refused", "Fix: check"),
    ),
    "duckdb_missing_dir": (
        lambda small, tmp: "duckdb:///missing/dir/x.duckdb",
        ("'/missing/dir/x.duckdb' does not exist", "Fix: check the path"),
    ),
    "duckdb_missing_file": (
        _missing_duckdb_file,
        ("does_not_exist.duckdb' does not exist", "never creates an empty database"),
    ),
    "unknown_scheme": (
        lambda small, tmp: "foo://bar",
        ("unknown kind of data source 'foo://bar'", "duckdb:///", "postgresql://"),
    ),
}


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = main(argv)
    captured = capsys.readouterr()
    return code, captured.out + captured.err


@pytest.mark.parametrize("command", ["validate", "report"])
@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_broken_source_exits_2_with_a_plain_message(
    variant: str,
    command: str,
    small: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    build, expected = VARIANTS[variant]
    source = build(small, tmp_path)
    out = tmp_path / "reports"
    if command == "validate":
        argv = ["validate", source]
    else:
        argv = ["report", "--config", str(CONFIG), "--data", source, "--out", str(out)]
    code, text = _run(argv, capsys)
    assert code == 2, text
    assert "Traceback" not in text
    for piece in expected:
        assert piece in text, (piece, text)
    if command == "report":
        assert "nothing was run or published" in text
        assert not (out / "_runs").exists() and not list(out.glob("*.html"))
    if variant == "duckdb_missing_file":
        assert not (tmp_path / "does_not_exist.duckdb").exists()


def _mixed_formats_with_future_orders(small: Path, tmp_path: Path) -> Path:
    """CSV customers and orders, Parquet events and responses in ns, 5 orders in 2099."""
    folder = Path(_future_orders(small, tmp_path))
    for name in ("customers", "orders"):
        pd.read_parquet(folder / f"{name}.parquet").to_csv(folder / f"{name}.csv", index=False)
        (folder / f"{name}.parquet").unlink()
    for name in ("events", "responses"):
        table = pq.read_table(folder / f"{name}.parquet")
        i = table.schema.get_field_index("ts")
        table = table.set_column(i, "ts", table.column("ts").cast(pa.timestamp("ns")))
        pq.write_table(table, folder / f"{name}.parquet")
    return folder


@pytest.mark.slow
def test_mixed_formats_and_cut_future_rows_give_a_right_ok_report(
    small: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Before the fix the lifecycle report FAILED here with "RelationError: Table schemas
    # must be equal" (CSV ts was `timestamp`, Parquet ts `timestamp(9)`), and without
    # --as-of the 2099 orders moved as_of to 2099.
    folder = _mixed_formats_with_future_orders(small, tmp_path)
    code, text = _run(["validate", str(folder)], capsys)
    assert code == 2 and "orders.ts: timestamp is in the future" in text
    code, text = _run(["validate", str(folder), "--as-of", "2024-12-31"], capsys)
    assert code == 0 and "WARNING orders.ts: timestamp is in the future" in text

    out = tmp_path / "reports"
    argv = ["report", "--config", str(CONFIG), "--data", str(folder), "--out", str(out)]
    argv += ["--as-of", "2024-12-31", "--only", "lifecycle"]
    code, text = _run(argv, capsys)
    assert code == 0, text
    assert "Traceback" not in text
    report = json.loads((out / "manifest.json").read_text())["reports"]["lifecycle"]
    assert report["status"] == "OK", report["error"]
    # the same headline as on the same rows all in Parquet
    same = cxkit.load(_future_orders(small, tmp_path / "parquet"))
    assert report["headline"] == lifecycle.analyze(same, as_of="2024-12-31").headline()
