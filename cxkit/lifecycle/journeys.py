"""Journeys: the paths customers take through touchpoints (or stages), and Sankey links.

A journey is a customer's first ``max_steps`` touchpoints (or events, channels, stages) in
time order, consecutive repeats collapsed (``browse, browse, checkout`` -> ``browse >
checkout``). :func:`journey_paths` counts the most common paths with Wilson intervals;
:func:`journey_sankey` gives the step-to-step links for :func:`cxkit.plots.sankey`.
"""

from __future__ import annotations

import ibis
import pandas as pd

from cxkit import stats
from cxkit.data import CXData, resolve_as_of
from cxkit.errors import NotAvailableError, UsageError
from cxkit.lifecycle.stages import StageMapSpec, load_stage_map, stage_times_expr, union_all
from cxkit.result import AsOf

__all__ = ["journey_paths", "journey_sankey"]

_KINDS = ("stage", "touchpoint", "event", "channel")


def _sequences(
    data: CXData, kind: str, max_steps: int, stage_map: StageMapSpec, end: pd.Timestamp
) -> pd.DataFrame:
    """Per customer the first ``max_steps`` items (consecutive repeats collapsed)."""
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
        return u.filter(u.pos < max_steps).select("customer_id", "pos", "item").to_pandas()
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
    return e.filter(e.pos < max_steps).select("customer_id", "pos", "item").to_pandas()


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
    reached by their own rules.

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
        ``ci_low``, ``ci_high``; the ``top`` most common, most common first.

    Raises
    ------
    NotAvailableError
        When the events table or its ``kind`` column is missing.
    UsageError
        On an unknown ``kind``.
    """
    end = resolve_as_of(data, as_of)
    seq = _sequences(data.upto(end), kind, max_steps, stage_map, end)
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

    The ``top`` most frequent items are kept and the rest become ``"other"``; nodes are
    unique per step (``"1. browse"``, ``"2. browse"``, numbered from 1); a journey shorter than
    ``max_steps`` flows into one end node. Draw it with :func:`cxkit.plots.sankey`.

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
        ``source``, ``target``, ``customers`` (one row per link), sorted by source step.
    """
    end = resolve_as_of(data, as_of)
    seq = _sequences(data.upto(end), kind, max_steps, stage_map, end)
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
