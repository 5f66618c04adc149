"""Intervals and tests shared by every domain.

Every rate, score or estimate a person reads carries an interval or its n; these are
the one implementation of each. All functions are vectorised over numpy arrays or
pandas Series where that makes sense.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import numpy.typing as npt
import pandas as pd
from scipy import stats as _st

__all__ = [
    "MIN_N",
    "bootstrap_ci",
    "format_p_value",
    "holm",
    "is_small",
    "mean_ci",
    "nps_ci",
    "nps_compare",
    "p_text",
    "two_proportion_test",
    "welch_test",
    "wilson_ci",
]

#: Groups with fewer customers or responses than this are flagged and never headlined.
MIN_N = 30

#: A float for scalar inputs, an array for array inputs.
FloatOrArray = float | np.ndarray


def _z(level: float) -> float:
    """Return the two-sided normal quantile of confidence ``level``."""
    if not 0 < level < 1:
        raise ValueError(f"level must be between 0 and 1, got {level!r}")
    return float(_st.norm.ppf(0.5 + level / 2))


def wilson_ci(
    successes: npt.ArrayLike, n: npt.ArrayLike, *, level: float = 0.95
) -> tuple[FloatOrArray, FloatOrArray]:
    """Compute the Wilson score interval for a proportion.

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

    Raises
    ------
    ValueError
        When ``level`` is not strictly between 0 and 1.

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


def nps_ci(
    promoters: npt.ArrayLike, detractors: npt.ArrayLike, n: npt.ArrayLike, *, level: float = 0.95
) -> tuple[FloatOrArray, FloatOrArray, FloatOrArray]:
    """Compute the Net Promoter Score with the adjusted-Wald interval, in points (-100..100).

    The interval adds 3 to n and ¾ to promoters and detractors (Rocks 2016, after
    Agresti-Caffo), which keeps coverage near nominal even for small n.

    Parameters
    ----------
    promoters, detractors, n
        Counts of 9–10 answers, of 0–6 answers and of all answers (scalars or arrays).
        Where ``n == 0`` the results are NaN.
    level
        Confidence level.

    Returns
    -------
    (nps, low, high)
        The point estimate uses the raw counts; the interval the adjusted ones. Floats
        for scalar inputs, arrays for arrays.

    Raises
    ------
    ValueError
        When ``level`` is not strictly between 0 and 1.

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
    """Compare two NPS: the difference (a − b) in points, its interval and a p-value.

    The interval is the adjusted-Wald one of :func:`nps_ci` for a difference; the
    p-value is that of the z-test on the adjusted difference.

    Parameters
    ----------
    promoters_a, detractors_a, n_a
        Group a's counts of 9–10 answers, 0–6 answers and all answers.
    promoters_b, detractors_b, n_b
        The same for group b.
    level
        Confidence level.

    Returns
    -------
    dict of str to float
        ``diff_points`` (from the raw counts), ``ci_low``, ``ci_high`` (points), ``z``
        and ``p_value``; NaN where a group is empty.

    Raises
    ------
    ValueError
        When ``level`` is not strictly between 0 and 1.

    Examples
    --------
    >>> r = nps_compare(50, 20, 100, 30, 30, 100)
    >>> round(r["diff_points"], 1), r["p_value"] < 0.05
    (30.0, True)
    """
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
    k1: npt.ArrayLike,
    n1: npt.ArrayLike,
    k2: npt.ArrayLike,
    n2: npt.ArrayLike,
    *,
    level: float = 0.95,
) -> dict[str, FloatOrArray]:
    """Run the two-proportion z-test (pooled) with a Wald interval for p1 − p2.

    Parameters
    ----------
    k1, n1
        Successes and trials of group 1 (scalars or arrays).
    k2, n2
        The same for group 2.
    level
        Confidence level of the interval.

    Returns
    -------
    dict of str to float or numpy.ndarray
        ``diff``, ``ci_low``, ``ci_high``, ``z`` and ``p_value`` (arrays when the inputs
        are arrays). Where a group is empty the results are NaN.

    Raises
    ------
    ValueError
        When ``level`` is not strictly between 0 and 1.

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


def welch_test(
    mean1: npt.ArrayLike,
    var1: npt.ArrayLike,
    n1: npt.ArrayLike,
    mean2: npt.ArrayLike,
    var2: npt.ArrayLike,
    n2: npt.ArrayLike,
    *,
    level: float = 0.95,
) -> dict[str, FloatOrArray]:
    """Run Welch's t-test for a difference of means (1 − 2) from summary statistics.

    Parameters
    ----------
    mean1, var1, n1
        Group 1's mean, sample variance (``ddof=1``) and size (scalars or arrays).
    mean2, var2, n2
        The same for group 2.
    level
        Confidence level of the interval.

    Returns
    -------
    dict of str to float or numpy.ndarray
        ``diff``, ``ci_low``, ``ci_high`` (the Welch–Satterthwaite t interval), ``se``,
        ``df``, ``t`` and ``p_value``; NaN where a group has fewer than 2 values or both
        variances are 0.

    Raises
    ------
    ValueError
        When ``level`` is not strictly between 0 and 1.

    Examples
    --------
    >>> r = welch_test(10.0, 4.0, 50, 9.0, 9.0, 60)
    >>> round(r["diff"], 2), round(r["ci_low"], 3), round(r["p_value"], 4)
    (1.0, 0.049, 0.0395)
    """
    _z(level)
    m1, v1, k1, m2, v2, k2 = (
        np.asarray(x, dtype=float) for x in (mean1, var1, n1, mean2, var2, n2)
    )
    with np.errstate(divide="ignore", invalid="ignore"):
        a, b = v1 / k1, v2 / k2
        se = np.sqrt(a + b)
        df = (a + b) ** 2 / (a**2 / (k1 - 1) + b**2 / (k2 - 1))
        ok = (k1 >= 2) & (k2 >= 2) & (se > 0)
        se = np.where(ok, se, np.nan)
        df = np.where(ok, df, np.nan)
        diff = m1 - m2
        tstat = diff / se
        q = _st.t.ppf(0.5 + level / 2, df)
        p_value = 2 * _st.t.sf(np.abs(tstat), df)
    out = {
        "diff": diff,
        "ci_low": diff - q * se,
        "ci_high": diff + q * se,
        "se": se,
        "df": df,
        "t": tstat,
        "p_value": p_value,
    }
    if np.ndim(diff) == 0:
        return {k: float(v) for k, v in out.items()}
    return out


def mean_ci(values: npt.ArrayLike, *, level: float = 0.95) -> tuple[float, float, float, int]:
    """Compute the mean with a Student-t interval.

    Parameters
    ----------
    values
        The values; missing ones are left out.
    level
        Confidence level.

    Returns
    -------
    (mean, low, high, n)
        The mean and interval (NaN when n < 2; the mean too when n is 0) and how many
        values were used.

    Examples
    --------
    >>> m, lo, hi, n = mean_ci([1.0, 2.0, 3.0, None])
    >>> m, round(lo, 3), round(hi, 3), n
    (2.0, -0.484, 4.484, 3)
    """
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
    values: npt.ArrayLike,
    statistic: Callable[[np.ndarray], float] = np.mean,
    *,
    n_boot: int = 1000,
    level: float = 0.95,
    random_state: int | np.random.Generator | None = 0,
) -> tuple[float, float, float]:
    """Compute a percentile bootstrap interval of ``statistic`` over rows of ``values``.

    Parameters
    ----------
    values
        The sample; rows are resampled with replacement.
    statistic
        The statistic of a sample.
    n_boot
        Number of bootstrap samples.
    level
        Confidence level.
    random_state
        Seed or generator; the same seed gives the same interval.

    Returns
    -------
    (estimate, low, high)
        ``statistic(values)`` and the interval's bounds (NaN for fewer than 2 rows).

    Examples
    --------
    >>> est, lo, hi = bootstrap_ci([1.0, 2.0, 3.0, 4.0], n_boot=200)
    >>> est, lo <= est <= hi
    (2.5, True)
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


def holm(p_values: npt.ArrayLike) -> np.ndarray:
    """Adjust p-values by Holm–Bonferroni (for many group-vs-rest tests at once).

    Parameters
    ----------
    p_values
        The raw p-values; NaN ones stay NaN and do not count as tests.

    Returns
    -------
    numpy.ndarray
        The adjusted p-values, in the input's order, at most 1.

    Examples
    --------
    >>> holm([0.01, 0.04, 0.03]).round(2).tolist()
    [0.03, 0.06, 0.06]
    """
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


def format_p_value(p: float) -> str:
    """Show a p-value the one way every report does: three decimals, or ``< 0.001``.

    Examples
    --------
    >>> format_p_value(0.0), format_p_value(0.02349), format_p_value(0.00385)
    ('< 0.001', '0.023', '0.004')
    """
    return "< 0.001" if float(p) < 0.0005 else f"{float(p):.3f}"


def p_text(p: float, name: str = "p") -> str:
    """Say a p-value in a sentence: ``p = 0.023`` or ``p < 0.001`` (never ``p = 0``).

    Examples
    --------
    >>> p_text(0.0004), p_text(0.2, name="Holm p")
    ('p < 0.001', 'Holm p = 0.200')
    """
    text = format_p_value(p)
    return f"{name} {text}" if text.startswith("<") else f"{name} = {text}"


def is_small(n: npt.ArrayLike, *, min_n: int = MIN_N) -> np.bool_ | np.ndarray:
    """Flag groups too small to headline (fewer than ``min_n``).

    Parameters
    ----------
    n
        Group sizes (a scalar or an array).
    min_n
        The smallest size that may be headlined.

    Returns
    -------
    numpy.bool_ or numpy.ndarray
        True where ``n < min_n``.

    Examples
    --------
    >>> is_small([10, 30, 100]).tolist()
    [True, False, False]
    """
    return np.asarray(n) < min_n
