"""The CLV analysis in scale mode: engine aggregates to fit, batches to value, the engine for the rest.

:func:`analyze_scale` gives what :func:`cxkit.clv.analyze` gives without holding any
per-customer frame above ``max_collect_rows`` (:mod:`cxkit.scale`):

- BG/NBD (and the holdout check's refit) is fitted on the engine-side RFM summary
  aggregated to distinct ``(frequency, recency, T)`` triples with their counts
  (:func:`fit_bgnbd_triples`): the same likelihood as one row per customer, so the same
  fit (the churn analysis's scale mode uses it too);
- Gamma-Gamma is fitted on a deterministic sample of at most ``sample_rows`` repeat
  customers with a repeat purchase of positive value, stratified by frequency (all of
  them when they fit), which the result states;
- every customer's value (P(alive), expected purchases, expected spend, discounted CLV
  and its parameter interval) is computed in batches of ``batch_rows`` and written to
  an engine table (default ``cxkit_clv_values``); the bootstrap draws' totals are
  added up over the batches (the draws depend only on the fits and the seed, as in
  :func:`~cxkit.clv.clv_intervals`), so the total's parameter interval is memory mode's;
  the purchase-randomness variance of the total is added up over the batches too (its
  simulated futures are other random draws than memory mode's, so its predictive
  interval differs by that simulation noise);
- the total and mean, the top shares, P(alive) bands, the lapsed share, the valuable
  customers who lapsed, value by acquisition channel and the holdout check (grouped by
  the calibration triples, holdout duration and holdout purchases) are engine
  aggregates; the most valuable customers are collected (20 rows) and their predictive
  intervals computed on them.

Not in scale mode: the parameter interval of the top share (customers are re-ranked in
each draw); the value distribution and the concentration curve are drawn from a stated
deterministic sample of the values table.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field

import ibis
import ibis.expr.types as ir
import numpy as np
import pandas as pd
from ibis.backends import BaseBackend
from scipy import stats as _st

from cxkit import scale as _scale
from cxkit.clv.analysis import (
    ClvResult,
    ClvRun,
    HoldoutCheck,
    clv_model_warnings,
    gamma_gamma_shortfall,
    holdout_finding,
    intervals_words,
    lapsed_counts,
    lapsed_finding,
    lapsing_finding,
    spend_model,
    top_share_finding,
    total_value_finding,
)
from cxkit.clv.base import compress
from cxkit.clv.bgnbd import BetaGeo
from cxkit.clv.checks import p_alive_bands
from cxkit.clv.gamma_gamma import GammaGamma
from cxkit.clv.intervals import ClvIntervals, total_interval
from cxkit.clv.rfm import rfm_summary_expr
from cxkit.clv.value import value_schedule
from cxkit.data import CXData
from cxkit.errors import DataError, NotAvailableError, UsageError
from cxkit.findings import Finding
from cxkit.result import AsOf
from cxkit.scale import ScaleSettings
from cxkit.stats import MIN_N

__all__ = ["VALUES_TABLE", "ScaleClvResult", "analyze_scale", "fit_bgnbd_triples", "rfm_triples"]

#: The engine table the scale-mode values are written to.
VALUES_TABLE = "cxkit_clv_values"

#: Rows of the values table drawn (deterministically) for the distribution charts.
PLOT_SAMPLE = 5_000

_SUMMARY = ["customer_id", "frequency", "recency", "T", "monetary_value"]


# --------------------------------------------------------------------------------------
# BG/NBD on the distinct triples (shared with cxkit.churn.scale)
# --------------------------------------------------------------------------------------


def rfm_triples(rfm: ir.Table) -> ir.Table:
    """Return the distinct ``(frequency, recency, T)`` of an RFM summary with their counts.

    Parameters
    ----------
    rfm
        An RFM summary expression (:func:`~cxkit.clv.rfm_summary_expr`).

    Returns
    -------
    ibis.expr.types.Table
        ``frequency, recency, T, n`` and ``first_id``, the least customer ID of the row.
    """
    return rfm.group_by(["frequency", "recency", "T"]).aggregate(
        n=rfm.count(), first_id=rfm.customer_id.cast("string").min()
    )


def fit_bgnbd_triples(
    rfm: ir.Table,
    *,
    settings: ScaleSettings,
    what: str,
    time_unit: str | None = None,
) -> tuple[BetaGeo, str]:
    """Fit BG/NBD on the distinct triples of ``rfm`` weighted by their counts, in the engine.

    The likelihood depends on a customer only through ``(frequency, recency, T)``, so
    this is the fit on one row per customer. When there are more distinct triples than
    ``max_collect_rows``, the fit is on the triples of a sample of ``sample_rows``
    customers, and the returned note says so.

    Parameters
    ----------
    rfm
        The RFM summary expression.
    settings
        The limits.
    what
        What the triples are, for the limit's message.
    time_unit
        The summary's time unit, kept as the model's ``time_unit_``.

    Returns
    -------
    (BetaGeo, str)
        The fitted model and ``""`` or ``", fitted on a sample of n of N customers"``.

    Raises
    ------
    DataError, ConvergenceError
        As :meth:`BetaGeo.fit`.
    ScaleLimitError
        When even the sample's triples exceed ``max_collect_rows``.
    """
    triples = rfm_triples(rfm)
    sampled = ""
    if int(triples.count().to_pandas()) > settings.max_collect_rows:
        # too many distinct triples to collect: fit on a sample of customers
        sub = _scale.stratified_sample(rfm, by=None, n=settings.sample_rows)
        triples = rfm_triples(sub.expr)
        sampled = f", fitted on a sample of {sub.n:,} of {sub.total:,} customers"
    tr = _scale.bounded_to_pandas(triples, what=what, settings=settings)
    tr = tr.astype({"frequency": "float64", "recency": "float64", "T": "float64"})
    # in the order of each row's first customer ID: the order in which a fit on one row per
    # customer (sorted by ID) meets them, so the likelihood adds up in the same order
    tr = tr.sort_values(["first_id", "frequency", "recency", "T"], ignore_index=True)
    if time_unit is not None:
        tr.attrs["time_unit"] = time_unit
    bg = BetaGeo().fit(tr, weights=tr["n"].to_numpy(dtype=float))
    return bg, sampled


# --------------------------------------------------------------------------------------
# the result
# --------------------------------------------------------------------------------------


@dataclass(kw_only=True)
class ScaleClvResult(ClvResult):
    """A CLV result computed in scale mode (:func:`analyze_scale`).

    :attr:`summary` and :attr:`values` are empty frames with the memory-mode columns:
    the per-customer values are the engine table :attr:`values_table`. Every figure
    was computed from it in the engine or from bounded frames.

    Attributes
    ----------
    mode
        ``"scale"``.
    settings
        The limits used.
    values_table
        The engine table of every customer's value (in the data's connection).
    customers_n, repeat_days
        Customers valued and their repeat purchase days.
    value_stats
        ``total, mean, ci_low, ci_high, median, n`` of the CLV column.
    shares
        Top share -> the share of expected value the top customers hold.
    lapsed_stats
        As :attr:`ClvResult.lapsed`.
    valuable_n, lapsing_n, lapsing_spend
        The valuable repeat customers, those of them who probably lapsed, and their past
        repeat spend (:attr:`lapsing` holds the 20 who spent most).
    gg_sample
        ``{"sample": n, "population": N}``: the repeat customers Gamma-Gamma was fitted on.
    bg_note
        Empty, or how the BG/NBD fit was sampled.
    holdout_note
        Empty, or how the holdout check was sampled.
    calibration_counts
        ``customers, repeat_days`` of the calibration period (the holdout check).
    values_sample
        A deterministic sample of at most :data:`PLOT_SAMPLE` rows of the values table,
        for the distribution and concentration charts.
    median_half_width
        The median relative half-width of the parameter intervals (customers of positive
        value).
    """

    mode: str = "scale"
    settings: ScaleSettings = field(default_factory=lambda: ScaleSettings(mode="scale"))
    values_table: str = VALUES_TABLE
    customers_n: int = 0
    repeat_days: int = 0
    value_stats: dict[str, float] = field(default_factory=dict)
    shares: dict[float, float] = field(default_factory=dict)
    lapsed_stats: dict[str, float] = field(default_factory=dict)
    valuable_n: int = 0
    lapsing_n: int = 0
    lapsing_spend: float = 0.0
    gg_sample: dict[str, int] | None = None
    bg_note: str = ""
    holdout_note: str = ""
    calibration_counts: dict[str, int] | None = None
    values_sample: pd.DataFrame | None = None
    median_half_width: float = float("nan")
    top_customers: pd.DataFrame | None = None

    @property
    def mode_sentence(self) -> str:
        """Say how scale mode ran: what was sampled, the values table, the collect limit."""
        if self.bg_note:  # too many distinct rows to collect: fitted on a sample's
            fit = f"BG/NBD{self.bg_note.removeprefix(',')} (their distinct rows)"
        else:
            fit = (
                f"BG/NBD fitted on all {self.customers_n:,} customers' distinct (frequency, "
                "recency, T) rows"
            )
        parts = [fit]
        if self.gg_sample is not None:
            parts.append(
                f"Gamma-Gamma on a stratified sample of {self.gg_sample['sample']:,} of "
                f"{self.gg_sample['population']:,} repeat customers"
            )
        if self.holdout_note:
            parts.append(f"holdout check{self.holdout_note.removeprefix(',')}")
        return (
            f"Scale mode: {'; '.join(parts)}; {self.customers_n:,} customer values written to "
            f"table {self.values_table}; no per-customer frame over "
            f"{self.settings.max_collect_rows:,} rows collected."
        )

    @property
    def scored(self) -> pd.DataFrame:
        """Not held in scale mode: the values are the engine table :attr:`values_table`.

        Raises
        ------
        NotAvailableError
            Always.
        """
        raise NotAvailableError(
            f"memory mode (no 'scale:' in reports.yml): in scale mode the customer values "
            f"stay in the engine (table {self.values_table}, {self.customers_n:,} customers)",
            analysis="CLV per customer",
        )

    def table(self, con: BaseBackend) -> ir.Table:
        """Return the engine table of customer values (:func:`cxkit.scale.open_table`).

        Parameters
        ----------
        con
            The connection of the data analysed (``data.con``).

        Returns
        -------
        ibis.expr.types.Table
            One row per customer.
        """
        return _scale.open_table(con, self.values_table)

    def most_valuable(self, n: int = 20) -> pd.DataFrame:
        """Return the ``n`` most valuable customers with their intervals (as memory mode).

        The parameter intervals come from the values table; the predictive ones are
        simulated for these ``n`` customers only (the same model, other random draws
        than memory mode's).
        """
        top = self.top_customers if self.top_customers is not None else pd.DataFrame()
        return top.head(n).reset_index(drop=True)

    def intervals_sentence(self) -> str | None:
        """Return the takeaway on the per-customer intervals, from the engine's median."""
        if self.intervals is None or self.top_customers is None or self.top_customers.empty:
            return None
        return intervals_words(
            self.most_valuable(1).iloc[0], self.clv_column, half_width=self.median_half_width
        )

    @property
    def lapsed(self) -> dict[str, float]:
        """The lapsed share of repeat customers, counted in the engine."""
        return dict(self.lapsed_stats)

    @property
    def valuable_customers(self) -> int:
        """How many repeat customers are "most valuable" (counted in the engine)."""
        return self.valuable_n

    def value_by(  # type: ignore[override]
        self, labels: ir.Table, *, by: str | None = None
    ) -> pd.DataFrame:
        """Return mean CLV per group, joined and aggregated in the engine.

        Parameters
        ----------
        labels
            An engine table (of the data's connection) with ``customer_id`` and ``by``;
            per-customer labels held in memory are not taken in scale mode.
        by
            The group column.

        Returns
        -------
        pandas.DataFrame
            As :func:`~cxkit.clv.clv_by`.

        Raises
        ------
        UsageError
            When ``labels`` is not an engine table or ``by`` is not named.
        """
        if not isinstance(labels, ir.Table):
            raise UsageError(
                "in scale mode value_by takes an engine table with customer_id and the group "
                "column (e.g. data.table('customers')), not labels held in memory"
            )
        if by is None:
            raise UsageError("name the group column: value_by(table, by='persona')")
        t = self.table(labels._find_backend())
        groups = labels.select(_cx_id=labels.customer_id.cast("string"), _cx_by=labels[by])
        return _clv_by_engine(t, groups, by, self.clv_column, self.settings)

    def findings(self) -> list[Finding]:
        """Return the CLV findings of memory mode, from the engine's aggregates."""
        label = self.clv_column.removeprefix("clv_")
        found = [
            lapsed_finding(self.lapsed_stats),
            holdout_finding(self.holdout, note=self.holdout_note),
            total_value_finding(
                self.value_stats,
                label=label,
                annual_discount_rate=self.annual_discount_rate,
                intervals=self.intervals,
                extra={"mode": "scale"},
            ),
            top_share_finding(
                self.shares[self.top],
                n=self.customers_n,
                top=self.top,
                label=label,
                intervals=self.intervals,
            ),
            lapsing_finding(self.lapsing_n, self.valuable_n, top=self.top),
        ]
        return sorted([f for f in found if f is not None], key=lambda f: -f.importance)


# --------------------------------------------------------------------------------------
# engine helpers
# --------------------------------------------------------------------------------------


def _t_ci(n: int, mean: float, sd: float) -> tuple[float, float]:
    """Return the Student-t 95% interval of :func:`cxkit.stats.mean_ci`, from n, mean and sd."""
    if n < 2 or not np.isfinite(sd):
        return np.nan, np.nan
    se = sd / math.sqrt(n)
    t = float(_st.t.ppf(0.975, n - 1))
    return mean - t * se, mean + t * se


def _one(expr: ir.Table) -> pd.Series:
    """Collect a one-row aggregate."""
    return expr.to_pandas().iloc[0]


def _top_sum(t: ir.Table, col: str, k: int) -> float:
    """Return the sum of the ``k`` largest values of ``col`` (ties do not change the sum)."""
    top = t.order_by([ibis.desc(t[col]), t.customer_id]).limit(k)
    return float(_one(top.aggregate(s=top[col].sum()))["s"])


def _order_stat(t: ir.Table, col: str, pos: int) -> float:
    """Return the value at 0-based position ``pos`` of ``col`` in ascending order."""
    got = t.order_by([t[col], t.customer_id]).select(v=t[col]).limit(1, offset=pos).to_pandas()
    return float(got["v"].iloc[0])


def _quantile_linear(t: ir.Table, col: str, q: float, n: int) -> float:
    """Numpy's default (linear) quantile of ``col`` over ``n`` rows, from two order statistics."""
    pos = (n - 1) * q
    lo = math.floor(pos)
    frac = pos - lo
    a = _order_stat(t, col, lo)
    if frac == 0 or lo + 1 >= n:
        return a
    b = _order_stat(t, col, lo + 1)
    diff = b - a
    # numpy's _lerp: exact at both ends
    return b - diff * (1 - frac) if frac >= 0.5 else a + diff * frac


def _clv_by_engine(
    t: ir.Table, groups: ir.Table, by: str, col: str, settings: ScaleSettings
) -> pd.DataFrame:
    """:func:`cxkit.clv.clv_by` of the values table joined to ``groups``, in the engine."""
    j = t.left_join(groups, t.customer_id.cast("string") == groups._cx_id)
    g = j.mutate(grp=j._cx_by.cast("string"))
    agg = g.group_by("grp").aggregate(
        customers=g.count(), vsum=g[col].sum(), vmean=g[col].mean(), vsd=g[col].std(how="sample")
    )
    got = _scale.bounded_to_pandas(agg, what=f"CLV groups by {by}", settings=settings)
    total = float(got["vsum"].sum())
    rows = []
    for r in got.itertuples(index=False):
        n = int(r.customers)
        mean = float(r.vmean)
        lo, hi = _t_ci(n, mean, float(r.vsd) if pd.notna(r.vsd) else np.nan)
        rows.append(
            {
                by: "(missing)" if pd.isna(r.grp) else str(r.grp),
                "customers": n,
                f"mean_{col}": mean,
                "ci_low": lo,
                "ci_high": hi,
                "share_of_value": float(r.vsum) / total if total > 0 else np.nan,
                "small_n": n < MIN_N,
            }
        )
    out = pd.DataFrame(rows).sort_values(by, ignore_index=True)
    return out.sort_values(f"mean_{col}", ascending=False, ignore_index=True, kind="stable")


def _holdout(
    cal: ir.Table, bg: BetaGeo, settings: ScaleSettings
) -> tuple[dict[str, float], pd.DataFrame, dict[str, int], str]:
    """Return the holdout totals and the by-frequency check from engine groups of customers.

    Customers are grouped by ``(frequency, recency, T, holdout_duration,
    holdout_frequency)``: the expected holdout purchases depend on nothing else, so the
    totals, the mean absolute error and the per-frequency means are memory mode's.
    Above ``max_collect_rows`` groups, the check runs on a sample of customers (stated).
    """
    keys = ["frequency", "recency", "T", "holdout_duration", "holdout_frequency"]
    groups = cal.group_by(keys).aggregate(n=cal.count())
    note = ""
    if int(groups.count().to_pandas()) > settings.max_collect_rows:
        sub = _scale.stratified_sample(cal, by=None, n=settings.sample_rows)
        groups = sub.expr.group_by(keys).aggregate(n=sub.expr.count())
        note = f", on a sample of {sub.n:,} of {sub.total:,} customers"
    g = _scale.bounded_to_pandas(groups, what="holdout check groups", settings=settings)
    g = g.astype({k: "float64" for k in keys})
    w = g["n"].to_numpy(dtype="float64")
    expected = bg.expected_purchases(g["holdout_duration"].to_numpy(), g)
    actual = g["holdout_frequency"].to_numpy()
    n = float(w.sum())
    act_total = float(np.sum(w * actual))
    exp_total = float(np.sum(w * expected))
    totals = {
        "customers": int(n),
        "actual": act_total,
        "expected": exp_total,
        "relative_error": (exp_total - act_total) / act_total if act_total > 0 else np.nan,
        "mae_per_customer": float(np.sum(w * np.abs(expected - actual)) / n),
    }
    rows = []
    group = np.minimum(g["frequency"].to_numpy(), 7)
    for k in range(8):
        sel = group == k
        nk = int(w[sel].sum())
        if nk:
            mean = float(np.sum(w[sel] * actual[sel]) / nk)
            sd = (
                math.sqrt(float(np.sum(w[sel] * (actual[sel] - mean) ** 2)) / (nk - 1))
                if nk > 1
                else np.nan
            )
            lo, hi = _t_ci(nk, mean, sd)
            exp_mean = float(np.sum(w[sel] * expected[sel]) / nk)
        else:
            mean = lo = hi = exp_mean = np.nan
        rows.append(
            {
                "calibration_frequency": f"{k}+" if k == 7 else str(k),
                "customers": nk,
                "actual_mean_purchases": mean,
                "ci_low": lo,
                "ci_high": hi,
                "expected_mean_purchases": exp_mean,
                "small_n": nk < MIN_N,
            }
        )
    counts = {"customers": int(n), "repeat_days": int(np.sum(w * g["frequency"].to_numpy()))}
    return totals, pd.DataFrame(rows), counts, note


def _value_columns(run: ClvRun) -> list[str]:
    """Return the columns of :func:`~cxkit.clv.customer_value` in this run."""
    attrs = run.value_attrs
    expected, col = str(attrs["expected_column"]), str(attrs["clv_column"])
    return ["customer_id", "p_alive", expected, "expected_spend_per_purchase", col]


def _summary_frame(raw: pd.DataFrame) -> pd.DataFrame:
    """Engine rows as :func:`~cxkit.clv.rfm_summary` types them (weeks)."""
    df = raw[_SUMMARY].copy()
    df["customer_id"] = df["customer_id"].astype("string")
    df["frequency"] = df["frequency"].astype("int64")
    for c in ("recency", "T", "monetary_value"):
        df[c] = df[c].astype("float64")
    df.attrs["time_unit"] = "W"
    return df


def _valuer(
    run: ClvRun,
    bg: BetaGeo,
    gg: GammaGamma | None,
    *,
    overall_spend: float,
    draws: list[pd.DataFrame],
    failed: list[str],
) -> Callable[[pd.DataFrame], pd.DataFrame]:
    """Return ``predict(engine rows) -> values`` for :func:`cxkit.scale.score_in_batches`.

    The values are :func:`~cxkit.clv.customer_value`'s (the spend of one-time buyers
    without Gamma-Gamma from the whole population's mean, ``overall_spend``); each
    batch's bootstrap draws (their totals) are appended to ``draws``.
    """
    col = run.clv_column
    expected = str(run.value_attrs["expected_column"])
    ends, disc = value_schedule(
        bg, None, horizon=run.horizon_weeks, unit="W", annual_discount_rate=run.annual_discount_rate
    )

    def predict(raw: pd.DataFrame) -> pd.DataFrame:
        s = _summary_frame(raw)
        x = s["frequency"].to_numpy(dtype="float64")
        tx = np.where(x > 0, s["recency"].to_numpy(), 0.0)
        T = s["T"].to_numpy()
        (ux, utx, uT), _, codes = compress(x, tx, T)
        distinct = {"frequency": ux, "recency": utx, "T": uT}
        cum = np.zeros((len(ux), len(ends) + 1))
        for k, t in enumerate(ends, start=1):
            cum[:, k] = bg.expected_purchases(t, distinct) if len(ux) else 0.0
        disc_purchases = (np.diff(cum, axis=1) * disc).sum(axis=1)[codes]
        m = s["monetary_value"].to_numpy()
        spend = (
            gg.conditional_expected_average_spend(s)
            if gg is not None
            else np.where(x > 0, m, overall_spend)
        )
        out = s.copy()
        out["p_alive"] = bg.p_alive(s) if len(s) else np.empty(0)
        out[expected] = cum[:, -1][codes]
        out["expected_spend_per_purchase"] = np.asarray(spend, dtype="float64")
        out[col] = run.margin * out["expected_spend_per_purchase"].to_numpy() * disc_purchases
        out["past_repeat_spend"] = x * m
        out[f"{col}_low"] = np.nan
        out[f"{col}_high"] = np.nan
        if run.n_draws and not failed and len(s):
            values = out[_value_columns(run)].copy()
            values.attrs.update(run.value_attrs)
            try:
                # one customer's predictive draws: what gives the batch's share of the
                # total's purchase-randomness variance (see _predictive_total)
                iv = run.intervals(s, bg, gg, values=values, predictive=0 if gg is None else 1)
            except DataError as err:
                failed.append(f"The CLV intervals are not available: {err}")
            else:
                out[f"{col}_low"] = iv.per_customer[f"{col}_low"].to_numpy()
                out[f"{col}_high"] = iv.per_customer[f"{col}_high"].to_numpy()
                draws.append(iv.draws)
        out["customer_id"] = out["customer_id"].astype(str)
        return out

    return predict


# --------------------------------------------------------------------------------------
# the analysis
# --------------------------------------------------------------------------------------


def analyze_scale(
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
    settings: ScaleSettings | None = None,
    table: str = VALUES_TABLE,
) -> ScaleClvResult:
    """Run :func:`cxkit.clv.analyze` in scale mode (see the module docstring).

    Parameters
    ----------
    data
        The data, with an ``orders`` table.
    as_of, horizon_weeks, annual_discount_rate, margin, min_repeat_customers,
    holdout_weeks, calibration_end, top, n_draws, random_state
        As for :func:`cxkit.clv.analyze`.
    settings
        The limits (default :func:`cxkit.scale.current_settings`, in scale mode).
    table
        The engine table the values are written to (replaced if it exists).

    Returns
    -------
    ScaleClvResult
        The result; :attr:`~ScaleClvResult.mode_sentence` says how it was computed.

    Raises
    ------
    NotAvailableError
        Without an orders table with ``customer_id``, ``ts`` and ``amount``.
    DataError
        When nobody made a repeat purchase (BG/NBD cannot be fitted).
    ConvergenceError
        When the BG/NBD fit fails.
    ScaleLimitError
        When a bounded frame would exceed ``max_collect_rows``.
    """
    settings = _scale.scale_mode_settings(settings)
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
        cal = rfm_summary_expr(cut, calibration_end=run.calibration_end, observation_end=end)
        with clv_model_warnings(said):
            bg_check, cal_note = fit_bgnbd_triples(
                cal, settings=settings, what="BG/NBD calibration triples", time_unit="W"
            )
        holdout, by_frequency, counts, note = _holdout(cal, bg_check, settings)
        if cal_note and not note:
            note = f", its BG/NBD refit{cal_note.removeprefix(',')}"
        return HoldoutCheck(
            bg_check=bg_check,
            holdout=holdout,
            by_frequency=by_frequency,
            cumulative=run.cumulative(bg_check),
            counts=counts,
            note=note,
        )

    checked = run.check_holdout(check)
    rfm = rfm_summary_expr(cut, observation_end=end, time_unit="W")
    with clv_model_warnings(said):
        bg, bg_note = fit_bgnbd_triples(
            rfm, settings=settings, what="BG/NBD summary triples", time_unit="W"
        )
    elig = rfm.filter((rfm.frequency > 0) & (rfm.monetary_value > 0))
    gg, gg_sample = None, None
    n_elig = int(elig.count().to_pandas())
    if (short := gamma_gamma_shortfall(n_elig, min_repeat_customers)) is not None:
        notes["gamma_gamma"] = short
    else:
        band = elig.mutate(_cx_band=ibis.least(elig.frequency, 10))
        sub = _scale.stratified_sample(band, by="_cx_band", n=settings.sample_rows)
        sample = _scale.bounded_to_pandas(
            sub.expr.select(*_SUMMARY), what="Gamma-Gamma sample", settings=settings
        )
        gg = spend_model(_summary_frame(sample), 0, notes, said)
        gg_sample = {"sample": sub.n, "population": sub.total}
    rep = rfm.filter(rfm.frequency > 0)
    overall = _one(rep.aggregate(m=rep.monetary_value.mean()))["m"]
    overall_spend = float(overall) if overall is not None and pd.notna(overall) else 0.0

    draws: list[pd.DataFrame] = []
    failed: list[str] = []
    predict = _valuer(run, bg, gg, overall_spend=overall_spend, draws=draws, failed=failed)
    # in customer order: each batch's interval draws depend on the batch, so every run
    # must form the same batches
    t = _scale.score_in_batches(
        rfm.select(*_SUMMARY),
        predict,
        con=cut.con,
        name=table,
        batch_rows=settings.batch_rows,
        order_by="customer_id",
    )
    col = run.clv_column

    # totals, mean, median
    a = _one(
        t.aggregate(
            n=t.count(),
            total=t[col].sum(),
            mean=t[col].mean(),
            sd=t[col].std(how="sample"),
            median=t[col].median(),
            days=t.frequency.sum(),
        )
    )
    n = int(a["n"])
    mean = float(a["mean"])
    lo, hi = _t_ci(n, mean, float(a["sd"]) if pd.notna(a["sd"]) else np.nan)
    value_stats = {
        "total": float(a["total"]),
        "mean": mean,
        "ci_low": lo,
        "ci_high": hi,
        "median": float(a["median"]),
        "n": n,
    }
    shares = {}
    for share in {top, 0.2, 0.01}:
        k = max(1, math.ceil(share * n - 1e-9))
        shares[share] = (
            _top_sum(t, col, k) / value_stats["total"] if value_stats["total"] > 0 else np.nan
        )

    # P(alive) of the repeat customers
    rt = t.filter(t.frequency > 0)
    r = _one(
        rt.aggregate(
            n=rt.count(),
            lapsed=(rt.p_alive < 0.5).ifelse(1, 0).sum(),
            med=rt.p_alive.median(),
        )
    )
    n_rep = int(r["n"])
    lapsed_stats = lapsed_counts(
        int(r["lapsed"] or 0),
        n_rep,
        customers=n,
        median_p_alive=float(r["med"]) if n_rep else np.nan,
    )
    bins = 10
    b = ibis.greatest(ibis.least((rt.p_alive * bins).floor().cast("int64"), bins - 1), 0)
    got = rt.mutate(_b=b).group_by("_b").aggregate(customers=ibis._.count()).to_pandas()
    counts = got.set_index("_b")["customers"].reindex(range(bins)).fillna(0).astype("int64")
    p_alive = p_alive_bands(counts.to_numpy(), n=n_rep, population="repeat customers")

    # the valuable repeat customers who probably lapsed
    valuable_n = lapsing_n = 0
    lapsing_spend = 0.0
    keep = ["customer_id", "frequency", "recency", "T"]
    lapsing = pd.DataFrame(columns=[*keep, "past_repeat_spend", "p_alive", col])
    if n_rep:
        cut_value = _quantile_linear(rt, "past_repeat_spend", 1 - top, n_rep)
        val = rt.filter(rt.past_repeat_spend >= cut_value)
        lap = val.filter(val.p_alive < 0.5)
        v = _one(val.aggregate(n=val.count()))
        lp = _one(lap.aggregate(n=lap.count(), s=lap.past_repeat_spend.sum()))
        valuable_n, lapsing_n = int(v["n"]), int(lp["n"])
        lapsing_spend = float(lp["s"]) if lapsing_n else 0.0
        lapsing = (
            lap.order_by([ibis.desc(lap.past_repeat_spend), lap.customer_id])
            .select(*keep, "past_repeat_spend", "p_alive", col)
            .limit(20)
            .to_pandas()
        )
        lapsing["customer_id"] = lapsing["customer_id"].astype("string")
    lapsing.attrs["valuable_customers"] = valuable_n

    by_channel = None
    try:
        cust = cut.require(
            "customers", "customer_id", "acquisition_channel", analysis="CLV by acquisition channel"
        )
        groups = cust.select(
            _cx_id=cust.customer_id.cast("string"), _cx_by=cust.acquisition_channel
        )
        by_channel = _clv_by_engine(t, groups, "acquisition_channel", col, settings)
    except NotAvailableError as err:
        notes["by_channel"] = str(err)

    intervals, top_customers, half = None, None, float("nan")
    if failed:
        notes["intervals"] = failed[0]
    cols_iv = [f"{col}_low", f"{col}_high", f"{col}_pred_low", f"{col}_pred_high"]
    if n_draws and draws and not failed:
        totals = np.sum([d["total"].to_numpy() for d in draws], axis=0)
        pred = _predictive_total(draws, totals, random_state)
        drawn = draws[0].assign(total=totals, top_share=np.nan, predicted_total=pred)
        intervals = ClvIntervals(
            per_customer=pd.DataFrame(columns=["customer_id", *cols_iv]),
            total=total_interval(value_stats["total"], totals, pred, n=n, qs=(0.025, 0.975)),
            top_share={
                "value": shares[top],
                "ci_low": np.nan,
                "ci_high": np.nan,
                "top": None,
                "n": n,
            },
            draws=drawn,
            column=col,
            n_draws=n_draws,
            level=0.95,
            notes=[
                "Scale mode: no parameter interval of the top share (customers are re-ranked "
                "in each draw); predictive intervals only for the 20 most valuable customers."
            ],
        )
        pos = t.filter(t[col] > 0)
        width = (pos[f"{col}_high"] - pos[f"{col}_low"]) / 2 / pos[col]
        half = float(_one(pos.aggregate(h=width.median()))["h"])
        top_customers = _most_valuable(t, run, bg, gg)

    sample = _scale.stratified_sample(t, by=None, n=min(PLOT_SAMPLE, settings.sample_rows))
    values_sample = _scale.bounded_to_pandas(
        sample.expr.select("customer_id", col), what="CLV chart sample", settings=settings
    )
    values_sample.attrs.update(clv_column=col, sample=sample.n, population=sample.total)
    empty_values = pd.DataFrame(columns=_value_columns(run))
    empty_values.attrs.update(run.value_attrs)
    empty_summary = pd.DataFrame(columns=_SUMMARY)
    empty_summary.attrs["time_unit"] = "W"
    return ScaleClvResult(
        **run.result_fields(checked),
        summary=empty_summary,
        bg=bg,
        gg=gg,
        values=empty_values,
        p_alive=p_alive,
        lapsing=lapsing,
        by_channel=by_channel,
        intervals=intervals,
        settings=settings,
        values_table=table,
        customers_n=n,
        repeat_days=int(a["days"] or 0),
        value_stats=value_stats,
        shares=shares,
        lapsed_stats=lapsed_stats,
        valuable_n=valuable_n,
        lapsing_n=lapsing_n,
        lapsing_spend=lapsing_spend,
        gg_sample=gg_sample,
        bg_note=bg_note,
        holdout_note="" if checked is None else checked.note,
        calibration_counts=None if checked is None else checked.counts,
        values_sample=values_sample,
        median_half_width=half,
        top_customers=top_customers,
    )


def _predictive_total(
    draws: list[pd.DataFrame], totals: np.ndarray, random_state: int | None
) -> np.ndarray:
    """Return the predictive draws of the total from the batches' draws.

    :func:`~cxkit.clv.clv_intervals` adds ``sqrt(variance) × z`` to each draw's total,
    with ``z`` the same standard normals for the same seed (its stream 3) and the
    variance the sum over the customers; each batch's variance is read back from its
    draws and the variances of the batches added up. NaN without predictive draws.
    """
    n_draws = len(totals)
    entropy = np.random.SeedSequence(random_state).entropy
    z = np.random.default_rng(np.random.SeedSequence(entropy, spawn_key=(3,))).standard_normal(
        n_draws
    )
    i = int(np.argmax(np.abs(z)))
    spread = 0.0
    for d in draws:
        gap = d["predicted_total"].to_numpy() - d["total"].to_numpy()
        if not np.isfinite(gap[i]):
            return np.full(n_draws, np.nan)
        spread += (gap[i] / z[i]) ** 2
    return totals + math.sqrt(spread) * z


def _most_valuable(
    t: ir.Table, run: ClvRun, bg: BetaGeo, gg: GammaGamma | None, n: int = 20
) -> pd.DataFrame:
    """Collect the ``n`` most valuable customers and add their predictive intervals."""
    col = run.clv_column
    rows = t.order_by([ibis.desc(t[col]), t.customer_id]).limit(n).to_pandas()
    s = _summary_frame(rows)
    keep = ["customer_id", "frequency", "recency", "T", "p_alive", col]
    out = rows[[*keep, f"{col}_low", f"{col}_high"]].copy()
    out["customer_id"] = out["customer_id"].astype("string")
    out[f"{col}_pred_low"] = np.nan
    out[f"{col}_pred_high"] = np.nan
    if gg is not None and len(s):
        values = rows[["customer_id", "p_alive", col]].copy()
        values.attrs.update(run.value_attrs)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            iv = run.intervals(s, bg, gg, values=values, predictive=None)
        out[f"{col}_pred_low"] = iv.per_customer[f"{col}_pred_low"].to_numpy()
        out[f"{col}_pred_high"] = iv.per_customer[f"{col}_pred_high"].to_numpy()
    return out.reset_index(drop=True)


_scale.register("clv", analyze_scale)
