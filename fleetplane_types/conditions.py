"""Reading conditions off objects as stored (plain dicts), the one way every layer does it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fleetplane_types.names import READY_CONDITION


def find_condition(obj: Mapping[str, Any], cond_type: str) -> Mapping[str, Any] | None:
    """The condition of this type in obj.status.conditions, or None."""
    status = obj.get("status")
    conditions = status.get("conditions") if isinstance(status, Mapping) else None
    for c in conditions or []:
        if isinstance(c, Mapping) and c.get("type") == cond_type:
            return c
    return None


def cluster_ready(cluster: Mapping[str, Any]) -> tuple[bool, str | None]:
    """(Ready, reason) of a Cluster. A cluster whose agent never reported has no Ready
    condition: not ready, reason "NoHeartbeat"."""
    c = find_condition(cluster, READY_CONDITION)
    if c is None:
        return False, "NoHeartbeat"
    return c.get("status") == "True", c.get("reason")


def is_ready(cluster: Mapping[str, Any]) -> bool:
    return cluster_ready(cluster)[0]
