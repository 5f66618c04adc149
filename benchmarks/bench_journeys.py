"""Benchmark: the lifecycle journeys (paths + Sankey links), old per-customer join vs new.

What ``lifecycle.analyze`` computes for its journeys, on the synthetic demo: touchpoint
journeys (4 steps, the 10 most common paths, links over the 6 most frequent touchpoints)
and stage journeys (one step per available stage, 8 paths, every stage by name).

* **old (baseline)** — the implementation before issue 18, kept in this file only:
  ``journey_paths`` and ``journey_sankey`` each run the sequence query, bring every
  ``(customer, step, item)`` row to pandas, and the paths are joined per customer in a
  Python lambda; four sequence queries in all.
* **new, separate calls** — ``lifecycle.journey_paths`` + ``lifecycle.journey_sankey``:
  the engine spreads each journey over one column per step and counts the customers per
  distinct journey; pandas only reads the small table. Still one query per call.
* **new, shared (what analyze runs)** — ``lifecycle.journey_tables`` once per kind:
  one sequence query per kind for both tables.

The script checks that all three give identical frames (``assert_frame_equal``, dtypes
included). Timings are wall-clock seconds on data already opened (DuckDB on the Parquet
files); each variant runs ``--repeat`` times, interleaved, and the best run is compared.

Usage::

    .venv/bin/python benchmarks/bench_journeys.py                      # 1,000,000 customers
    .venv/bin/python benchmarks/bench_journeys.py --customers 100000   # development size
    .venv/bin/python benchmarks/bench_journeys.py --small              # 20,000, smoke test
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

import ibis
import pandas as pd

import cxkit
from cxkit import lifecycle as lc
from cxkit import stats
from cxkit.data import CXData, resolve_as_of
from cxkit.errors import NotAvailableError, UsageError
from cxkit.lifecycle.stages import StageMapSpec, load_stage_map, stage_times_expr, union_all

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))

from _demo import demo_folder  # noqa: E402  (benchmarks/ is on sys.path)

Tables = dict[str, pd.DataFrame]

# ---- the baseline: cxkit/lifecycle/journeys.py before issue 18, verbatim ----------------

_KINDS = ("stage", "touchpoint", "event", "channel")


def _old_sequences(
    data: CXData, kind: str, max_steps: int, stage_map: StageMapSpec, end: pd.Timestamp
) -> pd.DataFrame:
    if kind == "stage":
        smap = load_stage_map(stage_map)
        st = stage_times_expr(data, smap, as_of=end, monotone=False)
        parts = []
        for i, n in enumerate(smap):
            s = st.filter(st[f"{n}_at"].notnull())
            parts.append(s.select("customer_id", ts=s[f"{n}_at"], item=ibis.literal(n), o=i))
        u = union_all(parts)
        w = ibis.window(group_by=u.customer_id, order_by=[u.ts, u.o])
        u = u.mutate(pos=ibis.row_number().over(w))
        return u.filter(u.pos < max_steps).select("customer_id", "pos", "item").to_pandas()
    if kind not in _KINDS:
        raise UsageError(f"kind must be 'stage', 'touchpoint', 'event' or 'channel', got {kind!r}")
    e = data.require("events", analysis="Journey paths")
    if kind not in e.columns:
        raise NotAvailableError(f"table 'events' with column '{kind}'", analysis="Journey paths")
    e = e.filter(e[kind].notnull())
    order = [e.ts, e[kind]]
    if "event_id" in e.columns:
        order.append(e.event_id)
    w = ibis.window(group_by=e.customer_id, order_by=order)
    e = e.select(
        "customer_id",
        "ts",
        item=e[kind].cast("string"),
        prev_item=e[kind].lag().over(w),
        rn=ibis.row_number().over(w),
    )
    e = e.filter(e.prev_item.isnull() | (e.prev_item != e.item))
    w2 = ibis.window(group_by=e.customer_id, order_by=[e.rn])
    e = e.mutate(pos=ibis.row_number().over(w2))
    return e.filter(e.pos < max_steps).select("customer_id", "pos", "item").to_pandas()


def old_journey_paths(data, *, kind="touchpoint", max_steps=4, top=10, as_of=None, stage_map=None):
    end = resolve_as_of(data, as_of)
    seq = _old_sequences(data.upto(end), kind, max_steps, stage_map, end)
    if seq.empty:
        return pd.DataFrame(columns=["path", "steps", "customers", "share", "ci_low", "ci_high"])
    seq = seq.sort_values(["customer_id", "pos"], kind="stable")
    paths = seq.groupby("customer_id", sort=False)["item"].agg(lambda s: " > ".join(s))
    total = len(paths)
    counts = paths.value_counts()
    counts = counts.rename_axis("path").reset_index(name="customers")
    counts = counts.sort_values(["customers", "path"], ascending=[False, True], kind="stable")
    counts = counts.head(top).reset_index(drop=True)
    counts.insert(1, "steps", counts.path.str.count(" > ") + 1)
    counts["share"] = counts.customers / total
    counts["ci_low"], counts["ci_high"] = stats.wilson_ci(counts.customers, total)
    return counts


def old_journey_sankey(
    data,
    *,
    kind="touchpoint",
    max_steps=4,
    top=6,
    as_of=None,
    stage_map=None,
    end_label="(end)",
):
    end = resolve_as_of(data, as_of)
    seq = _old_sequences(data.upto(end), kind, max_steps, stage_map, end)
    cols = ["source", "target", "customers"]
    if seq.empty:
        return pd.DataFrame(columns=cols)
    keep = seq["item"].value_counts().head(top).index
    seq = seq.assign(item=seq["item"].where(seq["item"].isin(keep), "other"))
    seq = seq.sort_values(["customer_id", "pos"], kind="stable")
    seq["node"] = (seq.pos.astype(int) + 1).astype(str) + ". " + seq["item"].astype(str)
    seq["next"] = seq.groupby("customer_id")["node"].shift(-1)
    last_pos = seq.groupby("customer_id")["pos"].transform("max")
    short = (last_pos < max_steps - 1) & (seq.pos == last_pos)
    seq.loc[short, "next"] = end_label
    links = seq.dropna(subset=["next"]).groupby(["node", "next"]).size()
    links = (
        links.rename("customers").reset_index().rename(columns={"node": "source", "next": "target"})
    )
    links["customers"] = links.customers.astype("int64")
    links["_o"] = links.source.str.split(".").str[0].astype(int)
    links = links.sort_values(["_o", "customers"], ascending=[True, False], kind="stable")
    return links.drop(columns="_o").reset_index(drop=True)


# ---- the three variants, with analyze's settings ----------------------------------------


def run_old(data: CXData, end: pd.Timestamp, smap: dict) -> Tables:
    n = len(smap)
    return {
        "journey_links": old_journey_sankey(data, kind="touchpoint", max_steps=4, top=6, as_of=end),
        "journey_paths": old_journey_paths(data, kind="touchpoint", max_steps=4, top=10, as_of=end),
        "stage_paths": old_journey_paths(
            data, kind="stage", max_steps=n, top=8, stage_map=smap, as_of=end
        ),
        "stage_links": old_journey_sankey(
            data, kind="stage", max_steps=n, top=n, stage_map=smap, as_of=end
        ),
    }


def run_new_separate(data: CXData, end: pd.Timestamp, smap: dict) -> Tables:
    n = len(smap)
    stage = {"kind": "stage", "max_steps": n, "stage_map": smap, "as_of": end}
    return {
        "journey_links": lc.journey_sankey(data, kind="touchpoint", max_steps=4, top=6, as_of=end),
        "journey_paths": lc.journey_paths(data, kind="touchpoint", max_steps=4, top=10, as_of=end),
        "stage_paths": lc.journey_paths(data, top=8, **stage),
        "stage_links": lc.journey_sankey(data, top=n, **stage),
    }


def run_new_shared(data: CXData, end: pd.Timestamp, smap: dict) -> Tables:
    n = len(smap)
    paths, links = lc.journey_tables(
        data, kind="touchpoint", max_steps=4, top_paths=10, top_items=6, as_of=end
    )
    stage_paths, stage_links = lc.journey_tables(
        data, kind="stage", max_steps=n, top_paths=8, top_items=n, stage_map=smap, as_of=end
    )
    return {
        "journey_links": links,
        "journey_paths": paths,
        "stage_paths": stage_paths,
        "stage_links": stage_links,
    }


VARIANTS: dict[str, Callable[[CXData, pd.Timestamp, dict], Tables]] = {
    "old (baseline)": run_old,
    "new, separate calls": run_new_separate,
    "new, shared (analyze)": run_new_shared,
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--small", action="store_true", help="20,000 customers")
    args = parser.parse_args()
    customers = 20_000 if args.small else args.customers
    folder = demo_folder(customers, args.seed)
    data = cxkit.load(folder)
    end = resolve_as_of(data, None)
    data = data.upto(end)  # as analyze does
    smap, _ = lc.available_stages(data)
    n_events = int(data.table("events").count().execute())
    print(
        f"journeys on {customers:,} customers ({n_events:,} events), "
        f"stages {list(smap)}, best of {args.repeat}"
    )
    times: dict[str, list[float]] = {name: [] for name in VARIANTS}
    results: dict[str, Tables] = {}
    for _ in range(args.repeat):
        for name, fn in VARIANTS.items():
            t = time.perf_counter()
            results[name] = fn(data, end, smap)
            times[name].append(time.perf_counter() - t)
    ref = results["old (baseline)"]
    for name, got in results.items():
        for table, frame in ref.items():
            pd.testing.assert_frame_equal(got[table], frame, obj=f"{name}: {table}")
    print("identical: all four tables, old vs both new variants (dtypes included)")
    base = min(times["old (baseline)"])
    for name, ts in times.items():
        runs = ", ".join(f"{t:.2f}" for t in ts)
        print(f"  {name:24s} best {min(ts):7.2f} s   ({runs})   old/this {base / min(ts):5.1f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
