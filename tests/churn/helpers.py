"""Small hand-made tables shared by the churn tests."""

from __future__ import annotations

import numpy as np
import pandas as pd

import cxkit


def ts(values: list[str]) -> pd.Series:
    return pd.to_datetime(pd.Series(values), format="ISO8601")


def feature_frames() -> dict[str, pd.DataFrame]:
    return {
        "customers": pd.DataFrame(
            {"customer_id": ["a"], "signup_at": ts(["2023-12-15"]), "region": ["north"]}
        ),
        "orders": pd.DataFrame(
            {
                "order_id": ["1", "2", "3"],
                "customer_id": ["a", "a", "a"],
                "ts": ts(["2024-01-01", "2024-03-01", "2024-04-15"]),
                "amount": [10.0, 30.0, 99.0],
                "channel": ["web", "app", "app"],
            }
        ),
        "events": pd.DataFrame(
            {
                "customer_id": ["a", "a", "a"],
                "ts": ts(["2024-02-01", "2024-03-20", "2024-04-02"]),
                "event": ["product_view", "support_contact", "site_visit"],
                "channel": ["web", "chat", "app"],
            }
        ),
        "responses": pd.DataFrame(
            {
                "response_id": ["r1", "r2", "r3"],
                "customer_id": ["a", "a", "a"],
                "ts": ts(["2024-03-10", "2024-03-25", "2024-03-21"]),
                "survey": ["nps", "nps", "csat"],
                "score": [3, 9, 2],
                "comment": ["the parcel was delayed again", None, "support was rude"],
            }
        ),
    }


def mutate_after(data: cxkit.CXData, cutoff: pd.Timestamp, seed: int) -> cxkit.CXData:
    """A copy of ``data`` where every row dated after ``cutoff`` is changed, some dropped,
    and new rows after the cutoff are added."""
    rng = np.random.default_rng(seed)
    frames = {name: data.to_pandas(name) for name in data.names}
    for name in ("orders", "events", "responses"):
        df = frames[name]
        late = df["ts"] > cutoff
        idx = df.index[late]
        df.loc[idx, "ts"] = df.loc[idx, "ts"] + pd.to_timedelta(
            rng.uniform(0, 5, len(idx)), "D"
        ).round("us")
        if name == "orders":
            df.loc[idx, "amount"] = df.loc[idx, "amount"] * 7 + 1
            df.loc[idx, "channel"] = "phone"
        if name == "events":
            df.loc[idx, "event"] = "support_contact"
            df.loc[idx, "channel"] = "chat"
        if name == "responses":
            df.loc[idx, "score"] = 0
            df.loc[idx, "comment"] = "app crashes, too expensive, delayed, rude"
        extra = df.loc[idx].sample(frac=0.5, random_state=seed).copy()
        id_col = {"orders": "order_id", "events": "event_id", "responses": "response_id"}[name]
        extra[id_col] = [f"new{i}" for i in range(len(extra))]
        extra["customer_id"] = (
            df["customer_id"].sample(len(extra), replace=True, random_state=1).to_numpy()
        )
        drop = df.index[late & (rng.random(len(df)) < 0.3)]
        frames[name] = pd.concat([df.drop(index=drop), extra], ignore_index=True)
    cust = frames["customers"]
    late = cust["signup_at"] > cutoff
    cust.loc[late, "region"] = "moon"
    return cxkit.load(frames)


def contractual_customers(n: int = 800) -> pd.DataFrame:
    """Subscriptions whose plan drives churn: basic lasts ~150 days, premium ~900."""
    rng = np.random.default_rng(0)
    signup = pd.Series(
        pd.Timestamp("2023-01-01") + pd.to_timedelta(rng.uniform(0, 600, n), "D")
    ).dt.round("us")
    plan = rng.choice(["basic", "premium"], n)
    life = rng.exponential(np.where(plan == "basic", 150.0, 900.0))
    churned = (signup + pd.to_timedelta(life, "D")).dt.round("us")
    churned = churned.where(churned <= pd.Timestamp("2024-12-31"))
    return pd.DataFrame(
        {
            "customer_id": [f"K{i:04d}" for i in range(n)],
            "signup_at": signup,
            "plan": plan,
            "churned_at": churned,
        }
    )
