"""Check a learner's machine before a workshop: ``make check`` (or ``python tools/check_setup.py``).

One line per check, ``OK``, ``WARN`` or ``FAIL``, and for each failure the command that fixes it:

* **python**: the interpreter's version against pyproject's ``requires-python``;
* **kit**: ``nudge`` is importable from this folder (not from another copy of the kit);
* **package NAME**: every requirement of the core and of the ``notebooks`` extra is installed in
  a version pyproject accepts;
* **widgets**: the JupyterLab extension that draws ipywidgets (``@jupyter-widgets/jupyterlab-manager``,
  from ``jupyterlab_widgets``) is installed and enabled for this environment's JupyterLab, and the
  versions of ipywidgets, jupyterlab_widgets, widgetsnbextension and the extension agree;
* **data**: the bundled Tessera data matches its manifest (the vectors' shape, dtype and unit
  length; then the kit's own loader check, ``load_tessera``: ids and SHA-256 of the texts);
* **kernel**: the notebooks' kernel (``python3``) starts within a time limit and runs
  ``import nudge``, from this folder, and ``import ipywidgets``;
* **optional ...**: the extras ``test``, ``embed``, ``stores``, ``browser`` (a warning, never a failure).

The exit status is 1 if any check failed, else 0. Standard library only (the checks import
JupyterLab, jupyter_client and numpy where they are installed), so it runs, and says what is
wrong, in an environment where nothing is installed yet and under an old Python.

``--only kit,data`` runs some checks; ``--kernel-timeout S`` bounds the kernel check (default 60 s).
To see what a learner without some packages would see, set ``NUDGE_CHECK_MISSING`` to their names
(comma-separated): they are then reported as not installed.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
OK, WARN, FAIL = "OK", "WARN", "FAIL"
CHECKS = ("python", "kit", "packages", "widgets", "data", "kernel", "optional")
#: Extras that are needed for the workshop (on top of the core dependencies).
REQUIRED_EXTRAS = ("notebooks",)
#: Optional extras, with what they add.
OPTIONAL_EXTRAS = {
    "test": "make test",
    "embed": "the local all-MiniLM-L6-v2 model",
    "stores": "Qdrant local mode and Milvus Lite",
    "browser": "the real-browser test",
}
WIDGET_EXTENSION = "@jupyter-widgets/jupyterlab-manager"
#: ipywidgets major version -> the jupyterlab-manager major version that renders its widgets.
WIDGET_MANAGER_MAJOR = {7: 3, 8: 5}
CHROMIUM = "/usr/bin/chromium"


class Result:
    """One check's outcome: a status, a name, what was found, and the fix (for WARN/FAIL)."""

    def __init__(self, status: str, name: str, detail: str, advice: str = "") -> None:
        self.status, self.name, self.detail, self.advice = status, name, detail, advice

    def line(self) -> str:
        text = f"{self.status:<4} {self.name}: {self.detail}"
        return text + (f"  ->  fix: {self.advice}" if self.advice and self.status != OK else "")

    def __repr__(self) -> str:
        return f"Result({self.line()!r})"


# ------------------------------------------------------------------ requirements and versions
def normalise(name: str) -> str:
    """A distribution name in PEP 503 normal form (``Jupyter_Client`` -> ``jupyter-client``)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def parse_version(text: str) -> tuple:
    """The release numbers of a version (``"2.13.0+cpu"`` -> ``(2, 13, 0)``; pre-release tags ignored)."""
    match = re.match(r"\s*v?(\d+(?:\.\d+)*)", text)
    if not match:
        raise ValueError(f"version {text!r} does not start with a number")
    return tuple(int(p) for p in match.group(1).split("."))


def _cmp(a: tuple, b: tuple) -> int:
    n = max(len(a), len(b))
    a, b = a + (0,) * (n - len(a)), b + (0,) * (n - len(b))
    return (a > b) - (a < b)


def version_matches(version: str, specifier: str) -> bool:
    """Whether ``version`` satisfies a comma-separated ``specifier`` (``>=``, ``<=``, ``>``, ``<``,
    ``==``, ``!=``, ``~=``; ``==X.*`` too). Local labels (``+cpu``) are ignored, as PEP 440 does."""
    have = parse_version(version.split("+")[0])
    for clause in filter(None, (c.strip() for c in specifier.split(","))):
        match = re.match(r"(~=|===|==|!=|<=|>=|<|>)\s*(.+)$", clause)
        if not match:
            raise ValueError(f"version specifier {clause!r} is not understood")
        op, want = match.group(1), match.group(2).strip()
        if want.endswith(".*"):
            prefix = parse_version(want[:-2])
            same = (have + (0,) * len(prefix))[: len(prefix)] == prefix
            if (op == "==" and not same) or (op == "!=" and same):
                return False
            continue
        c = _cmp(have, parse_version(want))
        if op == "~=":
            release = parse_version(want)
            if len(release) < 2:
                raise ValueError(f"~= needs at least two version numbers, got {clause!r}")
            if c < 0 or have[: len(release) - 1] != release[:-1]:
                return False
        elif not {
            "==": c == 0,
            "===": c == 0,
            "!=": c != 0,
            "<=": c <= 0,
            ">=": c >= 0,
            "<": c < 0,
            ">": c > 0,
        }[op]:
            return False
    return True


def marker_applies(marker: str, environment: dict | None = None) -> bool:
    """Evaluate a simple environment marker (``sys_platform != 'win32' and platform_machine == 'x86_64'``;
    clauses joined by ``and``/``or``; ``python_version`` compared as a version)."""
    import platform

    env = environment or {
        "sys_platform": sys.platform,
        "platform_machine": platform.machine(),
        "platform_system": platform.system(),
        "os_name": os.name,
        "python_version": f"{sys.version_info[0]}.{sys.version_info[1]}",
        "python_full_version": platform.python_version(),
        "implementation_name": sys.implementation.name,
        "extra": "",
    }
    marker = marker.strip()
    if not marker:
        return True
    for alternative in re.split(r"\s+or\s+", marker):
        results = []
        for clause in re.split(r"\s+and\s+", alternative.strip().strip("()")):
            match = re.match(r"""\s*\(?\s*(\w+)\s*(==|!=|<=|>=|<|>)\s*['"]([^'"]*)['"]\s*\)?\s*$""", clause)
            if not match:
                raise ValueError(f"environment marker {clause!r} is not understood")
            name, op, value = match.groups()
            if name not in env:
                raise ValueError(f"environment marker names {name!r}, which this check does not know")
            if name.startswith("python"):
                results.append(version_matches(env[name], op + value))
            else:
                results.append({"==": env[name] == value, "!=": env[name] != value}.get(op, False))
        if all(results):
            return True
    return False


class Requirement:
    """``name[extras] specifier ; marker`` (PEP 508, without URLs)."""

    def __init__(self, text: str) -> None:
        match = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(\[[^\]]*\])?\s*([^;]*?)\s*(?:;(.*))?$", text)
        if not match:
            raise ValueError(f"requirement {text!r} is not understood")
        self.text = text.strip()
        self.name = match.group(1)
        self.extras = [e.strip() for e in (match.group(2) or "[]")[1:-1].split(",") if e.strip()]
        self.specifier = match.group(3).strip()
        self.marker = (match.group(4) or "").strip()


def _parse_toml_subset(text: str) -> dict:
    """The tables, strings, booleans and string arrays of a pyproject.toml (for Pythons without
    tomllib, i.e. before 3.11): enough for ``[project]`` and ``[project.optional-dependencies]``."""
    data: dict = {}
    table = data
    lines = iter(text.splitlines())
    for raw in lines:
        line = raw.split("#", 1)[0].strip() if not raw.strip().startswith(("'", '"')) else raw.strip()
        if not line:
            continue
        header = re.match(r"^\[([^\[\]]+)\]$", line)
        if header:
            table = data
            for part in header.group(1).split("."):
                table = table.setdefault(part.strip().strip('"'), {})
            continue
        if line.startswith("[["):  # arrays of tables: not needed here
            table = {}
            continue
        key, sep, value = line.partition("=")
        if not sep:
            continue
        key, value = key.strip().strip('"'), value.strip()
        if value.startswith("[") and not _balanced(value):
            for more in lines:
                value += " " + more.split("#", 1)[0].strip()
                if _balanced(value):
                    break
        if value.startswith("["):
            table[key] = re.findall(r'"((?:[^"\\]|\\.)*)"', value)
        elif value.startswith('"'):
            table[key] = value[1:].split('"', 1)[0]
        elif value in ("true", "false"):
            table[key] = value == "true"
    return data


def _balanced(value: str) -> bool:
    return value.count("[") <= value.count("]")


def read_pyproject(path: Path = REPO / "pyproject.toml") -> dict:
    """``{"requires_python": str, "name": str, "dependencies": [...], "extras": {extra: [...]}}``."""
    text = path.read_text(encoding="utf-8")
    try:
        import tomllib

        data = tomllib.loads(text)
    except ImportError:  # Python < 3.11
        data = _parse_toml_subset(text)
    project = data.get("project", {})
    return {
        "name": project.get("name", "nudge-kit"),
        "requires_python": project.get("requires-python", ""),
        "dependencies": list(project.get("dependencies", [])),
        "extras": {k: list(v) for k, v in project.get("optional-dependencies", {}).items()},
    }


def extra_requirements(project: dict, extras) -> list:
    """The requirements of ``extras``, with the project's references to itself (``nudge-kit[stores]``)
    expanded, in order, without repeats, and only those whose marker applies here."""
    seen, out, todo = set(), [], list(extras)
    while todo:
        extra = todo.pop(0)
        if extra in seen:
            continue
        seen.add(extra)
        if extra not in project["extras"]:
            raise ValueError(f"pyproject.toml has no extra {extra!r}")
        for text in project["extras"][extra]:
            req = Requirement(text)
            if normalise(req.name) == normalise(project["name"]):
                todo.extend(req.extras)
            elif marker_applies(req.marker) and all(normalise(r.name) != normalise(req.name) for r in out):
                out.append(req)
    return out


def installed_version(name: str) -> str | None:
    """The installed version of a distribution, or None (also None for names in ``NUDGE_CHECK_MISSING``)."""
    from importlib import metadata

    hidden = {normalise(n) for n in os.environ.get("NUDGE_CHECK_MISSING", "").split(",") if n.strip()}
    if normalise(name) in hidden:
        return None
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def _python_cmd() -> str:
    """This interpreter, as a learner would type it (relative to the current folder if inside it)."""
    exe = Path(sys.executable)
    try:
        shown = str(exe.relative_to(Path.cwd()))
    except ValueError:
        shown = str(exe)
    return shlex.quote(shown)


def pip_install(*args: str) -> str:
    """The exact pip command that installs ``args`` into this Python."""
    return f"{_python_cmd()} -m pip install " + " ".join(shlex.quote(a) for a in args)


# ------------------------------------------------------------------ the checks
def check_python(version_info=None, requires: str | None = None) -> Result:
    version_info = tuple(version_info or sys.version_info[:3])
    requires = read_pyproject()["requires_python"] if requires is None else requires
    have = ".".join(str(p) for p in version_info[:3])
    if version_matches(have, requires):
        return Result(OK, "python", f"{have} at {sys.executable} (the kit needs {requires})")
    return Result(
        FAIL,
        "python",
        f"{have} is too old or too new: the kit needs {requires}",
        f"install Python {requires.lstrip('>=~')} or newer (python.org, or your package manager), then "
        "`rm -rf .venv && make PYTHON=python3.X check` with that version",
    )


def check_kit() -> Result:
    import importlib.util

    spec = importlib.util.find_spec("nudge")
    install = pip_install("-e", ".[dev]")
    if spec is None or not spec.origin:
        return Result(FAIL, "kit", "the nudge package is not installed in this Python", f"in {REPO}: {install}")
    found = Path(spec.origin).resolve().parents[1]
    if found != REPO:
        return Result(
            FAIL,
            "kit",
            f"this Python imports nudge from {found}, not from this folder {REPO}",
            f"in {REPO}: {install}",
        )
    return Result(OK, "kit", f"nudge imports from {found}")


def check_requirement(req: Requirement, name_prefix: str = "package") -> Result:
    """One requirement: installed, in a version pyproject accepts."""
    have = installed_version(req.name)
    wanted = req.specifier or "any version"
    fix = pip_install(f"{req.name}{req.specifier}")
    if have is None:
        return Result(FAIL, f"{name_prefix} {req.name}", f"not installed (needs {wanted})", fix)
    if req.specifier and not version_matches(have, req.specifier):
        return Result(FAIL, f"{name_prefix} {req.name}", f"{have} installed, needs {wanted}", fix)
    return Result(OK, f"{name_prefix} {req.name}", f"{have} (needs {wanted})")


def check_packages(project: dict | None = None) -> list:
    project = project or read_pyproject()
    reqs = [Requirement(r) for r in project["dependencies"]]
    reqs = [r for r in reqs if marker_applies(r.marker)] + [
        r
        for r in extra_requirements(project, REQUIRED_EXTRAS)
        if normalise(r.name) not in {normalise(q.name) for q in reqs}
    ]
    return [check_requirement(r) for r in reqs]


def check_optional(project: dict | None = None) -> list:
    project = project or read_pyproject()
    results = []
    for extra, purpose in OPTIONAL_EXTRAS.items():
        reqs = extra_requirements(project, [extra])
        found = [(r, installed_version(r.name)) for r in reqs]
        missing = [r.text for r, v in found if v is None or (r.specifier and not version_matches(v, r.specifier))]
        name = f"optional {extra}"
        if missing:
            results.append(
                Result(
                    WARN,
                    name,
                    f"missing or wrong version: {', '.join(missing)} "
                    f"(only for {purpose}; the workshop runs without it)",
                    pip_install("-e", f".[{extra}]"),
                )
            )
        elif extra == "browser" and not Path(CHROMIUM).exists():
            results.append(
                Result(
                    WARN,
                    name,
                    f"{CHROMIUM} is missing (only for {purpose})",
                    "apt-get install chromium (Debian/Ubuntu)",
                )
            )
        else:
            results.append(Result(OK, name, ", ".join(f"{r.name} {v}" for r, v in found) + f" (for {purpose})"))
    return results


def _settings_dir() -> Path:
    if os.environ.get("JUPYTERLAB_DIR"):
        return Path(os.environ["JUPYTERLAB_DIR"]) / "settings"
    return Path(sys.prefix) / "share" / "jupyter" / "lab" / "settings"


def check_widgets() -> list:
    """The widget extension is installed and enabled in this JupyterLab, and the versions agree."""
    reinstall = pip_install("--force-reinstall", "ipywidgets", "jupyterlab_widgets", "widgetsnbextension")
    try:
        from jupyter_core.paths import jupyter_path
        from jupyterlab_server.config import get_federated_extensions, get_page_config
    except ImportError as exc:
        return [Result(FAIL, "widgets", f"JupyterLab is not installed ({exc})", pip_install("-e", ".[notebooks]"))]
    paths = jupyter_path("labextensions")
    extensions = get_federated_extensions(paths)
    ext = extensions.get(WIDGET_EXTENSION)
    if ext is None or installed_version("jupyterlab_widgets") is None:
        return [
            Result(
                FAIL,
                "widgets",
                f"JupyterLab has no {WIDGET_EXTENSION} extension (package jupyterlab_widgets): widgets show as text",
                reinstall,
            )
        ]
    disabled = get_page_config(paths, str(_settings_dir()), None).get("disabledExtensions", [])
    if isinstance(disabled, dict):  # a list of names in JupyterLab 4, a dict name -> bool before
        disabled = [k for k, v in disabled.items() if v]
    off = sorted(k for k in disabled if k == WIDGET_EXTENSION or k.startswith(WIDGET_EXTENSION + ":"))
    results = []
    if off:
        results.append(
            Result(
                FAIL,
                "widgets",
                f"{', '.join(off)} is disabled in this JupyterLab: widgets show as text",
                f"jupyter labextension enable {WIDGET_EXTENSION}",
            )
        )
    else:
        results.append(
            Result(OK, "widgets", f"JupyterLab extension {WIDGET_EXTENSION} {ext['version']} installed and enabled")
        )
    versions = {n: installed_version(n) for n in ("ipywidgets", "jupyterlab_widgets", "widgetsnbextension")}
    problems = []
    if versions["ipywidgets"] is None:
        problems.append("ipywidgets is not installed")
    else:
        from importlib import metadata

        for text in metadata.requires("ipywidgets") or []:
            req = Requirement(text)
            if normalise(req.name) in ("jupyterlab-widgets", "widgetsnbextension") and marker_applies(req.marker):
                have = versions[req.name.replace("-", "_")]
                if have is not None and req.specifier and not version_matches(have, req.specifier):
                    problems.append(f"ipywidgets {versions['ipywidgets']} needs {req.text}, found {have}")
        major = parse_version(versions["ipywidgets"])[0]
        want = WIDGET_MANAGER_MAJOR.get(major)
        if want is not None and parse_version(ext["version"])[0] != want:
            problems.append(
                f"ipywidgets {versions['ipywidgets']} needs {WIDGET_EXTENSION} {want}.x, but JupyterLab loads "
                f"{ext['version']} from {ext.get('ext_path', ext.get('ext_dir', '?'))}"
            )
    shown = ", ".join(f"{n} {v}" for n, v in versions.items())
    if problems:
        results.append(Result(FAIL, "widgets versions", "; ".join(problems), reinstall))
    else:
        results.append(Result(OK, "widgets versions", f"{shown}, {WIDGET_EXTENSION} {ext['version']} agree"))
    return results


def check_data() -> Result:
    """The bundled data against its manifest: the vectors' shape, dtype and unit length, then the
    kit's own loader check (ids, and SHA-256 of the texts the vectors were made from)."""
    regenerate = (
        "restore the files: `git checkout -- data/` (or a fresh clone); if you changed the texts on purpose: "
        "`python tools/build_tessera.py --embed`"
    )
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))  # this folder's data and loader, whatever Python finds first
    try:
        import numpy as np

        from nudge.teaching.bundled import MODEL, data_dir, load_tessera
    except ImportError as exc:
        return Result(FAIL, "data", f"cannot load the kit to check the data ({exc})", pip_install("-e", ".[dev]"))
    try:
        folder = data_dir() / "tessera"
        emb = folder / "embeddings" / MODEL
        manifest = json.loads((emb / "manifest.json").read_text(encoding="utf-8"))
        problems = []
        for part, count in (("corpus", "documents"), ("queries", "queries")):
            vectors = np.load(emb / f"{part}.npy")
            if vectors.shape != (manifest[count], manifest["dimension"]) or str(vectors.dtype) != manifest["dtype"]:
                problems.append(
                    f"{part}.npy is {vectors.dtype} {vectors.shape}, the manifest says {manifest['dtype']} "
                    f"({manifest[count]}, {manifest['dimension']})"
                )
                continue
            norms = np.linalg.norm(vectors.astype(np.float64), axis=1)
            bad = np.flatnonzero(np.abs(norms - 1.0) > 1e-4)
            if bad.size:
                problems.append(
                    f"{bad.size} of {norms.size} rows of {part}.npy are not unit length, e.g. row {bad[0]} "
                    f"(the manifest: {manifest['normalisation']})"
                )
        if not problems:
            for week in (1, 2):
                load_tessera(week, folder=folder)  # ids and SHA-256 of the texts against the manifest
    except (OSError, ValueError, KeyError, IndexError) as exc:
        return Result(FAIL, "data", f"the bundled data does not match its manifest: {exc}", regenerate)
    if problems:
        return Result(FAIL, "data", "; ".join(problems), regenerate)
    return Result(
        OK,
        "data",
        f"{folder} matches its manifest ({manifest['documents']} passages, {manifest['queries']} questions, "
        f"{manifest['dimension']}-d {manifest['model']} vectors)",
    )


KERNEL_CODE = """
import json, sys
found = {"python": sys.executable}
try:
    import nudge
    found["nudge"] = nudge.__file__
except Exception as exc:
    found["nudge_error"] = repr(exc)
try:
    import ipywidgets
    found["ipywidgets"] = ipywidgets.__version__
except Exception as exc:
    found["ipywidgets_error"] = repr(exc)
print("NUDGE-CHECK " + json.dumps(found))
"""


def check_kernel(timeout: float = 60.0, kernel_name: str = "python3") -> Result:
    """Start the notebooks' kernel in notebooks/, run ``import nudge`` and ``import ipywidgets``, stop it."""
    fix_spec = (
        f"`jupyter kernelspec list`; if {kernel_name} points to another Python: "
        f"`jupyter kernelspec remove {kernel_name}`, then `{_python_cmd()} -m ipykernel install --sys-prefix`"
    )
    try:
        from jupyter_client.manager import KernelManager
    except ImportError as exc:
        return Result(FAIL, "kernel", f"jupyter_client is not installed ({exc})", pip_install("-e", ".[notebooks]"))
    started = time.monotonic()
    km = KernelManager(kernel_name=kernel_name)
    client = None
    output: list = []
    log = tempfile.TemporaryFile(mode="w+")  # the kernel's own messages: shown only if it fails

    def said() -> str:
        log.seek(0)
        tail = [ln.strip() for ln in log.read().splitlines() if ln.strip() and "without encryption" not in ln]
        return f" (the kernel said: {' / '.join(tail[-3:])})" if tail else ""

    try:
        try:
            km.start_kernel(cwd=str(REPO / "notebooks"), stdout=log, stderr=log)
            client = km.client()
            client.start_channels()
            client.wait_for_ready(timeout=timeout)
        except Exception as exc:  # no such kernel, an executable that is missing, a kernel that never answers
            return Result(
                FAIL, "kernel", f"the {kernel_name} kernel did not start: {type(exc).__name__}: {exc}{said()}", fix_spec
            )
        left = max(1.0, timeout - (time.monotonic() - started))

        def keep(msg) -> None:
            if msg["msg_type"] == "stream":
                output.append(msg["content"]["text"])

        try:
            reply = client.execute_interactive(KERNEL_CODE, timeout=left, output_hook=keep, store_history=False)
        except TimeoutError:
            return Result(
                FAIL,
                "kernel",
                f"the {kernel_name} kernel started but did not run code within {timeout:.0f} s",
                fix_spec,
            )
        seconds = time.monotonic() - started
    finally:
        if client is not None:
            client.stop_channels()
        if km.has_kernel:
            km.shutdown_kernel(now=True)
        km.cleanup_resources()
        log.close()
    lines = [ln for ln in "".join(output).splitlines() if ln.startswith("NUDGE-CHECK ")]
    if reply["content"].get("status") != "ok" or not lines:
        return Result(FAIL, "kernel", f"the {kernel_name} kernel could not run the check: {reply['content']}", fix_spec)
    found = json.loads(lines[-1][len("NUDGE-CHECK ") :])
    kernel_python = shlex.quote(found["python"])
    if "nudge_error" in found:
        return Result(
            FAIL,
            "kernel",
            f"the kernel ({found['python']}) cannot import nudge: {found['nudge_error']}",
            f"in {REPO}: {kernel_python} -m pip install -e '.[dev]'",
        )
    where = Path(found["nudge"]).resolve().parents[1]
    if where != REPO:
        return Result(
            FAIL,
            "kernel",
            f"the kernel ({found['python']}) imports nudge from {where}, not from {REPO}",
            f"in {REPO}: {kernel_python} -m pip install -e '.[dev]'",
        )
    if "ipywidgets_error" in found:
        return Result(
            FAIL,
            "kernel",
            f"the kernel ({found['python']}) cannot import ipywidgets: {found['ipywidgets_error']}",
            f"{kernel_python} -m pip install 'ipywidgets>=8'",
        )
    return Result(
        OK,
        "kernel",
        f"{kernel_name} ({found['python']}) started and imported nudge from {where} and ipywidgets "
        f"{found['ipywidgets']} in {seconds:.1f} s",
    )


def run_checks(only=CHECKS, kernel_timeout: float = 60.0, emit=None):
    """Run the checks named in ``only`` in order; ``emit(result)`` is called as each finishes."""
    unknown = set(only) - set(CHECKS)
    if unknown:
        raise ValueError(f"only names unknown checks {sorted(unknown)}; choose from {', '.join(CHECKS)}")
    emit = emit or (lambda result: None)
    results = []
    try:
        project = read_pyproject()
    except (OSError, ValueError) as exc:
        project = None
        results.append(
            Result(FAIL, "pyproject", f"cannot read {REPO / 'pyproject.toml'}: {exc}", "git checkout -- pyproject.toml")
        )
        emit(results[-1])
    steps = {
        "python": lambda: [check_python(requires=project["requires_python"])],
        "kit": lambda: [check_kit()],
        "packages": lambda: check_packages(project),
        "widgets": check_widgets,
        "data": lambda: [check_data()],
        "kernel": lambda: [check_kernel(kernel_timeout)],
        "optional": lambda: check_optional(project),
    }
    for name in CHECKS:
        if name not in only or (project is None and name in ("python", "packages", "optional")):
            continue
        try:
            step = steps[name]()
        except Exception as exc:  # a check that breaks is a failure to report, not a traceback
            step = [
                Result(
                    FAIL, name, f"the check itself failed: {type(exc).__name__}: {exc}", "report this to the instructor"
                )
            ]
        for r in step:
            emit(r)
        results.extend(step)
    return results


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        description="Check this machine for the NUDGE workshop (see the module docstring)."
    )
    parser.add_argument(
        "--only", default=",".join(CHECKS), help=f"comma-separated checks (default all: {','.join(CHECKS)})"
    )
    parser.add_argument(
        "--kernel-timeout", type=float, default=60.0, help="seconds the kernel gets to start and run (60)"
    )
    args = parser.parse_args(argv)
    only = [c.strip() for c in args.only.split(",") if c.strip()]
    print(f"NUDGE workshop set-up check: {REPO}, Python {sys.executable}")

    def emit(r: Result) -> None:
        print(r.line(), flush=True)

    try:
        results = run_checks(only, args.kernel_timeout, emit)
    except ValueError as exc:
        parser.error(str(exc))
    counts = {s: sum(r.status == s for r in results) for s in (OK, WARN, FAIL)}
    verdict = "fix the FAIL lines above, then run `make check` again" if counts[FAIL] else "ready for the workshop"
    print(f"{counts[OK]} OK, {counts[WARN]} WARN, {counts[FAIL]} FAIL: {verdict}")
    return 1 if counts[FAIL] else 0


if __name__ == "__main__":
    sys.exit(main())
