"""What customers are worth: discounted CLV per customer, and how value is spread.

:func:`customer_value` combines a fitted :class:`~cxkit.clv.BetaGeo` (expected purchases)
and :class:`~cxkit.clv.GammaGamma` (expected spend per purchase) into discounted value
over a stated horizon; :func:`top_share`, :func:`clv_by` and :func:`lapsing_high_value`
describe its concentration, its breakdown by group and the valuable customers who have
probably lapsed.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike
from sklearn.utils.validation import check_is_fitted

from cxkit.clv.base import Summary, compress, summary_column
from cxkit.clv.bgnbd import BetaGeo
from cxkit.clv.gamma_gamma import GammaGamma
from cxkit.clv.rfm import UNIT_DAYS, check_unit
from cxkit.errors import DataError, UsageError
from cxkit.stats import MIN_N, mean_ci

_UNIT_SUFFIX = {"D": "d", "W": "w", "M": "m"}


def horizon_label(horizon: float, unit: str) -> str:
    """Return the label of a horizon in its unit: ``52, "W"`` -> ``"52w"``."""
    return f"{horizon:g}{_UNIT_SUFFIX[unit]}"


def value_schedule(
    bg: BetaGeo,
    summary: Summary | None = None,
    *,
    horizon: float = 52,
    unit: str = "W",
    annual_discount_rate: float = 0.10,
) -> tuple[np.ndarray, np.ndarray]:
    """Return the steps over which CLV adds up expected purchases, and their discounts.

    Weekly steps (or one step for a horizon under a week), the last one ending at the
    horizon; each step's purchases are discounted at its end by
    ``(1 + annual_discount_rate) ** -(days / 365.25)``. :func:`customer_value` and
    :func:`~cxkit.clv.clv_intervals` both use it.

    Parameters
    ----------
    bg
        The fitted BG/NBD model (its ``time_unit_``; else the summary's, else weeks).
    summary
        The RFM summary, for its ``attrs["time_unit"]``.
    horizon, unit, annual_discount_rate
        As in :func:`customer_value`.

    Returns
    -------
    (ends, discounts)
        Each step's end in the model's time unit, and its discount factor.

    Raises
    ------
    UsageError
        For a bad unit, a horizon that is not positive, or a discount rate that is not a
        yearly rate.

    Examples
    --------
    >>> from cxkit.clv.bgnbd import BetaGeo
    >>> bg = BetaGeo()
    >>> bg.time_unit_ = "W"
    >>> ends, disc = value_schedule(bg, horizon=2, annual_discount_rate=0.0)
    >>> ends.tolist(), disc.tolist()
    ([1.0, 2.0], [1.0, 1.0])
    """
    check_unit(unit, allowed=("D", "W", "M"), name="unit")
    if horizon <= 0:
        raise UsageError(f"horizon must be positive, got {horizon!r}")
    if not 0 <= annual_discount_rate < 10:
        raise UsageError(
            f"annual_discount_rate is a yearly rate like 0.10, got {annual_discount_rate!r}"
        )
    model_unit = (
        getattr(bg, "time_unit_", None) or getattr(summary, "attrs", {}).get("time_unit") or "W"
    )
    days_per = UNIT_DAYS[model_unit]
    horizon_days = horizon * UNIT_DAYS[unit]
    step_days = min(7.0, horizon_days)
    n_steps = math.ceil(horizon_days / step_days - 1e-9)
    ends_days = np.minimum(step_days * np.arange(1, n_steps + 1), horizon_days)
    disc = (1 + annual_discount_rate) ** (-ends_days / 365.25)
    return ends_days / days_per, disc


def expected_spend(summary: Summary, gg: GammaGamma | None = None) -> np.ndarray:
    """Return each customer's expected spend per purchase, as CLV uses it.

    Parameters
    ----------
    summary
        An RFM summary (``frequency``, ``monetary_value``).
    gg
        A fitted :class:`~cxkit.clv.GammaGamma`; without it, a repeat customer's own
        mean repeat value and, for one-time buyers, the repeat customers' overall mean.

    Returns
    -------
    numpy.ndarray
        Expected spend per purchase per row of ``summary``.

    Examples
    --------
    >>> expected_spend({"frequency": [0, 2, 1], "monetary_value": [0.0, 10.0, 20.0]}).tolist()
    [15.0, 10.0, 20.0]
    """
    if gg is not None:
        return gg.conditional_expected_average_spend(summary)
    x = summary_column(summary, "frequency", "clv")
    m = summary_column(summary, "monetary_value", "clv")
    overall = float(m[x > 0].mean()) if np.any(x > 0) else 0.0
    return np.where(x > 0, m, overall)


def customer_value(
    summary: Summary,
    bg: BetaGeo,
    gg: GammaGamma | None = None,
    *,
    horizon: float = 52,
    unit: str = "W",
    annual_discount_rate: float = 0.10,
    margin: float = 1.0,
) -> pd.DataFrame:
    """Return each customer's discounted lifetime value over a stated horizon.

    CLV = margin × expected spend per purchase × Σ_k (expected purchases in step k) ×
    discount(k), with weekly steps and the discount applied at the end of each step:
    ``(1 + annual_discount_rate) ** -(days / 365.25)``.

    Parameters
    ----------
    summary
        An RFM summary (same time unit as the fitted models).
    bg
        A fitted :class:`~cxkit.clv.BetaGeo`.
    gg
        A fitted :class:`~cxkit.clv.GammaGamma`; without it the expected spend is each
        customer's observed mean repeat value (or the overall mean for non-repeaters).
    horizon, unit
        The horizon and its unit (``"D"``, ``"W"`` or ``"M"``); default 52 weeks.
    annual_discount_rate
        Yearly discount rate (0.10 = 10%).
    margin
        Share of revenue that is margin (1.0 = value is revenue).

    Returns
    -------
    pandas.DataFrame
        ``customer_id`` (when present), ``p_alive``, ``expected_purchases_<h>``,
        ``expected_spend_per_purchase``, ``clv_<h>`` — e.g. ``clv_52w``; ``attrs`` holds
        the settings and ``clv_column``.

    Raises
    ------
    UsageError
        For a bad unit, a horizon that is not positive, or a discount rate that is not a
        yearly rate.
    NotFittedError
        When ``bg`` (or ``gg``) is not fitted.
    """
    ends, disc = value_schedule(
        bg, summary, horizon=horizon, unit=unit, annual_discount_rate=annual_discount_rate
    )
    check_is_fitted(bg)
    if gg is not None:
        check_is_fitted(gg)
    x = summary_column(summary, "frequency", "clv")
    tx = np.where(x > 0, summary_column(summary, "recency", "clv"), 0.0)
    T = summary_column(summary, "T", "clv")
    (ux, utx, uT), _, codes = compress(x, tx, T)
    distinct = {"frequency": ux, "recency": utx, "T": uT}
    cum = np.zeros((len(ux), len(ends) + 1))
    for k, t in enumerate(ends, start=1):
        cum[:, k] = bg.expected_purchases(t, distinct)
    disc_purchases = (np.diff(cum, axis=1) * disc).sum(axis=1)[codes]
    expected = cum[:, -1][codes]
    spend = expected_spend(summary, gg)
    label = horizon_label(horizon, unit)
    out = pd.DataFrame(index=getattr(summary, "index", None))
    if "customer_id" in getattr(summary, "columns", []):
        out["customer_id"] = summary["customer_id"].to_numpy()
    out["p_alive"] = bg.p_alive(summary)
    out[f"expected_purchases_{label}"] = expected
    out["expected_spend_per_purchase"] = spend
    out[f"clv_{label}"] = margin * spend * disc_purchases
    out.attrs.update(
        value_attrs(
            horizon=horizon, unit=unit, annual_discount_rate=annual_discount_rate, margin=margin
        )
    )
    return out


def value_attrs(
    *, horizon: float, unit: str, annual_discount_rate: float, margin: float
) -> dict[str, object]:
    """Return the ``attrs`` of a :func:`customer_value` frame with these settings.

    Memory mode's :func:`customer_value` and scale mode's batches
    (:mod:`cxkit.clv.scale`) label their value frames with it, so that
    :func:`~cxkit.clv.clv_intervals` takes either as computed with its settings.

    Parameters
    ----------
    horizon, unit, annual_discount_rate, margin
        As in :func:`customer_value`.

    Returns
    -------
    dict of str to object
        The four settings, ``clv_column`` (``clv_<h>``) and ``expected_column``
        (``expected_purchases_<h>``).

    Examples
    --------
    >>> value_attrs(horizon=52, unit="W", annual_discount_rate=0.1, margin=1.0)["clv_column"]
    'clv_52w'
    """
    label = horizon_label(horizon, unit)
    return {
        "horizon": horizon,
        "unit": unit,
        "annual_discount_rate": annual_discount_rate,
        "margin": margin,
        "clv_column": f"clv_{label}",
        "expected_column": f"expected_purchases_{label}",
    }


def clv_column(frame: pd.DataFrame, column: str | None = None) -> str:
    """Return the name of the CLV column of ``frame`` (``column`` when given).

    Parameters
    ----------
    frame
        A frame from :func:`customer_value` (or one joined with it).
    column
        An explicit choice.

    Returns
    -------
    str
        ``frame.attrs["clv_column"]``, else the first ``clv_*`` column.

    Raises
    ------
    DataError
        When ``frame`` has no ``clv_*`` column.
    """
    if column is not None:
        return column
    col = frame.attrs.get("clv_column")
    if col is None:
        cols = [c for c in frame.columns if c.startswith("clv_")]
        if not cols:
            raise DataError(
                "no clv_* column", fix="pass the frame returned by clv.customer_value()"
            )
        col = cols[0]
    return col


def top_share(values: ArrayLike, *, top: float = 0.2) -> float:
    """Return the share of the total held by the top ``top`` fraction of values.

    Parameters
    ----------
    values
        The values (e.g. CLV per customer).
    top
        The fraction of values counted from the largest (0.2 = top 20%).

    Returns
    -------
    float
        The share; NaN when there are no values or their total is not positive.

    Examples
    --------
    >>> top_share([1, 1, 1, 1, 6], top=0.2)
    0.6
    """
    v = np.sort(np.asarray(values, dtype="float64"))[::-1]
    total = v.sum()
    if len(v) == 0 or total <= 0:
        return float("nan")
    k = max(1, math.ceil(top * len(v) - 1e-9))
    return float(v[:k].sum() / total)


def clv_by(frame: pd.DataFrame, by: str, *, column: str | None = None) -> pd.DataFrame:
    """Return mean CLV per group with a t interval, n, the small-group flag and value share.

    Parameters
    ----------
    frame
        One row per customer with a CLV column and the column ``by``.
    by
        The column to group by (missing values form a ``"(missing)"`` group).
    column
        The CLV column (default: :func:`clv_column`).

    Returns
    -------
    pandas.DataFrame
        ``<by>, customers, mean_<clv column>, ci_low, ci_high, share_of_value, small_n``,
        most valuable group first.

    Raises
    ------
    DataError
        When ``frame`` has no column ``by``.
    """
    col = clv_column(frame, column)
    if by not in frame.columns:
        raise DataError(f"no column '{by}' to group by", column=by)
    total = frame[col].sum()
    rows = []
    for key, grp in frame.groupby(by, sort=True, dropna=False):
        mean, low, high, n = mean_ci(grp[col].to_numpy())
        rows.append(
            {
                by: "(missing)" if pd.isna(key) else str(key),
                "customers": n,
                f"mean_{col}": mean,
                "ci_low": low,
                "ci_high": high,
                "share_of_value": grp[col].sum() / total if total > 0 else np.nan,
                "small_n": n < MIN_N,
            }
        )
    return pd.DataFrame(rows).sort_values(f"mean_{col}", ascending=False, ignore_index=True)


def valuable_repeat_customers(frame: pd.DataFrame, *, top: float = 0.2) -> np.ndarray:
    """Return which customers are the valuable repeat customers: the top share by past spend.

    "Valuable" = a repeat customer (``frequency > 0``) whose past repeat spend
    (``frequency × monetary_value``) is at least the ``1 − top`` quantile of the repeat
    customers' past repeat spend. Ties at the cut are all in, so the count can exceed
    ``top`` × the repeat customers by the ties; :func:`lapsing_high_value` and the CLV
    findings count this same set.

    Parameters
    ----------
    frame
        The summary columns ``frequency`` and ``monetary_value``.
    top
        The share of repeat customers counted as valuable.

    Returns
    -------
    numpy.ndarray
        One bool per row of ``frame``.

    Raises
    ------
    DataError
        When ``frame`` lacks ``frequency`` or ``monetary_value``.

    Examples
    --------
    >>> f = pd.DataFrame({"frequency": [0, 1, 2, 4, 1], "monetary_value": [0, 10, 5, 50, 1.0]})
    >>> valuable_repeat_customers(f, top=0.5).tolist()
    [False, True, True, True, False]
    """
    for needed in ("frequency", "monetary_value"):
        if needed not in frame.columns:
            raise DataError(f"no column '{needed}'", column=needed)
    repeat = (frame["frequency"] > 0).to_numpy()
    past = (frame["frequency"] * frame["monetary_value"]).to_numpy(dtype=float)
    if not repeat.any():
        return np.zeros(len(frame), dtype=bool)
    cut = float(np.quantile(past[repeat], 1 - top))
    return repeat & (past >= cut)


def lapsing_high_value(
    frame: pd.DataFrame,
    *,
    top: float = 0.2,
    p_alive_below: float = 0.5,
    column: str | None = None,
) -> pd.DataFrame:
    """Return the valuable repeat customers who have probably lapsed.

    "Valuable" = :func:`valuable_repeat_customers` (the top ``top`` share of repeat
    customers by past repeat spend, ``frequency × monetary_value``); "probably lapsed" =
    ``p_alive < p_alive_below``.

    Parameters
    ----------
    frame
        The summary columns and ``p_alive`` (e.g. the summary joined with
        :func:`customer_value`'s output).
    top
        The share of repeat customers counted as valuable.
    p_alive_below
        The P(alive) under which a customer has probably lapsed.
    column
        The CLV column to carry along (default: :func:`clv_column`).

    Returns
    -------
    pandas.DataFrame
        ``customer_id, frequency, recency, T`` (those present), ``past_repeat_spend``,
        ``p_alive`` and the CLV column, sorted by past repeat spend, largest first;
        ``attrs["valuable_customers"]`` is how many valuable repeat customers there are
        (lapsed or not).

    Raises
    ------
    DataError
        When ``frame`` lacks ``frequency``, ``monetary_value`` or ``p_alive``.
    """
    col = clv_column(frame, column)
    if "p_alive" not in frame.columns:
        raise DataError("no column 'p_alive'", column="p_alive")
    valuable = valuable_repeat_customers(frame, top=top)
    mask = valuable & (frame["p_alive"] < p_alive_below).to_numpy()
    past = frame["frequency"] * frame["monetary_value"]
    keep = [c for c in ("customer_id", "frequency", "recency", "T") if c in frame.columns]
    out = frame.loc[mask, keep].copy()
    out["past_repeat_spend"] = past[mask]
    out["p_alive"] = frame.loc[mask, "p_alive"]
    out[col] = frame.loc[mask, col]
    out = out.sort_values("past_repeat_spend", ascending=False, ignore_index=True)
    out.attrs["valuable_customers"] = int(valuable.sum())
    return out
