"""Funnels: ordered conversion, stage-to-stage conversion and the time to convert.

Funnel semantics (DESIGN.md §7)
    Per customer, step 1 is the first (``entry="first"``) or any (``entry="any"``)
    occurrence of step 1; each next step must occur *strictly after* the matched previous
    step (its earliest such occurrence); ``window`` bounds the time from the matched
    step-1 occurrence to the last step, inclusive. See :func:`funnel`.
Stage ladder
    :func:`stage_funnel` counts the customers who reached each stage (monotone stage
    times); :func:`stage_conversion` the share of those who reached one stage that also
    reached another, each by its own rule.

Everything row-level is an ibis expression that runs in the engine (joins, group-by
``min``/``count``, ``quantile``), so it also runs on Spark and PostgreSQL; only the
per-step aggregates come to pandas.
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Mapping, Sequence

import ibis
import ibis.expr.types as ir
import numpy as np
import pandas as pd

from cxkit import stats
from cxkit.data import CXData, resolve_as_of
from cxkit.errors import NotAvailableError, UsageError
from cxkit.lifecycle.cohorts import ALL, GroupBy, group_table
from cxkit.lifecycle.stages import (
    Rule,
    StageMapSpec,
    engine_cache,
    load_stage_map,
    occurrences,
    rule_occurrences,
    stage_times_expr,
    union_all,
)
from cxkit.result import AsOf

__all__ = [
    "Step",
    "Window",
    "default_pairs",
    "funnel",
    "funnel_customers_expr",
    "funnel_period_compare",
    "stage_conversion",
    "stage_funnel",
]

#: One funnel step: an event name, a list of event names (any of them), ``"order"`` or a
#: stage name of the stage map.
Step = str | Sequence[str]

#: A funnel window: a number of days, a timedelta or text such as ``"7D"``; None = no limit.
Window = float | str | pd.Timedelta | dt.timedelta | None

_ENTRIES = ("any", "first")


def _step_label(step: Step) -> str:
    if isinstance(step, str):
        return step
    return " | ".join(str(s) for s in step)


def _step_occurrences(data: CXData, step: Step, smap: Mapping[str, Rule]) -> ir.Table:
    if isinstance(step, str) and step in smap:
        occ = rule_occurrences(data, smap[step])
        if occ is None:
            raise NotAvailableError(
                f"the tables behind the stage '{step}' ({', '.join(smap[step])})",
                analysis="This funnel",
            )
        return occ
    if isinstance(step, str) and step in ("order", "orders"):
        return occurrences(data.require("orders", analysis="This funnel"))
    names = [step] if isinstance(step, str) else list(step)
    if not names or not all(isinstance(n, str) for n in names):
        raise UsageError(f"a step must be an event name, a stage or a list of names, got {step!r}")
    e = data.require("events", analysis="This funnel")
    return occurrences(e.filter(e.event.isin(names)))


def _window_seconds(window: Window) -> float | None:
    if window is None:
        return None
    if isinstance(window, int | float | np.integer | np.floating):
        td = pd.Timedelta(days=float(window))
    else:
        try:
            td = pd.Timedelta(window)
        except (ValueError, TypeError) as err:
            raise UsageError(
                f"window must be a number of days, a timedelta or text like '7D', got {window!r}"
            ) from err
    if td <= pd.Timedelta(0):
        raise UsageError(f"window must be positive, got {window!r}")
    return td.total_seconds()


def _check_steps(steps: Sequence[Step]) -> list[Step]:
    if isinstance(steps, str) or not isinstance(steps, Sequence) or len(steps) == 0:
        raise UsageError(f"steps must be a non-empty list of event or stage names, got {steps!r}")
    return list(steps)


def _seconds_between(a: ir.Value, b: ir.Value) -> ir.Value:
    return a.epoch_seconds().cast("float64") - b.epoch_seconds().cast("float64")


def _chain(
    data: CXData,
    steps: list[Step],
    *,
    window: Window,
    entry: str,
    by: GroupBy,
    stage_map: StageMapSpec,
    period: tuple[pd.Timestamp, float] | None = None,
    reached: ir.Table | None = None,
) -> tuple[ir.Table, str | None]:
    """Per step, the rows of the customers who reached it, as one ibis union.

    Columns ``customer_id, grp, step, from_prev_s, from_start_s``. ``reached`` is the
    ungrouped chain (:func:`funnel_reached`) of the same steps, window and entry: a
    customer's group is fixed before the chain is matched, so the grouped rows are the
    ungrouped ones joined with the groups.
    """
    if entry not in _ENTRIES:
        raise UsageError(f"entry must be 'any' or 'first', got {entry!r}")
    smap = load_stage_map(stage_map)
    win_s = _window_seconds(window)
    occ = [_step_occurrences(data, s, smap) for s in steps]
    e1 = occ[0]
    entry_tbl = e1.group_by("customer_id").agg(entry_at=e1.ts.min())
    if isinstance(by, str) and by == "entry_channel":
        j = e1.join(
            entry_tbl, [e1.customer_id == entry_tbl.customer_id, e1.ts == entry_tbl.entry_at]
        )
        entry_tbl = j.group_by("customer_id").agg(
            entry_at=j.entry_at.min(), entry_channel=j.channel.min()
        )
    if period is not None:
        end, length_s = period
        end_d = end.to_pydatetime()
        mid = (end - pd.Timedelta(seconds=length_s)).to_pydatetime()
        start = (end - pd.Timedelta(seconds=2 * length_s)).to_pydatetime()
        grp = ibis.cases(
            ((entry_tbl.entry_at > mid) & (entry_tbl.entry_at <= end_d), ibis.literal("current")),
            (
                (entry_tbl.entry_at > start) & (entry_tbl.entry_at <= mid),
                ibis.literal("previous"),
            ),
            else_=ibis.null(),
        ).cast("string")
        groups = entry_tbl.select("customer_id", grp=grp)
        groups = groups.filter(groups.grp.notnull())
        by_name: str | None = "period"
    else:
        groups, by_name = group_table(data, by, entry_tbl)
        groups = groups.mutate(grp=groups.grp.fill_null("(missing)"))

    if by is None and period is None:
        base = entry_tbl.mutate(grp=ibis.literal(ALL))
    else:
        base = entry_tbl.join(groups, "customer_id")
    if reached is not None:
        if by is None and period is None:
            return reached, by_name
        r = reached.drop("grp")
        j = r.join(base.select("customer_id", "grp"), "customer_id")
        return j.select("customer_id", "grp", "step", "from_prev_s", "from_start_s"), by_name
    if entry == "first":
        cur = base.select("customer_id", "grp", start=base.entry_at, prev=base.entry_at)
    else:
        starts = e1.select("customer_id", start=e1.ts).distinct()
        starts = starts.join(base.select("customer_id", "grp"), "customer_id")
        cur = starts.select("customer_id", "grp", "start", prev=starts.start)

    rows = [
        base.select(
            "customer_id",
            "grp",
            step=ibis.literal(1, "int64"),
            from_prev_s=ibis.null().cast("float64"),
            from_start_s=ibis.null().cast("float64"),
        )
    ]
    for k in range(1, len(steps)):
        e = occ[k].select(c_id=occ[k].customer_id, ts=occ[k].ts)
        pred = [cur.customer_id == e.c_id, e.ts > cur.prev]
        if win_s is not None:
            pred.append(e.ts <= cur.start + ibis.interval(seconds=round(win_s)))
        j = cur.join(e, pred)
        if entry == "first":
            # One chain per customer: start and prev are constant within the group.
            nxt = j.group_by(["customer_id", "grp"]).agg(
                start=j.start.min(), prev=j.prev.min(), at=j.ts.min()
            )
        else:
            nxt = j.group_by(["customer_id", "grp", "start"]).agg(prev=j.prev.min(), at=j.ts.min())
        if entry == "first":
            reach = nxt
        else:
            # The counted chain for this step is the one from the earliest start reaching it.
            m = nxt.group_by("customer_id").agg(first_start=nxt.start.min())
            jj = nxt.join(m, [nxt.customer_id == m.customer_id, nxt.start == m.first_start])
            reach = jj.select(nxt.customer_id, nxt.grp, nxt.start, nxt.prev, nxt.at)
        rows.append(
            reach.select(
                "customer_id",
                "grp",
                step=ibis.literal(k + 1, "int64"),
                from_prev_s=_seconds_between(reach.at, reach.prev),
                from_start_s=_seconds_between(reach.at, reach.start),
            )
        )
        cur = nxt.select("customer_id", "grp", "start", prev=nxt.at)
    return union_all(rows), by_name


def funnel_reached(
    data: CXData,
    steps: Sequence[Step],
    *,
    window: Window = None,
    entry: str = "any",
    as_of: AsOf = None,
    stage_map: StageMapSpec = None,
) -> ir.Table:
    """Match the funnel once and keep the result as a table in the data's engine.

    :func:`funnel` and :func:`funnel_period_compare` given this table (``reached=``)
    join it with their groups instead of matching every customer's chain again: the
    lifecycle report's funnel, its entry-channel, period and persona breakdowns share
    one matching. The table is cached in the engine (:func:`~cxkit.lifecycle.engine_cache`):
    the same steps, window, entry and ``as_of`` on the same data return it again.

    Parameters
    ----------
    data
        The data.
    steps, window, entry, as_of, stage_map
        As in :func:`funnel`.

    Returns
    -------
    ibis.expr.types.Table
        :func:`funnel_customers_expr` (ungrouped), computed once.
    """
    end = resolve_as_of(data, as_of)
    expr = funnel_customers_expr(
        data, steps, window=window, entry=entry, as_of=end, stage_map=stage_map
    )
    return engine_cache(data, expr)


def funnel_customers_expr(
    data: CXData,
    steps: Sequence[Step],
    *,
    window: Window = None,
    entry: str = "any",
    by: GroupBy = None,
    as_of: AsOf = None,
    stage_map: StageMapSpec = None,
) -> ir.Table:
    """Return the funnel per customer and step reached, as an ibis expression.

    See :func:`funnel` for the semantics and the parameters.

    Parameters
    ----------
    data
        The data.
    steps, window, entry, by, stage_map
        As in :func:`funnel`.
    as_of
        Nothing after it is used (:func:`cxkit.data.resolve_as_of`).

    Returns
    -------
    ibis.expr.types.Table
        ``customer_id``, ``grp``, ``step`` (1-based), ``from_prev_s`` and
        ``from_start_s`` (seconds from the matched previous step / matched step 1); one
        row per customer per step reached.
    """
    end = resolve_as_of(data, as_of)
    expr, _ = _chain(
        data.upto(end),
        _check_steps(steps),
        window=window,
        entry=entry,
        by=by,
        stage_map=stage_map,
    )
    return expr


def _aggregate(rows: ir.Table) -> ir.Table:
    return rows.group_by(["grp", "step"]).agg(
        n_customers=rows.count(),
        med_prev=rows.from_prev_s.quantile(0.5),
        p90_prev=rows.from_prev_s.quantile(0.9),
        med_start=rows.from_start_s.quantile(0.5),
        p90_start=rows.from_start_s.quantile(0.9),
    )


def _funnel_frame(agg: pd.DataFrame, labels: list[str], by_name: str | None) -> pd.DataFrame:
    k = len(labels)
    groups = sorted(agg["grp"].dropna().unique().tolist()) if len(agg) else []
    if by_name is None and not groups:
        groups = [ALL]
    full = pd.MultiIndex.from_product([groups, range(1, k + 1)], names=["grp", "step"])
    a = agg.set_index(["grp", "step"]).reindex(full).reset_index()
    a["n_customers"] = a["n_customers"].fillna(0).astype("int64")
    n1 = a.groupby("grp")["n_customers"].transform("first")
    prev = a.groupby("grp")["n_customers"].shift(1).fillna(a["n_customers"])
    with np.errstate(divide="ignore", invalid="ignore"):
        a["rate_from_start"] = np.where(n1 > 0, a.n_customers / n1, np.nan)
        a["rate_from_previous"] = np.where(prev > 0, a.n_customers / prev, np.nan)
    a["ci_low"], a["ci_high"] = stats.wilson_ci(a.n_customers, n1)
    a["ci_low_from_previous"], a["ci_high_from_previous"] = stats.wilson_ci(a.n_customers, prev)
    a["n_previous"] = prev.astype("int64")
    a["small_n"] = stats.is_small(prev)
    a.insert(2, "step_name", [labels[s - 1] for s in a.step])
    for src_col, stem in (
        ("med_prev", "median_time_from_previous"),
        ("p90_prev", "p90_time_from_previous"),
        ("med_start", "median_time_from_start"),
        ("p90_start", "p90_time_from_start"),
    ):
        secs = pd.to_numeric(a[src_col], errors="coerce").astype("float64")
        a[f"{stem}_hours"] = secs / 3600.0
        a[f"{stem}_days"] = secs / 86400.0
    a = a.drop(columns=["med_prev", "p90_prev", "med_start", "p90_start"])
    if by_name is None:
        a = a.drop(columns="grp")
    else:
        a = a.rename(columns={"grp": by_name})
    return a.reset_index(drop=True)


def funnel(
    data: CXData,
    steps: Sequence[Step],
    *,
    window: Window = None,
    entry: str = "any",
    by: GroupBy = None,
    as_of: AsOf = None,
    stage_map: StageMapSpec = None,
    reached: ir.Table | None = None,
) -> pd.DataFrame:
    """Compute an ordered conversion funnel in the engine.

    Semantics (DESIGN §7). Per customer, step 1 is matched at the first occurrence of
    step 1 (``entry="first"``) or at any of its occurrences (``entry="any"``); each next
    step is matched at its *earliest* occurrence *strictly after* the matched previous
    step (ties do not advance the funnel; a repeated step needs a second, later
    occurrence); other events may happen in between. ``window`` bounds the time from the
    matched step-1 occurrence to every later matched step, inclusive (``t_k − t_1 ≤
    window``). A customer counts at step k when some matched chain reaches step k:

    * ``entry="first"``: the chain from the customer's first step-1 occurrence only;
    * ``entry="any"``: a chain from *any* step-1 occurrence (each start is followed
      greedily); the times to convert are those of the earliest start that reaches step k.
      With ``window=None`` this equals ``entry="first"`` and is what a "closed funnel"
      counts in path-analysis tools (ordered, other events allowed in between, earliest
      match; e.g. PostHog's ordered funnels).

    Matching earliest occurrences is optimal: an earlier match at step k can never lose a
    completion that a later one would find, so these counts are exact.

    Parameters
    ----------
    data
        The data: events with ``customer_id``, ``ts``, ``event`` (and ``channel`` for
        ``by="entry_channel"``); orders for an ``"order"`` step. A bare events frame is
        loaded first: ``cxkit.load({"events": df})``.
    steps
        Each an event name, a list of event names (any of them), ``"order"`` (a row of
        the orders table), or a stage name of the stage map (any occurrence of that
        stage's rule, e.g. ``"purchase"`` = any order). A name that is both a stage and
        an event is read as the stage; write it as a one-item list (``["purchase"]``) to
        mean the event.
    window
        None, a number of days, a ``timedelta`` or text such as ``"7D"``.
    entry
        ``"any"`` (default) or ``"first"``.
    by
        None; ``"entry_channel"`` (channel of the customer's first step-1 occurrence); a
        ``customers`` column such as ``"acquisition_channel"`` or ``"persona"``; or a
        DataFrame/Series mapping customer_id to a group.
    as_of
        Nothing after it is used (:func:`cxkit.data.resolve_as_of`).
    stage_map
        Stage rules used when a step is a stage name.
    reached
        The customers' chains for these ``steps``, ``window``, ``entry`` and ``as_of``
        from :func:`funnel_reached`, to share one matching between breakdowns; by
        default matched here.

    Returns
    -------
    pandas.DataFrame
        One row per (group, step): [group column named after ``by``], ``step``,
        ``step_name``, ``n_customers``, ``rate_from_start``, ``rate_from_previous``,
        Wilson 95% ``ci_low``/``ci_high`` (of ``rate_from_start``) and
        ``ci_low_from_previous``/``ci_high_from_previous``, ``n_previous``, ``small_n``,
        median and p90 time to convert from the previous step and from step 1 in hours
        and in days (NaN at step 1). Groups are those with at least one customer at step 1.

    Raises
    ------
    NotAvailableError
        When a step needs a table (or a breakdown a column) the data does not have.
    UsageError
        On bad steps, window, entry or by.

    Examples
    --------
    >>> import pandas as pd, cxkit
    >>> ev = pd.DataFrame({
    ...     "customer_id": ["a", "a", "a", "b", "b"],
    ...     "event": ["visit", "view", "buy", "visit", "buy"],
    ...     "ts": pd.to_datetime(["2024-01-01", "2024-01-02", "2024-01-09",
    ...                           "2024-01-01", "2024-01-03"])})
    >>> data = cxkit.load({"events": ev})
    >>> funnel(data, ["visit", "view", "buy"]).n_customers.tolist()
    [2, 1, 1]
    >>> funnel(data, ["visit", "view", "buy"], window="7D").n_customers.tolist()
    [2, 1, 0]
    """
    steps = _check_steps(steps)
    end = resolve_as_of(data, as_of)
    rows, by_name = _chain(
        data.upto(end),
        steps,
        window=window,
        entry=entry,
        by=by,
        stage_map=stage_map,
        reached=reached,
    )
    agg = _aggregate(rows).to_pandas()
    return _funnel_frame(agg, [_step_label(s) for s in steps], by_name)


def funnel_period_compare(
    data: CXData,
    steps: Sequence[Step],
    *,
    period_days: float = 90,
    window: Window = None,
    entry: str = "any",
    as_of: AsOf = None,
    stage_map: StageMapSpec = None,
    reached: ir.Table | None = None,
) -> pd.DataFrame:
    """Compare the final conversion of customers who entered this period and the previous.

    Customers are assigned to a period by their first step-1 occurrence. The current
    period is the ``period_days`` ending at ``as_of`` (or at ``as_of − window`` when a
    window is set, so that every entrant had the whole window to convert); the previous
    period is the same length just before it.

    Parameters
    ----------
    data
        The data.
    steps, window, entry, stage_map
        As in :func:`funnel`.
    period_days
        The length of each period, in days.
    as_of
        The end of the current period (:func:`cxkit.data.resolve_as_of`); nothing after
        it is used.
    reached
        As in :func:`funnel` (the chains at the same ``as_of``).

    Returns
    -------
    pandas.DataFrame
        Two rows (``previous``, ``current``): ``period``, ``period_start``, ``period_end``,
        ``n_start``, ``n_converted``, ``rate``, ``ci_low``, ``ci_high``; the current row
        also carries ``diff`` (current − previous), ``diff_ci_low``, ``diff_ci_high``,
        ``p_value`` (two-proportion z-test); ``small_n`` per row.
    """
    steps = _check_steps(steps)
    as_of_ts = resolve_as_of(data, as_of)
    win_s = _window_seconds(window)
    end = as_of_ts - pd.Timedelta(seconds=win_s or 0)
    length_s = float(period_days) * 86400.0
    rows, _ = _chain(
        data.upto(as_of_ts), steps, window=window, entry=entry, by=None, stage_map=stage_map,
        period=(end, length_s), reached=reached,
    )  # fmt: skip
    agg = _aggregate(rows).to_pandas()
    last = len(steps)
    out = []
    for i, name in enumerate(("previous", "current")):
        sub = agg[agg.grp == name]
        n = int(sub.loc[sub.step == 1, "n_customers"].sum())
        k = int(sub.loc[sub.step == last, "n_customers"].sum())
        p_end = end - pd.Timedelta(seconds=length_s * (1 - i))
        out.append(
            {
                "period": name,
                "period_start": p_end - pd.Timedelta(seconds=length_s),
                "period_end": p_end,
                "n_start": n,
                "n_converted": k,
            }
        )
    df = pd.DataFrame(out)
    with np.errstate(divide="ignore", invalid="ignore"):
        df["rate"] = df.n_converted / df.n_start
    df["ci_low"], df["ci_high"] = stats.wilson_ci(df.n_converted, df.n_start)
    t = stats.two_proportion_test(
        df.n_converted[1], df.n_start[1], df.n_converted[0], df.n_start[0]
    )
    for col, key in (("diff", "diff"), ("diff_ci_low", "ci_low"), ("diff_ci_high", "ci_high")):
        df[col] = [np.nan, t[key]]
    df["p_value"] = [np.nan, t["p_value"]]
    df["small_n"] = stats.is_small(df.n_start)
    return df


# --------------------------------------------------------------------------------------
# stage funnel and stage conversion
# --------------------------------------------------------------------------------------


def stage_funnel(
    data: CXData,
    stage_map: StageMapSpec = None,
    *,
    by: GroupBy = None,
    as_of: AsOf = None,
) -> pd.DataFrame:
    """Count the customers who reached each stage: the lifecycle ladder.

    Unlike :func:`funnel`, a stage may be reached at the same time as the previous one
    (e.g. a purchase with no tracked consideration event, DESIGN §7): the stage times are
    monotone (:func:`~cxkit.lifecycle.stage_times_expr`).

    Parameters
    ----------
    data
        The data.
    stage_map
        The stage rules; default :data:`~cxkit.lifecycle.DEFAULT_STAGES`.
    by
        A breakdown, as in :func:`funnel` (not ``"entry_channel"``).
    as_of
        Nothing after it is used (:func:`cxkit.data.resolve_as_of`).

    Returns
    -------
    pandas.DataFrame
        The columns of :func:`funnel`, one row per stage (per group); times to convert
        are between the stage-reached times (from the previous stage and from the first).
    """
    end = resolve_as_of(data, as_of)
    data = data.upto(end)
    smap = load_stage_map(stage_map)
    names = list(smap)
    st = stage_times_expr(data, smap, as_of=end)
    groups, by_name = group_table(data, by, st.select("customer_id"))
    groups = groups.mutate(grp=groups.grp.fill_null("(missing)"))
    st = st.join(groups, "customer_id")
    first = f"{names[0]}_at"
    rows = []
    for k, n in enumerate(names):
        col = f"{n}_at"
        sub = st.filter(st[col].notnull())
        prev = f"{names[k - 1]}_at" if k else col
        null = ibis.null().cast("float64")
        rows.append(
            sub.select(
                "customer_id",
                "grp",
                step=ibis.literal(k + 1, "int64"),
                from_prev_s=_seconds_between(sub[col], sub[prev]) if k else null,
                from_start_s=_seconds_between(sub[col], sub[first]) if k else null,
            )
        )
    agg = _aggregate(union_all(rows)).to_pandas()
    return _funnel_frame(agg, names, by_name)


def default_pairs(names: Sequence[str]) -> list[tuple[str, str]]:
    """Return the stage pairs :func:`stage_conversion` reports by default.

    Parameters
    ----------
    names
        The stage names, in order.

    Returns
    -------
    list of (str, str)
        The consecutive stages, plus purchase -> advocacy when both are there.

    Examples
    --------
    >>> default_pairs(["purchase", "retention", "advocacy"])
    [('purchase', 'retention'), ('retention', 'advocacy'), ('purchase', 'advocacy')]
    """
    pairs = list(itertools.pairwise(names))
    if "purchase" in names and "advocacy" in names:
        pairs.append(("purchase", "advocacy"))
    return pairs


def stage_conversion(
    data: CXData,
    pairs: Sequence[tuple[str, str]] | None = None,
    *,
    stage_map: StageMapSpec = None,
    by: GroupBy = None,
    as_of: AsOf = None,
    monotone: bool = False,
) -> pd.DataFrame:
    """Compute conversion between pairs of stages: of those who reached A, who reached B.

    Parameters
    ----------
    data
        The data.
    pairs
        ``[(from, to), ...]``; default the consecutive stages plus purchase -> advocacy
        (:func:`default_pairs`).
    stage_map
        The stage rules; default :data:`~cxkit.lifecycle.DEFAULT_STAGES`.
    by
        A breakdown, as in :func:`funnel` (not ``"entry_channel"``).
    as_of
        Nothing after it is used (:func:`cxkit.data.resolve_as_of`).
    monotone
        Default False: each stage by its own rule, so purchase -> retention is the share of
        buyers with a repeat order on a later day (an advocate without a repeat order does
        not count as retained) — the rates a data-generating process defines.

    Returns
    -------
    pandas.DataFrame
        [group,] ``from_stage``, ``to_stage``, ``n_from``, ``n_to``, ``rate``, ``ci_low``,
        ``ci_high`` (Wilson 95%), ``small_n``.

    Raises
    ------
    UsageError
        When a pair names a stage that is not in the stage map.
    """
    end = resolve_as_of(data, as_of)
    data = data.upto(end)
    smap = load_stage_map(stage_map)
    names = list(smap)
    if pairs is None:
        pairs = default_pairs(names)
    for a, b in pairs:
        for s in (a, b):
            if s not in smap:
                raise UsageError(f"unknown stage {s!r}; stages: {names}")
    st = stage_times_expr(data, smap, as_of=end, monotone=monotone)
    groups, by_name = group_table(data, by, st.select("customer_id"))
    groups = groups.mutate(grp=groups.grp.fill_null("(missing)"))
    st = st.join(groups, "customer_id")
    aggs = {}
    for i, (a, b) in enumerate(pairs):
        ca, cb = st[f"{a}_at"], st[f"{b}_at"]
        aggs[f"f{i}"] = ca.count()
        aggs[f"t{i}"] = ca.count(where=cb.notnull())
    res = st.group_by("grp").agg(**aggs).to_pandas()
    out = []
    for _, r in res.iterrows():
        for i, (a, b) in enumerate(pairs):
            out.append(
                {
                    "grp": r["grp"],
                    "from_stage": a,
                    "to_stage": b,
                    "n_from": int(r[f"f{i}"]),
                    "n_to": int(0 if pd.isna(r[f"t{i}"]) else r[f"t{i}"]),
                }
            )
    df = pd.DataFrame(out, columns=["grp", "from_stage", "to_stage", "n_from", "n_to"])
    with np.errstate(divide="ignore", invalid="ignore"):
        df["rate"] = df.n_to / df.n_from
    df["ci_low"], df["ci_high"] = stats.wilson_ci(df.n_to, df.n_from)
    df["small_n"] = stats.is_small(df.n_from)
    df = df.sort_values(["grp"], kind="stable").reset_index(drop=True)
    if by_name is None:
        return df.drop(columns="grp")
    return df.rename(columns={"grp": by_name})
