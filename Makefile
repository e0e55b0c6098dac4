# fleetscope: `make collect` and `make test` do all the set-up on a fresh machine (python3, make, git).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# `make collect`/`make report` inventory; empty: the settings' collect.inventory (default inventory.ini).
INVENTORY ?=
# Extra arguments for the fleetscope command, e.g. `make collect ARGS="--limit gpu"`; for `make bench`, the
# arguments of `python -m benchmarks` (the collection benchmarks after it run as they are).
ARGS ?=

.PHONY: help collect report sql test test-fast lint bench clean

help:
	@echo "make collect [INVENTORY=lab.ini]        collect from every host, store the run, render the report (site/)"
	@echo "make report [INVENTORY=lab.ini]         render the report (site/) from the stored data"
	@echo "make sql                                interactive SQL on the warehouse"
	@echo "make test                               ruff + ansible-lint + the whole pytest suite"
	@echo "make test-fast                          the same without tests marked slow"
	@echo "make bench                              benchmarks (numbers in benchmarks/out/, docs/benchmarks.md)"
	@echo "make lint                               ruff + ansible-lint (make test runs them first)"
	@echo "make clean                              remove the venv, site/ and caches (data/ is kept)"

# The venv is rebuilt when pyproject.toml changes. The base install serves collect/report;
# the test extras (pytest, ruff, ansible-lint) come on top for the test targets.
$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(BIN)/.installed-test: $(BIN)/.installed
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@

collect: $(BIN)/.installed
	$(BIN)/fleetscope collect $(if $(INVENTORY),--inventory $(INVENTORY)) $(ARGS)

report: $(BIN)/.installed
	$(BIN)/fleetscope report $(if $(INVENTORY),--inventory $(INVENTORY)) $(ARGS)

sql: $(BIN)/.installed
	$(BIN)/fleetscope sql $(ARGS)

lint: $(BIN)/.installed-test
	$(BIN)/ruff check .
	PATH="$(abspath $(BIN)):$$PATH" ANSIBLE_CONFIG=$(CURDIR)/ansible.cfg $(BIN)/ansible-lint --offline -q playbooks roles

test: lint
	$(BIN)/python -m pytest $(PYTEST_ARGS)

test-fast: lint
	$(BIN)/python -m pytest -m "not slow" $(PYTEST_ARGS)

# Warehouse, report and collector benchmarks, then collection at 8/16/32 loopback sshd hosts (needs sshd), then
# where a cold run's CPU goes, process by process (needs root and `acct`).
bench: $(BIN)/.installed-test
	$(BIN)/python -m benchmarks $(ARGS)
	$(BIN)/python -m benchmarks.collect_bench --repeat 5
	@if [ "$$(id -u)" = 0 ] && command -v accton >/dev/null && command -v dump-acct >/dev/null; then \
		$(BIN)/python -m benchmarks.cold_cpu; \
	else echo "benchmarks.cold_cpu skipped: it needs root and process accounting (apt-get install acct)"; fi

clean:
	rm -rf $(VENV) site .pytest_cache .ruff_cache build *.egg-info
