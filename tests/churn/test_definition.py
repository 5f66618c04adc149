"""Tests for cxkit.churn.definition: the definition and the labels, hand-worked."""

from __future__ import annotations

import pandas as pd
import pytest

import cxkit
from cxkit import churn
from cxkit.churn.definition import population_ids, resolve_definition
from cxkit.errors import NotAvailableError, UsageError
from tests.churn.helpers import mutate_after, ts


def test_labels_orders_basis_hand_worked(tiny: dict[str, pd.DataFrame]) -> None:
    data = cxkit.load(tiny)
    got = churn.labels(data, "2024-01-31", horizon_days=10, basis="orders")
    want = pd.DataFrame({"customer_id": ["a", "b", "d", "e"], "churned": [0, 1, 1, 0]}).astype(
        {"customer_id": "string", "churned": "int64"}
    )
    pd.testing.assert_frame_equal(got, want)


def test_labels_activity_basis_hand_worked(tiny: dict[str, pd.DataFrame]) -> None:
    data = cxkit.load(tiny)
    got = churn.labels(data, "2024-01-31", horizon_days=10, basis="activity")
    # b stays thanks to a site visit in the window; f (events only) joins and churns
    # (its next event is on 2024-03-01, after the window).
    want = pd.DataFrame(
        {"customer_id": ["a", "b", "d", "e", "f"], "churned": [0, 0, 1, 0, 1]}
    ).astype({"customer_id": "string", "churned": "int64"})
    pd.testing.assert_frame_equal(got, want)


def test_labels_contractual_hand_worked() -> None:
    customers = pd.DataFrame(
        {
            "customer_id": ["g", "h", "i", "j", "k"],
            "signup_at": ts(["2024-01-01", "2024-01-01", "2024-02-02", "2024-01-01", "2024-01-01"]),
            "churned_at": ts(["2024-02-05", "2024-01-20", None, None, "2024-03-01"]),
        }
    )
    data = cxkit.load({"customers": customers})
    d = churn.define(data, horizon_days=10)
    assert d.kind == "contractual"
    got = churn.labels(data, "2024-01-31", definition=d, check_window=False)
    # h churned before the cutoff and i signed up after it: neither is in the population.
    want = pd.DataFrame({"customer_id": ["g", "j", "k"], "churned": [1, 0, 0]}).astype(
        {"customer_id": "string", "churned": "int64"}
    )
    pd.testing.assert_frame_equal(got, want)
    assert "contractual" in d.describe()


def test_label_window_must_be_observed(tiny: dict[str, pd.DataFrame]) -> None:
    data = cxkit.load(tiny)
    with pytest.raises(UsageError, match="runs past the end of the data"):
        churn.labels(data, "2024-03-25", horizon_days=30)


def test_definition_options_are_checked(tiny: dict[str, pd.DataFrame]) -> None:
    data = cxkit.load(tiny)
    with pytest.raises(UsageError, match=r"basis must be one of .* got 'visits'"):
        churn.define(data, basis="visits")
    with pytest.raises(UsageError, match="horizon_days must be"):
        churn.ChurnDefinition(horizon_days=0)
    only_events = cxkit.load({"events": tiny["events"]})
    with pytest.raises(NotAvailableError, match="orders"):
        churn.define(only_events, basis="orders")
    d = churn.define(only_events)
    assert (d.basis, d.kind) == ("activity", "non_contractual")
    assert d.to_dict()["text"].startswith("Churn = a customer with any activity")


def test_resolve_definition_checks_its_type(tiny: dict[str, pd.DataFrame]) -> None:
    data = cxkit.load(tiny)
    d = churn.ChurnDefinition(horizon_days=10)
    assert resolve_definition(data, d, 90, "auto", "auto") is d
    with pytest.raises(UsageError, match="definition must be a ChurnDefinition, got dict"):
        resolve_definition(data, {"horizon_days": 10}, 90, "auto", "auto")  # type: ignore[arg-type]


def test_a_cutoff_resolves_as_as_of_does(tiny: dict[str, pd.DataFrame]) -> None:
    data = cxkit.load(tiny)
    d = churn.ChurnDefinition(horizon_days=10)
    # a date is its whole day: the 23:00 order of 2024-01-31 is before the cutoff
    by_date = churn.labels(data, "2024-01-31", definition=d)
    assert "d" in set(by_date["customer_id"])
    # a date-time is taken as it is: at 22:00 customer d has not ordered yet
    at_ten = churn.labels(data, "2024-01-31 22:00", definition=d)
    assert "d" not in set(at_ten["customer_id"])
    # None: the data's latest timestamp (2024-03-31, the last order)
    latest = population_ids(data, cxkit.resolve_as_of(data, None), d)
    assert latest.equals(
        churn.labels(data, None, definition=d, check_window=False)[["customer_id"]]
    )
    assert len(latest) == 6  # a, b, c, d, e, z


def test_data_end_counts_the_cut(tiny: dict[str, pd.DataFrame]) -> None:
    data = cxkit.load(tiny)
    d = churn.define(data)
    assert churn.data_end(data, d) == pd.Timestamp("2024-03-31")
    # cut later than the last order: observed up to the cut
    assert churn.data_end(data.upto("2024-04-30"), d) == pd.Timestamp("2024-04-30 23:59:59.999999")


def test_no_leakage_into_labels_population(demo_data: cxkit.CXData) -> None:
    cutoff = pd.Timestamp("2024-06-30")
    mutated = mutate_after(demo_data, cutoff + pd.Timedelta(days=120), seed=4)
    d = churn.define(demo_data, horizon_days=90)
    # labels read only up to cutoff + horizon: changes after that change nothing
    pd.testing.assert_frame_equal(
        churn.labels(demo_data, cutoff, definition=d), churn.labels(mutated, cutoff, definition=d)
    )
