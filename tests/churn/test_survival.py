"""Tests of cxkit.churn.survival: time to churn, Kaplan–Meier with bands, the log-rank test.

Known values: the Freireich 6-MP leukaemia trial (Gehan 1965), whose Kaplan–Meier curve,
Greenwood standard errors and log-rank statistic are worked in every survival textbook
(Kleinbaum & Klein; R ``survdiff`` gives chi-square 16.8 on 1 df); scipy's ``ecdf`` and
``logrank`` on random data; and simulations of the bands' coverage.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest
from scipy import stats as sps
from scipy.stats import CensoredData

import cxkit
from cxkit import churn
from cxkit.churn import survival as sv
from cxkit.errors import DataError, NotAvailableError, UsageError
from tests.backends import postgres_server, spark_session  # noqa: F401 - fixtures
from tests.churn.helpers import ts
from tests.collects import Collects

# 6-MP arm (negative = censored, in weeks) and placebo arm (all relapsed)
SIX_MP = [6, 6, 6, -6, 7, -9, 10, -10, -11, 13, 16, -17, -19, -20, 22, 23, -25, -32, -32, -34, -35]
PLACEBO = [1, 1, 2, 2, 3, 4, 4, 5, 5, 8, 8, 8, 8, 11, 11, 12, 12, 15, 17, 22, 23]


def _arm(values: list[int]) -> tuple[np.ndarray, np.ndarray]:
    return np.abs(values).astype(float), np.array([v > 0 for v in values])


# ---- Kaplan–Meier ---------------------------------------------------------------------


def test_kaplan_meier_by_hand():
    # times 1 2 2+ 3 4+ 5: at risk 6, 5, 3, 1 at the churn times 1, 2, 3, 5
    km = sv.kaplan_meier([1, 2, 2, 3, 4, 5], [1, 1, 0, 1, 0, 1])
    assert km.time_days.tolist() == [1, 2, 3, 5]
    assert km.at_risk.tolist() == [6, 5, 3, 1] and km.churned.tolist() == [1, 1, 1, 1]
    s = [5 / 6, 5 / 6 * 4 / 5, 5 / 6 * 4 / 5 * 2 / 3, 0.0]
    assert km.survival.tolist() == pytest.approx(s)
    # Greenwood at t = 3: S² · (1/(6·5) + 1/(5·4) + 1/(3·2))
    g3 = 1 / 30 + 1 / 20 + 1 / 6
    assert km.std_err[2] == pytest.approx(s[2] * np.sqrt(g3))
    # log-log band at t = 3: S ** exp(∓ z · sqrt(g) / |log S|)
    sigma = np.sqrt(g3) / abs(np.log(s[2]))
    z = sps.norm.ppf(0.975)
    assert km.ci_low[2] == pytest.approx(s[2] ** np.exp(z * sigma))
    assert km.ci_high[2] == pytest.approx(s[2] ** np.exp(-z * sigma))
    assert np.isnan(km.ci_low[3]) and np.isnan(km.ci_high[3])  # no band at S = 0
    assert sv.median_time(km)[0] == 3.0  # the first time S <= 0.5
    read = sv.survival_at(km, [0, 1, 2.5, 10])
    assert read.survival.tolist() == pytest.approx([1.0, s[0], s[1], 0.0])
    assert read.ci_low[0] == 1.0 and read.ci_high[0] == 1.0


def test_kaplan_meier_known_values_6mp():
    t, e = _arm(SIX_MP)
    km = sv.kaplan_meier(t, e)
    assert km.time_days.tolist() == [6, 7, 10, 13, 16, 22, 23]
    assert km.survival.round(3).tolist() == [0.857, 0.807, 0.753, 0.690, 0.627, 0.538, 0.448]
    assert km.std_err.round(4).tolist() == [0.0764, 0.0869, 0.0963, 0.1068, 0.1141, 0.1282, 0.1346]
    med, lo, hi = sv.median_time(km)
    assert (med, lo) == (23.0, 13.0) and np.isnan(hi)  # the band never falls to 50%
    assert sv.median_time(sv.kaplan_meier(*_arm(PLACEBO)))[0] == 8.0


def test_kaplan_meier_and_band_match_scipy():
    rng = np.random.default_rng(3)
    t = np.round(rng.exponential(50, 400))  # whole days: many ties
    c = np.round(rng.uniform(0, 120, 400))
    d, e = np.minimum(t, c), t <= c
    km = sv.kaplan_meier(d, e)
    ref = sps.ecdf(CensoredData(uncensored=d[e], right=d[~e])).sf
    band = ref.confidence_interval(0.95, method="log-log")
    at = np.isin(ref.quantiles, km.time_days)
    assert km.time_days.tolist() == ref.quantiles[at].tolist()
    np.testing.assert_allclose(km.survival, ref.probabilities[at])
    ok = km.survival.to_numpy() > 0
    np.testing.assert_allclose(km.ci_low[ok], band.low.probabilities[at][ok], rtol=1e-9)
    np.testing.assert_allclose(km.ci_high[ok], band.high.probabilities[at][ok], rtol=1e-9)


def test_kaplan_meier_input_checks():
    with pytest.raises(DataError, match="durations must be finite and >= 0"):
        sv.kaplan_meier([1.0, -2.0], [1, 1])
    with pytest.raises(UsageError, match="of one length"):
        sv.kaplan_meier([1.0, 2.0], [1])
    with pytest.raises(UsageError, match="level must be strictly between 0 and 1, got 95"):
        sv.kaplan_meier([1.0], [1], level=95)
    assert sv.kaplan_meier([], []).empty


# ---- the log-rank test ----------------------------------------------------------------


def test_logrank_known_value_6mp_against_placebo():
    (t1, e1), (t2, e2) = _arm(SIX_MP), _arm(PLACEBO)
    r = sv.logrank_test(np.r_[t1, t2], np.r_[e1, e2], ["6-MP"] * 21 + ["placebo"] * 21)
    assert r.statistic == pytest.approx(16.79, abs=0.005) and r.dof == 1
    assert r.p_value == pytest.approx(4.17e-5, rel=0.01)
    assert r.table.observed.tolist() == [9, 21]
    assert r.table.expected.round(2).tolist() == [19.25, 10.75]


def test_logrank_two_groups_matches_scipy():
    rng = np.random.default_rng(11)
    t = np.round(np.r_[rng.exponential(40, 150), rng.exponential(55, 120)])
    c = np.round(rng.uniform(0, 150, 270))
    d, e = np.minimum(t, c), t <= c
    g = np.array(["a"] * 150 + ["b"] * 120)
    ours = sv.logrank_test(d, e, g)
    x = CensoredData(uncensored=d[:150][e[:150]], right=d[:150][~e[:150]])
    y = CensoredData(uncensored=d[150:][e[150:]], right=d[150:][~e[150:]])
    ref = sps.logrank(x, y)
    assert ours.statistic == pytest.approx(float(ref.statistic) ** 2, rel=1e-9)
    assert ours.p_value == pytest.approx(float(ref.pvalue), rel=1e-9)


def _logrank_by_loop(d: np.ndarray, e: np.ndarray, g: np.ndarray) -> float:
    """The k-group statistic straight from the textbook, one event time at a time."""
    labels = sorted(set(g))
    k = len(labels)
    u, v = np.zeros(k), np.zeros((k, k))
    for t in sorted(set(d[e])):
        n = np.array([((d >= t) & (g == lab)).sum() for lab in labels], dtype=float)
        dj = np.array([((d == t) & e & (g == lab)).sum() for lab in labels], dtype=float)
        nt, dt = n.sum(), dj.sum()
        u += dj - n * dt / nt
        if nt > 1:
            v += dt * (nt - dt) / (nt**2 * (nt - 1)) * (nt * np.diag(n) - np.outer(n, n))
    return float(u[:-1] @ np.linalg.solve(v[:-1, :-1], u[:-1]))


def test_logrank_three_groups_against_the_textbook_loop():
    rng = np.random.default_rng(5)
    t = np.round(np.r_[rng.exponential(30, 60), rng.exponential(45, 50), rng.exponential(60, 40)])
    c = np.round(rng.uniform(0, 100, 150))
    d, e = np.minimum(t, c), t <= c
    g = np.array(["x"] * 60 + ["y"] * 50 + ["z"] * 40)
    r = sv.logrank_test(d, e, g)
    assert r.dof == 2
    assert r.statistic == pytest.approx(_logrank_by_loop(d, e, g), rel=1e-9)
    # the statistic does not depend on the groups' names (which one is left out)
    renamed = sv.logrank_test(d, e, np.where(g == "x", "w", np.where(g == "z", "a", g)))
    assert renamed.statistic == pytest.approx(r.statistic, rel=1e-9)
    with pytest.raises(UsageError, match="at least two groups, got 1"):
        sv.logrank_test(d, e, np.full(150, "x"))


# ---- coverage by simulation -------------------------------------------------------------


def test_band_and_median_interval_cover_the_true_survival():
    """Exponential lifetimes (mean 100 days), uniform censoring: ~95% coverage."""
    rng = np.random.default_rng(2026)
    reps, n, mean = 400, 300, 100.0
    fixed = np.array([30.0, 70.0, 140.0])
    truth = np.exp(-fixed / mean)
    covered = np.zeros((reps, len(fixed)), dtype=bool)
    median_covered = np.zeros(reps, dtype=bool)
    for i in range(reps):
        t, c = rng.exponential(mean, n), rng.uniform(0, 250, n)
        km = sv.kaplan_meier(np.minimum(t, c), t <= c)
        read = sv.survival_at(km, fixed)
        covered[i] = (read.ci_low <= truth) & (truth <= read.ci_high)
        _, lo, hi = sv.median_time(km)
        median_covered[i] = lo <= mean * np.log(2) <= hi
    tol = 3.5 * np.sqrt(0.95 * 0.05 / reps)  # binomial tolerance of 400 replicates
    assert np.all(np.abs(covered.mean(axis=0) - 0.95) < tol), covered.mean(axis=0)
    # the median's interval reads the band at a step function: a little conservative
    assert 0.95 - tol < median_covered.mean() < 0.99, median_covered.mean()


# ---- durations from the data, by the churn definition -----------------------------------


def _orders(rows: list[tuple[str, str]]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "order_id": [str(i) for i in range(len(rows))],
            "customer_id": [c for c, _ in rows],
            "ts": ts([d for _, d in rows]),
            "amount": 1.0,
        }
    )


def test_durations_hand_worked():
    orders = _orders(
        [
            ("a", "2024-01-01"), ("a", "2024-01-11"), ("a", "2024-02-20"),  # 40-day gap
            ("b", "2024-01-05"),  # never back: churns at its first order
            ("c", "2024-01-01"), ("c", "2024-01-31"), ("c", "2024-03-01"),  # gaps of 30
            ("d", "2024-01-10"), ("d", "2024-02-05"), ("d", "2024-03-05"),  # still active
            ("e", "2024-03-20"),  # first order less than 30 days before as_of: left out
        ]
    )  # fmt: skip
    data = cxkit.load({"orders": orders})
    d = sv.churn_durations(data, horizon_days=30, as_of="2024-03-31 12:00")
    assert d.customer_id.tolist() == ["a", "b", "c", "d"]
    # a: nothing within 30 days of 11 January; b: of 5 January; c: a gap of exactly 30
    # days is not a lapse, so c churns at its last order (1 March + 30 <= as_of)
    assert d.churned.tolist() == [1, 1, 1, 0]
    assert d.duration_days.tolist()[:3] == [10.0, 0.0, 60.0]
    # d: censored at as_of - 30 days (1 March 12:00), 51.5 days after 10 January
    assert d.duration_days[3] == pytest.approx(51.5)
    assert d.start_ts.tolist() == list(ts(["2024-01-01", "2024-01-05", "2024-01-01", "2024-01-10"]))
    assert d.group.unique().tolist() == [sv.ALL_CUSTOMERS]
    # activity basis: an event inside the gap keeps a active until it
    events = pd.DataFrame({"customer_id": ["a"], "ts": ts(["2024-01-30"]), "event": ["site_visit"]})
    data2 = cxkit.load({"orders": orders, "events": events})
    d2 = sv.churn_durations(data2, horizon_days=30, basis="activity", as_of="2024-03-31 12:00")
    a = d2.set_index("customer_id").loc["a"]
    assert (a.churned, a.duration_days) == (1, 50.0)  # the lapse after 20 February


def test_durations_follow_the_churn_labels(demo_data):
    """A customer not yet churned at a cutoff is labelled a stayer there, and vice versa."""
    definition = churn.define(demo_data, horizon_days=90)
    d = sv.churn_durations(demo_data, definition=definition)
    end = cxkit.resolve_as_of(demo_data, None)
    d["churn_at"] = d.start_ts + pd.to_timedelta(d.duration_days, unit="D")
    for cutoff in (end - pd.Timedelta(days=400), end - pd.Timedelta(days=200)):
        lab = churn.labels(demo_data, cutoff, definition=definition)
        started = d[d.start_ts <= cutoff]
        assert set(lab.customer_id) == set(started.customer_id)  # the same population
        m = started.merge(lab, on="customer_id", suffixes=("", "_label"))
        alive = (m.churned == 0) | (m.churn_at > cutoff)
        assert (m.churned_label[alive] == 0).all()
        assert (m.churned_label[~alive] == 1).sum() > 0
    # at its churn time (the last order before the lapse) a churner is labelled churned
    some = d[(d.churned == 1) & (d.duration_days > 0)].head(5)
    for row in some.itertuples():
        # (durations are whole seconds: one second later is on or after that order)
        at = (row.start_ts + pd.Timedelta(days=row.duration_days, seconds=1)).round("us")
        lab = churn.labels(demo_data, at, definition=definition).set_index("customer_id")
        assert lab.loc[row.customer_id, "churned"] == 1


def test_contractual_durations():
    customers = pd.DataFrame(
        {
            "customer_id": ["a", "b", "c"],
            "signup_at": ts(["2024-01-01", "2024-01-11", "2024-03-01"]),
            "churned_at": ts(["2024-02-01", None, "2024-04-15"]),  # c churns after as_of
        }
    )
    data = cxkit.load({"customers": customers})
    d = sv.churn_durations(data, as_of="2024-03-31 00:00:00.5")
    assert d.churned.tolist() == [1, 0, 0]
    assert d.duration_days.round(4).tolist() == [31.0, 80.0, 30.0]


def test_breakdowns_and_missing_parts(demo_data, demo_dir):
    r = churn.time_to_churn(demo_data, by="no_such_column")
    assert r.by is None and r.logrank is None and "no_such_column" in r.not_available[0]
    with pytest.raises(UsageError, match="by must be None, a customers column name"):
        churn.time_to_churn(demo_data, by=3)
    with pytest.raises(NotAvailableError, match="orders"):
        churn.time_to_churn(
            cxkit.load({"events": pd.DataFrame({"customer_id": ["a"], "ts": ts(["2024-01-01"]),
                                                "event": ["site_visit"]})}),
            basis="orders",
        )  # fmt: skip
    # persona labels as a Series: one curve per persona, the planted personas differ
    truth = pd.read_parquet(demo_dir / "_truth.parquet", columns=["customer_id", "persona"])
    by = truth.set_index("customer_id").persona
    rp = churn.time_to_churn(demo_data, by=by)
    assert rp.by == "persona"
    assert set(rp.summary.group[1:]) <= set(truth.persona) | {sv.MISSING_GROUP}
    assert rp.logrank is not None and rp.logrank.p_value < 0.05


def test_time_to_churn_on_the_demo_by_channel(demo_data):
    r = churn.time_to_churn(demo_data, by="acquisition_channel")
    d = r.durations
    channels = pd.Series(
        demo_data.table("customers").acquisition_channel.to_pandas().dropna().unique()
    )
    assert r.summary.group.tolist() == [sv.ALL_CUSTOMERS, *sorted(set(d.group))]
    assert set(d.group) <= set(channels) | {sv.MISSING_GROUP}
    assert r.summary.customers.iloc[0] == len(d) == r.summary.customers.iloc[1:].sum()
    for row in r.summary.itertuples():
        mask = np.ones(len(d), bool) if row.group == sv.ALL_CUSTOMERS else d.group == row.group
        km = sv.kaplan_meier(d.duration_days[mask], d.churned[mask])
        assert (row.median_days, row.churned) == (sv.median_time(km)[0], d.churned[mask].sum())
        if not np.isnan(row.median_days):
            assert row.median_days_low <= row.median_days <= row.median_days_high
    big = r.summary.iloc[1:][~r.summary.small_n.iloc[1:]]
    assert r.logrank is not None and r.logrank.dof == len(big) - 1
    assert r.logrank.table.customers.sum() == d.group.isin(big.group).sum()
    read = r.at_times[r.at_times.group == sv.ALL_CUSTOMERS]
    assert read.days.tolist() == list(sv.DEFAULT_TIMES)
    assert (read.ci_low <= read.survival).all() and (read.survival <= read.ci_high).all()
    # the sentences carry the medians with their interval and n, and the test's p
    o = r.overall
    assert f"n = {o.customers:,}" in r.takeaway() and "log-rank p" in r.takeaway()
    assert f"{o.median_days:,.0f} days" in r.overall_sentence()
    f = {x.metric: x for x in r.findings()}
    assert f["median_time_to_churn"].n == o.customers
    assert f["median_time_to_churn"].ci_low == o.median_days_low
    assert f["time_to_churn_by_group"].p_value == r.logrank.p_value


def test_survival_chart(demo_data):
    r = churn.time_to_churn(demo_data, by="acquisition_channel")
    fig = churn.survival_chart(r)
    assert isinstance(fig, go.Figure) and fig.layout.title.text == r.chart_title()
    big = r.summary.iloc[1:][~r.summary.small_n.iloc[1:]]
    lines = [t for t in fig.data if t.showlegend is not False]
    assert sorted(t.name for t in lines) == sorted(big.group)
    assert len(fig.data) == 3 * len(big)  # band top, band bottom (filled), line
    assert all(t.line.shape == "hv" for t in fig.data)
    g = big.group.iloc[0]
    line = next(t for t in lines if t.name == g)
    i = list(fig.data).index(line)
    lo, hi = np.asarray(fig.data[i - 1].y, float), np.asarray(fig.data[i - 2].y, float)
    y = np.asarray(line.y, float)
    assert y[0] == 100 and fig.data[i - 1].fill == "tonexty"
    assert np.all(lo[1:] <= y[1:] + 1e-9) and np.all(y[1:] <= hi[1:] + 1e-9)
    curve = r.curves[r.curves.group == g]
    want = 100 * sv.survival_at(curve, [30.0]).survival[0]
    assert y[1 + 30] == pytest.approx(want)  # one point a day after the leading (0, 100%)
    one = churn.survival_chart(churn.time_to_churn(demo_data))
    assert [t.name for t in one.data if t.showlegend is not False] == [sv.ALL_CUSTOMERS]


# ---- the same engine code on PostgreSQL and Spark ---------------------------------------


def _engine_tables() -> dict[str, pd.DataFrame]:
    orders = _orders(
        [
            ("a", "2024-01-01 08:00"), ("a", "2024-01-11 09:30"), ("a", "2024-02-20 10:00"),
            ("b", "2024-01-05 12:00"), ("c", "2024-01-01 00:00"), ("c", "2024-01-31 00:00"),
            ("c", "2024-03-01 00:00"), ("d", "2024-01-10 07:15"), ("d", "2024-02-05 07:15"),
            ("d", "2024-03-05 23:00"), ("e", "2024-03-20 13:00"),
        ]
    )  # fmt: skip
    events = pd.DataFrame(
        {
            "event_id": ["e1", "e2"],
            "customer_id": ["a", "b"],
            "ts": ts(["2024-01-30 10:00", "2024-01-20 10:00"]),
            "event": ["site_visit", "site_visit"],
        }
    )
    customers = pd.DataFrame(
        {"customer_id": list("abcde"), "acquisition_channel": list("xxyy" + "x")}
    )
    return {"orders": orders, "events": events, "customers": customers}


def _engine_durations(data: cxkit.CXData) -> dict[str, pd.DataFrame]:
    as_of = "2024-03-31 12:00"
    return {
        "orders": sv.churn_durations(data, horizon_days=30, as_of=as_of, by="acquisition_channel"),
        "activity": sv.churn_durations(data, horizon_days=30, basis="activity", as_of=as_of),
    }


def _assert_engine_matches(other: cxkit.CXData) -> None:
    ref = _engine_durations(cxkit.load(_engine_tables()))
    got = _engine_durations(other)
    for name, a in ref.items():
        pd.testing.assert_frame_equal(a, got[name], check_dtype=False, rtol=1e-9, obj=name)


@pytest.mark.postgres
@pytest.mark.slow
def test_durations_on_postgres_match_duckdb(postgres_server: str) -> None:  # noqa: F811
    from tests.test_backends import into_postgres

    _assert_engine_matches(into_postgres(postgres_server, _engine_tables()))


@pytest.mark.spark
@pytest.mark.slow
def test_durations_on_spark_match_duckdb(spark_session: object) -> None:  # noqa: F811
    from tests.test_backends import into_spark

    _assert_engine_matches(into_spark(spark_session, _engine_tables()))


def test_sentences_when_most_never_return_or_most_stay():
    # 40 customers with one order each, 10 with a second order 5 days later: S(0) = 0.2
    rows = [(f"o{i}", "2024-01-01") for i in range(40)]
    rows += [(f"r{i}", "2024-01-01") for i in range(10)] + [
        (f"r{i}", "2024-01-06") for i in range(10)
    ]
    r = sv.time_to_churn(cxkit.load({"orders": _orders(rows)}), horizon_days=30, as_of="2024-06-30")
    assert r.overall.median_days == 0
    assert r.overall_sentence() == (
        "More than half of customers churn right after their first order: no further order "
        "within 30 days (n = 50)."
    )
    assert r.chart_title() == "More than half of customers have no further order within 30 days"
    # contracts that mostly run on: the median is not reached
    customers = pd.DataFrame(
        {
            "customer_id": [f"c{i}" for i in range(40)],
            "signup_at": ts(["2024-01-01"] * 40),
            "churned_at": ts(["2024-02-01"] * 5 + [None] * 35),
        }
    )
    rc = sv.time_to_churn(cxkit.load({"customers": customers}), as_of="2024-06-30")
    assert np.isnan(rc.overall.median_days) and rc.overall.churned == 5
    assert rc.overall_sentence() == (
        "More than half of customers have not churned by the end of follow-up (n = 40)."
    )
    f = rc.findings()[0]
    assert f.metric == "median_time_to_churn" and f.ci_low is None and f.ci_high is None


def test_small_groups_stay_out_of_the_test_and_the_chart():
    rows = []
    for g, n, gap in (("big1", 40, 10), ("big2", 40, 50), ("tiny", 5, 10)):
        for i in range(n):
            rows += [(f"{g}-{i}", "2024-01-01"), (f"{g}-{i}", f"2024-01-{1 + gap % 30:02d}")]
    orders = _orders(rows)
    groups = pd.Series({c: c.split("-")[0] for c in orders.customer_id}, name="segment")
    data = cxkit.load({"orders": orders})
    r = sv.time_to_churn(data, by=groups, horizon_days=30, as_of="2024-06-30")
    assert r.summary.set_index("group").small_n.to_dict() == {
        sv.ALL_CUSTOMERS: False, "big1": False, "big2": False, "tiny": True
    }  # fmt: skip
    assert r.logrank is not None and r.logrank.table.group.tolist() == ["big1", "big2"]
    names = [t.name for t in sv.survival_chart(r).data if t.showlegend is not False]
    assert names == ["big1", "big2"]
    # without big2 only one group is large enough (its customers are not "(missing)" here)
    no_big2 = cxkit.load({"orders": orders[~orders.customer_id.str.startswith("big2")]})
    only_one = sv.time_to_churn(no_big2, by=groups, horizon_days=30, as_of="2024-06-30")
    assert only_one.logrank is None
    assert "at least two groups of 30 or more customers" in only_one.not_available[-1]


def test_durations_are_queried_once_per_data_and_definition(demo_data, monkeypatch):
    """The report's two time_to_churn calls (breakdown, then persona) share one query."""
    data = demo_data.upto(None)  # a data object of its own: no memo from other tests
    calls = []
    real = sv.duration_table

    def counting(*args, **kwargs):
        calls.append(kwargs["definition"].horizon_days)
        return real(*args, **kwargs)

    monkeypatch.setattr(sv, "duration_table", counting)
    plain = churn.time_to_churn(data)
    by = churn.time_to_churn(data, by="acquisition_channel", definition=plain.definition)
    again = churn.time_to_churn(data, definition=plain.definition)
    assert calls == [90]
    pd.testing.assert_frame_equal(again.durations, plain.durations)
    pd.testing.assert_frame_equal(
        by.durations.drop(columns="group"), plain.durations.drop(columns="group")
    )
    assert (plain.durations.group == sv.ALL_CUSTOMERS).all()  # the breakdown did not leak in
    fresh = churn.time_to_churn(demo_data.upto(None), definition=plain.definition)
    pd.testing.assert_frame_equal(fresh.summary, plain.summary)
    churn.time_to_churn(data, horizon_days=60)  # another definition: queried again
    assert calls == [90, 90, 60]


# --------------------------------------------------------------------------------------
# counted rows (weights) and scale mode
# --------------------------------------------------------------------------------------


def test_weights_are_repeated_rows() -> None:
    rng = np.random.default_rng(5)
    t = rng.integers(1, 40, 300).astype(float)
    e = rng.random(300) < 0.6
    g = rng.choice(["a", "b", "c"], 300)
    w = rng.integers(1, 4, 300)
    rep = np.repeat(np.arange(300), w)
    pd.testing.assert_frame_equal(sv.kaplan_meier(t, e, weights=w), sv.kaplan_meier(t[rep], e[rep]))
    a, b = sv.logrank_test(t, e, g, weights=w), sv.logrank_test(t[rep], e[rep], g[rep])
    assert a.statistic == pytest.approx(b.statistic, rel=1e-12)
    pd.testing.assert_frame_equal(a.table, b.table)
    with pytest.raises(UsageError, match="weights must be 300 whole numbers"):
        sv.kaplan_meier(t, e, weights=w + 0.5)


def test_scale_mode_counts_in_the_engine_and_matches_memory_mode(
    demo_data: cxkit.CXData, monkeypatch: pytest.MonkeyPatch
) -> None:
    memory = sv.time_to_churn(demo_data, by="acquisition_channel", mode="memory")
    collects = Collects(monkeypatch)
    scaled = sv.time_to_churn(demo_data, by="acquisition_channel", mode="scale")
    assert scaled.counts is not None and scaled.durations.empty
    # the counts, not the customers: the largest result is the counts table itself
    assert collects.largest() == len(scaled.counts) < len(memory.durations)
    assert scaled.resolution_days == sv.SCALE_RESOLUTION_DAYS
    m, s = memory.summary, scaled.summary
    assert m.group.tolist() == s.group.tolist()
    assert m.customers.tolist() == s.customers.tolist()  # exact: counted, not sampled
    assert m.churned.tolist() == s.churned.tolist()
    half = sv.SCALE_RESOLUTION_DAYS / 2  # each duration moves by at most this
    for col in ("median_days", "median_days_low", "median_days_high", "followup_days"):
        np.testing.assert_allclose(s[col], m[col], atol=half + 1e-9, err_msg=col)
    read = memory.at_times.merge(scaled.at_times, on=["group", "days"], suffixes=("", "_s"))
    assert (read.survival - read.survival_s).abs().max() < 0.01
    assert memory.logrank is not None and scaled.logrank is not None
    assert scaled.logrank.statistic == pytest.approx(memory.logrank.statistic, rel=0.01)
