"""What changed since the last run, end to end (issue 20): ``cxkit report`` run twice.

The first run into a folder says changes show from the next run; the second run on the
same data compares every finding with the first and flags nothing; a third run on data
where every NPS answer was planted at 10 flags the NPS finding (and no finding that
rests on orders alone), on the index and on the executive summary alike.
"""

from __future__ import annotations

import html
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from cxkit import changes

ROOT = Path(__file__).resolve().parents[1]
pytestmark = [pytest.mark.slow]


def _run(data: Path, out: Path) -> dict:
    cmd = [sys.executable, "-m", "cxkit.cli", "report", "--config", str(ROOT / "reports.yml")]
    cmd += ["--data", str(data), "--out", str(out), "--clear-ids"]
    cmd += ["--only", "voice_of_customer,executive_summary"]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=900)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    return json.loads((out / "manifest.json").read_text())


def _block(page: Path) -> str:
    text = page.read_text()
    start = text.index('<div class="cx-changes">')
    return text[start : text.index("</div>", start)]


def test_second_run_compares_and_a_planted_nps_change_is_flagged(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    work = tmp_path_factory.mktemp("changes")
    data = work / "d"
    subprocess.run(
        [sys.executable, "-m", "cxkit.cli", "synth", "--customers", "600", "--out", str(data)],
        check=True,
        capture_output=True,
    )
    out = work / "out"

    first = _run(data, out)
    assert first["changes"] is None
    assert "This is the first run in this folder" in _block(out / "index.html")
    assert "This is the first run in this folder" in _block(out / "executive_summary.html")

    second = _run(data, out)
    rec = second["changes"]
    assert rec["since_run"] == first["run_id"]
    assert rec["compared"] > 10 and rec["tested"] > 5
    assert rec["changed"] == []  # the same data: nothing moved
    assert "Nothing changed beyond its 95% interval" in _block(out / "index.html")
    assert _block(out / "executive_summary.html").endswith(
        _block(out / "index.html").split("</h2>", 1)[1]
    )  # the same sentence on both pages

    planted = work / "planted"
    shutil.copytree(data, planted)
    resp = pd.read_parquet(planted / "responses.parquet")
    resp.loc[resp.survey == "nps", "score"] = 10
    resp.to_parquet(planted / "responses.parquet", index=False)
    third = _run(planted, out)
    flagged = third["changes"]["changed"]
    keys = {c["key"] for c in flagged}
    assert any(k.startswith("voc/nps") for k in keys), keys
    nps = next(c for c in flagged if c["key"].startswith("voc/nps"))
    assert nps["after"] > nps["before"] and nps["diff_low"] > 0
    # CLV rests on orders alone, which did not move (advocacy, built on promoters, may)
    assert not any(k.startswith("clv/") for k in keys), keys
    index_block = _block(out / "index.html")
    summary_block = _block(out / "executive_summary.html")
    assert nps["text"] in html.unescape(index_block)
    assert summary_block.split("</h2>", 1)[1] == index_block.split("</h2>", 1)[1]
    assert changes.history_runs(out) == sorted(r["run_id"] for r in (first, second, third))
