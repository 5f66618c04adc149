"""The BG/NBD model (Fader, Hardie & Lee 2005): how often customers buy, and when they stop.

While alive a customer buys at rate λ ~ Gamma(r, α); after each repeat purchase they
drop out with probability p ~ Beta(a, b). :class:`BetaGeo` is fitted by maximum
likelihood on the distinct (x, t_x, T) triples weighted by their counts, with the
analytic gradient in log-parameter space; :func:`simulate_bgnbd` draws summaries from the
process (for tests and benchmarks).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike
from scipy import special
from sklearn.utils.validation import check_is_fitted

from cxkit.clv.base import (
    ModelBase,
    Summary,
    compress,
    minimize_nll,
    standard_errors,
    summary_column,
)
from cxkit.errors import DataError


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


class BetaGeo(ModelBase):
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
        From the observed information: the inverse Hessian of the negative
        log-likelihood at the optimum, in log-parameters (delta method from log space).
    covariance_ : pandas.DataFrame
        The parameters' covariance (delta method).
    covariance_log_ : pandas.DataFrame
        The covariance of the log-parameters, the inverse observed information; the
        CLV intervals draw from it (:func:`~cxkit.clv.clv_intervals`).
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

    def fit(self, summary: Summary, *, weights: ArrayLike | None = None) -> BetaGeo:
        """Fit to an RFM summary (``frequency``, ``recency``, ``T``).

        Parameters
        ----------
        summary
            From :func:`~cxkit.clv.rfm_summary` (or any frame with those columns); its
            ``attrs["time_unit"]`` becomes ``time_unit_``.
        weights
            Optional count per row (e.g. a pre-aggregated summary).

        Returns
        -------
        BetaGeo
            ``self``, fitted.

        Raises
        ------
        DataError
            When columns are missing or invalid, or nobody made a repeat purchase.
        ConvergenceError
            When the optimiser fails or the estimate runs off to a boundary.
        """
        x = summary_column(summary, "frequency", "BetaGeo")
        tx = summary_column(summary, "recency", "BetaGeo")
        T = summary_column(summary, "T", "BetaGeo")
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
        (ux, utx, uT), counts, codes = compress(x, tx, T)
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
        res = minimize_nll(
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
        self.standard_errors_, self.covariance_, self.covariance_log_ = standard_errors(
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
        check_is_fitted(self)
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

    def p_alive(self, summary: Summary) -> np.ndarray:
        """Return the probability that each customer is still alive at the end of the period.

        Customers without a repeat purchase are alive with probability 1 under BG/NBD
        (dropout happens only after a repeat purchase).

        Parameters
        ----------
        summary
            An RFM summary in the model's time unit (``frequency``, ``recency``, ``T``).

        Returns
        -------
        numpy.ndarray
            P(alive) per row of ``summary``.
        """
        check_is_fitted(self)
        x = summary_column(summary, "frequency", "BetaGeo")
        tx = summary_column(summary, "recency", "BetaGeo")
        T = summary_column(summary, "T", "BetaGeo")
        return special.expit(-self._log_odds_dead(x, tx, T))

    def expected_purchases(self, t: ArrayLike, summary: Summary) -> np.ndarray:
        """Return the expected purchases in the next ``t`` time units, per customer.

        FHL (2005) eq. (10), with the hypergeometric term in its Euler-transformed form
        so that large frequencies stay finite.

        Parameters
        ----------
        t
            The horizon in the model's time unit: one number, or one per row.
        summary
            An RFM summary in the model's time unit (``frequency``, ``recency``, ``T``).

        Returns
        -------
        numpy.ndarray
            Expected purchases per row of ``summary``.
        """
        check_is_fitted(self)
        x = summary_column(summary, "frequency", "BetaGeo")
        tx = summary_column(summary, "recency", "BetaGeo")
        T = summary_column(summary, "T", "BetaGeo")
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

    def expected_purchases_new(self, t: ArrayLike) -> np.ndarray:
        """Return E[X(t)], the expected purchases of a new customer in their first ``t``.

        Counts repeat purchases only (the first purchase starts the clock).

        Parameters
        ----------
        t
            Times since the first purchase, in the model's time unit.

        Returns
        -------
        numpy.ndarray
            One expectation per value of ``t``.
        """
        check_is_fitted(self)
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
    T: ArrayLike,
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
