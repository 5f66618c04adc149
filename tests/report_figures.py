"""Read what a report page states — sentences, chart titles, tables — to check its figures.

The consistency tests of the churn, CLV and voice-of-the-customer reports
(``tests/<domain>/test_stated_figures.py``) read the session report run's HTML with
:func:`read_page`, pull every statement of one quantity out of it with a pattern, and
check with :func:`check_agree` that the statements agree with each other and with the
domain's ``Result`` at the precision they are stated with.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

_FIGURE = re.compile(
    r'Plotly\.newPlot\(\s*"[^"]+",\s*(\[.*?\]),\s*(\{.*?\}),\s*\{"responsive', flags=re.S
)
_BLOCK = re.compile(r"<(p|li|h[1-6]|caption)\b[^>]*>(.*?)</\1>", flags=re.S)
_CLASSED_DIV = re.compile(r'<div class="(cx-[a-z-]+)">((?:(?!<div\b).)*?)</div>', flags=re.S)
_TABLE = re.compile(r"<table\b.*?</table>", flags=re.S)
_ROW = re.compile(r"<tr\b[^>]*>(.*?)</tr>", flags=re.S)
_CELL = re.compile(r"<t([dh])\b[^>]*>(.*?)</t[dh]>", flags=re.S)
#: A stated number: sign, thousands separators, decimals ("−0.3", "1,236", "2.3").
NUMBER = r"[+\-−]?\d[\d,]*(?:\.\d+)?"


def _plain(fragment: str) -> str:
    text = re.sub(r"<[^>]+>", " ", fragment)
    return re.sub(r"\s+", " ", html.unescape(text)).strip()


@dataclass
class Table:
    """One table of a page: its header labels and its rows of cell text."""

    header: list[str]
    rows: list[list[str]]

    def column(self, label: str) -> list[str]:
        """Return the cells of the column headed ``label``."""
        i = self.header.index(label)
        return [r[i] for r in self.rows if len(r) > i]

    def row(self, first: str) -> dict[str, str]:
        """Return the row whose first cell is ``first``, by header label."""
        for r in self.rows:
            if r and r[0] == first:
                return dict(zip(self.header, r, strict=False))
        raise KeyError(first)


@dataclass
class Page:
    """What a stakeholder reads on a report page."""

    blocks: list[str] = field(default_factory=list)
    titles: list[str] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)
    by_class: dict[str, list[str]] = field(default_factory=dict)
    html: str = ""

    @property
    def statements(self) -> list[str]:
        """Every sentence-like block and every chart title."""
        return [*self.blocks, *self.titles]

    def table_with(self, *labels: str) -> Table:
        """Return the first table whose header has all ``labels``."""
        for t in self.tables:
            if all(lab in t.header for lab in labels):
                return t
        raise AssertionError(f"no table with the columns {labels}")


def read_page(path: Path) -> Page:
    """Read a report page: text blocks, chart titles (from the plotly layouts), tables."""
    raw = Path(path).read_text(encoding="utf-8")
    page = Page(html=raw)
    for m in _FIGURE.finditer(raw):
        title = json.loads(m.group(2)).get("title") or {}
        text = title.get("text") if isinstance(title, dict) else title
        if text:
            page.titles.append(_plain(str(text)))
    body = re.sub(r"<(script|style)\b.*?</\1>", " ", raw, flags=re.S)
    for m in _TABLE.finditer(body):
        page.blocks += [
            _plain(c) for c in re.findall(r"<caption\b[^>]*>(.*?)</caption>", m.group(0), re.S)
        ]
        header, rows = [], []
        for row in _ROW.finditer(m.group(0)):
            cells = [(kind, _plain(c)) for kind, c in _CELL.findall(row.group(1))]
            if cells and all(kind == "h" for kind, _ in cells) and not header:
                header = [c for _, c in cells]
            elif cells:
                rows.append([c for _, c in cells])
        page.tables.append(Table(header, rows))
    for m in _CLASSED_DIV.finditer(body):
        page.by_class.setdefault(m.group(1), []).append(_plain(m.group(2)))
    no_tables = _TABLE.sub(" ", body)
    for m in _BLOCK.finditer(no_tables):
        text = _plain(m.group(2))
        if text:
            page.blocks.append(text)
    for cls in ("cx-warning", "cx-not-available"):  # notes that are divs, not paragraphs
        page.blocks += page.by_class.get(cls, [])
    return page


def number(text: str) -> tuple[float, int]:
    """Return a stated number and its decimals: ``"1,236"`` -> (1236.0, 0), ``"−0.3"`` -> (-0.3, 1)."""
    t = text.strip().replace("−", "-").replace(",", "").rstrip("%×x")
    decimals = len(t.split(".")[1]) if "." in t else 0
    return float(t), decimals


def half_step(decimals: int) -> float:
    """Half a unit of the last stated digit: how far a rounded figure can be from the truth."""
    return 0.5 * 10.0**-decimals + 1e-9


@dataclass(frozen=True)
class Stated:
    """One statement of a quantity: its value, its decimals and where it was read."""

    value: float
    decimals: int
    where: str


def stated(
    texts: Iterable[str], pattern: str | re.Pattern[str], group: str | int = 1
) -> list[Stated]:
    """Return every match of ``pattern`` in ``texts`` as a :class:`Stated` figure."""
    rx = re.compile(pattern) if isinstance(pattern, str) else pattern
    out = []
    for text in texts:
        for m in rx.finditer(text):
            value, decimals = number(m.group(group))
            out.append(Stated(value, decimals, text))
    return out


def check_agree(
    figures: list[Stated], truth: float | None = None, *, what: str, scale: float = 1.0
) -> None:
    """Assert that the statements of one quantity agree, and agree with ``truth``.

    Two statements agree when the ranges their rounding allows overlap; a statement
    agrees with the true value (times ``scale``, e.g. 100 for a share stated in %)
    when the value is within half a unit of its last digit.
    """
    assert figures, f"{what}: no statement found"
    lows = [f.value - half_step(f.decimals) for f in figures]
    highs = [f.value + half_step(f.decimals) for f in figures]
    assert max(lows) <= min(highs), f"{what}: statements disagree: " + " | ".join(
        f"{f.value:g} in {f.where!r}" for f in figures
    )
    if truth is not None:
        for f in figures:
            assert abs(f.value - scale * truth) <= half_step(f.decimals), (
                f"{what}: {f.value:g} stated in {f.where!r}, the result says {scale * truth:g}"
            )


__all__ = ["NUMBER", "Page", "Stated", "Table", "check_agree", "number", "read_page", "stated"]
