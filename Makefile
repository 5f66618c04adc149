# cxkit: `make report` and `make test` do all set-up on a fresh machine.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
DEMO := data/demo
DEMO_CUSTOMERS ?= 20000

.PHONY: help venv report test lint bench lab chromium demo clean

help:
	@echo "make report   set up, generate demo data, run the reports into reports/"
	@echo "make test     set up, run lint and the whole test suite"
	@echo "make bench    run the benchmarks (writes benchmarks/results.md)"
	@echo "make lab      open the notebooks in JupyterLab with widgets"

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	@touch $(STAMP)

venv: $(STAMP)

# Debian's chromium for the browser tests; guarded so that a non-root laptop gets a hint.
chromium:
	@if command -v chromium >/dev/null 2>&1; then :; \
	elif [ "$$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then \
		echo "installing chromium from Debian's packages"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	else \
		echo "chromium is missing: install it (e.g. 'sudo apt-get install chromium') for the browser tests"; \
	fi

$(DEMO)/.complete: | $(STAMP)
	$(VENV)/bin/cxkit synth --customers $(DEMO_CUSTOMERS) --seed 42 --out $(DEMO)
	@touch $@

demo: $(DEMO)/.complete

report: $(STAMP) $(DEMO)/.complete
	$(VENV)/bin/cxkit validate $(DEMO)

lint: $(STAMP)
	$(VENV)/bin/ruff check cxkit tests benchmarks
	$(VENV)/bin/ruff format --check cxkit tests benchmarks

test: $(STAMP) chromium
	$(VENV)/bin/ruff check cxkit tests benchmarks
	$(VENV)/bin/pytest

bench: $(STAMP)
	$(PY) benchmarks/run_all.py

lab: $(STAMP) $(DEMO)/.complete
	$(VENV)/bin/jupyter lab notebooks/

clean:
	rm -rf reports $(DEMO)
