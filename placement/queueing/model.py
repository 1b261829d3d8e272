"""The queueing model: Queues with GPU quotas per flavor, PriorityClasses, and the workloads
that wait in (or were admitted by) a queue.

Plain frozen dataclasses, like :mod:`placement.model`; each validates itself on construction
and raises :class:`~placement.errors.PlacementInputError` naming the object and the wire field
(``Queue "team-a": spec.resourceGroups[0].flavors[1].nominalQuota: must be >= 0, got -4``).
The wire shape (``kind: Queue``, ``kind: PriorityClass``) and its conversion live in
:mod:`placement.queueing.wire` and :mod:`placement.queueing.convert`; docs/queues.md describes
both.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Literal

from fleetplane_types.names import PRIORITY_CLASS_LABEL  # re-exported: the label naming a Workload's class
from placement.catalogue import canonical_model, split_model
from placement.decision import ClusterAssignment
from placement.errors import PlacementInputError
from placement.model import CAPACITY_TYPES, CapacityType, WorkloadRequest

QueueingStrategy = Literal["StrictFIFO", "BestEffortFIFO"]
QUEUEING_STRATEGIES: tuple[QueueingStrategy, ...] = ("StrictFIFO", "BestEffortFIFO")
WithinQueue = Literal["Never", "LowerPriority"]
WITHIN_QUEUE: tuple[WithinQueue, ...] = ("Never", "LowerPriority")
ReclaimWithinCohort = Literal["Never", "Any", "LowerPriority"]
RECLAIM_WITHIN_COHORT: tuple[ReclaimWithinCohort, ...] = ("Never", "Any", "LowerPriority")


@dataclass(frozen=True, slots=True)
class Flavor:
    """A kind of GPU capacity a quota is counted in: model family × capacity type (× region).

    ``region`` None means any region. Two queues share cohort capacity on a flavor only when
    their flavors are equal (same family, capacity type and region).
    """

    model: str
    capacity_type: CapacityType
    region: str | None = None

    @staticmethod
    def of(model: str, capacity_type: CapacityType, region: str | None = None) -> Flavor:
        return Flavor(canonical_model(model), capacity_type, region or None)

    def __str__(self) -> str:
        return f"{self.model} {self.capacity_type}" + (f" {self.region}" if self.region else "")

    def accepts(self, w: WorkloadRequest, models: frozenset[str] | None = None) -> bool:
        """Whether a workload may run on this flavor (its models and capacity types allow it);
        ``models`` is ``w.canonical_models`` when the caller already has it."""
        if self.capacity_type not in w.allowed:
            return False
        return not w.models or self.model in (models if models is not None else w.canonical_models)

    def restrict(self, w: WorkloadRequest) -> WorkloadRequest:
        """The workload limited to this flavor's model and capacity type, so the engine
        places it where the quota was taken (a size-suffixed request like "A100-80GB" keeps
        its memory floor). The region is enforced by the admission's region filter."""
        models = tuple(m for m in w.models if split_model(m)[0] == self.model) or (self.model,)
        preferred = tuple(m for m in w.preferred_models if split_model(m)[0] == self.model)
        pref_caps = w.preferred & {self.capacity_type}
        return replace(
            w,
            models=models,
            preferred_models=preferred,
            allowed_capacity=frozenset({self.capacity_type}),
            preferred_capacity=frozenset(pref_caps) if w.preferred_capacity is not None else None,
        )


@dataclass(frozen=True, slots=True)
class FlavorQuota:
    """A queue's GPUs on one flavor (Kueue's per-flavor ``nominalQuota`` and limits).

    ``borrowing_limit`` None: may borrow whatever the cohort lends. ``lending_limit`` None:
    lends all of its unused nominal quota to the cohort; 0 lends nothing.
    """

    flavor: Flavor
    nominal: int
    borrowing_limit: int | None = None
    lending_limit: int | None = None
    name: str | None = None
    source: str | None = field(default=None, compare=False)
    """Where the flavor is on the wire (``spec.resourceGroups[0].flavors[1]``), for errors."""

    @property
    def lendable(self) -> int:
        """Nominal GPUs the cohort may use when this queue does not."""
        return self.nominal if self.lending_limit is None else min(self.lending_limit, self.nominal)

    @property
    def guaranteed(self) -> int:
        """Nominal GPUs never lent: this queue's alone."""
        return self.nominal - self.lendable

    @property
    def label(self) -> str:
        return self.name or str(self.flavor)


@dataclass(frozen=True, slots=True)
class PreemptionPolicy:
    """When a queue's pending workload may evict admitted ones (Kueue's ``preemption``).

    ``within_queue`` LowerPriority: evict lower-priority workloads of the same queue.
    ``reclaim_within_cohort``: take back quota other queues of the cohort borrowed — from
    workloads of any priority not above the preemptor's (Any) or only lower ones. Unlike
    Kueue's Any, a higher-priority workload is never evicted.
    """

    within_queue: WithinQueue = "Never"
    reclaim_within_cohort: ReclaimWithinCohort = "Never"


@dataclass(frozen=True, slots=True)
class Queue:
    """A team's share of the fleet: quotas per flavor (in the order they are tried), a
    cohort to borrow from and lend to, a fair-share weight, an ordering, who may submit."""

    name: str
    flavors: tuple[FlavorQuota, ...]
    cohort: str | None = None
    weight: float = 1.0
    strategy: QueueingStrategy = "BestEffortFIFO"
    namespaces: frozenset[str] | None = None
    """Namespaces whose workloads may use the queue; None means every namespace."""
    default_for: frozenset[str] = frozenset()
    """Namespaces whose workloads without ``spec.queue`` land here."""
    preemption: PreemptionPolicy = field(default_factory=PreemptionPolicy)

    def __post_init__(self) -> None:
        def bad(where: str, message: str) -> PlacementInputError:
            return PlacementInputError("Queue", self.name, where, message)

        if not self.name:
            raise PlacementInputError("Queue", None, "metadata.name", "is required")
        if not self.weight > 0:
            raise bad("spec.fairSharing.weight", f"must be > 0, got {self.weight}")
        if self.strategy not in QUEUEING_STRATEGIES:
            raise bad(
                "spec.queueingStrategy", f'unknown strategy "{self.strategy}" (want StrictFIFO or BestEffortFIFO)'
            )
        if self.preemption.within_queue not in WITHIN_QUEUE:
            raise bad("spec.preemption.withinQueue", f'unknown policy "{self.preemption.within_queue}"')
        if self.preemption.reclaim_within_cohort not in RECLAIM_WITHIN_COHORT:
            raise bad(
                "spec.preemption.reclaimWithinCohort", f'unknown policy "{self.preemption.reclaim_within_cohort}"'
            )
        seen: dict[Flavor, int] = {}
        for i, fq in enumerate(self.flavors):
            where = fq.source or f"spec.flavors[{i}]"
            if fq.flavor.capacity_type not in CAPACITY_TYPES:
                raise bad(f"{where}.capacityType", f'unknown capacity type "{fq.flavor.capacity_type}"')
            if not fq.flavor.model:
                raise bad(f"{where}.gpuModel", "is required")
            if fq.nominal < 0:
                raise bad(f"{where}.nominalQuota", f"must be >= 0, got {fq.nominal}")
            if fq.borrowing_limit is not None and fq.borrowing_limit < 0:
                raise bad(f"{where}.borrowingLimit", f"must be >= 0, got {fq.borrowing_limit}")
            if fq.lending_limit is not None and fq.lending_limit < 0:
                raise bad(f"{where}.lendingLimit", f"must be >= 0, got {fq.lending_limit}")
            if fq.lending_limit is not None and fq.lending_limit > fq.nominal:
                raise bad(f"{where}.lendingLimit", f"{fq.lending_limit} exceeds nominalQuota {fq.nominal}")
            if self.cohort is None and (fq.borrowing_limit or fq.lending_limit is not None):
                field_name = "borrowingLimit" if fq.borrowing_limit else "lendingLimit"
                raise bad(f"{where}.{field_name}", "needs spec.cohort (there is no one to borrow from or lend to)")
            if fq.flavor in seen:
                first = self.flavors[seen[fq.flavor]]
                raise bad(
                    where,
                    f"flavor {fq.flavor} is already listed at {first.source or f'spec.flavors[{seen[fq.flavor]}]'}",
                )
            seen[fq.flavor] = i

    def allows(self, namespace: str) -> bool:
        return self.namespaces is None or namespace in self.namespaces

    def quota(self, flavor: Flavor) -> FlavorQuota | None:
        for fq in self.flavors:
            if fq.flavor == flavor:
                return fq
        return None


@dataclass(frozen=True, slots=True)
class PriorityClass:
    """A named priority value, as Kubernetes' ``scheduling.k8s.io`` PriorityClass."""

    name: str
    value: int
    global_default: bool = False

    def __post_init__(self) -> None:
        if not self.name:
            raise PlacementInputError("PriorityClass", None, "metadata.name", "is required")
        if not -(2**31) <= self.value <= 2**31 - 1:
            raise PlacementInputError("PriorityClass", self.name, "value", f"must be an int32, got {self.value}")


def resolve_priority(
    workload: str,
    override: int | None,
    class_name: str | None,
    classes: Mapping[str, PriorityClass],
) -> int:
    """A workload's priority: its own ``spec.priority`` if set, else its class's value, else
    the global-default class's value, else 0. An unknown class is an error."""
    if override is not None:
        return override
    if class_name:
        pc = classes.get(class_name)
        if pc is None:
            known = ", ".join(sorted(classes)) or "none defined"
            raise PlacementInputError(
                "Workload",
                workload,
                f"metadata.labels[{PRIORITY_CLASS_LABEL}]",
                f'unknown PriorityClass "{class_name}" (known: {known})',
            )
        return pc.value
    defaults = [pc for pc in classes.values() if pc.global_default]
    return max((pc.value for pc in defaults), default=0)


@dataclass(frozen=True, slots=True)
class QueuedWorkload:
    """A pending workload: what it needs, the queue it names, its resolved priority.

    ``created`` orders equal priorities (earlier first): a creation timestamp or a sequence
    number, anything that sorts. ``queue`` None means "the namespace's default queue".
    """

    request: WorkloadRequest
    queue: str | None
    priority: int = 0
    created: str | int = 0

    @property
    def key(self) -> str:
        return self.request.key

    @property
    def gpus(self) -> int:
        return self.request.total_gpus


@dataclass(frozen=True, slots=True)
class AdmittedWorkload:
    """A workload holding quota now: its queue, the flavor it was admitted on, its GPUs.

    ``admitted`` orders admissions (later = more recent; the most recent is evicted first
    among equal priorities). ``assignments`` are where its replicas run — with their nodes
    when known — so that evicting it frees exactly those GPUs in the fleet the admission sees.
    """

    key: str
    queue: str
    flavor: Flavor | None
    gpus: int
    priority: int = 0
    admitted: str | int = 0
    assignments: tuple[ClusterAssignment, ...] = ()

    def __post_init__(self) -> None:
        if self.gpus < 0:
            raise PlacementInputError("Workload", self.key, "gpus", f"must be >= 0, got {self.gpus}")
