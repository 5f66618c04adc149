""" "not available" is a report status of its own (issue 21, item 3), and the summary page
shows only what a stakeholder reads (items 2 and 4).

A notebook says what it shows through cxkit's display helpers (their outputs carry
``{"cxkit": {"kind": ...}}`` metadata); the pipeline reads that from the executed
notebook (:func:`cxkit.findings.notebook_status`). A report that shows only "not
available" notes is "not available" in the manifest, the index and the CLI line, and is
not a failure (exit 0). The orders-only run uses the bundled CDNOW data.
"""

from __future__ import annotations

import html
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from IPython.core.interactiveshell import InteractiveShell
from IPython.utils.capture import capture_output

from cxkit import findings
from cxkit.report.publish import index_html

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "reports.yml"
CDNOW = ROOT / "data" / "cdnow"


def _outputs(fn: Any, *args: Any, **kwargs: Any) -> list[dict[str, Any]]:
    """Run a display helper and return its outputs as an executed notebook stores them."""
    InteractiveShell.instance()
    with capture_output() as cap:
        fn(*args, **kwargs)
    return [
        {"output_type": "display_data", "data": o.data, "metadata": o.metadata} for o in cap.outputs
    ]


def _nb(*cells: list[dict[str, Any]], tags: list[list[str]] | None = None) -> dict[str, Any]:
    tags = tags or [[] for _ in cells]
    return {
        "cells": [
            {"cell_type": "code", "metadata": {"tags": t}, "source": "", "outputs": outs}
            for outs, t in zip(cells, tags, strict=True)
        ]
    }


def test_a_notebook_of_only_notes_is_not_available() -> None:
    head = _outputs(findings.headline, "Voice of the customer is not available.")
    none = _outputs(findings.show_findings, [])
    note = _outputs(findings.not_available, "this needs the table 'responses'")
    again = _outputs(findings.not_available, "this needs the table 'responses'")
    printed = [{"output_type": "stream", "name": "stdout", "text": "as of 2024: none\n"}]
    status = findings.notebook_status(_nb(head + none + note, again, printed))
    assert status.status == findings.NOT_AVAILABLE == "not available"
    assert status.not_available == ("this needs the table 'responses'",)  # each note once
    assert status.reason == "this needs the table 'responses'"
    assert status.shown == 0


def test_notes_beside_content_are_ok_with_parts_not_available() -> None:
    fig = [{"output_type": "display_data", "data": {"application/vnd.plotly.v1+json": {}}}]
    take = _outputs(findings.takeaway, "48% ordered again.")
    notes = _outputs(findings.not_available, "A") + _outputs(findings.not_available, "B")
    status = findings.notebook_status(_nb(fig + take, notes))
    assert status.status == "OK"
    assert status.not_available == ("A", "B") and status.shown == 2
    # outputs of cells the page leaves out do not count
    hidden = findings.notebook_status(_nb(fig, notes, tags=[["remove-cell"], []]))
    assert hidden.status == "not available"
    # a notebook without notes is OK
    assert findings.notebook_status(_nb(fig)).status == "OK"


def test_published_files_are_a_plain_sentence_and_recorded(tmp_path: Path) -> None:
    files = [tmp_path / "scores.parquet", tmp_path / "scores.csv"]
    outs = _outputs(findings.published_files, files, what="The customer scorecard")
    assert "The customer scorecard is published as scores.parquet and scores.csv." in (
        html.unescape(outs[0]["data"]["text/html"])
    )
    status = findings.notebook_status(_nb(outs))
    assert status.files == tuple(str(f.resolve()) for f in files)


def _entry(status: str, notes: list[str], **extra: Any) -> dict[str, Any]:
    return {
        "title": extra.pop("title", "R"),
        "status": status,
        "error": None,
        "headline": "h",
        "not_available": notes,
        "finished_at": "2024-01-01T00:00:00+00:00",
        "seconds": 1.0,
        "last_good": {"finished_at": "2024-01-01T00:00:00+00:00"},
        **extra,
    }


def test_index_shows_not_available_with_the_reason_and_ok_with_parts() -> None:
    manifest = {
        "reports": {
            "a": _entry("OK", []),
            "b": _entry("OK", ["x", "y"], files=["scores.parquet", "/elsewhere/s.csv"]),
            "c": _entry("not available", ["this needs the table 'responses'"]),
        }
    }
    page = index_html(manifest, ["a", "b", "c"])
    assert "All 3 reports are up to date" not in page
    assert "2 of 3 reports are up to date. 1 is not available for this data." in page
    assert page.count('class="cx-status cx-status-ok"') == 2
    assert page.count('class="cx-status cx-status-na">not available<') == 1
    assert ", 2 parts not available" in page
    assert "this needs the table &#x27;responses&#x27;" in page
    assert '<a href="scores.parquet">scores.parquet</a>' in page and "/elsewhere" not in page
    failed = {"reports": {**manifest["reports"], "d": _entry("FAILED", [], error="boom")}}
    page = index_html(failed, ["a", "b", "c", "d"])
    assert "1 of 4 reports FAILED in the last run" in page and "1 is not available" in page


def _visible(path: Path) -> str:
    raw = re.sub(r"<script.*?</script>|<style.*?</style>", " ", path.read_text(), flags=re.S)
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", raw)).split())


@pytest.fixture(scope="module")
def cdnow_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """``cxkit report`` on CDNOW (orders only): the voice of the customer and the summary."""
    out = tmp_path_factory.mktemp("cdnow") / "reports"
    cmd = [sys.executable, "-m", "cxkit.cli", "report", "--config", str(CONFIG)]
    cmd += ["--data", str(CDNOW), "--out", str(out), "--jobs", "2"]
    cmd += ["--only", "voice_of_customer", "--only", "executive_summary"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900, cwd=ROOT)
    return {"out": out, "proc": proc}


@pytest.mark.slow
def test_orders_only_run_shows_not_available_in_manifest_index_and_cli(
    cdnow_run: dict[str, Any],
) -> None:
    proc, out = cdnow_run["proc"], cdnow_run["out"]
    assert proc.returncode == 0, proc.stdout + proc.stderr  # "not available" is no failure
    lines = proc.stdout.splitlines()
    assert any(
        re.match(r"cxkit report: 1 OK, 1 not available, 0 FAILED in [\d.]+ s; index: ", line)
        for line in lines
    ), proc.stdout
    assert any(
        re.match(r"\[\d/2\] voice_of_customer: not available \(Voice of the customer needs", line)
        for line in lines
    ), proc.stdout
    assert any(
        re.match(r"\[\d/2\] executive_summary: OK in .* \(\d+ parts not available\)$", line)
        for line in lines
    ), proc.stdout

    m = json.loads((out / "manifest.json").read_text())["reports"]
    voc, summ = m["voice_of_customer"], m["executive_summary"]
    assert voc["status"] == "not available" and voc["error"] is None
    assert voc["not_available"][0].startswith("Voice of the customer needs the table 'responses'")
    assert voc["last_good"] is not None and voc["html"] == "voice_of_customer.html"
    assert summ["status"] == "OK" and summ["not_available"]
    assert summ["files"] == ["scores.parquet", "scores.csv"]

    index = _visible(out / "index.html")
    assert "All 2 reports are up to date" not in index
    assert "1 of 2 reports are up to date. 1 is not available for this data." in index
    assert "Voice of the customer needs the table 'responses'" in index
    raw_index = (out / "index.html").read_text()
    assert raw_index.count('class="cx-status cx-status-na">not available<') == 1
    assert raw_index.count('class="cx-status cx-status-ok">OK<') == 1
    assert '<a href="scores.csv">scores.csv</a>' in raw_index


@pytest.mark.slow
def test_orders_only_summary_draws_and_states_only_the_stages_it_has(
    cdnow_run: dict[str, Any],
) -> None:
    out: Path = cdnow_run["out"]
    page = (out / "executive_summary.html").read_text()
    text = _visible(out / "executive_summary.html")
    bars = [
        json.loads(m.group(1))
        for m in re.finditer(r'Plotly\.newPlot\("[^"]+", (\[.*?\]), \{', page, flags=re.S)
    ]
    ladders = [t["x"] for fig in bars for t in fig if t.get("type") == "bar"]
    assert ladders == [["purchase", "retention"]]
    for stage in ("awareness", "consideration", "advocacy"):
        assert f"{stage} needs table" in text, stage
    assert "awareness to advocacy" not in text
    # no analyst output: the export is a plain sentence naming the files
    assert "scorecard written" not in text and 'class="cx-stdout"' not in page
    assert (
        "The customer scorecard (2,357 customers, one row each) is published as scores.parquet "
        in text
    )
    # every focus rule is stated, the ones without NPS answers with 0 and why
    for focus in ("service recovery", "ask for advocacy"):
        assert re.search(
            focus + r" customers with .*? 0 0\.0% not available: this needs NPS answers", text
        ), focus


@pytest.mark.slow
def test_demo_run_has_every_report_ok(report_run: dict[str, Any]) -> None:
    proc = report_run["proc"]
    statuses = {n: r["status"] for n, r in report_run["manifest"]["reports"].items()}
    line = f"cxkit report: {len(statuses)} OK, 0 not available, 0 FAILED in "
    assert line in proc.stdout, proc.stdout
    assert set(statuses.values()) == {"OK"}, statuses
    page = (report_run["out"] / "executive_summary.html").read_text()
    assert "scorecard written" not in page and 'class="cx-stdout"' not in page
    assert (
        "The customer scorecard (2,000 customers, one row each) is published as scores.parquet"
        in page
    )
