"""Fleetplane placement: a pure engine that decides which member cluster runs each workload.

No database, HTTP or Kubernetes client here (an import-linter contract keeps it so). The
public API, documented in docs/placement.md:

- inputs: :class:`FleetSnapshot`, :class:`ClusterInfo`, :class:`NodePool`, :class:`GpuNode`,
  :class:`Topology`, :class:`Dataset`, :class:`WorkloadRequest`, :class:`Reservation`
- ``Engine(profile).place_batch(snapshot, workloads, reservations) -> list[Decision]``
- :class:`Decision` (``placed``, ``assignments``, ``reason``, ``to_dict()``)
- :mod:`placement.manifests` converts the hub's kube-style objects to these inputs.
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

__all__ = [
    "MAX_SCORE",
    "PROFILES",
    "CapacityPolicy",
    "ClusterAssignment",
    "ClusterInfo",
    "Dataset",
    "Decision",
    "Engine",
    "FleetSnapshot",
    "GpuNode",
    "LabelRequirement",
    "LabelSelector",
    "Link",
    "NodePool",
    "PlacementError",
    "PlacementInputError",
    "PlacementSession",
    "Profile",
    "Reservation",
    "Site",
    "Taint",
    "Toleration",
    "Topology",
    "WorkloadRequest",
]
