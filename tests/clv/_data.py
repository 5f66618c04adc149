"""Tiny hand-made orders and a fixed BG/NBD model shared by the CLV tests."""

from __future__ import annotations

import pandas as pd

import cxkit
from cxkit import clv

#: The CDNOW calibration end and observation end of the published figures.
CAL_END = "1997-09-30"
OBS_END = "1998-06-30"

TINY = [
    ("a", "2024-01-01 09:00", 10.0),
    ("a", "2024-01-01 17:00", 5.0),  # same day: merged into one purchase of 15
    ("a", "2024-01-15 12:00", 20.0),
    ("a", "2024-01-29 12:00", 40.0),
    ("b", "2024-01-08 00:00", 7.0),
    ("c", "2024-02-05 10:00", 3.0),  # first purchase after calibration end
    ("a", "2024-02-12 10:00", 8.0),  # holdout
    ("a", "2024-02-12 11:00", 2.0),  # holdout, same day
    ("b", "2024-02-19 10:00", 6.0),  # holdout
]


def orders_frame(rows: list[tuple[str, str, float]]) -> pd.DataFrame:
    """``customer_id, ts, amount`` from ``(customer, timestamp, amount)`` rows."""
    return pd.DataFrame(
        {
            "customer_id": [r[0] for r in rows],
            "ts": pd.to_datetime([r[1] for r in rows]),
            "amount": [r[2] for r in rows],
        }
    )


def orders(rows: list[tuple[str, str, float]]) -> cxkit.CXData:
    """The rows loaded as the orders table of a CXData (the one data input of cxkit.clv)."""
    return cxkit.load({"orders": orders_frame(rows)})


def engine_orders() -> pd.DataFrame:
    """TINY with order IDs, for loading into other engines."""
    frame = orders_frame(TINY)
    frame.insert(0, "order_id", [f"o{i}" for i in range(len(frame))])
    return frame


def fixed_bg(params: tuple[float, ...] = (0.2426, 4.4136, 0.7929, 2.4259)) -> clv.BetaGeo:
    """A BG/NBD model with the published CDNOW parameters, without fitting."""
    bg = clv.BetaGeo()
    bg.params_ = pd.Series(params, index=["r", "alpha", "a", "b"])
    bg.time_unit_ = "W"
    return bg
