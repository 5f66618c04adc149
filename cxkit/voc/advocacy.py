"""Advocacy: how many customers promote, refer and review, and whom to ask next.

A customer reaches the advocacy stage with a referral or review event or a latest NPS
answer of 9–10 (DESIGN.md §7). :func:`advocacy` counts promoters, referrers, reviewers
and the advocacy reach with Wilson intervals; :func:`promoters_not_referred` lists the
promoters who have not referred anyone yet.
"""

from __future__ import annotations

from collections.abc import Sequence

import ibis
import ibis.expr.types as ir
import numpy as np
import pandas as pd
from ibis import _

from cxkit import stats
from cxkit.data import CXData, resolve_as_of
from cxkit.errors import NotAvailableError
from cxkit.result import AsOf
from cxkit.voc.scores import PROMOTER_MIN, scored_responses

__all__ = ["advocacy", "promoters_not_referred"]


def _latest_nps(d: CXData) -> ir.Table:
    t = scored_responses(d, "nps", analysis="Advocacy")
    return t.group_by("customer_id").aggregate(
        last_nps=_.score.argmax(_.ts), last_nps_at=_.ts.max()
    )


def _event_customers(d: CXData, names: Sequence[str]) -> ir.Table | None:
    if not d.has("events", "event"):
        return None
    e = d.table("events")
    return e.filter(e.event.isin(list(names))).group_by("customer_id").aggregate(k=_.count())


def advocacy(
    data: CXData,
    *,
    referral_events: Sequence[str] = ("referral",),
    review_events: Sequence[str] = ("review",),
    as_of: AsOf = None,
    level: float = 0.95,
) -> pd.DataFrame:
    """Count promoters, referrers, reviewers and the advocacy-stage reach.

    Parameters
    ----------
    data
        The data, with NPS answers in ``responses`` and/or referral and review events.
    referral_events, review_events
        The event names that count as a referral or a review.
    as_of
        Only activity up to this instant is used (:func:`cxkit.data.resolve_as_of`).
    level
        The confidence level of the intervals.

    Returns
    -------
    pandas.DataFrame
        One row per measure: ``measure``, ``customers``, ``base`` (what the share is
        of), ``base_n``, ``share`` and Wilson ``share_low``/``share_high``, ``small_n``.

    Raises
    ------
    NotAvailableError
        When the data has neither NPS answers nor events.
    """
    d = data.upto(resolve_as_of(data, as_of))
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
    data: CXData,
    *,
    referral_events: Sequence[str] = ("referral",),
    as_of: AsOf = None,
) -> pd.DataFrame:
    """List the promoters (latest NPS 9–10) with no referral event yet: whom to invite to refer.

    Parameters
    ----------
    data
        The data, with NPS answers in ``responses`` (and referral events).
    referral_events
        The event names that count as a referral.
    as_of
        Only activity up to this instant is used (:func:`cxkit.data.resolve_as_of`).

    Returns
    -------
    pandas.DataFrame
        ``customer_id``, ``last_nps``, ``last_nps_at``, most recent answer first.

    Raises
    ------
    NotAvailableError
        When the data has no NPS answers.
    """
    d = data.upto(resolve_as_of(data, as_of))
    ln = _latest_nps(d)
    prom = ln.filter(ln.last_nps >= PROMOTER_MIN)
    ev = _event_customers(d, referral_events)
    if ev is not None:
        prom = prom.anti_join(ev, "customer_id")
    df = prom.order_by([ibis.desc("last_nps_at"), "customer_id"]).to_pandas()
    df["customer_id"] = df["customer_id"].astype(str)
    df["last_nps"] = df["last_nps"].astype("int64")
    return df[["customer_id", "last_nps", "last_nps_at"]].reset_index(drop=True)
