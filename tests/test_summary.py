"""Executive summary and customer scorecard."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import nbformat
import numpy as np
import pandas as pd
import pytest
from IPython.core.interactiveshell import InteractiveShell
from IPython.utils.capture import capture_output
from scipy import stats as sst

import cxkit
from cxkit import display, personas, privacy, summary, voc
from cxkit.errors import DataError, UsageError

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "90_executive_summary.ipynb"


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
    assert set(card["recommended_focus"]) <= {r.focus for r in summary.FOCUS_RULES}
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
            "nps_group": ["detractor", "detractor", None, "promoter", "promoter", None, None],
            "churn_probability": [0.9, 0.1, 0.5, 0.2, 0.2, None, 0.7],
            "clv_52w": [900.0, 10.0, 800.0, 50.0, 60.0, 900.0, 5.0],
            "has_referred": [False, False, False, True, False, False, False],
        }
    )  # median CLV 60
    assert summary.recommend_focus(card).tolist() == [
        "service recovery",
        "service recovery",
        "win back",
        "nurture",  # a promoter who already referred someone
        "ask for advocacy",
        "nurture",  # no churn score: never "win back"
        "nurture",  # likely to churn, but CLV below the median
    ]
    # a missing input never triggers its rule
    assert summary.recommend_focus(card[["clv_52w"]]).eq("nurture").all()


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


def _run_notebook(
    path: Path, params: dict[str, object], monkeypatch: pytest.MonkeyPatch
) -> tuple[dict[str, object], list[dict[str, object]]]:
    """Run a notebook's code cells in this process; return its namespace and its outputs."""
    nb = nbformat.read(path, as_version=4)
    shell = InteractiveShell.instance()
    shell.user_ns.clear()
    monkeypatch.chdir(path.parent)
    outputs: list[dict[str, object]] = []
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        with capture_output() as cap:
            got = shell.run_cell(cell.source)
            if "parameters" in cell.metadata.get("tags", []):
                shell.user_ns.update(params)
        got.raise_error()
        outputs += [{"data": o.data, "metadata": o.metadata} for o in cap.outputs]
    return shell.user_ns, outputs


def _kind(out: dict[str, object]) -> str | None:
    return ((out.get("metadata") or {}).get("cxkit") or {}).get("kind")  # type: ignore[union-attr]


@pytest.mark.slow
def test_orders_only_summary_names_the_missing_parts(
    tmp_path: Path, demo_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    orders = pd.read_parquet(demo_dir / "orders.parquet")
    orders.to_parquet(tmp_path / "orders.parquet")
    monkeypatch.setenv(display.CURRENCY_ENV, "$")
    ns, outputs = _run_notebook(NOTEBOOK, {"data": str(tmp_path), "random_state": 0}, monkeypatch)
    es = ns["es"]
    assert isinstance(es, summary.ExecutiveSummary)
    # each part not available is said once, in its own section (not again at the top)
    notes = [o["metadata"]["cxkit"]["reason"] for o in outputs if _kind(o) == "not_available"]
    voc_note = es.domains["voc"].missing
    assert voc_note and notes.count(voc_note) == 1
    assert all(notes.count(n) == 1 for n in notes), notes
    # the customers with the most value at risk: a stakeholder table, money in dollars
    page = "".join(str(o["data"].get("text/html", "")) for o in outputs)
    table = next(t for t in re.findall(r"<table.*?</table>", page, flags=re.S) if "P(alive)" in t)
    header = re.findall(r"<th>(.*?)</th>", table)
    assert header == [
        "customer ID", "persona", "spend to date", "P(alive)", "churn probability",
        "CLV, next 52 weeks", "CLV at risk, next 52 weeks", "NPS group", "recommended focus",
    ]  # fmt: skip
    assert not [h for h in header if "_" in h]
    assert re.search(r'<td class="cx-num">\$[\d,]+\.\d\d</td>', table)
    held = float(es.scorecard.nlargest(10, "clv_at_risk_52w")["clv_at_risk_52w"].sum())
    assert f"hold ${held:,.0f} of expected 52-week value" in page
    # the method note names the model whose churn scores the scorecard holds
    churn_result = es.domains["churn"].result
    assert isinstance(churn_result, cxkit.churn.ChurnResult)
    assert f"comes from {churn_result.scores_label}" in page or (
        f"the churn report's model ({churn_result.scores_label})" in page
    )
    assert "calibrated churn model" not in page
    kpis = es.kpis.set_index("kpi")
    gap_kpi = summary.VALUE_TILE[0]
    assert not kpis.loc[gap_kpi, "available"]
    assert kpis.loc[gap_kpi, "sentence"] == (
        "The survey-to-value linkage is not available: this needs the table 'responses'."
    )
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
    # the stages left out are named, in the lifecycle report's own words
    assert es.stages_missing == life.missing_parts["stages"]
    for stage in ("awareness", "consideration", "advocacy"):
        assert f"{stage} needs" in es.stages_missing


def test_summary_ladder_without_the_lifecycle_result_has_only_supported_stages(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def fails(data: cxkit.CXData, **options: object) -> object:
        raise DataError("the lifecycle analysis broke")

    monkeypatch.setitem(summary.ANALYSES, "lifecycle", fails)
    orders = pd.DataFrame(
        {
            "order_id": ["o1", "o2", "o3"],
            "customer_id": ["a", "a", "b"],
            "ts": pd.to_datetime(["2024-01-02", "2024-02-03", "2024-01-05"]),
            "amount": [10.0, 5.0, 7.5],
        }
    )
    es = summary.executive_summary(cxkit.load({"orders": orders}))
    assert es.domains["lifecycle"].result is None
    assert es.funnel is not None
    assert list(es.funnel["step_name"]) == ["purchase", "retention"]
    assert es.funnel["n_customers"].tolist() == [2, 1]
    assert es.stages_missing is not None and "awareness needs table 'events'" in es.stages_missing


@pytest.mark.slow
def test_summary_states_the_voc_reports_value_findings_word_for_word(
    es: summary.ExecutiveSummary, demo_data: cxkit.CXData
) -> None:
    # the VoC report's call (notebook 50): its own persona labels and the CLV and churn
    # reports' results
    labels, _ = personas.resolve_persona_labels(demo_data)
    report = voc.value_linkage(demo_data, personas=labels, random_state=0)
    theirs = [f.sentence for f in report.findings()]
    assert len(theirs) == 3
    ours = [f.sentence for f in es.domains["voc"].findings if f.metric.startswith("detractor_")]
    assert ours == theirs
    assert es.survey_value is not None
    pd.testing.assert_frame_equal(es.survey_value.by_nps, report.by_nps)
    kpis = es.kpis.set_index("kpi")
    kpi, metric = summary.VALUE_TILE
    gap = next(f for f in report.findings() if f.metric == metric)
    assert kpis.loc[kpi, "sentence"] == gap.sentence and kpis.loc[kpi, "available"]
    assert (
        kpis.loc[kpi, "value"] == pytest.approx(gap.value) and kpis.loc[kpi, "unit"] == "currency"
    )
    # the churn gap rests on the scorecard's own churn probabilities and groups
    card = es.scorecard
    mean = card.groupby("nps_group")["churn_probability"].mean()
    row = es.survey_value.gap(es.survey_value.measure("churn"))
    assert row["diff"] == pytest.approx(mean["detractor"] - mean["promoter"])


def test_the_scorecard_note_names_whose_churn_scores_it_holds(
    es: summary.ExecutiveSummary,
) -> None:
    run = es.domains["churn"]
    assert isinstance(run.result, cxkit.churn.ChurnResult)
    note = summary.scorecard_note(es)
    assert (
        f"`churn_probability` comes from the churn report's model ({run.result.scores_label})"
        in note
    )
    lost = dataclasses.replace(run.result, scores_from="bgnbd")
    baseline = dataclasses.replace(
        es, domains={**es.domains, "churn": dataclasses.replace(run, result=lost)}
    )
    note = summary.scorecard_note(baseline)
    assert (
        "`churn_probability` comes from BG/NBD P(no order in horizon), the baseline that beat"
        in note
    )
    InteractiveShell.instance()
    with capture_output() as cap:
        summary.show_method_notes(baseline)
    shown = cap.outputs[0].data["text/html"]
    assert "<code>churn_probability</code> comes from BG/NBD P(no order in horizon)" in shown
    assert "calibrated churn model" not in shown
