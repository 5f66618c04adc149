"""Every figure the lifecycle report states is stated once: all its statements agree.

The page of the session's report run (``report_run``, the 2,000-customer demo) is read
with :mod:`tests.stated_figures`: the headline, findings, takeaways, chart titles and
tables become claims keyed by what they measure — a stage's reach, a step of the ladder
("retention → advocacy" with the n it rests on), a share by a stage's own rule, the
funnel's completion, a group's rate — and every two statements of one key must agree
(within their rounding), with the same n, and with :func:`cxkit.lifecycle.analyze` run
on the same data with the notebook's own parameters.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

import cxkit
from cxkit import lifecycle
from cxkit.lifecycle import LifecycleResult, describe_rule
from tests.stated_figures import (
    NUM,
    PCT,
    Claim,
    Page,
    Rule,
    Table,
    against,
    cell_count,
    cell_number,
    cell_share,
    count,
    disagreements,
    label,
    notebook_defaults,
    number,
    read_page,
    repeated,
    rule,
    sentence_claims,
    share,
    unread,
)

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOK = ROOT / "notebooks" / "10_lifecycle_funnel.ipynb"
ARROW = r"(?:→|->)"
STAGE = r"[A-Za-z_]\w*"

# ---- sentences --------------------------------------------------------------------------


@rule(
    rf"(?P<a>{STAGE}) {ARROW} (?P<b>{STAGE}): only (?P<r>{PCT})(?: of (?P<n>{NUM}) customers)? "
    rf"move on(?: \(95% CI [^,)]*(?:, n = (?P<n2>{NUM}))?\))?"
)
def _step_only(m: re.Match[str], ctx: Mapping[str, Any]) -> list[tuple]:
    n = m["n"] or m["n2"]
    out = [(("step", m["a"], m["b"]), *share(m["r"]), None if n is None else count(n))]
    if n is not None:
        out.append((("count", m["a"]), count(n), 0.0, None))
    return out


@rule(
    rf"(?:between (?P<a1>{STAGE}) and (?P<b1>{STAGE})|(?P<a>{STAGE}) {ARROW} (?P<b>{STAGE})): "
    rf"(?P<l>{PCT}) of (?P<n>{NUM}) customers do not move on(?: \((?P<r>{PCT}) do\))?"
)
def _step_loss(m: re.Match[str], ctx: Mapping[str, Any]) -> list[tuple]:
    a, b, n = m["a"] or m["a1"], m["b"] or m["b1"], count(m["n"])
    lost, tol = share(m["l"])
    out = [(("step", a, b), 1 - lost, tol, n), (("count", a), n, 0.0, None)]
    if m["r"]:
        out.append((("step", a, b), *share(m["r"]), n))
    return out


@rule(rf"(?P<r>{PCT}) of (?:(?P<n>{NUM}) )?customers reach(?:ed)? (?P<s>{STAGE})")
def _reach(m: re.Match[str], ctx: Mapping[str, Any]) -> list[tuple]:
    n = None if m["n"] is None else count(m["n"])
    return [(("reach", m["s"]), *share(m["r"]), n)]


@rule(
    rf"Half of those who reached (?P<s>{STAGE}) did so within (?P<d>[\d.]+) days of their first "
    rf"contact \(90% within [\d.]+ days; n = (?P<n>{NUM})\)"
)
def _time(m: re.Match[str], ctx: Mapping[str, Any]) -> list[tuple]:
    n = count(m["n"])
    return [
        (("median_days_from_start", m["s"]), *number(m["d"]), n),
        (("count", m["s"]), n, 0.0, None),
    ]


@rule(rf"(?P<r>{PCT}) of (?P<n>{NUM}) buyers ordered again on a later day")
def _repeat(m: re.Match[str], ctx: Mapping[str, Any]) -> list[tuple]:
    key = ("rule", ctx["rules"]["purchase"], ctx["rules"]["retention"])
    return [(key, *share(m["r"]), count(m["n"]))]


@rule(
    rf"(?P<s>{STAGE}) counts (?P<n>{NUM}) customers on the ladder above: (?P<o>{NUM}) with "
    rf"(?P<desc>.+?) and (?P<d>{NUM}) who reached a later stage"
)
def _rule_counts(m: re.Match[str], ctx: Mapping[str, Any]) -> list[tuple]:
    return [
        (("count", m["s"].lower()), count(m["n"]), 0.0, None),
        (("own_count", m["desc"]), count(m["o"]), 0.0, None),
        (("count", m["s"].lower()), count(m["o"]) + count(m["d"]), 0.0, None),
    ]


@rule(rf"(?P<k>{NUM}) of (?P<n>{NUM}) customers complete the funnel")
def _funnel(m: re.Match[str], ctx: Mapping[str, Any]) -> list[tuple]:
    k, n = count(m["k"]), count(m["n"])
    return [(("funnel",), k / n, 0.0, n)]


@rule(rf"(?P<r>{PCT}) of those who start complete")
def _funnel_title(m: re.Match[str], ctx: Mapping[str, Any]) -> list[tuple]:
    return [(("funnel",), *share(m["r"]), None)]


@rule(
    rf"Customers from (?P<by>.+?) '(?P<g>.+?)' reach {STAGE} (?:higher|lower) than the rest: "
    rf"(?P<a>{PCT}) vs (?P<b>{PCT}) \(difference (?P<d>[+-][\d.]+) points, Holm p [=<] [^,]+, "
    rf"n = (?P<n>{NUM})\)"
)
def _group(m: re.Match[str], ctx: Mapping[str, Any]) -> list[tuple]:
    by, g, n = m["by"], m["g"], count(m["n"])
    d, tol = number(m["d"])
    return [
        (("group", by, g), *share(m["a"]), n),
        (("group_rest", by, g), *share(m["b"]), None),
        (("group_diff", by, g), d / 100, tol / 100, None),
    ]


@rule(r"(?:^|: |; )(?P<g>[^;:]+?) (?:above|below) the rest \((?P<d>[+-][\d.]+) points\)")
def _group_takeaway(m: re.Match[str], ctx: Mapping[str, Any]) -> list[tuple]:
    d, tol = number(m["d"])
    return [(("group_diff", ctx["by"], m["g"]), d / 100, tol / 100, None)]


@rule(rf"(?:highest|lowest) for (?P<g>.+?) \((?P<r>{PCT}), n = (?P<n>{NUM})\)")
def _persona_best(m: re.Match[str], ctx: Mapping[str, Any]) -> list[tuple]:
    return [(("group", "persona", m["g"]), *share(m["r"]), count(m["n"]))]


@rule(rf"(?:highest|lowest) on (?P<g>.+?) \((?P<r>{PCT}), n = (?P<n>{NUM})\)")
def _entry_best(m: re.Match[str], ctx: Mapping[str, Any]) -> list[tuple]:
    return [(("group", "entry channel", m["g"]), *share(m["r"]), count(m["n"]))]


@rule(rf"Completion moved from (?P<a>{PCT}) to (?P<b>{PCT}) \((?P<d>[+-][\d.]+) points")
def _period(m: re.Match[str], ctx: Mapping[str, Any]) -> list[tuple]:
    d, tol = number(m["d"])
    return [
        (("period", "previous"), *share(m["a"]), None),
        (("period", "current"), *share(m["b"]), None),
        (("period_diff",), d / 100, tol / 100, None),
    ]


@rule(
    rf"(?P<r>{PCT}) of customers are active again in the month after their first "
    rf"\(size-weighted over cohorts, n = (?P<n>{NUM})\)"
)
def _month1(m: re.Match[str], ctx: Mapping[str, Any]) -> list[tuple]:
    return [(("cohort", "M", 1), *share(m["r"]), count(m["n"]))]


@rule(rf"(?P<r>{PCT}) are active (?P<k>\d+) period\(s\) later")
def _cohorts(m: re.Match[str], ctx: Mapping[str, Any]) -> list[tuple]:
    return [(("cohort", ctx["period"], int(m["k"])), *share(m["r"]), None)]


@rule(rf"The most common path, (?P<p>.+?), is taken by (?P<r>{PCT}) of customers")
def _path(m: re.Match[str], ctx: Mapping[str, Any]) -> list[tuple]:
    return [(("path", m["p"]), *share(m["r"]), None)]


@rule(rf"(?P<r>{PCT}) of customers follow (?P<p>.+?)\.$")
def _stage_path(m: re.Match[str], ctx: Mapping[str, Any]) -> list[tuple]:
    return [(("stage_path", m["p"]), *share(m["r"]), None)]


RULES: list[Rule] = [
    _step_only,
    _step_loss,
    _reach,
    _time,
    _repeat,
    _rule_counts,
    _funnel,
    _funnel_title,
    _group,
    _group_takeaway,
    _persona_best,
    _entry_best,
    _period,
    _month1,
    _cohorts,
    _path,
    _stage_path,
]

# ---- tables ---------------------------------------------------------------------------


def _col(t: Table, name: str, labels: Mapping[str, str] | None = None) -> int | None:
    """Return the column showing result column ``name`` (its label, or the ladder's)."""
    for lab in (labels, LifecycleResult.ladder_labels, None):
        i = t.column(label(name, lab))
        if i is not None:
            return i
    return None


def _ladder_claims(t: Table, stages: list[str]) -> list[tuple]:
    """The ladder (and any table with one row per stage): counts, reach and steps."""
    name, n_col = _col(t, "step_name"), _col(t, "n_customers")
    start, prev = _col(t, "rate_from_start"), _col(t, "rate_from_previous")
    if None in (name, n_col) or [r[name] for r in t.rows] != stages:
        return []
    days = _col(t, "median_time_from_start_days")
    out: list[tuple] = []
    n_first = cell_count(t.rows[0][n_col])
    for i, row in enumerate(t.rows):
        s, n = row[name], cell_count(row[n_col])
        out.append((("count", s), n, 0.0, None))
        if start is not None and (v := cell_share(row[start])) is not None:
            out.append((("reach", s), *v, n_first))
        if i and prev is not None and (v := cell_share(row[prev])) is not None:
            n_prev = cell_count(t.rows[i - 1][n_col])
            out.append((("step", t.rows[i - 1][name], s), *v, n_prev))
        if i and days is not None and (v := cell_number(row[days])) is not None:
            out.append((("median_days_from_start", s), *v, n))
    return out


def _funnel_claims(t: Table, steps: list[str]) -> list[tuple]:
    name, n_col, start = _col(t, "step_name"), _col(t, "n_customers"), _col(t, "rate_from_start")
    if None in (name, n_col) or [r[name] for r in t.rows] != steps:
        return []
    n1, nk = cell_count(t.rows[0][n_col]), cell_count(t.rows[-1][n_col])
    out: list[tuple] = [(("funnel",), nk / n1, 0.0, n1)]
    if start is not None and (v := cell_share(t.rows[-1][start])) is not None:
        out.append((("funnel",), *v, n1))
    return out


def _pair_claims(t: Table, rules: Mapping[str, str]) -> list[tuple]:
    """Stage-to-stage rows: "A → B" by stage name, or by each stage's own rule in words."""
    labels = LifecycleResult.rule_labels
    out: list[tuple] = []
    for a_name, b_name, lab, kind in (
        ("from_stage", "to_stage", None, "step"),
        ("from_rule", "to_rule", labels, "rule"),
    ):
        a, b = _col(t, a_name, lab), _col(t, b_name, lab)
        n_col, r_col = _col(t, "n_from", lab), _col(t, "rate", lab)
        if None in (a, b, n_col, r_col):
            continue
        for row in t.rows:
            n = cell_count(row[n_col])
            if (v := cell_share(row[r_col])) is not None:
                out.append(((kind, row[a], row[b]), *v, n))
            if kind == "rule" and row[a] in rules.values():
                out.append((("own_count", row[a]), n, 0.0, None))
    return out


def _group_claims(t: Table, by_labels: list[str]) -> list[tuple]:
    if not t.headers or t.headers[0] not in by_labels:
        return []
    n_col, r_col = _col(t, "n_start"), _col(t, "rate")
    rest, diff = _col(t, "rate_rest"), _col(t, "diff")
    if None in (n_col, r_col):
        return []
    by = t.headers[0]
    out: list[tuple] = []
    for row in t.rows:
        g = row[0]
        if (v := cell_share(row[r_col])) is not None:
            out.append((("group", by, g), *v, cell_count(row[n_col])))
        if rest is not None and (v := cell_share(row[rest])) is not None:
            out.append((("group_rest", by, g), *v, None))
        if diff is not None and (v := cell_number(row[diff])) is not None:
            out.append((("group_diff", by, g), v[0] / 100, v[1] / 100, None))
    return out


def _period_claims(t: Table) -> list[tuple]:
    p, n_col, r_col, diff = (
        _col(t, "period"),
        _col(t, "n_start"),
        _col(t, "rate"),
        _col(t, "diff"),
    )
    if None in (p, n_col, r_col) or {r[p] for r in t.rows} != {"previous", "current"}:
        return []
    out: list[tuple] = []
    for row in t.rows:
        if (v := cell_share(row[r_col])) is not None:
            out.append((("period", row[p]), *v, cell_count(row[n_col])))
        if row[p] == "current" and diff is not None and (v := cell_number(row[diff])):
            out.append((("period_diff",), v[0] / 100, v[1] / 100, None))
    return out


def _path_claims(t: Table) -> list[tuple]:
    p, s = _col(t, "path"), _col(t, "share")
    if None in (p, s):
        return []
    return [(("path", r[p]), *v, None) for r in t.rows if (v := cell_share(r[s])) is not None]


def page_claims(page: Page, ctx: Mapping[str, Any]) -> list[Claim]:
    """Return every claim the lifecycle page states, from sentences and tables."""
    claims = sentence_claims(page, RULES, ctx)
    for i, t in enumerate(page.tables):
        rows: list[tuple] = []
        rows += _ladder_claims(t, ctx["stages"])
        rows += _funnel_claims(t, ctx["steps"])
        rows += _pair_claims(t, ctx["rules"])
        rows += _group_claims(t, [ctx["by"], "persona"])
        rows += _period_claims(t)
        rows += _path_claims(t)
        where = f"table {i + 1} ({', '.join(t.headers[:3])})"
        claims += [Claim(tuple(k), float(v), float(tol), n, where, "") for k, v, tol, n in rows]
    return claims


# ---- the result's own values ---------------------------------------------------------------


def expected(r: LifecycleResult, by_label: str) -> dict[tuple, tuple[float, int | None]]:
    """Return each key's value and n in the analysis result itself."""
    out: dict[tuple, tuple[float, int | None]] = {}
    sf = r.stage_funnel
    n1 = int(sf.n_customers.iloc[0])
    for row in sf.itertuples():
        out[("count", row.step_name)] = (float(row.n_customers), None)
        out[("reach", row.step_name)] = (float(row.rate_from_start), n1)
        if pd.notna(row.median_time_from_start_days):
            out[("median_days_from_start", row.step_name)] = (
                float(row.median_time_from_start_days),
                int(row.n_customers),
            )
    for st in r.stage_steps.itertuples():
        out[("step", st.from_stage, st.to_stage)] = (float(st.rate), int(st.n_from))
    for rc in r.rule_conversion.itertuples():
        out[("rule", rc.from_rule, rc.to_rule)] = (float(rc.rate), int(rc.n_from))
    if r.stage_rule_counts is not None:
        for s, n in zip(r.stage_rule_counts.stage, r.stage_rule_counts.n_customers, strict=True):
            out[("own_count", describe_rule(r.stage_map[s]))] = (float(n), None)
    if r.funnel is not None:
        f = r.funnel
        out[("funnel",)] = (float(f.rate_from_start.iloc[-1]), int(f.n_customers.iloc[0]))
    if r.breakdown_tests is not None and r.by is not None:
        for g in r.breakdown_tests.itertuples():
            name = str(getattr(g, r.by))
            out[("group", by_label, name)] = (float(g.rate), int(g.n_start))
            out[("group_rest", by_label, name)] = (float(g.rate_rest), None)
            out[("group_diff", by_label, name)] = (float(g.diff), None)
    if r.period_compare is not None:
        for p in r.period_compare.itertuples():
            out[("period", p.period)] = (float(p.rate), int(p.n_start))
        out[("period_diff",)] = (float(r.period_compare["diff"].iloc[1]), None)
    if r.cohorts is not None and len(r.cohorts) > 1:
        avg = r.cohorts.loc["all (size-weighted)"]
        for k in (1, 3, 6):
            if k in avg.index and pd.notna(avg[k]):
                out[("cohort", r.period, k)] = (float(avg[k]), None)
    if r.journey_paths is not None:
        for p in r.journey_paths.itertuples():
            out[("path", p.path)] = (float(p.share), None)
    return out


# ---- tests --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def lifecycle_page(report_run: dict[str, Any]) -> Page:
    path = Path(report_run["out"]) / "lifecycle.html"
    assert path.exists(), report_run["proc"].stdout[-2000:] + report_run["proc"].stderr[-2000:]
    return read_page(path.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def result(hostile_demo: Path) -> LifecycleResult:
    p = notebook_defaults(NOTEBOOK)
    return lifecycle.analyze(
        cxkit.load(hostile_demo),
        steps=p["steps"],
        window=p["window_days"],
        entry=p["entry"],
        by=p["breakdown"],
        period=p["period"],
        compare_days=p["compare_days"],
        journey_steps=p["journey_steps"],
        journey_top=p["journey_top"],
    )


def _context(r: LifecycleResult) -> dict[str, Any]:
    by = label(r.by) if r.by else "breakdown"
    steps = [s if isinstance(s, str) else " | ".join(s) for s in r.steps]
    return {
        "stages": list(r.stage_map),
        "steps": steps,
        "rules": {s: describe_rule(rl) for s, rl in r.stage_map.items()},
        "by": by,
        "period": r.period,
    }


@pytest.mark.slow
def test_every_statement_of_a_lifecycle_figure_agrees(
    lifecycle_page: Page, result: LifecycleResult
) -> None:
    ctx = _context(result)
    claims = page_claims(lifecycle_page, ctx)
    times = repeated(claims)
    # the page is read: each ladder step, the stage counts and the funnel are stated
    # in more than one place (sentences and tables)
    for st in result.stage_steps.itertuples():
        assert times.get(("step", st.from_stage, st.to_stage), 0) >= 1, st
    worst = result.stage_steps.sort_values("rate").iloc[0]
    assert times[("step", worst.from_stage, worst.to_stage)] >= 3  # headline, takeaway, table
    assert times[("funnel",)] >= 3
    assert disagreements(claims) == []
    assert against(claims, expected(result, ctx["by"])) == []


@pytest.mark.slow
def test_every_lifecycle_sentence_with_a_share_is_read(lifecycle_page: Page) -> None:
    # a new sentence stating a share must be read by a rule (add one), so that it is checked
    assert unread(lifecycle_page, RULES, ["headline", "finding", "takeaway", "chart"]) == []


def test_the_check_catches_the_old_retention_to_advocacy_disagreement() -> None:
    """The page shape of the issue: 27.4% (n = 6,507) headline vs a 23.6% stage table."""
    hl = (
        "40.7% of 20,000 customers reached purchase (95% CI 40.0%–41.4%); the biggest drop-off "
        "is retention -> advocacy: only 27.4% move on (95% CI 26.3%–28.5%, n = 6,507)."
    )
    heads = [label(c) for c in ("from_stage", "to_stage", "n_from", "n_to", "rate")]
    html = (
        f'<p class="cx-headline">{hl}</p><table><thead><tr>'
        + "".join(f"<th>{h}</th>" for h in heads)
        + "</tr></thead><tbody><tr><td>purchase</td><td>retention</td><td>8,140</td>"
        "<td>6,180</td><td>75.9%</td></tr><tr><td>retention</td><td>advocacy</td>"
        "<td>6,180</td><td>1,457</td><td>23.6%</td></tr></tbody></table>"
        '<p class="cx-takeaway">The largest loss is between retention and advocacy: 73% of '
        "6,507 customers do not move on.</p>"
    )
    ctx = {"stages": [], "steps": [], "rules": {}, "by": "x", "period": "M"}
    found = disagreements(page_claims(read_page(html), ctx))
    assert any("('step', 'retention', 'advocacy')" in d and "0.236" in d for d in found), found
    # the headline and the takeaway alone agree (27.4% move on = 73% do not, n = 6,507)
    only = html[: html.index("<table>")] + html[html.index("</table>") + 8 :]
    assert disagreements(page_claims(read_page(only), ctx)) == []
    # and an n stated differently is caught even when the rates agree
    other_n = only.replace("73% of 6,507", "73% of 6,180")
    assert any("n differs" in d for d in disagreements(page_claims(read_page(other_n), ctx)))


def test_orders_only_data_has_only_its_stages_in_every_table_and_chart() -> None:
    """CDNOW (orders only): no table, chart or sentence of the report names another stage."""
    r = lifecycle.analyze(cxkit.load(ROOT / "data" / "cdnow"))
    shown = {"purchase", "retention"}
    assert list(r.stage_map) == ["purchase", "retention"]
    assert set(r.stage_funnel.step_name) == shown
    assert set(r.stage_steps.from_stage) | set(r.stage_steps.to_stage) <= shown
    assert set(r.stage_conversion.from_stage) | set(r.stage_conversion.to_stage) <= shown
    assert r.stage_links is None and r.stage_paths is None
    fig = lifecycle.stage_chart(r)
    assert [str(x) for x in fig.data[0].x] == ["purchase", "retention"]
    words = " ".join([r.headline(), *(f.sentence for f in r.findings()), *r.takeaways().values()])
    for stage in ("awareness", "consideration", "advocacy"):
        assert stage not in words
    # what is missing is said once, with the tables it needs
    assert "awareness needs table 'events'" in r.missing_parts["stages"]
    assert "period_compare" in r.missing_parts
