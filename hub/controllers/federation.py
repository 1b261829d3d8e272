"""The federation controller: placement, status aggregation, cluster health and failover, deletion.

One loop, active in ONE hub process per database (hub.store.leader). It is event-driven:
every committed change to a Workload, Cluster, Assignment, Dataset or Topology (seen through
the process's watch poller) marks the loop dirty; a pass runs after a short debounce. The only
timer is the next cluster-heartbeat expiry.

It reads the fleet from an informer (hub.controllers.cache): one list per resource when this
process becomes the leader, then every dispatched event applied to in-memory indexes. A pass
first waits until the cache has seen the store's current resourceVersion (so it sees its own
previous writes), then handles only the workloads that need it: dirty ones (their object or
their Assignments changed, or a cluster they run on changed readiness), deleting ones (they
are dirty while their Assignments go), and pending ones when capacity changed. Status is
aggregated only for workloads whose Assignments changed.

A pass:
1. Health: a cluster whose heartbeat is older than `cluster_timeout_seconds` gets
   Ready=False (reason HeartbeatTimeout) — rules in hub.controllers.health.
2. Failover: workloads with `failover: Replace` whose current Assignment sits on a NotReady
   cluster, or whose Assignment reports reason Preempted (spot interruption), are re-placed
   with epoch+1; the old Assignment is deleted (its agent-cleanup finalizer keeps it until
   the old cluster's agent, when back, has removed the stale copy).
3. Placement: pending workloads, highest priority first, against ONE snapshot of cluster
   capacity minus in-flight reservations (hub.controllers.snapshot). Each decision is written
   atomically — the Workload's status, its finalizer and its Assignment(s)
   (hub.controllers.placing) — with up to COMMIT_BATCH decisions per transaction. A workload
   that still does not fit gets the engine's reason at once when it has none for its spec; an
   existing reason is rebuilt at most every EXPLAIN_EVERY_SECONDS (after a list, the stored
   reasons count as current that long), under a per-pass budget.
4. Status: each placed Workload's phase and per-cluster status from its Assignments' status,
   never moving backward (hub.controllers.status).
5. Deletion: a deleted Workload's Assignments are deleted; its finalizer is released when
   none is left (each Assignment waits for its agent to confirm cleanup).

Every Workload status it writes carries the conditions (Placed, Running, Succeeded/Failed) and
is written only when it differs from the stored one on canonical JSON (hub.controllers.status),
so no value can make it rewrite status forever. Next to placements, pending reasons, failovers,
evictions and deletions it records core/v1 Events (hub.controllers.events), one per workload
and reason with a count, and deletes those not seen for an hour.

Every write goes through the registry (hub.registry.lifecycle) as the SYSTEM subject: the same
validation, generation and deletion rules as a kubectl write.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict
from dataclasses import dataclass, replace
from typing import Any

from fleetplane_types import v1alpha1 as v1
from fleetplane_types.conditions import is_ready
from fleetplane_types.gpus import known_models
from fleetplane_types.names import (
    ADMISSION_PENDING_REASON,
    ASSIGNMENTS,
    CLUSTERS,
    DATASETS,
    DELETED_REASON,
    EVENTS,
    EVICTED_REASON,
    FAILOVER_REASON,
    INADMISSIBLE_REASON,
    PLACED_REASON,
    PREEMPTED_REASON,
    PREEMPTING_REASON,
    PRIORITY_CLASSES,
    QUEUES,
    TOPOLOGIES,
    UNSCHEDULABLE_REASON,
    WORKLOAD_FINALIZER,
    WORKLOADS,
)
from hub import metrics
from hub.controllers import events, health, observed, placing, queueing, status
from hub.controllers.cache import CACHED, FleetCache, Key, slim_record
from hub.controllers.snapshot import ClusterMemo, build_snapshot, parse_time, reservations
from hub.errors import ApiError
from hub.registry.lifecycle import ListQuery, Registry, RegistryTx, deleting
from hub.registry.resources import BY_KEY, Resource
from hub.settings import Settings
from hub.store import leases
from hub.store.leader import LeaderLock
from hub.store.store import Event, now_rfc3339
from placement import Decision, Engine, FleetSnapshot, PlacementInputError, WorkloadRequest
from placement.manifests import workload_from_api
from placement.queueing import AdmissionResult, AdmittedWorkload, Eviction, QueuedWorkload
from placement.queueing.convert import workload_priority

log = logging.getLogger(__name__)

WATCHED = {WORKLOADS, ASSIGNMENTS, CLUSTERS, DATASETS, TOPOLOGIES, QUEUES, PRIORITY_CLASSES}
WORKLOAD = BY_KEY[WORKLOADS]
QUEUE = BY_KEY[QUEUES]
ASSIGNMENT = BY_KEY[ASSIGNMENTS]
CLUSTER = BY_KEY[CLUSTERS]
EVENT = BY_KEY[EVENTS]

COMMIT_BATCH = 50
"""Decisions (or status updates) per transaction: thousands of one-decision transactions
saturate the event loop long before Postgres is busy (bench/results/federation.md)."""

DECIDE_CHUNK = 250
"""Pending workloads decided before their placements are committed (see FederationController._place)."""

EXPLAIN_EVERY_SECONDS = 10.0
"""How long a still-unplaced workload's stored reason and explanation count as current. Every
pass whose capacity changed tries every pending workload again (placing is never delayed); only
the text of why one still does not fit is rebuilt at most this often per workload, and at once
for a workload that has none for its current spec. Explaining asks every filter why, for every
removed cluster: at 200 clusters ~15 ms per workload, so 300 pending workloads re-explained on
each capacity change kept the controller busy for seconds per pass (bench/results/recovery-200*).
kube-scheduler likewise retries an unschedulable pod with a backoff of up to 10 s."""

EXPLAIN_BUDGET_SECONDS = 0.25
"""Wall time one pass spends refreshing explanations that are older than EXPLAIN_EVERY_SECONDS
(explanations a workload does not have yet are always built); the rest wait for a later pass,
at most EXPLAIN_PAUSE_SECONDS later, so API requests and status aggregation are not starved."""

EXPLAIN_PAUSE_SECONDS = 1.0

YIELD_EVERY = 200
"""Workloads a pass handles between two yields to the event loop (one process serves the API)."""

CATCH_UP_SECONDS = 10.0
"""How long a pass waits for the watch poller to dispatch the store's current resourceVersion
(normally milliseconds: local commits wake the poller) before it lists the fleet instead."""

Obj = dict[str, Any]
StatusUpdate = tuple[str, str, str, list[dict[str, Any]]]  # namespace, name, phase, per-cluster


def _meta(o: Obj) -> dict[str, Any]:
    meta: dict[str, Any] = o.setdefault("metadata", {})
    return meta


def _key(o: Obj) -> tuple[str, str]:
    return _meta(o).get("namespace", ""), _meta(o)["name"]


class FederationController:
    def __init__(self, registry: Registry, settings: Settings, leader: LeaderLock) -> None:
        self.registry = registry
        self.settings = settings
        self.leader = leader
        self.engine = Engine(settings.placement_profile)
        self._dirty = asyncio.Event()
        self.cache = FleetCache()
        self._last_clusters: list[Obj] = []
        self._tried_at = -1  # the cache's capacity_version when pending workloads were last tried
        self._leading_since = time.time()  # when this process last became leader (liveness floor)
        self._snapshot: tuple[int, FleetSnapshot] | None = None  # (cache.cluster_version, snapshot)
        self._cluster_memo = ClusterMemo()  # each Cluster version validated and converted once
        self._queues: tuple[int, queueing.QueueConfig] | None = None  # (cache.queue_version, config)
        self._withdraw_at: dict[Key, float] = {}  # evicted workloads in their grace period → when
        # Unplaced workloads: the reason their stored status shows, with (generation, monotonic
        # time, cache.capacity_version) when it was decided (version -1: taken over from the
        # stored status after a list); and when the earliest skipped refresh is due (a pass
        # tries the pending ones again then).
        self._explained: dict[Key, Explained] = {}
        self._explain_due: float | None = None
        self._seeded_lists = -1  # the cache.lists whose stored reasons were taken as current
        self._tried_version = -1  # the cache.capacity_version the current pass places against
        self._usage_written = -1  # the cache.queue_version whose Queue usage was last written

        self.passes = 0
        self._compacted_at = 0.0
        self.health = ControllerHealth(settings.controller_stuck_seconds)
        self.clock = observed.PlacementClock()  # placements and their latency (hub.metrics)

    def _on_event(self, ev: Event) -> None:
        # Heartbeats arrive every few seconds from every cluster; the cache keeps them, but only
        # a change in what placement reads (spec, labels, conditions, capacity) needs a pass.
        # Expiry has its timer.
        self.clock.saw(ev, self.health.role == "leader")
        if self.cache.apply(ev) and ev.resource in WATCHED:
            self._dirty.set()

    # ------------------------------------------------------------------ leadership

    async def run(self) -> None:
        if self._on_event not in self.registry.broadcaster.listeners:  # run() may be restarted
            self.registry.broadcaster.listeners.append(self._on_event)
        while True:
            try:
                if not await self.leader.acquire():
                    self.health.standby()
                    await asyncio.sleep(2)
                    continue
                log.info("this hub process runs the federation controllers")
                self.health.lead()
                await self._lead()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # lost the database or a pass failed badly: step down, retry
                self.health.failed(exc)
                log.warning("federation controller stepped down (%s); retrying", exc)
                await asyncio.sleep(1)
            finally:
                await self.leader.release()

    async def _lead(self) -> None:
        self.cache.invalidate()  # another leader may have written anything meanwhile: list again
        self.clock.reset()
        self._leading_since = time.time()
        self._dirty.set()
        while True:
            timeout = health.seconds_to_next_expiry(
                self._last_clusters,
                time.time(),
                self.settings.cluster_timeout_seconds,
                await self._renewals(),
            )
            if self._withdraw_at:  # an evicted workload's grace period ends
                due = max(0.0, min(self._withdraw_at.values()) - time.time())
                timeout = min(timeout, due)
            if self._explain_due is not None:  # a pending workload's reason is due for a refresh
                timeout = min(timeout, max(0.0, self._explain_due - time.monotonic()))
            try:
                await asyncio.wait_for(self._dirty.wait(), timeout=timeout)
            except TimeoutError:
                pass
            await asyncio.sleep(self.settings.placement_debounce_seconds)
            self._dirty.clear()
            self.health.begin_pass()
            await self.leader.confirm()  # still holding the lock?
            try:
                await self.reconcile()
                self.health.passed()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.health.failed(exc)
                log.exception("federation pass failed; will retry")
                await asyncio.sleep(0.5)
                self._dirty.set()

    # ------------------------------------------------------------------ one pass

    async def reconcile(self) -> None:
        self.passes += 1
        metrics.CONTROLLER_PASSES.inc()
        started = time.monotonic()
        lists = self.cache.lists
        await self._sync()
        if self.cache.lists != self._seeded_lists:
            self._seed_explained()
        if await self._health(self.cache.clusters):
            await self._sync()  # see our own NotReady marks
        synced = time.monotonic()
        self._last_clusters = self.cache.clusters
        observed.fleet_gauges(self.cache, self.clock)  # pending by reason, clusters by readiness
        ready = self.cache.ready_clusters()
        tried_at = self._tried_version = self.cache.capacity_version
        keys = self.cache.take_dirty()
        now = time.time()
        keys |= {k for k, due in self._withdraw_at.items() if due <= now}
        config = self._queue_config()
        # Quota given back (a queued workload finished, or was deleted) or Queues changed: the
        # Queues' usage is rewritten by an admission pass over everything that waits, even when
        # nothing does (else a Queue kept showing the usage of its last admission forever).
        recount = bool(config.queues) and (
            self._usage_written != self.cache.queue_version
            or any(queueing.frees_quota(self.cache.workload(k), config) for k in keys)
        )
        explain_due = self._explain_due is not None and self._explain_due <= time.monotonic()
        if explain_due:
            self._explain_due = None
        if tried_at != self._tried_at or recount or explain_due:
            # Capacity or quota changed: pending ones may fit now. Or a reason is due for a refresh:
            # they are tried again (the reason is the engine's, against what is free now).
            keys |= self.cache.pending
        elif keys & self.cache.pending and config.queues:
            # Admission orders every queue's workloads (fair share, StrictFIFO heads): a new
            # workload is decided together with all that wait, never alone.
            keys |= self.cache.pending
        try:
            await self._handle(sorted(keys), ready, recount=recount)
        except BaseException:
            self.cache.dirty |= keys  # the next pass handles them again
            raise
        self._tried_at = tried_at
        if time.monotonic() - self._compacted_at > events.COMPACT_EVERY_SECONDS:
            await self._expire_events()
            self._compacted_at = time.monotonic()
        took = time.monotonic() - started
        if took > 1.0 or self.cache.lists != lists:
            log.info(
                "federation pass %d: %d workloads handled (%d pending) in %.2fs (%s %.2fs)",
                self.passes,
                len(keys),
                len(self.cache.pending),
                took,
                "listing the fleet" if self.cache.lists != lists else "catching up",
                synced - started,
            )

    def _seed_explained(self) -> None:
        """After a list: an unplaced workload whose stored status already carries the engine's
        reason for its current spec (written by the previous leader, or by this one before the
        relist) is not explained again before EXPLAIN_EVERY_SECONDS; a restarted controller then
        spends its first pass placing, not rebuilding hundreds of unchanged explanations."""
        self._seeded_lists = self.cache.lists
        now = time.monotonic()
        self._explained = {
            k: Explained(stored_reason(w), _meta(w).get("generation"), now, -1)
            for k in self.cache.pending
            if (w := self.cache.workload(k)) is not None and shows_engine_reason(w)
        }

    async def _sync(self) -> None:
        """List the fleet into the cache if it is not synced; else wait until the cache has seen
        every committed change up to now (the store's current resourceVersion)."""
        if self.cache.synced:
            rv = await self.registry.current_rv()
            if await self.cache.caught_up(rv, CATCH_UP_SECONDS) and self.cache.synced:
                return
            log.warning("controller cache did not reach resourceVersion %d in %gs; listing again", rv, CATCH_UP_SECONDS)
        self.cache.begin_list(self.registry.broadcaster.last_rv)

        async def one(resource: str) -> tuple[str, list[Obj], int]:
            items, rv, _ = await self.registry.list_objects(BY_KEY[resource], ListQuery(None, None))
            metrics.CONTROLLER_LISTS.labels(resource).inc()
            return resource, items, rv

        try:
            # All at once: each list is consistent as of its own resourceVersion and the cache
            # buffers every event meanwhile (hub.controllers.cache), so their order does not
            # matter. One after another, a restarted hub's controller queued for a pooled
            # connection eight times behind hundreds of agents' watch back-fills
            # (bench/results/recovery-200*: listing took 24 s at 200 clusters).
            listed = await asyncio.gather(*(one(r) for r in CACHED))
        except BaseException:
            self.cache.abandon_list()
            raise
        for resource, items, rv in listed:
            self.cache.load(resource, items, rv)
        self.cache.finish_list()
        # Once the events up to the newest list's rv are applied, every resource is cached as
        # of one moment.
        await self.cache.caught_up(max(rv for _, _, rv in listed), CATCH_UP_SECONDS)

    async def _handle(self, keys: list[Key], ready: set[str], *, recount: bool = False) -> None:
        """One pass over the workloads that need it (the cache's dirty and pending ones).
        `recount`: run the admission pass (and write Queue usage) even if no queued one waits."""
        pending: list[Obj] = []
        updates: list[StatusUpdate] = []
        for i, key in enumerate(keys):
            if i and i % YIELD_EVERY == 0:
                await asyncio.sleep(0)  # let the API (lease renewals, watches) in
            w = self.cache.workload(key)
            if w is None:
                continue
            mine = self.cache.assignments_of(key)
            if deleting(w):
                await self._delete_workload(w, mine)
                continue
            epoch = ((w.get("status") or {}).get("placement") or {}).get("epoch")
            if epoch is not None and WORKLOAD_FINALIZER not in (_meta(w).get("finalizers") or []):
                # Placement adds it in its own transaction; this only mends older objects.
                await self._add_finalizer(w)
            current = [a for a in mine if a["spec"].get("epoch") == epoch and not deleting(a)]
            phase = (w.get("status") or {}).get("phase")
            if phase in ("Succeeded", "Failed"):
                continue
            if queueing.holding(w):
                # Admitted (it holds quota). Evicted: withdraw its copies once its grace period is
                # over, and give the quota back once they are gone. Admitted but its copies gone
                # (lost without failover): back to its queue.
                self._withdraw_at.pop(key, None)
                ev = (w.get("status") or {}).get("eviction")
                if isinstance(ev, dict) and not ev.get("withdrawn"):
                    due = parse_time(ev.get("withdrawAt")) or 0.0
                    if due <= time.time():
                        await self._withdraw(w, current)
                        continue
                    self._withdraw_at[key] = due
                elif isinstance(ev, dict) or not current:
                    if not mine:
                        why = "its copies are removed after the eviction" if ev else "it has no copy left"
                        await self._release(w, why)
                    continue  # the evicted copies are still being removed from the spokes
            if epoch is None or not current:
                pending.append(w)
                continue
            lost = [
                a
                for a in current
                if a["spec"]["clusterName"] not in ready or (a.get("status") or {}).get("reason") == "Preempted"
            ]
            if lost and w["spec"].get("failover", "Replace") == "Replace":
                await self._fence(w, current, lost)
                pending.append(await self.registry.find(WORKLOAD, key[0], key[1]) or w)
                continue
            phases = [(a.get("status") or {}).get("phase") or "Pending" for a in current]
            per_cluster = status.per_cluster_status(current, lost)
            new_phase = status.workload_phase(phases)
            if status.settled_status(w, status.aggregated_status(w, new_phase, per_cluster)) is not None:
                updates.append((key[0], key[1], new_phase, per_cluster))
        await self._write_aggregates(updates)
        if pending or recount:
            await self._place(pending, recount=recount)

    # ------------------------------------------------------------------ events

    async def _record(self, rtx: RegistryTx, involved: Obj, event_type: str, reason: str, message: str) -> None:
        """Record an Event about `involved` in its transaction: a new one, or the stored one of
        this reason counted once more. Skipped when the namespace is going away (it could not
        hold new objects, and the Event would go with it). The namespace is read from the cache,
        which a pass starts by bringing up to date: one statement less per Event."""
        ns = _meta(involved).get("namespace")
        if not self.cache.namespace_open(ns):
            return
        now = now_rfc3339()
        cur = await rtx.get(EVENT, ns, events.event_name(involved, reason))
        if cur is None:
            await rtx.create(EVENT, events.new_event(involved, event_type, reason, message, now))
        else:
            await rtx.update(EVENT, cur, events.repeated_event(cur, involved, event_type, message, now))

    async def _expire_events(self) -> None:
        """Delete the Events not seen for events.EVENT_TTL_SECONDS."""
        old = events.expired(await self.registry.list_all(EVENT), time.time())
        for i in range(0, len(old), COMMIT_BATCH * 10):
            chunk = old[i : i + COMMIT_BATCH * 10]

            async def fn(rtx: RegistryTx, chunk: list[Obj] = chunk) -> None:
                for ev in chunk:
                    live = await rtx.get(EVENT, _meta(ev).get("namespace"), _meta(ev)["name"])
                    if live is not None and events.expired([live], time.time()):
                        await rtx.delete(EVENT, live)

            await self.registry.transact(fn)

    # ------------------------------------------------------------------ health

    async def _renewals(self) -> dict[str, float]:
        """Lease renewals by cluster, none earlier than the start of this leadership: a hub that
        was down (or a new leader) gives every agent a full timeout to reach it before calling its
        cluster NotReady, as kube-controller-manager's node lifecycle controller times node
        heartbeats from when it observed them. Without this, a hub restart that took longer than
        the timeout failed over every placed workload."""
        renewed = await leases.renewals(self.registry.store)
        floor = self._leading_since
        return {name: max(renewed.get(name, floor), floor) for name in {_meta(c)["name"] for c in self.cache.clusters}}

    async def _health(self, clusters: list[Obj]) -> bool:
        """Mark clusters NotReady whose agent was last heard of (lease renewal or status heartbeat)
        longer than the timeout ago; True if any was marked."""
        timeout = self.settings.cluster_timeout_seconds
        renewed = await self._renewals()
        now = time.time()
        marked = False
        for c in clusters:
            if not health.heartbeat_expired(c, now, timeout, renewed.get(_meta(c)["name"])):
                continue
            name = _meta(c)["name"]

            async def mark(rtx: RegistryTx, name: str = name) -> None:
                cur = await rtx.get(CLUSTER, None, name)
                if cur is None or not is_ready(cur):
                    return
                await rtx.update_status(CLUSTER, cur, health.not_ready_status(cur, timeout, now_rfc3339()))

            await self.registry.transact(mark)
            marked = True
            log.warning("cluster %s missed its heartbeat: NotReady", name)
        return marked

    # ------------------------------------------------------------------ placement

    def _fleet_snapshot(self) -> FleetSnapshot:
        """The placement snapshot of the cached fleet, rebuilt only when a Cluster (beyond its
        heartbeat), a Dataset or a Topology changed."""
        version = self.cache.cluster_version
        if self._snapshot is None or self._snapshot[0] != version:
            snapshot, problems = build_snapshot(
                self.cache.clusters, self.cache.datasets, self.cache.topologies, self._cluster_memo
            )
            for p in problems:
                log.warning("left out of the placement snapshot: %s", p)
            self._snapshot = (version, snapshot)
        return self._snapshot[1]

    def _queue_config(self) -> queueing.QueueConfig:
        """The stored Queues and PriorityClasses as the admission engine, rebuilt when they change."""
        version = self.cache.queue_version
        if self._queues is None or self._queues[0] != version:
            config = queueing.build_config(
                self.cache.queues, self.cache.priority_classes, self.settings.placement_profile
            )
            self._queues = (version, config)
        return self._queues[1]

    async def _place(self, pending: list[Obj], *, recount: bool = False) -> None:
        """Place the pending workloads: those not queued by priority as before, then the queued
        ones through admission (quotas, fair share, preemption) on what is left. `recount`: the
        admission pass runs (for the Queues' usage) even with no queued workload waiting."""
        snapshot = self._fleet_snapshot()
        known = known_models(snapshot.fleet_models())  # once per pass, not per workload: O(pools)
        config = self._queue_config()
        requests: list[WorkloadRequest] = []
        queued: list[QueuedWorkload] = []
        by_key: dict[str, Obj] = {}
        for w in pending:
            queue = config.queue_of(w)
            try:
                model = v1.Workload.model_validate(w)
                req = workload_from_api(model, snapshot, known)
                priority = workload_priority(model, config.classes)
            except PlacementInputError as exc:
                await self._set_pending(w, str(exc), queued=queue is not None, inadmissible=True)
                continue
            except Exception as exc:  # a stored object that no longer validates
                await self._set_pending(w, f"cannot place: {exc}", queued=queue is not None, inadmissible=True)
                continue
            req = replace(req, priority=priority)
            by_key[req.key] = w
            if queue is None:
                requests.append(req)
            else:
                created = str(_meta(w).get("creationTimestamp") or "")
                queued.append(QueuedWorkload(req, (w["spec"].get("queue") or None), priority, created))
        recount = recount and bool(config.queues)
        if not requests and not queued and not recount:
            return
        cluster_map = self.cache.cluster_map()
        held = reservations(self.cache.assignments, cluster_map)
        if requests:
            # As Engine.place_batch (one session, highest priority first), but committed every
            # DECIDE_CHUNK decisions: a placed Decision keeps its engine trace (arrays over every
            # option, ~1.5 MiB at 10,000 clusters) until it is committed, so deciding a backlog
            # of 10,000 before the first commit took the controller past 5.9 GB (bench_fleet),
            # and the first placement waited for the last decision.
            session = self.engine.session(snapshot, held)
            ordered = sorted(requests, key=lambda r: (-r.priority, r.namespace, r.name))
            unplaced: list[Decision] = []
            for start in range(0, len(ordered), DECIDE_CHUNK):
                decisions = [session.place(r) for r in ordered[start : start + DECIDE_CHUNK]]
                placed: list[tuple[Obj, Decision, dict[str, Any] | None]] = [
                    (by_key[d.workload.key], d, None) for d in decisions if d.placed
                ]
                for i in range(0, len(placed), COMMIT_BATCH):
                    await self._commit_placements(placed[i : i + COMMIT_BATCH], cluster_map)
                for d in decisions:
                    if d.placed:
                        held += d.reservations()
                    else:
                        unplaced.append(d)
                del decisions, placed
            await self._explain_unplaced(unplaced, by_key)
        if queued or recount:
            admitted = []
            for k, w in self.cache.workloads.items():
                if queueing.holding(w):
                    a = queueing.admitted_workload(w, self.cache.assignments_of(k))
                    if a is not None:
                        admitted.append(a)
            result = config.admission.decide(snapshot, queued, admitted, held)
            await self._apply_admission(result, by_key, cluster_map, admitted)
            self._usage_written = self._queues[0] if self._queues is not None else -1

    async def _explain_unplaced(self, decisions: list[Decision], by_key: dict[str, Obj]) -> None:
        """Write each unplaced workload's reason and explanation (and the Unschedulable Event
        when the reason is new) — unless its stored status already shows the engine's reason
        for its current spec from less than EXPLAIN_EVERY_SECONDS ago. Refreshes of older
        reasons share EXPLAIN_BUDGET_SECONDS per pass, oldest first; the skipped ones set the
        timer of the pass that refreshes them."""
        now = time.monotonic()
        fresh: list[tuple[Decision, Obj]] = []
        stale: list[tuple[float, Decision, Obj]] = []
        due: list[float] = []
        for d in decisions:
            w = by_key[d.workload.key]
            k = _key(w)
            if d.placed:
                self._explained.pop(k, None)
                continue
            seen = self._explained.get(k)
            if seen is None or not seen.shown_by(w):
                # No reason yet for this spec (new, changed, fenced, released), or someone else
                # rewrote it: explained now.
                fresh.append((d, w))
            elif seen.capacity_version == self._tried_version:
                continue  # explained against this very capacity: the same reason
            elif now - seen.at < EXPLAIN_EVERY_SECONDS:
                due.append(seen.at + EXPLAIN_EVERY_SECONDS)
            else:
                stale.append((seen.at, d, w))
        stale.sort(key=lambda x: x[0])
        for i, (d, w) in enumerate(fresh):
            if i and i % YIELD_EVERY == 0:
                await asyncio.sleep(0)
            await self._explain(d, w)
        spent = time.monotonic()
        for j, (_, d, w) in enumerate(stale):
            if time.monotonic() - spent > EXPLAIN_BUDGET_SECONDS:
                due.append(time.monotonic() + EXPLAIN_PAUSE_SECONDS)
                log.debug("%d pending workloads' reasons left for a later pass", len(stale) - j)
                break
            await self._explain(d, w)
            await asyncio.sleep(0)
        if due:
            first = min(due)
            self._explain_due = first if self._explain_due is None else min(self._explain_due, first)
        if len(self._explained) > 2 * len(self.cache.pending) + 100:  # forget deleted and placed ones
            self._explained = {k: v for k, v in self._explained.items() if k in self.cache.pending}

    async def _explain(self, d: Decision, w: Obj) -> None:
        await self._set_pending(w, d.reason, d.to_placement_record(explain_limit=placing.EXPLAIN_ROWS))
        generation = _meta(w).get("generation")
        self._explained[_key(w)] = Explained(d.reason, generation, time.monotonic(), self._tried_version)

    async def _apply_admission(
        self,
        result: AdmissionResult,
        by_key: dict[str, Obj],
        clusters: dict[str, Obj],
        admitted: list[AdmittedWorkload],
    ) -> None:
        """Commit what one admission pass decided: placements of the admitted (with their
        admission record, in the same transaction), evictions, waiting reasons, queue usage."""
        now = now_rfc3339()
        placed: list[tuple[Obj, Decision, dict[str, Any] | None]] = []
        preempting: set[str] = set()
        for d in result.decisions:
            w = by_key[d.key]
            if d.admitted and not d.victims and d.placement is not None:
                placed.append((w, d.placement, queueing.admission_record(d, now)))
                continue
            if d.admitted:
                # Not placed yet: its victims' copies must be gone from the spokes first.
                for e in d.victims:
                    await self._evict(e, d.queue)
                names = [e.key for e in d.victims]
                preempting.add(d.key)
                why = f"preempting {', '.join(names)}: admitted once their copies are removed ({d.reason})"
                await self._set_pending(w, why, queued=True, cond_reason=PREEMPTING_REASON, waiting_for=names)
                continue
            record = None
            if d.placement is not None and not d.placement.placed:
                record = d.placement.to_placement_record(explain_limit=placing.EXPLAIN_ROWS)
            await self._set_pending(w, d.reason, record, queued=True, inadmissible=d.phase == "Inadmissible")
        for i in range(0, len(placed), COMMIT_BATCH):
            await self._commit_placements(placed[i : i + COMMIT_BATCH], clusters)
        await self._write_queue_status(result, preempting, admitted)

    async def _write_queue_status(
        self, result: AdmissionResult, preempting: set[str], admitted: list[AdmittedWorkload]
    ) -> None:
        """Each Queue's usage per flavor, waiting and admitted counts, share — when they changed.
        Admitted = what held quota when the pass began (`admitted`, the engine's input) + what
        the pass admitted: counted from the cache instead, the pass's own admissions were
        counted twice whenever their events reached the cache before this ran."""
        holding: dict[str, int] = defaultdict(int)
        for a in admitted:
            holding[a.queue] += 1
        admitted_now: dict[str, int] = defaultdict(int)
        still_waiting: dict[str, int] = defaultdict(int)  # preemptors: admitted, not placed yet
        for d in result.decisions:
            if d.admitted and d.queue:
                (still_waiting if d.key in preempting else admitted_now)[d.queue] += 1
        changed = []
        for summary in result.queues:
            q = summary.queue
            names = {fq.flavor: fq.name for fq in q.flavors}
            new = queueing.queue_status(
                summary.usage,
                summary.pending + still_waiting[q.name],
                holding[q.name] + admitted_now[q.name],
                summary.share,
                names,
            )
            cached = self.cache.objects[QUEUES].get(("", q.name))
            if cached is None or status.same_status((cached.get("status") or {}), new):
                continue
            changed.append((q.name, new))
        if not changed:
            return

        async def fn(rtx: RegistryTx) -> None:
            for name, new in changed:
                cur = await rtx.get(QUEUE, None, name)
                if cur is not None and not status.same_status(cur.get("status") or {}, new):
                    await rtx.update_status(QUEUE, cur, new)

        await self.registry.transact(fn)

    async def _evict(self, e: Eviction, preemptor_queue: str | None) -> None:
        """Evict an admitted workload for a preemptor: the eviction record and Evicted=True, and
        — without a grace period — its Assignments withdrawn in the same transaction. Already
        evicted (an earlier pass chose it too): nothing to do."""
        ns, _, name = e.key.partition("/")
        cached = self.cache.workload((ns, name))
        if cached is None or queueing.evicting(cached) or not queueing.holding(cached):
            return
        reason = queueing.eviction_reason(e, preemptor_queue)

        async def fn(rtx: RegistryTx) -> None:
            cur = await rtx.get(WORKLOAD, ns, name)
            if cur is None or deleting(cur) or not queueing.holding(cur) or queueing.evicting(cur):
                return
            grace = int(cur["spec"].get("preemptionGracePeriodSeconds") or 0)
            now = time.time()
            new = queueing.evicted_status(cur, e, reason, grace, now_rfc3339(), now, withdraw=grace == 0)
            if grace == 0:
                await self._delete_current(rtx, cur)
            cur = await rtx.update_status(WORKLOAD, cur, status.settled_status(cur, new) or new)
            notice = e.reason if grace == 0 else f"{e.reason}; its copies are withdrawn in {grace}s"
            await self._record(rtx, cur, "Warning", reason, notice)

        await self.registry.transact(fn)
        log.info("workload %s evicted: %s", e.key, e.reason)

    async def _delete_current(self, rtx: RegistryTx, w: Obj) -> None:
        """Delete the workload's live Assignments of its current epoch (the agents remove the copies)."""
        ns, name = _key(w)
        epoch = ((w.get("status") or {}).get("placement") or {}).get("epoch")
        for a in self.cache.assignments_of((ns, name)):
            if a["spec"].get("epoch") != epoch:
                continue
            live = await rtx.get(ASSIGNMENT, ns, _meta(a)["name"])
            if live is not None and not deleting(live):
                await rtx.delete(ASSIGNMENT, live)

    async def _withdraw(self, w: Obj, current: list[Obj]) -> None:
        """An evicted workload's grace period is over: withdraw its Assignments."""
        ns, name = _key(w)

        async def fn(rtx: RegistryTx) -> None:
            cur = await rtx.get(WORKLOAD, ns, name)
            if cur is None or not queueing.evicting(cur):
                return
            await self._delete_current(rtx, cur)
            new = queueing.withdrawn_status(cur)
            await rtx.update_status(WORKLOAD, cur, status.settled_status(cur, new) or new)

        await self.registry.transact(fn)

    async def _release(self, w: Obj, why: str) -> None:
        """The workload's admission ends without it finishing: back in its queue."""
        ns, name = _key(w)

        async def fn(rtx: RegistryTx) -> None:
            cur = await rtx.get(WORKLOAD, ns, name)
            if cur is None or not queueing.holding(cur):
                return
            new = queueing.released_status(cur, why, now_rfc3339())
            await rtx.update_status(WORKLOAD, cur, status.settled_status(cur, new) or new)

        await self.registry.transact(fn)

    async def _set_pending(
        self,
        w: Obj,
        reason: str,
        record: dict[str, Any] | None = None,
        *,
        queued: bool = False,
        inadmissible: bool = False,
        cond_reason: str | None = None,
        waiting_for: list[str] | None = None,
    ) -> None:
        """A workload that waits, and why. `queued`: it waits in a queue (its Admitted condition
        says False with `cond_reason`: Pending, Inadmissible or Preempting; `waiting_for`: the
        victims whose copies must go first)."""
        why = cond_reason or (INADMISSIBLE_REASON if inadmissible else ADMISSION_PENDING_REASON)

        def build(cur: Obj, record: dict[str, Any] | None = record) -> tuple[dict[str, Any] | None, bool]:
            if queued:
                st = queueing.waiting_status(cur, reason, record, why, waiting_for, now_rfc3339())
                new_reason = st is not None and ((cur.get("status") or {}).get("message") != reason)
                return (status.settled_status(cur, st) if st is not None else None), new_reason
            pending = status.pending_status(cur, reason, record)
            return status.settled_status(cur, pending), pending is not None

        # Decide on the listed copy first: most passes change nothing, and then no row is locked.
        # The cached copy keeps a stub of its explanation (hub.controllers.cache.slim): compared
        # with the new record's stub.
        if build(w, slim_record(record))[0] is None:
            return
        ns, name = _key(w)

        async def fn(rtx: RegistryTx) -> None:
            cur = await rtx.get(WORKLOAD, ns, name)
            if cur is None or deleting(cur):
                return
            new_st, new_reason = build(cur)
            if new_st is not None:
                await rtx.update_status(WORKLOAD, cur, new_st)
            if new_reason:  # a new reason (or a new generation) not yet placeable
                await self._record(rtx, cur, "Warning", UNSCHEDULABLE_REASON, reason)

        await self.registry.transact(fn)

    async def _commit_placements(
        self, batch: list[tuple[Obj, Decision, dict[str, Any] | None]], clusters: dict[str, Obj]
    ) -> None:
        """ONE transaction per batch: each Workload's placement record, finalizer and Assignments.

        If the batch is refused (an object the registry will not store), each decision is
        retried in its own transaction, and the one that fails is left Pending with the reason:
        one bad workload must not stop placement for everyone."""
        stale: list[Obj] = []  # the workloads that changed since they were listed

        async def fn(rtx: RegistryTx) -> None:
            # Every Workload row of the batch and its "Placed" Event in ONE locking read.
            keys: list[tuple[Resource, str | None, str]] = []
            for w, _, _ in batch:
                ns, name = _key(w)
                keys += [(WORKLOAD, ns, name), (EVENT, ns, events.event_name(w, PLACED_REASON))]
            await rtx.prefetch(keys)
            for w, d, admission in batch:
                if not await self._stage_placement(rtx, w, d, clusters, admission):
                    stale.append(w)

        try:
            await self.registry.transact(fn)
        except ApiError:
            if len(batch) == 1:
                raise
            for one in batch:
                try:
                    await self._commit_placements([one], clusters)
                except ApiError as err:
                    ns, name = _key(one[0])
                    log.warning("workload %s/%s: placement not stored: %s", ns, name, err.message)
                    await self._set_pending(one[0], f"cannot store the placement: {err.message}")
            return
        self.clock.placed(batch, stale)
        if stale:
            self._dirty.set()  # those workloads changed while we decided: decide again

    async def _stage_placement(
        self, rtx: RegistryTx, w: Obj, d: Decision, clusters: dict[str, Obj], admission: dict[str, Any] | None = None
    ) -> bool:
        """Stage one decision (with the queue admission it took, if queued); False if the
        workload changed since it was listed."""
        ns, name = _key(w)
        cur = await rtx.get(WORKLOAD, ns, name)
        if cur is None or deleting(cur):
            return True
        if _meta(cur).get("resourceVersion") != _meta(w).get("resourceVersion"):
            return False
        epoch = placing.next_epoch(cur)
        cur = await rtx.add_finalizer(WORKLOAD, cur, WORKLOAD_FINALIZER)
        placed = placing.placed_status(cur, d, epoch, now_rfc3339())
        if admission is not None:
            placed = queueing.with_admission(cur, placed, admission, now_rfc3339())
        # A new epoch: the status differs from the stored one, no comparison needed.
        cur = await rtx.update_status(WORKLOAD, cur, status.settled_status(cur, placed, changed=True) or placed)
        for asg in placing.assignments_for(cur, d, epoch, clusters):
            await rtx.create(ASSIGNMENT, asg, keep_status=True)
        await self._record(rtx, cur, "Normal", PLACED_REASON, f"{placed['message']} (epoch {epoch})")
        return True

    # ------------------------------------------------------------------ failover

    async def _fence(self, w: Obj, current: list[Obj], lost: list[Obj]) -> None:
        """Supersede the current epoch: delete its Assignments and mark the workload for re-placement."""
        ns, name = _key(w)
        why = ", ".join(status.lost_reason(a) for a in lost)

        async def fn(rtx: RegistryTx) -> None:
            cur = await rtx.get(WORKLOAD, ns, name)
            if cur is None:
                return
            for a in current:
                live = await rtx.get(ASSIGNMENT, ns, _meta(a)["name"])
                if live is not None and not deleting(live):
                    await rtx.delete(ASSIGNMENT, live)
            fenced = status.fenced_status(cur, why)
            if queueing.holding(cur):  # its quota goes back: it is admitted again like any other
                fenced = queueing.released_status(
                    {**cur, "status": fenced}, f"re-placing after losing {why}", now_rfc3339()
                )
            cur = await rtx.update_status(WORKLOAD, cur, status.settled_status(cur, fenced) or fenced)
            for a in lost:
                cluster = a["spec"]["clusterName"]
                if (a.get("status") or {}).get("reason") == PREEMPTED_REASON:
                    msg = f"the copy on {cluster} was evicted (spot interruption): re-placing"
                    await self._record(rtx, cur, "Warning", EVICTED_REASON, msg)
                else:
                    msg = f"cluster {cluster} is NotReady: re-placing the copy it ran elsewhere"
                    await self._record(rtx, cur, "Warning", FAILOVER_REASON, msg)

        await self.registry.transact(fn)
        log.warning(
            "workload %s/%s: fenced epoch %s after losing %s",
            ns,
            name,
            ((w.get("status") or {}).get("placement") or {}).get("epoch"),
            why,
        )

    # ------------------------------------------------------------------ status

    async def _write_aggregates(self, updates: list[StatusUpdate]) -> None:
        """Write status updates COMMIT_BATCH per transaction, re-checked on the locked row."""
        for i in range(0, len(updates), COMMIT_BATCH):
            chunk = updates[i : i + COMMIT_BATCH]

            async def fn(rtx: RegistryTx, chunk: list[StatusUpdate] = chunk) -> None:
                await rtx.prefetch([(WORKLOAD, ns, name) for ns, name, _, _ in chunk])  # one locking read
                for ns, name, phase, per_cluster in chunk:
                    cur = await rtx.get(WORKLOAD, ns, name)
                    if cur is None:
                        continue
                    new = status.settled_status(cur, status.aggregated_status(cur, phase, per_cluster))
                    if new is not None:
                        await rtx.update_status(WORKLOAD, cur, new)

            await self.registry.transact(fn)

    # ------------------------------------------------------------------ deletion

    async def _add_finalizer(self, w: Obj) -> None:
        ns, name = _key(w)

        async def fn(rtx: RegistryTx) -> None:
            cur = await rtx.get(WORKLOAD, ns, name)
            if cur is not None and not deleting(cur):
                await rtx.add_finalizer(WORKLOAD, cur, WORKLOAD_FINALIZER)

        await self.registry.transact(fn)

    async def _delete_workload(self, w: Obj, mine: list[Obj]) -> None:
        """Delete a deleting workload's Assignments; release its finalizer once none is left."""
        ns, name = _key(w)

        async def fn(rtx: RegistryTx) -> None:
            remaining = 0
            for a in mine:
                live = await rtx.get(ASSIGNMENT, ns, _meta(a)["name"])
                if live is None:
                    continue
                remaining += 1
                await rtx.delete(ASSIGNMENT, live)
            if remaining:
                return
            cur = await rtx.get(WORKLOAD, ns, name)
            if cur is not None and WORKLOAD_FINALIZER in (_meta(cur).get("finalizers") or []):
                await rtx.remove_finalizer(WORKLOAD, cur, WORKLOAD_FINALIZER)
                await self._record(rtx, cur, "Normal", DELETED_REASON, "its copies are removed from every cluster")

        await self.registry.transact(fn)


@dataclass(frozen=True)
class Explained:
    """The reason the controller last wrote (or found stored) for an unplaced workload."""

    reason: str
    generation: Any
    at: float  # time.monotonic()
    capacity_version: int  # the cache.capacity_version it was decided against; -1: unknown

    def shown_by(self, w: Obj) -> bool:
        """`w`'s stored status still shows this reason, as the engine's, for its current spec."""
        return (
            shows_engine_reason(w) and self.generation == _meta(w).get("generation") and self.reason == stored_reason(w)
        )


def stored_reason(w: Obj) -> str:
    return str(((w.get("status") or {}).get("placement") or {}).get("reason") or "")


def shows_engine_reason(w: Obj) -> bool:
    """The stored status is an unplaced workload's, as `_set_pending` writes it from an engine
    decision for the workload's current generation: a reason, an explanation that says not
    placed, no clusters. Not so for a fenced or released workload (its reason is why it lost
    its placement) or one whose spec changed since."""
    st = w.get("status") or {}
    placement = st.get("placement") or {}
    explanation = placement.get("explanation")
    return (
        bool(placement.get("reason"))
        and not placement.get("clusters")
        and isinstance(explanation, dict)
        and explanation.get("placed") is False
        and st.get("observedGeneration") == _meta(w).get("generation")
    )


class ControllerHealth:
    """What /readyz reports about the controller of this process: its role, and whether its
    passes succeed and finish. A leader whose passes have failed for longer than `stuck_after`
    seconds, or whose current pass has run that long (wedged: a lock it waits on, a hung
    connection), is not ready, so an orchestrator restarts it (and another replica takes over)."""

    def __init__(self, stuck_after: float = 60.0) -> None:
        self.role = "starting"
        self.stuck_after = stuck_after
        self.last_ok = time.monotonic()
        self.failing_since: float | None = None
        self.pass_started: float | None = None
        self.last_error = ""

    def standby(self) -> None:
        self.role, self.failing_since, self.pass_started = "standby", None, None
        metrics.CONTROLLER_LEADER.set(0)
        observed.clear_fleet_gauges()

    def lead(self) -> None:
        self.role = "leader"
        metrics.CONTROLLER_LEADER.set(1)

    def begin_pass(self) -> None:
        self.pass_started = time.monotonic()

    def passed(self) -> None:
        if self.pass_started is not None:
            metrics.CONTROLLER_PASS_SECONDS.observe(time.monotonic() - self.pass_started)
        self.last_ok, self.failing_since, self.last_error = time.monotonic(), None, ""
        self.pass_started = None

    def failed(self, exc: BaseException) -> None:
        if self.failing_since is None:
            self.failing_since = time.monotonic()
        self.last_error = type(exc).__name__
        self.pass_started = None

    def summary(self) -> str:
        """Role and the age of the last successful pass (no internals)."""
        ago = time.monotonic() - self.last_ok
        text = f"{self.role}, last successful pass {ago:.1f}s ago" if self.role == "leader" else self.role
        return f"{text}; {self.problem()}" if self.problem() else text

    def problem(self) -> str | None:
        """None when healthy, else a short reason (no internals: it is served unauthenticated)."""
        now = time.monotonic()
        if self.failing_since is not None and now - self.failing_since > self.stuck_after:
            return f"controller ({self.role}) failing for {now - self.failing_since:.0f}s"
        if self.pass_started is not None and now - self.pass_started > self.stuck_after:
            return f"controller ({self.role}) wedged: one pass has run for {now - self.pass_started:.0f}s"
        return None
