"""Pure cluster-health rules: heartbeat expiry, the NotReady condition, the next expiry timer,
and which Cluster changes matter to placement. No I/O: table-tested in tests/unit/hub.

A cluster is alive while the later of its lease renewal (agents renew every heartbeat without
touching the Cluster object, hub.store.leases) and its status.heartbeatTime (written with each
status report) is within `cluster_timeout_seconds`."""

from __future__ import annotations

import json
from typing import Any

from fleetplane_types.conditions import is_ready
from fleetplane_types.names import HEARTBEAT_TIMEOUT_REASON, READY_CONDITION
from hub.controllers.snapshot import parse_time

Obj = dict[str, Any]

MAX_TIMER_SECONDS = 30.0
"""The controller wakes at least this often even when no heartbeat is due to expire."""


def last_seen(cluster: Obj, renewed: float | None = None) -> float | None:
    """When the cluster's agent was last heard of (epoch seconds): the later of its lease renewal
    (hub.store.leases, the hub's clock) and its status.heartbeatTime (written with each status
    report). None if neither is known."""
    hb = parse_time((cluster.get("status") or {}).get("heartbeatTime"))
    times = [t for t in (hb, renewed) if t is not None]
    return max(times) if times else None


def heartbeat_expired(cluster: Obj, now: float, timeout: float, renewed: float | None = None) -> bool:
    """A Ready cluster last heard of (lease renewal or status heartbeat) more than `timeout` s ago."""
    seen = last_seen(cluster, renewed)
    return is_ready(cluster) and seen is not None and now - seen > timeout


def not_ready_status(cluster: Obj, timeout: float, now_rfc3339: str) -> dict[str, Any]:
    """The cluster's status with Ready=False (HeartbeatTimeout); other conditions are kept."""
    st = dict(cluster.get("status") or {})
    conds = [x for x in st.get("conditions") or [] if x.get("type") != READY_CONDITION]
    conds.append(
        {
            "type": READY_CONDITION,
            "status": "False",
            "reason": HEARTBEAT_TIMEOUT_REASON,
            "message": f"no heartbeat for more than {timeout:g}s",
            "lastTransitionTime": now_rfc3339,
        }
    )
    st["conditions"] = conds
    return st


def seconds_to_next_expiry(
    clusters: list[Obj], now: float, timeout: float, renewals: dict[str, float] | None = None
) -> float:
    """Seconds until the earliest Ready cluster's liveness expires (at most MAX_TIMER_SECONDS);
    `renewals` are lease renewals by cluster name (hub.store.leases.renewals).

    Renewals and heartbeats after these were read only push expiry later, so a timer from this
    may fire early (a cheap pass that finds nothing expired), never late."""
    renewals = renewals or {}
    soonest = MAX_TIMER_SECONDS
    for c in clusters:
        seen = last_seen(c, renewals.get((c.get("metadata") or {}).get("name", "")))
        if seen is not None and is_ready(c):
            soonest = min(soonest, max(0.05, seen + timeout - now + 0.05))
    return soonest


def cluster_digest(c: Obj) -> int:
    """What placement reads of a Cluster (spec, labels, deletion, status minus heartbeat time and
    condition transition times): heartbeat-only changes give the same digest."""
    st = {k: v for k, v in (c.get("status") or {}).items() if k != "heartbeatTime"}
    conds = [{k: v for k, v in x.items() if k != "lastTransitionTime"} for x in st.pop("conditions", None) or []]
    meta = c.get("metadata") or {}
    return hash(
        json.dumps(
            [c.get("spec"), meta.get("labels"), meta.get("deletionTimestamp"), st, conds], sort_keys=True, default=str
        )
    )
