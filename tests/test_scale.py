"""Scale mode (cxkit.scale, cxkit.churn.scale): bounded collects, samples, batches.

The churn, CLV and personas reports run in scale mode here too, each page checked for
what it says (:data:`SCALE_PAGES`).

The churn comparison runs memory and scale mode on a 20,000-customer demo (seed 42) with
``sample_rows=4000, max_collect_rows=5000, batch_rows=3000``, so that every cutoff's
labelled population (5,100–7,650 customers) is sampled and scoring takes three batches.
"""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import ibis
import numpy as np
import pandas as pd
import pytest
import yaml

import cxkit
from cxkit import churn, scale, summary, synth, voc
from cxkit.churn.scale import ScaleChurnResult
from cxkit.errors import NotAvailableError, ScaleLimitError, UsageError
from cxkit.scale import ScaleSettings, bounded_to_pandas, score_in_batches, stratified_sample
from tests.backends import postgres_server, spark_session  # noqa: F401 - fixtures
from tests.collects import Collects

ROOT = Path(__file__).resolve().parents[1]
SMALL = ScaleSettings(mode="scale", sample_rows=4000, max_collect_rows=5000, batch_rows=3000)


def _frame(n: int) -> pd.DataFrame:
    ids = [f"C{i:06d}" for i in range(n)]
    rng = np.random.default_rng(3)
    return pd.DataFrame(
        {"customer_id": ids, "churned": (rng.random(n) < 0.3).astype("int64"), "x": rng.random(n)}
    )


# --------------------------------------------------------------------------------------
# settings
# --------------------------------------------------------------------------------------


def test_settings_from_env_and_values(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(scale.SCALE_ENV, raising=False)
    assert scale.current_settings() == ScaleSettings()
    monkeypatch.setenv(scale.SCALE_ENV, json.dumps({"mode": "scale", "sample_rows": 10}))
    got = scale.current_settings()
    assert (got.mode, got.sample_rows, got.max_collect_rows) == ("scale", 10, 250_000)
    assert ScaleSettings.from_value(json.loads(got.to_json())) == got
    assert ScaleSettings.from_value({"batch_rows": 5}).mode == "scale"  # limits imply scale
    monkeypatch.setenv(scale.SCALE_ENV, "{not json")
    with pytest.raises(UsageError, match="CXKIT_SCALE must be JSON"):
        scale.current_settings()
    with pytest.raises(UsageError, match=r"unknown scale setting\(s\) \['rows'\]; valid settings"):
        ScaleSettings.from_value({"rows": 5})
    with pytest.raises(UsageError, match=r"must be one of \['memory', 'scale'\], got 'big'"):
        ScaleSettings(mode="big")
    with pytest.raises(UsageError, match=r"sample_rows .* must not exceed max_collect_rows"):
        ScaleSettings(mode="scale", sample_rows=10, max_collect_rows=5)


def test_reports_yml_scale_key_is_checked_and_reaches_kernels(tmp_path: Path) -> None:
    from cxkit.report.config import parse_config

    nb = ROOT / "notebooks" / "20_churn.ipynb"
    raw = {"data": str(tmp_path), "reports": [{"name": "churn", "notebook": str(nb)}]}
    assert parse_config(raw, base=tmp_path).scale is None  # absent: memory mode
    assert parse_config({**raw, "scale": None}, base=tmp_path).scale is None
    cfg = parse_config({**raw, "scale": {"sample_rows": 100}}, base=tmp_path)
    assert cfg.scale == ScaleSettings(mode="scale", sample_rows=100)
    with pytest.raises(UsageError, match=r"scale: unknown scale setting\(s\) \['sample'\]"):
        parse_config({**raw, "scale": {"sample": 100}}, base=tmp_path)


# --------------------------------------------------------------------------------------
# the building blocks
# --------------------------------------------------------------------------------------


def test_bounded_to_pandas_refuses_above_the_limit() -> None:
    t = ibis.memtable(_frame(60))
    limits = ScaleSettings(mode="scale", sample_rows=50, max_collect_rows=50)
    with pytest.raises(ScaleLimitError) as err:
        bounded_to_pandas(t, what="churn features at 2024-10-02", settings=limits)
    msg = str(err.value)
    assert msg.startswith("churn features at 2024-10-02: 60 rows is more than")
    assert "limit of 50 rows" in msg and "Fix: raise max_collect_rows" in msg
    assert len(bounded_to_pandas(t.limit(50), what="x", settings=limits)) == 50


def test_strict_mode_fails_any_collect_over_the_limit(
    demo_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    strict = ScaleSettings.from_value({"max_collect_rows": 300, "sample_rows": 100, "strict": True})
    assert strict.scale and strict.strict
    with pytest.raises(UsageError, match="scale strict must be true or false, got 'yes'"):
        ScaleSettings(mode="scale", strict="yes")  # type: ignore[arg-type]
    monkeypatch.setenv(scale.SCALE_ENV, strict.to_json())
    cx = cxkit.load(demo_dir)  # strict scale mode: cxkit.load guards the connection
    customers = cx.table("customers")
    with pytest.raises(ScaleLimitError, match=r"a result \(strict scale mode\): 2,000 rows"):
        customers.to_pandas()
    with pytest.raises(ScaleLimitError):
        customers.to_pyarrow()
    assert len(customers.limit(300).to_pandas()) == 300  # at the limit: fine
    assert int(customers.count().to_pandas()) == 2_000  # a scalar: one row
    streamed = sum(b.num_rows for b in customers.to_pyarrow_batches(chunk_size=250))
    assert streamed == 2_000  # batches are bounded by their size and pass
    monkeypatch.setenv(scale.SCALE_ENV, ScaleSettings(mode="scale").to_json())
    assert len(cxkit.load(demo_dir).table("customers").to_pandas()) == 2_000  # not strict


def test_stratified_sample_is_deterministic_and_proportional() -> None:
    df = _frame(10_000)
    con = ibis.duckdb.connect()
    t = con.create_table("labels", df)
    a = stratified_sample(t, by="churned", n=1000)
    b = stratified_sample(con.table("labels"), by="churned", n=1000)
    ids_a = sorted(a.expr.to_pandas().customer_id)
    assert ids_a == sorted(b.expr.to_pandas().customer_id)  # same data, same rows
    pop = df.churned.value_counts().to_dict()
    assert a.population == pop and a.total == 10_000
    assert abs(a.n - 1000) <= 2
    got = a.expr.to_pandas().churned.value_counts().to_dict()
    assert got == a.sizes
    for v in (0, 1):  # every stratum the same share, up to rounding
        assert a.fractions[v] == pytest.approx(0.1, abs=1 / pop[v])
    # not the first ids: spread over the whole range (a hash order, not the id order)
    assert ids_a[0] < "C001000" and ids_a[-1] > "C009000"
    whole = stratified_sample(t, by=None, n=50_000)
    assert whole.fractions == {None: 1.0} and whole.n == 10_000


def test_score_in_batches_equals_scoring_in_one_go() -> None:
    df = _frame(10_000)
    con = ibis.duckdb.connect()
    t = con.create_table("feats", df)

    def predict(b: pd.DataFrame) -> pd.DataFrame:
        return pd.DataFrame({"customer_id": b.customer_id, "p": np.sqrt(b.x) * 0.5 + b.churned})

    calls: list[int] = []

    def counted(b: pd.DataFrame) -> pd.DataFrame:
        calls.append(len(b))
        return predict(b)

    out = score_in_batches(t, counted, con=con, name="scores_test", batch_rows=3000)
    assert len(calls) >= 4 and max(calls) <= 3000  # streamed, never all at once
    got = out.to_pandas().sort_values("customer_id", ignore_index=True)
    want = predict(df).sort_values("customer_id", ignore_index=True)
    pd.testing.assert_frame_equal(got, want, check_dtype=False)
    with pytest.raises(UsageError, match="table name must be letters"):
        score_in_batches(t, predict, con=con, name="x; drop", batch_rows=10)


def test_score_in_batches_in_an_order_forms_the_same_batches_every_run() -> None:
    df = _frame(10_000).sample(frac=1.0, random_state=3)  # stored out of order
    con = ibis.duckdb.connect()
    t = con.create_table("shuffled", df)
    batches: list[list[str]] = []

    def first_last(b: pd.DataFrame) -> pd.DataFrame:
        batches.append(b.customer_id.tolist())
        return pd.DataFrame({"customer_id": b.customer_id, "n": len(b)})

    score_in_batches(
        t, first_last, con=con, name="ordered", batch_rows=3000, order_by="customer_id"
    )
    ids = sorted(df.customer_id)
    # consecutive customer ranges: the batches depend on the data only, not on the engine
    assert [i for b in batches for i in b] == ids
    assert max(len(b) for b in batches) <= 3000 and len(batches) >= 4


def test_tables_written_on_in_memory_duckdb_are_shared_through_the_run_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import subprocess
    import sys

    from cxkit.cache import CACHE_ENV

    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "cache"))
    con = ibis.duckdb.connect()  # in memory: no other process could see a table in it
    feats = con.create_table("feats", _frame(5_000))

    def predict(b: pd.DataFrame) -> pd.DataFrame:
        return pd.DataFrame({"customer_id": b.customer_id, "p": b.x / 2})

    score_in_batches(feats, predict, con=con, name="shared_scores", batch_rows=2_000)
    parts = sorted((scale.scratch_dir() / "shared_scores").glob("*.parquet"))
    assert scale.scratch_dir() == tmp_path / "cache" / "scale-tables" and len(parts) == 3
    code = (
        "import ibis; from cxkit import scale\n"
        "t = scale.open_table(ibis.duckdb.connect(), 'shared_scores')\n"
        "print(int(t.count().to_pandas()), round(float(t.p.sum().to_pandas()), 6))"
    )
    other = subprocess.run(  # another kernel of the same run
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    )
    want = f"5000 {round(float(_frame(5_000).x.sum() / 2), 6)}"
    assert other.stdout.split() == want.split()
    with pytest.raises(NotAvailableError, match="the table 'not_written' written by scale mode"):
        scale.open_table(ibis.duckdb.connect(), "not_written")


@pytest.mark.spark
@pytest.mark.slow
def test_tables_written_on_spark_are_parquet_parts_another_session_opens(
    spark_session: object,  # noqa: F811
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from cxkit.cache import CACHE_ENV

    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "cache"))
    con = ibis.pyspark.connect(spark_session)
    spark_session.createDataFrame(_frame(3_000)).createOrReplaceTempView("feats_spark")  # type: ignore[attr-defined]

    def predict(b: pd.DataFrame) -> pd.DataFrame:
        return pd.DataFrame({"customer_id": b.customer_id, "p": b.x / 2})

    out = score_in_batches(
        con.table("feats_spark"), predict, con=con, name="spark_scores", batch_rows=1_000
    )
    assert int(out.count().to_pandas()) == 3_000
    assert len(list((scale.scratch_dir() / "spark_scores").glob("*.parquet"))) == 3
    spark_session.catalog.dropTempView("spark_scores")  # as in another kernel's session
    again = scale.open_table(con, "spark_scores")
    assert round(float(again.p.sum().to_pandas()), 6) == round(float(_frame(3_000).x.sum() / 2), 6)


# --------------------------------------------------------------------------------------
# churn: scale mode against memory mode
# --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def demo20k(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return synth.write_demo(tmp_path_factory.mktemp("d") / "demo", customers=20_000, seed=42)


@pytest.mark.slow
def test_churn_scale_mode_matches_memory_mode_within_tolerances(demo20k: Path) -> None:
    """Scale mode on the 20k demo gives the memory-mode headline figures.

    Tolerances: the churn rate (customers, churners) is exact (an engine count in both
    modes); the test ROC AUC within 0.02 (the model is fitted on 4,000 of 5,100–6,350
    customers and tested on 4,000 of 7,645); the high-risk share within 3 percentage
    points; the customers scored exact. No result handed from DuckDB to Python during the
    scale-mode analysis has more than ``max_collect_rows`` rows.
    """
    cx = cxkit.load(demo20k)
    mem = churn.analyze(cx, mode="memory")
    with Collects.in_scale_mode(SMALL) as collects:
        res = churn.analyze(cx)  # the mode from CXKIT_SCALE
    assert isinstance(res, ScaleChurnResult) and not isinstance(mem, ScaleChurnResult)
    collects.assert_at_most(SMALL.max_collect_rows)
    assert len(mem.scores) > SMALL.max_collect_rows  # memory mode would have exceeded it

    for key in ("customers", "churners", "cutoff"):
        assert res.churn_rate[key] == mem.churn_rate[key]
    assert res.findings()[0].sentence == mem.findings()[0].sentence
    assert abs(res.backtest.auc() - mem.backtest.auc()) < 0.02
    assert res.scores_n == len(mem.scores)
    share_s = res.high_risk_n / res.scores_n
    share_m = mem.high_risk_n / len(mem.scores)
    assert abs(share_s - share_m) < 0.03
    assert [f.metric for f in res.findings()] == [f.metric for f in mem.findings()]
    assert res.band_summary.customers.sum() == res.scores_n
    assert res.histogram.customers.sum() == res.scores_n
    assert res.risk_by.customers.sum() == res.scores_n
    assert set(res.risk_by.acquisition_channel) == set(mem.risk_by.acquisition_channel)
    assert len(res.at_risk) == 15 and (res.at_risk.risk_band == "high").all()
    assert res.at_risk.spend_total.is_monotonic_decreasing
    # the scores table in the engine holds every customer, once
    table = cx.con.table(res.scores_table)
    assert table.count().to_pandas() == res.scores_n
    assert table.customer_id.nunique().to_pandas() == res.scores_n
    s = res.mode_sentence
    assert s.startswith("Scale mode: model fitted on a stratified sample of 4,000 of ")
    assert f"{res.scores_n:,} scores written to table cxkit_churn_scores" in s
    assert "no per-customer frame over 5,000 rows collected" in s
    assert s in res.notes
    assert res.takeaways()["bands"].endswith(f"{res.scores_n:,} customers scored as of 2024-12-31.")
    # the scorecard and the survey-to-value linkage leave churn out and say why, instead of
    # joining the (empty) in-memory scores into missing values
    assert churn.held_scores(mem) is mem.scores
    with pytest.raises(
        NotAvailableError, match="in scale mode the churn scores stay in the engine"
    ):
        churn.held_scores(res)
    no_personas = pd.DataFrame({"customer_id": pd.Series(dtype="string"), "persona": []})
    card = summary.scorecard(cx, churn_result=res, personas=no_personas)
    assert card["churn_probability"].isna().all()
    assert any("cxkit_churn_scores" in n for n in card.attrs["notes"])
    # the survey-to-value linkage joins the engine's scores in the engine instead
    linked, linked_mem = voc.survey_value(cx, churn=res), voc.survey_value(cx, churn=mem)
    assert linked.customers is None and "churn" not in linked.unavailable
    got, want = (
        v.by_nps[v.by_nps.measure == "churn_probability"].set_index("nps_group")
        for v in (linked, linked_mem)
    )
    assert got["n"].tolist() == want["n"].tolist()  # every respondent scored, as in memory
    # scale mode fits the model on a sample: mean scores by group agree within 3 points
    np.testing.assert_allclose(got["value"], want["value"], atol=0.03)


def test_churn_analyze_checks_the_mode(demo_data: cxkit.CXData) -> None:
    with pytest.raises(UsageError, match=r"mode must be one of \['memory', 'scale'\], got 'huge'"):
        churn.analyze(demo_data, mode="huge")


#: Limits far below the 2,000-customer demo (``demo_dir``).
TINY = {"sample_rows": 300, "max_collect_rows": 400, "batch_rows": 200}
#: Each report run in scale mode on the 2,000-customer demo: its notebook, the ``scale:``
#: key of reports.yml, and what its page must say.
SCALE_PAGES: dict[str, tuple[str, dict[str, int], tuple[str, ...]]] = {
    "churn": (
        "20_churn.ipynb",
        TINY,
        (
            "Scale mode: model fitted on a stratified sample of 300 of",
            "no per-customer frame over 400 rows collected",
            # time to churn counts customers per duration in the engine: more rows than
            # the tiny limit here, and the page says so instead of collecting them
            "time-to-churn counts (group × duration × outcome): 493 rows is more than",
        ),
    ),
    "clv": (
        "30_clv.ipynb",
        TINY,
        (
            # more distinct (frequency, recency, T) rows than the tiny limit: a stated sample's
            "Scale mode: BG/NBD fitted on a sample of 300 of ",
            "no per-customer frame over 400 rows collected",
            "Not shown in scale mode",
        ),
    ),
    "personas": (
        "40_personas.ipynb",
        {"sample_rows": 800, "max_collect_rows": 1000, "batch_rows": 700},
        (
            "Scale mode: personas fitted on a stratified sample of 800 of 2,000 customers",
            "cxkit_persona_labels",
            "not shown in scale mode",
        ),
    ),
}


@pytest.mark.slow
@pytest.mark.parametrize("report", list(SCALE_PAGES))
def test_report_runs_in_scale_mode_and_says_so(report: str, demo_dir: Path, tmp_path: Path) -> None:
    from cxkit.report.pipeline import run_reports

    notebook, limits, sentences = SCALE_PAGES[report]
    cfg = {
        "data": str(demo_dir),
        "out": str(tmp_path / "out"),
        "jobs": 1,
        "scale": limits,
        "reports": [{"name": report, "notebook": str(ROOT / "notebooks" / notebook)}],
    }
    path = tmp_path / "reports.yml"
    path.write_text(yaml.safe_dump(cfg))
    res = run_reports(path, stream=io.StringIO())
    assert res.exit_code == 0, {n: r.error for n, r in res.reports.items()}
    page = (tmp_path / "out" / f"{report}.html").read_text()
    for sentence in sentences:
        assert sentence in page
    assert "Traceback" not in page


def test_cli_scale_flag_turns_scale_mode_on(monkeypatch: pytest.MonkeyPatch) -> None:
    from cxkit import cli

    seen: list[str | None] = []
    monkeypatch.setattr(
        cli, "run_from_cli", lambda args: seen.append(os.environ.get("CXKIT_SCALE")) or 0
    )
    # set first, so that monkeypatch records it and unsets what the CLI sets after the test
    monkeypatch.setenv(scale.SCALE_ENV, "memory")
    monkeypatch.delenv(scale.SCALE_ENV)
    assert cli.main(["report", "--only", "churn"]) == 0
    assert cli.main(["report", "--scale", "--only", "churn"]) == 0
    assert seen[0] is None
    assert ScaleSettings.from_value(json.loads(seen[1])) == ScaleSettings(mode="scale")


def _engine_parity(other: cxkit.CXData, tables: dict[str, pd.DataFrame]) -> None:
    """Scale mode on another engine: the same counts as DuckDB's scale mode, scores in its
    engine table, and a model of the same quality (the hash sample differs by engine)."""
    limits = ScaleSettings(mode="scale", sample_rows=800, max_collect_rows=1000, batch_rows=500)
    os.environ[scale.SCALE_ENV] = limits.to_json()
    try:
        ref = churn.analyze(cxkit.load(tables))
        got = churn.analyze(other)
    finally:
        del os.environ[scale.SCALE_ENV]
    assert isinstance(got, ScaleChurnResult)
    for key in ("customers", "churners", "cutoff"):
        assert got.churn_rate[key] == ref.churn_rate[key], key
    assert got.findings()[0].sentence == ref.findings()[0].sentence
    assert got.scores_n == ref.scores_n
    assert got.band_summary.customers.sum() == got.scores_n
    assert other.con.table(got.scores_table).count().to_pandas() == got.scores_n
    assert abs(got.backtest.auc() - ref.backtest.auc()) < 0.05


@pytest.fixture(scope="module")
def small_tables() -> dict[str, pd.DataFrame]:
    d = synth.generate(2_500, seed=7)
    return {k: v for k, v in d.tables.items() if k in ("customers", "orders", "events")}


@pytest.mark.postgres
@pytest.mark.slow
def test_churn_scale_mode_on_postgres_matches_duckdb(
    postgres_server: str,  # noqa: F811
    small_tables: dict[str, pd.DataFrame],
) -> None:
    from tests.test_backends import into_postgres

    _engine_parity(into_postgres(postgres_server, small_tables), small_tables)


@pytest.mark.spark
@pytest.mark.slow
def test_churn_scale_mode_on_spark_matches_duckdb(
    spark_session: object,  # noqa: F811
    small_tables: dict[str, pd.DataFrame],
) -> None:
    from tests.test_backends import into_spark

    _engine_parity(into_spark(spark_session, small_tables), small_tables)


def test_persona_labels_kept_in_the_engine_give_the_same_breakdowns(
    demo_data: cxkit.CXData,
) -> None:
    from cxkit import lifecycle
    from cxkit.personas import persona_labels

    labels = persona_labels(demo_data)
    frame = labels.rename("persona").rename_axis("customer_id").reset_index()
    table = demo_data.con.create_table("cxkit_test_persona_labels", frame, overwrite=True)
    try:
        mem, eng = (lifecycle.analyze(demo_data, personas=p) for p in (frame, table))
        pd.testing.assert_frame_equal(mem.persona_tests, eng.persona_tests)
        vm, ve = (voc.analyze(demo_data, personas=p) for p in (labels, table))
        assert vm.pain_points is not None
        pd.testing.assert_frame_equal(vm.pain_points, ve.pain_points)
        assert [f.sentence for f in vm.findings()] == [f.sentence for f in ve.findings()]
    finally:
        demo_data.con.drop_table("cxkit_test_persona_labels", force=True)


def test_scale_names_the_cache_folder_variable_of_cxkit_cache() -> None:
    from cxkit.cache import CACHE_ENV

    assert scale.CACHE_DIR_ENV == CACHE_ENV  # the scratch folder follows the run's cache
