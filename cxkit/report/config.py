"""``reports.yml``: parsing, command-line overrides and validation.

A reports file looks like::

    data: data/demo          # folder or connection URL
    as_of: null              # ISO date or null (= latest timestamp in the data)
    out: reports             # output folder
    jobs: 2                  # notebooks run at once
    cell_timeout: 300        # seconds per cell
    timeout: 1200            # seconds per notebook (kernel start included)
    currency: "$"            # money in tables: a symbol or an ISO code (EUR); null = none
    scale: null              # or {sample_rows: 200000, max_collect_rows: 250000, batch_rows:
                             # 100000}: scale mode (cxkit.scale); null = memory mode
    publish:
      customer_ids: pseudonymous   # or clear: show the real customer IDs (cxkit.privacy)
      id_key: null                 # the pseudonyms' secret (better: env CXKIT_ID_KEY)
      plotly: shared               # or inline: one self-contained file per report
    reports:
      - name: data_health
        notebook: notebooks/00_data_health.ipynb
        title: Data health
        parameters: {}
      - name: executive_summary
        notebook: notebooks/90_executive_summary.ipynb
        after: [data_health]     # starts when these have finished (it reads their results)

Relative paths in the file are relative to the file's folder; paths given on the command
line are relative to the current directory. In string parameter values, ``{out}`` (the
output folder), ``{run_dir}`` (this run's folder) and ``{data}`` (the data source) are
replaced when the report runs, e.g. ``scores_out: "{out}"``.
"""

from __future__ import annotations

import ast
import graphlib
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nbformat
import pandas as pd
import yaml

from cxkit import sources
from cxkit.data import ALL_TABLES
from cxkit.display import check_currency
from cxkit.errors import UsageError
from cxkit.privacy import MODES as ID_MODES
from cxkit.report.export import PLOTLY_MODES
from cxkit.scale import ScaleSettings

__all__ = [
    "GLOBAL_PARAMETERS",
    "ReportConfig",
    "ReportSpec",
    "data_label",
    "load_config",
    "notebook_parameters",
    "parse_config",
]

TOP_KEYS = (
    "data",
    "as_of",
    "mapping",
    "out",
    "jobs",
    "memory_limit_gb",
    "tables",
    "cell_timeout",
    "timeout",
    "currency",
    "scale",
    "publish",
    "reports",
)
PUBLISH_KEYS = ("customer_ids", "id_key", "plotly")
REPORT_KEYS = ("name", "notebook", "title", "parameters", "cell_timeout", "timeout", "after")
#: Parameters the runner passes to every notebook; each notebook must declare them.
GLOBAL_PARAMETERS = ("data", "as_of")
DEFAULT_CELL_TIMEOUT = 300.0
DEFAULT_TIMEOUT = 1200.0
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*$")
_RESERVED = {"index", "manifest", "_runs"}


@dataclass(frozen=True)
class ReportSpec:
    """One report: which notebook, its title and its parameters.

    Attributes
    ----------
    name
        The report's name (its HTML file is ``<name>.html``).
    notebook
        The notebook's absolute path.
    title
        The title shown in the page header and the index.
    parameters
        The notebook's parameters besides ``data`` and ``as_of``.
    cell_timeout, timeout
        Seconds allowed per cell and for the whole notebook.
    after
        The reports that must finish before this one starts (it reads what they
        compute from the run cache, :mod:`cxkit.cache`).
    """

    name: str
    notebook: Path
    title: str
    parameters: dict[str, Any] = field(default_factory=dict)
    cell_timeout: float = DEFAULT_CELL_TIMEOUT
    timeout: float = DEFAULT_TIMEOUT
    after: tuple[str, ...] = ()


@dataclass(frozen=True)
class ReportConfig:
    """The whole run: data source, ``as_of``, output folder, jobs and the reports.

    Attributes
    ----------
    data
        The data source: an absolute folder path, a connection URL, or a source spec
        (:mod:`cxkit.sources`: ``{"url", "tables"}`` or ``{"spark", "tables"}``) that
        every notebook receives as its ``data`` parameter and opens the same way.
    as_of
        The ``as_of`` text passed to every notebook, or ``None``.
    out
        The absolute output folder.
    jobs
        Notebooks run at once.
    reports
        The reports to run, in file order.
    source_file
        The reports file read, if any.
    mapping
        The column mapping onto the data contract, ``{table: {your column: contract
        column}}``, or ``None``.
    all_names
        Every report name in the file, also those left out by ``only``.
    memory_limit_gb
        The memory budget of the whole run, or ``None`` (only ``jobs`` limits).
    customer_ids
        How published pages and files show customer IDs: ``"pseudonymous"`` (keyed
        hashes, the default) or ``"clear"`` (``publish: customer_ids:``, ``--clear-ids``).
    id_key
        ``publish: id_key:``, the pseudonyms' secret, or ``None`` (see
        :func:`cxkit.privacy.resolve_key`); never shown in a repr.
    plotly
        How pages get plotly.js (:data:`cxkit.report.export.PLOTLY_MODES`):
        ``"shared"`` (one ``_assets/plotly-<version>.min.js`` per report folder, the
        default) or ``"inline"`` (one self-contained file per report; ``publish:
        plotly:``, ``--self-contained``).
    currency
        ``currency:``, how money is shown in tables (a symbol such as ``"$"`` or an ISO
        code such as ``"EUR"``), or ``None``; the kernels get it in
        :data:`cxkit.display.CURRENCY_ENV`.
    scale
        ``scale:``, the scale-mode settings (:class:`cxkit.scale.ScaleSettings`), or
        ``None`` for memory mode; the kernels get them in :data:`cxkit.scale.SCALE_ENV`.
    """

    data: str | dict[str, Any]
    as_of: str | None
    out: Path
    jobs: int
    reports: tuple[ReportSpec, ...]
    source_file: Path | None = None
    #: column mapping onto the data contract, {table: {user column: contract column}}
    mapping: dict[str, dict[str, str]] | None = None
    #: every report name in the file, also those left out by ``only``
    all_names: tuple[str, ...] = ()
    #: memory budget of the whole run: a report starts only when its estimated peak fits
    #: beside those running (None: no budget, only ``jobs`` limits)
    memory_limit_gb: float | None = None
    #: how published output shows customer IDs (cxkit.privacy): pseudonymous or clear
    customer_ids: str = ID_MODES[0]
    #: the pseudonyms' secret from reports.yml, or None
    id_key: str | None = field(default=None, repr=False)
    #: how pages get plotly.js: shared (one file per report folder) or inline
    plotly: str = PLOTLY_MODES[0]
    #: money in tables: a currency symbol or ISO code, or None
    currency: str | None = None
    #: scale-mode settings (cxkit.scale), or None: memory mode
    scale: ScaleSettings | None = None

    @property
    def data_label(self) -> str:
        """The data source as people read it (no password; ``spark (master)``)."""
        return data_label(self.data)

    @property
    def names(self) -> list[str]:
        """Report names in file order."""
        return [r.name for r in self.reports]


def _mapping(value: object) -> dict[str, dict[str, str]] | None:
    """Check ``mapping:`` — {table: {your column: contract column}} — and return it."""
    if value is None:
        return None
    ok = isinstance(value, Mapping) and all(
        isinstance(cols, Mapping)
        and all(isinstance(k, str) and isinstance(v, str) for k, v in cols.items())
        for cols in value.values()
    )
    if not ok:
        raise UsageError(
            "mapping must look like {orders: {order_ts: ts}} (table -> your column -> "
            f"contract column), got {value!r}"
        )
    bad = [t for t in value if t not in ALL_TABLES]
    if bad:
        raise UsageError(f"mapping names unknown table(s) {bad}; valid: {', '.join(ALL_TABLES)}")
    return {t: dict(cols) for t, cols in value.items()}


def _publish(
    value: object, clear_ids: bool, self_contained: bool = False
) -> tuple[str, str | None, str]:
    """Check ``publish:``, apply ``--clear-ids`` and ``--self-contained``.

    Returns the customer-ID mode, the ID key and the plotly mode.
    """
    if value is None:
        value = {}
    if not isinstance(value, Mapping):
        raise UsageError(
            f"publish must look like {{customer_ids: {ID_MODES[0]}, id_key: <secret>, "
            f"plotly: {PLOTLY_MODES[0]}}}, got {value!r}"
        )
    unknown = set(value) - set(PUBLISH_KEYS)
    if unknown:
        raise _keys_error("publish", unknown, PUBLISH_KEYS)
    mode = ID_MODES[0] if value.get("customer_ids") is None else value["customer_ids"]
    if mode not in ID_MODES:
        raise UsageError(
            f"publish.customer_ids must be {' or '.join(map(repr, ID_MODES))}, got {mode!r}"
        )
    key = value.get("id_key")
    if key is not None and (not isinstance(key, str) or not key.strip()):
        raise UsageError(
            "publish.id_key must be a non-empty secret text (or leave it out: a key is "
            "then kept in <out>/_private/id_key)"
        )
    plotly_mode = PLOTLY_MODES[0] if value.get("plotly") is None else value["plotly"]
    if plotly_mode not in PLOTLY_MODES:
        raise UsageError(
            f"publish.plotly must be {' or '.join(map(repr, PLOTLY_MODES))} (shared: one "
            "plotly.js file per report folder; inline: one self-contained file per "
            f"report), got {plotly_mode!r}"
        )
    ids = "clear" if clear_ids else str(mode)
    return ids, key, ("inline" if self_contained else str(plotly_mode))


def _scale(value: object) -> ScaleSettings | None:
    """Check ``scale:`` (null, a mode name or a mapping of settings) and return it."""
    if value is None:
        return None
    try:
        settings = ScaleSettings.from_value(value)
    except UsageError as err:
        raise UsageError(f"scale: {err}") from None
    return settings if settings.scale else None


def _currency(value: object) -> str | None:
    """Check ``currency:`` (a symbol or an ISO code, or null) and return it."""
    if value is None:
        return None
    try:
        return check_currency(value)
    except ValueError as err:
        raise UsageError(f"currency: {err}") from err


def _keys_error(where: str, unknown: Iterable[str], valid: Sequence[str]) -> UsageError:
    """Return the error naming unknown keys and listing the valid ones."""
    bad = ", ".join(repr(k) for k in sorted(unknown))
    return UsageError(f"{where}: unknown key(s) {bad}; valid keys: {', '.join(valid)}")


def _positive(value: object, what: str, *, integer: bool = False) -> float:
    """Return ``value`` when it is a positive number (an integer if asked), else raise."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise UsageError(f"{what} must be a positive number, got {value!r}")
    if value <= 0 or (integer and int(value) != value):
        kind = "a positive integer" if integer else "a positive number"
        raise UsageError(f"{what} must be {kind}, got {value!r}")
    return value


def _as_of_text(value: object) -> str | None:
    """Return ``value`` as an ``as_of`` text, None for none; raise when it is no date."""
    if value is None:
        return None
    text = str(value).strip()
    if text.lower() in ("", "none", "null"):
        return None
    try:
        pd.Timestamp(text)
    except (ValueError, TypeError) as err:
        raise UsageError(
            f"as_of must be an ISO date like '2024-06-30' or null, got {value!r}"
        ) from err
    return text


def _after(value: object, where: str) -> tuple[str, ...]:
    """Return an ``after:`` value (a list of report names) as a tuple, else raise."""
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise UsageError(
            f"{where}.after must be a list of report names like [lifecycle, churn], got {value!r}"
        )
    return tuple(dict.fromkeys(value))


def _check_after(specs: Sequence[ReportSpec]) -> None:
    """Raise when an ``after:`` names an unknown report, the report itself or a cycle."""
    names = [s.name for s in specs]
    for i, spec in enumerate(specs):
        unknown = [n for n in spec.after if n not in names or n == spec.name]
        if unknown:
            raise UsageError(
                f"reports[{i}].after names unknown report(s) {', '.join(map(repr, unknown))}; "
                f"valid: {', '.join(n for n in names if n != spec.name) or '(none)'}"
            )
    try:
        graphlib.TopologicalSorter({s.name: s.after for s in specs}).prepare()
    except graphlib.CycleError as err:
        cycle = " after ".join(err.args[1][::-1])
        raise UsageError(
            f"the reports' 'after' lists form a cycle ({cycle}); none of them could start"
        ) from err


def _resolve_data(value: object, base: Path) -> str | dict[str, Any]:
    """Return a data source as a URL, an absolute path or a checked source spec.

    Relative paths (the folder, a spec's table paths) are relative to ``base``.
    """
    if isinstance(value, Mapping):
        return sources.parse_source_spec(value, base=base, valid_tables=ALL_TABLES).as_dict()
    if not isinstance(value, str | Path) or not str(value).strip():
        raise UsageError(
            f"data must be a folder path, a connection URL or a section with url or spark "
            f"and tables, got {value!r}"
        )
    text = str(value)
    if "://" in text:
        return text
    path = Path(text).expanduser()
    return str((path if path.is_absolute() else base / path).resolve())


def _with_tables(data: str | dict[str, Any], tables: object, base: Path) -> str | dict[str, Any]:
    """Apply the reports file's top-level ``tables:`` to a database URL or a spec."""
    if tables is None:
        return data
    if isinstance(data, str) and "://" not in data:
        raise UsageError(
            "tables: maps contract tables onto a database's or Spark's tables, but the data "
            f"is a folder ({data}); name the folder's files customers, events, orders and "
            "responses (.parquet or .csv) instead, or remove tables:"
        )
    spec = {"url": data} if isinstance(data, str) else dict(data)
    if spec.get("tables"):
        raise UsageError(
            "tables is given twice, at the top of the reports file and in data:; keep one"
        )
    spec["tables"] = tables
    return sources.parse_source_spec(spec, base=base, valid_tables=ALL_TABLES).as_dict()


def data_label(data: str | Mapping[str, Any]) -> str:
    """Return a data source as people read it: no password, ``spark (master)`` for Spark.

    Examples
    --------
    >>> data_label("postgresql://cx:secret@db/analytics")
    'postgresql://cx@db/analytics'
    >>> data_label({"spark": {"master": "local[2]"}, "tables": {}})
    'spark (local[2])'
    """
    if isinstance(data, Mapping):
        return sources.parse_source_spec(data).label
    return sources.redact_url(str(data))


def _check_notebook(spec: ReportSpec) -> None:
    """Raise when a report's notebook is missing or is not a Jupyter notebook."""
    where = f"report {spec.name!r}: notebook {spec.notebook}"
    fix = "set 'notebook' to a Jupyter .ipynb file (paths are relative to the reports file)"
    if spec.notebook.is_dir():
        raise UsageError(f"{where} is a folder, not a notebook; {fix}")
    if not spec.notebook.is_file():
        raise UsageError(f"{where} does not exist; {fix}")
    try:
        text = spec.notebook.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise UsageError(
            f"{where} is not a notebook (not UTF-8 text: {err.reason}); {fix}"
        ) from err
    except OSError as err:
        raise UsageError(f"{where} cannot be read ({err.strerror}); {fix}") from err
    try:
        nbformat.validate(nbformat.reads(text, as_version=4))
    except (ValueError, TypeError, KeyError, AttributeError, nbformat.ValidationError) as err:
        reason = next(iter(str(err).strip().splitlines()), type(err).__name__)[:160]
        raise UsageError(f"{where} is not a Jupyter notebook ({reason}); {fix}") from err


def parse_config(
    raw: Mapping[str, Any],
    *,
    base: Path,
    data: str | None = None,
    as_of: str | None = None,
    out: str | Path | None = None,
    only: Sequence[str] | None = None,
    jobs: int | None = None,
    memory_limit_gb: float | None = None,
    source_file: Path | None = None,
    clear_ids: bool = False,
    self_contained: bool = False,
) -> ReportConfig:
    """Validate a parsed reports file and apply command-line overrides.

    Parameters
    ----------
    raw
        The mapping read from YAML.
    base
        Folder that relative paths in ``raw`` are relative to.
    data, as_of, out, only, jobs, memory_limit_gb
        Overrides (relative paths are relative to the current directory).
    source_file
        The file ``raw`` was read from, recorded in the result.
    clear_ids
        ``--clear-ids``: publish customer IDs as they are, whatever ``publish:`` says.
    self_contained
        ``--self-contained``: inline plotly.js in every page (one self-contained file
        per report), whatever ``publish: plotly:`` says.

    Returns
    -------
    ReportConfig
        The checked run, with absolute paths; ``reports`` holds only those named by
        ``only`` when it is given.

    Raises
    ------
    UsageError
        For unknown keys (the message lists the valid ones), bad values, duplicate or
        unknown report names (also in ``after``), ``after`` lists that form a cycle, or
        a notebook file that does not exist or is not a Jupyter notebook.

    Examples
    --------
    >>> from pathlib import Path
    >>> parse_config({"data": "/d", "colour": "red"}, base=Path("/w"))
    Traceback (most recent call last):
    ...
    cxkit.errors.UsageError: reports file: unknown key(s) 'colour'; valid keys: data, as_of, mapping, out, jobs, memory_limit_gb, tables, cell_timeout, timeout, currency, scale, publish, reports
    """
    if not isinstance(raw, Mapping):
        raise UsageError(f"the reports file must be a mapping with keys {', '.join(TOP_KEYS)}")
    unknown = set(raw) - set(TOP_KEYS)
    if unknown:
        raise _keys_error("reports file", unknown, TOP_KEYS)
    cwd = Path.cwd()

    data_value = _resolve_data(data, cwd) if data is not None else None
    if data_value is None:
        if raw.get("data") is None:
            raise UsageError("no data source: set 'data' in the reports file or pass --data")
        data_value = _resolve_data(raw["data"], base)
    data_value = _with_tables(data_value, raw.get("tables"), base)

    as_of_value = _as_of_text(as_of if as_of is not None else raw.get("as_of"))
    mapping_value = _mapping(raw.get("mapping"))
    customer_ids, id_key, plotly_mode = _publish(raw.get("publish"), clear_ids, self_contained)
    currency = _currency(raw.get("currency"))
    scale_value = _scale(raw.get("scale"))

    if out is not None:
        out_path = Path(out).expanduser()
        out_path = out_path if out_path.is_absolute() else cwd / out_path
    else:
        out_path = Path(str(raw.get("out") or "reports")).expanduser()
        out_path = out_path if out_path.is_absolute() else base / out_path

    jobs_value = jobs if jobs is not None else raw.get("jobs", 2)
    jobs_value = int(_positive(jobs_value, "jobs", integer=True))
    memory_value = memory_limit_gb if memory_limit_gb is not None else raw.get("memory_limit_gb")
    if memory_value is not None:
        memory_value = float(_positive(memory_value, "memory_limit_gb"))

    cell_timeout = float(_positive(raw.get("cell_timeout", DEFAULT_CELL_TIMEOUT), "cell_timeout"))
    timeout = float(_positive(raw.get("timeout", DEFAULT_TIMEOUT), "timeout"))

    entries = raw.get("reports")
    if entries is None:
        entries = []
    if not isinstance(entries, list):
        raise UsageError("'reports' must be a list of {name, notebook, title, parameters}")
    specs: list[ReportSpec] = []
    seen: set[str] = set()
    for i, entry in enumerate(entries):
        where = f"reports[{i}]"
        if not isinstance(entry, Mapping):
            raise UsageError(f"{where} must be a mapping with keys {', '.join(REPORT_KEYS)}")
        unknown = set(entry) - set(REPORT_KEYS)
        if unknown:
            raise _keys_error(where, unknown, REPORT_KEYS)
        for key in ("name", "notebook"):
            if not entry.get(key):
                raise UsageError(f"{where}: '{key}' is required")
        name = str(entry["name"])
        if not _NAME.match(name) or name in _RESERVED:
            raise UsageError(
                f"{where}: name must be letters, digits, '_' or '-' (not index/manifest), "
                f"got {name!r}"
            )
        if name in seen:
            raise UsageError(f"{where}: duplicate report name {name!r}")
        seen.add(name)
        nb = Path(str(entry["notebook"])).expanduser()
        nb = (nb if nb.is_absolute() else base / nb).resolve()
        params = entry.get("parameters") or {}
        if not isinstance(params, Mapping):
            raise UsageError(f"{where}: 'parameters' must be a mapping, got {params!r}")
        specs.append(
            ReportSpec(
                name=name,
                notebook=nb,
                title=str(entry.get("title") or name.replace("_", " ").capitalize()),
                parameters=dict(params),
                cell_timeout=float(
                    _positive(entry.get("cell_timeout", cell_timeout), f"{where}.cell_timeout")
                ),
                timeout=float(_positive(entry.get("timeout", timeout), f"{where}.timeout")),
                after=_after(entry.get("after"), where),
            )
        )
    _check_after(specs)

    all_names = tuple(s.name for s in specs)
    if only:
        wanted = [n for item in only for n in str(item).split(",") if n.strip()]
        wanted = [n.strip() for n in wanted]
        missing = [n for n in wanted if n not in seen]
        if missing:
            raise UsageError(
                f"--only names unknown report(s) {', '.join(map(repr, missing))}; "
                f"valid: {', '.join(r.name for r in specs) or '(none)'}"
            )
        specs = [s for s in specs if s.name in wanted]
    if not specs:
        raise UsageError("no reports to run: the reports file lists none")
    for s in specs:
        _check_notebook(s)

    return ReportConfig(
        data=data_value,
        as_of=as_of_value,
        out=out_path.resolve(),
        jobs=jobs_value,
        reports=tuple(specs),
        source_file=source_file,
        mapping=mapping_value,
        all_names=all_names,
        memory_limit_gb=memory_value,
        customer_ids=customer_ids,
        id_key=id_key,
        plotly=plotly_mode,
        currency=currency,
        scale=scale_value,
    )


def load_config(
    path: str | Path = "reports.yml",
    *,
    data: str | None = None,
    as_of: str | None = None,
    out: str | Path | None = None,
    only: Sequence[str] | None = None,
    jobs: int | None = None,
    memory_limit_gb: float | None = None,
    clear_ids: bool = False,
    self_contained: bool = False,
) -> ReportConfig:
    """Read and validate a reports file, with command-line overrides.

    Parameters
    ----------
    path
        The YAML reports file; relative paths inside it are relative to its folder.
    data, as_of, out, only, jobs, memory_limit_gb, clear_ids, self_contained
        Overrides, as in :func:`parse_config`.

    Returns
    -------
    ReportConfig
        As :func:`parse_config`.

    Raises
    ------
    UsageError
        When the file does not exist, cannot be read, is not UTF-8 text or is not valid
        YAML, or as :func:`parse_config`.
    """
    p = Path(path).expanduser()
    if not p.is_file():
        raise UsageError(f"reports file {str(path)!r} not found (pass --config PATH)")
    try:
        text = p.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise UsageError(
            f"{path}: not UTF-8 text (byte 0x{err.object[err.start]:02x} at position "
            f"{err.start}); save the reports file as UTF-8"
        ) from err
    except OSError as err:
        raise UsageError(f"{path}: cannot be read ({err.strerror}); check its permissions") from err
    try:
        raw = yaml.safe_load(text) or {}
    except yaml.YAMLError as err:
        raise UsageError(f"{path}: not valid YAML: {err}") from err
    return parse_config(
        raw,
        base=p.resolve().parent,
        data=data,
        as_of=as_of,
        out=out,
        only=only,
        jobs=jobs,
        memory_limit_gb=memory_limit_gb,
        source_file=p.resolve(),
        clear_ids=clear_ids,
        self_contained=self_contained,
    )


def notebook_parameters(notebook: str | Path) -> dict[str, str] | None:
    """Read the names (and default source text) declared in a notebook's ``parameters`` cell.

    Parameters
    ----------
    notebook
        The ``.ipynb`` file.

    Returns
    -------
    dict of str to str, or None
        Each assigned name -> the source of its assignment (``"as_of = None"``);
        ``None`` when the notebook has no code cell tagged ``parameters``.

    Raises
    ------
    UsageError
        When the parameters cell is not valid Python.
    """
    nb = json.loads(Path(notebook).read_text(encoding="utf-8"))
    for cell in nb.get("cells", []):
        tags = cell.get("metadata", {}).get("tags", [])
        if cell.get("cell_type") == "code" and "parameters" in tags:
            src = cell.get("source", "")
            src = "".join(src) if isinstance(src, list) else src
            try:
                tree = ast.parse(src)
            except SyntaxError as err:
                raise UsageError(
                    f"{notebook}: the parameters cell is not valid Python: {err}"
                ) from err
            names: dict[str, str] = {}
            for node in tree.body:
                targets: list[ast.expr] = []
                if isinstance(node, ast.Assign):
                    targets = list(node.targets)
                elif isinstance(node, ast.AnnAssign):
                    targets = [node.target]
                for t in targets:
                    for n in ast.walk(t):
                        if isinstance(n, ast.Name):
                            names[n.id] = ast.get_source_segment(src, node) or ""
            return names
    return None


def check_parameters(spec: ReportSpec, *, extra: Sequence[str] = ()) -> str | None:
    """Tell why ``spec`` cannot run with its parameters, or ``None`` when it can.

    Parameters
    ----------
    spec
        The report.
    extra
        Run-wide parameters passed only when set (``mapping``).

    Returns
    -------
    str or None
        A sentence naming the missing parameters cell or the parameters the notebook
        does not declare (and those it does).
    """
    declared = notebook_parameters(spec.notebook)
    if declared is None:
        return f"notebook {spec.notebook.name} has no code cell tagged 'parameters'"
    wanted = [*GLOBAL_PARAMETERS, *extra]
    wanted += [k for k in spec.parameters if k not in wanted]
    unknown = [k for k in wanted if k not in declared]
    if unknown:
        return (
            f"unknown parameter(s) {', '.join(map(repr, unknown))} for notebook "
            f"{spec.notebook.name}; it declares: {', '.join(declared) or '(none)'}"
        )
    return None
