"""``cxkit report`` on a database or Spark from the reports file (issue 19).

reports.yml's ``data:`` may be a section — ``{url, tables}`` for a database, ``{spark:
{master, conf}, tables: {...}}`` for Spark — and a top-level ``tables:`` maps contract
tables onto a database's names. The config tests need no engine; the suite test runs all
seven reports on local Spark through a reports file, as a scheduled run would, and checks
that they say what the same reports say on DuckDB.
"""

from __future__ import annotations

import json
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import ibis
import pandas as pd
import pytest
import yaml

from cxkit.cli import main
from cxkit.data import ALL_TABLES
from cxkit.errors import UsageError
from cxkit.report import load_config
from cxkit.report.config import data_label

ROOT = Path(__file__).resolve().parents[1]


def _config(path: Path, data: Any, **top: Any) -> Path:
    reports = yaml.safe_load((ROOT / "reports.yml").read_text())["reports"]
    for r in reports:
        r["notebook"] = str(ROOT / r["notebook"])
    cfg = {"data": data, "out": "out", "jobs": 2, **top, "reports": reports}
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


def test_spark_section_is_checked_and_paths_resolve_against_the_file(tmp_path: Path) -> None:
    spark = {"spark": {"master": "local[2]"}, "tables": {"orders": "lake/orders.parquet"}}
    cfg = load_config(_config(tmp_path / "r.yml", spark))
    assert cfg.data == {
        "spark": {"master": "local[2]", "conf": {}},
        "tables": {"orders": str(tmp_path / "lake" / "orders.parquet")},
    }
    assert cfg.data_label == "spark (local[2])"
    bad = {"spark": {"master": "local[2]"}, "tables": {"sales": "x.parquet"}}
    with pytest.raises(UsageError, match=r"unknown table\(s\) \['sales'\]"):
        load_config(_config(tmp_path / "r.yml", bad))


def test_top_level_tables_apply_to_a_database_url(tmp_path: Path) -> None:
    url = "postgresql://cx:secret@db.internal/analytics"
    cfg = load_config(_config(tmp_path / "r.yml", url, tables={"orders": "sales"}))
    assert cfg.data == {"url": url, "tables": {"orders": "sales"}}
    assert cfg.data_label == "postgresql://cx@db.internal/analytics"  # no password shown
    with pytest.raises(UsageError, match="the data is a folder"):
        load_config(_config(tmp_path / "r.yml", "data/demo", tables={"orders": "sales"}))
    twice = {"url": url, "tables": {"orders": "sales"}}
    with pytest.raises(UsageError, match="tables is given twice"):
        load_config(_config(tmp_path / "r.yml", twice, tables={"orders": "sales"}))


def test_data_label_never_shows_a_password() -> None:
    assert data_label({"url": "postgresql://u:pw@h/db", "tables": {}}) == "postgresql://u@h/db"


def test_report_on_a_renamed_duckdb_table_runs_and_names_a_missing_one(
    demo_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "shop.duckdb"
    con = ibis.duckdb.connect(str(db))
    con.create_table("sales", pd.read_parquet(demo_dir / "orders.parquet"))
    con.disconnect()
    cfg = _config(tmp_path / "r.yml", f"duckdb:///{db}", tables={"orders": "sale"})
    assert main(["report", "--config", str(cfg), "--only", "clv"]) == 2
    err = capsys.readouterr().err
    assert "'sale' was named for orders but does not exist" in err
    assert "Traceback" not in err and not (tmp_path / "out" / "clv.html").exists()
    cfg = _config(tmp_path / "r.yml", f"duckdb:///{db}", tables={"orders": "sales"})
    assert main(["report", "--config", str(cfg), "--only", "clv", "--clear-ids"]) == 0
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest["reports"]["clv"]["status"] == "OK"
    assert manifest["data"] == f"duckdb:///{db}"


def test_unreachable_spark_master_exits_2_before_anything_runs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spark = {"spark": {"master": "spark://127.0.0.1:9"}, "tables": {"orders": "/x.parquet"}}
    assert main(["report", "--config", str(_config(tmp_path / "r.yml", spark))]) == 2
    err = capsys.readouterr().err
    assert "the Spark master spark://127.0.0.1:9 did not answer" in err
    assert "Traceback" not in err and not (tmp_path / "out").exists()


class _Text(HTMLParser):
    """The visible text of a page's body: no header (data source, run time), no footer
    (run id), no scripts or styles."""

    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []
        self._skip = 0
        self._in_main = False

    def handle_starttag(self, tag: str, attrs: list) -> None:
        self._skip += tag in ("script", "style")
        self._in_main = self._in_main or tag == "main"

    def handle_endtag(self, tag: str) -> None:
        self._skip -= tag in ("script", "style")
        self._in_main = self._in_main and tag != "main"

    def handle_data(self, data: str) -> None:
        if self._in_main and not self._skip and data.strip():
            self.parts.append(" ".join(data.split()))


def _text(page: Path) -> list[str]:
    parser = _Text()
    parser.feed(page.read_text())
    assert parser.parts, f"{page} has no <main> text"
    return parser.parts


@pytest.mark.slow
def test_whole_suite_runs_on_spark_from_the_reports_file(
    spark_session: object, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """All seven reports on local Spark say what they say on DuckDB, number for number."""
    del spark_session  # only for its skip when Java or pyspark is missing
    work = tmp_path_factory.mktemp("spark_suite")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "cxkit.cli",
            "synth",
            "--customers",
            "600",
            "--out",
            str(work / "d"),
        ],
        check=True,
        capture_output=True,
    )
    tables = {
        name: f"d/{name}.parquet"
        for name in ALL_TABLES
        if (work / "d" / f"{name}.parquet").exists()
    }
    conf = {"spark.driver.memory": "1g", "spark.sql.shuffle.partitions": 2}
    spark = {"spark": {"master": "local[1]", "conf": conf}, "tables": tables}
    runs = {}
    for name, data in (("spark", spark), ("duck", str(work / "d"))):
        cfg = _config(work / f"{name}.yml", data, out=f"out_{name}")
        proc = subprocess.run(
            [sys.executable, "-m", "cxkit.cli", "report", "--config", str(cfg), "--clear-ids"],
            capture_output=True,
            text=True,
            cwd=work,
        )
        assert proc.returncode == 0, f"{name}: {proc.stdout[-3000:]}\n{proc.stderr[-2000:]}"
        assert "Traceback" not in proc.stderr
        runs[name] = json.loads((work / f"out_{name}" / "manifest.json").read_text())
    assert runs["spark"]["data"] == "spark (local[1])"
    assert set(runs["spark"]["reports"]) == set(runs["duck"]["reports"])
    for report, entry in runs["duck"]["reports"].items():
        on_spark = runs["spark"]["reports"][report]
        assert on_spark["status"] == entry["status"], f"{report} on Spark: {on_spark['status']}"
        assert on_spark["headline"] == entry["headline"], report
        spark_text = _text(work / "out_spark" / f"{report}.html")
        duck_text = _text(work / "out_duck" / f"{report}.html")
        assert spark_text == duck_text, report
