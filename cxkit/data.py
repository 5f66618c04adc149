"""The data contract, loading and the :class:`CXData` container.

cxkit works on four tables — ``customers``, ``events``, ``orders`` and ``responses`` —
held as ibis table expressions on one ibis connection (DuckDB by default). Row-level
work stays in the engine; :meth:`CXData.to_pandas` brings a table to pandas with the
same dtypes whatever the backend.

Two versions of each table are kept:

* ``raw``: the table as loaded, with the user's columns renamed to the canonical names;
* ``table(name)``: the *typed* table, where every contract column has exactly its
  contract type whatever the file format or backend (IDs and any other ``*_id`` column as
  ``string``, timestamps as naive UTC ``timestamp(6)``, amounts as ``float64``, scores as
  ``int64``), so that tables read from CSV and from Parquet union and join. Values that
  cannot be converted become NULL here; :func:`cxkit.validate` compares the two to
  report them.
"""

from __future__ import annotations

import csv
import datetime as dt_
import gzip
import hashlib
import json
import os
import tempfile
import urllib.parse
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import ibis
import ibis.expr.datatypes as dt
import ibis.expr.types as ir
import numpy as np
import pandas as pd
from ibis.backends import BaseBackend

from cxkit import scale, sources
from cxkit.errors import DataError, NotAvailableError, UsageError

if TYPE_CHECKING:  # pyspark is an optional dependency
    from pyspark.sql import SparkSession

__all__ = [
    "ALL_TABLES",
    "CONNECT_TIMEOUT_S",
    "CONTRACT_DTYPES",
    "DUCKDB_MEMORY_ENV",
    "DUCKDB_TEMP_ENV",
    "EARLIEST_TS",
    "FUTURE_TOLERANCE",
    "OPTIONAL_TABLES",
    "SCHEMA",
    "TABLES",
    "CXData",
    "Column",
    "end_of_day",
    "format_as_of",
    "latest_plausible_ts",
    "load",
    "normalize_frame",
    "parse_as_of",
    "require_columns",
    "resolve_as_of",
    "typed_column",
]

TABLES: tuple[str, ...] = ("customers", "events", "orders", "responses")
#: Tables beyond the four core ones that an analysis may use when present:
#: ``assignments`` (who was assigned to which variant of an experiment, and when).
OPTIONAL_TABLES: tuple[str, ...] = ("assignments",)
#: Every contract table, in contract order.
ALL_TABLES: tuple[str, ...] = (*TABLES, *OPTIONAL_TABLES)
ID_COLUMNS = {"customer_id", "order_id", "response_id", "event_id"}


@dataclass(frozen=True)
class Column:
    """One column of the data contract.

    Attributes
    ----------
    name
        The canonical column name.
    kind
        ``"string"``, ``"timestamp"``, ``"float"`` or ``"int"``: its type after loading.
    required
        Whether the table must have it.
    unique
        Whether its values must be unique.
    """

    name: str
    kind: str  # "string" | "timestamp" | "float" | "int"
    required: bool = False
    unique: bool = False


SCHEMA: dict[str, tuple[Column, ...]] = {
    "customers": (
        Column("customer_id", "string", required=True, unique=True),
        Column("signup_at", "timestamp"),
        Column("region", "string"),
        Column("acquisition_channel", "string"),
        Column("plan", "string"),
        Column("churned_at", "timestamp"),
    ),
    "events": (
        Column("customer_id", "string", required=True),
        Column("ts", "timestamp", required=True),
        Column("event", "string", required=True),
        Column("channel", "string"),
        Column("touchpoint", "string"),
        Column("event_id", "string", unique=True),
    ),
    "orders": (
        Column("order_id", "string", required=True, unique=True),
        Column("customer_id", "string", required=True),
        Column("ts", "timestamp", required=True),
        Column("amount", "float", required=True),
        Column("channel", "string"),
    ),
    "responses": (
        Column("response_id", "string", required=True, unique=True),
        Column("customer_id", "string", required=True),
        Column("ts", "timestamp", required=True),
        Column("survey", "string", required=True),
        Column("score", "int", required=True),
        Column("channel", "string"),
        Column("touchpoint", "string"),
        Column("comment", "string"),
    ),
    "assignments": (
        Column("customer_id", "string", required=True),
        Column("experiment", "string", required=True),
        Column("variant", "string", required=True),
        Column("assigned_at", "timestamp", required=True),
    ),
}

#: Valid score ranges per survey (inclusive).
SCORE_RANGES: dict[str, tuple[int, int]] = {"nps": (0, 10), "csat": (1, 5), "ces": (1, 7)}

#: The exact ibis type of each contract kind in the typed tables. One type per kind, so
#: that a CSV table (timestamps parsed from text) and a Parquet table (``timestamp[ms]``,
#: ``[ns]`` or zone-aware) can be unioned: ibis requires equal schemas.
CONTRACT_DTYPES: dict[str, dt.DataType] = {
    "string": dt.String(),
    "timestamp": dt.Timestamp(scale=6),
    "float": dt.Float64(),
    "int": dt.Int64(),
}

#: Timestamps before this are not believable activity (a 1900-01-01 placeholder, a wrong
#: epoch unit): :func:`cxkit.validate` reports them as errors.
EARLIEST_TS = pd.Timestamp("1970-01-01")
#: How far past the current time a timestamp may lie before it counts as "in the future":
#: a day covers clocks and time zones that differ from this machine's.
FUTURE_TOLERANCE = pd.Timedelta(days=1)
#: Seconds a database connection may take before :func:`load` gives up.
CONNECT_TIMEOUT_S = 10

_TS_COLUMNS = {c.name for cols in SCHEMA.values() for c in cols if c.kind == "timestamp"}
_PANDAS_STRING = pd.StringDtype()


def _contract(table: str) -> dict[str, Column]:
    """Return the contract's columns of ``table`` by name."""
    return {c.name: c for c in SCHEMA[table]}


# --------------------------------------------------------------------------------------
# typing expressions (backend-neutral ibis)
# --------------------------------------------------------------------------------------


def typed_column(col: ir.Column, kind: str) -> ir.Column:
    """Convert one raw column to its contract type; unconvertible values become NULL.

    The result has exactly the type :data:`CONTRACT_DTYPES` gives ``kind``, whatever the
    column's type was (a no-op when it already has it). Timestamps come out naive UTC in
    microseconds (a zone-aware value or a string with an offset is converted to UTC
    first, nanoseconds are cut to microseconds); :func:`cxkit.validate` compares the raw
    column with this one to count the values that could not be converted.

    Parameters
    ----------
    col
        The raw column (any ibis type).
    kind
        Its contract type: ``"string"``, ``"timestamp"``, ``"float"`` or ``"int"``.

    Returns
    -------
    ibis.expr.types.Column
        The converted column expression (not yet named).

    Raises
    ------
    AssertionError
        When ``kind`` is not one of the four contract types.

    Examples
    --------
    >>> t = ibis.memtable({"amount": ["1.5", "abc"]})
    >>> t.select(a=typed_column(t.amount, "float")).to_pandas().a.tolist()
    [1.5, nan]
    """
    if kind not in CONTRACT_DTYPES:
        raise AssertionError(kind)
    target = CONTRACT_DTYPES[kind]
    dtype = col.type()
    if kind == "string":
        return col.cast(target)
    if kind == "timestamp":
        if dtype.is_timestamp():
            if dtype.timezone is not None:
                col = col.cast(dt.Timestamp(timezone="UTC"))
            return col.cast(target)
        if dtype.is_date():
            return col.cast(target)
        if dtype.is_string():
            # Through a zone-aware type so that an offset like "+02:00" is applied.
            return col.try_cast(dt.Timestamp(timezone="UTC")).cast(target)
        return col.try_cast(target)
    if kind == "float":
        if dtype.is_numeric():
            return col.cast(target)
        return col.try_cast(target)
    # kind == "int"
    if dtype.is_numeric():
        # A fractional score is invalid: validate checks the raw value for that.
        return col.cast(target)
    return col.try_cast("float64").cast(target)


def _typed_table(name: str, raw: ir.Table) -> ir.Table:
    """Return ``raw`` with every contract column converted by :func:`typed_column`.

    Any other ``*_id`` column becomes a string too: IDs are strings everywhere, as in
    :func:`normalize_frame`.
    """
    contract = _contract(name)
    cols = []
    for col_name in raw.columns:
        if col_name in contract:
            cols.append(typed_column(raw[col_name], contract[col_name].kind).name(col_name))
        elif col_name.endswith("_id"):
            cols.append(typed_column(raw[col_name], "string").name(col_name))
        else:
            cols.append(raw[col_name])
    return raw.select(cols)


# --------------------------------------------------------------------------------------
# CXData
# --------------------------------------------------------------------------------------


class CXData:
    """The loaded data: one ibis connection and one table expression per present table.

    Build it with :func:`load`. Methods that filter return a new ``CXData``; nothing is
    changed in place.

    Parameters
    ----------
    con
        The ibis backend connection the tables live on.
    raw
        Table name -> ibis table with canonical column names, as loaded.
    source
        A short text naming where the data came from.
    as_of
        The instant the data was cut at (set by :meth:`upto`), or ``None``.
    token
        Identifies the loaded rows for :mod:`cxkit.cache` (set by :func:`load`), or
        ``None`` for data that must never be cached.
    cut_end
        The earliest cut applied so far (part of :attr:`cache_token`).

    Raises
    ------
    UsageError
        When ``raw`` names a table outside the contract.

    Attributes
    ----------
    con
        The ibis backend connection.
    source
        A short text naming where the data came from (shown in report headers).
    raw
        The tables as loaded, with columns renamed to canonical names.
    """

    def __init__(
        self,
        con: BaseBackend,
        raw: Mapping[str, ir.Table],
        *,
        source: str = "",
        as_of: pd.Timestamp | None = None,
        token: str | None = None,
        cut_end: pd.Timestamp | None = None,
    ) -> None:
        unknown = set(raw) - set(ALL_TABLES)
        if unknown:
            raise UsageError(
                f"unknown table(s) {sorted(unknown)}; valid tables: {list(ALL_TABLES)}"
            )
        self.con = con
        self.raw: dict[str, ir.Table] = dict(raw)
        self.source = source
        self._as_of = as_of
        self._token = token
        self._cut_end = cut_end
        self._typed: dict[str, ir.Table] = {k: _typed_table(k, v) for k, v in self.raw.items()}

    # ---- what is there --------------------------------------------------------------

    @property
    def names(self) -> list[str]:
        """Names of the present tables, in contract order."""
        return [t for t in ALL_TABLES if t in self.raw]

    def has(self, table: str, *columns: str) -> bool:
        """Tell whether ``table`` is present and has every one of ``columns``.

        Parameters
        ----------
        table
            A contract table name.
        *columns
            Column names (canonical).

        Returns
        -------
        bool
            True when the table and all the columns are there.
        """
        return table in self.raw and all(c in self.raw[table].columns for c in columns)

    def require(self, table: str, *columns: str, analysis: str | None = None) -> ir.Table:
        """Return the typed table, or raise :class:`NotAvailableError` naming what is missing.

        Parameters
        ----------
        table
            A contract table name.
        *columns
            The columns the caller needs.
        analysis
            The caller's name for the message (``"CLV"``).

        Returns
        -------
        ibis.expr.types.Table
            The typed table (as :meth:`table`).

        Raises
        ------
        NotAvailableError
            When the table or one of ``columns`` is missing; the message names them.
        """
        if table not in self.raw:
            raise NotAvailableError(f"the table '{table}'", analysis=analysis)
        missing = [c for c in columns if c not in self.raw[table].columns]
        if missing:
            cols = ", ".join(f"'{c}'" for c in missing)
            raise NotAvailableError(f"table '{table}' with column(s) {cols}", analysis=analysis)
        return self._typed[table]

    def table(self, name: str) -> ir.Table:
        """Return the typed ibis table expression ``name`` (contract types, cut applied).

        Parameters
        ----------
        name
            A contract table name.

        Returns
        -------
        ibis.expr.types.Table
            The table with contract types (see the module docstring).

        Raises
        ------
        NotAvailableError
            When the data has no such table.
        """
        if name not in self._typed:
            raise NotAvailableError(f"the table '{name}'")
        return self._typed[name]

    def __contains__(self, name: object) -> bool:
        """Tell whether the table ``name`` is present."""
        return name in self.raw

    def __repr__(self) -> str:
        """Show the source and the present tables."""
        return f"CXData(source={self.source!r}, tables={self.names})"

    # ---- pandas edge ------------------------------------------------------------------

    def to_pandas(self, name: str, columns: list[str] | None = None) -> pd.DataFrame:
        """Execute table ``name`` and return it with the contract's pandas dtypes.

        IDs and other contract strings come back as pandas ``string``, timestamps as naive
        ``datetime64[ns]``, amounts as ``float64`` and scores as nullable ``Int64``,
        whatever the backend.

        Parameters
        ----------
        name
            A contract table name.
        columns
            Only these columns; ``None`` for all.

        Returns
        -------
        pandas.DataFrame
            The rows, with the dtypes of :func:`normalize_frame`.

        Raises
        ------
        NotAvailableError
            When the data has no such table.
        """
        expr = self.table(name)
        if columns is not None:
            expr = expr.select(columns)
        return normalize_frame(name, expr.to_pandas())

    # ---- time -----------------------------------------------------------------------

    def max_ts(self) -> pd.Timestamp | None:
        """Return the latest timestamp over the activity tables.

        Returns
        -------
        pandas.Timestamp or None
            The latest ``ts`` of events, orders and responses; without those, the
            latest ``signup_at``; ``None`` when there is no timestamp at all.
        """
        latest = None
        for name in ("events", "orders", "responses"):
            if self.has(name, "ts"):
                value = self._typed[name].ts.max().to_pandas()
                if value is not None and not pd.isna(value):
                    value = pd.Timestamp(value)
                    latest = value if latest is None else max(latest, value)
        if latest is None and self.has("customers", "signup_at"):
            value = self._typed["customers"].signup_at.max().to_pandas()
            if value is not None and not pd.isna(value):
                latest = pd.Timestamp(value)
        return latest

    def min_ts(self) -> pd.Timestamp | None:
        """Return the earliest timestamp over the activity tables.

        Returns
        -------
        pandas.Timestamp or None
            The earliest ``ts`` of events, orders and responses, or ``None``.
        """
        earliest = None
        for name in ("events", "orders", "responses"):
            if self.has(name, "ts"):
                value = self._typed[name].ts.min().to_pandas()
                if value is not None and not pd.isna(value):
                    value = pd.Timestamp(value)
                    earliest = value if earliest is None else min(earliest, value)
        return earliest

    def upto(self, as_of: str | pd.Timestamp | dt_.date | None) -> CXData:
        """Return a new ``CXData`` with nothing after ``as_of`` (see :func:`resolve_as_of`).

        Activity rows (events, orders, responses) with ``ts > as_of`` are dropped, and
        customers who signed up after ``as_of``. ``churned_at`` after ``as_of`` is set to
        NULL: at ``as_of`` that churn had not happened yet.

        Parameters
        ----------
        as_of
            The cut; a date includes its whole day, ``None`` the data's latest timestamp.

        Returns
        -------
        CXData
            The cut data; its :attr:`as_of` is the resolved instant.

        Raises
        ------
        UsageError
            As :func:`resolve_as_of`.
        """
        end = resolve_as_of(self, as_of)
        cutoff = end
        raw: dict[str, ir.Table] = {}
        for name, tbl in self.raw.items():
            if name in ("events", "orders", "responses") and "ts" in tbl.columns:
                tbl = tbl.filter(typed_column(tbl.ts, "timestamp") <= end)
            elif name == "assignments" and "assigned_at" in tbl.columns:
                tbl = tbl.filter(typed_column(tbl.assigned_at, "timestamp") <= end)
            elif name == "customers":
                if "signup_at" in tbl.columns:
                    signup = typed_column(tbl.signup_at, "timestamp")
                    tbl = tbl.filter(signup.isnull() | (signup <= end))
                if "churned_at" in tbl.columns:
                    churned = typed_column(tbl.churned_at, "timestamp")
                    tbl = tbl.mutate(
                        churned_at=ibis.cases((churned <= end, churned), else_=ibis.null()).cast(
                            CONTRACT_DTYPES["timestamp"]
                        )
                    )
            raw[name] = tbl
        cut_end = end if self._cut_end is None else min(end, self._cut_end)
        return CXData(
            self.con, raw, source=self.source, as_of=cutoff, token=self._token, cut_end=cut_end
        )

    @property
    def as_of(self) -> pd.Timestamp | None:
        """The ``as_of`` this data was cut at by :meth:`upto`, or ``None``."""
        return self._as_of

    def between(
        self,
        start: str | pd.Timestamp | dt_.date | None = None,
        end: str | pd.Timestamp | dt_.date | None = None,
    ) -> CXData:
        """Return a new ``CXData`` with activity (events, orders, responses) in ``[start, end]``.

        Parameters
        ----------
        start
            The first instant kept (a date: from its midnight); ``None`` keeps the start.
        end
            The last instant kept, as in :meth:`upto` (a date includes its whole day);
            ``None`` keeps everything up to the data's own cut.

        Returns
        -------
        CXData
            The window. Customers are cut as :meth:`upto` cuts them; ``start`` does not
            drop customers, so a window's customers are those known at its end.

        Raises
        ------
        UsageError
            When ``end`` cannot be parsed (see :func:`parse_as_of`).
        """
        d = self.upto(end) if end is not None else self
        if start is None:
            return d
        lo = pd.Timestamp(start)
        if lo.tzinfo is not None:
            lo = lo.tz_convert("UTC").tz_localize(None)
        raw: dict[str, ir.Table] = {}
        for name, tbl in d.raw.items():
            if name in ("events", "orders", "responses") and "ts" in tbl.columns:
                tbl = tbl.filter(typed_column(tbl.ts, "timestamp") >= lo.to_pydatetime())
            raw[name] = tbl
        token = None if d._token is None else f"{d._token}|from={lo.isoformat()}"
        return CXData(d.con, raw, source=d.source, as_of=d.as_of, token=token, cut_end=d._cut_end)

    def replace(self, **tables: ir.Table) -> CXData:
        """Return a new ``CXData`` with some tables replaced (e.g. filtered) and the rest kept.

        Parameters
        ----------
        **tables
            ``name=table`` for each table to replace or add, as raw or typed ibis tables
            with contract column names.

        Returns
        -------
        CXData
            The new data. It keeps :attr:`as_of` but has no :attr:`cache_token`: its
            rows are no longer the loaded ones, so nothing computed from it is cached.

        Raises
        ------
        UsageError
            When a name is not a contract table.

        Examples
        --------
        >>> import pandas as pd
        >>> d = load({"orders": pd.DataFrame({"customer_id": ["a", "b"],
        ...           "ts": pd.to_datetime(["2024-01-01", "2024-01-02"]), "amount": [1.0, 2.0]})})
        >>> o = d.table("orders")
        >>> d.replace(orders=o.filter(o.amount > 1)).table("orders").count().to_pandas()
        1
        """
        unknown = set(tables) - set(ALL_TABLES)
        if unknown:
            raise UsageError(
                f"unknown table(s) {sorted(unknown)}; valid tables: {list(ALL_TABLES)}"
            )
        raw = {**self.raw, **tables}
        return CXData(self.con, raw, source=self.source, as_of=self.as_of, cut_end=self._cut_end)

    # ---- identity ---------------------------------------------------------------------

    @property
    def cache_token(self) -> str | None:
        """Identifies these rows for :mod:`cxkit.cache` within one report run, or None.

        Set by :func:`load` for folders and connection URLs (source, mapping, file sizes
        and times); :meth:`upto` keeps it and records the cut. Data built any other way
        (DataFrames, live connections, filtered copies) has none and is never cached.
        """
        if self._token is None:
            return None
        cut = "" if self._cut_end is None else f"|upto={self._cut_end.isoformat()}"
        return self._token + cut

    def fingerprint(self) -> dict[str, Any]:
        """Identify the data cheaply: per table rows, columns, min/max ts and a hash.

        The hash combines row counts, distinct customers and timestamp/amount sums, all
        computed in the engine, so it changes when the data changes in any usual way.

        Returns
        -------
        dict
            ``{"source": ..., "tables": {name: {"rows", "customers", "min_ts", "max_ts",
            "amount_sum", "score_sum", "columns"}}, "hash": ...}`` with JSON-able values
            (a table's entry has the aggregates its columns allow).
        """
        out: dict[str, Any] = {"source": self.source, "tables": {}}
        digest = hashlib.sha256()
        for name in self.names:
            t = self._typed[name]
            aggs: dict[str, ir.Scalar] = {"rows": t.count()}
            if "customer_id" in t.columns:
                aggs["customers"] = t.customer_id.nunique()
            if "ts" in t.columns:
                aggs["min_ts"] = t.ts.min()
                aggs["max_ts"] = t.ts.max()
            if "amount" in t.columns:
                aggs["amount_sum"] = t.amount.sum()
            if "score" in t.columns:
                aggs["score_sum"] = t.score.sum()
            row = t.aggregate(**aggs).to_pandas().iloc[0].to_dict()
            info = {k: _jsonable(v) for k, v in row.items()}
            info["columns"] = list(t.columns)
            out["tables"][name] = info
            digest.update(json.dumps({name: info}, sort_keys=True, default=str).encode())
        out["hash"] = digest.hexdigest()[:16]
        return out


def require_columns(
    table: ir.Table | pd.DataFrame, columns: Sequence[str], *, name: str, fix: str
) -> None:
    """Raise :class:`DataError` naming ``columns`` that ``table`` (ibis or pandas) lacks.

    For functions that also accept a bare table or frame instead of a :class:`CXData`.

    Parameters
    ----------
    table
        The ibis table or pandas frame.
    columns
        The columns it must have.
    name
        The table's name, for the message.
    fix
        What the user should do, for the message.

    Raises
    ------
    DataError
        When a column is missing; it names the table, the columns and the fix.

    Examples
    --------
    >>> require_columns(pd.DataFrame({"ts": []}), ["customer_id", "ts"], name="orders",
    ...                 fix="add customer_id")
    Traceback (most recent call last):
    ...
    cxkit.errors.DataError: orders: missing column(s) ['customer_id']. Fix: add customer_id
    """
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise DataError(f"missing column(s) {missing}", table=name, fix=fix)


def _jsonable(v: object) -> object:
    """Return ``v`` as a JSON value (missing values as None, timestamps as ISO text)."""
    if v is None or (isinstance(v, float) and np.isnan(v)):
        return None
    if isinstance(v, pd.Timestamp):
        return v.isoformat()
    if isinstance(v, np.integer):
        return int(v)
    if isinstance(v, np.floating):
        return round(float(v), 6)
    if v is pd.NaT:
        return None
    return v


def end_of_day(ts: pd.Timestamp) -> pd.Timestamp:
    """Return the last instant ``ts`` stands for: a date (midnight) means its whole day.

    Parameters
    ----------
    ts
        A naive UTC timestamp.

    Returns
    -------
    pandas.Timestamp
        ``ts`` itself when it has a time of day, else the last microsecond of its day.

    Examples
    --------
    >>> end_of_day(pd.Timestamp("2024-06-30"))
    Timestamp('2024-06-30 23:59:59.999999')
    >>> end_of_day(pd.Timestamp("2024-06-30 12:00"))
    Timestamp('2024-06-30 12:00:00')
    """
    if ts == ts.normalize():
        return ts + pd.Timedelta(days=1) - pd.Timedelta(microseconds=1)
    return ts


def parse_as_of(as_of: str | pd.Timestamp | dt_.date | None) -> pd.Timestamp | None:
    """Parse an ``as_of`` value into a naive UTC timestamp (``None`` stays ``None``).

    Parameters
    ----------
    as_of
        An ISO date or date-time, a timestamp, a date, or ``None``/``""``/``"none"``.

    Returns
    -------
    pandas.Timestamp or None
        The instant, converted to UTC and made naive when it carried a time zone; a
        date-only value is rounded to the end of its day (see :func:`end_of_day`).

    Raises
    ------
    UsageError
        When ``as_of`` cannot be parsed.
    """
    if as_of is None or (isinstance(as_of, str) and as_of.strip().lower() in ("", "none")):
        return None
    try:
        ts = pd.Timestamp(as_of)
    except (ValueError, TypeError) as err:
        raise UsageError(f"as_of must be an ISO date like '2024-06-30', got {as_of!r}") from err
    if ts is pd.NaT:
        raise UsageError(f"as_of must be an ISO date like '2024-06-30', got {as_of!r}")
    if ts.tzinfo is not None:
        ts = ts.tz_convert("UTC").tz_localize(None)
    return end_of_day(ts)


def resolve_as_of(data: CXData, as_of: str | pd.Timestamp | dt_.date | None) -> pd.Timestamp:
    """Resolve ``as_of`` to the one meaning it has in cxkit: the last instant an analysis sees.

    Every analysis sees the rows with ``ts <= resolve_as_of(data, as_of)`` and measures
    ages, recencies and horizons from that instant.

    * A date (``"2024-06-30"``) includes its whole day: it resolves to
      ``2024-06-30 23:59:59.999999``.
    * A date-time is taken as it is; one with a time zone is converted to UTC.
    * ``None`` means the cut the data was made at (:meth:`CXData.upto`), else the
      data's latest timestamp (the end of that day when the data holds dates only).
      That default never follows rows dated in the future (after
      :func:`latest_plausible_ts`: now plus one day): a few mistyped dates such as 2099
      would move every analysis to a day that has not come. Such data raises
      :class:`DataError`; give ``as_of`` explicitly to analyse it anyway (the later rows
      are then cut as usual, and :func:`cxkit.validate` reports them as a warning).

    Parameters
    ----------
    data
        The data (for the default).
    as_of
        The value given by the caller, or ``None``.

    Returns
    -------
    pandas.Timestamp
        A naive UTC timestamp.

    Raises
    ------
    UsageError
        When ``as_of`` cannot be parsed, or when the data has no timestamps to default to.
    DataError
        When ``as_of`` is ``None`` and the data's latest timestamp is in the future; the
        message names the table, column, rows and examples.
    """
    ts = parse_as_of(as_of)
    if ts is not None:
        return ts
    if data.as_of is not None:
        return data.as_of
    latest = data.max_ts()
    if latest is None:
        raise UsageError("as_of was not given and the data has no timestamps to default to")
    limit = latest_plausible_ts()
    if latest > limit:
        raise _future_error(data, limit)
    return end_of_day(latest)


def latest_plausible_ts(now: pd.Timestamp | None = None) -> pd.Timestamp:
    """Return the latest believable timestamp: ``now`` plus :data:`FUTURE_TOLERANCE`.

    Parameters
    ----------
    now
        The current time (naive UTC); ``None`` reads the clock.

    Returns
    -------
    pandas.Timestamp
        A naive UTC timestamp; data dated after it is "in the future".

    Examples
    --------
    >>> latest_plausible_ts(pd.Timestamp("2024-06-30 12:00"))
    Timestamp('2024-07-01 12:00:00')
    """
    if now is None:
        now = pd.Timestamp.now(tz="UTC").tz_localize(None).floor("s")
    return now + FUTURE_TOLERANCE


def _future_error(data: CXData, limit: pd.Timestamp) -> DataError:
    """Describe the rows dated after ``limit`` that the default ``as_of`` would follow."""
    columns = [(n, "ts") for n in ("events", "orders", "responses") if data.has(n, "ts")]
    if not columns and data.has("customers", "signup_at"):
        columns = [("customers", "signup_at")]
    found: list[tuple[str, str, int]] = []
    examples: list[str] = []
    for name, col in columns:
        t = data.table(name)
        late = t.filter(t[col] > limit)
        n = int(late.count().to_pandas())
        if n:
            found.append((name, col, n))
            top = late.order_by(ibis.desc(col)).select(col).limit(5).to_pandas()[col]
            examples += [str(pd.Timestamp(v)) for v in top]
    today = f"{limit - FUTURE_TOLERANCE:%Y-%m-%d %H:%M} UTC"
    message = (
        f"rows are dated after today ({today}), and the default as_of (the data's latest "
        "timestamp) would follow them into the future"
    )
    if len(found) > 1:
        message += " (" + ", ".join(f"{t}.{c}: {n:,} rows" for t, c, n in found) + ")"
    return DataError(
        message,
        table=found[0][0] if len(found) == 1 else None,
        column=found[0][1] if len(found) == 1 else None,
        rows=sum(n for _, _, n in found),
        examples=examples[:5],
        fix="repair or drop the rows dated in the future ('cxkit validate' lists them), or "
        "give as_of explicitly (e.g. as_of='2024-12-31'): rows after it are then ignored",
    )


def format_as_of(ts: pd.Timestamp) -> str:
    """Show a resolved ``as_of``: its date when it is a whole day, else date and time.

    Parameters
    ----------
    ts
        A value returned by :func:`resolve_as_of`.

    Returns
    -------
    str
        ``"2024-06-30"`` or ``"2024-06-30 18:23:11"``; :func:`parse_as_of` reads it back
        to the same instant.

    Examples
    --------
    >>> format_as_of(pd.Timestamp("2024-06-30 23:59:59.999999"))
    '2024-06-30'
    >>> format_as_of(pd.Timestamp("2024-06-30 18:23:11"))
    '2024-06-30 18:23:11'
    """
    if ts == end_of_day(ts.normalize()):
        return ts.strftime("%Y-%m-%d")
    return ts.isoformat(sep=" ")


def normalize_frame(name: str, df: pd.DataFrame) -> pd.DataFrame:
    """Give a pandas frame of table ``name`` the contract's pandas dtypes.

    Contract strings and any other ``*_id`` column become pandas ``string``,
    timestamps naive ``datetime64[ns]`` (zone-aware ones converted to UTC), amounts
    ``float64`` and scores nullable ``Int64``; other columns are kept as they are.

    Parameters
    ----------
    name
        The contract table the frame holds (an unknown name converts ``*_id`` only).
    df
        The frame; it is not changed.

    Returns
    -------
    pandas.DataFrame
        A converted copy.

    Examples
    --------
    >>> out = normalize_frame("orders", pd.DataFrame({"customer_id": [7], "amount": [1]}))
    >>> [str(t) for t in out.dtypes], out.customer_id.iloc[0]
    (['string', 'float64'], '7')
    """
    contract = _contract(name) if name in SCHEMA else {}
    out = df.copy()
    for col in out.columns:
        spec = contract.get(col)
        kind = spec.kind if spec else None
        if kind is None and col.endswith("_id"):
            kind = "string"
        if kind == "string":
            out[col] = out[col].astype(_PANDAS_STRING)
        elif kind == "timestamp":
            out[col] = _to_naive_ns(out[col])
        elif kind == "float":
            out[col] = out[col].astype("float64")
        elif kind == "int":
            out[col] = out[col].astype("Int64")
    return out


def _to_naive_ns(s: pd.Series) -> pd.Series:
    """Return ``s`` as naive UTC ``datetime64[ns]``."""
    s = pd.to_datetime(s, utc=False)
    if getattr(s.dt, "tz", None) is not None:
        s = s.dt.tz_convert("UTC").dt.tz_localize(None)
    return s.astype("datetime64[ns]")


# --------------------------------------------------------------------------------------
# loading
# --------------------------------------------------------------------------------------


def load(
    source: str
    | Path
    | BaseBackend
    | SparkSession
    | Mapping[str, pd.DataFrame | None]
    | Mapping[str, Any],
    mapping: Mapping[str, Mapping[str, str]] | None = None,
    *,
    tables: Mapping[str, str] | None = None,
) -> CXData:
    """Load customer data from a folder, a database URL, a live connection or DataFrames.

    Parameters
    ----------
    source
        One of:

        * a folder (``str`` or ``Path``) holding ``customers``, ``events``, ``orders``,
          ``responses`` as ``.parquet`` or ``.csv`` files (files named ``_*`` are ignored);
        * an ibis connection URL such as ``"duckdb:///path/file.db"`` or
          ``"postgresql://user@host/db"``;
        * a live ibis backend connection;
        * a Spark session (uses ibis's pyspark backend);
        * a source spec (:mod:`cxkit.sources`), as reports.yml's ``data:`` section holds
          it: ``{"url": ..., "tables": {...}}`` for a database, or
          ``{"spark": {"master": ..., "conf": {...}}, "tables": {...}}`` to start Spark
          and read each table from a Parquet/CSV path or a catalog table;
        * a ``dict`` of table name to pandas DataFrame.
    mapping
        Renames a user's columns onto the contract, per table:
        ``{"orders": {"order_ts": "ts"}}`` (user name -> canonical name).
    tables
        For database sources: contract table name -> the table's name in the database,
        e.g. ``{"orders": "sales"}``. By default the contract names are looked up.

    Returns
    -------
    CXData
        The data; folders and URLs get a :attr:`CXData.cache_token`.

    Raises
    ------
    DataError
        When the source does not exist (a missing folder or DuckDB/SQLite file is never
        created), cannot be read (a truncated Parquet file) or reached (a database that
        does not answer within :data:`CONNECT_TIMEOUT_S` seconds), holds no usable table,
        or a mapping names a column that is not there.
    UsageError
        When ``source`` is of an unsupported kind (a URL scheme ibis does not know), or
        ``mapping``/``tables`` name a table outside the contract.

    Examples
    --------
    >>> import pandas as pd
    >>> orders = pd.DataFrame({"order_id": ["1"], "customer_id": ["007"],
    ...                        "ts": ["2024-01-02"], "amount": [9.5]})
    >>> data = load({"orders": orders})
    >>> data.names
    ['orders']
    >>> data.to_pandas("orders").customer_id.iloc[0]
    '007'
    """
    mapping = {k: dict(v) for k, v in (mapping or {}).items()}
    bad = set(mapping) - set(ALL_TABLES)
    if bad:
        raise UsageError(f"mapping names unknown table(s) {sorted(bad)}; valid: {list(ALL_TABLES)}")
    spec = None
    if sources.is_source_spec(source):
        spec = sources.parse_source_spec(source, valid_tables=ALL_TABLES)  # type: ignore[arg-type]
        tables = {**spec.tables, **(tables or {})}
        source = spec.url if spec.url is not None else source
    if spec is not None and spec.spark is not None:
        session = sources.spark_session(spec.spark)
        con = ibis.pyspark.connect(session)
        label = spec.label
        raw = _load_connection(con, sources.spark_tables(session, tables), label=label)
    elif isinstance(source, Mapping):
        con, raw, label = _load_frames(source)
    elif isinstance(source, str | Path) and "://" not in str(source):
        con, raw, label = _load_folder(Path(source), mapping)
    elif isinstance(source, str):
        con = _connect(source)
        _set_utc(con)
        label = sources.redact_url(source)
        raw = _load_connection(con, tables, label=label)
    elif hasattr(source, "sparkContext"):
        con = ibis.pyspark.connect(source)
        raw, label = _load_connection(con, tables), "spark"
    elif hasattr(source, "list_tables"):
        con = source
        raw, label = _load_connection(con, tables), f"{getattr(con, 'name', 'ibis')} connection"
    else:
        raise UsageError(
            f"cannot load from {type(source).__name__}; give a folder path, a connection URL, "
            "an ibis connection, a Spark session or a dict of DataFrames"
        )
    raw = {name: _apply_mapping(name, t, mapping.get(name, {})) for name, t in raw.items()}
    if not raw:
        raise DataError(
            "no usable table found",
            table=label,
            fix=f"provide at least one of {', '.join(TABLES)} (as .parquet or .csv files)",
        )
    if spec is not None and spec.spark is not None:
        token = _spec_token(spec, mapping)
    elif isinstance(source, str | Path):
        token = _source_token(source, mapping, tables)
    else:
        token = None
    settings = scale.current_settings()
    if settings.scale and settings.strict:
        scale.guard_collects(con, settings)
    return CXData(con, raw, source=label, token=token)


def _source_token(
    source: str | Path, mapping: Mapping[str, Mapping[str, str]], tables: Mapping[str, str] | None
) -> str:
    """Identify a folder or URL source.

    The token covers its path or URL, the mapping and, for a folder, every file's size
    and modification time.
    """
    files: list[tuple[str, int, int]] = []
    if "://" not in str(source):
        folder = Path(source).resolve()
        ident = str(folder)
        for found in _find_files(folder).values():
            parts = sorted(found.glob("*.parquet")) if found.is_dir() else [found]
            for path in parts:
                st = path.stat()
                files.append((str(path.relative_to(folder)), st.st_size, st.st_mtime_ns))
    else:
        ident = str(source)
    text = json.dumps(
        {"source": ident, "mapping": mapping, "tables": dict(tables or {}), "files": files},
        sort_keys=True,
        default=str,
    )
    return hashlib.sha256(text.encode()).hexdigest()[:24]


def _spec_token(spec: sources.SourceSpec, mapping: Mapping[str, Mapping[str, str]]) -> str:
    """Identify a Spark source spec: its settings, table locations and local files."""
    text = json.dumps(
        {"spec": sources.spec_identity(spec), "mapping": mapping}, sort_keys=True, default=str
    )
    return hashlib.sha256(text.encode()).hexdigest()[:24]


#: URL schemes whose "host and path" is a database file that connecting would create.
_FILE_SCHEMES = ("duckdb", "sqlite")
#: URL schemes that take libpq's ``connect_timeout`` (seconds).
_TIMEOUT_SCHEMES = ("postgres", "postgresql")


def _connect(url: str) -> BaseBackend:
    """Open an ibis connection URL, turning every failure into a plain cxkit error.

    A DuckDB or SQLite file must exist (connecting would create an empty one), and a
    PostgreSQL server gets :data:`CONNECT_TIMEOUT_S` seconds unless the URL sets
    ``connect_timeout`` itself.
    """
    label = sources.redact_url(url)
    parsed = urllib.parse.urlparse(url)
    scheme = parsed.scheme.lower()
    backend_name = scheme.replace("postgresql", "postgres")
    examples = "duckdb:///path/to/file.duckdb or postgresql://user@host:5432/db"
    if scheme == "pyspark":
        raise UsageError(
            f"{label!r}: Spark is not given as a URL; give the data as a section with "
            "spark (master, conf) and tables (Parquet paths or catalog tables), e.g. "
            "data: {spark: {master: 'local[2]'}, tables: {orders: /lake/orders}} in "
            "the reports file, or pass a SparkSession to cxkit.load"
        )
    if scheme != "file":
        try:
            backend = getattr(ibis, backend_name, None) if backend_name.isidentifier() else None
        except ImportError:
            raise UsageError(
                f"the ibis backend for {scheme}:// URLs is not installed; install it with "
                f"pip install 'ibis-framework[{backend_name}]'"
            ) from None
        if not callable(getattr(backend, "connect", None)):
            raise UsageError(
                f"unknown kind of data source {label!r}: ibis has no '{scheme}' backend; "
                f"give a folder of Parquet/CSV files or a connection URL such as {examples}"
            )
    if scheme in _FILE_SCHEMES:
        parts = [p for p in (parsed.netloc, parsed.path[bool(parsed.netloc) :]) if p]
        if parts and parts != [":memory:"] and not parts[0].startswith(("md:", "motherduck:")):
            path = Path(*parts).absolute()
            if not path.is_file():
                raise DataError(
                    f"the {scheme} database file {str(path)!r} does not exist",
                    table=label,
                    fix=f"check the path ({scheme}:///absolute/path has three slashes, "
                    f"{scheme}://relative/path two); cxkit never creates an empty database",
                )
    kwargs: dict[str, Any] = {}
    query = dict(urllib.parse.parse_qsl(parsed.query))
    if scheme in _TIMEOUT_SCHEMES and "connect_timeout" not in query:
        kwargs["connect_timeout"] = CONNECT_TIMEOUT_S
    try:
        return ibis.connect(url, **kwargs)
    except Exception as err:
        reason = " ".join(str(err).split()) or type(err).__name__
        raise DataError(
            f"could not connect to the data source: {reason}",
            table=label,
            fix="check that the database is running and reachable from this machine, and "
            "the host, port, user, password and database name in the URL",
        ) from err


def _set_utc(con: BaseBackend) -> None:
    """Make the session's time zone UTC where the backend has one."""
    name = getattr(con, "name", "")
    try:
        if name == "duckdb":
            con.raw_sql("SET TimeZone = 'UTC'")
        elif name == "postgres":
            con.raw_sql("SET TIME ZONE 'UTC'")
    except Exception:
        pass


#: Environment variables a report run sets for its kernels: the memory DuckDB may use
#: (``"1200MB"``, its share of the run's budget) and the folder in which each connection
#: spills beyond that into a folder of its own.
DUCKDB_MEMORY_ENV = "CXKIT_DUCKDB_MEMORY_LIMIT"
DUCKDB_TEMP_ENV = "CXKIT_DUCKDB_TEMP_DIR"


def _new_duckdb() -> BaseBackend:
    """Return a new in-memory DuckDB connection in UTC (memory-capped in a report run)."""
    con = ibis.duckdb.connect()
    _set_utc(con)
    limit = os.environ.get(DUCKDB_MEMORY_ENV, "")
    if limit:
        mb = int(limit.removesuffix("MB"))  # written by the report run: digits and "MB"
        con.raw_sql(f"SET memory_limit = '{mb}MB'")
        temp = os.environ.get(DUCKDB_TEMP_ENV, "")
        if temp:
            # A folder of this connection's own: DuckDB names its spill files by block, so
            # two kernels (or connections) spilling into one folder overwrite each other's.
            Path(temp).mkdir(parents=True, exist_ok=True)
            own = tempfile.mkdtemp(prefix=f"duckdb-{os.getpid()}-", dir=temp)
            con.raw_sql("SET temp_directory = " + "'" + own.replace("'", "''") + "'")
    return con


def _load_frames(
    frames: Mapping[str, pd.DataFrame | None],
) -> tuple[BaseBackend, dict[str, ir.Table], str]:
    """Put pandas frames into a new DuckDB connection."""
    bad = set(frames) - set(ALL_TABLES)
    if bad:
        raise UsageError(f"unknown table(s) {sorted(bad)}; valid tables: {list(ALL_TABLES)}")
    con = _new_duckdb()
    raw = {}
    for name, df in frames.items():
        if df is None:
            continue
        raw[name] = con.create_table(f"cx_{name}", pd.DataFrame(df), overwrite=True)
    return con, raw, "in-memory DataFrames"


def _find_files(folder: Path) -> dict[str, Path]:
    """Find each table's file (or folder of Parquet parts) in ``folder``."""
    found: dict[str, Path] = {}
    for name in ALL_TABLES:
        for ext in (".parquet", ".csv", ".csv.gz"):
            path = folder / f"{name}{ext}"
            if path.exists():
                found[name] = path
                break
        else:
            part_dir = folder / name
            if part_dir.is_dir() and any(part_dir.glob("*.parquet")):
                found[name] = part_dir
    return found


def _load_folder(
    folder: Path, mapping: Mapping[str, Mapping[str, str]]
) -> tuple[BaseBackend, dict[str, ir.Table], str]:
    """Read a folder's table files into a new DuckDB connection."""
    if not folder.exists():
        raise DataError(
            "the data folder does not exist",
            table=str(folder),
            fix="check the path, or run 'cxkit synth --out DIR' to make demo data",
        )
    if not folder.is_dir():
        raise DataError(
            "expected a folder of table files",
            table=str(folder),
            fix="give the folder that holds customers/events/orders/responses files",
        )
    con = _new_duckdb()
    raw: dict[str, ir.Table] = {}
    for name, path in _find_files(folder).items():
        if path.is_dir():
            raw[name] = _read_parquet(con, name, path, str(path / "*.parquet"))
        elif path.suffix == ".parquet":
            raw[name] = _read_parquet(con, name, path, str(path))
        else:
            raw[name] = _read_csv(con, name, path, mapping.get(name, {}))
    return con, raw, str(folder)


def _read_parquet(con: BaseBackend, name: str, path: Path, pattern: str) -> ir.Table:
    """Read a Parquet file (or a folder of parts); a damaged one is a :class:`DataError`.

    DuckDB reads the footer (schema and row groups) here, so a truncated or non-Parquet
    file fails now, with its name, instead of in the middle of an analysis.
    """
    try:
        return con.read_parquet(pattern, table_name=f"cx_{name}")
    except Exception as err:
        reason = " ".join(str(err).split("LINE 1:")[0].split())
        raise DataError(
            f"could not read the Parquet file {str(path)!r}: {reason}",
            table=name,
            fix=f"the file looks truncated or is not Parquet: write {path.name} again "
            "(e.g. with pandas.DataFrame.to_parquet) or remove it",
        ) from err


def _read_csv(con: BaseBackend, name: str, path: Path, mapping: Mapping[str, str]) -> ir.Table:
    """Read a CSV with contract columns as text (so "00042" stays "00042").

    Conversion to contract types happens in the typed view, where bad values become
    NULL and are reported by validation instead of failing the read.
    """
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rt", newline="", encoding="utf-8", errors="replace") as fh:
            header = next(csv.reader(fh), [])
    except (OSError, EOFError, csv.Error) as err:
        raise DataError(
            f"could not read the CSV file {str(path)!r}: {err}",
            table=name,
            fix=f"the file looks damaged (a truncated or mislabelled .gz?): write {path.name} "
            "again or remove it",
        ) from err
    if not header:
        raise DataError("the CSV file is empty (no header line)", table=name, fix=f"check {path}")
    contract = _contract(name)
    inverse = {user: canon for user, canon in mapping.items()}
    as_text = {
        col: "VARCHAR"
        for col in header
        if inverse.get(col, col) in contract or inverse.get(col, col).endswith("_id")
    }
    try:
        tbl = con.read_csv(str(path), table_name=f"cx_{name}_csv", types=as_text)
        # Materialise once: re-parsing the CSV for every query would be slow.
        return con.create_table(f"cx_{name}", tbl, overwrite=True)
    except Exception as err:
        raise DataError(
            f"could not read the CSV file: {str(err).splitlines()[0]}",
            table=name,
            fix=f"check that {path.name} is a comma-separated file with a header line",
        ) from err


def _load_connection(
    con: BaseBackend, tables: Mapping[str, str] | None, *, label: str = "the connection"
) -> dict[str, ir.Table]:
    """Find the contract's tables on a database connection."""
    tables = dict(tables or {})
    bad = set(tables) - set(ALL_TABLES)
    if bad:
        raise UsageError(f"tables names unknown table(s) {sorted(bad)}; valid: {list(ALL_TABLES)}")
    try:
        existing = set(con.list_tables())
    except Exception as err:
        raise DataError(
            f"could not list the tables: {' '.join(str(err).split())}",
            table=label,
            fix="check that the user in the URL may read the database's tables",
        ) from err
    raw = {}
    for name in ALL_TABLES:
        db_name = tables.get(name, name)
        if db_name in existing:
            raw[name] = con.table(db_name)
        elif name in tables:
            raise DataError(
                f"table '{db_name}' was named for {name} but does not exist",
                table=name,
                fix=f"existing tables: {sorted(existing)[:10]}",
            )
    return raw


def _apply_mapping(name: str, tbl: ir.Table, rename: Mapping[str, str]) -> ir.Table:
    """Rename the user's columns to the canonical names (``rename``: user -> canonical)."""
    if not rename:
        return tbl
    missing = [user for user in rename if user not in tbl.columns]
    if missing:
        raise DataError(
            f"the mapping names column(s) {missing} that the table does not have",
            table=name,
            fix=f"the table's columns are {list(tbl.columns)}",
        )
    canon = set(rename.values())
    clash = [c for c in tbl.columns if c in canon and c not in rename]
    if clash:
        # The table already has a column with the target name: drop it, the mapped one wins.
        tbl = tbl.drop(*clash)
    return tbl.rename({canonical: user for user, canonical in rename.items()})
