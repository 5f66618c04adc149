"""The generated demo data the benchmarks share (``benchmarks/_work/demo_<n>_<seed>``)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / "benchmarks" / "_work"


def demo_folder(customers: int, seed: int) -> Path:
    """The demo for this size and seed: generated once in a child process, then reused.

    A child process keeps the generator's memory out of the benchmark's own peak. Other
    benchmarks share the folder, so it is written aside and renamed into place.
    """
    out = WORK / f"demo_{customers}_{seed}"
    if not (out / "_truth.json").exists():
        WORK.mkdir(parents=True, exist_ok=True)
        tmp = WORK / f".demo_{customers}_{seed}.{os.getpid()}"
        t = time.perf_counter()
        code = (
            "import sys; from cxkit import synth; "
            "synth.write_demo(sys.argv[1], customers=int(sys.argv[2]), seed=int(sys.argv[3]))"
        )
        subprocess.run(
            [sys.executable, "-c", code, str(tmp), str(customers), str(seed)], check=True, cwd=ROOT
        )
        print(f"  generated {customers:,} customers in {time.perf_counter() - t:.1f} s -> {out}")
        try:
            os.rename(tmp, out)
        except OSError:  # someone else finished first: use theirs
            shutil.rmtree(tmp, ignore_errors=True)
    return out
