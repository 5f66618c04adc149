"""Data-health summaries on tiny hand-worked tables, and the report's stated figures."""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

import cxkit
from cxkit import health
from cxkit.errors import Problem
from cxkit.validate import validate
from tests.stated_figures import (
    NUM,
    PCT,
    Claim,
    Page,
    Rule,
    against,
    cell_count,
    cell_share,
    count,
    disagreements,
    label,
    read_page,
    repeated,
    rule,
    sentence_claims,
    share,
    unread,
)


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
    # the same precision as the coverage finding ("50.0% of 4 customers have events")
    assert fig.layout.title.text == "50.0% of customers have events: the thinnest coverage"
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


def test_headline_and_takeaways_share_the_counts(data: cxkit.CXData) -> None:
    problems = [
        Problem("warning", "duplicate_rows", "events", None, 1, "exact duplicate rows"),
        Problem("error", "duplicate_id", "orders", "order_id", 2, "repeated IDs", ("o1",), "x"),
    ]
    summary = health.table_summary(data)
    head = health.headline(summary, health.customer_count(data), problems)
    assert head == ("3 of 4 tables present with 4 customers; validation: 1 error(s), 1 warning(s)")
    mix = health.channel_mix(data)
    t = health.takeaways(problems, activity=health.activity_by_period(data), mix=mix)
    assert t["validation"] == "1 error(s) and 1 warning(s); fix errors first."
    assert t["activity"] == "3 months of activity across 2 table(s)."  # Jan, Feb, Mar
    assert t["channels"] == "The largest share is web with 67% of events."
    # the chart title states the same channel share
    assert "web carries 67% of events" in health.channel_figure(mix).layout.title.text
    assert health.takeaways([])["validation"].startswith("Validation found no problems")


# ---- the report page: every statement of a figure agrees ----------------------------------


@rule(r"(?P<k>\d+) of 4 tables present")
def _present(m: re.Match[str], ctx: Mapping[str, Any]) -> list[tuple]:
    return [(("tables_present",), int(m["k"]), 0.0, None)]


@rule(rf"present with (?P<n>{NUM}) customers")
def _customers(m: re.Match[str], ctx: Mapping[str, Any]) -> list[tuple]:
    return [(("customers",), count(m["n"]), 0.0, None)]


@rule(
    r"(?P<e>\d+) error\(s\),? and (?P<w>\d+) warning\(s\)|(?P<e2>\d+) error\(s\), (?P<w2>\d+) warning"
)
def _validation(m: re.Match[str], ctx: Mapping[str, Any]) -> list[tuple]:
    e, w = m["e"] or m["e2"], m["w"] or m["w2"]
    return [(("errors",), int(e), 0.0, None), (("warnings",), int(w), 0.0, None)]


@rule(r"Validation found no problems")
def _no_problems(m: re.Match[str], ctx: Mapping[str, Any]) -> list[tuple]:
    return [(("errors",), 0, 0.0, None), (("warnings",), 0, 0.0, None)]


@rule(rf"(?P<r>{PCT}) of (?:(?P<n>{NUM}) )?customers have (?P<t>\w+)")
def _coverage(m: re.Match[str], ctx: Mapping[str, Any]) -> list[tuple]:
    n = None if m["n"] is None else count(m["n"])
    out = [(("coverage", m["t"]), *share(m["r"]), n)]
    if n is not None:
        out.append((("customers",), n, 0.0, None))
    return out


@rule(
    rf"The largest share is (?P<c>.+?) with (?P<r>{PCT}) of (?P<t>\w+)"
    rf"|(?P<c2>\S+) carries (?P<r2>{PCT}) of (?P<t2>\w+)"
)
def _channel(m: re.Match[str], ctx: Mapping[str, Any]) -> list[tuple]:
    c, r, t = m["c"] or m["c2"], m["r"] or m["r2"], m["t"] or m["t2"]
    return [(("channel_share", t, c), *share(r), None)]


HEALTH_RULES: list[Rule] = [_present, _customers, _validation, _no_problems, _coverage, _channel]


def health_claims(page: Page) -> list[Claim]:
    """Return the data-health page's claims: sentences, chart titles and both tables."""
    claims = sentence_claims(page, HEALTH_RULES)
    for i, t in enumerate(page.tables):
        rows: list[tuple] = []
        tab, present = t.column(label("table")), t.column(label("present"))
        with_, total, sh = (
            t.column(label(c)) for c in ("customers_with", "customers_total", "share")
        )
        if tab is not None and present is not None:
            rows.append((("tables_present",), sum(r[present] == "yes" for r in t.rows), 0.0, None))
        if None not in (tab, with_, total, sh):
            for r in t.rows:
                if (v := cell_share(r[sh])) is not None:
                    rows.append((("coverage", r[tab]), *v, cell_count(r[total])))
                    rows.append((("customers",), cell_count(r[total]), 0.0, None))
        where = f"table {i + 1} ({', '.join(t.headers[:3])})"
        claims += [Claim(tuple(k), float(v), float(tol), n, where, "") for k, v, tol, n in rows]
    return claims


@pytest.mark.slow
def test_every_statement_of_a_data_health_figure_agrees(
    report_run: dict[str, Any], hostile_demo: Path
) -> None:
    path = Path(report_run["out"]) / "data_health.html"
    assert path.exists(), report_run["proc"].stdout[-2000:] + report_run["proc"].stderr[-2000:]
    page = read_page(path.read_text(encoding="utf-8"))
    claims = health_claims(page)
    times = repeated(claims)
    assert times[("tables_present",)] >= 3 and times[("customers",)] >= 3
    assert times[("errors",)] >= 2
    raw = cxkit.load(hostile_demo)
    cov = health.coverage(raw)
    for t in cov.table[cov.present]:
        assert times[("coverage", t)] >= 2  # finding and table (and the chart for the lowest)
    assert disagreements(claims) == []
    problems = validate(raw)
    expected: dict[tuple, tuple[float, int | None]] = {
        ("tables_present",): (float(health.table_summary(raw).present.sum()), None),
        ("customers",): (float(health.customer_count(raw)), None),
        ("errors",): (float(sum(p.severity == "error" for p in problems)), None),
        ("warnings",): (float(sum(p.severity != "error" for p in problems)), None),
    }
    for r in cov[cov.present].itertuples():
        expected[("coverage", r.table)] = (float(r.share), int(r.customers_total))
    for r in health.channel_mix(raw).itertuples():
        expected[("channel_share", r.table, r.channel)] = (float(r.share), None)
    assert against(claims, expected) == []
    assert unread(page, HEALTH_RULES, ["headline", "finding", "takeaway", "chart"]) == []


def test_the_check_catches_a_coverage_title_rounded_differently() -> None:
    html = (
        '<div class="cx-findings"><ul><li>32.5% of 20,000 customers have responses '
        "(95% CI 31.8%–33.1%).</li></ul></div>"
        '<p class="cx-takeaway">The largest share is app with 49% of orders.</p>'
    )
    page = read_page(html)
    page.statements.append(("chart", "31% of customers have responses: the thinnest coverage"))
    found = disagreements(health_claims(page))
    assert any("coverage" in d for d in found), found
    page.statements[-1] = ("chart", "32.5% of customers have responses: the thinnest coverage")
    assert disagreements(health_claims(page)) == []
