"""Tests for cxkit.churn.features: point-in-time features, hand-worked, with no leakage."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import cxkit
from cxkit import churn
from cxkit.churn.features import FeatureCache, level_sets
from tests.backends import postgres_server, spark_session  # noqa: F401 - fixtures
from tests.churn.helpers import feature_frames, mutate_after, ts


def test_features_hand_worked() -> None:
    frames = feature_frames()
    f = churn.features(cxkit.load(frames), "2024-03-31", bgnbd=False).iloc[0]
    end = pd.Timestamp("2024-04-01")  # the whole of 2024-03-31 is included
    assert f["orders_n"] == 2 and f["spend_total"] == 40.0 and f["spend_avg"] == 20.0
    assert f["recency_days"] == pytest.approx((end - pd.Timestamp("2024-03-01")).days, abs=1e-6)
    # 90-day windows end at the cutoff: (2024-01-02, 2024-03-31] and the 90 days before.
    assert (f["orders_last_90d_n"], f["orders_prev_90d_n"], f["orders_trend_90d"]) == (1, 1, 0)
    assert (f["orders_ch_app_n"], f["orders_ch_web_n"]) == (1, 1)
    assert (f["events_n"], f["support_contacts_n"], f["consideration_n"]) == (2, 1, 1)
    assert f["last_touch_channel"] == "chat"
    assert (f["nps_last"], f["csat_last"], f["nps_responses_n"]) == (9.0, 2.0, 2)
    assert np.isnan(f["ces_last"])
    assert (f["theme_delivery_n"], f["theme_support_n"], f["theme_price_n"]) == (1, 1, 0)
    assert f["tenure_days"] == pytest.approx((end - pd.Timestamp("2023-12-15")).days, abs=1e-6)
    assert f["region"] == "north"
    only = churn.features(
        cxkit.load(frames),
        "2024-03-31",
        bgnbd=False,
        customers=pd.DataFrame({"customer_id": ["a", "zz"]}),
    )
    assert only["customer_id"].tolist() == ["a", "zz"]
    assert only.loc[1, "orders_n"] == 0 and np.isnan(only.loc[1, "recency_days"])


def test_feature_table_reports_its_cutoff_and_levels() -> None:
    expr, info = churn.feature_table(cxkit.load(feature_frames()), "2024-03-31")
    assert info["end"] == pd.Timestamp("2024-03-31 23:59:59.999999")
    assert info["levels"]["order_channel"] == ["app", "web"]
    assert "theme_delivery_n" in expr.columns
    with pytest.raises(cxkit.UsageError, match="trend_days must be >= 1, got 0"):
        churn.feature_table(cxkit.load(feature_frames()), "2024-03-31", trend_days=0)


def test_describe_feature() -> None:
    assert churn.describe_feature("recency_days") == "days since the last order"
    assert churn.describe_feature("bgnbd_p_no_order_90d").startswith("BG/NBD probability")
    assert churn.describe_feature("ev_site_visit_n") == "ev site visit"


def test_feature_cache_computes_each_cutoff_once(demo_data: cxkit.CXData) -> None:
    cache = FeatureCache(demo_data, 90, 12, None, 90)
    end = pd.Timestamp("2024-06-30 23:59:59.999999")
    assert cache.features(end) is cache.features(end)
    d = churn.define(demo_data)
    frame = cache.frame(end, d, labelled=True)
    assert len(frame.X) == len(frame.y) and set(frame.y) == {0, 1}
    unlabelled = cache.frame(end, d, labelled=False)
    assert unlabelled.y is None and unlabelled.X["customer_id"].equals(frame.X["customer_id"])
    cache.forget_before(end + pd.Timedelta(days=1))
    assert cache._features == {}


def test_no_leakage_changing_data_after_cutoff_changes_no_feature(
    demo_data: cxkit.CXData,
) -> None:
    cutoff = pd.Timestamp("2024-06-30")
    before = churn.features(demo_data, cutoff)
    mutated = mutate_after(demo_data, cutoff + pd.Timedelta(days=1), seed=3)
    after = churn.features(mutated, cutoff)
    assert {"bgnbd_p_alive", "theme_delivery_n", "last_touch_channel"} <= set(before.columns)
    pd.testing.assert_frame_equal(before, after)
    # and the mutation is real: features at a later cutoff do change
    later = pd.Timestamp("2024-12-31")
    assert not churn.features(demo_data, later, bgnbd=False).equals(
        churn.features(mutated, later, bgnbd=False)
    )


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 10_000),
    cutoff_day=st.integers(20, 80),
)
def test_no_leakage_property(seed: int, cutoff_day: int) -> None:
    """Random small tables: rewriting every row after a random cutoff changes no feature."""
    rng = np.random.default_rng(seed)
    start = pd.Timestamp("2024-01-01")

    def stamps(n: int) -> pd.Series:
        return pd.Series(start + pd.to_timedelta(rng.uniform(0, 100, n), "D")).dt.round("us")

    ids = [f"c{i}" for i in range(12)]
    n_o, n_e, n_r = 40, 80, 20
    frames = {
        "orders": pd.DataFrame(
            {
                "order_id": [f"o{i}" for i in range(n_o)],
                "customer_id": rng.choice(ids, n_o),
                "ts": stamps(n_o),
                "amount": rng.gamma(2, 20, n_o).round(2),
                "channel": rng.choice(["web", "app"], n_o),
            }
        ),
        "events": pd.DataFrame(
            {
                "customer_id": rng.choice(ids, n_e),
                "ts": stamps(n_e),
                "event": rng.choice(["site_visit", "product_view", "support_contact"], n_e),
                "channel": rng.choice(["web", "app", "chat"], n_e),
            }
        ),
        "responses": pd.DataFrame(
            {
                "response_id": [f"r{i}" for i in range(n_r)],
                "customer_id": rng.choice(ids, n_r),
                "ts": stamps(n_r),
                "survey": rng.choice(["nps", "csat"], n_r),
                "score": rng.integers(1, 6, n_r),
                "comment": rng.choice(["late again", "great", None], n_r),
            }
        ),
    }
    cutoff = start + pd.Timedelta(days=cutoff_day)
    end = cutoff + pd.Timedelta(days=1)
    changed = {}
    for name, df in frames.items():
        df = df.copy()
        late = df["ts"] >= end
        df.loc[late, "customer_id"] = rng.choice(ids, int(late.sum()))
        df.loc[late, "ts"] = df.loc[late, "ts"] + pd.Timedelta(hours=7)
        if name == "orders":
            df.loc[late, "amount"] = 999.0
        if name == "responses":
            df.loc[late, "score"] = 0
            df.loc[late, "comment"] = "app crashes"
        changed[name] = df
    a = churn.features(cxkit.load(frames), cutoff)
    b = churn.features(cxkit.load(changed), cutoff)
    pd.testing.assert_frame_equal(a, b)


# --------------------------------------------------------------------------------------
# the same engine code on PostgreSQL and Spark
# --------------------------------------------------------------------------------------


def _engine_tables() -> dict[str, pd.DataFrame]:
    frames = feature_frames()
    more = pd.DataFrame(
        {
            "order_id": ["4", "5", "6"],
            "customer_id": ["b", "b", "c"],
            "ts": ts(["2024-02-10 09:30", "2024-05-20", "2024-03-30 18:00"]),
            "amount": [12.5, 8.0, 100.0],
            "channel": ["web", "store", "app"],
        }
    )
    frames["orders"] = pd.concat([frames["orders"], more], ignore_index=True)
    frames["customers"] = pd.DataFrame(
        {
            "customer_id": ["a", "b", "c"],
            "signup_at": ts(["2023-12-15", "2024-01-20", "2024-03-01"]),
            "region": ["north", "south", None],
        }
    )
    frames["events"]["event_id"] = ["e1", "e2", "e3"]
    return frames


def _engine_results(data: cxkit.CXData, *, quick: bool = False) -> dict[str, pd.DataFrame]:
    d = churn.define(data, horizon_days=60)
    if quick:  # Spark runs each small query slowly: features and one label set
        return {
            "features": churn.features(data, "2024-03-31", bgnbd=False),
            "labels": churn.labels(data, "2024-03-31", definition=d, check_window=False),
        }
    return {
        "features": churn.features(data, "2024-03-31", bgnbd=False),
        "labels": churn.labels(data, "2024-03-31", definition=d, check_window=False),
        "activity_labels": churn.labels(
            data, "2024-03-31", horizon_days=30, basis="activity", check_window=False
        ),
    }


def _assert_engine_matches(other: cxkit.CXData, *, quick: bool = False) -> None:
    ref = _engine_results(cxkit.load(_engine_tables()), quick=quick)
    got = _engine_results(other, quick=quick)
    for name, a in ref.items():
        pd.testing.assert_frame_equal(a, got[name], check_dtype=False, rtol=1e-9, obj=name)


@pytest.mark.postgres
@pytest.mark.slow
def test_churn_on_postgres_matches_duckdb(postgres_server: str) -> None:  # noqa: F811
    from tests.test_backends import into_postgres

    _assert_engine_matches(into_postgres(postgres_server, _engine_tables()))


@pytest.mark.spark
@pytest.mark.slow
def test_churn_on_spark_matches_duckdb(spark_session: object) -> None:  # noqa: F811
    from tests.test_backends import into_spark

    _assert_engine_matches(into_spark(spark_session, _engine_tables()), quick=True)


def test_feature_cache_holds_and_releases(demo_data: cxkit.CXData) -> None:
    cache = FeatureCache(demo_data, 90, 12, None, 90)
    a = pd.Timestamp("2024-06-30 23:59:59.999999")
    b = a + pd.Timedelta(days=30)
    first = cache.features(a)
    cache.features(b)
    with cache.holding(a):
        cache.release(a, b)  # a step is done with both; the caller still needs a
        assert cache.cutoffs == [a]
    assert cache.features(a) is first  # leaving the hold drops nothing
    cache.release(a)
    assert cache.cutoffs == [] and cache.built == [a, b] and cache.peak_frames == 2
    fit = cache.bgnbd_fit(a)  # kept after its features are released
    assert fit is not None and fit.ok and fit.cutoff == a and fit.note.startswith("BG/NBD r = ")
    assert fit.p_no_order_column == "bgnbd_p_no_order_90d" and fit.p_alive_column in first


def test_feature_cache_builds_only_the_population_with_the_public_features(
    demo_data: cxkit.CXData,
) -> None:
    """A frame's features are built for its population only, equal to features() rows."""
    d = churn.define(demo_data)
    end = pd.Timestamp("2024-06-30 23:59:59.999999")
    cache = FeatureCache(demo_data, 90, 12, None, 90)
    frame = cache.frame(end, d, labelled=True)
    lab = churn.labels(demo_data, end, definition=d)
    everyone = churn.features(demo_data, end)
    assert len(everyone) > len(lab)  # the population is a strict subset of the customers
    expected = lab[["customer_id"]].merge(everyone, on="customer_id", how="left")
    expected["customer_id"] = expected["customer_id"].astype(pd.StringDtype())
    pd.testing.assert_frame_equal(frame.X, expected, check_dtype=False)
    np.testing.assert_array_equal(frame.y, lab["churned"].to_numpy())
    assert cache.features(end) is frame.X  # the same rows in the same order: no copy


def _level_frames() -> dict[str, pd.DataFrame]:
    """Orders and events whose most frequent levels change between two cutoffs, with ties."""
    when = ["2024-01-05", "2024-01-06", "2024-01-07", "2024-01-08", "2024-02-10", "2024-02-11"]
    return {
        "orders": pd.DataFrame(
            {
                "order_id": [str(i) for i in range(6)],
                "customer_id": ["a", "b", "a", "c", "b", "c"],
                "ts": ts(when),
                "amount": [1.0] * 6,
                # at 2024-01-31: web 2, app 2 (a tie: by value), None left out; later web 3
                "channel": ["web", "app", "web", "app", "web", None],
            }
        ),
        "events": pd.DataFrame(
            {
                "customer_id": ["a", "b", "c", "a", "b", "c"],
                "ts": ts(when),
                "event": ["site_visit", "review", "review", "site_visit", "app_open", "app_open"],
                "channel": ["web", "web", "app", None, "store", "store"],
            }
        ),
    }


@pytest.mark.parametrize("source", ["hand", "demo"])
def test_level_sets_equal_the_levels_each_cutoff_finds(
    source: str, demo_data: cxkit.CXData
) -> None:
    """One grouped scan gives every cutoff the levels feature_table finds with its own queries."""
    if source == "hand":
        data = cxkit.load(_level_frames())
        ends = [
            pd.Timestamp(f"2024-{m}-{d} 23:59:59.999999")
            for m, d in (("01", 4), ("01", 31), ("02", 29))
        ]
    else:
        data = demo_data
        ends = [pd.Timestamp(f"2024-{m}-30 23:59:59.999999") for m in ("04", "06", "09")]
    sets = level_sets(data, ends, max_levels=2)
    for end in ends:
        _, info = churn.feature_table(data, end, max_levels=2)
        own = {k: v for k, v in info["levels"].items() if k != "themes"}
        assert sets[end] == own, end
    if source == "hand":  # the cases that matter: nothing yet, a tie by value, a change
        assert sets[ends[0]] == {"order_channel": [], "event": [], "event_channel": []}
        assert sets[ends[1]]["order_channel"] == ["app", "web"]
        assert sets[ends[2]]["order_channel"] == ["web", "app"]
        assert sets[ends[2]]["event"] == ["app_open", "review"]
        assert sets[ends[2]]["event_channel"] == ["store", "web"]


def test_feature_cache_with_expected_cutoffs_builds_the_same_features(
    demo_data: cxkit.CXData,
) -> None:
    d = churn.define(demo_data)
    a = pd.Timestamp("2024-06-30 23:59:59.999999")
    b = a + pd.Timedelta(days=90)
    planned = FeatureCache(demo_data, 90, 12, None, 90)
    planned.expect(a, b)
    plain = FeatureCache(demo_data, 90, 12, None, 90)
    for end in (b, a):
        pd.testing.assert_frame_equal(planned.features(end, d), plain.features(end, d))
    assert set(planned._levels) == {a, b}  # both found by the first build
    assert plain._levels == {}
