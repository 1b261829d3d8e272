"""The fleetplane.io/v1alpha1 API types.

This module owns the wire schema of every Fleetplane kind. The same pydantic models validate
requests on the hub, generate the OpenAPI documents kubectl uses for `explain` and strict
validation, and are shared with the spoke agent and the placement what-if CLI. Keep it free
of heavy imports: pydantic only.

Field names are camelCase on the wire (Kubernetes convention); Python attributes are
snake_case with aliases.
"""

from __future__ import annotations

import re
from enum import Enum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic.alias_generators import to_camel

from fleetplane_types.names import API_VERSION, GROUP, VERSION

__all__ = ["API_VERSION", "GROUP", "VERSION"]  # re-exported: the group/version these types are

DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")

# Bounds of numeric fields. Generous for any real fleet; they exist so that no number is so large
# that it loses precision on a round trip through JSON and Postgres, or overflows arithmetic.
INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1
MAX_GPU_MEMORY_GIB = 16384  # 16 TiB per GPU (an H200 has 141 GiB)
MAX_GPUS_PER_NODE = 1024
MAX_GPUS = 10_000_000  # GPUs in one pool or cluster
MAX_CLUSTERS = 100_000
MAX_PRICE = 1_000_000.0  # USD per GPU-hour or per GB
MAX_DATASET_GIB = 1e9  # 1 EiB
MAX_BANDWIDTH_GBPS = 1e6
Price = Annotated[float, Field(ge=0, le=MAX_PRICE)]


class _Model(BaseModel):
    """Base for every schema object: camelCase aliases, unknown fields rejected.

    Unknown fields are rejected here; the hub decides per request (fieldValidation=Strict,
    Warn or Ignore) whether that rejection becomes an error, a warning or is dropped.
    """

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        use_enum_values=True,
    )


# ---------------------------------------------------------------- shared pieces


class OwnerReference(_Model):
    """Points at the object that owns this one; deleting the owner cascades (Background)."""

    api_version: str
    kind: str
    name: str
    uid: str
    controller: bool | None = None
    block_owner_deletion: bool | None = None


class ManagedFieldsEntry(_Model):
    """Which manager owns which fields (server-side apply)."""

    manager: str | None = None
    operation: str | None = None
    api_version: str | None = None
    time: str | None = None
    fields_type: str | None = None
    fields_v1: dict[str, Any] | None = Field(default=None, alias="fieldsV1")
    subresource: str | None = None


class ObjectMeta(_Model):
    """Standard Kubernetes object metadata. Server-set fields are ignored on writes."""

    name: str | None = Field(default=None, description="Name, unique per kind and namespace; DNS-1123 subdomain.")
    generate_name: str | None = None
    namespace: str | None = None
    uid: str | None = None
    resource_version: str | None = None
    generation: int | None = None
    creation_timestamp: str | None = None
    deletion_timestamp: str | None = None
    deletion_grace_period_seconds: int | None = None
    labels: dict[str, str] | None = None
    annotations: dict[str, str] | None = None
    finalizers: list[str] | None = None
    owner_references: list[OwnerReference] | None = None
    managed_fields: list[ManagedFieldsEntry] | None = None
    self_link: str | None = None


class LabelSelectorRequirement(_Model):
    key: str
    operator: Literal["In", "NotIn", "Exists", "DoesNotExist"]
    values: list[str] | None = None


class LabelSelector(_Model):
    """Selects clusters by their labels (same semantics as a Kubernetes LabelSelector)."""

    match_labels: dict[str, str] | None = None
    match_expressions: list[LabelSelectorRequirement] | None = None


class Toleration(_Model):
    """Lets a workload land on a cluster carrying a matching taint."""

    key: str | None = None
    operator: Literal["Equal", "Exists"] = "Equal"
    value: str | None = None
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] | None = None


class Taint(_Model):
    key: str
    value: str | None = None
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"]


class Condition(_Model):
    type: str
    status: Literal["True", "False", "Unknown"]
    reason: str | None = None
    message: str | None = None
    last_transition_time: str | None = None
    observed_generation: int | None = None


class CapacityType(str, Enum):
    spot = "spot"
    on_demand = "on-demand"
    reserved = "reserved"


CAPACITY_TYPES = [c.value for c in CapacityType]


# ---------------------------------------------------------------- Workload


class GPURequest(_Model):
    """GPUs each replica needs. All of a replica's GPUs must sit on ONE node."""

    count: int = Field(default=0, ge=0, le=64, description="GPUs per replica, all on one node.")
    models: list[str] | None = Field(
        default=None, description="Allowed GPU models (e.g. H100, A100, L4); empty means any."
    )
    preferred_models: list[str] | None = Field(default=None, description="Models to prefer among the allowed ones.")
    min_memory_gi_b: int | None = Field(
        default=None, alias="minMemoryGiB", ge=0, le=MAX_GPU_MEMORY_GIB, description="Minimum memory per GPU, GiB."
    )


class CapacityTypePolicy(_Model):
    """Which capacity types the workload may run on and which it prefers.

    Default: on-demand and reserved only (spot interruptions are opt-in, as in SkyPilot).
    """

    allowed: list[CapacityType] = Field(
        default_factory=lambda: [CapacityType.on_demand, CapacityType.reserved],
        description="Capacity types the workload may run on: spot, on-demand, reserved.",
    )
    preferred: list[CapacityType] | None = Field(default=None, description="Capacity types to prefer.")


class DatasetRef(_Model):
    name: str
    namespace: str | None = Field(default=None, description="Defaults to the workload's namespace.")


class WorkloadSpec(_Model):
    """What to run and what it needs. The hub places it on one or more member clusters."""

    manifests: list[dict[str, Any]] = Field(
        min_length=1,
        description="Kubernetes objects to run on the chosen cluster(s): a Job, Deployment or any custom "
        "resource (PyTorchJob, RayJob, ...). Each needs apiVersion, kind and metadata.name.",
        json_schema_extra={"items": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}},
    )
    replicas: int = Field(default=1, ge=1, le=10000, description="Number of replicas (units of GPU demand).")
    gpu: GPURequest = Field(default_factory=GPURequest, description="Per-replica GPU needs.")
    placement_mode: Literal["Gang", "Divisible"] = Field(
        default="Gang",
        description="Gang: all replicas in one cluster at once. Divisible: replicas may spread over clusters.",
    )
    max_clusters: int | None = Field(
        default=None, ge=1, le=MAX_CLUSTERS, description="Divisible only: at most this many clusters."
    )
    capacity_types: CapacityTypePolicy = Field(default_factory=CapacityTypePolicy)
    priority: int | None = Field(
        default=None,
        ge=INT32_MIN,
        le=INT32_MAX,
        description="Higher places first (int32, as PriorityClass values). Absent: the value of the "
        "PriorityClass named by the label fleetplane.io/priority-class, else the global default class's, else 0.",
    )
    queue: str | None = Field(
        default=None,
        description="The Queue to submit to (quotas, fair share, preemption). Absent: the Queue whose "
        "spec.defaultFor lists the namespace; with none, the workload is placed without a queue.",
    )
    preemption_grace_period_seconds: int | None = Field(
        default=None,
        ge=0,
        le=86400,
        description="When preempted by a higher-priority workload or reclaimed by another queue: how long the hub "
        "waits after the Evicted notice before it withdraws the copies (time to checkpoint). Absent: 0; the pods' "
        "own terminationGracePeriodSeconds applies on the spoke either way.",
    )
    datasets: list[DatasetRef] | None = Field(default=None, description="Datasets the workload reads.")
    cluster_selector: LabelSelector | None = None
    tolerations: list[Toleration] | None = None
    failover: Literal["Replace", "Wait"] = Field(
        default="Replace",
        description="When its cluster goes NotReady: Replace re-places it elsewhere, Wait waits for it.",
    )

    @field_validator("manifests")
    @classmethod
    def _manifests_are_objects(cls, value: list[dict[str, Any]]) -> list[dict[str, Any]]:
        for i, m in enumerate(value):
            for key in ("apiVersion", "kind"):
                if not isinstance(m.get(key), str) or not m.get(key):
                    raise ValueError(f"manifests[{i}].{key} is required")
            meta = m.get("metadata")
            if not isinstance(meta, dict) or not isinstance(meta.get("name"), str):
                raise ValueError(f"manifests[{i}].metadata.name is required")
        return value

    @model_validator(mode="after")
    def _max_clusters_only_divisible(self) -> WorkloadSpec:
        if self.max_clusters is not None and self.placement_mode == "Gang":
            raise ValueError("maxClusters applies only to placementMode Divisible")
        return self


class ClusterPlacement(_Model):
    name: str
    replicas: int
    capacity_type: str | None = None


class PlacementRecord(_Model):
    """The placement decision recorded on the Workload."""

    clusters: list[ClusterPlacement] | None = None
    epoch: int | None = None
    reason: str | None = None
    explanation: dict[str, Any] | None = Field(
        default=None, json_schema_extra={"x-kubernetes-preserve-unknown-fields": True}
    )
    decided_at: str | None = None


class ClusterWorkloadStatus(_Model):
    name: str
    phase: str | None = None
    message: str | None = None
    epoch: int | None = None


WorkloadPhase = Literal["Pending", "Placed", "Running", "Succeeded", "Failed"]


class AdmittedFlavor(_Model):
    """The queue flavor a workload was admitted on: GPU model family × capacity type (× region)."""

    name: str | None = None
    gpu_model: str
    capacity_type: str
    region: str | None = None


class AdmissionRecord(_Model):
    """The quota a workload holds in its queue: set when it is admitted, in the placement's
    transaction; cleared when it is evicted or finishes."""

    queue: str
    flavor: AdmittedFlavor | None = None
    gpus: int = Field(default=0, ge=0, le=MAX_GPUS)
    priority: int = Field(default=0, ge=INT32_MIN, le=INT32_MAX)
    admitted_at: str | None = None


class EvictionRecord(_Model):
    """Why and when the workload was last evicted (preempted or reclaimed) and sent back to its queue."""

    reason: str
    message: str | None = None
    preemptor: str | None = Field(default=None, description="namespace/name of the workload it made room for.")
    evicted_at: str | None = None
    withdraw_at: str | None = Field(default=None, description="When its copies are (or were) withdrawn.")
    withdrawn: bool = False


class EpochRecord(_Model):
    """One placement epoch of a workload, in `status.epochHistory` (the hub keeps the last 10)."""

    epoch: int = Field(ge=0, description="The placement epoch (status.placement.epoch while it is current).")
    clusters: list[str] = Field(default_factory=list, description="The clusters it was placed on.")
    reason: str = Field(
        description="Why it started: Placed (first placement), or how the previous epoch ended — FailedOver "
        "(a cluster went NotReady), Evicted (spot interruption), PreemptedByPriority or ReclaimedByQueue "
        "(evicted for another workload, then admitted again), Requeued (its copies were lost)."
    )
    message: str | None = Field(default=None, description="The placement, or the cause: e.g. 'lost east (NotReady)'.")
    started_at: str | None = Field(default=None, description="When the placement of this epoch was committed.")
    ended_at: str | None = Field(default=None, description="When it ended; absent while it is the current epoch.")
    end_reason: str | None = Field(
        default=None,
        description="Why it ended: FailedOver, Evicted, PreemptedByPriority, ReclaimedByQueue, Requeued, "
        "Superseded, Succeeded or Failed.",
    )
    end_message: str | None = None


class WorkloadStatus(_Model):
    phase: WorkloadPhase | None = None
    message: str | None = None
    placement: PlacementRecord | None = None
    admission: AdmissionRecord | None = None
    eviction: EvictionRecord | None = None
    waiting_for: list[str] | None = Field(
        default=None, description="Workloads (namespace/name) it preempted whose copies are still being removed."
    )
    clusters: list[ClusterWorkloadStatus] | None = None
    epoch_history: list[EpochRecord] | None = Field(
        default=None,
        description="The workload's last placement epochs (10), oldest first (failovers, evictions, preemptions): "
        "clusters, why each started and ended, and when. Written by the hub only when the epoch changes.",
    )
    conditions: list[Condition] | None = None
    observed_generation: int | None = None


class Workload(_Model):
    """A unit of AI work (training job, inference service) to place on a member cluster."""

    api_version: Literal["fleetplane.io/v1alpha1"] = "fleetplane.io/v1alpha1"
    kind: Literal["Workload"] = "Workload"
    metadata: ObjectMeta = Field(default_factory=ObjectMeta)
    spec: WorkloadSpec
    status: WorkloadStatus | None = None


# ---------------------------------------------------------------- Queue and PriorityClass
# Field names follow Kueue's ClusterQueue where they fit (cohort, resourceGroups[].flavors[],
# nominalQuota, borrowingLimit, lendingLimit, preemption, queueingStrategy, fairSharing.weight)
# and Kubernetes' PriorityClass (value, globalDefault, description); docs/queues.md lists what
# was taken and what changed.


class QueueFlavor(_Model):
    """GPU quota of a queue on one flavor: a GPU model family × capacity type (× region)."""

    name: str | None = Field(default=None, description="A label for the flavor in explanations.")
    gpu_model: str = Field(min_length=1, description="GPU model family, e.g. H100 (size suffixes are dropped).")
    capacity_type: CapacityType = Field(description="spot, on-demand or reserved.")
    region: str | None = Field(default=None, description="Only clusters in this region; absent means any.")
    nominal_quota: int = Field(ge=0, le=MAX_GPUS, description="GPUs this queue is entitled to.")
    borrowing_limit: int | None = Field(
        default=None, ge=0, le=MAX_GPUS, description="At most this many GPUs beyond nominal from the cohort."
    )
    lending_limit: int | None = Field(
        default=None, ge=0, le=MAX_GPUS, description="At most this many unused nominal GPUs lent to the cohort."
    )


class ResourceGroup(_Model):
    """Flavors in the order they are tried (Kueue's resourceGroups; GPUs are the one resource)."""

    covered_resources: list[Literal["nvidia.com/gpu", "gpu"]] | None = None
    flavors: list[QueueFlavor] = Field(min_length=1)


class FairSharing(_Model):
    weight: float = Field(default=1.0, gt=0, le=1e6, description="Share of contended capacity relative to others.")


class QueuePreemption(_Model):
    within_queue: Literal["Never", "LowerPriority"] = "Never"
    reclaim_within_cohort: Literal["Never", "Any", "LowerPriority"] = "Never"


class QueueSpec(_Model):
    cohort: str | None = Field(default=None, description="Queues of one cohort borrow each other's unused quota.")
    resource_groups: list[ResourceGroup] = Field(default_factory=list)
    fair_sharing: FairSharing | None = None
    queueing_strategy: Literal["StrictFIFO", "BestEffortFIFO"] = "BestEffortFIFO"
    namespaces: list[str] | None = Field(default=None, description="Namespaces that may submit; absent means all.")
    default_for: list[str] | None = Field(
        default=None, description="Namespaces whose workloads without spec.queue use this queue."
    )
    preemption: QueuePreemption = Field(default_factory=QueuePreemption)


class QueueFlavorUsage(_Model):
    """A queue's use of one flavor, as the last admission pass saw it."""

    name: str | None = None
    gpu_model: str
    capacity_type: str
    region: str | None = None
    used: int = 0
    nominal: int = 0
    borrowed: int = 0
    available: int = 0


class QueueStatus(_Model):
    """Written by the hub's admission pass (when it changes)."""

    pending_workloads: int = 0
    admitted_workloads: int = 0
    flavors_usage: list[QueueFlavorUsage] | None = None
    weighted_share: float | None = None
    conditions: list[Condition] | None = None


class Queue(_Model):
    """A team's GPU quotas per flavor, its cohort, fair-share weight, ordering and preemption."""

    api_version: Literal["fleetplane.io/v1alpha1"] = "fleetplane.io/v1alpha1"
    kind: Literal["Queue"] = "Queue"
    metadata: ObjectMeta = Field(default_factory=ObjectMeta)
    spec: QueueSpec = Field(default_factory=QueueSpec)
    status: QueueStatus | None = None


class PriorityClass(_Model):
    """A named priority (as scheduling.k8s.io PriorityClass); Workloads name it by label."""

    api_version: Literal["fleetplane.io/v1alpha1"] = "fleetplane.io/v1alpha1"
    kind: Literal["PriorityClass"] = "PriorityClass"
    metadata: ObjectMeta = Field(default_factory=ObjectMeta)
    value: int = Field(ge=INT32_MIN, le=INT32_MAX)
    global_default: bool = False
    description: str | None = None


# ---------------------------------------------------------------- Cluster


class GPUNode(_Model):
    name: str
    gpus: int = Field(ge=0, le=MAX_GPUS_PER_NODE, description="Allocatable GPUs on the node.")
    free: int = Field(
        ge=0, le=MAX_GPUS_PER_NODE, description="Allocatable minus requested by non-terminal pods; 0 if unschedulable."
    )
    ready: bool = True
    schedulable: bool = True


class GPUPool(_Model):
    """GPUs of one model and capacity type in a cluster, with per-node free counts."""

    name: str | None = Field(default=None, description="Node pool name, if the cluster reports one.")
    model: str = Field(description="GPU product, e.g. H100, A100, L4 (from GPU feature discovery labels).")
    memory_gi_b: int | None = Field(
        default=None, alias="memoryGiB", ge=0, le=MAX_GPU_MEMORY_GIB, description="Memory per GPU, GiB."
    )
    capacity_type: CapacityType
    price_per_gpu_hour: float | None = Field(default=None, ge=0, le=MAX_PRICE, description="USD per GPU-hour.")
    gpus_per_node: int | None = Field(default=None, ge=0, le=MAX_GPUS_PER_NODE)
    total: int = Field(default=0, ge=0, le=MAX_GPUS)
    allocatable: int = Field(default=0, ge=0, le=MAX_GPUS)
    allocated: int = Field(default=0, ge=0, le=MAX_GPUS)
    free: int = Field(default=0, ge=0, le=MAX_GPUS)
    nodes: list[GPUNode] | None = None
    zone: str | None = None
    taints: list[Taint] | None = Field(default=None, description="Taints every node of the pool carries.")


class ClusterSpec(_Model):
    region: str | None = Field(default=None, description="Cloud region; also the topology site if site is empty.")
    zone: str | None = None
    site: str | None = Field(default=None, description="Node of the network topology this cluster sits at.")
    taints: list[Taint] | None = None
    prices: dict[str, Price] | None = Field(
        default=None, description="Default USD per GPU-hour by capacity type, when pools report none."
    )
    backend: Literal["kubernetes", "simulated"] = Field(
        default="kubernetes", description="simulated marks a fake in-memory spoke (demos, scale tests)."
    )


class ClusterStatus(_Model):
    conditions: list[Condition] | None = None
    heartbeat_time: str | None = None
    region: str | None = None
    zone: str | None = None
    agent_version: str | None = None
    kubernetes_version: str | None = None
    gpu_pools: list[GPUPool] | None = None
    total_gpus: int | None = Field(default=None, ge=0, le=MAX_GPUS)
    free_gpus: int | None = Field(default=None, ge=0, le=MAX_GPUS)


class Cluster(_Model):
    """A member Kubernetes cluster and its GPU inventory (cluster-scoped)."""

    api_version: Literal["fleetplane.io/v1alpha1"] = "fleetplane.io/v1alpha1"
    kind: Literal["Cluster"] = "Cluster"
    metadata: ObjectMeta = Field(default_factory=ObjectMeta)
    spec: ClusterSpec = Field(default_factory=ClusterSpec)
    status: ClusterStatus | None = None


# ---------------------------------------------------------------- Dataset


class DatasetLocation(_Model):
    site: str = Field(description="Topology site holding a replica (e.g. a region or storage bucket site).")
    uri: str | None = None


class DatasetSpec(_Model):
    size_gi_b: float = Field(alias="sizeGiB", ge=0, le=MAX_DATASET_GIB, description="Dataset size, GiB.")
    locations: list[DatasetLocation] = Field(min_length=1, description="Where replicas of the dataset live.")
    shared_with: list[Annotated[str, Field(max_length=63, pattern=DNS1123_LABEL.pattern)]] | None = Field(
        default=None,
        max_length=1000,
        description="Other namespaces whose Workloads may read this Dataset (by default only Workloads of "
        "its own namespace may). Only an admin may set or change it.",
    )


class Dataset(_Model):
    """Data a workload reads, with the sites holding replicas of it."""

    api_version: Literal["fleetplane.io/v1alpha1"] = "fleetplane.io/v1alpha1"
    kind: Literal["Dataset"] = "Dataset"
    metadata: ObjectMeta = Field(default_factory=ObjectMeta)
    spec: DatasetSpec
    status: dict[str, Any] | None = Field(
        default=None, json_schema_extra={"x-kubernetes-preserve-unknown-fields": True}
    )


# ---------------------------------------------------------------- Assignment


class WorkloadRef(_Model):
    name: str
    uid: str | None = None


class AssignmentSpec(_Model):
    """Work for one cluster: the manifests its agent applies, fenced by an epoch."""

    cluster_name: str = Field(description="The member cluster that runs these manifests.")
    workload_ref: WorkloadRef
    epoch: int = Field(ge=0, description="Fencing epoch; agents drop Assignments older than one already seen.")
    replicas: int = Field(default=1, ge=0)
    capacity_type: CapacityType | None = None
    gpu_model: str | None = Field(default=None, description="GPU model of the pool placement chose.")
    node_names: list[str] | None = Field(
        default=None,
        description="Nodes of the pool placement chose (model x capacity type). The agent pins the "
        "pods of the manifests to them, so non-preemptible work never lands on spot nodes.",
    )
    manifests: list[dict[str, Any]] = Field(
        default_factory=list,
        json_schema_extra={"items": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}},
    )


class AppliedObjectStatus(_Model):
    api_version: str | None = None
    kind: str
    name: str
    namespace: str | None = None
    phase: str | None = None
    message: str | None = None


class AssignmentStatus(_Model):
    phase: Literal["Pending", "Applied", "Running", "Succeeded", "Failed", "Rejected", "Deleting"] | None = None
    reason: str | None = None
    message: str | None = None
    observed_epoch: int | None = None
    objects: list[AppliedObjectStatus] | None = None
    conditions: list[Condition] | None = None
    updated_at: str | None = None


class Assignment(_Model):
    """A placement of (part of) a Workload on one cluster (namespaced, next to its Workload)."""

    api_version: Literal["fleetplane.io/v1alpha1"] = "fleetplane.io/v1alpha1"
    kind: Literal["Assignment"] = "Assignment"
    metadata: ObjectMeta = Field(default_factory=ObjectMeta)
    spec: AssignmentSpec
    status: AssignmentStatus | None = None


# ---------------------------------------------------------------- Topology


class Site(_Model):
    name: str
    type: Literal["region", "zone", "storage", "other"] = "other"
    parent: str | None = Field(default=None, description="Enclosing site (a zone's region).")


class Link(_Model):
    source: str = Field(alias="from")
    target: str = Field(alias="to")
    bandwidth_gbps: float = Field(gt=0, le=MAX_BANDWIDTH_GBPS, description="Usable bandwidth, Gbit/s.")
    egress_cost_per_gb: float = Field(
        default=0.0, ge=0, le=MAX_PRICE, alias="egressCostPerGB", description="USD per GB moved."
    )


class TopologySpec(_Model):
    sites: list[Site] = Field(default_factory=list)
    links: list[Link] = Field(default_factory=list)


class Topology(_Model):
    """The network between sites (regions, zones, storage), used for data locality (cluster-scoped)."""

    api_version: Literal["fleetplane.io/v1alpha1"] = "fleetplane.io/v1alpha1"
    kind: Literal["Topology"] = "Topology"
    metadata: ObjectMeta = Field(default_factory=ObjectMeta)
    spec: TopologySpec = Field(default_factory=TopologySpec)
    status: dict[str, Any] | None = Field(
        default=None, json_schema_extra={"x-kubernetes-preserve-unknown-fields": True}
    )


KINDS: dict[str, type[_Model]] = {
    "Workload": Workload,
    "Cluster": Cluster,
    "Dataset": Dataset,
    "Assignment": Assignment,
    "Topology": Topology,
}
