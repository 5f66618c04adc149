"""Time-split validation of the churn model: :func:`run_backtest` -> :class:`ChurnBacktest`.

The model is trained with the labels at ``t0`` and tested at ``t1 = t0 + h``, so the
label windows do not overlap; it is compared with a logistic-regression baseline and,
when orders exist, the BG/NBD baselines (``1 − p_alive`` and the probability of no
order in the horizon): ROC AUC, PR AUC, Brier, calibration, lift and gains by decile,
permutation importance. :func:`choose_scores` decides whose scores the analysis uses:
the model's when it beats its best baseline, else that baseline's (:class:`ModelChoice`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from cxkit.churn.definition import ChurnDefinition, data_end, resolve_definition
from cxkit.churn.features import TEST_PREDICTED, BgnbdFit, FeatureCache, bgnbd_scores
from cxkit.churn.metrics import (
    auc_difference,
    calibration_table,
    curve_rows,
    lift_table,
    metrics_row,
    permutation_importance,
)
from cxkit.churn.model import ChurnModel, check_classes, fit_side_by_side, subsample
from cxkit.data import CXData, end_of_day, resolve_as_of
from cxkit.result import AsOf

__all__ = [
    "BASELINES",
    "MODEL_LABELS",
    "ChurnBacktest",
    "ModelChoice",
    "baseline_scores",
    "choose_scores",
    "run_backtest",
]

#: The models compared by :func:`run_backtest`: key -> label.
MODEL_LABELS = {
    "model": "Gradient boosting (calibrated)",
    "logit": "Logistic regression (calibrated)",
    "bgnbd": "BG/NBD P(no order in horizon)",
    "p_alive": "BG/NBD 1 − p_alive",
}

#: The baselines the model must beat (keys of :data:`MODEL_LABELS`).
BASELINES = ("logit", "bgnbd", "p_alive")


@dataclass(frozen=True)
class ModelChoice:
    """Whose scores the churn analysis uses: the model's, or the baseline that beat it.

    The rule (:func:`choose_scores`): on the test period the model's ROC AUC is compared
    with each baseline's on the same customers; the model's scores are used when its AUC
    is higher than the best baseline's, otherwise that baseline's scores are used and the
    report warns. The difference carries DeLong's paired 95% interval
    (:func:`~cxkit.churn.auc_difference`), which says how clear the win or the loss is.

    Attributes
    ----------
    used
        The key (of :data:`MODEL_LABELS`) whose scores are used.
    baseline
        The best baseline's key.
    model_auc, baseline_auc
        The two test ROC AUCs.
    difference, ci_low, ci_high, p_value
        Model AUC − baseline AUC, its DeLong 95% interval and two-sided p-value.
    customers
        The test customers both were scored on.
    """

    used: str
    baseline: str
    model_auc: float
    baseline_auc: float
    difference: float
    ci_low: float
    ci_high: float
    p_value: float
    customers: int

    @property
    def model_wins(self) -> bool:
        """Whether the model beat its best baseline (and its scores are used)."""
        return self.used == "model"

    @property
    def used_label(self) -> str:
        """The name of the model whose scores are used."""
        return MODEL_LABELS[self.used]

    @property
    def baseline_label(self) -> str:
        """The name of the best baseline."""
        return MODEL_LABELS[self.baseline]

    @property
    def clear(self) -> bool:
        """Whether the interval of the difference excludes 0 (a clear win or loss)."""
        return bool(self.ci_low > 0 or self.ci_high < 0)

    def difference_words(self) -> str:
        """Return the AUC comparison in words, with the interval of the difference.

        Returns
        -------
        str
            E.g. ``"ROC AUC 0.906 against 0.899, a difference of +0.007 (95% CI +0.003
            to +0.010, DeLong test on the same 7,645 customers)"``.
        """
        return (
            f"ROC AUC {self.model_auc:.3f} against {self.baseline_auc:.3f}, a difference of "
            f"{self.difference:+.3f} (95% CI {self.ci_low:+.3f} to {self.ci_high:+.3f}, "
            f"DeLong test on the same {self.customers:,} customers)"
        )

    def sentence(self) -> str:
        """Return which model's scores are used and why, in one sentence.

        Returns
        -------
        str
            The sentence the report shows under "Who is at risk now".
        """
        if self.model_wins:
            how = "clearly" if self.clear else "though not clearly (the interval includes 0)"
            return (
                f"Today's scores come from the churn model, {self.used_label}: on the test "
                f"period it beat its best baseline, {self.baseline_label}, {how}: "
                f"{self.difference_words()}."
            )
        return (
            f"Today's scores come from the baseline {self.used_label}, not from the churn "
            f"model ({MODEL_LABELS['model']}), which did not beat it on the test period: "
            f"{self.difference_words()}."
        )

    def warning(self) -> str | None:
        """Return the warning the report shows when the model lost, else None.

        Returns
        -------
        str or None
            What happened, how sure, and what the report does about it.
        """
        if self.model_wins:
            return None
        how = (
            "ranks churners worse than"
            if self.clear
            else "is no better than (the interval of the difference includes 0)"
        )
        return (
            f"The churn model {how} the simpler baseline {self.baseline_label}: "
            f"{self.difference_words()}. Today's churn probabilities, risk bands and the "
            f"list of customers at risk therefore use {self.used_label}; the calibration "
            "and driver sections below still describe the churn model."
        )


def choose_scores(predictions: pd.DataFrame) -> ModelChoice | None:
    """Decide whose scores to use: the model's when it beats its best baseline.

    Parameters
    ----------
    predictions
        ``churned`` and one score column per model (``model`` and the baselines of
        :data:`BASELINES` that ran), as :attr:`ChurnBacktest.predictions`.

    Returns
    -------
    ModelChoice or None
        The decision (see :class:`ModelChoice` for the rule); None without a baseline
        or with one outcome only.

    Examples
    --------
    >>> p = pd.DataFrame({"churned": [0, 0, 1, 1], "model": [0.1, 0.4, 0.35, 0.8],
    ...                   "logit": [0.1, 0.2, 0.3, 0.4]})
    >>> choose_scores(p).used
    'logit'
    """
    y = predictions["churned"].to_numpy(dtype=int)
    compared = {
        b: auc_difference(y, predictions["model"], predictions[b])
        for b in BASELINES
        if b in predictions.columns
    }
    compared = {b: d for b, d in compared.items() if np.isfinite(d["auc_b"])}
    if not compared:
        return None
    best = max(compared, key=lambda b: (compared[b]["auc_b"], -BASELINES.index(b)))
    d = compared[best]
    return ModelChoice(
        used="model" if d["difference"] > 0 else best,
        baseline=best,
        model_auc=d["auc_a"],
        baseline_auc=d["auc_b"],
        difference=d["difference"],
        ci_low=d["ci_low"],
        ci_high=d["ci_high"],
        p_value=d["p_value"],
        customers=len(y),
    )


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
        Lift and cumulative gains by decile of the scores used (``choice.used``: the
        model's unless a baseline beat it).
    curves
        ROC and PR curve points per model (``model, curve, x, y``).
    importance
        Permutation importance (drop in ROC AUC) per feature, largest first.
    notes
        Plain sentences on what was done (calibration split, baselines skipped...).
    choice
        Whose scores are used (:func:`choose_scores`), or None without a baseline.
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
    choice: ModelChoice | None = None

    @property
    def scores_used(self) -> str:
        """The key of the model whose scores are used (``"model"`` without a choice)."""
        return "model" if self.choice is None else self.choice.used

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


def baseline_scores(
    data: CXData,
    end: pd.Timestamp,
    X: pd.DataFrame,
    horizon_days: int,
    fit: BgnbdFit | None,
) -> tuple[pd.DataFrame | None, str]:
    """Return the BG/NBD baselines at ``end``: ``1 − p_alive`` and P(no order in the horizon).

    The features at ``end`` hold both from their own BG/NBD fit on the same orders
    (``fit``); only without it (another horizon) is the model fitted here.

    Parameters
    ----------
    data
        The data (its orders up to ``end`` are read).
    end
        The resolved cutoff instant.
    X
        The features at ``end`` of the customers to score (``customer_id`` first).
    horizon_days
        The churn horizon.
    fit
        The BG/NBD fit behind the features at ``end`` (``FeatureCache.bgnbd_fit``).

    Returns
    -------
    (scores, note)
        ``p_alive`` (= 1 − p_alive, the probability of having left) and ``bgnbd`` (the
        probability of no order in the horizon) in the rows of ``X``, and a note; None and
        the reason when they are not available.
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
    # the boosting model and its logistic baseline, side by side on the same frames
    model, logit = fit_side_by_side(
        [ChurnModel(estimator="hgb", **common), ChurnModel(estimator="logit", **common)],
        data,
        cutoff=t0_end,
        definition=definition,
        cache=cache,
    )
    # done with the fit and calibration cutoffs before the test cutoff's features exist
    cache.release(t0_end - h, t0_end)
    test = cache.frame(t1_end, definition, labelled=True)
    check_classes(test.y, t1_end, "test")
    y = test.y
    preds = pd.DataFrame({"customer_id": test.X["customer_id"].to_numpy(), "churned": y})
    preds["model"] = model.predict_frame(test.X)
    preds["logit"] = logit.predict_frame(test.X)
    cache.reached(TEST_PREDICTED)
    notes = [
        f"Gradient boosting {model.calibration_split_}.",
        f"Logistic regression {logit.calibration_split_}.",
    ]
    if definition.kind == "non_contractual":
        bg, note = baseline_scores(
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
    choice = choose_scores(preds)
    lift = lift_table(y, preds["model" if choice is None else choice.used].to_numpy())

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
        choice=choice,
    )
