# Task runner: the README's two commands (demo, test) and the usual verbs around them.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
UV := $(VENV)/bin/uv
STAMP := $(VENV)/.synced-stamp

.PHONY: demo test lint typecheck fmt pytest dev bench clean

# Installed packages are compiled to bytecode once here: where PYTHONDONTWRITEBYTECODE is set (as in many
# containers) every process would otherwise compile Dagster, Polars and the rest from source at each import.
$(STAMP): Makefile pyproject.toml pipelines/provider/pyproject.toml uv.lock
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	test -x $(UV) || $(VENV)/bin/python -m pip install --quiet --disable-pip-version-check uv==0.13.9
	$(UV) sync --frozen --quiet --compile-bytecode
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/fleetlake demo

# mypy (one process, ~25 CPU s from a cold cache) checks while pytest runs instead of before it: the end-to-end
# tests leave a core idle while they wait on servers, daemons and killed processes, and mypy fills those gaps. Its
# report prints after pytest's; either failing fails the target.
test: lint
	@$(VENV)/bin/mypy > $(VENV)/typecheck.log 2>&1 & typecheck=$$!; \
	$(MAKE) --no-print-directory pytest; tests=$$?; \
	wait $$typecheck; typed=$$?; echo "mypy:"; cat $(VENV)/typecheck.log; \
	exit $$(( tests != 0 || typed != 0 ))

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports --no-logo

typecheck: $(STAMP)
	$(VENV)/bin/mypy

# The tests' own bytecode (and pytest's rewritten test modules) is cached in __pycache__ even where
# PYTHONDONTWRITEBYTECODE is set: each worker would otherwise compile and rewrite every module anew (about 14 CPU
# seconds of its collection).
pytest: $(STAMP)
	PYTHONDONTWRITEBYTECODE= $(VENV)/bin/pytest -n auto --durations=10

fmt: $(STAMP)
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

# dg dev runs the webserver, the daemon and the code server (port: make dev DEV_PORT=3001); Ctrl-C stops them all.
DEV_PORT ?= 3000
dev: $(STAMP)
	DAGSTER_HOME=$(CURDIR) $(VENV)/bin/dg dev -w workspace.yaml --port $(DEV_PORT)

bench: $(STAMP)
	$(VENV)/bin/python benchmarks/ingest_benchmark.py
	$(VENV)/bin/python benchmarks/backfill_benchmark.py
	$(VENV)/bin/python benchmarks/warehouse_benchmark.py
	$(VENV)/bin/python benchmarks/hourly_tick_benchmark.py

clean:
	rm -rf $(VENV) .dagster data .pytest_cache .ruff_cache .mypy_cache
