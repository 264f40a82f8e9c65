# Two commands on a fresh machine: `make run` (the offline default workflow) and
# `make test`. Both create the virtual environment .venv on first use.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup test run bench docs clean

$(STAMP): requirements.txt requirements-nodeps.txt requirements-test.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@echo "installing pinned dependencies into $(VENV) (torch is a large CUDA build: ~2 min)"
	$(BIN)/pip install -q -r requirements.txt > $(VENV)/pip.log 2>&1 || { grep -v '^WARNING: Location' $(VENV)/pip.log; exit 1; }
	$(BIN)/pip install -q --no-deps --require-hashes -r requirements-nodeps.txt >> $(VENV)/pip.log 2>&1 || { tail -20 $(VENV)/pip.log; exit 1; }
	$(BIN)/pip install -q -r requirements-test.txt -c requirements.txt >> $(VENV)/pip.log 2>&1 || { tail -20 $(VENV)/pip.log; exit 1; }
	$(BIN)/pip install -q --no-deps -e . >> $(VENV)/pip.log 2>&1 || { tail -20 $(VENV)/pip.log; exit 1; }
	touch $(STAMP)

setup: $(STAMP)

# Two pytest-xdist workers: the tests that share a finished run go to one
# worker whole, so it is built once (tests/conftest.py); more workers than
# cores only slow each one down.
TEST_WORKERS ?= 2

test: setup
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS)

run: setup
	$(BIN)/snakemake --profile profiles/default
	$(BIN)/snakemake --profile profiles/default --report results/report.html

bench: setup
	$(BIN)/python benchmarks/bench_layer_scores.py

docs: setup
	$(BIN)/python -m prh.config_docs docs/config.md

clean:
	rm -rf results .snakemake
