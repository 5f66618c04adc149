"""Personas in scale mode (cxkit.personas.scale) against memory mode on the demo.

The 2,000-customer demo (seed 7) with ``sample_rows=800, max_collect_rows=1000,
batch_rows=700``: the model is fitted on a stratified sample of 800 customers and every
customer is assigned in three batches; the limit is below the customer count, so memory
mode's per-customer collect would break it.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from sklearn.metrics import adjusted_rand_score

import cxkit
from cxkit import personas as P
from cxkit import scale
from cxkit.personas.scale import ScalePersonaResult
from cxkit.scale import ScaleSettings
from tests.collects import Collects

ROOT = Path(__file__).resolve().parents[2]
SMALL = ScaleSettings(mode="scale", sample_rows=800, max_collect_rows=1000, batch_rows=700)


@pytest.fixture(scope="module")
def scaled(demo_data: cxkit.CXData) -> Iterator[tuple[ScalePersonaResult, list[int]]]:
    """The scale-mode analysis (mode from CXKIT_SCALE) and the rows of every collect."""
    with pytest.MonkeyPatch.context() as mp:
        collects = Collects(mp)
        mp.setenv(scale.SCALE_ENV, SMALL.to_json())
        res = P.analyze(demo_data, random_state=0)
        rows = list(collects.rows)
    yield res, rows  # type: ignore[misc]


def test_scale_mode_matches_memory_mode_within_tolerances(
    demo_report: P.PersonasResult, scaled: tuple[ScalePersonaResult, list[int]], demo_data
) -> None:
    """Same k, labels agreeing (ARI >= 0.8), shares within 3 points, same pain points."""
    res, _ = scaled
    mem = demo_report
    assert isinstance(res, ScalePersonaResult) and not isinstance(mem, ScalePersonaResult)
    assert res.model.k_ == mem.model.k_
    assert res.n_customers == len(mem.features) > SMALL.max_collect_rows
    assert res.sample_n <= SMALL.sample_rows
    labels = demo_data.con.table(res.labels_table).to_pandas()
    assert len(labels) == res.n_customers and labels.customer_id.is_unique
    both = mem.assignments.merge(labels, on="customer_id")
    assert len(both) == len(mem.assignments)
    assert adjusted_rand_score(both.persona_x, both.persona_y) >= 0.8
    mem_share = mem.model.summary().set_index("name")["share"]
    res_share = res.model.summary().set_index("name")["share"]
    assert sorted(mem_share.index) == sorted(res_share.index)
    assert (mem_share - res_share[mem_share.index]).abs().max() <= 0.03
    # exact sizes: engine counts on the labels table
    counts = labels.groupby("persona").size()
    assert res.model.sizes_.tolist() == [int(counts.get(p, 0)) for p in range(res.model.k_)]

    def claims(r: P.PersonasResult) -> set[tuple[str, str, str]]:
        p = r.pains
        sig = p[p["significant"].astype(bool)]
        return set(zip(sig.persona_name, sig.dimension, sig.value, strict=True))

    assert claims(res) == claims(mem)
    assert res.journey is not None and set(res.journey.stage) == set(mem.journey.stage)
    metrics = {f.metric for f in res.findings()}
    assert {"n_personas", "persona_share"} <= metrics
    assert P.headline(res).startswith(f"{res.model.k_} personas among {res.n_customers:,}")
    assert f"sample of {res.sample_n:,} of {res.n_customers:,}" in res.mode_sentence
    assert res.labels_table in res.mode_sentence
    assert any("not shown in scale mode" in n for n in res.not_available)


def test_scale_mode_collects_no_more_than_the_limit(
    scaled: tuple[ScalePersonaResult, list[int]], demo_data: cxkit.CXData
) -> None:
    res, rows = scaled
    assert rows and max(rows) <= SMALL.max_collect_rows
    assert len(res.features) <= SMALL.sample_rows
    assert res.assignments.empty  # every customer's persona is the engine table
    t = P.label_table(demo_data)  # the table written above: opened, not refitted
    assert t.columns == ("customer_id", "persona")
    assert int(t.count().to_pandas()) == res.n_customers


@pytest.mark.slow
def test_personas_report_runs_in_scale_mode_and_says_so(demo_dir: Path, tmp_path: Path) -> None:
    from cxkit.report.pipeline import run_reports

    cfg = {
        "data": str(demo_dir),
        "out": str(tmp_path / "out"),
        "jobs": 1,
        "scale": {"sample_rows": 800, "max_collect_rows": 1000, "batch_rows": 700},
        "reports": [
            {"name": "personas", "notebook": str(ROOT / "notebooks" / "40_personas.ipynb")}
        ],
    }
    path = tmp_path / "reports.yml"
    path.write_text(yaml.safe_dump(cfg))
    res = run_reports(path, stream=io.StringIO())
    assert res.exit_code == 0, {n: r.error for n, r in res.reports.items()}
    page = (tmp_path / "out" / "personas.html").read_text()
    assert "Scale mode: personas fitted on a stratified sample of 800 of 2,000 customers" in page
    assert "cxkit_persona_labels" in page
    assert "not shown in scale mode" in page
    assert "Traceback" not in page
