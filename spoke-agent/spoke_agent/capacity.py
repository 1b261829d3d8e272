"""GPU capacity of a cluster from its Node and Pod objects (pure functions, no I/O).

Owns the mapping from cloud- and vendor-specific node labels to Fleetplane's GPU pools:
GPU model and memory (NVIDIA GPU feature discovery, GKE, Karpenter), capacity type
(Karpenter, EKS, GKE, AKS), node pool name and topology. A pool is the set of nodes with the
same pool name, GPU model and capacity type; it carries total, allocatable, allocated (GPU
requests of non-terminal pods bound to its nodes) and free GPUs per node. A node that is
cordoned, NotReady or tainted as going away still counts in total/allocatable but offers no
free GPUs.

Inputs are plain dicts (Node and Pod bodies as the API returns them); the backends keep
slimmed copies (see `slim_node` / `slim_pod`) so a big cluster does not cost the agent much memory.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from fleetplane_types import names
from fleetplane_types.gpus import canonical_model, model_memory
from fleetplane_types.names import CAPACITY_TYPE_LABEL, NODE_POOL_LABEL

# ------------------------------------------------------------------ label keys

GFD_PRODUCT = "nvidia.com/gpu.product"
GFD_MEMORY_MIB = "nvidia.com/gpu.memory"
GKE_ACCELERATOR = "cloud.google.com/gke-accelerator"
KARPENTER_GPU_NAME = "karpenter.k8s.aws/instance-gpu-name"
KARPENTER_GPU_MEMORY_MIB = "karpenter.k8s.aws/instance-gpu-memory"

FLEETPLANE_CAPACITY_TYPE = CAPACITY_TYPE_LABEL  # explicit override, any cloud
KARPENTER_CAPACITY_TYPE = "karpenter.sh/capacity-type"  # spot | on-demand | reserved
EKS_CAPACITY_TYPE = "eks.amazonaws.com/capacityType"  # ON_DEMAND | SPOT | CAPACITY_BLOCK
GKE_SPOT = "cloud.google.com/gke-spot"  # "true"
GKE_PREEMPTIBLE = "cloud.google.com/gke-preemptible"  # "true"
GKE_RESERVATION = "cloud.google.com/reservation-name"
AKS_PRIORITY = "kubernetes.azure.com/scalesetpriority"  # spot | regular

POOL_LABELS = (
    NODE_POOL_LABEL,
    "karpenter.sh/nodepool",
    "eks.amazonaws.com/nodegroup",
    "cloud.google.com/gke-nodepool",
    "kubernetes.azure.com/agentpool",
    "node.kubernetes.io/instance-type",
)
REGION_LABELS = ("topology.kubernetes.io/region", "failure-domain.beta.kubernetes.io/region")
ZONE_LABELS = ("topology.kubernetes.io/zone", "failure-domain.beta.kubernetes.io/zone")

# Taints that mean "this node is going away or cannot take pods": no free GPUs there.
UNAVAILABLE_TAINTS = frozenset(
    {
        "node.kubernetes.io/unschedulable",
        "node.kubernetes.io/not-ready",
        "node.kubernetes.io/unreachable",
        "node.kubernetes.io/out-of-service",
        "ToBeDeletedByClusterAutoscaler",
        "karpenter.sh/disrupted",
        "karpenter.sh/disruption",
    }
)

TERMINAL_POD_PHASES = frozenset({"Succeeded", "Failed"})

# Tokens that describe the board, not the model: dropped from GFD product strings.
_FORM_FACTOR = re.compile(r"^(SXM\d*|PCIE|PCIe|NVL|HBM\d*e?|\d+GB|MIG|SHARED|\d+G)$", re.IGNORECASE)


# ------------------------------------------------------------------ quantities


def parse_count(quantity: Any) -> int:
    """An extended-resource quantity as an integer count ("8", 8, "8000m" → 8)."""
    if quantity is None:
        return 0
    if isinstance(quantity, (int, float)):
        return int(quantity)
    text = str(quantity).strip()
    if text.endswith("m"):
        return int(text[:-1]) // 1000
    try:
        return int(float(text))
    except ValueError:
        return 0


# ------------------------------------------------------------------ label interpretation


def gpu_model(labels: Mapping[str, str], resource: str = "nvidia.com/gpu") -> str:
    """The GPU model family a node offers, in the one normalisation the hub and the placement
    engine use (fleetplane_types.gpus.canonical_model: upper-case, no size suffix)."""
    raw = _raw_gpu_model(labels, resource)
    return raw if raw == "unknown" else canonical_model(raw)


def _raw_gpu_model(labels: Mapping[str, str], resource: str) -> str:
    """The GPU model a node offers, normalised to the short name placement uses (H100, A100, L4).

    Sources, most specific first: GPU feature discovery's product label
    ("NVIDIA-H100-80GB-HBM3" → "H100"), GKE's accelerator label ("nvidia-tesla-a100" → "A100"),
    Karpenter's instance GPU name ("a10g" → "A10G"), a vendor product label for other
    resources (e.g. "amd.com/gpu.product-name"); otherwise "unknown".
    """
    product = labels.get(GFD_PRODUCT) if resource == "nvidia.com/gpu" else None
    if product:
        tokens = [t for t in product.split("-") if t]
        while tokens and tokens[0].upper() in {"NVIDIA", "TESLA"}:
            tokens = tokens[1:]
        kept = []
        for token in tokens:
            if _FORM_FACTOR.match(token):
                break
            kept.append(token)
        return "-".join(kept) if kept else product
    accel = labels.get(GKE_ACCELERATOR)
    if accel and resource == "nvidia.com/gpu":
        tokens = [t for t in accel.split("-") if t and t.lower() not in {"nvidia", "tesla"}]
        kept = [t for t in tokens if not _FORM_FACTOR.match(t)]
        return "-".join(kept).upper() if kept else accel
    name = labels.get(KARPENTER_GPU_NAME)
    if name:
        return name.upper()
    vendor = resource.split("/", 1)[0]
    for key in (f"{vendor}/gpu.product", f"{vendor}/gpu.product-name"):
        if labels.get(key):
            return labels[key]
    return "unknown"


def gpu_memory_gib(labels: Mapping[str, str]) -> int | None:
    """Memory per GPU in GiB, from GFD's or Karpenter's MiB labels; None if unknown."""
    for key in (GFD_MEMORY_MIB, KARPENTER_GPU_MEMORY_MIB):
        raw = labels.get(key)
        if raw:
            try:
                return round(int(raw) / 1024)
            except ValueError:
                continue
    accel = labels.get(GKE_ACCELERATOR, "")
    match = re.search(r"(\d+)gb", accel.lower())
    return int(match.group(1)) if match else None


def capacity_type(labels: Mapping[str, str]) -> str:
    """spot, on-demand or reserved, from whichever provider's labels the node carries."""
    explicit = labels.get(FLEETPLANE_CAPACITY_TYPE) or labels.get(KARPENTER_CAPACITY_TYPE)
    if explicit:
        value = explicit.lower().replace("_", "-")
        if value in {"spot", "on-demand", "reserved"}:
            return value
    eks = labels.get(EKS_CAPACITY_TYPE)
    if eks:
        return {"SPOT": "spot", "ON_DEMAND": "on-demand", "CAPACITY_BLOCK": "reserved"}.get(eks.upper(), "on-demand")
    if labels.get(GKE_SPOT) == "true" or labels.get(GKE_PREEMPTIBLE) == "true":
        return "spot"
    if labels.get(GKE_RESERVATION):
        return "reserved"
    if labels.get(AKS_PRIORITY, "").lower() == "spot":
        return "spot"
    return "on-demand"


def pool_name(labels: Mapping[str, str]) -> str | None:
    for key in POOL_LABELS:
        if labels.get(key):
            return labels[key]
    return None


def _first(labels: Mapping[str, str], keys: Iterable[str]) -> str | None:
    for key in keys:
        if labels.get(key):
            return labels[key]
    return None


def node_ready(node: Mapping[str, Any]) -> bool:
    for cond in (node.get("status") or {}).get("conditions") or []:
        if cond.get("type") == "Ready":
            return cond.get("status") == "True"
    return False


def node_schedulable(node: Mapping[str, Any]) -> bool:
    spec = node.get("spec") or {}
    if spec.get("unschedulable"):
        return False
    return not any(t.get("key") in UNAVAILABLE_TAINTS for t in spec.get("taints") or [])


def pod_gpu_request(pod: Mapping[str, Any], resource: str) -> int:
    """GPUs a pod holds on its node: max(sum over containers, largest init container) + overhead.

    Extended resources cannot be overcommitted, so a limit without a request counts as the
    request (the API server defaults it that way too).
    """
    spec = pod.get("spec") or {}

    def one(container: Mapping[str, Any]) -> int:
        res = container.get("resources") or {}
        req = (res.get("requests") or {}).get(resource)
        if req is None:
            req = (res.get("limits") or {}).get(resource)
        return parse_count(req)

    main = sum(one(c) for c in spec.get("containers") or [])
    init = max((one(c) for c in spec.get("initContainers") or []), default=0)
    overhead = parse_count((spec.get("overhead") or {}).get(resource))
    return max(main, init) + overhead


def pod_holds_resources(pod: Mapping[str, Any]) -> bool:
    """Bound and not terminal: the scheduler counts its requests against the node."""
    return (
        bool((pod.get("spec") or {}).get("nodeName"))
        and (pod.get("status") or {}).get("phase") not in TERMINAL_POD_PHASES
    )


# ------------------------------------------------------------------ slim copies


def slim_node(node: Mapping[str, Any]) -> dict[str, Any]:
    """The parts of a Node that capacity and status need (keeps the agent's cache small)."""
    meta = node.get("metadata") or {}
    spec = node.get("spec") or {}
    status = node.get("status") or {}
    return {
        "metadata": {
            "name": meta.get("name"),
            "labels": dict(meta.get("labels") or {}),
            "annotations": {k: v for k, v in (meta.get("annotations") or {}).items() if k == PRICE_ANNOTATION},
        },
        "spec": {"unschedulable": bool(spec.get("unschedulable")), "taints": list(spec.get("taints") or [])},
        "status": {
            "capacity": dict(status.get("capacity") or {}),
            "allocatable": dict(status.get("allocatable") or {}),
            "conditions": [
                {"type": c.get("type"), "status": c.get("status")}
                for c in status.get("conditions") or []
                if c.get("type") == "Ready"
            ],
            "nodeInfo": {"kubeletVersion": (status.get("nodeInfo") or {}).get("kubeletVersion")},
        },
    }


def slim_pod(pod: Mapping[str, Any], resources: Iterable[str]) -> dict[str, Any] | None:
    """GPU requests, node and phase of a pod, or None if it requests no GPUs."""
    requests = {r: n for r in resources if (n := pod_gpu_request(pod, r)) > 0}
    if not requests:
        return None
    containers = [{"resources": {"requests": {r: str(n) for r, n in requests.items()}}}]
    return {
        "spec": {"nodeName": (pod.get("spec") or {}).get("nodeName"), "containers": containers},
        "status": {"phase": (pod.get("status") or {}).get("phase")},
    }


# ------------------------------------------------------------------ the computation


@dataclass
class NodeGPUs:
    name: str
    resource: str
    model: str
    memory_gib: int | None
    capacity_type: str
    pool: str | None
    region: str | None
    zone: str | None
    taints: list[dict[str, Any]]
    capacity: int
    allocatable: int
    allocated: int
    ready: bool
    schedulable: bool
    price: float | None = None

    @property
    def free(self) -> int:
        if not (self.ready and self.schedulable):
            return 0
        return max(self.allocatable - self.allocated, 0)


@dataclass
class Pool:
    name: str | None
    model: str
    capacity_type: str
    memory_gib: int | None = None
    zone: str | None = None
    nodes: list[NodeGPUs] = field(default_factory=list)

    @property
    def total(self) -> int:
        return sum(n.capacity for n in self.nodes)

    @property
    def allocatable(self) -> int:
        return sum(n.allocatable for n in self.nodes)

    @property
    def allocated(self) -> int:
        return sum(min(n.allocated, n.allocatable) for n in self.nodes)

    @property
    def free(self) -> int:
        return sum(n.free for n in self.nodes)

    @property
    def gpus_per_node(self) -> int:
        return max((n.allocatable for n in self.nodes), default=0)

    @property
    def taints(self) -> list[dict[str, Any]]:
        """Taints every node of the pool carries (placement can match tolerations against them)."""
        if not self.nodes:
            return []
        keys = [{(t.get("key"), t.get("value"), t.get("effect")) for t in n.taints} for n in self.nodes]
        common = set.intersection(*keys)
        return [{"key": k, "value": v, "effect": e} for k, v, e in sorted(common, key=str)]

    @property
    def price_per_gpu_hour(self) -> float | None:
        """The most common price its nodes advertise (annotation fleetplane.io/price-per-gpu-hour)."""
        prices = Counter(n.price for n in self.nodes if n.price is not None)
        if not prices:
            return None
        return sorted(prices.items(), key=lambda kv: (-kv[1], kv[0]))[0][0]

    def to_api(self, report_nodes: bool = True) -> dict[str, Any]:
        """The pool as a GPUPool (fleetplane_types.v1alpha1) dict, camelCase."""
        out: dict[str, Any] = {
            "model": self.model,
            "capacityType": self.capacity_type,
            "gpusPerNode": self.gpus_per_node,
            "total": self.total,
            "allocatable": self.allocatable,
            "allocated": self.allocated,
            "free": self.free,
        }
        if self.name:
            out["name"] = self.name
        if self.memory_gib is not None:
            out["memoryGiB"] = self.memory_gib
        if self.zone:
            out["zone"] = self.zone
        if (price := self.price_per_gpu_hour) is not None:
            out["pricePerGpuHour"] = price
        if taints := self.taints:
            out["taints"] = [{k: v for k, v in t.items() if v is not None} for t in taints]
        if report_nodes:
            out["nodes"] = [
                {
                    "name": n.name,
                    "gpus": n.allocatable,
                    "free": n.free,
                    "ready": n.ready,
                    "schedulable": n.schedulable,
                }
                for n in sorted(self.nodes, key=lambda n: n.name)
            ]
        return out


@dataclass
class Capacity:
    pools: list[Pool]
    region: str | None
    zone: str | None

    @property
    def total_gpus(self) -> int:
        return sum(p.total for p in self.pools)

    @property
    def free_gpus(self) -> int:
        return sum(p.free for p in self.pools)

    def to_status(self, report_nodes: bool = True) -> dict[str, Any]:
        """The capacity part of a ClusterStatus dict (camelCase)."""
        out: dict[str, Any] = {
            "gpuPools": [p.to_api(report_nodes) for p in self.pools],
            "totalGpus": self.total_gpus,
            "freeGpus": self.free_gpus,
        }
        if self.region:
            out["region"] = self.region
        if self.zone:
            out["zone"] = self.zone
        return out


PRICE_ANNOTATION = names.PRICE_ANNOTATION


def _price(meta: Mapping[str, Any]) -> float | None:
    """USD per GPU-hour from the node's price annotation (set by the lab, Karpenter users or an
    admission hook); absent or unparsable → unknown, and placement falls back to Cluster prices."""
    raw = (meta.get("annotations") or {}).get(PRICE_ANNOTATION)
    try:
        value = float(raw) if raw is not None else None
    except ValueError:
        return None
    return value if value is not None and value >= 0 else None


def _most_common(values: Iterable[str | None]) -> str | None:
    counts = Counter(v for v in values if v)
    if not counts:
        return None
    # Ties break by name so the report is deterministic.
    return sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[0][0]


def compute_capacity(
    nodes: Iterable[Mapping[str, Any]],
    pods: Iterable[Mapping[str, Any]],
    resources: Iterable[str] = ("nvidia.com/gpu",),
    held: Mapping[tuple[str, str], int] | None = None,
) -> Capacity:
    """Group GPU nodes into pools and count what is allocated and free.

    `nodes` and `pods` are Node and Pod bodies (full or slimmed). Pods not bound to a node, or
    in a terminal phase, hold nothing. Pods on nodes the agent has not seen (yet) are ignored.
    `held` adds GPUs per (node, resource) that count as allocated without a pod: those of copies
    the agent stopped while fenced and is restoring (spoke_agent.fencing.Hold).
    """
    resources = list(resources)
    node_list = list(nodes)
    allocated: dict[tuple[str, str], int] = dict(held or {})
    for pod in pods:
        if not pod_holds_resources(pod):
            continue
        node_name = pod["spec"]["nodeName"]
        for resource in resources:
            n = pod_gpu_request(pod, resource)
            if n:
                allocated[(node_name, resource)] = allocated.get((node_name, resource), 0) + n

    pools: dict[tuple[str | None, str, str, str], Pool] = {}
    regions: list[str | None] = []
    zones: list[str | None] = []
    for node in node_list:
        meta = node.get("metadata") or {}
        labels: Mapping[str, str] = meta.get("labels") or {}
        status = node.get("status") or {}
        regions.append(_first(labels, REGION_LABELS))
        zones.append(_first(labels, ZONE_LABELS))
        for resource in resources:
            cap = parse_count((status.get("capacity") or {}).get(resource))
            alloc = parse_count((status.get("allocatable") or {}).get(resource))
            if cap == 0 and alloc == 0:
                continue
            gpus = NodeGPUs(
                name=meta.get("name", ""),
                resource=resource,
                model=gpu_model(labels, resource),
                memory_gib=gpu_memory_gib(labels) or model_memory(_raw_gpu_model(labels, resource)),
                capacity_type=capacity_type(labels),
                pool=pool_name(labels),
                region=_first(labels, REGION_LABELS),
                zone=_first(labels, ZONE_LABELS),
                taints=list((node.get("spec") or {}).get("taints") or []),
                capacity=max(cap, alloc),
                allocatable=alloc,
                allocated=allocated.get((meta.get("name", ""), resource), 0),
                ready=node_ready(node),
                schedulable=node_schedulable(node),
                price=_price(meta),
            )
            key = (gpus.pool, resource, gpus.model, gpus.capacity_type)
            pool = pools.setdefault(key, Pool(name=gpus.pool, model=gpus.model, capacity_type=gpus.capacity_type))
            pool.nodes.append(gpus)

    for pool in pools.values():
        memories = {n.memory_gib for n in pool.nodes if n.memory_gib is not None}
        pool.memory_gib = min(memories) if memories else None  # a promise every node keeps
        pool_zones = {n.zone for n in pool.nodes}
        pool.zone = pool_zones.pop() if len(pool_zones) == 1 else None
    ordered = sorted(pools.values(), key=lambda p: (p.model, p.capacity_type, p.name or ""))
    return Capacity(pools=ordered, region=_most_common(regions), zone=_most_common(zones))
