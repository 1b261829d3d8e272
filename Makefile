# Fleetplane: two commands do all set-up on a fresh machine: `make up` and `make test`.
SHELL := /bin/bash
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# The exact versions of the whole `[test]` closure (and pip, setuptools) for Python 3.11 on
# Linux: `make venv` installs only those; `make lock` re-resolves them (docs/release.md).
LOCK := requirements/lock.txt
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml $(LOCK) | sha1sum | cut -c1-12)
PYTEST_ARGS ?=
# `make lock` runs uv from a tools venv outside the repository, kept per version.
UV_VERSION := 0.13.9
FLEETPLANE_CACHE ?= $(HOME)/.cache/fleetplane
UV_VENV := $(FLEETPLANE_CACHE)/uv-$(UV_VERSION)
UV := $(UV_VENV)/bin/uv
# The build backend pinned in the lock too (pyproject's [build-system] requires).
BUILD_REQUIRES := $(shell sed -n 's/^requires = \["\([^"]*\)"\].*/\1/p' pyproject.toml)
LOCK_ARGS ?=

.PHONY: up test venv lock k8s-binaries helm prometheus browser lint fmt test-unit test-lab bench clean-venv

venv: $(STAMP)

# Reinstalls when pyproject.toml or the lock changes (the stamp's name is a hash of both).
# The lock is a constraints file: only what pyproject asks for is installed, at its locked version.
$(STAMP): pyproject.toml $(LOCK)
	@test -x $(BIN)/python || $(PY) -m venv $(VENV)
	@$(BIN)/python -c 'import platform, sys; sys.exit(sys.version_info[:2] != (3, 11) or platform.machine() != "x86_64")' \
	  || echo "warning: $(LOCK) is resolved for CPython 3.11 on x86_64 Linux; this venv is $$($(BIN)/python -c 'import platform; print(platform.python_version(), platform.machine())'): run 'make lock' for it if the install fails" >&2
	$(BIN)/pip install -q -c $(LOCK) --upgrade pip
	$(BIN)/pip install -q -c $(LOCK) --build-constraint $(LOCK) -e '.[test]'
	@rm -f $(VENV)/.installed-*; touch $@

## Re-resolve requirements/lock.txt from pyproject.toml, keeping the locked versions that still
## fit; `make lock LOCK_ARGS=--upgrade` (or `--upgrade-package NAME`) moves to newer releases.
## The file is replaced only when a pin changed (so an unchanged lock does not reinstall the venv).
lock: $(UV)
	cp $(LOCK) $(LOCK).new
	printf '%s\n' pip '$(BUILD_REQUIRES)' | $(UV) pip compile pyproject.toml - --extra test \
	  --python-version 3.11 --python-platform x86_64-unknown-linux-gnu \
	  --custom-compile-command 'make lock' --quiet $(LOCK_ARGS) -o $(LOCK).new || { rm -f $(LOCK).new; exit 1; }
	@if cmp -s $(LOCK) $(LOCK).new; then rm $(LOCK).new; echo "$(LOCK): unchanged"; \
	else mv $(LOCK).new $(LOCK); echo "$(LOCK): updated (make venv installs it)"; fi

$(UV):
	$(PY) -m venv $(UV_VENV)
	$(UV_VENV)/bin/pip install -q 'uv==$(UV_VERSION)'

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

## Build the Prometheus server from its Go module into ~/.cache/fleetplane (no-op when present;
## docs/observability.md): tests/observability scrape the hub and agents with it.
prometheus:
	bash deploy/local/build-prometheus.sh

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
test: venv k8s-binaries helm prometheus browser lint
	$(BIN)/pytest $(PYTEST_ARGS)

test-unit: venv
	$(BIN)/pytest tests/unit $(PYTEST_ARGS)

clean-venv:
	rm -rf $(VENV)

## Only the lab suites (real spoke control planes).
test-lab: venv k8s-binaries
	$(BIN)/pytest -m lab tests/lab $(PYTEST_ARGS)
