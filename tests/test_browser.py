"""A real browser: JupyterLab in Debian's chromium runs notebook 04 and the gamma slider works.

Needs the ``browser`` extra (pytest-playwright) and ``/usr/bin/chromium`` (Debian package
``chromium``; Playwright never downloads a browser here). Skips with the install command where
either is missing, except in CI (``NUDGE_REQUIRE_BROWSER=1``), where it must run.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from conftest import REPO
from lab_server import running_lab

try:
    from playwright.sync_api import TimeoutError as PlaywrightTimeout
except ImportError:  # the module skips below
    PlaywrightTimeout = TimeoutError

CHROMIUM = "/usr/bin/chromium"
VIEWPORT = {"width": 1400, "height": 1000}  # a laptop screen
REQUIRED = bool(os.environ.get("NUDGE_REQUIRE_BROWSER"))

pytestmark = pytest.mark.browser

if not REQUIRED:
    if not Path(CHROMIUM).exists():
        pytest.skip(
            "chromium is not installed: apt-get install chromium (and pip install -e '.[browser]')",
            allow_module_level=True,
        )
    pytest.importorskip("pytest_playwright", reason="the browser extra is missing: pip install -e '.[browser]'")


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    return {
        **browser_type_launch_args,
        "executable_path": CHROMIUM,
        "args": ["--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--disable-background-networking"],
    }


@pytest.fixture(scope="session")
def browser_context_args(browser_context_args):
    return {**browser_context_args, "viewport": VIEWPORT}


@pytest.fixture
def lab(tmp_path):
    """What ``make lab`` starts (tools/lab.py) serving a copy of notebook 04; always stopped afterwards."""
    root = tmp_path / "notebooks"
    root.mkdir()
    shutil.copy(REPO / "notebooks" / "04_step_size.ipynb", root)
    with running_lab(tmp_path, root) as served:
        yield served


def box(locator) -> dict:
    """The element's bounding box in the page (CSS px): x, y, width, height."""
    b = locator.bounding_box()
    assert b is not None, "element is not displayed"
    return b


def inside_viewport(b: dict) -> bool:
    return (
        b["x"] >= 0
        and b["y"] >= 0
        and b["x"] + b["width"] <= VIEWPORT["width"]
        and b["y"] + b["height"] <= VIEWPORT["height"]
    )


def test_gamma_slider_in_jupyterlab(lab, page, tmp_path):
    page.set_default_timeout(120_000)
    page.goto(f"{lab.url}/lab/tree/04_step_size.ipynb?token={lab.token}")
    page.locator(".jp-Notebook").first.wait_for()
    select = page.locator(".jp-Dialog button", has_text="Select")  # JupyterLab may ask which kernel
    try:
        select.wait_for(timeout=15_000)
        select.click()
    except PlaywrightTimeout:
        pass
    page.locator(".jp-Notebook-ExecutionIndicator[data-status='idle']").first.wait_for(state="attached")
    page.locator(".lm-MenuBar-itemLabel", has_text="Run").first.click()
    page.locator(".lm-Menu-itemLabel", has_text="Run All Cells").first.click()

    handle = page.locator(".widget-slider .noUi-handle").first
    handle.wait_for()
    readout = page.locator(".widget-html-content", has_text="hold-out test").first
    readout.wait_for()
    image = page.locator(".widget-image").first
    page.wait_for_function(
        "el => el.src && el.src.startsWith('blob:') || el.src.startsWith('data:')", arg=image.element_handle()
    )
    before_text, before_src = readout.inner_text(), image.get_attribute("src")
    page.wait_for_function(  # every code cell has run (JupyterLab follows the running cell until then)
        """() => [...document.querySelectorAll('.jp-CodeCell .jp-InputPrompt')]
                 .every(p => /\\[\\d+\\]/.test(p.textContent))"""
    )

    # A laptop screen: with the slider in the middle of the view, where a learner holds it, the
    # whole plot is in view too, and the slider's track is wide enough to aim at a gamma.
    slider = page.locator(".widget-slider").first
    track = page.locator(".widget-slider .noUi-target").first
    slider_box = None
    for _ in range(5):  # the notebook measures cells as they scroll in, so scroll until it settles
        slider.evaluate("el => el.scrollIntoView({block: 'center'})")
        page.wait_for_timeout(500)
        if slider_box == (slider_box := box(slider)):
            break
    track_box, plot_box = box(track), box(image)
    shot = tmp_path / "explorer-1400x1000.png"
    page.screenshot(path=str(shot))
    layout = f"slider {slider_box}, track {track_box}, plot {plot_box}; screenshot {shot}"
    print(layout)
    assert inside_viewport(slider_box) and inside_viewport(plot_box), layout
    assert track_box["width"] > 300, layout
    assert page.locator(".jp-toast-message, .Toastify__toast", has_text="Jupyter news").count() == 0

    handle.focus()
    for _ in range(8):
        handle.press("ArrowRight")
    page.wait_for_function("([el, old]) => el.src !== old", arg=[image.element_handle(), before_src])
    page.wait_for_function("([el, old]) => el.innerText !== old", arg=[readout.element_handle(), before_text])
    assert readout.inner_text() != before_text
    assert image.get_attribute("src") != before_src
    assert "gamma =" in readout.inner_text()
    moved_box = box(image)  # the plot stays put while the slider moves (nothing above it grows)
    page.screenshot(path=str(tmp_path / "explorer-1400x1000-moved.png"))
    assert abs(moved_box["y"] - plot_box["y"]) < 2 and inside_viewport(moved_box), (moved_box, layout)
