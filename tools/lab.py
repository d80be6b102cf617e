"""Start JupyterLab on the notebooks the way ``make lab`` does, in a classroom or a container.

``python tools/lab.py [FOLDER] [--port P] [--ip ADDRESS] [--settings-dir DIR] [--dry-run]``

* listens on 127.0.0.1 only (``--ip 0.0.0.0`` to reach it from outside a container: then keep
  the token, which JupyterLab prints);
* adds ``--allow-root`` only when the effective user is root (a container's default user), which
  JupyterLab otherwise refuses to run as;
* opens no browser where there is no display (Linux without ``DISPLAY``/``WAYLAND_DISPLAY``, e.g.
  a container or an SSH session): open the printed URL instead;
* turns off JupyterLab's news prompt and update check, which pop up on a fresh lab's first start
  and interrupt a class: an ``overrides.json`` in the environment's JupyterLab settings folder
  (``<sys.prefix>/share/jupyter/lab/settings``, never the user's home) sets the defaults of
  ``@jupyterlab/apputils-extension:notification`` (``fetchNews: "false"``,
  ``checkForUpdates: false``), and the server never checks for updates
  (``--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate``). A learner can still
  opt in under Settings > Notifications.

:func:`lab_command` builds the command as a pure function; ``make lab`` and the tests
(tests/test_lab.py) start what it returns.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from nudge._io import write_json

REPO = Path(__file__).resolve().parents[1]
NOTIFICATION_PLUGIN = "@jupyterlab/apputils-extension:notification"
#: Defaults written to overrides.json: no "Would you like to receive official Jupyter news?" toast,
#: no "a newer version is available" toast.
QUIET_SETTINGS = {NOTIFICATION_PLUGIN: {"fetchNews": "false", "checkForUpdates": False}}


def default_settings_dir(prefix: str | None = None) -> Path:
    """JupyterLab's application settings folder for the environment at ``prefix`` (default: this one).

    It is where JupyterLab reads ``overrides.json`` (``LabApp.app_settings_dir``: ``$JUPYTERLAB_DIR``
    or ``<prefix>/share/jupyter/lab``, then ``settings``).
    """
    if prefix is None and os.environ.get("JUPYTERLAB_DIR"):
        return Path(os.environ["JUPYTERLAB_DIR"]) / "settings"
    return Path(prefix or sys.prefix) / "share" / "jupyter" / "lab" / "settings"


def has_display(platform: str | None = None, environ: dict | None = None) -> bool:
    """Whether a browser can open here: always on macOS and Windows; on Linux and other systems
    only with an X11 or Wayland display."""
    platform = sys.platform if platform is None else platform
    environ = os.environ if environ is None else environ
    if platform == "darwin" or platform.startswith("win"):
        return True
    return bool(environ.get("DISPLAY") or environ.get("WAYLAND_DISPLAY"))


def effective_uid() -> int | None:
    """The effective user id, or None where there is none (Windows)."""
    return os.geteuid() if hasattr(os, "geteuid") else None


def lab_command(
    notebooks: str | Path,
    *,
    python: str,
    euid: int | None,
    display: bool,
    settings_dir: str | Path,
    port: int | None = None,
    ip: str = "127.0.0.1",
) -> list[str]:
    """The ``jupyter lab`` command line ``make lab`` runs (a pure function of its arguments).

    Parameters
    ----------
    notebooks : path
        The folder JupyterLab serves (its root).
    python : str
        The interpreter whose JupyterLab runs (``python -m jupyter lab``).
    euid : int or None
        Effective user id; 0 (root) adds ``--allow-root``.
    display : bool
        False adds ``--no-browser``.
    settings_dir : path
        JupyterLab's application settings folder (holds ``overrides.json``).
    port : int, optional
        Default: JupyterLab's (8888, or the next free one).
    ip : str
        Address to listen on.
    """
    if not ip:
        raise ValueError("ip must be an address such as 127.0.0.1, got an empty string")
    cmd = [
        python, "-m", "jupyter", "lab",
        f"--ServerApp.ip={ip}",
        f"--ServerApp.root_dir={Path(notebooks).resolve()}",
        f"--LabApp.app_settings_dir={Path(settings_dir).resolve()}",
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
    ]  # fmt: skip
    if port is not None:
        if not 0 < int(port) < 65536:
            raise ValueError(f"port must be between 1 and 65535, got {port!r}")
        cmd.append(f"--ServerApp.port={int(port)}")
    if euid == 0:
        cmd.append("--allow-root")
    if not display:
        cmd.append("--no-browser")
    return cmd


def write_overrides(settings_dir: str | Path) -> Path:
    """Merge :data:`QUIET_SETTINGS` into ``settings_dir/overrides.json`` (other keys kept; written
    atomically, and only if something changes). Returns the file's path."""
    folder = Path(settings_dir)
    path = folder / "overrides.json"
    current = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    if not isinstance(current, dict):
        raise ValueError(f"{path} does not hold a JSON object: fix or remove it")
    merged = {**current}
    for plugin, values in QUIET_SETTINGS.items():
        merged[plugin] = {**current.get(plugin, {}), **values}
    if merged == current:
        return path
    folder.mkdir(parents=True, exist_ok=True)
    write_json(path, merged)  # atomically, with the usual permissions
    return path


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("notebooks", nargs="?", default=str(REPO / "notebooks"), help="folder to serve")
    parser.add_argument("--port", type=int, help="port (default: JupyterLab's, 8888 or the next free one)")
    parser.add_argument("--ip", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument(
        "--settings-dir",
        default=None,
        help="JupyterLab's settings folder for overrides.json (default: this environment's, "
        "<sys.prefix>/share/jupyter/lab/settings)",
    )
    parser.add_argument("--dry-run", action="store_true", help="print the command, change nothing, start nothing")
    args = parser.parse_args(argv)
    settings = Path(args.settings_dir) if args.settings_dir else default_settings_dir()
    cmd = lab_command(
        args.notebooks,
        python=sys.executable,
        euid=effective_uid(),
        display=has_display(),
        settings_dir=settings,
        port=args.port,
        ip=args.ip,
    )
    if args.dry_run:
        sys.stdout.write(" ".join(cmd) + "\n")
        return
    write_overrides(settings)
    sys.stdout.flush()
    if os.name == "posix":
        os.execv(cmd[0], cmd)  # same process: a signal to it reaches JupyterLab
    import subprocess

    raise SystemExit(subprocess.call(cmd))


if __name__ == "__main__":
    main()
