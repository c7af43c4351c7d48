# Two commands matter: `make lab` and `make test`. Everything else is for authors,
# instructors and benchmarks. The first use of any target sets up .venv from uv.lock.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
UV := .tools/bin/uv
UV_VERSION := 0.13.8
KERNEL := pmle-labs
export UV_PYTHON_DOWNLOADS := never
export TF_CPP_MIN_LOG_LEVEL := 3
TEST_WORKSPACE := $(CURDIR)/build/test-workspace
BENCH_SMOKE_WORKSPACE := $(CURDIR)/build/bench-smoke-workspace
ALLOW_ROOT := $(if $(filter 0,$(shell id -u)),--allow-root)  # containers often run as root
SOLUTIONS := $(sort $(wildcard labs/*/solution.ipynb))

.PHONY: setup lab test lint unit notebooks run grade exercises catalog environment bench bench-smoke conformance stop clean

setup: $(VENV)/.ready

$(UV):
	$(PYTHON) -m venv .tools
	.tools/bin/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

$(VENV)/.ready: uv.lock pyproject.toml jupyter/overrides.json | $(UV)
	$(UV) sync --locked --python $(PYTHON) --compile-bytecode
	$(PY) -m ipykernel install --sys-prefix --name $(KERNEL) --display-name "PMLE Labs (Python 3.11)" >/dev/null
	# JupyterLab's settings for this environment: no news prompt or update check (they
	# call the internet), no extension manager, Markdown opens rendered (the catalog)
	mkdir -p $(VENV)/share/jupyter/lab/settings
	cp jupyter/overrides.json $(VENV)/share/jupyter/lab/settings/overrides.json
	touch $@

## make lab: JupyterLab on the labs, local backend
lab: setup
	$(VENV)/bin/jupyter lab --notebook-dir=labs --ServerApp.ip=127.0.0.1 $(ALLOW_ROOT) labs/README.md

## make test: lint, unit and service tests, notebook checks, every lab executed, bench smoke
test: setup
	rm -rf $(TEST_WORKSPACE)
	$(MAKE) -k --no-print-directory lint unit notebooks bench-smoke; status=$$?; \
	  LAB_WORKSPACE=$(TEST_WORKSPACE) $(PY) -m labkit.services stop >/dev/null; exit $$status

lint: setup
	$(VENV)/bin/ruff check .
	$(PY) -m labkit.authoring check

unit: setup
	$(VENV)/bin/pytest -n 2 --dist loadfile -q  # a file stays on one worker: its module fixtures (a tuning job, a graded class) run once; each worker serves the services in-process (tests/conftest.py)

notebooks: setup
	LAB_WORKSPACE=$(TEST_WORKSPACE) $(VENV)/bin/pytest -p no:cacheprovider -n 2 --dist loadfile \
	  --nbval-lax --nbval-current-env -q $(SOLUTIONS)

## make run LAB=00: execute one lab headless; the executed copy lands in build/
run: setup
	$(PY) -m labkit.authoring run $(LAB)

## make grade NB=path/to/notebook.ipynb: run a learner's notebook, report its self-checks
## make grade NB=folder/ (or NB='glob*.ipynb'): grade a class into build/class-report/
grade: setup
	$(PY) -m labkit.authoring grade "$(NB)" --json build/grade.json --out build/class-report \
	  $(if $(JOBS),--jobs $(JOBS)) $(if $(TIMEOUT),--timeout $(TIMEOUT)) $(if $(QUIZ),--quiz)

## make exercises / catalog / environment: regenerate what is derived from the solutions
exercises: setup
	$(PY) -m labkit.authoring exercises

catalog: setup
	$(PY) -m labkit.authoring catalog

environment: setup
	$(PY) -m labkit.authoring environment

## make bench: speed of the local services as ratios against the direct engines (ONLY=vertex)
bench: setup
	$(PY) -m bench $(ONLY)

## make bench-smoke: every benchmark at tiny sizes on a fresh workspace; fails if one breaks
bench-smoke: setup
	$(PY) -m bench --smoke --workspace $(BENCH_SMOKE_WORKSPACE) $(ONLY); status=$$?; \
	  LAB_WORKSPACE=$(BENCH_SMOKE_WORKSPACE) $(PY) -m labkit.services stop >/dev/null; exit $$status

## make conformance: google-cloud-bigquery's own system tests against the local BigQuery (not in
## make test; CONFORMANCE_SRC=<python-bigquery checkout or git repository>, JOBS=2, a node id in T)
conformance: setup
	$(PY) tests/conformance/run.py --jobs $(or $(JOBS),2) $(T)

stop: setup
	$(PY) -m labkit.services stop

clean:
	rm -rf build .venv .tools
