"""Tests of cxkit.lifecycle.cohorts: cohort retention and lifecycle states."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import cxkit
from cxkit import lifecycle as lc
from cxkit.errors import UsageError
from tests.lifecycle.helpers import ev_frame as _ev
from tests.lifecycle.helpers import events, mini_data


def test_cohort_retention_nan_for_unobservable():
    ev = _ev([("a", "v", 0), ("a", "v", 31), ("b", "v", 40), ("c", "v", 45), ("c", "v", 75)])
    r = lc.cohort_retention(events(ev), period="M", as_of="2024-03-31")
    assert r.index.tolist() == ["2024-01", "2024-02", "all (size-weighted)"]
    assert r.customers.tolist() == [1, 2, 3]
    assert r.loc["2024-01", 1] == 1.0 and r.loc["2024-01", 2] == 0.0
    assert r.loc["2024-02", 1] == 0.5
    assert np.isnan(r.loc["2024-02", 2])  # March... is observable? no: Feb + 2 = April
    assert r.loc["all (size-weighted)", 1] == pytest.approx(2 / 3)
    assert r.loc["all (size-weighted)", 2] == pytest.approx(0.0)
    # as_of mid-March: March is incomplete -> not observable at all
    r2 = lc.cohort_retention(events(ev), period="M", as_of="2024-03-20")
    assert np.isnan(r2.loc["2024-02", 1])
    with pytest.raises(UsageError, match="period must be one of"):
        lc.cohort_retention(events(ev), period="fortnight")


def test_cohort_retention_orders_only():
    data = mini_data()
    r = lc.cohort_retention(data, activity="orders", as_of="2024-02-29")
    assert r.loc["2024-01", "customers"] == 2  # a and b ordered in January
    assert r.loc["2024-01", 1] == 0.5  # a ordered again in February


def test_lifecycle_states():
    ev = _ev(
        [("a", "v", 0), ("a", "v", 31), ("a", "v", 70), ("b", "v", 5), ("b", "v", 65)]
    )  # a: Jan, Feb, Mar; b: Jan, Mar
    s = lc.lifecycle_states(events(ev), period="M", as_of="2024-03-31").set_index("period")
    assert s.loc["2024-01", ["new", "returning", "resurrecting", "dormant"]].tolist() == [
        2, 0, 0, 0
    ]  # fmt: skip
    assert s.loc["2024-02", ["new", "returning", "resurrecting", "dormant"]].tolist() == [
        0, 1, 0, 1
    ]  # fmt: skip
    assert s.loc["2024-03", ["new", "returning", "resurrecting", "dormant"]].tolist() == [
        0, 1, 1, 0
    ]  # fmt: skip


def test_cohort_retention_without_a_complete_period_is_empty():
    # three days in January, as of January 3: no month is complete yet
    ev = _ev([("a", "v", 0), ("b", "v", 2)])
    r = lc.cohort_retention(events(ev), period="M", as_of="2024-01-03")
    assert r.empty and list(r.columns) == ["customers", 0]
    assert (
        len(lc.cohort_retention(events(ev), period="D", as_of="2024-01-03")) == 3
    )  # 2 cohorts + average


def test_one_customer_one_order_mid_month():
    # issue 22: one order, as_of = that order (mid-month): no complete month, so no cohort
    # table, and the lifecycle analysis says so instead of failing (ufunc 'invert')
    orders = pd.DataFrame(
        {"order_id": ["o1"], "customer_id": ["c1"], "amount": [31.0],
         "ts": [pd.Timestamp("2023-08-09 10:55:55.619454")]}
    )  # fmt: skip
    data = cxkit.load({"orders": orders})
    for period in ("W", "M", "Q"):
        r = lc.cohort_retention(data, period=period)
        assert r.empty and list(r.columns) == ["customers", 0]
    res = lc.analyze(data)
    assert res.n_customers == 1 and res.cohorts is not None and res.cohorts.empty
