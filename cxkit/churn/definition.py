"""What "churn" means, and who churned at a cutoff: :class:`ChurnDefinition` and the labels.

Non-contractual (the default when customers carry no ``churned_at``): a customer with at
least one order (``basis="orders"``) or any activity (``basis="activity"``) on or before
the cutoff who has none in the ``horizon_days`` after it. Contractual (when customers
carry ``churned_at``): a customer whose subscription was live at the cutoff and whose
``churned_at`` falls in the ``horizon_days`` after it.

A cutoff is resolved by :func:`cxkit.data.resolve_as_of`: a date includes its whole day.
"""

from __future__ import annotations

from dataclasses import dataclass

import ibis
import ibis.expr.datatypes as dt
import ibis.expr.types as ir
import numpy as np
import pandas as pd

from cxkit.data import CXData, end_of_day, resolve_as_of
from cxkit.errors import DataError, NotAvailableError, UsageError
from cxkit.result import AsOf

__all__ = [
    "BASES",
    "KINDS",
    "ChurnDefinition",
    "data_end",
    "define",
    "label_table",
    "labels",
    "population_ids",
    "resolve_definition",
    "ts_literal",
]

#: The ``basis`` values :func:`define` accepts.
BASES = ("auto", "orders", "activity")
#: The ``kind`` values :func:`define` accepts.
KINDS = ("auto", "non_contractual", "contractual")


@dataclass(frozen=True)
class ChurnDefinition:
    """What "churn" means in an analysis; every output carries one.

    Parameters
    ----------
    horizon_days
        Length of the label window after the cutoff, in days.
    basis
        Non-contractual only: ``"orders"`` (no order in the window) or ``"activity"``
        (no event and no order in the window).
    kind
        ``"non_contractual"`` or ``"contractual"`` (customers carry ``churned_at``).

    Raises
    ------
    UsageError
        For a horizon below one day, or an unknown ``basis`` or ``kind``.

    Examples
    --------
    >>> ChurnDefinition(horizon_days=90).describe()[:46]
    'Churn = a customer with at least one order on '
    """

    horizon_days: int = 90
    basis: str = "orders"
    kind: str = "non_contractual"

    def __post_init__(self) -> None:
        """Check the fields."""
        if not isinstance(self.horizon_days, int | np.integer) or self.horizon_days < 1:
            raise UsageError(
                f"horizon_days must be a whole number of days >= 1, got {self.horizon_days!r}"
            )
        if self.basis not in ("orders", "activity"):
            raise UsageError(f"basis must be 'orders' or 'activity', got {self.basis!r}")
        if self.kind not in ("non_contractual", "contractual"):
            raise UsageError(f"kind must be 'non_contractual' or 'contractual', got {self.kind!r}")

    def describe(self) -> str:
        """Return the definition in one plain sentence.

        Returns
        -------
        str
            The sentence every churn output states.
        """
        h = self.horizon_days
        if self.kind == "contractual":
            return (
                f"Churn = a customer whose subscription was live at the cutoff (signed up, "
                f"not yet churned) and whose churned_at falls within the {h} days after it "
                "(contractual)."
            )
        if self.basis == "orders":
            return (
                f"Churn = a customer with at least one order on or before the cutoff who "
                f"places no order in the {h} days after it (non-contractual, orders basis)."
            )
        return (
            f"Churn = a customer with any activity (event or order) on or before the cutoff "
            f"who has no activity in the {h} days after it (non-contractual, activity basis)."
        )

    def to_dict(self) -> dict[str, int | str]:
        """Return the definition as a JSON-friendly dict, with its sentence.

        Returns
        -------
        dict
            ``horizon_days``, ``basis``, ``kind`` and ``text`` (:meth:`describe`).
        """
        return {
            "horizon_days": int(self.horizon_days),
            "basis": self.basis,
            "kind": self.kind,
            "text": self.describe(),
        }


def define(
    data: CXData, *, horizon_days: int = 90, basis: str = "auto", kind: str = "auto"
) -> ChurnDefinition:
    """Resolve a :class:`ChurnDefinition` for ``data``.

    ``kind="auto"`` is contractual when the customers table has ``churned_at``;
    ``basis="auto"`` is ``"orders"`` when there is an orders table, else ``"activity"``.

    Parameters
    ----------
    data
        The data.
    horizon_days
        Length of the label window after a cutoff, in days.
    basis
        ``"auto"``, ``"orders"`` or ``"activity"``.
    kind
        ``"auto"``, ``"non_contractual"`` or ``"contractual"``.

    Returns
    -------
    ChurnDefinition
        The definition with ``basis`` and ``kind`` resolved.

    Raises
    ------
    UsageError
        For an unknown ``basis`` or ``kind``.
    NotAvailableError
        When the data has no table the definition can be computed from.
    """
    if basis not in BASES:
        raise UsageError(f"basis must be one of {list(BASES)}, got {basis!r}")
    if kind not in KINDS:
        raise UsageError(f"kind must be one of {list(KINDS)}, got {kind!r}")
    if kind == "auto":
        kind = "contractual" if data.has("customers", "churned_at") else "non_contractual"
    if kind == "contractual":
        data.require("customers", "churned_at", analysis="Contractual churn")
    if basis == "auto":
        basis = "orders" if data.has("orders") else "activity"
    if kind == "non_contractual":
        if basis == "orders":
            data.require("orders", "customer_id", "ts", analysis="Churn (orders basis)")
        elif not (data.has("orders") or data.has("events")):
            raise NotAvailableError("the table 'orders' or 'events'", analysis="Churn")
    return ChurnDefinition(horizon_days=int(horizon_days), basis=basis, kind=kind)


def resolve_definition(
    data: CXData,
    definition: ChurnDefinition | None,
    horizon_days: int,
    basis: str,
    kind: str,
) -> ChurnDefinition:
    """Return ``definition`` when given, else :func:`define` with the other options.

    Parameters
    ----------
    data
        The data.
    definition
        A definition, or None.
    horizon_days, basis, kind
        As for :func:`define`.

    Returns
    -------
    ChurnDefinition
        The definition to use.

    Raises
    ------
    UsageError
        When ``definition`` is not a :class:`ChurnDefinition`, or as :func:`define`.
    """
    if definition is not None:
        if not isinstance(definition, ChurnDefinition):
            raise UsageError(
                f"definition must be a ChurnDefinition, got {type(definition).__name__}"
            )
        return definition
    return define(data, horizon_days=horizon_days, basis=basis, kind=kind)


def ts_literal(value: pd.Timestamp) -> ir.TimestampScalar:
    """Return a timestamp as an ibis literal (for comparisons in the engine).

    Parameters
    ----------
    value
        A naive UTC timestamp.

    Returns
    -------
    ibis.expr.types.TimestampScalar
        The literal.
    """
    return ibis.literal(pd.Timestamp(value).to_pydatetime(), type=dt.Timestamp())


def _activity(data: CXData, basis: str) -> ir.Table:
    """``customer_id, ts`` of the rows that count as staying (orders, or orders + events)."""
    parts = []
    if data.has("orders"):
        parts.append(data.table("orders").select("customer_id", "ts"))
    if basis == "activity" and data.has("events"):
        parts.append(data.table("events").select("customer_id", "ts"))
    if not parts:
        raise NotAvailableError(
            "the table 'orders' (or 'events' for basis='activity')", analysis="Churn"
        )
    out = parts[0]
    for p in parts[1:]:
        out = out.union(p, distinct=False)
    return out.filter(out.ts.notnull() & out.customer_id.notnull())


def data_end(data: CXData, definition: ChurnDefinition) -> pd.Timestamp:
    """Return the latest timestamp that the definition's labels can observe.

    Parameters
    ----------
    data
        The data; when it was cut with :meth:`~cxkit.data.CXData.upto`, it counts as
        observed up to that cut even if nothing happened late.
    definition
        The churn definition (which tables count).

    Returns
    -------
    pandas.Timestamp
        The latest counted timestamp.

    Raises
    ------
    DataError
        When the data has no timestamps.
    """
    if definition.kind == "contractual":
        latest = data.max_ts()
        churned = data.table("customers").churned_at.max().to_pandas()
        if churned is not None and not pd.isna(churned):
            latest = pd.Timestamp(churned) if latest is None else max(latest, pd.Timestamp(churned))
    else:
        value = _activity(data, definition.basis).ts.max().to_pandas()
        latest = None if value is None or pd.isna(value) else pd.Timestamp(value)
    if data.as_of is not None:
        # Data cut with upto(as_of) was observed up to as_of, even if nothing happened late.
        latest = data.as_of if latest is None else max(latest, data.as_of)
    if latest is None:
        raise DataError("the data has no timestamps", fix="churn needs dated orders or events")
    return latest


def label_table(
    data: CXData, cutoff: AsOf, *, definition: ChurnDefinition, check_window: bool = True
) -> ir.Table:
    """Return the labels at ``cutoff`` as an ibis expression: ``customer_id, churned``.

    The population is the customers the definition counts at the cutoff; ``churned`` is
    1 when the definition's event happens within ``(cutoff, cutoff + horizon]``.

    Parameters
    ----------
    data
        The data.
    cutoff
        The cutoff, resolved by :func:`cxkit.data.resolve_as_of` (a date includes its
        whole day; ``None`` is the data's own cut or latest timestamp).
    definition
        The churn definition.
    check_window
        Raise when the label window runs past the end of the data (default).

    Returns
    -------
    ibis.expr.types.Table
        ``customer_id`` and ``churned`` (int64: 1 = churned), ordered by id.

    Raises
    ------
    UsageError
        When ``check_window`` and the label window is not fully observed.
    """
    end = resolve_as_of(data, cutoff)
    hend = end + pd.Timedelta(days=definition.horizon_days)
    if check_window:
        latest = data_end(data, definition)
        # A day's grace: a data set "to 2024-12-31" may stop at its last order's time.
        if hend > end_of_day(latest.normalize()):
            raise UsageError(
                f"the label window ({end:%Y-%m-%d} + {definition.horizon_days} days = "
                f"{hend:%Y-%m-%d}) runs past the end of the data ({latest:%Y-%m-%d}); "
                "choose an earlier cutoff or a shorter horizon_days"
            )
    e, he = ts_literal(end), ts_literal(hend)
    if definition.kind == "contractual":
        cust = data.table("customers")
        live = cust.churned_at.isnull() | (cust.churned_at > e)
        if "signup_at" in cust.columns:
            started = cust.signup_at.notnull() & (cust.signup_at <= e)
        else:
            first = _first_activity(data)
            cust = cust.left_join(first, "customer_id")
            cust = cust.drop(*[c for c in cust.columns if c.endswith("_right")])
            started = cust.first_ts.notnull() & (cust.first_ts <= e)
        pop = cust.filter(started & live)
        churned = pop.churned_at.notnull() & (pop.churned_at <= he)
        # (cases, not a cast: PostgreSQL cannot cast boolean to bigint)
        flag = ibis.cases((churned, 1), else_=0).cast("int64")
        return pop.select("customer_id", churned=flag).order_by("customer_id")
    act = _activity(data, definition.basis)
    pop = act.filter(act.ts <= e).select("customer_id").distinct()
    stay = (
        act.filter((act.ts > e) & (act.ts <= he))
        .select("customer_id")
        .distinct()
        .mutate(_stay=ibis.literal(1))
    )
    joined = pop.left_join(stay, pop.customer_id == stay.customer_id)
    flag = ibis.cases((joined._stay.isnull(), 1), else_=0).cast("int64")
    return joined.select(customer_id=pop.customer_id, churned=flag).order_by("customer_id")


def _first_activity(data: CXData) -> ir.Table:
    parts = [
        data.table(n).select("customer_id", "ts")
        for n in ("events", "orders", "responses")
        if data.has(n, "ts")
    ]
    if not parts:
        raise NotAvailableError("a 'signup_at' column or dated activity", analysis="Churn")
    u = parts[0]
    for p in parts[1:]:
        u = u.union(p, distinct=False)
    return u.group_by("customer_id").aggregate(first_ts=u.ts.min())


def labels(
    data: CXData,
    cutoff: AsOf,
    *,
    definition: ChurnDefinition | None = None,
    horizon_days: int = 90,
    basis: str = "auto",
    kind: str = "auto",
    check_window: bool = True,
) -> pd.DataFrame:
    """Return the churn labels at a cutoff: one row per customer in the population.

    Parameters
    ----------
    data
        The data.
    cutoff
        The cutoff date; a date without a time includes its whole day
        (:func:`cxkit.data.resolve_as_of`).
    definition
        A :class:`ChurnDefinition`; else one is built from ``horizon_days``, ``basis``
        and ``kind`` with :func:`define`.
    horizon_days, basis, kind
        As for :func:`define`, when no ``definition`` is given.
    check_window
        Raise when the label window runs past the end of the data (default).

    Returns
    -------
    pandas.DataFrame
        ``customer_id`` (string) and ``churned`` (int64: 1 = churned), sorted by id.

    Raises
    ------
    UsageError
        When the label window is not fully observed.

    Examples
    --------
    >>> import pandas as pd, cxkit
    >>> orders = pd.DataFrame({"order_id": ["1", "2", "3"], "customer_id": ["a", "a", "b"],
    ...     "ts": pd.to_datetime(["2024-01-05", "2024-02-10", "2024-01-20"]),
    ...     "amount": [10.0, 12.0, 8.0]})
    >>> data = cxkit.load({"orders": orders})
    >>> labels(data, "2024-01-31", horizon_days=10, check_window=False)
      customer_id  churned
    0           a        0
    1           b        1
    """
    definition = resolve_definition(data, definition, horizon_days, basis, kind)
    expr = label_table(data, cutoff, definition=definition, check_window=check_window)
    out = expr.to_pandas()
    out["customer_id"] = out["customer_id"].astype(pd.StringDtype())
    out["churned"] = out["churned"].astype("int64")
    return out.sort_values("customer_id", kind="stable").reset_index(drop=True)


def population_ids(data: CXData, end: pd.Timestamp, definition: ChurnDefinition) -> pd.DataFrame:
    """Return the customers the definition would label at ``end`` (labels not needed).

    Parameters
    ----------
    data
        The data.
    end
        The resolved cutoff instant.
    definition
        The churn definition.

    Returns
    -------
    pandas.DataFrame
        One ``customer_id`` column (string), sorted.
    """
    expr = label_table(data, end, definition=definition, check_window=False).select("customer_id")
    ids = expr.to_pandas()
    ids["customer_id"] = ids["customer_id"].astype(pd.StringDtype())
    return ids.sort_values("customer_id", kind="stable").reset_index(drop=True)
