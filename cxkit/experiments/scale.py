"""The experiment readout in scale mode: every arm summed in the engine.

A readout needs, per arm and metric, only sufficient statistics: the count, the sums of
the outcome and its square, and for CUPED the sums of the covariates, their
cross-products and their products with the outcome (:class:`~cxkit.experiments.ArmStats`).
:func:`analyze_scale` computes them in the engine from the outcome expression of
:func:`~cxkit.experiments.outcomes.outcomes_table` (the one definition of the outcomes)
in one aggregation, and the sequential table from sums per look, so no per-customer row
leaves the engine however many customers were assigned. The readout itself
(:func:`~cxkit.experiments.analysis.read_out`) is the memory mode's: the same sizes,
estimates and intervals, to floating-point rounding.
"""

from __future__ import annotations

import ibis
import ibis.expr.types as ir
import numpy as np
import pandas as pd

from cxkit import scale as _scale
from cxkit.data import CXData
from cxkit.errors import NotAvailableError
from cxkit.experiments.analysis import (
    METRICS,
    ExperimentResult,
    ReadoutOptions,
    look_dates,
    read_out,
)
from cxkit.experiments.estimate import ArmStats
from cxkit.experiments.outcomes import outcomes_table
from cxkit.scale import ScaleSettings

__all__ = ["analyze_scale"]

#: Relative size below which a covariate's centred sum of squares is rounding noise.
_TOL = 1e-9


def _covariate_exprs(t: ir.Table, metric: str) -> list[ir.FloatingValue]:
    """Return the covariates of ``metric``, made as in memory mode (``_covariates``)."""
    out: list[ir.FloatingValue] = []
    for c in METRICS[metric].covariates:
        v = t[c].cast("float64")
        out.append(v.fill_null(0.0))
        out.append(v.isnull().ifelse(1, 0).cast("float64"))
    return out


class _EngineArms:
    """The arms of a readout from sums in the engine (scale mode)."""

    def __init__(
        self, outcomes: ir.Table, options: ReadoutOptions, *, settings: ScaleSettings
    ) -> None:
        self.t = outcomes
        self.metrics = list(options.metrics)
        self.settings = settings
        end, cuped = options.end, options.cuped
        t = outcomes
        end_lit = ibis.literal(end.to_pydatetime())
        aggs: dict[str, ir.Value] = {
            "customers": t.count(),
            "first_assigned": t.assigned_at.min(),
            "last_assigned": t.assigned_at.max(),
            "repeated": (t.n_assignments > 1).ifelse(1, 0).sum().cast("int64"),
        }
        self.p: dict[str, int] = {}
        for m in self.metrics:
            col = METRICS[m].column
            y = t[col].cast("float64")
            has = y.notnull()
            aggs[f"{m}__n"] = y.count()
            aggs[f"{m}__sy"] = y.sum().cast("float64")
            aggs[f"{m}__syy"] = (y * y).sum().cast("float64")
            aggs[f"{m}__left"] = (
                (y.isnull() & (t[f"done_at_{col}"] > end_lit)).ifelse(1, 0).sum().cast("int64")
            )
            aggs[f"{m}__first"] = t[f"done_at_{col}"].min(where=has)
            aggs[f"{m}__last"] = t[f"done_at_{col}"].max(where=has)
            xs = _covariate_exprs(t, m) if cuped and METRICS[m].covariates else []
            self.p[m] = len(xs)
            for i, xi in enumerate(xs):
                aggs[f"{m}__sx{i}"] = xi.sum(where=has).cast("float64")
                aggs[f"{m}__sxy{i}"] = (xi * y).sum(where=has).cast("float64")
                for j in range(i, len(xs)):
                    aggs[f"{m}__sxx{i}_{j}"] = (xi * xs[j]).sum(where=has).cast("float64")
        # one row per experiment and variant: bounded by the design, not by customers
        grouped = t.group_by(["experiment", "variant"]).aggregate(**aggs)
        self.sums = _scale.bounded_to_pandas(
            grouped, what="experiment arms", settings=settings
        ).sort_values(["experiment", "variant"], kind="stable")
        self.sums["experiment"] = self.sums["experiment"].astype(str)
        self.sums["variant"] = self.sums["variant"].astype(str)
        for c in ("first_assigned", "last_assigned"):
            self.sums[c] = pd.to_datetime(self.sums[c])
        self._row = {(r["experiment"], r["variant"]): r for _, r in self.sums.iterrows()}
        # sums leave rounding noise where a covariate is constant: no variation below this
        self._tol = {
            m: _TOL
            * max(
                [1.0]
                + [
                    abs(float(v or 0.0))
                    for i in range(self.p[m])
                    for v in self.sums[f"{m}__sxx{i}_{i}"]
                ]
            )
            for m in self.metrics
        }

    def tol(self, metric: str) -> float:
        return self._tol[metric]

    def experiments(self) -> list[str]:
        return sorted(self.sums["experiment"].unique())

    def assignment(self, name: str) -> pd.DataFrame:
        f = self.sums[self.sums["experiment"] == name]
        cols = ["variant", "customers", "first_assigned", "last_assigned", "repeated"]
        out = f[cols].reset_index(drop=True)
        out["repeated"] = out["repeated"].fillna(0).astype("int64")
        return out

    def stats(self, name: str, variant: str, metric: str, *, cuped: bool) -> ArmStats:
        r = self._row[(name, variant)]
        n = int(r[f"{metric}__n"])
        sy, syy = float(r[f"{metric}__sy"] or 0.0), float(r[f"{metric}__syy"] or 0.0)
        p = self.p[metric] if cuped else 0
        if p == 0:
            return ArmStats.from_sums(n, sy, syy)
        sx = np.array([float(r[f"{metric}__sx{i}"] or 0.0) for i in range(p)])
        sxy = np.array([float(r[f"{metric}__sxy{i}"] or 0.0) for i in range(p)])
        sxx = np.zeros((p, p))
        for i in range(p):
            for j in range(i, p):
                sxx[i, j] = sxx[j, i] = float(r[f"{metric}__sxx{i}_{j}"] or 0.0)
        return ArmStats.from_sums(n, sy, syy, sx, sxx, sxy)

    def left_out(self, name: str, variant: str, metric: str, end: pd.Timestamp) -> int:
        return int(self._row[(name, variant)][f"{metric}__left"] or 0)

    def looks(
        self, name: str, base: str, variant: str, metric: str, *, end: pd.Timestamp, freq: str
    ) -> list[tuple[pd.Timestamp, ArmStats, ArmStats]]:
        rows = [self._row[(name, v)] for v in (base, variant)]
        done = pd.to_datetime(
            pd.Series([r[f"{metric}__{k}"] for r in rows for k in ("first", "last")])
        ).dropna()
        dates = look_dates(done, end=end, freq=freq)
        if len(dates) == 0:
            return []
        t = self.t
        col = METRICS[metric].column
        y = t[col].cast("float64")
        ends = t[f"done_at_{col}"]
        # the first look at or after each customer's window end: the look that first sees them
        bucket = ibis.cases(
            *((ends <= ibis.literal(d.to_pydatetime()), k) for k, d in enumerate(dates)),
            else_=ibis.null("int64"),
        )
        sub = t.filter((t.experiment == name) & t.variant.isin([base, variant]) & y.notnull())
        sub = sub.mutate(_look=bucket, _y=y)
        per = sub.group_by(["variant", "_look"]).aggregate(
            n=sub.count(),
            sy=sub._y.sum().cast("float64"),
            syy=(sub._y * sub._y).sum().cast("float64"),
        )
        per = _scale.bounded_to_pandas(per, what="sequential looks", settings=self.settings)
        per = per.dropna(subset=["_look"])
        out = []
        cum = {
            v: per[per["variant"] == v]
            .set_index("_look")[["n", "sy", "syy"]]
            .reindex(range(len(dates)), fill_value=0)
            .astype(float)
            .cumsum()
            for v in (base, variant)
        }
        for k, look in enumerate(dates):
            c, tr = (cum[v].iloc[k] for v in (base, variant))
            out.append(
                (
                    look,
                    ArmStats.from_sums(c["n"], c["sy"], c["syy"]),
                    ArmStats.from_sums(tr["n"], tr["sy"], tr["syy"]),
                )
            )
        return out


def analyze_scale(
    data: CXData, *, options: ReadoutOptions, settings: ScaleSettings | None = None
) -> ExperimentResult:
    """Run :func:`cxkit.experiments.analyze` in scale mode (see the module docstring).

    Called by ``analyze(..., mode="scale")`` (through :func:`cxkit.scale.dispatch`)
    with the options it has checked and resolved.

    Parameters
    ----------
    data
        The data.
    options
        :func:`cxkit.experiments.analyze`'s options, resolved
        (:class:`~cxkit.experiments.analysis.ReadoutOptions`).
    settings
        The limits (default :func:`cxkit.scale.current_settings`): only per-arm and
        per-look sums are collected, each through :func:`cxkit.scale.bounded_to_pandas`.

    Returns
    -------
    ExperimentResult
        As in memory mode, without :attr:`~ExperimentResult.outcomes` (they stay in the
        engine); a note says the readout was summed in the engine.
    """
    settings = settings or _scale.current_settings()
    try:
        expr, info = outcomes_table(data, **options.outcome_options())
    except NotAvailableError as err:
        return options.unavailable(str(err))
    if options.experiments is not None:
        expr = expr.filter(expr.experiment.isin(list(options.experiments)))
    arms = _EngineArms(expr, options, settings=settings)
    if arms.sums.empty:
        return options.no_assignments()
    result = read_out(arms, info, options)  # type: ignore[arg-type]
    n = int(arms.sums["customers"].sum())
    result.notes.append(
        f"Scale mode: the readout of {n:,} assigned customers was summed in the engine "
        "(per arm and look); no per-customer outcome was collected."
    )
    return result


_scale.register("experiments", analyze_scale)
