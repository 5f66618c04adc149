"""Broken output folders and reports files, and markup in the data (issue 22).

Each variant of ``cxkit report`` builds a broken setup in ``tmp_path`` — an output folder
that is a file or cannot be written, a reports file that is not UTF-8, a report whose
notebook is no notebook — and runs the command in-process. It must exit 2 without a
traceback, with a message naming the path and the fix, before any notebook runs, with
nothing created or overwritten. Markup in a category value of the data (an ``<a href>``
in ``orders.channel``) must give an OK data-health report in which it is plain text,
never a link.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import nbformat
import pandas as pd
import pytest

from cxkit import synth
from cxkit.cli import main
from cxkit.report.export import plotly_js

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "reports.yml"
LINK = '<a href="https://evil.example">x</a>'


def _permissions_apply() -> bool:
    """Tell whether a read-only folder stops this process (not for root: os.geteuid() 0)."""
    if os.geteuid() != 0:
        return True
    # root without CAP_DAC_OVERRIDE (e.g. under setpriv) is stopped like anyone else
    with tempfile.TemporaryDirectory() as tmp:
        locked = Path(tmp) / "locked"
        locked.mkdir(mode=0o500)
        try:
            (locked / "probe").touch()
        except PermissionError:
            return True
        finally:
            locked.chmod(0o700)
    return False


PERMISSIONS_APPLY = _permissions_apply()
#: As root, the permission variants run the command without the capabilities that let
#: root ignore file modes (util-linux setpriv, part of every Debian system).
SETPRIV = shutil.which("setpriv")
NO_OVERRIDE = ["--bounding-set", "-dac_override,-dac_read_search,-fowner"]
ROOT_SKIP = "running as root without setpriv: file permissions do not stop root"


def _run_without_override(args: list[str]) -> tuple[int, str]:
    """Run ``cxkit`` as root without CAP_DAC_OVERRIDE: file modes stop it as anyone."""
    assert SETPRIV is not None
    proc = subprocess.run(
        [SETPRIV, *NO_OVERRIDE, sys.executable, "-m", "cxkit.cli", *args],
        capture_output=True,
        text=True,
        timeout=300,
    )
    return proc.returncode, proc.stderr


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 300-customer demo as Parquet (seed 5)."""
    return synth.write_demo(tmp_path_factory.mktemp("small") / "demo", customers=300, seed=5)


@dataclass
class Setup:
    """A reports file with one tiny notebook, and an output folder from an earlier run."""

    root: Path
    config: Path
    out: Path
    notebook: Path

    def write_config(self, notebook: str = "tiny.ipynb", *, text: str | None = None) -> Path:
        self.config.write_text(
            text
            if text is not None
            else (
                f"data: {self.root / 'data'}\nout: {self.out}\n"
                f"reports:\n  - name: tiny\n    notebook: {notebook}\n"
            )
        )
        return self.config


@pytest.fixture
def setup(tmp_path: Path, small: Path) -> Setup:
    shutil.copytree(small, tmp_path / "data")
    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell("data = None\nas_of = None")
    params.metadata["tags"] = ["parameters"]
    nb.cells = [nbformat.v4.new_markdown_cell("# Tiny"), params]
    nbformat.write(nb, tmp_path / "tiny.ipynb")
    s = Setup(tmp_path, tmp_path / "reports.yml", tmp_path / "out", tmp_path / "tiny.ipynb")
    s.write_config()
    return s


def _snapshot(folder: Path) -> dict[str, bytes | None]:
    """Every path under ``folder`` with its bytes (None for folders)."""
    if not folder.exists():
        return {}
    return {
        str(p.relative_to(folder)): (None if p.is_dir() else p.read_bytes())
        for p in sorted(folder.rglob("*"))
    }


def _published_before(out: Path) -> None:
    """What an earlier run leaves: pages, the lock file and the run folders' folder."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "index.html").write_text("<p>the last good index</p>")
    (out / "tiny.html").write_text("<p>the last good report</p>")
    (out / ".cxkit-report.lock").write_text("")


# --------------------------------------------------------------------------------------
# the variants: each returns the extra command-line arguments and the words the message
# must contain (the path, what is wrong, the fix)
# --------------------------------------------------------------------------------------


def _out_is_a_file(s: Setup) -> tuple[list[str], list[str]]:
    target = s.root / "reports.html"
    target.write_text("not a folder")
    return ["--out", str(target)], [str(target), "is a file, not a folder", "pass another --out"]


def _out_under_a_file(s: Setup) -> tuple[list[str], list[str]]:
    parent = s.root / "afile"
    parent.write_text("x")
    return ["--out", str(parent / "sub")], [
        f"{parent / 'sub'} cannot be created",
        f"{parent} is a file",
        "pass another --out",
    ]


def _runs_is_a_file(s: Setup) -> tuple[list[str], list[str]]:
    _published_before(s.out)
    (s.out / "_runs").write_text("x")
    return [], [str(s.out / "_runs"), "is a file", "remove it or pass another --out"]


def _out_under_an_unwritable_parent(s: Setup) -> tuple[list[str], list[str]]:
    parent = s.root / "locked"
    parent.mkdir()
    parent.chmod(0o500)
    return ["--out", str(parent / "reports")], [
        f"{parent / 'reports'} cannot be created",
        f"its parent {parent} is not writable",
        "fix the folder's permissions",
    ]


def _unwritable_out_folder(s: Setup) -> tuple[list[str], list[str]]:
    """Before the fix the notebooks ran (``_runs`` is writable) and publishing failed."""
    _published_before(s.out)
    (s.out / "_runs").mkdir()  # writable, and so is the lock file: only publishing fails
    s.out.chmod(0o500)
    return [], [f"the output folder {s.out} is not writable", "fix the folder's permissions"]


def _latin1_reports_file(s: Setup) -> tuple[list[str], list[str]]:
    text = f"# Rapport générés\ndata: {s.root / 'data'}\nreports:\n  - name: tiny\n    notebook: tiny.ipynb\n"
    s.config.write_bytes(text.encode("latin-1"))
    return [], [str(s.config), "not UTF-8 text (byte 0xe9", "save the reports file as UTF-8"]


def _notebook_is_text(s: Setup) -> tuple[list[str], list[str]]:
    (s.root / "notes.ipynb").write_text("these are my notes, not a notebook\n")
    s.write_config("notes.ipynb")
    return [], [
        f"report 'tiny': notebook {s.root / 'notes.ipynb'} is not a Jupyter notebook",
        "set 'notebook' to a Jupyter .ipynb file",
    ]


def _notebook_is_other_json(s: Setup) -> tuple[list[str], list[str]]:
    (s.root / "data.json").write_text('{"cells": 5}')
    s.write_config("data.json")
    return [], [f"{s.root / 'data.json'} is not a Jupyter notebook", "set 'notebook' to"]


def _notebook_is_latin1(s: Setup) -> tuple[list[str], list[str]]:
    (s.root / "old.ipynb").write_bytes('{"cells": ["café"]}'.encode("latin-1"))
    s.write_config("old.ipynb")
    return [], [f"{s.root / 'old.ipynb'} is not a notebook (not UTF-8 text", "set 'notebook'"]


def _notebook_is_missing(s: Setup) -> tuple[list[str], list[str]]:
    s.write_config("missing.ipynb")
    return [], [f"{s.root / 'missing.ipynb'} does not exist", "set 'notebook' to"]


def _notebook_is_a_folder(s: Setup) -> tuple[list[str], list[str]]:
    (s.root / "folder.ipynb").mkdir()
    s.write_config("folder.ipynb")
    return [], [f"{s.root / 'folder.ipynb'} is a folder, not a notebook", "set 'notebook' to"]


VARIANTS: dict[str, Callable[[Setup], tuple[list[str], list[str]]]] = {
    "out_is_a_file": _out_is_a_file,
    "out_under_a_file": _out_under_a_file,
    "runs_is_a_file": _runs_is_a_file,
    "out_under_an_unwritable_parent": _out_under_an_unwritable_parent,
    "unwritable_out_folder": _unwritable_out_folder,
    "latin1_reports_file": _latin1_reports_file,
    "notebook_is_text": _notebook_is_text,
    "notebook_is_other_json": _notebook_is_other_json,
    "notebook_is_latin1": _notebook_is_latin1,
    "notebook_is_missing": _notebook_is_missing,
    "notebook_is_a_folder": _notebook_is_a_folder,
}
NEEDS_PERMISSIONS = {"out_under_an_unwritable_parent", "unwritable_out_folder"}


@pytest.mark.parametrize(
    "variant",
    [
        pytest.param(
            name,
            marks=pytest.mark.skipif(
                not PERMISSIONS_APPLY and SETPRIV is None and name in NEEDS_PERMISSIONS,
                reason=ROOT_SKIP,
            ),
        )
        for name in VARIANTS
    ],
)
def test_report_exits_2_before_anything_runs(
    variant: str, setup: Setup, capsys: pytest.CaptureFixture[str]
) -> None:
    extra, words = VARIANTS[variant](setup)
    before = _snapshot(setup.root)
    args = ["report", "--config", str(setup.config), *extra]
    try:
        if PERMISSIONS_APPLY or variant not in NEEDS_PERMISSIONS:
            code = main(args)
            err = capsys.readouterr().err
        else:  # root: without the capabilities that ignore file modes
            code, err = _run_without_override(args)
        after = _snapshot(setup.root)
    finally:
        for p in [setup.root, *setup.root.rglob("*")]:  # let tmp_path be removed
            if p.is_dir() and not p.is_symlink():
                p.chmod(p.stat().st_mode | stat.S_IRWXU)
    assert code == 2, err
    assert "Traceback" not in err
    assert err.startswith("cxkit report: "), err
    for word in words:
        assert word in err, (word, err)
    assert "nothing was run or published" in err
    assert after == before  # nothing created, nothing overwritten


def test_markup_in_a_channel_is_plain_text_in_the_data_health_report(
    small: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """plotly renders <a href> in labels as a live link: the report must show it as text."""
    data = tmp_path / "data"
    shutil.copytree(small, data)
    orders = pd.read_parquet(data / "orders.parquet")
    orders.loc[orders.index[: len(orders) // 3], "channel"] = LINK
    orders.to_parquet(data / "orders.parquet", index=False)
    out = tmp_path / "out"
    argv = ["report", "--config", str(CONFIG), "--data", str(data), "--out", str(out)]
    code = main([*argv, "--only", "data_health", "--jobs", "1"])
    captured = capsys.readouterr()
    assert code == 0, captured.out + captured.err
    page = (out / "data_health.html").read_text().replace(plotly_js(), "")
    # no link to anywhere outside the page, in the HTML or in any figure's strings
    assert not re.search(r"href\s*=\s*[\"']?\s*(https?:)?//", page, re.I)
    figures = re.findall(r'Plotly\.newPlot\("[^"]+", (.*?)\);</script>', page, re.S)
    assert figures
    strings = [s for fig in figures for s in _strings(json.loads(f"[{fig}]"))]
    assert not [s for s in strings if re.search(r"<\s*a\b", s, re.I)]
    # the channel is shown as typed: escaped once, which plotly decodes back to the text
    escaped = '&lt;a href="https://evil.example"&gt;x&lt;/a&gt;'
    assert escaped in strings


def _strings(obj: object) -> list[str]:
    if isinstance(obj, str):
        return [obj]
    if isinstance(obj, dict):
        return [s for v in obj.values() for s in _strings(v)]
    if isinstance(obj, list):
        return [s for v in obj for s in _strings(v)]
    return []
