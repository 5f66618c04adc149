"""Open every generated report in headless Chromium with the network blocked.

One session fixture runs ``cxkit report`` (the repo's ``reports.yml``) on a copy of the
2,000-customer demo in which a few survey comments carry hostile HTML (``<script>``,
``onerror``); every page must then draw all its figures, log no console error, make no
network request, show no code, open no dialog and hold no script that is not ours.
The pages load the folder's one shared plotly.js (``_assets/plotly-<version>.min.js``);
the same notebooks exported self-contained (plotly.js inlined) draw every figure too.
Tables fit their box or scroll with a visible scrollbar; bar labels and quadrant labels
drawn by plotly collide with nothing. Chromium is Debian's ``chromium`` driven by
Playwright (no browser download), with its scrollbars shown as a reader sees them.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml

from cxkit import voc
from cxkit.report.export import (
    count_figures,
    notebook_to_html,
    page,
    plotly_asset,
    plotly_js,
)
from cxkit.report.screenshots import launch, report_folders, screenshot_folder

pytestmark = [pytest.mark.browser, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "reports.yml"
REPORTS = [r["name"] for r in (yaml.safe_load(CONFIG.read_text()) or {}).get("reports", [])]
from tests.conftest import HOSTILE  # noqa: E402,F401 - the hostile comments planted in the data
from tests.test_plots import KEY_DRIVERS  # noqa: E402 - the key drivers whose labels collided


@pytest.fixture(scope="session")
def browser() -> Any:
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if exe is None:
        pytest.skip(
            "chromium not found on PATH: install Debian's 'chromium' package (make chromium)"
        )
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = launch(p, exe)  # the project's flags, scrollbars shown
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
    # the one script loaded from a file is the folder's plotly.js (relative, on disk)
    assert [s["src"] for s in seen["scripts"] if s["src"]] == (
        [plotly_asset()] if n_figures else []
    )
    ours = [
        s
        for s in seen["scripts"]
        if s["src"] == plotly_asset() or s["head"].startswith('Plotly.newPlot("cx-fig-')
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


# --------------------------------------------------------------------------------------
# one shared plotly.js per folder, or one self-contained file per report
# --------------------------------------------------------------------------------------

_SRC = re.compile(r'<script src="([^"]+)"></script>')


def _executed(report_run: dict[str, Any], name: str) -> dict[str, Any]:
    run_id = report_run["manifest"]["run_id"]
    return json.loads((report_run["out"] / "_runs" / run_id / f"{name}.ipynb").read_text())


def test_pages_of_a_folder_load_one_shared_plotly_file(report_run: dict[str, Any]) -> None:
    out = report_run["out"]
    assert sorted(p.name for p in (out / "_assets").iterdir()) == [Path(plotly_asset()).name]
    assert (out / plotly_asset()).read_text(encoding="utf-8") == plotly_js()
    inline_total = shared_total = 0
    for name in REPORTS:
        text = (out / f"{name}.html").read_text(encoding="utf-8")
        nb = _executed(report_run, name)
        assert _SRC.findall(text) == ([plotly_asset()] if count_figures(nb) else [])
        assert plotly_js()[:2000] not in text  # the bundle is not in the page
        # the same page self-contained, for the size comparison
        inline = notebook_to_html(nb, title=name, meta={}, plotly_mode="inline")
        if count_figures(nb):
            assert len(text) < len(inline) / 5, name  # far smaller than the inline page
        inline_total += len(inline)
        shared_total += len(text)
    assert shared_total + len(plotly_js()) < inline_total / 2  # the folder as a whole too
    index = (out / "index.html").read_text(encoding="utf-8")
    assert not _SRC.search(index) and "Plotly" not in index


@pytest.mark.parametrize("name", REPORTS)
def test_self_contained_page_draws_every_chart_offline(
    name: str, report_run: dict[str, Any], browser: Any, tmp_path: Path
) -> None:
    nb = _executed(report_run, name)
    path = tmp_path / f"{name}.html"  # a folder without _assets: only the page itself
    path.write_text(notebook_to_html(nb, title=name, meta={}, plotly_mode="inline"))
    seen = _visit(browser, path)
    n = count_figures(nb)
    assert seen["requests"] == [] and seen["console"] == [] and seen["pageerrors"] == []
    assert seen["plots"] == seen["drawn"] == n
    assert [s["src"] for s in seen["scripts"] if s["src"]] == []
    assert len(seen["scripts"]) == (n + 1 if n else 0)


# --------------------------------------------------------------------------------------
# tables fit or scroll visibly; labels collide with nothing (as Chromium draws them)
# --------------------------------------------------------------------------------------

_TABLES = """() => [...document.querySelectorAll('main table')].map(t => {
  let box = t.parentElement;
  while (box && box.tagName !== 'MAIN' && getComputedStyle(box).overflowX === 'visible')
    box = box.parentElement;
  const tr = t.getBoundingClientRect(), br = box.getBoundingClientRect();
  return {head: [...t.querySelectorAll('th')].map(h => h.innerText).join('|').slice(0, 80),
          ours: t.classList.contains('cx-table'),
          fits: tr.right <= br.right + 1 && tr.left >= br.left - 1,
          scrolls: ['auto', 'scroll'].includes(getComputedStyle(box).overflowX)
                   && box.scrollWidth > box.clientWidth,
          scrollbar: box.offsetHeight - box.clientHeight};
})"""


@pytest.mark.parametrize("width", [1400, 390])
def test_no_table_overflows_its_box_unseen(
    width: int, report_run: dict[str, Any], browser: Any
) -> None:
    for name in ["index", *REPORTS]:
        context = browser.new_context(viewport={"width": width, "height": 900})
        tab = context.new_page()
        # tables only: no plotly.js, nothing off the disk (the figures' boxes keep their size)
        tab.route(
            "**/*",
            lambda r: (
                r.continue_()
                if r.request.url.startswith("file:") and "/_assets/" not in r.request.url
                else r.abort()
            ),
        )
        tab.goto((report_run["out"] / f"{name}.html").as_uri(), wait_until="load")
        tables = tab.evaluate(_TABLES)
        context.close()
        for t in tables:
            # a table either fits, or its box scrolls sideways with a scrollbar one sees
            assert t["fits"] or (t["scrolls"] and t["scrollbar"] > 0), (name, t)
            if width == 1400 and t["ours"]:
                assert t["fits"], (name, t)  # show_table's fit a laptop (headers wrap)


_BOXES = """() => {
  const box = e => { const r = e.getBoundingClientRect();
                     return [r.left, r.top, r.right, r.bottom]; };
  return [...document.querySelectorAll('.cx-figure')].map(f => ({
    labels: [...f.querySelectorAll('.annotation-text, .textpoint text')]
              .map(e => ({text: e.textContent, box: box(e)})),
    errorbars: [...f.querySelectorAll('.errorbar path')].map(box),
  }));
}"""


def _overlap(a: list[float], b: list[float]) -> bool:
    return min(a[2], b[2]) > max(a[0], b[0]) + 0.5 and min(a[3], b[3]) > max(a[1], b[1]) + 0.5


def test_chart_labels_collide_with_nothing_in_chromium(browser: Any, tmp_path: Path) -> None:
    bars = pd.DataFrame(
        {
            "touchpoint": ["product", "billing", "onboarding", "returns", "delivery", "checkout"],
            "csat_share": [0.566, 0.583, 0.589, 0.598, 0.741, 0.800],
            "csat_low": [0.531, 0.547, 0.552, 0.536, 0.722, 0.776],
            "csat_high": [0.600, 0.618, 0.625, 0.658, 0.759, 0.823],
            "n": [802, 743, 712, 244, 2202, 1096],
            "small_n": [False] * 6,
        }
    )
    nps = pd.DataFrame(
        {"channel": ["app", "email"], "nps": [-3.4, -8.5], "nps_low": [-7.5, -11.2]}
    ).assign(nps_high=[0.8, -5.8], n=[1132, 2578], small_n=[False, False])
    figs = [
        voc.plot_scores(bars, x="touchpoint", score="csat", title="CSAT by touchpoint"),
        voc.plot_scores(nps, x="channel", title="NPS by channel"),
        voc.plot_drivers_quadrant(KEY_DRIVERS),
    ]
    divs = "".join(
        f'<div class="cx-output"><div id="f{i}" class="cx-figure" style="height:'
        f'{f.layout.height or 420}px"></div><script>Plotly.newPlot("f{i}", '
        f"{f.to_json()}.data, {f.to_json()}.layout)</script></div>"
        for i, f in enumerate(figs)
    )
    path = tmp_path / "charts.html"
    path.write_text(page(title="charts", body=divs, meta={}, footer="", with_plotly=True))
    for width in (1400, 1000):
        context = browser.new_context(viewport={"width": width, "height": 900})
        tab = context.new_page()
        tab.goto(path.as_uri(), wait_until="load")
        tab.wait_for_function("() => document.querySelectorAll('.main-svg').length >= 3")
        drawn = tab.evaluate(_BOXES)
        context.close()
        for fig in drawn[:2]:  # bars: each n-label clear of every error bar
            labels = [lab for lab in fig["labels"] if lab["text"].startswith("n=")]
            assert len(labels) in (6, 2) and fig["errorbars"]
            for lab in labels:
                hit = [e for e in fig["errorbars"] if _overlap(lab["box"], e)]
                assert not hit, (width, lab)
        labels = drawn[2]["labels"]  # the quadrant: point labels and the four names
        assert len(labels) == len(KEY_DRIVERS) + 4
        for i, a in enumerate(labels):
            for b in labels[i + 1 :]:
                assert not _overlap(a["box"], b["box"]), (width, a["text"], b["text"])


# --------------------------------------------------------------------------------------
# the screenshot tool
# --------------------------------------------------------------------------------------


def _png_size(path: Path) -> tuple[int, int]:
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n"
    return int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")


def test_screenshot_tool_writes_a_full_page_png_per_page(
    report_run: dict[str, Any], browser: Any, tmp_path: Path
) -> None:
    folder = tmp_path / "reports"
    (folder / "_assets").mkdir(parents=True)
    for name in ("index.html", "data_health.html", plotly_asset()):
        shutil.copy(report_run["out"] / name, folder / name)
    nested = folder / "cdnow"
    nested.mkdir()
    shutil.copy(report_run["out"] / "index.html", nested / "index.html")
    assert report_folders([folder]) == [folder.resolve(), nested.resolve()]
    shots = screenshot_folder(browser, folder)
    assert [s.png.name for s in shots] == ["index.png", "data_health.png"]
    for shot in shots:
        assert shot.png.parent == folder / "_screenshots"
        width, height = _png_size(shot.png)
        assert width == 1400 and height > 900  # the full page, not the first screen
        assert shot.drawn == shot.figures and not shot.blocked and not shot.errors
    assert shots[1].figures == count_figures(_executed(report_run, "data_health")) > 0
