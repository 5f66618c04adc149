"""The experiment readout in one call: :func:`analyze` -> :class:`ExperimentResult`.

For every experiment in the ``assignments`` table and every variant against the control:
how many customers each arm has and whether that matches the planned split (the
sample-ratio-mismatch check), and the effect on conversion, churn, spend and NPS, each
with its 95% interval, the CUPED-adjusted interval, an always-valid (sequential)
interval and a Holm-adjusted p-value across the metrics. :meth:`ExperimentResult.findings`
turns them into the sentences the report shows.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np
import pandas as pd

from cxkit.data import CXData, resolve_as_of
from cxkit.display import format_money, format_p
from cxkit.errors import NotAvailableError, UsageError
from cxkit.experiments.estimate import SRM_ALPHA, ArmStats, compare_stats, srm_test
from cxkit.experiments.outcomes import customer_outcomes
from cxkit.findings import Finding, finding_from_rate
from cxkit.result import AsOf, Result
from cxkit.scale import dispatch
from cxkit.stats import MIN_N, holm, p_text

__all__ = ["METRICS", "ExperimentResult", "ReadoutOptions", "analyze"]


@dataclass(frozen=True)
class _Metric:
    column: str  # in customer_outcomes
    kind: str  # compare_arms kind
    covariates: tuple[str, ...]  # pre-assignment columns for CUPED
    higher_is_better: bool
    window: str  # which window option sets its days
    label: str  # with {days}


#: The metrics of a readout, in report order.
METRICS: dict[str, _Metric] = {
    "conversion": _Metric(
        "converted", "proportion", ("pre_orders",), True, "conversion_days",
        "conversion (an order within {days} days)",
    ),
    "churn": _Metric(
        "churned", "proportion", ("pre_orders",), False, "horizon_days",
        "churn (no order within {days} days)",
    ),
    "spend": _Metric(
        "spend", "mean", ("pre_spend",), True, "horizon_days",
        "spend per customer (orders within {days} days)",
    ),
    "nps": _Metric(
        "nps", "nps", ("pre_nps",), True, "nps_days", "NPS (first answer within {days} days)",
    ),
}  # fmt: skip
_UNITS = {"proportion": "percentage points", "mean": "currency", "nps": "points"}
_PEEK_FREQ = {"week": "W", "month": "ME"}  # weeks end on Sunday, months on their last day


def _fmt_level(kind: str, v: float, *, money: bool = True) -> str:
    if kind == "proportion":
        return f"{100 * v:.1f}%"
    if kind == "nps":
        return f"{v:+.0f}"
    return format_money(v) if money else f"{v:,.2f}"


def _fmt_diff(kind: str, v: float, *, signed: bool = True, money: bool = True) -> str:
    sign = "+" if signed else ""
    if kind == "proportion":
        return f"{100 * v:{sign}.1f} pp"
    if kind == "nps":
        return f"{v:{sign}.1f} points"
    if money:  # spend, in the report's currency (display.currency)
        return ("+" if signed and v > 0 else "") + format_money(v)
    return f"{v:{sign},.2f}"


@dataclass(kw_only=True)
class ExperimentResult(Result):
    """What :func:`analyze` found: the readout's tables and the findings built from them.

    Every table is ``None`` when the data has no usable ``assignments`` table
    (:attr:`not_available` then says why).

    Attributes
    ----------
    level
        The confidence level of every interval (0.95).
    assignments
        Per experiment and variant: ``customers``, ``share``, ``planned_share``,
        ``first_assigned``, ``last_assigned``, ``repeated`` (customers assigned more than
        once; only their first assignment counts).
    srm
        Per experiment: the sample-ratio-mismatch check (``n, chi2, df, p_value,
        mismatch, planned, sentence``).
    readout
        Per experiment, variant and metric: ``n_control, n_treatment, control,
        treatment`` (the arms' values: shares, currency or NPS points), ``diff, ci_low,
        ci_high, p_value`` (treatment − control), ``cuped_diff, cuped_low, cuped_high,
        cuped_p, variance_reduction``, ``seq_low, seq_high`` (always-valid interval of
        ``diff``), ``estimate`` (``"cuped"`` or ``"raw"``: which one the verdict uses),
        ``p_holm`` (Holm over the experiment's metrics and variants), ``significant``,
        ``small_n``, ``verdict``.
    sequential
        The always-valid interval look by look (weekly): per experiment, variant,
        metric and ``look`` date, the customers whose window had ended by then
        (``n``), ``diff``, the fixed ``ci_low, ci_high`` and ``seq_low, seq_high``.
    outcomes
        :func:`cxkit.experiments.customer_outcomes`, one row per assigned customer.
    notes
        Plain sentences on what was left out or assumed.
    """

    domain: ClassVar[str] = "experiments"
    level: float = 0.95
    assignments: pd.DataFrame | None = None
    srm: pd.DataFrame | None = None
    readout: pd.DataFrame | None = None
    sequential: pd.DataFrame | None = None
    outcomes: pd.DataFrame | None = None
    notes: list[str] = field(default_factory=list)

    def findings(self) -> list[Finding]:
        """Return the readout's findings: the split check, then each metric's effect.

        Returns
        -------
        list of Finding
            The SRM check per experiment (most important when it fails) and one finding
            per variant and metric with its interval, n and Holm-adjusted p-value.
        """
        out: list[Finding] = []
        if self.srm is not None:
            for _, r in self.srm.iterrows():
                out.append(
                    Finding(
                        domain=self.domain,
                        metric="sample_ratio",
                        value=float(r["p_value"]),
                        unit="p-value",
                        sentence=str(r["sentence"]),
                        n=int(r["n"]),
                        comparison=f"vs the planned split ({r['planned']})",
                        p_value=float(r["p_value"]),
                        importance=9.5 if r["mismatch"] else 3.0,
                        extra={"experiment": r["experiment"], "mismatch": bool(r["mismatch"])},
                    )
                )
        if self.readout is not None:
            for _, r in self.readout.iterrows():
                out.append(self._effect_finding(r))
        return out

    def headline(self) -> str:
        """Return the report's one-line headline.

        Returns
        -------
        str
            A sample ratio mismatch first; else what each variant changed (metrics
            significant after the Holm adjustment), or that nothing moved detectably.
        """
        if self.readout is None or self.srm is None:
            return (self.not_available or ["No experiment to read out."])[0]
        bad = self.srm[self.srm["mismatch"]]
        if len(bad):
            return str(bad["sentence"].iloc[0]).split(". ")[0] + "."
        parts = []
        for (name, variant), block in self.readout.groupby(["experiment", "variant"], sort=False):
            moved = []
            for _, r in block[block["significant"] & ~block["small_n"]].iterrows():
                kind = METRICS[r["metric"]].kind
                diff = r["cuped_diff"] if r["estimate"] == "cuped" else r["diff"]
                word = "raises" if diff > 0 else "lowers"
                moved.append(f"{word} {r['metric']} by {_fmt_diff(kind, abs(diff), signed=False)}")
            if moved:
                text = ", ".join(moved[:-1]) + (" and " if len(moved) > 1 else "") + moved[-1]
                parts.append(f"In {name}, {variant} {text}")
            else:
                parts.append(f"In {name}, {variant} has no detectable effect on any metric")
        return "; ".join(parts) + " (Holm-adjusted, 95% intervals)."

    def readout_table(self) -> pd.DataFrame | None:
        """Return the readout as the report shows it: one row per metric, in words.

        Returns
        -------
        pandas.DataFrame or None
            ``experiment, variant, metric, n (control / treatment), control, treatment,
            difference (95% CI), with CUPED (95% CI), variance reduction, always-valid
            interval, p (Holm), verdict``; ``None`` without a readout.
        """
        if self.readout is None:
            return None
        rows = []
        for _, r in self.readout.iterrows():
            kind = METRICS[r["metric"]].kind

            def fmt(v: float, kind: str = kind) -> str:
                return _fmt_diff(kind, v, money=True)

            def ci(diff: float, low: float, high: float) -> str:
                return "–" if pd.isna(diff) else f"{fmt(diff)} ({fmt(low)} to {fmt(high)})"

            rows.append(
                {
                    "experiment": r["experiment"],
                    "variant": r["variant"],
                    "metric": r["label"],
                    "n (control / treatment)": f"{int(r['n_control']):,} / {int(r['n_treatment']):,}",
                    "control": _fmt_level(kind, r["control"], money=True),
                    "treatment": _fmt_level(kind, r["treatment"], money=True),
                    "difference (95% CI)": ci(r["diff"], r["ci_low"], r["ci_high"]),
                    "with CUPED (95% CI)": ci(r["cuped_diff"], r["cuped_low"], r["cuped_high"]),
                    "variance reduction": "–"
                    if pd.isna(r["variance_reduction"])
                    else f"{100 * r['variance_reduction']:.0f}%",
                    "always-valid interval": f"{fmt(r['seq_low'])} to {fmt(r['seq_high'])}",
                    "p (Holm)": format_p(r["p_holm"]),
                    "verdict": r["verdict"],
                }
            )
        return pd.DataFrame(rows)

    def _effect_finding(self, r: pd.Series) -> Finding:
        kind = METRICS[r["metric"]].kind
        use = "cuped_" if r["estimate"] == "cuped" else ""
        diff = r[f"{use}diff"]
        low = r[f"{use}low" if use else "ci_low"]
        high = r[f"{use}high" if use else "ci_high"]
        pct = round(100 * self.level)
        how = " with CUPED" if use else ""
        ci = (
            f"{pct}% CI {_fmt_diff(kind, low)} to {_fmt_diff(kind, high)}, "
            f"n={int(r['n_control'] + r['n_treatment']):,}; Holm-adjusted {p_text(r['p_holm'])}"
        )
        arms = f"{_fmt_level(kind, r['treatment'])} vs {_fmt_level(kind, r['control'])}"
        if use:
            arms += " before adjustment"
        who = f"In {r['experiment']}, {r['variant']}"
        if r["small_n"]:
            s = (
                f"{who} vs {r['control_variant']} on {r['label']}: too few customers to tell "
                f"({int(r['n_treatment']):,} and {int(r['n_control']):,}; need {MIN_N} each)."
            )
        elif r["significant"]:
            word = "raises" if diff > 0 else "lowers"
            s = (
                f"{who} {word} {r['label']} by {_fmt_diff(kind, abs(diff), signed=False)}{how} "
                f"({arms}; {ci})."
            )
        else:
            s = (
                f"{who} has no detectable effect on {r['label']}: {_fmt_diff(kind, diff)}{how} "
                f"({arms}; {ci})."
            )
        scale = 100.0 if kind == "proportion" else 1.0
        return finding_from_rate(
            {
                "value": diff,
                "ci_low": low,
                "ci_high": high,
                "n": int(r["n_control"] + r["n_treatment"]),
                "small_n": bool(r["small_n"]),
            },
            domain=self.domain,
            metric=f"effect_{r['metric']}",
            sentence=s,
            unit=_UNITS[kind],
            importance=8.0 if r["significant"] and not r["small_n"] else 5.0,
            scale=scale,
            comparison=f"{r['variant']} vs {r['control_variant']}",
            p_value=float(r["p_holm"]),
            extra={
                "experiment": r["experiment"],
                "variant": r["variant"],
                "verdict": r["verdict"],
                "variance_reduction": r["variance_reduction"],
            },
        )


def _planned_for(
    variants: Sequence[str], planned: Mapping[str, float] | None
) -> Mapping[str, float] | None:
    if planned is None:
        return None
    missing = [v for v in variants if v not in planned]
    if missing:
        raise UsageError(
            f"planned gives no share for variant(s) {missing}; it gives {dict(planned)}"
        )
    return {v: float(planned[v]) for v in variants}


def _split_text(shares: Mapping[str, float]) -> str:
    return "/".join(f"{100 * s:.0f}" for s in shares.values())


def _srm_row(
    experiment: str, counts: dict[str, int], planned: Mapping[str, float] | None, alpha: float
) -> dict:
    r = srm_test(counts, planned, alpha=alpha)
    split = _split_text(r["planned"])  # type: ignore[arg-type]
    seen = " and ".join(f"{n:,} {v}" for v, n in counts.items())
    if r["mismatch"]:
        sentence = (
            f"Sample ratio mismatch in {experiment}: {seen} where a {split} split was "
            f"planned (chi-square {p_text(r['p_value'])}). The assignment or its logging is "
            "broken, so the effects below cannot be trusted until it is found and fixed."
        )
    else:
        sentence = (
            f"The {experiment} split matches the plan: {seen} for a planned {split} "
            f"(chi-square p = {r['p_value']:.2f}; a mismatch would be p < {alpha:g})."
        )
    return {
        "experiment": experiment,
        "n": r["n"],
        "chi2": r["chi2"],
        "df": r["df"],
        "p_value": r["p_value"],
        "mismatch": r["mismatch"],
        "planned": split,
        "sentence": sentence,
    }


def _covariates(frame: pd.DataFrame, spec: _Metric) -> np.ndarray:
    """Return the metric's CUPED covariates, one row per customer.

    Each pre-assignment column, 0 where missing, and beside it an indicator of the
    missing ones (all 0, so without weight, when none is missing).
    """
    cols = []
    for c in spec.covariates:
        v = frame[c].to_numpy(dtype=float)
        cols.append(np.nan_to_num(v))
        cols.append(np.isnan(v).astype(float))
    return np.column_stack(cols)


class _FrameArms:
    """The arms of a readout from the per-customer outcomes (memory mode)."""

    def tol(self, metric: str) -> float:
        """CUPED drops covariates whose centred sum of squares is at most this (exact: 0)."""
        return 0.0

    def __init__(self, outcomes: pd.DataFrame, windows: Mapping[str, int]) -> None:
        self.outcomes = outcomes
        self.windows = windows
        self._by = {k: g for k, g in outcomes.groupby(["experiment", "variant"], sort=True)}

    def experiments(self) -> list[str]:
        return sorted(self.outcomes["experiment"].unique())

    def assignment(self, name: str) -> pd.DataFrame:
        f = self.outcomes[self.outcomes["experiment"] == name]
        g = f.groupby("variant", sort=True)
        return pd.DataFrame(
            {
                "customers": g.size(),
                "first_assigned": g["assigned_at"].min(),
                "last_assigned": g["assigned_at"].max(),
                "repeated": g["n_assignments"].apply(lambda s: int((s > 1).sum())),
            }
        ).reset_index()

    def _arm(self, name: str, variant: str, metric: str) -> pd.DataFrame:
        arm = self._by[(name, variant)]
        return arm[arm[METRICS[metric].column].notna()]

    def stats(self, name: str, variant: str, metric: str, *, cuped: bool) -> ArmStats:
        spec = METRICS[metric]
        arm = self._arm(name, variant, metric)
        y = arm[spec.column].to_numpy(dtype=float)
        x = _covariates(arm, spec) if cuped and spec.covariates else None
        return ArmStats.from_arrays(y, x)

    def left_out(self, name: str, variant: str, metric: str, end: pd.Timestamp) -> int:
        spec = METRICS[metric]
        arm = self._by[(name, variant)]
        open_ = arm["assigned_at"] + pd.Timedelta(days=self.windows[spec.window]) > end
        return int((arm[spec.column].isna() & open_).sum())

    def looks(
        self, name: str, base: str, variant: str, metric: str, *, end: pd.Timestamp, freq: str
    ) -> list[tuple[pd.Timestamp, ArmStats, ArmStats]]:
        days = pd.Timedelta(days=self.windows[METRICS[metric].window])
        arms = [self._arm(name, v, metric) for v in (base, variant)]
        done = [a["assigned_at"] + days for a in arms]
        out = []
        for look in look_dates(pd.concat(done), end=end, freq=freq):
            seen = [d <= look for d in done]
            ys = [
                a.loc[m, METRICS[metric].column].to_numpy(dtype=float)
                for a, m in zip(arms, seen, strict=True)
            ]
            out.append((look, ArmStats.from_arrays(ys[0]), ArmStats.from_arrays(ys[1])))
        return out


def look_dates(done_at: pd.Series, *, end: pd.Timestamp, freq: str) -> pd.DatetimeIndex:
    """Return the looks of the sequential table.

    Every ``freq`` from the first window's end to the last (or ``end``, if earlier),
    which is the last look.
    """
    first, last = done_at.min(), min(done_at.max(), end)
    if pd.isna(first) or first > last:
        return pd.DatetimeIndex([])
    looks = pd.date_range(first.normalize(), last, freq=_PEEK_FREQ[freq])
    return looks[looks < last].append(pd.DatetimeIndex([last]))


def _verdict(row: dict, spec: _Metric, mismatch: bool) -> str:
    if row["small_n"]:
        words = "too few customers to tell"
    elif not row["significant"]:
        words = "no detectable difference"
    else:
        diff = row["cuped_diff"] if row["estimate"] == "cuped" else row["diff"]
        better = (diff > 0) == spec.higher_is_better
        words = f"{'better' if better else 'worse'}: {'higher' if diff > 0 else 'lower'}"
    return f"not trustworthy (sample ratio mismatch); {words}" if mismatch else words


def analyze(
    data: CXData,
    *,
    as_of: AsOf = None,
    experiment: str | Sequence[str] | None = None,
    control: str = "control",
    planned: Mapping[str, float] | None = None,
    metrics: Sequence[str] = tuple(METRICS),
    conversion_days: int = 30,
    horizon_days: int = 90,
    nps_days: int = 120,
    pre_days: int = 180,
    cuped: bool = True,
    sequential: bool = True,
    peeks: str = "week",
    level: float = 0.95,
    srm_alpha: float = SRM_ALPHA,
    mode: str | None = None,
) -> ExperimentResult:
    """Read out every experiment: split check, effects with intervals, CUPED, sequential.

    Parameters
    ----------
    data
        The data, with the optional ``assignments`` table (``customer_id, experiment,
        variant, assigned_at``), ``orders`` (conversion, churn, spend) and ``responses``
        (NPS).
    as_of
        The readout's instant (:func:`cxkit.data.resolve_as_of`); assignments and
        activity after it are not used, and a customer whose window has not ended by
        then is left out of that metric.
    experiment
        Only this experiment (or these); ``None``: every experiment.
    control
        The control variant's name; an experiment without it takes its first variant
        in alphabetical order as the control (and says so in :attr:`notes`).
    planned
        The planned share of each variant (``{"control": 0.5, "treatment": 0.5}``);
        ``None``: equal shares.
    metrics
        Which of :data:`METRICS` to read out.
    conversion_days, horizon_days, nps_days, pre_days
        The windows, in days after assignment (before it for ``pre_days``): see
        :func:`cxkit.experiments.customer_outcomes`.
    cuped
        Also estimate each effect with CUPED (:func:`cxkit.experiments.cuped`), using
        the metric's pre-assignment behaviour: orders in the ``pre_days`` before
        assignment for conversion and churn, spend in them for spend, the last earlier
        NPS answer for NPS. The verdict then uses the CUPED estimate.
    sequential
        Also compute the always-valid interval look by look (:attr:`sequential`).
    peeks
        How often the sequential table looks: ``"week"`` or ``"month"``.
    level
        Confidence level of every interval.
    srm_alpha
        A split whose chi-square p-value is below this is a sample ratio mismatch.
    mode
        ``"memory"`` (collect each assigned customer's outcomes), ``"scale"`` (sum them
        in the engine: :mod:`cxkit.experiments.scale`, the same readout to rounding,
        without :attr:`~ExperimentResult.outcomes`) or None (:mod:`cxkit.scale`'s
        settings).

    Returns
    -------
    ExperimentResult
        The tables (``None`` without assignments, with the reason in
        :attr:`ExperimentResult.not_available`) and the findings.

    Raises
    ------
    UsageError
        When an option is invalid (a metric, ``peeks``, ``level``, ``planned`` without a
        variant, or a window).

    Examples
    --------
    >>> import cxkit
    >>> res = analyze(cxkit.load({"orders": pd.DataFrame({"order_id": ["1"],
    ...     "customer_id": ["a"], "ts": [pd.Timestamp("2024-01-01")], "amount": [5.0]})}))
    >>> res.readout is None, res.not_available
    (True, ["The experiment readout is not available: this needs the table 'assignments'"])
    """
    check_options(metrics, peeks, level)
    options = ReadoutOptions(
        end=resolve_as_of(data, as_of),
        experiments=_names(experiment),
        control=control,
        planned=planned,
        metrics=tuple(metrics),
        windows={
            "conversion_days": conversion_days,
            "horizon_days": horizon_days,
            "nps_days": nps_days,
        },
        pre_days=pre_days,
        cuped=cuped,
        sequential=sequential,
        peeks=peeks,
        level=level,
        srm_alpha=srm_alpha,
    )
    scaled = dispatch("experiments", mode, {"data": data, "options": options})
    if scaled is not None:  # experiments.scale
        return scaled  # type: ignore[return-value]
    try:
        outcomes = customer_outcomes(data, **options.outcome_options())
    except NotAvailableError as err:
        return options.unavailable(str(err))
    if options.experiments is not None:
        outcomes = outcomes[outcomes["experiment"].isin(list(options.experiments))]
        outcomes = outcomes.reset_index(drop=True)
    if outcomes.empty:
        return options.no_assignments()
    result = read_out(_FrameArms(outcomes, options.windows), dict(outcomes.attrs), options)
    result.outcomes = outcomes
    return result


def _names(experiment: str | Sequence[str] | None) -> tuple[str, ...] | None:
    """Return the experiments asked for (``None``: every one)."""
    if experiment is None:
        return None
    return (experiment,) if isinstance(experiment, str) else tuple(experiment)


@dataclass(frozen=True)
class ReadoutOptions:
    """The options of a readout, checked once by :func:`analyze` for both modes.

    Memory mode reads out from them here; scale mode
    (:func:`cxkit.experiments.scale.analyze_scale`) gets the same object, so the two
    cannot resolve an option differently.

    Attributes
    ----------
    end
        The readout's instant (``as_of`` resolved by :func:`cxkit.data.resolve_as_of`).
    experiments
        The experiments to read out; ``None``: every one.
    control, planned, metrics, pre_days, cuped, sequential, peeks, level, srm_alpha
        As for :func:`analyze`.
    windows
        ``conversion_days``, ``horizon_days`` and ``nps_days``.

    Examples
    --------
    >>> o = ReadoutOptions(end=pd.Timestamp("2024-06-30"), experiments=("e",),
    ...     control="control", planned=None, metrics=("spend",), windows={"conversion_days":
    ...     30, "horizon_days": 90, "nps_days": 120}, pre_days=180, cuped=True,
    ...     sequential=True, peeks="week", level=0.95, srm_alpha=0.001)
    >>> o.no_assignments().not_available
    ['The assignments table has no usable assignments for e.']
    """

    end: pd.Timestamp
    experiments: tuple[str, ...] | None
    control: str
    planned: Mapping[str, float] | None
    metrics: tuple[str, ...]
    windows: dict[str, int]
    pre_days: int
    cuped: bool
    sequential: bool
    peeks: str
    level: float
    srm_alpha: float

    def outcome_options(self) -> dict[str, object]:
        """Return the keywords of :func:`~cxkit.experiments.outcomes.outcomes_table`."""
        return {"as_of": self.end, "pre_days": self.pre_days, **self.windows}

    def unavailable(self, reason: str) -> ExperimentResult:
        """Return the empty result that says ``reason``."""
        return ExperimentResult(as_of=self.end, level=self.level, not_available=[reason])

    def no_assignments(self) -> ExperimentResult:
        """Return the empty result of assignments with no usable row."""
        what = f" for {', '.join(self.experiments)}" if self.experiments else ""
        return self.unavailable(f"The assignments table has no usable assignments{what}.")


def check_options(metrics: Sequence[str], peeks: str, level: float) -> None:
    bad = [m for m in metrics if m not in METRICS]
    if bad:
        raise UsageError(f"unknown metric(s) {bad}; valid: {', '.join(METRICS)}")
    if peeks not in _PEEK_FREQ:
        raise UsageError(f"peeks must be 'week' or 'month', got {peeks!r}")
    if not 0 < level < 1:
        raise UsageError(f"level must be between 0 and 1, got {level!r}")


def read_out(
    arms: _FrameArms, info: Mapping[str, object], options: ReadoutOptions
) -> ExperimentResult:
    """Read out every experiment from its arms (the one readout of both modes).

    ``arms`` gives each arm's statistics: from the per-customer outcomes in memory mode,
    from sums in the engine in scale mode (:mod:`cxkit.experiments.scale`); ``info`` is
    what the outcomes could use (:func:`~cxkit.experiments.outcomes.outcomes_table`);
    ``options`` are :func:`analyze`'s, resolved (:class:`ReadoutOptions`).
    """
    end, level, control = options.end, options.level, options.control
    not_available: list[str] = []
    notes: list[str] = []
    if not info["has_orders"]:
        not_available.append(
            "Conversion and spend are not available: they need the table 'orders'"
            + ("." if info["churn_basis"] else "; churn needs it too (or churned_at).")
        )
    if not info["has_nps"]:
        not_available.append(
            "NPS effects are not available: they need NPS answers in the table 'responses'."
        )
    if info["churn_basis"] == "contract":
        notes.append(
            "Churn is contractual here: a churned_at within the window, among customers "
            "not churned before their assignment."
        )
    windows = {k: int(info[k]) for k in ("conversion_days", "horizon_days", "nps_days")}

    assign_rows, srm_rows, rows, looks = [], [], [], []
    for name in arms.experiments():
        table = arms.assignment(name)
        variants = [str(v) for v in table["variant"]]
        counts = {str(r.variant): int(r.customers) for r in table.itertuples()}
        total = sum(counts.values())
        shares = _planned_for(variants, options.planned)
        srm = _srm_row(str(name), counts, shares, options.srm_alpha)
        srm_rows.append(srm)
        planned_share = srm_test(counts, shares)["planned"]
        for r in table.itertuples():
            assign_rows.append(
                {
                    "experiment": name,
                    "variant": str(r.variant),
                    "customers": int(r.customers),
                    "share": int(r.customers) / total,
                    "planned_share": planned_share[str(r.variant)],  # type: ignore[index]
                    "first_assigned": r.first_assigned,
                    "last_assigned": r.last_assigned,
                    "repeated": int(r.repeated),
                }
            )
        repeated = int(table["repeated"].sum())
        if repeated:
            notes.append(
                f"{repeated:,} customers were assigned more than once in {name}; only their "
                "first assignment counts."
            )
        base = control if control in variants else variants[0]
        if base != control:
            notes.append(
                f"{name} has no variant named {control!r}: {base!r} is taken as the control."
            )
        if len(variants) < 2:
            not_available.append(
                f"{name} has only one variant ({base}): there is nothing to compare."
            )
            continue
        first_row = len(rows)
        for v in (v for v in variants if v != base):
            for metric in options.metrics:
                spec = METRICS[metric]
                days = windows[spec.window]
                left_out = arms.left_out(name, base, metric, end) + arms.left_out(
                    name, v, metric, end
                )
                if left_out:
                    notes.append(
                        f"{left_out:,} customers of {name} ({base} and {v}) are left out of "
                        f"{metric}: their {days}-day window had not ended by {end:%Y-%m-%d}."
                    )
                use_x = bool(options.cuped and spec.covariates)
                c_arm = arms.stats(name, base, metric, cuped=use_x)
                t_arm = arms.stats(name, v, metric, cuped=use_x)
                if c_arm.n + t_arm.n == 0:
                    continue
                r = compare_stats(c_arm, t_arm, kind=spec.kind, level=level, tol=arms.tol(metric))
                rows.append(
                    {
                        "experiment": name,
                        "variant": v,
                        "control_variant": base,
                        "metric": metric,
                        "label": spec.label.format(days=days),
                        "unit": _UNITS[spec.kind],
                        **r,
                        "estimate": "cuped" if use_x and np.isfinite(r["cuped_p"]) else "raw",
                        "small_n": bool(min(r["n_control"], r["n_treatment"]) < MIN_N),
                    }
                )
                if options.sequential:
                    n_opt = c_arm.n + t_arm.n
                    for look, c_seen, t_seen in arms.looks(
                        name, base, v, metric, end=end, freq=options.peeks
                    ):
                        if min(c_seen.n, t_seen.n) < MIN_N:
                            continue
                        q = compare_stats(c_seen, t_seen, kind=spec.kind, level=level, n_opt=n_opt)
                        looks.append(
                            {
                                "experiment": name,
                                "variant": v,
                                "metric": metric,
                                "look": look,
                                "n": c_seen.n + t_seen.n,
                                **{
                                    k: q[k]
                                    for k in ("diff", "ci_low", "ci_high", "seq_low", "seq_high")
                                },
                            }
                        )
        block = rows[first_row:]
        p = np.array(
            [row["cuped_p"] if row["estimate"] == "cuped" else row["p_value"] for row in block]
        )
        p_holm = holm(p)
        for row, ph in zip(block, p_holm, strict=True):
            row["p_holm"] = float(ph)
            row["significant"] = bool(np.isfinite(ph) and ph < 1 - level)
            row["verdict"] = _verdict(row, METRICS[row["metric"]], bool(srm["mismatch"]))

    return ExperimentResult(
        as_of=end,
        level=level,
        assignments=pd.DataFrame(assign_rows),
        srm=pd.DataFrame(srm_rows),
        readout=pd.DataFrame(rows) if rows else None,
        sequential=pd.DataFrame(looks) if options.sequential and looks else None,
        notes=list(dict.fromkeys(notes)),
        not_available=not_available,
    )
