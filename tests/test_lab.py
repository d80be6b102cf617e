"""`make lab` really serves: the command it runs (tools/lab.py) starts JupyterLab on 127.0.0.1,
as root too, without a browser where there is no display and without the news pop-up."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import REPO
from lab_server import STOP_TIMEOUT, running_lab

from tools import lab as labtool

NOTIFICATION = labtool.NOTIFICATION_PLUGIN


def _command(**changes):
    kwargs = {"python": "/env/bin/python", "euid": 1000, "display": True, "settings_dir": "/env/settings"}
    return labtool.lab_command("notebooks", **{**kwargs, **changes})


def test_command_allows_root_only_for_root_and_opens_no_browser_without_a_display():
    user = _command()
    assert user[:4] == ["/env/bin/python", "-m", "jupyter", "lab"]
    assert "--ServerApp.ip=127.0.0.1" in user
    assert f"--ServerApp.root_dir={(Path('notebooks')).resolve()}" in user
    assert f"--LabApp.app_settings_dir={Path('/env/settings').resolve()}" in user
    assert "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate" in user
    assert "--allow-root" not in user and "--no-browser" not in user
    assert "--allow-root" in _command(euid=0)
    assert "--allow-root" not in _command(euid=None)  # Windows: no user ids
    assert "--no-browser" in _command(display=False)
    assert "--ServerApp.port=8890" in _command(port=8890)
    assert "--ServerApp.ip=0.0.0.0" in _command(ip="0.0.0.0")
    with pytest.raises(ValueError, match=r"port must be between 1 and 65535"):
        _command(port=70000)
    with pytest.raises(ValueError, match=r"ip must be an address"):
        _command(ip="")


def test_display_detection():
    assert not labtool.has_display("linux", {})
    assert labtool.has_display("linux", {"DISPLAY": ":0"})
    assert labtool.has_display("linux", {"WAYLAND_DISPLAY": "wayland-0"})
    assert labtool.has_display("darwin", {}) and labtool.has_display("win32", {})


def test_settings_folder_is_the_environments_not_the_home(monkeypatch):
    monkeypatch.delenv("JUPYTERLAB_DIR", raising=False)
    assert labtool.default_settings_dir() == Path(sys.prefix) / "share" / "jupyter" / "lab" / "settings"
    assert labtool.default_settings_dir("/opt/env") == Path("/opt/env/share/jupyter/lab/settings")
    monkeypatch.setenv("JUPYTERLAB_DIR", "/opt/lab")
    assert labtool.default_settings_dir() == Path("/opt/lab/settings")


def test_overrides_are_merged_into_what_is_there(tmp_path):
    path = labtool.write_overrides(tmp_path / "settings")
    assert json.loads(path.read_text()) == labtool.QUIET_SETTINGS
    mine = {
        "@jupyterlab/apputils-extension:themes": {"theme": "JupyterLab Dark"},
        NOTIFICATION: {"doNotDisturbMode": True},
    }
    path.write_text(json.dumps(mine))
    labtool.write_overrides(tmp_path / "settings")
    merged = json.loads(path.read_text())
    assert merged["@jupyterlab/apputils-extension:themes"] == {"theme": "JupyterLab Dark"}
    assert merged[NOTIFICATION] == {"doNotDisturbMode": True, "fetchNews": "false", "checkForUpdates": False}
    before = path.stat().st_mtime_ns
    time.sleep(0.01)
    labtool.write_overrides(tmp_path / "settings")  # nothing to change: not rewritten
    assert path.stat().st_mtime_ns == before
    path.write_text("[1, 2]")
    with pytest.raises(ValueError, match=r"does not hold a JSON object"):
        labtool.write_overrides(tmp_path / "settings")


@pytest.mark.parametrize("euid", [0, 1000])
def test_the_script_asks_for_root_only_as_root(monkeypatch, capsys, euid):
    monkeypatch.setattr(labtool, "effective_uid", lambda: euid)
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    labtool.main(["--dry-run", "--settings-dir", "/nonexistent/settings"])
    printed = capsys.readouterr().out.split()
    assert ("--allow-root" in printed) == (euid == 0)
    assert "--no-browser" in printed and "--ServerApp.ip=127.0.0.1" in printed
    assert not Path("/nonexistent/settings").exists()  # a dry run writes nothing


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_make_lab_runs_the_script_on_the_notebooks():
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAKE")}  # under `make test`: a nested make
    cmd = ["make", "--no-print-directory", "-n", "lab"]
    out = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, check=True).stdout
    assert out.strip().splitlines()[-1].split()[1:3] == ["tools/lab.py", "notebooks"]


def test_lab_serves_the_page_without_news_and_stops(tmp_path):
    notebooks = tmp_path / "notebooks"
    notebooks.mkdir()
    shutil.copy(REPO / "notebooks" / "00_overview.ipynb", notebooks)
    with running_lab(tmp_path, notebooks) as lab:
        status, page = lab.get("/lab")
        assert status == 200 and b"<title>JupyterLab</title>" in page
        status, _ = lab.get("/lab/tree/00_overview.ipynb")
        assert status == 200
        assert lab.get_json("/api/contents/00_overview.ipynb?content=0")["type"] == "notebook"
        # The news prompt and update check are off: overrides.json set the defaults, and no
        # user setting (an empty config folder) changes them.
        settings = lab.get_json(f"/lab/api/settings/{NOTIFICATION}")
        defaults = {k: v.get("default") for k, v in settings["schema"]["properties"].items()}
        assert defaults["fetchNews"] == "false" and defaults["checkForUpdates"] is False
        assert json.loads(settings["raw"] or "{}") == {}
        assert json.loads((lab.settings_dir / "overrides.json").read_text()) == labtool.QUIET_SETTINGS
        # Listening on loopback only; --allow-root exactly when the tests run as root.
        (info,) = lab.runtime_dir.glob(f"jpserver-{lab.process.pid}.json")
        assert json.loads(info.read_text())["hostname"] == "127.0.0.1"
        cmdline = Path(f"/proc/{lab.process.pid}/cmdline")
        if cmdline.exists():
            args = cmdline.read_bytes().split(b"\0")
            assert (b"--allow-root" in args) == (os.geteuid() == 0)
            assert b"--no-browser" in args
        lab.process.send_signal(signal.SIGTERM)
        lab.process.wait(timeout=STOP_TIMEOUT)  # raises TimeoutExpired if it hangs
