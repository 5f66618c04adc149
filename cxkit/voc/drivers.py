"""Key drivers of NPS: which touchpoint's CSAT and CES move the NPS answer most.

Each customer's mean CSAT and CES per touchpoint (:func:`driver_table`) are set against
the customer's latest NPS answer, and the explained variance is split among the drivers
by Johnson's relative weights (:func:`relative_weights`; a logistic version for promoter
status, :func:`relative_weights_logistic`), with bootstrap intervals
(:func:`driver_importance`). :func:`key_drivers` does both steps on the data.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import ibis
import numpy as np
import pandas as pd
from ibis import _
from numpy.typing import ArrayLike

from cxkit import stats
from cxkit.data import SCORE_RANGES, CXData, resolve_as_of
from cxkit.errors import NotAvailableError, UsageError
from cxkit.result import AsOf
from cxkit.voc.scores import PROMOTER_MIN, check_survey, scored_responses

__all__ = [
    "driver_importance",
    "driver_table",
    "key_drivers",
    "relative_weights",
    "relative_weights_logistic",
]

_NOT_DRIVERS = ("customer_id", "nps_score", "promoter")


def _sqrt_psd(r: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    evals, evecs = np.linalg.eigh(r)
    evals = np.clip(evals, 1e-12, None)
    lam = (evecs * np.sqrt(evals)) @ evecs.T
    lam_inv = (evecs / np.sqrt(evals)) @ evecs.T
    return lam, lam_inv


def _rw_corr(c: np.ndarray) -> tuple[np.ndarray, float]:
    """Johnson's relative weights from a correlation matrix whose last row/col is y."""
    rxx, rxy = c[:-1, :-1], c[:-1, -1]
    lam, lam_inv = _sqrt_psd(rxx)
    beta = lam_inv @ rxy
    eps = (lam**2) @ (beta**2)
    return eps, float(eps.sum())


def relative_weights(x: ArrayLike, y: ArrayLike) -> tuple[np.ndarray, float]:
    """Compute Johnson's (2000) relative weights of the columns of ``x`` for a linear model of ``y``.

    They approximate the Shapley (LMG) decomposition of R².

    Parameters
    ----------
    x
        The predictors, one column each (n × p).
    y
        The outcome (n).

    Returns
    -------
    tuple of (numpy.ndarray, float)
        The raw weights (each predictor's share of R², summing to R²) and R².

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> x = rng.normal(size=(500, 2))
    >>> w, r2 = relative_weights(x, x @ [2.0, 1.0] + rng.normal(size=500))
    >>> bool(w[0] > w[1]), round(float(w.sum() - r2), 10)
    (True, 0.0)
    """
    a = np.column_stack([np.asarray(x, dtype=float), np.asarray(y, dtype=float)])
    return _rw_corr(np.corrcoef(a, rowvar=False))


def _logit_fit(xd: np.ndarray, y: np.ndarray, *, max_iter: int = 50) -> np.ndarray:
    """Logistic regression by Newton-Raphson (IRLS); ``xd`` includes the intercept."""
    beta = np.zeros(xd.shape[1])
    ridge = 1e-8 * np.eye(xd.shape[1])
    for _i in range(max_iter):
        eta = np.clip(xd @ beta, -30, 30)
        p = 1 / (1 + np.exp(-eta))
        w = p * (1 - p)
        h = xd.T @ (xd * w[:, None]) + ridge
        step = np.linalg.solve(h, xd.T @ (y - p))
        beta = beta + step
        if np.max(np.abs(step)) < 1e-9:
            break
    return beta


def relative_weights_logistic(x: ArrayLike, y: ArrayLike) -> tuple[np.ndarray, float]:
    """Compute relative weights for a logistic model of a 0/1 ``y`` (Tonidandel & LeBreton 2010).

    The predictors are replaced by their closest orthogonal counterparts Z, a logistic
    regression of y on Z is fitted, its coefficients are standardised (Menard's
    b·s_z·R / s_logit with R the correlation of y and the fitted probability), and the
    squared standardised coefficients are mapped back to the original predictors.

    Parameters
    ----------
    x
        The predictors, one column each (n × p).
    y
        The 0/1 outcome (n).

    Returns
    -------
    tuple of (numpy.ndarray, float)
        The weights, summing to R² = corr(y, p̂)², and R².
    """
    xa = np.asarray(x, dtype=float)
    ya = np.asarray(y, dtype=float)
    sd = xa.std(axis=0, ddof=1)
    xs = (xa - xa.mean(axis=0)) / np.where(sd > 0, sd, 1)
    rxx = np.corrcoef(xs, rowvar=False) if xs.shape[1] > 1 else np.ones((1, 1))
    lam, lam_inv = _sqrt_psd(np.atleast_2d(rxx))
    z = xs @ lam_inv
    beta = _logit_fit(np.column_stack([np.ones(len(z)), z]), ya)
    logit = beta[0] + z @ beta[1:]
    p_hat = 1 / (1 + np.exp(-np.clip(logit, -30, 30)))
    r = float(np.corrcoef(ya, p_hat)[0, 1]) if np.std(p_hat) > 0 else 0.0
    s_logit = float(np.std(logit, ddof=1))
    if not np.isfinite(r) or s_logit == 0:
        return np.zeros(xa.shape[1]), 0.0
    b_std = beta[1:] * z.std(axis=0, ddof=1) * r / s_logit
    eps = (lam**2) @ (b_std**2)
    return eps, float(eps.sum())


def driver_table(
    data: CXData,
    *,
    surveys: Sequence[str] = ("csat", "ces"),
    by: str | None = "touchpoint",
    higher_is_easier: bool = True,
    as_of: AsOf = None,
) -> pd.DataFrame:
    """Build per-customer driver scores joined to the customer's latest NPS.

    Per customer the mean score of each survey in ``surveys`` per ``by`` value (e.g.
    ``csat_delivery``, ``ces_support``) is computed in the engine, as is the customer's
    latest NPS answer. Only customers with an NPS answer are returned; driver columns are
    NaN where the customer gave no such answer.

    Parameters
    ----------
    data
        The data, with ``responses`` holding ``survey``, ``score`` and the ``by`` column.
    surveys
        The driver surveys (``"csat"``, ``"ces"``).
    by
        The responses column that splits a survey into drivers (``None``: one driver
        per survey).
    higher_is_easier
        The direction of the CES scale, as in :func:`cxkit.voc.ces`.
    as_of
        Only responses up to this instant are used (:func:`cxkit.data.resolve_as_of`).

    Returns
    -------
    pandas.DataFrame
        ``customer_id``, ``nps_score`` (0–10), ``promoter`` (bool) and one float column
        per driver (on the survey's own scale, CES flipped to higher = easier if needed).

    Raises
    ------
    NotAvailableError
        When the data has no NPS answers or no ``by`` column.
    UsageError
        When ``surveys`` is empty or names an unknown survey.
    """
    d = data.upto(resolve_as_of(data, as_of))
    t_nps = scored_responses(d, "nps", analysis="Key drivers")
    for s in surveys:
        check_survey(s)
    r = d.require("responses", "survey", "score", analysis="Key drivers")
    if by is not None and by not in r.columns:
        raise NotAvailableError(f"table 'responses' with column '{by}'", analysis="Key drivers")
    target = t_nps.group_by("customer_id").aggregate(nps_score=_.score.argmax(_.ts))
    parts = []
    for s in surveys:
        lo, hi = SCORE_RANGES[s]
        t = scored_responses(d, s, analysis="Key drivers")
        score = t.score if (s != "ces" or higher_is_easier) else (lo + hi) - t.score
        t = t.mutate(s=score.cast("float64"), survey=ibis.literal(s))
        key = t[by].cast("string").fill_null("other") if by else ibis.literal("all")
        t = t.mutate(driver_key=key)
        parts.append(t.select("customer_id", "survey", "driver_key", "s"))
    if not parts:
        raise UsageError("surveys must name at least one of 'csat', 'ces'")
    long = parts[0]
    for p in parts[1:]:
        long = long.union(p)
    long = long.semi_join(target, "customer_id")
    agg = long.group_by(["customer_id", "survey", "driver_key"]).aggregate(score=_.s.mean())
    ldf = agg.to_pandas()
    tdf = target.to_pandas()
    tdf["customer_id"] = tdf["customer_id"].astype(str)
    if ldf.empty:
        wide = pd.DataFrame({"customer_id": pd.Series([], dtype=str)})
    else:
        ldf["customer_id"] = ldf["customer_id"].astype(str)
        ldf["driver"] = ldf["survey"].astype(str) + "_" + ldf["driver_key"].astype(str)
        wide = ldf.pivot_table(
            index="customer_id", columns="driver", values="score", aggfunc="mean"
        ).reset_index()
        wide.columns.name = None
    out = tdf.merge(wide, on="customer_id", how="left")
    out["nps_score"] = out["nps_score"].astype(float)
    out["promoter"] = out["nps_score"] >= PROMOTER_MIN
    drivers = sorted(c for c in out.columns if c not in _NOT_DRIVERS)
    out = out[["customer_id", "nps_score", "promoter", *drivers]]
    return out.sort_values("customer_id").reset_index(drop=True)


def _driver_scale(name: str) -> tuple[float, float]:
    prefix = name.split("_", 1)[0]
    return SCORE_RANGES.get(prefix, (np.nan, np.nan))


def driver_importance(
    table: pd.DataFrame,
    *,
    method: str = "linear",
    drivers: Sequence[str] | None = None,
    n_boot: int = 200,
    level: float = 0.95,
    random_state: int | np.random.Generator | None = 0,
    min_n: int = stats.MIN_N,
) -> pd.DataFrame:
    """Rank the drivers of a :func:`driver_table` by relative weights, with bootstrap intervals.

    Parameters
    ----------
    table
        A frame shaped like :func:`driver_table`'s result: ``nps_score`` and one
        column per driver.
    method
        ``"linear"``: Johnson's relative weights for the NPS answer (0–10);
        ``"logistic"``: relative weights of a logistic model of promoter status.
    drivers
        Driver columns to use; default every driver observed for at least ``min_n``
        customers.
    n_boot
        Bootstrap resamples of customers (percentile intervals); seeded by
        ``random_state``.
    level
        The confidence level of the intervals.
    random_state
        The seed of the bootstrap.
    min_n
        The fewest customers a driver (and the whole model) needs.

    Returns
    -------
    pandas.DataFrame
        One row per driver, most important first: ``driver``, ``n_observed``,
        ``performance_0_100`` (mean score rescaled to 0–100), ``weight`` (share of R²)
        with ``weight_low``/``weight_high``, and ``importance_pct`` (weights rescaled to
        sum to 100) with its interval. ``attrs`` holds ``r2``, ``n`` and ``method``.

    Raises
    ------
    UsageError
        For an unknown ``method`` or driver column.
    NotAvailableError
        When fewer than ``min_n`` customers have both an NPS and a driver answer.

    Notes
    -----
    Customers with an NPS answer and at least one driver answer are used; a driver the
    customer did not rate is set to the driver's mean (mean imputation, which shrinks
    weights of sparse drivers towards zero rather than inventing importance).
    """
    if method not in ("linear", "logistic"):
        raise UsageError(f"method must be 'linear' or 'logistic', got {method!r}")
    frame = table
    if drivers is None:
        cand = [c for c in frame.columns if c not in _NOT_DRIVERS]
        drivers = [c for c in cand if frame[c].notna().sum() >= min_n]
    else:
        drivers = list(drivers)
        missing = [c for c in drivers if c not in frame.columns]
        if missing:
            raise UsageError(f"unknown driver column(s) {missing}; have {list(frame.columns)}")
    needs = f"at least {min_n} customers with both an NPS answer and CSAT/CES answers"
    if not drivers:
        raise NotAvailableError(needs, analysis="Key drivers")
    use = frame[frame[drivers].notna().any(axis=1) & frame["nps_score"].notna()]
    if len(use) < min_n:
        raise NotAvailableError(needs, analysis="Key drivers")
    x = use[drivers].astype(float)
    n_obs = x.notna().sum().to_numpy()
    x = x.fillna(x.mean()).to_numpy()
    if method == "linear":
        y = use["nps_score"].to_numpy(dtype=float)
        fn: Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, float]] = relative_weights
    else:
        y = (use["nps_score"].to_numpy(dtype=float) >= PROMOTER_MIN).astype(float)
        if y.min() == y.max():
            raise NotAvailableError("both promoters and non-promoters", analysis="Key drivers")
        fn = relative_weights_logistic
    # Drop constant drivers: they carry no information and break the correlation matrix.
    keep = x.std(axis=0) > 0
    drivers = [dname for dname, k in zip(drivers, keep, strict=True) if k]
    x, n_obs = x[:, keep], n_obs[keep]
    if not drivers:
        raise NotAvailableError(needs, analysis="Key drivers")
    w, r2 = fn(x, y)
    rng = np.random.default_rng(random_state)
    boots = np.full((n_boot, len(drivers)), np.nan)
    n = len(y)
    for b in range(n_boot):
        idx = rng.integers(0, n, n)
        xb, yb = x[idx], y[idx]
        if (xb.std(axis=0) == 0).any() or yb.std() == 0:
            continue
        boots[b] = fn(xb, yb)[0]
    alpha = (1 - level) / 2
    with np.errstate(invalid="ignore", divide="ignore"):
        shares = boots / boots.sum(axis=1, keepdims=True)
    perf = []
    for dname in drivers:
        lo, hi = _driver_scale(dname)
        perf.append(100 * (float(use[dname].mean()) - lo) / (hi - lo))
    out = pd.DataFrame(
        {
            "driver": drivers,
            "n_observed": n_obs.astype("int64"),
            "performance_0_100": perf,
            "weight": w,
            "weight_low": np.nanquantile(boots, alpha, axis=0) if n_boot else np.nan,
            "weight_high": np.nanquantile(boots, 1 - alpha, axis=0) if n_boot else np.nan,
            "importance_pct": 100 * w / w.sum() if w.sum() > 0 else np.nan,
            "importance_low_pct": 100 * np.nanquantile(shares, alpha, axis=0) if n_boot else np.nan,
            "importance_high_pct": 100 * np.nanquantile(shares, 1 - alpha, axis=0)
            if n_boot
            else np.nan,
        }
    )
    out = out.sort_values("weight", ascending=False, kind="stable").reset_index(drop=True)
    out.attrs.update(r2=r2, n=int(n), method=method)
    return out


def key_drivers(
    data: CXData,
    *,
    method: str = "linear",
    drivers: Sequence[str] | None = None,
    n_boot: int = 200,
    level: float = 0.95,
    random_state: int | np.random.Generator | None = 0,
    min_n: int = stats.MIN_N,
    as_of: AsOf = None,
) -> pd.DataFrame:
    """Compute the key drivers of NPS: :func:`driver_importance` of the :func:`driver_table`.

    Parameters
    ----------
    data
        The data, with ``responses`` holding NPS, CSAT and CES answers by touchpoint.
    method, drivers, n_boot, level, random_state, min_n
        As in :func:`driver_importance`.
    as_of
        Only responses up to this instant are used (:func:`cxkit.data.resolve_as_of`).

    Returns
    -------
    pandas.DataFrame
        As :func:`driver_importance`.

    Raises
    ------
    UsageError
        For an unknown ``method`` or driver column.
    NotAvailableError
        When the data cannot support the model.
    """
    end = resolve_as_of(data, as_of)
    return driver_importance(
        driver_table(data, as_of=end),
        method=method,
        drivers=drivers,
        n_boot=n_boot,
        level=level,
        random_state=random_state,
        min_n=min_n,
    )
