# The two commands that matter: `make run` and `make test`. Everything else supports them.
SHELL := /bin/bash
VENV := .venv
BIN := $(VENV)/bin

# Django 6.1 needs Python 3.12+: take the first suitable interpreter (pyenv installs included).
PYTHON ?= $(shell for p in python3.14 python3.13 python3.12 $$(ls -d $$HOME/.pyenv/versions/3.1[2-9]*/bin/python3 2>/dev/null | sort -rV) python3 python; do \
	if command -v $$p >/dev/null 2>&1 && $$p -c 'import sys; sys.exit(sys.version_info < (3, 12))' 2>/dev/null; then echo $$p; break; fi; done)

.PHONY: run test test-fast test-faults lint format check-deploy clean install

$(BIN)/.installed: pyproject.toml
	@if [ -z "$(PYTHON)" ]; then echo "cdp-crm needs Python 3.12 or newer (Django 6.1); none found on PATH." >&2; exit 1; fi
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	@touch $@

install: $(BIN)/.installed

## Start the app: embedded PostgreSQL/Redis unless DATABASE_URL/REDIS_URL are set, demo data on first run.
run: $(BIN)/.installed
	@$(BIN)/python -m cdp_crm.dev run

# pytest-xdist processes for the suite: one more than the cores, at most 4. A process spends much
# of its time waiting (for the live server, Chromium, the Celery worker, PostgreSQL): with one per
# core the suite's processes used ~0.9 of this 2-core box (docs/benchmarks.md, Test suite), and a
# third fills the waits. Each has its own test database (test_cdp_crm_ci_gw0, ...)
# and Redis db (15, 14, 13, 12 at most: counting down, tests/conftest.py) and starts its own
# Celery worker and Chromium when a test needs them. PYTEST_WORKERS=0 runs in one process.
# `--dist load`, not loadgroup/loadscope: those key the work by test id, and the 59 schemathesis
# cases of tests/trust/test_api_schemathesis.py share one id (all but one silently did not run).
# `--maxschedchunk 1`: tests go out one at a time as a process frees up (two queued each), not in
# blocks of a quarter of the suite, so the slowest tests, which tests/conftest.py puts first
# (SLOWEST_FIRST), spread over the processes instead of all landing in the first one's block.
PYTEST_WORKERS ?= $(shell n=$$(getconf _NPROCESSORS_ONLN 2>/dev/null || echo 2); echo $$(( n + 1 < 4 ? n + 1 : 4 )))
XDIST = $(if $(filter-out 0,$(PYTEST_WORKERS)),-n $(PYTEST_WORKERS) --dist load --maxschedchunk 1)
# Where the suite runs (its test databases are test_$(TEST_DATABASE)_gw0, ...): two checkouts on one
# machine can run their suites side by side with other values.
TEST_DATABASE ?= cdp_crm_ci
TEST_REDIS_DB ?= 15

# The suite starts a dozen Python processes (the xdist workers, their Celery workers, the `make run`
# and production-server tests' subprocesses), each importing the same project and test modules:
# with PYTHONDONTWRITEBYTECODE set in the environment each compiled them (and pytest rewrote the
# asserts of every test module) again, ~10 s of CPU per process. The caches go to __pycache__
# (gitignored) as Python's default has it.
SUITE_ENV = DJANGO_DEBUG=1 PYTHONDONTWRITEBYTECODE=

## The whole suite: linters, migration check, import contracts, pytest against real PostgreSQL + Redis.
test: $(BIN)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports
	@$(SUITE_ENV) $(BIN)/python -m cdp_crm.dev exec --database $(TEST_DATABASE) --redis-db $(TEST_REDIS_DB) -- \
		bash -c '$(BIN)/python manage.py makemigrations --check --dry-run && $(BIN)/pytest $(XDIST) $(PYTEST_ARGS)'

## The edit loop: the same without the browser tests, the read-replica tests (they start a streaming
## pair, ~20 s) and the trust suite (tests/trust).
test-fast: $(BIN)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports
	@$(SUITE_ENV) $(BIN)/python -m cdp_crm.dev exec --database $(TEST_DATABASE) --redis-db $(TEST_REDIS_DB) -- \
		bash -c '$(BIN)/python manage.py makemigrations --check --dry-run && \
			$(BIN)/pytest $(XDIST) -m "not browser and not replica" --ignore=tests/trust $(PYTEST_ARGS)'

## The fault soak (not part of `make test`: ~2-3 min): 100k events through the API while a worker is
## SIGKILLed, Redis restarts empty and Postgres connections are cut; fails on any loss or duplicate.
test-faults: $(BIN)/.installed
	@DJANGO_DEBUG=1 $(BIN)/python -m cdp_crm.dev exec --database cdp_crm_soak_admin --redis-db 8 -- \
		$(BIN)/python bench/soak.py $(SOAK_ARGS)

lint: $(BIN)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

format: $(BIN)/.installed
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

clean:
	rm -rf $(VENV) .devdata staticfiles *.egg-info .pytest_cache .ruff_cache
