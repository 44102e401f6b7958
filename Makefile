# Two commands for a fresh machine: `make run` and `make test`. Each does its own set-up:
# a virtual environment in .venv with rig and its dependencies (torch pinned to 2.13.0).
SHELL := /bin/bash
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# The first Python 3.11+ on PATH.
PYTHON ?= $(shell for p in python3.13 python3.12 python3.11 python3; do \
	command -v $$p >/dev/null 2>&1 && $$p -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
	2>/dev/null && echo $$p && break; done)

.PHONY: setup run test lint typecheck pytest nodetest bench doctor clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	@if [ -z "$(PYTHON)" ]; then \
		echo "rig needs Python 3.11 or newer: install it (python.org, Homebrew or apt) and retry"; \
		exit 1; fi
	$(PYTHON) -m venv $(VENV)
	@# torch first and pinned, so that nothing pulls another build of it.
	$(BIN)/pip install --quiet 'torch==2.13.0'
	$(BIN)/pip install --quiet -e '.[dev]'
	$(BIN)/python -c "import rig, torch, librosa, pythonosc"
	touch $(STAMP)

run: setup
	$(BIN)/rig perform

test: setup lint typecheck pytest nodetest

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: setup
	$(BIN)/mypy

pytest: setup
	$(BIN)/pytest -q

# The device logic's Node tests, once max4live/ holds them.
nodetest:
	@if ls max4live/tests/*.test.js >/dev/null 2>&1; then node --test max4live/tests/; \
	else echo "no device logic tests yet (max4live/tests/*.test.js)"; fi

bench: setup
	$(BIN)/rig bench loops

doctor: setup
	$(BIN)/rig doctor

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache *.egg-info
