"""Tests for cxkit.personas: hand-worked features, the estimator on planted blobs
(choice of k, determinism, predict, stability, rules), journey maps and pain points on
tiny tables, and the planted personas of the demo data."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.exceptions import NotFittedError
from sklearn.metrics import adjusted_rand_score

import cxkit
from cxkit import personas as P
from cxkit.errors import DataError, NotAvailableError, UsageError
from cxkit.findings import Finding
from tests.backends import postgres_server, spark_session  # noqa: F401 - fixtures

T0 = pd.Timestamp("2024-01-01")


def _ts(days: float) -> pd.Timestamp:
    return T0 + pd.Timedelta(days=days)


# --------------------------------------------------------------------------------------
# features, hand-worked
# --------------------------------------------------------------------------------------


def _tiny() -> dict[str, pd.DataFrame]:
    customers = pd.DataFrame(
        {
            "customer_id": ["a", "b", "c"],
            "signup_at": [_ts(0), _ts(10), _ts(20)],
            "region": ["north", "south", "north"],
        }
    )
    events = pd.DataFrame(
        {
            "event_id": [f"E{i}" for i in range(6)],
            "customer_id": ["a", "a", "a", "a", "b", "b"],
            "ts": [_ts(0), _ts(5), _ts(6), _ts(40), _ts(10), _ts(11)],
            "event": [
                "site_visit",
                "product_view",
                "support_contact",
                "app_open",
                "social_view",
                "support_contact",
            ],
            "channel": ["web", "web", "chat", "app", "social", "chat"],
        }
    )
    orders = pd.DataFrame(
        {
            "order_id": ["O1", "O2", "O3"],
            "customer_id": ["a", "a", "b"],
            "ts": [_ts(7), _ts(30), _ts(12)],
            "amount": [10.0, 30.0, 5.0],
            "channel": ["web", "app", "web"],
        }
    )
    responses = pd.DataFrame(
        {
            "response_id": ["R1", "R2", "R3", "R4"],
            "customer_id": ["a", "a", "a", "b"],
            "ts": [_ts(6), _ts(8), _ts(31), _ts(11)],
            "survey": ["csat", "csat", "nps", "nps"],
            "score": [2, 5, 9, 3],
            "channel": ["chat", "web", "email", "email"],
        }
    )
    return {"customers": customers, "events": events, "orders": orders, "responses": responses}


def test_customer_features_hand_worked() -> None:
    f = P.customer_features(cxkit.load(_tiny()), as_of="2024-02-10")
    # the whole day of as_of counts; days are measured from as_of itself
    assert list(f.index) == ["a", "b", "c"]
    a, b, c = (f.loc[x] for x in "abc")
    cut = pd.Timestamp("2024-02-10")
    day = pd.Timedelta(days=1)
    assert a.recency_days == 0.0  # last event on day 40 = as_of
    assert a.tenure_days == pytest.approx((cut - _ts(0)) / day)
    assert (a.orders, a.spend, a.spend_per_order) == (2.0, 40.0, 20.0)
    assert a.orders_per_month == pytest.approx(2 / (((cut - _ts(0)) / day) / 30.4375))
    assert (a.share_web, a.share_chat, a.share_app, a.share_social) == (0.5, 0.25, 0.25, 0.0)
    assert a.support_contacts == 1.0
    assert (a.csat_mean, a.nps_latest) == (3.5, 9.0)
    assert (b.orders, b.spend, b.support_contacts, b.nps_latest) == (1.0, 5.0, 1.0, 3.0)
    assert np.isnan(b.csat_mean)
    # c never did anything: zero behaviour, recency = tenure from signup
    assert (c.orders, c.spend, c.events_per_month, c.share_web) == (0.0, 0.0, 0.0, 0.0)
    assert np.isnan(c.spend_per_order)  # undefined without orders
    assert c.recency_days == pytest.approx(c.tenure_days)
    assert (a["region=north"], b["region=north"], b["region=south"]) == (1.0, 0.0, 1.0)
    assert f.attrs["basis"].startswith("behaviour across channels")
    assert f.attrs["tables"] == ["events", "orders", "responses", "customers"]


def test_customer_features_as_of_drops_later_rows() -> None:
    f = P.customer_features(cxkit.load(_tiny()), as_of="2024-01-20")
    assert f.loc["a", "orders"] == 1.0  # the order on day 30 is after as_of
    assert "share_app" not in f.columns  # no app event before as_of
    assert "c" not in f.index  # signed up after as_of


def test_customer_features_orders_only() -> None:
    tabs = _tiny()
    f = P.customer_features(cxkit.load({"orders": tabs["orders"]}))
    assert f.attrs["basis"] == "purchase behaviour only (orders)"
    assert {"share_web", "share_app"} <= set(f.columns)  # order channels stand in
    assert "events_per_month" not in f.columns
    assert f.loc["a", "share_web"] == 0.5


def test_customer_features_needs_orders_or_events() -> None:
    tabs = _tiny()
    with pytest.raises(NotAvailableError, match="needs the table 'orders' or 'events'"):
        P.customer_features(cxkit.load({"responses": tabs["responses"]}))


def test_customer_features_bad_categorical() -> None:
    with pytest.raises(DataError, match=r"categorical column.*'tier'"):
        P.customer_features(cxkit.load(_tiny()), categorical=["tier"])


# --------------------------------------------------------------------------------------
# the estimator on planted blobs
# --------------------------------------------------------------------------------------


def _blobs(n_per: int = 150, seed: int = 3) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    centres = np.array([[0, 0, 0, 0], [5, 0, 0, 5], [0, 5, 0, 0], [0, 0, 5, 5]], dtype=float)
    sizes = [n_per * 2, n_per, n_per, n_per]
    X = np.vstack([rng.normal(c, 0.7, (s, 4)) for c, s in zip(centres, sizes, strict=True)])
    y = np.repeat(np.arange(4), sizes)
    return pd.DataFrame(X, columns=["w", "x", "y", "z"]), y


@pytest.fixture(scope="module")
def blob_model() -> tuple[P.Personas, pd.DataFrame, np.ndarray]:
    X, y = _blobs()
    return P.Personas(k="auto", k_range=(2, 7), random_state=11).fit(X), X, y


def test_auto_k_finds_planted_blobs(blob_model) -> None:
    m, _, y = blob_model
    assert m.k_ == 4
    assert adjusted_rand_score(y, m.labels_) > 0.95
    assert m.k_votes_["elbow"] == 4 or m.k_votes_["stability"] == 4
    tab = m.k_selection_
    assert list(tab.columns) == [
        "k", "inertia", "gap", "gap_se", "stability", "stability_sd", "silhouette", "chosen",
    ]  # fmt: skip
    assert tab.k.tolist() == list(range(2, 8))
    assert tab.loc[tab.chosen, "k"].tolist() == [4]
    assert "k = 4" in m.k_reason_


def test_personas_ordered_by_size_and_described(blob_model) -> None:
    m, X, _ = blob_model
    assert m.sizes_.tolist() == sorted(m.sizes_.tolist(), reverse=True)
    assert m.sizes_.iloc[0] == 300
    assert len(m.names_) == 4 and len(set(m.names_)) == 4
    assert m.stability_.between(0, 1).all() and (m.stability_ > 0.9).all()
    assert set(m.profiles_.columns) >= {"persona", "name", "feature", "mean", "z"}
    prof = m.profiles_.pivot(index="persona", columns="feature", values="mean")
    pd.testing.assert_frame_equal(
        prof, X.groupby(m.labels_).mean().rename_axis("persona").rename_axis("feature", axis=1)
    )
    assert 0.9 <= m.fidelity_ <= 1
    assert "class:" in m.rules_
    rules = P.persona_rules(m)
    assert set(rules.persona) == set(range(4)) and rules.precision.between(0, 1).all()
    # the tree is fitted on 70% of the customers
    assert rules.n_customers.sum() == int(0.7 * len(X))
    s = m.summary()
    assert s.n_customers.sum() == len(X) and s.share.sum() == pytest.approx(1)


def test_deterministic_with_seed(blob_model) -> None:
    m, X, _ = blob_model
    m2 = P.Personas(k="auto", k_range=(2, 7), random_state=11).fit(X)
    np.testing.assert_array_equal(m.labels_, m2.labels_)
    pd.testing.assert_frame_equal(m.k_selection_, m2.k_selection_)
    pd.testing.assert_series_equal(m.stability_, m2.stability_)
    assert m.names_ == m2.names_ and m.rules_ == m2.rules_


def test_predict_new_rows(blob_model) -> None:
    m, X, _ = blob_model
    np.testing.assert_array_equal(m.predict(X), m.labels_)
    new = pd.DataFrame({"z": [5.0, 0.1], "y": [0.0, 0.0], "x": [0.0, 0.0], "w": [5.0, 0.0]})
    lab = m.predict(new)  # column order does not matter
    assert lab[0] == m.labels_[300] and lab[1] == m.labels_[0]
    with pytest.raises(DataError, match=r"lack column\(s\) \['z'\]"):
        m.predict(X.drop(columns="z"))


def test_fixed_k_and_missing_values() -> None:
    X, _ = _blobs(60)
    X.loc[::7, "x"] = np.nan
    m = P.Personas(k=4, random_state=0).fit(X)
    assert m.k_ == 4 and m.k_reason_ == "k = 4 was given"
    assert m.fill_values_["x"] == pytest.approx(X["x"].median())
    assert len(m.predict(X)) == len(X)


def test_bad_options_and_not_fitted() -> None:
    X, _ = _blobs(30)
    with pytest.raises(UsageError, match="k must be 'auto' or a positive integer, got 'many'"):
        P.Personas(k="many").fit(X)
    with pytest.raises(UsageError, match=r"k_range must be two integers 2 <= low < high"):
        P.Personas(k_range=(5, 3)).fit(X)
    with pytest.raises(DataError, match="too few customers to cluster: 8 rows"):
        P.Personas(k=5).fit(X.head(8))
    with pytest.raises(NotFittedError, match="not fitted yet"):
        P.Personas().predict(X)


def test_scikit_learn_conventions() -> None:
    from sklearn.base import clone

    m = P.Personas(k=3, random_state=5, categorical_weight=0.25)
    assert m.get_params()["categorical_weight"] == 0.25
    c = clone(m).set_params(k=4)
    assert (c.k, c.random_state) == (4, 5) and not hasattr(c, "k_")
    assert "k=3" in repr(m)


def test_log1p_on_skewed_columns_only() -> None:
    rng = np.random.default_rng(0)
    X = pd.DataFrame(
        {
            "spend": rng.lognormal(3, 1.2, 400),
            "share_web": rng.uniform(0, 1, 400),
            "score": rng.normal(0, 1, 400),
        }
    )
    m = P.Personas(k=2, random_state=0).fit(X)
    assert m.log_columns_ == ["spend"]


def test_names_from_distinguishing_features() -> None:
    z = pd.Series({"spend": 1.8, "orders_per_month": 1.2, "share_app": 2.3, "share_web": -0.8})
    assert P._persona_name(z) == "High-value app loyalists"
    z = pd.Series({"spend": -0.1, "support_contacts": 2.0, "share_chat": 2.1})
    assert P._persona_name(z) == "Mid-value chat support seekers"
    z = pd.Series({"spend": -1.2, "orders": -1.0, "events_per_month": 0.2, "share_social": 1.5})
    assert P._persona_name(z) == "Low-spend social browsers"
    z = pd.Series({"spend": -1.2, "orders": -1.0, "recency_days": 0.3})  # orders only
    assert P._persona_name(z) == "Low-spend occasional buyers"
    z = pd.Series({"events_per_month": 0.1, "support_contacts": 1.5, "share_phone": 0.9})
    assert P._persona_name(z) == "Phone support seekers"  # events only: no value word


def test_rule_text_keeps_tightest_bounds() -> None:
    conds = [("spend", ">", 1.0), ("share_app", "<=", 0.5), ("spend", ">", 3.0),
             ("spend", "<=", 9.0)]  # fmt: skip
    assert P._rule_text(conds) == "3.00 < spend <= 9.00 and share_app <= 0.50"
    assert P._rule_text([]) == "(everyone)"


@settings(max_examples=50, deadline=None)
@given(st.lists(st.integers(0, 3), min_size=5, max_size=40), st.integers(0, 1000))
def test_jaccard_best_in_unit_interval(labels: list[int], seed: int) -> None:
    ref = np.asarray(labels)
    k = int(ref.max()) + 1
    other = np.random.default_rng(seed).permutation(ref)
    jac = P._jaccard_best(ref, other, k)
    assert ((jac >= 0) & (jac <= 1)).all()
    present = np.bincount(ref, minlength=k) > 0
    np.testing.assert_allclose(P._jaccard_best(ref, ref, k)[present], 1.0)


# --------------------------------------------------------------------------------------
# journey map and pain points on tiny tables
# --------------------------------------------------------------------------------------


def test_journey_map_hand_worked() -> None:
    data = cxkit.load(_tiny())
    asg = pd.DataFrame({"customer_id": ["a", "b", "c"], "persona_name": ["P1", "P2", "P2"]})
    jm = P.journey_map(data, asg).set_index(["persona_name", "stage"])
    # a: site_visit, product_view, 2 orders on different days, NPS 9 -> all five stages
    assert jm.loc[("P1", slice(None)), "n_reached"].tolist() == [1, 1, 1, 1, 1]
    # b: social_view, an order (purchase implies consideration), no repeat, NPS 3;
    # c: nothing at all
    assert jm.loc[("P2", slice(None)), "n_reached"].tolist() == [1, 1, 1, 0, 0]
    assert jm.loc[("P2", "awareness"), "reach"] == 0.5
    assert jm.loc[("P2", "retention"), "drop_off"] == 1.0
    # awareness activity of a: web, chat, app (one each): ties go alphabetically
    assert jm.loc[("P1", "awareness"), "top_channel"] == "app"
    assert jm.loc[("P1", "awareness"), "top_channel_share"] == pytest.approx(1 / 3)
    assert jm.loc[("P1", "retention"), "top_channel"] == "app"  # the repeat order
    # csat 2 at day 6 (after product_view on day 5: consideration), csat 5 at day 8
    # (after the first order on day 7: purchase)
    assert jm.loc[("P1", "consideration"), "csat_n"] == 1
    assert jm.loc[("P1", "consideration"), "csat_top2"] == 0.0
    assert jm.loc[("P1", "purchase"), "csat_top2"] == 1.0
    assert jm.loc[("P1", "advocacy"), "nps_n"] == 1  # the NPS 9 makes a an advocate
    assert jm["small_n"].all()


def _pain_data(seed: int = 0) -> tuple[cxkit.CXData, pd.DataFrame]:
    """Two personas; P1 is unhappy on chat only (CSAT mostly 1-2), P2 is fine everywhere."""
    rng = np.random.default_rng(seed)
    rows = []
    for persona, bad in (("P1", True), ("P2", False)):
        for i in range(40):
            cid = f"{persona}-{i}"
            for ch in ("chat", "web", "phone"):
                low = bad and ch == "chat"
                score = int(rng.choice([1, 2, 4] if low else [4, 5, 5, 3]))
                rows.append((cid, ch, score))
    df = pd.DataFrame(rows, columns=["customer_id", "channel", "score"])
    df["response_id"] = [f"R{i}" for i in range(len(df))]
    df["ts"] = T0
    df["survey"] = "csat"
    asg = pd.DataFrame({"customer_id": df.customer_id.unique()})
    asg["persona_name"] = asg.customer_id.str[:2]
    return cxkit.load({"responses": df}), asg


def test_pain_points_find_planted_channel() -> None:
    data, asg = _pain_data()
    pp = P.pain_points(data, asg, by=("channel",)).set_index("persona_name")
    assert pp.loc["P1", "value"] == "chat" and bool(pp.loc["P1", "significant"])
    assert pp.loc["P1", "p_adj"] < 0.001
    assert pp.loc["P1", "csat_top2"] < 0.5 < pp.loc["P1", "rest_top2"]
    assert not bool(pp.loc["P2", "significant"])
    assert "significant" in pp.loc["P1", "sentence"]
    by = P.csat_by(data, asg, by="channel")
    assert by.groupby("persona_name").n.sum().tolist() == [120, 120]
    with pytest.raises(NotAvailableError, match="column\\(s\\) 'touchpoint'"):
        P.csat_by(data, asg, by="touchpoint")


def test_assignments_must_name_columns() -> None:
    data, _ = _pain_data()
    with pytest.raises(DataError, match="assignments need columns 'customer_id'"):
        P.csat_by(data, pd.DataFrame({"id": ["x"]}))


# --------------------------------------------------------------------------------------
# the planted personas of the 2,000-customer demo
# --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def demo_report(demo_data) -> P.PersonaReport:
    return P.analyze(demo_data, random_state=0)


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
    fs = P.findings(rep)
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
    assert P.findings(rep)[0].sentence.startswith(f"{len(rep.features):,} customers")


# --------------------------------------------------------------------------------------
# the same engine code on PostgreSQL and Spark
# --------------------------------------------------------------------------------------


def _same_on(other_of) -> None:
    tabs = _tiny()
    asg = pd.DataFrame({"customer_id": ["a", "b", "c"], "persona_name": ["P1", "P2", "P2"]})
    ref, other = cxkit.load(tabs), other_of(tabs)
    pd.testing.assert_frame_equal(
        P.customer_features(ref, as_of="2024-02-10"),
        P.customer_features(other, as_of="2024-02-10"),
        check_dtype=False,
        rtol=1e-9,
    )
    pd.testing.assert_frame_equal(
        P.journey_map(ref, asg), P.journey_map(other, asg), check_dtype=False, rtol=1e-9
    )


@pytest.mark.postgres
@pytest.mark.slow
def test_features_and_journey_on_postgres(postgres_server: str) -> None:  # noqa: F811
    from tests.test_backends import into_postgres

    _same_on(lambda tabs: into_postgres(postgres_server, tabs))


@pytest.mark.spark
@pytest.mark.slow
def test_features_and_journey_on_spark(spark_session: object) -> None:  # noqa: F811
    from tests.test_backends import into_spark

    _same_on(lambda tabs: into_spark(spark_session, tabs))
