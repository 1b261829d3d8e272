"""Fluent builders for placement fixtures: ``a_cluster("east").pool("H100", nodes=2).reserved()``.

Module name is unique across tests/ because test folders have no ``__init__.py``.
"""

from __future__ import annotations

from typing import Any

from placement import (
    CapacityPolicy,
    ClusterInfo,
    Dataset,
    Decision,
    Engine,
    FleetSnapshot,
    GpuNode,
    Link,
    NodePool,
    Site,
    Taint,
    Topology,
    WorkloadRequest,
)
from placement.model import CapacityType


class ClusterBuilder:
    def __init__(self, name: str) -> None:
        self.name = name
        self.pools: list[NodePool] = []
        self.kw: dict[str, Any] = {}

    def pool(
        self,
        model: str = "H100",
        nodes: int = 1,
        gpus_per_node: int = 8,
        free: int | list[int] | None = None,
        capacity: CapacityType = "on-demand",
        price: float | None = 4.0,
        memory: float = 80.0,
        name: str | None = None,
        taints: tuple[Taint, ...] = (),
    ) -> ClusterBuilder:
        frees = [free] * nodes if isinstance(free, int) else (free or [gpus_per_node] * nodes)
        pname = name or f"{model.lower()}-{capacity}-{len(self.pools)}"
        self.pools.append(
            NodePool(
                name=pname,
                model=model,
                capacity_type=capacity,
                nodes=tuple(GpuNode(f"{self.name}-{pname}-{i}", gpus_per_node, f) for i, f in enumerate(frees)),
                memory_gib=memory,
                price_per_gpu_hour=price,
                gpus_per_node=gpus_per_node,
                taints=taints,
            )
        )
        return self

    def gpus(self, model: str, per_node: int, nodes: int = 1, **kw: Any) -> ClusterBuilder:
        return self.pool(model, nodes=nodes, gpus_per_node=per_node, **kw)

    def at(self, site: str) -> ClusterBuilder:
        self.kw["region"] = site
        return self

    def labels(self, **labels: str) -> ClusterBuilder:
        self.kw["labels"] = labels
        return self

    def taint(self, key: str, effect: str = "NoSchedule", value: str | None = None) -> ClusterBuilder:
        self.kw["taints"] = (*self.kw.get("taints", ()), Taint(key, effect, value))  # type: ignore[arg-type]
        return self

    def not_ready(self, reason: str = "HeartbeatLost") -> ClusterBuilder:
        self.kw.update(ready=False, not_ready_reason=reason)
        return self

    def build(self) -> ClusterInfo:
        return ClusterInfo(self.name, tuple(self.pools), **self.kw)


def a_cluster(name: str) -> ClusterBuilder:
    return ClusterBuilder(name)


def fleet(
    *clusters: ClusterBuilder | ClusterInfo, topology: Topology | None = None, datasets: list[Dataset] | None = None
) -> FleetSnapshot:
    built = tuple(c.build() if isinstance(c, ClusterBuilder) else c for c in clusters)
    return FleetSnapshot(built, topology or Topology(), {d.key: d for d in datasets or ()})


def a_workload(name: str = "w", gpus: int = 8, replicas: int = 1, **kw: Any) -> WorkloadRequest:
    return WorkloadRequest(name=name, gpus_per_replica=gpus, replicas=replicas, **kw)


SPOT_OK = CapacityPolicy.SPOT_ALLOWED
SPOT_PREFERRED = CapacityPolicy.SPOT_PREFERRED


def two_regions(bandwidth_gbps: float = 10.0, egress: float = 0.02) -> Topology:
    return Topology(
        (Site("east", "region"), Site("west", "region"), Site("far", "region")),
        (Link("east", "west", bandwidth_gbps, egress),),
    )


def place(snapshot: FleetSnapshot, *workloads: WorkloadRequest, profile: str = "default", **kw: Any) -> list[Decision]:
    return Engine(profile).place_batch(snapshot, list(workloads), **kw)


def place_one(snapshot: FleetSnapshot, workload: WorkloadRequest, profile: str = "default") -> Decision:
    return Engine(profile).place_batch(snapshot, [workload])[0]


def raw_scores(decision: Decision) -> dict[str, dict[str, float]]:
    """cluster → plugin → raw score, for every feasible cluster."""
    return {
        c["name"]: {p["name"]: p["score"] for p in c["plugins"]}
        for c in decision.to_dict()["clusters"]
        if c["feasible"]
    }


def removed(decision: Decision) -> dict[str, tuple[str, str]]:
    """cluster → (filter, short reason), for every filtered cluster."""
    return {c["name"]: (c["filter"], c["reason"]) for c in decision.to_dict()["clusters"] if not c["feasible"]}


def placed_on(decision: Decision) -> dict[str, int]:
    return {a.cluster: a.replicas for a in decision.assignments}
