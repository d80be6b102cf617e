"""Test helper: run what ``make lab`` runs (tools/lab.py) on a folder, in a sandbox, and stop it.

Used by tests/test_lab.py and tests/test_browser.py. The sandbox: a free port, a random token,
Jupyter's config, runtime, workspace and settings folders under the test's tmp_path (the
environment's own JupyterLab settings folder and the user's home are never written), and no
display (so no browser opens, as in a container).
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
LAB_SCRIPT = REPO / "tools" / "lab.py"
STOP_TIMEOUT = 30  # seconds JupyterLab gets to stop after SIGTERM


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Lab:
    url: str  # http://127.0.0.1:PORT
    token: str
    process: subprocess.Popen
    settings_dir: Path
    runtime_dir: Path
    log: Path

    def get(self, path: str, timeout: float = 30) -> tuple[int, bytes]:
        request = urllib.request.Request(self.url + path, headers={"Authorization": f"token {self.token}"})
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read()

    def get_json(self, path: str) -> dict:
        return json.loads(self.get(path)[1])


@contextmanager
def running_lab(tmp_path: Path, notebooks: Path, start_timeout: float = 120):
    """Start ``python tools/lab.py NOTEBOOKS --port P --settings-dir TMP`` and wait until it answers;
    always stopped (SIGTERM, then SIGKILL after :data:`STOP_TIMEOUT` s) on leaving."""
    port, token = free_port(), secrets.token_hex(16)
    env = {
        **os.environ,
        "JUPYTER_TOKEN": token,
        "JUPYTER_CONFIG_DIR": str(tmp_path / "config"),  # also holds the user settings: none yet
        "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime"),
        "JUPYTERLAB_WORKSPACES_DIR": str(tmp_path / "workspaces"),
        "PYTHONPATH": os.pathsep.join([str(REPO), *filter(None, [os.environ.get("PYTHONPATH")])]),
    }
    for name in ("DISPLAY", "WAYLAND_DISPLAY"):
        env.pop(name, None)
    settings = tmp_path / "lab-settings"
    cmd = [sys.executable, str(LAB_SCRIPT), str(notebooks), "--port", str(port), "--settings-dir", str(settings)]
    log_path = tmp_path / "lab.log"
    log = log_path.open("w")
    server = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)
    lab = Lab(f"http://127.0.0.1:{port}", token, server, settings, tmp_path / "runtime", log_path)
    try:
        deadline = time.monotonic() + start_timeout
        while True:
            try:
                lab.get("/api/status", timeout=5)
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"JupyterLab did not start: {log_path.read_text()[-3000:]}") from None
                time.sleep(0.5)
        yield lab
    finally:
        if server.poll() is None:
            server.terminate()
            try:
                server.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
        log.close()
