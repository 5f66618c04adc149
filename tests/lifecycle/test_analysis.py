"""Tests of cxkit.lifecycle.analysis: analyze, LifecycleResult and its findings."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import cxkit
from cxkit import cache
from cxkit import lifecycle as lc
from cxkit.errors import NotAvailableError
from tests.lifecycle.helpers import mini_data


def test_findings_on_mini_data():
    fs = lc.analyze(mini_data()).findings()
    metrics = {f.metric for f in fs}
    assert {"overall_conversion", "time_to_purchase"} <= metrics
    assert "biggest_dropoff" not in metrics  # every step rests on < 30 customers
    assert all(f.small_n for f in fs if f.metric == "overall_conversion")
    assert all(isinstance(f, cxkit.Finding) for f in fs)


def test_demo_funnel_and_findings(demo_data):
    f = lc.funnel(demo_data, ["product_view", "add_to_cart", "purchase"], window=7)
    assert (np.diff(f.n_customers) <= 0).all() and f.n_customers.iloc[-1] > 0
    # every order is preceded by a product view / add to cart 0-3 days before
    assert f.median_time_from_previous_days.iloc[-1] <= 3
    fs = {x.metric: x for x in lc.analyze(demo_data).findings()}
    assert {"overall_conversion", "repeat_rate", "biggest_dropoff"} <= set(fs)
    # planted: ~22% of buyers become advocates, the lowest step rate of the ladder
    assert fs["biggest_dropoff"].comparison == "retention -> advocacy"
    cr = lc.cohort_retention(demo_data)
    assert cr.iloc[:-1, 1:].stack().dropna().between(0, 1).all()
    assert cr.iloc[:-1][0].eq(1).all()


def test_orders_only_data_cdnow():
    data = cxkit.load(Path(__file__).resolve().parents[2] / "data" / "cdnow")
    ok, missing = lc.available_stages(data)
    assert list(ok) == ["purchase", "retention"]
    assert set(missing) == {"awareness", "consideration", "advocacy"}
    f = lc.stage_funnel(data, ok)
    assert f.n_customers.tolist()[0] == 2357
    fs = {x.metric: x for x in lc.analyze(data).findings()}
    assert "repeat_rate" in fs and "overall_conversion" not in fs
    assert fs["repeat_rate"].n == 2357 and 0.3 < fs["repeat_rate"].value < 0.7
    with pytest.raises(NotAvailableError, match="events"):
        lc.funnel(data, ["product_view", "purchase"])
    r = lc.cohort_retention(data, activity="orders")
    assert r.loc["1997-01", 0] == 1.0 and r.index[-1] == "all (size-weighted)"


# ---- analyze and LifecycleResult ------------------------------------------------------

CDNOW = Path(__file__).resolve().parents[2] / "data" / "cdnow"


@pytest.fixture(scope="module")
def demo_result(demo_data: cxkit.CXData) -> lc.LifecycleResult:
    return lc.analyze(demo_data)


def test_analyze_tables_are_the_parts_functions(demo_data, demo_result):
    res = demo_result
    assert isinstance(res, lc.LifecycleResult) and res.domain == "lifecycle"
    assert res.as_of == cxkit.resolve_as_of(demo_data, None)
    expected = {
        "stage_funnel", "stage_conversion", "funnel", "period_compare", "breakdown_tests",
        "entry_channel_tests", "cohorts", "cohort_cells", "monthly_cohorts", "states", "journey_links",
        "journey_paths", "stage_links", "stage_paths", "stage_rule_counts",
    }  # fmt: skip
    assert set(res.tables()) == expected  # no personas in the 2k demo's customers
    pd.testing.assert_frame_equal(res.stage_funnel, lc.stage_funnel(demo_data))
    pd.testing.assert_frame_equal(res.stage_rule_counts, lc.stage_counts(demo_data, monotone=False))
    pd.testing.assert_frame_equal(res.stage_conversion, lc.stage_conversion(demo_data))
    steps = list(lc.DEFAULT_STEPS)
    pd.testing.assert_frame_equal(res.funnel, lc.funnel(demo_data, steps, window=7))
    pd.testing.assert_frame_equal(
        res.journey_paths, lc.journey_paths(demo_data, max_steps=4, top=10)
    )
    assert res.monthly_cohorts is res.cohorts
    assert res.by == "acquisition_channel" and res.target == "purchase"
    assert res.n_customers == int(res.stage_funnel.n_customers.iloc[0])
    assert list(res.missing_parts) == ["persona"]
    # the ladder's steps are the stage funnel's rows: one source for every "A → B" figure
    st = res.stage_steps
    sf = res.stage_funnel
    assert st.from_stage.tolist() == sf.step_name.iloc[:-1].tolist()
    assert st.n_from.tolist() == sf.n_customers.iloc[:-1].tolist()
    assert st.rate.tolist() == pytest.approx(
        (sf.n_customers.iloc[1:].to_numpy() / sf.n_customers.iloc[:-1].to_numpy()).tolist()
    )
    rc = res.rule_conversion
    assert rc.from_rule.tolist() == [
        lc.describe_rule(res.stage_map[s]) for s in res.stage_conversion.from_stage
    ]
    assert rc.rate.tolist() == res.stage_conversion.rate.tolist()
    assert res.not_available == list(res.missing_parts.values())


def test_findings_carry_intervals_n_and_one_importance_scale(demo_result):
    fs = demo_result.findings()
    assert [f.metric for f in fs][:4] == [
        "repeat_rate", "overall_conversion", "time_to_purchase", "biggest_dropoff"
    ]  # fmt: skip
    for f in fs:
        assert f.domain == "lifecycle" and f.n is not None and f.n > 0
        assert 0 <= f.importance <= 10
        if f.metric != "time_to_purchase":  # a median in days: n, no interval
            assert f.ci_low <= f.value <= f.ci_high, f.metric
    top = max(fs, key=lambda f: f.importance)
    assert top.metric == "overall_conversion" and top.importance == 10
    conv = demo_result.stage_conversion.set_index(["from_stage", "to_stage"])
    repeat = next(f for f in fs if f.metric == "repeat_rate")
    assert repeat.value == conv.loc[("purchase", "retention"), "rate"]
    assert repeat.n == conv.loc[("purchase", "retention"), "n_from"]
    groups = [f for f in fs if f.metric == "group_difference"]
    assert groups and all(f.p_value < 0.05 and not f.small_n for f in groups)


def test_findings_wrapper_is_analyze_findings():
    data = mini_data()
    assert lc.findings(data) == lc.analyze(data).findings()


def test_as_of_is_resolved_as_documented():
    data = mini_data()
    res = lc.analyze(data, as_of="2024-01-06")
    assert res.as_of == pd.Timestamp("2024-01-06 23:59:59.999999")  # a date: its whole day
    assert res.stage_funnel.n_customers.tolist()[:3] == [2, 1, 1]  # a and b by Jan 6
    cut = lc.analyze(data.upto("2024-01-06"))
    assert cut.as_of == res.as_of and cut.findings() == res.findings()
    # None: the latest timestamp (2024-02-10, a date only: the end of that day)
    assert lc.analyze(data).as_of == pd.Timestamp("2024-02-10 23:59:59.999999")
    at = lc.analyze(data, as_of="2024-01-06 12:00")
    assert at.as_of == pd.Timestamp("2024-01-06 12:00")


def test_persona_breakdown_from_labels_or_column(demo_data, demo_dir):
    truth = pd.read_parquet(demo_dir / "_truth.parquet", columns=["customer_id", "persona"])
    labels = truth.set_index("customer_id").persona.astype(str).rename("label")
    res = lc.analyze(demo_data, personas=labels)
    assert "persona" not in res.missing_parts
    pt = res.persona_tests
    assert sorted(pt.persona) == sorted(labels.unique())
    assert pt.n_start.sum() == res.funnel.n_customers.iloc[0]
    frame = lc.analyze(demo_data, personas=labels.rename_axis("customer_id").reset_index())
    pd.testing.assert_frame_equal(frame.persona_tests, pt)
    assert "persona" in res.takeaways()


def test_orders_only_result_says_what_is_missing():
    res = lc.analyze(cxkit.load(CDNOW))
    assert list(res.stage_map) == ["purchase", "retention"] and res.target == "purchase"
    assert res.funnel is None and res.breakdown_tests is None and res.stage_links is None
    assert set(res.missing_parts) == {
        "stages", "breakdown", "funnel", "period_compare", "entry_channel", "journeys",
        "stage_journeys", "persona",
    }  # fmt: skip
    assert "funnel is not available" in res.missing_parts["period_compare"]
    assert "awareness needs table 'events'" in res.missing_parts["stages"]
    assert res.activity == "orders" and res.cohorts is not None
    repeat = next(f for f in res.findings() if f.metric == "repeat_rate")
    assert res.headline() == repeat.sentence


def test_no_stage_tables_is_not_available():
    cust = pd.DataFrame({"customer_id": ["a"], "signup_at": pd.to_datetime(["2024-01-01"])})
    with pytest.raises(NotAvailableError, match="an events or orders table"):
        lc.analyze(cxkit.load({"customers": cust}))


def test_headline_and_takeaways(demo_result):
    head = demo_result.headline()
    assert head.startswith(next(f.sentence for f in demo_result.findings()
                                if f.metric == "overall_conversion").rstrip("."))  # fmt: skip
    assert "; the biggest drop-off is retention → advocacy" in head
    tk = demo_result.takeaways()
    assert set(tk) == {
        "stages", "conversion", "funnel", "breakdown", "entry_channel", "period_compare",
        "cohorts", "states", "journeys", "stage_journeys",
    }  # fmt: skip
    assert tk["funnel"].endswith(" hours.") and " within 7 days" in tk["funnel"]
    assert tk["stages"].startswith("The largest loss is retention → advocacy")


def test_analyze_is_computed_once_per_report_run(demo_dir, tmp_path, monkeypatch):
    monkeypatch.setenv(cache.CACHE_ENV, str(tmp_path / "cache"))
    data = cxkit.load(demo_dir)
    before = cache.cache_stats()
    first = lc.analyze(data)  # as the executive summary calls it
    # as the lifecycle notebook calls it: data cut at as_of, the report's options
    second = lc.analyze(data.upto(None), steps=["product_view", "add_to_cart", "purchase"])
    after = cache.cache_stats()
    assert after["hits"] == before["hits"] + 1 and after["misses"] == before["misses"] + 1
    assert first.findings() == second.findings()
