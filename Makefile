# The README's two commands are `make demo` and `make test`; each sets up what it needs.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.tpru-installed

.PHONY: setup system demo test lint bench clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	# The CPU build of torch first (a local wheel here); an unpinned one would pull CUDA.
	$(PY) -m pip install --quiet torch==2.13.0 'torchvision<0.29'
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

# System packages from Debian (Chromium for the viewer test); warns and goes on if it cannot.
system:
	bash scripts/setup-system.sh

demo: setup system
	$(VENV)/bin/tpru demo --out demo-out

lint: setup
	$(VENV)/bin/ruff check src tests bench
	$(VENV)/bin/mypy

test: setup system lint
	$(PY) -m pytest -n 2 -q

bench: setup
	$(PY) bench/build_speed.py

clean:
	rm -rf $(VENV) demo-out .pytest_cache .mypy_cache .ruff_cache
