"""Figures and cards of the personas report, all through :mod:`cxkit.plots`.

Persona names, feature names and channels come from the data: every one of them passes
through :func:`cxkit.plots.escape_label` (figures) or :func:`html.escape` (cards).
"""

from __future__ import annotations

import html
from collections.abc import Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from IPython.display import HTML, display
from plotly.subplots import make_subplots

from cxkit import plots
from cxkit.lifecycle import STAGES
from cxkit.personas.analysis import PersonasResult
from cxkit.personas.model import Personas, persona_rules


def plot_k_selection(model: Personas) -> go.Figure:
    """Plot inertia, gap statistic and bootstrap stability per k, the chosen k marked.

    Parameters
    ----------
    model
        A :class:`~cxkit.personas.Personas` fitted with ``k="auto"``.

    Returns
    -------
    plotly.graph_objects.Figure
        Three panels side by side.
    """
    tab = model.k_selection_
    fig = make_subplots(
        rows=1,
        cols=3,
        subplot_titles=(
            "Inertia (elbow)",
            "Gap statistic (±1 SE)",
            "Bootstrap stability (mean ARI)",
        ),
    )
    errors = {"gap": {"type": "data", "array": tab.gap_se}}
    for col, name in enumerate(("inertia", "gap", "stability"), start=1):
        fig.add_scatter(
            x=tab.k,
            y=tab[name],
            mode="lines+markers",
            name=name,
            row=1,
            col=col,
            error_y=errors.get(name),
            marker_color=plots.PALETTE[col - 1],
        )
    for c in (1, 2, 3):
        fig.add_vline(x=model.k_, line_dash="dash", line_color=plots.BAD, row=1, col=c)
        fig.update_xaxes(title_text="number of personas k", row=1, col=c)
    v = model.k_votes_
    fig.update_layout(
        template=plots.TEMPLATE_NAME,
        height=380,
        showlegend=False,
        title=(
            f"{model.k_} personas (elbow: {v.get('elbow', '–')}, gap: {v.get('gap', '–')}, "
            f"stability: {v.get('stability', '–')})"
        ),
    )
    return fig


def plot_pca_map(points: pd.DataFrame) -> go.Figure:
    """Plot the 2-D PCA map, one colour per persona.

    Parameters
    ----------
    points
        The frame from :func:`cxkit.personas.pca_map`.

    Returns
    -------
    plotly.graph_objects.Figure
        A scatter plot (WebGL).
    """
    ex = points.attrs.get("explained", [np.nan, np.nan])
    fig = plots.figure(
        f"Personas on a 2-D map ({100 * (ex[0] + ex[1]):.0f}% of the variance shown)",
        x_title=f"component 1 ({100 * ex[0]:.0f}% of variance)",
        y_title=f"component 2 ({100 * ex[1]:.0f}% of variance)",
        height=480,
    )
    for i, (_name, g) in enumerate(points.groupby("persona", sort=True)):
        fig.add_scattergl(
            x=g.pc1,
            y=g.pc2,
            mode="markers",
            name=plots.escape_label(str(g.persona_name.iloc[0])),
            marker={"size": 4, "opacity": 0.5, "color": plots.PALETTE[i % len(plots.PALETTE)]},
        )
    return fig


def plot_profiles(model: Personas, *, top: int = 12) -> go.Figure:
    """Plot a heatmap of per-persona z-scores for the most distinguishing features.

    Parameters
    ----------
    model
        A fitted :class:`~cxkit.personas.Personas`.
    top
        How many features to show (those with the largest absolute z-score).

    Returns
    -------
    plotly.graph_objects.Figure
        Personas × features, annotated with the z-scores.
    """
    z = model.profiles_.pivot(index="persona", columns="feature", values="z")
    feats = z.abs().max(axis=0).sort_values(ascending=False).index[:top]
    z = z[feats]
    fig = plots.figure("What sets the personas apart (mean z-score per feature)", height=420)
    fig.add_heatmap(
        z=z.to_numpy(),
        x=plots.escape_label([str(f) for f in feats]),
        y=plots.escape_label([str(model.names_[p]) for p in z.index]),
        colorscale=plots.DIVERGING,
        zmid=0,
        text=np.round(z.to_numpy(), 1),
        texttemplate="%{text}",
        colorbar={"title": "z"},
    )
    fig.update_xaxes(title="feature")
    return fig


def _stage_heatmap(
    piv: pd.DataFrame,
    *,
    title: str,
    height: int,
    text: Sequence[Sequence[str]] | np.ndarray,
    texttemplate: str,
    colorbar_title: str,
) -> go.Figure:
    """Return a heatmap of shares (rows × stages), shown in percent."""
    fig = plots.figure(title, height=height)
    fig.add_heatmap(
        z=100 * piv.to_numpy(),
        x=plots.escape_label(list(piv.columns)),
        y=plots.escape_label(list(piv.index)),
        colorscale=plots.SEQUENTIAL,
        text=text,
        texttemplate=texttemplate,
        colorbar={"title": colorbar_title},
    )
    fig.update_xaxes(title="stage")
    return fig


def plot_journey(
    journey: pd.DataFrame, *, metric: str = "reach", title: str | None = None
) -> go.Figure:
    """Plot a persona × stage heatmap of ``metric``, annotated with share and n.

    Parameters
    ----------
    journey
        The frame from :func:`cxkit.personas.journey_map`.
    metric
        ``"reach"``, ``"drop_off"`` or ``"csat_top2"``.
    title
        The figure's title; by default a takeaway (for reach: who reaches the last
        stage most and least often).

    Returns
    -------
    plotly.graph_objects.Figure
        The heatmap.
    """
    piv = journey.pivot(index="persona_name", columns="stage", values=metric)
    piv = piv[[s for s in STAGES if s in piv.columns]]
    n = journey.pivot(index="persona_name", columns="stage", values="n_reached")[piv.columns]
    text = [
        [
            f"{100 * v:.0f}%<br>n={int(c):,}" if pd.notna(v) else "–"
            for v, c in zip(rv, rc, strict=True)
        ]
        for rv, rc in zip(piv.to_numpy(), n.to_numpy(), strict=True)
    ]
    label = {"reach": "Reach", "drop_off": "Drop-off", "csat_top2": "CSAT (top-2-box)"}
    if title is None:
        title = f"{label.get(metric, metric)} by persona and stage"
        if metric == "reach" and piv.shape[1] > 1:
            last = piv.columns[-1]
            lo, hi = piv[last].idxmin(), piv[last].idxmax()
            title = (
                f"{100 * piv.loc[hi, last]:.0f}% of '{hi}' reach {last}, "
                f"{100 * piv.loc[lo, last]:.0f}% of '{lo}'"
            )
    return _stage_heatmap(
        piv, title=title, height=380, text=text, texttemplate="%{text}", colorbar_title="%"
    )


def plot_persona_channels(channels: pd.DataFrame, persona_name: str) -> go.Figure:
    """Plot one persona's journey: the channel share of activity per stage.

    Parameters
    ----------
    channels
        The frame from :func:`cxkit.personas.channel_shares`.
    persona_name
        The persona to show.

    Returns
    -------
    plotly.graph_objects.Figure
        Channels × stages heatmap.
    """
    sub = channels[channels.persona_name == persona_name]
    piv = sub.pivot(index="channel", columns="stage", values="share").fillna(0.0)
    piv = piv[[s for s in STAGES if s in piv.columns]]
    fig = _stage_heatmap(
        piv,
        title=f"{persona_name}: where each stage happens (channel share)",
        height=340,
        text=np.round(100 * piv.to_numpy()),
        texttemplate="%{text}%",
        colorbar_title="% of stage activity",
    )
    fig.update_yaxes(title="channel")
    return fig


def _card_lines(c: pd.Series, rules: pd.DataFrame) -> list[str]:
    """Return the lines of one persona card (size, value, traits, rule, pain, theme)."""
    p = int(c["persona"])
    lines = [
        f"{c['n_customers']:,} customers ({100 * c['share']:.0f}%), "
        f"bootstrap stability {c['stability_jaccard']:.2f}"
    ]
    if "mean_spend" in c and pd.notna(c.get("mean_spend")):
        lines.append(
            f"mean spend {c['mean_spend']:,.0f} over {c.get('mean_orders', np.nan):,.1f} "
            f"orders; last active {c.get('mean_recency_days', np.nan):,.0f} days ago on average"
        )
    lines.append("stands out by: " + str(c["top_traits"]))
    r = rules[rules.persona == p]
    if len(r):
        best = r.iloc[0]
        lines.append(
            f"rule: {best['rule']} ({100 * best['precision']:.0f}% of the "
            f"{best['n_customers']:,} customers it picks)"
        )
    if "pain_point" in c and pd.notna(c.get("pain_point")):
        what = (
            f"{c['pain_point_dimension']} '{c['pain_point']}', "
            f"{100 * c['pain_point_csat_top2']:.0f}% satisfied"
        )
        lines.append(
            f"pain point: {what}, significantly below the rest"
            if c.get("pain_point_significant")
            else f"no significant pain point (lowest CSAT: {what})"
        )
    if "top_theme" in c and pd.notna(c.get("top_theme")):
        lines.append(f"top complaint theme: {c['top_theme']}")
    return lines


def show_cards(result: PersonasResult) -> None:
    """Show one card per persona: size, value, behaviour, name, rule, pain point, theme.

    Parameters
    ----------
    result
        The result of :func:`cxkit.personas.analyze`.
    """
    rules = persona_rules(result.model)
    parts = []
    for _, c in result.cards.iterrows():
        body = "".join(f"<li>{html.escape(x)}</li>" for x in _card_lines(c, rules))
        parts.append(
            f'<div class="cx-card" style="border:1px solid #cbd2d9;border-radius:6px;'
            f'padding:8px 12px;margin:6px 0"><h4 style="margin:4px 0">'
            f"{html.escape(str(c['persona_name']))}</h4><ul>{body}</ul></div>"
        )
    display(HTML("".join(parts)))
