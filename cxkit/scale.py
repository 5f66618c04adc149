"""Scale mode: keep per-customer work in the engine, collect only bounded frames.

In the default ``"memory"`` mode the analyses collect per-customer frames (features,
scores) to pandas. In ``"scale"`` mode each analysis (churn, CLV, personas, experiments,
and the survey-to-value linkage, time to churn and the scorecard, registered with
:func:`register`) fits its models on a deterministic, stratified
sample of bounded size drawn in the engine (:func:`stratified_sample`), scores every
customer in bounded batches written back into the engine as a table
(:func:`score_in_batches`), and computes what the report shows from that table in the
engine. Every collect goes through :func:`bounded_to_pandas`, which counts first and
raises :class:`~cxkit.errors.ScaleLimitError` instead of collecting more than
``max_collect_rows`` rows.

The settings come from the environment variable ``CXKIT_SCALE`` (JSON, written by the
report run from the ``scale:`` key of ``reports.yml``): :func:`current_settings`.
"""

from __future__ import annotations

import atexit
import inspect
import json
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import NamedTuple

import ibis
import ibis.expr.types as ir
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from ibis.backends import BaseBackend

from cxkit.errors import NotAvailableError, ScaleLimitError, UsageError

__all__ = [
    "MODES",
    "SCALE_ENV",
    "ScaleSettings",
    "StratifiedSample",
    "bounded_to_pandas",
    "current_settings",
    "describe_settings",
    "dispatch",
    "guard_collects",
    "open_table",
    "register",
    "scale_mode_settings",
    "score_in_batches",
    "scratch_dir",
    "stratified_sample",
]

#: The environment variable holding the settings as JSON (see :func:`current_settings`).
SCALE_ENV = "CXKIT_SCALE"

#: The valid modes.
MODES = ("memory", "scale")

#: The run's cache folder (:data:`cxkit.cache.CACHE_ENV`; named here because cxkit.cache
#: imports cxkit.data, which imports this module).
CACHE_DIR_ENV = "CXKIT_CACHE_DIR"

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclass(frozen=True)
class ScaleSettings:
    """How much per-customer data an analysis may hold in memory.

    Parameters
    ----------
    mode
        ``"memory"`` (collect per-customer frames, the default) or ``"scale"`` (keep
        them in the engine; see the module docstring).
    sample_rows
        Scale mode: models are fitted, calibrated and validated on stratified samples of
        at most this many customers per cutoff.
    max_collect_rows
        Scale mode: no per-customer frame of more rows than this is collected
        (:func:`bounded_to_pandas`); must be at least ``sample_rows`` and ``batch_rows``.
    batch_rows
        Scale mode: customers are scored in batches of this many rows.
    strict
        Scale mode: also check every result the engine hands to Python and fail any
        of more than ``max_collect_rows`` rows (:func:`guard_collects`, applied by
        :func:`cxkit.load`): an audit that nothing collects around the bounded paths.
        The check follows the collect, so it finds a large collect, it does not prevent
        its memory; for tests and audits.

    Raises
    ------
    UsageError
        For an unknown mode, a size below 1, or limits that contradict each other.

    Examples
    --------
    >>> ScaleSettings(mode="scale", sample_rows=4000, max_collect_rows=5000).batch_rows
    100000
    """

    mode: str = "memory"
    sample_rows: int = 200_000
    max_collect_rows: int = 250_000
    batch_rows: int = 100_000
    strict: bool = False

    def __post_init__(self) -> None:
        """Check the mode and sizes."""
        if self.mode not in MODES:
            raise UsageError(f"scale mode must be one of {list(MODES)}, got {self.mode!r}")
        for f in ("sample_rows", "max_collect_rows", "batch_rows"):
            value = getattr(self, f)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise UsageError(f"scale {f} must be a whole number >= 1, got {value!r}")
        if not isinstance(self.strict, bool):
            raise UsageError(f"scale strict must be true or false, got {self.strict!r}")
        if self.sample_rows > self.max_collect_rows:
            raise UsageError(
                f"scale sample_rows ({self.sample_rows:,}) must not exceed max_collect_rows "
                f"({self.max_collect_rows:,}): the sample is collected"
            )

    @property
    def scale(self) -> bool:
        """Whether scale mode is on."""
        return self.mode == "scale"

    def to_json(self) -> str:
        """Return the settings as the JSON :func:`current_settings` reads."""
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_value(cls, value: object) -> ScaleSettings:
        """Build settings from a mode name, a mapping of settings, or None.

        A mapping without ``mode`` means scale mode (asking for limits asks for it).

        Parameters
        ----------
        value
            None (memory mode), ``"memory"`` / ``"scale"``, ``True`` (scale mode) or a
            mapping with some of ``mode, sample_rows, max_collect_rows, batch_rows``.

        Returns
        -------
        ScaleSettings
            The settings.

        Raises
        ------
        UsageError
            For an unknown key (the message lists the valid ones) or a bad value.

        Examples
        --------
        >>> ScaleSettings.from_value({"sample_rows": 1000}).mode
        'scale'
        """
        if value is None or value is False:
            return cls()
        if value is True:
            return cls(mode="scale")
        if isinstance(value, str):
            return cls(mode=value.strip().lower())
        if not isinstance(value, Mapping):
            raise UsageError(
                "scale settings must be a mode name ('memory' or 'scale') or a mapping of "
                f"{[f.name for f in fields(cls)]}, got {value!r}"
            )
        valid = [f.name for f in fields(cls)]
        unknown = sorted(str(k) for k in value if k not in valid)
        if unknown:
            raise UsageError(f"unknown scale setting(s) {unknown}; valid settings: {valid}")
        kwargs = dict(value)
        kwargs.setdefault("mode", "scale")
        return cls(**kwargs)  # type: ignore[arg-type]


def current_settings() -> ScaleSettings:
    """Return the settings from the ``CXKIT_SCALE`` environment variable.

    Unset or empty: memory mode. Else JSON (a mode name or an object, as
    :meth:`ScaleSettings.from_value` takes); a bare ``scale`` or ``memory`` also works.

    Returns
    -------
    ScaleSettings
        The settings.

    Raises
    ------
    UsageError
        When the variable holds neither JSON nor a mode name, or bad settings.
    """
    raw = os.environ.get(SCALE_ENV, "").strip()
    if not raw:
        return ScaleSettings()
    if raw.lower() in MODES:
        return ScaleSettings(mode=raw.lower())
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as err:
        raise UsageError(
            f'{SCALE_ENV} must be JSON such as \'{{"mode": "scale"}}\' or a mode name '
            f"{list(MODES)}, got {raw!r} ({err.msg})"
        ) from None
    return ScaleSettings.from_value(value)


def scale_mode_settings(settings: ScaleSettings | None = None) -> ScaleSettings:
    """Return the settings a scale-mode analysis runs with: in scale mode, limits checked.

    What every ``analyze_scale`` starts with: the settings given (default
    :func:`current_settings`) with their mode set to ``"scale"`` (an analysis asked to
    run in scale mode does so whatever the environment says), and a check that one
    scoring batch fits within the collect limit.

    Parameters
    ----------
    settings
        The limits, or None for :func:`current_settings`.

    Returns
    -------
    ScaleSettings
        ``settings`` itself when it is already in scale mode, else a copy in scale mode
        with the same limits.

    Raises
    ------
    UsageError
        When ``batch_rows`` exceeds ``max_collect_rows`` (a batch is held in memory).

    Examples
    --------
    >>> memory = ScaleSettings(sample_rows=1000, max_collect_rows=2000, batch_rows=500)
    >>> scale_mode_settings(memory).mode
    'scale'
    >>> scale_mode_settings(ScaleSettings(mode="scale", sample_rows=1000, max_collect_rows=2000))
    Traceback (most recent call last):
    ...
    cxkit.errors.UsageError: scale batch_rows (100,000) must not exceed max_collect_rows (2,000)
    """
    settings = settings or current_settings()
    if not settings.scale:
        settings = replace(settings, mode="scale")
    if settings.batch_rows > settings.max_collect_rows:
        raise UsageError(
            f"scale batch_rows ({settings.batch_rows:,}) must not exceed max_collect_rows "
            f"({settings.max_collect_rows:,})"
        )
    return settings


def guard_collects(con: BaseBackend, settings: ScaleSettings | None = None) -> BaseBackend:
    """Make every result of ``con`` over ``max_collect_rows`` rows an error (strict mode).

    ``execute`` and ``to_pyarrow`` of this connection count the rows they return and
    raise :class:`~cxkit.errors.ScaleLimitError` above the limit; streamed batches
    (``to_pyarrow_batches``, bounded by their size) pass. Applied once per connection.

    Parameters
    ----------
    con
        The backend (changed in place).
    settings
        The limits (default :func:`current_settings`).

    Returns
    -------
    ibis.backends.BaseBackend
        ``con``.
    """
    settings = settings or current_settings()
    if getattr(con, "_cxkit_guarded", False):
        return con
    limit = settings.max_collect_rows

    def checked(method: Callable[..., object]) -> Callable[..., object]:
        def run(*args: object, **kwargs: object) -> object:
            out = method(*args, **kwargs)
            rows = getattr(out, "num_rows", None)
            if rows is None:
                rows = len(out) if isinstance(out, pd.DataFrame | pd.Series) else 1
            if rows > limit:
                raise ScaleLimitError(what="a result (strict scale mode)", rows=rows, limit=limit)
            return out

        return run

    for name in ("execute", "to_pyarrow"):
        setattr(con, name, checked(getattr(con, name)))
    con._cxkit_guarded = True  # type: ignore[attr-defined]
    return con


def bounded_to_pandas(
    expr: ir.Table, *, what: str, settings: ScaleSettings | None = None
) -> pd.DataFrame:
    """Collect ``expr`` to pandas after checking it has at most ``max_collect_rows`` rows.

    Parameters
    ----------
    expr
        The table expression.
    what
        What the rows are, for the message (e.g. ``"churn features sample"``).
    settings
        The limits (default :func:`current_settings`).

    Returns
    -------
    pandas.DataFrame
        The rows.

    Raises
    ------
    ScaleLimitError
        When the expression has more rows than ``settings.max_collect_rows``.

    Examples
    --------
    >>> import ibis
    >>> t = ibis.memtable({"x": [1, 2, 3]})
    >>> len(bounded_to_pandas(t, what="x", settings=ScaleSettings(max_collect_rows=3,
    ...     sample_rows=3)))
    3
    """
    settings = settings or current_settings()
    n = int(expr.count().to_pandas())
    limit = settings.max_collect_rows
    if n > limit:
        raise ScaleLimitError(what=what, rows=n, limit=limit)
    return expr.to_pyarrow().to_pandas()


class StratifiedSample(NamedTuple):
    """A deterministic stratified sample drawn in the engine (:func:`stratified_sample`).

    Attributes
    ----------
    expr
        The sampled rows (the input's columns), an ibis expression.
    fractions
        Stratum value -> the share of its rows in the sample (1.0: all of them); divide
        a stratum's sampled counts by it to re-weight to the population.
    population
        Stratum value -> its rows in the input.
    sizes
        Stratum value -> its rows in the sample.
    """

    expr: ir.Table
    fractions: dict[object, float]
    population: dict[object, int]
    sizes: dict[object, int]

    @property
    def n(self) -> int:
        """Rows in the sample."""
        return sum(self.sizes.values())

    @property
    def total(self) -> int:
        """Rows in the input."""
        return sum(self.population.values())


def stratified_sample(
    expr: ir.Table, *, by: str | None, n: int, key: str = "customer_id"
) -> StratifiedSample:
    """Draw about ``n`` rows of ``expr``, the same share of every stratum of ``by``.

    Rows are ranked within each stratum by a hash of ``key`` (ties by ``key``) and the
    first ``round(share × stratum rows)`` kept, with ``share = n / rows``: the same data
    gives the same sample on the same engine, and strata keep their proportions (up to
    rounding), so rates computed on the sample estimate the population's. Runs on
    DuckDB, PostgreSQL and Spark (ibis ``hash`` and ``row_number``).

    Parameters
    ----------
    expr
        The rows, one per ``key`` value.
    by
        The stratum column, or None for one stratum.
    n
        The sample size to aim at (at least 1).
    key
        The column whose hash orders the rows.

    Returns
    -------
    StratifiedSample
        The sampled expression and the per-stratum fractions, populations and sizes.

    Raises
    ------
    UsageError
        When ``n`` is below 1 or a column is missing.
    """
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise UsageError(f"n must be a whole number >= 1, got {n!r}")
    missing = [c for c in (key, by) if c is not None and c not in expr.columns]
    if missing:
        raise UsageError(f"column(s) {missing} not in the table; columns: {list(expr.columns)}")
    if by is None:
        counts = {None: int(expr.count().to_pandas())}
    else:
        got = expr.group_by(by).aggregate(_cx_n=expr.count()).to_pandas()
        counts = {_plain(v): int(c) for v, c in zip(got[by], got["_cx_n"], strict=True)}
    total = sum(counts.values())
    share = min(1.0, n / total) if total else 1.0
    sizes = {v: min(c, round(share * c)) for v, c in counts.items()}
    fractions = {v: (sizes[v] / c if c else 1.0) for v, c in counts.items()}
    if share >= 1.0:
        return StratifiedSample(expr, fractions, counts, sizes)
    cols = list(expr.columns)
    h = expr.mutate(_cx_h=expr[key].hash())
    w = ibis.window(group_by=[] if by is None else [h[by]], order_by=[h._cx_h, h[key]])
    ranked = h.mutate(_cx_rank=ibis.row_number().over(w))
    if by is None:
        keep = ranked._cx_rank < sizes[None]
    else:
        cases = [
            ((ranked[by].isnull() if v is None else ranked[by] == v), k) for v, k in sizes.items()
        ]
        keep = ranked._cx_rank < ibis.cases(*cases, else_=0)
    return StratifiedSample(ranked.filter(keep).select(cols), fractions, counts, sizes)


def _plain(v: object) -> object:
    """Return a stratum value as a plain Python value (numpy scalars, missing -> None)."""
    if v is None or (isinstance(v, float) and v != v) or v is pd.NA:
        return None
    return v.item() if hasattr(v, "item") else v


def score_in_batches(
    expr: ir.Table,
    predict: Callable[[pd.DataFrame], pd.DataFrame],
    *,
    con: BaseBackend,
    name: str,
    batch_rows: int | None = None,
    order_by: str | Sequence[str] | None = None,
) -> ir.Table:
    """Stream ``expr`` in batches, apply ``predict`` and write the results as table ``name``.

    At most one batch (``batch_rows`` input rows and its predictions) is in memory at a
    time. The table is replaced if it exists. On an in-memory DuckDB database, which
    only this process sees, and on Spark, whose tables each kernel's session keeps to
    itself, the batches are written as Parquet parts to :func:`scratch_dir` and the
    table is a view of them, which other kernels of the same report run open with
    :func:`open_table` (on a Spark cluster the folder must be one the executors read:
    the run's cache folder on a shared file system). On a database (a DuckDB file,
    PostgreSQL) the table is written into it.

    Parameters
    ----------
    expr
        The rows to score (e.g. per-customer features), on ``con``.
    predict
        Batch frame -> result frame (the same columns and types for every batch).
    con
        The backend to write the table into (the one ``expr`` runs on).
    name
        The table name (letters, digits and ``_``).
    batch_rows
        Rows per batch (default :func:`current_settings`'s ``batch_rows``).
    order_by
        Stream the rows in this order, so that every run forms the same batches (needed
        when ``predict`` looks at a batch as a whole); None: the engine's order, which
        may differ between runs.

    Returns
    -------
    ibis.expr.types.Table
        The written table.

    Raises
    ------
    UsageError
        For a bad table name or batch size.
    """
    if not _NAME.match(name):
        raise UsageError(f"table name must be letters, digits and '_', got {name!r}")
    batch_rows = batch_rows or current_settings().batch_rows
    if batch_rows < 1:
        raise UsageError(f"batch_rows must be >= 1, got {batch_rows!r}")
    files = _shared_by_files(con)
    write = _file_writer(con, name) if files else _writer(con, name)
    created = False
    rows = expr if order_by is None else expr.order_by(order_by)
    for batch in rows.to_pyarrow_batches(chunk_size=batch_rows):
        if batch.num_rows == 0:
            continue
        out = predict(batch.to_pandas())
        write(pa.Table.from_pandas(out, preserve_index=False), create=not created)
        created = True
    if not created:  # no rows: an empty table with the result's columns
        empty = expr.schema().to_pyarrow().empty_table().to_pandas()
        out = predict(empty)
        write(pa.Table.from_pandas(out, preserve_index=False), create=True)
    if files:
        _attach_files(con, name, scratch_dir() / name)
    return con.table(name)


def scratch_dir() -> Path:
    """Return the folder where scale mode writes its tables as Parquet (created if needed).

    In a ``cxkit report`` run it is inside the run's cache folder
    (:func:`cxkit.cache.cache_dir`), so that every kernel of the run reads what another
    wrote (:func:`open_table`), and it goes when the run ends; elsewhere it is a folder of
    this process's own under the system's temporary folder.

    Returns
    -------
    pathlib.Path
        The folder.
    """
    value = os.environ.get(CACHE_DIR_ENV, "").strip()
    base = Path(value) if value else None
    if base is not None:
        folder = base / "scale-tables"
    else:
        folder = Path(tempfile.gettempdir()) / f"cxkit-scale-{os.getpid()}"
        if folder not in _OWN_SCRATCH:  # this process's own: removed when it exits
            _OWN_SCRATCH.add(folder)
            atexit.register(shutil.rmtree, folder, ignore_errors=True)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


_OWN_SCRATCH: set[Path] = set()


def open_table(con: BaseBackend, name: str) -> ir.Table:
    """Return the table ``name`` that scale mode wrote (:func:`score_in_batches`).

    A table written into a database is read from it. On an in-memory DuckDB database,
    which no other process can see, and on Spark, scale mode writes Parquet files to
    :func:`scratch_dir` instead, and here they are opened as a view: so the reports of
    one run share what one of them wrote, each in its own kernel.

    Parameters
    ----------
    con
        The backend.
    name
        The table's name (e.g. a result's ``scores_table``).

    Returns
    -------
    ibis.expr.types.Table
        The table.

    Raises
    ------
    NotAvailableError
        When no such table was written in this process or this report run.
    """
    if name in con.list_tables():
        return con.table(name)
    folder = scratch_dir() / name
    if _shared_by_files(con) and any(folder.glob("*.parquet")):
        _attach_files(con, name, folder)
        return con.table(name)
    raise NotAvailableError(
        f"the table {name!r} written by scale mode (it is written by the analysis that "
        "makes it, in this session or in the same cxkit report run)",
        analysis=f"Reading {name}",
    )


def _shared_by_files(con: BaseBackend) -> bool:
    """Tell whether tables of ``con`` are written as Parquet parts (and shared as files).

    An in-memory DuckDB database is seen by its own process only, and a Spark session's
    tables by its own session (unless a shared metastore holds them): each kernel has
    its own. Databases (a DuckDB file, PostgreSQL) keep the tables themselves.
    """
    return con.name == "pyspark" or _in_memory_duckdb(con)


def _in_memory_duckdb(con: BaseBackend) -> bool:
    """Tell whether ``con`` is a DuckDB connection to an in-memory database."""
    if con.name != "duckdb":
        return False
    rows = con.con.execute(
        "SELECT path FROM duckdb_databases() WHERE database_name = current_database()"
    ).fetchall()
    return not rows or rows[0][0] in (None, "", ":memory:")


def _file_writer(con: BaseBackend, name: str) -> Callable[..., None]:
    """Return ``write(arrow_table, create=...)`` writing Parquet parts of table ``name``."""
    folder = scratch_dir() / name
    state: dict[str, object] = {"part": 0, "schema": None}

    def write_files(table: pa.Table, *, create: bool) -> None:
        if create:
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir(parents=True)
            state["schema"] = table.schema
        else:  # every part has the first part's columns and types
            table = table.cast(state["schema"])  # type: ignore[arg-type]
        part = int(state["part"])  # type: ignore[call-overload]
        pq.write_table(table, folder / f"part-{part:05d}.parquet")
        state["part"] = part + 1

    return write_files


def _attach_files(con: BaseBackend, name: str, folder: Path) -> None:
    """Make the Parquet parts in ``folder`` the view ``name`` of ``con`` (DuckDB or Spark)."""
    if con.name == "pyspark":  # a temporary view of this session
        con.read_parquet(str(folder), table_name=name)
        return
    pattern = str(folder / "*.parquet").replace("'", "''")
    con.con.execute(f"CREATE OR REPLACE VIEW {name} AS SELECT * FROM read_parquet('{pattern}')")


def _writer(con: BaseBackend, name: str) -> Callable[..., None]:
    """Return ``write(arrow_table, create=...)`` creating or appending to table ``name``.

    DuckDB closes a connection's open result stream when the same connection runs
    another statement, so there the batches are written through a second cursor of the
    same database; other engines write through ibis.
    """
    if con.name == "duckdb":
        cur = con.con.cursor()

        def write_duckdb(table: pa.Table, *, create: bool) -> None:
            cur.register("_cx_batch", table)
            try:
                verb = f"CREATE OR REPLACE TABLE {name} AS" if create else f"INSERT INTO {name}"
                cur.execute(f"{verb} SELECT * FROM _cx_batch")
            finally:
                cur.unregister("_cx_batch")

        return write_duckdb

    def write_ibis(table: pa.Table, *, create: bool) -> None:
        if create:
            con.create_table(name, obj=table, overwrite=True)
        else:
            con.insert(name, table)

    return write_ibis


def describe_settings(settings: ScaleSettings) -> str:
    """Return the settings in words (for a report's method notes).

    Parameters
    ----------
    settings
        The settings.

    Returns
    -------
    str
        One sentence.

    Examples
    --------
    >>> describe_settings(ScaleSettings())
    'Memory mode: per-customer frames are computed in memory.'
    """
    if not settings.scale:
        return "Memory mode: per-customer frames are computed in memory."
    return (
        f"Scale mode: samples of at most {settings.sample_rows:,} customers, batches of "
        f"{settings.batch_rows:,}, no per-customer frame over "
        f"{settings.max_collect_rows:,} rows collected."
    )


#: Analysis name -> its scale-mode function (registered by the module that defines it).
_SCALE_RUNNERS: dict[str, Callable[..., object]] = {}


def register(kind: str, fn: Callable[..., object]) -> None:
    """Register ``fn(data, *, settings, **options)`` as the scale mode of analysis ``kind``.

    Parameters
    ----------
    kind
        The analysis (e.g. ``"churn"``).
    fn
        Its scale-mode function; options it does not take are not passed.
    """
    _SCALE_RUNNERS[kind] = fn


def dispatch(kind: str, mode: str | None, options: Mapping[str, object]) -> object | None:
    """Run analysis ``kind`` in scale mode when the mode says so, else return None.

    Called first thing by an analysis that has a scale mode (``churn.analyze``): a None
    means "go on in memory".

    Parameters
    ----------
    kind
        The analysis (registered with :func:`register`).
    mode
        ``"memory"``, ``"scale"`` or None (:func:`current_settings`).
    options
        The analysis's arguments: ``data`` and its options.

    Returns
    -------
    object or None
        The scale-mode result; None in memory mode.

    Raises
    ------
    UsageError
        For an unknown mode, or an analysis without a scale mode asked to run in it.
    """
    if mode is not None and mode not in MODES:
        raise UsageError(f"mode must be one of {list(MODES)}, got {mode!r}")
    settings = current_settings()
    if (mode or settings.mode) != "scale":
        return None
    fn = _SCALE_RUNNERS.get(kind)
    if fn is None:
        raise UsageError(
            f"{kind} has no scale mode yet; scale mode covers: {sorted(_SCALE_RUNNERS)}"
        )
    names = set(inspect.signature(fn).parameters) - {"data", "settings"}
    kwargs = {k: v for k, v in options.items() if k in names}
    return fn(options["data"], settings=settings, **kwargs)
