#!/usr/bin/env bash
# The lab on a Docker host: a kind hub cluster and N kind spoke clusters, each spoke with kwok
# (in-cluster, pinned release) and the same fake GPU nodes as the local backend, rendered from
# fleetplane_lab/profiles by `python -m fleetplane_lab.profiles`.
#
#   deploy/kind/lab-kind.sh up   --spokes N [--dir RUN_DIR] [--prefix fleetplane] [--no-hub]
#   deploy/kind/lab-kind.sh up   --spoke spoke-1:us-east-1:h100-reserved,l4-ondemand [--spoke ...]
#   deploy/kind/lab-kind.sh down [--dir RUN_DIR] [--prefix fleetplane]
#
# Writes RUN_DIR/kubeconfigs/{hub-cluster,spoke-1..N}.kubeconfig. `fleetplane lab up --backend kind`
# calls this script. Needs: docker (a running engine), kind, kubectl, python with this repo.
# Not runnable on the Fleetplane CI machines (no Docker engine); kept correct by review.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
KWOK_VERSION="${KWOK_VERSION:-v0.7.0}"                 # same as deploy/local/build-k8s.sh
# Kubernetes 1.32 to match kubectl and the local backend. Pin the digest from the release
# notes of your kind version for reproducibility (kind warns about unpinned images).
KIND_NODE_IMAGE="${KIND_NODE_IMAGE:-kindest/node:v1.32.2}"
PYTHON="${PYTHON:-$repo/.venv/bin/python}"
[ -x "$PYTHON" ] || PYTHON=python3

cmd="${1:-}"; shift || true
spokes=2; dir="$repo/.fleetplane/lab"; prefix=fleetplane; hub=1; explicit=()
while [ $# -gt 0 ]; do
  case "$1" in
    --spokes) spokes="$2"; shift 2 ;;
    --spoke) explicit+=("$2"); shift 2 ;;  # name:region:profile,profile
    --dir) dir="$2"; shift 2 ;;
    --prefix) prefix="$2"; shift 2 ;;
    --no-hub) hub=0; shift ;;
    *) echo "unknown argument: $1" >&2; exit 2 ;;
  esac
done
kcfgs="$dir/kubeconfigs"

# Same default mix and regions as fleetplane_lab/lab.py default_spokes().
mixes=("h100-reserved l4-ondemand" "a100-spot l4-ondemand" "h100-reserved a100-spot")
regions=(us-east-1 us-west-2 eu-west-1 eu-central-1 ap-northeast-1 ap-southeast-2)

need() { command -v "$1" >/dev/null || { echo "lab-kind: '$1' not found; $2" >&2; exit 1; }; }

create_cluster() {  # name kubeconfig
  if kind get clusters 2>/dev/null | grep -qx "$1"; then
    echo "kind cluster $1 exists; reusing it"
    kind get kubeconfig --name "$1" >"$2"
  else
    kind create cluster --name "$1" --image "$KIND_NODE_IMAGE" --config "$here/cluster.yaml" \
      --kubeconfig "$2" --wait 180s
  fi
  chmod 600 "$2"
}

add_gpu_nodes() {  # spoke-name kubeconfig region profiles...
  local name="$1" kc="$2" region="$3"; shift 3
  local k=(kubectl --kubeconfig "$kc")
  "${k[@]}" apply -f "https://github.com/kubernetes-sigs/kwok/releases/download/${KWOK_VERSION}/kwok.yaml"
  "${k[@]}" apply -f "https://github.com/kubernetes-sigs/kwok/releases/download/${KWOK_VERSION}/stage-fast.yaml"
  # The lab's pod stages (same names, so they replace the fast ones): pod-complete honours
  # the pod-complete.stage.kwok.x-k8s.io/delay annotation, as in the local backend.
  "${k[@]}" apply -f "$repo/fleetplane_lab/kwok-stages.yaml"
  "${k[@]}" -n kube-system rollout status deployment/kwok-controller --timeout=180s
  local nodes; nodes="$(mktemp)"
  (cd "$repo" && "$PYTHON" -m fleetplane_lab.profiles "$name" "$@" --region "$region") >"$nodes"
  "${k[@]}" create -f "$nodes" 2>&1 | grep -v AlreadyExists || true
  # Status on create is kept by the apiserver, but patch it explicitly as well: capacity
  # must never be missing, and `kubectl create` of an existing node leaves the old status.
  "$PYTHON" - "$nodes" <<'PY' | while read -r node patch; do "${k[@]}" patch node "$node" --subresource=status --type=merge -p "$patch" >/dev/null; done
import json, sys, yaml
for n in yaml.safe_load(open(sys.argv[1]))["items"]:
    print(n["metadata"]["name"], json.dumps({"status": n["status"]}))
PY
  "${k[@]}" wait --for=condition=Ready node -l type=kwok --timeout=120s
  rm -f "$nodes"
}

case "$cmd" in
  up)
    need docker "install Docker (kind runs clusters in containers)"
    docker info >/dev/null 2>&1 || { echo "lab-kind: no running Docker engine; use the local backend (fleetplane lab up)" >&2; exit 1; }
    need kind "see https://kind.sigs.k8s.io/docs/user/quick-start/#installation"
    need kubectl "install kubectl 1.32"
    mkdir -p "$kcfgs"
    if [ "$hub" = 1 ]; then
      create_cluster "$prefix-hub" "$kcfgs/hub-cluster.kubeconfig"
      # The hub itself is deployed by its Helm chart when this checkout has one.
      if [ -f "$repo/deploy/helm/hub/Chart.yaml" ] && command -v helm >/dev/null; then
        helm upgrade --install fleetplane-hub "$repo/deploy/helm/hub" --kubeconfig "$kcfgs/hub-cluster.kubeconfig" \
          --namespace fleetplane-system --create-namespace --wait
      else
        echo "hub cluster $prefix-hub created; no deploy/helm/hub chart (or helm) here, so run the hub locally: fleetplane up"
      fi
    fi
    if [ ${#explicit[@]} -eq 0 ]; then
      for i in $(seq 1 "$spokes"); do
        explicit+=("spoke-$i:${regions[$(( (i - 1) % ${#regions[@]} ))]}:${mixes[$(( (i - 1) % ${#mixes[@]} ))]// /,}")
      done
    fi
    for s in "${explicit[@]}"; do
      IFS=: read -r name region profiles <<<"$s"
      create_cluster "$prefix-$name" "$kcfgs/$name.kubeconfig"
      # shellcheck disable=SC2086  # split the comma list into one argument per profile
      add_gpu_nodes "$name" "$kcfgs/$name.kubeconfig" "$region" ${profiles//,/ }
      echo "kubeconfig $name: $kcfgs/$name.kubeconfig"
    done
    ;;
  down)
    need kind "nothing to delete without kind"
    # Only clusters named with our prefix: never touch other kind clusters on the host.
    for c in $(kind get clusters 2>/dev/null | grep -E "^${prefix}-" || true); do
      kind delete cluster --name "$c"
    done
    rm -f "$kcfgs"/hub-cluster.kubeconfig "$kcfgs"/spoke-*.kubeconfig
    ;;
  *)
    sed -n '2,13p' "$0" >&2; exit 2 ;;
esac
