"""Tests of cxkit.widgets: drive each explorer through its callbacks on the 2k demo.

Every number a widget shows is compared with the domain function's own output, called
independently here; empty selections must show a message, never raise.
"""

from __future__ import annotations

import datetime as dt
import re

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest

import cxkit
from cxkit import clv, lifecycle, voc
from cxkit import personas as pers
from cxkit.widgets import CustomerLookup, FunnelExplorer, NpsExplorer, PersonaExplorer

STEPS = ["site_visit", "product_view", "add_to_cart", "order"]
EVIL = '<script>alert("x")</script> & <b>bold</b>'


@pytest.fixture(scope="module")
def truth_personas(demo_dir) -> pd.DataFrame:
    """Persona labels per customer: the planted truth (fast; no clustering needed)."""
    t = pd.read_parquet(demo_dir / "_truth.parquet", columns=["customer_id", "persona"])
    return t.rename(columns={"persona": "persona_name"}).astype(str)


@pytest.fixture(scope="module")
def scores(demo_data) -> pd.DataFrame:
    """CLV from cxkit.clv plus a deterministic stand-in churn probability.

    (cxkit.churn.score takes several seconds; the explorer only ranks by these columns.)
    """
    s = clv.rfm_summary(demo_data)
    bg = clv.BetaGeo().fit(s)
    gg = clv.GammaGamma().fit(s[s.frequency > 0])
    v = clv.customer_value(s, bg, gg)
    rng = np.random.default_rng(0)
    v["churn_probability"] = rng.uniform(size=len(v))
    return v


@pytest.fixture(scope="module")
def evil_data() -> cxkit.CXData:
    """A tiny data set whose comment and ID carry HTML."""
    ts = pd.to_datetime(["2024-01-05", "2024-01-20", "2024-02-03"])
    return cxkit.load(
        {
            "customers": pd.DataFrame({"customer_id": ["c1", "c2"], "region": ["<i>n</i>", "s"]}),
            "events": pd.DataFrame(
                {"customer_id": ["c1", "c1", "c2"], "ts": ts, "event": ["site_visit"] * 3}
            ),
            "orders": pd.DataFrame(
                {"order_id": ["o1"], "customer_id": ["c1"], "ts": ts[1:2], "amount": [12.5]}
            ),
            "responses": pd.DataFrame(
                {
                    "response_id": ["r1", "r2"],
                    "customer_id": ["c1", "c2"],
                    "ts": ts[1:],
                    "survey": ["nps", "nps"],
                    "score": [3, 10],
                    "channel": ["web", "app"],
                    "comment": [EVIL, "fine"],
                }
            ),
        }
    )


def _ys(fig: go.FigureWidget, i: int = 0) -> np.ndarray:
    return np.asarray(fig.data[i].y, dtype=float)


def _between_events(data: cxkit.CXData, start: str, end: str) -> pd.DataFrame:
    ev = data.to_pandas("events")
    lo, hi = pd.Timestamp(start), pd.Timestamp(end) + pd.Timedelta(days=1)
    return ev[(ev.ts >= lo) & (ev.ts < hi)]


# ---- funnel ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def fx(demo_data, truth_personas) -> FunnelExplorer:
    """One funnel explorer shared by the funnel tests (each test resets what it sets)."""
    return FunnelExplorer(demo_data, personas=truth_personas, live=False)


def _reset(fx: FunnelExplorer) -> None:
    fx.live = False
    fx.steps.value, fx.window.value, fx.entry.value = STEPS, 0.0, "any"
    fx.breakdown.value = "(none)"
    fx.start.value, fx.end.value = dt.date(2023, 1, 1), dt.date(2024, 12, 31)


def test_funnel_default_matches_domain(fx, demo_data):
    assert list(fx.steps.value) == STEPS
    expected = lifecycle.funnel(demo_data, STEPS)
    assert isinstance(fx.fig, go.FigureWidget)
    assert len(fx.fig.data) == 1
    np.testing.assert_allclose(_ys(fx.fig), 100 * expected.rate_from_start.to_numpy())
    pd.testing.assert_frame_equal(fx.result, expected)
    assert f"{int(expected.n_customers.iloc[0]):,}" in fx.table.value
    assert fx.message.value == ""


def test_funnel_controls_window_entry_breakdown(fx, demo_data):
    _reset(fx)
    before = fx.table.value
    steps = ["product_view", "add_to_cart", "order"]
    fx.steps.value, fx.window.value, fx.entry.value = steps, 7.0, "first"
    fx.breakdown.value = "region"
    fx.update()
    expected = lifecycle.funnel(demo_data, steps, window=7, entry="first", by="region")
    pd.testing.assert_frame_equal(fx.result, expected)
    regions = sorted(expected.region.unique())
    assert [t.name for t in fx.fig.data] == regions
    for trace, region in zip(fx.fig.data, regions, strict=True):
        sub = expected[expected.region == region]
        np.testing.assert_allclose(np.asarray(trace.y, float), 100 * sub.rate_from_start)
    assert fx.table.value != before and "<th>region</th>" in fx.table.value


def test_funnel_date_range_and_persona_breakdown(fx, demo_data, truth_personas):
    _reset(fx)
    steps = ["site_visit", "product_view", "add_to_cart"]
    fx.steps.value, fx.entry.value = steps, "first"
    fx.start.value, fx.end.value = dt.date(2024, 1, 1), dt.date(2024, 3, 31)
    fx.update()
    ev = _between_events(demo_data, "2024-01-01", "2024-03-31")
    expected = lifecycle.funnel(cxkit.load({"events": ev}), steps, entry="first")
    np.testing.assert_allclose(_ys(fx.fig), 100 * expected.rate_from_start.to_numpy())
    assert fx.result.n_customers.tolist() == expected.n_customers.tolist()
    fx.breakdown.value = "persona"
    fx.update()
    assert sorted(t.name for t in fx.fig.data) == sorted(truth_personas.persona_name.unique())
    # the persona groups add up to the whole funnel, step by step
    per_step = fx.result.groupby("step").n_customers.sum().tolist()
    assert per_step == expected.n_customers.tolist()


def test_funnel_empty_selections_show_messages(fx):
    _reset(fx)
    fx.steps.value = []
    fx.update()
    assert "Choose at least one step" in fx.message.value
    assert len(fx.fig.data) == 0 and fx.table.value == "" and fx.result is None
    fx.steps.value = STEPS
    fx.start.value = fx.end.value = dt.date(2020, 1, 1)  # before any data
    fx.update()
    assert "No customer has the first step" in fx.message.value
    assert len(fx.fig.data) == 0
    fx.start.value = dt.date(2024, 2, 1)
    fx.update()
    assert "after the end date" in fx.message.value
    fx.start.value, fx.end.value = dt.date(2023, 1, 1), dt.date(2024, 12, 31)
    fx.update()
    assert fx.message.value == "" and len(fx.fig.data) == 1


def test_funnel_live_and_memo(fx):
    _reset(fx)
    fx.update()
    fx.live = True
    n0 = fx.n_updates
    fx.entry.value = "first"  # a change calls update
    assert fx.n_updates == n0 + 1
    first = fx.result
    fx.entry.value = "any"
    fx.entry.value = "first"  # back to a seen selection: served from memory
    assert fx.result is first
    fx.live = False


def test_funnel_initial_controls_from_parameters(demo_data):
    steps = ["product_view", "add_to_cart", "purchase"]
    fx = FunnelExplorer(
        demo_data, steps=steps, window=3, entry="first", breakdown="no_such_column", live=False
    )
    assert (fx.window.value, fx.entry.value, fx.breakdown.value) == (3.0, "first", "(none)")
    expected = lifecycle.funnel(demo_data, steps, window=3, entry="first")
    assert fx.result.n_customers.tolist() == expected.n_customers.tolist()


def test_missing_tables_are_messages():
    only_orders = cxkit.load(
        {
            "orders": pd.DataFrame(
                {
                    "order_id": ["o1"],
                    "customer_id": ["a"],
                    "ts": pd.to_datetime(["2024-01-01"]),
                    "amount": [1.0],
                }
            )
        }
    )
    fx = FunnelExplorer(only_orders, steps=["site_visit", "order"], live=False)
    assert "events" in fx.message.value and len(fx.fig.data) == 0
    nx = NpsExplorer(only_orders, live=False)
    assert "responses" in nx.message.value and nx.channel.disabled and len(nx.fig.data) == 0
    cl = CustomerLookup(only_orders, customer_id="a", live=False)
    assert cl.timeline.kind.tolist() == ["order"] and cl.message.value == ""


def _text(value: str) -> str:
    """The visible text of an HTML snippet."""
    import html

    return html.unescape(re.sub(r"<[^>]+>", "", value))


def test_funnel_headline_changes_with_the_window_and_states_it(fx, demo_data):
    """The headline names the window (and entry): it changes when the window does.

    With entry "any" a longer window often matches the same customers (every
    occurrence of the first step may start the funnel), so before the headline named
    its window, 30 days, 90 days and no limit looked like a control that did nothing.
    """
    _reset(fx)
    steps = ["product_view", "add_to_cart", "purchase"]
    fx.steps.value = steps
    seen = {}
    for days in (1.0, 7.0, 30.0, 90.0, 0.0):
        fx.window.value = days
        fx.update()
        f = lifecycle.funnel(demo_data, steps, window=days or None)
        n1, nk = int(f.n_customers.iloc[0]), int(f.n_customers.iloc[-1])
        head = _text(fx.headline.value)
        assert head.startswith(f"{nk:,} of {n1:,} customers ({nk / n1:.1%}) reach 'purchase'")
        assert (f"within {days:g} days" if days else "with no time limit") in head
        assert "counted from any 'product_view'" in head
        assert fx.fig.layout.title.text.startswith(f"{nk / n1:.1%} of {n1:,} entrants")
        seen[days] = (head, nk)
    assert len({h for h, _ in seen.values()}) == 5  # one headline per window
    fx.entry.value = "first"
    fx.update()
    assert "counted from the first 'product_view'" in _text(fx.headline.value)


def test_funnel_unknown_step_names_it_and_the_known_steps(fx, demo_data):
    _reset(fx)
    fx.steps.value = ["product_view", "add_to_kart", "order"]  # typed freely, not refused
    fx.update()
    msg = _text(fx.message.value)
    assert "Unknown step 'add_to_kart'" in msg
    known = sorted(demo_data.to_pandas("events").event.unique())
    assert all(name in msg for name in [*known, "order", "purchase", "advocacy"])
    assert fx.result is None and len(fx.fig.data) == 0 and fx.headline.value == ""
    # an event name outside the first list is looked up in the data, not refused
    fx.known_steps.remove("add_to_cart")
    fx.steps.value = ["product_view", "add_to_cart"]
    fx.update()
    assert fx.message.value == "" and fx.result is not None and "add_to_cart" in fx.known_steps
    # a step given at construction is checked the same way
    bad = FunnelExplorer(demo_data, steps=["site_visit", "no_such_event"], live=False)
    assert "Unknown step 'no_such_event'" in _text(bad.message.value) and bad.result is None


# ---- personas -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def journey(demo_data, truth_personas) -> pd.DataFrame:
    return pers.journey_map(demo_data, truth_personas)


def test_persona_explorer_journey_and_at_risk(demo_data, truth_personas, scores, journey):
    px = PersonaExplorer(demo_data, truth_personas, scores=scores, top=5, live=False)
    names = truth_personas.persona_name.value_counts().index.tolist()
    assert list(px.persona.options) == names
    for name in names[:2]:
        px.persona.value = name
        px.update()
        sub = journey[journey.persona_name == name]
        assert list(px.fig.data[0].x) == list(sub.stage)
        np.testing.assert_allclose(_ys(px.fig), 100 * sub.reach.to_numpy())
        assert html_escaped(name) in px.profile.value
        merged = truth_personas.merge(scores, on="customer_id")
        exp = merged[(merged.persona_name == name) & (merged.churn_probability >= 0.5)]
        exp = exp.sort_values("clv_52w", ascending=False).head(5)
        assert px.at_risk.customer_id.tolist() == exp.customer_id.tolist()
        assert all(cid in px.table.value for cid in exp.customer_id)
    # a threshold nobody reaches: a message, not a table
    px.min_churn.value = 1.0
    px.update()
    assert len(px.at_risk) == 0 and "No customer of" in px.table.value


def test_persona_explorer_title_names_the_last_stage_the_data_has():
    orders = pd.DataFrame(
        {
            "order_id": ["o1", "o2", "o3"],
            "customer_id": ["a", "a", "b"],
            "ts": pd.to_datetime(["2024-01-01", "2024-02-01", "2024-01-05"]),
            "amount": [1.0, 2.0, 3.0],
        }
    )
    data = cxkit.load({"orders": orders})
    labels = pd.Series(["P", "P"], index=pd.Index(["a", "b"], name="customer_id"))
    px = PersonaExplorer(data, labels, live=False)
    assert px.fig.layout.title.text == "P: 50% reach retention"
    assert list(px.fig.data[0].x) == ["purchase", "retention"]


def test_persona_explorer_without_scores_says_so(demo_data, truth_personas, journey):
    labels = truth_personas.set_index("customer_id").persona_name
    px = PersonaExplorer(demo_data, labels, journey=journey)
    assert "scores were not given" in px.table.value
    assert len(px.fig.data) == 1 and px.message.value == ""


@pytest.mark.slow
def test_persona_explorer_with_report(demo_data):
    rep = pers.analyze(demo_data, k=3, random_state=0)
    px = PersonaExplorer(demo_data, rep, live=False)
    name = px.persona.value
    assert "top_traits" in px.profile.value
    sub = rep.journey[rep.journey.persona_name == name]
    np.testing.assert_allclose(_ys(px.fig), 100 * sub.reach.to_numpy())


def html_escaped(text: str) -> str:
    import html

    return html.escape(text)


# ---- customer lookup ------------------------------------------------------------------


def test_customer_lookup_timeline_matches_tables(demo_data, scores):
    resp = demo_data.to_pandas("responses")
    orders = demo_data.to_pandas("orders")
    cid = sorted(set(resp.customer_id) & set(orders.customer_id))[0]
    cl = CustomerLookup(demo_data, scores=scores, live=False)
    assert "Enter a customer ID" in cl.message.value
    cl.customer_id.value = cid
    cl.update()
    ev = demo_data.to_pandas("events")
    n = {
        "events": int((ev.customer_id == cid).sum()),
        "orders": int((orders.customer_id == cid).sum()),
        "responses": int((resp.customer_id == cid).sum()),
    }
    got = {t.name: len(t.x) for t in cl.fig.data}
    assert got == {k: v for k, v in n.items() if v}
    assert len(cl.timeline) == sum(n.values())
    assert cl.timeline.ts.is_monotonic_increasing
    row = scores[scores.customer_id == cid].iloc[0]
    assert f"{row.clv_52w:,.2f}" in cl.card.value
    assert f"{100 * row.churn_probability:.1f}%" in cl.card.value
    # unknown and empty IDs
    cl.customer_id.value = "NOPE-<b>"
    cl.update()
    assert "No customer with ID" in cl.message.value and "&lt;b&gt;" in cl.message.value
    assert len(cl.fig.data) == 0 and cl.table.value == "" and cl.timeline is None


def test_customer_lookup_escapes_comments(evil_data):
    cl = CustomerLookup(evil_data, customer_id="c1", live=True)
    assert len(cl.timeline) == 4  # 2 events, 1 order, 1 response
    for text in (cl.table.value, cl.card.value, " ".join(cl.fig.data[-1].hovertext)):
        assert "<script>" not in text and "<i>" not in text
    assert "&lt;script&gt;" in cl.table.value
    assert "&lt;i&gt;n&lt;/i&gt;" in cl.card.value
    cl.customer_id.value = "c2"  # live: the change looks it up
    assert len(cl.timeline) == 2


# ---- NPS ------------------------------------------------------------------------------


def test_nps_explorer_default_and_filters(demo_data, truth_personas):
    nx = NpsExplorer(demo_data, personas=truth_personas, live=False)
    overall = voc.nps(demo_data).iloc[0]
    assert nx.result.n.iloc[0] == overall.n
    assert f"NPS {overall.nps:+.1f}" in nx.score.value
    assert f"{overall.nps_low:+.1f} to {overall.nps_high:+.1f}" in nx.score.value
    trend = voc.nps_trend(demo_data)
    line = next(t for t in nx.fig.data if t.name == "NPS")
    np.testing.assert_allclose(np.asarray(line.y, float), trend.nps.to_numpy())
    assert len(nx.comments) == 10

    by_ch = voc.nps(demo_data, by="channel").set_index("channel")
    ch = by_ch.index[0]
    nx.channel.value = ch
    nx.update()
    assert nx.result.n.iloc[0] == by_ch.loc[ch, "n"]
    assert nx.result.nps.iloc[0] == pytest.approx(by_ch.loc[ch, "nps"])
    assert set(nx.comments.channel) == {ch}

    nx.channel.value = "(all)"
    by_tp = voc.nps(demo_data, by="touchpoint").set_index("touchpoint")
    tp = by_tp.index[-1]
    nx.touchpoint.value = tp
    nx.update()
    assert nx.result.nps.iloc[0] == pytest.approx(by_tp.loc[tp, "nps"])

    nx.touchpoint.value = "(all)"
    by_p = voc.nps(demo_data, by="persona", personas=truth_personas).set_index("persona")
    p = by_p.index[0]
    nx.persona.value = p
    nx.update()
    assert nx.result.n.iloc[0] == by_p.loc[p, "n"]
    assert nx.result.nps.iloc[0] == pytest.approx(by_p.loc[p, "nps"])

    nx.persona.value = "(all)"
    nx.start.value, nx.end.value = dt.date(2024, 1, 1), dt.date(2024, 6, 30)
    nx.update()
    r = demo_data.to_pandas("responses")
    r = r[(r.survey == "nps") & (r.ts >= "2024-01-01") & (r.ts < "2024-07-01")]
    assert nx.result.n.iloc[0] == len(r)
    assert pd.to_datetime(nx.trend.period).min() >= pd.Timestamp("2024-01-01")


def test_nps_explorer_empty_selection(demo_data):
    nx = NpsExplorer(demo_data, live=False)
    nx.start.value = nx.end.value = dt.date(2021, 1, 1)
    nx.update()
    assert "No NPS responses for 2021-01-01 to 2021-01-01" in nx.message.value
    assert len(nx.fig.data) == 0 and nx.score.value == "" and nx.table.value == ""
    assert nx.persona.disabled  # no personas given


def test_nps_explorer_escapes_comments(evil_data):
    nx = NpsExplorer(evil_data, live=False)
    assert nx.result.n.iloc[0] == 2
    assert "<script>" not in nx.table.value and "&lt;script&gt;" in nx.table.value
    nx.channel.value = "app"
    nx.update()
    assert nx.result.n.iloc[0] == 1 and "script" not in nx.table.value
