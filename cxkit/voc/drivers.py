"""Key drivers of NPS: which touchpoint's CSAT and CES move the NPS answer most.

Each customer's mean CSAT and CES per touchpoint (:func:`driver_table`) are set against
the customer's latest NPS answer, and the explained variance is split among the drivers
by Johnson's relative weights (:func:`relative_weights`; a logistic version for promoter
status, :func:`relative_weights_logistic`), with bootstrap intervals
(:func:`driver_importance`). :func:`key_drivers` does both steps on the data.
:func:`driver_claim` words what the result supports: how much of the outcome the drivers
explain (R², thresholds in :data:`R2_WORDS`) and whether the top driver's lead is clear.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

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
    "R2_WORDS",
    "DriverClaim",
    "driver_claim",
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


#: How much of the outcome the drivers explain, in words, by R² (upper bounds, exclusive):
#: Cohen's (1988) small, medium and large effects are R² = 0.02, 0.13 and 0.26.
R2_WORDS: tuple[tuple[float, str], ...] = (
    (0.02, "almost none"),
    (0.13, "little"),
    (0.26, "a fair part"),
    (float("inf"), "much"),
)

#: From this R² on (Cohen's large effect) a clear lead may be called "matters most".
R2_STRONG = 0.26
#: Below this R² (a negligible effect) no driver is named as weighing most.
R2_NEGLIGIBLE = 0.02


@dataclass(frozen=True)
class DriverClaim:
    """A key-driver result in the words its evidence supports (:func:`driver_claim`).

    Attributes
    ----------
    sentence
        The finding, with R², n, the top driver's share and its interval.
    title
        A chart title (a takeaway) that claims no more than the sentence.
    explained
        How much of the outcome the drivers explain, in words (:data:`R2_WORDS`).
    clear_lead
        Whether the top driver's interval lies wholly above the runner-up's share.
    """

    sentence: str
    title: str
    explained: str
    clear_lead: bool


def driver_claim(kd: pd.DataFrame, *, outcome: str = "the NPS answer") -> DriverClaim:
    """Word a key-driver result by its evidence: R², the top share and its interval.

    The one wording rule for driver claims:

    * the drivers together explain "almost none", "little", "a fair part" or "much" of
      the outcome, by R² (:data:`R2_WORDS`, Cohen's effect sizes);
    * below :data:`R2_NEGLIGIBLE` no driver is named as weighing most;
    * otherwise the top driver "weighs most of what they explain" with its share of the
      explained variance, its 95% interval and its share of the whole variation
      (share × R²); its lead is "clear" when its interval's lower end is above the
      runner-up's share, else the sentence says it is not clearly ahead;
    * only with a clear lead and R² of at least :data:`R2_STRONG` does the title say the
      driver "matters most".

    Parameters
    ----------
    kd
        From :func:`key_drivers` / :func:`driver_importance`: ``driver``,
        ``importance_pct`` with ``importance_low_pct`` / ``importance_high_pct``, most
        important first; ``attrs["r2"]`` and ``attrs["n"]``.
    outcome
        What the drivers explain, in words ("the NPS answer", "being a promoter").

    Returns
    -------
    DriverClaim
        The sentence, the title and the evidence words.

    Examples
    --------
    >>> kd = pd.DataFrame({"driver": ["csat_delivery", "csat_product"],
    ...                    "importance_pct": [60.0, 40.0], "importance_low_pct": [30.0, 10.0],
    ...                    "importance_high_pct": [80.0, 70.0]})
    >>> kd.attrs.update(r2=0.03, n=500)
    >>> driver_claim(kd).title
    'Touchpoint scores explain little of the NPS answer (R² 0.03); of that, csat_delivery weighs most'
    """
    r2, n = float(kd.attrs["r2"]), int(kd.attrs["n"])
    explained = next(word for bound, word in R2_WORDS if r2 < bound)
    scores = (
        f"the touchpoint scores explain {explained} of {outcome} (R² {r2:.2f}, n={n:,} customers)"
    )
    top = kd.iloc[0]
    share = float(top["importance_pct"])
    low, high = float(top["importance_low_pct"]), float(top["importance_high_pct"])
    second = kd.iloc[1] if len(kd) > 1 else None
    clear = second is None or low > float(second["importance_pct"])
    if r2 < R2_NEGLIGIBLE:
        return DriverClaim(
            sentence=f"{scores[0].upper()}{scores[1:]}: no touchpoint can be named as the one "
            "that drives it.",
            title=f"Touchpoint scores explain {explained} of {outcome} (R² {r2:.2f})",
            explained=explained,
            clear_lead=False,
        )
    lead = (
        f"Of what they explain, {top['driver']} weighs most with {share:.0f}% (95% CI "
        f"{low:.0f}-{high:.0f}%; {share * r2:.1f}% of the whole variation)"
    )
    if second is None:
        ahead = ""
    elif clear:
        ahead = f", clearly ahead of {second['driver']} ({second['importance_pct']:.0f}%)"
    else:
        ahead = (
            f", though not clearly ahead of {second['driver']} ({second['importance_pct']:.0f}%)"
        )
    if clear and r2 >= R2_STRONG:
        title = f"{top['driver']} matters most for {outcome} (R² {r2:.2f})"
    else:
        title = (
            f"Touchpoint scores explain {explained} of {outcome} (R² {r2:.2f}); of that, "
            f"{top['driver']} weighs most"
        )
    return DriverClaim(
        sentence=f"{scores[0].upper()}{scores[1:]}. {lead}{ahead}.",
        title=title,
        explained=explained,
        clear_lead=clear,
    )
