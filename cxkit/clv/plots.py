"""The CLV report's figures: drawing only, every number comes from the other modules.

Each ``plot_*`` function takes a table computed elsewhere in :mod:`cxkit.clv` and returns
a plotly figure in the one cxkit template (:mod:`cxkit.plots`), titled with its takeaway.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from cxkit import plots
from cxkit.clv.value import clv_column, top_share
from cxkit.display import column_label, currency, format_money


def plot_holdout_by_frequency(table: pd.DataFrame) -> go.Figure:
    """Draw actual holdout purchases per customer (bars, 95% CI) against the model (markers).

    Parameters
    ----------
    table
        From :func:`~cxkit.clv.holdout_by_frequency`.

    Returns
    -------
    plotly.graph_objects.Figure
        Titled with the largest gap between model and actual.
    """
    worst = (table["expected_mean_purchases"] - table["actual_mean_purchases"]).abs().max()
    # n under each group (small groups marked); a category axis keeps "7+" in place.
    labels = [
        f"{plots.escape_label(str(g))}<br>n={n:,}{' (small)' if small else ''}"
        for g, n, small in zip(
            table["calibration_frequency"], table["customers"], table["small_n"], strict=True
        )
    ]
    fig = plots.bar_with_ci(
        table.assign(group=labels),
        x="group",
        y="actual_mean_purchases",
        low="ci_low",
        high="ci_high",
        title=f"Holdout purchases per customer: model vs actual (largest gap {worst:.2f})",
        x_title="repeat purchases in calibration",
        y_title="purchases per customer in holdout",
    )
    fig.data[0].name = "actual (95% CI)"
    fig.update_xaxes(type="category")
    fig.add_scatter(
        x=labels,
        y=table["expected_mean_purchases"],
        mode="markers+lines",
        name="BG/NBD expected",
        marker={"color": plots.PALETTE[1], "size": 9},
        line={"color": plots.PALETTE[1]},
    )
    return fig


def plot_cumulative_repeat_purchases(table: pd.DataFrame) -> go.Figure:
    """Draw cumulative repeat purchases over time, actual vs model, the holdout start marked.

    Parameters
    ----------
    table
        From :func:`~cxkit.clv.cumulative_repeat_purchases`.

    Returns
    -------
    plotly.graph_objects.Figure
        Titled with what it shows; the holdout accuracy is stated once, by the holdout
        check (:func:`~cxkit.clv.holdout_totals`), not by this chart.
    """
    fig = plots.figure(
        "Cumulative repeat purchases week by week: actual and as the model expects them",
        x_title="week ending",
        y_title="cumulative repeat purchases",
    )
    fig.add_scatter(
        x=table["period_end"], y=table["cumulative_actual"], name="actual", mode="lines"
    )
    fig.add_scatter(
        x=table["period_end"],
        y=table["cumulative_expected"],
        name="BG/NBD expected",
        mode="lines",
        line={"dash": "dash"},
    )
    cal = table.attrs.get("calibration_end")
    if cal is not None and table["holdout"].any():
        fig.add_vline(x=pd.Timestamp(cal).timestamp() * 1000, line_dash="dot", line_color="gray")
        fig.add_annotation(
            x=pd.Timestamp(cal), y=1, yref="paper", text="holdout starts", showarrow=False
        )
    return fig


def plot_p_alive(table: pd.DataFrame) -> go.Figure:
    """Draw the histogram of P(alive).

    Parameters
    ----------
    table
        From :func:`~cxkit.clv.p_alive_distribution`.

    Returns
    -------
    plotly.graph_objects.Figure
        Titled with the share of customers who have probably lapsed.
    """
    low = table.loc[table["p_alive_to"] <= 0.5, "share"].sum()
    fig = plots.figure(
        f"{low:.0%} of the {int(table['customers'].sum()):,} "
        f"{table.attrs.get('population', 'customers')} have probably lapsed (P(alive) < 50%)",
        x_title="P(alive) at the end of the period",
        y_title="customers",
    )
    centres = (table["p_alive_from"] + table["p_alive_to"]) / 2
    fig.add_bar(
        x=centres,
        y=table["customers"],
        width=(table["p_alive_to"] - table["p_alive_from"]) * 0.95,
        marker_color=plots.PALETTE[0],
    )
    fig.update_xaxes(range=[0, 1], tickformat=".0%")
    return fig


def plot_clv_distribution(frame: pd.DataFrame, *, column: str | None = None) -> go.Figure:
    """Draw the histogram of CLV per customer (the axis is capped at the 99th percentile).

    Log-spaced bins would hide the zeros, so the bins are linear.

    Parameters
    ----------
    frame
        From :func:`~cxkit.clv.customer_value`.
    column
        The CLV column (default: the frame's own).

    Returns
    -------
    plotly.graph_objects.Figure
        Titled with the median.
    """
    col = clv_column(frame, column)
    v = frame[col].to_numpy()
    med = float(np.median(v)) if len(v) else float("nan")
    cap = float(np.quantile(v, 0.99)) if len(v) else 1.0
    fig = plots.figure(
        f"Half the customers are worth less than {format_money(med)} over the horizon",
        x_title=f"{column_label(col)} ({currency() or 'currency'}, axis capped at the 99th percentile "
        f"{format_money(cap, decimals=0)})",
        y_title="customers",
    )
    fig.add_histogram(x=np.minimum(v, cap), nbinsx=50, marker_color=plots.PALETTE[0])
    return fig


def plot_concentration(frame: pd.DataFrame, *, column: str | None = None) -> go.Figure:
    """Draw the cumulative share of value against the share of customers, most valuable first.

    Parameters
    ----------
    frame
        From :func:`~cxkit.clv.customer_value`.
    column
        The CLV column (default: the frame's own).

    Returns
    -------
    plotly.graph_objects.Figure
        Titled with the top 20%'s share of expected value.
    """
    col = clv_column(frame, column)
    v = np.sort(frame[col].to_numpy())[::-1]
    total = v.sum()
    share_c = np.arange(1, len(v) + 1) / max(len(v), 1)
    share_v = np.cumsum(v) / total if total > 0 else np.zeros_like(v)
    top = top_share(v, top=0.2)
    fig = plots.figure(
        f"The top 20% of customers hold {top:.0%} of expected value",
        x_title="share of customers (most valuable first)",
        y_title=f"share of total {column_label(col)}",
    )
    step = max(1, len(v) // 500)
    fig.add_scatter(x=share_c[::step], y=share_v[::step], mode="lines", name="customers")
    fig.add_scatter(
        x=[0, 1],
        y=[0, 1],
        mode="lines",
        name="equal value",
        line={"dash": "dot", "color": plots.NEUTRAL},
    )
    fig.update_xaxes(tickformat=".0%", range=[0, 1])
    fig.update_yaxes(tickformat=".0%", range=[0, 1.02])
    return fig


def plot_clv_by(table: pd.DataFrame, by: str) -> go.Figure:
    """Draw mean CLV per group with 95% intervals.

    Parameters
    ----------
    table
        From :func:`~cxkit.clv.clv_by`.
    by
        The group column of ``table``.

    Returns
    -------
    plotly.graph_objects.Figure
        Titled with the most valuable group.
    """
    mean_col = next(c for c in table.columns if c.startswith("mean_clv_"))
    best = table.iloc[0]
    fig = plots.bar_with_ci(
        table,
        x=by,
        y=mean_col,
        low="ci_low",
        high="ci_high",
        title=f"{str(best[by])[:1].upper()}{str(best[by])[1:]} customers are worth most: "
        f"{format_money(best[mean_col])} on average",
        x_title=by.replace("_", " "),
        y_title=f"{column_label(mean_col)} per customer ({currency() or 'currency'})",
    )
    return fig


def plot_clv_intervals(table: pd.DataFrame, *, column: str | None = None) -> go.Figure:
    """Draw customers' expected CLV with its two 95% intervals, one row per customer.

    The thick bar is the parameter interval (how far the expected value could move
    because the model was fitted on finite data); the thin one, when there is one, the
    predictive interval (what the customer could actually bring, purchase randomness
    included).

    Parameters
    ----------
    table
        From :meth:`~cxkit.clv.ClvResult.most_valuable` (customer IDs as they may be
        published): ``customer_id``, the CLV column and its interval columns.
    column
        The CLV column (default: the first ``clv_*`` column).

    Returns
    -------
    plotly.graph_objects.Figure
        Titled with how much wider the predictive intervals are than the parameter ones
        (the median ratio over the customers shown), or with the parameter intervals'
        median half-width without predictive intervals.
    """
    col = column or next(
        c for c in table.columns if c.startswith("clv_") and not c.endswith(("_low", "_high"))
    )
    v = table[col].to_numpy(dtype=float)
    lo, hi = table[f"{col}_low"].to_numpy(dtype=float), table[f"{col}_high"].to_numpy(dtype=float)
    p_lo = table[f"{col}_pred_low"].to_numpy(dtype=float)
    p_hi = table[f"{col}_pred_high"].to_numpy(dtype=float)
    n = len(table)
    has_pred = bool(np.isfinite(p_lo).all() and n)
    with np.errstate(divide="ignore", invalid="ignore"):
        if has_pred:
            ratio = float(np.median((p_hi - p_lo) / (hi - lo)))
            title = (
                f"For the {n} most valuable customers, what each will actually bring is about "
                f"{ratio:.0f}× less certain than their expected value"
            )
        else:
            half = float(np.median((hi - lo) / 2 / v)) if n else float("nan")
            title = (
                f"The {n} most valuable customers' expected value is known to about "
                f"±{half:.0%} (95% intervals)"
            )
    labels = plots.escape_label(table["customer_id"].astype(str))
    fig = plots.figure(
        title,
        x_title=f"{column_label(col)} ({currency() or 'currency'})",
        y_title="customer",
        height=max(360, 28 * n + 160),
    )
    if has_pred:
        fig.add_scatter(
            x=v,
            y=labels,
            mode="markers",
            name="95% predictive interval (purchase randomness included)",
            # a short line as the marker, so the legend shows a line like the whiskers
            marker={
                "symbol": "line-ew-open",
                "size": 12,
                "color": plots.NEUTRAL,
                "line": {"width": 1.5, "color": plots.NEUTRAL},
            },
            error_x={
                "type": "data",
                "symmetric": False,
                "array": p_hi - v,
                "arrayminus": v - p_lo,
                "color": plots.NEUTRAL,
                "thickness": 1.5,
                "width": 4,
            },
        )
    fig.add_scatter(
        x=v,
        y=labels,
        mode="markers",
        name="expected value, 95% interval from the model's parameters",
        marker={"size": 8, "color": plots.PALETTE[0]},
        error_x={
            "type": "data",
            "symmetric": False,
            "array": hi - v,
            "arrayminus": v - lo,
            "color": plots.PALETTE[0],
            "thickness": 4,
            "width": 0,
        },
    )
    fig.update_yaxes(type="category", autorange="reversed")
    fig.update_xaxes(rangemode="tozero")
    return fig
