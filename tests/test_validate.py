"""Every validation rule, triggered by a deliberately broken dataset, with its message pinned."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

import cxkit
from cxkit.cli import main
from cxkit.errors import DataError
from cxkit.validate import format_problems, has_errors, validate


def _clean() -> dict[str, pd.DataFrame]:
    customers = pd.DataFrame(
        {"customer_id": ["001", "002", "003"], "signup_at": ["2024-01-01"] * 3}
    )
    events = pd.DataFrame(
        {
            "customer_id": ["001", "002", "003"],
            "ts": ["2024-01-02", "2024-01-03", "2024-01-04"],
            "event": ["site_visit", "product_view", "site_visit"],
        }
    )
    orders = pd.DataFrame(
        {
            "order_id": ["o1", "o2"],
            "customer_id": ["001", "002"],
            "ts": ["2024-01-05", "2024-01-06"],
            "amount": [10.0, 0.0],
        }
    )
    responses = pd.DataFrame(
        {
            "response_id": ["r1", "r2", "r3"],
            "customer_id": ["001", "002", "003"],
            "ts": ["2024-01-07"] * 3,
            "survey": ["nps", "csat", "ces"],
            "score": [10, 5, 1],
        }
    )
    return {"customers": customers, "events": events, "orders": orders, "responses": responses}


def _broken() -> dict[str, pd.DataFrame]:
    t = _clean()
    t["customers"] = pd.concat(
        [t["customers"], pd.DataFrame({"customer_id": ["003", "009"], "signup_at": ["x", None]})]
    )
    t["events"] = pd.DataFrame(
        {
            "customer_id": ["001", "777", None, "002"],
            "ts": ["2024-01-02", "not a date", None, "2024-01-03"],
            "event": ["site_visit", "site_visit", "site_visit", "site_visit"],
        }
    )
    t["orders"] = pd.DataFrame(
        {
            "order_id": ["o1", "o1", "o3", "o4", "o5"],
            "customer_id": ["001", "002", "001", "001", "001"],
            "ts": ["2024-01-05"] * 5,
            "amount": ["10", "-5", "ten", "inf", None],
        }
    )
    t["responses"] = pd.DataFrame(
        {
            "response_id": ["r1", "r2", "r3", "r4"],
            "customer_id": ["001", "002", "003", "001"],
            "ts": ["2024-01-07"] * 4,
            "survey": ["nps", "csat", "ces", "stars"],
            "score": ["11", "0", "x", "3"],
        }
    )
    return t


def test_clean_data_has_no_problems() -> None:
    assert validate(cxkit.load(_clean())) == []


def test_every_rule_reported_at_once_with_table_column_rows_examples_and_fix() -> None:
    problems = validate(cxkit.load(_broken()))
    got = {(p.rule, p.table, p.column): p for p in problems}
    expected = {
        ("duplicate_id", "customers", "customer_id"): 2,
        ("unparseable_timestamp", "customers", "signup_at"): 1,
        ("unparseable_timestamp", "events", "ts"): 1,
        ("null_timestamp", "events", "ts"): 1,
        ("null_id", "events", "customer_id"): 1,
        ("duplicate_id", "orders", "order_id"): 2,
        ("negative_amount", "orders", "amount"): 1,
        ("non_numeric_amount", "orders", "amount"): 1,
        ("non_finite_amount", "orders", "amount"): 1,
        ("null_amount", "orders", "amount"): 1,
        ("score_out_of_range", "responses", "score"): 2,
        ("non_numeric_score", "responses", "score"): 1,
        ("unknown_survey", "responses", "survey"): 1,
        ("orphan_customer_id", "events", "customer_id"): 1,
    }
    for key, rows in expected.items():
        assert key in got, f"missing {key}; got {sorted(got)}"
        assert got[key].rows == rows, (key, got[key].rows)
        assert got[key].severity == "error"
        assert got[key].fix
    assert got[("orphan_customer_id", "events", "customer_id")].examples == ("'777'",)
    assert got[("unparseable_timestamp", "events", "ts")].examples == ("'not a date'",)
    assert set(got[("score_out_of_range", "responses", "score")].examples) == {
        "'nps=11'",
        "'csat=0'",
    }
    assert got[("non_numeric_amount", "orders", "amount")].examples == ("'ten'",)
    assert has_errors(problems)
    # the customer "009" has no activity: a warning, not an error
    assert got[("inactive_customers", "customers", "customer_id")].severity == "warning"


def test_missing_required_column_and_empty_table() -> None:
    t = _clean()
    t["orders"] = t["orders"].drop(columns=["amount"])
    t["events"] = t["events"].iloc[0:0]
    problems = validate(cxkit.load(t))
    msgs = {(p.rule, p.table): str(p) for p in problems}
    assert "required column 'amount' is missing" in msgs[("missing_column", "orders")]
    assert "mapping=" in msgs[("missing_column", "orders")]
    assert "the table has no rows" in msgs[("empty_table", "events")]


def test_warnings_duplicate_rows_and_activity_after_as_of() -> None:
    t = _clean()
    t["events"] = pd.concat([t["events"], t["events"].iloc[[0]]])
    problems = validate(cxkit.load(t), as_of="2024-01-02")
    warn = {p.rule: p for p in problems if p.severity == "warning"}
    assert warn["duplicate_rows"].rows == 1
    assert warn["after_as_of"].table in {"events", "orders", "responses"}
    assert not has_errors(problems)
    assert "activity after as_of (2024-01-02)" in str(warn["after_as_of"])


def test_assignments_table_rules() -> None:
    """The optional assignments table: labels, orphans, timestamps, repeated assignments."""
    t = _clean()
    t["assignments"] = pd.DataFrame(
        {
            "customer_id": ["001", "002", "002", "777", "003"],
            "experiment": ["x", "x", "x", "x", None],
            "variant": ["control", "treatment", "control", " ", "control"],
            "assigned_at": ["2024-01-02", "2024-01-02", "2024-01-03", "2024-01-02", "soon"],
        }
    )
    problems = validate(cxkit.load(t))
    got = {(p.rule, p.table, p.column): p for p in problems}
    assert got[("null_label", "assignments", "experiment")].rows == 1
    assert got[("null_label", "assignments", "variant")].examples == ("' '",)
    assert got[("orphan_customer_id", "assignments", "customer_id")].examples == ("'777'",)
    assert got[("unparseable_timestamp", "assignments", "assigned_at")].rows == 1
    repeated = got[("repeated_assignment", "assignments", "customer_id")]
    assert repeated.severity == "warning" and repeated.rows == 2
    assert repeated.examples == ("'002'",)
    assert "the readout keeps each customer's first assignment" in str(repeated)
    t["assignments"] = t["assignments"].drop(columns=["variant"])
    missing = {(p.rule, p.table) for p in validate(cxkit.load(t))}
    assert ("missing_column", "assignments") in missing
    # a clean assignments table adds no problem
    t = _clean()
    t["assignments"] = pd.DataFrame(
        {
            "customer_id": ["001"],
            "experiment": ["x"],
            "variant": ["a"],
            "assigned_at": ["2024-01-02"],
        }
    )
    assert validate(cxkit.load(t)) == []


def test_format_problems_lists_counts() -> None:
    text = format_problems(validate(cxkit.load(_broken())), source="x")
    assert text.startswith("Validation of x")
    assert "ERROR orders.amount: amount is negative (1 rows)" in text
    assert "Fix the errors above" in text


def _write(tables: dict[str, pd.DataFrame], folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, df in tables.items():
        df.to_csv(folder / f"{name}.csv", index=False)
    return folder


def test_cli_validate_exit_codes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = _write(_clean(), tmp_path / "good")
    assert main(["validate", str(good)]) == 0
    assert "0 errors" in capsys.readouterr().out
    bad = _write(_broken(), tmp_path / "bad")
    assert main(["validate", str(bad)]) == 2
    out = capsys.readouterr().out
    for rule_text in (
        "amount is negative",
        "timestamp cannot be parsed",
        "occur more than once",
        "not in the customers table",
        "score out of range",
    ):
        assert rule_text in out
    assert "Traceback" not in out


def test_cli_validate_missing_folder_is_a_plain_message(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["validate", str(tmp_path / "nope")]) == 2
    err = capsys.readouterr().err
    assert "the data folder does not exist" in err
    assert "cxkit synth" in err


def test_cli_validate_folder_without_tables(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "_truth.parquet").write_bytes(b"")
    assert main(["validate", str(tmp_path)]) == 2
    assert "no usable table found" in capsys.readouterr().err


def test_load_raises_data_error_for_bad_mapping() -> None:
    with pytest.raises(DataError, match=r"mapping names column\(s\) \['when'\]"):
        cxkit.load(_clean(), mapping={"orders": {"when": "ts"}})


# ---- timestamps in the future or before 1970 (issue 22, item 2) --------------------------


def _with_future_orders() -> dict[str, pd.DataFrame]:
    t = _clean()
    t["orders"] = pd.concat(
        [
            t["orders"],
            pd.DataFrame(
                {
                    "order_id": [f"f{i}" for i in range(5)],
                    "customer_id": ["001"] * 5,
                    "ts": ["2099-01-01"] * 5,
                    "amount": [1.0] * 5,
                }
            ),
        ]
    )
    return t


def test_future_timestamps_are_an_error_without_as_of() -> None:
    problems = validate(cxkit.load(_with_future_orders()))
    (p,) = [p for p in problems if p.rule == "future_timestamp"]
    assert (p.severity, p.table, p.column, p.rows) == ("error", "orders", "ts", 5)
    assert p.examples[0] == "'2099-01-01'"
    assert "the default as_of (the latest timestamp) would follow them" in p.message
    assert "give an as_of no later than today" in p.fix


def test_future_timestamps_are_a_warning_when_as_of_cuts_them() -> None:
    data = cxkit.load(_with_future_orders())
    problems = validate(data, as_of="2024-01-31")
    assert not has_errors(problems)
    rules = {p.rule: p for p in problems}
    assert rules["future_timestamp"].severity == "warning"
    assert rules["future_timestamp"].rows == 5
    assert "ignored, since as_of (2024-01-31) is earlier" in rules["future_timestamp"].message
    # an as_of that is itself in the future would use them: still an error
    (err,) = [p for p in validate(data, as_of="2100-01-01") if p.severity == "error"]
    assert err.rule == "future_timestamp"
    assert "as_of (2100-01-01) is later still" in err.message


def test_timestamp_within_a_day_of_now_is_fine() -> None:
    t = _clean()
    t["orders"].loc[1, "ts"] = str(
        pd.Timestamp.now(tz="UTC").tz_localize(None) + pd.Timedelta(hours=12)
    )
    assert validate(cxkit.load(t)) == []


def test_timestamps_before_1970_are_an_error() -> None:
    t = _clean()
    t["customers"].loc[0, "signup_at"] = "1900-01-01"
    t["events"].loc[2, "ts"] = "1969-12-31 23:59:59"
    problems = validate(cxkit.load(t))
    found = {(p.table, p.column): p for p in problems if p.rule == "timestamp_before_1970"}
    assert set(found) == {("customers", "signup_at"), ("events", "ts")}
    assert all(p.severity == "error" and p.rows == 1 for p in found.values())
    assert "before 1970-01-01" in found["events", "ts"].message
    assert "placeholders (1900-01-01)" in found["customers", "signup_at"].fix


def test_churn_date_in_the_future_is_a_warning() -> None:
    t = _clean()
    t["customers"]["churned_at"] = [None, "2099-06-30", None]
    problems = validate(cxkit.load(t))
    assert [(p.rule, p.severity, p.column) for p in problems] == [
        ("future_timestamp", "warning", "churned_at")
    ]


def test_cli_validate_future_orders(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = _write(_with_future_orders(), tmp_path / "future")
    assert main(["validate", str(folder)]) == 2
    assert "ERROR orders.ts: timestamp is in the future" in capsys.readouterr().out
    assert main(["validate", str(folder), "--as-of", "2024-01-31"]) == 0
    assert "WARNING orders.ts: timestamp is in the future" in capsys.readouterr().out
