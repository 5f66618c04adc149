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
