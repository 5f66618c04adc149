"""Tests of cxkit.lifecycle.plots: one figure per chart of the report, from a result."""

from __future__ import annotations

from pathlib import Path

import plotly.graph_objects as go
import pytest

import cxkit
from cxkit import lifecycle as lc

CHARTS = [
    lc.stage_chart, lc.funnel_chart, lc.breakdown_chart, lc.entry_channel_chart,
    lc.persona_chart, lc.cohort_chart, lc.states_chart, lc.journey_chart,
    lc.stage_journey_chart,
]  # fmt: skip


@pytest.fixture(scope="module")
def demo_result(demo_data: cxkit.CXData, demo_dir: Path) -> lc.LifecycleResult:
    import pandas as pd

    truth = pd.read_parquet(demo_dir / "_truth.parquet", columns=["customer_id", "persona"])
    return lc.analyze(demo_data, personas=truth.set_index("customer_id").persona)


def test_every_chart_is_drawn_with_a_takeaway_title(demo_result):
    for chart in CHARTS:
        fig = chart(demo_result)
        assert isinstance(fig, go.Figure), chart.__name__
        assert fig.layout.title.text, chart.__name__
    sf = demo_result.stage_funnel
    fig = lc.stage_chart(demo_result)
    assert fig.layout.title.text == (
        f"{sf.rate_from_start.iloc[-1]:.0%} of customers reach advocacy"
    )
    assert list(fig.data[0].y) == pytest.approx(list(100 * sf.rate_from_start))
    assert lc.breakdown_chart(demo_result).layout.title.text == (
        "Conversion to purchase by acquisition channel"
    )
    first = demo_result.journey_links.source.str.startswith("1. ")
    assert lc.journey_chart(demo_result).layout.title.text.startswith("Most journeys start at ")
    assert first.any()


def test_charts_of_missing_parts_are_none():
    res = lc.analyze(cxkit.load(Path(__file__).resolve().parents[2] / "data" / "cdnow"))
    missing = {c.__name__ for c in CHARTS if c(res) is None}
    assert missing == {
        "funnel_chart", "breakdown_chart", "entry_channel_chart", "persona_chart",
        "journey_chart", "stage_journey_chart",
    }  # fmt: skip
    assert isinstance(lc.cohort_chart(res), go.Figure)
