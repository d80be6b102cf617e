"""Start, stop and check a local Milvus standalone server (the PyPI package ``milvus``, Linux only).

Used by CI and by learners alike::

    python tools/milvus_server.py run --isolated -- CMD ...   # server + CMD in a private network
    python tools/milvus_server.py start [--all-interfaces]    # a server for this machine
    python tools/milvus_server.py status
    python tools/milvus_server.py stop

What it does, and why:

* **Data** live in one folder (``.milvus/`` in the repository, ignored by git; ``--dir`` or
  ``$NUDGE_MILVUS_DIR`` to choose another): the unpacked binaries (``bin/``, ~250 MB, unpacked
  once from the ``milvus`` package), ``configs/milvus.yaml``, ``data/``, ``logs/`` and this
  script's record of the server (``server.json``: pid, process start time, ports). Milvus itself
  writes a pid file outside it, in /run/milvus (root) or /tmp/milvus (exiting when it cannot write
  there, e.g. a /tmp/milvus made by another user), and refuses to start while another server holds
  that file locked: each folder gets its own name there (``standalone-nudge-HASH.pid``, via
  ``--alias``), and a stale file left by a killed server (not locked) does not stop the next start.
  With ``run --isolated`` both folders are ``run/`` in the data folder (a private mount namespace).
* **Ports are pinned**: every port Milvus opens is written into its configuration and checked
  first (the package's Python wrapper silently moves to the next free port when one is briefly
  held, e.g. by connections of a killed server in TIME_WAIT); a port some process listens on
  stops the start with its name.
* **Bound to 127.0.0.1?** Milvus 2.3.5 has no setting for that: its gRPC, HTTP and metrics ports
  listen on every interface (only its embedded etcd uses 127.0.0.1). ``run --isolated`` therefore
  runs the server *and* the command in a private network namespace whose only interface is
  loopback (``unshare --net --mount``; as a normal user with ``--map-root-user``, which needs
  unprivileged user namespaces, the default on current Linux distributions): nothing outside
  can reach it, and it cannot clash with another server on the same ports. ``start`` runs the
  server in the machine's own network, where a notebook can reach it; it refuses when that
  network has an interface other than loopback unless ``--all-interfaces`` says that exposing
  the ports is acceptable (a laptop behind a firewall).
* **Ready** means: ``http://127.0.0.1:METRICS_PORT/healthz`` answers OK *and* the gRPC port
  accepts a connection, within ``--timeout`` seconds (start takes 4-8 s; unpacking the binaries
  the first time ~10 s more).
* **Stopped in bounded time, every time** (a failed start included): SIGTERM to the server's
  process group, which exits within ``common.gracefulStopTimeout`` (set to 10 s here; Milvus's
  default, 1,800 s, applies while collections are loaded), then SIGKILL after ``--timeout``.
  Every exit of Milvus 2.3.5 ends in a Go panic while closing etcd (exit status -6 / 134): it is
  harmless, the data are intact after SIGTERM and after SIGKILL.
* A server started by a long-running process (``run``, a test that restarts it) dies with that
  process (``PR_SET_PDEATHSIG``), so an interrupted run leaves nothing behind.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import fcntl
import functools
import hashlib
import importlib.util
import json
import lzma
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DIR = REPO / ".milvus"
STATE_FILE = "server.json"
PROXY_PORT = 19530
METRICS_PORT = 9091
GRACEFUL_STOP_S = 10  # common.gracefulStopTimeout written into the configuration
COMPONENTS_WITH_IP = (
    "rootCoord",
    "proxy",
    "queryCoord",
    "queryNode",
    "indexCoord",
    "indexNode",
    "dataCoord",
    "dataNode",
)
INSTALL_HINT = 'pip install -e ".[server]"  (the PyPI package milvus==2.3.5, Linux x86-64 only)'


class ServerError(RuntimeError):
    """A start or stop that could not be done; the message says why and what to do."""


@dataclass(frozen=True)
class ServerInfo:
    """What ``server.json`` records about a running server."""

    pid: int
    start_ticks: int  # the process's start time (/proc/PID/stat field 22): a reused pid is not ours
    data_dir: str
    port: int
    metrics_port: int
    ports: dict
    netns: str  # the network namespace it runs in (readlink /proc/self/ns/net)
    all_interfaces: bool

    @property
    def uri(self) -> str:
        return f"http://127.0.0.1:{self.port}"


# ---------------------------------------------------------------------------------- processes
def _stat(pid: int) -> tuple[str, int] | None:
    """``(state letter, start ticks)`` of a live process, or None when it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    fields = text[text.rindex(")") + 2 :].split()
    return fields[0], int(fields[19])


def _alive(pid: int, start_ticks: int | None = None) -> bool:
    """The process runs (a zombie is dead; a pid now used by another process is not ours)."""
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)  # reap it if it is our child
    st = _stat(pid)
    return st is not None and st[0] not in "ZX" and (start_ticks is None or st[1] == start_ticks)


def _die_with_parent(sig: int = signal.SIGKILL, new_session: bool = True) -> None:
    """Runs in a child between fork and exec: its own process group; ``sig`` when its parent dies."""
    if new_session:
        os.setsid()
    ctypes.CDLL(None, use_errno=True).prctl(1, sig)  # PR_SET_PDEATHSIG


def _kill_group(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(pid, sig)


def _wait_gone(pid: int, start_ticks: int | None, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not _alive(pid, start_ticks):
            return True
        time.sleep(0.1)
    return not _alive(pid, start_ticks)


# ---------------------------------------------------------------------------------- network
_SIOCGIFFLAGS, _SIOCSIFFLAGS, _IFF_UP, _IFF_LOOPBACK = 0x8913, 0x8914, 0x1, 0x8


def _if_flags(sock: socket.socket, name: str) -> int:
    req = struct.pack("16sH14x", name.encode(), 0)
    return struct.unpack("16sH14x", fcntl.ioctl(sock.fileno(), _SIOCGIFFLAGS, req))[1]


def external_interfaces() -> list[str]:
    """Network interfaces of this process's network namespace other than loopback."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        return [name for _, name in socket.if_nameindex() if not _if_flags(s, name) & _IFF_LOOPBACK]


def bring_loopback_up() -> None:
    """``ip link set lo up`` (a new network namespace starts with its loopback down)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        flags = _if_flags(s, "lo")
        if not flags & _IFF_UP:
            fcntl.ioctl(s.fileno(), _SIOCSIFFLAGS, struct.pack("16sH14x", b"lo", flags | _IFF_UP))


def _netns() -> str:
    try:
        return os.readlink("/proc/self/ns/net")
    except OSError:
        return "unknown"


def _accepts(port: int, timeout: float = 1.0) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        return s.connect_ex(("127.0.0.1", port)) == 0


def _healthy(metrics_port: int, timeout: float = 2.0) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/healthz", timeout=timeout) as resp:
            return "OK" in resp.read().decode("utf-8", "replace")
    except (OSError, urllib.error.URLError, ValueError):
        return False


# ---------------------------------------------------------------------------------- state
def data_dir(path: str | os.PathLike | None = None) -> Path:
    """The server's folder: ``path``, else ``$NUDGE_MILVUS_DIR``, else ``.milvus/`` in the repository."""
    return Path(path or os.environ.get("NUDGE_MILVUS_DIR") or DEFAULT_DIR).resolve()


def _read_state(folder: Path) -> ServerInfo | None:
    try:
        return ServerInfo(**json.loads((folder / STATE_FILE).read_text()))
    except FileNotFoundError:
        return None
    except (ValueError, TypeError) as exc:
        raise ServerError(
            f"{folder / STATE_FILE} is not a server record ({exc}); delete it if no server runs"
        ) from None


def _write_state(folder: Path, info: ServerInfo) -> None:
    tmp = folder / f".{STATE_FILE}.tmp"
    tmp.write_text(json.dumps(asdict(info), indent=1))
    os.replace(tmp, folder / STATE_FILE)


def status(folder: str | os.PathLike | None = None) -> ServerInfo | None:
    """The server recorded in ``folder`` if its process still runs, else None (a stale record is removed)."""
    folder = data_dir(folder)
    info = _read_state(folder)
    if info is None:
        return None
    if _alive(info.pid, info.start_ticks):
        return info
    (folder / STATE_FILE).unlink(missing_ok=True)
    return None


# ---------------------------------------------------------------------------------- configuration
def _milvus_package():
    spec = importlib.util.find_spec("milvus")
    if spec is None or spec.origin is None:
        raise ServerError(f"the Milvus server is not installed: {INSTALL_HINT}")
    if not sys.platform.startswith("linux"):
        raise ServerError(f"this script runs the Linux build of the Milvus server; this is {sys.platform}")
    import milvus

    return milvus, Path(spec.origin).parent


def _unpack_binaries(package_dir: Path, bin_dir: Path) -> None:
    """Unpack the server binary and its libraries (``*.lzma`` in the package) once; a checksum skips the rest."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    for packed in sorted((package_dir / "data" / "bin").glob("*.lzma")):
        target = bin_dir / packed.name[: -len(".lzma")]
        stamp = target.with_name(target.name + ".lzma.md5")
        digest = hashlib.md5(packed.read_bytes()).hexdigest()
        if target.is_file() and stamp.is_file() and stamp.read_text().strip() == digest:
            continue
        tmp = target.with_name(f".{target.name}.tmp")
        with lzma.open(packed) as src, open(tmp, "wb") as dst:
            shutil.copyfileobj(src, dst, 1 << 20)
        tmp.chmod(0o755)
        os.replace(tmp, target)
        stamp.write_text(digest)


def _port_free(port: int) -> bool:
    """Nothing listens on ``port`` (SO_REUSEADDR, as Milvus binds: connections of a killed server
    still in TIME_WAIT do not count; the package's own check fails on them and moves the port)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("", port))
        except OSError:
            return False
    return True


def _write_config(milvus, folder: Path, port: int, metrics_port: int) -> dict:
    """Write ``configs/milvus.yaml`` with every port pinned; returns the ports (name -> number)."""
    config = milvus.MilvusServerConfig(data_dir=str(folder))
    ports = {k: int(v[1]) for k, v in config.configurable_items.items() if k.endswith("_port")}
    ports["proxy_port"] = port
    ports["metrics_port"] = metrics_port  # not in the file: the METRICS_PORT variable
    busy = [f"{name} {number}" for name, number in ports.items() if not _port_free(number)]
    if busy:
        raise ServerError(
            f"port(s) in use: {', '.join(busy)}: another server (a Milvus from another folder?) listens there; "
            "stop it, or choose --port/--metrics-port"
        )
    config.resolve_storage()  # data/, logs/ and configs/ under the folder
    for name, number in ports.items():
        if name in config.configurable_items:
            config.configurable_items[name][1] = number
    config.set("common.gracefulStopTimeout", GRACEFUL_STOP_S)
    for component in COMPONENTS_WITH_IP:  # the address components announce to each other
        config.set(f"{component}.ip", "127.0.0.1")
    unresolved = [k for k, v in config.configurable_items.items() if v[1] is None]
    if unresolved:
        raise ServerError(f"the milvus package's configuration template has unknown settings {unresolved}")
    config.write_config()
    return ports


# ---------------------------------------------------------------------------------- start / stop
def start(
    folder: str | os.PathLike | None = None,
    *,
    port: int = PROXY_PORT,
    metrics_port: int = METRICS_PORT,
    timeout: float = 120.0,
    all_interfaces: bool = False,
    die_with_parent: bool = False,
) -> ServerInfo:
    """Start a Milvus standalone server on ``folder`` and wait until it is ready; returns its record.

    Raises :class:`ServerError` (after stopping whatever it started) when it cannot start or is not
    ready within ``timeout`` seconds, when a server recorded in ``folder`` runs already, and when
    this network has interfaces other than loopback and ``all_interfaces`` is False.
    """
    folder = data_dir(folder)
    running = status(folder)
    if running is not None:
        raise ServerError(
            f"a Milvus server from {folder} runs already (pid {running.pid}, {running.uri}); stop it first"
        )
    outside = external_interfaces()
    if outside and not all_interfaces:
        raise ServerError(
            f"Milvus 2.3.5 listens on ALL network interfaces (it has no setting to bind 127.0.0.1 only), and this "
            f"network has {', '.join(outside)}: other machines could reach it. Run it in a private network with "
            f"`python tools/milvus_server.py run --isolated -- COMMAND`, or accept that with --all-interfaces"
        )
    for p, name in ((port, "--port"), (metrics_port, "--metrics-port")):
        if not 0 < p < 65536:
            raise ServerError(f"{name} must be a TCP port (1-65535), got {p}")
    milvus, package_dir = _milvus_package()
    folder.mkdir(parents=True, exist_ok=True)
    ports = _write_config(milvus, folder, port, metrics_port)
    _unpack_binaries(package_dir, folder / "bin")
    env = {
        **os.environ,
        "DEPLOY_MODE": "STANDALONE",
        "METRICS_PORT": str(metrics_port),
        "MILVUSCONF": str(folder / "configs"),
        "LD_LIBRARY_PATH": ":".join(p for p in (str(folder / "bin"), os.environ.get("LD_LIBRARY_PATH")) if p),
    }
    logs = folder / "logs"
    logs.mkdir(exist_ok=True)
    with open(logs / "milvus-stdout.log", "ab") as out, open(logs / "milvus-stderr.log", "ab") as err:
        proc = subprocess.Popen(
            [str(folder / "bin" / "milvus"), "run", "standalone", "--alias", _alias(folder)],
            cwd=folder,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=err,
            preexec_fn=_die_with_parent if die_with_parent else os.setsid,
        )
    st = _stat(proc.pid)
    info = ServerInfo(
        pid=proc.pid,
        start_ticks=st[1] if st else 0,
        data_dir=str(folder),
        port=port,
        metrics_port=metrics_port,
        ports=ports,
        netns=_netns(),
        all_interfaces=bool(outside),
    )
    _write_state(folder, info)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            _forget(folder)
            raise ServerError(f"Milvus exited during start (status {proc.returncode}); {_log_tail(folder)}")
        if _healthy(metrics_port) and _accepts(port):
            return info
        time.sleep(0.25)
    stop(folder)
    raise ServerError(f"Milvus was not ready within {timeout:g} s and was stopped; {_log_tail(folder)}")


def stop(folder: str | os.PathLike | None = None, *, timeout: float = 30.0) -> str:
    """Stop the server recorded in ``folder``: SIGTERM, then SIGKILL after ``timeout`` seconds.

    Returns what happened, in words. Bounded: at most ``timeout`` + 10 seconds.
    """
    folder = data_dir(folder)
    info = _read_state(folder)
    if info is None or not _alive(info.pid, info.start_ticks):
        _forget(folder)
        return f"no Milvus server runs from {folder}"
    began = time.monotonic()
    _kill_group(info.pid, signal.SIGTERM)
    how = "stopped"
    if not _wait_gone(info.pid, info.start_ticks, timeout):
        _kill_group(info.pid, signal.SIGKILL)
        how = f"killed (no exit within {timeout:g} s of SIGTERM)"
        if not _wait_gone(info.pid, info.start_ticks, 10):
            raise ServerError(f"Milvus (pid {info.pid}) survived SIGKILL for 10 s")
    _kill_group(info.pid, signal.SIGKILL)  # helpers left in its process group, if any
    _forget(folder)
    return f"Milvus server (pid {info.pid}) {how} in {time.monotonic() - began:.1f} s"


def _alias(folder: Path) -> str:
    """Milvus writes its pid file to /run/milvus (root) or /tmp/milvus, whatever the data folder, as
    ``standalone-ALIAS.pid``: an alias per folder keeps servers of other folders (or a stale file) apart."""
    return "nudge-" + hashlib.sha256(str(folder).encode()).hexdigest()[:12]


def _forget(folder: Path) -> None:
    (folder / STATE_FILE).unlink(missing_ok=True)


def _log_tail(folder: Path, lines: int = 5) -> str:
    path = folder / "logs" / "milvus-stderr.log"
    try:
        tail = path.read_text(errors="replace").strip().splitlines()[-lines:]
    except OSError:
        return f"no log at {path}"
    return f"last lines of {path}: " + " | ".join(tail) if tail else f"{path} is empty"


# ---------------------------------------------------------------------------------- run
def _enter_private_network(argv: list[str]) -> int:
    """Run this script again as ``argv`` in a new network namespace (loopback only); returns its status.

    ``unshare --fork`` ignores SIGINT and SIGTERM while it waits, so this process forwards them
    (as SIGTERM) to the inner run, which stops the command and the server. Should this process
    die without a word (SIGKILL), ``unshare`` dies with it (``PR_SET_PDEATHSIG``), its
    ``--kill-child`` ends the inner run, and the server and the command die with that.
    """
    unshare = shutil.which("unshare")
    if unshare is None:
        raise ServerError("--isolated needs the `unshare` command (util-linux)")
    user = [] if os.geteuid() == 0 else ["--map-root-user"]
    cmd = [unshare, *user, "--net", "--mount", "--fork", "--kill-child", "--"]
    cmd += [sys.executable, str(Path(__file__).resolve())]
    env = {**os.environ, "_NUDGE_MILVUS_ISOLATED": "1"}
    proc = subprocess.Popen([*cmd, *argv], env=env, preexec_fn=_die_with_parent)

    def forward(*_) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)

    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, forward)
    return proc.wait()


def _private_run_dirs(folder: Path) -> None:
    """In a private mount namespace: Milvus's pid-file folders (/run/milvus, else /tmp/milvus) become
    ``folder/run``, so its pid file stays in the data folder, and a /tmp/milvus made by another user
    (which a normal user's server could not write, and would exit) does not matter."""
    run_dir = folder / "run"
    run_dir.mkdir(parents=True, exist_ok=True)
    for target in ("/run/milvus", "/tmp/milvus"):
        with contextlib.suppress(OSError):
            os.makedirs(target, exist_ok=True)
        if os.path.isdir(target):
            done = subprocess.run(["mount", "--bind", str(run_dir), target], capture_output=True, text=True)
            if done.returncode:
                raise ServerError(f"cannot bind {run_dir} over {target}: {done.stderr.strip()}")


def run(command: list[str], folder: Path, *, port: int, metrics_port: int, timeout: float, isolated: bool) -> int:
    """Start a server, run ``command`` with ``NUDGE_MILVUS_URI`` and ``NUDGE_MILVUS_DIR`` set, stop the server."""
    if isolated:
        bring_loopback_up()
        if external_interfaces():
            raise ServerError("the private network namespace has interfaces other than loopback")
        _private_run_dirs(folder)
    previous = signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    info = None
    try:
        info = start(folder, port=port, metrics_port=metrics_port, timeout=timeout, die_with_parent=True)
        where = "a private network (loopback only)" if isolated else "this machine's network"
        print(f"milvus_server: ready at {info.uri} (pid {info.pid}, {where}); running {' '.join(command)}", flush=True)
        env = {**os.environ, "NUDGE_MILVUS_URI": info.uri, "NUDGE_MILVUS_DIR": str(folder)}
        env.pop("_NUDGE_MILVUS_ISOLATED", None)
        die = functools.partial(_die_with_parent, signal.SIGTERM, new_session=False)
        return subprocess.run(command, env=env, preexec_fn=die).returncode
    except KeyboardInterrupt:
        return 130
    finally:
        print(f"milvus_server: {stop(folder)}", flush=True)
        signal.signal(signal.SIGTERM, previous)


# ---------------------------------------------------------------------------------- command line
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="milvus_server.py", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--dir", help="data folder (default $NUDGE_MILVUS_DIR or .milvus/ in the repository)")
    starting = argparse.ArgumentParser(add_help=False)
    starting.add_argument("--port", type=int, default=PROXY_PORT, help=f"gRPC port (default {PROXY_PORT})")
    starting.add_argument("--metrics-port", type=int, default=METRICS_PORT, help="health/metrics port (9091)")
    starting.add_argument("--timeout", type=float, default=120.0, help="seconds to wait until ready (120)")
    p = sub.add_parser("start", parents=[common, starting], help="start a server in this machine's network")
    p.add_argument("--all-interfaces", action="store_true", help="accept that Milvus listens on every interface")
    p = sub.add_parser("stop", parents=[common], help="stop it (SIGTERM, then SIGKILL after --timeout)")
    p.add_argument("--timeout", type=float, default=30.0, help="seconds between SIGTERM and SIGKILL (30)")
    sub.add_parser(
        "status", parents=[common], help="is it running and answering? (exit 0 yes, 1 not running, 3 not answering)"
    )
    p = sub.add_parser("run", parents=[common, starting], help="start a server, run COMMAND, stop the server")
    p.add_argument("--isolated", action="store_true", help="in a private network namespace (loopback only)")
    p.add_argument("cmd", nargs=argparse.REMAINDER, metavar="-- COMMAND", help="the command to run")
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser().parse_args(argv)
    folder = data_dir(args.dir)
    try:
        if args.command == "start":
            info = start(
                folder,
                port=args.port,
                metrics_port=args.metrics_port,
                timeout=args.timeout,
                all_interfaces=args.all_interfaces,
            )
            print(f"milvus_server: ready at {info.uri} (pid {info.pid}, data in {folder})")
            if info.all_interfaces:
                print(f"milvus_server: warning: it listens on every interface, ports {sorted(info.ports.values())}")
        elif args.command == "stop":
            print(f"milvus_server: {stop(folder, timeout=args.timeout)}")
        elif args.command == "status":
            info = status(folder)
            if info is None:
                print(f"milvus_server: not running (data folder {folder})")
                return 1
            if info.netns != _netns():
                print(f"milvus_server: runs (pid {info.pid}) in another network namespace; not reachable from here")
                return 3
            ok = _healthy(info.metrics_port) and _accepts(info.port)
            print(
                f"milvus_server: {'ready' if ok else 'NOT answering'} at {info.uri} (pid {info.pid}, data in {folder})"
            )
            return 0 if ok else 3
        else:
            command = args.cmd[1:] if args.cmd[:1] == ["--"] else args.cmd
            if not command:
                raise ServerError("run needs a command after --")
            if args.isolated and not os.environ.get("_NUDGE_MILVUS_ISOLATED"):
                return _enter_private_network(argv)
            return run(
                command,
                folder,
                port=args.port,
                metrics_port=args.metrics_port,
                timeout=args.timeout,
                isolated=args.isolated,
            )
    except ServerError as exc:
        print(f"milvus_server {args.command}: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
