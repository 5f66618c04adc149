"""Tests for cxkit.voc.omnichannel: channel consistency, pain points and channel switching."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

import cxkit
from cxkit import stats, voc
from tests.voc.helpers import demo_truth, events, responses

# --------------------------------------------------------------------------------------
# omnichannel
# --------------------------------------------------------------------------------------


def test_channel_consistency_hand_worked() -> None:
    rows = [(f"A{i}", i, "csat", 5 if i < 32 else 1, "web", "delivery", None) for i in range(40)]
    rows += [(f"B{i}", i, "csat", 5 if i < 10 else 2, "chat", "delivery", None) for i in range(40)]
    rows += [(f"C{i}", i, "csat", 5, "phone", "delivery", None) for i in range(5)]  # small
    out = voc.channel_consistency(cxkit.load({"responses": responses(rows)})).iloc[0]
    assert out["channels"] == 2
    assert (out["best_channel"], out["worst_channel"]) == ("web", "chat")
    assert out["spread_points"] == pytest.approx(100 * (32 / 40 - 10 / 40))
    t = stats.two_proportion_test(32, 40, 10, 40)
    assert out["p_value"] == pytest.approx(t["p_value"])
    assert bool(out["significant"])


def test_channel_pain_points_find_planted_cell() -> None:
    rows = []
    for g in ("a", "b", "c"):
        for ch in ("web", "chat", "phone"):
            bad = g == "b" and ch == "chat"
            for i in range(60):
                score = (2 if i % 5 else 4) if bad else (5 if i % 5 else 2)
                rows.append((f"{g}{ch}{i}", i, "csat", score, ch, "support", None))
    r = responses(rows)
    personas = pd.Series({cid: cid[0] for cid in r["customer_id"]})
    pp = voc.channel_pain_points(cxkit.load({"responses": r}), personas=personas)
    assert pp["pain_point"].sum() == 1
    assert (pp.iloc[0]["persona"], pp.iloc[0]["channel"]) == ("b", "chat")


def test_channel_switching_hand_worked() -> None:
    ev = events(
        [
            ("A", 0, "support_contact", "chat", "delivery"),
            ("A", 3, "support_contact", "phone", "delivery"),  # switch within 7 days
            ("B", 0, "support_contact", "chat", "delivery"),
            ("B", 10, "support_contact", "phone", "delivery"),  # too late
            ("C", 0, "support_contact", "chat", "billing"),
            ("C", 1, "support_contact", "phone", "delivery"),  # different need
            ("D", 0, "support_contact", "chat", "delivery"),
            ("D", 6, "support_contact", "chat", "delivery"),
            ("D", 12, "support_contact", "phone", "delivery"),  # 6 days after the 2nd
            ("E", 0, "site_visit", "web", "delivery"),  # not a contact
            ("E", 1, "support_contact", "email", "delivery"),
        ]
    )
    out = voc.channel_switching(cxkit.load({"events": ev})).set_index("touchpoint")
    assert out.loc["delivery", "customers"] == 5
    assert out.loc["delivery", "switchers"] == 2
    assert out.loc["billing", "switchers"] == 0
    assert out.loc["(all)", "customers"] == 5
    assert out.loc["(all)", "switch_rate"] == pytest.approx(0.4)
    only = voc.channel_switching(cxkit.load({"events": ev}), events=["site_visit"])
    assert only.set_index("touchpoint").loc["(all)", "switchers"] == 0


def test_demo_chat_pain_point_for_support_heavy(demo_dir: Path, demo_data: cxkit.CXData) -> None:
    truth, info = demo_truth(demo_dir)
    personas = truth.set_index("customer_id")["persona"]
    pp = voc.channel_pain_points(demo_data, personas=personas)
    top = pp.iloc[0]
    assert bool(top["pain_point"])
    assert (top["persona"], top["channel"]) == (
        info["pain_point"]["persona"],
        info["pain_point"]["channel"],
    )
    assert top["csat_mean"] == pytest.approx(info["pain_point"]["csat_mean_planted"], abs=0.4)
    cc = voc.channel_consistency(demo_data, by="persona", personas=personas)
    row = cc.set_index("persona").loc["support_heavy"]
    assert row["worst_channel"] == "chat" and bool(row["significant"])
    found = voc.analyze(demo_data, personas=personas, text=False, n_boot=20).findings()
    metrics = {f.metric for f in found}
    assert {"nps", "csat", "channel_pain_point", "advocacy_reach"} <= metrics
    pain = next(f for f in found if f.metric == "channel_pain_point")
    assert "support_heavy" in pain.sentence and "chat" in pain.sentence


def test_channel_switching_by_persona_and_as_of() -> None:
    ev = events(
        [
            ("A", 0, "support_contact", "chat", "delivery"),
            ("A", 3, "support_contact", "phone", "delivery"),
            ("B", 0, "support_contact", "chat", "delivery"),
            ("B", 5, "support_contact", "phone", "delivery"),  # after as_of below
        ]
    )
    data = cxkit.load({"events": ev})
    personas = pd.Series({"A": "p", "B": "q"})
    out = voc.channel_switching(data, personas=personas).set_index(["persona", "touchpoint"])
    assert out.loc[("p", "(all)"), "switchers"] == 1
    assert out.loc[("q", "(all)"), "switchers"] == 1
    cut = voc.channel_switching(data, as_of="2024-03-04").set_index("touchpoint")
    assert cut.loc["(all)", "switchers"] == 1  # B's second contact on 6 March is not seen
