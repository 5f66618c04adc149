"""CLV: RFM summaries, BG/NBD, Gamma-Gamma, CLV and validation helpers.

Published figures: Fader, Hardie & Lee (2005) and Fader & Hardie (2013) on the CDNOW
sample (../shared/data/cdnow/README.md, FIELD_NOTES "CLV on CDNOW").
"""

from __future__ import annotations

import json
import math
import warnings

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import special
from sklearn.exceptions import NotFittedError

import cxkit
from cxkit import clv, datasets
from cxkit.errors import ConvergenceError, DataError, UsageError
from cxkit.findings import Finding

CAL_END = "1997-09-30"
OBS_END = "1998-06-30"


# ----------------------------------------------------------------------------------------
# fixtures
# ----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cdnow_summary() -> pd.DataFrame:
    data = datasets.cdnow(sample=True)
    return clv.rfm_summary(data, calibration_end=CAL_END, observation_end=OBS_END, time_unit="W")


@pytest.fixture(scope="module")
def cdnow_bg(cdnow_summary: pd.DataFrame) -> clv.BetaGeo:
    return clv.BetaGeo().fit(cdnow_summary)


@pytest.fixture(scope="module")
def cdnow_gg(cdnow_summary: pd.DataFrame) -> clv.GammaGamma:
    return clv.GammaGamma().fit(cdnow_summary)


def _orders(rows: list[tuple[str, str, float]]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "customer_id": [r[0] for r in rows],
            "ts": pd.to_datetime([r[1] for r in rows]),
            "amount": [r[2] for r in rows],
        }
    )


# ----------------------------------------------------------------------------------------
# RFM summary
# ----------------------------------------------------------------------------------------

TINY = [
    ("a", "2024-01-01 09:00", 10.0),
    ("a", "2024-01-01 17:00", 5.0),  # same day: merged into one purchase of 15
    ("a", "2024-01-15 12:00", 20.0),
    ("a", "2024-01-29 12:00", 40.0),
    ("b", "2024-01-08 00:00", 7.0),
    ("c", "2024-02-05 10:00", 3.0),  # first purchase after calibration end
    ("a", "2024-02-12 10:00", 8.0),  # holdout
    ("a", "2024-02-12 11:00", 2.0),  # holdout, same day
    ("b", "2024-02-19 10:00", 6.0),  # holdout
]


def test_rfm_summary_hand_worked_days() -> None:
    s = clv.rfm_summary(_orders(TINY[:5]), observation_end="2024-02-04", time_unit="D")
    expected = pd.DataFrame(
        {
            "customer_id": pd.array(["a", "b"], dtype="string"),
            "frequency": [2, 0],
            "recency": [28.0, 0.0],
            "T": [34.0, 27.0],
            "monetary_value": [30.0, 0.0],  # mean of the repeat days (20 + 40) / 2
        }
    )
    pd.testing.assert_frame_equal(s, expected)
    assert s.attrs["time_unit"] == "D"
    assert s.attrs["observation_end"] == "2024-02-04"


def test_rfm_summary_weeks_and_holdout() -> None:
    s = clv.rfm_summary(
        _orders(TINY), calibration_end="2024-02-04", observation_end="2024-02-25", time_unit="W"
    )
    assert s.customer_id.tolist() == ["a", "b"]  # c was born in the holdout
    assert s.recency.tolist() == [4.0, 0.0]
    assert s["T"].tolist() == [34 / 7, 27 / 7]
    assert s.holdout_frequency.tolist() == [1, 1]  # a's two holdout orders are one day
    assert s.holdout_monetary_value.tolist() == [10.0, 6.0]
    assert s.holdout_duration.tolist() == [3.0, 3.0]
    assert s.attrs["calibration_end"] == "2024-02-04"


def test_rfm_summary_accepts_cxdata_table_and_frame() -> None:
    frame = _orders(TINY)
    frame.insert(0, "order_id", [f"o{i}" for i in range(len(frame))])
    data = cxkit.load({"orders": frame})
    a = clv.rfm_summary(data, observation_end="2024-03-01")
    b = clv.rfm_summary(data.table("orders"), observation_end="2024-03-01")
    c = clv.rfm_summary(frame, observation_end="2024-03-01")
    pd.testing.assert_frame_equal(a, b)
    pd.testing.assert_frame_equal(a, c)
    # Default observation end: the data's latest order (or its as_of).
    d = clv.rfm_summary(data.upto("2024-02-20"))
    assert d.attrs["observation_end"] == "2024-02-20"


def test_rfm_summary_expr_is_lazy() -> None:
    expr = clv.rfm_summary_expr(_orders(TINY), observation_end="2024-03-01")
    assert set(expr.columns) == {"customer_id", "frequency", "recency", "T", "monetary_value"}


def test_rfm_summary_bad_options() -> None:
    with pytest.raises(UsageError, match="time_unit must be 'D' or 'W', got 'M'"):
        clv.rfm_summary(_orders(TINY), time_unit="M")
    with pytest.raises(UsageError, match=r"calibration_end .* must be before observation_end"):
        clv.rfm_summary(_orders(TINY), calibration_end="2024-03-01", observation_end="2024-02-01")
    with pytest.raises(DataError, match=r"missing column\(s\) \['amount'\]"):
        clv.rfm_summary(_orders(TINY).drop(columns="amount"))


@settings(max_examples=15, deadline=None)
@given(
    rows=st.lists(
        st.tuples(st.sampled_from("abc"), st.integers(0, 60), st.integers(0, 23), st.floats(0, 50)),
        min_size=1,
        max_size=25,
    )
)
def test_rfm_summary_invariants(rows: list[tuple[str, int, int, float]]) -> None:
    start = pd.Timestamp("2024-01-01")
    orders = pd.DataFrame(
        {
            "customer_id": [r[0] for r in rows],
            "ts": [start + pd.Timedelta(days=r[1], hours=r[2]) for r in rows],
            "amount": [round(r[3], 2) for r in rows],
        }
    )
    s = clv.rfm_summary(orders, observation_end="2024-03-15", time_unit="D")
    days = orders.assign(day=orders.ts.dt.normalize()).drop_duplicates(["customer_id", "day"])
    assert len(s) == orders.customer_id.nunique()
    assert int(s.frequency.sum()) + len(s) == len(days)  # every purchase day counted once
    assert (s.recency <= s["T"]).all() and (s.recency >= 0).all()
    assert ((s.frequency == 0) == (s.recency == 0)).all()
    assert (s.monetary_value >= 0).all()
    assert (s.loc[s.frequency == 0, "monetary_value"] == 0).all()


# ----------------------------------------------------------------------------------------
# CDNOW: the published figures
# ----------------------------------------------------------------------------------------


def test_cdnow_summary_counts(cdnow_summary: pd.DataFrame) -> None:
    assert len(cdnow_summary) == 2_357
    assert cdnow_summary.frequency.sum() == 2_457
    assert (cdnow_summary.frequency > 0).sum() == 946
    assert cdnow_summary.holdout_duration.iloc[0] == 39.0


@pytest.mark.parametrize(
    ("name", "published"), [("r", 0.2426), ("alpha", 4.4136), ("a", 0.7929), ("b", 2.4259)]
)
def test_cdnow_bgnbd_parameters(cdnow_bg: clv.BetaGeo, name: str, published: float) -> None:
    assert cdnow_bg.params_[name] == pytest.approx(published, rel=0.005)


def test_cdnow_bgnbd_log_likelihood(cdnow_bg: clv.BetaGeo) -> None:
    assert cdnow_bg.log_likelihood_ == pytest.approx(-9582.43, abs=0.1)
    assert cdnow_bg.n_customers_ == 2_357
    assert cdnow_bg.n_repeaters_ == 946
    assert cdnow_bg.time_unit_ == "W"
    assert (cdnow_bg.standard_errors_ > 0).all()


@pytest.mark.parametrize(("name", "published"), [("p", 6.25), ("q", 3.74), ("gamma", 15.44)])
def test_cdnow_gamma_gamma_parameters(
    cdnow_gg: clv.GammaGamma, name: str, published: float
) -> None:
    assert cdnow_gg.params_[name] == pytest.approx(published, rel=0.005)
    assert cdnow_gg.n_customers_ == 946


def test_cdnow_fit_is_fast(cdnow_summary: pd.DataFrame) -> None:
    import time

    start = time.perf_counter()
    clv.BetaGeo().fit(cdnow_summary)
    assert time.perf_counter() - start < 2.0


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


# ----------------------------------------------------------------------------------------
# BG/NBD predictions
# ----------------------------------------------------------------------------------------


def _direct_expected(params: pd.Series, t: float, x, tx, T) -> np.ndarray:
    """FHL (2005) eq. (10) as printed, without the Euler transformation."""
    r, alpha, a, b = params
    x, tx, T = (np.asarray(v, dtype=float) for v in (x, tx, T))
    z = t / (alpha + T + t)
    hyp = special.hyp2f1(r + x, b + x, a + b + x - 1, z)
    num = (a + b + x - 1) / (a - 1) * (1 - ((alpha + T) / (alpha + T + t)) ** (r + x) * hyp)
    den = 1 + (x > 0) * a / (b + x - 1) * ((alpha + T) / (alpha + tx)) ** (r + x)
    return num / den


def test_expected_purchases_matches_the_paper_formula(cdnow_bg: clv.BetaGeo) -> None:
    frame = pd.DataFrame(
        {"frequency": [0, 1, 3, 10], "recency": [0.0, 5.0, 20.0, 30.0], "T": [38.0] * 4}
    )
    got = cdnow_bg.expected_purchases(39, frame)
    want = _direct_expected(cdnow_bg.params_, 39, frame.frequency, frame.recency, frame["T"])
    np.testing.assert_allclose(got, want, rtol=1e-9)
    # A customer with no history and T = 0 is a new customer.
    new = cdnow_bg.expected_purchases_new([39.0])
    at_zero = cdnow_bg.expected_purchases(39, {"frequency": 0, "recency": 0.0, "T": 0.0})
    np.testing.assert_allclose(new, at_zero)


def test_expected_purchases_new_matches_unconditional_formula(cdnow_bg: clv.BetaGeo) -> None:
    r, alpha, a, b = cdnow_bg.params_
    t = np.array([1.0, 10.0, 52.0])
    z = t / (alpha + t)
    want = (
        (a + b - 1)
        / (a - 1)
        * (1 - (alpha / (alpha + t)) ** r * special.hyp2f1(r, b, a + b - 1, z))
    )
    np.testing.assert_allclose(cdnow_bg.expected_purchases_new(t), want, rtol=1e-9)


def test_p_alive(cdnow_bg: clv.BetaGeo, cdnow_summary: pd.DataFrame) -> None:
    pa = cdnow_bg.p_alive(cdnow_summary)
    assert ((pa >= 0) & (pa <= 1)).all()
    assert (pa[cdnow_summary.frequency.to_numpy() == 0] == 1).all()
    # Same frequency, more recent last purchase -> more likely alive.
    two = pd.DataFrame({"frequency": [3, 3], "recency": [10.0, 35.0], "T": [38.0, 38.0]})
    lo, hi = cdnow_bg.p_alive(two)
    assert lo < hi


@settings(max_examples=60, deadline=None)
@given(
    x=st.integers(0, 500),
    frac=st.floats(0, 1),
    T=st.floats(0.5, 200),
    t1=st.floats(0.1, 100),
    dt=st.floats(0.1, 100),
)
def test_predictions_are_valid(x: int, frac: float, T: float, t1: float, dt: float) -> None:
    bg = _fixed_bg()
    row = {"frequency": x, "recency": frac * T if x else 0.0, "T": T}
    pa = bg.p_alive(row)[0]
    e1 = bg.expected_purchases(t1, row)[0]
    e2 = bg.expected_purchases(t1 + dt, row)[0]
    assert 0 <= pa <= 1
    assert np.isfinite(e1) and np.isfinite(e2)
    assert 0 <= e1 <= e2 * (1 + 1e-9) + 1e-12


def _fixed_bg(params=(0.2426, 4.4136, 0.7929, 2.4259)) -> clv.BetaGeo:
    bg = clv.BetaGeo()
    bg.params_ = pd.Series(params, index=["r", "alpha", "a", "b"])
    bg.time_unit_ = "W"
    return bg


def test_not_fitted_raises() -> None:
    with pytest.raises(NotFittedError, match="not fitted yet"):
        clv.BetaGeo().p_alive({"frequency": [1], "recency": [1.0], "T": [2.0]})
    with pytest.raises(NotFittedError, match="not fitted yet"):
        clv.GammaGamma().mean_spend()


# ----------------------------------------------------------------------------------------
# edge cases
# ----------------------------------------------------------------------------------------


def test_customer_with_one_purchase() -> None:
    s = clv.rfm_summary(_orders([("x", "2024-01-01", 5.0)]), observation_end="2024-01-15")
    assert s.to_dict("records") == [
        {"customer_id": "x", "frequency": 0, "recency": 0.0, "T": 2.0, "monetary_value": 0.0}
    ]


def test_frequency_zero_everywhere() -> None:
    s = pd.DataFrame({"frequency": [0, 0, 0], "recency": [0.0] * 3, "T": [5.0, 10.0, 20.0]})
    with pytest.raises(DataError, match="nobody made a repeat purchase"):
        clv.BetaGeo().fit(s)
    with pytest.raises(DataError, match="at least 2 customers with a repeat purchase"):
        clv.GammaGamma().fit(s.assign(monetary_value=0.0))


def test_single_customer() -> None:
    orders = _orders([("x", "2024-01-01", 5.0), ("x", "2024-01-10", 7.0)])
    s = clv.rfm_summary(orders, observation_end="2024-02-01", time_unit="D")
    assert s.frequency.tolist() == [1]
    with pytest.raises(DataError, match="needs at least 2 customers"):
        clv.BetaGeo().fit(s)


def test_huge_frequencies() -> None:
    rng = np.random.default_rng(3)
    s = clv.simulate_bgnbd(3_000, r=0.5, alpha=5.0, a=0.8, b=2.5, T=52, random_state=rng)
    s.loc[:4, ["frequency", "recency"]] = [
        [5_000, 51.0],
        [20_000, 52.0],
        [1_000, 1.0],
        [100_000, 50.0],
        [300, 52.0],
    ]
    bg = clv.BetaGeo().fit(s)
    assert np.isfinite(bg.params_).all() and np.isfinite(bg.log_likelihood_)
    e = bg.expected_purchases(52, s)
    pa = bg.p_alive(s)
    assert np.isfinite(e).all() and np.isfinite(pa).all()
    assert e[1] > 10_000  # a very frequent, recent buyer keeps buying
    assert pa[2] < 1e-6  # 1,000 purchases in week 1, none since: gone


def test_zero_value_orders() -> None:
    orders = _orders(
        [
            ("a", "2024-01-01", 0.0),
            ("a", "2024-01-05", 0.0),  # a repeat purchase worth nothing
            ("b", "2024-01-01", 10.0),
            ("b", "2024-01-08", 20.0),
            ("c", "2024-01-01", 5.0),
            ("c", "2024-01-03", 15.0),
            ("c", "2024-01-09", 0.0),
        ]
    )
    s = clv.rfm_summary(orders, observation_end="2024-01-31", time_unit="D")
    assert s.frequency.tolist() == [1, 1, 2]  # zero-value orders still count as purchases
    assert s.monetary_value.tolist() == [0.0, 20.0, 7.5]
    with pytest.warns(UserWarning, match="1 repeat customers with a mean repeat value of 0"):
        gg = clv.GammaGamma(correlation_warning=1.0).fit(s)
    assert gg.n_customers_ == 2


def test_bad_summaries() -> None:
    with pytest.raises(DataError, match="the summary has no column 'T'"):
        clv.BetaGeo().fit(pd.DataFrame({"frequency": [1], "recency": [1.0]}))
    with pytest.raises(DataError, match="'recency' must be finite and >= 0"):
        clv.BetaGeo().fit(pd.DataFrame({"frequency": [1], "recency": [-1.0], "T": [2.0]}))
    with pytest.raises(DataError, match="recency is larger than T"):
        clv.BetaGeo().fit(pd.DataFrame({"frequency": [1, 1], "recency": [3.0, 1], "T": [2.0, 2]}))


def test_convergence_error(cdnow_summary: pd.DataFrame) -> None:
    with pytest.raises(ConvergenceError, match="the BG/NBD fit did not converge"):
        clv.BetaGeo(max_iter=1).fit(cdnow_summary)


def test_weights_equal_repeated_rows(cdnow_summary: pd.DataFrame, cdnow_bg: clv.BetaGeo) -> None:
    grouped = cdnow_summary.groupby(["frequency", "recency", "T"]).size().rename("n").reset_index()
    bg = clv.BetaGeo().fit(grouped, weights=grouped["n"])
    pd.testing.assert_series_equal(bg.params_, cdnow_bg.params_, rtol=1e-6)
    assert bg.log_likelihood_ == pytest.approx(cdnow_bg.log_likelihood_, abs=1e-6)


def test_gamma_gamma_correlation_warning() -> None:
    x = np.random.default_rng(0).integers(1, 20, 2_000)
    s = clv.simulate_spend(x, p=6.0, q=4.0, gamma=15.0, random_state=1)
    s["monetary_value"] *= (x / x.mean()) ** 1.5  # frequent buyers spend more
    with pytest.warns(UserWarning, match=r"frequency and mean spend are correlated \(Pearson r"):
        gg = clv.GammaGamma().fit(s)
    assert gg.correlation_ > 0.3
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        clv.GammaGamma(correlation_warning=0.99).fit(s)


def test_gamma_gamma_conditional_spend(cdnow_gg: clv.GammaGamma) -> None:
    p, q, g = cdnow_gg.params_
    frame = pd.DataFrame({"frequency": [0, 1, 10], "monetary_value": [0.0, 100.0, 100.0]})
    got = cdnow_gg.conditional_expected_average_spend(frame)
    assert got[0] == pytest.approx(cdnow_gg.mean_spend()) == pytest.approx(p * g / (q - 1))
    assert got[0] < got[1] < got[2] < 100  # shrunk towards the population mean


# ----------------------------------------------------------------------------------------
# simulation: parameters recovered within 3 standard errors
# ----------------------------------------------------------------------------------------


@pytest.mark.slow
def test_bgnbd_recovers_simulated_parameters() -> None:
    true = {"r": 0.5, "alpha": 5.0, "a": 0.8, "b": 2.5}
    rng = np.random.default_rng(2024)
    n = 100_000
    s = clv.simulate_bgnbd(n, **true, T=rng.uniform(20, 52, n), random_state=rng)
    bg = clv.BetaGeo().fit(s)
    z = (bg.params_ - pd.Series(true)) / bg.standard_errors_
    assert (z.abs() < 3).all(), z.to_dict()
    table = bg.params_table()
    assert ((table.ci_low < table.estimate) & (table.estimate < table.ci_high)).all()


@pytest.mark.slow
def test_gamma_gamma_recovers_simulated_parameters() -> None:
    true = {"p": 6.0, "q": 4.0, "gamma": 15.0}
    x = np.random.default_rng(5).integers(1, 15, 100_000)
    s = clv.simulate_spend(x, **true, random_state=3)
    gg = clv.GammaGamma().fit(s)
    z = (gg.params_ - pd.Series(true)) / gg.standard_errors_
    assert (z.abs() < 3).all(), z.to_dict()


def test_predictions_match_simulated_future() -> None:
    """Conditional expectations and P(alive) agree with what the process then does."""
    rng = np.random.default_rng(11)
    n = 50_000
    true = {"r": 0.5, "alpha": 5.0, "a": 0.8, "b": 2.5}
    s = clv.simulate_bgnbd(n, **true, T=rng.uniform(20, 52, n), random_state=rng, future=39)
    bg = clv.BetaGeo().fit(s)
    expected = bg.expected_purchases(39, s)
    assert expected.sum() == pytest.approx(s.future_purchases.sum(), rel=0.03)
    groups = (
        pd.DataFrame({"g": np.minimum(s.frequency, 7), "e": expected, "a": s.future_purchases})
        .groupby("g")[["e", "a"]]
        .mean()
    )
    np.testing.assert_allclose(groups.e, groups.a, rtol=0.1)
    p_alive = bg.p_alive(s)
    assert p_alive.mean() == pytest.approx(s.alive.mean(), abs=0.01)
    repeat = s.frequency.to_numpy() > 0
    assert p_alive[repeat].mean() == pytest.approx(s.alive[repeat].mean(), abs=0.01)


def test_standard_errors_have_nominal_coverage() -> None:
    """95% intervals from the Hessian cover the truth about 95% of the time."""
    true_bg = {"r": 0.5, "alpha": 5.0, "a": 0.8, "b": 2.5}
    true_gg = {"p": 6.0, "q": 4.0, "gamma": 15.0}
    hits = total = 0
    for seed in range(20):
        rng = np.random.default_rng(100 + seed)
        s = clv.simulate_bgnbd(4_000, **true_bg, T=rng.uniform(20, 52, 4_000), random_state=rng)
        bg = clv.BetaGeo().fit(s)
        spend = clv.simulate_spend(rng.integers(1, 10, 2_000), **true_gg, random_state=rng)
        gg = clv.GammaGamma(correlation_warning=1.0).fit(spend)
        for model, true in ((bg, true_bg), (gg, true_gg)):
            table = model.params_table().set_index("parameter")
            inside = (table.ci_low <= pd.Series(true)) & (pd.Series(true) <= table.ci_high)
            hits += int(inside.sum())
            total += len(true)
    # 140 intervals at 95%: fewer than 125 hits would be very unlikely (p < 0.01).
    assert hits >= 125, f"{hits} of {total} intervals cover the truth"


# ----------------------------------------------------------------------------------------
# CLV and its summaries
# ----------------------------------------------------------------------------------------


def test_clv_columns_and_discounting(
    cdnow_summary: pd.DataFrame, cdnow_bg: clv.BetaGeo, cdnow_gg: clv.GammaGamma
) -> None:
    out = clv.clv(cdnow_summary, cdnow_bg, cdnow_gg)
    assert list(out.columns) == [
        "customer_id",
        "p_alive",
        "expected_purchases_52w",
        "expected_spend_per_purchase",
        "clv_52w",
    ]
    assert (out.clv_52w >= 0).all()
    undiscounted = clv.clv(cdnow_summary, cdnow_bg, cdnow_gg, annual_discount_rate=0.0)
    np.testing.assert_allclose(
        undiscounted.clv_52w,
        undiscounted.expected_spend_per_purchase * undiscounted.expected_purchases_52w,
        rtol=1e-9,
    )
    assert (out.clv_52w <= undiscounted.clv_52w + 1e-12).all()
    ratio = out.clv_52w.sum() / undiscounted.clv_52w.sum()
    assert 1 / 1.1 < ratio < 1  # a year at 10% discounts by less than 1/1.1
    days = clv.clv(cdnow_summary, cdnow_bg, cdnow_gg, horizon=364, unit="D")
    np.testing.assert_allclose(days.clv_364d, out.clv_52w, rtol=1e-9)
    longer = clv.clv(cdnow_summary, cdnow_bg, cdnow_gg, horizon=24, unit="M")
    assert "clv_24m" in longer.columns and (longer.clv_24m >= out.clv_52w - 1e-9).all()
    assert out.attrs["clv_column"] == "clv_52w"
    with pytest.raises(UsageError, match="unit must be 'D' or 'W' or 'M', got 'Y'"):
        clv.clv(cdnow_summary, cdnow_bg, cdnow_gg, unit="Y")


def test_clv_same_on_day_and_week_summaries() -> None:
    data = datasets.cdnow()
    weeks = clv.rfm_summary(data, observation_end=CAL_END, time_unit="W")
    days = clv.rfm_summary(data, observation_end=CAL_END, time_unit="D")
    bg_w, bg_d = clv.BetaGeo().fit(weeks), clv.BetaGeo().fit(days)
    assert bg_d.params_["alpha"] == pytest.approx(bg_w.params_["alpha"] * 7, rel=1e-5)
    assert bg_d.log_likelihood_ == pytest.approx(
        bg_w.log_likelihood_ - math.log(7) * weeks.frequency.sum(), abs=1e-3
    )
    np.testing.assert_allclose(clv.clv(days, bg_d).clv_52w, clv.clv(weeks, bg_w).clv_52w, rtol=1e-4)


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


def test_findings_and_plots(
    cdnow_summary: pd.DataFrame, cdnow_bg: clv.BetaGeo, cdnow_gg: clv.GammaGamma
) -> None:
    values = clv.clv(cdnow_summary, cdnow_bg, cdnow_gg)
    found = clv.findings(
        cdnow_summary,
        cdnow_bg,
        clv_frame=values,
        holdout=clv.holdout_totals(cdnow_summary, cdnow_bg),
    )
    assert all(isinstance(f, Finding) and f.domain == "clv" for f in found)
    metrics = {f.metric for f in found}
    assert {"total_clv_52w", "top20_share_52w", "holdout_error", "lapsing_high_value"} <= metrics
    assert all(f.n is not None for f in found)
    json.dumps([f.to_dict() for f in found])

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


# ----------------------------------------------------------------------------------------
# demo data: rough agreement with the planted truth
# ----------------------------------------------------------------------------------------


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


def test_docstring_examples_run() -> None:
    import doctest

    for module in (clv, datasets):
        result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
        assert result.failed == 0, module.__name__


# ----------------------------------------------------------------------------------------
# the engine side runs unchanged on PostgreSQL and Spark
# ----------------------------------------------------------------------------------------


def _engine_orders() -> pd.DataFrame:
    frame = _orders(TINY)
    frame.insert(0, "order_id", [f"o{i}" for i in range(len(frame))])
    return frame


def _same_rfm(other: cxkit.CXData) -> None:
    ref = cxkit.load({"orders": _engine_orders()})
    for data in (ref, other):
        assert data.table("orders").count().to_pandas() == len(TINY)
    kwargs = {"calibration_end": "2024-02-04", "observation_end": "2024-02-25"}
    a = clv.rfm_summary(ref, **kwargs)
    b = clv.rfm_summary(other, **kwargs)
    pd.testing.assert_frame_equal(a, b, check_dtype=False)
    bg = _fixed_bg()
    ta = clv.cumulative_repeat_purchases(ref, bg, **kwargs)
    tb = clv.cumulative_repeat_purchases(other, bg, **kwargs)
    pd.testing.assert_frame_equal(ta, tb, check_dtype=False)


@pytest.mark.postgres
@pytest.mark.slow
def test_rfm_summary_on_postgres(postgres_server: str) -> None:
    from tests.test_backends import into_postgres

    _same_rfm(into_postgres(postgres_server, {"orders": _engine_orders()}))


@pytest.mark.spark
@pytest.mark.slow
def test_rfm_summary_on_spark(spark_session: object) -> None:
    from tests.test_backends import into_spark

    _same_rfm(into_spark(spark_session, {"orders": _engine_orders()}))


def test_empty_summary() -> None:
    empty = pd.DataFrame({"frequency": [], "recency": [], "T": []})
    with pytest.raises(DataError, match="the summary is empty: no customer bought in the period"):
        clv.BetaGeo().fit(empty)
