"""Tests for cxkit.voc.drivers: relative weights against the exact Shapley decomposition,
the logistic version, the driver table and the key-driver ranking."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd
import pytest

import cxkit
from cxkit import voc
from cxkit.errors import NotAvailableError, UsageError
from tests.voc.helpers import T0, responses

# --------------------------------------------------------------------------------------
# key drivers
# --------------------------------------------------------------------------------------


def _r2_subset(c: np.ndarray, subset: tuple[int, ...]) -> float:
    if not subset:
        return 0.0
    idx = list(subset)
    rxx = c[np.ix_(idx, idx)]
    rxy = c[idx, -1]
    return float(rxy @ np.linalg.solve(rxx, rxy))


def _exact_shapley(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Exact Shapley (LMG) decomposition of R² over all subsets of predictors."""
    p = x.shape[1]
    c = np.corrcoef(np.column_stack([x, y]), rowvar=False)
    out = np.zeros(p)
    for j in range(p):
        others = [k for k in range(p) if k != j]
        for size in range(p):
            w = math.factorial(size) * math.factorial(p - size - 1) / math.factorial(p)
            for s in itertools.combinations(others, size):
                out[j] += w * (_r2_subset(c, tuple(sorted((*s, j)))) - _r2_subset(c, s))
    return out


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_relative_weights_match_exact_shapley(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n, p = 3000, 4
    cov = 0.3 + 0.7 * np.eye(p)  # moderately correlated predictors
    x = rng.multivariate_normal(np.zeros(p), cov, size=n)
    y = x @ np.array([0.6, 0.3, 0.1, 0.0]) + rng.normal(size=n)
    w, r2 = voc.relative_weights(x, y)
    shap = _exact_shapley(x, y)
    assert r2 == pytest.approx(shap.sum(), abs=1e-9)
    np.testing.assert_allclose(w, shap, atol=0.01)


def test_relative_weights_logistic_sums_to_r2_and_ranks() -> None:
    rng = np.random.default_rng(5)
    x = rng.normal(size=(4000, 3))
    logit = 1.5 * x[:, 0] + 0.5 * x[:, 1]
    y = (rng.random(4000) < 1 / (1 + np.exp(-logit))).astype(float)
    w, r2 = voc.relative_weights_logistic(x, y)
    assert w.sum() == pytest.approx(r2)
    assert w[0] > w[1] > w[2]
    assert w[2] < 0.01


def _driver_frame(n: int = 400, seed: int = 3) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    a = rng.integers(1, 6, n).astype(float)
    b = rng.integers(1, 6, n).astype(float)
    c = rng.integers(1, 8, n).astype(float)
    nps_score = np.clip(np.round(2 * a + 0.3 * b + rng.normal(0, 1, n) - 2), 0, 10)
    df = pd.DataFrame(
        {
            "customer_id": [f"C{i}" for i in range(n)],
            "nps_score": nps_score,
            "promoter": nps_score >= 9,
            "csat_delivery": a,
            "csat_support": b,
            "ces_support": c,
        }
    )
    df.loc[df.index[::7], "csat_support"] = np.nan  # some customers did not answer
    return df


def test_key_drivers_rank_planted_driver_first_and_are_seeded() -> None:
    df = _driver_frame()
    kd = voc.driver_importance(df, n_boot=100, random_state=1)
    assert kd["driver"].iloc[0] == "csat_delivery"
    assert kd["importance_pct"].sum() == pytest.approx(100.0)
    assert kd["weight"].sum() == pytest.approx(kd.attrs["r2"])
    assert (kd["weight_low"] <= kd["weight"]).all() and (kd["weight"] <= kd["weight_high"]).all()
    assert kd.loc[kd["driver"] == "csat_support", "n_observed"].iloc[0] == 400 - len(df.index[::7])
    again = voc.driver_importance(df, n_boot=100, random_state=1)
    pd.testing.assert_frame_equal(kd, again)
    lg = voc.driver_importance(df, method="logistic", n_boot=50)
    assert lg["driver"].iloc[0] == "csat_delivery"
    perf = kd.set_index("driver")["performance_0_100"]
    assert perf["csat_delivery"] == pytest.approx(100 * (df["csat_delivery"].mean() - 1) / 4)
    fig = voc.plot_drivers_quadrant(kd)
    assert "csat_delivery" in fig.layout.title.text
    with pytest.raises(UsageError, match="method must be 'linear' or 'logistic'"):
        voc.driver_importance(df, method="tree")
    with pytest.raises(NotAvailableError, match="at least 30 customers"):
        voc.driver_importance(df.head(20))


def test_driver_table_hand_worked() -> None:
    rows = [
        ("A", 0, "nps", 3, "web", "x", None),
        ("A", 5, "nps", 10, "web", "x", None),  # latest NPS wins
        ("A", 1, "csat", 2, "web", "delivery", None),
        ("A", 2, "csat", 4, "web", "delivery", None),  # mean 3
        ("A", 2, "ces", 6, "web", "support", None),
        ("B", 1, "nps", 5, "web", "x", None),
        ("B", 1, "csat", 5, "web", "support", None),
        ("C", 1, "csat", 1, "web", "support", None),  # no NPS: not a row
    ]
    dt = voc.driver_table(cxkit.load({"responses": responses(rows)})).set_index("customer_id")
    assert list(dt.index) == ["A", "B"]
    assert dt.loc["A", "nps_score"] == 10 and bool(dt.loc["A", "promoter"])
    assert dt.loc["A", "csat_delivery"] == pytest.approx(3.0)
    assert dt.loc["A", "ces_support"] == pytest.approx(6.0)
    assert np.isnan(dt.loc["B", "csat_delivery"])
    assert dt.loc["B", "csat_support"] == pytest.approx(5.0)


def test_key_drivers_on_data_is_driver_importance_of_the_driver_table() -> None:
    rng = np.random.default_rng(11)
    rows = []
    for i in range(80):
        delivery = int(rng.integers(1, 6))
        support = int(rng.integers(1, 6))
        nps_score = int(np.clip(2 * delivery + int(rng.integers(-1, 2)), 0, 10))
        rows.append((f"C{i}", 1, "csat", delivery, "web", "delivery", None))
        rows.append((f"C{i}", 2, "csat", support, "web", "support", None))
        rows.append((f"C{i}", 3, "nps", nps_score, "web", "x", None))
    rows.append(("C0", 30, "csat", 1, "web", "delivery", None))  # after as_of below
    data = cxkit.load({"responses": responses(rows)})
    as_of = T0 + pd.Timedelta(days=10)
    kd = voc.key_drivers(data, n_boot=20, random_state=3, as_of=as_of)
    table = voc.driver_table(data, as_of=as_of)
    pd.testing.assert_frame_equal(kd, voc.driver_importance(table, n_boot=20, random_state=3))
    assert kd["driver"].iloc[0] == "csat_delivery"
    assert kd.attrs["n"] == 80
    with pytest.raises(NotAvailableError, match="column 'touchpoint'"):
        voc.key_drivers(cxkit.load({"responses": responses(rows).drop(columns="touchpoint")}))
