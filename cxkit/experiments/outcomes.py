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

__all__ = ["DETRACTOR_MAX", "PROMOTER_MIN", "customer_outcomes", "nps_points"]

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
    out = first.to_pandas()
    keys = ["experiment", "customer_id"]
    has_orders = d.has("orders", "customer_id", "ts", "amount")
    has_nps = d.has("responses", "customer_id", "ts", "survey", "score")
    contractual = d.has("customers", "customer_id", "churned_at")
    if has_orders:
        agg = _order_outcomes(
            first,
            d.table("orders"),
            conversion_days=conversion_days,
            horizon_days=horizon_days,
            pre_days=pre_days,
        ).to_pandas()
        out = out.merge(agg, on=keys, how="left")
    if has_nps:
        post, pre = _nps_answers(first, d.table("responses"), nps_days=nps_days)
        out = out.merge(post.to_pandas(), on=keys, how="left")
        out = out.merge(pre.to_pandas(), on=keys, how="left")
    if contractual:
        churned_at = d.table("customers").select("customer_id", "churned_at").to_pandas()
        churned_at = churned_at.drop_duplicates("customer_id")
        out = out.merge(churned_at, on="customer_id", how="left")

    at = pd.to_datetime(out["assigned_at"])
    done = {
        days: (at + pd.Timedelta(days=days) <= end).to_numpy()
        for days in (conversion_days, horizon_days, nps_days)
    }
    nan = np.full(len(out), np.nan)
    result = pd.DataFrame(
        {
            "experiment": out["experiment"].astype(str),
            "customer_id": out["customer_id"].astype(str),
            "variant": out["variant"].astype(str),
            "assigned_at": at,
            "n_assignments": out["n_assignments"].astype("int64"),
        }
    )
    if has_orders:
        conv = out["conversion_orders"].fillna(0).to_numpy() > 0
        result["converted"] = np.where(done[conversion_days], conv.astype(float), np.nan)
        result["spend"] = np.where(done[horizon_days], out["spend"].fillna(0.0), np.nan)
        result["pre_orders"] = out["pre_orders"].fillna(0).astype("int64")
        result["pre_spend"] = out["pre_spend"].fillna(0.0).astype(float)
    else:
        result["converted"] = result["spend"] = nan
        result["pre_orders"] = result["pre_spend"] = nan
    if contractual:
        gone = pd.to_datetime(out["churned_at"])
        prior = (gone.isna() | (gone > at)).to_numpy()
        lost = (gone <= at + pd.Timedelta(days=horizon_days)).to_numpy()
        result["prior"] = prior
        result["churned"] = np.where(prior & done[horizon_days], lost.astype(float), np.nan)
    elif has_orders:
        prior = out["prior_orders"].fillna(0).to_numpy() > 0
        stayed = out["horizon_orders"].fillna(0).to_numpy() > 0
        result["prior"] = prior
        result["churned"] = np.where(prior & done[horizon_days], (~stayed).astype(float), np.nan)
    else:
        result["prior"] = False
        result["churned"] = nan
    if has_nps:
        result["nps"] = np.where(done[nps_days], nps_points(out["nps_score"]), np.nan)
        result["pre_nps"] = nps_points(out["pre_nps_score"])
    else:
        result["nps"] = result["pre_nps"] = nan
    result = result.sort_values(keys, kind="stable").reset_index(drop=True)
    result.attrs.update(
        {
            "as_of": end,
            "conversion_days": conversion_days,
            "horizon_days": horizon_days,
            "nps_days": nps_days,
            "pre_days": pre_days,
            "has_orders": has_orders,
            "has_nps": has_nps,
            "churn_basis": "contract" if contractual else ("orders" if has_orders else None),
        }
    )
    return result
