"""The project's set-up files agree with each other."""

from __future__ import annotations

import re

import tomllib
from conftest import REPO


def requirement_names(reqs):
    return {re.split(r"[<>=!~\[ ]", r, maxsplit=1)[0].strip().lower() for r in reqs}


def test_environment_yml_names_the_same_packages_as_pyproject():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    wanted = requirement_names(project["dependencies"] + extras["notebooks"] + extras["test"])
    text = (REPO / "environment.yml").read_text()
    conda = set()
    for line in text.split("dependencies:", 1)[1].splitlines():
        m = re.match(r"^  - ([A-Za-z0-9_.\-]+)", line)
        if m and m.group(1) not in {"pip", "python"}:
            conda.add(m.group(1).lower())
    assert conda == wanted
    assert "- -e ." in text, "environment.yml must install the kit itself with pip: -e ."
    assert re.search(r"^  - python>=3\.10$", text, re.M)
    assert project["requires-python"] == ">=3.10"
    assert project["dependencies"] == ["numpy>=1.24"], "the core needs only numpy"


def test_ci_runs_the_readme_test_command():
    assert "make test" in (REPO / ".ci" / "run").read_text()
    assert "make test" in (REPO / "README.md").read_text()


def test_wheel_and_sdist_ship_the_quizzes(tmp_path):
    """The quizzes are package data: a wheel and an sdist built from the repo both carry every file."""
    import shutil
    import subprocess
    import sys
    import tarfile
    import zipfile

    quizzes = sorted(p.name for p in (REPO / "nudge" / "teaching" / "quizzes").glob("*.json"))
    assert quizzes, "no quiz files in nudge/teaching/quizzes"
    src = tmp_path / "src"  # build from a copy: no build/ or egg-info left in the repo
    shutil.copytree(REPO / "nudge", src / "nudge", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, src / name)
    build = "from setuptools import build_meta as b; print('BUILT', b.build_wheel('dist'), b.build_sdist('dist'))"
    done = subprocess.run([sys.executable, "-c", build], cwd=src, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    wheel, sdist = done.stdout.split("BUILT ")[-1].split()
    in_wheel = set(zipfile.ZipFile(src / "dist" / wheel).namelist())
    with tarfile.open(src / "dist" / sdist) as tar:
        in_sdist = {n.split("/", 1)[1] for n in tar.getnames() if "/" in n}
    for name in quizzes:
        assert f"nudge/teaching/quizzes/{name}" in in_wheel, f"{name} missing from the wheel"
        assert f"nudge/teaching/quizzes/{name}" in in_sdist, f"{name} missing from the sdist"
    assert "nudge/teaching/quiz.py" in in_wheel
