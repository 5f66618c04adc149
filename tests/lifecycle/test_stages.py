"""Tests of cxkit.lifecycle.stages: stage maps, stage times and the current stage."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from cxkit import lifecycle as lc
from cxkit.errors import UsageError
from tests.lifecycle.helpers import T0, events, mini_data
from tests.lifecycle.helpers import ev_frame as _ev


def test_min_rating_restricts_reviews():
    ev = _ev(
        [("a", "site_visit", 0), ("a", "review", 1), ("b", "site_visit", 0), ("b", "review", 1)]
    )
    ev["rating"] = [None, 5, None, 2]
    smap = {"aware": {"events": "any"}, "advocacy": {"events": ["review"], "min_rating": 4}}
    s = lc.stages(events(ev), smap, monotone=False).set_index("customer_id")
    assert s.advocacy_at.notna().tolist() == [True, False]


def test_stages_monotone_and_current_stage():
    s = lc.stages(mini_data(), as_of="2024-03-01").set_index("customer_id")
    assert s.current_stage.to_dict() == {
        "a": "advocacy", "b": "advocacy", "c": "awareness", "d": "purchase"
    }  # fmt: skip
    # b: NPS 9 on day 8 but no repeat order -> retention filled at the advocacy time
    assert s.loc["b", "retention_at"] == T0 + pd.Timedelta(days=8)
    # d: purchase without consideration -> consideration reached at the purchase time
    assert s.loc["d", "consideration_at"] == T0 + pd.Timedelta(days=35.5)
    assert s.loc["a", "retention_at"] == T0 + pd.Timedelta(days=33)
    raw = lc.stages(mini_data(), monotone=False).set_index("customer_id")
    assert pd.isna(raw.loc["b", "retention_at"]) and pd.isna(raw.loc["d", "consideration_at"])
    early = lc.stages(mini_data(), as_of="2024-01-06").set_index("customer_id")
    assert early.current_stage.to_dict() == {"a": "purchase", "b": "awareness"}


def test_stage_map_yaml_and_errors(tmp_path: Path):
    p = tmp_path / "stages.yml"
    p.write_text("stages:\n  seen: {events: any}\n  bought: {orders: any}\n")
    s = lc.stages(mini_data(), p)
    assert list(s.columns) == ["customer_id", "seen_at", "bought_at", "current_stage"]
    with pytest.raises(UsageError, match="unknown rule key"):
        lc.load_stage_map({"x": {"event": ["a"]}})
    with pytest.raises(UsageError, match="orders must be"):
        lc.load_stage_map({"x": {"orders": "second"}})


def test_describe_rule_says_what_each_rule_counts():
    from cxkit.lifecycle import DEFAULT_STAGES, describe_rule

    assert describe_rule(DEFAULT_STAGES["awareness"]) == "any event or an order"
    assert describe_rule({"orders": "first"}) == "a first order"
    assert describe_rule({"events": ["review"], "min_rating": 4}) == (
        "a review event (rated 4 or more)"
    )
    assert describe_rule({"responses": {"survey": "csat", "min_score": 4}}) == (
        "a CSAT answer of 4 or more"
    )


def test_stage_counts_ladder_and_own_rule():
    import pandas as pd

    import cxkit
    from cxkit.lifecycle import stage_counts

    ev = pd.DataFrame(
        {
            "customer_id": ["a", "a", "b"],
            "event": ["site_visit", "review", "site_visit"],
            "ts": pd.to_datetime(["2024-01-01", "2024-01-05", "2024-01-02"]),
        }
    )
    od = pd.DataFrame(
        {
            "order_id": ["1"],
            "customer_id": ["b"],
            "ts": pd.to_datetime(["2024-01-03"]),
            "amount": [5.0],
        }
    )
    data = cxkit.load({"events": ev, "orders": od})
    own = dict(zip(*stage_counts(data, monotone=False).to_dict("list").values(), strict=True))
    ladder = dict(zip(*stage_counts(data).to_dict("list").values(), strict=True))
    # a's review is advocacy: on the ladder a also reached consideration, purchase, retention
    assert own == {"awareness": 2, "consideration": 0, "purchase": 1, "retention": 0, "advocacy": 1}
    assert ladder == {
        "awareness": 2,
        "consideration": 2,
        "purchase": 2,
        "retention": 1,
        "advocacy": 1,
    }
