#!/usr/bin/env bash
# Builds the real Prometheus server from its Go module into a cache outside the repository,
# keyed by version (~/.cache/fleetplane/prometheus-vPROMETHEUS_VERSION/bin/prometheus), through
# build-go-tool.sh. A no-op when it is already there. The observability tests
# (tests/observability/test_prometheus.py) run it against a lab hub and agents and query its
# HTTP API; tests/observability/promrun.py finds it.
# Only the binary is built: without the `builtinassets` tag the web UI's assets are not
# embedded (the UI pages answer an error), but the HTTP API (/api/v1/query, /api/v1/targets)
# and scraping work the same. See docs/observability.md.
set -euo pipefail

PROMETHEUS_VERSION="${PROMETHEUS_VERSION:-0.316.0}"   # Go module version; must match tests/observability/promrun.py
here="$(cd "$(dirname "$0")" && pwd)"
# Prometheus's Makefile (promu) stamps the version through ldflags; `prometheus --version` reads it.
ld="-s -w -X github.com/prometheus/common/version.Version=${PROMETHEUS_VERSION} -X github.com/prometheus/common/version.Branch=module"
exec bash "$here/build-go-tool.sh" prometheus github.com/prometheus/prometheus "$PROMETHEUS_VERSION" \
  cmd/prometheus "$ld" 1.26 "cold: several minutes on 2 cores; docs/observability.md" --version
