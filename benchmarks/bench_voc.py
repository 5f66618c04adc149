"""Benchmark: voice of the customer at scale — grouped scores, key drivers, themes.

Usage::

    .venv/bin/python benchmarks/bench_voc.py --responses 100000    # development size
    .venv/bin/python benchmarks/bench_voc.py --responses 1000000   # the headline size
    .venv/bin/python benchmarks/bench_voc.py --small               # 20k responses, smoke test

Synthetic responses (written once to Parquet in a temporary folder): half as many
customers as responses, survey mix 35% NPS / 52% CSAT / 13% CES, six channels, six
touchpoints, a per-customer satisfaction level that links CSAT/CES to NPS, and comments
on ~40% of responses built from the demo's theme phrasings (``cxkit.synth.THEMES``).

Each task runs in its own child process so that its peak resident memory (``ru_maxrss``)
is its own (the data are generated in another child: Linux keeps ``ru_maxrss`` across
fork + exec); the increase over the child's resident memory at its start (numpy and
pandas loaded; the task's own imports such as cxkit/ibis or scikit-learn are counted) is
printed too. Times exclude loading (cxkit gets a DuckDB view of the Parquet files, the
pandas baseline a DataFrame already in memory).

Tasks and their baselines, run in the same invocation:

* ``scores``: NPS by month × channel, CSAT by touchpoint × channel, CES by touchpoint
  (cxkit: engine aggregates + intervals) vs the same counts with pandas ``groupby``
  (the script checks that both give the same counts);
* ``drivers``: per-customer driver table in the engine + Johnson relative weights with
  200 bootstrap resamples (linear) vs the per-customer table built with pandas
  ``pivot_table`` (same table, checked);
* ``themes``: cxkit ``themes`` (sentence-level TF-IDF + NMF fitted on a 50k-comment
  sample, distinct sentences projected once) vs the naive pipeline — TF-IDF + NMF
  fitted on every comment.
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

CHANNELS = np.array(["web", "app", "store", "email", "phone", "chat"])
TOUCHPOINTS = np.array(["checkout", "delivery", "support", "billing", "returns", "onboarding"])


def make_responses(n: int, seed: int = 0) -> pd.DataFrame:
    """``n`` synthetic survey responses with comments (see the module docstring)."""
    from cxkit.synth import THEMES

    rng = np.random.default_rng(seed)
    n_cust = max(n // 2, 1)
    cust = rng.integers(0, n_cust, n)
    level = rng.normal(0, 1, n_cust)[cust]
    survey = rng.choice(np.array(["nps", "csat", "ces"]), n, p=[0.35, 0.52, 0.13])
    tp_ix = rng.integers(0, len(TOUCHPOINTS), n)
    tp_effect = np.array([0.3, -0.2, -0.4, -0.1, 0.0, 0.2])[tp_ix]
    noise = rng.normal(0, 1, n)
    nps = np.clip(np.round(7.2 + 1.8 * level + noise), 0, 10)
    csat = np.clip(np.round(3.8 + 0.8 * level + tp_effect + 0.7 * noise), 1, 5)
    ces = np.clip(np.round(5.0 + 0.9 * level + tp_effect + 0.9 * noise), 1, 7)
    score = np.where(survey == "nps", nps, np.where(survey == "csat", csat, ces)).astype("int64")
    bad = np.where(survey == "nps", score <= 6, np.where(survey == "csat", score <= 2, score <= 3))
    good = np.where(survey == "nps", score >= 9, score >= np.where(survey == "csat", 4, 6))
    det = [t["phrasings"] for t in THEMES.values() if t["kind"] == "detractor"]
    pro = [t["phrasings"] for t in THEMES.values() if t["kind"] == "promoter"]
    det_p = np.array([p for ps in det for p in ps], dtype=object)
    pro_p = np.array([p for ps in pro for p in ps], dtype=object)
    mixed = np.concatenate([det_p, pro_p])
    has = rng.random(n) < 0.4
    pick = np.where(
        bad,
        det_p[rng.integers(0, len(det_p), n)],
        np.where(
            good, pro_p[rng.integers(0, len(pro_p), n)], mixed[rng.integers(0, len(mixed), n)]
        ),
    )
    second = mixed[rng.integers(0, len(mixed), n)]
    two = rng.random(n) < 0.25
    text = np.where(two, pick + " Also, " + second, pick)
    comment = pd.array(np.where(has, text, None), dtype="string")
    start = pd.Timestamp("2023-01-01").value // 1000
    ts_us = start + rng.integers(0, 730 * 86_400_000_000, n)
    ids = np.char.add("C", np.char.zfill(cust.astype(str), 7))
    return pd.DataFrame(
        {
            "response_id": pd.array(np.char.add("R", np.arange(n).astype(str)), dtype="string"),
            "customer_id": pd.array(ids, dtype="string"),
            "ts": pd.to_datetime(ts_us, unit="us"),
            "survey": pd.array(survey, dtype="string"),
            "score": score,
            "channel": pd.array(CHANNELS[rng.integers(0, len(CHANNELS), n)], dtype="string"),
            "touchpoint": pd.array(TOUCHPOINTS[tp_ix], dtype="string"),
            "comment": comment,
        }
    )


# --------------------------------------------------------------------------------------
# tasks (each runs in a child process)
# --------------------------------------------------------------------------------------


def _scores_cxkit(folder: Path) -> dict:
    import cxkit
    from cxkit import voc

    data = cxkit.load(folder)
    t = time.perf_counter()
    a = voc.nps(data, by=["period", "channel"])
    b = voc.csat(data, by=["touchpoint", "channel"])
    c = voc.ces(data, by="touchpoint")
    secs = time.perf_counter() - t
    return {
        "seconds": secs,
        "check": [int(a.promoters.sum()), int(b.satisfied.sum()), int(c.n.sum())],
    }


def _scores_pandas(folder: Path) -> dict:
    df = pd.read_parquet(folder / "responses.parquet")
    t = time.perf_counter()
    nps = df[df.survey == "nps"].assign(period=lambda d: d.ts.dt.to_period("M"))
    a = nps.groupby(["period", "channel"]).agg(
        n=("score", "size"),
        promoters=("score", lambda s: int((s >= 9).sum())),
        detractors=("score", lambda s: int((s <= 6).sum())),
    )
    cs = df[df.survey == "csat"]
    b = (
        cs.assign(sat=cs.score >= 4)
        .groupby(["touchpoint", "channel"])
        .agg(n=("score", "size"), satisfied=("sat", "sum"), mean=("score", "mean"))
    )
    ce = df[df.survey == "ces"]
    c = ce.groupby("touchpoint").score.agg(["size", "mean", "std"])
    secs = time.perf_counter() - t
    return {
        "seconds": secs,
        "check": [int(a.promoters.sum()), int(b.satisfied.sum()), int(c["size"].sum())],
    }


def _drivers_cxkit(folder: Path) -> dict:
    import cxkit
    from cxkit import voc

    data = cxkit.load(folder)
    t = time.perf_counter()
    table = voc.driver_table(data)
    t_table = time.perf_counter() - t
    kd = voc.driver_importance(table, n_boot=200, random_state=0)
    secs = time.perf_counter() - t
    return {
        "seconds": secs,
        "table_seconds": t_table,
        "customers": int(kd.attrs["n"]),
        "drivers": len(kd),
        "r2": round(float(kd.attrs["r2"]), 4),
        "top": kd.driver.iloc[0],
        "check": int(
            table.drop(columns=["customer_id", "nps_score", "promoter"]).notna().sum().sum()
        ),
    }


def _drivers_pandas(folder: Path) -> dict:
    df = pd.read_parquet(folder / "responses.parquet")
    t = time.perf_counter()
    nps = df[df.survey == "nps"].sort_values("ts").groupby("customer_id").score.last()
    rest = df[df.survey.isin(["csat", "ces"]) & df.customer_id.isin(nps.index)]
    rest = rest.assign(driver=rest.survey + "_" + rest.touchpoint)
    wide = rest.pivot_table(index="customer_id", columns="driver", values="score", aggfunc="mean")
    secs = time.perf_counter() - t
    return {"seconds": secs, "check": int(wide.notna().sum().sum())}


def _themes_cxkit(folder: Path) -> dict:
    import cxkit
    from cxkit import voc

    data = cxkit.load(folder)
    t = time.perf_counter()
    th = voc.themes(data)
    secs = time.perf_counter() - t
    return {"seconds": secs, "comments": len(th.comments), "themes": len(th.topics)}


def _themes_naive(folder: Path) -> dict:
    from sklearn.decomposition import NMF
    from sklearn.feature_extraction.text import TfidfVectorizer

    df = pd.read_parquet(folder / "responses.parquet", columns=["comment"]).dropna()
    t = time.perf_counter()
    vec = TfidfVectorizer(stop_words="english", min_df=2, max_df=0.5, sublinear_tf=True)
    x = vec.fit_transform(df.comment.str.lower())
    w = NMF(n_components=12, init="nndsvda", max_iter=400, random_state=0).fit_transform(x)
    secs = time.perf_counter() - t
    return {"seconds": secs, "comments": len(df), "assigned": int((w.max(axis=1) > 0).sum())}


TASKS = {
    "scores:cxkit": _scores_cxkit,
    "scores:pandas": _scores_pandas,
    "drivers:cxkit": _drivers_cxkit,
    "drivers:pandas-table-only": _drivers_pandas,
    "themes:cxkit": _themes_cxkit,
    "themes:naive-full-fit": _themes_naive,
}


def _rss_mb() -> float:
    """Current resident memory (Linux /proc; falls back to the peak)."""
    try:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _generate(n: int, folder: str) -> None:
    df = make_responses(n)
    df.to_parquet(Path(folder) / "responses.parquet", index=False)
    print(json.dumps({"comments": int(df.comment.notna().sum())}))


def _child(task: str, folder: str) -> None:
    start = _rss_mb()
    out = TASKS[task](Path(folder))
    out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    out["start_rss_mb"] = start
    print(json.dumps(out))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--responses", type=int, default=100_000)
    ap.add_argument("--small", action="store_true", help="20k responses")
    ap.add_argument("--skip", default="", help="comma list of tasks to skip")
    ap.add_argument("--child", nargs=2, metavar=("TASK", "FOLDER"), help=argparse.SUPPRESS)
    ap.add_argument("--generate", nargs=2, metavar=("N", "FOLDER"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        _child(*args.child)
        return
    if args.generate:
        _generate(int(args.generate[0]), args.generate[1])
        return
    n = 20_000 if args.small else args.responses
    skip = {s for s in args.skip.split(",") if s}
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        # generated in a child: Linux keeps ru_maxrss across fork+exec, so the parent
        # must stay small for the children's peaks to be their own
        gen = subprocess.run(
            [sys.executable, __file__, "--generate", str(n), tmp],
            capture_output=True,
            text=True,
            check=True,
        )
        n_comments = json.loads(gen.stdout.strip().splitlines()[-1])["comments"]
        print(
            f"{n:,} responses, {n_comments:,} comments; generated in "
            f"{time.perf_counter() - t:.1f} s"
        )
        results = {}
        for task in TASKS:
            if task in skip or task.split(":")[0] in skip:
                continue
            proc = subprocess.run(
                [sys.executable, __file__, "--child", task, tmp],
                capture_output=True,
                text=True,
                env={**os.environ, "PYTHONWARNINGS": "ignore"},
            )
            if proc.returncode != 0:
                print(f"{task}: FAILED\n{proc.stderr[-2000:]}")
                continue
            res = json.loads(proc.stdout.strip().splitlines()[-1])
            results[task] = res
            skip_keys = ("seconds", "peak_rss_mb", "start_rss_mb", "check")
            extra = {k: v for k, v in res.items() if k not in skip_keys}
            print(
                f"{task:26s} {res['seconds']:7.2f} s  peak RSS {res['peak_rss_mb']:6.0f} MB "
                f"(+{res['peak_rss_mb'] - res['start_rss_mb']:5.0f} MB over start)  "
                f"{n / res['seconds']:>10,.0f} responses/s  {extra}"
            )
        for name in ("scores", "drivers"):
            checks = [r["check"] for k, r in results.items() if k.startswith(name + ":")]
            if len(checks) == 2:
                status = "same" if checks[0] == checks[1] else f"DIFFERENT {checks}"
                print(f"{name}: cxkit and baseline counts are {status}")


if __name__ == "__main__":
    main()
