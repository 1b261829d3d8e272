"""Wire shapes of ``kind: Queue`` and ``kind: PriorityClass`` (fleetplane.io/v1alpha1).

They live in :mod:`fleetplane_types.v1alpha1` with every other kind; this module names them
for the queueing code and the what-if CLI.
"""

from __future__ import annotations

from fleetplane_types.v1alpha1 import (
    FairSharing,
    PriorityClass,
    Queue,
    QueueFlavor,
    QueueFlavorUsage,
    QueuePreemption,
    QueueSpec,
    QueueStatus,
    ResourceGroup,
)

__all__ = [
    "FairSharing",
    "PriorityClass",
    "Queue",
    "QueueFlavor",
    "QueueFlavorUsage",
    "QueuePreemption",
    "QueueSpec",
    "QueueStatus",
    "ResourceGroup",
]
