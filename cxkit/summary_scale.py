"""The customer scorecard in scale mode: an ibis expression, labelled in the engine.

:func:`scorecard_expr` builds the scorecard of :func:`cxkit.summary.scorecard` — the
same columns with the same meaning, one row per customer — as an ibis expression on the
data's engine, from engine inputs: the churn scores, the CLV values and the persona
labels that the scale-mode analyses write as tables, and the data's own tables (stages
from :func:`cxkit.lifecycle.stage_times_expr`, last activity, spend, latest NPS,
referrals and reviews). The recommended focus is assigned in the engine by the same
:data:`cxkit.summary.FOCUS_RULES` that label the memory scorecard (each condition's
``engine`` test sits beside its pandas ``test``), with the thresholds (the CLV median)
computed in the engine.

What the summary shows from it never collects per-customer rows: the focus table is an
engine group-by (:func:`focus_table_scale`), the customers with the most value at risk
an ``order_by`` + ``limit`` (:func:`top_at_risk_scale`), the KPI tiles engine sums
(:func:`at_risk_totals`), and :func:`write_scores_scale` streams the scorecard in
batches of ``batch_rows`` to the same ``scores.parquet`` and ``scores.csv`` as memory
mode. Only standard ibis operations are used (joins, group-bys, windows, ``median``):
DuckDB, PostgreSQL and Spark.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import ibis
import ibis.expr.types as ir
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from cxkit import lifecycle
from cxkit import scale as _scale
from cxkit.data import CXData, resolve_as_of
from cxkit.errors import DataError, NotAvailableError, UsageError
from cxkit.files import atomic_open
from cxkit.privacy import published_ids
from cxkit.result import AsOf
from cxkit.scale import ScaleSettings

__all__ = [
    "ScaleScorecard",
    "as_engine_table",
    "at_risk_totals",
    "focus_table_scale",
    "scorecard_columns",
    "scorecard_expr",
    "top_at_risk_scale",
    "write_scores_scale",
]

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


def _spend(data: CXData) -> ir.Table | None:
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
    from cxkit.summary import REFERRAL_EVENTS, REVIEW_EVENTS

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
    data
        Loaded data.
    as_of
        The date the scorecard stands at.
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
    from cxkit.summary import FOCUS_CHURN_MIN, FOCUS_RULES, FocusThresholds, _customer_ids

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
    spend = _spend(data)
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
    from cxkit.summary import FOCUS_RULES

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
    total = row["_n"]
    rows = []
    for i, rule in enumerate(FOCUS_RULES):
        n = row[f"l{i}"]
        note = ""
        if n == 0:
            note = _why_none(rule, i, row, card, total)
            if not note and rule.conditions:
                last = len(rule.conditions) - 1
                took = ", ".join(
                    r.focus for j, r in enumerate(FOCUS_RULES[:i]) if row.get(f"o{i}_{j}", 0)
                )
                k = row[f"p{i}_{last}"]
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


def _why_none(rule: object, i: int, row: dict[str, int], card: ScaleScorecard, total: int) -> str:
    """:meth:`cxkit.summary.FocusRule.why_none` from the engine's prefix counts."""
    th = card.thresholds
    have = total
    done: list[str] = []
    for k, cond in enumerate(rule.conditions):  # type: ignore[attr-defined]
        if not card.available[cond.column_in(th)]:
            return f"not available: this needs {cond.needs}"
        now = row[f"p{i}_{k}"]
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
    from cxkit.summary import csv_bytes

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
