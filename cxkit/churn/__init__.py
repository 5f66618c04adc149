"""Churn: which customers will stop buying (or stop being active, or cancel) soon, and why.

Everything here answers one question: *which customers will stop buying in the next
``horizon_days``, how sure can we be, and what gives them away?* :func:`analyze` does
it all in one call and returns a :class:`ChurnResult` with its tables and
:meth:`~ChurnResult.findings`; the churn report and the executive summary both use it.

The parts, each usable on its own:

* :mod:`~cxkit.churn.definition` — :class:`ChurnDefinition` states what "churn" means
  and is carried by every output (:func:`define`); :func:`labels` /
  :func:`label_table` give the labels at a cutoff, :func:`data_end` the latest
  instant labels can observe;
* :mod:`~cxkit.churn.features` — point-in-time features **in the engine** (ibis,
  backend neutral) from ``data.upto(cutoff)`` only, so nothing after the cutoff can
  leak in (:func:`feature_table`, :func:`features`, with BG/NBD ``p_alive`` columns
  from :class:`cxkit.clv.BetaGeo`), and :func:`describe_feature`;
* :mod:`~cxkit.churn.model` — :class:`ChurnModel`, a calibrated gradient-boosting (or
  logistic) model fitted on the labels of cutoff ``c − h`` and calibrated on those of
  ``c`` (a time-respecting split);
* :mod:`~cxkit.churn.metrics` — :func:`auc_ci`, :func:`auc_difference` (DeLong), :func:`lift_table`,
  :func:`calibration_table`, :func:`permutation_importance` and :func:`risk_band`;
* :mod:`~cxkit.churn.backtest` — :func:`run_backtest` trains at ``t0`` and tests at
  ``t1 = t0 + h`` (the label windows do not overlap) against a logistic-regression
  and the BG/NBD baselines (:class:`ChurnBacktest`, :data:`MODEL_LABELS`);
  :func:`choose_scores` keeps the model's scores only when it beats its best baseline
  (:class:`ModelChoice`), else the analysis scores with that baseline and warns;
* :mod:`~cxkit.churn.analysis` — :func:`analyze`, :class:`ChurnResult`, :func:`score`
  (a churn probability and a risk band per customer at ``as_of``, keyed by
  ``customer_id`` so that it joins with CLV), :func:`churn_rate_over_time`,
  :func:`risk_by` and :func:`findings` (``analyze(...).findings()``);
* :mod:`~cxkit.churn.plots` — the report's figures from a result.

Every ``as_of`` and cutoff is resolved by :func:`cxkit.data.resolve_as_of`; cut dates
derived from it (``as_of − horizon``) are whole days.

Examples
--------
>>> import pandas as pd, cxkit
>>> from cxkit import churn
>>> orders = pd.DataFrame({"order_id": ["1", "2", "3"], "customer_id": ["a", "a", "b"],
...     "ts": pd.to_datetime(["2024-01-05", "2024-02-10", "2024-01-20"]),
...     "amount": [10.0, 12.0, 8.0]})
>>> churn.labels(cxkit.load({"orders": orders}), "2024-01-31", horizon_days=10,
...              check_window=False).churned.tolist()
[0, 1]
"""

from __future__ import annotations

from cxkit.churn.analysis import (
    ChurnResult,
    analyze,
    churn_rate_over_time,
    findings,
    risk_by,
    score,
)
from cxkit.churn.backtest import (
    BASELINES,
    MODEL_LABELS,
    ChurnBacktest,
    ModelChoice,
    choose_scores,
    run_backtest,
)
from cxkit.churn.definition import ChurnDefinition, data_end, define, label_table, labels
from cxkit.churn.features import COMPLAINT_THEMES, describe_feature, feature_table, features
from cxkit.churn.metrics import (
    BAND_LABELS,
    BAND_THRESHOLDS,
    auc_ci,
    auc_difference,
    calibration_table,
    lift_table,
    permutation_importance,
    risk_band,
)
from cxkit.churn.model import ChurnModel
from cxkit.churn.plots import (
    calibration_chart,
    gains_chart,
    importance_chart,
    lift_chart,
    model_auc_chart,
    pr_chart,
    risk_by_chart,
    risk_histogram,
    roc_chart,
    trend_chart,
)
from cxkit.churn.scale import ScaleChurnResult, analyze_scale, held_scores, score_histogram
from cxkit.churn.survival import SurvivalResult, survival_chart, time_to_churn

__all__ = [
    "BAND_LABELS",
    "BAND_THRESHOLDS",
    "BASELINES",
    "COMPLAINT_THEMES",
    "MODEL_LABELS",
    "ChurnBacktest",
    "ChurnDefinition",
    "ChurnModel",
    "ChurnResult",
    "ModelChoice",
    "ScaleChurnResult",
    "SurvivalResult",
    "analyze",
    "analyze_scale",
    "auc_ci",
    "auc_difference",
    "calibration_chart",
    "calibration_table",
    "choose_scores",
    "churn_rate_over_time",
    "data_end",
    "define",
    "describe_feature",
    "feature_table",
    "features",
    "findings",
    "gains_chart",
    "held_scores",
    "importance_chart",
    "label_table",
    "labels",
    "lift_chart",
    "lift_table",
    "model_auc_chart",
    "permutation_importance",
    "pr_chart",
    "risk_band",
    "risk_by",
    "risk_by_chart",
    "risk_histogram",
    "roc_chart",
    "run_backtest",
    "score",
    "score_histogram",
    "survival_chart",
    "time_to_churn",
    "trend_chart",
]
