"""Tests for cxkit.voc.scores: hand-worked NPS, CSAT and CES, their change and trend,
grouping invariants and the coverage of the adjusted-Wald interval."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import cxkit
from cxkit import stats, voc
from cxkit.errors import NotAvailableError, UsageError
from tests.voc.helpers import T0, responses

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
    return responses(rows)


def test_nps_hand_worked() -> None:
    out = voc.nps(cxkit.load({"responses": _nps_frame()}))
    row = out.iloc[0]
    assert (row["n"], row["promoters"], row["passives"], row["detractors"]) == (10, 4, 2, 4)
    assert row["nps"] == pytest.approx(0.0)
    _, lo, hi = stats.nps_ci(4, 4, 10)
    assert (row["nps_low"], row["nps_high"]) == (pytest.approx(lo), pytest.approx(hi))
    assert bool(row["small_n"])


def test_nps_by_channel_hand_worked() -> None:
    out = voc.nps(cxkit.load({"responses": _nps_frame()}), by="channel").set_index("channel")
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
    out = voc.nps(cxkit.load({"responses": _nps_frame()}), by="period", freq="week")
    assert out["n"].sum() == 10
    assert list(out["period"]) == sorted(out["period"])
    with pytest.raises(UsageError, match="freq must be one of"):
        voc.nps(cxkit.load({"responses": _nps_frame()}), by="period", freq="fortnight")


def test_nps_compare_wraps_stats() -> None:
    a = {"promoters": 60, "detractors": 10, "n": 100}
    b = {"promoters": 40, "detractors": 30, "n": 100}
    assert voc.nps_compare(a, b) == stats.nps_compare(60, 10, 100, 40, 30, 100)


def test_csat_hand_worked() -> None:
    rows = [
        (f"C{i}", i, "csat", s, "web", "delivery", None) for i, s in enumerate([5, 4, 3, 2, 1, 5])
    ]
    out = voc.csat(cxkit.load({"responses": responses(rows)})).iloc[0]
    assert (out["n"], out["satisfied"], out["csat_share"]) == (6, 3, 0.5)
    lo, hi = stats.wilson_ci(3, 6)
    assert (out["csat_low"], out["csat_high"]) == (pytest.approx(lo), pytest.approx(hi))
    assert out["csat_mean"] == pytest.approx(20 / 6)
    top1 = voc.csat(cxkit.load({"responses": responses(rows)}), top_box=5).iloc[0]
    assert top1["satisfied"] == 2


def test_ces_hand_worked_and_direction() -> None:
    rows = [(f"C{i}", i, "ces", s, "web", "support", None) for i, s in enumerate([7, 5, 3])]
    out = voc.ces(cxkit.load({"responses": responses(rows)})).iloc[0]
    assert out["ces_mean"] == pytest.approx(5.0)
    assert out["ces_sd"] == pytest.approx(2.0)
    half = 4.302652729911275 * 2 / math.sqrt(3)  # t(0.975, 2) * sd / sqrt(n)
    assert out["ces_low"] == pytest.approx(5 - half)
    assert out["ces_high"] == pytest.approx(5 + half)
    flipped = voc.ces(cxkit.load({"responses": responses(rows)}), higher_is_easier=False).iloc[0]
    assert flipped["ces_mean"] == pytest.approx(3.0)


def test_score_summary_change_vs_previous_period() -> None:
    rows = [(f"A{i}", -100 + i, "nps", 0, "web", "x", None) for i in range(40)]
    rows += [(f"B{i}", -30 + i % 20, "nps", 10, "web", "x", None) for i in range(40)]
    rows += [
        (f"D{i}", -30 + i % 20, "csat", 5 if i % 2 else 1, "web", "x", None) for i in range(40)
    ]
    summ = voc.score_summary(
        cxkit.load({"responses": responses(rows)}), days=60, as_of=T0
    ).set_index("metric")
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
    tr = voc.nps_trend(cxkit.load({"responses": responses(rows)}))
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
    data = cxkit.load({"responses": responses(rows)})
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


def test_as_of_a_date_is_its_whole_day_a_time_is_exact() -> None:
    rows = [(f"C{i}", 0, "nps", 10, "web", "x", None) for i in range(3)]
    late = responses([("L", 4, "nps", 0, "web", "x", None)])
    late["ts"] = T0 + pd.Timedelta(days=4, hours=23)  # 2024-03-05 23:00
    late["response_id"] = "RL"
    data = cxkit.load({"responses": pd.concat([responses(rows), late], ignore_index=True)})
    assert voc.nps(data, as_of="2024-03-05")["n"].iloc[0] == 4
    assert voc.nps(data, as_of="2024-03-05 12:00")["n"].iloc[0] == 3
    assert voc.nps(data.upto("2024-03-04"))["n"].iloc[0] == 3
    summ = voc.score_summary(data, days=30, as_of="2024-03-05")
    assert summ["window"].iloc[0] == "last 30 days to 2024-03-05"
    assert summ["n"].iloc[0] == 4
    assert voc.score_summary(data, days=30)["window"].iloc[0] == "last 30 days to 2024-03-05"


def test_score_summary_without_answers_in_the_window_is_not_available() -> None:
    # answers only 100-120 days before as_of: the last 90 days hold none (issue 22)
    rows = [(f"A{i}", -120 + i, "nps", 9, "web", "x", None) for i in range(20)]
    data = cxkit.load({"responses": responses(rows)})
    msg = (
        r"The headline score for the last 90 days is not available: this needs survey answers "
        r"\(NPS, CSAT or CES\) dated 2023-12-02 to 2024-03-01; there are none in that window "
        r"\(n=0\); the latest answer is from 2023-11-21"
    )
    with pytest.raises(NotAvailableError, match=msg):
        voc.score_summary(data, days=90, as_of=T0)
    # a longer window reaches them
    assert voc.score_summary(data, days=150, as_of=T0)["n"].iloc[0] == 20
