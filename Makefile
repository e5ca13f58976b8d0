# edumatrix-db: two commands do all the set-up on a fresh machine.
#   make up    -> .venv, a local PostgreSQL provisioned like production, .local/connections.json
#   make test  -> .venv, ruff, mypy, every test (PostgreSQL tests start their own server), the policy gate
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: prereqs up down status test lint typecheck pytest check bytecode bench mutation mutation-clean mutation-lock clean runner-package events-plugin

# System packages (PostgreSQL 15, pgaudit, python3-venv, ...): installed here when root with apt; otherwise
# this stops before anything else with the one command to run. The list lives in scripts/prereqs.py.
prereqs:
	@$(PYTHON) scripts/prereqs.py

$(STAMP): pyproject.toml | prereqs
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,local]'
	@touch $(STAMP)

up: prereqs $(STAMP) bytecode
	$(BIN)/edumatrix-db local up

down: $(STAMP)
	$(BIN)/edumatrix-db local down

status: $(STAMP)
	$(BIN)/edumatrix-db local status

lint: $(STAMP)
	$(BIN)/ruff check .

typecheck: $(STAMP)
	$(BIN)/mypy config components edumatrix_db policy __main__.py tests bench scripts

# The project's modules compiled into __pycache__. Python reads compiled modules but writes none where
# PYTHONDONTWRITEBYTECODE is set (this workplace's machines set it): every `edumatrix-db` process then compiled the
# project's ~90 modules from source, 8 % of the instructions of a `plan prod` process (callgrind, docs/gate-speed.md,
# "Session 9"). compileall writes them whatever that variable says, and recompiles only the files that changed
# (not policy/venv, the virtualenv `pulumi preview --policy-pack policy` creates).
bytecode: $(STAMP)
	@$(BIN)/python -m compileall -q -x 'policy/venv' config components edumatrix_db policy

# pytest exits 5 when it collected no test: that is a failure here, never a silent pass.
pytest: $(STAMP) bytecode
	@set +e; $(BIN)/python -m pytest $(PYTEST_ARGS); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests: failing"; exit 1; fi; exit $$rc

# The policy gate: every stacks/Pulumi.*.yaml under mocks against the policy pack
# (exit 1: a mandatory violation, 2: a configuration error).
check: $(STAMP) bytecode
	$(BIN)/edumatrix-db check

test: prereqs lint typecheck check pytest

# The tenant-read benchmark measures the local server: `make up` first.
bench: up bytecode
	@for script in bench/*.py; do echo "== $$script"; $(BIN)/python $$script || exit 1; done

# Mutation testing of the pure logic (config/, policy/, the plan renderers, the SQL renderer), not part of
# `make test`: mutmut (settings in pyproject.toml [tool.mutmut]) drops the mutants mypy refuses (mypy runs beside
# the statistics run), runs, per mutant, the fast tests that reach the mutated function (stopping at the first
# failure; from one collected pytest session; the tests that killed earlier mutants of the same function, then
# module, first: scripts/mutmut_run.py), then
# scripts/mutation_report.py prints the score per package and every surviving mutant (exit 1 when config/ or
# policy/ is below 90 %). Incremental: mutants/ keeps every verdict, and a later run tests only the mutants of
# functions that changed (skipping the test listing and the clean run while the inputs of the last passing run
# of every test are unchanged, and the equivalent mutants an earlier run confirmed on the same code:
# tests/mutation_equivalent.lock, `make mutation-lock`; RUN_EQUIVALENTS=1 runs them). After writing tests for
# survivors, re-test them by name or glob: `make mutation MUTANTS='policy.extraction.*'`. `make mutation-clean`
# starts over. Niced.
mutation: $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[mutation]'
	$(BIN)/python -m tests.plan_cache  # every stack file planned once (tests/plan_cache.py)
	nice -n 10 $(BIN)/python scripts/mutmut_run.py --max-children 2 $(if $(RUN_EQUIVALENTS),--run-equivalents) $(MUTANTS)
	$(BIN)/python scripts/mutation_report.py

# After a run: lock the equivalent mutants it confirmed (they survived every test reaching them), so later runs
# skip them while their code is unchanged (scripts/mutmut_run.py, 5). Commit tests/mutation_equivalent.lock.
mutation-lock:
	$(BIN)/python scripts/mutation_report.py --lock

mutation-clean:
	rm -rf mutants

# The ops runner's Lambda package, build/ops-runner.zip (reproducible; README "The ops runner"). It ships the RDS
# CA bundle from certs/rds-global-bundle.pem; CA_BUNDLE=/path/to/global-bundle.pem takes another file.
runner-package: $(STAMP)
	$(BIN)/python -m edumatrix_db.ops.runner_package $(if $(CA_BUNDLE),--ca-bundle $(CA_BUNDLE))

# The events plugin's jar, build/edumatrix-events-naming.jar (docs/event-backbone.md, "The plugin zip"): the Glue
# converter's schema naming class and the connectors' TLS socket factory with the RDS CA bundle inside, compiled by
# javac (Debian openjdk-17-jdk-headless) against Debian's Avro and Jackson and against the compile-only Glue
# declarations of events-plugin/src/compile-only, which stay out of the jar (the plugin zip has the real ones).
# CA_BUNDLE=/path/to/global-bundle.pem takes another bundle, EVENTS_PLUGIN_OUT=DIR another output directory.
EVENTS_PLUGIN_OUT ?= build
EVENTS_JAR := $(EVENTS_PLUGIN_OUT)/edumatrix-events-naming.jar
EVENTS_CA_BUNDLE := $(or $(CA_BUNDLE),certs/rds-global-bundle.pem)
JAVA_LIBS := avro jackson-core-asl jackson-databind jackson-core jackson-annotations
JAVA_CP := /usr/share/java/avro.jar:/usr/share/java/jackson-core-asl.jar:/usr/share/java/jackson-databind.jar:/usr/share/java/jackson-core.jar:/usr/share/java/jackson-annotations.jar

events-plugin:
	@command -v javac >/dev/null && command -v jar >/dev/null || { echo "events-plugin: javac not found: run \`make prereqs\` (Debian openjdk-17-jdk-headless)" >&2; exit 1; }
	@for lib in $(JAVA_LIBS); do test -f /usr/share/java/$$lib.jar || { echo "events-plugin: /usr/share/java/$$lib.jar not found: run \`make prereqs\` (Debian libavro-java, libjackson2-databind-java)" >&2; exit 1; }; done
	@test -s $(EVENTS_CA_BUNDLE) || { echo "events-plugin: no RDS CA bundle at $(EVENTS_CA_BUNDLE): put AWS's global-bundle.pem there (certs/README.md) or pass CA_BUNDLE=PATH" >&2; exit 1; }
	@work=$(EVENTS_PLUGIN_OUT)/events-plugin; rm -rf $$work $(EVENTS_JAR) && mkdir -p $$work/compile-only $$work/classes/com/edumatrix/events && \
	javac --release 11 -Xlint:all -Werror -d $$work/compile-only $$(find events-plugin/src/compile-only -name '*.java' | LC_ALL=C sort) && \
	javac --release 11 -Xlint:all -Werror -cp $$work/compile-only:$(JAVA_CP) -d $$work/classes $$(find events-plugin/src/main -name '*.java' | LC_ALL=C sort) && \
	cp $(EVENTS_CA_BUNDLE) $$work/classes/com/edumatrix/events/rds-ca-bundle.pem && \
	jar --create --file $(EVENTS_JAR) --date=2026-01-01T00:00:00Z -C $$work/classes . && \
	anchors=$$(java -cp $(EVENTS_JAR) com.edumatrix.events.RdsCaBundleSocketFactory) && \
	echo "events-plugin: $(EVENTS_JAR) (schema naming class, TLS factory with $$anchors CA certificates from $(EVENTS_CA_BUNDLE))"

clean:
	rm -rf .pytest_cache .mypy_cache .ruff_cache build *.egg-info policy/venv mutants
