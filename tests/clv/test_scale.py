"""CLV in scale mode (cxkit.clv.scale) against memory mode on the demo data.

The demo (2,000 customers) has more than 800 buyers; the settings below keep every
collect under 800 rows, so a per-customer collect of the summary would exceed the limit,
Gamma-Gamma is fitted on a sample of 600 of the repeat customers and the values are
written in three batches.

The report's page in scale mode is checked in tests/test_scale.py
(``test_report_runs_in_scale_mode_and_says_so``, with the other reports').
"""

from __future__ import annotations

import numpy as np
import pytest

import cxkit
from cxkit import clv, scale
from cxkit.clv.scale import ScaleClvResult
from cxkit.errors import NotAvailableError, UsageError
from cxkit.scale import ScaleSettings
from tests.collects import Collects

SMALL = ScaleSettings(mode="scale", sample_rows=600, max_collect_rows=800, batch_rows=300)


def test_clv_scale_mode_matches_memory_mode_within_tolerances(demo_data: cxkit.CXData) -> None:
    """Scale mode gives the memory-mode figures.

    Tolerances: BG/NBD parameters, the holdout check, the lapsed share, P(alive) bands,
    the lapsing count and the customers per channel are exact (fitted on, or counted
    from, the same distinct rows, the likelihood summed in the same order: parameters to
    1e-12 relative); the total and mean CLV
    within 1% and the top-20% share within 1 point (Gamma-Gamma is fitted on a sample of
    the repeat customers); the total's parameter interval within 2%, its predictive
    interval's width within a factor 2 (simulated). No result handed
    from DuckDB to Python has more than ``max_collect_rows`` rows.
    """
    mem = clv.analyze(demo_data, mode="memory")
    with Collects.in_scale_mode(SMALL) as collects:
        res = clv.analyze(demo_data)  # the mode from CXKIT_SCALE
    assert isinstance(res, ScaleClvResult) and not isinstance(mem, ScaleClvResult)
    collects.assert_at_most(SMALL.max_collect_rows)
    assert len(mem.summary) > SMALL.max_collect_rows  # memory mode would have exceeded it

    np.testing.assert_allclose(res.bg.params_, mem.bg.params_, rtol=1e-12)
    np.testing.assert_allclose(res.bg_check.params_, mem.bg_check.params_, rtol=1e-12)
    eligible = int(((mem.summary.frequency > 0) & (mem.summary.monetary_value > 0)).sum())
    assert res.gg_sample["population"] == eligible
    # stratified by frequency (1, ..., 10+): each stratum's share rounds on its own
    assert res.gg_sample["sample"] == res.gg.n_customers_ <= SMALL.sample_rows + 10 < eligible
    col = mem.clv_column
    total_m = float(mem.values[col].sum())
    assert res.value_stats["total"] == pytest.approx(total_m, rel=0.01)
    assert res.value_stats["mean"] == pytest.approx(mem.values[col].mean(), rel=0.01)
    assert res.customers_n == len(mem.summary)
    assert res.shares[0.2] == pytest.approx(clv.top_share(mem.values[col]), abs=0.01)
    for k in ("customers", "actual"):
        assert res.holdout[k] == mem.holdout[k]
    for k in ("expected", "relative_error", "mae_per_customer"):
        assert res.holdout[k] == pytest.approx(mem.holdout[k], rel=1e-9)
    assert res.by_frequency.customers.tolist() == mem.by_frequency.customers.tolist()
    np.testing.assert_allclose(
        res.by_frequency.actual_mean_purchases, mem.by_frequency.actual_mean_purchases
    )
    assert res.lapsed == pytest.approx(mem.lapsed)
    assert res.p_alive.customers.tolist() == mem.p_alive.customers.tolist()
    assert res.valuable_customers == mem.valuable_customers
    assert res.lapsing_n == len(mem.lapsing)
    assert res.lapsing.customer_id.tolist() == mem.lapsing.customer_id.head(20).tolist()
    assert res.lapsing_spend == pytest.approx(mem.lapsing.past_repeat_spend.sum())
    got = res.by_channel.set_index("acquisition_channel").sort_index()
    want = mem.by_channel.set_index("acquisition_channel").sort_index()
    assert got.customers.tolist() == want.customers.tolist()
    np.testing.assert_allclose(got[f"mean_{col}"], want[f"mean_{col}"], rtol=0.01)
    iv_s, iv_m = res.intervals.total, mem.intervals.total
    assert iv_s["ci_low"] == pytest.approx(iv_m["ci_low"], rel=0.02)
    assert iv_s["ci_high"] == pytest.approx(iv_m["ci_high"], rel=0.02)
    # the predictive interval: the purchase-randomness variance from other simulated
    # futures than memory mode's (4 per customer): its half-width within a factor 2
    assert iv_s["pred_low"] < iv_s["ci_low"] < iv_s["ci_high"] < iv_s["pred_high"]
    half_s, half_m = (iv["pred_high"] - iv["pred_low"] for iv in (iv_s, iv_m))
    assert 0.5 < half_s / half_m < 2
    top = res.most_valuable(20)
    # Gamma-Gamma on a sample moves values slightly: near-ties may swap places
    common = set(top.customer_id) & set(mem.most_valuable(20).customer_id)
    assert len(common) >= 18 and top[col].is_monotonic_decreasing
    assert (top[f"{col}_low"] <= top[col]).all() and (top[col] <= top[f"{col}_high"]).all()

    # the same findings, the same claims
    f_s, f_m = res.findings(), mem.findings()
    assert [f.metric for f in f_s] == [f.metric for f in f_m]
    same = {"lapsed_share_repeaters", "lapsing_high_value", "holdout_error"}
    for a, b in zip(f_s, f_m, strict=True):
        if a.metric in same:
            assert a.sentence == b.sentence
        assert a.n == b.n
    # the values table in the engine holds every customer, once
    table = scale.open_table(demo_data.con, res.values_table)
    assert table.count().to_pandas() == res.customers_n
    assert table.customer_id.nunique().to_pandas() == res.customers_n
    assert float(table[col].sum().to_pandas()) == pytest.approx(res.value_stats["total"])
    s = res.mode_sentence
    n = res.customers_n
    assert s.startswith(f"Scale mode: BG/NBD fitted on all {n:,} customers' distinct")
    g = res.gg_sample
    assert f"Gamma-Gamma on a stratified sample of {g['sample']:,} of {eligible:,} repeat" in s
    assert f"{n:,} customer values written to table cxkit_clv_values" in s
    assert "no per-customer frame over 800 rows collected" in s
    with pytest.raises(NotAvailableError, match="in scale mode the customer values stay"):
        res.scored  # noqa: B018


def test_clv_analyze_checks_the_mode(demo_data: cxkit.CXData) -> None:
    with pytest.raises(UsageError, match=r"mode must be one of \['memory', 'scale'\], got 'big'"):
        clv.analyze(demo_data, mode="big")
