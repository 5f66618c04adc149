"""The CLV analysis in one call: :func:`analyze` returns a :class:`ClvResult`.

This is the one CLV pipeline: the CLV report (notebook 30) and the executive summary
both call :func:`analyze` with its defaults, so their CLV figures are the same numbers
(and, within a report run, the same cached result: :func:`cxkit.cache.run_cached`).

The steps, at ``as_of`` (:func:`cxkit.data.resolve_as_of`):

1. the RFM summary of the orders up to ``as_of``, in weeks (:func:`~cxkit.clv.rfm_summary`);
2. BG/NBD fitted on it (:class:`~cxkit.clv.BetaGeo`);
3. Gamma-Gamma (:class:`~cxkit.clv.GammaGamma`) when at least ``min_repeat_customers``
   (default :data:`cxkit.stats.MIN_N`, 30) customers have a repeat purchase of positive
   value; otherwise each customer's own mean repeat value is their expected spend, and
   :attr:`ClvResult.notes` says so;
4. discounted value over ``horizon_weeks`` at ``annual_discount_rate`` times ``margin``
   (:func:`~cxkit.clv.customer_value`), with its intervals per customer, for the total
   and for the top share, by parametric bootstrap from the fits' covariance
   (:func:`~cxkit.clv.clv_intervals`, ``n_draws`` draws);
5. the holdout check: the same BG/NBD refitted on the data up to ``calibration_end``
   (default ``holdout_weeks`` before ``as_of``) and compared with what happened;
6. P(alive), value by acquisition channel, and the valuable customers who have probably
   lapsed (the value at risk of being lost).

Scale mode (:func:`cxkit.clv.scale.analyze_scale`) runs the same steps on engine tables
through the same helpers: both start a :class:`ClvRun` (the period, the settings, the
notes), run the holdout check through :meth:`ClvRun.check_holdout`, build their results
from :meth:`ClvRun.result_fields` and their findings with :func:`lapsed_finding`,
:func:`holdout_finding`, :func:`total_value_finding`, :func:`top_share_finding` and
:func:`lapsing_finding`; only the data source differs.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from cxkit.cache import run_cached
from cxkit.clv.bgnbd import BetaGeo
from cxkit.clv.checks import (
    cumulative_repeat_purchases,
    holdout_by_frequency,
    holdout_totals,
    p_alive_distribution,
)
from cxkit.clv.gamma_gamma import GammaGamma
from cxkit.clv.intervals import ClvIntervals, clv_intervals
from cxkit.clv.rfm import rfm_summary
from cxkit.clv.value import (
    clv_by,
    clv_column,
    customer_value,
    lapsing_high_value,
    top_share,
    valuable_repeat_customers,
    value_attrs,
)
from cxkit.data import CXData, end_of_day, parse_as_of, resolve_as_of
from cxkit.display import format_money
from cxkit.errors import ConvergenceError, DataError, NotAvailableError, UsageError
from cxkit.findings import Finding, finding_from_rate
from cxkit.result import AsOf, Result
from cxkit.scale import dispatch
from cxkit.stats import MIN_N, mean_ci, wilson_ci


def label_words(label: str) -> str:
    """Return a horizon label in words: ``"52w"`` -> ``"52 weeks"``."""
    words = {"w": "weeks", "d": "days", "m": "months"}
    return f"{label[:-1]} {words.get(label[-1], label[-1])}"


def lapsed_share(summary: pd.DataFrame, bg: BetaGeo) -> dict[str, float]:
    """Return the share of repeat customers who have probably lapsed (P(alive) < 50%).

    The one computation behind every statement of the lapsed share in the CLV report
    (the finding, the P(alive) chart's title, the takeaway): only repeat customers can
    be judged, because BG/NBD lets customers leave only after a repeat purchase.

    Parameters
    ----------
    summary
        The RFM summary the model was applied to.
    bg
        The fitted BG/NBD model.

    Returns
    -------
    dict of str to float
        ``value`` (the share), ``ci_low``, ``ci_high`` (Wilson 95%), ``n`` (repeat
        customers), ``lapsed`` (how many), ``one_time`` (one-time buyers, not judged)
        and ``median_p_alive`` (among the repeat customers).
    """
    pa = np.asarray(bg.p_alive(summary), dtype=float)
    repeat = np.asarray(summary["frequency"]) > 0
    n_rep = int(repeat.sum())
    return lapsed_counts(
        int(np.sum(pa[repeat] < 0.5)),
        n_rep,
        customers=len(summary),
        median_p_alive=float(np.median(pa[repeat])) if n_rep else np.nan,
    )


def lapsed_counts(
    lapsed: int, repeat: int, *, customers: int, median_p_alive: float
) -> dict[str, float]:
    """Return :func:`lapsed_share`'s figures from the counts (memory and scale mode alike).

    Parameters
    ----------
    lapsed
        Repeat customers with P(alive) < 50%.
    repeat
        Repeat customers (``frequency > 0``).
    customers
        All customers of the summary.
    median_p_alive
        The median P(alive) of the repeat customers (NaN without any).

    Returns
    -------
    dict of str to float
        As :func:`lapsed_share`.

    Examples
    --------
    >>> lapsed_counts(3, 10, customers=25, median_p_alive=0.7)["one_time"]
    15
    """
    low, high = wilson_ci(lapsed, repeat) if repeat else (np.nan, np.nan)
    return {
        "value": lapsed / repeat if repeat else np.nan,
        "ci_low": float(low),
        "ci_high": float(high),
        "n": repeat,
        "lapsed": lapsed,
        "one_time": customers - repeat,
        "median_p_alive": median_p_alive,
    }


def money0(v: float) -> str:
    """Money in a sentence, whole units, in the report's currency (:func:`~cxkit.display.format_money`)."""
    return format_money(v, decimals=0)


def total_interval_words(intervals: ClvIntervals | None) -> tuple[str, dict[str, object]]:
    """Return what the total-value finding adds about its intervals, and its extra fields."""
    if intervals is None:
        return "", {}
    t = intervals.total
    words = (
        f" Model uncertainty: the expected total lies between {money0(t['ci_low'])} and "
        f"{money0(t['ci_high'])} (95% interval from the fitted parameters' uncertainty)"
    )
    extra: dict[str, object] = {"model_ci_low": t["ci_low"], "model_ci_high": t["ci_high"]}
    if np.isfinite(t["pred_low"]):
        words += (
            f"; what the customers actually bring, purchase randomness included, between "
            f"{money0(t['pred_low'])} and {money0(t['pred_high'])} (95% predictive interval)"
        )
        extra.update(predictive_low=t["pred_low"], predictive_high=t["pred_high"])
    return words + ".", extra


def _share_interval_words(
    intervals: ClvIntervals | None, top: float
) -> tuple[str, dict[str, object]]:
    """Return what the top-share finding adds about its interval, and its extra fields."""
    if intervals is None or intervals.top_share["top"] != top:
        return "", {}
    s = intervals.top_share
    return (
        f"; 95% interval {s['ci_low']:.0%}–{s['ci_high']:.0%} from the fitted parameters' "
        "uncertainty",
        {"model_ci_low": s["ci_low"], "model_ci_high": s["ci_high"]},
    )


def lapsed_finding(share: dict[str, float]) -> Finding | None:
    """Return the finding on the lapsed share of repeat customers (None without any).

    Parameters
    ----------
    share
        :func:`lapsed_share` (or :func:`lapsed_counts`).

    Returns
    -------
    Finding or None
        ``lapsed_share_repeaters``, importance 6.
    """
    if not share.get("n"):
        return None
    return finding_from_rate(
        share,
        domain="clv",
        metric="lapsed_share_repeaters",
        importance=6,
        sentence=f"{share['value']:.0%} of the {share['n']:,} repeat customers have "
        f"probably lapsed (P(alive) < 50%; 95% CI {share['ci_low']:.0%}–"
        f"{share['ci_high']:.0%}). The {share['one_time']:,} one-time buyers cannot be "
        "judged this way: BG/NBD lets customers leave only after a repeat purchase.",
    )


def holdout_finding(holdout: dict[str, float] | None, *, note: str = "") -> Finding | None:
    """Return the finding on the holdout check's error (None without the check).

    Parameters
    ----------
    holdout
        :func:`~cxkit.clv.holdout_totals` of the check, or ``None``.
    note
        Added after the customers (scale mode: how the check was sampled, if it was).

    Returns
    -------
    Finding or None
        ``holdout_error``, importance 5; None also when the error is not finite.
    """
    if holdout is None or not np.isfinite(holdout.get("relative_error", np.nan)):
        return None
    err = holdout["relative_error"]
    return finding_from_rate(
        {"value": float(err), "n": int(holdout["customers"])},
        domain="clv",
        metric="holdout_error",
        importance=5,
        low=None,
        high=None,
        comparison="model vs actual holdout purchases",
        sentence=f"Checked on a holdout period, the model expected "
        f"{holdout['expected']:,.0f} repeat purchases against {holdout['actual']:,.0f} "
        f"actual ({err:+.1%}), over {int(holdout['customers']):,} customers{note}.",
    )


def total_value_finding(
    stats: dict[str, float],
    *,
    label: str,
    annual_discount_rate: float,
    intervals: ClvIntervals | None = None,
    extra: dict[str, object] | None = None,
) -> Finding:
    """Return the finding on the customers' total expected value.

    Parameters
    ----------
    stats
        ``total``, ``mean``, ``ci_low``, ``ci_high`` (the mean's 95% interval) and ``n``
        of the CLV column.
    label
        The horizon label (``"52w"``).
    annual_discount_rate
        The discount rate the values were computed at.
    intervals
        The CLV intervals: the sentence then states the total's parameter (and
        predictive) interval (:func:`total_interval_words`).
    extra
        More fields for the finding's ``extra``, after the intervals'.

    Returns
    -------
    Finding
        ``total_clv_<label>``, importance 10; its interval is ``n`` times the mean's.
    """
    n = int(stats["n"])
    total, mean, low, high = stats["total"], stats["mean"], stats["ci_low"], stats["ci_high"]
    words, total_extra = total_interval_words(intervals)
    # the interval of the total is n times the interval of the mean
    return finding_from_rate(
        {"value": total, "ci_low": low * n, "ci_high": high * n, "n": n},
        domain="clv",
        metric=f"total_clv_{label}",
        unit="currency",
        importance=10,
        sentence=f"The {n:,} customers are expected to bring {money0(total)} over the "
        f"next {label_words(label)} (discounted at {annual_discount_rate:.0%} a year): "
        f"{format_money(mean)} per customer (95% CI {format_money(low)}–"
        f"{format_money(high)}).{words}",
        extra={**total_extra, **(extra or {})},
    )


def top_share_finding(
    share: float, *, n: int, top: float, label: str, intervals: ClvIntervals | None = None
) -> Finding:
    """Return the finding on the share of expected value the top customers hold.

    Parameters
    ----------
    share
        The top customers' share of the total expected value.
    n
        The customers.
    top
        The top share of customers (0.2: the top 20%).
    label
        The horizon label (``"52w"``).
    intervals
        The CLV intervals: when they hold the interval of this top share, the sentence
        states it.

    Returns
    -------
    Finding
        ``top<pct>_share_<label>``, importance 9.
    """
    words, share_extra = _share_interval_words(intervals, top)
    return finding_from_rate(
        {"value": share, "n": n},
        domain="clv",
        metric=f"top{round(top * 100)}_share_{label}",
        importance=9,
        low=None,
        high=None,
        sentence=f"The top {top:.0%} of customers hold {share:.0%} of the expected value "
        f"over the next {label_words(label)} (n = {n:,}{words}).",
        extra=share_extra,
    )


def lapsing_finding(lapsing: int, valuable: int, *, top: float) -> Finding:
    """Return the finding on the valuable repeat customers who have probably lapsed.

    Parameters
    ----------
    lapsing
        The valuable repeat customers with P(alive) < 50%.
    valuable
        The valuable repeat customers (top ``top`` by past repeat spend).
    top
        The top share that makes a repeat customer valuable.

    Returns
    -------
    Finding
        ``lapsing_high_value``, importance 8.
    """
    return finding_from_rate(
        {"value": float(lapsing), "n": valuable},
        domain="clv",
        metric="lapsing_high_value",
        unit="customers",
        importance=8,
        low=None,
        high=None,
        sentence=f"{lapsing:,} of the {valuable:,} most valuable repeat customers (top "
        f"{top:.0%} by past repeat spend) have probably lapsed (P(alive) < 50%): "
        "candidates for win-back.",
    )


def intervals_words(
    best: pd.Series, column: str, *, half_width: float, n: int | None = None
) -> str:
    """Return the takeaway on the per-customer intervals (:meth:`ClvResult.intervals_sentence`).

    Parameters
    ----------
    best
        The most valuable customer's row of :meth:`ClvResult.most_valuable`.
    column
        The CLV column.
    half_width
        The median relative half-width of the parameter intervals over the customers
        of positive value.
    n
        Those customers, when counted (memory mode).

    Returns
    -------
    str
        The sentence.
    """
    over = "the customers" if n is None else f"the {n:,} customers"
    text = (
        f"The fitted parameters' uncertainty moves a customer's expected value by about "
        f"±{half_width:.1%} (median over {over} with a positive value). The most valuable "
        f"customer is expected to bring {money0(best[column])} (95% interval "
        f"{money0(best[f'{column}_low'])}–{money0(best[f'{column}_high'])})"
    )
    if np.isfinite(best.get(f"{column}_pred_low", np.nan)):
        return text + (
            f", but what they actually bring could be anywhere from "
            f"{money0(best[f'{column}_pred_low'])} to {money0(best[f'{column}_pred_high'])} "
            "(95% predictive interval): one customer's purchases are far less certain than "
            "the model's expectation."
        )
    return text + "."


def findings(
    summary: pd.DataFrame,
    bg: BetaGeo,
    *,
    clv_frame: pd.DataFrame | None = None,
    holdout: dict[str, float] | None = None,
    top: float = 0.2,
    intervals: ClvIntervals | None = None,
) -> list[Finding]:
    """Return the CLV domain's key findings from its parts (:meth:`ClvResult.findings`).

    Parameters
    ----------
    summary
        The RFM summary the models were applied to (one row per customer).
    bg
        The fitted BG/NBD model.
    clv_frame
        The output of :func:`~cxkit.clv.customer_value` for ``summary``, for the value
        findings.
    holdout
        The output of :func:`~cxkit.clv.holdout_totals`, for the model-check finding.
    top
        The top share used for the concentration finding.
    intervals
        :func:`~cxkit.clv.clv_intervals` of ``clv_frame`` (with the same ``top``): the
        total and the top share then also state their intervals from the fit's
        parameter uncertainty (and the total its predictive interval), which the
        findings keep in ``extra`` (``model_ci_low``, ``model_ci_high``,
        ``predictive_low``, ``predictive_high``).

    Returns
    -------
    list of Finding
        Each with its ``n`` and, for rates and totals, its 95% interval; importance on
        the 0–10 scale (total value 10, concentration 9, lapsing valuable customers 8,
        lapsed share 6, holdout error 5).
    """
    n = len(summary)
    pa = bg.p_alive(summary)
    out = [f for f in (lapsed_finding(lapsed_share(summary, bg)), holdout_finding(holdout)) if f]
    if clv_frame is not None:
        col = clv_column(clv_frame)
        label = col.removeprefix("clv_")
        values = clv_frame[col].to_numpy()
        mean, low, high, _ = mean_ci(values)
        stats = {"total": float(values.sum()), "mean": mean, "ci_low": low, "ci_high": high, "n": n}
        rate = clv_frame.attrs.get("annual_discount_rate", np.nan)
        out.append(
            total_value_finding(stats, label=label, annual_discount_rate=rate, intervals=intervals)
        )
        share = top_share(values, top=top)
        out.append(top_share_finding(share, n=n, top=top, label=label, intervals=intervals))
        merged = summary.assign(p_alive=pa, **{col: values})
        lapsing = lapsing_high_value(merged, top=top, column=col)
        n_valuable = int(valuable_repeat_customers(merged, top=top).sum())
        out.append(lapsing_finding(len(lapsing), n_valuable, top=top))
    return out


@dataclass(kw_only=True)
class ClvResult(Result):
    """Everything the CLV report shows, computed once by :func:`analyze`.

    Attributes
    ----------
    summary
        The RFM summary at ``as_of`` (weeks), one row per customer who bought.
    bg
        BG/NBD fitted on ``summary``.
    gg
        Gamma-Gamma fitted on ``summary``, or ``None`` (see ``notes["gamma_gamma"]``).
    values
        :func:`~cxkit.clv.customer_value` per customer: ``customer_id, p_alive,
        expected_purchases_<h>, expected_spend_per_purchase, clv_<h>``.
    p_alive
        :func:`~cxkit.clv.p_alive_distribution` of the repeat customers of ``summary``
        (one-time buyers cannot be judged: see :func:`lapsed_share`).
    lapsing
        :func:`~cxkit.clv.lapsing_high_value`: the valuable repeat customers who have
        probably lapsed, most past repeat spend first.
    by_channel
        :func:`~cxkit.clv.clv_by` acquisition channel, or ``None`` without that column.
    calibration_end
        The end of the calibration period of the holdout check, or ``None``.
    calibration
        The calibration summary with its holdout columns, or ``None``.
    bg_check
        BG/NBD fitted on ``calibration``, or ``None``.
    holdout
        :func:`~cxkit.clv.holdout_totals` of the check, or ``None``.
    by_frequency
        :func:`~cxkit.clv.holdout_by_frequency` of the check, or ``None``.
    cumulative
        :func:`~cxkit.clv.cumulative_repeat_purchases` of the check, or ``None``.
    notes
        The not-available sentence per part (``"gamma_gamma"``, ``"holdout"``,
        ``"by_channel"``); the same sentences are in ``not_available``.
    model_warnings
        The models' warnings (e.g. frequency and spend correlated), in words.
    intervals
        :func:`~cxkit.clv.clv_intervals`: per-customer, total and top-share intervals
        by parametric bootstrap from the fits' covariance (and predictive intervals),
        or ``None`` (see ``notes["intervals"]``).
    horizon_weeks, annual_discount_rate, margin, top, min_repeat_customers
        The settings used.
    n_draws, random_state
        The parameter draws of the intervals and their seed.
    """

    domain: ClassVar[str] = "clv"
    summary: pd.DataFrame
    bg: BetaGeo
    gg: GammaGamma | None
    values: pd.DataFrame
    p_alive: pd.DataFrame
    lapsing: pd.DataFrame
    by_channel: pd.DataFrame | None = None
    calibration_end: pd.Timestamp | None = None
    calibration: pd.DataFrame | None = None
    bg_check: BetaGeo | None = None
    holdout: dict[str, float] | None = None
    by_frequency: pd.DataFrame | None = None
    cumulative: pd.DataFrame | None = None
    notes: dict[str, str] = field(default_factory=dict)
    model_warnings: list[str] = field(default_factory=list)
    intervals: ClvIntervals | None = None
    horizon_weeks: float
    annual_discount_rate: float
    margin: float
    top: float
    min_repeat_customers: int
    n_draws: int = 200
    random_state: int | None = 0

    @property
    def scored(self) -> pd.DataFrame:
        """Return :attr:`summary` joined with :attr:`values`, one row per customer.

        Returns
        -------
        pandas.DataFrame
            The summary columns, then ``p_alive``, the expected purchases and spend, the
            CLV column and, beside it, its intervals (``<clv>_low``, ``<clv>_high``:
            parameter uncertainty; ``<clv>_pred_low``, ``<clv>_pred_high``: predictive,
            for the most valuable customers) when :attr:`intervals` exists.
        """
        return _scored(self.summary, self.values, self.intervals)

    def most_valuable(self, n: int = 20) -> pd.DataFrame:
        """Return the ``n`` most valuable customers with their CLV intervals.

        The one source of the CLV report's table and chart of customers with intervals.

        Parameters
        ----------
        n
            How many, most valuable first (ties by customer ID).

        Returns
        -------
        pandas.DataFrame
            ``customer_id, frequency, recency, T, p_alive`` and the CLV column with its
            interval columns.
        """
        col = self.clv_column
        scored = self.scored
        keep = ["customer_id", "frequency", "recency", "T", "p_alive", col]
        keep += [] if self.intervals is None else self.intervals.columns
        order = scored.sort_values([col, "customer_id"], ascending=[False, True])
        return order.head(n)[keep].reset_index(drop=True)

    def intervals_sentence(self) -> str | None:
        """Return the takeaway on how wide the per-customer intervals are.

        Returns
        -------
        str or None
            The median relative half-width of the parameter intervals over the customers,
            and the most valuable customer's two intervals; None without intervals.
        """
        if self.intervals is None:
            return None
        col = self.clv_column
        width = self.intervals.relative_width(self.values[col])
        return intervals_words(
            self.most_valuable(1).iloc[0],
            col,
            half_width=width["parameter_half_width"],
            n=int(width["n"]),
        )

    @property
    def clv_column(self) -> str:
        """Return the name of the CLV column of :attr:`values` (e.g. ``"clv_52w"``).

        Returns
        -------
        str
            The column name.
        """
        return clv_column(self.values)

    @property
    def lapsed(self) -> dict[str, float]:
        """Return :func:`lapsed_share` of :attr:`summary`: the repeat customers who lapsed.

        Returns
        -------
        dict of str to float
            The share with its interval and n, as the ``lapsed_share_repeaters`` finding.
        """
        return lapsed_share(self.summary, self.bg)

    @property
    def valuable_customers(self) -> int:
        """Return how many repeat customers are "most valuable" (the lapsing finding's n).

        Returns
        -------
        int
            :func:`~cxkit.clv.valuable_repeat_customers` of :attr:`scored` at :attr:`top`.
        """
        return int(valuable_repeat_customers(self.scored, top=self.top).sum())

    def tracking_sentence(self) -> str | None:
        """Return the takeaway of the week-by-week chart of the holdout check.

        The chart's model line is the expectation from the calibration fit for customers
        of each first-purchase date, without their own histories; it is not a second
        accuracy figure, so the sentence states the holdout check's one figure.

        Returns
        -------
        str or None
            The sentence; None without the check.
        """
        if self.cumulative is None or self.holdout is None or self.calibration_end is None:
            return None
        hold = self.cumulative[self.cumulative["holdout"]]
        err = self.holdout["relative_error"]
        return (
            f"In the holdout weeks the {int(self.holdout['customers']):,} customers who had "
            f"bought by {self.calibration_end:%Y-%m-%d} made "
            f"{hold['actual_repeat_purchases'].sum():,.0f} repeat purchases. The dashed line "
            "follows the model from each customer's first purchase only; the holdout check "
            f"above also uses each customer's own history ({err:+.1%} against actual)."
        )

    def findings(self) -> list[Finding]:
        """Return the CLV findings, most important first.

        Returns
        -------
        list of Finding
            Total value, concentration, valuable customers who have probably lapsed, the
            lapsed share of repeat customers and (with the check) the holdout error.
        """
        found = findings(
            self.summary,
            self.bg,
            clv_frame=self.values,
            holdout=self.holdout,
            top=self.top,
            intervals=self.intervals,
        )
        return sorted(found, key=lambda f: -f.importance)

    def params_table(self) -> pd.DataFrame:
        """Return the fitted parameters of both models with standard errors and 95% CIs.

        Returns
        -------
        pandas.DataFrame
            ``model, parameter, estimate, se, ci_low, ci_high``; Gamma-Gamma rows only
            when it was fitted.
        """
        parts = [self.bg.params_table().assign(model="BG/NBD")]
        if self.gg is not None:
            parts.append(self.gg.params_table().assign(model="Gamma-Gamma"))
        table = pd.concat(parts)
        return table[["model", "parameter", "estimate", "se", "ci_low", "ci_high"]]

    def value_by(self, labels: pd.Series | pd.DataFrame, *, by: str | None = None) -> pd.DataFrame:
        """Return mean CLV per group of customers (e.g. per persona), with 95% intervals.

        Parameters
        ----------
        labels
            The group per customer: a Series indexed by ``customer_id`` (e.g.
            :func:`cxkit.personas.persona_labels`) or a frame with ``customer_id`` and
            the column ``by``. Customers without a label form a ``"(missing)"`` group.
        by
            The group column; default the Series' name.

        Returns
        -------
        pandas.DataFrame
            As :func:`~cxkit.clv.clv_by`, most valuable group first.

        Raises
        ------
        UsageError
            When the group column is not named.
        """
        if isinstance(labels, pd.Series):
            by = by or labels.name
            if by is None:
                raise UsageError("name the group column: value_by(labels, by='persona')")
            frame = labels.rename(by).rename_axis("customer_id").reset_index()
        else:
            if by is None:
                raise UsageError("name the group column: value_by(frame, by='persona')")
            frame = labels[["customer_id", by]]
        merged = self.scored.merge(frame, on="customer_id", how="left")
        return clv_by(merged, by, column=self.clv_column)


def _scored(
    summary: pd.DataFrame, values: pd.DataFrame, intervals: ClvIntervals | None = None
) -> pd.DataFrame:
    out = summary.join(values.drop(columns="customer_id"))
    if intervals is not None:
        out = out.join(intervals.per_customer[intervals.columns])
    return out


@contextmanager
def clv_model_warnings(into: list[str]) -> Iterator[None]:
    """Collect the models' UserWarnings as sentences; re-raise the other warnings."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield
    for w in caught:
        if issubclass(w.category, UserWarning):
            into.append(str(w.message))
        else:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)


#: What stands in for Gamma-Gamma's expected spend when it is not used.
_FALLBACK = (
    "expected spend per purchase is each repeat customer's own mean repeat value (the "
    "overall mean for one-time buyers)"
)


def gamma_gamma_shortfall(eligible: int, min_repeat_customers: int) -> str | None:
    """Return the note that Gamma-Gamma is not fitted on too few customers (None: enough).

    Parameters
    ----------
    eligible
        Customers with a repeat purchase of positive value.
    min_repeat_customers
        The fewest on which Gamma-Gamma is fitted.

    Returns
    -------
    str or None
        The ``notes["gamma_gamma"]`` sentence, or None when there are enough.
    """
    if eligible >= min_repeat_customers:
        return None
    return (
        f"The Gamma-Gamma spend model is not available: it needs at least "
        f"{min_repeat_customers:,} customers with a repeat purchase of positive value, "
        f"got {eligible:,}; {_FALLBACK}."
    )


def spend_model(
    summary: pd.DataFrame, min_repeat_customers: int, notes: dict[str, str], said: list[str]
) -> GammaGamma | None:
    """Fit Gamma-Gamma when enough customers have a repeat purchase of positive value."""
    eligible = int(((summary["frequency"] > 0) & (summary["monetary_value"] > 0)).sum())
    if (short := gamma_gamma_shortfall(eligible, min_repeat_customers)) is not None:
        notes["gamma_gamma"] = short
        return None
    try:
        with clv_model_warnings(said):
            gg = GammaGamma().fit(summary)
    except (DataError, ConvergenceError) as err:
        notes["gamma_gamma"] = f"The Gamma-Gamma spend model is not available ({err}); {_FALLBACK}."
        return None
    q = float(gg.params_["q"])
    if q <= 1:
        notes["gamma_gamma"] = (
            f"The Gamma-Gamma spend model is not used: its fitted q = {q:.3f} <= 1 means an "
            f"infinite mean spend (check for extreme order values); {_FALLBACK}."
        )
        return None
    return gg


def resolve_calibration_end(
    end: pd.Timestamp, calibration_end: AsOf, holdout_weeks: float | None
) -> pd.Timestamp | None:
    """Return the end of the calibration period (None: no holdout check)."""
    if calibration_end is not None:
        return parse_as_of(calibration_end)
    if not holdout_weeks:
        return None
    return end_of_day((end - pd.Timedelta(weeks=holdout_weeks)).normalize())


@dataclass(kw_only=True)
class HoldoutCheck:
    """The parts of the holdout check, in memory or scale mode (:meth:`ClvRun.check_holdout`).

    Attributes
    ----------
    bg_check
        BG/NBD fitted on the calibration period.
    holdout
        :func:`~cxkit.clv.holdout_totals` of the check.
    by_frequency
        :func:`~cxkit.clv.holdout_by_frequency` of the check.
    cumulative
        :func:`~cxkit.clv.cumulative_repeat_purchases` of the check.
    calibration
        The calibration summary with its holdout columns (memory mode), or ``None``.
    counts
        ``customers, repeat_days`` of the calibration period (scale mode), or ``None``.
    note
        Empty, or how the check was sampled (scale mode).
    """

    bg_check: BetaGeo
    holdout: dict[str, float]
    by_frequency: pd.DataFrame
    cumulative: pd.DataFrame
    calibration: pd.DataFrame | None = None
    counts: dict[str, int] | None = None
    note: str = ""


@dataclass(kw_only=True)
class ClvRun:
    """One CLV analysis under way: its period, settings, notes and model warnings.

    Memory mode (:func:`analyze`) and scale mode (:func:`cxkit.clv.scale.analyze_scale`)
    start from it (:meth:`start`), run the holdout check and the intervals through it and
    build their results from :meth:`result_fields`; only the data source differs.

    Attributes
    ----------
    end
        The resolved ``as_of``.
    cut
        The data up to ``end``.
    calibration_end
        The end of the holdout check's calibration period, or ``None`` (no check).
    horizon_weeks, annual_discount_rate, margin, top, min_repeat_customers, n_draws, random_state
        The settings, as for :func:`analyze`.
    notes
        The not-available sentence per part, filled as the run goes.
    said
        The models' warnings, in words.
    """

    end: pd.Timestamp
    cut: CXData
    calibration_end: pd.Timestamp | None
    horizon_weeks: float
    annual_discount_rate: float
    margin: float
    top: float
    min_repeat_customers: int
    n_draws: int
    random_state: int | None
    notes: dict[str, str] = field(default_factory=dict)
    said: list[str] = field(default_factory=list)

    @classmethod
    def start(
        cls,
        data: CXData,
        *,
        as_of: AsOf,
        calibration_end: AsOf,
        holdout_weeks: float | None,
        horizon_weeks: float,
        annual_discount_rate: float,
        margin: float,
        top: float,
        min_repeat_customers: int,
        n_draws: int,
        random_state: int | None,
    ) -> ClvRun:
        """Check the orders table, resolve ``as_of`` and the calibration end, cut the data.

        Parameters
        ----------
        data
            The data, with an ``orders`` table.
        as_of, calibration_end, holdout_weeks, horizon_weeks, annual_discount_rate, margin,
        top, min_repeat_customers, n_draws, random_state
            As for :func:`analyze`.

        Returns
        -------
        ClvRun
            The run, with no notes yet.

        Raises
        ------
        NotAvailableError
            Without an orders table with ``customer_id``, ``ts`` and ``amount``.
        """
        data.require("orders", "customer_id", "ts", "amount", analysis="Customer lifetime value")
        end = resolve_as_of(data, as_of)
        return cls(
            end=end,
            cut=data.upto(end),
            calibration_end=resolve_calibration_end(end, calibration_end, holdout_weeks),
            horizon_weeks=horizon_weeks,
            annual_discount_rate=annual_discount_rate,
            margin=margin,
            top=top,
            min_repeat_customers=min_repeat_customers,
            n_draws=n_draws,
            random_state=random_state,
        )

    @property
    def value_attrs(self) -> dict[str, object]:
        """The ``attrs`` of this run's value frames (:func:`~cxkit.clv.value.value_attrs`)."""
        return value_attrs(
            horizon=self.horizon_weeks,
            unit="W",
            annual_discount_rate=self.annual_discount_rate,
            margin=self.margin,
        )

    @property
    def clv_column(self) -> str:
        """The CLV column of this run's values (e.g. ``"clv_52w"``)."""
        return str(self.value_attrs["clv_column"])

    def check_holdout(self, compute: Callable[[], HoldoutCheck]) -> HoldoutCheck | None:
        """Run the holdout check when there is a calibration period; a failure becomes a note.

        Parameters
        ----------
        compute
            Computes the check from :attr:`calibration_end` (the mode's data source).

        Returns
        -------
        HoldoutCheck or None
            The check; None without a calibration period or when the data cannot support
            it (``notes["holdout"]`` then says why).
        """
        if self.calibration_end is None:
            return None
        try:
            return compute()
        except (DataError, ConvergenceError, UsageError) as err:
            self.notes["holdout"] = f"The holdout check is not available: {err}"
            return None

    def cumulative(self, bg_check: BetaGeo) -> pd.DataFrame:
        """Return :func:`~cxkit.clv.cumulative_repeat_purchases` of the holdout check."""
        return cumulative_repeat_purchases(
            self.cut, bg_check, calibration_end=self.calibration_end, observation_end=self.end
        )

    def intervals(
        self,
        summary: pd.DataFrame,
        bg: BetaGeo,
        gg: GammaGamma | None,
        *,
        values: pd.DataFrame,
        predictive: int | None = 1000,
    ) -> ClvIntervals:
        """Return :func:`~cxkit.clv.clv_intervals` of ``summary`` with this run's settings.

        Parameters
        ----------
        summary
            The RFM summary (weeks) of the customers.
        bg, gg
            The fitted models.
        values
            :func:`~cxkit.clv.customer_value` of ``summary`` (attrs :attr:`value_attrs`).
        predictive
            As for :func:`~cxkit.clv.clv_intervals`.

        Returns
        -------
        ClvIntervals
            The intervals.

        Raises
        ------
        DataError
            When a model has no finite covariance.
        """
        return clv_intervals(
            summary,
            bg,
            gg,
            horizon=self.horizon_weeks,
            unit="W",
            annual_discount_rate=self.annual_discount_rate,
            margin=self.margin,
            top=self.top,
            n_draws=self.n_draws,
            predictive=predictive,
            random_state=self.random_state,
            values=values,
        )

    def result_fields(self, check: HoldoutCheck | None) -> dict[str, Any]:
        """Return the fields every :class:`ClvResult` of this run has, the check's included.

        Parameters
        ----------
        check
            The holdout check, or ``None``.

        Returns
        -------
        dict of str to object
            ``as_of``, ``not_available``, the holdout check's fields, ``notes``,
            ``model_warnings`` and the settings.
        """
        return {
            "as_of": self.end,
            "not_available": list(self.notes.values()),
            "calibration_end": None if check is None else self.calibration_end,
            "calibration": None if check is None else check.calibration,
            "bg_check": None if check is None else check.bg_check,
            "holdout": None if check is None else check.holdout,
            "by_frequency": None if check is None else check.by_frequency,
            "cumulative": None if check is None else check.cumulative,
            "notes": self.notes,
            "model_warnings": self.said,
            "horizon_weeks": self.horizon_weeks,
            "annual_discount_rate": self.annual_discount_rate,
            "margin": self.margin,
            "top": self.top,
            "min_repeat_customers": self.min_repeat_customers,
            "n_draws": self.n_draws,
            "random_state": self.random_state,
        }


@run_cached("clv.analyze")
def analyze(
    data: CXData,
    *,
    as_of: AsOf = None,
    horizon_weeks: float = 52,
    annual_discount_rate: float = 0.10,
    margin: float = 1.0,
    min_repeat_customers: int = MIN_N,
    holdout_weeks: float | None = 26,
    calibration_end: AsOf = None,
    top: float = 0.2,
    n_draws: int = 200,
    random_state: int | None = 0,
    mode: str | None = None,
) -> ClvResult:
    """Run the CLV analysis: RFM, BG/NBD, Gamma-Gamma, discounted value and the holdout check.

    The one CLV pipeline, used by the CLV report and the executive summary alike.

    Parameters
    ----------
    data
        The loaded data, with an ``orders`` table (``customer_id``, ``ts``, ``amount``).
    as_of
        The last instant the analysis may see (:func:`cxkit.data.resolve_as_of`).
    horizon_weeks
        The CLV horizon in weeks.
    annual_discount_rate
        Yearly discount rate of future value (0.10 = 10%).
    margin
        Share of revenue that is margin (1.0: value is revenue).
    min_repeat_customers
        The fewest customers with a repeat purchase of positive value on which
        Gamma-Gamma is fitted (default :data:`cxkit.stats.MIN_N`: a three-parameter
        spend model on fewer is not defensible); below it, each customer's own mean
        repeat value is used.
    holdout_weeks
        The holdout check fits on the data up to this many weeks before ``as_of`` and
        compares with what happened after; ``None`` or 0 skips the check.
    calibration_end
        The end of the calibration period (read as ``as_of`` is), instead of
        ``holdout_weeks``; for CDNOW ``"1997-09-30"``.
    top
        The "top customers" share for the concentration and lapsing findings.
    n_draws
        Parameter draws of the CLV intervals (:func:`~cxkit.clv.clv_intervals`); 0 skips
        them.
    random_state
        The seed of the intervals' draws.
    mode
        ``"memory"`` or ``"scale"`` (:mod:`cxkit.scale`; default: the ``CXKIT_SCALE``
        setting, else memory). Scale mode runs :func:`cxkit.clv.scale.analyze_scale`
        and returns a :class:`~cxkit.clv.scale.ScaleClvResult`.

    Returns
    -------
    ClvResult
        The tables, models and findings. Parts the data cannot support (the holdout
        check on too short a history, Gamma-Gamma on too few repeat customers, value by
        acquisition channel without that column) are named in ``not_available``.

    Raises
    ------
    NotAvailableError
        Without an orders table with ``customer_id``, ``ts`` and ``amount``.
    DataError
        When nobody made a repeat purchase (BG/NBD cannot be fitted).
    ConvergenceError
        When the BG/NBD fit fails.

    Examples
    --------
    >>> from cxkit import datasets
    >>> res = analyze(datasets.cdnow(sample=True), as_of="1998-06-30",
    ...               calibration_end="1997-09-30")
    >>> [f.metric for f in res.findings()][:2]
    ['total_clv_52w', 'top20_share_52w']
    """
    if (scaled := dispatch("clv", mode, locals())) is not None:  # cxkit.clv.scale
        return scaled  # type: ignore[return-value]
    run = ClvRun.start(
        data,
        as_of=as_of,
        calibration_end=calibration_end,
        holdout_weeks=holdout_weeks,
        horizon_weeks=horizon_weeks,
        annual_discount_rate=annual_discount_rate,
        margin=margin,
        top=top,
        min_repeat_customers=min_repeat_customers,
        n_draws=n_draws,
        random_state=random_state,
    )
    cut, end, notes, said = run.cut, run.end, run.notes, run.said

    def check() -> HoldoutCheck:
        calibration = rfm_summary(cut, calibration_end=run.calibration_end, observation_end=end)
        with clv_model_warnings(said):
            bg_check = BetaGeo().fit(calibration)
        return HoldoutCheck(
            bg_check=bg_check,
            holdout=holdout_totals(calibration, bg_check),
            by_frequency=holdout_by_frequency(calibration, bg_check),
            cumulative=run.cumulative(bg_check),
            calibration=calibration,
        )

    checked = run.check_holdout(check)
    summary = rfm_summary(cut, observation_end=end, time_unit="W")
    with clv_model_warnings(said):
        bg = BetaGeo().fit(summary)
    gg = spend_model(summary, min_repeat_customers, notes, said)
    values = customer_value(
        summary,
        bg,
        gg,
        horizon=horizon_weeks,
        unit="W",
        annual_discount_rate=annual_discount_rate,
        margin=margin,
    )
    col = clv_column(values)
    intervals = None
    if n_draws:
        try:
            intervals = run.intervals(summary, bg, gg, values=values)
        except DataError as err:
            notes["intervals"] = f"The CLV intervals are not available: {err}"
    scored = _scored(summary, values, intervals)

    by_channel = None
    try:
        cut.require("customers", "acquisition_channel", analysis="CLV by acquisition channel")
        channels = cut.to_pandas("customers", columns=["customer_id", "acquisition_channel"])
        with_channel = scored.merge(channels, on="customer_id", how="left")
        by_channel = clv_by(with_channel, "acquisition_channel", column=col)
    except NotAvailableError as err:
        notes["by_channel"] = str(err)

    return ClvResult(
        **run.result_fields(checked),
        summary=summary,
        bg=bg,
        gg=gg,
        values=values,
        p_alive=p_alive_distribution(summary, bg, repeat_only=True),
        lapsing=lapsing_high_value(scored, top=top, column=col),
        by_channel=by_channel,
        intervals=intervals,
    )
