"""Epoch fencing (pure): at most one live copy of a workload on this cluster.

The hub gives every placement of a workload a higher epoch. Once the agent has seen epoch N
for a workload, an Assignment of that workload with an epoch below N is stale: the agent does
not apply it and removes what it applied for it. Epochs come from every Assignment the agent
sees and from the fleetplane.io/epoch label on objects already on the cluster, so a restarted
agent still refuses a stale copy that reaches it before the newer one.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


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
