"""Every figure the CLV report states agrees with its other statements and with the Result.

The page is the session report run's ``clv.html`` (tests/conftest.py ``report_run``, the
2,000-customer demo); the Result is ``clv.analyze`` with the notebook's defaults on the
same data. Each check finds every statement of one quantity by what it says (the lapsed
share, the holdout accuracy, the valuable customers who lapsed, the top-20% share...), so
a new sentence or chart title that states the quantity differently fails the test.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import cxkit
from cxkit import clv
from tests.report_figures import NUMBER, Page, Stated, check_agree, number, read_page, stated

# "31% of the 6,180 repeat customers have probably lapsed", "Among the 6,180 repeat
# customers, 31% have probably lapsed": the last percentage before "probably lapsed"
LAPSED = re.compile(r"(\d+(?:\.\d+)?)%[^%;]*?\bha(?:ve|s) probably lapsed")
OF_THE_N = re.compile(r"(?:of the|[Aa]mong the) ([\d,]+) (?:repeat )?customers")
# "+2.3%" in a statement about the holdout or about model against actual
SIGNED_PCT = re.compile(r"(?<![\w.])([+\-−]\d+(?:\.\d+)?)%")
VALUABLE = re.compile(r"([\d,]+) of the (~?)([\d,]+) most valuable repeat customers")
TOP_SHARE = re.compile(r"top (\d+)% (?:of customers )?hold (\d+)%")
# the total's intervals: "worth 2,466,561 (95% interval 2,416,081–2,518,177)" (headline),
# "the expected total lies between 2,416,081 and 2,518,177", "... between 2,366,303 and
# 2,592,083 (95% predictive interval)" (the finding)
# money may carry the report's currency ("$2,416,081"): M is that optional symbol
M = r"[$€£]?"
TOTAL_AND_INTERVAL = re.compile(
    rf"worth {M}({NUMBER}) \(95% interval {M}({NUMBER})–{M}({NUMBER})\)"
)
MODEL_INTERVAL = re.compile(rf"expected total lies between {M}({NUMBER}) and {M}({NUMBER})")
PREDICTIVE_INTERVAL = re.compile(
    rf"between {M}({NUMBER}) and {M}({NUMBER}) \(95% predictive interval\)"
)
SHARE_INTERVAL = re.compile(r"hold (\d+)%[^.]*?95% interval (\d+)%–(\d+)% from the fitted")
MOST_VALUABLE = re.compile(
    rf"most valuable customer is expected to bring {M}({NUMBER}) \(95% interval {M}({NUMBER})–"
    rf"{M}({NUMBER})\), but what they actually bring could be anywhere from {M}({NUMBER}) to "
    rf"{M}({NUMBER})"
)
HALF_WIDTH = re.compile(rf"by about ±({NUMBER})% \(median over the ({NUMBER}) customers")
LESS_CERTAIN = re.compile(r"about (\d+)× less certain")
RANGE_CELL = re.compile(rf"^{M}({NUMBER})–{M}({NUMBER})$")


@pytest.fixture(scope="module")
def page(report_run: dict[str, Any]) -> Page:
    path = Path(report_run["out"]) / "clv.html"
    assert path.exists(), report_run["proc"].stderr[-2000:]
    return read_page(path)


@pytest.fixture(scope="module")
def result(hostile_demo: Path) -> clv.ClvResult:
    return clv.analyze(cxkit.load(hostile_demo))  # the notebook's defaults


def check_lapsed_share(page: Page, res: clv.ClvResult) -> None:
    """All "N% … probably lapsed" statements: one share, one population, its n."""
    texts = [t for t in page.statements if "most valuable" not in t]
    shares = stated(texts, LAPSED)
    assert len(shares) >= 2, "the finding and the P(alive) chart both state the share"
    lapsed = res.lapsed
    check_agree(shares, lapsed["value"], what="lapsed share", scale=100)
    for s in shares:
        n = OF_THE_N.search(s.where)
        assert n, f"the lapsed share is stated without its n: {s.where!r}"
        assert number(n.group(1))[0] == lapsed["n"], s.where


def check_holdout_accuracy(page: Page, res: clv.ClvResult) -> None:
    """All statements of the model's holdout accuracy: one figure, with its n."""
    about = [
        t for t in page.statements if "holdout" in t.lower() or ("model" in t and "actual" in t)
    ]
    figures = stated(about, SIGNED_PCT)
    assert len(figures) >= 2, "the finding and the holdout section both state it"
    check_agree(figures, res.holdout["relative_error"], what="holdout accuracy", scale=100)
    for text in {f.where for f in figures}:
        for m in re.finditer(rf"({NUMBER}) customers", text):
            assert number(m.group(1))[0] == res.holdout["customers"], text


def check_lapsing_valuable(page: Page, res: clv.ClvResult) -> None:
    """ "K of the N most valuable repeat customers": one K, one exact N."""
    hits = [m for t in page.statements for m in VALUABLE.finditer(t)]
    assert len(hits) >= 2
    assert all(m.group(2) == "" for m in hits), "the number of valuable customers is exact"
    assert {number(m.group(1))[0] for m in hits} == {len(res.lapsing)}
    assert {number(m.group(3))[0] for m in hits} == {res.valuable_customers}


def check_top_share(page: Page, res: clv.ClvResult) -> None:
    """ "The top 20% hold 82%": every statement per top share agrees with the values."""
    by_top: dict[int, list] = {}
    for t in page.statements:
        for m in TOP_SHARE.finditer(t):
            by_top.setdefault(int(m.group(1)), []).append(m)
    assert 20 in by_top
    values = res.values[res.clv_column]
    for top, hits in by_top.items():
        figures = stated([m.group(0) for m in hits], TOP_SHARE, group=2)
        truth = clv.top_share(values, top=top / 100)
        check_agree(figures, truth, what=f"top {top}% share", scale=100)


def _bounds(texts: list[str], pattern: re.Pattern[str], groups: tuple[int, ...]) -> list:
    """Every statement of a pattern, one list of Stated per group."""
    return [stated(texts, pattern, group=g) for g in groups]


def check_total_intervals(page: Page, res: clv.ClvResult) -> None:
    """The total's two intervals: the headline and the finding state the same figures,
    the Result's, and each interval is named for what it covers."""
    t = res.intervals.total
    total, low, high = _bounds(page.statements, TOTAL_AND_INTERVAL, (1, 2, 3))
    assert total, "the headline states the total with its interval"
    check_agree(total, t["value"], what="total CLV in the headline")
    m_low, m_high = _bounds(page.statements, MODEL_INTERVAL, (1, 2))
    assert m_low, "the total finding states the parameter interval"
    check_agree([*low, *m_low], t["ci_low"], what="total CLV interval, lower bound")
    check_agree([*high, *m_high], t["ci_high"], what="total CLV interval, upper bound")
    p_low, p_high = _bounds(page.statements, PREDICTIVE_INTERVAL, (1, 2))
    assert p_low, "the total finding states the predictive interval"
    check_agree(p_low, t["pred_low"], what="total CLV predictive interval, lower bound")
    check_agree(p_high, t["pred_high"], what="total CLV predictive interval, upper bound")
    for s in [*m_low, *p_low]:
        assert "fitted parameters' uncertainty" in s.where and "purchase randomness" in s.where


def check_top_share_interval(page: Page, res: clv.ClvResult) -> None:
    share = res.intervals.top_share
    value, low, high = _bounds(page.statements, SHARE_INTERVAL, (1, 2, 3))
    assert value, "the top-share finding states its interval"
    check_agree(value, share["value"], what="top share", scale=100)
    check_agree(low, share["ci_low"], what="top share interval, lower bound", scale=100)
    check_agree(high, share["ci_high"], what="top share interval, upper bound", scale=100)


def check_customer_intervals(page: Page, res: clv.ClvResult) -> None:
    """The table of the most valuable customers, its chart's title and its takeaway:
    every figure is the Result's (:meth:`ClvResult.most_valuable`), row by row."""
    col = res.clv_column
    most = res.most_valuable(20)
    table = page.table_with("95% interval (parameters)", "95% predictive interval")
    values = [number(c)[0] for c in table.column("CLV, next 52 weeks")]
    np.testing.assert_allclose(values, most[col].round(), atol=0.5)
    for label, kind in (("95% interval (parameters)", ""), ("95% predictive interval", "_pred")):
        cells = [RANGE_CELL.match(c) for c in table.column(label)]
        assert all(cells), table.column(label)
        np.testing.assert_allclose(
            [number(c.group(1))[0] for c in cells], most[f"{col}{kind}_low"], atol=0.5
        )
        np.testing.assert_allclose(
            [number(c.group(2))[0] for c in cells], most[f"{col}{kind}_high"], atol=0.5
        )
    best = most.iloc[0]
    found = [m for t in page.statements for m in MOST_VALUABLE.finditer(t)]
    assert found, "the takeaway states the most valuable customer's intervals"
    keys = [col, f"{col}_low", f"{col}_high", f"{col}_pred_low", f"{col}_pred_high"]
    for m in found:
        for i, key in enumerate(keys, start=1):
            check_agree([Stated(*number(m.group(i)), m.group(0))], best[key], what=key)
    width = res.intervals.relative_width(res.values[col])
    half = stated(page.statements, HALF_WIDTH)
    check_agree(half, width["parameter_half_width"], what="median half-width", scale=100)
    for s in half:
        assert number(HALF_WIDTH.search(s.where).group(2))[0] == width["n"]
    ratio = float(
        np.median(
            (most[f"{col}_pred_high"] - most[f"{col}_pred_low"])
            / (most[f"{col}_high"] - most[f"{col}_low"])
        )
    )
    check_agree(stated(page.titles, LESS_CERTAIN), ratio, what="predictive vs parameter width")


def check_page(page: Page, res: clv.ClvResult) -> None:
    check_lapsed_share(page, res)
    check_holdout_accuracy(page, res)
    check_lapsing_valuable(page, res)
    check_top_share(page, res)
    check_total_intervals(page, res)
    check_top_share_interval(page, res)
    check_customer_intervals(page, res)


def test_every_stated_clv_figure_agrees(page: Page, result: clv.ClvResult) -> None:
    check_page(page, result)


def test_stated_figure_checks_catch_a_disagreement(page: Page, result: clv.ClvResult) -> None:
    """The checks are not lists of today's strings: a new disagreeing statement fails."""
    lapsed = result.lapsed
    holdout = result.holdout["relative_error"]
    t, share = result.intervals.total, result.intervals.top_share
    wrong = [
        f"{100 * lapsed['value'] + 7:.0f}% of the {lapsed['n']:,} repeat customers have probably lapsed",
        f"Cumulative repeat purchases: model ends {100 * holdout - 2.6:+.1f}% from actual",
        f"{len(result.lapsing):,} of the ~{result.valuable_customers:,} most valuable repeat customers",
        f"{t['n']:,} customers are worth {t['value']:,.0f} (95% interval "
        f"{t['ci_low'] * 0.98:,.0f}–{t['ci_high']:,.0f}) over the next 52 weeks",
        f"The top 20% hold {100 * share['value']:.0f}% (n = 5; 95% interval "
        f"{100 * share['ci_low'] - 3:.0f}%–{100 * share['ci_high']:.0f}% from the fitted "
        "parameters' uncertainty).",
    ]
    checks = (
        check_lapsed_share,
        check_holdout_accuracy,
        check_lapsing_valuable,
        check_total_intervals,
        check_top_share_interval,
    )
    for check, text in zip(checks, wrong, strict=True):
        bad = Page(blocks=[*page.blocks, text], titles=page.titles, tables=page.tables)
        with pytest.raises(AssertionError):
            check(bad, result)


def test_no_analyst_output_on_the_clv_page(page: Page) -> None:
    assert 'class="cx-stdout"' not in page.html, "printed output (a log line) on the page"
    assert "interactive = True" not in page.html and "interactive=True" not in page.html
    assert not any(b.startswith("Explore") for b in page.blocks)
