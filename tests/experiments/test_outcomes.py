"""Per-customer outcomes on a tiny hand-worked table: windows, first assignments, NaNs."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import cxkit
from cxkit.errors import NotAvailableError, UsageError
from cxkit.experiments import customer_outcomes

AT = pd.Timestamp("2024-03-01 12:00")


def _tiny() -> dict[str, pd.DataFrame]:
    assignments = pd.DataFrame(
        {
            "customer_id": ["a", "b", "c", "d", "d", "e"],
            "experiment": ["x"] * 6,
            "variant": ["control", "treatment", "control", "treatment", "control", "treatment"],
            "assigned_at": [AT, AT, AT, AT, AT + pd.Timedelta(days=2), pd.Timestamp("2024-06-20")],
        }
    )
    day = pd.Timedelta(days=1)
    orders = pd.DataFrame(
        {
            "order_id": [str(i) for i in range(8)],
            "customer_id": ["a", "a", "a", "b", "b", "c", "d", "e"],
            "ts": [
                AT - 10 * day,  # a: before (pre_orders, prior)
                AT,  # a: at the assignment instant: not after it
                AT + 30 * day,  # a: the last instant of the 30-day window: converts
                AT + 31 * day,  # b: after the conversion window, inside 90 days
                AT + 91 * day,  # b: after the 90-day window
                AT - 200 * day,  # c: before, but outside the 180-day pre-window
                AT + 5 * day,  # d
                pd.Timestamp("2024-06-01"),  # e: before its (late) assignment
            ],
            "amount": [10.0, 20.0, 30.0, 40.0, 50.0, 60.0, 70.0, 80.0],
        }
    )
    responses = pd.DataFrame(
        {
            "response_id": [f"r{i}" for i in range(6)],
            "customer_id": ["a", "a", "a", "b", "c", "c"],
            "ts": [AT - day, AT + day, AT + day, AT + 2 * day, AT + 200 * day, AT - 3 * day],
            "survey": ["nps", "nps", "nps", "csat", "nps", "nps"],
            "score": [3, 6, 9, 5, 10, 8],
        }
    )
    return {"assignments": assignments, "orders": orders, "responses": responses}


def test_windows_first_assignments_and_covariates() -> None:
    out = customer_outcomes(cxkit.load(_tiny()), as_of="2024-07-31").set_index("customer_id")
    assert out.loc["d", "variant"] == "treatment" and out.loc["d", "n_assignments"] == 2
    # conversion: an order in (assigned_at, assigned_at + 30 days]
    assert out.converted.to_dict() == {"a": 1.0, "b": 0.0, "c": 0.0, "d": 1.0, "e": 0.0}
    # spend within 90 days; a's order at the assignment instant does not count (e's 90
    # days have not ended: see the next test)
    assert out.spend.dropna().to_dict() == {"a": 30.0, "b": 40.0, "c": 0.0, "d": 70.0}
    # churn only among customers who ordered before (at or before the instant)
    assert out.prior.to_dict() == {"a": True, "b": False, "c": True, "d": False, "e": True}
    assert out.churned.dropna().to_dict() == {"a": 0.0, "c": 1.0}
    assert out.pre_orders.to_dict() == {"a": 2, "b": 0, "c": 0, "d": 0, "e": 1}
    assert out.pre_spend.to_dict() == {"a": 30.0, "b": 0.0, "c": 0.0, "d": 0.0, "e": 80.0}
    # NPS: the first answer in the window; two at the same instant: the higher one
    assert out.nps.dropna().to_dict() == {"a": 1.0}
    assert out.pre_nps.dropna().to_dict() == {"a": -1.0, "c": 0.0}
    assert out.attrs["churn_basis"] == "orders"


def test_windows_not_ended_by_as_of_are_left_out() -> None:
    out = customer_outcomes(cxkit.load(_tiny()), as_of="2024-07-31").set_index("customer_id")
    # e was assigned on 2024-06-20: 30 days ended, 90 and 120 had not
    assert out.loc["e", "converted"] == 0.0
    assert np.isnan(out.loc["e", "spend"]) and np.isnan(out.loc["e", "nps"])
    # at an earlier as_of nothing after it is seen, and e is not assigned yet
    early = customer_outcomes(cxkit.load(_tiny()), as_of="2024-03-20").set_index("customer_id")
    assert "e" not in early.index
    assert early.converted.isna().all()  # no 30-day window has ended by then


def test_contractual_churn_uses_churned_at() -> None:
    t = _tiny()
    t["customers"] = pd.DataFrame(
        {
            "customer_id": ["a", "b", "c", "d", "e"],
            "churned_at": [AT + pd.Timedelta(days=10), None, AT - pd.Timedelta(days=1), None, None],
        }
    )
    out = customer_outcomes(cxkit.load(t), as_of="2024-07-31").set_index("customer_id")
    assert out.attrs["churn_basis"] == "contract"
    assert out.prior.to_dict() == {"a": True, "b": True, "c": False, "d": True, "e": True}
    assert out.churned.dropna().to_dict() == {"a": 1.0, "b": 0.0, "d": 0.0}


def test_without_orders_only_nps_is_measured() -> None:
    t = _tiny()
    del t["orders"]
    out = customer_outcomes(cxkit.load(t), as_of="2024-07-31")
    assert out[["converted", "churned", "spend"]].isna().all().all()
    assert out.attrs["has_orders"] is False and out.nps.notna().sum() == 1


def test_missing_assignments_and_bad_windows_are_plain_errors() -> None:
    t = _tiny()
    del t["assignments"]
    with pytest.raises(NotAvailableError, match="needs the table 'assignments'"):
        customer_outcomes(cxkit.load(t))
    with pytest.raises(UsageError, match="horizon_days must be a positive whole number of days"):
        customer_outcomes(cxkit.load(_tiny()), horizon_days=0)
