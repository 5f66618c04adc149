"""Tests for cxkit.churn.plots: one figure per part of the report, None when it is missing."""

from __future__ import annotations

import dataclasses

import plotly.graph_objects as go
import pytest

from cxkit import churn

CHARTS = [
    churn.trend_chart,
    churn.model_auc_chart,
    churn.roc_chart,
    churn.pr_chart,
    churn.calibration_chart,
    churn.lift_chart,
    churn.gains_chart,
    churn.importance_chart,
    churn.risk_histogram,
    churn.risk_by_chart,
]


@pytest.mark.parametrize("chart", CHARTS, ids=[c.__name__ for c in CHARTS])
def test_every_chart_draws_on_the_demo(chart: object, demo_result: churn.ChurnResult) -> None:
    fig = chart(demo_result)  # type: ignore[operator]
    assert isinstance(fig, go.Figure) and fig.data
    assert fig.layout.template.layout.colorway[0] == "#0072B2"  # the cxkit template
    assert fig.layout.title.text


def test_titles_state_the_takeaway(demo_result: churn.ChurnResult) -> None:
    a = demo_result
    main = a.backtest.metrics.set_index("model").loc["model"]
    assert f"AUC {main.roc_auc:.2f}" in churn.model_auc_chart(a).layout.title.text
    high = a.band_summary.set_index("risk_band").loc["high", "share"]
    assert churn.risk_histogram(a).layout.title.text.startswith(f"{high:.0%} of customers")
    assert len(churn.risk_histogram(a).layout.shapes) == 2  # the two thresholds
    roc = churn.roc_chart(a)
    assert [t.name for t in roc.data] == [*churn.MODEL_LABELS.values(), "guessing"]
    trend = churn.trend_chart(a)
    assert list(trend.data[0].x) == list(a.rate_over_time.cutoff.dt.strftime("%Y-%m-%d"))


def test_missing_parts_draw_nothing(demo_result: churn.ChurnResult) -> None:
    bare = dataclasses.replace(demo_result, backtest=None, risk_by=None, rate_over_time=None)
    for chart in CHARTS:
        fig = chart(bare)
        assert (fig is None) == (chart is not churn.risk_histogram), chart.__name__
