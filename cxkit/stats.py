"""Intervals and tests shared by every domain.

Every rate, score or estimate a person reads carries an interval or its n; these are
the one implementation of each. All functions are vectorised over numpy arrays or
pandas Series where that makes sense.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats as _st

__all__ = [
    "MIN_N",
    "bootstrap_ci",
    "holm",
    "is_small",
    "mean_ci",
    "nps_ci",
    "nps_compare",
    "two_proportion_test",
    "wilson_ci",
]

#: Groups with fewer customers or responses than this are flagged and never headlined.
MIN_N = 30


def _z(level: float) -> float:
    if not 0 < level < 1:
        raise ValueError(f"level must be between 0 and 1, got {level!r}")
    return float(_st.norm.ppf(0.5 + level / 2))


def wilson_ci(successes: Any, n: Any, *, level: float = 0.95) -> tuple[Any, Any]:
    """Wilson score interval for a proportion.

    Parameters
    ----------
    successes, n
        Counts (scalars or arrays). Where ``n == 0`` the interval is NaN.
    level
        Confidence level.

    Returns
    -------
    (low, high)
        Arrays (or floats) within [0, 1].

    Examples
    --------
    >>> lo, hi = wilson_ci(5, 10)
    >>> round(float(lo), 4), round(float(hi), 4)
    (0.2366, 0.7634)
    """
    k = np.asarray(successes, dtype=float)
    n_ = np.asarray(n, dtype=float)
    z = _z(level)
    with np.errstate(divide="ignore", invalid="ignore"):
        p = k / n_
        denom = 1 + z**2 / n_
        centre = (p + z**2 / (2 * n_)) / denom
        half = z * np.sqrt(p * (1 - p) / n_ + z**2 / (4 * n_**2)) / denom
        low = np.where(n_ > 0, np.clip(centre - half, 0, 1), np.nan)
        high = np.where(n_ > 0, np.clip(centre + half, 0, 1), np.nan)
    if low.ndim == 0:
        return float(low), float(high)
    return low, high


def nps_ci(promoters: Any, detractors: Any, n: Any, *, level: float = 0.95) -> tuple[Any, Any, Any]:
    """Net Promoter Score with the adjusted-Wald interval, in points (-100..100).

    The interval adds 3 to n and ¾ to promoters and detractors (Rocks 2016, after
    Agresti-Caffo), which keeps coverage near nominal even for small n.

    Returns
    -------
    (nps, low, high)
        The point estimate uses the raw counts; the interval the adjusted ones.

    Examples
    --------
    >>> nps, lo, hi = nps_ci(50, 20, 100)
    >>> round(float(nps), 1), round(float(lo), 1), round(float(hi), 1)
    (30.0, 14.1, 44.2)
    """
    p = np.asarray(promoters, dtype=float)
    d = np.asarray(detractors, dtype=float)
    n_ = np.asarray(n, dtype=float)
    z = _z(level)
    with np.errstate(divide="ignore", invalid="ignore"):
        point = np.where(n_ > 0, (p - d) / n_, np.nan)
        na = n_ + 3
        pa = (p + 0.75) / na
        da = (d + 0.75) / na
        centre = pa - da
        var = (pa + da - (pa - da) ** 2) / na
        half = z * np.sqrt(var)
        low = np.where(n_ > 0, np.clip(centre - half, -1, 1), np.nan)
        high = np.where(n_ > 0, np.clip(centre + half, -1, 1), np.nan)
    out = (100 * point, 100 * low, 100 * high)
    if np.ndim(out[0]) == 0:
        return tuple(float(x) for x in out)  # type: ignore[return-value]
    return out


def nps_compare(
    promoters_a: int,
    detractors_a: int,
    n_a: int,
    promoters_b: int,
    detractors_b: int,
    n_b: int,
    *,
    level: float = 0.95,
) -> dict[str, float]:
    """Difference of two NPS (a − b) in points, adjusted-Wald interval and z-test p-value."""
    z = _z(level)

    def adj(p: float, d: float, n: float) -> tuple[float, float]:
        na = n + 3
        pa, da = (p + 0.75) / na, (d + 0.75) / na
        return pa - da, (pa + da - (pa - da) ** 2) / na

    ca, va = adj(promoters_a, detractors_a, n_a)
    cb, vb = adj(promoters_b, detractors_b, n_b)
    diff_adj = ca - cb
    se = float(np.sqrt(va + vb))
    raw_a = (promoters_a - detractors_a) / n_a if n_a else np.nan
    raw_b = (promoters_b - detractors_b) / n_b if n_b else np.nan
    zstat = diff_adj / se if se > 0 else np.nan
    p_value = float(2 * _st.norm.sf(abs(zstat))) if np.isfinite(zstat) else np.nan
    return {
        "diff_points": 100 * (raw_a - raw_b),
        "ci_low": 100 * (diff_adj - z * se),
        "ci_high": 100 * (diff_adj + z * se),
        "z": float(zstat),
        "p_value": p_value,
    }


def two_proportion_test(
    k1: Any, n1: Any, k2: Any, n2: Any, *, level: float = 0.95
) -> dict[str, Any]:
    """Two-proportion z-test (pooled) with a Wald interval for the difference p1 − p2.

    Returns a dict of ``diff``, ``ci_low``, ``ci_high``, ``z`` and ``p_value`` (arrays
    when the inputs are arrays). Where a group is empty the results are NaN.

    Examples
    --------
    >>> r = two_proportion_test(60, 100, 40, 100)
    >>> round(r["diff"], 2), round(r["p_value"], 4)
    (0.2, 0.0047)
    """
    k1, n1, k2, n2 = (np.asarray(x, dtype=float) for x in (k1, n1, k2, n2))
    z = _z(level)
    with np.errstate(divide="ignore", invalid="ignore"):
        p1, p2 = k1 / n1, k2 / n2
        pooled = (k1 + k2) / (n1 + n2)
        se0 = np.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
        zstat = np.where(se0 > 0, (p1 - p2) / se0, np.nan)
        p_value = np.where(np.isfinite(zstat), 2 * _st.norm.sf(np.abs(zstat)), np.nan)
        se = np.sqrt(p1 * (1 - p1) / n1 + p2 * (1 - p2) / n2)
        diff = p1 - p2
    out = {
        "diff": diff,
        "ci_low": diff - z * se,
        "ci_high": diff + z * se,
        "z": zstat,
        "p_value": p_value,
    }
    if np.ndim(diff) == 0:
        return {k: float(v) for k, v in out.items()}
    return out


def mean_ci(values: Any, *, level: float = 0.95) -> tuple[float, float, float, int]:
    """Mean with a Student-t interval. Returns ``(mean, low, high, n)``; NaN when n < 2."""
    x = np.asarray(pd.Series(values).dropna(), dtype=float)
    n = int(x.size)
    if n == 0:
        return np.nan, np.nan, np.nan, 0
    m = float(x.mean())
    if n < 2:
        return m, np.nan, np.nan, n
    se = float(x.std(ddof=1) / np.sqrt(n))
    t = float(_st.t.ppf(0.5 + level / 2, n - 1))
    return m, m - t * se, m + t * se, n


def bootstrap_ci(
    values: Any,
    statistic: Callable[[np.ndarray], float] = np.mean,
    *,
    n_boot: int = 1000,
    level: float = 0.95,
    random_state: int | np.random.Generator | None = 0,
) -> tuple[float, float, float]:
    """Percentile bootstrap interval of ``statistic`` over rows of ``values``.

    Returns ``(estimate, low, high)``. Deterministic for a given ``random_state``.
    """
    x = np.asarray(values)
    rng = np.random.default_rng(random_state)
    est = float(statistic(x))
    if len(x) < 2:
        return est, np.nan, np.nan
    idx = rng.integers(0, len(x), size=(n_boot, len(x)))
    boots = np.array([statistic(x[i]) for i in idx], dtype=float)
    alpha = (1 - level) / 2
    return est, float(np.nanquantile(boots, alpha)), float(np.nanquantile(boots, 1 - alpha))


def holm(p_values: Any) -> np.ndarray:
    """Holm–Bonferroni adjusted p-values (for many group-vs-rest tests at once)."""
    p = np.asarray(p_values, dtype=float)
    out = np.full_like(p, np.nan)
    ok = np.isfinite(p)
    if not ok.any():
        return out
    pv = p[ok]
    m = pv.size
    order = np.argsort(pv)
    adj = np.empty(m)
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, (m - rank) * pv[i])
        adj[i] = min(1.0, running)
    out[ok] = adj
    return out


def is_small(n: Any, *, min_n: int = MIN_N) -> Any:
    """True where a group is too small to headline (fewer than ``min_n``)."""
    return np.asarray(n) < min_n
