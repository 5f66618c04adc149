"""Customer lifetime value: what each customer is likely to be worth, and how sure we are.

The models are the standard ones for non-contractual settings, written on scipy:
BG/NBD (how often customers buy, and when they stop) and Gamma-Gamma (how much they
spend per purchase), combined into discounted value over a stated horizon.
:func:`analyze` runs the whole pipeline once and returns a :class:`ClvResult` with its
tables, models and :meth:`~ClvResult.findings`; the CLV report and the executive summary
both use it.

The steps, each usable on its own:

1. :func:`rfm_summary` (:mod:`~cxkit.clv.rfm`): one row per customer — ``frequency``
   (repeat purchase days), ``recency``, ``T`` and ``monetary_value`` — computed in the
   engine (ibis), optionally split into a calibration and a holdout period.
2. :class:`BetaGeo` (:mod:`~cxkit.clv.bgnbd`, Fader, Hardie & Lee 2005) and
   :class:`GammaGamma` (:mod:`~cxkit.clv.gamma_gamma`, Fader & Hardie 2013):
   scikit-learn estimators fitted by maximum likelihood with standard errors.
3. :func:`customer_value` (:mod:`~cxkit.clv.value`): discounted CLV per customer, and
   :func:`top_share`, :func:`clv_by`, :func:`lapsing_high_value` to describe it;
   :func:`clv_intervals` (:mod:`~cxkit.clv.intervals`) gives its intervals per customer,
   for the total and for the top share, by parametric bootstrap from the fits'
   covariance (:func:`parameter_draws`), and predictive intervals.
4. :func:`holdout_by_frequency`, :func:`holdout_totals`,
   :func:`cumulative_repeat_purchases`, :func:`p_alive_distribution`,
   :func:`compare_with_published` and :func:`describe_models` (:mod:`~cxkit.clv.checks`)
   check the models against what happened and against the published CDNOW figures.
5. The ``plot_*`` figures (:mod:`~cxkit.clv.plots`).

Time is measured in the summary's ``time_unit`` (``"D"`` days or ``"W"`` weeks); the
fitted ``alpha`` is in that unit, and every output column that depends on time carries
the unit in its name (``clv_52w``, ``expected_purchases_52w``).

Examples
--------
>>> from cxkit import clv
>>> s = clv.simulate_bgnbd(5_000, r=0.5, alpha=5.0, a=0.8, b=2.5, T=52, random_state=0)
>>> bg = clv.BetaGeo().fit(s)
>>> bool(0 < bg.p_alive(s).mean() < 1)
True
"""

from __future__ import annotations

from cxkit.clv.analysis import ClvResult, analyze, findings, lapsed_share
from cxkit.clv.bgnbd import BetaGeo, simulate_bgnbd
from cxkit.clv.checks import (
    PUBLISHED_CDNOW,
    compare_with_published,
    cumulative_repeat_purchases,
    describe_models,
    holdout_by_frequency,
    holdout_totals,
    p_alive_distribution,
)
from cxkit.clv.gamma_gamma import GammaGamma, simulate_spend
from cxkit.clv.intervals import ClvIntervals, clv_intervals, parameter_draws, simulate_values
from cxkit.clv.plots import (
    plot_clv_by,
    plot_clv_distribution,
    plot_clv_intervals,
    plot_concentration,
    plot_cumulative_repeat_purchases,
    plot_holdout_by_frequency,
    plot_p_alive,
)
from cxkit.clv.rfm import UNIT_DAYS, rfm_summary, rfm_summary_expr
from cxkit.clv.scale import ScaleClvResult, analyze_scale  # registers the scale mode
from cxkit.clv.value import (
    clv_by,
    customer_value,
    lapsing_high_value,
    top_share,
    valuable_repeat_customers,
)

__all__ = [
    "PUBLISHED_CDNOW",
    "UNIT_DAYS",
    "BetaGeo",
    "ClvIntervals",
    "ClvResult",
    "GammaGamma",
    "ScaleClvResult",
    "analyze",
    "analyze_scale",
    "clv_by",
    "clv_intervals",
    "compare_with_published",
    "cumulative_repeat_purchases",
    "customer_value",
    "describe_models",
    "findings",
    "holdout_by_frequency",
    "holdout_totals",
    "lapsed_share",
    "lapsing_high_value",
    "p_alive_distribution",
    "parameter_draws",
    "plot_clv_by",
    "plot_clv_distribution",
    "plot_clv_intervals",
    "plot_concentration",
    "plot_cumulative_repeat_purchases",
    "plot_holdout_by_frequency",
    "plot_p_alive",
    "rfm_summary",
    "rfm_summary_expr",
    "simulate_bgnbd",
    "simulate_spend",
    "simulate_values",
    "top_share",
    "valuable_repeat_customers",
]
