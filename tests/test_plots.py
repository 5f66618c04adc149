"""cxkit.plots: one template, one palette, and figures with the traces and labels asked for."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import plotly.io as pio
import pytest

from cxkit import health, plots, voc
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
    assert list(bar.text) == ["50%", "20%"] and bar.textposition == "outside"
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
