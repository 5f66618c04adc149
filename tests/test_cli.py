"""The ``cxkit`` command: how options map onto the library, exit codes, plain messages."""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import nbformat
import pandas as pd
import pytest

from cxkit import cli, synth

ROOT = Path(__file__).resolve().parents[1]

BAD_ORDERS = """order_id,customer_id,ts,amount
1,a,2024-01-01,5.0
1,b,2024-01-02,abc
3,c,not a date,7.0
"""


@pytest.fixture
def bad_folder(tmp_path: Path) -> Path:
    """Orders with a duplicate ID, a non-numeric amount and an unparseable date."""
    folder = tmp_path / "bad"
    folder.mkdir()
    (folder / "orders.csv").write_text(BAD_ORDERS)
    return folder


@pytest.fixture
def good_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "good"
    folder.mkdir()
    pd.DataFrame(
        {
            "order_id": ["1", "2", "3"],
            "customer_id": ["a", "b", "a"],
            "ts": pd.to_datetime(["2024-01-01", "2024-01-02", "2024-02-01"]),
            "amount": [5.0, 7.5, 3.0],
        }
    ).to_parquet(folder / "orders.parquet", index=False)
    return folder


@pytest.fixture
def reports_file(tmp_path: Path, good_folder: Path) -> Path:
    """A reports file with one tiny notebook (never executed by these tests)."""
    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell("data = None\nas_of = None")
    params.metadata["tags"] = ["parameters"]
    nb.cells = [nbformat.v4.new_markdown_cell("# Tiny"), params]
    nbformat.write(nb, tmp_path / "tiny.ipynb")
    cfg = tmp_path / "reports.yml"
    cfg.write_text(
        f"data: {good_folder}\nout: {tmp_path / 'reports'}\n"
        "reports:\n  - name: tiny\n    notebook: tiny.ipynb\n"
    )
    return cfg


# --------------------------------------------------------------------------------------
# options -> library calls
# --------------------------------------------------------------------------------------


def test_synth_options_map_onto_write_demo(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    calls: list[tuple[object, dict[str, object]]] = []
    monkeypatch.setattr(synth, "write_demo", lambda out, **kw: calls.append((out, kw)))
    argv = ["synth", "--customers", "1500", "--seed", "3", "--start", "2022-01-01"]
    argv += ["--end", "2022-06-30", "--format", "csv", "--out", "somewhere"]
    assert cli.main(argv) == cli.EXIT_OK
    assert calls == [
        (
            "somewhere",
            {
                "customers": 1500,
                "seed": 3,
                "start": "2022-01-01",
                "end": "2022-06-30",
                "fmt": "csv",
            },
        )
    ]
    assert "wrote demo data for 1,500 customers to somewhere" in capsys.readouterr().out


def test_synth_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[object, dict[str, object]]] = []
    monkeypatch.setattr(synth, "write_demo", lambda out, **kw: calls.append((out, kw)))
    assert cli.main(["synth"]) == cli.EXIT_OK
    out, kw = calls[0]
    assert out == "data/demo"
    assert kw == {
        "customers": 20_000,
        "seed": 42,
        "start": "2023-01-01",
        "end": "2024-12-31",
        "fmt": "parquet",
    }


def test_report_options_map_onto_run_from_cli(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[argparse.Namespace] = []

    def fake(args: argparse.Namespace) -> int:
        seen.append(args)
        return cli.EXIT_FAILED

    monkeypatch.setattr(cli, "run_from_cli", fake)
    argv = ["report", "--config", "r.yml", "--data", "d", "--as-of", "2024-06-30"]
    argv += ["--out", "o", "--only", "clv", "--only", "churn", "--jobs", "3"]
    argv += ["--memory-limit-gb", "1.5"]
    assert cli.main(argv) == cli.EXIT_FAILED  # the run's own exit code is passed through
    a = seen[0]
    assert (a.config, a.data, a.as_of, a.out) == ("r.yml", "d", "2024-06-30", "o")
    assert (a.only, a.jobs, a.memory_limit_gb) == (["clv", "churn"], 3, 1.5)


def test_report_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[argparse.Namespace] = []
    monkeypatch.setattr(cli, "run_from_cli", lambda args: seen.append(args) or 0)
    assert cli.main(["report"]) == cli.EXIT_OK
    a = seen[0]
    assert a.config == "reports.yml"
    assert [a.data, a.as_of, a.out, a.only, a.jobs, a.memory_limit_gb] == [None] * 6


# --------------------------------------------------------------------------------------
# real runs and exit codes
# --------------------------------------------------------------------------------------


def test_synth_writes_the_demo(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "demo"
    assert cli.main(["synth", "--customers", "60", "--seed", "1", "--out", str(out)]) == 0
    names = sorted(p.name for p in out.iterdir())
    assert names == [
        "_truth.json",
        "_truth.parquet",
        "assignments.parquet",
        "customers.parquet",
        "events.parquet",
        "orders.parquet",
        "responses.parquet",
    ]
    assert len(pd.read_parquet(out / "customers.parquet")) == 60
    assert "60 customers" in capsys.readouterr().out


def test_synth_bad_option_exits_2_with_the_reason(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["synth", "--customers", "0", "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err
    assert err.strip() == "cxkit synth: customers must be a positive number, got 0"


def test_validate_clean_data_exits_0(good_folder: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["validate", str(good_folder)]) == cli.EXIT_OK
    out = capsys.readouterr().out
    assert out.splitlines()[0] == f"Validation of {good_folder}"
    assert "0 errors" in out


def test_validate_warnings_only_exits_0(
    good_folder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Activity after as_of is a warning, not an error."""
    assert cli.main(["validate", str(good_folder), "--as-of", "2024-01-15"]) == cli.EXIT_OK
    out = capsys.readouterr().out
    assert "WARNING orders" in out and "0 errors, 1 warning." in out


def test_validate_bad_data_exits_2_naming_table_column_rows_and_fix(
    bad_folder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["validate", str(bad_folder)]) == cli.EXIT_BAD_INPUT
    out = capsys.readouterr().out
    lines = out.splitlines()
    amount = next(line for line in lines if "orders.amount" in line)
    assert amount.startswith("  ERROR orders.amount: amount is not a number (1 rows)")
    assert "e.g. 'abc'" in amount and ". Fix: amounts must be plain numbers" in amount
    ts = next(line for line in lines if "orders.ts" in line)
    assert "(1 rows)" in ts and "'not a date'" in ts and "Fix: use ISO 8601" in ts
    dup = next(line for line in lines if "orders.order_id" in line)
    assert "more than once (2 rows)" in dup and "Fix: order_id must be unique" in dup
    assert "3 errors, 0 warnings." in out
    assert lines[-1] == "Fix the errors above and run 'cxkit validate' again."


def test_validate_missing_folder_exits_2_without_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "nope"
    assert cli.main(["validate", str(missing)]) == cli.EXIT_BAD_INPUT
    captured = capsys.readouterr()
    assert captured.err.strip() == (
        f"cxkit validate: {missing}: the data folder does not exist. Fix: check the path, "
        "or run 'cxkit synth --out DIR' to make demo data"
    )
    assert "Traceback" not in captured.err + captured.out


def test_installed_command_exits_2_on_bad_data(bad_folder: Path) -> None:
    """The ``cxkit`` console script itself (as a scheduler runs it)."""
    exe = Path(sys.executable).with_name("cxkit")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "cxkit.cli"]
    proc = subprocess.run(
        [*cmd, "validate", str(bad_folder)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 2
    assert "ERROR orders.amount" in proc.stdout
    assert "Traceback" not in proc.stdout + proc.stderr


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        ([], "the following arguments are required: command"),
        (["explode"], "invalid choice: 'explode'"),
        (["report", "--jobs", "two"], "argument --jobs: invalid int value: 'two'"),
        (["synth", "--format", "xlsx"], "argument --format: invalid choice: 'xlsx'"),
    ],
)
def test_usage_errors_exit_2_with_the_usage(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(argv) == cli.EXIT_BAD_INPUT
    err = capsys.readouterr().err
    assert err.startswith("usage: cxkit") and message in err


def test_help_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["--help"]) == cli.EXIT_OK
    out = capsys.readouterr().out
    assert "synth" in out and "validate" in out and "report" in out


def test_report_unknown_only_exits_2_and_lists_the_reports(
    reports_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["report", "--config", str(reports_file), "--only", "zz"]) == 2
    err = capsys.readouterr().err
    assert "--only names unknown report(s) 'zz'; valid: tiny" in err
    assert "nothing was run or published" in err
    assert not (reports_file.parent / "reports").exists()


def test_report_missing_config_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["report", "--config", str(tmp_path / "nope.yml")]) == 2
    assert "reports file" in capsys.readouterr().err


def test_report_on_bad_data_exits_2_and_publishes_nothing(
    reports_file: Path, bad_folder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["report", "--config", str(reports_file), "--data", str(bad_folder)]
    assert cli.main(argv) == cli.EXIT_BAD_INPUT
    err = capsys.readouterr().err
    assert "the data failed validation with 3 error(s)" in err
    assert "ERROR orders.amount: amount is not a number (1 rows)" in err
    assert "nothing was run or published" in err
    out = reports_file.parent / "reports"
    assert not (out / "index.html").exists() and not (out / "tiny.html").exists()


def test_interrupt_exits_130(monkeypatch: pytest.MonkeyPatch) -> None:
    def interrupted(out: str, **kw: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(synth, "write_demo", interrupted)
    assert cli.main(["synth"]) == 130
