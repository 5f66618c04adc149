"""The lifecycle report's figures, drawn from a :class:`~cxkit.lifecycle.LifecycleResult`.

Each function returns a plotly figure made with :mod:`cxkit.plots` (one template, titles
that state the takeaway), or None when the result has no such part.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from cxkit import plots, stats
from cxkit.lifecycle.analysis import LifecycleResult

__all__ = [
    "breakdown_chart",
    "cohort_chart",
    "entry_channel_chart",
    "funnel_chart",
    "journey_chart",
    "persona_chart",
    "stage_chart",
    "stage_journey_chart",
    "states_chart",
]

#: How many periods after the first the cohort heatmap shows.
COHORT_PERIODS = 13

#: The fill of a cohort cell that rests on too few customers (greyed out).
SMALL_COLOUR = "#d9dde3"


def stage_chart(result: LifecycleResult) -> go.Figure:
    """Draw the share of customers reaching each stage, with Wilson intervals.

    Parameters
    ----------
    result
        A lifecycle result.

    Returns
    -------
    plotly.graph_objects.Figure
        Bars per stage, titled with the share that reaches the last stage.
    """
    sf = result.stage_funnel
    return plots.bar_with_ci(
        sf, x="step_name", y="rate_from_start", low="ci_low", high="ci_high", percent=True,
        title=f"{sf.rate_from_start.iloc[-1]:.0%} of customers reach {sf.step_name.iloc[-1]}",
        x_title="stage", y_title="customers reaching the stage (%)",
    )  # fmt: skip


def funnel_chart(result: LifecycleResult) -> go.Figure | None:
    """Draw the ordered funnel: the share of starters reaching each step.

    Parameters
    ----------
    result
        A lifecycle result.

    Returns
    -------
    plotly.graph_objects.Figure or None
        Bars per step with Wilson intervals; None without the funnel.
    """
    f = result.funnel
    if f is None:
        return None
    label = " → ".join(f.step_name)
    return plots.bar_with_ci(
        f, x="step_name", y="rate_from_start", low="ci_low", high="ci_high", percent=True,
        title=f"{f.rate_from_start.iloc[-1]:.0%} of those who start complete {label}",
        x_title="step", y_title="customers from the first step (%)",
    )  # fmt: skip


def _group_chart(
    tests: pd.DataFrame | None, x: str, title: str, x_title: str, y_title: str
) -> go.Figure | None:
    if tests is None:
        return None
    return plots.bar_with_ci(
        tests, x=x, y="rate", low="ci_low", high="ci_high", percent=True,
        title=title, x_title=x_title, y_title=y_title,
    )  # fmt: skip


def breakdown_chart(result: LifecycleResult) -> go.Figure | None:
    """Draw the conversion to the target stage per group of the breakdown column.

    Parameters
    ----------
    result
        A lifecycle result.

    Returns
    -------
    plotly.graph_objects.Figure or None
        Bars per group with Wilson intervals; None without the breakdown.
    """
    if result.by is None:
        return None
    by, target = result.by.replace("_", " "), result.target
    return _group_chart(
        result.breakdown_tests,
        result.by,
        f"Conversion to {target} by {by}",
        by,
        f"customers reaching {target} (%)",
    )


def entry_channel_chart(result: LifecycleResult) -> go.Figure | None:
    """Draw funnel completion per channel of the first step.

    Parameters
    ----------
    result
        A lifecycle result.

    Returns
    -------
    plotly.graph_objects.Figure or None
        Bars per channel with Wilson intervals; None without channels.
    """
    return _group_chart(
        result.entry_channel_tests,
        "entry_channel",
        "Funnel completion by the channel of the first step",
        "channel of the first step",
        "customers completing the funnel (%)",
    )


def persona_chart(result: LifecycleResult) -> go.Figure | None:
    """Draw funnel completion per persona.

    Parameters
    ----------
    result
        A lifecycle result.

    Returns
    -------
    plotly.graph_objects.Figure or None
        Bars per persona with Wilson intervals; None without personas.
    """
    return _group_chart(
        result.persona_tests,
        "persona",
        "Funnel completion by persona",
        "persona",
        "customers completing the funnel (%)",
    )


def cohort_chart(result: LifecycleResult) -> go.Figure | None:
    """Draw the cohort retention heatmap (the first :data:`COHORT_PERIODS` periods).

    Each cell shows its share; hovering it shows the share's Wilson 95% interval and the
    customers it rests on (:attr:`~cxkit.lifecycle.LifecycleResult.cohort_cells`).
    Cells resting on fewer than :data:`cxkit.stats.MIN_N` customers are drawn grey (a
    second trace named "fewer than 30 customers"), with a note under the chart.

    Parameters
    ----------
    result
        A lifecycle result.

    Returns
    -------
    plotly.graph_objects.Figure or None
        Cohorts by periods since the first activity; None with fewer than one cohort.
    """
    cohorts = result.cohorts
    if cohorts is None or len(cohorts) <= 1:
        return None
    grid = cohorts.drop(columns="customers").iloc[:, :COHORT_PERIODS]
    what = "any activity" if result.activity == "any" else "orders"
    title = f"Share of each cohort active again ({what})"
    x_title, y_title = "periods since first activity", "cohort"
    cells = result.cohort_cells
    if cells is None:
        return plots.heatmap(grid, title=title, x_title=x_title, y_title=y_title)
    wide = cells.pivot(index="cohort", columns="k").reindex(index=grid.index)
    small = wide["small_n"].reindex(columns=grid.columns).fillna(False).to_numpy(dtype=bool)
    fig = plots.heatmap(grid.mask(small), title=title, x_title=x_title, y_title=y_title)
    # per cell: customers, active, interval (%): shown on hover
    custom = np.stack(
        [
            wide[c].reindex(columns=grid.columns).to_numpy(dtype=float) * scale
            for c, scale in (("customers", 1), ("active", 1), ("ci_low", 100), ("ci_high", 100))
        ],
        axis=-1,
    )
    hover = (
        "cohort %{y}, %{x} period(s) later<br>%{z:.1f}% active "
        "(%{customdata[1]:,.0f} of %{customdata[0]:,.0f} customers)<br>"
        "95% CI %{customdata[2]:.1f}%–%{customdata[3]:.1f}%<extra></extra>"
    )
    fig.update_traces(customdata=custom, hovertemplate=hover)
    if small.any():
        z = np.where(small, grid.to_numpy(dtype=float) * 100, np.nan)
        fig.add_heatmap(
            z=z,
            x=fig.data[0].x,
            y=fig.data[0].y,
            text=[["" if v != v else f"{v:.0f}%" for v in row] for row in z],
            texttemplate="%{text}",
            colorscale=[[0.0, SMALL_COLOUR], [1.0, SMALL_COLOUR]],
            showscale=False,
            hoverongaps=False,
            customdata=custom,
            hovertemplate=hover,
            name=f"fewer than {stats.MIN_N} customers",
        )
        fig.add_annotation(
            text=f"Grey cells rest on fewer than {stats.MIN_N} customers: read with care.",
            xref="paper", yref="paper", x=0, y=0, yshift=-62, xanchor="left", yanchor="top",
            showarrow=False,
        )  # fmt: skip
        fig.update_layout(margin={"b": 100})  # room for the note under the axis title
    return fig


def states_chart(result: LifecycleResult) -> go.Figure | None:
    """Draw the active customers per period by lifecycle state (dormant below zero).

    Parameters
    ----------
    result
        A lifecycle result.

    Returns
    -------
    plotly.graph_objects.Figure or None
        Stacked bars; None without periods.
    """
    states = result.states
    if states is None or not len(states):
        return None
    return plots.stacked_bars(
        states, x="period", ys=["new", "returning", "resurrecting", "dormant"],
        negative=["dormant"], title="Active customers per period by lifecycle state",
        x_title="period", y_title="customers",
    )  # fmt: skip


def journey_chart(result: LifecycleResult) -> go.Figure | None:
    """Draw the touchpoint journeys as a Sankey diagram.

    Parameters
    ----------
    result
        A lifecycle result.

    Returns
    -------
    plotly.graph_objects.Figure or None
        Titled with the most common first touchpoint; None without touchpoints.
    """
    links = result.journey_links
    if links is None or not len(links):
        return None
    first = links[links.source.str.startswith("1. ")].groupby("source").customers.sum()
    first = first.sort_values()
    return plots.sankey(links, title=f"Most journeys start at {first.index[-1].split('. ', 1)[1]}")


def stage_journey_chart(result: LifecycleResult) -> go.Figure | None:
    """Draw the order in which customers reach the stages as a Sankey diagram.

    Parameters
    ----------
    result
        A lifecycle result.

    Returns
    -------
    plotly.graph_objects.Figure or None
        None with fewer than three stages.
    """
    if result.stage_links is None:
        return None
    return plots.sankey(result.stage_links, title="The order in which customers reach the stages")
