"""Per-customer persona features, computed in the engine.

:func:`customer_features` aggregates events, orders and responses per customer with ibis
(the row-level work stays in the engine); only the per-customer table comes to pandas,
where :func:`derive_features` turns the raw aggregates into rates, shares and days.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

import ibis
import ibis.expr.types as ir
import numpy as np
import pandas as pd

from cxkit.data import CXData, resolve_as_of
from cxkit.errors import DataError, NotAvailableError
from cxkit.result import AsOf

#: Event names counted as support contacts by default.
SUPPORT_EVENTS: tuple[str, ...] = ("support_contact",)

_DAYS_PER_MONTH = 30.4375
_MAX_CHANNELS = 12
_MAX_LEVELS = 12


def count_if(cond: ir.BooleanValue) -> ir.IntegerScalar:
    """Count the rows where ``cond`` holds, NULL counting as false.

    A CASE sum rather than a sum of booleans: it runs alike on DuckDB, PostgreSQL and
    Spark.

    Parameters
    ----------
    cond
        A boolean column expression.

    Returns
    -------
    ibis.expr.types.IntegerScalar
        The count, as an aggregate expression.
    """
    return ibis.cases((cond, 1), else_=0).sum()


def _safe(name: str) -> str:
    """Return ``name`` as a lower-case identifier (for ``share_<channel>`` columns)."""
    return re.sub(r"[^0-9a-zA-Z]+", "_", str(name)).strip("_").lower() or "unknown"


def _top_values(tbl: ir.Table, column: str, limit: int) -> list[str]:
    """Return the most common non-null values of a column (a small engine query)."""
    col = tbl[column]
    counts = (
        tbl.filter(col.notnull())
        .group_by(column)
        .aggregate(n=lambda t: t.count())
        .order_by([ibis.desc("n"), column])
        .limit(limit)
        .to_pandas()
    )
    return [str(v) for v in counts[column]]


def _channel_counts(tbl: ir.Table) -> dict[str, ir.Scalar]:
    """Return per-channel activity counts (``_ch_<channel>``) and their total."""
    aggs: dict[str, ir.Scalar] = {}
    for ch in _top_values(tbl, "channel", _MAX_CHANNELS):
        aggs[f"_ch_{_safe(ch)}"] = count_if(tbl.channel == ch)
    aggs["_ch_total"] = count_if(tbl.channel.notnull())
    return aggs


def _events_agg(data: CXData, end: pd.Timestamp, support_events: Sequence[str]) -> ir.Table:
    ev = data.table("events").filter(lambda t: t.ts <= end)
    aggs: dict[str, ir.Scalar] = {
        "events_n": ev.count(),
        "first_event_at": ev.ts.min(),
        "last_event_at": ev.ts.max(),
        "support_contacts": count_if(ev.event.isin(list(support_events))),
    }
    if "channel" in ev.columns:
        aggs.update(_channel_counts(ev))
    return ev.group_by("customer_id").aggregate(**aggs)


def _orders_agg(data: CXData, end: pd.Timestamp, with_channels: bool) -> ir.Table:
    od = data.table("orders").filter(lambda t: t.ts <= end)
    aggs: dict[str, ir.Scalar] = {
        "orders": od.count(),
        "spend": od.amount.sum(),
        "first_order_at": od.ts.min(),
        "last_order_at": od.ts.max(),
    }
    if with_channels and "channel" in od.columns:
        aggs.update(_channel_counts(od))
    return od.group_by("customer_id").aggregate(**aggs)


def _responses_agg(data: CXData, end: pd.Timestamp) -> ir.Table:
    rs = data.table("responses").filter(lambda t: (t.ts <= end) & t.score.notnull())
    csat = (
        rs.filter(rs.survey == "csat")
        .group_by("customer_id")
        .aggregate(csat_mean=lambda t: t.score.cast("float64").mean())
    )
    nps_rows = rs.filter(rs.survey == "nps")
    w = ibis.window(group_by="customer_id", order_by=[ibis.desc("ts"), ibis.desc("score")])
    nps = (
        nps_rows.mutate(_rn=ibis.row_number().over(w))
        .filter(lambda t: t._rn == 0)
        .select("customer_id", nps_latest=lambda t: t.score.cast("float64"))
    )
    return csat.outer_join(nps, "customer_id").select(
        customer_id=lambda t: ibis.coalesce(t.customer_id, t.customer_id_right),
        csat_mean=lambda t: t.csat_mean,
        nps_latest=lambda t: t.nps_latest,
    )


def _customer_ids(data: CXData, end: pd.Timestamp) -> ir.Table:
    """Return every customer: the customers table, or the IDs in the activity tables."""
    if data.has("customers"):
        cu = data.table("customers")
        if "signup_at" in cu.columns:
            cu = cu.filter(cu.signup_at.isnull() | (cu.signup_at <= end))
        return cu.select("customer_id").distinct()
    parts = [
        data.table(n).filter(lambda t: t.ts <= end).select("customer_id")
        for n in ("events", "orders", "responses")
        if data.has(n)
    ]
    ids = parts[0]
    for p in parts[1:]:
        ids = ids.union(p)
    return ids.distinct()


def _categorical_columns(data: CXData, skip: Iterable[str] = ()) -> list[str]:
    """Return the string customer attributes with 2–12 levels (one-hot candidates)."""
    if not data.has("customers"):
        return []
    cu = data.table("customers")
    out = []
    for name, dtype in cu.schema().items():
        if name in ("customer_id", *skip) or not dtype.is_string():
            continue
        n_levels = int(cu[name].nunique().to_pandas())
        if 2 <= n_levels <= _MAX_LEVELS:
            out.append(name)
    return out


def customer_features(
    data: CXData,
    *,
    as_of: AsOf = None,
    categorical: Sequence[str] | None = None,
    support_events: Sequence[str] = SUPPORT_EVENTS,
) -> pd.DataFrame:
    """Compute one row of behavioural features per customer, in the engine.

    Parameters
    ----------
    data
        The loaded data. Needs at least ``orders`` or ``events``.
    as_of
        The last instant the features may see (:func:`cxkit.data.resolve_as_of`: a date
        means its whole day); days are measured from it.
    categorical
        Customer attributes to one-hot encode; by default the string columns of
        ``customers`` with 2–12 levels (``region``, ``acquisition_channel``, ``plan`` …).
    support_events
        Event names counted as support contacts.

    Returns
    -------
    pandas.DataFrame
        Indexed by ``customer_id``; numeric columns only (NaN where a customer has no
        responses): ``recency_days``, ``tenure_days``, ``orders``, ``orders_per_month``,
        ``spend``, ``spend_per_order`` (NaN without orders), ``events_per_month``,
        ``support_contacts``, ``share_<channel>`` (share of the customer's events per
        channel; from orders when there are no events), ``csat_mean`` (1–5),
        ``nps_latest`` (0–10) and ``<attribute>=<level>`` one-hot columns.
        ``attrs["basis"]`` says what the features rest on, ``attrs["as_of"]`` the
        resolved cut, ``attrs["tables"]`` the tables used.

    Raises
    ------
    NotAvailableError
        When the data has neither orders nor events.
    DataError
        When a ``categorical`` column is not in the customers table.

    Examples
    --------
    >>> import pandas as pd, cxkit
    >>> orders = pd.DataFrame({"order_id": ["1", "2", "3"], "customer_id": ["a", "a", "b"],
    ...                        "ts": ["2024-01-01", "2024-02-01", "2024-01-15"],
    ...                        "amount": [10.0, 30.0, 5.0]})
    >>> f = customer_features(cxkit.load({"orders": orders}), as_of="2024-02-01 12:00")
    >>> f[["orders", "spend", "recency_days"]].to_dict("index")["a"]
    {'orders': 2.0, 'spend': 40.0, 'recency_days': 0.5}
    >>> f.attrs["basis"]
    'purchase behaviour only (orders)'
    """
    expr, cats, flags = raw_feature_expr(
        data, as_of=as_of, categorical=categorical, support_events=support_events
    )
    raw = expr.to_pandas()
    return derive_features(raw, flags["cut"], cats, **{k: flags[k] for k in FEATURE_FLAGS})  # type: ignore[arg-type]


FEATURE_FLAGS = ("has_events", "has_orders", "has_resp")


def raw_feature_expr(
    data: CXData,
    *,
    as_of: AsOf = None,
    categorical: Sequence[str] | None = None,
    support_events: Sequence[str] = SUPPORT_EVENTS,
) -> tuple[ir.Table, list[str], dict[str, object]]:
    """Return the raw per-customer aggregates of :func:`customer_features` as an expression.

    The engine part of :func:`customer_features`, uncollected (scale mode samples it
    and streams it in batches, :mod:`cxkit.personas.scale`); :func:`derive_features`
    turns collected rows of it into the features.

    Parameters
    ----------
    data, as_of, categorical, support_events
        As in :func:`customer_features`.

    Returns
    -------
    (expr, categorical, flags)
        The ibis expression (one row per customer), the attributes one-hot encoded and
        ``{"cut": resolved as_of, "has_events": ..., "has_orders": ..., "has_resp": ...}``
        (the keyword arguments of :func:`derive_features`, with its ``cut``).

    Raises
    ------
    NotAvailableError, DataError
        As in :func:`customer_features`.
    """
    if not (data.has("orders") or data.has("events")):
        raise NotAvailableError("the table 'orders' or 'events'", analysis="Personas")
    end = resolve_as_of(data, as_of)
    has_events = data.has("events")
    has_orders = data.has("orders")
    expr = _customer_ids(data, end)
    if data.has("customers", "signup_at"):
        cu = data.table("customers")
        expr = expr.left_join(cu.select("customer_id", "signup_at"), "customer_id").drop(
            "customer_id_right"
        )
    if has_events:
        expr = expr.left_join(_events_agg(data, end, support_events), "customer_id").drop(
            "customer_id_right"
        )
    if has_orders:
        expr = expr.left_join(_orders_agg(data, end, not has_events), "customer_id").drop(
            "customer_id_right"
        )
    has_resp = data.has("responses", "survey", "score")
    if has_resp:
        expr = expr.left_join(_responses_agg(data, end), "customer_id").drop("customer_id_right")
    cats = list(categorical) if categorical is not None else _categorical_columns(data)
    if cats:
        cu = data.table("customers")
        missing = [c for c in cats if c not in cu.columns]
        if missing:
            raise DataError(
                f"categorical column(s) {missing} are not in the customers table",
                table="customers",
                fix=f"choose among {list(cu.columns)}",
            )
        expr = expr.left_join(cu.select("customer_id", *cats), "customer_id").drop(
            "customer_id_right"
        )
    flags: dict[str, object] = {
        "cut": end,
        "has_events": has_events,
        "has_orders": has_orders,
        "has_resp": has_resp,
    }
    return expr, cats, flags


def derive_features(
    raw: pd.DataFrame,
    cut: pd.Timestamp,
    categorical: Sequence[str],
    *,
    has_events: bool,
    has_orders: bool,
    has_resp: bool,
) -> pd.DataFrame:
    """Turn raw per-customer aggregates into the features of :func:`customer_features`.

    Parameters
    ----------
    raw
        One row per customer: ``customer_id``, optional ``signup_at``, the event
        aggregates (``events_n``, ``first_event_at``, ``last_event_at``,
        ``support_contacts``), the order aggregates (``orders``, ``spend``,
        ``first_order_at``, ``last_order_at``), channel counts ``_ch_<channel>`` with
        their total ``_ch_total``, ``csat_mean``, ``nps_latest`` and the
        ``categorical`` columns, as far as present.
    cut
        The instant days are measured from (the resolved ``as_of``).
    categorical
        The customer attributes to one-hot encode.
    has_events, has_orders, has_resp
        Which tables the aggregates come from.

    Returns
    -------
    pandas.DataFrame
        The features, as :func:`customer_features` returns them.
    """
    raw = raw.drop_duplicates("customer_id").sort_values("customer_id", kind="stable")
    idx = pd.Index(raw["customer_id"].astype("string"), name="customer_id")
    raw = raw.set_index(idx).drop(columns="customer_id")

    def ts(col: str) -> pd.Series:
        if col not in raw:
            return pd.Series(pd.NaT, index=raw.index, dtype="datetime64[ns]")
        return pd.to_datetime(raw[col]).astype("datetime64[ns]")

    first = pd.concat([ts("signup_at"), ts("first_event_at"), ts("first_order_at")], axis=1).min(
        axis=1
    )
    last = pd.concat([ts("last_event_at"), ts("last_order_at")], axis=1).max(axis=1)
    first = first.fillna(last)
    day = pd.Timedelta(days=1)
    out = pd.DataFrame(index=raw.index)
    tenure = ((cut - first) / day).clip(lower=0)
    out["recency_days"] = ((cut - last.fillna(first)) / day).clip(lower=0)
    out["tenure_days"] = tenure
    months = np.maximum(tenure.fillna(0) / _DAYS_PER_MONTH, 1.0)
    if has_orders:
        orders = raw["orders"].fillna(0).astype(float)
        spend = raw["spend"].fillna(0.0).astype(float)
        out["orders"] = orders
        out["orders_per_month"] = orders / months
        out["spend"] = spend
        # undefined without orders: NaN (the model fills it with the median of buyers)
        out["spend_per_order"] = spend / orders.where(orders > 0)
    if has_events:
        out["events_per_month"] = raw["events_n"].fillna(0).astype(float) / months
        out["support_contacts"] = raw["support_contacts"].fillna(0).astype(float)
    ch_cols = [c for c in raw.columns if c.startswith("_ch_") and c != "_ch_total"]
    if ch_cols:
        total = raw["_ch_total"].fillna(0).astype(float)
        denom = total.where(total > 0, 1.0)
        for c in ch_cols:
            out[f"share_{c[4:]}"] = raw[c].fillna(0).astype(float) / denom
    if has_resp:
        out["csat_mean"] = raw["csat_mean"].astype(float)
        out["nps_latest"] = raw["nps_latest"].astype(float)
    for c in categorical:
        values = raw[c].astype("string").fillna("(missing)")
        for level in sorted(values.unique()):
            out[f"{c}={level}"] = (values == level).astype(float)
    out = out.astype(float)
    tables = [n for n, flag in (("events", has_events), ("orders", has_orders)) if flag]
    if has_resp:
        tables.append("responses")
    if categorical:
        tables.append("customers")
    attrs = ", customer attributes)" if categorical else ")"
    if has_events:
        basis = "behaviour across channels (events" + (", orders" if has_orders else "")
        basis += (", responses" if has_resp else "") + attrs
    else:
        basis = "purchase behaviour only (orders" + (", responses" if has_resp else "") + attrs
    out.attrs.update({"basis": basis, "as_of": cut.isoformat(), "tables": tables})
    return out
