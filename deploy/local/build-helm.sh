#!/usr/bin/env bash
# Builds the real `helm` (v3) from its Go module into a cache outside the repository, keyed by
# version (~/.cache/fleetplane/helm-vHELM_VERSION/bin/helm), through build-go-tool.sh. A no-op
# when it is already there. The chart tests (tests/lab/test_helm_agent_chart.py) lint, render and
# install the agent chart with it; fleetplane_lab.fixtures.helm_binary() finds it. See
# docs/install.md.
set -euo pipefail

HELM_VERSION="${HELM_VERSION:-3.22.0}"   # must match fleetplane_lab/fixtures.py HELM_VERSION
here="$(cd "$(dirname "$0")" && pwd)"
# helm's own Makefile stamps the version through ldflags; `helm version` reads it from there.
ld="-s -w -X helm.sh/helm/v3/internal/version.version=v${HELM_VERSION} -X helm.sh/helm/v3/internal/version.gitTreeState=clean"
exec bash "$here/build-go-tool.sh" helm helm.sh/helm/v3 "$HELM_VERSION" cmd/helm "$ld" 1.24 \
  "cold: a few minutes on 2 cores; docs/install.md" version --short
