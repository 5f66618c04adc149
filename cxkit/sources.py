"""Data sources given as a specification: a URL or an engine, plus where each table is.

:func:`cxkit.load` takes a folder, a URL or a live connection. A scheduled run on an
engine needs a little more — which engine, how to start it, where each contract table
lives — and every report kernel must apply it the same way. That is a *source spec*, a
plain mapping that reports.yml's ``data:`` can hold and papermill can pass to each
notebook::

    data:                                   # a database: its URL and table names
      url: postgresql://cx@db.internal/analytics
      tables: {orders: sales, events: web_events}

    data:                                   # Spark: how to start it and table locations
      spark:
        master: local[2]                    # or spark://host:7077, yarn, k8s://...
        conf: {spark.driver.memory: 4g}
      tables:
        customers: /lake/cx/customers       # a Parquet file or folder of parts, or CSV
        orders: warehouse.orders            # a catalog table (database.table)

This module checks a spec (:func:`parse_source_spec`), starts Spark from it
(:func:`spark_session`) and makes each contract table a temporary view of that session
(:func:`spark_tables`); :func:`cxkit.data.load` does the rest as for any connection.
Every failure is a :class:`~cxkit.errors.UsageError` or :class:`~cxkit.errors.DataError`
that names the table or setting and the fix.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import socket
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cxkit.errors import DataError, UsageError

if TYPE_CHECKING:  # pyspark is an optional dependency
    from pyspark.sql import DataFrame, SparkSession

__all__ = [
    "SPARK_DEFAULT_CONF",
    "SPEC_KEYS",
    "SourceSpec",
    "SparkSettings",
    "is_source_spec",
    "parse_source_spec",
    "redact_url",
    "spark_session",
    "spark_tables",
    "spec_identity",
]

#: The keys a source spec may have.
SPEC_KEYS: tuple[str, ...] = ("url", "spark", "tables")
#: The keys of a spec's ``spark`` section.
SPARK_KEYS: tuple[str, ...] = ("master", "conf", "app_name")

#: Settings every cxkit Spark session gets unless the spec's ``conf`` sets them.
#: UTC matters for correctness (timestamps are naive UTC in the contract); the in-memory
#: catalog avoids Spark's embedded Derby metastore, which several report kernels cannot
#: open at once.
SPARK_DEFAULT_CONF: dict[str, str] = {
    "spark.sql.session.timeZone": "UTC",
    "spark.ui.enabled": "false",
    "spark.sql.catalogImplementation": "in-memory",
    "spark.ui.showConsoleProgress": "false",
}

#: Seconds to wait for a ``spark://`` master to accept a connection.
MASTER_TIMEOUT_S = 5.0
#: File name endings read as CSV (everything else at a path is read as Parquet).
_CSV_SUFFIXES = (".csv", ".csv.gz")


@dataclass(frozen=True)
class SparkSettings:
    """How to start Spark: the master URL, configuration and application name."""

    master: str = "local[*]"
    conf: dict[str, str] = field(default_factory=dict)
    app_name: str = "cxkit"

    def effective_conf(self) -> dict[str, str]:
        """Return :data:`SPARK_DEFAULT_CONF` overridden by the spec's own settings."""
        return {**SPARK_DEFAULT_CONF, **self.conf}


@dataclass(frozen=True)
class SourceSpec:
    """A checked source spec: a URL or Spark settings, and the table locations.

    Attributes
    ----------
    url
        A connection URL or a folder path (``None`` for Spark).
    spark
        The Spark settings (``None`` for a URL).
    tables
        Contract table name -> its name in the database, a catalog table, or (Spark) a
        Parquet/CSV path.
    """

    url: str | None = None
    spark: SparkSettings | None = None
    tables: dict[str, str] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """Return the spec as plain data (what a notebook's ``data`` parameter holds).

        Examples
        --------
        >>> SourceSpec(url="duckdb:///x.db", tables={"orders": "sales"}).as_dict()
        {'url': 'duckdb:///x.db', 'tables': {'orders': 'sales'}}
        """
        if self.spark is None:
            return {"url": self.url, "tables": dict(self.tables)}
        spark = {"master": self.spark.master, "conf": dict(self.spark.conf)}
        if self.spark.app_name != "cxkit":
            spark["app_name"] = self.spark.app_name
        return {"spark": spark, "tables": dict(self.tables)}

    @property
    def label(self) -> str:
        """A short description for messages and the report header (no password)."""
        if self.spark is not None:
            return f"spark ({self.spark.master})"
        return redact_url(self.url or "")


def redact_url(url: str) -> str:
    """Return a connection URL with its password removed.

    Examples
    --------
    >>> redact_url("postgresql://cx:secret@db/analytics")
    'postgresql://cx@db/analytics'
    """
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        creds, host = rest.rsplit("@", 1)
        return f"{scheme}://{creds.split(':', 1)[0]}@{host}"
    return url


def is_source_spec(source: object) -> bool:
    """Tell a source spec from a ``dict`` of DataFrames (the other mapping ``load`` takes).

    Examples
    --------
    >>> is_source_spec({"spark": {"master": "local[2]"}, "tables": {}})
    True
    >>> is_source_spec({"orders": None})
    False
    """
    return (
        isinstance(source, Mapping)
        and bool(source)
        and all(isinstance(k, str) for k in source)
        and ("url" in source or "spark" in source)
    )


def parse_source_spec(
    spec: Mapping[str, Any], *, base: Path | None = None, valid_tables: tuple[str, ...] = ()
) -> SourceSpec:
    """Check a source spec and return it as a :class:`SourceSpec`.

    Parameters
    ----------
    spec
        ``{"url": ..., "tables": {...}}`` or ``{"spark": {...}, "tables": {...}}``.
    base
        Folder that relative table paths (and a relative folder ``url``) are resolved
        against; by default the current folder.
    valid_tables
        The contract's table names; when given, ``tables`` may name only these.

    Returns
    -------
    SourceSpec

    Raises
    ------
    UsageError
        For an unknown key, both or neither of ``url`` and ``spark``, a setting of the
        wrong type, a table outside the contract, or a Hive catalog without a shared
        metastore.

    Examples
    --------
    >>> s = parse_source_spec({"spark": {"master": "local[2]"},
    ...                        "tables": {"orders": "/lake/orders"}})
    >>> s.spark.master, s.tables, s.label
    ('local[2]', {'orders': '/lake/orders'}, 'spark (local[2])')
    >>> parse_source_spec({"url": "duckdb://x", "spark": {}})
    Traceback (most recent call last):
    ...
    cxkit.errors.UsageError: data: give either 'url' (a database) or 'spark' (a Spark engine), not both
    """
    base = Path(base) if base is not None else Path.cwd()
    unknown = sorted(set(spec) - set(SPEC_KEYS))
    if unknown:
        raise UsageError(
            f"data: unknown key(s) {', '.join(map(repr, unknown))}; a data section has "
            f"{', '.join(SPEC_KEYS)} (see the README's 'Data on a database or Spark')"
        )
    has_url, has_spark = spec.get("url") is not None, spec.get("spark") is not None
    if has_url == has_spark:
        raise UsageError(
            "data: give either 'url' (a database) or 'spark' (a Spark engine), not both"
            if has_url
            else "data: give 'url' (a database URL or folder) or a 'spark' section"
        )
    tables = _parse_tables(spec.get("tables"), valid_tables)
    if has_url:
        url = spec["url"]
        if not isinstance(url, str) or not url.strip():
            raise UsageError(f"data.url must be a connection URL or folder, got {url!r}")
        if "://" not in url:
            url = str((base / url).resolve())
        return SourceSpec(url=url, tables=tables)
    spark = _parse_spark(spec["spark"])
    resolved = {name: _resolve_location(loc, base) for name, loc in tables.items()}
    return SourceSpec(spark=spark, tables=resolved)


def _parse_tables(value: object, valid_tables: tuple[str, ...]) -> dict[str, str]:
    """Check ``tables``: contract table -> a non-empty name or path."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise UsageError(
            f"data.tables must map contract tables to names or paths, e.g. "
            f"{{orders: sales}}, got {value!r}"
        )
    if valid_tables:
        bad = sorted(set(value) - set(valid_tables))
        if bad:
            raise UsageError(
                f"data.tables names unknown table(s) {bad}; the contract's tables are "
                f"{', '.join(valid_tables)}"
            )
    out = {}
    for name, loc in value.items():
        if not isinstance(loc, str | os.PathLike) or not str(loc).strip():
            raise UsageError(f"data.tables.{name} must be a table name or a path, got {loc!r}")
        out[str(name)] = str(loc)
    return out


def _parse_spark(value: object) -> SparkSettings:
    """Check a ``spark`` section."""
    if not isinstance(value, Mapping):
        raise UsageError(
            f"data.spark must be a section with master and conf, e.g. "
            f"{{master: 'local[2]', conf: {{spark.driver.memory: 4g}}}}, got {value!r}"
        )
    unknown = sorted(set(value) - set(SPARK_KEYS))
    if unknown:
        raise UsageError(
            f"data.spark: unknown key(s) {', '.join(map(repr, unknown))}; valid keys: "
            f"{', '.join(SPARK_KEYS)}"
        )
    master = value.get("master") or "local[*]"
    conf = value.get("conf") or {}
    if not isinstance(master, str):
        raise UsageError(f"data.spark.master must be a master URL such as local[2], got {master!r}")
    if not isinstance(conf, Mapping):
        raise UsageError(f"data.spark.conf must map Spark settings to values, got {conf!r}")
    conf = {str(k): _conf_value(v) for k, v in conf.items()}
    settings = SparkSettings(
        master=master, conf=conf, app_name=str(value.get("app_name") or "cxkit")
    )
    eff = settings.effective_conf()
    if eff.get("spark.sql.catalogImplementation") == "hive" and not any(
        k.endswith("hive.metastore.uris") for k in eff
    ):
        raise UsageError(
            "data.spark.conf: spark.sql.catalogImplementation is 'hive' but no shared "
            "metastore is set; Spark's embedded Derby metastore can be opened by only one "
            "report kernel at a time. Fix: set spark.hadoop.hive.metastore.uris to your "
            "metastore (thrift://host:9083), or give the tables as Parquet paths and drop "
            "the catalog setting"
        )
    return settings


def _conf_value(v: object) -> str:
    """Spark wants strings; YAML gives booleans and numbers."""
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


def _resolve_location(loc: str, base: Path) -> str:
    """Make a relative path absolute; leave catalog names and URLs (``s3a://``) alone."""
    if _is_path(loc) and "://" not in loc and not Path(loc).is_absolute():
        return str((base / loc).resolve())
    return loc


def _is_path(loc: str) -> bool:
    """Tell a path (a slash, a URL scheme or a file ending) from a catalog table name."""
    return (
        "/" in loc
        or "://" in loc
        or loc.endswith((".parquet", *_CSV_SUFFIXES))
        or loc.startswith(("~", "."))
    )


def spec_identity(spec: SourceSpec) -> dict[str, Any]:
    """Return what identifies a spec's data for the run cache: settings and file stats.

    Local Parquet/CSV locations contribute their files' sizes and modification times,
    so a rewritten file gives a new identity; remote paths and catalog tables contribute
    their names only.
    """
    files: list[tuple[str, int, int]] = []
    for loc in spec.tables.values():
        path = Path(loc)
        if "://" in loc or not path.exists():
            continue
        parts = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
        for part in parts:
            st = part.stat()
            files.append((str(part), st.st_size, st.st_mtime_ns))
    return {
        "url": spec.url,
        "spark": None
        if spec.spark is None
        else {"master": spec.spark.master, "conf": spec.spark.effective_conf()},
        "tables": spec.tables,
        "files": files,
    }


def spark_session(settings: SparkSettings) -> SparkSession:
    """Start (or join this process's) Spark session with the spec's settings.

    Parameters
    ----------
    settings
        The spec's Spark settings; :data:`SPARK_DEFAULT_CONF` fills in what they omit.

    Returns
    -------
    pyspark.sql.SparkSession

    Raises
    ------
    UsageError
        When pyspark is not installed.
    DataError
        When Java is missing, a ``spark://`` master does not answer within
        :data:`MASTER_TIMEOUT_S` seconds, or Spark fails to start.
    """
    if importlib.util.find_spec("pyspark") is None:
        raise UsageError(
            "the data section asks for Spark but pyspark is not installed; install it "
            "with pip install 'cxkit[spark]' (and Java 17)"
        )
    _check_master(settings.master)
    if not (os.environ.get("JAVA_HOME") or shutil.which("java")):
        raise DataError(
            "Spark needs Java, and no java was found on PATH (nor JAVA_HOME)",
            table=f"spark ({settings.master})",
            fix="install Java 17 (Debian: apt-get install openjdk-17-jre-headless) or set "
            "JAVA_HOME",
        )
    from pyspark.sql import SparkSession  # optional dependency

    builder = SparkSession.builder.master(settings.master).appName(settings.app_name)
    for key, value in settings.effective_conf().items():
        builder = builder.config(key, value)
    try:
        session = builder.getOrCreate()
    except Exception as err:
        reason = " ".join(str(err).split())[:400] or type(err).__name__
        raise DataError(
            f"Spark did not start: {reason}",
            table=f"spark ({settings.master})",
            fix="check data.spark.master and data.spark.conf in the reports file, and "
            "that Java 17 is installed",
        ) from err
    for key, value in settings.effective_conf().items():
        if session.conf.isModifiable(key):
            session.conf.set(key, value)  # a joined session keeps its earlier settings
    return session


def _check_master(master: str) -> None:
    """Fail fast (not after Spark's minute of retries) when a standalone master is down."""
    if not master.startswith("spark://"):
        return
    for hostport in master.removeprefix("spark://").split(","):
        parsed = urllib.parse.urlsplit(f"//{hostport}")
        host, port = parsed.hostname or "localhost", parsed.port or 7077
        try:
            with socket.create_connection((host, port), timeout=MASTER_TIMEOUT_S):
                return
        except OSError:
            continue
    raise DataError(
        f"the Spark master {master} did not answer within {MASTER_TIMEOUT_S:.0f} s",
        table=f"spark ({master})",
        fix="check that the master is running and reachable from this machine, or use "
        "master: local[2] to run Spark on this machine",
    )


def spark_tables(session: SparkSession, tables: Mapping[str, str]) -> dict[str, str]:
    """Make each contract table a temporary view ``cx_<table>`` of the session.

    Parameters
    ----------
    session
        The Spark session.
    tables
        Contract table -> a Parquet file or folder, a CSV file (``.csv``/``.csv.gz``,
        with a header row) or a catalog table (``database.table`` or ``table``).

    Returns
    -------
    dict
        Contract table -> the view's name, for :func:`cxkit.data.load`.

    Raises
    ------
    DataError
        When a path does not exist or cannot be read, or a catalog table does not exist
        (the message lists the catalog's tables).
    """
    views: dict[str, str] = {}
    for name, loc in tables.items():
        view = f"cx_{name}"
        if _is_path(loc):
            frame = _read_path(session, name, loc)
        else:
            if not session.catalog.tableExists(loc):
                raise DataError(
                    f"the catalog table {loc!r} named for {name} does not exist",
                    table=name,
                    fix=f"catalog tables: {_catalog_tables(session)}; or give a Parquet "
                    "path (a folder or file) instead",
                )
            frame = session.table(loc)
        frame.createOrReplaceTempView(view)
        views[name] = view
    return views


def _read_path(session: SparkSession, name: str, loc: str) -> DataFrame:
    """Read a Parquet or CSV location; a missing or unreadable one is a DataError."""
    if "://" not in loc and not Path(loc).expanduser().exists():
        raise DataError(
            f"the path {loc!r} named for {name} does not exist",
            table=name,
            fix="check data.tables in the reports file (relative paths are relative to "
            "the reports file's folder)",
        )
    try:
        if loc.endswith(_CSV_SUFFIXES):
            return session.read.option("header", "true").csv(loc)
        return session.read.parquet(loc)
    except Exception as err:
        reason = " ".join(str(err).split())[:300] or type(err).__name__
        raise DataError(
            f"Spark could not read {loc!r}: {reason}",
            table=name,
            fix="give a Parquet file or folder of Parquet parts, or a CSV file with a header row",
        ) from err


def _catalog_tables(session: SparkSession) -> list[str]:
    """Up to ten tables of the session's current catalog database."""
    try:
        return sorted(t.name for t in session.catalog.listTables())[:10]
    except Exception:  # a catalog that cannot be listed is no reason to hide the error
        return []
