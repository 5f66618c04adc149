"""Omnichannel consistency: whether the experience holds up on every channel.

:func:`channel_consistency` sets the best against the worst channel by CSAT within each
touchpoint (or persona); :func:`channel_pain_points` finds group × channel cells that are
low against both the group's other channels and the other groups on that channel;
:func:`channel_switching` measures how often customers contact on a second channel for
the same need.
"""

from __future__ import annotations

from collections.abc import Sequence

import ibis
import numpy as np
import pandas as pd
from ibis import _

from cxkit import stats
from cxkit.data import CXData, resolve_as_of
from cxkit.result import AsOf
from cxkit.voc.labels import PersonaLabels
from cxkit.voc.scores import attach_groups, csat, group_keys

__all__ = ["channel_consistency", "channel_pain_points", "channel_switching"]


def channel_consistency(
    data: CXData,
    *,
    by: str | Sequence[str] | None = "touchpoint",
    personas: PersonaLabels | None = None,
    top_box: int = 4,
    as_of: AsOf = None,
    min_n: int = stats.MIN_N,
) -> pd.DataFrame:
    """Find the best and the worst channel by CSAT per group (touchpoint, stage, persona...).

    Only channels with at least ``min_n`` answers compete. The spread (best − worst
    top-2-box share, in percentage points) is tested with the two-proportion z-test;
    ``p_holm`` adjusts over all groups.

    Parameters
    ----------
    data
        The data, with ``responses`` holding CSAT answers and ``channel``.
    by
        The group keys (as in :func:`cxkit.voc.nps`).
    personas
        Persona labels, for ``by="persona"``.
    top_box
        The lowest satisfied score, as in :func:`cxkit.voc.csat`.
    as_of
        Only responses up to this instant are used (:func:`cxkit.data.resolve_as_of`).
    min_n
        The fewest answers a channel needs to compete.

    Returns
    -------
    pandas.DataFrame
        One row per group: ``channels`` (how many competed), ``best_channel``,
        ``best_csat``, ``best_n``, ``worst_channel``, ``worst_csat``, ``worst_n``,
        ``spread_points`` with ``spread_low``/``spread_high``, ``p_value``, ``p_holm``,
        ``significant``. CSAT shares are 0–1. Largest spread first.

    Raises
    ------
    NotAvailableError
        When the data has no CSAT answers or lacks a group key or ``channel``.
    """
    keys = group_keys(by)
    cells = csat(
        data,
        by=[*keys, "channel"],
        personas=personas,
        top_box=top_box,
        as_of=resolve_as_of(data, as_of),
        min_n=min_n,
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
    data: CXData,
    *,
    by: str = "persona",
    personas: PersonaLabels | None = None,
    top_box: int = 4,
    as_of: AsOf = None,
    min_n: int = stats.MIN_N,
) -> pd.DataFrame:
    """Find the cells (group × channel) where CSAT is low against both neighbours.

    Each cell's top-2-box share is tested against the same group on its other channels
    (``gap_vs_other_channels``) and against the other groups on the same channel
    (``gap_vs_other_groups``), both in percentage points with Holm-adjusted p-values. A
    cell is a ``pain_point`` when both gaps are negative and significant.

    Parameters
    ----------
    data
        The data, with ``responses`` holding CSAT answers and ``channel``.
    by
        The group key (``"persona"`` with ``personas``, or a responses/customers column).
    personas
        Persona labels, for ``by="persona"``.
    top_box
        The lowest satisfied score, as in :func:`cxkit.voc.csat`.
    as_of
        Only responses up to this instant are used (:func:`cxkit.data.resolve_as_of`).
    min_n
        Cells with fewer answers are flagged ``small_n`` and never pain points.

    Returns
    -------
    pandas.DataFrame
        The :func:`cxkit.voc.csat` cells by ``by`` and ``channel`` with
        ``gap_vs_other_channels``, ``p_vs_other_channels``, ``gap_vs_other_groups``,
        ``p_vs_other_groups`` and ``pain_point``; pain points first, worst first.

    Raises
    ------
    NotAvailableError
        When the data has no CSAT answers or lacks ``by`` or ``channel``.
    """
    cells = csat(
        data,
        by=[by, "channel"],
        personas=personas,
        top_box=top_box,
        as_of=resolve_as_of(data, as_of),
        min_n=min_n,
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
    data: CXData,
    *,
    events: Sequence[str] | None = None,
    window_days: int = 7,
    personas: PersonaLabels | None = None,
    as_of: AsOf = None,
    level: float = 0.95,
    min_n: int = stats.MIN_N,
) -> pd.DataFrame:
    """Measure channel switching: contacts on 2+ channels for the same need within a window.

    A "need" is a touchpoint; contact events are ``events`` (default: every event whose
    name contains "support" or "contact"). A customer switched for a touchpoint when two
    contact events with different channels lie within ``window_days`` of each other —
    computed in the engine by comparing each contact with the previous one of the same
    customer and touchpoint (equivalent to checking every pair).

    Parameters
    ----------
    data
        The data, with ``events`` holding ``event``, ``channel`` and ``touchpoint``.
    events
        The contact event names (default: names containing "support" or "contact").
    window_days
        The longest gap between two contacts that counts as a switch.
    personas
        Persona labels: rows become persona × touchpoint.
    as_of
        Only events up to this instant are used (:func:`cxkit.data.resolve_as_of`).
    level
        The confidence level of the intervals.
    min_n
        Rows with fewer customers are flagged ``small_n``.

    Returns
    -------
    pandas.DataFrame
        One row per touchpoint plus an ``(all)`` row (a customer counts once there):
        ``customers`` with contacts, ``switchers``, ``switch_rate`` with Wilson interval
        (``switch_low``, ``switch_high``), ``small_n``.

    Raises
    ------
    NotAvailableError
        When the events lack ``event``, ``channel`` or ``touchpoint``.
    """
    d = data.upto(resolve_as_of(data, as_of))
    e = d.require("events", "event", "channel", "touchpoint", analysis="Channel switching")
    if events is None:
        name = e.event.lower()
        e = e.filter(name.contains("support") | name.contains("contact"))
    else:
        e = e.filter(e.event.isin(list(events)))
    e = e.filter(e.channel.notnull() & e.touchpoint.notnull())
    keys = ["touchpoint"]
    if personas is not None:
        e = attach_groups(d, e, ["persona"], personas=personas, freq="month", analysis="Switching")
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
