"""The experiments notebook on data without assignments: a note, never an error.

(On the 2,000-customer demo it runs under nbval in ``tests/test_notebooks.py``.)
"""

from __future__ import annotations

import os
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.slow]


def test_notebook_on_cdnow_says_the_readout_is_not_available(tmp_path: Path) -> None:
    import papermill as pm

    from cxkit.report import extract_headline

    os.environ.setdefault("PLOTLY_RENDERER", "plotly_mimetype")
    out = tmp_path / "experiments.ipynb"
    pm.execute_notebook(
        ROOT / "notebooks" / "60_experiments.ipynb",
        out,
        parameters={"data": str(ROOT / "data" / "cdnow")},
        cwd=str(ROOT / "notebooks"),
        kernel_name="python3",
        progress_bar=False,
    )
    nb = nbformat.read(out, as_version=4)
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    html = "".join("".join(o.get("data", {}).get("text/html", "")) for o in outputs)
    note = "The experiment readout is not available: this needs the table &#x27;assignments&#x27;"
    assert extract_headline(nb) == note.replace("&#x27;", "'")
    assert html.count(f'<div class="cx-not-available">{note}</div>') >= 3
    text = "".join(o.get("text", "") for o in outputs if o.get("output_type") == "stream")
    assert "as of 1998-06-30: no experiment assignments" in text
