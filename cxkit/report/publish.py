"""Atomic publishing, ``index.html`` and ``manifest.json``."""

from __future__ import annotations

import html
import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cxkit.changes import changes_html
from cxkit.files import atomic_write
from cxkit.findings import NOT_AVAILABLE
from cxkit.report.export import page

__all__ = [
    "atomic_write",
    "format_as_of",
    "format_time",
    "index_html",
    "read_manifest",
    "write_manifest",
]


def format_time(ts: float | str | None) -> str:
    """Show a time as ``2026-11-24 06:01 UTC``.

    Parameters
    ----------
    ts
        Epoch seconds or an ISO string (naive means UTC); ``None`` or ``""`` for none.

    Returns
    -------
    str
        The time in UTC to the minute; ``""`` for none, an unparseable string as it is.

    Examples
    --------
    >>> format_time(0), format_time("2024-06-30T12:34:56+02:00"), format_time(None)
    ('1970-01-01 00:00 UTC', '2024-06-30 10:34 UTC', '')
    """
    if ts is None or ts == "":
        return ""
    if isinstance(ts, str):
        try:
            dt = datetime.fromisoformat(ts)
        except ValueError:
            return ts
    else:
        dt = datetime.fromtimestamp(ts, tz=UTC)
    if dt.tzinfo is not None:
        dt = dt.astimezone(UTC)
    return dt.strftime("%Y-%m-%d %H:%M UTC")


def format_as_of(text: str | None) -> str:
    """Show a manifest's ``as_of`` text: ``2024-12-31`` for a date, else to the minute.

    Parameters
    ----------
    text
        An ISO date or date-time (as :func:`cxkit.data.format_as_of` writes it), or
        ``None``.

    Returns
    -------
    str
        ``"2024-12-31"`` for a date or a midnight, else ``"2024-12-31 18:23 UTC"``;
        ``""`` for none.

    Examples
    --------
    >>> format_as_of("2024-12-31"), format_as_of("2024-12-31 18:23:11")
    ('2024-12-31', '2024-12-31 18:23 UTC')
    """
    if not text:
        return ""
    text = str(text)
    if text[11:19] in ("", "00:00:00"):
        return text[:10]
    return text[:16] + " UTC"


def read_manifest(out: Path) -> dict[str, Any]:
    """Read the previous run's manifest.

    Parameters
    ----------
    out
        The output folder.

    Returns
    -------
    dict
        ``out/manifest.json``, or ``{}`` when it is missing, unreadable or not an object.
    """
    try:
        data = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def write_manifest(out: Path, manifest: Mapping[str, Any]) -> Path:
    """Write ``manifest.json`` atomically.

    Parameters
    ----------
    out
        The output folder.
    manifest
        The manifest (values JSON-able, anything else written as ``str``).

    Returns
    -------
    pathlib.Path
        The file written.
    """
    text = json.dumps(manifest, indent=2, sort_keys=False, default=str) + "\n"
    return atomic_write(out / "manifest.json", text)


def index_html(manifest: Mapping[str, Any], order: Sequence[str]) -> str:
    """Build the report index: every report with its headline, status and link.

    Parameters
    ----------
    manifest
        The run's manifest (its ``reports``, ``as_of_resolved``, ``data``, times and
        versions).
    order
        Report names in the order to list them; reports not named follow.

    Returns
    -------
    str
        The ``index.html`` page. A failed report shows FAILED, its error and the time
        of its last good run; a report whose every part is "not available" shows that
        and why; an OK report with some parts not available says how many; only
        reports with a good run link to a page, and a report's published files
        (the scorecard) are linked under its headline.
    """
    reports: Mapping[str, Any] = manifest.get("reports", {})
    names = [n for n in order if n in reports] + [n for n in reports if n not in order]
    rows = []
    for name in names:
        r = reports[name]
        last_good = r.get("last_good") or {}
        title = html.escape(r.get("title") or name)
        link = f'<a href="{html.escape(name)}.html">{title}</a>' if last_good else title
        headline = r.get("headline") or last_good.get("headline") or ""
        notes = r.get("not_available") or []
        if r.get("status") == "OK":
            status = '<span class="cx-status cx-status-ok">OK</span>'
            if notes:
                parts = f"{len(notes)} part" + ("" if len(notes) == 1 else "s")
                status += f'<span class="cx-status-note">, {parts} not available</span>'
            detail = ""
        elif r.get("status") == NOT_AVAILABLE:
            status = f'<span class="cx-status cx-status-na">{NOT_AVAILABLE}</span>'
            why = notes[0] if notes else "the data supports none of its parts"
            detail = f'<div class="cx-na-detail">{html.escape(why)}</div>'
        else:
            status = '<span class="cx-status cx-status-failed">FAILED</span>'
            when = (
                f"last good run: {format_time(last_good.get('finished_at'))}"
                if last_good
                else "no good run yet"
            )
            where = r.get("executed_notebook")
            where = f"; details in {where}" if where else ""
            detail = (
                f'<div class="cx-fail-detail">{html.escape(r.get("error") or "failed")}'
                f"<br>{html.escape(when + where)}</div>"
            )
        files = [f for f in r.get("files") or [] if not Path(f).is_absolute()]
        if files:
            links = ", ".join(f'<a href="{html.escape(f)}">{html.escape(f)}</a>' for f in files)
            detail += f'<div class="cx-files">Files: {links}</div>'
        ran = format_time(r.get("finished_at"))
        secs = r.get("seconds")
        ran_text = f"{ran} ({secs:.1f} s)" if isinstance(secs, int | float) and ran else ran
        rows.append(
            "<tr>"
            f"<td>{link}</td>"
            f'<td><span class="cx-index-headline">{html.escape(headline)}</span>{detail}</td>'
            f'<td class="cx-index-status" data-report="{html.escape(name)}">{status}</td>'
            f"<td>{html.escape(ran_text)}</td>"
            "</tr>"
        )
    n_na = sum(1 for n in names if reports[n].get("status") == NOT_AVAILABLE)
    n_failed = sum(1 for n in names if reports[n].get("status") not in ("OK", NOT_AVAILABLE))
    summary = (
        f"All {len(names)} reports are up to date."
        if not n_failed and not n_na
        else f"{len(names) - n_na} of {len(names)} reports are up to date."
        if not n_failed
        else f"{n_failed} of {len(names)} reports FAILED in the last run; "
        "their last good version is still shown."
    )
    if n_na:
        summary += f" {n_na} {'is' if n_na == 1 else 'are'} not available for this data."
    body = (
        '<section class="cx-section">'
        f'<p class="cx-headline">{html.escape(summary)}</p>'
        + changes_html(manifest.get("changes"))
        + '<div class="cx-output"><table class="cx-index"><thead><tr><th>Report</th>'
        "<th>Headline</th><th>Status</th><th>Last run</th></tr></thead><tbody>"
        + "".join(rows)
        + "</tbody></table></div></section>"
    )
    meta = {
        "As of": format_as_of(manifest.get("as_of_resolved")),
        "Data": str(manifest.get("data") or ""),
        "Run": format_time(manifest.get("finished_at")),
    }
    footer = (
        html.escape(
            f"cxkit {manifest.get('versions', {}).get('cxkit', '')} · "
            f"run {manifest.get('run_id', '')} · "
        )
        + '<a href="manifest.json">manifest.json</a> records parameters, data fingerprint, '
        "package versions and timings"
    )
    return page(
        title="Customer experience reports",
        body=body,
        meta=meta,
        footer=footer,
        with_plotly=False,
        home=None,
    )
