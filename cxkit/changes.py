"""What changed since the last run: each finding compared with its previous value.

A scheduled ``cxkit report`` keeps the findings of every good run in a small history
store under its output folder (``<out>/_history/<run id>.json``, see
:func:`save_findings`). The next run compares its findings with those of the previous
good run (:func:`compare_findings`) and flags only the changes that are beyond their
intervals:

* a share with its ``n`` (a conversion, churn or repeat rate) — the two-proportion
  z-test (:func:`cxkit.stats.two_proportion_test`);
* any other number with a 95% interval (NPS, CSAT, a CLV total) — the difference with
  the interval of the difference, from each interval's standard error (for NPS this is
  the difference interval of two independent NPS estimates);
* numbers with neither (counts, the number of personas) are listed as not tested.

With dozens of findings compared at once, the p-values of each report's findings are
adjusted together with Holm's method (:func:`cxkit.stats.holm`), so the chance that a
report flags any change when nothing changed stays at or below 5%.

:func:`run_changes` puts it together for a run (the report index and the executive
summary both use it, so they flag the same changes), and :func:`save_findings` keeps
this run's findings — with those of reports this run left out, carried forward — for
the next.
"""

from __future__ import annotations

import html
import json
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from IPython.display import HTML, display
from scipy import stats as sps

from cxkit.stats import holm, p_text, two_proportion_test

__all__ = [
    "HISTORY_DIR",
    "ChangeReport",
    "RunFindings",
    "carry_forward",
    "changed_rows",
    "changes_html",
    "compare_findings",
    "describe_change",
    "finding_key",
    "history_runs",
    "previous_findings",
    "run_changes",
    "save_findings",
    "show_changes",
]

#: The history store's folder under a report folder.
HISTORY_DIR = "_history"
#: Units read as a share between 0 and 1, and as a percentage between 0 and 100.
SHARE_UNITS = ("share",)
PERCENT_UNITS = ("%", "percent")
#: Fields of a finding's ``extra`` that name what it is about (a step, a persona...).
SUBJECT_TYPES = (str, int, bool)


@dataclass(frozen=True)
class RunFindings:
    """The findings of one good run, as the history store keeps them."""

    run_id: str
    finished_at: str
    as_of: str | None
    findings: list[dict[str, Any]]


def finding_key(finding: Mapping[str, Any]) -> str:
    """Return what identifies a finding across runs: domain, metric and its subject.

    The subject is the finding's ``extra`` fields that are text or whole numbers (the
    step, persona or channel it is about), so a "biggest drop-off" at another step is a
    different finding, not a change.

    Examples
    --------
    >>> finding_key({"domain": "voc", "metric": "nps", "extra": {"survey": "nps"}})
    'voc/nps[survey=nps]'
    >>> finding_key({"domain": "churn", "metric": "churn_rate"})
    'churn/churn_rate'
    """
    extra = finding.get("extra") or {}
    subject = sorted(
        (str(k), str(v))
        for k, v in extra.items()
        if isinstance(v, SUBJECT_TYPES) and not isinstance(v, float)
    )
    base = f"{finding.get('domain', '')}/{finding.get('metric', '')}"
    return base + ("[" + ",".join(f"{k}={v}" for k, v in subject) + "]" if subject else "")


def _num(value: object) -> float | None:
    """Return a finite float, or None."""
    try:
        out = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return out if math.isfinite(out) else None


def _as_share(finding: Mapping[str, Any]) -> tuple[float, int] | None:
    """Return a share between 0 and 1 and its n, when the finding is a proportion of n."""
    value, n = _num(finding.get("value")), _num(finding.get("n"))
    unit = str(finding.get("unit") or "")
    if value is None or n is None or n < 1:
        return None
    if unit in SHARE_UNITS and 0.0 <= value <= 1.0:
        return value, int(n)
    if unit in PERCENT_UNITS and 0.0 <= value <= 100.0:
        return value / 100.0, int(n)
    return None


def _se_from_interval(finding: Mapping[str, Any], z: float) -> float | None:
    """Return the standard error implied by a finding's interval (half-width / z)."""
    lo, hi = _num(finding.get("ci_low")), _num(finding.get("ci_high"))
    if lo is None or hi is None or hi < lo:
        return None
    return (hi - lo) / (2.0 * z)


def _difference(
    before: Mapping[str, Any], after: Mapping[str, Any], level: float
) -> dict[str, Any] | None:
    """Return the change from ``before`` to ``after``, its interval and p-value, or None."""
    b, a = _as_share(before), _as_share(after)
    scale = 100.0 if str(after.get("unit") or "") in PERCENT_UNITS else 1.0
    if a is not None and b is not None:
        (pa, na), (pb, nb) = a, b
        r = two_proportion_test(round(pa * na), na, round(pb * nb), nb, level=level)
        return {
            "diff": scale * float(r["diff"]),
            "diff_low": scale * float(r["ci_low"]),
            "diff_high": scale * float(r["ci_high"]),
            "p_value": float(r["p_value"]),
            "test": "two-proportion z-test",
        }
    z = float(sps.norm.ppf(0.5 + level / 2.0))
    se_b, se_a = _se_from_interval(before, z), _se_from_interval(after, z)
    vb, va = _num(before.get("value")), _num(after.get("value"))
    if se_a is None or se_b is None or va is None or vb is None:
        return None
    diff, se = va - vb, math.hypot(se_a, se_b)
    p = 1.0 if se == 0 and diff == 0 else float(2 * sps.norm.sf(abs(diff) / se)) if se else 0.0
    # never wider than the two intervals allow (an NPS of +100 cannot rise further)
    lo_a, hi_a = float(after["ci_low"]), float(after["ci_high"])
    lo_b, hi_b = float(before["ci_low"]), float(before["ci_high"])
    return {
        "diff": diff,
        "diff_low": max(diff - z * se, lo_a - hi_b),
        "diff_high": min(diff + z * se, hi_a - lo_b),
        "p_value": p,
        "test": "difference of intervals (normal)",
    }


CHANGE_COLUMNS = [
    "key",
    "domain",
    "metric",
    "sentence",
    "unit",
    "before",
    "after",
    "n_before",
    "n_after",
    "diff",
    "diff_low",
    "diff_high",
    "p_value",
    "p_holm",
    "test",
    "changed",
]


def compare_findings(
    previous: Iterable[Mapping[str, Any]],
    current: Iterable[Mapping[str, Any]],
    *,
    alpha: float = 0.05,
    level: float = 0.95,
) -> pd.DataFrame:
    """Compare this run's findings with the previous run's and flag real changes.

    Parameters
    ----------
    previous, current
        Findings as dicts (:meth:`cxkit.findings.Finding.to_dict`), e.g. from
        :func:`previous_findings` and this run.
    alpha
        Family-wise error rate per report: a change is flagged when its p-value, Holm-
        adjusted across the findings of its domain (one report's findings are one
        family, so a report and the summary that repeats it flag the same changes), is
        below ``alpha``.
    level
        Confidence level of each difference's interval.

    Returns
    -------
    pandas.DataFrame
        One row per finding present in both runs (:data:`CHANGE_COLUMNS`): before and
        after, the difference with its interval, the test, raw and Holm p-values and
        ``changed``. Rows that could not be tested (no interval and no n) have NaN
        p-values and ``changed`` False. Sorted with the flagged changes first, then by
        p-value.

    Examples
    --------
    >>> before = [{"domain": "churn", "metric": "rate", "value": 0.20, "n": 4000,
    ...            "unit": "share", "sentence": "20% churned."}]
    >>> after = [{"domain": "churn", "metric": "rate", "value": 0.25, "n": 4000,
    ...           "unit": "share", "sentence": "25% churned."}]
    >>> row = compare_findings(before, after).iloc[0]
    >>> bool(row.changed), round(float(row["diff"]), 2), row.test
    (True, 0.05, 'two-proportion z-test')
    """
    prev = {finding_key(f): f for f in previous}
    rows, seen = [], set()
    for f in current:
        key = finding_key(f)
        if key not in prev or key in seen:
            continue  # new this run, or shown twice (a report and the summary)
        seen.add(key)
        b = prev[key]
        d = _difference(b, f, level) or {
            "diff": (_num(f.get("value")) or np.nan) - (_num(b.get("value")) or np.nan),
            "diff_low": np.nan,
            "diff_high": np.nan,
            "p_value": np.nan,
            "test": "not tested (no interval or n)",
        }
        rows.append(
            {
                "key": key,
                "domain": f.get("domain"),
                "metric": f.get("metric"),
                "sentence": f.get("sentence"),
                "unit": f.get("unit"),
                "before": _num(b.get("value")),
                "after": _num(f.get("value")),
                "n_before": _num(b.get("n")),
                "n_after": _num(f.get("n")),
                **d,
            }
        )
    out = pd.DataFrame(rows, columns=[c for c in CHANGE_COLUMNS if c not in ("p_holm", "changed")])
    out["p_holm"] = np.nan
    for _, family in out[out.p_value.notna()].groupby("domain", sort=False):
        out.loc[family.index, "p_holm"] = holm(family.p_value.to_numpy(float))
    out["changed"] = (out.p_holm < alpha).fillna(False).astype(bool)
    out = out.sort_values(["changed", "p_value"], ascending=[False, True], na_position="last")
    return out.reset_index(drop=True)[CHANGE_COLUMNS]


def save_findings(
    out: str | Path,
    run: RunFindings,
) -> Path:
    """Keep one good run's findings in the history store (``<out>/_history``).

    Parameters
    ----------
    out
        The report folder.
    run
        The run and its findings.

    Returns
    -------
    Path
        The file written (``<run id>.json``), written whole or not at all.
    """
    folder = Path(out) / HISTORY_DIR
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{run.run_id}.json"
    tmp = path.with_name(f".{path.name}.tmp")
    payload = {
        "run_id": run.run_id,
        "finished_at": run.finished_at,
        "as_of": run.as_of,
        "findings": run.findings,
    }
    tmp.write_text(json.dumps(payload, default=_jsonable, indent=1))
    os.replace(tmp, path)
    return path


def _jsonable(v: object) -> object:
    """Numbers and timestamps as JSON; anything else as text."""
    if isinstance(v, np.generic):
        return v.item()
    return str(v)


def previous_findings(out: str | Path, *, before: str | None = None) -> RunFindings | None:
    """Return the latest good run's findings in the history store, or None.

    Parameters
    ----------
    out
        The report folder.
    before
        Ignore this run (the one being made) and any later one; run ids sort by time.

    Returns
    -------
    RunFindings or None
        None when the store is empty (the first run) or unreadable files are all there is.
    """
    folder = Path(out) / HISTORY_DIR
    if not folder.is_dir():
        return None
    for path in sorted(folder.glob("*.json"), reverse=True):
        if before is not None and path.stem >= before:
            continue
        try:
            raw = json.loads(path.read_text())
            return RunFindings(
                run_id=str(raw["run_id"]),
                finished_at=str(raw["finished_at"]),
                as_of=raw.get("as_of"),
                findings=list(raw["findings"]),
            )
        except (OSError, ValueError, KeyError, TypeError):
            continue  # a damaged file is skipped; the one before it still compares
    return None


def changed_rows(changes: pd.DataFrame) -> pd.DataFrame:
    """Return only the flagged changes of :func:`compare_findings`."""
    return changes[changes.changed].reset_index(drop=True)


def describe_change(row: Mapping[str, Any] | pd.Series) -> str:
    """Say one flagged change in words, with before, after and the interval.

    Examples
    --------
    >>> describe_change({"metric": "churn_rate", "unit": "share", "before": 0.20,
    ...                  "after": 0.25, "diff": 0.05, "diff_low": 0.03, "diff_high": 0.07,
    ...                  "sentence": "25% churned.", "p_holm": 0.0001})
    'churn_rate rose from 20.0% to 25.0% (+5.0 points, 95% CI +3.0 to +7.0; Holm p < 0.001): 25% churned.'
    """
    unit = str(row.get("unit") or "")
    share = unit in SHARE_UNITS
    f = 100.0 if share else 1.0

    def num(v: float) -> str:
        return f"{f * v:.1f}%" if share else f"{v:,.4g}"

    def signed(v: float) -> str:
        return f"{f * v:+.1f}" if share or abs(v) < 1000 else f"{v:+,.0f}"

    verb = "rose" if float(row["diff"]) > 0 else "fell"
    holm_p = p_text(float(row["p_holm"]), "Holm p")
    what = " points" if share or unit in PERCENT_UNITS or unit == "points" else ""
    return (
        f"{row.get('metric')} {verb} from {num(float(row['before']))} to "
        f"{num(float(row['after']))} ({signed(float(row['diff']))}{what}, 95% CI "
        f"{signed(float(row['diff_low']))} to {signed(float(row['diff_high']))}; "
        f"{holm_p}): {row.get('sentence')}"
    )


def history_runs(out: str | Path) -> Sequence[str]:
    """Return the run ids kept in the history store, oldest first."""
    folder = Path(out) / HISTORY_DIR
    return sorted(p.stem for p in folder.glob("*.json")) if folder.is_dir() else []


@dataclass(frozen=True)
class ChangeReport:
    """A run's findings compared with those of the previous good run.

    Attributes
    ----------
    since
        The previous run (its id, when it finished, its ``as_of``).
    table
        :func:`compare_findings`'s table: every finding present in both runs.
    """

    since: RunFindings
    table: pd.DataFrame

    @property
    def since_text(self) -> str:
        """When the previous run was, in words: ``"the run of 2026-12-06 (data to …)"``."""
        when = str(self.since.finished_at)[:10]
        data = f" (data to {str(self.since.as_of)[:10]})" if self.since.as_of else ""
        return f"the run of {when}{data}"

    @property
    def changed(self) -> pd.DataFrame:
        """The flagged changes only."""
        return changed_rows(self.table)

    @property
    def n_tested(self) -> int:
        """How many findings were tested (those with an interval or an n)."""
        return int(self.table.p_value.notna().sum())

    def sentences(self) -> list[str]:
        """Say each flagged change (:func:`describe_change`), largest evidence first."""
        return [describe_change(row) for _, row in self.changed.iterrows()]

    def headline(self) -> str:
        """One sentence: how many findings changed beyond their intervals since when."""
        n = len(self.changed)
        if not len(self.table):
            return f"No finding of {self.since_text} could be compared with this run."
        if n == 0:
            return (
                f"Nothing changed beyond its 95% interval since {self.since_text}: "
                f"{self.n_tested} of {len(self.table)} findings compared were tested "
                "(Holm-adjusted per report)."
            )
        return (
            f"{n} finding{'s' if n != 1 else ''} changed beyond {'their' if n != 1 else 'its'} "
            f"95% interval since {self.since_text} ({self.n_tested} tested, Holm-adjusted "
            "per report)."
        )

    def to_dict(self) -> dict[str, Any]:
        """Return what the manifest records: the previous run, counts and the changes."""
        changed = self.changed
        return {
            "since_run": self.since.run_id,
            "since": self.since.finished_at,
            "since_as_of": self.since.as_of,
            "compared": len(self.table),
            "tested": self.n_tested,
            "headline": self.headline(),
            "changed": [
                {**{k: _plain(row[k]) for k in CHANGE_COLUMNS}, "text": describe_change(row)}
                for _, row in changed.iterrows()
            ],
        }


def _plain(v: object) -> object:
    """Return a JSON-friendly scalar (NaN becomes None)."""
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


def run_changes(
    out: str | Path | None, current: Iterable[Mapping[str, Any]], *, before: str | None = None
) -> ChangeReport | None:
    """Compare a run's findings with the previous good run kept under ``out``.

    Parameters
    ----------
    out
        The report folder holding the history store; None gives None.
    current
        This run's findings as dicts (:meth:`cxkit.findings.Finding.to_dict`).
    before
        This run's id, when it is already in the store.

    Returns
    -------
    ChangeReport or None
        None on the first run (nothing to compare with).
    """
    if out is None:
        return None
    prev = previous_findings(out, before=before)
    if prev is None:
        return None
    return ChangeReport(since=prev, table=compare_findings(prev.findings, list(current)))


def carry_forward(
    previous: RunFindings | None, current: Sequence[Mapping[str, Any]]
) -> list[dict[str, Any]]:
    """Return this run's findings plus the previous run's of domains this run left out.

    A run with ``--only`` compares and keeps only what it ran; the next full run still
    compares every report with its last good run.
    """
    ran = {f.get("domain") for f in current}
    kept = [dict(f) for f in (previous.findings if previous else []) if f.get("domain") not in ran]
    return [dict(f) for f in current] + kept


def changes_html(record: Mapping[str, Any] | None, *, when: str | None = None) -> str:
    """Return the "What changed since the last run" block of the index and the summary.

    Parameters
    ----------
    record
        :meth:`ChangeReport.to_dict` (the manifest's ``changes``), or None when there
        was no earlier run to compare with.
    when
        How to show the previous run's time; by default ``2026-12-07 01:42 UTC``.

    Returns
    -------
    str
        A ``cx-changes`` block: the headline sentence and one line per flagged change,
        or, on a first run, a note that changes are shown from the next run on.

    Examples
    --------
    >>> "first run" in changes_html(None)
    True
    """
    if not record:
        return (
            '<div class="cx-changes"><h2>What changed since the last run</h2>'
            "<p>This is the first run in this folder: from the next run on, this page "
            "leads with the findings that changed beyond their intervals.</p></div>"
        )
    raw = str(record.get("since") or "")
    since = when or (f"{raw[:10]} {raw[11:16]} UTC" if len(raw) >= 16 else raw)
    items = "".join(
        f"<li>{html.escape(str(c.get('text', '')))}</li>" for c in record.get("changed", [])
    )
    listed = f"<ul>{items}</ul>" if items else ""
    return (
        '<div class="cx-changes">'
        f"<h2>What changed since {html.escape(since)}</h2>"
        f"<p>{html.escape(str(record.get('headline', '')))}</p>{listed}</div>"
    )


def show_changes(report: ChangeReport | None) -> None:
    """Show :func:`changes_html` for a :func:`run_changes` result in a notebook."""
    display(HTML(changes_html(None if report is None else report.to_dict())))
