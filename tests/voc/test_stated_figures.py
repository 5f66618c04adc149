"""Every figure the voice-of-the-customer report states agrees with the others and the Result.

The page is the session report run's ``voice_of_customer.html`` (tests/conftest.py
``report_run``, the 2,000-customer demo); the Result is ``voc.analyze`` on the same data
with the notebook's defaults. Driver claims are checked against the wording rule
(:func:`cxkit.voc.driver_claim`): no statement may claim more than R² and the intervals
support.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

import cxkit
from cxkit import personas, voc
from cxkit.display import column_label
from cxkit.voc.drivers import R2_STRONG
from tests.report_figures import NUMBER, Page, Stated, check_agree, number, read_page, stated

R2 = re.compile(r"R² (?:= )?(\d\.\d+)")
#: Words that claim one driver leads: allowed only as the evidence rule permits.
STRONG_CLAIMS = ("matters most", "strongest driver", "most important driver", "is the key driver")


@pytest.fixture(scope="module")
def page(report_run: dict[str, Any]) -> Page:
    path = Path(report_run["out"]) / "voice_of_customer.html"
    assert path.exists(), report_run["proc"].stderr[-2000:]
    return read_page(path)


@pytest.fixture(scope="module")
def result(hostile_demo: Path) -> voc.VocResult:
    # the notebook's defaults; persona labels only change the pain points, not checked here
    return voc.analyze(cxkit.load(hostile_demo))


@pytest.fixture(scope="module")
def value(hostile_demo: Path) -> voc.SurveyValueResult:
    # the notebook's call: its persona labels, the CLV and churn reports' results
    cx = cxkit.load(hostile_demo)
    labels, _ = personas.resolve_persona_labels(cx, folder=str(hostile_demo))
    return voc.value_linkage(cx, personas=labels, random_state=0)


def cell(page: Page, first_column: str, row: str, column: str) -> list[Stated]:
    """One table cell (its table found by the first column's label) as a stated figure."""
    out = []
    for t in page.tables:
        if t.header and t.header[0] == column_label(first_column):
            if column_label(column) in t.header and any(r and r[0] == row for r in t.rows):
                text = t.row(row)[column_label(column)]  # a value, or a value (interval)
                value, decimals = number(re.search(NUMBER, text).group(0))  # type: ignore[union-attr]
                out.append(Stated(value, decimals, f"table {first_column}={row}"))
    return out


def check_headline_scores(page: Page, res: voc.VocResult) -> None:
    """NPS, CSAT and CES: the sentences against the scores table and the Result."""
    assert res.scores is not None
    for _, r in res.scores.iterrows():
        metric = str(r["metric"])
        rx = rf"{metric} over the [^.]*? is ({NUMBER})"
        values = stated(page.statements, rx) + cell(page, "score", metric, "value (95% CI)")
        assert len(values) >= 2, metric
        check_agree(values, r["value"], what=f"{metric} value")
        ns = stated(page.statements, rf"{metric} over the .*?n=([\d,]+)")
        ns += cell(page, "score", metric, "answers")
        check_agree(ns, r["n"], what=f"{metric} n")
        if pd.notna(r["change"]):
            sign = 1 if r["change"] > 0 else -1
            moved = stated(page.statements, rf"{metric} over the .*?(?:up|down) (\d+\.\d+)")
            moved = [Stated(sign * f.value, f.decimals, f.where) for f in moved]
            moved += cell(page, "score", metric, "change (95% CI)")
            check_agree(moved, r["change"], what=f"{metric} change")


def check_r2(page: Page, res: voc.VocResult) -> None:
    """Every R² statement: the linear model's (NPS answer) or the logistic one's (promoter)."""
    linear = [t for t in page.statements if "promoter" not in t.lower()]
    logistic = [t for t in page.statements if "promoter" in t.lower()]
    check_agree(stated(linear, R2), res.key_drivers.attrs["r2"], what="R² of the NPS answer")
    if res.key_drivers_logistic is not None:
        got = stated(logistic, R2)
        check_agree(got, res.key_drivers_logistic.attrs["r2"], what="R² of promoter status")


def check_driver_claims(page: Page, res: voc.VocResult) -> None:
    """Driver claims are worded by their evidence, and the top share agrees with the table."""
    kd = res.key_drivers
    claim = voc.driver_claim(kd)
    for text in page.statements:
        low = text.lower()
        if any(w in low for w in STRONG_CLAIMS):
            assert claim.clear_lead and kd.attrs["r2"] >= R2_STRONG, (
                f"{text!r} claims more than R² = {kd.attrs['r2']:.2f} supports"
            )
    assert claim.title in page.titles, "the key-driver chart is titled by the wording rule"
    assert claim.sentence in page.blocks
    top = kd.iloc[0]
    linear_claims = [t for t in page.statements if "promoter" not in t.lower()]
    shares = stated(linear_claims, rf"{re.escape(top['driver'])} weighs most with (\d+)%")
    linear = page.table_with(column_label("driver"), column_label("performance_0_100"))
    text = linear.row(top["driver"])[column_label("importance_pct")]
    shares.append(Stated(*number(text), "the linear key-driver table"))
    check_agree(shares, top["importance_pct"], what="top driver's share")


def check_advocacy(page: Page, res: voc.VocResult) -> None:
    """Promoters who have not referred: the sentences, the table difference, the Result."""
    waiting = stated(page.statements, r"([\d,]+) promoters have not referred")
    assert waiting
    adv = res.advocacy.set_index("measure")
    table = [t for t in page.tables if t.header and t.header[0] == column_label("measure")]
    promoters = next(r for r in table[0].rows if r[0].startswith("promoters ("))
    referred = next(r for r in table[0].rows if r[0] == "promoters who referred")
    diff = number(promoters[1])[0] - number(referred[1])[0]
    waiting.append(Stated(diff, 0, "advocacy table: promoters − promoters who referred"))
    check_agree(waiting, len(res.promoters_not_referred), what="promoters not referred")
    reach = adv.loc["advocacy reach"].iloc[-1]
    rx = rf"(\d+(?:\.\d+)?)% of {reach['base']} reached the advocacy stage"
    check_agree(stated(page.statements, rx), reach["share"], what="advocacy reach", scale=100)


def check_switching(page: Page, res: voc.VocResult) -> None:
    sw = res.channel_switching
    overall = sw[sw.touchpoint == "(all)"].iloc[0]
    rates = stated(page.statements, r"(\d+\.\d)% of (?:the )?(?:[\d,]+ )?customers who contacted")
    rates += cell(page, "touchpoint", "(all)", "switch_rate")
    assert len(rates) >= 2
    check_agree(rates, overall["switch_rate"], what="channel switching", scale=100)


CHECKS = (check_headline_scores, check_r2, check_driver_claims, check_advocacy, check_switching)


def test_every_stated_voc_figure_agrees(page: Page, result: voc.VocResult) -> None:
    for check in CHECKS:
        check(page, result)


def test_stated_figure_checks_catch_a_disagreement(page: Page, result: voc.VocResult) -> None:
    kd = result.key_drivers
    wrong = {
        check_driver_claims: f"{kd.driver.iloc[0]} matters most for NPS",
        check_r2: f"Drivers of the NPS answer (R² {kd.attrs['r2'] + 0.05:.2f})",
        check_switching: "19.9% of customers who contacted support switched channel",
    }
    for check, text in wrong.items():
        bad = Page(blocks=page.blocks, titles=[*page.titles, text], tables=page.tables)
        with pytest.raises(AssertionError):
            check(bad, result)


#: A stated amount of money: an optional sign, the currency symbol, the number.
MONEY = r"[+\-−]?\$?\d[\d,]*(?:\.\d+)?"


def money(text: str) -> tuple[float, int]:
    """A stated amount ("-$250.03") as a number and its decimals."""
    return number(text.replace("$", ""))


def stated_money(texts: list[str], pattern: str, sign: float = 1.0) -> list[Stated]:
    """Every amount matched by ``pattern`` (its group 1), times ``sign``."""
    out = []
    for text in texts:
        for m in re.finditer(pattern, text):
            v, d = money(m.group(1))
            out.append(Stated(sign * v, d, text))
    return out


def group_cells(page: Page, label: str, group: str, column: str) -> list[Stated]:
    """A cell of the value-by-NPS-group tables (row: measure label and NPS group)."""
    out = []
    for t in page.tables:
        if t.header[:2] == ["measure", "NPS group"] and column in t.header:
            for r in t.rows:
                if r[:2] == [label, group]:
                    cell_text = dict(zip(t.header, r, strict=False))[column]
                    out.append(Stated(*money(cell_text.rstrip("%")), f"table {label}/{group}"))
    return out


def check_value(page: Page, res: voc.SurveyValueResult) -> None:
    """The detractor − promoter gaps: sentences, chart title, tables and the Result agree."""
    m = res.measure("clv")
    r = res.gap(m)
    assert m is not None and r is not None
    sign = -1.0 if r["diff"] < 0 else 1.0
    word = "less" if sign < 0 else "more"
    gaps = stated_money(page.statements, rf"A detractor is worth ({MONEY}) {word} than", sign)
    gaps += stated_money(page.statements, rf"Detractors are worth ({MONEY}) {word} than", sign)
    gaps += group_cells(page, m.label, "detractor", "difference vs promoters")
    assert len(gaps) >= 3, gaps  # the finding, the chart title, the table
    check_agree(gaps, r["diff"], what="detractor − promoter CLV gap")
    means = group_cells(page, m.label, "detractor", "mean per customer")
    check_agree(means, r["value"], what="detractors' mean CLV")
    ns = [
        Stated(float(x.replace(",", "")), 0, t)
        for t in page.statements
        for x in re.findall(r"worth .*?n = ([\d,]+) detractors", t)
    ]
    ns += group_cells(page, m.label, "detractor", "customers")
    check_agree(ns, r["n"], what="detractors with a CLV")
    c = res.gap(res.measure("churn"))
    assert c is not None
    pts = [
        Stated(float(v) * (1 if w == "higher" else -1), 1, t)
        for t in page.statements
        for v, w in re.findall(
            r"churn probability over the next \d+ days is (\d+\.\d) points (higher|lower)", t
        )
    ]
    pts += group_cells(
        page, res.measure("churn").label, "detractor", "difference vs promoters (pts)"
    )
    check_agree(pts, c["diff"], what="detractor − promoter churn gap", scale=100)
    rev = res.gap(res.measure("orders"))
    assert rev is not None
    word = "less" if rev["diff"] < 0 else "more"
    spent = stated_money(
        page.statements, rf"detractors spent ({MONEY}) {word} than", -1.0 if word == "less" else 1.0
    )
    spent += group_cells(page, res.measure("orders").label, "detractor", "difference vs promoters")
    check_agree(spent, rev["diff"], what="detractor − promoter spend after the answer")
    # the gap within personas: the sentence and the persona table's last row
    a = res.adjusted.set_index("measure").loc[m.key]
    within = [
        Stated(money(v)[0] * (1 if w == "more" else -1), money(v)[1], t)
        for t in page.statements
        if t.startswith("A detractor is worth")
        for v, w in re.findall(rf"own persona the gap is ({MONEY}) (less|more)", t)
    ]
    t = page.table_with("persona", "detractors", "promoters")
    last = t.row("all: within personas")
    within.append(Stated(*money(last[f"CLV gap, next {res.horizon_weeks:g} weeks"]), "persona"))
    check_agree(within, a["diff"], what="CLV gap within personas")


def test_every_stated_value_figure_agrees(page: Page, value: voc.SurveyValueResult) -> None:
    check_value(page, value)


def test_value_checks_catch_a_disagreement(page: Page, value: voc.SurveyValueResult) -> None:
    r = value.gap(value.measure("clv"))
    wrong = f"Detractors are worth ${abs(r['diff']) + 5:,.2f} less than promoters"
    bad = Page(blocks=page.blocks, titles=[*page.titles, wrong], tables=page.tables)
    with pytest.raises(AssertionError):
        check_value(bad, value)


def test_the_value_section_says_once_that_it_is_not_causal(page: Page) -> None:
    said = [b for b in page.blocks if "associations, not effects" in b]
    assert len(said) == 1, said


def test_no_analyst_output_on_the_voc_page(page: Page) -> None:
    assert 'class="cx-stdout"' not in page.html, "printed output on the page"
    assert "interactive = True" not in page.html and "interactive=True" not in page.html
    assert not any(b.startswith("Explore") for b in page.blocks)
