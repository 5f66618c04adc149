"""Data health: what is there, how much, over which dates, and how well it covers customers.

The summaries behind ``notebooks/00_data_health.ipynb``, computed as engine aggregates
(one grouped query per table); only small results come to pandas.

>>> import pandas as pd, cxkit
>>> orders = pd.DataFrame({"order_id": ["1", "2"], "customer_id": ["a", "b"],
...                        "ts": ["2024-01-02", "2024-02-03"], "amount": [5.0, 7.0]})
>>> data = cxkit.load({"orders": orders})
>>> table_summary(data)[["table", "present", "rows", "customers"]].to_dict("records")[2]
{'table': 'orders', 'present': True, 'rows': 2, 'customers': 2}
"""

from __future__ import annotations

from collections.abc import Iterable

import ibis
import ibis.expr.types as ir
import pandas as pd
import plotly.graph_objects as go

from cxkit import plots
from cxkit.data import SCHEMA, TABLES, CXData
from cxkit.errors import Problem
from cxkit.findings import Finding, finding_from_rate
from cxkit.stats import MIN_N, wilson_ci

__all__ = [
    "activity_by_period",
    "activity_figure",
    "channel_figure",
    "channel_mix",
    "coverage",
    "coverage_figure",
    "customer_count",
    "findings",
    "headline",
    "missing",
    "problems_frame",
    "table_summary",
    "takeaways",
]

_ACTIVITY = ("events", "orders", "responses")
_FREQS = {"day": "D", "week": "W", "month": "M", "quarter": "Q"}


def table_summary(data: CXData) -> pd.DataFrame:
    """Summarise each contract table: present, rows, customers, first/last timestamp, columns.

    Parameters
    ----------
    data
        The loaded data.

    Returns
    -------
    pandas.DataFrame
        One row per contract table (absent ones too, with ``present`` False):
        ``table, present, rows, customers, first_ts, last_ts, columns``. The timestamps
        are those of ``ts`` (``signup_at`` for customers).
    """
    rows = []
    for name in TABLES:
        if name not in data:
            rows.append({"table": name, "present": False, "rows": 0, "customers": 0})
            continue
        t = data.table(name)
        aggs: dict[str, ir.Scalar] = {"rows": t.count()}
        if "customer_id" in t.columns:
            aggs["customers"] = t.customer_id.nunique()
        ts_col = "ts" if "ts" in t.columns else ("signup_at" if "signup_at" in t.columns else None)
        if ts_col:
            aggs["first_ts"] = t[ts_col].min()
            aggs["last_ts"] = t[ts_col].max()
        rec = t.aggregate(**aggs).to_pandas().iloc[0].to_dict()
        rows.append(
            {
                "table": name,
                "present": True,
                "rows": int(rec["rows"]),
                "customers": int(rec.get("customers") or 0),
                "first_ts": rec.get("first_ts"),
                "last_ts": rec.get("last_ts"),
                "columns": ", ".join(data.raw[name].columns),
            }
        )
    out = pd.DataFrame(rows)
    for col in ("first_ts", "last_ts"):
        out[col] = pd.to_datetime(out.get(col), errors="coerce")
    out["columns"] = out.get("columns", pd.Series(dtype=object)).fillna("")
    out["rows"] = out["rows"].astype("int64")
    out["customers"] = out["customers"].astype("int64")
    return out[["table", "present", "rows", "customers", "first_ts", "last_ts", "columns"]]


def missing(data: CXData) -> list[str]:
    """List in plain sentences each absent table and each absent optional column.

    Parameters
    ----------
    data
        The loaded data.

    Returns
    -------
    list of str
        One sentence per absent table or per table lacking optional columns.

    Examples
    --------
    >>> import cxkit
    >>> data = cxkit.load({"orders": pd.DataFrame({"order_id": ["1"], "customer_id": ["a"],
    ...                    "ts": ["2024-01-02"], "amount": [5.0]})})
    >>> missing(data)[:2]
    ["The 'customers' table is missing.", "The 'events' table is missing."]
    """
    notes = []
    for name in TABLES:
        if name not in data:
            notes.append(f"The '{name}' table is missing.")
            continue
        absent = [
            c.name for c in SCHEMA[name] if not c.required and c.name not in data.raw[name].columns
        ]
        if absent:
            cols = ", ".join(f"'{c}'" for c in absent)
            notes.append(f"The '{name}' table has no optional column(s) {cols}.")
    return notes


def problems_frame(problems: Iterable[Problem]) -> pd.DataFrame:
    """Tabulate validation problems, errors first.

    Parameters
    ----------
    problems
        As returned by :func:`cxkit.validate`.

    Returns
    -------
    pandas.DataFrame
        ``severity, rule, table, column, rows, message, fix``: errors, then warnings,
        each by table.
    """
    cols = ["severity", "rule", "table", "column", "rows", "message", "fix"]
    recs = [{c: getattr(p, c) for c in cols} for p in problems]
    df = pd.DataFrame(recs, columns=cols)
    if not df.empty:
        df["column"] = df["column"].fillna("")
        rank = df["severity"].map({"error": 0, "warning": 1}).fillna(2)
        df = df.assign(_rank=rank).sort_values(["_rank", "table"], kind="stable")
        df = df.drop(columns="_rank").reset_index(drop=True)
    return df


def activity_by_period(data: CXData, *, freq: str = "month") -> pd.DataFrame:
    """Count rows and customers per activity table per period.

    Parameters
    ----------
    data
        The loaded data.
    freq
        ``"day"``, ``"week"``, ``"month"`` or ``"quarter"``.

    Returns
    -------
    pandas.DataFrame
        ``table, period_start, rows, customers``, by table then period; only
        periods with rows appear.

    Raises
    ------
    ValueError
        When ``freq`` is not one of the four.
    """
    if freq not in _FREQS:
        raise ValueError(f"freq must be one of {list(_FREQS)}, got {freq!r}")
    unit = _FREQS[freq]
    frames = []
    for name in _ACTIVITY:
        if not data.has(name, "ts", "customer_id"):
            continue
        t = data.table(name)
        t = t.filter(t.ts.notnull())
        agg = (
            t.group_by(period_start=t.ts.truncate(unit))
            .aggregate(rows=t.count(), customers=t.customer_id.nunique())
            .to_pandas()
        )
        agg.insert(0, "table", name)
        frames.append(agg)
    if not frames:
        return pd.DataFrame(columns=["table", "period_start", "rows", "customers"])
    out = pd.concat(frames, ignore_index=True)
    out["period_start"] = pd.to_datetime(out["period_start"])
    return out.sort_values(["table", "period_start"]).reset_index(drop=True)


def _all_customers(data: CXData) -> ibis.Table | None:
    """Return the distinct customer IDs: the customers table's, else every one seen."""
    parts = [data.table(n).select("customer_id") for n in TABLES if data.has(n, "customer_id")]
    if not parts:
        return None
    if data.has("customers", "customer_id"):
        return data.table("customers").select("customer_id").distinct()
    return ibis.union(*parts, distinct=True).distinct()


def customer_count(data: CXData) -> int:
    """Count the customers: those of the customers table if present, else every ID seen.

    Parameters
    ----------
    data
        The loaded data.

    Returns
    -------
    int
        Distinct customer IDs (0 when no table has a ``customer_id``).
    """
    base = _all_customers(data)
    return 0 if base is None else int(base.count().to_pandas())


def coverage(data: CXData) -> pd.DataFrame:
    """Compute the share of customers with any events, orders and responses (Wilson 95%).

    The base is the customers table when present, else every customer seen anywhere.

    Parameters
    ----------
    data
        The loaded data.

    Returns
    -------
    pandas.DataFrame
        One row per activity table: ``table, present, customers_with,
        customers_total, share, ci_low, ci_high, small_n``; empty when no table has
        customer IDs.
    """
    base = _all_customers(data)
    cols = ["table", "customers_with", "customers_total", "share", "ci_low", "ci_high", "small_n"]
    if base is None:
        return pd.DataFrame(columns=cols)
    total = int(base.count().to_pandas())
    rows = []
    for name in _ACTIVITY:
        if not data.has(name, "customer_id"):
            rows.append({"table": name, "customers_with": 0, "customers_total": total})
            continue
        ids = data.table(name).select("customer_id").distinct()
        k = int(base.semi_join(ids, "customer_id").count().to_pandas())
        rows.append({"table": name, "customers_with": k, "customers_total": total})
    df = pd.DataFrame(rows)
    df["present"] = [name in data for name in df["table"]]
    df["share"] = df["customers_with"] / df["customers_total"].where(df["customers_total"] > 0)
    lo, hi = wilson_ci(df["customers_with"].to_numpy(), df["customers_total"].to_numpy())
    df["ci_low"], df["ci_high"] = lo, hi
    df["small_n"] = df["customers_total"] < MIN_N
    return df[["table", "present", *cols[1:]]]


def channel_mix(data: CXData) -> pd.DataFrame:
    """Count rows per channel for each table that has a ``channel`` column, with shares.

    Parameters
    ----------
    data
        The loaded data.

    Returns
    -------
    pandas.DataFrame
        ``table, channel, rows, share`` (a missing channel is ``"(none)"``), each
        table's channels largest first; shares sum to 1 within a table.
    """
    frames = []
    for name in _ACTIVITY:
        if not data.has(name, "channel"):
            continue
        t = data.table(name)
        agg = (
            t.group_by(channel=t.channel.fill_null("(none)")).aggregate(rows=t.count()).to_pandas()
        )
        agg.insert(0, "table", name)
        agg["share"] = agg["rows"] / agg["rows"].sum()
        frames.append(agg.sort_values("rows", ascending=False))
    if not frames:
        return pd.DataFrame(columns=["table", "channel", "rows", "share"])
    return pd.concat(frames, ignore_index=True)


def _validation_counts(problems: Iterable[Problem]) -> tuple[int, int]:
    """Return (errors, warnings) among validation problems."""
    problems = list(problems)
    n_err = sum(p.severity == "error" for p in problems)
    return n_err, len(problems) - n_err


def headline(summary: pd.DataFrame, n_customers: int, problems: Iterable[Problem] = ()) -> str:
    """Return the data-health report's headline: tables present, customers, validation.

    Parameters
    ----------
    summary
        As returned by :func:`table_summary`.
    n_customers
        As returned by :func:`customer_count`.
    problems
        The validation problems (:func:`cxkit.validate`).

    Returns
    -------
    str
        E.g. "4 of 4 tables present with 20,000 customers; validation: 0 error(s),
        0 warning(s)".
    """
    n_err, n_warn = _validation_counts(problems)
    return (
        f"{int(summary.present.sum())} of {len(TABLES)} tables present with "
        f"{n_customers:,} customers; validation: {n_err} error(s), {n_warn} warning(s)"
    )


def takeaways(
    problems: Iterable[Problem] = (),
    *,
    activity: pd.DataFrame | None = None,
    mix: pd.DataFrame | None = None,
) -> dict[str, str]:
    """Return the one-line takeaway under each section of the data-health report.

    Parameters
    ----------
    problems
        The validation problems (:func:`cxkit.validate`).
    activity
        As returned by :func:`activity_by_period`, if shown.
    mix
        As returned by :func:`channel_mix`, if shown.

    Returns
    -------
    dict of str to str
        ``validation``, and ``activity`` / ``channels`` when those frames have rows.
    """
    problems = list(problems)
    n_err, n_warn = _validation_counts(problems)
    out = {
        "validation": f"{n_err} error(s) and {n_warn} warning(s); fix errors first."
        if problems
        else "Validation found no problems: every contract rule holds."
    }
    if activity is not None and not activity.empty:
        out["activity"] = (
            f"{activity.period_start.nunique()} months of activity across "
            f"{activity.table.nunique()} table(s)."
        )
    if mix is not None and not mix.empty:
        top = mix.loc[mix.share.idxmax()]
        out["channels"] = f"The largest share is {top.channel} with {top.share:.0%} of {top.table}."
    return out


def findings(data: CXData, problems: Iterable[Problem] = ()) -> list[Finding]:
    """Return the data-health findings: size, period, coverage, validation outcome.

    Parameters
    ----------
    data
        The loaded data.
    problems
        The validation problems (:func:`cxkit.validate`), if it was run.

    Returns
    -------
    list of Finding
        Tables present, the validation outcome, then one coverage finding per present
        activity table (with its interval and n).
    """
    out: list[Finding] = []
    summary = table_summary(data)
    present = summary[summary.present]
    problems = list(problems)
    n_err, n_warn = _validation_counts(problems)
    first, last = present.first_ts.min(), present.last_ts.max()
    span = ""
    if pd.notna(first) and pd.notna(last):
        span = f" from {first:%Y-%m-%d} to {last:%Y-%m-%d}"
    out.append(
        Finding(
            domain="data",
            metric="tables_present",
            value=float(len(present)),
            unit="tables",
            sentence=f"{len(present)} of {len(TABLES)} tables present "
            f"({', '.join(present.table)}){span}.",
            importance=3,
        )
    )
    out.append(
        Finding(
            domain="data",
            metric="validation_problems",
            value=float(n_err),
            unit="problems",
            sentence=(
                "Validation found no problems."
                if not problems
                else f"Validation found {n_err} error(s) and {n_warn} warning(s)."
            ),
            importance=2.5,
        )
    )
    cov = coverage(data)
    for _, r in cov[cov.present].iterrows():
        out.append(
            finding_from_rate(
                r,
                domain="data",
                metric=f"coverage_{r.table}",
                sentence=f"{r.share:.1%} of {r.customers_total:,} customers have {r.table} "
                f"(95% CI {r.ci_low:.1%}–{r.ci_high:.1%}).",
                unit="share",
                importance=1,
                value="share",
                n="customers_total",
            )
        )
    return out


# --------------------------------------------------------------------------------------
# figures
# --------------------------------------------------------------------------------------


def activity_figure(activity: pd.DataFrame, *, freq: str = "month") -> go.Figure:
    """Plot rows per period, one line per table.

    Parameters
    ----------
    activity
        As returned by :func:`activity_by_period`.
    freq
        The period it was counted by (for the title and axes).

    Returns
    -------
    plotly.graph_objects.Figure
        One line trace per table; the title names the busiest period.
    """
    busiest = ""
    if not activity.empty:
        top = activity.loc[activity["rows"].idxmax()]
        busiest = f": busiest {freq} {top.period_start:%Y-%m} ({top.table}, {top.rows:,} rows)"
    fig = plots.figure(
        f"Activity per {freq}{busiest}", x_title=f"{freq} starting", y_title="rows per " + freq
    )
    for name, part in activity.groupby("table", sort=False):
        fig.add_scatter(
            x=part["period_start"], y=part["rows"], mode="lines", name=plots.escape_label(str(name))
        )
    return fig


def coverage_figure(cov: pd.DataFrame) -> go.Figure:
    """Plot the share of customers with each kind of activity, with Wilson 95% intervals.

    Parameters
    ----------
    cov
        As returned by :func:`coverage`.

    Returns
    -------
    plotly.graph_objects.Figure
        Bars (in %) with error bars for the present tables; the title names the
        thinnest coverage.
    """
    shown = cov[cov["present"]]
    low = shown.loc[shown["share"].idxmin()] if not shown.empty else None
    title = "Coverage of customers by table"
    # the same precision as the coverage findings and table (one figure, one text)
    if low is not None and len(shown) > 1:
        title = f"{low.share:.1%} of customers have {low.table}: the thinnest coverage"
    elif low is not None:
        title = f"{low.share:.1%} of customers have {low.table}"
    return plots.bar_with_ci(
        shown,
        x="table",
        y="share",
        low="ci_low",
        high="ci_high",
        title=title,
        x_title="table",
        y_title="customers with any row (%)",
        percent=True,
    )


def channel_figure(mix: pd.DataFrame) -> go.Figure:
    """Plot the channel mix per table as grouped bars of shares (%).

    Parameters
    ----------
    mix
        As returned by :func:`channel_mix`.

    Returns
    -------
    plotly.graph_objects.Figure
        One bar trace per table; the title names the largest channel share.
    """
    fig = plots.figure("Channel mix by table", x_title="channel", y_title="share of rows (%)")
    for name, part in mix.groupby("table", sort=False):
        fig.add_bar(
            x=plots.escape_label(part["channel"]),
            y=part["share"] * 100,
            name=plots.escape_label(str(name)),
        )
    if not mix.empty:
        top = mix.loc[mix["share"].idxmax()]
        fig.update_layout(
            title=plots.escape_label(
                f"{top.channel} carries {top.share:.0%} of {top.table}, the largest channel share"
            ),
            barmode="group",
        )
    return fig
