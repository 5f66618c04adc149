"""Lifecycle stages: the stage map, when each customer reached each stage, the current stage.

Stages (DESIGN.md §7): awareness -> consideration -> purchase -> retention -> advocacy,
from a configurable map (:data:`DEFAULT_STAGES`, a dict or a YAML file). A stage is
*reached* at the first time its rule holds. With ``monotone=True`` (the default) a later
stage without an earlier one counts as reaching the earlier one at the same time.

The names without a leading underscore that are not in ``__all__``
(:func:`optional_table`, :func:`occurrences`, :func:`rule_occurrences`,
:func:`union_all`) are the building blocks the sibling modules share.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping, Sequence
from pathlib import Path

import ibis
import ibis.expr.types as ir
import numpy as np
import pandas as pd
import yaml

from cxkit.data import CXData, resolve_as_of
from cxkit.errors import NotAvailableError, UsageError
from cxkit.result import AsOf

__all__ = [
    "DEFAULT_STAGES",
    "STAGES",
    "Rule",
    "StageMapSpec",
    "available_stages",
    "current_stage_counts",
    "describe_rule",
    "engine_cache",
    "load_stage_map",
    "stage_counts",
    "stage_times_expr",
    "stages",
]

#: The five lifecycle stages, in order.
STAGES: tuple[str, ...] = ("awareness", "consideration", "purchase", "retention", "advocacy")

#: One stage's rule (see :data:`DEFAULT_STAGES` for its keys).
Rule = dict[str, object]

#: What a ``stage_map`` argument accepts: ``{stage: rule}``, a YAML file path, YAML text,
#: or ``None`` for :data:`DEFAULT_STAGES`.
StageMapSpec = Mapping[str, Mapping[str, object]] | str | Path | None

#: Default stage rules; they fit the demo data (cxkit.synth) and most event logs.
#:
#: Rule keys: ``events`` ("any" or a list of event names), ``orders`` ("any" — every
#: order; "repeat" — an order on a later calendar day than the customer's first order),
#: ``responses`` (``{"survey": "nps", "min_score": 9, "max_score": 10}``) and
#: ``min_rating`` (when the events table has a ``rating`` column, matching events with a
#: rating below it do not count). A stage's reached time is the earliest occurrence over
#: all its sources; the purchase stage is therefore reached at the first order.
DEFAULT_STAGES: dict[str, Rule] = {
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


# --------------------------------------------------------------------------------------
# building blocks shared by the lifecycle modules
# --------------------------------------------------------------------------------------


def optional_table(data: CXData, name: str) -> ir.Table | None:
    """Return the typed table ``name`` of ``data``, or None when the data has none.

    Parameters
    ----------
    data
        The data.
    name
        A contract table name.

    Returns
    -------
    ibis.expr.types.Table or None
        The table expression.
    """
    return data.table(name) if name in data else None


def occurrences(t: ir.Table) -> ir.Table:
    """Normalise an activity table to ``(customer_id, ts, channel)``.

    Parameters
    ----------
    t
        Events, orders or responses (``channel`` is NULL when the table has none).

    Returns
    -------
    ibis.expr.types.Table
        One row per row of ``t``.
    """
    channel = t["channel"].cast("string") if "channel" in t.columns else ibis.null().cast("string")
    return t.select(customer_id=t.customer_id, ts=t.ts, channel=channel)


def union_all(parts: Sequence[ir.Table]) -> ir.Table:
    """Stack tables with the same columns, keeping duplicates (``UNION ALL``), in order.

    Parameters
    ----------
    parts
        At least one table.

    Returns
    -------
    ibis.expr.types.Table
        The union.
    """
    out = parts[0]
    for p in parts[1:]:
        out = out.union(p, distinct=False)
    return out


def rule_occurrences(data: CXData, rule: Mapping[str, object]) -> ir.Table | None:
    """Return every occurrence of one stage rule as ``(customer_id, ts, channel)``.

    Parameters
    ----------
    data
        The data (already cut at as_of).
    rule
        A stage rule (see :data:`DEFAULT_STAGES`).

    Returns
    -------
    ibis.expr.types.Table or None
        The occurrences, or None when no source table of the rule is present.
    """
    parts: list[ir.Table] = []
    events, orders = optional_table(data, "events"), optional_table(data, "orders")
    responses = optional_table(data, "responses")
    ev_rule = rule.get("events")
    if ev_rule is not None and events is not None:
        e = events
        if ev_rule != "any":
            names = [ev_rule] if isinstance(ev_rule, str) else list(ev_rule)
            e = e.filter(e.event.isin(names))
        if rule.get("min_rating") is not None and "rating" in e.columns:
            e = e.filter(e.rating.isnull() | (e.rating >= rule["min_rating"]))
        parts.append(occurrences(e))
    ord_rule = rule.get("orders")
    if ord_rule is not None and orders is not None:
        o = orders
        if ord_rule == "repeat":
            first = o.group_by("customer_id").agg(first_day=o.ts.min().date())
            j = o.join(first, "customer_id")
            o = j.filter(j.ts.date() > j.first_day)
        parts.append(occurrences(o))
    resp_rule = rule.get("responses")
    if resp_rule is not None and responses is not None:
        r = responses
        if isinstance(resp_rule, Mapping):
            if "survey" in resp_rule:
                r = r.filter(r.survey == resp_rule["survey"])
            if "min_score" in resp_rule:
                r = r.filter(r.score >= int(resp_rule["min_score"]))
            if "max_score" in resp_rule:
                r = r.filter(r.score <= int(resp_rule["max_score"]))
        parts.append(occurrences(r))
    return union_all(parts) if parts else None


# --------------------------------------------------------------------------------------
# the stage map
# --------------------------------------------------------------------------------------


def _or_list(items: Sequence[str]) -> str:
    """Join ``["a", "b", "c"]`` as ``"a, b or c"``."""
    items = list(items)
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " or " + items[-1]


def describe_rule(rule: Mapping[str, object]) -> str:
    """Say in plain words what a stage rule counts.

    Parameters
    ----------
    rule
        A stage rule (see :data:`DEFAULT_STAGES` for its keys).

    Returns
    -------
    str
        E.g. ``"an order on a later day than the first"``.

    Examples
    --------
    >>> describe_rule(DEFAULT_STAGES["advocacy"])
    'a referral or review event, or an NPS answer of 9–10'
    >>> describe_rule(DEFAULT_STAGES["retention"])
    'an order on a later day than the first'
    """
    parts = []
    ev = rule.get("events")
    if ev == "any":
        parts.append("any event")
    elif ev is not None:
        names = [ev] if isinstance(ev, str) else [str(e) for e in ev]  # type: ignore[union-attr]
        text = f"a {_or_list(names)} event"
        if rule.get("min_rating") is not None:
            text += f" (rated {rule['min_rating']} or more)"
        parts.append(text)
    orders = rule.get("orders")
    if orders is not None:
        parts.append(
            {
                "any": "an order",
                "first": "a first order",
                "repeat": "an order on a later day than the first",
            }.get(str(orders), f"an order ({orders})")
        )
    resp = rule.get("responses")
    if isinstance(resp, Mapping):
        survey = str(resp.get("survey", "survey")).upper()
        # an acronym takes "an" when its first letter's name starts with a vowel sound
        a = "an" if survey[:1] in "AEFHILMNORSX" else "a"
        lo, hi = resp.get("min_score"), resp.get("max_score")
        if lo is not None and hi is not None:
            parts.append(f"{a} {survey} answer of {lo}–{hi}")
        elif lo is not None:
            parts.append(f"{a} {survey} answer of {lo} or more")
        elif hi is not None:
            parts.append(f"{a} {survey} answer of {hi} or less")
        else:
            parts.append(f"{a} {survey} answer")
    elif resp is not None:
        parts.append("a survey answer")
    if not parts:
        return "no rule"
    if len(parts) == 1:
        return parts[0]
    sep = ", or " if any(" or " in p for p in parts) else " or "
    return ", ".join(parts[:-1]) + sep + parts[-1]


def load_stage_map(spec: StageMapSpec = None) -> dict[str, Rule]:
    r"""Read and check a stage map (dict, YAML file path, YAML text, or None = default).

    Parameters
    ----------
    spec
        ``{stage: rule}`` in stage order; see :data:`DEFAULT_STAGES` for the rule keys.
        A YAML document may hold the map under a top-level ``stages`` key.

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
    >>> load_stage_map("visit: {events: [site_visit]}\nbuy: {orders: any}")["buy"]
    {'orders': 'any'}
    """
    if spec is None:
        return {k: dict(v) for k, v in DEFAULT_STAGES.items()}
    if isinstance(spec, str | Path):
        text = Path(spec).read_text() if Path(str(spec)).suffix in (".yml", ".yaml") else spec
        spec = yaml.safe_load(text)
        if isinstance(spec, Mapping) and "stages" in spec:
            spec = spec["stages"]
    if not isinstance(spec, Mapping) or not spec:
        raise UsageError(f"a stage map must be a non-empty mapping of stage -> rule, got {spec!r}")
    out: dict[str, Rule] = {}
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


def available_stages(
    data: CXData, stage_map: StageMapSpec = None
) -> tuple[dict[str, Rule], dict[str, str]]:
    """Split a stage map into the stages the data can support and those it cannot.

    A stage is available when at least one of its source tables is present, except that a
    rule on *any* event (awareness: first contact) needs the events table: in orders
    alone the first contact is the first purchase.

    Parameters
    ----------
    data
        The data.
    stage_map
        The stage rules; default :data:`DEFAULT_STAGES`.

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
    has_events = "events" in data

    def _ok(rule: Rule) -> bool:
        if rule.get("events") == "any" and not has_events:
            return False  # first contact cannot be seen in orders alone
        return rule_occurrences(data, rule) is not None

    ok = {n: r for n, r in smap.items() if _ok(r)}
    missing = {
        n: "table 'events'"
        if r.get("events") == "any"
        else " or ".join(f"table '{k}'" for k in ("events", "orders", "responses") if k in r)
        for n, r in smap.items()
        if n not in ok
    }
    return ok, missing


# --------------------------------------------------------------------------------------
# stage times
# --------------------------------------------------------------------------------------


def engine_cache(data: CXData, expr: ir.Table) -> ir.Table:
    """Compute ``expr`` once in the data's engine and keep it for later queries.

    ibis ``Table.cache`` makes a temporary table (DuckDB, PostgreSQL) or a cached frame
    (Spark) and hands back the same one for an equal expression while it is alive; this
    keeps the last :data:`ENGINE_CACHE_SIZE` alive per connection, so the steps of one
    analysis share them and memory stays bounded.

    Parameters
    ----------
    data
        The data whose connection runs the query.
    expr
        A table expression on that connection.

    Returns
    -------
    ibis.expr.types.Table
        The cached table, equal in content to ``expr``.
    """
    table = expr.cache()
    # Kept on the connection object itself: ibis backends compare equal by database
    # (two in-memory DuckDBs are "equal"), so they cannot key a dictionary.
    keep = vars(data.con).setdefault("_cxkit_engine_cache", OrderedDict())
    name = table.op().name
    # A cached table is temporary: it ends with the session. Dropping it again at exit
    # would fail loudly when the server has already closed the connection.
    entry = getattr(data.con, "_cache_name_to_entry", {}).get(name)
    if entry is not None:
        entry.finalizer.atexit = False
    keep[name] = table
    keep.move_to_end(name)
    while len(keep) > ENGINE_CACHE_SIZE:
        keep.popitem(last=False)
    return table


#: How many cached tables :func:`engine_cache` keeps alive per connection.
ENGINE_CACHE_SIZE = 16


def stage_times_expr(
    data: CXData,
    stage_map: StageMapSpec = None,
    *,
    as_of: AsOf = None,
    monotone: bool = True,
) -> ir.Table:
    """Return, per customer, when each stage was first reached, as an ibis expression.

    With ``monotone=True`` a stage's time is the earliest of its own rule and every later
    stage's time (DESIGN §7: a later stage without an earlier one counts as reaching the
    earlier one at the same time); with ``monotone=False`` each stage is its own rule.

    Parameters
    ----------
    data
        The data (events, orders and responses are used when present).
    stage_map
        The stage rules; default :data:`DEFAULT_STAGES`.
    as_of
        Nothing after it is used (:func:`cxkit.data.resolve_as_of`).
    monotone
        Fill earlier stages from later ones. Default True.

    Returns
    -------
    ibis.expr.types.Table
        ``customer_id``, ``<stage>_at`` per stage (NULL = not reached by as_of) and
        ``current_stage`` (the last stage reached, in stage order).

    Raises
    ------
    NotAvailableError
        When no table behind any stage is present.
    """
    end = resolve_as_of(data, as_of)
    data = data.upto(end)
    smap = load_stage_map(stage_map)
    names = list(smap)
    parts = []
    for i, name in enumerate(names):
        occ = rule_occurrences(data, smap[name])
        if occ is not None:
            parts.append(occ.select("customer_id", "ts", stage_ix=ibis.literal(i, "int64")))
    if not parts:
        raise NotAvailableError("an events or orders table", analysis="Lifecycle stages")
    u = union_all(parts)
    raw = u.group_by("customer_id").agg(
        **{f"{n}_at": u.ts.min(where=u.stage_ix == i) for i, n in enumerate(names)}
    )
    # computed once per data, stage map and as_of: the ladder, conversion, journeys and
    # breakdowns of one analysis all read the same stage times
    raw = engine_cache(data, raw)
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
    data: CXData,
    stage_map: StageMapSpec = None,
    *,
    as_of: AsOf = None,
    monotone: bool = True,
) -> pd.DataFrame:
    """Return, per customer, when each stage was first reached and the current stage.

    Parameters
    ----------
    data
        The data (events, orders and responses are used when present).
    stage_map
        The stage rules (dict, YAML path or text); default :data:`DEFAULT_STAGES`.
    as_of
        Nothing after it is used (:func:`cxkit.data.resolve_as_of`; default the data's
        own cut, else its latest timestamp).
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
    end = resolve_as_of(data, as_of)
    expr = stage_times_expr(data, stage_map, as_of=end, monotone=monotone)
    df = expr.to_pandas()
    for col in df.columns:
        if col.endswith("_at"):
            df[col] = pd.to_datetime(df[col]).astype("datetime64[ns]")
    df["customer_id"] = df["customer_id"].astype("str")
    return df.sort_values("customer_id", kind="stable").reset_index(drop=True)


def current_stage_counts(
    data: CXData, stage_map: StageMapSpec = None, *, as_of: AsOf = None
) -> pd.DataFrame:
    """Count the customers in each stage at as_of (their last stage reached).

    Parameters
    ----------
    data
        The data.
    stage_map
        The stage rules; default :data:`DEFAULT_STAGES`.
    as_of
        Nothing after it is used (:func:`cxkit.data.resolve_as_of`).

    Returns
    -------
    pandas.DataFrame
        ``stage`` (in stage order, every stage of the map), ``n_customers``, ``share``.
    """
    end = resolve_as_of(data, as_of)
    smap = load_stage_map(stage_map)
    e = stage_times_expr(data, smap, as_of=end)
    df = e.group_by("current_stage").agg(n_customers=e.count()).to_pandas()
    df = df.set_index("current_stage").reindex(list(smap), fill_value=0).reset_index()
    df = df.rename(columns={"current_stage": "stage"})
    df["n_customers"] = df["n_customers"].astype("int64")
    total = df.n_customers.sum()
    df["share"] = df.n_customers / total if total else np.nan
    return df


def stage_counts(
    data: CXData,
    stage_map: StageMapSpec = None,
    *,
    as_of: AsOf = None,
    monotone: bool = True,
) -> pd.DataFrame:
    """Count the customers who reached each stage, on the ladder or by each stage's own rule.

    Parameters
    ----------
    data
        The data.
    stage_map
        The stage rules; default :data:`DEFAULT_STAGES`.
    as_of
        Nothing after it is used (:func:`cxkit.data.resolve_as_of`).
    monotone
        True (default): the ladder, where a later stage counts as reaching the earlier
        ones (DESIGN §7); False: each stage by its own rule only.

    Returns
    -------
    pandas.DataFrame
        ``stage`` (in stage order) and ``n_customers``.

    Examples
    --------
    >>> import pandas as pd, cxkit
    >>> ev = pd.DataFrame({"customer_id": ["a", "b"], "event": ["site_visit", "review"],
    ...                    "ts": pd.to_datetime(["2024-01-01", "2024-01-05"])})
    >>> own = stage_counts(cxkit.load({"events": ev}), monotone=False)
    >>> dict(zip(own.stage, own.n_customers))["advocacy"], len(own)
    (1, 5)
    """
    end = resolve_as_of(data, as_of)
    smap = load_stage_map(stage_map)
    e = stage_times_expr(data, smap, as_of=end, monotone=monotone)
    res = e.aggregate(**{f"n{i}": e[f"{n}_at"].count() for i, n in enumerate(smap)}).to_pandas()
    return pd.DataFrame(
        {
            "stage": list(smap),
            "n_customers": [int(res[f"n{i}"].iloc[0]) for i in range(len(smap))],
        }
    )
