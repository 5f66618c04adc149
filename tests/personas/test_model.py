"""Tests for cxkit.personas.model: the estimator on planted blobs (choice of k,
determinism, predict, stability, rules) and the naming of personas."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.exceptions import NotFittedError
from sklearn.metrics import adjusted_rand_score

from cxkit import personas as P
from cxkit.errors import DataError, UsageError
from cxkit.personas import model as M


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
    assert M._persona_name(z) == "High-value app loyalists"
    z = pd.Series({"spend": -0.1, "support_contacts": 2.0, "share_chat": 2.1})
    assert M._persona_name(z) == "Mid-value chat support seekers"
    z = pd.Series({"spend": -1.2, "orders": -1.0, "events_per_month": 0.2, "share_social": 1.5})
    assert M._persona_name(z) == "Low-spend social browsers"
    z = pd.Series({"spend": -1.2, "orders": -1.0, "recency_days": 0.3})  # orders only
    assert M._persona_name(z) == "Low-spend occasional buyers"
    z = pd.Series({"events_per_month": 0.1, "support_contacts": 1.5, "share_phone": 0.9})
    assert M._persona_name(z) == "Phone support seekers"  # events only: no value word


def test_rule_text_keeps_tightest_bounds() -> None:
    conds = [("spend", ">", 1.0), ("share_app", "<=", 0.5), ("spend", ">", 3.0),
             ("spend", "<=", 9.0)]  # fmt: skip
    assert M._rule_text(conds) == "3.00 < spend <= 9.00 and share_app <= 0.50"
    assert M._rule_text([]) == "(everyone)"


@settings(max_examples=50, deadline=None)
@given(st.lists(st.integers(0, 3), min_size=5, max_size=40), st.integers(0, 1000))
def test_jaccard_best_in_unit_interval(labels: list[int], seed: int) -> None:
    ref = np.asarray(labels)
    k = int(ref.max()) + 1
    other = np.random.default_rng(seed).permutation(ref)
    jac = M._jaccard_best(ref, other, k)
    assert ((jac >= 0) & (jac <= 1)).all()
    present = np.bincount(ref, minlength=k) > 0
    np.testing.assert_allclose(M._jaccard_best(ref, ref, k)[present], 1.0)


def test_every_method_needing_a_fit_checks_it() -> None:
    X, _ = _blobs(30)
    m = P.Personas(k=2)
    assert not [a for a in vars(m) if a.endswith("_")]  # nothing learned before fit
    for call in (
        lambda: m.transform(X),
        lambda: m.summary(),
        lambda: P.assign(m, X),
        lambda: P.persona_rules(m),
        lambda: P.pca_map(m, X),
    ):
        with pytest.raises(NotFittedError, match="not fitted yet"):
            call()
    assert m.fit(X) is m
    assert m.fit_predict(X).tolist() == m.labels_.tolist()
    assert m.transform(X).shape == (len(X), 4)
