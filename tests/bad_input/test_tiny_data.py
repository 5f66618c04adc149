"""Tiny and sparse data (issue 22, item 3): a published "not available" note, never a crash.

Each variant is a small copy of a 120-customer synth demo: one customer with one order
(an orders-only folder), five customers, a demo with no survey answers in the 90 days
before as_of, and a demo without a responses table (DESIGN.md §3: a table may be absent);
and 19 customers whose orders CLV can model but who are too few for personas.
``cxkit report`` runs in-process on it (every report for the single order; for the
others, to keep the file fast, the reports the variant is about) and must exit 0 with
every report OK, no "Traceback" in any published HTML file, and the "not available"
notes that say what is missing.
The last tests check the domain rules behind the notes without a report run.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import cxkit
from cxkit import summary, synth
from cxkit.churn.model import check_classes
from cxkit.cli import main
from cxkit.errors import ConvergenceError, DataError, NotAvailableError

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "reports.yml"
TABLES = ("customers", "events", "orders", "responses")
ALL_REPORTS = (
    "data_health",
    "lifecycle",
    "churn",
    "clv",
    "personas",
    "voice_of_customer",
    "experiments",
    "executive_summary",
)


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 120-customer demo as Parquet (seed 7)."""
    return synth.write_demo(tmp_path_factory.mktemp("tiny") / "demo", customers=120, seed=7)


def _tables(small: Path) -> dict[str, pd.DataFrame]:
    return {t: pd.read_parquet(small / f"{t}.parquet") for t in TABLES}


def _write(folder: Path, tables: dict[str, pd.DataFrame]) -> Path:
    folder.mkdir(parents=True)
    for name, df in tables.items():
        df.to_parquet(folder / f"{name}.parquet", index=False)
    return folder


def _one_order(small: Path, out: Path) -> Path:
    return _write(out, {"orders": _tables(small)["orders"].head(1)})


def _five_customers(small: Path, out: Path) -> Path:
    t = _tables(small)
    answered = t["responses"].customer_id
    ids = answered[answered.isin(t["orders"].customer_id)].drop_duplicates().head(5)
    return _write(out, {n: df[df.customer_id.isin(ids)] for n, df in t.items()})


def _no_recent_responses(small: Path, out: Path) -> Path:
    t = _tables(small)
    end = max(df["ts"].max() for n, df in t.items() if n != "customers")
    r = t["responses"]
    t["responses"] = r[r["ts"] <= end.normalize() - pd.Timedelta(days=91)]
    return _write(out, t)


def _no_responses(small: Path, out: Path) -> Path:
    t = _tables(small)
    del t["responses"]
    return _write(out, t)


def _nineteen_buyers(small: Path, out: Path) -> Path:
    """Orders of 19 customers who buy and drop out as BG/NBD assumes (seeded): CLV fits."""
    rng = np.random.default_rng(0)
    rows = []
    for c in range(19):
        day, rate, p_drop = rng.uniform(0, 300), rng.gamma(1.5, 1 / 20), rng.beta(1, 4)
        rows.append((c, day))
        while (day := day + rng.exponential(1 / rate)) <= 730:
            rows.append((c, day))
            if rng.random() < p_drop:
                break
    df = pd.DataFrame(rows, columns=["c", "day"])
    orders = pd.DataFrame(
        {
            "order_id": [f"O{i}" for i in range(len(df))],
            "customer_id": [f"C{c:02d}" for c in df["c"]],
            "ts": (pd.Timestamp("2023-01-01") + pd.to_timedelta(df["day"], unit="D")).dt.floor("s"),
            "amount": np.round(rng.lognormal(3, 0.5, len(df)), 2),
        }
    )
    return _write(out, {"orders": orders})


PERSONA_NOTE = "The persona model is not available: this needs more customers — too few customers"

#: name -> (build the folder, reports run (None: all), {report: texts its HTML must show})
VARIANTS: dict[str, tuple[Callable[[Path, Path], Path], tuple[str, ...] | None, dict]] = {
    "one_customer_one_order": (
        _one_order,
        None,
        {
            "data_health": ["1 of 4 tables present with 1 customers"],
            "lifecycle": ["The breakdown by persona is not available"],
            "churn": ["Churn analysis is not available for this data."],
            "clv": ["Customer lifetime value is not available for this data."],
            "personas": [
                "Personas are not available for this data.",
                f"{PERSONA_NOTE} to cluster (n=1, need ≥ 20)",
            ],
            "voice_of_customer": [
                "Voice of the customer is not available: this data has no survey responses.",
                "Persona breakdowns are not available",
                "too few customers to cluster (n=1, need ≥ 20)",
            ],
            "executive_summary": [
                # each domain's note, once, under its own heading
                "Personas detailed report → The persona model is not available",
                "Customer lifetime value detailed report → the data cannot support it",
                "Churn detailed report → the data cannot support it",
            ],
        },
    ),
    "five_customers": (
        _five_customers,
        ("churn", "personas", "voice_of_customer"),
        {
            "churn": ["Churn analysis is not available for this data.", "too few customers"],
            "personas": [f"{PERSONA_NOTE} to cluster (n=5, need ≥ 20)"],
            "voice_of_customer": [
                "Persona breakdowns are not available",
                "too few customers to cluster (n=5, need ≥ 20)",
            ],
        },
    ),
    "nineteen_customers": (
        _nineteen_buyers,
        ("clv",),
        {
            "clv": [
                "19 customers are worth",  # the CLV report itself is there
                f"CLV by persona is not available: {PERSONA_NOTE} to cluster (n=19, need ≥ 20)",
            ],
        },
    ),
    "no_responses_in_the_last_90_days": (
        _no_recent_responses,
        ("voice_of_customer",),
        {
            "voice_of_customer": [
                "The headline score for the last 90 days is not available",
                "there are none in that window (n=0); the latest answer is from",
                "too few to read the trend",  # the trend and the rest still show
            ],
        },
    ),
    "no_responses_table": (
        _no_responses,
        ("voice_of_customer",),
        {
            "voice_of_customer": [
                "Voice of the customer is not available: this data has no survey responses."
            ],
        },
    ),
}


def _text(path: Path) -> str:
    """Return the visible text of a published HTML file (no scripts, no tags)."""
    raw = re.sub(r"<script.*?</script>|<style.*?</style>", " ", path.read_text(), flags=re.S)
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", raw)).split())


@pytest.mark.slow
@pytest.mark.parametrize("variant", list(VARIANTS))
def test_report_on_tiny_data_says_what_is_not_available(
    variant: str, small: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    build, only, notes = VARIANTS[variant]
    folder = build(small, tmp_path / "data")
    out = tmp_path / "reports"
    argv = ["report", "--config", str(CONFIG), "--data", str(folder), "--out", str(out)]
    argv += ["--jobs", "2"]
    for name in only or ():
        argv += ["--only", name]
    rc = main(argv)
    err = capsys.readouterr().err
    assert "Traceback" not in err
    manifest = json.loads((out / "manifest.json").read_text())
    statuses = {name: r["status"] for name, r in manifest["reports"].items()}
    errors = {name: r["error"] for name, r in manifest["reports"].items() if r["error"]}
    # "not available" (every part of a report is a note) is a status, not a failure
    assert set(statuses) == set(only or ALL_REPORTS), errors
    assert set(statuses.values()) <= {"OK", "not available"}, errors
    assert rc == 0
    for name in statuses:
        page = out / f"{name}.html"
        text = _text(page)
        assert "Traceback" not in page.read_text(), name
        for note in notes.get(name, []):
            assert note in text, (name, note)


# --------------------------------------------------------------------------------------
# the rules behind the notes, without a report run
# --------------------------------------------------------------------------------------


def _orders(n_customers: int, per_customer: int = 1) -> pd.DataFrame:
    n = n_customers * per_customer
    return pd.DataFrame(
        {
            "order_id": [f"O{i}" for i in range(n)],
            "customer_id": [f"C{i % n_customers}" for i in range(n)],
            "ts": pd.Timestamp("2024-01-01") + pd.to_timedelta(np.arange(n) * 3, unit="D"),
            "amount": 10.0 + np.arange(n) % 7,
        }
    )


@pytest.mark.parametrize(
    ("y", "message"),
    [
        (np.array([1, 0] * 20), r"too few customers for a churn model .*need ≥ 60 customers"),
        (np.array([1] * 70 + [0] * 2), r"70 churned and 2 stayed \(need ≥ 60 customers and ≥ 3"),
        (np.array([1, 1, 0]), r"2 churned and 1 stayed"),
    ],
)
def test_churn_needs_enough_customers_of_each_outcome(y: np.ndarray, message: str) -> None:
    # issue 22: five customers crashed the churn report with scikit-learn's ValueError
    # ("Requesting 3-fold cross-validation but provided less than 3 examples")
    with pytest.raises(DataError, match=message):
        check_classes(y, pd.Timestamp("2024-06-30"), "calibration")
    check_classes(np.array([1] * 57 + [0] * 3), pd.Timestamp("2024-06-30"), "calibration")


def test_summary_turns_a_model_that_cannot_be_fitted_into_a_note() -> None:
    # issue 22: the summary failed on CLV's DataError / ConvergenceError that the CLV
    # report itself shows as "not available"
    def fails(err: Exception) -> Callable[..., object]:
        def analyze(data: cxkit.CXData, **options: object) -> object:
            raise err

        return analyze

    data = cxkit.load({"orders": _orders(1)})
    edge = "the BG/NBD fit ran off to the edge of the parameter space"
    for err in (DataError(edge), ConvergenceError(edge)):
        run = summary.run_domain("clv", fails(err), data, as_of=None)
        assert run.result is None and run.findings == []
        assert run.missing == f"the data cannot support it: {edge}"
    err = NotAvailableError("the table 'orders'", analysis="CLV")
    run = summary.run_domain("clv", fails(err), data, as_of=None)
    assert run.missing == "CLV is not available: this needs the table 'orders'"


def test_summary_on_one_order_has_every_domain_as_a_note() -> None:
    data = cxkit.load({"orders": _orders(1)})
    es = summary.executive_summary(data)
    missing = dict(m.split(": ", 1) for m in es.missing)
    assert set(missing) == {"churn", "clv", "personas", "voc"}
    assert "too few customers to cluster (n=1, need ≥ 20)" in missing["personas"]
    assert missing["clv"].startswith("the data cannot support it: ")
    assert len(es.scorecard) == 1 and es.scorecard["persona"].isna().all()
