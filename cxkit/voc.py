"""Voice of the customer: NPS, CSAT and CES with honest intervals, key drivers,
feedback themes, omnichannel consistency and advocacy.

Definitions (DESIGN.md §7):

* **NPS** = % promoters (9–10) − % detractors (0–6), in points (−100..100), with the
  adjusted-Wald interval (:func:`cxkit.stats.nps_ci`).
* **CSAT** = share of top-2-box answers (4–5 on 1–5), Wilson interval.
* **CES** = mean score with a Student-t interval; by default 1–7 with 7 = least effort.
  ``higher_is_easier=False`` flips a scale where 1 means least effort, so results always
  read "higher = easier".

Scores are computed as engine aggregates (counts, sums per group in ibis); intervals are
computed in pandas on the small grouped result. Groups with fewer than
:data:`cxkit.stats.MIN_N` responses carry ``small_n=True``.

Comments are untrusted text. The frames returned here hold them verbatim; every display
helper in this module (:func:`style_table`, :func:`show_table`, the plots) escapes them.
Show comment tables only through those helpers (or a plain ``display(df)``, which pandas
escapes), never through a ``Styler`` without ``escape="html"``.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import ibis
import ibis.expr.types as ir
import numpy as np
import pandas as pd
from ibis import _
from scipy import stats as _st

from cxkit import stats
from cxkit.cache import run_cached
from cxkit.data import SCORE_RANGES, CXData, end_of_day, resolve_as_of
from cxkit.display import show_table, style_table
from cxkit.errors import NotAvailableError, UsageError
from cxkit.findings import Finding

__all__ = [
    "CS_LEXICON",
    "DETRACTOR_MAX",
    "PROMOTER_MIN",
    "Themes",
    "advocacy",
    "ces",
    "channel_consistency",
    "channel_pain_points",
    "channel_switching",
    "comment_sentiment",
    "comments",
    "csat",
    "distinctive_terms",
    "driver_table",
    "findings",
    "key_drivers",
    "load_personas",
    "nps",
    "nps_compare",
    "nps_trend",
    "plot_distinctive_terms",
    "plot_drivers_quadrant",
    "plot_nps_trend",
    "plot_scores",
    "plot_theme_share",
    "promoters_not_referred",
    "relative_weights",
    "relative_weights_logistic",
    "representative_comments",
    "score_summary",
    "sentiment_by",
    "sentiment_scores",
    "show_table",
    "style_table",
    "theme_share",
    "themes",
]

#: NPS answers of this or more are promoters; of ``DETRACTOR_MAX`` or less detractors.
PROMOTER_MIN = 9
DETRACTOR_MAX = 6

_FREQ_UNITS = {
    "day": "D",
    "week": "W",
    "month": "M",
    "quarter": "Q",
    "year": "Y",
    "D": "D",
    "W": "W",
    "M": "M",
    "Q": "Q",
    "Y": "Y",
}

DataLike = CXData | ir.Table | pd.DataFrame

# --------------------------------------------------------------------------------------
# input handling
# --------------------------------------------------------------------------------------


def _as_data(data: DataLike) -> CXData:
    """A CXData from a CXData, a responses ibis table or a responses DataFrame."""
    if isinstance(data, CXData):
        return data
    if isinstance(data, pd.DataFrame):
        from cxkit.data import load

        return load({"responses": data})
    if isinstance(data, ir.Table):
        return CXData(None, {"responses": data}, source="ibis table")
    raise UsageError(
        f"data must be a CXData, an ibis table or a pandas DataFrame of responses, "
        f"got {type(data).__name__}"
    )


def _cut(data: DataLike, as_of: str | pd.Timestamp | None) -> CXData:
    d = _as_data(data)
    if as_of is None:
        return d
    return d.upto(as_of)


def _check_survey(survey: str) -> tuple[int, int]:
    if survey not in SCORE_RANGES:
        raise UsageError(f"survey must be one of {sorted(SCORE_RANGES)}, got {survey!r}")
    return SCORE_RANGES[survey]


def _scored(data: CXData, survey: str, *, analysis: str) -> ir.Table:
    """Responses of one survey with a valid score (invalid scores are left to validate)."""
    lo, hi = _check_survey(survey)
    t = data.require("responses", "survey", "score", analysis=analysis)
    t = t.filter((t.survey.lower() == survey) & t.score.notnull())
    return t.filter((t.score >= lo) & (t.score <= hi))


def _freq(freq: str) -> str:
    if freq not in _FREQ_UNITS:
        raise UsageError(f"freq must be one of day, week, month, quarter, year; got {freq!r}")
    return _FREQ_UNITS[freq]


def _as_list(by: str | Sequence[str] | None) -> list[str]:
    if by is None:
        return []
    if isinstance(by, str):
        return [by]
    return list(by)


def _persona_frame(personas: pd.Series | pd.DataFrame) -> pd.DataFrame:
    """Normalise persona labels to a frame with ``customer_id`` and ``persona``."""
    if isinstance(personas, pd.Series):
        df = personas.rename("persona").rename_axis("customer_id").reset_index()
    elif isinstance(personas, pd.DataFrame):
        df = personas
        if "customer_id" not in df.columns:
            df = df.rename_axis("customer_id").reset_index()
        if "persona" not in df.columns:
            others = [c for c in df.columns if c != "customer_id"]
            if len(others) != 1:
                raise UsageError(
                    "personas must have columns 'customer_id' and 'persona' (or be a Series "
                    f"indexed by customer_id); got columns {list(personas.columns)}"
                )
            df = df.rename(columns={others[0]: "persona"})
    else:
        raise UsageError(
            f"personas must be a pandas Series or DataFrame, got {type(personas).__name__}"
        )
    out = pd.DataFrame(
        {
            "customer_id": df["customer_id"].astype(str).to_numpy(),
            "persona": df["persona"].astype(str).to_numpy(),
        }
    )
    return out.drop_duplicates("customer_id")


def _attach(
    data: CXData,
    t: ir.Table,
    keys: Sequence[str],
    *,
    personas: pd.Series | pd.DataFrame | None,
    freq: str,
    analysis: str,
) -> ir.Table:
    """Add the grouping columns ``keys`` to ``t`` (period, persona, customer attributes)."""
    for key in keys:
        if key == "period":
            t = t.mutate(period=t.ts.truncate(_freq(freq)))
        elif key in t.columns:
            t = t.mutate(**{key: t[key].cast("string").fill_null("(unknown)")})
        elif key == "persona" and personas is not None:
            lab = ibis.memtable(_persona_frame(personas))
            t = t.left_join(lab, "customer_id").select(*t.columns, "persona")
            t = t.mutate(persona=t.persona.fill_null("(unknown)"))
        elif data.has("customers", key):
            c = data.table("customers")
            # customer_id is unique by contract; max() keeps one row per id on any engine
            cust = c.group_by("customer_id").aggregate(**{key: c[key].cast("string").max()})
            t = t.left_join(cust, "customer_id").select(*t.columns, key)
            t = t.mutate(**{key: t[key].cast("string").fill_null("(unknown)")})
        elif key == "persona":
            raise NotAvailableError(
                "persona labels (pass personas=..., e.g. from cxkit.personas)", analysis=analysis
            )
        elif key in ("channel", "touchpoint"):
            raise NotAvailableError(f"table 'responses' with column '{key}'", analysis=analysis)
        else:
            raise NotAvailableError(
                f"a column '{key}' in table 'responses' or 'customers'", analysis=analysis
            )
    return t


def load_personas(
    data: CXData, source: str | None = "auto", *, folder: str | None = None
) -> tuple[pd.Series | None, str]:
    """Persona labels per customer for the persona breakdowns, and where they came from.

    Parameters
    ----------
    data
        The loaded data (a ``persona`` column in ``customers`` is used first).
    source
        ``None`` (no personas), a path to a Parquet/CSV file with ``customer_id`` and
        ``persona`` columns, or ``"auto"``: the customers' ``persona`` column, else
        ``_personas.parquet`` in ``folder``, else the personas model
        (:func:`cxkit.personas.persona_labels`, as in the personas report).
    folder
        The data folder (for ``"auto"``).

    Returns
    -------
    (labels, note)
        A Series indexed by customer_id (or None) and a sentence naming the source.
    """
    from pathlib import Path

    if source is None:
        return None, "no persona labels were given"
    if source == "auto":
        if data.has("customers", "persona"):
            df = data.table("customers").select("customer_id", "persona").to_pandas()
            return _persona_frame(df).set_index("customer_id")["persona"], (
                "persona labels from the customers table"
            )
        base = Path(folder) if folder else None
        if base is not None and (base / "_personas.parquet").exists():
            return load_personas(data, str(base / "_personas.parquet"))
        from cxkit import personas as _personas

        try:
            labels = _personas.persona_labels(data)
        except NotAvailableError as err:
            return None, f"no persona labels: {err}"
        return labels, "personas from the personas report's model"
    path = Path(source)
    if not path.exists():
        raise UsageError(f"personas file not found: {source!r}")
    df = pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path, dtype=str)
    if not {"customer_id", "persona"} <= set(df.columns):
        raise UsageError(
            f"personas file must have columns 'customer_id' and 'persona', got {list(df.columns)}"
        )
    return _persona_frame(df).set_index("customer_id")[
        "persona"
    ], f"persona labels from {path.name}"


def _finish(df: pd.DataFrame, keys: Sequence[str], min_n: int) -> pd.DataFrame:
    df["small_n"] = stats.is_small(df["n"].to_numpy(), min_n=min_n)
    if keys:
        df = df.sort_values(list(keys), kind="stable").reset_index(drop=True)
    for key in keys:
        if key != "period":
            df[key] = df[key].astype(str)
    return df


def _grouped(t: ir.Table, keys: Sequence[str], **aggs: Any) -> pd.DataFrame:
    expr = t.group_by(list(keys)).aggregate(**aggs) if keys else t.aggregate(**aggs)
    return expr.to_pandas()


# --------------------------------------------------------------------------------------
# scores
# --------------------------------------------------------------------------------------


def nps(
    data: DataLike,
    *,
    by: str | Sequence[str] | None = None,
    freq: str = "month",
    personas: pd.Series | pd.DataFrame | None = None,
    as_of: str | pd.Timestamp | None = None,
    level: float = 0.95,
    min_n: int = stats.MIN_N,
) -> pd.DataFrame:
    """Net Promoter Score with adjusted-Wald intervals, optionally by group.

    Parameters
    ----------
    data
        A :class:`CXData` (or a responses table/DataFrame) with ``survey`` and ``score``.
    by
        Group keys: ``"period"`` (calendar ``freq``), ``"channel"``, ``"touchpoint"``, any
        other responses column, a customers column (segment such as ``"region"``), or
        ``"persona"`` (with ``personas`` labels per customer).
    freq
        Period length for ``"period"``: day, week, month, quarter or year.
    personas
        Persona labels: a Series indexed by customer_id or a frame with ``customer_id``
        and ``persona``.
    as_of
        Only responses up to this date are used.

    Returns
    -------
    pandas.DataFrame
        One row per group: ``n``, ``promoters``, ``passives``, ``detractors``,
        ``promoter_share``, ``detractor_share``, ``nps`` (points) and its interval
        ``nps_low``/``nps_high``, and ``small_n``.

    Examples
    --------
    >>> r = pd.DataFrame({"response_id": list("abcd"), "customer_id": list("abcd"),
    ...     "ts": pd.Timestamp("2024-01-01"), "survey": "nps", "score": [10, 9, 7, 3]})
    >>> nps(r)[["n", "promoters", "detractors", "nps"]].to_dict("records")
    [{'n': 4, 'promoters': 2, 'detractors': 1, 'nps': 25.0}]
    """
    d = _cut(data, as_of)
    keys = _as_list(by)
    t = _scored(d, "nps", analysis="NPS")
    t = _attach(d, t, keys, personas=personas, freq=freq, analysis="NPS")
    df = _grouped(
        t,
        keys,
        n=_.count(),
        promoters=(_.score >= PROMOTER_MIN).ifelse(1, 0).sum(),
        detractors=(_.score <= DETRACTOR_MAX).ifelse(1, 0).sum(),
    )
    for c in ("n", "promoters", "detractors"):
        df[c] = df[c].fillna(0).astype("int64")
    df["passives"] = df["n"] - df["promoters"] - df["detractors"]
    with np.errstate(divide="ignore", invalid="ignore"):
        df["promoter_share"] = df["promoters"] / df["n"].where(df["n"] > 0)
        df["detractor_share"] = df["detractors"] / df["n"].where(df["n"] > 0)
    point, low, high = stats.nps_ci(
        df["promoters"].to_numpy(), df["detractors"].to_numpy(), df["n"].to_numpy(), level=level
    )
    df["nps"], df["nps_low"], df["nps_high"] = point, low, high
    cols = [
        *keys,
        "n",
        "promoters",
        "passives",
        "detractors",
        "promoter_share",
        "detractor_share",
        "nps",
        "nps_low",
        "nps_high",
    ]
    return _finish(df[cols], keys, min_n)


def nps_compare(
    a: Mapping[str, Any] | pd.Series, b: Mapping[str, Any] | pd.Series, *, level: float = 0.95
) -> dict[str, float]:
    """Compare two NPS rows (from :func:`nps`): difference a − b in points, interval, p-value.

    Examples
    --------
    >>> r = nps_compare({"promoters": 60, "detractors": 10, "n": 100},
    ...                 {"promoters": 40, "detractors": 30, "n": 100})
    >>> round(r["diff_points"], 1), r["p_value"] < 0.01
    (40.0, True)
    """
    return stats.nps_compare(
        int(a["promoters"]),
        int(a["detractors"]),
        int(a["n"]),
        int(b["promoters"]),
        int(b["detractors"]),
        int(b["n"]),
        level=level,
    )


def csat(
    data: DataLike,
    *,
    by: str | Sequence[str] | None = None,
    freq: str = "month",
    personas: pd.Series | pd.DataFrame | None = None,
    top_box: int = 4,
    as_of: str | pd.Timestamp | None = None,
    level: float = 0.95,
    min_n: int = stats.MIN_N,
) -> pd.DataFrame:
    """CSAT as the top-2-box share (scores ``>= top_box``) with Wilson intervals.

    Returns one row per group with ``n``, ``satisfied``, ``csat_share`` (0–1),
    ``csat_low``, ``csat_high``, ``csat_mean`` (mean score, 1–5) and ``small_n``.
    Grouping options as in :func:`nps`.

    Examples
    --------
    >>> r = pd.DataFrame({"response_id": list("abcd"), "customer_id": list("abcd"),
    ...     "ts": pd.Timestamp("2024-01-01"), "survey": "csat", "score": [5, 4, 2, 1]})
    >>> csat(r)[["n", "satisfied", "csat_share"]].to_dict("records")
    [{'n': 4, 'satisfied': 2, 'csat_share': 0.5}]
    """
    d = _cut(data, as_of)
    keys = _as_list(by)
    t = _scored(d, "csat", analysis="CSAT")
    t = _attach(d, t, keys, personas=personas, freq=freq, analysis="CSAT")
    df = _grouped(
        t,
        keys,
        n=_.count(),
        satisfied=(_.score >= top_box).ifelse(1, 0).sum(),
        csat_mean=_.score.mean(),
    )
    df["n"] = df["n"].fillna(0).astype("int64")
    df["satisfied"] = df["satisfied"].fillna(0).astype("int64")
    with np.errstate(divide="ignore", invalid="ignore"):
        df["csat_share"] = df["satisfied"] / df["n"].where(df["n"] > 0)
    low, high = stats.wilson_ci(df["satisfied"].to_numpy(), df["n"].to_numpy(), level=level)
    df["csat_low"], df["csat_high"] = np.atleast_1d(low), np.atleast_1d(high)
    df["csat_mean"] = df["csat_mean"].astype(float)
    cols = [*keys, "n", "satisfied", "csat_share", "csat_low", "csat_high", "csat_mean"]
    return _finish(df[cols], keys, min_n)


def _t_interval(mean: Any, sd: Any, n: Any, level: float) -> tuple[np.ndarray, np.ndarray]:
    m, s, k = (np.asarray(x, dtype=float) for x in (mean, sd, n))
    with np.errstate(divide="ignore", invalid="ignore"):
        tq = np.where(k >= 2, _st.t.ppf(0.5 + level / 2, np.maximum(k - 1, 1)), np.nan)
        half = tq * s / np.sqrt(k)
    return m - half, m + half


def ces(
    data: DataLike,
    *,
    by: str | Sequence[str] | None = None,
    freq: str = "month",
    personas: pd.Series | pd.DataFrame | None = None,
    higher_is_easier: bool = True,
    as_of: str | pd.Timestamp | None = None,
    level: float = 0.95,
    min_n: int = stats.MIN_N,
) -> pd.DataFrame:
    """Customer Effort Score: mean with a Student-t interval, always "higher = easier".

    Parameters
    ----------
    higher_is_easier
        ``True`` (default) for the contract's 1–7 scale where 7 = least effort. For a
        survey where 1 means least effort pass ``False``: scores are flipped
        (``8 − score``) so that the result still reads higher = easier.

    Returns one row per group with ``n``, ``ces_mean``, ``ces_low``, ``ces_high``,
    ``ces_sd`` and ``small_n``.

    Examples
    --------
    >>> r = pd.DataFrame({"response_id": list("abc"), "customer_id": list("abc"),
    ...     "ts": pd.Timestamp("2024-01-01"), "survey": "ces", "score": [7, 5, 3]})
    >>> ces(r)[["n", "ces_mean", "ces_sd"]].to_dict("records")
    [{'n': 3, 'ces_mean': 5.0, 'ces_sd': 2.0}]
    >>> float(ces(r, higher_is_easier=False)["ces_mean"].iloc[0])
    3.0
    """
    lo, hi = SCORE_RANGES["ces"]
    d = _cut(data, as_of)
    keys = _as_list(by)
    t = _scored(d, "ces", analysis="CES")
    t = _attach(d, t, keys, personas=personas, freq=freq, analysis="CES")
    score = _.score if higher_is_easier else (lo + hi) - _.score
    df = _grouped(
        t,
        keys,
        n=_.count(),
        ces_mean=score.cast("float64").mean(),
        ces_sd=score.cast("float64").std(how="sample"),
    )
    df["n"] = df["n"].fillna(0).astype("int64")
    df["ces_mean"] = df["ces_mean"].astype(float)
    df["ces_sd"] = df["ces_sd"].astype(float)
    df["ces_low"], df["ces_high"] = _t_interval(df["ces_mean"], df["ces_sd"], df["n"], level)
    cols = [*keys, "n", "ces_mean", "ces_low", "ces_high", "ces_sd"]
    return _finish(df[cols], keys, min_n)


def score_summary(
    data: DataLike,
    *,
    days: int = 90,
    as_of: str | pd.Timestamp | None = None,
    higher_is_easier: bool = True,
    level: float = 0.95,
) -> pd.DataFrame:
    """NPS, CSAT and CES over the last ``days`` with the change vs the ``days`` before.

    Returns one row per available score: ``metric``, ``unit``, ``value``, ``low``,
    ``high``, ``n``, ``previous``, ``previous_n``, ``change``, ``change_low``,
    ``change_high``, ``p_value``, ``small_n``, ``window``. NPS is in points, CSAT in % of
    top-2-box answers (change in percentage points), CES in scale points.
    """
    d = _as_data(data)
    end = end_of_day(resolve_as_of(d, as_of))
    start_cur = end - pd.Timedelta(days=days)
    start_prev = end - pd.Timedelta(days=2 * days)
    rows: list[dict[str, Any]] = []
    window = f"last {days} days to {end:%Y-%m-%d}"
    for metric in ("nps", "csat", "ces"):
        t = _scored(d, metric, analysis=metric.upper())
        t = t.filter((t.ts > start_prev) & (t.ts <= end))
        t = t.mutate(current=(t.ts > start_cur).ifelse(1, 0))
        lo, hi = SCORE_RANGES[metric]
        score = t.score if (metric != "ces" or higher_is_easier) else (lo + hi) - t.score
        t = t.mutate(s=score.cast("float64"))
        agg = (
            t.group_by("current")
            .aggregate(
                n=_.count(),
                pro=(_.s >= PROMOTER_MIN).ifelse(1, 0).sum(),
                det=(_.s <= DETRACTOR_MAX).ifelse(1, 0).sum(),
                top=(_.s >= 4).ifelse(1, 0).sum(),
                mean=_.s.mean(),
                sd=_.s.std(how="sample"),
            )
            .to_pandas()
            .set_index("current")
        )
        if 1 not in agg.index:
            continue
        cur = agg.loc[1]
        prev = agg.loc[0] if 0 in agg.index else None
        row: dict[str, Any] = {"metric": metric.upper(), "window": window, "n": int(cur["n"])}
        if metric == "nps":
            v, lo_, hi_ = stats.nps_ci(cur["pro"], cur["det"], cur["n"], level=level)
            row.update(unit="points", value=v, low=lo_, high=hi_)
            if prev is not None and prev["n"] > 0:
                c = stats.nps_compare(
                    int(cur["pro"]),
                    int(cur["det"]),
                    int(cur["n"]),
                    int(prev["pro"]),
                    int(prev["det"]),
                    int(prev["n"]),
                    level=level,
                )
                row.update(
                    previous=100 * (prev["pro"] - prev["det"]) / prev["n"],
                    previous_n=int(prev["n"]),
                    change=c["diff_points"],
                    change_low=c["ci_low"],
                    change_high=c["ci_high"],
                    p_value=c["p_value"],
                )
        elif metric == "csat":
            lo_, hi_ = stats.wilson_ci(cur["top"], cur["n"], level=level)
            row.update(unit="% top-2-box", value=100 * cur["top"] / cur["n"])
            row.update(low=100 * lo_, high=100 * hi_)
            if prev is not None and prev["n"] > 0:
                c = stats.two_proportion_test(
                    cur["top"], cur["n"], prev["top"], prev["n"], level=level
                )
                row.update(
                    previous=100 * prev["top"] / prev["n"],
                    previous_n=int(prev["n"]),
                    change=100 * c["diff"],
                    change_low=100 * c["ci_low"],
                    change_high=100 * c["ci_high"],
                    p_value=c["p_value"],
                )
        else:
            lo_, hi_ = _t_interval(cur["mean"], cur["sd"], cur["n"], level)
            row.update(unit="mean, 1-7 (7 = easiest)", value=cur["mean"], low=lo_, high=hi_)
            if prev is not None and prev["n"] > 1 and cur["n"] > 1:
                va, vb = cur["sd"] ** 2 / cur["n"], prev["sd"] ** 2 / prev["n"]
                se = np.sqrt(va + vb)
                dof = (va + vb) ** 2 / (va**2 / (cur["n"] - 1) + vb**2 / (prev["n"] - 1))
                diff = cur["mean"] - prev["mean"]
                tq = _st.t.ppf(0.5 + level / 2, dof)
                row.update(
                    previous=prev["mean"],
                    previous_n=int(prev["n"]),
                    change=diff,
                    change_low=diff - tq * se,
                    change_high=diff + tq * se,
                    p_value=float(2 * _st.t.sf(abs(diff / se), dof)) if se > 0 else np.nan,
                )
        rows.append(row)
    cols = [
        "metric",
        "unit",
        "value",
        "low",
        "high",
        "n",
        "previous",
        "previous_n",
        "change",
        "change_low",
        "change_high",
        "p_value",
        "small_n",
        "window",
    ]
    out = pd.DataFrame(rows).reindex(columns=cols)
    out["small_n"] = stats.is_small(out["n"].to_numpy())
    for c in ("value", "low", "high", "previous", "change", "change_low", "change_high", "p_value"):
        out[c] = out[c].astype(float)
    return out


# --------------------------------------------------------------------------------------
# trends
# --------------------------------------------------------------------------------------


def nps_trend(
    data: DataLike,
    *,
    freq: str = "month",
    as_of: str | pd.Timestamp | None = None,
    level: float = 0.95,
    min_n: int = stats.MIN_N,
) -> pd.DataFrame:
    """NPS per period with its interval and the test of each change vs the period before.

    Adds ``change_points``, ``p_value`` (adjusted-Wald z-test of the difference),
    ``p_holm`` (Holm-adjusted over all changes shown) and ``significant``
    (``p_holm < 0.05`` and both periods have at least ``min_n`` responses).
    """
    df = nps(data, by="period", freq=freq, as_of=as_of, level=level, min_n=min_n)
    n = len(df)
    change = np.full(n, np.nan)
    p = np.full(n, np.nan)
    for i in range(1, n):
        c = nps_compare(df.iloc[i], df.iloc[i - 1], level=level)
        change[i], p[i] = c["diff_points"], c["p_value"]
    df["change_points"] = change
    df["p_value"] = p
    df["p_holm"] = stats.holm(p)
    big = ~df["small_n"] & ~df["small_n"].shift(1, fill_value=True)
    df["significant"] = (df["p_holm"] < 0.05) & big
    return df


# --------------------------------------------------------------------------------------
# key drivers
# --------------------------------------------------------------------------------------


def _sqrt_psd(r: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    evals, evecs = np.linalg.eigh(r)
    evals = np.clip(evals, 1e-12, None)
    lam = (evecs * np.sqrt(evals)) @ evecs.T
    lam_inv = (evecs / np.sqrt(evals)) @ evecs.T
    return lam, lam_inv


def _rw_corr(c: np.ndarray) -> tuple[np.ndarray, float]:
    """Johnson's relative weights from a correlation matrix whose last row/col is y."""
    rxx, rxy = c[:-1, :-1], c[:-1, -1]
    lam, lam_inv = _sqrt_psd(rxx)
    beta = lam_inv @ rxy
    eps = (lam**2) @ (beta**2)
    return eps, float(eps.sum())


def relative_weights(x: Any, y: Any) -> tuple[np.ndarray, float]:
    """Johnson's (2000) relative weights of the columns of ``x`` for a linear model of ``y``.

    Returns ``(weights, r2)``: the raw weights (each predictor's share of R², summing to
    R²) and R². They approximate the Shapley (LMG) decomposition of R².

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> x = rng.normal(size=(500, 2))
    >>> w, r2 = relative_weights(x, x @ [2.0, 1.0] + rng.normal(size=500))
    >>> bool(w[0] > w[1]), round(float(w.sum() - r2), 10)
    (True, 0.0)
    """
    a = np.column_stack([np.asarray(x, dtype=float), np.asarray(y, dtype=float)])
    return _rw_corr(np.corrcoef(a, rowvar=False))


def _logit_fit(xd: np.ndarray, y: np.ndarray, *, max_iter: int = 50) -> np.ndarray:
    """Logistic regression by Newton-Raphson (IRLS); ``xd`` includes the intercept."""
    beta = np.zeros(xd.shape[1])
    ridge = 1e-8 * np.eye(xd.shape[1])
    for _i in range(max_iter):
        eta = np.clip(xd @ beta, -30, 30)
        p = 1 / (1 + np.exp(-eta))
        w = p * (1 - p)
        h = xd.T @ (xd * w[:, None]) + ridge
        step = np.linalg.solve(h, xd.T @ (y - p))
        beta = beta + step
        if np.max(np.abs(step)) < 1e-9:
            break
    return beta


def relative_weights_logistic(x: Any, y: Any) -> tuple[np.ndarray, float]:
    """Relative weights for a logistic model of a 0/1 ``y`` (Tonidandel & LeBreton 2010).

    The predictors are replaced by their closest orthogonal counterparts Z, a logistic
    regression of y on Z is fitted, its coefficients are standardised (Menard's
    b·s_z·R / s_logit with R the correlation of y and the fitted probability), and the
    squared standardised coefficients are mapped back to the original predictors.
    Returns ``(weights, r2)`` with weights summing to R² = corr(y, p̂)².
    """
    xa = np.asarray(x, dtype=float)
    ya = np.asarray(y, dtype=float)
    sd = xa.std(axis=0, ddof=1)
    xs = (xa - xa.mean(axis=0)) / np.where(sd > 0, sd, 1)
    rxx = np.corrcoef(xs, rowvar=False) if xs.shape[1] > 1 else np.ones((1, 1))
    lam, lam_inv = _sqrt_psd(np.atleast_2d(rxx))
    z = xs @ lam_inv
    beta = _logit_fit(np.column_stack([np.ones(len(z)), z]), ya)
    logit = beta[0] + z @ beta[1:]
    p_hat = 1 / (1 + np.exp(-np.clip(logit, -30, 30)))
    r = float(np.corrcoef(ya, p_hat)[0, 1]) if np.std(p_hat) > 0 else 0.0
    s_logit = float(np.std(logit, ddof=1))
    if not np.isfinite(r) or s_logit == 0:
        return np.zeros(xa.shape[1]), 0.0
    b_std = beta[1:] * z.std(axis=0, ddof=1) * r / s_logit
    eps = (lam**2) @ (b_std**2)
    return eps, float(eps.sum())


def driver_table(
    data: DataLike,
    *,
    surveys: Sequence[str] = ("csat", "ces"),
    by: str | None = "touchpoint",
    higher_is_easier: bool = True,
    as_of: str | pd.Timestamp | None = None,
) -> pd.DataFrame:
    """Per-customer driver scores joined to the customer's latest NPS.

    Per customer the mean score of each survey in ``surveys`` per ``by`` value (e.g.
    ``csat_delivery``, ``ces_support``) is computed in the engine, as is the customer's
    latest NPS answer. Only customers with an NPS answer are returned; driver columns are
    NaN where the customer gave no such answer.

    Returns
    -------
    pandas.DataFrame
        ``customer_id``, ``nps_score`` (0–10), ``promoter`` (bool) and one float column
        per driver (on the survey's own scale, CES flipped to higher = easier if needed).
    """
    d = _cut(data, as_of)
    t_nps = _scored(d, "nps", analysis="Key drivers")
    for s in surveys:
        _check_survey(s)
    r = d.require("responses", "survey", "score", analysis="Key drivers")
    if by is not None and by not in r.columns:
        raise NotAvailableError(f"table 'responses' with column '{by}'", analysis="Key drivers")
    target = t_nps.group_by("customer_id").aggregate(nps_score=_.score.argmax(_.ts))
    parts = []
    for s in surveys:
        lo, hi = SCORE_RANGES[s]
        t = _scored(d, s, analysis="Key drivers")
        score = t.score if (s != "ces" or higher_is_easier) else (lo + hi) - t.score
        t = t.mutate(s=score.cast("float64"), survey=ibis.literal(s))
        key = t[by].cast("string").fill_null("other") if by else ibis.literal("all")
        t = t.mutate(driver_key=key)
        parts.append(t.select("customer_id", "survey", "driver_key", "s"))
    if not parts:
        raise UsageError("surveys must name at least one of 'csat', 'ces'")
    long = parts[0]
    for p in parts[1:]:
        long = long.union(p)
    long = long.semi_join(target, "customer_id")
    agg = long.group_by(["customer_id", "survey", "driver_key"]).aggregate(score=_.s.mean())
    ldf = agg.to_pandas()
    tdf = target.to_pandas()
    tdf["customer_id"] = tdf["customer_id"].astype(str)
    if ldf.empty:
        wide = pd.DataFrame({"customer_id": pd.Series([], dtype=str)})
    else:
        ldf["customer_id"] = ldf["customer_id"].astype(str)
        ldf["driver"] = ldf["survey"].astype(str) + "_" + ldf["driver_key"].astype(str)
        wide = ldf.pivot_table(
            index="customer_id", columns="driver", values="score", aggfunc="mean"
        ).reset_index()
        wide.columns.name = None
    out = tdf.merge(wide, on="customer_id", how="left")
    out["nps_score"] = out["nps_score"].astype(float)
    out["promoter"] = out["nps_score"] >= PROMOTER_MIN
    drivers = sorted(c for c in out.columns if c not in ("customer_id", "nps_score", "promoter"))
    out = out[["customer_id", "nps_score", "promoter", *drivers]]
    return out.sort_values("customer_id").reset_index(drop=True)


def _driver_scale(name: str) -> tuple[int, int]:
    prefix = name.split("_", 1)[0]
    return SCORE_RANGES.get(prefix, (np.nan, np.nan))  # type: ignore[return-value]


@run_cached("voc.key_drivers", cut_at=None)  # as_of=None means "no cut" here
def key_drivers(
    data: DataLike,
    *,
    method: str = "linear",
    drivers: Sequence[str] | None = None,
    n_boot: int = 200,
    level: float = 0.95,
    random_state: int | np.random.Generator | None = 0,
    min_n: int = stats.MIN_N,
    as_of: str | pd.Timestamp | None = None,
) -> pd.DataFrame:
    """Key drivers of NPS by relative weights, with bootstrap intervals.

    Parameters
    ----------
    data
        A :class:`CXData` (then :func:`driver_table` is built) or a frame shaped like
        :func:`driver_table`'s result.
    method
        ``"linear"``: Johnson's relative weights for the NPS answer (0–10);
        ``"logistic"``: relative weights of a logistic model of promoter status.
    drivers
        Driver columns to use; default every driver observed for at least ``min_n``
        customers.
    n_boot
        Bootstrap resamples of customers (percentile intervals); seeded by
        ``random_state``.

    Returns
    -------
    pandas.DataFrame
        One row per driver, most important first: ``driver``, ``n_observed``,
        ``performance_0_100`` (mean score rescaled to 0–100), ``weight`` (share of R²)
        with ``weight_low``/``weight_high``, and ``importance_pct`` (weights rescaled to
        sum to 100) with its interval. ``attrs`` holds ``r2``, ``n`` and ``method``.

    Notes
    -----
    Customers with an NPS answer and at least one driver answer are used; a driver the
    customer did not rate is set to the driver's mean (mean imputation, which shrinks
    weights of sparse drivers towards zero rather than inventing importance).
    """
    if method not in ("linear", "logistic"):
        raise UsageError(f"method must be 'linear' or 'logistic', got {method!r}")
    frame = driver_table(data, as_of=as_of) if not isinstance(data, pd.DataFrame) else data
    if drivers is None:
        cand = [c for c in frame.columns if c not in ("customer_id", "nps_score", "promoter")]
        drivers = [c for c in cand if frame[c].notna().sum() >= min_n]
    else:
        drivers = list(drivers)
        missing = [c for c in drivers if c not in frame.columns]
        if missing:
            raise UsageError(f"unknown driver column(s) {missing}; have {list(frame.columns)}")
    needs = f"at least {min_n} customers with both an NPS answer and CSAT/CES answers"
    if not drivers:
        raise NotAvailableError(needs, analysis="Key drivers")
    use = frame[frame[drivers].notna().any(axis=1) & frame["nps_score"].notna()]
    if len(use) < min_n:
        raise NotAvailableError(needs, analysis="Key drivers")
    x = use[drivers].astype(float)
    n_obs = x.notna().sum().to_numpy()
    x = x.fillna(x.mean()).to_numpy()
    if method == "linear":
        y = use["nps_score"].to_numpy(dtype=float)
        fn: Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, float]] = relative_weights
    else:
        y = (use["nps_score"].to_numpy(dtype=float) >= PROMOTER_MIN).astype(float)
        if y.min() == y.max():
            raise NotAvailableError("both promoters and non-promoters", analysis="Key drivers")
        fn = relative_weights_logistic
    # Drop constant drivers: they carry no information and break the correlation matrix.
    keep = x.std(axis=0) > 0
    drivers = [dname for dname, k in zip(drivers, keep, strict=True) if k]
    x, n_obs = x[:, keep], n_obs[keep]
    if not drivers:
        raise NotAvailableError(needs, analysis="Key drivers")
    w, r2 = fn(x, y)
    rng = np.random.default_rng(random_state)
    boots = np.full((n_boot, len(drivers)), np.nan)
    n = len(y)
    for b in range(n_boot):
        idx = rng.integers(0, n, n)
        xb, yb = x[idx], y[idx]
        if (xb.std(axis=0) == 0).any() or yb.std() == 0:
            continue
        boots[b] = fn(xb, yb)[0]
    alpha = (1 - level) / 2
    with np.errstate(invalid="ignore", divide="ignore"):
        shares = boots / boots.sum(axis=1, keepdims=True)
    perf = []
    for dname in drivers:
        lo, hi = _driver_scale(dname)
        perf.append(100 * (float(use[dname].mean()) - lo) / (hi - lo))
    out = pd.DataFrame(
        {
            "driver": drivers,
            "n_observed": n_obs.astype("int64"),
            "performance_0_100": perf,
            "weight": w,
            "weight_low": np.nanquantile(boots, alpha, axis=0) if n_boot else np.nan,
            "weight_high": np.nanquantile(boots, 1 - alpha, axis=0) if n_boot else np.nan,
            "importance_pct": 100 * w / w.sum() if w.sum() > 0 else np.nan,
            "importance_low_pct": 100 * np.nanquantile(shares, alpha, axis=0) if n_boot else np.nan,
            "importance_high_pct": 100 * np.nanquantile(shares, 1 - alpha, axis=0)
            if n_boot
            else np.nan,
        }
    )
    out = out.sort_values("weight", ascending=False, kind="stable").reset_index(drop=True)
    out.attrs.update(r2=r2, n=int(n), method=method)
    return out


# --------------------------------------------------------------------------------------
# text: comments, themes, distinctive terms, sentiment
# --------------------------------------------------------------------------------------


def comments(data: DataLike, *, as_of: str | pd.Timestamp | None = None) -> pd.DataFrame:
    """The non-empty comments with their response context, as a pandas frame.

    Columns: ``response_id``, ``customer_id``, ``ts``, ``survey``, ``score``, ``channel``
    and ``touchpoint`` (when present), ``comment`` (verbatim — untrusted) and
    ``nps_group`` (promoter / passive / detractor for NPS answers, else missing).
    """
    d = _cut(data, as_of)
    t = d.require("responses", "comment", analysis="Comment analysis")
    t = t.filter(t.comment.notnull() & (t.comment.strip().length() > 0))
    cols = [
        c
        for c in (
            "response_id",
            "customer_id",
            "ts",
            "survey",
            "score",
            "channel",
            "touchpoint",
            "comment",
        )
        if c in t.columns
    ]
    df = t.select(cols).order_by("response_id").to_pandas()
    df["comment"] = df["comment"].astype(str)
    if "survey" in df.columns and "score" in df.columns:
        s = pd.to_numeric(df["score"], errors="coerce")
        is_nps = df["survey"].astype(str).str.lower() == "nps"
        grp = np.select(
            [s >= PROMOTER_MIN, s <= DETRACTOR_MAX, s.notna()],
            ["promoter", "detractor", "passive"],
            default="",
        )
        df["nps_group"] = pd.Series(grp, index=df.index).where(is_nps & s.notna())
    else:
        df["nps_group"] = pd.Series([None] * len(df), dtype=object)
    return df.reset_index(drop=True)


def _comments_of(obj: Any, as_of: Any) -> pd.DataFrame:
    if isinstance(obj, Themes):
        return obj.comments
    if isinstance(obj, pd.DataFrame) and "comment" in obj.columns and "survey" not in obj:
        return obj
    if isinstance(obj, pd.DataFrame) and "nps_group" in obj.columns:
        return obj
    return comments(obj, as_of=as_of)


_SENTENCE_RE = r"(?<=[.!?;])\s+"


def _stop_words() -> list[str]:
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

    filler = {"honestly", "overall", "fair", "plus", "really", "just", "ve", "don", "did"}
    return sorted(ENGLISH_STOP_WORDS | filler)


_STOP_WORDS = _stop_words()


@dataclass
class Themes:
    """Result of :func:`themes`.

    Attributes
    ----------
    topics
        One row per theme: ``theme``, ``label`` (top three terms), ``top_terms``,
        ``n_comments`` (comments whose dominant theme it is), ``share`` with a Wilson
        interval (``share_low``, ``share_high``).
    comments
        The comments frame with ``theme``, ``theme_label``, ``theme_weight`` and
        ``theme_purity`` (share of the comment's theme weight) added (``theme = -1``
        where no theme term occurs).
    components
        The NMF term loadings (themes × terms).
    terms
        The vocabulary in column order of ``components``.
    """

    topics: pd.DataFrame
    comments: pd.DataFrame
    components: np.ndarray = field(repr=False)
    terms: np.ndarray = field(repr=False)


def themes(
    data: DataLike | pd.DataFrame,
    *,
    n_themes: int = 12,
    n_terms: int = 8,
    max_features: int = 5000,
    min_df: int = 2,
    max_df: float = 0.5,
    fit_sample: int = 50_000,
    random_state: int = 0,
    as_of: str | pd.Timestamp | None = None,
) -> Themes:
    """Feedback themes from TF-IDF + NMF (scikit-learn), fully offline.

    The model works on sentences: comments are split at sentence ends, the vectoriser
    (unigrams, English and filler stop words, terms in at least ``min_df`` sentences)
    and NMF are fitted on the sentences of at most ``fit_sample`` comments (a seeded
    sample, duplicates kept so that frequent wording weighs more), and a comment's theme
    weights are the sums over its sentences. Every distinct sentence is projected once.
    A comment's theme is its largest weight.

    Parameters
    ----------
    data
        A :class:`CXData` or the frame from :func:`comments`.
    n_themes
        Number of NMF components.
    """
    from sklearn.decomposition import NMF
    from sklearn.feature_extraction.text import TfidfVectorizer

    df = _comments_of(data, as_of).copy()
    need = max(5 * n_themes, 20)
    if len(df) < need:
        raise NotAvailableError(f"at least {need} comments", analysis="Feedback themes")
    text = df["comment"].str.lower().str.strip()
    codes, uniq = pd.factorize(text)
    # Sentence-level model: a comment that mixes two themes does not blur a component.
    sents = pd.Series(np.asarray(uniq, dtype=object)).str.split(_SENTENCE_RE, regex=True)
    sents = sents.explode()
    sents = sents[sents.notna() & (sents.str.strip().str.len() > 0)]
    rng = np.random.default_rng(random_state)
    fit_idx = (
        rng.choice(len(df), size=fit_sample, replace=False)
        if len(df) > fit_sample
        else np.arange(len(df))
    )
    # each sampled comment contributes its sentences (duplicates kept on purpose)
    mult = np.bincount(codes[fit_idx], minlength=len(uniq))[sents.index.to_numpy()]
    fit_text = np.repeat(sents.to_numpy(dtype=object), mult)
    vec = TfidfVectorizer(
        stop_words=_STOP_WORDS,
        min_df=min_df,
        max_df=max_df,
        max_features=max_features,
        sublinear_tf=True,
    )
    try:
        x_fit = vec.fit_transform(fit_text)
    except ValueError as err:  # empty vocabulary
        raise NotAvailableError(
            "comments with repeated words (none survive the term filter)",
            analysis="Feedback themes",
        ) from err
    k = min(n_themes, x_fit.shape[1], x_fit.shape[0])
    model = NMF(n_components=k, init="nndsvda", max_iter=400, random_state=random_state)
    model.fit(x_fit)
    s_codes, s_uniq = pd.factorize(sents)
    w_s = model.transform(vec.transform(np.asarray(s_uniq, dtype=object)))[s_codes]
    w_u = np.zeros((len(uniq), k))
    np.add.at(w_u, sents.index.to_numpy(), w_s)
    w = w_u[codes]
    best = w.argmax(axis=1)
    weight = w.max(axis=1)
    best = np.where(weight > 0, best, -1)
    terms = vec.get_feature_names_out()
    h = model.components_
    top_terms = [list(terms[np.argsort(-h[j])[:n_terms]]) for j in range(k)]
    labels = {j: " / ".join(top_terms[j][:3]) for j in range(k)}
    labels[-1] = "(no theme)"
    df["theme"] = best
    df["theme_label"] = [labels[j] for j in best]
    df["theme_weight"] = weight
    with np.errstate(invalid="ignore", divide="ignore"):
        df["theme_purity"] = np.where(weight > 0, weight / w.sum(axis=1), 0.0)
    counts = np.bincount(best[best >= 0], minlength=k)
    lo, hi = stats.wilson_ci(counts, np.full(k, len(df)))
    topics = pd.DataFrame(
        {
            "theme": np.arange(k),
            "label": [labels[j] for j in range(k)],
            "top_terms": [", ".join(tt) for tt in top_terms],
            "n_comments": counts.astype("int64"),
            "share": counts / len(df),
            "share_low": lo,
            "share_high": hi,
        }
    )
    return Themes(topics=topics, comments=df, components=h, terms=terms)


def theme_share(
    th: Themes, *, by: str = "nps_group", freq: str = "month", level: float = 0.95
) -> pd.DataFrame:
    """Share of comments per theme within each group of ``by``, with Wilson intervals.

    ``by="nps_group"`` uses NPS comments only (promoter / passive / detractor);
    ``by="period"`` groups by calendar ``freq``; any other comment column works too.
    Returns ``group``, ``theme``, ``label``, ``n_group``, ``n``, ``share``,
    ``share_low``, ``share_high``, ``small_n``.
    """
    df = th.comments
    if by == "nps_group":
        df = df[df["nps_group"].notna()]
        g = df["nps_group"].astype(str)
    elif by == "period":
        unit = {"D": "D", "W": "W", "M": "M", "Q": "Q", "Y": "Y"}[_freq(freq)]
        g = pd.to_datetime(df["ts"]).dt.to_period(unit).dt.start_time
    elif by in df.columns:
        g = df[by].astype(str)
    else:
        raise UsageError(f"by must be 'nps_group', 'period' or a comment column, got {by!r}")
    tab = pd.crosstab(g, df["theme"])
    rows = []
    for group, counts in tab.iterrows():
        n_group = int(counts.sum())
        for theme_id, n in counts.items():
            if theme_id < 0:
                continue
            rows.append((group, int(theme_id), int(n), n_group))
    out = pd.DataFrame(rows, columns=["group", "theme", "n", "n_group"])
    labels = th.topics.set_index("theme")["label"]
    out["label"] = out["theme"].map(labels)
    out["share"] = out["n"] / out["n_group"]
    lo, hi = stats.wilson_ci(out["n"].to_numpy(), out["n_group"].to_numpy(), level=level)
    out["share_low"], out["share_high"] = lo, hi
    out["small_n"] = stats.is_small(out["n_group"].to_numpy())
    cols = ["group", "theme", "label", "n_group", "n", "share", "share_low", "share_high"]
    return out[[*cols, "small_n"]]


def representative_comments(th: Themes, *, n: int = 3) -> pd.DataFrame:
    """The ``n`` comments most typical of each theme, distinct texts.

    Ranked by theme weight × purity (the theme's share of the comment's total theme
    weight), so that comments mixing two themes rank below single-theme ones. Comments
    are returned verbatim: show them with :func:`show_table` (escaped).
    """
    df = th.comments[th.comments["theme"] >= 0].copy()
    # near-duplicates (same content words, different filler) count as one text
    stop = set(_STOP_WORDS)
    df["_text"] = [
        " ".join(sorted({w for w in re.findall(r"\b\w\w+\b", t.lower()) if w not in stop}))
        for t in df["comment"]
    ]
    df["_rank"] = df["theme_weight"] * df["theme_purity"]
    df["_pure"] = df["theme_purity"] >= 0.75
    df = df.sort_values(["theme", "_pure", "_rank"], ascending=[True, False, False], kind="stable")
    df = df.drop_duplicates(["theme", "_text"]).groupby("theme", sort=True).head(n)
    cols = ["theme", "theme_label", "comment", "theme_weight"]
    cols += [c for c in ("survey", "score") if c in df.columns]
    return df[cols].rename(columns={"theme_label": "label"}).reset_index(drop=True)


def distinctive_terms(
    data: DataLike | pd.DataFrame | Themes,
    *,
    group_a: str = "promoter",
    group_b: str = "detractor",
    top: int = 15,
    prior_strength: float = 1000.0,
    min_count: int = 3,
    as_of: str | pd.Timestamp | None = None,
) -> pd.DataFrame:
    """Terms that distinguish two NPS groups: weighted log-odds with an informative prior.

    Monroe, Colaresi & Quinn (2008), "Fightin' Words": the log-odds ratio of each term
    between ``group_a`` and ``group_b`` comments, with a Dirichlet prior proportional to
    the term's frequency in all comments (``prior_strength`` pseudo-words in total),
    divided by its standard error to give a z-score.

    Returns the ``top`` terms for each side: ``term``, ``count_a``, ``count_b``,
    ``log_odds``, ``z`` and ``favours`` (``group_a`` when z > 0).
    """
    from sklearn.feature_extraction.text import CountVectorizer

    df = _comments_of(data, as_of)
    text = df["comment"].str.lower()
    vec = CountVectorizer(stop_words=_STOP_WORDS, min_df=1)
    try:
        x = vec.fit_transform(text.to_numpy())
    except ValueError as err:
        raise NotAvailableError("comments with words", analysis="Distinctive terms") from err
    terms = vec.get_feature_names_out()
    grp = df["nps_group"].astype(object).to_numpy()
    ya = np.asarray(x[grp == group_a].sum(axis=0)).ravel().astype(float)
    yb = np.asarray(x[grp == group_b].sum(axis=0)).ravel().astype(float)
    if ya.sum() == 0 or yb.sum() == 0:
        raise NotAvailableError(
            f"comments from both {group_a}s and {group_b}s", analysis="Distinctive terms"
        )
    background = np.asarray(x.sum(axis=0)).ravel().astype(float)
    alpha = prior_strength * background / background.sum()
    a0 = alpha.sum()
    na, nb = ya.sum(), yb.sum()
    delta = np.log((ya + alpha) / (na + a0 - ya - alpha)) - np.log(
        (yb + alpha) / (nb + a0 - yb - alpha)
    )
    var = 1 / (ya + alpha) + 1 / (yb + alpha)
    z = delta / np.sqrt(var)
    out = pd.DataFrame({"term": terms, "count_a": ya, "count_b": yb, "log_odds": delta, "z": z})
    out = out[(out["count_a"] + out["count_b"]) >= min_count]
    pos = out[out["z"] > 0].nlargest(top, "z")
    neg = out[out["z"] < 0].nsmallest(top, "z")
    res = pd.concat([pos, neg.iloc[::-1]], ignore_index=True)
    res["favours"] = np.where(res["z"] > 0, group_a, group_b)
    res["count_a"] = res["count_a"].astype("int64")
    res["count_b"] = res["count_b"].astype("int64")
    return res.reset_index(drop=True)


#: Customer-service terms added to VADER's lexicon (valence on VADER's −4..4 scale).
CS_LEXICON: dict[str, float] = {
    "refund": -1.2,
    "refunded": -0.5,
    "late": -1.5,
    "delay": -1.5,
    "delays": -1.5,
    "delayed": -1.5,
    "rude": -2.5,
    "crash": -2.0,
    "crashes": -2.0,
    "crashed": -2.0,
    "crashing": -2.0,
    "freezes": -1.8,
    "buggy": -1.8,
    "slow": -1.3,
    "waiting": -1.0,
    "waited": -1.0,
    "unhelpful": -2.0,
    "overcharged": -2.2,
    "expensive": -1.2,
    "overpriced": -1.8,
    "pricey": -1.0,
    "hassle": -1.5,
    "missing": -1.2,
    "cancelled": -1.2,
    "damaged": -2.0,
    "hold": -0.5,
    "fast": 1.5,
    "quick": 1.3,
    "quickly": 1.2,
    "smooth": 1.5,
    "seamless": 2.0,
    "intuitive": 1.8,
    "on-time": 1.5,
    "resolved": 1.5,
    "polite": 1.8,
}


@lru_cache(maxsize=1)
def _analyzer() -> Any:
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    analyzer = SentimentIntensityAnalyzer()
    analyzer.lexicon.update(CS_LEXICON)
    return analyzer


def sentiment_scores(texts: Iterable[str]) -> np.ndarray:
    """VADER compound sentiment (−1..1) with the customer-service lexicon added.

    Each distinct text is scored once.

    Examples
    --------
    >>> s = sentiment_scores(["Delivery was late and support was rude", "Fast and easy"])
    >>> bool(s[0] < 0 < s[1])
    True
    """
    series = pd.Series(list(texts), dtype=object).fillna("").astype(str)
    codes, uniq = pd.factorize(series)
    analyzer = _analyzer()
    scores = np.array([analyzer.polarity_scores(t)["compound"] for t in uniq], dtype=float)
    return scores[codes] if len(codes) else np.array([], dtype=float)


def comment_sentiment(
    data: DataLike | pd.DataFrame | Themes, *, as_of: str | pd.Timestamp | None = None
) -> pd.DataFrame:
    """The comments frame with ``sentiment`` (VADER compound) and ``sentiment_label``."""
    df = _comments_of(data, as_of).copy()
    df["sentiment"] = sentiment_scores(df["comment"])
    df["sentiment_label"] = np.select(
        [df["sentiment"] >= 0.05, df["sentiment"] <= -0.05],
        ["positive", "negative"],
        default="neutral",
    )
    return df


def sentiment_by(scored: pd.DataFrame, *, by: str = "nps_group") -> pd.DataFrame:
    """Mean sentiment per group with a t interval (``scored`` from :func:`comment_sentiment`)."""
    rows = []
    for g, part in scored.dropna(subset=[by]).groupby(by, sort=True):
        m, lo, hi, n = stats.mean_ci(part["sentiment"])
        neg = float((part["sentiment"] <= -0.05).mean())
        rows.append((str(g), n, m, lo, hi, neg))
    out = pd.DataFrame(
        rows,
        columns=[by, "n", "sentiment_mean", "sentiment_low", "sentiment_high", "negative_share"],
    )
    out["small_n"] = stats.is_small(out["n"].to_numpy())
    return out


# --------------------------------------------------------------------------------------
# omnichannel consistency
# --------------------------------------------------------------------------------------


def channel_consistency(
    data: DataLike,
    *,
    by: str | Sequence[str] | None = "touchpoint",
    personas: pd.Series | pd.DataFrame | None = None,
    top_box: int = 4,
    as_of: str | pd.Timestamp | None = None,
    min_n: int = stats.MIN_N,
) -> pd.DataFrame:
    """Per group (touchpoint, stage, persona...) the best and worst channel by CSAT.

    Only channels with at least ``min_n`` answers compete. The spread (best − worst
    top-2-box share, in percentage points) is tested with the two-proportion z-test;
    ``p_holm`` adjusts over all groups.

    Returns one row per group: ``channels`` (how many competed), ``best_channel``,
    ``best_csat``, ``best_n``, ``worst_channel``, ``worst_csat``, ``worst_n``,
    ``spread_points`` with ``spread_low``/``spread_high``, ``p_value``, ``p_holm``,
    ``significant``. CSAT shares are 0–1.
    """
    keys = _as_list(by)
    cells = csat(
        data, by=[*keys, "channel"], personas=personas, top_box=top_box, as_of=as_of, min_n=min_n
    )
    cells = cells[~cells["small_n"]]
    rows = []
    groups = cells.groupby(keys, sort=True) if keys else [((), cells)]
    for gkey, part in groups:
        gkey = gkey if isinstance(gkey, tuple) else (gkey,)
        row = dict(zip(keys, gkey, strict=True))
        row["channels"] = len(part)
        if len(part) >= 2:
            best = part.loc[part["csat_share"].idxmax()]
            worst = part.loc[part["csat_share"].idxmin()]
            t = stats.two_proportion_test(
                best["satisfied"], best["n"], worst["satisfied"], worst["n"]
            )
            row.update(
                best_channel=best["channel"],
                best_csat=best["csat_share"],
                best_n=int(best["n"]),
                worst_channel=worst["channel"],
                worst_csat=worst["csat_share"],
                worst_n=int(worst["n"]),
                spread_points=100 * t["diff"],
                spread_low=100 * t["ci_low"],
                spread_high=100 * t["ci_high"],
                p_value=t["p_value"],
            )
        rows.append(row)
    cols = [
        *keys,
        "channels",
        "best_channel",
        "best_csat",
        "best_n",
        "worst_channel",
        "worst_csat",
        "worst_n",
        "spread_points",
        "spread_low",
        "spread_high",
        "p_value",
    ]
    out = pd.DataFrame(rows).reindex(columns=cols)
    out["p_holm"] = stats.holm(out["p_value"].to_numpy(dtype=float))
    out["significant"] = out["p_holm"] < 0.05
    return out.sort_values("spread_points", ascending=False, na_position="last").reset_index(
        drop=True
    )


def channel_pain_points(
    data: DataLike,
    *,
    by: str = "persona",
    personas: pd.Series | pd.DataFrame | None = None,
    top_box: int = 4,
    as_of: str | pd.Timestamp | None = None,
    min_n: int = stats.MIN_N,
) -> pd.DataFrame:
    """Cells (group × channel) where CSAT is low against both neighbours.

    Each cell's top-2-box share is tested against the same group on its other channels
    (``gap_vs_other_channels``) and against the other groups on the same channel
    (``gap_vs_other_groups``), both in percentage points with Holm-adjusted p-values. A
    cell is a ``pain_point`` when both gaps are negative and significant. Rows are
    sorted worst first.
    """
    cells = csat(
        data, by=[by, "channel"], personas=personas, top_box=top_box, as_of=as_of, min_n=min_n
    )
    g_tot = cells.groupby(by)[["satisfied", "n"]].transform("sum")
    c_tot = cells.groupby("channel")[["satisfied", "n"]].transform("sum")
    k1, n1 = cells["satisfied"].to_numpy(), cells["n"].to_numpy()
    a = stats.two_proportion_test(
        k1, n1, (g_tot["satisfied"] - k1).to_numpy(), (g_tot["n"] - n1).to_numpy()
    )
    b = stats.two_proportion_test(
        k1, n1, (c_tot["satisfied"] - k1).to_numpy(), (c_tot["n"] - n1).to_numpy()
    )
    out = cells.copy()
    out["gap_vs_other_channels"] = 100 * np.asarray(a["diff"])
    out["p_vs_other_channels"] = stats.holm(a["p_value"])
    out["gap_vs_other_groups"] = 100 * np.asarray(b["diff"])
    out["p_vs_other_groups"] = stats.holm(b["p_value"])
    out["pain_point"] = (
        (out["gap_vs_other_channels"] < 0)
        & (out["gap_vs_other_groups"] < 0)
        & (out["p_vs_other_channels"] < 0.05)
        & (out["p_vs_other_groups"] < 0.05)
        & ~out["small_n"]
    )
    score = out[["gap_vs_other_channels", "gap_vs_other_groups"]].max(axis=1)
    out = out.assign(_s=score).sort_values(["pain_point", "_s"], ascending=[False, True])
    return out.drop(columns="_s").reset_index(drop=True)


def channel_switching(
    data: DataLike,
    *,
    events: Sequence[str] | None = None,
    window_days: int = 7,
    personas: pd.Series | pd.DataFrame | None = None,
    as_of: str | pd.Timestamp | None = None,
    level: float = 0.95,
    min_n: int = stats.MIN_N,
) -> pd.DataFrame:
    """Channel switching: customers who contact on 2+ channels for the same need within a window.

    A "need" is a touchpoint; contact events are ``events`` (default: every event whose
    name contains "support" or "contact"). A customer switched for a touchpoint when two
    contact events with different channels lie within ``window_days`` of each other —
    computed in the engine by comparing each contact with the previous one of the same
    customer and touchpoint (equivalent to checking every pair).

    Returns one row per touchpoint plus an ``(all)`` row (a customer counts once there):
    ``customers`` with contacts, ``switchers``, ``switch_rate`` with Wilson interval,
    ``small_n``. With ``personas``, rows are per persona × touchpoint.
    """
    d = _cut(data, as_of)
    e = d.require("events", "event", "channel", "touchpoint", analysis="Channel switching")
    if events is None:
        name = e.event.lower()
        e = e.filter(name.contains("support") | name.contains("contact"))
    else:
        e = e.filter(e.event.isin(list(events)))
    e = e.filter(e.channel.notnull() & e.touchpoint.notnull())
    keys = ["touchpoint"]
    if personas is not None:
        e = _attach(d, e, ["persona"], personas=personas, freq="month", analysis="Switching")
        keys = ["persona", "touchpoint"]
    w = ibis.window(group_by=[e.customer_id, e.touchpoint], order_by=[e.ts, e.channel])
    e = e.mutate(prev_channel=e.channel.lag().over(w), prev_ts=e.ts.lag().over(w))
    switched = (
        e.prev_channel.notnull()
        & (e.prev_channel != e.channel)
        & (e.prev_ts >= e.ts - ibis.interval(days=window_days))
    )
    e = e.mutate(sw=switched.ifelse(1, 0))
    per = e.group_by(["customer_id", *keys]).aggregate(sw=_.sw.max())
    by_tp = per.group_by(keys).aggregate(customers=_.count(), switchers=_.sw.sum()).to_pandas()
    okeys = keys[:-1]
    per_c = per.group_by(["customer_id", *okeys]).aggregate(sw=_.sw.max())
    if okeys:
        overall = per_c.group_by(okeys).aggregate(customers=_.count(), switchers=_.sw.sum())
    else:
        overall = per_c.aggregate(customers=_.count(), switchers=_.sw.sum())
    overall = overall.to_pandas()
    overall["touchpoint"] = "(all)"
    out = pd.concat([by_tp, overall], ignore_index=True)
    out["customers"] = out["customers"].fillna(0).astype("int64")
    out["switchers"] = out["switchers"].fillna(0).astype("int64")
    with np.errstate(divide="ignore", invalid="ignore"):
        out["switch_rate"] = out["switchers"] / out["customers"].where(out["customers"] > 0)
    lo, hi = stats.wilson_ci(out["switchers"].to_numpy(), out["customers"].to_numpy(), level=level)
    out["switch_low"], out["switch_high"] = np.atleast_1d(lo), np.atleast_1d(hi)
    out["small_n"] = stats.is_small(out["customers"].to_numpy(), min_n=min_n)
    out["_all"] = out["touchpoint"] == "(all)"
    out = out.sort_values([*okeys, "_all", "touchpoint"]).drop(columns="_all")
    cols = [*keys, "customers", "switchers", "switch_rate", "switch_low", "switch_high", "small_n"]
    return out[cols].reset_index(drop=True)


# --------------------------------------------------------------------------------------
# advocacy
# --------------------------------------------------------------------------------------


def _latest_nps(d: CXData) -> ir.Table:
    t = _scored(d, "nps", analysis="Advocacy")
    return t.group_by("customer_id").aggregate(
        last_nps=_.score.argmax(_.ts), last_nps_at=_.ts.max()
    )


def _event_customers(d: CXData, names: Sequence[str]) -> ir.Table | None:
    if not d.has("events", "event"):
        return None
    e = d.table("events")
    return e.filter(e.event.isin(list(names))).group_by("customer_id").aggregate(k=_.count())


def advocacy(
    data: DataLike,
    *,
    referral_events: Sequence[str] = ("referral",),
    review_events: Sequence[str] = ("review",),
    as_of: str | pd.Timestamp | None = None,
    level: float = 0.95,
) -> pd.DataFrame:
    """Advocacy: promoters, referrers, reviewers and the advocacy-stage reach.

    A customer reaches the advocacy stage with a referral or review event or a latest
    NPS answer of 9–10 (DESIGN.md §7). Returns one row per measure: ``measure``,
    ``customers``, ``base`` (what the share is of), ``base_n``, ``share`` and Wilson
    ``share_low``/``share_high``, ``small_n``.
    """
    d = _cut(data, as_of)
    have_nps = d.has("responses", "survey", "score")
    have_ev = d.has("events", "event")
    if not have_nps and not have_ev:
        raise NotAvailableError(
            "table 'responses' (NPS answers) or table 'events' (referral/review events)",
            analysis="Advocacy",
        )
    ids = []
    for name in ("customers", "events", "orders", "responses"):
        if d.has(name, "customer_id"):
            ids.append(d.table(name).select("customer_id").distinct())
    universe = ids[0]
    for extra in ids[1:]:
        universe = universe.union(extra)
    universe = universe.distinct()
    flags = universe
    if have_nps:
        ln = _latest_nps(d)
        flags = flags.left_join(ln, "customer_id").select(
            *flags.columns,
            responded=ln.last_nps.notnull().ifelse(1, 0),
            promoter=(ln.last_nps >= PROMOTER_MIN).ifelse(1, 0),
        )
    else:
        flags = flags.mutate(responded=ibis.literal(0), promoter=ibis.literal(0))
    for col, names in (("referrer", referral_events), ("reviewer", review_events)):
        ev = _event_customers(d, names) if have_ev else None
        if ev is None:
            flags = flags.mutate(**{col: ibis.literal(0)})
            continue
        flags = flags.left_join(ev, "customer_id").select(
            *flags.columns, **{col: ev.k.notnull().ifelse(1, 0)}
        )
    if d.has("orders", "customer_id"):
        buyers = d.table("orders").select("customer_id").distinct().mutate(b=ibis.literal(1))
        flags = flags.left_join(buyers, "customer_id").select(
            *flags.columns, purchaser=buyers.b.notnull().ifelse(1, 0)
        )
    else:
        flags = flags.mutate(purchaser=ibis.literal(0))
    adv = ((_.promoter + _.referrer + _.reviewer) > 0).ifelse(1, 0)
    agg = (
        flags.mutate(advocate=adv)
        .aggregate(
            customers=_.count(),
            responded=_.responded.sum(),
            promoters=_.promoter.sum(),
            referrers=_.referrer.sum(),
            reviewers=_.reviewer.sum(),
            advocates=_.advocate.sum(),
            purchasers=_.purchaser.sum(),
            purchaser_advocates=(_.advocate * _.purchaser).sum(),
            promoter_referrers=(_.promoter * _.referrer).sum(),
        )
        .to_pandas()
        .iloc[0]
        .fillna(0)
        .astype("int64")
    )
    rows = [
        ("promoters (latest NPS 9-10)", agg.promoters, "NPS respondents", agg.responded),
        ("referrers", agg.referrers, "all customers", agg.customers),
        ("reviewers", agg.reviewers, "all customers", agg.customers),
        ("advocacy reach", agg.advocates, "all customers", agg.customers),
        ("advocacy reach", agg.purchaser_advocates, "purchasers", agg.purchasers),
        ("promoters who referred", agg.promoter_referrers, "promoters", agg.promoters),
    ]
    out = pd.DataFrame(rows, columns=["measure", "customers", "base", "base_n"])
    out = out[out["base_n"] > 0].reset_index(drop=True)
    out["customers"] = out["customers"].astype("int64")
    out["base_n"] = out["base_n"].astype("int64")
    out["share"] = out["customers"] / out["base_n"]
    lo, hi = stats.wilson_ci(out["customers"].to_numpy(), out["base_n"].to_numpy(), level=level)
    out["share_low"], out["share_high"] = np.atleast_1d(lo), np.atleast_1d(hi)
    out["small_n"] = stats.is_small(out["base_n"].to_numpy())
    return out


def promoters_not_referred(
    data: DataLike,
    *,
    referral_events: Sequence[str] = ("referral",),
    as_of: str | pd.Timestamp | None = None,
) -> pd.DataFrame:
    """Promoters (latest NPS 9–10) with no referral event yet: a list to invite to refer.

    Returns ``customer_id``, ``last_nps``, ``last_nps_at``, most recent answer first.
    """
    d = _cut(data, as_of)
    ln = _latest_nps(d)
    prom = ln.filter(ln.last_nps >= PROMOTER_MIN)
    ev = _event_customers(d, referral_events)
    if ev is not None:
        prom = prom.anti_join(ev, "customer_id")
    df = prom.order_by([ibis.desc("last_nps_at"), "customer_id"]).to_pandas()
    df["customer_id"] = df["customer_id"].astype(str)
    df["last_nps"] = df["last_nps"].astype("int64")
    return df[["customer_id", "last_nps", "last_nps_at"]].reset_index(drop=True)


# --------------------------------------------------------------------------------------
# display helpers (escape untrusted text)
# --------------------------------------------------------------------------------------


def _esc(values: Iterable[Any]) -> list[str]:
    return [html.escape(str(v)) for v in values]


# --------------------------------------------------------------------------------------
# plots
# --------------------------------------------------------------------------------------


def plot_nps_trend(trend: pd.DataFrame, *, title: str | None = None) -> Any:
    """NPS per period as a line with its interval band; significant changes marked."""
    from cxkit import plots

    x = pd.to_datetime(trend["period"])
    if title is None:
        last = trend.iloc[-1]
        k = int(trend["significant"].sum())
        title = (
            f"NPS is {last['nps']:+.0f} in {x.iloc[-1]:%b %Y} "
            f"({k} significant month-to-month change{'s' if k != 1 else ''})"
        )
    fig = plots.figure(html.escape(title), x_title="period start", y_title="NPS (points)")
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
) -> Any:
    """Bars with interval whiskers for a grouped score frame from :func:`nps`/:func:`csat`/:func:`ces`."""
    from cxkit import plots

    cols = {
        "nps": ("nps", "nps_low", "nps_high", "NPS (points)", False),
        "csat": ("csat_share", "csat_low", "csat_high", "CSAT (% top-2-box)", True),
        "ces": ("ces_mean", "ces_low", "ces_high", "CES (mean, 7 = easiest)", False),
    }
    if score not in cols:
        raise UsageError(f"score must be 'nps', 'csat' or 'ces', got {score!r}")
    y, lo, hi, ytitle, pct = cols[score]
    shown = df.copy()
    shown[x] = _esc(shown[x])
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
        title=html.escape(title),
        x_title=x_title or x,
        y_title=ytitle,
        text="_label",
        percent=pct,
    )


def plot_drivers_quadrant(kd: pd.DataFrame, *, title: str | None = None) -> Any:
    """Importance–performance quadrant: relative importance (x) vs mean score (y).

    Dashed lines at the mean importance and mean performance split the plane into
    "fix first" (important, weak), "keep up" (important, strong), "lower priority"
    and "possible overkill".
    """
    from cxkit import plots

    imp = kd["importance_pct"].to_numpy(dtype=float)
    perf = kd["performance_0_100"].to_numpy(dtype=float)
    mi, mp = float(np.nanmean(imp)), float(np.nanmean(perf))
    if title is None:
        fix = kd[(imp >= mi) & (perf < mp)]
        top = kd.iloc[0]["driver"]
        title = f"{top} matters most for NPS" + (
            f"; fix {fix.iloc[0]['driver']} first" if len(fix) else ""
        )
    fig = plots.figure(
        html.escape(title),
        x_title="relative importance (% of explained variance)",
        y_title="performance (mean score, 0-100)",
        height=480,
    )
    fig.add_scatter(
        x=imp,
        y=perf,
        mode="markers+text",
        text=_esc(kd["driver"]),
        textposition="top center",
        marker={"size": 12, "color": plots.PALETTE[0]},
        error_x={
            "type": "data",
            "symmetric": False,
            "array": kd["importance_high_pct"] - imp,
            "arrayminus": imp - kd["importance_low_pct"],
            "color": "#9aa5b1",
        },
        customdata=kd["n_observed"],
        hovertemplate="%{text}: importance %{x:.1f}%, performance %{y:.0f} "
        "(n=%{customdata:,})<extra></extra>",
        showlegend=False,
    )
    fig.add_vline(x=mi, line_dash="dash", line_color="#9aa5b1")
    fig.add_hline(y=mp, line_dash="dash", line_color="#9aa5b1")
    for text, xa, ya, xan, yan in (
        ("fix first", 1, 0, "right", "bottom"),
        ("keep up", 1, 1, "right", "top"),
        ("lower priority", 0, 0, "left", "bottom"),
        ("possible overkill", 0, 1, "left", "top"),
    ):
        fig.add_annotation(
            text=text,
            xref="paper",
            yref="paper",
            x=xa,
            y=ya,
            xanchor=xan,
            yanchor=yan,
            showarrow=False,
            font={"color": "#7b8794"},
        )
    return fig


def plot_theme_share(share: pd.DataFrame, *, title: str) -> Any:
    """Horizontal grouped bars: theme share (with Wilson whiskers) within each group."""
    from cxkit import plots

    labels = sorted(share["label"].astype(str).unique())
    fig = plots.figure(
        html.escape(title),
        x_title="share of comments (%)",
        y_title="theme",
        height=max(420, 34 * len(labels) * max(1, share["group"].nunique()) // 2 + 160),
    )
    for i, (g, part) in enumerate(share.groupby("group", sort=True)):
        fig.add_bar(
            y=_esc(part["label"]),
            x=100 * part["share"],
            orientation="h",
            name=html.escape(str(g)),
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
        categoryorder="array", categoryarray=_esc(labels[::-1]), tickmode="linear", dtick=1
    )
    return fig


def plot_distinctive_terms(terms: pd.DataFrame, *, title: str | None = None) -> Any:
    """Horizontal bars of the weighted log-odds z-scores (promoter terms right)."""
    from cxkit import plots

    t = terms.sort_values("z")
    if title is None:
        title = "Words that set promoters and detractors apart"
    fig = plots.figure(
        html.escape(title),
        x_title="weighted log-odds (z-score)",
        y_title="term",
        height=max(420, 20 * len(t) + 160),
    )
    fig.add_bar(
        x=t["z"],
        y=_esc(t["term"]),
        orientation="h",
        marker_color=[plots.GOOD if z > 0 else plots.BAD for z in t["z"]],
        customdata=np.column_stack([t["count_a"], t["count_b"]]),
        hovertemplate="%{y}: z=%{x:.1f} (counts %{customdata[0]} vs %{customdata[1]})"
        "<extra></extra>",
        showlegend=False,
    )
    fig.update_yaxes(tickmode="linear", dtick=1)
    return fig


# --------------------------------------------------------------------------------------
# findings
# --------------------------------------------------------------------------------------


def _fmt_p(p: float) -> str:
    return "p < 0.001" if p < 0.001 else f"p = {p:.3f}"


@run_cached("voc.findings", cut_at=None)  # as_of=None means "no cut" here
def findings(
    data: DataLike,
    *,
    personas: pd.Series | pd.DataFrame | None = None,
    days: int = 90,
    as_of: str | pd.Timestamp | None = None,
    text: bool = True,
    n_boot: int = 200,
    random_state: int = 0,
) -> list[Finding]:
    """The voice-of-customer findings as :class:`~cxkit.findings.Finding` records.

    Headline NPS / CSAT / CES with change vs the previous ``days``; the worst channel
    cell (persona × channel with ``personas``, else touchpoint spread); channel
    switching; the top key driver; the largest detractor theme (with ``text``);
    advocacy reach and promoters not yet referring. Analyses the data cannot support
    are skipped.
    """
    d = _cut(data, as_of)
    out: list[Finding] = []

    def attempt(fn: Callable[[], None]) -> None:
        try:
            fn()
        except NotAvailableError:
            pass

    def headline_scores() -> None:
        summ = score_summary(d, days=days)
        for _i, r in summ.iterrows():
            metric = str(r["metric"])
            unit = {"NPS": "points", "CSAT": "%", "CES": "scale points"}[metric]
            fmt = {"NPS": "{:+.0f}", "CSAT": "{:.0f}%", "CES": "{:.2f}"}[metric]
            s = (
                f"{metric} over the {r['window']} is {fmt.format(r['value'])} "
                f"(95% CI {fmt.format(r['low'])} to {fmt.format(r['high'])}, n={int(r['n']):,})"
            )
            p = r["p_value"]
            if pd.notna(r["change"]):
                word = "up" if r["change"] > 0 else "down"
                sig = "significant" if p < 0.05 else "not significant"
                ch_unit = {"NPS": "points", "CSAT": "percentage points", "CES": "points"}[metric]
                s += (
                    f", {word} {abs(r['change']):.1f} {ch_unit} on the previous {days} days "
                    f"({sig}, {_fmt_p(p)})"
                )
            out.append(
                Finding(
                    domain="voc",
                    metric=metric.lower(),
                    value=float(r["value"]),
                    unit=unit,
                    sentence=s + ".",
                    ci_low=float(r["low"]),
                    ci_high=float(r["high"]),
                    n=int(r["n"]),
                    comparison=f"vs previous {days} days" if pd.notna(r["change"]) else None,
                    p_value=None if pd.isna(p) else float(p),
                    importance={"NPS": 10.0, "CSAT": 8.0, "CES": 6.0}[metric],
                    small_n=bool(r["small_n"]),
                    extra={"change": None if pd.isna(r["change"]) else float(r["change"])},
                )
            )

    def pain() -> None:
        if personas is not None:
            pp = channel_pain_points(d, by="persona", personas=personas)
            hits = pp[pp["pain_point"]]
            if len(hits):
                r = hits.iloc[0]
                out.append(
                    Finding(
                        domain="voc",
                        metric="channel_pain_point",
                        value=100 * float(r["csat_share"]),
                        unit="%",
                        sentence=(
                            f"{r['persona']} customers are least satisfied on {r['channel']}: "
                            f"CSAT {100 * r['csat_share']:.0f}% top-2-box (95% CI "
                            f"{100 * r['csat_low']:.0f}-{100 * r['csat_high']:.0f}%, "
                            f"n={int(r['n']):,}), {-r['gap_vs_other_channels']:.0f} points "
                            f"below their other channels and {-r['gap_vs_other_groups']:.0f} "
                            f"below other customers on {r['channel']}."
                        ),
                        ci_low=100 * float(r["csat_low"]),
                        ci_high=100 * float(r["csat_high"]),
                        n=int(r["n"]),
                        comparison=f"vs the persona's other channels and others on {r['channel']}",
                        p_value=float(max(r["p_vs_other_channels"], r["p_vs_other_groups"])),
                        importance=9.0,
                        extra={"persona": r["persona"], "channel": r["channel"]},
                    )
                )
                return
        cc = channel_consistency(d, by="touchpoint")
        cc = cc[cc["significant"].fillna(False).astype(bool)]
        if len(cc):
            r = cc.iloc[0]
            out.append(
                Finding(
                    domain="voc",
                    metric="channel_spread",
                    value=float(r["spread_points"]),
                    unit="percentage points",
                    sentence=(
                        f"At {r['touchpoint']}, CSAT differs by {r['spread_points']:.0f} points "
                        f"between {r['best_channel']} ({100 * r['best_csat']:.0f}%, "
                        f"n={int(r['best_n']):,}) and {r['worst_channel']} "
                        f"({100 * r['worst_csat']:.0f}%, n={int(r['worst_n']):,}; "
                        f"{_fmt_p(r['p_holm'])}, Holm-adjusted)."
                    ),
                    ci_low=float(r["spread_low"]),
                    ci_high=float(r["spread_high"]),
                    n=int(r["best_n"] + r["worst_n"]),
                    comparison="best vs worst channel",
                    p_value=float(r["p_holm"]),
                    importance=7.0,
                )
            )

    def switching() -> None:
        sw = channel_switching(d)
        r = sw[sw["touchpoint"] == "(all)"].iloc[0]
        if r["customers"] == 0:
            return
        out.append(
            Finding(
                domain="voc",
                metric="channel_switching",
                value=float(r["switch_rate"]),
                unit="share",
                sentence=(
                    f"{100 * r['switch_rate']:.1f}% of customers who contacted support switched "
                    f"channel for the same need within 7 days (95% CI "
                    f"{100 * r['switch_low']:.1f}-{100 * r['switch_high']:.1f}%, "
                    f"n={int(r['customers']):,})."
                ),
                ci_low=float(r["switch_low"]),
                ci_high=float(r["switch_high"]),
                n=int(r["customers"]),
                importance=4.0,
                small_n=bool(r["small_n"]),
            )
        )

    def drivers() -> None:
        kd = key_drivers(d, n_boot=n_boot, random_state=random_state)
        r = kd.iloc[0]
        out.append(
            Finding(
                domain="voc",
                metric="top_driver",
                value=float(r["importance_pct"]),
                unit="% of explained variance",
                sentence=(
                    f"{r['driver']} is the strongest driver of NPS: "
                    f"{r['importance_pct']:.0f}% of the explained variance (95% CI "
                    f"{r['importance_low_pct']:.0f}-{r['importance_high_pct']:.0f}%, "
                    f"R² = {kd.attrs['r2']:.2f}, n={kd.attrs['n']:,} customers)."
                ),
                ci_low=float(r["importance_low_pct"]),
                ci_high=float(r["importance_high_pct"]),
                n=int(kd.attrs["n"]),
                importance=6.5,
                extra={"driver": r["driver"]},
            )
        )

    def text_themes() -> None:
        th = themes(d, random_state=random_state)
        sh = theme_share(th, by="nps_group")
        det = sh[sh["group"] == "detractor"]
        if det.empty:
            return
        r = det.loc[det["share"].idxmax()]
        out.append(
            Finding(
                domain="voc",
                metric="top_detractor_theme",
                value=float(r["share"]),
                unit="share",
                sentence=(
                    f"The most common theme in detractors' comments is "
                    f"“{r['label']}”: {100 * r['share']:.0f}% of their comments (95% CI "
                    f"{100 * r['share_low']:.0f}-{100 * r['share_high']:.0f}%, "
                    f"n={int(r['n_group']):,})."
                ),
                ci_low=float(r["share_low"]),
                ci_high=float(r["share_high"]),
                n=int(r["n_group"]),
                importance=7.5,
                small_n=bool(r["small_n"]),
                extra={"theme": r["label"]},
            )
        )

    def advocates() -> None:
        adv = advocacy(d)
        reach = adv[adv["measure"] == "advocacy reach"].iloc[-1]
        s = (
            f"{100 * reach['share']:.0f}% of {reach['base']} reached the advocacy stage "
            f"(95% CI {100 * reach['share_low']:.0f}-{100 * reach['share_high']:.0f}%, "
            f"n={int(reach['base_n']):,})"
        )
        extra: dict[str, Any] = {}
        try:
            lst = promoters_not_referred(d)
            s += f"; {len(lst):,} promoters have not referred anyone yet"
            extra["promoters_not_referred"] = len(lst)
        except NotAvailableError:
            pass
        out.append(
            Finding(
                domain="voc",
                metric="advocacy_reach",
                value=float(reach["share"]),
                unit="share",
                sentence=s + ".",
                ci_low=float(reach["share_low"]),
                ci_high=float(reach["share_high"]),
                n=int(reach["base_n"]),
                importance=5.0,
                small_n=bool(reach["small_n"]),
                extra=extra,
            )
        )

    steps = [headline_scores, pain, switching, drivers, advocates]
    if text:
        steps.insert(4, text_themes)
    for step in steps:
        attempt(step)
    return out
