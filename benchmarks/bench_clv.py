"""Benchmark: BG/NBD fit time and log-likelihood, cxkit vs plain scipy vs lifetimes.

Sizes: the CDNOW sample (2,357 customers, weeks, calibration to 1997-09-30) and
customers simulated from the BG/NBD process at whole-day resolution (r=0.5, α=5 per week,
a=0.8, b=2.5; first purchases spread over 39 weeks, as in CDNOW).

Per size, in the same run:

* **cxkit** — ``clv.BetaGeo().fit(summary)``: summary to parameters, including the
  compression to distinct (x, t_x, T) rows, the optimiser, the Newton polish and the
  Hessian for standard errors;
* **scipy Nelder-Mead** — the same likelihood, vectorised over every customer (no
  compression, no gradient), ``scipy.optimize.minimize(method="Nelder-Mead")`` on
  log-parameters from (1, 1, 1, 1) with default tolerances: what a straightforward
  implementation does;
* **lifetimes 0.11.3** — ``BetaGeoFitter().fit`` in a separate throwaway venv (never a
  dependency of cxkit); skipped, with a note, when that venv cannot be made or imported.

The log-likelihood of every result is evaluated with the same function (cxkit's), so
the column compares like with like. Peak memory is this process's max RSS.

Usage::

    python benchmarks/bench_clv.py                   # cdnow, 100k and 1m (NM at 1m: minutes)
    python benchmarks/bench_clv.py --sizes cdnow,100k
    python benchmarks/bench_clv.py --small           # cdnow and 10k, no lifetimes
    python benchmarks/bench_clv.py --lifetimes-python /tmp/lifetimes-venv/bin/python
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import optimize, special

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cxkit import clv, datasets

TRUE = {"r": 0.5, "alpha": 5.0, "a": 0.8, "b": 2.5}
DEFAULT_LIFETIMES_VENV = Path("/tmp/lifetimes-venv")

LIFETIMES_SCRIPT = """
import json, sys, time, warnings
warnings.simplefilter("ignore")
import pandas as pd
from lifetimes import BetaGeoFitter
s = pd.read_csv(sys.argv[1])
t = time.perf_counter()
bgf = BetaGeoFitter().fit(s["frequency"], s["recency"], s["T"])
seconds = time.perf_counter() - t
print(json.dumps({"seconds": seconds, "params": [float(bgf.params_[k]) for k in ("r", "alpha", "a", "b")]}))
"""


def summary_for(size: str, seed: int = 0) -> pd.DataFrame:
    if size == "cdnow":
        return clv.rfm_summary(datasets.cdnow(), observation_end="1997-09-30", time_unit="W")
    n = {"10k": 10_000, "100k": 100_000, "1m": 1_000_000}[size]
    rng = np.random.default_rng(seed)
    T = rng.integers(0, 274, n) / 7  # first purchase 0-273 days before the end, in weeks
    s = clv.simulate_bgnbd(n, **TRUE, T=T, random_state=rng, resolution=1 / 7)
    s = s[["frequency", "recency", "T"]]
    s.attrs["time_unit"] = "W"
    return s


def loglik(params: np.ndarray, s: pd.DataFrame) -> float:
    """Total BG/NBD log-likelihood over every customer (the plain, per-row version)."""
    r, alpha, a, b = params
    x = s["frequency"].to_numpy(float)
    tx = s["recency"].to_numpy(float)
    T = s["T"].to_numpy(float)
    a1 = special.gammaln(r + x) - special.gammaln(r) + r * np.log(alpha)
    a2 = special.betaln(a, b + x) - special.betaln(a, b)
    a3 = -(r + x) * np.log(alpha + T)
    with np.errstate(divide="ignore", invalid="ignore"):
        a4 = np.where(
            x > 0,
            np.log(a) - np.log(np.where(x > 0, b + x - 1, 1)) - (r + x) * np.log(alpha + tx),
            -np.inf,
        )
    return float(np.sum(a1 + a2 + np.logaddexp(a3, a4)))


def fit_cxkit(s: pd.DataFrame) -> dict:
    start = time.perf_counter()
    bg = clv.BetaGeo().fit(s)
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "params": bg.params_.to_numpy(), "distinct": bg.n_distinct_}


def fit_nelder_mead(s: pd.DataFrame) -> dict:
    def nll(theta: np.ndarray) -> float:
        value = -loglik(np.exp(theta), s)
        return value if np.isfinite(value) else 1e300

    start = time.perf_counter()
    res = optimize.minimize(nll, np.zeros(4), method="Nelder-Mead")
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "params": np.exp(res.x), "evals": int(res.nfev)}


def fit_lifetimes(s: pd.DataFrame, python: Path, timeout: float) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        csv = Path(tmp) / "summary.csv"
        s[["frequency", "recency", "T"]].to_csv(csv, index=False)
        script = Path(tmp) / "fit.py"
        script.write_text(LIFETIMES_SCRIPT)
        try:
            out = subprocess.run(
                [str(python), str(script), str(csv)],
                capture_output=True,
                text=True,
                timeout=timeout,
                check=False,
            )
        except subprocess.TimeoutExpired:
            return {"note": f"timed out after {timeout:.0f} s"}
    if out.returncode != 0:
        last = (out.stderr.strip().splitlines() or ["no output"])[-1]
        return {"note": f"failed: {last[:120]}"}
    result = json.loads(out.stdout.strip().splitlines()[-1])
    result["params"] = np.asarray(result["params"])
    return result


def lifetimes_python(arg: str | None) -> tuple[Path | None, str]:
    """Find (or make) the throwaway lifetimes venv; never touches the project's .venv."""
    python = Path(arg) if arg else DEFAULT_LIFETIMES_VENV / "bin" / "python"
    if not python.exists() and arg is None:
        try:
            subprocess.run([sys.executable, "-m", "venv", str(DEFAULT_LIFETIMES_VENV)], check=True)
            subprocess.run(
                [str(python), "-m", "pip", "install", "--quiet", "lifetimes"],
                check=True,
                timeout=600,
            )
        except (subprocess.SubprocessError, OSError) as err:
            return None, f"lifetimes could not be installed in a side venv ({err})"
    if not python.exists():
        return None, f"no python at {python}"
    probe = subprocess.run(
        [str(python), "-c", "import lifetimes; print(lifetimes.__version__)"],
        capture_output=True,
        text=True,
        check=False,
    )
    if probe.returncode != 0:
        last = (probe.stderr.strip().splitlines() or ["?"])[-1]
        return None, f"lifetimes does not import in {python.parent.parent}: {last[:120]}"
    return python, f"lifetimes {probe.stdout.strip()} ({python.parent.parent})"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="cdnow,100k,1m", help="comma list of cdnow,10k,100k,1m")
    parser.add_argument("--small", action="store_true", help="cdnow and 10k, no lifetimes")
    parser.add_argument("--no-lifetimes", action="store_true")
    parser.add_argument("--no-nelder-mead", action="store_true")
    parser.add_argument("--lifetimes-python", default=None)
    parser.add_argument("--lifetimes-timeout", type=float, default=900.0)
    args, _ = parser.parse_known_args(argv)  # run_all.py passes its extra options to all
    sizes = ["cdnow", "10k"] if args.small else [s.strip().lower() for s in args.sizes.split(",")]

    python, note = (None, "skipped (--no-lifetimes)")
    if not (args.small or args.no_lifetimes):
        python, note = lifetimes_python(args.lifetimes_python)
    print(f"lifetimes: {note}")

    # One warm-up fit: the first call pays ~0.1 s of one-off imports and library scans.
    clv.BetaGeo().fit(clv.simulate_bgnbd(500, **TRUE, T=30, random_state=1))
    rows = []
    for size in sizes:
        t0 = time.perf_counter()
        s = summary_for(size)
        build = time.perf_counter() - t0
        print(f"\n{size}: {len(s):,} customers (summary built in {build:.2f} s)", flush=True)
        runs = {"cxkit": fit_cxkit(s)}
        if not args.no_nelder_mead:
            runs["scipy Nelder-Mead"] = fit_nelder_mead(s)
        if python is not None:
            runs["lifetimes"] = fit_lifetimes(s, python, args.lifetimes_timeout)
        for method, res in runs.items():
            row = {"size": size, "customers": len(s), "method": method}
            if "params" in res:
                row.update(
                    seconds=res["seconds"],
                    log_likelihood=loglik(res["params"], s),
                    **dict(zip(("r", "alpha", "a", "b"), res["params"], strict=True)),
                )
                extra = []
                if "distinct" in res:
                    extra.append(f"{res['distinct']:,} distinct rows")
                if "evals" in res:
                    extra.append(f"{res['evals']} evaluations")
                row["note"] = ", ".join(extra)
            else:
                row["note"] = res.get("note", "")
            rows.append(row)
            print(
                f"  {method:18s} "
                + (
                    f"{row['seconds']:8.2f} s  LL {row['log_likelihood']:,.2f}  "
                    f"r={row['r']:.4f} alpha={row['alpha']:.4f} a={row['a']:.4f} b={row['b']:.4f}"
                    if "seconds" in row
                    else ""
                )
                + (f"  ({row['note']})" if row.get("note") else ""),
                flush=True,
            )
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    table = pd.DataFrame(rows)
    print("\n| size | customers | method | fit s | log-likelihood | r | alpha | a | b | note |")
    print("|---|---:|---|---:|---:|---:|---:|---:|---:|---|")
    for _, r in table.iterrows():
        if pd.notna(r.get("seconds")):
            print(
                f"| {r['size']} | {r['customers']:,} | {r['method']} | {r['seconds']:.2f} | "
                f"{r['log_likelihood']:,.2f} | {r['r']:.4f} | {r['alpha']:.4f} | {r['a']:.4f} | "
                f"{r['b']:.4f} | {r['note']} |"
            )
        else:
            print(
                f"| {r['size']} | {r['customers']:,} | {r['method']} | – | – | | | | | {r['note']} |"
            )
    print(f"\npeak memory (max RSS of this process): {peak_mb:,.0f} MB; lifetimes: {note}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
