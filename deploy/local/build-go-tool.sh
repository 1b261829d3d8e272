#!/usr/bin/env bash
# Builds one command of a Go module with `go install` into a cache outside the repository, keyed
# by version: $CACHE/NAME-vVERSION/bin/NAME, CACHE="${FLEETPLANE_CACHE:-~/.cache/fleetplane}".
# A no-op when the binary is already there. Shared by build-helm.sh and build-prometheus.sh.
#
#   build-go-tool.sh NAME MODULE VERSION PACKAGE LDFLAGS GO_MIN COLD_NOTE [VERSION_ARG...]
#
# NAME: the binary (and cache directory) name; MODULE@vVERSION: the Go module to install
# from; PACKAGE: the command's path inside the module (cmd/helm); LDFLAGS: passed to go install
# (version stamps); GO_MIN: the Go version the module needs, for the error when go is missing;
# COLD_NOTE: how long a cold build takes and where it is documented; VERSION_ARG...: what to
# run the built binary with to print its version (default: --version).
set -euo pipefail

[ $# -ge 7 ] || { echo "usage: $0 NAME MODULE VERSION PACKAGE LDFLAGS GO_MIN COLD_NOTE [VERSION_ARG...]" >&2; exit 2; }
name="$1" module="$2" version="$3" package="$4" ldflags="$5" go_min="$6" cold_note="$7"
shift 7
[ $# -gt 0 ] || set -- --version

CACHE="${FLEETPLANE_CACHE:-$HOME/.cache/fleetplane}"
BIN="$CACHE/${name}-v${version}/bin"

if [ -x "$BIN/$name" ]; then
  echo "$name present in $BIN"
  exit 0
fi
command -v go >/dev/null || { echo "build-$name: 'go' not found; install Go >= $go_min ($name v${version} needs it)" >&2; exit 1; }
echo "building $name v${version} into $BIN ($cold_note)"
mkdir -p "$BIN"
# Built into $out and renamed into $BIN only when complete, so an interrupted build never
# leaves a truncated binary that the presence check above would accept.
out="$CACHE/build-work/${name}-out"
rm -rf "$out"; mkdir -p "$out"
start=$(date +%s)
GOBIN="$out" go install -ldflags "$ldflags" "${module}/${package}@v${version}"
mv "$out/$name" "$BIN/$name"
echo "built in $(( $(date +%s) - start ))s; $BIN:"
ls -la "$BIN"
"$BIN/$name" "$@"
