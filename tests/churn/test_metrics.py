"""Tests for cxkit.churn.metrics: AUC interval, lift, calibration, importance, risk bands."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.exceptions import NotFittedError
from sklearn.metrics import roc_auc_score

from cxkit import churn
from cxkit.errors import UsageError


def test_lift_table_and_auc_ci() -> None:
    y = np.array([1, 1, 1, 0, 1, 0, 0, 0, 0, 0])
    s = np.linspace(1, 0, 10)
    t = churn.lift_table(y, s, n_bins=5)
    assert t["customers"].tolist() == [2] * 5
    assert t["churners"].tolist() == [2, 1, 1, 0, 0]
    assert t["lift"].iloc[0] == pytest.approx(1.0 / 0.4)
    assert t["cumulative_gain"].tolist() == pytest.approx([0.5, 0.75, 1.0, 1.0, 1.0])
    auc, lo, hi = churn.auc_ci(y, s)
    assert auc == pytest.approx(roc_auc_score(y, s))
    assert 0 <= lo < auc < hi <= 1
    assert churn.risk_band([0.1, 0.5, 0.79, 0.8]).tolist() == ["low", "medium", "medium", "high"]
    with pytest.raises(UsageError, match="thresholds must satisfy"):
        churn.risk_band([0.1], thresholds=(0.9, 0.2))


def test_auc_ci_of_one_class_is_nan() -> None:
    assert all(np.isnan(v) for v in churn.auc_ci([1, 1], [0.2, 0.3]))


def test_calibration_table_hand_worked() -> None:
    y = np.array([0, 0, 1, 0, 1, 1])
    p = np.array([0.1, 0.2, 0.3, 0.6, 0.8, 0.9])
    t = churn.calibration_table(y, p, n_bins=3)
    want = pd.DataFrame(
        {
            "bin": [1, 2, 3],
            "n": [2, 2, 2],
            "churners": [0, 1, 2],
            "mean_predicted": [0.15, 0.45, 0.85],
            "observed_rate": [0.0, 0.5, 1.0],
        }
    )
    pd.testing.assert_frame_equal(t[list(want.columns)], want, check_dtype=False)
    assert (t["ci_low"] <= t["observed_rate"]).all() and (t["observed_rate"] <= t["ci_high"]).all()


def test_permutation_importance_needs_a_fitted_model() -> None:
    with pytest.raises(NotFittedError, match="not fitted yet"):
        churn.permutation_importance(churn.ChurnModel(), pd.DataFrame({"x": [1.0]}), [1])
