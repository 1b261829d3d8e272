"""The engine's typed inputs: a fleet snapshot, a topology, datasets, workloads, reservations.

These are plain frozen dataclasses, independent of the wire types in ``fleetplane_types`` (the
converters in :mod:`placement.manifests` map one to the other). Each validates itself on
construction and raises :class:`~placement.errors.PlacementInputError` naming the object and
field, so the engine never has to second-guess its input.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Literal

import networkx as nx

from placement.catalogue import canonical_model, known_models
from placement.errors import PlacementInputError

CapacityType = Literal["spot", "on-demand", "reserved"]
CAPACITY_TYPES: tuple[CapacityType, ...] = ("spot", "on-demand", "reserved")
TaintEffect = Literal["NoSchedule", "PreferNoSchedule", "NoExecute"]
PlacementMode = Literal["Gang", "Divisible"]


class CapacityPolicy(str, Enum):
    """Which capacity types a workload accepts, as the issue names them."""

    ON_DEMAND_ONLY = "on-demand-only"
    SPOT_ALLOWED = "spot-allowed"
    SPOT_PREFERRED = "spot-preferred"


# ---------------------------------------------------------------- clusters


@dataclass(frozen=True, slots=True)
class GpuNode:
    """One node of a pool. Only ready, schedulable nodes offer their free GPUs."""

    name: str
    gpus: int
    free: int
    ready: bool = True
    schedulable: bool = True

    @property
    def usable_free(self) -> int:
        return self.free if (self.ready and self.schedulable) else 0


@dataclass(frozen=True, slots=True)
class NodePool:
    """GPUs of one model and one capacity type in a cluster, with free GPUs per node.

    ``price_per_gpu_hour`` is what the provider charges; ``None`` means nobody reported a
    price (the cost plugin then scores the pool as the most expensive). Reserved capacity is
    already paid for, so the engine treats its marginal price as zero whatever is reported.
    """

    name: str
    model: str
    capacity_type: CapacityType
    nodes: tuple[GpuNode, ...]
    memory_gib: float = 0.0
    price_per_gpu_hour: float | None = None
    gpus_per_node: int | None = None
    taints: tuple[Taint, ...] = ()
    """Taints every node of the pool carries (agents report them per pool, e.g. a spot
    pool's `karpenter.sh/capacity-type=spot:NoSchedule`); the pool-taints filter honours them."""

    @staticmethod
    def uniform(
        name: str,
        model: str,
        capacity_type: CapacityType,
        nodes: int,
        gpus_per_node: int,
        free_per_node: list[int] | int | None = None,
        memory_gib: float = 0.0,
        price_per_gpu_hour: float | None = None,
    ) -> NodePool:
        """A pool of identical nodes; ``free_per_node`` is one count for all or one per node."""
        if free_per_node is None:
            frees = [gpus_per_node] * nodes
        elif isinstance(free_per_node, int):
            frees = [free_per_node] * nodes
        else:
            frees = list(free_per_node)
        return NodePool(
            name=name,
            model=model,
            capacity_type=capacity_type,
            nodes=tuple(GpuNode(f"{name}-{i}", gpus_per_node, f) for i, f in enumerate(frees)),
            memory_gib=memory_gib,
            price_per_gpu_hour=price_per_gpu_hour,
            gpus_per_node=gpus_per_node,
        )

    @property
    def free(self) -> int:
        return sum(n.usable_free for n in self.nodes)

    @property
    def total(self) -> int:
        return sum(n.gpus for n in self.nodes)


@dataclass(frozen=True, slots=True)
class Taint:
    key: str
    effect: TaintEffect
    value: str | None = None

    def __str__(self) -> str:
        return f"{self.key}={self.value or ''}:{self.effect}"


@dataclass(frozen=True, slots=True)
class Toleration:
    """Kubernetes toleration semantics: empty key with Exists tolerates everything."""

    key: str | None = None
    operator: Literal["Equal", "Exists"] = "Equal"
    value: str | None = None
    effect: TaintEffect | None = None

    def tolerates(self, taint: Taint) -> bool:
        if self.effect is not None and self.effect != taint.effect:
            return False
        if self.key is None or self.key == "":
            return self.operator == "Exists"
        if self.key != taint.key:
            return False
        return self.operator == "Exists" or (self.value or "") == (taint.value or "")


@dataclass(frozen=True, slots=True)
class LabelRequirement:
    key: str
    operator: Literal["In", "NotIn", "Exists", "DoesNotExist"]
    values: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class LabelSelector:
    """Same meaning as a Kubernetes LabelSelector: every term must hold."""

    match_labels: tuple[tuple[str, str], ...] = ()
    match_expressions: tuple[LabelRequirement, ...] = ()

    @staticmethod
    def of(labels: Mapping[str, str] | None = None, *expressions: LabelRequirement) -> LabelSelector:
        return LabelSelector(tuple(sorted((labels or {}).items())), tuple(expressions))

    def matches(self, labels: Mapping[str, str]) -> bool:
        for key, value in self.match_labels:
            if labels.get(key) != value:
                return False
        for req in self.match_expressions:
            have = labels.get(req.key)
            if req.operator == "In" and have not in req.values:
                return False
            if req.operator == "NotIn" and have is not None and have in req.values:
                return False
            if req.operator == "Exists" and have is None:
                return False
            if req.operator == "DoesNotExist" and have is not None:
                return False
        return True


@dataclass(frozen=True, slots=True)
class ClusterInfo:
    """One member cluster as the engine sees it: where it is, what it tolerates, its GPUs."""

    name: str
    pools: tuple[NodePool, ...] = ()
    region: str | None = None
    zone: str | None = None
    site: str | None = None
    labels: Mapping[str, str] = field(default_factory=dict)
    taints: tuple[Taint, ...] = ()
    ready: bool = True
    not_ready_reason: str | None = None

    def __post_init__(self) -> None:
        if not self.name:
            raise PlacementInputError("Cluster", None, "metadata.name", "is required")
        seen: set[str] = set()
        for i, pool in enumerate(self.pools):
            where = f"status.gpuPools[{i}]"
            if pool.name in seen:
                raise PlacementInputError("Cluster", self.name, f"{where}.name", f'duplicate pool name "{pool.name}"')
            seen.add(pool.name)
            if not pool.model:
                raise PlacementInputError("Cluster", self.name, f"{where}.model", "is required")
            if pool.capacity_type not in CAPACITY_TYPES:
                raise PlacementInputError(
                    "Cluster",
                    self.name,
                    f"{where}.capacityType",
                    f'unknown capacity type "{pool.capacity_type}" (want one of {", ".join(CAPACITY_TYPES)})',
                )
            if pool.memory_gib < 0:
                raise PlacementInputError(
                    "Cluster", self.name, f"{where}.memoryGiB", f"must be >= 0, got {pool.memory_gib}"
                )
            if pool.price_per_gpu_hour is not None and pool.price_per_gpu_hour < 0:
                raise PlacementInputError(
                    "Cluster", self.name, f"{where}.pricePerGpuHour", f"must be >= 0, got {pool.price_per_gpu_hour}"
                )
            if pool.gpus_per_node is not None and pool.gpus_per_node < 0:
                raise PlacementInputError(
                    "Cluster", self.name, f"{where}.gpusPerNode", f"must be >= 0, got {pool.gpus_per_node}"
                )
            for j, node in enumerate(pool.nodes):
                nwhere = f"{where}.nodes[{j}]"
                if node.gpus < 0:
                    raise PlacementInputError("Cluster", self.name, f"{nwhere}.gpus", f"must be >= 0, got {node.gpus}")
                if node.free < 0:
                    raise PlacementInputError("Cluster", self.name, f"{nwhere}.free", f"must be >= 0, got {node.free}")
                if node.free > node.gpus:
                    raise PlacementInputError(
                        "Cluster", self.name, f"{nwhere}.free", f"{node.free} free exceeds the node's {node.gpus} GPUs"
                    )

    @property
    def free_gpus(self) -> int:
        return sum(p.free for p in self.pools)


# ---------------------------------------------------------------- topology and data


@dataclass(frozen=True, slots=True)
class Site:
    name: str
    kind: Literal["region", "zone", "storage", "other"] = "other"
    parent: str | None = None


@dataclass(frozen=True, slots=True)
class Link:
    """A network link; links are symmetric (data may flow either way at the same price)."""

    source: str
    target: str
    bandwidth_gbps: float
    egress_cost_per_gb: float = 0.0


#: A zone reaches its region (and vice versa) without an explicit link: same-region traffic is
#: free on every major cloud and far faster than any inter-region link.
IMPLICIT_PARENT_LINK_GBPS = 100.0


@dataclass(frozen=True, slots=True)
class Topology:
    """Sites (regions, zones, storage locations) and the links between them."""

    sites: tuple[Site, ...] = ()
    links: tuple[Link, ...] = ()
    name: str | None = None

    def __post_init__(self) -> None:
        names = {s.name for s in self.sites}
        for i, site in enumerate(self.sites):
            if site.parent is not None and site.parent not in names:
                raise PlacementInputError(
                    "Topology", self.name, f"spec.sites[{i}].parent", f'unknown site "{site.parent}"'
                )
        for i, link in enumerate(self.links):
            for attr, wire in (("source", "from"), ("target", "to")):
                site = getattr(link, attr)
                if site not in names:
                    raise PlacementInputError(
                        "Topology", self.name, f"spec.links[{i}].{wire}", f'unknown site "{site}"'
                    )
            if link.bandwidth_gbps <= 0:
                raise PlacementInputError(
                    "Topology", self.name, f"spec.links[{i}].bandwidthGbps", f"must be > 0, got {link.bandwidth_gbps}"
                )
            if link.egress_cost_per_gb < 0:
                raise PlacementInputError(
                    "Topology",
                    self.name,
                    f"spec.links[{i}].egressCostPerGB",
                    f"must be >= 0, got {link.egress_cost_per_gb}",
                )

    @property
    def site_names(self) -> frozenset[str]:
        return frozenset(s.name for s in self.sites)

    def graph(self) -> nx.Graph:
        """The networkx graph: edges carry ``bandwidth_gbps`` and ``egress_cost_per_gb``.

        Where two links join the same sites the cheaper one (by egress, then the faster)
        wins: a transfer would use it.
        """
        g: nx.Graph = nx.Graph()
        for site in self.sites:
            g.add_node(site.name, kind=site.kind)
        for site in self.sites:
            if site.parent is not None:
                g.add_edge(site.name, site.parent, bandwidth_gbps=IMPLICIT_PARENT_LINK_GBPS, egress_cost_per_gb=0.0)
        for link in self.links:
            old = g.get_edge_data(link.source, link.target)
            new = {"bandwidth_gbps": link.bandwidth_gbps, "egress_cost_per_gb": link.egress_cost_per_gb}
            if old is None or (link.egress_cost_per_gb, -link.bandwidth_gbps) < (
                old["egress_cost_per_gb"],
                -old["bandwidth_gbps"],
            ):
                g.add_edge(link.source, link.target, **new)
        return g


@dataclass(frozen=True, slots=True)
class Dataset:
    name: str
    size_gib: float
    sites: tuple[str, ...]
    namespace: str = "default"
    shared_with: frozenset[str] = frozenset()
    """Other namespaces whose workloads may read it (spec.sharedWith, granted by an admin)."""

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"

    def readable_from(self, namespace: str) -> bool:
        """Workloads read Datasets of their own namespace, and those shared with it."""
        return namespace == self.namespace or namespace in self.shared_with

    def __post_init__(self) -> None:
        if self.size_gib < 0:
            raise PlacementInputError("Dataset", self.name, "spec.sizeGiB", f"must be >= 0, got {self.size_gib}")
        if not self.sites:
            raise PlacementInputError("Dataset", self.name, "spec.locations", "needs at least one location")


# ---------------------------------------------------------------- workloads


@dataclass(frozen=True, slots=True)
class WorkloadRequest:
    """What one workload needs from the fleet.

    ``replicas`` units of ``gpus_per_replica`` GPUs each, every unit on ONE node. Gang puts
    all replicas in one cluster at once; Divisible may split them over up to ``max_clusters``
    clusters. ``allowed_capacity`` / ``preferred_capacity`` override what ``capacity_policy``
    implies (the wire type can say e.g. "reserved only").
    """

    name: str
    namespace: str = "default"
    replicas: int = 1
    gpus_per_replica: int = 0
    models: tuple[str, ...] = ()
    preferred_models: tuple[str, ...] = ()
    min_memory_gib: float = 0.0
    mode: PlacementMode = "Gang"
    max_clusters: int | None = None
    capacity_policy: CapacityPolicy = CapacityPolicy.ON_DEMAND_ONLY
    allowed_capacity: frozenset[CapacityType] | None = None
    preferred_capacity: frozenset[CapacityType] | None = None
    priority: int = 0
    selector: LabelSelector | None = None
    tolerations: tuple[Toleration, ...] = ()
    datasets: tuple[str, ...] = ()

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"

    def __post_init__(self) -> None:
        if self.replicas < 1:
            raise PlacementInputError("Workload", self.name, "spec.replicas", f"must be >= 1, got {self.replicas}")
        if self.gpus_per_replica < 0:
            raise PlacementInputError(
                "Workload", self.name, "spec.gpu.count", f"must be >= 0, got {self.gpus_per_replica}"
            )
        if self.min_memory_gib < 0:
            raise PlacementInputError(
                "Workload", self.name, "spec.gpu.minMemoryGiB", f"must be >= 0, got {self.min_memory_gib}"
            )
        if self.mode not in ("Gang", "Divisible"):
            raise PlacementInputError("Workload", self.name, "spec.placementMode", f'unknown mode "{self.mode}"')
        if self.max_clusters is not None:
            if self.mode == "Gang":
                raise PlacementInputError(
                    "Workload", self.name, "spec.maxClusters", "applies only to placementMode Divisible"
                )
            if self.max_clusters < 1:
                raise PlacementInputError(
                    "Workload", self.name, "spec.maxClusters", f"must be >= 1, got {self.max_clusters}"
                )
        for attr, wire in (("allowed_capacity", "allowed"), ("preferred_capacity", "preferred")):
            value = getattr(self, attr)
            for c in value or ():
                if c not in CAPACITY_TYPES:
                    raise PlacementInputError(
                        "Workload", self.name, f"spec.capacityTypes.{wire}", f'unknown capacity type "{c}"'
                    )
        if self.allowed_capacity is not None and not self.allowed_capacity:
            raise PlacementInputError("Workload", self.name, "spec.capacityTypes.allowed", "must not be empty")

    @property
    def allowed(self) -> frozenset[CapacityType]:
        if self.allowed_capacity is not None:
            return self.allowed_capacity
        if self.capacity_policy is CapacityPolicy.ON_DEMAND_ONLY:
            return frozenset({"on-demand", "reserved"})
        return frozenset(CAPACITY_TYPES)

    @property
    def preferred(self) -> frozenset[CapacityType]:
        if self.preferred_capacity is not None:
            return self.preferred_capacity
        if self.capacity_policy is CapacityPolicy.SPOT_PREFERRED:
            return frozenset({"spot"})
        return frozenset()

    @property
    def tolerates_interruption(self) -> bool:
        """Spot-preferred work said it does not mind preemption; the rest pays a spot-risk cost."""
        return self.capacity_policy is CapacityPolicy.SPOT_PREFERRED or "spot" in self.preferred

    @property
    def canonical_models(self) -> frozenset[str]:
        return frozenset(canonical_model(m) for m in self.models)

    @property
    def total_gpus(self) -> int:
        return self.replicas * self.gpus_per_replica


@dataclass(frozen=True, slots=True)
class Reservation:
    """GPUs promised to an in-flight placement that reported capacity does not show yet.

    ``nodes`` lists the node of each replica (a name may repeat) when known — a decision's
    :meth:`~placement.decision.Decision.reservations` gives exactly that. Without nodes the
    engine books the replicas with the same best-fit rule it uses to place, which is never
    more optimistic than reality.
    """

    workload: str
    cluster: str
    pool: str
    gpus_per_replica: int
    replicas: int = 1
    nodes: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.gpus_per_replica < 0:
            raise PlacementInputError(
                "Reservation", self.workload, "gpusPerReplica", f"must be >= 0, got {self.gpus_per_replica}"
            )
        if self.replicas < 0:
            raise PlacementInputError("Reservation", self.workload, "replicas", f"must be >= 0, got {self.replicas}")
        if self.nodes and len(self.nodes) != self.replicas:
            raise PlacementInputError(
                "Reservation", self.workload, "nodes", f"lists {len(self.nodes)} nodes for {self.replicas} replicas"
            )


# ---------------------------------------------------------------- the snapshot


@dataclass(frozen=True, slots=True)
class FleetSnapshot:
    """Everything placement reads about the fleet at one instant."""

    clusters: tuple[ClusterInfo, ...]
    topology: Topology = field(default_factory=Topology)
    datasets: Mapping[str, Dataset] = field(default_factory=dict)

    def __post_init__(self) -> None:
        seen: set[str] = set()
        sites = self.topology.site_names
        for c in self.clusters:
            if c.name in seen:
                raise PlacementInputError("Cluster", c.name, "metadata.name", "duplicate cluster name")
            seen.add(c.name)
            # Without any topology there is nothing a site could refer to; locality is moot.
            if c.site is not None and sites and c.site not in sites:
                raise PlacementInputError("Cluster", c.name, "spec.site", f'unknown topology site "{c.site}"')
        for key, ds in self.datasets.items():
            if key != ds.key:
                raise PlacementInputError("Dataset", ds.name, "metadata", f'is keyed "{key}" but is "{ds.key}"')
            for i, s in enumerate(ds.sites):
                if s not in sites:
                    raise PlacementInputError(
                        "Dataset", ds.name, f"spec.locations[{i}].site", f'unknown topology site "{s}"'
                    )

    def cluster_site(self, cluster: ClusterInfo) -> str | None:
        """The topology site of a cluster: spec.site, else its zone, else its region, if known."""
        sites = self.topology.site_names
        for candidate in (cluster.site, cluster.zone, cluster.region):
            if candidate is not None and candidate in sites:
                return candidate
        return None

    def dataset_for(self, namespace: str, key: str) -> Dataset | None:
        """The Dataset `key` as a workload in `namespace` sees it: None when it is missing or
        not readable from there — the same answer, so a workload learns nothing of another
        namespace's Datasets."""
        ds = self.datasets.get(key)
        return ds if ds is not None and ds.readable_from(namespace) else None

    def fleet_models(self) -> frozenset[str]:
        return frozenset(canonical_model(p.model) for c in self.clusters for p in c.pools)

    def check_workload(self, w: WorkloadRequest, known: frozenset[str] | None = None) -> None:
        """Raise if a workload refers to a dataset or GPU model nobody knows."""
        models = known if known is not None else known_models(self.fleet_models())
        for attr, wire in (("models", "spec.gpu.models"), ("preferred_models", "spec.gpu.preferredModels")):
            for m in getattr(w, attr):
                if canonical_model(m) not in models:
                    raise PlacementInputError("Workload", w.name, wire, f'unknown GPU model "{m}"')
        for i, ds in enumerate(w.datasets):
            if self.dataset_for(w.namespace, ds) is None:
                raise PlacementInputError("Workload", w.name, f"spec.datasets[{i}]", f'unknown Dataset "{ds}"')
