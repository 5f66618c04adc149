"""The scale-mode scorecard (cxkit.summary, scale mode) against the memory scorecard (issue 19).

On the 20,000-customer demo the memory-mode churn scores, CLV values and persona labels
are written into the engine (``con.create_table``); the engine scorecard built from them
must equal the memory scorecard row for row, and so must its focus table, the customers
with the most value at risk, the CLV-at-risk tile and the files ``write_scores`` writes.
The focus labels come from the same :data:`cxkit.summary.FOCUS_RULES` in both modes, so
issue 21's "stated rule = applied rule" holds in scale mode too.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

import cxkit
from cxkit import churn, clv, personas, summary, synth
from cxkit import summary as ss
from cxkit.errors import DataError, ScaleLimitError
from cxkit.scale import ScaleSettings
from tests.collects import Collects

pytestmark = pytest.mark.slow  # the memory-mode results of the demo take ~7 s once

#: Below the demo's 20,000 customers: every collect must stay under it.
LIMIT = 5_000
SETTINGS = ScaleSettings(mode="scale", sample_rows=1_000, max_collect_rows=LIMIT, batch_rows=3_000)


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The 20,000-customer demo's memory scorecard and its inputs written into the engine."""
    folder = synth.write_demo(tmp_path_factory.mktemp("d") / "demo", customers=20_000, seed=42)
    data = cxkit.load(str(folder))
    end = cxkit.data.resolve_as_of(data, None)
    cut = data.upto(end)
    ch = churn.analyze(cut, random_state=0)
    values = clv.analyze(cut, as_of=end, horizon_weeks=52).values
    labels = personas.persona_labels(cut, as_of=end, random_state=0).reset_index()
    card = summary.scorecard(cut, as_of=end, clv_frame=values, personas=labels, churn_result=ch)
    con = cut.con
    scores = ch.scores[["customer_id", "churn_probability", "risk_band"]].astype(
        {"risk_band": "string"}
    )
    tables = {
        "churn_scores": con.create_table("t_cx_churn_scores", scores, overwrite=True),
        "clv_values": con.create_table("t_cx_clv_values", values, overwrite=True),
        "persona_labels": con.create_table("t_cx_persona_labels", labels, overwrite=True),
    }
    return {"data": cut, "end": end, "card": card, "tables": tables, "con": con}


@pytest.fixture(scope="module")
def engine_card(demo: dict[str, Any]) -> ss.ScaleScorecard:
    return ss.scorecard_expr(demo["data"], as_of=demo["end"], settings=SETTINGS, **demo["tables"])


def _collect(card: ss.ScaleScorecard) -> pd.DataFrame:
    """The whole engine scorecard (for the comparison only: above the scale limit)."""
    return card.frame(card.ordered().to_pyarrow())


def test_engine_scorecard_equals_memory_row_for_row(
    demo: dict[str, Any], engine_card: ss.ScaleScorecard
) -> None:
    mem = demo["card"].sort_values("customer_id", ignore_index=True)
    got = _collect(engine_card)
    assert len(engine_card) == len(mem) == 20_000
    assert list(got.columns) == list(mem.columns)
    pd.testing.assert_frame_equal(got, mem, check_exact=False, rtol=0, atol=1e-9)
    # the labels exactly, and every rule used on the demo (not a trivial all-nurture)
    assert got["recommended_focus"].tolist() == mem["recommended_focus"].tolist()
    assert set(got["recommended_focus"]) == {r.focus for r in summary.FOCUS_RULES}
    mem_th = summary.focus_thresholds(mem)
    assert engine_card.thresholds.clv_median == pytest.approx(mem_th.clv_median, abs=1e-9)


def test_focus_table_top_at_risk_and_tile_equal_memory(
    demo: dict[str, Any], engine_card: ss.ScaleScorecard
) -> None:
    mem = demo["card"]
    pd.testing.assert_frame_equal(summary.focus_table(engine_card), summary.focus_table(mem))
    top = summary.top_at_risk(engine_card, n=25)
    pd.testing.assert_frame_equal(top, summary.top_at_risk(mem, n=25))
    assert len(top) == 25
    tiles = {
        k: summary.kpi_tiles(demo["data"], as_of=demo["end"], card=c).set_index("kpi")
        for k, c in (("scale", engine_card), ("memory", mem))
    }
    row = "CLV at risk (52 weeks)"
    assert tiles["scale"].loc[row, "available"]
    assert tiles["scale"].loc[row, "value"] == pytest.approx(
        tiles["memory"].loc[row, "value"], rel=1e-12
    )
    assert tiles["scale"].loc[row, "sentence"] == tiles["memory"].loc[row, "sentence"]


def test_focus_rules_without_clv_or_churn_say_why_as_memory(demo: dict[str, Any]) -> None:
    t = demo["tables"]
    card = ss.scorecard_expr(
        demo["data"],
        as_of=demo["end"],
        settings=SETTINGS,
        persona_labels=t["persona_labels"],
        churn_scores=t["churn_scores"],
    )
    mem = demo["card"].sort_values("customer_id", ignore_index=True)
    for c in ("p_alive", "expected_purchases_52w", "clv_52w", "clv_at_risk_52w"):
        mem[c] = np.nan
    mem["recommended_focus"] = summary.recommend_focus(mem)
    got = summary.focus_table(card)
    pd.testing.assert_frame_equal(got, summary.focus_table(mem))
    assert got.set_index("focus").loc["win back", "note"].startswith("not available")
    assert _collect(card)["recommended_focus"].tolist() == mem["recommended_focus"].tolist()


def test_write_scores_in_batches_equals_memory_files(
    demo: dict[str, Any], engine_card: ss.ScaleScorecard, tmp_path: Path
) -> None:
    for ids in ("clear", "pseudonymous"):
        mem_pq, mem_csv = summary.write_scores(
            demo["card"], tmp_path / f"mem-{ids}", customer_ids=ids, key="k"
        )
        got_pq, got_csv = summary.write_scores(
            engine_card, tmp_path / f"scale-{ids}", customer_ids=ids, key="k", batch_rows=3_000
        )
        assert got_csv.read_bytes() == mem_csv.read_bytes()
        assert pq.ParquetFile(got_pq).metadata.num_row_groups == 7  # written in 7 batches
        assert pq.read_schema(got_pq).equals(pq.read_schema(mem_pq), check_metadata=True)
        a, b = pd.read_parquet(got_pq), pd.read_parquet(mem_pq)
        pd.testing.assert_frame_equal(a, b)
        assert a.attrs == b.attrs
    assert not pd.read_parquet(got_pq)["customer_id"].str.startswith("C0").any()


def test_no_collect_above_max_collect_rows(
    demo: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    collects = Collects(monkeypatch)
    card = ss.scorecard_expr(demo["data"], as_of=demo["end"], settings=SETTINGS, **demo["tables"])
    summary.focus_table(card)
    summary.top_at_risk(card)
    summary.kpi_tiles(demo["data"], as_of=demo["end"], card=card)
    summary.write_scores(card, tmp_path, customer_ids="clear")
    collects.assert_at_most(LIMIT)
    assert sum(collects.batches) >= 20_000  # the files streamed every customer, in batches
    with pytest.raises(ScaleLimitError, match="5,000"):
        card.to_pandas()  # the one whole collect refuses above the limit
    collects.clear()
    card.expr.to_pyarrow()  # and the recorder does see a whole collect
    assert collects.largest() == 20_000


def test_engine_inputs_contract(demo: dict[str, Any]) -> None:
    con, t = demo["con"], demo["tables"]
    named = ss.as_engine_table(
        SimpleNamespace(values_table="t_cx_clv_values"), con, attr="values_table"
    )
    assert named.columns == t["clv_values"].columns
    assert ss.as_engine_table(t["persona_labels"], con, attr="labels_table") is t["persona_labels"]
    assert summary._scale_results(None, SimpleNamespace(labels_table="t_cx_persona_labels"))
    assert not summary._scale_results(None, SimpleNamespace(values=pd.DataFrame()))
    bad = t["churn_scores"].drop("risk_band")
    with pytest.raises(DataError, match="risk_band"):
        ss.scorecard_expr(demo["data"], as_of=demo["end"], settings=SETTINGS, churn_scores=bad)
