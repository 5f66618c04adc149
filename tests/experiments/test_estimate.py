"""The readout's statistics: hand-worked values, and coverage checked by simulation.

Coverage tests simulate a few hundred experiments with a known effect and count how
often the 95% interval holds it. With ``SIMS`` runs the count's standard error is
sqrt(0.95 * 0.05 / SIMS); "within binomial tolerance" means within 3 of them of 95%.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats as st

from cxkit.experiments import compare_arms, confidence_sequence, cuped, srm_test
from cxkit.stats import welch_test

SIMS = 400
TOL = 3 * np.sqrt(0.95 * 0.05 / SIMS)  # 0.033


def _covered(los: list[float], his: list[float], truth: float) -> float:
    lo, hi = np.asarray(los), np.asarray(his)
    return float(((lo <= truth) & (truth <= hi)).mean())


# ---- hand-worked values ------------------------------------------------------------


def test_proportion_difference_matches_hand_computation() -> None:
    # treatment 60 of 200, control 40 of 200
    y = np.r_[np.ones(60), np.zeros(140), np.ones(40), np.zeros(160)]
    t = np.r_[np.ones(200, bool), np.zeros(200, bool)]
    r = compare_arms(y, t, kind="proportion")
    se = np.sqrt(0.3 * 0.7 / 200 + 0.2 * 0.8 / 200)
    assert r["diff"] == pytest.approx(0.1)
    assert r["ci_low"] == pytest.approx(0.1 - 1.959964 * se, abs=1e-6)
    pooled = 0.25 * 0.75 * (2 / 200)
    assert r["p_value"] == pytest.approx(2 * st.norm.sf(0.1 / np.sqrt(pooled)))
    assert (r["n_treatment"], r["n_control"]) == (200, 200)
    assert np.isnan(r["cuped_diff"])  # no covariate given


def test_mean_and_nps_differences_are_welch() -> None:
    rng = np.random.default_rng(1)
    a, b = rng.gamma(2.0, 10.0, 150), rng.gamma(2.0, 12.0, 170)
    r = compare_arms(np.r_[a, b], np.r_[np.ones(150, bool), np.zeros(170, bool)], kind="mean")
    ref = st.ttest_ind(a, b, equal_var=False)
    assert r["diff"] == pytest.approx(a.mean() - b.mean())
    assert r["p_value"] == pytest.approx(ref.pvalue)
    # NPS: +1/0/-1 per respondent, reported in points
    s = np.r_[[1] * 50 + [0] * 30 + [-1] * 20, [1] * 40 + [0] * 30 + [-1] * 30]
    r = compare_arms(s, np.r_[np.ones(100, bool), np.zeros(100, bool)], kind="nps")
    assert (r["treatment"], r["control"], r["diff"]) == pytest.approx((30.0, 10.0, 20.0))
    w = welch_test(0.3, s[:100].var(ddof=1), 100, 0.1, s[100:].var(ddof=1), 100)
    assert r["ci_low"] == pytest.approx(100 * w["ci_low"])


def test_unknown_kind_lists_the_valid_ones() -> None:
    with pytest.raises(
        ValueError, match="kind must be one of 'proportion', 'mean', 'nps', got 'rate'"
    ):
        compare_arms([1.0, 0.0], [True, False], kind="rate")


# ---- coverage by simulation ---------------------------------------------------------


def test_difference_of_proportions_covers_at_95() -> None:
    rng = np.random.default_rng(11)
    n, p_c, p_t = 400, 0.30, 0.36
    los, his = [], []
    for _ in range(SIMS):
        y = np.r_[rng.random(n) < p_t, rng.random(n) < p_c].astype(float)
        r = compare_arms(y, np.r_[np.ones(n, bool), np.zeros(n, bool)], kind="proportion")
        los.append(r["ci_low"])
        his.append(r["ci_high"])
    assert abs(_covered(los, his, p_t - p_c) - 0.95) < TOL


def test_difference_of_means_covers_at_95_on_skewed_spend() -> None:
    rng = np.random.default_rng(12)
    n = 400
    los, his = [], []
    for _ in range(SIMS):
        y = np.r_[rng.gamma(2.0, 30.0, n), rng.gamma(2.0, 25.0, n)]  # means 60 vs 50
        r = compare_arms(y, np.r_[np.ones(n, bool), np.zeros(n, bool)], kind="mean")
        los.append(r["ci_low"])
        his.append(r["ci_high"])
    assert abs(_covered(los, his, 10.0) - 0.95) < TOL


def test_nps_difference_covers_at_95() -> None:
    rng = np.random.default_rng(13)
    n = 300
    treat, ctrl = (0.45, 0.30, 0.25), (0.40, 0.30, 0.30)  # promoter, passive, detractor
    truth = 100 * ((treat[0] - treat[2]) - (ctrl[0] - ctrl[2]))  # +10 points
    los, his = [], []
    for _ in range(SIMS):
        s = np.r_[rng.choice([1, 0, -1], n, p=treat), rng.choice([1, 0, -1], n, p=ctrl)]
        r = compare_arms(s, np.r_[np.ones(n, bool), np.zeros(n, bool)], kind="nps")
        los.append(r["ci_low"])
        his.append(r["ci_high"])
    assert abs(_covered(los, his, truth) - 0.95) < TOL


def test_cuped_narrows_the_interval_keeps_the_estimate_unbiased_and_covers() -> None:
    rng = np.random.default_rng(14)
    n, effect = 500, 2.0
    raw, adj, widths, reductions, los, his = [], [], [], [], [], []
    for _ in range(SIMS):
        x = rng.gamma(2.0, 10.0, 2 * n)  # pre-period spend
        t = np.r_[np.ones(n, bool), np.zeros(n, bool)]
        y = 0.8 * x + rng.normal(0, 10, 2 * n) + effect * t
        r = compare_arms(y, t, kind="mean", x=x)
        raw.append(r["diff"])
        adj.append(r["cuped_diff"])
        widths.append((r["cuped_high"] - r["cuped_low"]) / (r["ci_high"] - r["ci_low"]))
        reductions.append(r["variance_reduction"])
        los.append(r["cuped_low"])
        his.append(r["cuped_high"])
    adj_a = np.asarray(adj)
    # unbiased: the mean estimate is within 3 standard errors of the planted effect
    assert abs(adj_a.mean() - effect) < 3 * adj_a.std(ddof=1) / np.sqrt(SIMS)
    # narrower every time, by about sqrt(1 - rho^2) (rho^2 = 0.56 here)
    rho2 = 0.8**2 * 200 / (0.8**2 * 200 + 100)
    assert max(widths) < 1
    assert np.mean(widths) == pytest.approx(np.sqrt(1 - rho2), abs=0.02)
    assert np.mean(reductions) == pytest.approx(rho2, abs=0.02)
    assert np.var(adj_a) < 0.6 * np.var(raw)
    assert abs(_covered(los, his, effect) - 0.95) < TOL


def test_cuped_with_an_unrelated_covariate_changes_little() -> None:
    rng = np.random.default_rng(15)
    y, x, t = rng.normal(size=2000), rng.normal(size=2000), rng.random(2000) < 0.5
    _, theta, reduction = cuped(y, x, t)
    assert abs(theta[0]) < 0.1 and 0 <= reduction < 0.01
    _, theta, reduction = cuped(y, np.ones(2000), t)  # constant: nothing to learn
    assert theta.tolist() == [0.0] and reduction == 0.0


def _looks(rng: np.random.Generator, sims: int, n_max: int, p_t: float, p_c: float) -> tuple:
    """Cumulative conversions per arm at 20 looks of each simulated experiment."""
    looks = np.linspace(n_max / 20, n_max, 20).astype(int)
    k_t = np.cumsum(rng.random((sims, n_max)) < p_t, axis=1)[:, looks - 1]
    k_c = np.cumsum(rng.random((sims, n_max)) < p_c, axis=1)[:, looks - 1]
    return looks, k_t, k_c


def test_sequential_interval_holds_at_every_look_where_the_fixed_one_does_not() -> None:
    rng = np.random.default_rng(16)
    sims, n_max, p_t, p_c = 500, 2000, 0.32, 0.30
    looks, k_t, k_c = _looks(rng, sims, n_max, p_t, p_c)
    a, b = k_t / looks, k_c / looks
    diff = a - b
    se = np.sqrt(a * (1 - a) / looks + b * (1 - b) / looks)
    lo, hi = confidence_sequence(diff, se, 2 * looks, n_opt=2 * n_max)
    truth = p_t - p_c
    always = ((lo <= truth) & (truth <= hi)).all(axis=1).mean()
    fixed = ((diff - 1.96 * se <= truth) & (truth <= diff + 1.96 * se)).all(axis=1).mean()
    tol = 3 * np.sqrt(0.95 * 0.05 / sims)
    assert always >= 0.95 - tol  # time-uniform: at all 20 looks at once
    assert fixed < 0.85  # the fixed interval, checked at every look, fails far more often
    # and at the planned size the sequence is about 1.55 times as wide as the fixed one
    width = (hi - lo)[:, -1] / (2 * 1.96 * se[:, -1])
    assert np.median(width) == pytest.approx(1.55, abs=0.03)


def test_sequential_interval_stops_a_null_experiment_rarely() -> None:
    # no effect: stopping at the first look whose interval excludes 0 is a false alarm
    rng = np.random.default_rng(17)
    sims, n_max = 500, 2000
    looks, k_t, k_c = _looks(rng, sims, n_max, 0.3, 0.3)
    a, b = k_t / looks, k_c / looks
    se = np.sqrt(a * (1 - a) / looks + b * (1 - b) / looks)
    lo, hi = confidence_sequence(a - b, se, 2 * looks, n_opt=2 * n_max)
    false_alarm = ((lo > 0) | (hi < 0)).any(axis=1).mean()
    naive = ((a - b - 1.96 * se > 0) | (a - b + 1.96 * se < 0)).any(axis=1).mean()
    assert false_alarm <= 0.05 + 3 * np.sqrt(0.05 * 0.95 / sims)
    assert naive > 0.15


def test_confidence_sequence_rejects_a_bad_level() -> None:
    with pytest.raises(ValueError, match="level must be between 0 and 1, got 95"):
        confidence_sequence(0.0, 1.0, 100, n_opt=100, level=95)


# ---- sample ratio mismatch ----------------------------------------------------------


def test_srm_passes_fair_splits_at_its_nominal_rate_and_catches_a_real_mismatch() -> None:
    rng = np.random.default_rng(18)
    n = 10_000
    fair = rng.binomial(n, 0.5, 2000)
    flagged = [srm_test({"control": n - k, "treatment": k})["mismatch"] for k in fair]
    assert np.mean(flagged) < 0.001 + 3 * np.sqrt(0.001 / 2000)
    # a logging loss of 15% of the treatment arm is caught every time at this size, and
    # one of 10% nearly always (power about 97%)
    control = rng.binomial(n, 0.5, 200)
    for loss, power in ((0.15, 1.0), (0.10, 0.9)):
        kept = rng.binomial(n - control, 1 - loss)
        caught = [
            srm_test({"control": int(c), "treatment": int(k)})["mismatch"]
            for c, k in zip(control, kept, strict=True)
        ]
        assert np.mean(caught) >= power, loss


def test_srm_against_an_unequal_plan() -> None:
    r = srm_test({"control": 2000, "treatment": 8000}, {"control": 0.2, "treatment": 0.8})
    assert r["p_value"] == pytest.approx(1.0) and not r["mismatch"]
    assert r["planned"] == {"control": 0.2, "treatment": 0.8}
    r = srm_test({"control": 5000, "treatment": 5000}, {"control": 0.2, "treatment": 0.8})
    assert r["mismatch"] and r["expected"] == {"control": 2000.0, "treatment": 8000.0}
    with pytest.raises(ValueError, match=r"planned split has no share for variant\(s\) \['b'\]"):
        srm_test({"a": 1, "b": 2}, {"a": 1.0})
