"""How sure the CLV figures are: intervals from the fit's covariance, per customer and in total.

Two kinds of interval, each named for what it covers:

* **Parameter intervals** (``<clv>_low``, ``<clv>_high``; the total's and the top share's
  ``ci_low``/``ci_high``): a parametric bootstrap. ``n_draws`` parameter vectors are
  drawn from the normal approximation of the maximum-likelihood estimates on the log
  scale the fit works in (mean: the estimates; covariance: the inverse observed
  information, ``covariance_log_`` of :class:`~cxkit.clv.BetaGeo` and
  :class:`~cxkit.clv.GammaGamma`), and every customer's expected purchases, expected
  spend and discounted CLV are recomputed for each draw. The percentiles of the draws
  bound the *expected* value: how much it could move because the model was fitted on
  finite data. They say nothing of what one customer will actually spend.
* **Predictive intervals** (``<clv>_pred_low``, ``<clv>_pred_high``): for each parameter
  draw, one simulated future per customer from the model itself — alive or not
  (P(alive)), the purchase rate and dropout probability from their posterior given the
  customer's history, the purchases and their times over the horizon, the value of each
  purchase from the spend model's posterior — discounted as CLV is. They bound what the
  customer could actually bring, parameter uncertainty included; for one customer they
  are wide and often start at 0. Simulating costs about 70 µs per customer at 200 draws,
  so they are computed for the ``predictive`` most valuable customers (default 1,000;
  ``None``: all). The total's predictive interval (``pred_low``/``pred_high``) adds the
  customers' summed purchase randomness to each draw's total as a normal term (a sum
  over many independent customers), its variance from 4 simulated futures per customer.

Memory stays bounded at any number of customers. The value of an alive customer depends
on a customer only through (frequency, T): it is computed for every draw on 16
Chebyshev nodes of T per frequency, each at 16 Chebyshev nodes in time instead of every
week of the horizon, and interpolated (relative error below 1e-10, checked against
:func:`~cxkit.clv.customer_value` in the tests). Then customers are taken in batches of
at most ``max_cells / n_draws`` (every draw of a batch at once: the per-customer
percentiles and the totals), and draws in chunks of at most ``max_cells / m`` over the
``m`` customers who can be in the top share in some draw (which re-ranks customers per
draw). No array of ``n_draws × n`` values is ever held. The predictive draws use one
random stream per block of 256 customers, so no result depends on ``max_cells``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike
from scipy import special
from sklearn.utils.validation import check_is_fitted

from cxkit.clv.base import ModelBase, Summary, compress, summary_column
from cxkit.clv.bgnbd import BetaGeo
from cxkit.clv.gamma_gamma import GammaGamma
from cxkit.clv.value import customer_value, expected_spend, top_share, value_schedule
from cxkit.errors import DataError, UsageError

#: Chebyshev nodes per frequency (in T) and per node (in time) for the value of an
#: alive customer.
NODES = 16
#: Customers per predictive random stream (results do not depend on the batch size).
BLOCK = 256
#: Simulated purchases expanded at once in the predictive draws.
PIECE = 2**16
#: Customers per batch of the per-customer intervals (every draw at once).
BATCH = 512
#: Simulated futures per customer for the purchase-randomness variance of the total.
VARIANCE_SIMS = 4
#: The largest standard error of a log-parameter the bootstrap draws from: beyond it
#: (a 95% interval spanning more than a factor of 50 either way) the fit does not pin
#: the parameter down and draws from it are meaningless.
MAX_SE_LOG = 2.0
#: Default bound on the values held at once (batch × draws, or chunk × customers).
MAX_CELLS = 2**21


@dataclass(frozen=True)
class ClvIntervals:
    """The CLV intervals of :func:`clv_intervals`.

    Attributes
    ----------
    per_customer
        One row per row of the summary (same index): ``customer_id`` (when the summary
        has it), ``<clv>_low`` and ``<clv>_high`` (parameter interval of the expected
        value), ``<clv>_pred_low`` and ``<clv>_pred_high`` (predictive interval; NaN
        for the customers beyond the ``predictive`` most valuable, and without the
        Gamma-Gamma spend model).
    total
        ``value`` (the total expected CLV), ``ci_low``, ``ci_high`` (parameter
        interval), ``pred_low``, ``pred_high`` (predictive interval of the total the
        customers will actually bring) and ``n``.
    top_share
        ``value`` (the top share of expected value), ``ci_low``, ``ci_high`` (parameter
        interval; customers re-ranked in each draw), ``top`` and ``n``.
    draws
        One row per parameter draw: the parameters, ``total``, ``top_share`` and
        ``predicted_total``.
    column
        The CLV column the intervals belong to (e.g. ``"clv_52w"``).
    n_draws, level
        The draws and the intervals' coverage.
    notes
        What the intervals leave out, in words.
    """

    per_customer: pd.DataFrame
    total: dict[str, float]
    top_share: dict[str, float]
    draws: pd.DataFrame
    column: str
    n_draws: int
    level: float
    notes: list[str] = field(default_factory=list)

    @property
    def columns(self) -> list[str]:
        """Return the interval columns of :attr:`per_customer` (without ``customer_id``).

        Returns
        -------
        list of str
            ``<clv>_low, <clv>_high, <clv>_pred_low, <clv>_pred_high``.
        """
        return [c for c in self.per_customer.columns if c != "customer_id"]

    def relative_width(self, values: pd.Series | np.ndarray) -> dict[str, float]:
        """Return how wide the per-customer intervals are relative to the expected value.

        Parameters
        ----------
        values
            The expected CLV per customer, in the order of :attr:`per_customer`.

        Returns
        -------
        dict of str to float
            ``parameter_half_width``: the median over customers of the parameter
            interval's half-width divided by the expected value; ``predictive_from_zero``:
            the share of the customers with a predictive interval whose interval starts
            at 0 (NaN without any); ``n``: the customers with a positive expected value.
        """
        v = np.asarray(values, dtype="float64")
        lo = self.per_customer[f"{self.column}_low"].to_numpy()
        hi = self.per_customer[f"{self.column}_high"].to_numpy()
        pos = v > 0
        half = (hi[pos] - lo[pos]) / 2 / v[pos]
        pred_lo = self.per_customer[f"{self.column}_pred_low"].to_numpy()
        has_pred = np.isfinite(pred_lo)
        return {
            "parameter_half_width": float(np.median(half)) if pos.any() else float("nan"),
            "predictive_from_zero": (
                float(np.mean(pred_lo[has_pred] <= 0)) if has_pred.any() else float("nan")
            ),
            "n": int(pos.sum()),
        }


def parameter_draws(
    model: ModelBase, n_draws: int, *, random_state: int | np.random.Generator | None = None
) -> pd.DataFrame:
    """Draw parameter vectors from a fitted model's normal approximation on the log scale.

    ``exp(θ̂ + L z)`` with ``z`` standard normal and ``L L' = covariance_log_`` (the
    inverse observed information of the log-parameters).

    Parameters
    ----------
    model
        A fitted :class:`~cxkit.clv.BetaGeo` or :class:`~cxkit.clv.GammaGamma`.
    n_draws
        How many vectors.
    random_state
        Seed or Generator.

    Returns
    -------
    pandas.DataFrame
        One row per draw, one column per parameter.

    Raises
    ------
    DataError
        When the model has no finite covariance (its Hessian was not positive definite).

    Examples
    --------
    >>> from cxkit.clv.bgnbd import simulate_bgnbd
    >>> bg = BetaGeo().fit(simulate_bgnbd(5_000, r=0.5, alpha=5, a=0.8, b=2.5, T=52,
    ...                                   random_state=0))
    >>> d = parameter_draws(bg, 4_000, random_state=1)
    >>> bool(np.allclose(np.log(d).std(), np.sqrt(np.diag(bg.covariance_log_)), rtol=0.1))
    True
    """
    check_is_fitted(model)
    names = list(model.params_.index)
    rng = np.random.default_rng(random_state)
    theta = np.log(model.params_.to_numpy(dtype="float64"))
    return pd.DataFrame(
        np.exp(theta + rng.standard_normal((n_draws, len(names))) @ _cholesky(model).T),
        columns=names,
    )


def _check_identified(model: ModelBase, name: str) -> None:
    """Raise a DataError when the fit leaves a parameter practically undetermined."""
    se_log = np.sqrt(np.diag(np.asarray(model.covariance_log_, dtype="float64")))
    loose = [p for p, s in zip(model.params_.index, se_log, strict=True) if s > MAX_SE_LOG]
    if loose:
        raise DataError(
            f"the {name} fit does not pin down {', '.join(loose)} (standard error on the log "
            f"scale up to {float(np.max(se_log)):.1f}: 95% intervals spanning more than a "
            f"factor of {math.exp(1.96 * MAX_SE_LOG):.0f} either way), so intervals drawn from "
            "it would be meaningless",
            fix="use more customers or a longer history; the expected values themselves "
            "are still computed",
        )


_MODEL_NAMES = {"BetaGeo": "BG/NBD", "GammaGamma": "Gamma-Gamma"}


def _cholesky(model: ModelBase) -> np.ndarray:
    cov = getattr(model, "covariance_log_", None)
    arr = None if cov is None else np.asarray(cov, dtype="float64")
    if arr is None or not np.all(np.isfinite(arr)):
        raise DataError(
            f"the {_MODEL_NAMES.get(type(model).__name__, type(model).__name__)} fit has no "
            "standard errors (its Hessian was not "
            "positive definite at the optimum), so its parameter uncertainty is unknown",
            fix="use more customers or a longer period, so that the model is identified",
        )
    return np.linalg.cholesky(arr)


def _lobatto(lo: np.ndarray | float, hi: np.ndarray | float, m: int) -> np.ndarray:
    """Return ``m`` Chebyshev–Lobatto points from ``hi`` down to ``lo`` (last axis)."""
    lo_, hi_ = (
        np.asarray(lo, dtype="float64")[..., None],
        np.asarray(hi, dtype="float64")[..., None],
    )
    pts = (lo_ + hi_) / 2 + (hi_ - lo_) / 2 * np.cos(np.pi * np.arange(m) / (m - 1))
    pts[..., 0], pts[..., -1] = hi_[..., 0], lo_[..., 0]
    return pts


def _chebyshev_weights(u: np.ndarray, nodes: np.ndarray) -> np.ndarray:
    """Return the Lagrange weights of Chebyshev–Lobatto ``nodes`` at points ``u``.

    Barycentric form; ``u`` is ``(..., k)`` and ``nodes`` ``(..., m)`` with the same
    leading axes (or none); the result is ``(..., k, m)``.
    """
    m = nodes.shape[-1]
    w = (-1.0) ** np.arange(m)
    w[0] *= 0.5
    w[-1] *= 0.5
    diff = u[..., :, None] - nodes[..., None, :]
    hit = diff == 0
    with np.errstate(divide="ignore", invalid="ignore"):
        q = w / diff
        out = q / q.sum(axis=-1, keepdims=True)
    rows = hit.any(axis=-1)
    out[rows] = hit[rows].astype("float64")
    return out


def _time_nodes(
    node_T: np.ndarray, alpha: float, ends: np.ndarray, disc: np.ndarray, m: int, max_cells: int
) -> tuple[np.ndarray, np.ndarray]:
    """Return the times at which to evaluate expected purchases, and their weights.

    Σ_k d_k (E(t_k) − E(t_(k−1))) = Σ_k (d_k − d_(k+1)) E(t_k) with d_(K+1) = 0 (and
    E(0) = 0). With more than ``m`` steps, E is evaluated at ``m`` Chebyshev–Lobatto
    points in w = log(1 + t / (alpha + T)), where it is analytic in a strip of
    half-width π around the real axis, and the steps' weights are carried over to
    those points by interpolation; ``(times, weights)`` are ``nodes × points``.
    """
    omega = disc - np.append(disc[1:], 0.0)
    if len(ends) <= m:
        shape = (len(node_T), len(ends))
        return np.broadcast_to(ends, shape).copy(), np.broadcast_to(omega, shape).copy()
    beta = alpha + node_T
    w_nodes = _lobatto(0.0, np.log1p(ends[-1] / beta), m)  # nodes × m
    times = beta[:, None] * np.expm1(w_nodes)
    weights = np.empty_like(times)
    chunk = max(1, max_cells // (len(ends) * m))
    for start in range(0, len(beta), chunk):
        sl = slice(start, start + chunk)
        w_ends = np.log1p(ends[None, :] / beta[sl, None])  # nodes × steps
        weights[sl] = np.einsum("nkj,k->nj", _chebyshev_weights(w_ends, w_nodes[sl]), omega)
    return times, weights


@dataclass(frozen=True)
class _RowNodes:
    """Where the value of an alive customer at each distinct (x, T) row comes from.

    ``base``: the row's node (exact rows, ``lo`` NaN), else the first of its frequency's
    ``m`` Chebyshev nodes, which lie in u = log(alpha + T) from ``hi`` down to ``lo``;
    ``u`` is the row's own. 32 bytes a row, whatever ``m``.
    """

    base: np.ndarray
    u: np.ndarray
    lo: np.ndarray
    hi: np.ndarray
    m: int


def _value_nodes(
    ux: np.ndarray, uT: np.ndarray, alpha: float, m: int
) -> tuple[np.ndarray, np.ndarray, _RowNodes]:
    """Return the nodes (x, T) on which the value of an alive customer is computed.

    Per frequency x: its distinct T values themselves when there are at most ``m``,
    else ``m`` Chebyshev–Lobatto nodes in log(alpha + T) over its range of T. Returns
    ``node_x, node_T`` and how each distinct (x, T) row reads them.
    """
    g = len(ux)
    base = np.zeros(g, dtype="int64")
    u_row = np.log(alpha + uT)
    lo_row = np.full(g, np.nan)
    hi_row = np.full(g, np.nan)
    node_x: list[np.ndarray] = []
    node_T: list[np.ndarray] = []
    order = np.argsort(ux, kind="stable")
    xs, starts = np.unique(ux[order], return_index=True)
    bounds = [*starts.tolist(), g]
    first = 0
    for xv, start, stop in zip(xs, bounds[:-1], bounds[1:], strict=True):
        rows = order[start:stop]
        Ts = uT[rows]
        if len(rows) <= m:
            node_x.append(np.full(len(rows), xv))
            node_T.append(Ts)
            base[rows] = first + np.arange(len(rows))
            first += len(rows)
            continue
        u = u_row[rows]
        lo, hi = float(u.min()), float(u.max())
        nT = np.exp(_lobatto(lo, hi, m)) - alpha
        nT[0], nT[-1] = Ts.max(), Ts.min()
        node_x.append(np.full(m, xv))
        node_T.append(nT)
        base[rows], lo_row[rows], hi_row[rows] = first, lo, hi
        first += m
    nodes = _RowNodes(base=base, u=u_row, lo=lo_row, hi=hi_row, m=m)
    return np.concatenate(node_x), np.concatenate(node_T), nodes


def _alive_value(
    node_x: np.ndarray,
    node_T: np.ndarray,
    times: np.ndarray,
    weights: np.ndarray,
    bg: np.ndarray,
    max_cells: int,
) -> np.ndarray:
    """Return the discounted expected purchases of an alive customer (draws × nodes).

    As :meth:`BetaGeo.expected_purchases` without the P(alive) factor (FHL 2005 eq. 10,
    Euler-transformed hypergeometric term), at the nodes' ``times`` (:func:`_time_nodes`),
    weighted by ``weights`` and summed.
    """
    n_nodes, k = times.shape
    out = np.empty((len(bg), n_nodes))
    chunk = max(1, max_cells // max(1, n_nodes * k))
    t = times[None, :, :]
    for start in range(0, len(bg), chunk):
        p = bg[start : start + chunk]
        r, alpha, a, b = (p[:, i, None, None] for i in range(4))
        a = np.where(np.abs(a - 1) < 1e-7, 1 + 1e-7, a)  # removable singularity at a = 1
        with np.errstate(divide="ignore", invalid="ignore"):
            z = t / (alpha + node_T[None, :, None] + t)
            c = a + b + node_x[None, :, None] - 1
            hyp = special.hyp2f1(a + b - 1 - r, a - 1, c, z)
            num = c / (a - 1) * (1 - np.power(1 - z, a - 1) * hyp)
        out[start : start + chunk] = np.einsum("cnk,nk->cn", num, weights)
    return out


def _interpolate(
    alive_nodes: np.ndarray, nodes: _RowNodes, rows: np.ndarray, max_cells: int
) -> np.ndarray:
    """Return the value of an alive customer at distinct (x, T) ``rows`` (rows × draws)."""
    base = nodes.base[rows]
    out = alive_nodes[base]  # exact rows: their own node
    interp = np.flatnonzero(np.isfinite(nodes.lo[rows]))
    chunk = max(1, max_cells // (4 * nodes.m))
    for start in range(0, len(interp), chunk):
        part = interp[start : start + chunk]
        sel = rows[part]
        w = _chebyshev_weights(
            nodes.u[sel][:, None], _lobatto(nodes.lo[sel], nodes.hi[sel], nodes.m)
        )[:, 0, :]
        acc = np.zeros((len(part), alive_nodes.shape[1]))
        for j in range(nodes.m):
            acc += w[:, j, None] * alive_nodes[base[part] + j]
        out[part] = acc
    return out


def _spend(x: np.ndarray, m: np.ndarray, gg: np.ndarray, margin: float) -> np.ndarray:
    """Return margin × the expected spend per purchase per customer (rows) and draw (columns).

    p (γ + m x) / (p x + q − 1); infinite when p x + q ≤ 1 (no finite mean).
    """
    p, q, g = gg[None, :, 0], gg[None, :, 1], gg[None, :, 2]
    num = g + (m * x)[:, None]
    num *= margin * p
    den = p * x[:, None]
    den += q - 1
    bad = den <= 0
    with np.errstate(divide="ignore", invalid="ignore"):
        num /= den
    if bad.any():
        num[bad] = np.inf
    return num


def _simulate_block(
    rng: np.random.Generator,
    x: np.ndarray,
    T: np.ndarray,
    m: np.ndarray,
    p_alive: np.ndarray,
    bg: np.ndarray,
    gg: np.ndarray,
    ends: np.ndarray,
    disc: np.ndarray,
    margin: float,
) -> np.ndarray:
    """One simulated discounted future value per customer (rows) and draw (columns).

    Alive with probability P(alive); given alive, λ ~ Gamma(r + x, α + T) and
    p ~ Beta(a, b + x) (the posterior given the history); the purchases over the
    horizon are those of a Poisson(λ) process up to and including the one after which
    the customer drops out (after Geometric(p) purchases). Given the N purchases of the
    Poisson process in (0, h], their times are uniform order statistics (built from
    exponential spacings) and the first K = min(N, dropout) are made; each one's value
    is Gamma(p, ν) with ν ~ Gamma(q + p x, γ + m x), discounted at the end of its step.
    """
    out = np.zeros(p_alive.shape)
    horizon = float(ends[-1])
    alive = rng.random(p_alive.shape) < p_alive
    ci, di = np.nonzero(alive)
    if len(ci) == 0:
        return out
    r, alpha, a, b = (bg[di, i] for i in range(4))
    lam = rng.standard_gamma(r + x[ci]) / (alpha + T[ci])
    drop = np.clip(rng.beta(a, b + x[ci]), 1e-12, 1.0)
    n_poisson = rng.poisson(lam * horizon)
    k = np.minimum(n_poisson, rng.geometric(drop))
    buy = k > 0
    ci, di, n_poisson, k = ci[buy], di[buy], n_poisson[buy], k[buy]
    cum_k = np.cumsum(k)
    start = 0
    while start < len(k):
        # the next cells whose purchases fit in one piece (at least one cell)
        before = cum_k[start - 1] if start else 0
        stop = max(start + 1, int(np.searchsorted(cum_k, before + PIECE, side="right")))
        kk, nn = k[start:stop], n_poisson[start:stop]
        cc, dd = ci[start:stop], di[start:stop]
        rep = np.repeat(np.arange(len(kk)), kk)
        cs = np.cumsum(rng.standard_exponential(int(kk.sum())))
        last = np.cumsum(kk) - 1
        base = np.concatenate(([0.0], cs[last[:-1]]))
        # the K smallest of N uniforms: partial sums of N + 1 exponential spacings, the
        # N + 1 - K spacings after the K-th drawn at once as one Gamma(N + 1 - K)
        total = cs[last] - base + rng.standard_gamma(nn - kk + 1.0)
        t = horizon * (cs - base[rep]) / total[rep]
        step = np.minimum(np.searchsorted(ends, t, side="left"), len(ends) - 1)
        p, q, g = gg[dd, 0], gg[dd, 1], gg[dd, 2]
        nu = rng.standard_gamma(q + p * x[cc]) / (g + m[cc] * x[cc])
        value = rng.standard_gamma(p[rep]) / nu[rep] * disc[step]
        out[cc, dd] = margin * np.bincount(rep, weights=value, minlength=len(kk))
        start = stop
    return out


@dataclass
class _Bootstrap:
    """Everything the passes over customers and draws share."""

    x: np.ndarray
    tx: np.ndarray
    T: np.ndarray
    m: np.ndarray
    row: np.ndarray  # distinct (x, T) row per customer
    alive_nodes: np.ndarray  # nodes × draws
    nodes: _RowNodes
    iT: np.ndarray
    itx: np.ndarray
    ix: np.ndarray
    log_T: np.ndarray | None  # distinct T × draws: log(alpha + T), when small enough
    log_tx: np.ndarray | None
    log_bx1: np.ndarray  # distinct x × draws: log(b + x - 1)
    bg: np.ndarray
    gg: np.ndarray | None
    fixed_spend: np.ndarray | None
    margin: float
    max_cells: int

    def _log_alpha_plus(
        self,
        table: np.ndarray | None,
        codes: np.ndarray,
        times: np.ndarray,
        ids: np.ndarray,
        draws: slice,
    ) -> np.ndarray:
        """Return log(alpha + t) of customers ``ids`` for ``draws``.

        From the table of distinct times when there is one, else computed.
        """
        if table is not None:
            return table[:, draws][codes[ids]]
        return np.log(self.bg[draws, 1][None, :] + times[ids, None])

    def values(self, ids: np.ndarray, draws: slice) -> tuple[np.ndarray, np.ndarray]:
        """Return the CLV and P(alive) of customers ``ids`` (rows) for ``draws`` (columns)."""
        urows, inv = np.unique(self.row[ids], return_inverse=True)
        value = _interpolate(self.alive_nodes[:, draws], self.nodes, urows, self.max_cells)[inv]
        bg = self.bg[draws]
        x = self.x[ids]
        # P(alive) = 1 / (1 + exp(log a - log(b + x - 1) + (r + x) log((α + T) / (α + t_x))))
        # in place: these arrays are the bulk of the work (customers × draws)
        pa = self._log_alpha_plus(self.log_T, self.iT, self.T, ids, draws)
        pa -= self._log_alpha_plus(self.log_tx, self.itx, self.tx, ids, draws)
        pa *= bg[None, :, 0] + x[:, None]
        pa -= self.log_bx1[:, draws][self.ix[ids]]
        pa += np.log(bg[None, :, 2])
        with np.errstate(over="ignore"):
            np.exp(pa, out=pa)
        pa += 1.0
        np.reciprocal(pa, out=pa)
        pa[x == 0] = 1.0  # no repeat purchase: alive under BG/NBD
        value *= pa
        if self.gg is None:
            value *= self.margin * self.fixed_spend[ids, None]
        else:
            value *= _spend(x, self.m[ids], self.gg[draws], self.margin)
        return value, pa


def _log_table(alpha: np.ndarray, times: ArrayLike, max_cells: int) -> np.ndarray | None:
    """Return log(alpha + t) per distinct time and draw, or None when it would be large.

    Times measured to the second have nearly as many distinct values as customers.
    """
    t = np.asarray(times, dtype="float64")
    if len(t) * len(alpha) > max_cells:
        return None
    return np.log(alpha[None, :] + t[:, None])


def interval_quantiles(v: np.ndarray, q: tuple[float, float]) -> np.ndarray:
    """Return the ``q`` quantiles along the last axis (numpy's default, linear, method).

    Sorting each row of a few hundred draws is several times faster than
    :func:`numpy.quantile`'s partition here (measured).
    """
    srt = np.sort(v, axis=-1)
    n = srt.shape[-1]
    out = []
    for level in q:
        pos = (n - 1) * level
        lo = min(math.floor(pos), n - 1)
        hi = min(lo + 1, n - 1)
        frac = pos - lo
        with np.errstate(invalid="ignore"):
            out.append(srt[..., lo] + frac * (srt[..., hi] - srt[..., lo]))
    res = np.stack(out)
    res[:, np.isnan(srt[..., -1])] = np.nan  # sorting puts NaN last: no quantile then
    return res


def total_interval(
    value: float,
    totals: np.ndarray,
    predicted_totals: np.ndarray,
    *,
    n: int,
    qs: tuple[float, float],
) -> dict[str, float]:
    """Return the total's entry of :attr:`ClvIntervals.total` from its bootstrap draws.

    The one construction of it: memory mode (:func:`clv_intervals`) and scale mode
    (:mod:`cxkit.clv.scale`, with the draws' totals added up over its batches) both
    call it.

    Parameters
    ----------
    value
        The total at the estimates.
    totals
        Each parameter draw's total.
    predicted_totals
        Each draw's total with purchase randomness added (all NaN: no predictive
        interval).
    n
        The customers the total is over.
    qs
        The lower and upper quantile levels of the intervals.

    Returns
    -------
    dict of str to float
        ``value, ci_low, ci_high`` (parameter interval), ``pred_low, pred_high``
        (predictive interval) and ``n``.

    Examples
    --------
    >>> d = total_interval(5.0, np.arange(11.0), np.full(11, np.nan), n=3, qs=(0.1, 0.9))
    >>> d["ci_low"], d["ci_high"], bool(np.isnan(d["pred_low"]))
    (1.0, 9.0, True)
    """
    (t_lo, t_hi), (p_lo, p_hi) = (interval_quantiles(a, qs) for a in (totals, predicted_totals))
    return {
        "value": value,
        "ci_low": float(t_lo),
        "ci_high": float(t_hi),
        "pred_low": float(p_lo),
        "pred_high": float(p_hi),
        "n": n,
    }


def clv_intervals(
    summary: Summary,
    bg: BetaGeo,
    gg: GammaGamma | None = None,
    *,
    horizon: float = 52,
    unit: str = "W",
    annual_discount_rate: float = 0.10,
    margin: float = 1.0,
    top: float = 0.2,
    n_draws: int = 200,
    level: float = 0.95,
    predictive: int | None = 1000,
    random_state: int | None = 0,
    max_cells: int = MAX_CELLS,
    values: pd.DataFrame | None = None,
) -> ClvIntervals:
    """Return per-customer and total CLV intervals by parametric bootstrap from the fits.

    Draws ``n_draws`` parameter vectors of BG/NBD (and Gamma-Gamma) from their
    estimates' normal approximation on the log scale (:func:`parameter_draws`) and
    recomputes every customer's discounted CLV for each, as
    :func:`~cxkit.clv.customer_value` does; see the module notes for what the parameter
    and the predictive intervals cover.

    The predictive interval of the total adds purchase randomness to each draw's total
    as a normal term (the total is a sum over many independent customers), whose
    variance is the sum of the customers' variances, estimated from 4 simulated futures
    per customer at the estimates.

    Parameters
    ----------
    summary
        The RFM summary the models were applied to (same time unit).
    bg, gg
        The fitted models; without ``gg`` the expected spend is each customer's observed
        mean (no spend uncertainty, and no predictive intervals).
    horizon, unit, annual_discount_rate, margin
        As in :func:`~cxkit.clv.customer_value`.
    top
        The top share whose interval is given (0.2 = top 20% of customers).
    n_draws
        Parameter draws (200: the 2.5% and 97.5% points rest on about 5 draws each side).
    level
        The coverage of every interval.
    predictive
        How many customers, most valuable first, get a predictive interval (simulating
        one future per customer and draw costs about 70 µs per customer at 200 draws);
        ``None`` for all of them, 0 for none (and no predictive interval of the total).
    random_state
        Seed; the same seed gives the same intervals, whatever ``max_cells``.
    max_cells
        The most values held at once in one working array (customers × draws).
    values
        :func:`~cxkit.clv.customer_value` of ``summary`` with the same settings, when
        already computed.

    Returns
    -------
    ClvIntervals
        The per-customer table, the total and the top share with their intervals.

    Raises
    ------
    UsageError
        For bad settings.
    DataError
        When a model has no finite covariance.

    Examples
    --------
    >>> from cxkit.clv.bgnbd import simulate_bgnbd
    >>> s = simulate_bgnbd(3_000, r=0.5, alpha=5, a=0.8, b=2.5, T=52, random_state=0)
    >>> s["monetary_value"] = np.where(s.frequency > 0, 20.0, 0.0)
    >>> iv = clv_intervals(s, BetaGeo().fit(s), n_draws=100)
    >>> bool(iv.total["ci_low"] < iv.total["value"] < iv.total["ci_high"])
    True
    """
    if n_draws < 10:
        raise UsageError(f"n_draws must be at least 10, got {n_draws!r}")
    if not 0 < level < 1:
        raise UsageError(f"level is a coverage between 0 and 1 like 0.95, got {level!r}")
    if not 0 < top <= 1:
        raise UsageError(f"top is a share between 0 and 1 like 0.2, got {top!r}")
    if max_cells < 1:
        raise UsageError(f"max_cells must be positive, got {max_cells!r}")
    if isinstance(predictive, bool) or (predictive is not None and predictive < 0):
        raise UsageError(f"predictive is a number of customers or None, got {predictive!r}")
    settings = {
        "horizon": horizon,
        "unit": unit,
        "annual_discount_rate": annual_discount_rate,
        "margin": margin,
    }
    point = values
    if point is None or any(point.attrs.get(k) != v for k, v in settings.items()):
        point = customer_value(summary, bg, gg, **settings)
    col = str(point.attrs["clv_column"])
    ends, disc = value_schedule(
        bg, summary, horizon=horizon, unit=unit, annual_discount_rate=annual_discount_rate
    )
    entropy = np.random.SeedSequence(random_state).entropy

    def stream(*key: int) -> np.random.Generator:
        return np.random.default_rng(np.random.SeedSequence(entropy, spawn_key=key))

    _cholesky(bg)  # a covariance at all, then a useful one
    _check_identified(bg, "BG/NBD")
    if gg is not None:
        _cholesky(gg)
        _check_identified(gg, "Gamma-Gamma")
    param_rng = stream(0)
    bgd = parameter_draws(bg, n_draws, random_state=param_rng).to_numpy()
    ggd = None if gg is None else parameter_draws(gg, n_draws, random_state=param_rng).to_numpy()
    notes: list[str] = []
    if ggd is None:
        notes.append(
            "Without the Gamma-Gamma spend model the expected spend per purchase is each "
            "customer's observed mean: the intervals leave out spend uncertainty, and there "
            "are no predictive intervals."
        )
    elif np.any(ggd[:, 1] <= 1):
        notes.append(
            f"{int(np.sum(ggd[:, 1] <= 1))} of the {n_draws} parameter draws have q <= 1 "
            "(an infinite mean spend): their values count as infinite."
        )

    x = summary_column(summary, "frequency", "clv")
    tx = np.where(x > 0, summary_column(summary, "recency", "clv"), 0.0)
    T = summary_column(summary, "T", "clv")
    m = np.where(x > 0, summary_column(summary, "monetary_value", "clv"), 0.0)
    n = len(x)
    (ux, uT), _, row = compress(x, T)
    alpha = float(bg.params_["alpha"])
    node_x, node_T, row_nodes = _value_nodes(ux, uT, alpha, NODES)
    time_nodes = _time_nodes(node_T, alpha, ends, disc, NODES, max_cells)
    alive_nodes = _alive_value(node_x, node_T, *time_nodes, bgd, max_cells).T
    if not np.all(np.isfinite(alive_nodes)):
        bad = int(np.sum(~np.isfinite(alive_nodes).all(axis=0)))
        raise DataError(
            f"the expected purchases could not be computed for {bad} of the {n_draws} "
            "parameter draws (the hypergeometric function did not converge there)",
            fix="use more customers or a longer history, so that the parameters are "
            "better determined",
        )
    iT, Tu = pd.factorize(T)
    itx, txu = pd.factorize(tx)
    ix, xu = pd.factorize(x)
    xu = np.asarray(xu, dtype="float64")
    with np.errstate(divide="ignore", invalid="ignore"):
        log_bx1 = np.log(np.where(xu[:, None] > 0, bgd[None, :, 3] + xu[:, None] - 1, 1.0))
    boot = _Bootstrap(
        x=x,
        tx=tx,
        T=T,
        m=m,
        row=row,
        alive_nodes=alive_nodes,
        nodes=row_nodes,
        iT=iT,
        itx=itx,
        ix=ix,
        log_T=_log_table(bgd[:, 1], Tu, max_cells),
        log_tx=_log_table(bgd[:, 1], txu, max_cells),
        log_bx1=log_bx1,
        bg=bgd,
        gg=ggd,
        fixed_spend=None if ggd is not None else expected_spend(summary, None),
        margin=margin,
        max_cells=max_cells,
    )
    qs = ((1 - level) / 2, 1 - (1 - level) / 2)
    out = {f"{col}_{s}": np.full(n, np.nan) for s in ("low", "high", "pred_low", "pred_high")}
    every = slice(None)

    # customers in batches, every draw at once: the per-customer intervals and the totals
    totals = np.zeros(n_draws)
    v_min, v_max = np.empty(n), np.empty(n)
    order = np.argsort(row, kind="stable")  # a batch then needs few distinct (x, T) rows
    # small batches: the working arrays stay in the processor's cache (2x faster, measured)
    batch = max(1, min(max_cells // n_draws, BATCH))
    for start in range(0, n, batch):
        ids = order[start : start + batch]
        v, _ = boot.values(ids, every)
        out[f"{col}_low"][ids], out[f"{col}_high"][ids] = interval_quantiles(v, qs)
        v_min[ids], v_max[ids] = v.min(axis=1), v.max(axis=1)
        totals += v.sum(axis=0)

    # the top share of each draw, customers re-ranked: only customers whose largest value
    # reaches the k-th largest of the smallest ones can be in the top k of any draw
    k = max(1, math.ceil(top * n - 1e-9)) if n else 1
    tops = np.full(n_draws, np.nan)
    if n:
        floor = np.partition(v_min, n - k)[n - k]
        cand = np.flatnonzero(v_max >= floor)
        chunk = max(1, max_cells // max(1, len(cand)))
        for start in range(0, n_draws if len(cand) else 0, chunk):
            sl = slice(start, min(start + chunk, n_draws))
            v = np.ascontiguousarray(boot.values(cand, sl)[0].T)  # draws × candidates
            top_k = np.partition(v, len(cand) - k, axis=1)[:, len(cand) - k :]
            with np.errstate(invalid="ignore"):
                tops[sl] = top_k.sum(axis=1) / totals[sl]

    pred_total = np.full(n_draws, np.nan)
    # customers in ID order for every random stream, so every engine (whatever its row
    # order) draws the same random futures for the same customers
    tie = (
        point["customer_id"].astype(str).to_numpy()
        if "customer_id" in point.columns
        else np.arange(n)
    )
    if ggd is not None and predictive != 0 and n:
        values_point = point[col].to_numpy()
        ranked = np.lexsort((tie, -values_point))
        chosen = ranked if predictive is None else ranked[:predictive]
        for b, start in enumerate(range(0, len(chosen), BLOCK)):
            blk = chosen[start : start + BLOCK]
            _, pa = boot.values(blk, every)
            sims = _simulate_block(
                stream(1, b), x[blk], T[blk], m[blk], pa, bgd, ggd, ends, disc, margin
            )
            out[f"{col}_pred_low"][blk], out[f"{col}_pred_high"][blk] = interval_quantiles(sims, qs)
        canon = np.argsort(tie, kind="stable")
        spread = _purchase_variance(bg, gg, boot, ends, disc, stream, canon)
        pred_total = totals + math.sqrt(spread) * (stream(3).standard_normal(n_draws))

    per_customer = pd.DataFrame(out, index=point.index)
    if "customer_id" in point.columns:
        per_customer.insert(0, "customer_id", point["customer_id"].to_numpy())
    s_lo, s_hi = interval_quantiles(tops, qs)
    names = [*bg.params_.index, *([] if gg is None else gg.params_.index)]
    params = bgd if ggd is None else np.hstack([bgd, ggd])
    draws = pd.DataFrame(params, columns=names).assign(
        total=totals, top_share=tops, predicted_total=pred_total
    )
    values_point = point[col].to_numpy()
    return ClvIntervals(
        per_customer=per_customer,
        total=total_interval(float(values_point.sum()), totals, pred_total, n=n, qs=qs),
        top_share={
            "value": top_share(values_point, top=top),
            "ci_low": float(s_lo),
            "ci_high": float(s_hi),
            "top": top,
            "n": n,
        },
        draws=draws,
        column=col,
        n_draws=n_draws,
        level=level,
        notes=notes,
    )


def _simulate_at_estimates(
    bg: BetaGeo,
    gg: GammaGamma,
    cols: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
    n_sims: int,
    ends: np.ndarray,
    disc: np.ndarray,
    margin: float,
    stream: Callable[..., np.random.Generator],
    key: int,
) -> Iterator[tuple[slice, np.ndarray]]:
    """Yield ``(rows, simulated values)`` per block of customers, at the fitted parameters."""
    x, tx, T, m = cols
    bg1 = np.repeat(bg.params_.to_numpy(dtype="float64")[None, :], n_sims, axis=0)
    gg1 = np.repeat(gg.params_.to_numpy(dtype="float64")[None, :], n_sims, axis=0)
    for b, start in enumerate(range(0, len(x), BLOCK)):
        blk = slice(start, min(start + BLOCK, len(x)))
        pa = bg.p_alive({"frequency": x[blk], "recency": tx[blk], "T": T[blk]})
        pa = np.repeat(pa[:, None], n_sims, axis=1)
        sims = _simulate_block(
            stream(key, b), x[blk], T[blk], m[blk], pa, bg1, gg1, ends, disc, margin
        )
        yield blk, sims


def _purchase_variance(
    bg: BetaGeo,
    gg: GammaGamma,
    boot: _Bootstrap,
    ends: np.ndarray,
    disc: np.ndarray,
    stream: Callable[..., np.random.Generator],
    order: np.ndarray,
) -> float:
    """Return the sum of the customers' variances of their discounted value, at the estimates.

    Each customer's variance from :data:`VARIANCE_SIMS` simulated futures (the unbiased
    sample variance), summed: the variance of the total the customers will bring. The
    customers are simulated in ``order`` (by ID), so the result does not depend on the
    engine's row order.
    """
    cols = (boot.x[order], boot.tx[order], boot.T[order], boot.m[order])
    sims = _simulate_at_estimates(bg, gg, cols, VARIANCE_SIMS, ends, disc, boot.margin, stream, 2)
    return float(sum(v.var(axis=1, ddof=1).sum() for _, v in sims))


def simulate_values(
    summary: Summary,
    bg: BetaGeo,
    gg: GammaGamma,
    *,
    n_sims: int = 1000,
    horizon: float = 52,
    unit: str = "W",
    annual_discount_rate: float = 0.10,
    margin: float = 1.0,
    random_state: int | None = 0,
) -> pd.DataFrame:
    """Simulate what each customer could actually bring over the horizon, at the estimates.

    The predictive draws of :func:`clv_intervals` without the parameter uncertainty:
    alive or not (P(alive)); the purchase rate and dropout probability from their
    posterior given the customer's history; the purchases over the horizon and their
    times; each purchase's value from the spend model's posterior; discounted at the
    end of its step as :func:`~cxkit.clv.customer_value` discounts. The mean over many
    simulations is the customer's CLV.

    Parameters
    ----------
    summary
        The RFM summary of the customers to simulate (``frequency``, ``recency``,
        ``T``, ``monetary_value``).
    bg, gg
        The fitted models.
    n_sims
        Simulated futures per customer.
    horizon, unit, annual_discount_rate, margin
        As in :func:`~cxkit.clv.customer_value`.
    random_state
        Seed.

    Returns
    -------
    pandas.DataFrame
        One row per row of ``summary`` (same index), one column per simulation.

    Examples
    --------
    >>> from cxkit.clv.bgnbd import simulate_bgnbd
    >>> from cxkit.clv.gamma_gamma import simulate_spend
    >>> s = simulate_bgnbd(3_000, r=0.5, alpha=5, a=0.8, b=2.5, T=52, random_state=0)
    >>> s["monetary_value"] = simulate_spend(s.frequency, p=6, q=4, gamma=15,
    ...                                      random_state=1).monetary_value
    >>> bg, gg = BetaGeo().fit(s), GammaGamma().fit(s)
    >>> sims = simulate_values(s.head(3), bg, gg, n_sims=20_000)
    >>> value = customer_value(s.head(3), bg, gg).clv_52w
    >>> bool(np.allclose(sims.mean(axis=1), value, rtol=0.05))
    True
    """
    check_is_fitted(bg)
    check_is_fitted(gg)
    if n_sims < 1:
        raise UsageError(f"n_sims must be at least 1, got {n_sims!r}")
    ends, disc = value_schedule(
        bg, summary, horizon=horizon, unit=unit, annual_discount_rate=annual_discount_rate
    )
    x = summary_column(summary, "frequency", "clv")
    tx = np.where(x > 0, summary_column(summary, "recency", "clv"), 0.0)
    T = summary_column(summary, "T", "clv")
    m = np.where(x > 0, summary_column(summary, "monetary_value", "clv"), 0.0)
    entropy = np.random.SeedSequence(random_state).entropy

    def stream(*key: int) -> np.random.Generator:
        return np.random.default_rng(np.random.SeedSequence(entropy, spawn_key=key))

    out = np.empty((len(x), n_sims))
    for blk, sims in _simulate_at_estimates(
        bg, gg, (x, tx, T, m), n_sims, ends, disc, margin, stream, 4
    ):
        out[blk] = sims
    return pd.DataFrame(out, index=getattr(summary, "index", None))
