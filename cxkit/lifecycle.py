"""Lifecycle analysis: stages, funnels, cohorts, lifecycle states and journey paths.

Everything row-level is an ibis expression that runs in the engine (DuckDB by default;
written with portable operations only — joins, group-by ``min``/``count``, ``quantile``,
``truncate``, ``lag``/``row_number`` windows — so that it also runs on Spark and
PostgreSQL). Only per-customer-sized or smaller results come to pandas.

Definitions (DESIGN.md §7)
--------------------------
Stages
    awareness -> consideration -> purchase -> retention -> advocacy, from a configurable
    map (:data:`DEFAULT_STAGES`, a dict or a YAML file). A stage is *reached* at the first
    time its rule holds. With ``monotone=True`` (the default) a later stage without an
    earlier one counts as reaching the earlier one at the same time.
Funnel
    Per customer, step 1 is the first (``entry="first"``) or any (``entry="any"``)
    occurrence of step 1; each next step must occur *strictly after* the matched previous
    step (its earliest such occurrence); ``window`` bounds the time from the matched
    step-1 occurrence to the last step, inclusive. See :func:`funnel`.
Cohort retention
    Cohort = calendar period of first activity; cell (c, k) = share of cohort c active in
    period c + k; cells not observable yet are NaN.
Lifecycle states
    new / returning / resurrecting / dormant per period.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import ibis
import ibis.expr.types as ir
import numpy as np
import pandas as pd

from cxkit import stats
from cxkit.cache import run_cached
from cxkit.data import CXData, end_of_day, require_columns, resolve_as_of
from cxkit.errors import DataError, NotAvailableError, UsageError
from cxkit.findings import Finding

__all__ = [
    "DEFAULT_STAGES",
    "STAGES",
    "available_stages",
    "cohort_retention",
    "current_stage_counts",
    "findings",
    "funnel",
    "funnel_customers_expr",
    "funnel_period_compare",
    "group_tests",
    "journey_paths",
    "journey_sankey",
    "lifecycle_states",
    "load_stage_map",
    "stage_conversion",
    "stage_funnel",
    "stage_times_expr",
    "stages",
]

#: The five lifecycle stages, in order.
STAGES: tuple[str, ...] = ("awareness", "consideration", "purchase", "retention", "advocacy")

#: Default stage rules; they fit the demo data (cxkit.synth) and most event logs.
#:
#: Rule keys: ``events`` ("any" or a list of event names), ``orders`` ("any" — every
#: order; "repeat" — an order on a later calendar day than the customer's first order),
#: ``responses`` (``{"survey": "nps", "min_score": 9, "max_score": 10}``) and
#: ``min_rating`` (when the events table has a ``rating`` column, matching events with a
#: rating below it do not count). A stage's reached time is the earliest occurrence over
#: all its sources; the purchase stage is therefore reached at the first order.
DEFAULT_STAGES: dict[str, dict[str, Any]] = {
    "awareness": {"events": "any", "orders": "any"},
    "consideration": {"events": ["product_view", "add_to_cart", "pricing_view", "trial_start"]},
    "purchase": {"orders": "any"},
    "retention": {"orders": "repeat"},
    "advocacy": {
        "events": ["referral", "review"],
        "responses": {"survey": "nps", "min_score": 9, "max_score": 10},
    },
}

_RULE_KEYS = {"events", "orders", "responses", "min_rating"}
_ENTRIES = ("any", "first")
_PERIODS = {"D": "day", "W": "week", "M": "month", "Q": "quarter", "Y": "year"}
ALL = "all"

# --------------------------------------------------------------------------------------
# inputs
# --------------------------------------------------------------------------------------


class _Source:
    """The tables an analysis reads, already cut at as_of."""

    def __init__(
        self,
        events: ir.Table | None,
        orders: ir.Table | None = None,
        responses: ir.Table | None = None,
        customers: ir.Table | None = None,
        as_of: pd.Timestamp | None = None,
    ) -> None:
        self.events = events
        self.orders = orders
        self.responses = responses
        self.customers = customers
        self.as_of = as_of

    def need_events(self, analysis: str) -> ir.Table:
        if self.events is None:
            raise NotAvailableError("the table 'events'", analysis=analysis)
        return self.events


def _source(data: Any, as_of: Any = None, *, resolve: bool = False) -> _Source:
    """Accept a CXData, an events ibis table, or an events DataFrame."""
    if isinstance(data, CXData):
        cut = data.upto(as_of) if (as_of is not None or resolve) else data
        at = resolve_as_of(cut, as_of) if (as_of is not None or resolve) else None
        get = lambda n: cut.table(n) if n in cut else None  # noqa: E731
        return _Source(get("events"), get("orders"), get("responses"), get("customers"), at)
    if isinstance(data, pd.DataFrame):
        data = _events_from_frame(data)
    if isinstance(data, ir.Table):
        require_columns(
            data,
            ("customer_id", "ts", "event"),
            name="events",
            fix="give a table with customer_id, ts and event (or a CXData from cxkit.load)",
        )
        at = None
        if as_of is not None:
            at = pd.Timestamp(as_of)
            end = (
                at + pd.Timedelta(days=1) - pd.Timedelta(microseconds=1)
                if at == at.normalize()
                else at
            )
            data = data.filter(data.ts <= end.to_pydatetime())
        elif resolve:
            value = data.ts.max().to_pandas()
            at = pd.Timestamp(value) if value is not None and not pd.isna(value) else None
        return _Source(data, as_of=at)
    raise UsageError(
        f"expected a CXData, an ibis table or a pandas DataFrame of events, got {type(data).__name__}"
    )


def _events_from_frame(df: pd.DataFrame) -> ir.Table:
    out = df.copy()
    if "customer_id" in out.columns:
        out["customer_id"] = out["customer_id"].astype(str)
    if "ts" in out.columns and not pd.api.types.is_datetime64_any_dtype(out["ts"]):
        out["ts"] = pd.to_datetime(out["ts"], format="ISO8601")
    if "ts" in out.columns and getattr(out["ts"].dt, "tz", None) is not None:
        out["ts"] = out["ts"].dt.tz_convert("UTC").dt.tz_localize(None)
    if "ts" in out.columns:
        # Engines keep microseconds; drop finer digits instead of failing on them.
        out["ts"] = out["ts"].dt.floor("us")
    for col in ("event", "channel", "touchpoint"):
        if col in out.columns:
            out[col] = out[col].astype(object).where(out[col].notna(), None)
    return ibis.memtable(out)


def _opt_str(t: ir.Table, col: str) -> ir.Value:
    return t[col].cast("string") if col in t.columns else ibis.null().cast("string")


def _occ(t: ir.Table) -> ir.Table:
    """Normalise an occurrence table to (customer_id, ts, channel)."""
    return t.select(customer_id=t.customer_id, ts=t.ts, channel=_opt_str(t, "channel"))


# --------------------------------------------------------------------------------------
# stages
# --------------------------------------------------------------------------------------


def load_stage_map(spec: Mapping[str, Any] | str | Path | None = None) -> dict[str, dict]:
    """Read and check a stage map (dict, YAML file path, YAML text, or None = default).

    Parameters
    ----------
    spec
        ``{stage: rule}`` in stage order; see :data:`DEFAULT_STAGES` for the rule keys.

    Returns
    -------
    dict
        The checked map, in stage order.

    Raises
    ------
    UsageError
        On an empty map, a rule that is not a mapping, or an unknown rule key.

    Examples
    --------
    >>> list(load_stage_map())
    ['awareness', 'consideration', 'purchase', 'retention', 'advocacy']
    >>> load_stage_map("visit: {events: [site_visit]}\\nbuy: {orders: any}")["buy"]
    {'orders': 'any'}
    """
    if spec is None:
        return {k: dict(v) for k, v in DEFAULT_STAGES.items()}
    if isinstance(spec, str | Path):
        import yaml

        text = Path(spec).read_text() if Path(str(spec)).suffix in (".yml", ".yaml") else spec
        spec = yaml.safe_load(text)
        if isinstance(spec, Mapping) and "stages" in spec:
            spec = spec["stages"]
    if not isinstance(spec, Mapping) or not spec:
        raise UsageError(f"a stage map must be a non-empty mapping of stage -> rule, got {spec!r}")
    out: dict[str, dict] = {}
    for name, rule in spec.items():
        if not isinstance(rule, Mapping):
            raise UsageError(f"stage {name!r}: the rule must be a mapping, got {rule!r}")
        bad = set(rule) - _RULE_KEYS
        if bad:
            raise UsageError(
                f"stage {name!r}: unknown rule key(s) {sorted(bad)}; valid: {sorted(_RULE_KEYS)}"
            )
        orders = rule.get("orders")
        if orders not in (None, "any", "repeat", "first"):
            raise UsageError(
                f"stage {name!r}: orders must be 'any', 'first' or 'repeat', got {orders!r}"
            )
        out[str(name)] = dict(rule)
    return out


def _rule_occurrences(src: _Source, rule: Mapping[str, Any]) -> ir.Table | None:
    """All occurrences of one stage rule as (customer_id, ts, channel), or None."""
    parts: list[ir.Table] = []
    ev_rule = rule.get("events")
    if ev_rule is not None and src.events is not None:
        e = src.events
        if ev_rule != "any":
            names = [ev_rule] if isinstance(ev_rule, str) else list(ev_rule)
            e = e.filter(e.event.isin(names))
        if rule.get("min_rating") is not None and "rating" in e.columns:
            e = e.filter(e.rating.isnull() | (e.rating >= rule["min_rating"]))
        parts.append(_occ(e))
    ord_rule = rule.get("orders")
    if ord_rule is not None and src.orders is not None:
        o = src.orders
        if ord_rule == "repeat":
            first = o.group_by("customer_id").agg(first_day=o.ts.min().date())
            j = o.join(first, "customer_id")
            o = j.filter(j.ts.date() > j.first_day)
        parts.append(_occ(o))
    resp_rule = rule.get("responses")
    if resp_rule is not None and src.responses is not None:
        r = src.responses
        if isinstance(resp_rule, Mapping):
            if "survey" in resp_rule:
                r = r.filter(r.survey == resp_rule["survey"])
            if "min_score" in resp_rule:
                r = r.filter(r.score >= int(resp_rule["min_score"]))
            if "max_score" in resp_rule:
                r = r.filter(r.score <= int(resp_rule["max_score"]))
        parts.append(_occ(r))
    if not parts:
        return None
    out = parts[0]
    for p in parts[1:]:
        out = out.union(p, distinct=False)
    return out


def available_stages(
    data: Any, stage_map: Mapping[str, Any] | str | Path | None = None
) -> tuple[dict[str, dict], dict[str, str]]:
    """Split a stage map into the stages the data can support and those it cannot.

    A stage is available when at least one of its source tables is present, except that a
    rule on *any* event (awareness: first contact) needs the events table: in orders
    alone the first contact is the first purchase.

    Returns
    -------
    (available, missing)
        ``available``: the stage map restricted to stages with at least one source table
        present; ``missing``: stage -> the tables it would need, in plain words.

    Examples
    --------
    >>> import pandas as pd, cxkit
    >>> orders = pd.DataFrame({"order_id": ["1"], "customer_id": ["a"],
    ...                        "ts": pd.to_datetime(["2024-01-02"]), "amount": [5.0]})
    >>> ok, missing = available_stages(cxkit.load({"orders": orders}))
    >>> list(ok), missing["consideration"]
    (['purchase', 'retention'], "table 'events'")
    """
    smap = load_stage_map(stage_map)
    src = _source(data)

    def _ok(rule: Mapping[str, Any]) -> bool:
        if rule.get("events") == "any" and src.events is None:
            return False  # first contact cannot be seen in orders alone
        return _rule_occurrences(src, rule) is not None

    ok = {n: r for n, r in smap.items() if _ok(r)}
    missing = {
        n: "table 'events'"
        if r.get("events") == "any"
        else " or ".join(f"table '{k}'" for k in ("events", "orders", "responses") if k in r)
        for n, r in smap.items()
        if n not in ok
    }
    return ok, missing


def stage_times_expr(
    data: Any,
    stage_map: Mapping[str, Any] | str | Path | None = None,
    *,
    as_of: Any = None,
    monotone: bool = True,
) -> ir.Table:
    """Per customer, when each stage was first reached — as an ibis expression.

    Columns: ``customer_id``, ``<stage>_at`` per stage (NULL = not reached by as_of) and
    ``current_stage`` (the last stage reached, in stage order).

    With ``monotone=True`` a stage's time is the earliest of its own rule and every later
    stage's time (DESIGN §7: a later stage without an earlier one counts as reaching the
    earlier one at the same time); with ``monotone=False`` each stage is its own rule.
    """
    smap = load_stage_map(stage_map)
    src = _source(data, as_of)
    names = list(smap)
    parts = []
    for i, name in enumerate(names):
        occ = _rule_occurrences(src, smap[name])
        if occ is not None:
            parts.append(occ.select("customer_id", "ts", stage_ix=ibis.literal(i, "int64")))
    if not parts:
        raise NotAvailableError("an events or orders table", analysis="Lifecycle stages")
    u = parts[0]
    for p in parts[1:]:
        u = u.union(p, distinct=False)
    raw = u.group_by("customer_id").agg(
        **{f"{n}_at": u.ts.min(where=u.stage_ix == i) for i, n in enumerate(names)}
    )
    cols: dict[str, ir.Value] = {}
    later: ir.Value | None = None
    for n in reversed(names):
        own = raw[f"{n}_at"]
        if monotone and later is not None:
            val = ibis.cases(
                (own.isnull(), later),
                (later.isnull(), own),
                (own <= later, own),
                else_=later,
            )
        else:
            val = own
        cols[n] = val
        later = val
    current = ibis.cases(
        *[(cols[n].notnull(), ibis.literal(n)) for n in reversed(names)], else_=ibis.null()
    ).cast("string")
    return raw.select("customer_id", **{f"{n}_at": cols[n] for n in names}, current_stage=current)


def stages(
    data: Any,
    stage_map: Mapping[str, Any] | str | Path | None = None,
    *,
    as_of: Any = None,
    monotone: bool = True,
) -> pd.DataFrame:
    """Per customer: when each stage was first reached and the current stage at as_of.

    Parameters
    ----------
    data
        A :class:`~cxkit.data.CXData` (events, orders and responses are used when present),
        or an events table / DataFrame.
    stage_map
        The stage rules (dict, YAML path or text); default :data:`DEFAULT_STAGES`.
    as_of
        Nothing after it is used; default the latest timestamp.
    monotone
        Fill earlier stages from later ones (DESIGN §7). Default True.

    Returns
    -------
    pandas.DataFrame
        One row per customer with any activity: ``customer_id``, ``<stage>_at`` columns,
        ``current_stage``; sorted by customer_id.

    Examples
    --------
    >>> import pandas as pd, cxkit
    >>> ev = pd.DataFrame({"customer_id": ["a", "a"], "event": ["site_visit", "review"],
    ...                    "ts": pd.to_datetime(["2024-01-01", "2024-01-05"])})
    >>> s = stages(cxkit.load({"events": ev}))
    >>> s.current_stage.tolist(), str(s.purchase_at[0])
    (['advocacy'], '2024-01-05 00:00:00')
    """
    expr = stage_times_expr(data, stage_map, as_of=as_of, monotone=monotone)
    df = expr.to_pandas()
    for col in df.columns:
        if col.endswith("_at"):
            df[col] = pd.to_datetime(df[col]).astype("datetime64[ns]")
    df["customer_id"] = df["customer_id"].astype("str")
    return df.sort_values("customer_id", kind="stable").reset_index(drop=True)


def current_stage_counts(
    data: Any, stage_map: Mapping[str, Any] | str | Path | None = None, *, as_of: Any = None
) -> pd.DataFrame:
    """How many customers are in each stage at as_of (their last stage reached), with share."""
    smap = load_stage_map(stage_map)
    e = stage_times_expr(data, smap, as_of=as_of)
    df = e.group_by("current_stage").agg(n_customers=e.count()).to_pandas()
    df = df.set_index("current_stage").reindex(list(smap), fill_value=0).reset_index()
    df = df.rename(columns={"current_stage": "stage"})
    df["n_customers"] = df["n_customers"].astype("int64")
    total = df.n_customers.sum()
    df["share"] = df.n_customers / total if total else np.nan
    return df


# --------------------------------------------------------------------------------------
# groups (breakdowns)
# --------------------------------------------------------------------------------------


def _group_table(src: _Source, by: Any, entry_tbl: ir.Table) -> tuple[ir.Table, str | None]:
    """(customer_id, grp) for every entering customer; grp is a string."""
    if by is None:
        return entry_tbl.select("customer_id", grp=ibis.literal(ALL)), None
    if isinstance(by, str) and by == "entry_channel":
        return entry_tbl.select("customer_id", grp=entry_tbl.entry_channel), "entry_channel"
    if isinstance(by, pd.Series):
        by = by.rename(by.name or "group").rename_axis("customer_id").reset_index()
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
        if src.customers is None or by not in src.customers.columns:
            raise NotAvailableError(
                f"table 'customers' with column '{by}'", analysis=f"The breakdown by {by}"
            )
        c = src.customers
        j = entry_tbl.left_join(c, entry_tbl.customer_id == c.customer_id)
        return j.select(customer_id=entry_tbl.customer_id, grp=c[by].cast("string")), by
    raise UsageError(
        "by must be None, 'entry_channel', a customers column name, or a DataFrame/Series "
        f"mapping customer_id to a group; got {type(by).__name__}"
    )


# --------------------------------------------------------------------------------------
# funnel
# --------------------------------------------------------------------------------------


def _step_label(step: Any) -> str:
    if isinstance(step, str):
        return step
    return " | ".join(str(s) for s in step)


def _step_occurrences(src: _Source, step: Any, smap: Mapping[str, Mapping]) -> ir.Table:
    if isinstance(step, str) and step in smap:
        occ = _rule_occurrences(src, smap[step])
        if occ is None:
            raise NotAvailableError(
                f"the tables behind the stage '{step}' ({', '.join(smap[step])})",
                analysis="This funnel",
            )
        return occ
    if isinstance(step, str) and step in ("order", "orders"):
        if src.orders is None:
            raise NotAvailableError("the table 'orders'", analysis="This funnel")
        return _occ(src.orders)
    names = [step] if isinstance(step, str) else list(step)
    if not names or not all(isinstance(n, str) for n in names):
        raise UsageError(f"a step must be an event name, a stage or a list of names, got {step!r}")
    e = src.need_events("This funnel")
    return _occ(e.filter(e.event.isin(names)))


def _window_seconds(window: Any) -> float | None:
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


def _check_steps(steps: Any) -> list[Any]:
    if isinstance(steps, str) or not isinstance(steps, Sequence) or len(steps) == 0:
        raise UsageError(f"steps must be a non-empty list of event or stage names, got {steps!r}")
    return list(steps)


def _chain(
    src: _Source,
    steps: list[Any],
    *,
    window: Any,
    entry: str,
    by: Any,
    stage_map: Any,
    period: tuple[pd.Timestamp, float] | None = None,
) -> tuple[ir.Table, str | None]:
    """Per step, the rows (customer_id, grp, step, from_prev_s, from_start_s) of customers
    who reached it, as one ibis union."""
    if entry not in _ENTRIES:
        raise UsageError(f"entry must be 'any' or 'first', got {entry!r}")
    smap = load_stage_map(stage_map)
    win_s = _window_seconds(window)
    occ = [_step_occurrences(src, s, smap) for s in steps]
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
        groups, by_name = _group_table(src, by, entry_tbl)
        groups = groups.mutate(grp=groups.grp.fill_null("(missing)"))

    if by is None and period is None:
        base = entry_tbl.mutate(grp=ibis.literal(ALL))
    else:
        base = entry_tbl.join(groups, "customer_id")
    if entry == "first":
        cur = base.select("customer_id", "grp", start=base.entry_at, prev=base.entry_at)
    else:
        starts = e1.select("customer_id", start=e1.ts).distinct()
        starts = starts.join(base.select("customer_id", "grp"), "customer_id")
        cur = starts.select("customer_id", "grp", "start", prev=starts.start)

    def _secs(a: ir.Value, b: ir.Value) -> ir.Value:
        return a.epoch_seconds().cast("float64") - b.epoch_seconds().cast("float64")

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
                from_prev_s=_secs(reach.at, reach.prev),
                from_start_s=_secs(reach.at, reach.start),
            )
        )
        cur = nxt.select("customer_id", "grp", "start", prev=nxt.at)
    out = rows[0]
    for r in rows[1:]:
        out = out.union(r, distinct=False)
    return out, by_name


def funnel_customers_expr(
    data: Any,
    steps: Sequence[Any],
    *,
    window: Any = None,
    entry: str = "any",
    by: Any = None,
    as_of: Any = None,
    stage_map: Any = None,
) -> ir.Table:
    """The funnel per customer and step reached, as an ibis expression.

    Columns: ``customer_id``, ``grp``, ``step`` (1-based), ``from_prev_s`` and
    ``from_start_s`` (seconds from the matched previous step / matched step 1). One row
    per customer per step reached. See :func:`funnel` for the semantics.
    """
    src = _source(data, as_of)
    expr, _ = _chain(
        src, _check_steps(steps), window=window, entry=entry, by=by, stage_map=stage_map
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
    data_or_events: Any,
    steps: Sequence[Any],
    *,
    window: Any = None,
    entry: str = "any",
    by: Any = None,
    as_of: Any = None,
    stage_map: Any = None,
) -> pd.DataFrame:
    """An ordered conversion funnel, computed in the engine.

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
    data_or_events
        A :class:`~cxkit.data.CXData`, or an events table (ibis or pandas) with
        ``customer_id``, ``ts``, ``event`` (and ``channel`` for ``by="entry_channel"``).
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
        Nothing after it is used.
    stage_map
        Stage rules used when a step is a stage name.

    Returns
    -------
    pandas.DataFrame
        One row per (group, step): [group column named after ``by``], ``step``,
        ``step_name``, ``n_customers``, ``rate_from_start``, ``rate_from_previous``,
        Wilson 95% ``ci_low``/``ci_high`` (of ``rate_from_start``) and
        ``ci_low_from_previous``/``ci_high_from_previous``, ``n_previous``, ``small_n``,
        median and p90 time to convert from the previous step and from step 1 in hours
        and in days (NaN at step 1). Groups are those with at least one customer at step 1.

    Examples
    --------
    >>> import pandas as pd
    >>> ev = pd.DataFrame({
    ...     "customer_id": ["a", "a", "a", "b", "b"],
    ...     "event": ["visit", "view", "buy", "visit", "buy"],
    ...     "ts": pd.to_datetime(["2024-01-01", "2024-01-02", "2024-01-09",
    ...                           "2024-01-01", "2024-01-03"])})
    >>> f = funnel(ev, ["visit", "view", "buy"])
    >>> f.n_customers.tolist()
    [2, 1, 1]
    >>> funnel(ev, ["visit", "view", "buy"], window="7D").n_customers.tolist()
    [2, 1, 0]
    """
    steps = _check_steps(steps)
    src = _source(data_or_events, as_of)
    rows, by_name = _chain(src, steps, window=window, entry=entry, by=by, stage_map=stage_map)
    agg = _aggregate(rows).to_pandas()
    return _funnel_frame(agg, [_step_label(s) for s in steps], by_name)


def group_tests(funnel_frame: pd.DataFrame, *, step: int | None = None) -> pd.DataFrame:
    """Each group's conversion to ``step`` (default: the last) against the rest.

    Two-proportion z-test (``stats.two_proportion_test``) of the group against all other
    groups pooled, Holm-adjusted over the groups.

    Returns
    -------
    pandas.DataFrame
        One row per group: group, ``n_start``, ``n_converted``, ``rate``, ``ci_low``,
        ``ci_high``, ``rate_rest``, ``diff``, ``diff_ci_low``, ``diff_ci_high``,
        ``p_value``, ``p_holm``, ``significant`` (Holm p < 0.05, neither side small),
        ``small_n``; sorted by rate, highest first.
    """
    fixed = {
        "step", "step_name", "n_customers", "rate_from_start", "rate_from_previous", "ci_low",
        "ci_high", "ci_low_from_previous", "ci_high_from_previous", "n_previous", "small_n",
    }  # fmt: skip
    gcols = [c for c in funnel_frame.columns if c not in fixed and "_time_" not in c]
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


def funnel_period_compare(
    data_or_events: Any,
    steps: Sequence[Any],
    *,
    period_days: float = 90,
    window: Any = None,
    entry: str = "any",
    as_of: Any = None,
    stage_map: Any = None,
) -> pd.DataFrame:
    """Final conversion of customers who entered this period vs the previous one.

    Customers are assigned to a period by their first step-1 occurrence. The current
    period is the ``period_days`` ending at ``as_of`` (or at ``as_of − window`` when a
    window is set, so that every entrant had the whole window to convert); the previous
    period is the same length just before it.

    Returns
    -------
    pandas.DataFrame
        Two rows (``previous``, ``current``): ``period``, ``period_start``, ``period_end``,
        ``n_start``, ``n_converted``, ``rate``, ``ci_low``, ``ci_high``; the current row
        also carries ``diff`` (current − previous), ``diff_ci_low``, ``diff_ci_high``,
        ``p_value`` (two-proportion z-test).
    """
    steps = _check_steps(steps)
    src = _source(data_or_events, as_of, resolve=True)
    if src.as_of is None:
        raise DataError("no timestamps to define periods", table="events", fix="check the data")
    win_s = _window_seconds(window)
    end = end_of_day(src.as_of) - pd.Timedelta(seconds=win_s or 0)
    length_s = float(period_days) * 86400.0
    rows, _ = _chain(
        src, steps, window=window, entry=entry, by=None, stage_map=stage_map,
        period=(end, length_s),
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
    data: Any,
    stage_map: Mapping[str, Any] | str | Path | None = None,
    *,
    by: Any = None,
    as_of: Any = None,
) -> pd.DataFrame:
    """The lifecycle ladder: customers who reached each stage (monotone stage times).

    Same columns as :func:`funnel`, with one row per stage; times to convert are between
    the stage-reached times (from the previous stage and from awareness). Unlike
    :func:`funnel`, a stage may be reached at the same time as the previous one (e.g. a
    purchase with no tracked consideration event, DESIGN §7).
    """
    smap = load_stage_map(stage_map)
    src = _source(data, as_of)
    names = list(smap)
    st = stage_times_expr(data, smap, as_of=as_of)
    groups, by_name = _group_table(src, by, st.select("customer_id"))
    groups = groups.mutate(grp=groups.grp.fill_null("(missing)"))
    st = st.join(groups, "customer_id")

    def _secs(a: ir.Value, b: ir.Value) -> ir.Value:
        return a.epoch_seconds().cast("float64") - b.epoch_seconds().cast("float64")

    first = f"{names[0]}_at"
    rows = []
    for k, n in enumerate(names):
        col = f"{n}_at"
        sub = st.filter(st[col].notnull())
        prev = f"{names[k - 1]}_at" if k else col
        rows.append(
            sub.select(
                "customer_id",
                "grp",
                step=ibis.literal(k + 1, "int64"),
                from_prev_s=_secs(sub[col], sub[prev]) if k else ibis.null().cast("float64"),
                from_start_s=_secs(sub[col], sub[first]) if k else ibis.null().cast("float64"),
            )
        )
    u = rows[0]
    for r in rows[1:]:
        u = u.union(r, distinct=False)
    agg = _aggregate(u).to_pandas()
    return _funnel_frame(agg, names, by_name)


def stage_conversion(
    data: Any,
    pairs: Sequence[tuple[str, str]] | None = None,
    *,
    stage_map: Mapping[str, Any] | str | Path | None = None,
    by: Any = None,
    as_of: Any = None,
    monotone: bool = False,
) -> pd.DataFrame:
    """Conversion between pairs of stages: of those who reached A, the share who reached B.

    Parameters
    ----------
    pairs
        ``[(from, to), ...]``; default the consecutive stages plus purchase -> advocacy.
    monotone
        Default False: each stage by its own rule, so purchase -> retention is the share of
        buyers with a repeat order on a later day (an advocate without a repeat order does
        not count as retained) — the rates a data-generating process defines.

    Returns
    -------
    pandas.DataFrame
        [group,] ``from_stage``, ``to_stage``, ``n_from``, ``n_to``, ``rate``, ``ci_low``,
        ``ci_high`` (Wilson 95%), ``small_n``.
    """
    smap = load_stage_map(stage_map)
    names = list(smap)
    if pairs is None:
        pairs = list(itertools.pairwise(names))
        if "purchase" in names and "advocacy" in names:
            pairs.append(("purchase", "advocacy"))
    for a, b in pairs:
        for s in (a, b):
            if s not in smap:
                raise UsageError(f"unknown stage {s!r}; stages: {names}")
    src = _source(data, as_of)
    st = stage_times_expr(data, smap, as_of=as_of, monotone=monotone)
    groups, by_name = _group_table(src, by, st.select("customer_id"))
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


# --------------------------------------------------------------------------------------
# periods: cohorts and lifecycle states
# --------------------------------------------------------------------------------------


def _period_index(ts: ir.Value, period: str) -> ir.Value:
    """An integer index of the calendar period of ``ts`` (portable arithmetic)."""
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


def _index_to_start(ix: Any, period: str) -> pd.Timestamp:
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


def _period_label(ix: Any, period: str) -> str:
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


def _activity(src: _Source, activity: str, analysis: str) -> ir.Table:
    if activity not in ("any", "orders"):
        raise UsageError(f"activity must be 'any' or 'orders', got {activity!r}")
    parts = []
    if activity == "any" and src.events is not None:
        parts.append(src.events.select("customer_id", "ts"))
    if src.orders is not None:
        parts.append(src.orders.select("customer_id", "ts"))
    if not parts:
        need = "the table 'orders'" if activity == "orders" else "an events or orders table"
        raise NotAvailableError(need, analysis=analysis)
    out = parts[0]
    for p in parts[1:]:
        out = out.union(p, distinct=False)
    return out


def _last_complete_index(as_of: pd.Timestamp, period: str) -> int:
    """The last period fully observed at as_of (the as_of period counts if as_of is its last day)."""
    ix = _index_of(as_of, period)
    next_start = _index_to_start(ix + 1, period)
    if as_of.normalize() >= next_start - pd.Timedelta(days=1):
        return ix
    return ix - 1


def _active_periods(src: _Source, activity: str, period: str, analysis: str) -> ir.Table:
    act = _activity(src, activity, analysis)
    act = act.select("customer_id", pi=_period_index(act.ts, period))
    return act.distinct()


def cohort_retention(
    data: Any,
    *,
    period: str = "M",
    activity: str = "any",
    as_of: Any = None,
    max_periods: int | None = None,
) -> pd.DataFrame:
    """Cohort retention table: share of each cohort active k periods after its first.

    Parameters
    ----------
    data
        A :class:`~cxkit.data.CXData` or an events table.
    period
        ``"D"``, ``"W"`` (Monday start), ``"M"``, ``"Q"`` or ``"Y"``.
    activity
        ``"any"`` (any event or order) or ``"orders"`` (cohort = period of the first
        order; active = ordered).
    as_of
        Nothing after it is used. Periods after the last complete period at as_of are not
        observable: their cells are NaN (never 0).
    max_periods
        Keep columns k = 0..max_periods.

    Returns
    -------
    pandas.DataFrame
        Index ``cohort`` (period labels) plus a last row ``"all (size-weighted)"``;
        column ``customers`` (cohort size) then columns ``0, 1, 2, ...`` (shares). The
        last row is the size-weighted average over the cohorts observable at each k.
    """
    period = _check_period(period)
    src = _source(data, as_of, resolve=True)
    if src.as_of is None:
        raise DataError("no timestamps", table="events", fix="check the data")
    ap = _active_periods(src, activity, period, "Cohort retention")
    first = ap.group_by("customer_id").agg(cohort=ap.pi.min())
    j = ap.join(first, "customer_id")
    cells = j.group_by(["cohort", "pi"]).agg(active=j.count()).to_pandas()
    last = _last_complete_index(src.as_of, period)
    if cells.empty:
        return pd.DataFrame(columns=["customers", 0])
    cells = cells[cells.cohort <= last]
    cells["k"] = (cells.pi - cells.cohort).astype(int)
    sizes = cells[cells.k == 0].set_index("cohort").active
    cohorts = sorted(sizes.index)
    n_k = max(last - min(cohorts), 0) + 1 if cohorts else 1
    if max_periods is not None:
        n_k = min(n_k, max_periods + 1)
    act = cells.pivot_table(index="cohort", columns="k", values="active", aggfunc="sum")
    act = act.reindex(index=cohorts, columns=range(n_k)).fillna(0.0)
    observable = np.array([[c + k <= last for k in range(n_k)] for c in cohorts])
    size = sizes.reindex(cohorts).to_numpy(dtype=float)
    share = act.to_numpy(dtype=float) / size[:, None]
    share[~observable] = np.nan
    w_act = np.where(observable, act.to_numpy(dtype=float), 0).sum(axis=0)
    w_size = np.where(observable, size[:, None], 0).sum(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        avg = np.where(w_size > 0, w_act / w_size, np.nan)
    out = pd.DataFrame(share, columns=list(range(n_k)))
    out.insert(0, "customers", size.astype("int64"))
    out.index = [_period_label(c, period) for c in cohorts]
    avg_row = pd.DataFrame([[int(size.sum()), *avg]], columns=out.columns)
    avg_row.index = ["all (size-weighted)"]
    out = pd.concat([out, avg_row])
    out.index.name = "cohort"
    return out


def lifecycle_states(
    data: Any, *, period: str = "M", activity: str = "any", as_of: Any = None
) -> pd.DataFrame:
    """Counts of new / returning / resurrecting / dormant customers per period.

    new: first activity in this period; returning: active this and the previous period;
    resurrecting: active this period, not the previous one, and not new; dormant: active
    the previous period but not this one. Only complete periods at as_of are reported.

    Returns
    -------
    pandas.DataFrame
        ``period`` (label), ``period_start``, ``new``, ``returning``, ``resurrecting``,
        ``dormant``, ``active`` (= new + returning + resurrecting).
    """
    period = _check_period(period)
    src = _source(data, as_of, resolve=True)
    if src.as_of is None:
        raise DataError("no timestamps", table="events", fix="check the data")
    ap = _active_periods(src, activity, period, "Lifecycle states")
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
    last = _last_complete_index(src.as_of, period)
    wide = counts.pivot_table(index="pi", columns="state", values="n", aggfunc="sum")
    lo = int(counts.pi.min())
    wide = wide.reindex(index=range(lo, last + 1), columns=cols).fillna(0).astype("int64")
    wide["active"] = wide.new + wide.returning + wide.resurrecting
    wide.insert(0, "period_start", [_index_to_start(i, period) for i in wide.index])
    wide.insert(0, "period", [_period_label(i, period) for i in wide.index])
    return wide.reset_index(drop=True).rename_axis(None, axis=1)


# --------------------------------------------------------------------------------------
# journeys
# --------------------------------------------------------------------------------------


def _sequences(
    src: _Source, kind: str, max_steps: int, stage_map: Any, as_of: Any, data: Any
) -> pd.DataFrame:
    """Per customer the first ``max_steps`` items (consecutive repeats collapsed)."""
    if kind == "stage":
        smap = load_stage_map(stage_map)
        st = stage_times_expr(data, smap, as_of=as_of, monotone=False)
        parts = []
        for i, n in enumerate(smap):
            s = st.filter(st[f"{n}_at"].notnull())
            parts.append(s.select("customer_id", ts=s[f"{n}_at"], item=ibis.literal(n), o=i))
        u = parts[0]
        for p in parts[1:]:
            u = u.union(p, distinct=False)
        w = ibis.window(group_by=u.customer_id, order_by=[u.ts, u.o])
        u = u.mutate(pos=ibis.row_number().over(w))
        df = u.filter(u.pos < max_steps).select("customer_id", "pos", "item").to_pandas()
        return df
    if kind not in ("touchpoint", "event", "channel"):
        raise UsageError(f"kind must be 'stage', 'touchpoint', 'event' or 'channel', got {kind!r}")
    e = src.need_events("Journey paths")
    if kind not in e.columns:
        raise NotAvailableError(f"table 'events' with column '{kind}'", analysis="Journey paths")
    e = e.filter(e[kind].notnull())
    order = [e.ts, e[kind]]
    if "event_id" in e.columns:
        order.append(e.event_id)
    w = ibis.window(group_by=e.customer_id, order_by=order)
    e = e.select(
        "customer_id",
        "ts",
        item=e[kind].cast("string"),
        prev_item=e[kind].lag().over(w),
        rn=ibis.row_number().over(w),
    )
    e = e.filter(e.prev_item.isnull() | (e.prev_item != e.item))
    w2 = ibis.window(group_by=e.customer_id, order_by=[e.rn])
    e = e.mutate(pos=ibis.row_number().over(w2))
    return e.filter(e.pos < max_steps).select("customer_id", "pos", "item").to_pandas()


def journey_paths(
    data: Any,
    *,
    kind: str = "touchpoint",
    max_steps: int = 4,
    top: int = 10,
    as_of: Any = None,
    stage_map: Any = None,
) -> pd.DataFrame:
    """The most common journeys: paths of the first ``max_steps`` touchpoints (or stages).

    Consecutive repeats are collapsed (``browse, browse, checkout`` -> ``browse >
    checkout``). With ``kind="stage"`` the path is the order in which the stages were first
    reached by their own rules.

    Returns
    -------
    pandas.DataFrame
        ``path``, ``steps``, ``customers``, ``share`` (of all customers with a path),
        ``ci_low``, ``ci_high``; the ``top`` most common, most common first.
    """
    src = _source(data, as_of)
    seq = _sequences(src, kind, max_steps, stage_map, as_of, data)
    if seq.empty:
        return pd.DataFrame(columns=["path", "steps", "customers", "share", "ci_low", "ci_high"])
    seq = seq.sort_values(["customer_id", "pos"], kind="stable")
    paths = seq.groupby("customer_id", sort=False)["item"].agg(lambda s: " > ".join(s))
    total = len(paths)
    counts = paths.value_counts()
    counts = counts.rename_axis("path").reset_index(name="customers")
    counts = counts.sort_values(["customers", "path"], ascending=[False, True], kind="stable")
    counts = counts.head(top).reset_index(drop=True)
    counts.insert(1, "steps", counts.path.str.count(" > ") + 1)
    counts["share"] = counts.customers / total
    counts["ci_low"], counts["ci_high"] = stats.wilson_ci(counts.customers, total)
    return counts


def journey_sankey(
    data: Any,
    *,
    kind: str = "touchpoint",
    max_steps: int = 4,
    top: int = 6,
    as_of: Any = None,
    stage_map: Any = None,
    end_label: str = "(end)",
) -> pd.DataFrame:
    """Transitions between consecutive journey steps, ready for :func:`cxkit.plots.sankey`.

    The ``top`` most frequent items are kept and the rest become ``"other"``; nodes are
    unique per step (``"1. browse"``, ``"2. browse"``, numbered from 1); a journey shorter than
    ``max_steps`` flows into one end node.

    Returns
    -------
    pandas.DataFrame
        ``source``, ``target``, ``customers`` (one row per link), sorted by source step.
    """
    src = _source(data, as_of)
    seq = _sequences(src, kind, max_steps, stage_map, as_of, data)
    cols = ["source", "target", "customers"]
    if seq.empty:
        return pd.DataFrame(columns=cols)
    keep = seq["item"].value_counts().head(top).index
    seq = seq.assign(item=seq["item"].where(seq["item"].isin(keep), "other"))
    seq = seq.sort_values(["customer_id", "pos"], kind="stable")
    seq["node"] = (seq.pos.astype(int) + 1).astype(str) + ". " + seq["item"].astype(str)
    seq["next"] = seq.groupby("customer_id")["node"].shift(-1)
    last_pos = seq.groupby("customer_id")["pos"].transform("max")
    short = (last_pos < max_steps - 1) & (seq.pos == last_pos)
    seq.loc[short, "next"] = end_label
    links = seq.dropna(subset=["next"]).groupby(["node", "next"]).size()
    links = (
        links.rename("customers").reset_index().rename(columns={"node": "source", "next": "target"})
    )
    links["customers"] = links.customers.astype("int64")
    links["_o"] = links.source.str.split(".").str[0].astype(int)
    links = links.sort_values(["_o", "customers"], ascending=[True, False], kind="stable")
    return links.drop(columns="_o").reset_index(drop=True)


# --------------------------------------------------------------------------------------
# findings
# --------------------------------------------------------------------------------------


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%"


@run_cached("lifecycle.findings", cut_at=None)  # as_of=None means "no cut" here
def findings(
    data: Any,
    *,
    stage_map: Any = None,
    by: str = "acquisition_channel",
    as_of: Any = None,
) -> list[Finding]:
    """The lifecycle findings for the reports: conversion, drop-off, time, groups, retention.

    Returns
    -------
    list of Finding
        ``overall_conversion`` (awareness -> purchase, Wilson interval), ``repeat_rate``
        (purchase -> retention by its own rule),
        ``biggest_dropoff`` (the stage step with the lowest rate from previous),
        ``time_to_purchase`` (median days from awareness), ``group_difference`` (one per
        significant group of ``by`` vs the rest, Holm-adjusted) and
        ``month1_retention`` (size-weighted month-1 retention), each when the data allows.
    """
    out: list[Finding] = []
    src = _source(data, as_of)
    smap, _ = available_stages(data, stage_map)
    names = list(smap)
    if not names:
        return out
    sf = stage_funnel(data, smap, as_of=as_of)
    if "purchase" in names and "retention" in names:
        rc = stage_conversion(data, [("purchase", "retention")], stage_map=smap, as_of=as_of)
        r = rc.iloc[0]
        if r.n_from > 0:
            out.append(
                Finding(
                    domain="lifecycle",
                    metric="repeat_rate",
                    value=float(r.rate),
                    unit="share",
                    sentence=(
                        f"{_pct(r.rate)} of {int(r.n_from):,} buyers ordered again on a later "
                        f"day (95% CI {_pct(r.ci_low)}–{_pct(r.ci_high)})."
                    ),
                    ci_low=float(r.ci_low),
                    ci_high=float(r.ci_high),
                    n=int(r.n_from),
                    importance=0.8,
                    small_n=bool(r.small_n),
                )
            )
    n1 = int(sf.n_customers.iloc[0])
    target = "purchase" if "purchase" in names else names[-1]
    row = sf[sf.step_name == target].iloc[0]
    if target != names[0]:
        out.append(
            Finding(
                domain="lifecycle",
                metric="overall_conversion",
                value=float(row.rate_from_start),
                unit="share",
                sentence=(
                    f"{_pct(row.rate_from_start)} of {n1:,} customers reached {target} "
                    f"(95% CI {_pct(row.ci_low)}–{_pct(row.ci_high)})."
                ),
                ci_low=float(row.ci_low),
                ci_high=float(row.ci_high),
                n=n1,
                importance=1.0,
                small_n=bool(n1 < stats.MIN_N),
            )
        )
        med = row.median_time_from_start_days
        if pd.notna(med):
            out.append(
                Finding(
                    domain="lifecycle",
                    metric="time_to_purchase",
                    value=float(med),
                    unit="days",
                    sentence=(
                        f"Half of those who reached {target} did so within {med:.1f} days of "
                        f"their first contact (90% within {row.p90_time_from_start_days:.1f} "
                        f"days; n = {int(row.n_customers):,})."
                    ),
                    n=int(row.n_customers),
                    importance=0.5,
                    small_n=bool(row.n_customers < stats.MIN_N),
                )
            )
    steps_ok = sf[(sf.step > 1) & ~sf.small_n & sf.rate_from_previous.notna()]
    if len(sf) > 2 and len(steps_ok):
        worst = steps_ok.sort_values("rate_from_previous", kind="stable").iloc[0]
        prev_name = sf.step_name[int(worst.step) - 2]
        out.append(
            Finding(
                domain="lifecycle",
                metric="biggest_dropoff",
                value=float(1 - worst.rate_from_previous),
                unit="share",
                sentence=(
                    f"The biggest drop-off is {prev_name} -> {worst.step_name}: only "
                    f"{_pct(worst.rate_from_previous)} move on (95% CI "
                    f"{_pct(worst.ci_low_from_previous)}–{_pct(worst.ci_high_from_previous)}, "
                    f"n = {int(worst.n_previous):,})."
                ),
                ci_low=float(1 - worst.ci_high_from_previous),
                ci_high=float(1 - worst.ci_low_from_previous),
                n=int(worst.n_previous),
                comparison=f"{prev_name} -> {worst.step_name}",
                importance=0.9,
            )
        )
    if by and src.customers is not None and by in src.customers.columns and target != names[0]:
        gf = stage_funnel(data, smap, by=by, as_of=as_of)
        gf = gf[gf.step_name.isin([names[0], target])].copy()
        gf["step"] = gf.step_name.map({names[0]: 1, target: 2})
        gt = group_tests(gf)
        for _, g in gt[gt.significant].iterrows():
            word = "higher" if g["diff"] > 0 else "lower"
            out.append(
                Finding(
                    domain="lifecycle",
                    metric="group_difference",
                    value=float(g.rate),
                    unit="share",
                    sentence=(
                        f"Customers from {by.replace('_', ' ')} '{g[by]}' reach {target} "
                        f"{word} than the rest: {_pct(g.rate)} vs {_pct(g.rate_rest)} "
                        f"(difference {100 * g['diff']:+.1f} points, Holm p = {g.p_holm:.3g}, "
                        f"n = {int(g.n_start):,})."
                    ),
                    ci_low=float(g.ci_low),
                    ci_high=float(g.ci_high),
                    n=int(g.n_start),
                    comparison="vs all other groups",
                    p_value=float(g.p_holm),
                    importance=0.6 + min(abs(float(g["diff"])), 0.3),
                    extra={"group": str(g[by]), "by": by},
                )
            )
    try:
        cr = cohort_retention(data, period="M", as_of=as_of)
    except (NotAvailableError, DataError):
        cr = None
    if cr is not None and 1 in cr.columns and pd.notna(cr.loc["all (size-weighted)", 1]):
        m1 = float(cr.loc["all (size-weighted)", 1])
        n_obs = int(cr.loc[cr.index[:-1], "customers"][cr[1].iloc[:-1].notna()].sum())
        lo, hi = stats.wilson_ci(round(m1 * n_obs), n_obs)
        out.append(
            Finding(
                domain="lifecycle",
                metric="month1_retention",
                value=m1,
                unit="share",
                sentence=(
                    f"{_pct(m1)} of customers are active again in the month after their first "
                    f"(size-weighted over cohorts, n = {n_obs:,})."
                ),
                ci_low=float(lo),
                ci_high=float(hi),
                n=n_obs,
                importance=0.4,
                small_n=bool(n_obs < stats.MIN_N),
            )
        )
    return out
