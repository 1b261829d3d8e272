#!/usr/bin/env bash
# Builds the real Kubernetes control-plane binaries (kube-apiserver, kube-controller-manager,
# kube-scheduler), etcd and kwok from Go modules into a cache outside the repository, keyed by
# version. A no-op when every binary is already there. See docs/lab.md for why and for costs.
set -euo pipefail

K8S_VERSION="${K8S_VERSION:-1.32.4}"     # matches the installed kubectl 1.32
ETCD_VERSION="${ETCD_VERSION:-3.5.21}"   # >= 3.5.13 keeps RequestWatchProgress on
KWOK_VERSION="${KWOK_VERSION:-0.7.0}"
CACHE="${FLEETPLANE_CACHE:-$HOME/.cache/fleetplane}"
BIN="$CACHE/k8s-v${K8S_VERSION}-etcd-v${ETCD_VERSION}-kwok-v${KWOK_VERSION}/bin"
# The module proxy reachable from these machines serves older releases but its checksum-database
# lookups for them answer 404, so verification is turned off for this build only (docs/lab.md).
export GOSUMDB="${GOSUMDB:-off}"
here="$(cd "$(dirname "$0")" && pwd)"

need=()
for b in kube-apiserver kube-controller-manager kube-scheduler etcd kwok; do
  [ -x "$BIN/$b" ] || need+=("$b")
done
if [ ${#need[@]} -eq 0 ]; then
  echo "k8s binaries present in $BIN"
  exit 0
fi
command -v go >/dev/null || { echo "build-k8s: 'go' not found; install Go >= 1.24 (kwok ${KWOK_VERSION} needs it)" >&2; exit 1; }
echo "building ${need[*]} into $BIN (cold: ~6 min and ~4.5 GB of Go caches on 2 cores; docs/lab.md)"
mkdir -p "$BIN"
work="$CACHE/build-work"
mkdir -p "$work"
# Binaries are built into $out and renamed into $BIN only when complete, so an interrupted
# build never leaves a truncated binary that the presence check above would accept.
out="$work/out"
rm -rf "$out"; mkdir -p "$out"
start=$(date +%s)

build_kube() {
  local d="$work/kube-$K8S_VERSION"
  rm -rf "$d"; mkdir -p "$d"
  cp "$here/kube/main.go.txt" "$d/tools.go"
  (
    cd "$d"
    go mod init fleetplane.local/kbuild >/dev/null 2>&1
    go mod edit -require="k8s.io/kubernetes@v${K8S_VERSION}"
    for m in $(cat "$here/kube/staging-modules.txt"); do
      go mod edit -replace="k8s.io/$m=k8s.io/$m@v0.${K8S_VERSION#1.}"
    done
    GOFLAGS=-mod=mod go mod tidy
    minor="${K8S_VERSION#1.}"; minor="${minor%%.*}"
    ld="-s -w -X k8s.io/component-base/version.gitVersion=v${K8S_VERSION} -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=${minor} -X k8s.io/component-base/version.gitTreeState=clean"
    GOFLAGS=-mod=mod go build -o "$out/" -ldflags "$ld" \
      k8s.io/kubernetes/cmd/kube-apiserver \
      k8s.io/kubernetes/cmd/kube-controller-manager \
      k8s.io/kubernetes/cmd/kube-scheduler
  )
  mv "$out/kube-apiserver" "$out/kube-controller-manager" "$out/kube-scheduler" "$BIN/"
}

build_etcd() {
  local d="$work/etcd-$ETCD_VERSION"
  rm -rf "$d"; mkdir -p "$d"
  (
    cd "$d"
    go mod init fleetplane.local/etcdbuild >/dev/null 2>&1
    go mod edit -require="go.etcd.io/etcd/server/v3@v${ETCD_VERSION}"
    cp "$here/etcd/main.go.txt" main.go
    GOFLAGS=-mod=mod go mod tidy
    GOFLAGS=-mod=mod go build -ldflags "-s -w" -o "$out/etcd" .
  )
  mv "$out/etcd" "$BIN/etcd"
}

build_kwok() {
  GOBIN="$out" go install -ldflags "-s -w" "sigs.k8s.io/kwok/cmd/kwok@v${KWOK_VERSION}"
  mv "$out/kwok" "$BIN/kwok"
}

for b in "${need[@]}"; do
  case "$b" in
    kube-*) [ -x "$BIN/kube-apiserver" ] && [ -x "$BIN/kube-controller-manager" ] && [ -x "$BIN/kube-scheduler" ] || build_kube ;;
    etcd) build_etcd ;;
    kwok) build_kwok ;;
  esac
done
echo "built in $(( $(date +%s) - start ))s; $BIN:"
ls -la "$BIN"
