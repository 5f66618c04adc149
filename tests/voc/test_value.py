"""Survey-to-value linkage (cxkit.voc.value): planted truth, interval coverage, the words.

The planted data are built here: customers answer NPS once, then order in the 90 days
after with a Poisson number of orders whose rate depends on their group, and carry a
CLV and a churn probability drawn around known group means. The estimated gaps'
intervals must cover the planted ones; the intervals' coverage is checked by
simulation against a binomial tolerance; a gap that is only the persona mix must
vanish within personas.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sst

import cxkit
from cxkit import churn, clv, voc
from cxkit.errors import UsageError
from cxkit.stats import MIN_N
from tests.backends import postgres_server  # noqa: F401 - fixture

T0 = pd.Timestamp("2024-01-01")
AS_OF = T0 + pd.Timedelta(days=400)
#: The planted truth: orders per 90 days after the answer, mean amount, CLV and churn means.
RATE = {"promoter": 2.0, "passive": 1.5, "detractor": 1.2}
AMOUNT = 50.0
CLV_MEAN = {"promoter": 300.0, "passive": 250.0, "detractor": 200.0}
CHURN_MEAN = {"promoter": 0.30, "passive": 0.38, "detractor": 0.45}
SIZES = {"promoter": 400, "passive": 200, "detractor": 400}


def planted(seed: int = 0, sizes: dict[str, int] = SIZES) -> dict[str, pd.DataFrame]:
    """Responses, orders, CLV values and churn scores with the planted group effects."""
    rng = np.random.default_rng(seed)
    groups = np.repeat(list(sizes), list(sizes.values()))
    n = len(groups)
    ids = np.array([f"C{i:05d}" for i in range(n)])
    answered = (T0 + pd.to_timedelta(rng.uniform(0, 200, n), unit="D")).floor("s")
    score = np.select(
        [groups == "promoter", groups == "passive"],
        [rng.integers(9, 11, n), rng.integers(7, 9, n)],
        rng.integers(0, 7, n),
    )
    # an older answer of the opposite kind: only the latest counts
    old = T0 - pd.Timedelta(days=30)
    responses = pd.DataFrame(
        {
            "response_id": [f"R{i:05d}" for i in range(2 * n)],
            "customer_id": np.concatenate([ids, ids]),
            "ts": np.concatenate([answered.to_numpy(), np.full(n, old.to_datetime64())]),
            "survey": "nps",
            "score": np.concatenate([score, 10 - score]),
        }
    )
    lam = np.array([RATE[g] for g in groups])
    k = rng.poisson(lam)
    cust = np.repeat(np.arange(n), k)
    after = (answered[cust] + pd.to_timedelta(rng.uniform(1e-3, 90, len(cust)), unit="D")).floor(
        "s"
    )
    # orders outside the window (before the answer, and after it) must not count in it
    before = (answered - pd.to_timedelta(rng.uniform(1, 60, n), unit="D")).floor("s")
    late = (answered + pd.to_timedelta(rng.uniform(91, 150, n), unit="D")).floor("s")
    ts = np.concatenate([after.to_numpy(), before.to_numpy(), late.to_numpy()])
    who = np.concatenate([ids[cust], ids, ids])
    amount = rng.gamma(2.0, AMOUNT / 2.0, len(ts))
    orders = pd.DataFrame(
        {"order_id": [f"O{i:06d}" for i in range(len(ts))], "customer_id": who, "ts": ts}
    )
    orders["amount"] = amount
    clv_values = pd.DataFrame(
        {"customer_id": ids, "clv_52w": rng.gamma(1.5, [CLV_MEAN[g] / 1.5 for g in groups])}
    )
    a = 4.0  # Beta(a, b) with the planted mean
    b = [a * (1 - CHURN_MEAN[g]) / CHURN_MEAN[g] for g in groups]
    scores = pd.DataFrame({"customer_id": ids, "churn_probability": rng.beta(a, b)})
    return {"responses": responses, "orders": orders, "clv": clv_values, "churn": scores}


def stand_ins(p: dict[str, pd.DataFrame], *, scores_from: str = "model") -> tuple[object, object]:
    """CLV and churn results with the fields the linkage reads (the planted values)."""
    clv_result = SimpleNamespace(values=p["clv"], horizon_weeks=52, clv_column="clv_52w")
    churn_result = SimpleNamespace(
        scores=p["churn"],
        definition=SimpleNamespace(horizon_days=90),
        scores_from=scores_from,
        scores_label=churn.MODEL_LABELS[scores_from],
    )
    return clv_result, churn_result


@pytest.fixture(scope="module")
def linked() -> voc.SurveyValueResult:
    p = planted()
    data = cxkit.load({"responses": p["responses"], "orders": p["orders"]})
    clv_result, churn_result = stand_ins(p)
    return voc.survey_value(data, as_of=AS_OF, clv=clv_result, churn=churn_result)  # type: ignore[arg-type]


def test_planted_gaps_lie_in_their_95_percent_intervals(linked: voc.SurveyValueResult) -> None:
    t = linked.by_nps.set_index(["measure", "nps_group"])
    truth = {
        "revenue_after_90d": {g: RATE[g] * AMOUNT for g in RATE},
        "ordered_after_90d": {g: 1 - np.exp(-RATE[g]) for g in RATE},
        "clv_52w": CLV_MEAN,
        "churn_probability": CHURN_MEAN,
    }
    for measure, means in truth.items():
        for g in ("passive", "detractor"):
            r = t.loc[(measure, g)]
            planted_gap = means[g] - means["promoter"]
            assert r["diff_low"] <= planted_gap <= r["diff_high"], (measure, g, r.to_dict())
            assert r["ci_low"] <= means[g] <= r["ci_high"], (measure, g)
        assert t.loc[(measure, "promoter"), "n"] == SIZES["promoter"]
        assert t.loc[(measure, "detractor"), "diff_high"] < 0 or measure == "churn_probability"
    # the detractors' planted gaps are clear: the intervals exclude no difference
    assert t.loc[("churn_probability", "detractor"), "diff_low"] > 0
    # spend to date also counts the orders before and long after the answer
    to_date = t.loc[("spend_to_date", "promoter"), "value"]
    assert to_date > t.loc[("revenue_after_90d", "promoter"), "value"] + 1.5 * AMOUNT


def test_the_findings_state_the_planted_gaps_with_their_intervals(
    linked: voc.SurveyValueResult,
) -> None:
    by = {f.metric: f for f in linked.findings()}
    assert list(by) == ["detractor_clv_gap_52w", "detractor_revenue_gap_90d", "detractor_churn_gap"]
    f = by["detractor_clv_gap_52w"]
    assert f.ci_low <= CLV_MEAN["detractor"] - CLV_MEAN["promoter"] <= f.ci_high
    assert f.unit == "currency" and f.n == SIZES["detractor"] + SIZES["promoter"]
    assert not f.small_n
    gap = -f.value
    assert f.sentence.startswith(f"A detractor is worth {gap:,.2f} less than a promoter")
    assert f"95% CI {-f.ci_high:,.2f} to {-f.ci_low:,.2f} less" in f.sentence
    assert "n = 400 detractors, 400 promoters" in f.sentence
    c = by["detractor_churn_gap"]
    assert c.unit == "percentage points"
    assert c.ci_low <= 100 * (CHURN_MEAN["detractor"] - CHURN_MEAN["promoter"]) <= c.ci_high
    assert f"is {c.value:.1f} points higher than promoters'" in c.sentence
    assert "churn scores from Gradient boosting (calibrated))" in c.sentence
    r = by["detractor_revenue_gap_90d"]
    assert r.ci_low <= (RATE["detractor"] - RATE["promoter"]) * AMOUNT <= r.ci_high
    assert f"whose 90 days had passed by {AS_OF:%Y-%m-%d}" in r.sentence
    assert (
        linked.title()
        == f"Detractors are worth {gap:,.2f} less than promoters over the next 52 weeks"
    )


def test_the_window_counts_only_orders_strictly_after_the_answer_and_finished_windows() -> None:
    responses = pd.DataFrame(
        {
            "response_id": ["r1", "r2", "r3", "r4"],
            "customer_id": ["a", "a", "b", "c"],
            "ts": pd.to_datetime(
                ["2024-01-01 00:00", "2024-02-01 12:00", "2024-01-10 00:00", "2024-05-20 00:00"]
            ),
            "survey": "nps",
            "score": [10, 3, 9, 7],
        }
    )
    orders = pd.DataFrame(
        {
            "order_id": ["o1", "o2", "o3", "o4", "o5", "o6"],
            "customer_id": ["a", "a", "a", "b", "b", "c"],
            # a: at the answer (not after), inside, one second past the 30 days
            "ts": pd.to_datetime(
                [
                    "2024-02-01 12:00:00",
                    "2024-02-15 00:00:00",
                    "2024-03-02 12:00:01",
                    "2024-02-09 00:00:00",
                    "2024-01-05 00:00:00",
                    "2024-05-25 00:00:00",
                ]
            ),
            "amount": [1.0, 2.0, 4.0, 8.0, 16.0, 32.0],
        }
    )
    t = voc.linked_customers(
        cxkit.load({"responses": responses, "orders": orders}), as_of="2024-06-01", window_days=30
    ).set_index("customer_id")
    assert t["nps_group"].tolist() == ["detractor", "promoter", "passive"]  # latest answers
    assert t.loc["a", "revenue_after_30d"] == 2.0
    assert t.loc["b", "revenue_after_30d"] == 8.0  # the order before the answer is not in it
    assert np.isnan(t.loc["c", "revenue_after_30d"])  # its 30 days are not over by as_of
    assert np.isnan(t.loc["c", "ordered_after_30d"])
    assert t["spend_to_date"].tolist() == [7.0, 24.0, 32.0]
    with pytest.raises(UsageError, match="window_days must be"):
        voc.linked_customers(cxkit.load({"responses": responses}), window_days=0)


def test_compare_groups_hand_worked() -> None:
    t = pd.DataFrame(
        {
            "nps_group": ["promoter"] * 4 + ["detractor"] * 3 + ["passive"],
            "x": [10.0, 12.0, 14.0, 16.0, 6.0, 8.0, 13.0, 5.0],
            "bought": [1.0, 1.0, 1.0, 0.0, 1.0, 0.0, 0.0, 1.0],
        }
    )
    g = voc.compare_groups(t, "x").set_index("nps_group")
    det = g.loc["detractor"]
    welch = sst.ttest_ind([6.0, 8.0, 13.0], [10.0, 12.0, 14.0, 16.0], equal_var=False)
    ci = welch.confidence_interval(0.95)
    assert det["diff"] == pytest.approx(9.0 - 13.0)
    assert (det["diff_low"], det["diff_high"]) == pytest.approx((ci.low, ci.high))
    assert det["p_value"] == pytest.approx(welch.pvalue)
    m = sst.t.interval(0.95, 2, loc=9.0, scale=np.std([6.0, 8.0, 13.0], ddof=1) / np.sqrt(3))
    assert (det["ci_low"], det["ci_high"]) == pytest.approx(m)
    assert np.isnan(g.loc["promoter", "diff"]) and g["small_n"].all()
    assert np.isnan(g.loc["passive", "ci_low"])  # one value: no interval
    s = voc.compare_groups(t, "bought", kind="share").set_index("nps_group")
    lo, hi = cxkit.stats.wilson_ci(1, 3)
    assert s.loc["detractor", "value"] == pytest.approx(1 / 3)
    assert (s.loc["detractor", "ci_low"], s.loc["detractor", "ci_high"]) == pytest.approx((lo, hi))
    assert s.loc["detractor", "diff"] == pytest.approx(1 / 3 - 3 / 4)
    with pytest.raises(UsageError, match="kind must be 'mean' or 'share', got 'median'"):
        voc.compare_groups(t, "x", kind="median")


def _coverage(hits: np.ndarray, level: float = 0.95) -> tuple[float, float, float]:
    """Observed coverage and the 3-sigma binomial tolerance around ``level``."""
    tol = 3 * np.sqrt(level * (1 - level) / len(hits))
    return float(np.mean(hits)), level - tol, level + tol


@pytest.mark.slow
def test_gap_intervals_cover_the_true_gap_at_their_level() -> None:
    rng = np.random.default_rng(42)
    reps, n_p, n_d = 400, 120, 80
    true_mean = 150.0 - 100.0  # gamma(1.5) spend: skewed like CLV
    true_share = 0.40 - 0.55
    hit_mean, hit_share, hit_group = [], [], []
    for _ in range(reps):
        frame = pd.DataFrame(
            {
                "nps_group": ["promoter"] * n_p + ["detractor"] * n_d,
                "spend": np.concatenate(
                    [rng.gamma(1.5, 100.0 / 1.5, n_p), rng.gamma(1.5, 150.0 / 1.5, n_d)]
                ),
                "bought": np.concatenate([rng.random(n_p) < 0.55, rng.random(n_d) < 0.40]).astype(
                    float
                ),
            }
        )
        g = voc.compare_groups(frame, "spend").set_index("nps_group")
        d = g.loc["detractor"]
        hit_mean.append(d["diff_low"] <= true_mean <= d["diff_high"])
        # a skewed mean's t interval runs a little below its level in small groups
        # (0.93 at n = 30 for this gamma): the larger group's is checked
        hit_group.append(g.loc["promoter", "ci_low"] <= 100.0 <= g.loc["promoter", "ci_high"])
        s = voc.compare_groups(frame, "bought", kind="share").set_index("nps_group")
        s = s.loc["detractor"]
        hit_share.append(s["diff_low"] <= true_share <= s["diff_high"])
    for what, hits in (("mean gap", hit_mean), ("share gap", hit_share), ("mean", hit_group)):
        got, lo, hi = _coverage(np.asarray(hits))
        assert lo <= got <= hi, (what, got, lo, hi)


@pytest.mark.slow
def test_the_within_persona_interval_covers_the_true_gap_at_its_level() -> None:
    rng = np.random.default_rng(7)
    hits = []
    # three personas of different value and detractor shares; within each, detractors
    # spend 20 less than promoters
    mix = {"a": (300.0, 0.2, 150), "b": (150.0, 0.5, 120), "c": (60.0, 0.8, 100)}
    for _ in range(300):
        parts = []
        for name, (mean, det_share, size) in mix.items():
            det = rng.random(size) < det_share
            value = rng.gamma(2.0, (mean - 20.0 * det) / 2.0)
            group = np.where(det, "detractor", "promoter")
            parts.append(pd.DataFrame({"persona": name, "nps_group": group, "x": value}))
        a = voc.adjusted_difference(pd.concat(parts, ignore_index=True), "x")
        hits.append(a["ci_low"] <= -20.0 <= a["ci_high"])
    got, lo, hi = _coverage(np.asarray(hits))
    assert lo <= got <= hi, (got, lo, hi)


def test_a_gap_that_is_only_the_persona_mix_vanishes_within_personas() -> None:
    rng = np.random.default_rng(3)
    parts = []
    # detractors are mostly low-value customers, but within a persona the answer does
    # not go with value at all
    for name, mean, det_share in (("high", 400.0, 0.1), ("low", 80.0, 0.7)):
        size = 600
        group = np.where(rng.random(size) < det_share, "detractor", "promoter")
        parts.append(
            pd.DataFrame({"persona": name, "nps_group": group, "x": rng.gamma(2.0, mean / 2, size)})
        )
    frame = pd.concat(parts, ignore_index=True)
    overall = voc.compare_groups(frame, "x").set_index("nps_group").loc["detractor"]
    within = voc.adjusted_difference(frame, "x")
    assert overall["diff_high"] < -100  # a large, clear gap over everyone...
    assert within["ci_low"] <= 0 <= within["ci_high"]  # ...that is not there within personas
    assert within["groups"] == 2 and within["groups_left_out"] == 0
    assert within["n"] == (frame.nps_group == "detractor").sum()
    # a persona without promoters cannot be compared and is left out
    lone = pd.DataFrame({"persona": "lone", "nps_group": ["detractor"] * 5, "x": 1.0})
    with_lone = voc.adjusted_difference(pd.concat([frame, lone]), "x")
    assert with_lone["groups_left_out"] == 1 and with_lone["diff"] == within["diff"]


def test_the_sentences_say_the_gap_within_personas_and_flag_small_groups() -> None:
    p = planted(sizes={"promoter": 40, "passive": 10, "detractor": 20})
    p["responses"]["persona"] = None
    personas = pd.Series(
        np.where(np.arange(70) % 2 == 0, "Store regulars", "App loyalists"),
        index=pd.Index([f"C{i:05d}" for i in range(70)], name="customer_id"),
        name="persona",
    )
    data = cxkit.load({"responses": p["responses"].drop(columns="persona"), "orders": p["orders"]})
    clv_result, churn_result = stand_ins(p, scores_from="bgnbd")
    res = voc.survey_value(
        data,
        as_of=AS_OF,
        clv=clv_result,
        churn=churn_result,
        personas=personas,  # type: ignore[arg-type]
    )
    by = {f.metric: f for f in res.findings()}
    f = by["detractor_clv_gap_52w"]
    assert f.small_n  # 20 detractors: never headlined
    a = res.adjusted.set_index("measure").loc["clv_52w"]
    assert "; against promoters of their own persona the gap is" in f.sentence
    assert f"{abs(a['diff']):,.2f} {'less' if a['diff'] < 0 else 'more'} (95% CI" in f.sentence
    assert "BG/NBD P(no order in horizon), the baseline that beat the model" in (
        by["detractor_churn_gap"].sentence
    )
    table = res.by_persona
    assert set(table["persona"]) == {"Store regulars", "App loyalists"}
    assert table["small_n"].all()  # every persona × group cell is below 30
    assert res.persona_sentence().endswith(
        f"in 2 of them detractors or promoters are fewer than {MIN_N}."
    )


def test_without_survey_answers_nothing_is_fitted_and_the_note_says_why(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def fails(*args: object, **kwargs: object) -> object:
        raise AssertionError("no model may be fitted without NPS answers")

    monkeypatch.setattr(clv, "analyze", fails)
    monkeypatch.setattr(churn, "analyze", fails)
    orders = planted()["orders"]
    res = voc.value_linkage(cxkit.load({"orders": orders}))
    assert res.by_nps is None and res.findings() == []
    assert res.not_available == [
        "The survey-to-value linkage is not available: this needs the table 'responses'"
    ]


def test_without_orders_clv_and_churn_are_named_not_available() -> None:
    p = planted(sizes={"promoter": 40, "passive": 10, "detractor": 40})
    res = voc.value_linkage(cxkit.load({"responses": p["responses"]}), as_of=AS_OF)
    assert res.measures == () and res.findings() == []
    assert res.unavailable["clv"].startswith("Expected CLV by NPS group is not available: ")
    assert "orders" in res.unavailable["clv"] and "orders" in res.unavailable["churn"]
    assert res.unavailable["orders"] == (
        "Realised revenue by NPS group is not available: this needs the table 'orders'"
    )


def test_a_persona_mix_gap_is_worded_as_such_in_the_findings_and_the_title() -> None:
    rng = np.random.default_rng(11)
    n = 900
    ids = [f"K{i:04d}" for i in range(n)]
    high = rng.random(n) < 0.5
    detractor = rng.random(n) < np.where(high, 0.1, 0.7)  # low-value customers detract
    score = np.where(detractor, rng.integers(0, 7, n), rng.integers(9, 11, n))
    responses = pd.DataFrame(
        {"response_id": ids, "customer_id": ids, "ts": T0, "survey": "nps", "score": score}
    )
    value = rng.gamma(2.0, np.where(high, 200.0, 40.0))  # the same within each persona
    clv_result = SimpleNamespace(
        values=pd.DataFrame({"customer_id": ids, "clv_52w": value}),
        horizon_weeks=52,
        clv_column="clv_52w",
    )
    personas = pd.Series(np.where(high, "High", "Low"), index=pd.Index(ids, name="customer_id"))
    res = voc.survey_value(
        cxkit.load({"responses": responses}),
        as_of=AS_OF,
        clv=clv_result,
        personas=personas,  # type: ignore[arg-type]
    )
    r = res.gap(res.measure("clv"))
    assert r["diff_high"] < 0  # clear over everyone
    f = next(f for f in res.findings() if f.metric == "detractor_clv_gap_52w")
    assert "no clear gap" not in f.sentence.split(";")[0]
    assert f.sentence.endswith("more, so no clear gap).")  # within personas
    assert res.title().endswith("over the next 52 weeks, but not clearly within personas")
    assert "Churn risk by NPS group is not available" in res.unavailable["churn"]


def test_values_kept_in_the_engine_link_to_the_same_tables(
    linked: voc.SurveyValueResult, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.collects import Collects

    p = planted()
    data = cxkit.load({"responses": p["responses"], "orders": p["orders"]})
    data.con.create_table("planted_clv", p["clv"], overwrite=True)
    data.con.create_table("planted_scores", p["churn"], overwrite=True)
    rng = np.random.default_rng(1)
    labels = pd.DataFrame(
        {"customer_id": p["clv"].customer_id, "persona": rng.choice(["a", "b", "c"], len(p["clv"]))}
    )
    held = data.con.create_table("planted_personas", labels, overwrite=True)
    clv_result, churn_result = stand_ins(p)
    clv_result.values_table = "planted_clv"  # as scale mode's results name their tables
    churn_result.scores_table = "planted_scores"
    seen = Collects(monkeypatch)
    engine = voc.survey_value(data, as_of=AS_OF, clv=clv_result, churn=churn_result, personas=held)  # type: ignore[arg-type]
    assert engine.customers is None  # joined and summed in the engine
    assert max(seen.rows) < len(p["clv"]) // 10  # groups come back, not customers
    monkeypatch.undo()
    kw = {"as_of": AS_OF, "clv": stand_ins(p)[0], "churn": stand_ins(p)[1]}
    memory = voc.survey_value(data, personas=labels.set_index("customer_id").persona, **kw)  # type: ignore[arg-type]
    pd.testing.assert_frame_equal(memory.by_nps, linked.by_nps)  # personas change nothing
    for part in ("by_nps", "by_persona", "adjusted"):
        pd.testing.assert_frame_equal(
            getattr(engine, part), getattr(memory, part), check_dtype=False, rtol=1e-9, obj=part
        )
    assert [f.sentence for f in engine.findings()] == [f.sentence for f in memory.findings()]


@pytest.mark.postgres
@pytest.mark.slow
def test_linked_customers_on_postgres_match_duckdb(postgres_server: str) -> None:  # noqa: F811
    from tests.test_backends import into_postgres

    p = planted()
    tables = {"responses": p["responses"], "orders": p["orders"]}
    want = voc.linked_customers(cxkit.load(tables), as_of=AS_OF)
    got = voc.linked_customers(into_postgres(postgres_server, tables), as_of=AS_OF)
    pd.testing.assert_frame_equal(got, want, check_dtype=False)
    g = voc.compare_groups(voc.linked_table(into_postgres(postgres_server, tables), as_of=AS_OF)[0],
                           "ordered_after_90d", kind="share")  # fmt: skip
    pd.testing.assert_frame_equal(g, voc.compare_groups(want, "ordered_after_90d", kind="share"),
                                  check_dtype=False)  # fmt: skip
