"""The whole report suite in strict scale mode against memory mode, through reports.yml.

Both runs use the 2,000-customer demo (seed 7). The scale run sets ``max_collect_rows`` to
1,000, half the customers, and ``sample_rows`` to 500 (so churn, CLV and personas fit on
samples), with ``strict: true``: every result an engine hands to a kernel
is checked, so a report that collected one row per customer anywhere would fail here.
Each report's findings (the run's ``_history`` record, the figures the index and the
summary read) are then compared figure by figure with memory mode's, within the
tolerances of :data:`TOLERANCES`: engine counts are exact; what a model fitted on a
sample estimates is held to a stated tolerance.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
import yaml

from cxkit.report.pipeline import run_reports

ROOT = Path(__file__).resolve().parents[1]
LIMITS = {"sample_rows": 500, "max_collect_rows": 1000, "batch_rows": 400, "strict": True}

#: (domain, metric) -> (kind, tolerance): "rel" relative, "abs" absolute, "share" absolute
#: on value / n. Metrics not listed must be equal to 1e-9 (relative).
TOLERANCES: dict[tuple[str, str], tuple[str, float]] = {
    # churn: the model is fitted, calibrated and tested on samples
    ("churn", "model_auc"): ("abs", 0.03),
    ("churn", "high_risk_customers"): ("share", 0.10),  # 500 of 754 labelled: a small sample
    ("churn", "top_decile_lift"): ("abs", 0.3),
    ("churn", "top_drivers"): ("skip", 0.0),  # the importance of a sampled model's driver
    # CLV: Gamma-Gamma is fitted on a sample of repeat buyers (BG/NBD on all: exact)
    ("clv", "total_clv_52w"): ("rel", 0.05),
    ("clv", "top20_share_52w"): ("abs", 0.03),
    # personas: fitted on a sample, every customer assigned
    ("personas", "persona_share"): ("abs", 0.03),
    ("personas", "top_value_persona"): ("rel", 0.15),  # a mean over the sample
    ("personas", "surrogate_fidelity"): ("abs", 0.1),
    ("personas", "pain_point"): ("abs", 0.03),
    ("voc", "channel_pain_point"): ("abs", 3.0),
    # survey-to-value: CLV and churn risk from the sampled models
    ("voc", "detractor_clv_gap_52w"): ("rel", 0.15),
    ("voc", "detractor_churn_gap"): ("abs", 3.0),
    ("summary", "*"): ("skip", 0.0),
}
#: Findings keyed by these extras' values too (which group, which experiment).
_KEY_EXTRAS = ("by", "group", "experiment", "variant", "persona_name", "persona", "channel",
               "value", "from_stage", "to_stage", "theme", "driver", "dimension")  # fmt: skip


def _run(demo_dir: Path, out: Path, scale: dict | None) -> dict:
    cfg = yaml.safe_load((ROOT / "reports.yml").read_text())
    for r in cfg["reports"]:
        r["notebook"] = str(ROOT / r["notebook"])
    cfg.update(data=str(demo_dir), out=str(out), jobs=2, scale=scale)
    path = out.parent / f"{out.name}.yml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    res = run_reports(path, stream=io.StringIO())
    assert res.exit_code == 0, {n: r.error for n, r in res.reports.items()}
    (record,) = (out / "_history").glob("*.json")
    return json.loads(record.read_text())


def _key(f: dict) -> tuple:
    extra = f.get("extra") or {}
    return (
        f["domain"],
        f["metric"],
        f.get("comparison"),
        *(str(extra.get(k)) for k in _KEY_EXTRAS),
    )


@pytest.mark.slow
def test_whole_suite_in_strict_scale_mode_matches_memory_mode(
    demo_dir: Path, tmp_path: Path
) -> None:
    memory = _run(demo_dir, tmp_path / "memory", None)
    scaled = _run(demo_dir, tmp_path / "scale", LIMITS)
    pages = {p.stem: p.read_text() for p in (tmp_path / "scale").glob("*.html")}
    for name in ("churn", "clv", "personas", "experiments"):
        assert "Scale mode" in pages[name], name
    mem = {}
    for f in memory["findings"]:
        mem.setdefault(_key(f), f)
    checked, off = 0, []
    for f in scaled["findings"]:
        m = mem.get(_key(f))
        if m is None or m["value"] is None:
            continue
        kind, tol = TOLERANCES.get(
            (f["domain"], f["metric"]), TOLERANCES.get((f["domain"], "*"), ("rel", 1e-9))
        )
        if kind == "skip":
            continue
        a, b = float(f["value"]), float(m["value"])
        if kind == "share":
            a, b, kind = a / f["n"], b / m["n"], "abs"
        gap = abs(a - b) if kind == "abs" else abs(a - b) / max(abs(b), 1e-12)
        if gap > tol + 1e-12:
            off.append((f["domain"], f["metric"], _key(f)[3:], a, b, f"{kind} {gap:.3g} > {tol}"))
        checked += 1
    assert off == []
    assert checked >= 40
