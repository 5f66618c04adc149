"""Run-over-run changes (cxkit.changes), checked on simulated runs with a known truth.

* When nothing changed, Holm keeps the chance of flagging anything at or below 5%
  (family-wise), checked over many simulated pairs of runs of 20 findings each.
* A planted change beyond the noise is flagged, with its interval covering the truth.
* The difference intervals cover the true difference 95% of the time, for shares
  (two-proportion) and for NPS (from each run's adjusted-Wald interval).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from scipy import stats as sps

from cxkit import changes
from cxkit.stats import nps_ci

SIMS = 400


def _share_finding(metric: str, k: int, n: int, **extra: object) -> dict:
    return {
        "domain": "lifecycle",
        "metric": metric,
        "value": k / n,
        "n": n,
        "unit": "share",
        "sentence": f"{metric}: {k / n:.1%}",
        "extra": extra,
    }


def _nps_finding(scores: np.ndarray) -> dict:
    n = len(scores)
    prom, det = int((scores >= 9).sum()), int((scores <= 6).sum())
    value, lo, hi = nps_ci(prom, det, n)
    return {
        "domain": "voc",
        "metric": "nps",
        "value": float(value),
        "ci_low": float(lo),
        "ci_high": float(hi),
        "n": n,
        "unit": "points",
        "sentence": "NPS",
    }


def _binomial_upper(successes: int, trials: int) -> float:
    """The one-sided 99.9% upper bound of a binomial proportion (Clopper-Pearson)."""
    return float(sps.beta.ppf(0.999, successes + 1, trials - successes))


def test_key_separates_subjects_and_ignores_numbers() -> None:
    a = changes.finding_key({"domain": "lifecycle", "metric": "drop", "extra": {"step": "cart"}})
    b = changes.finding_key({"domain": "lifecycle", "metric": "drop", "extra": {"step": "pay"}})
    c = changes.finding_key(
        {"domain": "lifecycle", "metric": "drop", "extra": {"step": "cart", "share": 0.4}}
    )
    assert a != b and a == c


def test_nothing_changed_flags_nothing_in_at_least_95_percent_of_runs() -> None:
    rng = np.random.default_rng(1)
    truths = rng.uniform(0.05, 0.6, size=20)
    n = 3000
    any_flagged = 0
    for _ in range(SIMS):
        before = [_share_finding(f"m{i}", rng.binomial(n, p), n) for i, p in enumerate(truths)]
        after = [_share_finding(f"m{i}", rng.binomial(n, p), n) for i, p in enumerate(truths)]
        out = changes.compare_findings(before, after)
        assert len(out) == 20 and out.p_holm.notna().all()
        any_flagged += bool(out.changed.any())
    # Holm's family-wise error rate is at most 5%; allow the simulation's own noise
    assert any_flagged / SIMS <= 0.05 + 0.03, any_flagged


def test_a_planted_change_is_flagged_and_its_interval_covers_the_truth() -> None:
    rng = np.random.default_rng(2)
    n, hits, covered = 4000, 0, 0
    for _ in range(200):
        before = [_share_finding("churn_rate", rng.binomial(n, 0.20), n)]
        before += [_share_finding(f"m{i}", rng.binomial(n, 0.3), n) for i in range(9)]
        after = [_share_finding("churn_rate", rng.binomial(n, 0.25), n)]
        after += [_share_finding(f"m{i}", rng.binomial(n, 0.3), n) for i in range(9)]
        out = changes.compare_findings(before, after).set_index("metric")
        row = out.loc["churn_rate"]
        hits += bool(row.changed)
        covered += bool(row.diff_low <= 0.05 <= row.diff_high)
    assert hits / 200 >= 0.95  # 5 points at n = 4,000 per run is far beyond the noise
    assert covered / 200 >= 0.90


@pytest.mark.parametrize("kind", ["share", "nps"])
def test_difference_intervals_cover_the_true_difference(kind: str) -> None:
    rng = np.random.default_rng(3)
    trials, covered = SIMS, 0
    for _ in range(trials):
        if kind == "share":
            n1, n2 = 800, 1200
            b = _share_finding("rate", rng.binomial(n1, 0.30), n1)
            a = _share_finding("rate", rng.binomial(n2, 0.34), n2)
            truth = 0.04
        else:
            p_before, p_after = [0.2, 0.3, 0.5], [0.15, 0.3, 0.55]  # detractor, passive, promoter
            scores = np.array([3, 8, 10])
            b = _nps_finding(scores[rng.choice(3, size=600, p=p_before)])
            a = _nps_finding(scores[rng.choice(3, size=900, p=p_after)])
            truth = 100 * ((0.55 - 0.15) - (0.5 - 0.2))
        row = changes.compare_findings([b], [a]).iloc[0]
        covered += bool(row.diff_low <= truth <= row.diff_high)
    # 95% nominal: the share of misses must not be far above 5%
    assert 1 - covered / trials <= _binomial_upper(int(0.05 * trials), trials), covered


def test_findings_without_interval_or_n_are_listed_as_not_tested() -> None:
    before = [{"domain": "personas", "metric": "n_personas", "value": 5, "unit": "personas"}]
    after = [{"domain": "personas", "metric": "n_personas", "value": 6, "unit": "personas"}]
    row = changes.compare_findings(before, after).iloc[0]
    assert row.test.startswith("not tested") and not row.changed and row["diff"] == 1


def test_history_store_keeps_runs_and_finds_the_previous_good_one(tmp_path: Path) -> None:
    assert changes.previous_findings(tmp_path) is None
    for run_id in ("20261201-000000-aaaa", "20261202-000000-bbbb"):
        changes.save_findings(
            tmp_path,
            changes.RunFindings(
                run_id, f"{run_id[:8]}", "2026-11-30", [_share_finding("m", 10, 100)]
            ),
        )
    assert changes.history_runs(tmp_path) == ["20261201-000000-aaaa", "20261202-000000-bbbb"]
    prev = changes.previous_findings(tmp_path, before="20261203-000000-cccc")
    assert prev is not None and prev.run_id == "20261202-000000-bbbb"
    prev = changes.previous_findings(tmp_path, before="20261202-000000-bbbb")
    assert prev is not None and prev.run_id == "20261201-000000-aaaa"
    (tmp_path / changes.HISTORY_DIR / "20261203-000000-dddd.json").write_text("{broken")
    assert changes.previous_findings(tmp_path).run_id == "20261202-000000-bbbb"
    saved = json.loads((tmp_path / "_history" / "20261201-000000-aaaa.json").read_text())
    assert saved["findings"][0]["metric"] == "m"


def test_describe_change_says_direction_before_after_and_interval() -> None:
    before = [_share_finding("repeat_rate", 300, 1000)]
    after = [_share_finding("repeat_rate", 400, 1000)]
    row = changes.compare_findings(before, after).iloc[0]
    text = changes.describe_change(row)
    assert text.startswith("repeat_rate rose from 30.0% to 40.0% (+10.0 points, 95% CI +")
    assert "Holm p < 0.001" in text
