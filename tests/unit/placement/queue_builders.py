"""Fluent builders for queue fixtures: ``a_queue("team-a").flavor("H100", nominal=16).cohort("c")``,
and helpers named after what they run or assert. Module name is unique across tests/."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from placement_builders import a_workload

from placement import Engine, FleetSnapshot
from placement.model import CapacityType
from placement.queueing import (
    Admission,
    AdmissionResult,
    AdmittedWorkload,
    Flavor,
    FlavorQuota,
    PreemptionPolicy,
    Queue,
    QueuedWorkload,
)
from placement.queueing.capacity import release


class QueueBuilder:
    def __init__(self, name: str) -> None:
        self.name = name
        self.flavors: list[FlavorQuota] = []
        self.kw: dict[str, Any] = {}

    def flavor(
        self,
        model: str = "H100",
        capacity: CapacityType = "on-demand",
        nominal: int = 0,
        borrow: int | None = None,
        lend: int | None = None,
        region: str | None = None,
    ) -> QueueBuilder:
        self.flavors.append(FlavorQuota(Flavor.of(model, capacity, region), nominal, borrow, lend))
        return self

    def cohort(self, name: str) -> QueueBuilder:
        self.kw["cohort"] = name
        return self

    def weight(self, weight: float) -> QueueBuilder:
        self.kw["weight"] = weight
        return self

    def strict_fifo(self) -> QueueBuilder:
        self.kw["strategy"] = "StrictFIFO"
        return self

    def preempts(self, within: str = "Never", reclaim: str = "Never") -> QueueBuilder:
        self.kw["preemption"] = PreemptionPolicy(within, reclaim)  # type: ignore[arg-type]
        return self

    def namespaces(self, *names: str) -> QueueBuilder:
        self.kw["namespaces"] = frozenset(names)
        return self

    def default_for(self, *names: str) -> QueueBuilder:
        self.kw["default_for"] = frozenset(names)
        return self

    def build(self) -> Queue:
        return Queue(self.name, tuple(self.flavors), **self.kw)


def a_queue(name: str) -> QueueBuilder:
    return QueueBuilder(name)


def pending(
    name: str, queue: str | None, gpus: int = 8, replicas: int = 1, priority: int = 0, created: int = 0, **kw: Any
) -> QueuedWorkload:
    return QueuedWorkload(
        a_workload(name, gpus=gpus, replicas=replicas, priority=priority, **kw), queue, priority, created
    )


def running(
    name: str,
    queue: str,
    gpus: int = 8,
    priority: int = 0,
    admitted: int = 0,
    flavor: Flavor | None = None,
    **kw: Any,
) -> AdmittedWorkload:
    return AdmittedWorkload(
        f"default/{name}", queue, flavor or Flavor.of("H100", "on-demand"), gpus, priority, admitted, **kw
    )


def admit(
    snapshot: FleetSnapshot,
    queues: list[QueueBuilder | Queue],
    workloads: list[QueuedWorkload],
    admitted: list[AdmittedWorkload] | None = None,
) -> AdmissionResult:
    built = [q.build() if isinstance(q, QueueBuilder) else q for q in queues]
    return Admission(built).decide(snapshot, workloads, admitted or [])


def admitted_names(result: AdmissionResult) -> list[str]:
    """Names (without namespace) of the workloads admitted, in the order they were."""
    return [d.workload.request.name for d in result.admitted]


def phases(result: AdmissionResult) -> dict[str, str]:
    return {d.workload.request.name: d.phase for d in result.decisions}


def reason_of(result: AdmissionResult, name: str) -> str:
    return next(d.message for d in result.decisions if d.workload.request.name == name)


def evicted_names(result: AdmissionResult) -> list[str]:
    return [e.key.split("/", 1)[1] for e in result.evictions]


def gpus_admitted_by_queue(result: AdmissionResult) -> dict[str, int]:
    out: dict[str, int] = {}
    for d in result.admitted:
        out[d.queue or ""] = out.get(d.queue or "", 0) + d.workload.gpus
    return out


def still_running(result: AdmissionResult, admitted: list[AdmittedWorkload] | None = None) -> list[AdmittedWorkload]:
    """What holds quota after a pass: the survivors of ``admitted`` plus what the pass admitted,
    with their placements (so the next pass can evict them)."""
    gone = {e.key for e in result.evictions}
    out = [a for a in admitted or [] if a.key not in gone]
    start = max((int(a.admitted) for a in out), default=0) + 1
    for i, d in enumerate(result.admitted):
        out.append(
            AdmittedWorkload(
                d.key,
                d.queue or "",
                d.flavor.flavor if d.flavor else None,
                d.workload.gpus,
                d.workload.priority,
                start + i,
                d.assignments,
            )
        )
    return out


def fleet_after(
    snapshot: FleetSnapshot, result: AdmissionResult | None, finished: list[AdmittedWorkload] | None = None
) -> FleetSnapshot:
    """The fleet the clusters would report after a pass (``snapshot`` is the one it ran on):
    what it booked taken, what evictions and ``finished`` workloads held given back."""
    state = result.session.state.copy() if result is not None else Engine().session(snapshot).state
    release(state, [x for a in finished or [] for x in a.assignments])
    free = iter(int(f) for f in state.node_free)
    clusters = tuple(
        replace(
            c,
            pools=tuple(replace(p, nodes=tuple(replace(n, free=next(free)) for n in p.nodes)) for p in c.pools),
        )
        for c in snapshot.clusters
    )
    return replace(snapshot, clusters=clusters)
