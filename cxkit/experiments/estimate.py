"""The statistics of an experiment readout: effects with intervals, CUPED, SRM, sequential.

* :func:`compare_arms` — the effect of treatment against control on one metric: the
  difference of proportions (conversion, churn; Wald interval, pooled z-test), of means
  (spend; Welch) or of NPS (from the per-respondent +1/0/−1 scores; Welch), with the
  CUPED-adjusted estimate and an always-valid interval beside it;
* :func:`cuped` — CUPED variance reduction with pre-assignment covariates (Deng, Xu,
  Kohavi & Walker 2013);
* :func:`confidence_sequence` — the normal-mixture confidence sequence (Howard, Ramdas,
  McAuliffe & Sekhon 2021), valid however often the readout is looked at;
* :func:`srm_test` — the sample-ratio-mismatch check (chi-square against the planned
  split).

Everything works on numpy arrays of per-customer values, or (:func:`compare_stats`) on
each arm's sufficient statistics (:class:`ArmStats`), which scale mode sums in the
engine; :func:`confidence_sequence` is vectorised, so simulations can check it at many
looks at once.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
from scipy import stats as _st

from cxkit.stats import two_proportion_test, welch_test

__all__ = [
    "KINDS",
    "SRM_ALPHA",
    "ArmStats",
    "compare_arms",
    "compare_stats",
    "confidence_sequence",
    "cuped",
    "srm_test",
]

#: How :func:`compare_arms` compares the arms: a 0/1 outcome, a mean, or NPS scores.
KINDS = ("proportion", "mean", "nps")
#: A split is a sample ratio mismatch when the chi-square p-value is below this. SRM
#: checks use a strict threshold: they run on every experiment, and a false alarm stops
#: a readout.
SRM_ALPHA = 0.001


def srm_test(
    counts: Mapping[str, int],
    planned: Mapping[str, float] | None = None,
    *,
    alpha: float = SRM_ALPHA,
) -> dict[str, object]:
    """Check the split of customers between variants against the planned split.

    Parameters
    ----------
    counts
        Customers per variant.
    planned
        Planned share per variant (normalised to sum to 1); ``None`` plans equal shares.
    alpha
        The mismatch threshold on the chi-square p-value.

    Returns
    -------
    dict
        ``n`` (all customers), ``chi2``, ``df``, ``p_value``, ``expected`` (customers
        per variant under the plan), ``planned`` (the shares), ``mismatch`` (True when
        ``p_value < alpha``).

    Raises
    ------
    ValueError
        When ``planned`` misses a variant of ``counts`` or gives one a share of 0 or
        less.

    Examples
    --------
    >>> r = srm_test({"control": 5000, "treatment": 5200})
    >>> round(r["p_value"], 4), r["mismatch"]
    (0.0477, False)
    >>> srm_test({"control": 5000, "treatment": 5400})["mismatch"]
    True
    """
    names = list(counts)
    if planned is None:
        planned = {k: 1.0 for k in names}
    missing = [k for k in names if k not in planned]
    if missing:
        raise ValueError(
            f"planned split has no share for variant(s) {missing}; it gives {dict(planned)}"
        )
    shares = np.array([float(planned[k]) for k in names])
    if (shares <= 0).any():
        raise ValueError(f"planned shares must be positive, got {dict(planned)}")
    shares = shares / shares.sum()
    observed = np.array([int(counts[k]) for k in names], dtype=float)
    n = float(observed.sum())
    expected = n * shares
    if len(names) < 2 or n == 0:
        chi2, p = np.nan, np.nan
    else:
        chi2 = float(((observed - expected) ** 2 / expected).sum())
        p = float(_st.chi2.sf(chi2, len(names) - 1))
    return {
        "n": int(n),
        "chi2": chi2,
        "df": len(names) - 1,
        "p_value": p,
        "expected": dict(zip(names, expected.tolist(), strict=True)),
        "planned": dict(zip(names, shares.tolist(), strict=True)),
        "mismatch": bool(np.isfinite(p) and p < alpha),
    }


@dataclass(frozen=True)
class ArmStats:
    """One arm's sufficient statistics for :func:`compare_stats`.

    Everything a readout needs about an arm: its size, the mean of the outcome ``y``,
    the means of the covariates ``x`` and the within-arm centred sums of squares and
    cross-products. They come from the per-customer arrays (:meth:`from_arrays`, memory
    mode) or from sums an engine computes (:meth:`from_sums`, scale mode), so both
    modes share one set of formulas.

    Parameters
    ----------
    n
        Customers in the arm.
    mean
        Mean of ``y``.
    syy
        ``Σ (y − ȳ)²``.
    x_mean
        Means of the covariates (length p; p = 0 without covariates).
    sxx
        ``Σ (x − x̄)(x − x̄)ᵀ`` (p × p).
    sxy
        ``Σ (x − x̄)(y − ȳ)`` (length p).
    """

    n: int
    mean: float
    syy: float
    x_mean: np.ndarray = field(default_factory=lambda: np.zeros(0))
    sxx: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))
    sxy: np.ndarray = field(default_factory=lambda: np.zeros(0))

    @property
    def var(self) -> float:
        """The sample variance of ``y`` (``ddof=1``); NaN below 2 customers."""
        return self.syy / (self.n - 1) if self.n > 1 else float("nan")

    @classmethod
    def from_arrays(cls, y: npt.ArrayLike, x: npt.ArrayLike | None = None) -> ArmStats:
        """Compute the statistics of per-customer ``y`` (and covariate rows ``x``)."""
        yv = np.asarray(y, dtype=float)
        n = len(yv)
        mean = float(yv.mean()) if n else float("nan")
        yc = yv - mean if n else yv
        if x is None:
            return cls(n, mean, float((yc**2).sum()))
        xv = _rows(x, n)
        x_mean = xv.mean(axis=0) if n else np.full(xv.shape[1], np.nan)
        xc = xv - x_mean if n else xv
        return cls(n, mean, float((yc**2).sum()), x_mean, xc.T @ xc, xc.T @ yc)

    @classmethod
    def from_sums(
        cls,
        n: float,
        sy: float,
        syy: float,
        sx: npt.ArrayLike | None = None,
        sxx: npt.ArrayLike | None = None,
        sxy: npt.ArrayLike | None = None,
    ) -> ArmStats:
        """Build the statistics from raw sums: ``n, Σy, Σy², Σx, Σxxᵀ, Σxy``."""
        n = int(n)
        if n == 0:
            p = 0 if sx is None else len(np.atleast_1d(sx))
            return cls(0, float("nan"), 0.0, np.full(p, np.nan), np.zeros((p, p)), np.zeros(p))
        mean = float(sy) / n
        centred_yy = max(float(syy) - n * mean**2, 0.0)
        if sx is None:
            return cls(n, mean, centred_yy)
        sxv = np.asarray(sx, dtype=float)
        x_mean = sxv / n
        cxx = np.asarray(sxx, dtype=float) - n * np.outer(x_mean, x_mean)
        cxy = np.asarray(sxy, dtype=float) - n * x_mean * mean
        return cls(n, mean, centred_yy, x_mean, cxx, cxy)


def _rows(x: npt.ArrayLike, n: int) -> np.ndarray:
    """Covariates as an ``n`` × p array (one column when ``x`` is 1-D, also when empty)."""
    xv = np.asarray(x, dtype=float)
    return xv if xv.ndim == 2 else xv.reshape(n, -1) if n else xv.reshape(0, 1)


def _cuped_theta(sxx: np.ndarray, sxy: np.ndarray, n: int, *, tol: float = 0.0) -> np.ndarray:
    """Regression coefficients of ``y`` on ``x`` from pooled within-arm sums (CUPED's θ).

    Covariates without variation within the arms (centred sum of squares at most
    ``tol``) get θ = 0; with too few customers for the covariates, every θ is 0.
    """
    p = sxx.shape[0]
    theta = np.zeros(p)
    keep = np.diag(sxx) > tol
    if keep.any() and n > keep.sum() + 2:
        a, b = sxx[np.ix_(keep, keep)], sxy[keep]
        theta[keep] = np.linalg.lstsq(a, b, rcond=None)[0]
    return theta


def cuped(
    y: npt.ArrayLike, x: npt.ArrayLike, treated: npt.ArrayLike
) -> tuple[np.ndarray, np.ndarray, float]:
    """Adjust outcomes by their pre-assignment covariates (CUPED).

    ``y_adj = y − (x − mean(x)) θ``, with θ the regression of ``y`` on ``x`` within the
    arms (each arm centred on its own means, so the treatment effect does not leak into
    θ). Since assignment is random, ``x`` does not depend on the arm and the difference
    of the arms' mean ``y_adj`` estimates the same effect as that of ``y``, with a
    variance smaller by the share of ``y``'s variance that ``x`` explains (Deng, Xu,
    Kohavi & Walker 2013, "Improving the sensitivity of online controlled experiments by
    utilizing pre-experiment data", WSDM).

    Parameters
    ----------
    y
        Per-customer outcomes.
    x
        Per-customer covariates measured before assignment: one column or several
        (rows = customers). No missing values.
    treated
        True for the treatment arm.

    Returns
    -------
    (y_adj, theta, variance_reduction)
        The adjusted outcomes, the coefficients and ``1 − var(y_adj) / var(y)`` (pooled
        within the arms; 0 when ``x`` explains nothing).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> x = rng.normal(size=2000); t = rng.random(2000) < 0.5
    >>> y = x + rng.normal(size=2000) + 0.1 * t
    >>> adj, theta, vr = cuped(y, x, t)
    >>> round(float(theta[0]), 1), round(vr, 1)
    (1.1, 0.5)
    """
    yv = np.asarray(y, dtype=float)
    xv = _rows(x, len(yv))
    t = np.asarray(treated, dtype=bool)
    arms = [ArmStats.from_arrays(yv[a], xv[a]) for a in (t, ~t) if a.any()]
    theta, reduction = _pooled_cuped(arms)
    adjusted = yv - (xv - xv.mean(axis=0)) @ theta
    return adjusted, theta, reduction


def _pooled_cuped(arms: list[ArmStats], *, tol: float = 0.0) -> tuple[np.ndarray, float]:
    """θ and the variance reduction ``1 − var(y_adj) / var(y)`` pooled within ``arms``."""
    sxx = sum(a.sxx for a in arms)
    sxy = sum(a.sxy for a in arms)
    n = sum(a.n for a in arms)
    theta = _cuped_theta(sxx, sxy, n, tol=tol)
    before = float(sum(a.syy for a in arms))
    after = before - 2 * float(theta @ sxy) + float(theta @ sxx @ theta)
    reduction = 1.0 - after / before if before > 0 else 0.0
    return theta, reduction


def confidence_sequence(
    estimate: npt.ArrayLike,
    se: npt.ArrayLike,
    n: npt.ArrayLike,
    *,
    n_opt: npt.ArrayLike,
    level: float = 0.95,
) -> tuple[np.ndarray | float, np.ndarray | float]:
    """Return the always-valid (sequential) interval of an estimate: a confidence sequence.

    Unlike a fixed-sample interval, which holds at one pre-planned look only, the
    sequence covers the true value at every look at once with probability ``level``,
    so a readout may be watched daily and stopped whenever it looks conclusive. This is
    the two-sided normal-mixture boundary of Howard, Ramdas, McAuliffe & Sekhon (2021,
    "Time-uniform, nonparametric, nonasymptotic confidence sequences", Annals of
    Statistics 49(2), eq. (14)), in the asymptotic form of Waudby-Smith, Arbour,
    Sinha, Kennedy & Ramdas (2024, "Time-uniform central limit theory and asymptotic
    confidence sequences", Annals of Statistics): with ``σ = se·√n`` the per-customer
    standard deviation,

    ``estimate ± σ · √( (n ρ² + 1) / (n² ρ²) · log((n ρ² + 1) / α²) )``

    where ρ² = (−2 log α + log(1 − 2 log α)) / n_opt makes the interval narrowest near
    ``n_opt`` customers. At ``n_opt`` it is about 1.55 times as wide as the fixed 95%
    interval: the price of looking as often as one likes.

    Parameters
    ----------
    estimate, se
        The estimate (e.g. a difference of means) and its standard error at this look.
    n
        Customers at this look (both arms).
    n_opt
        The sample size where the interval is tuned to be tightest (the planned
        final size); fix it before the experiment, not from the data.
    level
        The coverage over all looks together.

    Returns
    -------
    (low, high)
        Floats for scalar inputs, arrays for arrays.

    Raises
    ------
    ValueError
        When ``level`` is not strictly between 0 and 1.

    Examples
    --------
    >>> lo, hi = confidence_sequence(0.05, 0.01, 10_000, n_opt=10_000)
    >>> round(float(lo), 4), round(float(hi), 4)
    (0.0196, 0.0804)
    """
    if not 0 < level < 1:
        raise ValueError(f"level must be between 0 and 1, got {level!r}")
    alpha = 1.0 - level
    est, s, k, k_opt = (np.asarray(v, dtype=float) for v in (estimate, se, n, n_opt))
    rho2 = (-2 * np.log(alpha) + np.log(1 - 2 * np.log(alpha))) / k_opt
    with np.errstate(divide="ignore", invalid="ignore"):
        sigma = s * np.sqrt(k)
        half = sigma * np.sqrt((k * rho2 + 1) / (k**2 * rho2) * np.log((k * rho2 + 1) / alpha**2))
    low, high = est - half, est + half
    if np.ndim(low) == 0:
        return float(low), float(high)
    return low, high


def compare_arms(
    y: npt.ArrayLike,
    treated: npt.ArrayLike,
    *,
    kind: str,
    x: npt.ArrayLike | None = None,
    level: float = 0.95,
    n_opt: float | None = None,
) -> dict[str, float]:
    """Estimate the effect of treatment against control on one metric.

    Parameters
    ----------
    y
        Per-customer outcomes without missing values: 0/1 for ``"proportion"``, any
        number for ``"mean"``, +1/0/−1 per respondent for ``"nps"``.
    treated
        True for the treatment arm, False for control.
    kind
        ``"proportion"`` (difference of proportions, Wald interval, pooled z-test),
        ``"mean"`` (difference of means, Welch) or ``"nps"`` (difference of NPS, Welch
        on the per-respondent scores; reported in points, ×100).
    x
        Pre-assignment covariates for CUPED (:func:`cuped`); ``None`` skips it.
    level
        Confidence level of every interval.
    n_opt
        The size the sequential interval is tuned for (:func:`confidence_sequence`);
        ``None``: this comparison's own size.

    Returns
    -------
    dict of str to float
        ``n_control, n_treatment, control, treatment, diff, ci_low, ci_high, se,
        p_value`` (treatment − control); ``cuped_diff, cuped_low, cuped_high, cuped_se,
        cuped_p, variance_reduction`` (NaN without ``x``); ``seq_low, seq_high`` (the
        always-valid interval of ``diff``). NPS values are in points.

    Raises
    ------
    ValueError
        When ``kind`` is not one of :data:`KINDS`.

    Examples
    --------
    >>> y = np.array([1, 1, 0, 0] * 100); t = np.arange(400) % 2 == 0
    >>> r = compare_arms(y, t, kind="proportion")
    >>> round(r["treatment"], 2), round(r["control"], 2), round(r["diff"], 2)
    (0.5, 0.5, 0.0)
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {', '.join(map(repr, KINDS))}, got {kind!r}")
    yv = np.asarray(y, dtype=float)
    t = np.asarray(treated, dtype=bool)
    xv = None if x is None else _rows(x, len(yv))
    control = ArmStats.from_arrays(yv[~t], None if xv is None else xv[~t])
    treatment = ArmStats.from_arrays(yv[t], None if xv is None else xv[t])
    return compare_stats(control, treatment, kind=kind, level=level, n_opt=n_opt)


def _welch_stats(
    a: ArmStats, b: ArmStats, level: float, shift: tuple[float, float] = (0.0, 0.0)
) -> dict[str, float]:
    """Welch's test of ``a`` − ``b`` (``shift`` is subtracted from each arm's mean)."""
    return welch_test(
        a.mean - shift[0] if a.n else np.nan,
        a.var,
        a.n,
        b.mean - shift[1] if b.n else np.nan,
        b.var,
        b.n,
        level=level,
    )


def compare_stats(
    control: ArmStats,
    treatment: ArmStats,
    *,
    kind: str,
    level: float = 0.95,
    n_opt: float | None = None,
    tol: float = 0.0,
) -> dict[str, float]:
    """Estimate the effect of treatment against control from the arms' statistics.

    The formulas of :func:`compare_arms` (which calls this), for arms summarised by
    :class:`ArmStats`: the scale mode of the readout computes the sums in the engine.

    Parameters
    ----------
    control, treatment
        The arms; CUPED runs when both carry covariates and have at least 2 customers.
    kind, level, n_opt
        As for :func:`compare_arms`.
    tol
        Covariates whose pooled within-arm centred sum of squares is at most this get no
        weight in CUPED (0 for exact arrays; a small positive value for sums, whose
        cancellation leaves rounding noise on a constant covariate).

    Returns
    -------
    dict of str to float
        As :func:`compare_arms`.

    Raises
    ------
    ValueError
        When ``kind`` is not one of :data:`KINDS`.
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {', '.join(map(repr, KINDS))}, got {kind!r}")
    scale = 100.0 if kind == "nps" else 1.0
    n_t, n_c = treatment.n, control.n
    out: dict[str, float] = {
        "n_control": n_c,
        "n_treatment": n_t,
        "control": scale * control.mean if n_c else np.nan,
        "treatment": scale * treatment.mean if n_t else np.nan,
    }
    if kind == "proportion":
        k_t = treatment.mean * n_t if n_t else 0.0
        k_c = control.mean * n_c if n_c else 0.0
        r = two_proportion_test(k_t, n_t, k_c, n_c, level=level)
        p1, p2 = out["treatment"], out["control"]
        with np.errstate(divide="ignore", invalid="ignore"):
            se = float(np.sqrt(p1 * (1 - p1) / n_t + p2 * (1 - p2) / n_c))
        raw = {k: r[k] for k in ("diff", "ci_low", "ci_high", "p_value")} | {"se": se}
    else:
        r = _welch_stats(treatment, control, level)
        raw = {k: r[k] for k in ("diff", "ci_low", "ci_high", "se", "p_value")}
    for k in ("diff", "ci_low", "ci_high", "se"):
        out[k] = scale * float(raw[k])
    out["p_value"] = float(raw["p_value"])
    nan = float("nan")
    out.update({k: nan for k in ("cuped_diff", "cuped_low", "cuped_high", "cuped_se", "cuped_p")})
    out["variance_reduction"] = nan
    has_x = treatment.x_mean.size > 0 and control.x_mean.size > 0
    if has_x and n_t >= 2 and n_c >= 2:
        theta, reduction = _pooled_cuped([treatment, control], tol=tol)
        x_all = (n_t * treatment.x_mean + n_c * control.x_mean) / (n_t + n_c)
        shift = (
            float((treatment.x_mean - x_all) @ theta),
            float((control.x_mean - x_all) @ theta),
        )
        adj = [
            ArmStats(a.n, a.mean, a.syy - 2 * float(theta @ a.sxy) + float(theta @ a.sxx @ theta))
            for a in (treatment, control)
        ]
        r = _welch_stats(adj[0], adj[1], level, shift)
        for k in ("diff", "low", "high", "se"):
            src = {"low": "ci_low", "high": "ci_high"}.get(k, k)
            out[f"cuped_{k}"] = scale * float(r[src])
        out["cuped_p"] = float(r["p_value"])
        out["variance_reduction"] = reduction
    n = n_t + n_c
    out["seq_low"], out["seq_high"] = confidence_sequence(
        out["diff"], out["se"], n, n_opt=n if n_opt is None else n_opt, level=level
    )
    return out
