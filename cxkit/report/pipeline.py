"""``cxkit report``: validate, run every notebook, export, publish, index, manifest."""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import html
import json
import os
import platform
import secrets
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any, TextIO, TypeVar

import psutil

from cxkit import changes
from cxkit.cache import CACHE_ENV, store
from cxkit.data import DUCKDB_MEMORY_ENV, DUCKDB_TEMP_ENV, CXData, load, resolve_as_of
from cxkit.data import format_as_of as format_resolved_as_of
from cxkit.display import CURRENCY_ENV
from cxkit.errors import CxkitError, DataError, Problem, UsageError
from cxkit.findings import NOT_AVAILABLE, NotebookStatus, notebook_status
from cxkit.privacy import KEY_ENV, resolve_key
from cxkit.report.config import (
    ReportConfig,
    ReportSpec,
    check_parameters,
    load_config,
    notebook_parameters,
)
from cxkit.report.export import (
    extract_headline,
    notebook_to_html,
    prune_plotly_assets,
    publish_plotly,
)
from cxkit.report.publish import (
    atomic_write,
    format_as_of,
    format_time,
    index_html,
    read_manifest,
    write_manifest,
)
from cxkit.report.runner import Job, JobResult, kill_tree, leftover_processes, run_jobs
from cxkit.scale import SCALE_ENV
from cxkit.validate import format_problems, validate

__all__ = [
    "ReportStatus",
    "RunResult",
    "check_out_folder",
    "duration_estimates",
    "remove_stale_runs",
    "run_from_cli",
    "run_reports",
]

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT = 0, 1, 2
KEEP_RUNS = 10
_VERSIONED = (
    "cxkit", "pandas", "numpy", "ibis-framework", "duckdb", "sqlglot", "pyarrow", "scipy",
    "scikit-learn", "plotly", "papermill", "nbformat", "nbclient", "ipykernel",
)  # fmt: skip


@dataclass(frozen=True)
class ReportStatus:
    """How one report ended in this run.

    Attributes
    ----------
    name
        The report's name.
    ok
        True when it ran and was published (also when it is "not available").
    error
        What went wrong, in one line, or None.
    seconds
        How long its notebook ran.
    html
        The published page, or None when it failed.
    headline
        The page's headline (:func:`cxkit.findings.headline`), if any.
    status
        ``"OK"``, ``"not available"`` (it ran, but the data supports none of its
        parts: :func:`cxkit.findings.notebook_status`) or ``"FAILED"``.
    not_available
        The "not available" notes the page shows (all of it, or some parts).
    """

    name: str
    ok: bool
    error: str | None
    seconds: float
    html: Path | None
    headline: str | None
    status: str = "OK"
    not_available: tuple[str, ...] = ()


@dataclass(frozen=True)
class RunResult:
    """What :func:`run_reports` did.

    Attributes
    ----------
    run_id
        The run's id (``<UTC time>-<random>``), also its folder's name.
    exit_code
        0 when every report succeeded (a report "not available" for the data did not
        fail), 1 when any failed.
    out
        The output folder.
    run_dir
        ``out/_runs/<run_id>``: the executed notebooks, worker logs and manifest.
    reports
        How each report ended, by name.
    """

    run_id: str
    exit_code: int
    out: Path
    run_dir: Path
    reports: dict[str, ReportStatus] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """True when every report succeeded."""
        return self.exit_code == EXIT_OK

    @property
    def failed(self) -> list[str]:
        """Names of the reports that failed."""
        return [n for n, r in self.reports.items() if not r.ok]


def _versions() -> dict[str, str]:
    """Return the versions of Python and of the packages a report depends on."""
    out = {"python": platform.python_version()}
    for name in _VERSIONED:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return out


def _iso(ts: float) -> str:
    """Return epoch seconds as an ISO UTC time to the second."""
    return datetime.fromtimestamp(ts, tz=UTC).isoformat(timespec="seconds")


def _load_and_validate(cfg: ReportConfig) -> tuple[CXData, str, dict[str, Any], list[Problem]]:
    """Load the data, validate it (errors -> DataError) and return data facts.

    Returns ``(data, as_of, fingerprint, problems)``; ``problems`` are the warnings.
    """
    data = load(cfg.data, mapping=cfg.mapping)
    problems = validate(data, as_of=cfg.as_of)
    errors = [p for p in problems if p.severity == "error"]
    if errors:
        raise DataError(
            f"the data failed validation with {len(errors)} error(s); nothing was run or "
            f"published:\n{format_problems(problems, source=data.source)}"
        )
    as_of = resolve_as_of(data, cfg.as_of)
    return data, format_resolved_as_of(as_of), data.fingerprint(), problems


_V = TypeVar("_V")


def _expand(value: _V, subs: dict[str, str]) -> _V:
    """Replace ``{out}``, ``{run_dir}`` and ``{data}`` in string parameter values."""
    if isinstance(value, str):
        for key, text in subs.items():
            value = value.replace("{" + key + "}", text)
        return value  # type: ignore[return-value]
    if isinstance(value, dict):
        return {k: _expand(v, subs) for k, v in value.items()}  # type: ignore[return-value]
    if isinstance(value, list):
        return [_expand(v, subs) for v in value]  # type: ignore[return-value]
    return value


#: Memory estimate of a report never run on data of this size: a base plus this many
#: bytes per data row (the churn report measured about 165 at 1M customers).
UNKNOWN_BASE_MB = 400.0
UNKNOWN_BYTES_PER_ROW = 180.0
#: Margin on a measured peak (which report computes a shared result first varies).
MEASURED_MARGIN = 1.25
_KERNEL_BASE_MB = 300.0


def _total_rows(fingerprint: Mapping[str, Any] | None) -> float:
    """Return the rows of every table of a data fingerprint, summed."""
    tables = (fingerprint or {}).get("tables") or {}
    return float(sum(float(t.get("rows") or 0) for t in tables.values()))


def memory_estimates(
    previous: Mapping[str, Any],
    fingerprint: Mapping[str, Any],
    names: Sequence[str],
    *,
    share_mb: float | None = None,
) -> dict[str, tuple[float, str]]:
    """Estimate the peak memory (MB) of each report's kernel, and say where it comes from.

    A report's peak in the previous run's manifest, scaled by the change in data rows
    (above a kernel's ~300 MB base) with a 25% margin; without one, a conservative guess
    from the data's size (:data:`UNKNOWN_BASE_MB` + :data:`UNKNOWN_BYTES_PER_ROW` per row).

    Parameters
    ----------
    previous
        The previous run's manifest (``{}`` for none).
    fingerprint
        This run's data fingerprint (:meth:`cxkit.data.CXData.fingerprint`).
    names
        The reports to estimate.
    share_mb
        Each job's share of the memory budget when DuckDB is capped to part of it
        (:func:`duckdb_memory_env`): a guess never exceeds it, so a first run on big
        data still runs ``jobs`` reports at once.

    Returns
    -------
    dict of str to (float, str)
        Report name -> (estimated peak in MB, where the estimate comes from).

    Examples
    --------
    >>> prev = {"fingerprint": {"tables": {"orders": {"rows": 1000}}},
    ...         "reports": {"clv": {"peak_memory_mb": 500.0}}}
    >>> now = {"tables": {"orders": {"rows": 2000}}}
    >>> memory_estimates(prev, now, ["clv"])
    {'clv': (875.0, 'measured in the previous run')}
    """
    rows_now = _total_rows(fingerprint)
    rows_prev = _total_rows(previous.get("fingerprint"))
    prev_reports = previous.get("reports") or {}
    out: dict[str, tuple[float, str]] = {}
    for name in names:
        peak = (prev_reports.get(name) or {}).get("peak_memory_mb")
        if peak and rows_prev > 0:
            scaled = _KERNEL_BASE_MB + max(float(peak) - _KERNEL_BASE_MB, 0.0) * (
                rows_now / rows_prev
            )
            out[name] = (round(MEASURED_MARGIN * scaled, 1), "measured in the previous run")
        else:
            guess = UNKNOWN_BASE_MB + UNKNOWN_BYTES_PER_ROW * rows_now / 2**20
            source = "no measurement yet: a guess from the data's size"
            if share_mb is not None and guess > share_mb:
                guess, source = share_mb, "no measurement yet: its share of the budget"
            out[name] = (round(guess, 1), source)
    return out


#: The part of each job's share of the memory budget its DuckDB may use; the rest is
#: for the kernel's Python frames and models. DuckDB spills sorts and hash tables to
#: disk beyond it.
DUCKDB_SHARE = 0.4


def job_share_mb(memory_limit_gb: float | None, jobs: int) -> float | None:
    """Return each job's share of the memory budget in MB (None without a budget).

    Parameters
    ----------
    memory_limit_gb
        The run's memory budget (GB = 10^9 bytes), or None.
    jobs
        Reports run at once.

    Returns
    -------
    float or None
        ``memory_limit_gb`` in MiB divided by ``jobs``.
    """
    if not memory_limit_gb:
        return None
    return memory_limit_gb * 1e9 / 2**20 / max(jobs, 1)


#: Set to ``0`` to run every kernel at the normal priority. By default a report that
#: starts beside one expected to end after it yields the CPU to it
#: (:func:`cxkit.report.scheduler.niceness`): at 1M customers that took the churn report,
#: the one the run waits for, from 101 s to 62-68 s. It needs the order of the repo's
#: ``reports.yml``: the shared persona fit is computed by the personas report, which runs
#: first, so no report beside churn computes a fit (about 2 GB) that its measured peak did
#: not include.
YIELD_CPU_ENV = "CXKIT_REPORT_YIELD_CPU"


def duckdb_memory_env(memory_limit_gb: float | None, jobs: int, temp_dir: Path) -> dict[str, str]:
    """Return the kernels' environment capping DuckDB at its share of the memory budget.

    Parameters
    ----------
    memory_limit_gb
        The run's memory budget (None: no cap).
    jobs
        Reports run at once.
    temp_dir
        Where DuckDB spills beyond its cap (inside the run folder, removed with it).

    Returns
    -------
    dict of str to str
        :data:`cxkit.data.DUCKDB_MEMORY_ENV` (and the spill folder), or ``{}``.

    Examples
    --------
    >>> duckdb_memory_env(6.0, 2, Path("/tmp/x"))["CXKIT_DUCKDB_MEMORY_LIMIT"]
    '1144MB'
    """
    share_mb = job_share_mb(memory_limit_gb, jobs)
    if share_mb is None:
        return {}
    return {
        DUCKDB_MEMORY_ENV: f"{int(share_mb * DUCKDB_SHARE)}MB",
        DUCKDB_TEMP_ENV: str(temp_dir),
    }


def duration_estimates(
    previous: Mapping[str, Any], fingerprint: Mapping[str, Any], names: Sequence[str]
) -> dict[str, float | None]:
    """Estimate how long each report will run, for the order in which reports start.

    A report's ``seconds`` in the previous run's manifest when it ran to its end (OK or
    not available; a failed run's time says little about a whole one), scaled by the change in data rows, as
    :func:`memory_estimates` does; None when there is no such measurement.

    Parameters
    ----------
    previous
        The previous run's manifest (``{}`` for none).
    fingerprint
        This run's data fingerprint (:meth:`cxkit.data.CXData.fingerprint`).
    names
        The reports to estimate.

    Returns
    -------
    dict of str to float or None
        Report name -> expected seconds, or None when never measured.

    Examples
    --------
    >>> prev = {"fingerprint": {"tables": {"orders": {"rows": 1000}}},
    ...         "reports": {"clv": {"status": "OK", "seconds": 12.0},
    ...                     "churn": {"status": "FAILED", "seconds": 3.0}}}
    >>> now = {"tables": {"orders": {"rows": 2000}}}
    >>> duration_estimates(prev, now, ["clv", "churn", "new"])
    {'clv': 24.0, 'churn': None, 'new': None}
    """
    rows_now = _total_rows(fingerprint)
    rows_prev = _total_rows(previous.get("fingerprint"))
    prev_reports = previous.get("reports") or {}
    out: dict[str, float | None] = {}
    for name in names:
        entry = prev_reports.get(name) or {}
        seconds = entry.get("seconds")
        ran = entry.get("status") in ("OK", NOT_AVAILABLE)
        measured = ran and seconds and rows_prev > 0
        out[name] = round(float(seconds) * rows_now / rows_prev, 3) if measured else None
    return out


def _prune_runs(runs: Path, keep: int = KEEP_RUNS) -> None:
    """Delete all but the ``keep`` latest run folders."""
    dirs = sorted((p for p in runs.iterdir() if p.is_dir()), key=lambda p: p.name)
    for old in dirs[:-keep]:
        shutil.rmtree(old, ignore_errors=True)


def _export(
    spec: ReportSpec,
    executed: Path,
    meta: dict[str, str],
    run_id: str,
    *,
    plotly_mode: str = "inline",
) -> tuple[str, str | None, NotebookStatus]:
    """Return an executed notebook's page, headline and status (what its outputs say)."""
    nb = json.loads(executed.read_text(encoding="utf-8"))
    footer = html.escape(
        f"cxkit {meta.get('cxkit', '')} · report '{spec.name}' from {spec.notebook.name} · "
        f"run {run_id} · works offline: no code, no network"
    )
    shown = {k: v for k, v in meta.items() if k != "cxkit"}
    page_html = notebook_to_html(
        nb, title=spec.title, meta=shown, footer=footer, plotly_mode=plotly_mode
    )
    return page_html, extract_headline(nb), notebook_status(nb)


def _published_files(files: Sequence[str], out: Path) -> list[str]:
    """Return the files a report published, relative to the output folder when inside it."""
    shown = []
    for f in files:
        path = Path(f)
        try:
            shown.append(path.resolve().relative_to(out.resolve()).as_posix())
        except ValueError:
            shown.append(str(path))
    return shown


def _parts(n: int) -> str:
    """Return "1 part" / "N parts"."""
    return f"{n} part" if n == 1 else f"{n} parts"


def run_reports(
    config_path: str | Path = "reports.yml",
    *,
    data: str | None = None,
    as_of: str | None = None,
    out: str | Path | None = None,
    only: list[str] | None = None,
    jobs: int | None = None,
    memory_limit_gb: float | None = None,
    clear_ids: bool = False,
    self_contained: bool = False,
    stream: TextIO | None = None,
) -> RunResult:
    """Run the reports of a reports file and publish them.

    Parameters
    ----------
    config_path
        The reports file (``reports.yml``).
    data, as_of, out, only, jobs, memory_limit_gb
        Overrides of the file's settings (``only``: report names to run).
    clear_ids
        Publish customer IDs as they are instead of pseudonyms (``--clear-ids``; see
        :mod:`cxkit.privacy`).
    self_contained
        Inline plotly.js in every page (``--self-contained``) instead of one shared
        ``_assets/plotly-<version>.min.js`` per output folder.
    stream
        Where progress lines go (default: stdout).

    Returns
    -------
    RunResult
        ``exit_code`` 0 when every report succeeded, 1 when any failed.

    Raises
    ------
    UsageError
        Bad reports file or options (nothing is run or published).
    DataError
        The data cannot be loaded or fails validation (nothing is run or published).
    """
    stream = stream or sys.stdout
    t_start = time.time()

    def say(text: str) -> None:
        print(text, file=stream, flush=True)

    cfg = load_config(
        config_path,
        data=data,
        as_of=as_of,
        out=out,
        only=only,
        jobs=jobs,
        memory_limit_gb=memory_limit_gb,
        clear_ids=clear_ids,
        self_contained=self_contained,
    )
    check_out_folder(cfg.out)  # before the data is read or any notebook runs
    run_wide = {"mapping": cfg.mapping} if cfg.mapping else {}
    preflight = {spec.name: check_parameters(spec, extra=list(run_wide)) for spec in cfg.reports}
    loaded, as_of_resolved, fingerprint, problems = _load_and_validate(cfg)

    with _run_lock(cfg.out):
        return _execute(
            cfg,
            preflight=preflight,
            as_of_resolved=as_of_resolved,
            fingerprint=fingerprint,
            loaded=loaded,
            problems=problems,
            only=only,
            say=say,
            t_start=t_start,
        )


_OUT_FIX = "pass another --out (or 'out' in the reports file) or fix the folder's permissions"


def _probe_writable(folder: Path, what: str) -> None:
    """Raise UsageError unless a file can be created (and removed) in ``folder``."""
    try:
        fd, probe = tempfile.mkstemp(prefix=".cxkit-write-test-", dir=folder)
    except OSError as err:
        raise UsageError(f"{what} {folder} is not writable ({err.strerror}); {_OUT_FIX}") from err
    os.close(fd)
    with contextlib.suppress(OSError):
        os.unlink(probe)


def check_out_folder(out: Path) -> None:
    """Check that the reports can be written to ``out``, before anything runs.

    ``out`` must be a folder (or not exist yet, under a folder that can be written),
    and it and its ``_runs`` folder must be writable. Nothing is created.

    Parameters
    ----------
    out
        The output folder (absolute).

    Raises
    ------
    UsageError
        When ``out`` (or one of its parents, or ``out/_runs``) is a file, or a folder
        in which no file can be created; the message names the path and the fix.
    """
    if out.exists() and not out.is_dir():
        raise UsageError(f"the output folder {out} is a file, not a folder; {_OUT_FIX}")
    runs = out / "_runs"
    if runs.exists() and not runs.is_dir():
        raise UsageError(f"{runs} is a file, but the run folders go there; remove it or {_OUT_FIX}")
    if out.is_dir():
        _probe_writable(out, "the output folder")
        if runs.is_dir():
            _probe_writable(runs, "the run folder")
        return
    parent = out.parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise UsageError(
            f"the output folder {out} cannot be created: {parent} is a file; {_OUT_FIX}"
        )
    _probe_writable(parent, f"the output folder {out} cannot be created: its parent")


@contextlib.contextmanager
def _run_lock(out: Path) -> Iterator[None]:
    """Hold the output folder's lock: one run at a time (cron overlap would race)."""
    try:
        out.mkdir(parents=True, exist_ok=True)
        fh = open(out / ".cxkit-report.lock", "a+")  # closed by the with below
    except OSError as err:
        raise UsageError(
            f"the output folder {out} cannot be used ({err.strerror}); {_OUT_FIX}"
        ) from err
    with fh:
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as err:
            raise UsageError(
                f"another 'cxkit report' is running on {out}; wait for it or use another --out"
            ) from err
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


#: A run folder holds this file (its process's pid and start time) while the run lives.
OWNER_FILE = ".running"


def _claim(run_dir: Path) -> Path:
    """Write the run folder's owner file: this process, so a later run can tell it died."""
    me = psutil.Process()
    info = {"pid": me.pid, "started": me.create_time(), "host": platform.node()}
    return atomic_write(run_dir / OWNER_FILE, json.dumps(info) + "\n")


def _alive(info: Mapping[str, Any]) -> bool:
    """Tell whether the process an owner file names still runs (same pid, same start)."""
    try:
        proc = psutil.Process(int(info["pid"]))
        same = abs(proc.create_time() - float(info["started"])) < 1.0
        return same and proc.status() != psutil.STATUS_ZOMBIE
    except (psutil.Error, KeyError, TypeError, ValueError):
        return False


def remove_stale_runs(runs: Path) -> list[str]:
    """Remove the run folders of runs that died (kill -9, power loss) without finishing.

    A live run keeps an owner file (:data:`OWNER_FILE`) and its shared-results cache
    in ``_runs/<run_id>/`` and removes both when it ends, even on an error or Ctrl-C. A
    folder that still has either, while its owner process is gone, belongs to a dead
    run: any worker or kernel of it still running is killed, then the folder is removed.
    Call this only while holding the output folder's lock (no other run can be live).

    Parameters
    ----------
    runs
        The ``_runs`` folder of an output folder.

    Returns
    -------
    list of str
        One sentence per removed folder (for the progress lines).
    """
    removed: list[str] = []
    if not runs.is_dir():
        return removed
    for run_dir in sorted(p for p in runs.iterdir() if p.is_dir()):
        owner, cache = run_dir / OWNER_FILE, run_dir / "cache"
        if not owner.exists() and not cache.exists():
            continue
        try:
            info = json.loads(owner.read_text(encoding="utf-8")) if owner.exists() else {}
        except (OSError, ValueError):
            info = {}
        if not isinstance(info, dict):
            info = {}
        if info.get("host") not in (None, platform.node()):
            continue  # another machine's run (shared folder): its process cannot be seen
        if info and _alive(info):
            continue
        killed = [
            line
            for proc in leftover_processes(str(cache), env=CACHE_ENV)
            for line in kill_tree(proc.pid)
        ]
        shutil.rmtree(run_dir, ignore_errors=True)
        who = f"its process {info['pid']} is gone" if info.get("pid") else "its process is gone"
        removed.append(
            f"removed {run_dir}: that run was stopped before it finished ({who})"
            + (f"; stopped {len(killed)} of its processes still running" if killed else "")
        )
    return removed


def _ids_parameter(spec: ReportSpec, mode: str) -> dict[str, str]:
    """Return ``{"customer_ids": mode}`` for a notebook that declares that parameter."""
    declared = notebook_parameters(spec.notebook) or {}
    return {"customer_ids": mode} if "customer_ids" in declared else {}


def _id_key_env(cfg: ReportConfig) -> dict[str, str]:
    """Return the kernels' environment carrying the customer-ID key, when a report needs one.

    The key (:func:`cxkit.privacy.resolve_key`; created in ``<out>/_private/id_key`` the
    first time) goes to the notebooks in the environment, never as a parameter: the
    parameters are recorded in the executed notebooks and the manifest.
    """
    modes = {
        str(spec.parameters["customer_ids"])
        if "customer_ids" in spec.parameters
        else _ids_parameter(spec, cfg.customer_ids).get("customer_ids")
        for spec in cfg.reports
    }
    if "pseudonymous" not in modes:  # no notebook shows pseudonyms: no key file either
        return {}
    return {KEY_ENV: resolve_key(cfg.out, config_key=cfg.id_key)}


def _execute(
    cfg: ReportConfig,
    *,
    preflight: dict[str, str | None],
    as_of_resolved: str,
    fingerprint: dict[str, Any],
    loaded: CXData,
    problems: list[Problem],
    only: list[str] | None,
    say: Callable[[str], None],
    t_start: float,
) -> RunResult:
    """Run, export and publish (the output folder is locked)."""
    id_env = _id_key_env(cfg)  # first: an unreadable key file is a usage error
    run_id = datetime.now(tz=UTC).strftime("%Y%m%dT%H%M%SZ") + "-" + secrets.token_hex(2)
    runs = cfg.out / "_runs"
    for line in remove_stale_runs(runs):
        say(f"cxkit report: {line}")
    run_dir = runs / run_id
    run_dir.mkdir(parents=True, exist_ok=False)
    owner = _claim(run_dir)
    source = loaded.source
    n_warnings = len(problems)
    # Results shared by the run's notebooks (cxkit.cache); the up-front validation is
    # the data-health report's, so it is stored for that notebook to reuse.
    cache = run_dir / "cache"
    store("validate", {"data": loaded, "as_of": cfg.as_of}, problems, folder=cache)
    # Let go of the data before the kernels open it (a DuckDB file allows one writer).
    with contextlib.suppress(Exception):
        loaded.con.disconnect()
    del loaded
    versions = _versions()
    total = len(cfg.reports)
    pos = {spec.name: i for i, spec in enumerate(cfg.reports, 1)}
    say(
        f"cxkit report: run {run_id}: {total} report(s) on {cfg.data_label} as of {as_of_resolved} "
        f"({n_warnings} validation warning(s)), {cfg.jobs} job(s)"
        + (f", memory budget {cfg.memory_limit_gb:g} GB" if cfg.memory_limit_gb else "")
    )

    subs = {"out": str(cfg.out), "run_dir": str(run_dir), "data": cfg.data_label}
    previous = read_manifest(cfg.out)
    prev_reports: dict[str, Any] = dict(previous.get("reports", {}))
    meta = {
        "As of": format_as_of(as_of_resolved),
        "Data": cfg.data_label,
        "Run": format_time(t_start),
        "cxkit": versions.get("cxkit", ""),
    }
    statuses: dict[str, ReportStatus] = {}
    entries: dict[str, Any] = {}
    shown_findings: dict[str, tuple[dict[str, Any], ...]] = {}  # what changes compares

    def finish(spec: ReportSpec, res: JobResult | None, error: str | None) -> None:
        """Export and publish one report as soon as it is done; record its entry."""
        headline = None
        html_path: Path | None = None
        shows = NotebookStatus()
        if error is None and res is not None:
            try:
                page_html, headline, shows = _export(
                    spec, run_dir / f"{spec.name}.ipynb", meta, run_id, plotly_mode=cfg.plotly
                )
                if cfg.plotly == "shared":  # the script first: a page never lacks it
                    publish_plotly(cfg.out)
                html_path = atomic_write(cfg.out / f"{spec.name}.html", page_html)
            except Exception as err:  # an export bug must not take the other reports down
                error = f"export failed: {type(err).__name__}: {err}"
        ok = error is None
        if ok:
            shown_findings[spec.name] = shows.findings
        status = shows.status if ok else "FAILED"
        notes = shows.not_available if ok else ()
        seconds = res.seconds if res else 0.0
        finished = res.finished_at if res else time.time()
        last_good = prev_reports.get(spec.name, {}).get("last_good")
        if ok:
            last_good = {"run_id": run_id, "finished_at": _iso(finished), "headline": headline}
        tag = f"[{pos[spec.name]}/{total}] {spec.name}"
        if status == NOT_AVAILABLE:
            say(f"{tag}: not available ({shows.reason}) in {seconds:.1f} s -> {html_path}")
        elif ok:
            parts = f" ({_parts(len(notes))} not available)" if notes else ""
            say(f"{tag}: OK in {seconds:.1f} s -> {html_path}{parts}")
        elif res is None:
            say(f"{tag}: FAILED before running: {error}")
        else:
            say(f"{tag}: FAILED in {seconds:.1f} s: {error}")
        entries[spec.name] = {
            "title": spec.title,
            "notebook": str(spec.notebook),
            "parameters": params_of[spec.name],
            "status": status,
            "error": error,
            "not_available": list(notes),
            "files": _published_files(shows.files, cfg.out),
            "headline": headline if ok else (last_good or {}).get("headline"),
            "started_at": _iso(res.started_at) if res else None,
            "finished_at": _iso(finished),
            "seconds": seconds,
            "cell_timeout": spec.cell_timeout,
            "timeout": spec.timeout,
            "executed_notebook": (
                str(Path("_runs") / run_id / f"{spec.name}.ipynb") if res else None
            ),
            "html": f"{spec.name}.html" if (ok or last_good) else None,
            "run_id": run_id,
            "last_good": last_good,
            "peak_memory_mb": res.peak_memory_mb if res else None,
            "niceness": res.niceness if res else None,
            "memory_estimate_mb": estimates[spec.name][0],
            "memory_estimate_source": estimates[spec.name][1],
            "killed_processes": list(res.killed) if res else [],
        }
        statuses[spec.name] = ReportStatus(
            spec.name, ok, error, seconds, html_path, headline, status, tuple(notes)
        )

    params_of: dict[str, dict[str, Any]] = {}
    job_list: list[Job] = []
    share_mb = job_share_mb(cfg.memory_limit_gb, cfg.jobs)
    estimates = memory_estimates(previous, fingerprint, cfg.names, share_mb=share_mb)
    durations = duration_estimates(previous, fingerprint, cfg.names)
    by_name = {spec.name: spec for spec in cfg.reports}
    for spec in cfg.reports:
        params = {
            "data": cfg.data,
            "as_of": cfg.as_of,
            **({"mapping": cfg.mapping} if cfg.mapping else {}),
            **_ids_parameter(spec, cfg.customer_ids),
            **_expand(spec.parameters, subs),
        }
        params_of[spec.name] = params
        if preflight[spec.name] is not None:
            finish(spec, None, preflight[spec.name])
            continue
        job_list.append(
            Job(
                name=spec.name,
                input=spec.notebook,
                output=run_dir / f"{spec.name}.ipynb",
                parameters=params,
                cell_timeout=spec.cell_timeout,
                timeout=spec.timeout,
                marker=f"{run_id}/{spec.name}",
                memory_mb=estimates[spec.name][0],
                expected_seconds=durations[spec.name],
                after=spec.after,
            )
        )

    def on_start(job: Job) -> None:
        say(f"[{pos[job.name]}/{total}] {job.name}: started ({job.input.name})")

    def on_finish(job: Job, res: JobResult) -> None:
        finish(by_name[job.name], res, None if res.ok else res.error)

    try:
        run_jobs(
            job_list,
            workers=cfg.jobs,
            log_dir=run_dir,
            on_start=on_start,
            on_finish=on_finish,
            env={
                CACHE_ENV: str(cache),
                **({CURRENCY_ENV: cfg.currency} if cfg.currency else {}),
                **({SCALE_ENV: cfg.scale.to_json()} if cfg.scale else {}),
                **id_env,
                **duckdb_memory_env(cfg.memory_limit_gb, cfg.jobs, run_dir / "duckdb_tmp"),
            },
            memory_limit_mb=None
            if cfg.memory_limit_gb is None
            else cfg.memory_limit_gb * 1e9 / 2**20,
            yield_cpu=os.environ.get(YIELD_CPU_ENV, "1") != "0",
        )
    finally:
        shutil.rmtree(cache, ignore_errors=True)  # results are never reused across runs
        shutil.rmtree(run_dir / "duckdb_tmp", ignore_errors=True)  # DuckDB's spill files
        owner.unlink(missing_ok=True)  # the run ended here, not killed: not stale

    entries = {n: entries[n] for n in cfg.names}
    statuses = {n: statuses[n] for n in cfg.names}
    # reports left out by --only keep their previous entries; reports no longer in the
    # reports file drop out of the index
    all_names = cfg.all_names or tuple(cfg.names)
    kept = {k: v for k, v in prev_reports.items() if k in all_names and k not in entries}
    merged = {n: {**kept, **entries}[n] for n in all_names if n in kept or n in entries}
    t_end = time.time()
    # what changed since the previous good run: the index leads with it (cxkit.changes)
    current = [f for name in cfg.names for f in shown_findings.get(name, ())]
    previous_run = changes.previous_findings(cfg.out, before=run_id)
    changed = changes.run_changes(cfg.out, current, before=run_id)
    if current:
        changes.save_findings(
            cfg.out,
            changes.RunFindings(
                run_id, _iso(t_end), as_of_resolved, changes.carry_forward(previous_run, current)
            ),
        )
    manifest = {
        "run_id": run_id,
        "started_at": _iso(t_start),
        "finished_at": _iso(t_end),
        "seconds": round(t_end - t_start, 3),
        "config": str(cfg.source_file) if cfg.source_file else None,
        "data": cfg.data_label,
        "data_source": source,
        "as_of": cfg.as_of,
        "as_of_resolved": as_of_resolved,
        "jobs": cfg.jobs,
        "memory_limit_gb": cfg.memory_limit_gb,
        "only": only,
        "fingerprint": fingerprint,
        "versions": versions,
        "validation_warnings": n_warnings,
        "plotly": cfg.plotly,
        "currency": cfg.currency,
        "changes": changed.to_dict() if changed is not None else None,
        "reports": merged,
    }
    atomic_write(cfg.out / "index.html", index_html(manifest, list(all_names)))
    write_manifest(cfg.out, manifest)
    atomic_write(run_dir / "manifest.json", json.dumps(manifest, indent=2, default=str) + "\n")
    _prune_runs(runs)
    prune_plotly_assets(cfg.out)  # versions no page loads any more

    n_failed = sum(1 for s in statuses.values() if not s.ok)
    n_na = sum(1 for s in statuses.values() if s.status == NOT_AVAILABLE)
    code = EXIT_FAILED if n_failed else EXIT_OK  # "not available" is not a failure
    say(
        f"cxkit report: {total - n_failed - n_na} OK, {n_na} not available, {n_failed} FAILED "
        f"in {t_end - t_start:.1f} s; index: {cfg.out / 'index.html'}"
    )
    return RunResult(run_id=run_id, exit_code=code, out=cfg.out, run_dir=run_dir, reports=statuses)


def run_from_cli(args: argparse.Namespace) -> int:
    """Run ``cxkit report`` with the parsed options.

    Parameters
    ----------
    args
        The options from :func:`cxkit.cli.build_parser` (missing ones take the
        defaults of :func:`run_reports`).

    Returns
    -------
    int
        The exit code: 0 all good, 1 some report failed, 2 bad reports file, options
        or data (the message goes to stderr; nothing is run or published).
    """
    try:
        result = run_reports(
            getattr(args, "config", None) or "reports.yml",
            data=getattr(args, "data", None),
            as_of=getattr(args, "as_of", None),
            out=getattr(args, "out", None),
            only=getattr(args, "only", None),
            jobs=getattr(args, "jobs", None),
            memory_limit_gb=getattr(args, "memory_limit_gb", None),
            clear_ids=bool(getattr(args, "clear_ids", False)),
            self_contained=bool(getattr(args, "self_contained", False)),
        )
    except (UsageError, DataError, CxkitError) as err:
        print(f"cxkit report: {err}", file=sys.stderr)
        print("cxkit report: nothing was run or published", file=sys.stderr)
        return EXIT_BAD_INPUT
    return result.exit_code
