"""Every figure the churn report states agrees with its other statements and with the Result.

The page is the session report run's ``churn.html`` (tests/conftest.py ``report_run``,
the 2,000-customer demo); the Result is ``churn.analyze`` with the notebook's defaults on
the same data. Each check collects every statement of one quantity — in sentences,
chart titles and tables — by what it says, so a new statement that disagrees fails.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

import cxkit
from cxkit import churn
from cxkit.display import column_label
from tests.report_figures import Page, Stated, check_agree, number, read_page, stated

PCT = r"(\d+(?:\.\d+)?)%"


@pytest.fixture(scope="module")
def page(report_run: dict[str, Any]) -> Page:
    path = Path(report_run["out"]) / "churn.html"
    assert path.exists(), report_run["proc"].stderr[-2000:]
    return read_page(path)


@pytest.fixture(scope="module")
def result(hostile_demo: Path) -> churn.ChurnResult:
    return churn.analyze(cxkit.load(hostile_demo), random_state=0)  # the notebook's defaults


def cells(page: Page, first_column: str, row: str, column: str) -> list[Stated]:
    """The cell of a table (found by its first column's label) as a stated figure."""
    label = column_label(first_column)
    out = []
    for t in page.tables:
        if t.header and t.header[0] == label and column_label(column) in t.header:
            value, decimals = number(t.row(row)[column_label(column)])
            out.append(Stated(value, decimals, f"table {label}={row}"))
    return out


def check_churn_rate(page: Page, res: churn.ChurnResult) -> None:
    r = res.churn_rate
    rx = re.compile(rf"{PCT} of ([\d,]+) customers (?:had no \w+|churned|cancelled)")
    hits = [m for t in page.statements for m in rx.finditer(t)]
    assert len(hits) >= 2
    assert {number(m.group(2))[0] for m in hits} == {r["customers"]}
    check_agree(stated([m.group(0) for m in hits], rx), r["rate"], what="churn rate", scale=100)


def check_high_risk(page: Page, res: churn.ChurnResult) -> None:
    n, hi = len(res.scores), res.high_risk_n
    rx = re.compile(rf"([\d,]+) of ([\d,]+) customers \({PCT}\) are at high risk")
    hits = [m for t in page.statements for m in rx.finditer(t)]
    assert hits
    assert {number(m.group(1))[0] for m in hits} == {hi}
    assert {number(m.group(2))[0] for m in hits} == {n}
    shares = stated([m.group(0) for m in hits], rx, group=3)
    shares += stated(page.statements, rf"{PCT} of customers are at high risk")
    shares += cells(page, "risk_band", "high", "share")
    check_agree(shares, hi / n, what="high-risk share", scale=100)


def check_model_auc(page: Page, res: churn.ChurnResult) -> None:
    v = res.backtest
    own = stated(
        page.statements,
        r"\bmodel(?:'s)? (?:ranks (?:customers|churners) with )?(?:ROC )?AUC (?:is )?(0\.\d+)",
    )
    own += stated(page.statements, r"ROC AUC (0\.\d+) against")
    own += cells(page, "model", churn.MODEL_LABELS["model"], "roc_auc")
    assert len(own) >= 3
    check_agree(own, v.auc("model"), what="the model's AUC")
    best = max(churn.BASELINES, key=lambda b: v.auc(b) if b in set(v.metrics.model) else -1)
    best_stated = stated(page.statements, r"best baseline (0\.\d+)")
    best_stated += stated(page.statements, r"against (0\.\d+)")
    check_agree(best_stated, v.auc(best), what="the best baseline's AUC")
    for key in churn.BASELINES:
        if key in set(v.metrics.model):
            label = re.escape(churn.MODEL_LABELS[key])
            each = stated(page.statements, rf"{label} (0\.\d+)")
            each += cells(page, "model", churn.MODEL_LABELS[key], "roc_auc")
            check_agree(each, v.auc(key), what=f"AUC of {key}")


def check_calibration_gap(page: Page, res: churn.ChurnResult) -> None:
    cal = res.backtest.calibration
    cal = cal[cal.model == "model"]
    gap = float((cal.mean_predicted - cal.observed_rate).abs().max())
    about = [t for t in page.statements if "predicted and observed churn" in t.lower()]
    figures = stated(about, PCT)
    assert len(figures) >= 2
    check_agree(figures, gap, what="calibration gap", scale=100)
    for f in stated(about, rf"within {PCT}"):  # a bound must hold as stated
        assert f.value >= 100 * gap - 1e-9, f"'within {f.value:g}%' but the gap is {gap:.2%}"


def check_lift(page: Page, res: churn.ChurnResult) -> None:
    top = res.backtest.lift.iloc[0]
    rates = stated(page.statements, rf"riskiest 10% of customers[^.]*? churned at {PCT}")
    rates += stated(page.statements, rf"riskiest tenth churns at {PCT}")
    rates += cells(page, "decile", "1", "churn_rate")
    assert len(rates) >= 3
    check_agree(rates, top["churn_rate"], what="top-decile churn rate", scale=100)
    lifts = stated(page.statements, r"(\d+\.\d+)× the average rate")
    lifts += stated(page.statements, r"[Tt]op decile lift (?:is )?(\d+\.\d+)×")
    lifts += cells(page, "decile", "1", "lift")
    check_agree(lifts, top["lift"], what="top-decile lift")
    g3 = res.backtest.lift.cumulative_gain.iloc[2]
    gains = stated(page.statements, rf"riskiest 30% (?:of customers hold|reaches) {PCT}")
    gains += cells(page, "decile", "3", "cumulative_gain")
    assert len(gains) >= 2
    check_agree(gains, g3, what="gain at 30%", scale=100)


def check_scores_named(page: Page, res: churn.ChurnResult) -> None:
    named = [b for b in page.blocks if b.startswith("Today's scores come from")]
    assert named and all(res.scores_label in b for b in named)
    warnings = page.by_class.get("cx-warning", [])
    if res.choice is not None and not res.choice.model_wins:
        assert warnings and res.scores_label in warnings[0]
    else:
        assert warnings == []


def check_page(page: Page, res: churn.ChurnResult) -> None:
    check_churn_rate(page, res)
    check_high_risk(page, res)
    check_model_auc(page, res)
    check_calibration_gap(page, res)
    check_lift(page, res)
    check_scores_named(page, res)


def test_every_stated_churn_figure_agrees(page: Page, result: churn.ChurnResult) -> None:
    assert result.backtest is not None
    check_page(page, result)


def test_stated_figure_checks_catch_a_disagreement(page: Page, result: churn.ChurnResult) -> None:
    """A new statement of a figure that disagrees fails the check of that figure."""
    v = result.backtest
    cal = v.calibration[v.calibration.model == "model"]
    gap = float((cal.mean_predicted - cal.observed_rate).abs().max())
    n = len(result.scores)
    wrong = {
        check_high_risk: f"{(result.high_risk_n / n + 0.06):.0%} of customers are at high risk",
        check_model_auc: f"The model ranks churners with AUC {v.auc('model') - 0.03:.2f}",
        # a bound rounded down is not true: 'within 9%' when the gap is 9.2%
        check_calibration_gap: f"Predicted and observed churn agree within {gap - 0.002:.1%}",
        check_lift: f"The riskiest tenth churns at {v.lift.churn_rate.iloc[0] - 0.05:.0%}",
    }
    for check, text in wrong.items():
        bad = Page(blocks=page.blocks, titles=[*page.titles, text], tables=page.tables)
        with pytest.raises(AssertionError):
            check(bad, result)


def test_no_analyst_output_on_the_churn_page(page: Page) -> None:
    assert 'class="cx-stdout"' not in page.html, "printed output (model logs) on the page"
    assert "interactive = True" not in page.html and "interactive=True" not in page.html
    assert not any(b.startswith("Explore") for b in page.blocks)
