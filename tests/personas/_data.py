"""Tiny hand-made tables shared by the personas tests."""

from __future__ import annotations

import numpy as np
import pandas as pd

import cxkit

T0 = pd.Timestamp("2024-01-01")


def ts(days: float) -> pd.Timestamp:
    return T0 + pd.Timedelta(days=days)


def tiny() -> dict[str, pd.DataFrame]:
    customers = pd.DataFrame(
        {
            "customer_id": ["a", "b", "c"],
            "signup_at": [ts(0), ts(10), ts(20)],
            "region": ["north", "south", "north"],
        }
    )
    events = pd.DataFrame(
        {
            "event_id": [f"E{i}" for i in range(6)],
            "customer_id": ["a", "a", "a", "a", "b", "b"],
            "ts": [ts(0), ts(5), ts(6), ts(40), ts(10), ts(11)],
            "event": [
                "site_visit",
                "product_view",
                "support_contact",
                "app_open",
                "social_view",
                "support_contact",
            ],
            "channel": ["web", "web", "chat", "app", "social", "chat"],
        }
    )
    orders = pd.DataFrame(
        {
            "order_id": ["O1", "O2", "O3"],
            "customer_id": ["a", "a", "b"],
            "ts": [ts(7), ts(30), ts(12)],
            "amount": [10.0, 30.0, 5.0],
            "channel": ["web", "app", "web"],
        }
    )
    responses = pd.DataFrame(
        {
            "response_id": ["R1", "R2", "R3", "R4"],
            "customer_id": ["a", "a", "a", "b"],
            "ts": [ts(6), ts(8), ts(31), ts(11)],
            "survey": ["csat", "csat", "nps", "nps"],
            "score": [2, 5, 9, 3],
            "channel": ["chat", "web", "email", "email"],
        }
    )
    return {"customers": customers, "events": events, "orders": orders, "responses": responses}


def pain_data(seed: int = 0) -> tuple[cxkit.CXData, pd.DataFrame]:
    """Two personas; P1 is unhappy on chat only (CSAT mostly 1-2), P2 is fine everywhere."""
    rng = np.random.default_rng(seed)
    rows = []
    for persona, bad in (("P1", True), ("P2", False)):
        for i in range(40):
            cid = f"{persona}-{i}"
            for ch in ("chat", "web", "phone"):
                low = bad and ch == "chat"
                score = int(rng.choice([1, 2, 4] if low else [4, 5, 5, 3]))
                rows.append((cid, ch, score))
    df = pd.DataFrame(rows, columns=["customer_id", "channel", "score"])
    df["response_id"] = [f"R{i}" for i in range(len(df))]
    df["ts"] = T0
    df["survey"] = "csat"
    asg = pd.DataFrame({"customer_id": df.customer_id.unique()})
    asg["persona_name"] = asg.customer_id.str[:2]
    return cxkit.load({"responses": df}), asg
