"""Discounted CLV per customer, its concentration and its breakdown by group."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from cxkit import clv
from cxkit.errors import UsageError


def test_clv_columns_and_discounting(
    cdnow_summary: pd.DataFrame, cdnow_bg: clv.BetaGeo, cdnow_gg: clv.GammaGamma
) -> None:
    out = clv.customer_value(cdnow_summary, cdnow_bg, cdnow_gg)
    assert list(out.columns) == [
        "customer_id",
        "p_alive",
        "expected_purchases_52w",
        "expected_spend_per_purchase",
        "clv_52w",
    ]
    assert (out.clv_52w >= 0).all()
    undiscounted = clv.customer_value(cdnow_summary, cdnow_bg, cdnow_gg, annual_discount_rate=0.0)
    np.testing.assert_allclose(
        undiscounted.clv_52w,
        undiscounted.expected_spend_per_purchase * undiscounted.expected_purchases_52w,
        rtol=1e-9,
    )
    assert (out.clv_52w <= undiscounted.clv_52w + 1e-12).all()
    ratio = out.clv_52w.sum() / undiscounted.clv_52w.sum()
    assert 1 / 1.1 < ratio < 1  # a year at 10% discounts by less than 1/1.1
    days = clv.customer_value(cdnow_summary, cdnow_bg, cdnow_gg, horizon=364, unit="D")
    np.testing.assert_allclose(days.clv_364d, out.clv_52w, rtol=1e-9)
    longer = clv.customer_value(cdnow_summary, cdnow_bg, cdnow_gg, horizon=24, unit="M")
    assert "clv_24m" in longer.columns and (longer.clv_24m >= out.clv_52w - 1e-9).all()
    assert out.attrs["clv_column"] == "clv_52w"
    with pytest.raises(UsageError, match="unit must be 'D' or 'W' or 'M', got 'Y'"):
        clv.customer_value(cdnow_summary, cdnow_bg, cdnow_gg, unit="Y")


def test_margin_scales_value_and_bad_settings(
    cdnow_summary: pd.DataFrame, cdnow_bg: clv.BetaGeo, cdnow_gg: clv.GammaGamma
) -> None:
    full = clv.customer_value(cdnow_summary, cdnow_bg, cdnow_gg)
    third = clv.customer_value(cdnow_summary, cdnow_bg, cdnow_gg, margin=0.3)
    np.testing.assert_allclose(third.clv_52w, 0.3 * full.clv_52w, rtol=1e-12)
    assert third.attrs["margin"] == 0.3
    with pytest.raises(UsageError, match="horizon must be positive, got 0"):
        clv.customer_value(cdnow_summary, cdnow_bg, horizon=0)
    with pytest.raises(
        UsageError, match=r"annual_discount_rate is a yearly rate like 0\.10, got 10"
    ):
        clv.customer_value(cdnow_summary, cdnow_bg, annual_discount_rate=10)


def test_without_a_spend_model_the_observed_mean_is_used(
    cdnow_summary: pd.DataFrame, cdnow_bg: clv.BetaGeo
) -> None:
    out = clv.customer_value(cdnow_summary, cdnow_bg)
    repeat = cdnow_summary.frequency.to_numpy() > 0
    np.testing.assert_array_equal(
        out.expected_spend_per_purchase[repeat], cdnow_summary.monetary_value[repeat]
    )
    overall = cdnow_summary.monetary_value[repeat].mean()
    assert np.allclose(out.expected_spend_per_purchase[~repeat], overall)


def test_top_share_and_grouping() -> None:
    assert clv.top_share([1, 1, 1, 1, 6]) == pytest.approx(0.6)
    assert clv.top_share([2, 2, 2, 2, 2]) == pytest.approx(0.2)
    assert math.isnan(clv.top_share([0, 0]))
    frame = pd.DataFrame(
        {
            "customer_id": list("abcdef"),
            "frequency": [0, 3, 5, 1, 8, 2],
            "monetary_value": [0.0, 10.0, 50.0, 5.0, 40.0, 1.0],
            "p_alive": [1.0, 0.9, 0.1, 0.8, 0.2, 0.3],
            "clv_52w": [1.0, 30.0, 2.0, 4.0, 3.0, 1.0],
            "channel": ["x", "x", "y", "y", "y", "x"],
        }
    )
    by = clv.clv_by(frame, "channel")
    assert by.channel.tolist() == ["x", "y"]
    assert by.customers.tolist() == [3, 3]
    assert by["mean_clv_52w"].tolist() == [32 / 3, 3.0]
    assert by.small_n.all()
    lapsing = clv.lapsing_high_value(frame, top=0.4)
    assert lapsing.customer_id.tolist() == ["e", "c"]  # top 40% by past spend, p_alive < .5
    assert lapsing.past_repeat_spend.tolist() == [320.0, 250.0]
