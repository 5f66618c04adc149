"""Time to churn: Kaplan–Meier survival curves with confidence bands, by group.

How long after their first order do customers stay? :func:`time_to_churn` measures, per
customer, the time from the first order to churn under the churn definition of the
report (:class:`~cxkit.churn.ChurnDefinition`), estimates the share still active after
each number of days (Kaplan–Meier) with a pointwise 95% band, and compares groups (an
acquisition channel, a persona) with the log-rank test and their median time to churn.

Time to churn (non-contractual)
    The definition calls a customer churned at a cutoff when no order (or no activity,
    ``basis="activity"``) follows within ``horizon_days``. Followed from the first order,
    a customer therefore churns at the first order after which nothing follows for
    ``horizon_days``: ``duration_days`` is the time from the first order to that order
    (0 for a customer who never came back). It is observed only when those
    ``horizon_days`` have passed by ``as_of``; a customer not churned by then is
    censored at ``as_of − horizon_days`` (the latest cutoff whose label window is fully
    observed: the customer was active at every cutoff up to it). A customer whose first
    order is less than ``horizon_days`` before ``as_of`` has no complete label window yet
    and is left out. A customer who churns and comes back later counts as churned at the
    first lapse (a survival curve follows each customer to their first churn).
Time to churn (contractual)
    From ``signup_at`` (else the first activity) to ``churned_at``; censored at
    ``as_of`` while the subscription is live.
Estimates
    Kaplan–Meier with Greenwood's variance; the pointwise band is the log-log
    ("exponential Greenwood") interval, which stays within [0, 1]; the median time to
    churn is the first time the curve is at or below 50%, its interval the times where
    the band contains 50% (Brookmeyer–Crowley); the log-rank test compares k groups
    (chi-square with k − 1 degrees of freedom, hypergeometric variance for ties).

Why not lifelines or scikit-survival: these four estimates are a few dozen lines of
numpy here, tested against hand-worked values, a textbook trial, scipy's ``ecdf`` and
two-sample ``logrank`` and a simulation of the band's coverage; lifelines would add
matplotlib, autograd and formulaic (and scikit-survival a compiled stack) to every
install for them, and neither runs in the data engine. The per-customer durations are
computed in the engine (ibis, backend neutral); only the one-row-per-customer frame
comes to pandas, and the estimates work on its numpy columns. Measured on 2 cores with
1M customers (2.6M orders): durations 3.1 s, one curve 0.4 s, the log-rank test of six
groups 1.4 s.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import ClassVar

import ibis
import ibis.expr.types as ir
import numpy as np
import numpy.typing as npt
import pandas as pd
import plotly.graph_objects as go
from scipy import stats as sps

from cxkit import plots
from cxkit import scale as _scale
from cxkit.churn.definition import ChurnDefinition, resolve_definition, ts_literal
from cxkit.data import CXData, resolve_as_of
from cxkit.errors import DataError, NotAvailableError, UsageError
from cxkit.findings import Finding
from cxkit.result import AsOf, Result
from cxkit.stats import MIN_N, is_small, p_text

__all__ = [
    "ALL_CUSTOMERS",
    "MISSING_GROUP",
    "LogRankTest",
    "SurvivalResult",
    "churn_durations",
    "duration_table",
    "kaplan_meier",
    "logrank_test",
    "median_time",
    "survival_at",
    "survival_chart",
    "time_to_churn",
]

#: The group name of the curve of all customers (no breakdown).
ALL_CUSTOMERS = "all customers"
#: The group of a customer with no value in the breakdown.
MISSING_GROUP = "(missing)"
#: The days at which :func:`time_to_churn` reads every curve off by default.
DEFAULT_TIMES: tuple[int, ...] = (30, 90, 180, 365)

_DAY_S = 86400.0
_CURVE_COLUMNS = ["time_days", "at_risk", "churned", "survival", "std_err", "ci_low", "ci_high"]


# --------------------------------------------------------------------------------------
# per-customer durations (engine)
# --------------------------------------------------------------------------------------


def _seconds(ts: ir.Value) -> ir.FloatingValue:
    return ts.epoch_seconds().cast("float64")


def _activity(data: CXData, basis: str) -> ir.Table:
    """``customer_id, ts`` of the rows that count as staying under ``basis``."""
    parts = [data.table("orders").select("customer_id", "ts")] if data.has("orders") else []
    if basis == "activity" and data.has("events"):
        parts.append(data.table("events").select("customer_id", "ts"))
    if not parts:
        raise NotAvailableError(
            "the table 'orders' (or 'events' for basis='activity')", analysis="Time to churn"
        )
    out = parts[0]
    for p in parts[1:]:
        out = out.union(p, distinct=False)
    return out.filter(out.ts.notnull() & out.customer_id.notnull())


def _first_activity(data: CXData) -> ir.Table:
    parts = [
        data.table(n).select("customer_id", "ts")
        for n in ("events", "orders", "responses")
        if data.has(n, "ts")
    ]
    if not parts:
        raise NotAvailableError("a 'signup_at' column or dated activity", analysis="Time to churn")
    u = parts[0]
    for p in parts[1:]:
        u = u.union(p, distinct=False)
    return u.group_by("customer_id").aggregate(start_ts=u.ts.min())


def duration_table(data: CXData, *, definition: ChurnDefinition, as_of: AsOf = None) -> ir.Table:
    """Return each customer's time to churn as an ibis expression (runs in the engine).

    Parameters
    ----------
    data
        The data.
    definition
        The churn definition (see the module notes for how it gives a time to churn).
    as_of
        The instant the analysis stands at (:func:`cxkit.data.resolve_as_of`).

    Returns
    -------
    ibis.expr.types.Table
        ``customer_id``, ``start_ts`` (the first order, activity or signup),
        ``duration_days`` (float64, >= 0) and ``churned`` (int64: 1 = churn observed,
        0 = censored), one row per customer with a complete first label window, ordered
        by id.
    """
    end = resolve_as_of(data, as_of)
    cut = data.upto(end)
    end_s = _seconds(ts_literal(end))
    if definition.kind == "contractual":
        cust = cut.table("customers")
        if "signup_at" in cust.columns:
            pop = cust.select("customer_id", start_ts=cust.signup_at, churned_at=cust.churned_at)
        else:
            first = _first_activity(cut)
            j = cust.join(first, cust.customer_id == first.customer_id)
            pop = j.select(
                customer_id=cust.customer_id, start_ts=j.start_ts, churned_at=j.churned_at
            )
        pop = pop.filter(pop.start_ts.notnull())
        start, stop = _seconds(pop.start_ts), _seconds(pop.churned_at)
        churned = pop.churned_at.notnull()  # upto(end) has already cleared a later churned_at
        dur = ibis.greatest(ibis.cases((churned, stop), else_=end_s) - start, 0.0) / _DAY_S
        flag = ibis.cases((churned, 1), else_=0).cast("int64")
        out = pop.select("customer_id", "start_ts", duration_days=dur, churned=flag)
        return out.order_by("customer_id")
    h = float(definition.horizon_days) * _DAY_S
    act = _activity(cut, definition.basis)
    a = act.select("customer_id", "ts", s=_seconds(act.ts))
    a = a.mutate(next_s=a.s.lead().over(ibis.window(group_by=a.customer_id, order_by=a.s)))
    # the order after which nothing follows within the horizon (observed by as_of)
    a = a.mutate(lapse=((a.next_s - a.s) > h) | (a.next_s.isnull() & (a.s + h <= end_s)))
    per = a.group_by("customer_id").aggregate(
        start_ts=a.ts.min(), first_s=a.s.min(), lapse_s=a.s.min(where=a.lapse)
    )
    per = per.filter(per.first_s + h <= end_s)
    churned = per.lapse_s.notnull()
    dur = ibis.cases((churned, per.lapse_s), else_=end_s - h) - per.first_s
    flag = ibis.cases((churned, 1), else_=0).cast("int64")
    out = per.select("customer_id", "start_ts", duration_days=dur / _DAY_S, churned=flag)
    return out.order_by("customer_id")


def _group_frame(data: CXData, by: str | pd.DataFrame | pd.Series) -> tuple[pd.DataFrame, str]:
    """Return ``customer_id, group`` (strings) for a breakdown, and its name."""
    if isinstance(by, str):
        cust = data.require("customers", "customer_id", by, analysis=f"Time to churn by {by}")
        g = cust.select("customer_id", group=cust[by].cast("string")).to_pandas()
        return g, by
    if isinstance(by, pd.Series):
        name = str(by.name or "group")
        g = pd.DataFrame({"customer_id": by.index.astype(str), "group": by.to_numpy()})
        return g, name
    if isinstance(by, pd.DataFrame):
        if "customer_id" not in by.columns or len(by.columns) != 2:
            raise UsageError(
                "a group table must have exactly two columns: customer_id and the group, "
                f"got {list(by.columns)}"
            )
        col = next(c for c in by.columns if c != "customer_id")
        g = pd.DataFrame({"customer_id": by["customer_id"].astype(str), "group": by[col]})
        return g, str(col)
    raise UsageError(
        "by must be None, a customers column name, or a DataFrame/Series mapping "
        f"customer_id to a group; got {type(by).__name__}"
    )


def churn_durations(
    data: CXData,
    *,
    as_of: AsOf = None,
    by: str | pd.DataFrame | pd.Series | None = None,
    definition: ChurnDefinition | None = None,
    horizon_days: int = 90,
    basis: str = "auto",
    kind: str = "auto",
) -> pd.DataFrame:
    """Return one row per customer: the time to churn, whether it was observed, the group.

    Parameters
    ----------
    data
        The data.
    as_of
        The instant the analysis stands at (:func:`cxkit.data.resolve_as_of`).
    by
        None; a customers column name; a DataFrame of ``customer_id`` and one group
        column; or a Series of groups indexed by ``customer_id`` (e.g.
        :func:`cxkit.personas.persona_labels`). A customer without a group is in
        :data:`MISSING_GROUP`.
    definition
        A :class:`~cxkit.churn.ChurnDefinition`; else one from ``horizon_days``,
        ``basis`` and ``kind`` (:func:`~cxkit.churn.define`).
    horizon_days, basis, kind
        As for :func:`~cxkit.churn.define`, when no ``definition`` is given.

    Returns
    -------
    pandas.DataFrame
        ``customer_id`` (string), ``start_ts``, ``duration_days`` (float), ``churned``
        (int64: 1 = observed, 0 = censored) and ``group`` (string; :data:`ALL_CUSTOMERS` without
        ``by``), sorted by id.

    Raises
    ------
    NotAvailableError
        When the data lacks the tables the definition needs, or ``by`` names a column
        the customers table does not have.
    UsageError
        On a ``by`` of another kind.

    Examples
    --------
    >>> import pandas as pd, cxkit
    >>> orders = pd.DataFrame({"order_id": ["1", "2", "3", "4", "5"],
    ...     "customer_id": ["a", "a", "b", "c", "c"], "amount": [1.0] * 5,
    ...     "ts": pd.to_datetime(["2024-01-01", "2024-01-11", "2024-01-05", "2024-02-20",
    ...                           "2024-03-10"])})
    >>> d = churn_durations(cxkit.load({"orders": orders}), horizon_days=30,
    ...                     as_of="2024-03-31")
    >>> d.customer_id.tolist(), d.duration_days.round(1).tolist(), d.churned.tolist()
    (['a', 'b', 'c'], [10.0, 0.0, 11.0], [1, 1, 0])

    a churned 10 days after the first order (nothing in the 30 days after 11 January), b
    right after it; c is still active: censored at as_of − 30 days, 11 days in.
    """
    definition = resolve_definition(data, definition, horizon_days, basis, kind)
    groups = None if by is None else _group_frame(data, by)[0]
    return _durations(data, resolve_as_of(data, as_of), definition, groups)


#: Scale mode rounds durations to this many days before counting them in the engine.
SCALE_RESOLUTION_DAYS = 0.25

#: The attribute of a :class:`~cxkit.data.CXData` holding its last duration frame.
_MEMO = "_cxkit_churn_durations"


def _duration_frame(data: CXData, end: pd.Timestamp, definition: ChurnDefinition) -> pd.DataFrame:
    """Run :func:`duration_table` once per data, ``as_of`` and definition (the last kept).

    The churn report asks for the same durations twice (by its breakdown, then by
    persona); the data object is immutable, so the frame is kept on it. Callers copy
    before changing it.
    """
    key = (end, definition)
    memo = getattr(data, _MEMO, None)
    if memo is not None and memo[0] == key:
        return memo[1]
    out = duration_table(data, definition=definition, as_of=end).to_pandas()
    out["customer_id"] = out["customer_id"].astype(pd.StringDtype())
    out["duration_days"] = out["duration_days"].astype("float64")
    out["churned"] = out["churned"].astype("int64")
    try:
        setattr(data, _MEMO, (key, out))
    except AttributeError:  # a data object that takes no attributes: no memo
        pass
    return out


def _durations(
    data: CXData, end: pd.Timestamp, definition: ChurnDefinition, groups: pd.DataFrame | None
) -> pd.DataFrame:
    """Return the frame of :func:`churn_durations` (``groups``: ``customer_id, group``)."""
    out = _duration_frame(data, end, definition).copy()
    if groups is None:
        out["group"] = ALL_CUSTOMERS
    else:
        groups = groups.drop_duplicates("customer_id").copy()
        groups["customer_id"] = groups["customer_id"].astype(pd.StringDtype())
        out = out.merge(groups, on="customer_id", how="left")
        out["group"] = out["group"].astype("object").where(out["group"].notna(), MISSING_GROUP)
    out["group"] = out["group"].astype(str).astype(pd.StringDtype())
    return out.sort_values("customer_id", kind="stable").reset_index(drop=True)


# --------------------------------------------------------------------------------------
# the estimates (numpy)
# --------------------------------------------------------------------------------------


def _z(level: float) -> float:
    if not 0 < level < 1:
        raise UsageError(f"level must be strictly between 0 and 1, got {level!r}")
    return float(sps.norm.ppf(0.5 + level / 2))


def _check(duration_days: npt.ArrayLike, churned: npt.ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    t = np.asarray(duration_days, dtype=float)
    e = np.asarray(churned)
    if t.shape != e.shape or t.ndim != 1:
        raise UsageError(
            f"duration_days and churned must be 1-d and of one length, got {t.shape} and {e.shape}"
        )
    if not np.isfinite(t).all() or (t < 0).any():
        raise DataError(
            "durations must be finite and >= 0", fix="drop or correct the negative or missing ones"
        )
    return t, e.astype(bool)


def _weights(weights: npt.ArrayLike | None, n: int) -> np.ndarray:
    """Return per-row counts (1 each by default) as int64, checked."""
    if weights is None:
        return np.ones(n, dtype=np.int64)
    w = np.asarray(weights)
    if w.shape != (n,) or (w < 0).any() or not np.array_equal(w, np.round(w)):
        raise UsageError(f"weights must be {n} whole numbers >= 0, one per row")
    return w.astype(np.int64)


def kaplan_meier(
    duration_days: npt.ArrayLike,
    churned: npt.ArrayLike,
    *,
    level: float = 0.95,
    weights: npt.ArrayLike | None = None,
) -> pd.DataFrame:
    """Estimate the survival curve (Kaplan–Meier) with Greenwood's variance and a band.

    Parameters
    ----------
    duration_days
        Time to churn, or to censoring, per customer.
    churned
        1 (or True) where churn was observed, 0 where the customer is censored.
    level
        Confidence level of the pointwise band.
    weights
        How many customers each row stands for (whole numbers; default 1 each): the
        curve of counted rows (scale mode counts customers per duration in the engine)
        is the curve of the customers themselves.

    Returns
    -------
    pandas.DataFrame
        One row per distinct time with at least one churn: ``time_days``, ``at_risk``
        (customers with a duration at or after it: censored customers count as at risk
        at their own time), ``churned``, ``survival`` (the share still active just after
        it; 1 before the first row), ``std_err`` (Greenwood) and the log-log band
        ``ci_low``, ``ci_high`` (NaN where the curve reaches 0).

    Raises
    ------
    DataError
        For negative or missing durations.
    UsageError
        For arrays of different lengths, or a level outside (0, 1).

    Examples
    --------
    >>> km = kaplan_meier([1, 2, 2, 3, 4, 5], [1, 1, 0, 1, 0, 1])
    >>> km[["time_days", "at_risk", "churned"]].values.tolist()
    [[1.0, 6.0, 1.0], [2.0, 5.0, 1.0], [3.0, 3.0, 1.0], [5.0, 1.0, 1.0]]
    >>> [round(s, 4) for s in km.survival]
    [0.8333, 0.6667, 0.4444, 0.0]
    """
    z = _z(level)
    t, e = _check(duration_days, churned)
    w = _weights(weights, len(t))
    order = np.argsort(t, kind="stable")
    t, e, w = t[order], e[order], w[order]
    times, first = np.unique(t, return_index=True)
    if not len(times):
        return pd.DataFrame({c: pd.Series(dtype="float64") for c in _CURVE_COLUMNS})
    d = np.add.reduceat(e.astype(np.int64) * w, first)
    n = w.sum() - np.concatenate([[0], np.cumsum(w)])[first]
    keep = d > 0
    times, n, d = times[keep], n[keep].astype(float), d[keep].astype(float)
    surv = np.cumprod(1.0 - d / n)
    with np.errstate(divide="ignore", invalid="ignore"):
        greenwood = np.cumsum(np.where(n > d, d / (n * (n - d)), np.inf))
        std_err = np.where(surv > 0, surv * np.sqrt(greenwood), np.nan)
        sigma = np.sqrt(greenwood) / np.abs(np.log(surv))
        low = np.where(surv > 0, surv ** np.exp(z * sigma), np.nan)
        high = np.where(surv > 0, surv ** np.exp(-z * sigma), np.nan)
    return pd.DataFrame(
        {
            "time_days": times,
            "at_risk": n,
            "churned": d,
            "survival": surv,
            "std_err": std_err,
            "ci_low": low,
            "ci_high": high,
        }
    )


def survival_at(curve: pd.DataFrame, times: Sequence[float]) -> pd.DataFrame:
    """Read a Kaplan–Meier curve (and its band) off at given times.

    Parameters
    ----------
    curve
        A curve from :func:`kaplan_meier`.
    times
        Times in days.

    Returns
    -------
    pandas.DataFrame
        ``days``, ``survival``, ``ci_low``, ``ci_high``: the step function at each time
        (1 before the first churn).

    Examples
    --------
    >>> km = kaplan_meier([1, 2, 2, 3, 4, 5], [1, 1, 0, 1, 0, 1])
    >>> [round(s, 4) for s in survival_at(km, [0.5, 2, 4.9]).survival]
    [1.0, 0.6667, 0.4444]
    """
    q = np.asarray(times, dtype=float)
    i = np.searchsorted(curve.time_days.to_numpy(dtype=float), q, side="right") - 1
    out = {"days": q}
    for c in ("survival", "ci_low", "ci_high"):
        v = curve[c].to_numpy(dtype=float)
        out[c] = np.where(i >= 0, v[np.clip(i, 0, None)] if len(v) else 1.0, 1.0)
    return pd.DataFrame(out)


def median_time(curve: pd.DataFrame) -> tuple[float, float, float]:
    """Return the median time to churn and its interval from a Kaplan–Meier curve.

    Parameters
    ----------
    curve
        A curve from :func:`kaplan_meier`.

    Returns
    -------
    (median, low, high)
        The first time the curve is at or below 0.5; the interval runs from the first
        time the band's lower end is at or below 0.5 to the first time its upper end is.
        NaN where the curve (or the band) never gets there: more than half are still
        active at the end of follow-up.

    Examples
    --------
    >>> median_time(kaplan_meier([1, 2, 2, 3, 4, 5], [1, 1, 0, 1, 0, 1]))[0]
    3.0
    """
    t = curve.time_days.to_numpy(dtype=float)

    def first_at_or_below(values: np.ndarray) -> float:
        hit = np.flatnonzero(np.nan_to_num(values, nan=0.0) <= 0.5)
        return float(t[hit[0]]) if len(hit) else math.nan

    return (
        first_at_or_below(curve.survival.to_numpy(dtype=float)),
        first_at_or_below(curve.ci_low.to_numpy(dtype=float)),
        first_at_or_below(curve.ci_high.to_numpy(dtype=float)),
    )


@dataclass(frozen=True)
class LogRankTest:
    """The log-rank test of k groups' survival curves.

    Attributes
    ----------
    statistic
        The chi-square statistic.
    dof
        Degrees of freedom (groups − 1).
    p_value
        Its p-value.
    table
        ``group``, ``customers``, ``observed`` (churns), ``expected`` (under one common
        curve), in the groups' sorted order.
    """

    statistic: float
    dof: int
    p_value: float
    table: pd.DataFrame


def logrank_test(
    duration_days: npt.ArrayLike,
    churned: npt.ArrayLike,
    groups: npt.ArrayLike,
    *,
    weights: npt.ArrayLike | None = None,
) -> LogRankTest:
    """Test whether k groups share one survival curve (the log-rank test).

    Parameters
    ----------
    duration_days, churned
        As for :func:`kaplan_meier`.
    groups
        The group of each customer (any hashable values).
    weights
        How many customers each row stands for, as for :func:`kaplan_meier`.

    Returns
    -------
    LogRankTest
        Chi-square statistic with k − 1 degrees of freedom, its p-value and the observed
        and expected churns per group.

    Raises
    ------
    UsageError
        With fewer than two groups.

    Examples
    --------
    >>> r = logrank_test([1, 2, 3, 4, 5, 6], [1, 1, 1, 1, 1, 1], ["a", "a", "a", "b", "b", "b"])
    >>> round(r.statistic, 3), r.dof
    (5.052, 1)
    """
    t, e = _check(duration_days, churned)
    labels, gi = np.unique(np.asarray(groups, dtype=object).astype(str), return_inverse=True)
    if len(gi) != len(t):
        raise UsageError(f"groups must have one value per customer, got {len(gi)} for {len(t)}")
    k = len(labels)
    if k < 2:
        raise UsageError(f"the log-rank test needs at least two groups, got {k}")
    cnt = _weights(weights, len(t))
    times = np.unique(t[e])
    at_risk = np.empty((len(times), k))
    for j in range(k):
        order = np.argsort(t[gi == j], kind="stable")
        tj, wj = t[gi == j][order], cnt[gi == j][order]
        after = np.concatenate([[0], np.cumsum(wj)])  # weight before each position
        at_risk[:, j] = wj.sum() - after[np.searchsorted(tj, times, side="left")]
    idx = np.searchsorted(times, t[e])
    dead = np.bincount(idx * k + gi[e], weights=cnt[e], minlength=len(times) * k)
    dead = dead.reshape(len(times), k).astype(np.int64)
    n, d = at_risk.sum(axis=1), dead.sum(axis=1)
    expected = at_risk * (d / n)[:, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        w = np.where(n > 1, d * (n - d) / (n**2 * (n - 1)), 0.0)
    var = np.diag((w * n) @ at_risk) - (at_risk * w[:, None]).T @ at_risk
    diff = dead.sum(axis=0) - expected.sum(axis=0)
    u, v = diff[:-1], var[:-1, :-1]
    stat = float(u @ np.linalg.pinv(v) @ u)
    table = pd.DataFrame(
        {
            "group": labels.astype(str),
            "customers": np.bincount(gi, weights=cnt, minlength=k).astype(np.int64),
            "observed": dead.sum(axis=0),
            "expected": expected.sum(axis=0),
        }
    )
    return LogRankTest(stat, k - 1, float(sps.chi2.sf(stat, k - 1)), table)


# --------------------------------------------------------------------------------------
# the analysis
# --------------------------------------------------------------------------------------


def _ci_days(low: float, high: float) -> str:
    if math.isnan(low):
        return "not estimable"
    if math.isnan(high):
        return f"{low:,.0f} days or more"
    return f"{low:,.0f}–{high:,.0f} days"


def _read(curve: pd.DataFrame, times: npt.ArrayLike, until: float) -> pd.DataFrame:
    """Read a curve off at ``times``; NaN after the last follow-up time ``until``."""
    out = survival_at(curve, np.asarray(times, dtype=float))
    late = out.days.to_numpy() > until
    out.loc[late, ["survival", "ci_low", "ci_high"]] = np.nan
    return out


@dataclass(kw_only=True)
class SurvivalResult(Result):
    """Time to churn by group, from one :func:`time_to_churn` call.

    Attributes
    ----------
    definition
        The churn definition the times follow.
    by
        The breakdown's name, or None.
    durations
        One row per customer (:func:`churn_durations`).
    curves
        The Kaplan–Meier curve of each group (:func:`kaplan_meier` with a ``group``
        column first); the curve of all customers is :data:`ALL_CUSTOMERS`.
    summary
        One row per group, all customers first, then the groups in sorted order:
        ``group``, ``customers``, ``churned`` (observed churns), ``median_days`` and its
        interval ``median_days_low``, ``median_days_high`` (NaN: not reached),
        ``followup_days`` (the longest time observed) and ``small_n``.
    at_times
        Each curve read off at the days of ``times``: ``group``, ``days``,
        ``survival``, ``ci_low``, ``ci_high`` (NaN after the group's follow-up).
    logrank
        The log-rank test across the groups of at least :data:`~cxkit.stats.MIN_N`
        customers, or None (no breakdown, or fewer than two such groups).
    missing_parts
        ``by`` or ``logrank`` -> why that part is missing; the same sentences are
        :attr:`not_available`.
    counts
        Scale mode: customers per ``group``, ``duration_days`` (rounded to
        :attr:`resolution_days`) and ``churned``, counted in the engine; the estimates
        come from it and :attr:`durations` is empty. None in memory mode.
    resolution_days
        Scale mode: the durations' rounding (days); None in memory mode.
    """

    domain: ClassVar[str] = "churn"
    #: The column labels of :attr:`summary` in a report table (cxkit.display labels).
    summary_labels: ClassVar[dict[str, str]] = {
        "churned": "churn observed",
        "median_days": "median days to churn",
        "median_days_low": "95% CI (days)",
        "followup_days": "longest follow-up (days)",
    }
    #: The formats of :attr:`summary`'s day columns in a report table (whole days).
    summary_formats: ClassVar[dict[str, str]] = dict.fromkeys(
        ["median_days", "median_days_low", "median_days_high", "followup_days"], "{:,.0f}"
    )
    definition: ChurnDefinition
    by: str | None = None
    durations: pd.DataFrame
    curves: pd.DataFrame
    summary: pd.DataFrame
    at_times: pd.DataFrame
    logrank: LogRankTest | None = None
    missing_parts: dict[str, str] = field(default_factory=dict)
    counts: pd.DataFrame | None = None
    resolution_days: float | None = None

    @property
    def overall(self) -> pd.Series:
        """Return the summary row of all customers.

        Returns
        -------
        pandas.Series
            The first row of :attr:`summary`.
        """
        return self.summary.iloc[0]

    def groups(self) -> pd.DataFrame:
        """Return the summary rows of the breakdown's groups.

        Returns
        -------
        pandas.DataFrame
            The rows of :attr:`summary` after the first; empty without a breakdown.
        """
        return self.summary.iloc[1:] if self.by is not None else self.summary.iloc[0:0]

    def _start(self) -> str:
        return "signing up" if self.definition.kind == "contractual" else "their first order"

    def overall_sentence(self) -> str:
        """Return the median time to churn of all customers, with its interval and n.

        Returns
        -------
        str
            One sentence.
        """
        o = self.overall
        n = f"n = {o.customers:,}"
        if math.isnan(o.median_days):
            return f"More than half of customers have not churned by the end of follow-up ({n})."
        if o.median_days == 0 and self.definition.kind != "contractual":
            what = "order" if self.definition.basis == "orders" else "activity"
            return (
                f"More than half of customers churn right after their first order: no "
                f"further {what} within {self.definition.horizon_days} days ({n})."
            )
        return (
            f"Half of customers churn within {o.median_days:,.0f} days of {self._start()} "
            f"(95% CI {_ci_days(o.median_days_low, o.median_days_high)}, {n})."
        )

    def groups_sentence(self) -> str | None:
        """Return which groups churn soonest and latest, with the log-rank test.

        Returns
        -------
        str or None
            None without a log-rank test (no breakdown, or fewer than two groups of at
            least :data:`~cxkit.stats.MIN_N` customers).
        """
        big = self.groups()[~self.groups().small_n.astype(bool)]
        if self.logrank is None or self.by is None or len(big) < 2:
            return None

        def median(r: pd.Series) -> str:
            if math.isnan(r.median_days):
                return f"median not reached, n = {r.customers:,}"
            if r.median_days == 0 and self.definition.kind != "contractual":
                return (
                    f"more than half never come back within {self.definition.horizon_days} "
                    f"days, n = {r.customers:,}"
                )
            return (
                f"median {r.median_days:,.0f} days, 95% CI "
                f"{_ci_days(r.median_days_low, r.median_days_high)}, n = {r.customers:,}"
            )

        order = big.assign(m=big.median_days.fillna(np.inf)).sort_values(["m", "group"])
        soon, late = order.iloc[0], order.iloc[-1]
        lr = self.logrank
        verdict = "the curves differ" if lr.p_value < 0.05 else "no clear difference"
        return (
            f"By {self.by.replace('_', ' ')}: soonest {soon.group} ({median(soon)}), latest "
            f"{late.group} ({median(late)}); log-rank {p_text(lr.p_value)} across {lr.dof + 1} "
            f"groups: {verdict}."
        )

    def takeaway(self) -> str:
        """Return the one-line takeaway under the survival chart.

        Returns
        -------
        str
            :meth:`overall_sentence`, then :meth:`groups_sentence` when there is one.
        """
        return " ".join(s for s in (self.overall_sentence(), self.groups_sentence()) if s)

    def chart_title(self) -> str:
        """Return the survival chart's takeaway title.

        Returns
        -------
        str
            Whether the groups' curves differ (log-rank), else the overall median.
        """
        if self.logrank is not None and self.by is not None:
            by = self.by.replace("_", " ")
            if self.logrank.p_value < 0.05:
                return f"Time to churn differs by {by} (log-rank {p_text(self.logrank.p_value)})"
            return f"Time to churn does not clearly differ by {by}"
        m = self.overall.median_days
        if math.isnan(m):
            return "More than half of customers have not churned by the end of follow-up"
        if m == 0 and self.definition.kind != "contractual":
            what = "order" if self.definition.basis == "orders" else "activity"
            h = self.definition.horizon_days
            return f"More than half of customers have no further {what} within {h} days"
        return f"Half of customers churn within {m:,.0f} days of {self._start()}"

    def findings(self) -> list[Finding]:
        """Return the median time to churn, and the log-rank test with a breakdown.

        Returns
        -------
        list of Finding
            ``median_time_to_churn`` (days, with its interval and n) and, with a
            breakdown, ``time_to_churn_by_group`` (the log-rank statistic and p-value).
        """
        o = self.overall

        def num(x: float) -> float | None:
            return None if math.isnan(x) else float(x)

        out = [
            Finding(
                domain=self.domain,
                metric="median_time_to_churn",
                value=float(o.median_days),
                unit="days",
                sentence=self.overall_sentence(),
                ci_low=num(o.median_days_low),
                ci_high=num(o.median_days_high),
                n=int(o.customers),
                importance=5,
                small_n=bool(o.small_n),
            )
        ]
        text = self.groups_sentence()
        if text is not None and self.logrank is not None:
            out.append(
                Finding(
                    domain=self.domain,
                    metric="time_to_churn_by_group",
                    value=self.logrank.statistic,
                    unit="chi-square",
                    sentence=text,
                    n=int(self.logrank.table.customers.sum()),
                    p_value=self.logrank.p_value,
                    comparison=f"across {self.by}",
                    importance=4,
                    extra={"by": self.by},
                )
            )
        return out


def time_to_churn(
    data: CXData,
    *,
    as_of: AsOf = None,
    by: str | pd.DataFrame | pd.Series | None = None,
    definition: ChurnDefinition | None = None,
    horizon_days: int = 90,
    basis: str = "auto",
    kind: str = "auto",
    times: Sequence[float] = DEFAULT_TIMES,
    level: float = 0.95,
    mode: str | None = None,
    resolution_days: float = SCALE_RESOLUTION_DAYS,
) -> SurvivalResult:
    """Estimate time to churn: survival curves with bands, medians and the log-rank test.

    Parameters
    ----------
    data
        The data.
    as_of
        The instant the analysis stands at (:func:`cxkit.data.resolve_as_of`).
    by
        A breakdown, as for :func:`churn_durations`. A ``by`` column the data lacks is
        a "not available" note; the curve of all customers is still computed.
    definition
        A :class:`~cxkit.churn.ChurnDefinition` (e.g. the churn report's
        ``result.definition``); else one from ``horizon_days``, ``basis`` and ``kind``.
    horizon_days, basis, kind
        As for :func:`~cxkit.churn.define`, when no ``definition`` is given.
    times
        Days at which to read every curve off (:attr:`SurvivalResult.at_times`).
    level
        Confidence level of the bands and the medians' intervals.
    mode
        ``"memory"`` (collect one duration per customer), ``"scale"`` (count customers
        per group, duration and outcome in the engine, durations rounded to
        ``resolution_days``; :mod:`cxkit.scale`) or None (the scale settings). In scale
        mode ``by`` may also be an engine table of ``customer_id`` and the group.
    resolution_days
        Scale mode: durations are rounded to this many days (a quarter of a day: at most
        ~3,000 distinct durations per group and outcome over two years).

    Returns
    -------
    SurvivalResult
        The per-customer durations, each group's curve, summary and readings, and the
        log-rank test.

    Raises
    ------
    NotAvailableError
        When the data lacks the tables the definition needs, or no customer has a
        complete first label window yet.
    UsageError
        On a ``by`` of another kind.

    Examples
    --------
    >>> import pandas as pd, cxkit
    >>> orders = pd.DataFrame({"order_id": ["1", "2", "3", "4", "5"],
    ...     "customer_id": ["a", "a", "b", "c", "c"], "amount": [1.0] * 5,
    ...     "ts": pd.to_datetime(["2024-01-01", "2024-01-11", "2024-01-05", "2024-02-20",
    ...                           "2024-03-10"])})
    >>> r = time_to_churn(cxkit.load({"orders": orders}), horizon_days=30, as_of="2024-03-31")
    >>> r.summary[["group", "customers", "churned", "median_days"]].values.tolist()
    [['all customers', 3, 2, 10.0]]
    """
    definition = resolve_definition(data, definition, horizon_days, basis, kind)
    end = resolve_as_of(data, as_of)
    if mode is not None and mode not in _scale.MODES:
        raise UsageError(f"mode must be one of {list(_scale.MODES)}, got {mode!r}")
    settings = _scale.current_settings()
    scaled = (mode or settings.mode) == "scale"
    missing: dict[str, str] = {}
    groups, by_name = None, None
    counts = None
    if by is not None:
        try:
            if scaled:
                groups, by_name = _group_expr(data, by)
            else:
                groups, by_name = _group_frame(data, by)
        except NotAvailableError as err:
            missing["by"] = str(err)
    if scaled:
        if resolution_days <= 0:
            raise UsageError(f"resolution_days must be > 0, got {resolution_days!r}")
        counts = _duration_counts(data, end, definition, groups, resolution_days, settings)
        dur = _durations_schema()
        t = counts.duration_days.to_numpy(dtype=float)
        e = counts.churned.to_numpy()
        w = counts.customers.to_numpy(dtype=np.int64)
        g_all = counts.group.to_numpy(dtype=object)
    else:
        dur = _durations(data, end, definition, groups)
        t, e = dur.duration_days.to_numpy(), dur.churned.to_numpy()
        w = np.ones(len(dur), dtype=np.int64)
        g_all = dur.group.to_numpy(dtype=object)
    if len(t) == 0:
        raise NotAvailableError(
            f"customers whose first order is at least {definition.horizon_days} days before as_of",
            analysis="Time to churn",
        )
    parts = [(ALL_CUSTOMERS, np.ones(len(t), dtype=bool))]
    if by_name is not None:
        parts += [(str(name), g_all == name) for name in sorted(set(g_all))]
    curves, rows, reads = [], [], []
    for name, mask in parts:
        km = kaplan_meier(t[mask], e[mask], level=level, weights=w[mask])
        until = float(t[mask].max())
        curves.append(km.assign(group=name))
        reads.append(_read(km, times, until).assign(group=name))
        n_churned = int((e[mask].astype(np.int64) * w[mask]).sum())
        rows.append((name, int(w[mask].sum()), n_churned, *median_time(km), until))
    summary = pd.DataFrame(
        rows,
        columns=["group", "customers", "churned", "median_days", "median_days_low",
                 "median_days_high", "followup_days"],
    )  # fmt: skip
    summary["small_n"] = is_small(summary.customers.to_numpy())
    test = None
    if by_name is not None:
        big = summary.iloc[1:][~summary.iloc[1:].small_n]
        if len(big) >= 2:
            keep = np.isin(g_all, big.group.to_numpy(dtype=object))
            test = logrank_test(t[keep], e[keep], g_all[keep], weights=w[keep])
        else:
            missing["logrank"] = (
                f"The log-rank test by {by_name} is not available: it needs at least two "
                f"groups of {MIN_N} or more customers"
            )
    curve_frame = pd.concat(curves, ignore_index=True)
    at_times = pd.concat(reads, ignore_index=True)
    return SurvivalResult(
        as_of=end,
        not_available=list(missing.values()),
        definition=definition,
        by=by_name,
        durations=dur,
        curves=curve_frame[["group", *_CURVE_COLUMNS]],
        summary=summary,
        at_times=at_times[["group", "days", "survival", "ci_low", "ci_high"]],
        logrank=test,
        missing_parts=missing,
        counts=counts,
        resolution_days=resolution_days if scaled else None,
    )


def _group_expr(data: CXData, by: object) -> tuple[ir.Table, str]:
    """Return ``customer_id, group`` (strings) for a breakdown as an engine table."""
    if isinstance(by, ir.Table):
        if "customer_id" not in by.columns or len(by.columns) != 2:
            raise UsageError(
                "a group table must have exactly two columns: customer_id and the group, "
                f"got {list(by.columns)}"
            )
        col = next(c for c in by.columns if c != "customer_id")
        return by.select(
            customer_id=by.customer_id.cast("string"), group=by[col].cast("string")
        ), str(col)
    if isinstance(by, str):
        cust = data.require("customers", "customer_id", by, analysis=f"Time to churn by {by}")
        return cust.select(
            customer_id=cust.customer_id.cast("string"), group=cust[by].cast("string")
        ), by
    frame, name = _group_frame(data, by)  # labels already in memory
    frame = frame.assign(customer_id=frame.customer_id.astype(str), group=frame.group.astype(str))
    return ibis.memtable(frame[["customer_id", "group"]]), name


def _durations_schema() -> pd.DataFrame:
    """Return an empty frame with the columns of :func:`churn_durations`."""
    return pd.DataFrame(
        {
            "customer_id": pd.Series(dtype="string"),
            "start_ts": pd.Series(dtype="datetime64[ns]"),
            "duration_days": pd.Series(dtype="float64"),
            "churned": pd.Series(dtype="int64"),
            "group": pd.Series(dtype="string"),
        }
    )


def _duration_counts(
    data: CXData,
    end: pd.Timestamp,
    definition: ChurnDefinition,
    groups: ir.Table | None,
    resolution_days: float,
    settings: _scale.ScaleSettings,
) -> pd.DataFrame:
    """Count customers per group, rounded duration and outcome, in the engine."""
    dur = duration_table(data, definition=definition, as_of=end)
    if groups is None:
        g = dur.mutate(group=ibis.literal(ALL_CUSTOMERS))
    else:
        one = groups.group_by("customer_id").aggregate(group=groups.group.max())
        j = dur.left_join(one, dur.customer_id.cast("string") == one.customer_id)
        g = j.select(
            duration_days=j.duration_days,
            churned=j.churned,
            group=j.group.fill_null(MISSING_GROUP),
        )
    res = float(resolution_days)
    g = g.mutate(duration_days=(g.duration_days / res).round() * res)
    counts = g.group_by(["group", "duration_days", "churned"]).aggregate(customers=g.count())
    out = _scale.bounded_to_pandas(
        counts, what="time-to-churn counts (group × duration × outcome)", settings=settings
    )
    out = out.astype(
        {"group": str, "duration_days": "float64", "churned": "int64", "customers": "int64"}
    )
    return out.sort_values(["group", "duration_days", "churned"], ignore_index=True)


# --------------------------------------------------------------------------------------
# the figure
# --------------------------------------------------------------------------------------


def _band_colour(hex_colour: str, alpha: float = 0.15) -> str:
    r, g, b = (int(hex_colour[i : i + 2], 16) for i in (1, 3, 5))
    return f"rgba({r}, {g}, {b}, {alpha})"


def survival_chart(result: SurvivalResult, *, max_groups: int = len(plots.PALETTE)) -> go.Figure:
    """Draw the share still active against days since the start, with 95% bands.

    One step line per group (all customers alone without a breakdown), each with its
    shaded pointwise band, read off once per day (the curves themselves have a step at
    every churn). Groups under :data:`~cxkit.stats.MIN_N` customers are left out.

    Parameters
    ----------
    result
        A :func:`time_to_churn` result.
    max_groups
        Draw at most this many groups (the largest), one palette colour each.

    Returns
    -------
    plotly.graph_objects.Figure
        Titled with :meth:`SurvivalResult.chart_title`.
    """
    start = "signup" if result.definition.kind == "contractual" else "first order"
    fig = plots.figure(
        result.chart_title(),
        x_title=f"days since {start}",
        y_title="customers not yet churned (%)",
        height=460,
    )
    rows = result.groups()[~result.groups().small_n.astype(bool)]
    if result.by is None or rows.empty:
        rows = result.summary.iloc[:1]
    rows = rows.sort_values(["customers", "group"], ascending=[False, True]).head(max_groups)
    rows = rows.sort_values("group")  # legend order: alphabetical
    for i, row in enumerate(rows.itertuples()):
        colour = plots.PALETTE[i % len(plots.PALETTE)]
        grid = np.arange(0.0, math.floor(row.followup_days) + 1.0)
        read = _read(result.curves[result.curves.group == row.group], grid, row.followup_days)
        x = np.concatenate([[0.0], grid])
        y = {c: 100 * np.concatenate([[1.0], read[c].to_numpy()]) for c in read.columns[1:]}
        label = plots.escape_label(str(row.group))
        common = {"x": x, "mode": "lines", "line_shape": "hv", "legendgroup": label}
        fig.add_scatter(
            y=y["ci_high"], line={"width": 0}, showlegend=False, hoverinfo="skip", **common
        )
        fig.add_scatter(
            y=y["ci_low"], line={"width": 0}, fill="tonexty", fillcolor=_band_colour(colour),
            showlegend=False, hoverinfo="skip", **common,
        )  # fmt: skip
        fig.add_scatter(
            y=y["survival"],
            name=label,
            line={"color": colour, "width": 2},
            hovertemplate=f"{label}: %{{y:.1f}}% not churned after %{{x:.0f}} days<extra></extra>",
            **common,
        )
    fig.update_yaxes(range=[0, 100.5])
    fig.update_xaxes(rangemode="tozero")
    return fig
