"""Backends: what the agent manages. `kubernetes` is a real cluster (kopf watches, server-side
apply); `simulated` is an in-memory cluster for demos and 1,000-cluster scale tests.

Both speak the same small protocol, so join, reporting, delivery, fencing and status are
one code path and the simulated spokes exercise the hub exactly like real ones.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Protocol

from ..capacity import Capacity
from ..manifests import ObjectRef
from ..phase import AssignmentPhase


class Backend(Protocol):
    name: str  # "kubernetes" or "simulated"

    async def start(self, on_capacity_change: Callable[[], None], on_assignment_change: Callable[[str], None]) -> None:
        """Prime caches and start watching; returns once capacity() is meaningful.

        `on_assignment_change(label)` is called with the fleetplane.io/assignment label value of
        any applied object (or its pods) that changed, so the agent recomputes that status.
        """

    async def stop(self) -> None: ...

    def capacity(self, held: Mapping[tuple[str, str], int] | None = None) -> Capacity:
        """GPU pools from the cached Nodes and Pods; `held` GPUs per (node, resource) count as
        allocated on top of the pods' (copies stopped while fenced: spoke_agent.fencing.Hold)."""

    def bound_gpus(self, assignment_label: str) -> dict[tuple[str, str], int]:
        """GPUs per (node, resource) that the pods of one Assignment hold now (bound to a node,
        not terminal), from caches: what a copy holds before fencing stops it, and whether its
        restored pods are bound again."""

    async def kubernetes_version(self) -> str | None: ...

    async def namespaced(self, api_version: str, kind: str) -> bool | None:
        """Whether a kind is namespaced; None if the cluster does not serve it."""

    async def ensure_namespace(self, name: str) -> None: ...

    async def apply(self, obj: Mapping[str, Any]) -> None:
        """Server-side apply; raises PermanentError (bad input) or TemporaryError."""

    async def delete(self, ref: ObjectRef, foreground: bool = False) -> bool:
        """Delete; False if it was already gone. foreground: keep the object until its
        dependents (pods) have terminated."""

    async def exists(self, ref: ObjectRef) -> bool:
        """Whether the object is still there (also while it is being deleted)."""

    async def list_managed(self, allowed: list[tuple[str, str]]) -> list[dict[str, Any]]:
        """Every object carrying the fleetplane.io/assignment label, among kinds (group, kind)."""

    def observe(self, assignment_label: str, refs: list[ObjectRef]) -> AssignmentPhase:
        """Phase of an Assignment's applied objects (from caches, no API calls)."""

    async def load_state(self) -> dict[str, str] | None: ...

    async def save_state(self, data: Mapping[str, str]) -> None: ...
