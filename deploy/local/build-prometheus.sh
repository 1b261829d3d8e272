#!/usr/bin/env bash
# Builds the real Prometheus server from its Go module into a cache outside the repository,
# keyed by version, like build-helm.sh does for helm. A no-op when it is already there.
# The observability tests (tests/observability/test_prometheus.py) run it against a lab hub and
# agents and query its HTTP API; tests/observability/promrun.py finds it.
# Only the binary is built: without the `builtinassets` tag the web UI's assets are not
# embedded (the UI pages answer an error), but the HTTP API (/api/v1/query, /api/v1/targets)
# and scraping work the same. See docs/observability.md.
set -euo pipefail

PROMETHEUS_VERSION="${PROMETHEUS_VERSION:-0.316.0}"   # Go module version; must match tests/observability/promrun.py
CACHE="${FLEETPLANE_CACHE:-$HOME/.cache/fleetplane}"
BIN="$CACHE/prometheus-v${PROMETHEUS_VERSION}/bin"
# As in build-k8s.sh: the module proxy reachable from these machines answers 404 to checksum
# database lookups for many releases, so verification is turned off for this build only.
export GOSUMDB="${GOSUMDB:-off}"

if [ -x "$BIN/prometheus" ]; then
  echo "prometheus present in $BIN"
  exit 0
fi
command -v go >/dev/null || { echo "build-prometheus: 'go' not found; install Go >= 1.26 (prometheus v${PROMETHEUS_VERSION} needs it)" >&2; exit 1; }
echo "building prometheus v${PROMETHEUS_VERSION} into $BIN (cold: several minutes on 2 cores; docs/observability.md)"
mkdir -p "$BIN"
# Built into $out and renamed into $BIN only when complete, so an interrupted build never
# leaves a truncated binary that the presence check above would accept.
out="$CACHE/build-work/prometheus-out"
rm -rf "$out"; mkdir -p "$out"
start=$(date +%s)
# Prometheus's Makefile (promu) stamps the version through ldflags; `prometheus --version` reads it.
ld="-s -w -X github.com/prometheus/common/version.Version=${PROMETHEUS_VERSION} -X github.com/prometheus/common/version.Branch=module"
GOBIN="$out" go install -ldflags "$ld" "github.com/prometheus/prometheus/cmd/prometheus@v${PROMETHEUS_VERSION}"
mv "$out/prometheus" "$BIN/prometheus"
echo "built in $(( $(date +%s) - start ))s; $BIN:"
ls -la "$BIN"
"$BIN/prometheus" --version
