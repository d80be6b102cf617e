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
