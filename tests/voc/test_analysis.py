"""Tests for cxkit.voc.analysis: analyze() and VocResult (tables, findings, as_of), and the
same numbers on PostgreSQL and Spark."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import pytest

import cxkit
from cxkit import stats, voc
from cxkit.errors import NotAvailableError
from tests.voc.helpers import T0, demo_truth, events, responses

TABLES = [
    "scores",
    "trend",
    "nps_by_channel",
    "csat_by_touchpoint",
    "ces_by_touchpoint",
    "key_drivers",
    "key_drivers_logistic",
    "theme_share",
    "theme_share_by_quarter",
    "representative_comments",
    "distinctive_terms",
    "sentiment",
    "channel_consistency",
    "pain_points",
    "channel_switching",
    "advocacy",
    "promoters_not_referred",
]


@pytest.fixture(scope="module")
def personas(demo_dir: Path) -> pd.Series:
    """The planted persona of every demo customer."""
    return demo_truth(demo_dir)[0].set_index("customer_id")["persona"]


@pytest.fixture(scope="module")
def result(demo_data: cxkit.CXData, personas: pd.Series) -> voc.VocResult:
    """``voc.analyze`` on the 2,000-customer demo with the planted personas."""
    return voc.analyze(demo_data, personas=personas, n_boot=20)


def test_not_available_on_orders_only() -> None:
    orders = pd.DataFrame({"order_id": ["1"], "customer_id": ["A"], "ts": [T0], "amount": [10.0]})
    data = cxkit.load({"orders": orders})
    with pytest.raises(NotAvailableError, match="needs the table 'responses'"):
        voc.nps(data)
    with pytest.raises(NotAvailableError, match="table 'events'"):
        voc.channel_switching(data)
    assert voc.analyze(data).findings() == []


def test_analyze_says_what_is_not_available() -> None:
    orders = pd.DataFrame({"order_id": ["1"], "customer_id": ["A"], "ts": [T0], "amount": [10.0]})
    res = voc.analyze(cxkit.load({"orders": orders}))
    assert res.scores is None and res.themes is None and res.advocacy is None
    assert "needs the table 'responses'" in res.unavailable["scores"]
    assert "needs the table 'events'" in res.unavailable["channel_switching"]
    assert "pain_points" not in res.unavailable  # no personas given: not attempted
    assert res.not_available == list(dict.fromkeys(res.unavailable.values()))
    assert res.tables() == {}


def test_result_holds_every_table(result: voc.VocResult) -> None:
    assert result.domain == "voc"
    assert result.unavailable == {} and result.not_available == []
    tables = result.tables()
    for name in TABLES:
        assert isinstance(getattr(result, name), pd.DataFrame), name
        assert name in tables and len(tables[name]), name
    assert isinstance(result.themes, voc.Themes)
    assert result.key_drivers.attrs["method"] == "linear"
    assert result.key_drivers_logistic.attrs["method"] == "logistic"
    assert set(result.pain_points.columns) >= {"persona", "channel", "pain_point"}
    quarters = [c for c in result.theme_share_by_quarter.columns if c != "label"]
    assert quarters == sorted(quarters) and all("-Q" in c for c in quarters)


def test_tables_are_the_functions_results(
    demo_data: cxkit.CXData, result: voc.VocResult, personas: pd.Series
) -> None:
    pd.testing.assert_frame_equal(result.scores, voc.score_summary(demo_data))
    pd.testing.assert_frame_equal(result.trend, voc.nps_trend(demo_data))
    pd.testing.assert_frame_equal(result.nps_by_channel, voc.nps(demo_data, by="channel"))
    pd.testing.assert_frame_equal(
        result.pain_points, voc.channel_pain_points(demo_data, personas=personas)
    )
    pd.testing.assert_frame_equal(
        result.key_drivers, voc.key_drivers(demo_data, n_boot=20, random_state=0)
    )
    pd.testing.assert_frame_equal(result.advocacy, voc.advocacy(demo_data))


def test_findings_carry_intervals_n_and_importance(result: voc.VocResult) -> None:
    found = result.findings()
    metrics = [f.metric for f in found]
    assert metrics == [
        "nps",
        "csat",
        "ces",
        "channel_pain_point",
        "channel_switching",
        "top_driver",
        "top_detractor_theme",
        "advocacy_reach",
    ]
    for f in found:
        assert f.domain == "voc"
        assert f.ci_low is not None and f.ci_high is not None, f.metric
        assert f.ci_low <= f.value <= f.ci_high, f.metric
        assert f.n is not None and f.n > 0, f.metric
        assert f.small_n == (f.n < stats.MIN_N), f.metric
        assert 0 <= f.importance <= 10
        assert f"n={f.n:,}" in f.sentence, f.metric
    by = {f.metric: f for f in found}
    nps_row = result.scores.set_index("metric").loc["NPS"]
    assert by["nps"].value == nps_row["value"] and by["nps"].n == nps_row["n"]
    assert by["nps"].importance == 10 and by["channel_pain_point"].importance == 9
    hit = result.pain_points[result.pain_points["pain_point"]].iloc[0]
    assert by["channel_pain_point"].value == pytest.approx(100 * hit["csat_share"])
    assert by["channel_pain_point"].extra == {"persona": hit["persona"], "channel": hit["channel"]}
    assert by["top_driver"].n == result.key_drivers.attrs["n"]
    waiting = len(result.promoters_not_referred)
    assert by["advocacy_reach"].extra == {"promoters_not_referred": waiting}


def test_without_personas_the_touchpoint_spread_is_the_channel_finding(
    demo_data: cxkit.CXData,
) -> None:
    res = voc.analyze(demo_data, text=False, n_boot=10)
    assert res.pain_points is None and res.themes is None and res.distinctive_terms is None
    by = {f.metric: f for f in res.findings()}
    assert "channel_pain_point" not in by and "top_detractor_theme" not in by
    cc = res.channel_consistency
    if cc["significant"].fillna(False).astype(bool).any():
        top = cc[cc["significant"].fillna(False).astype(bool)].iloc[0]
        assert by["channel_spread"].n == top["best_n"] + top["worst_n"]
        assert by["channel_spread"].p_value == top["p_holm"]


def test_as_of_is_resolved_once_and_cuts_everything(demo_data: cxkit.CXData) -> None:
    latest = voc.analyze(demo_data, text=False, n_boot=0)
    assert latest.as_of == cxkit.resolve_as_of(demo_data, None)
    res = voc.analyze(demo_data, as_of="2024-06-30", text=False, n_boot=0)
    end = pd.Timestamp("2024-06-30 23:59:59.999999")
    assert res.as_of == end  # a date means its whole day
    assert res.scores["window"].iloc[0] == "last 90 days to 2024-06-30"
    assert pd.to_datetime(res.trend["period"]).max() == pd.Timestamp("2024-06-01")
    cut = voc.analyze(demo_data.upto("2024-06-30"), text=False, n_boot=0)
    assert cut.as_of == end
    assert [f.sentence for f in cut.findings()] == [f.sentence for f in res.findings()]
    pd.testing.assert_frame_equal(res.advocacy, voc.advocacy(demo_data, as_of=end))


def test_headline_change_sentence_hand_worked() -> None:
    rows = [(f"A{i}", -100 + i, "nps", 0, "web", "x", None) for i in range(40)]
    rows += [(f"B{i}", -30 + i % 20, "nps", 10, "web", "x", None) for i in range(40)]
    res = voc.analyze(cxkit.load({"responses": responses(rows)}), as_of=T0, days=60, text=False)
    f = res.findings()[0]
    assert f.metric == "nps" and f.value == pytest.approx(100.0)
    assert f.comparison == "vs previous 60 days"
    assert f.extra["change"] == pytest.approx(200.0)
    assert f.p_value is not None and f.p_value < 0.001
    assert "up 200.0 points on the previous 60 days (significant, p < 0.001)" in f.sentence
    assert f.n == 40 and not f.small_n
    assert not math.isnan(f.ci_low)


def test_switching_finding_from_events_only() -> None:
    ev = events(
        [
            ("A", 0, "support_contact", "chat", "delivery"),
            ("A", 3, "support_contact", "phone", "delivery"),
            ("B", 0, "support_contact", "chat", "delivery"),
        ]
    )
    res = voc.analyze(cxkit.load({"events": ev}))
    sw = next(f for f in res.findings() if f.metric == "channel_switching")
    assert (sw.value, sw.n, sw.small_n) == (0.5, 2, True)
    lo, hi = stats.wilson_ci(1, 2)
    assert (sw.ci_low, sw.ci_high) == (pytest.approx(lo), pytest.approx(hi))


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
    r = responses(rows).drop(columns="comment")
    ev = events(
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


def test_no_answers_in_the_headline_window_leaves_the_rest_of_the_report() -> None:
    # issue 22: the report crashed (IndexError) when the last 90 days held no answers
    rows = [(f"A{i}", -200 + 2 * i, "nps", 10 if i % 3 else 2, "web", "x", None) for i in range(50)]
    rows += [
        (f"A{i}", -199 + 2 * i, "csat", 5 if i % 4 else 1, "app", "y", None) for i in range(50)
    ]
    res = voc.analyze(cxkit.load({"responses": responses(rows)}), as_of=T0, text=False)
    assert res.scores is None
    note = res.unavailable["scores"]
    assert note.startswith("The headline score for the last 90 days is not available")
    assert "(n=0)" in note and note in res.not_available
    assert res.trend is not None and res.nps_by_channel is not None  # the rest still runs
    assert not [f for f in res.findings() if f.metric in ("nps", "csat", "ces")]
    assert res.findings()  # advocacy still found


def test_score_finding_without_an_interval_or_a_test_says_so() -> None:
    rows = [("A", -10, "ces", 5, "web", "x", None), ("B", -100, "ces", 6, "web", "x", None)]
    rows += [(f"N{i}", -5, "nps", 10, "web", "x", None) for i in range(3)]
    res = voc.analyze(cxkit.load({"responses": responses(rows)}), as_of=T0, text=False)
    ces = next(f for f in res.findings() if f.metric == "ces")
    assert "too few answers for an interval, n=1" in ces.sentence
    assert "nan" not in ces.sentence and ces.comparison is None and ces.small_n


def test_scores_table_reads_as_the_sentences(demo_data: cxkit.CXData) -> None:
    res = voc.analyze(demo_data)
    table = res.scores_table().set_index("score")
    for f in res.findings():
        if f.metric in ("nps", "csat", "ces"):
            shown = table.loc[f.metric.upper(), "value (95% CI)"]
            # the table's value and interval are the sentence's, character for character
            assert f" is {shown.replace(' (', ' (95% CI ').split(')')[0]}" in f.sentence
    assert table.loc["NPS", "value (95% CI)"].split(" ")[0].lstrip("+-").isdigit()  # whole points
