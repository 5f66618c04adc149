"""The one plotly template and small figure helpers.

Every figure in cxkit goes through here: the same fonts, one colour-blind-safe palette
(Okabe–Ito), titles that state the takeaway, labelled axes with units. Notebooks never
set raw colours.

plotly draws a subset of HTML in every label it shows (titles, axis titles and category
ticks, legend names, hover text, annotations, Sankey nodes, table cells): ``<a href>``
becomes a live link, ``<span style>`` restyles text. Category values, names and comments
come from the data and are untrusted, so every string from the data passes through
:func:`escape_label` before it reaches a figure. The helpers here apply it to their
titles, categories, names and labels; code that adds traces itself applies it to each
data string it passes.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import TypeVar, overload

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import plotly.io as pio
from IPython.display import display

__all__ = [
    "DIVERGING",
    "PALETTE",
    "SEQUENTIAL",
    "TEMPLATE_NAME",
    "bar_with_ci",
    "escape_label",
    "figure",
    "heatmap",
    "sankey",
    "show",
    "stacked_bars",
    "table",
]

#: Okabe–Ito, colour-blind safe; the first colour is the product's primary.
PALETTE: list[str] = [
    "#0072B2",  # blue
    "#E69F00",  # orange
    "#009E73",  # green
    "#CC79A7",  # purple
    "#56B4E9",  # sky
    "#D55E00",  # vermillion
    "#F0E442",  # yellow
    "#000000",  # black
]
SEQUENTIAL: list[list[float | str]] = [[0.0, "#f7fbff"], [0.5, "#6baed6"], [1.0, "#08306b"]]
DIVERGING: list[list[float | str]] = [[0.0, "#D55E00"], [0.5, "#f7f7f7"], [1.0, "#0072B2"]]
GOOD, BAD, NEUTRAL = "#009E73", "#D55E00", "#999999"
TEMPLATE_NAME = "cxkit"

_FONT = "Inter, 'Segoe UI', Roboto, Helvetica, Arial, sans-serif"

_template = go.layout.Template(
    layout=go.Layout(
        font={"family": _FONT, "size": 13, "color": "#1f2933"},
        title={"font": {"size": 16}, "x": 0.0, "xanchor": "left"},
        colorway=PALETTE,
        paper_bgcolor="white",
        plot_bgcolor="white",
        margin={"l": 60, "r": 20, "t": 60, "b": 50},
        xaxis={"showgrid": False, "linecolor": "#cbd2d9", "ticks": "outside", "automargin": True},
        yaxis={"gridcolor": "#e4e7eb", "zeroline": False, "automargin": True},
        legend={"orientation": "h", "y": -0.2, "x": 0},
        hoverlabel={"font": {"family": _FONT}},
        colorscale={"sequential": SEQUENTIAL, "diverging": DIVERGING},
    )
)
pio.templates[TEMPLATE_NAME] = _template

# What plotly's text renderer turns back into characters (svg_text_utils: named entities
# it knows and numeric ones) is left alone, and so is a plain line break: escaping is
# idempotent, so a label escaped by its caller and again by a helper shows the same.
_ESCAPE = re.compile(
    r"(?P<keep>(?i:<br\s*/?>)|&(?:#\d+|#x[0-9a-fA-F]+|mu|amp|lt|gt|nbsp|times|plusmn|deg);)"
    r"|(?P<char>[&<>])"
)
_ENTITY = {"&": "&amp;", "<": "&lt;", ">": "&gt;"}
_T = TypeVar("_T")


def _escape_text(text: str) -> str:
    return _ESCAPE.sub(lambda m: m.group("keep") or _ENTITY[m.group("char")], text)


@overload
def escape_label(value: str) -> str: ...
@overload
def escape_label(
    value: pd.Series | pd.Index | np.ndarray | list[object] | tuple[object, ...],
) -> list[object]: ...
@overload
def escape_label(value: _T) -> _T: ...
def escape_label(value: object) -> object:
    """Make text from the data show literally in a plotly figure (no markup, no links).

    plotly renders ``<a href=...>``, ``<b>``, ``<span style=...>`` and entities in its
    labels. This escapes ``&``, ``<`` and ``>`` so that such text is shown as typed.
    A ``<br>`` is kept (a line break, as plotly's own plain-text rule allows) and an
    entity plotly decodes is kept as it is, so escaping twice changes nothing.

    Parameters
    ----------
    value
        A string, or a list-like of values (a Series, Index, array, list or tuple).
        Values that are not strings (numbers, dates, None) are returned unchanged, so
        that numeric and date axes stay what they are.

    Returns
    -------
    str, list or object
        The escaped string; for a list-like, a list with each string escaped; any other
        value unchanged.

    Examples
    --------
    >>> escape_label('<a href="https://evil.example">x</a> & co')
    '&lt;a href="https://evil.example"&gt;x&lt;/a&gt; &amp; co'
    >>> escape_label(escape_label("R&D")), escape_label("7+<br>n=3")
    ('R&amp;D', '7+<br>n=3')
    >>> escape_label(pd.Series(["<b>web</b>", 3]))
    ['&lt;b&gt;web&lt;/b&gt;', 3]
    """
    if isinstance(value, str):
        return _escape_text(value)
    if isinstance(value, pd.Series | pd.Index | np.ndarray | list | tuple):
        return [_escape_text(v) if isinstance(v, str) else v for v in _values(value)]
    return value


def _values(value: Iterable[object]) -> list[object]:
    """Return a list-like's values as a plain list (pandas' missing values kept)."""
    if isinstance(value, pd.Series | pd.Index):
        return value.tolist()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return list(value)


def figure(
    title: str, *, x_title: str | None = None, y_title: str | None = None, height: int = 420
) -> go.Figure:
    """Return an empty figure with the cxkit template, a takeaway title and axis labels.

    Parameters
    ----------
    title
        The takeaway ("Checkout loses 41% of carts"), not the chart type; shown
        literally (:func:`escape_label`), like the axis titles.
    x_title, y_title
        Axis titles with units; ``None`` leaves an axis untitled.
    height
        Figure height in pixels.

    Returns
    -------
    plotly.graph_objects.Figure
        A figure with no traces.

    Examples
    --------
    >>> fig = figure("Most customers buy once", x_title="orders", y_title="customers")
    >>> fig.layout.template.layout.colorway[0], fig.layout.xaxis.title.text
    ('#0072B2', 'orders')
    """
    fig = go.Figure()
    fig.update_layout(template=TEMPLATE_NAME, title=escape_label(title), height=height)
    if x_title is not None:
        fig.update_xaxes(title=escape_label(x_title))
    if y_title is not None:
        fig.update_yaxes(title=escape_label(y_title))
    return fig


def bar_with_ci(
    df: pd.DataFrame,
    *,
    x: str,
    y: str,
    low: str,
    high: str,
    title: str,
    x_title: str | None = None,
    y_title: str | None = None,
    color: str | None = None,
    text: str | None = None,
    percent: bool = False,
    height: int = 420,
) -> go.Figure:
    """Plot bars with error bars from interval columns (e.g. a rate and its Wilson interval).

    Parameters
    ----------
    df
        One row per bar.
    x, y
        The columns of the categories (shown literally, :func:`escape_label`) and of
        the values.
    low, high
        The columns of the interval's bounds (same unit as ``y``).
    title
        The takeaway title.
    x_title, y_title
        Axis titles; by default the column names.
    color
        The bars' colour; by default the palette's first.
    text
        A column of labels shown above the bars.
    percent
        Values are 0–1 shares: plot them (and the interval) times 100.
    height
        Figure height in pixels.

    Returns
    -------
    plotly.graph_objects.Figure
        One bar trace with asymmetric error bars.
    """
    fig = figure(title, x_title=x_title or x, y_title=y_title or y, height=height)
    scale = 100.0 if percent else 1.0
    fig.add_bar(
        x=escape_label(df[x].astype(str)),
        y=df[y] * scale,
        error_y={
            "type": "data",
            "symmetric": False,
            "array": (df[high] - df[y]) * scale,
            "arrayminus": (df[y] - df[low]) * scale,
            "color": "#52606d",
        },
        marker_color=color or PALETTE[0],
        text=escape_label(df[text]) if text else None,
        textposition="outside" if text else None,
    )
    return fig


def table(df: pd.DataFrame, *, title: str | None = None, height: int | None = None) -> go.Figure:
    """Return a plotly table with the template's look (for tables inside figures).

    Parameters
    ----------
    df
        The table; its index is left out. Headers and text cells are shown literally
        (:func:`escape_label`).
    title
        The figure's title.
    height
        Figure height in pixels; ``None`` lets plotly choose.

    Returns
    -------
    plotly.graph_objects.Figure
        One ``Table`` trace.
    """
    fig = go.Figure(
        go.Table(
            header={
                "values": escape_label([str(c) for c in df.columns]),
                "fill_color": "#e4e7eb",
                "align": "left",
            },
            cells={"values": [escape_label(df[c]) for c in df.columns], "align": "left"},
        )
    )
    fig.update_layout(template=TEMPLATE_NAME, title=escape_label(title), height=height)
    return fig


def show(fig: go.Figure) -> None:
    """Display a figure in a notebook (the report exporter renders it offline).

    Parameters
    ----------
    fig
        The figure.
    """
    display(fig)


# --------------------------------------------------------------------------------------
# lifecycle figures (added with cxkit.lifecycle): heatmap, stacked bars, Sankey
# --------------------------------------------------------------------------------------


def heatmap(
    df: pd.DataFrame,
    *,
    title: str,
    x_title: str,
    y_title: str,
    percent: bool = True,
    height: int | None = None,
) -> go.Figure:
    """Plot a heatmap of a wide table (rows = y, columns = x); NaN cells stay blank.

    Parameters
    ----------
    df
        The wide table: its index gives the rows (top to bottom), its columns the
        columns.
    title
        The takeaway title.
    x_title, y_title
        Axis titles.
    percent
        Values are 0–1 shares, shown (and coloured) as percentages.
    height
        Figure height in pixels; by default 22 per row, at least 320.

    Returns
    -------
    plotly.graph_objects.Figure
        One ``Heatmap`` trace on the sequential colour scale, cells labelled.
    """
    scale = 100.0 if percent else 1.0
    z = df.to_numpy(dtype=float) * scale
    text = [["" if v != v else (f"{v:.0f}%" if percent else f"{v:.2g}") for v in row] for row in z]
    fig = figure(title, x_title=x_title, y_title=y_title, height=height or max(320, 22 * len(df)))
    fig.add_heatmap(
        z=z,
        x=escape_label([str(c) for c in df.columns]),
        y=escape_label([str(i) for i in df.index]),
        text=text,
        texttemplate="%{text}",
        colorscale=SEQUENTIAL,
        hoverongaps=False,
        colorbar={"title": "%" if percent else ""},
    )
    fig.update_yaxes(autorange="reversed", type="category")
    fig.update_xaxes(type="category")
    return fig


def stacked_bars(
    df: pd.DataFrame,
    *,
    x: str,
    ys: list[str],
    title: str,
    x_title: str | None = None,
    y_title: str | None = None,
    negative: list[str] | tuple[str, ...] = (),
) -> go.Figure:
    """Plot stacked bars of several count columns over ``x``; ``negative`` ones go below 0.

    Parameters
    ----------
    df
        One row per bar.
    x
        The column of the categories.
    ys
        The columns to stack, in order; each becomes a trace named after it.
    title
        The takeaway title.
    x_title, y_title
        Axis titles; the x axis is by default named after ``x``.
    negative
        Columns of ``ys`` drawn downwards (e.g. dormant customers).

    Returns
    -------
    plotly.graph_objects.Figure
        One bar trace per column of ``ys``, in palette order, ``barmode="relative"``.
    """
    fig = figure(title, x_title=x_title or x, y_title=y_title)
    for i, col in enumerate(ys):
        sign = -1 if col in negative else 1
        fig.add_bar(
            x=escape_label(df[x].astype(str)),
            y=sign * df[col],
            name=escape_label(str(col)),
            marker_color=PALETTE[i % len(PALETTE)],
        )
    fig.update_layout(barmode="relative")
    return fig


def sankey(
    links: pd.DataFrame,
    *,
    title: str,
    source: str = "source",
    target: str = "target",
    value: str = "customers",
    height: int = 480,
) -> go.Figure:
    """Plot a Sankey diagram from a links table (one row per source -> target flow).

    Nodes named ``"<step>. <name>"`` get the colour of ``<name>``, so one state has one
    colour at every step. Node labels and the title are shown literally
    (:func:`escape_label`).

    Parameters
    ----------
    links
        One row per flow.
    title
        The takeaway title.
    source, target, value
        The columns of the flow's start node, end node and size.
    height
        Figure height in pixels.

    Returns
    -------
    plotly.graph_objects.Figure
        One ``Sankey`` trace; nodes in order of first appearance.
    """
    nodes = list(dict.fromkeys([*links[source].astype(str), *links[target].astype(str)]))
    index = {n: i for i, n in enumerate(nodes)}
    names = sorted({n.split(". ", 1)[-1] for n in nodes})
    colour = {n: PALETTE[i % len(PALETTE)] for i, n in enumerate(names)}
    fig = go.Figure(
        go.Sankey(
            arrangement="snap",
            node={
                "label": escape_label(nodes),
                "pad": 12,
                "thickness": 14,
                "color": [colour[n.split(". ", 1)[-1]] for n in nodes],
            },
            link={
                "source": [index[s] for s in links[source].astype(str)],
                "target": [index[t] for t in links[target].astype(str)],
                "value": links[value].tolist(),
                "color": "rgba(82, 96, 109, 0.25)",
            },
        )
    )
    fig.update_layout(template=TEMPLATE_NAME, title=escape_label(title), height=height)
    return fig
