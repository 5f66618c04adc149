"""Figures of an experiment readout: the effects with their intervals, the sequential path."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from cxkit.plots import NEUTRAL, PALETTE, TEMPLATE_NAME, escape_label, figure

__all__ = ["plot_effects", "plot_sequential"]

_SCALE = {"percentage points": 100.0, "currency": 1.0, "points": 1.0}
_AXIS = {"percentage points": "percentage points", "currency": "currency", "points": "NPS points"}


def _title(readout: pd.DataFrame) -> str:
    sig = readout[readout["significant"] & ~readout["small_n"]]
    if sig.empty:
        return f"{readout['experiment'].iloc[0]}: no metric moved detectably"
    parts = []
    for _, r in sig.iterrows():
        diff = r["cuped_diff"] if r["estimate"] == "cuped" else r["diff"]
        parts.append(f"{'raises' if diff > 0 else 'lowers'} {r['metric']}")
    return f"{sig['experiment'].iloc[0]}: {sig['variant'].iloc[0]} " + ", ".join(parts)


def plot_effects(readout: pd.DataFrame, *, title: str | None = None) -> go.Figure:
    """Plot each metric's effect with its 95%, CUPED and always-valid intervals.

    One panel per metric (each in its own unit, named in the panel's title), zero
    marked: an interval that crosses zero is no detectable effect.

    Parameters
    ----------
    readout
        :attr:`cxkit.experiments.ExperimentResult.readout` rows of one experiment and
        variant.
    title
        The takeaway title; by default it names the metrics that moved.

    Returns
    -------
    plotly.graph_objects.Figure
        One row of three error bars per metric.
    """
    rows = readout.reset_index(drop=True)
    titles = [
        f"{r['label']}: difference in {_AXIS.get(str(r['unit']), r['unit'])}"
        for _, r in rows.iterrows()
    ]
    fig = make_subplots(
        rows=len(rows),
        cols=1,
        subplot_titles=escape_label(titles),
        vertical_spacing=0.35 / max(len(rows), 1),
    )
    kinds = [
        ("always-valid (sequential)", "seq_low", "seq_high", "diff", PALETTE[4]),
        ("95% interval", "ci_low", "ci_high", "diff", PALETTE[0]),
        ("95% with CUPED", "cuped_low", "cuped_high", "cuped_diff", PALETTE[1]),
    ]
    for i, r in rows.iterrows():
        scale = _SCALE.get(str(r["unit"]), 1.0)
        for name, lo, hi, mid, c in kinds:
            if pd.isna(r[lo]):
                continue
            x = scale * r[mid]
            fig.add_scatter(
                x=[x],
                y=[name],
                mode="markers",
                marker={"color": c, "size": 9},
                error_x={
                    "type": "data",
                    "symmetric": False,
                    "array": [scale * (r[hi] - r[mid])],
                    "arrayminus": [scale * (r[mid] - r[lo])],
                    "color": c,
                    "thickness": 2,
                },
                name=name,
                legendgroup=name,
                showlegend=i == 0,
                hovertemplate=f"{escape_label(name)}: %{{x:.2f}}<extra></extra>",
                row=i + 1,
                col=1,
            )
        fig.add_vline(x=0, line={"color": NEUTRAL, "dash": "dot"}, row=i + 1, col=1)
    fig.update_layout(
        template=TEMPLATE_NAME,
        title=escape_label(title or _title(rows)),
        height=140 + 160 * len(rows),
        legend={"orientation": "h", "y": -0.1},
    )
    return fig


def plot_sequential(looks: pd.DataFrame, *, title: str | None = None) -> go.Figure:
    """Plot one metric's effect look by look, with the fixed and the always-valid bands.

    The fixed 95% interval is valid at one pre-planned look only; checked every week it
    crosses a wrong value far more often than 5% of the time. The always-valid band is
    wider and holds at every look.

    Parameters
    ----------
    looks
        :attr:`cxkit.experiments.ExperimentResult.sequential` rows of one experiment,
        variant and metric.
    title
        The takeaway title.

    Returns
    -------
    plotly.graph_objects.Figure
        The estimate line with two bands.
    """
    lk = looks.sort_values("look")
    metric = str(lk["metric"].iloc[0]) if len(lk) else ""
    scale = 100.0 if metric in ("conversion", "churn") else 1.0
    unit = {"conversion": "pp", "churn": "pp", "spend": "currency", "nps": "NPS points"}
    fig = figure(
        title or f"The {metric} effect, look by look",
        x_title="look (customers whose window has ended)",
        y_title=f"difference, {unit.get(metric, '')}",
    )
    x = list(lk["look"])
    for lo, hi, name, colour in (
        ("seq_low", "seq_high", "always-valid interval", "rgba(86, 180, 233, 0.25)"),
        ("ci_low", "ci_high", "fixed 95% interval", "rgba(0, 114, 178, 0.25)"),
    ):
        fig.add_scatter(x=x, y=scale * lk[hi], mode="lines", line={"width": 0}, showlegend=False)
        fig.add_scatter(
            x=x,
            y=scale * lk[lo],
            mode="lines",
            line={"width": 0},
            fill="tonexty",
            fillcolor=colour,
            name=name,
        )
    fig.add_scatter(
        x=x, y=scale * lk["diff"], mode="lines+markers", name="estimate", line={"color": PALETTE[0]}
    )
    fig.add_hline(y=0, line={"color": NEUTRAL, "dash": "dot"})
    return fig
