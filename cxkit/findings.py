"""The :class:`Finding` record every domain returns, and how notebooks show findings.

A finding is one number a person reads, with what it is compared to, how sure we are,
and a plain sentence. Domain modules expose ``findings(...) -> list[Finding]``; the
domain notebooks and the executive summary show the same objects, so a number never
differs between two reports.

Notebook display helpers (all emit HTML with stable CSS classes that the report
exporter styles and reads):

* :func:`show_findings` — a bulleted list of sentences (``cx-findings``);
* :func:`headline` — the report's one-line headline for the index (``cx-headline``);
* :func:`not_available` — the short "not available" note (``cx-not-available``);
* :func:`takeaway` — a one-line takeaway under a chart (``cx-takeaway``).
"""

from __future__ import annotations

import html
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = [
    "Finding",
    "findings_frame",
    "headline",
    "not_available",
    "show_findings",
    "takeaway",
]


@dataclass(frozen=True)
class Finding:
    """One structured finding.

    Attributes
    ----------
    domain
        ``"lifecycle"``, ``"churn"``, ``"clv"``, ``"personas"``, ``"voc"`` or ``"data"``.
    metric
        A stable key such as ``"nps"`` or ``"funnel_conversion"``.
    value
        The number (in the unit given).
    unit
        ``"points"``, ``"share"``, ``"customers"``, ``"USD"``, ``"days"``, ...
    sentence
        The plain sentence a stakeholder reads, with the interval or n in it.
    ci_low, ci_high
        The interval, when there is one.
    n
        How many customers or responses the number rests on.
    comparison
        What it was compared to, in words (``"vs previous 90 days"``), if anything.
    p_value
        The test's p-value for the comparison, if any.
    importance
        Larger is more important; the summary shows the top findings per domain.
    small_n
        True when the number rests on fewer than ``MIN_N`` customers/responses.
    """

    domain: str
    metric: str
    value: float
    sentence: str
    unit: str = ""
    ci_low: float | None = None
    ci_high: float | None = None
    n: int | None = None
    comparison: str | None = None
    p_value: float | None = None
    importance: float = 0.0
    small_n: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def significant(self) -> bool | None:
        """Whether the comparison is significant at 5%, or None without a test."""
        if self.p_value is None:
            return None
        return self.p_value < 0.05

    def to_dict(self) -> dict[str, Any]:
        """A JSON-friendly dict."""
        d = asdict(self)
        d["significant"] = self.significant
        return d


def findings_frame(findings: Iterable[Finding]) -> Any:
    """The findings as a pandas DataFrame (one row each)."""
    import pandas as pd

    return pd.DataFrame([f.to_dict() for f in findings])


def _display_html(text: str) -> None:
    from IPython.display import HTML, display

    display(HTML(text))


def show_findings(findings: Iterable[Finding], *, top: int | None = None) -> None:
    """Show findings as a bulleted list of sentences (sentences are HTML-escaped)."""
    items = sorted(findings, key=lambda f: -f.importance)
    if top is not None:
        items = items[:top]
    if not items:
        _display_html('<div class="cx-findings"><p>No findings.</p></div>')
        return
    lis = "".join(
        f'<li class="{"cx-small" if f.small_n else ""}">{html.escape(f.sentence)}</li>'
        for f in items
    )
    _display_html(f'<div class="cx-findings"><ul>{lis}</ul></div>')


def headline(text: str) -> None:
    """Show the report's one-line headline; the report index picks it up."""
    _display_html(f'<p class="cx-headline">{html.escape(text)}</p>')


def takeaway(text: str) -> None:
    """Show a one-line takeaway under a chart or table."""
    _display_html(f'<p class="cx-takeaway">{html.escape(text)}</p>')


def not_available(reason: object) -> None:
    """Show the short "not available" note for an analysis the data cannot support."""
    _display_html(f'<div class="cx-not-available">{html.escape(str(reason))}</div>')
