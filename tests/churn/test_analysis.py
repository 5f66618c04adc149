"""Tests for cxkit.churn.analysis: analyze -> ChurnResult, scores, rates over time, findings."""

from __future__ import annotations

import doctest
import importlib
import pkgutil
from pathlib import Path

import pandas as pd
import pytest

import cxkit
from cxkit import cache, churn
from cxkit.churn.features import FeatureCache
from cxkit.data import end_of_day
from cxkit.errors import UsageError
from cxkit.findings import Finding
from cxkit.result import Result
from tests.churn.helpers import contractual_customers

CDNOW = Path(__file__).resolve().parents[2] / "data" / "cdnow"


def test_doctests() -> None:
    modules = [churn] + [
        importlib.import_module(f"cxkit.churn.{m.name}")
        for m in pkgutil.iter_modules(churn.__path__)
    ]
    failed = attempted = 0
    for module in modules:
        result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
        failed, attempted = failed + result.failed, attempted + result.attempted
    assert failed == 0 and attempted > 5


# --------------------------------------------------------------------------------------
# model, validation and scoring on the 2k demo
# --------------------------------------------------------------------------------------


def test_analysis_on_demo(demo_data: cxkit.CXData, demo_result: churn.ChurnResult) -> None:
    a = demo_result
    v = a.backtest
    assert v is not None
    assert a.definition.basis == "orders" and a.definition.horizon_days == 90
    # no overlap: test window starts where the calibration window ends
    h = pd.Timedelta(days=90)
    assert v.cutoffs["test"] - v.cutoffs["calibrate"] == h
    assert v.cutoffs["calibrate"] - v.cutoffs["fit"] == h
    m = v.metrics.set_index("model")
    assert list(m.index) == ["model", "logit", "bgnbd", "p_alive"]
    assert m.loc["model", "roc_auc"] > 0.8
    assert m.loc["model", "roc_auc"] > m.loc["p_alive", "roc_auc"]
    # 1 − p_alive is not a churn probability (one-time buyers are "alive"): no Brier bound
    assert m.loc[["model", "logit", "bgnbd"], "brier"].between(0, 0.2).all()
    assert v.lift["cumulative_gain"].iloc[-1] == pytest.approx(1.0)
    assert v.lift["churn_rate"].iloc[0] > v.lift["churn_rate"].iloc[-1]
    assert len(v.importance) > 10 and v.importance["importance_mean"].iloc[0] > 0
    assert set(v.curves["curve"]) == {"roc", "pr"}
    # scores: one row per customer with an order by as_of, probabilities and bands
    s = a.scores
    assert s["customer_id"].is_unique
    assert s["churn_probability"].between(0, 1).all()
    assert set(s["risk_band"].astype(str)) <= {"low", "medium", "high"}
    assert s.attrs["definition"]["basis"] == "orders"
    orders = demo_data.to_pandas("orders")
    assert len(s) == orders.loc[orders["ts"] <= a.as_of, "customer_id"].nunique()


def test_result_shape_and_as_of(demo_data: cxkit.CXData, demo_result: churn.ChurnResult) -> None:
    a = demo_result
    assert isinstance(a, Result) and a.domain == "churn"
    # as_of=None: the data's latest timestamp, exactly (resolve_as_of), not its day's end
    assert a.as_of == cxkit.resolve_as_of(demo_data, None) == demo_data.max_ts()
    # the derived cutoffs are whole days
    assert a.churn_rate["cutoff"] == end_of_day((a.as_of - pd.Timedelta(days=90)).normalize())
    assert a.backtest.cutoffs["test"] == a.churn_rate["cutoff"]
    assert set(a.tables()) >= {"scores", "rate_over_time", "risk_by", "at_risk"}
    assert a.rate_over_time["cutoff"].iloc[-1] == a.churn_rate["cutoff"].normalize()
    assert len(a.rate_over_time) == 12
    assert a.by == "acquisition_channel" and a.risk_by["customers"].sum() == len(a.scores)
    assert len(a.at_risk) == 15 and (a.at_risk["risk_band"] == "high").all()
    assert a.at_risk["spend_total"].is_monotonic_decreasing
    assert "as_of" not in a.at_risk.columns
    assert a.not_available == [] and a.missing_parts == {}
    assert a.notes == a.backtest.notes
    bands = a.band_summary
    assert bands["customers"].sum() == len(a.scores) and a.high_risk_n == bands.customers.iloc[2]


def test_findings_on_demo(demo_result: churn.ChurnResult) -> None:
    fs = churn.findings(result=demo_result)
    assert all(isinstance(f, Finding) and f.domain == "churn" for f in fs)
    metrics = {f.metric: f for f in fs}
    assert {"churn_rate", "model_auc", "top_decile_lift", "high_risk_customers"} <= set(metrics)
    rate = metrics["churn_rate"]
    assert rate.ci_low < rate.value < rate.ci_high and rate.n > 100
    assert "90 days" in rate.sentence and "95% CI" in rate.sentence


def test_findings_carry_intervals_n_and_importance(demo_result: churn.ChurnResult) -> None:
    fs = demo_result.findings()
    assert fs == churn.findings(result=demo_result)
    assert [f.metric for f in fs] == [
        "churn_rate",
        "model_auc",
        "top_decile_lift",
        "top_drivers",
        "high_risk_customers",
    ]
    by = {f.metric: f for f in fs}
    assert [by[m].importance for m in by] == [10, 8, 6, 5, 9]
    for m in ("churn_rate", "model_auc", "top_decile_lift"):
        f = by[m]
        assert f.ci_low <= f.value <= f.ci_high and f.n >= 30 and not f.small_n, m
    auc = demo_result.backtest.metrics.set_index("model").loc["model"]
    assert by["model_auc"].ci_low == auc.roc_auc_low and by["model_auc"].n == auc.customers
    assert by["churn_rate"].n == demo_result.churn_rate["customers"]
    assert by["high_risk_customers"].n == len(demo_result.scores)
    assert by["high_risk_customers"].value == demo_result.high_risk_n
    assert by["churn_rate"].extra["definition"]["horizon_days"] == 90


def test_headline_and_takeaways(demo_result: churn.ChurnResult) -> None:
    a = demo_result
    rate, high = a.findings()[0].sentence, a.findings()[-1].sentence
    assert a.headline() == rate.rstrip(".") + "; " + high[0].lower() + high[1:]
    t = a.takeaways()
    assert set(t) == {
        "definition",
        "rate_over_time",
        "model",
        "curves",
        "calibration",
        "lift",
        "drivers",
        "scores",
        "bands",
        "risk_by",
        "at_risk",
    }
    assert a.scores_label in t["scores"]  # whose scores are used, with the AUC difference
    assert t["definition"] == a.definition.describe()
    assert t["at_risk"].startswith(f"The top 15 of {a.high_risk_n:,} high-risk customers by spend")
    assert f"{len(a.scores):,} customers scored as of {a.as_of:%Y-%m-%d}" in t["bands"]


def test_same_seed_same_results(demo_data: cxkit.CXData, demo_result: churn.ChurnResult) -> None:
    again = churn.analyze(demo_data, random_state=0)
    pd.testing.assert_frame_equal(again.backtest.metrics, demo_result.backtest.metrics)
    pd.testing.assert_frame_equal(again.backtest.predictions, demo_result.backtest.predictions)
    pd.testing.assert_frame_equal(again.backtest.importance, demo_result.backtest.importance)
    pd.testing.assert_frame_equal(again.scores, demo_result.scores)


def test_analyze_is_cached_on_the_resolved_as_of(
    demo_data: cxkit.CXData,
    demo_result: churn.ChurnResult,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(cache.CACHE_ENV, str(tmp_path / "cache"))
    before = cache.cache_stats()
    end = demo_result.as_of
    first = churn.analyze(demo_data, random_state=0)
    # the same instant three ways: one entry
    churn.analyze(demo_data, as_of=end, random_state=0)
    churn.analyze(demo_data.upto(end), random_state=0)
    after = cache.cache_stats()
    assert (after["misses"] - before["misses"], after["hits"] - before["hits"]) == (1, 2)
    assert len(list((tmp_path / "cache").glob("churn.analyze-*.pkl"))) == 1
    pd.testing.assert_frame_equal(first.scores, demo_result.scores)


def test_score_and_rate_over_time_resolve_as_of(demo_data: cxkit.CXData) -> None:
    trend = churn.churn_rate_over_time(demo_data, as_of="2024-10-31", every_days=60, periods=3)
    assert trend["cutoff"].tolist() == list(
        pd.to_datetime(["2024-04-04", "2024-06-03", "2024-08-02"])
    )
    assert trend["churn_rate"].between(trend["ci_low"], trend["ci_high"]).all()
    assert not trend["small_n"].any()
    with pytest.raises(UsageError, match="every_days and periods must be >= 1, got 0, 3"):
        churn.churn_rate_over_time(demo_data, every_days=0, periods=3)


def test_findings_wrapper_needs_data_or_a_result() -> None:
    with pytest.raises(UsageError, match="findings needs data or a result"):
        churn.findings()


def test_risk_by_and_a_missing_breakdown(
    demo_data: cxkit.CXData, demo_result: churn.ChurnResult
) -> None:
    by = churn.risk_by(demo_data, demo_result.scores, "region")
    assert by["customers"].sum() == len(demo_result.scores)
    assert by["high_risk_share"].is_monotonic_decreasing
    with pytest.raises(cxkit.NotAvailableError, match="Churn risk by plan"):
        churn.risk_by(
            cxkit.load({"orders": demo_data.to_pandas("orders")}), demo_result.scores, "plan"
        )


# --------------------------------------------------------------------------------------
# CDNOW (orders only)
# --------------------------------------------------------------------------------------


@pytest.mark.skipif(not CDNOW.exists(), reason="data/cdnow is not in the checkout")
def test_cdnow_orders_only() -> None:
    data = cxkit.load(CDNOW)
    a = churn.analyze(data, random_state=0)
    assert a.backtest is not None
    m = a.backtest.metrics.set_index("model")
    assert {"model", "logit", "bgnbd", "p_alive"} <= set(m.index)
    assert m.loc["model", "roc_auc"] > 0.75
    assert a.churn_rate["customers"] == 2357
    assert len(a.scores) == 2357
    assert not any(c.startswith("events") for c in a.backtest.importance["feature"])
    assert churn.findings(result=a)[0].metric == "churn_rate"
    # no customers table: the breakdown is named as not available, the rest is there
    assert a.risk_by is None and "risk_by" in a.missing_parts
    assert a.not_available == [a.missing_parts["risk_by"]]
    assert len(a.at_risk) == 15 and "by spend to date" in a.takeaways()["at_risk"]


def test_contractual_end_to_end() -> None:
    customers = contractual_customers()
    data = cxkit.load({"customers": customers})
    a = churn.analyze(data, as_of="2024-12-31", random_state=0)
    assert a.as_of == pd.Timestamp("2024-12-31 23:59:59.999999")  # a date is its whole day
    assert a.definition.kind == "contractual"
    m = a.backtest.metrics.set_index("model")
    assert list(m.index) == ["model", "logit"]  # no BG/NBD without orders
    assert m.loc["model", "roc_auc"] > 0.6  # the plan drives churn
    live = customers[(customers.signup_at <= "2024-12-31") & customers.churned_at.isna()]
    assert set(a.scores["customer_id"]) == set(live["customer_id"])
    assert "cancelled" in churn.findings(result=a)[0].sentence
    # without order history the riskiest are ranked by probability
    assert "by churn probability" in a.takeaways()["at_risk"]


def test_too_little_history_leaves_the_backtest_out() -> None:
    # sign-ups start on 2023-01-01: nobody to train on 2 × 90 days before 2023-06-15
    data = cxkit.load({"customers": contractual_customers()}).upto("2023-06-15")
    a = churn.analyze(data, random_state=0, by=None)
    assert a.backtest is None
    assert a.not_available == [a.missing_parts["backtest"]]
    assert a.missing_parts["backtest"].startswith(
        "The backtest is not available: no customers to learn churn from"
    )
    assert "model" not in a.takeaways() and len(a.findings()) == 2


def test_analyze_builds_each_cutoff_once_and_frees_it(
    demo_data: cxkit.CXData, demo_result: churn.ChurnResult, monkeypatch: pytest.MonkeyPatch
) -> None:
    caches: list[FeatureCache] = []

    class Recording(FeatureCache):
        def __init__(self, *args: object, **kwargs: object) -> None:
            super().__init__(*args, **kwargs)  # type: ignore[arg-type]
            caches.append(self)

    features_module = importlib.import_module("cxkit.churn.features")
    fits: list[pd.Timestamp] = []
    bgnbd_scores = features_module.bgnbd_scores

    def counted(data: cxkit.CXData, end: pd.Timestamp, horizon_days: int) -> object:
        fits.append(end)
        return bgnbd_scores(data, end, horizon_days)

    monkeypatch.setattr(importlib.import_module("cxkit.churn.analysis"), "FeatureCache", Recording)
    monkeypatch.setattr(features_module, "bgnbd_scores", counted)
    monkeypatch.setattr(importlib.import_module("cxkit.churn.backtest"), "bgnbd_scores", counted)
    result = churn.analyze(demo_data, random_state=0)
    (c,) = caches
    h = pd.Timedelta(days=result.definition.horizon_days)
    t1 = result.churn_rate["cutoff"]
    # the backtest's fit, calibration and test cutoffs (the last two also fit the scoring
    # model) and as_of: each built once; three held at a time (as_of's built while the
    # scoring model fits on the other two), none kept at the end
    assert sorted(c.built) == [t1 - 2 * h, t1 - h, t1, result.as_of]
    assert c.peak_frames == 3 and c.cutoffs == []
    assert sorted(fits) == sorted(c.built)  # the BG/NBD baseline reuses the test cutoff's fit
    pd.testing.assert_frame_equal(result.backtest.metrics, demo_result.backtest.metrics)
    pd.testing.assert_frame_equal(result.scores, demo_result.scores)


def test_scoring_model_fitted_beside_the_backtest_is_the_sequential_one(
    demo_data: cxkit.CXData, demo_result: churn.ChurnResult
) -> None:
    # analyze fits the scoring model in a thread once the backtest's test predictions are
    # made; score() on its own fits it afterwards, in this thread: the same scores
    alone = churn.score(demo_data, as_of=demo_result.as_of, random_state=0)
    pd.testing.assert_frame_equal(demo_result.scores, alone, check_exact=True)


def test_feature_cache_events_call_back_once(demo_data: cxkit.CXData) -> None:
    cache = FeatureCache(demo_data, 90, 12, None)
    calls: list[str] = []
    cache.when("fitted", lambda: calls.append("a"))
    cache.when("fitted", lambda: calls.append("b"))
    cache.reached("other")
    assert calls == []
    cache.reached("fitted")
    cache.reached("fitted")
    assert calls == ["a", "b"]
