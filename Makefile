# Quick start: `make run` builds the warehouse from the sample, `make test` runs the tests,
# `make dev` opens the Dagster UI on http://127.0.0.1:3000.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INPUT ?= data/input
export DAGSTER_HOME ?= $(CURDIR)/.dagster_home
# one "planned" event per asset for a backfill run, not one per month (see crm_assets/automation/instance.py)
export DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS ?= 1

.PHONY: run test lint dev bench install install-dev sample clean

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

sample: install
	@if ! ls $(INPUT)/*.csv >/dev/null 2>&1; then $(BIN)/crm generate --out $(INPUT); fi

run: sample
	$(BIN)/crm run --input $(INPUT)

test: install-dev
	$(BIN)/python -m pytest

lint: install-dev
	$(BIN)/ruff check crm_assets crm_assets_tests benchmarks

dev: install
	mkdir -p $(DAGSTER_HOME) && test -f $(DAGSTER_HOME)/dagster.yaml || cp dagster_instance.yaml $(DAGSTER_HOME)/dagster.yaml
	$(BIN)/dagster dev -w workspace.yaml -h 127.0.0.1 -p 3000

bench: install-dev
	$(BIN)/python -m benchmarks

clean:
	rm -rf data/warehouse data/output .dagster_home
