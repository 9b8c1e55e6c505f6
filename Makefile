# connhub developer entry points. Every target bootstraps .venv itself.
#
#   make venv     create .venv and (re)install '.[dev]' when pyproject.toml changed
#   make run      start the service (migrates, creates the key file, prints URL/token)
#   make test     ensure PostgreSQL/MariaDB are up, then run the suite once per store
#   make bench    run every bench/bench_*.py (other bench/*.py files are helpers they launch)
#   make lint     ruff check + ruff format --check + mypy
#
# Knobs:  make test STORES=sqlite PYTEST_ARGS='tests/test_x.py::test_y -x'

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := test

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
STORES ?= sqlite postgres
PYTEST_ARGS ?=
LINT_PATHS := src tests $(wildcard bench migrations)

.PHONY: venv run services test bench lint

venv: $(STAMP)

$(STAMP): pyproject.toml
	@if [[ ! -x $(BIN)/python ]]; then \
	    echo "creating $(VENV) with $(PYTHON)"; \
	    $(PYTHON) -m venv $(VENV); \
	fi
	$(BIN)/python -m pip install --disable-pip-version-check -q -e '.[dev]'
	@touch $(STAMP)

run: venv
	$(BIN)/connhub serve

services:
	@scripts/ensure-services.sh

# Runs the whole suite once per store; both runs always happen, and the target fails if either
# fails (including pytest's exit code 5, "no tests collected").
test: venv services
	@failed=""; \
	for store in $(STORES); do \
	    echo "=== pytest: CONNHUB_TEST_STORE=$$store ==="; \
	    CONNHUB_TEST_STORE=$$store $(BIN)/pytest -q -p no:cacheprovider $(PYTEST_ARGS) \
	        || failed="$$failed $$store(exit $$?)"; \
	done; \
	if [[ -n "$$failed" ]]; then echo "FAILED stores:$$failed"; exit 1; fi

bench: venv services
	@shopt -s nullglob; files=(bench/bench_*.py); \
	if [[ $${#files[@]} -eq 0 ]]; then echo "no bench/bench_*.py files"; exit 0; fi; \
	failed=""; \
	for f in "$${files[@]}"; do \
	    echo "=== $$f ==="; \
	    $(BIN)/python "$$f" || failed="$$failed $$f"; \
	done; \
	if [[ -n "$$failed" ]]; then echo "FAILED benchmarks:$$failed"; exit 1; fi

lint: venv
	@rc=0; \
	$(BIN)/ruff check $(LINT_PATHS) || rc=1; \
	$(BIN)/ruff format --check $(LINT_PATHS) || rc=1; \
	$(BIN)/mypy || rc=1; \
	exit $$rc
