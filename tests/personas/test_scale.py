"""Personas in scale mode (cxkit.personas.scale) against memory mode on the demo.

The 2,000-customer demo (seed 7) with ``sample_rows=800, max_collect_rows=1000,
batch_rows=700``: the model is fitted on a stratified sample of 800 customers and every
customer is assigned in three batches; the limit is below the customer count, so memory
mode's per-customer collect would break it.

The report's page in scale mode is checked in tests/test_scale.py
(``test_report_runs_in_scale_mode_and_says_so``, with the other reports').
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sklearn.metrics import adjusted_rand_score

import cxkit
from cxkit import personas as P
from cxkit.personas.scale import ScalePersonaResult
from cxkit.scale import ScaleSettings
from tests.collects import Collects

SMALL = ScaleSettings(mode="scale", sample_rows=800, max_collect_rows=1000, batch_rows=700)


@pytest.fixture(scope="module")
def scaled(demo_data: cxkit.CXData) -> Iterator[tuple[ScalePersonaResult, Collects]]:
    """The scale-mode analysis (mode from CXKIT_SCALE) and what it handed to Python."""
    with Collects.in_scale_mode(SMALL) as collects:
        res = P.analyze(demo_data, random_state=0)
    yield res, collects  # type: ignore[misc]


def test_scale_mode_matches_memory_mode_within_tolerances(
    demo_report: P.PersonasResult, scaled: tuple[ScalePersonaResult, Collects], demo_data
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
    scaled: tuple[ScalePersonaResult, Collects], demo_data: cxkit.CXData
) -> None:
    res, collects = scaled
    collects.assert_at_most(SMALL.max_collect_rows)
    assert len(res.features) <= SMALL.sample_rows
    assert res.assignments.empty  # every customer's persona is the engine table
    t = P.label_table(demo_data)  # the table written above: opened, not refitted
    assert t.columns == ("customer_id", "persona")
    assert int(t.count().to_pandas()) == res.n_customers
