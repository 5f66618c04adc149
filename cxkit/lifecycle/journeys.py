"""Journeys: the paths customers take through touchpoints (or stages), and Sankey links.

A journey is a customer's first ``max_steps`` touchpoints (or events, channels, stages) in
time order, consecutive repeats collapsed (``browse, browse, checkout`` -> ``browse >
checkout``). :func:`journey_paths` counts the most common paths with Wilson intervals;
:func:`journey_sankey` gives the step-to-step links for :func:`cxkit.plots.sankey`;
:func:`journey_tables` gives both from one engine query.

The engine does the row-level work: it numbers each customer's items, spreads the first
``max_steps`` into one column per step and counts the customers on each distinct journey.
Only that table (one row per distinct journey) comes to pandas, where the paths and the
links are read off it, each journey weighted by its number of customers.
"""

from __future__ import annotations

import ibis
import ibis.expr.types as ir
import pandas as pd

from cxkit import stats
from cxkit.data import CXData, resolve_as_of
from cxkit.errors import NotAvailableError, UsageError
from cxkit.lifecycle.stages import StageMapSpec, load_stage_map, stage_times_expr, union_all
from cxkit.result import AsOf

__all__ = ["journey_paths", "journey_sankey", "journey_tables"]

_KINDS = ("stage", "touchpoint", "event", "channel")

#: Up to this many steps the engine spreads each journey into one column per step (one
#: aggregate each); longer journeys come to pandas as rows and are grouped there.
_MAX_PIVOT_STEPS = 32

_PATH_COLUMNS = ["path", "steps", "customers", "share", "ci_low", "ci_high"]
_LINK_COLUMNS = ["source", "target", "customers"]


def _sequence_expr(
    data: CXData, kind: str, max_steps: int, stage_map: StageMapSpec, end: pd.Timestamp
) -> ir.Table:
    """Per customer the first ``max_steps`` items (consecutive repeats collapsed).

    Rows of ``customer_id``, ``pos`` (0, 1, ... in time order) and ``item``. Ties in time
    are broken by the stage's place in the map, or by the item and then ``event_id``.
    """
    if kind == "stage":
        smap = load_stage_map(stage_map)
        st = stage_times_expr(data, smap, as_of=end, monotone=False)
        parts = []
        for i, n in enumerate(smap):
            s = st.filter(st[f"{n}_at"].notnull())
            parts.append(s.select("customer_id", ts=s[f"{n}_at"], item=ibis.literal(n), o=i))
        u = union_all(parts)
        w = ibis.window(group_by=u.customer_id, order_by=[u.ts, u.o])
        u = u.mutate(pos=ibis.row_number().over(w))
        return u.filter(u.pos < max_steps).select("customer_id", "pos", "item")
    if kind not in _KINDS:
        raise UsageError(f"kind must be 'stage', 'touchpoint', 'event' or 'channel', got {kind!r}")
    e = data.require("events", analysis="Journey paths")
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
    return e.filter(e.pos < max_steps).select("customer_id", "pos", "item")


def _step_names(n: int) -> list[str]:
    return [f"step_{k}" for k in range(1, n + 1)]


def _journey_counts(
    data: CXData, kind: str, max_steps: int, stage_map: StageMapSpec, end: pd.Timestamp
) -> pd.DataFrame:
    """Count the customers on each distinct journey.

    Columns ``step_1`` ... ``step_w`` (``w <= max_steps``; missing past a journey's end),
    ``has_customer`` and ``customers``, one row per distinct journey, in no particular
    order. Events without a customer_id form one journey with ``has_customer`` False: it
    counts towards the items the links keep by name, but is neither a path nor a link.
    """
    seq = _sequence_expr(data, kind, max_steps, stage_map, end)
    if max_steps > _MAX_PIVOT_STEPS:
        return _counts_from_rows(seq.to_pandas())
    cols = _step_names(max(max_steps, 0))
    if not cols:
        return _no_journeys()
    # pos is unique per customer, so each max picks the one item at that step
    wide = seq.group_by("customer_id").aggregate(
        **{c: seq.item.max(where=seq.pos == k) for k, c in enumerate(cols)}
    )
    wide = wide.mutate(has_customer=wide.customer_id.notnull())
    counts = wide.group_by([*cols, "has_customer"]).aggregate(customers=wide.count())
    counts = counts.to_pandas()
    counts["has_customer"] = counts["has_customer"].astype(bool)
    counts["customers"] = counts["customers"].astype("int64")
    return counts


def _no_journeys() -> pd.DataFrame:
    return pd.DataFrame(
        {"has_customer": pd.Series([], dtype=bool), "customers": pd.Series([], dtype="int64")}
    )


def _counts_from_rows(rows: pd.DataFrame) -> pd.DataFrame:
    """Build the table of :func:`_journey_counts` from the ``(customer_id, pos, item)`` rows."""
    if rows.empty:
        return _no_journeys()
    rows = rows.sort_values(["customer_id", "pos"], kind="stable")
    per_customer = rows.groupby("customer_id", sort=False, dropna=False)["item"].agg(tuple)
    journeys = pd.DataFrame(
        {"items": per_customer.to_numpy(), "has_customer": per_customer.index.notna()}
    ).value_counts()
    width = max(len(j) for j, _ in journeys.index)
    padded = [list(j) + [None] * (width - len(j)) for j, _ in journeys.index]
    wide = pd.DataFrame(padded, columns=_step_names(width)).astype(rows["item"].dtype)
    wide["has_customer"] = [known for _, known in journeys.index]
    wide["customers"] = journeys.to_numpy().astype("int64")
    return wide


def _steps_of(counts: pd.DataFrame) -> list[str]:
    return [c for c in counts.columns if c.startswith("step_")]


def _paths_from_counts(counts: pd.DataFrame, top: int) -> pd.DataFrame:
    """Return the ``top`` most common paths, as :func:`journey_paths` does."""
    if counts.empty:
        return pd.DataFrame(columns=_PATH_COLUMNS)
    counts = counts[counts["has_customer"]]
    steps = _steps_of(counts)
    path = counts[steps[0]]
    for c in steps[1:]:
        path = path.where(counts[c].isna(), path + " > " + counts[c])
    per_path = counts["customers"].groupby(path.rename("path"), sort=False).sum()
    total = int(counts["customers"].sum())
    out = per_path.reset_index(name="customers")
    out = out.sort_values(["customers", "path"], ascending=[False, True], kind="stable")
    out = out.head(top).reset_index(drop=True)
    out.insert(1, "steps", out.path.str.count(" > ") + 1)
    out["share"] = out.customers / total
    out["ci_low"], out["ci_high"] = stats.wilson_ci(out.customers, total)
    return out


def _sankey_from_counts(
    counts: pd.DataFrame, max_steps: int, top: int, end_label: str
) -> pd.DataFrame:
    """Return the Sankey links, as :func:`journey_sankey` does."""
    if counts.empty:
        return pd.DataFrame(columns=_LINK_COLUMNS)
    steps = _steps_of(counts)
    n = counts["customers"]
    per_item = pd.concat([n.groupby(counts[c]).sum() for c in steps])
    per_item = per_item.groupby(level=0).sum().rename_axis("item").reset_index(name="n")
    # ties in frequency go by name, so the cut at ``top`` does not depend on row order
    per_item = per_item.sort_values(["n", "item"], ascending=[False, True], kind="stable")
    keep = per_item["item"].head(top)
    nodes = []
    for k, c in enumerate(steps, start=1):
        item = counts[c].where(counts[c].isin(keep) | counts[c].isna(), "other")
        nodes.append(f"{k}. " + item)
    parts = []
    for k, source in enumerate(nodes):
        target = nodes[k + 1] if k + 1 < len(nodes) else source.where(source.isna())
        if k < max_steps - 1:  # a journey that ends before max_steps flows into the end node
            target = target.fillna(end_label)
        ok = source.notna() & target.notna() & counts["has_customer"]
        parts.append(pd.DataFrame({"source": source[ok], "target": target[ok], "customers": n[ok]}))
    links = pd.concat(parts).groupby(["source", "target"])["customers"].sum().reset_index()
    links["customers"] = links.customers.astype("int64")
    links["_o"] = links.source.str.split(".").str[0].astype(int)
    links = links.sort_values(["_o", "customers"], ascending=[True, False], kind="stable")
    return links.drop(columns="_o").reset_index(drop=True)


def journey_paths(
    data: CXData,
    *,
    kind: str = "touchpoint",
    max_steps: int = 4,
    top: int = 10,
    as_of: AsOf = None,
    stage_map: StageMapSpec = None,
) -> pd.DataFrame:
    """Count the most common journeys: paths of the first ``max_steps`` items.

    Consecutive repeats are collapsed (``browse, browse, checkout`` -> ``browse >
    checkout``). With ``kind="stage"`` the path is the order in which the stages were first
    reached by their own rules. Items at the same instant go in name order (stages in
    the order of the stage map), then by ``event_id`` when the events have one.

    Parameters
    ----------
    data
        The data (events with the ``kind`` column; for stages, the stage tables).
    kind
        ``"touchpoint"``, ``"event"``, ``"channel"`` or ``"stage"``.
    max_steps
        How many items of each journey.
    top
        How many paths to return.
    as_of
        Nothing after it is used (:func:`cxkit.data.resolve_as_of`).
    stage_map
        The stage rules for ``kind="stage"``.

    Returns
    -------
    pandas.DataFrame
        ``path``, ``steps``, ``customers``, ``share`` (of all customers with a path),
        ``ci_low``, ``ci_high``; the ``top`` most common, most common first (equal counts
        in path order).

    Raises
    ------
    NotAvailableError
        When the events table or its ``kind`` column is missing.
    UsageError
        On an unknown ``kind``.

    See Also
    --------
    journey_tables : The paths and the Sankey links from one query.
    """
    end = resolve_as_of(data, as_of)
    counts = _journey_counts(data.upto(end), kind, max_steps, stage_map, end)
    return _paths_from_counts(counts, top)


def journey_sankey(
    data: CXData,
    *,
    kind: str = "touchpoint",
    max_steps: int = 4,
    top: int = 6,
    as_of: AsOf = None,
    stage_map: StageMapSpec = None,
    end_label: str = "(end)",
) -> pd.DataFrame:
    """Count the transitions between consecutive journey steps, for a Sankey diagram.

    The ``top`` most frequent items (counted over the first ``max_steps`` steps of every
    journey; equal counts in name order) are kept and the rest become ``"other"``; nodes
    are unique per step (``"1. browse"``, ``"2. browse"``, numbered from 1); a journey
    shorter than ``max_steps`` flows into one end node. Draw it with
    :func:`cxkit.plots.sankey`.

    Parameters
    ----------
    data
        The data, as in :func:`journey_paths`.
    kind, max_steps, stage_map
        As in :func:`journey_paths`.
    top
        How many distinct items to keep by name.
    as_of
        Nothing after it is used (:func:`cxkit.data.resolve_as_of`).
    end_label
        The name of the node short journeys flow into.

    Returns
    -------
    pandas.DataFrame
        ``source``, ``target``, ``customers`` (one row per link), sorted by source step,
        then by ``customers`` (largest first), then by source and target name.

    Raises
    ------
    NotAvailableError
        When the events table or its ``kind`` column is missing.
    UsageError
        On an unknown ``kind``.

    See Also
    --------
    journey_tables : The paths and the Sankey links from one query.
    """
    end = resolve_as_of(data, as_of)
    counts = _journey_counts(data.upto(end), kind, max_steps, stage_map, end)
    return _sankey_from_counts(counts, max_steps, top, end_label)


def journey_tables(
    data: CXData,
    *,
    kind: str = "touchpoint",
    max_steps: int = 4,
    top_paths: int = 10,
    top_items: int = 6,
    as_of: AsOf = None,
    stage_map: StageMapSpec = None,
    end_label: str = "(end)",
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Return the journey paths and the Sankey links of one kind from one engine query.

    The same tables as ``journey_paths(data, top=top_paths, ...)`` and
    ``journey_sankey(data, top=top_items, ...)``, for half the engine work.

    Parameters
    ----------
    data
        The data, as in :func:`journey_paths`.
    kind, max_steps, stage_map
        As in :func:`journey_paths`.
    top_paths
        How many paths to return (``top`` of :func:`journey_paths`).
    top_items
        How many distinct items the links keep by name (``top`` of
        :func:`journey_sankey`).
    as_of
        Nothing after it is used (:func:`cxkit.data.resolve_as_of`).
    end_label
        The name of the node short journeys flow into.

    Returns
    -------
    tuple of pandas.DataFrame
        ``(paths, links)``: :func:`journey_paths` and :func:`journey_sankey`.

    Raises
    ------
    NotAvailableError
        When the events table or its ``kind`` column is missing.
    UsageError
        On an unknown ``kind``.

    Examples
    --------
    >>> import pandas as pd, cxkit
    >>> ev = pd.DataFrame({"customer_id": ["a", "a", "a", "b"],
    ...                    "touchpoint": ["browse", "browse", "checkout", "browse"],
    ...                    "event": ["site_visit"] * 4,
    ...                    "ts": pd.to_datetime(["2024-01-01", "2024-01-02", "2024-01-03",
    ...                                          "2024-01-04"])})
    >>> paths, links = journey_tables(cxkit.load({"events": ev}), max_steps=3)
    >>> paths[["path", "customers"]].values.tolist()
    [['browse', 1], ['browse > checkout', 1]]
    >>> links.values.tolist()
    [['1. browse', '(end)', 1], ['1. browse', '2. checkout', 1], ['2. checkout', '(end)', 1]]
    """
    end = resolve_as_of(data, as_of)
    counts = _journey_counts(data.upto(end), kind, max_steps, stage_map, end)
    return (
        _paths_from_counts(counts, top_paths),
        _sankey_from_counts(counts, max_steps, top_items, end_label),
    )
