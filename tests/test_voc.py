"""Tests for cxkit.voc: hand-worked scores, interval coverage, relative weights vs exact
Shapley, text analytics, omnichannel, advocacy, escaping, and the planted demo truth."""

from __future__ import annotations

import itertools
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import cxkit
from cxkit import stats, voc
from cxkit.errors import NotAvailableError, UsageError

T0 = pd.Timestamp("2024-03-01")


def _responses(rows: list[tuple]) -> pd.DataFrame:
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


# --------------------------------------------------------------------------------------
# scores, hand-worked
# --------------------------------------------------------------------------------------

NPS_SCORES = [10, 9, 9, 8, 7, 6, 5, 0, 10, 3]  # 4 promoters, 2 passives, 4 detractors


def _nps_frame() -> pd.DataFrame:
    rows = [
        (f"C{i}", i, "nps", s, "web" if i < 6 else "app", "delivery", None)
        for i, s in enumerate(NPS_SCORES)
    ]
    rows.append(("C0", 1, "nps", 11, "web", "delivery", None))  # out of range: ignored
    rows.append(("C1", 1, "csat", 2, "web", "delivery", None))  # other survey: ignored
    return _responses(rows)


def test_nps_hand_worked() -> None:
    out = voc.nps(_nps_frame())
    row = out.iloc[0]
    assert (row["n"], row["promoters"], row["passives"], row["detractors"]) == (10, 4, 2, 4)
    assert row["nps"] == pytest.approx(0.0)
    _, lo, hi = stats.nps_ci(4, 4, 10)
    assert (row["nps_low"], row["nps_high"]) == (pytest.approx(lo), pytest.approx(hi))
    assert bool(row["small_n"])


def test_nps_by_channel_hand_worked() -> None:
    out = voc.nps(_nps_frame(), by="channel").set_index("channel")
    # web: 10, 9, 9, 8, 7, 6 -> 3 promoters, 1 detractor of 6 -> +33.3
    assert out.loc["web", "n"] == 6
    assert out.loc["web", "nps"] == pytest.approx(100 * 2 / 6)
    # app: 5, 0, 10, 3 -> 1 promoter, 3 detractors of 4 -> -50
    assert out.loc["app", "nps"] == pytest.approx(-50.0)
    assert out["small_n"].all()


def test_nps_by_segment_and_persona() -> None:
    r = _nps_frame()
    cust = pd.DataFrame(
        {"customer_id": [f"C{i}" for i in range(10)], "region": ["n"] * 5 + ["s"] * 5}
    )
    data = cxkit.load({"responses": r, "customers": cust})
    by_region = voc.nps(data, by="region").set_index("region")
    # n: 10, 9, 9, 8, 7 -> 3 promoters, 0 detractors -> +60
    assert by_region.loc["n", "nps"] == pytest.approx(60.0)
    personas = pd.Series(["a"] * 5 + ["b"] * 5, index=[f"C{i}" for i in range(10)])
    by_persona = voc.nps(data, by="persona", personas=personas).set_index("persona")
    assert by_persona.loc["a", "nps"] == pytest.approx(60.0)
    frame = personas.rename("persona").rename_axis("customer_id").reset_index()
    again = voc.nps(data, by=["persona", "channel"], personas=frame)
    assert again["n"].sum() == 10
    with pytest.raises(NotAvailableError, match="persona labels"):
        voc.nps(data, by="persona")
    with pytest.raises(NotAvailableError, match="'plan'"):
        voc.nps(data, by="plan")


def test_nps_by_period() -> None:
    out = voc.nps(_nps_frame(), by="period", freq="week")
    assert out["n"].sum() == 10
    assert list(out["period"]) == sorted(out["period"])
    with pytest.raises(UsageError, match="freq must be one of"):
        voc.nps(_nps_frame(), by="period", freq="fortnight")


def test_nps_compare_wraps_stats() -> None:
    a = {"promoters": 60, "detractors": 10, "n": 100}
    b = {"promoters": 40, "detractors": 30, "n": 100}
    assert voc.nps_compare(a, b) == stats.nps_compare(60, 10, 100, 40, 30, 100)


def test_csat_hand_worked() -> None:
    rows = [
        (f"C{i}", i, "csat", s, "web", "delivery", None) for i, s in enumerate([5, 4, 3, 2, 1, 5])
    ]
    out = voc.csat(_responses(rows)).iloc[0]
    assert (out["n"], out["satisfied"], out["csat_share"]) == (6, 3, 0.5)
    lo, hi = stats.wilson_ci(3, 6)
    assert (out["csat_low"], out["csat_high"]) == (pytest.approx(lo), pytest.approx(hi))
    assert out["csat_mean"] == pytest.approx(20 / 6)
    top1 = voc.csat(_responses(rows), top_box=5).iloc[0]
    assert top1["satisfied"] == 2


def test_ces_hand_worked_and_direction() -> None:
    rows = [(f"C{i}", i, "ces", s, "web", "support", None) for i, s in enumerate([7, 5, 3])]
    out = voc.ces(_responses(rows)).iloc[0]
    assert out["ces_mean"] == pytest.approx(5.0)
    assert out["ces_sd"] == pytest.approx(2.0)
    half = 4.302652729911275 * 2 / math.sqrt(3)  # t(0.975, 2) * sd / sqrt(n)
    assert out["ces_low"] == pytest.approx(5 - half)
    assert out["ces_high"] == pytest.approx(5 + half)
    flipped = voc.ces(_responses(rows), higher_is_easier=False).iloc[0]
    assert flipped["ces_mean"] == pytest.approx(3.0)


def test_score_summary_change_vs_previous_period() -> None:
    rows = [(f"A{i}", -100 + i, "nps", 0, "web", "x", None) for i in range(40)]
    rows += [(f"B{i}", -30 + i % 20, "nps", 10, "web", "x", None) for i in range(40)]
    rows += [
        (f"D{i}", -30 + i % 20, "csat", 5 if i % 2 else 1, "web", "x", None) for i in range(40)
    ]
    summ = voc.score_summary(_responses(rows), days=60, as_of=T0).set_index("metric")
    assert summ.loc["NPS", "value"] == pytest.approx(100.0)
    assert summ.loc["NPS", "previous"] == pytest.approx(-100.0)
    assert summ.loc["NPS", "change"] == pytest.approx(200.0)
    assert summ.loc["NPS", "p_value"] < 0.001
    assert summ.loc["CSAT", "value"] == pytest.approx(50.0)
    assert np.isnan(summ.loc["CSAT", "change"])  # no previous-period CSAT
    assert "CES" not in summ.index


def test_nps_trend_marks_significant_changes() -> None:
    rows = []
    for m, (score, k) in enumerate([(10, 60), (10, 60), (0, 60), (10, 5)]):
        for i in range(k):
            rows.append((f"C{m}_{i}", 31 * m + i % 25, "nps", score, "web", "x", None))
    tr = voc.nps_trend(_responses(rows))
    assert list(tr["significant"]) == [False, False, True, False]  # last month is small
    assert tr["change_points"].iloc[2] == pytest.approx(-200.0)
    assert bool(tr["small_n"].iloc[3])
    fig = voc.plot_nps_trend(tr)
    assert len(fig.data) >= 3


@settings(max_examples=10, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from(["web", "app", "chat"]), st.integers(0, 10)),
        min_size=1,
        max_size=60,
    )
)
def test_grouped_nps_invariants(answers: list[tuple[str, int]]) -> None:
    rows = [(f"C{i}", i % 40, "nps", s, ch, "x", None) for i, (ch, s) in enumerate(answers)]
    data = cxkit.load({"responses": _responses(rows)})
    overall = voc.nps(data).iloc[0]
    grouped = voc.nps(data, by="channel")
    for col in ("n", "promoters", "passives", "detractors"):
        assert grouped[col].sum() == overall[col]
    for df in (grouped, overall.to_frame().T):
        assert (df["nps_low"] <= df["nps_high"]).all()
        assert ((df["nps_low"] >= -100) & (df["nps_high"] <= 100)).all()
        assert (df["small_n"] == (df["n"] < stats.MIN_N)).all()


# --------------------------------------------------------------------------------------
# interval coverage by simulation
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("n", [10, 30, 100, 300, 1000])
def test_adjusted_wald_coverage(n: int) -> None:
    rng = np.random.default_rng(2024 + n)
    draws = 4000
    for prom, det in [(0.2, 0.3), (0.5, 0.2), (0.3, 0.3), (0.7, 0.1), (0.1, 0.6)]:
        counts = rng.multinomial(n, [prom, 1 - prom - det, det], size=draws)
        _, lo, hi = stats.nps_ci(counts[:, 0], counts[:, 2], np.full(draws, n))
        truth = 100 * (prom - det)
        coverage = float(np.mean((lo <= truth) & (truth <= hi)))
        assert 0.93 <= coverage <= 0.97, (n, prom, det, coverage)


# --------------------------------------------------------------------------------------
# key drivers
# --------------------------------------------------------------------------------------


def _r2_subset(c: np.ndarray, subset: tuple[int, ...]) -> float:
    if not subset:
        return 0.0
    idx = list(subset)
    rxx = c[np.ix_(idx, idx)]
    rxy = c[idx, -1]
    return float(rxy @ np.linalg.solve(rxx, rxy))


def _exact_shapley(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Exact Shapley (LMG) decomposition of R² over all subsets of predictors."""
    p = x.shape[1]
    c = np.corrcoef(np.column_stack([x, y]), rowvar=False)
    out = np.zeros(p)
    for j in range(p):
        others = [k for k in range(p) if k != j]
        for size in range(p):
            w = math.factorial(size) * math.factorial(p - size - 1) / math.factorial(p)
            for s in itertools.combinations(others, size):
                out[j] += w * (_r2_subset(c, tuple(sorted((*s, j)))) - _r2_subset(c, s))
    return out


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_relative_weights_match_exact_shapley(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n, p = 3000, 4
    cov = 0.3 + 0.7 * np.eye(p)  # moderately correlated predictors
    x = rng.multivariate_normal(np.zeros(p), cov, size=n)
    y = x @ np.array([0.6, 0.3, 0.1, 0.0]) + rng.normal(size=n)
    w, r2 = voc.relative_weights(x, y)
    shap = _exact_shapley(x, y)
    assert r2 == pytest.approx(shap.sum(), abs=1e-9)
    np.testing.assert_allclose(w, shap, atol=0.01)


def test_relative_weights_logistic_sums_to_r2_and_ranks() -> None:
    rng = np.random.default_rng(5)
    x = rng.normal(size=(4000, 3))
    logit = 1.5 * x[:, 0] + 0.5 * x[:, 1]
    y = (rng.random(4000) < 1 / (1 + np.exp(-logit))).astype(float)
    w, r2 = voc.relative_weights_logistic(x, y)
    assert w.sum() == pytest.approx(r2)
    assert w[0] > w[1] > w[2]
    assert w[2] < 0.01


def _driver_frame(n: int = 400, seed: int = 3) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    a = rng.integers(1, 6, n).astype(float)
    b = rng.integers(1, 6, n).astype(float)
    c = rng.integers(1, 8, n).astype(float)
    nps_score = np.clip(np.round(2 * a + 0.3 * b + rng.normal(0, 1, n) - 2), 0, 10)
    df = pd.DataFrame(
        {
            "customer_id": [f"C{i}" for i in range(n)],
            "nps_score": nps_score,
            "promoter": nps_score >= 9,
            "csat_delivery": a,
            "csat_support": b,
            "ces_support": c,
        }
    )
    df.loc[df.index[::7], "csat_support"] = np.nan  # some customers did not answer
    return df


def test_key_drivers_rank_planted_driver_first_and_are_seeded() -> None:
    df = _driver_frame()
    kd = voc.key_drivers(df, n_boot=100, random_state=1)
    assert kd["driver"].iloc[0] == "csat_delivery"
    assert kd["importance_pct"].sum() == pytest.approx(100.0)
    assert kd["weight"].sum() == pytest.approx(kd.attrs["r2"])
    assert (kd["weight_low"] <= kd["weight"]).all() and (kd["weight"] <= kd["weight_high"]).all()
    assert kd.loc[kd["driver"] == "csat_support", "n_observed"].iloc[0] == 400 - len(df.index[::7])
    again = voc.key_drivers(df, n_boot=100, random_state=1)
    pd.testing.assert_frame_equal(kd, again)
    lg = voc.key_drivers(df, method="logistic", n_boot=50)
    assert lg["driver"].iloc[0] == "csat_delivery"
    perf = kd.set_index("driver")["performance_0_100"]
    assert perf["csat_delivery"] == pytest.approx(100 * (df["csat_delivery"].mean() - 1) / 4)
    fig = voc.plot_drivers_quadrant(kd)
    assert "csat_delivery" in fig.layout.title.text
    with pytest.raises(UsageError, match="method must be 'linear' or 'logistic'"):
        voc.key_drivers(df, method="tree")
    with pytest.raises(NotAvailableError, match="at least 30 customers"):
        voc.key_drivers(df.head(20))


def test_driver_table_hand_worked() -> None:
    rows = [
        ("A", 0, "nps", 3, "web", "x", None),
        ("A", 5, "nps", 10, "web", "x", None),  # latest NPS wins
        ("A", 1, "csat", 2, "web", "delivery", None),
        ("A", 2, "csat", 4, "web", "delivery", None),  # mean 3
        ("A", 2, "ces", 6, "web", "support", None),
        ("B", 1, "nps", 5, "web", "x", None),
        ("B", 1, "csat", 5, "web", "support", None),
        ("C", 1, "csat", 1, "web", "support", None),  # no NPS: not a row
    ]
    dt = voc.driver_table(_responses(rows)).set_index("customer_id")
    assert list(dt.index) == ["A", "B"]
    assert dt.loc["A", "nps_score"] == 10 and bool(dt.loc["A", "promoter"])
    assert dt.loc["A", "csat_delivery"] == pytest.approx(3.0)
    assert dt.loc["A", "ces_support"] == pytest.approx(6.0)
    assert np.isnan(dt.loc["B", "csat_delivery"])
    assert dt.loc["B", "csat_support"] == pytest.approx(5.0)


# --------------------------------------------------------------------------------------
# text
# --------------------------------------------------------------------------------------

XSS = "<script>alert(1)</script><b>x</b>"

_THEME_SENTENCES = {
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


def _comment_frame() -> pd.DataFrame:
    rows = []
    i = 0
    for rep in range(12):
        for theme, phrases in _THEME_SENTENCES.items():
            score = 10 if theme == "easy" else 2
            rows.append((f"C{i}", rep, "nps", score, "web", "x", phrases[rep % 3]))
            i += 1
    rows.append(("CX", 3, "nps", 2, "web", "x", XSS))
    rows.append(("CY", 3, "csat", 5, "web", "x", "   "))  # blank: not a comment
    return _responses(rows)


def test_comments_and_nps_groups() -> None:
    c = voc.comments(_comment_frame())
    assert len(c) == 37
    assert set(c["nps_group"]) == {"promoter", "detractor"}
    assert XSS in set(c["comment"])  # kept verbatim in data; escaped only when shown


def test_themes_recover_planted_groups() -> None:
    th = voc.themes(_comment_frame(), n_themes=3, min_df=2)
    assert len(th.topics) == 3
    for theme, phrases in _THEME_SENTENCES.items():
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
        voc.themes(_comment_frame())


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


def test_sentiment_with_customer_service_lexicon() -> None:
    s = voc.sentiment_scores(["The parcel was late", "Support was rude", "Quick and smooth"])
    assert s[0] < -0.05 and s[1] < -0.05 and s[2] > 0.05
    assert voc.CS_LEXICON["late"] < 0  # plain VADER scores "late" neutral
    scored = voc.comment_sentiment(_comment_frame())
    by = voc.sentiment_by(scored).set_index("nps_group")
    assert by.loc["promoter", "sentiment_mean"] > by.loc["detractor", "sentiment_mean"]


# --------------------------------------------------------------------------------------
# omnichannel
# --------------------------------------------------------------------------------------


def test_channel_consistency_hand_worked() -> None:
    rows = [(f"A{i}", i, "csat", 5 if i < 32 else 1, "web", "delivery", None) for i in range(40)]
    rows += [(f"B{i}", i, "csat", 5 if i < 10 else 2, "chat", "delivery", None) for i in range(40)]
    rows += [(f"C{i}", i, "csat", 5, "phone", "delivery", None) for i in range(5)]  # small
    out = voc.channel_consistency(_responses(rows)).iloc[0]
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
    r = _responses(rows)
    personas = pd.Series({cid: cid[0] for cid in r["customer_id"]})
    pp = voc.channel_pain_points(r, personas=personas)
    assert pp["pain_point"].sum() == 1
    assert (pp.iloc[0]["persona"], pp.iloc[0]["channel"]) == ("b", "chat")


def _events(rows: list[tuple]) -> pd.DataFrame:
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


def test_channel_switching_hand_worked() -> None:
    ev = _events(
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


# --------------------------------------------------------------------------------------
# advocacy
# --------------------------------------------------------------------------------------


def test_advocacy_hand_worked() -> None:
    r = _responses(
        [
            ("A", 0, "nps", 10, "web", "x", None),
            ("B", 0, "nps", 9, "web", "x", None),
            ("C", 0, "nps", 10, "web", "x", None),
            ("C", 5, "nps", 4, "web", "x", None),  # latest answer: no longer a promoter
            ("D", 0, "nps", 7, "web", "x", None),
        ]
    )
    ev = _events([("A", 2, "referral", "web", "x"), ("E", 1, "review", "app", "x")])
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


def test_not_available_on_orders_only() -> None:
    orders = pd.DataFrame({"order_id": ["1"], "customer_id": ["A"], "ts": [T0], "amount": [10.0]})
    data = cxkit.load({"orders": orders})
    with pytest.raises(NotAvailableError, match="needs the table 'responses'"):
        voc.nps(data)
    with pytest.raises(NotAvailableError, match="table 'events'"):
        voc.channel_switching(data)
    assert voc.findings(data) == []


# --------------------------------------------------------------------------------------
# escaping: untrusted comments never reach HTML unescaped
# --------------------------------------------------------------------------------------


def test_every_display_helper_escapes_comments(monkeypatch: pytest.MonkeyPatch) -> None:
    th = voc.themes(_comment_frame(), n_themes=3, min_df=2)
    rep = voc.representative_comments(th, n=20)
    rep.loc[0, "comment"] = XSS
    frames = {
        "representative": rep,
        "theme_comments": th.comments,
        "comments": voc.comments(_comment_frame()),
        "themes": th.topics,
        "sentiment": voc.comment_sentiment(th),
        "labels_in_columns": pd.DataFrame({XSS: [1]}),
    }
    shown: list[str] = []
    import IPython.display

    monkeypatch.setattr(IPython.display, "display", lambda obj: shown.append(obj.to_html()))
    for name, df in frames.items():
        for text in (voc.style_table(df, caption=XSS).to_html(), None):
            if text is None:
                voc.show_table(df, caption=XSS)
                text = shown[-1]
            assert "<script>" not in text, name
            assert "<b>x</b>" not in text, name
        if XSS in set(df.astype(str).stack()) | set(df.columns):
            assert "&lt;script&gt;alert(1)&lt;/script&gt;&lt;b&gt;x&lt;/b&gt;" in text, name
    # plain display of a DataFrame is escaped by pandas too
    assert "<script>" not in rep.to_html()
    # plots: labels pass through html.escape
    share = voc.theme_share(th)
    share.loc[0, "label"] = XSS
    figs = [
        voc.plot_theme_share(share, title=XSS),
        voc.plot_distinctive_terms(
            pd.DataFrame({"term": [XSS], "z": [1.0], "count_a": [1], "count_b": [0]}), title=XSS
        ),
        voc.plot_scores(
            pd.DataFrame(
                {
                    "channel": [XSS],
                    "n": [5],
                    "small_n": [True],
                    "nps": [1.0],
                    "nps_low": [0.0],
                    "nps_high": [2.0],
                }
            ),
            x="channel",
            title=XSS,
        ),
    ]
    for fig in figs:
        assert "<script>" not in fig.to_json()
        assert "<b>x</b>" not in fig.to_json()


# --------------------------------------------------------------------------------------
# the planted demo truth (2,000-customer fixture)
# --------------------------------------------------------------------------------------


def _truth(demo_dir: Path) -> tuple[pd.DataFrame, dict]:
    return (
        pd.read_parquet(demo_dir / "_truth.parquet"),
        json.loads((demo_dir / "_truth.json").read_text()),
    )


def test_demo_planted_themes_recovered(demo_dir: Path, demo_data: cxkit.CXData) -> None:
    _, truth = _truth(demo_dir)
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


def test_demo_chat_pain_point_for_support_heavy(demo_dir: Path, demo_data: cxkit.CXData) -> None:
    truth, info = _truth(demo_dir)
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
    found = voc.findings(demo_data, personas=personas, text=False, n_boot=20)
    metrics = {f.metric for f in found}
    assert {"nps", "csat", "channel_pain_point", "advocacy_reach"} <= metrics
    pain = next(f for f in found if f.metric == "channel_pain_point")
    assert "support_heavy" in pain.sentence and "chat" in pain.sentence


def test_demo_advocacy_matches_planted_advocates(demo_dir: Path, demo_data: cxkit.CXData) -> None:
    truth, _ = _truth(demo_dir)
    adv = voc.advocacy(demo_data).set_index(["measure", "base"])
    reach = adv.loc[("advocacy reach", "all customers"), "customers"]
    # every planted advocate refers or reviews; non-advocates never give 9-10
    assert reach == int(truth["advocate"].fillna(False).astype(bool).sum())


# --------------------------------------------------------------------------------------
# the same numbers on PostgreSQL (backend-neutral ibis)
# --------------------------------------------------------------------------------------


def _engine_tables() -> dict[str, pd.DataFrame]:
    rows = [
        (f"C{i % 12}", i, s, sc, ch, tp, None)
        for i, (s, sc, ch, tp) in enumerate(
            [
                (s, sc, ch, tp)
                for s, sc in [("nps", 10), ("nps", 3), ("csat", 5), ("csat", 2), ("ces", 6)]
                for ch in ("web", "chat")
                for tp in ("delivery", "billing")
            ]
        )
    ]
    r = _responses(rows).drop(columns="comment")
    ev = _events(
        [
            ("C1", 0, "support_contact", "chat", "delivery"),
            ("C1", 3, "support_contact", "phone", "delivery"),
            ("C2", 0, "referral", "web", "x"),
        ]
    )
    cust = pd.DataFrame({"customer_id": [f"C{i}" for i in range(12)], "region": ["n", "s"] * 6})
    return {"responses": r, "events": ev, "customers": cust}


def _assert_engine_matches(ref: cxkit.CXData, other: cxkit.CXData) -> None:
    personas = pd.Series(["a", "b", "c"] * 4, index=[f"C{i}" for i in range(12)])
    checks = [
        lambda d: voc.nps(d, by=["period", "channel"]),
        lambda d: voc.nps(d, by="region"),
        lambda d: voc.csat(d, by=["persona", "touchpoint"], personas=personas),
        lambda d: voc.ces(d, by="touchpoint"),
        lambda d: voc.channel_switching(d),
        lambda d: voc.advocacy(d),
        lambda d: voc.promoters_not_referred(d),
        lambda d: voc.driver_table(d),
    ]
    for fn in checks:
        a, b = fn(ref), fn(other)
        key = list(a.columns)
        a = a.sort_values(key).reset_index(drop=True)
        b = b.sort_values(key).reset_index(drop=True)
        pd.testing.assert_frame_equal(a, b, check_dtype=False, rtol=1e-9)


@pytest.mark.postgres
def test_voc_on_postgres_matches_duckdb(postgres_server: str) -> None:
    from tests.test_backends import into_postgres

    tables = _engine_tables()
    _assert_engine_matches(cxkit.load(tables), into_postgres(postgres_server, tables))


@pytest.mark.spark
def test_voc_on_spark_matches_duckdb(spark_session: object) -> None:
    from tests.test_backends import into_spark

    tables = _engine_tables()
    _assert_engine_matches(cxkit.load(tables), into_spark(spark_session, tables))
