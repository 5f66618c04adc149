"""Full-page screenshots of every page of a report folder, taken in headless Chromium.

``make screenshots`` (or ``python -m cxkit.report.screenshots FOLDER ...``) opens each
``*.html`` page of a report folder (``index.html`` first) at 1400 px wide, waits until
every chart is drawn, and writes ``<folder>/_screenshots/<page>.png``. A sub-folder that
is itself a report folder (it holds an ``index.html`` or a ``manifest.json``, like
``reports/cdnow``) gets its own ``_screenshots``. Requests that leave the disk are
blocked, so a page that needs the network shows it in its screenshot.

Chromium is the system's (``chromium`` on the PATH), driven by Playwright with the flags
the project's machines need (no browser download).
"""

from __future__ import annotations

import argparse
import shutil
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from playwright.sync_api import Browser, Playwright, Route, sync_playwright
from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from cxkit.errors import UsageError

__all__ = [
    "CHROMIUM_FLAGS",
    "SCREENSHOT_DIR",
    "WIDTH",
    "Shot",
    "chromium_path",
    "launch",
    "main",
    "report_folders",
    "screenshot_folder",
    "screenshot_folders",
]

#: Headless Chromium flags for these machines (FIELD_NOTES.md): no sandbox as root, no
#: GPU, and none of Chromium's own network traffic.
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)
#: The viewport width of the screenshots (px).
WIDTH = 1400
#: The folder, inside a report folder, the screenshots go to (kept out of git).
SCREENSHOT_DIR = "_screenshots"
_DRAWN = (
    "() => [...document.querySelectorAll('.cx-figure')].every(d => d.querySelector('.main-svg'))"
)


@dataclass(frozen=True)
class Shot:
    """One page's screenshot.

    Attributes
    ----------
    page
        The HTML page.
    png
        The screenshot written.
    figures, drawn
        Charts on the page, and how many of them plotly drew.
    blocked
        Requests to anything but a local file (blocked).
    errors
        Script errors and console errors of the page.
    """

    page: Path
    png: Path
    figures: int
    drawn: int
    blocked: tuple[str, ...]
    errors: tuple[str, ...]

    def line(self) -> str:
        """Return a one-line description for the progress output."""
        text = f"{self.png} ({self.drawn}/{self.figures} charts drawn"
        if self.blocked:
            text += f", {len(self.blocked)} network request(s) blocked"
        if self.errors:
            text += f", {len(self.errors)} script error(s): {self.errors[0][:120]}"
        return text + ")"


def chromium_path() -> str:
    """Return the system Chromium's path.

    Returns
    -------
    str
        ``chromium`` (or ``chromium-browser``) found on the PATH.

    Raises
    ------
    UsageError
        When there is none (with what to install).
    """
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if exe is None:
        raise UsageError(
            "chromium not found on PATH: install Debian's 'chromium' package "
            "(as root: apt-get install chromium; or run make system-deps)"
        )
    return exe


def launch(pw: Playwright, exe: str | None = None) -> Browser:
    """Start headless Chromium with the project's flags and scrollbars shown.

    Playwright hides scrollbars in headless mode (``--hide-scrollbars``); they are
    kept here, so that a screenshot shows a wide table's scrollbar as a reader sees it.

    Parameters
    ----------
    pw
        A started Playwright (``sync_playwright().start()`` or its context manager).
    exe
        The Chromium to drive; by default :func:`chromium_path`.

    Returns
    -------
    playwright.sync_api.Browser
        The browser (close it when done).
    """
    return pw.chromium.launch(
        executable_path=exe or chromium_path(),
        args=list(CHROMIUM_FLAGS),
        ignore_default_args=["--hide-scrollbars"],
    )


def report_folders(folders: Iterable[str | Path]) -> list[Path]:
    """Return the given report folders and the report folders directly inside them.

    Parameters
    ----------
    folders
        Folders holding report pages (``*.html``).

    Returns
    -------
    list of pathlib.Path
        Each folder, followed by its sub-folders that hold an ``index.html`` or a
        ``manifest.json`` (``reports/cdnow``); ``_*`` folders are left out.

    Raises
    ------
    UsageError
        When a folder does not exist or holds no ``*.html`` page.
    """
    found: list[Path] = []
    for folder in folders:
        root = Path(folder).expanduser().resolve()
        if not root.is_dir():
            raise UsageError(f"{folder}: no such folder; pass a report folder such as reports/")
        subs = sorted(
            p
            for p in root.iterdir()
            if p.is_dir()
            and not p.name.startswith(("_", "."))
            and ((p / "index.html").is_file() or (p / "manifest.json").is_file())
        )
        if not any(root.glob("*.html")) and not subs:
            raise UsageError(f"{folder}: holds no report pages (*.html); run cxkit report first")
        found += [root, *subs]
    return list(dict.fromkeys(found))


def _pages(folder: Path) -> list[Path]:
    """Return a folder's HTML pages, ``index.html`` first, then by name."""
    return sorted(folder.glob("*.html"), key=lambda p: (p.name != "index.html", p.name))


def _shoot(browser: Browser, page_path: Path, png: Path, *, width: int) -> Shot:
    """Open one page (network blocked), wait for its charts, save a full-page screenshot."""
    blocked: list[str] = []
    errors: list[str] = []
    context = browser.new_context(viewport={"width": width, "height": 900})
    try:
        tab = context.new_page()

        def route(r: Route) -> None:
            if r.request.url.startswith("file://"):
                r.continue_()
            else:
                blocked.append(r.request.url)
                r.abort()

        tab.route("**/*", route)
        tab.on("pageerror", lambda e: errors.append(str(e)))
        tab.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        tab.goto(page_path.as_uri(), wait_until="load")
        try:
            tab.wait_for_function(_DRAWN, timeout=30_000)
        except PlaywrightTimeout:
            pass  # the screenshot shows the undrawn charts; the counts say so
        tab.wait_for_timeout(300)  # plotly's transitions and fonts settle
        # the page's own scrollbar would narrow the picture; a table box's stays visible
        tab.add_style_tag(content="html { scrollbar-width: none; }")
        counts: dict[str, Any] = tab.evaluate(
            "() => ({figures: document.querySelectorAll('.cx-figure').length,"
            " drawn: [...document.querySelectorAll('.cx-figure')]"
            ".filter(d => d.querySelector('.main-svg')).length})"
        )
        png.parent.mkdir(parents=True, exist_ok=True)
        tab.screenshot(path=str(png), full_page=True)
    finally:
        context.close()
    return Shot(
        page_path, png, int(counts["figures"]), int(counts["drawn"]), tuple(blocked), tuple(errors)
    )


def screenshot_folder(browser: Browser, folder: Path, *, width: int = WIDTH) -> list[Shot]:
    """Screenshot every page of one report folder into ``folder/_screenshots``.

    Parameters
    ----------
    browser
        A Playwright Chromium browser.
    folder
        The report folder.
    width
        The viewport width (px).

    Returns
    -------
    list of Shot
        One per page, ``index.html`` first.
    """
    out = folder / SCREENSHOT_DIR
    return [_shoot(browser, p, out / f"{p.stem}.png", width=width) for p in _pages(folder)]


def screenshot_folders(
    folders: Sequence[str | Path], *, width: int = WIDTH, say: Callable[[str], object] = print
) -> list[Shot]:
    """Screenshot every page of the given report folders (and report folders inside them).

    Parameters
    ----------
    folders
        Report folders, e.g. ``["reports"]``.
    width
        The viewport width (px).
    say
        Called with one line per screenshot.

    Returns
    -------
    list of Shot
        Every screenshot taken.

    Raises
    ------
    UsageError
        When a folder is missing or empty, or Chromium is not installed.
    """
    todo = report_folders(folders)
    exe = chromium_path()
    shots: list[Shot] = []
    with sync_playwright() as pw:
        browser = launch(pw, exe)
        try:
            for folder in todo:
                for shot in screenshot_folder(browser, folder, width=width):
                    say(shot.line())
                    shots.append(shot)
        finally:
            browser.close()
    return shots


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``python -m cxkit.report.screenshots FOLDER ...``.

    Parameters
    ----------
    argv
        The arguments; ``None`` reads ``sys.argv``.

    Returns
    -------
    int
        0 when every page was shot with every chart drawn and no network request, 1 when
        some page fell short (its screenshot is still written), 2 for bad usage.
    """
    parser = argparse.ArgumentParser(
        prog="python -m cxkit.report.screenshots",
        description="Full-page PNGs of every report page, taken in headless Chromium, "
        f"into <folder>/{SCREENSHOT_DIR}/.",
    )
    parser.add_argument("folders", nargs="*", default=["reports"], help="report folders")
    parser.add_argument("--width", type=int, default=WIDTH, help="viewport width in px")
    args = parser.parse_args(argv)
    try:
        shots = screenshot_folders(args.folders, width=args.width)
    except (UsageError, PlaywrightError) as err:
        print(f"screenshots: {err}", file=sys.stderr)
        return 2
    short = [s for s in shots if s.drawn < s.figures or s.blocked or s.errors]
    print(f"screenshots: {len(shots)} page(s), {len(short)} with undrawn charts or errors")
    return 1 if short else 0


if __name__ == "__main__":
    sys.exit(main())
