"""The one CLV pipeline: analyze(), its result and findings, and the summary's use of it."""

from __future__ import annotations

import ast
import doctest
import inspect
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import cxkit
from cxkit import cache, clv, datasets, summary
from cxkit.clv import analysis
from cxkit.errors import ConvergenceError, DataError, NotAvailableError
from cxkit.findings import Finding
from cxkit.report import notebook_parameters
from tests.clv._data import CAL_END, OBS_END, orders

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def cdnow_result() -> clv.ClvResult:
    return clv.analyze(datasets.cdnow(sample=True), as_of=OBS_END, calibration_end=CAL_END)


def test_findings(
    cdnow_summary: pd.DataFrame, cdnow_bg: clv.BetaGeo, cdnow_gg: clv.GammaGamma
) -> None:
    values = clv.customer_value(cdnow_summary, cdnow_bg, cdnow_gg)
    found = clv.findings(
        cdnow_summary,
        cdnow_bg,
        clv_frame=values,
        holdout=clv.holdout_totals(cdnow_summary, cdnow_bg),
    )
    assert all(isinstance(f, Finding) and f.domain == "clv" for f in found)
    metrics = {f.metric for f in found}
    assert {"total_clv_52w", "top20_share_52w", "holdout_error", "lapsing_high_value"} <= metrics
    assert all(f.n is not None for f in found)
    json.dumps([f.to_dict() for f in found])


def test_result_findings_carry_intervals_and_n(cdnow_result: clv.ClvResult) -> None:
    found = cdnow_result.findings()
    by = {f.metric: f for f in found}
    assert [f.metric for f in found] == [
        "total_clv_52w",
        "top20_share_52w",
        "lapsing_high_value",
        "lapsed_share_repeaters",
        "holdout_error",
    ]
    assert [f.importance for f in found] == [10, 9, 8, 6, 5]  # the 0-10 scale
    assert all(f.n is not None and f.n > 0 and not f.small_n for f in found)
    for metric in ("total_clv_52w", "lapsed_share_repeaters"):
        f = by[metric]
        assert f.ci_low is not None and f.ci_low < f.value < f.ci_high
    total = by["total_clv_52w"]
    assert total.value == pytest.approx(cdnow_result.values.clv_52w.sum())
    assert total.n == len(cdnow_result.summary) == 2_357
    assert by["holdout_error"].n == len(cdnow_result.calibration) == 2_357


def test_result_tables_and_models(cdnow_result: clv.ClvResult, cdnow_summary) -> None:
    res = cdnow_result
    assert res.domain == "clv"
    assert res.clv_column == "clv_52w"
    assert set(res.tables()) >= {"summary", "values", "p_alive", "lapsing", "calibration"}
    assert len(res.scored) == len(res.summary) == len(res.values)
    assert res.lapsing.p_alive.lt(0.5).all()
    # the holdout check is the published CDNOW set-up: same summary, same fit
    pd.testing.assert_frame_equal(res.calibration, cdnow_summary)
    assert clv.compare_with_published(res.bg_check).ok.all()
    assert res.holdout == clv.holdout_totals(cdnow_summary, res.bg_check)
    assert len(res.by_frequency) == 8 and len(res.cumulative) == 78
    assert res.gg is not None and res.gg.n_customers_ > 946  # on the whole period
    table = res.params_table()
    assert table.model.tolist() == ["BG/NBD"] * 4 + ["Gamma-Gamma"] * 3
    # CDNOW has no customers table: value by channel is named as not available
    assert res.by_channel is None
    assert res.notes["by_channel"].startswith("CLV by acquisition channel is not available")
    assert res.not_available == list(res.notes.values())


def test_as_of_is_resolved_as_documented() -> None:
    data = datasets.cdnow(sample=True)
    res = clv.analyze(data, as_of=OBS_END, calibration_end=CAL_END)
    assert res.as_of == pd.Timestamp("1998-06-30 23:59:59.999999")  # a date: its whole day
    assert res.calibration_end == pd.Timestamp("1997-09-30 23:59:59.999999")
    assert res.summary.attrs["observation_end"] == "1998-06-30"
    # None: the data's own cut, else its latest timestamp
    assert clv.analyze(data, holdout_weeks=None).as_of == cxkit.resolve_as_of(data, None)
    cut = data.upto("1998-01-31")
    res_cut = clv.analyze(cut, holdout_weeks=None)
    assert res_cut.as_of == pd.Timestamp("1998-01-31 23:59:59.999999")
    pd.testing.assert_frame_equal(
        res_cut.values, clv.analyze(data, as_of="1998-01-31", holdout_weeks=None).values
    )
    # holdout_weeks counts back from the as_of day: 39 weeks before 1998-06-30
    weeks = clv.analyze(data, as_of=OBS_END, holdout_weeks=39)
    assert weeks.calibration_end == pd.Timestamp("1997-09-30 23:59:59.999999")
    pd.testing.assert_frame_equal(weeks.values, res.values)


def test_spend_model_needs_enough_repeat_customers() -> None:
    data = datasets.cdnow(sample=True)
    res = clv.analyze(data, as_of=CAL_END, holdout_weeks=None, min_repeat_customers=10_000)
    assert res.gg is None
    assert "at least 10,000 customers with a repeat purchase" in res.notes["gamma_gamma"]
    expected = clv.customer_value(res.summary, res.bg, None)
    pd.testing.assert_frame_equal(res.values, expected)
    assert res.params_table().model.unique().tolist() == ["BG/NBD"]
    # with enough of them (946 >= 30), Gamma-Gamma is fitted: the published figures
    fitted = clv.analyze(data, as_of=CAL_END, holdout_weeks=None)
    assert clv.compare_with_published(fitted.bg, fitted.gg).ok.all()


def test_heavy_tailed_spend_falls_back_to_observed_means() -> None:
    """A fitted q <= 1 (infinite mean spend) is not used; the report says so."""
    rng = np.random.default_rng(0)
    rows = []
    for i in range(600):
        nu = rng.gamma(0.6, 1 / 5.0)  # q = 0.6: the population mean spend is infinite
        start = int(rng.integers(0, 150))
        k = int(rng.choice([1, 1, 1, 2, 3, 5, 8]))
        span = int(rng.integers(1, 200 - start)) if k > 1 else 1
        days = sorted({start, *(start + rng.integers(0, span, k - 1)).tolist()})
        for d in days:
            ts = str(pd.Timestamp("2024-01-01") + pd.Timedelta(days=int(d)))
            rows.append((f"c{i:03d}", ts, float(rng.gamma(4, 1 / nu))))
    res = clv.analyze(orders(rows), holdout_weeks=None)
    assert res.gg is None
    assert "fitted q = 0.6" in res.notes["gamma_gamma"]
    pd.testing.assert_frame_equal(res.values, clv.customer_value(res.summary, res.bg, None))
    # these 600 customers hardly drop out: BG/NBD's a and b are not pinned down (only
    # their ratio), so no intervals are drawn from the fit, and the report says why
    assert res.intervals is None
    assert "does not pin down a, b" in res.notes["intervals"]
    assert res.notes["intervals"] in res.not_available


def test_parts_the_data_cannot_support() -> None:
    # a month of CDNOW: too short for a 26-week holdout, the rest is still computed
    res = clv.analyze(datasets.cdnow(sample=True), as_of="1997-01-31")
    assert res.holdout is None and res.calibration is None and res.calibration_end is None
    assert res.notes["holdout"].startswith("The holdout check is not available:")
    assert "holdout_error" not in {f.metric for f in res.findings()}
    assert res.gg is not None  # 74 repeat customers
    assert {f.metric: f.small_n for f in res.findings()}["lapsing_high_value"]  # ~15 of them
    with pytest.raises(NotAvailableError, match="needs the table 'orders'"):
        clv.analyze(cxkit.load({"customers": pd.DataFrame({"customer_id": ["a"]})}))
    # a BG/NBD fit on three customers cannot work: the error says so
    rows = [("a", "2024-01-01", 5.0), ("a", "2024-01-09", 7.0), ("b", "2024-01-03", 4.0)]
    with pytest.raises((DataError, ConvergenceError)):
        clv.analyze(orders(rows))


def test_value_by_labels(cdnow_result: clv.ClvResult) -> None:
    ids = cdnow_result.summary.customer_id
    labels = pd.Series(
        np.where(cdnow_result.summary.frequency > 0, "repeat", "one-time"),
        index=pd.Index(ids, name="customer_id"),
        name="kind",
    )
    by_series = cdnow_result.value_by(labels)
    assert by_series.kind.tolist() == ["repeat", "one-time"]
    assert by_series.customers.sum() == len(ids)
    by_frame = cdnow_result.value_by(labels.reset_index(), by="kind")
    pd.testing.assert_frame_equal(by_series, by_frame)


def test_the_report_run_computes_the_fit_once(
    demo_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(cache.CACHE_ENV, str(tmp_path / "cache"))
    data = cxkit.load(demo_dir)
    before = cache.cache_stats()
    notebook = clv.analyze(data, holdout_weeks=26, horizon_weeks=52, margin=1.0, top=0.2)
    end = notebook.as_of
    summary_call = clv.analyze(data.upto(end), as_of=end, horizon_weeks=52)  # as summary does
    after = cache.cache_stats()
    assert after["misses"] - before["misses"] == 1
    assert after["hits"] - before["hits"] == 1
    pd.testing.assert_frame_equal(summary_call.values, notebook.values)


@pytest.mark.slow
def test_summary_clv_is_the_clv_report_figure(
    demo_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The executive summary's CLV total is clv.analyze's, as the CLV report shows it.

    As in a report run (one cache folder), the summary reads the CLV report's result.
    """
    monkeypatch.setenv(cache.CACHE_ENV, str(tmp_path / "cache"))
    data = cxkit.load(demo_dir)
    res = clv.analyze(data)  # what notebook 30 computes with its default parameters
    report_total = {f.metric: f for f in res.findings()}["total_clv_52w"]
    es = summary.executive_summary(data, random_state=0)
    tile = es.kpis.set_index("kpi").loc["Total CLV (52 weeks)"]
    assert tile["value"] == report_total.value
    assert tile["sentence"] == report_total.sentence
    summary_total = {f.metric: f for f in es.domains["clv"].findings}["total_clv_52w"]
    assert summary_total == report_total
    assert es.scorecard["clv_52w"].sum() == pytest.approx(report_total.value, rel=1e-12)
    # without a shared cache the two runs compute the same figure (DuckDB's parallel
    # float sums make the last digits vary from run to run)
    monkeypatch.delenv(cache.CACHE_ENV)
    again = {f.metric: f for f in clv.analyze(data).findings()}["total_clv_52w"]
    assert again.value == pytest.approx(report_total.value, rel=1e-8)


def _parameter_values(notebook: Path) -> dict[str, object]:
    """The values the notebook's parameters cell assigns."""
    source = notebook_parameters(notebook) or {}
    return {k: ast.literal_eval(ast.parse(v).body[0].value) for k, v in source.items()}


def test_notebook_defaults_are_analyze_defaults() -> None:
    """The parameters a clv.html reader sees are the settings the summary uses."""
    defaults = {
        name: p.default
        for name, p in inspect.signature(inspect.unwrap(clv.analyze)).parameters.items()
        if p.default is not inspect.Parameter.empty
    }
    nb = _parameter_values(ROOT / "notebooks" / "30_clv.ipynb")
    shared = [k for k in nb if k in defaults]
    assert set(shared) >= {
        "as_of",
        "holdout_weeks",
        "calibration_end",
        "horizon_weeks",
        "annual_discount_rate",
        "margin",
        "top",
    }
    assert {k: nb[k] for k in shared} == {k: defaults[k] for k in shared}
    summary_nb = _parameter_values(ROOT / "notebooks" / "90_executive_summary.ipynb")
    assert summary_nb["horizon_weeks"] == defaults["horizon_weeks"]


def test_docstring_examples_run() -> None:
    modules = (clv, clv.rfm, clv.bgnbd, clv.gamma_gamma, clv.value, clv.checks, clv.analysis)
    for module in (*modules, datasets):
        result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
        assert result.failed == 0, module.__name__


def test_finding_builders_give_the_memory_findings_from_counts(
    cdnow_result: clv.ClvResult,
) -> None:
    """Scale mode builds its findings from counts with the same helpers: same findings."""
    res = cdnow_result
    col = res.clv_column
    label = col.removeprefix("clv_")
    values = res.values[col].to_numpy()
    mean, low, high, _ = cxkit.stats.mean_ci(values)
    lapsed = res.lapsed
    counts = analysis.lapsed_counts(
        lapsed["lapsed"],
        lapsed["n"],
        customers=len(res.summary),
        median_p_alive=lapsed["median_p_alive"],
    )
    assert counts == lapsed
    stats = {"total": float(values.sum()), "mean": mean, "ci_low": low, "ci_high": high}
    built = [
        analysis.lapsed_finding(counts),
        analysis.holdout_finding(res.holdout),
        analysis.total_value_finding(
            {**stats, "n": len(values)},
            label=label,
            annual_discount_rate=res.annual_discount_rate,
            intervals=res.intervals,
        ),
        analysis.top_share_finding(
            clv.top_share(values, top=res.top),
            n=len(values),
            top=res.top,
            label=label,
            intervals=res.intervals,
        ),
        analysis.lapsing_finding(len(res.lapsing), res.valuable_customers, top=res.top),
    ]
    assert sorted(built, key=lambda f: -f.importance) == res.findings()
    # without repeat customers or a finite holdout error there is no such finding
    assert (
        analysis.lapsed_finding(analysis.lapsed_counts(0, 0, customers=5, median_p_alive=np.nan))
        is None
    )
    assert analysis.holdout_finding(None) is None
    assert analysis.holdout_finding({**res.holdout, "relative_error": np.nan}) is None
    scale_total = analysis.total_value_finding(
        {**stats, "n": len(values)}, label=label, annual_discount_rate=0.1, extra={"mode": "scale"}
    )
    assert scale_total.extra == {"mode": "scale"}
    assert "Model uncertainty" not in scale_total.sentence


def test_gamma_gamma_shortfall_says_how_many_it_needs() -> None:
    assert analysis.gamma_gamma_shortfall(30, 30) is None
    note = analysis.gamma_gamma_shortfall(29, 30)
    assert note is not None
    assert "at least 30 customers with a repeat purchase of positive value, got 29" in note


def test_a_failed_holdout_check_becomes_a_note() -> None:
    data = datasets.cdnow(sample=True)
    options = {
        "horizon_weeks": 52,
        "annual_discount_rate": 0.1,
        "margin": 1.0,
        "top": 0.2,
        "min_repeat_customers": 30,
        "n_draws": 0,
        "random_state": 0,
    }
    run = analysis.ClvRun.start(
        data, as_of=OBS_END, calibration_end=CAL_END, holdout_weeks=None, **options
    )
    assert run.calibration_end == pd.Timestamp("1997-09-30 23:59:59.999999")

    def fails() -> analysis.HoldoutCheck:
        raise DataError("no repeat purchases in the calibration period")

    assert run.check_holdout(fails) is None
    assert run.notes == {
        "holdout": "The holdout check is not available: no repeat purchases in the "
        "calibration period"
    }
    fields = run.result_fields(None)
    assert fields["calibration_end"] is None and fields["holdout"] is None
    assert fields["not_available"] == list(run.notes.values())
    # no calibration period: the check is not attempted, nothing is noted
    none = analysis.ClvRun.start(
        data, as_of=OBS_END, calibration_end=None, holdout_weeks=None, **options
    )
    assert none.calibration_end is None
    assert none.check_holdout(fails) is None and none.notes == {}
