"""What the federation controller exports to Prometheus beyond its counters (hub.metrics):
placements and their latency, pending workloads by reason, clusters by readiness.

Kept out of the controller's logic: it calls `PlacementClock.saw` per dispatched event (two
comparisons unless a Workload was created or deleted), `placed` after each committed batch,
and `fleet_gauges` once per pass (one look at every pending workload and every cluster, and at
each Workload the clock still times).
docs/observability.md says what each metric means."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Mapping
from typing import Any

from fleetplane_types.conditions import find_condition
from fleetplane_types.names import ADMITTED_CONDITION, CLUSTERS, PLACED_CONDITION, WORKLOADS
from hub import metrics
from hub.controllers.cache import FleetCache, Key
from hub.controllers.placing import next_epoch
from hub.controllers.snapshot import parse_time
from hub.store.store import Event

Obj = dict[str, Any]

NEW_REASON = "New"
"""The pending reason of a workload no pass has decided on yet."""

READY_VALUES = ("True", "False", "Unknown")


def _key(w: Obj) -> Key:
    meta = w.get("metadata") or {}
    return meta.get("namespace", ""), meta.get("name", "")


class PlacementClock:
    """When each Workload was created, as the leading controller saw it, until its first placement."""

    def __init__(self) -> None:
        self._created: dict[Key, float] = {}
        self._initial = metrics.PLACEMENTS.labels("initial")
        self._replacement = metrics.PLACEMENTS.labels("replacement")

    def reset(self) -> None:
        """A new leadership: what a standby saw is forgotten (creationTimestamp stands in)."""
        self._created.clear()

    def prune(self, workloads: Mapping[Key, Obj]) -> None:
        """Forget the Workloads the cache no longer holds: their DELETED event may never come (a
        relist replaces the cache's view without one), and an entry must not outlive its Workload.
        Bounds the clock by the Workloads not yet placed."""
        gone = [k for k in self._created if k not in workloads]
        for k in gone:
            del self._created[k]

    def __len__(self) -> int:
        return len(self._created)

    def saw(self, ev: Event, leading: bool) -> None:
        if ev.resource != WORKLOADS:
            return
        if ev.type == "ADDED":
            if leading:
                self._created[(ev.namespace, ev.name)] = time.time()
        elif ev.type == "DELETED":
            self._created.pop((ev.namespace, ev.name), None)

    def placed(self, batch: list[tuple[Obj, Any, Any]], stale: list[Obj]) -> None:
        """A batch of placements was committed; the `stale` workloads of it were not placed."""
        skipped = {id(w) for w in stale}
        now = time.time()
        for w, _, _ in batch:
            if id(w) in skipped:
                continue
            if next_epoch(w) > 1:
                self._replacement.inc()
                continue
            self._initial.inc()
            created = self._created.pop(_key(w), None)
            if created is None:
                created = parse_time((w.get("metadata") or {}).get("creationTimestamp"))
            if created is not None:
                metrics.PLACEMENT_LATENCY_SECONDS.observe(max(0.0, now - created))


_reasons_seen: set[str] = set()


def pending_reason(w: Obj) -> str:
    admitted = find_condition(w, ADMITTED_CONDITION)
    if admitted is not None and admitted.get("status") == "False":
        return str(admitted.get("reason") or NEW_REASON)
    placed = find_condition(w, PLACED_CONDITION)
    if placed is not None and placed.get("status") == "False":
        return str(placed.get("reason") or NEW_REASON)
    return NEW_REASON


def fleet_gauges(cache: FleetCache, clock: PlacementClock | None = None) -> None:
    """Set the pending-by-reason and clusters-by-readiness gauges from the cache (as of the pass
    that calls this: it follows the previous pass's writes). A reason no workload waits for any
    more reads 0, not its last count. With `clock`, prunes it to the cache's Workloads."""
    if clock is not None:
        clock.prune(cache.workloads)
    pending: Counter[str] = Counter()
    for key in cache.pending:
        w = cache.workload(key)
        if w is not None:
            pending[pending_reason(w)] += 1
    _reasons_seen.update(pending)
    for reason in _reasons_seen:
        metrics.PENDING_WORKLOADS.labels(reason).set(pending[reason])
    ready: Counter[str] = Counter()
    for c in cache.objects[CLUSTERS].values():
        cond = find_condition(c, "Ready")
        value = str(cond.get("status")) if cond is not None else "Unknown"
        ready[value if value in READY_VALUES else "Unknown"] += 1
    for value in READY_VALUES:
        metrics.CLUSTERS.labels(value).set(ready[value])


def clear_fleet_gauges() -> None:
    """This process's controller is not the leader: its counts would be stale, so they read 0
    (`max` over the hub replicas is then the leader's)."""
    for reason in _reasons_seen:
        metrics.PENDING_WORKLOADS.labels(reason).set(0)
    for value in READY_VALUES:
        metrics.CLUSTERS.labels(value).set(0)
