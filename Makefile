# Two entry points for a fresh machine: `make demo` and `make test`. Each creates .venv first.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin

.PHONY: demo test lint ui clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml $(VENV)/.installed
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $@

# The demo's runs are kept so that `make ui` shows them. Pool limit 1: one dbt build at a time,
# since all years share one DuckDB file (the assets are in pool "planwise_simulation").
demo ui: export DAGSTER_HOME := $(CURDIR)/.dagster_home

$(CURDIR)/.dagster_home/dagster.yaml:
	mkdir -p $(dir $@)
	printf 'telemetry:\n  enabled: false\nconcurrency:\n  pools:\n    default_limit: 1\n' > $@

demo: $(VENV)/.installed $(CURDIR)/.dagster_home/dagster.yaml
	$(BIN)/python -m planwise_monitoring.demo

# Lint and type-check first: they take seconds and catch what a long suite run would find late.
lint: $(VENV)/.installed-test
	$(BIN)/ruff check planwise_monitoring planwise_monitoring_tests benchmarks
	$(BIN)/mypy

test: lint
	$(BIN)/python -m pytest

ui: $(VENV)/.installed $(CURDIR)/.dagster_home/dagster.yaml
	PATH=$(CURDIR)/$(BIN):$$PATH $(BIN)/dagster dev -w workspace.yaml

clean:
	rm -rf $(VENV) .dagster_home dbt_project/target dbt_project/logs dbt_project/*.duckdb *.duckdb *.duckdb.spool artifacts
