"""Churn: the definition, labels, point-in-time features, time-split validation, scoring.

Everything here answers one question: *which customers will stop buying (or stop
being active, or cancel) in the next ``horizon_days``?*

* :class:`ChurnDefinition` states what "churn" means and is carried by every output.
  Non-contractual (the default when customers carry no ``churned_at``): a customer with
  at least one order (``basis="orders"``) or any activity (``basis="activity"``) on or
  before the cutoff who has none in the ``horizon_days`` after it. Contractual (when
  customers carry ``churned_at``): a customer whose subscription was live at the cutoff
  and whose ``churned_at`` falls in the ``horizon_days`` after it.
* :func:`labels` builds the labels at a cutoff; :func:`feature_table` /
  :func:`features` build point-in-time features **in the engine** (ibis, backend
  neutral) from ``data.upto(cutoff)`` only, so nothing after the cutoff can leak in.
* :class:`ChurnModel` is a calibrated gradient-boosting (or logistic) model on those
  features. It is fitted on the labels of cutoff ``c − h`` and calibrated on the labels
  of cutoff ``c`` (a time-respecting split): both label windows end before anything
  the model is later tested or used on.
* :func:`validate` trains at ``t0`` and tests at ``t1 = t0 + h`` (the label windows do
  not overlap), against a logistic-regression baseline and the BG/NBD ``1 − p_alive``
  baseline when orders exist: ROC AUC, PR AUC, Brier, calibration, lift and gains by
  decile, permutation importance.
* :func:`score` gives each customer a churn probability and a risk band at ``as_of``,
  keyed by ``customer_id`` so that it joins with CLV.
* :func:`analyze` runs both at once (sharing feature computation) and :func:`findings`
  turns the result into sentences.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import ibis
import ibis.expr.datatypes as dt
import ibis.expr.types as ir
import numpy as np
import pandas as pd

from cxkit.cache import run_cached
from cxkit.data import CXData, end_of_day, resolve_as_of
from cxkit.errors import DataError, NotAvailableError, UsageError
from cxkit.findings import Finding
from cxkit.stats import MIN_N, is_small, wilson_ci

__all__ = [
    "BAND_LABELS",
    "BAND_THRESHOLDS",
    "COMPLAINT_THEMES",
    "MODEL_LABELS",
    "ChurnAnalysis",
    "ChurnDefinition",
    "ChurnModel",
    "ChurnValidation",
    "analyze",
    "auc_ci",
    "churn_rate_over_time",
    "data_end",
    "define",
    "describe_feature",
    "feature_table",
    "features",
    "findings",
    "label_table",
    "labels",
    "lift_table",
    "permutation_importance",
    "risk_band",
    "risk_by",
    "score",
    "validate",
]

BASES = ("auto", "orders", "activity")
KINDS = ("auto", "non_contractual", "contractual")
ESTIMATORS = ("hgb", "logit")
CALIBRATIONS = ("auto", "isotonic", "sigmoid")

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

#: Risk bands: calibrated churn probability below 0.5 is "low", 0.5–0.8 "medium",
#: 0.8 and above "high".
BAND_THRESHOLDS: tuple[float, float] = (0.5, 0.8)
BAND_LABELS: tuple[str, str, str] = ("low", "medium", "high")

_DAY = 86_400.0


# --------------------------------------------------------------------------------------
# definition
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ChurnDefinition:
    """What "churn" means in an analysis; every output carries one.

    Parameters
    ----------
    horizon_days
        Length of the label window after the cutoff, in days.
    basis
        Non-contractual only: ``"orders"`` (no order in the window) or ``"activity"``
        (no event and no order in the window).
    kind
        ``"non_contractual"`` or ``"contractual"`` (customers carry ``churned_at``).

    Examples
    --------
    >>> ChurnDefinition(horizon_days=90).describe()[:46]
    'Churn = a customer with at least one order on '
    """

    horizon_days: int = 90
    basis: str = "orders"
    kind: str = "non_contractual"

    def __post_init__(self) -> None:
        if not isinstance(self.horizon_days, int | np.integer) or self.horizon_days < 1:
            raise UsageError(
                f"horizon_days must be a whole number of days >= 1, got {self.horizon_days!r}"
            )
        if self.basis not in ("orders", "activity"):
            raise UsageError(f"basis must be 'orders' or 'activity', got {self.basis!r}")
        if self.kind not in ("non_contractual", "contractual"):
            raise UsageError(f"kind must be 'non_contractual' or 'contractual', got {self.kind!r}")

    def describe(self) -> str:
        """The definition in one plain sentence."""
        h = self.horizon_days
        if self.kind == "contractual":
            return (
                f"Churn = a customer whose subscription was live at the cutoff (signed up, "
                f"not yet churned) and whose churned_at falls within the {h} days after it "
                "(contractual)."
            )
        if self.basis == "orders":
            return (
                f"Churn = a customer with at least one order on or before the cutoff who "
                f"places no order in the {h} days after it (non-contractual, orders basis)."
            )
        return (
            f"Churn = a customer with any activity (event or order) on or before the cutoff "
            f"who has no activity in the {h} days after it (non-contractual, activity basis)."
        )

    def to_dict(self) -> dict[str, Any]:
        """A JSON-friendly dict with the sentence."""
        return {
            "horizon_days": int(self.horizon_days),
            "basis": self.basis,
            "kind": self.kind,
            "text": self.describe(),
        }


def define(
    data: CXData, *, horizon_days: int = 90, basis: str = "auto", kind: str = "auto"
) -> ChurnDefinition:
    """Resolve a :class:`ChurnDefinition` for ``data``.

    ``kind="auto"`` is contractual when the customers table has ``churned_at``;
    ``basis="auto"`` is ``"orders"`` when there is an orders table, else ``"activity"``.

    Raises
    ------
    UsageError
        For an unknown ``basis`` or ``kind``.
    NotAvailableError
        When the data has no table the definition can be computed from.
    """
    if basis not in BASES:
        raise UsageError(f"basis must be one of {list(BASES)}, got {basis!r}")
    if kind not in KINDS:
        raise UsageError(f"kind must be one of {list(KINDS)}, got {kind!r}")
    if kind == "auto":
        kind = "contractual" if data.has("customers", "churned_at") else "non_contractual"
    if kind == "contractual":
        data.require("customers", "churned_at", analysis="Contractual churn")
    if basis == "auto":
        basis = "orders" if data.has("orders") else "activity"
    if kind == "non_contractual":
        if basis == "orders":
            data.require("orders", "customer_id", "ts", analysis="Churn (orders basis)")
        elif not (data.has("orders") or data.has("events")):
            raise NotAvailableError("the table 'orders' or 'events'", analysis="Churn")
    return ChurnDefinition(horizon_days=int(horizon_days), basis=basis, kind=kind)


def _resolve_definition(
    data: CXData,
    definition: ChurnDefinition | None,
    horizon_days: int,
    basis: str,
    kind: str,
) -> ChurnDefinition:
    if definition is not None:
        if not isinstance(definition, ChurnDefinition):
            raise UsageError(
                f"definition must be a ChurnDefinition, got {type(definition).__name__}"
            )
        return definition
    return define(data, horizon_days=horizon_days, basis=basis, kind=kind)


# --------------------------------------------------------------------------------------
# time helpers
# --------------------------------------------------------------------------------------


def _cutoff_end(data: CXData, cutoff: Any) -> pd.Timestamp:
    """The last instant a cutoff includes (a date-only cutoff includes its whole day).

    Without a cutoff, the day of the data's latest timestamp (or its ``as_of``) is used.
    """
    ts = resolve_as_of(data, cutoff)
    if cutoff is None:
        ts = ts.normalize()
    return end_of_day(ts)


def _ts(value: pd.Timestamp) -> ir.Scalar:
    return ibis.literal(pd.Timestamp(value).to_pydatetime(), type=dt.Timestamp())


def _activity(data: CXData, basis: str) -> ir.Table:
    """``customer_id, ts`` of the rows that count as staying (orders, or orders + events)."""
    parts = []
    if data.has("orders"):
        parts.append(data.table("orders").select("customer_id", "ts"))
    if basis == "activity" and data.has("events"):
        parts.append(data.table("events").select("customer_id", "ts"))
    if not parts:
        raise NotAvailableError(
            "the table 'orders' (or 'events' for basis='activity')", analysis="Churn"
        )
    out = parts[0]
    for p in parts[1:]:
        out = out.union(p, distinct=False)
    return out.filter(out.ts.notnull() & out.customer_id.notnull())


def data_end(data: CXData, definition: ChurnDefinition) -> pd.Timestamp:
    """The latest timestamp that the definition's labels can observe."""
    if definition.kind == "contractual":
        latest = data.max_ts()
        churned = data.table("customers").churned_at.max().to_pandas()
        if churned is not None and not pd.isna(churned):
            latest = pd.Timestamp(churned) if latest is None else max(latest, pd.Timestamp(churned))
    else:
        value = _activity(data, definition.basis).ts.max().to_pandas()
        latest = None if value is None or pd.isna(value) else pd.Timestamp(value)
    if data.as_of is not None:
        # Data cut with upto(as_of) was observed up to as_of, even if nothing happened late.
        latest = data.as_of if latest is None else max(latest, data.as_of)
    if latest is None:
        raise DataError("the data has no timestamps", fix="churn needs dated orders or events")
    return latest


# --------------------------------------------------------------------------------------
# labels
# --------------------------------------------------------------------------------------


def label_table(
    data: CXData, cutoff: Any, *, definition: ChurnDefinition, check_window: bool = True
) -> ir.Table:
    """Labels at ``cutoff`` as an ibis expression: ``customer_id, churned`` (int64 0/1).

    The population is the customers the definition counts at the cutoff; ``churned`` is
    1 when the definition's event happens within ``(cutoff, cutoff + horizon]``.
    """
    end = _cutoff_end(data, cutoff)
    hend = end + pd.Timedelta(days=definition.horizon_days)
    if check_window:
        latest = data_end(data, definition)
        # A day's grace: a data set "to 2024-12-31" may stop at its last order's time.
        if hend > end_of_day(latest.normalize()):
            raise UsageError(
                f"the label window ({end:%Y-%m-%d} + {definition.horizon_days} days = "
                f"{hend:%Y-%m-%d}) runs past the end of the data ({latest:%Y-%m-%d}); "
                "choose an earlier cutoff or a shorter horizon_days"
            )
    e, he = _ts(end), _ts(hend)
    if definition.kind == "contractual":
        cust = data.table("customers")
        live = cust.churned_at.isnull() | (cust.churned_at > e)
        if "signup_at" in cust.columns:
            started = cust.signup_at.notnull() & (cust.signup_at <= e)
        else:
            first = _first_activity(data)
            cust = cust.left_join(first, "customer_id")
            cust = cust.drop(*[c for c in cust.columns if c.endswith("_right")])
            started = cust.first_ts.notnull() & (cust.first_ts <= e)
        pop = cust.filter(started & live)
        churned = pop.churned_at.notnull() & (pop.churned_at <= he)
        # (cases, not a cast: PostgreSQL cannot cast boolean to bigint)
        flag = ibis.cases((churned, 1), else_=0).cast("int64")
        return pop.select("customer_id", churned=flag).order_by("customer_id")
    act = _activity(data, definition.basis)
    pop = act.filter(act.ts <= e).select("customer_id").distinct()
    stay = (
        act.filter((act.ts > e) & (act.ts <= he))
        .select("customer_id")
        .distinct()
        .mutate(_stay=ibis.literal(1))
    )
    joined = pop.left_join(stay, pop.customer_id == stay.customer_id)
    flag = ibis.cases((joined._stay.isnull(), 1), else_=0).cast("int64")
    return joined.select(customer_id=pop.customer_id, churned=flag).order_by("customer_id")


def _first_activity(data: CXData) -> ir.Table:
    parts = [
        data.table(n).select("customer_id", "ts")
        for n in ("events", "orders", "responses")
        if data.has(n, "ts")
    ]
    if not parts:
        raise NotAvailableError("a 'signup_at' column or dated activity", analysis="Churn")
    u = parts[0]
    for p in parts[1:]:
        u = u.union(p, distinct=False)
    return u.group_by("customer_id").aggregate(first_ts=u.ts.min())


def labels(
    data: CXData,
    cutoff: Any,
    *,
    definition: ChurnDefinition | None = None,
    horizon_days: int = 90,
    basis: str = "auto",
    kind: str = "auto",
    check_window: bool = True,
) -> pd.DataFrame:
    """Churn labels at a cutoff: one row per customer in the population.

    Parameters
    ----------
    data
        The data.
    cutoff
        The cutoff date; a date without a time includes its whole day.
    definition
        A :class:`ChurnDefinition`; else one is built from ``horizon_days``, ``basis``
        and ``kind`` with :func:`define`.
    check_window
        Raise when the label window runs past the end of the data (default).

    Returns
    -------
    pandas.DataFrame
        ``customer_id`` (string) and ``churned`` (int64: 1 = churned), sorted by id.

    Raises
    ------
    UsageError
        When the label window is not fully observed.

    Examples
    --------
    >>> import pandas as pd, cxkit
    >>> orders = pd.DataFrame({"order_id": ["1", "2", "3"], "customer_id": ["a", "a", "b"],
    ...     "ts": pd.to_datetime(["2024-01-05", "2024-02-10", "2024-01-20"]),
    ...     "amount": [10.0, 12.0, 8.0]})
    >>> data = cxkit.load({"orders": orders})
    >>> labels(data, "2024-01-31", horizon_days=10, check_window=False)
      customer_id  churned
    0           a        0
    1           b        1
    """
    definition = _resolve_definition(data, definition, horizon_days, basis, kind)
    expr = label_table(data, cutoff, definition=definition, check_window=check_window)
    out = expr.to_pandas()
    out["customer_id"] = out["customer_id"].astype(pd.StringDtype())
    out["churned"] = out["churned"].astype("int64")
    return out.sort_values("customer_id", kind="stable").reset_index(drop=True)


# --------------------------------------------------------------------------------------
# point-in-time features
# --------------------------------------------------------------------------------------


def _slug(value: Any) -> str:
    s = re.sub(r"[^0-9a-zA-Z]+", "_", str(value).strip().lower()).strip("_")
    return s or "blank"


def _top_levels(t: ir.Table, column: str, max_levels: int) -> list[str]:
    """The most frequent non-null values of a column (ties broken by value)."""
    nn = t.filter(t[column].notnull())
    counts = (
        nn.group_by(column)
        .aggregate(_n=nn.count())
        .order_by([ibis.desc("_n"), column])
        .limit(max_levels)
        .to_pandas()
    )
    return [str(v) for v in counts[column]]


def _count_if(cond: ir.BooleanValue) -> ir.IntegerScalar:
    return ibis.cases((cond, 1), else_=0).sum()


def _sum_if(cond: ir.BooleanValue, value: ir.NumericValue) -> ir.NumericScalar:
    return ibis.cases((cond, value), else_=0.0).sum()


def feature_table(
    data: CXData,
    cutoff: Any,
    *,
    trend_days: int = 90,
    max_levels: int = 12,
    themes: Mapping[str, Sequence[str]] | None = None,
    customers: ir.Table | None = None,
) -> tuple[ir.Table, dict[str, Any]]:
    """Point-in-time features at ``cutoff`` as one ibis expression (one row per customer).

    Only ``data.upto(cutoff)`` is read. Timestamps come back as columns (``*_at``) and
    are turned into day counts by :func:`features`; everything else is final.

    Parameters
    ----------
    customers
        Optional table with a ``customer_id`` column restricting the rows (for example a
        label population). By default every customer seen on or before the cutoff.

    Returns
    -------
    (expr, info)
        The expression and a dict with ``end`` (the cutoff instant) and the levels used.
    """
    if trend_days < 1:
        raise UsageError(f"trend_days must be >= 1, got {trend_days!r}")
    end = _cutoff_end(data, cutoff)
    d = data.upto(end)
    w1 = _ts(end - pd.Timedelta(days=trend_days))
    w2 = _ts(end - pd.Timedelta(days=2 * trend_days))
    themes = dict(COMPLAINT_THEMES if themes is None else themes)
    info: dict[str, Any] = {"end": end, "trend_days": trend_days, "levels": {}}
    blocks: list[ir.Table] = []
    T = trend_days

    if d.has("orders"):
        o = d.table("orders")
        o = o.filter(o.customer_id.notnull() & o.ts.notnull())
        amt = o.amount.fill_null(0.0)
        aggs: dict[str, Any] = {
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
            levels = _top_levels(o, "channel", max_levels)
            info["levels"]["order_channel"] = levels
            for lv in levels:
                aggs[f"orders_ch_{_slug(lv)}_n"] = _count_if(o.channel == lv)
        blocks.append(o.group_by("customer_id").aggregate(**aggs))

    if d.has("events"):
        ev = d.table("events")
        ev = ev.filter(ev.customer_id.notnull() & ev.ts.notnull())
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
        levels = _top_levels(ev, "event", max_levels)
        info["levels"]["event"] = levels
        for lv in levels:
            aggs[f"ev_{_slug(lv)}_n"] = _count_if(ev.event == lv)
        if "channel" in ev.columns:
            levels = _top_levels(ev, "channel", max_levels)
            info["levels"]["event_channel"] = levels
            for lv in levels:
                aggs[f"events_ch_{_slug(lv)}_n"] = _count_if(ev.channel == lv)
            aggs["last_touch_channel"] = ev.channel.argmax(ev.ts)
        blocks.append(ev.group_by("customer_id").aggregate(**aggs))

    if d.has("responses"):
        r = d.table("responses")
        r = r.filter(r.customer_id.notnull() & r.ts.notnull())
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

    if customers is not None:
        ids = customers.select("customer_id").distinct()
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
    cutoff: Any,
    *,
    trend_days: int = 90,
    max_levels: int = 12,
    themes: Mapping[str, Sequence[str]] | None = None,
    customers: ir.Table | pd.DataFrame | None = None,
    bgnbd: bool = True,
    horizon_days: int = 90,
) -> pd.DataFrame:
    """Point-in-time churn features at ``cutoff`` (built in the engine, one row per customer).

    Nothing after the cutoff is read: the features come from ``data.upto(cutoff)``, so
    changing any row dated after the cutoff changes no feature.

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
        The cutoff date (a date-only value includes its whole day).
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
        cutoff is used); skipped when :mod:`cxkit.clv` is missing or the fit fails.
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
    )
    # Through Arrow: ibis's own to_pandas measured 3.5x slower on this wide result.
    df = _finish_features(_arrow_to_pandas(expr.to_pyarrow()), info)
    if bgnbd and data.has("orders") and "orders_n" in df.columns:
        df = _add_bgnbd(data.upto(info["end"]), info["end"], df, horizon_days)
    return df


def _arrow_to_pandas(table: Any) -> pd.DataFrame:
    """Convert an Arrow table and hand its memory back to the system at once.

    Arrow's allocator keeps freed memory for reuse; at 1M customers that is a second
    copy of the feature frame held for the rest of the analysis.
    """
    import pyarrow as pa

    df = table.to_pandas()
    del table
    pa.default_memory_pool().release_unused()
    return df


def _bgnbd_scores(
    data: CXData, end: pd.Timestamp, horizon_days: int
) -> tuple[pd.DataFrame | None, str]:
    """Fit BG/NBD on the orders up to ``end`` (days) and score every customer.

    Returns ``customer_id, p_alive, p_no_order`` (the BG/NBD probability of no purchase
    in the next ``horizon_days``) and a note; ``None`` when the model is unavailable.
    Unsupervised: only orders on or before ``end`` are read.
    """
    try:
        from cxkit.clv import BetaGeo, rfm_summary
    except ImportError:
        return None, "cxkit.clv is not installed"
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
) -> pd.DataFrame:
    """BG/NBD p_alive and P(no order in the horizon) as features (NaN without orders)."""
    scores, _ = _bgnbd_scores(data, end, horizon_days)
    if scores is None:
        return df
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
    return df


def _days(end: pd.Timestamp, s: pd.Series) -> pd.Series:
    ts = pd.to_datetime(s)
    return (end - ts).dt.total_seconds() / _DAY


def _finish_features(df: pd.DataFrame, info: Mapping[str, Any]) -> pd.DataFrame:
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


# --------------------------------------------------------------------------------------
# the model
# --------------------------------------------------------------------------------------


class _Design:
    """Turns a feature frame into a float matrix with fixed columns (learned in fit)."""

    def __init__(self, max_levels: int = 12) -> None:
        self.max_levels = max_levels

    def fit(self, X: pd.DataFrame) -> _Design:
        X = X.drop(columns=["customer_id"], errors="ignore")
        self.numeric_ = [c for c in X.columns if pd.api.types.is_numeric_dtype(X[c])]
        self.categorical_: dict[str, list[str]] = {}
        for c in X.columns:
            if c in self.numeric_:
                continue
            counts = X[c].astype("object").dropna().astype(str).value_counts()
            counts = counts.sort_index(kind="stable").sort_values(ascending=False, kind="stable")
            self.categorical_[c] = list(counts.index[: self.max_levels])
        self.names_ = list(self.numeric_) + [
            f"{c}={lv}" for c, levels in self.categorical_.items() for lv in levels
        ]
        return self

    def transform(self, X: pd.DataFrame) -> np.ndarray:
        cols = []
        for c in self.numeric_:
            if c in X.columns:
                cols.append(pd.to_numeric(X[c]).astype("float64").to_numpy(na_value=np.nan))
            else:
                fill = 0.0 if c.endswith("_n") else np.nan
                cols.append(np.full(len(X), fill))
        for c, levels in self.categorical_.items():
            if c in X.columns:
                v = X[c].astype(pd.StringDtype())
                for lv in levels:
                    cols.append((v == lv).fillna(False).to_numpy(dtype="float64"))
            else:
                cols.extend(np.zeros(len(X)) for _ in levels)
        if not cols:
            return np.empty((len(X), 0))
        return np.column_stack(cols)


def _threads(n: int | None) -> Any:
    """Limit OpenMP/BLAS threads while fitting and predicting.

    HistGradientBoosting's OpenMP threads busy-wait: on a shared 2-core machine the
    default (all cores) measured 15x slower than one thread.
    """
    # threadpoolctl only limits libraries already loaded: load sklearn's OpenMP first.
    import sklearn.ensemble  # noqa: F401
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=n)


def _signed_log1p(x: np.ndarray) -> np.ndarray:
    return np.sign(x) * np.log1p(np.abs(x))


def _make_estimator(kind: str, random_state: int) -> Any:
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer, StandardScaler

    if kind == "hgb":
        return HistGradientBoostingClassifier(
            learning_rate=0.1,
            max_iter=200,
            max_leaf_nodes=15,
            min_samples_leaf=40,
            l2_regularization=1.0,
            early_stopping=True,
            validation_fraction=0.2,
            n_iter_no_change=25,
            random_state=random_state,
        )
    return make_pipeline(
        FunctionTransformer(_signed_log1p),
        SimpleImputer(strategy="median", add_indicator=True, keep_empty_features=True),
        StandardScaler(),
        LogisticRegression(max_iter=2000, C=1.0),
    )


@dataclass
class _Frame:
    """Features joined to labels at one cutoff."""

    cutoff: pd.Timestamp
    X: pd.DataFrame
    y: np.ndarray | None


class _FeatureCache:
    """Shares feature frames between fits at the same cutoffs within one call."""

    def __init__(
        self, data: CXData, trend_days: int, max_levels: int, themes: Any, horizon_days: int = 90
    ) -> None:
        self.data = data
        self.kw = {
            "trend_days": trend_days,
            "max_levels": max_levels,
            "themes": themes,
            "horizon_days": horizon_days,
        }
        self._features: dict[pd.Timestamp, pd.DataFrame] = {}
        self._labels: dict[tuple[pd.Timestamp, ChurnDefinition], pd.DataFrame] = {}

    def forget_before(self, ts: pd.Timestamp) -> None:
        """Drop the features of cutoffs before ``ts`` (no longer needed: frees memory)."""
        for end in [e for e in self._features if e < ts]:
            del self._features[end]

    def features(self, end: pd.Timestamp) -> pd.DataFrame:
        if end not in self._features:
            self._features[end] = features(self.data, end, **self.kw)
        return self._features[end]

    def labels(self, end: pd.Timestamp, definition: ChurnDefinition) -> pd.DataFrame:
        key = (end, definition)
        if key not in self._labels:
            self._labels[key] = labels(self.data, end, definition=definition)
        return self._labels[key]

    def frame(self, end: pd.Timestamp, definition: ChurnDefinition, *, labelled: bool) -> _Frame:
        feats = self.features(end)
        if labelled:
            lab = self.labels(end, definition)
            merged = lab.merge(feats, on="customer_id", how="left", validate="one_to_one")
            y = merged.pop("churned").to_numpy(dtype=int)
            return _Frame(end, merged, y)
        pop = _population_ids(self.data, end, definition)
        merged = pop.merge(feats, on="customer_id", how="left", validate="one_to_one")
        return _Frame(end, merged, None)


def _population_ids(data: CXData, end: pd.Timestamp, definition: ChurnDefinition) -> pd.DataFrame:
    """The customers the definition would label at ``end`` (labels not needed)."""
    expr = label_table(data, end, definition=definition, check_window=False).select("customer_id")
    ids = expr.to_pandas()
    ids["customer_id"] = ids["customer_id"].astype(pd.StringDtype())
    return ids.sort_values("customer_id", kind="stable").reset_index(drop=True)


def _subsample(n: int, max_rows: int | None, rng: np.random.Generator) -> np.ndarray:
    if max_rows is None or n <= max_rows:
        return np.arange(n)
    return np.sort(rng.choice(n, size=max_rows, replace=False))


class ChurnModel:
    """A calibrated churn model on point-in-time features.

    ``fit(data, cutoff=c)`` fits the estimator on the labels at cutoff ``c − h`` (label
    window ``(c − h, c]``) and calibrates its probabilities on the labels at ``c``
    (window ``(c, c + h]``) with :class:`~sklearn.calibration.CalibratedClassifierCV`:
    a time-respecting split. With too little history for ``c − h`` it falls back to
    3-fold calibration at ``c`` and says so in ``calibration_split_``.

    Parameters
    ----------
    horizon_days, basis, kind
        The churn definition (see :func:`define`); or pass ``definition`` to ``fit``.
    estimator
        ``"hgb"`` (HistGradientBoostingClassifier, default) or ``"logit"``
        (LogisticRegression on log-scaled, standardised features).
    calibration
        ``"isotonic"``, ``"sigmoid"`` or ``"auto"`` (isotonic with at least 500
        calibration rows, else sigmoid).
    trend_days, max_levels, themes
        Passed to :func:`features`.
    max_train_rows
        Fit and calibrate on at most this many customers each (a seeded sample).
    n_threads
        OpenMP/BLAS threads for fitting and predicting (``None``: the library default).
    random_state
        Seed for the estimator and any sampling.

    Attributes
    ----------
    definition_, cutoffs_, feature_names_, estimator_, calibration_method_,
    calibration_split_, n_fit_, n_calibrate_, churn_rate_fit_, churn_rate_calibrate_
    """

    def __init__(
        self,
        *,
        horizon_days: int = 90,
        basis: str = "auto",
        kind: str = "auto",
        estimator: str = "hgb",
        calibration: str = "auto",
        trend_days: int = 90,
        max_levels: int = 12,
        themes: Mapping[str, Sequence[str]] | None = None,
        max_train_rows: int | None = 200_000,
        n_threads: int | None = 1,
        random_state: int = 0,
    ) -> None:
        self.horizon_days = horizon_days
        self.basis = basis
        self.kind = kind
        self.estimator = estimator
        self.calibration = calibration
        self.trend_days = trend_days
        self.max_levels = max_levels
        self.themes = themes
        self.max_train_rows = max_train_rows
        self.n_threads = n_threads
        self.random_state = random_state

    # -- fit ---------------------------------------------------------------------------

    def fit(
        self,
        data: CXData,
        *,
        cutoff: Any = None,
        definition: ChurnDefinition | None = None,
        _cache: _FeatureCache | None = None,
    ) -> ChurnModel:
        """Fit at ``cutoff − horizon`` and calibrate at ``cutoff``.

        ``cutoff`` defaults to the latest cutoff whose label window is observed (the end
        of the data minus ``horizon_days``).
        """
        with _threads(self.n_threads):
            return self._fit(data, cutoff=cutoff, definition=definition, cache=_cache)

    def _fit(
        self,
        data: CXData,
        *,
        cutoff: Any,
        definition: ChurnDefinition | None,
        cache: _FeatureCache | None,
    ) -> ChurnModel:
        from sklearn.calibration import CalibratedClassifierCV
        from sklearn.frozen import FrozenEstimator

        if self.estimator not in ESTIMATORS:
            raise UsageError(f"estimator must be one of {list(ESTIMATORS)}, got {self.estimator!r}")
        if self.calibration not in CALIBRATIONS:
            raise UsageError(
                f"calibration must be one of {list(CALIBRATIONS)}, got {self.calibration!r}"
            )
        definition = _resolve_definition(data, definition, self.horizon_days, self.basis, self.kind)
        h = pd.Timedelta(days=definition.horizon_days)
        if cutoff is None:
            cal_end = end_of_day((data_end(data, definition) - h).normalize())
        else:
            cal_end = _cutoff_end(data, cutoff)
        fit_end = cal_end - h
        cache = cache or _FeatureCache(
            data, self.trend_days, self.max_levels, self.themes, definition.horizon_days
        )
        rng = np.random.default_rng(self.random_state)

        cal = cache.frame(cal_end, definition, labelled=True)
        _check_classes(cal.y, cal_end, "calibration")
        fit_frame: _Frame | None = None
        try:
            fit_frame = cache.frame(fit_end, definition, labelled=True)
            if len(fit_frame.y) < 2 * MIN_N or len(np.unique(fit_frame.y)) < 2:
                fit_frame = None
        except (UsageError, DataError):
            fit_frame = None

        design = _Design(self.max_levels)
        if fit_frame is not None:
            i_fit = _subsample(len(fit_frame.y), self.max_train_rows, rng)
            i_cal = _subsample(len(cal.y), self.max_train_rows, rng)
            design.fit(fit_frame.X.iloc[i_fit])
            base = _make_estimator(self.estimator, self.random_state)
            base.fit(design.transform(fit_frame.X.iloc[i_fit]), fit_frame.y[i_fit])
            method = self._method(len(i_cal))
            model = CalibratedClassifierCV(FrozenEstimator(base), method=method)
            model.fit(design.transform(cal.X.iloc[i_cal]), cal.y[i_cal])
            split = (
                f"fitted on the labels at {fit_end:%Y-%m-%d}, calibrated ({method}) on "
                f"the labels at {cal_end:%Y-%m-%d}"
            )
            self.n_fit_ = len(i_fit)
            self.n_calibrate_ = len(i_cal)
            self.churn_rate_fit_ = float(fit_frame.y[i_fit].mean())
            self.cutoffs_ = {"fit": fit_end, "calibrate": cal_end}
        else:
            from sklearn.model_selection import StratifiedKFold

            i_cal = _subsample(len(cal.y), self.max_train_rows, rng)
            design.fit(cal.X.iloc[i_cal])
            method = self._method(len(i_cal) * 2 // 3)
            cv = StratifiedKFold(n_splits=3, shuffle=True, random_state=self.random_state)
            model = CalibratedClassifierCV(
                _make_estimator(self.estimator, self.random_state), method=method, cv=cv
            )
            Xc = design.transform(cal.X.iloc[i_cal])
            model.fit(Xc, cal.y[i_cal])
            # For ranking-only uses (importance): one estimator on all calibration rows.
            base = _make_estimator(self.estimator, self.random_state).fit(Xc, cal.y[i_cal])
            split = (
                f"fitted and calibrated ({method}, 3-fold) on the labels at {cal_end:%Y-%m-%d}: "
                "too little history for a time-respecting calibration split"
            )
            self.n_fit_ = len(i_cal)
            self.n_calibrate_ = len(i_cal)
            self.churn_rate_fit_ = float(cal.y[i_cal].mean())
            self.cutoffs_ = {"fit": cal_end, "calibrate": cal_end}
        self.definition_ = definition
        self.design_ = design
        self.feature_names_ = list(design.names_)
        self.estimator_ = model
        self.base_estimator_ = base
        self.calibration_method_ = method
        self.calibration_split_ = split
        self.churn_rate_calibrate_ = float(cal.y[i_cal].mean())
        return self

    def _method(self, n_cal: int) -> str:
        if self.calibration == "auto":
            return "isotonic" if n_cal >= 500 else "sigmoid"
        return self.calibration

    # -- predict -----------------------------------------------------------------------

    def _check_fitted(self) -> None:
        if not hasattr(self, "estimator_"):
            raise UsageError("this ChurnModel is not fitted yet; call fit(data) first")

    def predict_frame(self, X: pd.DataFrame) -> np.ndarray:
        """Churn probabilities for a feature frame from :func:`features`."""
        self._check_fitted()
        if len(X) == 0:
            return np.empty(0)
        with _threads(self.n_threads):
            return self.estimator_.predict_proba(self.design_.transform(X))[:, 1]

    def predict_proba(
        self, data: CXData, *, as_of: Any = None, _cache: _FeatureCache | None = None
    ) -> pd.DataFrame:
        """Churn probability over the next ``horizon_days`` for each customer at ``as_of``.

        Returns ``customer_id, churn_probability`` for the definition's population at
        ``as_of`` (for the orders basis: every customer with an order by then).
        """
        self._check_fitted()
        end = _cutoff_end(data, as_of)
        cache = _cache or _FeatureCache(
            data, self.trend_days, self.max_levels, self.themes, self.definition_.horizon_days
        )
        frame = cache.frame(end, self.definition_, labelled=False)
        p = self.predict_frame(frame.X)
        return pd.DataFrame(
            {"customer_id": frame.X["customer_id"].to_numpy(), "churn_probability": p}
        )


def _check_classes(y: np.ndarray | None, end: pd.Timestamp, what: str) -> None:
    if y is None or len(y) == 0:
        raise DataError(
            f"no customers to learn churn from at the {what} cutoff {end:%Y-%m-%d}",
            fix="choose a later cutoff or check that the data has orders before it",
        )
    if len(np.unique(y)) < 2:
        word = "churned" if y[0] == 1 else "stayed"
        raise DataError(
            f"every one of the {len(y):,} customers {word} at the {what} cutoff {end:%Y-%m-%d}",
            fix="choose another cutoff or horizon_days so that both outcomes occur",
        )


# --------------------------------------------------------------------------------------
# metrics
# --------------------------------------------------------------------------------------


def auc_ci(y: Any, score: Any, *, level: float = 0.95) -> tuple[float, float, float]:
    """ROC AUC with the Hanley–McNeil (1982) interval: ``(auc, low, high)``.

    Examples
    --------
    >>> auc, lo, hi = auc_ci([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8])
    >>> round(auc, 2)
    0.75
    """
    from scipy.stats import norm
    from sklearn.metrics import roc_auc_score

    y = np.asarray(y, dtype=int)
    s = np.asarray(score, dtype=float)
    n1, n0 = int(y.sum()), int((1 - y).sum())
    if n1 == 0 or n0 == 0:
        return np.nan, np.nan, np.nan
    a = float(roc_auc_score(y, s))
    q1, q2 = a / (2 - a), 2 * a * a / (1 + a)
    var = (a * (1 - a) + (n1 - 1) * (q1 - a * a) + (n0 - 1) * (q2 - a * a)) / (n1 * n0)
    z = float(norm.ppf(0.5 + level / 2))
    se = float(np.sqrt(max(var, 0.0)))
    return a, max(0.0, a - z * se), min(1.0, a + z * se)


def _rank_deciles(score: np.ndarray, n_bins: int = 10) -> np.ndarray:
    """Bin 1 = the highest scores. Ties are broken by position (stable, deterministic)."""
    order = np.argsort(-np.asarray(score, dtype=float), kind="stable")
    ranks = np.empty(len(order), dtype=int)
    ranks[order] = np.arange(len(order))
    return (ranks * n_bins // max(len(order), 1)) + 1


def lift_table(y: Any, score: Any, *, n_bins: int = 10) -> pd.DataFrame:
    """Lift and cumulative gains by score decile (decile 1 = highest predicted risk).

    Returns
    -------
    pandas.DataFrame
        ``decile, customers, churners, churn_rate, ci_low, ci_high, lift,
        cumulative_customers_share, cumulative_gain`` (gain = share of all churners
        captured in deciles 1..k).

    Examples
    --------
    >>> t = lift_table([1, 1, 0, 0], [0.9, 0.8, 0.2, 0.1], n_bins=2)
    >>> t[["decile", "churn_rate", "lift", "cumulative_gain"]].to_dict("list")
    {'decile': [1, 2], 'churn_rate': [1.0, 0.0], 'lift': [2.0, 0.0], 'cumulative_gain': [1.0, 1.0]}
    """
    y = np.asarray(y, dtype=int)
    dec = _rank_deciles(np.asarray(score, dtype=float), n_bins)
    df = pd.DataFrame({"decile": dec, "y": y})
    g = df.groupby("decile").agg(customers=("y", "size"), churners=("y", "sum")).reset_index()
    g["churn_rate"] = g["churners"] / g["customers"]
    lo, hi = wilson_ci(g["churners"].to_numpy(), g["customers"].to_numpy())
    g["ci_low"], g["ci_high"] = lo, hi
    base = y.mean() if len(y) else np.nan
    g["lift"] = g["churn_rate"] / base if base > 0 else np.nan
    g["cumulative_customers_share"] = g["customers"].cumsum() / g["customers"].sum()
    total = g["churners"].sum()
    g["cumulative_gain"] = g["churners"].cumsum() / total if total > 0 else np.nan
    return g.astype({"decile": "int64", "customers": "int64", "churners": "int64"})


def _calibration_table(y: np.ndarray, p: np.ndarray, n_bins: int = 10) -> pd.DataFrame:
    dec = _rank_deciles(p, n_bins)
    df = pd.DataFrame({"bin": n_bins + 1 - dec, "y": y, "p": p})
    g = df.groupby("bin").agg(n=("y", "size"), churners=("y", "sum"), mean_predicted=("p", "mean"))
    g = g.reset_index()
    g["observed_rate"] = g["churners"] / g["n"]
    lo, hi = wilson_ci(g["churners"].to_numpy(), g["n"].to_numpy())
    g["ci_low"], g["ci_high"] = lo, hi
    return g


def _metrics_row(name: str, y: np.ndarray, p: np.ndarray) -> dict[str, Any]:
    from sklearn.metrics import average_precision_score, brier_score_loss

    auc, lo, hi = auc_ci(y, p)
    ok = np.all((p >= 0) & (p <= 1))
    return {
        "model": name,
        "roc_auc": auc,
        "roc_auc_low": lo,
        "roc_auc_high": hi,
        "pr_auc": float(average_precision_score(y, p)),
        "brier": float(brier_score_loss(y, p)) if ok else np.nan,
        "customers": len(y),
        "churners": int(y.sum()),
    }


def _curve_rows(name: str, y: np.ndarray, p: np.ndarray, max_points: int = 200) -> pd.DataFrame:
    from sklearn.metrics import precision_recall_curve, roc_curve

    fpr, tpr, _ = roc_curve(y, p)
    prec, rec, _ = precision_recall_curve(y, p)

    def thin(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if len(a) <= max_points:
            return a, b
        idx = np.unique(np.linspace(0, len(a) - 1, max_points).round().astype(int))
        return a[idx], b[idx]

    fpr, tpr = thin(fpr, tpr)
    rec, prec = thin(rec, prec)
    return pd.concat(
        [
            pd.DataFrame({"model": name, "curve": "roc", "x": fpr, "y": tpr}),
            pd.DataFrame({"model": name, "curve": "pr", "x": rec, "y": prec}),
        ],
        ignore_index=True,
    )


def _fast_auc(y: np.ndarray, s: np.ndarray) -> float:
    from scipy.stats import rankdata

    n1 = int(y.sum())
    n0 = len(y) - n1
    r = rankdata(s)
    return float((r[y == 1].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


def _used_columns(estimator: Any, n_columns: int) -> np.ndarray:
    """Which columns a fitted gradient-boosting model splits on (all, if unknown)."""
    used = np.zeros(n_columns, dtype=bool)
    try:
        for stage in estimator._predictors:
            for tree in stage:
                nodes = tree.nodes
                used[nodes["feature_idx"][~nodes["is_leaf"].astype(bool)]] = True
    except (AttributeError, KeyError, TypeError, IndexError):
        return np.ones(n_columns, dtype=bool)
    return used


def permutation_importance(
    model: ChurnModel,
    X: pd.DataFrame,
    y: Any,
    *,
    n_repeats: int = 3,
    random_state: int = 0,
) -> pd.DataFrame:
    """Drop in ROC AUC when each design column is shuffled (mean and sd over repeats).

    The ranking score is the uncalibrated estimator's: calibration is monotone, so it
    ranks customers the same way, and this avoids sklearn's per-call overhead.

    Returns
    -------
    pandas.DataFrame
        ``feature, importance_mean, importance_std``, largest first (empty when ``y``
        has one class).
    """
    model._check_fitted()
    y = np.asarray(y, dtype=int)
    cols = ["feature", "importance_mean", "importance_std"]
    if len(np.unique(y)) < 2:
        return pd.DataFrame(columns=cols)
    rng = np.random.default_rng(random_state)
    Xd = model.design_.transform(X)
    base = model.base_estimator_

    def rank_score(M: np.ndarray) -> np.ndarray:
        return base.predict_proba(M)[:, 1]

    used = _used_columns(base, Xd.shape[1])
    with _threads(model.n_threads):
        ref = _fast_auc(y, rank_score(Xd))
        means, sds = [], []
        for j in range(Xd.shape[1]):
            col = Xd[:, j].copy()
            if not used[j] or np.all(np.isnan(col)) or np.nanmin(col) == np.nanmax(col):
                # a column no tree splits on (or a constant one) cannot change the ranking
                means.append(0.0)
                sds.append(0.0)
                continue
            drops = []
            for _ in range(n_repeats):
                Xd[:, j] = col[rng.permutation(len(col))]
                drops.append(ref - _fast_auc(y, rank_score(Xd)))
            Xd[:, j] = col
            means.append(float(np.mean(drops)))
            sds.append(float(np.std(drops)))
    out = pd.DataFrame(
        {"feature": model.feature_names_, "importance_mean": means, "importance_std": sds}
    )
    return out.sort_values(
        ["importance_mean", "feature"], ascending=[False, True], kind="stable"
    ).reset_index(drop=True)


# --------------------------------------------------------------------------------------
# baselines
# --------------------------------------------------------------------------------------


def _bgnbd_baseline(
    data: CXData, end: pd.Timestamp, ids: pd.Series, horizon_days: int
) -> tuple[pd.DataFrame | None, str]:
    """BG/NBD baselines at ``end``: ``1 − p_alive`` and P(no order in the horizon)."""
    if not data.has("orders"):
        return None, "BG/NBD baselines not available: they need the orders table"
    scores, note = _bgnbd_scores(data, end, horizon_days)
    if scores is None:
        return None, f"BG/NBD baselines not available: {note}"
    s = scores.set_index(scores["customer_id"].astype(str))
    idx = ids.astype(str).to_numpy()
    alive = s["p_alive"].reindex(idx).to_numpy()
    quiet = s["p_no_order"].reindex(idx).to_numpy()
    out = pd.DataFrame(
        {
            "p_alive": np.clip(1.0 - np.nan_to_num(alive, nan=1.0), 0.0, 1.0),
            "bgnbd": np.clip(np.nan_to_num(quiet, nan=1.0), 0.0, 1.0),
        }
    )
    return out, (
        f"BG/NBD baselines fitted on the orders up to the test cutoff ({note}): "
        "1 − p_alive, and the probability of no order in the horizon"
    )


# --------------------------------------------------------------------------------------
# validation
# --------------------------------------------------------------------------------------


@dataclass
class ChurnValidation:
    """The result of :func:`validate`.

    Attributes
    ----------
    definition
        The churn definition.
    cutoffs
        ``fit``, ``calibrate`` (= t0) and ``test`` (= t1) cutoffs.
    metrics
        One row per model: ``model, roc_auc (with low/high), pr_auc, brier, customers,
        churners``.
    predictions
        ``customer_id, churned`` and one probability column per model at the test cutoff.
    calibration
        Per model and score decile: ``mean_predicted, observed_rate`` with Wilson interval.
    lift
        The main model's lift and cumulative gains by decile.
    curves
        ROC and PR curve points per model (``model, curve, x, y``).
    importance
        Permutation importance (drop in ROC AUC) per feature, largest first.
    notes
        Plain sentences on what was done (calibration split, baselines skipped...).
    """

    definition: ChurnDefinition
    cutoffs: dict[str, pd.Timestamp]
    metrics: pd.DataFrame
    predictions: pd.DataFrame
    calibration: pd.DataFrame
    lift: pd.DataFrame
    curves: pd.DataFrame
    importance: pd.DataFrame
    notes: list[str] = field(default_factory=list)

    @property
    def test_churn_rate(self) -> float:
        """Share of test customers who churned."""
        return float(self.predictions["churned"].mean())

    def auc(self, model: str = "model") -> float:
        """ROC AUC of one model at the test cutoff."""
        row = self.metrics.loc[self.metrics["model"] == model]
        return float(row["roc_auc"].iloc[0]) if len(row) else np.nan


#: The models compared by :func:`validate`: key -> label.
MODEL_LABELS = {
    "model": "Gradient boosting (calibrated)",
    "logit": "Logistic regression (calibrated)",
    "bgnbd": "BG/NBD P(no order in horizon)",
    "p_alive": "BG/NBD 1 − p_alive",
}


def validate(
    data: CXData,
    *,
    t0: Any = None,
    horizon_days: int = 90,
    basis: str = "auto",
    kind: str = "auto",
    definition: ChurnDefinition | None = None,
    calibration: str = "auto",
    trend_days: int = 90,
    max_levels: int = 12,
    themes: Mapping[str, Sequence[str]] | None = None,
    max_train_rows: int | None = 200_000,
    importance_rows: int = 2000,
    importance_repeats: int = 3,
    random_state: int = 0,
    _cache: _FeatureCache | None = None,
) -> ChurnValidation:
    """Time-split validation: train with the labels at ``t0``, test at ``t1 = t0 + h``.

    The model is fitted at ``t0 − h`` and calibrated at ``t0`` (see :class:`ChurnModel`);
    the test labels' window ``(t1, t1 + h]`` starts where the last training window ends,
    so nothing overlaps. Baselines: the same pipeline with logistic regression, and the
    BG/NBD ``1 − p_alive`` (fitted on the orders up to ``t1``) when orders exist.

    Parameters
    ----------
    t0
        The training cutoff; default: the end of the data minus ``2 × horizon_days``.
    importance_rows, importance_repeats
        Permutation importance on a seeded sample of this many test customers.
    random_state
        Seed: the same seed gives identical results.

    Returns
    -------
    ChurnValidation
    """
    definition = _resolve_definition(data, definition, horizon_days, basis, kind)
    h = pd.Timedelta(days=definition.horizon_days)
    if t0 is None:
        t0_end = end_of_day((data_end(data, definition) - 2 * h).normalize())
    else:
        t0_end = _cutoff_end(data, t0)
    t1_end = t0_end + h
    cache = _cache or _FeatureCache(data, trend_days, max_levels, themes, definition.horizon_days)
    common = {
        "calibration": calibration,
        "trend_days": trend_days,
        "max_levels": max_levels,
        "themes": themes,
        "max_train_rows": max_train_rows,
        "random_state": random_state,
    }
    model = ChurnModel(estimator="hgb", **common).fit(
        data, cutoff=t0_end, definition=definition, _cache=cache
    )
    logit = ChurnModel(estimator="logit", **common).fit(
        data, cutoff=t0_end, definition=definition, _cache=cache
    )
    test = cache.frame(t1_end, definition, labelled=True)
    _check_classes(test.y, t1_end, "test")
    y = test.y
    preds = pd.DataFrame({"customer_id": test.X["customer_id"].to_numpy(), "churned": y})
    preds["model"] = model.predict_frame(test.X)
    preds["logit"] = logit.predict_frame(test.X)
    notes = [
        f"Gradient boosting {model.calibration_split_}.",
        f"Logistic regression {logit.calibration_split_}.",
    ]
    if definition.kind == "non_contractual":
        bg, note = _bgnbd_baseline(data, t1_end, preds["customer_id"], definition.horizon_days)
        notes.append(note + ".")
        if bg is not None:
            preds["bgnbd"] = bg["bgnbd"].to_numpy()
            preds["p_alive"] = bg["p_alive"].to_numpy()
    models = [m for m in MODEL_LABELS if m in preds.columns]
    metrics = pd.DataFrame([_metrics_row(m, y, preds[m].to_numpy()) for m in models])
    metrics.insert(1, "label", metrics["model"].map(MODEL_LABELS))
    calib = pd.concat(
        [_calibration_table(y, preds[m].to_numpy()).assign(model=m) for m in models],
        ignore_index=True,
    )
    curves = pd.concat([_curve_rows(m, y, preds[m].to_numpy()) for m in models], ignore_index=True)
    lift = lift_table(y, preds["model"].to_numpy())

    rng = np.random.default_rng(random_state)
    idx = _subsample(len(y), importance_rows, rng)
    importance = permutation_importance(
        model, test.X.iloc[idx], y[idx], n_repeats=importance_repeats, random_state=random_state
    )
    if len(importance):
        notes.append(
            f"Permutation importance: drop in ROC AUC when a feature is shuffled, on "
            f"{len(idx):,} test customers, {importance_repeats} repeats."
        )
    return ChurnValidation(
        definition=definition,
        cutoffs={"fit": model.cutoffs_["fit"], "calibrate": t0_end, "test": t1_end},
        metrics=metrics,
        predictions=preds,
        calibration=calib,
        lift=lift,
        curves=curves,
        importance=importance,
        notes=notes,
    )


# --------------------------------------------------------------------------------------
# scoring
# --------------------------------------------------------------------------------------


def risk_band(p: Any, *, thresholds: tuple[float, float] = BAND_THRESHOLDS) -> pd.Series:
    """``low`` / ``medium`` / ``high`` from calibrated churn probabilities.

    Examples
    --------
    >>> risk_band([0.1, 0.6, 0.95]).tolist()
    ['low', 'medium', 'high']
    """
    lo, hi = thresholds
    if not 0 <= lo < hi <= 1:
        raise UsageError(f"thresholds must satisfy 0 <= low < high <= 1, got {thresholds!r}")
    arr = np.asarray(p, dtype=float)
    band = np.where(arr >= hi, BAND_LABELS[2], np.where(arr >= lo, BAND_LABELS[1], BAND_LABELS[0]))
    return pd.Series(pd.Categorical(band, categories=list(BAND_LABELS), ordered=True))


def score(
    data: CXData,
    *,
    as_of: Any = None,
    horizon_days: int = 90,
    basis: str = "auto",
    kind: str = "auto",
    definition: ChurnDefinition | None = None,
    thresholds: tuple[float, float] = BAND_THRESHOLDS,
    calibration: str = "auto",
    trend_days: int = 90,
    max_levels: int = 12,
    themes: Mapping[str, Sequence[str]] | None = None,
    max_train_rows: int | None = 200_000,
    random_state: int = 0,
    model: ChurnModel | None = None,
    _cache: _FeatureCache | None = None,
) -> pd.DataFrame:
    """Churn probability and risk band per customer at ``as_of``.

    A :class:`ChurnModel` is fitted at ``as_of − 2h`` and calibrated at ``as_of − h``
    (the latest labels observable at ``as_of``), unless a fitted ``model`` is given.

    Returns
    -------
    pandas.DataFrame
        ``customer_id, churn_probability, risk_band, as_of, horizon_days`` for the
        definition's population at ``as_of``, sorted by ``customer_id``; ready to join
        with CLV on ``customer_id``. ``df.attrs["definition"]`` holds the definition.
    """
    end = _cutoff_end(data, as_of)
    if model is None:
        definition = _resolve_definition(data, definition, horizon_days, basis, kind)
        h = pd.Timedelta(days=definition.horizon_days)
        cache = _cache or _FeatureCache(
            data, trend_days, max_levels, themes, definition.horizon_days
        )
        model = ChurnModel(
            calibration=calibration,
            trend_days=trend_days,
            max_levels=max_levels,
            themes=themes,
            max_train_rows=max_train_rows,
            random_state=random_state,
        ).fit(data.upto(end), cutoff=end - h, definition=definition, _cache=cache)
    else:
        model._check_fitted()
        cache = _cache or _FeatureCache(
            data, model.trend_days, model.max_levels, model.themes, model.definition_.horizon_days
        )
    out = model.predict_proba(data, as_of=end, _cache=cache)
    out["risk_band"] = risk_band(out["churn_probability"], thresholds=thresholds).array
    out["as_of"] = end.normalize() if end == end_of_day(end.normalize()) else end
    out["horizon_days"] = model.definition_.horizon_days
    out.attrs["definition"] = model.definition_.to_dict()
    out.attrs["thresholds"] = tuple(thresholds)
    return out


# --------------------------------------------------------------------------------------
# analysis and findings
# --------------------------------------------------------------------------------------


@dataclass
class ChurnAnalysis:
    """Everything the churn report shows: definition, churn rate, validation, scores."""

    definition: ChurnDefinition
    as_of: pd.Timestamp
    churn_rate: dict[str, Any]
    validation: ChurnValidation | None
    scores: pd.DataFrame
    thresholds: tuple[float, float]
    notes: list[str] = field(default_factory=list)

    @property
    def band_summary(self) -> pd.DataFrame:
        """Customers, share and mean churn probability per risk band."""
        s = self.scores
        g = (
            s.groupby("risk_band", observed=False)
            .agg(
                customers=("customer_id", "size"),
                mean_churn_probability=("churn_probability", "mean"),
            )
            .reset_index()
        )
        g["share"] = g["customers"] / max(len(s), 1)
        return g


@run_cached("churn.analyze", resolve=_cutoff_end)
def analyze(
    data: CXData,
    *,
    as_of: Any = None,
    horizon_days: int = 90,
    basis: str = "auto",
    kind: str = "auto",
    thresholds: tuple[float, float] = BAND_THRESHOLDS,
    calibration: str = "auto",
    trend_days: int = 90,
    max_train_rows: int | None = 200_000,
    random_state: int = 0,
) -> ChurnAnalysis:
    """Churn rate at the latest labelled cutoff, time-split validation and scores at ``as_of``.

    Features are computed once per cutoff and shared between the steps.
    """
    end = _cutoff_end(data, as_of)
    d = data.upto(end)
    definition = define(d, horizon_days=horizon_days, basis=basis, kind=kind)
    h = pd.Timedelta(days=definition.horizon_days)
    cache = _FeatureCache(d, trend_days, 12, None, definition.horizon_days)
    notes: list[str] = []
    last = end - h
    lab = cache.labels(last, definition)
    n, k = len(lab), int(lab["churned"].sum())
    lo, hi = wilson_ci(k, n) if n else (np.nan, np.nan)
    rate = {
        "cutoff": last,
        "window_end": end,
        "customers": n,
        "churners": k,
        "rate": k / n if n else np.nan,
        "ci_low": lo,
        "ci_high": hi,
    }
    try:
        val = validate(
            d,
            t0=end - 2 * h,
            definition=definition,
            calibration=calibration,
            trend_days=trend_days,
            max_train_rows=max_train_rows,
            random_state=random_state,
            _cache=cache,
        )
    except (DataError, UsageError) as err:
        val = None
        notes.append(f"Validation not available: {err}")
    # scoring needs the cutoffs end - 2h, end - h and end only
    cache.forget_before(end - 2 * h - pd.Timedelta(days=1))
    scores = score(
        d,
        as_of=end,
        definition=definition,
        thresholds=thresholds,
        calibration=calibration,
        trend_days=trend_days,
        max_train_rows=max_train_rows,
        random_state=random_state,
        _cache=cache,
    )
    return ChurnAnalysis(
        definition=definition,
        as_of=end,
        churn_rate=rate,
        validation=val,
        scores=scores,
        thresholds=tuple(thresholds),
        notes=notes,
    )


def churn_rate_over_time(
    data: CXData,
    *,
    definition: ChurnDefinition | None = None,
    horizon_days: int = 90,
    basis: str = "auto",
    kind: str = "auto",
    as_of: Any = None,
    every_days: int = 30,
    periods: int = 12,
) -> pd.DataFrame:
    """The churn rate at a series of cutoffs, each with its Wilson 95% interval.

    Cutoffs step back ``every_days`` from the latest one whose label window is observed
    at ``as_of``; cutoffs with no customers are left out.

    Returns
    -------
    pandas.DataFrame
        ``cutoff, customers, churners, churn_rate, ci_low, ci_high, small_n``, oldest first.
    """
    if every_days < 1 or periods < 1:
        raise UsageError(f"every_days and periods must be >= 1, got {every_days!r}, {periods!r}")
    definition = _resolve_definition(data, definition, horizon_days, basis, kind)
    end = _cutoff_end(data, as_of)
    d = data.upto(end)
    last = end - pd.Timedelta(days=definition.horizon_days)
    parts = []
    for k in range(periods - 1, -1, -1):
        cut = last - pd.Timedelta(days=k * every_days)
        lab = label_table(d, cut, definition=definition, check_window=False)
        parts.append(
            lab.aggregate(period=ibis.literal(k), customers=lab.count(), churners=lab.churned.sum())
        )
    union = parts[0]
    for part in parts[1:]:
        union = union.union(part, distinct=False)
    got = union.to_pandas()  # one query for all cutoffs
    got = got[got["customers"] > 0].sort_values("period", ascending=False)
    out = pd.DataFrame(
        {
            "cutoff": [
                (last - pd.Timedelta(days=int(k) * every_days)).normalize() for k in got["period"]
            ],
            "customers": got["customers"].astype("int64").to_numpy(),
            "churners": got["churners"].fillna(0).astype("int64").to_numpy(),
        }
    )
    out["churn_rate"] = out["churners"] / out["customers"]
    lo, hi = wilson_ci(out["churners"].to_numpy(), out["customers"].to_numpy())
    out["ci_low"], out["ci_high"] = lo, hi
    out["small_n"] = is_small(out["customers"].to_numpy())
    return out


def risk_by(data: CXData, scores: pd.DataFrame, by: str) -> pd.DataFrame:
    """High-risk share and mean churn probability per group of a customers column.

    Returns
    -------
    pandas.DataFrame
        ``<by>, customers, high_risk, high_risk_share, ci_low, ci_high,
        mean_churn_probability, small_n``, largest high-risk share first.

    Raises
    ------
    NotAvailableError
        When the customers table or the column is missing.
    """
    cust = data.require("customers", "customer_id", by, analysis=f"Churn risk by {by}")
    groups = cust.select("customer_id", by).to_pandas()
    groups["customer_id"] = groups["customer_id"].astype(str)
    s = scores[["customer_id", "churn_probability", "risk_band"]].copy()
    s["customer_id"] = s["customer_id"].astype(str)
    m = s.merge(groups, on="customer_id", how="left")
    m[by] = m[by].astype("object").where(m[by].notna(), "(missing)").astype(str)
    m["high"] = (m["risk_band"].astype(str) == BAND_LABELS[2]).astype(int)
    g = (
        m.groupby(by)
        .agg(
            customers=("customer_id", "size"),
            high_risk=("high", "sum"),
            mean_churn_probability=("churn_probability", "mean"),
        )
        .reset_index()
    )
    g["high_risk_share"] = g["high_risk"] / g["customers"]
    lo, hi = wilson_ci(g["high_risk"].to_numpy(), g["customers"].to_numpy())
    g["ci_low"], g["ci_high"] = lo, hi
    g["small_n"] = is_small(g["customers"].to_numpy())
    cols = [by, "customers", "high_risk", "high_risk_share", "ci_low", "ci_high"]
    g = g[[*cols, "mean_churn_probability", "small_n"]]
    return g.sort_values(
        ["high_risk_share", by], ascending=[False, True], kind="stable"
    ).reset_index(drop=True)


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
    """A plain name for a feature column.

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


def findings(
    data: CXData | None = None,
    *,
    result: ChurnAnalysis | None = None,
    as_of: Any = None,
    horizon_days: int = 90,
    basis: str = "auto",
    random_state: int = 0,
) -> list[Finding]:
    """Churn findings as sentences: churn rate, model quality vs baselines, drivers, at-risk.

    Pass a ``result`` from :func:`analyze` to avoid recomputing; else ``data`` is analysed.
    """
    if result is None:
        if data is None:
            raise UsageError("findings needs data or a result from analyze()")
        result = analyze(
            data, as_of=as_of, horizon_days=horizon_days, basis=basis, random_state=random_state
        )
    out: list[Finding] = []
    r = result.churn_rate
    h = result.definition.horizon_days
    what = "order" if result.definition.basis == "orders" else "activity"
    if result.definition.kind == "contractual":
        what = "cancellation"
    if r["customers"]:
        small = bool(is_small(r["customers"]))
        verb = "cancelled" if result.definition.kind == "contractual" else f"had no {what}"
        out.append(
            Finding(
                domain="churn",
                metric="churn_rate",
                value=float(r["rate"]),
                unit="share",
                sentence=(
                    f"{r['rate']:.0%} of {r['customers']:,} customers {verb} in the {h} days "
                    f"after {r['cutoff']:%Y-%m-%d} (95% CI {r['ci_low']:.0%}–{r['ci_high']:.0%})."
                ),
                ci_low=float(r["ci_low"]),
                ci_high=float(r["ci_high"]),
                n=int(r["customers"]),
                importance=1.0,
                small_n=small,
                extra={"definition": result.definition.to_dict()},
            )
        )
    v = result.validation
    if v is not None:
        m = v.metrics.set_index("model")
        auc = m.loc["model"]
        comp = []
        for b in ("logit", "bgnbd", "p_alive"):
            if b in m.index:
                comp.append(f"{MODEL_LABELS[b]} {m.loc[b, 'roc_auc']:.2f}")
        versus = f" (baselines: {', '.join(comp)})" if comp else ""
        out.append(
            Finding(
                domain="churn",
                metric="model_auc",
                value=float(auc["roc_auc"]),
                unit="AUC",
                sentence=(
                    f"The churn model ranks customers with ROC AUC {auc['roc_auc']:.2f} "
                    f"(95% CI {auc['roc_auc_low']:.2f}–{auc['roc_auc_high']:.2f}) on "
                    f"{int(auc['customers']):,} customers at {v.cutoffs['test']:%Y-%m-%d}, "
                    f"trained on earlier data{versus}."
                ),
                ci_low=float(auc["roc_auc_low"]),
                ci_high=float(auc["roc_auc_high"]),
                n=int(auc["customers"]),
                comparison="vs logistic regression and BG/NBD baselines" if comp else None,
                importance=0.8,
                small_n=bool(is_small(auc["customers"])),
            )
        )
        top = v.lift.iloc[0]
        out.append(
            Finding(
                domain="churn",
                metric="top_decile_lift",
                value=float(top["lift"]),
                unit="x",
                sentence=(
                    f"The riskiest 10% of customers churned at {top['churn_rate']:.0%} "
                    f"({top['ci_low']:.0%}–{top['ci_high']:.0%}, n = {int(top['customers']):,}), "
                    f"{top['lift']:.1f}× the average rate."
                ),
                ci_low=float(top["ci_low"]),
                ci_high=float(top["ci_high"]),
                n=int(top["customers"]),
                importance=0.6,
                small_n=bool(is_small(top["customers"])),
            )
        )
        if len(v.importance):
            imp = v.importance.head(3)
            names = ", ".join(describe_feature(f) for f in imp["feature"])
            out.append(
                Finding(
                    domain="churn",
                    metric="top_drivers",
                    value=float(imp["importance_mean"].iloc[0]),
                    unit="AUC drop",
                    sentence=f"The strongest churn signals are {names} (permutation importance).",
                    importance=0.5,
                    extra={"features": list(imp["feature"])},
                )
            )
    s = result.scores
    if len(s):
        hi_n = int((s["risk_band"] == "high").sum())
        out.append(
            Finding(
                domain="churn",
                metric="high_risk_customers",
                value=float(hi_n),
                unit="customers",
                sentence=(
                    f"{hi_n:,} of {len(s):,} customers ({hi_n / len(s):.0%}) are at high risk "
                    f"(churn probability ≥ {result.thresholds[1]:.0%} over the next {h} days) "
                    f"as of {result.as_of:%Y-%m-%d}."
                ),
                n=len(s),
                importance=0.9,
                small_n=bool(is_small(len(s))),
            )
        )
    return out
