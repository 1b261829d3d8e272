"""Label and annotation keys the agent puts on what it applies, and how values are built.

Every applied object carries the Assignment it came from, the Workload and the fencing
epoch, so the agent can find (and garbage-collect) its objects after a restart with one
label-selected list per kind, and can remove stale-epoch copies.
"""

from __future__ import annotations

from fleetplane_types.labels import label_value
from fleetplane_types.names import (
    AGENT_CLEANUP_FINALIZER as CLEANUP_FINALIZER,
)
from fleetplane_types.names import (
    ASSIGNMENT_ANNOTATION,
    ASSIGNMENT_LABEL,
    BACKEND_LABEL,
    EPOCH_LABEL,
    FAILOVER_ANNOTATION,
    WORKLOAD_LABEL,
)

__all__ = [
    "ASSIGNMENT_ANNOTATION",
    "ASSIGNMENT_LABEL",
    "BACKEND_LABEL",
    "CLEANUP_FINALIZER",
    "EPOCH_LABEL",
    "FAILOVER_ANNOTATION",
    "WORKLOAD_LABEL",
    "assignment_key",
    "assignment_label",
    "label_value",
]


def assignment_key(namespace: str, name: str) -> str:
    """The in-memory key of an Assignment: "<ns>/<name>"."""
    return f"{namespace}/{name}"


def assignment_label(namespace: str, name: str) -> str:
    """Value of fleetplane.io/assignment: "<ns>.<name>" (hashed if too long)."""
    return label_value(f"{namespace}.{name}")
