"""Model checks: the holdout test on CDNOW and the demo, the published figures, diagnostics."""

from __future__ import annotations

import pandas as pd
import pytest

import cxkit
from cxkit import clv, datasets
from cxkit.errors import DataError
from tests.clv._data import CAL_END, OBS_END, fixed_bg


def test_cdnow_validation_tables(cdnow_summary: pd.DataFrame, cdnow_bg: clv.BetaGeo) -> None:
    table = clv.holdout_by_frequency(cdnow_summary, cdnow_bg)
    assert table.calibration_frequency.tolist() == ["0", "1", "2", "3", "4", "5", "6", "7+"]
    assert table.customers.sum() == 2_357
    # The expected mean rises with calibration frequency, as in FHL (2005), Figure 4.
    assert table.expected_mean_purchases.is_monotonic_increasing
    totals = clv.holdout_totals(cdnow_summary, cdnow_bg)
    assert totals["actual"] == cdnow_summary.holdout_frequency.sum()
    assert abs(totals["relative_error"]) < 0.2

    track = clv.cumulative_repeat_purchases(
        datasets.cdnow(), cdnow_bg, calibration_end=CAL_END, observation_end=OBS_END
    )
    assert len(track) == 78  # 78 weeks
    at_cal = track.loc[~track.holdout, "cumulative_actual"].iloc[-1]
    assert at_cal == 2_457
    assert track.cumulative_actual.iloc[-1] == 2_457 + totals["actual"]
    # The model tracks the calibration period closely.
    assert track.loc[~track.holdout, "cumulative_expected"].iloc[-1] == pytest.approx(
        2_457, rel=0.05
    )

    dist = clv.p_alive_distribution(cdnow_summary, cdnow_bg)
    assert dist.customers.sum() == 2_357
    assert dist.share.sum() == pytest.approx(1.0)


def test_holdout_needs_the_holdout_columns(cdnow_summary: pd.DataFrame) -> None:
    plain = cdnow_summary[["customer_id", "frequency", "recency", "T", "monetary_value"]]
    for check in (clv.holdout_by_frequency, clv.holdout_totals):
        with pytest.raises(DataError, match="the summary has no holdout columns"):
            check(plain, fixed_bg())


def test_cdnow_matches_every_published_figure(
    cdnow_bg: clv.BetaGeo, cdnow_gg: clv.GammaGamma
) -> None:
    table = clv.compare_with_published(cdnow_bg, cdnow_gg)
    assert len(table) == len(clv.PUBLISHED_CDNOW) == 8
    assert table.ok.all(), table.to_string()
    assert set(table.model) == {"BG/NBD", "Gamma-Gamma"}
    # without Gamma-Gamma, only the BG/NBD rows
    assert clv.compare_with_published(cdnow_bg).model.unique().tolist() == ["BG/NBD"]
    # a fit on other data does not pass
    off = fixed_bg((0.3, 4.4136, 0.7929, 2.4259))
    off.log_likelihood_ = -9582.43
    assert not clv.compare_with_published(off).set_index("figure").loc["r", "ok"]


def test_describe_models(cdnow_bg: clv.BetaGeo, cdnow_gg: clv.GammaGamma) -> None:
    sentences = clv.describe_models(cdnow_bg, cdnow_gg)
    assert len(sentences) == 3
    assert sentences[0].startswith("While still active, a typical customer buys 0.055 times a week")
    assert "Gamma-Gamma p = 6.2" in sentences[2]
    assert len(clv.describe_models(cdnow_bg)) == 2


def test_demo_holdout_and_planted_rates(demo_data: cxkit.CXData, demo_dir) -> None:
    as_of = cxkit.resolve_as_of(demo_data, None).normalize()
    cal = as_of - pd.Timedelta(weeks=26)
    s = clv.rfm_summary(demo_data, calibration_end=cal, observation_end=as_of)
    bg = clv.BetaGeo().fit(s)
    totals = clv.holdout_totals(s, bg)
    assert abs(totals["relative_error"]) < 0.10, totals

    truth = pd.read_parquet(demo_dir / "_truth.parquet")
    buyers = truth[truth.purchased]
    r, alpha, a, b = bg.params_
    planted_rate_per_week = buyers.lambda_per_day.mean() * 7
    assert r / alpha == pytest.approx(planted_rate_per_week, rel=0.2)
    assert a / (a + b) == pytest.approx(buyers.p_dropout.mean(), rel=0.5)

    full = clv.rfm_summary(demo_data, observation_end=as_of)
    gg = clv.GammaGamma().fit(full)
    assert gg.mean_spend() == pytest.approx(buyers.mean_spend.mean(), rel=0.25)
