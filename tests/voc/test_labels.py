"""Tests for cxkit.voc.labels: persona labels that come with the data, never from a model."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

import cxkit
from cxkit import voc
from cxkit.errors import UsageError
from cxkit.voc.labels import persona_frame
from tests.voc.helpers import responses

CUSTOMERS = pd.DataFrame({"customer_id": ["A", "B", "C"], "persona": ["p", "q", "p"]})


def test_labels_from_the_customers_table() -> None:
    labels, note = voc.persona_labels(cxkit.load({"customers": CUSTOMERS}))
    assert note == "persona labels from the customers table"
    assert labels.to_dict() == {"A": "p", "B": "q", "C": "p"}


def test_labels_from_the_data_folder_and_from_a_file(tmp_path: Path) -> None:
    data = cxkit.load({"customers": CUSTOMERS.drop(columns="persona")})
    CUSTOMERS.to_parquet(tmp_path / "_personas.parquet", index=False)
    labels, note = voc.persona_labels(data, folder=tmp_path)
    assert note == "persona labels from _personas.parquet"
    assert labels.to_dict() == {"A": "p", "B": "q", "C": "p"}
    CUSTOMERS.assign(customer_id=["007", "B", "C"]).to_csv(tmp_path / "mine.csv", index=False)
    labels, note = voc.persona_labels(data, str(tmp_path / "mine.csv"))
    assert note == "persona labels from mine.csv"
    assert labels.index[0] == "007"  # IDs stay strings
    pd.testing.assert_series_equal(labels, voc.load_personas(tmp_path / "mine.csv"))


def test_no_labels_is_a_note_not_an_error(tmp_path: Path) -> None:
    data = cxkit.load({"customers": CUSTOMERS.drop(columns="persona")})
    assert voc.persona_labels(data, None) == (None, "no persona labels were given")
    labels, note = voc.persona_labels(data, folder=tmp_path)
    assert labels is None
    assert (
        note
        == "no persona labels in the customers table or a _personas.parquet file in the data folder"
    )
    assert voc.persona_labels(data) == (None, "no persona labels in the customers table")


def test_bad_label_files_say_what_is_wrong(tmp_path: Path) -> None:
    data = cxkit.load({"customers": CUSTOMERS})
    with pytest.raises(UsageError, match="personas file not found"):
        voc.persona_labels(data, str(tmp_path / "missing.parquet"))
    CUSTOMERS.rename(columns={"persona": "segment"}).to_csv(tmp_path / "bad.csv", index=False)
    with pytest.raises(UsageError, match="must have columns 'customer_id' and 'persona'"):
        voc.load_personas(tmp_path / "bad.csv")


def test_persona_frame_shapes() -> None:
    series = pd.Series(["p", "q"], index=["A", "B"])
    expected = pd.DataFrame({"customer_id": ["A", "B"], "persona": ["p", "q"]})
    pd.testing.assert_frame_equal(persona_frame(series), expected)
    other = pd.DataFrame({"customer_id": ["A", "B", "B"], "cluster": ["p", "q", "q"]})
    pd.testing.assert_frame_equal(persona_frame(other), expected)
    with pytest.raises(UsageError, match="must have columns 'customer_id' and 'persona'"):
        persona_frame(pd.DataFrame({"customer_id": ["A"], "x": [1], "y": [2]}))
    with pytest.raises(UsageError, match="must be a pandas Series or DataFrame, got list"):
        persona_frame(["p"])  # type: ignore[arg-type]
    # the labels work as a breakdown
    r = responses([("A", 0, "nps", 10, "web", "x", None), ("B", 0, "nps", 0, "web", "x", None)])
    by = voc.nps(cxkit.load({"responses": r}), by="persona", personas=series)
    assert by.set_index("persona")["nps"].to_dict() == {"p": 100.0, "q": -100.0}


def test_voc_never_imports_personas() -> None:
    """personas uses voc.themes; voc must not import personas (no import cycle)."""
    code = "import sys, cxkit.voc; print('cxkit.personas' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert (out.returncode, out.stdout.strip()) == (0, "False"), out.stderr
