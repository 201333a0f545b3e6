"""Tests of the built Jupyter Book site (run after `make book`).

* every chapter of the table of contents became a page;
* in headless Chromium, served from a loopback http.server: no request leaves the
  machine, no JavaScript error, every math block rendered by MathJax, every image
  loaded; a kernel-free slider changes its picture; screenshots are saved under
  ``book/_build/screenshots``;
* the reader's view at 1280 px on every page: every display equation fits the text
  column, every content image has at least 1.5 device pixels per CSS pixel, no page shows
  ipywidgets controls that would need a kernel (the kernel-free players are fine);
* navigation at 400, 900 and 1280 px: the table of contents opens (a chapter link in it is
  visible, on top and leads to the chapter), the page contents open below the wide
  layout, and at 1280 px the toggle hides and shows the sidebar again.
"""
from __future__ import annotations

import functools
import http.server
import os
import re
import threading
from pathlib import Path
from urllib.parse import urlparse

import pytest
import yaml
from browser_utils import CHROME_ARGS, chromium_path

ROOT = Path(__file__).resolve().parents[1]
BOOK = ROOT / "book"
HTML = Path(os.environ.get("BOOK_HTML", BOOK / "_build" / "html"))
SHOTS = HTML.parent / "screenshots"

pytestmark = pytest.mark.book


def toc_files() -> list[str]:
    toc = yaml.safe_load((BOOK / "_toc.yml").read_text())
    files = [toc["root"]]
    for part in toc.get("parts", []):
        files += [c["file"] for c in part["chapters"]]
    return files


def require_site():
    if not (HTML / "intro.html").exists():
        pytest.fail(f"no built site at {HTML}: run `make book` first")


def test_toc_lists_every_chapter_in_notebooks():
    chapters = sorted(p.stem for p in (ROOT / "notebooks").glob("[0-9][0-9]_*.md"))
    listed = sorted(Path(f).name for f in toc_files() if f.startswith("notebooks/"))
    assert chapters, "no chapters found in notebooks/"
    assert listed == chapters, f"_toc.yml and notebooks/ disagree: toc={listed} files={chapters}"


def test_every_page_was_built():
    require_site()
    missing = [f for f in toc_files() if not (HTML / f"{f}.html").exists()]
    assert not missing, f"pages missing from the built site: {missing}"
    assert len(toc_files()) == 15  # intro + notation + 12 chapters + claims ledger


def test_no_cdn_reference_left_in_pages():
    require_site()
    offenders = {}
    for page in HTML.rglob("*.html"):
        srcs = re.findall(r'<(?:script|link)[^>]+(?:src|href)="(https?://[^"]+)"', page.read_text())
        if srcs:
            offenders[str(page.relative_to(HTML))] = srcs
    assert not offenders, f"pages load resources from the network: {offenders}"


# ----------------------------------------------------------------------------- browser
def _chromium() -> str:
    path = chromium_path()
    if path is None:
        pytest.skip("no Chromium found at $CHROMIUM or /usr/bin/chromium (apt-get install chromium)")
    pytest.importorskip("playwright.sync_api")
    return path


@pytest.fixture(scope="module")
def site_url():
    require_site()
    handler = functools.partial(_QuietHandler, directory=str(HTML))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # keep pytest output readable
        pass


@pytest.fixture(scope="module")
def browser():
    chromium = _chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=chromium, args=CHROME_ARGS)
        yield b
        b.close()


RENDER_CHECK = """() => {
  const math = [...document.querySelectorAll('div.math, span.math')];
  const raw = math.filter(m => !m.querySelector('mjx-container')).map(m => m.textContent.slice(0, 60));
  const errors = [...document.querySelectorAll('mjx-merror')].map(e => e.textContent.slice(0, 60));
  const imgs = [...document.querySelectorAll('img')];
  const broken = imgs.filter(i => !(i.complete && i.naturalWidth > 0) && !i.closest('.animation'))
                     .map(i => (i.getAttribute('src') || '').slice(0, 60));
  return {nmath: math.length, raw, errors, nimg: imgs.length, broken};
}"""

# Every display equation (MathJax 3 CHTML: mjx-container[display]) must fit the text column:
# nothing scrolls or is clipped inside it, and the typeset maths ends inside the article.
MATH_FIT = """() => {
  const article = document.querySelector('article.bd-article') || document.body;
  const right = article.getBoundingClientRect().right;
  const doc = window.MathJax && MathJax.startup && MathJax.startup.document;
  return [...document.querySelectorAll('mjx-container[display]')].map(c => {
    const box = c.closest('div.math') || c.parentElement;
    const m = c.querySelector('mjx-math') || c;
    const over = Math.max(c.scrollWidth - c.clientWidth, box.scrollWidth - box.clientWidth,
                          m.getBoundingClientRect().right - Math.min(right, box.getBoundingClientRect().right));
    let tex = '';
    try { tex = doc.getMathItemsWithin(c)[0].math; } catch (e) { tex = c.textContent; }
    const label = (box.id || '').replace(/^equation-/, '');
    return {over: Math.round(over), label, tex: tex.replace(/\\s+/g, ' ').trim().slice(0, 70)};
  }).filter(r => r.over > 1);
}"""

# Content images (figures, player frames) with their natural and on-screen widths.
IMAGE_PIXELS = """() => [...document.querySelectorAll('article.bd-article img')]
  .filter(i => i.getBoundingClientRect().width > 0)
  .map(i => ({src: (i.getAttribute('src') || '').split('/').pop().slice(0, 24),
              natural: i.naturalWidth, shown: Math.round(i.getBoundingClientRect().width),
              aspect: i.naturalWidth / Math.max(i.naturalHeight, 1),
              shown_aspect: i.getBoundingClientRect().width / Math.max(i.getBoundingClientRect().height, 1),
              fig: (i.closest('figure') || {}).id || ''}))"""

# ipywidgets controls rendered from embedded widget state: on a static page nothing answers them.
CODE_FIT = """() => [...document.querySelectorAll(
    'article.bd-article div.cell_input pre, article.bd-article div.cell_output pre')]
  .filter(p => p.getBoundingClientRect().width > 0 && p.scrollWidth > p.clientWidth + 1)
  .map(p => ({kind: p.closest('.cell_input') ? 'code' : 'output', over: p.scrollWidth - p.clientWidth,
              line: (p.textContent.split('\\n').reduce((a, b) => b.length > a.length ? b : a, '')).slice(0, 100)}))"""

DEAD_WIDGETS = """() => [...document.querySelectorAll(
    '.jupyter-widgets, .widget-slider, .widget-dropdown, .widget-toggle-buttons, .widget-text')]
  .filter(w => !w.closest('.animation') && !(w.parentElement && w.parentElement.closest('.jupyter-widgets')))
  .map(w => { const cell = w.closest('.cell'); const id = cell && (cell.id || cell.querySelector('[id]')?.id);
              return (id ? id + ': ' : '') + (w.className || '').toString().slice(0, 60) + ' ' +
                     (w.textContent || '').trim().slice(0, 30); })"""
WIDGET_VIEW_MIME = "application/vnd.jupyter.widget-view+json"


def _open(page, url):
    page.goto(url, wait_until="load")
    page.wait_for_function("() => !document.querySelector('div.math, span.math') || "
                           "(window.MathJax && MathJax.startup && MathJax.startup.promise)")
    page.evaluate("() => window.MathJax && MathJax.startup ? MathJax.startup.promise : null")
    return page.evaluate(RENDER_CHECK)


@pytest.fixture(scope="module")
def site_report(browser, site_url):
    """Every page of the table of contents opened once at 1280 px, offline; what the tests
    below assert on. Requests that try to leave the machine are aborted and recorded."""
    page = browser.new_page(viewport={"width": 1280, "height": 1000})
    outside, js_errors, failed = [], [], []

    def route(r):
        host = urlparse(r.request.url).hostname
        if r.request.url.startswith(("data:", "blob:", "about:")) or host == "127.0.0.1":
            r.continue_()
        else:
            outside.append(r.request.url)
            r.abort()

    page.route("**/*", route)
    page.on("pageerror", lambda e: js_errors.append(str(e)))
    page.on("requestfailed", lambda r: failed.append(r.url))
    pages = {}
    for f in toc_files():
        if not (HTML / f"{f}.html").exists():
            continue  # reported by test_every_page_was_built
        res = _open(page, f"{site_url}/{f}.html")
        html = (HTML / f"{f}.html").read_text(encoding="utf-8")
        res["widget_views"] = html.count(WIDGET_VIEW_MIME)
        if res["widget_views"]:  # give the widget renderer time to draw what it would draw
            try:
                page.wait_for_selector(".jupyter-widgets", timeout=10_000)
            except Exception:  # noqa: BLE001 -- nothing drawn: reported through widget_views
                pass
        res["math_overflow"] = page.evaluate(MATH_FIT)
        res["images"] = page.evaluate(IMAGE_PIXELS)
        res["dead_widgets"] = page.evaluate(DEAD_WIDGETS)
        res["code_overflow"] = page.evaluate(CODE_FIT)
        # The checks above lay the page out, which is when the browser starts fetching the
        # fonts it shows (MathJax's large-delimiter fonts among them); let them finish before
        # leaving, or the next page.goto aborts them and they read as failed requests.
        page.evaluate("() => document.fonts.ready.then(() => document.fonts.status)")
        pages[f] = res
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.goto(f"{site_url}/intro.html")
    page.screenshot(path=str(SHOTS / "intro.png"), full_page=False)
    page.close()
    return {"pages": pages, "outside": outside, "js_errors": js_errors, "failed": failed}


def test_every_page_renders_offline(site_report):
    report = site_report["pages"]
    for f, res in report.items():
        assert not res["raw"], f"{f}: math blocks not rendered by MathJax: {res['raw'][:3]}"
        assert not res["errors"], f"{f}: MathJax errors: {res['errors'][:3]}"
        assert not res["broken"], f"{f}: images that did not load: {res['broken'][:3]}"
    outside, js_errors, failed = site_report["outside"], site_report["js_errors"], site_report["failed"]
    assert not outside, f"requests that tried to leave the machine: {sorted(set(outside))[:10]}"
    assert not js_errors, f"JavaScript errors: {js_errors[:5]}"
    assert not [u for u in failed if "127.0.0.1" in u], f"failed local requests: {failed[:5]}"
    assert sum(r["nmath"] for r in report.values()) > 20, "suspiciously little math on the site"
    assert sum(r["nimg"] for r in report.values()) > 20, "suspiciously few figures on the site"


def test_display_math_fits_the_column(site_report):
    """At 1280 px no display equation is wider than the text column (clipped or scrolled)."""
    pages = site_report["pages"]
    assert sum(len(r["math_overflow"]) + r["nmath"] for r in pages.values()) > 20
    bad = {f: r["math_overflow"] for f, r in pages.items() if r["math_overflow"]}
    lines = [f"  {f}: {o['over']} px too wide: {o['label'] or '(no label)'}: {o['tex']}"
             for f, offenders in bad.items() for o in offenders]
    assert not bad, (f"{len(lines)} display equations do not fit the text column at 1280 px "
                     "(split them over aligned lines):\n" + "\n".join(lines))


def test_code_cells_and_printed_output_fit_the_column(site_report):
    """At 1280 px no code cell and no printed output needs sideways scrolling (lines of at most
    88 characters, book/_static_src/code.css sizes the monospace font for them)."""
    pages = site_report["pages"]
    bad = {f: r["code_overflow"] for f, r in pages.items() if r["code_overflow"]}
    lines = [f"  {f}: {o['kind']} {o['over']} px too wide: {o['line']!r}"
             for f, offenders in bad.items() for o in offenders]
    assert not bad, (f"{len(lines)} code cells or outputs scroll sideways at 1280 px:\n" + "\n".join(lines))


MIN_PIXELS_PER_CSS_PIXEL = 1.5


def test_figures_have_pixels_for_the_column(site_report):
    """At 1280 px every content image has >= 1.5 image pixels per CSS pixel it is shown at, so
    figures stay sharp on high-density screens and when zoomed, and keeps its aspect ratio."""
    pages = site_report["pages"]
    images = [(f, i) for f, r in pages.items() for i in r["images"]]
    assert len(images) > 20, "suspiciously few figures on the site"
    low = [(f, i) for f, i in images if i["natural"] < MIN_PIXELS_PER_CSS_PIXEL * i["shown"]]
    lines = [f"  {f}: {i['fig'] or i['src']}: {i['natural']} px wide, shown at {i['shown']} px "
             f"({i['natural'] / max(i['shown'], 1):.2f}x)" for f, i in low]
    assert not low, (f"{len(low)} of {len(images)} images have fewer than {MIN_PIXELS_PER_CSS_PIXEL} "
                     "pixels per CSS pixel at 1280 px (afno_lite.use_book_style sets the dpi):\n"
                     + "\n".join(lines))
    squeezed = [(f, i) for f, i in images if abs(i["shown_aspect"] / i["aspect"] - 1) > 0.01]
    assert not squeezed, "images shown with another aspect ratio than their own: " + ", ".join(
        f"{f}: {i['fig'] or i['src']} ({i['aspect']:.3f} shown as {i['shown_aspect']:.3f})" for f, i in squeezed)


def test_no_dead_widget_controls(site_report):
    """A static page shows no ipywidgets controls (they need a kernel to do anything); the
    kernel-free players (``offline_jshtml``) take their place."""
    pages = site_report["pages"]
    bad = {f: r["dead_widgets"] for f, r in pages.items() if r["dead_widgets"]}
    embedded = {f: r["widget_views"] for f, r in pages.items() if r["widget_views"]}
    assert not bad, ("ipywidgets controls on the static site, which do nothing without a kernel "
                     f"(tag the cell remove-output and show a kernel-free player): {bad}")
    assert not embedded, f"pages still embed ipywidgets views ({WIDGET_VIEW_MIME}): {embedded}"
    assert any(r["nimg"] for r in pages.values())


# ----------------------------------------------------------------------------- navigation
NAV_PAGE = "notebooks/05_afno_step_by_step"
NAV_TARGET = "03_fourier_neural_operators.html"
NARROW = 992  # below this width the theme hides the left sidebar behind the ☰ button
# Is a link matching the selector on screen, inside the viewport and the topmost element
# under its centre (so a click lands on it)?
ON_TOP = """(sel) => [...document.querySelectorAll(sel)].some(a => {
  const r = a.getBoundingClientRect();
  if (r.width < 1 || r.height < 1) return false;
  const x = r.left + Math.min(r.width / 2, 20), y = r.top + r.height / 2;
  if (x < 0 || y < 0 || x >= innerWidth || y >= innerHeight) return false;
  const hit = document.elementFromPoint(x, y);
  return !!hit && (hit === a || a.contains(hit));
})"""
TOC_LINK = f'.bd-links a[href$="{NAV_TARGET}"]'
PAGE_TOC_LINK = ".page-toc a, .bd-toc-nav a"


def _visible_button(page, css):
    buttons = page.locator(css)
    shown = [buttons.nth(i) for i in range(buttons.count()) if buttons.nth(i).is_visible()]
    assert shown, f"no visible {css} button"
    return shown[0]


def _wait_on_top(page, sel, on_top: bool, what: str, width: int):
    try:
        page.wait_for_function(f"(sel) => ({ON_TOP})(sel) === {str(on_top).lower()}", arg=sel,
                               timeout=3_000)
    except Exception as e:  # noqa: BLE001 -- re-raised with what the reader would see
        state = "visible and clickable" if on_top else "hidden"
        raise AssertionError(f"at {width} px: {what} should be {state} but is not") from e


@pytest.mark.parametrize("width", [400, 900, 1280])
def test_navigation_at_width(browser, site_url, width):
    page = browser.new_page(viewport={"width": width, "height": 900})
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    try:
        page.goto(f"{site_url}/{NAV_PAGE}.html", wait_until="load")
        toggle = _visible_button(page, "button.primary-toggle")
        if width < NARROW:
            _wait_on_top(page, TOC_LINK, False, "the table of contents (before ☰)", width)
            toggle.click()
            _wait_on_top(page, TOC_LINK, True, "the table of contents after clicking ☰", width)
        else:
            _wait_on_top(page, TOC_LINK, True, "the table of contents in the left sidebar", width)
            toggle.click()
            _wait_on_top(page, TOC_LINK, False, "the left sidebar after clicking ☰ (collapse)", width)
            toggle.click()
            _wait_on_top(page, TOC_LINK, True, "the left sidebar after clicking ☰ again", width)
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SHOTS / f"nav-{width}.png"))
        page.locator(TOC_LINK).first.click()
        page.wait_for_url(f"**/{NAV_TARGET}", timeout=10_000)

        if width < NARROW:  # the page contents ("On this page") open from their own button
            page.goto(f"{site_url}/{NAV_PAGE}.html", wait_until="load")
            _wait_on_top(page, PAGE_TOC_LINK, False, "the page contents (before the button)", width)
            _visible_button(page, "button.secondary-toggle").click()
            _wait_on_top(page, PAGE_TOC_LINK, True, "the page contents after clicking their button", width)
        assert not errors, f"JavaScript errors at {width} px: {errors[:3]}"
    finally:
        page.close()


def test_kernel_free_slider_changes_picture(browser, site_url):
    page = browser.new_page(viewport={"width": 1280, "height": 1000})
    page.goto(f"{site_url}/notebooks/06_frequency_sparsity.html", wait_until="load")
    anim = page.locator(".animation").first
    anim.scroll_into_view_if_needed()
    img = anim.locator("img").first
    rng = anim.locator("input[type=range]").first
    first = img.get_attribute("src")
    last = int(rng.get_attribute("max"))
    assert last >= 3, "the precomputed slider should have several frames"
    rng.fill(str(last))  # move the slider: fires input/change, the frame is swapped in JS
    page.wait_for_function("([el, old]) => el.getAttribute('src') !== old", arg=[img.element_handle(), first])
    assert img.get_attribute("src") != first
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "sparsity.png"), full_page=False)
    page.close()
    assert (SHOTS / "sparsity.png").stat().st_size > 10_000
