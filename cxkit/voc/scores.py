"""NPS, CSAT and CES with honest intervals: overall, by group, over time, and their change.

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

The helpers :func:`scored_responses`, :func:`attach_groups`, :func:`group_keys`,
:func:`period_unit` and :func:`t_interval` are shared with the other modules of
:mod:`cxkit.voc`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import ibis
import ibis.expr.types as ir
import numpy as np
import pandas as pd
from ibis import _
from scipy import stats as _st

from cxkit import stats
from cxkit.data import SCORE_RANGES, CXData, resolve_as_of
from cxkit.errors import NotAvailableError, UsageError
from cxkit.result import AsOf
from cxkit.voc.labels import PersonaLabels, persona_frame

__all__ = [
    "DETRACTOR_MAX",
    "PROMOTER_MIN",
    "attach_groups",
    "ces",
    "check_survey",
    "csat",
    "group_keys",
    "nps",
    "nps_compare",
    "nps_trend",
    "period_unit",
    "score_summary",
    "scored_responses",
    "t_interval",
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

# --------------------------------------------------------------------------------------
# helpers shared by the voc modules
# --------------------------------------------------------------------------------------


def check_survey(survey: str) -> tuple[int, int]:
    """Return the valid score range of a survey.

    Parameters
    ----------
    survey
        ``"nps"``, ``"csat"`` or ``"ces"``.

    Returns
    -------
    tuple of (int, int)
        The lowest and highest valid score.

    Raises
    ------
    UsageError
        For any other survey name.
    """
    if survey not in SCORE_RANGES:
        raise UsageError(f"survey must be one of {sorted(SCORE_RANGES)}, got {survey!r}")
    return SCORE_RANGES[survey]


def scored_responses(data: CXData, survey: str, *, analysis: str) -> ir.Table:
    """Return the responses of one survey with a valid score, as an ibis expression.

    Invalid scores are left out here and reported by :func:`cxkit.validate`.

    Parameters
    ----------
    data
        The data, with ``responses`` holding ``survey`` and ``score``.
    survey
        ``"nps"``, ``"csat"`` or ``"ces"``.
    analysis
        The analysis name for the "not available" message.

    Returns
    -------
    ibis.expr.types.Table
        The responses rows.

    Raises
    ------
    NotAvailableError
        When the data has no responses with ``survey`` and ``score``.
    """
    lo, hi = check_survey(survey)
    t = data.require("responses", "survey", "score", analysis=analysis)
    t = t.filter((t.survey.lower() == survey) & t.score.notnull())
    return t.filter((t.score >= lo) & (t.score <= hi))


def period_unit(freq: str) -> str:
    """Return the one-letter unit of a period name (``"month"`` -> ``"M"``).

    Parameters
    ----------
    freq
        day, week, month, quarter or year (or ``D``, ``W``, ``M``, ``Q``, ``Y``).

    Returns
    -------
    str
        ``"D"``, ``"W"``, ``"M"``, ``"Q"`` or ``"Y"``.

    Raises
    ------
    UsageError
        For any other value.
    """
    if freq not in _FREQ_UNITS:
        raise UsageError(f"freq must be one of day, week, month, quarter, year; got {freq!r}")
    return _FREQ_UNITS[freq]


def group_keys(by: str | Sequence[str] | None) -> list[str]:
    """Return the group keys of a ``by`` argument as a list.

    Parameters
    ----------
    by
        One key, several keys, or ``None``.

    Returns
    -------
    list of str
        The keys (empty for ``None``).
    """
    if by is None:
        return []
    if isinstance(by, str):
        return [by]
    return list(by)


def attach_groups(
    data: CXData,
    t: ir.Table,
    keys: Sequence[str],
    *,
    personas: PersonaLabels | None,
    freq: str,
    analysis: str,
) -> ir.Table:
    """Add the grouping columns ``keys`` to ``t`` (period, persona, customer attributes).

    Parameters
    ----------
    data
        The data (for customer attributes such as ``region``).
    t
        A table with ``customer_id`` and ``ts``.
    keys
        ``"period"`` (the calendar ``freq`` the row falls in), a column of ``t``,
        ``"persona"`` (from ``personas``) or a ``customers`` column.
    personas
        Persona labels per customer (a Series indexed by ``customer_id`` or a frame).
    freq
        The period length for ``"period"``.
    analysis
        The analysis name for the "not available" message.

    Returns
    -------
    ibis.expr.types.Table
        ``t`` with one string column per key (``"(unknown)"`` where missing) and a
        timestamp ``period``.

    Raises
    ------
    NotAvailableError
        When a key is neither a column nor persona labels that were given.
    """
    for key in keys:
        if key == "period":
            t = t.mutate(period=t.ts.truncate(period_unit(freq)))
        elif key in t.columns:
            t = t.mutate(**{key: t[key].cast("string").fill_null("(unknown)")})
        elif key == "persona" and personas is not None:
            lab = (
                _label_table(personas)
                if isinstance(personas, ir.Table)  # labels kept in the engine (scale mode)
                else ibis.memtable(persona_frame(personas))
            )
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


def t_interval(
    mean: float | np.ndarray | pd.Series,
    sd: float | np.ndarray | pd.Series,
    n: float | np.ndarray | pd.Series,
    level: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Return the Student-t interval of a mean (NaN where ``n < 2``).

    Parameters
    ----------
    mean, sd, n
        The sample mean, sample standard deviation and size (scalars or arrays).
    level
        The confidence level.

    Returns
    -------
    tuple of numpy.ndarray
        The lower and upper bounds.

    Examples
    --------
    >>> lo, hi = t_interval(5.0, 2.0, 3, 0.95)
    >>> round(float(lo), 3), round(float(hi), 3)
    (0.032, 9.968)
    """
    m, s, k = (np.asarray(x, dtype=float) for x in (mean, sd, n))
    with np.errstate(divide="ignore", invalid="ignore"):
        tq = np.where(k >= 2, _st.t.ppf(0.5 + level / 2, np.maximum(k - 1, 1)), np.nan)
        half = tq * s / np.sqrt(k)
    return m - half, m + half


def _finish(df: pd.DataFrame, keys: Sequence[str], min_n: int) -> pd.DataFrame:
    df["small_n"] = stats.is_small(df["n"].to_numpy(), min_n=min_n)
    if keys:
        df = df.sort_values(list(keys), kind="stable").reset_index(drop=True)
    for key in keys:
        if key != "period":
            df[key] = df[key].astype(str)
    return df


def _grouped(t: ir.Table, keys: Sequence[str], **aggs: object) -> pd.DataFrame:
    expr = t.group_by(list(keys)).aggregate(**aggs) if keys else t.aggregate(**aggs)
    return expr.to_pandas()


def _answers(
    data: CXData,
    survey: str,
    by: str | Sequence[str] | None,
    *,
    personas: PersonaLabels | None,
    freq: str,
    as_of: AsOf,
) -> tuple[list[str], ir.Table]:
    """Return the group keys and the valid answers of ``survey`` up to ``as_of``, grouped."""
    d = data.upto(resolve_as_of(data, as_of))
    keys = group_keys(by)
    analysis = survey.upper()
    t = scored_responses(d, survey, analysis=analysis)
    return keys, attach_groups(d, t, keys, personas=personas, freq=freq, analysis=analysis)


# --------------------------------------------------------------------------------------
# scores
# --------------------------------------------------------------------------------------


def nps(
    data: CXData,
    *,
    by: str | Sequence[str] | None = None,
    freq: str = "month",
    personas: PersonaLabels | None = None,
    as_of: AsOf = None,
    level: float = 0.95,
    min_n: int = stats.MIN_N,
) -> pd.DataFrame:
    """Compute the Net Promoter Score with adjusted-Wald intervals, optionally by group.

    Parameters
    ----------
    data
        The data, with ``responses`` holding ``survey`` and ``score``.
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
        Only responses up to this instant are used (:func:`cxkit.data.resolve_as_of`).
    level
        The confidence level of the intervals.
    min_n
        Groups with fewer responses are flagged ``small_n``.

    Returns
    -------
    pandas.DataFrame
        One row per group: ``n``, ``promoters``, ``passives``, ``detractors``,
        ``promoter_share``, ``detractor_share``, ``nps`` (points) and its interval
        ``nps_low``/``nps_high``, and ``small_n``.

    Raises
    ------
    NotAvailableError
        When the data has no NPS answers or lacks a group key.

    Examples
    --------
    >>> import cxkit
    >>> r = pd.DataFrame({"response_id": list("abcd"), "customer_id": list("abcd"),
    ...     "ts": pd.Timestamp("2024-01-01"), "survey": "nps", "score": [10, 9, 7, 3]})
    >>> nps(cxkit.load({"responses": r}))[["n", "promoters", "detractors", "nps"]].to_dict(
    ...     "records")
    [{'n': 4, 'promoters': 2, 'detractors': 1, 'nps': 25.0}]
    """
    keys, t = _answers(data, "nps", by, personas=personas, freq=freq, as_of=as_of)
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
    a: Mapping[str, float] | pd.Series,
    b: Mapping[str, float] | pd.Series,
    *,
    level: float = 0.95,
) -> dict[str, float]:
    """Compare two NPS rows (from :func:`nps`): difference a − b in points, interval, p-value.

    Parameters
    ----------
    a, b
        Rows with ``promoters``, ``detractors`` and ``n``.
    level
        The confidence level of the interval.

    Returns
    -------
    dict of str to float
        As :func:`cxkit.stats.nps_compare`: ``diff_points``, ``ci_low``, ``ci_high``,
        ``p_value``.

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
    data: CXData,
    *,
    by: str | Sequence[str] | None = None,
    freq: str = "month",
    personas: PersonaLabels | None = None,
    top_box: int = 4,
    as_of: AsOf = None,
    level: float = 0.95,
    min_n: int = stats.MIN_N,
) -> pd.DataFrame:
    """Compute CSAT as the top-2-box share (scores ``>= top_box``) with Wilson intervals.

    Parameters
    ----------
    data
        The data, with ``responses`` holding ``survey`` and ``score``.
    by, freq, personas
        Grouping, as in :func:`nps`.
    top_box
        The lowest score that counts as satisfied (4: top-2-box on 1–5).
    as_of
        Only responses up to this instant are used (:func:`cxkit.data.resolve_as_of`).
    level
        The confidence level of the intervals.
    min_n
        Groups with fewer responses are flagged ``small_n``.

    Returns
    -------
    pandas.DataFrame
        One row per group with ``n``, ``satisfied``, ``csat_share`` (0–1),
        ``csat_low``, ``csat_high``, ``csat_mean`` (mean score, 1–5) and ``small_n``.

    Raises
    ------
    NotAvailableError
        When the data has no CSAT answers or lacks a group key.

    Examples
    --------
    >>> import cxkit
    >>> r = pd.DataFrame({"response_id": list("abcd"), "customer_id": list("abcd"),
    ...     "ts": pd.Timestamp("2024-01-01"), "survey": "csat", "score": [5, 4, 2, 1]})
    >>> csat(cxkit.load({"responses": r}))[["n", "satisfied", "csat_share"]].to_dict("records")
    [{'n': 4, 'satisfied': 2, 'csat_share': 0.5}]
    """
    keys, t = _answers(data, "csat", by, personas=personas, freq=freq, as_of=as_of)
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


def ces(
    data: CXData,
    *,
    by: str | Sequence[str] | None = None,
    freq: str = "month",
    personas: PersonaLabels | None = None,
    higher_is_easier: bool = True,
    as_of: AsOf = None,
    level: float = 0.95,
    min_n: int = stats.MIN_N,
) -> pd.DataFrame:
    """Compute the Customer Effort Score: mean with a Student-t interval, "higher = easier".

    Parameters
    ----------
    data
        The data, with ``responses`` holding ``survey`` and ``score``.
    by, freq, personas
        Grouping, as in :func:`nps`.
    higher_is_easier
        ``True`` (default) for the contract's 1–7 scale where 7 = least effort. For a
        survey where 1 means least effort pass ``False``: scores are flipped
        (``8 − score``) so that the result still reads higher = easier.
    as_of
        Only responses up to this instant are used (:func:`cxkit.data.resolve_as_of`).
    level
        The confidence level of the intervals.
    min_n
        Groups with fewer responses are flagged ``small_n``.

    Returns
    -------
    pandas.DataFrame
        One row per group with ``n``, ``ces_mean``, ``ces_low``, ``ces_high``,
        ``ces_sd`` and ``small_n``.

    Raises
    ------
    NotAvailableError
        When the data has no CES answers or lacks a group key.

    Examples
    --------
    >>> import cxkit
    >>> r = pd.DataFrame({"response_id": list("abc"), "customer_id": list("abc"),
    ...     "ts": pd.Timestamp("2024-01-01"), "survey": "ces", "score": [7, 5, 3]})
    >>> d = cxkit.load({"responses": r})
    >>> ces(d)[["n", "ces_mean", "ces_sd"]].to_dict("records")
    [{'n': 3, 'ces_mean': 5.0, 'ces_sd': 2.0}]
    >>> float(ces(d, higher_is_easier=False)["ces_mean"].iloc[0])
    3.0
    """
    lo, hi = SCORE_RANGES["ces"]
    keys, t = _answers(data, "ces", by, personas=personas, freq=freq, as_of=as_of)
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
    df["ces_low"], df["ces_high"] = t_interval(df["ces_mean"], df["ces_sd"], df["n"], level)
    cols = [*keys, "n", "ces_mean", "ces_low", "ces_high", "ces_sd"]
    return _finish(df[cols], keys, min_n)


def _latest_answer(data: CXData, end: pd.Timestamp) -> str:
    """Return the clause naming the date of the last valid answer up to ``end``."""
    parts = []
    for metric in ("nps", "csat", "ces"):
        t = scored_responses(data, metric, analysis=metric.upper())
        parts.append(t.filter(t.ts <= end).select("ts"))
    latest = ibis.union(*parts, distinct=False).ts.max().to_pandas()
    if latest is None or pd.isna(latest):
        return "; there are no valid answers before it"
    return f"; the latest answer is from {pd.Timestamp(latest):%Y-%m-%d}"


def score_summary(
    data: CXData,
    *,
    days: int = 90,
    as_of: AsOf = None,
    higher_is_easier: bool = True,
    level: float = 0.95,
) -> pd.DataFrame:
    """Compute NPS, CSAT and CES over the last ``days`` with the change vs the ``days`` before.

    Parameters
    ----------
    data
        The data, with ``responses`` holding ``survey`` and ``score``.
    days
        The length of the current window and of the previous one it is compared with.
    as_of
        The end of the current window (:func:`cxkit.data.resolve_as_of`).
    higher_is_easier
        The direction of the CES scale, as in :func:`ces`.
    level
        The confidence level of the intervals.

    Returns
    -------
    pandas.DataFrame
        One row per available score: ``metric``, ``unit``, ``value``, ``low``,
        ``high``, ``n``, ``previous``, ``previous_n``, ``change``, ``change_low``,
        ``change_high``, ``p_value``, ``small_n``, ``window``. NPS is in points, CSAT in
        % of top-2-box answers (change in percentage points), CES in scale points.

    Raises
    ------
    NotAvailableError
        When the data has no survey responses, or none with a valid score in the last
        ``days`` (the message gives the window, n = 0 and the latest answer's date).
    """
    end = resolve_as_of(data, as_of)
    start_cur = end - pd.Timedelta(days=days)
    start_prev = end - pd.Timedelta(days=2 * days)
    rows: list[dict[str, object]] = []
    window = f"last {days} days to {end:%Y-%m-%d}"
    for metric in ("nps", "csat", "ces"):
        t = scored_responses(data, metric, analysis=metric.upper())
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
        row: dict[str, object] = {"metric": metric.upper(), "window": window, "n": int(cur["n"])}
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
            lo_, hi_ = t_interval(cur["mean"], cur["sd"], cur["n"], level)
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
    if not rows:
        raise NotAvailableError(
            f"survey answers (NPS, CSAT or CES) dated {start_cur:%Y-%m-%d} to {end:%Y-%m-%d}; "
            f"there are none in that window (n=0){_latest_answer(data, end)}",
            analysis=f"The headline score for the last {days} days",
        )
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
    data: CXData,
    *,
    freq: str = "month",
    as_of: AsOf = None,
    level: float = 0.95,
    min_n: int = stats.MIN_N,
) -> pd.DataFrame:
    """Compute NPS per period with its interval and the test of each change vs the one before.

    Parameters
    ----------
    data
        The data, with ``responses`` holding ``survey`` and ``score``.
    freq
        The period length: day, week, month, quarter or year.
    as_of
        Only responses up to this instant are used (:func:`cxkit.data.resolve_as_of`).
    level
        The confidence level of the intervals.
    min_n
        Periods with fewer responses are flagged ``small_n`` and never significant.

    Returns
    -------
    pandas.DataFrame
        The columns of :func:`nps` by ``period``, plus ``change_points``, ``p_value``
        (adjusted-Wald z-test of the difference), ``p_holm`` (Holm-adjusted over all
        changes shown) and ``significant`` (``p_holm < 0.05`` and both periods have at
        least ``min_n`` responses).

    Raises
    ------
    NotAvailableError
        When the data has no NPS answers.
    """
    end = resolve_as_of(data, as_of)
    df = nps(data, by="period", freq=freq, as_of=end, level=level, min_n=min_n)
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


def _label_table(labels: ir.Table) -> ir.Table:
    """Engine labels (``customer_id`` and one label column) as ``customer_id, persona``."""
    others = [c for c in labels.columns if c != "customer_id"]
    if "customer_id" not in labels.columns or len(others) != 1:
        raise UsageError(
            "personas must have columns 'customer_id' and 'persona'; got columns "
            f"{list(labels.columns)}"
        )
    return labels.select(
        customer_id=labels.customer_id.cast("string"), persona=labels[others[0]].cast("string")
    )
