"""Figures of the voice-of-the-customer report, through the one :mod:`cxkit.plots` template.

Every label that can come from the data (channel, touchpoint, driver, theme and term
names, titles built from them) passes through :func:`cxkit.plots.escape_label`:
comments and the words taken from them are untrusted text.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from cxkit import plots, stats
from cxkit.display import currency
from cxkit.errors import UsageError
from cxkit.voc.drivers import driver_claim
from cxkit.voc.value import NPS_GROUPS, SurveyValueResult

__all__ = [
    "plot_distinctive_terms",
    "plot_drivers_quadrant",
    "plot_nps_trend",
    "plot_scores",
    "plot_theme_share",
    "plot_value_by_nps",
]


def plot_nps_trend(trend: pd.DataFrame, *, title: str | None = None) -> go.Figure:
    """Draw NPS per period as a line with its interval band; significant changes marked.

    Parameters
    ----------
    trend
        The frame from :func:`cxkit.voc.nps_trend`.
    title
        The title (a takeaway); by default the latest NPS and the number of significant
        changes.

    Returns
    -------
    plotly.graph_objects.Figure
        The figure.
    """
    x = pd.to_datetime(trend["period"])
    if title is None:
        last = trend.iloc[-1]
        k = int(trend["significant"].sum())
        title = (
            f"NPS is {last['nps']:+.0f} in {x.iloc[-1]:%b %Y} "
            f"({k} significant month-to-month change{'s' if k != 1 else ''})"
        )
    fig = plots.figure(plots.escape_label(title), x_title="period start", y_title="NPS (points)")
    fig.add_scatter(
        x=list(x) + list(x[::-1]),
        y=list(trend["nps_high"]) + list(trend["nps_low"][::-1]),
        fill="toself",
        fillcolor="rgba(0,114,178,0.15)",
        line={"width": 0},
        hoverinfo="skip",
        name="95% interval",
    )
    fig.add_scatter(
        x=x,
        y=trend["nps"],
        mode="lines+markers",
        name="NPS",
        line={"color": plots.PALETTE[0]},
        customdata=trend["n"],
        hovertemplate="%{x|%b %Y}: NPS %{y:.1f} (n=%{customdata:,})<extra></extra>",
    )
    sig = trend[trend["significant"]]
    if len(sig):
        fig.add_scatter(
            x=pd.to_datetime(sig["period"]),
            y=sig["nps"],
            mode="markers",
            name="significant change",
            marker={
                "size": 13,
                "symbol": "star",
                "color": [plots.GOOD if c > 0 else plots.BAD for c in sig["change_points"]],
            },
        )
    small = trend[trend["small_n"]]
    if len(small):
        fig.add_scatter(
            x=pd.to_datetime(small["period"]),
            y=small["nps"],
            mode="markers",
            name=f"n < {stats.MIN_N}",
            marker={"size": 9, "symbol": "circle-open", "color": plots.NEUTRAL},
        )
    return fig


def plot_scores(
    df: pd.DataFrame,
    *,
    x: str,
    score: str = "nps",
    title: str,
    x_title: str | None = None,
) -> go.Figure:
    """Draw bars with interval whiskers for a grouped score frame (NPS, CSAT or CES).

    Parameters
    ----------
    df
        A grouped frame from :func:`cxkit.voc.nps`, :func:`cxkit.voc.csat` or
        :func:`cxkit.voc.ces`.
    x
        The group column on the x axis.
    score
        ``"nps"``, ``"csat"`` or ``"ces"``: which frame ``df`` is.
    title
        The title (a takeaway).
    x_title
        The x-axis title (default ``x``).

    Returns
    -------
    plotly.graph_objects.Figure
        The figure; each bar is labelled with its n (and "small" under the minimum).

    Raises
    ------
    UsageError
        For any other ``score``.
    """
    cols = {
        "nps": ("nps", "nps_low", "nps_high", "NPS (points)", False),
        "csat": ("csat_share", "csat_low", "csat_high", "CSAT (% top-2-box)", True),
        "ces": ("ces_mean", "ces_low", "ces_high", "CES (mean, 7 = easiest)", False),
    }
    if score not in cols:
        raise UsageError(f"score must be 'nps', 'csat' or 'ces', got {score!r}")
    y, lo, hi, ytitle, pct = cols[score]
    shown = df.copy()
    shown[x] = plots.escape_label(shown[x].map(str))
    shown["_label"] = [
        f"n={n:,}" + (" (small)" if s else "")
        for n, s in zip(shown["n"], shown["small_n"], strict=True)
    ]
    return plots.bar_with_ci(
        shown,
        x=x,
        y=y,
        low=lo,
        high=hi,
        title=plots.escape_label(title),
        x_title=x_title or x,
        y_title=ytitle,
        text="_label",
        percent=pct,
    )


def plot_drivers_quadrant(kd: pd.DataFrame, *, title: str | None = None) -> go.Figure:
    """Draw the importance–performance quadrant: relative importance (x) vs mean score (y).

    Dashed lines at the mean importance and mean performance split the plane into
    "fix first" (important, weak), "keep up" (important, strong), "lower priority"
    and "possible overkill".

    Parameters
    ----------
    kd
        The frame from :func:`cxkit.voc.key_drivers`.
    title
        The title (a takeaway); by default :func:`cxkit.voc.driver_claim`'s, which
        names a top driver only as far as R² and its interval support (a frame without
        ``attrs["r2"]`` and ``attrs["n"]`` gets a title that claims nothing).

    Returns
    -------
    plotly.graph_objects.Figure
        The figure.
    """
    imp = kd["importance_pct"].to_numpy(dtype=float)
    perf = kd["performance_0_100"].to_numpy(dtype=float)
    mi, mp = float(np.nanmean(imp)), float(np.nanmean(perf))
    if title is None and {"r2", "n"} <= set(kd.attrs):
        title = driver_claim(kd).title  # worded by R² and the top driver's interval
    elif title is None:  # no R² to word a claim by: claim nothing
        title = "Importance and performance of each touchpoint"
    return plots.quadrant(
        imp,
        perf,
        kd["driver"],
        title=plots.escape_label(title),
        x_title="relative importance (% of explained variance)",
        y_title="performance (mean score, 0-100)",
        names=("possible overkill", "keep up", "lower priority", "fix first"),
        x_split=mi,
        y_split=mp,
        x_low=kd["importance_low_pct"],
        x_high=kd["importance_high_pct"],
        customdata=kd["n_observed"],
        hovertemplate="%{text}: importance %{x:.1f}%, performance %{y:.0f} "
        "(n=%{customdata:,})<extra></extra>",
        height=480,
    )


def plot_theme_share(share: pd.DataFrame, *, title: str) -> go.Figure:
    """Draw horizontal grouped bars: theme share (with Wilson whiskers) within each group.

    Parameters
    ----------
    share
        The frame from :func:`cxkit.voc.theme_share`.
    title
        The title (a takeaway).

    Returns
    -------
    plotly.graph_objects.Figure
        The figure.
    """
    labels = sorted(share["label"].astype(str).unique())
    fig = plots.figure(
        plots.escape_label(title),
        x_title="share of comments (%)",
        y_title="theme",
        height=max(420, 34 * len(labels) * max(1, share["group"].nunique()) // 2 + 160),
    )
    for i, (g, part) in enumerate(share.groupby("group", sort=True)):
        fig.add_bar(
            y=plots.escape_label(part["label"]),
            x=100 * part["share"],
            orientation="h",
            name=plots.escape_label(str(g)),
            marker_color=plots.PALETTE[i % len(plots.PALETTE)],
            error_x={
                "type": "data",
                "symmetric": False,
                "array": 100 * (part["share_high"] - part["share"]),
                "arrayminus": 100 * (part["share"] - part["share_low"]),
                "color": "#52606d",
            },
        )
    fig.update_layout(barmode="group")
    fig.update_yaxes(
        categoryorder="array",
        categoryarray=plots.escape_label(labels[::-1]),
        tickmode="linear",
        dtick=1,
    )
    return fig


def plot_distinctive_terms(terms: pd.DataFrame, *, title: str | None = None) -> go.Figure:
    """Draw horizontal bars of the weighted log-odds z-scores (promoter terms right).

    Parameters
    ----------
    terms
        The frame from :func:`cxkit.voc.distinctive_terms`.
    title
        The title (a takeaway); by default a plain description.

    Returns
    -------
    plotly.graph_objects.Figure
        The figure.
    """
    t = terms.sort_values("z")
    if title is None:
        title = "Words that set promoters and detractors apart"
    fig = plots.figure(
        plots.escape_label(title),
        x_title="weighted log-odds (z-score)",
        y_title="term",
        height=max(420, 20 * len(t) + 160),
    )
    fig.add_bar(
        x=t["z"],
        y=plots.escape_label(t["term"]),
        orientation="h",
        marker_color=[plots.GOOD if z > 0 else plots.BAD for z in t["z"]],
        customdata=np.column_stack([t["count_a"], t["count_b"]]),
        hovertemplate="%{y}: z=%{x:.1f} (counts %{customdata[0]} vs %{customdata[1]})"
        "<extra></extra>",
        showlegend=False,
    )
    fig.update_yaxes(tickmode="linear", dtick=1)
    return fig


#: The NPS groups' colours: promoters good, passives neutral, detractors bad.
_GROUP_COLOURS = {"promoter": plots.GOOD, "passive": plots.NEUTRAL, "detractor": plots.BAD}


def plot_value_by_nps(result: SurveyValueResult, *, title: str | None = None) -> go.Figure:
    """Draw what each NPS group is worth: one panel per measure, bars with 95% whiskers.

    The panels are expected CLV, churn probability and spend in the window after the
    answer (those the result has). Each group's n is under its bar, so no label meets
    a whisker; groups with fewer than :data:`cxkit.stats.MIN_N` customers are hatched.

    Parameters
    ----------
    result
        The linkage (:func:`cxkit.voc.value_linkage`), with :attr:`~cxkit.voc.SurveyValueResult.by_nps`.
    title
        The title (a takeaway); by default :meth:`cxkit.voc.SurveyValueResult.title`.

    Returns
    -------
    plotly.graph_objects.Figure
        The figure.

    Raises
    ------
    UsageError
        When the result has no comparison to draw.
    """
    shown = [
        m
        for m in (result.measure("clv"), result.measure("churn"), result.measure("orders"))
        if m is not None
    ]
    if result.by_nps is None or not shown:
        raise UsageError("there is nothing to draw: the linkage has no measure by NPS group")
    cur = currency()
    fig = make_subplots(
        rows=1,
        cols=len(shown),
        subplot_titles=[plots.escape_label(m.label) for m in shown],
        horizontal_spacing=0.1,
    )
    for i, m in enumerate(shown, start=1):
        t = result.by_nps[result.by_nps["measure"] == m.key].set_index("nps_group")
        t = t.reindex(list(NPS_GROUPS))
        scale = 1.0 if m.unit == "money" else 100.0
        names = [f"{g}<br>n = {int(n):,}" for g, n in zip(t.index, t["n"], strict=True)]
        small = t["small_n"].fillna(True).astype(bool).to_numpy()
        fig.add_bar(
            x=names,
            y=scale * t["value"],
            error_y={
                "type": "data",
                "symmetric": False,
                "array": scale * (t["ci_high"] - t["value"]),
                "arrayminus": scale * (t["value"] - t["ci_low"]),
                "color": "#52606d",
            },
            marker_color=[_GROUP_COLOURS[g] for g in t.index],
            marker_pattern_shape=["/" if s else "" for s in small],
            customdata=np.column_stack([scale * t["ci_low"], scale * t["ci_high"]]),
            hovertemplate="%{x}: %{y:,.2f} (95% CI %{customdata[0]:,.2f} to "
            "%{customdata[1]:,.2f})<extra></extra>",
            showlegend=False,
            row=1,
            col=i,
        )
        unit = f" ({cur})" if m.unit == "money" and cur else ""
        what = "per customer" + unit if m.unit == "money" else "mean per customer (%)"
        fig.update_yaxes(title_text=plots.escape_label(what), rangemode="tozero", row=1, col=i)
    fig.update_layout(
        template=plots.TEMPLATE_NAME,
        title=plots.escape_label(title or result.title()),
        height=440,
    )
    fig.update_annotations(font_size=13)
    return fig
