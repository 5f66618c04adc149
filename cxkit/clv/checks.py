"""Checks of the CLV models: the holdout test, the published CDNOW figures, plain-word diagnostics.

* :func:`holdout_by_frequency` and :func:`holdout_totals` compare what a model fitted on
  a calibration period expects in the holdout period with what happened (FHL 2005,
  Figure 4); :func:`cumulative_repeat_purchases` tracks repeat purchases week by week.
* :func:`p_alive_distribution` shows how many customers are probably still active.
* :data:`PUBLISHED_CDNOW` and :func:`compare_with_published` check a fit on the CDNOW
  sample against the published estimates (FHL 2005; Fader & Hardie 2013).
* :func:`describe_models` says what the fitted parameters mean, in plain words.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.utils.validation import check_is_fitted

from cxkit.clv.bgnbd import BetaGeo
from cxkit.clv.gamma_gamma import GammaGamma
from cxkit.clv.rfm import SECONDS_PER_DAY, UNIT_DAYS, daily_purchases, day_number, orders_table
from cxkit.data import CXData, resolve_as_of
from cxkit.display import format_money
from cxkit.errors import DataError
from cxkit.result import AsOf
from cxkit.stats import MIN_N, mean_ci

#: The published estimates on the CDNOW sample (2,357 customers, weeks, calibration to
#: 1997-09-30): ``(model, figure, published value, relative tolerance)``. BG/NBD from
#: Fader, Hardie & Lee (2005); Gamma-Gamma (946 repeat customers) from Fader & Hardie
#: (2013).
PUBLISHED_CDNOW: tuple[tuple[str, str, float, float], ...] = (
    ("BG/NBD", "r", 0.2426, 0.005),
    ("BG/NBD", "alpha", 4.4136, 0.005),
    ("BG/NBD", "a", 0.7929, 0.005),
    ("BG/NBD", "b", 2.4259, 0.005),
    ("BG/NBD", "log_likelihood", -9582.43, 1e-5),
    ("Gamma-Gamma", "p", 6.25, 0.005),
    ("Gamma-Gamma", "q", 3.74, 0.005),
    ("Gamma-Gamma", "gamma", 15.44, 0.005),
)


def _require_holdout(summary: pd.DataFrame) -> None:
    if "holdout_frequency" not in summary.columns:
        raise DataError(
            "the summary has no holdout columns",
            column="holdout_frequency",
            fix="compute it with rfm_summary(..., calibration_end=...)",
        )


def holdout_by_frequency(
    summary: pd.DataFrame, bg: BetaGeo, *, max_frequency: int = 7
) -> pd.DataFrame:
    """Return actual vs expected holdout purchases per customer, by calibration frequency.

    The BG/NBD paper's check: customers grouped by their number of repeat purchases in
    calibration (0, 1, …, ``max_frequency``+); per group the mean actual number of
    purchases in the holdout (with a t interval) and the mean the model expects.

    Parameters
    ----------
    summary
        From :func:`~cxkit.clv.rfm_summary` with ``calibration_end``.
    bg
        The model fitted on that summary.
    max_frequency
        The last group holds this many repeat purchases or more.

    Returns
    -------
    pandas.DataFrame
        ``calibration_frequency, customers, actual_mean_purchases, ci_low, ci_high,
        expected_mean_purchases, small_n``.

    Raises
    ------
    DataError
        When the summary has no holdout columns.
    """
    _require_holdout(summary)
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
    """Return total actual vs expected holdout purchases over all customers.

    Parameters
    ----------
    summary
        From :func:`~cxkit.clv.rfm_summary` with ``calibration_end``.
    bg
        The model fitted on that summary.

    Returns
    -------
    dict
        ``customers``, ``actual``, ``expected``, ``relative_error`` ((expected − actual)
        / actual) and ``mae_per_customer``.

    Raises
    ------
    DataError
        When the summary has no holdout columns.
    """
    _require_holdout(summary)
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
    data: CXData,
    bg: BetaGeo,
    *,
    calibration_end: AsOf,
    observation_end: AsOf = None,
    step_days: int = 7,
) -> pd.DataFrame:
    """Return the calibration cohort's repeat purchases over time, actual vs model.

    The cohort is every customer whose first purchase is on or before
    ``calibration_end``; a repeat purchase is a purchase day after their first. Steps end
    on the calibration end's day, so the holdout steps count the purchases that
    :func:`holdout_totals` counts as actual (the last step ends at ``observation_end``
    and may be shorter). The model
    line is Σ over first-purchase days of (customers born that day) × E[X(t − day)].
    Counts come from the engine (per day), so this works on any backend.

    Parameters
    ----------
    data
        The loaded data with an ``orders`` table.
    bg
        A model fitted on the calibration period.
    calibration_end, observation_end
        The ends of the calibration and of the observation, read as ``as_of`` is
        (:func:`cxkit.data.resolve_as_of`); ``observation_end`` defaults to the data's.
    step_days
        The length of a step.

    Returns
    -------
    pandas.DataFrame
        One row per step: ``period_end`` (date), ``actual_repeat_purchases``,
        ``expected_repeat_purchases``, their ``cumulative_*`` sums, and ``holdout`` (bool).

    Raises
    ------
    DataError
        When no customer made a first purchase by ``calibration_end``.
    """
    check_is_fitted(bg)
    table = orders_table(data)
    obs_end = resolve_as_of(data, observation_end)
    cal_end = resolve_as_of(data, calibration_end)
    obs_day, cal_day = day_number(obs_end), day_number(cal_end)
    daily = daily_purchases(table, obs_end)
    first = daily.group_by("customer_id").aggregate(first_day=daily.day.min())
    first = first.filter(first.first_day <= cal_day)
    births = first.group_by("first_day").aggregate(n=first.count()).to_pandas()
    j = daily.join(first, "customer_id")
    rep = j.filter(j.day > j.first_day)
    repeats = rep.group_by("day").aggregate(n=rep.count()).to_pandas()
    if births.empty:
        raise DataError("no customer made a first purchase by calibration_end", table="orders")
    start = int(births["first_day"].min())
    # steps end on the calibration end, so the holdout steps hold exactly the holdout
    # period, the same purchases as holdout_totals counts
    first_edge = cal_day - step_days * ((cal_day - start) // step_days)
    edges = np.arange(first_edge, obs_day + step_days, step_days)
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
            "period_end": pd.to_datetime(edges * SECONDS_PER_DAY, unit="s").normalize(),
            "actual_repeat_purchases": np.diff(cum_actual, prepend=0.0),
            "expected_repeat_purchases": np.diff(cum_expected, prepend=0.0),
            "cumulative_actual": cum_actual,
            "cumulative_expected": cum_expected,
            "holdout": edges > cal_day,
        }
    )
    out.attrs["calibration_end"] = str(cal_end.date())
    return out


def p_alive_distribution(
    summary: pd.DataFrame, bg: BetaGeo, *, bins: int = 10, repeat_only: bool = False
) -> pd.DataFrame:
    """Return how many customers fall in each P(alive) band (equal-width bands on [0, 1]).

    Parameters
    ----------
    summary
        An RFM summary.
    bg
        The model fitted on it.
    bins
        The number of bands.
    repeat_only
        Count only the repeat customers (``frequency > 0``): BG/NBD lets a customer
        leave only after a repeat purchase, so a one-time buyer's P(alive) is 1 by
        construction and says nothing about lapsing.

    Returns
    -------
    pandas.DataFrame
        ``p_alive_from, p_alive_to, customers, share``; ``attrs["population"]`` names
        the customers counted (``"repeat customers"`` or ``"customers"``). The bands
        below 0.5 hold exactly the customers with P(alive) < 50%.
    """
    pa = np.asarray(bg.p_alive(summary), dtype=float)
    if repeat_only:
        pa = pa[np.asarray(summary["frequency"]) > 0]
    edges = np.linspace(0, 1, bins + 1)
    idx = np.clip(np.digitize(pa, edges[1:-1], right=False), 0, bins - 1)
    counts = np.bincount(idx, minlength=bins)
    population = "repeat customers" if repeat_only else "customers"
    return p_alive_bands(counts, n=len(pa), population=population)


def p_alive_bands(counts: np.ndarray, *, n: int, population: str) -> pd.DataFrame:
    """Return the table of :func:`p_alive_distribution` from the customers per band.

    The one construction of that table: memory mode counts the bands in numpy, scale
    mode (:mod:`cxkit.clv.scale`) in the engine.

    Parameters
    ----------
    counts
        Customers per equal-width band of P(alive) on [0, 1], lowest band first.
    n
        The customers counted (the denominator of ``share``).
    population
        Who was counted (``"repeat customers"`` or ``"customers"``), kept in
        ``attrs["population"]``.

    Returns
    -------
    pandas.DataFrame
        ``p_alive_from, p_alive_to, customers, share``.

    Examples
    --------
    >>> p_alive_bands(np.array([1, 3]), n=4, population="customers").share.tolist()
    [0.25, 0.75]
    """
    edges = np.linspace(0, 1, len(counts) + 1)
    out = pd.DataFrame(
        {
            "p_alive_from": edges[:-1],
            "p_alive_to": edges[1:],
            "customers": counts,
            "share": counts / max(n, 1),
        }
    )
    out.attrs["population"] = population
    return out


def compare_with_published(bg: BetaGeo, gg: GammaGamma | None = None) -> pd.DataFrame:
    """Return the fitted figures beside the published CDNOW ones (:data:`PUBLISHED_CDNOW`).

    Parameters
    ----------
    bg
        BG/NBD fitted on the CDNOW sample's calibration summary (weeks, to 1997-09-30).
    gg
        Gamma-Gamma fitted on the same summary, if any.

    Returns
    -------
    pandas.DataFrame
        ``model, figure, published, estimate, relative_error, tolerance, ok``; one row
        per published figure of the models given.
    """
    check_is_fitted(bg)
    estimates = {("BG/NBD", k): float(v) for k, v in bg.params_.items()}
    estimates["BG/NBD", "log_likelihood"] = float(bg.log_likelihood_)
    if gg is not None:
        check_is_fitted(gg)
        estimates.update({("Gamma-Gamma", k): float(v) for k, v in gg.params_.items()})
    rows = []
    for model, figure, published, tolerance in PUBLISHED_CDNOW:
        if (model, figure) not in estimates:
            continue
        estimate = estimates[model, figure]
        error = (estimate - published) / abs(published)
        rows.append(
            {
                "model": model,
                "figure": figure,
                "published": published,
                "estimate": estimate,
                "relative_error": error,
                "tolerance": tolerance,
                "ok": abs(error) <= tolerance,
            }
        )
    return pd.DataFrame(rows)


def describe_models(bg: BetaGeo, gg: GammaGamma | None = None) -> list[str]:
    """Return the fitted parameters in plain words, one sentence each.

    Parameters
    ----------
    bg
        A fitted BG/NBD model.
    gg
        A fitted Gamma-Gamma model, if any (described when its mean spend is finite).

    Returns
    -------
    list of str
        Two sentences on purchase rates and dropout, and one on spend with ``gg``.

    Examples
    --------
    >>> bg = BetaGeo()
    >>> bg.params_ = pd.Series([0.2426, 4.4136, 0.7929, 2.4259], index=["r", "alpha", "a", "b"])
    >>> bg.time_unit_ = "W"
    >>> describe_models(bg)[0][:60]
    'While still active, a typical customer buys 0.055 times a we'
    """
    check_is_fitted(bg)
    r, alpha, a, b = (float(v) for v in bg.params_.to_numpy())
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
        check_is_fitted(gg)
        p, q, g = (float(v) for v in gg.params_.to_numpy())
        if q > 1:
            out.append(
                f"A purchase is worth {format_money(gg.mean_spend())} on average across customers; "
                f"a customer's own history pulls their expected spend away from that mean "
                f"(Gamma-Gamma p = {p:.2f}, q = {q:.2f}, γ = {g:.2f})."
            )
    return out
