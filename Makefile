# One target per task; CI (.ci/run) calls the same targets.
# Only Python 3.11+ is needed: uv is bootstrapped into .tools/, everything else into .venv/.
PYTHON ?= python3
UV_VERSION := 0.13.9
UV := .tools/bin/uv
export UV_PYTHON_DOWNLOADS := never
RUN := $(UV) run --frozen

.DEFAULT_GOAL := help
.PHONY: help install fmt lint typecheck test run migrate bench

help: ## List the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

$(UV):
	$(PYTHON) -m venv .tools
	.tools/bin/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

.venv/.installed: $(UV) pyproject.toml uv.lock
	$(UV) sync --frozen --all-groups --python $(PYTHON)
	@touch $@

install: .venv/.installed ## Install the project and every dependency group into .venv

fmt: install ## Format and autofix
	$(RUN) ruff format .
	$(RUN) ruff check --fix .

lint: install ## ruff, mypy strict
	$(RUN) ruff format --check .
	$(RUN) ruff check .
	$(RUN) mypy src

test: lint ## Lint, type-check and run the whole test suite with coverage
	$(RUN) coverage erase
	$(RUN) coverage run -m pytest
	$(RUN) coverage combine --quiet
	$(RUN) coverage report

run: install ## Serve the API on http://127.0.0.1:8000 (embedded PostgreSQL unless DATABASE_URL/DB_* is set)
	$(RUN) bookshelf dev

migrate: install ## Apply database migrations
	$(RUN) bookshelf migrate

bench: install ## Benchmark vs the tutorial app, hello-world and pgbench (needs wrk; see bench/README.md)
	$(RUN) --group bench python bench/run.py
