"""cxkit.display: tables and KPI tiles, every text escaped, numbers formatted alike."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest
from IPython.display import HTML
from pandas.io.formats.style import Styler

from cxkit import display as dmod
from cxkit.display import (
    format_cell,
    show_table,
    show_tiles,
    style_table,
    table_html,
    tiles_html,
)


def _cells(text: str) -> list[str]:
    return re.findall(r"<td(?:\s[^>]*)?>(.*?)</td>", text, re.S)


def _headers(text: str) -> list[str]:
    return re.findall(r"<th(?:\s[^>]*)?>(.*?)</th>", text, re.S)


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
        (np.bool_(False), "flag", False, ""),
        (pd.Timestamp("2024-06-30 18:05:59"), "ts", False, "2024-06-30 18:05"),
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
        ("<b>", "comment", False, "<b>"),  # escaping is the caller's job
    ],
)
def test_format_cell(value: object, col: str, percent: bool, expected: str) -> None:
    assert format_cell(value, col, percent) == expected


# --------------------------------------------------------------------------------------
# table_html
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
    assert text.startswith('<table class="cx-widget-table"')


def test_table_html_max_rows_and_percent_columns() -> None:
    df = pd.DataFrame({"low": [0.1, 0.2, 0.3], "n": [1000, 2, 3]})
    text = table_html(df, max_rows=2, percent=["low"])
    assert _cells(text) == ["10.0%", "1,000", "20.0%", "2"]


def test_table_html_of_an_empty_frame_has_headers_only() -> None:
    text = table_html(pd.DataFrame(columns=["a", "b"]))
    assert _headers(text) == ["a", "b"] and _cells(text) == []


# --------------------------------------------------------------------------------------
# style_table
# --------------------------------------------------------------------------------------


@pytest.fixture
def frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "n": [1234, 5],
            "x": [1.5, np.nan],
            "rate": [0.25, 0.5],
            "ok": [True, False],
            "ts": pd.to_datetime(["2024-01-02", None]),
            "<c>": ["<b>", "a&b"],
        }
    )


def test_style_table_formats_numbers_and_escapes_everything(frame: pd.DataFrame) -> None:
    styler = style_table(frame, percent=["rate"], caption="<cap>")
    assert isinstance(styler, Styler)
    text = styler.to_html()
    assert _cells(text) == [
        "1,234",
        "1.50",
        "25.0%",
        "yes",
        "2024-01-02",
        "&lt;b&gt;",
        "5",
        "–",
        "50.0%",
        "",
        "–",
        "a&amp;b",
    ]
    assert [h.strip() for h in _headers(text)] == ["n", "x", "rate", "ok", "ts", "&lt;c&gt;"]
    assert "<caption>&lt;cap&gt;</caption>" in text
    assert "<b>" not in text


def test_style_table_formats_override_and_rates_are_not_guessed(frame: pd.DataFrame) -> None:
    text = style_table(frame, formats={"x": "{:.3f}", "n": lambda v: f"#{v}"}).to_html()
    cells = _cells(text)
    assert cells[0] == "#1234" and cells[1] == "1.500"
    assert cells[2] == "0.25"  # style_table percent columns are named, never guessed


def test_style_table_hides_the_index() -> None:
    df = pd.DataFrame({"a": [1]}, index=["secret-index-label"])
    assert "secret-index-label" not in style_table(df).to_html()


def test_show_table_displays_the_styler(
    monkeypatch: pytest.MonkeyPatch, frame: pd.DataFrame
) -> None:
    shown: list[object] = []
    monkeypatch.setattr(dmod, "display", shown.append)
    show_table(frame, percent=["rate"], caption="c")
    (styler,) = shown
    assert isinstance(styler, Styler)
    assert "25.0%" in styler.to_html() and "<caption>c</caption>" in styler.to_html()


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
