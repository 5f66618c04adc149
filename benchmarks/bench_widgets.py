"""Benchmark: one update of each cxkit.widgets explorer on the demo data (target < 0.5 s).

Usage::

    .venv/bin/python benchmarks/bench_widgets.py                  # 20k-customer demo
    .venv/bin/python benchmarks/bench_widgets.py --small          # 2k demo, smoke test
    .venv/bin/python benchmarks/bench_widgets.py --customers 50000 --repeats 10

The demo is written once with ``cxkit.synth.write_demo`` into ``benchmarks/_work/``
(git-ignored). For each explorer the script cycles through a list of typical selections
and times ``update()`` — the callback a control change runs: compute, redraw the
FigureWidget, rebuild the table — with the explorer's memory of earlier selections
cleared before each call ("cold"), and once more with it kept ("memo": going back to a
selection already seen). The baseline, timed in the same run, is the bare domain call
the update makes (e.g. ``lifecycle.funnel`` on the same slice), so the difference is the
widget's own cost. Figures: median and max over ``--repeats`` updates, wall clock, and
the median CPU seconds of the process (all threads) per cold update — on a busy shared
machine the wall clock includes waiting for a core, the CPU time does not.

Personas come from the demo's planted truth and CLV from ``cxkit.clv``; the churn
probability is ``1 − p_alive`` as a stand-in (the explorer only ranks by it), so that
the benchmark does not spend a minute fitting models it does not measure.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import resource
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

import cxkit
from cxkit import clv, lifecycle, synth, voc
from cxkit import widgets as W

HERE = Path(__file__).resolve().parent
TARGET_S = 0.5


def _demo(customers: int, seed: int) -> Path:
    out = HERE / "_work" / f"demo_{customers}_{seed}"
    if not (out / "events.parquet").exists():
        t = time.perf_counter()
        synth.write_demo(out, customers=customers, seed=seed)
        print(f"wrote {out} in {time.perf_counter() - t:.1f} s")
    return out


def _time(
    fn: Callable[[], Any], repeats: int, before: Callable[[int], None], *, warm: bool = False
) -> list[float]:
    """Time ``fn`` after ``before(i)``; with ``warm`` the selection is computed once first."""
    out = []
    for i in range(repeats):
        before(i)
        if warm:
            fn()
        t, c = time.perf_counter(), time.process_time()
        fn()
        out.append(time.perf_counter() - t)
        CPU.append(time.process_time() - c)
    return out


#: CPU seconds of the timed calls (all threads), in the order they ran; see main().
CPU: list[float] = []


def _row(
    name: str, what: str, cold: list[float], memo: list[float], base: list[float], cpu: list[float]
) -> dict:
    return {
        "explorer": name,
        "update": what,
        "cold_median_s": statistics.median(cold),
        "cold_cpu_median_s": statistics.median(cpu),
        "cold_max_s": max(cold),
        "memo_median_s": statistics.median(memo) if memo else float("nan"),
        "domain_median_s": statistics.median(base) if base else float("nan"),
        "n": len(cold),
    }


def bench_funnel(data: cxkit.CXData, personas: pd.DataFrame, repeats: int) -> dict:
    fx = W.FunnelExplorer(data, personas=personas, live=False)
    sel = [
        (["site_visit", "product_view", "add_to_cart", "order"], 0.0, "any", "(none)"),
        (["site_visit", "product_view", "add_to_cart", "order"], 7.0, "first", "(none)"),
        (["product_view", "add_to_cart", "order"], 30.0, "any", "region"),
        (["site_visit", "product_view", "order"], 0.0, "first", "entry_channel"),
        (["awareness", "consideration", "purchase", "retention"], 0.0, "first", "persona"),
    ]
    ranges = [
        (dt.date(2023, 1, 1), dt.date(2024, 12, 31)),
        (dt.date(2024, 1, 1), dt.date(2024, 6, 30)),
    ]

    def pick(i: int, clear: bool) -> None:
        steps, window, entry, by = sel[i % len(sel)]
        fx.steps.value, fx.window.value, fx.entry.value, fx.breakdown.value = (
            steps,
            window,
            entry,
            by,
        )
        fx.start.value, fx.end.value = ranges[(i // len(sel)) % len(ranges)]
        if clear:
            fx._memo.clear()

    CPU.clear()
    cold = _time(fx.update, repeats, lambda i: pick(i, True))
    cpu = list(CPU)
    assert fx.message.value == "" or "small_n" in fx.message.value, fx.message.value
    memo = _time(fx.update, repeats, lambda i: pick(i, False), warm=True)

    def domain(i: int) -> Callable[[], Any]:
        steps, window, entry, _ = sel[i % len(sel)]
        start, end = ranges[(i // len(sel)) % len(ranges)]
        return lambda: lifecycle.funnel(
            data.between(start, end), steps, window=window or None, entry=entry, by=fx._by()
        )

    base = []
    for i in range(repeats):
        pick(i, True)
        f = domain(i)
        t = time.perf_counter()
        f()
        base.append(time.perf_counter() - t)
    return _row("FunnelExplorer", "steps/window/entry/breakdown/dates", cold, memo, base, cpu)


def bench_persona(
    data: cxkit.CXData, personas: pd.DataFrame, scores: pd.DataFrame, repeats: int
) -> tuple[dict, float]:
    t = time.perf_counter()
    px = W.PersonaExplorer(data, personas, scores=scores, live=False)
    build = time.perf_counter() - t
    names = list(px.persona.options)
    thresholds = [0.5, 0.8, 0.3]

    def pick(i: int) -> None:
        px.persona.value = names[i % len(names)]
        px.min_churn.value = thresholds[i % len(thresholds)]
        px._memo.clear()

    CPU.clear()
    cold = _time(px.update, repeats, pick)
    return _row("PersonaExplorer", "persona/threshold", cold, [], [], list(CPU)), build


def bench_lookup(data: cxkit.CXData, scores: pd.DataFrame, repeats: int) -> dict:
    cl = W.CustomerLookup(data, scores=scores, live=False)
    ids = scores["customer_id"].sample(repeats, random_state=0).tolist()

    def pick(i: int) -> None:
        cl.customer_id.value = ids[i]

    CPU.clear()
    cold = _time(cl.update, repeats, pick)
    cpu = list(CPU)
    assert cl.message.value == "", cl.message.value

    def base_one(i: int) -> Callable[[], Any]:
        cid = ids[i]
        return lambda: [
            data.table(n).filter(data.table(n).customer_id == cid).to_pandas()
            for n in ("customers", "events", "orders", "responses")
        ]

    base = []
    for i in range(repeats):
        f = base_one(i)
        t = time.perf_counter()
        f()
        base.append(time.perf_counter() - t)
    return _row("CustomerLookup", "customer ID", cold, [], base, cpu)


def bench_nps(data: cxkit.CXData, personas: pd.DataFrame, repeats: int) -> dict:
    nx = W.NpsExplorer(data, personas=personas, live=False)
    chans = [W.ALL, *nx.channel.options[1:3]]
    tps = [W.ALL, *nx.touchpoint.options[1:3]]
    pers = [W.ALL, *nx.persona.options[1:2]]
    ranges = [(nx.start.value, nx.end.value), (dt.date(2024, 1, 1), dt.date(2024, 12, 31))]

    def pick(i: int, clear: bool = True) -> None:
        nx.channel.value = chans[i % len(chans)]
        nx.touchpoint.value = tps[(i // 2) % len(tps)]
        nx.persona.value = pers[(i // 3) % len(pers)]
        nx.start.value, nx.end.value = ranges[(i // 4) % len(ranges)]
        if clear:
            nx._memo.clear()

    CPU.clear()
    cold = _time(nx.update, repeats, pick)
    cpu = list(CPU)
    memo = _time(nx.update, repeats, lambda i: pick(i, False), warm=True)

    base = []
    for i in range(repeats):
        pick(i)
        d = nx.filtered()
        t = time.perf_counter()
        voc.nps(d)
        voc.nps_trend(d)
        voc.comments(d)
        base.append(time.perf_counter() - t)
    return _row("NpsExplorer", "period/channel/touchpoint/persona", cold, memo, base, cpu)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--customers", type=int, default=20_000)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--repeats", type=int, default=10)
    ap.add_argument("--small", action="store_true", help="2,000 customers (smoke test)")
    args, _ = ap.parse_known_args(argv)  # run_all.py passes the same size flags to every bench
    customers = 2_000 if args.small else args.customers
    folder = _demo(customers, args.seed)
    data = cxkit.load(folder)
    sizes = {n: int(data.table(n).count().to_pyarrow().as_py()) for n in data.names}
    print(f"data: {folder}  rows: {sizes}")
    print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} (1 min)")

    truth = pd.read_parquet(folder / "_truth.parquet", columns=["customer_id", "persona"])
    personas = truth.rename(columns={"persona": "persona_name"}).astype(str)
    t = time.perf_counter()
    s = clv.rfm_summary(data)
    bg = clv.BetaGeo().fit(s)
    gg = clv.GammaGamma().fit(s[s.frequency > 0])
    scores = clv.customer_value(s, bg, gg)
    scores["churn_probability"] = 1.0 - scores["p_alive"]
    print(f"scores (CLV fit, not timed below): {time.perf_counter() - t:.1f} s")

    # Build once: the first FigureWidget pays plotly/anywidget imports (a one-off per kernel).
    t = time.perf_counter()
    W.CustomerLookup(data, live=False)
    print(f"first explorer built (imports included): {time.perf_counter() - t:.2f} s")

    rows = [bench_funnel(data, personas, args.repeats)]
    prow, build = bench_persona(data, personas, scores, args.repeats)
    print(f"PersonaExplorer construction (journey_map once): {build:.2f} s")
    rows += [
        prow,
        bench_lookup(data, scores, args.repeats),
        bench_nps(data, personas, args.repeats),
    ]

    df = pd.DataFrame(rows)
    df["under_target"] = df["cold_median_s"] < TARGET_S
    with pd.option_context("display.width", 160, "display.max_columns", 20):
        print()
        print(df.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"\npeak resident memory: {peak:,.0f} MiB; target per update: {TARGET_S} s")
    print(f"load average after: {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
