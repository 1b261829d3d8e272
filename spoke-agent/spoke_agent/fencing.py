"""Epoch fencing (pure): at most one live copy of a workload on this cluster.

The hub gives every placement of a workload a higher epoch. Once the agent has seen epoch N
for a workload, an Assignment of that workload with an epoch below N is stale: the agent does
not apply it and removes what it applied for it. Epochs come from every Assignment the agent
sees and from the fleetplane.io/epoch label on objects already on the cluster, so a restarted
agent still refuses a stale copy that reaches it before the newer one.

Self-fencing (below): the rules for an agent that lost its lease — which copies it stops and
what it applies instead.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from .labels import FAILOVER_ANNOTATION


class EpochFence:
    """Highest epoch seen per workload (key: "<namespace>/<workload name>")."""

    def __init__(self) -> None:
        self._highest: dict[str, int] = {}

    @staticmethod
    def workload_key(assignment: Mapping[str, Any]) -> str:
        meta = assignment.get("metadata") or {}
        spec = assignment.get("spec") or {}
        ref = spec.get("workloadRef") or {}
        return f"{meta.get('namespace', '')}/{ref.get('name') or meta.get('name', '')}"

    def observe(self, workload_key: str, epoch: int) -> None:
        if epoch > self._highest.get(workload_key, -1):
            self._highest[workload_key] = epoch

    def observe_assignment(self, assignment: Mapping[str, Any]) -> None:
        """Record the epoch of an Assignment that is live (not being deleted)."""
        if (assignment.get("metadata") or {}).get("deletionTimestamp"):
            return
        self.observe(self.workload_key(assignment), int((assignment.get("spec") or {}).get("epoch", 0)))

    def highest(self, workload_key: str) -> int | None:
        return self._highest.get(workload_key)

    def is_stale(self, assignment: Mapping[str, Any]) -> bool:
        """True if a newer epoch of the same workload has been seen."""
        highest = self._highest.get(self.workload_key(assignment))
        epoch = int((assignment.get("spec") or {}).get("epoch", 0))
        return highest is not None and epoch < highest


# ---------------------------------------------------------------- self-fencing (lost lease)
#
# An agent that could not renew its cluster's lease for its lease duration T stops the copies
# the hub will re-place elsewhere once T + grace have passed: the workloads whose failover
# policy is Replace. It keeps the objects (scaled to zero / suspended), so when the hub is back
# a workload that was not re-placed is restored by applying its Assignment again, and one that
# was re-placed is removed by the usual path (its old Assignment is deleted or stale-epoch).

REPLACE = "Replace"


def failover_of(assignment: Mapping[str, Any]) -> str:
    """The Workload's failover policy, as the hub annotates it on each Assignment.

    Missing (an Assignment from a hub older than the annotation): Replace, the Workload's
    default and what such a hub does with it when the cluster goes NotReady."""
    annotations = (assignment.get("metadata") or {}).get("annotations") or {}
    return str(annotations.get(FAILOVER_ANNOTATION) or REPLACE)


def stops_when_fenced(assignment: Mapping[str, Any]) -> bool:
    """Whether a cut-off agent stops this Assignment's copy (failover: Replace)."""
    return failover_of(assignment) == REPLACE


SCALE_KINDS = frozenset({"Deployment", "StatefulSet", "ReplicaSet"})
"""Kinds stopped by spec.replicas = 0 (the controller deletes their pods)."""

SUSPEND_KINDS = frozenset({"Job", "JobSet", "RayJob"})
"""Kinds stopped by spec.suspend = true (batch/v1 Job deletes its active pods; JobSet and
RayJob follow the same convention)."""


def fenced_manifest(obj: Mapping[str, Any]) -> dict[str, Any] | None:
    """What the agent applies instead of `obj` while fenced; None: delete it (a bare Pod cannot
    be scaled). Kinds that run nothing themselves (Service, ConfigMap) are kept as they are."""
    kind = obj.get("kind")
    out = copy.deepcopy(dict(obj))
    spec = out.setdefault("spec", {})
    if kind in SCALE_KINDS:
        spec["replicas"] = 0
    elif kind in SUSPEND_KINDS:
        spec["suspend"] = True
    elif kind == "PyTorchJob":  # kubeflow training-operator: runPolicy.suspend
        spec.setdefault("runPolicy", {})["suspend"] = True
    elif kind == "Pod":
        return None
    return out
