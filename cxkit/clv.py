"""Customer lifetime value: RFM summaries, BG/NBD, Gamma-Gamma, discounted CLV, validation.

The models are the standard ones for non-contractual settings, written on scipy:

* :func:`rfm_summary` turns orders into one row per customer — ``frequency`` (repeat
  purchase days), ``recency`` (first to last purchase), ``T`` (first purchase to the end of
  the period) and ``monetary_value`` (mean value of the repeat purchase days) — inside the
  engine (ibis), optionally split into a calibration and a holdout period.
* :class:`BetaGeo` is the BG/NBD model (Fader, Hardie & Lee 2005): while alive a customer
  buys at rate λ ~ Gamma(r, α); after each repeat purchase they drop out with probability
  p ~ Beta(a, b). Fitted by maximum likelihood on the distinct (x, t_x, T) triples weighted
  by their counts, with the analytic gradient in log-parameter space.
* :class:`GammaGamma` (Fader & Hardie 2013) models the mean value of a customer's repeat
  purchases: values ~ Gamma(p, ν), ν ~ Gamma(q, γ).
* :func:`clv` combines the two into discounted value over a stated horizon.
* :func:`holdout_by_frequency`, :func:`cumulative_repeat_purchases` and
  :func:`p_alive_distribution` check the model against what happened.

Time is measured in the summary's ``time_unit`` (``"D"`` days or ``"W"`` weeks = days / 7);
the fitted parameters ``alpha`` (BG/NBD) is in that unit, and every output column that
depends on time carries the unit in its name (``clv_52w``, ``expected_purchases_52w``).

Plotting functions (``plot_*``) sit in the last section of this module, apart from the
maths; they only draw frames the functions above computed.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import ibis
import ibis.expr.types as ir
import numpy as np
import pandas as pd
import plotly.graph_objects as go
from scipy import optimize, special
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted
from threadpoolctl import threadpool_limits

from cxkit import plots
from cxkit.data import CXData, end_of_day, load, require_columns, resolve_as_of
from cxkit.errors import ConvergenceError, DataError, UsageError
from cxkit.findings import Finding
from cxkit.stats import MIN_N, mean_ci, wilson_ci

__all__ = [
    "BetaGeo",
    "GammaGamma",
    "clv",
    "clv_by",
    "cumulative_repeat_purchases",
    "describe_models",
    "findings",
    "holdout_by_frequency",
    "holdout_totals",
    "lapsing_high_value",
    "p_alive_distribution",
    "plot_clv_by",
    "plot_clv_distribution",
    "plot_concentration",
    "plot_cumulative_repeat_purchases",
    "plot_holdout_by_frequency",
    "plot_p_alive",
    "rfm_summary",
    "rfm_summary_expr",
    "simulate_bgnbd",
    "simulate_spend",
    "top_share",
]

#: Days per time unit. Summaries use "D" or "W"; horizons may also use "M" (months).
UNIT_DAYS: dict[str, float] = {"D": 1.0, "W": 7.0, "M": 365.25 / 12}
_UNIT_SUFFIX = {"D": "d", "W": "w", "M": "m"}
_SECONDS_PER_DAY = 86_400


def _check_unit(time_unit: str, *, allowed: Sequence[str] = ("D", "W"), name: str = "time_unit"):
    if time_unit not in allowed:
        choices = " or ".join(repr(u) for u in allowed)
        raise UsageError(f"{name} must be {choices}, got {time_unit!r}")
    return time_unit


# ======================================================================================
# RFM summary (engine side)
# ======================================================================================


_AND = "customer_id, ts and amount"


def _orders_table(orders: Any) -> tuple[ir.Table, CXData | None]:
    if isinstance(orders, CXData):
        return orders.require("orders", "customer_id", "ts", "amount", analysis="CLV"), orders
    needed = ("customer_id", "ts", "amount")
    if isinstance(orders, ir.Table):
        require_columns(orders, needed, name="orders", fix="the orders table needs " + _AND)
        return orders, None
    if isinstance(orders, pd.DataFrame):
        require_columns(orders, needed, name="orders", fix="the orders frame needs " + _AND)
        frame = orders[["customer_id", "ts", "amount"]].copy()
        frame.insert(0, "order_id", np.arange(len(frame)).astype(str))
        data = load({"orders": frame})
        return data.table("orders"), data
    raise UsageError(
        f"orders must be a CXData, an ibis table or a pandas DataFrame, got {type(orders).__name__}"
    )


def _day_number(ts: pd.Timestamp) -> int:
    return math.floor(pd.Timestamp(ts).value / 1e9 / _SECONDS_PER_DAY)


def _resolve_end(table: ir.Table, data: CXData | None, when: Any) -> pd.Timestamp:
    if data is not None:
        return resolve_as_of(data, when)
    if when is not None:
        ts = pd.Timestamp(when)
        return ts.tz_convert("UTC").tz_localize(None) if ts.tzinfo is not None else ts
    latest = table.ts.max().to_pandas()
    if latest is None or pd.isna(latest):
        raise DataError("there are no orders with a timestamp", table="orders", column="ts")
    return pd.Timestamp(latest)


def _daily(table: ir.Table, end: pd.Timestamp) -> ir.Table:
    """One row per customer and purchase day (day = integer days since 1970-01-01, UTC)."""
    t = table.filter(table.customer_id.notnull() & table.ts.notnull() & (table.ts <= end))
    day = (t.ts.epoch_seconds() / _SECONDS_PER_DAY).floor().cast("int64")
    t = t.mutate(day=day)
    return t.group_by(["customer_id", "day"]).aggregate(amount=t.amount.sum())


def rfm_summary_expr(
    orders: Any,
    *,
    observation_end: Any = None,
    calibration_end: Any = None,
    time_unit: str = "W",
) -> ir.Table:
    """The RFM summary as an ibis expression (not executed); see :func:`rfm_summary`."""
    return _rfm(orders, observation_end, calibration_end, time_unit)[0]


def _rfm(
    orders: Any, observation_end: Any, calibration_end: Any, time_unit: str
) -> tuple[ir.Table, pd.Timestamp, pd.Timestamp | None]:
    _check_unit(time_unit)
    table, data = _orders_table(orders)
    obs_end = end_of_day(_resolve_end(table, data, observation_end))
    obs_day = _day_number(obs_end)
    if calibration_end is not None:
        cal_end = end_of_day(_resolve_end(table, data, calibration_end))
        cal_day = _day_number(cal_end)
        if cal_day >= obs_day:
            raise UsageError(
                f"calibration_end ({cal_end.date()}) must be before observation_end "
                f"({obs_end.date()})"
            )
    else:
        cal_end, cal_day = None, obs_day
    unit = UNIT_DAYS[time_unit]
    daily = _daily(table, obs_end)
    cal = daily.filter(daily.day <= cal_day)
    first = cal.group_by("customer_id").aggregate(first_day=cal.day.min())
    j = cal.join(first, "customer_id")
    repeat_amount = ibis.cases((j.day > j.first_day, j.amount), else_=0.0)
    per = j.group_by("customer_id").aggregate(
        n_days=j.day.count(),
        first_day=j.first_day.min(),
        last_day=j.day.max(),
        repeat_amount=repeat_amount.sum(),
    )
    frequency = (per.n_days - 1).cast("int64")
    summary = per.select(
        customer_id=per.customer_id,
        frequency=frequency,
        recency=(per.last_day - per.first_day).cast("float64") / unit,
        T=(ibis.literal(cal_day) - per.first_day).cast("float64") / unit,
        monetary_value=ibis.cases(
            (frequency > 0, per.repeat_amount.cast("float64") / frequency.cast("float64")),
            else_=0.0,
        ),
    )
    if calibration_end is None:
        return summary, obs_end, None
    hold = daily.filter((daily.day > cal_day) & (daily.day <= obs_day))
    hold = hold.group_by("customer_id").aggregate(h_n=hold.day.count(), h_amount=hold.amount.sum())
    k = summary.left_join(hold, summary.customer_id == hold.customer_id)
    h_n = k.h_n.fill_null(0).cast("int64")
    expr = k.select(
        customer_id=k.customer_id,
        frequency=k.frequency,
        recency=k.recency,
        T=k.T,
        monetary_value=k.monetary_value,
        holdout_frequency=h_n,
        holdout_monetary_value=ibis.cases(
            (h_n > 0, k.h_amount.cast("float64") / h_n.cast("float64")), else_=0.0
        ),
        holdout_duration=ibis.literal(float(obs_day - cal_day) / unit),
    )
    return expr, obs_end, cal_end


def rfm_summary(
    orders: Any,
    *,
    observation_end: Any = None,
    calibration_end: Any = None,
    time_unit: str = "W",
) -> pd.DataFrame:
    """One row per customer: frequency, recency, T and monetary value.

    Orders on the same (UTC) day count as one purchase, with their amounts added up.
    ``frequency`` is the number of *repeat* purchase days, ``recency`` the time from the
    first to the last purchase, ``T`` the time from the first purchase to the end of the
    (calibration) period, and ``monetary_value`` the mean value of the repeat purchase
    days (0 for customers without a repeat purchase; the lifetimes convention).

    Parameters
    ----------
    orders
        A :class:`~cxkit.data.CXData` with an ``orders`` table, an ibis table or a
        DataFrame with ``customer_id``, ``ts`` and ``amount``.
    observation_end
        Last day observed (inclusive). Default: the data's ``as_of`` or its latest order.
    calibration_end
        If given, the summary covers orders up to this day (inclusive) and the holdout
        columns ``holdout_frequency`` (purchase days after it), ``holdout_monetary_value``
        (their mean value) and ``holdout_duration`` describe the rest, up to
        ``observation_end``. Customers whose first purchase is after it are left out.
    time_unit
        ``"W"`` (weeks = days / 7, the default) or ``"D"`` (days).

    Returns
    -------
    pandas.DataFrame
        Sorted by ``customer_id``; ``attrs`` holds ``time_unit``, ``calibration_end`` and
        ``observation_end``.

    Examples
    --------
    >>> orders = pd.DataFrame({"customer_id": ["a", "a", "a", "b"],
    ...     "ts": pd.to_datetime(["2024-01-01", "2024-01-01", "2024-01-15", "2024-01-08"]),
    ...     "amount": [10.0, 5.0, 20.0, 7.0]})
    >>> s = rfm_summary(orders, observation_end="2024-01-29")
    >>> print(s.to_string(index=False))
    customer_id  frequency  recency   T  monetary_value
              a          1      2.0 4.0            20.0
              b          0      0.0 3.0             0.0
    """
    expr, obs_end, cal_end = _rfm(orders, observation_end, calibration_end, time_unit)
    df = expr.to_pandas()
    df["customer_id"] = df["customer_id"].astype("string")
    df["frequency"] = df["frequency"].astype("int64")
    for col in df.columns:
        if col not in ("customer_id", "frequency", "holdout_frequency"):
            df[col] = df[col].astype("float64")
    if "holdout_frequency" in df.columns:
        df["holdout_frequency"] = df["holdout_frequency"].astype("int64")
    df = df.sort_values("customer_id", kind="stable").reset_index(drop=True)
    df.attrs["time_unit"] = time_unit
    df.attrs["observation_end"] = str(obs_end.date())
    if cal_end is not None:
        df.attrs["calibration_end"] = str(cal_end.date())
    return df


# ======================================================================================
# fitting machinery shared by the models
# ======================================================================================


def _summary_column(summary: Any, name: str, model: str) -> np.ndarray:
    try:
        values = summary[name]
    except (KeyError, IndexError, TypeError, ValueError):
        raise DataError(
            f"the summary has no column '{name}'",
            column=name,
            fix=f"{model} needs the columns of clv.rfm_summary (frequency, recency, T, "
            "monetary_value)",
        ) from None
    arr = np.asarray(values, dtype="float64")
    if arr.ndim == 0:
        arr = arr.reshape(1)
    bad = ~np.isfinite(arr) | (arr < 0)
    if bad.any():
        raise DataError(
            f"'{name}' must be finite and >= 0",
            column=name,
            rows=int(bad.sum()),
            examples=arr[bad][:5].tolist(),
            fix="recompute the summary with clv.rfm_summary",
        )
    return arr


def _compress(*cols: np.ndarray) -> tuple[list[np.ndarray], np.ndarray, np.ndarray]:
    """Distinct rows of ``cols``, their counts, and each input row's group number.

    Each column is factorised on its own (hashing, no sort) and the codes are combined
    into one integer key, which is factorised once more: no sort, and a little faster than
    a pandas group-by on the float columns (measured at 1M rows).
    """
    codes_uniques = [pd.factorize(c) for c in cols]
    sizes = [max(len(u), 1) for _, u in codes_uniques]
    if math.prod(sizes) >= 2**62:  # the combined key would overflow: group by the columns
        frame = pd.DataFrame({f"c{i}": c for i, c in enumerate(cols)})
        grouped = frame.groupby(list(frame.columns), sort=False)
        index = grouped.size().index
        levels = [index.get_level_values(i) for i in range(len(cols))] if len(cols) > 1 else [index]
        counts = grouped.size().to_numpy(dtype="float64")
        return [np.asarray(v, dtype="float64") for v in levels], counts, grouped.ngroup().to_numpy()
    key = np.zeros(len(cols[0]), dtype="int64")
    for (codes, _), size in zip(codes_uniques, sizes, strict=True):
        key = key * size + codes
    codes, ukey = pd.factorize(key)
    counts = np.bincount(codes).astype("float64")
    uniq: list[np.ndarray] = []
    rest = np.asarray(ukey)
    for (_, u), size in zip(reversed(codes_uniques), reversed(sizes), strict=True):
        uniq.append(np.asarray(u, dtype="float64")[rest % size])
        rest = rest // size
    return uniq[::-1], counts, codes


def _num_hessian(
    grad: Callable[[np.ndarray], np.ndarray], theta: np.ndarray, g0: np.ndarray
) -> np.ndarray:
    """Forward-difference Hessian from the analytic gradient (``g0`` = gradient at theta)."""
    k = len(theta)
    hess = np.empty((k, k))
    for i in range(k):
        h = 1e-6 * max(1.0, abs(theta[i]))
        up = theta.copy()
        up[i] += h
        hess[:, i] = (grad(up) - g0) / h
    return (hess + hess.T) / 2


@dataclass
class _FitResult:
    theta: np.ndarray  # log-parameters (scaled)
    nll: float  # mean negative log-likelihood at theta
    method: str
    n_iter: int
    hessian: np.ndarray  # of the mean negative log-likelihood, log space


_LOG_BOUND = 15.0


def _minimize(
    fun: Callable[[np.ndarray], tuple[float, np.ndarray]],
    starts: Sequence[np.ndarray],
    *,
    names: Sequence[str],
    model: str,
    max_iter: int,
    tol: float,
) -> _FitResult:
    """Minimise a mean negative log-likelihood over log-parameters.

    L-BFGS-B with the analytic gradient from each start; if none converges, Nelder-Mead
    then BFGS. A few Newton steps with a numerical Hessian polish the optimum.
    """

    def value(th: np.ndarray) -> float:
        return fun(th)[0]

    def grad(th: np.ndarray) -> np.ndarray:
        return fun(th)[1]

    bounds = [(-_LOG_BOUND, _LOG_BOUND)] * len(names)
    tried: list[str] = []
    best: tuple[np.ndarray, float, str, int] | None = None
    # Single-threaded BLAS: the dot products are memory-bound, and BLAS threads spinning
    # on a busy machine made each one ~1000x slower (measured).
    with np.errstate(all="ignore"), threadpool_limits(limits=1, user_api="blas"):
        for x0 in starts:
            res = optimize.minimize(
                fun,
                x0,
                jac=True,
                method="L-BFGS-B",
                bounds=bounds,
                options={"maxiter": max_iter, "ftol": 1e-12, "gtol": tol},
            )
            ok = np.isfinite(res.fun) and np.max(np.abs(res.jac)) < 1e-4
            tried.append(f"L-BFGS-B from {np.round(np.exp(x0), 3).tolist()}: {res.message}")
            if ok and (best is None or res.fun < best[1]):
                best = (res.x, float(res.fun), "L-BFGS-B", int(res.nit))
            if best is not None:
                break
        if best is None:
            res = optimize.minimize(
                value,
                starts[0],
                method="Nelder-Mead",
                options={"maxiter": max_iter * 20, "xatol": 1e-8, "fatol": 1e-12},
            )
            tried.append(f"Nelder-Mead: {res.message}")
            res2 = optimize.minimize(
                fun, res.x, jac=True, method="BFGS", options={"gtol": tol, "maxiter": max_iter}
            )
            if np.isfinite(res2.fun) and np.max(np.abs(res2.jac)) < 1e-4:
                best = (res2.x, float(res2.fun), "Nelder-Mead+BFGS", int(res.nit + res2.nit))
            else:
                tried.append(f"BFGS: {res2.message}")
        if best is None:
            raise ConvergenceError(
                f"the {model} fit did not converge ({'; '.join(tried)}). Try more customers, a "
                "longer calibration period, or check the summary for outliers"
            )
        theta, nll, method, n_iter = best
        # Newton polish with one numerical Hessian: quasi-Newton stops at ~1e-6 relative.
        nll, g0 = fun(theta)
        hess = _num_hessian(grad, theta, g0)
        for _ in range(3):
            try:
                step = np.linalg.solve(hess, g0)
            except np.linalg.LinAlgError:
                break
            cand = theta - step
            cand_nll, cand_g = fun(cand)
            if not np.isfinite(cand_nll) or cand_nll > nll + 1e-15:
                break
            theta, nll, g0 = cand, cand_nll, cand_g
            if np.max(np.abs(step)) < 1e-8:
                break
    at_bound = [n for n, v in zip(names, theta, strict=True) if abs(v) > _LOG_BOUND - 0.5]
    if at_bound:
        raise ConvergenceError(
            f"the {model} fit ran off to the edge of the parameter space "
            f"({', '.join(f'{n}={math.exp(v):.3g}' for n, v in zip(names, theta, strict=True))}; "
            f"{', '.join(at_bound)} at the limit): the data cannot identify the model. Try more "
            "customers or a longer calibration period"
        )
    return _FitResult(theta, nll, method, n_iter, hess)


def _standard_errors(
    params: np.ndarray, hessian_mean: np.ndarray, n: float, names: Sequence[str]
) -> tuple[pd.Series, pd.DataFrame]:
    """Standard errors (delta method from log space) and the covariance of the parameters."""
    try:
        cov_log = np.linalg.inv(hessian_mean * n)
        if np.any(np.diag(cov_log) <= 0):
            raise np.linalg.LinAlgError
    except np.linalg.LinAlgError:
        warnings.warn(
            "the Hessian is not positive definite at the optimum: standard errors are NaN",
            RuntimeWarning,
            stacklevel=3,
        )
        cov_log = np.full_like(hessian_mean, np.nan)
    jac = np.diag(params)
    cov = jac @ cov_log @ jac
    se = pd.Series(np.sqrt(np.diag(cov)), index=list(names), name="se")
    return se, pd.DataFrame(cov, index=list(names), columns=list(names))


class _Model(BaseEstimator):
    _names: tuple[str, ...] = ()

    def params_table(self, *, level: float = 0.95) -> pd.DataFrame:
        """Parameters with standard errors and intervals (normal on the log scale)."""
        check_is_fitted(self, "params_")
        from scipy.stats import norm

        z = float(norm.ppf(0.5 + level / 2))
        est = self.params_.to_numpy()
        se = self.standard_errors_.to_numpy()
        with np.errstate(divide="ignore", invalid="ignore"):
            se_log = se / est
        return pd.DataFrame(
            {
                "parameter": list(self._names),
                "estimate": est,
                "se": se,
                "ci_low": est * np.exp(-z * se_log),
                "ci_high": est * np.exp(z * se_log),
            }
        )


# ======================================================================================
# BG/NBD
# ======================================================================================


class _BGNBDLikelihood:
    """Mean negative BG/NBD log-likelihood and its gradient in log-parameters.

    Terms that depend on a customer only through x (Gamma and digamma functions) are
    computed once per distinct x; customers with x = 0 contribute through T alone.
    Logs of (alpha + T) and (alpha + t_x) are taken on the distinct values and gathered.
    Per evaluation, the row-level work is one exp, one log and a few dot products.
    """

    def __init__(self, x: np.ndarray, tx: np.ndarray, T: np.ndarray, w: np.ndarray) -> None:
        self.wsum = float(w.sum())
        zero = x == 0
        self.T0, self.w0 = T[zero], w[zero]
        self.W0 = float(self.w0.sum())
        pos = ~zero
        xp, self.tx, self.T, self.w = x[pos], tx[pos], T[pos], w[pos]
        # log(alpha + T) is computed on the distinct T (and t_x) values, then gathered.
        self.iT, self.Tu = pd.factorize(self.T)
        self.itx, self.txu = pd.factorize(self.tx)
        self.xs, xi = np.unique(xp, return_inverse=True)
        self.Wk = np.bincount(xi, weights=self.w, minlength=len(self.xs))
        self.xi = xi
        self.wx = self.w * xp  # w * x per row
        self.x = xp
        self.W = float(self.w.sum())
        self.sum_wx = float(self.wx.sum())

    def __call__(self, theta: np.ndarray) -> tuple[float, np.ndarray]:
        r, alpha, a, b = np.exp(theta)
        log_alpha = math.log(alpha)
        # x = 0: ll = r log(alpha) - r log(alpha + T)
        la0 = np.log(alpha + self.T0)
        ll = self.W0 * r * log_alpha - r * float(self.w0 @ la0)
        g_r = self.W0 * log_alpha - float(self.w0 @ la0)
        g_alpha = self.W0 * r / alpha - r * float(self.w0 @ (1.0 / (alpha + self.T0)))
        g_a = g_b = 0.0
        if self.W > 0:
            xs, Wk = self.xs, self.Wk
            lg = special.gammaln(r + xs) - special.gammaln(r)
            lb = (
                special.gammaln(a + b)
                - special.gammaln(b)
                + special.gammaln(b + xs)
                - special.gammaln(a + b + xs)
            )
            log_bx1 = np.log(b + xs - 1)
            d_ab = special.digamma(a + b) - special.digamma(a + b + xs)
            la_Tu, la_txu = np.log(alpha + self.Tu), np.log(alpha + self.txu)
            la_T, la_tx = la_Tu[self.iT], la_txu[self.itx]
            rx = r + self.x
            # log of the ratio of the "dropped out after t_x" term to the "alive at T" term
            d = math.log(a) - log_bx1[self.xi] - rx * (la_tx - la_T)
            # softplus(d) and expit(d) from one exp: numpy's logaddexp and log1p were ~20x
            # slower than exp and log here (measured), and dominated the evaluation.
            e = np.exp(-np.abs(d))
            one_e = 1.0 + e
            softplus = np.maximum(d, 0.0) + np.log(one_e)
            wt = np.where(d >= 0, 1.0, e) / one_e
            w = self.w
            ll += (
                float(Wk @ (lg + lb))
                + self.W * r * log_alpha
                - float(w @ (rx * la_T))
                + float(w @ softplus)
            )
            wwt = w * wt
            g_r += (
                float(Wk @ (special.digamma(r + xs) - special.digamma(r)))
                + self.W * log_alpha
                - float(w @ la_T)
                - float(wwt @ (la_tx - la_T))
            )
            inv_T = np.exp(-la_Tu)[self.iT]
            inv_tx = np.exp(-la_txu)[self.itx]
            g_alpha += self.W * r / alpha - float((w * rx) @ (inv_T + wt * (inv_tx - inv_T)))
            g_a = float(Wk @ d_ab) + float(wwt.sum()) / a
            g_b = float(Wk @ (d_ab + special.digamma(b + xs) - special.digamma(b))) - float(
                wwt @ np.exp(-log_bx1)[self.xi]
            )
        grad = np.array([g_r * r, g_alpha * alpha, g_a * a, g_b * b])
        return -ll / self.wsum, -grad / self.wsum


class BetaGeo(_Model):
    """The BG/NBD model (Fader, Hardie & Lee 2005), fitted by maximum likelihood.

    While alive, a customer makes repeat purchases at rate λ ~ Gamma(r, α) (shape r, rate
    α, per time unit); after each repeat purchase they drop out with probability
    p ~ Beta(a, b).

    Parameters
    ----------
    max_iter
        Iteration limit of the optimiser.
    tol
        Gradient tolerance of L-BFGS-B (on the mean log-likelihood in log-parameter
        space); up to three Newton steps with a numerical Hessian then polish the optimum.

    Attributes
    ----------
    params_ : pandas.Series
        ``r, alpha, a, b`` (``alpha`` in ``time_unit_``).
    standard_errors_ : pandas.Series
        From the inverse Hessian of the log-likelihood (delta method from log space).
    covariance_ : pandas.DataFrame
    log_likelihood_ : float
        Total log-likelihood at the optimum.
    n_customers_, n_repeaters_ : int
    time_unit_ : str or None
        From the summary's ``attrs`` ("D" or "W").
    optimizer_ : str
        The method that reached the optimum.

    Examples
    --------
    >>> s = simulate_bgnbd(20_000, r=0.5, alpha=5.0, a=0.8, b=2.5, T=52, random_state=1)
    >>> bg = BetaGeo().fit(s)
    >>> bg.params_.round(1).to_dict()
    {'r': 0.5, 'alpha': 4.9, 'a': 0.8, 'b': 2.3}
    """

    _names = ("r", "alpha", "a", "b")

    def __init__(self, *, max_iter: int = 1000, tol: float = 1e-6) -> None:
        self.max_iter = max_iter
        self.tol = tol

    def fit(self, summary: Any, *, weights: Any = None) -> BetaGeo:
        """Fit to an RFM summary (``frequency``, ``recency``, ``T``).

        Parameters
        ----------
        summary
            From :func:`rfm_summary` (or any frame with those columns).
        weights
            Optional count per row (e.g. a pre-aggregated summary).

        Returns
        -------
        self

        Raises
        ------
        DataError
            When columns are missing or invalid, or nobody made a repeat purchase.
        ConvergenceError
            When the optimiser fails or the estimate runs off to a boundary.
        """
        x = _summary_column(summary, "frequency", "BetaGeo")
        tx = _summary_column(summary, "recency", "BetaGeo")
        T = _summary_column(summary, "T", "BetaGeo")
        if len(x) == 0:
            raise DataError(
                "the summary is empty: no customer bought in the period",
                fix="check calibration_end / observation_end, or use more data",
            )
        bad = tx > T + 1e-9
        if bad.any():
            raise DataError(
                "recency is larger than T",
                column="recency",
                rows=int(bad.sum()),
                fix="recency and T must come from the same summary (T >= recency)",
            )
        if np.any(x != np.round(x)):
            raise DataError("frequency must be whole numbers", column="frequency")
        w_in = np.ones_like(x) if weights is None else np.asarray(weights, dtype="float64")
        tx = np.where(x > 0, tx, 0.0)
        if not np.any((x > 0) & (w_in > 0)):
            raise DataError(
                "nobody made a repeat purchase, so the purchase and dropout rates cannot "
                "be estimated",
                column="frequency",
                rows=len(x),
                fix="use a longer observation period or more customers (BG/NBD needs "
                "customers with frequency > 0)",
            )
        n_customers = float(w_in.sum())
        if n_customers < 2:
            raise DataError(
                "a BG/NBD fit needs at least 2 customers",
                rows=int(n_customers),
                fix="fit on a whole customer base, not a single customer",
            )
        (ux, utx, uT), counts, codes = _compress(x, tx, T)
        if weights is not None:
            counts = np.bincount(codes, weights=w_in, minlength=len(ux))
        # Scale time so that alpha is O(1); alpha scales with time, r, a, b do not.
        scale = float(np.max(T)) / 10.0 if np.max(T) > 0 else 1.0
        sx, stx, sT = ux, utx / scale, uT / scale
        wsum = float(counts.sum())

        fun = _BGNBDLikelihood(sx, stx, sT, counts)

        mean_x = float(np.sum(counts * sx)) / wsum
        mean_T = float(np.sum(counts * sT)) / wsum
        alpha0 = max(mean_T / max(mean_x, 1e-3), 1e-3)
        starts = [np.log([1.0, alpha0, 1.0, 1.0]), np.zeros(4), np.log([0.5, 1.0, 0.5, 2.0])]
        res = _minimize(
            fun, starts, names=self._names, model="BG/NBD", max_iter=self.max_iter, tol=self.tol
        )
        params = np.exp(res.theta)
        params[1] *= scale
        # Rescaling alpha shifts the log-likelihood by r * log(scale) per customer.
        ll_scaled = -res.nll * wsum
        # The likelihood of (x, t_x, T) is a density in time: scaling time by s multiplies
        # it by s^-x per customer (x purchase times); undo that to report the unscaled LL.
        self.log_likelihood_ = float(ll_scaled - np.log(scale) * float(np.sum(counts * sx)))
        self.params_ = pd.Series(params, index=list(self._names), name="estimate")
        self.standard_errors_, self.covariance_ = _standard_errors(
            params, res.hessian, wsum, self._names
        )
        self.n_customers_ = round(n_customers)
        self.n_repeaters_ = round(float(counts[ux > 0].sum()))
        self.n_distinct_ = len(ux)
        self.time_unit_ = getattr(summary, "attrs", {}).get("time_unit")
        self.optimizer_ = res.method
        self.n_iter_ = res.n_iter
        return self

    # ---- predictions ------------------------------------------------------------------

    def _p(self) -> tuple[float, float, float, float]:
        check_is_fitted(self, "params_")
        r, alpha, a, b = (float(v) for v in self.params_.to_numpy())
        return r, alpha, a, b

    def _log_odds_dead(self, x: np.ndarray, tx: np.ndarray, T: np.ndarray) -> np.ndarray:
        r, alpha, a, b = self._p()
        with np.errstate(divide="ignore", invalid="ignore"):
            term = (
                np.log(a)
                - np.log(np.where(x > 0, b + x - 1, 1.0))
                + (r + x) * (np.log(alpha + T) - np.log(alpha + tx))
            )
        return np.where(x > 0, term, -np.inf)

    def p_alive(self, summary: Any) -> np.ndarray:
        """Probability that each customer is still alive at the end of the summary period.

        Customers without a repeat purchase are alive with probability 1 under BG/NBD
        (dropout happens only after a repeat purchase).
        """
        x = _summary_column(summary, "frequency", "BetaGeo")
        tx = _summary_column(summary, "recency", "BetaGeo")
        T = _summary_column(summary, "T", "BetaGeo")
        return special.expit(-self._log_odds_dead(x, tx, T))

    def expected_purchases(self, t: float, summary: Any) -> np.ndarray:
        """Expected purchases in the next ``t`` time units, per customer of ``summary``.

        FHL (2005) eq. (10), with the hypergeometric term in its Euler-transformed form
        so that large frequencies stay finite.
        """
        x = _summary_column(summary, "frequency", "BetaGeo")
        tx = _summary_column(summary, "recency", "BetaGeo")
        T = _summary_column(summary, "T", "BetaGeo")
        t_arr = np.broadcast_to(np.asarray(t, dtype="float64"), x.shape)
        return self._expected(t_arr, x, tx, T)

    def _expected(self, t: np.ndarray, x: np.ndarray, tx: np.ndarray, T: np.ndarray) -> np.ndarray:
        r, alpha, a, b = self._p()
        if abs(a - 1) < 1e-7:
            a = 1 + 1e-7  # the closed form has a removable singularity at a = 1
        with np.errstate(divide="ignore", invalid="ignore"):
            z = t / (alpha + T + t)
            c = a + b + x - 1
            hyp = special.hyp2f1(a + b - 1 - r, a - 1, c, z)
            num = c / (a - 1) * (1 - np.power(1 - z, a - 1) * hyp)
            out = num * special.expit(-self._log_odds_dead(x, tx, T))
        return np.where(t > 0, out, 0.0)

    def expected_purchases_new(self, t: Any) -> np.ndarray:
        """Expected purchases of a new customer in their first ``t`` time units, E[X(t)].

        Counts repeat purchases only (the first purchase starts the clock).
        """
        t_arr = np.atleast_1d(np.asarray(t, dtype="float64"))
        zero = np.zeros_like(t_arr)
        return self._expected(t_arr, zero, zero, zero)


def simulate_bgnbd(
    n_customers: int,
    *,
    r: float,
    alpha: float,
    a: float,
    b: float,
    T: Any,
    random_state: int | np.random.Generator | None = None,
    resolution: float | None = None,
    future: float | None = None,
) -> pd.DataFrame:
    """Simulate an RFM summary from the BG/NBD process (for tests and benchmarks).

    Parameters
    ----------
    n_customers
        Number of customers.
    r, alpha, a, b
        True parameters (``alpha`` in the time unit of ``T``).
    T
        Observation time per customer since the first purchase: a number or an array.
    random_state
        Seed or Generator.
    resolution
        If given, times are rounded down to multiples of it (e.g. ``1/7`` for whole days
        when time is in weeks), as real data are.
    future
        If given, also simulate each customer's purchases in the next ``future`` time
        units (column ``future_purchases``), continuing the same process.

    Returns
    -------
    pandas.DataFrame
        ``frequency, recency, T`` plus the true ``lam``, ``p`` and ``alive`` per customer.
    """
    rng = np.random.default_rng(random_state)
    T_arr = np.broadcast_to(np.asarray(T, dtype="float64"), (n_customers,)).copy()
    if resolution:
        T_arr = np.floor(T_arr / resolution) * resolution
    lam = rng.gamma(r, 1.0 / alpha, n_customers)
    p = rng.beta(a, b, n_customers)
    n_poisson = rng.poisson(lam * T_arr)  # purchases in (0, T] if nobody dropped out
    n_life = rng.geometric(np.clip(p, 1e-12, 1.0))  # dies right after this repeat purchase
    x = np.minimum(n_poisson, n_life)
    # Given N(T) = n, arrival times are uniform order statistics; the x-th is Beta(x, n-x+1).
    safe_x = np.maximum(x, 1)
    tx = np.where(x > 0, T_arr * rng.beta(safe_x, np.maximum(n_poisson - safe_x + 1, 1)), 0.0)
    if resolution:
        tx = np.floor(tx / resolution) * resolution
    alive = n_life > x  # did not drop out after the last purchase seen by T
    out = pd.DataFrame(
        {
            "frequency": x.astype("int64"),
            "recency": tx,
            "T": T_arr,
            "lam": lam,
            "p": p,
            "alive": alive,
        }
    )
    if future is not None:
        # Memoryless: an alive customer keeps buying at rate lam and still has
        # n_life - x purchases before the one after which they drop out.
        more = rng.poisson(lam * float(future))
        out["future_purchases"] = np.where(alive, np.minimum(more, n_life - x), 0)
    return out


# ======================================================================================
# Gamma-Gamma
# ======================================================================================


class _GGLikelihood:
    """Mean negative Gamma-Gamma log-likelihood and gradient in log-parameters.

    Gamma functions are evaluated once per distinct frequency; sums of log m and log x
    that do not depend on the parameters are computed once.
    """

    def __init__(self, x: np.ndarray, m: np.ndarray) -> None:
        self.n = float(len(x))
        self.x, self.m = x, m
        self.xs, xi = np.unique(x, return_inverse=True)
        self.nk = np.bincount(xi, minlength=len(self.xs)).astype("float64")
        logm, logx = np.log(m), np.log(x)
        self.sum_x_logm = float(x @ logm)
        self.sum_logm = float(logm.sum())
        self.sum_x_logx = float(x @ logx)
        self.sum_x = float(x.sum())

    def __call__(self, theta: np.ndarray) -> tuple[float, np.ndarray]:
        p, q, g = np.exp(theta)
        xs, nk = self.xs, self.nk
        pxs = p * xs
        log_gmx = np.log(g + self.m * self.x)
        px_q = p * self.x + q
        ll = (
            float(nk @ (special.gammaln(pxs + q) - special.gammaln(pxs)))
            - self.n * special.gammaln(q)
            + self.n * q * math.log(g)
            + p * self.sum_x_logm
            - self.sum_logm
            + p * self.sum_x_logx
            - float(px_q @ log_gmx)
        )
        dig = special.digamma(pxs + q)
        d_p = (
            float((nk * xs) @ (dig - special.digamma(pxs)))
            + self.sum_x_logm
            + self.sum_x_logx
            - float(self.x @ log_gmx)
        )
        d_q = (
            float(nk @ dig)
            - self.n * special.digamma(q)
            + self.n * math.log(g)
            - float(log_gmx.sum())
        )
        d_g = self.n * q / g - float(px_q @ (1.0 / (g + self.m * self.x)))
        grad = np.array([d_p * p, d_q * q, d_g * g])
        return -ll / self.n, -grad / self.n


class GammaGamma(_Model):
    """The Gamma-Gamma model of the mean value of repeat purchases (Fader & Hardie 2013).

    Each purchase of a customer has value ~ Gamma(p, ν) (shape p, rate ν); across
    customers ν ~ Gamma(q, γ). Fitted on customers with at least one repeat purchase, on
    their ``frequency`` and mean repeat value ``monetary_value``. The model assumes that
    spend does not depend on frequency; :meth:`fit` warns when the two are correlated.

    Parameters
    ----------
    max_iter, tol
        Optimiser settings, as for :class:`BetaGeo`.
    correlation_warning
        Warn when |Pearson r| between frequency and spend exceeds this.

    Attributes
    ----------
    params_ : pandas.Series
        ``p, q, gamma``.
    standard_errors_, covariance_, log_likelihood_, n_customers_
        As for :class:`BetaGeo`.
    correlation_ : float
        Pearson correlation of frequency and mean repeat value among the fitted customers.

    Examples
    --------
    >>> freq = np.random.default_rng(0).integers(1, 10, 5_000)
    >>> s = simulate_spend(freq, p=6.0, q=4.0, gamma=15.0, random_state=1)
    >>> GammaGamma().fit(s).params_.round(0).to_dict()
    {'p': 6.0, 'q': 4.0, 'gamma': 16.0}
    """

    _names = ("p", "q", "gamma")

    def __init__(
        self, *, max_iter: int = 1000, tol: float = 1e-6, correlation_warning: float = 0.3
    ) -> None:
        self.max_iter = max_iter
        self.tol = tol
        self.correlation_warning = correlation_warning

    def fit(self, summary: Any) -> GammaGamma:
        """Fit to the repeat customers of an RFM summary (``frequency``, ``monetary_value``).

        Customers with ``frequency == 0`` are skipped (they have no repeat value), and so
        are repeat customers whose mean repeat value is 0 (the model needs values > 0);
        a warning says how many.

        Raises
        ------
        DataError
            When fewer than 2 customers have a repeat purchase with a positive value.
        ConvergenceError
            When the optimiser fails.
        """
        x = _summary_column(summary, "frequency", "GammaGamma")
        m = _summary_column(summary, "monetary_value", "GammaGamma")
        repeat = x > 0
        zero = repeat & (m <= 0)
        if zero.any():
            warnings.warn(
                f"{int(zero.sum()):,} repeat customers with a mean repeat value of 0 were left "
                "out of the Gamma-Gamma fit (the model needs positive values)",
                UserWarning,
                stacklevel=2,
            )
        keep = repeat & (m > 0)
        if keep.sum() < 2:
            raise DataError(
                "the Gamma-Gamma model needs at least 2 customers with a repeat purchase of "
                f"positive value, got {int(keep.sum())}",
                column="monetary_value",
                fix="use a longer period or more customers",
            )
        x, m = x[keep], m[keep]
        corr = float(np.corrcoef(x, m)[0, 1]) if np.ptp(x) > 0 and np.ptp(m) > 0 else 0.0
        if abs(corr) > self.correlation_warning:
            warnings.warn(
                f"frequency and mean spend are correlated (Pearson r = {corr:.2f}, n = "
                f"{len(x):,}): the Gamma-Gamma model assumes they are independent, so its "
                "spend predictions may be biased",
                UserWarning,
                stacklevel=2,
            )
        scale = float(np.mean(m))  # spend in units of its mean: gamma is then O(1)
        ms = m / scale
        n = float(len(x))
        fun = _GGLikelihood(x, ms)

        starts = [np.log([2.0, 3.0, 2.0]), np.zeros(3), np.log([10.0, 10.0, 10.0])]
        res = _minimize(
            fun,
            starts,
            names=self._names,
            model="Gamma-Gamma",
            max_iter=self.max_iter,
            tol=self.tol,
        )
        params = np.exp(res.theta)
        params[2] *= scale
        # The density of m scales by 1/scale per customer.
        self.log_likelihood_ = float(-res.nll * n - n * np.log(scale))
        self.params_ = pd.Series(params, index=list(self._names), name="estimate")
        self.standard_errors_, self.covariance_ = _standard_errors(
            params, res.hessian, n, self._names
        )
        self.n_customers_ = int(n)
        self.n_skipped_ = int((~keep).sum())
        self.correlation_ = corr
        self.optimizer_ = res.method
        self.n_iter_ = res.n_iter
        return self

    def mean_spend(self) -> float:
        """Population mean spend per purchase, p·γ / (q − 1) (infinite when q ≤ 1)."""
        check_is_fitted(self, "params_")
        p, q, g = (float(v) for v in self.params_.to_numpy())
        return p * g / (q - 1) if q > 1 else math.inf

    def conditional_expected_average_spend(self, summary: Any) -> np.ndarray:
        """Expected mean spend per purchase of each customer, given their history.

        A weighted average of the population mean and the customer's own mean repeat
        value, weighted by the number of repeat purchases; customers with no repeat
        purchase get the population mean.

        Raises
        ------
        DataError
            When the fitted ``q <= 1`` (the population mean is infinite).
        """
        check_is_fitted(self, "params_")
        p, q, g = (float(v) for v in self.params_.to_numpy())
        if q <= 1:
            raise DataError(
                f"the fitted q = {q:.3f} <= 1 means an infinite mean spend",
                column="monetary_value",
                fix="check for extreme order values (cap them) before fitting",
            )
        x = _summary_column(summary, "frequency", "GammaGamma")
        m = _summary_column(summary, "monetary_value", "GammaGamma")
        m = np.where(x > 0, m, 0.0)
        return p * (g + m * x) / (p * x + q - 1)


def simulate_spend(
    frequency: Any,
    *,
    p: float,
    q: float,
    gamma: float,
    random_state: int | np.random.Generator | None = None,
) -> pd.DataFrame:
    """Simulate mean repeat values from the Gamma-Gamma model for given frequencies.

    Returns ``frequency, monetary_value`` and the true mean spend ``p / nu``.
    """
    rng = np.random.default_rng(random_state)
    x = np.asarray(frequency, dtype="int64")
    nu = rng.gamma(q, 1.0 / gamma, len(x))
    total = rng.gamma(np.maximum(p * x, 1e-12), 1.0 / nu)
    m = np.where(x > 0, total / np.maximum(x, 1), 0.0)
    return pd.DataFrame({"frequency": x, "monetary_value": m, "true_mean_spend": p / nu})


# ======================================================================================
# CLV
# ======================================================================================


def _horizon_label(horizon: float, unit: str) -> str:
    return f"{horizon:g}{_UNIT_SUFFIX[unit]}"


def clv(
    summary: pd.DataFrame,
    bg: BetaGeo,
    gg: GammaGamma | None = None,
    *,
    horizon: float = 52,
    unit: str = "W",
    annual_discount_rate: float = 0.10,
    margin: float = 1.0,
) -> pd.DataFrame:
    """Discounted customer lifetime value over a stated horizon.

    CLV = margin × expected spend per purchase × Σ_k (expected purchases in step k) ×
    discount(k), with weekly steps and the discount applied at the end of each step:
    ``(1 + annual_discount_rate) ** -(days / 365.25)``.

    Parameters
    ----------
    summary
        An RFM summary (same time unit as the fitted models).
    bg
        A fitted :class:`BetaGeo`.
    gg
        A fitted :class:`GammaGamma`; without it the expected spend is each customer's
        observed mean repeat value (or the overall mean for non-repeaters).
    horizon, unit
        The horizon and its unit (``"D"``, ``"W"`` or ``"M"``); default 52 weeks.
    annual_discount_rate
        Yearly discount rate (0.10 = 10%).
    margin
        Share of revenue that is margin (1.0 = value is revenue).

    Returns
    -------
    pandas.DataFrame
        ``customer_id`` (when present), ``p_alive``, ``expected_purchases_<h>``,
        ``expected_spend_per_purchase``, ``clv_<h>`` — e.g. ``clv_52w``.
    """
    _check_unit(unit, allowed=("D", "W", "M"), name="unit")
    if horizon <= 0:
        raise UsageError(f"horizon must be positive, got {horizon!r}")
    if not 0 <= annual_discount_rate < 10:
        raise UsageError(
            f"annual_discount_rate is a yearly rate like 0.10, got {annual_discount_rate!r}"
        )
    model_unit = bg.time_unit_ or getattr(summary, "attrs", {}).get("time_unit") or "W"
    days_per = UNIT_DAYS[model_unit]
    horizon_days = horizon * UNIT_DAYS[unit]
    step_days = min(7.0, horizon_days)
    n_steps = math.ceil(horizon_days / step_days - 1e-9)
    ends_days = np.minimum(step_days * np.arange(1, n_steps + 1), horizon_days)
    x = _summary_column(summary, "frequency", "clv")
    tx = np.where(x > 0, _summary_column(summary, "recency", "clv"), 0.0)
    T = _summary_column(summary, "T", "clv")
    (ux, utx, uT), _, codes = _compress(x, tx, T)
    cum = np.zeros((len(ux), n_steps + 1))
    for k, d in enumerate(ends_days, start=1):
        cum[:, k] = bg._expected(np.full(len(ux), d / days_per), ux, utx, uT)
    disc = (1 + annual_discount_rate) ** (-ends_days / 365.25)
    disc_purchases = (np.diff(cum, axis=1) * disc).sum(axis=1)[codes]
    expected = cum[:, -1][codes]
    if gg is not None:
        spend = gg.conditional_expected_average_spend(summary)
    else:
        m = _summary_column(summary, "monetary_value", "clv")
        overall = float(m[x > 0].mean()) if np.any(x > 0) else 0.0
        spend = np.where(x > 0, m, overall)
    label = _horizon_label(horizon, unit)
    out = pd.DataFrame(index=getattr(summary, "index", None))
    if "customer_id" in getattr(summary, "columns", []):
        out["customer_id"] = summary["customer_id"].to_numpy()
    out["p_alive"] = bg.p_alive(summary)
    out[f"expected_purchases_{label}"] = expected
    out["expected_spend_per_purchase"] = spend
    out[f"clv_{label}"] = margin * spend * disc_purchases
    out.attrs.update(
        horizon=horizon,
        unit=unit,
        annual_discount_rate=annual_discount_rate,
        margin=margin,
        clv_column=f"clv_{label}",
        expected_column=f"expected_purchases_{label}",
    )
    return out


def _clv_column(frame: pd.DataFrame, column: str | None) -> str:
    if column is not None:
        return column
    col = frame.attrs.get("clv_column")
    if col is None:
        cols = [c for c in frame.columns if c.startswith("clv_")]
        if not cols:
            raise DataError("no clv_* column", fix="pass the frame returned by clv.clv()")
        col = cols[0]
    return col


def top_share(values: Any, *, top: float = 0.2) -> float:
    """Share of the total held by the top ``top`` fraction of values (e.g. top 20%).

    >>> top_share([1, 1, 1, 1, 6], top=0.2)
    0.6
    """
    v = np.sort(np.asarray(values, dtype="float64"))[::-1]
    total = v.sum()
    if len(v) == 0 or total <= 0:
        return float("nan")
    k = max(1, math.ceil(top * len(v) - 1e-9))
    return float(v[:k].sum() / total)


def clv_by(frame: pd.DataFrame, by: str, *, column: str | None = None) -> pd.DataFrame:
    """Mean CLV per group with a t interval, n, the small-group flag and the value share."""
    col = _clv_column(frame, column)
    if by not in frame.columns:
        raise DataError(f"no column '{by}' to group by", column=by)
    total = frame[col].sum()
    rows = []
    for key, grp in frame.groupby(by, sort=True, dropna=False):
        mean, low, high, n = mean_ci(grp[col].to_numpy())
        rows.append(
            {
                by: "(missing)" if pd.isna(key) else str(key),
                "customers": n,
                f"mean_{col}": mean,
                "ci_low": low,
                "ci_high": high,
                "share_of_value": grp[col].sum() / total if total > 0 else np.nan,
                "small_n": n < MIN_N,
            }
        )
    return pd.DataFrame(rows).sort_values(f"mean_{col}", ascending=False, ignore_index=True)


def lapsing_high_value(
    frame: pd.DataFrame,
    *,
    top: float = 0.2,
    p_alive_below: float = 0.5,
    column: str | None = None,
) -> pd.DataFrame:
    """Valuable repeat customers who have probably lapsed.

    "Valuable" = in the top ``top`` share of customers by past repeat spend
    (``frequency × monetary_value``); "probably lapsed" = ``p_alive < p_alive_below``.
    ``frame`` needs the summary columns and ``p_alive`` (e.g. summary joined with
    :func:`clv`'s output). Sorted by past repeat spend, largest first.
    """
    col = _clv_column(frame, column)
    for needed in ("frequency", "monetary_value", "p_alive"):
        if needed not in frame.columns:
            raise DataError(f"no column '{needed}'", column=needed)
    past = frame["frequency"] * frame["monetary_value"]
    cut = past[frame["frequency"] > 0].quantile(1 - top) if (frame["frequency"] > 0).any() else 0
    mask = (frame["frequency"] > 0) & (past >= cut) & (frame["p_alive"] < p_alive_below)
    keep = [c for c in ("customer_id", "frequency", "recency", "T") if c in frame.columns]
    out = frame.loc[mask, keep].copy()
    out["past_repeat_spend"] = past[mask]
    out["p_alive"] = frame.loc[mask, "p_alive"]
    out[col] = frame.loc[mask, col]
    return out.sort_values("past_repeat_spend", ascending=False, ignore_index=True)


# ======================================================================================
# validation
# ======================================================================================


def holdout_by_frequency(
    summary: pd.DataFrame, bg: BetaGeo, *, max_frequency: int = 7
) -> pd.DataFrame:
    """Actual vs expected holdout purchases per customer, by calibration frequency.

    The BG/NBD paper's check: customers grouped by their number of repeat purchases in
    calibration (0, 1, …, ``max_frequency``+); per group the mean actual number of
    purchases in the holdout (with a t interval) and the mean the model expects.

    ``summary`` must come from :func:`rfm_summary` with ``calibration_end``.
    """
    if "holdout_frequency" not in summary.columns:
        raise DataError(
            "the summary has no holdout columns",
            column="holdout_frequency",
            fix="compute it with rfm_summary(..., calibration_end=...)",
        )
    expected = bg.expected_purchases(summary["holdout_duration"].to_numpy(), summary)
    group = np.minimum(summary["frequency"].to_numpy(), max_frequency)
    rows = []
    for g in range(max_frequency + 1):
        sel = group == g
        actual = summary["holdout_frequency"].to_numpy()[sel]
        mean, low, high, n = mean_ci(actual) if sel.any() else (np.nan, np.nan, np.nan, 0)
        rows.append(
            {
                "calibration_frequency": f"{g}+" if g == max_frequency else str(g),
                "customers": int(n),
                "actual_mean_purchases": mean,
                "ci_low": low,
                "ci_high": high,
                "expected_mean_purchases": float(expected[sel].mean()) if sel.any() else np.nan,
                "small_n": n < MIN_N,
            }
        )
    return pd.DataFrame(rows)


def holdout_totals(summary: pd.DataFrame, bg: BetaGeo) -> dict[str, float]:
    """Total actual vs expected holdout purchases over all customers."""
    expected = bg.expected_purchases(summary["holdout_duration"].to_numpy(), summary)
    actual = float(summary["holdout_frequency"].sum())
    exp_total = float(expected.sum())
    return {
        "customers": len(summary),
        "actual": actual,
        "expected": exp_total,
        "relative_error": (exp_total - actual) / actual if actual > 0 else np.nan,
        "mae_per_customer": float(np.mean(np.abs(expected - summary["holdout_frequency"]))),
    }


def cumulative_repeat_purchases(
    orders: Any,
    bg: BetaGeo,
    *,
    calibration_end: Any,
    observation_end: Any = None,
    step_days: int = 7,
) -> pd.DataFrame:
    """Repeat purchases of the calibration cohort over time, actual vs model.

    The cohort is every customer whose first purchase is on or before
    ``calibration_end``; a repeat purchase is a purchase day after their first. The model
    line is Σ over first-purchase days of (customers born that day) × E[X(t − day)].
    Counts come from the engine (per day), so this works on any backend.

    Returns
    -------
    pandas.DataFrame
        One row per step: ``period_end`` (date), ``actual_repeat_purchases``,
        ``expected_repeat_purchases``, their ``cumulative_*`` sums, and ``holdout`` (bool).
    """
    table, data = _orders_table(orders)
    obs_end = end_of_day(_resolve_end(table, data, observation_end))
    cal_end = end_of_day(_resolve_end(table, data, calibration_end))
    obs_day, cal_day = _day_number(obs_end), _day_number(cal_end)
    daily = _daily(table, obs_end)
    first = daily.group_by("customer_id").aggregate(first_day=daily.day.min())
    first = first.filter(first.first_day <= cal_day)
    births = first.group_by("first_day").aggregate(n=first.count()).to_pandas()
    j = daily.join(first, "customer_id")
    rep = j.filter(j.day > j.first_day)
    repeats = rep.group_by("day").aggregate(n=rep.count()).to_pandas()
    if births.empty:
        raise DataError("no customer made a first purchase by calibration_end", table="orders")
    start = int(births["first_day"].min())
    edges = np.arange(start + step_days - 1, obs_day + step_days, step_days)
    edges = np.minimum(edges, obs_day)
    edges = np.unique(edges)
    rep_days = repeats["day"].to_numpy(dtype="int64")
    rep_n = repeats["n"].to_numpy(dtype="float64")
    cum_actual = np.array([rep_n[rep_days <= e].sum() for e in edges])
    days_per = UNIT_DAYS[bg.time_unit_ or "W"]
    b_day = births["first_day"].to_numpy(dtype="int64")
    b_n = births["n"].to_numpy(dtype="float64")
    cum_expected = np.array(
        [
            float(np.sum(b_n * bg.expected_purchases_new(np.maximum(e - b_day, 0) / days_per)))
            for e in edges
        ]
    )
    out = pd.DataFrame(
        {
            "period_end": pd.to_datetime(edges * _SECONDS_PER_DAY, unit="s").normalize(),
            "actual_repeat_purchases": np.diff(cum_actual, prepend=0.0),
            "expected_repeat_purchases": np.diff(cum_expected, prepend=0.0),
            "cumulative_actual": cum_actual,
            "cumulative_expected": cum_expected,
            "holdout": edges > cal_day,
        }
    )
    out.attrs["calibration_end"] = str(cal_end.date())
    return out


def p_alive_distribution(summary: pd.DataFrame, bg: BetaGeo, *, bins: int = 10) -> pd.DataFrame:
    """How many customers fall in each p_alive band (equal-width bands on [0, 1])."""
    pa = bg.p_alive(summary)
    edges = np.linspace(0, 1, bins + 1)
    idx = np.clip(np.digitize(pa, edges[1:-1], right=False), 0, bins - 1)
    counts = np.bincount(idx, minlength=bins)
    return pd.DataFrame(
        {
            "p_alive_from": edges[:-1],
            "p_alive_to": edges[1:],
            "customers": counts,
            "share": counts / max(len(pa), 1),
        }
    )


# ======================================================================================
# findings
# ======================================================================================


def findings(
    summary: pd.DataFrame,
    bg: BetaGeo,
    *,
    clv_frame: pd.DataFrame | None = None,
    holdout: dict[str, float] | None = None,
    top: float = 0.2,
) -> list[Finding]:
    """The CLV domain's key findings as :class:`~cxkit.findings.Finding` records.

    Parameters
    ----------
    summary
        The RFM summary the models were applied to (one row per customer).
    bg
        The fitted BG/NBD model.
    clv_frame
        The output of :func:`clv` for ``summary``, for value findings.
    holdout
        The output of :func:`holdout_totals`, for the model-check finding.
    top
        The top share used for the concentration finding.
    """
    out: list[Finding] = []
    n = len(summary)
    small = n < MIN_N
    pa = bg.p_alive(summary)
    repeat = np.asarray(summary["frequency"]) > 0
    n_rep = int(repeat.sum())
    lapsed = int(np.sum(pa[repeat] < 0.5))
    if n_rep:
        low, high = wilson_ci(lapsed, n_rep)
        out.append(
            Finding(
                domain="clv",
                metric="lapsed_share_repeaters",
                value=lapsed / n_rep,
                unit="share",
                ci_low=low,
                ci_high=high,
                n=n_rep,
                small_n=n_rep < MIN_N,
                importance=0.6,
                sentence=f"{lapsed / n_rep:.0%} of the {n_rep:,} repeat customers have probably "
                f"lapsed (P(alive) < 50%; 95% CI {low:.0%}–{high:.0%}). The {n - n_rep:,} "
                "one-time buyers cannot be judged this way: BG/NBD lets customers leave only "
                "after a repeat purchase.",
            )
        )
    if holdout is not None and np.isfinite(holdout.get("relative_error", np.nan)):
        err = holdout["relative_error"]
        out.append(
            Finding(
                domain="clv",
                metric="holdout_error",
                value=float(err),
                unit="share",
                n=int(holdout["customers"]),
                importance=0.5,
                comparison="model vs actual holdout purchases",
                sentence=f"Checked on a holdout period, the model expected "
                f"{holdout['expected']:,.0f} repeat purchases against {holdout['actual']:,.0f} "
                f"actual ({err:+.1%}), over {int(holdout['customers']):,} customers.",
            )
        )
    if clv_frame is not None:
        col = _clv_column(clv_frame, None)
        label = col.removeprefix("clv_")
        values = clv_frame[col].to_numpy()
        total = float(values.sum())
        mean, low, high, _ = mean_ci(values)
        share = top_share(values, top=top)
        rate = clv_frame.attrs.get("annual_discount_rate", np.nan)
        out.append(
            Finding(
                domain="clv",
                metric=f"total_clv_{label}",
                value=total,
                unit="currency",
                ci_low=low * n if np.isfinite(low) else None,
                ci_high=high * n if np.isfinite(high) else None,
                n=n,
                small_n=small,
                importance=1.0,
                sentence=f"The {n:,} customers are expected to bring {total:,.0f} over the next "
                f"{_label_words(label)} (discounted at {rate:.0%} a year): {mean:,.2f} per "
                f"customer (95% CI {low:,.2f}–{high:,.2f}).",
            )
        )
        out.append(
            Finding(
                domain="clv",
                metric=f"top{round(top * 100)}_share_{label}",
                value=share,
                unit="share",
                n=n,
                small_n=small,
                importance=0.9,
                sentence=f"The top {top:.0%} of customers hold {share:.0%} of the expected value "
                f"over the next {_label_words(label)} (n = {n:,}).",
            )
        )
        merged = summary.assign(p_alive=pa, **{col: values})
        lapsing = lapsing_high_value(merged, top=top, column=col)
        n_valuable = math.ceil(top * int((merged["frequency"] > 0).sum()))
        out.append(
            Finding(
                domain="clv",
                metric="lapsing_high_value",
                value=float(len(lapsing)),
                unit="customers",
                n=n_valuable,
                small_n=n_valuable < MIN_N,
                importance=0.8,
                sentence=f"{len(lapsing):,} of the ~{n_valuable:,} most valuable repeat "
                "customers (top "
                f"{top:.0%} by past repeat spend) have probably lapsed (P(alive) < 50%): "
                "candidates for win-back.",
            )
        )
    return out


def describe_models(bg: BetaGeo, gg: GammaGamma | None = None) -> list[str]:
    """The fitted parameters in plain words, one sentence each.

    >>> bg = BetaGeo()
    >>> bg.params_ = pd.Series([0.2426, 4.4136, 0.7929, 2.4259], index=["r", "alpha", "a", "b"])
    >>> bg.time_unit_ = "W"
    >>> describe_models(bg)[0][:60]
    'While still active, a typical customer buys 0.055 times a we'
    """
    r, alpha, a, b = (float(v) for v in bg._p())
    unit = {"D": "day", "W": "week"}.get(bg.time_unit_ or "W", "period")
    rate = r / alpha
    per_year = rate * (365.25 / UNIT_DAYS.get(bg.time_unit_ or "W", 7.0))
    spread = (
        f"rates vary a lot between customers (shape r = {r:.2f} < 1): most buy rarely and a "
        "few buy very often"
        if r < 1
        else f"rates vary moderately between customers (shape r = {r:.2f})"
    )
    p_mean = a / (a + b)
    out = [
        f"While still active, a typical customer buys {rate:.3g} times a {unit} "
        f"(about {per_year:.1f} times a year); {spread}.",
        f"After each repeat purchase, a customer stops buying for good with probability "
        f"{p_mean:.1%} on average, roughly 1 in {max(1, round(1 / p_mean))} (Beta({a:.2f}, "
        f"{b:.2f}) across customers).",
    ]
    if gg is not None:
        p, q, g = (float(v) for v in gg.params_.to_numpy())
        if q > 1:
            out.append(
                f"A purchase is worth {gg.mean_spend():,.2f} on average across customers; "
                f"a customer's own history pulls their expected spend away from that mean "
                f"(Gamma-Gamma p = {p:.2f}, q = {q:.2f}, γ = {g:.2f})."
            )
    return out


def _label_words(label: str) -> str:
    words = {"w": "weeks", "d": "days", "m": "months"}
    return f"{label[:-1]} {words.get(label[-1], label[-1])}"


# ======================================================================================
# plots (drawing only; every number comes from the functions above)
# ======================================================================================


def _unit_word(bg: BetaGeo | None = None, unit: str | None = None) -> str:
    unit = unit or (bg.time_unit_ if bg is not None else None) or "W"
    return {"D": "days", "W": "weeks"}.get(unit, unit)


def plot_holdout_by_frequency(table: pd.DataFrame) -> go.Figure:
    """Bars: actual holdout purchases per customer (with CI); markers: model expectation."""
    worst = (table["expected_mean_purchases"] - table["actual_mean_purchases"]).abs().max()
    # n under each group (small groups marked); a category axis keeps "7+" in place.
    labels = [
        f"{g}<br>n={n:,}{' (small)' if small else ''}"
        for g, n, small in zip(
            table["calibration_frequency"], table["customers"], table["small_n"], strict=True
        )
    ]
    fig = plots.bar_with_ci(
        table.assign(group=labels),
        x="group",
        y="actual_mean_purchases",
        low="ci_low",
        high="ci_high",
        title=f"Holdout purchases per customer: model vs actual (largest gap {worst:.2f})",
        x_title="repeat purchases in calibration",
        y_title="purchases per customer in holdout",
    )
    fig.data[0].name = "actual (95% CI)"
    fig.update_xaxes(type="category")
    fig.add_scatter(
        x=labels,
        y=table["expected_mean_purchases"],
        mode="markers+lines",
        name="BG/NBD expected",
        marker={"color": plots.PALETTE[1], "size": 9},
        line={"color": plots.PALETTE[1]},
    )
    return fig


def plot_cumulative_repeat_purchases(table: pd.DataFrame) -> go.Figure:
    """Cumulative repeat purchases over time, actual vs model, holdout start marked."""
    last = table.iloc[-1]
    gap = (last["cumulative_expected"] - last["cumulative_actual"]) / max(
        last["cumulative_actual"], 1
    )
    fig = plots.figure(
        f"Cumulative repeat purchases: model ends {gap:+.1%} from actual",
        x_title="week ending",
        y_title="cumulative repeat purchases",
    )
    fig.add_scatter(
        x=table["period_end"], y=table["cumulative_actual"], name="actual", mode="lines"
    )
    fig.add_scatter(
        x=table["period_end"],
        y=table["cumulative_expected"],
        name="BG/NBD expected",
        mode="lines",
        line={"dash": "dash"},
    )
    cal = table.attrs.get("calibration_end")
    if cal is not None and table["holdout"].any():
        fig.add_vline(x=pd.Timestamp(cal).timestamp() * 1000, line_dash="dot", line_color="gray")
        fig.add_annotation(
            x=pd.Timestamp(cal), y=1, yref="paper", text="holdout starts", showarrow=False
        )
    return fig


def plot_p_alive(table: pd.DataFrame) -> go.Figure:
    """Histogram of P(alive) from :func:`p_alive_distribution`."""
    low = table.loc[table["p_alive_to"] <= 0.5, "share"].sum()
    fig = plots.figure(
        f"{low:.0%} of customers have probably lapsed (P(alive) < 50%)",
        x_title="P(alive) at the end of the period",
        y_title="customers",
    )
    centres = (table["p_alive_from"] + table["p_alive_to"]) / 2
    fig.add_bar(
        x=centres,
        y=table["customers"],
        width=(table["p_alive_to"] - table["p_alive_from"]) * 0.95,
        marker_color=plots.PALETTE[0],
    )
    fig.update_xaxes(range=[0, 1], tickformat=".0%")
    return fig


def plot_clv_distribution(frame: pd.DataFrame, *, column: str | None = None) -> go.Figure:
    """Histogram of CLV (log-spaced bins would hide zeros; the axis is capped at p99)."""
    col = _clv_column(frame, column)
    v = frame[col].to_numpy()
    med = float(np.median(v)) if len(v) else float("nan")
    cap = float(np.quantile(v, 0.99)) if len(v) else 1.0
    fig = plots.figure(
        f"Half the customers are worth less than {med:,.2f} over the horizon",
        x_title=f"{col} (currency, axis capped at the 99th percentile {cap:,.0f})",
        y_title="customers",
    )
    fig.add_histogram(x=np.minimum(v, cap), nbinsx=50, marker_color=plots.PALETTE[0])
    return fig


def plot_concentration(frame: pd.DataFrame, *, column: str | None = None) -> go.Figure:
    """Cumulative share of value against the share of customers (ranked by value)."""
    col = _clv_column(frame, column)
    v = np.sort(frame[col].to_numpy())[::-1]
    total = v.sum()
    share_c = np.arange(1, len(v) + 1) / max(len(v), 1)
    share_v = np.cumsum(v) / total if total > 0 else np.zeros_like(v)
    top = top_share(v, top=0.2)
    fig = plots.figure(
        f"The top 20% of customers hold {top:.0%} of expected value",
        x_title="share of customers (most valuable first)",
        y_title=f"share of total {col}",
    )
    step = max(1, len(v) // 500)
    fig.add_scatter(x=share_c[::step], y=share_v[::step], mode="lines", name="customers")
    fig.add_scatter(
        x=[0, 1],
        y=[0, 1],
        mode="lines",
        name="equal value",
        line={"dash": "dot", "color": plots.NEUTRAL},
    )
    fig.update_xaxes(tickformat=".0%", range=[0, 1])
    fig.update_yaxes(tickformat=".0%", range=[0, 1.02])
    return fig


def plot_clv_by(table: pd.DataFrame, by: str) -> go.Figure:
    """Mean CLV per group with 95% intervals (from :func:`clv_by`)."""
    mean_col = next(c for c in table.columns if c.startswith("mean_clv_"))
    best = table.iloc[0]
    fig = plots.bar_with_ci(
        table,
        x=by,
        y=mean_col,
        low="ci_low",
        high="ci_high",
        title=f"{str(best[by])[:1].upper()}{str(best[by])[1:]} customers are worth most: "
        f"{best[mean_col]:,.2f} on average",
        x_title=by.replace("_", " "),
        y_title=f"{mean_col.replace('_', ' ')} per customer",
    )
    return fig
