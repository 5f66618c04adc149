"""cxkit.errors: every error says what is wrong, where (table, column, rows) and the fix."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pandas as pd
import pytest

import cxkit
from cxkit.data import require_columns
from cxkit.errors import (
    ConvergenceError,
    CxkitError,
    DataError,
    NotAvailableError,
    Problem,
    UsageError,
)


def test_data_error_names_table_column_rows_examples_and_fix() -> None:
    err = DataError(
        "values are not numbers",
        table="orders",
        column="amount",
        rows=1234,
        examples=["abc", "1,5"],
        fix="write amounts as plain numbers",
    )
    assert str(err) == (
        "orders.amount: values are not numbers (1,234 rows) e.g. 'abc', '1,5'. "
        "Fix: write amounts as plain numbers"
    )
    assert (err.table, err.column, err.rows, err.fix) == ("orders", "amount", 1234, err.fix)
    assert err.message == "values are not numbers"
    assert err.args == (str(err),)


def test_data_error_keeps_five_examples() -> None:
    err = DataError("bad IDs", table="customers", examples=range(10))
    assert err.examples == [0, 1, 2, 3, 4]
    assert str(err) == "customers: bad IDs e.g. 0, 1, 2, 3, 4"


def test_data_error_without_where_is_the_message() -> None:
    assert str(DataError("no usable table")) == "no usable table"
    assert str(DataError("x", column="ts", fix="y")) == "ts: x. Fix: y"


def test_error_hierarchy_lets_callers_catch_either() -> None:
    assert issubclass(DataError, ValueError) and issubclass(DataError, CxkitError)
    assert issubclass(UsageError, ValueError) and issubclass(UsageError, CxkitError)
    assert issubclass(NotAvailableError, CxkitError)
    assert not issubclass(NotAvailableError, ValueError)
    assert issubclass(ConvergenceError, CxkitError)
    with pytest.raises(ValueError, match="orders: missing"):
        raise DataError("missing", table="orders")


def test_not_available_names_the_analysis_and_what_it_needs() -> None:
    err = NotAvailableError("table 'orders' with column(s) 'amount'", analysis="CLV")
    assert str(err) == "CLV is not available: this needs table 'orders' with column(s) 'amount'"
    assert err.needs == "table 'orders' with column(s) 'amount'" and err.analysis == "CLV"
    assert str(NotAvailableError("the table 'events'")) == (
        "not available: this needs the table 'events'"
    )


def test_problem_str_names_severity_where_rows_examples_and_fix() -> None:
    p = Problem(
        "error",
        "negative_amount",
        "orders",
        "amount",
        3,
        "amount is negative",
        examples=("-1.0", "-5.0"),
        fix="refunds belong in their own table",
    )
    assert str(p) == (
        "ERROR orders.amount: amount is negative (3 rows); e.g. -1.0, -5.0. "
        "Fix: refunds belong in their own table"
    )
    q = Problem("warning", "empty_table", "events", None, 0, "the table is empty")
    assert str(q) == "WARNING events: the table is empty (0 rows)"
    with pytest.raises(dataclasses.FrozenInstanceError):
        p.rows = 4  # type: ignore[misc]


# --------------------------------------------------------------------------------------
# the errors cxkit raises carry those parts
# --------------------------------------------------------------------------------------


def test_load_of_a_missing_folder_says_how_to_get_data(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="the data folder does not exist") as info:
        cxkit.load(f"{tmp_path}/nope")
    assert info.value.table == f"{tmp_path}/nope"
    assert "cxkit synth --out DIR" in (info.value.fix or "")


def test_a_mapping_to_a_missing_column_lists_the_columns() -> None:
    orders = pd.DataFrame({"id": ["1"], "customer_id": ["a"], "ts": ["2024-01-01"], "amount": [1]})
    with pytest.raises(
        DataError, match=r"orders: the mapping names column\(s\) \['order_no'\]"
    ) as info:
        cxkit.load({"orders": orders}, mapping={"orders": {"order_no": "order_id"}})
    assert info.value.table == "orders"
    assert info.value.fix == "the table's columns are ['id', 'customer_id', 'ts', 'amount']"


def test_require_columns_names_table_columns_and_fix() -> None:
    with pytest.raises(DataError, match=r"^orders: missing column\(s\) \['amount'\]\. Fix: add"):
        require_columns(pd.DataFrame({"ts": []}), ["ts", "amount"], name="orders", fix="add it")


def test_bad_option_lists_valid_choices_and_echoes_the_input() -> None:
    with pytest.raises(UsageError, match=r"unknown table\(s\) \['sales'\]; valid tables: \["):
        cxkit.load({"sales": pd.DataFrame({"x": [1]})})
    with pytest.raises(UsageError, match="as_of must be an ISO date like '2024-06-30', got 'soon'"):
        cxkit.resolve_as_of(cxkit.load({"orders": _orders()}), "soon")


def test_validation_problems_name_table_column_rows_examples_and_fix() -> None:
    bad = _orders()
    bad.loc[1, "amount"] = -3.0
    bad.loc[2, "order_id"] = bad.loc[0, "order_id"]
    problems = {p.rule: p for p in cxkit.validate(cxkit.load({"orders": bad}))}
    neg = problems["negative_amount"]
    assert (neg.severity, neg.table, neg.column, neg.rows) == ("error", "orders", "amount", 1)
    assert neg.examples and neg.fix
    dup = problems["duplicate_id"]
    assert (dup.table, dup.column, dup.rows) == ("orders", "order_id", 2)
    assert "unique" in dup.fix


def _orders() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "order_id": ["1", "2", "3"],
            "customer_id": ["a", "b", "c"],
            "ts": pd.to_datetime(["2024-01-01", "2024-01-02", "2024-01-03"]),
            "amount": [5.0, 6.0, 7.0],
        }
    )
