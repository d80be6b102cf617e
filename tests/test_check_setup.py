"""`make check` (tools/check_setup.py): all OK in the kit's environment, and each failure it
promises to find, injected without touching the environment (a tampered copy of the data, a
package reported missing, a fake old version on the path, a disabled or stale widget extension,
a kernel that cannot start or never answers, another copy of the kit first on the path)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import REPO

from tools import check_setup as cs

SCRIPT = REPO / "tools" / "check_setup.py"


def run_check(tmp_path: Path, *args: str, env: dict | None = None, pythonpath: tuple = ()) -> tuple[int, dict, str]:
    """Run the script in a subprocess; returns (exit status, {check name: line}, full output)."""
    environ = {k: v for k, v in os.environ.items() if k not in ("NUDGE_CHECK_MISSING", "NUDGE_DATA_DIR")}
    # this checkout first, for the script and the kernel alike (an absolute path: the kernel runs in notebooks/)
    environ["PYTHONPATH"] = os.pathsep.join([*map(str, pythonpath), str(REPO)])
    environ["JUPYTER_RUNTIME_DIR"] = str(tmp_path / "runtime")
    environ.update(env or {})
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), *args], capture_output=True, text=True, env=environ, cwd=REPO, timeout=300
    )
    lines = {}
    for line in proc.stdout.splitlines():
        status, _, rest = line.partition(" ")
        if status in ("OK", "WARN", "FAIL"):
            lines[rest.strip().split(":")[0]] = line
    return proc.returncode, lines, proc.stdout + proc.stderr


def test_everything_is_ok_in_the_kits_environment(tmp_path):
    code, lines, out = run_check(tmp_path)
    assert code == 0, out
    required = ["python", "kit", "widgets", "widgets versions", "data", "kernel"]
    required += [f"package {name}" for name in ("numpy", "jupyterlab", "matplotlib", "ipywidgets", "qdrant-client")]
    for name in required:
        assert lines[name].startswith("OK "), out
    assert not [line for line in lines.values() if line.startswith("FAIL")]
    assert {f"optional {extra}" for extra in cs.OPTIONAL_EXTRAS} <= set(lines)  # OK or WARN, never FAIL
    assert "imported nudge from " + str(REPO) in lines["kernel"]
    assert out.splitlines()[-1].endswith("0 FAIL: ready for the workshop")


def test_a_missing_package_fails_with_the_install_command(tmp_path):
    code, lines, out = run_check(
        tmp_path, "--only", "packages,optional", env={"NUDGE_CHECK_MISSING": "matplotlib,pytest-playwright"}
    )
    assert code == 1
    assert lines["package matplotlib"].startswith("FAIL package matplotlib: not installed (needs >=3.7)")
    assert "-m pip install 'matplotlib>=3.7'" in lines["package matplotlib"]
    assert lines["package numpy"].startswith("OK ")
    assert lines["optional browser"].startswith("WARN ") and "pip install -e '.[browser]'" in lines["optional browser"]
    assert out.splitlines()[-1].endswith("1 FAIL: fix the FAIL lines above, then run `make check` again")


def test_a_too_old_version_fails(tmp_path):
    fake = tmp_path / "site"
    (fake / "numpy-1.0.dist-info").mkdir(parents=True)
    (fake / "numpy-1.0.dist-info" / "METADATA").write_text("Metadata-Version: 2.1\nName: numpy\nVersion: 1.0\n")
    code, lines, _ = run_check(tmp_path, "--only", "packages", pythonpath=(fake,))
    assert code == 1
    assert lines["package numpy"].startswith("FAIL package numpy: 1.0 installed, needs >=1.24")
    assert "-m pip install 'numpy>=1.24'" in lines["package numpy"]


def _data_copy(tmp_path: Path) -> Path:
    copy = tmp_path / "data"
    shutil.copytree(REPO / "data" / "source", copy / "source")
    shutil.copytree(REPO / "data" / "tessera", copy / "tessera")
    return copy


def test_a_tampered_vector_fails_the_data_check(tmp_path):
    copy = _data_copy(tmp_path)
    vectors = copy / "tessera" / "embeddings" / "all-MiniLM-L6-v2" / "corpus.npy"
    array = np.load(vectors)
    array[5] *= 1.5
    np.save(vectors, array)
    code, lines, _ = run_check(tmp_path, "--only", "data", env={"NUDGE_DATA_DIR": str(copy)})
    assert code == 1
    assert lines["data"].startswith("FAIL data: 1 of 187 rows of corpus.npy are not unit length, e.g. row 5")
    assert "git checkout -- data/" in lines["data"]
    np.save(vectors, array[:-1] / np.linalg.norm(array[:-1], axis=1, keepdims=True))  # a row lost
    code, lines, _ = run_check(tmp_path, "--only", "data", env={"NUDGE_DATA_DIR": str(copy)})
    assert code == 1 and "corpus.npy is float32 (186, 384), the manifest says float32 (187, 384)" in lines["data"]


def test_an_edited_text_fails_the_data_check(tmp_path):
    copy = _data_copy(tmp_path)
    path = copy / "tessera" / "tessera_week2.json"
    data = json.loads(path.read_text())
    first = next(iter(data["queries"]))
    data["queries"][first] += " (edited)"
    path.write_text(json.dumps(data))
    code, lines, _ = run_check(tmp_path, "--only", "data", env={"NUDGE_DATA_DIR": str(copy)})
    assert code == 1
    assert lines["data"].startswith("FAIL data: the bundled data does not match its manifest")
    assert "no longer match the texts" in lines["data"]


def test_a_disabled_widget_extension_fails(tmp_path):
    config = tmp_path / "config"
    (config / "labconfig").mkdir(parents=True)
    (config / "labconfig" / "page_config.json").write_text(
        json.dumps({"disabledExtensions": {cs.WIDGET_EXTENSION: True}})
    )
    code, lines, _ = run_check(tmp_path, "--only", "widgets", env={"JUPYTER_CONFIG_DIR": str(config)})
    assert code == 1
    assert lines["widgets"].startswith(f"FAIL widgets: {cs.WIDGET_EXTENSION} is disabled")
    assert lines["widgets"].endswith(f"fix: jupyter labextension enable {cs.WIDGET_EXTENSION}")
    code, lines, _ = run_check(tmp_path, "--only", "widgets", env={"NUDGE_CHECK_MISSING": "jupyterlab_widgets"})
    assert code == 1 and "JupyterLab has no @jupyter-widgets/jupyterlab-manager extension" in lines["widgets"]


def test_a_stale_widget_extension_first_on_the_path_fails(tmp_path):
    stale = tmp_path / "jupyter" / "labextensions" / "@jupyter-widgets" / "jupyterlab-manager"
    stale.mkdir(parents=True)
    (stale / "package.json").write_text(json.dumps({"name": cs.WIDGET_EXTENSION, "version": "3.1.0"}))
    code, lines, _ = run_check(tmp_path, "--only", "widgets", env={"JUPYTER_PATH": str(tmp_path / "jupyter")})
    assert code == 1
    assert f"needs {cs.WIDGET_EXTENSION} 5.x, but JupyterLab loads 3.1.0 from {stale}" in lines["widgets versions"]
    assert "--force-reinstall ipywidgets jupyterlab_widgets widgetsnbextension" in lines["widgets versions"]


def _kernel_spec(tmp_path: Path, argv: list) -> dict:
    spec = tmp_path / "jupyter" / "kernels" / "python3"
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({"argv": argv, "display_name": "Python 3", "language": "python"}))
    return {"JUPYTER_PATH": str(tmp_path / "jupyter")}


def test_a_kernel_that_cannot_start_fails(tmp_path):
    env = _kernel_spec(
        tmp_path, [str(tmp_path / "no-such-python"), "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    )
    code, lines, _ = run_check(tmp_path, "--only", "kernel", env=env)
    assert code == 1
    assert lines["kernel"].startswith("FAIL kernel: the python3 kernel did not start")
    assert "jupyter kernelspec list" in lines["kernel"]


def test_a_kernel_that_never_answers_fails_in_bounded_time(tmp_path):
    env = _kernel_spec(tmp_path, [sys.executable, "-c", "import time; time.sleep(600)", "{connection_file}"])
    started = time.monotonic()
    code, lines, _ = run_check(tmp_path, "--only", "kernel", "--kernel-timeout", "4", env=env)
    assert code == 1 and time.monotonic() - started < 60
    assert lines["kernel"].startswith("FAIL kernel: the python3 kernel did not start: RuntimeError")


def test_another_copy_of_the_kit_first_on_the_path_fails(tmp_path):
    other = tmp_path / "other-clone"
    (other / "nudge").mkdir(parents=True)
    (other / "nudge" / "__init__.py").write_text("")
    code, lines, _ = run_check(tmp_path, "--only", "kit,kernel", pythonpath=(other,))
    assert code == 1
    assert lines["kit"].startswith(f"FAIL kit: this Python imports nudge from {other}, not from this folder {REPO}")
    assert lines["kernel"].startswith("FAIL kernel: the kernel") and f"imports nudge from {other}" in lines["kernel"]
    assert "-m pip install -e '.[dev]'" in lines["kernel"]


def test_unknown_checks_are_refused(tmp_path):
    proc = subprocess.run([sys.executable, str(SCRIPT), "--only", "dta"], capture_output=True, text=True)
    assert proc.returncode == 2 and "only names unknown checks ['dta']" in proc.stderr


# ---------------------------------------------------------------- the pure pieces


def test_python_version_against_requires_python():
    assert cs.check_python((3, 11, 7), ">=3.10").status == "OK"
    old = cs.check_python((3, 9, 18), ">=3.10")
    assert old.status == "FAIL" and "3.9.18 is too old or too new: the kit needs >=3.10" in old.line()
    assert "make PYTHON=python3.X check" in old.advice


@pytest.mark.parametrize(
    ("version", "spec", "ok"),
    [
        ("2.4.6", ">=1.24", True),
        ("1.23.5", ">=1.24", False),
        ("1.20.0", ">=1.20,<2", True),
        ("2.0", ">=1.20,<2", False),
        ("2.13.0+cpu", "==2.13.0", True),
        ("4.0.16", "~=4.0.14", True),
        ("4.1.0", "~=4.0.14", False),
        ("4.0.13", "~=4.0.14", False),
        ("3.0.17", "==3.0.*", True),
        ("3.1", "==3.0.*", False),
        ("3.10", "!=3.10", False),
        ("4", ">=4", True),
    ],
)
def test_version_specifiers(version, spec, ok):
    assert cs.version_matches(version, spec) is ok


def test_markers_and_requirements():
    linux = {"sys_platform": "linux", "platform_machine": "x86_64", "python_version": "3.11"}
    assert cs.marker_applies("sys_platform != 'win32'", linux)
    assert cs.marker_applies("sys_platform == 'linux' and platform_machine == 'x86_64'", linux)
    assert not cs.marker_applies("sys_platform == 'darwin' or python_version < '3.10'", linux)
    req = cs.Requirement("milvus-lite>=3.2,<4; sys_platform != 'win32'")
    assert (req.name, req.specifier, req.marker) == ("milvus-lite", ">=3.2,<4", "sys_platform != 'win32'")
    assert cs.Requirement("nudge-kit[notebooks,test]").extras == ["notebooks", "test"]
    with pytest.raises(ValueError, match=r"environment marker .* is not understood"):
        cs.marker_applies("sys_platform in 'linux'", linux)


def test_pyproject_is_read_the_same_without_tomllib():
    import tomllib

    text = (REPO / "pyproject.toml").read_text()
    project = tomllib.loads(text)["project"]
    subset = cs._parse_toml_subset(text)["project"]
    assert subset["requires-python"] == project["requires-python"]
    assert subset["dependencies"] == project["dependencies"]
    assert subset["optional-dependencies"] == project["optional-dependencies"]


def test_extras_expand_the_kits_references_to_itself():
    project = cs.read_pyproject()
    dev = [r.name for r in cs.extra_requirements(project, ["dev"])]
    assert dev == [r.name for r in cs.extra_requirements(project, ["notebooks", "test"])]
    assert "qdrant-client" in dev and "pytest" in dev
    with pytest.raises(ValueError, match=r"pyproject.toml has no extra 'nope'"):
        cs.extra_requirements(project, ["nope"])
