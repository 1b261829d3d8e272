"""The resources the hub serves: names, scope, schema model, and Table columns.

One entry per kind; discovery, OpenAPI, validation, routing and Table printing all read this
registry, so adding a kind is one entry here plus its model in fleetplane_types.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from fleetplane_types import v1alpha1 as api
from fleetplane_types.conditions import find_condition
from fleetplane_types.names import READY_CONDITION

Obj = dict[str, Any]


@dataclass(frozen=True)
class Column:
    name: str
    type: str
    description: str
    cell: Callable[[Obj], Any]
    priority: int = 0
    format: str = ""


@dataclass(frozen=True)
class Resource:
    group: str
    version: str
    kind: str
    plural: str
    singular: str
    namespaced: bool
    model: type[BaseModel]
    short_names: tuple[str, ...] = ()
    columns: tuple[Column, ...] = ()
    has_status: bool = True
    field_selectors: tuple[str, ...] = ("metadata.name", "metadata.namespace")
    categories: tuple[str, ...] = ("fleetplane",)
    """`kubectl get fleetplane` lists every kind in this category."""
    strategic_merge: bool = False  # kubectl sends strategic merge patch to built-in kinds
    verbs: tuple[str, ...] = ("create", "delete", "get", "list", "patch", "update", "watch")
    """What the HTTP API allows on it (discovery says the same); the hub's controllers write
    through the registry whatever the verbs."""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> str:
        """Store key: 'fleetplane.io/workloads', or 'namespaces' for the core group."""
        return f"{self.group}/{self.plural}" if self.group else self.plural

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def qualified(self) -> str:
        return f"{self.plural}.{self.group}" if self.group else self.plural


def _get(obj: Obj, *path: str, default: Any = None) -> Any:
    cur: Any = obj
    for p in path:
        if not isinstance(cur, dict):
            return default
        cur = cur.get(p)
        if cur is None:
            return default
    return cur


def age(obj: Obj) -> str:
    """Human age like kubectl's: 45s, 12m, 3h, 5d (server-side; kubectl prints it as is)."""
    ts = _get(obj, "metadata", "creationTimestamp")
    if not ts:
        return "<unknown>"
    created = datetime.strptime(ts, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    s = int((datetime.now(UTC) - created).total_seconds())
    if s < 120:
        return f"{max(s, 0)}s"
    if s < 7200:
        return f"{s // 60}m"
    if s < 2 * 86400:
        return f"{s // 3600}h"
    return f"{s // 86400}d"


def since(ts: Any) -> str:
    """kubectl-style age of an RFC 3339 timestamp ("<unknown>" when missing)."""
    return age({"metadata": {"creationTimestamp": ts}}) if isinstance(ts, str) and ts else "<unknown>"


def _name_col() -> Column:
    return Column(
        "Name", "string", "Name of the object.", lambda o: _get(o, "metadata", "name", default=""), format="name"
    )


def _age_col() -> Column:
    return Column("Age", "string", "Time since creation.", age)


def _workload_gpus(o: Obj) -> str:
    n = _get(o, "spec", "gpu", "count", default=0)
    r = _get(o, "spec", "replicas", default=1)
    models = _get(o, "spec", "gpu", "models") or []
    m = "/".join(models) if models else "any"
    return f"{r}x{n} {m}" if n else "0"


def _workload_clusters(o: Obj) -> str:
    cl = _get(o, "status", "placement", "clusters") or []
    return ",".join(c.get("name", "") for c in cl) or "<none>"


def _ready(o: Obj) -> str:
    c = find_condition(o, READY_CONDITION)
    return str(c.get("status")) if c is not None else "Unknown"


def _pools_summary(o: Obj) -> str:
    pools = _get(o, "status", "gpuPools") or []
    parts = [f"{p.get('model')}/{p.get('capacityType')}:{p.get('free', 0)}/{p.get('allocatable', 0)}" for p in pools]
    return ",".join(parts) or "<none>"


NAMESPACE_MODEL: type[BaseModel]


class _NamespaceSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    finalizers: list[str] | None = None


class _NamespaceStatus(BaseModel):
    model_config = ConfigDict(extra="forbid")
    phase: str | None = None


class Namespace(BaseModel):
    """Namespace groups a team's Workloads, Datasets and Assignments."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    apiVersion: str = "v1"
    kind: str = "Namespace"
    metadata: api.ObjectMeta = api.ObjectMeta()
    spec: _NamespaceSpec | None = None
    status: _NamespaceStatus | None = None


class ObjectReference(BaseModel):
    model_config = ConfigDict(extra="forbid")
    apiVersion: str | None = None
    kind: str | None = None
    namespace: str | None = None
    name: str | None = None
    uid: str | None = None
    resourceVersion: str | None = None
    fieldPath: str | None = None


class EventSource(BaseModel):
    model_config = ConfigDict(extra="forbid")
    component: str | None = None
    host: str | None = None


class Event(BaseModel):
    """Event (core/v1): something the hub's controllers did to an object, or why they could
    not: placed, pending and why, failed over, evicted, deleted. One per object and reason,
    counting repeats; expired an hour after it was last seen."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    apiVersion: str = "v1"
    kind: str = "Event"
    metadata: api.ObjectMeta = api.ObjectMeta()
    involvedObject: ObjectReference
    reason: str | None = None
    message: str | None = None
    source: EventSource | None = None
    firstTimestamp: str | None = None
    lastTimestamp: str | None = None
    count: int | None = Field(default=None, ge=0, le=api.INT32_MAX)
    type: str | None = Field(default=None, description="Normal or Warning.")
    eventTime: str | None = None
    action: str | None = None
    reportingComponent: str | None = None
    reportingInstance: str | None = None


def _event_object(o: Obj) -> str:
    ref = o.get("involvedObject") or {}
    return f"{str(ref.get('kind', '')).lower()}/{ref.get('name', '')}"


def _queue_usage(o: Obj) -> str:
    usage = _get(o, "status", "flavorsUsage") or []
    parts = []
    for u in usage:
        if not isinstance(u, dict):
            continue
        label = u.get("name") or "/".join(
            str(x) for x in (u.get("gpuModel"), u.get("capacityType"), u.get("region")) if x
        )
        parts.append(f"{label}:{u.get('used', 0)}/{u.get('nominal', 0)}")
    return ",".join(parts) or "<none>"


def _queue_flavors(o: Obj) -> int:
    return sum(len(g.get("flavors") or []) for g in _get(o, "spec", "resourceGroups") or [] if isinstance(g, dict))


RESOURCES: list[Resource] = [
    Resource(
        "",
        "v1",
        "Namespace",
        "namespaces",
        "namespace",
        False,
        Namespace,
        ("ns",),
        (
            _name_col(),
            Column("Status", "string", "Namespace phase.", lambda o: _get(o, "status", "phase", default="Active")),
            _age_col(),
        ),
        has_status=True,
        categories=(),
        strategic_merge=True,
    ),
    Resource(
        "",
        "v1",
        "Event",
        "events",
        "event",
        True,
        Event,
        ("ev",),
        (
            Column(
                "Last Seen", "string", "Time since the event was last seen.", lambda o: since(o.get("lastTimestamp"))
            ),
            Column("Type", "string", "Normal or Warning.", lambda o: o.get("type", "")),
            Column("Reason", "string", "Why the event was recorded.", lambda o: o.get("reason", "")),
            Column("Object", "string", "The object the event is about.", _event_object),
            Column("Message", "string", "What happened.", lambda o: o.get("message", "")),
            Column("Count", "integer", "Times it happened.", lambda o: o.get("count", 1), priority=1),
            Column(
                "First Seen",
                "string",
                "Time since it first happened.",
                lambda o: since(o.get("firstTimestamp")),
                priority=1,
            ),
            Column(
                "Name",
                "string",
                "Name of the event.",
                lambda o: _get(o, "metadata", "name", default=""),
                priority=1,
                format="name",
            ),
        ),
        has_status=False,
        categories=(),
        verbs=("get", "list", "watch"),
        field_selectors=(
            "metadata.name",
            "metadata.namespace",
            "involvedObject.apiVersion",
            "involvedObject.kind",
            "involvedObject.namespace",
            "involvedObject.name",
            "involvedObject.uid",
            "involvedObject.resourceVersion",
            "involvedObject.fieldPath",
            "reason",
            "type",
            "reportingComponent",
        ),
    ),
    Resource(
        api.GROUP,
        api.VERSION,
        "Workload",
        "workloads",
        "workload",
        True,
        api.Workload,
        ("wl",),
        (
            _name_col(),
            Column("GPUs", "string", "Replicas x GPUs per replica and allowed models.", _workload_gpus),
            Column(
                "Phase",
                "string",
                "Pending, Placed, Running, Succeeded or Failed.",
                lambda o: _get(o, "status", "phase", default="Pending"),
            ),
            Column("Cluster", "string", "Cluster(s) the workload is placed on.", _workload_clusters),
            Column("Age", "string", "Time since creation.", age),
            Column(
                "Priority",
                "integer",
                "Scheduling priority (spec.priority, else as admitted from its PriorityClass).",
                lambda o: (
                    _get(o, "spec", "priority", default=None) or _get(o, "status", "admission", "priority", default=0)
                ),
                priority=1,
            ),
            Column(
                "Queue",
                "string",
                "The queue that admitted it, else the one it names.",
                lambda o: _get(o, "status", "admission", "queue") or _get(o, "spec", "queue", default=""),
                priority=1,
            ),
            Column(
                "Capacity",
                "string",
                "Capacity types allowed.",
                lambda o: ",".join(_get(o, "spec", "capacityTypes", "allowed") or []),
                priority=1,
            ),
            Column(
                "Message",
                "string",
                "Why it is pending, or the last status message.",
                lambda o: _get(o, "status", "message", default=""),
                priority=1,
            ),
        ),
    ),
    Resource(
        api.GROUP,
        api.VERSION,
        "Cluster",
        "clusters",
        "cluster",
        False,
        api.Cluster,
        ("fc",),
        (
            _name_col(),
            Column("Ready", "string", "Ready condition.", _ready),
            Column(
                "Region",
                "string",
                "Cloud region.",
                lambda o: _get(o, "status", "region") or _get(o, "spec", "region", default=""),
            ),
            Column("GPUs", "integer", "Allocatable GPUs.", lambda o: _get(o, "status", "totalGpus", default=0)),
            Column("Free", "integer", "GPUs free for new work.", lambda o: _get(o, "status", "freeGpus", default=0)),
            Column(
                "Backend",
                "string",
                "kubernetes, or simulated for fake spokes.",
                lambda o: _get(o, "spec", "backend", default="kubernetes"),
            ),
            _age_col(),
            Column("Pools", "string", "model/capacity:free/allocatable per pool.", _pools_summary, priority=1),
            Column(
                "Heartbeat",
                "string",
                "Last heartbeat from the agent.",
                lambda o: _get(o, "status", "heartbeatTime", default=""),
                priority=1,
            ),
        ),
        field_selectors=("metadata.name",),
    ),
    Resource(
        api.GROUP,
        api.VERSION,
        "Dataset",
        "datasets",
        "dataset",
        True,
        api.Dataset,
        ("ds",),
        (
            _name_col(),
            Column("Size", "string", "Size in GiB.", lambda o: f"{_get(o, 'spec', 'sizeGiB', default=0)}Gi"),
            Column(
                "Locations",
                "string",
                "Sites holding replicas.",
                lambda o: ",".join(loc.get("site", "") for loc in _get(o, "spec", "locations") or []),
            ),
            _age_col(),
        ),
    ),
    Resource(
        api.GROUP,
        api.VERSION,
        "Assignment",
        "assignments",
        "assignment",
        True,
        api.Assignment,
        ("asg",),
        (
            _name_col(),
            Column(
                "Cluster",
                "string",
                "Member cluster that runs it.",
                lambda o: _get(o, "spec", "clusterName", default=""),
            ),
            Column(
                "Workload",
                "string",
                "Workload it belongs to.",
                lambda o: _get(o, "spec", "workloadRef", "name", default=""),
            ),
            Column("Epoch", "integer", "Fencing epoch.", lambda o: _get(o, "spec", "epoch", default=0)),
            Column(
                "Phase",
                "string",
                "Phase reported by the agent.",
                lambda o: _get(o, "status", "phase", default="Pending"),
            ),
            _age_col(),
            Column(
                "Message",
                "string",
                "Last status message.",
                lambda o: _get(o, "status", "message", default=""),
                priority=1,
            ),
        ),
        field_selectors=("metadata.name", "metadata.namespace", "spec.clusterName", "spec.workloadRef.name"),
    ),
    Resource(
        api.GROUP,
        api.VERSION,
        "Topology",
        "topologies",
        "topology",
        False,
        api.Topology,
        ("topo",),
        (
            _name_col(),
            Column("Sites", "integer", "Number of sites.", lambda o: len(_get(o, "spec", "sites") or [])),
            Column("Links", "integer", "Number of links.", lambda o: len(_get(o, "spec", "links") or [])),
            _age_col(),
        ),
        field_selectors=("metadata.name",),
    ),
]

RESOURCES += [
    Resource(
        api.GROUP,
        api.VERSION,
        "Queue",
        "queues",
        "queue",
        False,
        api.Queue,
        (),
        (
            _name_col(),
            Column(
                "Cohort",
                "string",
                "Queues of one cohort borrow unused quota.",
                lambda o: _get(o, "spec", "cohort", default=""),
            ),
            Column(
                "Strategy",
                "string",
                "StrictFIFO or BestEffortFIFO.",
                lambda o: _get(o, "spec", "queueingStrategy", default="BestEffortFIFO"),
            ),
            Column(
                "Pending",
                "integer",
                "Workloads waiting for admission.",
                lambda o: _get(o, "status", "pendingWorkloads", default=0),
            ),
            Column(
                "Admitted",
                "integer",
                "Workloads holding quota.",
                lambda o: _get(o, "status", "admittedWorkloads", default=0),
            ),
            _age_col(),
            Column(
                "Weight",
                "number",
                "Fair-share weight.",
                lambda o: _get(o, "spec", "fairSharing", "weight", default=1),
                priority=1,
            ),
            Column("Flavors", "integer", "Flavors with a quota.", _queue_flavors, priority=1),
            Column("Usage", "string", "GPUs used/nominal per flavor.", _queue_usage, priority=1),
        ),
        field_selectors=("metadata.name",),
    ),
    Resource(
        api.GROUP,
        api.VERSION,
        "PriorityClass",
        "priorityclasses",
        "priorityclass",
        False,
        api.PriorityClass,
        ("pc",),
        (
            _name_col(),
            Column("Value", "integer", "Priority of the workloads naming it.", lambda o: o.get("value", 0)),
            Column(
                "Global-Default",
                "boolean",
                "The priority of workloads naming no class.",
                lambda o: bool(o.get("globalDefault", False)),
            ),
            _age_col(),
        ),
        has_status=False,
        field_selectors=("metadata.name",),
    ),
]

BY_PATH: dict[tuple[str, str, str], Resource] = {(r.group, r.version, r.plural): r for r in RESOURCES}
BY_KIND: dict[str, Resource] = {r.kind: r for r in RESOURCES}
BY_KEY: dict[str, Resource] = {r.key: r for r in RESOURCES}


def lookup(group: str, version: str, plural: str) -> Resource | None:
    return BY_PATH.get((group, version, plural))


def field_value(obj: Obj, path: str) -> str:
    cur: Any = obj
    for p in path.split("."):
        cur = cur.get(p) if isinstance(cur, dict) else None
    return "" if cur is None else str(cur)
