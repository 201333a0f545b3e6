"""Tests of the built Jupyter Book site (run after `make book`).

* every chapter of the table of contents became a page;
* in headless Chromium, served from a loopback http.server: no request leaves the
  machine, no JavaScript error, every math block rendered by MathJax, every image
  loaded; a kernel-free slider changes its picture; screenshots are saved under
  ``book/_build/screenshots``.
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
    assert len(toc_files()) == 13  # intro + notation + 11 chapters


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


def _open(page, url):
    page.goto(url, wait_until="load")
    page.wait_for_function("() => !document.querySelector('div.math, span.math') || "
                           "(window.MathJax && MathJax.startup && MathJax.startup.promise)")
    page.evaluate("() => window.MathJax && MathJax.startup ? MathJax.startup.promise : null")
    return page.evaluate(RENDER_CHECK)


def test_every_page_renders_offline(browser, site_url):
    SHOTS.mkdir(parents=True, exist_ok=True)
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
    report = {}
    for f in toc_files():
        url = f"{site_url}/{f}.html"
        res = _open(page, url)
        report[f] = res
        assert not res["raw"], f"{f}: math blocks not rendered by MathJax: {res['raw'][:3]}"
        assert not res["errors"], f"{f}: MathJax errors: {res['errors'][:3]}"
        assert not res["broken"], f"{f}: images that did not load: {res['broken'][:3]}"
    assert not outside, f"requests that tried to leave the machine: {sorted(set(outside))[:10]}"
    assert not js_errors, f"JavaScript errors: {js_errors[:5]}"
    assert not [u for u in failed if "127.0.0.1" in u], f"failed local requests: {failed[:5]}"
    assert sum(r["nmath"] for r in report.values()) > 20, "suspiciously little math on the site"
    assert sum(r["nimg"] for r in report.values()) > 20, "suspiciously few figures on the site"
    page.goto(f"{site_url}/intro.html")
    page.screenshot(path=str(SHOTS / "intro.png"), full_page=False)
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
