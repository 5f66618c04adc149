"""Tests for cxkit.voc.advocacy: promoters, referrers, reviewers and the advocacy reach."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

import cxkit
from cxkit import voc
from cxkit.errors import NotAvailableError
from tests.voc.helpers import demo_truth, events, responses

# --------------------------------------------------------------------------------------
# advocacy
# --------------------------------------------------------------------------------------


def test_advocacy_hand_worked() -> None:
    r = responses(
        [
            ("A", 0, "nps", 10, "web", "x", None),
            ("B", 0, "nps", 9, "web", "x", None),
            ("C", 0, "nps", 10, "web", "x", None),
            ("C", 5, "nps", 4, "web", "x", None),  # latest answer: no longer a promoter
            ("D", 0, "nps", 7, "web", "x", None),
        ]
    )
    ev = events([("A", 2, "referral", "web", "x"), ("E", 1, "review", "app", "x")])
    cust = pd.DataFrame({"customer_id": list("ABCDEF")})
    data = cxkit.load({"responses": r, "events": ev, "customers": cust})
    adv = voc.advocacy(data).set_index(["measure", "base"])
    assert adv.loc[("promoters (latest NPS 9-10)", "NPS respondents"), "customers"] == 2
    assert adv.loc[("promoters (latest NPS 9-10)", "NPS respondents"), "base_n"] == 4
    assert adv.loc[("advocacy reach", "all customers"), "customers"] == 3  # A, B, E
    assert adv.loc[("advocacy reach", "all customers"), "base_n"] == 6
    assert adv.loc[("promoters who referred", "promoters"), "share"] == pytest.approx(0.5)
    lst = voc.promoters_not_referred(data)
    assert list(lst["customer_id"]) == ["B"]


def test_demo_advocacy_matches_planted_advocates(demo_dir: Path, demo_data: cxkit.CXData) -> None:
    truth, _ = demo_truth(demo_dir)
    adv = voc.advocacy(demo_data).set_index(["measure", "base"])
    reach = adv.loc[("advocacy reach", "all customers"), "customers"]
    # every planted advocate refers or reviews; non-advocates never give 9-10
    assert reach == int(truth["advocate"].fillna(False).astype(bool).sum())


def test_advocacy_from_events_only_and_as_of() -> None:
    ev = events(
        [
            ("A", 0, "referral", "web", "x"),
            ("B", 1, "site_visit", "web", "x"),
            ("C", 9, "review", "app", "x"),  # after as_of below
        ]
    )
    data = cxkit.load({"events": ev})
    adv = voc.advocacy(data, as_of="2024-03-02").set_index(["measure", "base"])
    assert "promoters (latest NPS 9-10)" not in adv.index.get_level_values("measure")
    assert adv.loc[("advocacy reach", "all customers"), "customers"] == 1
    assert adv.loc[("advocacy reach", "all customers"), "base_n"] == 2
    with pytest.raises(NotAvailableError, match="needs the table 'responses'"):
        voc.promoters_not_referred(data)
