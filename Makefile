# Two commands do everything on a machine with Python 3.10+:
#   make lab    create .venv, install the kit, open JupyterLab on notebooks/
#   make test   create/update .venv, run every test (unit, property-based, notebooks) and lint
# Also: make demo (the whole pipeline headless), make bench (speed and memory benchmarks),
# make notebooks (re-execute the notebooks and strip what must not be committed).

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: lab test demo bench notebooks lint format clean

$(PY):
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

lab: $(STAMP)
	$(VENV)/bin/jupyter lab notebooks/

test: $(STAMP)
	$(PY) -m pytest
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

demo: $(STAMP)
	$(PY) -m nudge.teaching.demo

bench: $(STAMP)
	$(PY) benchmarks/bench_fit.py
	$(PY) benchmarks/bench_widget.py
	$(PY) benchmarks/bench_remote.py

# Re-run every notebook in place (after changing the library or the data), then check them.
notebooks: $(STAMP)
	$(PY) tools/run_notebooks.py run

lint: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

format: $(STAMP)
	$(PY) -m ruff check --fix .
	$(PY) -m ruff format .

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis .ruff_cache
