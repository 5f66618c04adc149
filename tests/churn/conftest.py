"""Fixtures of the churn tests: a tiny hand-worked order table and the 2k demo's result."""

from __future__ import annotations

import pandas as pd
import pytest

import cxkit
from cxkit import churn
from tests.churn.helpers import ts


@pytest.fixture
def tiny() -> dict[str, pd.DataFrame]:
    orders = pd.DataFrame(
        {
            "order_id": [str(i) for i in range(9)],
            "customer_id": ["a", "a", "b", "c", "d", "d", "e", "e", "z"],
            "ts": ts(
                [
                    "2024-01-05",  # a: before the cutoff
                    "2024-02-05",  # a: inside the window -> stays
                    "2024-01-20",  # b: nothing after -> churns
                    "2024-02-03",  # c: first order after the cutoff -> not in population
                    "2024-01-31 23:00",  # d: on the cutoff day (included)
                    "2024-02-12",  # d: after the 10-day window -> churns
                    "2024-01-10",  # e
                    "2024-02-10 23:00",  # e: last minute of the window -> stays
                    "2024-03-31",  # z: makes the window observable
                ]
            ),
            "amount": [10.0, 20.0, 5.0, 7.0, 3.0, 4.0, 8.0, 9.0, 1.0],
        }
    )
    events = pd.DataFrame(
        {
            "customer_id": ["b", "f", "f"],
            "ts": ts(["2024-02-02", "2024-01-15", "2024-03-01"]),
            "event": ["site_visit", "ad_impression", "site_visit"],
        }
    )
    return {"orders": orders, "events": events}


@pytest.fixture(scope="session")
def demo_result(demo_data: cxkit.CXData) -> churn.ChurnResult:
    """``churn.analyze`` on the 2,000-customer demo (computed once per session)."""
    return churn.analyze(demo_data, random_state=0)
