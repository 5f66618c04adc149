"""RFM summaries of the orders, inside the engine, with an optional calibration/holdout split.

:func:`rfm_summary` turns orders into one row per customer — ``frequency`` (repeat
purchase days), ``recency`` (first to last purchase), ``T`` (first purchase to the end of
the period) and ``monetary_value`` (mean value of the repeat purchase days) — as an ibis
expression (:func:`rfm_summary_expr`) that only comes to pandas at the end.

Time is measured in the summary's ``time_unit`` (``"D"`` days or ``"W"`` weeks = days / 7).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import ibis
import ibis.expr.types as ir
import pandas as pd

from cxkit.data import CXData, resolve_as_of
from cxkit.errors import UsageError
from cxkit.result import AsOf

#: Days per time unit. Summaries use "D" or "W"; horizons may also use "M" (months).
UNIT_DAYS: dict[str, float] = {"D": 1.0, "W": 7.0, "M": 365.25 / 12}
SECONDS_PER_DAY = 86_400


def check_unit(
    time_unit: str, *, allowed: Sequence[str] = ("D", "W"), name: str = "time_unit"
) -> str:
    """Return ``time_unit`` when it is one of ``allowed``.

    Parameters
    ----------
    time_unit
        The unit given by the caller.
    allowed
        The valid units.
    name
        The option's name, for the message.

    Returns
    -------
    str
        ``time_unit``.

    Raises
    ------
    UsageError
        Naming the valid choices and echoing the input.
    """
    if time_unit not in allowed:
        choices = " or ".join(repr(u) for u in allowed)
        raise UsageError(f"{name} must be {choices}, got {time_unit!r}")
    return time_unit


def orders_table(data: CXData) -> ir.Table:
    """Return the typed orders table of ``data`` (``customer_id``, ``ts``, ``amount``).

    Parameters
    ----------
    data
        The loaded data.

    Returns
    -------
    ibis.expr.types.Table
        The orders table.

    Raises
    ------
    UsageError
        When ``data`` is not a :class:`~cxkit.data.CXData` (wrap a frame with
        ``cxkit.load({"orders": frame})``).
    NotAvailableError
        When the data has no orders table with those columns.
    """
    if not isinstance(data, CXData):
        raise UsageError(
            f"data must be a CXData, got {type(data).__name__}; wrap a DataFrame of orders "
            'with cxkit.load({"orders": frame})'
        )
    return data.require("orders", "customer_id", "ts", "amount", analysis="CLV")


def day_number(ts: pd.Timestamp) -> int:
    """Return the UTC day of ``ts`` as whole days since 1970-01-01.

    Parameters
    ----------
    ts
        A naive UTC timestamp.

    Returns
    -------
    int
        The day number (the same numbering as :func:`daily_purchases`).
    """
    return math.floor(pd.Timestamp(ts).value / 1e9 / SECONDS_PER_DAY)


def daily_purchases(table: ir.Table, end: pd.Timestamp) -> ir.Table:
    """Return one row per customer and purchase day up to ``end``, amounts added up.

    Parameters
    ----------
    table
        The orders table.
    end
        The last instant included.

    Returns
    -------
    ibis.expr.types.Table
        ``customer_id``, ``day`` (integer days since 1970-01-01, UTC) and ``amount``.
    """
    t = table.filter(table.customer_id.notnull() & table.ts.notnull() & (table.ts <= end))
    day = (t.ts.epoch_seconds() / SECONDS_PER_DAY).floor().cast("int64")
    t = t.mutate(day=day)
    return t.group_by(["customer_id", "day"]).aggregate(amount=t.amount.sum())


def rfm_summary_expr(
    data: CXData,
    *,
    observation_end: AsOf = None,
    calibration_end: AsOf = None,
    time_unit: str = "W",
) -> ir.Table:
    """Return the RFM summary as an ibis expression, not executed.

    Parameters
    ----------
    data, observation_end, calibration_end, time_unit
        As for :func:`rfm_summary`.

    Returns
    -------
    ibis.expr.types.Table
        The expression :func:`rfm_summary` executes (unsorted, engine types).
    """
    return _rfm(data, observation_end, calibration_end, time_unit)[0]


def _rfm(
    data: CXData, observation_end: AsOf, calibration_end: AsOf, time_unit: str
) -> tuple[ir.Table, pd.Timestamp, pd.Timestamp | None]:
    check_unit(time_unit)
    table = orders_table(data)
    obs_end = resolve_as_of(data, observation_end)
    obs_day = day_number(obs_end)
    if calibration_end is not None:
        cal_end = resolve_as_of(data, calibration_end)
        cal_day = day_number(cal_end)
        if cal_day >= obs_day:
            raise UsageError(
                f"calibration_end ({cal_end.date()}) must be before observation_end "
                f"({obs_end.date()})"
            )
    else:
        cal_end, cal_day = None, obs_day
    unit = UNIT_DAYS[time_unit]
    daily = daily_purchases(table, obs_end)
    cal = daily.filter(daily.day <= cal_day)
    first = cal.group_by("customer_id").aggregate(first_day=cal.day.min())
    j = cal.join(first, "customer_id")
    repeat_amount = ibis.cases((j.day > j.first_day, j.amount), else_=0.0)
    per = j.group_by("customer_id").aggregate(
        n_days=j.day.count(),
        first_day=j.first_day.min(),
        last_day=j.day.max(),
        repeat_amount=repeat_amount.sum(),
    )
    frequency = (per.n_days - 1).cast("int64")
    summary = per.select(
        customer_id=per.customer_id,
        frequency=frequency,
        recency=(per.last_day - per.first_day).cast("float64") / unit,
        T=(ibis.literal(cal_day) - per.first_day).cast("float64") / unit,
        monetary_value=ibis.cases(
            (frequency > 0, per.repeat_amount.cast("float64") / frequency.cast("float64")),
            else_=0.0,
        ),
    )
    if calibration_end is None:
        return summary, obs_end, None
    hold = daily.filter((daily.day > cal_day) & (daily.day <= obs_day))
    hold = hold.group_by("customer_id").aggregate(h_n=hold.day.count(), h_amount=hold.amount.sum())
    k = summary.left_join(hold, summary.customer_id == hold.customer_id)
    h_n = k.h_n.fill_null(0).cast("int64")
    expr = k.select(
        customer_id=k.customer_id,
        frequency=k.frequency,
        recency=k.recency,
        T=k.T,
        monetary_value=k.monetary_value,
        holdout_frequency=h_n,
        holdout_monetary_value=ibis.cases(
            (h_n > 0, k.h_amount.cast("float64") / h_n.cast("float64")), else_=0.0
        ),
        holdout_duration=ibis.literal(float(obs_day - cal_day) / unit),
    )
    return expr, obs_end, cal_end


def rfm_summary(
    data: CXData,
    *,
    observation_end: AsOf = None,
    calibration_end: AsOf = None,
    time_unit: str = "W",
) -> pd.DataFrame:
    """Return one row per customer: frequency, recency, T and monetary value.

    Orders on the same (UTC) day count as one purchase, with their amounts added up.
    ``frequency`` is the number of *repeat* purchase days, ``recency`` the time from the
    first to the last purchase, ``T`` the time from the first purchase to the end of the
    (calibration) period, and ``monetary_value`` the mean value of the repeat purchase
    days (0 for customers without a repeat purchase; the lifetimes convention).

    Parameters
    ----------
    data
        The loaded data, with an ``orders`` table (``customer_id``, ``ts``, ``amount``).
        Wrap a DataFrame of orders with ``cxkit.load({"orders": frame})``.
    observation_end
        The last instant observed, read as ``as_of`` is (:func:`cxkit.data.resolve_as_of`:
        a date includes its whole day). Default: the data's ``as_of``, else its latest
        timestamp.
    calibration_end
        If given (read the same way), the summary covers orders up to it and the holdout
        columns ``holdout_frequency`` (purchase days after it), ``holdout_monetary_value``
        (their mean value) and ``holdout_duration`` describe the rest, up to
        ``observation_end``. Customers whose first purchase is after it are left out.
    time_unit
        ``"W"`` (weeks = days / 7, the default) or ``"D"`` (days).

    Returns
    -------
    pandas.DataFrame
        Sorted by ``customer_id``; ``attrs`` holds ``time_unit``, ``calibration_end`` and
        ``observation_end``.

    Raises
    ------
    UsageError
        For a bad ``time_unit``, or a ``calibration_end`` not before ``observation_end``.
    NotAvailableError
        When the data has no orders table with ``customer_id``, ``ts`` and ``amount``.

    Examples
    --------
    >>> import cxkit
    >>> orders = pd.DataFrame({"customer_id": ["a", "a", "a", "b"],
    ...     "ts": pd.to_datetime(["2024-01-01", "2024-01-01", "2024-01-15", "2024-01-08"]),
    ...     "amount": [10.0, 5.0, 20.0, 7.0]})
    >>> s = rfm_summary(cxkit.load({"orders": orders}), observation_end="2024-01-29")
    >>> print(s.to_string(index=False))
    customer_id  frequency  recency   T  monetary_value
              a          1      2.0 4.0            20.0
              b          0      0.0 3.0             0.0
    """
    expr, obs_end, cal_end = _rfm(data, observation_end, calibration_end, time_unit)
    df = expr.to_pandas()
    df["customer_id"] = df["customer_id"].astype("string")
    df["frequency"] = df["frequency"].astype("int64")
    for col in df.columns:
        if col not in ("customer_id", "frequency", "holdout_frequency"):
            df[col] = df[col].astype("float64")
    if "holdout_frequency" in df.columns:
        df["holdout_frequency"] = df["holdout_frequency"].astype("int64")
    df = df.sort_values("customer_id", kind="stable").reset_index(drop=True)
    df.attrs["time_unit"] = time_unit
    df.attrs["observation_end"] = str(obs_end.date())
    if cal_end is not None:
        df.attrs["calibration_end"] = str(cal_end.date())
    return df
