"""The exceptions cxkit raises.

Every error caused by the user's data or options is a :class:`DataError` (also a
``ValueError``) or a :class:`UsageError`, and carries what is wrong, where (table,
column, rows) and how to fix it, so that the command line and the reports can show a
plain message instead of a traceback.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field


class CxkitError(Exception):
    """Base class of every error raised by cxkit."""


class DataError(ValueError, CxkitError):
    """Bad input data: a missing table or column, unparseable values, broken rules.

    Parameters
    ----------
    message
        What is wrong, in plain words.
    table, column
        Where, when it is known.
    rows
        How many rows are affected, when it is known.
    examples
        Up to five example values or IDs.
    fix
        What the user should do next.

    Examples
    --------
    >>> str(DataError("values are not numbers", table="orders", column="amount", rows=3,
    ...               examples=["abc"], fix="write amounts as plain numbers"))
    "orders.amount: values are not numbers (3 rows) e.g. 'abc'. Fix: write amounts as plain numbers"
    """

    def __init__(
        self,
        message: str,
        *,
        table: str | None = None,
        column: str | None = None,
        rows: int | None = None,
        examples: Sequence[object] = (),
        fix: str | None = None,
    ) -> None:
        self.message = message
        self.table = table
        self.column = column
        self.rows = rows
        self.examples = list(examples)[:5]
        self.fix = fix
        super().__init__(self.__str__())

    def __str__(self) -> str:
        """Return the message with where, how many rows, examples and the fix."""
        where = ".".join(p for p in (self.table, self.column) if p)
        parts = [f"{where}: {self.message}" if where else self.message]
        if self.rows is not None:
            parts.append(f"({self.rows:,} rows)")
        if self.examples:
            parts.append("e.g. " + ", ".join(repr(e) for e in self.examples))
        text = " ".join(parts)
        if self.fix:
            text += f". Fix: {self.fix}"
        return text


class UsageError(ValueError, CxkitError):
    """A bad option or argument: the message lists the valid choices and echoes the input."""


class NotAvailableError(CxkitError):
    """An analysis needs a table or column the data does not have.

    Notebooks catch it and show ``str(err)`` as a short "not available" note.

    Parameters
    ----------
    needs
        What the analysis needs, e.g. ``"the table 'orders'"``.
    analysis
        The analysis that needs it, when it is known.

    Examples
    --------
    >>> str(NotAvailableError("the table 'orders'", analysis="CLV"))
    "CLV is not available: this needs the table 'orders'"
    """

    def __init__(self, needs: str, *, analysis: str | None = None) -> None:
        self.needs = needs
        self.analysis = analysis
        what = f"{analysis} is not available" if analysis else "not available"
        super().__init__(f"{what}: this needs {needs}")


class ScaleLimitError(CxkitError):
    """Scale mode refused to collect more per-customer rows than its limit.

    Parameters
    ----------
    what
        What the rows are.
    rows
        How many rows the collect would have brought.
    limit
        The limit (``max_collect_rows`` of :class:`cxkit.scale.ScaleSettings`).

    Examples
    --------
    >>> str(ScaleLimitError(what="churn features", rows=300_000, limit=250_000))[:60]
    'churn features: 300,000 rows is more than the scale-mode lim'
    """

    def __init__(self, *, what: str, rows: int, limit: int) -> None:
        self.what = what
        self.rows = rows
        self.limit = limit
        super().__init__(
            f"{what}: {rows:,} rows is more than the scale-mode limit of {limit:,} rows "
            "collected at once. Fix: raise max_collect_rows under scale: in reports.yml "
            "(or CXKIT_SCALE), or lower sample_rows / batch_rows"
        )


class ConvergenceError(CxkitError):
    """A model fit did not converge; the message says what was tried and what to do."""


@dataclass(frozen=True)
class Problem:
    """One finding of :func:`cxkit.validate`.

    Attributes
    ----------
    severity
        ``"error"`` (the data cannot be used as it is) or ``"warning"``.
    rule
        A short machine-readable name such as ``"duplicate_id"``.
    table, column
        Where the problem is (``column`` may be ``None``).
    rows
        How many rows are affected.
    message
        What is wrong, in plain words.
    examples
        Up to five example values or IDs.
    fix
        How to fix it.
    """

    severity: str
    rule: str
    table: str
    column: str | None
    rows: int
    message: str
    examples: tuple[str, ...] = field(default_factory=tuple)
    fix: str = ""

    def __str__(self) -> str:
        """Return one line: severity, where, message, rows, examples and the fix."""
        where = f"{self.table}.{self.column}" if self.column else self.table
        text = f"{self.severity.upper()} {where}: {self.message} ({self.rows:,} rows)"
        if self.examples:
            text += "; e.g. " + ", ".join(self.examples)
        if self.fix:
            text += f". Fix: {self.fix}"
        return text
