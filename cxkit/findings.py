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
import math
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field

import pandas as pd
from IPython.display import HTML, display

from cxkit.stats import MIN_N

__all__ = [
    "Finding",
    "finding_from_rate",
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
    extra: dict[str, object] = field(default_factory=dict)

    @property
    def significant(self) -> bool | None:
        """Whether the comparison is significant at 5%, or None without a test."""
        if self.p_value is None:
            return None
        return self.p_value < 0.05

    def to_dict(self) -> dict[str, object]:
        """Return the finding as a JSON-friendly dict.

        Returns
        -------
        dict of str to object
            Every field, plus ``significant``.
        """
        d = asdict(self)
        d["significant"] = self.significant
        return d


#: The scale of :attr:`Finding.importance`: 0 (background) to 10 (the headline number).
IMPORTANCE_MAX = 10.0


def _num(value: object) -> float | None:
    """Return ``value`` as a float, or None for a missing value."""
    if value is None:
        return None
    try:
        out = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return None if math.isnan(out) else out


def finding_from_rate(
    row: pd.Series | Mapping[str, object],
    *,
    domain: str,
    metric: str,
    sentence: str,
    unit: str = "share",
    importance: float,
    value: str = "value",
    low: str | None = "ci_low",
    high: str | None = "ci_high",
    n: str | None = "n",
    scale: float = 1.0,
    comparison: str | None = None,
    p_value: str | float | None = None,
    small_n: bool | None = None,
    extra: Mapping[str, object] | None = None,
) -> Finding:
    """Build a :class:`Finding` from one row of a rate or score table.

    Every domain's tables carry a value, its interval and its ``n`` (and often a
    ``small_n`` flag) under their own column names; this reads them the same way
    everywhere, so no finding forgets its interval or its small-group flag.

    Parameters
    ----------
    row
        A table row (a ``pandas.Series`` or a mapping).
    domain, metric, sentence, unit
        As in :class:`Finding`.
    importance
        0 to :data:`IMPORTANCE_MAX` (10); larger is shown first.
    value, low, high, n
        The row's column names for the value, the interval bounds and the count;
        ``None`` when the row has none.
    scale
        Multiplies the value and its interval (``100`` to report a share in percent).
    comparison
        What the value is compared to, in words.
    p_value
        A column name holding the p-value, or the p-value itself.
    small_n
        The small-group flag; by default the row's ``small_n`` column, else whether
        ``n`` is below :data:`cxkit.stats.MIN_N`.
    extra
        Anything else to keep with the finding.

    Returns
    -------
    Finding
        The finding.

    Raises
    ------
    ValueError
        When ``importance`` is outside 0–10.

    Examples
    --------
    >>> f = finding_from_rate({"value": 0.25, "ci_low": 0.2, "ci_high": 0.3, "n": 20},
    ...                       domain="churn", metric="rate", sentence="25% churned.",
    ...                       importance=5)
    >>> (f.value, f.ci_low, f.n, f.small_n)
    (0.25, 0.2, 20, True)
    """
    if not 0.0 <= importance <= IMPORTANCE_MAX:
        raise ValueError(f"importance must be between 0 and {IMPORTANCE_MAX}, got {importance}")
    raw_value = _num(row[value])
    count = None if n is None or _num(row.get(n)) is None else int(row[n])
    if small_n is None:
        if "small_n" in row and row["small_n"] is not None and not pd.isna(row["small_n"]):
            small_n = bool(row["small_n"])
        else:
            small_n = count is not None and count < MIN_N
    pv = _num(row.get(p_value)) if isinstance(p_value, str) else _num(p_value)

    def scaled(col: str | None) -> float | None:
        got = None if col is None else _num(row.get(col))
        return None if got is None else scale * got

    return Finding(
        domain=domain,
        metric=metric,
        value=float("nan") if raw_value is None else scale * raw_value,
        sentence=sentence,
        unit=unit,
        ci_low=scaled(low),
        ci_high=scaled(high),
        n=count,
        comparison=comparison,
        p_value=pv,
        importance=float(importance),
        small_n=bool(small_n),
        extra=dict(extra or {}),
    )


def findings_frame(findings: Iterable[Finding]) -> pd.DataFrame:
    """Return the findings as a pandas DataFrame (one row each).

    Parameters
    ----------
    findings
        The findings.

    Returns
    -------
    pandas.DataFrame
        One row per finding, the columns of :meth:`Finding.to_dict`.
    """
    return pd.DataFrame([f.to_dict() for f in findings])


def _display_html(text: str) -> None:
    display(HTML(text))


def show_findings(findings: Iterable[Finding], *, top: int | None = None) -> None:
    """Show findings as a bulleted list of sentences, most important first.

    Sentences are HTML-escaped; a small-group finding's item has the class ``cx-small``.

    Parameters
    ----------
    findings
        The findings, in any order.
    top
        Show only the ``top`` most important; ``None`` shows all.
    """
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
    """Show the report's one-line headline; the report index picks it up.

    Parameters
    ----------
    text
        The headline (HTML-escaped).
    """
    _display_html(f'<p class="cx-headline">{html.escape(text)}</p>')


def takeaway(text: str) -> None:
    """Show a one-line takeaway under a chart or table.

    Parameters
    ----------
    text
        The takeaway (HTML-escaped).
    """
    _display_html(f'<p class="cx-takeaway">{html.escape(text)}</p>')


def not_available(reason: object) -> None:
    """Show the short "not available" note for an analysis the data cannot support.

    Parameters
    ----------
    reason
        What is missing: a sentence or a :class:`~cxkit.errors.NotAvailableError`
        (shown as ``str(reason)``, HTML-escaped).
    """
    _display_html(f'<div class="cx-not-available">{html.escape(str(reason))}</div>')
