"""Tests for cxkit.churn.model: the scikit-learn conventions of ChurnModel, fit and predict."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError

import cxkit
from cxkit import churn
from cxkit.churn.metrics import permutation_importance
from cxkit.churn.model import (
    MIN_ROWS_PER_JOB,
    BlockwiseHistGradientBoostingClassifier,
    in_row_blocks,
    make_estimator,
    predict_rows,
    subsample,
)
from cxkit.errors import UsageError


def test_model_api(demo_data: cxkit.CXData) -> None:
    model = churn.ChurnModel(estimator="logit", random_state=1)
    with pytest.raises(NotFittedError, match="not fitted"):
        model.predict_proba(demo_data)
    with pytest.raises(UsageError, match="estimator must be one of"):
        churn.ChurnModel(estimator="forest").fit(demo_data)
    assert model.fit(demo_data, cutoff="2024-06-30") is model
    assert model.cutoffs_["fit"] < model.cutoffs_["calibrate"]
    assert "calibrated" in model.calibration_split_
    p = model.predict_proba(demo_data, as_of="2024-09-30")
    assert p["churn_probability"].between(0, 1).all() and p["customer_id"].is_unique
    s = churn.score(demo_data, as_of="2024-12-31", model=model, thresholds=(0.3, 0.6))
    assert s.attrs["thresholds"] == (0.3, 0.6)
    assert (s["risk_band"] == "high").sum() == (s["churn_probability"] >= 0.6).sum()


def test_init_only_stores_and_nothing_learned_before_fit() -> None:
    model = churn.ChurnModel(horizon_days=60, calibration="sigmoid")
    assert model.get_params()["horizon_days"] == 60
    assert clone(model).get_params() == model.get_params()
    assert not [k for k in vars(model) if k.endswith("_")]
    for call in (
        lambda: model.predict_frame(pd.DataFrame({"customer_id": ["a"]})),
        lambda: model.predict_proba(None),  # type: ignore[arg-type]
    ):
        with pytest.raises(NotFittedError, match="not fitted yet"):
            call()
    with pytest.raises(UsageError, match=r"calibration must be one of .* got 'platt'"):
        churn.ChurnModel(calibration="platt").fit(None)  # type: ignore[arg-type]


def test_fit_at_the_default_cutoff_and_the_calibration_split(demo_data: cxkit.CXData) -> None:
    model = churn.ChurnModel(random_state=0).fit(demo_data)
    end = churn.data_end(demo_data, model.definition_)
    # the latest whole day whose 90-day window is observed
    want = (end - pd.Timedelta(days=90)).normalize() + pd.Timedelta("1D") - pd.Timedelta("1us")
    assert model.cutoffs_["calibrate"] == want
    assert model.cutoffs_["fit"] == want - pd.Timedelta(days=90)
    assert model.calibration_method_ == "isotonic" and model.n_calibrate_ >= 500
    assert len(model.feature_names_) > 20 and 0 < model.churn_rate_fit_ < 1
    assert model.predict_frame(pd.DataFrame(columns=["customer_id"])).shape == (0,)


def test_helpers() -> None:
    rng = np.random.default_rng(0)
    assert subsample(5, None, rng).tolist() == [0, 1, 2, 3, 4]
    picked = subsample(100, 10, rng)
    assert len(picked) == 10 and (np.diff(picked) > 0).all()
    assert type(make_estimator("hgb", 0)) is BlockwiseHistGradientBoostingClassifier
    assert type(make_estimator("logit", 0)).__name__ == "Pipeline"


def test_threads_do_not_change_predictions(demo_data: cxkit.CXData) -> None:
    model = churn.ChurnModel(random_state=0).fit(demo_data, cutoff="2024-06-30")
    X = churn.features(demo_data, "2024-09-30")
    X = pd.concat([X] * (2 * MIN_ROWS_PER_JOB // len(X) + 1), ignore_index=True)
    two = model.predict_frame(X)  # row chunks on two threads
    one = model.set_params(n_jobs=1).predict_frame(X)
    np.testing.assert_array_equal(one, two)
    y = np.arange(len(X)) % 2
    by_one = permutation_importance(model, X, y, n_repeats=2)
    by_two = permutation_importance(model.set_params(n_jobs=2), X, y, n_repeats=2)
    pd.testing.assert_frame_equal(by_one, by_two)


def test_blockwise_boosting_predicts_bit_for_bit_like_scikit_learn() -> None:
    from sklearn.ensemble import HistGradientBoostingClassifier

    rng = np.random.default_rng(1)
    X = rng.normal(size=(6_000, 9))
    X[rng.random(X.shape) < 0.05] = np.nan
    y = (np.nan_to_num(X[:, 0]) + rng.normal(size=len(X)) > 0).astype(int)
    params = {"max_iter": 30, "early_stopping": False, "random_state": 0}
    plain = HistGradientBoostingClassifier(**params).fit(X, y)
    blocks = BlockwiseHistGradientBoostingClassifier(**params).fit(X, y)
    assert clone(blocks).get_params() == plain.get_params()
    # blocks of 256 rows: 24 of them here, the last one short
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr("cxkit.churn.model.PREDICT_BLOCK_BYTES", 256 * 9 * 8)
        np.testing.assert_array_equal(blocks.predict_proba(X), plain.predict_proba(X))
        np.testing.assert_array_equal(blocks.decision_function(X), plain.decision_function(X))
    calls: list[int] = []

    def spy(m: np.ndarray) -> np.ndarray:
        calls.append(len(m))
        return m[:, 0]

    out = in_row_blocks(spy, X, block_bytes=1000 * 9 * 8)
    np.testing.assert_array_equal(out, X[:, 0])
    assert calls == [1000] * 6
    assert in_row_blocks(spy, X[:10]).shape == (10,) and calls[-1] == 10


def test_predict_rows_keeps_row_order() -> None:
    M = np.arange(3 * MIN_ROWS_PER_JOB, dtype=float).reshape(-1, 1)
    np.testing.assert_array_equal(predict_rows(lambda m: m[:, 0] * 2, M, n_jobs=3), M[:, 0] * 2)
    assert predict_rows(lambda m: m[:, 0], M[:10], n_jobs=2).shape == (10,)


def test_signed_log1p_is_bit_for_bit_the_plain_formula() -> None:
    from cxkit.churn.model import _signed_log1p

    rng = np.random.default_rng(0)
    x = rng.standard_normal((500, 7)) * 100
    x[rng.random(x.shape) < 0.1] = np.nan
    x[rng.random(x.shape) < 0.1] = 0.0
    x[:3, 0] = -0.0
    expected = np.sign(x) * np.log1p(np.abs(x))
    got = _signed_log1p(x)
    assert got is not x and got.view(np.int64).tolist() == expected.view(np.int64).tolist()
    assert np.isnan(x).sum() > 0 and not np.shares_memory(got, x)
