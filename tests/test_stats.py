"""Shared intervals and tests: hand-worked values and invariants."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy import stats as sst

from cxkit import stats


def test_wilson_matches_hand_worked_value() -> None:
    # p = 0.5, n = 10, z = 1.95996: centre 0.5, half = z*sqrt(.025 + z^2/400)/(1 + z^2/10)
    z = sst.norm.ppf(0.975)
    half = z * np.sqrt(0.5 * 0.5 / 10 + z**2 / 400) / (1 + z**2 / 10)
    lo, hi = stats.wilson_ci(5, 10)
    assert lo == pytest.approx(0.5 - half) and hi == pytest.approx(0.5 + half)


def test_wilson_vectorised_and_empty_groups() -> None:
    lo, hi = stats.wilson_ci(np.array([0, 3, 0]), np.array([10, 3, 0]))
    assert lo[0] == 0 and hi[1] == pytest.approx(1.0)
    assert np.isnan(lo[2]) and np.isnan(hi[2])


@given(st.integers(0, 500), st.integers(1, 500))
def test_wilson_contains_the_estimate(k: int, n: int) -> None:
    k = min(k, n)
    lo, hi = stats.wilson_ci(k, n)
    assert 0 <= lo <= k / n + 1e-12 <= hi + 2e-12 <= 1 + 2e-12


def test_nps_adjusted_wald_hand_worked() -> None:
    nps, lo, hi = stats.nps_ci(50, 20, 100)
    assert nps == pytest.approx(30.0)
    pa, da = 50.75 / 103, 20.75 / 103
    half = 1.959964 * np.sqrt((pa + da - (pa - da) ** 2) / 103)
    assert lo == pytest.approx(100 * (pa - da - half), abs=1e-3)
    assert hi == pytest.approx(100 * (pa - da + half), abs=1e-3)


def test_nps_compare_is_symmetric() -> None:
    a = stats.nps_compare(60, 10, 100, 40, 30, 100)
    b = stats.nps_compare(40, 30, 100, 60, 10, 100)
    assert a["diff_points"] == pytest.approx(40.0)
    assert b["diff_points"] == pytest.approx(-40.0)
    assert a["p_value"] == pytest.approx(b["p_value"]) and a["p_value"] < 0.001


def test_two_proportion_test_matches_scipy_chi2() -> None:
    r = stats.two_proportion_test(60, 100, 40, 100)
    chi2 = sst.chi2_contingency([[60, 40], [40, 60]], correction=False)
    assert r["p_value"] == pytest.approx(chi2.pvalue)
    assert r["diff"] == pytest.approx(0.2)
    assert r["ci_low"] < 0.2 < r["ci_high"]


def test_holm_adjustment() -> None:
    adj = stats.holm([0.01, 0.04, 0.03, np.nan])
    np.testing.assert_allclose(adj[:3], [0.03, 0.06, 0.06])
    assert np.isnan(adj[3])


def test_mean_ci_and_bootstrap_are_deterministic() -> None:
    m, lo, hi, n = stats.mean_ci([1, 2, 3, 4, None])
    assert hi - m == pytest.approx(m - lo)
    assert (m, n) == (2.5, 4)
    assert lo == pytest.approx(2.5 - sst.t.ppf(0.975, 3) * np.std([1, 2, 3, 4], ddof=1) / 2)
    x = np.arange(50)
    assert stats.bootstrap_ci(x, random_state=3) == stats.bootstrap_ci(x, random_state=3)
    est, blo, bhi = stats.bootstrap_ci(x, random_state=3)
    assert blo < est < bhi


def test_bad_level_is_rejected_with_the_input() -> None:
    with pytest.raises(ValueError, match="level must be between 0 and 1, got 95"):
        stats.wilson_ci(1, 2, level=95)


def test_small_groups_flagged() -> None:
    assert stats.is_small(29) and not stats.is_small(30)
