"""Executed notebook -> one offline HTML page.

nbconvert's HTML export drops plotly figures silently and adds require.js and MathJax
from a CDN, so the page is built here: markdown cells rendered, code cells reduced to
their outputs (no code, no prompts), plotly JSON outputs turned into ``<div>`` plus
plotly.js, ``text/html`` outputs passed through an allowlist sanitizer (no scripts, no
external references), stdout as preformatted text, errors shown.

plotly.js (4.8 MB, nearly all of a page) comes in one of two ways (:data:`PLOTLY_MODES`):

* ``"inline"`` — inlined once in the page: one self-contained file (the default of
  :func:`notebook_to_html`, for a page exported on its own);
* ``"shared"`` — one versioned file per report folder, ``_assets/plotly-<version>.min.js``
  (:func:`publish_plotly`), that every page of the folder loads with a relative
  ``<script src>``: still offline, a fraction of the size (``cxkit report``'s default).
"""

from __future__ import annotations

import base64
import html
import itertools
import json
import re
from collections.abc import Mapping
from functools import cache
from html.parser import HTMLParser
from importlib import resources
from pathlib import Path
from typing import Any

import mistune
import plotly
from plotly.offline import get_plotlyjs_version

from cxkit.errors import UsageError
from cxkit.files import atomic_write

__all__ = [
    "ASSET_DIR",
    "PLOTLY_MODES",
    "count_figures",
    "extract_headline",
    "notebook_to_html",
    "page",
    "plotly_asset",
    "plotly_js",
    "prune_plotly_assets",
    "publish_plotly",
    "sanitize_html",
    "theme_css",
]

PLOTLY_MIME = "application/vnd.plotly.v1+json"
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_HEADLINE = re.compile(r'<p class="cx-headline">(.*?)</p>', re.S)
_TAG = re.compile(r"<[^>]+>")
#: How a page gets plotly.js: inlined in the page, or the report folder's shared file.
PLOTLY_MODES = ("shared", "inline")
#: The folder, inside a report folder, of the files its pages share.
ASSET_DIR = "_assets"
_ASSET_REF = re.compile(r'<script src="' + ASSET_DIR + r'/(plotly-[^"/]+\.min\.js)"')


@cache
def plotly_js() -> str:
    """Return the plotly.js bundle shipped inside the plotly package (no network).

    Returns
    -------
    str
        The minified script (read once per process).
    """
    path = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
    return path.read_text(encoding="utf-8")


def plotly_asset() -> str:
    """Return the shared plotly.js file's path relative to a report folder.

    Returns
    -------
    str
        ``_assets/plotly-<plotly.js version>.min.js``: a new plotly.js gets a new file,
        so a page published earlier keeps loading the version it was drawn with.

    Examples
    --------
    >>> plotly_asset().startswith("_assets/plotly-") and plotly_asset().endswith(".min.js")
    True
    """
    return f"{ASSET_DIR}/plotly-{get_plotlyjs_version()}.min.js"


def publish_plotly(out: Path) -> Path:
    """Write the shared plotly.js into a report folder (atomically; kept if already there).

    Call it before publishing a page that loads it: a page is then never without its
    script, whatever happens later in the run.

    Parameters
    ----------
    out
        The report folder.

    Returns
    -------
    pathlib.Path
        ``out/_assets/plotly-<version>.min.js``.
    """
    path = out / plotly_asset()
    text = plotly_js()
    try:
        if path.stat().st_size == len(text.encode("utf-8")) and path.read_text("utf-8") == text:
            return path
    except (OSError, UnicodeDecodeError):
        pass  # missing or damaged: written below
    return atomic_write(path, text)


def prune_plotly_assets(out: Path) -> list[Path]:
    """Remove the shared plotly.js files no page of a report folder loads any more.

    Parameters
    ----------
    out
        The report folder; every ``*.html`` in it is read.

    Returns
    -------
    list of pathlib.Path
        The files removed (a page's own version is never among them).
    """
    folder = out / ASSET_DIR
    if not folder.is_dir():
        return []
    used: set[str] = set()
    for page_path in out.glob("*.html"):
        try:
            used.update(_ASSET_REF.findall(page_path.read_text(encoding="utf-8")))
        except (OSError, UnicodeDecodeError):
            return []  # an unreadable page might need any of them: keep all
    removed = []
    for asset in folder.glob("plotly-*.min.js"):
        if asset.name not in used:
            asset.unlink(missing_ok=True)
            removed.append(asset)
    return removed


@cache
def theme_css() -> str:
    """Return the product theme (``cxkit/report/theme.css``).

    Returns
    -------
    str
        The style sheet (read once per process).
    """
    return resources.files("cxkit.report").joinpath("theme.css").read_text(encoding="utf-8")


# --------------------------------------------------------------------------------------
# sanitizer
# --------------------------------------------------------------------------------------

_ALLOWED_TAGS = {
    "a", "abbr", "b", "blockquote", "br", "caption", "code", "col", "colgroup", "dd",
    "del", "details", "div", "dl", "dt", "em", "figcaption", "figure", "h1", "h2", "h3",
    "h4", "h5", "h6", "hr", "i", "img", "ins", "kbd", "li", "mark", "ol", "p", "pre", "q",
    "s", "samp", "small", "span", "strong", "style", "sub", "summary", "sup", "table",
    "tbody", "td", "tfoot", "th", "thead", "tr", "u", "ul",
}  # fmt: skip
_DROP_WITH_CONTENT = {
    "script", "iframe", "object", "embed", "noscript", "template", "svg", "math", "head",
    "title", "textarea", "select", "audio", "video", "canvas", "frameset", "frame",
}  # fmt: skip
_VOID = {"br", "col", "hr", "img", "wbr"}
_ALLOWED_ATTRS = {
    "class", "id", "style", "title", "colspan", "rowspan", "scope", "align", "valign",
    "alt", "width", "height", "href", "src", "open", "start", "reversed",
}  # fmt: skip
_BAD_CSS = re.compile(r"url\s*\(|@import|expression\s*\(|javascript:|behavior\s*:", re.I)


def _local_href(value: str) -> bool:
    """Tell whether ``value`` is an in-page anchor or a relative link to a sibling file."""
    v = value.strip()
    return bool(v) and not v.startswith(("//", "/", "\\")) and ":" not in v.split("#")[0]


class _Sanitizer(HTMLParser):
    """Rebuild HTML from allowed tags and attributes only (see :func:`sanitize_html`)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        self.drop_depth = 0
        self.drop_tag: str | None = None
        self.in_style = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._start(tag, attrs, self_closing=False)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._start(tag, attrs, self_closing=True)

    def _start(self, tag: str, attrs: list[tuple[str, str | None]], *, self_closing: bool) -> None:
        if self.drop_depth:
            if tag == self.drop_tag and not self_closing:
                self.drop_depth += 1
            return
        if tag in _DROP_WITH_CONTENT:
            if not self_closing:
                self.drop_depth, self.drop_tag = 1, tag
            return
        if tag not in _ALLOWED_TAGS:
            return
        kept = []
        for name, value in attrs:
            name = name.lower()
            value = value or ""
            if name not in _ALLOWED_ATTRS:
                continue
            if name == "style" and _BAD_CSS.search(value):
                continue
            if name == "href" and not _local_href(value):
                continue  # links out are network references; anchors and sibling pages stay
            if name == "src" and not (tag == "img" and value.startswith("data:image/")):
                continue
            kept.append(f' {name}="{html.escape(value, quote=True)}"')
        if tag == "img" and not any(k.startswith(" src=") for k in kept):
            return
        self.out.append(f"<{tag}{''.join(kept)}>")
        if tag == "style":
            self.in_style = True

    def handle_endtag(self, tag: str) -> None:
        if self.drop_depth:
            if tag == self.drop_tag:
                self.drop_depth -= 1
                if not self.drop_depth:
                    self.drop_tag = None
            return
        if tag in _ALLOWED_TAGS and tag not in _VOID:
            self.out.append(f"</{tag}>")
        if tag == "style":
            self.in_style = False

    def handle_data(self, data: str) -> None:
        if self.drop_depth:
            return
        if self.in_style:
            if not _BAD_CSS.search(data):  # a sheet that loads anything is dropped whole
                self.out.append(data.replace("<", ""))
        else:
            self.out.append(html.escape(data, quote=False))


def sanitize_html(text: str) -> str:
    """Keep the formatting of an HTML output; drop scripts, handlers and external refs.

    Tags outside an allowlist are dropped (scripts, frames and the like with their
    content), attributes outside an allowlist and event handlers are dropped, links
    must be in-page or to sibling files, images must be inline ``data:`` images and
    style sheets must load nothing. Text is escaped.

    Parameters
    ----------
    text
        An HTML fragment (a notebook's ``text/html`` output, rendered markdown).

    Returns
    -------
    str
        The safe fragment.

    Examples
    --------
    >>> sanitize_html('<p onclick="x()">a<script>alert(1)</script> &lt;b&gt;</p>')
    '<p>a &lt;b&gt;</p>'
    """
    s = _Sanitizer()
    s.feed(text)
    s.close()
    return "".join(s.out)


# --------------------------------------------------------------------------------------
# cells
# --------------------------------------------------------------------------------------


def _text(value: object) -> str:
    """Return a notebook text field (a string or a list of lines) as one string."""
    return "".join(value) if isinstance(value, list) else str(value)


def _script_json(obj: object) -> str:
    """Return JSON safe to place inside a <script> element (no '</script>' can close it)."""
    text = json.dumps(obj, separators=(",", ":"), default=str)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _plotly_div(bundle: Mapping[str, Any], fig_id: str) -> str:
    """Return a plotly figure's ``<div>`` and the script that draws it (responsive)."""
    fig = dict(bundle)
    layout = dict(fig.get("layout") or {})
    height = layout.get("height") or 450
    layout.pop("width", None)
    layout["autosize"] = True
    config = {"responsive": True, "displaylogo": False, **(fig.get("config") or {})}
    args = ", ".join(_script_json(x) for x in (fig.get("data") or [], layout, config))
    return (
        f'<div id="{fig_id}" class="cx-figure" style="height:{int(height)}px"></div>\n'
        f'<script>Plotly.newPlot("{fig_id}", {args});</script>'
    )


def _markdown(text: str) -> str:
    """Render markdown to sanitized HTML."""
    return sanitize_html(mistune.html(text))


def _output_html(out: Mapping[str, Any], counter: itertools.count) -> str | None:
    """Render one cell output, or None for outputs a stakeholder does not see."""
    kind = out.get("output_type")
    if kind == "stream":
        if out.get("name") != "stdout":
            return None  # stderr (warnings, logs) is for the run folder, not stakeholders
        text = _ANSI.sub("", _text(out.get("text", "")))
        return (
            f'<pre class="cx-stdout">{html.escape(text.rstrip())}</pre>' if text.strip() else None
        )
    if kind == "error":
        msg = f"{out.get('ename', 'Error')}: {_ANSI.sub('', str(out.get('evalue', '')))}"
        return f'<div class="cx-error">{html.escape(msg)}</div>'
    if kind not in ("display_data", "execute_result"):
        return None
    data = out.get("data", {})
    if PLOTLY_MIME in data:
        return _plotly_div(data[PLOTLY_MIME], f"cx-fig-{next(counter)}")
    if "application/vnd.jupyter.widget-view+json" in data and "text/html" not in data:
        return None
    if "text/html" in data:
        return sanitize_html(_text(data["text/html"]))
    for mime in ("image/png", "image/jpeg"):
        if mime in data:
            b64 = _text(data[mime]).replace("\n", "")
            base64.b64decode(b64[:64] + "=" * (-len(b64[:64]) % 4))  # sanity
            return f'<img alt="figure" src="data:{mime};base64,{b64}">'
    if "text/markdown" in data:
        return _markdown(_text(data["text/markdown"]))
    if "text/plain" in data:
        return f'<pre class="cx-stdout">{html.escape(_text(data["text/plain"]))}</pre>'
    return None


def _skip(cell: Mapping[str, Any]) -> bool:
    """Tell whether a cell is left out of the page (parameters, removed, nbval checks)."""
    tags = set(cell.get("metadata", {}).get("tags", []))
    if tags & {"parameters", "injected-parameters", "remove-cell", "remove-output"}:
        return True
    # Cells that pin key numbers for the nbval tests print plain text meant for the tests,
    # not for a stakeholder; the same numbers are shown properly elsewhere in the report.
    source = cell.get("source", "")
    source = "".join(source) if isinstance(source, list) else source
    return cell.get("cell_type") == "code" and source.lstrip().startswith("# NBVAL_CHECK_OUTPUT")


def _body(nb: Mapping[str, Any]) -> str:
    """Render the notebook's markdown and outputs (the first heading is the title)."""
    counter = itertools.count(1)
    parts: list[str] = []
    first_md = True
    for cell in nb.get("cells", []):
        if _skip(cell):
            continue
        if cell.get("cell_type") == "markdown":
            src = _text(cell.get("source", ""))
            if first_md:
                # the page header already shows the title
                src = re.sub(r"\A\s*#\s[^\n]*\n?", "", src)
                first_md = False
            if src.strip():
                parts.append(_markdown(src))
        elif cell.get("cell_type") == "code":
            for out in cell.get("outputs", []):
                rendered = _output_html(out, counter)
                if rendered:
                    parts.append(f'<div class="cx-output">{rendered}</div>')
    return "\n".join(parts)


def count_figures(nb: Mapping[str, Any]) -> int:
    """Count the plotly figures the executed notebook shows.

    Parameters
    ----------
    nb
        The executed notebook (a dict or nbformat node).

    Returns
    -------
    int
        Plotly outputs of the cells the page shows.
    """
    return sum(
        1
        for cell in nb.get("cells", [])
        if cell.get("cell_type") == "code" and not _skip(cell)
        for out in cell.get("outputs", [])
        if PLOTLY_MIME in out.get("data", {})
    )


def extract_headline(nb: Mapping[str, Any]) -> str | None:
    """Return the text of the first ``<p class="cx-headline">`` output.

    That is the line :func:`cxkit.findings.headline` shows; the report index lists it.

    Parameters
    ----------
    nb
        The executed notebook (a dict or nbformat node).

    Returns
    -------
    str or None
        The headline as plain text, or None when no output has one.

    Examples
    --------
    >>> nb = {"cells": [{"cell_type": "code", "outputs": [{"data": {"text/html":
    ...       '<p class="cx-headline">NPS is <b>+12</b> &amp; rising</p>'}}]}]}
    >>> extract_headline(nb)
    'NPS is +12 & rising'
    """
    for cell in nb.get("cells", []):
        for out in cell.get("outputs", []) if cell.get("cell_type") == "code" else []:
            text = _text(out.get("data", {}).get("text/html", ""))
            m = _HEADLINE.search(text)
            if m:
                return html.unescape(_TAG.sub("", m.group(1))).strip()
    return None


# --------------------------------------------------------------------------------------
# page
# --------------------------------------------------------------------------------------


def page(
    *,
    title: str,
    body: str,
    meta: Mapping[str, str],
    footer: str,
    with_plotly: bool,
    home: str | None = "index.html",
    plotly_mode: str = "inline",
) -> str:
    """Return a complete HTML page with the shared header and footer; no network references.

    Parameters
    ----------
    title
        The page title (escaped).
    body
        The page's HTML (already safe).
    meta
        Header facts shown as "label value" (escaped; empty values left out).
    footer
        The footer's HTML (escaped by the caller).
    with_plotly
        Load plotly.js once (for pages with figures).
    home
        Where the brand links to; ``None`` for no link.
    plotly_mode
        ``"inline"``: plotly.js inside the page; ``"shared"``: a ``<script src>`` of
        the report folder's :func:`plotly_asset` (publish it with
        :func:`publish_plotly`).

    Returns
    -------
    str
        The document, with the theme inlined.
    """
    meta_items = "".join(
        f"<li><b>{html.escape(k)}</b> {html.escape(v)}</li>" for k, v in meta.items() if v
    )
    brand = "cxkit report"
    if home:
        brand = f'<a href="{html.escape(home)}">cxkit reports</a>'
    plotly_script = ""
    if with_plotly:
        plotly_script = (
            f'<script src="{plotly_asset()}"></script>\n'
            if _plotly_mode(plotly_mode) == "shared"
            else f"<script>{plotly_js()}</script>\n"
        )
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{html.escape(title)}</title>\n"
        f"<style>\n{theme_css()}</style>\n"
        f"{plotly_script}"
        "</head>\n<body>\n"
        f'<header class="cx-header"><div class="cx-wrap"><span class="cx-brand">{brand}</span>'
        f"<h1>{html.escape(title)}</h1>"
        f'<ul class="cx-meta">{meta_items}</ul></div></header>\n'
        f'<main class="cx-wrap">\n{body}\n</main>\n'
        f'<footer class="cx-footer"><div class="cx-wrap">{footer}</div></footer>\n'
        "</body>\n</html>\n"
    )


def _plotly_mode(mode: str) -> str:
    """Return ``mode`` when it is one of :data:`PLOTLY_MODES`, else raise."""
    if mode not in PLOTLY_MODES:
        raise UsageError(
            f"plotly_mode must be {' or '.join(map(repr, PLOTLY_MODES))}, got {mode!r}"
        )
    return mode


def notebook_to_html(
    nb: Mapping[str, Any],
    *,
    title: str,
    meta: Mapping[str, str],
    footer: str = "",
    plotly_mode: str = "inline",
) -> str:
    """Render an executed notebook (a dict or nbformat node) as one offline HTML page.

    Parameters
    ----------
    nb
        The executed notebook.
    title
        Shown in the header and the browser tab.
    meta
        Header facts shown as "label value" (e.g. ``{"As of": "2024-12-31"}``).
    footer
        HTML for the footer (escaped by the caller).
    plotly_mode
        ``"inline"`` (one self-contained file) or ``"shared"`` (the page loads the
        report folder's ``_assets/plotly-<version>.min.js``), as in :func:`page`.

    Returns
    -------
    str
        The page (see :func:`page`): markdown and outputs, no code, no prompts.
    """
    body = _body(nb)
    sections = f'<section class="cx-section">\n{body}\n</section>'
    return page(
        title=title,
        body=sections,
        meta=meta,
        footer=footer,
        with_plotly=count_figures(nb) > 0,
        plotly_mode=plotly_mode,
    )
