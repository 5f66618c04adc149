"""Every rule the executive summary states is the rule it applies (issue 21, item 1).

The recommended-focus rules are recomputed here from the published scorecard's own
columns (``latest_nps``, ``churn_probability``, ``clv_52w``) and the raw events, without
the summary's rule code, and must give exactly the labels the scorecard carries; the
summary page must state every rule, with the thresholds actually used and the count it
got (0 and why, when nobody matches). Reuses the session's ``cxkit report`` run on the
2,000-customer demo (``report_run`` in conftest.py).
"""

from __future__ import annotations

import html
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import cxkit
from cxkit import churn, privacy, summary

RULE_ORDER = ["service recovery", "win back", "ask for advocacy", "nurture"]


def _expected_focus(card: pd.DataFrame, referred: pd.Series) -> tuple[np.ndarray, float]:
    """The stated rules, written out again: first match wins."""
    nps = pd.to_numeric(card["latest_nps"], errors="coerce")
    p = pd.to_numeric(card["churn_probability"], errors="coerce")
    clv = pd.to_numeric(card["clv_52w"], errors="coerce")
    median = float(np.median(clv.dropna().to_numpy()))
    detractor = (nps <= 6).fillna(False).to_numpy(bool)
    win_back = ((p >= 0.5) & (clv >= median)).fillna(False).to_numpy(bool)
    advocacy = ((nps >= 9) & (p < 0.5)).fillna(False).to_numpy(bool) & ~referred.to_numpy(bool)
    labels = np.select(
        [detractor, win_back, advocacy],
        ["service recovery", "win back", "ask for advocacy"],
        default="nurture",
    )
    return labels, median


def _focus_rows(page: str) -> dict[str, list[str]]:
    """The focus table's rows on the summary page: focus -> its cells (text)."""
    rows: dict[str, list[str]] = {}
    for tr in re.findall(r"<tr>(.*?)</tr>", page, flags=re.S):
        cells = [
            " ".join(html.unescape(re.sub(r"<[^>]+>", " ", c)).split())
            for c in re.findall(r"<td[^>]*>(.*?)</td>", tr, flags=re.S)
        ]
        if (
            len(cells) >= 4
            and cells[0] in RULE_ORDER
            and cells[1].startswith(("customers with", "everyone"))
        ):
            rows[cells[0]] = cells
    return rows


@pytest.fixture(scope="module")
def published(report_run: dict[str, Any], hostile_demo: Path) -> dict[str, Any]:
    out: Path = report_run["out"]
    card = pd.read_parquet(out / "scores.parquet")
    key = privacy.key_file(out).read_text().strip()  # the published IDs are pseudonyms
    events = pd.read_parquet(hostile_demo / "events.parquet")
    referrers = set(
        privacy.pseudonymize(events.loc[events.event == "referral", "customer_id"], key)
    )
    referred = card["customer_id"].isin(referrers)
    return {"out": out, "card": card, "referred": referred}


@pytest.mark.slow
def test_applied_focus_is_the_stated_rule_recomputed(published: dict[str, Any]) -> None:
    card = published["card"]
    expected, _ = _expected_focus(card, published["referred"])
    got = card["recommended_focus"].astype(str).to_numpy()
    wrong = card.loc[got != expected, ["customer_id", "churn_probability", "clv_52w"]]
    assert (got == expected).all(), wrong.head(10)
    # the referral flag the rule reads is the raw referral events, nothing else
    assert card["has_referred"].astype(bool).tolist() == published["referred"].tolist()
    # the rules are not vacuous on the demo: each labels someone
    assert set(got) == set(RULE_ORDER)


@pytest.mark.slow
def test_summary_states_every_rule_with_the_thresholds_used(published: dict[str, Any]) -> None:
    card = published["card"]
    _, median = _expected_focus(card, published["referred"])
    page = (published["out"] / "executive_summary.html").read_text(encoding="utf-8")
    rows = _focus_rows(page)
    assert list(rows) == RULE_ORDER  # every rule, in the order applied
    counts = card["recommended_focus"].value_counts()
    for focus, cells in rows.items():
        assert cells[2] == f"{int(counts.get(focus, 0)):,}", (focus, cells)
    assert "0–6" in rows["service recovery"][1]
    win_back = rows["win back"][1]
    assert "50%" in win_back and f"{median:,.2f}" in win_back and "52-week CLV" in win_back
    advocacy = rows["ask for advocacy"][1]
    assert "9–10" in advocacy and "below 50%" in advocacy and "no referral" in advocacy
    assert rows["nurture"][1] == "everyone else"


@pytest.mark.slow
def test_advocacy_audience_is_the_voc_reports_promoters_not_referred(
    published: dict[str, Any],
) -> None:
    card = published["card"]
    voc_page = (published["out"] / "voice_of_customer.html").read_text(encoding="utf-8")
    m = re.search(r"([\d,]+) promoters have not referred anyone yet", html.unescape(voc_page))
    assert m, "the VoC report states how many promoters have not referred anyone"
    promoters = pd.to_numeric(card["latest_nps"], errors="coerce") >= 9
    not_referred = promoters & ~card["has_referred"].astype(bool)
    assert int(not_referred.sum()) == int(m.group(1).replace(",", ""))


def test_a_rule_nobody_meets_is_stated_with_zero_and_why() -> None:
    card = pd.DataFrame(
        {
            "latest_nps": pd.array([10, 10, 3, None], dtype="Int64"),
            "nps_group": pd.array(["promoter", "promoter", "detractor", None], dtype="string"),
            "churn_probability": [0.2, 0.3, 0.9, 0.9],
            "clv_52w": [10.0, 20.0, 30.0, 5.0],
            "has_referred": [True, True, False, False],
        }
    )
    card["recommended_focus"] = summary.recommend_focus(card)
    table = summary.focus_table(card).set_index("focus")
    assert list(table.index) == RULE_ORDER
    assert table.loc["ask for advocacy", "customers"] == 0
    assert table.loc["ask for advocacy", "note"] == (
        "the 2 customers with a latest NPS answer of 9–10 (promoter) and a churn "
        "probability below 50% all have referred someone already"
    )
    # the one customer with a high churn risk and CLV above the median (15) is a detractor
    assert table.loc["win back", "customers"] == 0
    assert table.loc["win back", "note"] == (
        "the one customer who meets it is under an earlier rule (service recovery)"
    )
    assert "(15.00)" in table.loc["win back", "rule"]
    assert table.loc[["service recovery", "nurture"], "customers"].tolist() == [1, 3]
    assert (table.loc[["service recovery", "nurture"], "note"] == "").all()


def test_rules_without_their_data_are_not_available_and_never_applied() -> None:
    # orders only: no NPS answers, no referral events
    card = pd.DataFrame(
        {
            "latest_nps": pd.array([None, None, None], dtype="Int64"),
            "nps_group": pd.array([None, None, None], dtype="string"),
            "churn_probability": [0.9, 0.6, 0.1],
            "clv_52w": [3.0, 1.0, 2.0],
            "has_referred": [False, False, False],
        }
    )
    labels = summary.recommend_focus(card)
    assert labels.tolist() == ["win back", "nurture", "nurture"]
    table = summary.focus_table(card.assign(recommended_focus=labels)).set_index("focus")
    needs = "not available: this needs NPS answers (table 'responses' with survey 'nps')"
    assert table.loc["service recovery", "note"] == needs
    assert table.loc["ask for advocacy", "note"] == needs
    assert table["customers"].tolist() == [0, 1, 0, 2]
    # without CLV the win-back rule says so, and labels no one
    no_clv = card.assign(clv_52w=np.nan)
    assert summary.recommend_focus(no_clv).eq("nurture").all()
    note = summary.focus_table(no_clv).set_index("focus").loc["win back", "note"]
    assert note == "not available: this needs CLV (the BG/NBD and Gamma-Gamma models on orders)"


def test_every_stated_threshold_is_the_one_the_rules_compare_with() -> None:
    clv = pd.Series([1.0, 2.0, 7.0, np.nan, 40.0])
    card = pd.DataFrame({"clv_52w": clv, "churn_probability": [0.5, 0.49, 0.5, 0.9, 0.5]})
    th = summary.focus_thresholds(card)
    assert th.churn_min == 0.5 == summary.churn.BAND_THRESHOLDS[0]
    assert th.clv_median == 4.5
    text = summary.FOCUS_RULES[1].describe(th)
    assert "50%" in text and "(4.50)" in text
    # the boundary is applied as stated: "50% or more", "at or above the median"
    assert summary.recommend_focus(card).tolist() == [
        "nurture",
        "nurture",
        "win back",
        "nurture",
        "win back",
    ]


@pytest.mark.slow
def test_the_summary_names_whose_churn_scores_the_scorecard_holds(
    published: dict[str, Any], hostile_demo: Path
) -> None:
    res = churn.analyze(cxkit.load(hostile_demo), random_state=0)  # the churn report's
    page = (published["out"] / "executive_summary.html").read_text(encoding="utf-8")
    text = " ".join(html.unescape(re.sub(r"<[^>]+>", " ", page)).split())
    if res.scores_from == "model":
        said = f"churn_probability comes from the churn report's model ({res.scores_label})"
    else:
        said = f"churn_probability comes from {res.scores_label}, the baseline that beat"
    assert said in text
    assert "calibrated churn model" not in text


@pytest.mark.slow
def test_the_value_gap_rests_on_the_detractors_the_scorecard_labels(
    published: dict[str, Any],
) -> None:
    # "service recovery" customers are the detractors; the value gap states how many of
    # them have a CLV, and the scorecard must hold exactly that many
    card = published["card"]
    page = html.unescape((published["out"] / "voice_of_customer.html").read_text("utf-8"))
    m = re.search(r"A detractor is worth .*?n = ([\d,]+) detractors, ([\d,]+) promoters", page)
    assert m, "the VoC report states the detractor − promoter CLV gap"
    nps = pd.to_numeric(card["latest_nps"], errors="coerce")
    has_clv = card["clv_52w"].notna()
    assert int(m.group(1).replace(",", "")) == int(((nps <= 6) & has_clv).sum())
    assert int(m.group(2).replace(",", "")) == int(((nps >= 9) & has_clv).sum())
    service = card["recommended_focus"] == "service recovery"
    assert int((service & has_clv).sum()) == int(m.group(1).replace(",", ""))
