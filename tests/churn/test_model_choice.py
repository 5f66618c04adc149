"""A churn model that loses to its baseline: DeLong's interval, the choice, the scores used."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.stats import norm
from sklearn.metrics import roc_auc_score

from cxkit import churn, datasets
from cxkit.churn.features import bgnbd_scores
from cxkit.errors import UsageError

# --------------------------------------------------------------------------------------
# auc_difference: DeLong's paired interval
# --------------------------------------------------------------------------------------


def _brute_force_delong(y: np.ndarray, a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """The difference and its DeLong variance from explicit churner × stayer comparisons."""

    def psi(s: np.ndarray) -> np.ndarray:
        pos, neg = s[y == 1], s[y == 0]
        return (pos[:, None] > neg[None, :]) + 0.5 * (pos[:, None] == neg[None, :])

    pa, pb = psi(a), psi(b)
    v10 = np.column_stack([pa.mean(axis=1), pb.mean(axis=1)])  # per churner
    v01 = np.column_stack([pa.mean(axis=0), pb.mean(axis=0)])  # per stayer
    s10, s01 = np.cov(v10, rowvar=False), np.cov(v01, rowvar=False)
    contrast = np.array([1.0, -1.0])
    var = contrast @ s10 @ contrast / len(v10) + contrast @ s01 @ contrast / len(v01)
    return float(pa.mean() - pb.mean()), float(var)


def test_auc_difference_matches_the_pairwise_definition() -> None:
    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, 300)
    a = np.round(y + rng.normal(size=300), 1)  # rounded: ties count one half
    b = np.round(y + 1.7 * rng.normal(size=300), 1)
    got = churn.auc_difference(y, a, b)
    diff, var = _brute_force_delong(y, a, b)
    assert got["auc_a"] == pytest.approx(roc_auc_score(y, a))
    assert got["auc_b"] == pytest.approx(roc_auc_score(y, b))
    assert got["difference"] == pytest.approx(diff)
    assert got["se"] == pytest.approx(np.sqrt(var))
    z = norm.ppf(0.975)
    assert got["ci_low"] == pytest.approx(diff - z * np.sqrt(var))
    assert got["ci_high"] == pytest.approx(diff + z * np.sqrt(var))
    assert got["p_value"] == pytest.approx(2 * norm.sf(abs(diff) / np.sqrt(var)))


def test_auc_difference_is_antisymmetric_and_zero_for_the_same_scores() -> None:
    rng = np.random.default_rng(4)
    y = rng.integers(0, 2, 200)
    a, b = y + rng.normal(size=200), y + rng.normal(size=200)
    ab, ba = churn.auc_difference(y, a, b), churn.auc_difference(y, b, a)
    assert ab["difference"] == pytest.approx(-ba["difference"])
    assert ab["ci_low"] == pytest.approx(-ba["ci_high"])
    same = churn.auc_difference(y, a, a)
    assert same["difference"] == 0 and same["se"] == 0 and same["p_value"] == 1.0
    # one class only: nothing to compare
    assert np.isnan(churn.auc_difference(np.ones(5), a[:5], b[:5])["difference"])


# --------------------------------------------------------------------------------------
# choose_scores: the rule
# --------------------------------------------------------------------------------------


def _predictions(model_noise: float, seed: int = 0, n: int = 600) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    return pd.DataFrame(
        {
            "churned": y,
            "model": 1 / (1 + np.exp(-(y + model_noise * rng.normal(size=n)))),
            "logit": 1 / (1 + np.exp(-(y + 1.0 * rng.normal(size=n)))),
            "bgnbd": 1 / (1 + np.exp(-(y + 1.5 * rng.normal(size=n)))),
        }
    )


def test_the_model_is_used_when_it_beats_its_best_baseline() -> None:
    choice = churn.choose_scores(_predictions(model_noise=0.5))
    assert choice.used == "model" and choice.model_wins
    assert choice.baseline == "logit"  # the better of the two baselines
    assert choice.difference > 0 and choice.ci_low > 0 and choice.clear
    assert choice.warning() is None
    assert choice.sentence().startswith("Today's scores come from the churn model")
    assert f"{choice.difference:+.3f}" in choice.sentence()


def test_a_better_baseline_replaces_the_model_and_is_named() -> None:
    p = _predictions(model_noise=3.0)
    choice = churn.choose_scores(p)
    best = max(("logit", "bgnbd"), key=lambda k: roc_auc_score(p.churned, p[k]))
    assert choice.used == choice.baseline == best and not choice.model_wins
    assert choice.model_auc == pytest.approx(roc_auc_score(p.churned, p.model))
    assert choice.baseline_auc == pytest.approx(roc_auc_score(p.churned, p[best]))
    assert choice.difference < 0
    warning = choice.warning()
    assert warning is not None and churn.MODEL_LABELS[best] in warning
    assert f"{choice.ci_low:+.3f} to {choice.ci_high:+.3f}" in warning
    assert "ranks churners worse" in warning  # the interval excludes 0
    # a tie is not a win: the baseline is used
    tie = p.assign(model=p[best])
    assert churn.choose_scores(tie).used == best
    # a loss inside the noise is said to be one
    close = churn.ModelChoice(
        used="logit", baseline="logit", model_auc=0.80, baseline_auc=0.81,
        difference=-0.01, ci_low=-0.03, ci_high=0.01, p_value=0.3, customers=500,
    )  # fmt: skip
    assert not close.clear and "no better than" in close.warning()


def test_no_baseline_no_choice() -> None:
    p = _predictions(0.5)[["churned", "model"]]
    assert churn.choose_scores(p) is None


# --------------------------------------------------------------------------------------
# the analysis on CDNOW, where the churn model loses to BG/NBD
# --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cdnow_result() -> churn.ChurnResult:
    return churn.analyze(datasets.cdnow(), random_state=0)


def test_cdnow_scores_come_from_the_baseline_that_beat_the_model(
    cdnow_result: churn.ChurnResult,
) -> None:
    res = cdnow_result
    v = res.backtest
    assert v.choice is not None and not v.choice.model_wins
    assert v.auc(v.choice.used) > v.auc("model")
    assert res.scores_from == v.choice.used == v.scores_used
    assert res.scores.attrs["scores_from"] == res.scores_from
    # the scores are the baseline's at as_of: BG/NBD refitted on the orders up to as_of
    base, _ = bgnbd_scores(datasets.cdnow().upto(res.as_of), res.as_of, 90)
    key = {"bgnbd": "p_no_order", "p_alive": "p_alive"}[res.scores_from]
    expected = base.set_index("customer_id")[key]
    if res.scores_from == "p_alive":
        expected = 1 - expected
    got = res.scores.set_index("customer_id")["churn_probability"]
    pd.testing.assert_series_equal(
        got.sort_index(), expected.reindex(got.index).sort_index(), check_names=False
    )
    bands = churn.risk_band(res.scores.churn_probability, thresholds=res.thresholds)
    assert (res.scores.risk_band.astype(str).to_numpy() == bands.astype(str).to_numpy()).all()
    # the lift describes the scores used
    lift = churn.lift_table(v.predictions.churned, v.predictions[res.scores_from])
    pd.testing.assert_frame_equal(v.lift, lift)


def test_cdnow_report_warns_and_names_the_scores_used(cdnow_result: churn.ChurnResult) -> None:
    res = cdnow_result
    warning = res.model_warning()
    assert warning is not None and res.scores_label in warning
    by = {f.metric: f for f in res.findings()}
    assert "does not beat its best baseline" in by["model_auc"].sentence
    assert res.scores_label in by["model_auc"].sentence
    assert res.scores_label in by["high_risk_customers"].sentence
    assert by["high_risk_customers"].extra["scores_from"] == res.scores_from
    takeaways = res.takeaways()
    assert res.scores_label in takeaways["scores"] and res.scores_label in takeaways["lift"]
    assert "churn model" in takeaways["calibration"]  # still the churn model's calibration


def test_demo_model_wins_and_keeps_its_scores(demo_result: churn.ChurnResult) -> None:
    res = demo_result
    choice = res.choice
    assert choice is not None
    assert res.scores_from == choice.used
    if choice.model_wins:
        assert res.model_warning() is None
        assert "Today's scores come from the churn model" in res.takeaways()["scores"]
    else:
        assert res.scores_label in res.model_warning()


def test_score_from_a_named_model() -> None:
    data = datasets.cdnow()
    with pytest.raises(UsageError, match="scores_from must be one of"):
        churn.score(data, scores_from="oracle")
    quiet = churn.score(data, scores_from="bgnbd")
    left = churn.score(data, scores_from="p_alive")
    assert quiet.attrs["scores_from"] == "bgnbd" and left.attrs["scores_from"] == "p_alive"
    assert quiet.customer_id.tolist() == left.customer_id.tolist()
    # P(no order in the horizon) >= P(left for good): a customer who left places no order
    assert (quiet.churn_probability >= left.churn_probability - 1e-12).all()
