"""The executive summary and the customer scorecard.

:func:`executive_summary` runs every domain the data supports — with the same functions
and defaults as the domain reports, so a number never differs between two reports — and
returns KPI tiles, the top findings per domain, the small lifecycle funnel, the customer
scorecard and the parts that are not available.

:func:`scorecard` is one row per customer: persona, current stage, last activity,
p_alive, churn probability, expected purchases and CLV over the horizon, CLV at risk,
latest NPS group, and a recommended focus from transparent rules
(:func:`recommend_focus`).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import ibis
import numpy as np
import pandas as pd

from cxkit.cache import run_cached
from cxkit.data import CXData, resolve_as_of
from cxkit.errors import NotAvailableError
from cxkit.files import atomic_open
from cxkit.findings import Finding

__all__ = [
    "FOCUS_RULES",
    "ExecutiveSummary",
    "executive_summary",
    "hash_ids",
    "kpi_tiles",
    "recommend_focus",
    "scorecard",
    "write_scores",
]

#: The recommended-focus rules, in the order they are applied (first match wins).
FOCUS_RULES: list[tuple[str, str]] = [
    ("service recovery", "latest NPS answer was a detractor (0–6)"),
    ("win back", "high churn risk (churn probability ≥ 0.5) and CLV at or above the median"),
    (
        "ask for advocacy",
        "latest NPS answer was a promoter (9–10), low churn risk, no referral or review yet",
    ),
    ("nurture", "everyone else"),
]

ACTIVE_DAYS = 90


# --------------------------------------------------------------------------------------
# domain runs (each isolated: a missing table becomes a note, not a failure)
# --------------------------------------------------------------------------------------


@dataclass
class DomainRun:
    """The result of one domain in the summary."""

    name: str
    findings: list[Finding] = field(default_factory=list)
    result: Any = None
    missing: str | None = None
    seconds: float = 0.0


def _run(name: str, fn: Callable[[], tuple[Any, list[Finding]]]) -> DomainRun:
    start = time.perf_counter()
    try:
        result, found = fn()
        return DomainRun(name, found, result, None, time.perf_counter() - start)
    except NotAvailableError as err:
        return DomainRun(name, [], None, str(err), time.perf_counter() - start)


@run_cached("clv.analysis")
def clv_analysis(
    data: CXData,
    *,
    as_of: Any = None,
    horizon_weeks: int = 52,
    annual_discount_rate: float = 0.10,
) -> tuple[pd.DataFrame, Any, Any, pd.DataFrame]:
    """RFM summary, fitted BG/NBD and Gamma-Gamma, and CLV per customer at ``as_of``.

    Returns ``(summary, bg, gg, clv_frame)``; ``gg`` is None when nobody repeats with a
    positive spend. Raises NotAvailableError without an orders table.
    """
    from cxkit import clv

    data.require("orders", "customer_id", "ts", "amount", analysis="Customer lifetime value")
    end = resolve_as_of(data, as_of)
    summary = clv.rfm_summary(data.upto(end), observation_end=end, time_unit="W")
    bg = clv.BetaGeo().fit(summary)
    repeaters = summary[(summary["frequency"] > 0) & (summary["monetary_value"] > 0)]
    gg = clv.GammaGamma().fit(repeaters) if len(repeaters) >= 10 else None
    frame = clv.clv(
        summary, bg, gg, horizon=horizon_weeks, unit="W", annual_discount_rate=annual_discount_rate
    )
    return summary, bg, gg, frame


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
    if not data.has("events", "event"):
        return pd.DataFrame(columns=["customer_id", "has_referred_or_reviewed"])
    e = data.table("events")
    e = e.filter(e.event.lower().isin(["referral", "review"]))
    out = e.select("customer_id").distinct().to_pandas()
    out["customer_id"] = out["customer_id"].astype("string")
    out["has_referred_or_reviewed"] = True
    return out


def nps_group(score: pd.Series) -> pd.Series:
    """'promoter' (9–10), 'passive' (7–8), 'detractor' (0–6) or missing."""
    s = pd.to_numeric(score, errors="coerce")
    out = pd.Series(pd.NA, index=score.index, dtype="string")
    out[s >= 9] = "promoter"
    out[(s >= 7) & (s <= 8)] = "passive"
    out[s <= 6] = "detractor"
    return out


def recommend_focus(frame: pd.DataFrame) -> pd.Series:
    """Apply :data:`FOCUS_RULES` in order to a scorecard frame (first match wins).

    Uses ``nps_group``, ``risk_band``, ``spend_to_date`` and ``has_referred_or_reviewed``
    where present; a missing input never triggers its rule.

    Examples
    --------
    >>> card = pd.DataFrame({"nps_group": ["detractor", None, "promoter", None],
    ...                      "risk_band": ["high", "high", "low", "low"],
    ...                      "spend_to_date": [500.0, 900.0, 50.0, 10.0],
    ...                      "has_referred_or_reviewed": [False, False, False, False]})
    >>> recommend_focus(card).tolist()
    ['service recovery', 'win back', 'ask for advocacy', 'nurture']
    """
    n = len(frame)
    missing = pd.Series(pd.NA, index=frame.index, dtype="string")
    group = frame["nps_group"].astype("string") if "nps_group" in frame else missing
    band = frame["risk_band"].astype("string") if "risk_band" in frame else missing
    spend = pd.to_numeric(frame.get("spend_to_date", pd.Series(np.nan, index=frame.index)))
    referred = frame.get("has_referred_or_reviewed", pd.Series(False, index=frame.index))
    referred = referred.astype("boolean").fillna(False).astype(bool)
    median_spend = float(np.nanmedian(spend)) if spend.notna().any() else np.inf

    detractor = (group == "detractor").fillna(False).to_numpy(dtype=bool)
    win_back = ((band == "high").fillna(False) & (spend >= median_spend)).to_numpy(dtype=bool)
    advocacy = (
        (group == "promoter").fillna(False) & (band == "low").fillna(False) & ~referred
    ).to_numpy(dtype=bool)
    focus = np.full(n, "nurture", dtype=object)
    focus[advocacy] = "ask for advocacy"
    focus[win_back] = "win back"
    focus[detractor] = "service recovery"
    return pd.Series(focus, index=frame.index, dtype="string", name="recommended_focus")


def hash_ids(ids: pd.Series, *, salt: str) -> pd.Series:
    """Replace customer IDs by salted SHA-256 hashes (16 hex characters) for sharing."""
    if not salt:
        raise ValueError("hash_ids needs a non-empty salt, got ''")
    return (
        ids.astype(str)
        .map(lambda v: hashlib.sha256(f"{salt}:{v}".encode()).hexdigest()[:16])
        .astype("string")
    )


def scorecard(
    data: CXData,
    *,
    as_of: Any = None,
    horizon_weeks: int = 52,
    random_state: int = 0,
    churn_scores: pd.DataFrame | None = None,
    clv_frame: pd.DataFrame | None = None,
    personas: pd.DataFrame | None = None,
    salt: str | None = None,
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
    salt
        When given, customer IDs are replaced by salted hashes (:func:`hash_ids`).

    Returns
    -------
    pandas.DataFrame
        ``customer_id, persona, current_stage, last_activity_at, spend_to_date, p_alive,
        churn_probability, risk_band, expected_purchases_52w, clv_52w, clv_at_risk_52w,
        latest_nps, nps_group, has_referred_or_reviewed, recommended_focus``; columns whose
        domain is unavailable are missing values. ``attrs["notes"]`` says what is absent.
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
            notes, lambda: clv_analysis(data, as_of=end, horizon_weeks=horizon_weeks)[3]
        )
    cols = ["p_alive", f"expected_purchases_{h}", f"clv_{h}"]
    if clv_frame is not None:
        card = card.merge(clv_frame[["customer_id", *cols]], on="customer_id", how="left")
    else:
        for c in cols:
            card[c] = np.nan

    if churn_scores is None:
        churn_scores = _try(notes, lambda: _churn(data, end, random_state).scores)
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
    card["has_referred_or_reviewed"] = (
        card["has_referred_or_reviewed"].astype("boolean").fillna(False)
    )
    card["recommended_focus"] = recommend_focus(card)
    card["risk_band"] = card["risk_band"].astype("string")
    if salt:
        card["customer_id"] = hash_ids(card["customer_id"], salt=salt)
    order = [
        "customer_id",
        "persona",
        "current_stage",
        "last_activity_at",
        "spend_to_date",
        "p_alive",
        "churn_probability",
        "risk_band",
        f"expected_purchases_{h}",
        f"clv_{h}",
        f"clv_at_risk_{h}",
        "latest_nps",
        "nps_group",
        "has_referred_or_reviewed",
        "recommended_focus",
    ]
    card = card[order]
    card.attrs["notes"] = notes
    card.attrs["as_of"] = str(end.date())
    card.attrs["horizon_weeks"] = horizon_weeks
    return card


def _try(notes: list[str], fn: Callable[[], Any]) -> Any:
    try:
        return fn()
    except NotAvailableError as err:
        notes.append(str(err))
        return None


def _personas(data: CXData, end: pd.Timestamp, random_state: int) -> pd.DataFrame:
    from cxkit import personas

    return personas.persona_labels(data, as_of=end, random_state=random_state).reset_index()


def _stages(data: CXData, end: pd.Timestamp) -> pd.DataFrame:
    from cxkit import lifecycle

    st = lifecycle.stages(data, as_of=end)
    out = st[["customer_id", "current_stage"]].copy()
    out["customer_id"] = out["customer_id"].astype("string")
    out["current_stage"] = out["current_stage"].astype("string")
    return out


def _churn(data: CXData, end: pd.Timestamp, random_state: int) -> Any:
    from cxkit import churn

    # as the churn report calls it: data cut at ``end``, as_of from the data
    return churn.analyze(data.upto(end), random_state=random_state)


# --------------------------------------------------------------------------------------
# KPI tiles and the whole summary
# --------------------------------------------------------------------------------------


def _active_customers(data: CXData, end: pd.Timestamp, days: int = ACTIVE_DAYS) -> dict[str, Any]:
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
    as_of: Any = None,
    domains: dict[str, DomainRun] | None = None,
    card: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """The KPI tiles: one row each with value, interval or n and a sentence.

    NPS, CSAT, CES, the churn rate and total CLV are the very :class:`Finding` records
    of their domain reports (same numbers, same sentences). Customers and active
    customers are counted here; CLV at risk is the scorecard's sum of CLV × churn
    probability.

    Columns: ``kpi, value, unit, ci_low, ci_high, n, sentence, small_n, available``.
    """
    end = resolve_as_of(data, as_of)
    data = data.upto(end)
    domains = domains or {}
    rows: list[dict[str, Any]] = []

    def add(
        kpi: str,
        value: Any = np.nan,
        unit: str = "",
        sentence: str = "",
        *,
        ci_low: Any = None,
        ci_high: Any = None,
        n: Any = None,
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
            why = run.missing if run is not None and run.missing else f"no {metric} finding"
            add(kpi, sentence=f"{kpi} is not available: {why}.", available=False)

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
    if card is not None and card["clv_at_risk_52w"].notna().any():
        total = float(card["clv_52w"].sum())
        at_risk = float(card["clv_at_risk_52w"].sum())
        n_val = int(card["clv_at_risk_52w"].notna().sum())
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
    return pd.DataFrame(rows)


@dataclass
class ExecutiveSummary:
    """Everything notebook 90 shows."""

    as_of: pd.Timestamp
    kpis: pd.DataFrame
    domains: dict[str, DomainRun]
    funnel: pd.DataFrame | None
    scorecard: pd.DataFrame
    missing: list[str]

    def top_findings(self, per_domain: int = 3) -> list[Finding]:
        """The most important findings of each domain, small groups never headlined."""
        out: list[Finding] = []
        for run in self.domains.values():
            ranked = sorted((f for f in run.findings if not f.small_n), key=lambda f: -f.importance)
            out.extend(ranked[:per_domain])
        return out

    def focus_counts(self) -> pd.DataFrame:
        """Customers per recommended focus, with share."""
        c = self.scorecard["recommended_focus"].value_counts().rename_axis("recommended_focus")
        out = c.reset_index(name="customers")
        out["share"] = out["customers"] / max(len(self.scorecard), 1)
        return out


def executive_summary(
    data: CXData,
    *,
    as_of: Any = None,
    horizon_weeks: int = 52,
    random_state: int = 0,
    salt: str | None = None,
) -> ExecutiveSummary:
    """Run every available domain once and assemble the executive summary."""
    from cxkit import churn, clv, lifecycle, personas, voc

    end = resolve_as_of(data, as_of)
    cut = data.upto(end)
    domains: dict[str, DomainRun] = {}

    def _lifecycle_run() -> tuple[Any, list[Finding]]:
        # the arguments the lifecycle report passes, so a report run computes this once
        stage_map, _missing = lifecycle.available_stages(cut)
        by = "acquisition_channel" if cut.has("customers", "acquisition_channel") else None
        return None, lifecycle.findings(cut, stage_map=stage_map, by=by)

    domains["lifecycle"] = _run("lifecycle", _lifecycle_run)

    def _clv() -> tuple[Any, list[Finding]]:
        summary, bg, _gg, frame = clv_analysis(cut, as_of=end, horizon_weeks=horizon_weeks)
        return frame, clv.findings(summary, bg, clv_frame=frame)

    domains["clv"] = _run("clv", _clv)

    def _churn_run() -> tuple[Any, list[Finding]]:
        res = churn.analyze(cut, random_state=random_state)  # as the churn report does
        return res, churn.findings(result=res)

    domains["churn"] = _run("churn", _churn_run)

    def _personas_run() -> tuple[Any, list[Finding]]:
        report = personas.analyze(cut, as_of=end, random_state=random_state)
        return report, personas.findings(report)

    domains["personas"] = _run("personas", _personas_run)

    persona_frame = None
    if domains["personas"].result is not None:
        labels = personas.persona_labels(cut, report=domains["personas"].result)
        persona_frame = labels.reset_index()

    def _voc_run() -> tuple[Any, list[Finding]]:
        cut.require("responses", "survey", "score", analysis="Voice of the customer")
        # the VoC report's own call: personas="auto", its defaults for the rest
        labels, _note = voc.load_personas(cut, "auto")
        return None, voc.findings(cut, personas=labels, random_state=random_state)

    domains["voc"] = _run("voc", _voc_run)

    churn_res = domains["churn"].result
    card = scorecard(
        cut,
        as_of=end,
        horizon_weeks=horizon_weeks,
        random_state=random_state,
        churn_scores=None if churn_res is None else churn_res.scores,
        clv_frame=domains["clv"].result,
        personas=persona_frame,
        salt=salt,
    )
    try:
        funnel = lifecycle.stage_funnel(cut, as_of=end)
    except NotAvailableError:
        funnel = None
    kpis = kpi_tiles(cut, as_of=end, domains=domains, card=card)
    missing = [f"{name}: {run.missing}" for name, run in domains.items() if run.missing]
    return ExecutiveSummary(end, kpis, domains, funnel, card, missing)


# --------------------------------------------------------------------------------------
# export
# --------------------------------------------------------------------------------------


def write_scores(card: pd.DataFrame, out_dir: str | Path) -> tuple[Path, Path]:
    """Write the scorecard atomically to ``scores.parquet`` and ``scores.csv`` in ``out_dir``.

    Each file is written to a temporary name in the same folder, flushed to disk and
    renamed, so a reader never sees a half-written file.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, writer in (
        ("scores.parquet", lambda p: card.to_parquet(p, index=False)),
        ("scores.csv", lambda p: card.to_csv(p, index=False)),
    ):
        with atomic_open(out / name) as fh:
            writer(fh)
        paths.append(out / name)
    return paths[0], paths[1]


# --------------------------------------------------------------------------------------
# display
# --------------------------------------------------------------------------------------


def show_section(title: str, link: str, run: DomainRun, *, top: int = 3) -> None:
    """A domain's heading (linking to its detailed report) and its top findings."""
    import html

    from IPython.display import HTML, display

    from cxkit.findings import not_available, show_findings

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


def top_at_risk(card: pd.DataFrame, *, n: int = 10) -> pd.DataFrame:
    """The ``n`` customers with the most CLV at risk, with the columns a reader needs."""
    if "clv_at_risk_52w" not in card or not card["clv_at_risk_52w"].notna().any():
        return card.iloc[0:0]
    cols = [
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
    return card.nlargest(n, "clv_at_risk_52w")[cols].reset_index(drop=True)
