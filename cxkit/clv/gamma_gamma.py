"""The Gamma-Gamma model of spend per purchase (Fader & Hardie 2013).

Each purchase of a customer has value ~ Gamma(p, ν); across customers ν ~ Gamma(q, γ).
:class:`GammaGamma` is fitted on the repeat customers' frequency and mean repeat value;
:func:`simulate_spend` draws mean values from the model (for tests).
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike
from scipy import special
from sklearn.utils.validation import check_is_fitted

from cxkit.clv.base import ModelBase, Summary, minimize_nll, standard_errors, summary_column
from cxkit.errors import DataError


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


class GammaGamma(ModelBase):
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
    standard_errors_, covariance_, covariance_log_, log_likelihood_, n_customers_
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

    def fit(self, summary: Summary) -> GammaGamma:
        """Fit to the repeat customers of an RFM summary (``frequency``, ``monetary_value``).

        Customers with ``frequency == 0`` are skipped (they have no repeat value), and so
        are repeat customers whose mean repeat value is 0 (the model needs values > 0);
        a warning says how many.

        Parameters
        ----------
        summary
            From :func:`~cxkit.clv.rfm_summary` (or any frame with those columns).

        Returns
        -------
        GammaGamma
            ``self``, fitted.

        Raises
        ------
        DataError
            When fewer than 2 customers have a repeat purchase with a positive value.
        ConvergenceError
            When the optimiser fails.
        """
        x = summary_column(summary, "frequency", "GammaGamma")
        m = summary_column(summary, "monetary_value", "GammaGamma")
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
        res = minimize_nll(
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
        self.standard_errors_, self.covariance_, self.covariance_log_ = standard_errors(
            params, res.hessian, n, self._names
        )
        self.n_customers_ = int(n)
        self.n_skipped_ = int((~keep).sum())
        self.correlation_ = corr
        self.optimizer_ = res.method
        self.n_iter_ = res.n_iter
        return self

    def mean_spend(self) -> float:
        """Return the population mean spend per purchase, p·γ / (q − 1).

        Returns
        -------
        float
            The mean; infinite when q ≤ 1.
        """
        check_is_fitted(self)
        p, q, g = (float(v) for v in self.params_.to_numpy())
        return p * g / (q - 1) if q > 1 else math.inf

    def conditional_expected_average_spend(self, summary: Summary) -> np.ndarray:
        """Return each customer's expected mean spend per purchase, given their history.

        A weighted average of the population mean and the customer's own mean repeat
        value, weighted by the number of repeat purchases; customers with no repeat
        purchase get the population mean.

        Parameters
        ----------
        summary
            An RFM summary (``frequency``, ``monetary_value``).

        Returns
        -------
        numpy.ndarray
            Expected spend per purchase per row of ``summary``.

        Raises
        ------
        DataError
            When the fitted ``q <= 1`` (the population mean is infinite).
        """
        check_is_fitted(self)
        p, q, g = (float(v) for v in self.params_.to_numpy())
        if q <= 1:
            raise DataError(
                f"the fitted q = {q:.3f} <= 1 means an infinite mean spend",
                column="monetary_value",
                fix="check for extreme order values (cap them) before fitting",
            )
        x = summary_column(summary, "frequency", "GammaGamma")
        m = summary_column(summary, "monetary_value", "GammaGamma")
        m = np.where(x > 0, m, 0.0)
        return p * (g + m * x) / (p * x + q - 1)


def simulate_spend(
    frequency: ArrayLike,
    *,
    p: float,
    q: float,
    gamma: float,
    random_state: int | np.random.Generator | None = None,
) -> pd.DataFrame:
    """Simulate mean repeat values from the Gamma-Gamma model for given frequencies.

    Parameters
    ----------
    frequency
        Repeat purchases per customer.
    p, q, gamma
        True parameters.
    random_state
        Seed or Generator.

    Returns
    -------
    pandas.DataFrame
        ``frequency, monetary_value`` and the true mean spend ``true_mean_spend`` (p / ν).
    """
    rng = np.random.default_rng(random_state)
    x = np.asarray(frequency, dtype="int64")
    nu = rng.gamma(q, 1.0 / gamma, len(x))
    total = rng.gamma(np.maximum(p * x, 1e-12), 1.0 / nu)
    m = np.where(x > 0, total / np.maximum(x, 1), 0.0)
    return pd.DataFrame({"frequency": x, "monetary_value": m, "true_mean_spend": p / nu})
