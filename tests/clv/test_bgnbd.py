"""BG/NBD: the published CDNOW estimates, the paper's formulas, edge cases, simulations.

Published figures: Fader, Hardie & Lee (2005) on the CDNOW sample
(../shared/data/cdnow/README.md, FIELD_NOTES "CLV on CDNOW").
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import special
from sklearn.exceptions import NotFittedError

from cxkit import clv, datasets
from cxkit.errors import ConvergenceError, DataError
from tests.clv._data import CAL_END, fixed_bg, orders

# ----------------------------------------------------------------------------------------
# CDNOW: the published figures
# ----------------------------------------------------------------------------------------


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
    bg = fixed_bg()
    row = {"frequency": x, "recency": frac * T if x else 0.0, "T": T}
    pa = bg.p_alive(row)[0]
    e1 = bg.expected_purchases(t1, row)[0]
    e2 = bg.expected_purchases(t1 + dt, row)[0]
    assert 0 <= pa <= 1
    assert np.isfinite(e1) and np.isfinite(e2)
    assert 0 <= e1 <= e2 * (1 + 1e-9) + 1e-12


def test_not_fitted_raises() -> None:
    with pytest.raises(NotFittedError, match="not fitted yet"):
        clv.BetaGeo().p_alive({"frequency": [1], "recency": [1.0], "T": [2.0]})
    with pytest.raises(NotFittedError, match="not fitted yet"):
        clv.GammaGamma().mean_spend()


@pytest.mark.parametrize(
    "call",
    [
        lambda bg: bg.p_alive({"frequency": [1], "recency": [1.0], "T": [2.0]}),
        lambda bg: bg.expected_purchases(1.0, {"frequency": [1], "recency": [1.0], "T": [2.0]}),
        lambda bg: bg.expected_purchases_new([1.0]),
        lambda bg: bg.params_table(),
        lambda bg: clv.describe_models(bg),
        lambda bg: clv.customer_value({"frequency": [1], "recency": [1.0], "T": [2.0]}, bg),
        lambda bg: clv.compare_with_published(bg),
    ],
)
def test_every_method_needing_a_fit_checks_it(call) -> None:
    with pytest.raises(NotFittedError, match="not fitted yet"):
        call(clv.BetaGeo())


# ----------------------------------------------------------------------------------------
# edge cases
# ----------------------------------------------------------------------------------------


def test_frequency_zero_everywhere() -> None:
    s = pd.DataFrame({"frequency": [0, 0, 0], "recency": [0.0] * 3, "T": [5.0, 10.0, 20.0]})
    with pytest.raises(DataError, match="nobody made a repeat purchase"):
        clv.BetaGeo().fit(s)
    with pytest.raises(DataError, match="at least 2 customers with a repeat purchase"):
        clv.GammaGamma().fit(s.assign(monetary_value=0.0))


def test_single_customer() -> None:
    data = orders([("x", "2024-01-01", 5.0), ("x", "2024-01-10", 7.0)])
    s = clv.rfm_summary(data, observation_end="2024-02-01", time_unit="D")
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


def test_empty_summary() -> None:
    empty = pd.DataFrame({"frequency": [], "recency": [], "T": []})
    with pytest.raises(DataError, match="the summary is empty: no customer bought in the period"):
        clv.BetaGeo().fit(empty)


def test_clv_same_on_day_and_week_summaries() -> None:
    data = datasets.cdnow()
    weeks = clv.rfm_summary(data, observation_end=CAL_END, time_unit="W")
    days = clv.rfm_summary(data, observation_end=CAL_END, time_unit="D")
    bg_w, bg_d = clv.BetaGeo().fit(weeks), clv.BetaGeo().fit(days)
    assert bg_d.params_["alpha"] == pytest.approx(bg_w.params_["alpha"] * 7, rel=1e-5)
    assert bg_d.log_likelihood_ == pytest.approx(
        bg_w.log_likelihood_ - math.log(7) * weeks.frequency.sum(), abs=1e-3
    )
    np.testing.assert_allclose(
        clv.customer_value(days, bg_d).clv_52w, clv.customer_value(weeks, bg_w).clv_52w, rtol=1e-4
    )


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
