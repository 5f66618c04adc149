"""Run every benchmark and write ``benchmarks/results.md``.

``make bench`` calls this. It runs, in one session on this machine:

1. two end-to-end ``cxkit report`` runs on a generated demo of ``--customers``
   customers (default 1,000,000) — a first run with no earlier measurements and a
   second that schedules by the first run's memory peaks: wall time and peak memory per
   report (with its slowest cells) and of the whole process tree (sampled every 0.2 s);
2. every ``benchmarks/bench_*.py`` script, each against the baseline its issue names,
   with its own printed figures captured verbatim.

Usage::

    python benchmarks/run_all.py                      # the full run (takes a while)
    python benchmarks/run_all.py --customers 20000    # a quick run
    python benchmarks/run_all.py --skip-e2e --only funnel clv
    python benchmarks/run_all.py --skip-domains --baseline ../main-before   # beside another checkout
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
WORK = HERE / "_work"
PY = sys.executable


class PeakRSS:
    """Samples the summed RSS of a process and all its children until stopped."""

    def __init__(self, pid: int, interval: float = 0.2) -> None:
        self.pid, self.interval, self.peak = pid, interval, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                root = psutil.Process(self.pid)
                procs = [root, *root.children(recursive=True)]
                total = 0
                for p in procs:
                    try:
                        total += p.memory_info().rss
                    except psutil.Error:
                        pass
                self.peak = max(self.peak, total)
            except psutil.Error:
                pass
            self._stop.wait(self.interval)

    def __enter__(self) -> PeakRSS:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def run(cmd: list[str], *, cwd: Path = ROOT, timeout: float | None = None) -> dict:
    """Run a command; return wall seconds, peak tree RSS, exit code and output."""
    start = time.perf_counter()
    proc = subprocess.Popen(
        cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    with PeakRSS(proc.pid) as mem:
        try:
            out, _ = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, _ = proc.communicate()
            out += f"\n[timed out after {timeout} s]"
    return {
        "seconds": time.perf_counter() - start,
        "peak_gb": mem.peak / 1e9,
        "returncode": proc.returncode,
        "output": out,
    }


def machine() -> str:
    mem = psutil.virtual_memory().total / 2**30
    return (
        f"{os.cpu_count()} cores, {mem:.0f} GiB memory, {platform.system()} "
        f"{platform.release()}, Python {platform.python_version()}"
    )


_CALL = re.compile(r"\b(?:churn|lifecycle|voc|summary|personas|clv|health)\.\w+\(|\bvalidate\(")


def _slowest_cells(executed: Path, top: int = 3) -> str:
    """The slowest cells of an executed notebook (papermill's per-cell durations).

    Each is named by its number and its first call into cxkit (else its first line).
    """
    try:
        nb = json.loads(executed.read_text())
    except (OSError, ValueError):
        return ""
    cells = []
    for i, cell in enumerate(nb.get("cells", [])):
        took = cell.get("metadata", {}).get("papermill", {}).get("duration")
        if took:
            lines = [ln.strip() for ln in "".join(cell.get("source", "")).splitlines()]
            code = [ln for ln in lines if ln and not ln.startswith(("import", "from", "#"))]
            call = next((ln for ln in code if _CALL.search(ln)), code[0] if code else "")
            cells.append((float(took), i, call[:60].replace("|", "/")))
    cells.sort(reverse=True)
    return "; ".join(f"{t:.0f} s cell {i} `{c}`" for t, i, c in cells[:top] if t >= 1)


def _load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} / {five:.2f} / {fifteen:.2f}"


def _report_run(
    data: Path, out: Path, jobs: int, label: str, *, py: str = PY, cwd: Path = ROOT
) -> tuple[list[str], dict]:
    """One ``cxkit report`` run of the checkout at ``cwd``: its table and its totals."""
    cmd = [py, "-m", "cxkit.cli", "report", "--data", str(data), "--out", str(out)]
    cmd += ["--jobs", str(jobs)]
    load_before = _load()
    r = run(cmd, cwd=cwd, timeout=3 * 3600)
    load_after = _load()
    manifest = (
        json.loads((out / "manifest.json").read_text()) if (out / "manifest.json").exists() else {}
    )
    lines = [
        f"### {label}",
        "",
        f"Load average (1 / 5 / 15 min) before the run {load_before}, after {load_after}.",
        "",
        "| stage | wall time (s) | kernel peak (GB) | estimate used (GB) | nice | status "
        "| slowest cells |",
        "|---|---:|---:|---:|---:|---|---|",
    ]
    seconds: dict[str, float] = {}
    for name, entry in manifest.get("reports", {}).items():
        peak = float(entry.get("peak_memory_mb") or float("nan")) * 2**20 / 1e9
        est = float(entry.get("memory_estimate_mb") or float("nan")) * 2**20 / 1e9
        executed = out / (entry.get("executed_notebook") or "missing")
        seconds[name] = float(entry.get("seconds") or 0)
        lines.append(
            f"| report `{name}` | {seconds[name]:,.1f} | {peak:.2f} | "
            f"{est:.2f} | {entry.get('niceness') or 0} | {entry.get('status', '?')} | "
            f"{_slowest_cells(executed)} |"
        )
    status = "OK" if r["returncode"] == 0 else f"exit {r['returncode']}"
    limit = manifest.get("memory_limit_gb")
    lines.append(
        f"| **whole `cxkit report`** ({jobs} jobs, budget {limit} GB) | **{r['seconds']:,.1f}** | "
        f"**{r['peak_gb']:.2f}** (whole tree) | | | {status} | |"
    )
    run_dir = out / "_runs" / str(manifest.get("run_id", ""))
    log = run_dir / "cache.log"
    if log.exists():
        hits = misses = 0
        computed = []
        for line in log.read_text().splitlines():
            _t, _pid, stem, took, what = line.split(maxsplit=4)
            if what == "hit":
                hits += 1
            else:
                misses += 1
                computed.append(f"{stem.rsplit('-', 1)[0]} {took}")
        lines += [
            "",
            f"Run cache: {misses} results computed once ({', '.join(computed)}), "
            f"{hits} reads by other reports.",
        ]
    lines.append("")
    if r["returncode"] != 0:
        lines += ["```", r["output"][-3000:], "```", ""]
    totals = {"seconds": r["seconds"], "peak_gb": r["peak_gb"], "ok": r["returncode"] == 0}
    return lines, {**totals, "reports": seconds}


#: The issue-18 targets on 2 cores: whole run (first, second), peak, churn, lifecycle.
TARGETS = {"first_s": 300.0, "second_s": 240.0, "peak_gb": 5.0, "churn": 70.0, "lifecycle": 60.0}


def _target_lines(cold: dict, warm: dict) -> list[str]:
    def mark(ok: bool) -> str:
        return "met" if ok else "**not met**"

    t = TARGETS
    rows = [
        ("first run", f"≤ {t['first_s']:.0f} s", f"{cold['seconds']:.1f} s",
         cold["seconds"] <= t["first_s"]),
        ("second run", f"≤ {t['second_s']:.0f} s", f"{warm['seconds']:.1f} s",
         warm["seconds"] <= t["second_s"]),
        ("second run peak", f"≤ {t['peak_gb']:.0f} GB", f"{warm['peak_gb']:.2f} GB",
         warm["peak_gb"] <= t["peak_gb"]),
    ]  # fmt: skip
    for name in ("churn", "lifecycle"):
        took = warm["reports"].get(name, float("nan"))
        rows.append((f"{name} report (second run)", f"≤ {t[name]:.0f} s", f"{took:.1f} s",
                     took <= t[name]))  # fmt: skip
    lines = ["| target | goal | measured | |", "|---|---|---:|---|"]
    lines += [f"| {a} | {b} | {c} | {mark(ok)} |" for a, b, c, ok in rows]
    return [*lines, ""]


def e2e(customers: int, jobs: int, baseline: Path | None = None) -> list[str]:
    """Generate the demo if needed, then two report runs: cold (no history) and warm.

    With ``baseline`` (another checkout with its own ``.venv``, e.g. the previous main)
    the same two runs of that checkout are interleaved with these (baseline cold, this
    cold, baseline warm, this warm), so both see the same machine, and their ratio is
    reported.
    """
    import shutil

    data = WORK / f"demo_{customers}"
    out = WORK / f"reports_{customers}"
    lines = [f"## End-to-end `cxkit report` on {customers:,} customers", ""]
    if not (data / "orders.parquet").exists():
        r = run([PY, "-m", "cxkit.cli", "synth", "--customers", str(customers), "--out", str(data)])
        status = "OK" if r["returncode"] == 0 else "FAILED"
        lines += [
            f"Demo data generated (`cxkit synth`) in {r['seconds']:.1f} s, peak "
            f"{r['peak_gb']:.2f} GB: {status}.",
            "",
        ]
    runs: list[tuple[str, Path, Path, str]] = [("this checkout", ROOT, out, PY)]
    if baseline is not None:
        base_py = str(baseline / ".venv" / "bin" / "python")
        rev = subprocess.run(
            ["git", "log", "-1", "--format=%h %s"], cwd=baseline, capture_output=True, text=True
        ).stdout.strip()[:80]
        runs.insert(0, (f"baseline `{rev}`", baseline, WORK / f"baseline_{customers}", base_py))
    for _name, _cwd, folder, _py in runs:
        shutil.rmtree(folder, ignore_errors=True)  # the first run has no measured peaks
    results: dict[tuple[str, str], dict] = {}
    tables: list[str] = []
    for phase, label in (
        ("cold", "First run: no earlier measurements"),
        ("warm", "Second run: estimates from the first run's peaks"),
    ):
        for name, cwd, folder, py in runs:
            part, totals = _report_run(data, folder, jobs, f"{label} ({name})", py=py, cwd=cwd)
            tables += part
            results[(name, phase)] = totals
            print(f"e2e {name} {phase}: {totals['seconds']:.1f} s", flush=True)
    this = "this checkout"
    lines += ["### Targets (issue 18)", ""]
    lines += _target_lines(results[(this, "cold")], results[(this, "warm")])
    if baseline is not None:
        base = runs[0][0]
        lines += [
            f"### Against the {base}, same session", "",
            "| run | baseline (s) | this (s) | speed-up | baseline peak (GB) | this peak (GB) |",
            "|---|---:|---:|---:|---:|---:|",
        ]  # fmt: skip
        for phase in ("cold", "warm"):
            b, t = results[(base, phase)], results[(this, phase)]
            lines.append(
                f"| {phase} | {b['seconds']:.1f} | {t['seconds']:.1f} | "
                f"{b['seconds'] / t['seconds']:.2f}x | {b['peak_gb']:.2f} | {t['peak_gb']:.2f} |"
            )
        lines.append("")
    lines += tables
    lines += [
        "The whole run's peak is the summed RSS of the command and all its children "
        "(workers and kernels), sampled every 0.2 s; a report's kernel peak is its kernel "
        "and children, sampled every 0.2 s by the report worker (manifest `peak_memory_mb`, "
        "MiB). GB = 10^9 bytes, also in `memory_limit_gb`. `nice` is the niceness the "
        "report's kernel ran at (manifest `niceness`): 10 when it started while a report "
        "expected to end after it was running.",
        "",
    ]
    return lines


def domain_benches(only: list[str] | None, size_args: list[str]) -> list[str]:
    lines = ["## Domain benchmarks (each against its baseline, same run)", ""]
    for script in sorted(HERE.glob("bench_*.py")):
        topic = script.stem.removeprefix("bench_")
        if only and topic not in only:
            continue
        r = run([PY, str(script), *size_args], timeout=3600)
        status = "OK" if r["returncode"] == 0 else f"exit {r['returncode']}"
        lines += [
            f"### {topic} (`{script.name}`): {r['seconds']:.1f} s, "
            f"peak {r['peak_gb']:.2f} GB, {status}",
            "",
            "```",
            r["output"].strip()[-6000:],
            "```",
            "",
        ]
        print(f"{script.name}: {status} in {r['seconds']:.1f} s", flush=True)
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--skip-e2e", action="store_true")
    parser.add_argument("--skip-domains", action="store_true", help="only the end-to-end run")
    parser.add_argument("--only", nargs="*", default=None, help="bench topics to run")
    parser.add_argument("--out", default=str(HERE / "results.md"))
    parser.add_argument(
        "--baseline",
        type=Path,
        default=None,
        help="another checkout (with its .venv) to run the end-to-end runs beside, e.g. "
        "the previous main",
    )
    args, extra = parser.parse_known_args()
    WORK.mkdir(exist_ok=True)
    lines = [
        "# Benchmark results",
        "",
        f"Machine: {machine()}.",
        f"Run: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}.",
        "",
    ]
    if not args.skip_e2e:
        part = e2e(args.customers, args.jobs, args.baseline)
        print("\n".join(part), flush=True)  # the targets and run tables, with load averages
        lines += part
    if not args.skip_domains:
        lines += domain_benches(args.only, extra)
    history = HERE / "history.md"
    if history.exists():
        lines += ["", history.read_text().strip(), ""]
    Path(args.out).write_text("\n".join(lines) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
