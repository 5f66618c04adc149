"""CLV intervals: the fit's covariance, the parametric bootstrap, and their coverage.

Coverage is checked by simulation: customers are drawn from known BG/NBD and
Gamma-Gamma parameters (``simulate_bgnbd``, ``simulate_spend``), the models are fitted,
and over many repetitions the 95% intervals must contain the truth about 95% of the
time. A correct 95% interval covers ``k`` of ``R`` repetitions with ``k ~ Binomial(R,
0.95)``; the tests accept any ``k`` at or above the 0.1% point of that distribution
(:func:`_lowest_count`), so a correct method fails them about once in a thousand seeds,
while intervals that are too narrow fail. Intervals that are too wide are caught by the
spread of the standardised errors (their standard deviation must be near 1).

Times are simulated continuous (no rounding to days): rounding makes the model slightly
wrong for the data (recency is rounded down), which shows as a bias of alpha of about a
third of its standard error at 1,000–3,000 customers, and as coverage of the total near
90% instead of 95% (measured while writing these tests).
"""

from __future__ import annotations

import math
import tracemalloc
from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest
from scipy import special, stats

from cxkit import clv, datasets
from cxkit.changes import finding_key
from cxkit.clv.intervals import BLOCK
from cxkit.errors import DataError, UsageError
from tests.clv._data import CAL_END, OBS_END

TRUE_BG = {"r": 0.6, "alpha": 4.0, "a": 0.8, "b": 2.5}
TRUE_GG = {"p": 6.0, "q": 4.0, "gamma": 15.0}
#: Observation lengths (weeks): a few cohorts, so the bootstrap has few (x, T) rows.
COHORTS = [26.0, 39.0, 52.0, 65.0, 78.0]


def _lowest_count(reps: int, level: float = 0.95, alpha: float = 0.001) -> int:
    """The smallest number of covering repetitions a correct ``level`` interval passes with."""
    return int(stats.binom.ppf(alpha, reps, level))


def _fixed(cls: type, params: dict[str, float]) -> clv.BetaGeo | clv.GammaGamma:
    """A model with the true parameters, without fitting."""
    model = cls()
    model.params_ = pd.Series(params, dtype="float64")
    if cls is clv.BetaGeo:
        model.time_unit_ = "W"
    return model


def _population(n: int, seed: int) -> tuple[pd.DataFrame, np.ndarray]:
    """Customers from the true models: the summary, with their next 52 weeks' purchases,
    and the true value of each one's next-52-week purchases (undiscounted)."""
    rng = np.random.default_rng(seed)
    s = clv.simulate_bgnbd(n, **TRUE_BG, T=rng.choice(COHORTS, n), random_state=rng, future=52)
    spend = clv.simulate_spend(s.frequency, **TRUE_GG, random_state=rng)
    s["monetary_value"] = spend.monetary_value
    k = s["future_purchases"].to_numpy()
    nu = TRUE_GG["p"] / spend["true_mean_spend"].to_numpy()
    realised = np.where(k > 0, rng.gamma(np.maximum(k * TRUE_GG["p"], 1e-12), 1 / nu), 0.0)
    return s, realised


@pytest.fixture(scope="module")
def small() -> tuple[pd.DataFrame, clv.BetaGeo, clv.GammaGamma]:
    s, _ = _population(3_000, seed=11)
    return s, clv.BetaGeo().fit(s), clv.GammaGamma().fit(s)


# --- the fit's covariance -------------------------------------------------------------


def _bgnbd_ll(theta: np.ndarray, x: np.ndarray, tx: np.ndarray, T: np.ndarray) -> float:
    """BG/NBD log-likelihood, FHL (2005) eq. 6, written here from the paper."""
    r, alpha, a, b = np.exp(theta)
    common = special.gammaln(r + x) - special.gammaln(r) + r * np.log(alpha)
    alive = special.betaln(a, b + x) - special.betaln(a, b) - (r + x) * np.log(alpha + T) + common
    with np.errstate(divide="ignore", invalid="ignore"):
        dead = (
            special.betaln(a + 1, b + x - 1)
            - special.betaln(a, b)
            - (r + x) * np.log(alpha + tx)
            + common
        )
    return float(np.sum(np.where(x > 0, np.logaddexp(alive, dead), alive)))


def _gg_ll(theta: np.ndarray, x: np.ndarray, m: np.ndarray) -> float:
    """Gamma-Gamma log-likelihood of the mean repeat value (Fader & Hardie 2013 note)."""
    p, q, g = np.exp(theta)
    px = p * x
    return float(
        np.sum(
            special.gammaln(px + q)
            - special.gammaln(px)
            - special.gammaln(q)
            + q * np.log(g)
            + (px - 1) * np.log(m)
            + px * np.log(x)
            - (px + q) * np.log(g + m * x)
        )
    )


def _numerical_se(
    ll: Callable[[np.ndarray], float], theta: np.ndarray, h: float = 1e-3
) -> np.ndarray:
    """Standard errors from a Hessian of the log-likelihood *values* (not the gradient).

    Central second differences in log-parameters with Richardson extrapolation (steps h
    and h/2), inverted and carried to the parameters by the delta method.
    """

    def hessian(step: float) -> np.ndarray:
        k = len(theta)
        out = np.empty((k, k))
        for i in range(k):
            for j in range(k):
                e_i, e_j = np.eye(k)[i] * step, np.eye(k)[j] * step
                out[i, j] = (
                    ll(theta + e_i + e_j)
                    - ll(theta + e_i - e_j)
                    - ll(theta - e_i + e_j)
                    + ll(theta - e_i - e_j)
                ) / (4 * step * step)
        return out

    hess = (4 * hessian(h / 2) - hessian(h)) / 3
    cov_log = np.linalg.inv(-hess)
    return np.exp(theta) * np.sqrt(np.diag(cov_log))


def test_standard_errors_agree_with_a_numerical_hessian_of_the_likelihood(
    cdnow_summary: pd.DataFrame, cdnow_bg: clv.BetaGeo, cdnow_gg: clv.GammaGamma
) -> None:
    s = cdnow_summary
    x = s["frequency"].to_numpy(float)
    tx, T = s["recency"].to_numpy(float), s["T"].to_numpy(float)
    theta = np.log(cdnow_bg.params_.to_numpy())
    assert _bgnbd_ll(theta, x, tx, T) == pytest.approx(cdnow_bg.log_likelihood_, rel=1e-9)
    np.testing.assert_allclose(
        cdnow_bg.standard_errors_.to_numpy(),
        _numerical_se(lambda t: _bgnbd_ll(t, x, tx, T), theta),
        rtol=1e-4,
    )
    rep = (x > 0) & (s["monetary_value"].to_numpy() > 0)
    m = s["monetary_value"].to_numpy(float)[rep]
    theta = np.log(cdnow_gg.params_.to_numpy())
    np.testing.assert_allclose(
        cdnow_gg.standard_errors_.to_numpy(),
        _numerical_se(lambda t: _gg_ll(t, x[rep], m), theta),
        rtol=1e-4,
    )
    # the log-scale covariance is what the bootstrap draws from: the same information
    se_log = np.sqrt(np.diag(cdnow_bg.covariance_log_))
    np.testing.assert_allclose(se_log * cdnow_bg.params_, cdnow_bg.standard_errors_, rtol=1e-12)


def test_cdnow_standard_errors_are_those_of_the_reference_implementation(
    cdnow_bg: clv.BetaGeo,
) -> None:
    """FHL (2005) publish no standard errors; the lifetimes documentation (Quickstart,
    ``bgf.summary`` on the same CDNOW summary) gives se(coef) 0.012557, 0.378221,
    0.185719, 0.705345 for r, alpha, a, b."""
    lifetimes = [0.012557, 0.378221, 0.185719, 0.705345]
    np.testing.assert_allclose(cdnow_bg.standard_errors_.to_numpy(), lifetimes, rtol=5e-4)


def test_params_table_has_standard_errors_and_log_scale_intervals(
    cdnow_bg: clv.BetaGeo,
) -> None:
    table = cdnow_bg.params_table().set_index("parameter")
    se_log = table["se"] / table["estimate"]
    np.testing.assert_allclose(table["ci_low"], table["estimate"] * np.exp(-1.959964 * se_log))
    np.testing.assert_allclose(table["ci_high"], table["estimate"] * np.exp(1.959964 * se_log))


# --- coverage by simulation -----------------------------------------------------------


@pytest.mark.slow
def test_intervals_cover_the_truth_about_95_percent_of_the_time() -> None:
    """Parameters, total expected CLV, top-20% share and the total customers bring."""
    reps, n = 100, 1_000
    bg_true, gg_true = _fixed(clv.BetaGeo, TRUE_BG), _fixed(clv.GammaGamma, TRUE_GG)
    truth = {**TRUE_BG, **TRUE_GG}
    covered = dict.fromkeys([*truth, "total", "top_share", "predicted_total"], 0)
    z: dict[str, list[float]] = {k: [] for k in truth}
    for rep in range(reps):
        s, realised = _population(n, seed=1_000 + rep)
        bg, gg = clv.BetaGeo().fit(s), clv.GammaGamma().fit(s)
        table = pd.concat([bg.params_table(), gg.params_table()]).set_index("parameter")
        for k, v in truth.items():
            row = table.loc[k]
            covered[k] += row.ci_low <= v <= row.ci_high
            z[k].append(math.log(row.estimate / v) / (row.se / row.estimate))
        iv = clv.clv_intervals(
            s, bg, gg, annual_discount_rate=0.0, n_draws=100, predictive=20, random_state=rep
        )
        true_values = clv.customer_value(s, bg_true, gg_true, annual_discount_rate=0.0).clv_52w
        covered["total"] += iv.total["ci_low"] <= true_values.sum() <= iv.total["ci_high"]
        share = clv.top_share(true_values, top=0.2)
        covered["top_share"] += iv.top_share["ci_low"] <= share <= iv.top_share["ci_high"]
        covered["predicted_total"] += (
            iv.total["pred_low"] <= realised.sum() <= iv.total["pred_high"]
        )
    lowest = _lowest_count(reps)
    assert all(c >= lowest for c in covered.values()), (covered, lowest)
    # too wide would cover too often: the standardised errors must spread like N(0, 1)
    # (the sd of 100 draws' sd is about 0.07; 0.75-1.3 is beyond 3.5 of them)
    spread = {k: float(np.std(v)) for k, v in z.items()}
    assert all(0.75 < v < 1.3 for v in spread.values()), spread


def test_predictive_intervals_cover_what_customers_actually_bring() -> None:
    """Per customer, the realised next-year value falls in its predictive interval for
    at least 95% of customers (more where a point mass at 0 makes the interval wider
    than needed); the parameter interval, which leaves out purchase randomness, covers
    far fewer."""
    inside_pred, inside_param, n_all = 0, 0, 0
    for rep in range(6):
        s, realised = _population(1_000, seed=50 + rep)
        bg, gg = clv.BetaGeo().fit(s), clv.GammaGamma().fit(s)
        iv = clv.clv_intervals(
            s, bg, gg, annual_discount_rate=0.0, n_draws=200, predictive=None, random_state=rep
        )
        pc = iv.per_customer
        inside_pred += int(
            ((pc.clv_52w_pred_low <= realised) & (realised <= pc.clv_52w_pred_high)).sum()
        )
        inside_param += int(((pc.clv_52w_low <= realised) & (realised <= pc.clv_52w_high)).sum())
        n_all += len(s)
    assert 0.95 <= inside_pred / n_all <= 0.99, inside_pred / n_all
    assert inside_param / n_all < 0.6


def test_simulated_futures_average_to_the_customers_clv(
    small: tuple[pd.DataFrame, clv.BetaGeo, clv.GammaGamma],
) -> None:
    """The predictive draws are the model's own: with discounting, their mean is CLV."""
    s, bg, gg = small
    value = clv.customer_value(s, bg, gg)
    some = value.clv_52w.sort_values(ascending=False).index[:40].append(s.index[:40])
    sims = clv.simulate_values(s.loc[some], bg, gg, n_sims=4_000, random_state=3)
    se = sims.std(axis=1) / math.sqrt(sims.shape[1])
    z_scores = (sims.mean(axis=1) - value.clv_52w.loc[some]) / se.where(se > 0)
    assert float(np.nanmax(np.abs(z_scores))) < 4.5  # 80 customers, ~N(0, 1) each
    # customers who cannot buy (P(alive) ~ 0 is not in the data) still have value >= 0
    assert (sims.to_numpy() >= 0).all()


# --- the bootstrap's arithmetic -------------------------------------------------------


@pytest.mark.parametrize(
    ("horizon", "unit", "rate"), [(52, "W", 0.10), (24, "M", 0.15), (10, "D", 0.10)]
)
def test_draws_at_the_estimates_reproduce_customer_value(
    small: tuple[pd.DataFrame, clv.BetaGeo, clv.GammaGamma], horizon: float, unit: str, rate: float
) -> None:
    """With no parameter uncertainty every draw is the estimate: the interval collapses
    onto the CLV of customer_value (the nodes in T and in time interpolate to 1e-10)."""
    s, bg, gg = small
    value = clv.customer_value(s, bg, gg, horizon=horizon, unit=unit, annual_discount_rate=rate)
    col = value.attrs["clv_column"]
    certain_bg, certain_gg = clv.BetaGeo(), clv.GammaGamma()
    for model, fitted in ((certain_bg, bg), (certain_gg, gg)):
        model.params_, model.covariance_log_ = fitted.params_, fitted.covariance_log_ * 1e-30
    certain_bg.time_unit_ = bg.time_unit_
    iv = clv.clv_intervals(
        s,
        certain_bg,
        certain_gg,
        horizon=horizon,
        unit=unit,
        annual_discount_rate=rate,
        n_draws=10,
        predictive=0,
    )
    for bound in ("low", "high"):
        np.testing.assert_allclose(iv.per_customer[f"{col}_{bound}"], value[col], rtol=1e-8)
    assert iv.total["ci_low"] == pytest.approx(value[col].sum(), rel=1e-9)
    assert iv.top_share["ci_high"] == pytest.approx(clv.top_share(value[col]), rel=1e-9)


def test_chunked_and_unchunked_bootstrap_give_the_same_intervals(
    small: tuple[pd.DataFrame, clv.BetaGeo, clv.GammaGamma],
) -> None:
    """The smallest working arrays (one customer, one draw at a time) give the intervals
    of one pass over everything: same draws, same arithmetic, same random streams."""
    s, bg, gg = small
    kw = {"n_draws": 50, "predictive": 600, "random_state": 5}
    whole = clv.clv_intervals(s, bg, gg, max_cells=10**9, **kw)
    chunked = clv.clv_intervals(s, bg, gg, max_cells=1, **kw)
    pd.testing.assert_frame_equal(chunked.per_customer, whole.per_customer)
    for key in ("ci_low", "ci_high", "pred_low", "pred_high"):
        assert chunked.total[key] == pytest.approx(whole.total[key], rel=1e-12)
    assert chunked.top_share == pytest.approx(whole.top_share, rel=1e-12)
    again = clv.clv_intervals(s, bg, gg, **kw)
    pd.testing.assert_frame_equal(again.per_customer, whole.per_customer)  # same seed
    other = clv.clv_intervals(s, bg, gg, **{**kw, "random_state": 6})
    assert not other.per_customer.equals(whole.per_customer)
    pred = whole.per_customer["clv_52w_pred_low"]
    assert pred.notna().sum() == 600  # the 600 most valuable customers
    top = clv.customer_value(s, bg, gg).clv_52w.nlargest(600).index
    assert pred.loc[top].notna().all()


def _peak_bytes(run: Callable[[], object]) -> int:
    tracemalloc.start()
    try:
        run()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.slow
def test_the_bootstrap_never_holds_draws_times_customers_values() -> None:
    """At 40,000 customers one array of every value is 16 MB at 50 draws and 128 MB at
    400; with small working arrays the bootstrap's peak does not grow with the draws
    (what it holds is per customer, per distinct (x, T) or a fixed working size)."""
    n = 40_000
    rng = np.random.default_rng(2)
    s = clv.simulate_bgnbd(n, **TRUE_BG, T=rng.uniform(10, 80, n), random_state=rng)
    s["monetary_value"] = clv.simulate_spend(
        s.frequency, **TRUE_GG, random_state=rng
    ).monetary_value
    bg, gg = clv.BetaGeo().fit(s), clv.GammaGamma().fit(s)
    value = clv.customer_value(s, bg, gg)
    peaks = {}
    for draws in (50, 400):
        peaks[draws] = _peak_bytes(
            lambda d=draws: clv.clv_intervals(
                s, bg, gg, n_draws=d, predictive=BLOCK, max_cells=2**15, values=value
            )
        )
    # per draw the bootstrap holds the nodes' values and one block of 256 customers'
    # simulated futures: about 30 kB, against 320 kB for a column of every customer
    grew = peaks[400] - peaks[50]
    assert grew < 0.2 * 350 * n * 8, f"{grew / 2**20:.1f} MiB more for 350 more draws"
    assert peaks[400] < 0.2 * 400 * n * 8, f"peak {peaks[400] / 2**20:.1f} MiB"


def test_bad_settings_and_models_without_a_covariance(
    small: tuple[pd.DataFrame, clv.BetaGeo, clv.GammaGamma],
) -> None:
    s, bg, gg = small
    with pytest.raises(UsageError, match="n_draws must be at least 10, got 3"):
        clv.clv_intervals(s, bg, gg, n_draws=3)
    with pytest.raises(UsageError, match=r"level is a coverage between 0 and 1 like 0\.95, got 95"):
        clv.clv_intervals(s, bg, gg, level=95)
    with pytest.raises(UsageError, match="predictive is a number of customers or None, got True"):
        clv.clv_intervals(s, bg, gg, predictive=True)
    unknown = clv.BetaGeo()
    unknown.params_, unknown.time_unit_ = bg.params_, "W"
    unknown.covariance_log_ = bg.covariance_log_ * np.nan
    with pytest.raises(DataError, match="the BG/NBD fit has no standard errors"):
        clv.clv_intervals(s, unknown, gg)


def test_without_a_spend_model_the_intervals_say_what_they_leave_out(
    small: tuple[pd.DataFrame, clv.BetaGeo, clv.GammaGamma],
) -> None:
    s, bg, _ = small
    iv = clv.clv_intervals(s, bg, None, n_draws=50)
    assert "leave out spend uncertainty" in iv.notes[0]
    assert iv.per_customer["clv_52w_pred_low"].isna().all()
    assert math.isnan(iv.total["pred_low"])
    value = clv.customer_value(s, bg, None).clv_52w
    inside = (iv.per_customer.clv_52w_low <= value) & (value <= iv.per_customer.clv_52w_high)
    assert inside.mean() > 0.99


# --- in the CLV analysis --------------------------------------------------------------


@pytest.fixture(scope="module")
def cdnow() -> clv.ClvResult:
    return clv.analyze(datasets.cdnow(sample=True), as_of=OBS_END, calibration_end=CAL_END)


def test_the_analysis_carries_the_intervals_beside_the_clv(cdnow: clv.ClvResult) -> None:
    iv, col = cdnow.intervals, cdnow.clv_column
    assert iv is not None and iv.n_draws == 200
    scored = cdnow.scored
    at = scored.columns.get_loc(col)
    assert scored.columns[at + 1 : at + 5].tolist() == iv.columns
    assert (scored[f"{col}_low"] <= scored[col] * (1 + 1e-9)).all()
    assert (scored[col] <= scored[f"{col}_high"] * (1 + 1e-9)).all()
    assert iv.total["value"] == pytest.approx(cdnow.values[col].sum(), rel=1e-12)
    assert iv.total["ci_low"] < iv.total["value"] < iv.total["ci_high"]
    assert iv.total["pred_low"] < iv.total["ci_low"] < iv.total["ci_high"] < iv.total["pred_high"]
    table = cdnow.most_valuable(20)
    assert table[col].is_monotonic_decreasing and table[f"{col}_pred_low"].notna().all()


def test_findings_state_the_intervals_without_changing_their_numbers(cdnow: clv.ClvResult) -> None:
    """Only words are added: value, interval, n and key of every finding stay as they
    are without the intervals."""
    plain = clv.findings(
        cdnow.summary, cdnow.bg, clv_frame=cdnow.values, holdout=cdnow.holdout, top=cdnow.top
    )
    old = {f.metric: f for f in plain}
    new = {f.metric: f for f in cdnow.findings()}
    assert old.keys() == new.keys()
    for metric, f in new.items():
        before = old[metric]
        assert (f.value, f.ci_low, f.ci_high, f.n) == (
            before.value,
            before.ci_low,
            before.ci_high,
            before.n,
        )
        assert finding_key(f.to_dict()) == finding_key(before.to_dict())
        assert f.sentence.startswith(before.sentence.rstrip(".)"))
    total, share = new["total_clv_52w"], new["top20_share_52w"]
    t, sh = cdnow.intervals.total, cdnow.intervals.top_share
    assert f"between {t['ci_low']:,.0f} and {t['ci_high']:,.0f}" in total.sentence
    assert f"between {t['pred_low']:,.0f} and {t['pred_high']:,.0f}" in total.sentence
    assert total.extra["model_ci_low"] == t["ci_low"]
    assert f"95% interval {sh['ci_low']:.0%}–{sh['ci_high']:.0%}" in share.sentence
    without = clv.analyze(
        datasets.cdnow(sample=True), as_of=OBS_END, calibration_end=CAL_END, n_draws=0
    )
    assert without.intervals is None and "intervals" not in without.notes
    assert not any("Model uncertainty" in f.sentence for f in without.findings())


def test_a_fit_that_does_not_pin_down_its_parameters_gets_no_intervals(
    small: tuple[pd.DataFrame, clv.BetaGeo, clv.GammaGamma],
) -> None:
    """When the data leave a parameter practically undetermined (BG/NBD's a and b when
    hardly anyone drops out: only their ratio is known), draws from the fit would span
    absurd values: the intervals are refused, with the reason (the analysis shows it as
    a not-available note: tests/clv/test_analysis.py, heavy-tailed spend)."""
    s, bg, gg = small
    loose = clv.BetaGeo()
    loose.params_, loose.time_unit_ = bg.params_, "W"
    loose.covariance_log_ = bg.covariance_log_ + np.diag([0.0, 0.0, 9.0, 9.0])  # se_log ~3
    with pytest.raises(DataError, match=r"BG/NBD fit does not pin down a, b"):
        clv.clv_intervals(s, loose, gg)
