"""Validation of loaded data against the contract, as engine aggregates.

:func:`validate` runs every rule and returns every problem (not just the first), each
naming the table, the column, how many rows, up to five examples and how to fix it.
The checks are ibis expressions — one aggregate per table plus a few anti-joins — so
they run unchanged on DuckDB, Spark or a warehouse.

Errors (the data cannot be analysed as it is): missing required columns, unparseable or
null timestamps, timestamps before 1970-01-01, timestamps in the future (see below),
non-numeric / negative / non-finite amounts, duplicate IDs, scores out of range, orphan
customer IDs, empty tables, no usable table.
Warnings: exact duplicate rows, activity after ``as_of``, customers with no activity, a
``churned_at`` in the future (a scheduled cancellation counts once it happens), a
customer assigned more than once in one experiment (the optional ``assignments``
table; its missing experiment or variant labels and orphan customer IDs are errors).

A timestamp is "in the future" when it is later than the current time plus one day
(:func:`cxkit.data.latest_plausible_ts`; the day allows for time zones). Without an
explicit ``as_of`` such rows are an error, because the default ``as_of`` (the latest
timestamp) would follow them; with an explicit ``as_of`` no later than today they are a
warning, since every analysis ignores rows after ``as_of``.
"""

from __future__ import annotations

from collections.abc import Iterable

import ibis
import ibis.expr.types as ir
import pandas as pd

from cxkit.cache import run_cached
from cxkit.data import (
    EARLIEST_TS,
    FUTURE_TOLERANCE,
    SCHEMA,
    SCORE_RANGES,
    TABLES,
    CXData,
    end_of_day,
    latest_plausible_ts,
    resolve_as_of,
    typed_column,
)
from cxkit.errors import Problem

__all__ = ["format_problems", "has_errors", "validate"]

_ACTIVITY = ("events", "orders", "responses")


@run_cached("validate", cut_at=None)
def validate(data: CXData, *, as_of: str | pd.Timestamp | None = None) -> list[Problem]:
    """Check ``data`` against the data contract and return every problem found.

    Parameters
    ----------
    data
        Loaded data (:func:`cxkit.load`).
    as_of
        When given, activity after it is reported as a warning, and so are rows dated
        in the future when ``as_of`` itself is not (they are cut); without it, rows
        dated in the future are an error (the default ``as_of`` would follow them).

    Returns
    -------
    list of Problem
        Errors first, then warnings; empty when the data is clean.

    Examples
    --------
    >>> import pandas as pd, cxkit
    >>> orders = pd.DataFrame({"order_id": ["1", "1"], "customer_id": ["a", "b"],
    ...                        "ts": ["2024-01-01", "2024-01-02"], "amount": [5.0, -1.0]})
    >>> [p.rule for p in validate(cxkit.load({"orders": orders}))]
    ['negative_amount', 'duplicate_id']
    """
    problems: list[Problem] = []
    if not data.names:
        problems.append(
            Problem(
                "error",
                "no_usable_table",
                data.source or "data",
                None,
                0,
                "the dataset has no usable table",
                fix=f"provide at least one of {', '.join(TABLES)}",
            )
        )
        return problems
    cutoff = None
    if as_of is not None:
        cutoff = end_of_day(resolve_as_of(data, as_of))
    limit = latest_plausible_ts()
    for name in data.names:
        problems.extend(_check_table(data, name, cutoff, limit))
    problems.extend(_check_orphans(data))
    problems.extend(_check_inactive_customers(data))
    problems.extend(_check_assignments(data))
    order = {"error": 0, "warning": 1}
    return sorted(problems, key=lambda p: order.get(p.severity, 2))


def has_errors(problems: Iterable[Problem]) -> bool:
    """Tell whether any problem is an error.

    Parameters
    ----------
    problems
        As returned by :func:`validate`.

    Returns
    -------
    bool
        True when at least one has severity ``"error"``.
    """
    return any(p.severity == "error" for p in problems)


def format_problems(problems: list[Problem], *, source: str = "") -> str:
    """Write a plain-text report of ``problems`` for the command line.

    Parameters
    ----------
    problems
        As returned by :func:`validate`.
    source
        The data's name for the first line.

    Returns
    -------
    str
        One line per problem, then the counts of errors and warnings, and what to do
        when there are errors.

    Examples
    --------
    >>> print(format_problems([], source="data/demo"))
    Validation of data/demo
      OK: no problems found.
    0 errors, 0 warnings.
    """
    errors = [p for p in problems if p.severity == "error"]
    warnings = [p for p in problems if p.severity == "warning"]
    head = f"Validation of {source}" if source else "Validation"
    lines = [head]
    if not problems:
        lines.append("  OK: no problems found.")
    for p in problems:
        lines.append(f"  {p}")
    lines.append(
        f"{len(errors)} error{'s' if len(errors) != 1 else ''}, "
        f"{len(warnings)} warning{'s' if len(warnings) != 1 else ''}."
    )
    if errors:
        lines.append("Fix the errors above and run 'cxkit validate' again.")
    return "\n".join(lines)


# --------------------------------------------------------------------------------------
# per-table rules
# --------------------------------------------------------------------------------------


def _examples(expr: ir.Table, column: str, limit: int = 5) -> tuple[str, ...]:
    """Return up to ``limit`` example values of ``column``, shown by :func:`_show`."""
    try:
        values = expr.select(column).limit(limit).to_pandas()[column].tolist()
    except Exception:
        return ()
    return tuple(_show(v) for v in values)


def _show(v: object) -> str:
    """Show one example value: quoted, cut at 40 characters, NULL for a missing one."""
    if v is None or (isinstance(v, float) and pd.isna(v)):
        return "NULL"
    text = str(v)
    return repr(text[:40] + "…" if len(text) > 40 else text)


def _id_col(name: str, raw: ir.Table) -> str | None:
    for c in ("response_id", "order_id", "event_id", "customer_id"):
        if c in raw.columns and (name != "customers" or c == "customer_id"):
            if name in ("orders", "responses") and c == "customer_id":
                continue
            return c
    return None


def _check_table(
    data: CXData, name: str, cutoff: pd.Timestamp | None, limit: pd.Timestamp
) -> list[Problem]:
    raw = data.raw[name]
    contract = {c.name: c for c in SCHEMA[name]}
    out: list[Problem] = []

    for col in (c.name for c in SCHEMA[name] if c.required and c.name not in raw.columns):
        out.append(
            Problem(
                "error",
                "missing_column",
                name,
                col,
                0,
                f"required column '{col}' is missing (columns present: {list(raw.columns)})",
                fix=f"add '{col}', or map your column onto it with "
                f"mapping={{'{name}': {{'your_column': '{col}'}}}}",
            )
        )

    # One relation with both the raw and the converted value of every contract column,
    # so that a single aggregate counts every row-level rule.
    present = [c for c in contract if c in raw.columns]
    chk = raw.mutate(**{f"__t_{c}": typed_column(raw[c], contract[c].kind) for c in present})
    rules: list[_Rule] = []
    for col in present:
        spec = contract[col]
        r, t = chk[col], chk[f"__t_{col}"]
        if spec.kind == "string" and col.endswith("_id"):
            empty = t.isnull() | (t.strip() == "")
            rules.append(
                _Rule(
                    "null_id",
                    "error",
                    col,
                    empty,
                    "ID is missing (NULL or empty)",
                    "every row needs an ID; drop or repair these rows",
                )
            )
        elif spec.kind == "string" and name == "assignments":
            rules.append(
                _Rule(
                    "null_label",
                    "error",
                    col,
                    t.isnull() | (t.strip() == ""),
                    f"{col} is missing (NULL or empty)",
                    "every assignment needs its experiment and variant; drop or repair these rows",
                )
            )
        elif spec.kind == "timestamp":
            rules.append(
                _Rule(
                    "unparseable_timestamp",
                    "error",
                    col,
                    r.notnull() & t.isnull(),
                    "timestamp cannot be parsed",
                    "use ISO 8601 timestamps like 2024-03-31 or 2024-03-31T14:05:00Z",
                )
            )
            rules.append(
                _Rule(
                    "timestamp_before_1970",
                    "error",
                    col,
                    (t < EARLIEST_TS).fill_null(False),
                    f"timestamp is before {EARLIEST_TS:%Y-%m-%d}",
                    "dates this early are usually placeholders (1900-01-01) or numbers read "
                    "in the wrong unit: repair these rows or drop them",
                )
            )
            rules.append(_future_rule(col, (t > limit).fill_null(False), cutoff, limit))
            if spec.required:
                rules.append(
                    _Rule(
                        "null_timestamp",
                        "error",
                        col,
                        r.isnull(),
                        "timestamp is missing (NULL)",
                        "every activity row needs a timestamp; drop or repair these rows",
                    )
                )
        elif spec.kind == "float":
            rules.append(
                _Rule(
                    "non_numeric_amount",
                    "error",
                    col,
                    r.notnull() & t.isnull(),
                    "amount is not a number",
                    "amounts must be plain numbers like 19.99 (no currency symbols "
                    "or thousands separators)",
                )
            )
            rules.append(
                _Rule(
                    "null_amount",
                    "error",
                    col,
                    r.isnull(),
                    "amount is missing (NULL)",
                    "give every order an amount (0 for free orders)",
                )
            )
            rules.append(
                _Rule(
                    "non_finite_amount",
                    "error",
                    col,
                    t.notnull() & (t.isinf() | t.isnan()),
                    "amount is not finite (inf or NaN)",
                    "replace infinite or NaN amounts",
                )
            )
            rules.append(
                _Rule(
                    "negative_amount",
                    "error",
                    col,
                    t < 0,
                    "amount is negative",
                    "refunds are not orders: remove them or net them into the order",
                )
            )
        elif spec.kind == "int" and col == "score":
            rules.append(
                _Rule(
                    "non_numeric_score",
                    "error",
                    col,
                    r.notnull() & t.isnull(),
                    "score is not a number",
                    "scores must be whole numbers",
                )
            )
            rules.append(
                _Rule(
                    "null_score",
                    "error",
                    col,
                    r.isnull(),
                    "score is missing (NULL)",
                    "drop responses without a score",
                )
            )
            if r.type().is_floating():
                rules.append(
                    _Rule(
                        "fractional_score",
                        "error",
                        col,
                        r.notnull() & (r != r.round()),
                        "score is not a whole number",
                        "scores must be whole numbers",
                    )
                )
            if "survey" in raw.columns:
                survey = chk["__t_survey"].lower()
                rules.append(
                    _Rule(
                        "unknown_survey",
                        "error",
                        "survey",
                        (survey.notnull() & ~survey.isin(list(SCORE_RANGES))),
                        f"survey is not one of {sorted(SCORE_RANGES)}",
                        "label each response nps, csat or ces",
                    )
                )
                bad = ibis.literal(False)
                for s, (lo, hi) in SCORE_RANGES.items():
                    bad = bad | ((survey == s) & ((t < lo) | (t > hi)))
                rules.append(
                    _Rule(
                        "score_out_of_range",
                        "error",
                        col,
                        bad.fill_null(False),
                        "score out of range for its survey (nps 0–10, csat 1–5, ces 1–7)",
                        "check the survey label or rescale the scores",
                        example=survey.concat(ibis.literal("="), r.cast("string")),
                    )
                )
    if cutoff is not None and name in _ACTIVITY and "ts" in raw.columns:
        rules.append(
            _Rule(
                "after_as_of",
                "warning",
                "ts",
                (chk["__t_ts"] > cutoff).fill_null(False),
                f"activity after as_of ({cutoff.date()}) is ignored by every analysis",
                "set as_of later, or accept that these rows are not used",
            )
        )

    aggs = {"n_rows": chk.count()}
    # CASE WHEN rather than a boolean cast: PostgreSQL cannot cast boolean to bigint.
    aggs.update(
        {f"r{i}": ibis.cases((rule.cond, 1), else_=0).sum() for i, rule in enumerate(rules)}
    )
    try:
        counts = chk.aggregate(**aggs).to_pandas().iloc[0].to_dict()
    except Exception as err:
        out.append(
            Problem(
                "error",
                "unreadable",
                name,
                None,
                0,
                f"the table could not be checked: {str(err).splitlines()[0]}",
                fix="check the column types of this table",
            )
        )
        return out

    n_rows = int(counts["n_rows"] or 0)
    if n_rows == 0:
        out.append(
            Problem(
                "error",
                "empty_table",
                name,
                None,
                0,
                "the table has no rows",
                fix="remove the empty file or fill it",
            )
        )
        return out

    for i, rule in enumerate(rules):
        n = int(counts[f"r{i}"] or 0)
        if n:
            example = rule.example if rule.example is not None else chk[rule.column]
            # Formatted in Python, not by the engine, so that every backend shows the same text.
            examples = _examples(chk.filter(rule.cond).select(__ex=example), "__ex")
            out.append(
                Problem(
                    rule.severity, rule.name, name, rule.column, n, rule.message, examples, rule.fix
                )
            )

    typed = data.table(name)
    for col in present:
        if not contract[col].unique:
            continue
        dup = (
            typed.filter(typed[col].notnull())
            .group_by(col)
            .aggregate(n=lambda d: d.count())
            .filter(lambda d: d.n > 1)
        )
        stats = dup.aggregate(ids=dup.count(), rows=dup.n.sum()).to_pandas().iloc[0]
        if int(stats["ids"] or 0) > 0:
            out.append(
                Problem(
                    "error",
                    "duplicate_id",
                    name,
                    col,
                    int(stats["rows"]),
                    f"{int(stats['ids']):,} {col} value(s) occur more than once",
                    _examples(dup.order_by(ibis.desc("n"), col), col),
                    f"{col} must be unique: drop repeated rows or make the IDs unique",
                )
            )

    n_distinct = int(raw.distinct().count().to_pandas())
    if n_distinct < n_rows:
        out.append(
            Problem(
                "warning",
                "duplicate_rows",
                name,
                None,
                n_rows - n_distinct,
                "exact duplicate rows (every column equal)",
                fix="drop the repeated rows unless they are real repeats",
            )
        )
    return out


def _future_rule(
    col: str, cond: ir.BooleanValue, cutoff: pd.Timestamp | None, limit: pd.Timestamp
) -> _Rule:
    """Return the rule for timestamps after ``limit``: an error unless ``as_of`` cuts them."""
    today = f"{limit - FUTURE_TOLERANCE:%Y-%m-%d}"
    if col == "churned_at":
        return _Rule(
            "future_timestamp",
            "warning",
            col,
            cond,
            f"churn date is in the future (after {today}); it counts only once as_of reaches it",
            "fine for a scheduled cancellation; otherwise repair these dates",
        )
    if cutoff is not None and cutoff <= limit:
        return _Rule(
            "future_timestamp",
            "warning",
            col,
            cond,
            f"timestamp is in the future (after {today}); ignored, since as_of "
            f"({cutoff.date()}) is earlier, but probably a wrong date",
            "repair or drop these rows",
        )
    reason = (
        f"as_of ({cutoff.date()}) is later still, so every analysis would use them"
        if cutoff is not None
        else "the default as_of (the latest timestamp) would follow them"
    )
    return _Rule(
        "future_timestamp",
        "error",
        col,
        cond,
        f"timestamp is in the future (after {today}); {reason}",
        "repair or drop these rows, or give an as_of no later than today "
        "(e.g. --as-of 2024-12-31): rows after it are ignored",
    )


class _Rule:
    """A row-level rule: a boolean condition and how to report it."""

    __slots__ = ("column", "cond", "example", "fix", "message", "name", "severity")

    def __init__(
        self,
        name: str,
        severity: str,
        column: str,
        cond: ir.BooleanValue,
        message: str,
        fix: str,
        *,
        example: ir.Value | None = None,
    ) -> None:
        self.name, self.severity, self.column = name, severity, column
        self.cond, self.message, self.fix, self.example = cond, message, fix, example


# --------------------------------------------------------------------------------------
# cross-table rules
# --------------------------------------------------------------------------------------


def _check_orphans(data: CXData) -> list[Problem]:
    if not data.has("customers", "customer_id"):
        return []
    customers = data.table("customers").select("customer_id").distinct()
    out = []
    for name in (*_ACTIVITY, "assignments"):
        if not data.has(name, "customer_id"):
            continue
        act = data.table(name).filter(lambda t: t.customer_id.notnull())
        orphans = act.anti_join(customers, "customer_id")
        n = int(orphans.count().to_pandas())
        if n:
            ids = orphans.select("customer_id").distinct()
            n_ids = int(ids.count().to_pandas())
            out.append(
                Problem(
                    "error",
                    "orphan_customer_id",
                    name,
                    "customer_id",
                    n,
                    f"{n_ids:,} customer_id value(s) are not in the customers table",
                    _examples(ids.order_by("customer_id"), "customer_id"),
                    "add these customers to the customers table, or drop their rows",
                )
            )
    return out


def _check_inactive_customers(data: CXData) -> list[Problem]:
    if not data.has("customers", "customer_id"):
        return []
    active = [data.table(n).select("customer_id") for n in _ACTIVITY if data.has(n, "customer_id")]
    if not active:
        return []
    seen = ibis.union(*active, distinct=True) if len(active) > 1 else active[0].distinct()
    idle = data.table("customers").select("customer_id").distinct().anti_join(seen, "customer_id")
    n = int(idle.count().to_pandas())
    if not n:
        return []
    return [
        Problem(
            "warning",
            "inactive_customers",
            "customers",
            "customer_id",
            n,
            "customers with no events, orders or responses",
            _examples(idle.order_by("customer_id"), "customer_id"),
            "fine if they signed up without doing anything; otherwise check the activity "
            "tables' customer_id values",
        )
    ]


def _check_assignments(data: CXData) -> list[Problem]:
    """Warn about customers assigned more than once in one experiment."""
    if not data.has("assignments", "customer_id", "experiment"):
        return []
    a = data.table("assignments").filter(lambda t: t.customer_id.notnull())
    repeated = (
        a.group_by(["experiment", "customer_id"])
        .aggregate(n=lambda t: t.count())
        .filter(lambda t: t.n > 1)
    )
    stats = repeated.aggregate(ids=repeated.count(), rows=repeated.n.sum()).to_pandas().iloc[0]
    if not int(stats["ids"] or 0):
        return []
    return [
        Problem(
            "warning",
            "repeated_assignment",
            "assignments",
            "customer_id",
            int(stats["rows"]),
            f"{int(stats['ids']):,} customer(s) assigned more than once in one experiment; "
            "the readout keeps each customer's first assignment",
            _examples(repeated.order_by(["experiment", "customer_id"]), "customer_id"),
            "assign each customer once per experiment, or accept that later assignments "
            "are ignored",
        )
    ]
