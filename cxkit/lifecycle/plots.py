"""The lifecycle report's figures, drawn from a :class:`~cxkit.lifecycle.LifecycleResult`.

Each function returns a plotly figure made with :mod:`cxkit.plots` (one template, titles
that state the takeaway), or None when the result has no such part.
"""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go

from cxkit import plots
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
    return plots.heatmap(
        grid,
        title=f"Share of each cohort active again ({what})",
        x_title="periods since first activity",
        y_title="cohort",
    )


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
