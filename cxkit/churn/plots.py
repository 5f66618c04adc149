"""The churn report's figures, drawn from a :class:`~cxkit.churn.ChurnResult`.

Each function returns a plotly figure made with :mod:`cxkit.plots` (one template, titles
that state the takeaway), or None when the result has no such part (no backtest, no
breakdown).
"""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go

from cxkit import plots
from cxkit.churn.analysis import ChurnResult, top_importance
from cxkit.churn.backtest import MODEL_LABELS

__all__ = [
    "calibration_chart",
    "gains_chart",
    "importance_chart",
    "lift_chart",
    "model_auc_chart",
    "pr_chart",
    "risk_by_chart",
    "risk_histogram",
    "roc_chart",
    "trend_chart",
]


def trend_chart(result: ChurnResult) -> go.Figure | None:
    """Draw the churn rate at each cutoff with its Wilson interval.

    Parameters
    ----------
    result
        A churn result.

    Returns
    -------
    plotly.graph_objects.Figure or None
        Bars per cutoff, titled with the change from the first to the last; None
        without cutoffs.
    """
    trend = result.rate_over_time
    if trend is None or not len(trend):
        return None
    first, last = trend.iloc[0], trend.iloc[-1]
    change = "up" if last.churn_rate > first.churn_rate else "down"
    h = result.definition.horizon_days
    return plots.bar_with_ci(
        trend.assign(cutoff=trend.cutoff.dt.strftime("%Y-%m-%d")), x="cutoff", y="churn_rate",
        low="ci_low", high="ci_high", percent=True,
        title=f"Churn is {change} from {first.churn_rate:.0%} to {last.churn_rate:.0%} over the last {len(trend)} cutoffs",
        x_title="cutoff", y_title=f"churned in the next {h} days (%)",
    )  # fmt: skip


def model_auc_chart(result: ChurnResult) -> go.Figure | None:
    """Draw the ROC AUC of the model and its baselines on the test period.

    Parameters
    ----------
    result
        A churn result.

    Returns
    -------
    plotly.graph_objects.Figure or None
        Bars per model with the Hanley–McNeil interval on an axis from 0 to 1 (a bar's
        length is its AUC), with guessing (0.5) marked; None without a backtest.
    """
    if result.backtest is None:
        return None
    m = result.backtest.metrics
    best_base = m[m.model != "model"].sort_values("roc_auc", ascending=False).iloc[0]
    main = m.set_index("model").loc["model"]
    fig = plots.bar_with_ci(
        m, x="label", y="roc_auc", low="roc_auc_low", high="roc_auc_high",
        title=f"The model ranks churners with AUC {main.roc_auc:.2f} (best baseline {best_base.roc_auc:.2f})",
        x_title="model", y_title="ROC AUC on the test period",
        y_range=(0.0, 1.0), reference=0.5, reference_label="guessing (0.5)",
    )  # fmt: skip
    return fig


def _curves(result: ChurnResult, curve: str, fig: go.Figure) -> go.Figure:
    cur = result.backtest.curves  # type: ignore[union-attr]
    for i, (key, label) in enumerate(MODEL_LABELS.items()):
        c = cur[(cur.model == key) & (cur.curve == curve)]
        if len(c):
            fig.add_scatter(
                x=c.x, y=c.y, mode="lines", name=label, line={"color": plots.PALETTE[i]}
            )
    return fig


def roc_chart(result: ChurnResult) -> go.Figure | None:
    """Draw the ROC curve of every model, with the diagonal of guessing.

    Parameters
    ----------
    result
        A churn result.

    Returns
    -------
    plotly.graph_objects.Figure or None
        One line per model; None without a backtest.
    """
    if result.backtest is None:
        return None
    fig = plots.figure(
        "ROC: the model finds most churners before raising many false alarms",
        x_title="false positive rate (stayers flagged)",
        y_title="true positive rate (churners found)",
    )
    _curves(result, "roc", fig)
    fig.add_scatter(
        x=[0, 1], y=[0, 1], mode="lines", name="guessing",
        line={"dash": "dot", "color": plots.NEUTRAL},
    )  # fmt: skip
    return fig


def pr_chart(result: ChurnResult) -> go.Figure | None:
    """Draw the precision-recall curve of every model.

    Parameters
    ----------
    result
        A churn result.

    Returns
    -------
    plotly.graph_objects.Figure or None
        One line per model; None without a backtest.
    """
    if result.backtest is None:
        return None
    fig = plots.figure(
        "Precision and recall: how pure the flagged list stays as it grows",
        x_title="recall (share of churners found)",
        y_title="precision (share of flagged who churn)",
    )
    return _curves(result, "pr", fig)


def calibration_chart(result: ChurnResult) -> go.Figure | None:
    """Draw the model's mean predicted churn against the observed rate per tenth.

    Parameters
    ----------
    result
        A churn result.

    Returns
    -------
    plotly.graph_objects.Figure or None
        Points with Wilson intervals and the diagonal of perfect calibration, titled
        with the largest gap; None without a backtest.
    """
    if result.backtest is None:
        return None
    calib = result.backtest.calibration
    cal = calib[calib.model == "model"]
    gap = (cal.mean_predicted - cal.observed_rate).abs().max()
    fig = plots.figure(
        f"The largest gap between predicted and observed churn in a tenth is {gap:.1%}",
        x_title="mean predicted churn probability (%)",
        y_title="observed churn rate (%)",
    )
    fig.add_scatter(
        x=[0, 100], y=[0, 100], mode="lines", name="perfect calibration",
        line={"dash": "dot", "color": plots.NEUTRAL},
    )  # fmt: skip
    fig.add_scatter(
        x=cal.mean_predicted * 100, y=cal.observed_rate * 100, mode="markers+lines", name="model",
        error_y={"type": "data", "symmetric": False, "array": (cal.ci_high - cal.observed_rate) * 100,
                 "arrayminus": (cal.observed_rate - cal.ci_low) * 100},
    )  # fmt: skip
    return fig


def lift_chart(result: ChurnResult) -> go.Figure | None:
    """Draw the churn rate per risk decile (1 = riskiest) with Wilson intervals.

    Parameters
    ----------
    result
        A churn result.

    Returns
    -------
    plotly.graph_objects.Figure or None
        Bars per decile; None without a backtest.
    """
    if result.backtest is None:
        return None
    lift = result.backtest.lift
    return plots.bar_with_ci(
        lift, x="decile", y="churn_rate", low="ci_low", high="ci_high", percent=True,
        title=f"The riskiest tenth churns at {lift.churn_rate.iloc[0]:.0%}, the safest at {lift.churn_rate.iloc[-1]:.0%}",
        x_title="risk decile (1 = highest predicted risk)", y_title="churned (%)",
    )  # fmt: skip


def gains_chart(result: ChurnResult) -> go.Figure | None:
    """Draw the cumulative gains: churners found against customers contacted, riskiest first.

    Parameters
    ----------
    result
        A churn result.

    Returns
    -------
    plotly.graph_objects.Figure or None
        The model's gains and a random list's; None without a backtest.
    """
    if result.backtest is None:
        return None
    lift = result.backtest.lift
    g3 = lift.cumulative_gain.iloc[2]
    fig = plots.figure(
        f"The riskiest 30% of customers hold {g3:.0%} of the churners",
        x_title="customers contacted, riskiest first (%)",
        y_title="churners found (%)",
    )
    fig.add_scatter(
        x=[0, *(lift.cumulative_customers_share * 100)], y=[0, *(lift.cumulative_gain * 100)],
        mode="lines+markers", name="model",
    )  # fmt: skip
    fig.add_scatter(
        x=[0, 100], y=[0, 100], mode="lines", name="random list",
        line={"dash": "dot", "color": plots.NEUTRAL},
    )  # fmt: skip
    return fig


def importance_chart(result: ChurnResult) -> go.Figure | None:
    """Draw the permutation importance of the 12 strongest features.

    Parameters
    ----------
    result
        A churn result.

    Returns
    -------
    plotly.graph_objects.Figure or None
        Horizontal bars with the spread over repeats; None without importance.
    """
    if result.backtest is None or not len(result.backtest.importance):
        return None
    imp = top_importance(result.backtest)
    top = imp.iloc[-1]
    fig = plots.figure(
        f"{top['name'][0].upper() + top['name'][1:]} is the strongest churn signal",
        x_title="drop in ROC AUC when shuffled",
        y_title=None,
        height=460,
    )
    fig.add_bar(
        x=imp.importance_mean, y=plots.escape_label(imp.name), orientation="h",
        marker_color=plots.PALETTE[0],
        error_x={"type": "data", "array": imp.importance_std},
    )  # fmt: skip
    return fig


def risk_histogram(result: ChurnResult, *, counts: pd.DataFrame | None = None) -> go.Figure:
    """Draw the distribution of today's churn probabilities with the band thresholds.

    Parameters
    ----------
    result
        A churn result.
    counts
        Scores already counted in bins (``bin_low, bin_high, customers``, probabilities),
        e.g. by the engine in scale mode; by default the histogram of ``result.scores``.

    Returns
    -------
    plotly.graph_objects.Figure
        A histogram titled with the share at high risk.
    """
    bands = result.band_summary
    high = bands.set_index("risk_band").loc["high", "share"]
    fig = plots.figure(
        f"{high:.0%} of customers are at high risk of churning",
        x_title="churn probability in the next horizon (%)",
        y_title="customers",
    )
    if counts is None:
        fig.add_histogram(
            x=result.scores.churn_probability * 100, nbinsx=20, marker_color=plots.PALETTE[0],
            name="customers",
        )  # fmt: skip
    else:
        fig.add_bar(
            x=(counts.bin_low + counts.bin_high) * 50, y=counts.customers,
            width=100 * (counts.bin_high - counts.bin_low), marker_color=plots.PALETTE[0],
            name="customers",
        )  # fmt: skip
    for t in result.thresholds:
        fig.add_vline(x=t * 100, line_dash="dot", line_color=plots.BAD)
    return fig


def risk_by_chart(result: ChurnResult) -> go.Figure | None:
    """Draw the high-risk share per group of the breakdown column.

    Parameters
    ----------
    result
        A churn result.

    Returns
    -------
    plotly.graph_objects.Figure or None
        Bars per group with Wilson intervals; None without a breakdown.
    """
    by, col = result.risk_by, result.by
    if by is None or col is None or not len(by):
        return None
    return plots.bar_with_ci(
        by, x=col, y="high_risk_share", low="ci_low", high="ci_high", percent=True,
        title=f"{by[col].iloc[0]} has the highest share of high-risk customers",
        x_title=col.replace("_", " "), y_title="high-risk customers (%)",
    )  # fmt: skip
