"""Tests for cxkit.voc.text: comments, planted themes, weighted log-odds and sentiment."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import pytest

import cxkit
from cxkit import voc
from cxkit.errors import NotAvailableError
from tests.voc.helpers import THEME_SENTENCES, XSS, comment_frame, demo_truth


def test_comments_and_nps_groups() -> None:
    c = voc.comments(cxkit.load({"responses": comment_frame()}))
    assert len(c) == 37
    assert set(c["nps_group"]) == {"promoter", "detractor"}
    assert XSS in set(c["comment"])  # kept verbatim in data; escaped only when shown


def test_themes_recover_planted_groups() -> None:
    th = voc.themes(cxkit.load({"responses": comment_frame()}), n_themes=3, min_df=2)
    assert len(th.topics) == 3
    for theme, phrases in THEME_SENTENCES.items():
        assigned = th.comments.loc[th.comments["comment"].isin(phrases), "theme"]
        assert assigned.nunique() == 1, theme  # each planted group lands in one theme
        top = th.topics.loc[assigned.iloc[0], "top_terms"]
        assert theme in top
    share = voc.theme_share(th, by="nps_group")
    sums = share.groupby("group")["share"].sum()
    assert (sums <= 1 + 1e-9).all()
    rep = voc.representative_comments(th, n=2)
    assert rep.groupby("theme").size().max() <= 2
    over_time = voc.theme_share(th, by="period", freq="week")
    assert over_time["n"].sum() == (th.comments["theme"] >= 0).sum()
    with pytest.raises(NotAvailableError, match="at least 60 comments"):
        voc.themes(cxkit.load({"responses": comment_frame()}))


def test_distinctive_terms_weighted_log_odds_hand_worked() -> None:
    df = pd.DataFrame(
        {
            "comment": ["fast fast", "fast easy", "late", "late slow", "easy late"],
            "nps_group": ["promoter", "promoter", "detractor", "detractor", "detractor"],
        }
    )
    out = voc.distinctive_terms(df, top=5, prior_strength=10.0, min_count=1)
    fast = out.set_index("term").loc["fast"]
    # counts: promoter fast 3 / 4 words; detractor fast 0 / 5 words; background fast 3 / 9
    alpha = 10.0 * 3 / 9
    delta = math.log((3 + alpha) / (4 + 10 - 3 - alpha)) - math.log(alpha / (5 + 10 - alpha))
    z = delta / math.sqrt(1 / (3 + alpha) + 1 / alpha)
    assert fast["log_odds"] == pytest.approx(delta)
    assert fast["z"] == pytest.approx(z)
    assert fast["favours"] == "promoter"
    assert out.set_index("term").loc["late", "favours"] == "detractor"


def test_distinctive_terms_without_a_word_on_each_side_is_not_available() -> None:
    # issue 22: a handful of comments gave an empty table and the report crashed
    # (IndexError) picking the top word of each side
    df = pd.DataFrame(
        {
            "comment": ["fast fast", "fast easy", "late", "slow", "rude"],
            "nps_group": ["promoter", "promoter", "detractor", "detractor", "detractor"],
        }
    )
    msg = (
        r"^Distinctive terms is not available: this needs words used at least 3 times that "
        r"set promoters and detractors apart \(the 5 comments have none on one side\)$"
    )
    with pytest.raises(NotAvailableError, match=msg):
        voc.distinctive_terms(df, min_count=3)
    with pytest.raises(NotAvailableError, match="none on either side"):
        voc.distinctive_terms(df, min_count=4)
    assert voc.distinctive_terms(df, min_count=1)["favours"].nunique() == 2


def test_sentiment_with_customer_service_lexicon() -> None:
    s = voc.sentiment_scores(["The parcel was late", "Support was rude", "Quick and smooth"])
    assert s[0] < -0.05 and s[1] < -0.05 and s[2] > 0.05
    assert voc.CS_LEXICON["late"] < 0  # plain VADER scores "late" neutral
    scored = voc.comment_sentiment(voc.comments(cxkit.load({"responses": comment_frame()})))
    by = voc.sentiment_by(scored).set_index("nps_group")
    assert by.loc["promoter", "sentiment_mean"] > by.loc["detractor", "sentiment_mean"]


def test_demo_planted_themes_recovered(demo_dir: Path, demo_data: cxkit.CXData) -> None:
    _, truth = demo_truth(demo_dir)
    th = voc.themes(demo_data)
    tops = [t.split(", ") for t in th.topics["top_terms"]]
    planted = {name: set(t["keywords"]) for name, t in truth["themes"].items()}
    for name in planted:
        dominated = False
        for top in tops:
            counts = {other: sum(w in k for w in top[:8]) for other, k in planted.items()}
            if counts[name] >= 3 and counts[name] == max(counts.values()):
                dominated = True
        assert dominated, (name, tops)
    # detractor themes are more common among detractors than promoters
    share = voc.theme_share(th)
    support = share[share["label"].str.contains("rude|support")]
    by = support.groupby("group")["share"].sum()
    assert by["detractor"] > by["promoter"]


def test_text_functions_take_data_and_cut_at_as_of() -> None:
    data = cxkit.load({"responses": comment_frame()})
    every = voc.comments(data)
    first = voc.comments(data, as_of="2024-03-02")  # days 0 and 1, whole of 2 March
    assert len(first) == 6 and (first["ts"] <= pd.Timestamp("2024-03-02 23:59:59")).all()
    assert len(voc.comments(data.upto("2024-03-02"))) == 6
    th = voc.themes(data, n_themes=3, min_df=2)
    pd.testing.assert_frame_equal(th.comments[every.columns], every)
    terms = voc.distinctive_terms(th.comments, top=3, min_count=1)
    assert set(terms["favours"]) == {"promoter", "detractor"}
    with pytest.raises(NotAvailableError, match=r"column\(s\) 'comment'"):
        voc.comments(cxkit.load({"responses": comment_frame().drop(columns="comment")}))
