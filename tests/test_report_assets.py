"""One shared plotly.js per report folder, a self-contained option, and the currency setting.

* ``publish: plotly:`` (``shared`` | ``inline``) and ``--self-contained``, checked and
  mapped like ``publish: customer_ids:`` and ``--clear-ids``;
* ``currency:`` checked and passed to every kernel in its environment;
* the pipeline publishes ``_assets/plotly-<version>.min.js`` before any page that loads
  it, keeps every version a published page still loads (a failed report keeps its old
  page *and* its script), and removes versions no page loads.

The runs use tiny notebooks (a figure, the currency a kernel sees) on a three-row table.
"""

from __future__ import annotations

import argparse
import io
import re
from pathlib import Path
from typing import Any

import nbformat
import pytest
import yaml

from cxkit import cli
from cxkit.errors import UsageError
from cxkit.report import export, pipeline
from cxkit.report.config import parse_config
from cxkit.report.export import (
    notebook_to_html,
    plotly_asset,
    plotly_js,
    prune_plotly_assets,
    publish_plotly,
)

PLOTLY_MIME = "application/vnd.plotly.v1+json"
FIGURE = {"data": [{"type": "bar", "x": ["a", "b"], "y": [1, 2]}], "layout": {"height": 300}}
SRC = re.compile(r'<script src="(_assets/plotly-[^"]+\.min\.js)"></script>')


def _notebook(path: Path) -> Path:
    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell('data = "x"\nas_of = None\ninteractive = False\nmode = "ok"')
    params.metadata["tags"] = ["parameters"]
    nb.cells = [
        nbformat.v4.new_markdown_cell("# Tiny\n\nA figure."),
        params,
        nbformat.v4.new_code_cell(
            "from IPython.display import HTML, display\n"
            "from cxkit.display import format_money\n"
            "display(HTML('<p class=\"cx-headline\">Tiny</p>'))\n"
            'print("money:", format_money(1234.5))'
        ),
        nbformat.v4.new_code_cell(f"display({{{PLOTLY_MIME!r}: {FIGURE!r}}}, raw=True)"),
        nbformat.v4.new_code_cell('if mode == "raise":\n    raise ValueError("boom")'),
    ]
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nbformat.write(nb, path)
    return path


def _config(root: Path, reports: list[dict[str, Any]], **top: Any) -> Path:
    data = root / "data"
    data.mkdir(exist_ok=True)
    (data / "orders.csv").write_text(
        "order_id,customer_id,ts,amount\no1,001,2024-01-02,10.5\no2,002,2024-01-03,20.0\n"
    )
    path = root / f"reports-{len(list(root.glob('reports-*.yml')))}.yml"
    cfg = {"data": str(data), "out": "out", "jobs": 2, **top, "reports": reports}
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


# --------------------------------------------------------------------------------------
# config and command line
# --------------------------------------------------------------------------------------


@pytest.fixture
def nb_dir(tmp_path: Path) -> Path:
    _notebook(tmp_path / "tiny.ipynb")
    return tmp_path


def _parse(nb_dir: Path, **raw: Any) -> Any:
    base = {"data": str(nb_dir), "reports": [{"name": "a", "notebook": "tiny.ipynb"}], **raw}
    return parse_config(base, base=nb_dir)


def test_publish_plotly_is_shared_by_default_inline_on_request(nb_dir: Path) -> None:
    assert _parse(nb_dir).plotly == "shared"
    assert _parse(nb_dir, publish={"plotly": "inline"}).plotly == "inline"
    assert _parse(nb_dir, publish={"plotly": None}).plotly == "shared"
    base = {"data": str(nb_dir), "reports": [{"name": "a", "notebook": "tiny.ipynb"}]}
    cfg = parse_config({**base, "publish": {"plotly": "shared"}}, base=nb_dir, self_contained=True)
    assert cfg.plotly == "inline"  # --self-contained wins, as --clear-ids does
    with pytest.raises(UsageError, match=r"publish\.plotly must be 'shared' or 'inline'.*'cdn'"):
        _parse(nb_dir, publish={"plotly": "cdn"})
    with pytest.raises(UsageError, match=r"unknown key.*'plotyl'.*plotly"):
        _parse(nb_dir, publish={"plotyl": "inline"})


def test_currency_is_checked(nb_dir: Path) -> None:
    assert _parse(nb_dir).currency is None
    assert _parse(nb_dir, currency="$").currency == "$"
    assert _parse(nb_dir, currency=" EUR ").currency == "EUR"
    with pytest.raises(UsageError, match="currency: give a currency symbol such as '\\$'"):
        _parse(nb_dir, currency="dollars")


def test_self_contained_flag_reaches_run_reports(monkeypatch: pytest.MonkeyPatch) -> None:
    args = cli.build_parser().parse_args(["report", "--self-contained", "--clear-ids"])
    assert args.self_contained is True
    assert cli.build_parser().parse_args(["report"]).self_contained is False
    seen: dict[str, Any] = {}

    def fake(config: str, **kw: Any) -> Any:
        seen.update(kw)
        return argparse.Namespace(exit_code=0)

    monkeypatch.setattr(pipeline, "run_reports", fake)
    assert pipeline.run_from_cli(args) == 0
    assert seen["self_contained"] is True and seen["clear_ids"] is True


# --------------------------------------------------------------------------------------
# export: the two modes, publishing and pruning the shared file
# --------------------------------------------------------------------------------------


def _executed() -> dict[str, Any]:
    return {
        "cells": [
            {
                "cell_type": "code",
                "metadata": {},
                "source": "x",
                "outputs": [
                    {"output_type": "display_data", "data": {PLOTLY_MIME: FIGURE}, "metadata": {}}
                ],
            }
        ],
        "metadata": {},
    }


def test_a_shared_page_loads_the_folder_script_and_an_inline_page_holds_it() -> None:
    shared = notebook_to_html(_executed(), title="t", meta={}, plotly_mode="shared")
    inline = notebook_to_html(_executed(), title="t", meta={})  # standalone: inline
    assert SRC.findall(shared) == [plotly_asset()]
    assert plotly_js() not in shared and "Plotly.newPlot(" in shared
    assert plotly_js() in inline and not SRC.search(inline)
    assert len(shared) < len(inline) - len(plotly_js()) + 1000
    assert re.fullmatch(r"_assets/plotly-\d+\.\d+\.\d+\.min\.js", plotly_asset())
    with pytest.raises(UsageError, match="plotly_mode must be 'shared' or 'inline'"):
        notebook_to_html(_executed(), title="t", meta={}, plotly_mode="cdn")


def test_publish_plotly_writes_once_and_prune_keeps_what_pages_load(tmp_path: Path) -> None:
    path = publish_plotly(tmp_path)
    assert path == tmp_path / plotly_asset() and path.read_text() == plotly_js()
    stamp = path.stat().st_mtime_ns
    assert publish_plotly(tmp_path).stat().st_mtime_ns == stamp  # unchanged: not rewritten
    path.write_text("damaged")
    assert publish_plotly(tmp_path).read_text() == plotly_js()  # repaired
    old = tmp_path / "_assets" / "plotly-0.0.1.min.js"
    gone = tmp_path / "_assets" / "plotly-0.0.2.min.js"
    old.write_text("old")
    gone.write_text("old")
    (tmp_path / "a.html").write_text('<script src="_assets/plotly-0.0.1.min.js"></script>')
    (tmp_path / "b.html").write_text(f'<script src="{plotly_asset()}"></script>')
    assert prune_plotly_assets(tmp_path) == [gone]
    assert old.exists() and path.exists()


# --------------------------------------------------------------------------------------
# real runs
# --------------------------------------------------------------------------------------


def _src(page: Path) -> list[str]:
    return SRC.findall(page.read_text())


@pytest.mark.slow
def test_runs_publish_the_script_first_and_never_leave_a_page_without_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _notebook(tmp_path / "tiny.ipynb")
    two = [
        {"name": "a", "notebook": "tiny.ipynb"},
        {"name": "b", "notebook": "tiny.ipynb"},
    ]
    res = pipeline.run_reports(_config(tmp_path, two, currency="$"), stream=io.StringIO())
    out = tmp_path / "out"
    assert res.exit_code == 0, {n: r.error for n, r in res.reports.items()}
    v1 = plotly_asset()
    for name in ("a", "b"):
        page = out / f"{name}.html"
        assert _src(page) == [v1] and plotly_js() not in page.read_text()
        assert page.stat().st_size < 50_000  # the 4.8 MB script is not in the page
        assert "money: $1,234.50" in page.read_text()  # reports.yml currency reached the kernel
    assert (out / v1).read_text() == plotly_js()
    assert sorted(p.name for p in (out / "_assets").iterdir()) == [Path(v1).name]

    # plotly.js is upgraded and report b fails: a is published with the new script, b
    # keeps its last good page, and the script that page loads is kept
    monkeypatch.setattr(export, "get_plotlyjs_version", lambda: "99.0.0")
    v2 = plotly_asset()
    before_b = (out / "b.html").read_bytes()
    failing = [two[0], {**two[1], "parameters": {"mode": "raise"}}]
    res = pipeline.run_reports(_config(tmp_path, failing), stream=io.StringIO())
    assert res.exit_code == 1 and res.failed == ["b"]
    assert _src(out / "a.html") == [v2] and (out / v2).read_text() == plotly_js()
    assert (out / "b.html").read_bytes() == before_b and (out / v1).is_file()
    assert "money: 1,234.50" in (out / "a.html").read_text()  # no currency: none

    # a self-contained run of a (the command line's flag): its page holds the script;
    # the new shared file no page loads any more is removed, b's is kept
    cfg = str(_config(tmp_path, two))
    assert cli.main(["report", "--config", cfg, "--self-contained", "--only", "a"]) == 0
    text = (out / "a.html").read_text()
    assert not _src(out / "a.html") and text.count(plotly_js()) == 1
    assert sorted(p.name for p in (out / "_assets").iterdir()) == [Path(v1).name]
