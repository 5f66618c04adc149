"""Tests of the demo-data generator: determinism, the contract, and the planted truth."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import cxkit
from cxkit import synth
from cxkit.errors import UsageError
from cxkit.stats import wilson_ci

TABLES = ("customers", "events", "orders", "responses")


def _hashes(folder: Path) -> dict[str, str]:
    return {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.iterdir())
        if p.is_file()
    }


@pytest.fixture(scope="module")
def demo(demo_dir: Path) -> dict[str, pd.DataFrame]:
    frames = {name: pd.read_parquet(demo_dir / f"{name}.parquet") for name in TABLES}
    frames["truth"] = pd.read_parquet(demo_dir / "_truth.parquet")
    return frames


@pytest.fixture(scope="module")
def info(demo_dir: Path) -> dict:
    return json.loads((demo_dir / "_truth.json").read_text())


# ---- files, determinism, format ------------------------------------------------------


def test_writes_every_file(demo_dir: Path) -> None:
    names = {p.name for p in demo_dir.iterdir()}
    assert names == {
        "customers.parquet",
        "events.parquet",
        "orders.parquet",
        "responses.parquet",
        "assignments.parquet",
        "_truth.parquet",
        "_truth.json",
    }


def test_same_seed_same_bytes_different_seed_different(tmp_path: Path) -> None:
    a = synth.write_demo(tmp_path / "a", customers=300, seed=11)
    b = synth.write_demo(tmp_path / "b", customers=300, seed=11)
    c = synth.write_demo(tmp_path / "c", customers=300, seed=12)
    ha, hb, hc = _hashes(a), _hashes(b), _hashes(c)
    assert ha == hb
    for name in (*(f"{t}.parquet" for t in TABLES), "_truth.parquet"):
        assert ha[name] != hc[name], name


def test_same_seed_same_bytes_across_chunks(tmp_path: Path) -> None:
    a = synth.write_demo(tmp_path / "a", customers=500, seed=3, chunk_size=200)
    b = synth.write_demo(tmp_path / "b", customers=500, seed=3, chunk_size=200)
    assert _hashes(a) == _hashes(b)
    orders = pd.read_parquet(a / "orders.parquet")
    events = pd.read_parquet(a / "events.parquet")
    assert orders.order_id.is_unique and events.event_id.is_unique
    assert pd.read_parquet(a / "customers.parquet").customer_id.is_unique


def test_csv_round_trips_through_load_with_string_ids(tmp_path: Path) -> None:
    folder = synth.write_demo(tmp_path / "csv", customers=200, seed=5, fmt="csv")
    assert {p.name for p in folder.glob("*.csv")} == {f"{t}.csv" for t in (*TABLES, "assignments")}
    data = cxkit.load(folder)
    assert data.names == [*TABLES, "assignments"]
    customers = data.to_pandas("customers")
    assert customers.customer_id.iloc[0] == "C0000001"
    assert pd.api.types.is_string_dtype(customers.customer_id)
    orders = data.to_pandas("orders")
    assert pd.api.types.is_datetime64_dtype(orders.ts)
    direct = synth.generate(200, seed=5)
    assert len(orders) == len(direct.orders)
    assert orders.amount.sum() == pytest.approx(direct.orders.amount.sum())
    responses = data.to_pandas("responses")
    assert responses.comment.isna().sum() == direct.responses.comment.isna().sum()


def test_rewriting_in_the_other_format_removes_stale_tables(tmp_path: Path) -> None:
    folder = synth.write_demo(tmp_path / "d", customers=100, seed=1, fmt="csv")
    synth.write_demo(folder, customers=100, seed=1)
    assert not list(folder.glob("*.csv"))
    assert not list(folder.glob(".*tmp*"))
    # and a rewrite without the experiment leaves no assignments from the earlier one
    assert (folder / "assignments.parquet").is_file()
    synth.write_demo(folder, customers=100, seed=1, experiment=False)
    assert not (folder / "assignments.parquet").exists()
    assert "experiment" not in json.loads((folder / "_truth.json").read_text())


def test_bad_arguments_are_usage_errors(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="fmt must be 'parquet' or 'csv', got 'xlsx'"):
        synth.write_demo(tmp_path, customers=10, fmt="xlsx")
    with pytest.raises(UsageError, match="customers must be a positive number"):
        synth.generate(0)
    with pytest.raises(UsageError, match="ISO dates"):
        synth.generate(10, start="soon")
    with pytest.raises(UsageError, match="at least 150 days"):
        synth.generate(10, start="2024-01-01", end="2024-02-01")


def test_demo_validates_cleanly(demo_data: cxkit.CXData) -> None:
    problems = cxkit.validate(demo_data)
    assert [p for p in problems if p.severity == "error"] == []


# ---- the contract and the funnel's hard rules ---------------------------------------------


def test_timestamps_within_start_and_end(demo: dict[str, pd.DataFrame]) -> None:
    lo, hi = pd.Timestamp("2023-01-01"), pd.Timestamp("2025-01-01")
    for name in ("events", "orders", "responses"):
        ts = demo[name].ts
        assert ts.min() >= lo and ts.max() < hi, name
    signup = demo["customers"].signup_at
    assert signup.min() >= lo
    assert signup.max() <= pd.Timestamp("2024-12-31") - pd.Timedelta(days=90)


def test_every_customer_has_events_and_the_first_is_awareness(
    demo: dict[str, pd.DataFrame],
) -> None:
    events, customers = demo["events"], demo["customers"]
    first = events.groupby("customer_id").ts.min()
    assert set(first.index) == set(customers.customer_id)
    signup = customers.set_index("customer_id").signup_at
    pd.testing.assert_series_equal(first.sort_index(), signup.sort_index(), check_names=False)
    first_rows = events.loc[events.groupby("customer_id").ts.idxmin()]
    assert set(first_rows.event) <= {
        "ad_impression",
        "social_view",
        "email_open",
        "site_visit",
        "app_open",
        "store_visit",
    }


def test_ids_unique_and_columns_filled(demo: dict[str, pd.DataFrame]) -> None:
    assert demo["events"].event_id.is_unique
    assert demo["orders"].order_id.is_unique
    assert demo["responses"].response_id.is_unique
    for name, cols in {
        "events": ["channel", "touchpoint", "event"],
        "orders": ["channel", "amount"],
        "responses": ["channel", "touchpoint", "survey", "score"],
        "customers": ["region", "acquisition_channel", "plan", "signup_at"],
    }.items():
        assert demo[name][cols].notna().all().all(), name
    assert (demo["orders"].amount > 0).all()
    assert np.allclose(demo["orders"].amount, demo["orders"].amount.round(2))
    assert set(demo["events"].channel) == set(synth.CHANNELS)


def test_score_ranges_and_comment_share(demo: dict[str, pd.DataFrame]) -> None:
    r = demo["responses"]
    for survey, (lo, hi) in {"nps": (0, 10), "csat": (1, 5), "ces": (1, 7)}.items():
        s = r.score[r.survey == survey]
        assert s.between(lo, hi).all() and len(s) > 100, survey
    assert 0.3 < r.comment.notna().mean() < 0.5


def test_non_considerers_never_consider_or_order(demo: dict[str, pd.DataFrame]) -> None:
    truth, events, orders = demo["truth"], demo["events"], demo["orders"]
    never = set(truth.customer_id[~truth.considered])
    consideration = events[events.event.isin(["product_view", "add_to_cart", "pricing_view"])]
    assert never.isdisjoint(consideration.customer_id)
    assert never.isdisjoint(orders.customer_id)
    buyers = set(truth.customer_id[truth.purchased])
    assert set(orders.customer_id) == buyers


def test_first_consideration_and_first_order_match_truth(demo: dict[str, pd.DataFrame]) -> None:
    truth = demo["truth"].set_index("customer_id")
    ev = demo["events"]
    cons = ev[ev.event.isin(["product_view", "add_to_cart", "pricing_view"])]
    first_cons = cons.groupby("customer_id").ts.min()
    pd.testing.assert_series_equal(
        first_cons.sort_index(),
        truth.considered_at.dropna().sort_index(),
        check_names=False,
    )
    first_order = demo["orders"].groupby("customer_id").ts.min()
    pd.testing.assert_series_equal(
        first_order.sort_index(),
        truth.first_order_at.dropna().sort_index(),
        check_names=False,
    )
    delay = (truth.considered_at - truth.aware_at).dt.total_seconds() / 86400
    assert delay.dropna().between(0, 30).all()
    delay = (truth.first_order_at - truth.considered_at).dt.total_seconds() / 86400
    assert delay.dropna().between(0, 30).all()


def test_no_orders_after_dropout_and_no_events_after_activity_end(
    demo: dict[str, pd.DataFrame],
) -> None:
    truth = demo["truth"].set_index("customer_id")
    orders = demo["orders"].join(truth[["dropout_at", "activity_end_at"]], on="customer_id")
    assert not (orders.ts > orders.dropout_at).any()
    # the dropout happens at a repeat order: that order exists
    last = orders.groupby("customer_id").ts.max()
    dropped = truth.dropout_at.dropna()
    pd.testing.assert_series_equal(last[dropped.index], dropped, check_names=False)
    events = demo["events"].join(truth.activity_end_at, on="customer_id")
    assert not (events.ts > events.activity_end_at).any()
    assert truth.alive_at_end.sum() == (truth.purchased & truth.dropout_at.isna()).sum()


def test_advocates_refer_or_review_and_only_they_give_9_or_10(
    demo: dict[str, pd.DataFrame],
) -> None:
    truth = demo["truth"].set_index("customer_id")
    ev = demo["events"]
    adv_events = ev[ev.event.isin(["referral", "review"])].join(
        truth.first_order_at, on="customer_id"
    )
    assert (adv_events.ts > adv_events.first_order_at).all()
    assert set(adv_events.customer_id) == set(truth.index[truth.advocate])
    r = demo["responses"]
    nps = r[r.survey == "nps"].join(truth[["advocate", "first_order_at"]], on="customer_id")
    assert (nps.ts > nps.first_order_at).all()
    assert nps.score[nps.advocate].between(9, 10).all()
    assert nps.score[~nps.advocate].between(0, 8).all()


# ---- the planted truth is in the data ----------------------------------------------------


def _within(successes: int, n: int, expected: float, level: float = 0.999) -> bool:
    lo, hi = wilson_ci(successes, n, level=level)
    return bool(lo <= expected <= hi)


def test_persona_shares_within_binomial_error(demo: dict[str, pd.DataFrame], info: dict) -> None:
    counts = demo["truth"].persona.value_counts()
    n = len(demo["truth"])
    for name, share in info["persona_shares"].items():
        assert _within(int(counts[name]), n, share), (name, counts[name] / n, share)


def test_stage_conversions_within_wilson_intervals(
    demo: dict[str, pd.DataFrame], info: dict
) -> None:
    truth = demo["truth"]
    planted = info["stage_conversion"]
    for name, t in truth.groupby("persona"):
        p = planted[name]
        assert _within(int(t.considered.sum()), len(t), p["awareness_to_consideration"]), name
        considered = t[t.considered]
        assert _within(
            int(considered.purchased.sum()), len(considered), p["consideration_to_purchase"]
        ), name
        buyers = t[t.purchased]
        assert _within(int(buyers.advocate.sum()), len(buyers), p["purchase_to_advocacy"]), name
    # overall: the planted rate given the realised persona mix at each step
    p_adv = truth.persona.map(lambda k: planted[k]["purchase_to_advocacy"])
    buyers = truth.purchased
    overall = planted["overall"]
    assert overall["purchase_to_advocacy"] == pytest.approx(p_adv[buyers].mean())
    assert _within(int(truth.advocate.sum()), int(buyers.sum()), p_adv[buyers].mean())
    p_con = truth.persona.map(lambda k: planted[k]["awareness_to_consideration"])
    assert overall["awareness_to_consideration"] == pytest.approx(p_con.mean())
    assert _within(int(truth.considered.sum()), len(truth), p_con.mean())
    population = planted["overall_population"]["awareness_to_consideration"]
    assert population == pytest.approx(
        sum(
            s * v
            for s, v in zip(
                info["persona_shares"].values(),
                (planted[k]["awareness_to_consideration"] for k in info["persona_shares"]),
                strict=True,
            )
        )
    )
    # the stored realised counts agree with the per-customer truth
    counts = info["stage_counts_realised"]["overall"]
    assert counts["purchased"] == int(truth.purchased.sum())
    assert counts["advocates"] == int(truth.advocate.sum())


def test_retention_matches_planted_expectation(demo: dict[str, pd.DataFrame], info: dict) -> None:
    truth = demo["truth"].set_index("customer_id")
    orders = demo["orders"]
    days = orders.ts.dt.normalize()
    first_day = days.groupby(orders.customer_id).transform("min")
    retained = set(orders.customer_id[days > first_day])
    buyers = truth[truth.purchased]
    observed = buyers.index.isin(list(retained)).sum()
    expected = buyers.p_retention.sum()
    sd = np.sqrt((buyers.p_retention * (1 - buyers.p_retention)).sum())
    # a second order on the same day as the first is rare and not counted as retention
    assert abs(observed - expected) < 4 * sd + 0.02 * len(buyers)
    stored = info["stage_conversion"]["overall"]["purchase_to_retention"]
    assert stored == pytest.approx(buyers.p_retention.mean())


def test_repeat_orders_consistent_with_planted_rates(demo: dict[str, pd.DataFrame]) -> None:
    truth = demo["truth"].set_index("customer_id")
    buyers = truth[truth.purchased].copy()
    n_orders = demo["orders"].groupby("customer_id").size()
    buyers["repeat"] = n_orders.reindex(buyers.index).to_numpy() - 1
    # E[X(t) | lambda, p] = (1 - exp(-lambda p t)) / p under BG/NBD
    exposure = (pd.Timestamp("2025-01-01") - buyers.first_order_at).dt.total_seconds() / 86400
    expected = (1 - np.exp(-buyers.lambda_per_day * buyers.p_dropout * exposure)) / (
        buyers.p_dropout
    )
    np.testing.assert_allclose(expected, buyers.expected_repeat_orders, rtol=1e-6)
    for name, b in buyers.assign(expected=expected).groupby("persona"):
        diff = b.repeat - b.expected
        se = diff.std(ddof=1) / np.sqrt(len(diff))
        assert abs(diff.mean()) < 4 * se, (name, b.repeat.mean(), b.expected.mean())
    # and the personas really differ: loyal app fans buy far more often than social browsers
    rate = buyers.assign(repeat_per_year=buyers.repeat / exposure * 365).groupby("persona")
    means = rate.repeat_per_year.mean()
    assert means["loyal_app_fans"] > 2 * means["social_browsers"]


def test_mean_spend_consistent_with_gamma_gamma(demo: dict[str, pd.DataFrame]) -> None:
    truth = demo["truth"].set_index("customer_id")
    orders = demo["orders"].join(truth[["mean_spend", "persona"]], on="customer_id")
    by = orders.groupby("persona")
    ratio = by.amount.mean() / by.mean_spend.mean()
    assert ratio.between(0.9, 1.1).all(), ratio
    spend = by.amount.mean()
    assert spend["loyal_app_fans"] > 2 * spend["bargain_hunters"]


def test_pain_point_visible_in_raw_csat(demo: dict[str, pd.DataFrame], info: dict) -> None:
    r = demo["responses"].join(demo["truth"].set_index("customer_id").persona, on="customer_id")
    csat = r[r.survey == "csat"]
    pain = (csat.persona == "support_heavy") & (csat.channel == "chat")
    assert pain.sum() >= 30
    m = csat.score[pain].mean()
    se = csat.score[pain].std() / np.sqrt(pain.sum())
    assert abs(m - info["pain_point"]["csat_mean_planted"]) < 4 * se + 0.05
    others_chat = csat.score[(csat.persona != "support_heavy") & (csat.channel == "chat")]
    own_other = csat.score[(csat.persona == "support_heavy") & (csat.channel != "chat")]
    assert others_chat.mean() > m + 1.2
    assert own_other.mean() > m + 1.2
    assert csat.score[~pain].mean() > 3.8
    # the pain point is the worst persona x channel cell with enough responses
    cells = csat.groupby(["persona", "channel"]).score.agg(["mean", "size"])
    cells = cells[cells["size"] >= 30]
    assert cells["mean"].idxmin() == ("support_heavy", "chat")


def test_detractor_themes_more_frequent_among_detractors(
    demo: dict[str, pd.DataFrame], info: dict
) -> None:
    r = demo["responses"]
    nps = r[(r.survey == "nps") & r.comment.notna()]
    phrase_theme = {
        phrase.rstrip("."): name for name, t in synth.THEMES.items() for phrase in t["phrasings"]
    }

    def kinds(text: str) -> set[str]:
        low = text.lower()
        return {
            synth.THEMES[theme]["kind"]
            for phrase, theme in phrase_theme.items()
            if phrase[1:].lower() in low
        }

    found = nps.comment.map(kinds)
    assert (found.map(len) > 0).all()
    detractor = nps.score <= 6
    promoter = nps.score >= 9
    has_det = found.map(lambda k: "detractor" in k)
    assert has_det[detractor].mean() > 0.95
    assert has_det[promoter].mean() == 0
    assert has_det[detractor].mean() > has_det[~detractor].mean() + 0.3
    assert set(info["themes"]) == set(synth.THEMES)


def _themes_of(text: str) -> set[str]:
    low = text.lower()
    return {
        name
        for name, t in synth.THEMES.items()
        for phrase in t["phrasings"]
        if phrase[1:].rstrip(".").lower() in low
    }


def test_stored_theme_shares_match_the_comments(demo: dict[str, pd.DataFrame], info: dict) -> None:
    r = demo["responses"][demo["responses"].comment.notna()]
    hi = r.survey.map({"nps": 6, "csat": 2, "ces": 3})
    lo = r.survey.map({"nps": 9, "csat": 5, "ces": 6})
    cls = np.where(r.score <= hi, "detractor", np.where(r.score >= lo, "promoter", "passive"))
    themes = r.comment.map(_themes_of)
    for c in ("detractor", "passive", "promoter"):
        mask = cls == c
        stored = info["theme_shares"][c]
        assert stored["n_comments"] == mask.sum()
        for name in synth.THEMES:
            share = themes[mask].map(lambda k, name=name: name in k).mean()
            assert share == pytest.approx(stored[name], abs=1e-3), (c, name)
    shares = info["theme_shares"]
    for name, t in synth.THEMES.items():
        if t["kind"] == "detractor":
            assert shares["detractor"][name] > 0.1 and shares["promoter"][name] == 0


def test_chat_detractors_complain_about_support(demo: dict[str, pd.DataFrame]) -> None:
    r = demo["responses"]
    bad = r[(r.survey == "csat") & (r.score <= 2) & r.comment.notna()]
    about_support = bad.comment.map(lambda c: "rude or slow support" in _themes_of(c))
    on_chat = bad.channel == "chat"
    assert about_support[on_chat].mean() > 0.5


def test_detractors_concentrated_where_planted(demo: dict[str, pd.DataFrame]) -> None:
    r = demo["responses"].join(demo["truth"].set_index("customer_id").persona, on="customer_id")
    nps = r[r.survey == "nps"]
    det = (nps.score <= 6).groupby(nps.persona).mean()
    assert det["support_heavy"] > det["loyal_app_fans"] + 0.15


def test_social_browsers_have_many_awareness_events(demo: dict[str, pd.DataFrame]) -> None:
    ev = demo["events"].join(demo["truth"].set_index("customer_id").persona, on="customer_id")
    aware = ev.event.isin(["ad_impression", "social_view"]).groupby(ev.customer_id).sum()
    persona = demo["truth"].set_index("customer_id").persona
    per = aware.groupby(persona[aware.index]).mean()
    assert per.idxmax() == "social_browsers"
    support = (ev.event == "support_contact").groupby(ev.customer_id).sum()
    assert support.groupby(persona[support.index]).mean().idxmax() == "support_heavy"


def test_volumes_per_customer_are_realistic(demo: dict[str, pd.DataFrame]) -> None:
    n = len(demo["customers"])
    assert 15 < len(demo["events"]) / n < 30
    assert 2.5 < len(demo["orders"]) / n < 6
    assert 0.35 < len(demo["responses"]) / n < 0.7


def test_generate_matches_write_demo(demo_dir: Path, demo: dict[str, pd.DataFrame]) -> None:
    again = synth.generate(2_000, seed=7)
    for name in TABLES:
        pd.testing.assert_frame_equal(getattr(again, name), demo[name], check_dtype=False)
    written = pd.read_parquet(demo_dir / "assignments.parquet")
    pd.testing.assert_frame_equal(again.assignments, written, check_dtype=False)
    assert again.info["customers"] == 2_000
    assert (
        again.info["experiment"] == json.loads((demo_dir / "_truth.json").read_text())["experiment"]
    )


# ---- the planted experiment ---------------------------------------------------------------


@pytest.fixture(scope="module")
def planted() -> synth.Demo:
    """The session demo in memory (the planted experiment included)."""
    return synth.generate(2_000, seed=7)


@pytest.fixture(scope="module")
def base() -> synth.Demo:
    """The same demo without the experiment: the base simulation alone."""
    return synth.generate(2_000, seed=7, experiment=False)


def test_the_experiment_changes_only_treated_customers_rows_after_assignment(
    planted: synth.Demo, base: synth.Demo, info: dict
) -> None:
    """Control and unassigned customers keep every row; so do treated ones before assignment."""
    assert base.assignments is None and "experiment" not in base.info
    a = planted.assignments.set_index("customer_id")
    treated = a.assigned_at[a.variant == "treatment"]
    for name in ("customers", "truth"):
        pd.testing.assert_frame_equal(getattr(planted, name), getattr(base, name))
    changed = {}
    for name in ("events", "orders", "responses"):
        both = getattr(planted, name).merge(getattr(base, name), how="outer", indicator=True)
        new = both[both._merge == "left_only"]
        gone = both[both._merge == "right_only"]
        for part in (new, gone):
            at = part.customer_id.map(treated)
            assert at.notna().all(), name  # only treated customers' rows differ
            assert (part.ts > at).all(), name  # and only after their assignment
        changed[name] = (len(new), len(gone))
    rows = info["experiment"]["rows_changed"]
    assert changed["orders"] == (
        rows["orders_added"] + rows["orders_amount_changed"],
        rows["orders_amount_changed"],
    )
    assert changed["events"] == (rows["events_added"], 0)
    assert changed["responses"] == (rows["responses_score_changed"],) * 2
    assert min(rows.values()) > 0  # the 2k demo has some of each


def test_the_experiment_truth_matches_its_assignments(
    planted: synth.Demo, demo: dict[str, pd.DataFrame], info: dict
) -> None:
    x = info["experiment"]
    a = planted.assignments
    assert list(a.columns) == ["customer_id", "experiment", "variant", "assigned_at"]
    assert a.customer_id.is_unique and set(a.experiment) == {x["name"]}
    counts = a.variant.value_counts()
    assert {v: int(counts[v]) for v in x["variants"]} == {
        v: x["arms"][v]["n"] for v in x["variants"]
    }
    assert _within(int(counts["treatment"]), len(a), x["planned_split"]["treatment"])
    lo, hi = (pd.Timestamp(t) for t in x["assigned_between"])
    assert a.assigned_at.between(lo, hi).all()
    # eligible: a first order on an earlier day than the assignment
    first = demo["truth"].set_index("customer_id").first_order_at
    assert (first[a.customer_id].dt.normalize().to_numpy() < a.assigned_at.dt.normalize()).all()
    bought = first.dropna()
    eligible = bought.index[bought.dt.normalize() < lo]
    assert set(eligible) <= set(a.customer_id)  # every one eligible at the window's start
    effect = x["effect_on_treated"]
    assert effect["conversion"] > 0 and effect["churn"] < 0 and effect["spend"] > 0


@pytest.mark.slow
def test_default_size_demo_personas_recoverable(tmp_path: Path) -> None:
    """20k customers: generated and loadable; k-means at k=5 recovers the personas."""
    from sklearn.cluster import KMeans
    from sklearn.metrics import adjusted_rand_score
    from sklearn.preprocessing import StandardScaler

    folder = synth.write_demo(tmp_path / "demo", customers=20_000, seed=42)
    data = cxkit.load(folder)
    assert data.table("customers").count().to_pandas() == 20_000
    truth = pd.read_parquet(folder / "_truth.parquet")
    counts = truth.persona.value_counts()
    for name, params in synth.PERSONAS.items():
        assert _within(int(counts[name]), len(truth), params["share"])
    ev = pd.read_parquet(folder / "events.parquet", columns=["customer_id", "event", "channel"])
    orders = pd.read_parquet(folder / "orders.parquet", columns=["customer_id", "amount"])
    ids = truth.customer_id
    features = pd.crosstab(ev.customer_id, ev.channel, normalize="index").reindex(ids)
    support = ev[ev.event == "support_contact"].groupby("customer_id").size()
    features["support_contacts"] = np.log1p(support.reindex(ids).fillna(0))
    features["orders"] = np.log1p(orders.groupby("customer_id").size().reindex(ids).fillna(0))
    features["spend"] = orders.groupby("customer_id").amount.mean().reindex(ids).fillna(0)
    x = StandardScaler().fit_transform(features.fillna(0).to_numpy())
    labels = KMeans(5, n_init=10, random_state=0).fit_predict(x)
    assert adjusted_rand_score(truth.persona, labels) >= 0.9


@settings(max_examples=15, deadline=None)
@given(
    customers=st.integers(min_value=1, max_value=60),
    seed=st.integers(min_value=0, max_value=2**32 - 1),
    chunk_size=st.integers(min_value=4, max_value=40),
)
def test_invariants_hold_for_any_small_demo(customers: int, seed: int, chunk_size: int) -> None:
    d = synth.generate(customers, seed=seed, chunk_size=chunk_size, start="2024-01-01")
    assert len(d.customers) == customers and d.customers.customer_id.is_unique
    assert set(d.events.customer_id) == set(d.customers.customer_id)
    buyers = set(d.truth.customer_id[d.truth.purchased])
    assert set(d.orders.customer_id) == buyers
    assert d.orders.order_id.is_unique and d.events.event_id.is_unique
    assert d.responses.response_id.is_unique
    lo, hi = pd.Timestamp("2024-01-01"), pd.Timestamp("2025-01-01")
    for name in ("events", "orders", "responses"):
        ts = d.tables[name].ts
        assert ts.empty or (ts.min() >= lo and ts.max() < hi)
    assert (d.orders.amount > 0).all()
