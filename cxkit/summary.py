"""The executive summary and the customer scorecard.

:func:`executive_summary` runs every analysis in :data:`ANALYSES` — each domain's
``analyze(data, as_of=..., **options)`` with the options its own report passes
(:func:`domain_options`), so a number never differs between two reports — and returns KPI tiles, the top findings per domain, the small lifecycle funnel, the customer
scorecard and the parts that are not available.

:func:`scorecard` is one row per customer: persona, current stage, last activity,
p_alive, churn probability, expected purchases and CLV over the horizon, CLV at risk,
latest NPS group, and a recommended focus from transparent rules
(:func:`recommend_focus`). It keeps the data's customer IDs; :func:`write_scores` and the
summary report publish them through :func:`cxkit.privacy.published_ids` (pseudonyms in a
report run unless ``publish.customer_ids`` is ``clear``).
"""

from __future__ import annotations

import html
import json
import os
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import ibis
import ibis.expr.types as ir
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
from IPython.display import HTML, display

from cxkit import churn, clv, lifecycle, personas, voc
from cxkit import scale as _scale
from cxkit.data import CXData, resolve_as_of
from cxkit.display import format_money, show_table
from cxkit.errors import ConvergenceError, DataError, NotAvailableError, UsageError
from cxkit.files import atomic_open
from cxkit.findings import Finding, not_available, show_findings, takeaway
from cxkit.privacy import published_ids, show_ids_note
from cxkit.result import AsOf, Result
from cxkit.scale import ScaleSettings

__all__ = [
    "ANALYSES",
    "FOCUS_CHURN_MIN",
    "FOCUS_RULES",
    "REFERRAL_EVENTS",
    "REVIEW_EVENTS",
    "VALUE_TILE",
    "DomainRun",
    "ExecutiveSummary",
    "FocusCondition",
    "FocusRule",
    "FocusThresholds",
    "ScaleScorecard",
    "as_engine_table",
    "at_risk_totals",
    "domain_options",
    "executive_summary",
    "focus_table",
    "focus_table_from_counts",
    "focus_table_scale",
    "focus_thresholds",
    "kpi_tiles",
    "nps_group",
    "recommend_focus",
    "run_domain",
    "scorecard",
    "scorecard_columns",
    "scorecard_expr",
    "scorecard_note",
    "show_focus",
    "show_method_notes",
    "show_section",
    "show_top_at_risk",
    "top_at_risk",
    "top_at_risk_scale",
    "write_scores",
    "write_scores_scale",
]

ACTIVE_DAYS = 90

#: The tile of the survey-to-value linkage: its label and the VoC finding it shows
#: (:meth:`cxkit.voc.SurveyValueResult.findings`).
VALUE_TILE: tuple[str, str] = ("Detractor vs promoter CLV (52 weeks)", "detractor_clv_gap_52w")


# --------------------------------------------------------------------------------------
# domain runs (each isolated: a missing table becomes a note, not a failure)
# --------------------------------------------------------------------------------------


T = TypeVar("T")


@dataclass
class DomainRun:
    """One domain's part of the summary: its result and findings, or why it is missing.

    Attributes
    ----------
    name
        The domain (``"lifecycle"``, ``"clv"``, ``"churn"``, ``"personas"``, ``"voc"``).
    findings
        ``result.findings()``: the very findings the domain report shows.
    result
        The domain's :class:`~cxkit.result.Result`, or None when it is not available.
    missing
        Why the data cannot support the domain, or None.
    seconds
        How long the domain took (a cache hit in a report run takes almost nothing).
    """

    name: str
    findings: list[Finding] = field(default_factory=list)
    result: Result | None = None
    missing: str | None = None
    seconds: float = 0.0


#: Every analysis the summary runs, in the order it shows them: ``analyze(data, *,
#: as_of, **options)`` of each domain package. The options are each domain report's
#: own, so a report run computes every result once and the numbers agree.
ANALYSES: dict[str, Callable[..., Result]] = {
    "lifecycle": lifecycle.analyze,
    "clv": clv.analyze,
    "churn": churn.analyze,
    "personas": personas.analyze,
    "voc": voc.analyze,
}


def domain_options(
    data: CXData,
    *,
    horizon_weeks: int = 52,
    random_state: int = 0,
    folder: str | Path | None = None,
) -> dict[str, dict[str, object]]:
    """Return the options each domain's ``analyze`` gets: those its own report passes.

    Parameters
    ----------
    data
        The data, cut at the summary's ``as_of``.
    horizon_weeks
        The CLV horizon.
    random_state
        The seed of every randomised step.
    folder
        The data folder, where a ``_personas.parquet`` of labels may be.

    Returns
    -------
    dict of str to dict
        Keyword arguments per domain name in :data:`ANALYSES`. The voice of the customer
        gets the persona labels the VoC report uses
        (:func:`cxkit.personas.resolve_persona_labels`).
    """
    out: dict[str, dict[str, object]] = {
        "lifecycle": {},
        "clv": {"horizon_weeks": horizon_weeks},
        "churn": {"random_state": random_state},
        "personas": {"random_state": random_state},
        "voc": {"random_state": random_state},
    }
    if data.has("responses", "survey", "score"):
        labels, _note = personas.resolve_persona_labels(data, folder=folder)
        out["voc"]["personas"] = labels
    return out


#: What a domain raises when the data cannot support it (too little, or no table): the
#: domain reports show these as "not available" notes, and so does the summary.
_UNSUPPORTED = (NotAvailableError, DataError, ConvergenceError)


def _why(err: Exception) -> str:
    """Return the note for a domain the data cannot support."""
    return str(err) if isinstance(err, NotAvailableError) else f"the data cannot support it: {err}"


def run_domain(
    name: str, analyze: Callable[..., Result], data: CXData, *, as_of: AsOf, **options: object
) -> DomainRun:
    """Run one domain's ``analyze``; data it cannot support becomes a note, not a failure.

    Parameters
    ----------
    name
        The domain's name.
    analyze
        Its ``analyze`` function.
    data
        The data.
    as_of
        Passed on as ``analyze(data, as_of=as_of, ...)``.
    **options
        The domain's other options.

    Returns
    -------
    DomainRun
        The result and its findings, or the reason it is not available (also when it
        has no findings because every part it tried is not available).
    """
    start = time.perf_counter()
    try:
        result = analyze(data, as_of=as_of, **options)
    except _UNSUPPORTED as err:  # as the domain reports: a note, not a failure
        return DomainRun(name, [], None, _why(err), time.perf_counter() - start)
    found = result.findings()
    # a domain that found nothing because its parts are not available is missing, and
    # says why (e.g. the voice of the customer on data without responses)
    missing = "; ".join(dict.fromkeys(result.not_available)) if not found else None
    return DomainRun(name, found, result, missing or None, time.perf_counter() - start)


# --------------------------------------------------------------------------------------
# scorecard
# --------------------------------------------------------------------------------------


def _customer_ids(data: CXData) -> ibis.Table:
    if data.has("customers", "customer_id"):
        return data.table("customers").select("customer_id").distinct()
    parts = [
        data.table(n).select("customer_id")
        for n in ("events", "orders", "responses")
        if data.has(n, "customer_id")
    ]
    if not parts:
        raise NotAvailableError("a table with customer_id", analysis="The scorecard")
    # ibis.union of a single table returns it unchanged, so deduplicate explicitly.
    return (ibis.union(*parts) if len(parts) > 1 else parts[0]).distinct()


def _last_activity(data: CXData) -> pd.DataFrame:
    parts = [
        data.table(n).select("customer_id", "ts")
        for n in ("events", "orders", "responses")
        if data.has(n, "customer_id", "ts")
    ]
    if not parts:
        return pd.DataFrame(columns=["customer_id", "last_activity_at"])
    union = ibis.union(*parts) if len(parts) > 1 else parts[0]
    out = union.group_by("customer_id").aggregate(last_activity_at=union.ts.max()).to_pandas()
    out["customer_id"] = out["customer_id"].astype("string")
    return out


def _spend(data: CXData) -> pd.DataFrame:
    if not data.has("orders", "customer_id", "amount"):
        return pd.DataFrame(
            {"customer_id": pd.Series(dtype="string"), "spend_to_date": pd.Series(dtype="float64")}
        )
    o = data.table("orders")
    out = o.group_by("customer_id").aggregate(spend_to_date=o.amount.sum()).to_pandas()
    out["customer_id"] = out["customer_id"].astype("string")
    return out


def _latest_nps(data: CXData) -> pd.DataFrame:
    if not data.has("responses", "survey", "score"):
        return pd.DataFrame(columns=["customer_id", "latest_nps"])
    r = data.table("responses")
    r = r.filter(r.survey.lower() == "nps")
    w = ibis.window(group_by=r.customer_id, order_by=[ibis.desc(r.ts), ibis.desc(r.response_id)])
    latest = r.mutate(rn=ibis.row_number().over(w)).filter(lambda t: t.rn == 0)
    out = latest.select("customer_id", latest_nps=latest.score).to_pandas()
    out["customer_id"] = out["customer_id"].astype("string")
    return out


def _advocacy_acts(data: CXData) -> pd.DataFrame:
    """Return who referred (:data:`REFERRAL_EVENTS`) and who referred or reviewed."""
    if not data.has("events", "event"):
        return pd.DataFrame(columns=["customer_id", "has_referred", "has_referred_or_reviewed"])
    e = data.table("events")
    name = e.event.lower()
    e = e.filter(name.isin([*REFERRAL_EVENTS, *REVIEW_EVENTS]))
    out = (
        e.group_by("customer_id")
        .aggregate(has_referred=e.event.lower().isin(list(REFERRAL_EVENTS)).any())
        .to_pandas()
    )
    out["customer_id"] = out["customer_id"].astype("string")
    out["has_referred"] = out["has_referred"].astype(bool)
    out["has_referred_or_reviewed"] = True
    return out


def nps_group(score: pd.Series) -> pd.Series:
    """Group NPS answers: 'promoter' (9–10), 'passive' (7–8), 'detractor' (0–6) or missing.

    Parameters
    ----------
    score
        NPS answers 0–10 (missing allowed).

    Returns
    -------
    pandas.Series
        The groups, as pandas ``string``.

    Examples
    --------
    >>> nps_group(pd.Series([10, 7, 3, None])).tolist()
    ['promoter', 'passive', 'detractor', <NA>]
    """
    s = pd.to_numeric(score, errors="coerce")
    out = pd.Series(pd.NA, index=score.index, dtype="string")
    out[s >= 9] = "promoter"
    out[(s >= 7) & (s <= 8)] = "passive"
    out[s <= 6] = "detractor"
    return out


# --------------------------------------------------------------------------------------
# recommended focus: one definition per rule, for the labels and for the words
# --------------------------------------------------------------------------------------

#: From this churn probability on a customer counts as likely to churn for the focus
#: rules: the churn report's medium and high risk bands (:data:`cxkit.churn.BAND_THRESHOLDS`).
FOCUS_CHURN_MIN: float = churn.BAND_THRESHOLDS[0]

#: The event names that count as a referral: those of the voice-of-the-customer report
#: (:func:`cxkit.voc.promoters_not_referred`), so both reports invite the same promoters.
REFERRAL_EVENTS: tuple[str, ...] = ("referral",)
#: The event names that count as a review.
REVIEW_EVENTS: tuple[str, ...] = ("review",)


@dataclass(frozen=True)
class FocusThresholds:
    """The numbers the focus rules compare with, for one scorecard (:func:`focus_thresholds`).

    Attributes
    ----------
    churn_min
        Win back from this churn probability on; ask for advocacy only below it.
    clv_median
        The median CLV over the customers who have one (NaN when none has).
    horizon_weeks
        The CLV horizon: the rules read the column ``clv_<horizon_weeks>w``.
    """

    churn_min: float
    clv_median: float
    horizon_weeks: int = 52

    @property
    def clv_column(self) -> str:
        """The scorecard's CLV column (``clv_52w`` for 52 weeks)."""
        return f"clv_{self.horizon_weeks}w"

    def words(self) -> dict[str, str]:
        """Return the thresholds as the rules' texts show them."""
        median = format_money(self.clv_median) if np.isfinite(self.clv_median) else "none: no CLV"
        return {
            "churn_min": f"{self.churn_min:.0%}",
            "clv_median": median,
            "horizon": str(self.horizon_weeks),
        }


@dataclass(frozen=True)
class FocusCondition:
    """One condition of a focus rule: its words, the column it reads and its test.

    Attributes
    ----------
    text
        What a customer has to meet it, after "customers with" (may use the
        :meth:`FocusThresholds.words` fields: ``{churn_min}``, ``{clv_median}``,
        ``{horizon}``).
    column
        The scorecard column it reads (``"{clv}"``: the CLV column of the horizon).
    needs
        What the column comes from, for the note when the data has none of it.
    fails
        What is true of the customers meeting the earlier conditions when none meets
        this one, starting "all have" (completes "the N customers with ...").
    test
        ``test(column, thresholds)`` -> a boolean Series; missing values never meet it.
    engine
        ``engine(column, thresholds)`` -> the same test as an ibis boolean expression (for
        the scale-mode scorecard, below), written beside ``test`` so
        that the words, the pandas labels and the engine labels cannot drift apart.
    """

    text: str
    column: str
    needs: str
    fails: str
    test: Callable[[pd.Series, FocusThresholds], pd.Series]
    engine: Callable[[ir.Value, FocusThresholds], ir.BooleanValue] | None = None

    def column_in(self, th: FocusThresholds) -> str:
        """Return the scorecard column this condition reads."""
        return th.clv_column if self.column == "{clv}" else self.column

    def describe(self, th: FocusThresholds) -> str:
        """Return the condition's words with the thresholds filled in."""
        return self.text.format(**th.words())

    def engine_mask(self, table: ir.Table, th: FocusThresholds) -> ir.BooleanValue:
        """Return who meets it as an ibis boolean (missing values never meet it)."""
        if self.engine is None:
            raise UsageError(f"the focus condition {self.text!r} has no engine test")
        return self.engine(table[self.column_in(th)], th).fill_null(False)

    def mask(self, frame: pd.DataFrame, th: FocusThresholds) -> np.ndarray | None:
        """Return who meets it, or None when the frame has no value of its column."""
        col = self.column_in(th)
        if col not in frame or not frame[col].notna().any():
            return None
        got = pd.Series(self.test(frame[col], th), index=frame.index)
        return got.astype("boolean").fillna(False).to_numpy(dtype=bool)


@dataclass(frozen=True)
class FocusRule:
    """A recommended focus and the conditions a customer must all meet to get it.

    The same object assigns the label (:func:`recommend_focus`) and states the rule
    (:func:`focus_table`), so the stated rule is the applied one.

    Attributes
    ----------
    focus
        The label.
    conditions
        All must hold; none means everyone (the last rule).
    """

    focus: str
    conditions: tuple[FocusCondition, ...] = ()

    def describe(self, th: FocusThresholds) -> str:
        """Return the rule in words, thresholds filled in."""
        if not self.conditions:
            return "everyone else"
        parts = [c.describe(th) for c in self.conditions]
        joined = parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]
        return f"customers with {joined}"

    def matches(self, frame: pd.DataFrame, th: FocusThresholds) -> np.ndarray:
        """Return who meets every condition (a condition without data meets no one)."""
        out = np.ones(len(frame), dtype=bool)
        for cond in self.conditions:
            got = cond.mask(frame, th)
            out &= np.zeros(len(frame), dtype=bool) if got is None else got
        return out

    def meeting(self, frame: pd.DataFrame, th: FocusThresholds) -> list[int | None]:
        """Count who meets the first condition, the first two, ... of the rule.

        The counts :meth:`why_none_from` reads: ``None`` for the first condition whose
        column has no value (and nothing after it).
        """
        have = np.ones(len(frame), dtype=bool)
        counts: list[int | None] = []
        for cond in self.conditions:
            got = cond.mask(frame, th)
            if got is None:
                counts.append(None)
                break
            have = have & got
            counts.append(int(have.sum()))
        return counts

    def why_none(self, frame: pd.DataFrame, th: FocusThresholds) -> str:
        """Say why no customer meets the rule's own conditions (or ``""`` when some do)."""
        return self.why_none_from(self.meeting(frame, th), th, total=len(frame))

    def why_none_from(
        self, meeting: Sequence[int | None], th: FocusThresholds, *, total: int
    ) -> str:
        """Say :meth:`why_none` from counts, as either mode counts them.

        Parameters
        ----------
        meeting
            How many customers meet the first condition, the first two, ...
            (:meth:`meeting`; ``None`` for a condition whose column has no value).
        th
            The thresholds.
        total
            How many customers the scorecard has.

        Returns
        -------
        str
            Why nobody meets the conditions, or ``""`` when some customer does.

        Examples
        --------
        >>> th = FocusThresholds(0.5, 100.0, 52)
        >>> FOCUS_RULES[0].why_none_from([None], th, total=3)
        "not available: this needs NPS answers (table 'responses' with survey 'nps')"
        """
        have = total
        done: list[str] = []
        for cond, now in zip(self.conditions, meeting, strict=False):
            if now is None:
                return f"not available: this needs {cond.needs}"
            if now == 0:
                if not done:
                    return f"no customer has {cond.describe(th)}"
                who = done[0] if len(done) == 1 else ", ".join(done[:-1]) + " and " + done[-1]
                fails = cond.fails.format(**th.words())
                if have == 1:
                    return f"the one customer with {who} {fails.replace('all have', 'has', 1)}"
                return f"the {have:,} customers with {who} {fails}"
            have, done = now, [*done, cond.describe(th)]
        return ""


# each test twice, side by side: on a pandas column (memory mode) and on an ibis column
# (scale mode, in the engine); the rules below name both


def _promoter(s: pd.Series, th: FocusThresholds) -> pd.Series:
    return s.astype("string") == "promoter"


def _promoter_expr(c: ir.Value, th: FocusThresholds) -> ir.BooleanValue:
    return c.cast("string") == "promoter"


def _detractor(s: pd.Series, th: FocusThresholds) -> pd.Series:
    return s.astype("string") == "detractor"


def _detractor_expr(c: ir.Value, th: FocusThresholds) -> ir.BooleanValue:
    return c.cast("string") == "detractor"


def _likely_to_churn(s: pd.Series, th: FocusThresholds) -> pd.Series:
    return pd.to_numeric(s, errors="coerce") >= th.churn_min


def _likely_to_churn_expr(c: ir.Value, th: FocusThresholds) -> ir.BooleanValue:
    return c.cast("float64") >= th.churn_min


def _unlikely_to_churn(s: pd.Series, th: FocusThresholds) -> pd.Series:
    return pd.to_numeric(s, errors="coerce") < th.churn_min


def _unlikely_to_churn_expr(c: ir.Value, th: FocusThresholds) -> ir.BooleanValue:
    return c.cast("float64") < th.churn_min


def _clv_at_least_median(s: pd.Series, th: FocusThresholds) -> pd.Series:
    return pd.to_numeric(s, errors="coerce") >= th.clv_median


def _clv_at_least_median_expr(c: ir.Value, th: FocusThresholds) -> ir.BooleanValue:
    if not np.isfinite(th.clv_median):  # no CLV anywhere: nobody meets it (as NaN in pandas)
        return c.isnull() & c.notnull()
    return c.cast("float64") >= th.clv_median


def _not_referred(s: pd.Series, th: FocusThresholds) -> pd.Series:
    return ~s.astype("boolean")


def _not_referred_expr(c: ir.Value, th: FocusThresholds) -> ir.BooleanValue:
    return ~c.cast("boolean")


_NPS_NEEDS = "NPS answers (table 'responses' with survey 'nps')"
_CHURN_NEEDS = "churn scores (the churn model on orders)"
_CLV_NEEDS = "CLV (the BG/NBD and Gamma-Gamma models on orders)"

#: The recommended-focus rules, in the order they are applied (the first that matches
#: wins). Each rule's words and its test come from the same :class:`FocusCondition`s.
FOCUS_RULES: tuple[FocusRule, ...] = (
    FocusRule(
        "service recovery",
        (
            FocusCondition(
                "a latest NPS answer of 0–6 (detractor)",
                "nps_group",
                _NPS_NEEDS,
                "all have another NPS answer",
                _detractor,
                _detractor_expr,
            ),
        ),
    ),
    FocusRule(
        "win back",
        (
            FocusCondition(
                "a churn probability of {churn_min} or more",
                "churn_probability",
                _CHURN_NEEDS,
                "all have a churn probability below {churn_min}",
                _likely_to_churn,
                _likely_to_churn_expr,
            ),
            FocusCondition(
                "a {horizon}-week CLV at or above the median of customers with a CLV "
                "({clv_median})",
                "{clv}",
                _CLV_NEEDS,
                "all have a {horizon}-week CLV below the median ({clv_median})",
                _clv_at_least_median,
                _clv_at_least_median_expr,
            ),
        ),
    ),
    FocusRule(
        "ask for advocacy",
        (
            FocusCondition(
                "a latest NPS answer of 9–10 (promoter)",
                "nps_group",
                _NPS_NEEDS,
                "all have another NPS answer",
                _promoter,
                _promoter_expr,
            ),
            FocusCondition(
                "a churn probability below {churn_min}",
                "churn_probability",
                _CHURN_NEEDS,
                "all have a churn probability of {churn_min} or more",
                _unlikely_to_churn,
                _unlikely_to_churn_expr,
            ),
            FocusCondition(
                "no referral yet",
                "has_referred",
                "referral events (table 'events')",
                "all have referred someone already",
                _not_referred,
                _not_referred_expr,
            ),
        ),
    ),
    FocusRule("nurture"),
)


def focus_thresholds(frame: pd.DataFrame, *, horizon_weeks: int = 52) -> FocusThresholds:
    """Return the thresholds the focus rules use on a scorecard.

    Parameters
    ----------
    frame
        The scorecard (or any frame with its columns).
    horizon_weeks
        The CLV horizon: the median is taken over ``clv_<horizon_weeks>w``.

    Returns
    -------
    FocusThresholds
        :data:`FOCUS_CHURN_MIN` and the median CLV of the customers who have one.

    Examples
    --------
    >>> focus_thresholds(pd.DataFrame({"clv_52w": [1.0, 3.0, None, 10.0]})).clv_median
    3.0
    """
    col = f"clv_{horizon_weeks}w"
    clv = pd.to_numeric(frame[col], errors="coerce") if col in frame else pd.Series(np.nan)
    median = float(clv.median()) if clv.notna().any() else float("nan")
    return FocusThresholds(FOCUS_CHURN_MIN, median, horizon_weeks)


def recommend_focus(
    frame: pd.DataFrame,
    *,
    horizon_weeks: int = 52,
    thresholds: FocusThresholds | None = None,
) -> pd.Series:
    """Apply :data:`FOCUS_RULES` in order to a scorecard frame (the first that matches wins).

    Reads ``nps_group``, ``churn_probability``, ``clv_<horizon_weeks>w`` and
    ``has_referred`` where present; a missing input never triggers its rule.

    Parameters
    ----------
    frame
        The scorecard (or any frame with its columns).
    horizon_weeks
        The CLV horizon.
    thresholds
        The thresholds; by default :func:`focus_thresholds` of ``frame``.

    Returns
    -------
    pandas.Series
        ``recommended_focus``, as pandas ``string``.

    Examples
    --------
    >>> card = pd.DataFrame({"nps_group": ["detractor", None, "promoter", None],
    ...                      "churn_probability": [0.9, 0.6, 0.1, 0.7],
    ...                      "clv_52w": [500.0, 900.0, 50.0, 10.0],
    ...                      "has_referred": [False, False, False, False]})
    >>> recommend_focus(card).tolist()
    ['service recovery', 'win back', 'ask for advocacy', 'nurture']
    """
    th = thresholds or focus_thresholds(frame, horizon_weeks=horizon_weeks)
    focus = np.full(len(frame), FOCUS_RULES[-1].focus, dtype=object)
    free = np.ones(len(frame), dtype=bool)
    for rule in FOCUS_RULES:
        hit = rule.matches(frame, th) & free
        focus[hit] = rule.focus
        free &= ~hit
    return pd.Series(focus, index=frame.index, dtype="string", name="recommended_focus")


def focus_table(
    frame: pd.DataFrame | ScaleScorecard,
    *,
    horizon_weeks: int = 52,
    thresholds: FocusThresholds | None = None,
) -> pd.DataFrame:
    """State every focus rule with its thresholds and count the customers it got.

    Parameters
    ----------
    frame
        The scorecard, with its ``recommended_focus`` (computed here when absent); a
        scale-mode scorecard (:class:`cxkit.summary.ScaleScorecard`) is counted in
        the engine with its own thresholds.
    horizon_weeks
        The CLV horizon.
    thresholds
        The thresholds; by default :func:`focus_thresholds` of ``frame``.

    Returns
    -------
    pandas.DataFrame
        One row per rule of :data:`FOCUS_RULES`, in the order they are applied:
        ``focus, rule, customers, share, note``. ``note`` says why a rule got no
        customer (nobody meets it, the data lacks what it needs, or an earlier rule
        took everyone who meets it); it is empty otherwise.

    Examples
    --------
    >>> card = pd.DataFrame({"nps_group": [None, None], "churn_probability": [0.9, 0.1],
    ...                      "clv_52w": [5.0, 1.0], "has_referred": [False, False]})
    >>> t = focus_table(card)
    >>> t.customers.tolist(), t.note.iloc[0]
    ([0, 1, 0, 1], "not available: this needs NPS answers (table 'responses' with survey 'nps')")
    """
    if isinstance(frame, ScaleScorecard):  # scale mode: counted in the engine
        return focus_table_scale(frame)
    th = thresholds or focus_thresholds(frame, horizon_weeks=horizon_weeks)
    if "recommended_focus" in frame:
        labels = frame["recommended_focus"].astype("string")
    else:
        labels = recommend_focus(frame, thresholds=th)
    labels = labels.to_numpy(dtype=object)

    def taken_by(i: int) -> list[str]:
        own = FOCUS_RULES[i].matches(frame, th)
        return [r.focus for r in FOCUS_RULES[:i] if (own & (labels == r.focus)).any()]

    return focus_table_from_counts(
        th,
        total=len(frame),
        customers=[int((labels == rule.focus).sum()) for rule in FOCUS_RULES],
        meeting=lambda i: FOCUS_RULES[i].meeting(frame, th),
        taken_by=taken_by,
    )


def focus_table_from_counts(
    th: FocusThresholds,
    *,
    total: int,
    customers: Sequence[int],
    meeting: Callable[[int], Sequence[int | None]],
    taken_by: Callable[[int], Sequence[str]],
) -> pd.DataFrame:
    """Assemble :func:`focus_table` from counts: the one assembly of both modes.

    Memory mode counts on the scorecard frame, scale mode in one engine aggregate
    (:func:`focus_table_scale`); the rules' words and notes come from here.

    Parameters
    ----------
    th
        The thresholds.
    total
        How many customers the scorecard has.
    customers
        For each rule of :data:`FOCUS_RULES`, how many customers got its label.
    meeting
        ``meeting(i)``: :meth:`FocusRule.meeting` of rule ``i``; asked only for a rule
        that got nobody.
    taken_by
        ``taken_by(i)``: the earlier rules whose label went to customers who meet all of
        rule ``i``'s conditions; asked only when some customer meets them.

    Returns
    -------
    pandas.DataFrame
        ``focus, rule, customers, share, note`` (see :func:`focus_table`).

    Examples
    --------
    Four customers: one under the first rule, three under the second, and the one who
    meets all three conditions of "ask for advocacy" is among them:

    >>> th = FocusThresholds(0.5, 100.0, 52)
    >>> t = focus_table_from_counts(th, total=4, customers=[1, 3, 0, 0],
    ...     meeting=lambda i: [2, 1, 1], taken_by=lambda i: ["win back"])
    >>> t.note.tolist()[2:]
    ['the one customer who meets it is under an earlier rule (win back)', 'every customer meets an earlier rule']
    """
    rows = []
    for i, (rule, n) in enumerate(zip(FOCUS_RULES, customers, strict=True)):
        note = ""
        if n == 0:
            counts = meeting(i)
            note = rule.why_none_from(counts, th, total=total)
            if not note and rule.conditions:
                took = ", ".join(taken_by(i))
                k = counts[-1]
                note = (
                    f"the one customer who meets it is under an earlier rule ({took})"
                    if k == 1
                    else f"the {k:,} customers who meet it are all under an earlier rule ({took})"
                )
            elif not note:
                note = "every customer meets an earlier rule"
        rows.append(
            {
                "focus": rule.focus,
                "rule": rule.describe(th),
                "customers": n,
                "share": n / max(total, 1),
                "note": note,
            }
        )
    return pd.DataFrame(rows)


def scorecard(
    data: CXData,
    *,
    as_of: AsOf = None,
    horizon_weeks: int = 52,
    random_state: int = 0,
    churn_scores: pd.DataFrame | None = None,
    clv_frame: pd.DataFrame | None = None,
    personas: pd.DataFrame | None = None,
    churn_result: churn.ChurnResult | None = None,
) -> pd.DataFrame:
    """One row per customer with every score and a recommended focus.

    Parameters
    ----------
    data
        Loaded data.
    as_of
        The date the scorecard stands at.
    horizon_weeks
        CLV horizon.
    churn_scores, clv_frame, personas
        Precomputed domain results (from :func:`executive_summary`); computed here when
        absent and the data supports them.
    churn_result
        The churn result to take ``churn_scores`` from when they are not given; a
        scale-mode result leaves churn out with a note (its scores stay in the engine,
        :func:`cxkit.churn.held_scores`).

    Returns
    -------
    pandas.DataFrame
        ``customer_id, persona, current_stage, last_activity_at, spend_to_date, p_alive,
        churn_probability, risk_band, expected_purchases_52w, clv_52w, clv_at_risk_52w,
        latest_nps, nps_group, has_referred_or_reviewed, has_referred, recommended_focus``
        (:func:`recommend_focus`); columns whose
        domain is unavailable are missing values. ``attrs["notes"]`` says what is absent.
        Customer IDs are the data's own: what is published goes through
        :func:`cxkit.privacy.published_ids` (:func:`write_scores` does that).
    """
    end = resolve_as_of(data, as_of)
    data = data.upto(end)
    notes: list[str] = []
    card = _customer_ids(data).to_pandas()
    card["customer_id"] = card["customer_id"].astype("string")
    card = card.sort_values("customer_id").reset_index(drop=True)
    h = f"{horizon_weeks}w"

    if personas is None:
        personas = _try(notes, lambda: _personas(data, end, random_state))
    if personas is not None:
        card = card.merge(personas[["customer_id", "persona"]], on="customer_id", how="left")
    else:
        card["persona"] = pd.Series(pd.NA, index=card.index, dtype="string")

    stage = _try(notes, lambda: _stages(data, end))
    if stage is not None:
        card = card.merge(stage, on="customer_id", how="left")
    else:
        card["current_stage"] = pd.Series(pd.NA, index=card.index, dtype="string")

    card = card.merge(_last_activity(data), on="customer_id", how="left")
    card = card.merge(_spend(data), on="customer_id", how="left")
    card["spend_to_date"] = card["spend_to_date"].fillna(0.0)

    if clv_frame is None:
        clv_frame = _try(
            notes, lambda: clv.analyze(data, as_of=end, horizon_weeks=horizon_weeks).values
        )
    cols = ["p_alive", f"expected_purchases_{h}", f"clv_{h}"]
    if clv_frame is not None:
        card = card.merge(clv_frame[["customer_id", *cols]], on="customer_id", how="left")
    else:
        for c in cols:
            card[c] = np.nan

    if churn_scores is None:
        churn_scores = _try(
            notes, lambda: churn.held_scores(churn_result or _churn(data, end, random_state))
        )
    if churn_scores is not None:
        card = card.merge(
            churn_scores[["customer_id", "churn_probability", "risk_band"]],
            on="customer_id",
            how="left",
        )
    else:
        card["churn_probability"] = np.nan
        card["risk_band"] = pd.Series(pd.NA, index=card.index, dtype="string")
    card[f"clv_at_risk_{h}"] = card["churn_probability"] * card[f"clv_{h}"]

    card = card.merge(_latest_nps(data), on="customer_id", how="left")
    card["latest_nps"] = card["latest_nps"].astype("Int64")
    card["nps_group"] = nps_group(card["latest_nps"])
    card = card.merge(_advocacy_acts(data), on="customer_id", how="left")
    for flag in ("has_referred", "has_referred_or_reviewed"):
        card[flag] = card[flag].astype("boolean").fillna(False)
    card["recommended_focus"] = recommend_focus(card, horizon_weeks=horizon_weeks)
    card["risk_band"] = card["risk_band"].astype("string")
    card = card[list(scorecard_columns(horizon_weeks))]  # the order of both modes
    card.attrs["notes"] = notes
    card.attrs["as_of"] = str(end.date())
    card.attrs["horizon_weeks"] = horizon_weeks
    return card


def _try(notes: list[str], fn: Callable[[], T]) -> T | None:
    try:
        return fn()
    except _UNSUPPORTED as err:
        notes.append(_why(err))
        return None


def _personas(data: CXData, end: pd.Timestamp, random_state: int) -> pd.DataFrame:
    return personas.persona_labels(data, as_of=end, random_state=random_state).reset_index()


def _stages(data: CXData, end: pd.Timestamp) -> pd.DataFrame:
    # only the two columns leave the engine (not every stage's time)
    expr = lifecycle.stage_times_expr(data, as_of=end).select("customer_id", "current_stage")
    out = expr.to_pandas().astype({"customer_id": "string", "current_stage": "string"})
    return out.sort_values("customer_id", kind="stable").reset_index(drop=True)


def _churn(data: CXData, end: pd.Timestamp, random_state: int) -> churn.ChurnResult:
    # as the churn report calls it: data cut at ``end``, as_of from the data
    return churn.analyze(data.upto(end), random_state=random_state)


# --------------------------------------------------------------------------------------
# KPI tiles and the whole summary
# --------------------------------------------------------------------------------------


def _active_customers(data: CXData, end: pd.Timestamp, days: int = ACTIVE_DAYS) -> dict[str, int]:
    parts = [
        data.table(n).select("customer_id", "ts")
        for n in ("events", "orders", "responses")
        if data.has(n, "customer_id", "ts")
    ]
    if not parts:
        raise NotAvailableError(
            "an activity table (events, orders or responses)", analysis="Active customers"
        )
    union = ibis.union(*parts) if len(parts) > 1 else parts[0]
    start = end - pd.Timedelta(days=days)
    prev = start - pd.Timedelta(days=days)
    now_n = union.customer_id.nunique(where=(union.ts > start) & (union.ts <= end))
    prev_n = union.customer_id.nunique(where=(union.ts > prev) & (union.ts <= start))
    row = union.aggregate(now=now_n, prev=prev_n).to_pandas().iloc[0]
    return {"now": int(row["now"]), "prev": int(row["prev"])}


def kpi_tiles(
    data: CXData,
    *,
    as_of: AsOf = None,
    domains: dict[str, DomainRun] | None = None,
    card: pd.DataFrame | ScaleScorecard | None = None,
    value: voc.SurveyValueResult | None = None,
) -> pd.DataFrame:
    """Build the KPI tiles: one row each with value, interval or n and a sentence.

    NPS, CSAT, CES, the churn rate, total CLV and the detractor − promoter gap in CLV
    are the very :class:`Finding` records of their domain reports (same numbers, same
    sentences). Customers and active customers are counted here; CLV at risk is the
    scorecard's sum of CLV × churn probability.

    Parameters
    ----------
    data
        The data.
    as_of
        The instant the tiles stand at (:func:`cxkit.data.resolve_as_of`).
    domains
        The domain runs of :func:`executive_summary` (their findings feed the tiles).
    card
        The scorecard, for CLV at risk (a scale-mode scorecard is summed in the engine).
    value
        The survey-to-value linkage (:func:`cxkit.voc.survey_value`), for why the
        detractor − promoter tile is not available when it is not.

    Returns
    -------
    pandas.DataFrame
        ``kpi, value, unit, ci_low, ci_high, n, sentence, small_n, available``.
    """
    end = resolve_as_of(data, as_of)
    data = data.upto(end)
    domains = domains or {}
    rows: list[dict[str, object]] = []

    def add(
        kpi: str,
        value: float = np.nan,
        unit: str = "",
        sentence: str = "",
        *,
        ci_low: float | None = None,
        ci_high: float | None = None,
        n: int | None = None,
        small_n: bool = False,
        available: bool = True,
    ) -> None:
        rows.append(
            {
                "kpi": kpi,
                "value": value,
                "unit": unit,
                "ci_low": ci_low,
                "ci_high": ci_high,
                "n": n,
                "sentence": sentence,
                "small_n": small_n,
                "available": available,
            }
        )

    def from_finding(kpi: str, domain: str, metric: str) -> None:
        run = domains.get(domain)
        found = [f for f in (run.findings if run else []) if f.metric == metric]
        if found:
            f = found[0]
            add(
                kpi,
                f.value,
                f.unit,
                f.sentence,
                ci_low=f.ci_low,
                ci_high=f.ci_high,
                n=f.n,
                small_n=f.small_n,
            )
        else:
            # the domain's own note for this KPI when it has one, not all of its notes
            notes = run.result.not_available if run is not None and run.result else []
            own = [n for n in notes if n.startswith(f"{kpi} is not available")]
            why = run.missing if run is not None and run.missing else f"no {metric} finding"
            sentence = own[0].rstrip(".") if own else f"{kpi} is not available: {why}"
            add(kpi, sentence=f"{sentence}.", available=False)

    n_customers = int(_customer_ids(data).count().to_pandas())
    add(
        "Customers",
        n_customers,
        "customers",
        f"{n_customers:,} customers in the data.",
        n=n_customers,
    )
    try:
        act = _active_customers(data, end)
        change = act["now"] - act["prev"]
        add(
            "Active customers",
            act["now"],
            "customers",
            f"{act['now']:,} customers were active in the last {ACTIVE_DAYS} days "
            f"({change:+,} vs the {ACTIVE_DAYS} days before).",
            n=act["now"],
        )
    except NotAvailableError as err:
        add("Active customers", sentence=str(err), available=False)
    from_finding("NPS", "voc", "nps")
    from_finding("CSAT", "voc", "csat")
    from_finding("CES", "voc", "ces")
    from_finding("Churn rate", "churn", "churn_rate")
    from_finding("Total CLV (52 weeks)", "clv", "total_clv_52w")
    if isinstance(card, ScaleScorecard):  # scale mode: sums in the engine
        sums = at_risk_totals(card)
        total, at_risk, n_val = sums["clv"], sums["at_risk"], int(sums["n"])
        has_risk = n_val > 0
    elif card is not None:
        has_risk = bool(card["clv_at_risk_52w"].notna().any())
        if has_risk:
            total = float(card["clv_52w"].sum())
            at_risk = float(card["clv_at_risk_52w"].sum())
            n_val = int(card["clv_at_risk_52w"].notna().sum())
    else:
        has_risk = False
    if has_risk:
        share = at_risk / total if total else np.nan
        add(
            "CLV at risk (52 weeks)",
            at_risk,
            "currency",
            f"{at_risk:,.0f} ({share:.0%}) of the expected 52-week value sits with customers "
            f"likely to churn (sum of CLV × churn probability over {n_val:,} customers).",
            n=n_val,
        )
    else:
        add(
            "CLV at risk (52 weeks)",
            sentence="CLV at risk needs both CLV and churn scores.",
            available=False,
        )
    gap_kpi, gap_metric = VALUE_TILE
    if any(f.metric == gap_metric for f in (domains["voc"].findings if "voc" in domains else [])):
        from_finding(gap_kpi, "voc", gap_metric)
    else:  # the linkage's own note: no NPS answers, or no CLV
        notes = [] if value is None else [value.unavailable.get(k) for k in ("linkage", "clv")]
        why = next((n for n in notes if n), f"{gap_kpi} needs NPS answers and CLV.")
        add(gap_kpi, sentence=why.rstrip(".") + ".", available=False)
    return pd.DataFrame(rows)


@dataclass
class ExecutiveSummary:
    """Everything notebook 90 shows.

    Attributes
    ----------
    as_of
        The instant the summary stands at.
    kpis
        The KPI tiles (:func:`kpi_tiles`).
    domains
        One :class:`DomainRun` per domain of :data:`ANALYSES`.
    funnel
        The lifecycle ladder: only the stages the data supports, as in the lifecycle
        report (None when there is none).
    scorecard
        One row per customer (:func:`scorecard`); in scale mode (a domain result kept
        its rows in the engine) the engine scorecard
        (:class:`cxkit.summary.ScaleScorecard`), which :func:`focus_table`,
        :func:`top_at_risk`, :func:`kpi_tiles` and :func:`write_scores` take as well.
    missing
        ``"<domain>: <why>"`` for each domain that is not available.
    stages_missing
        The lifecycle report's note naming the stages the data cannot support, or None.
    survey_value
        CLV, churn risk and realised revenue by NPS group and persona
        (:func:`cxkit.voc.survey_value` on the CLV and churn results above), whose
        findings are among the voice of the customer's; None when the voice of the
        customer did not run.
    """

    as_of: pd.Timestamp
    kpis: pd.DataFrame
    domains: dict[str, DomainRun]
    funnel: pd.DataFrame | None
    scorecard: pd.DataFrame | ScaleScorecard
    missing: list[str]
    stages_missing: str | None = None
    survey_value: voc.SurveyValueResult | None = None

    @property
    def mode(self) -> str:
        """``"scale"`` when the scorecard is an engine expression, else ``"memory"``."""
        return "scale" if isinstance(self.scorecard, ScaleScorecard) else "memory"

    def mode_sentence(self) -> str:
        """Say in which mode the scorecard was built (for the page).

        Returns
        -------
        str
            :func:`cxkit.scale.describe_settings` of the scale settings in scale mode.
        """
        if isinstance(self.scorecard, ScaleScorecard):
            return _scale.describe_settings(self.scorecard.settings) + (
                " The scorecard stays in the engine: its counts, the customers with the most "
                "value at risk and the exported files are computed there."
            )
        return _scale.describe_settings(_scale.ScaleSettings())

    def top_findings(self, per_domain: int = 3) -> list[Finding]:
        """Return the most important findings of each domain, small groups never headlined.

        Parameters
        ----------
        per_domain
            How many findings per domain.

        Returns
        -------
        list of Finding
            By domain, most important first.
        """
        out: list[Finding] = []
        for run in self.domains.values():
            ranked = sorted((f for f in run.findings if not f.small_n), key=lambda f: -f.importance)
            out.extend(ranked[:per_domain])
        return out

    def focus_table(self) -> pd.DataFrame:
        """State every focus rule as applied to the scorecard, with its customers.

        Returns
        -------
        pandas.DataFrame
            :func:`focus_table` of the scorecard: ``focus, rule, customers, share,
            note``, one row per rule in the order they are applied.
        """
        weeks = int(self.scorecard.attrs.get("horizon_weeks", 52))
        return focus_table(self.scorecard, horizon_weeks=weeks)

    def focus_counts(self) -> pd.DataFrame:
        """Count the customers per recommended focus, every rule in the order applied.

        Returns
        -------
        pandas.DataFrame
            ``recommended_focus, customers, share``; a rule nobody meets has 0.
        """
        table = self.focus_table()
        return table[["focus", "customers", "share"]].rename(columns={"focus": "recommended_focus"})


def executive_summary(
    data: CXData,
    *,
    as_of: AsOf = None,
    horizon_weeks: int = 52,
    random_state: int = 0,
    folder: str | Path | None = None,
) -> ExecutiveSummary:
    """Run every available domain once and assemble the executive summary.

    Parameters
    ----------
    data
        The data.
    as_of
        The instant the summary stands at (:func:`cxkit.data.resolve_as_of`).
    horizon_weeks
        The CLV horizon.
    random_state
        The seed of every randomised step (as in the domain reports).
    folder
        The data folder (persona labels in ``_personas.parquet``, as the VoC report
        reads them).

    Returns
    -------
    ExecutiveSummary
        KPI tiles, one :class:`DomainRun` per domain of :data:`ANALYSES`, the stage
        funnel, the scorecard and what is missing.

    Notes
    -----
    Scale mode: when a domain result keeps its per-customer rows in the engine, the
    scorecard is the engine expression of :func:`cxkit.summary.scorecard_expr`
    and no per-customer frame is collected for it. The contract for the inputs: a
    churn result of :class:`cxkit.churn.ScaleChurnResult` (its ``scores_table``); a CLV
    result with a ``values_table`` attribute (an ibis table, or the name of an engine
    table opened with :func:`cxkit.scale.open_table`) holding ``customer_id, p_alive,
    expected_purchases_<h>w, clv_<h>w``; a persona result with a ``labels_table``
    attribute (likewise) holding ``customer_id, persona``. A domain that ran in memory
    mode alongside gives its frame, uploaded to the engine.
    """
    end = resolve_as_of(data, as_of)
    cut = data.upto(end)
    options = domain_options(
        cut, horizon_weeks=horizon_weeks, random_state=random_state, folder=folder
    )
    domains = {
        name: run_domain(name, analyze, cut, as_of=end, **options[name])
        for name, analyze in ANALYSES.items()
    }
    persona_frame = None
    persona_result = domains["personas"].result
    if isinstance(persona_result, personas.PersonasResult) and not _scale_results(persona_result):
        persona_frame = personas.persona_labels(cut, report=persona_result).reset_index()
    churn_result = domains["churn"].result
    clv_result = domains["clv"].result
    card: pd.DataFrame | ScaleScorecard
    if _scale_results(churn_result, clv_result, persona_result):
        card = _scale_scorecard(cut, end, horizon_weeks, domains, persona_frame)
    else:
        card = scorecard(
            cut,
            as_of=end,
            horizon_weeks=horizon_weeks,
            random_state=random_state,
            clv_frame=clv_result.values if isinstance(clv_result, clv.ClvResult) else None,
            personas=persona_frame,
            churn_result=churn_result if isinstance(churn_result, churn.ChurnResult) else None,
        )
    funnel, stages_missing = _stage_ladder(cut, end, domains["lifecycle"].result)
    value = None
    voc_run = domains["voc"]
    if voc_run.result is not None:  # the VoC report's linkage, on the results above
        value = voc.survey_value(
            cut,
            as_of=end,
            clv=clv_result if isinstance(clv_result, clv.ClvResult) else None,
            churn=churn_result if isinstance(churn_result, churn.ChurnResult) else None,
            personas=options["voc"].get("personas"),  # type: ignore[arg-type]
            notes={k: v for k in ("clv", "churn") if (v := domains[k].missing)},
        )
        voc_run.findings.extend(value.findings())
    kpis = kpi_tiles(cut, as_of=end, domains=domains, card=card, value=value)
    missing = [f"{name}: {run.missing}" for name, run in domains.items() if run.missing]
    return ExecutiveSummary(
        end, kpis, domains, funnel, card, missing, stages_missing, survey_value=value
    )


def _scale_results(*results: object) -> bool:
    """Tell whether any domain result keeps its per-customer rows in the engine."""
    return any(
        isinstance(r, churn.ScaleChurnResult)
        or isinstance(getattr(r, "values_table", None), str | ibis.Table)
        or isinstance(getattr(r, "labels_table", None), str | ibis.Table)
        for r in results
    )


def _scale_scorecard(
    data: CXData,
    end: pd.Timestamp,
    horizon_weeks: int,
    domains: dict[str, DomainRun],
    persona_frame: pd.DataFrame | None,
) -> ScaleScorecard:
    """Build the engine scorecard from the domain results (engine tables or frames)."""
    notes = [_why_missing(name, run) for name, run in domains.items() if run.missing]
    notes = [n for n in notes if n and not n.startswith(("lifecycle", "voc"))]
    ch, cv, pe = (domains[k].result for k in ("churn", "clv", "personas"))
    scores = None
    if isinstance(ch, churn.ScaleChurnResult):
        scores = as_engine_table(ch, data.con, attr="scores_table")
    elif isinstance(ch, churn.ChurnResult):  # memory-mode scores: uploaded to the engine
        scores = as_engine_table(
            ch.scores[["customer_id", "churn_probability", "risk_band"]].astype(
                {"customer_id": "string", "risk_band": "string"}
            ),
            data.con,
            attr="scores_table",
        )
    values = None
    if isinstance(getattr(cv, "values_table", None), str | ibis.Table):
        values = as_engine_table(cv, data.con, attr="values_table")
    elif isinstance(cv, clv.ClvResult):
        values = as_engine_table(cv.values, data.con, attr="values_table")
    labels = None
    if isinstance(getattr(pe, "labels_table", None), str | ibis.Table):
        labels = as_engine_table(pe, data.con, attr="labels_table")
    elif persona_frame is not None:
        labels = as_engine_table(
            persona_frame[["customer_id", "persona"]], data.con, attr="labels_table"
        )
    return scorecard_expr(
        data,
        as_of=end,
        horizon_weeks=horizon_weeks,
        churn_scores=scores,
        clv_values=values,
        persona_labels=labels,
        notes=notes,
    )


def _why_missing(name: str, run: DomainRun) -> str:
    """Return ``"<domain>: <why>"`` for a domain that did not run."""
    return f"{name}: {run.missing}" if run.missing else ""


def _stage_ladder(
    data: CXData, end: pd.Timestamp, life: Result | None
) -> tuple[pd.DataFrame | None, str | None]:
    """Return the lifecycle ladder of the stages the data supports, and the missing ones.

    The lifecycle report's own ladder and note when it ran; otherwise the same, computed
    here on the stages the data can support (never a stage drawn at a made-up 100% or 0%).
    """
    if isinstance(life, lifecycle.LifecycleResult):  # the report's ladder, not computed again
        return life.stage_funnel, life.missing_parts.get("stages")
    smap, missing_stages = lifecycle.available_stages(data)
    note = None
    if missing_stages:
        note = "Stages not available in this data: " + "; ".join(
            f"{stage} needs {need}" for stage, need in missing_stages.items()
        )
    if not smap:
        return None, note
    try:
        return lifecycle.stage_funnel(data, smap, as_of=end), note
    except NotAvailableError:
        return None, note


# --------------------------------------------------------------------------------------
# export
# --------------------------------------------------------------------------------------


def write_scores(
    card: pd.DataFrame | ScaleScorecard,
    out_dir: str | Path,
    *,
    customer_ids: str = "clear",
    key: str | bytes | None = None,
    batch_rows: int | None = None,
) -> tuple[Path, Path]:
    """Write the scorecard atomically to ``scores.parquet`` and ``scores.csv`` in ``out_dir``.

    The Parquet file is what ``card.to_parquet(index=False)`` writes (the same Arrow table
    and metadata). The CSV file is byte for byte what ``card.to_csv(index=False)`` writes
    — same quoting, number and date formats, empty cells for missing values — but
    formatted column by column with Arrow compute functions and written by
    :func:`pyarrow.csv.write_csv` instead of row by row in Python (:func:`csv_bytes`;
    both files at a million customers take 2.5–2.9 s of CPU instead of 6.4–6.9 s). Each
    file is written with :func:`cxkit.files.atomic_open`, so a reader never sees a
    half-written file, and the CSV text is built before either file is replaced.

    Parameters
    ----------
    card
        The scorecard; a scale-mode one (:class:`cxkit.summary.ScaleScorecard`) is
        streamed from the engine in batches (:func:`cxkit.summary.write_scores_scale`:
        the same files).
    out_dir
        The folder (created when missing).
    customer_ids
        ``"clear"`` writes the IDs as they are; ``"pseudonymous"`` (what ``cxkit report``
        publishes by default) replaces them by keyed pseudonyms
        (:func:`cxkit.privacy.published_ids`).
    key
        The pseudonyms' key; None reads ``CXKIT_ID_KEY`` (set by ``cxkit report``).
    batch_rows
        Scale mode: rows per batch (default the scale settings' ``batch_rows``).

    Returns
    -------
    (pathlib.Path, pathlib.Path)
        The Parquet and CSV files.

    Raises
    ------
    UsageError
        For an unknown ``customer_ids``, or a pseudonymous one without a key.
    """
    if isinstance(card, ScaleScorecard):
        return write_scores_scale(
            card, out_dir, customer_ids=customer_ids, key=key, batch_rows=batch_rows
        )
    shown = published_ids(card, "customer_id", mode=customer_ids, key=key)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    table = pa.Table.from_pandas(shown, preserve_index=False)
    if shown.attrs:  # as DataFrame.to_parquet keeps them
        meta = {**(table.schema.metadata or {}), b"PANDAS_ATTRS": json.dumps(shown.attrs)}
        table = table.replace_schema_metadata(meta)
    csv = csv_bytes(shown)  # formatted before either file is touched
    with atomic_open(out / "scores.parquet") as fh:
        pq.write_table(table, fh, compression="snappy")
    with atomic_open(out / "scores.csv") as fh:
        fh.write(csv)
    return out / "scores.parquet", out / "scores.csv"


def csv_bytes(
    frame: pd.DataFrame,
    *,
    header: bool = True,
    timestamp_units: dict[str, str] | None = None,
) -> memoryview:
    """Return ``frame.to_csv(index=False)`` as UTF-8 bytes, formatted in Arrow when possible.

    Text, integer, boolean, float64 and time-zone-naive timestamp columns are formatted
    by Arrow compute functions exactly as pandas formats them — floats as their shortest
    round-trip text (``0.0``, ``1e-05``), booleans as ``True`` / ``False``, timestamps to
    the finest unit any value needs, missing values empty — and written by
    :func:`pyarrow.csv.write_csv`. Texts that need quoting (a comma, a quote, a line
    break) are quoted as Python's csv module quotes them, on a slower path. Any other
    column type, a single-column frame or a carriage return in a text falls back to
    ``frame.to_csv``.

    Parameters
    ----------
    frame
        The table.
    header
        Whether the header line comes first (False for the later batches of a file
        written in parts).
    timestamp_units
        Column -> the unit its timestamps are written to (``"date"``, ``"s"``, ``"ms"``,
        ``"us"``) instead of the finest one its own values need: a file written in
        batches uses the finest unit of the whole column.

    Returns
    -------
    memoryview
        The CSV text, header first, lines ended by ``os.linesep``.

    Examples
    --------
    >>> t = pd.DataFrame({"id": ["a", "b,c"], "x": [0.0, 1e-05], "ok": [True, False]})
    >>> csv_bytes(t) == t.to_csv(index=False).encode()
    True
    """
    names = list(frame.columns)
    units = timestamp_units or {}
    columns = [_csv_column(frame[c], units.get(c)) for c in names] if len(names) > 1 else [None]
    if any(c is None for c in columns) or not all(isinstance(c, str) for c in names):
        return memoryview(frame.to_csv(index=False, header=header).encode("utf-8"))
    out = pa.BufferOutputStream()
    if header:
        out.write((",".join(_csv_quote_text(c) for c in names) + os.linesep).encode("utf-8"))
    if not len(frame):
        return memoryview(out.getvalue())
    texts = [text for text, _ in columns]  # type: ignore[misc]
    needs = {}
    for i, (text, is_text) in enumerate(columns):  # type: ignore[misc]
        if is_text and _may_contain(text, ',"' + os.linesep):
            mask = pc.match_substring_regex(text, _QUOTED)
            if pc.any(mask).as_py():
                needs[i] = mask
    if not needs:
        table = pa.table(dict(zip([str(i) for i in range(len(texts))], texts, strict=True)))
        options = pacsv.WriteOptions(include_header=False, quoting_style="none", eol=os.linesep)
        pacsv.write_csv(table, out, options)
        return memoryview(out.getvalue())
    # some texts need quotes, which the Arrow writer puts around every text: join here
    quote, nothing = _text('"'), _text("")
    large = [t.cast(pa.large_string()) for t in texts]
    for i, mask in needs.items():
        escaped = pc.replace_substring(large[i], '"', '""')
        large[i] = pc.if_else(
            mask, pc.binary_join_element_wise(quote, escaped, quote, nothing), large[i]
        )
    rows = pc.binary_join_element_wise(
        *large, _text(","), null_handling="replace", null_replacement=""
    )
    lines = pc.binary_join_element_wise(rows, nothing, _text(os.linesep))
    if isinstance(lines, pa.ChunkedArray):
        lines = lines.combine_chunks()
    offsets = np.frombuffer(lines.buffers()[1], dtype=np.int64)
    first, last = offsets[lines.offset], offsets[lines.offset + len(lines)]
    out.write(memoryview(lines.buffers()[2])[first:last])
    return memoryview(out.getvalue())


def _may_contain(text: pa.Array, chars: str) -> bool:
    """Tell whether any of ``chars`` may be in ``text`` (one fast scan of its bytes)."""
    data = text.buffers()[2]
    if data is None:
        return False
    raw = data.to_pybytes()
    return any(ch.encode("utf-8") in raw for ch in chars)


def _text(value: str) -> pa.Scalar:
    """Return ``value`` as an Arrow large-string scalar."""
    return pa.scalar(value, type=pa.large_string())


#: What makes Python's csv module (QUOTE_MINIMAL) quote a field: the delimiter, the
#: quote character and the characters of the line terminator pandas uses.
_QUOTED = "[" + re.escape(',"' + os.linesep) + "]"


def _csv_quote_text(text: str) -> str:
    """Quote one text as Python's csv module does by default (QUOTE_MINIMAL)."""
    if re.search(_QUOTED, text) or "\r" in text:
        return '"' + text.replace('"', '""') + '"'
    return text


def _csv_column(col: pd.Series, unit: str | None = None) -> tuple[pa.Array, bool] | None:
    """Format one column as pandas' ``to_csv`` does, unquoted, as Arrow strings.

    Returns ``(texts, whether they come from a text column and may need quotes)``, or
    None for a column type this does not know.
    """
    dtype = col.dtype
    if pd.api.types.is_bool_dtype(dtype):
        flags = pa.array(col, type=pa.bool_(), from_pandas=True)
        return pc.if_else(flags, "True", "False"), False
    if pd.api.types.is_integer_dtype(dtype):
        return pa.array(col, from_pandas=True).cast(pa.string()), False
    if isinstance(dtype, np.dtype) and dtype == np.float64:
        return _csv_floats(col.to_numpy()), False
    if isinstance(dtype, np.dtype) and dtype.kind == "M":
        stamps = _csv_timestamps(col, unit)
        return None if stamps is None else (stamps, False)
    if pd.api.types.is_string_dtype(dtype) and not isinstance(dtype, pd.CategoricalDtype):
        inferred = pd.api.types.infer_dtype(col, skipna=True) if dtype.kind == "O" else ""
        if inferred not in ("", "string", "empty"):
            return None
        text = pa.array(col, type=pa.string(), from_pandas=True)
        if "\r" not in os.linesep and _may_contain(text, "\r"):
            return None  # whether csv quotes a lone carriage return differs by Python version
        return text, True
    return None


def _csv_floats(x: np.ndarray) -> pa.Array:
    """Format float64 values as ``repr`` does (what pandas writes); NaN empty."""
    missing = np.isnan(x)
    text = pa.array(x, mask=missing).cast(pa.string())
    # Arrow writes the same shortest round-trip digits as repr, but integral values
    # without ".0" and other exponent ranges: those are fixed up here.
    has_exp = pc.match_substring(text, "e").fill_null(False).to_numpy(zero_copy_only=False)
    finite = ~missing & np.isfinite(x)
    integral = finite & ~has_exp & (x == np.trunc(x))
    if integral.any():
        dotted = pc.binary_replace_slice(text, start=2**30, stop=2**30, replacement=".0")
        text = pc.if_else(pa.array(integral), dotted, text)
    redo = (has_exp & ~missing) | (finite & (np.abs(x) < 1e-4) & (x != 0))
    if redo.any():
        fixed = pa.array(x[redo].astype(str).tolist(), type=pa.string())
        text = pc.replace_with_mask(text, pa.array(redo), fixed)
    return text


def _csv_timestamps(col: pd.Series, fixed: str | None = None) -> pa.Array | None:
    """Format naive timestamps as pandas does: dates only, or to the finest unit needed.

    ``fixed`` (``"date"``, ``"s"``, ``"ms"``, ``"us"``) is the unit to use instead of the
    finest one these values need (the finest of a whole column written in batches).
    """
    unit = np.datetime_data(col.dtype)[0]
    per_second = {"s": 1, "ms": 10**3, "us": 10**6, "ns": 10**9}.get(unit)
    if per_second is None:
        return None
    known = ~col.isna().to_numpy()
    values = col.to_numpy().view("i8")[known]
    years = col[known].dt.year
    if len(values) and (years.min() < 1000 or years.max() > 9999):
        return None  # pandas does not pad years to four digits
    stamps = pa.array(col, type=pa.timestamp(unit), from_pandas=True)
    if fixed is not None:
        if fixed == "date":
            return stamps.cast(pa.date32()).cast(pa.string())
        return stamps.cast(pa.timestamp(fixed)).cast(pa.string())
    if not (values % (86_400 * per_second)).any():
        return stamps.cast(pa.date32()).cast(pa.string())
    target = "s"
    for finer, per_finer in (("ns", 10**9), ("us", 10**6), ("ms", 10**3)):
        # a value needs ``finer`` when it is not a whole number of the next coarser unit
        if per_second >= per_finer and (values % (per_second * 1000 // per_finer)).any():
            target = finer
            break
    return stamps.cast(pa.timestamp(target)).cast(pa.string())


# --------------------------------------------------------------------------------------
# display
# --------------------------------------------------------------------------------------


def show_section(title: str, link: str, run: DomainRun, *, top: int = 3) -> None:
    """Show a domain's heading (linking to its detailed report) and its top findings.

    Parameters
    ----------
    title
        The heading.
    link
        The detailed report's file name.
    run
        The domain's run in the summary.
    top
        How many findings to show (small groups are never shown here).
    """
    display(
        HTML(
            f'<h3>{html.escape(title)} <a class="cx-link" href="{html.escape(link)}">'
            "detailed report &rarr;</a></h3>"
        )
    )
    if run.missing:
        not_available(run.missing)
        return
    show_findings([f for f in run.findings if not f.small_n], top=top)


#: The focus table's column labels as a stakeholder reads them.
_FOCUS_LABELS = {
    "focus": "Focus",
    "rule": "Rule (the first that matches wins)",
    "customers": "Customers",
    "share": "Share",
    "note": "Why none",
}


def show_focus(es: ExecutiveSummary) -> None:
    """Show every focus rule as applied, with its customers, and the largest group.

    The rules' words, thresholds and counts come from :meth:`ExecutiveSummary.focus_table`
    (the same :data:`FOCUS_RULES` that assigned the labels); a rule nobody meets is
    shown with 0 and why.

    Parameters
    ----------
    es
        The executive summary.
    """
    table = es.focus_table()
    shown = table.rename(columns=_FOCUS_LABELS)
    if not table["note"].astype(bool).any():
        shown = shown.drop(columns=_FOCUS_LABELS["note"])
    show_table(shown, percent=[_FOCUS_LABELS["share"]])
    top = table.sort_values("customers", ascending=False, kind="stable").iloc[0]
    takeaway(f"{top.customers:,} customers ({top.share:.0%}) fall under '{top.focus}'.")


#: The columns of :func:`top_at_risk` (both modes).
_TOP_COLUMNS = [
    "customer_id",
    "persona",
    "spend_to_date",
    "p_alive",
    "churn_probability",
    "clv_52w",
    "clv_at_risk_52w",
    "nps_group",
    "recommended_focus",
]


def top_at_risk(card: pd.DataFrame | ScaleScorecard, *, n: int = 10) -> pd.DataFrame:
    """Return the ``n`` customers with the most CLV at risk, with the columns a reader needs.

    Parameters
    ----------
    card
        The scorecard (a scale-mode one is ordered and limited in the engine).
    n
        How many customers.

    Returns
    -------
    pandas.DataFrame
        The rows, most value at risk first; empty when there is no CLV at risk.
    """
    if isinstance(card, ScaleScorecard):
        return top_at_risk_scale(card, n=n)
    if "clv_at_risk_52w" not in card or not card["clv_at_risk_52w"].notna().any():
        return card.iloc[0:0]
    return card.nlargest(n, "clv_at_risk_52w")[_TOP_COLUMNS].reset_index(drop=True)


def show_top_at_risk(
    card: pd.DataFrame | ScaleScorecard, *, n: int = 10, customer_ids: str = "clear"
) -> None:
    """Show the customers with the most CLV at risk as a stakeholder table, and their value.

    The table is :func:`top_at_risk` through :func:`cxkit.display.show_table`: labelled
    columns, money with the report's currency, probabilities in percent; the IDs are
    published through :func:`cxkit.privacy.published_ids`.

    Parameters
    ----------
    card
        The scorecard.
    n
        How many customers.
    customer_ids
        ``"clear"`` or ``"pseudonymous"`` (:func:`cxkit.privacy.published_ids`).
    """
    top = published_ids(top_at_risk(card, n=n), mode=customer_ids)
    if not len(top):
        not_available("Value at risk needs both CLV (orders) and churn scores.")
        return
    held = format_money(float(top["clv_at_risk_52w"].sum()), decimals=0)
    takeaway(
        f"The {len(top):,} customers with the most value at risk hold {held} of expected "
        "52-week value."
    )
    show_table(top)
    show_ids_note(customer_ids)


def scorecard_note(es: ExecutiveSummary) -> str:
    """Return the method note on the scorecard's columns, naming whose churn scores it has.

    The churn probability comes from the churn report's model, or from the baseline that
    beat it there (:attr:`cxkit.churn.ChurnResult.scores_label`).

    Parameters
    ----------
    es
        The executive summary.

    Returns
    -------
    str
        Plain text, the scorecard's column names between backticks.
    """
    res = es.domains["churn"].result if "churn" in es.domains else None
    if not isinstance(res, churn.ChurnResult):
        source = "is missing: the churn report is not available for this data"
    elif res.scores_from == "model":
        source = f"comes from the churn report's model ({res.scores_label})"
    else:
        source = (
            f"comes from {res.scores_label}, the baseline that beat the churn model on the "
            "churn report's test period (the churn report uses its scores too)"
        )
    weeks = int(es.scorecard.attrs.get("horizon_weeks", 52))
    return (
        f"one row per customer. `p_alive` and `expected_purchases_{weeks}w` come from the "
        f"BG/NBD model, `clv_{weeks}w` adds the Gamma-Gamma spend and a 10% annual "
        f"discount, `churn_probability` {source}, and `clv_at_risk_{weeks}w` = "
        f"`clv_{weeks}w` × `churn_probability`. `persona` is the persona report's "
        "assignment and `current_stage` the furthest lifecycle stage reached."
    )


#: A column name in a method note: between backticks, shown as code.
_CODE = re.compile(r"`([^`<>]+)`")


def show_method_notes(es: ExecutiveSummary) -> None:
    """Show the summary's method notes: as of, the scorecard's columns, parts not available.

    Parameters
    ----------
    es
        The executive summary (the scorecard note names whose churn scores it uses:
        :func:`scorecard_note`).
    """

    def code(text: str) -> str:
        return _CODE.sub(r"<code>\1</code>", html.escape(text))

    notes = [
        (
            "As of",
            "nothing after the `as_of` date is used. Intervals are 95%: Wilson for rates, "
            "adjusted Wald for NPS, Student t for CES, as in the detailed reports.",
        ),
        ("Scorecard", scorecard_note(es)),
        *([("Mode", es.mode_sentence())] if es.mode == "scale" else []),
        (
            "Parts not available",
            "for this data are named in their sections above, with the table or column they need.",
        ),
    ]
    items = "".join(
        f"<li><strong>{html.escape(k)}</strong>{':' if k != 'Parts not available' else ''} "
        f"{code(v)}</li>"
        for k, v in notes
    )
    display(HTML(f"<ul>{items}</ul>"))


# --------------------------------------------------------------------------------------
# the scorecard in scale mode: an ibis expression, labelled in the engine
# --------------------------------------------------------------------------------------


def scorecard_columns(horizon_weeks: int = 52) -> dict[str, object]:
    """Return the scorecard's columns in order with their pandas dtypes (as memory mode).

    Parameters
    ----------
    horizon_weeks
        The CLV horizon (names ``expected_purchases_<h>w``, ``clv_<h>w``, ...).

    Returns
    -------
    dict of str to dtype
        Column -> the dtype :func:`cxkit.summary.scorecard` gives it.
    """
    h = f"{horizon_weeks}w"
    return {
        "customer_id": object,
        "persona": "str",
        "current_stage": "string",
        "last_activity_at": "datetime64[us]",
        "spend_to_date": "float64",
        "p_alive": "float64",
        "churn_probability": "float64",
        "risk_band": "string",
        f"expected_purchases_{h}": "float64",
        f"clv_{h}": "float64",
        f"clv_at_risk_{h}": "float64",
        "latest_nps": "Int64",
        "nps_group": "string",
        "has_referred_or_reviewed": "boolean",
        "has_referred": "boolean",
        "recommended_focus": "string",
    }


@dataclass
class ScaleScorecard:
    """The scorecard as an engine expression (:func:`scorecard_expr`).

    Attributes
    ----------
    expr
        One row per customer, the columns of :func:`scorecard_columns` (not ordered:
        :meth:`ordered` sorts by ``customer_id``).
    thresholds
        The focus thresholds computed in the engine (CLV median).
    available
        Scorecard column read by a focus rule -> whether any customer has a value.
    n
        Customers.
    notes
        What is absent and why (as ``attrs["notes"]`` of the memory scorecard).
    as_of, horizon_weeks, settings
        The date, the CLV horizon and the scale limits.
    """

    expr: ir.Table
    thresholds: object
    available: dict[str, bool]
    n: int
    notes: list[str] = field(default_factory=list)
    as_of: pd.Timestamp | None = None
    horizon_weeks: int = 52
    settings: ScaleSettings = field(default_factory=lambda: ScaleSettings(mode="scale"))

    @property
    def attrs(self) -> dict[str, object]:
        """The memory scorecard's ``attrs``: notes, as_of, horizon_weeks."""
        as_of = None if self.as_of is None else str(self.as_of.date())
        return {"notes": self.notes, "as_of": as_of, "horizon_weeks": self.horizon_weeks}

    @property
    def columns(self) -> list[str]:
        """The scorecard's columns, in order."""
        return list(scorecard_columns(self.horizon_weeks))

    def __len__(self) -> int:
        """Return the number of customers in the scorecard."""
        return self.n

    def ordered(self) -> ir.Table:
        """Return the expression sorted by ``customer_id`` (the memory scorecard's order)."""
        return self.expr.order_by("customer_id")

    def frame(self, rows: pa.Table | pa.RecordBatch) -> pd.DataFrame:
        """Turn engine rows of the scorecard into pandas with the memory scorecard's dtypes."""
        return _frame(rows, self.horizon_weeks)

    def to_pandas(self) -> pd.DataFrame:
        """Collect the whole scorecard (bounded by ``max_collect_rows``), sorted by id.

        Raises
        ------
        ScaleLimitError
            When it has more rows than ``max_collect_rows``.
        """
        if self.n > self.settings.max_collect_rows:
            raise _scale.ScaleLimitError(
                what="the scorecard", rows=self.n, limit=self.settings.max_collect_rows
            )
        out = self.frame(self.ordered().to_pyarrow())
        out.attrs = self.attrs
        return out


def _frame(rows: pa.Table | pa.RecordBatch, horizon_weeks: int) -> pd.DataFrame:
    dtypes = scorecard_columns(horizon_weeks)
    raw = rows.to_pandas()
    out = pd.DataFrame(index=pd.RangeIndex(len(raw)))
    for col, dtype in dtypes.items():
        s = raw[col]
        if col == "customer_id":
            out[col] = pd.Series(s.astype("string").to_numpy(dtype=object), dtype=object)
        elif dtype == "boolean":
            out[col] = s.astype("boolean").fillna(False)
        elif dtype == "datetime64[us]":
            out[col] = pd.to_datetime(s).astype("datetime64[us]")
        elif dtype == "Int64":
            out[col] = pd.to_numeric(s).astype("Int64")
        elif dtype == "float64":
            out[col] = pd.to_numeric(s).astype("float64")
        else:
            out[col] = s.astype(dtype)  # type: ignore[arg-type]
    return out


def as_engine_table(value: object, con: object, *, attr: str) -> ir.Table | None:
    """Return a domain input as an engine table: a table, a result naming one, or a frame.

    Parameters
    ----------
    value
        None; an ibis table; a result with attribute ``attr`` naming an engine table
        (opened with :func:`cxkit.scale.open_table`) or holding one; or a pandas frame
        (a memory-mode result, uploaded with :func:`ibis.memtable`).
    con
        The data's backend.
    attr
        The attribute naming the table (``"scores_table"``, ``"values_table"``,
        ``"labels_table"``).

    Returns
    -------
    ibis.expr.types.Table or None
        The table (None for None).
    """
    if value is None or isinstance(value, ir.Table):
        return value
    if isinstance(value, pd.DataFrame):
        return ibis.memtable(value)
    held = getattr(value, attr, None)
    if isinstance(held, ir.Table):
        return held
    if isinstance(held, str) and held:
        return _scale.open_table(con, held)  # type: ignore[arg-type]
    raise UsageError(
        f"expected an ibis table, a pandas frame or a result with .{attr} naming an engine "
        f"table, got {type(value).__name__}"
    )


def _need(t: ir.Table, what: str, cols: list[str]) -> ir.Table:
    missing = [c for c in cols if c not in t.columns]
    if missing:
        raise DataError(
            f"the {what} table lacks column(s) {missing} (it has {list(t.columns)}); "
            f"give a table with {cols}"
        )
    return t


def _left(base: ir.Table, other: ir.Table, cols: dict[str, str]) -> ir.Table:
    """Left-join ``other`` (keyed by customer_id) to ``base``: ``cols`` other -> new names."""
    o = other.select(
        _cx_k=other.customer_id.cast("string"), **{v: other[k] for k, v in cols.items()}
    )
    j = base.left_join(o, base.customer_id == o._cx_k)
    return j.select(*[j[c] for c in base.columns], *[j[v] for v in cols.values()])


def _activity(data: CXData) -> ir.Table | None:
    parts = [
        data.table(n).select(customer_id=data.table(n).customer_id.cast("string"), ts="ts")
        for n in ("events", "orders", "responses")
        if data.has(n, "customer_id", "ts")
    ]
    if not parts:
        return None
    union = ibis.union(*parts) if len(parts) > 1 else parts[0]
    return union.group_by("customer_id").aggregate(last_activity_at=union.ts.max())


def _spend_expr(data: CXData) -> ir.Table | None:
    if not data.has("orders", "customer_id", "amount"):
        return None
    o = data.table("orders")
    return o.group_by("customer_id").aggregate(spend_to_date=o.amount.sum().cast("float64"))


def _nps(data: CXData) -> ir.Table | None:
    if not data.has("responses", "survey", "score"):
        return None
    r = data.table("responses")
    r = r.filter(r.survey.lower() == "nps")
    w = ibis.window(group_by=r.customer_id, order_by=[ibis.desc(r.ts), ibis.desc(r.response_id)])
    latest = r.mutate(_cx_rn=ibis.row_number().over(w)).filter(lambda t: t._cx_rn == 0)
    return latest.select("customer_id", latest_nps=latest.score)


def _acts(data: CXData) -> ir.Table | None:

    if not data.has("events", "event"):
        return None
    e = data.table("events")
    e = e.filter(e.event.lower().isin([*REFERRAL_EVENTS, *REVIEW_EVENTS]))
    return e.group_by("customer_id").aggregate(
        has_referred=e.event.lower().isin(list(REFERRAL_EVENTS)).any(),
        has_referred_or_reviewed=ibis.literal(True),
    )


def scorecard_expr(
    data: CXData,
    *,
    as_of: AsOf = None,
    horizon_weeks: int = 52,
    churn_scores: ir.Table | None = None,
    clv_values: ir.Table | None = None,
    persona_labels: ir.Table | None = None,
    notes: list[str] | None = None,
    settings: ScaleSettings | None = None,
) -> ScaleScorecard:
    """Build the scorecard of :func:`cxkit.summary.scorecard` as an engine expression.

    Parameters
    ----------
    data, as_of
        As for :func:`cxkit.summary.scorecard`.
    horizon_weeks
        The CLV horizon (the CLV columns are named by it, as in memory mode).
    churn_scores
        ``customer_id, churn_probability, risk_band`` (e.g. the table
        :attr:`cxkit.churn.ScaleChurnResult.scores_table`), or None: churn is missing.
    clv_values
        ``customer_id, p_alive, expected_purchases_<h>w, clv_<h>w``, or None.
    persona_labels
        ``customer_id, persona``, or None.
    notes
        Why an input is absent (kept as the scorecard's notes).
    settings
        The scale limits (default :func:`cxkit.scale.current_settings`).

    Returns
    -------
    ScaleScorecard
        The expression with the columns of :func:`scorecard_columns`, its thresholds
        and its size. Two small engine queries run here (the thresholds and which
        inputs have values); no per-customer row is collected.

    Raises
    ------
    DataError
        When an input table lacks a column it needs (the message names it).
    NotAvailableError
        When the data has no table with ``customer_id``.
    """
    settings = settings or _scale.current_settings()
    end = resolve_as_of(data, as_of)
    data = data.upto(end)
    notes = list(notes or [])
    h = f"{horizon_weeks}w"
    ids = _customer_ids(data)
    card = ids.select(customer_id=ids.customer_id.cast("string"))

    def add_null(t: ir.Table, **types: str) -> ir.Table:
        return t.mutate(**{c: ibis.null().cast(ty) for c, ty in types.items()})

    if persona_labels is not None:
        _need(persona_labels, "persona labels", ["customer_id", "persona"])
        card = _left(card, persona_labels, {"persona": "persona"})
        card = card.mutate(persona=card.persona.cast("string"))
    else:
        card = add_null(card, persona="string")
    try:
        st = lifecycle.stage_times_expr(data, as_of=end).select("customer_id", "current_stage")
        card = _left(card, st, {"current_stage": "current_stage"})
        card = card.mutate(current_stage=card.current_stage.cast("string"))
    except (NotAvailableError, DataError) as err:
        notes.append(str(err))
        card = add_null(card, current_stage="string")
    act = _activity(data)
    if act is not None:
        card = _left(card, act, {"last_activity_at": "last_activity_at"})
    else:
        card = add_null(card, last_activity_at="timestamp")
    spend = _spend_expr(data)
    if spend is not None:
        card = _left(card, spend, {"spend_to_date": "spend_to_date"})
        card = card.mutate(spend_to_date=card.spend_to_date.fill_null(0.0))
    else:
        card = card.mutate(spend_to_date=ibis.literal(0.0))
    clv_cols = ["p_alive", f"expected_purchases_{h}", f"clv_{h}"]
    if clv_values is not None:
        _need(clv_values, "CLV values", ["customer_id", *clv_cols])
        card = _left(card, clv_values, {c: c for c in clv_cols})
        card = card.mutate(**{c: card[c].cast("float64") for c in clv_cols})
    else:
        card = add_null(card, **dict.fromkeys(clv_cols, "float64"))
    if churn_scores is not None:
        _need(churn_scores, "churn scores", ["customer_id", "churn_probability", "risk_band"])
        s = churn_scores.mutate(risk_band=churn_scores.risk_band.cast("string"))
        card = _left(card, s, {"churn_probability": "churn_probability", "risk_band": "risk_band"})
        card = card.mutate(churn_probability=card.churn_probability.cast("float64"))
    else:
        card = add_null(card, churn_probability="float64", risk_band="string")
    card = card.mutate(**{f"clv_at_risk_{h}": card.churn_probability * card[f"clv_{h}"]})
    nps = _nps(data)
    if nps is not None:
        card = _left(card, nps, {"latest_nps": "latest_nps"})
        card = card.mutate(latest_nps=card.latest_nps.cast("int64"))
    else:
        card = add_null(card, latest_nps="int64")
    n_ = card.latest_nps
    card = card.mutate(
        nps_group=ibis.cases(
            (n_ >= 9, "promoter"),
            ((n_ >= 7) & (n_ <= 8), "passive"),
            (n_ <= 6, "detractor"),
            else_=ibis.null().cast("string"),
        )
    )
    acts = _acts(data)
    flags = ("has_referred", "has_referred_or_reviewed")
    if acts is not None:
        card = _left(card, acts, {f: f for f in flags})
        card = card.mutate(**{f: card[f].fill_null(False) for f in flags})
    else:
        card = card.mutate(**{f: ibis.literal(False) for f in flags})

    # thresholds and which inputs have any value: one small engine query
    probe = FocusThresholds(FOCUS_CHURN_MIN, float("nan"), horizon_weeks)
    read = sorted({c.column_in(probe) for r in FOCUS_RULES for c in r.conditions})
    got = (
        card.aggregate(
            _cx_n=card.count(),
            _cx_median=card[f"clv_{h}"].median(),
            **{f"_cx_has_{c}": card[c].count() for c in read},
        )
        .to_pyarrow()
        .to_pylist()[0]
    )
    median = got["_cx_median"]
    th = FocusThresholds(
        FOCUS_CHURN_MIN, float("nan") if median is None else float(median), horizon_weeks
    )
    available = {c: bool(got[f"_cx_has_{c}"]) for c in read}
    cases = []
    for rule in FOCUS_RULES[:-1]:
        if not all(available[c.column_in(th)] for c in rule.conditions):
            continue  # a condition without data meets no one (as in memory mode)
        hit = ibis.literal(True)
        for cond in rule.conditions:
            hit = hit & cond.engine_mask(card, th)
        cases.append((hit, rule.focus))
    last = ibis.literal(FOCUS_RULES[-1].focus)
    focus = ibis.cases(*cases, else_=last) if cases else last
    card = card.mutate(recommended_focus=focus)
    card = card.select(*scorecard_columns(horizon_weeks))
    return ScaleScorecard(
        card,
        th,
        available,
        int(got["_cx_n"] or 0),
        notes,
        end,
        horizon_weeks,
        settings,
    )


def focus_table_scale(card: ScaleScorecard) -> pd.DataFrame:
    """Return :func:`cxkit.summary.focus_table` of an engine scorecard, counted in the engine.

    Parameters
    ----------
    card
        The engine scorecard.

    Returns
    -------
    pandas.DataFrame
        ``focus, rule, customers, share, note``, one row per rule of
        :data:`cxkit.summary.FOCUS_RULES` (the same words, counts and notes as memory
        mode), from one engine aggregate.
    """
    t, th = card.expr, card.thresholds
    label = t.recommended_focus

    def count(mask: ir.BooleanValue) -> ir.IntegerScalar:
        return mask.ifelse(1, 0).sum()

    aggs: dict[str, ir.Scalar] = {"_n": t.count()}
    for i, rule in enumerate(FOCUS_RULES):
        aggs[f"l{i}"] = count(label == rule.focus)
        m = ibis.literal(True)
        for k, cond in enumerate(rule.conditions):  # up to the first without data
            if not card.available[cond.column_in(th)]:
                break
            m = m & cond.engine_mask(t, th)
            aggs[f"p{i}_{k}"] = count(m)
        if not all(card.available[c.column_in(th)] for c in rule.conditions):
            continue
        for j, r in enumerate(FOCUS_RULES[:i]):
            aggs[f"o{i}_{j}"] = count(m & (label == r.focus))
    row = {k: int(v or 0) for k, v in t.aggregate(**aggs).to_pyarrow().to_pylist()[0].items()}

    def meeting(i: int) -> list[int | None]:
        counts: list[int | None] = []
        for k, cond in enumerate(FOCUS_RULES[i].conditions):
            if not card.available[cond.column_in(th)]:
                counts.append(None)
                break
            counts.append(row[f"p{i}_{k}"])
        return counts

    def taken_by(i: int) -> list[str]:
        return [r.focus for j, r in enumerate(FOCUS_RULES[:i]) if row.get(f"o{i}_{j}", 0)]

    return focus_table_from_counts(
        th,
        total=row["_n"],
        customers=[row[f"l{i}"] for i in range(len(FOCUS_RULES))],
        meeting=meeting,
        taken_by=taken_by,
    )


def top_at_risk_scale(card: ScaleScorecard, *, n: int = 10) -> pd.DataFrame:
    """Return :func:`cxkit.summary.top_at_risk` of an engine scorecard (order_by + limit).

    Parameters
    ----------
    card
        The engine scorecard.
    n
        How many customers.

    Returns
    -------
    pandas.DataFrame
        The rows, most value at risk first (ties by customer ID, as memory mode);
        empty, with every scorecard column, when there is no CLV at risk.
    """
    t = card.expr
    col = f"clv_at_risk_{card.horizon_weeks}w"
    top = (
        t.filter(t[col].notnull() & ~t[col].isnan())
        .order_by([ibis.desc(col), "customer_id"])
        .limit(n)
    )
    out = card.frame(top.to_pyarrow())
    if not len(out):
        return out
    return out[_TOP_COLUMNS].reset_index(drop=True)


def at_risk_totals(card: ScaleScorecard) -> dict[str, float]:
    """Return the CLV-at-risk tile's sums from the engine.

    Parameters
    ----------
    card
        The engine scorecard.

    Returns
    -------
    dict
        ``clv`` (sum of CLV), ``at_risk`` (sum of CLV × churn probability) and ``n``
        (customers with a value at risk).
    """
    t = card.expr
    h = f"{card.horizon_weeks}w"
    row = (
        t.aggregate(
            clv=t[f"clv_{h}"].sum(),
            at_risk=t[f"clv_at_risk_{h}"].sum(),
            n=t[f"clv_at_risk_{h}"].count(),
        )
        .to_pyarrow()
        .to_pylist()[0]
    )
    return {
        "clv": float(row["clv"] or 0.0),
        "at_risk": float(row["at_risk"] or 0.0),
        "n": int(row["n"] or 0),
    }


def _timestamp_units(card: ScaleScorecard) -> dict[str, str]:
    """Return the unit the whole ``last_activity_at`` column needs in CSV (as pandas)."""
    t = card.expr
    ts = t.last_activity_at
    row = (
        t.aggregate(
            day=(ts.truncate("D") != ts).ifelse(1, 0).max(),
            sec=(ts.truncate("s") != ts).ifelse(1, 0).max(),
            ms=(ts.truncate("ms") != ts).ifelse(1, 0).max(),
        )
        .to_pyarrow()
        .to_pylist()[0]
    )
    if not row["day"]:
        return {"last_activity_at": "date"}
    unit = "us" if row["ms"] else "ms" if row["sec"] else "s"
    return {"last_activity_at": unit}


def write_scores_scale(
    card: ScaleScorecard,
    out_dir: str | Path,
    *,
    customer_ids: str = "clear",
    key: str | bytes | None = None,
    batch_rows: int | None = None,
) -> tuple[Path, Path]:
    """Stream an engine scorecard in batches to ``scores.parquet`` and ``scores.csv``.

    The files are those :func:`cxkit.summary.write_scores` writes for the memory
    scorecard: the same columns, types, rows in ``customer_id`` order, pseudonymous IDs
    and CSV text; at most one batch of ``batch_rows`` rows is in memory at a time. Both
    are written atomically (:func:`cxkit.files.atomic_open`).

    Parameters
    ----------
    card
        The engine scorecard.
    out_dir
        The folder (created when missing).
    customer_ids
        ``"clear"`` or ``"pseudonymous"`` (:func:`cxkit.privacy.published_ids`).
    key
        The pseudonyms' key; None reads ``CXKIT_ID_KEY``.
    batch_rows
        Rows per batch (default the scorecard's ``settings.batch_rows``).

    Returns
    -------
    (pathlib.Path, pathlib.Path)
        The Parquet and CSV files.
    """
    batch_rows = batch_rows or card.settings.batch_rows
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    attrs = card.attrs
    units = _timestamp_units(card)
    first = True
    with atomic_open(out / "scores.parquet") as fp, atomic_open(out / "scores.csv") as fc:
        writer: pq.ParquetWriter | None = None
        batches = card.ordered().to_pyarrow_batches(chunk_size=batch_rows)
        for batch in _nonempty_or_one(batches, card):
            frame = card.frame(batch)
            frame.attrs = attrs
            shown = published_ids(frame, "customer_id", mode=customer_ids, key=key)
            table = pa.Table.from_pandas(shown, preserve_index=False)
            meta = {**(table.schema.metadata or {}), b"PANDAS_ATTRS": json.dumps(attrs)}
            table = table.replace_schema_metadata(meta)
            if writer is None:
                writer = pq.ParquetWriter(fp, table.schema, compression="snappy")
            writer.write_table(table.cast(writer.schema))
            fc.write(csv_bytes(shown, header=first, timestamp_units=units))
            first = False
        if writer is not None:
            writer.close()
    return out / "scores.parquet", out / "scores.csv"


def _nonempty_or_one(batches: object, card: ScaleScorecard) -> object:
    """Yield the non-empty batches, or one empty batch when there are none."""
    any_rows = False
    schema = None
    for b in batches:  # type: ignore[attr-defined]
        schema = b.schema
        if b.num_rows:
            any_rows = True
            yield b
    if not any_rows:
        if schema is None:
            schema = card.expr.schema().to_pyarrow()
        yield pa.Table.from_batches([], schema=schema)
