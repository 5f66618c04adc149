"""The report pipeline: config, export, publishing, and the failure paths of real runs.

The runs use tiny throwaway notebooks (no cxkit import in the kernel) on a three-row
orders table; one module fixture runs twice (all good, then three kinds of failure) and
many tests read its results.
"""

from __future__ import annotations

import io
import json
import os
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb
import nbformat
import pandas as pd
import psutil
import pytest
import yaml

from cxkit.cli import main
from cxkit.data import load
from cxkit.errors import UsageError
from cxkit.report import (
    extract_headline,
    load_config,
    notebook_parameters,
    notebook_to_html,
    run_reports,
    sanitize_html,
)
from cxkit.report.config import check_parameters, parse_config
from cxkit.report.export import count_figures, plotly_asset, plotly_js
from cxkit.report.pipeline import OWNER_FILE, remove_stale_runs
from cxkit.report.publish import atomic_write
from cxkit.report.runner import leftover_processes

PLOTLY_MIME = "application/vnd.plotly.v1+json"
FIGURE = {
    "data": [{"type": "bar", "x": ["a", "b"], "y": [1, 2]}],
    "layout": {"title": {"text": "Two bars"}, "height": 300},
}

# --------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------


def _tiny_notebook(path: Path) -> Path:
    """A notebook that shows a headline, a figure and stdout; mode='raise'|'sleep' fails."""
    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell(
        'data = "../data/demo"\nas_of = None\ninteractive = False\nmode = "ok"'
    )
    params.metadata["tags"] = ["parameters"]
    nb.cells = [
        nbformat.v4.new_markdown_cell("# Tiny\n\nA tiny *report*."),
        params,
        nbformat.v4.new_code_cell(
            "from IPython.display import HTML, display\n"
            "display(HTML('<p class=\"cx-headline\">Tiny is fine &amp; well</p>'))\n"
            'print("hello from stdout")'
        ),
        nbformat.v4.new_code_cell(f"display({{{PLOTLY_MIME!r}: {FIGURE!r}}}, raw=True)"),
        nbformat.v4.new_code_cell(
            "import time\n"
            'if mode == "raise":\n    raise ValueError("boom in the notebook")\n'
            'if mode == "sleep":\n    time.sleep(120)'
        ),
    ]
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nbformat.write(nb, path)
    return path


def _write_config(path: Path, data: Path, reports: list[dict[str, Any]], **top: Any) -> Path:
    cfg = {"data": str(data), "as_of": None, "out": "out", "jobs": 2, **top, "reports": reports}
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


def _orders(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "orders.csv").write_text(
        "order_id,customer_id,ts,amount\n"
        "o1,001,2024-01-02,10.5\no2,002,2024-01-03,20.0\no3,001,2024-02-01,5.25\n"
    )
    return folder


def _executed(outputs_per_cell: list[list[dict[str, Any]]]) -> dict[str, Any]:
    """An executed notebook as a dict: one code cell per list of outputs."""
    cells: list[dict[str, Any]] = [
        {"cell_type": "markdown", "metadata": {}, "source": "# Title\n\nIntro **text**."},
        {
            "cell_type": "code",
            "metadata": {"tags": ["parameters"]},
            "source": "data = 'x'",
            "outputs": [],
        },
    ]
    for outs in outputs_per_cell:
        cells.append(
            {"cell_type": "code", "metadata": {}, "source": "SECRET_CODE = 1", "outputs": outs}
        )
    return {"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5}


def _display(data: dict[str, Any]) -> dict[str, Any]:
    return {"output_type": "display_data", "data": data, "metadata": {}}


# --------------------------------------------------------------------------------------
# config
# --------------------------------------------------------------------------------------


@pytest.fixture
def nb_dir(tmp_path: Path) -> Path:
    _tiny_notebook(tmp_path / "tiny.ipynb")
    return tmp_path


def test_config_reads_file_and_applies_overrides(nb_dir: Path, monkeypatch: Any) -> None:
    cfg_path = _write_config(
        nb_dir / "reports.yml",
        nb_dir / "data",
        [
            {"name": "a", "notebook": "tiny.ipynb", "title": "Report A"},
            {"name": "b", "notebook": "tiny.ipynb", "parameters": {"mode": "ok"}, "timeout": 9},
        ],
        cell_timeout=30,
    )
    cfg = load_config(cfg_path)
    assert cfg.names == ["a", "b"]
    assert cfg.data == str((nb_dir / "data").resolve())
    assert cfg.out == (nb_dir / "out").resolve()
    assert cfg.jobs == 2 and cfg.as_of is None
    a, b = cfg.reports
    assert a.title == "Report A" and b.title == "B"
    assert a.notebook == (nb_dir / "tiny.ipynb").resolve()
    assert (a.cell_timeout, a.timeout) == (30.0, 1200.0)
    assert (b.cell_timeout, b.timeout, b.parameters) == (30.0, 9.0, {"mode": "ok"})

    monkeypatch.chdir(nb_dir)
    cfg = load_config(
        cfg_path, data="other", as_of="2024-06-30", out="elsewhere", only=["b"], jobs=1
    )
    assert cfg.data == str((nb_dir / "other").resolve())
    assert (cfg.as_of, cfg.jobs, cfg.names) == ("2024-06-30", 1, ["b"])
    assert cfg.out == (nb_dir / "elsewhere").resolve()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            {"colour": "red"},
            r"unknown key\(s\) 'colour'; valid keys: data, as_of, mapping, out, jobs",
        ),
        ({"jobs": 0}, r"jobs must be a positive integer, got 0"),
        ({"jobs": "two"}, r"jobs must be a positive number, got 'two'"),
        ({"as_of": "yesterday-ish"}, r"as_of must be an ISO date like '2024-06-30' or null"),
        ({"reports": [{"name": "a"}]}, r"reports\[0\]: 'notebook' is required"),
        (
            {"reports": [{"name": "a", "notebook": "tiny.ipynb", "params": {}}]},
            r"reports\[0\]: unknown key\(s\) 'params'; valid keys: name, notebook, title, "
            r"parameters",
        ),
        (
            {"reports": [{"name": "a", "notebook": "tiny.ipynb"}] * 2},
            r"duplicate report name 'a'",
        ),
        (
            {"reports": [{"name": "a", "notebook": "missing.ipynb"}]},
            r"report 'a': notebook .*missing.ipynb does not exist",
        ),
        ({"reports": []}, r"no reports to run"),
        ({"reports": [{"name": "index", "notebook": "tiny.ipynb"}]}, r"not index/manifest"),
    ],
)
def test_config_errors_name_the_valid_choices(nb_dir: Path, change: dict, message: str) -> None:
    raw = {"data": "data", "reports": [{"name": "a", "notebook": "tiny.ipynb"}], **change}
    (nb_dir / "r.yml").write_text(yaml.safe_dump(raw))
    with pytest.raises(UsageError, match=message):
        load_config(nb_dir / "r.yml")


def test_only_with_unknown_name_lists_the_reports(nb_dir: Path) -> None:
    cfg = _write_config(nb_dir / "r.yml", nb_dir, [{"name": "a", "notebook": "tiny.ipynb"}])
    with pytest.raises(UsageError, match=r"--only names unknown report\(s\) 'zz'; valid: a"):
        load_config(cfg, only=["zz"])
    with pytest.raises(UsageError, match=r"reports file 'nope.yml' not found"):
        load_config("nope.yml")


def test_parameters_are_read_from_the_tagged_cell(nb_dir: Path) -> None:
    declared = notebook_parameters(nb_dir / "tiny.ipynb")
    assert list(declared or {}) == ["data", "as_of", "interactive", "mode"]
    cfg = _write_config(
        nb_dir / "r.yml",
        nb_dir,
        [
            {"name": "a", "notebook": "tiny.ipynb", "parameters": {"mode": "x"}},
            {"name": "b", "notebook": "tiny.ipynb", "parameters": {"bogus": 1, "mood": 2}},
        ],
    )
    a, b = load_config(cfg).reports
    assert check_parameters(a) is None
    assert check_parameters(b) == (
        "unknown parameter(s) 'bogus', 'mood' for notebook tiny.ipynb; "
        "it declares: data, as_of, interactive, mode"
    )


# --------------------------------------------------------------------------------------
# bad input: exit 2, nothing published
# --------------------------------------------------------------------------------------


def test_bad_config_exits_2_and_publishes_nothing(nb_dir: Path, capsys: Any) -> None:
    cfg = _write_config(nb_dir / "r.yml", nb_dir, [{"name": "a", "notebook": "tiny.ipynb"}])
    code = main(["report", "--config", str(cfg), "--only", "zz", "--out", str(nb_dir / "o")])
    assert code == 2
    assert "valid: a" in capsys.readouterr().err
    assert not (nb_dir / "o").exists()


def test_missing_data_exits_2_and_publishes_nothing(nb_dir: Path, capsys: Any) -> None:
    cfg = _write_config(
        nb_dir / "r.yml", nb_dir / "nodata", [{"name": "a", "notebook": "tiny.ipynb"}]
    )
    assert main(["report", "--config", str(cfg)]) == 2
    assert "nothing was run or published" in capsys.readouterr().err
    assert not (nb_dir / "out").exists()


def test_invalid_data_exits_2_and_publishes_nothing(nb_dir: Path, capsys: Any) -> None:
    data = _orders(nb_dir / "bad")
    with (data / "orders.csv").open("a") as fh:
        fh.write("o1,003,2024-03-01,-4.0\n")  # duplicate order_id, negative amount
    cfg = _write_config(nb_dir / "r.yml", data, [{"name": "a", "notebook": "tiny.ipynb"}])
    assert main(["report", "--config", str(cfg)]) == 2
    err = capsys.readouterr().err
    assert "failed validation with 2 error(s)" in err and "orders.order_id" in err
    assert not (nb_dir / "out").exists()


def test_second_run_on_the_same_folder_is_refused(nb_dir: Path, capsys: Any) -> None:
    import fcntl

    cfg = _write_config(
        nb_dir / "r.yml", _orders(nb_dir / "data"), [{"name": "a", "notebook": "tiny.ipynb"}]
    )
    (nb_dir / "out").mkdir()
    with open(nb_dir / "out" / ".cxkit-report.lock", "a+") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        assert main(["report", "--config", str(cfg)]) == 2
    assert "another 'cxkit report' is running on" in capsys.readouterr().err
    assert [p.name for p in (nb_dir / "out").iterdir()] == [".cxkit-report.lock"]


# --------------------------------------------------------------------------------------
# export (no kernel)
# --------------------------------------------------------------------------------------


def _strip_plotly(text: str) -> str:
    return text.replace(plotly_js(), "")


def test_export_is_offline_and_inlines_plotly_once() -> None:
    nb = _executed(
        [
            [
                _display({"text/html": '<p class="cx-headline">Sales &lt;up&gt; 5%</p>'}),
                {"output_type": "stream", "name": "stdout", "text": "42 customers\n"},
                {"output_type": "stream", "name": "stderr", "text": "a warning\n"},
            ],
            [
                _display(
                    {PLOTLY_MIME: FIGURE, "text/html": "<script src='https://cdn.plot.ly/x.js'>"}
                )
            ],
            [_display({PLOTLY_MIME: FIGURE})],
            [
                _display(
                    {
                        "text/html": '<script type="text/javascript">require.config({})</script>'
                        '<script src="https://cdn.jsdelivr.net/npm/require.js"></script>'
                        '<link rel="stylesheet" href="https://cdn.example.com/x.css">'
                        '<table class="dataframe"><tr><td onclick="x()">1,234</td></tr></table>'
                    }
                )
            ],
            [{"output_type": "error", "ename": "ValueError", "evalue": "bad", "traceback": []}],
        ]
    )
    page = notebook_to_html(nb, title="My report", meta={"As of": "2024-12-31", "Data": "demo"})
    assert page.count(plotly_js()) == 1
    rest = _strip_plotly(page)
    lowered = rest.lower()
    assert "<script src" not in lowered and "src=" not in lowered
    assert "cdn" not in lowered and "require.js" not in lowered and "require.config" not in lowered
    assert "mathjax" not in lowered and "<link" not in lowered and "http" not in lowered
    assert rest.count("Plotly.newPlot(") == 2
    assert "SECRET_CODE" not in rest and "In [" not in rest and "data = 'x'" not in rest
    assert '<pre class="cx-stdout">42 customers</pre>' in rest
    assert "a warning" not in rest
    assert '<div class="cx-error">ValueError: bad</div>' in rest
    assert "<td>1,234</td>" in rest and "onclick" not in rest
    assert "<h1>My report</h1>" in rest and "As of</b> 2024-12-31" in rest
    assert "<h1>Title</h1>" not in rest and "Intro <strong>text</strong>." in rest
    assert count_figures(nb) == 2
    assert extract_headline(nb) == "Sales <up> 5%"


def test_export_without_figures_has_no_plotly_and_figure_json_cannot_close_script() -> None:
    assert "Plotly" not in notebook_to_html(_executed([[]]), title="t", meta={})
    evil = {"data": [{"type": "bar", "x": ["</script><script>alert(1)</script>"], "y": [1]}]}
    page = _strip_plotly(
        notebook_to_html(_executed([[_display({PLOTLY_MIME: evil})]]), title="t", meta={})
    )
    assert "<script>alert(1)" not in page
    assert page.count("<script") == 2  # the (stripped) plotly bundle and the figure's newPlot


@pytest.mark.parametrize(
    ("dirty", "clean"),
    [
        ("<b>x</b><script>alert(1)</script>", "<b>x</b>"),
        ('<img src="x" onerror="alert(1)">', ""),
        (
            '<img src="data:image/png;base64,AAAA" alt="a">',
            '<img src="data:image/png;base64,AAAA" alt="a">',
        ),
        ('<a href="https://evil.example/">link</a>', "<a>link</a>"),
        ('<a href="lifecycle.html#funnel">x</a>', '<a href="lifecycle.html#funnel">x</a>'),
        ('<a href="javascript:alert(1)">x</a><a href="//h/x">y</a>', "<a>x</a><a>y</a>"),
        ('<div style="background:url(http://x/y.png)">z</div>', "<div>z</div>"),
        ("<style>@import url(http://x);td{color:red}</style>", "<style></style>"),
        ("<iframe src='https://x'></iframe>ok &amp; &lt;fine&gt;", "ok &amp; &lt;fine&gt;"),
        ("<svg><script>alert(1)</script></svg>after", "after"),
    ],
)
def test_sanitize_html(dirty: str, clean: str) -> None:
    assert sanitize_html(dirty) == clean


def test_parameter_placeholders_are_expanded() -> None:
    from cxkit.report.pipeline import _expand

    subs = {"out": "/r", "run_dir": "/r/_runs/1"}
    value = {"a": "{out}/scores", "b": ["{run_dir}", 3], "c": None, "d": "{other}"}
    assert _expand(value, subs) == {
        "a": "/r/scores",
        "b": ["/r/_runs/1", 3],
        "c": None,
        "d": "{other}",
    }


def test_atomic_write_respects_the_umask_and_leaves_no_temp_file(tmp_path: Path) -> None:
    old = os.umask(0o077)
    try:
        target = atomic_write(tmp_path / "r.html", "<p>new</p>")
    finally:
        os.umask(old)
    assert target.read_text() == "<p>new</p>"
    assert stat.S_IMODE(target.stat().st_mode) == 0o600  # as the umask says, not 0644
    assert [p.name for p in tmp_path.iterdir()] == ["r.html"]


# --------------------------------------------------------------------------------------
# real runs: all good, then a raise, a cell timeout, a job timeout and an unknown parameter
# --------------------------------------------------------------------------------------

NAMES = ["good", "raises", "cell_timeout", "job_timeout", "bad_param"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("pipeline")
    _tiny_notebook(root / "tiny.ipynb")
    data = _orders(root / "data")
    first = [{"name": n, "notebook": "tiny.ipynb", "title": n.title()} for n in NAMES]
    cfg1 = _write_config(root / "ok.yml", data, first, jobs=2)
    res1 = run_reports(cfg1)
    before = {n: (root / "out" / f"{n}.html").read_bytes() for n in NAMES}
    manifest1 = json.loads((root / "out" / "manifest.json").read_text())

    second = [
        {"name": "good", "notebook": "tiny.ipynb", "title": "Good"},
        {"name": "raises", "notebook": "tiny.ipynb", "parameters": {"mode": "raise"}},
        {
            "name": "cell_timeout",
            "notebook": "tiny.ipynb",
            "parameters": {"mode": "sleep"},
            "cell_timeout": 2,
        },
        {
            "name": "job_timeout",
            "notebook": "tiny.ipynb",
            "parameters": {"mode": "sleep"},
            "timeout": 20,
        },
        {"name": "bad_param", "notebook": "tiny.ipynb", "parameters": {"bogus": 1}},
    ]
    cfg2 = _write_config(root / "bad.yml", data, second, jobs=2)
    res2 = run_reports(cfg2)
    leftovers = [p.pid for n in NAMES for p in leftover_processes(f"{res2.run_id}/{n}")]
    return {
        "root": root,
        "res1": res1,
        "res2": res2,
        "before": before,
        "manifest1": manifest1,
        "leftovers": leftovers,
        "out": root / "out",
    }


@pytest.mark.slow
def test_first_run_publishes_everything(runs: dict[str, Any]) -> None:
    res, out = runs["res1"], runs["out"]
    assert res.exit_code == 0, {n: r.error for n, r in res.reports.items()}
    for n in NAMES:
        page = (out / f"{n}.html").read_text()
        # plotly.js is the folder's one shared file (publish: plotly: shared, the default)
        script = f'<script src="{plotly_asset()}"></script>'
        assert plotly_js() not in page and page.count(script) == 1
        assert (out / plotly_asset()).read_text() == plotly_js()
        rest = page.replace(script, "").lower()
        assert "<script src" not in rest and "cdn" not in rest and "require.js" not in rest
        assert rest.count("plotly.newplot(") == 1
        assert "hello from stdout" in rest and "import time" not in rest
        assert stat.S_IMODE((out / f"{n}.html").stat().st_mode) == 0o644
    assert (res.run_dir / "good.ipynb").is_file()
    assert runs["manifest1"]["reports"]["good"]["headline"] == "Tiny is fine & well"


@pytest.mark.slow
def test_failures_exit_1_and_keep_the_last_good_html(runs: dict[str, Any]) -> None:
    res = runs["res2"]
    assert res.exit_code == 1
    assert sorted(res.failed) == sorted(NAMES[1:])
    errors = {n: r.error or "" for n, r in res.reports.items()}
    assert "ValueError: boom in the notebook" in errors["raises"]
    assert "cell timeout of 2 s" in errors["cell_timeout"]
    assert "job timeout of 20 s" in errors["job_timeout"]
    assert "unknown parameter(s) 'bogus'" in errors["bad_param"]
    for n in NAMES[1:]:
        assert (runs["out"] / f"{n}.html").read_bytes() == runs["before"][n], n
    assert (runs["out"] / "good.html").read_bytes() != runs["before"]["good"]  # new run id


@pytest.mark.slow
def test_index_and_manifest_show_failed_with_last_good_run(runs: dict[str, Any]) -> None:
    index = (runs["out"] / "index.html").read_text()
    for n in NAMES:
        assert f'<a href="{n}.html">' in index
    assert index.count('class="cx-status cx-status-failed"') == 4
    assert index.count('class="cx-status cx-status-ok"') == 1
    assert "ValueError: boom in the notebook" in index
    assert index.count("last good run: ") == 4
    assert "4 of 5 reports FAILED" in index and "Tiny is fine &amp; well" in index

    m = json.loads((runs["out"] / "manifest.json").read_text())
    first_id = runs["manifest1"]["run_id"]
    assert m["run_id"] == runs["res2"].run_id != first_id
    assert m["fingerprint"]["tables"]["orders"]["rows"] == 3
    assert {"python", "cxkit", "papermill", "pandas"} <= set(m["versions"])
    r = m["reports"]
    assert r["good"]["status"] == "OK" and r["good"]["last_good"]["run_id"] == m["run_id"]
    for n in NAMES[1:]:
        assert r[n]["status"] == "FAILED" and r[n]["last_good"]["run_id"] == first_id
    assert r["raises"]["parameters"]["mode"] == "raise"
    killed = r["job_timeout"]["killed_processes"]
    assert any("cxkit.report._worker" in k for k in killed)
    assert any("ipykernel" in k for k in killed), killed  # a kernel existed and was killed
    assert r["good"]["seconds"] > 0 and r["bad_param"]["seconds"] == 0


@pytest.mark.slow
def test_no_kernel_survives(runs: dict[str, Any]) -> None:
    import psutil

    assert runs["leftovers"] == []
    run_ids = (runs["res1"].run_id, runs["res2"].run_id)
    alive = []
    for p in psutil.process_iter(["pid"]):
        try:
            if any(rid in p.environ().get("CXKIT_REPORT_JOB", "") for rid in run_ids):
                alive.append(p.pid)
        except (psutil.Error, OSError):
            continue
    assert alive == []
    # and no worker or kernel started by the runs is still our child
    kids = []
    for c in psutil.Process().children(recursive=True):
        try:
            if "cxkit.report._worker" in " ".join(c.cmdline()) or c.environ().get(
                "CXKIT_REPORT_JOB"
            ):
                kids.append(c.pid)
        except (psutil.Error, OSError):
            continue
    assert kids == []


@pytest.mark.slow
def test_progress_lines_and_cli_only(runs: dict[str, Any], capfd: Any) -> None:
    root = runs["root"]
    two = [{"name": "good", "notebook": "tiny.ipynb"}, {"name": "raises", "notebook": "tiny.ipynb"}]
    cfg = _write_config(root / "two.yml", root / "data", two)
    code = main(["report", "--config", str(cfg), "--only", "good", "--jobs", "1"])
    assert code == 0
    lines = capfd.readouterr().out.splitlines()
    assert any(line.startswith("[1/1] good: started") for line in lines)
    assert any(line.startswith("[1/1] good: OK in ") and " s -> " in line for line in lines)
    m = json.loads((runs["out"] / "manifest.json").read_text())
    assert m["reports"]["good"]["status"] == "OK"
    assert m["reports"]["raises"]["status"] == "FAILED"  # left out by --only: kept
    assert list(m["reports"]) == ["good", "raises"]  # no longer in the file: dropped
    index = (runs["out"] / "index.html").read_text()
    assert "cell_timeout.html" not in index and "raises.html" in index


def test_export_leaves_out_the_nbval_check_cells() -> None:
    nb = _executed(
        [
            [{"output_type": "stream", "name": "stdout", "text": "shown to readers\n"}],
            [{"output_type": "stream", "name": "stdout", "text": "pinned for tests\n"}],
        ]
    )
    nb["cells"][-1]["source"] = "# NBVAL_CHECK_OUTPUT\nprint('pinned for tests')"
    page = notebook_to_html(nb, title="t", meta={})
    assert "shown to readers" in page
    assert "pinned for tests" not in page


# --------------------------------------------------------------------------------------
# column mapping in reports.yml
# --------------------------------------------------------------------------------------

ROOT = Path(__file__).resolve().parents[1]


def test_mapping_is_checked_and_passed_only_when_set(tmp_path: Path) -> None:
    base = {
        "data": str(tmp_path),
        "reports": [{"name": "h", "notebook": str(ROOT / "notebooks" / "00_data_health.ipynb")}],
    }
    cfg = parse_config({**base, "mapping": {"orders": {"order_ts": "ts"}}}, base=tmp_path)
    assert cfg.mapping == {"orders": {"order_ts": "ts"}}
    assert check_parameters(cfg.reports[0], extra=["mapping"]) is None
    assert parse_config(base, base=tmp_path).mapping is None
    with pytest.raises(UsageError, match=r"mapping names unknown table\(s\) \['sales'\]"):
        parse_config({**base, "mapping": {"sales": {"a": "b"}}}, base=tmp_path)
    with pytest.raises(UsageError, match="mapping must look like"):
        parse_config({**base, "mapping": {"orders": ["ts"]}}, base=tmp_path)


@pytest.mark.slow
def test_report_with_mapped_columns(tmp_path: Path) -> None:
    import pandas as pd

    data = tmp_path / "data"
    data.mkdir()
    pd.DataFrame(
        {
            "order_id": ["1", "2", "3"],
            "customer_id": ["007", "007", "008"],
            "order_ts": ["2024-01-02", "2024-02-03", "2024-02-05"],
            "total": [10.0, 20.0, 5.0],
        }
    ).to_csv(data / "orders.csv", index=False)
    cfg = tmp_path / "reports.yml"
    cfg.write_text(
        yaml.safe_dump(
            {
                "data": str(data),
                "mapping": {"orders": {"order_ts": "ts", "total": "amount"}},
                "out": str(tmp_path / "out"),
                "reports": [
                    {
                        "name": "data_health",
                        "title": "Data health",
                        "notebook": str(ROOT / "notebooks" / "00_data_health.ipynb"),
                    }
                ],
            }
        )
    )
    assert main(["report", "--config", str(cfg)]) == 0
    page = (tmp_path / "out" / "data_health.html").read_text()
    assert "2 customers" in page or "2 customer" in page
    bad = tmp_path / "bad.yml"
    bad.write_text(cfg.read_text().replace("total: amount", "total: amount_x"))
    assert main(["report", "--config", str(bad)]) == 2


# --------------------------------------------------------------------------------------
# memory: per-report peaks, estimates and the memory budget
# --------------------------------------------------------------------------------------


@pytest.mark.slow
def test_manifest_records_kernel_peaks_and_the_next_run_uses_them(runs: dict[str, Any]) -> None:
    first = runs["manifest1"]["reports"]["good"]
    assert 20 < first["peak_memory_mb"] < 4000  # a live kernel was sampled
    assert first["memory_estimate_source"].startswith("no measurement yet")
    second = json.loads((runs["out"] / "manifest.json").read_text())["reports"]["good"]
    assert second["memory_estimate_source"] == "measured in the previous run"
    # same data, so no scaling: 1.25 x max(peak, kernel base)
    assert second["memory_estimate_mb"] == pytest.approx(
        1.25 * max(first["peak_memory_mb"], 300.0), abs=0.1
    )
    assert not (runs["res1"].run_dir / "cache").exists()  # the run cache is removed


def test_memory_estimates_scale_measured_peaks_and_guess_from_size() -> None:
    from cxkit.report.pipeline import memory_estimates

    previous = {
        "fingerprint": {"tables": {"orders": {"rows": 1_000}, "events": {"rows": 1_000}}},
        "reports": {"churn": {"peak_memory_mb": 1300.0}, "clv": {"peak_memory_mb": 200.0}},
    }
    now = {"tables": {"orders": {"rows": 3_000}, "events": {"rows": 1_000}}}
    est = memory_estimates(previous, now, ["churn", "clv", "new"])
    assert est["churn"] == (1.25 * (300 + 1000 * 2), "measured in the previous run")
    assert est["clv"][0] == 1.25 * 300  # below the kernel base: the base
    guess = 400 + 180 * 4_000 / 2**20
    assert est["new"] == (round(guess, 1), "no measurement yet: a guess from the data's size")


def test_unmeasured_guess_is_capped_at_the_job_share_and_duckdb_gets_its_part(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A first run on big data packs two reports; each kernel's DuckDB is capped."""
    from cxkit.data import DUCKDB_MEMORY_ENV, DUCKDB_TEMP_ENV
    from cxkit.report.pipeline import DUCKDB_SHARE, duckdb_memory_env, memory_estimates

    big = {"tables": {"events": {"rows": 30_000_000}}}
    share = 6e9 / 2**20 / 2
    est = memory_estimates({}, big, ["lifecycle"], share_mb=share)
    assert est["lifecycle"] == (round(share, 1), "no measurement yet: its share of the budget")
    small = memory_estimates({}, {"tables": {"events": {"rows": 1_000}}}, ["x"], share_mb=share)
    assert small["x"][0] < share  # a small guess stays as it is
    env = duckdb_memory_env(6.0, 2, tmp_path / "spill")
    assert env[DUCKDB_MEMORY_ENV] == f"{int(share * DUCKDB_SHARE)}MB"
    assert duckdb_memory_env(None, 2, tmp_path) == {}
    monkeypatch.setenv(DUCKDB_MEMORY_ENV, env[DUCKDB_MEMORY_ENV])
    monkeypatch.setenv(DUCKDB_TEMP_ENV, str(tmp_path / "spill"))
    con = load({"events": pd.DataFrame({"customer_id": ["a"], "event": ["x"]})}).con
    ref = duckdb.connect()
    default = ref.sql("SELECT current_setting('memory_limit')").fetchone()
    ref.sql(f"SET memory_limit = '{env[DUCKDB_MEMORY_ENV]}'")
    expected = ref.sql("SELECT current_setting('memory_limit')").fetchone()
    got = con.raw_sql("SELECT current_setting('memory_limit')").fetchone()
    assert got == expected != default
    temp = con.raw_sql("SELECT current_setting('temp_directory')").fetchone()[0]
    # each connection spills into a folder of its own inside the run's spill folder (one
    # folder shared by two kernels corrupted each other's spill files at 1M customers)
    other = load({"events": pd.DataFrame({"customer_id": ["b"], "event": ["y"]})}).con
    temp2 = other.raw_sql("SELECT current_setting('temp_directory')").fetchone()[0]
    assert Path(temp).parent == Path(temp2).parent == tmp_path / "spill" and temp != temp2
    assert Path(temp).is_dir() and Path(temp).name.startswith(f"duckdb-{os.getpid()}-")


def test_duration_estimates_scale_ok_runs_and_skip_the_rest() -> None:
    from cxkit.report.pipeline import duration_estimates

    previous = {
        "fingerprint": {"tables": {"orders": {"rows": 1_000}}},
        "reports": {
            "churn": {"status": "OK", "seconds": 130.0},
            "clv": {"status": "FAILED", "seconds": 2.0},
            "gone": {"status": "OK", "seconds": None},
        },
    }
    now = {"tables": {"orders": {"rows": 1_500}}}
    est = duration_estimates(previous, now, ["churn", "clv", "gone", "new"])
    assert est == {"churn": 195.0, "clv": None, "gone": None, "new": None}
    assert duration_estimates({}, now, ["churn"]) == {"churn": None}


@pytest.mark.slow
def test_memory_budget_packs_by_duration_and_keeps_big_jobs_apart(tmp_path: Path) -> None:
    from cxkit.report.runner import Job, run_jobs

    nb = _tiny_notebook(tmp_path / "tiny.ipynb")

    def job(name: str, mb: float, seconds: float, after: tuple[str, ...] = ()) -> Job:
        out = tmp_path / f"{name}.ipynb"
        return Job(name, nb, out, {}, 60, 120, f"budget/{name}", mb, seconds, after)

    jobs = [
        job("big_a", 600, 1.0),
        job("big_b", 600, 9.0),
        job("small", 300, 2.0),
        job("last", 100, 30.0, after=("big_a", "small")),
    ]
    started: list[str] = []
    res = run_jobs(
        jobs,
        workers=2,
        log_dir=tmp_path,
        on_start=lambda j: started.append(j.name),
        memory_limit_mb=1000,
    )
    assert all(r.ok for r in res.values()), {n: r.error for n, r in res.items()}
    # the longest first; the small one fills the free slot; "last" waits for its two
    assert started == ["big_b", "small", "big_a", "last"]
    a, b, small, last = (res[n] for n in ("big_a", "big_b", "small", "last"))
    assert a.started_at >= b.finished_at - 0.01  # never together: 1200 MB > 1000 MB
    assert small.started_at < b.finished_at  # 900 MB fit together
    assert last.started_at >= max(a.finished_at, small.finished_at) - 0.01
    # alone, a job larger than the whole budget still runs
    alone = run_jobs([job("huge", 5000, 1.0)], workers=2, log_dir=tmp_path, memory_limit_mb=1000)
    assert alone["huge"].ok


@pytest.mark.slow
def test_a_report_beside_one_expected_to_end_later_yields_the_cpu(tmp_path: Path) -> None:
    from cxkit.report.runner import Job, run_jobs
    from cxkit.report.scheduler import YIELD_NICENESS

    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell('out = "x.txt"')
    params.metadata["tags"] = ["parameters"]
    # The kernel records its main thread's niceness and that of a thread it starts late
    # (as DuckDB starts its pool), after the worker had time to set it.
    nb.cells = [
        params,
        nbformat.v4.new_code_cell(
            "import os, threading, time\n"
            "time.sleep(1.5)\n"
            "seen = {}\n"
            "t = threading.Thread(target=lambda: seen.update(late=os.getpriority(os.PRIO_PROCESS, 0)))\n"
            "t.start(); t.join()\n"
            "time.sleep(0.6)\n"
            "group = '/proc/self/autogroup'\n"
            "auto = open(group).read().split()[-1] if os.path.exists(group) else 'none'\n"
            "open(out, 'w').write(f'{os.getpriority(os.PRIO_PROCESS, 0)} {seen[\"late\"]} {auto}')"
        ),
    ]
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    path = tmp_path / "nice.ipynb"
    nbformat.write(nb, path)

    def job(name: str, seconds: float | None) -> Job:
        params = {"out": str(tmp_path / f"{name}.txt")}
        return Job(
            name,
            path,
            tmp_path / f"{name}.out.ipynb",
            params,
            60,
            120,
            f"nice/{name}",
            100,
            seconds,
        )

    # "long" is expected to end last: it starts first at normal priority; "short" starts
    # beside it and yields.
    res = run_jobs(
        [job("short", 1.0), job("long", 60.0)], workers=2, log_dir=tmp_path, yield_cpu=True
    )
    assert all(r.ok for r in res.values()), {n: r.error for n, r in res.items()}
    assert (res["long"].niceness, res["short"].niceness) == (0, YIELD_NICENESS)
    # the thread's niceness, a late thread's and the session's autogroup's (Linux shares the
    # CPU between autogroups first: a thread's niceness alone would not yield to another
    # session's kernel); "none" where the system has no autogroups
    assert (tmp_path / "long.txt").read_text().split() in (["0", "0", "0"], ["0", "0", "none"])
    n = str(YIELD_NICENESS)
    assert (tmp_path / "short.txt").read_text().split() in ([n, n, n], [n, n, "none"])
    # by default (and never measured: scheduler.niceness): the normal priority
    jobs = [job("short", 1.0), job("long", 60.0)]
    res = run_jobs(jobs, workers=2, log_dir=tmp_path)
    assert all(r.ok and r.niceness == 0 for r in res.values()), res
    assert (tmp_path / "short.txt").read_text().split()[:2] == ["0", "0"]


def test_after_lists_prerequisites_and_is_checked(nb_dir: Path) -> None:
    def cfg(*after: Any) -> dict[str, Any]:
        names = ["a", "b", "c"]
        reports = [{"name": n, "notebook": "tiny.ipynb"} for n in names]
        for entry, value in zip(reports, after, strict=False):
            if value is not None:
                entry["after"] = value
        return {"data": "/d", "reports": reports}

    parsed = parse_config(cfg(None, ["a"], ["a", "b", "a"]), base=nb_dir)
    assert [s.after for s in parsed.reports] == [(), ("a",), ("a", "b")]
    # a prerequisite left out by --only is not waited for (the report computes instead)
    only_c = parse_config(cfg(None, None, ["a"]), base=nb_dir, only=["c"])
    assert [s.after for s in only_c.reports] == [("a",)]
    with pytest.raises(UsageError, match=r"reports\[1\]\.after must be a list of report names"):
        parse_config(cfg(None, "a"), base=nb_dir)
    with pytest.raises(
        UsageError, match=r"reports\[2\]\.after names unknown report\(s\) 'zz', 'c'; valid: a, b$"
    ):
        parse_config(cfg(None, None, ["zz", "c"]), base=nb_dir)
    with pytest.raises(UsageError, match=r"form a cycle \(a after c after b after a\)"):
        parse_config(cfg(["c"], ["a"], ["b"]), base=nb_dir)


def test_the_repo_reports_file_computes_the_persona_model_in_the_personas_report() -> None:
    # Every report whose notebook reads the persona model runs after the personas report,
    # so none computes it beside churn (its ~2 GB took the 1M run past 5 GB, issue 18),
    # and lifecycle does not run beside churn (both use both cores).
    specs = {s.name: s for s in load_config(ROOT / "reports.yml").reports}

    def before(name: str) -> set[str]:
        seen: set[str] = set()
        todo = list(specs[name].after)
        while todo:
            n = todo.pop()
            if n not in seen:
                seen.add(n)
                todo.extend(specs[n].after)
        return seen

    readers = {
        name
        for name, spec in specs.items()
        if name != "personas" and "persona_labels(" in spec.notebook.read_text()
    }
    assert readers >= {"lifecycle", "churn", "clv", "voice_of_customer"}
    assert {name for name in readers if "personas" not in before(name)} == set()
    assert "churn" in before("lifecycle")
    assert not before("personas")  # it waits for nothing


def test_memory_limit_gb_is_checked(nb_dir: Path) -> None:
    base = {"data": "/d", "reports": [{"name": "t", "notebook": "tiny.ipynb"}]}
    with pytest.raises(UsageError, match="memory_limit_gb must be a positive number, got 'lots'"):
        parse_config({**base, "memory_limit_gb": "lots"}, base=nb_dir)
    assert parse_config({**base, "memory_limit_gb": 6}, base=nb_dir).memory_limit_gb == 6.0
    assert parse_config(base, base=nb_dir, memory_limit_gb=2.5).memory_limit_gb == 2.5
    assert parse_config(base, base=nb_dir).memory_limit_gb is None


# --------------------------------------------------------------------------------------
# a runner killed with kill -9: its workers and kernels die with it, the next run cleans up
# --------------------------------------------------------------------------------------


def _wait_for(what: Callable[[], list[psutil.Process]], timeout: float) -> list[psutil.Process]:
    """Poll ``what`` until it finds something (or fail after ``timeout`` seconds)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = what()
        if found:
            return found
        time.sleep(0.2)
    pytest.fail(f"nothing found within {timeout} s")


def _tree(pid: int) -> list[psutil.Process]:
    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []


def _running(procs: list[psutil.Process]) -> list[str]:
    alive = []
    for p in procs:
        try:
            if p.is_running() and p.status() != psutil.STATUS_ZOMBIE:
                alive.append(" ".join(p.cmdline())[:80])
        except psutil.NoSuchProcess:
            continue
    return alive


@pytest.mark.slow
def test_kill_9_of_the_runner_stops_its_workers_and_kernels(tmp_path: Path) -> None:
    _tiny_notebook(tmp_path / "tiny.ipynb")
    data = _orders(tmp_path / "data")
    sleepy = [{"name": "sleepy", "notebook": "tiny.ipynb", "parameters": {"mode": "sleep"}}]
    cfg = _write_config(tmp_path / "r.yml", data, sleepy, jobs=1)
    runner = subprocess.Popen(
        [sys.executable, "-m", "cxkit.cli", "report", "--config", str(cfg)],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    tree: list[psutil.Process] = []
    try:
        _wait_for(
            lambda: [p for p in _tree(runner.pid) if "ipykernel" in " ".join(p.cmdline())], 120
        )
        tree = _tree(runner.pid)  # the worker and its kernel, mid-notebook
        assert any("cxkit.report._worker" in " ".join(p.cmdline()) for p in tree)
        (run_dir,) = (tmp_path / "out" / "_runs").iterdir()
        assert (run_dir / "cache").is_dir() and (run_dir / OWNER_FILE).is_file()
        os.kill(runner.pid, signal.SIGKILL)
        runner.wait(timeout=10)
        psutil.wait_procs(tree, timeout=30)  # a loaded CI machine may take seconds
        logs = "\n".join(f.read_text(errors="replace") for f in run_dir.glob("worker-*.log"))
        assert _running(tree) == [], f"still running; the worker's log:\n{logs[-3000:]}"
    finally:
        if runner.poll() is None:
            runner.kill()
        for p in tree:  # never leave them behind, even when the test fails
            try:
                p.kill()
            except psutil.NoSuchProcess:
                continue
    assert run_dir.is_dir()  # the dead run could not clean up after itself

    # the next run removes the dead run's folder; it publishes under the umask it has
    ok = [{"name": "tiny", "notebook": "tiny.ipynb"}]
    progress = io.StringIO()
    old = os.umask(0o027)
    try:
        res = run_reports(_write_config(tmp_path / "ok.yml", data, ok), stream=progress)
    finally:
        os.umask(old)
    assert res.exit_code == 0
    assert not run_dir.exists()
    assert f"removed {run_dir}: that run was stopped before it finished" in progress.getvalue()
    assert [p.name for p in (tmp_path / "out" / "_runs").iterdir()] == [res.run_id]
    assert not (res.run_dir / OWNER_FILE).exists() and not (res.run_dir / "cache").exists()
    for name in ("tiny.html", "index.html", "manifest.json"):
        assert stat.S_IMODE((tmp_path / "out" / name).stat().st_mode) == 0o640, name


def test_a_worker_stops_when_its_runner_ends_even_through_a_wrapper(tmp_path: Path) -> None:
    # the runner is not the worker's parent here (as when a wrapper starts the worker): the
    # watchdog sees the runner's end by its pid, not by a change of parent. The fake runner
    # ends only once the worker watches it (an import can take seconds on a busy machine).
    watching = tmp_path / "watching"
    fake_runner = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import os, time\n"
            f"while not os.path.exists({str(watching)!r}): time.sleep(0.05)\n"
            "time.sleep(0.5)",
        ]
    )
    code = (
        "import time\n"
        "from cxkit.report._worker import die_with_parent\n"
        f"die_with_parent({fake_runner.pid})\n"
        f"open({str(watching)!r}, 'w').close()\n"
        "time.sleep(60)\n"
    )
    worker = subprocess.Popen([sys.executable, "-c", code], stderr=subprocess.PIPE, text=True)
    try:
        fake_runner.wait(timeout=30)
        assert worker.wait(timeout=30) == 1  # not the 60 s of its sleep
        assert f"its runner (pid {fake_runner.pid}) has ended" in worker.stderr.read()
    finally:
        worker.kill()
        fake_runner.kill()


def test_a_worker_stops_on_sigterm_even_when_the_signals_come_in_a_burst(tmp_path: Path) -> None:
    # stop 30's CI: a second SIGTERM arrived while the first one's handler held the lock of
    # a threading.Event; the handler deadlocked on it, and so did the watchdog that waited
    # on that Event, and the worker outlived its runner. Another process sends SIGTERM
    # without a pause, so the handler is re-entered (the old handler hung 9 times in 10);
    # the worker must still stop (exit 1) rather than run its 60 s loop.
    code = (
        "import time\n"
        "from cxkit.report._worker import die_with_parent\n"
        "die_with_parent(None)\n"
        "print('watching', flush=True)\n"
        "deadline = time.monotonic() + 60\n"
        "while time.monotonic() < deadline:\n"
        "    sum(range(1000))  # Python code in the main thread: the handler runs at once\n"
    )
    worker = subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    sender = None
    try:
        assert worker.stdout is not None and worker.stdout.readline() == "watching\n"
        sender = subprocess.Popen(
            [sys.executable, "-c", f"import os\nwhile True: os.kill({worker.pid}, 15)"],
            stderr=subprocess.DEVNULL,
        )
        # wait for the worker's end without reaping it, so its pid cannot be reused while
        # the sender still signals it
        proc = psutil.Process(worker.pid)
        deadline = time.monotonic() + 30
        while proc.status() != psutil.STATUS_ZOMBIE and time.monotonic() < deadline:
            time.sleep(0.05)
        sender.kill()
        sender.wait()
        assert worker.wait(timeout=1) == 1
        assert "asked to stop (SIGTERM, or its runner died)" in worker.communicate()[1]
    finally:
        if sender is not None:
            sender.kill()
        worker.kill()


def test_remove_stale_runs_keeps_finished_and_live_runs(tmp_path: Path) -> None:
    runs = tmp_path / "_runs"
    finished, interrupted, live, dead, old = (runs / n for n in ("a", "b", "c", "d", "e"))
    for d in (finished, interrupted, live, dead, old):
        d.mkdir(parents=True)
    (finished / "manifest.json").write_text("{}")  # ended normally: no owner, no cache
    (interrupted / "worker-0.log").write_text("")  # Ctrl-C: the run removed both itself
    me = psutil.Process()
    (live / OWNER_FILE).write_text(json.dumps({"pid": me.pid, "started": me.create_time()}))
    (live / "cache").mkdir()
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    (dead / OWNER_FILE).write_text(json.dumps({"pid": int(gone.stdout), "started": 1.0}))
    (dead / "cache").mkdir()
    (old / "cache").mkdir()  # left by a cxkit without owner files
    lines = remove_stale_runs(runs)
    assert sorted(p.name for p in runs.iterdir()) == ["a", "b", "c"]
    assert len(lines) == 2 and f"removed {dead}" in lines[0] and f"removed {old}" in lines[1]
    assert f"its process {int(gone.stdout)} is gone" in lines[0]
    assert remove_stale_runs(tmp_path / "none") == []
