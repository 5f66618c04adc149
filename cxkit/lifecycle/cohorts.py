"""Cohorts and breakdowns: who belongs to which group, and how the groups compare.

Cohort retention (DESIGN.md §7)
    Cohort = calendar period of first activity; cell (c, k) = share of cohort c active in
    period c + k; cells not observable yet are NaN. :func:`cohort_cells` gives every cell
    with its n, Wilson interval and small-n flag; :func:`cohort_retention` the shares
    laid out by cohort and k.
Lifecycle states
    new / returning / resurrecting / dormant per period.
Breakdowns
    A funnel or a stage ladder split by a group (a customers column, the entry channel, a
    persona table), and each group tested against the rest (:func:`group_tests`).

:func:`group_table` and :data:`ALL` are shared with the funnel module.
"""

from __future__ import annotations

import ibis
import ibis.expr.types as ir
import numpy as np
import pandas as pd

from cxkit import stats
from cxkit.data import CXData, resolve_as_of
from cxkit.errors import NotAvailableError, UsageError
from cxkit.lifecycle.stages import engine_cache, optional_table, union_all
from cxkit.result import AsOf

__all__ = [
    "ALL",
    "AVERAGE",
    "GroupBy",
    "cohort_cells",
    "cohort_grid",
    "cohort_retention",
    "group_table",
    "group_tests",
    "lifecycle_states",
]

#: The group name of a funnel without a breakdown.
ALL = "all"

#: The cohort label of the pooled (size-weighted) row of the cohort tables.
AVERAGE = "all (size-weighted)"

#: What a ``by`` argument accepts: None; ``"entry_channel"``; a customers column name; a
#: DataFrame of ``customer_id`` and one group column; a Series of groups indexed by
#: customer_id.
GroupBy = str | pd.DataFrame | pd.Series | None

_PERIODS = {"D": "day", "W": "week", "M": "month", "Q": "quarter", "Y": "year"}

#: The columns of a funnel frame that are not its group column.
_FUNNEL_COLUMNS = {
    "step", "step_name", "n_customers", "rate_from_start", "rate_from_previous", "ci_low",
    "ci_high", "ci_low_from_previous", "ci_high_from_previous", "n_previous", "small_n",
}  # fmt: skip

#: The columns of :func:`cohort_cells` and their dtypes.
_CELL_COLUMNS = {
    "cohort": "object", "k": "int64", "customers": "int64", "active": "int64",
    "share": "float64", "ci_low": "float64", "ci_high": "float64", "small_n": "bool",
}  # fmt: skip


# --------------------------------------------------------------------------------------
# groups (breakdowns)
# --------------------------------------------------------------------------------------


def group_table(data: CXData, by: GroupBy, entry_tbl: ir.Table) -> tuple[ir.Table, str | None]:
    """Return ``(customer_id, grp)`` for every customer of ``entry_tbl``, grp a string.

    Parameters
    ----------
    data
        The data (its customers table for a column name).
    by
        The breakdown (see :data:`GroupBy`); ``"entry_channel"`` reads the
        ``entry_channel`` column of ``entry_tbl``.
    entry_tbl
        One row per customer (``customer_id``, and ``entry_channel`` when used).

    Returns
    -------
    (table, name)
        The groups (NULL for a customer without one) and the group column's name for the
        output (None without a breakdown).

    Raises
    ------
    NotAvailableError
        When ``by`` names a column the customers table does not have.
    UsageError
        On a ``by`` of another kind, or a group table without exactly two columns.
    """
    if by is None:
        return entry_tbl.select("customer_id", grp=ibis.literal(ALL)), None
    if isinstance(by, str) and by == "entry_channel":
        return entry_tbl.select("customer_id", grp=entry_tbl.entry_channel), "entry_channel"
    if isinstance(by, pd.Series):
        by = by.rename(by.name or "group").rename_axis("customer_id").reset_index()
    if isinstance(by, ir.Table):  # labels kept in the engine (scale mode)
        if "customer_id" not in by.columns or len(by.columns) != 2:
            raise UsageError(
                "a group table must have exactly two columns: customer_id and the group, "
                f"got {list(by.columns)}"
            )
        col = next(c for c in by.columns if c != "customer_id")
        gt = by.select(customer_id=by.customer_id.cast("string"), grp=by[col].cast("string"))
        j = entry_tbl.left_join(gt, entry_tbl.customer_id == gt.customer_id)
        return j.select(customer_id=entry_tbl.customer_id, grp=j.grp), str(col)
    if isinstance(by, pd.DataFrame):
        if "customer_id" not in by.columns or len(by.columns) != 2:
            raise UsageError(
                "a group table must have exactly two columns: customer_id and the group, "
                f"got {list(by.columns)}"
            )
        col = next(c for c in by.columns if c != "customer_id")
        g = pd.DataFrame({"customer_id": by["customer_id"].astype(str), "grp": by[col].astype(str)})
        gt = ibis.memtable(g)
        j = entry_tbl.left_join(gt, entry_tbl.customer_id == gt.customer_id)
        return j.select(customer_id=entry_tbl.customer_id, grp=j.grp), str(col)
    if isinstance(by, str):
        c = optional_table(data, "customers")
        if c is None or by not in c.columns:
            raise NotAvailableError(
                f"table 'customers' with column '{by}'", analysis=f"The breakdown by {by}"
            )
        j = entry_tbl.left_join(c, entry_tbl.customer_id == c.customer_id)
        return j.select(customer_id=entry_tbl.customer_id, grp=c[by].cast("string")), by
    raise UsageError(
        "by must be None, 'entry_channel', a customers column name, or a DataFrame/Series "
        f"mapping customer_id to a group; got {type(by).__name__}"
    )


def group_tests(funnel_frame: pd.DataFrame, *, step: int | None = None) -> pd.DataFrame:
    """Test each group's conversion to ``step`` (default: the last) against the rest.

    Two-proportion z-test (``stats.two_proportion_test``) of the group against all other
    groups pooled, Holm-adjusted over the groups.

    Parameters
    ----------
    funnel_frame
        A funnel or stage ladder computed with ``by=...``
        (:func:`~cxkit.lifecycle.funnel`, :func:`~cxkit.lifecycle.stage_funnel`).
    step
        The step converted to (1-based); default the last.

    Returns
    -------
    pandas.DataFrame
        One row per group: group, ``n_start``, ``n_converted``, ``rate``, ``ci_low``,
        ``ci_high``, ``rate_rest``, ``diff``, ``diff_ci_low``, ``diff_ci_high``,
        ``p_value``, ``p_holm``, ``significant`` (Holm p < 0.05, neither side small),
        ``small_n``; sorted by rate, highest first.

    Raises
    ------
    UsageError
        When the frame has no group column.
    """
    gcols = [c for c in funnel_frame.columns if c not in _FUNNEL_COLUMNS and "_time_" not in c]
    if len(gcols) != 1:
        raise UsageError("group_tests needs a funnel computed with by=...")
    g = gcols[0]
    last = int(funnel_frame.step.max()) if step is None else int(step)
    first = funnel_frame[funnel_frame.step == 1].set_index(g).n_customers
    final = funnel_frame[funnel_frame.step == last].set_index(g).n_customers
    out = pd.DataFrame({g: first.index, "n_start": first.values, "n_converted": final.values})
    n_tot, k_tot = out.n_start.sum(), out.n_converted.sum()
    n_rest, k_rest = n_tot - out.n_start, k_tot - out.n_converted
    with np.errstate(divide="ignore", invalid="ignore"):
        out["rate"] = out.n_converted / out.n_start
        out["rate_rest"] = k_rest / n_rest
    out["ci_low"], out["ci_high"] = stats.wilson_ci(out.n_converted, out.n_start)
    t = stats.two_proportion_test(out.n_converted, out.n_start, k_rest, n_rest)
    out["diff"] = t["diff"]
    out["diff_ci_low"], out["diff_ci_high"] = t["ci_low"], t["ci_high"]
    out["p_value"] = t["p_value"]
    out["p_holm"] = stats.holm(out.p_value)
    out["small_n"] = stats.is_small(out.n_start) | stats.is_small(n_rest)
    out["significant"] = (out.p_holm < 0.05) & ~out.small_n
    return out.sort_values("rate", ascending=False, kind="stable").reset_index(drop=True)


# --------------------------------------------------------------------------------------
# calendar periods
# --------------------------------------------------------------------------------------


def _period_index(ts: ir.Value, period: str) -> ir.Value:
    """Return an integer index of the calendar period of ``ts`` (portable arithmetic)."""
    if period == "M":
        return ts.year().cast("int64") * 12 + ts.month().cast("int64") - 1
    if period == "Q":
        return ts.year().cast("int64") * 4 + ts.quarter().cast("int64") - 1
    if period == "Y":
        return ts.year().cast("int64")
    day = (ts.epoch_seconds().cast("float64") / 86400.0).floor().cast("int64")
    if period == "D":
        return day
    # 1970-01-05 (day 4) was a Monday: weeks start on Monday.
    return ((day - 4).cast("float64") / 7.0).floor().cast("int64")


def _index_to_start(ix: int, period: str) -> pd.Timestamp:
    ix = int(ix)
    if period == "M":
        return pd.Timestamp(year=ix // 12, month=ix % 12 + 1, day=1)
    if period == "Q":
        return pd.Timestamp(year=ix // 4, month=(ix % 4) * 3 + 1, day=1)
    if period == "Y":
        return pd.Timestamp(year=ix, month=1, day=1)
    if period == "D":
        return pd.Timestamp("1970-01-01") + pd.Timedelta(days=ix)
    return pd.Timestamp("1970-01-05") + pd.Timedelta(days=7 * ix)


def _index_of(ts: pd.Timestamp, period: str) -> int:
    if period == "M":
        return ts.year * 12 + ts.month - 1
    if period == "Q":
        return ts.year * 4 + ts.quarter - 1
    if period == "Y":
        return ts.year
    day = (ts.normalize() - pd.Timestamp("1970-01-01")).days
    return day if period == "D" else (day - 4) // 7


def _period_label(ix: int, period: str) -> str:
    start = _index_to_start(ix, period)
    if period == "M":
        return start.strftime("%Y-%m")
    if period == "Q":
        return f"{start.year}-Q{start.quarter}"
    if period == "Y":
        return str(start.year)
    return start.strftime("%Y-%m-%d")


def _check_period(period: str) -> str:
    p = str(period).upper()
    p = {"MS": "M", "ME": "M", "QS": "Q", "QE": "Q", "W-MON": "W", "YS": "Y", "A": "Y"}.get(p, p)
    if p not in _PERIODS:
        raise UsageError(f"period must be one of {list(_PERIODS)}, got {period!r}")
    return p


def _activity(data: CXData, activity: str, analysis: str) -> ir.Table:
    if activity not in ("any", "orders"):
        raise UsageError(f"activity must be 'any' or 'orders', got {activity!r}")
    events, orders = optional_table(data, "events"), optional_table(data, "orders")
    parts = []
    if activity == "any" and events is not None:
        parts.append(events.select("customer_id", "ts"))
    if orders is not None:
        parts.append(orders.select("customer_id", "ts"))
    if not parts:
        need = "the table 'orders'" if activity == "orders" else "an events or orders table"
        raise NotAvailableError(need, analysis=analysis)
    return union_all(parts)


def _last_complete_index(as_of: pd.Timestamp, period: str) -> int:
    """Return the last period fully observed at as_of (its own if as_of is its last day)."""
    ix = _index_of(as_of, period)
    next_start = _index_to_start(ix + 1, period)
    if as_of.normalize() >= next_start - pd.Timedelta(days=1):
        return ix
    return ix - 1


def _active_periods(data: CXData, activity: str, period: str, analysis: str) -> ir.Table:
    act = _activity(data, activity, analysis)
    act = act.select("customer_id", pi=_period_index(act.ts, period))
    # computed once: the cohorts and the lifecycle states of one analysis both read it
    return engine_cache(data, act.distinct())


# --------------------------------------------------------------------------------------
# cohorts and lifecycle states
# --------------------------------------------------------------------------------------


def cohort_cells(
    data: CXData,
    *,
    period: str = "M",
    activity: str = "any",
    as_of: AsOf = None,
    max_periods: int | None = None,
    level: float = 0.95,
) -> pd.DataFrame:
    """Compute every observable cohort-retention cell with its n and Wilson interval.

    Cell (c, k) counts the customers of cohort c (first activity in period c) who are
    active in period c + k. A cell is observable when period c + k is complete at as_of;
    cells that are not observable yet have no row (they are never read as zero). The
    rows labelled :data:`AVERAGE` pool the cohorts observable at each k (the
    size-weighted average of their shares).

    Parameters
    ----------
    data
        The data (events and/or orders).
    period
        ``"D"``, ``"W"`` (Monday start), ``"M"``, ``"Q"`` or ``"Y"``.
    activity
        ``"any"`` (any event or order) or ``"orders"`` (cohort = period of the first
        order; active = ordered).
    as_of
        Nothing after it is used (:func:`cxkit.data.resolve_as_of`).
    max_periods
        Keep k = 0..max_periods.
    level
        Confidence level of the intervals.

    Returns
    -------
    pandas.DataFrame
        One row per observable cell, the cohorts in time order, then the pooled rows:
        ``cohort`` (period label, or :data:`AVERAGE`), ``k`` (periods since the first),
        ``customers`` (n: the cohort's size; for a pooled row the customers of the
        cohorts observable at k), ``active``, ``share`` (``active / customers``),
        ``ci_low``, ``ci_high`` (Wilson, :func:`cxkit.stats.wilson_ci`) and
        ``small_n`` (``customers`` below :data:`cxkit.stats.MIN_N`). Empty (with these
        columns) when no period is complete yet.

    Raises
    ------
    NotAvailableError
        Without the activity tables.
    UsageError
        On an unknown ``period`` or ``activity``.

    Examples
    --------
    >>> import pandas as pd, cxkit
    >>> ev = pd.DataFrame({"customer_id": ["a", "a", "b"], "event": ["v", "v", "v"],
    ...     "ts": pd.to_datetime(["2024-01-05", "2024-02-03", "2024-01-20"])})
    >>> c = cohort_cells(cxkit.load({"events": ev}), as_of="2024-02-29")
    >>> jan = c[c.cohort == "2024-01"]
    >>> jan.k.tolist(), jan.customers.tolist(), jan.active.tolist(), jan.share.tolist()
    ([0, 1], [2, 2], [2, 1], [1.0, 0.5])
    >>> bool(c.small_n.all())  # two customers: far fewer than 30
    True
    """
    period = _check_period(period)
    end = resolve_as_of(data, as_of)
    data = data.upto(end)
    ap = _active_periods(data, activity, period, "Cohort retention")
    first = ap.group_by("customer_id").agg(cohort=ap.pi.min())
    j = ap.join(first, "customer_id")
    counts = j.group_by(["cohort", "pi"]).agg(active=j.count()).to_pandas()
    last = _last_complete_index(end, period)
    counts = counts[counts.cohort <= last]
    if counts.empty:  # no activity, or none in a complete period yet
        return pd.DataFrame({c: pd.Series(dtype=t) for c, t in _CELL_COLUMNS.items()})
    counts["k"] = (counts.pi - counts.cohort).astype(int)
    sizes = counts[counts.k == 0].set_index("cohort").active
    cohorts = sorted(sizes.index)
    n_k = max(last - min(cohorts), 0) + 1
    if max_periods is not None:
        n_k = min(n_k, max_periods + 1)
    act = counts.pivot_table(index="cohort", columns="k", values="active", aggfunc="sum")
    act = act.reindex(index=cohorts, columns=range(n_k)).fillna(0.0).to_numpy(dtype=float)
    observable = np.array([[c + k <= last for k in range(n_k)] for c in cohorts])
    size = sizes.reindex(cohorts).to_numpy(dtype=float)
    rows, ks = np.nonzero(observable)
    w_act = np.where(observable, act, 0).sum(axis=0)
    w_size = np.where(observable, size[:, None], 0).sum(axis=0)
    labels = [_period_label(c, period) for c in cohorts]
    cell_n = np.concatenate([size[rows], w_size])
    cell_k = np.concatenate([act[rows, ks], w_act])
    out = pd.DataFrame(
        {
            "cohort": [labels[r] for r in rows] + [AVERAGE] * n_k,
            "k": np.concatenate([ks, np.arange(n_k)]).astype("int64"),
            "customers": cell_n.astype("int64"),
            "active": cell_k.astype("int64"),
            "share": cell_k / cell_n,
        }
    )
    out["ci_low"], out["ci_high"] = stats.wilson_ci(cell_k, cell_n, level=level)
    out["small_n"] = stats.is_small(cell_n)
    return out


def cohort_grid(cells: pd.DataFrame) -> pd.DataFrame:
    """Lay the cells of :func:`cohort_cells` out as the cohort-retention table.

    Parameters
    ----------
    cells
        The output of :func:`cohort_cells`.

    Returns
    -------
    pandas.DataFrame
        As :func:`cohort_retention`.
    """
    if cells.empty:
        return pd.DataFrame(columns=["customers", 0])
    per = cells[cells.cohort != AVERAGE]
    pooled = cells[cells.cohort == AVERAGE].set_index("k")
    order = list(dict.fromkeys(per.cohort))
    n_k = int(cells.k.max()) + 1
    share = per.pivot(index="cohort", columns="k", values="share")
    share = share.reindex(index=order, columns=range(n_k)).to_numpy(dtype=float)
    size = per[per.k == 0].set_index("cohort").customers.reindex(order)
    out = pd.DataFrame(share, columns=list(range(n_k)))
    out.insert(0, "customers", size.to_numpy(dtype="int64"))
    out.index = order
    avg = pooled.share.reindex(range(n_k)).to_numpy(dtype=float)
    avg_row = pd.DataFrame([[int(size.sum()), *avg]], columns=out.columns)
    avg_row.index = [AVERAGE]
    out = pd.concat([out, avg_row])
    out.index.name = "cohort"
    return out


def cohort_retention(
    data: CXData,
    *,
    period: str = "M",
    activity: str = "any",
    as_of: AsOf = None,
    max_periods: int | None = None,
) -> pd.DataFrame:
    """Compute the cohort retention table: share of each cohort active k periods later.

    The shares of :func:`cohort_cells` laid out by cohort and k (:func:`cohort_grid`);
    the cells carry each share's n and Wilson interval.

    Parameters
    ----------
    data
        The data (events and/or orders).
    period
        ``"D"``, ``"W"`` (Monday start), ``"M"``, ``"Q"`` or ``"Y"``.
    activity
        ``"any"`` (any event or order) or ``"orders"`` (cohort = period of the first
        order; active = ordered).
    as_of
        Nothing after it is used (:func:`cxkit.data.resolve_as_of`). Periods after the
        last complete period at as_of are not observable: their cells are NaN (never 0).
    max_periods
        Keep columns k = 0..max_periods.

    Returns
    -------
    pandas.DataFrame
        Index ``cohort`` (period labels) plus a last row ``"all (size-weighted)"``;
        column ``customers`` (cohort size) then columns ``0, 1, 2, ...`` (shares). The
        last row is the size-weighted average over the cohorts observable at each k.

    Raises
    ------
    NotAvailableError
        Without the activity tables.
    UsageError
        On an unknown ``period`` or ``activity``.
    """
    cells = cohort_cells(
        data, period=period, activity=activity, as_of=as_of, max_periods=max_periods
    )
    return cohort_grid(cells)


def lifecycle_states(
    data: CXData, *, period: str = "M", activity: str = "any", as_of: AsOf = None
) -> pd.DataFrame:
    """Count new / returning / resurrecting / dormant customers per period.

    new: first activity in this period; returning: active this and the previous period;
    resurrecting: active this period, not the previous one, and not new; dormant: active
    the previous period but not this one. Only complete periods at as_of are reported.

    Parameters
    ----------
    data
        The data (events and/or orders).
    period
        ``"D"``, ``"W"`` (Monday start), ``"M"``, ``"Q"`` or ``"Y"``.
    activity
        ``"any"`` (any event or order) or ``"orders"``.
    as_of
        Nothing after it is used (:func:`cxkit.data.resolve_as_of`).

    Returns
    -------
    pandas.DataFrame
        ``period`` (label), ``period_start``, ``new``, ``returning``, ``resurrecting``,
        ``dormant``, ``active`` (= new + returning + resurrecting).

    Raises
    ------
    NotAvailableError
        Without the activity tables.
    UsageError
        On an unknown ``period`` or ``activity``.
    """
    period = _check_period(period)
    end = resolve_as_of(data, as_of)
    data = data.upto(end)
    ap = _active_periods(data, activity, period, "Lifecycle states")
    first = ap.group_by("customer_id").agg(first_pi=ap.pi.min())
    prev = ap.select(p_cid=ap.customer_id, p_pi=ap.pi + 1)
    a = ap.join(first, "customer_id")
    a = a.left_join(prev, [a.customer_id == prev.p_cid, a.pi == prev.p_pi])
    state = ibis.cases(
        (a.pi == a.first_pi, ibis.literal("new")),
        (a.p_cid.notnull(), ibis.literal("returning")),
        else_=ibis.literal("resurrecting"),
    )
    active = a.select(pi=a.pi, state=state)
    cur = ap.select(c_cid=ap.customer_id, c_pi=ap.pi)
    d = prev.anti_join(cur, [prev.p_cid == cur.c_cid, prev.p_pi == cur.c_pi])
    dormant = d.select(pi=d.p_pi, state=ibis.literal("dormant"))
    u = active.union(dormant, distinct=False)
    counts = u.group_by(["pi", "state"]).agg(n=u.count()).to_pandas()
    cols = ["new", "returning", "resurrecting", "dormant"]
    if counts.empty:
        return pd.DataFrame(columns=["period", "period_start", *cols, "active"])
    last = _last_complete_index(end, period)
    wide = counts.pivot_table(index="pi", columns="state", values="n", aggfunc="sum")
    lo = int(counts.pi.min())
    wide = wide.reindex(index=range(lo, last + 1), columns=cols).fillna(0).astype("int64")
    wide["active"] = wide.new + wide.returning + wide.resurrecting
    wide.insert(0, "period_start", [_index_to_start(i, period) for i in wide.index])
    wide.insert(0, "period", [_period_label(i, period) for i in wide.index])
    return wide.reset_index(drop=True).rename_axis(None, axis=1)
