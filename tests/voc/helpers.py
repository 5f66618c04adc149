"""Tiny hand-worked responses, events and comments shared by the voc tests."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

T0 = pd.Timestamp("2024-03-01")

XSS = "<script>alert(1)</script><b>x</b>"


def responses(rows: list[tuple]) -> pd.DataFrame:
    """rows: (customer_id, day offset, survey, score, channel, touchpoint, comment)."""
    recs = []
    for i, (cid, day, survey, score, channel, touchpoint, comment) in enumerate(rows):
        recs.append(
            {
                "response_id": f"R{i:04d}",
                "customer_id": cid,
                "ts": T0 + pd.Timedelta(days=day),
                "survey": survey,
                "score": score,
                "channel": channel,
                "touchpoint": touchpoint,
                "comment": comment,
            }
        )
    df = pd.DataFrame(recs)
    df["comment"] = df["comment"].astype("string")
    return df


def events(rows: list[tuple]) -> pd.DataFrame:
    """rows: (customer_id, day offset, event, channel, touchpoint)."""
    return pd.DataFrame(
        [
            {
                "customer_id": c,
                "ts": T0 + pd.Timedelta(days=d),
                "event": e,
                "channel": ch,
                "touchpoint": tp,
            }
            for c, d, e, ch, tp in rows
        ]
    )


THEME_SENTENCES = {
    "late": [
        "My parcel arrived late again.",
        "Late delivery, the parcel was delayed.",
        "Delayed parcel and late courier.",
    ],
    "rude": [
        "The support agent was rude.",
        "Rude agent on the support line.",
        "Support agent rude and dismissive.",
    ],
    "easy": [
        "The app is easy and simple.",
        "Simple app, easy checkout.",
        "Easy simple app experience.",
    ],
}


def comment_frame() -> pd.DataFrame:
    """36 comments in three planted themes, one hostile comment and one blank one."""
    rows = []
    i = 0
    for rep in range(12):
        for theme, phrases in THEME_SENTENCES.items():
            score = 10 if theme == "easy" else 2
            rows.append((f"C{i}", rep, "nps", score, "web", "x", phrases[rep % 3]))
            i += 1
    rows.append(("CX", 3, "nps", 2, "web", "x", XSS))
    rows.append(("CY", 3, "csat", 5, "web", "x", "   "))  # blank: not a comment
    return responses(rows)


def demo_truth(demo_dir: Path) -> tuple[pd.DataFrame, dict]:
    """The demo's planted truth: per customer, and the planted effects."""
    return (
        pd.read_parquet(demo_dir / "_truth.parquet"),
        json.loads((demo_dir / "_truth.json").read_text()),
    )
