"""The churn analysis in one call: :func:`analyze` -> :class:`ChurnResult`.

:func:`analyze` resolves ``as_of`` once, then computes what the churn report shows —
the churn rate at the latest fully observed cutoff and over time, the time-split
backtest (:func:`~cxkit.churn.run_backtest`), today's scores with risk bands
(:func:`score`), the high-risk share by a customers column (:func:`risk_by`) and the
riskiest customers by spend — sharing the feature computation between the steps.
:meth:`ChurnResult.findings` turns it into the sentences the report and the executive
summary show.

Cut dates derived from ``as_of`` (``as_of − horizon`` and so on) are whole days
(:func:`cxkit.data.end_of_day`): "churn in the 90 days after 2024-10-02" counts every
order of 2024-10-02 as before the cutoff.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import ClassVar, NamedTuple

import ibis
import numpy as np
import pandas as pd

from cxkit.cache import run_cached
from cxkit.churn.backtest import (
    MODEL_LABELS,
    ChurnBacktest,
    ModelChoice,
    baseline_scores,
    run_backtest,
)
from cxkit.churn.definition import ChurnDefinition, define, label_table, resolve_definition
from cxkit.churn.features import TEST_PREDICTED, FeatureCache, describe_feature
from cxkit.churn.metrics import BAND_LABELS, BAND_THRESHOLDS, risk_band
from cxkit.churn.model import ChurnModel, fit_frames
from cxkit.data import CXData, end_of_day, resolve_as_of
from cxkit.errors import DataError, NotAvailableError, UsageError
from cxkit.findings import Finding, finding_from_rate
from cxkit.result import AsOf, Result
from cxkit.scale import dispatch
from cxkit.stats import is_small, wilson_ci

__all__ = [
    "AT_RISK_COLUMNS",
    "ChurnCutoffs",
    "ChurnResult",
    "analyze",
    "backtest_or_missing",
    "churn_cutoffs",
    "churn_rate_over_time",
    "churn_rate_summary",
    "findings",
    "risk_by",
    "risk_by_table",
    "score",
    "top_importance",
]

#: The feature columns listed next to the riskiest customers (those the data has).
AT_RISK_COLUMNS = (
    "recency_days",
    "orders_n",
    "spend_total",
    "event_recency_days",
    "last_touch_channel",
)


def _day_before(end: pd.Timestamp, days: int) -> pd.Timestamp:
    """Return the whole day ``days`` before ``end`` (a derived cut date)."""
    return end_of_day((end - pd.Timedelta(days=days)).normalize())


@dataclass(kw_only=True)
class ChurnResult(Result):
    """Everything the churn report shows, from one :func:`analyze` call.

    Attributes
    ----------
    definition
        The churn definition used for every number.
    churn_rate
        The churn rate at the latest cutoff whose horizon is observed: ``cutoff,
        window_end, customers, churners, rate, ci_low, ci_high`` (Wilson 95%).
    backtest
        The time-split validation (:func:`~cxkit.churn.run_backtest`), or None when the
        data has too little history (see :attr:`missing_parts`).
    scores
        Churn probability and risk band per customer at :attr:`as_of` (:func:`score`).
    thresholds
        The risk-band thresholds ``(low, high)``.
    rate_over_time
        The churn rate at monthly cutoffs (:func:`churn_rate_over_time`).
    by
        The customers column of the risk breakdown, or None.
    risk_by
        High-risk share per group of :attr:`by` (:func:`risk_by`), or None.
    at_risk
        The riskiest customers (high band) by spend to date (by churn probability
        without orders), with a few of their features.
    notes
        Plain sentences on how the numbers were made (the backtest's notes).
    scores_from
        The key (of :data:`~cxkit.churn.MODEL_LABELS`) of the model whose scores
        :attr:`scores` holds: ``"model"`` unless a baseline beat the model on the test
        period (:attr:`choice`).
    choice
        The comparison of the model with its best baseline that decided
        :attr:`scores_from` (:func:`~cxkit.churn.choose_scores`), or None without a
        backtest.
    missing_parts
        Part name (``backtest``, ``risk_by``) -> why it is missing. The same sentences,
        in order, are :attr:`not_available`.
    """

    domain: ClassVar[str] = "churn"
    definition: ChurnDefinition
    churn_rate: dict[str, object]
    backtest: ChurnBacktest | None
    scores: pd.DataFrame
    thresholds: tuple[float, float]
    rate_over_time: pd.DataFrame | None = None
    by: str | None = None
    risk_by: pd.DataFrame | None = None
    at_risk: pd.DataFrame | None = None
    notes: list[str] = field(default_factory=list)
    scores_from: str = "model"
    choice: ModelChoice | None = None
    missing_parts: dict[str, str] = field(default_factory=dict)

    @property
    def scores_label(self) -> str:
        """The name of the model whose scores :attr:`scores` holds."""
        return MODEL_LABELS[self.scores_from]

    def model_warning(self) -> str | None:
        """Return the warning shown when the churn model did not beat its best baseline.

        Returns
        -------
        str or None
            :meth:`~cxkit.churn.ModelChoice.warning`; None when the model won or there was
            no comparison.
        """
        if self.choice is None or self.choice.model_wins:
            return None
        if self.scores_from == self.choice.used:
            return self.choice.warning()
        # the better baseline could not score at as_of (``missing_parts["scores"]``)
        return (
            f"The churn model does not beat the baseline {self.choice.baseline_label}: "
            f"{self.choice.difference_words()}. {self.missing_parts.get('scores', '')}"
        ).strip()

    @property
    def band_summary(self) -> pd.DataFrame:
        """Customers, share and mean churn probability per risk band."""
        s = self.scores
        g = (
            s.groupby("risk_band", observed=False)
            .agg(
                customers=("customer_id", "size"),
                mean_churn_probability=("churn_probability", "mean"),
            )
            .reset_index()
        )
        g["share"] = g["customers"] / max(len(s), 1)
        return g

    @property
    def high_risk_n(self) -> int:
        """How many scored customers are in the high band."""
        return int((self.scores["risk_band"] == BAND_LABELS[2]).sum())

    @property
    def scored_n(self) -> int:
        """How many customers were scored at :attr:`as_of`."""
        return len(self.scores)

    def _high_risk_extra(self) -> dict[str, object]:
        """Return the ``extra`` of the ``high_risk_customers`` finding."""
        return {"scores_from": self.scores_from}

    # ---- findings -------------------------------------------------------------------

    def findings(self) -> list[Finding]:
        """Return the churn findings: rate, model quality, lift, drivers, customers at risk.

        Returns
        -------
        list of Finding
            ``churn_rate`` (Wilson interval, importance 10), ``model_auc`` (ROC AUC with
            the Hanley–McNeil interval against the baselines, 8), ``top_decile_lift``
            (lift of the riskiest tenth with the interval of its churn rate over the
            base rate, 6), ``top_drivers`` (permutation importance, 5) and
            ``high_risk_customers`` (9), each when the data allows, in that order.
        """
        out: list[Finding] = []
        r = self.churn_rate
        h = self.definition.horizon_days
        what = "order" if self.definition.basis == "orders" else "activity"
        contractual = self.definition.kind == "contractual"
        if r["customers"]:
            verb = "cancelled" if contractual else f"had no {what}"
            sentence = (
                f"{r['rate']:.0%} of {r['customers']:,} customers {verb} in the {h} days "
                f"after {r['cutoff']:%Y-%m-%d} (95% CI {r['ci_low']:.0%}–{r['ci_high']:.0%})."
            )
            out.append(
                finding_from_rate(
                    r,
                    domain=self.domain,
                    metric="churn_rate",
                    sentence=sentence,
                    unit="share",
                    importance=10,
                    value="rate",
                    n="customers",
                    extra={"definition": self.definition.to_dict()},
                )
            )
        if self.backtest is not None:
            out += self._backtest_findings(self.backtest)
        n = self.scored_n
        if n:
            hi_n = self.high_risk_n
            source = "" if self.scores_from == "model" else f", from {self.scores_label}"
            sentence = (
                f"{hi_n:,} of {n:,} customers ({hi_n / n:.0%}) are at high risk "
                f"(churn probability ≥ {self.thresholds[1]:.0%} over the next {h} days"
                f"{source}) as of {self.as_of:%Y-%m-%d}."
            )
            out.append(
                finding_from_rate(
                    {"high_risk": float(hi_n), "customers": n},
                    domain=self.domain,
                    metric="high_risk_customers",
                    sentence=sentence,
                    unit="customers",
                    importance=9,
                    value="high_risk",
                    low=None,
                    high=None,
                    n="customers",
                    extra=self._high_risk_extra(),
                )
            )
        return out

    def _backtest_findings(self, v: ChurnBacktest) -> list[Finding]:
        m = v.metrics.set_index("model")
        auc = m.loc["model"]
        comp = [
            f"{MODEL_LABELS[b]} {m.loc[b, 'roc_auc']:.2f}"
            for b in ("logit", "bgnbd", "p_alive")
            if b in m.index
        ]
        versus = f" (baselines: {', '.join(comp)})" if comp else ""
        lost = ""
        if v.choice is not None and not v.choice.model_wins:
            lost = (
                f" It does not beat its best baseline, {v.choice.baseline_label}: "
                f"{v.choice.difference_words()}; the scores used come from "
                f"{v.choice.used_label}."
            )
        out = [
            finding_from_rate(
                auc,
                domain=self.domain,
                metric="model_auc",
                sentence=(
                    f"The churn model ranks customers with ROC AUC {auc['roc_auc']:.2f} "
                    f"(95% CI {auc['roc_auc_low']:.2f}–{auc['roc_auc_high']:.2f}) on "
                    f"{int(auc['customers']):,} customers at {v.cutoffs['test']:%Y-%m-%d}, "
                    f"trained on earlier data{versus}.{lost}"
                ),
                unit="AUC",
                importance=8,
                value="roc_auc",
                low="roc_auc_low",
                high="roc_auc_high",
                n="customers",
                comparison="vs logistic regression and BG/NBD baselines" if comp else None,
                p_value=None if v.choice is None else v.choice.p_value,
                extra={"scores_from": v.scores_used},
            )
        ]
        top = v.lift.iloc[0]
        ranked = "" if v.scores_used == "model" else f" by {MODEL_LABELS[v.scores_used]}"
        base = v.test_churn_rate
        # the lift's interval: the decile's churn-rate interval over the (fixed) base rate
        lift_row = {
            "lift": top["lift"],
            "lift_low": top["ci_low"] / base if base > 0 else None,
            "lift_high": top["ci_high"] / base if base > 0 else None,
            "customers": top["customers"],
        }
        out.append(
            finding_from_rate(
                lift_row,
                domain=self.domain,
                metric="top_decile_lift",
                sentence=(
                    f"The riskiest 10% of customers{ranked} churned at {top['churn_rate']:.0%} "
                    f"({top['ci_low']:.0%}–{top['ci_high']:.0%}, n = {int(top['customers']):,}), "
                    f"{top['lift']:.1f}× the average rate."
                ),
                unit="x",
                importance=6,
                value="lift",
                low="lift_low",
                high="lift_high",
                n="customers",
                extra={"scores_from": v.scores_used},
            )
        )
        if len(v.importance):
            imp = v.importance.head(3)
            names = ", ".join(describe_feature(f) for f in imp["feature"])
            whose = "" if v.scores_used == "model" else " of the churn model"
            out.append(
                finding_from_rate(
                    imp.iloc[0],
                    domain=self.domain,
                    metric="top_drivers",
                    sentence=f"The strongest churn signals{whose} are {names} (permutation "
                    "importance).",
                    unit="AUC drop",
                    importance=5,
                    value="importance_mean",
                    low=None,
                    high=None,
                    n=None,
                    extra={"features": list(imp["feature"])},
                )
            )
        return out

    def headline(self) -> str:
        """Return the report's headline: the churn rate and the customers at high risk.

        Returns
        -------
        str
            One or two sentences joined by a semicolon (empty without either).
        """
        by_metric = {f.metric: f for f in self.findings()}
        rate = by_metric.get("churn_rate")
        lead = by_metric.get("high_risk_customers")
        if lead is None:
            return rate.sentence if rate else ""
        text = lead.sentence[0].lower() + lead.sentence[1:]
        return (rate.sentence.rstrip(".") + "; " if rate else "") + text

    # ---- takeaways ------------------------------------------------------------------

    def takeaways(self) -> dict[str, str]:
        """Return the one-line takeaway under each of the report's charts.

        Returns
        -------
        dict of str to str
            ``definition``, ``rate_over_time``, ``bands`` and, when the parts exist,
            ``model``, ``curves``, ``calibration``, ``lift``, ``drivers``, ``scores``
            (whose scores are used, :meth:`~cxkit.churn.ModelChoice.sentence`),
            ``risk_by`` and ``at_risk``.
        """
        out = {"definition": self.definition.describe()}
        trend = self.rate_over_time
        if trend is not None and len(trend):
            first, last = trend.iloc[0], trend.iloc[-1]
            out["rate_over_time"] = (
                f"At the latest cutoff ({last.cutoff:%Y-%m-%d}) {last.churn_rate:.0%} of "
                f"{last.customers:,} customers churned (95% CI {last.ci_low:.0%}–"
                f"{last.ci_high:.0%}); at {first.cutoff:%Y-%m-%d} it was "
                f"{first.churn_rate:.0%} of {first.customers:,}."
            )
        if self.backtest is not None:
            out.update(self._backtest_takeaways(self.backtest))
        if self.choice is not None:
            out["scores"] = (
                self.choice.sentence()
                if self.scores_from == self.choice.used
                else self.missing_parts.get("scores", "")
            )
        lo, hi = self.thresholds
        out["bands"] = (
            f"Bands: low < {lo:.0%} ≤ medium < {hi:.0%} ≤ high; "
            f"{len(self.scores):,} customers scored as of {self.as_of:%Y-%m-%d}."
        )
        by = self.risk_by
        if by is not None and len(by) and self.by is not None:
            col = self.by
            small = ", ".join(by.loc[by.small_n, col]) or "none"
            out["risk_by"] = (
                f"{by[col].iloc[0]}: {by.high_risk_share.iloc[0]:.0%} high risk of "
                f"{by.customers.iloc[0]:,}; {by[col].iloc[-1]}: "
                f"{by.high_risk_share.iloc[-1]:.0%} of {by.customers.iloc[-1]:,}. "
                f"Groups under 30 customers: {small}."
            )
        if self.at_risk is not None:
            what = (
                "by spend to date"
                if "spend_total" in self.at_risk.columns
                else ("by churn probability")
            )
            out["at_risk"] = (
                f"The top {len(self.at_risk)} of {self.high_risk_n:,} high-risk customers "
                f"{what}; join on customer_id with the CLV report to rank them by value at risk."
            )
        return out

    @staticmethod
    def _backtest_takeaways(v: ChurnBacktest) -> dict[str, str]:
        out: dict[str, str] = {}
        m = v.metrics
        best_base = m[m.model != "model"].sort_values("roc_auc", ascending=False).iloc[0]
        main = m.set_index("model").loc["model"]
        out["model"] = (
            f"On {int(main.customers):,} test customers ({int(main.churners):,} churned), "
            f"the model's ROC AUC is {main.roc_auc:.2f} (95% CI {main.roc_auc_low:.2f}–"
            f"{main.roc_auc_high:.2f}) against {best_base.roc_auc:.2f} for {best_base.label}."
        )
        out["curves"] = (
            f"Base rate in the test period: {v.test_churn_rate:.0%}; a list with no skill "
            "would have that precision everywhere."
        )
        switched = v.scores_used != "model"
        cal = v.calibration[v.calibration.model == "model"]
        gap = (cal.mean_predicted - cal.observed_rate).abs().max()
        whose = "the churn model's predicted" if switched else "predicted"
        out["calibration"] = (
            f"The largest gap between {whose} and observed churn in any tenth of customers "
            f"is {gap:.1%} (each tenth has about {int(cal.n.median()):,} customers)."
        )
        lift = v.lift
        g3 = lift.cumulative_gain.iloc[2]
        lead = (
            f"Ranked by {MODEL_LABELS[v.scores_used]} (the scores used), the top decile lift is"
            if switched
            else "Top decile lift"
        )
        out["lift"] = (
            f"{lead} {lift.lift.iloc[0]:.1f}× (n = {int(lift.customers.iloc[0]):,}); "
            f"contacting the riskiest 30% reaches {g3:.0%} of those who will churn."
        )
        if len(v.importance):
            imp = top_importance(v)
            top = imp.iloc[-1]
            whose = " of the churn model (whose scores are not used)" if switched else ""
            out["drivers"] = (
                f"Shuffling {top['name']} lowers the AUC{whose} by {top.importance_mean:.3f}; "
                f"the next signals are {', '.join(imp.name.iloc[-2:-4:-1])}."
            )
        return out


def top_importance(backtest: ChurnBacktest, n: int = 12) -> pd.DataFrame:
    """Return the ``n`` most important features, least important first, with plain names.

    Parameters
    ----------
    backtest
        A backtest.
    n
        How many features.

    Returns
    -------
    pandas.DataFrame
        The importance table's top rows in reverse order (for a horizontal bar chart),
        with a ``name`` column from :func:`~cxkit.churn.describe_feature`.
    """
    return (
        backtest.importance.head(n)
        .iloc[::-1]
        .assign(name=lambda d: d.feature.map(describe_feature))
    )


# --------------------------------------------------------------------------------------
# the parts
# --------------------------------------------------------------------------------------


def score(
    data: CXData,
    *,
    as_of: AsOf = None,
    horizon_days: int = 90,
    basis: str = "auto",
    kind: str = "auto",
    definition: ChurnDefinition | None = None,
    thresholds: tuple[float, float] = BAND_THRESHOLDS,
    calibration: str = "auto",
    trend_days: int = 90,
    max_levels: int = 12,
    themes: Mapping[str, Sequence[str]] | None = None,
    max_train_rows: int | None = 200_000,
    random_state: int = 0,
    model: ChurnModel | None = None,
    scores_from: str = "model",
    _cache: FeatureCache | None = None,
) -> pd.DataFrame:
    """Return the churn probability and risk band per customer at ``as_of``.

    A :class:`~cxkit.churn.ChurnModel` is fitted at the day ``2 × horizon`` before
    ``as_of`` and calibrated at the day ``horizon`` before it (the latest labels
    observable at ``as_of``), unless a fitted ``model`` is given. With ``scores_from``
    a baseline (the one that beat the model, :func:`~cxkit.churn.choose_scores`), the
    probabilities come from it instead: the same pipeline with logistic regression, or
    BG/NBD fitted on the orders up to ``as_of``.

    Parameters
    ----------
    data
        The data.
    as_of
        The instant to score at, resolved by :func:`cxkit.data.resolve_as_of`.
    horizon_days, basis, kind, definition
        The churn definition (see :func:`~cxkit.churn.define`).
    thresholds
        The risk-band thresholds (see :func:`~cxkit.churn.risk_band`).
    calibration, trend_days, max_levels, themes, max_train_rows, random_state
        As for :class:`~cxkit.churn.ChurnModel`.
    model
        A fitted model to score with instead of fitting one.
    scores_from
        Whose probabilities: a key of :data:`~cxkit.churn.MODEL_LABELS` — ``"model"``
        (gradient boosting), ``"logit"``, ``"bgnbd"`` (BG/NBD probability of no order
        in the horizon) or ``"p_alive"`` (BG/NBD 1 − p_alive). Ignored with ``model``.
    _cache
        Features shared with other steps of the same call (internal).

    Returns
    -------
    pandas.DataFrame
        ``customer_id, churn_probability, risk_band, as_of, horizon_days`` for the
        definition's population at ``as_of``, sorted by ``customer_id``; ready to join
        with CLV on ``customer_id``. ``df.attrs["definition"]`` holds the definition,
        ``df.attrs["thresholds"]`` the thresholds and ``df.attrs["scores_from"]`` the
        model's key.

    Raises
    ------
    sklearn.exceptions.NotFittedError
        When ``model`` is given but not fitted.
    UsageError
        For an unknown ``scores_from``.
    DataError
        When the BG/NBD baseline asked for cannot be fitted.
    """
    if scores_from not in MODEL_LABELS:
        raise UsageError(f"scores_from must be one of {list(MODEL_LABELS)}, got {scores_from!r}")
    end = resolve_as_of(data, as_of)
    if model is not None:
        cache = _cache
        scores_from = "model" if model.estimator == "hgb" else "logit"
    else:
        definition = resolve_definition(data, definition, horizon_days, basis, kind)
        cache = _cache or FeatureCache(
            data, trend_days, max_levels, themes, definition.horizon_days
        )
        if scores_from in ("bgnbd", "p_alive"):
            return _baseline_score(data, end, definition, scores_from, thresholds, cache)
        cal = _day_before(end, definition.horizon_days)
        model = ChurnModel(
            estimator="logit" if scores_from == "logit" else "hgb",
            calibration=calibration,
            trend_days=trend_days,
            max_levels=max_levels,
            themes=themes,
            max_train_rows=max_train_rows,
            random_state=random_state,
        ).fit(data.upto(end), cutoff=cal, definition=definition, _cache=cache)
        # done with the fit and calibration cutoffs: free them before scoring
        cache.release(cal - pd.Timedelta(days=definition.horizon_days), cal)
    out = model.predict_proba(data, as_of=end, _cache=cache)
    if cache is not None:
        cache.release(end)
    out["risk_band"] = risk_band(out["churn_probability"], thresholds=thresholds).array
    out["as_of"] = end.normalize() if end == end_of_day(end.normalize()) else end
    out["horizon_days"] = model.definition_.horizon_days
    out.attrs["definition"] = model.definition_.to_dict()
    out.attrs["thresholds"] = tuple(thresholds)
    out.attrs["scores_from"] = scores_from
    return out


def _baseline_score(
    data: CXData,
    end: pd.Timestamp,
    definition: ChurnDefinition,
    scores_from: str,
    thresholds: tuple[float, float],
    cache: FeatureCache,
) -> pd.DataFrame:
    """Score the definition's population at ``end`` with a BG/NBD baseline."""
    frame = cache.frame(end, definition, labelled=False)
    base, note = baseline_scores(data, end, frame.X, definition.horizon_days, cache.bgnbd_fit(end))
    if base is None:
        raise DataError(note, table="orders", fix="score with the churn model instead")
    out = pd.DataFrame(
        {
            "customer_id": frame.X["customer_id"].to_numpy(),
            "churn_probability": base[scores_from].to_numpy(dtype=float),
        }
    )
    cache.release(end)
    out["risk_band"] = risk_band(out["churn_probability"], thresholds=thresholds).array
    out["as_of"] = end.normalize() if end == end_of_day(end.normalize()) else end
    out["horizon_days"] = definition.horizon_days
    out.attrs["definition"] = definition.to_dict()
    out.attrs["thresholds"] = tuple(thresholds)
    out.attrs["scores_from"] = scores_from
    return out


def churn_rate_over_time(
    data: CXData,
    *,
    definition: ChurnDefinition | None = None,
    horizon_days: int = 90,
    basis: str = "auto",
    kind: str = "auto",
    as_of: AsOf = None,
    every_days: int = 30,
    periods: int = 12,
) -> pd.DataFrame:
    """Return the churn rate at a series of cutoffs, each with its Wilson 95% interval.

    Cutoffs step back ``every_days`` from the latest one whose label window is observed
    at ``as_of`` (the day ``horizon_days`` before it); cutoffs with no customers are
    left out.

    Parameters
    ----------
    data
        The data.
    definition, horizon_days, basis, kind
        The churn definition (see :func:`~cxkit.churn.define`).
    as_of
        The instant of the analysis, resolved by :func:`cxkit.data.resolve_as_of`.
    every_days
        Days between cutoffs.
    periods
        The number of cutoffs.

    Returns
    -------
    pandas.DataFrame
        ``cutoff, customers, churners, churn_rate, ci_low, ci_high, small_n``, oldest first.

    Raises
    ------
    UsageError
        When ``every_days`` or ``periods`` is below 1.
    """
    if every_days < 1 or periods < 1:
        raise UsageError(f"every_days and periods must be >= 1, got {every_days!r}, {periods!r}")
    definition = resolve_definition(data, definition, horizon_days, basis, kind)
    end = resolve_as_of(data, as_of)
    d = data.upto(end)
    last = _day_before(end, definition.horizon_days)
    parts = []
    for k in range(periods - 1, -1, -1):
        cut = last - pd.Timedelta(days=k * every_days)
        lab = label_table(d, cut, definition=definition, check_window=False)
        parts.append(
            lab.aggregate(period=ibis.literal(k), customers=lab.count(), churners=lab.churned.sum())
        )
    union = parts[0]
    for part in parts[1:]:
        union = union.union(part, distinct=False)
    got = union.to_pandas()  # one query for all cutoffs
    got = got[got["customers"] > 0].sort_values("period", ascending=False)
    out = pd.DataFrame(
        {
            "cutoff": [
                (last - pd.Timedelta(days=int(k) * every_days)).normalize() for k in got["period"]
            ],
            "customers": got["customers"].astype("int64").to_numpy(),
            "churners": got["churners"].fillna(0).astype("int64").to_numpy(),
        }
    )
    out["churn_rate"] = out["churners"] / out["customers"]
    lo, hi = wilson_ci(out["churners"].to_numpy(), out["customers"].to_numpy())
    out["ci_low"], out["ci_high"] = lo, hi
    out["small_n"] = is_small(out["customers"].to_numpy())
    return out


def risk_by(data: CXData, scores: pd.DataFrame, by: str) -> pd.DataFrame:
    """Return the high-risk share and mean churn probability per group of a customers column.

    Parameters
    ----------
    data
        The data (its customers table holds ``by``).
    scores
        Scores from :func:`score`.
    by
        The customers column; a missing value is its own group, ``(missing)``.

    Returns
    -------
    pandas.DataFrame
        ``<by>, customers, high_risk, high_risk_share, ci_low, ci_high,
        mean_churn_probability, small_n``, largest high-risk share first.

    Raises
    ------
    NotAvailableError
        When the customers table or the column is missing.
    """
    cust = data.require("customers", "customer_id", by, analysis=f"Churn risk by {by}")
    groups = cust.select("customer_id", by).to_pandas()
    groups["customer_id"] = groups["customer_id"].astype(str)
    s = scores[["customer_id", "churn_probability", "risk_band"]].copy()
    s["customer_id"] = s["customer_id"].astype(str)
    m = s.merge(groups, on="customer_id", how="left")
    m[by] = m[by].astype("object").where(m[by].notna(), "(missing)").astype(str)
    m["high"] = (m["risk_band"].astype(str) == BAND_LABELS[2]).astype(int)
    g = (
        m.groupby(by)
        .agg(
            customers=("customer_id", "size"),
            high_risk=("high", "sum"),
            mean_churn_probability=("churn_probability", "mean"),
        )
        .reset_index()
    )
    return risk_by_table(g, by)


def risk_by_table(groups: pd.DataFrame, by: str) -> pd.DataFrame:
    """Finish a risk breakdown: high-risk share with its Wilson 95% interval, sorted.

    Shared by :func:`risk_by` (counted in pandas) and scale mode (counted in the
    engine from the scores table).

    Parameters
    ----------
    groups
        One row per group: ``<by>, customers, high_risk, mean_churn_probability``.
    by
        The group column.

    Returns
    -------
    pandas.DataFrame
        ``<by>, customers, high_risk, high_risk_share, ci_low, ci_high,
        mean_churn_probability, small_n``, largest high-risk share first (ties by group).

    Examples
    --------
    >>> g = pd.DataFrame({"channel": ["a", "b"], "customers": [10, 40],
    ...     "high_risk": [1, 20], "mean_churn_probability": [0.2, 0.5]})
    >>> list(risk_by_table(g, "channel")["channel"])
    ['b', 'a']
    """
    g = groups.copy()
    g["high_risk_share"] = g["high_risk"] / g["customers"]
    lo, hi = wilson_ci(g["high_risk"].to_numpy(), g["customers"].to_numpy())
    g["ci_low"], g["ci_high"] = lo, hi
    g["small_n"] = is_small(g["customers"].to_numpy())
    cols = [by, "customers", "high_risk", "high_risk_share", "ci_low", "ci_high"]
    g = g[[*cols, "mean_churn_probability", "small_n"]]
    return g.sort_values(
        ["high_risk_share", by], ascending=[False, True], kind="stable"
    ).reset_index(drop=True)


def _at_risk(scores: pd.DataFrame, feats: pd.DataFrame, top_n: int) -> pd.DataFrame:
    """Return the ``top_n`` high-risk customers by spend to date, with a few features."""
    cols = [c for c in AT_RISK_COLUMNS if c in feats.columns]
    key = "spend_total" if "spend_total" in cols else "churn_probability"
    high = scores[scores.risk_band == BAND_LABELS[2]].merge(
        feats[["customer_id", *cols]], on="customer_id", how="left"
    )
    top = high.sort_values([key, "customer_id"], ascending=[False, True]).head(top_n)
    return top.drop(columns=["as_of", "horizon_days"])


# --------------------------------------------------------------------------------------
# the analysis (its steps shared with cxkit.churn.scale)
# --------------------------------------------------------------------------------------


class ChurnCutoffs(NamedTuple):
    """The data, definition and cut dates of one churn analysis (:func:`churn_cutoffs`).

    Attributes
    ----------
    end
        The resolved ``as_of``.
    data
        The data cut at :attr:`end`.
    definition
        The churn definition.
    last
        The churn rate's cutoff: the whole day ``horizon_days`` before :attr:`end`.
    t0
        The backtest's training cutoff: the whole day ``2 × horizon_days`` before.
    """

    end: pd.Timestamp
    data: CXData
    definition: ChurnDefinition
    last: pd.Timestamp
    t0: pd.Timestamp

    @property
    def feature_cutoffs(self) -> tuple[pd.Timestamp, ...]:
        """The cutoffs whose features the analysis builds (the backtest's fit cutoff first)."""
        h = pd.Timedelta(days=self.definition.horizon_days)
        return (self.t0 - h, self.t0, self.last, self.end)


def churn_cutoffs(
    data: CXData,
    *,
    as_of: AsOf = None,
    horizon_days: int = 90,
    basis: str = "auto",
    kind: str = "auto",
) -> ChurnCutoffs:
    """Resolve ``as_of``, cut the data there, define churn and derive the cutoffs.

    The first step of :func:`analyze`, in memory and in scale mode.

    Parameters
    ----------
    data
        The data.
    as_of
        The instant of the analysis (:func:`cxkit.data.resolve_as_of`).
    horizon_days, basis, kind
        The churn definition (see :func:`~cxkit.churn.define`).

    Returns
    -------
    ChurnCutoffs
        The cut data, the definition and the cut dates (whole days).

    Raises
    ------
    NotAvailableError
        When the data has no table churn can be defined on.
    """
    end = resolve_as_of(data, as_of)
    d = data.upto(end)
    definition = define(d, horizon_days=horizon_days, basis=basis, kind=kind)
    h = definition.horizon_days
    return ChurnCutoffs(end, d, definition, _day_before(end, h), _day_before(end, 2 * h))


def churn_rate_summary(
    customers: int, churners: int, *, cutoff: pd.Timestamp, window_end: pd.Timestamp
) -> dict[str, object]:
    """Return the churn rate at a cutoff with its Wilson 95% interval (:attr:`ChurnResult.churn_rate`).

    Parameters
    ----------
    customers, churners
        The labelled customers at ``cutoff`` and those of them who churned.
    cutoff, window_end
        The cutoff and the end of its label window.

    Returns
    -------
    dict
        ``cutoff, window_end, customers, churners, rate, ci_low, ci_high`` (NaN rate and
        interval without customers).

    Examples
    --------
    >>> r = churn_rate_summary(200, 50, cutoff=pd.Timestamp("2024-01-01"),
    ...     window_end=pd.Timestamp("2024-03-31"))
    >>> r["rate"], round(r["ci_low"], 3)
    (0.25, 0.195)
    """
    n, k = customers, churners
    lo, hi = wilson_ci(k, n) if n else (np.nan, np.nan)
    return {
        "cutoff": cutoff,
        "window_end": window_end,
        "customers": n,
        "churners": k,
        "rate": k / n if n else np.nan,
        "ci_low": lo,
        "ci_high": hi,
    }


def backtest_or_missing(
    data: CXData,
    *,
    t0: pd.Timestamp,
    definition: ChurnDefinition,
    calibration: str,
    trend_days: int,
    max_train_rows: int | None,
    random_state: int,
    cache: FeatureCache,
    missing: dict[str, str],
) -> ChurnBacktest | None:
    """Run the backtest of :func:`analyze`, or say in ``missing`` why it is not available.

    Parameters
    ----------
    data
        The data, cut at ``as_of``.
    t0, definition, calibration, trend_days, max_train_rows, random_state
        As for :func:`~cxkit.churn.run_backtest`.
    cache
        The features shared with the other steps.
    missing
        The result's missing parts: ``"backtest"`` is set when the data cannot support
        the backtest.

    Returns
    -------
    ChurnBacktest or None
        The backtest, or None when it is not available.
    """
    try:
        return run_backtest(
            data,
            t0=t0,
            definition=definition,
            calibration=calibration,
            trend_days=trend_days,
            max_train_rows=max_train_rows,
            random_state=random_state,
            _cache=cache,
        )
    except (DataError, UsageError) as err:
        missing["backtest"] = f"The backtest is not available: {err}"
        return None


@run_cached("churn.analyze")
def analyze(
    data: CXData,
    *,
    as_of: AsOf = None,
    horizon_days: int = 90,
    basis: str = "auto",
    kind: str = "auto",
    thresholds: tuple[float, float] = BAND_THRESHOLDS,
    calibration: str = "auto",
    trend_days: int = 90,
    max_train_rows: int | None = 200_000,
    random_state: int = 0,
    by: str | None = "acquisition_channel",
    top_n: int = 15,
    mode: str | None = None,
) -> ChurnResult:
    """Run the churn analysis: rate, backtest and scores at ``as_of``, sharing features.

    Parameters
    ----------
    data
        The data.
    as_of
        The instant the analysis stands at, resolved once by
        :func:`cxkit.data.resolve_as_of` (a date includes its whole day; ``None`` is the
        data's own cut, else its latest timestamp). Nothing after it is read. The
        derived cutoffs are whole days: the churn rate at the day ``horizon_days``
        before ``as_of``, the backtest trained at the day ``2 × horizon_days`` before.
    horizon_days, basis, kind
        The churn definition (see :func:`~cxkit.churn.define`).
    thresholds
        The risk-band thresholds ``(low, high)``.
    calibration, trend_days, max_train_rows, random_state
        As for :class:`~cxkit.churn.ChurnModel`.
    by
        The customers column for the risk breakdown (None: no breakdown).
    top_n
        How many of the riskiest customers :attr:`ChurnResult.at_risk` lists.
    mode
        ``"memory"`` or ``"scale"`` (:func:`cxkit.churn.scale.analyze_scale`); None: from
        :func:`cxkit.scale.current_settings` (the ``CXKIT_SCALE`` environment variable).

    Returns
    -------
    ChurnResult
        Every table of the churn report, with :meth:`ChurnResult.findings`. Its
        :attr:`~ChurnResult.scores` come from the churn model unless a baseline beat it
        on the test period (:func:`~cxkit.churn.choose_scores`); then they come from
        that baseline, :attr:`~ChurnResult.scores_from` names it and
        :meth:`~ChurnResult.model_warning` says so.

    Raises
    ------
    NotAvailableError
        When the data has no table churn can be defined on.
    UsageError
        For a bad option, or when the latest label window is not observed.

    Examples
    --------
    >>> import cxkit
    >>> from cxkit import churn
    >>> result = churn.analyze(cxkit.load("data/demo"))  # doctest: +SKIP
    >>> result.findings()[0].metric  # doctest: +SKIP
    'churn_rate'
    """
    if (scaled := dispatch("churn", mode, locals())) is not None:  # cxkit.churn.scale
        return scaled  # type: ignore[return-value]
    cuts = churn_cutoffs(data, as_of=as_of, horizon_days=horizon_days, basis=basis, kind=kind)
    end, d, definition, last, t0 = cuts
    cache = FeatureCache(d, trend_days, 12, None, definition.horizon_days)
    # the four cutoffs: their channel and event-type levels found in one scan
    cache.expect(*cuts.feature_cutoffs)
    # Each cutoff's features are built once and dropped when the last step using them is
    # done: the backtest's fit cutoff t0 − h after its fits, t0 and t0 + h (the backtest's
    # calibration and test cutoffs, the scoring model's fit and calibration cutoffs) after
    # the scoring fit, ``end`` after the at-risk table. At most three are held at once:
    # ``end``'s features are built while the scoring model fits on t0's and t0 + h's.
    # The scoring model (fitted at t0, calibrated at ``last``) can start once the backtest
    # holds its frames and has made its test predictions (whose design matrices are the
    # big ones): it fits in a thread while the backtest measures and the engine builds the
    # features at ``end``. The same frames and seed: the same model as a fit afterwards.
    background = ThreadPoolExecutor(max_workers=1, thread_name_prefix="churn-score-fit")
    scoring_fit: list[Future[ChurnModel]] = []

    def start_scoring_fit() -> None:
        try:  # the frames are built here, in the engine's thread
            fit_frames(d, cutoff=last, definition=definition, cache=cache)
        except (UsageError, DataError):
            return  # score() meets the same error itself
        model = ChurnModel(
            calibration=calibration,
            trend_days=trend_days,
            max_train_rows=max_train_rows,
            random_state=random_state,
        )
        scoring_fit.append(
            background.submit(model.fit, d, cutoff=last, definition=definition, _cache=cache)
        )

    cache.when(TEST_PREDICTED, start_scoring_fit)
    try:
        return _analyze_parts(
            d,
            cuts,
            cache,
            scoring_fit,
            thresholds=thresholds,
            calibration=calibration,
            trend_days=trend_days,
            max_train_rows=max_train_rows,
            random_state=random_state,
            by=by,
            top_n=top_n,
        )
    finally:
        background.shutdown(wait=True)


def _analyze_parts(
    d: CXData,
    cuts: ChurnCutoffs,
    cache: FeatureCache,
    scoring_fit: list[Future[ChurnModel]],
    *,
    thresholds: tuple[float, float],
    calibration: str,
    trend_days: int,
    max_train_rows: int | None,
    random_state: int,
    by: str | None,
    top_n: int,
) -> ChurnResult:
    """:func:`analyze` after its set-up: the backtest, the scores and the tables."""
    end, _, definition, last, t0 = cuts
    missing: dict[str, str] = {}
    lab = cache.labels(last, definition)
    rate = churn_rate_summary(len(lab), int(lab["churned"].sum()), cutoff=last, window_end=end)
    with cache.holding(t0, last):
        backtest = backtest_or_missing(
            d,
            t0=t0,
            definition=definition,
            calibration=calibration,
            trend_days=trend_days,
            max_train_rows=max_train_rows,
            random_state=random_state,
            cache=cache,
            missing=missing,
        )
    # the scores come from the model unless a baseline beat it on the test period
    scores_from = "model" if backtest is None else backtest.scores_used
    common = {
        "as_of": end,
        "definition": definition,
        "thresholds": thresholds,
        "calibration": calibration,
        "trend_days": trend_days,
        "max_train_rows": max_train_rows,
        "random_state": random_state,
        "_cache": cache,
    }
    with cache.holding(end):
        try:
            fitted = None  # the model fitted in the background, when it is the one used
            if scores_from == "model" and scoring_fit:
                # the features it scores are built while it fits
                cache.frame(end, definition, labelled=False)
                fitted = scoring_fit[0].result()
            scores = score(d, scores_from=scores_from, model=fitted, **common)  # type: ignore[arg-type]
        except DataError as err:  # a baseline that cannot be refitted at as_of
            missing["scores"] = (
                f"The scores of {MODEL_LABELS[scores_from]} are not available ({err}); "
                "the churn model's are used."
            )
            scores_from = "model"
            scores = score(d, **common)  # type: ignore[arg-type]
    cache.release(t0, last)
    at_risk = _at_risk(scores, cache.features(end), top_n)
    cache.release(end)
    trend = churn_rate_over_time(d, definition=definition, as_of=end)
    by_table = None
    if by is not None:
        try:
            by_table = risk_by(d, scores, by)
        except NotAvailableError as err:
            missing["risk_by"] = str(err)
    return ChurnResult(
        as_of=end,
        definition=definition,
        churn_rate=rate,
        backtest=backtest,
        scores=scores,
        thresholds=(float(thresholds[0]), float(thresholds[1])),
        rate_over_time=trend,
        by=by,
        risk_by=by_table,
        at_risk=at_risk,
        notes=[] if backtest is None else list(backtest.notes),
        scores_from=scores_from,
        choice=None if backtest is None else backtest.choice,
        missing_parts=missing,
        not_available=list(missing.values()),
    )


def findings(
    data: CXData | None = None,
    *,
    result: ChurnResult | None = None,
    as_of: AsOf = None,
    **options: object,
) -> list[Finding]:
    """Return the churn findings: ``result.findings()``, or ``analyze(data, ...).findings()``.

    Parameters
    ----------
    data
        The data, when no ``result`` is given.
    result
        A result of :func:`analyze` (nothing is recomputed).
    as_of
        As in :func:`analyze`.
    **options
        The options of :func:`analyze`.

    Returns
    -------
    list of Finding
        :meth:`ChurnResult.findings`.

    Raises
    ------
    UsageError
        When neither ``data`` nor ``result`` is given.
    """
    if result is None:
        if data is None:
            raise UsageError("findings needs data or a result from analyze()")
        result = analyze(data, as_of=as_of, **options)  # type: ignore[arg-type]
    return result.findings()
