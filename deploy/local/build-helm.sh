#!/usr/bin/env bash
# Builds the real `helm` (v3) from its Go module into a cache outside the repository, keyed by
# version, like build-k8s.sh does for the Kubernetes binaries. A no-op when it is already there.
# The chart tests (tests/lab/test_helm_agent_chart.py) lint, render and install the agent chart
# with it; fleetplane_lab.fixtures.helm_binary() finds it. See docs/install.md.
set -euo pipefail

HELM_VERSION="${HELM_VERSION:-3.22.0}"   # must match fleetplane_lab/fixtures.py HELM_VERSION
CACHE="${FLEETPLANE_CACHE:-$HOME/.cache/fleetplane}"
BIN="$CACHE/helm-v${HELM_VERSION}/bin"
# As in build-k8s.sh: the module proxy reachable from these machines answers 404 to checksum
# database lookups for many releases, so verification is turned off for this build only.
export GOSUMDB="${GOSUMDB:-off}"

if [ -x "$BIN/helm" ]; then
  echo "helm present in $BIN"
  exit 0
fi
command -v go >/dev/null || { echo "build-helm: 'go' not found; install Go >= 1.24 (helm v${HELM_VERSION} needs it)" >&2; exit 1; }
echo "building helm v${HELM_VERSION} into $BIN (cold: a few minutes on 2 cores; docs/install.md)"
mkdir -p "$BIN"
# Built into $out and renamed into $BIN only when complete, so an interrupted build never
# leaves a truncated binary that the presence check above would accept.
out="$CACHE/build-work/helm-out"
rm -rf "$out"; mkdir -p "$out"
start=$(date +%s)
# helm's own Makefile stamps the version through ldflags; `helm version` reads it from there.
ld="-s -w -X helm.sh/helm/v3/internal/version.version=v${HELM_VERSION} -X helm.sh/helm/v3/internal/version.gitTreeState=clean"
GOBIN="$out" go install -ldflags "$ld" "helm.sh/helm/v3/cmd/helm@v${HELM_VERSION}"
mv "$out/helm" "$BIN/helm"
echo "built in $(( $(date +%s) - start ))s; $BIN:"
ls -la "$BIN"
"$BIN/helm" version --short
