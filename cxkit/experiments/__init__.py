"""Experiment readouts: what a tested change did to conversion, churn, spend and NPS.

Given the optional ``assignments`` table of the data contract (``customer_id``,
``experiment``, ``variant``, ``assigned_at``), :func:`analyze` reads out every
experiment: whether the arms are split as planned (the sample-ratio-mismatch check,
:func:`srm_test`), and the effect of each variant against the control on conversion
(an order within 30 days of assignment), churn (no order within 90 days), spend and
NPS, each with its 95% interval, a CUPED-adjusted interval that uses the customers'
behaviour before assignment (:func:`cuped`), an always-valid interval for readouts that
are watched as they go (:func:`confidence_sequence`), and Holm-adjusted p-values across
the metrics. The per-customer outcomes come from :func:`customer_outcomes`, computed
in the data engine.

Public names
------------
Analysis
    :func:`analyze`, :class:`ExperimentResult`, :data:`METRICS`.
Outcomes
    :func:`customer_outcomes`, :func:`outcomes_table` (the same in the engine),
    :func:`nps_points`.
Statistics
    :func:`compare_arms`, :func:`compare_stats` and :class:`ArmStats` (from sums),
    :func:`cuped`, :func:`confidence_sequence`, :func:`srm_test`, :data:`SRM_ALPHA`.
Scale mode
    ``analyze(..., mode="scale")`` (:mod:`cxkit.experiments.scale`) sums every arm in
    the engine: the same readout without collecting any customer's outcomes.
Plots
    :func:`plot_effects`, :func:`plot_sequential`.
"""

from __future__ import annotations

from cxkit.experiments import scale as _scale_mode  # noqa: F401  (registers the scale mode)
from cxkit.experiments.analysis import METRICS, ExperimentResult, analyze
from cxkit.experiments.estimate import (
    SRM_ALPHA,
    ArmStats,
    compare_arms,
    compare_stats,
    confidence_sequence,
    cuped,
    srm_test,
)
from cxkit.experiments.outcomes import customer_outcomes, nps_points, outcomes_table
from cxkit.experiments.plots import plot_effects, plot_sequential

__all__ = [
    "METRICS",
    "SRM_ALPHA",
    "ArmStats",
    "ExperimentResult",
    "analyze",
    "compare_arms",
    "compare_stats",
    "confidence_sequence",
    "cuped",
    "customer_outcomes",
    "nps_points",
    "outcomes_table",
    "plot_effects",
    "plot_sequential",
    "srm_test",
]
