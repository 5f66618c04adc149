"""Executive summary and customer scorecard."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sst

import cxkit
from cxkit import display, privacy, summary
from cxkit.errors import UsageError


@pytest.fixture(scope="module")
def es(demo_data: cxkit.CXData) -> summary.ExecutiveSummary:
    return summary.executive_summary(demo_data, random_state=0)


@pytest.mark.slow
def test_scorecard_has_exactly_one_row_per_customer(
    es: summary.ExecutiveSummary, demo_dir: Path
) -> None:
    card = es.scorecard
    customers = pd.read_parquet(demo_dir / "customers.parquet")
    assert len(card) == len(customers)
    assert card["customer_id"].is_unique
    assert set(card["customer_id"]) == set(customers["customer_id"])
    # every column a reader needs is there and filled where its domain applies
    buyers = card["spend_to_date"] > 0
    assert card.loc[buyers, "clv_52w"].notna().all()
    assert card.loc[buyers, "p_alive"].between(0, 1).all()
    assert card["churn_probability"].dropna().between(0, 1).all()
    assert set(card["recommended_focus"]) <= {f for f, _ in summary.FOCUS_RULES}
    assert card["persona"].notna().all()
    at_risk = card["clv_at_risk_52w"].dropna()
    np.testing.assert_allclose(
        at_risk, (card["clv_52w"] * card["churn_probability"]).dropna(), rtol=1e-12
    )


@pytest.mark.slow
def test_kpi_tiles_are_the_domain_findings(es: summary.ExecutiveSummary) -> None:
    kpis = es.kpis.set_index("kpi")
    voc = {f.metric: f for f in es.domains["voc"].findings}
    churn = {f.metric: f for f in es.domains["churn"].findings}
    assert kpis.loc["NPS", "sentence"] == voc["nps"].sentence
    assert kpis.loc["NPS", "value"] == voc["nps"].value
    assert kpis.loc["Churn rate", "sentence"] == churn["churn_rate"].sentence
    total = es.domains["clv"].findings[
        [f.metric for f in es.domains["clv"].findings].index("total_clv_52w")
    ]
    assert kpis.loc["Total CLV (52 weeks)", "value"] == pytest.approx(total.value)
    assert kpis.loc["Total CLV (52 weeks)", "value"] == pytest.approx(es.scorecard.clv_52w.sum())
    assert kpis.loc["Customers", "value"] == len(es.scorecard)
    assert not es.missing


@pytest.mark.slow
def test_clv_at_risk_ranking_agrees_with_planted_truth(
    es: summary.ExecutiveSummary, demo_dir: Path
) -> None:
    truth = pd.read_parquet(demo_dir / "_truth.parquet")
    card = es.scorecard.merge(truth, on="customer_id")
    card = card[card["clv_at_risk_52w"].notna()]
    # truth: expected purchases in the next 52 weeks for a customer alive at the end
    # ((1 - exp(-lambda p t)) / p under BG/NBD) times true mean spend, lost with the true
    # probability of no order in the 90-day horizon.
    t = 52 * 7
    lam, p = card["lambda_per_day"], card["p_dropout"]
    alive = card["alive_at_end"].astype(bool)
    value = np.where(alive, (1 - np.exp(-lam * p * t)) / p * card["mean_spend"], 0.0)
    p_churn = np.where(alive, np.exp(-lam * 90), 1.0)
    rho = sst.spearmanr(card["clv_at_risk_52w"], value * p_churn).statistic
    assert rho > 0.3, rho


def test_recommend_focus_rules_first_match_wins() -> None:
    card = pd.DataFrame(
        {
            "nps_group": ["detractor", "detractor", None, "promoter", "promoter", None],
            "risk_band": ["high", "low", "high", "low", "low", None],
            "spend_to_date": [900.0, 10.0, 800.0, 50.0, 60.0, 5.0],
            "has_referred_or_reviewed": [False, False, False, True, False, False],
        }
    )
    assert summary.recommend_focus(card).tolist() == [
        "service recovery",
        "service recovery",
        "win back",
        "nurture",
        "ask for advocacy",
        "nurture",
    ]
    # a missing input never triggers its rule
    assert summary.recommend_focus(card[["spend_to_date"]]).eq("nurture").all()


def test_write_scores_is_atomic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    card = pd.DataFrame({"customer_id": ["a", "b"], "clv_52w": [1.0, 2.0]})
    pq, csv = summary.write_scores(card, tmp_path)
    assert pd.read_parquet(pq).equals(card)
    before = {p.name: p.read_bytes() for p in (pq, csv)}

    def boom(frame: pd.DataFrame) -> bytes:
        raise OSError("disk full")

    monkeypatch.setattr(summary, "csv_bytes", boom)
    with pytest.raises(OSError, match="disk full"):
        summary.write_scores(card.assign(clv_52w=[9.0, 9.0]), tmp_path)
    # the CSV is built before either file is replaced: both are as they were
    assert {p.name: p.read_bytes() for p in (pq, csv)} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["scores.csv", "scores.parquet"]


def _scorecard_like(n: int = 3000, seed: int = 0) -> pd.DataFrame:
    """A frame with every column type of the scorecard, and awkward values in each."""
    rng = np.random.default_rng(seed)
    spend = np.round(rng.gamma(1.2, 200.0, n), 2)
    spend[rng.random(n) < 0.5] = 0.0
    p = rng.random(n)
    p[rng.random(n) < 0.4] = np.nan
    p[:8] = [1e-05, 3.2e-07, 1.0, 0.0, -0.0, 5e-324, 1e16, 1.5e15]
    nps = pd.array(rng.integers(0, 11, n), dtype="Int64")
    nps[rng.random(n) < 0.7] = pd.NA
    ts = pd.Timestamp("2023-01-01") + pd.to_timedelta(rng.integers(0, 10**13, n), unit="us")
    stamps = pd.Series(ts).astype("datetime64[us]")
    stamps[::17] = pd.NaT
    band = pd.Series(rng.choice(["low", "medium", "high"], n), dtype="string")
    band[p != p] = pd.NA
    return pd.DataFrame(
        {
            "customer_id": pd.Series([f"C{i:07d}" for i in range(n)], dtype="str"),
            "persona": pd.Series(rng.choice(["Store regulars", "App loyalists"], n), dtype="str"),
            "last_activity_at": stamps,
            "spend_to_date": spend,
            "p_alive": p,
            "risk_band": band,
            "latest_nps": nps,
            "has_referred_or_reviewed": pd.array(rng.random(n) < 0.1, dtype="boolean"),
            "referred": rng.random(n) < 0.5,
        }
    )


@pytest.mark.parametrize(
    "change",
    ["none", "quoted text", "dates only", "whole seconds", "milliseconds", "nanoseconds"],
)
def test_scores_csv_is_what_pandas_writes(tmp_path: Path, change: str) -> None:
    card = _scorecard_like()
    if change == "quoted text":
        card.loc[::5, "persona"] = 'Mid-value, "chat" seekers'
        card.loc[1, "persona"] = "two\nlines"
    elif change == "dates only":
        card["last_activity_at"] = card["last_activity_at"].dt.floor("D")
    elif change == "whole seconds":
        card["last_activity_at"] = card["last_activity_at"].dt.floor("s")
    elif change == "milliseconds":
        card["last_activity_at"] = card["last_activity_at"].dt.floor("ms")
    elif change == "nanoseconds":
        card["last_activity_at"] = card["last_activity_at"].astype("datetime64[ns]") + pd.Timedelta(
            1, "ns"
        )
    pq, csv = summary.write_scores(card, tmp_path)
    assert csv.read_bytes() == card.to_csv(index=False).encode()
    pd.testing.assert_frame_equal(pd.read_parquet(pq), card)


@pytest.mark.parametrize(
    "column",
    [
        pd.Categorical(["a", "b", "a"]),
        pd.to_datetime(["2024-01-01 10:00"] * 3).tz_localize("UTC"),
        np.array([1.5, np.nan, 2.0], dtype=np.float32),
        pd.Series([1, "x", None], dtype=object),
        pd.Series(["carriage\rreturn", "b", "c"], dtype="str"),
    ],
    ids=["categorical", "time zone", "float32", "mixed objects", "carriage return"],
)
def test_scores_csv_falls_back_to_pandas_for_other_columns(column: object) -> None:
    frame = pd.DataFrame({"customer_id": ["a", "b", "c"], "other": column})
    assert summary.csv_bytes(frame) == frame.to_csv(index=False).encode()


def test_write_scores_publishes_pseudonymous_ids(tmp_path: Path) -> None:
    card = _scorecard_like(50)
    card.attrs["as_of"] = "2024-12-31"
    pq, csv = summary.write_scores(card, tmp_path, customer_ids="pseudonymous", key="k")
    shown = pd.read_parquet(pq)
    assert shown["customer_id"].tolist() == privacy.pseudonymize(card["customer_id"], "k").tolist()
    assert shown.attrs["as_of"] == "2024-12-31"
    assert "C00000" not in csv.read_text()
    pd.testing.assert_frame_equal(
        shown.drop(columns="customer_id"), card.drop(columns="customer_id")
    )
    assert card["customer_id"].iloc[0] == "C0000000"  # the scorecard itself keeps real IDs
    with pytest.raises(UsageError, match="no key is set"):
        summary.write_scores(card, tmp_path, customer_ids="pseudonymous")


def test_tiles_escape_text() -> None:
    kpis = pd.DataFrame(
        [
            {
                "kpi": "<b>x</b>",
                "value": 1.0,
                "unit": "share",
                "ci_low": None,
                "ci_high": None,
                "n": 1,
                "sentence": "<script>alert(1)</script>",
                "small_n": True,
                "available": True,
            }
        ]
    )
    html = display.tiles_html(kpis)
    assert "<script>alert" not in html and "&lt;script&gt;" in html
    assert "cx-small" in html


@pytest.mark.slow
def test_orders_only_summary_names_the_missing_parts(tmp_path: Path, demo_dir: Path) -> None:
    orders = pd.read_parquet(demo_dir / "orders.parquet")
    orders.to_parquet(tmp_path / "orders.parquet")
    es = summary.executive_summary(cxkit.load(tmp_path), random_state=0)
    kpis = es.kpis.set_index("kpi")
    assert not kpis.loc["NPS", "available"]
    assert "responses" in kpis.loc["NPS", "sentence"]
    assert any("voc" in m and "responses" in m for m in es.missing)
    assert kpis.loc["Total CLV (52 weeks)", "available"]
    assert len(es.scorecard) == orders["customer_id"].nunique()
    # the ladder is the lifecycle report's: only the stages orders can support, none
    # shown as a made-up 100% or 0%
    assert es.funnel is not None
    assert list(es.funnel["step_name"]) == ["purchase", "retention"]
    life = es.domains["lifecycle"].result
    assert isinstance(life, cxkit.lifecycle.LifecycleResult)
    pd.testing.assert_frame_equal(es.funnel, life.stage_funnel)
