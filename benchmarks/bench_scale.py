"""Benchmark: scale mode against memory mode on DuckDB (the churn analysis, or the suite).

Each mode runs ``churn.analyze`` in its own child process on the same data (so that
its peak resident memory, ``ru_maxrss``, is its own) with a DuckDB memory cap
(``CXKIT_DUCKDB_MEMORY_LIMIT``, as ``cxkit report`` sets it), and prints wall time, peak RSS
and the headline figures of each: the churn rate (exact in both), the test ROC AUC and
the high-risk share.

The data comes from ``cxkit synth --customers N --seed 42 --out DIR``; pass ``--data
DIR`` (without it, a demo of ``--customers`` is generated into ``benchmarks/_work/``).

With ``--suite`` it runs the whole ``cxkit report`` suite instead, once in each mode, in
one session: memory mode as ``reports.yml`` has it, scale mode under ``memory_limit_gb``
(``--suite-memory-gb``, which caps each kernel's DuckDB at its share) with
``strict: true`` (any collect over ``max_collect_rows`` fails the report), and prints each
report's status, wall time and peak memory (from the run's ``manifest.json``) and each
run's headlines side by side.

Usage::

    .venv/bin/python benchmarks/bench_scale.py --data DIR                 # 1,000,000 default
    .venv/bin/python benchmarks/bench_scale.py --customers 20000 --memory-mb 1024
    .venv/bin/python benchmarks/bench_scale.py --data DIR --only scale   # one mode
    .venv/bin/python benchmarks/bench_scale.py --data DIR --suite --suite-memory-gb 3
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


def suite(folder: Path, settings: dict, memory_gb: float, modes: list[str], out: Path) -> None:
    """Run ``cxkit report`` in each mode on ``folder``; print per-report figures."""
    import yaml

    base = yaml.safe_load((ROOT / "reports.yml").read_text())
    for r in base["reports"]:
        r["notebook"] = str(ROOT / r["notebook"])
    runs = {}
    for mode in modes:
        cfg = {**base, "data": str(folder.resolve()), "out": str((out / mode).resolve())}
        if mode == "scale":
            cfg["scale"] = {**settings, "strict": True}
            cfg["memory_limit_gb"] = memory_gb
        path = out / f"reports-{mode}.yml"
        out.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump(cfg, sort_keys=False))
        t = time.perf_counter()
        proc = subprocess.run(
            [sys.executable, "-m", "cxkit.cli", "report", "--config", str(path)],
            capture_output=True,
            text=True,
            check=False,
            cwd=ROOT,
        )
        wall = time.perf_counter() - t
        print(
            f"{mode}: exit {proc.returncode} in {wall:.1f} s: {proc.stdout.strip().splitlines()[-1:]}"
        )
        if not (out / mode / "manifest.json").is_file():
            print(proc.stdout[-2000:], proc.stderr[-2000:])
            continue
        manifest = json.loads((out / mode / "manifest.json").read_text())
        runs[mode] = (wall, manifest)
    print(
        f"\n{'report':<20}" + "".join(f"{m + ' status':>22}{'s':>8}{'peak MiB':>10}" for m in runs)
    )
    names = next(iter(runs.values()))[1]["reports"]
    for name in names:
        row = f"{name:<20}"
        for _, manifest in runs.values():
            r = manifest["reports"].get(name, {})
            peak = r.get("peak_memory_mb")
            row += f"{str(r.get('status'))[:20]:>22}{r.get('seconds') or 0:>8.1f}"
            row += f"{peak or 0:>10,.0f}"
        print(row)
    for name in names:
        for mode, (_, manifest) in runs.items():
            print(f"  {name} [{mode}]: {manifest['reports'].get(name, {}).get('headline')}")


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
    p.add_argument("--suite", action="store_true", help="run the whole cxkit report suite")
    p.add_argument("--suite-memory-gb", type=float, default=3.0, help="scale run's budget")
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "_work" / "scale_suite"))
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
    modes = [args.only] if args.only else ["scale", "memory"]
    if args.suite:
        limits = json.loads(settings)
        limits.pop("mode")
        suite(folder, limits, args.suite_memory_gb, modes, Path(args.out))
        return
    env = {**os.environ, DUCKDB_MEMORY_ENV: f"{args.memory_mb}MB"}
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
