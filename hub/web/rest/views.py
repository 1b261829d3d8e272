"""The REST API's views: compact, task-shaped answers built from stored objects, and the
`Status` error shape, as pydantic models (they are the /docs schema too)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from fleetplane_types.conditions import cluster_ready
from fleetplane_types.names import API_VERSION
from hub.registry.objects import Obj

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
    priority: int
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


class WhatIfSummary(_View):
    workloads: int
    placed: int
    pending: int


class WhatIfSnapshot(_View):
    clusters: int = Field(description="Clusters in the snapshot (those visible to the caller).")
    reservations: int = Field(description="In-flight placements whose GPUs were held back.")


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
    warnings: list[str] = Field(default_factory=list, description="Unknown fields dropped (fieldValidation=Warn).")


# ------------------------------------------------------------------ views of stored objects


def workload_view(obj: Obj, *, explain: bool) -> WorkloadView:
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
        priority=int(spec.get("priority") or 0),
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
