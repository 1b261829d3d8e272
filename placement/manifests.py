"""Converters from the hub's kube-style objects (fleetplane.io/v1alpha1) to engine inputs.

The what-if CLI reads the same manifests the hub stores — Cluster (with status), Dataset,
Topology, Workload, Queue and PriorityClass (placement.queueing, docs/queues.md) — and the
hub's placement controller hands the same pydantic objects to :func:`snapshot_from_api` and
:func:`workload_from_api`. Every error names the object and the field, e.g.
``Workload "train-a": spec.gpu.models: unknown GPU model "H1000"``.

Mapping notes:

- ``spec.capacityTypes``: ``allowed`` without spot → on-demand-only; with spot →
  spot-allowed; ``preferred`` containing spot → spot-preferred. The exact allowed and
  preferred sets are kept too (the wire can say "reserved only").
- A cluster's topology site is ``spec.site``, else its zone, else its region (the first
  the topology knows). Ready means a ``Ready`` condition with status ``True``; a cluster
  that reports none is NotReady.
- A pool's price is ``pricePerGpuHour``, else the cluster's ``spec.prices[capacityType]``.
- A pool that reports totals but no per-node list is taken as maximally fragmented (free
  GPUs spread evenly over its nodes): the engine never promises a node it cannot see.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import yaml
from pydantic import BaseModel, ValidationError

from fleetplane_types import v1alpha1 as v1
from fleetplane_types.names import READY_CONDITION
from placement.catalogue import canonical_model, catalogue_memory, known_models
from placement.errors import PlacementInputError
from placement.model import (
    CapacityPolicy,
    CapacityType,
    ClusterInfo,
    Dataset,
    FleetSnapshot,
    GpuNode,
    LabelRequirement,
    LabelSelector,
    Link,
    NodePool,
    Site,
    Taint,
    Toleration,
    Topology,
    WorkloadRequest,
)
from placement.queueing import wire as queue_wire

DEFAULT_NAMESPACE = "default"

_KINDS: dict[str, type[BaseModel]] = {
    "Cluster": v1.Cluster,
    "Dataset": v1.Dataset,
    "Topology": v1.Topology,
    "Workload": v1.Workload,
    "Queue": queue_wire.Queue,
    "PriorityClass": queue_wire.PriorityClass,
}
#: Kinds the hub stores that say nothing about capacity or demand here.
_IGNORED_KINDS = {"Assignment"}


@dataclass
class Manifests:
    """Validated objects by kind, in the order read."""

    clusters: list[v1.Cluster] = field(default_factory=list)
    datasets: list[v1.Dataset] = field(default_factory=list)
    topologies: list[v1.Topology] = field(default_factory=list)
    workloads: list[v1.Workload] = field(default_factory=list)
    queues: list[queue_wire.Queue] = field(default_factory=list)
    priority_classes: list[queue_wire.PriorityClass] = field(default_factory=list)


# ---------------------------------------------------------------- reading


def _loc(loc: Sequence[int | str]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def load_documents(paths: Iterable[Path | str]) -> list[tuple[str, dict[str, Any]]]:
    """Every YAML document in the files (``kind: List`` unpacked), with where it came from."""
    out: list[tuple[str, dict[str, Any]]] = []
    for path in paths:
        p = Path(path)
        try:
            text = p.read_text()
        except OSError as e:
            raise PlacementInputError("File", str(p), "", f"cannot read: {e.strerror or e}") from None
        try:
            docs = list(yaml.safe_load_all(text))
        except yaml.YAMLError as e:
            mark = getattr(e, "problem_mark", None)
            where = f"line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
            problem = getattr(e, "problem", None) or str(e)
            raise PlacementInputError("File", str(p), where, f"malformed YAML: {problem}") from None
        for i, doc in enumerate(docs):
            if doc is None:
                continue
            source = f"{p} document {i + 1}"
            if not isinstance(doc, dict):
                raise PlacementInputError(
                    "File", str(p), f"document {i + 1}", "expected a mapping with apiVersion and kind"
                )
            if doc.get("kind") == "List":
                items = doc.get("items") or []
                if not isinstance(items, list):
                    raise PlacementInputError("File", str(p), f"document {i + 1}.items", "expected a list")
                out.extend((f"{source} item {j}", item) for j, item in enumerate(items))
            else:
                out.append((source, doc))
    return out


def parse_objects(docs: Iterable[tuple[str, Any] | Mapping[str, Any]]) -> Manifests:
    """Validate documents against the API types; unknown kinds and bad fields are errors."""
    found = Manifests()
    for entry in docs:
        source, doc = entry if isinstance(entry, tuple) else ("input", entry)
        if not isinstance(doc, Mapping):
            raise PlacementInputError("Object", source, "", "expected a mapping with apiVersion and kind")
        kind = doc.get("kind")
        meta = doc.get("metadata")
        name = meta.get("name") if isinstance(meta, Mapping) else None
        if kind in _IGNORED_KINDS:
            continue
        if kind not in _KINDS:
            raise PlacementInputError(
                str(kind or "Object"),
                name or source,
                "kind",
                f"unsupported kind {kind!r} (want one of {', '.join(sorted(_KINDS))})",
            )
        try:
            obj = _KINDS[kind].model_validate(doc)
        except ValidationError as e:
            err = e.errors()[0]
            more = f" (and {e.error_count() - 1} more)" if e.error_count() > 1 else ""
            raise PlacementInputError(str(kind), name or source, _loc(err["loc"]), err["msg"] + more) from None
        if not name:
            raise PlacementInputError(str(kind), source, "metadata.name", "is required")
        if isinstance(obj, v1.Cluster):
            found.clusters.append(obj)
        elif isinstance(obj, v1.Dataset):
            found.datasets.append(obj)
        elif isinstance(obj, v1.Topology):
            found.topologies.append(obj)
        elif isinstance(obj, v1.Workload):
            found.workloads.append(obj)
        elif isinstance(obj, queue_wire.Queue):
            found.queues.append(obj)
        elif isinstance(obj, queue_wire.PriorityClass):
            found.priority_classes.append(obj)
    return found


# ---------------------------------------------------------------- converting


def _name(obj: v1.Cluster | v1.Dataset | v1.Topology | v1.Workload) -> str:
    return obj.metadata.name or ""


def _cap(value: object) -> CapacityType:
    """Capacity types arrive as strings from YAML but as enum members from defaults or code."""
    return cast(CapacityType, getattr(value, "value", value))


def _ready(c: v1.Cluster) -> tuple[bool, str | None]:
    for cond in (c.status.conditions if c.status else None) or []:
        if cond.type == READY_CONDITION:
            if cond.status == "True":
                return True, None
            return False, cond.reason or cond.message or f"Ready={cond.status}"
    return False, "no Ready condition reported"


def _nodes_of(pool: v1.GPUPool, pool_name: str) -> tuple[GpuNode, ...]:
    if pool.nodes:
        return tuple(GpuNode(n.name, n.gpus, n.free, n.ready, n.schedulable) for n in pool.nodes)
    per_node = pool.gpus_per_node or 0
    total = pool.total or pool.allocatable
    if per_node <= 0 or total <= 0:
        return ()
    count = -(-total // per_node)
    free = min(pool.free, count * per_node)
    base, extra = divmod(free, count)
    return tuple(GpuNode(f"{pool_name}-{i}", per_node, base + (1 if i < extra else 0)) for i in range(count))


def cluster_from_api(c: v1.Cluster) -> ClusterInfo:
    name = _name(c)
    ready, why = _ready(c)
    prices = c.spec.prices or {}
    pools: list[NodePool] = []
    used: set[str] = set()
    for i, p in enumerate((c.status.gpu_pools if c.status else None) or []):
        if not p.model.strip():
            raise PlacementInputError("Cluster", name, f"status.gpuPools[{i}].model", "is required")
        pool_name = p.name or f"{p.model.lower()}-{p.capacity_type}"
        if pool_name in used:
            pool_name = f"{pool_name}-{i}"
        used.add(pool_name)
        cap = _cap(p.capacity_type)
        price = p.price_per_gpu_hour if p.price_per_gpu_hour is not None else prices.get(cap)
        if price is not None and price < 0:
            raise PlacementInputError("Cluster", name, f"spec.prices.{cap}", f"must be >= 0, got {price}")
        pools.append(
            NodePool(
                name=pool_name,
                model=p.model,
                capacity_type=cap,
                nodes=_nodes_of(p, f"{name}-{pool_name}"),
                memory_gib=float(p.memory_gi_b or catalogue_memory(p.model) or 0),
                price_per_gpu_hour=price,
                gpus_per_node=p.gpus_per_node,
                taints=tuple(Taint(t.key, t.effect, t.value) for t in p.taints or []),
            )
        )
    return ClusterInfo(
        name=name,
        pools=tuple(pools),
        region=c.spec.region or (c.status.region if c.status else None),
        zone=c.spec.zone or (c.status.zone if c.status else None),
        site=c.spec.site,
        labels=dict(c.metadata.labels or {}),
        taints=tuple(Taint(t.key, t.effect, t.value) for t in c.spec.taints or []),
        ready=ready,
        not_ready_reason=why,
    )


def topology_from_api(objs: Sequence[v1.Topology]) -> Topology:
    """One topology from all Topology objects (their sites and links together)."""
    sites: list[Site] = []
    links: list[Link] = []
    seen: dict[str, str] = {}
    for t in objs:
        for i, s in enumerate(t.spec.sites):
            if s.name in seen:
                raise PlacementInputError(
                    "Topology",
                    _name(t),
                    f"spec.sites[{i}].name",
                    f'site "{s.name}" is also defined in Topology "{seen[s.name]}"',
                )
            seen[s.name] = _name(t)
            sites.append(Site(s.name, s.type, s.parent))
    names = {s.name for s in sites}
    for t in objs:
        for i, ln in enumerate(t.spec.links):
            for end, wire in ((ln.source, "from"), (ln.target, "to")):
                if end not in names:
                    raise PlacementInputError("Topology", _name(t), f"spec.links[{i}].{wire}", f'unknown site "{end}"')
            links.append(Link(ln.source, ln.target, ln.bandwidth_gbps, ln.egress_cost_per_gb))
    label = ",".join(_name(t) for t in objs) or None
    return Topology(tuple(sites), tuple(links), name=label)


def dataset_from_api(d: v1.Dataset) -> Dataset:
    return Dataset(
        name=_name(d),
        namespace=d.metadata.namespace or DEFAULT_NAMESPACE,
        size_gib=d.spec.size_gi_b,
        sites=tuple(loc.site for loc in d.spec.locations),
        shared_with=frozenset(d.spec.shared_with or ()),
    )


def snapshot_from_api(
    clusters: Sequence[v1.Cluster],
    datasets: Sequence[v1.Dataset] = (),
    topologies: Sequence[v1.Topology] = (),
    *,
    convert: Callable[[v1.Cluster], ClusterInfo] | None = None,
) -> FleetSnapshot:
    """The engine's snapshot of these API objects. `convert` replaces `cluster_from_api` (the
    hub's controller passes one that reuses the conversion of a Cluster version it has seen)."""
    converted = [dataset_from_api(d) for d in datasets]
    by_key: dict[str, Dataset] = {}
    for d in converted:
        if d.key in by_key:
            raise PlacementInputError("Dataset", d.name, "metadata.name", f'duplicate Dataset "{d.key}"')
        by_key[d.key] = d
    return FleetSnapshot(
        clusters=tuple(map(convert or cluster_from_api, clusters)),
        topology=topology_from_api(topologies),
        datasets=by_key,
    )


def _selector(sel: v1.LabelSelector | None) -> LabelSelector | None:
    if sel is None:
        return None
    return LabelSelector(
        tuple(sorted((sel.match_labels or {}).items())),
        tuple(LabelRequirement(r.key, r.operator, tuple(r.values or ())) for r in sel.match_expressions or []),
    )


def workload_from_api(w: v1.Workload, snapshot: FleetSnapshot, known: frozenset[str] | None = None) -> WorkloadRequest:
    """A workload's needs, checked against the models and datasets the snapshot knows."""
    name = _name(w)
    spec = w.spec
    namespace = w.metadata.namespace or DEFAULT_NAMESPACE
    models = known if known is not None else known_models(snapshot.fleet_models())
    allowed_models = spec.gpu.models or []
    for field_name, values in (("models", allowed_models), ("preferredModels", spec.gpu.preferred_models or [])):
        for i, m in enumerate(values):
            if canonical_model(m) not in models:
                raise PlacementInputError(
                    "Workload",
                    name,
                    f"spec.gpu.{field_name}[{i}]",
                    f'unknown GPU model "{m}" (known: {", ".join(sorted(models))})',
                )
    if allowed_models:
        allowed_set = {canonical_model(m) for m in allowed_models}
        for i, m in enumerate(spec.gpu.preferred_models or []):
            if canonical_model(m) not in allowed_set:
                raise PlacementInputError(
                    "Workload", name, f"spec.gpu.preferredModels[{i}]", f'"{m}" is not among spec.gpu.models'
                )
    refs = []
    for i, ref in enumerate(spec.datasets or []):
        key = f"{ref.namespace or namespace}/{ref.name}"
        if snapshot.dataset_for(namespace, key) is None:
            raise PlacementInputError("Workload", name, f"spec.datasets[{i}]", f'unknown Dataset "{key}"')
        refs.append(key)
    allowed = frozenset(_cap(c) for c in spec.capacity_types.allowed)
    preferred = frozenset(_cap(c) for c in spec.capacity_types.preferred or [])
    if not allowed:
        raise PlacementInputError("Workload", name, "spec.capacityTypes.allowed", "must not be empty")
    if "spot" in preferred and "spot" not in allowed:
        raise PlacementInputError(
            "Workload", name, "spec.capacityTypes.preferred", "prefers spot but spec.capacityTypes.allowed excludes it"
        )
    if "spot" not in allowed:
        policy = CapacityPolicy.ON_DEMAND_ONLY
    elif "spot" in preferred:
        policy = CapacityPolicy.SPOT_PREFERRED
    else:
        policy = CapacityPolicy.SPOT_ALLOWED
    return WorkloadRequest(
        name=name,
        namespace=namespace,
        replicas=spec.replicas,
        gpus_per_replica=spec.gpu.count,
        models=tuple(allowed_models),
        preferred_models=tuple(spec.gpu.preferred_models or ()),
        min_memory_gib=float(spec.gpu.min_memory_gi_b or 0),
        mode=spec.placement_mode,
        max_clusters=spec.max_clusters,
        capacity_policy=policy,
        allowed_capacity=allowed,
        preferred_capacity=preferred or None,
        priority=spec.priority or 0,
        selector=_selector(spec.cluster_selector),
        tolerations=tuple(Toleration(t.key, t.operator, t.value, t.effect) for t in spec.tolerations or []),
        datasets=tuple(refs),
    )


def inputs_from_manifests(found: Manifests) -> tuple[FleetSnapshot, list[WorkloadRequest]]:
    snapshot = snapshot_from_api(found.clusters, found.datasets, found.topologies)
    known = known_models(snapshot.fleet_models())
    return snapshot, [workload_from_api(w, snapshot, known) for w in found.workloads]


def load_inputs(paths: Iterable[Path | str]) -> tuple[FleetSnapshot, list[WorkloadRequest]]:
    """Read manifest files into a snapshot and the workloads to place."""
    return inputs_from_manifests(parse_objects(load_documents(paths)))
