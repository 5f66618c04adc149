"""Tests of cxkit.lifecycle.cohorts: cohort retention and lifecycle states."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import cxkit
from cxkit import lifecycle as lc
from cxkit.errors import UsageError
from tests.lifecycle.helpers import ev_frame as _ev
from tests.lifecycle.helpers import events, mini_data


def test_cohort_retention_nan_for_unobservable():
    ev = _ev([("a", "v", 0), ("a", "v", 31), ("b", "v", 40), ("c", "v", 45), ("c", "v", 75)])
    r = lc.cohort_retention(events(ev), period="M", as_of="2024-03-31")
    assert r.index.tolist() == ["2024-01", "2024-02", "all (size-weighted)"]
    assert r.customers.tolist() == [1, 2, 3]
    assert r.loc["2024-01", 1] == 1.0 and r.loc["2024-01", 2] == 0.0
    assert r.loc["2024-02", 1] == 0.5
    assert np.isnan(r.loc["2024-02", 2])  # March... is observable? no: Feb + 2 = April
    assert r.loc["all (size-weighted)", 1] == pytest.approx(2 / 3)
    assert r.loc["all (size-weighted)", 2] == pytest.approx(0.0)
    # as_of mid-March: March is incomplete -> not observable at all
    r2 = lc.cohort_retention(events(ev), period="M", as_of="2024-03-20")
    assert np.isnan(r2.loc["2024-02", 1])
    with pytest.raises(UsageError, match="period must be one of"):
        lc.cohort_retention(events(ev), period="fortnight")


def test_cohort_retention_orders_only():
    data = mini_data()
    r = lc.cohort_retention(data, activity="orders", as_of="2024-02-29")
    assert r.loc["2024-01", "customers"] == 2  # a and b ordered in January
    assert r.loc["2024-01", 1] == 0.5  # a ordered again in February


def test_lifecycle_states():
    ev = _ev(
        [("a", "v", 0), ("a", "v", 31), ("a", "v", 70), ("b", "v", 5), ("b", "v", 65)]
    )  # a: Jan, Feb, Mar; b: Jan, Mar
    s = lc.lifecycle_states(events(ev), period="M", as_of="2024-03-31").set_index("period")
    assert s.loc["2024-01", ["new", "returning", "resurrecting", "dormant"]].tolist() == [
        2, 0, 0, 0
    ]  # fmt: skip
    assert s.loc["2024-02", ["new", "returning", "resurrecting", "dormant"]].tolist() == [
        0, 1, 0, 1
    ]  # fmt: skip
    assert s.loc["2024-03", ["new", "returning", "resurrecting", "dormant"]].tolist() == [
        0, 1, 1, 0
    ]  # fmt: skip


def test_cohort_retention_without_a_complete_period_is_empty():
    # three days in January, as of January 3: no month is complete yet
    ev = _ev([("a", "v", 0), ("b", "v", 2)])
    r = lc.cohort_retention(events(ev), period="M", as_of="2024-01-03")
    assert r.empty and list(r.columns) == ["customers", 0]
    assert (
        len(lc.cohort_retention(events(ev), period="D", as_of="2024-01-03")) == 3
    )  # 2 cohorts + average


def test_one_customer_one_order_mid_month():
    # issue 22: one order, as_of = that order (mid-month): no complete month, so no cohort
    # table, and the lifecycle analysis says so instead of failing (ufunc 'invert')
    orders = pd.DataFrame(
        {"order_id": ["o1"], "customer_id": ["c1"], "amount": [31.0],
         "ts": [pd.Timestamp("2023-08-09 10:55:55.619454")]}
    )  # fmt: skip
    data = cxkit.load({"orders": orders})
    for period in ("W", "M", "Q"):
        r = lc.cohort_retention(data, period=period)
        assert r.empty and list(r.columns) == ["customers", 0]
    res = lc.analyze(data)
    assert res.n_customers == 1 and res.cohorts is not None and res.cohorts.empty


# ---- cohort cells: n, Wilson interval and small-n flag (issue 20) ---------------------


def test_cohort_cells_hand_worked():
    # January: a, b, c (a back in Feb and Mar, b in Mar); February: d (back in March)
    ev = _ev(
        [("a", "v", 0), ("a", "v", 31), ("a", "v", 61), ("b", "v", 3), ("b", "v", 65),
         ("c", "v", 10), ("d", "v", 40), ("d", "v", 70)]
    )  # fmt: skip
    c = lc.cohort_cells(events(ev), period="M", as_of="2024-03-31")
    got = c[["cohort", "k", "customers", "active"]].values.tolist()
    assert got == [
        ["2024-01", 0, 3, 3], ["2024-01", 1, 3, 1], ["2024-01", 2, 3, 2],
        ["2024-02", 0, 1, 1], ["2024-02", 1, 1, 1],
        [lc.AVERAGE, 0, 4, 4], [lc.AVERAGE, 1, 4, 2], [lc.AVERAGE, 2, 3, 2],
    ]  # fmt: skip
    assert c.share.tolist() == pytest.approx([1, 1 / 3, 2 / 3, 1, 1, 1, 0.5, 2 / 3])
    # Wilson 95% of 1 in 3 by hand: (p + z²/2n ± z·sqrt(p(1-p)/n + z²/4n²)) / (1 + z²/n)
    z, n, p = 1.959963984540054, 3, 1 / 3
    centre, half = (p + z**2 / (2 * n)), z * np.sqrt(p * (1 - p) / n + z**2 / (4 * n**2))
    jan1 = c[(c.cohort == "2024-01") & (c.k == 1)].iloc[0]
    assert jan1.ci_low == pytest.approx((centre - half) / (1 + z**2 / n))
    assert jan1.ci_high == pytest.approx((centre + half) / (1 + z**2 / n))
    assert c.small_n.all()  # every cell rests on fewer than 30 customers
    # the retention table is these shares laid out by cohort and k
    grid = lc.cohort_retention(events(ev), period="M", as_of="2024-03-31")
    pd.testing.assert_frame_equal(grid, lc.cohort_grid(c))
    assert grid.loc["2024-02", 1] == 1.0 and np.isnan(grid.loc["2024-02", 2])


def test_cohort_cells_empty_without_a_complete_period():
    c = lc.cohort_cells(events(_ev([("a", "v", 0)])), period="M", as_of="2024-01-03")
    assert c.empty and list(c.columns) == [
        "cohort", "k", "customers", "active", "share", "ci_low", "ci_high", "small_n"
    ]  # fmt: skip
    assert lc.cohort_grid(c).empty


def _direct_cells(data: cxkit.CXData, as_of: pd.Timestamp) -> pd.DataFrame:
    """Monthly cohort cells of any activity, computed straight in pandas."""
    act = pd.concat(
        [data.table(t).select("customer_id", "ts").to_pandas() for t in ("events", "orders")]
    )
    act = act[act.ts <= as_of]
    act["m"] = act.ts.dt.year * 12 + act.ts.dt.month - 1
    act = act[["customer_id", "m"]].drop_duplicates()
    act["cohort"] = act.groupby("customer_id").m.transform("min")
    act["k"] = act.m - act.cohort
    month_end = as_of.normalize() == (as_of + pd.offsets.MonthEnd(0)).normalize()
    last = as_of.year * 12 + as_of.month - 1 - (0 if month_end else 1)
    size = act[act.k == 0].groupby("cohort").size()
    grid = pd.MultiIndex.from_product([size.index, range(last - size.index.min() + 1)])
    cells = act.groupby(["cohort", "k"]).size().reindex(grid, fill_value=0)
    cells = cells.rename("active").rename_axis(["cohort", "k"]).reset_index()
    cells = cells[cells.cohort + cells.k <= last]
    cells["customers"] = cells.cohort.map(size)
    pooled = cells.groupby("k")[["customers", "active"]].sum().reset_index()
    pooled["cohort"] = lc.AVERAGE
    cells["cohort"] = [f"{c // 12:04d}-{c % 12 + 1:02d}" for c in cells.cohort]
    out = pd.concat([cells, pooled], ignore_index=True)[["cohort", "k", "customers", "active"]]
    out["share"] = out.active / out.customers
    return out


def test_cohort_cells_equal_a_direct_pandas_computation_on_the_demo(demo_data):
    end = cxkit.resolve_as_of(demo_data, None)
    got = lc.cohort_cells(demo_data, period="M")
    want = _direct_cells(demo_data, end)
    cols = ["cohort", "k", "customers", "active", "share"]
    pd.testing.assert_frame_equal(
        got[cols].reset_index(drop=True), want[cols], check_dtype=False, check_exact=False
    )
    lo, hi = cxkit.stats.wilson_ci(want.active, want.customers)
    assert got.ci_low.to_numpy() == pytest.approx(lo) and got.ci_high.to_numpy() == pytest.approx(
        hi
    )
    assert got.small_n.tolist() == (want.customers < cxkit.stats.MIN_N).tolist()
    # the report's retention table holds exactly these shares (its numbers do not move)
    grid = lc.cohort_retention(demo_data, period="M")
    per = want[want.cohort != lc.AVERAGE].pivot(index="cohort", columns="k", values="share")
    np.testing.assert_array_equal(grid.iloc[:-1, 1:].to_numpy(dtype=float), per.to_numpy())


def test_cohort_cell_intervals_cover_the_true_retention():
    """Daily cohorts with known retention: ~95% of the cells' intervals hold the truth."""
    rng = np.random.default_rng(20)
    truth = {1: 0.6, 2: 0.35, 3: 0.15}
    rows, cid = [], 0
    for day in range(300):
        for _ in range(int(rng.integers(30, 81))):
            cid += 1
            rows.append((f"c{cid}", "v", day))
            rows += [(f"c{cid}", "v", day + k) for k, p in truth.items() if rng.random() < p]
    data = events(_ev(rows))
    as_of = (pd.Timestamp("2024-01-01") + pd.Timedelta(days=302)).strftime("%Y-%m-%d")
    c = lc.cohort_cells(data, period="D", as_of=as_of, max_periods=3)
    c = c[(c.cohort != lc.AVERAGE) & (c.k >= 1)]
    assert len(c) == 900 and (c.customers >= 30).all()
    p = c.k.map(truth)
    covered = ((c.ci_low <= p) & (p <= c.ci_high)).mean()
    tol = 3.5 * np.sqrt(0.95 * 0.05 / len(c))  # binomial tolerance of 900 cells
    assert abs(covered - 0.95) < tol, covered
    # and not by being wide: typically 2 × 1.96 × sqrt(p(1-p)/n), as the normal interval
    width = (c.ci_high - c.ci_low) / (2 * 1.96 * np.sqrt(p * (1 - p) / c.customers))
    assert 0.93 < width.median() < 1.05


def test_cohort_heatmap_hover_has_interval_and_n_and_small_cohorts_are_grey():
    # 40 customers in January (most come back), 5 in February: a small cohort
    rows = [(f"j{i}", "v", 0) for i in range(40)] + [(f"j{i}", "v", 32) for i in range(30)]
    rows += [(f"f{i}", "v", 35) for i in range(5)] + [("f0", "v", 62)]
    res = lc.analyze(events(_ev(rows)), as_of="2024-03-31")
    # the analysis keeps the cells its retention table is laid out from
    pd.testing.assert_frame_equal(
        res.cohort_cells, lc.cohort_cells(events(_ev(rows)), as_of="2024-03-31")
    )
    pd.testing.assert_frame_equal(res.cohorts, lc.cohort_grid(res.cohort_cells))
    fig = lc.cohort_chart(res)
    main = fig.data[0]
    assert "95% CI" in main.hovertemplate and "customers" in main.hovertemplate
    custom = np.asarray(main.customdata, dtype=float)
    cells = res.cohort_cells.set_index(["cohort", "k"])
    jan1 = cells.loc[("2024-01", 1)]
    assert custom[0, 1].tolist() == pytest.approx([40, 30, 100 * jan1.ci_low, 100 * jan1.ci_high])
    # the February cohort (5 customers) is drawn in the grey trace, not the colour scale
    assert np.isnan(np.asarray(main.z, dtype=float)[1]).all()
    grey = fig.data[1]
    assert grey.name == "fewer than 30 customers"
    assert np.asarray(grey.z, dtype=float)[1, :2].tolist() == [100.0, 20.0]
    assert "fewer than 30 customers" in fig.layout.annotations[0].text
    # the stated figures carry their interval and n
    pooled = cells.loc[(lc.AVERAGE, 1)]
    assert res.takeaways()["cohorts"] == (
        f"On average {pooled.share:.0%} are active 1 period(s) later "
        f"(95% CI {pooled.ci_low:.0%}–{pooled.ci_high:.0%}, n = 45)."
    )
    m1 = next(f for f in res.findings() if f.metric == "month1_retention")
    assert m1.n == 45 and f"95% CI {100 * m1.ci_low:.1f}%–{100 * m1.ci_high:.1f}%" in m1.sentence
