"""cxkit.findings: the Finding record, finding_from_rate, and how notebooks show findings."""

from __future__ import annotations

import math

import pandas as pd
import pytest
from IPython.display import HTML

from cxkit import findings as fmod
from cxkit.findings import (
    IMPORTANCE_MAX,
    Finding,
    finding_from_rate,
    findings_frame,
    headline,
    not_available,
    show_findings,
    takeaway,
)
from cxkit.stats import MIN_N


def _f(sentence: str = "s", importance: float = 1.0, **kw: object) -> Finding:
    return Finding(
        domain="voc", metric="nps", value=1.0, sentence=sentence, importance=importance, **kw
    )  # type: ignore[arg-type]


@pytest.fixture
def shown(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The HTML each display helper emits."""
    out: list[str] = []

    def capture(obj: object) -> None:
        assert isinstance(obj, HTML)
        out.append(obj.data)

    monkeypatch.setattr(fmod, "display", capture)
    return out


# --------------------------------------------------------------------------------------
# Finding
# --------------------------------------------------------------------------------------


def test_finding_defaults_and_significance() -> None:
    f = _f()
    assert (f.unit, f.ci_low, f.ci_high, f.n, f.comparison, f.p_value) == (
        "",
        None,
        None,
        None,
        None,
        None,
    )
    assert f.small_n is False and f.extra == {}
    assert f.significant is None  # no test, no verdict
    assert _f(p_value=0.049).significant is True
    assert _f(p_value=0.05).significant is False


def test_finding_is_frozen() -> None:
    with pytest.raises(AttributeError):
        _f().value = 2.0  # type: ignore[misc]


def test_to_dict_has_every_field_and_significant() -> None:
    d = _f(p_value=0.01, n=40, extra={"k": 1}).to_dict()
    assert d["significant"] is True and d["n"] == 40 and d["extra"] == {"k": 1}
    assert set(d) == {
        "domain",
        "metric",
        "value",
        "sentence",
        "unit",
        "ci_low",
        "ci_high",
        "n",
        "comparison",
        "p_value",
        "importance",
        "small_n",
        "extra",
        "significant",
    }


# --------------------------------------------------------------------------------------
# finding_from_rate
# --------------------------------------------------------------------------------------


def _rate(**kw: object) -> Finding:
    args: dict[str, object] = {"domain": "churn", "metric": "rate", "sentence": "x"}
    args.setdefault("importance", 5)
    row = kw.pop("row")
    args.update(kw)
    return finding_from_rate(row, **args)  # type: ignore[arg-type]


def test_reads_value_interval_and_n() -> None:
    f = _rate(row={"value": 0.25, "ci_low": 0.2, "ci_high": 0.3, "n": 120})
    assert (f.value, f.ci_low, f.ci_high, f.n) == (0.25, 0.2, 0.3, 120)
    assert isinstance(f.n, int) and f.small_n is False
    assert (f.domain, f.metric, f.sentence, f.unit, f.importance) == (
        "churn",
        "rate",
        "x",
        "share",
        5.0,
    )


def test_small_n_from_n_below_min_n() -> None:
    assert _rate(row={"value": 0.5, "n": MIN_N - 1}).small_n is True
    assert _rate(row={"value": 0.5, "n": MIN_N}).small_n is False


def test_small_n_column_wins_over_n() -> None:
    assert _rate(row={"value": 0.5, "n": 5, "small_n": False}).small_n is False
    assert _rate(row={"value": 0.5, "n": 500, "small_n": True}).small_n is True


def test_missing_small_n_cell_falls_back_to_n() -> None:
    assert _rate(row={"value": 0.5, "n": 5, "small_n": None}).small_n is True
    assert _rate(row={"value": 0.5, "n": 5, "small_n": float("nan")}).small_n is True


def test_explicit_small_n_wins_over_everything() -> None:
    f = _rate(row={"value": 0.5, "n": 5, "small_n": True}, small_n=False)
    assert f.small_n is False


def test_without_n_nothing_is_small() -> None:
    f = _rate(row={"value": 0.5}, n=None)
    assert f.n is None and f.small_n is False
    g = _rate(row={"value": 0.5, "n": float("nan")})
    assert g.n is None and g.small_n is False


def test_own_column_names_scale_and_no_interval() -> None:
    row = pd.Series({"share": 0.123, "share_low": 0.1, "share_high": 0.15, "customers": 900})
    f = _rate(row=row, value="share", low="share_low", high="share_high", n="customers", scale=100)
    assert f.value == pytest.approx(12.3)
    assert (f.ci_low, f.ci_high) == (pytest.approx(10.0), pytest.approx(15.0))
    assert f.n == 900
    g = _rate(row={"nps": 12.0, "n": 40}, value="nps", low=None, high=None)
    assert (g.ci_low, g.ci_high) == (None, None)


def test_missing_interval_cells_become_none_and_missing_value_nan() -> None:
    f = _rate(row={"value": None, "ci_low": float("nan"), "ci_high": None, "n": 40})
    assert math.isnan(f.value)
    assert f.ci_low is None and f.ci_high is None


def test_p_value_from_a_column_or_a_number() -> None:
    assert _rate(row={"value": 1, "p": 0.01}, p_value="p").p_value == 0.01
    assert _rate(row={"value": 1}, p_value=0.2).p_value == 0.2
    assert _rate(row={"value": 1, "p": None}, p_value="p").p_value is None
    assert _rate(row={"value": 1}).p_value is None
    assert _rate(row={"value": 1}, p_value="p", comparison="vs last year").comparison == (
        "vs last year"
    )


def test_extra_is_copied() -> None:
    extra = {"segment": "app"}
    f = _rate(row={"value": 1}, extra=extra)
    extra["segment"] = "web"
    assert f.extra == {"segment": "app"}


@pytest.mark.parametrize("importance", [0, 0.5, 7, IMPORTANCE_MAX])
def test_importance_on_the_0_to_10_scale(importance: float) -> None:
    assert _rate(row={"value": 1}, importance=importance).importance == float(importance)


@pytest.mark.parametrize("importance", [-0.1, 10.5, 100])
def test_importance_outside_0_to_10_is_refused(importance: float) -> None:
    with pytest.raises(ValueError, match=r"importance must be between 0 and 10\.0, got"):
        _rate(row={"value": 1}, importance=importance)


# --------------------------------------------------------------------------------------
# findings_frame
# --------------------------------------------------------------------------------------


def test_findings_frame_one_row_per_finding() -> None:
    df = findings_frame([_f("a", 2, p_value=0.01), _f("b", 1)])
    assert list(df["sentence"]) == ["a", "b"]
    assert list(df["significant"]) == [True, None]
    assert "extra" in df.columns and len(df) == 2


def test_findings_frame_of_nothing_is_empty() -> None:
    assert findings_frame([]).empty


# --------------------------------------------------------------------------------------
# display helpers
# --------------------------------------------------------------------------------------


def test_show_findings_orders_by_importance_and_escapes(shown: list[str]) -> None:
    items = [
        _f("low", 1),
        _f("<script>alert(1)</script> top", 9),
        _f("mid & small", 5, small_n=True),
        _f("mid second", 5),
    ]
    show_findings(items)
    (text,) = shown
    assert text.startswith('<div class="cx-findings"><ul>')
    lis = text.split("<li")[1:]
    assert [li.split(">", 1)[1].split("</li")[0] for li in lis] == [
        "&lt;script&gt;alert(1)&lt;/script&gt; top",
        "mid &amp; small",  # ties keep their order
        "mid second",
        "low",
    ]
    assert "<script>" not in text
    assert lis[1].startswith(' class="cx-small"') and lis[2].startswith(' class=""')


def test_show_findings_top_and_empty(shown: list[str]) -> None:
    show_findings([_f("a", 1), _f("b", 3), _f("c", 2)], top=2)
    assert "<li" in shown[0] and "b" in shown[0] and "c" in shown[0]
    assert ">a<" not in shown[0]
    show_findings([])
    assert shown[1] == '<div class="cx-findings"><p>No findings.</p></div>'


def test_headline_takeaway_and_not_available_escape(shown: list[str]) -> None:
    headline("NPS <b>+12</b>")
    takeaway("a & b")
    not_available(ValueError("needs <orders>"))
    assert shown == [
        '<p class="cx-headline">NPS &lt;b&gt;+12&lt;/b&gt;</p>',
        '<p class="cx-takeaway">a &amp; b</p>',
        '<div class="cx-not-available">needs &lt;orders&gt;</div>',
    ]
