"""Per-customer outcomes of an experiment: what each assigned customer did after assignment.

:func:`customer_outcomes` reads the ``assignments`` table and, in the data engine, each
assigned customer's orders and NPS answers in windows after (and before) the assignment;
only the result, one row per customer and experiment, comes to pandas. Every window is
``(assigned_at, assigned_at + days]``; a customer whose window has not ended by ``as_of``
is left out of that metric (NaN), so a readout never counts an outcome that could still
happen.
"""

from __future__ import annotations

import ibis
import ibis.expr.types as ir
import numpy as np
import pandas as pd

from cxkit.data import CXData, resolve_as_of
from cxkit.errors import UsageError
from cxkit.result import AsOf

__all__ = ["DETRACTOR_MAX", "PROMOTER_MIN", "customer_outcomes", "nps_points", "outcomes_table"]

#: NPS answers of at least this are promoters (+1), at most :data:`DETRACTOR_MAX`
#: detractors (-1), in between passives (0) (DESIGN §7).
PROMOTER_MIN = 9
DETRACTOR_MAX = 6

_ANALYSIS = "The experiment readout"


def nps_points(score: pd.Series | np.ndarray) -> np.ndarray:
    """Score NPS answers per respondent: +1 promoter (9–10), 0 passive, −1 detractor (0–6).

    The mean of these scores times 100 is the NPS in points.

    Parameters
    ----------
    score
        NPS answers 0–10; missing ones stay NaN.

    Returns
    -------
    numpy.ndarray
        +1, 0, −1 or NaN per answer.

    Examples
    --------
    >>> nps_points(pd.Series([10, 8, 3, None])).tolist()
    [1.0, 0.0, -1.0, nan]
    """
    s = pd.to_numeric(pd.Series(score), errors="coerce").to_numpy(dtype=float)
    out = np.where(s >= PROMOTER_MIN, 1.0, np.where(s <= DETRACTOR_MAX, -1.0, 0.0))
    return np.where(np.isnan(s), np.nan, out)


def _first_assignments(a: ir.Table) -> ir.Table:
    """Each customer's first assignment per experiment, with how many they had."""
    a = a.filter(
        a.customer_id.notnull()
        & a.experiment.notnull()
        & a.variant.notnull()
        & a.assigned_at.notnull()
        & (a.experiment.strip() != "")
        & (a.variant.strip() != "")
    )
    by = ["experiment", "customer_id"]
    a = a.mutate(
        _rank=ibis.row_number().over(group_by=by, order_by=[a.assigned_at, a.variant]),
        n_assignments=a.count().over(group_by=by),
    )
    return a.filter(a._rank == 0).select(
        "experiment", "customer_id", "variant", "assigned_at", "n_assignments"
    )


def _after(ts: ir.Value, at: ir.Value, days: int) -> ir.BooleanValue:
    return (ts > at) & (ts <= at + ibis.interval(days=days))


def _order_outcomes(
    first: ir.Table, orders: ir.Table, *, conversion_days: int, horizon_days: int, pre_days: int
) -> ir.Table:
    o = orders.select("customer_id", "ts", "amount")
    j = first.select("experiment", "customer_id", "assigned_at").left_join(o, "customer_id")
    j = j.drop([c for c in j.columns if c.endswith("_right")])
    in_conv = _after(j.ts, j.assigned_at, conversion_days)
    in_h = _after(j.ts, j.assigned_at, horizon_days)
    pre = (j.ts <= j.assigned_at) & (j.ts > j.assigned_at - ibis.interval(days=pre_days))
    one = ibis.literal(1)
    return j.group_by(["experiment", "customer_id"]).aggregate(
        conversion_orders=ibis.cases((in_conv, one), else_=0).sum(),
        horizon_orders=ibis.cases((in_h, one), else_=0).sum(),
        spend=ibis.cases((in_h, j.amount), else_=0.0).sum(),
        prior_orders=ibis.cases((j.ts <= j.assigned_at, one), else_=0).sum(),
        pre_orders=ibis.cases((pre, one), else_=0).sum(),
        pre_spend=ibis.cases((pre, j.amount), else_=0.0).sum(),
    )


def _nps_answers(first: ir.Table, responses: ir.Table, *, nps_days: int) -> tuple[ir.Table, ...]:
    r = responses.filter(responses.survey.lower() == "nps", responses.score.notnull())
    r = r.select("customer_id", "ts", "score")
    j = first.select("experiment", "customer_id", "assigned_at").join(r, "customer_id")
    j = j.drop([c for c in j.columns if c.endswith("_right")])
    by = ["experiment", "customer_id"]
    post = j.filter(_after(j.ts, j.assigned_at, nps_days))
    post = post.mutate(
        _rank=ibis.row_number().over(group_by=by, order_by=[post.ts, ibis.desc(post.score)])
    )
    post = post.filter(post._rank == 0).select("experiment", "customer_id", nps_score=post.score)
    pre = j.filter(j.ts <= j.assigned_at)
    pre = pre.mutate(
        _rank=ibis.row_number().over(
            group_by=by, order_by=[ibis.desc(pre.ts), ibis.desc(pre.score)]
        )
    )
    pre = pre.filter(pre._rank == 0).select("experiment", "customer_id", pre_nps_score=pre.score)
    return post, pre


def customer_outcomes(
    data: CXData,
    *,
    as_of: AsOf = None,
    conversion_days: int = 30,
    horizon_days: int = 90,
    nps_days: int = 120,
    pre_days: int = 180,
) -> pd.DataFrame:
    """Compute each assigned customer's outcomes after assignment and behaviour before it.

    Parameters
    ----------
    data
        The data: ``assignments`` (``customer_id``, ``experiment``, ``variant``,
        ``assigned_at``), with ``orders`` for conversion, churn and spend and
        ``responses`` for NPS; ``customers.churned_at``, when present, makes churn
        contractual.
    as_of
        The readout's instant (:func:`cxkit.data.resolve_as_of`): nothing after it is
        used, and a window not ended by then leaves that outcome NaN.
    conversion_days
        Conversion: an order within this many days after assignment.
    horizon_days
        Churn (no order within this many days; among customers who ordered before
        their assignment) and spend (order amounts within this many days).
    nps_days
        NPS: the customer's first NPS answer within this many days.
    pre_days
        The pre-assignment window of ``pre_orders`` and ``pre_spend`` (CUPED).

    Returns
    -------
    pandas.DataFrame
        One row per experiment and customer (their first assignment): ``experiment,
        customer_id, variant, assigned_at, n_assignments, converted, churned, spend,
        nps`` (+1/0/−1 from the first answer in the window), ``pre_orders, pre_spend,
        pre_nps`` (the last answer at or before assignment, NaN without one) and
        ``prior`` (ordered, or for contractual churn was a customer, before
        assignment). Outcomes the data cannot give are NaN; ``attrs`` holds
        ``as_of``, the windows and which outcomes are available.

    Raises
    ------
    NotAvailableError
        When the data has no ``assignments`` table with the four columns.
    UsageError
        When a window is not a positive number of days.

    Examples
    --------
    >>> import cxkit
    >>> a = pd.DataFrame({"customer_id": ["a", "b"], "experiment": "e",
    ...     "variant": ["control", "treatment"], "assigned_at": pd.Timestamp("2024-01-01")})
    >>> o = pd.DataFrame({"order_id": ["1", "2"], "customer_id": ["a", "b"],
    ...     "ts": pd.to_datetime(["2023-12-01", "2024-01-10"]), "amount": [5.0, 7.0]})
    >>> out = customer_outcomes(cxkit.load({"assignments": a, "orders": o}), as_of="2024-06-30")
    >>> out[["customer_id", "converted", "spend", "pre_orders"]].to_dict("list")
    {'customer_id': ['a', 'b'], 'converted': [0.0, 1.0], 'spend': [0.0, 7.0], 'pre_orders': [1, 0]}
    """
    expr, info = outcomes_table(
        data,
        as_of=as_of,
        conversion_days=conversion_days,
        horizon_days=horizon_days,
        nps_days=nps_days,
        pre_days=pre_days,
    )
    keys = ["experiment", "customer_id"]
    out = expr.to_pandas()
    result = pd.DataFrame(
        {
            "experiment": out["experiment"].astype(str),
            "customer_id": out["customer_id"].astype(str),
            "variant": out["variant"].astype(str),
            "assigned_at": pd.to_datetime(out["assigned_at"]),
            "n_assignments": out["n_assignments"].astype("int64"),
        }
    )
    for c in ("converted", "churned", "spend", "nps", "pre_nps"):
        result[c] = pd.to_numeric(out[c], errors="coerce").astype(float)
    if info["has_orders"]:
        result["pre_orders"] = out["pre_orders"].astype("int64")
        result["pre_spend"] = out["pre_spend"].astype(float)
    else:
        result["pre_orders"] = result["pre_spend"] = np.nan
    result["prior"] = out["prior"].astype(bool)
    order = [
        "experiment", "customer_id", "variant", "assigned_at", "n_assignments", "converted",
        "spend", "pre_orders", "pre_spend", "prior", "churned", "nps", "pre_nps",
    ]  # fmt: skip
    result = result[order].sort_values(keys, kind="stable").reset_index(drop=True)
    result.attrs.update(info)
    return result


def outcomes_table(
    data: CXData,
    *,
    as_of: AsOf = None,
    conversion_days: int = 30,
    horizon_days: int = 90,
    nps_days: int = 120,
    pre_days: int = 180,
) -> tuple[ir.Table, dict[str, object]]:
    """Return :func:`customer_outcomes` as an engine expression, with what it could use.

    The one definition of the outcomes: :func:`customer_outcomes` collects it, the scale
    mode of the readout sums it in the engine. The expression has the columns of
    :func:`customer_outcomes` (outcomes the data cannot give are NULL) plus ``done_at_<m>``,
    when each customer's window of metric ``m`` (``converted``, ``churned``, ``spend``,
    ``nps``) ends.

    Parameters
    ----------
    data, as_of, conversion_days, horizon_days, nps_days, pre_days
        As for :func:`customer_outcomes`.

    Returns
    -------
    (ibis.expr.types.Table, dict)
        The expression, and ``attrs``: ``as_of``, the windows, ``has_orders``,
        ``has_nps`` and ``churn_basis``.

    Raises
    ------
    NotAvailableError
        When the data has no ``assignments`` table with the four columns.
    UsageError
        When a window is not a positive number of days.
    """
    for name, days in (
        ("conversion_days", conversion_days),
        ("horizon_days", horizon_days),
        ("nps_days", nps_days),
        ("pre_days", pre_days),
    ):
        if not isinstance(days, int | np.integer) or isinstance(days, bool) or days < 1:
            raise UsageError(f"{name} must be a positive whole number of days, got {days!r}")
    end = resolve_as_of(data, as_of)
    d = data.upto(end)
    a = d.require(
        "assignments", "customer_id", "experiment", "variant", "assigned_at", analysis=_ANALYSIS
    )
    first = _first_assignments(a)
    keys = ["experiment", "customer_id"]
    has_orders = d.has("orders", "customer_id", "ts", "amount")
    has_nps = d.has("responses", "customer_id", "ts", "survey", "score")
    contractual = d.has("customers", "customer_id", "churned_at")
    j = first
    if has_orders:
        agg = _order_outcomes(
            first,
            d.table("orders"),
            conversion_days=conversion_days,
            horizon_days=horizon_days,
            pre_days=pre_days,
        )
        j = j.left_join(agg, keys).drop(*(f"{k}_right" for k in keys))
    if has_nps:
        post, pre = _nps_answers(first, d.table("responses"), nps_days=nps_days)
        j = j.left_join(post, keys).drop(*(f"{k}_right" for k in keys))
        j = j.left_join(pre, keys).drop(*(f"{k}_right" for k in keys))
    if contractual:
        c = d.table("customers")
        # one churned_at per customer (the contract has one; duplicates keep the earliest)
        gone_at = c.group_by("customer_id").aggregate(churned_at=c.churned_at.min())
        j = j.left_join(gone_at, "customer_id").drop("customer_id_right")

    at = j.assigned_at
    done_at = {
        days: at + ibis.interval(days=days) for days in (conversion_days, horizon_days, nps_days)
    }
    end_lit = ibis.literal(end.to_pydatetime())
    done = {days: ts <= end_lit for days, ts in done_at.items()}
    null = ibis.null("float64")

    def flag(cond: ir.BooleanValue) -> ir.FloatingValue:  # 1.0 / 0.0 as a double everywhere
        return cond.ifelse(1, 0).cast("float64")

    cols: dict[str, ir.Value] = {}
    if has_orders:
        conv = j.conversion_orders.fill_null(0) > 0
        cols["converted"] = ibis.cases((done[conversion_days], flag(conv)), else_=null)
        cols["spend"] = ibis.cases(
            (done[horizon_days], j.spend.fill_null(0.0).cast("float64")), else_=null
        )
        cols["pre_orders"] = j.pre_orders.fill_null(0).cast("int64")
        cols["pre_spend"] = j.pre_spend.fill_null(0.0).cast("float64")
    else:
        cols["converted"] = cols["spend"] = cols["pre_orders"] = cols["pre_spend"] = null
    if contractual:
        gone = j.churned_at
        prior = gone.isnull() | (gone > at)
        lost = flag(gone.notnull() & (gone <= done_at[horizon_days]))
        cols["prior"] = prior
        cols["churned"] = ibis.cases((prior & done[horizon_days], lost), else_=null)
    elif has_orders:
        prior = j.prior_orders.fill_null(0) > 0
        stayed = j.horizon_orders.fill_null(0) > 0
        cols["prior"] = prior
        cols["churned"] = ibis.cases((prior & done[horizon_days], flag(~stayed)), else_=null)
    else:
        cols["prior"] = ibis.literal(False)
        cols["churned"] = null
    if has_nps:
        cols["nps"] = ibis.cases((done[nps_days], _points(j.nps_score)), else_=null)
        cols["pre_nps"] = _points(j.pre_nps_score)
    else:
        cols["nps"] = cols["pre_nps"] = null
    windows = {
        "converted": conversion_days,
        "churned": horizon_days,
        "spend": horizon_days,
        "nps": nps_days,
    }
    for metric, days in windows.items():
        cols[f"done_at_{metric}"] = done_at[days]
    expr = j.select("experiment", "customer_id", "variant", "assigned_at", "n_assignments", **cols)
    info: dict[str, object] = {
        "as_of": end,
        "conversion_days": conversion_days,
        "horizon_days": horizon_days,
        "nps_days": nps_days,
        "pre_days": pre_days,
        "has_orders": has_orders,
        "has_nps": has_nps,
        "churn_basis": "contract" if contractual else ("orders" if has_orders else None),
    }
    return expr, info


def _points(score: ir.NumericValue) -> ir.FloatingValue:
    """:func:`nps_points` in the engine: +1 promoter, 0 passive, −1 detractor, NULL."""
    points = ibis.cases(
        (score.isnull(), ibis.null("int64")),
        (score >= PROMOTER_MIN, 1),
        (score <= DETRACTOR_MAX, -1),
        else_=0,
    )
    return points.cast("float64")  # a double on every engine (a float literal is not)
