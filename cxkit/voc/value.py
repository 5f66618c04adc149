"""Survey-to-value linkage: what promoters, passives and detractors are worth.

Each customer with an NPS answer is put in the group of their latest answer as of
``as_of`` — promoter (9–10), passive (7–8) or detractor (0–6), as the scorecard of the
executive summary groups them — and set beside what they are worth:

* expected CLV over the CLV horizon, from the CLV report's result (:func:`cxkit.clv.analyze`);
* the churn probability over the churn horizon, from the churn report's scores
  (:func:`cxkit.churn.analyze`): the churn model's, or those of the baseline that beat it
  (:attr:`cxkit.churn.ChurnResult.scores_label` names which);
* realised revenue: what the customer spent in the ``window_days`` after the answer (only
  customers whose window is over by ``as_of``), whether they ordered in it at all, and
  spend to date.

Per NPS group — and per persona and NPS group, with persona labels — each measure gets
its mean with a Student-t interval (a share with its Wilson interval) and n, and the
difference against promoters with Welch's t interval (a Wald interval for shares):
:func:`compare_groups`. With persona labels the gap is also given between detractors and
promoters of the same persona (:func:`adjusted_difference`).

How to read it: the groups are compared as they are, so a gap is an association, not
the effect of changing a customer's answer. Realised revenue after the answer cannot
have caused the answer; spend to date includes spending before it (customers who spend
more may answer differently because of it), and CLV and churn probability are forecasts
built from past purchases, so both carry that history.

:func:`survey_value` builds the :class:`SurveyValueResult` from domain results a caller
already has (the executive summary's); :func:`value_linkage` gets them with the CLV and
churn reports' own options, which inside a report run reads the run's cached results
(:mod:`cxkit.cache`) instead of fitting the models again. The voice-of-the-customer
report and the executive summary show the same :meth:`SurveyValueResult.findings`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import ClassVar

import ibis
import ibis.expr.types as ir
import numpy as np
import pandas as pd
from scipy import stats as _st

from cxkit import churn as churn_domain
from cxkit import clv as clv_domain
from cxkit import scale
from cxkit.clv.value import clv_column
from cxkit.data import CXData, resolve_as_of
from cxkit.display import format_money, show_table
from cxkit.errors import ConvergenceError, DataError, NotAvailableError, UsageError
from cxkit.findings import Finding, finding_from_rate, not_available
from cxkit.result import AsOf, Result
from cxkit.stats import MIN_N, holm, two_proportion_test, welch_test, wilson_ci
from cxkit.voc.scores import DETRACTOR_MAX, PROMOTER_MIN, scored_responses, t_interval

__all__ = [
    "NPS_GROUPS",
    "SurveyValueResult",
    "ValueMeasure",
    "adjusted_difference",
    "compare_groups",
    "group_moments",
    "linked_customers",
    "linked_table",
    "show_value_tables",
    "survey_value",
    "value_linkage",
    "value_measures",
]

#: The NPS groups, the reference group (promoters) first.
NPS_GROUPS: tuple[str, ...] = ("promoter", "passive", "detractor")

_ANALYSIS = "The survey-to-value linkage"
_NPS_NEEDS = "NPS answers (table 'responses' with survey 'nps' and a score)"
#: What a domain raises when the data cannot support it (as the executive summary).
_UNSUPPORTED = (NotAvailableError, DataError, ConvergenceError)


@dataclass(frozen=True)
class ValueMeasure:
    """One measure of value set beside the NPS groups.

    Attributes
    ----------
    key
        The column of :func:`linked_customers` (``clv_52w``, ``churn_probability``, ...).
    label
        What it is, in words (tables and charts).
    unit
        ``"money"`` (an amount per customer), ``"probability"`` (a mean of 0–1
        probabilities) or ``"share"`` (the share of customers for whom a 0/1 column is 1).
    source
        ``"clv"``, ``"churn"`` or ``"orders"``: what it needs.
    after_answer
        Whether it is measured only after the answer (realised revenue in the window)
        rather than from history that includes the time before it.
    """

    key: str
    label: str
    unit: str
    source: str
    after_answer: bool = False

    @property
    def statistic(self) -> str:
        """How it is compared (:func:`compare_groups`): ``"share"`` or ``"mean"``."""
        return "share" if self.unit == "share" else "mean"


def value_measures(
    *, horizon_weeks: float = 52, churn_horizon_days: int = 90, window_days: int = 90
) -> tuple[ValueMeasure, ...]:
    """Return the measures of value, in the order the report shows them.

    Parameters
    ----------
    horizon_weeks
        The CLV horizon.
    churn_horizon_days
        The churn horizon.
    window_days
        The window after the answer for realised revenue.

    Returns
    -------
    tuple of ValueMeasure
        Expected CLV, churn probability, spend and ordering in the window after the
        answer, spend to date.

    Examples
    --------
    >>> [m.key for m in value_measures()]
    ['clv_52w', 'churn_probability', 'revenue_after_90d', 'ordered_after_90d', 'spend_to_date']
    """
    h, w = f"{horizon_weeks:g}", int(window_days)
    return (
        ValueMeasure(f"clv_{h}w", f"expected CLV, next {h} weeks", "money", "clv"),
        ValueMeasure(
            "churn_probability",
            f"churn probability, next {churn_horizon_days} days",
            "probability",
            "churn",
        ),
        ValueMeasure(
            f"revenue_after_{w}d",
            f"spend in the {w} days after the answer",
            "money",
            "orders",
            after_answer=True,
        ),
        ValueMeasure(
            f"ordered_after_{w}d",
            f"ordered in the {w} days after the answer",
            "share",
            "orders",
            after_answer=True,
        ),
        ValueMeasure(
            "spend_to_date", "spend to date (before and after the answer)", "money", "orders"
        ),
    )


def _nps_group(score: pd.Series) -> pd.Series:
    s = pd.to_numeric(score, errors="coerce")
    out = pd.Series(pd.NA, index=score.index, dtype="string")
    out[s >= PROMOTER_MIN] = "promoter"
    out[(s > DETRACTOR_MAX) & (s < PROMOTER_MIN)] = "passive"
    out[s <= DETRACTOR_MAX] = "detractor"
    return out


def linked_customers(
    data: CXData,
    *,
    as_of: AsOf = None,
    clv_values: pd.DataFrame | None = None,
    churn_scores: pd.DataFrame | None = None,
    personas: pd.Series | None = None,
    window_days: int = 90,
) -> pd.DataFrame:
    """Return one row per customer with an NPS answer: the latest answer and its value.

    The latest answer is the last valid NPS answer up to ``as_of`` (ties broken by
    ``response_id``, as the scorecard does). Spend is summed in the engine over the
    orders up to ``as_of``; the window after the answer counts orders strictly after
    its timestamp and at most ``window_days`` later, and only for answers whose window
    is over by ``as_of`` (missing otherwise).

    Parameters
    ----------
    data
        The data (``responses`` with NPS answers; ``orders`` for spend).
    as_of
        The instant the linkage stands at (:func:`cxkit.data.resolve_as_of`).
    clv_values
        :attr:`cxkit.clv.ClvResult.values` (``customer_id`` and a ``clv_<h>w`` column).
    churn_scores
        :attr:`cxkit.churn.ChurnResult.scores` (``customer_id``, ``churn_probability``).
    personas
        Persona names indexed by ``customer_id``.
    window_days
        The window after the answer.

    Returns
    -------
    pandas.DataFrame
        ``customer_id, answered_at, latest_nps, nps_group``, then ``persona`` (with
        ``personas``), ``spend_to_date, revenue_after_<w>d, ordered_after_<w>d`` (with
        orders; ``ordered_after`` is 1.0 or 0.0), the CLV column (with ``clv_values``)
        and ``churn_probability`` (with ``churn_scores``); missing where a customer has
        no value. ``attrs``: ``as_of``, ``window_days``, ``window_before`` (the latest
        answer time whose window is over).

    Raises
    ------
    NotAvailableError
        Without NPS answers up to ``as_of``.

    Examples
    --------
    >>> import cxkit
    >>> r = pd.DataFrame({"response_id": ["r1", "r2", "r3"], "customer_id": ["a", "a", "b"],
    ...     "ts": pd.to_datetime(["2024-01-01", "2024-02-01", "2024-01-05"]),
    ...     "survey": "nps", "score": [10, 3, 9]})
    >>> o = pd.DataFrame({"order_id": ["o1", "o2"], "customer_id": ["a", "b"],
    ...     "ts": pd.to_datetime(["2024-02-10", "2024-06-01"]), "amount": [20.0, 5.0]})
    >>> t = linked_customers(cxkit.load({"responses": r, "orders": o}), window_days=30)
    >>> t[["customer_id", "nps_group", "revenue_after_30d", "spend_to_date"]].values.tolist()
    [['a', 'detractor', 20.0, 20.0], ['b', 'promoter', 0.0, 5.0]]
    """
    expr, info = linked_table(data, as_of=as_of, window_days=window_days)
    out = expr.to_pandas()
    if not len(out):
        raise NotAvailableError(_NPS_NEEDS, analysis=_ANALYSIS)
    out["customer_id"] = out["customer_id"].astype("string")
    out["answered_at"] = pd.to_datetime(out["answered_at"])
    out["latest_nps"] = pd.array(out["latest_nps"], dtype="Int64")
    out["nps_group"] = out["nps_group"].astype("string")
    out = out.sort_values("customer_id", kind="stable").reset_index(drop=True)
    window = f"{int(window_days)}d"
    if "spend_to_date" in out:
        for c in ("spend_to_date", f"revenue_after_{window}", f"ordered_after_{window}"):
            out[c] = out[c].astype(float)
    if personas is not None:
        named = personas.astype("string").rename("persona").rename_axis("customer_id")
        named.index = named.index.astype("string")
        out = out.merge(named.reset_index(), on="customer_id", how="left")
    if clv_values is not None:
        col = clv_column(clv_values)
        values = clv_values[["customer_id", col]].astype({"customer_id": "string"})
        out = out.merge(values, on="customer_id", how="left")
    if churn_scores is not None:
        scores = churn_scores[["customer_id", "churn_probability"]]
        out = out.merge(scores.astype({"customer_id": "string"}), on="customer_id", how="left")
    out.attrs.update(info)
    return out


def linked_table(
    data: CXData,
    *,
    as_of: AsOf = None,
    clv_values: ir.Table | None = None,
    churn_scores: ir.Table | None = None,
    personas: ir.Table | None = None,
    window_days: int = 90,
) -> tuple[ir.Table, dict[str, object]]:
    """Return :func:`linked_customers` as an engine expression (the one definition).

    :func:`linked_customers` collects it and joins values already in memory; scale mode
    (:mod:`cxkit.scale`) joins the values kept in the engine and sums it by group
    (:func:`group_moments`) without collecting a row per customer.

    Parameters
    ----------
    data, as_of, window_days
        As for :func:`linked_customers`.
    clv_values
        An engine table of ``customer_id`` and a ``clv_<h>w`` column, or None.
    churn_scores
        An engine table of ``customer_id`` and ``churn_probability``, or None.
    personas
        An engine table of ``customer_id`` and one label column, or None.

    Returns
    -------
    (ibis.expr.types.Table, dict)
        The columns of :func:`linked_customers` (unsorted) and its ``attrs``.

    Raises
    ------
    UsageError
        For a window of less than a day.
    NotAvailableError
        Without NPS answers in the data.
    """
    if window_days < 1:
        raise UsageError(
            f"window_days must be a whole number of days of at least 1, got {window_days!r}"
        )
    end = resolve_as_of(data, as_of)
    d = data.upto(end)
    r = scored_responses(d, "nps", analysis=_ANALYSIS)
    w = ibis.window(group_by=r.customer_id, order_by=[ibis.desc(r.ts), ibis.desc(r.response_id)])
    ranked = r.mutate(answer_rank=ibis.row_number().over(w))
    last = ranked.filter(ranked.answer_rank == 0)
    latest = last.select(
        customer_id=last.customer_id.cast("string"), answered_at=last.ts, latest_nps=last.score
    )
    window = f"{int(window_days)}d"
    before = end - pd.Timedelta(days=int(window_days))
    if d.has("orders", "customer_id", "ts", "amount"):
        o = d.table("orders")
        o = o.select(order_customer=o.customer_id.cast("string"), order_ts=o.ts, amount=o.amount)
        j = latest.left_join(o, latest.customer_id == o.order_customer)
        after = (j.order_ts > j.answered_at) & (
            j.order_ts <= j.answered_at + ibis.interval(days=int(window_days))
        )
        expr = j.group_by(["customer_id", "answered_at", "latest_nps"]).aggregate(
            spend_to_date=j.amount.sum(),
            revenue_after=j.amount.sum(where=after),
            orders_after=j.amount.count(where=after),
        )
        over = expr.answered_at <= ibis.literal(before.to_pydatetime())
        null = ibis.null("float64")
        expr = expr.select(
            "customer_id",
            "answered_at",
            "latest_nps",
            spend_to_date=expr.spend_to_date.cast("float64").fill_null(0.0),
            **{
                f"revenue_after_{window}": ibis.cases(
                    (over, expr.revenue_after.cast("float64").fill_null(0.0)), else_=null
                ),
                f"ordered_after_{window}": ibis.cases(
                    (over, (expr.orders_after.fill_null(0) > 0).ifelse(1, 0).cast("float64")),
                    else_=null,
                ),
            },
        )
    else:
        expr = latest
    s = expr.latest_nps
    expr = expr.mutate(
        nps_group=ibis.cases(
            (s >= PROMOTER_MIN, "promoter"),
            (s <= DETRACTOR_MAX, "detractor"),
            (s.notnull(), "passive"),
            else_=ibis.null("string"),
        )
    )
    front = ["customer_id", "answered_at", "latest_nps"]
    front += ["spend_to_date", "nps_group"] if "spend_to_date" in expr.columns else ["nps_group"]
    expr = expr.select(*front, *(c for c in expr.columns if c not in front))
    if personas is not None:
        label = next(c for c in personas.columns if c != "customer_id")
        lab = personas.select(
            lab_id=personas.customer_id.cast("string"), persona=personas[label].cast("string")
        )
        expr = expr.left_join(lab, expr.customer_id == lab.lab_id).drop("lab_id")
    if clv_values is not None:
        col = next((c for c in clv_values.columns if c.startswith("clv_")), None)
        if col is None:
            raise DataError(
                f"the CLV values table has no clv_<horizon> column: {list(clv_values.columns)}",
                fix="pass the values a CLV analysis wrote (customer_id and clv_52w)",
            )
        v = clv_values.select(
            val_id=clv_values.customer_id.cast("string"), **{col: clv_values[col]}
        )
        expr = expr.left_join(v, expr.customer_id == v.val_id).drop("val_id")
    if churn_scores is not None:
        c = churn_scores.select(
            score_id=churn_scores.customer_id.cast("string"),
            churn_probability=churn_scores.churn_probability,
        )
        expr = expr.left_join(c, expr.customer_id == c.score_id).drop("score_id")
    info = {"as_of": end, "window_days": int(window_days), "window_before": before}
    return expr, info


def group_moments(
    table: pd.DataFrame | ir.Table, measure: str, *, by: str | None = None
) -> pd.DataFrame:
    """Return ``n``, ``mean`` and ``var`` (``ddof=1``) of ``measure`` per (``by``,) NPS group.

    Rows where ``measure`` or the NPS group is missing are left out. A frame is grouped
    in pandas, an engine table in the engine (one row per group comes back), so
    :func:`compare_groups` reads both the same way.

    Parameters
    ----------
    table
        :func:`linked_customers` or :func:`linked_table`'s expression.
    measure
        The column.
    by
        A column to group within (``"persona"``), or None.

    Returns
    -------
    pandas.DataFrame
        ``[by,] nps_group, n, mean, var``.
    """
    keys = [by] if by else []
    if isinstance(table, ir.Table):
        t = table.filter(table[measure].notnull() & table.nps_group.isin(list(NPS_GROUPS)))
        x = t[measure].cast("float64")
        g = t.group_by([*keys, "nps_group"]).aggregate(n=x.count(), mean=x.mean(), var=x.var())
        out = g.to_pandas()
        out = out.astype({"nps_group": str, "n": "int64", "mean": float, "var": float})
        if by:
            out[by] = out[by].astype(str)
        return out
    x = table.loc[table[measure].notna() & table["nps_group"].isin(NPS_GROUPS)]
    x = x[[*keys, "nps_group", measure]].astype({measure: float, "nps_group": str})
    if by:
        x = x.astype({by: str})
    stats = x.groupby([*keys, "nps_group"], sort=False)[measure].agg(["size", "mean", "var"])
    out = stats.reset_index().rename(columns={"size": "n"})
    return out


def compare_groups(
    frame: pd.DataFrame,
    measure: str,
    *,
    kind: str = "mean",
    by: str | None = None,
    reference: str = "promoter",
    level: float = 0.95,
) -> pd.DataFrame:
    """Compare a measure across NPS groups: mean (or share) with its interval, n, and the gap.

    Parameters
    ----------
    frame
        One row per customer with ``nps_group`` and ``measure`` (e.g.
        :func:`linked_customers`); rows where ``measure`` is missing are left out.
    measure
        The column to compare.
    kind
        ``"mean"``: the mean with a Student-t interval, differences by Welch's t
        interval; ``"share"``: a 0/1 column's share with a Wilson interval, differences
        by the Wald interval of the two-proportion z-test.
    by
        A column to compare within (e.g. ``"persona"``); None compares everyone.
    reference
        The group every other group is compared with.
    level
        The confidence level.

    Returns
    -------
    pandas.DataFrame
        One row per (``by`` value,) NPS group of :data:`NPS_GROUPS`: ``[by,] nps_group,
        n, value, ci_low, ci_high, reference_n, diff, diff_low, diff_high, diff_se,
        p_value, small_n``. ``diff`` is the group minus the reference (missing on the
        reference's row and where either group is empty); ``small_n`` flags a group of
        fewer than :data:`cxkit.stats.MIN_N`.

    Raises
    ------
    UsageError
        For an unknown ``kind`` or ``reference``.

    Examples
    --------
    >>> t = pd.DataFrame({"nps_group": ["promoter"] * 3 + ["detractor"] * 3,
    ...                   "spend": [10.0, 12.0, 14.0, 6.0, 8.0, 10.0]})
    >>> g = compare_groups(t, "spend").set_index("nps_group")
    >>> d = g.loc["detractor"]
    >>> int(d["n"]), float(d["value"]), float(d["diff"])
    (3, 8.0, -4.0)
    """
    if kind not in ("mean", "share"):
        raise UsageError(f"kind must be 'mean' or 'share', got {kind!r}")
    if reference not in NPS_GROUPS:
        raise UsageError(f"reference must be one of {list(NPS_GROUPS)}, got {reference!r}")
    keys = [by] if by else []
    stats = group_moments(frame, measure, by=by).set_index([*keys, "nps_group"])
    stats = stats[["n", "mean", "var"]]
    if by:
        outer = sorted(_labels(frame, by))
        index = pd.MultiIndex.from_product([outer, list(NPS_GROUPS)], names=[by, "nps_group"])
    else:
        index = pd.Index(list(NPS_GROUPS), name="nps_group")
    full = stats.reindex(index).reset_index()
    full.columns = [*keys, "nps_group", "n", "value", "var"]
    full["n"] = full["n"].fillna(0).astype(int)
    n = full["n"].to_numpy(dtype=float)
    value = full["value"].to_numpy(dtype=float)
    var = full["var"].to_numpy(dtype=float)
    if kind == "mean":
        lo, hi = t_interval(value, np.sqrt(var), n, level)
    else:
        lo, hi = wilson_ci(np.round(np.nan_to_num(value) * n), n, level=level)
    full["ci_low"] = np.where(n > 0, lo, np.nan)
    full["ci_high"] = np.where(n > 0, hi, np.nan)
    ref = full[full["nps_group"] == reference]
    if by:
        ref = ref.set_index(by)
        r_n, r_val, r_var = (
            full[by].map(ref[c]).to_numpy(dtype=float) for c in ("n", "value", "var")
        )
    else:
        r_n, r_val, r_var = (
            np.full(len(full), float(ref[c].iloc[0])) for c in ("n", "value", "var")
        )
    with np.errstate(invalid="ignore", divide="ignore"):
        if kind == "mean":
            test = welch_test(value, var, n, r_val, r_var, r_n, level=level)
            se = np.asarray(test["se"], dtype=float)
        else:
            test = two_proportion_test(
                np.round(np.nan_to_num(value) * n),
                n,
                np.round(np.nan_to_num(r_val) * r_n),
                r_n,
                level=level,
            )
            se = np.sqrt(value * (1 - value) / n + r_val * (1 - r_val) / r_n)
    gone = (full["nps_group"] == reference).to_numpy() | (n < 1) | (r_n < 1)
    full["reference_n"] = r_n.astype(int)
    for col, key in (("diff", "diff"), ("diff_low", "ci_low"), ("diff_high", "ci_high")):
        full[col] = np.where(gone, np.nan, np.asarray(test[key], dtype=float))
    full["diff_se"] = np.where(gone, np.nan, se)
    full["p_value"] = np.where(gone, np.nan, np.asarray(test["p_value"], dtype=float))
    full["small_n"] = n < MIN_N
    cols = [*keys, "nps_group", "n", "value", "ci_low", "ci_high", "reference_n", "diff"]
    return full[[*cols, "diff_low", "diff_high", "diff_se", "p_value", "small_n"]]


def _labels(frame: pd.DataFrame | ir.Table, by: str) -> list[str]:
    """Return the distinct non-missing values of column ``by`` (in the engine for a table)."""
    if isinstance(frame, ir.Table):
        v = frame.filter(frame[by].notnull()).select(by).distinct().to_pandas()[by]
        return [str(x) for x in v]
    return [str(x) for x in frame[by].dropna().astype(str).unique()]


def adjusted_difference(
    frame: pd.DataFrame,
    measure: str,
    *,
    kind: str = "mean",
    by: str = "persona",
    group: str = "detractor",
    reference: str = "promoter",
    level: float = 0.95,
) -> dict[str, float]:
    """Return the gap between two NPS groups within each ``by`` group, averaged.

    Within each persona (or other ``by`` group) that has at least two customers of
    ``group`` and two of ``reference``, the gap is ``group`` minus ``reference``
    (:func:`compare_groups`); the gaps are averaged with the weights of where
    ``group``'s customers are, so the result is the gap ``group``'s customers have
    against ``reference`` customers of their own persona. Its standard error combines
    the per-persona ones; the interval is normal.

    Parameters
    ----------
    frame, measure, kind, level
        As for :func:`compare_groups`.
    by
        The column to hold fixed.
    group, reference
        The NPS groups compared.

    Returns
    -------
    dict of str to float
        ``diff, ci_low, ci_high, se``, ``n`` and ``reference_n`` (customers of the two
        groups in the personas used), ``groups`` (personas used) and ``groups_left_out``;
        NaN where no persona has both groups.

    Examples
    --------
    >>> t = pd.DataFrame({"persona": list("aaaabbbb"),
    ...     "nps_group": ["promoter", "promoter", "detractor", "detractor"] * 2,
    ...     "x": [10.0, 12.0, 6.0, 8.0, 20.0, 22.0, 21.0, 23.0]})
    >>> adjusted_difference(t, "x")["diff"]  # (-4 + 1) / 2
    -1.5
    """
    g = compare_groups(frame, measure, kind=kind, by=by, reference=reference, level=level)
    g = g[g["nps_group"] == group]
    ok = (g["n"] >= 2) & (g["reference_n"] >= 2) & np.isfinite(g["diff_se"]) & g["diff"].notna()
    used = g[ok]
    out = {"groups": float(len(used)), "groups_left_out": float(len(g) - len(used))}
    if not len(used):
        nan = float("nan")
        return {"diff": nan, "ci_low": nan, "ci_high": nan, "se": nan, "n": 0.0,
                "reference_n": 0.0, **out}  # fmt: skip
    w = used["n"].to_numpy(dtype=float) / float(used["n"].sum())
    diff = float(np.sum(w * used["diff"].to_numpy(dtype=float)))
    se = float(np.sqrt(np.sum((w * used["diff_se"].to_numpy(dtype=float)) ** 2)))
    z = float(_st.norm.ppf(0.5 + level / 2))
    return {
        "diff": diff,
        "ci_low": diff - z * se,
        "ci_high": diff + z * se,
        "se": se,
        "n": float(used["n"].sum()),
        "reference_n": float(used["reference_n"].sum()),
        **out,
    }


# --------------------------------------------------------------------------------------
# the result
# --------------------------------------------------------------------------------------


def _signed_money(v: float) -> str:
    text = format_money(v)
    return text if text.startswith("-") or text == "–" else f"+{text}"


def _gap_words(
    diff: float,
    low: float,
    high: float,
    fmt: Callable[[float], str],
    *,
    unit: str = "",
    words: tuple[str, str] = ("less", "more"),
) -> tuple[str, str]:
    """Say a difference and its interval in words: ("$41.00 less", "$12.00 to $70.00 less").

    ``fmt`` shows a non-negative amount and ``unit`` follows it; an interval across zero
    reads "$20.00 less to $5.00 more, so no clear gap".

    Examples
    --------
    >>> _gap_words(-41.0, -70.0, -12.0, "{:.2f}".format)
    ('41.00 less', '12.00 to 70.00 less')
    >>> _gap_words(5.0, -2.0, 10.0, "{:.1f}".format, unit=" points", words=("lower", "higher"))
    ('5.0 points higher', '2.0 points lower to 10.0 points higher, so no clear gap')
    """
    less, more = words
    gap = f"{fmt(abs(diff))}{unit} {less if diff < 0 else more}"
    if high < 0:
        return gap, f"{fmt(-high)} to {fmt(-low)}{unit} {less}"
    if low > 0:
        return gap, f"{fmt(low)} to {fmt(high)}{unit} {more}"
    return gap, f"{fmt(-low)}{unit} {less} to {fmt(high)}{unit} {more}, so no clear gap"


def _n_words(nd: int, npro: int) -> str:
    det = f"{nd:,} detractor{'s' if nd != 1 else ''}"
    return f"n = {det}, {npro:,} promoter{'s' if npro != 1 else ''}"


_POINTS = {"fmt": "{:.1f}".format, "unit": " points", "words": ("lower", "higher")}


@dataclass(kw_only=True)
class SurveyValueResult(Result):
    """What customers in each NPS group are worth, with intervals (:func:`survey_value`).

    Attributes
    ----------
    customers
        :func:`linked_customers`, or None when not available.
    measures
        The measures compared (:func:`value_measures`): those the data supports.
    by_nps
        :func:`compare_groups` of every measure, stacked: ``measure, label, unit`` and
        its columns; None when not available.
    by_persona
        The same within each persona (``persona`` after ``unit``), or None without
        persona labels.
    adjusted
        Per measure, the detractor − promoter gap within personas
        (:func:`adjusted_difference`): ``measure, label, unit, diff, ci_low, ci_high,
        se, n, reference_n, groups, groups_left_out``; None without persona labels.
    window_days
        The window after the answer for realised revenue.
    horizon_weeks
        The CLV horizon.
    churn_horizon_days
        The churn horizon, or None without churn scores.
    scores_from, scores_label
        Whose churn scores are used (:attr:`cxkit.churn.ChurnResult.scores_from` and
        its label), or None.
    unavailable
        Why a part is missing, by part (``"linkage"``, ``"clv"``, ``"churn"``,
        ``"orders"``, ``"by_persona"``).
    """

    domain: ClassVar[str] = "voc"
    customers: pd.DataFrame | None = None
    measures: tuple[ValueMeasure, ...] = ()
    by_nps: pd.DataFrame | None = None
    by_persona: pd.DataFrame | None = None
    adjusted: pd.DataFrame | None = None
    window_days: int = 90
    horizon_weeks: float = 52
    churn_horizon_days: int | None = None
    scores_from: str | None = None
    scores_label: str | None = None
    unavailable: dict[str, str] = field(default_factory=dict)

    def measure(self, source: str, *, unit: str | None = None) -> ValueMeasure | None:
        """Return the first measure from ``source`` (and of ``unit``), or None.

        Parameters
        ----------
        source
            ``"clv"`` (expected CLV), ``"churn"`` (the churn probability) or
            ``"orders"`` (first: spend in the window after the answer).
        unit
            Only a measure of this unit (``"money"``, ``"probability"``, ``"share"``).

        Returns
        -------
        ValueMeasure or None
            The measure, or None when the data did not support it.
        """
        for m in self.measures:
            if m.source == source and (unit is None or m.unit == unit):
                return m
        return None

    def gap(self, m: ValueMeasure | None, group: str = "detractor") -> pd.Series | None:
        """Return the :attr:`by_nps` row of ``group`` for a measure: its gap to promoters.

        Parameters
        ----------
        m
            The measure (:meth:`measure`).
        group
            The NPS group compared with promoters.

        Returns
        -------
        pandas.Series or None
            The row (``value``, ``diff``, ``diff_low``, ``diff_high``, ``n``, ...); None
            without a measure or without a gap with an interval (a group of fewer than
            two customers).
        """
        if m is None or self.by_nps is None:
            return None
        t = self.by_nps
        rows = t[(t["measure"] == m.key) & (t["nps_group"] == group)]
        if not len(rows) or rows[["diff", "diff_low", "diff_high"]].iloc[0].isna().any():
            return None
        return rows.iloc[0]

    def findings(self) -> list[Finding]:
        """Return the detractor − promoter gaps in CLV, realised revenue and churn risk.

        Each sentence gives the difference with its 95% interval and n; with persona
        labels it adds the gap against promoters of the detractors' own persona
        (:attr:`adjusted`), which says how much of the gap goes with the persona mix.

        Returns
        -------
        list of Finding
            ``detractor_clv_gap_<h>w`` (currency), ``detractor_revenue_gap_<w>d``
            (currency) and ``detractor_churn_gap`` (percentage points), each with the
            difference's 95% interval, ``n`` = detractors + promoters and the small-group
            flag when either group has fewer than :data:`cxkit.stats.MIN_N`; only those
            the data supports.
        """
        out: list[Finding] = []
        h, w = f"{self.horizon_weeks:g}", self.window_days
        m = self.measure("clv")
        r = self.gap(m)
        if m is not None and r is not None:
            gap, ci = _gap_words(r["diff"], r["diff_low"], r["diff_high"], format_money)
            s = (
                f"A detractor is worth {gap} than a promoter over the next {h} weeks (95% CI "
                f"{ci}; {_n_words(int(r['n']), int(r['reference_n']))}){self._within(m)}."
            )
            out.append(self._finding(m, r, f"detractor_clv_gap_{h}w", s, "currency", 7.9))
        m = self.measure("orders", unit="money")
        r = self.gap(m)
        if m is not None and r is not None:
            gap, ci = _gap_words(r["diff"], r["diff_low"], r["diff_high"], format_money)
            s = (
                f"In the {w} days after their latest NPS answer, detractors spent {gap} than "
                f"promoters (95% CI {ci}; {_n_words(int(r['n']), int(r['reference_n']))} "
                f"whose {w} days had passed by {self.as_of:%Y-%m-%d}){self._within(m)}."
            )
            out.append(self._finding(m, r, f"detractor_revenue_gap_{w}d", s, "currency", 7.8))
        m = self.measure("churn")
        r = self.gap(m)
        if m is not None and r is not None:
            d, lo, hi = (100 * r[c] for c in ("diff", "diff_low", "diff_high"))
            gap, ci = _gap_words(d, lo, hi, **_POINTS)  # type: ignore[arg-type]
            baseline = "" if self.scores_from == "model" else ", the baseline that beat the model"
            s = (
                f"Detractors' churn probability over the next {self.churn_horizon_days} days "
                f"is {gap} than promoters', {r['value']:.1%} vs {r['value'] - r['diff']:.1%} "
                f"(95% CI {ci}; {_n_words(int(r['n']), int(r['reference_n']))}; churn scores "
                f"from {self.scores_label}{baseline}){self._within(m)}."
            )
            out.append(
                self._finding(m, r, "detractor_churn_gap", s, "percentage points", 7.7, 100.0)
            )
        return out

    def within_personas(self, m: ValueMeasure | None) -> pd.Series | None:
        """Return the :attr:`adjusted` row of a measure: its gap within personas.

        Parameters
        ----------
        m
            The measure (:meth:`measure`).

        Returns
        -------
        pandas.Series or None
            ``diff, ci_low, ci_high, n, reference_n, groups, ...``; None without persona
            labels or without a persona that has both groups.
        """
        if m is None or self.adjusted is None:
            return None
        rows = self.adjusted[self.adjusted["measure"] == m.key]
        if not len(rows) or pd.isna(rows["diff"].iloc[0]):
            return None
        return rows.iloc[0]

    def _within(self, m: ValueMeasure) -> str:
        """Return the findings' clause on the gap against promoters of the same persona."""
        a = self.within_personas(m)
        if a is None:
            return ""
        if m.unit == "money":
            gap, ci = _gap_words(a["diff"], a["ci_low"], a["ci_high"], format_money)
        else:
            values = (100 * a[c] for c in ("diff", "ci_low", "ci_high"))
            gap, ci = _gap_words(*values, **_POINTS)  # type: ignore[arg-type]
        return f"; against promoters of their own persona the gap is {gap} (95% CI {ci})"

    def _finding(
        self,
        m: ValueMeasure,
        r: pd.Series,
        metric: str,
        sentence: str,
        unit: str,
        importance: float,
        scale: float = 1.0,
    ) -> Finding:
        row = {**r.to_dict(), "n_both": int(r["n"] + r["reference_n"])}
        a = self.within_personas(m)
        return finding_from_rate(
            row,
            domain=self.domain,
            metric=metric,
            sentence=sentence,
            unit=unit,
            importance=importance,
            value="diff",
            low="diff_low",
            high="diff_high",
            n="n_both",
            scale=scale,
            comparison="detractors vs promoters (latest NPS answer)",
            p_value="p_value",
            small_n=bool(r["n"] < MIN_N or r["reference_n"] < MIN_N),
            extra={
                "detractor_mean": float(scale * r["value"]),
                "promoter_mean": float(scale * (r["value"] - r["diff"])),
                "within_personas": None if a is None else float(scale * a["diff"]),
            },
        )

    def persona_sentence(self) -> str | None:
        """Say in how many personas the CLV (else revenue) gap is clear, Holm-adjusted.

        Returns
        -------
        str or None
            The takeaway of the persona table; None without persona labels.
        """
        if self.by_persona is None:
            return None
        for m in (self.measure("clv"), self.measure("orders", unit="money")):
            if m is None:
                continue
            p = self.by_persona
            det = p[(p["measure"] == m.key) & (p["nps_group"] == "detractor")]
            det = det[det["p_value"].notna()]
            if not len(det):
                continue
            clear = holm(det["p_value"].to_numpy(dtype=float)) < 0.05
            small = int(((det["n"] < MIN_N) | (det["reference_n"] < MIN_N)).sum())
            k = int(clear.sum())
            return (
                f"Within personas, the gap in {m.label} between detractors and promoters is "
                f"clear in {k} of {len(det)} persona{'s' if len(det) != 1 else ''} (p < 0.05 "
                "after a Holm adjustment over the personas)"
                + (
                    f"; in {small} of them detractors or promoters are fewer than {MIN_N}"
                    if small
                    else ""
                )
                + "."
            )
        return None

    def title(self) -> str:
        """Return the chart's takeaway: the CLV gap (else the realised revenue gap).

        When the gap is clear over everyone but not within personas, the title says so.
        """
        for m, when in (
            (self.measure("clv"), f"over the next {self.horizon_weeks:g} weeks"),
            (
                self.measure("orders", unit="money"),
                f"in the {self.window_days} days after answering",
            ),
        ):
            r = self.gap(m)
            if m is None or r is None:
                continue
            if r["diff_low"] <= 0 <= r["diff_high"]:
                return f"No clear gap between detractors and promoters in {m.label}"
            verb = "are worth" if m.source == "clv" else "spend"
            more = "less" if r["diff"] < 0 else "more"
            title = f"Detractors {verb} {format_money(abs(r['diff']))} {more} than promoters {when}"
            a = self.within_personas(m)
            if a is not None and a["ci_low"] <= 0 <= a["ci_high"]:
                title += ", but not clearly within personas"
            return title
        return "Value by latest NPS answer"


def survey_value(
    data: CXData,
    *,
    as_of: AsOf = None,
    clv: clv_domain.ClvResult | None = None,
    churn: churn_domain.ChurnResult | None = None,
    personas: pd.Series | None = None,
    window_days: int = 90,
    notes: Mapping[str, str] | None = None,
) -> SurveyValueResult:
    """Link each customer's latest NPS group to CLV, churn risk and realised revenue.

    Uses the CLV and churn results given (the CLV and churn reports' own); a measure
    whose result is missing is left out and its note kept.

    Parameters
    ----------
    data
        The data.
    as_of
        The instant the linkage stands at (:func:`cxkit.data.resolve_as_of`).
    clv
        The CLV result (:func:`cxkit.clv.analyze`), or None.
    churn
        The churn result (:func:`cxkit.churn.analyze`), or None.
    personas
        Persona names indexed by ``customer_id``
        (:func:`cxkit.personas.resolve_persona_labels`); None leaves out the persona
        breakdown.
    window_days
        The window after the answer for realised revenue.
    notes
        Why ``clv`` or ``churn`` is missing (keys ``"clv"`` and ``"churn"``).

    Returns
    -------
    SurveyValueResult
        The comparisons and :meth:`SurveyValueResult.findings`; without NPS answers
        only the note (``not_available``).
    """
    end = resolve_as_of(data, as_of)
    engine = _engine_values(data, clv, churn, personas)
    if churn is not None and engine is None:
        try:
            churn_domain.held_scores(churn)  # scale mode: the scores stay in the engine
        except NotAvailableError as err:
            notes, churn = {**(notes or {}), "churn": f"this needs {err.needs}"}, None
    unavailable: dict[str, str] = {}
    base: dict[str, object] = {"as_of": end, "window_days": int(window_days)}
    if clv is not None:
        base["horizon_weeks"] = clv.horizon_weeks
    table: pd.DataFrame | ir.Table
    try:
        if engine is not None:  # scale mode: joined and summed in the engine
            table, _ = linked_table(data, as_of=end, window_days=window_days, **engine)
            if int(table.count().to_pandas()) == 0:
                raise NotAvailableError(_NPS_NEEDS, analysis=_ANALYSIS)
        else:
            table = linked_customers(
                data,
                as_of=end,
                clv_values=None if clv is None else clv.values,
                churn_scores=None if churn is None else churn.scores,
                personas=personas,  # type: ignore[arg-type]
                window_days=window_days,
            )
    except NotAvailableError as err:
        unavailable["linkage"] = str(err)
        return SurveyValueResult(unavailable=unavailable, not_available=[str(err)], **base)  # type: ignore[arg-type]
    given = dict(notes or {})
    for part, what in (("clv", "Expected CLV"), ("churn", "Churn risk")):
        if (clv if part == "clv" else churn) is None:
            why = given.get(part, f"there is no {part} result").removeprefix(
                "the data cannot support it: "
            )
            unavailable[part] = f"{what} by NPS group is not available: {why}"
    if "spend_to_date" not in table.columns:
        unavailable["orders"] = str(
            NotAvailableError("the table 'orders'", analysis="Realised revenue by NPS group")
        )
    wanted = value_measures(
        horizon_weeks=clv.horizon_weeks if clv is not None else 52,
        churn_horizon_days=churn.definition.horizon_days if churn is not None else 90,
        window_days=window_days,
    )
    if clv is not None:  # the CLV result's own column name
        wanted = tuple(replace(m, key=clv.clv_column) if m.source == "clv" else m for m in wanted)
    measures = tuple(m for m in wanted if m.key in table.columns)
    if isinstance(table, ir.Table):
        has_personas = "persona" in table.columns and bool(
            table.persona.notnull().any().to_pandas()
        )
    else:
        has_personas = "persona" in table and bool(table["persona"].notna().any())
    if personas is None:
        unavailable["by_persona"] = "Value by persona is not available: no persona labels."
    elif not has_personas:
        unavailable["by_persona"] = (
            "Value by persona is not available: no customer with an NPS answer has a persona."
        )
    overall, within, adjusted = [], [], []
    for m in measures:
        info = {"measure": m.key, "label": m.label, "unit": m.unit}
        overall.append(compare_groups(table, m.key, kind=m.statistic).assign(**info))
        if has_personas:
            by = compare_groups(table, m.key, kind=m.statistic, by="persona")
            within.append(by.assign(**info))
            adjusted.append({**info, **adjusted_difference(table, m.key, kind=m.statistic)})
    return SurveyValueResult(
        customers=None if isinstance(table, ir.Table) else table,
        measures=measures,
        by_nps=_stack(overall),
        by_persona=_stack(within),
        adjusted=pd.DataFrame(adjusted) if adjusted else None,
        churn_horizon_days=None if churn is None else churn.definition.horizon_days,
        scores_from=None if churn is None else churn.scores_from,
        scores_label=None if churn is None else churn.scores_label,
        unavailable=unavailable,
        not_available=list(dict.fromkeys(v for k, v in unavailable.items() if k != "by_persona")),
        **base,  # type: ignore[arg-type]
    )


def _engine_values(
    data: CXData,
    clv: object | None,
    churn: churn_domain.ChurnResult | None,
    personas: object | None,
) -> dict[str, ir.Table | None] | None:
    """Return the engine tables to link when a domain result keeps its values there.

    Scale mode (:mod:`cxkit.scale`) keeps churn scores (``scores_table``), CLV values
    (``values_table``) and persona labels (an engine table) in the engine; then the
    linkage is joined and summed there, and the results in memory are uploaded
    (``ibis.memtable``) to join them. None when every value is in memory.
    """
    held = {
        "churn": isinstance(getattr(churn, "scores_table", None), str),
        "clv": isinstance(getattr(clv, "values_table", None), str),
        "personas": isinstance(personas, ir.Table),
    }
    if not any(held.values()):
        return None
    con = data.con
    out: dict[str, ir.Table | None] = {"clv_values": None, "churn_scores": None, "personas": None}
    if churn is not None:
        out["churn_scores"] = (
            scale.open_table(con, churn.scores_table)  # type: ignore[attr-defined]
            if held["churn"]
            else ibis.memtable(churn.scores[["customer_id", "churn_probability"]])
        )
    if clv is not None:
        out["clv_values"] = (
            scale.open_table(con, clv.values_table)  # type: ignore[attr-defined]
            if held["clv"]
            else ibis.memtable(clv.values[["customer_id", clv.clv_column]])  # type: ignore[attr-defined]
        )
    if personas is not None:
        out["personas"] = (
            personas  # type: ignore[assignment]
            if held["personas"]
            else ibis.memtable(
                pd.Series(personas)
                .astype("string")
                .rename("persona")
                .rename_axis("customer_id")
                .reset_index()
            )
        )
    return out


def _stack(frames: list[pd.DataFrame]) -> pd.DataFrame | None:
    """Stack per-measure comparisons, the measure's columns first."""
    if not frames:
        return None
    out = pd.concat(frames, ignore_index=True)
    front = ["measure", "label", "unit"]
    return out[front + [c for c in out.columns if c not in front]]


def value_linkage(
    data: CXData,
    *,
    as_of: AsOf = None,
    personas: pd.Series | None = None,
    window_days: int = 90,
    horizon_weeks: int = 52,
    random_state: int = 0,
) -> SurveyValueResult:
    """Get the CLV and churn results as their reports do, and link them to the NPS groups.

    :func:`cxkit.clv.analyze` and :func:`cxkit.churn.analyze` are called with the
    options the CLV and churn reports and the executive summary use, so inside a report
    run they are read from the run's cache (:mod:`cxkit.cache`) rather than fitted
    again. Without NPS answers nothing is fitted: the result is the "not available" note.

    Parameters
    ----------
    data
        The data.
    as_of
        The instant the linkage stands at (:func:`cxkit.data.resolve_as_of`).
    personas
        Persona labels, as for :func:`survey_value`.
    window_days
        The window after the answer for realised revenue.
    horizon_weeks
        The CLV horizon (the CLV report's).
    random_state
        The churn model's seed (the churn report's).

    Returns
    -------
    SurveyValueResult
        As :func:`survey_value`.
    """
    end = resolve_as_of(data, as_of)
    if not _has_nps(data, end):
        return survey_value(data, as_of=end, window_days=window_days)  # only the note
    notes: dict[str, str] = {}
    clv_result = churn_result = None
    try:
        clv_result = clv_domain.analyze(data, as_of=end, horizon_weeks=horizon_weeks)
    except _UNSUPPORTED as err:
        notes["clv"] = str(err)
    try:
        churn_result = churn_domain.analyze(data, as_of=end, random_state=random_state)
    except _UNSUPPORTED as err:
        notes["churn"] = str(err)
    return survey_value(
        data,
        as_of=end,
        clv=clv_result,
        churn=churn_result,
        personas=personas,
        window_days=window_days,
        notes=notes,
    )


def _has_nps(data: CXData, end: pd.Timestamp) -> bool:
    """Whether the data has a valid NPS answer up to ``end`` (one cheap count)."""
    if not data.has("responses", "survey", "score"):
        return False
    r = scored_responses(data.upto(end), "nps", analysis=_ANALYSIS)
    return bool(r.count().to_pandas() > 0)


# --------------------------------------------------------------------------------------
# tables
# --------------------------------------------------------------------------------------

_TABLE_LABELS = {
    "measure": "measure",
    "nps_group": "NPS group",
    "n": "customers",
    "mean": "mean per customer",
    "share": "mean",
    "diff": "difference vs promoters",
    "p_value": "p-value",
}


def _group_table(t: pd.DataFrame, unit: str) -> pd.DataFrame:
    """Return the rows of ``unit``'s measures, named by how they are shown."""
    rows = t[t["unit"].isin(["money"] if unit == "money" else ["probability", "share"])]
    value = "mean" if unit == "money" else "share"  # ``share`` columns show as percentages
    cols = {
        "label": "measure",
        "value": value,
        "ci_low": f"{value}_low",
        "ci_high": f"{value}_high",
    }
    keep = ["label", "nps_group", "n", "value", "ci_low", "ci_high", "diff", "diff_low"]
    return rows[[*keep, "diff_high", "p_value", "small_n"]].rename(columns=cols)


def show_value_tables(result: SurveyValueResult) -> None:
    """Show the comparisons as stakeholder tables (:func:`cxkit.display.show_table`).

    One table of amounts (expected CLV, spend after the answer, spend to date) and one
    of probabilities and shares, by NPS group, each with its 95% intervals and the
    difference against promoters; with persona labels, the detractor − promoter gaps
    in each persona and within personas. Parts not available are shown as notes.

    Parameters
    ----------
    result
        The linkage.
    """
    t = result.by_nps
    if t is None:
        for note in result.not_available or ["The survey-to-value linkage is not available."]:
            not_available(note)
        return
    money = _group_table(t, "money")
    if len(money):
        show_table(
            money,
            money=["mean", "mean_low", "mean_high"],
            formats=dict.fromkeys(["diff", "diff_low", "diff_high"], _signed_money),
            labels=_TABLE_LABELS,
            caption="Amounts per customer by latest NPS answer, with 95% intervals "
            "(difference: the group minus promoters, Welch's t interval)",
        )
    shares = _group_table(t, "share")
    if len(shares):
        show_table(
            shares,
            labels={**_TABLE_LABELS, "diff": "difference vs promoters (pts)"},
            caption="Churn probability and the share who ordered, by latest NPS answer, "
            "with 95% intervals (t for a mean probability, Wilson for a share; differences "
            "in percentage points)",
        )
    for part in ("clv", "churn", "orders"):
        if part in result.unavailable:
            not_available(result.unavailable[part])
    if result.by_persona is None or result.adjusted is None:
        not_available(result.unavailable.get("by_persona", "Value by persona is not available."))
        return
    table, labels = _persona_table(result)
    signed = [c for c in table.columns if c.endswith(("_gap", "_gap_low", "_gap_high"))]
    show_table(
        table,
        formats=dict.fromkeys(signed, _signed_money),
        labels=labels,
        caption="Detractors minus promoters within each persona, with 95% intervals; the "
        "last row compares detractors with promoters of their own persona, weighted by "
        "where the detractors are",
    )


#: The persona table's gap columns, by the measure's source.
_GAP_LABELS = {
    "clv": "CLV gap, next {h} weeks",
    "churn": "churn probability gap (pts)",
    "orders": "spend gap, {w} days after the answer",
}


def _persona_table(result: SurveyValueResult) -> tuple[pd.DataFrame, dict[str, str]]:
    """Return one row per persona, and one within personas: the detractor − promoter gaps."""
    p, adj = result.by_persona, result.adjusted
    assert p is not None and adj is not None
    shown = [
        m
        for m in (result.measure("clv"), result.measure("churn"), result.measure("orders"))
        if m is not None
    ]
    det = p[p["nps_group"] == "detractor"]
    first = det[det["measure"] == shown[0].key].set_index("persona")
    adj = adj.set_index("measure")
    table = pd.DataFrame(
        {
            "persona": [*first.index.astype(str), "all: within personas"],
            "n": [*first["n"], int(adj.loc[shown[0].key, "n"])],
            "reference_n": [*first["reference_n"], int(adj.loc[shown[0].key, "reference_n"])],
        }
    )
    labels = {"persona": "persona", "n": "detractors", "reference_n": "promoters"}
    for m in shown:
        # the name says how a column is shown: ``*_points`` in points, ``clv_*`` /
        # ``revenue_*`` as money (cxkit.display.column_kind)
        col = "churn_gap_points" if m.unit != "money" else f"{m.key}_gap"
        scale = 1.0 if m.unit == "money" else 100.0
        rows = det[det["measure"] == m.key].set_index("persona").reindex(first.index)
        for suffix, src, total in (
            ("", "diff", "diff"),
            ("_low", "diff_low", "ci_low"),
            ("_high", "diff_high", "ci_high"),
        ):
            values = [*rows[src].to_numpy(dtype=float), float(adj.loc[m.key, total])]
            table[col + suffix] = scale * np.asarray(values)
        labels[col] = _GAP_LABELS[m.source].format(
            h=f"{result.horizon_weeks:g}", w=result.window_days
        )
    table["small_n"] = (table["n"] < MIN_N) | (table["reference_n"] < MIN_N)
    return table, labels
