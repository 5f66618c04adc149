"""Customer IDs in published output are pseudonymous by default (issue 22, item 6).

One ``cxkit report`` of the four reports that list customers (churn, CLV, voice of the
customer, executive summary with the scorecard) on a 500-customer demo, with the default
settings and once more with ``--clear-ids``: the default run publishes no demo customer
ID (``C`` + 7 digits, :mod:`cxkit.synth`'s format) in any page, CSV, Parquet, manifest or
executed notebook, only keyed pseudonyms; the opt-out run shows the IDs; each pseudonym is
the keyed hash of the ID the opt-out run shows in its place; the key file is private; a
later run into the same folder gives the same pseudonyms and another key other ones.
"""

from __future__ import annotations

import os
import re
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import nbformat
import pandas as pd
import pytest

from cxkit import cli, privacy, synth

pytestmark = [pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
CLEAR_ID = re.compile(r"C\d{7}")  # cxkit.synth: "C" and the customer number in 7 digits
PSEUDONYM = re.compile(r"c_[0-9a-f]{16}")
ID_PAGES = ("churn", "clv", "voice_of_customer", "executive_summary")
NOTE = "Customer IDs are pseudonymous (keyed hash)"

REPORTS_YML = """\
data: {data}
jobs: 2
reports:
  - name: churn
    notebook: {root}/notebooks/20_churn.ipynb
  - name: clv
    notebook: {root}/notebooks/30_clv.ipynb
  - name: voice_of_customer
    notebook: {root}/notebooks/50_voice_of_customer.ipynb
  - name: executive_summary
    notebook: {root}/notebooks/90_executive_summary.ipynb
    after: [churn, clv, voice_of_customer]
    parameters:
      scores_out: "{{out}}"
{extra}"""


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != privacy.KEY_ENV}
    return {**env, "PLOTLY_RENDERER": "plotly_mimetype", **extra}


def _start(config: Path, out: Path, *args: str, env: dict[str, str]) -> subprocess.Popen[str]:
    cmd = [sys.executable, "-m", "cxkit.cli", "report", "--config", str(config)]
    return subprocess.Popen(
        [*cmd, "--out", str(out), *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _finish(proc: subprocess.Popen[str]) -> tuple[int, str, str]:
    stdout, stderr = proc.communicate(timeout=900)
    return proc.returncode, stdout, stderr


def _published(out: Path) -> list[Path]:
    """Every file a run leaves in ``out`` but the private folder and the lock."""
    return [
        p
        for p in out.rglob("*")
        if p.is_file() and privacy.PRIVATE_DIR not in p.relative_to(out).parts
    ]


def _text(path: Path) -> str:
    if path.suffix == ".parquet":
        return pd.read_parquet(path).astype(str).to_csv(index=False)
    return path.read_text(encoding="utf-8", errors="replace")


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The default run and the ``--clear-ids`` run of the same reports on the same data."""
    base = tmp_path_factory.mktemp("privacy")
    data = synth.write_demo(base / "demo", customers=500, seed=42)
    config = base / "reports.yml"
    config.write_text(REPORTS_YML.format(data=data, root=ROOT, extra=""), encoding="utf-8")
    # both at once: each mostly waits for kernels to start
    procs = {
        "default": _start(config, base / "default", env=_env()),
        "clear": _start(config, base / "clear", "--clear-ids", env=_env()),
    }
    done = {name: _finish(proc) for name, proc in procs.items()}
    pages = {
        name: {p: (base / name / f"{p}.html").read_text(encoding="utf-8") for p in ID_PAGES}
        for name in procs
    }
    return {"base": base, "config": config, "data": data, "done": done, "pages": pages}


def test_both_runs_succeed(runs: dict[str, Any]) -> None:
    for name, (code, stdout, stderr) in runs["done"].items():
        assert code == 0, (name, stdout[-3000:], stderr[-3000:])
        assert "Traceback" not in stderr, (name, stderr[-3000:])


def test_default_run_publishes_no_customer_id(runs: dict[str, Any]) -> None:
    out = runs["base"] / "default"
    files = _published(out)
    kinds = {p.suffix for p in files}
    assert {".html", ".csv", ".parquet", ".json", ".ipynb"} <= kinds, kinds
    leaks = {str(p.relative_to(out)): CLEAR_ID.findall(_text(p))[:3] for p in files}
    assert {k: v for k, v in leaks.items() if v} == {}
    for page, text in runs["pages"]["default"].items():
        assert PSEUDONYM.search(text), f"{page}: no pseudonymous customer listed"
        assert NOTE in text, f"{page}: no note that the IDs are pseudonymous"
    card = pd.read_parquet(out / "scores.parquet")
    assert card["customer_id"].str.fullmatch(PSEUDONYM.pattern).all()
    assert len(card) == 500 and card["customer_id"].is_unique


def test_opt_out_shows_the_customer_ids(runs: dict[str, Any]) -> None:
    out = runs["base"] / "clear"
    for page, text in runs["pages"]["clear"].items():
        assert CLEAR_ID.search(text), f"{page}: the opt-out run shows no customer ID"
        assert not PSEUDONYM.search(text) and NOTE not in text, page
    customers = pd.read_parquet(runs["data"] / "customers.parquet")
    card = pd.read_csv(out / "scores.csv", dtype={"customer_id": str})
    assert sorted(card["customer_id"]) == sorted(customers["customer_id"])
    assert not (out / privacy.PRIVATE_DIR).exists()  # no key is made when none is needed


def test_each_pseudonym_is_the_keyed_hash_of_the_id_it_replaces(runs: dict[str, Any]) -> None:
    base = runs["base"]
    key = privacy.key_file(base / "default").read_text(encoding="utf-8").strip()
    for page in ID_PAGES:
        clear = CLEAR_ID.findall(runs["pages"]["clear"][page])
        hashed = PSEUDONYM.findall(runs["pages"]["default"][page])
        assert hashed == privacy.pseudonymize(clear, key), page
    # the scorecard files are the same apart from the IDs
    clear_csv = (base / "clear" / "scores.csv").read_text(encoding="utf-8")
    default_csv = (base / "default" / "scores.csv").read_text(encoding="utf-8")
    swapped = CLEAR_ID.sub(lambda m: privacy.pseudonymize(m.group(), key), clear_csv)
    assert swapped == default_csv
    clear_card = pd.read_parquet(base / "clear" / "scores.parquet")
    default_card = pd.read_parquet(base / "default" / "scores.parquet")
    clear_card["customer_id"] = privacy.pseudonymize(clear_card["customer_id"], key)
    pd.testing.assert_frame_equal(clear_card, default_card)


def test_key_file_is_private_and_never_published(runs: dict[str, Any]) -> None:
    out = runs["base"] / "default"
    path = privacy.key_file(out)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    key = path.read_text(encoding="utf-8").strip()
    index = (out / "index.html").read_text(encoding="utf-8")
    assert privacy.PRIVATE_DIR not in index and "id_key" not in index
    holding = [str(p.relative_to(out)) for p in _published(out) if key in _text(p)]
    assert holding == []


def _ids_report(base: Path, *, declares: bool = True) -> Path:
    """A reports file with one small notebook that shows two customer IDs as published.

    With ``declares=False`` the notebook has no ``customer_ids`` parameter (and shows the
    IDs as they are, as any notebook written before cxkit.privacy would).
    """
    name = "ids" if declares else "plain"
    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell(
        "data = None\nas_of = None" + ('\ncustomer_ids = "clear"' if declares else "")
    )
    params.metadata["tags"] = ["parameters"]
    show = nbformat.v4.new_code_cell(
        "import pandas as pd\n"
        "from IPython.display import display\n"
        "from cxkit import privacy\n"
        'ids = pd.DataFrame({"customer_id": ["C0000001", "C0000002"]})\n'
        + (
            "display(privacy.published_ids(ids, mode=customer_ids))\n"
            "privacy.show_ids_note(customer_ids)"
            if declares
            else "display(ids)"
        )
    )
    nb.cells = [params, show]
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nb.metadata["language_info"] = {"name": "python"}
    nbformat.write(nb, base / f"{name}.ipynb")
    config = base / f"{name}.yml"
    config.write_text(
        f"data: {base / 'demo'}\nreports:\n"
        f"  - name: {name}\n    notebook: {base / f'{name}.ipynb'}\n",
        encoding="utf-8",
    )
    return config


def test_same_key_same_pseudonyms_another_key_other_ones(runs: dict[str, Any]) -> None:
    base = runs["base"]
    config = _ids_report(base)
    out = base / "default"  # the first run's folder: its key file is reused
    key = privacy.key_file(out).read_text(encoding="utf-8").strip()
    other = base / "other key"
    procs = [
        _start(config, out, env=_env()),
        _start(config, other, env=_env(**{privacy.KEY_ENV: "another key"})),
        _start(config, base / "clear ids", "--clear-ids", env=_env()),
        _start(_ids_report(base, declares=False), base / "plain", env=_env()),
    ]
    for code, stdout, stderr in map(_finish, procs):
        assert code == 0, (stdout[-2000:], stderr[-2000:])
    again = PSEUDONYM.findall((out / "ids.html").read_text(encoding="utf-8"))
    assert again == privacy.pseudonymize(["C0000001", "C0000002"], key)
    first_card = (out / "scores.csv").read_text(encoding="utf-8")  # from the first run
    assert again[0] in first_card and again[1] in first_card
    hashed = PSEUDONYM.findall((other / "ids.html").read_text(encoding="utf-8"))
    assert hashed == privacy.pseudonymize(["C0000001", "C0000002"], "another key")
    assert not set(hashed) & set(again)
    assert privacy.key_file(out).read_text(encoding="utf-8").strip() == key  # kept
    assert not privacy.key_file(other).exists()  # the environment's key: no file needed
    clear = (base / "clear ids" / "ids.html").read_text(encoding="utf-8")
    assert CLEAR_ID.findall(clear) == ["C0000001", "C0000002"] and NOTE not in clear
    # a notebook without a customer_ids parameter gets none, and needs no key
    assert not (base / "plain" / privacy.PRIVATE_DIR).exists()
    assert not (base / "clear ids" / privacy.PRIVATE_DIR).exists()


@pytest.mark.parametrize(
    ("publish", "key_file", "expected"),
    [
        (
            "publish:\n  customer_ids: hashed\n",
            None,
            r"customer_ids must be 'pseudonymous' or 'clear', got 'hashed'",
        ),
        ("publish:\n  colour: red\n", None, r"publish: unknown key\(s\) 'colour'"),
        ("", "\n", r"key file .*id_key is empty; delete it to make a new one"),
    ],
    ids=["bad mode", "unknown publish key", "empty key file"],
)
def test_bad_publish_settings_exit_2_with_a_fix(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    publish: str,
    key_file: str | None,
    expected: str,
) -> None:
    monkeypatch.delenv(privacy.KEY_ENV, raising=False)
    data = synth.write_demo(tmp_path / "demo", customers=60, seed=3)
    config = tmp_path / "reports.yml"
    config.write_text(REPORTS_YML.format(data=data, root=ROOT, extra=publish), encoding="utf-8")
    out = tmp_path / "out"
    if key_file is not None:
        privacy.key_file(out).parent.mkdir(parents=True)
        privacy.key_file(out).write_text(key_file)
    code = cli.main(["report", "--config", str(config), "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2, err
    assert re.search(expected, err), err
    assert "Traceback" not in err and "nothing was run or published" in err
    assert not list(out.glob("*.html"))
