"""Benchmark: personas on the synthetic demo — feature building and fit, time and memory.

Per size, in the same run, each part in its own child process (so that its peak
resident memory, ``ru_maxrss``, is its own):

* **cxkit features** — ``personas.customer_features(cxkit.load(folder))``: the
  per-customer aggregates (events, orders, responses, customer attributes) run in the
  engine (ibis on DuckDB, straight from the Parquet files); only the per-customer table
  comes to pandas;
* **pandas features (baseline)** — the same raw aggregates with pandas ``groupby`` on
  the tables read fully into memory (what a notebook would do), finished by the same
  derivation step; the script checks that both give the same feature table;
* **cxkit fit** — ``Personas(k="auto").fit(features)``: choosing k on a sample (elbow,
  gap statistic, bootstrap stability for k = 2..10), the final k-means (mini-batch above
  200,000 customers), per-persona bootstrap stability, names and the surrogate tree;
  then ``predict`` on every customer. The adjusted Rand index against the planted
  personas is printed as a check;
* **cxkit journey map and pain points** — ``journey_map`` and ``pain_points`` for those
  personas (engine-side joins of events, orders and responses with the assignments);
* **scikit-learn KMeans (baseline)** — ``KMeans(5, n_init=10)`` on the same
  standardised matrix: one fit at a known k, no k choice and no explanation.

The demo is generated with ``cxkit.synth.write_demo`` into ``benchmarks/_work/`` (git-
ignored) and reused when it is already there.

Usage::

    .venv/bin/python benchmarks/bench_personas.py                      # 1,000,000 customers
    .venv/bin/python benchmarks/bench_personas.py --customers 100000   # development size
    .venv/bin/python benchmarks/bench_personas.py --small              # 20,000, smoke test
    .venv/bin/python benchmarks/bench_personas.py --no-baseline        # cxkit parts only
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
WORK = ROOT / "benchmarks" / "_work"

from _demo import demo_folder  # noqa: E402  (benchmarks/ is on sys.path)


def _peak_mib() -> float:
    """This process's peak resident memory (VmHWM: unlike ru_maxrss it does not carry
    the parent's high-water mark over fork + exec)."""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# ---- the parts, each run in a child process ---------------------------------------------


def part_cxkit_features(folder: Path, out: Path) -> dict:
    import cxkit
    from cxkit import personas

    t = time.perf_counter()
    feats = personas.customer_features(cxkit.load(folder))
    seconds = time.perf_counter() - t
    feats.to_parquet(out)
    return {"seconds": seconds, "rows": len(feats), "columns": feats.shape[1]}


def part_pandas_features(folder: Path, out: Path) -> dict:
    """The same raw per-customer aggregates with pandas groupby, then the same derivation."""
    from cxkit import personas

    t = time.perf_counter()
    cu = pd.read_parquet(folder / "customers.parquet")
    ev = pd.read_parquet(
        folder / "events.parquet", columns=["customer_id", "ts", "event", "channel"]
    )
    od = pd.read_parquet(folder / "orders.parquet", columns=["customer_id", "ts", "amount"])
    rs = pd.read_parquet(
        folder / "responses.parquet", columns=["customer_id", "ts", "survey", "score"]
    )
    cut = max(ev.ts.max(), od.ts.max(), rs.ts.max())
    g = ev.groupby("customer_id")
    e = pd.DataFrame(
        {
            "events_n": g.size(),
            "first_event_at": g.ts.min(),
            "last_event_at": g.ts.max(),
            "support_contacts": ev.event.eq("support_contact").groupby(ev.customer_id).sum(),
        }
    )
    ch = pd.crosstab(ev.customer_id, ev.channel)
    ch.columns = [f"_ch_{c}" for c in ch.columns]
    e = e.join(ch)
    e["_ch_total"] = ch.sum(axis=1)
    go = od.groupby("customer_id")
    o = pd.DataFrame(
        {
            "orders": go.size(),
            "spend": go.amount.sum(),
            "first_order_at": go.ts.min(),
            "last_order_at": go.ts.max(),
        }
    )
    csat = rs[rs.survey == "csat"].groupby("customer_id").score.mean().rename("csat_mean")
    nps = rs[rs.survey == "nps"].sort_values(["customer_id", "ts", "score"])
    nps = nps.groupby("customer_id").score.last().astype(float).rename("nps_latest")
    cats = ["region", "acquisition_channel", "plan"]
    raw = (
        cu[["customer_id", "signup_at", *cats]]
        .set_index("customer_id")
        .join(e)
        .join(o)
        .join(csat)
        .join(nps)
        .reset_index()
    )
    feats = personas.derive_features(
        raw, cut, cats, has_events=True, has_orders=True, has_resp=True
    )
    seconds = time.perf_counter() - t
    feats.to_parquet(out)
    return {"seconds": seconds, "rows": len(feats), "columns": feats.shape[1]}


def part_cxkit_fit(folder: Path, feats_path: Path) -> dict:
    from sklearn.metrics import adjusted_rand_score

    from cxkit import personas

    feats = pd.read_parquet(feats_path)
    t = time.perf_counter()
    model = personas.Personas(k="auto", random_state=0).fit(feats)
    fit_s = time.perf_counter() - t
    t = time.perf_counter()
    labels = model.predict(feats)
    predict_s = time.perf_counter() - t
    asg = pd.DataFrame({"customer_id": feats.index.astype(str), "persona_name": labels.astype(str)})
    asg["persona_name"] = [model.names_[p] for p in labels]
    asg.to_parquet(feats_path.with_name(feats_path.stem + "_assignments.parquet"))
    truth = pd.read_parquet(folder / "_truth.parquet", columns=["customer_id", "persona"])
    planted = truth.set_index("customer_id").loc[feats.index, "persona"].to_numpy()
    return {
        "seconds": fit_s,
        "predict_seconds": predict_s,
        "k": model.k_,
        "votes": model.k_votes_,
        "ari": float(adjusted_rand_score(planted, labels)),
        "names": model.names_,
        "stability_min": float(model.stability_.min()),
        "fidelity": model.fidelity_,
    }


def part_cxkit_journey(folder: Path, feats_path: Path) -> dict:
    import cxkit
    from cxkit import personas

    asg = pd.read_parquet(feats_path.with_name(feats_path.stem + "_assignments.parquet"))
    data = cxkit.load(folder)
    t = time.perf_counter()
    jm = personas.journey_map(data, asg)
    journey_s = time.perf_counter() - t
    t = time.perf_counter()
    pains = personas.pain_points(data, asg)
    pains_s = time.perf_counter() - t
    target = pains.sort_values("diff").iloc[0]
    return {
        "seconds": journey_s + pains_s,
        "journey_seconds": journey_s,
        "pains_seconds": pains_s,
        "cells": len(jm),
        "pain": f"{target.persona_name} x {target.dimension} '{target.value}' "
        f"({100 * target.csat_top2:.0f}% vs {100 * target.rest_top2:.0f}%)",
    }


def part_sklearn_fit(folder: Path, feats_path: Path) -> dict:
    from sklearn.cluster import KMeans
    from sklearn.metrics import adjusted_rand_score
    from sklearn.preprocessing import StandardScaler

    feats = pd.read_parquet(feats_path)
    t = time.perf_counter()
    z = StandardScaler().fit_transform(feats.fillna(feats.median()).to_numpy())
    labels = KMeans(5, n_init=10, random_state=0).fit_predict(z)
    seconds = time.perf_counter() - t
    truth = pd.read_parquet(folder / "_truth.parquet", columns=["customer_id", "persona"])
    planted = truth.set_index("customer_id").loc[feats.index, "persona"].to_numpy()
    return {"seconds": seconds, "k": 5, "ari": float(adjusted_rand_score(planted, labels))}


PARTS = {
    "cxkit_features": part_cxkit_features,
    "pandas_features": part_pandas_features,
    "cxkit_fit": part_cxkit_fit,
    "sklearn_fit": part_sklearn_fit,
    "cxkit_journey": part_cxkit_journey,
}


def child(part: str, folder: str, path: str) -> None:
    result = PARTS[part](Path(folder), Path(path))
    result["peak_mib"] = _peak_mib()
    print("RESULT " + json.dumps(result))


def run_part(part: str, folder: Path, path: Path) -> dict:
    proc = subprocess.run(
        [sys.executable, __file__, "--child", part, str(folder), str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    lines = [x for x in proc.stdout.splitlines() if x.startswith("RESULT ")]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"{part} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}")
    return json.loads(lines[-1][len("RESULT ") :])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--customers", type=int, default=1_000_000)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--small", action="store_true", help="20,000 customers (smoke test)")
    ap.add_argument("--no-baseline", action="store_true", help="skip the pandas/sklearn parts")
    ap.add_argument("--child", nargs=3, metavar=("PART", "FOLDER", "PATH"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(*args.child)
        return
    n = 20_000 if args.small else args.customers
    print(f"personas benchmark: {n:,} customers (seed {args.seed})")
    folder = demo_folder(n, args.seed)
    import pyarrow.parquet as pq

    ev_rows = pq.ParquetFile(folder / "events.parquet").metadata.num_rows
    print(f"  data: {ev_rows:,} events")
    f_cx = WORK / f"personas_features_{n}_cxkit.parquet"
    f_pd = WORK / f"personas_features_{n}_pandas.parquet"
    rows = []
    r = run_part("cxkit_features", folder, f_cx)
    rows.append(("features: cxkit (ibis/DuckDB)", r))
    if not args.no_baseline:
        r = run_part("pandas_features", folder, f_pd)
        rows.append(("features: pandas groupby (baseline)", r))
        a, b = pd.read_parquet(f_cx), pd.read_parquet(f_pd)
        b = b[a.columns]
        same = a.index.equals(b.index) and np.allclose(
            a.to_numpy(float), b.to_numpy(float), equal_nan=True, rtol=1e-9, atol=1e-9
        )
        del a, b
        print(f"  feature tables equal: {same}")
        if not same:
            raise SystemExit("the cxkit and pandas feature tables differ")
    r = run_part("cxkit_fit", folder, f_cx)
    rows.append(("fit: Personas(k='auto') + predict", r))
    rows.append(("journey map + pain points (engine)", run_part("cxkit_journey", folder, f_cx)))
    if not args.no_baseline:
        rows.append(("fit: sklearn KMeans(k=5, n_init=10) (baseline)",
                     run_part("sklearn_fit", folder, f_cx)))  # fmt: skip
    print()
    print(f"| part ({n:,} customers, {ev_rows:,} events) | seconds | peak RSS MiB | notes |")
    print("|---|---:|---:|---|")
    for name, r in rows:
        notes = ""
        if "ari" in r:
            notes = f"k = {r['k']}, ARI vs planted = {r['ari']:.3f}"
        if "predict_seconds" in r:
            notes += (
                f"; votes {r['votes']}; predict {r['predict_seconds']:.2f} s; "
                f"min stability {r['stability_min']:.2f}; fidelity {r['fidelity']:.2f}"
            )
        if "journey_seconds" in r:
            notes = (
                f"journey {r['journey_seconds']:.2f} s ({r['cells']} cells), pain points "
                f"{r['pains_seconds']:.2f} s; worst: {r['pain']}"
            )
        if "rows" in r:
            notes = f"{r['rows']:,} customers x {r['columns']} features; "
            notes += f"{ev_rows / r['seconds'] / 1e6:.1f}M events/s"
        print(f"| {name} | {r['seconds']:.2f} | {r['peak_mib']:,.0f} | {notes} |")
    fit = dict(rows)["fit: Personas(k='auto') + predict"]
    print(f"\nchosen k = {fit['k']}; personas: {', '.join(fit['names'])}")


if __name__ == "__main__":
    main()
