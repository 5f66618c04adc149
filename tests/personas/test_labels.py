"""Tests for cxkit.personas.labels: persona labels per customer and where they come from."""

from __future__ import annotations

import importlib

import pandas as pd
import pytest

import cxkit
from cxkit import personas as P
from tests.personas._data import tiny


@pytest.mark.slow
def test_persona_labels_from_the_report(demo_data, demo_report) -> None:
    labels = P.persona_labels(demo_data, report=demo_report)
    assert labels.name == "persona" and labels.index.name == "customer_id"
    assert labels.to_dict() == dict(
        zip(demo_report.assignments.customer_id, demo_report.assignments.persona_name, strict=True)
    )


@pytest.mark.slow
def test_resolve_falls_back_to_the_model(demo_data, demo_report) -> None:
    labels, note = P.resolve_persona_labels(demo_data)
    assert note == "personas from the personas report's model"
    pd.testing.assert_series_equal(labels, P.persona_labels(demo_data, report=demo_report))


def test_resolve_prefers_given_labels(tmp_path) -> None:
    tabs = tiny()
    tabs["customers"] = tabs["customers"].assign(persona=["x", "y", "x"])
    labels, note = P.resolve_persona_labels(cxkit.load(tabs))
    assert note == "persona labels from the customers table"
    assert labels.to_dict() == {"a": "x", "b": "y", "c": "x"}
    path = tmp_path / "labels.csv"
    pd.DataFrame({"customer_id": ["a"], "persona": ["z"]}).to_csv(path, index=False)
    labels, note = P.resolve_persona_labels(cxkit.load(tiny()), source=str(path))
    assert labels.to_dict() == {"a": "z"} and note == "persona labels from labels.csv"


def test_resolve_without_source_or_data() -> None:
    labels, note = P.resolve_persona_labels(cxkit.load(tiny()), source=None)
    assert labels is None and note == "no persona labels were given"
    # nothing to cluster on: no labels, and the note says why
    responses = tiny()["responses"]
    labels, note = P.resolve_persona_labels(cxkit.load({"responses": responses}))
    assert labels is None
    assert note.startswith("no persona labels: ") and "'orders' or 'events'" in note


@pytest.mark.slow
def test_labels_need_only_the_model_fit(demo_data, demo_report, monkeypatch) -> None:
    """persona_labels fits the model alone (fit_personas), not the journey map or themes."""
    analysis = importlib.import_module("cxkit.personas.analysis")

    def no_journeys(*_a: object, **_k: object) -> None:
        raise AssertionError("persona_labels built the journey map")

    monkeypatch.setattr(analysis, "journey_map", no_journeys)
    fit = P.fit_personas(demo_data)
    assert fit.journey is None and fit.themes is None
    pd.testing.assert_frame_equal(fit.assignments, demo_report.assignments)
    pd.testing.assert_series_equal(
        P.persona_labels(demo_data), P.persona_labels(demo_data, report=demo_report)
    )
