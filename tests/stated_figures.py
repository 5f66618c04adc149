"""Read the figures a report page states, and check that every statement of one agrees.

A page states a figure in several places: the headline, the findings, the takeaway under
a chart, a chart's title, a table, a persona card. :func:`read_page` collects those
places from a report's HTML; the ``*_claims`` functions turn each into :class:`Claim`
records — a *key* naming the quantity (``("step", "retention", "advocacy")``), the value
as shown (with the tolerance its rounding allows) and the n it is stated with — by the
grammar of the sentences and by the columns of the tables, not by today's wording of one
sentence: a new sentence or a new table row of the same shape is read as well.
:func:`disagreements` lists every pair of statements of one key that cannot both be
true, and :func:`against` every statement that differs from the analysis result.

Used by ``tests/lifecycle/test_stated_figures.py``, ``tests/personas/test_stated_figures.py``
and ``tests/test_health.py``.
"""

from __future__ import annotations

import ast
import json
import math
import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from html.parser import HTMLParser
from itertools import combinations
from pathlib import Path
from typing import Any

from cxkit.display import column_label

Key = tuple[Any, ...]

# ---- page ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Table:
    """One HTML table: its header labels and its rows of cell texts."""

    headers: list[str]
    rows: list[list[str]]

    def column(self, label: str) -> int | None:
        """Return the index of the column with this header label, or None."""
        return self.headers.index(label) if label in self.headers else None


@dataclass
class Page:
    """What a report page states: sentences by place, tables and chart titles."""

    statements: list[tuple[str, str]] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)

    def texts(self, *places: str) -> list[tuple[str, str]]:
        """Return the (place, text) statements whose place starts with one of ``places``."""
        return [(w, t) for w, t in self.statements if w.startswith(places)]


_CAPTURE = {
    "cx-headline": "headline",
    "cx-takeaway": "takeaway",
    "cx-not-available": "note",
}


class _Reader(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.page = Page()
        self._stack: list[tuple[str, str | None]] = []  # (tag, place it opens)
        self._buf: list[str] | None = None
        self._place: str | None = None
        self._findings = 0
        self._card: str | None = None
        self._card_depth = 0
        self._h4: list[str] | None = None
        self._table: dict[str, Any] | None = None
        self._cell: list[str] | None = None
        self._in_head = False
        self._row: list[str] | None = None
        self._skip = 0

    # -- helpers
    def _open(self, place: str) -> None:
        self._buf, self._place = [], place

    def _close(self) -> None:
        if self._buf is not None and self._place is not None:
            text = " ".join("".join(self._buf).split())
            if text:
                self.page.statements.append((self._place, text))
        self._buf = self._place = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "style"):
            self._skip += 1
            return
        cls = (dict(attrs).get("class") or "").split()
        opened = None
        if self._buf is None and self._table is None:
            for c, place in _CAPTURE.items():
                if c in cls:
                    self._open(place)
                    opened = place
        if "cx-findings" in cls:
            self._findings += 1
            opened = "findings"
        if "cx-card" in cls:
            self._card, self._card_depth = "", len(self._stack) + 1
            opened = "card"
        if tag == "h4" and self._card is not None:
            self._h4 = []
        if tag == "li" and self._buf is None and (self._findings or self._card is not None):
            self._open("finding" if self._findings else f"card:{self._card}")
            opened = "li"
        if tag == "table":
            self._table = {"headers": [], "rows": []}
        if self._table is not None:
            if tag == "thead":
                self._in_head = True
            elif tag == "tr":
                self._row = []
            elif tag in ("td", "th"):
                self._cell = []
        self._stack.append((tag, opened))

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style"):
            self._skip = max(0, self._skip - 1)
            return
        if self._table is not None:
            if tag in ("td", "th") and self._cell is not None and self._row is not None:
                self._row.append(" ".join("".join(self._cell).split()))
                self._cell = None
            elif tag == "tr" and self._row is not None:
                if self._in_head:
                    self._table["headers"] = self._row
                elif self._row:
                    self._table["rows"].append(self._row)
                self._row = None
            elif tag == "thead":
                self._in_head = False
            elif tag == "table":
                t = self._table
                self.page.tables.append(Table(list(t["headers"]), [list(r) for r in t["rows"]]))
                self._table = None
        if tag == "h4" and self._h4 is not None:
            self._card = " ".join("".join(self._h4).split())
            self._h4 = None
        # close what this tag opened
        while self._stack:
            t, opened = self._stack.pop()
            if opened in ("headline", "takeaway", "note", "li"):
                self._close()
            if opened == "findings":
                self._findings -= 1
            if opened == "card":
                self._card = None
            if t == tag:
                break

    def handle_data(self, data: str) -> None:
        if self._skip:
            return
        if self._buf is not None:
            self._buf.append(data)
        if self._h4 is not None:
            self._h4.append(data)
        if self._cell is not None:
            self._cell.append(data)


def chart_titles(text: str) -> list[str]:
    """Return the title of every plotly figure drawn on the page, in order."""
    dec = json.JSONDecoder()
    out = []
    for m in re.finditer(r"Plotly\.newPlot\(\s*", text):
        pos = m.end()
        try:
            _, pos = dec.raw_decode(text, pos)  # the element id
            pos = text.index(",", pos) + 1
            pos += len(text[pos:]) - len(text[pos:].lstrip())
            _, pos = dec.raw_decode(text, pos)  # the traces
            pos = text.index(",", pos) + 1
            pos += len(text[pos:]) - len(text[pos:].lstrip())
            layout, _ = dec.raw_decode(text, pos)
        except (ValueError, json.JSONDecodeError):
            continue
        title = layout.get("title")
        title = title.get("text") if isinstance(title, dict) else title
        if title:
            out.append(re.sub(r"<[^>]+>", " ", str(title)))
    return out


def read_page(text: str) -> Page:
    """Read a report page: its stated sentences, tables, cards and chart titles.

    Parameters
    ----------
    text
        The page's HTML.

    Returns
    -------
    Page
        ``statements`` as (place, text) with place ``headline``, ``finding``,
        ``takeaway``, ``note``, ``card:<name>`` or ``chart``; ``tables``.
    """
    reader = _Reader()
    reader.feed(text)
    reader.close()
    page = reader.page
    page.statements += [("chart", " ".join(t.split())) for t in chart_titles(text)]
    return page


# ---- claims ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Claim:
    """One statement of one quantity: its key, value as shown, rounding tolerance, n."""

    key: Key
    value: float
    tol: float
    n: int | None
    where: str
    text: str


def share(text: str) -> tuple[float, float]:
    """Return a percentage as a 0–1 share and half of its last shown digit."""
    t = text.strip().rstrip("%").replace("\u2212", "-").replace(",", "")
    decimals = len(t.split(".")[1]) if "." in t else 0
    return float(t) / 100.0, 0.5 * 10.0 ** (-decimals) / 100.0


def number(text: str) -> tuple[float, float]:
    """Return a plain number and half of its last shown digit."""
    t = text.strip().replace("\u2212", "-").replace(",", "")
    decimals = len(t.split(".")[1]) if "." in t else 0
    return float(t), 0.5 * 10.0 ** (-decimals)


def count(text: str) -> int:
    """Return a count written with thousands separators."""
    return int(text.strip().replace(",", ""))


PCT = r"-?[\d.]+%"
NUM = r"[\d,]+"
NAME = r"[\w'().&/ -]+?"

#: A sentence rule: a regex and a function of its match (and the context) -> claims.
Rule = tuple[re.Pattern[str], Callable[[re.Match[str], Mapping[str, Any]], list[tuple]]]


def rule(pattern: str) -> Callable[[Callable[..., list[tuple]]], Rule]:
    """Register a sentence rule (decorator): the regex is searched, every match used."""

    def wrap(fn: Callable[..., list[tuple]]) -> Rule:
        return re.compile(pattern), fn

    return wrap


def sentence_claims(
    page: Page, rules: Sequence[Rule], context: Mapping[str, Any] | None = None
) -> list[Claim]:
    """Apply ``rules`` to every statement of the page.

    A rule's function returns tuples ``(key, value, tol, n)``; every match of every rule
    in every statement counts.
    """
    out = []
    ctx = dict(context or {})
    for where, text in page.statements:
        for rx, fn in rules:
            for m in rx.finditer(text):
                for key, value, tol, n in fn(m, ctx):
                    out.append(Claim(tuple(key), float(value), float(tol), n, where, text))
    return out


def unread(page: Page, rules: Sequence[Rule], places: Sequence[str]) -> list[str]:
    """Return the statements of ``places`` with a percentage that no rule reads."""
    out = []
    for _where, text in page.texts(*places):
        if "%" in text and not any(rx.search(text) for rx, _ in rules):
            out.append(text)
    return out


# ---- checks ----------------------------------------------------------------------------


def _fmt(c: Claim) -> str:
    n = "" if c.n is None else f", n={c.n:,}"
    return f"{c.value:.4g}{n} [{c.where}: {c.text[:140]}]"


def grouped(claims: Iterable[Claim]) -> dict[Key, list[Claim]]:
    """Return the claims by key."""
    by: dict[Key, list[Claim]] = defaultdict(list)
    for c in claims:
        by[c.key].append(c)
    return dict(by)


def _rounded(value: float, tol: float) -> float:
    """Round ``value`` half away from zero to the precision whose half-step is ``tol``."""
    if tol <= 0:
        return value
    step = 2 * tol
    return math.copysign(math.floor(abs(value) / step + 0.5 + 1e-9) * step, value)


def agree(a: Claim, b: Claim) -> bool:
    """Tell whether two statements of one quantity agree as a reader checks them.

    At the same precision they must be equal; otherwise the coarser one must be the finer
    one rounded (half up) to its precision: ``27%`` and ``27.4%`` agree, ``32%`` and
    ``32.5%`` do not (a reader rounds 32.5 to 33), nor do ``27.4%`` and ``23.6%``.
    """
    fine, coarse = (a, b) if a.tol <= b.tol else (b, a)
    scale = max(1.0, abs(fine.value), abs(coarse.value))
    if abs(fine.tol - coarse.tol) <= 1e-12 * scale:
        return abs(a.value - b.value) <= 1e-9 * scale
    return abs(_rounded(fine.value, coarse.tol) - coarse.value) <= 1e-9 * scale


def disagreements(claims: Iterable[Claim]) -> list[str]:
    """Return every pair of statements of one quantity that disagree (:func:`agree`).

    Two stated n of one quantity must also be equal.
    """
    out = []
    for key, cs in grouped(claims).items():
        for a, b in combinations(cs, 2):
            if not agree(a, b):
                out.append(f"{key}: {_fmt(a)}  vs  {_fmt(b)}")
            elif a.n is not None and b.n is not None and a.n != b.n:
                out.append(f"{key}: n differs: {_fmt(a)}  vs  {_fmt(b)}")
    return out


def against(claims: Iterable[Claim], expected: Mapping[Key, tuple[float, int | None]]) -> list[str]:
    """Return every statement that differs from the analysis result's own value or n."""
    out = []
    for c in claims:
        if c.key not in expected:
            continue
        value, n = expected[c.key]
        if abs(c.value - value) > c.tol + 1e-9:
            out.append(f"{c.key}: stated {_fmt(c)}, the result has {value:.4g}")
        elif c.n is not None and n is not None and c.n != n:
            out.append(f"{c.key}: stated n={c.n:,} [{c.where}: {c.text[:140]}], result n={n:,}")
    return out


def repeated(claims: Iterable[Claim]) -> dict[Key, int]:
    """Return how many places state each quantity (for tests that need some repeats)."""
    return {k: len({(c.where, c.text) for c in cs}) for k, cs in grouped(claims).items()}


# ---- table helpers -----------------------------------------------------------------------


def label(name: str, labels: Mapping[str, str] | None = None) -> str:
    """Return the header label a report shows for a result column (cxkit.display)."""
    return column_label(name, labels)


def cell_share(text: str) -> tuple[float, float] | None:
    """Return the leading percentage of a cell, or None."""
    m = re.match(rf"\s*({PCT})", text)
    return share(m.group(1)) if m else None


def cell_count(text: str) -> int | None:
    """Return the leading count of a cell, or None."""
    m = re.match(r"\s*([\d,]+)(?![\d.%])", text)
    return count(m.group(1)) if m else None


def cell_number(text: str) -> tuple[float, float] | None:
    """Return the leading signed number of a cell, or None."""
    m = re.match(r"\s*([+\-\u2212]?[\d,]*\.?\d+)", text)
    return number(m.group(1)) if m else None


def notebook_defaults(path: Any) -> dict[str, Any]:
    """Return the default values of a notebook's ``parameters`` cell (literals only)."""
    nb = json.loads(Path(path).read_text(encoding="utf-8"))
    for cell in nb["cells"]:
        if cell["cell_type"] == "code" and "parameters" in cell.get("metadata", {}).get("tags", []):
            src = "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
            out = {}
            for node in ast.parse(src).body:
                if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name):
                    try:
                        out[node.targets[0].id] = ast.literal_eval(node.value)
                    except ValueError:
                        continue
            return out
    return {}
