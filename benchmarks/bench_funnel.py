"""Benchmark: a 4-step, 7-day, entry=first funnel, cxkit (ibis on DuckDB) vs pandas merge_asof.

Usage::

    .venv/bin/python benchmarks/bench_funnel.py --events 1000000      # development size
    .venv/bin/python benchmarks/bench_funnel.py                       # the headline size (10M)
    .venv/bin/python benchmarks/bench_funnel.py --small               # 200k events, smoke test

Both implementations compute the same definition (DESIGN §7): per customer, step 1 is
the first ``site_visit``; each next step is the earliest ``product_view`` /
``add_to_cart`` / ``checkout`` strictly after the matched previous step, all within 7
days (inclusive) of step 1. The script asserts that both give the same counts.

Each implementation runs in its own child process so that its peak memory
(``VmHWM``) is its own; the figure printed is the process's peak resident memory
and the increase over the resident memory just before the funnel (data already loaded).
Customer IDs are strings ("C0000001"). Timing covers the funnel only (data already in
memory: a DuckDB table for cxkit, a DataFrame for pandas); cxkit's time includes the
median/p90 time-to-convert aggregates, which the pandas baseline also computes.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

STEPS = ["site_visit", "product_view", "add_to_cart", "checkout"]
WINDOW = pd.Timedelta(days=7)
OTHER = ["ad_impression", "email_open", "support_contact", "app_open"]


def make_events(n_events: int, n_customers: int, seed: int = 0) -> pd.DataFrame:
    """A synthetic event log with ~n_events rows over n_customers (string IDs)."""
    rng = np.random.default_rng(seed)
    per = rng.poisson(n_events / n_customers - 1, n_customers) + 1
    cust_ix = np.repeat(np.arange(n_customers), per)
    n = len(cust_ix)
    names = np.array(STEPS + OTHER)
    # Funnel events are likelier early in a customer's life, so the funnel is not trivial.
    probs = np.array([0.22, 0.18, 0.10, 0.06, 0.14, 0.12, 0.08, 0.10])
    event = names[rng.choice(len(names), size=n, p=probs / probs.sum())]
    start = rng.integers(0, 365 * 86400, n_customers)[cust_ix]
    offset = rng.exponential(8 * 86400, n).astype(np.int64)
    micros = rng.integers(0, 1_000_000, n)
    ts = (
        pd.Timestamp("2024-01-01").as_unit("us")
        + pd.to_timedelta(start + offset, unit="s")
        + pd.to_timedelta(micros, unit="us")
    )
    ids = pd.Series(np.char.add("C", np.char.zfill(np.arange(1, n_customers + 1).astype(str), 7)))
    df = pd.DataFrame({"customer_id": ids.to_numpy()[cust_ix], "ts": ts, "event": event}).sample(
        frac=1.0, random_state=seed
    )  # unsorted, as real logs are
    df["customer_id"] = df["customer_id"].astype("str")
    df["event"] = df["event"].astype("str")
    return df.reset_index(drop=True)


def _rss_now_kib() -> int:
    with open("/proc/self/statm") as fh:
        pages = int(fh.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") // 1024


def _peak_kib() -> int:
    """This process's peak resident memory (VmHWM).

    Not ``ru_maxrss``: on Linux a child inherits its parent's maxrss at fork, so a worker
    started by a parent that held the generated data would report the parent's peak.
    """
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


# ---- the two implementations --------------------------------------------------------


def funnel_pandas(ev: pd.DataFrame) -> tuple[list[int], list[float]]:
    """The same definition with a chain of ``pd.merge_asof`` (the baseline)."""
    counts: list[int] = []
    medians: list[float] = []
    e1 = ev[ev.event == STEPS[0]]
    cur = e1.groupby("customer_id", sort=False).ts.min().rename("start").reset_index()
    cur["prev"] = cur["start"]
    counts.append(len(cur))
    for step in STEPS[1:]:
        right = ev.loc[ev.event == step, ["customer_id", "ts"]].sort_values("ts")
        left = cur.sort_values("prev")
        m = pd.merge_asof(
            left,
            right,
            left_on="prev",
            right_on="ts",
            by="customer_id",
            direction="forward",
            allow_exact_matches=False,
        )
        m = m[m.ts.notna() & (m.ts <= m.start + WINDOW)]
        counts.append(len(m))
        medians.append(float((m.ts - m.prev).dt.total_seconds().median()) if len(m) else np.nan)
        cur = m[["customer_id", "start"]].assign(prev=m.ts)
    return counts, medians


def funnel_cxkit(table) -> tuple[list[int], list[float]]:
    from cxkit import CXData
    from cxkit.lifecycle import funnel

    f = funnel(CXData(table.get_backend(), {"events": table}), STEPS, window="7D", entry="first")
    med = (f.median_time_from_previous_hours * 3600).tolist()[1:]
    return f.n_customers.tolist(), med


# ---- child processes ----------------------------------------------------------------


def _worker(kind: str, path: str, threads: int) -> dict:
    if kind == "pandas":
        ev = pd.read_parquet(path)
        ev["customer_id"] = ev["customer_id"].astype("str")
        n = len(ev)
        before = _rss_now_kib()
        t0 = time.perf_counter()
        counts, med = funnel_pandas(ev)
        secs = time.perf_counter() - t0
    else:
        import ibis

        con = ibis.duckdb.connect(threads=threads)
        con.raw_sql("SET TimeZone = 'UTC'")
        table = con.create_table("events", con.read_parquet(path))
        n = int(table.count().to_pandas())
        funnel_cxkit(table.limit(1000))  # warm up imports and the compiler
        before = _rss_now_kib()
        t0 = time.perf_counter()
        counts, med = funnel_cxkit(table)
        secs = time.perf_counter() - t0
    peak = _peak_kib()
    return {
        "impl": kind,
        "events": n,
        "seconds": secs,
        "events_per_s": n / secs,
        "peak_rss_mib": peak / 1024,
        "peak_increase_mib": max(peak - before, 0) / 1024,
        "counts": counts,
        "median_s": med,
    }


def _run_child(kind: str, path: Path, threads: int) -> dict:
    out = subprocess.run(
        [
            sys.executable,
            __file__,
            "--worker",
            kind,
            "--path",
            str(path),
            "--threads",
            str(threads),
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=10_000_000)
    ap.add_argument("--customers", type=int, default=None, help="default: events / 10")
    ap.add_argument("--small", action="store_true", help="200k events (smoke test)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--worker", choices=["pandas", "cxkit"], help=argparse.SUPPRESS)
    ap.add_argument("--path", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        print(json.dumps(_worker(args.worker, args.path, args.threads)))
        return 0
    n_events = 200_000 if args.small else args.events
    n_customers = args.customers or max(n_events // 10, 1)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "events.parquet"
        t0 = time.perf_counter()
        make_events(n_events, n_customers, args.seed).to_parquet(path, index=False)
        gen = time.perf_counter() - t0
        print(f"generated {n_events:,} target events / {n_customers:,} customers in {gen:.1f} s")
        res = {k: _run_child(k, path, args.threads) for k in ("cxkit", "pandas")}
    a, b = res["cxkit"], res["pandas"]
    assert a["counts"] == b["counts"], f"counts differ: cxkit {a['counts']} vs pandas {b['counts']}"
    assert np.allclose(a["median_s"], b["median_s"], rtol=1e-6, atol=1.0, equal_nan=True), (
        a["median_s"],
        b["median_s"],
    )
    print(f"funnel {' > '.join(STEPS)}, window 7 days, entry=first; counts {a['counts']}")
    print(
        f"{'implementation':<24}{'events':>12}{'seconds':>10}{'events/s':>14}"
        f"{'peak RSS MiB':>14}{'+MiB in funnel':>16}"
    )
    for r in (a, b):
        name = "cxkit (ibis+DuckDB)" if r["impl"] == "cxkit" else "pandas merge_asof"
        print(
            f"{name:<24}{r['events']:>12,}{r['seconds']:>10.2f}{r['events_per_s']:>14,.0f}"
            f"{r['peak_rss_mib']:>14,.0f}{r['peak_increase_mib']:>16,.0f}"
        )
    print(f"speed-up vs pandas: {b['seconds'] / a['seconds']:.1f}x; same counts: yes")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
