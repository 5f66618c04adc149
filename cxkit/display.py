"""How cxkit shows tables and KPI tiles: plain labels, one number format, every text escaped.

* :func:`show_table` / :func:`table_html` — a stakeholder table: readable column labels
  (:data:`LABELS`, else :func:`column_label`'s fallback), units, money with the
  currency (:func:`currency`), shares as percentages with one decimal, p-values as
  ``0.023`` or ``< 0.001``, ``yes``/``no`` for flags, small samples in words, 95%
  intervals in one column, numbers right-aligned; wide tables scroll in a box with a
  visible scrollbar;
* :func:`format_table` — the same table as text (what both of the above show);
* :func:`style_table` — that text as a pandas ``Styler``;
* :func:`tiles_html` / :func:`show_tiles` — the KPI tiles of the executive summary.

How a column is shown follows from its name (``*_rate``, ``*share``, ``*probability``
are 0–1 shares; ``p_value``, ``p_holm``, ``p_vs_*`` are p-values; ``spend*``, ``clv*``,
``amount`` are money; ``*_days``, ``*_hours``, ``*_weeks`` are durations; ``*_pct`` is
already in percent; ``diff`` of shares and ``*_points`` are percentage points;
``X_low`` / ``X_high`` and ``ci_low`` / ``ci_high`` are the interval of ``X`` or of the
column before them) and its type (integers are counts). ``formats``, ``percent`` and
``money`` override it per column.

The currency comes from :func:`set_currency` (an analyst in JupyterLab), else from the
environment variable :data:`CURRENCY_ENV` (``cxkit report`` sets it from ``currency:``
in ``reports.yml``), else none: money is then shown as a plain number.

Comment text and other untrusted strings are escaped everywhere, so a customer's
``<script>`` is shown as text, never run.
"""

from __future__ import annotations

import datetime as _dt
import html
import os
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from IPython.display import HTML, display
from pandas.io.formats.style import Styler

from cxkit.stats import MIN_N, format_p_value

__all__ = [
    "CURRENCY_ENV",
    "LABELS",
    "check_currency",
    "column_kind",
    "column_label",
    "currency",
    "format_cell",
    "format_money",
    "format_p",
    "format_table",
    "set_currency",
    "show_table",
    "show_tiles",
    "style_table",
    "table_html",
    "tiles_html",
]

Formats = Mapping[str, str | Callable[[Any], str]]

#: The environment variable that carries the currency into every report kernel.
CURRENCY_ENV = "CXKIT_CURRENCY"
_ISO_CODE = re.compile(r"^[A-Z]{3}$")
_SYMBOL = re.compile(r"^[^\s\d<>&\"'`]{1,4}$")
_NO_CHOICE = object()
_chosen: dict[str, object] = {"currency": _NO_CHOICE}

#: Readable labels of the column names cxkit's results use; other names get
#: :func:`column_label`'s fallback ("median_time_from_previous_days" -> "median time
#: from previous (days)").
LABELS: dict[str, str] = {
    # counts
    "n": "n",
    "n_start": "customers at start",
    "n_converted": "converted",
    "n_customers": "customers",
    "n_from": "customers at stage",
    "n_to": "reached next stage",
    "n_reached": "reached",
    "n_comments": "comments",
    "n_total": "all comments",
    "n_observed": "answers",
    "previous_n": "previous n",
    "n_previous": "customers at previous step",
    "base_n": "base n",
    "best_n": "best n",
    "worst_n": "worst n",
    "orders_n": "orders",
    "customers_with": "customers with data",
    "customers_total": "all customers",
    "frequency": "repeat purchases",
    # tests and flags
    "p_value": "p-value",
    "p_holm": "p-value (Holm)",
    "p_vs_other_channels": "p-value vs other channels",
    "p_vs_other_groups": "p-value vs other groups",
    "small_n": "sample",
    "significant": "significant",
    # rates and differences
    "rate": "rate",
    "rate_rest": "rate, rest",
    "rate_from_start": "of the first step",
    "rate_from_previous": "of the previous step",
    "diff": "difference (pts)",
    "gap_vs_other_channels": "gap vs other channels (pts)",
    "gap_vs_other_groups": "gap vs other groups (pts)",
    "spread_points": "spread (pts)",
    "churn_rate": "churn rate",
    "churn_probability": "churn probability",
    "mean_churn_probability": "mean churn probability",
    "high_risk_share": "high-risk share",
    "share_of_value": "share of value",
    "cumulative_customers_share": "customers contacted (cumulative)",
    "cumulative_gain": "churners found (cumulative)",
    "switch_rate": "switch rate",
    "negative_share": "negative comments",
    "p_alive": "P(alive)",
    # scores
    "nps": "NPS",
    "last_nps": "last NPS answer",
    "last_nps_at": "last NPS answer on",
    "nps_group": "NPS group",
    "csat_share": "CSAT (top-2-box)",
    "csat_mean": "mean CSAT (1–5)",
    "ces_mean": "mean CES (1–7)",
    "ces_sd": "CES SD",
    "best_csat": "best CSAT",
    "worst_csat": "worst CSAT",
    "performance_0_100": "performance (0–100)",
    "importance_pct": "importance",
    "sentiment_mean": "mean sentiment (−1 to 1)",
    "roc_auc": "ROC AUC",
    "pr_auc": "PR AUC",
    "brier": "Brier score",
    "lift": "lift (×)",
    # money and time
    "spend_total": "total spend",
    "spend_to_date": "spend to date",
    "past_repeat_spend": "repeat spend to date",
    "mean_spend": "mean spend",
    "recency_days": "days since last order",
    "event_recency_days": "days since last activity",
    "horizon_days": "horizon (days)",
    # names
    "customer_id": "customer ID",
    "persona_name": "persona",
    "step_name": "step",
    "from_stage": "from stage",
    "to_stage": "to stage",
    "risk_band": "risk band",
    "decile": "risk decile",
    "last_touch_channel": "last channel",
    "recommended_focus": "recommended focus",
    "best_channel": "best channel",
    "worst_channel": "worst channel",
    "top_terms": "top terms",
    "theme_weight": "theme weight",
    "first_ts": "first timestamp",
    "last_ts": "last timestamp",
    "first_date": "first date",
    "last_date": "last date",
    "se": "SE",
}

_TOKENS = {
    "id": "ID", "csat": "CSAT", "nps": "NPS", "ces": "CES", "clv": "CLV", "auc": "AUC",
    "roc": "ROC", "rfm": "RFM", "sd": "SD", "se": "SE", "ci": "CI", "pr": "PR",
    "p90": "90th percentile", "p10": "10th percentile", "p50": "median",
}  # fmt: skip
_UNIT_WORDS = {"days", "hours", "weeks", "minutes", "seconds", "months", "years"}
_COUNT_NAMES = {
    "n", "customers", "churners", "switchers", "satisfied", "rows", "orders", "converted",
    "reached", "responses", "comments", "events", "frequency", "k", "steps", "answers",
}  # fmt: skip
_MONEY = re.compile(r"(^|_)(spend|clv|revenue|amount|monetary|aov|price|margin|sales)(_|$)")
_CLV_HORIZON = re.compile(r"^(?P<pre>.*?)clv(?P<mid>_at_risk)?_(?P<w>\d+)w$")

# column kinds: how a column's values are shown
_NUMERIC_KINDS = {
    "count", "share", "share_diff", "points", "percent", "money", "p_value", "duration",
    "number",
}  # fmt: skip


# --------------------------------------------------------------------------------------
# currency
# --------------------------------------------------------------------------------------


def check_currency(value: object) -> str:
    """Return a currency setting when it is a symbol or a three-letter ISO code.

    Parameters
    ----------
    value
        ``"$"``, ``"€"``, ``"R$"``, ``"EUR"``, ...

    Returns
    -------
    str
        The setting, stripped.

    Raises
    ------
    ValueError
        When it is neither (the message says what is allowed).

    Examples
    --------
    >>> check_currency(" EUR "), check_currency("$")
    ('EUR', '$')
    """
    text = str(value).strip() if isinstance(value, str) else ""
    if _ISO_CODE.match(text) or (_SYMBOL.match(text) and not text.isalpha()):
        return text
    raise ValueError(
        "give a currency symbol such as '$' or '€', or a three-letter ISO code such as "
        f"'EUR' (or null for none), got {value!r}"
    )


def set_currency(value: str | None) -> None:
    """Choose the currency of money in tables for this Python session (e.g. in JupyterLab).

    Parameters
    ----------
    value
        A symbol (``"$"``) or an ISO code (``"EUR"``): it overrides
        :data:`CURRENCY_ENV` until called again. ``None`` goes back to the default
        (:data:`CURRENCY_ENV`, else no currency).

    Raises
    ------
    ValueError
        For anything else (see :func:`check_currency`).
    """
    _chosen["currency"] = _NO_CHOICE if value is None else check_currency(value)


def currency() -> str | None:
    """Return the currency money is shown with, or None.

    Returns
    -------
    str or None
        What :func:`set_currency` chose, else :data:`CURRENCY_ENV` when it holds a
        valid setting, else None.
    """
    chosen = _chosen["currency"]
    if chosen is not _NO_CHOICE:
        return chosen  # type: ignore[return-value]
    env = os.environ.get(CURRENCY_ENV, "").strip()
    try:
        return check_currency(env) if env else None
    except ValueError:
        return None


def format_money(v: object, *, decimals: int = 2, currency_text: str | None = None) -> str:
    """Show an amount of money with thousands separators and the currency.

    Parameters
    ----------
    v
        The amount.
    decimals
        Digits after the point.
    currency_text
        The currency; by default :func:`currency`.

    Returns
    -------
    str
        ``"$1,234.50"`` for a symbol, ``"1,234.50 EUR"`` for an ISO code,
        ``"1,234.50"`` without a currency; ``"–"`` for a missing value.

    Examples
    --------
    >>> format_money(-1234.5, currency_text="$"), format_money(99, currency_text="EUR")
    ('-$1,234.50', '99.00 EUR')
    """
    if _missing(v):
        return "–"
    cur = currency() if currency_text is None else currency_text
    x = float(v)  # type: ignore[arg-type]
    text = f"{abs(x):,.{decimals}f}"
    sign = "-" if x < 0 and text.strip("0.,") else ""
    if not cur:
        return sign + text
    if _ISO_CODE.match(cur):
        return f"{sign}{text} {cur}"
    return f"{sign}{cur}{text}"


def format_p(p: object) -> str:
    """Show a p-value: three decimals, ``"< 0.001"`` below that (never ``"0"``).

    Parameters
    ----------
    p
        The p-value.

    Returns
    -------
    str
        The text; ``"–"`` for a missing value.

    Examples
    --------
    >>> format_p(0.0), format_p(0.0004), format_p(0.02349), format_p(1.0)
    ('< 0.001', '< 0.001', '0.023', '1.000')
    """
    if _missing(p):
        return "–"
    return format_p_value(float(p))  # type: ignore[arg-type]


# --------------------------------------------------------------------------------------
# labels and kinds
# --------------------------------------------------------------------------------------


def column_label(name: object, labels: Mapping[str, str] | None = None) -> str:
    """Return the label a stakeholder reads for a column.

    ``labels`` first, then :data:`LABELS`, then a fallback: underscores become spaces,
    known abbreviations are spelled as people write them (CSAT, NPS, CLV, ID), a
    trailing unit goes in brackets and ``clv_52w`` reads "CLV, next 52 weeks". A name
    that is already a label (no underscore) is left as it is.

    Parameters
    ----------
    name
        The column name.
    labels
        Labels that override the central ones.

    Returns
    -------
    str
        The label.

    Examples
    --------
    >>> column_label("p_holm"), column_label("median_time_from_previous_days")
    ('p-value (Holm)', 'median time from previous (days)')
    >>> column_label("clv_at_risk_52w"), column_label("mean_csat_low"), column_label("Region")
    ('CLV at risk, next 52 weeks', 'mean CSAT low', 'Region')
    """
    key = str(name)
    if labels and key in labels:
        return labels[key]
    if key in LABELS:
        return LABELS[key]
    if "_" not in key:
        return _TOKENS.get(key, key)
    m = _CLV_HORIZON.match(key)
    if m:
        pre = m.group("pre").replace("_", " ")
        return f"{pre}CLV{' at risk' if m.group('mid') else ''}, next {m.group('w')} weeks"
    parts = [p for p in key.split("_") if p]
    unit = ""
    if len(parts) > 1 and parts[-1] in _UNIT_WORDS:
        unit = f" ({parts.pop()})"
    elif len(parts) > 1 and parts[-1] == "pct":
        parts.pop()
    elif len(parts) > 1 and parts[-1] == "points":
        parts.pop()
        unit = " (pts)"
    if len(parts) > 1 and parts[0] == "n":
        parts = parts[1:]
    if len(parts) > 1 and parts[0] == "is":
        parts = parts[1:]
    return " ".join(_TOKENS.get(p, p) for p in parts) + unit


def _name_kind(name: str) -> str | None:
    """Return the kind a column's name implies, or None."""
    if name == "small_n":
        return "small_n"
    if name in ("p", "p_value", "p_holm") or (
        name.startswith("p_") and name not in ("p_alive",) and not name.startswith("p_alive")
    ):
        return "p_value"
    if name.endswith("_pct"):
        return "percent"
    if name.endswith("_points") or name.startswith(("gap_vs_", "gap_points")):
        return "points"
    if name == "nps" or (name.startswith("nps_") and name != "nps_group"):
        return "points"
    if (
        name.endswith(("rate", "share", "probability"))
        or name.startswith(("rate_", "share_"))
        or name in ("p_alive", "cumulative_gain", "best_csat", "worst_csat", "csat_top2")
    ):
        return "share"
    if _MONEY.search(name):
        return "money"
    if name.split("_")[-1] in _UNIT_WORDS:
        return "duration"
    if name == "diff" or name.startswith("diff_"):
        return "share_diff"
    if name in _COUNT_NAMES or name.startswith("n_") or name.endswith("_n"):
        return "count"
    return None


_BOUND_WORDS = (("low", "high"), ("lower", "upper"))


def _bound(col: str) -> tuple[str, str] | None:
    """Return (side, word) when a column name is an interval bound, e.g. ("low", "low")."""
    for pair in _BOUND_WORDS:
        for side, word in zip(("low", "high"), pair, strict=True):
            if (
                col in (word, f"ci_{word}")
                or col.startswith(f"ci_{word}_")
                or col.endswith((f"_{word}", f"_{word}_pct"))
            ):
                return side, word
    return None


def _bound_side(col: str) -> str | None:
    """Return "low" or "high" when a column name looks like an interval bound."""
    b = _bound(col)
    return None if b is None else b[0]


def _swap_side(col: str) -> str:
    """Return the name of the other bound of an interval bound's column."""
    b = _bound(col)
    if b is None:
        return col
    side, word = b
    other = dict(_BOUND_WORDS)[word] if side == "low" else {v: k for k, v in _BOUND_WORDS}[word]
    if col == word:
        return other
    if col.startswith(f"ci_{word}"):
        return f"ci_{other}" + col[len(f"ci_{word}") :]
    if col.endswith(f"_{word}_pct"):
        return col[: -len(f"_{word}_pct")] + f"_{other}_pct"
    return col[: -len(word)] + other


def _interval_base(
    col: str, columns: Sequence[str], frame: pd.DataFrame | None = None
) -> str | None:
    """Return the measure an interval bound belongs to; None when ``col`` is no bound.

    ``X_low`` belongs to ``X`` (or to the first ``X_*`` column: ``csat_low`` to
    ``csat_share``), ``X_ci_low`` to ``X``, ``X_low_pct`` to ``X_pct``,
    ``ci_low_Y`` to the column ending in ``_Y``, ``low`` to ``value``, and a bare
    ``ci_low`` to the table's first measure before it (a share, an amount: not a
    count or a p-value).
    """
    cols = [str(c) for c in columns]
    b = _bound(col)
    if b is None or col not in cols:
        return None
    word = b[1]

    def measure(c: str) -> bool:
        return _bound(c) is None and c != col

    if col.startswith(f"ci_{word}_"):
        rest = col[len(f"ci_{word}_") :]
        hit = [c for c in cols if c.endswith(f"_{rest}") and measure(c)]
        return hit[0] if hit else None
    if col.endswith(f"_ci_{word}"):
        base = col[: -len(f"_ci_{word}")]
        return base if base in cols else None
    if col.endswith(f"_{word}_pct"):
        base = col[: -len(f"_{word}_pct")] + "_pct"
        return base if base in cols else None
    if col not in (word, f"ci_{word}"):
        stem = col[: -len(f"_{word}")]
        if stem in cols:
            return stem
        hit = [c for c in cols if c.startswith(f"{stem}_") and measure(c)]
        return hit[0] if hit else None
    if col == word and "value" in cols:
        return "value"
    before = [c for c in cols[: cols.index(col)] if measure(c)]
    if frame is not None:
        before = [
            c
            for c in before
            if c in frame.columns
            and pd.api.types.is_float_dtype(frame[c])
            and not pd.api.types.is_bool_dtype(frame[c])
        ]
    main = [c for c in before if _name_kind(c) not in ("count", "p_value", "small_n")]
    return (main or before or [None])[0]


def column_kind(
    name: object,
    values: pd.Series,
    columns: Sequence[object] = (),
    *,
    frame: pd.DataFrame | None = None,
) -> str:
    """Return how a column is shown: its kind, from its name and values.

    Kinds: ``count`` (integers, thousands separators), ``share`` (0–1, shown as a
    percentage with one decimal), ``share_diff`` (a difference of shares, in
    percentage points), ``points`` (already in points, signed), ``percent`` (already
    0–100), ``money``, ``p_value``, ``duration`` (days, hours, weeks: one decimal),
    ``number`` (two decimals), ``bool`` (yes/no), ``small_n`` (a small-sample flag),
    ``date``, ``datetime`` and ``text``.

    Parameters
    ----------
    name
        The column name.
    values
        Its values.
    columns
        All column names of the table (an interval bound takes its measure's kind).
    frame
        The table (to read the measure an interval bound belongs to).

    Returns
    -------
    str
        The kind.

    Examples
    --------
    >>> column_kind("rate", pd.Series([0.2])), column_kind("rate", pd.Series([5]))
    ('share', 'count')
    >>> column_kind("p_holm", pd.Series([0.0])), column_kind("clv_52w", pd.Series([3.5]))
    ('p_value', 'money')
    """
    col = str(name)
    s = values
    if col == "small_n":
        return "small_n"
    if pd.api.types.is_bool_dtype(s) or (
        s.dtype == object
        and len(s.dropna())
        and all(isinstance(v, bool | np.bool_) for v in s.dropna())
    ):
        return "bool"
    if pd.api.types.is_datetime64_any_dtype(s):
        ts = pd.to_datetime(s.dropna())
        dated = col.endswith(("date", "_day", "_at", "_on")) or len(ts) == 0
        return "date" if dated or (ts == ts.dt.normalize()).all() else "datetime"
    if not pd.api.types.is_numeric_dtype(s):
        return "text"
    base = _interval_base(col, [str(c) for c in columns], frame) if columns else None
    if base is not None and frame is not None and base in frame.columns and base != col:
        kind = column_kind(base, frame[base], columns, frame=frame)
        if kind in ("count", "bool", "small_n", "text", "date", "datetime"):
            kind = "number"
        return _checked(kind, s, columns, frame)
    if pd.api.types.is_integer_dtype(s):
        return "count"
    return _checked(_name_kind(col) or "number", s, columns, frame)


def _checked(kind: str, s: pd.Series, columns: Sequence[object], frame: pd.DataFrame | None) -> str:
    """Fall back to ``number`` (or ``count``) when the values do not fit the kind."""
    v = pd.to_numeric(s, errors="coerce").dropna().to_numpy(dtype=float)
    if kind == "share" and len(v) and (v.min() < -1e-9 or v.max() > 1 + 1e-9):
        return "number"
    if kind == "share_diff":
        has_share = frame is not None and any(
            _name_kind(str(c)) == "share" for c in frame.columns if str(c) != "diff"
        )
        if not has_share or (len(v) and np.abs(v).max() > 1 + 1e-9):
            return "number"
    if kind == "count" and len(v) and not np.all(np.isclose(v, np.round(v))):
        return "number"
    if kind == "p_value" and len(v) and (v.min() < 0 or v.max() > 1 + 1e-9):
        return "number"
    return kind


def _missing(v: object) -> bool:
    """Tell whether a value is missing (None, NaN, NA, NaT)."""
    if v is None:
        return True
    if isinstance(v, str):
        return False
    try:
        return bool(pd.api.types.is_scalar(v) and pd.isna(v))
    except (TypeError, ValueError):
        return False


def _format_value(v: object, kind: str, cur: str | None) -> str:
    """Show one value of a column of ``kind``."""
    if _missing(v):
        return "–"
    if kind == "small_n":
        return f"small (n < {MIN_N})" if bool(v) else ""
    if isinstance(v, bool | np.bool_) or kind == "bool":
        return "yes" if bool(v) else "no"
    if isinstance(v, pd.Timestamp | _dt.datetime | _dt.date | np.datetime64):
        ts = pd.Timestamp(v)  # type: ignore[arg-type]
        if kind == "date" or (kind != "datetime" and ts == ts.normalize()):
            return f"{ts:%Y-%m-%d}"
        return f"{ts:%Y-%m-%d %H:%M}"
    if not isinstance(v, int | float | np.integer | np.floating):
        return str(v)
    x = float(v)
    if kind == "share":
        return f"{100 * x:.1f}%"
    if kind == "share_diff":
        return _signed(100 * x)
    if kind == "points":
        return _signed(x)
    if kind == "percent":
        return f"{x:.1f}%"
    if kind == "money":
        return format_money(x, currency_text=cur or "")
    if kind == "p_value":
        return format_p(x)
    if kind == "count" or isinstance(v, int | np.integer):
        return f"{round(x):,}"
    if kind == "duration":
        return f"{x:,.1f}"
    return f"{x:,.2f}"


def _signed(x: float) -> str:
    """Show a difference with its sign and one decimal; a rounded zero has no sign."""
    text = f"{x:+.1f}"
    return text[1:] if text in ("+0.0", "-0.0") else text


def format_cell(v: object, col: str, percent: bool = False) -> str:
    """Format one value as :func:`table_html` shows it, from its column's name alone.

    Parameters
    ----------
    v
        The value.
    col
        Its column name (``*rate``, ``rate_*``, ``*share``, ``*probability`` are shares,
        ``p_*`` p-values, ``spend*`` and ``clv*`` money).
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
    >>> format_cell(True, "significant"), format_cell(0.0, "p_value")
    ('yes', '< 0.001')
    """
    if _missing(v):
        return "–"
    if col == "small_n":
        return _format_value(v, "small_n", None)
    if isinstance(v, bool | np.bool_):
        return "yes" if v else "no"
    if isinstance(v, int | np.integer):
        return _format_value(v, "count", None)
    if isinstance(v, float | np.floating):
        kind = "share" if percent else _name_kind(col) or "number"
        kind = _checked(kind, pd.Series([float(v)]), (), None)
        return _format_value(v, kind, currency())
    return _format_value(v, "text", None)


# --------------------------------------------------------------------------------------
# tables
# --------------------------------------------------------------------------------------


def _apply_format(v: object, fmt: str | Callable[[Any], str]) -> str:
    """Apply a ``formats`` entry to a value ("–" for a missing value)."""
    if _missing(v):
        return "–"
    return fmt(v) if callable(fmt) else fmt.format(v)


def _interval_text(lo: str, hi: str) -> str:
    """Join an interval's two bounds: "49.0%–52.7%", or "-6.0 to +6.7" across signs."""
    if lo == "–" and hi == "–":
        return "–"
    if lo.startswith(("-", "+")) or hi.startswith(("-", "+")):
        return f"{lo} to {hi}"
    return f"{lo}–{hi}"


def format_table(
    df: pd.DataFrame,
    *,
    formats: Formats | None = None,
    percent: Sequence[str] = (),
    money: Sequence[str] = (),
    labels: Mapping[str, str] | None = None,
    intervals: bool = True,
) -> pd.DataFrame:
    """Return a table as the text a stakeholder reads: labels, units, one format per kind.

    Parameters
    ----------
    df
        The table; its index is left out.
    formats
        Column name -> a format string (``"{:.1f}"``) or a function of the value,
        overriding the default for that column.
    percent
        Columns holding 0–1 shares, whatever their name.
    money
        Columns holding money, whatever their name.
    labels
        Column name -> label, overriding :data:`LABELS`.
    intervals
        Show each interval's two bounds (``ci_low``/``ci_high``, ``X_low``/``X_high``)
        in one column ("95% CI", "49.0%–52.7%").

    Returns
    -------
    pandas.DataFrame
        Text only, one column per shown column, named by its label (made unique);
        ``attrs["numeric"]`` lists the labels of the number columns (right-aligned),
        ``attrs["nowrap"]`` those of dates and small-sample flags (kept on one line).

    Examples
    --------
    >>> t = format_table(pd.DataFrame({"n_start": [1200], "rate": [0.4001],
    ...                                "ci_low": [0.38], "ci_high": [0.42],
    ...                                "p_holm": [0.0], "small_n": [False]}))
    >>> t.columns.tolist()
    ['customers at start', 'rate', '95% CI', 'p-value (Holm)', 'sample']
    >>> t.iloc[0].tolist()
    ['1,200', '40.0%', '38.0%–42.0%', '< 0.001', '']
    """
    formats = dict(formats or {})
    cols = [str(c) for c in df.columns]
    frame = df.copy()
    frame.columns = cols
    cur = currency()
    kinds: dict[str, str] = {}
    for c in cols:
        if c in percent:
            kinds[c] = "share"
        elif c in money:
            kinds[c] = "money"
        else:
            kinds[c] = column_kind(c, frame[c], cols, frame=frame)
    for c in cols:  # an interval's bounds follow its measure's kind when that is given
        base = _interval_base(c, cols, frame)
        if base in (*percent, *money) and c not in (*percent, *money):
            kinds[c] = kinds[base]
    # interval bounds that pair up: low column -> (high column, its measure or None)
    pairs: dict[str, tuple[str, str | None]] = {}
    if intervals:
        for c in cols:
            hi = _swap_side(c)
            if _bound_side(c) == "low" and hi in cols and _bound_side(hi) == "high":
                pairs[c] = (hi, _interval_base(c, cols, frame))
    after: dict[str, list[str]] = {}  # measure -> the intervals shown right after it
    for lo, (_, base) in pairs.items():
        if base is not None and base not in pairs and base in cols:
            after.setdefault(base, []).append(lo)
    placed = {lo for los in after.values() for lo in los}
    skip = {hi for hi, _ in pairs.values()} | placed
    order: list[str] = []
    for c in cols:
        if c in skip:
            continue
        order.append(c)
        order += after.get(c, [])

    def text_of(c: str) -> list[str]:
        if c in formats:
            return [_apply_format(v, formats[c]) for v in frame[c]]
        return [_format_value(v, kinds[c], cur) for v in frame[c]]

    out: dict[str, list[str]] = {}
    numeric: list[str] = []
    nowrap: list[str] = []
    used: set[str] = set()
    for c in order:
        if c in pairs:
            hi, base = pairs[c]
            label = (labels or {}).get(c) or "95% CI"
            values = [_interval_text(a, b) for a, b in zip(text_of(c), text_of(hi), strict=True)]
            if label in used and base is not None:
                m = re.match(r"^(.*?)( \([^()]*\))?$", column_label(base, labels))
                label = f"{m.group(1)} 95% CI{m.group(2) or ''}" if m else label
        else:
            label = column_label(c, labels)
            values = text_of(c)
        label = _unique(label, c, used)
        used.add(label)
        out[label] = values
        if kinds[c] in _NUMERIC_KINDS:
            numeric.append(label)
        elif kinds[c] in ("date", "datetime", "small_n"):
            nowrap.append(label)
    table = pd.DataFrame(out, index=range(len(frame)), columns=list(out))
    table.attrs["numeric"] = numeric
    table.attrs["nowrap"] = nowrap
    return table


def _unique(label: str, name: str, used: set[str]) -> str:
    """Return ``label``, or a variant no other column of the table has."""
    if label not in used:
        return label
    alt = column_label(name) if column_label(name) != label else name.replace("_", " ")
    if alt not in used:
        return alt
    k = 2
    while f"{label} ({k})" in used:
        k += 1
    return f"{label} ({k})"


_TABLE_CSS = """<style>
.cx-table-wrap{overflow-x:auto;max-width:100%;margin:8px 0 12px}
.cx-table-wrap::-webkit-scrollbar{height:10px}
.cx-table-wrap::-webkit-scrollbar-thumb{background:#9aa5b1;border-radius:5px}
.cx-table-wrap::-webkit-scrollbar-track{background:#eef1f4;border-radius:5px}
@supports not selector(::-webkit-scrollbar){.cx-table-wrap{scrollbar-width:thin;
  scrollbar-color:#9aa5b1 #eef1f4}}
.cx-table{border-collapse:collapse;font-size:13px;margin:0;font-variant-numeric:tabular-nums}
.cx-table th{white-space:normal;min-width:5.5em;max-width:13em;vertical-align:bottom;
  text-align:left;padding:6px 8px}
.cx-table td{padding:5px 8px;vertical-align:top}
.cx-table td.cx-num{text-align:right;white-space:nowrap}
.cx-table td.cx-nowrap{white-space:nowrap}
.cx-table caption{caption-side:top;text-align:left;color:#52606d;font-size:13px;
  padding:2px 0 6px}
</style>"""


def _cell_classes(shown: pd.DataFrame) -> dict[str, str]:
    """Return each column's cell class: ``cx-num`` (numbers), ``cx-nowrap`` or none."""
    numeric = set(shown.attrs.get("numeric", []))
    nowrap = set(shown.attrs.get("nowrap", []))
    return {
        c: "cx-num" if c in numeric else "cx-nowrap" if c in nowrap else "" for c in shown.columns
    }


def table_html(
    df: pd.DataFrame,
    *,
    max_rows: int | None = None,
    percent: Sequence[str] = (),
    formats: Formats | None = None,
    money: Sequence[str] = (),
    labels: Mapping[str, str] | None = None,
    caption: str | None = None,
    intervals: bool = True,
    css: bool = True,
) -> str:
    """Return a stakeholder table as HTML: :func:`format_table`, every text escaped.

    The table sits in a box that scrolls sideways (with a visible scrollbar) when it
    is wider than the page; headers wrap, numbers are right-aligned.

    Parameters
    ----------
    df
        The table; its index is left out.
    max_rows
        Show only the first ``max_rows`` rows; ``None`` shows all.
    percent, formats, money, labels, intervals
        As in :func:`format_table`.
    caption
        A caption above the table (escaped).
    css
        Start with the table's ``<style>`` (leave it out when it is already on the page).

    Returns
    -------
    str
        ``<div class="cx-table-wrap"><table class="cx-table cx-widget-table">...``.

    Examples
    --------
    >>> text = table_html(pd.DataFrame({"comment": ["<b>hi</b>"], "rate": [0.25]}), css=False)
    >>> text[text.index("<tbody>"):]
    '<tbody><tr><td>&lt;b&gt;hi&lt;/b&gt;</td><td class="cx-num">25.0%</td></tr></tbody></table></div>'
    """
    if max_rows is not None:
        df = df.head(max_rows)
    shown = format_table(
        df, formats=formats, percent=percent, money=money, labels=labels, intervals=intervals
    )
    cls = _cell_classes(shown)
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in shown.columns)
    rows = []
    for rec in shown.itertuples(index=False, name=None):
        cells = "".join(
            f'<td class="{cls[c]}">{html.escape(v)}</td>'
            if cls[c]
            else f"<td>{html.escape(v)}</td>"
            for v, c in zip(rec, shown.columns, strict=True)
        )
        rows.append(f"<tr>{cells}</tr>")
    cap = f"<caption>{html.escape(caption)}</caption>" if caption else ""
    return (
        (_TABLE_CSS if css else "")
        + '<div class="cx-table-wrap"><table class="cx-table cx-widget-table">'
        f"{cap}<thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table></div>"
    )


def style_table(
    df: pd.DataFrame,
    *,
    formats: Formats | None = None,
    percent: Sequence[str] = (),
    caption: str | None = None,
    money: Sequence[str] = (),
    labels: Mapping[str, str] | None = None,
    intervals: bool = True,
) -> Styler:
    """Return :func:`format_table` of ``df`` as a pandas ``Styler``, every cell escaped.

    Parameters
    ----------
    df
        The table; its index is hidden.
    formats, percent, money, labels, intervals
        As in :func:`format_table`.
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
    shown = format_table(
        df, formats=formats, percent=percent, money=money, labels=labels, intervals=intervals
    )
    cls = _cell_classes(shown)
    styler = shown.style.format(escape="html").format_index(escape="html", axis=1)
    styler = styler.hide(axis="index").set_table_attributes('class="cx-table"')
    classes = pd.DataFrame({c: [cls[c]] * len(shown) for c in shown.columns}, index=shown.index)
    styler = styler.set_td_classes(classes)
    if caption:
        styler = styler.set_caption(html.escape(caption))
    return styler


def show_table(
    df: pd.DataFrame,
    *,
    formats: Formats | None = None,
    percent: Sequence[str] = (),
    caption: str | None = None,
    money: Sequence[str] = (),
    labels: Mapping[str, str] | None = None,
    intervals: bool = True,
    max_rows: int | None = None,
) -> None:
    """Display a stakeholder table (:func:`table_html`) in a notebook or report.

    Parameters
    ----------
    df, formats, percent, caption, money, labels, intervals, max_rows
        As in :func:`table_html`.
    """
    display(
        HTML(
            table_html(
                df,
                max_rows=max_rows,
                percent=percent,
                formats=formats,
                money=money,
                labels=labels,
                caption=caption,
                intervals=intervals,
            )
        )
    )


# --------------------------------------------------------------------------------------
# tiles
# --------------------------------------------------------------------------------------

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
        return format_money(v, decimals=0)
    if unit == "customers":
        return f"{v:,.0f}"
    return f"{v:,.2f}"


def tiles_html(kpis: pd.DataFrame) -> str:
    """Return the KPI tiles as an HTML grid; every text is escaped.

    Parameters
    ----------
    kpis
        One row per tile with the columns ``kpi`` (the label), ``value``, ``unit``
        (``"points"``, ``"share"``, ``"%..."``, ``"currency"`` (shown with
        :func:`currency`), ``"customers"`` or other), ``available`` (False shows "—"
        greyed out), ``sentence`` (the detail line) and, optionally, ``small_n``
        (outlines the tile).

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
