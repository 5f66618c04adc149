"""cxkit.display: stakeholder tables and KPI tiles, every text escaped, one format per kind.

Each rule of issue 21 for stakeholder tables has a test here: readable labels (central
map and fallback), units, currency from the session or the environment, yes/no, one
percentage and p-value format, small samples in words, intervals in one column, and a
scroll box for wide tables.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import numpy as np
import pandas as pd
import pytest
from IPython.display import HTML
from pandas.io.formats.style import Styler

from cxkit import display as dmod
from cxkit.display import (
    CURRENCY_ENV,
    LABELS,
    check_currency,
    column_label,
    currency,
    format_cell,
    format_money,
    format_p,
    format_table,
    set_currency,
    show_table,
    show_tiles,
    style_table,
    table_html,
    tiles_html,
)


@pytest.fixture(autouse=True)
def _no_currency(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Each test starts without a currency (none chosen, none in the environment)."""
    monkeypatch.delenv(CURRENCY_ENV, raising=False)
    set_currency(None)
    yield
    set_currency(None)


def _cells(text: str) -> list[str]:
    return re.findall(r"<td(?:\s[^>]*)?>(.*?)</td>", text, re.S)


def _headers(text: str) -> list[str]:
    return re.findall(r"<th(?:\s[^>]*)?>(.*?)</th>", text, re.S)


def _row(df: pd.DataFrame, **kw: object) -> dict[str, str]:
    t = format_table(df, **kw)  # type: ignore[arg-type]
    return dict(zip(t.columns, t.iloc[0], strict=True))


#: a row of the lifecycle persona table as the report had it (raw names, mixed formats)
LIFECYCLE_ROW = pd.DataFrame(
    {
        "persona": ["High-value app loyalists"],
        "n_start": [2670],
        "n_converted": [2067],
        "rate": [0.774157],
        "rate_rest": [0.356],
        "ci_low": [0.758],
        "ci_high": [0.790],
        "diff": [0.418],
        "diff_ci_low": [0.400125],
        "diff_ci_high": [0.436262],
        "p_value": [0.0],
        "p_holm": [0.0],
        "small_n": [False],
        "significant": [True],
    }
)

# --------------------------------------------------------------------------------------
# format_cell
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "col", "percent", "expected"),
    [
        (None, "x", False, "–"),
        (np.nan, "x", False, "–"),
        (pd.NA, "x", False, "–"),
        (pd.NaT, "ts", False, "–"),
        (True, "flag", False, "yes"),
        (np.bool_(False), "flag", False, "no"),
        (True, "small_n", False, "small (n < 30)"),
        (False, "small_n", False, ""),
        (pd.Timestamp("2024-06-30 18:05:59"), "ts", False, "2024-06-30 18:05"),
        (pd.Timestamp("2024-06-30"), "ts", False, "2024-06-30"),
        (1234567, "n", False, "1,234,567"),
        (np.int64(42), "n", False, "42"),
        (1234.5678, "amount", False, "1,234.57"),
        (np.float32(0.5), "x", False, "0.50"),
        (0.25, "x", True, "25.0%"),
        (0.25, "churn_rate", False, "25.0%"),
        (0.25, "rate_from_start", False, "25.0%"),
        (0.031, "share", False, "3.1%"),
        (0.9, "churn_probability", False, "90.0%"),
        (0.25, "rated", False, "0.25"),
        (5, "rate", False, "5"),  # a count in a rate-named column stays a count
        (0.0, "p_value", False, "< 0.001"),
        (0.04512, "p_holm", False, "0.045"),
        (0.6, "p_alive", False, "60.0%"),
        (37.99, "importance_pct", False, "38.0%"),
        (-68.7, "gap_vs_other_channels", False, "-68.7"),
        (-0.04, "spread_points", False, "0.0"),  # a rounded zero has no sign
        ("<b>", "comment", False, "<b>"),  # escaping is the caller's job
    ],
)
def test_format_cell(value: object, col: str, percent: bool, expected: str) -> None:
    assert format_cell(value, col, percent) == expected


# --------------------------------------------------------------------------------------
# labels
# --------------------------------------------------------------------------------------


def test_raw_column_names_become_readable_labels() -> None:
    df = LIFECYCLE_ROW.assign(clv_52w=[3580.0])
    heads = _headers(table_html(df))
    for raw in ("n_start", "p_holm", "diff_ci_low", "small_n", "clv_52w", "_"):
        assert not any(raw in h for h in heads), (raw, heads)
    assert heads == [
        "persona",
        "customers at start",
        "converted",
        "rate",
        "95% CI",
        "rate, rest",
        "difference (pts)",
        "difference 95% CI (pts)",
        "p-value",
        "p-value (Holm)",
        "sample",
        "significant",
        "CLV, next 52 weeks",
    ]


@pytest.mark.parametrize(
    ("name", "label"),
    [
        ("median_time_from_previous_days", "median time from previous (days)"),
        ("p90_time_from_start_hours", "90th percentile time from start (hours)"),
        ("n_widgets", "widgets"),
        ("csat_touch_id", "CSAT touch ID"),
        ("change_points", "change (pts)"),
        ("mean_clv_26w", "mean CLV, next 26 weeks"),
        ("loyalty_pct", "loyalty"),
        ("Share of customers", "Share of customers"),  # already a label: kept
        ("region", "region"),
    ],
)
def test_unknown_names_get_a_readable_fallback(name: str, label: str) -> None:
    assert name not in LABELS
    assert column_label(name) == label


def test_labels_can_be_overridden_per_table() -> None:
    df = pd.DataFrame({"n_start": [3], "rate": [0.5]})
    assert list(format_table(df, labels={"n_start": "shoppers"}).columns) == ["shoppers", "rate"]


def test_labels_stay_unique() -> None:
    df = pd.DataFrame({"persona": ["a"], "persona_name": ["A"]})
    assert list(format_table(df).columns) == ["persona", "persona name"]


# --------------------------------------------------------------------------------------
# values: yes/no, %, p, small n, units, intervals
# --------------------------------------------------------------------------------------


def test_flags_are_yes_or_no_and_small_samples_are_words() -> None:
    df = pd.DataFrame(
        {
            "significant": [True, False],
            "pain_point": pd.Series([True, None], dtype=object),
            "small_n": [True, False],
        }
    )
    text = table_html(df)
    assert "True" not in text and "False" not in text
    assert _cells(text) == ["yes", "yes", "small (n &lt; 30)", "no", "–", ""]


def test_rates_are_percentages_with_one_decimal_and_differences_in_points() -> None:
    row = _row(LIFECYCLE_ROW)
    assert row["rate"] == "77.4%" and row["rate, rest"] == "35.6%"
    assert row["95% CI"] == "75.8%–79.0%"
    # never 0.400125 beside +41.8%: the difference and its interval, one format
    assert row["difference (pts)"] == "+41.8"
    assert row["difference 95% CI (pts)"] == "+40.0 to +43.6"
    shares = pd.DataFrame(
        {"share": [0.1, 0.12345, 1.0], "share_low": [0.05, 0.1, 0.99], "share_high": [0.2] * 3}
    )
    cells = format_table(shares)
    assert all(re.fullmatch(r"\d+\.\d%", v) for v in cells["share"])
    assert all(re.fullmatch(r"\d+\.\d%–\d+\.\d%", v) for v in cells["95% CI"])


def test_a_share_named_column_outside_0_1_is_not_a_percentage() -> None:
    assert _row(pd.DataFrame({"share": [12.5]})) == {"share": "12.50"}


@pytest.mark.parametrize(
    ("p", "text"),
    [(0.0, "< 0.001"), (1e-32, "< 0.001"), (0.0004, "< 0.001"), (0.0234, "0.023"), (1.0, "1.000")],
)
def test_p_values_never_show_zero(p: float, text: str) -> None:
    assert format_p(p) == text
    assert _row(pd.DataFrame({"p_value": [p]})) == {"p-value": text}


def test_p_values_in_tables_never_read_p_equals_zero() -> None:
    row = _row(LIFECYCLE_ROW)
    assert row["p-value"] == row["p-value (Holm)"] == "< 0.001"


def test_units_are_in_the_labels() -> None:
    df = pd.DataFrame(
        {"median_time_from_previous_hours": [34.56], "recency_days": [12.0], "lift": [1.66]}
    )
    assert _row(df) == {
        "median time from previous (hours)": "34.6",
        "days since last order": "12.0",
        "lift (×)": "1.66",
    }


def test_intervals_share_one_column_placed_after_their_measure() -> None:
    df = pd.DataFrame(
        {
            "touchpoint": ["billing"],
            "csat_share": [0.573],
            "csat_low": [0.461],
            "csat_high": [0.679],
            "importance_pct": [73.0],
            "importance_low_pct": [13.4],
            "importance_high_pct": [99.9],
            "value": [-7.55],
            "low": [-11.72],
            "high": [-3.33],
        }
    )
    assert _row(df) == {
        "touchpoint": "billing",
        "CSAT (top-2-box)": "57.3%",
        "95% CI": "46.1%–67.9%",
        "importance": "73.0%",
        "importance 95% CI": "13.4%–99.9%",
        "value": "-7.55",
        "value 95% CI": "-11.72 to -3.33",
    }
    apart = format_table(df[["csat_share", "csat_low", "csat_high"]], intervals=False)
    assert list(apart.iloc[0]) == ["57.3%", "46.1%", "67.9%"]


def test_counts_have_thousands_separators_also_as_floats() -> None:
    df = pd.DataFrame({"previous_n": [835.0, np.nan], "customers": [1234.0, 5.0]})
    assert format_table(df).to_dict("list") == {
        "previous n": ["835", "–"],
        "customers": ["1,234", "5"],
    }


def test_formats_override_the_rules() -> None:
    df = pd.DataFrame({"estimate": [0.46449], "p_value": [0.5]})
    row = _row(df, formats={"estimate": "{:.4g}", "p_value": lambda v: f"p={v}"})
    assert row == {"estimate": "0.4645", "p-value": "p=0.5"}


# --------------------------------------------------------------------------------------
# currency
# --------------------------------------------------------------------------------------


def test_money_shows_no_currency_unless_one_is_set() -> None:
    df = pd.DataFrame({"spend_total": [1234.5], "clv_52w": [-3.0]})
    assert currency() is None
    assert _row(df) == {"total spend": "1,234.50", "CLV, next 52 weeks": "-3.00"}


def test_money_gets_the_currency_from_the_session(monkeypatch: pytest.MonkeyPatch) -> None:
    df = pd.DataFrame({"spend_total": [1234.5], "mean_clv_52w": [-3.0], "orders_n": [3]})
    monkeypatch.setenv(CURRENCY_ENV, "EUR")
    set_currency("$")  # an analyst's choice wins over the environment
    assert _row(df) == {
        "total spend": "$1,234.50",
        "mean CLV, next 52 weeks": "-$3.00",
        "orders": "3",
    }
    set_currency(None)  # back to the environment
    assert _row(df)["total spend"] == "1,234.50 EUR"


def test_money_gets_the_currency_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    # what cxkit report does for every kernel (reports.yml currency:)
    monkeypatch.setenv(CURRENCY_ENV, "£")
    assert currency() == "£"
    assert _row(pd.DataFrame({"past_repeat_spend": [10.0]})) == {"repeat spend to date": "£10.00"}
    monkeypatch.setenv(CURRENCY_ENV, "not a currency 1")  # ignored, never shown
    assert currency() is None


def test_money_columns_can_be_named_and_intervals_follow() -> None:
    set_currency("$")
    df = pd.DataFrame({"worth": [467.22], "ci_low": [415.8], "ci_high": [518.6]})
    assert _row(df, money=["worth"]) == {"worth": "$467.22", "95% CI": "$415.80–$518.60"}


@pytest.mark.parametrize("bad", ["", "dollars", "12", "<b>", "E U", None, 5])
def test_check_currency_names_what_is_allowed(bad: object) -> None:
    with pytest.raises(ValueError, match="currency symbol such as"):
        check_currency(bad)


def test_format_money() -> None:
    assert format_money(1234.5, currency_text="R$") == "R$1,234.50"
    assert format_money(-0.001, currency_text="$") == "$0.00"  # no minus on a rounded zero
    assert format_money(np.nan) == "–"
    assert format_money(1234.5, decimals=0, currency_text="JPY") == "1,234 JPY"


# --------------------------------------------------------------------------------------
# table_html, show_table, style_table
# --------------------------------------------------------------------------------------


def test_table_html_escapes_headers_and_cells() -> None:
    df = pd.DataFrame(
        {
            "<th>": ['<script>alert("x")</script>', "a & b"],
            "rate": [0.25, np.nan],
        }
    )
    text = table_html(df)
    assert "<script>" not in text
    assert _headers(text) == ["&lt;th&gt;", "rate"]
    assert _cells(text) == [
        "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;",
        "25.0%",
        "a &amp; b",
        "–",
    ]


def test_table_html_right_aligns_numbers_and_scrolls_when_wide() -> None:
    text = table_html(pd.DataFrame({"name": ["a"], "n": [5]}), caption="<cap>")
    assert '<td>a</td><td class="cx-num">5</td>' in text
    assert "<caption>&lt;cap&gt;</caption>" in text
    assert text.index('<div class="cx-table-wrap">') < text.index("<table")
    css = text[: text.index("</style>")]
    assert ".cx-table-wrap{overflow-x:auto" in css
    assert ".cx-table-wrap::-webkit-scrollbar{height:10px}" in css  # visible, not overlay
    assert ".cx-table th{white-space:normal" in css  # long labels wrap
    assert not table_html(pd.DataFrame({"n": [1]}), css=False).startswith("<style")


def test_dates_and_small_sample_flags_stay_on_one_line() -> None:
    df = pd.DataFrame(
        {"period_start": pd.to_datetime(["2024-06-27 23:55"]), "small_n": [True], "x": ["a b"]}
    )
    assert _cells(table_html(df)) == ["2024-06-27 23:55", "small (n &lt; 30)", "a b"]
    assert '<td class="cx-nowrap">2024-06-27 23:55</td>' in table_html(df)
    assert '<td class="cx-nowrap">small (n &lt; 30)</td><td>a b</td>' in table_html(df)


def test_table_html_max_rows_and_percent_columns() -> None:
    df = pd.DataFrame({"low": [0.1, 0.2, 0.3], "n": [1000, 2, 3]})
    text = table_html(df, max_rows=2, percent=["low"])
    assert _cells(text) == ["10.0%", "1,000", "20.0%", "2"]


def test_table_html_of_an_empty_frame_has_headers_only() -> None:
    text = table_html(pd.DataFrame(columns=["a", "b"]))
    assert _headers(text) == ["a", "b"] and _cells(text) == []


def test_show_table_displays_the_stakeholder_table(monkeypatch: pytest.MonkeyPatch) -> None:
    shown: list[object] = []
    monkeypatch.setattr(dmod, "display", shown.append)
    show_table(LIFECYCLE_ROW, caption="c")
    (obj,) = shown
    assert isinstance(obj, HTML) and obj.data == table_html(LIFECYCLE_ROW, caption="c")


def test_style_table_shows_the_same_text_as_a_styler() -> None:
    styler = style_table(LIFECYCLE_ROW, caption="<cap>")
    assert isinstance(styler, Styler)
    text = styler.to_html()
    expected = format_table(LIFECYCLE_ROW)
    assert [c.strip() for c in _cells(text)] == [v.replace("<", "&lt;") for v in expected.iloc[0]]
    assert [h.strip() for h in _headers(text)] == list(expected.columns)
    assert "<caption>&lt;cap&gt;</caption>" in text
    assert "cx-num" in text and 'class="cx-table"' in text


def test_style_table_escapes_everything_and_hides_the_index() -> None:
    df = pd.DataFrame({"<c>": ["<b>", "a&b"]}, index=["secret-index-label", "x"])
    text = style_table(df).to_html()
    assert "secret-index-label" not in text and "<b>" not in text
    assert "&lt;b&gt;" in text and "a&amp;b" in text and "&lt;c&gt;" in text


# --------------------------------------------------------------------------------------
# tiles
# --------------------------------------------------------------------------------------


def _tiles(**cols: list[object]) -> pd.DataFrame:
    n = len(cols["value"])
    base: dict[str, list[object]] = {
        "kpi": [f"k{i}" for i in range(n)],
        "unit": ["points"] * n,
        "available": [True] * n,
        "sentence": ["s"] * n,
    }
    return pd.DataFrame({**base, **cols})


def _values(text: str) -> list[str]:
    return re.findall(r'<p class="cx-value">(.*?)</p>', text)


def test_tile_values_by_unit() -> None:
    kpis = _tiles(
        value=[12.4, -3.6, 0.254, 41.6, 1234567.8, 20000.0, 3.14159],
        unit=["points", "points", "share", "% of revenue", "currency", "customers", "weeks"],
    )
    assert _values(tiles_html(kpis)) == [
        "+12",
        "-4",
        "25%",
        "42%",
        "1,234,568",
        "20,000",
        "3.14",
    ]
    set_currency("$")
    assert _values(tiles_html(kpis))[4] == "$1,234,568"


def test_unavailable_and_missing_tiles_show_a_dash() -> None:
    kpis = _tiles(value=[5.0, np.nan], available=[False, True])
    text = tiles_html(kpis)
    assert _values(text) == ["—", "—"]
    assert text.count('class="cx-tile cx-na"') == 1


def test_small_n_tiles_are_marked() -> None:
    kpis = _tiles(value=[5.0, 6.0], small_n=[True, False])
    text = tiles_html(kpis)
    assert text.count('class="cx-tile cx-small"') == 1
    assert text.count('class="cx-tile"') == 1


def test_tiles_escape_label_and_sentence() -> None:
    kpis = _tiles(value=[1.0], kpi=["<b>NPS</b>"], sentence=["n = 40 <script>x</script>"])
    text = tiles_html(kpis)
    assert "&lt;b&gt;NPS&lt;/b&gt;" in text
    assert "n = 40 &lt;script&gt;x&lt;/script&gt;" in text
    assert "<script>" not in text
    assert text.startswith("\n<style>") and text.endswith("</div>")


def test_show_tiles_displays_the_html(monkeypatch: pytest.MonkeyPatch) -> None:
    shown: list[object] = []
    monkeypatch.setattr(dmod, "display", shown.append)
    kpis = _tiles(value=[1.0])
    show_tiles(kpis)
    (obj,) = shown
    assert isinstance(obj, HTML) and obj.data == tiles_html(kpis)
