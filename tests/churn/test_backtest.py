"""Tests for cxkit.churn.backtest: the time split, the baselines, and AUC vs the planted truth."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

import cxkit
from cxkit import churn, synth


def test_backtest_on_demo_does_not_overlap(demo_data: cxkit.CXData) -> None:
    v = churn.run_backtest(
        demo_data, t0="2024-06-30", importance_rows=200, importance_repeats=1, random_state=0
    )
    assert isinstance(v, churn.ChurnBacktest)
    h = pd.Timedelta(days=90)
    assert v.cutoffs["calibrate"] == pd.Timestamp("2024-06-30 23:59:59.999999")
    assert v.cutoffs["test"] - v.cutoffs["calibrate"] == h
    assert v.cutoffs["calibrate"] - v.cutoffs["fit"] == h
    assert list(v.metrics["model"]) == list(churn.MODEL_LABELS)
    assert list(v.metrics["label"]) == list(churn.MODEL_LABELS.values())
    assert v.auc("model") == pytest.approx(v.metrics.roc_auc.iloc[0])
    assert np.isnan(v.auc("unknown"))
    assert 0 < v.test_churn_rate < 1
    assert set(v.calibration["model"]) == set(churn.MODEL_LABELS)
    assert any("200 test customers, 1 repeats" in n for n in v.notes)


def truth_scores(
    truth: pd.DataFrame, orders: pd.DataFrame, ids: pd.Series, t1: pd.Timestamp, h: int
) -> dict[str, np.ndarray]:
    """Churn scores from the planted truth for customers ``ids`` at cutoff ``t1``.

    * ``oracle``: the truth's alive status at ``t1`` is known: P = 1 if dropped out by
      then, else exp(−λh) (the probability of no purchase in h while alive);
    * ``truth_params``: the true per-customer λ and p applied to what can be observed
      (the order history up to ``t1``): P(alive) from BG/NBD with those λ, p, then
      P(no order in h) = 1 − P(alive)·(1 − exp(−λh)).
    """
    tr = truth.set_index("customer_id").loc[ids.astype(str)]
    lam = tr["lambda_per_day"].to_numpy()
    p = tr["p_dropout"].to_numpy()
    dead = (tr["dropout_at"].notna() & (tr["dropout_at"] <= t1)).to_numpy()
    oracle = np.where(dead, 1.0, np.exp(-lam * h))
    o = orders[orders["ts"] <= t1].groupby("customer_id")["ts"].agg(["min", "max", "count"])
    o = o.loc[ids.astype(str)]
    x = o["count"].to_numpy() - 1
    since_last = (t1 - o["max"]).dt.total_seconds().to_numpy() / 86400
    stay = (1 - p) * np.exp(-lam * since_last)
    alive = np.where(x > 0, stay / (stay + p), 1.0)
    return {"oracle": oracle, "truth_params": 1 - alive * (1 - np.exp(-lam * h))}


@pytest.mark.slow
def test_auc_close_to_planted_truth_on_20k_demo(tmp_path: Path) -> None:
    out = synth.write_demo(tmp_path / "demo20k", customers=20_000, seed=42)
    data = cxkit.load(out)
    v = churn.run_backtest(data, random_state=0, importance_rows=500, importance_repeats=1)
    preds = v.predictions
    truth = pd.read_parquet(Path(out) / "_truth.parquet")
    orders = data.to_pandas("orders")
    sc = truth_scores(truth, orders, preds["customer_id"], v.cutoffs["test"], 90)
    y = preds["churned"].to_numpy()
    auc_model = v.auc("model")
    auc_truth = roc_auc_score(y, sc["truth_params"])
    auc_oracle = roc_auc_score(y, sc["oracle"])
    print(
        f"AUC model {auc_model:.4f}, truth (true λ, p on observed orders) {auc_truth:.4f}, oracle (alive status known) {auc_oracle:.4f}"
    )
    assert abs(auc_model - auc_truth) <= 0.03
    # The oracle also knows whether each customer has already dropped out, which no
    # observable feature reveals; measured gap 0.06 (see the churn notebook's notes).
    assert auc_oracle - auc_model <= 0.08
    assert auc_model > v.auc("bgnbd") and auc_model > v.auc("p_alive")
