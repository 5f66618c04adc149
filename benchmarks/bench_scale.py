"""Benchmark: the churn analysis in scale mode against memory mode on DuckDB.

Each mode runs ``churn.analyze`` in its own child process on the same data (so that
its peak resident memory, ``ru_maxrss``, is its own) with a DuckDB memory cap
(``CXKIT_DUCKDB_MEMORY_LIMIT``, as ``cxkit report`` sets it), and prints wall time, peak RSS
and the headline figures of each: the churn rate (exact in both), the test ROC AUC and
the high-risk share.

The data comes from ``cxkit synth --customers N --seed 42 --out DIR``; pass ``--data
DIR`` (without it, a demo of ``--customers`` is generated into ``benchmarks/_work/``).

Usage::

    .venv/bin/python benchmarks/bench_scale.py --data DIR                 # 1,000,000 default
    .venv/bin/python benchmarks/bench_scale.py --customers 20000 --memory-mb 1024
    .venv/bin/python benchmarks/bench_scale.py --data DIR --only scale   # one mode
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from _demo import demo_folder  # noqa: E402  (benchmarks/ is on sys.path)

from cxkit.data import DUCKDB_MEMORY_ENV  # noqa: E402


def part(mode: str, folder: str, settings: str) -> dict:
    """Run the churn analysis in one mode; return its time, peak RSS and figures."""
    import cxkit
    from cxkit import churn

    os.environ["CXKIT_SCALE"] = settings if mode == "scale" else ""
    t = time.perf_counter()
    data = cxkit.load(folder)
    res = churn.analyze(data, mode=mode)
    seconds = time.perf_counter() - t
    n = getattr(res, "scores_n", None) or len(res.scores)
    return {
        "mode": mode,
        "seconds": round(seconds, 1),
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "churn_rate": round(float(res.churn_rate["rate"]), 4),
        "customers_labelled": int(res.churn_rate["customers"]),
        "test_auc": None if res.backtest is None else round(res.backtest.auc(), 4),
        "scored": int(n),
        "high_risk_share": round(res.high_risk_n / max(n, 1), 4),
        "note": getattr(res, "mode_sentence", ""),
    }


def main() -> None:
    """Run both modes in child processes and print a table."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--customers", type=int, default=1_000_000)
    p.add_argument("--data", default=None, help="a folder from `cxkit synth --seed 42`")
    p.add_argument("--memory-mb", type=int, default=2048, help="DuckDB memory cap (MB)")
    p.add_argument("--sample-rows", type=int, default=200_000)
    p.add_argument("--max-collect-rows", type=int, default=250_000)
    p.add_argument("--batch-rows", type=int, default=100_000)
    p.add_argument("--only", choices=["scale", "memory"], default=None)
    p.add_argument("--part", nargs=3, metavar=("MODE", "DIR", "SETTINGS"), help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.part:
        print(json.dumps(part(*args.part)))
        return
    folder = Path(args.data) if args.data else demo_folder(args.customers, 42)
    settings = json.dumps(
        {
            "mode": "scale",
            "sample_rows": args.sample_rows,
            "max_collect_rows": args.max_collect_rows,
            "batch_rows": args.batch_rows,
        }
    )
    env = {**os.environ, DUCKDB_MEMORY_ENV: f"{args.memory_mb}MB"}
    modes = [args.only] if args.only else ["scale", "memory"]
    print(f"data: {folder}; DuckDB memory cap {args.memory_mb:,} MB; scale settings {settings}")
    rows = []
    for mode in modes:
        cmd = [sys.executable, __file__, "--part", mode, str(folder), settings]
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
        if proc.returncode != 0:
            rows.append({"mode": mode, "error": proc.stderr.strip().splitlines()[-1:]})
            continue
        rows.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    for r in rows:
        print(json.dumps(r))


if __name__ == "__main__":
    main()
