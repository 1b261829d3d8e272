"""Fleetplane placement: a pure engine that decides which member cluster runs each workload.

No database, HTTP or Kubernetes client here (an import-linter contract keeps it so). The
public API, documented in docs/placement.md:

- inputs: :class:`FleetSnapshot`, :class:`ClusterInfo`, :class:`NodePool`, :class:`GpuNode`,
  :class:`Topology`, :class:`Dataset`, :class:`WorkloadRequest`, :class:`Reservation`
- ``Engine(profile).place_batch(snapshot, workloads, reservations) -> list[Decision]``
- :class:`Decision` (``placed``, ``assignments``, ``reason``, ``to_dict()``)
- :mod:`placement.manifests` converts the hub's kube-style objects to these inputs.
- queues before placement (docs/queues.md): ``Admission(queues).decide(snapshot, pending,
  admitted) -> AdmissionResult``, with :class:`Queue`, :class:`FlavorQuota`, :class:`Flavor`,
  :class:`PriorityClass`, :class:`QueuedWorkload`, :class:`AdmittedWorkload` (:mod:`placement.queueing`)
"""

from placement.decision import ClusterAssignment, Decision
from placement.engine import Engine, PlacementSession
from placement.errors import PlacementError, PlacementInputError
from placement.model import (
    CapacityPolicy,
    ClusterInfo,
    Dataset,
    FleetSnapshot,
    GpuNode,
    LabelRequirement,
    LabelSelector,
    Link,
    NodePool,
    Reservation,
    Site,
    Taint,
    Toleration,
    Topology,
    WorkloadRequest,
)
from placement.profiles import MAX_SCORE, PROFILES, Profile
from placement.queueing import (
    Admission,
    AdmissionDecision,
    AdmissionResult,
    AdmittedWorkload,
    Eviction,
    Flavor,
    FlavorQuota,
    PreemptionPolicy,
    PriorityClass,
    Queue,
    QueuedWorkload,
)

__all__ = [
    "MAX_SCORE",
    "PROFILES",
    "Admission",
    "AdmissionDecision",
    "AdmissionResult",
    "AdmittedWorkload",
    "CapacityPolicy",
    "ClusterAssignment",
    "ClusterInfo",
    "Dataset",
    "Decision",
    "Engine",
    "Eviction",
    "Flavor",
    "FlavorQuota",
    "FleetSnapshot",
    "GpuNode",
    "LabelRequirement",
    "LabelSelector",
    "Link",
    "NodePool",
    "PlacementError",
    "PlacementInputError",
    "PlacementSession",
    "PreemptionPolicy",
    "PriorityClass",
    "Profile",
    "Queue",
    "QueuedWorkload",
    "Reservation",
    "Site",
    "Taint",
    "Toleration",
    "Topology",
    "WorkloadRequest",
]
