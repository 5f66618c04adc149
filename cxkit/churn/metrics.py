"""How good a churn model is, and what it relies on: AUC, lift, calibration, importance.

:func:`auc_ci` (ROC AUC with the Hanley–McNeil interval), :func:`auc_difference` (the
DeLong interval of the difference of two AUCs on the same customers), :func:`lift_table`
(lift and cumulative gains by score decile), :func:`calibration_table` (predicted against observed
churn per tenth), :func:`permutation_importance` (drop in ROC AUC per shuffled design
column) and :func:`risk_band` (low / medium / high from calibrated probabilities).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike
from scipy.stats import norm, rankdata
from sklearn.metrics import (
    average_precision_score,
    brier_score_loss,
    precision_recall_curve,
    roc_auc_score,
    roc_curve,
)
from sklearn.utils.validation import check_is_fitted

from cxkit.churn.model import ChurnModel, limit_threads, predict_rows
from cxkit.errors import UsageError
from cxkit.stats import wilson_ci

__all__ = [
    "BAND_LABELS",
    "BAND_THRESHOLDS",
    "auc_ci",
    "auc_difference",
    "calibration_table",
    "curve_rows",
    "lift_table",
    "metrics_row",
    "permutation_importance",
    "risk_band",
]

#: Risk bands: calibrated churn probability below 0.5 is "low", 0.5–0.8 "medium",
#: 0.8 and above "high".
BAND_THRESHOLDS: tuple[float, float] = (0.5, 0.8)
BAND_LABELS: tuple[str, str, str] = ("low", "medium", "high")


def auc_ci(y: ArrayLike, score: ArrayLike, *, level: float = 0.95) -> tuple[float, float, float]:
    """Return the ROC AUC with the Hanley–McNeil (1982) interval.

    Parameters
    ----------
    y
        Outcomes (1 = churned).
    score
        Scores; higher = more likely to churn.
    level
        The interval's confidence level.

    Returns
    -------
    (auc, low, high)
        NaN three times when ``y`` has one class only.

    Examples
    --------
    >>> auc, lo, hi = auc_ci([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8])
    >>> round(auc, 2)
    0.75
    """
    y = np.asarray(y, dtype=int)
    s = np.asarray(score, dtype=float)
    n1, n0 = int(y.sum()), int((1 - y).sum())
    if n1 == 0 or n0 == 0:
        return np.nan, np.nan, np.nan
    a = float(roc_auc_score(y, s))
    q1, q2 = a / (2 - a), 2 * a * a / (1 + a)
    var = (a * (1 - a) + (n1 - 1) * (q1 - a * a) + (n0 - 1) * (q2 - a * a)) / (n1 * n0)
    z = float(norm.ppf(0.5 + level / 2))
    se = float(np.sqrt(max(var, 0.0)))
    return a, max(0.0, a - z * se), min(1.0, a + z * se)


def _placements(y: np.ndarray, s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return DeLong's placement values of the churners and of the stayers.

    Per churner, the share of stayers it outranks (ties count ½); per stayer, the share
    of churners that outrank it.
    """
    pos, neg = s[y == 1], s[y == 0]
    m, n = len(pos), len(neg)
    both = rankdata(np.concatenate([pos, neg]))
    v10 = (both[:m] - rankdata(pos)) / n
    v01 = 1.0 - (both[m:] - rankdata(neg)) / m
    return v10, v01


def auc_difference(
    y: ArrayLike, score_a: ArrayLike, score_b: ArrayLike, *, level: float = 0.95
) -> dict[str, float]:
    """Return AUC(a) − AUC(b) on the same customers with DeLong's paired interval.

    DeLong, DeLong & Clarke-Pearson (1988): the variance of the difference of two
    correlated ROC AUCs from their placement values (computed with ranks, Sun & Xu 2014),
    so the interval accounts for both scores ranking the same customers.

    Parameters
    ----------
    y
        Outcomes (1 = churned).
    score_a, score_b
        Two scores of the same customers; higher = more likely to churn.
    level
        The interval's confidence level.

    Returns
    -------
    dict of str to float
        ``auc_a``, ``auc_b``, ``difference`` (a − b), ``ci_low``, ``ci_high``, ``se`` and
        the two-sided ``p_value`` of no difference; NaN when ``y`` has one class only.

    Examples
    --------
    >>> d = auc_difference([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8], [0.1, 0.2, 0.3, 0.4])
    >>> round(d["auc_a"], 2), round(d["auc_b"], 2), round(d["difference"], 2)
    (0.75, 1.0, -0.25)
    """
    y = np.asarray(y, dtype=int)
    a = np.asarray(score_a, dtype=float)
    b = np.asarray(score_b, dtype=float)
    m, n = int(y.sum()), int((1 - y).sum())
    keys = ("auc_a", "auc_b", "difference", "ci_low", "ci_high", "se", "p_value")
    if m < 2 or n < 2:
        return dict.fromkeys(keys, np.nan)
    a10, a01 = _placements(y, a)
    b10, b01 = _placements(y, b)
    diff = float(a10.mean() - b10.mean())
    var = float(np.var(a10 - b10, ddof=1) / m + np.var(a01 - b01, ddof=1) / n)
    se = float(np.sqrt(max(var, 0.0)))
    z = float(norm.ppf(0.5 + level / 2))
    p = float(2 * norm.sf(abs(diff) / se)) if se > 0 else (1.0 if diff == 0 else 0.0)
    return {
        "auc_a": float(a10.mean()),
        "auc_b": float(b10.mean()),
        "difference": diff,
        "ci_low": diff - z * se,
        "ci_high": diff + z * se,
        "se": se,
        "p_value": p,
    }


def _rank_deciles(score: np.ndarray, n_bins: int = 10) -> np.ndarray:
    """Bin 1 = the highest scores. Ties are broken by position (stable, deterministic)."""
    order = np.argsort(-np.asarray(score, dtype=float), kind="stable")
    ranks = np.empty(len(order), dtype=int)
    ranks[order] = np.arange(len(order))
    return (ranks * n_bins // max(len(order), 1)) + 1


def lift_table(y: ArrayLike, score: ArrayLike, *, n_bins: int = 10) -> pd.DataFrame:
    """Return lift and cumulative gains by score decile (decile 1 = highest predicted risk).

    Parameters
    ----------
    y
        Outcomes (1 = churned).
    score
        Scores; ties are broken by position.
    n_bins
        The number of equal groups.

    Returns
    -------
    pandas.DataFrame
        ``decile, customers, churners, churn_rate, ci_low, ci_high, lift,
        cumulative_customers_share, cumulative_gain`` (Wilson interval of the churn
        rate; gain = share of all churners captured in deciles 1..k).

    Examples
    --------
    >>> t = lift_table([1, 1, 0, 0], [0.9, 0.8, 0.2, 0.1], n_bins=2)
    >>> t[["decile", "churn_rate", "lift", "cumulative_gain"]].to_dict("list")
    {'decile': [1, 2], 'churn_rate': [1.0, 0.0], 'lift': [2.0, 0.0], 'cumulative_gain': [1.0, 1.0]}
    """
    y = np.asarray(y, dtype=int)
    dec = _rank_deciles(np.asarray(score, dtype=float), n_bins)
    df = pd.DataFrame({"decile": dec, "y": y})
    g = df.groupby("decile").agg(customers=("y", "size"), churners=("y", "sum")).reset_index()
    g["churn_rate"] = g["churners"] / g["customers"]
    lo, hi = wilson_ci(g["churners"].to_numpy(), g["customers"].to_numpy())
    g["ci_low"], g["ci_high"] = lo, hi
    base = y.mean() if len(y) else np.nan
    g["lift"] = g["churn_rate"] / base if base > 0 else np.nan
    g["cumulative_customers_share"] = g["customers"].cumsum() / g["customers"].sum()
    total = g["churners"].sum()
    g["cumulative_gain"] = g["churners"].cumsum() / total if total > 0 else np.nan
    return g.astype({"decile": "int64", "customers": "int64", "churners": "int64"})


def calibration_table(y: ArrayLike, p: ArrayLike, n_bins: int = 10) -> pd.DataFrame:
    """Return the mean predicted probability against the observed churn rate per group.

    Parameters
    ----------
    y
        Outcomes (1 = churned).
    p
        Predicted probabilities.
    n_bins
        The number of equal groups by predicted probability.

    Returns
    -------
    pandas.DataFrame
        ``bin`` (1 = lowest predictions), ``n, churners, mean_predicted,
        observed_rate, ci_low, ci_high`` (Wilson interval of the observed rate).

    Examples
    --------
    >>> t = calibration_table([0, 1, 0, 1], [0.1, 0.2, 0.7, 0.9], n_bins=2)
    >>> t[["bin", "mean_predicted", "observed_rate"]].round(2).to_dict("list")
    {'bin': [1, 2], 'mean_predicted': [0.15, 0.8], 'observed_rate': [0.5, 0.5]}
    """
    y = np.asarray(y, dtype=int)
    p = np.asarray(p, dtype=float)
    dec = _rank_deciles(p, n_bins)
    df = pd.DataFrame({"bin": n_bins + 1 - dec, "y": y, "p": p})
    g = df.groupby("bin").agg(n=("y", "size"), churners=("y", "sum"), mean_predicted=("p", "mean"))
    g = g.reset_index()
    g["observed_rate"] = g["churners"] / g["n"]
    lo, hi = wilson_ci(g["churners"].to_numpy(), g["n"].to_numpy())
    g["ci_low"], g["ci_high"] = lo, hi
    return g


def metrics_row(name: str, y: np.ndarray, p: np.ndarray) -> dict[str, object]:
    """Return one model's ROC AUC (with interval), PR AUC, Brier score and counts.

    Parameters
    ----------
    name
        The model's key.
    y
        Outcomes (1 = churned).
    p
        The model's scores; the Brier score only when they are probabilities.

    Returns
    -------
    dict
        ``model, roc_auc, roc_auc_low, roc_auc_high, pr_auc, brier, customers,
        churners``.
    """
    auc, lo, hi = auc_ci(y, p)
    ok = np.all((p >= 0) & (p <= 1))
    return {
        "model": name,
        "roc_auc": auc,
        "roc_auc_low": lo,
        "roc_auc_high": hi,
        "pr_auc": float(average_precision_score(y, p)),
        "brier": float(brier_score_loss(y, p)) if ok else np.nan,
        "customers": len(y),
        "churners": int(y.sum()),
    }


def curve_rows(name: str, y: np.ndarray, p: np.ndarray, max_points: int = 200) -> pd.DataFrame:
    """Return the ROC and precision-recall curve points of one model.

    Parameters
    ----------
    name
        The model's key.
    y
        Outcomes (1 = churned).
    p
        The model's scores.
    max_points
        At most this many points per curve (evenly thinned).

    Returns
    -------
    pandas.DataFrame
        ``model, curve`` (``"roc"``: x = false positive rate, y = true positive rate;
        ``"pr"``: x = recall, y = precision), ``x, y``.
    """
    fpr, tpr, _ = roc_curve(y, p)
    prec, rec, _ = precision_recall_curve(y, p)

    def thin(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if len(a) <= max_points:
            return a, b
        idx = np.unique(np.linspace(0, len(a) - 1, max_points).round().astype(int))
        return a[idx], b[idx]

    fpr, tpr = thin(fpr, tpr)
    rec, prec = thin(rec, prec)
    return pd.concat(
        [
            pd.DataFrame({"model": name, "curve": "roc", "x": fpr, "y": tpr}),
            pd.DataFrame({"model": name, "curve": "pr", "x": rec, "y": prec}),
        ],
        ignore_index=True,
    )


def _fast_auc(y: np.ndarray, s: np.ndarray) -> float:
    n1 = int(y.sum())
    n0 = len(y) - n1
    r = rankdata(s)
    return float((r[y == 1].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


def _used_columns(estimator: object, n_columns: int) -> np.ndarray:
    """Which columns a fitted gradient-boosting model splits on (all, if unknown)."""
    used = np.zeros(n_columns, dtype=bool)
    try:
        for stage in estimator._predictors:  # type: ignore[attr-defined]
            for tree in stage:
                nodes = tree.nodes
                used[nodes["feature_idx"][~nodes["is_leaf"].astype(bool)]] = True
    except (AttributeError, KeyError, TypeError, IndexError):
        return np.ones(n_columns, dtype=bool)
    return used


def permutation_importance(
    model: ChurnModel,
    X: pd.DataFrame,
    y: ArrayLike,
    *,
    n_repeats: int = 3,
    random_state: int = 0,
) -> pd.DataFrame:
    """Return the drop in ROC AUC when each design column is shuffled.

    The ranking score is the uncalibrated estimator's: calibration is monotone, so it
    ranks customers the same way, and this avoids sklearn's per-call overhead.

    Parameters
    ----------
    model
        A fitted :class:`~cxkit.churn.ChurnModel`.
    X
        Features of the customers to measure on.
    y
        Their outcomes (1 = churned).
    n_repeats
        Shuffles per column.
    random_state
        The seed of the shuffles.

    Returns
    -------
    pandas.DataFrame
        ``feature, importance_mean, importance_std`` (over the repeats), largest first
        (empty when ``y`` has one class).

    Raises
    ------
    sklearn.exceptions.NotFittedError
        When ``model`` is not fitted.
    """
    check_is_fitted(model)
    y = np.asarray(y, dtype=int)
    cols = ["feature", "importance_mean", "importance_std"]
    if len(np.unique(y)) < 2:
        return pd.DataFrame(columns=cols)
    rng = np.random.default_rng(random_state)
    Xd = model.design_.transform(X)
    base = model.base_estimator_

    def rank_score(M: np.ndarray) -> np.ndarray:
        return base.predict_proba(M)[:, 1]

    def scores(M: np.ndarray, blocks: int = 1) -> np.ndarray:
        if model.estimator == "hgb":
            return predict_rows(rank_score, M, n_jobs=model.n_jobs, n_threads=model.n_threads)
        # BLAS sums need not split by rows bit for bit: one call per block of n rows
        return np.concatenate([rank_score(b) for b in np.split(M, blocks)])

    used = _used_columns(base, Xd.shape[1])
    n = len(Xd)
    with limit_threads(model.n_threads):
        ref = _fast_auc(y, scores(Xd))
        means, sds = [], []
        for j in range(Xd.shape[1]):
            col = Xd[:, j].copy()
            if not used[j] or np.all(np.isnan(col)) or np.nanmin(col) == np.nanmax(col):
                # a column no tree splits on (or a constant one) cannot change the ranking
                means.append(0.0)
                sds.append(0.0)
                continue
            # the repeats' shuffles stacked into one matrix: one prediction call per column
            stacked = np.tile(Xd, (n_repeats, 1))
            for r in range(n_repeats):
                stacked[r * n : (r + 1) * n, j] = col[rng.permutation(n)]
            p = scores(stacked, n_repeats)
            drops = [ref - _fast_auc(y, p[r * n : (r + 1) * n]) for r in range(n_repeats)]
            means.append(float(np.mean(drops)))
            sds.append(float(np.std(drops)))
    out = pd.DataFrame(
        {"feature": model.feature_names_, "importance_mean": means, "importance_std": sds}
    )
    return out.sort_values(
        ["importance_mean", "feature"], ascending=[False, True], kind="stable"
    ).reset_index(drop=True)


def risk_band(p: ArrayLike, *, thresholds: tuple[float, float] = BAND_THRESHOLDS) -> pd.Series:
    """Return ``low`` / ``medium`` / ``high`` from calibrated churn probabilities.

    Parameters
    ----------
    p
        Churn probabilities.
    thresholds
        ``(low, high)``: below ``low`` is "low", from ``high`` on "high".

    Returns
    -------
    pandas.Series
        An ordered categorical.

    Raises
    ------
    UsageError
        When the thresholds are not ``0 <= low < high <= 1``.

    Examples
    --------
    >>> risk_band([0.1, 0.6, 0.95]).tolist()
    ['low', 'medium', 'high']
    """
    lo, hi = thresholds
    if not 0 <= lo < hi <= 1:
        raise UsageError(f"thresholds must satisfy 0 <= low < high <= 1, got {thresholds!r}")
    arr = np.asarray(p, dtype=float)
    band = np.where(arr >= hi, BAND_LABELS[2], np.where(arr >= lo, BAND_LABELS[1], BAND_LABELS[0]))
    return pd.Series(pd.Categorical(band, categories=list(BAND_LABELS), ordered=True))
