"""How cxkit shows tables and KPI tiles: every text HTML-escaped, numbers formatted alike.

* :func:`style_table` / :func:`show_table` — a pandas ``Styler`` for notebook tables
  (the reports keep its HTML);
* :func:`table_html` — a plain HTML table string, for widgets that redraw in place;
* :func:`tiles_html` / :func:`show_tiles` — the KPI tiles of the executive summary.

Comment text and other untrusted strings are escaped everywhere, so a customer's
``<script>`` is shown as text, never run.
"""

from __future__ import annotations

import datetime as _dt
import html
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from IPython.display import HTML, display
from pandas.io.formats.style import Styler

__all__ = ["format_cell", "show_table", "show_tiles", "style_table", "table_html", "tiles_html"]


def style_table(
    df: pd.DataFrame,
    *,
    formats: Mapping[str, str | Callable[[Any], str]] | None = None,
    percent: Sequence[str] = (),
    caption: str | None = None,
) -> Styler:
    """Return a pandas ``Styler`` for notebooks and reports with every cell HTML-escaped.

    Numbers get thousands separators and sensible rounding unless ``formats`` says
    otherwise; columns in ``percent`` (0–1 shares) are shown as percentages. Column
    labels, cells and the caption are escaped, so comment text is shown as inert text.

    Parameters
    ----------
    df
        The table; its index is hidden.
    formats
        Column name -> a format string (``"{:.1f}"``) or a function of the value,
        overriding the default for that column.
    percent
        Columns holding 0–1 shares, shown as ``"25.0%"``.
    caption
        A caption above the table.

    Returns
    -------
    pandas.io.formats.style.Styler
        The styled table; missing values show as "–".

    Examples
    --------
    >>> html_text = style_table(pd.DataFrame({"n": [1234], "x": ["<b>"]})).to_html()
    >>> "1,234" in html_text, "&lt;b&gt;" in html_text
    (True, True)
    """
    fmts: dict[str, Any] = {}
    for c in df.columns:
        if c in percent:
            fmts[c] = "{:.1%}"
        elif pd.api.types.is_bool_dtype(df[c]):
            fmts[c] = lambda v: "yes" if v else ""
        elif pd.api.types.is_integer_dtype(df[c]):
            fmts[c] = "{:,}"
        elif pd.api.types.is_float_dtype(df[c]):
            fmts[c] = "{:,.2f}"
        elif pd.api.types.is_datetime64_any_dtype(df[c]):
            fmts[c] = lambda v: "" if pd.isna(v) else f"{v:%Y-%m-%d}"
    fmts.update(formats or {})
    shown = df.copy()
    shown.columns = [str(c) for c in shown.columns]
    styler = shown.style.format(na_rep="–", escape="html")
    for col, f in fmts.items():
        if col in shown.columns:
            styler = styler.format(f, subset=[col], na_rep="–", escape="html")
    styler = styler.format_index(escape="html", axis=1).hide(axis="index")
    if caption:
        styler = styler.set_caption(html.escape(caption))
    return styler


def show_table(
    df: pd.DataFrame,
    *,
    formats: Mapping[str, str | Callable[[Any], str]] | None = None,
    percent: Sequence[str] = (),
    caption: str | None = None,
) -> None:
    """Display :func:`style_table` of ``df`` in a notebook.

    Parameters
    ----------
    df, formats, percent, caption
        As in :func:`style_table`.
    """
    display(style_table(df, formats=formats, percent=percent, caption=caption))


def format_cell(v: object, col: str, percent: bool = False) -> str:
    """Format one value as :func:`table_html` shows it.

    Parameters
    ----------
    v
        The value.
    col
        Its column name (``*rate``, ``rate_*``, ``*share``, ``*probability`` are shares).
    percent
        Show a number as a percentage of 1.

    Returns
    -------
    str
        The text, not yet escaped; "–" for a missing value.

    Examples
    --------
    >>> format_cell(0.25, "rate"), format_cell(1234, "n"), format_cell(None, "x")
    ('25.0%', '1,234', '–')
    """
    if v is None or (not isinstance(v, str) and pd.api.types.is_scalar(v) and pd.isna(v)):
        return "–"
    if isinstance(v, bool | np.bool_):
        return "yes" if v else ""
    if isinstance(v, pd.Timestamp | _dt.datetime):
        return f"{pd.Timestamp(v):%Y-%m-%d %H:%M}"
    if isinstance(v, int | np.integer):
        return f"{int(v):,}"
    if isinstance(v, float | np.floating):
        if percent or col.endswith(("rate", "share", "probability")) or col.startswith("rate_"):
            return f"{100 * float(v):.1f}%"
        return f"{float(v):,.2f}"
    return str(v)


def table_html(
    df: pd.DataFrame, *, max_rows: int | None = None, percent: Sequence[str] = ()
) -> str:
    """Return a small HTML table of ``df`` with every header and cell HTML-escaped.

    Columns in ``percent`` and shares/rates/probabilities (named ``*rate``, ``rate_*``,
    ``*share``, ``*probability``) are shown as percentages, other floats with two
    decimals, counts with thousands separators, missing values as "–".

    Parameters
    ----------
    df
        The table; its index is left out.
    max_rows
        Show only the first ``max_rows`` rows; ``None`` shows all.
    percent
        Columns shown as percentages of 1 whatever their name.

    Returns
    -------
    str
        A ``<table class="cx-widget-table">`` element (cells formatted by
        :func:`format_cell`).

    Examples
    --------
    >>> table_html(pd.DataFrame({"comment": ["<b>hi</b>"], "rate": [0.25]}))[-69:]
    '<tr><td>&lt;b&gt;hi&lt;/b&gt;</td><td>25.0%</td></tr></tbody></table>'
    """
    if max_rows is not None:
        df = df.head(max_rows)
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in df.columns)
    pct = [str(c) in percent for c in df.columns]
    rows = []
    for rec in df.itertuples(index=False, name=None):
        cells = "".join(
            f"<td>{html.escape(format_cell(v, str(c), p))}</td>"
            for v, c, p in zip(rec, df.columns, pct, strict=True)
        )
        rows.append(f"<tr>{cells}</tr>")
    return (
        '<table class="cx-widget-table" style="border-collapse:collapse;font-size:12px">'
        f"<thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"
    )


_TILE_CSS = """
<style>
.cx-tiles{display:grid;grid-template-columns:repeat(auto-fill,minmax(200px,1fr));gap:12px;
  margin:8px 0 16px}
.cx-tile{border:1px solid #e4e7eb;border-radius:8px;padding:12px 14px;background:#fff}
.cx-tile .cx-kpi{font-size:13px;color:#52606d;margin:0}
.cx-tile .cx-value{font-size:26px;font-weight:600;color:#1f2933;margin:4px 0}
.cx-tile .cx-detail{font-size:12px;color:#52606d;margin:0;line-height:1.35}
.cx-tile.cx-na .cx-value{color:#9aa5b1}
.cx-tile.cx-small{border-color:#E69F00}
</style>
"""


def _fmt_value(row: pd.Series) -> str:
    v, unit = row["value"], str(row["unit"])
    if not row["available"] or v is None or pd.isna(v):
        return "—"
    if unit == "points":
        return f"{v:+.0f}"
    if unit in ("share",):
        return f"{v:.0%}"
    if unit.startswith("%"):
        return f"{v:.0f}%"
    if unit == "currency":
        return f"{v:,.0f}"
    if unit == "customers":
        return f"{v:,.0f}"
    return f"{v:,.2f}"


def tiles_html(kpis: pd.DataFrame) -> str:
    """Return the KPI tiles as an HTML grid; every text is escaped.

    Parameters
    ----------
    kpis
        One row per tile with the columns ``kpi`` (the label), ``value``, ``unit``
        (``"points"``, ``"share"``, ``"%..."``, ``"currency"``, ``"customers"`` or other),
        ``available`` (False shows "—" greyed out), ``sentence`` (the detail line) and,
        optionally, ``small_n`` (outlines the tile).

    Returns
    -------
    str
        The tiles' ``<style>`` and ``<div class="cx-tiles">`` grid.

    Examples
    --------
    >>> kpis = pd.DataFrame({"kpi": ["NPS"], "value": [12.4], "unit": ["points"],
    ...                      "available": [True], "sentence": ["n = 40 <responses>"]})
    >>> text = tiles_html(kpis)
    >>> '<p class="cx-value">+12</p>' in text, "&lt;responses&gt;" in text
    (True, True)
    """
    parts = [_TILE_CSS, '<div class="cx-tiles">']
    for _, row in kpis.iterrows():
        cls = (
            "cx-tile"
            + ("" if row["available"] else " cx-na")
            + (" cx-small" if row.get("small_n") else "")
        )
        parts.append(
            f'<div class="{cls}"><p class="cx-kpi">{html.escape(str(row["kpi"]))}</p>'
            f'<p class="cx-value">{html.escape(_fmt_value(row))}</p>'
            f'<p class="cx-detail">{html.escape(str(row["sentence"]))}</p></div>'
        )
    parts.append("</div>")
    return "".join(parts)


def show_tiles(kpis: pd.DataFrame) -> None:
    """Display the KPI tiles in a notebook.

    Parameters
    ----------
    kpis
        As in :func:`tiles_html`.
    """
    display(HTML(tiles_html(kpis)))
