"""cxkit.plots: one template, one palette, and figures with the traces and labels asked for."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import plotly.io as pio
import pytest

from cxkit import churn, health, plots, voc
from cxkit.personas import plots as persona_plots


def _colorway(fig: go.Figure) -> tuple[str, ...]:
    return tuple(fig.layout.template.layout.colorway)


def test_palette_is_okabe_ito_and_the_template_is_registered() -> None:
    assert plots.PALETTE[:3] == ["#0072B2", "#E69F00", "#009E73"]
    assert len(set(plots.PALETTE)) == len(plots.PALETTE) == 8
    assert all(re.fullmatch(r"#[0-9A-F]{6}", c) for c in plots.PALETTE)
    assert plots.TEMPLATE_NAME in pio.templates
    tmpl = pio.templates[plots.TEMPLATE_NAME]
    assert tuple(tmpl.layout.colorway) == tuple(plots.PALETTE)
    assert plots.GOOD in plots.PALETTE and plots.BAD in plots.PALETTE


def test_figure_is_empty_with_title_axes_and_template() -> None:
    fig = plots.figure("Most customers buy once", x_title="orders", y_title="customers")
    assert len(fig.data) == 0
    assert fig.layout.title.text == "Most customers buy once"
    assert fig.layout.xaxis.title.text == "orders"
    assert fig.layout.yaxis.title.text == "customers"
    assert fig.layout.height == 420
    assert _colorway(fig) == tuple(plots.PALETTE)


def test_figure_without_axis_titles_leaves_them_unset() -> None:
    fig = plots.figure("t", height=300)
    assert fig.layout.xaxis.title.text is None and fig.layout.yaxis.title.text is None
    assert fig.layout.height == 300


@pytest.fixture
def rates() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "step": [1, 2],
            "rate": [0.5, 0.2],
            "lo": [0.4, 0.1],
            "hi": [0.7, 0.3],
            "label": ["50%", "20%"],
        }
    )


def test_bar_with_ci_draws_asymmetric_error_bars_in_percent(rates: pd.DataFrame) -> None:
    fig = plots.bar_with_ci(
        rates, x="step", y="rate", low="lo", high="hi", title="Half reach step 1", percent=True
    )
    assert len(fig.data) == 1
    bar = fig.data[0]
    assert isinstance(bar, go.Bar)
    assert list(bar.x) == ["1", "2"]  # categories, not a numeric axis
    np.testing.assert_allclose(bar.y, [50.0, 20.0])
    assert bar.error_y.symmetric is False
    np.testing.assert_allclose(bar.error_y.array, [20.0, 10.0])
    np.testing.assert_allclose(bar.error_y.arrayminus, [10.0, 10.0])
    assert bar.marker.color == plots.PALETTE[0]
    assert fig.layout.title.text == "Half reach step 1"
    assert (fig.layout.xaxis.title.text, fig.layout.yaxis.title.text) == ("step", "rate")
    assert bar.text is None


def test_bar_with_ci_colour_text_and_titles(rates: pd.DataFrame) -> None:
    fig = plots.bar_with_ci(
        rates,
        x="step",
        y="rate",
        low="lo",
        high="hi",
        title="t",
        x_title="funnel step",
        y_title="share (%)",
        color=plots.PALETTE[2],
        text="label",
        height=300,
    )
    bar = fig.data[0]
    np.testing.assert_allclose(bar.y, [0.5, 0.2])  # not scaled without percent
    assert bar.marker.color == plots.PALETTE[2]
    # the labels are annotations beyond the whiskers; the bars keep them for hover only
    assert list(bar.text) == ["50%", "20%"] and bar.textposition == "none"
    assert [a.text for a in fig.layout.annotations] == ["50%", "20%"]
    assert (fig.layout.xaxis.title.text, fig.layout.yaxis.title.text) == (
        "funnel step",
        "share (%)",
    )
    assert fig.layout.height == 300


def test_table_shows_headers_and_cells() -> None:
    df = pd.DataFrame({"persona": ["a", "b"], "n": [3, 4]})
    fig = plots.table(df, title="Two personas")
    assert len(fig.data) == 1 and isinstance(fig.data[0], go.Table)
    assert list(fig.data[0].header.values) == ["persona", "n"]
    assert [list(c) for c in fig.data[0].cells.values] == [["a", "b"], [3, 4]]
    assert fig.layout.title.text == "Two personas"
    assert fig.layout.template.layout.colorway == pio.templates["cxkit"].layout.colorway


def test_heatmap_labels_percent_cells_and_leaves_nan_blank() -> None:
    df = pd.DataFrame({"0": [1.0, 0.5], "1": [0.25, np.nan]}, index=["2024-01", "2024-02"])
    fig = plots.heatmap(df, title="Retention fades", x_title="months since", y_title="cohort")
    assert len(fig.data) == 1
    hm = fig.data[0]
    assert isinstance(hm, go.Heatmap)
    np.testing.assert_allclose(np.asarray(hm.z, dtype=float), [[100, 25], [50, np.nan]])
    assert [list(r) for r in hm.text] == [["100%", "25%"], ["50%", ""]]
    assert list(hm.x) == ["0", "1"] and list(hm.y) == ["2024-01", "2024-02"]
    assert [tuple(c) for c in hm.colorscale] == [tuple(c) for c in plots.SEQUENTIAL]
    assert fig.layout.yaxis.autorange == "reversed"  # first cohort on top
    assert fig.layout.height == 320  # at least 320, else 22 per row
    assert fig.layout.xaxis.title.text == "months since"


def test_heatmap_of_counts_and_tall_tables() -> None:
    df = pd.DataFrame({"a": np.arange(20.0)}, index=[f"r{i}" for i in range(20)])
    fig = plots.heatmap(df, title="t", x_title="x", y_title="y", percent=False)
    assert fig.layout.height == 22 * 20
    assert list(fig.data[0].text[3]) == ["3"]
    assert fig.data[0].colorbar.title.text == ""


def test_stacked_bars_one_trace_per_column_in_palette_order() -> None:
    df = pd.DataFrame({"month": ["2024-01", "2024-02"], "new": [5, 6], "dormant": [2, 3]})
    fig = plots.stacked_bars(
        df, x="month", ys=["new", "dormant"], title="t", y_title="customers", negative=["dormant"]
    )
    assert [t.name for t in fig.data] == ["new", "dormant"]
    assert [t.marker.color for t in fig.data] == plots.PALETTE[:2]
    assert list(fig.data[0].y) == [5, 6]
    assert list(fig.data[1].y) == [-2, -3]  # drawn below zero
    assert list(fig.data[0].x) == ["2024-01", "2024-02"]
    assert fig.layout.barmode == "relative"
    assert (fig.layout.xaxis.title.text, fig.layout.yaxis.title.text) == ("month", "customers")


def test_sankey_nodes_links_and_one_colour_per_state() -> None:
    links = pd.DataFrame(
        {
            "source": ["1. new", "1. new", "2. active"],
            "target": ["2. active", "2. lost", "3. lost"],
            "customers": [5, 3, 2],
        }
    )
    fig = plots.sankey(links, title="Most new customers stay active")
    assert len(fig.data) == 1
    sk = fig.data[0]
    assert isinstance(sk, go.Sankey)
    assert list(sk.node.label) == ["1. new", "2. active", "2. lost", "3. lost"]
    assert list(sk.link.source) == [0, 0, 1]
    assert list(sk.link.target) == [1, 2, 3]
    assert list(sk.link.value) == [5, 3, 2]
    # colours by state name (sorted: active, lost, new), the same at every step
    new, active, lost = plots.PALETTE[2], plots.PALETTE[0], plots.PALETTE[1]
    assert list(sk.node.color) == [new, active, lost, lost]
    assert fig.layout.title.text == "Most new customers stay active"
    assert fig.layout.height == 480


def test_show_displays_the_figure(monkeypatch: pytest.MonkeyPatch) -> None:
    shown: list[object] = []
    monkeypatch.setattr(plots, "display", shown.append)
    fig = plots.figure("t")
    plots.show(fig)
    assert shown == [fig]


# --------------------------------------------------------------------------------------
# untrusted text: markup from the data is shown literally, never rendered
# --------------------------------------------------------------------------------------

LINK = '<a href="https://evil.example">x</a>'
HOSTILE = [LINK, '<span style="color:red">web</span> & <b>app</b>', "R&D &quot;co&quot; & 5 > 3"]
#: the entities plotly's text renderer decodes (svg_text_utils.convertEntities)
_PLOTLY_ENTITIES = {"mu": "μ", "amp": "&", "lt": "<", "gt": ">", "nbsp": "\xa0"}
_PLOTLY_ENTITIES |= {"times": "×", "plusmn": "±", "deg": "°"}


def _shown(label: str) -> str:
    """The text plotly draws for ``label``; fails on any tag but a line break."""
    tags = re.findall(r"<[^<>]*>", label)
    assert all(re.fullmatch(r"<br\s*/?>", t, re.I) for t in tags), (label, tags)

    def entity(m: re.Match[str]) -> str:
        code = m.group(1)
        if code.startswith("#x"):
            return chr(int(code[2:], 16))
        if code.startswith("#"):
            return chr(int(code[1:]))
        return _PLOTLY_ENTITIES.get(code, m.group(0))

    return re.sub(r"&(#\d+|#x[\da-fA-F]+|[a-z]+);", entity, label)


def _strings(obj: object) -> list[str]:
    """Every string in a figure's JSON (decoded), the template left out."""
    if isinstance(obj, str):
        return [obj]
    if isinstance(obj, dict):
        return [s for k, v in obj.items() if k != "template" for s in _strings(v)]
    if isinstance(obj, list):
        return [s for v in obj for s in _strings(v)]
    return []


def _assert_literal(fig: go.Figure, *originals: str) -> None:
    """No markup from the data in the figure, and each original drawn as typed."""
    text = fig.to_json()
    assert "<a" not in text and "\\u003ca" not in text.lower()
    strings = _strings(fig.to_plotly_json())
    for s in strings:
        assert "<a" not in s and "<span" not in s and "<b>" not in s, s
    shown = {_shown(s) for s in strings}
    for original in originals:
        assert any(original in s for s in shown), (original, sorted(shown)[:20])


def test_escape_label_shows_markup_literally_and_is_idempotent() -> None:
    for text in HOSTILE:
        once = plots.escape_label(text)
        assert _shown(once) == text
        assert plots.escape_label(once) == once
    assert plots.escape_label("7+<br>n=3") == "7+<br>n=3"  # a line break stays one
    # an entity plotly decodes is kept (that is what makes escaping twice harmless): it
    # shows as the character it stands for, still as text, never as markup
    assert plots.escape_label("&lt;a&gt; &amp;") == "&lt;a&gt; &amp;"
    assert plots.escape_label(["<b>a</b>", 3, None]) == ["&lt;b&gt;a&lt;/b&gt;", 3, None]
    assert plots.escape_label(pd.Index(["<i>"])) == ["&lt;i&gt;"]
    assert plots.escape_label(2.5) == 2.5


def test_helpers_show_markup_from_the_data_literally() -> None:
    df = pd.DataFrame({"channel": HOSTILE, "rate": [0.5, 0.2, 0.1], "lo": [0.4, 0.1, 0.0]}).assign(
        hi=lambda d: d.rate + 0.1, label=HOSTILE
    )
    bars = plots.bar_with_ci(
        df, x="channel", y="rate", low="lo", high="hi", text="label", title=f"{LINK} wins",
        x_title=LINK, y_title=HOSTILE[1],
    )  # fmt: skip
    _assert_literal(bars, *HOSTILE, f"{LINK} wins")
    assert [_shown(v) for v in bars.data[0].x] == HOSTILE
    _assert_literal(plots.table(df[["channel"]].rename(columns={"channel": LINK})), *HOSTILE)
    heat = plots.heatmap(
        pd.DataFrame([[0.1, 0.2]], index=[HOSTILE[1]], columns=[LINK, "b"]),
        title="t", x_title="x", y_title="y",
    )  # fmt: skip
    _assert_literal(heat, LINK, HOSTILE[1])
    stacked = plots.stacked_bars(
        pd.DataFrame({"period": HOSTILE, LINK: [1, 2, 3]}), x="period", ys=[LINK], title="t"
    )
    _assert_literal(stacked, *HOSTILE)
    assert [t.name for t in stacked.data] == [plots.escape_label(LINK)]
    links = pd.DataFrame(
        {"source": [f"1. {LINK}", "1. web"], "target": [f"2. {HOSTILE[1]}", "2. web"]}
    ).assign(customers=[3, 2])
    sk = plots.sankey(links, title=f"Most journeys start at {LINK}")
    _assert_literal(sk, f"1. {LINK}", f"2. {HOSTILE[1]}", f"Most journeys start at {LINK}")
    # one colour per state, decided on the names as given
    assert len(set(sk.data[0].node.color)) == 3


def test_domain_figures_show_markup_from_the_data_literally() -> None:
    mix = pd.DataFrame(
        {"table": ["orders", "orders", "events"], "channel": [LINK, "web", HOSTILE[1]]}
    ).assign(rows=[5, 3, 2], share=[0.625, 0.375, 1.0])
    _assert_literal(health.channel_figure(mix), LINK, HOSTILE[1])
    scores = pd.DataFrame(
        {"channel": [LINK, "web"], "nps": [10.0, 20.0], "nps_low": [0.0, 10.0]}
    ).assign(nps_high=[20.0, 30.0], n=[40, 50], small_n=[False, False])
    _assert_literal(voc.plot_scores(scores, x="channel", title=f"{LINK} is worst"), LINK)
    channels = pd.DataFrame(
        {"persona_name": [HOSTILE[1]] * 2, "channel": [LINK, "web"], "stage": ["purchase"] * 2}
    ).assign(share=[0.4, 0.6])
    _assert_literal(persona_plots.plot_persona_channels(channels, HOSTILE[1]), LINK, HOSTILE[1])


# --------------------------------------------------------------------------------------
# labels that do not collide (issue 21): bar labels beyond the whiskers, axes from zero,
# quadrant labels placed apart
# --------------------------------------------------------------------------------------


def _signed_bars() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "channel": ["app", "email", "web"],
            "nps": [-3.4, -8.5, 12.0],
            "nps_low": [-7.5, -11.2, 4.0],
            "nps_high": [0.8, -5.8, 20.0],
            "n": [1132, 2578, 12],
            "small_n": [False, False, True],
        }
    )


def test_bar_labels_sit_beyond_the_end_of_each_interval() -> None:
    df = _signed_bars()
    fig = voc.plot_scores(df, x="channel", title="NPS by channel")
    notes = list(fig.layout.annotations)
    assert [a.text for a in notes] == ["n=1,132", "n=2,578", "n=12 (small)"]
    for a, (_, r) in zip(notes, df.iterrows(), strict=True):
        assert a.x == r.channel
        if r.nps >= 0:  # above the upper whisker, growing upwards
            assert a.y >= r.nps_high and a.yanchor == "bottom" and a.yshift > 0
        else:  # below the lower whisker, growing downwards
            assert a.y <= r.nps_low and a.yanchor == "top" and a.yshift < 0
    assert fig.data[0].textposition == "none"  # nothing drawn inside the bar either


def test_bar_axis_includes_zero_the_intervals_and_room_for_the_labels() -> None:
    df = _signed_bars()
    fig = voc.plot_scores(df, x="channel", title="t")
    bottom, top = fig.layout.yaxis.range
    assert bottom < df.nps_low.min() and top > df.nps_high.max()
    plot_px = fig.layout.height - 150
    px_per_unit = plot_px / (top - bottom)
    # a label (one line, ~17 px) fits between each interval's end and the axis's end
    assert (top - df.nps_high.max()) * px_per_unit >= 17
    assert (df.nps_low.min() - bottom) * px_per_unit >= 17
    pos = df.assign(nps=[30.0, 40.0, 50.0], nps_low=[20.0, 30.0, 45.0], nps_high=[35.0] * 3)
    assert voc.plot_scores(pos, x="channel", title="t").layout.yaxis.range[0] == 0


def test_bars_without_labels_still_start_at_zero() -> None:
    df = pd.DataFrame({"g": ["a", "b"], "v": [0.9, 0.95], "lo": [0.88, 0.93], "hi": [0.92, 0.97]})
    fig = plots.bar_with_ci(df, x="g", y="v", low="lo", high="hi", title="t")
    # plotly's range from zero: it also fits a line a caller adds (clv's model line)
    assert fig.layout.yaxis.rangemode == "tozero" and fig.layout.yaxis.range is None
    fixed = plots.bar_with_ci(df, x="g", y="v", low="lo", high="hi", title="t", y_range=(0.3, 1))
    assert list(fixed.layout.yaxis.range) == [0, 1]  # a range that leaves out zero is widened


def test_auc_chart_axis_runs_from_zero_to_one_with_guessing_marked() -> None:
    metrics = pd.DataFrame(
        {
            "model": ["model", "logistic", "bgnbd"],
            "label": ["Gradient boosting", "Logistic regression", "BG/NBD"],
            "roc_auc": [0.906, 0.899, 0.558],
            "roc_auc_low": [0.899, 0.893, 0.545],
            "roc_auc_high": [0.913, 0.906, 0.571],
        }
    )
    result = type("R", (), {"backtest": type("B", (), {"metrics": metrics})()})()
    fig = churn.model_auc_chart(result)
    assert list(fig.layout.yaxis.range) == [0, 1]  # was [0.3, 1]: bars looked 2x apart
    (line,) = fig.layout.shapes
    assert line.y0 == line.y1 == 0.5 and line.line.dash == "dash"
    assert any("guessing" in (a.text or "") for a in fig.layout.annotations)


#: the key drivers of the demo report (baseline), whose labels collided
KEY_DRIVERS = pd.DataFrame(
    [
        ("csat_delivery", 690, 75.16, 37.99, 8.86, 58.95),
        ("csat_product", 152, 61.92, 20.5, 2.65, 39.14),
        ("csat_onboarding", 104, 67.43, 19.33, 0.74, 41.61),
        ("ces_billing", 81, 64.71, 13.99, 0.19, 33.8),
        ("csat_returns", 94, 61.17, 3.54, 0.1, 19.41),
        ("csat_billing", 141, 67.46, 2.29, 0.04, 20.24),
        ("csat_checkout", 390, 79.99, 1.45, 0.02, 15.8),
        ("ces_returns", 45, 66.85, 0.69, 0.03, 14.62),
        ("ces_product", 76, 58.66, 0.16, 0.06, 12.74),
        ("ces_onboarding", 44, 54.17, 0.03, 0.03, 10.09),
        ("ces_delivery", 90, 56.67, 0.03, 0.05, 8.09),
    ],
    columns=[
        "driver", "n_observed", "performance_0_100", "importance_pct",
        "importance_low_pct", "importance_high_pct",
    ],
)  # fmt: skip


def _label_layout(fig: go.Figure) -> tuple[list, list, float]:
    """The point labels' and the quadrant names' boxes (px), as the placement sees them."""
    tr = fig.data[0]
    (x0, x1), (y0, y1) = fig.layout.xaxis.range, fig.layout.yaxis.range
    w, h = plots.LABEL_PLOT_WIDTH, fig.layout.height - 150
    px = (np.asarray(tr.x) - x0) / (x1 - x0) * w
    py = (y1 - np.asarray(tr.y)) / (y1 - y0) * h
    boxes = plots.label_boxes(px, py, list(tr.text), list(tr.textposition))
    names = []
    for a in fig.layout.annotations:
        bw, bh = 0.58 * 13 * len(a.text) + 4, 1.3 * 13
        left = 0 if a.xanchor == "left" else w - bw
        top = 0 if a.yanchor == "top" else h - bh
        names.append((left, top, left + bw, top + bh))
    return boxes, names, w


def _overlaps(a: tuple, b: tuple) -> bool:
    return min(a[2], b[2]) > max(a[0], b[0]) and min(a[3], b[3]) > max(a[1], b[1])


def test_quadrant_labels_collide_with_no_label_and_no_quadrant_name() -> None:
    fig = voc.plot_drivers_quadrant(KEY_DRIVERS)
    boxes, names, w = _label_layout(fig)
    assert len(names) == 4 and {a.text for a in fig.layout.annotations} == {
        "fix first", "keep up", "lower priority", "possible overkill",
    }  # fmt: skip
    for i, a in enumerate(boxes):
        assert not any(_overlaps(a, b) for b in boxes[i + 1 :]), fig.data[0].text[i]
        assert not any(_overlaps(a, n) for n in names), fig.data[0].text[i]
        assert a[0] >= -1 and a[2] <= w + 1  # inside the plot
    # the names sit in bands the points leave free (above and below every point)
    (y0, y1) = fig.layout.yaxis.range
    assert y1 > KEY_DRIVERS.performance_0_100.max() and y0 < KEY_DRIVERS.performance_0_100.min()


def test_the_old_single_position_collides_so_the_test_can_fail() -> None:
    fig = voc.plot_drivers_quadrant(KEY_DRIVERS)
    fig.data[0].textposition = ["top center"] * len(KEY_DRIVERS)  # what the chart did
    boxes, _, _ = _label_layout(fig)
    clash = [
        (i, j) for i in range(len(boxes)) for j in range(i + 1, len(boxes))
        if _overlaps(boxes[i], boxes[j])
    ]  # fmt: skip
    assert clash


def test_label_positions_spread_crowded_points() -> None:
    x = np.array([1.0, 1.1, 1.2, 3.0])  # three labels side by side would overlap
    y = np.array([5.0, 5.1, 4.9, 5.0])
    labels = ["first label", "second label", "third", "far away"]
    pos = plots.label_positions(x, y, labels, x_range=(0, 4), y_range=(0, 10), height=300)
    px = x / 4 * plots.LABEL_PLOT_WIDTH
    py = (10 - y) / 10 * 300
    boxes = plots.label_boxes(px, py, labels, pos)
    assert not any(_overlaps(a, b) for i, a in enumerate(boxes) for b in boxes[i + 1 :])
    assert pos[3] == "top center"  # a point with room keeps the default
