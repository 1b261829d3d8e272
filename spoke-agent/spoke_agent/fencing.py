"""Epoch fencing (pure): at most one live copy of a workload on this cluster.

The hub gives every placement of a workload a higher epoch. Once the agent has seen epoch N
for a workload, an Assignment of that workload with an epoch below N is stale: the agent does
not apply it and removes what it applied for it. Epochs come from every Assignment the agent
sees and from the fleetplane.io/epoch label on objects already on the cluster, so a restarted
agent still refuses a stale copy that reaches it before the newer one.

Self-fencing (below): the rules for an agent that lost its lease — which copies it stops,
what it applies instead, and which GPUs it keeps counting as allocated until the stopped copies
run again (`Hold`, `held_extra`).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass
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


# ---------------------------------------------------------------- GPUs of stopped copies
#
# A stopped copy's pods are gone, so the spoke shows its GPUs as free. The hub did not re-place
# it (that is what "restored" means), so to the hub those GPUs are still taken; reporting them
# free lets the hub book them for another workload just before the restored copy wants them back
# (two workloads on the same GPUs, one of them Unschedulable on the spoke). So the agent keeps
# counting them as allocated — where the copy's pods held them when fencing stopped them — while
# fenced and until the restored copy's pods are bound again. Kubernetes' scheduler does the same
# with a pod it has decided on but not bound yet ("assumed" in its cache), and Karmada's cluster
# status reports such pods' requests as `allocating`, which its scheduler treats as taken.

GpuSlot = tuple[str, str]
"""(node name, GPU resource name): where GPUs are counted in a capacity report."""


@dataclass
class Hold:
    """The GPUs a copy's pods held when fencing stopped it, counted as allocated until it runs
    again (or the hub no longer assigns it here)."""

    gpus: dict[GpuSlot, int]
    restoring_since: float | None = None
    """Monotonic time the fence lifted with this copy still assigned (None: still fenced)."""

    @property
    def total(self) -> int:
        return sum(self.gpus.values())


def held_extra(recorded: Mapping[GpuSlot, int], bound: Mapping[GpuSlot, int]) -> dict[GpuSlot, int]:
    """GPUs to count as allocated for a stopped or restoring copy, on top of what its pods hold now.

    Per node: what the copy's pods held there when they were stopped, minus what they hold there
    again. In all: never more than the GPUs the copy still lacks, so a pod that came back on
    another node is not counted twice (the nodes are taken in name order, deterministically)."""
    missing = sum(recorded.values()) - sum(bound.values())
    out: dict[GpuSlot, int] = {}
    for slot in sorted(recorded):
        if missing <= 0:
            break
        n = min(recorded[slot] - bound.get(slot, 0), missing)
        if n > 0:
            out[slot] = n
            missing -= n
    return out


def add_slots(into: dict[GpuSlot, int], more: Mapping[GpuSlot, int]) -> None:
    for slot, n in more.items():
        into[slot] = into.get(slot, 0) + n
