"""Time-split validation of the churn model: :func:`run_backtest` -> :class:`ChurnBacktest`.

The model is trained with the labels at ``t0`` and tested at ``t1 = t0 + h``, so the
label windows do not overlap; it is compared with a logistic-regression baseline and,
when orders exist, the BG/NBD baselines (``1 − p_alive`` and the probability of no
order in the horizon): ROC AUC, PR AUC, Brier, calibration, lift and gains by decile,
permutation importance.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from cxkit.churn.definition import ChurnDefinition, data_end, resolve_definition
from cxkit.churn.features import BgnbdFit, FeatureCache, bgnbd_scores
from cxkit.churn.metrics import (
    calibration_table,
    curve_rows,
    lift_table,
    metrics_row,
    permutation_importance,
)
from cxkit.churn.model import ChurnModel, check_classes, subsample
from cxkit.data import CXData, end_of_day, resolve_as_of
from cxkit.result import AsOf

__all__ = ["MODEL_LABELS", "ChurnBacktest", "run_backtest"]

#: The models compared by :func:`run_backtest`: key -> label.
MODEL_LABELS = {
    "model": "Gradient boosting (calibrated)",
    "logit": "Logistic regression (calibrated)",
    "bgnbd": "BG/NBD P(no order in horizon)",
    "p_alive": "BG/NBD 1 − p_alive",
}


@dataclass
class ChurnBacktest:
    """The result of :func:`run_backtest`.

    Attributes
    ----------
    definition
        The churn definition.
    cutoffs
        ``fit``, ``calibrate`` (= t0) and ``test`` (= t1) cutoffs.
    metrics
        One row per model: ``model, label, roc_auc (with low/high), pr_auc, brier,
        customers, churners``.
    predictions
        ``customer_id, churned`` and one probability column per model at the test cutoff.
    calibration
        Per model and score decile: ``mean_predicted, observed_rate`` with Wilson interval.
    lift
        The main model's lift and cumulative gains by decile.
    curves
        ROC and PR curve points per model (``model, curve, x, y``).
    importance
        Permutation importance (drop in ROC AUC) per feature, largest first.
    notes
        Plain sentences on what was done (calibration split, baselines skipped...).
    """

    definition: ChurnDefinition
    cutoffs: dict[str, pd.Timestamp]
    metrics: pd.DataFrame
    predictions: pd.DataFrame
    calibration: pd.DataFrame
    lift: pd.DataFrame
    curves: pd.DataFrame
    importance: pd.DataFrame
    notes: list[str] = field(default_factory=list)

    @property
    def test_churn_rate(self) -> float:
        """The share of test customers who churned."""
        return float(self.predictions["churned"].mean())

    def auc(self, model: str = "model") -> float:
        """Return the ROC AUC of one model at the test cutoff.

        Parameters
        ----------
        model
            A key of :data:`MODEL_LABELS`.

        Returns
        -------
        float
            The AUC; NaN for a model that was not run.
        """
        row = self.metrics.loc[self.metrics["model"] == model]
        return float(row["roc_auc"].iloc[0]) if len(row) else np.nan


def _bgnbd_baseline(
    data: CXData,
    end: pd.Timestamp,
    X: pd.DataFrame,
    horizon_days: int,
    fit: BgnbdFit | None,
) -> tuple[pd.DataFrame | None, str]:
    """BG/NBD baselines at ``end``: ``1 − p_alive`` and P(no order in the horizon).

    The features at ``end`` hold both from their own BG/NBD fit on the same orders
    (``fit``); only without it (another horizon) is the model fitted here.
    """
    if not data.has("orders"):
        return None, "BG/NBD baselines not available: they need the orders table"
    if fit is not None and fit.cutoff == end and fit.horizon_days == horizon_days:
        if not fit.ok:
            return None, f"BG/NBD baselines not available: {fit.note}"
        alive = X[fit.p_alive_column].to_numpy(dtype=float)
        quiet = X[fit.p_no_order_column].to_numpy(dtype=float)
        note = fit.note
    else:
        scores, note = bgnbd_scores(data, end, horizon_days)
        if scores is None:
            return None, f"BG/NBD baselines not available: {note}"
        s = scores.set_index(scores["customer_id"].astype(str))
        idx = X["customer_id"].astype(str).to_numpy()
        alive = s["p_alive"].reindex(idx).to_numpy()
        quiet = s["p_no_order"].reindex(idx).to_numpy()
    out = pd.DataFrame(
        {
            "p_alive": np.clip(1.0 - np.nan_to_num(alive, nan=1.0), 0.0, 1.0),
            "bgnbd": np.clip(np.nan_to_num(quiet, nan=1.0), 0.0, 1.0),
        }
    )
    return out, (
        f"BG/NBD baselines fitted on the orders up to the test cutoff ({note}): "
        "1 − p_alive, and the probability of no order in the horizon"
    )


def run_backtest(
    data: CXData,
    *,
    t0: AsOf = None,
    horizon_days: int = 90,
    basis: str = "auto",
    kind: str = "auto",
    definition: ChurnDefinition | None = None,
    calibration: str = "auto",
    trend_days: int = 90,
    max_levels: int = 12,
    themes: Mapping[str, Sequence[str]] | None = None,
    max_train_rows: int | None = 200_000,
    importance_rows: int = 2000,
    importance_repeats: int = 3,
    random_state: int = 0,
    _cache: FeatureCache | None = None,
) -> ChurnBacktest:
    """Validate on a time split: train with the labels at ``t0``, test at ``t1 = t0 + h``.

    The model is fitted at ``t0 − h`` and calibrated at ``t0`` (see
    :class:`~cxkit.churn.ChurnModel`); the test labels' window ``(t1, t1 + h]`` starts
    where the last training window ends, so nothing overlaps. Baselines: the same
    pipeline with logistic regression, and the BG/NBD ``1 − p_alive`` and probability
    of no order (fitted on the orders up to ``t1``) when orders exist.

    Parameters
    ----------
    data
        The data.
    t0
        The training cutoff, resolved by :func:`cxkit.data.resolve_as_of`; default: the
        day of the end of the data minus ``2 × horizon_days``.
    horizon_days, basis, kind, definition
        The churn definition (see :func:`~cxkit.churn.define`).
    calibration, trend_days, max_levels, themes, max_train_rows
        As for :class:`~cxkit.churn.ChurnModel`.
    importance_rows, importance_repeats
        Permutation importance on a seeded sample of this many test customers, with this
        many shuffles per feature.
    random_state
        Seed: the same seed gives identical results.
    _cache
        Features shared with other steps of the same call (internal).

    Returns
    -------
    ChurnBacktest
        Metrics, predictions, calibration, lift, curves and importance at ``t1``.

    Raises
    ------
    UsageError
        When a label window runs past the end of the data.
    DataError
        When the labels at a cutoff have no customers or one outcome only.
    """
    definition = resolve_definition(data, definition, horizon_days, basis, kind)
    h = pd.Timedelta(days=definition.horizon_days)
    if t0 is None:
        t0_end = end_of_day((data_end(data, definition) - 2 * h).normalize())
    else:
        t0_end = resolve_as_of(data, t0)
    t1_end = t0_end + h
    cache = _cache or FeatureCache(data, trend_days, max_levels, themes, definition.horizon_days)
    common = {
        "calibration": calibration,
        "trend_days": trend_days,
        "max_levels": max_levels,
        "themes": themes,
        "max_train_rows": max_train_rows,
        "random_state": random_state,
    }
    model = ChurnModel(estimator="hgb", **common).fit(
        data, cutoff=t0_end, definition=definition, _cache=cache
    )
    logit = ChurnModel(estimator="logit", **common).fit(
        data, cutoff=t0_end, definition=definition, _cache=cache
    )
    # done with the fit and calibration cutoffs before the test cutoff's features exist
    cache.release(t0_end - h, t0_end)
    test = cache.frame(t1_end, definition, labelled=True)
    check_classes(test.y, t1_end, "test")
    y = test.y
    preds = pd.DataFrame({"customer_id": test.X["customer_id"].to_numpy(), "churned": y})
    preds["model"] = model.predict_frame(test.X)
    preds["logit"] = logit.predict_frame(test.X)
    notes = [
        f"Gradient boosting {model.calibration_split_}.",
        f"Logistic regression {logit.calibration_split_}.",
    ]
    if definition.kind == "non_contractual":
        bg, note = _bgnbd_baseline(
            data, t1_end, test.X, definition.horizon_days, cache.bgnbd_fit(t1_end)
        )
        notes.append(note + ".")
        if bg is not None:
            preds["bgnbd"] = bg["bgnbd"].to_numpy()
            preds["p_alive"] = bg["p_alive"].to_numpy()
    models = [m for m in MODEL_LABELS if m in preds.columns]
    metrics = pd.DataFrame([metrics_row(m, y, preds[m].to_numpy()) for m in models])
    metrics.insert(1, "label", metrics["model"].map(MODEL_LABELS))
    calib = pd.concat(
        [calibration_table(y, preds[m].to_numpy()).assign(model=m) for m in models],
        ignore_index=True,
    )
    curves = pd.concat([curve_rows(m, y, preds[m].to_numpy()) for m in models], ignore_index=True)
    lift = lift_table(y, preds["model"].to_numpy())

    rng = np.random.default_rng(random_state)
    idx = subsample(len(y), importance_rows, rng)
    importance = permutation_importance(
        model, test.X.iloc[idx], y[idx], n_repeats=importance_repeats, random_state=random_state
    )
    cache.release(t1_end)
    if len(importance):
        notes.append(
            f"Permutation importance: drop in ROC AUC when a feature is shuffled, on "
            f"{len(idx):,} test customers, {importance_repeats} repeats."
        )
    return ChurnBacktest(
        definition=definition,
        cutoffs={"fit": model.cutoffs_["fit"], "calibrate": t0_end, "test": t1_end},
        metrics=metrics,
        predictions=preds,
        calibration=calib,
        lift=lift,
        curves=curves,
        importance=importance,
        notes=notes,
    )
