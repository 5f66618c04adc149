"""Open every generated report in headless Chromium with the network blocked.

One session fixture runs ``cxkit report`` (the repo's ``reports.yml``) on a copy of the
2,000-customer demo in which a few survey comments carry hostile HTML (``<script>``,
``onerror``); every page must then draw all its figures, log no console error, make no
network request, show no code, open no dialog and hold no script that is not ours.
Chromium is Debian's ``chromium`` driven by Playwright (no browser download).
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from cxkit.report.export import count_figures

pytestmark = [pytest.mark.browser, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "reports.yml"
REPORTS = [r["name"] for r in (yaml.safe_load(CONFIG.read_text()) or {}).get("reports", [])]
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
from tests.conftest import HOSTILE  # noqa: E402,F401 - the hostile comments planted in the data


@pytest.fixture(scope="session")
def browser() -> Any:
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if exe is None:
        pytest.skip(
            "chromium not found on PATH: install Debian's 'chromium' package (make chromium)"
        )
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=exe, args=FLAGS)
        yield b
        b.close()


def _visit(browser: Any, path: Path, *, width: int = 1280) -> dict[str, Any]:
    """Load ``path`` with every non-file request aborted; collect what happened."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    seen: dict[str, list[str]] = {"requests": [], "console": [], "pageerrors": [], "dialogs": []}
    context = browser.new_context(viewport={"width": width, "height": 900})
    page = context.new_page()

    def route(r: Any) -> None:
        if r.request.url.startswith("file://"):
            r.continue_()
        else:
            seen["requests"].append(r.request.url)
            r.abort()

    page.route("**/*", route)
    page.on("console", lambda m: seen["console"].append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: seen["pageerrors"].append(str(e)))
    page.on("dialog", lambda d: (seen["dialogs"].append(d.message), d.dismiss()))
    page.goto(path.as_uri(), wait_until="load")
    try:  # an undrawn figure then fails the 'drawn' assertion with a clear message
        page.wait_for_function(
            "() => [...document.querySelectorAll('.cx-figure')]"
            ".every(d => d.querySelector('.main-svg'))",
            timeout=30_000,
        )
    except PlaywrightTimeout:
        pass
    facts = page.evaluate(
        """() => ({
        plots: document.querySelectorAll('.js-plotly-plot').length,
        drawn: [...document.querySelectorAll('.js-plotly-plot')]
                 .filter(d => d.querySelector('.main-svg .plot, .main-svg .trace, .main-svg g')).length,
        scripts: [...document.scripts].map(s => ({src: s.getAttribute('src'), len: s.text.length,
                                                  head: s.text.slice(0, 40)})),
        code: document.querySelectorAll('.jp-InputArea, .input_area, .jp-InputPrompt, .prompt, .jp-CodeCell').length,
        text: document.body.innerText,
        headline: (document.querySelector('.cx-headline') || {}).innerText || '',
        scrollWidth: document.documentElement.scrollWidth,
        links: [...document.querySelectorAll('a[href]')].map(a => a.getAttribute('href')),
    })"""
    )
    context.close()
    return {**seen, **facts}


def test_report_run_succeeded(report_run: dict[str, Any]) -> None:
    proc = report_run["proc"]
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    assert (report_run["out"] / "index.html").is_file()
    for name in REPORTS:
        assert f"] {name}: started" in proc.stdout and f"] {name}: OK in " in proc.stdout


def test_report_run_computes_shared_results_once(report_run: dict[str, Any]) -> None:
    """The run cache: every shared result is computed by one report and read by the rest."""
    run_dir = report_run["out"] / "_runs" / report_run["manifest"]["run_id"]
    assert not (run_dir / "cache").exists()  # removed at the end of the run
    # each line: <time> pid=<pid> <kind>-<key> <seconds>s <hit|miss|...>
    events = [line.split(maxsplit=4) for line in (run_dir / "cache.log").read_text().splitlines()]
    computed = [e[2] for e in events if e[4] != "hit"]  # kind-key
    assert len(computed) == len(set(computed)), f"computed twice: {computed}"
    computed = [e.rsplit("-", 1)[0] for e in computed]
    read = [e[2].rsplit("-", 1)[0] for e in events if e[4] == "hit"]
    for kind in ("validate", "churn.analyze", "personas.analyze", "voc.analyze"):
        assert kind in read, f"{kind} was never reused: {events}"
    assert "validate" not in computed  # the pipeline's own validation was reused
    for name, entry in report_run["manifest"]["reports"].items():
        assert entry["peak_memory_mb"] > 50, name


@pytest.mark.parametrize("name", REPORTS)
def test_report_page_in_chromium(name: str, report_run: dict[str, Any], browser: Any) -> None:
    out = report_run["out"]
    page_path = out / f"{name}.html"
    assert page_path.is_file(), f"{name}.html was not published"
    run_id = report_run["manifest"]["run_id"]
    executed = json.loads((out / "_runs" / run_id / f"{name}.ipynb").read_text())
    n_figures = count_figures(executed)

    seen = _visit(browser, page_path)
    assert seen["requests"] == [], "network requests were made"
    assert seen["console"] == [] and seen["pageerrors"] == []
    assert seen["dialogs"] == [], "a script from the data ran"
    assert seen["plots"] == n_figures, "not every figure of the notebook is on the page"
    assert seen["drawn"] == n_figures, "not every figure was drawn"
    assert seen["code"] == 0
    assert not re.search(r"In \[\d*\]:", seen["text"])
    assert all(s["src"] is None for s in seen["scripts"])
    ours = [
        s
        for s in seen["scripts"]
        if s["len"] > 1_000_000 or s["head"].startswith('Plotly.newPlot("cx-fig-')
    ]
    assert len(ours) == len(seen["scripts"]), "a <script> that is not ours is on the page"
    assert len(seen["scripts"]) == (n_figures + 1 if n_figures else 0)
    assert seen["headline"].strip(), "the report shows no findings.headline(...)"


@pytest.mark.parametrize("name", ["index", *REPORTS[:1]])
def test_pages_fit_a_phone(name: str, report_run: dict[str, Any], browser: Any) -> None:
    seen = _visit(browser, report_run["out"] / f"{name}.html", width=390)
    assert seen["scrollWidth"] <= 392, "the page scrolls sideways on a phone"
    assert seen["console"] == [] and seen["requests"] == []


def test_index_in_chromium(report_run: dict[str, Any], browser: Any) -> None:
    out = report_run["out"]
    seen = _visit(browser, out / "index.html")
    assert seen["requests"] == [] and seen["console"] == [] and seen["scripts"] == []
    for name in REPORTS:
        assert f"{name}.html" in seen["links"]
        assert (out / f"{name}.html").is_file()
    assert f"All {len(REPORTS)} reports are up to date." in seen["text"]
    assert "FAILED" not in seen["text"]
