# edumatrix-db tasks. PYTHON defaults to the project's virtualenv (.venv), else python3 on PATH.
PYTHON ?= $(if $(wildcard .venv/bin/python),.venv/bin/python,python3)

.PHONY: test lint check bench

# Everything CI runs: tests, lint, types, and the policy gate over every stack file.
test: lint
	$(PYTHON) -m pytest
	$(MAKE) check PYTHON=$(PYTHON)

lint:
	$(PYTHON) -m ruff check .
	$(PYTHON) -m mypy config components edumatrix_db policy

# The policy gate: every stacks/Pulumi.*.yaml under mocks against the policy pack (exit 1: violation, 2: config).
check:
	$(PYTHON) -m edumatrix_db.cli check

bench:
	$(PYTHON) bench/gate_bench.py
