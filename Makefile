# Two commands do everything on a machine with Python 3.10+:
#   make lab    create .venv, install the kit, open JupyterLab on notebooks/ (tools/lab.py: 127.0.0.1,
#               --allow-root only as root, no browser without a display, no news pop-up)
#   make test   create/update .venv, run every test (unit, property-based, notebooks) and lint
# Before a workshop: make check (Python, packages, widgets, data, a kernel; advice for each failure).
# Also: make demo (the whole pipeline headless), make bench (speed and memory benchmarks),
# make notebooks (re-execute the notebooks and strip what must not be committed).
# A local Milvus server (Linux x86-64, the server extra; see tools/milvus_server.py): make test-milvus
# runs the server tests against one in a private network; make milvus-start / milvus-stop /
# milvus-status run one in this machine's network for the notebooks (MILVUS_FLAGS=--all-interfaces
# where the machine has a network: Milvus 2.3.5 listens on every interface).

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: lab check test demo bench notebooks lint format clean test-milvus milvus-start milvus-stop milvus-status

$(PY):
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

lab: $(STAMP)
	$(PY) tools/lab.py notebooks $(LAB_FLAGS)

# The check runs even when the install fails (offline, no wheelhouse): it then says what is missing.
check:
	@$(MAKE) --no-print-directory $(STAMP) || echo "make check: installing the kit into $(VENV) failed (above). Offline? Use a wheelhouse: PIP_NO_INDEX=1 PIP_FIND_LINKS=/path/to/wheels make check (docs/workshop/instructor-notes.md, Troubleshooting)."
	@if [ -x $(PY) ]; then $(PY) tools/check_setup.py; else $(PYTHON) tools/check_setup.py; fi

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

$(VENV)/.installed-server: pyproject.toml | $(STAMP)
	$(PY) -m pip install --quiet -e ".[server]"
	touch $@

test-milvus: $(VENV)/.installed-server
	NUDGE_REQUIRE_MILVUS_SERVER=1 $(PY) tools/milvus_server.py run --isolated -- $(PY) -m pytest tests/test_milvus_server.py

milvus-start: $(VENV)/.installed-server
	$(PY) tools/milvus_server.py start $(MILVUS_FLAGS)

milvus-stop:
	$(PY) tools/milvus_server.py stop

milvus-status:
	$(PY) tools/milvus_server.py status

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
