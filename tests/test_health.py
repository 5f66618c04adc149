"""Data-health summaries on tiny hand-worked tables."""

from __future__ import annotations

import pandas as pd
import pytest

import cxkit
from cxkit import health
from cxkit.errors import Problem


@pytest.fixture(scope="module")
def data() -> cxkit.CXData:
    customers = pd.DataFrame({"customer_id": ["1", "2", "3", "4"]})
    events = pd.DataFrame(
        {
            "customer_id": ["1", "1", "2"],
            "ts": ["2024-01-05", "2024-02-01", "2024-02-10"],
            "event": ["site_visit", "product_view", "site_visit"],
            "channel": ["web", "app", "web"],
        }
    )
    orders = pd.DataFrame(
        {
            "order_id": ["o1", "o2"],
            "customer_id": ["1", "3"],
            "ts": ["2024-01-20", "2024-03-02"],
            "amount": [10.0, 5.0],
        }
    )
    return cxkit.load({"customers": customers, "events": events, "orders": orders})


def test_table_summary(data: cxkit.CXData) -> None:
    s = health.table_summary(data).set_index("table")
    assert s.loc[["customers", "events", "orders", "responses"], "present"].tolist() == [
        True,
        True,
        True,
        False,
    ]
    assert s.loc["events", "rows"] == 3 and s.loc["events", "customers"] == 2
    assert s.loc["orders", "first_ts"] == pd.Timestamp("2024-01-20")
    assert s.loc["orders", "last_ts"] == pd.Timestamp("2024-03-02")
    assert s.loc["responses", "rows"] == 0


def test_missing_names_tables_and_optional_columns(data: cxkit.CXData) -> None:
    notes = health.missing(data)
    assert "The 'responses' table is missing." in notes
    assert any(
        n.startswith("The 'orders' table has no optional column(s) 'channel'") for n in notes
    )
    assert any("'touchpoint'" in n and "'events'" in n for n in notes)


def test_coverage_uses_the_customers_table_as_base(data: cxkit.CXData) -> None:
    cov = health.coverage(data).set_index("table")
    assert cov.loc["events", "customers_with"] == 2 and cov.loc["events", "customers_total"] == 4
    assert cov.loc["orders", "share"] == pytest.approx(0.5)
    assert not cov.loc["responses", "present"]
    assert cov["small_n"].all()  # 4 customers < MIN_N
    assert (cov.ci_low <= cov.share).all() and (cov.share <= cov.ci_high).all()
    assert health.customer_count(data) == 4


def test_customers_counted_across_tables_without_a_customers_table() -> None:
    orders = pd.DataFrame(
        {
            "order_id": ["a", "b", "c"],
            "customer_id": ["x", "x", "y"],
            "ts": ["2024-01-01"] * 3,
            "amount": [1.0] * 3,
        }
    )
    d = cxkit.load({"orders": orders})
    assert health.customer_count(d) == 2
    assert health.coverage(d).set_index("table").loc["orders", "share"] == 1.0


def test_activity_and_channel_mix(data: cxkit.CXData) -> None:
    act = health.activity_by_period(data, freq="month")
    ev = act[act.table == "events"]
    assert ev.period_start.dt.strftime("%Y-%m").tolist() == ["2024-01", "2024-02"]
    assert ev.rows.tolist() == [1, 2]
    mix = health.channel_mix(data)
    assert mix.to_dict("list")["channel"] == ["web", "app"]
    assert mix["share"].tolist() == pytest.approx([2 / 3, 1 / 3])
    with pytest.raises(
        ValueError, match=r"freq must be one of \['day', 'week', 'month', 'quarter'\], got 'year'"
    ):
        health.activity_by_period(data, freq="year")


def test_figures_state_the_takeaway(data: cxkit.CXData) -> None:
    fig = health.activity_figure(health.activity_by_period(data))
    assert fig.layout.title.text == "Activity per month: busiest month 2024-02 (events, 2 rows)"
    assert len(fig.data) == 2
    fig = health.coverage_figure(health.coverage(data))
    assert fig.layout.title.text == "50% of customers have events: the thinnest coverage"
    fig = health.channel_figure(health.channel_mix(data))
    assert fig.layout.title.text == "web carries 67% of events, the largest channel share"


def test_problems_frame_and_findings(data: cxkit.CXData) -> None:
    problems = [
        Problem("warning", "duplicate_rows", "events", None, 1, "exact duplicate rows"),
        Problem(
            "error", "duplicate_id", "orders", "order_id", 2, "repeated IDs", ("o1",), "dedupe"
        ),
    ]
    df = health.problems_frame(problems)
    assert df.severity.tolist() == ["error", "warning"] and df.column.tolist() == ["order_id", ""]
    sentences = [f.sentence for f in health.findings(data, problems)]
    assert (
        sentences[0]
        == "3 of 4 tables present (customers, events, orders) from 2024-01-05 to 2024-03-02."
    )
    assert "Validation found 1 error(s) and 1 warning(s)." in sentences
    assert "50.0% of 4 customers have events (95% CI 15.0%–85.0%)." in sentences
