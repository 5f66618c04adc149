"""Every CLV figure draws from its table and carries a takeaway title."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go

from cxkit import clv, datasets
from tests.clv._data import CAL_END


def test_plots(
    cdnow_summary: pd.DataFrame, cdnow_bg: clv.BetaGeo, cdnow_gg: clv.GammaGamma
) -> None:
    values = clv.customer_value(cdnow_summary, cdnow_bg, cdnow_gg)
    merged = cdnow_summary.join(values.drop(columns="customer_id"))
    figures = [
        clv.plot_holdout_by_frequency(clv.holdout_by_frequency(cdnow_summary, cdnow_bg)),
        clv.plot_cumulative_repeat_purchases(
            clv.cumulative_repeat_purchases(datasets.cdnow(), cdnow_bg, calibration_end=CAL_END)
        ),
        clv.plot_p_alive(clv.p_alive_distribution(cdnow_summary, cdnow_bg)),
        clv.plot_clv_distribution(values),
        clv.plot_concentration(values),
        clv.plot_clv_by(clv.clv_by(merged.assign(g=merged.frequency.clip(0, 2)), "g"), "g"),
    ]
    for fig in figures:
        assert isinstance(fig, go.Figure)
        assert fig.layout.title.text  # a takeaway title


def test_titles_state_the_numbers() -> None:
    frame = pd.DataFrame({"clv_52w": [10.0, 0.0, 0.0, 0.0, 0.0]})
    assert clv.plot_concentration(frame).layout.title.text == (
        "The top 20% of customers hold 100% of expected value"
    )
    assert "less than 0.00" in clv.plot_clv_distribution(frame).layout.title.text


def test_customer_intervals_chart_draws_both_intervals_and_states_their_ratio() -> None:
    table = pd.DataFrame(
        {
            "customer_id": ["a", "b", "c"],
            "clv_52w": [100.0, 50.0, 30.0],
            "clv_52w_low": [94.0, 48.0, 28.0],
            "clv_52w_high": [106.0, 52.0, 32.0],
            "clv_52w_pred_low": [0.0, 10.0, 0.0],
            "clv_52w_pred_high": [300.0, 90.0, 60.0],
        }
    )
    fig = clv.plot_clv_intervals(table)
    # predictive over parameter widths: 300 / 12, 80 / 4, 60 / 4 = 25, 20, 15
    assert fig.layout.title.text.startswith(
        "For the 3 most valuable customers, what each will actually bring is about 20×"
    )
    predictive, parameter = fig.data
    assert list(predictive.error_x.array) == [200.0, 40.0, 30.0]
    assert list(predictive.error_x.arrayminus) == [100.0, 40.0, 30.0]
    assert list(parameter.error_x.array) == [6.0, 2.0, 2.0]
    assert list(parameter.y) == ["a", "b", "c"] and fig.layout.yaxis.autorange == "reversed"
    no_pred = table.assign(clv_52w_pred_low=float("nan"), clv_52w_pred_high=float("nan"))
    fig = clv.plot_clv_intervals(no_pred)
    assert len(fig.data) == 1
    # half-widths 6%, 4% and 6.7%: median 6%
    assert fig.layout.title.text.endswith("known to about ±6% (95% intervals)")
