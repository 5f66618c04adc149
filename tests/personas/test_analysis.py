"""Tests for cxkit.personas.analysis: the planted personas of the 2,000-customer demo,
the result's tables and findings, and the orders-only fallback."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import adjusted_rand_score

import cxkit
from cxkit import personas as P
from cxkit.errors import DataError, NotAvailableError, UsageError
from cxkit.findings import Finding


@pytest.mark.slow
def test_demo_recovers_planted_personas(demo_dir, demo_report) -> None:
    rep = demo_report
    truth = pd.read_parquet(demo_dir / "_truth.parquet").set_index("customer_id")
    planted = truth.loc[rep.features.index.astype(str), "persona"].to_numpy()
    assert rep.model.k_ == 5
    assert adjusted_rand_score(planted, rep.model.labels_) >= 0.9
    assert (rep.model.stability_ >= 0.75).all()  # bootstrap stability reported per persona
    assert rep.model.fidelity_ > 0.6


@pytest.mark.slow
def test_demo_pain_point_for_support_heavy(demo_dir, demo_report) -> None:
    rep = demo_report
    truth = pd.read_parquet(demo_dir / "_truth.parquet").set_index("customer_id")
    planted = json.loads((demo_dir / "_truth.json").read_text())["pain_point"]
    asg = rep.assignments.assign(
        planted=truth.loc[rep.assignments.customer_id, "persona"].to_numpy()
    )
    # the persona that holds most of the planted support_heavy customers
    target = asg[asg.planted == planted["persona"]].persona_name.mode().iloc[0]
    pp = rep.pains.set_index("persona_name")
    assert pp.loc[target, "dimension"] == "channel"
    assert pp.loc[target, "value"] == planted["channel"]
    assert bool(pp.loc[target, "significant"])
    # the planted gap (CSAT ~2.2 vs ~4.1) is by far the largest of all personas' pain points
    assert pp["diff"].idxmin() == target and pp.loc[target, "diff"] < -0.4
    fs = rep.findings()
    assert all(isinstance(f, Finding) and f.domain == "personas" for f in fs)
    pain = sorted((f for f in fs if f.metric == "pain_point"), key=lambda f: -f.importance)
    assert pain[0].extra["persona_name"] == target and pain[0].extra["value"] == "chat"
    assert pain[0].p_value < 0.001 and pain[0].n >= 30
    assert f"'{target}' are hurt on channel 'chat'" in P.headline(rep)


@pytest.mark.slow
def test_demo_journey_map_and_themes(demo_report) -> None:
    jm = demo_report.journey
    assert set(jm.stage) == set(P.STAGES) and jm.persona_name.nunique() == 5
    for _, g in jm.groupby("persona_name"):
        assert (np.diff(g.n_reached.to_numpy()) <= 0).all()  # stages are monotone
    assert jm.reach.between(0, 1).all()
    assert demo_report.themes is not None and len(demo_report.themes)
    cards = demo_report.cards
    assert {"pain_point", "top_theme"} <= set(cards.columns) and len(cards) == 5


@pytest.mark.slow
def test_demo_orders_only(demo_dir) -> None:
    data = cxkit.load({"orders": pd.read_parquet(demo_dir / "orders.parquet")})
    rep = P.analyze(data, random_state=0)
    assert rep.basis == "purchase behaviour only (orders)"
    assert 2 <= rep.model.k_ <= 10
    assert rep.pains is None and rep.themes is None
    assert any("responses" in s for s in rep.not_available)
    assert rep.journey.stage.unique().tolist() == ["purchase", "retention"]
    assert rep.findings()[0].sentence.startswith(f"{len(rep.features):,} customers")


# --------------------------------------------------------------------------------------
# the result's shape
# --------------------------------------------------------------------------------------


@pytest.mark.slow
def test_result_tables_and_as_of(demo_data, demo_report) -> None:
    rep = demo_report
    assert isinstance(rep, P.PersonasResult) and rep.domain == "personas"
    # as_of=None: the data's latest timestamp (the demo has times of day: taken as is)
    assert rep.as_of == cxkit.resolve_as_of(demo_data, None) == demo_data.max_ts()
    assert rep.features.attrs["as_of"] == rep.as_of.isoformat()
    assert rep.journey.attrs["as_of"] == rep.as_of
    tables = rep.tables()
    assert {"features", "assignments", "journey", "channels", "pains", "themes"} <= set(tables)
    assert rep.not_available == []
    assert rep.assignments.customer_id.tolist() == rep.features.index.tolist()


@pytest.mark.slow
def test_result_findings_carry_intervals_and_n(demo_report) -> None:
    fs = demo_report.findings()
    assert all(0 <= f.importance <= 10 for f in fs)
    metrics = [f.metric for f in fs]
    assert metrics[0] == "n_personas" and metrics.count("persona_share") == 5
    assert {"top_value_persona", "pain_point", "surrogate_fidelity"} <= set(metrics)
    n_all = len(demo_report.features)
    assert fs[0].n == n_all and fs[0].value == 5.0 and fs[0].extra["votes"]
    for f in fs:
        if f.metric in ("persona_share", "pain_point"):
            assert f.n is not None and f.n > 0
            assert f.ci_low is not None and f.ci_low <= f.value <= f.ci_high
            assert f.small_n == (f.n < 30)
    shares = [f for f in fs if f.metric == "persona_share"]
    assert sum(f.n for f in shares) == n_all
    # larger personas first among the shares; pain points above shares
    assert [f.importance for f in shares] == sorted((f.importance for f in shares), reverse=True)
    pain = next(f for f in fs if f.metric == "pain_point")
    assert pain.importance > max(f.importance for f in shares)
    assert pain.comparison.startswith("vs the persona's other")


def test_analyze_resolves_a_date_as_of_to_its_end() -> None:
    rng = np.random.default_rng(0)
    n = 60
    orders = pd.DataFrame(
        {
            "order_id": [f"O{i}" for i in range(2 * n)],
            "customer_id": [f"C{i % n}" for i in range(2 * n)],
            "ts": pd.Timestamp("2024-01-01")
            + pd.to_timedelta(rng.integers(0, 90, 2 * n), unit="D"),
            "amount": rng.lognormal(3, 1, 2 * n),
        }
    )
    data = cxkit.load({"orders": orders})
    rep = P.analyze(data, as_of="2024-02-15", k=2, random_state=0)
    assert rep.as_of == pd.Timestamp("2024-02-15 23:59:59.999999")
    assert rep.journey.stage.unique().tolist() == ["purchase", "retention"]
    assert rep.pains is None and rep.themes is None and len(rep.not_available) == 2
    assert rep.findings()[0].sentence.startswith(f"{len(rep.features):,} customers fall into 2")


def _orders_of(n: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "order_id": [f"O{i}" for i in range(2 * n)],
            "customer_id": [f"C{i % n}" for i in range(2 * n)],
            "ts": pd.Timestamp("2024-01-01")
            + pd.to_timedelta(rng.integers(0, 90, 2 * n), unit="D"),
            "amount": rng.lognormal(3, 1, 2 * n),
        }
    )


@pytest.mark.parametrize(
    ("n", "options", "need"),
    [(1, {}, 20), (5, {}, 20), (19, {}, 20), (11, {"k_range": (2, 6)}, 12), (7, {"k": 3}, 10)],
)
def test_too_few_customers_is_not_available(n: int, options: dict, need: int) -> None:
    # issue 22: tiny data raised DataError (a FAILED report) instead of a note
    data = cxkit.load({"orders": _orders_of(n)})
    msg = (
        rf"^The persona model is not available: this needs more customers — too few customers "
        rf"to cluster \(n={n}, need ≥ {need}\); use data with more customers or a smaller k"
    )
    with pytest.raises(NotAvailableError, match=msg):
        P.analyze(data, random_state=0, **options)
    labels, note = P.resolve_persona_labels(data)  # other reports: no labels, and why
    assert labels is None and f"too few customers to cluster (n={n}, need ≥ 20)" in note


@pytest.mark.parametrize("options", [{}, {"k_range": (2, 6)}, {"k": 3}])
def test_the_size_rule_is_the_models_own(options: dict) -> None:
    # the fewest customers analyze accepts is the fewest the model fits on
    need = {"k_range": 12, "k": 10}.get(next(iter(options), ""), 20)
    feats = P.customer_features(cxkit.load({"orders": _orders_of(need)}))
    P.Personas(random_state=0, **options).fit(feats)
    with pytest.raises(DataError, match="too few customers to cluster"):
        P.Personas(random_state=0, **options).fit(feats.iloc[: need - 1])


def test_bad_k_is_still_a_usage_error() -> None:
    with pytest.raises(UsageError, match="k_range must be two integers"):
        P.analyze(cxkit.load({"orders": _orders_of(30)}), k_range=(5, 3))


def test_headline_with_no_pain_point_picked() -> None:
    # issue 22: an empty pains table (no persona has 30 CSAT answers per channel) raised
    # KeyError: 'diff' in the headline
    orders = _orders_of(40)
    few = pd.DataFrame(  # 10 CSAT answers: fewer than 30 on every channel
        {
            "response_id": [f"R{i}" for i in range(10)],
            "customer_id": [f"C{i}" for i in range(10)],
            "ts": pd.Timestamp("2024-02-01"),
            "survey": "csat",
            "score": [5, 4, 1, 2, 5, 5, 3, 4, 2, 1],
            "channel": ["web", "chat"] * 5,
        }
    )
    rep = P.analyze(cxkit.load({"orders": orders, "responses": few}), k=2, random_state=0)
    assert rep.pains is not None and rep.pains.empty
    assert rep.pains["significant"].dtype == bool
    text = P.headline(rep)
    assert text.startswith("2 personas among 40 customers") and "hurt on" not in text
