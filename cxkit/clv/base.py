"""What the BG/NBD and Gamma-Gamma models share: summary columns, compression, fitting.

Both models are fitted by maximum likelihood in log-parameter space with the analytic
gradient (:func:`minimize_nll`), on the distinct rows of the summary weighted by their
counts (:func:`compress`), with standard errors from the observed information (the Hessian
of the negative log-likelihood at the optimum, :func:`observed_information`, and
:func:`standard_errors`).
:class:`ModelBase` is their scikit-learn base class (``params_table``).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike
from scipy import optimize
from scipy.stats import norm
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted
from threadpoolctl import threadpool_limits

from cxkit.errors import ConvergenceError, DataError

#: What the models read a summary from: a frame from :func:`cxkit.clv.rfm_summary`, or
#: a mapping of its column names to values (one customer or many).
Summary = pd.DataFrame | Mapping[str, ArrayLike]


def summary_column(summary: Summary, name: str, model: str) -> np.ndarray:
    """Return column ``name`` of a summary as a float array, checked finite and >= 0.

    Parameters
    ----------
    summary
        The RFM summary (or a mapping of its columns).
    name
        The column.
    model
        Who asks, for the message.

    Returns
    -------
    numpy.ndarray
        One-dimensional float64 values.

    Raises
    ------
    DataError
        When the column is missing, or has negative or non-finite values.
    """
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


def compress(*cols: np.ndarray) -> tuple[list[np.ndarray], np.ndarray, np.ndarray]:
    """Return the distinct rows of ``cols``, their counts, and each input row's group number.

    Each column is factorised on its own (hashing, no sort) and the codes are combined
    into one integer key, which is factorised once more: no sort, and a little faster than
    a pandas group-by on the float columns (measured at 1M rows).

    Parameters
    ----------
    *cols
        Columns of equal length.

    Returns
    -------
    (uniques, counts, codes)
        One array per column with the distinct rows, the count of each distinct row,
        and for every input row the index of its distinct row.
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


def observed_information(
    grad: Callable[[np.ndarray], np.ndarray], theta: np.ndarray, *, step: float = 1e-4
) -> np.ndarray:
    """Return the Hessian of a mean negative log-likelihood by central differences of its gradient.

    Central differences of the analytic gradient: the error is O(step²) (~1e-8 at the
    default on a log-parameter scale where the parameters are O(1)), against O(step) for
    forward differences, and the rounding error (~1e-16 / step) stays far below it.

    Parameters
    ----------
    grad
        ``theta -> gradient`` of the mean negative log-likelihood.
    theta
        The point (the optimum, in log-parameters).
    step
        The relative step, times ``max(1, |theta_i|)``.

    Returns
    -------
    numpy.ndarray
        The symmetric ``k × k`` Hessian.

    Examples
    --------
    >>> h = observed_information(lambda t: np.array([2 * t[0] + t[1], t[0] + 4 * t[1]]),
    ...                          np.array([0.3, -1.0]))
    >>> np.round(h, 6).tolist()
    [[2.0, 1.0], [1.0, 4.0]]
    """
    k = len(theta)
    hess = np.empty((k, k))
    for i in range(k):
        h = step * max(1.0, abs(theta[i]))
        up, down = theta.copy(), theta.copy()
        up[i] += h
        down[i] -= h
        hess[:, i] = (grad(up) - grad(down)) / (2 * h)
    return (hess + hess.T) / 2


@dataclass
class FitResult:
    """The optimum :func:`minimize_nll` found.

    Attributes
    ----------
    theta
        The log-parameters (on the model's scaled time or spend).
    nll
        The mean negative log-likelihood at ``theta``.
    method
        The optimiser that reached it.
    n_iter
        Its iterations.
    hessian
        The Hessian of the mean negative log-likelihood in log space, at ``theta``
        (:func:`observed_information`).
    """

    theta: np.ndarray
    nll: float
    method: str
    n_iter: int
    hessian: np.ndarray


_LOG_BOUND = 15.0


def minimize_nll(
    fun: Callable[[np.ndarray], tuple[float, np.ndarray]],
    starts: Sequence[np.ndarray],
    *,
    names: Sequence[str],
    model: str,
    max_iter: int,
    tol: float,
) -> FitResult:
    """Minimise a mean negative log-likelihood over log-parameters.

    L-BFGS-B with the analytic gradient from each start; if none converges, Nelder-Mead
    then BFGS. A few Newton steps with a numerical Hessian polish the optimum.

    Parameters
    ----------
    fun
        ``theta -> (mean negative log-likelihood, its gradient)``.
    starts
        Starting points, tried in order until one converges.
    names
        The parameter names, for messages.
    model
        The model's name, for messages.
    max_iter, tol
        Iteration limit and gradient tolerance of L-BFGS-B.

    Returns
    -------
    FitResult
        The optimum.

    Raises
    ------
    ConvergenceError
        When no method converges, or the optimum lies at the edge of the parameter space.
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
        # The covariance comes from the Hessian at the final optimum, by central
        # differences (the forward-difference one above only steers the polish).
        hess = observed_information(grad, theta)
    at_bound = [n for n, v in zip(names, theta, strict=True) if abs(v) > _LOG_BOUND - 0.5]
    if at_bound:
        raise ConvergenceError(
            f"the {model} fit ran off to the edge of the parameter space "
            f"({', '.join(f'{n}={math.exp(v):.3g}' for n, v in zip(names, theta, strict=True))}; "
            f"{', '.join(at_bound)} at the limit): the data cannot identify the model. Try more "
            "customers or a longer calibration period"
        )
    return FitResult(theta, nll, method, n_iter, hess)


def standard_errors(
    params: np.ndarray, hessian_mean: np.ndarray, n: float, names: Sequence[str]
) -> tuple[pd.Series, pd.DataFrame, pd.DataFrame]:
    """Return standard errors and the parameters' covariance, natural and log scale.

    The covariance of the log-parameters is the inverse of the observed information
    (``n`` × the Hessian of the mean negative log-likelihood in log space); the
    parameters' covariance and standard errors follow by the delta method.

    Parameters
    ----------
    params
        The estimates.
    hessian_mean
        The Hessian of the mean negative log-likelihood in log space.
    n
        The (weighted) number of customers the mean is over.
    names
        The parameter names.

    Returns
    -------
    (standard_errors, covariance, log_covariance)
        NaN (with a RuntimeWarning) when the Hessian is not positive definite.
    """
    try:
        cov_log = np.linalg.inv(hessian_mean * n)
        if np.any(np.diag(cov_log) <= 0):
            raise np.linalg.LinAlgError
        np.linalg.cholesky(cov_log)  # positive definite, not only a positive diagonal
    except np.linalg.LinAlgError:
        warnings.warn(
            "the Hessian is not positive definite at the optimum: standard errors are NaN",
            RuntimeWarning,
            stacklevel=3,
        )
        cov_log = np.full_like(hessian_mean, np.nan)
    cov_log = (cov_log + cov_log.T) / 2
    jac = np.diag(params)
    cov = jac @ cov_log @ jac
    se = pd.Series(np.sqrt(np.diag(cov)), index=list(names), name="se")
    labels = list(names)
    return (
        se,
        pd.DataFrame(cov, index=labels, columns=labels),
        pd.DataFrame(cov_log, index=labels, columns=labels),
    )


class ModelBase(BaseEstimator):
    """The scikit-learn base of :class:`~cxkit.clv.BetaGeo` and :class:`~cxkit.clv.GammaGamma`."""

    _names: tuple[str, ...] = ()

    def params_table(self, *, level: float = 0.95) -> pd.DataFrame:
        """Return the parameters with standard errors and intervals (normal on the log scale).

        Parameters
        ----------
        level
            The interval's coverage.

        Returns
        -------
        pandas.DataFrame
            ``parameter, estimate, se, ci_low, ci_high``.
        """
        check_is_fitted(self)
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
