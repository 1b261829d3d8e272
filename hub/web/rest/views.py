"""The REST API's views: compact, task-shaped answers built from stored objects, and the
`Status` error shape, as pydantic models (they are the /docs schema too)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from fleetplane_types import v1alpha1 as v1
from fleetplane_types.conditions import cluster_ready
from fleetplane_types.names import API_VERSION
from hub.registry.objects import Obj
from hub.registry.queues import LineEntry, QueueIndex, State, gpus_of
from placement.queueing import Flavor

#: Most workloads one what-if may carry. The engine is vectorised, but the explanation of every
#: decision lists every cluster, so the answer grows with workloads × clusters.
WHATIF_MAX_WORKLOADS = 500


def _get(o: Any, *path: str) -> Any:
    for p in path:
        if not isinstance(o, dict):
            return None
        o = o.get(p)
    return o


class _View(BaseModel):
    """camelCase on the wire, like the Kubernetes objects the views are built from."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)


class StatusCause(_View):
    reason: str | None = None
    field: str | None = None
    message: str | None = None


class StatusDetails(_View):
    name: str | None = None
    group: str | None = None
    kind: str | None = None
    causes: list[StatusCause] | None = None


class Status(_View):
    """Every error: a Kubernetes Status whose `reason` says what kind of failure it is."""

    kind: str = "Status"
    api_version: str = "v1"
    status: str = "Failure"
    message: str
    reason: str = Field(description="NotFound, Invalid, BadRequest, Forbidden, Unauthorized, AlreadyExists, ...")
    code: int
    details: StatusDetails | None = None


def error_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    what = {
        400: "Malformed body or unknown field (with fieldValidation=Strict)",
        401: "No or unknown bearer token",
        403: "Not allowed for this subject",
        404: "Namespace or object not found (or not visible to this subject)",
        409: "Already exists",
        413: "Body over the hub's size limit",
        422: "Invalid: one cause per field",
        429: "Too many requests from this address; retry after Retry-After seconds",
        503: "The hub's database is unavailable; retry after Retry-After seconds",
    }
    # Every route can answer 400 (a query parameter or path segment the input boundary
    # refuses), 401 (no or unknown token), 429 (too many failed authentications) and 503.
    return {c: {"model": Status, "description": what[c]} for c in sorted({400, 401, 429, 503, *codes})}


class ClusterShare(_View):
    name: str
    replicas: int
    capacity_type: str | None = None


class PlacementView(_View):
    clusters: list[ClusterShare] = Field(
        default_factory=list, description="Where the replicas run (empty while pending)."
    )
    epoch: int | None = Field(default=None, description="Fencing epoch; +1 on every re-placement.")
    reason: str | None = Field(default=None, description='"placed on …", or why no cluster fits ("0/N clusters: …").')
    decided_at: str | None = None


class ClusterWorkloadView(_View):
    name: str
    phase: str | None = None
    message: str | None = None
    epoch: int | None = None


class WorkloadView(_View):
    """A Workload, compact: what it asks for, where it runs, and why."""

    name: str
    namespace: str
    phase: str = Field(description="Pending, Placed, Running, Succeeded or Failed.")
    message: str | None = None
    replicas: int
    gpus_per_replica: int
    gpus: int = Field(description="replicas × gpusPerReplica.")
    gpu_models: list[str] = Field(default_factory=list, description="Allowed models; empty means any.")
    placement_mode: str
    priority: int = Field(
        description="Resolved: spec.priority when set, else its PriorityClass's value (label "
        "fleetplane.io/priority-class), else the global-default class's, else 0."
    )
    queue: str | None = Field(
        default=None, description="spec.queue, else the Queue whose spec.defaultFor lists the namespace."
    )
    admission: v1.AdmissionRecord | None = Field(
        default=None, description="The quota it holds in its queue (status.admission), once admitted."
    )
    placement: PlacementView | None = None
    clusters: list[ClusterWorkloadView] | None = Field(default=None, description="Per-cluster status from the agents.")
    explanation: dict[str, Any] | None = Field(
        default=None,
        description="The engine's explanation (docs/placement.md, JSON output): every plugin's score and weight "
        "per cluster and the filter that removed each other cluster. Always on a single GET; in lists "
        "only with ?explain=true.",
    )
    deleting: bool = False
    created_at: str | None = None
    resource_version: str | None = None


class WorkloadList(_View):
    items: list[WorkloadView]
    resource_version: str = Field(description="Store resourceVersion the list is consistent with (watch from it).")
    continue_token: str | None = Field(
        default=None, serialization_alias="continue", description="Pass as ?continue= for the next page."
    )


class PoolView(_View):
    name: str | None = None
    model: str
    capacity_type: str
    price_per_gpu_hour: float | None = Field(
        default=None, description="USD per GPU-hour; the cluster's spec.prices default when the pool reports none."
    )
    memory_gi_b: int | None = None  # camelCase: memoryGiB
    total: int
    free: int
    nodes: int = Field(description="Nodes the agent reported in this pool.")


class ClusterView(_View):
    name: str
    ready: bool
    ready_reason: str | None = None
    region: str | None = None
    zone: str | None = None
    backend: str = Field(description="kubernetes, or simulated for a fake in-memory spoke.")
    simulated: bool = Field(description="True when the capacity is not real (backend simulated).")
    heartbeat_time: str | None = None
    total_gpus: int
    free_gpus: int = Field(description="As the agent reported; GPUs of in-flight placements may not be counted yet.")
    pools: list[PoolView]


class ClusterList(_View):
    items: list[ClusterView]


class SummaryRow(_View):
    model: str
    capacity_type: str
    region: str = Field(description="Empty when the cluster reports no region.")
    total: int
    free: int
    clusters: int = Field(description="Ready clusters contributing to this row.")
    simulated_clusters: int = Field(description="Of those, how many are simulated (their GPUs are not real).")


class NotReadyCount(_View):
    clusters: int
    gpus: int


class FleetSummary(_View):
    """GPUs of Ready clusters by model × capacity type × region; NotReady ones counted apart."""

    rows: list[SummaryRow]
    ready_clusters: int
    total_gpus: int
    free_gpus: int
    not_ready: NotReadyCount


class WhatIfRequest(_View):
    workloads: list[dict[str, Any]] = Field(
        min_length=1,
        max_length=WHATIF_MAX_WORKLOADS,
        description="Workload objects, as you would submit them (apiVersion/kind optional; metadata.namespace "
        'defaults to "default", or a team\'s first namespace).',
        json_schema_extra={"items": {"$ref": "#/components/schemas/Workload"}},
    )
    profile: str | None = Field(
        default=None, description="Scoring profile (default, spread, cheapest, data-local); default: the hub's own."
    )
    queues: list[dict[str, Any]] | None = Field(
        default=None,
        max_length=WHATIF_MAX_WORKLOADS,
        description="Queue objects to admit through first (the answer then has `admission`). Absent: the hub's "
        "stored Queues, if any; [] : no queues (placement only).",
        json_schema_extra={"items": {"$ref": "#/components/schemas/Queue"}},
    )
    priority_classes: list[dict[str, Any]] | None = Field(
        default=None,
        max_length=WHATIF_MAX_WORKLOADS,
        description="PriorityClass objects resolving the workloads' priorities. Absent: the hub's stored ones.",
        json_schema_extra={"items": {"$ref": "#/components/schemas/PriorityClass"}},
    )


class WhatIfSummary(_View):
    workloads: int
    placed: int
    pending: int


class WhatIfSnapshot(_View):
    clusters: int = Field(description="Clusters in the snapshot (those visible to the caller).")
    reservations: int = Field(description="In-flight placements whose GPUs were held back.")


class WhatIfAdmission(_View):
    """The admission report (`fleetplane place ... -o json` with Queues): docs/queues.md."""

    api_version: str = API_VERSION
    kind: str = "AdmissionReport"
    summary: dict[str, int]
    queues: list[dict[str, Any]]
    decisions: list[dict[str, Any]]
    evictions: list[dict[str, Any]]
    queues_from: str = Field(description='"request" (the body\'s queues) or "store" (the hub\'s).')


class WhatIfReport(_View):
    """A PlacementReport, as `fleetplane place -o json` prints it, on the live fleet."""

    api_version: str = API_VERSION
    kind: str = "PlacementReport"
    profile: str
    summary: WhatIfSummary
    decisions: list[dict[str, Any]] = Field(
        description="One Decision.to_dict() per workload, highest priority first, every cluster explained."
    )
    snapshot: WhatIfSnapshot
    admission: WhatIfAdmission | None = Field(
        default=None,
        description="With Queues (the body's, else the hub's stored ones): the admission pass over these workloads, "
        "with the stored workloads that hold quota now. Absent when no queue is involved.",
    )
    warnings: list[str] = Field(default_factory=list, description="Unknown fields dropped (fieldValidation=Warn).")


class QueueFlavorView(_View):
    """A queue's quota on one flavor and its use, as the last admission pass counted it."""

    name: str | None = None
    gpu_model: str
    capacity_type: str
    region: str | None = None
    nominal_quota: int
    borrowing_limit: int | None = Field(default=None, description="Absent: may borrow what the cohort lends.")
    lending_limit: int | None = Field(default=None, description="Absent: lends all of its unused quota.")
    used: int = 0
    borrowed: int = Field(default=0, description="Used beyond the nominal quota (from the cohort).")
    available: int = Field(default=0, description="What a new workload could still be admitted with.")


class QueueView(_View):
    """A Queue: its quotas per flavor and, from its status, what they hold and who waits."""

    name: str
    cohort: str | None = None
    strategy: str = Field(description="StrictFIFO or BestEffortFIFO.")
    weight: float = Field(description="Fair-share weight.")
    namespaces: list[str] | None = Field(default=None, description="Who may submit; absent means every namespace.")
    default_for: list[str] = Field(default_factory=list)
    within_queue: str = Field(description="Preemption within the queue: Never or LowerPriority.")
    reclaim_within_cohort: str = Field(description="Never, Any or LowerPriority.")
    flavors: list[QueueFlavorView]
    pending: int = Field(description="Workloads waiting for admission (status.pendingWorkloads).")
    admitted: int = Field(description="Workloads holding quota (status.admittedWorkloads).")
    weighted_share: float = Field(description="Dominant-resource share divided by weight; lowest admits next.")
    usage_reported: bool = Field(
        description="False until the hub's admission pass first writes the queue's status; the numbers are 0 till then."
    )
    created_at: str | None = None
    resource_version: str | None = None


class QueueList(_View):
    items: list[QueueView]


class QueueEntryView(_View):
    """A waiting workload's place in its queue's line."""

    namespace: str
    name: str
    position: int = Field(description="1-based, counting every waiting workload of the queue.")
    priority: int
    gpus: int
    ahead_higher_priority: int = Field(description="Waiting workloads ahead of it with a higher priority.")
    message: str | None = Field(default=None, description="Why it waits (status.message, the admission pass's).")
    created_at: str | None = None


class QueueLine(_View):
    """A queue's waiting workloads in admission order (Kueue's pendingworkloads view)."""

    queue: str
    waiting: int = Field(description="Waiting workloads in the queue, whoever may see them.")
    items: list[QueueEntryView] = Field(description="Those the caller may see (a team: its namespaces').")
    hidden: int = Field(description="Waiting workloads of namespaces the caller may not see (counted, not shown).")


class WorkloadPosition(_View):
    """Where one workload stands in its queue."""

    namespace: str
    name: str
    queue: str | None
    state: str = Field(description="Waiting, Admitted, Finished, Deleting, NoQueue or Inadmissible.")
    reason: str = Field(description="Why it is in that state (for Waiting: the admission pass's message).")
    position: int | None = Field(default=None, description="Waiting only: 1-based place in the queue's line.")
    of: int | None = Field(default=None, description="Waiting only: how many wait in the queue.")
    priority: int
    gpus: int
    ahead_higher_priority: int | None = None
    admission: v1.AdmissionRecord | None = None


# ------------------------------------------------------------------ views of stored objects


def workload_view(obj: Obj, *, explain: bool, queues: QueueIndex | None = None) -> WorkloadView:
    """`queues` resolves its queue and priority (the stored Queues and PriorityClasses)."""
    meta, spec, st = obj.get("metadata") or {}, obj.get("spec") or {}, obj.get("status") or {}
    gpu = spec.get("gpu") or {}
    per, replicas = int(gpu.get("count") or 0), int(spec.get("replicas") or 1)
    placed = st.get("placement")
    placement = None
    if isinstance(placed, dict):
        placement = PlacementView(
            clusters=[
                ClusterShare(
                    name=c.get("name", ""), replicas=int(c.get("replicas") or 0), capacity_type=c.get("capacityType")
                )
                for c in placed.get("clusters") or []
            ],
            epoch=placed.get("epoch"),
            reason=placed.get("reason"),
            decided_at=placed.get("decidedAt"),
        )
    return WorkloadView(
        name=meta.get("name", ""),
        namespace=meta.get("namespace", ""),
        phase=st.get("phase") or "Pending",
        message=st.get("message"),
        replicas=replicas,
        gpus_per_replica=per,
        gpus=replicas * per,
        gpu_models=list(gpu.get("models") or []),
        placement_mode=spec.get("placementMode") or "Gang",
        priority=queues.priority_of(obj) if queues is not None else int(spec.get("priority") or 0),
        queue=queues.queue_of(obj) if queues is not None else spec.get("queue"),
        admission=st.get("admission"),
        placement=placement,
        clusters=[
            ClusterWorkloadView(**{k: c.get(k) for k in ("name", "phase", "message", "epoch")})
            for c in st.get("clusters") or []
        ]
        or None,
        explanation=(placed or {}).get("explanation") if explain and isinstance(placed, dict) else None,
        deleting=bool(meta.get("deletionTimestamp")),
        created_at=meta.get("creationTimestamp"),
        resource_version=meta.get("resourceVersion"),
    )


def cluster_view(obj: Obj) -> ClusterView:
    spec, st = obj.get("spec") or {}, obj.get("status") or {}
    prices = spec.get("prices") or {}
    pools = []
    for p in st.get("gpuPools") or []:
        price = p.get("pricePerGpuHour")
        pools.append(
            PoolView(
                name=p.get("name"),
                model=p.get("model", ""),
                capacity_type=p.get("capacityType", ""),
                # The engine prices a pool without its own price at the cluster's default (docs/placement.md).
                price_per_gpu_hour=price if price is not None else prices.get(p.get("capacityType", "")),
                memory_gi_b=p.get("memoryGiB"),
                total=int(p.get("total") or 0),
                free=int(p.get("free") or 0),
                nodes=len(p.get("nodes") or []),
            )
        )
    ready, reason = cluster_ready(obj)
    backend = spec.get("backend") or "kubernetes"
    total = st.get("totalGpus")
    free = st.get("freeGpus")
    return ClusterView(
        name=_get(obj, "metadata", "name") or "",
        ready=ready,
        ready_reason=reason,
        region=st.get("region") or spec.get("region"),
        zone=st.get("zone") or spec.get("zone"),
        backend=backend,
        simulated=backend == "simulated",
        heartbeat_time=st.get("heartbeatTime"),
        total_gpus=int(total) if total is not None else sum(p.total for p in pools),
        free_gpus=int(free) if free is not None else sum(p.free for p in pools),
        pools=pools,
    )


def queue_view(obj: Obj) -> QueueView:
    """Spec summary plus the status the admission pass writes (zeros before it has)."""
    spec, st = obj.get("spec") or {}, obj.get("status")
    usage = {}
    for u in (st or {}).get("flavorsUsage") or []:
        usage[_flavor(u)] = u
    flavors = []
    for group in spec.get("resourceGroups") or []:
        for f in group.get("flavors") or []:
            u = usage.get(_flavor(f), {})
            flavors.append(
                QueueFlavorView(
                    name=f.get("name"),
                    gpu_model=f.get("gpuModel", ""),
                    capacity_type=f.get("capacityType", ""),
                    region=f.get("region"),
                    nominal_quota=int(f.get("nominalQuota") or 0),
                    borrowing_limit=f.get("borrowingLimit"),
                    lending_limit=f.get("lendingLimit"),
                    used=int(u.get("used") or 0),
                    borrowed=int(u.get("borrowed") or 0),
                    available=int(u.get("available") or 0),
                )
            )
    preemption = spec.get("preemption") or {}
    meta = obj.get("metadata") or {}
    return QueueView(
        name=meta.get("name", ""),
        cohort=spec.get("cohort"),
        strategy=spec.get("queueingStrategy") or "BestEffortFIFO",
        weight=float((spec.get("fairSharing") or {}).get("weight") or 1.0),
        namespaces=spec.get("namespaces"),
        default_for=list(spec.get("defaultFor") or []),
        within_queue=preemption.get("withinQueue") or "Never",
        reclaim_within_cohort=preemption.get("reclaimWithinCohort") or "Never",
        flavors=flavors,
        pending=int((st or {}).get("pendingWorkloads") or 0),
        admitted=int((st or {}).get("admittedWorkloads") or 0),
        weighted_share=float((st or {}).get("weightedShare") or 0.0),
        usage_reported=st is not None,
        created_at=meta.get("creationTimestamp"),
        resource_version=meta.get("resourceVersion"),
    )


def _flavor(f: dict[str, Any]) -> Flavor:
    """The engine's flavor identity (model family, capacity type, region) of a spec or usage entry."""
    return Flavor.of(str(f.get("gpuModel") or ""), f.get("capacityType") or "on-demand", f.get("region"))


def queue_entry_view(e: LineEntry) -> QueueEntryView:
    return QueueEntryView(
        namespace=e.namespace,
        name=e.name,
        position=e.position,
        priority=e.priority,
        gpus=e.gpus,
        ahead_higher_priority=e.ahead_higher,
        message=e.message,
        created_at=e.created or None,
    )


def position_view(
    obj: Obj, state: State, queue: str | None, reason: str, entry: LineEntry | None, of: int, queues: QueueIndex
) -> WorkloadPosition:
    meta, st = obj.get("metadata") or {}, obj.get("status") or {}
    return WorkloadPosition(
        namespace=meta.get("namespace", ""),
        name=meta.get("name", ""),
        queue=queue,
        state=state,
        reason=(entry.message or reason) if entry is not None else reason,
        position=entry.position if entry is not None else None,
        of=of if entry is not None else None,
        priority=queues.priority_of(obj),
        gpus=gpus_of(obj),
        ahead_higher_priority=entry.ahead_higher if entry is not None else None,
        admission=st.get("admission"),
    )
