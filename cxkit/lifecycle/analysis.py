"""The lifecycle analysis in one call: :func:`analyze` -> :class:`LifecycleResult`.

:func:`analyze` computes every table the lifecycle report shows — the stage ladder,
stage-to-stage conversion, the ordered funnel of chosen steps and its time to convert,
breakdowns by a customers column, the entry channel and persona, this period against
the previous one, cohort retention, lifecycle states and journeys — and
:meth:`LifecycleResult.findings` turns them into the sentences the report and the
executive summary show.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import ClassVar

import ibis.expr.types as ir
import pandas as pd

from cxkit import stats
from cxkit.cache import run_cached
from cxkit.data import CXData, resolve_as_of
from cxkit.errors import NotAvailableError
from cxkit.findings import Finding, finding_from_rate
from cxkit.lifecycle.cohorts import (
    AVERAGE,
    cohort_cells,
    cohort_grid,
    cohort_retention,
    group_tests,
    lifecycle_states,
)
from cxkit.lifecycle.funnel import (
    Step,
    Window,
    default_pairs,
    funnel,
    funnel_period_compare,
    funnel_reached,
    stage_conversion,
    stage_funnel,
)
from cxkit.lifecycle.journeys import journey_tables
from cxkit.lifecycle.stages import (
    Rule,
    StageMapSpec,
    available_stages,
    describe_rule,
    stage_counts,
)
from cxkit.result import AsOf, Result

__all__ = ["DEFAULT_STEPS", "LifecycleResult", "analyze", "findings"]

#: The funnel steps :func:`analyze` uses by default (the lifecycle report's).
DEFAULT_STEPS: tuple[str, ...] = ("product_view", "add_to_cart", "purchase")

#: The row label of the size-weighted average in :func:`~cxkit.lifecycle.cohort_retention`.
_AVERAGE = "all (size-weighted)"


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%"


@dataclass(kw_only=True)
class LifecycleResult(Result):
    """Everything the lifecycle report shows, from one :func:`analyze` call.

    Attributes
    ----------
    stage_map
        The stages the data can support, in order (the rules of the stage map).
    missing_stages
        Stage -> the tables it would need, for the stages the data cannot support.
    target
        The stage conversion is measured to: ``purchase``, else the last stage.
    stage_funnel
        The lifecycle ladder (:func:`~cxkit.lifecycle.stage_funnel`).
    stage_conversion
        Stage-to-stage conversion, each stage by its own rule
        (:func:`~cxkit.lifecycle.stage_conversion`); shown as :attr:`rule_conversion`.
    stage_rule_counts
        ``stage``, ``n_customers``: how many customers meet each stage's own rule
        (:func:`~cxkit.lifecycle.stage_counts` with ``monotone=False``), or None.
    steps, window, entry
        The funnel's settings.
    funnel
        The ordered funnel of ``steps`` (:func:`~cxkit.lifecycle.funnel`), or None.
    period_compare
        This period's entrants against the previous period's
        (:func:`~cxkit.lifecycle.funnel_period_compare`), or None.
    by
        The customers column of the breakdown, or None when the data has none.
    breakdown_tests
        Each group of ``by`` against the rest, conversion from the first stage to
        ``target`` (:func:`~cxkit.lifecycle.group_tests`), or None.
    entry_channel_tests
        Funnel completion by the channel of the first step, or None.
    persona_tests
        Funnel completion by persona, or None.
    period, activity
        The calendar period and the activity of the cohorts and states.
    cohorts
        Cohort retention per ``period`` (:func:`~cxkit.lifecycle.cohort_retention`), or
        None.
    cohort_cells
        The same cells with their n, Wilson interval and small-n flag
        (:func:`~cxkit.lifecycle.cohort_cells`), or None.
    monthly_cohorts
        Monthly cohort retention (for the month-1 finding; ``cohorts`` itself when the
        period is a month), or None.
    states
        Lifecycle states per ``period`` (:func:`~cxkit.lifecycle.lifecycle_states`), or
        None.
    journey_links, journey_paths
        Touchpoint journeys: Sankey links and the most common paths, or None.
    stage_links, stage_paths
        The order in which customers reach the stages, or None (fewer than three stages).
    missing_parts
        Part name (``stages``, ``funnel``, ``period_compare``, ``breakdown``,
        ``entry_channel``, ``persona``, ``cohorts``, ``states``, ``journeys``,
        ``stage_journeys``) -> the sentence saying why it is
        missing (for ``stages``: which stages, and the tables they need). The same
        sentences, in order, are :attr:`not_available`.
    """

    domain: ClassVar[str] = "lifecycle"
    #: The column labels of :attr:`stage_funnel` in the report (cxkit.display labels).
    ladder_labels: ClassVar[dict[str, str]] = {
        "step_name": "stage",
        "rate_from_start": "of all customers",
        "rate_from_previous": "of the previous stage",
        "median_time_from_previous_days": "median days from the previous stage",
        "p90_time_from_previous_days": "90th percentile of days from the previous stage",
        "median_time_from_start_days": "median days from first contact",
    }
    #: The column labels of :attr:`rule_conversion` in the report (cxkit.display labels).
    rule_labels: ClassVar[dict[str, str]] = {
        "from_rule": "of customers with",
        "to_rule": "who also had",
        "n_from": "customers",
        "n_to": "who also had it",
        "rate": "share",
    }
    stage_map: dict[str, Rule]
    missing_stages: dict[str, str]
    target: str
    stage_funnel: pd.DataFrame
    stage_conversion: pd.DataFrame
    stage_rule_counts: pd.DataFrame | None = None
    steps: list[Step]
    window: Window
    entry: str
    funnel: pd.DataFrame | None = None
    period_compare: pd.DataFrame | None = None
    by: str | None = None
    breakdown_tests: pd.DataFrame | None = None
    entry_channel_tests: pd.DataFrame | None = None
    persona_tests: pd.DataFrame | None = None
    period: str = "M"
    activity: str = "any"
    cohorts: pd.DataFrame | None = None
    cohort_cells: pd.DataFrame | None = None
    monthly_cohorts: pd.DataFrame | None = None
    states: pd.DataFrame | None = None
    journey_links: pd.DataFrame | None = None
    journey_paths: pd.DataFrame | None = None
    stage_links: pd.DataFrame | None = None
    stage_paths: pd.DataFrame | None = None
    missing_parts: dict[str, str] = field(default_factory=dict)

    @property
    def n_customers(self) -> int:
        """Return how many customers reached the first stage.

        Returns
        -------
        int
            The first row of :attr:`stage_funnel`.
        """
        return int(self.stage_funnel.n_customers.iloc[0])

    @property
    def stage_steps(self) -> pd.DataFrame:
        """Return each step of the ladder: the one source of every "A → B" figure.

        Every sentence, takeaway and table of the report that states a step between two
        stages reads it from here, so a step has one rate and one n on the page.

        Returns
        -------
        pandas.DataFrame
            One row per consecutive pair of stages of :attr:`stage_funnel`:
            ``from_stage``, ``to_stage``, ``n_from`` (customers who reached
            ``from_stage``), ``n_to``, ``rate`` (``n_to / n_from``), Wilson ``ci_low`` /
            ``ci_high`` and ``small_n``.
        """
        sf = self.stage_funnel.reset_index(drop=True)
        later = sf.iloc[1:]
        return pd.DataFrame(
            {
                "from_stage": sf.step_name.iloc[:-1].to_numpy(),
                "to_stage": later.step_name.to_numpy(),
                "n_from": later.n_previous.astype("int64").to_numpy(),
                "n_to": later.n_customers.astype("int64").to_numpy(),
                "rate": later.rate_from_previous.to_numpy(),
                "ci_low": later.ci_low_from_previous.to_numpy(),
                "ci_high": later.ci_high_from_previous.to_numpy(),
                "small_n": later.small_n.astype(bool).to_numpy(),
            }
        )

    @property
    def rule_conversion(self) -> pd.DataFrame:
        """Return :attr:`stage_conversion` with each stage named by its own rule, in words.

        These shares are not steps of the ladder (a later stage does not count as the
        earlier one here), so they are named by what each rule counts rather than by
        stage, and never state an "A → B" figure that differs from :attr:`stage_steps`.

        Returns
        -------
        pandas.DataFrame
            ``from_rule`` (customers with …), ``to_rule`` (… who also had), ``n_from``,
            ``n_to``, ``rate``, ``ci_low``, ``ci_high``, ``small_n``.
        """
        conv = self.stage_conversion

        def said(stage: str) -> str:
            return describe_rule(self.stage_map[stage]) if stage in self.stage_map else stage

        out = conv.drop(columns=["from_stage", "to_stage"])
        out.insert(0, "to_rule", [said(s) for s in conv.to_stage])
        out.insert(0, "from_rule", [said(s) for s in conv.from_stage])
        return out.reset_index(drop=True)

    def _worst_step(self) -> pd.Series | None:
        """Return the ladder step with the lowest rate: among steps of 30 or more, else all."""
        steps = self.stage_steps
        steps = steps[steps.rate.notna()]
        if not len(steps):
            return None
        big = steps[~steps.small_n]
        pool = big if len(big) else steps
        return pool.sort_values("rate", kind="stable").iloc[0]

    # ---- findings -------------------------------------------------------------------

    def findings(self) -> list[Finding]:
        """Return the lifecycle findings: conversion, drop-off, time, groups, retention.

        Returns
        -------
        list of Finding
            ``repeat_rate`` (purchase -> retention by its own rule, Wilson interval),
            ``overall_conversion`` (first stage -> :attr:`target`), ``time_to_purchase``
            (median days from the first stage), ``biggest_dropoff`` (the stage step with
            the lowest rate from the previous one, among steps of 30 or more),
            ``group_difference`` (one per significant group of :attr:`by` against the
            rest, Holm-adjusted) and ``month1_retention`` (size-weighted month-1
            retention), each when the data allows. Importance on the 0–10 scale.
        """
        out: list[Finding] = []
        names = list(self.stage_map)
        out += self._repeat_rate()
        if self.target != names[0]:
            out += self._conversion_and_time()
        out += self._biggest_dropoff()
        out += self._group_differences()
        out += self._month1_retention()
        return out

    def _repeat_rate(self) -> list[Finding]:
        conv = self.stage_conversion
        rows = conv[(conv.from_stage == "purchase") & (conv.to_stage == "retention")]
        if rows.empty or rows.iloc[0].n_from <= 0:
            return []
        r = rows.iloc[0]
        sentence = (
            f"{_pct(r.rate)} of {int(r.n_from):,} buyers ordered again on a later "
            f"day (95% CI {_pct(r.ci_low)}–{_pct(r.ci_high)})."
        )
        return [
            finding_from_rate(
                r,
                domain=self.domain,
                metric="repeat_rate",
                sentence=sentence,
                importance=8,
                value="rate",
                n="n_from",
            )
        ]

    def _conversion_and_time(self) -> list[Finding]:
        sf = self.stage_funnel
        n1 = self.n_customers
        row = sf[sf.step_name == self.target].iloc[0]
        out = [
            finding_from_rate(
                {**row, "n_start": n1},
                domain=self.domain,
                metric="overall_conversion",
                sentence=(
                    f"{_pct(row.rate_from_start)} of {n1:,} customers reached {self.target} "
                    f"(95% CI {_pct(row.ci_low)}–{_pct(row.ci_high)})."
                ),
                importance=10,
                value="rate_from_start",
                n="n_start",
                small_n=n1 < stats.MIN_N,
            )
        ]
        med = row.median_time_from_start_days
        if pd.notna(med):
            out.append(
                finding_from_rate(
                    row,
                    domain=self.domain,
                    metric="time_to_purchase",
                    sentence=(
                        f"Half of those who reached {self.target} did so within {med:.1f} days "
                        f"of their first contact (90% within {row.p90_time_from_start_days:.1f} "
                        f"days; n = {int(row.n_customers):,})."
                    ),
                    unit="days",
                    importance=5,
                    value="median_time_from_start_days",
                    low=None,
                    high=None,
                    n="n_customers",
                    small_n=row.n_customers < stats.MIN_N,
                )
            )
        return out

    def _biggest_dropoff(self) -> list[Finding]:
        worst = self._worst_step()
        if len(self.stage_funnel) <= 2 or worst is None or bool(worst.small_n):
            return []
        a, b = worst.from_stage, worst.to_stage
        loss = {
            "value": 1 - worst.rate,
            "ci_low": 1 - worst.ci_high,
            "ci_high": 1 - worst.ci_low,
            "n": worst.n_from,
            "small_n": worst.small_n,
        }
        sentence = (
            f"The biggest drop-off is {a} → {b}: only {_pct(worst.rate)} of "
            f"{int(worst.n_from):,} customers move on (95% CI {_pct(worst.ci_low)}–"
            f"{_pct(worst.ci_high)})."
        )
        return [
            finding_from_rate(
                loss,
                domain=self.domain,
                metric="biggest_dropoff",
                sentence=sentence,
                importance=9,
                comparison=f"{a} -> {b}",
                extra={"from_stage": str(a), "to_stage": str(b)},
            )
        ]

    def _group_differences(self) -> list[Finding]:
        if self.breakdown_tests is None or self.by is None:
            return []
        by, gt = self.by, self.breakdown_tests
        out = []
        for _, g in gt[gt.significant].iterrows():
            word = "higher" if g["diff"] > 0 else "lower"
            sentence = (
                f"Customers from {by.replace('_', ' ')} '{g[by]}' reach {self.target} "
                f"{word} than the rest: {_pct(g.rate)} vs {_pct(g.rate_rest)} "
                f"(difference {100 * g['diff']:+.1f} points, {stats.p_text(g.p_holm, 'Holm p')}, "
                f"n = {int(g.n_start):,})."
            )
            out.append(
                finding_from_rate(
                    g,
                    domain=self.domain,
                    metric="group_difference",
                    sentence=sentence,
                    importance=6 + min(abs(float(g["diff"])), 0.3) * 10,
                    value="rate",
                    n="n_start",
                    comparison="vs all other groups",
                    p_value="p_holm",
                    extra={"group": str(g[by]), "by": by},
                )
            )
        return out

    def _month1_retention(self) -> list[Finding]:
        cr = self.monthly_cohorts
        if cr is None or 1 not in cr.columns or pd.isna(cr.loc[_AVERAGE, 1]):
            return []
        m1 = float(cr.loc[_AVERAGE, 1])
        n_obs = int(cr.loc[cr.index[:-1], "customers"][cr[1].iloc[:-1].notna()].sum())
        lo, hi = stats.wilson_ci(round(m1 * n_obs), n_obs)
        row = {"value": m1, "ci_low": float(lo), "ci_high": float(hi), "n": n_obs}
        sentence = (
            f"{_pct(m1)} of customers are active again in the month after their first "
            f"(size-weighted over cohorts, n = {n_obs:,}), 95% CI {_pct(lo)}–{_pct(hi)}."
        )
        return [
            finding_from_rate(
                row,
                domain=self.domain,
                metric="month1_retention",
                sentence=sentence,
                importance=4,
            )
        ]

    # ---- sentences for the report -----------------------------------------------------

    def headline(self) -> str:
        """Return the report's one-line headline: the overall conversion and the worst step.

        Returns
        -------
        str
            The lead finding (overall conversion, else the repeat rate) joined with the
            biggest drop-off; a plain count when neither exists.
        """
        by_metric = {f.metric: f for f in self.findings()}
        lead = by_metric.get("overall_conversion") or by_metric.get("repeat_rate")
        drop = by_metric.get("biggest_dropoff")
        if lead is None:
            return (
                f"{self.n_customers:,} customers; the lifecycle funnel needs at least two "
                "stages in the data."
            )
        tail = "; " + drop.sentence[0].lower() + drop.sentence[1:] if drop else "."
        return lead.sentence.rstrip(".") + tail

    def takeaways(self) -> dict[str, str]:
        """Return the one-line takeaway under each chart and table of the report.

        Returns
        -------
        dict of str to str
            Part name -> sentence, for the parts the data supports: ``stages``,
            ``conversion``, ``funnel``, ``breakdown``, ``entry_channel``, ``persona``,
            ``period_compare``, ``cohorts``, ``states``, ``journeys``, ``stage_journeys``.
        """
        out: dict[str, str] = {}
        worst = self._worst_step()
        if worst is not None:
            small = " (fewer than 30 customers: read with care)" if bool(worst.small_n) else ""
            out["stages"] = (
                f"The largest loss is {worst.from_stage} → {worst.to_stage}: "
                f"{_pct(1 - worst.rate)} of {int(worst.n_from):,} customers do not move on "
                f"({_pct(worst.rate)} do){small}."
            )
        if len(self.stage_conversion):
            out["conversion"] = self._rule_takeaway()
        if self.funnel is not None:
            out["funnel"] = self._funnel_takeaway()
        if self.breakdown_tests is not None and self.by is not None:
            out["breakdown"] = self._breakdown_takeaway(self.breakdown_tests, self.by)
        if self.entry_channel_tests is not None:
            out["entry_channel"] = _best_and_worst(
                self.entry_channel_tests,
                "entry_channel",
                "Among channels with at least 30 starts, completion is highest on {best} "
                "and lowest on {worst}.",
                "Too few customers per entry channel (under 30) to compare channels.",
            )
        if self.persona_tests is not None:
            text = _best_and_worst(
                self.persona_tests,
                "persona",
                "Completion is highest for {best} and lowest for {worst}; Holm-adjusted "
                "tests in the table.",
                "",
            )
            if text:
                out["persona"] = text
        if self.period_compare is not None:
            pc = self.period_compare
            cur = pc.iloc[1]
            verdict = "a significant change" if cur.p_value < 0.05 else "not a significant change"
            out["period_compare"] = (
                f"Completion moved from {pc.rate.iloc[0]:.1%} to {cur.rate:.1%} "
                f"({cur['diff'] * 100:+.1f} points, {stats.p_text(cur.p_value)}): {verdict}."
            )
        if self.cohorts is not None and len(self.cohorts) > 1:
            avg = self.cohorts.loc[_AVERAGE]
            k = [c for c in (1, 3, 6) if c in avg.index and pd.notna(avg[c])]
            out["cohorts"] = (
                "On average "
                + ", ".join(
                    f"{avg[c]:.0%} are active {c} period(s) later{self._pooled(c)}" for c in k
                )
                + "."
                if k
                else "Too few periods to read retention yet."
            )
        if self.states is not None and len(self.states):
            last = self.states.iloc[-1]
            out["states"] = (
                f"In {last.period}: {last.active:,} active ({last.new:,} new, "
                f"{last.returning:,} returning, {last.resurrecting:,} resurrecting) and "
                f"{last.dormant:,} gone dormant."
            )
        if self.journey_paths is not None and len(self.journey_paths):
            paths = self.journey_paths
            out["journeys"] = (
                f"The most common path, {paths.path.iloc[0]}, is taken by "
                f"{paths.share.iloc[0]:.0%} of customers."
            )
        if self.stage_paths is not None and len(self.stage_paths):
            sp = self.stage_paths
            out["stage_journeys"] = f"{sp.share.iloc[0]:.0%} of customers follow {sp.path.iloc[0]}."
        return out

    def _pooled(self, k: int) -> str:
        """Return " (95% CI a–b, n = N)" of the pooled cohort cell at ``k``, if known."""
        cells = self.cohort_cells
        if cells is None:
            return ""
        row = cells[(cells.cohort == AVERAGE) & (cells.k == k)]
        if row.empty:
            return ""
        r = row.iloc[0]
        return f" (95% CI {r.ci_low:.0%}–{r.ci_high:.0%}, n = {int(r.customers):,})"

    def _rule_takeaway(self) -> str:
        """Say how the ladder's counts differ from each stage's own rule, and why."""
        own = self.stage_rule_counts
        if own is None:
            return "Each row counts the customers who meet both rules."
        ladder = dict(zip(self.stage_funnel.step_name, self.stage_funnel.n_customers, strict=True))
        parts = []
        for stage, n_own in zip(own.stage, own.n_customers, strict=True):
            n_ladder = int(ladder.get(stage, n_own))
            if n_ladder > n_own:
                parts.append(
                    f"{stage} counts {n_ladder:,} customers on the ladder above: "
                    f"{int(n_own):,} with {describe_rule(self.stage_map[stage])} and "
                    f"{n_ladder - int(n_own):,} who reached a later stage without it"
                )
        if not parts:
            return "Each stage's own rule counts the same customers as the ladder above."
        text = "; ".join(parts)
        return text[0].upper() + text[1:] + "."

    def _funnel_takeaway(self) -> str:
        f = self.funnel
        assert f is not None
        last = f.iloc[-1]
        text = (
            f"{int(last.n_customers):,} of {int(f.n_customers.iloc[0]):,} customers complete "
            "the funnel"
        )
        if self.window:
            text += f" within {self.window} days"
        hours = last.median_time_from_start_hours
        if pd.notna(hours):
            return text + f"; the median time from the first step is {hours:.1f} hours."
        return text + "."

    @staticmethod
    def _breakdown_takeaway(tests: pd.DataFrame, by: str) -> str:
        sig = tests[tests.significant]
        if len(sig):
            parts = [
                f"{g} {'above' if d > 0 else 'below'} the rest ({d * 100:+.1f} points)"
                for g, d in zip(sig[by], sig["diff"], strict=True)
            ]
            return "Significantly different: " + "; ".join(parts) + "."
        return (
            f"No {by.replace('_', ' ')} differs significantly from the rest after the Holm "
            "correction."
        )


def _best_and_worst(tests: pd.DataFrame, col: str, text: str, too_few: str) -> str:
    """Fill ``text`` with the best and worst group of at least 30 (else ``too_few``)."""
    big = tests[~tests.small_n]
    if len(big) <= 1:
        return too_few
    best, worst = big.iloc[0], big.iloc[-1]

    def _say(g: pd.Series) -> str:
        return f"{g[col]} ({_pct(g.rate)}, n = {g.n_start:,})"  # as in the tables

    return text.format(best=_say(best), worst=_say(worst))


# --------------------------------------------------------------------------------------
# analyze
# --------------------------------------------------------------------------------------


def _try(
    part: str,
    missing: dict[str, str],
    fn: Callable[..., pd.DataFrame],
    *args: object,
    **kwargs: object,
) -> pd.DataFrame | None:
    """Call ``fn``; on NotAvailableError note why under ``part`` and return None."""
    try:
        return fn(*args, **kwargs)
    except NotAvailableError as err:
        missing[part] = str(err)
        return None


@run_cached("lifecycle.analyze")
def _analyze(
    data: CXData,
    *,
    as_of: pd.Timestamp,
    stage_map: StageMapSpec,
    by: str | None,
    steps: list[Step],
    window: Window,
    entry: str,
    period: str,
    compare_days: float,
    journey_steps: int,
    journey_top: int,
) -> LifecycleResult:
    """Everything of :func:`analyze` but the persona breakdown (cached for a report run).

    ``data`` is already cut at ``as_of``, the resolved instant.
    """
    end = as_of
    smap, missing_stages = available_stages(data, stage_map)
    if not smap:
        raise NotAvailableError("an events or orders table", analysis="The lifecycle analysis")
    names = list(smap)
    target = "purchase" if "purchase" in names else names[-1]
    missing: dict[str, str] = {}
    if missing_stages:
        missing["stages"] = "Stages not available in this data: " + "; ".join(
            f"{stage} needs {need}" for stage, need in missing_stages.items()
        )

    sf = stage_funnel(data, smap, as_of=end)
    own_counts = stage_counts(data, smap, as_of=end, monotone=False)
    pairs = default_pairs(names)
    if "purchase" in smap and "retention" in smap and ("purchase", "retention") not in pairs:
        pairs.append(("purchase", "retention"))  # the repeat-rate finding reads this pair
    conv = stage_conversion(data, pairs, stage_map=smap, as_of=end)

    by_col = by if by and data.has("customers", by) else None
    breakdown = None
    if by_col is not None and target != names[0]:
        gf = stage_funnel(data, smap, by=by_col, as_of=end)
        gf = gf[gf.step_name.isin([names[0], target])].copy()
        gf["step"] = gf.step_name.map({names[0]: 1, target: 2})
        breakdown = group_tests(gf)
    elif by is None:
        missing["breakdown"] = "The breakdown is not available: no customers column was chosen"
    else:
        missing["breakdown"] = (
            f"The breakdown is not available: this needs table 'customers' with column "
            f"'{by}' and more than one stage"
        )

    # one matching of the funnel, shared by the funnel and its breakdowns
    reached = _try(
        "funnel", missing, funnel_reached, data, steps, window=window, entry=entry, as_of=end
    )
    fun = None
    if reached is not None:
        fun = funnel(data, steps, window=window, entry=entry, as_of=end, reached=reached)
    entry_tests = period_cmp = None
    if fun is not None:
        if data.has("events", "channel"):
            ef = funnel(
                data,
                steps,
                window=window,
                entry=entry,
                by="entry_channel",
                as_of=end,
                reached=reached,
            )
            entry_tests = group_tests(ef)
        period_cmp = funnel_period_compare(
            data,
            steps,
            period_days=compare_days,
            window=window,
            entry=entry,
            as_of=end,
            reached=reached,
        )
    if fun is None:
        missing["period_compare"] = (
            "The period comparison is not available: it compares the funnel's entrants, and "
            "the funnel is not available for this data"
        )
    if entry_tests is None:
        missing["entry_channel"] = (
            "The breakdown by entry channel is not available: this needs table 'events' with "
            "column 'channel'"
        )

    activity = "any" if "events" in data else "orders"
    cells = _try(
        "cohorts", missing, cohort_cells, data, period=period, activity=activity, as_of=end
    )
    cohorts = None if cells is None else cohort_grid(cells)
    monthly = cohorts
    if period != "M":
        monthly = _try("monthly", {}, cohort_retention, data, period="M", as_of=end)
    states = _try(
        "states", missing, lifecycle_states, data, period=period, activity=activity, as_of=end
    )

    links = paths = None
    if data.has("events", "touchpoint"):
        paths, links = journey_tables(
            data,
            kind="touchpoint",
            max_steps=journey_steps,
            top_paths=10,
            top_items=journey_top,
            as_of=end,
        )
    else:
        missing["journeys"] = (
            "Touchpoint journeys are not available: this needs table 'events' with column "
            "'touchpoint'"
        )
    stage_links = stage_paths = None
    if len(smap) > 2:
        n = len(smap)
        stage_paths, stage_links = journey_tables(
            data, kind="stage", max_steps=n, top_paths=8, top_items=n, stage_map=smap, as_of=end
        )
    else:
        missing["stage_journeys"] = "Stage journeys need at least three stages; this data has " + (
            ", ".join(smap)
        )

    return LifecycleResult(
        as_of=end,
        not_available=list(missing.values()),
        stage_map=smap,
        missing_stages=missing_stages,
        target=target,
        stage_funnel=sf,
        stage_conversion=conv,
        stage_rule_counts=own_counts,
        steps=steps,
        window=window,
        entry=entry,
        funnel=fun,
        period_compare=period_cmp,
        by=by_col,
        breakdown_tests=breakdown,
        entry_channel_tests=entry_tests,
        period=period,
        activity=activity,
        cohorts=cohorts,
        cohort_cells=cells,
        monthly_cohorts=monthly,
        states=states,
        journey_links=links,
        journey_paths=paths,
        stage_links=stage_links,
        stage_paths=stage_paths,
        missing_parts=missing,
    )


def _persona_groups(
    data: CXData, personas: pd.DataFrame | pd.Series | ir.Table | None
) -> pd.DataFrame | pd.Series | ir.Table | str | None:
    """Return the persona breakdown: the given labels, else a ``persona`` customers column."""
    if personas is None:
        return "persona" if data.has("customers", "persona") else None
    if isinstance(personas, pd.Series):
        return personas.rename("persona")
    col = next(c for c in personas.columns if c != "customer_id")
    if isinstance(personas, ir.Table):  # labels kept in the engine (scale mode)
        return personas.select("customer_id", persona=personas[col])
    return personas.rename(columns={col: "persona"})


def analyze(
    data: CXData,
    *,
    as_of: AsOf = None,
    stage_map: StageMapSpec = None,
    by: str | None = "acquisition_channel",
    steps: Sequence[Step] = DEFAULT_STEPS,
    window: Window = 7,
    entry: str = "any",
    period: str = "M",
    compare_days: float = 90,
    journey_steps: int = 4,
    journey_top: int = 6,
    personas: pd.DataFrame | pd.Series | None = None,
) -> LifecycleResult:
    """Run the lifecycle analysis: stages, funnel, breakdowns, cohorts, states, journeys.

    Parameters
    ----------
    data
        The data (events, orders, responses and customers are used when present).
    as_of
        The last instant the analysis may see (:func:`cxkit.data.resolve_as_of`: a
        date includes its whole day; default the data's own cut, else its latest
        timestamp).
    stage_map
        The stage rules; default :data:`~cxkit.lifecycle.DEFAULT_STAGES`. Stages the
        data cannot support are left out and named in the result.
    by
        A customers column to break conversion down by (skipped, with a note, when the
        data has no such column).
    steps, window, entry
        The ordered funnel (:func:`~cxkit.lifecycle.funnel`); window in days.
    period
        The calendar period of the cohorts and lifecycle states (``"W"``, ``"M"``, ...).
    compare_days
        The length of the two periods compared, in days.
    journey_steps, journey_top
        How many steps of each touchpoint journey, and how many touchpoints by name.
    personas
        The persona of each customer (a Series indexed by customer_id, or a frame of
        ``customer_id`` and one column) for the persona breakdown; default the
        customers table's ``persona`` column when it has one.

    Returns
    -------
    LifecycleResult
        The tables, what is not available, and :meth:`~LifecycleResult.findings`.

    Raises
    ------
    NotAvailableError
        When the data has no table behind any stage.
    UsageError
        On bad options (steps, window, entry, period) or an ``as_of`` that cannot be
        read.

    Examples
    --------
    >>> import pandas as pd, cxkit
    >>> ev = pd.DataFrame({"customer_id": ["a", "a", "b"],
    ...                    "event": ["site_visit", "product_view", "site_visit"],
    ...                    "ts": pd.to_datetime(["2024-01-01", "2024-01-02", "2024-01-03"])})
    >>> res = analyze(cxkit.load({"events": ev}), steps=["site_visit", "product_view"])
    >>> res.stage_funnel.n_customers.tolist()[:2], str(res.as_of)
    ([2, 1], '2024-01-03 23:59:59.999999')
    """
    end = resolve_as_of(data, as_of)
    data = data.upto(end)
    result = _analyze(
        data,
        as_of=end,
        stage_map=stage_map,
        by=by,
        steps=list(steps),
        window=window,
        entry=entry,
        period=period,
        compare_days=compare_days,
        journey_steps=journey_steps,
        journey_top=journey_top,
    )
    groups = _persona_groups(data, personas)
    if result.funnel is not None and groups is not None:
        reached = funnel_reached(data, result.steps, window=window, entry=entry, as_of=end)
        pf = funnel(
            data, result.steps, window=window, entry=entry, by=groups, as_of=end, reached=reached
        )
        return dataclasses.replace(result, persona_tests=group_tests(pf))
    note = (
        "The breakdown by persona is not available: this needs the funnel steps in the data "
        "and either a 'persona' column in customers or data the personas model can cluster"
    )
    return dataclasses.replace(
        result,
        not_available=[*result.not_available, note],
        missing_parts={**result.missing_parts, "persona": note},
    )


def findings(data: CXData, *, as_of: AsOf = None, **options: object) -> list[Finding]:
    """Return the lifecycle findings: ``analyze(data, as_of=as_of, **options).findings()``.

    Parameters
    ----------
    data
        The data.
    as_of
        As in :func:`analyze`.
    **options
        The options of :func:`analyze`.

    Returns
    -------
    list of Finding
        :meth:`LifecycleResult.findings`.
    """
    return analyze(data, as_of=as_of, **options).findings()  # type: ignore[arg-type]
