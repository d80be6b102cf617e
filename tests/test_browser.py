"""A real browser: JupyterLab in Debian's chromium runs notebook 04 and the gamma slider works.

Needs the ``browser`` extra (pytest-playwright) and ``/usr/bin/chromium`` (Debian package
``chromium``; Playwright never downloads a browser here). Skips with the install command where
either is missing, except in CI (``NUDGE_REQUIRE_BROWSER=1``), where it must run.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from conftest import REPO

try:
    from playwright.sync_api import TimeoutError as PlaywrightTimeout
except ImportError:  # the module skips below
    PlaywrightTimeout = TimeoutError

CHROMIUM = "/usr/bin/chromium"
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


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def lab(tmp_path):
    """JupyterLab on 127.0.0.1 serving a copy of notebook 04; always stopped afterwards."""
    root = tmp_path / "notebooks"
    root.mkdir()
    shutil.copy(REPO / "notebooks" / "04_step_size.ipynb", root)
    port = free_port()
    env = {
        **os.environ,
        "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime"),
        "JUPYTERLAB_WORKSPACES_DIR": str(tmp_path / "workspaces"),
        "JUPYTER_CONFIG_DIR": str(tmp_path / "config"),
    }
    cmd = [
        sys.executable, "-m", "jupyter", "lab", "--no-browser", "--allow-root",
        "--ServerApp.ip=127.0.0.1", f"--port={port}", "--IdentityProvider.token=", "--ServerApp.password=",
        f"--ServerApp.root_dir={root}", "--ServerApp.disable_check_xsrf=True",
    ]  # fmt: skip
    log = (tmp_path / "lab.log").open("w")
    server = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/api/status", timeout=2)
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(
                        f"JupyterLab did not start: {(tmp_path / 'lab.log').read_text()[-2000:]}"
                    ) from None
                time.sleep(0.5)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        log.close()


def test_gamma_slider_in_jupyterlab(lab, page):
    page.set_default_timeout(120_000)
    page.goto(f"{lab}/lab/tree/04_step_size.ipynb")
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

    handle.focus()
    for _ in range(8):
        handle.press("ArrowRight")
    page.wait_for_function("([el, old]) => el.src !== old", arg=[image.element_handle(), before_src])
    page.wait_for_function("([el, old]) => el.innerText !== old", arg=[readout.element_handle(), before_text])
    assert readout.inner_text() != before_text
    assert image.get_attribute("src") != before_src
    assert "gamma =" in readout.inner_text()
