"""Point-in-time churn features, built in the engine from the data as it stood at a cutoff.

:func:`feature_table` is one ibis expression (backend neutral) over ``data.upto(cutoff)``
only, so nothing after the cutoff can leak in; :func:`features` runs it, turns
timestamps into day counts and adds the BG/NBD columns (``bgnbd_p_alive`` and the
probability of no order in the horizon, from a :class:`cxkit.clv.BetaGeo` fitted on the
orders up to the cutoff). :class:`FeatureCache` shares feature frames and labels between
the fits of one analysis.
"""

from __future__ import annotations

import re
import warnings
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TypedDict

import ibis
import ibis.expr.types as ir
import numpy as np
import pandas as pd
import pyarrow as pa

from cxkit.churn.definition import (
    ChurnDefinition,
    label_table,
    labels,
    population_ids,
    ts_literal,
)
from cxkit.clv import BetaGeo, rfm_summary
from cxkit.data import CXData, resolve_as_of
from cxkit.errors import DataError, NotAvailableError, UsageError
from cxkit.result import AsOf

__all__ = [
    "ADVOCACY_EVENTS",
    "COMPLAINT_THEMES",
    "CONSIDERATION_EVENTS",
    "SUPPORT_EVENTS",
    "TEST_PREDICTED",
    "BgnbdFit",
    "CutoffFrame",
    "FeatureCache",
    "FeatureInfo",
    "bgnbd_scores",
    "describe_feature",
    "feature_table",
    "features",
    "finish_features",
    "level_sets",
]

#: Event types that mark each stage (DESIGN.md §7).
CONSIDERATION_EVENTS = ("product_view", "add_to_cart", "pricing_view", "trial_start")
ADVOCACY_EVENTS = ("referral", "review")
SUPPORT_EVENTS = ("support_contact",)

#: Keyword flags for complaint themes in free-text comments (lower-case substrings).
COMPLAINT_THEMES: dict[str, tuple[str, ...]] = {
    "delivery": (
        "delay",
        "late",
        "slipping",
        "still waiting",
        "took far too long",
        "never arrived",
    ),
    "support": (
        "rude",
        "unhelpful",
        "on hold",
        "painfully slow",
        "support chat was slow",
        "ignored",
    ),
    "app": ("crash", "freez", "buggy", "glitch"),
    "price": ("expensive", "overpriced", "too high", "cheaper elsewhere", "prices went up"),
}

_DAY = 86_400.0

#: The event (:meth:`FeatureCache.reached`) of a backtest whose test predictions are
#: made: its models and its test frame are in hand, its big design matrices gone.
TEST_PREDICTED = "backtest: test predictions made"

#: Complaint themes: name -> lower-case keywords.
Themes = Mapping[str, Sequence[str]]


class FeatureInfo(TypedDict):
    """What :func:`feature_table` used: the cutoff instant, trend window and levels."""

    end: pd.Timestamp
    trend_days: int
    levels: dict[str, list[str]]


def _slug(value: object) -> str:
    s = re.sub(r"[^0-9a-zA-Z]+", "_", str(value).strip().lower()).strip("_")
    return s or "blank"


def _top_levels(t: ir.Table, column: str, max_levels: int) -> list[str]:
    """Return the most frequent non-null values of a column (ties broken by value)."""
    nn = t.filter(t[column].notnull())
    counts = (
        nn.group_by(column)
        .aggregate(_n=nn.count())
        .order_by([ibis.desc("_n"), column])
        .limit(max_levels)
        .to_pandas()
    )
    return [str(v) for v in counts[column]]


def _rank_levels(counts: pd.Series, max_levels: int) -> list[str]:
    """Rank counts per value as :func:`_top_levels` does: most frequent, ties by value."""
    counts = counts[counts > 0]
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    return [str(v) for v, _ in ranked[:max_levels]]


def level_sets(
    data: CXData, cutoffs: Sequence[pd.Timestamp], *, max_levels: int = 12
) -> dict[pd.Timestamp, dict[str, list[str]]]:
    """Return the levels :func:`feature_table` uses at each cutoff, one scan per table.

    The same lists as :func:`feature_table` finds on its own (the most frequent order
    channels, event types and event channels up to each cutoff, ties broken by value),
    from one grouped count per table with one count column per cutoff instead of one
    query per table, column and cutoff.

    Parameters
    ----------
    data
        The data, cut at or after the latest cutoff.
    cutoffs
        Resolved cutoff instants.
    max_levels
        At most this many levels per column.

    Returns
    -------
    dict
        Cutoff -> ``{"order_channel": [...], "event": [...], "event_channel": [...]}``
        (the keys whose table and column the data has).
    """
    ends = list(dict.fromkeys(cutoffs))
    out: dict[pd.Timestamp, dict[str, list[str]]] = {e: {} for e in ends}
    if not ends:
        return out
    specs = [("orders", ("channel",), {"channel": "order_channel"})]
    specs.append(("events", ("event", "channel"), {"event": "event", "channel": "event_channel"}))
    for table, wanted, names in specs:
        if not data.has(table):
            continue
        t = data.table(table)
        cols = [c for c in wanted if c in t.columns]
        if not cols:
            continue
        t = t.filter(t.customer_id.notnull() & t.ts.notnull())
        n = {f"_n{i}": _count_if(t.ts <= ts_literal(e)) for i, e in enumerate(ends)}
        counts = t.group_by(cols).aggregate(**n).to_pandas()
        for col in cols:
            per = counts[counts[col].notna()].groupby(col, sort=False)[list(n)].sum()
            for i, e in enumerate(ends):
                out[e][names[col]] = _rank_levels(per[f"_n{i}"], max_levels)
    return out


def _only(t: ir.Table, ids: ir.Table | None) -> ir.Table:
    """Keep the rows of ``t`` whose customer is in ``ids`` (all rows when ``ids`` is None).

    A semi-join before the aggregation: customers outside a label population are never
    aggregated, instead of being aggregated and dropped by the final join.
    """
    if ids is None:
        return t
    return t.semi_join(ids, t.customer_id == ids.customer_id)


def _count_if(cond: ir.BooleanValue) -> ir.IntegerScalar:
    # A filtered count (COUNT ... FILTER (WHERE cond) in DuckDB and PostgreSQL): the same
    # counts as summing CASE WHEN cond THEN 1 ELSE 0, without a projected column per
    # count; measured a third faster on the events aggregation at 1M customers.
    return cond.count(where=cond)


def _sum_if(cond: ir.BooleanValue, value: ir.NumericValue) -> ir.NumericScalar:
    return ibis.cases((cond, value), else_=0.0).sum()


def feature_table(
    data: CXData,
    cutoff: AsOf,
    *,
    trend_days: int = 90,
    max_levels: int = 12,
    themes: Themes | None = None,
    customers: ir.Table | None = None,
    levels: Mapping[str, list[str]] | None = None,
) -> tuple[ir.Table, FeatureInfo]:
    """Return the point-in-time features at ``cutoff`` as one ibis expression.

    Only ``data.upto(cutoff)`` is read. Timestamps come back as columns (``*_at``) and
    are turned into day counts by :func:`features`; everything else is final.

    Parameters
    ----------
    data
        The data.
    cutoff
        The cutoff, resolved by :func:`cxkit.data.resolve_as_of` (a date includes its
        whole day).
    trend_days
        The window for "last N days vs the N before".
    max_levels
        At most this many channels / event types become columns (the most frequent).
    themes
        Complaint themes: name -> lower-case keywords (default :data:`COMPLAINT_THEMES`).
    customers
        Optional table with a ``customer_id`` column restricting the rows (for example a
        label population). By default every customer seen on or before the cutoff.
    levels
        The levels at this cutoff from :func:`level_sets` (``order_channel``, ``event``,
        ``event_channel``); those missing are found by a query here.

    Returns
    -------
    (expr, info)
        The expression (one row per customer) and a :class:`FeatureInfo` with ``end``
        (the cutoff instant) and the levels used.

    Raises
    ------
    UsageError
        When ``trend_days`` is below 1.
    NotAvailableError
        When the data has none of the four tables.
    """
    if trend_days < 1:
        raise UsageError(f"trend_days must be >= 1, got {trend_days!r}")
    end = resolve_as_of(data, cutoff)
    d = data.upto(end)
    w1 = ts_literal(end - pd.Timedelta(days=trend_days))
    w2 = ts_literal(end - pd.Timedelta(days=2 * trend_days))
    themes = dict(COMPLAINT_THEMES if themes is None else themes)
    info: FeatureInfo = {"end": end, "trend_days": trend_days, "levels": {}}
    blocks: list[ir.Table] = []
    T = trend_days
    known = dict(levels or {})

    def top(t: ir.Table, column: str, key: str) -> list[str]:
        return known[key] if key in known else _top_levels(t, column, max_levels)

    ids_only = None if customers is None else customers.select("customer_id").distinct()
    if d.has("orders"):
        o_all = d.table("orders")
        o_all = o_all.filter(o_all.customer_id.notnull() & o_all.ts.notnull())
        o = _only(o_all, ids_only)
        amt = o.amount.fill_null(0.0)
        aggs: dict[str, ir.Scalar] = {
            "orders_n": o.count(),
            "spend_total": amt.sum(),
            "first_order_at": o.ts.min(),
            "last_order_at": o.ts.max(),
            f"orders_last_{T}d_n": _count_if(o.ts > w1),
            f"orders_prev_{T}d_n": _count_if((o.ts > w2) & (o.ts <= w1)),
            f"spend_last_{T}d": _sum_if(o.ts > w1, amt),
            f"spend_prev_{T}d": _sum_if((o.ts > w2) & (o.ts <= w1), amt),
        }
        if "channel" in o.columns:
            levels = top(o_all, "channel", "order_channel")
            info["levels"]["order_channel"] = levels
            for lv in levels:
                aggs[f"orders_ch_{_slug(lv)}_n"] = _count_if(o.channel == lv)
        blocks.append(o.group_by("customer_id").aggregate(**aggs))

    if d.has("events"):
        ev_all = d.table("events")
        ev_all = ev_all.filter(ev_all.customer_id.notnull() & ev_all.ts.notnull())
        ev = _only(ev_all, ids_only)
        aggs = {
            "events_n": ev.count(),
            "first_event_at": ev.ts.min(),
            "last_event_at": ev.ts.max(),
            f"events_last_{T}d_n": _count_if(ev.ts > w1),
            f"events_prev_{T}d_n": _count_if((ev.ts > w2) & (ev.ts <= w1)),
            "consideration_n": _count_if(ev.event.isin(CONSIDERATION_EVENTS)),
            # engagement = every event but consideration (which clusters around orders)
            "engagement_n": _count_if(~ev.event.isin(CONSIDERATION_EVENTS)),
            "last_engagement_at": ev.ts.max(where=~ev.event.isin(CONSIDERATION_EVENTS)),
            "advocacy_n": _count_if(ev.event.isin(ADVOCACY_EVENTS)),
            "support_contacts_n": _count_if(ev.event.isin(SUPPORT_EVENTS)),
            f"support_contacts_last_{T}d_n": _count_if(
                ev.event.isin(SUPPORT_EVENTS) & (ev.ts > w1)
            ),
        }
        levels = top(ev_all, "event", "event")
        info["levels"]["event"] = levels
        for lv in levels:
            aggs[f"ev_{_slug(lv)}_n"] = _count_if(ev.event == lv)
        if "channel" in ev.columns:
            levels = top(ev_all, "channel", "event_channel")
            info["levels"]["event_channel"] = levels
            for lv in levels:
                aggs[f"events_ch_{_slug(lv)}_n"] = _count_if(ev.channel == lv)
            aggs["last_touch_channel"] = ev.channel.argmax(ev.ts)
        blocks.append(ev.group_by("customer_id").aggregate(**aggs))

    if d.has("responses"):
        r = d.table("responses")
        r = _only(r.filter(r.customer_id.notnull() & r.ts.notnull()), ids_only)
        aggs = {"responses_n": r.count()}
        for survey in ("nps", "csat", "ces"):
            is_s = (r.survey.lower() == survey) & r.score.notnull()
            aggs[f"{survey}_last"] = r.score.argmax(r.ts, where=is_s).cast("float64")
            aggs[f"{survey}_responses_n"] = _count_if(is_s)
        if "comment" in r.columns and themes:
            text = r.comment.lower()
            for theme, words in themes.items():
                cond = ibis.literal(False)
                for w in words:
                    cond = cond | text.contains(str(w).lower())
                aggs[f"theme_{_slug(theme)}_n"] = _count_if(r.comment.notnull() & cond)
            info["levels"]["themes"] = list(themes)
        blocks.append(r.group_by("customer_id").aggregate(**aggs))

    cust_attrs: ir.Table | None = None
    if d.has("customers"):
        c = d.table("customers")
        keep = ["customer_id"] + [
            col
            for col in ("signup_at", "region", "acquisition_channel", "plan")
            if col in c.columns
        ]
        cust_attrs = c.select(keep).filter(c.customer_id.notnull())

    if ids_only is not None:
        ids = ids_only
    else:
        id_parts = [b.select("customer_id") for b in blocks]
        if cust_attrs is not None:
            id_parts.append(cust_attrs.select("customer_id"))
        if not id_parts:
            raise NotAvailableError(
                "at least one of the tables customers, events, orders, responses"
            )
        ids = id_parts[0]
        for p in id_parts[1:]:
            ids = ids.union(p, distinct=False)
        ids = ids.distinct()

    out = ids
    for b in [*blocks, *([cust_attrs] if cust_attrs is not None else [])]:
        j = out.left_join(b, out.customer_id == b.customer_id)
        out = j.select(
            [out[c] for c in out.columns] + [b[c] for c in b.columns if c != "customer_id"]
        )
    return out, info


_TS_COLS = (
    "first_order_at",
    "last_order_at",
    "first_event_at",
    "last_event_at",
    "last_engagement_at",
    "signup_at",
)


def features(
    data: CXData,
    cutoff: AsOf,
    *,
    trend_days: int = 90,
    max_levels: int = 12,
    themes: Themes | None = None,
    customers: ir.Table | pd.DataFrame | None = None,
    bgnbd: bool = True,
    horizon_days: int = 90,
) -> pd.DataFrame:
    """Return the point-in-time churn features at ``cutoff``, one row per customer.

    Built in the engine. Nothing after the cutoff is read: the features come from
    ``data.upto(cutoff)``, so changing any row dated after the cutoff changes no feature.

    Columns (those whose table is absent are left out): ``recency_days`` (since the last
    order), ``orders_n``, ``spend_total``, ``spend_avg``, ``order_tenure_days``,
    ``orders_last_90d_n`` / ``orders_prev_90d_n`` / ``orders_trend_90d`` (and spend),
    orders per channel, ``event_recency_days``, event counts per event type, per channel
    and per stage (consideration, advocacy, support contacts), ``last_touch_channel``,
    the latest ``nps_last`` / ``csat_last`` / ``ces_last``, complaint-theme counts from
    comments, ``tenure_days`` (since the first sign-up or activity) and the customer's
    ``region`` / ``acquisition_channel`` / ``plan``.

    Parameters
    ----------
    data
        The data.
    cutoff
        The cutoff, resolved by :func:`cxkit.data.resolve_as_of` (a date-only value
        includes its whole day).
    trend_days
        The window for "last N days vs the N before" (default 90).
    max_levels
        At most this many channels / event types become columns (the most frequent).
    themes
        Complaint themes: name -> lower-case keywords (default :data:`COMPLAINT_THEMES`).
    customers
        Restrict to these customers (a table or frame with ``customer_id``).
    bgnbd
        Add ``bgnbd_p_alive`` and ``bgnbd_p_no_order_{horizon_days}d`` from a BG/NBD
        model fitted on the orders up to the cutoff (unsupervised, so nothing after the
        cutoff is used); skipped when the fit fails.
    horizon_days
        The horizon of the BG/NBD no-order probability feature.

    Returns
    -------
    pandas.DataFrame
        ``customer_id`` then the features, sorted by ``customer_id``.

    Examples
    --------
    >>> import pandas as pd, cxkit
    >>> orders = pd.DataFrame({"order_id": ["1", "2"], "customer_id": ["a", "a"],
    ...     "ts": pd.to_datetime(["2024-01-01", "2024-03-01"]), "amount": [10.0, 30.0]})
    >>> f = features(cxkit.load({"orders": orders}), "2024-03-31")
    >>> f[["orders_n", "spend_total", "recency_days"]].round(1).to_dict("records")
    [{'orders_n': 2, 'spend_total': 40.0, 'recency_days': 31.0}]
    """
    df, _ = _build_features(
        data,
        cutoff,
        trend_days=trend_days,
        max_levels=max_levels,
        themes=themes,
        customers=customers,
        bgnbd=bgnbd,
        horizon_days=horizon_days,
    )
    return df


def _build_features(
    data: CXData,
    cutoff: AsOf,
    *,
    trend_days: int,
    max_levels: int,
    themes: Themes | None,
    customers: ir.Table | pd.DataFrame | None,
    bgnbd: bool,
    horizon_days: int,
    levels: Mapping[str, list[str]] | None = None,
) -> tuple[pd.DataFrame, BgnbdFit | None]:
    """:func:`features`, and how its BG/NBD fit went (None when none was tried)."""
    if isinstance(customers, pd.DataFrame):
        ids = pd.DataFrame({"customer_id": customers["customer_id"].astype(str).unique()})
        customers = ibis.memtable(ids)
    expr, info = feature_table(
        data,
        cutoff,
        trend_days=trend_days,
        max_levels=max_levels,
        themes=themes,
        customers=customers,
        levels=levels,
    )
    # Through Arrow: ibis's own to_pandas measured 3.5x slower on this wide result.
    df = _finish_features(_arrow_to_pandas(expr.to_pyarrow()), info)
    fit: BgnbdFit | None = None
    if bgnbd and data.has("orders") and "orders_n" in df.columns:
        df, fit = _add_bgnbd(data.upto(info["end"]), info["end"], df, horizon_days)
    return df, fit


def _arrow_to_pandas(table: pa.Table) -> pd.DataFrame:
    """Convert an Arrow table and hand its memory back to the system at once.

    Arrow's allocator keeps freed memory for reuse; at 1M customers that is a second
    copy of the feature frame held for the rest of the analysis.
    """
    df = table.to_pandas()
    del table
    pa.default_memory_pool().release_unused()
    return df


def bgnbd_scores(
    data: CXData, end: pd.Timestamp, horizon_days: int
) -> tuple[pd.DataFrame | None, str]:
    """Fit BG/NBD on the orders up to ``end`` (in days) and score every customer.

    Unsupervised: only orders on or before ``end`` are read.

    Parameters
    ----------
    data
        The data.
    end
        The resolved cutoff instant.
    horizon_days
        The horizon of the no-order probability.

    Returns
    -------
    (scores, note)
        ``customer_id, p_alive, p_no_order`` (the BG/NBD probability of no purchase in
        the next ``horizon_days``) and a note naming the fitted parameters; ``None``
        and the reason when the fit fails.
    """
    try:
        summary = rfm_summary(data.upto(end), observation_end=end, time_unit="D")
        with warnings.catch_warnings():
            # standard errors are not used here; a warning about them is noise
            warnings.simplefilter("ignore", RuntimeWarning)
            bg = BetaGeo().fit(summary)
        alive = np.asarray(bg.p_alive(summary), dtype=float)
    except Exception as err:  # a failed unsupervised fit must not fail the analysis
        return None, str(err).splitlines()[0] if str(err) else type(err).__name__
    r, alpha = float(bg.params_["r"]), float(bg.params_["alpha"])
    x = summary["frequency"].to_numpy(dtype=float)
    T = summary["T"].to_numpy(dtype=float)
    # Alive: λ | history ~ Gamma(r + x, α + T), so P(no purchase in h) = ((α+T)/(α+T+h))^(r+x);
    # dead customers never purchase again.
    quiet = np.exp((r + x) * (np.log(alpha + T) - np.log(alpha + T + horizon_days)))
    out = pd.DataFrame(
        {
            "customer_id": summary["customer_id"].astype(pd.StringDtype()).to_numpy(),
            "p_alive": alive,
            "p_no_order": (1.0 - alive) + alive * quiet,
        }
    )
    return out, f"BG/NBD r = {r:.3g}, alpha = {alpha:.3g} days"


def _add_bgnbd(
    data: CXData, end: pd.Timestamp, df: pd.DataFrame, horizon_days: int
) -> tuple[pd.DataFrame, BgnbdFit]:
    """BG/NBD p_alive and P(no order in the horizon) as features (NaN without orders)."""
    scores, note = bgnbd_scores(data, end, horizon_days)
    if scores is None:
        return df, BgnbdFit(end, horizon_days, None, None, note)
    if scores["customer_id"].duplicated().any():
        raise DataError("BG/NBD scores have duplicate customer IDs", table="orders")
    # Columns assigned by position instead of a merge: a merge copies the whole frame.
    pos = pd.Index(scores["customer_id"]).get_indexer(df["customer_id"])
    found = pos >= 0
    for src, dst in (
        ("p_alive", "bgnbd_p_alive"),
        ("p_no_order", f"bgnbd_p_no_order_{horizon_days}d"),
    ):
        values = np.full(len(df), np.nan)
        values[found] = scores[src].to_numpy(dtype=float)[pos[found]]
        df[dst] = values
    return df, BgnbdFit(
        end, horizon_days, "bgnbd_p_alive", f"bgnbd_p_no_order_{horizon_days}d", note
    )


def _days(end: pd.Timestamp, s: pd.Series) -> pd.Series:
    ts = pd.to_datetime(s)
    return (end - ts).dt.total_seconds() / _DAY


def _finish_features(df: pd.DataFrame, info: FeatureInfo) -> pd.DataFrame:
    """Turn timestamps into day counts, fill count columns, derive ratios and trends.

    Changes ``df`` (a fresh frame from the engine) in place and returns a sorted copy.
    """
    end = info["end"]
    T = info["trend_days"]
    out = df
    out["customer_id"] = out["customer_id"].astype(pd.StringDtype())
    count_cols = [c for c in out.columns if c.endswith("_n")]
    for c in count_cols:
        out[c] = pd.to_numeric(out[c]).fillna(0).astype("int64")
    for c in ("spend_total", f"spend_last_{T}d", f"spend_prev_{T}d"):
        if c in out.columns:
            out[c] = pd.to_numeric(out[c]).astype("float64").fillna(0.0)
    if "orders_n" in out.columns:
        out["recency_days"] = _days(end, out["last_order_at"])
        out["order_tenure_days"] = _days(end, out["first_order_at"])
        with np.errstate(divide="ignore", invalid="ignore"):
            out["spend_avg"] = np.where(
                out["orders_n"] > 0, out["spend_total"] / out["orders_n"].clip(lower=1), np.nan
            )
        out[f"orders_trend_{T}d"] = out[f"orders_last_{T}d_n"] - out[f"orders_prev_{T}d_n"]
        out[f"spend_trend_{T}d"] = out[f"spend_last_{T}d"] - out[f"spend_prev_{T}d"]
    if "events_n" in out.columns:
        out["event_recency_days"] = _days(end, out["last_event_at"])
        out[f"events_trend_{T}d"] = out[f"events_last_{T}d_n"] - out[f"events_prev_{T}d_n"]
    firsts = [
        pd.to_datetime(out[c])
        for c in ("signup_at", "first_event_at", "first_order_at")
        if c in out.columns
    ]
    if firsts:
        first = pd.concat(firsts, axis=1).min(axis=1)
        out["tenure_days"] = _days(end, first)
    # Rates and "overdue" ratios: days since the last order/event times the customer's own
    # rate = how many orders/events would have happened since if the customer were still
    # active at that rate. Trees find such ratios hard to build from their parts.
    if "orders_n" in out.columns:
        span = out["order_tenure_days"].clip(lower=1.0)
        out["orders_per_30d"] = 30.0 * out["orders_n"] / span
        out["orders_overdue"] = out["recency_days"] * out["orders_n"] / span
    if "events_n" in out.columns and "tenure_days" in out.columns:
        span = out["tenure_days"].clip(lower=1.0)
        out["events_per_30d"] = 30.0 * out["events_n"] / span
        out["events_overdue"] = out["event_recency_days"] * out["events_n"] / span
        out["engagement_recency_days"] = _days(end, out["last_engagement_at"])
        out["engagement_overdue"] = out["engagement_recency_days"] * out["engagement_n"] / span
    for c in ("last_touch_channel", "region", "acquisition_channel", "plan"):
        if c in out.columns:
            out[c] = out[c].astype(pd.StringDtype())
    out = out.drop(columns=[c for c in _TS_COLS if c in out.columns])
    # The sort is also the one compacting copy: replaced columns still pin Arrow's blocks.
    return out.sort_values("customer_id", kind="stable").reset_index(drop=True)


_FEATURE_WORDS = {
    "recency_days": "days since the last order",
    "events_overdue": "time since the last activity relative to the customer's usual pace",
    "orders_overdue": "time since the last order relative to the customer's usual pace",
    "engagement_overdue": "time since the last engagement relative to the usual pace",
    "orders_per_30d": "orders per 30 days",
    "events_per_30d": "events per 30 days",
    "event_recency_days": "days since the last activity",
    "orders_n": "number of orders",
    "spend_total": "total spend",
    "spend_avg": "average order value",
    "tenure_days": "customer tenure",
    "order_tenure_days": "time since the first order",
    "support_contacts_n": "support contacts",
    "csat_last": "latest CSAT",
    "nps_last": "latest NPS",
    "ces_last": "latest CES",
}


def describe_feature(name: str) -> str:
    """Return a plain name for a feature column (or a ``column=level`` design column).

    Parameters
    ----------
    name
        A column of :func:`features` or of :attr:`ChurnModel.feature_names_
        <cxkit.churn.ChurnModel>`.

    Returns
    -------
    str
        Words a reader understands.

    Examples
    --------
    >>> describe_feature("events_ch_app_n"), describe_feature("plan=basic")
    ('events ch app', 'plan = basic')
    """
    if name in _FEATURE_WORDS:
        return _FEATURE_WORDS[name]
    if name.startswith("bgnbd_p_no_order_"):
        return "BG/NBD probability of no order in the horizon"
    if name == "bgnbd_p_alive":
        return "BG/NBD probability of being alive"
    if "=" in name:
        col, lv = name.split("=", 1)
        return f"{col.replace('_', ' ')} = {lv}"
    base = name[:-2] if name.endswith("_n") else name
    return base.replace("_", " ").strip()


@dataclass(frozen=True)
class BgnbdFit:
    """How the BG/NBD fit behind the features at one cutoff went.

    Attributes
    ----------
    cutoff
        The cutoff instant (the model saw the orders up to it).
    horizon_days
        The horizon of the no-order probability.
    p_alive_column, p_no_order_column
        The feature columns holding ``p_alive`` and the probability of no order in the
        horizon (NaN for customers without orders); None when the fit failed.
    note
        The fitted parameters in words, or why the fit failed.
    """

    cutoff: pd.Timestamp
    horizon_days: int
    p_alive_column: str | None
    p_no_order_column: str | None
    note: str

    @property
    def ok(self) -> bool:
        """Whether the fit succeeded (and the feature columns exist)."""
        return self.p_alive_column is not None


@dataclass
class CutoffFrame:
    """Features joined to labels at one cutoff.

    Attributes
    ----------
    cutoff
        The cutoff instant.
    X
        The features of the definition's population (``customer_id`` first).
    y
        The labels (1 = churned) in the rows of ``X``, or None when not labelled.
    """

    cutoff: pd.Timestamp
    X: pd.DataFrame
    y: np.ndarray | None


class FeatureCache:
    """Share feature frames and labels between fits at the same cutoffs within one call.

    Each cutoff's features are built once and kept until a step that is done with them
    calls :meth:`release`; a caller that needs a cutoff after a step it calls (which
    would release it) keeps it with :meth:`holding`. Labels (small) and the BG/NBD fits
    behind the features (:meth:`bgnbd_fit`) are kept for the cache's life.

    Parameters
    ----------
    data
        The data.
    trend_days, max_levels, themes, horizon_days
        Passed to :func:`features`.

    Attributes
    ----------
    built : list of pandas.Timestamp
        The cutoffs whose features were built, in order (one entry per build).
    peak_frames : int
        The most feature frames held at once.
    """

    def __init__(
        self,
        data: CXData,
        trend_days: int,
        max_levels: int,
        themes: Themes | None,
        horizon_days: int = 90,
    ) -> None:
        self.data = data
        self.trend_days = trend_days
        self.max_levels = max_levels
        self.themes = themes
        self.horizon_days = horizon_days
        self.built: list[pd.Timestamp] = []
        self.peak_frames = 0
        self._features: dict[pd.Timestamp, pd.DataFrame] = {}
        self._held: Counter[pd.Timestamp] = Counter()
        self._bgnbd: dict[pd.Timestamp, BgnbdFit] = {}
        self._labels: dict[tuple[pd.Timestamp, ChurnDefinition], pd.DataFrame] = {}
        self._expected: list[pd.Timestamp] = []
        self._levels: dict[pd.Timestamp, dict[str, list[str]]] = {}
        self._when: dict[str, list[Callable[[], None]]] = {}

    def expect(self, *ends: pd.Timestamp) -> None:
        """Announce the cutoffs whose features will be built (all levels in one scan).

        The first build at one of them finds the channel and event-type levels of all
        of them with :func:`level_sets` (one query per table) instead of three queries
        per cutoff; the features are the same.

        Parameters
        ----------
        *ends
            Resolved cutoff instants.
        """
        self._expected += [e for e in ends if e not in self._expected]

    def when(self, event: str, callback: Callable[[], None]) -> None:
        """Call ``callback`` once, when a step of the analysis says it reached ``event``.

        For work that can start as soon as an earlier step is far enough (e.g. a model
        fit in a thread of its own while the caller goes on). Not called when no step
        reaches ``event``.

        Parameters
        ----------
        event
            A name a step passes to :meth:`reached` (see :data:`TEST_PREDICTED`).
        callback
            A function of no arguments; it runs in the thread that reached the event.
        """
        self._when.setdefault(event, []).append(callback)

    def reached(self, event: str) -> None:
        """Say that ``event`` is reached: run the callbacks waiting for it (see :meth:`when`).

        Parameters
        ----------
        event
            The event's name.
        """
        for callback in self._when.pop(event, []):
            callback()

    @property
    def cutoffs(self) -> list[pd.Timestamp]:
        """The cutoffs whose features are held now, oldest first."""
        return sorted(self._features)

    def forget_before(self, ts: pd.Timestamp) -> None:
        """Drop the features of cutoffs before ``ts`` (no longer needed: frees memory).

        Parameters
        ----------
        ts
            The earliest cutoff still needed.
        """
        for end in [e for e in self._features if e < ts]:
            del self._features[end]

    @contextmanager
    def holding(self, *ends: pd.Timestamp) -> Iterator[None]:
        """Keep the features at ``ends`` through :meth:`release` calls inside the block.

        Leaving the block drops nothing: the frames stay until the next :meth:`release`
        of their cutoff outside any hold.

        Parameters
        ----------
        *ends
            Resolved cutoff instants.

        Yields
        ------
        None
            Within the block the cutoffs are held.
        """
        self._held.update(ends)
        try:
            yield
        finally:
            self._held.subtract(ends)
            self._held = +self._held  # drop the zero counts

    def release(self, *ends: pd.Timestamp) -> None:
        """Drop the features at ``ends`` unless they are held (a step is done with them).

        Parameters
        ----------
        *ends
            Resolved cutoff instants; ones not built are ignored.
        """
        for end in ends:
            if not self._held[end]:
                self._features.pop(end, None)

    def bgnbd_fit(self, end: pd.Timestamp) -> BgnbdFit | None:
        """Return how the BG/NBD fit behind the features at ``end`` went.

        Parameters
        ----------
        end
            The resolved cutoff instant.

        Returns
        -------
        BgnbdFit or None
            None when the cache built no features at ``end`` or tried no fit (no orders).
        """
        return self._bgnbd.get(end)

    def features(
        self, end: pd.Timestamp, definition: ChurnDefinition | None = None
    ) -> pd.DataFrame:
        """Return the features at ``end`` (computed once until released).

        With a ``definition`` the features are built only for its population at ``end``
        (the customers a frame at that cutoff holds); the customers outside it are
        never aggregated. The frame is sorted by ``customer_id``.

        Parameters
        ----------
        end
            The resolved cutoff instant.
        definition
            The churn definition whose population the rows are; None: every customer
            (unless the frame at ``end`` was already built for a population).

        Returns
        -------
        pandas.DataFrame
            :func:`features` at ``end``, one row per customer, sorted by id.
        """
        if end not in self._features:
            population = None
            if definition is not None:
                population = label_table(
                    self.data, end, definition=definition, check_window=False
                ).select("customer_id")
            if end in self._expected and end not in self._levels:
                todo = [e for e in self._expected if e not in self._levels]
                self._levels.update(level_sets(self.data, todo, max_levels=self.max_levels))
            df, fit = _build_features(
                self.data,
                end,
                trend_days=self.trend_days,
                max_levels=self.max_levels,
                themes=self.themes,
                customers=population,
                bgnbd=True,
                horizon_days=self.horizon_days,
                levels=self._levels.get(end),
            )
            df["customer_id"] = df["customer_id"].astype(pd.StringDtype())
            if not df["customer_id"].is_monotonic_increasing:
                df = df.sort_values("customer_id", kind="stable", ignore_index=True)
            self._features[end] = df
            if fit is not None:
                self._bgnbd[end] = fit
            self.built.append(end)
            self.peak_frames = max(self.peak_frames, len(self._features))
        return self._features[end]

    def labels(self, end: pd.Timestamp, definition: ChurnDefinition) -> pd.DataFrame:
        """Return the labels at ``end`` (computed once).

        Parameters
        ----------
        end
            The resolved cutoff instant.
        definition
            The churn definition.

        Returns
        -------
        pandas.DataFrame
            :func:`~cxkit.churn.labels` at ``end``.
        """
        key = (end, definition)
        if key not in self._labels:
            self._labels[key] = labels(self.data, end, definition=definition)
        return self._labels[key]

    def frame(
        self, end: pd.Timestamp, definition: ChurnDefinition, *, labelled: bool
    ) -> CutoffFrame:
        """Return the features of the definition's population at ``end``.

        Parameters
        ----------
        end
            The resolved cutoff instant.
        definition
            The churn definition.
        labelled
            Join the labels (the label window must be observed); else only the
            population's features.

        Returns
        -------
        CutoffFrame
            The features and, when ``labelled``, the labels.
        """
        feats = self.features(end, definition)
        ids = (
            self.labels(end, definition) if labelled else population_ids(self.data, end, definition)
        )
        y = ids["churned"].to_numpy(dtype=int) if labelled else None
        if feats["customer_id"].equals(ids["customer_id"]):
            return CutoffFrame(end, feats, y)  # the same rows in the same order: no copy
        merged = ids[["customer_id"]].merge(
            feats, on="customer_id", how="left", validate="one_to_one"
        )
        return CutoffFrame(end, merged, y)


def finish_features(df: pd.DataFrame, info: FeatureInfo) -> pd.DataFrame:
    """Finish rows of :func:`feature_table` in pandas, as :func:`features` does (no BG/NBD).

    For callers that collect the expression themselves, e.g. in bounded batches
    (:mod:`cxkit.churn.scale`): timestamps become day counts, counts are filled, ratios
    and trends derived; the rows come back sorted by ``customer_id``.

    Parameters
    ----------
    df
        Rows of the expression from :func:`feature_table` (changed in place).
    info
        The :class:`FeatureInfo` returned with that expression.

    Returns
    -------
    pandas.DataFrame
        The features, sorted by ``customer_id``.
    """
    return _finish_features(df, info)
