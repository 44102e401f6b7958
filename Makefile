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

.PHONY: setup run test lint typecheck devicelint pytest nodetest bench doctor device corpus \
	train-defaults clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	@if [ -z "$(PYTHON)" ]; then \
		echo "rig needs Python 3.11 or newer: install it (python.org, Homebrew or apt) and retry"; \
		exit 1; fi
	$(PYTHON) -m venv $(VENV)
	@# torch first and pinned, so that nothing pulls another build of it.
	$(BIN)/pip install --quiet 'torch==2.13.0'
	$(BIN)/pip install --quiet -e '.[ui,diffusion,dev]'
	$(BIN)/python -c "import rig, torch, librosa, pythonosc"
	touch $(STAMP)

run: setup
	$(BIN)/rig perform

test: setup lint typecheck devicelint pytest nodetest

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: setup
	$(BIN)/mypy

# Build the Max for Live device in memory and check it without Max.
devicelint: setup
	$(BIN)/rig device lint

pytest: setup
	$(BIN)/pytest -q --durations=12

# The device's tests with Node's own runner (no npm packages): the built device in the Max
# double (max4live/harness/), so the device is built first.
nodetest: device
	@command -v node >/dev/null 2>&1 || { echo "make test needs Node.js 18 or newer for the \
	device tests (Debian: apt-get install nodejs; else nodejs.org)"; exit 1; }
	node --test max4live/tests/

bench: setup
	$(BIN)/rig bench loops
	$(BIN)/rig bench gan

# The device, ready to drop into Live: max4live/build/rig-slots.amxd + rig-slots.js
device: setup
	$(BIN)/rig device build

doctor: setup
	$(BIN)/rig doctor

# The default training corpus (needs: apt-get install fluidsynth fluid-soundfont-gm sonic-pi-samples)
corpus: setup
	$(BIN)/rig data demo runs/corpus

# Train (or go on training) the shipped default models; see scripts/train-defaults.sh.
train-defaults: setup
	scripts/train-defaults.sh

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache *.egg-info
