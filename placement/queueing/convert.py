"""Converters from the wire objects (Queue, PriorityClass, Workload) to the queueing model.

The hub's admission controller and the what-if CLI call the same functions. Every error names
the object and the wire field, e.g.
``Queue "team-a": spec.resourceGroups[0].flavors[1].lendingLimit: 20 exceeds nominalQuota 16``.

Mapping notes:

- A Workload's queue is ``spec.queue``; None means its namespace's default queue.
- Its priority is ``spec.priority`` when the manifest sets it (a per-workload override),
  else the value of the PriorityClass named by the label ``fleetplane.io/priority-class``,
  else the global-default class's value, else 0.
- Its creation order is ``metadata.creationTimestamp`` (RFC 3339 sorts as text), else the
  order the caller read it in.
- A Workload whose ``status.phase`` is Placed or Running and whose ``status.placement``
  lists clusters holds quota (:func:`admitted_from_api`): its flavor is the first of its
  queue's flavors that one of its clusters' pools offers (model family and capacity type as
  recorded, region of the cluster).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import cast

from fleetplane_types import v1alpha1 as v1
from placement.catalogue import canonical_model
from placement.decision import ClusterAssignment
from placement.errors import PlacementInputError
from placement.model import CapacityType, FleetSnapshot, WorkloadRequest
from placement.queueing import wire
from placement.queueing.model import (
    PRIORITY_CLASS_LABEL,
    AdmittedWorkload,
    Flavor,
    FlavorQuota,
    PreemptionPolicy,
    PriorityClass,
    Queue,
    QueuedWorkload,
    resolve_priority,
)


def queue_from_api(q: wire.Queue) -> Queue:
    name = q.metadata.name or ""
    spec = q.spec
    flavors: list[FlavorQuota] = []
    for g, group in enumerate(spec.resource_groups):
        for j, f in enumerate(group.flavors):
            flavors.append(
                FlavorQuota(
                    flavor=Flavor.of(
                        f.gpu_model, cast(CapacityType, getattr(f.capacity_type, "value", f.capacity_type)), f.region
                    ),
                    nominal=f.nominal_quota,
                    borrowing_limit=f.borrowing_limit,
                    lending_limit=f.lending_limit,
                    name=f.name,
                    source=f"spec.resourceGroups[{g}].flavors[{j}]",
                )
            )
    return Queue(
        name=name,
        flavors=tuple(flavors),
        cohort=spec.cohort or None,
        weight=spec.fair_sharing.weight if spec.fair_sharing else 1.0,
        strategy=spec.queueing_strategy,
        namespaces=frozenset(spec.namespaces) if spec.namespaces is not None else None,
        default_for=frozenset(spec.default_for or ()),
        preemption=PreemptionPolicy(spec.preemption.within_queue, spec.preemption.reclaim_within_cohort),
    )


def priority_class_from_api(pc: wire.PriorityClass) -> PriorityClass:
    return PriorityClass(pc.metadata.name or "", pc.value, pc.global_default)


def priority_classes_from_api(objs: Sequence[wire.PriorityClass]) -> dict[str, PriorityClass]:
    out: dict[str, PriorityClass] = {}
    for obj in objs:
        pc = priority_class_from_api(obj)
        if pc.name in out:
            raise PlacementInputError("PriorityClass", pc.name, "metadata.name", "duplicate PriorityClass name")
        out[pc.name] = pc
    defaults = sorted(p.name for p in out.values() if p.global_default)
    if len(defaults) > 1:
        raise PlacementInputError(
            "PriorityClass", defaults[1], "globalDefault", f'only one class may be the default ("{defaults[0]}" is)'
        )
    return out


def workload_priority(w: v1.Workload, classes: Mapping[str, PriorityClass]) -> int:
    override = w.spec.priority
    label = (w.metadata.labels or {}).get(PRIORITY_CLASS_LABEL)
    return resolve_priority(w.metadata.name or "", override, label, classes)


def queued_from_api(
    w: v1.Workload, request: WorkloadRequest, classes: Mapping[str, PriorityClass], order: int = 0
) -> QueuedWorkload:
    """A pending workload; ``request`` is :func:`placement.manifests.workload_from_api`'s answer.
    The request's priority becomes the resolved one, so the engine's explanation agrees."""
    priority = workload_priority(w, classes)
    return QueuedWorkload(
        request=replace(request, priority=priority),
        queue=w.spec.queue or None,
        priority=priority,
        created=w.metadata.creation_timestamp or order,
    )


def is_holding_quota(w: v1.Workload) -> bool:
    st = w.status
    return bool(st and st.phase in ("Placed", "Running") and st.placement and st.placement.clusters)


def admitted_from_api(
    w: v1.Workload,
    queued: QueuedWorkload,
    queue: Queue | None,
    snapshot: FleetSnapshot,
    order: int = 0,
) -> AdmittedWorkload:
    """A Workload that runs now, as quota it holds (see the module notes for its flavor)."""
    assert w.status is not None and w.status.placement is not None
    clusters = {c.name: c for c in snapshot.clusters}
    req = queued.request
    flavor: Flavor | None = None
    assignments: list[ClusterAssignment] = []
    for i, cp in enumerate(w.status.placement.clusters or []):
        cluster = clusters.get(cp.name)
        if cluster is None:
            continue  # the cluster left the fleet; its GPUs are not in the snapshot either
        cap = cp.capacity_type
        pools = [
            p
            for p in cluster.pools
            if (cap is None or p.capacity_type == cap)
            and (not req.models or canonical_model(p.model) in req.canonical_models)
        ]
        if not pools:
            raise PlacementInputError(
                "Workload",
                req.name,
                f"status.placement.clusters[{i}]",
                f'cluster "{cp.name}" has no {cap or ""} pool of the models the workload allows'.replace("  ", " "),
            )
        pool = pools[0]
        here = Flavor.of(pool.model, pool.capacity_type, None)
        regional = Flavor.of(pool.model, pool.capacity_type, cluster.region)
        if queue is not None:
            for fq in queue.flavors:
                if fq.flavor in (here, regional):
                    pool_flavor = fq.flavor
                    break
            else:
                pool_flavor = here
        else:
            pool_flavor = here
        flavor = flavor or pool_flavor
        assignments.append(
            ClusterAssignment(
                cluster=cp.name,
                replicas=cp.replicas,
                capacity_type=pool.capacity_type,
                pool=pool.name,
                gpu_model=canonical_model(pool.model),
                gpus_per_replica=req.gpus_per_replica,
                price_per_gpu_hour=pool.price_per_gpu_hour,
            )
        )
    queue_name = queue.name if queue is not None else (queued.queue or "")
    return AdmittedWorkload(
        key=req.key,
        queue=queue_name,
        flavor=flavor if req.total_gpus else None,
        gpus=req.total_gpus,
        priority=queued.priority,
        admitted=w.metadata.creation_timestamp or order,
        assignments=tuple(assignments),
    )
