"""Tests for cxkit.personas.features: hand-worked features on tiny tables."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import cxkit
from cxkit import personas as P
from cxkit.errors import DataError, NotAvailableError
from tests.personas._data import T0, tiny, ts


def test_customer_features_hand_worked() -> None:
    f = P.customer_features(cxkit.load(tiny()), as_of="2024-02-10")
    # the whole day of as_of counts, and days are measured from its end (resolve_as_of)
    assert list(f.index) == ["a", "b", "c"]
    a, b, c = (f.loc[x] for x in "abc")
    cut = pd.Timestamp("2024-02-10 23:59:59.999999")
    assert f.attrs["as_of"] == cut.isoformat()
    day = pd.Timedelta(days=1)
    assert a.recency_days == pytest.approx(1.0)  # last event at the start of day 40 = as_of
    assert a.tenure_days == pytest.approx((cut - ts(0)) / day)
    assert (a.orders, a.spend, a.spend_per_order) == (2.0, 40.0, 20.0)
    assert a.orders_per_month == pytest.approx(2 / (((cut - ts(0)) / day) / 30.4375))
    assert (a.share_web, a.share_chat, a.share_app, a.share_social) == (0.5, 0.25, 0.25, 0.0)
    assert a.support_contacts == 1.0
    assert (a.csat_mean, a.nps_latest) == (3.5, 9.0)
    assert (b.orders, b.spend, b.support_contacts, b.nps_latest) == (1.0, 5.0, 1.0, 3.0)
    assert np.isnan(b.csat_mean)
    # c never did anything: zero behaviour, recency = tenure from signup
    assert (c.orders, c.spend, c.events_per_month, c.share_web) == (0.0, 0.0, 0.0, 0.0)
    assert np.isnan(c.spend_per_order)  # undefined without orders
    assert c.recency_days == pytest.approx(c.tenure_days)
    assert (a["region=north"], b["region=north"], b["region=south"]) == (1.0, 0.0, 1.0)
    assert f.attrs["basis"].startswith("behaviour across channels")
    assert f.attrs["tables"] == ["events", "orders", "responses", "customers"]


def test_customer_features_as_of_drops_later_rows() -> None:
    f = P.customer_features(cxkit.load(tiny()), as_of="2024-01-20")
    assert f.loc["a", "orders"] == 1.0  # the order on day 30 is after as_of
    assert "share_app" not in f.columns  # no app event before as_of
    assert "c" not in f.index  # signed up after as_of


def test_customer_features_orders_only() -> None:
    tabs = tiny()
    f = P.customer_features(cxkit.load({"orders": tabs["orders"]}))
    assert f.attrs["basis"] == "purchase behaviour only (orders)"
    assert {"share_web", "share_app"} <= set(f.columns)  # order channels stand in
    assert "events_per_month" not in f.columns
    assert f.loc["a", "share_web"] == 0.5


def test_customer_features_needs_orders_or_events() -> None:
    tabs = tiny()
    with pytest.raises(NotAvailableError, match="needs the table 'orders' or 'events'"):
        P.customer_features(cxkit.load({"responses": tabs["responses"]}))


def test_customer_features_bad_categorical() -> None:
    with pytest.raises(DataError, match=r"categorical column.*'tier'"):
        P.customer_features(cxkit.load(tiny()), categorical=["tier"])


def test_customer_features_measure_days_from_a_date_time_as_of() -> None:
    f = P.customer_features(cxkit.load(tiny()), as_of="2024-02-10 12:00")
    assert f.attrs["as_of"] == "2024-02-10T12:00:00"
    assert f.loc["a", "recency_days"] == 0.5  # last event at midnight, as_of at noon
    assert f.loc["a", "tenure_days"] == 40.5


def test_derive_features_from_raw_aggregates() -> None:
    raw = pd.DataFrame(
        {
            "customer_id": ["b", "a"],
            "first_order_at": [T0, T0],
            "last_order_at": [T0 + pd.Timedelta(days=10), T0],
            "orders": [2, 0],
            "spend": [30.0, 0.0],
        }
    )
    f = P.derive_features(
        raw, T0 + pd.Timedelta(days=20), [], has_events=False, has_orders=True, has_resp=False
    )
    assert list(f.index) == ["a", "b"]
    assert f.loc["b", "recency_days"] == 10.0 and f.loc["b", "spend_per_order"] == 15.0
    assert np.isnan(f.loc["a", "spend_per_order"])
    assert f.attrs["basis"] == "purchase behaviour only (orders)"
