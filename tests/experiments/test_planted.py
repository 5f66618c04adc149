"""The planted uplift is recovered: on the demo-size synth, and across synth seeds.

The target is synth's ``effect_on_treated`` (``_truth.json``): the mean over treated
customers of their outcome minus what the base simulation says they would have done
without the treatment. A randomised comparison of the arms estimates it; its 95%
interval should hold it 95% of the time.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import cxkit
from cxkit import experiments, synth

pytestmark = [pytest.mark.slow]

METRICS = ("conversion", "churn", "spend", "nps")


@pytest.fixture(scope="module")
def demo20k() -> tuple[pd.DataFrame, dict]:
    """The readout of the 20,000-customer demo (seed 42, what ``make demo`` writes)."""
    d = synth.generate(20_000, seed=42)
    res = experiments.analyze(cxkit.load(d.tables), sequential=False)
    return res.readout.set_index("metric"), d.info["experiment"]


def test_demo_planted_uplift_recovered_within_its_95_interval(
    demo20k: tuple[pd.DataFrame, dict],
) -> None:
    ro, truth = demo20k
    effect = truth["effect_on_treated"]
    for metric in ("conversion", "churn", "spend"):
        r = ro.loc[metric]
        assert r["ci_low"] <= effect[metric] <= r["ci_high"], metric
        assert r["cuped_low"] <= effect[metric] <= r["cuped_high"], metric
        assert (
            r["significant"]
            and r["verdict"] == f"better: {'lower' if metric == 'churn' else 'higher'}"
        )
    # the planted mechanism's size: conversion up, churn down, spend up, NPS up
    assert effect["conversion"] > 0.03 and effect["churn"] < -0.02
    assert effect["spend"] > 10 and effect["nps"] > 10


def test_demo_cuped_narrows_every_interval_and_stays_near_the_raw_estimate(
    demo20k: tuple[pd.DataFrame, dict],
) -> None:
    ro, _ = demo20k
    for metric in METRICS:
        r = ro.loc[metric]
        raw_width, cuped_width = r["ci_high"] - r["ci_low"], r["cuped_high"] - r["cuped_low"]
        assert cuped_width < raw_width, metric
        assert cuped_width == pytest.approx(
            raw_width * np.sqrt(1 - r["variance_reduction"]), rel=0.02
        )
        # the adjustment moves the estimate by less than one raw standard error
        assert abs(r["cuped_diff"] - r["diff"]) < r["se"], metric
    assert ro.loc["spend", "variance_reduction"] > 0.3  # pre-period spend predicts spend well


def test_planted_uplift_within_the_95_interval_across_seeds() -> None:
    """Eight synth seeds: each metric's interval holds the planted effect at least 6 times.

    At a true 95% coverage, 5 or fewer of 8 happens with probability 0.6%.
    """
    rows = []
    for seed in range(1, 9):
        d = synth.generate(4_000, seed=seed)
        ro = experiments.analyze(cxkit.load(d.tables), sequential=False).readout
        for _, r in ro.iterrows():
            target = d.info["experiment"]["effect_on_treated"][r["metric"]]
            rows.append(
                {
                    "metric": r["metric"],
                    "raw": r["ci_low"] <= target <= r["ci_high"],
                    "cuped": r["cuped_low"] <= target <= r["cuped_high"],
                    "error": r["cuped_diff"] - target,
                    "se": r["cuped_se"],
                }
            )
    df = pd.DataFrame(rows)
    by = df.groupby("metric")
    assert (by.raw.sum() >= 6).all(), by.raw.sum()
    assert (by.cuped.sum() >= 6).all(), by.cuped.sum()
    # no systematic error: the mean error is within 3 standard errors of zero
    assert (by.error.mean().abs() < 3 * by.se.mean() / np.sqrt(8)).all()
