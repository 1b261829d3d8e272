# Fleetplane: two commands do all set-up on a fresh machine: `make up` and `make test`.
SHELL := /bin/bash
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell sha1sum pyproject.toml | cut -c1-12)
PYTEST_ARGS ?=

.PHONY: up test venv k8s-binaries helm browser lint fmt test-unit test-lab bench clean-venv

venv: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	@rm -f $(VENV)/.installed-*; touch $@

## Start the hub on its embedded Postgres (data in .fleetplane/) with a small SIMULATED demo
## fleet and sample workloads; print how to use kubectl.
up: venv
	$(BIN)/fleetplane up --demo

## Build kube-apiserver & co., etcd and kwok from Go modules into ~/.cache/fleetplane (no-op when present).
k8s-binaries:
	bash deploy/local/build-k8s.sh

## Build helm v3 from its Go module into ~/.cache/fleetplane (no-op when present; docs/install.md).
helm:
	bash deploy/local/build-helm.sh

## Import layers (.importlinter), ruff lint + format check, strict mypy on every package.
lint: venv
	$(BIN)/lint-imports
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy fleetplane fleetplane_types fleetplane_lab fleetplane_testing hub placement spoke-agent/spoke_agent

## Fix what ruff can fix and format the tree.
fmt: venv
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

## Headless Chromium for the dashboard's browser tests (tests/ui): Debian's package, driven by
## Playwright with the system browser (no browser download).
browser:
	@test -x /usr/bin/chromium || (apt-get update && apt-get install -y chromium)

## Everything CI runs: install, build what the tests need, lint, the whole suite.
test: venv k8s-binaries helm browser lint
	$(BIN)/pytest $(PYTEST_ARGS)

test-unit: venv
	$(BIN)/pytest tests/unit $(PYTEST_ARGS)

clean-venv:
	rm -rf $(VENV)

## Only the lab suites (real spoke control planes).
test-lab: venv k8s-binaries
	$(BIN)/pytest -m lab tests/lab $(PYTEST_ARGS)
