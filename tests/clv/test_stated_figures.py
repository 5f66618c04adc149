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

import pytest

import cxkit
from cxkit import clv
from tests.report_figures import NUMBER, Page, check_agree, number, read_page, stated

# "31% of the 6,180 repeat customers have probably lapsed", "Among the 6,180 repeat
# customers, 31% have probably lapsed": the last percentage before "probably lapsed"
LAPSED = re.compile(r"(\d+(?:\.\d+)?)%[^%;]*?\bha(?:ve|s) probably lapsed")
OF_THE_N = re.compile(r"(?:of the|[Aa]mong the) ([\d,]+) (?:repeat )?customers")
# "+2.3%" in a statement about the holdout or about model against actual
SIGNED_PCT = re.compile(r"(?<![\w.])([+\-−]\d+(?:\.\d+)?)%")
VALUABLE = re.compile(r"([\d,]+) of the (~?)([\d,]+) most valuable repeat customers")
TOP_SHARE = re.compile(r"top (\d+)% (?:of customers )?hold (\d+)%")


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


def check_page(page: Page, res: clv.ClvResult) -> None:
    check_lapsed_share(page, res)
    check_holdout_accuracy(page, res)
    check_lapsing_valuable(page, res)
    check_top_share(page, res)


def test_every_stated_clv_figure_agrees(page: Page, result: clv.ClvResult) -> None:
    check_page(page, result)


def test_stated_figure_checks_catch_a_disagreement(page: Page, result: clv.ClvResult) -> None:
    """The checks are not lists of today's strings: a new disagreeing statement fails."""
    lapsed = result.lapsed
    holdout = result.holdout["relative_error"]
    wrong = [
        f"{100 * lapsed['value'] + 7:.0f}% of the {lapsed['n']:,} repeat customers have probably lapsed",
        f"Cumulative repeat purchases: model ends {100 * holdout - 2.6:+.1f}% from actual",
        f"{len(result.lapsing):,} of the ~{result.valuable_customers:,} most valuable repeat customers",
    ]
    for check, text in zip(
        (check_lapsed_share, check_holdout_accuracy, check_lapsing_valuable), wrong, strict=True
    ):
        bad = Page(blocks=[*page.blocks, text], titles=page.titles, tables=page.tables)
        with pytest.raises(AssertionError):
            check(bad, result)


def test_no_analyst_output_on_the_clv_page(page: Page) -> None:
    assert 'class="cx-stdout"' not in page.html, "printed output (a log line) on the page"
    assert "interactive = True" not in page.html and "interactive=True" not in page.html
    assert not any(b.startswith("Explore") for b in page.blocks)
