"""The thin command line: ``cxkit synth``, ``cxkit validate``, ``cxkit report``.

Each command gathers options and calls the library by keyword. Exit codes: 0 all good
(a report that is "not available" for the data is not a failure), 1 some report failed,
2 bad input or usage. Bad data never shows a Python traceback.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from cxkit import synth
from cxkit.data import load
from cxkit.errors import CxkitError, DataError, UsageError
from cxkit.report import run_from_cli
from cxkit.scale import SCALE_ENV, ScaleSettings
from cxkit.validate import format_problems, validate

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT = 0, 1, 2


def _cmd_synth(args: argparse.Namespace) -> int:
    synth.write_demo(
        args.out,
        customers=args.customers,
        seed=args.seed,
        start=args.start,
        end=args.end,
        fmt=args.format,
    )
    print(f"wrote demo data for {args.customers:,} customers to {args.out}")
    return EXIT_OK


def _cmd_validate(args: argparse.Namespace) -> int:
    data = load(args.source)
    problems = validate(data, as_of=args.as_of)
    print(format_problems(problems, source=str(args.source)))
    return EXIT_BAD_INPUT if any(p.severity == "error" for p in problems) else EXIT_OK


def _cmd_report(args: argparse.Namespace) -> int:
    if getattr(args, "scale", False) and not os.environ.get(SCALE_ENV):
        # the kernels inherit it; a 'scale:' key in the reports file overrides the limits
        os.environ[SCALE_ENV] = ScaleSettings(mode="scale").to_json()
    return run_from_cli(args)


def build_parser() -> argparse.ArgumentParser:
    """Build the argument parser of the ``cxkit`` command (exposed for tests and ``--help``).

    Returns
    -------
    argparse.ArgumentParser
        The parser with the ``synth``, ``validate`` and ``report`` sub-commands; each
        sets ``func`` to the function that runs it.
    """
    parser = argparse.ArgumentParser(
        prog="cxkit",
        description="Customer-experience analytics: demo data, validation and HTML reports.",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("synth", help="generate demo data with planted truth")
    p.add_argument("--customers", type=int, default=20_000, help="number of customers")
    p.add_argument("--seed", type=int, default=42, help="random seed (same seed, same data)")
    p.add_argument("--start", default="2023-01-01", help="first day of activity (ISO date)")
    p.add_argument("--end", default="2024-12-31", help="last day of activity (ISO date)")
    p.add_argument("--format", choices=["parquet", "csv"], default="parquet")
    p.add_argument("--out", default="data/demo", help="output folder")
    p.set_defaults(func=_cmd_synth)

    p = sub.add_parser("validate", help="check a dataset against the data contract")
    p.add_argument("source", help="a folder of Parquet/CSV files or a connection URL")
    p.add_argument("--as-of", default=None, help="the date the analysis stands at (ISO)")
    p.set_defaults(func=_cmd_validate)

    p = sub.add_parser("report", help="run the notebooks into offline HTML reports")
    p.add_argument("--config", default="reports.yml", help="the reports file")
    p.add_argument("--data", default=None, help="override the data source")
    p.add_argument("--as-of", default=None, help="override as_of (ISO date)")
    p.add_argument("--out", default=None, help="override the output folder")
    p.add_argument("--only", action="append", default=None, help="run only these reports")
    p.add_argument("--jobs", type=int, default=None, help="notebooks run at once")
    p.add_argument(
        "--memory-limit-gb",
        type=float,
        default=None,
        help="memory budget of the run: a report starts only when its estimated peak fits",
    )
    p.add_argument(
        "--clear-ids",
        action="store_true",
        help="publish customer IDs as they are (default: keyed pseudonyms; "
        "same as 'publish: {customer_ids: clear}' in the reports file)",
    )
    p.add_argument(
        "--self-contained",
        action="store_true",
        help="inline plotly.js in every page: one self-contained HTML file per report "
        "(default: one shared _assets/plotly-<version>.min.js per output folder; "
        "same as 'publish: {plotly: inline}' in the reports file)",
    )
    p.add_argument(
        "--scale",
        action="store_true",
        help="scale mode with the default limits (per-customer work stays in the engine; "
        "same as 'scale: {}' in the reports file, whose limits win when it has them)",
    )
    p.set_defaults(func=_cmd_report)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``cxkit`` command.

    Parameters
    ----------
    argv
        The arguments after ``cxkit``; ``None`` reads ``sys.argv``.

    Returns
    -------
    int
        The exit code: 0 all good, 1 some report failed, 2 bad input or usage (the
        message, without a traceback, goes to stderr), 130 interrupted.
    """
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse already printed the usage message
        return EXIT_BAD_INPUT if exc.code else EXIT_OK
    try:
        return int(args.func(args))
    except (DataError, UsageError, CxkitError) as err:
        print(f"cxkit {args.command}: {err}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
