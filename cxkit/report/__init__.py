"""The report pipeline: ``reports.yml`` -> papermill runs -> offline HTML, index, manifest.

From Python, as ``cxkit report --only data_health`` does it (this runs notebooks, so it
is not a doctest)::

    from cxkit.report import run_reports

    result = run_reports("reports.yml", only=["data_health"])
    result.exit_code  # 0 when every report succeeded, 1 when any failed

Modules: :mod:`~cxkit.report.config` (reports file), :mod:`~cxkit.report.runner`
(worker pool, timeouts, process-group kills), :mod:`~cxkit.report.scheduler` (which
report starts next, by estimated memory and duration), :mod:`~cxkit.report.export`
(notebook to offline HTML), :mod:`~cxkit.report.publish` (atomic writes, index,
manifest) and :mod:`~cxkit.report.pipeline` (the whole run).
"""

from __future__ import annotations

from cxkit.report.config import ReportConfig, ReportSpec, load_config, notebook_parameters
from cxkit.report.export import extract_headline, notebook_to_html, sanitize_html
from cxkit.report.pipeline import ReportStatus, RunResult, run_from_cli, run_reports

__all__ = [
    "ReportConfig",
    "ReportSpec",
    "ReportStatus",
    "RunResult",
    "extract_headline",
    "load_config",
    "notebook_parameters",
    "notebook_to_html",
    "run_from_cli",
    "run_reports",
    "sanitize_html",
]
