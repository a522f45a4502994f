# Quick start: `make run` builds the warehouse from the sample, `make test` runs the tests,
# `make dev` opens the Dagster UI on http://127.0.0.1:3000.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INPUT ?= data/input
export DAGSTER_HOME ?= $(CURDIR)/.dagster_home
# one "planned" event per asset for a backfill run, not one per month (DAGSTER_SETTINGS in crm_assets/core/settings.py)
export DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS ?= 1

.PHONY: run test test-fast test-invariant lint format dev bench install install-dev sample clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $@ $(VENV)/.installed

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

# the sample runs to the last complete month, so the UI's calendar has no month without data
sample: install
	@if ! ls $(INPUT)/*.csv >/dev/null 2>&1; then $(BIN)/crm generate --out $(INPUT) --end last; fi

run: sample .env
	$(BIN)/crm run --input $(INPUT)

# the settings Dagster's CLI and UI read in this folder, with the run history's absolute path (docs/configuration.md)
.env:
	{ cat .env.example; echo "DAGSTER_HOME=$(DAGSTER_HOME)"; } > $@

# Test workers: one more than the cores, since part of the suite waits on its subprocesses and servers
# (2 cores: 367 s with 3 workers, 440 s with 2, 456 s with 4).
TEST_WORKERS ?= $(shell echo $$(( $$(nproc 2>/dev/null || echo 1) + 1 )))

# the whole suite, lint first; the test files run in parallel (one file per worker at a time)
test: lint
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile

# the inner loop: every test but the slow and end-to-end ones, stopping at the first failure
test-fast: install-dev
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile -m "not slow and not e2e" -x -q

# before a release: the stateful test of the invariant at length (120 months, more sequences, longer ones)
test-invariant: install-dev
	CRM_STATEFUL_EXAMPLES=30 CRM_STATEFUL_STEPS=25 CRM_STATEFUL_MONTHS=120 \
		$(BIN)/python -m pytest crm_assets_tests/layers/test_invariant_stateful.py -q

lint: install-dev
	$(BIN)/ruff check crm_assets crm_assets_tests benchmarks
	$(BIN)/ruff format --check crm_assets crm_assets_tests benchmarks
	$(BIN)/mypy
	$(BIN)/sqlfluff lint crm_assets --disable-progress-bar

format: install-dev
	$(BIN)/ruff check --fix crm_assets crm_assets_tests benchmarks
	$(BIN)/ruff format crm_assets crm_assets_tests benchmarks

dev: install .env
	mkdir -p $(DAGSTER_HOME) && test -f $(DAGSTER_HOME)/dagster.yaml || cp dagster_instance.yaml $(DAGSTER_HOME)/dagster.yaml
	$(BIN)/dagster dev -w workspace.yaml -h 127.0.0.1 -p 3000

bench: install-dev
	$(BIN)/python -m benchmarks

clean:
	rm -rf data/warehouse data/output .dagster_home
