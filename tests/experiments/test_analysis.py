"""The readout on the session's 2,000-customer demo, whose experiment synth planted."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import cxkit
from cxkit import experiments, synth
from cxkit.errors import UsageError
from cxkit.experiments.analysis import look_dates
from cxkit.stats import holm

ROOT = Path(__file__).resolve().parents[2]
METRICS = ("conversion", "churn", "spend", "nps")


@pytest.fixture(scope="module")
def truth(demo_dir: Path) -> dict:
    return json.loads((demo_dir / "_truth.json").read_text())["experiment"]


@pytest.fixture(scope="module")
def result(demo_data: cxkit.CXData) -> experiments.ExperimentResult:
    return experiments.analyze(demo_data)


def _by_metric(res: experiments.ExperimentResult) -> pd.DataFrame:
    assert res.readout is not None
    return res.readout.set_index("metric")


def test_arms_equal_what_synth_realised(result: experiments.ExperimentResult, truth: dict) -> None:
    """The engine-side outcomes agree with synth's own count of the same definitions."""
    ro = _by_metric(result)
    arms = truth["arms"]
    for metric in METRICS:
        for arm, col in (("control", "control"), ("treatment", "treatment")):
            assert ro.loc[metric, col] == pytest.approx(arms[arm][metric], abs=1e-9), metric
    assert ro.loc["conversion", "n_treatment"] == arms["treatment"]["n"]
    assert ro.loc["churn", "n_control"] == arms["control"]["churn_n"]
    assert ro.loc["nps", "n_treatment"] == arms["treatment"]["nps_n"]
    counts = result.assignments.set_index("variant").customers.to_dict()
    assert counts == {"control": arms["control"]["n"], "treatment": arms["treatment"]["n"]}


def test_against_the_base_simulation_the_difference_is_the_planted_effect(
    demo_dir: Path, result: experiments.ExperimentResult, truth: dict
) -> None:
    """Same assignments on the untreated data: the change in each difference is the effect.

    The base simulation is what every customer does without the treatment, so the
    readout there is the arms' chance difference alone; subtracting it leaves exactly
    the planted effect on the treated (an identity, not a statistical bound).
    """
    base = synth.generate(2_000, seed=7, experiment=False)
    tables = {**base.tables, "assignments": pd.read_parquet(demo_dir / "assignments.parquet")}
    aa = _by_metric(experiments.analyze(cxkit.load(tables), sequential=False))
    ro = _by_metric(result)
    for metric in METRICS:
        effect = ro.loc[metric, "diff"] - aa.loc[metric, "diff"]
        assert effect == pytest.approx(truth["effect_on_treated"][metric], abs=1e-9), metric
        # and the treatment moved each metric the planted way
        sign = -1 if metric == "churn" else 1
        assert sign * truth["effect_on_treated"][metric] > 0


def test_the_fair_split_passes_and_a_planted_mismatch_is_caught(
    demo_dir: Path, result: experiments.ExperimentResult
) -> None:
    srm = result.srm.iloc[0]
    assert not srm["mismatch"] and srm["p_value"] > 0.001
    assert srm["sentence"].startswith("The loyalty_offer split matches the plan: ")
    # a logging bug loses 40% of the treatment arm's assignments
    data = cxkit.load(demo_dir)
    a = data.to_pandas("assignments")
    treated = a.index[a.variant == "treatment"]
    lost = np.random.default_rng(0).choice(treated, int(0.4 * len(treated)), replace=False)
    broken = experiments.analyze(data.replace(assignments=data.con.create_table(
        "h5_lossy", a.drop(index=lost), overwrite=True)), sequential=False)  # fmt: skip
    bad = broken.srm.iloc[0]
    assert bad["mismatch"] and bad["p_value"] < 1e-4
    assert bad["sentence"].startswith("Sample ratio mismatch in loyalty_offer: ")
    assert "cannot be trusted" in bad["sentence"]
    assert broken.headline().startswith("Sample ratio mismatch in loyalty_offer")
    assert broken.readout.verdict.str.startswith("not trustworthy (sample ratio mismatch)").all()
    first = max(broken.findings(), key=lambda f: f.importance)
    assert first.metric == "sample_ratio" and first.extra["mismatch"]


def test_cuped_narrows_every_interval_on_the_demo(result: experiments.ExperimentResult) -> None:
    ro = _by_metric(result)
    for metric in ("conversion", "churn", "spend"):
        r = ro.loc[metric]
        assert r["variance_reduction"] > 0.05, metric
        assert r["cuped_high"] - r["cuped_low"] < r["ci_high"] - r["ci_low"], metric
        assert r["estimate"] == "cuped"
    # the always-valid interval is wider than the fixed one and contains it
    assert (ro.seq_low < ro.ci_low).all() and (ro.seq_high > ro.ci_high).all()


def test_holm_over_the_metrics_and_the_small_groups(result: experiments.ExperimentResult) -> None:
    ro = result.readout
    raw = np.where(ro.estimate == "cuped", ro.cuped_p, ro.p_value)
    np.testing.assert_allclose(ro.p_holm, holm(raw))
    assert (ro.p_holm >= raw - 1e-12).all()
    nps = ro.set_index("metric").loc["nps"]
    assert nps["small_n"] and nps["verdict"] == "too few customers to tell"  # 2k demo: < 30


def test_findings_state_interval_n_and_adjusted_p(result: experiments.ExperimentResult) -> None:
    found = {f.metric: f for f in result.findings()}
    assert set(found) == {"sample_ratio", *(f"effect_{m}" for m in METRICS)}
    conv = found["effect_conversion"]
    assert "95% CI" in conv.sentence and "Holm-adjusted p" in conv.sentence
    assert f"n={conv.n:,}" in conv.sentence and conv.unit == "percentage points"
    ro = _by_metric(result).loc["conversion"]
    assert conv.value == pytest.approx(100 * ro["cuped_diff"])
    assert conv.ci_low == pytest.approx(100 * ro["cuped_low"])
    assert found["effect_nps"].small_n and "too few customers" in found["effect_nps"].sentence
    table = result.readout_table()
    assert list(table.columns[2:6]) == ["metric", "n (control / treatment)", "control", "treatment"]
    assert table.loc[0, "metric"] == "conversion (an order within 30 days)"


def test_sequential_looks_grow_to_the_readout(result: experiments.ExperimentResult) -> None:
    seq = result.sequential
    ro = _by_metric(result)
    for metric, path in seq.groupby("metric"):
        path = path.sort_values("look")
        assert path.n.is_monotonic_increasing
        last = path.iloc[-1]
        assert last.n == ro.loc[metric, "n_control"] + ro.loc[metric, "n_treatment"]
        assert last["diff"] == pytest.approx(ro.loc[metric, "diff"])
        assert ((path.seq_low <= path.ci_low) & (path.seq_high >= path.ci_high)).all()


def test_plots_draw_every_metric(result: experiments.ExperimentResult) -> None:
    fig = experiments.plot_effects(result.readout)
    assert len(fig.data) == 3 * len(METRICS)
    # the 2k demo is too small for any metric to move detectably
    assert fig.layout.title.text == "loyalty_offer: no metric moved detectably"
    path = result.sequential[result.sequential.metric == "conversion"]
    fig = experiments.plot_sequential(path, title="<b>x</b>")
    assert fig.layout.title.text == "&lt;b&gt;x&lt;/b&gt;"
    assert len(fig.data) == 5


def test_no_assignments_is_a_note_never_an_error() -> None:
    res = experiments.analyze(cxkit.load(ROOT / "data" / "cdnow"))
    assert res.readout is None and res.srm is None and res.readout_table() is None
    assert res.not_available == [
        "The experiment readout is not available: this needs the table 'assignments'"
    ]
    assert res.findings() == [] and res.headline() == res.not_available[0]


def _three_arms() -> dict[str, pd.DataFrame]:
    n = 900
    ids = [f"c{i}" for i in range(n)]
    at = pd.Timestamp("2024-03-01")
    variant = np.array(["A", "B", "C"])[np.arange(n) % 3]
    rank = np.arange(n) // 3  # 0..299 within each variant
    buys = rank < np.select([variant == "A", variant == "B"], [90, 93], 150)  # 30%, 31%, 50%
    orders = pd.DataFrame(
        {
            "order_id": [f"o{i}" for i in range(int(buys.sum()))],
            "customer_id": np.array(ids)[buys],
            "ts": at + pd.Timedelta(days=3),
            "amount": 10.0,
        }
    )
    assignments = pd.DataFrame(
        {"customer_id": ids, "experiment": "price", "variant": variant, "assigned_at": at}
    )
    late = pd.DataFrame(
        {
            "order_id": ["last"],
            "customer_id": ["c0"],
            "ts": [pd.Timestamp("2024-12-31")],
            "amount": 1.0,
        }
    )
    return {"assignments": assignments, "orders": pd.concat([orders, late])}


def test_several_variants_without_a_control_named_control() -> None:
    res = experiments.analyze(cxkit.load(_three_arms()), metrics=["conversion", "spend"])
    assert "price has no variant named 'control': 'A' is taken as the control." in res.notes
    ro = res.readout
    assert list(zip(ro.variant, ro.metric, strict=True)) == [
        ("B", "conversion"), ("B", "spend"), ("C", "conversion"), ("C", "spend"),
    ]  # fmt: skip
    assert (ro.control_variant == "A").all()
    c = ro[(ro.variant == "C") & (ro.metric == "conversion")].iloc[0]
    assert c["significant"] and c["verdict"] == "better: higher"
    b = ro[(ro.variant == "B") & (ro.metric == "conversion")].iloc[0]
    assert not b["significant"] and b["verdict"] == "no detectable difference"
    assert res.srm.iloc[0]["planned"] == "33/33/33"


def test_bad_options_say_what_is_valid() -> None:
    data = cxkit.load(_three_arms())
    with pytest.raises(UsageError, match=r"unknown metric\(s\) \['ctr'\]; valid: conversion"):
        experiments.analyze(data, metrics=["ctr"])
    with pytest.raises(UsageError, match="peeks must be 'week' or 'month', got 'day'"):
        experiments.analyze(data, peeks="day")
    with pytest.raises(UsageError, match=r"planned gives no share for variant\(s\) \['C'\]"):
        experiments.analyze(data, planned={"A": 0.5, "B": 0.5})
    res = experiments.analyze(data, experiment="nope")
    assert res.not_available == ["The assignments table has no usable assignments for nope."]


def test_monthly_looks_fall_on_month_ends_and_the_last_look_is_the_end() -> None:
    ts = pd.Timestamp
    done = pd.Series([ts("2024-01-10"), ts("2024-02-20"), ts("2024-04-05 12:00")])
    looks = look_dates(done, end=ts("2024-12-31"), freq="month")
    assert list(looks) == [ts("2024-01-31"), ts("2024-02-29"), ts("2024-03-31"), done[2]]
    weekly = look_dates(done, end=ts("2024-01-25"), freq="week")
    assert list(weekly) == [ts("2024-01-14"), ts("2024-01-21"), ts("2024-01-25")]
    res = experiments.analyze(cxkit.load(_three_arms()), peeks="month")
    groups = [g for _, g in res.sequential.groupby(["variant", "metric"])["look"]]
    assert len(groups) == 4  # (pandas 3 refused the old month alias: this raised)
    for looks in groups:
        assert looks.is_monotonic_increasing and all(t.is_month_end for t in looks.iloc[:-1])
