"""Benchmark: churn feature building and scoring on the synthetic demo, time and memory.

Per size, in the same run, each part in its own child process (so that its peak
resident memory, ``ru_maxrss``, is its own):

* **cxkit features** — ``churn.features(data, cutoff)``: every point-in-time feature
  (orders, events, responses, customer attributes, complaint themes) as one ibis
  expression run in the engine (DuckDB, straight from the Parquet files), plus the
  BG/NBD ``p_alive`` / no-order features fitted on the orders up to the cutoff; only
  the per-customer table comes to pandas;
* **pandas features (baseline)** — the core order and event aggregates (counts, spend,
  first/last times, 90-day windows, counts per channel and per event type) with pandas
  ``groupby`` on the tables read fully into memory, what a notebook would do; a subset
  of the cxkit features, so the baseline is flattered;
* **cxkit scoring** — ``churn.score(data)``: features at three cutoffs (fit, calibrate,
  as_of), labels, a HistGradientBoosting fit on at most 200,000 customers, isotonic
  calibration on the next cutoff, then a churn probability and risk band for every
  customer with an order; the predict step alone is timed as well, on two threads (row
  chunks, the default) and on one (the old path, same probabilities);
* **cxkit churn.analyze** — the whole churn report's computation: features at each of
  the four cutoffs built once and released when the last step using them is done,
  backtest (two models, BG/NBD baselines from the features' own fit, permutation
  importance), scores, rate over time, breakdown, at-risk table.

The demo is generated with ``cxkit.synth.write_demo`` into ``benchmarks/_work/`` (git-
ignored) and reused when it is already there.

Usage::

    .venv/bin/python benchmarks/bench_churn.py                      # 1,000,000 customers
    .venv/bin/python benchmarks/bench_churn.py --customers 100000   # development size
    .venv/bin/python benchmarks/bench_churn.py --small              # 20,000, smoke test
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
WORK = ROOT / "benchmarks" / "_work"

from _demo import demo_folder  # noqa: E402  (benchmarks/ is on sys.path)

CUTOFF = "2024-10-02"  # the latest cutoff whose 90-day label window the demo observes


def _peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# --------------------------------------------------------------------------------------
# parts (each runs in its own process)
# --------------------------------------------------------------------------------------


def part_features(folder: Path) -> dict:
    import cxkit
    from cxkit import churn

    t = time.perf_counter()
    data = cxkit.load(folder)
    f = churn.features(data, CUTOFF)
    seconds = time.perf_counter() - t
    return {"seconds": seconds, "customers": len(f), "columns": f.shape[1] - 1}


def _counts(df: pd.DataFrame, column: str) -> pd.DataFrame:
    """Rows per customer and value of ``column``, one column per value."""
    return df.groupby(["customer_id", column], observed=True).size().unstack(fill_value=0)


def part_pandas(folder: Path) -> dict:
    t = time.perf_counter()
    end = pd.Timestamp(CUTOFF) + pd.Timedelta(days=1)
    w1, w2 = end - pd.Timedelta(days=90), end - pd.Timedelta(days=180)
    o = pd.read_parquet(folder / "orders.parquet")
    o = o[o["ts"] < end]
    o["last90"] = o["ts"] > w1
    o["prev90"] = (o["ts"] > w2) & ~o["last90"]
    g = o.groupby("customer_id", observed=True)
    of = pd.DataFrame(
        {
            "orders_n": g.size(),
            "spend_total": g["amount"].sum(),
            "first_order_at": g["ts"].min(),
            "last_order_at": g["ts"].max(),
            "orders_last_90d_n": g["last90"].sum(),
            "orders_prev_90d_n": g["prev90"].sum(),
        }
    )
    of = of.join(_counts(o, "channel").add_prefix("orders_ch_"))
    e = pd.read_parquet(
        folder / "events.parquet", columns=["customer_id", "ts", "event", "channel"]
    )
    e = e[e["ts"] < end]
    e["last90"] = e["ts"] > w1
    e["prev90"] = (e["ts"] > w2) & ~e["last90"]
    g = e.groupby("customer_id", observed=True)
    ef = pd.DataFrame(
        {
            "events_n": g.size(),
            "first_event_at": g["ts"].min(),
            "last_event_at": g["ts"].max(),
            "events_last_90d_n": g["last90"].sum(),
            "events_prev_90d_n": g["prev90"].sum(),
        }
    )
    ef = ef.join(_counts(e, "channel").add_prefix("events_ch_"))
    ef = ef.join(_counts(e, "event").add_prefix("ev_"))
    f = ef.join(of, how="outer")
    f["recency_days"] = (end - f["last_order_at"]).dt.total_seconds() / 86400
    seconds = time.perf_counter() - t
    return {"seconds": seconds, "customers": len(f), "columns": f.shape[1]}


def part_score(folder: Path) -> dict:
    import cxkit
    from cxkit import churn
    from cxkit.churn.features import FeatureCache

    t = time.perf_counter()
    data = cxkit.load(folder)
    cache = FeatureCache(data, 90, 12, None, 90)
    model = churn.ChurnModel(random_state=0).fit(data, _cache=cache)
    fit_s = time.perf_counter() - t
    t2 = time.perf_counter()
    end = cxkit.resolve_as_of(data, None)
    frame = cache.frame(end, model.definition_, labelled=False)
    feat_s = time.perf_counter() - t2
    t3 = time.perf_counter()
    p = model.predict_frame(frame.X)
    pred_s = time.perf_counter() - t3
    t3 = time.perf_counter()
    p1 = model.set_params(n_jobs=1).predict_frame(frame.X)
    pred1_s = time.perf_counter() - t3
    model.set_params(n_jobs=2)
    if not (p1 == p).all():
        raise AssertionError("one and two prediction threads disagree")
    t4 = time.perf_counter()
    scores = churn.score(data, model=model, _cache=cache)
    band_s = time.perf_counter() - t4
    seconds = time.perf_counter() - t
    return {
        "seconds": seconds,
        "fit_seconds": fit_s,
        "features_as_of_seconds": feat_s,
        "predict_seconds": pred_s,
        "predict_1thread_seconds": pred1_s,
        "score_frame_seconds": band_s,
        "scored": len(scores),
        "fit_rows": model.n_fit_,
        "calibration_rows": model.n_calibrate_,
        "mean_probability": float(p.mean()),
        "high_risk_share": float((scores["risk_band"] == "high").mean()),
    }


def part_analyze(folder: Path) -> dict:
    import cxkit
    from cxkit import churn

    t = time.perf_counter()
    result = churn.analyze(cxkit.load(folder))
    seconds = time.perf_counter() - t
    return {"seconds": seconds, "scored": len(result.scores), "auc": result.backtest.auc()}


PARTS = {
    "features": part_features,
    "pandas": part_pandas,
    "score": part_score,
    "analyze": part_analyze,
}


def run_part(name: str, folder: Path) -> dict:
    proc = subprocess.run(
        [sys.executable, __file__, "--part", name, "--folder", str(folder)],
        capture_output=True,
        text=True,
        timeout=3600,
    )
    if proc.returncode != 0:
        return {"error": proc.stderr.strip().splitlines()[-1] if proc.stderr else "failed"}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--small", action="store_true", help="20,000 customers")
    parser.add_argument("--no-baseline", action="store_true")
    parser.add_argument("--part", choices=sorted(PARTS), help=argparse.SUPPRESS)
    parser.add_argument("--folder", help=argparse.SUPPRESS)
    args, _ = parser.parse_known_args()  # run_all.py may pass options meant for others
    if args.part:
        out = PARTS[args.part](Path(args.folder))
        out["peak_mib"] = _peak_mib()
        print(json.dumps(out))
        return 0
    customers = 20_000 if args.small else args.customers
    folder = demo_folder(customers, args.seed)
    events = len(pd.read_parquet(folder / "events.parquet", columns=["customer_id"]))
    orders = len(pd.read_parquet(folder / "orders.parquet", columns=["customer_id"]))
    print(f"churn benchmark: {customers:,} customers, {events:,} events, {orders:,} orders")
    parts = ["features"] + ([] if args.no_baseline else ["pandas"]) + ["score", "analyze"]
    rows = []
    for name in parts:
        r = run_part(name, folder)
        rows.append((name, r))
        if "error" in r:
            print(f"  {name}: FAILED {r['error']}", flush=True)
        else:
            print(f"  {name}: {r['seconds']:.1f} s, peak {r['peak_mib']:,.0f} MiB", flush=True)
    print()
    print("| part | wall time (s) | events/s | peak memory (MiB) | notes |")
    print("|---|---:|---:|---:|---|")
    labels = {
        "features": "cxkit point-in-time features (engine + BG/NBD)",
        "pandas": "pandas groupby features (baseline, core subset)",
        "score": "cxkit scoring: features x3, fit, calibrate, predict",
        "analyze": "cxkit churn.analyze: the whole churn report",
    }
    for name, r in rows:
        if "error" in r:
            print(f"| {labels[name]} | – | – | – | FAILED: {r['error']} |")
            continue
        if name == "score":
            note = (
                f"fit+calibrate {r['fit_seconds']:.1f} s on {r['fit_rows']:,}+{r['calibration_rows']:,} "
                f"customers; features at as_of {r['features_as_of_seconds']:.1f} s; predict "
                f"{r['predict_seconds']:.2f} s for {r['scored']:,} customers "
                f"({r['scored'] / max(r['predict_seconds'], 1e-9):,.0f}/s; one thread "
                f"{r['predict_1thread_seconds']:.2f} s); "
                f"high risk {r['high_risk_share']:.0%}"
            )
        elif name == "analyze":
            note = f"{r['scored']:,} customers scored; backtest ROC AUC {r['auc']:.3f}"
        else:
            note = f"{r['customers']:,} customers x {r['columns']} features"
        rate = events / r["seconds"]
        print(
            f"| {labels[name]} | {r['seconds']:.1f} | {rate:,.0f} | {r['peak_mib']:,.0f} | {note} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
