"""A number never differs between two reports: the summary shows the domain reports' own.

Reuses the session's ``cxkit report`` run on the 2,000-customer demo (``report_run`` in
conftest.py): every finding sentence and KPI tile in the executive summary must appear,
word for word, among the findings of the detailed report it comes from.
"""

from __future__ import annotations

from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from cxkit import privacy

pytestmark = [pytest.mark.slow]

DOMAIN_PAGES = {
    "lifecycle.html": "lifecycle",
    "churn.html": "churn",
    "clv.html": "clv",
    "personas.html": "personas",
    "voice_of_customer.html": "voice_of_customer",
}
TILE_SOURCES = {
    "NPS": "voice_of_customer",
    "CSAT": "voice_of_customer",
    "CES": "voice_of_customer",
    "Churn rate": "churn",
    "Total CLV (52 weeks)": "clv",
    "Detractor vs promoter CLV (52 weeks)": "voice_of_customer",
}


class _Findings(HTMLParser):
    """Collects finding sentences (and in the summary, which report each belongs to)."""

    def __init__(self) -> None:
        super().__init__()
        self.section: str | None = None
        self.in_findings = 0
        self.in_li = False
        self.items: list[tuple[str | None, str]] = []
        self.tiles: dict[str, str] = {}
        self._text: list[str] = []
        self._tile_kpi: str | None = None
        self._grab: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        cls = (a.get("class") or "").split()
        if tag == "a" and "cx-link" in cls:
            self.section = DOMAIN_PAGES.get(a.get("href") or "")
        if tag == "div" and "cx-findings" in cls:
            self.in_findings += 1
        if tag == "li" and self.in_findings:
            self.in_li, self._text = True, []
        if tag == "p" and ("cx-kpi" in cls or "cx-detail" in cls):
            self._grab, self._text = ("kpi" if "cx-kpi" in cls else "detail"), []

    def handle_endtag(self, tag: str) -> None:
        if tag == "li" and self.in_li:
            self.items.append((self.section, " ".join("".join(self._text).split())))
            self.in_li = False
        if tag == "div" and self.in_findings and not self.in_li:
            self.in_findings = max(0, self.in_findings - 1)
        if tag == "p" and self._grab:
            text = " ".join("".join(self._text).split())
            if self._grab == "kpi":
                self._tile_kpi = text
            elif self._tile_kpi:
                self.tiles[self._tile_kpi] = text
            self._grab = None

    def handle_data(self, data: str) -> None:
        if self.in_li or self._grab:
            self._text.append(data)


def _parse(path: Path) -> _Findings:
    parser = _Findings()
    parser.feed(path.read_text(encoding="utf-8"))
    return parser


def test_summary_numbers_equal_the_detailed_reports(report_run: dict[str, Any]) -> None:
    out: Path = report_run["out"]
    summary = _parse(out / "executive_summary.html")
    domain = {name: {t for _, t in _parse(out / page).items} for page, name in DOMAIN_PAGES.items()}
    shown = [(s, t) for s, t in summary.items if s is not None]
    assert len(shown) >= 8, summary.items
    assert {s for s, _ in shown} == set(DOMAIN_PAGES.values())
    for section, sentence in shown:
        assert sentence in domain[section], (section, sentence)
    for kpi, source in TILE_SOURCES.items():
        assert kpi in summary.tiles, sorted(summary.tiles)
        assert summary.tiles[kpi] in domain[source], (kpi, summary.tiles[kpi])


def test_scorecard_published_with_one_row_per_customer(
    report_run: dict[str, Any], hostile_demo: Path
) -> None:
    out: Path = report_run["out"]
    card = pd.read_parquet(out / "scores.parquet")
    csv = pd.read_csv(out / "scores.csv", dtype={"customer_id": str})
    customers = pd.read_parquet(hostile_demo / "customers.parquet")
    assert len(card) == len(csv) == len(customers)
    assert card["customer_id"].is_unique
    key = privacy.key_file(out).read_text().strip()  # published IDs are pseudonymous
    assert set(card["customer_id"]) == set(privacy.pseudonymize(customers["customer_id"], key))
