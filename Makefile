# cxkit: `make report` and `make test` do all set-up on a fresh machine.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
DEMO := data/demo
DEMO_CUSTOMERS ?= 20000

.PHONY: help venv report test lint bench lab system-deps demo clean screenshots

help:
	@echo "make report   set up, generate demo data, run the reports into reports/"
	@echo "make test     set up, run lint and the whole test suite"
	@echo "make bench    run the benchmarks (writes benchmarks/results.md)"
	@echo "make lab      open the notebooks in JupyterLab with widgets"
	@echo "make screenshots [SHOTS=reports]  full-page PNGs of every report page (1400 px)"
	@echo "              into <folder>/_screenshots/ (report folders inside SHOTS too)"

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test,spark,postgres]'
	@touch $(STAMP)

venv: $(STAMP)

# System packages the tests need: Chromium (browser tests), Java 17 (Spark), PostgreSQL.
# Guarded: as root on Debian they are installed; elsewhere the user is told what to install.
SYSTEM_PKGS := chromium:chromium java:openjdk-17-jre-headless initdb:postgresql
system-deps:
	@missing=""; \
	for pair in $(SYSTEM_PKGS); do \
		cmd=$${pair%%:*}; pkg=$${pair#*:}; \
		if ! command -v $$cmd >/dev/null 2>&1 && ! ls /usr/lib/postgresql/*/bin/$$cmd >/dev/null 2>&1; then \
			missing="$$missing $$pkg"; \
		fi; \
	done; \
	if [ -z "$$missing" ]; then :; \
	elif [ "$$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then \
		echo "installing from Debian's packages:$$missing"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	else \
		echo "missing system packages:$$missing -- install them (e.g. sudo apt-get install$$missing);"; \
		echo "until then the browser, Spark or PostgreSQL tests skip with a message"; \
	fi

$(DEMO)/.complete: | $(STAMP)
	$(VENV)/bin/cxkit synth --customers $(DEMO_CUSTOMERS) --seed 42 --out $(DEMO)
	@touch $@

demo: $(DEMO)/.complete

report: $(STAMP) $(DEMO)/.complete
	$(VENV)/bin/cxkit report

lint: $(STAMP)
	$(VENV)/bin/ruff check cxkit tests benchmarks
	$(VENV)/bin/ruff format --check cxkit tests benchmarks

test: $(STAMP) system-deps
	$(VENV)/bin/ruff check cxkit tests benchmarks
	$(VENV)/bin/pytest

bench: $(STAMP)
	$(PY) benchmarks/run_all.py

lab: $(STAMP) $(DEMO)/.complete
	$(VENV)/bin/jupyter lab notebooks/

# Every page of each report folder in headless Chromium at 1400 px, as full-page PNGs in
# <folder>/_screenshots/ (ignored by git); report folders inside (reports/cdnow) too.
SHOTS ?= reports
screenshots: $(STAMP) system-deps
	$(PY) -m cxkit.report.screenshots $(SHOTS)

clean:
	rm -rf reports $(DEMO)
