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
from collections.abc import Iterable, Sequence
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
    "bar_axis_range",
    "bar_label_ends",
    "bar_with_ci",
    "escape_label",
    "figure",
    "heatmap",
    "label_boxes",
    "label_positions",
    "quadrant",
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
    y_range: tuple[float, float] | None = None,
    reference: float | None = None,
    reference_label: str | None = None,
) -> go.Figure:
    """Plot bars with error bars from interval columns (e.g. a rate and its Wilson interval).

    The value axis always includes zero (a bar's length is its value). Labels
    (``text``) sit beyond the end of each bar's interval, above a positive bar and
    below a negative one, so an error bar never crosses them, and the axis leaves room
    for them (:func:`bar_axis_range`; a caller adding traces to a labelled chart must
    keep them inside it).

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
        A column of labels shown beyond each bar's interval (``<br>`` breaks a line).
    percent
        Values are 0–1 shares: plot them (and the interval) times 100.
    height
        Figure height in pixels.
    y_range
        The value axis's range (in plotted units); by default from the data, zero and
        the labels. A range that leaves out zero is widened to include it.
    reference
        A value drawn as a dashed line across the bars (e.g. 0.5, a guess's ROC AUC),
        in the units of ``y`` (before ``percent`` scaling).
    reference_label
        The reference line's label.

    Returns
    -------
    plotly.graph_objects.Figure
        One bar trace with asymmetric error bars, labels as annotations.
    """
    fig = figure(title, x_title=x_title or x, y_title=y_title or y, height=height)
    scale = 100.0 if percent else 1.0
    cats = escape_label(df[x].astype(str))
    val = df[y].to_numpy(dtype=float) * scale
    lo = df[low].to_numpy(dtype=float) * scale
    hi = df[high].to_numpy(dtype=float) * scale
    labels = escape_label(df[text].astype(str)) if text else None
    fig.add_bar(
        x=cats,
        y=df[y] * scale,
        error_y={
            "type": "data",
            "symmetric": False,
            "array": (df[high] - df[y]) * scale,
            "arrayminus": (df[y] - df[low]) * scale,
            "color": "#52606d",
        },
        marker_color=color or PALETTE[0],
        # the labels are annotations beyond the whiskers; the trace keeps them for hover
        text=labels,
        textposition="none" if text else None,
    )
    ends = bar_label_ends(val, lo, hi)
    if labels is not None:
        for cat, label, (where, above) in zip(cats, labels, ends, strict=True):
            fig.add_annotation(
                x=cat,
                y=where,
                text=label,
                showarrow=False,
                yanchor="bottom" if above else "top",
                yshift=3 if above else -3,
                font={"size": 12, "color": "#3e4c59"},
            )
    ref = None if reference is None else reference * scale
    if ref is not None:
        fig.add_hline(
            y=ref,
            line_dash="dash",
            line_color=NEUTRAL,
            annotation_text=escape_label(reference_label) if reference_label else None,
            annotation_position="top right",
            annotation_font_color="#3e4c59",
            annotation_bgcolor="rgba(255,255,255,0.9)",  # readable over a bar
        )
    if labels is None and y_range is None:
        # plotly's own range, from zero: it also fits traces a caller adds (a model line)
        fig.update_yaxes(rangemode="tozero")
        return fig
    lines = max((str(t).lower().count("<br") + 1 for t in labels or []), default=0)
    fig.update_yaxes(
        range=bar_axis_range(
            val, lo, hi, label_lines=lines, height=height, fixed=y_range, extra=ref
        )
    )
    return fig


#: Height (px) of one line of a bar label, with its gap to the whisker.
_LABEL_LINE_PX = 17.0
#: The part of a figure's height that is not plot area (title, margins, axis ticks).
_CHROME_PX = 150.0


def bar_label_ends(
    values: np.ndarray, lows: np.ndarray, highs: np.ndarray
) -> list[tuple[float, bool]]:
    """Return where each bar's label goes: the far end of its interval, and which side.

    Parameters
    ----------
    values, lows, highs
        The bars' values and interval bounds (plotted units).

    Returns
    -------
    list of (float, bool)
        Per bar, the value the label is anchored at (the interval's end away from zero;
        the bar's end without an interval) and True when the label goes above it.

    Examples
    --------
    >>> bar_label_ends(np.array([2.0, -3.0]), np.array([1.0, -5.0]), np.array([4.0, -1.0]))
    [(4.0, True), (-5.0, False)]
    """
    out = []
    for v, lo, hi in zip(values, lows, highs, strict=True):
        above = not (v < 0)
        end = hi if above else lo
        if end != end:  # no interval: the bar's end
            end = v
        if above and v == v:
            end = max(end, v)
        elif v == v:
            end = min(end, v)
        out.append((float(end), above))
    return out


def bar_axis_range(
    values: np.ndarray,
    lows: np.ndarray,
    highs: np.ndarray,
    *,
    label_lines: int = 0,
    height: int = 420,
    fixed: tuple[float, float] | None = None,
    extra: float | None = None,
) -> list[float]:
    """Return a bar chart's value-axis range: zero, every interval and room for labels.

    Parameters
    ----------
    values, lows, highs
        The bars' values and interval bounds (plotted units).
    label_lines
        Lines of the tallest label beyond the bars (0 for none).
    height
        The figure's height (px), to turn the labels' height into axis units.
    fixed
        A range asked for; it is widened to include zero and the intervals.
    extra
        Another value that must be inside (a reference line).

    Returns
    -------
    list of float
        ``[bottom, top]``, with ``bottom <= 0 <= top``.

    Examples
    --------
    >>> bar_axis_range(np.array([50.0]), np.array([40.0]), np.array([60.0]))
    [0.0, 63.0]
    """
    pts = np.concatenate([np.asarray(a, dtype=float) for a in (values, lows, highs)])
    pts = pts[np.isfinite(pts)]
    if extra is not None:
        pts = np.append(pts, extra)
    if fixed is not None:
        pts = np.append(pts, fixed)
    top = max(0.0, float(pts.max())) if len(pts) else 1.0
    bottom = min(0.0, float(pts.min())) if len(pts) else 0.0
    if top == bottom:
        top = bottom + 1.0
    span = top - bottom
    plot_px = max(float(height) - _CHROME_PX, 120.0)
    # each side gets the labels' height (the axis grows by that share of the plot)
    frac = min(label_lines * _LABEL_LINE_PX / plot_px, 0.4)
    pad = span * frac / (1 - 2 * frac) if frac else 0.0
    v = np.asarray(values, dtype=float)
    pos, neg = bool(np.any(v >= 0)), bool(np.any(v < 0))
    if fixed is not None and not label_lines:
        return [float(min(fixed[0], bottom)), float(max(fixed[1], top))]
    margin = 0.05 * span  # plotly's own breathing room, where labels do not need more
    new_top = top + (pad if pos else 0.0) + (margin if top > 0 else 0.0)
    new_bottom = bottom - (pad if neg else 0.0) - (margin if bottom < 0 else 0.0)
    return [round(new_bottom, 10), round(new_top, 10)]


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


# --------------------------------------------------------------------------------------
# labelled scatter charts: labels placed so they do not collide (quadrant charts)
# --------------------------------------------------------------------------------------

#: The plot-area size (px) labels are placed for: a report page at 1400 px.
LABEL_PLOT_WIDTH, LABEL_FONT_PX = 900.0, 13.0
#: Where plotly can put a point's text, in the order tried; the offset (in units of the
#: label's width and height) of the label's centre from the point.
_POSITIONS: dict[str, tuple[float, float]] = {
    "top center": (0.0, -1.0),
    "bottom center": (0.0, 1.0),
    "top right": (0.5, -1.0),
    "top left": (-0.5, -1.0),
    "bottom right": (0.5, 1.0),
    "bottom left": (-0.5, 1.0),
    "middle right": (1.0, 0.0),
    "middle left": (-1.0, 0.0),
}
_Box = tuple[float, float, float, float]  # left, top, right, bottom (px, y down)


def _text_size(text: str, font_px: float = LABEL_FONT_PX) -> tuple[float, float]:
    """Return a label's estimated width and height in px (plotly's sans-serif font)."""
    lines = re.split(r"(?i)<br\s*/?>", text)
    plain = [re.sub(r"&[#\w]+;", "x", s) for s in lines]
    return max(len(s) for s in plain) * 0.58 * font_px + 4, len(lines) * 1.3 * font_px


def _overlap(a: _Box, b: _Box) -> float:
    """Return the overlapping area of two boxes."""
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    return w * h if w > 0 and h > 0 else 0.0


def label_boxes(
    px: np.ndarray,
    py: np.ndarray,
    labels: list[str],
    positions: list[str],
    *,
    marker_px: float = 12.0,
    font_px: float = LABEL_FONT_PX,
) -> list[_Box]:
    """Return the box (px) each point's label takes at its text position.

    Parameters
    ----------
    px, py
        The points in pixels (y grows downwards).
    labels
        The labels.
    positions
        Plotly text positions (``"top center"``, ...), one per point.
    marker_px
        The marker's diameter (labels keep clear of it).
    font_px
        The labels' font size.

    Returns
    -------
    list of (left, top, right, bottom)
        One box per label.
    """
    boxes = []
    gap = marker_px / 2 + 2
    for x, y, text, pos in zip(px, py, labels, positions, strict=True):
        w, h = _text_size(text, font_px)
        dx, dy = _POSITIONS[pos]
        cx = x + dx * (w / 2 + (gap if dx and dy == 0 else 0))
        cy = y + dy * (h / 2 + gap)
        boxes.append((cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2))
    return boxes


def label_positions(
    x: np.ndarray,
    y: np.ndarray,
    labels: list[str],
    *,
    x_range: tuple[float, float],
    y_range: tuple[float, float],
    width: float = LABEL_PLOT_WIDTH,
    height: float = 300.0,
    obstacles: Sequence[_Box] = (),
    marker_px: float = 12.0,
    font_px: float = LABEL_FONT_PX,
) -> list[str]:
    """Choose a text position for each point's label so that labels do not collide.

    Greedy, one point after the other (top to bottom): of plotly's text positions, the
    first that overlaps no label placed before, no marker, no obstacle (e.g. a
    quadrant's name) and stays inside the plot; when none is free, the one with the
    least overlap. Above or below a point comes first: a horizontal error bar runs
    through the point's sides.

    Parameters
    ----------
    x, y
        The points (data units).
    labels
        Their labels.
    x_range, y_range
        The axes' ranges (data units).
    width, height
        The plot area's size (px) the labels are placed for.
    obstacles
        Boxes (px: left, top, right, bottom, y down) labels must keep clear of.
    marker_px, font_px
        The markers' diameter and the labels' font size.

    Returns
    -------
    list of str
        One plotly ``textposition`` per point.

    Examples
    --------
    >>> label_positions(np.array([1.0, 1.0]), np.array([5.0, 4.9]), ["alpha", "beta"],
    ...                 x_range=(0, 2), y_range=(0, 10), height=300)
    ['top center', 'bottom center']
    """
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    (x0, x1), (y0, y1) = x_range, y_range
    px = (x - x0) / ((x1 - x0) or 1.0) * width
    py = (y1 - y) / ((y1 - y0) or 1.0) * height
    r = marker_px / 2
    markers: list[_Box] = [(a - r, b - r, a + r, b + r) for a, b in zip(px, py, strict=True)]
    placed: list[_Box] = []
    chosen = ["top center"] * len(x)
    order = sorted(range(len(x)), key=lambda i: (py[i], px[i]))
    for i in order:
        best, best_cost = "top center", float("inf")
        for k, pos in enumerate(_POSITIONS):
            (box,) = label_boxes(
                px[i : i + 1],
                py[i : i + 1],
                [labels[i]],
                [pos],
                marker_px=marker_px,
                font_px=font_px,
            )
            cost = sum(_overlap(box, b) for b in placed)
            cost += sum(_overlap(box, m) for j, m in enumerate(markers) if j != i)
            cost += sum(_overlap(box, o) for o in obstacles)
            inside = _overlap(box, (0.0, 0.0, width, height))
            cost += ((box[2] - box[0]) * (box[3] - box[1]) - inside) * 2
            cost += k * 1e-3  # ties: the earlier position
            if cost < best_cost:
                best, best_cost = pos, cost
            if cost < 1:
                break
        chosen[i] = best
        placed += label_boxes(
            px[i : i + 1], py[i : i + 1], [labels[i]], [best], marker_px=marker_px, font_px=font_px
        )
    return chosen


def quadrant(
    x: pd.Series | np.ndarray,
    y: pd.Series | np.ndarray,
    labels: pd.Series | list[str],
    *,
    title: str,
    x_title: str,
    y_title: str,
    names: tuple[str, str, str, str],
    x_split: float | None = None,
    y_split: float | None = None,
    x_low: pd.Series | np.ndarray | None = None,
    x_high: pd.Series | np.ndarray | None = None,
    hovertemplate: str | None = None,
    customdata: pd.Series | np.ndarray | None = None,
    height: int = 480,
) -> go.Figure:
    """Plot a quadrant chart: labelled points, split lines and the quadrants' names.

    The axes leave a band above and below the points where the quadrants' names sit,
    in the corners, and every point's label gets the position where it collides with
    no other label, marker or name (:func:`label_positions`).

    Parameters
    ----------
    x, y
        The points.
    labels
        Their labels (shown literally, :func:`escape_label`).
    title
        The takeaway title.
    x_title, y_title
        Axis titles.
    names
        The quadrants' names: top left, top right, bottom left, bottom right.
    x_split, y_split
        Where the dashed lines split the plane; by default the means.
    x_low, x_high
        An interval of ``x`` per point, drawn as a horizontal error bar.
    hovertemplate, customdata
        Passed to the scatter trace.
    height
        Figure height in pixels.

    Returns
    -------
    plotly.graph_objects.Figure
        One scatter trace, two lines, four annotations; fixed axis ranges.
    """
    xv = np.asarray(x, dtype=float)
    yv = np.asarray(y, dtype=float)
    text = [str(t) for t in escape_label([str(v) for v in labels])]
    xs = float(np.nanmean(xv)) if x_split is None else float(x_split)
    ys = float(np.nanmean(yv)) if y_split is None else float(y_split)
    lo = xv if x_low is None else np.asarray(x_low, dtype=float)
    hi = xv if x_high is None else np.asarray(x_high, dtype=float)
    fin = np.isfinite
    xmin = float(np.nanmin(np.concatenate([xv, lo[fin(lo)], [xs]])))
    xmax = float(np.nanmax(np.concatenate([xv, hi[fin(hi)], [xs]])))
    widest = max((_text_size(t)[0] for t in text), default=0.0)
    xpad = (xmax - xmin or 1.0) * max(0.04, 0.5 * widest / LABEL_PLOT_WIDTH)
    x_range = (xmin - xpad, xmax + xpad)
    plot_h = max(height - _CHROME_PX, 150.0)
    ymin = float(np.nanmin(np.append(yv, ys)))
    ymax = float(np.nanmax(np.append(yv, ys)))
    band = 2.6 * LABEL_FONT_PX * 1.3  # px kept free at the top and bottom for the names
    yspan = ymax - ymin or 1.0
    ypad = yspan * band / max(plot_h - 2 * band, 60.0)
    y_range = (ymin - ypad, ymax + ypad)
    name_boxes: list[_Box] = []
    corners = ((0, 0, "left", "top"), (1, 0, "right", "top"), (0, 1, "left", "bottom"),
               (1, 1, "right", "bottom"))  # fmt: skip
    for name, (cx, cy, _, _) in zip(names, corners, strict=True):
        w, h = _text_size(name)
        left = 0.0 if cx == 0 else LABEL_PLOT_WIDTH - w
        top = 0.0 if cy == 0 else plot_h - h
        name_boxes.append((left, top, left + w, top + h))
    # the horizontal error bars: a label must not sit on one
    to_px = LABEL_PLOT_WIDTH / (x_range[1] - x_range[0])
    bars: list[_Box] = []
    for a, b, yy in zip(lo, hi, yv, strict=True):
        if np.isfinite(a) and np.isfinite(b) and b > a:
            py = (y_range[1] - yy) / (y_range[1] - y_range[0]) * plot_h
            bars.append(((a - x_range[0]) * to_px, py - 3, (b - x_range[0]) * to_px, py + 3))
    positions = label_positions(
        xv,
        yv,
        text,
        x_range=x_range,
        y_range=y_range,
        height=plot_h,
        obstacles=name_boxes + bars,
    )
    fig = figure(title, x_title=x_title, y_title=y_title, height=height)
    error_x = None
    if x_low is not None and x_high is not None:
        error_x = {
            "type": "data",
            "symmetric": False,
            "array": hi - xv,
            "arrayminus": xv - lo,
            "color": "#9aa5b1",
        }
    fig.add_scatter(
        x=xv,
        y=yv,
        mode="markers+text",
        text=text,
        textposition=positions,
        marker={"size": 12, "color": PALETTE[0]},
        error_x=error_x,
        customdata=customdata,
        hovertemplate=hovertemplate,
        showlegend=False,
        cliponaxis=False,
    )
    fig.add_vline(x=xs, line_dash="dash", line_color="#9aa5b1")
    fig.add_hline(y=ys, line_dash="dash", line_color="#9aa5b1")
    for name, (cx, cy, xan, yan) in zip(names, corners, strict=True):
        fig.add_annotation(
            text=escape_label(name),
            xref="paper",
            yref="paper",
            x=cx,
            y=1 - cy,
            xanchor=xan,
            yanchor=yan,
            showarrow=False,
            font={"color": "#7b8794"},
        )
    fig.update_xaxes(range=list(x_range), zeroline=False)
    fig.update_yaxes(range=list(y_range))
    return fig
