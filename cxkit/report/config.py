"""``reports.yml``: parsing, command-line overrides and validation.

A reports file looks like::

    data: data/demo          # folder or connection URL
    as_of: null              # ISO date or null (= latest timestamp in the data)
    out: reports             # output folder
    jobs: 2                  # notebooks run at once
    cell_timeout: 300        # seconds per cell
    timeout: 1200            # seconds per notebook (kernel start included)
    publish:
      customer_ids: pseudonymous   # or clear: show the real customer IDs (cxkit.privacy)
      id_key: null                 # the pseudonyms' secret (better: env CXKIT_ID_KEY)
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

from cxkit.data import TABLES
from cxkit.errors import UsageError
from cxkit.privacy import MODES as ID_MODES

__all__ = [
    "GLOBAL_PARAMETERS",
    "ReportConfig",
    "ReportSpec",
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
    "cell_timeout",
    "timeout",
    "publish",
    "reports",
)
PUBLISH_KEYS = ("customer_ids", "id_key")
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
        The data source: an absolute folder path or a connection URL.
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
    """

    data: str
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
    bad = [t for t in value if t not in TABLES]
    if bad:
        raise UsageError(f"mapping names unknown table(s) {bad}; valid: {', '.join(TABLES)}")
    return {t: dict(cols) for t, cols in value.items()}


def _publish(value: object, clear_ids: bool) -> tuple[str, str | None]:
    """Check ``publish:`` ({customer_ids, id_key}), apply ``--clear-ids``; return both."""
    if value is None:
        value = {}
    if not isinstance(value, Mapping):
        raise UsageError(
            f"publish must look like {{customer_ids: {ID_MODES[0]}, id_key: <secret>}}, "
            f"got {value!r}"
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
    return ("clear" if clear_ids else str(mode)), key


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


def _resolve_data(value: object, base: Path) -> str:
    """Return a data source as a URL or an absolute path (relative to ``base``)."""
    if not isinstance(value, str | Path) or not str(value).strip():
        raise UsageError(f"data must be a folder path or a connection URL, got {value!r}")
    text = str(value)
    if "://" in text:
        return text
    path = Path(text).expanduser()
    return str((path if path.is_absolute() else base / path).resolve())


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
    cxkit.errors.UsageError: reports file: unknown key(s) 'colour'; valid keys: data, as_of, mapping, out, jobs, memory_limit_gb, cell_timeout, timeout, publish, reports
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

    as_of_value = _as_of_text(as_of if as_of is not None else raw.get("as_of"))
    mapping_value = _mapping(raw.get("mapping"))
    customer_ids, id_key = _publish(raw.get("publish"), clear_ids)

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
) -> ReportConfig:
    """Read and validate a reports file, with command-line overrides.

    Parameters
    ----------
    path
        The YAML reports file; relative paths inside it are relative to its folder.
    data, as_of, out, only, jobs, memory_limit_gb, clear_ids
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
