"""Tests for cxkit.personas.plots: every figure and the cards build from the demo result."""

from __future__ import annotations

import numpy as np
import pytest

from cxkit import personas as P


@pytest.mark.slow
def test_figures_show_the_result(demo_report) -> None:
    rep = demo_report
    fig = P.plot_k_selection(rep.model)
    assert len(fig.data) == 3 and fig.layout.title.text.startswith("5 personas")
    np.testing.assert_array_equal(fig.data[0].y, rep.model.k_selection_.inertia)
    points = P.pca_map(rep.model, rep.features, sample=500, random_state=0)
    fig = P.plot_pca_map(points)
    assert sum(len(t.x) for t in fig.data) == 500 and len(fig.data) == 5
    fig = P.plot_profiles(rep.model, top=6)
    assert fig.data[0].z.shape == (5, 6)
    fig = P.plot_journey(rep.journey)
    reach = rep.journey.pivot(index="persona_name", columns="stage", values="reach")
    assert fig.data[0].z.shape == reach.shape and fig.layout.title.text.endswith("'")
    name = rep.model.names_[0]
    fig = P.plot_persona_channels(rep.channels, name)
    assert fig.layout.title.text.startswith(name) and list(fig.data[0].x) == list(P.STAGES)


@pytest.mark.slow
def test_cards_escape_and_list_every_persona(demo_report, monkeypatch) -> None:
    shown = []
    monkeypatch.setattr("cxkit.personas.plots.display", shown.append)
    P.show_cards(demo_report)
    html = shown[0].data
    assert html.count('class="cx-card"') == 5
    assert all(name in html for name in demo_report.model.names_)
    assert "rule: " in html and "pain point: " in html
