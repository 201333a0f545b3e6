"""Real-browser test: the sparsity chapter runs in JupyterLab and its λ slider works.

JupyterLab is started on 127.0.0.1 with a token; headless Chromium (Playwright, system
Chromium) opens ``notebooks/06_frequency_sparsity.md`` as a Jupytext notebook, runs all
cells, checks that none errored, moves the λ slider of the sparsity explorer and checks that
both the figure and the displayed sparsity change. The chapter is copied to a scratch folder
first, so the running Lab never writes next to the sources (no paired ``.ipynb``, no
checkpoints). Screenshots and the Lab log are kept in that folder.
"""
from __future__ import annotations

import secrets
import shutil
import time
from pathlib import Path

import pytest
from browser_utils import CHROME_ARGS, chromium_path, free_port, start_jupyterlab, stop_process

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[1]
CHAPTER = ROOT / "notebooks" / "06_frequency_sparsity.md"
TIMEOUT_MS = 90_000  # kernel start + torch import + a ~30 s chapter on a busy 2-core machine

KERNEL_READY = """() => { const w = window.jupyterapp.shell.currentWidget;
    const k = w && w.sessionContext && w.sessionContext.session && w.sessionContext.session.kernel;
    return !!k && k.connectionStatus === 'connected' && k.status === 'idle'; }"""
ALL_CELLS_RAN = """() => { const p = [...document.querySelectorAll(
    '.jp-NotebookPanel:not(.lm-mod-hidden) .jp-CodeCell .jp-InputPrompt')];
    return p.length > 0 && p.every(e => /\\[\\d+\\]/.test(e.textContent)); }"""
IMG_CHANGED = """([sel, old]) => { const i = document.querySelector(sel);
    return !!i && i.getAttribute('src') !== old; }"""


@pytest.fixture
def lab(tmp_path):
    work = tmp_path / "notebooks"
    work.mkdir()
    shutil.copy(CHAPTER, work / CHAPTER.name)
    token = secrets.token_hex(16)
    port = free_port()
    proc = start_jupyterlab(work, port, token, tmp_path / "lab", env={"AFNO_FAST": "1"})
    try:
        yield f"http://127.0.0.1:{port}", token, tmp_path
    finally:
        stop_process(proc)


def test_sparsity_slider_in_jupyterlab(lab):
    chromium = chromium_path()
    if chromium is None:
        pytest.skip("no Chromium found at /usr/bin/chromium or $CHROMIUM")
    from playwright.sync_api import expect, sync_playwright

    base, token, out = lab
    t0 = time.monotonic()
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=CHROME_ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 1000})
        page.set_default_timeout(TIMEOUT_MS)
        expect.set_options(timeout=TIMEOUT_MS)
        try:
            page.goto(f"{base}/lab?token={token}")
            page.wait_for_function("window.jupyterapp && window.jupyterapp.restored")
            page.evaluate("""(path) => window.jupyterapp.restored.then(() =>
                window.jupyterapp.commands.execute('docmanager:open', {path, factory: 'Jupytext Notebook'}))
                .then(() => true)""", CHAPTER.name)
            nb = page.locator(".jp-NotebookPanel:visible")
            expect(nb.locator(".jp-Cell").first).to_be_visible()
            page.wait_for_function(KERNEL_READY)

            page.get_by_role("menuitem", name="Run", exact=True).click()
            page.get_by_role("menuitem", name="Run All Cells", exact=True).click()
            page.wait_for_function(ALL_CELLS_RAN, polling=500)
            page.wait_for_function(KERNEL_READY)
            errors = nb.locator("[data-mime-type='application/vnd.jupyter.error']")
            assert errors.count() == 0, errors.first.inner_text()

            explorer = nb.locator(".afno-sparsity-explorer")
            expect(explorer).to_have_count(1)
            img_sel = ".jp-NotebookPanel:not(.lm-mod-hidden) .afno-sparsity-explorer .widget-output img"
            img = page.locator(img_sel)
            sparsity = explorer.locator(".afno-sparsity")
            readout = explorer.locator(".widget-slider .widget-readout")
            explorer.scroll_into_view_if_needed()
            expect(img).to_be_visible()
            expect(readout).to_have_text("0.1")                   # the chapter starts the explorer at λ = 0.1
            before_src, before_text = img.get_attribute("src"), sparsity.inner_text()
            page.screenshot(path=str(out / "lab_before.png"))

            # A SelectionSlider's readout is not editable: drive the noUiSlider handle with the
            # keyboard. "End" jumps to the last λ (one change, one redraw), which zeroes every mode.
            handle = explorer.locator(".widget-slider .noUi-handle")
            handle.focus()
            page.keyboard.press("End")
            expect(readout).not_to_have_text("0.1")
            page.wait_for_function(IMG_CHANGED, arg=[img_sel, before_src])
            expect(sparsity).to_have_text("0.0 %")
            assert sparsity.inner_text() != before_text
            page.screenshot(path=str(out / "lab_after.png"))
        except Exception:
            page.screenshot(path=str(out / "lab_failure.png"))
            raise
        finally:
            browser.close()
    assert time.monotonic() - t0 < 120, "the browser test must stay under 2 minutes"
