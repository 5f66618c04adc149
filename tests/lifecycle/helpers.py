"""Tiny hand-worked data sets shared by the lifecycle tests."""

from __future__ import annotations

import pandas as pd

import cxkit

T0 = pd.Timestamp("2024-01-01")


def ev_frame(rows: list[tuple[str, str, float]], channel: list[str] | None = None) -> pd.DataFrame:
    """An events frame from rows of (customer, event, day offset from T0)."""
    df = pd.DataFrame(rows, columns=["customer_id", "event", "day"])
    df["ts"] = (T0 + pd.to_timedelta(df.pop("day"), unit="D")).dt.round("us")
    if channel is not None:
        df["channel"] = channel
    return df


def events(df: pd.DataFrame) -> cxkit.CXData:
    """Data with only an events table (the lifecycle functions take a CXData)."""
    return cxkit.load({"events": df})


def ev(rows: list[tuple[str, str, float]], channel: list[str] | None = None) -> cxkit.CXData:
    """Data with only the events of :func:`ev_frame`."""
    return events(ev_frame(rows, channel))


def mini_data() -> cxkit.CXData:
    """Four customers with events, orders, NPS answers and an acquisition channel."""
    e = ev_frame(
        [
            ("a", "ad_impression", 0), ("a", "product_view", 2), ("a", "review", 40),
            ("b", "site_visit", 5), ("b", "product_view", 6),
            ("c", "email_open", 10),
            ("d", "site_visit", 35),
        ]
    )  # fmt: skip
    e["touchpoint"] = ["marketing", "browse", "support", "browse", "browse", "marketing", "browse"]
    orders = pd.DataFrame(
        {
            "order_id": ["o1", "o2", "o3", "o4"],
            "customer_id": ["a", "a", "b", "d"],
            "ts": [T0 + pd.Timedelta(days=d) for d in (3, 33, 7.2, 35.5)],
            "amount": [10.0, 20.0, 5.0, 7.0],
        }
    )
    resp = pd.DataFrame(
        {
            "response_id": ["r1", "r2"],
            "customer_id": ["b", "d"],
            "ts": [T0 + pd.Timedelta(days=8), T0 + pd.Timedelta(days=36)],
            "survey": ["nps", "nps"],
            "score": [9, 6],
        }
    )
    cust = pd.DataFrame({"customer_id": list("abcd"), "acquisition_channel": list("xxyy")})
    return cxkit.load({"events": e, "orders": orders, "responses": resp, "customers": cust})
