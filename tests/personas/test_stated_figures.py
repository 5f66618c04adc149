"""Every figure the personas report states is stated once: all its statements agree.

The page of the session's report run (``report_run``) is read with
:mod:`tests.stated_figures`: the headline, findings, takeaways, chart titles, persona
cards and tables become claims keyed by what they measure — a persona's size, its reach
and drop-off at each stage (with the n the drop is computed on), its pain point, the
rules' precision — and every two statements of one key must agree (within their rounding),
with the same n, and with :func:`cxkit.personas.analyze` on the same data and parameters.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

import cxkit
from cxkit import personas
from cxkit.personas import PersonasResult
from tests.stated_figures import (
    NUM,
    PCT,
    Claim,
    Page,
    Rule,
    Table,
    against,
    cell_count,
    cell_share,
    count,
    disagreements,
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
NOTEBOOK = ROOT / "notebooks" / "40_personas.ipynb"
P = r"[^']+"


def _card(ctx: Mapping[str, Any]) -> str | None:
    """Return the persona of the card a statement is on, or None elsewhere."""
    where = str(ctx.get("where", ""))
    return where[5:] if where.startswith("card:") else None


@rule(rf"(?P<k>\d+) personas among (?P<n>{NUM}) customers")
def _k_headline(m: re.Match[str], ctx: Mapping[str, Any]) -> list[tuple]:
    return [(("k",), int(m["k"]), 0.0, None), (("n_all",), count(m["n"]), 0.0, None)]


@rule(rf"(?P<n>{NUM}) customers fall into (?P<k>\d+) personas")
def _k_finding(m: re.Match[str], ctx: Mapping[str, Any]) -> list[tuple]:
    return [(("k",), int(m["k"]), 0.0, None), (("n_all",), count(m["n"]), 0.0, None)]


@rule(r"^(?P<k>\d+) personas: ")
def _k_takeaway(m: re.Match[str], ctx: Mapping[str, Any]) -> list[tuple]:
    return [(("k",), int(m["k"]), 0.0, None)]


@rule(rf"'(?P<p>{P})' are (?P<r>{PCT}) of customers \(n = (?P<n>{NUM})\)")
def _size(m: re.Match[str], ctx: Mapping[str, Any]) -> list[tuple]:
    return [(("psize", m["p"]), *share(m["r"]), count(m["n"]))]


@rule(r"'(?P<p>[^']+)' are [^;]*mean spend (?P<s>[\d,.]+) per customer")
def _spend(m: re.Match[str], ctx: Mapping[str, Any]) -> list[tuple]:
    return [(("mean_spend", m["p"]), *number(m["s"]), None)]


@rule(r"'(?P<p>[^']+)' are [^;]*; [^(]*\(Jaccard (?P<j>[\d.]+)\)")
def _jaccard(m: re.Match[str], ctx: Mapping[str, Any]) -> list[tuple]:
    return [(("jaccard", m["p"]), *number(m["j"]), None)]


@rule(rf"'(?P<p>{P})' bring (?P<v>{PCT}) of all spend while being (?P<r>{PCT}) of customers")
def _value(m: re.Match[str], ctx: Mapping[str, Any]) -> list[tuple]:
    return [(("psize", m["p"]), *share(m["r"]), None)]


@rule(rf"^(?P<n>{NUM}) customers \((?P<r>{PCT})\), bootstrap stability (?P<j>[\d.]+)")
def _card_size(m: re.Match[str], ctx: Mapping[str, Any]) -> list[tuple]:
    p = _card(ctx)
    if p is None:
        return []
    return [
        (("psize", p), *share(m["r"]), count(m["n"])),
        (("jaccard", p), *number(m["j"]), None),
    ]


@rule(r"^mean spend (?P<s>[\d,.]+) over")
def _card_spend(m: re.Match[str], ctx: Mapping[str, Any]) -> list[tuple]:
    p = _card(ctx)
    return [] if p is None else [(("mean_spend", p), *number(m["s"]), None)]


@rule(rf"(?:pain point|lowest CSAT): \w+ '[^']+', (?P<r>{PCT}) satisfied")
def _card_pain(m: re.Match[str], ctx: Mapping[str, Any]) -> list[tuple]:
    p = _card(ctx)
    return [] if p is None else [(("pain", p), *share(m["r"]), None)]


@rule(rf"^rule: (?P<rule>.+) \((?P<r>{PCT}) of the (?P<n>{NUM}) customers it picks\)")
def _card_rule(m: re.Match[str], ctx: Mapping[str, Any]) -> list[tuple]:
    p = _card(ctx)
    return [] if p is None else [(("rule", p, m["rule"]), *share(m["r"]), count(m["n"]))]


@rule(r"(?P<f>[\w=.-]+) -?[\d,.]+ \((?P<z>[+-][\d.]+) sd\)")
def _card_z(m: re.Match[str], ctx: Mapping[str, Any]) -> list[tuple]:
    p = _card(ctx)
    return [] if p is None else [(("z", p, m["f"]), *number(m["z"]), None)]


@rule(r"'(?P<p>[^']+)' sit (?P<z>[+-][\d.]+) standard deviations from the average on (?P<f>\S+?)\.")
def _contrast(m: re.Match[str], ctx: Mapping[str, Any]) -> list[tuple]:
    return [(("z", m["p"], m["f"]), *number(m["z"]), None)]


@rule(
    rf"(?P<p>[^:.]+): CSAT on \w+ '[^']+' is (?P<r>{PCT}) satisfied \(95% CI [^,]*, "
    rf"n = (?P<n>{NUM})\) vs (?P<q>{PCT}) on their other \w+ \(n = (?P<m>{NUM})\)"
)
def _pain(m: re.Match[str], ctx: Mapping[str, Any]) -> list[tuple]:
    p = m["p"].strip()
    return [
        (("pain", p), *share(m["r"]), count(m["n"])),
        (("pain_rest", p), *share(m["q"]), count(m["m"])),
    ]


@rule(rf"'(?P<p>{P})' are hurt on \w+ '[^']+' \((?P<r>{PCT}) satisfied vs (?P<q>{PCT})\)")
def _pain_headline(m: re.Match[str], ctx: Mapping[str, Any]) -> list[tuple]:
    return [(("pain", m["p"]), *share(m["r"]), None), (("pain_rest", m["p"]), *share(m["q"]), None)]


@rule(rf"reproduce the personas for (?P<r>{PCT}) of held-out customers")
def _fidelity(m: re.Match[str], ctx: Mapping[str, Any]) -> list[tuple]:
    return [(("fidelity",), *share(m["r"]), None)]


@rule(
    rf"The steepest drop is '(?P<p>{P})' from (?:(?P<a>\w+) to |the stage before )(?P<b>\w+): "
    rf"(?P<r>{PCT})(?: of (?P<n>{NUM}))? do not get further(?: \(n = (?P<n2>{NUM})\))?"
)
def _drop(m: re.Match[str], ctx: Mapping[str, Any]) -> list[tuple]:
    n = m["n"] or m["n2"]
    out = [(("pdrop", m["p"], m["b"]), *share(m["r"]), None if n is None else count(n))]
    if m["a"] and m["n"]:
        out.append((("pcount", m["p"], m["a"]), count(m["n"]), 0.0, None))
    return out


@rule(rf"(?:^|, )(?P<r>{PCT}) of '(?P<p>{P})'(?: reach (?P<s>\w+))?")
def _reach_title(m: re.Match[str], ctx: Mapping[str, Any]) -> list[tuple]:
    if m["s"]:
        ctx["_stage"] = m["s"]  # the second persona of the title shares the stage
    stage = m["s"] or ctx.get("_stage")
    return [] if stage is None else [(("preach", m["p"], stage), *share(m["r"]), None)]


@rule(rf"\((?P<r>{PCT}) of the variance shown\)|show (?P<r2>{PCT}) of the spread")
def _map(m: re.Match[str], ctx: Mapping[str, Any]) -> list[tuple]:
    return [(("map_variance",), *share(m["r"] or m["r2"]), None)]


@rule(rf"Each dot is a customer \((?:all )?(?P<k>{NUM})(?: of (?P<n>{NUM}))?")
def _map_points(m: re.Match[str], ctx: Mapping[str, Any]) -> list[tuple]:
    out = [(("map_points",), count(m["k"]), 0.0, None)]
    if m["n"]:
        out.append((("n_all",), count(m["n"]), 0.0, None))
    return out


RULES: list[Rule] = [
    _k_headline,
    _k_finding,
    _k_takeaway,
    _size,
    _spend,
    _jaccard,
    _value,
    _card_size,
    _card_spend,
    _card_pain,
    _card_rule,
    _card_z,
    _contrast,
    _pain,
    _pain_headline,
    _fidelity,
    _drop,
    _reach_title,
    _map,
    _map_points,
]


# ---- tables ---------------------------------------------------------------------------


def _journey_claims(t: Table) -> list[tuple]:
    p, s, r, d = (t.column(x) for x in ("persona", "stage", "reached", "drop-off"))
    if None in (p, s, r):
        return []
    out: list[tuple] = []
    prev: tuple[str, str] | None = None
    for row in t.rows:
        who, stage = row[p], row[s]
        m = re.match(rf"({NUM}) = ({PCT})", row[r])
        if m:
            out.append((("pcount", who, stage), count(m[1]), 0.0, None))
            out.append((("preach", who, stage), *share(m[2]), None))
        if d is not None and (m := re.match(rf"({PCT})(?: of ({NUM}))?", row[d])):
            n = None if m[2] is None else count(m[2])
            out.append((("pdrop", who, stage), *share(m[1]), n))
            if n is not None and prev is not None and prev[0] == who:
                out.append((("pcount", who, prev[1]), n, 0.0, None))
        prev = (who, stage)
    return out


def _pain_claims(t: Table) -> list[tuple]:
    p, c, rest = (t.column(x) for x in ("persona", "CSAT top-2-box", "rest of the persona"))
    if None in (p, c, rest):
        return []
    out: list[tuple] = []
    for row in t.rows:
        for key, cell in (("pain", row[c]), ("pain_rest", row[rest])):
            m = re.match(rf"({PCT})[^,]*, n = ({NUM})", cell)
            if m:
                out.append(((key, row[p]), *share(m[1]), count(m[2])))
    return out


def _rules_claims(t: Table) -> list[tuple]:
    p, r, n, q = (t.column(x) for x in ("persona", "rule", "customers it picks", "in that persona"))
    if None in (p, r, n, q):
        return []
    return [
        (("rule", row[p], row[r]), *v, cell_count(row[n]))
        for row in t.rows
        if (v := cell_share(row[q])) is not None
    ]


def _k_claims(t: Table) -> list[tuple]:
    k, chosen = t.column("k"), t.column("chosen")
    if None in (k, chosen):
        return []
    return [(("k",), int(row[k]), 0.0, None) for row in t.rows if row[chosen] == "yes"]


def page_claims(page: Page) -> list[Claim]:
    """Return every claim the personas page states, from sentences, cards and tables."""
    claims: list[Claim] = []
    for where, text in page.statements:
        one = Page(statements=[(where, text)])
        claims += sentence_claims(one, RULES, {"where": where})
    for i, t in enumerate(page.tables):
        rows = _journey_claims(t) + _pain_claims(t) + _rules_claims(t) + _k_claims(t)
        where = f"table {i + 1} ({', '.join(t.headers[:3])})"
        claims += [Claim(tuple(k), float(v), float(tol), n, where, "") for k, v, tol, n in rows]
    return claims


def expected(rep: PersonasResult) -> dict[tuple, tuple[float, int | None]]:
    """Return each key's value and n in the analysis result itself."""
    m = rep.model
    out: dict[tuple, tuple[float, int | None]] = {
        ("k",): (float(m.k_), None),
        ("n_all",): (float(m.sizes_.sum()), None),
    }
    if m.fidelity_ is not None:
        out[("fidelity",)] = (float(m.fidelity_), None)
    for r in m.summary().itertuples():
        out[("psize", r.name)] = (float(r.share), int(r.n_customers))
        out[("jaccard", r.name)] = (float(r.stability_jaccard), None)
        if hasattr(r, "mean_spend"):
            out[("mean_spend", r.name)] = (float(r.mean_spend), None)
    for r in m.profiles_.itertuples():
        out[("z", r.name, r.feature)] = (float(r.z), None)
    for r in personas.persona_rules(m).itertuples():
        out[("rule", r.persona_name, r.rule)] = (float(r.precision), int(r.n_customers))
    if rep.journey is not None:
        for r in rep.journey.itertuples():
            out[("pcount", r.persona_name, r.stage)] = (float(r.n_reached), None)
            out[("preach", r.persona_name, r.stage)] = (float(r.reach), None)
            if r.drop_off == r.drop_off:  # not NaN
                out[("pdrop", r.persona_name, r.stage)] = (float(r.drop_off), int(r.n_previous))
    if rep.pains is not None:
        for r in rep.pains.itertuples():
            out[("pain", r.persona_name)] = (float(r.csat_top2), int(r.n))
            out[("pain_rest", r.persona_name)] = (float(r.rest_top2), int(r.rest_n))
    return out


# ---- tests --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def personas_page(report_run: dict[str, Any]) -> Page:
    path = Path(report_run["out"]) / "personas.html"
    assert path.exists(), report_run["proc"].stdout[-2000:] + report_run["proc"].stderr[-2000:]
    return read_page(path.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def rep(hostile_demo: Path) -> PersonasResult:
    p = notebook_defaults(NOTEBOOK)
    k = p["k"] if p["k"] == "auto" else int(p["k"])
    return personas.analyze(
        cxkit.load(hostile_demo),
        k=k,
        k_range=(int(p["k_min"]), int(p["k_max"])),
        random_state=p["random_state"],
    )


@pytest.mark.slow
def test_every_statement_of_a_persona_figure_agrees(
    personas_page: Page, rep: PersonasResult
) -> None:
    claims = page_claims(personas_page)
    times = repeated(claims)
    drop = rep.steepest_drop()
    assert drop is not None
    # the steepest drop is stated in the takeaway and the journey table, with the n of the
    # previous stage (not the persona's n) — and that n is the previous stage's reach count
    assert times[("pdrop", drop.persona_name, drop.stage)] >= 2
    assert times[("pcount", drop.persona_name, drop.previous_stage)] >= 2
    for name in rep.model.names_:
        assert times[("psize", name)] >= 2  # finding and card
    assert times[("k",)] >= 3 and times[("fidelity",)] >= 2
    assert disagreements(claims) == []
    assert against(claims, expected(rep)) == []


@pytest.mark.slow
def test_every_persona_sentence_with_a_share_is_read(personas_page: Page) -> None:
    assert unread(personas_page, RULES, ["headline", "finding", "takeaway", "chart"]) == []


def test_the_check_catches_a_drop_stated_with_the_persona_n() -> None:
    """The issue's page: a drop stated with the persona's n (2,954), not the step's (936)."""
    heads = ["persona", "stage", "reached", "drop-off"]
    html = (
        "<p class='cx-takeaway'>The steepest drop is 'Chat seekers' from the stage before "
        "advocacy: 93% do not get further (n = 2,954).</p><table><thead><tr>"
        + "".join(f"<th>{h}</th>" for h in heads)
        + "</tr></thead><tbody>"
        "<tr><td>Chat seekers</td><td>retention</td><td>936 = 32% (30%–33%)</td>"
        "<td>27% of 1,285</td></tr>"
        "<tr><td>Chat seekers</td><td>advocacy</td><td>66 = 2% (2%–3%)</td>"
        "<td>93% of 936</td></tr></tbody></table>"
    )
    found = disagreements(page_claims(read_page(html)))
    assert any("pdrop" in d and "n differs" in d for d in found), found
    fixed = html.replace(
        "from the stage before advocacy: 93% do not get further (n = 2,954)",
        "from retention to advocacy: 93% of 936 do not get further",
    )
    assert disagreements(page_claims(read_page(fixed))) == []
    wrong = fixed.replace("93% of 936 do not", "93% of 940 do not")
    assert any("pcount" in d for d in disagreements(page_claims(read_page(wrong))))


def test_steepest_drop_states_the_n_at_the_step(demo_data: cxkit.CXData) -> None:
    """The takeaway's n is the previous stage's count, and small steps are left out."""
    rep = personas.analyze(demo_data, k=3, random_state=0)
    drop = rep.steepest_drop()
    jm = rep.journey.set_index(["persona_name", "stage"])
    assert drop.n_previous == jm.loc[(drop.persona_name, drop.previous_stage), "n_reached"]
    text = rep.takeaways()["journey"]
    assert f"of {int(drop.n_previous):,} do not get further" in text
    big = rep.journey[rep.journey.n_previous.astype("float64") >= 30]
    assert drop.drop_off == big.drop_off.max()
