"""Persona journeys: reach and drop-off per stage, channel shares, satisfaction, pain points.

Every function takes the data and the persona of each customer (``assignments``: the
frame from :func:`cxkit.personas.assign`, or a Series of persona names indexed by
``customer_id``) and works in the engine; only per-persona results come to pandas.
Stages are :mod:`cxkit.lifecycle`'s (awareness → advocacy), comment themes come from
:func:`cxkit.voc.themes`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import ibis
import ibis.expr.types as ir
import numpy as np
import pandas as pd

from cxkit import stats, voc
from cxkit.data import CXData, resolve_as_of
from cxkit.errors import DataError, NotAvailableError
from cxkit.lifecycle import DEFAULT_STAGES, STAGES, available_stages, stage_times_expr
from cxkit.personas.features import count_if
from cxkit.result import AsOf

#: The persona of each customer: a frame with ``customer_id`` and ``persona_name`` (or
#: ``persona``), or a Series of persona names indexed by ``customer_id``.
Assignments = pd.DataFrame | pd.Series


def _assignments_table(assignments: Assignments) -> pd.DataFrame:
    """Return the persona of each customer as a ``customer_id`` / ``persona_name`` frame.

    Parameters
    ----------
    assignments
        The frame from :func:`cxkit.personas.assign` (or any frame with ``customer_id``
        and ``persona_name`` or ``persona``), or a Series of names indexed by
        ``customer_id``.

    Returns
    -------
    pandas.DataFrame
        ``customer_id`` and ``persona_name``, both as Python strings.

    Raises
    ------
    DataError
        When the columns are missing.
    """
    if isinstance(assignments, pd.Series):
        df = assignments.rename("persona_name").rename_axis("customer_id").reset_index()
    else:
        df = pd.DataFrame(assignments)
    if "persona_name" not in df.columns and "persona" in df.columns:
        df = df.assign(persona_name=df["persona"].astype(str))
    if "customer_id" not in df.columns or "persona_name" not in df.columns:
        raise DataError(
            "assignments need columns 'customer_id' and 'persona_name' (or a Series "
            "indexed by customer_id)",
            fix="use assign(model, features)",
        )
    return pd.DataFrame(
        {
            "customer_id": df["customer_id"].astype(str),
            "persona_name": df["persona_name"].astype(str),
        }
    )


def _engine_personas(assignments: Assignments | ir.Table) -> ir.Table:
    if isinstance(assignments, ir.Table):  # scale mode: the labels table in the engine
        return assignments.select(
            customer_id=assignments.customer_id.cast("string"),
            persona_name=assignments.persona_name.cast("string"),
        )
    return ibis.memtable(_assignments_table(assignments))


def _stage_events(stage: str) -> list[str]:
    """Return the event names of a stage in lifecycle's default stage map."""
    ev = DEFAULT_STAGES.get(stage, {}).get("events")
    if ev is None or ev == "any":
        return []
    return [ev] if isinstance(ev, str) else list(ev)


def _stage_of(tbl: ir.Table) -> ir.Value:
    """Return the latest stage reached at each row's ``ts`` (rows joined to stage times)."""
    return ibis.cases(
        ((tbl.advocacy_at.notnull() & (tbl.advocacy_at <= tbl.ts)), "advocacy"),
        ((tbl.retention_at.notnull() & (tbl.retention_at <= tbl.ts)), "retention"),
        ((tbl.purchase_at.notnull() & (tbl.purchase_at <= tbl.ts)), "purchase"),
        ((tbl.consideration_at.notnull() & (tbl.consideration_at <= tbl.ts)), "consideration"),
        else_="awareness",
    )


def journey_map(data: CXData, assignments: Assignments, *, as_of: AsOf = None) -> pd.DataFrame:
    """Compute the persona × stage grid: reach, drop-off, top channel, CSAT and NPS.

    Parameters
    ----------
    data
        The loaded data.
    assignments
        Persona per customer: the output of :func:`cxkit.personas.assign`
        (``customer_id``, ``persona_name``) or a Series of persona names indexed by
        ``customer_id``.
    as_of
        The last instant used (:func:`cxkit.data.resolve_as_of`).

    Returns
    -------
    pandas.DataFrame
        One row per (persona, stage) in stage order, for the stages the data can show
        (:func:`cxkit.lifecycle.available_stages`): ``n_customers`` (persona size),
        ``n_reached``, ``reach`` with Wilson ``reach_ci_low``/``reach_ci_high``,
        ``n_previous`` (how many reached the previous stage: the n of the drop-off; NA
        at the first stage), ``drop_off`` (share of the previous stage's customers who
        did not reach this one),
        ``top_channel`` and ``top_channel_share`` (of the stage's activity),
        ``csat_top2``/``csat_ci_low``/``csat_ci_high``/``csat_n`` (CSAT responses given
        while the customer was in that stage), ``nps``/``nps_ci_low``/``nps_ci_high``/
        ``nps_n``, and ``small_n`` flags. ``attrs["as_of"]`` is the resolved cut.
    """
    end = resolve_as_of(data, as_of)
    pers = _engine_personas(assignments)
    st = stage_times_expr(data, as_of=end).drop("current_stage")
    # only stages the data can show (orders alone cannot show awareness or consideration)
    avail, _ = available_stages(data)
    stages = [s for s in STAGES if s in avail]
    j = pers.left_join(st, "customer_id")
    agg = {"n_customers": j.count()}
    for s in stages:
        agg[s] = count_if(j[f"{s}_at"].notnull())
    reach = j.group_by("persona_name").aggregate(**agg).to_pandas()
    rows = []
    for _, r in reach.iterrows():
        prev = None
        for s in stages:
            n_r = int(r[s])
            n_c = int(r["n_customers"])
            lo, hi = stats.wilson_ci(n_r, n_c)
            rows.append(
                {
                    "persona_name": r["persona_name"],
                    "stage": s,
                    "n_customers": n_c,
                    "n_reached": n_r,
                    "reach": n_r / n_c if n_c else np.nan,
                    "reach_ci_low": lo,
                    "reach_ci_high": hi,
                    "n_previous": prev if prev is not None else pd.NA,
                    "drop_off": (1 - n_r / prev) if prev else np.nan,
                }
            )
            prev = n_r
    grid = pd.DataFrame(rows)
    grid["n_previous"] = grid["n_previous"].astype("Int64")
    ch = channel_shares(data, assignments, as_of=end)
    if len(ch):
        top = ch.sort_values(
            ["persona_name", "stage", "share", "channel"], ascending=[True, True, False, True]
        )
        top = top.groupby(["persona_name", "stage"], as_index=False).first()
        top = top.rename(columns={"channel": "top_channel", "share": "top_channel_share"})
        grid = grid.merge(
            top[["persona_name", "stage", "top_channel", "top_channel_share"]],
            on=["persona_name", "stage"],
            how="left",
        )
    else:
        grid["top_channel"] = pd.NA
        grid["top_channel_share"] = np.nan
    sat = _stage_satisfaction(data, pers, st, end)
    grid = grid.merge(sat, on=["persona_name", "stage"], how="left")
    for c in ("csat_n", "nps_n"):
        grid[c] = grid[c].fillna(0).astype("int64")
    grid["small_n"] = stats.is_small(grid["n_reached"])
    grid["csat_small_n"] = stats.is_small(grid["csat_n"])
    grid["nps_small_n"] = stats.is_small(grid["nps_n"])
    grid["stage"] = pd.Categorical(grid["stage"], categories=stages, ordered=True)
    grid = grid.sort_values(["persona_name", "stage"], kind="stable").reset_index(drop=True)
    grid["stage"] = grid["stage"].astype(str)
    grid.attrs["as_of"] = end
    return grid


def _stage_satisfaction(
    data: CXData, pers: ir.Table, st: ir.Table, end: pd.Timestamp
) -> pd.DataFrame:
    cols = [
        "persona_name",
        "stage",
        "csat_top2",
        "csat_ci_low",
        "csat_ci_high",
        "csat_n",
        "nps",
        "nps_ci_low",
        "nps_ci_high",
        "nps_n",
    ]
    if not data.has("responses", "survey", "score"):
        return pd.DataFrame(columns=cols)
    rs = data.table("responses").filter(lambda t: (t.ts <= end) & t.score.notnull())
    j = rs.join(pers, "customer_id").join(st, "customer_id")
    j = j.mutate(stage=_stage_of(j))
    csat = j.filter(j.survey == "csat")
    nps = j.filter(j.survey == "nps")
    a = (
        csat.group_by(["persona_name", "stage"])
        .aggregate(csat_n=csat.count(), csat_k=count_if(csat.score >= 4))
        .to_pandas()
    )
    b = (
        nps.group_by(["persona_name", "stage"])
        .aggregate(
            nps_n=nps.count(),
            prom=count_if(nps.score >= 9),
            det=count_if(nps.score <= 6),
        )
        .to_pandas()
    )
    out = a.merge(b, on=["persona_name", "stage"], how="outer")
    for c in ("csat_n", "csat_k", "nps_n", "prom", "det"):
        out[c] = out[c].fillna(0).astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        out["csat_top2"] = np.where(out.csat_n > 0, out.csat_k / out.csat_n, np.nan)
    lo, hi = stats.wilson_ci(out.csat_k.to_numpy(), out.csat_n.to_numpy())
    out["csat_ci_low"], out["csat_ci_high"] = lo, hi
    v, lo, hi = stats.nps_ci(out.prom.to_numpy(), out.det.to_numpy(), out.nps_n.to_numpy())
    out["nps"], out["nps_ci_low"], out["nps_ci_high"] = v, lo, hi
    out["persona_name"] = out["persona_name"].astype(str)
    out["stage"] = out["stage"].astype(str)
    return out[cols]


def channel_shares(data: CXData, assignments: Assignments, *, as_of: AsOf = None) -> pd.DataFrame:
    """Compute the share of each persona's stage activity per channel.

    Activity per stage: awareness = events other than consideration/advocacy events,
    consideration = consideration events, purchase = first orders, retention = repeat
    orders, advocacy = referral/review events.

    Parameters
    ----------
    data
        The loaded data (events and/or orders with a ``channel`` column).
    assignments
        Persona per customer (see :func:`journey_map`).
    as_of
        The last instant used (:func:`cxkit.data.resolve_as_of`).

    Returns
    -------
    pandas.DataFrame
        ``persona_name``, ``stage``, ``channel``, ``n`` and ``share`` (within persona ×
        stage); empty without channels.
    """
    end = resolve_as_of(data, as_of)
    pers = _engine_personas(assignments)
    pieces = []
    if data.has("events", "channel"):
        ev = data.table("events").filter(lambda t: (t.ts <= end) & t.channel.notnull())
        stage = ibis.cases(
            (ev.event.isin(_stage_events("consideration")), "consideration"),
            (ev.event.isin(_stage_events("advocacy")), "advocacy"),
            else_="awareness",
        )
        pieces.append(ev.select("customer_id", "channel", stage=stage))
    if data.has("orders", "channel"):
        od = data.table("orders").filter(lambda t: (t.ts <= end) & t.channel.notnull())
        w = ibis.window(group_by="customer_id", order_by=["ts", "order_id"])
        od = od.mutate(_rn=ibis.row_number().over(w))
        stage = ibis.cases((od._rn == 0, "purchase"), else_="retention")
        pieces.append(od.select("customer_id", "channel", stage=stage))
    if not pieces:
        return pd.DataFrame(columns=["persona_name", "stage", "channel", "n", "share"])
    act = pieces[0]
    for p in pieces[1:]:
        act = act.union(p, distinct=False)
    j = act.join(pers, "customer_id")
    out = j.group_by(["persona_name", "stage", "channel"]).aggregate(n=j.count()).to_pandas()
    out["n"] = out["n"].astype("int64")
    out["share"] = out["n"] / out.groupby(["persona_name", "stage"])["n"].transform("sum")
    for c in ("persona_name", "stage", "channel"):
        out[c] = out[c].astype(str)
    return out.sort_values(["persona_name", "stage", "channel"]).reset_index(drop=True)


_CSAT_BY_COLUMNS = [
    "persona_name",
    "dimension",
    "value",
    "n",
    "csat_top2",
    "ci_low",
    "ci_high",
    "csat_mean",
    "rest_n",
    "rest_top2",
    "diff",
    "diff_ci_low",
    "diff_ci_high",
    "p_value",
    "p_adj",
    "small_n",
]


def csat_by(
    data: CXData, assignments: Assignments, *, by: str = "channel", as_of: AsOf = None
) -> pd.DataFrame:
    """Compute CSAT top-2-box (4–5 of 5) per persona and ``by`` (channel or touchpoint).

    Each row also tests the group against the persona's other groups (two-proportion
    z-test); ``p_adj`` is Holm-adjusted within persona.

    Parameters
    ----------
    data
        The loaded data, with ``responses`` holding ``survey``, ``score`` and ``by``.
    assignments
        Persona per customer (see :func:`journey_map`).
    by
        The responses column to break CSAT down by.
    as_of
        The last instant used (:func:`cxkit.data.resolve_as_of`).

    Returns
    -------
    pandas.DataFrame
        ``persona_name``, ``dimension``, ``value``, ``n``, ``csat_top2``, ``ci_low``,
        ``ci_high``, ``csat_mean``, ``rest_n``, ``rest_top2``, ``diff``, ``diff_ci_low``,
        ``diff_ci_high``, ``p_value``, ``p_adj``, ``small_n``.

    Raises
    ------
    NotAvailableError
        When the responses lack ``survey``, ``score`` or ``by``.
    """
    data.require("responses", "survey", "score", by, analysis=f"CSAT by {by}")
    end = resolve_as_of(data, as_of)
    pers = _engine_personas(assignments)
    rs = data.table("responses").filter(
        lambda t: (t.ts <= end) & (t.survey == "csat") & t.score.notnull() & t[by].notnull()
    )
    j = rs.join(pers, "customer_id")
    g = (
        j.group_by(["persona_name", by])
        .aggregate(
            n=j.count(),
            k=count_if(j.score >= 4),
            score_sum=j.score.cast("float64").sum(),
        )
        .to_pandas()
    )
    g = g.rename(columns={by: "value"})
    g["dimension"] = by
    for c in ("n", "k", "score_sum"):
        g[c] = g[c].astype(float)
    tot = g.groupby("persona_name")[["n", "k"]].transform("sum")
    g["rest_n"] = tot["n"] - g["n"]
    g["rest_k"] = tot["k"] - g["k"]
    g["csat_top2"] = g["k"] / g["n"]
    g["ci_low"], g["ci_high"] = stats.wilson_ci(g["k"].to_numpy(), g["n"].to_numpy())
    g["csat_mean"] = g["score_sum"] / g["n"]
    with np.errstate(invalid="ignore", divide="ignore"):
        g["rest_top2"] = np.where(g.rest_n > 0, g.rest_k / g.rest_n, np.nan)
    t = stats.two_proportion_test(g["k"], g["n"], g["rest_k"], g["rest_n"])
    g["diff"], g["diff_ci_low"], g["diff_ci_high"] = t["diff"], t["ci_low"], t["ci_high"]
    g["p_value"] = t["p_value"]
    g["p_adj"] = g.groupby("persona_name")["p_value"].transform(lambda p: stats.holm(p.to_numpy()))
    g["small_n"] = stats.is_small(g["n"])
    g["n"] = g["n"].astype("int64")
    g["rest_n"] = g["rest_n"].astype("int64")
    g["persona_name"] = g["persona_name"].astype(str)
    g["value"] = g["value"].astype(str)
    return g[_CSAT_BY_COLUMNS].sort_values(["persona_name", "value"]).reset_index(drop=True)


def pain_points(
    data: CXData,
    assignments: Assignments,
    *,
    by: Sequence[str] = ("channel", "touchpoint"),
    as_of: AsOf = None,
    min_n: int = stats.MIN_N,
    alpha: float = 0.05,
) -> pd.DataFrame:
    """Find the worst channel or touchpoint per persona, by CSAT top-2-box, with its test.

    For each persona, every channel (and touchpoint) with at least ``min_n`` CSAT
    responses is compared with the persona's other channels (touchpoints); the pain
    point is the one furthest below the rest among those significant after Holm
    adjustment (``p_adj < alpha``), else the lowest one, marked not significant.

    Parameters
    ----------
    data
        The loaded data, with CSAT responses and a ``channel`` or ``touchpoint`` column.
    assignments
        Persona per customer (see :func:`journey_map`).
    by
        The responses columns to look at.
    as_of
        The last instant used (:func:`cxkit.data.resolve_as_of`).
    min_n
        Groups (and their persona's rest) with fewer CSAT responses are not considered.
    alpha
        Significance level of the Holm-adjusted test.

    Returns
    -------
    pandas.DataFrame
        One row per persona with CSAT responses: the :func:`csat_by` columns of the worst
        group, plus ``significant`` and a plain ``sentence``.

    Raises
    ------
    NotAvailableError
        When the responses have none of the ``by`` columns.
    """
    dims = [d for d in by if data.has("responses", "survey", "score", d)]
    if not dims:
        raise NotAvailableError(
            "table 'responses' with columns 'survey', 'score' and 'channel' or 'touchpoint'",
            analysis="Pain points",
        )
    end = resolve_as_of(data, as_of)
    tab = pd.concat([csat_by(data, assignments, by=d, as_of=end) for d in dims], ignore_index=True)
    rows = []
    for _persona, g in tab.groupby("persona_name", sort=True):
        g = g[(g.n >= min_n) & (g.rest_n >= min_n)]
        if g.empty:
            continue
        sig = g[(g.p_adj < alpha) & (g["diff"] < 0)]
        pick = (sig if len(sig) else g).sort_values(["diff", "value"]).iloc[0]
        row = pick.to_dict()
        row["significant"] = bool(len(sig) > 0)
        row["sentence"] = _pain_sentence(row)
        rows.append(row)
    cols = [*tab.columns, "significant", "sentence"]
    out = pd.DataFrame(rows, columns=cols).reset_index(drop=True)
    out["significant"] = out["significant"].astype(bool)  # also when no persona has a pick
    return out


def _pain_sentence(r: Mapping[str, Any]) -> str:
    what = f"{r['dimension']} '{r['value']}'"
    base = (
        f"{r['persona_name']}: CSAT on {what} is {100 * r['csat_top2']:.0f}% satisfied "
        f"(95% CI {100 * r['ci_low']:.0f}–{100 * r['ci_high']:.0f}%, n = {int(r['n']):,}) vs "
        f"{100 * r['rest_top2']:.0f}% on their other {r['dimension']}s "
        f"(n = {int(r['rest_n']):,})"
    )
    if r.get("significant"):
        return base + f"; the gap is significant ({stats.p_text(r['p_adj'])}, Holm-adjusted)."
    return base + "; no channel differs significantly."


def comment_themes(
    data: CXData,
    assignments: Assignments,
    *,
    themes: voc.Themes | None = None,
    as_of: AsOf = None,
    negative_only: bool = False,
) -> pd.DataFrame:
    """Count comment themes per persona (themes from :func:`cxkit.voc.themes`).

    Parameters
    ----------
    data
        The loaded data, with ``responses`` holding ``comment``.
    assignments
        Persona per customer (see :func:`journey_map`).
    themes
        A fitted :class:`cxkit.voc.Themes`; fitted on all comments up to ``as_of`` when
        not given.
    as_of
        The last instant used when ``themes`` is not given
        (:func:`cxkit.data.resolve_as_of`).
    negative_only
        Count only comments on low scores (NPS 0–6, CSAT 1–2, CES 1–3).

    Returns
    -------
    pandas.DataFrame
        ``persona_name``, ``theme``, ``label``, ``n_comments``, ``n_total`` (the
        persona's comments considered), ``share`` with Wilson ``ci_low``/``ci_high``,
        ``small_n``; sorted by persona and descending count.

    Raises
    ------
    NotAvailableError
        When the responses have no ``comment`` column.
    """
    data.require("responses", "comment", analysis="Comment themes")
    th = themes if themes is not None else voc.themes(data, as_of=resolve_as_of(data, as_of))
    com = th.comments
    if negative_only:
        score = pd.to_numeric(com["score"], errors="coerce")
        survey = com["survey"].astype(str)
        low = (
            ((survey == "nps") & (score <= 6))
            | ((survey == "csat") & (score <= 2))
            | ((survey == "ces") & (score <= 3))
        )
        com = com[low]
    asg = _assignments_table(assignments)
    j = com[["customer_id", "theme"]].astype({"customer_id": str}).merge(asg, on="customer_id")
    total = j.groupby("persona_name").size().rename("n_total")
    j = j[j["theme"] >= 0]
    counts = j.groupby(["persona_name", "theme"]).size().rename("n_comments").reset_index()
    out = counts.merge(total.reset_index(), on="persona_name")
    out["label"] = out["theme"].map(th.topics.set_index("theme")["label"]).astype(str)
    out["share"] = out["n_comments"] / out["n_total"]
    out["ci_low"], out["ci_high"] = stats.wilson_ci(out["n_comments"], out["n_total"])
    out["small_n"] = stats.is_small(out["n_total"])
    out["persona_name"] = out["persona_name"].astype(str)
    cols = [
        "persona_name",
        "theme",
        "label",
        "n_comments",
        "n_total",
        "share",
        "ci_low",
        "ci_high",
        "small_n",
    ]
    return (
        out[cols]
        .sort_values(["persona_name", "n_comments", "theme"], ascending=[True, False, True])
        .reset_index(drop=True)
    )


# ---- the journey and the pain points as text tables --------------------------------------


def _pct(x: float) -> str:
    return "–" if pd.isna(x) else f"{100 * x:.0f}%"


def _with_ci(v: float, lo: float, hi: float, n: int, *, points: bool = False) -> str:
    """Return ``v (lo to hi), n = …`` with "(small n)" under 30, or "–" without data."""
    if n == 0 or pd.isna(v):
        return "–"
    small = " (small n)" if n < stats.MIN_N else ""
    if points:  # signed: "−23 (−30 to −14)"
        return f"{v:+.0f} ({lo:+.0f} to {hi:+.0f}), n = {n:,}{small}"
    return f"{_pct(v)} ({_pct(lo)}–{_pct(hi)}), n = {n:,}{small}"


def journey_table(journey: pd.DataFrame) -> pd.DataFrame:
    """Return the journey map as a compact table of text cells (for notebooks and reports).

    Parameters
    ----------
    journey
        The frame from :func:`journey_map`.

    Returns
    -------
    pandas.DataFrame
        ``persona``, ``stage``, ``reached`` (n, share and Wilson interval),
        ``drop-off`` (share of the previous stage's n, and that n), ``top channel`` (with its share of the stage's activity),
        ``CSAT top-2-box`` and ``NPS`` (each with its interval and n; "(small n)" under
        30).
    """
    rows = []
    for r in journey.itertuples(index=False):
        rows.append(
            {
                "persona": r.persona_name,
                "stage": r.stage,
                "reached": f"{r.n_reached:,} = {_pct(r.reach)} "
                f"({_pct(r.reach_ci_low)}–{_pct(r.reach_ci_high)})",
                "drop-off": "–"
                if pd.isna(r.drop_off)
                else f"{_pct(r.drop_off)} of {int(r.n_previous):,}",
                "top channel": "–"
                if pd.isna(r.top_channel)
                else f"{r.top_channel} {_pct(r.top_channel_share)}",
                "CSAT top-2-box": _with_ci(r.csat_top2, r.csat_ci_low, r.csat_ci_high, r.csat_n),
                "NPS": _with_ci(r.nps, r.nps_ci_low, r.nps_ci_high, r.nps_n, points=True),
            }
        )
    return pd.DataFrame(rows)


def pain_table(pains: pd.DataFrame) -> pd.DataFrame:
    """Return the pain points as a compact table of text cells (one row per persona).

    Parameters
    ----------
    pains
        The frame from :func:`pain_points`.

    Returns
    -------
    pandas.DataFrame
        ``persona``, ``worst``, ``CSAT top-2-box``, ``mean CSAT (1–5)``, ``rest of the
        persona``, ``gap, points``, ``test (Holm)`` and ``pain point`` (yes/no).
    """
    rows = []
    for r in pains.itertuples(index=False):
        rows.append(
            {
                "persona": r.persona_name,
                "worst": f"{r.dimension} '{r.value}'",
                "CSAT top-2-box": f"{_pct(r.csat_top2)} ({_pct(r.ci_low)}–{_pct(r.ci_high)}), "
                f"n = {r.n:,}",
                "mean CSAT (1–5)": f"{r.csat_mean:.2f}",
                "rest of the persona": f"{_pct(r.rest_top2)}, n = {r.rest_n:,}",
                "gap, points": f"{100 * r.diff:+.0f} ({100 * r.diff_ci_low:+.0f} to "
                f"{100 * r.diff_ci_high:+.0f})",
                "test (Holm)": stats.p_text(r.p_adj),
                "pain point": "yes" if r.significant else "no",
            }
        )
    return pd.DataFrame(rows)
