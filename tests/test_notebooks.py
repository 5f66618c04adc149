"""Every notebook runs under ``pytest --nbval-lax`` on the 2,000-customer demo.

Committed notebooks carry no outputs, so the expected text of each ``# NBVAL_CHECK_OUTPUT``
cell lives in ``tests/nbval_expected.json`` (per notebook, by the cell's position among the
check cells). The test copies the notebook to a temporary folder, injects the demo path
with papermill's ``parameterize_notebook``, puts the expected outputs into the check cells
and runs nbval on the copy in a subprocess. After a deliberate change of a key number,
record the new values with::

    .venv/bin/python tests/test_notebooks.py --record
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
EXPECTED = Path(__file__).with_name("nbval_expected.json")
CHECK = "# NBVAL_CHECK_OUTPUT"
REQUIRED_PARAMETERS = ("data", "as_of", "interactive")


def _check_cells(nb: Any) -> list[Any]:
    return [c for c in nb.cells if c.cell_type == "code" and c.source.lstrip().startswith(CHECK)]


def _parameterized(path: Path, data: Path) -> Any:
    from papermill.iorw import load_notebook_node
    from papermill.parameterize import parameterize_notebook

    nb = load_notebook_node(str(path))  # gives every cell the metadata papermill expects
    return parameterize_notebook(nb, {"data": str(data)}, kernel_name="python3", language="python")


def _expected() -> dict[str, Any]:
    return json.loads(EXPECTED.read_text()) if EXPECTED.exists() else {}


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_committed_notebook_has_no_outputs_and_a_parameters_cell(path: Path) -> None:
    from cxkit.report import notebook_parameters

    nb = nbformat.read(path, as_version=4)
    with_outputs = [i for i, c in enumerate(nb.cells) if c.cell_type == "code" and c.outputs]
    counted = [i for i, c in enumerate(nb.cells) if c.cell_type == "code" and c.execution_count]
    assert with_outputs == [] and counted == [], f"{path.name}: clear outputs before committing"
    declared = notebook_parameters(path) or {}
    missing = [p for p in REQUIRED_PARAMETERS if p not in declared]
    assert missing == [], f"{path.name}: the 'parameters' cell must declare {missing}"


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_runs_under_nbval(path: Path, demo_dir: Path, tmp_path: Path) -> None:
    nb = _parameterized(path, demo_dir)
    expected = _expected().get(path.name, {})
    for k, cell in enumerate(_check_cells(nb)):
        if str(k) not in expected:
            pytest.fail(
                f"{path.name}: no recorded output for NBVAL_CHECK_OUTPUT cell #{k}; run "
                "`.venv/bin/python tests/test_notebooks.py --record` and review the diff"
            )
        cell.outputs = [nbformat.from_dict(o) for o in expected[str(k)]]
        cell.execution_count = k + 1  # nbval ignores outputs of cells marked as never run
    copy = tmp_path / path.name
    nbformat.write(nb, copy)
    (tmp_path / "pytest.ini").write_text("[pytest]\naddopts =\n")
    env = {**os.environ, "PLOTLY_RENDERER": "plotly_mimetype"}
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "--nbval-lax",
            "--nbval-current-env",
            "-p",
            "no:cacheprovider",
            "-c",
            str(tmp_path / "pytest.ini"),
            "--rootdir",
            str(tmp_path),
            str(copy),
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, f"{path.name} failed under nbval:\n{proc.stdout[-6000:]}"


# --------------------------------------------------------------------------------------
# recording the expected outputs
# --------------------------------------------------------------------------------------


def _record(data: Path, names: list[str], workdir: Path) -> dict[str, Any]:
    import papermill as pm

    out: dict[str, Any] = _expected()
    for path in NOTEBOOKS:
        if names and path.name not in names:
            continue
        executed = workdir / f"executed_{path.name}"
        os.environ.setdefault("PLOTLY_RENDERER", "plotly_mimetype")
        pm.execute_notebook(
            path,
            executed,
            parameters={"data": str(data)},
            cwd=str(path.parent),
            kernel_name="python3",
            progress_bar=False,
        )
        nb = nbformat.read(executed, as_version=4)
        outs = {}
        for k, cell in enumerate(_check_cells(nb)):
            kept = []
            for o in cell.outputs:
                o = dict(o)
                o.pop("execution_count", None)
                o.pop("metadata", None)
                if o.get("output_type") == "execute_result":
                    o = {"output_type": "display_data", "data": o["data"], "metadata": {}}
                kept.append(o)
            outs[str(k)] = kept
        out[path.name] = outs
        print(f"recorded {len(outs)} check cell(s) of {path.name}")
    return out


if __name__ == "__main__":
    import argparse
    import tempfile

    parser = argparse.ArgumentParser(description="record NBVAL_CHECK_OUTPUT expectations")
    parser.add_argument("--record", action="store_true", required=True)
    parser.add_argument("--data", default=None, help="demo folder (default: a fresh 2k seed-7)")
    parser.add_argument("names", nargs="*", help="notebook file names (default: all)")
    args = parser.parse_args()
    sys.path.insert(0, str(Path(__file__).parent))
    from conftest import DEMO_CUSTOMERS, DEMO_SEED

    with tempfile.TemporaryDirectory() as tmp:
        if args.data:
            data = Path(args.data).resolve()
        else:
            from cxkit import synth

            data = synth.write_demo(Path(tmp) / "demo", customers=DEMO_CUSTOMERS, seed=DEMO_SEED)
        recorded = _record(Path(data), args.names, Path(tmp))
    EXPECTED.write_text(json.dumps(recorded, indent=1, sort_keys=True) + "\n")
    print(f"wrote {EXPECTED}")


@pytest.mark.slow
def test_data_health_says_what_is_missing_on_orders_only_data(tmp_path: Path) -> None:
    import papermill as pm

    from cxkit.report import extract_headline

    os.environ.setdefault("PLOTLY_RENDERER", "plotly_mimetype")
    out = tmp_path / "health.ipynb"
    pm.execute_notebook(
        ROOT / "notebooks" / "00_data_health.ipynb",
        out,
        parameters={"data": str(ROOT / "data" / "cdnow")},
        cwd=str(ROOT / "notebooks"),
        kernel_name="python3",
        progress_bar=False,
    )
    nb = nbformat.read(out, as_version=4)
    html = "".join(
        "".join(o.get("data", {}).get("text/html", ""))
        for c in nb.cells
        if c.cell_type == "code"
        for o in c.outputs
    )
    assert (
        extract_headline(nb)
        == "1 of 4 tables present with 2,357 customers; validation: 0 error(s), 0 warning(s)"
    )
    assert "The &#x27;events&#x27; table is missing." in html
    assert "coverage of events, responses is not available" in html
    assert "channel mix is not available" in html
