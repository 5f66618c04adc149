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
* :func:`takeaway` — a one-line takeaway under a chart (``cx-takeaway``);
* :func:`warning` — a warning a reader must not miss (``cx-warning``);
* :func:`published_files` — the files a report publishes beside its page.

Each of these outputs also carries what it is in its display metadata (key
:data:`OUTPUT_KEY`), so the report pipeline reads an executed notebook's status from
its outputs (:func:`notebook_status`) with no change to the notebooks: a report whose
every part is "not available" is published as such, not as OK.
"""

from __future__ import annotations

import html
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
from IPython.display import HTML, display

from cxkit.stats import MIN_N

__all__ = [
    "NOT_AVAILABLE",
    "OUTPUT_KEY",
    "Finding",
    "NotebookStatus",
    "finding_from_rate",
    "finding_record",
    "findings_frame",
    "headline",
    "not_available",
    "notebook_status",
    "published_files",
    "show_findings",
    "takeaway",
    "warning",
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


#: The display-metadata key under which these helpers say what an output is: ``{"kind":
#: "headline" | "findings" | "takeaway" | "not_available" | "files", ...}``.
OUTPUT_KEY = "cxkit"
#: The status of a report whose every part is "not available" (the pipeline's word).
NOT_AVAILABLE = "not available"


class _Shown(HTML):
    """HTML whose display output also says what it is (``{OUTPUT_KEY: facts}`` metadata)."""

    def __init__(self, text: str, facts: dict[str, object]) -> None:
        super().__init__(text)
        self.facts = facts

    def _repr_mimebundle_(
        self, include: object = None, exclude: object = None
    ) -> tuple[dict[str, str], dict[str, object]]:
        plain = html.unescape(re.sub(r"<[^>]+>", " ", str(self.data)))
        return {"text/html": self.data, "text/plain": " ".join(plain.split())}, {
            OUTPUT_KEY: self.facts
        }


def _display_html(text: str, kind: str | None = None, **facts: object) -> None:
    display(_Shown(text, {"kind": kind, **facts}) if kind else HTML(text))


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
        _display_html('<div class="cx-findings"><p>No findings.</p></div>', "findings", n=0)
        return
    lis = "".join(
        f'<li class="{"cx-small" if f.small_n else ""}">{html.escape(f.sentence)}</li>'
        for f in items
    )
    _display_html(
        f'<div class="cx-findings"><ul>{lis}</ul></div>',
        "findings",
        n=len(items),
        findings=[finding_record(f) for f in items],
    )


def finding_record(finding: Finding) -> dict[str, object]:
    """Return a finding as plain JSON data (what a notebook's output metadata keeps).

    Non-finite numbers become None and anything that is not a number, text or flag
    becomes text, so the record survives the notebook file and the history store of
    :mod:`cxkit.changes`.

    Examples
    --------
    >>> f = Finding("churn", "churn_rate", 0.2, "20% churned.", unit="share", n=100,
    ...             ci_low=float("nan"), extra={"as_of": pd.Timestamp("2024-01-31")})
    >>> r = finding_record(f)
    >>> r["value"], r["ci_low"], r["extra"]
    (0.2, None, {'as_of': '2024-01-31 00:00:00'})
    """

    def plain(v: object) -> object:
        if isinstance(v, Mapping):
            return {str(k): plain(x) for k, x in v.items()}
        if isinstance(v, list | tuple):
            return [plain(x) for x in v]
        if hasattr(v, "item") and not isinstance(v, str | bytes):
            v = v.item()  # numpy scalars
        if isinstance(v, bool | int | str) or v is None:
            return v
        if isinstance(v, float):
            return v if math.isfinite(v) else None
        return str(v)

    return {str(k): plain(v) for k, v in finding.to_dict().items()}


def headline(text: str) -> None:
    """Show the report's one-line headline; the report index picks it up.

    Parameters
    ----------
    text
        The headline (HTML-escaped).
    """
    _display_html(f'<p class="cx-headline">{html.escape(text)}</p>', "headline")


def takeaway(text: str) -> None:
    """Show a one-line takeaway under a chart or table.

    Parameters
    ----------
    text
        The takeaway (HTML-escaped).
    """
    _display_html(f'<p class="cx-takeaway">{html.escape(text)}</p>', "takeaway")


def not_available(reason: object) -> None:
    """Show the short "not available" note for an analysis the data cannot support.

    The output's metadata records the note, so the report pipeline can tell a report
    with some parts not available from one with nothing else to show
    (:func:`notebook_status`).

    Parameters
    ----------
    reason
        What is missing: a sentence or a :class:`~cxkit.errors.NotAvailableError`
        (shown as ``str(reason)``, HTML-escaped).
    """
    text = str(reason)
    _display_html(
        f'<div class="cx-not-available">{html.escape(text)}</div>', "not_available", reason=text
    )


def warning(text: str) -> None:
    """Show a warning a reader must not miss (e.g. a model that lost to its baseline).

    Parameters
    ----------
    text
        What is wrong, how sure we are and what the report does about it (HTML-escaped).
    """
    _display_html(
        f'<div class="cx-warning"><strong>Warning:</strong> {html.escape(text)}</div>', "warning"
    )


def published_files(files: Sequence[str | Path], *, what: str) -> None:
    """Say in one plain sentence which files a report published beside its page.

    The output's metadata lists the files, and the report pipeline records them in
    ``manifest.json`` and on the index.

    Parameters
    ----------
    files
        The files written (their names are shown, their full paths recorded).
    what
        What they hold, as the start of the sentence ("The customer scorecard").
    """
    paths = [Path(f).resolve() for f in files]
    names = [p.name for p in paths]
    listed = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
    _display_html(
        f'<p class="cx-takeaway">{html.escape(f"{what} is published as {listed}.")}</p>',
        "files",
        files=[str(p) for p in paths],
    )


@dataclass(frozen=True)
class NotebookStatus:
    """What an executed notebook shows, as the report pipeline reads it.

    Attributes
    ----------
    not_available
        The "not available" notes it shows (each text once, in order).
    shown
        How many outputs show something else: a figure, a table, findings, a
        takeaway (a headline, an empty findings list and printed text do not count).
    files
        The files it published beside its page (:func:`published_files`).
    findings
        The findings it shows (:func:`show_findings`), as :func:`finding_record` dicts:
        what :mod:`cxkit.changes` compares run over run.
    """

    not_available: tuple[str, ...] = ()
    shown: int = 0
    files: tuple[str, ...] = ()
    findings: tuple[dict[str, Any], ...] = ()

    @property
    def status(self) -> str:
        """``"OK"``, or :data:`NOT_AVAILABLE` when nothing but notes is shown."""
        return NOT_AVAILABLE if self.not_available and not self.shown else "OK"

    @property
    def reason(self) -> str | None:
        """The first note: why the report is not available (None without notes)."""
        return self.not_available[0] if self.not_available else None


#: Cells the HTML page leaves out (cxkit.report.export): their outputs do not count.
_HIDDEN_TAGS = {"parameters", "injected-parameters", "remove-cell", "remove-output"}


def notebook_status(nb: Mapping[str, Any]) -> NotebookStatus:
    """Read an executed notebook's status from its outputs' display metadata.

    A notebook shows its "not available" notes with :func:`not_available`; this counts
    them and the outputs that show something else. A report with notes and nothing
    else (e.g. the voice of the customer on data without survey answers) is
    :data:`NOT_AVAILABLE`; with notes beside other content it is OK with some parts
    not available.

    Parameters
    ----------
    nb
        The executed notebook (a dict or nbformat node).

    Returns
    -------
    NotebookStatus
        The notes, the number of other outputs shown and the published files.

    Examples
    --------
    >>> note = {"output_type": "display_data", "data": {"text/html": "..."},
    ...         "metadata": {"cxkit": {"kind": "not_available", "reason": "needs X"}}}
    >>> nb = {"cells": [{"cell_type": "code", "metadata": {}, "outputs": [note]}]}
    >>> s = notebook_status(nb)
    >>> s.status, s.reason
    ('not available', 'needs X')
    """
    notes: dict[str, None] = {}
    files: dict[str, None] = {}
    shown_findings: list[dict[str, Any]] = []
    shown = 0
    for cell in nb.get("cells", []):
        if cell.get("cell_type") != "code":
            continue
        if _HIDDEN_TAGS & set(cell.get("metadata", {}).get("tags", [])):
            continue
        for out in cell.get("outputs", []):
            if out.get("output_type") not in ("display_data", "execute_result"):
                continue  # printed text and errors are not what a report shows
            facts = (out.get("metadata") or {}).get(OUTPUT_KEY) or {}
            kind = facts.get("kind")
            if kind == "findings":
                shown_findings.extend(dict(f) for f in facts.get("findings") or [])
            if kind == "not_available":
                notes.setdefault(str(facts.get("reason", "")), None)
            elif kind == "files":
                files.update(dict.fromkeys(str(f) for f in facts.get("files", [])))
            elif kind == "headline" or (kind == "findings" and not facts.get("n")):
                continue
            elif out.get("data"):
                shown += 1
    return NotebookStatus(tuple(notes), shown, tuple(files), tuple(shown_findings))
