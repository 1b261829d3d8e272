"""The federation controller's informer: what it knows of the fleet, kept in memory.

Like a client-go informer, the cache is filled by ONE list per resource when this process
becomes the leader, then kept current by the events the process's watch poller dispatches
(`Broadcaster.listeners`: every committed event, in resourceVersion order). A pass of the
controller reads only this cache; it never lists the fleet again.

Indexes: objects by key per resource; Assignments by workload and by cluster; the pending set
(workloads that need a placement decision); the dirty set (workloads whose own object or whose
Assignments changed since the last pass, or whose cluster changed readiness); cluster digests
(what placement reads of a Cluster, heartbeat times excluded); and a capacity version that
counts changes to what the placement snapshot and the reservations are built from.

The seam between list and watch: each resource's list is consistent as of its resourceVersion
L (the store reads it in one REPEATABLE READ transaction). Events dispatched while the lists run
are buffered and replayed after them, and every event of that resource at or below L is
ignored (the list already shows it), as is any event older than the cached object's own
resourceVersion. Event resourceVersions are dense (hub.store.schema): an event that skips one is
a gap, and the cache asks to be listed again rather than guess.

Objects are the dicts the events (and the list) carry, shared with the watch fan-out: nothing
here or in the controller may change them in place. Pure logic, no I/O: tested without a
database in tests/unit/hub/test_controller_cache.py.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from collections.abc import Iterable
from typing import Any

from fleetplane_types.conditions import is_ready
from fleetplane_types.names import (
    ASSIGNMENTS,
    CLUSTERS,
    DATASETS,
    NAMESPACES,
    PRIORITY_CLASSES,
    QUEUES,
    TOPOLOGIES,
    WORKLOADS,
)
from hub.controllers.health import cluster_digest
from hub.controllers.status import canonical
from hub.store.store import Event

log = logging.getLogger(__name__)

Obj = dict[str, Any]
Key = tuple[str, str]  # (namespace, name); namespace "" for cluster-scoped kinds

CACHED = (CLUSTERS, WORKLOADS, ASSIGNMENTS, DATASETS, TOPOLOGIES, NAMESPACES, QUEUES, PRIORITY_CLASSES)
"""Resources the cache lists and follows; everything else an event names is only counted."""

TERMINAL_PHASES = ("Succeeded", "Failed")


def _meta(o: Obj) -> dict[str, Any]:
    m = o.get("metadata")
    return m if isinstance(m, dict) else {}


def _rv(o: Obj | None) -> int:
    try:
        return int(_meta(o or {}).get("resourceVersion") or 0)
    except (TypeError, ValueError):
        return 0


def _configuration(o: Obj) -> Obj:
    """What admission reads of a Queue or PriorityClass: everything but status and metadata."""
    return {k: v for k, v in o.items() if k not in ("status", "metadata")}


def key_of(o: Obj) -> Key:
    m = _meta(o)
    return str(m.get("namespace") or ""), str(m.get("name") or "")


def workload_key_of(assignment: Obj) -> Key:
    """The (namespace, name) of the Workload an Assignment belongs to."""
    ref = (assignment.get("spec") or {}).get("workloadRef") or {}
    return str(_meta(assignment).get("namespace") or ""), str(ref.get("name") or "")


def is_deleting(o: Obj) -> bool:
    return bool(_meta(o).get("deletionTimestamp"))


def epoch_of(w: Obj) -> Any:
    return ((w.get("status") or {}).get("placement") or {}).get("epoch")


def current_assignments(w: Obj, mine: Iterable[Obj]) -> list[Obj]:
    """The workload's live Assignments of its current epoch."""
    epoch = epoch_of(w)
    return [a for a in mine if (a.get("spec") or {}).get("epoch") == epoch and not is_deleting(a)]


def needs_placement(w: Obj, mine: Iterable[Obj]) -> bool:
    """A live, unfinished workload with no epoch yet or no live Assignment of its epoch."""
    if is_deleting(w) or (w.get("status") or {}).get("phase") in TERMINAL_PHASES:
        return False
    return epoch_of(w) is None or not current_assignments(w, mine)


def explanation_stub(explanation: Any) -> Any:
    """What the cache keeps of a stored placement explanation (status.placement.explanation):
    whether it says placed, and for a not-placed one a digest of its canonical form.

    The explanation is most of a placed Workload's bytes (~10 KB of JSON, ~38 KiB decoded at
    10,000 clusters: the request, the best ten clusters with every plugin's score), and the
    controller never reads it back: `shows_engine_reason` reads `placed`, and the only
    comparison of one with a new one is `_set_pending`'s check on the cached copy, which
    compares stubs (`slim_record`); equal digests ⇔ equal canonical explanations. Every write
    is built from the row read in its transaction, which has the whole explanation."""
    if not isinstance(explanation, dict):
        return explanation
    placed = explanation.get("placed")
    if placed is not False:
        return {"placed": placed}
    text = json.dumps(canonical(explanation), sort_keys=True, separators=(",", ":"))
    return {"placed": placed, "digest": hashlib.blake2b(text.encode(), digest_size=16).hexdigest()}


def slim_record(record: dict[str, Any] | None) -> dict[str, Any] | None:
    """A new placement record as the cache would keep it (its explanation as `explanation_stub`),
    to compare with a cached Workload's status."""
    if record is None or "explanation" not in record:
        return record
    return {**record, "explanation": explanation_stub(record["explanation"])}


def slim(resource: str, o: Obj) -> Obj:
    """The copy of a Workload or Assignment the cache keeps: without metadata.managedFields
    (field ownership is the registry's, on the row it writes), a Workload's placement
    explanation as a stub, an Assignment without its manifests (the controller builds
    Assignments from the Workload, never from another Assignment). At 100,000 placed workloads
    the whole objects took the controller past 4 GB (bench/results/fleet.md). `o` is shared
    with the watch fan-out: it is copied where it changes, never changed."""
    if resource not in (WORKLOADS, ASSIGNMENTS) or not isinstance(o, dict):
        return o
    out = dict(o)
    meta = o.get("metadata")
    if isinstance(meta, dict) and "managedFields" in meta:
        out["metadata"] = {k: v for k, v in meta.items() if k != "managedFields"}
    spec = o.get("spec")
    if resource == ASSIGNMENTS and isinstance(spec, dict) and "manifests" in spec:
        out["spec"] = {k: v for k, v in spec.items() if k != "manifests"}
    st = o.get("status")
    if resource == WORKLOADS and isinstance(st, dict):
        placement = st.get("placement")
        if isinstance(placement, dict) and "explanation" in placement:
            stub = explanation_stub(placement["explanation"])
            out["status"] = {**st, "placement": {**placement, "explanation": stub}}
    return out


class FleetCache:
    """In-memory indexes of the fleet, fed by one list and then by every committed event."""

    def __init__(self) -> None:
        self.objects: dict[str, dict[Key, Obj]] = {r: {} for r in CACHED}
        self.by_workload: dict[Key, dict[str, Obj]] = {}  # workload key → assignment name → Assignment
        self.by_cluster: dict[str, set[Key]] = {}  # cluster name → assignment keys
        self.pending: set[Key] = set()
        self.dirty: set[Key] = set()
        self.capacity_version = 0
        """Counts changes to what placement reads (cluster digests, Datasets, Topologies, Assignments)."""
        self.cluster_version = 0
        """Counts changes to what the snapshot is built from (cluster digests, Datasets, Topologies)."""
        self.queue_version = 0
        """Counts changes to Queue specs and PriorityClasses (not to Queue status, the controller's own)."""
        self.synced = False
        self.last_rv = 0  # the last event rv dispatched to the cache (whatever its resource)
        self.lists = 0  # completed (re)lists, for tests and metrics
        self.gaps = 0
        self._list_rv: dict[str, int] = {}
        self._buffer: list[Event] | None = None
        self._digests: dict[str, int] = {}
        self._waiters: list[tuple[int, asyncio.Future[None]]] = []

    # ------------------------------------------------------------------ reads

    @property
    def clusters(self) -> list[Obj]:
        return list(self.objects[CLUSTERS].values())

    def cluster_map(self) -> dict[str, Obj]:
        return {name: c for (_, name), c in self.objects[CLUSTERS].items()}

    def workload(self, key: Key) -> Obj | None:
        return self.objects[WORKLOADS].get(key)

    def assignments_of(self, key: Key) -> list[Obj]:
        return list(self.by_workload.get(key, {}).values())

    @property
    def assignments(self) -> list[Obj]:
        return list(self.objects[ASSIGNMENTS].values())

    @property
    def queues(self) -> list[Obj]:
        return list(self.objects[QUEUES].values())

    @property
    def priority_classes(self) -> list[Obj]:
        return list(self.objects[PRIORITY_CLASSES].values())

    @property
    def workloads(self) -> dict[Key, Obj]:
        return self.objects[WORKLOADS]

    @property
    def datasets(self) -> list[Obj]:
        return list(self.objects[DATASETS].values())

    @property
    def topologies(self) -> list[Obj]:
        return list(self.objects[TOPOLOGIES].values())

    def namespace_open(self, namespace: str | None) -> bool:
        """The namespace exists and is not being deleted (it may hold new objects)."""
        ns = self.objects[NAMESPACES].get(("", namespace or ""))
        return bool(namespace) and ns is not None and not is_deleting(ns)

    def ready_clusters(self) -> set[str]:
        return {name for (_, name), c in self.objects[CLUSTERS].items() if is_ready(c)}

    # ------------------------------------------------------------------ list

    def invalidate(self) -> None:
        """Forget everything: the next pass lists again (leadership (re)acquired, a gap, a failed pass)."""
        self.synced = False

    def begin_list(self, dispatched_rv: int = 0) -> None:
        """Events from now on are buffered until `finish_list` (they may be newer than the lists).

        `dispatched_rv`: the broadcaster's last dispatched resourceVersion now. The lists that
        follow hold everything up to it, so the cache counts as caught up that far even if it
        never saw those events (they were committed before this process started): without it,
        the first pass after a hub restart on a quiet fleet waited CATCH_UP_SECONDS for an
        event that was never coming."""
        self.synced = False
        self._buffer = []
        self.last_rv = max(self.last_rv, dispatched_rv)

    def load(self, resource: str, items: list[Obj], rv: int) -> None:
        """One resource's list, consistent as of resourceVersion `rv`."""
        self.objects[resource] = {key_of(o): slim(resource, o) for o in items}
        self._list_rv[resource] = rv

    def finish_list(self) -> None:
        """Rebuild the indexes from the lists, replay the buffered events, mark every workload dirty."""
        self.by_workload, self.by_cluster = {}, {}
        for k, a in self.objects[ASSIGNMENTS].items():
            self._index_assignment(k, a)
        self._digests = {name: cluster_digest(c) for (_, name), c in self.objects[CLUSTERS].items()}
        buffered, self._buffer = self._buffer or [], None
        self.synced = True
        for ev in buffered:
            self._apply(ev)
        self.pending = {k for k, w in self.objects[WORKLOADS].items() if needs_placement(w, self.assignments_of(k))}
        self.dirty = set(self.objects[WORKLOADS])
        self.capacity_version += 1
        self.cluster_version += 1
        self.queue_version += 1
        self.lists += 1

    def abandon_list(self) -> None:
        self._buffer = None
        self.synced = False

    # ------------------------------------------------------------------ events

    def apply(self, ev: Event) -> bool:
        """Apply one dispatched event; True when a controller pass has something to do."""
        if self.last_rv and ev.rv > self.last_rv + 1 and self.synced:
            self.gaps += 1
            log.warning("controller cache: events %d..%d never arrived; listing again", self.last_rv + 1, ev.rv - 1)
            self.synced = False
        self.last_rv = max(self.last_rv, ev.rv)
        self._wake_waiters()
        if ev.resource not in self.objects:
            return False
        if self._buffer is not None:
            self._buffer.append(ev)
            return False
        if not self.synced:
            return True  # a pass lists first
        return self._apply(ev)

    def _apply(self, ev: Event) -> bool:
        if ev.rv <= self._list_rv.get(ev.resource, 0):
            return False  # the list already shows this change
        store = self.objects[ev.resource]
        k = (ev.namespace or "", ev.name)
        old = store.get(k)
        if old is not None and _rv(old) >= ev.rv:
            return False
        if ev.type == "DELETED":
            store.pop(k, None)
            new = None
        else:
            store[k] = new = slim(ev.resource, ev.object)
        if ev.resource == WORKLOADS:
            self._classify(k)
            return True
        if ev.resource == ASSIGNMENTS:
            if old is not None:
                self._unindex_assignment(k, old)
            if new is not None:
                self._index_assignment(k, new)
            self._classify(workload_key_of(new or old or {}))
            self.capacity_version += 1
            return True
        if ev.resource == CLUSTERS:
            return self._cluster_changed(ev.name, old, new)
        if ev.resource in (DATASETS, TOPOLOGIES):
            self.capacity_version += 1
            self.cluster_version += 1
            return True
        if ev.resource in (QUEUES, PRIORITY_CLASSES):
            if old is not None and new is not None and _configuration(old) == _configuration(new):
                return False  # the admission pass's own Queue status write
            self.queue_version += 1
            self.capacity_version += 1  # pending workloads are tried again under the new quotas
            return True
        return False  # Namespaces: only read by `namespace_open`

    def _cluster_changed(self, name: str, old: Obj | None, new: Obj | None) -> bool:
        """A heartbeat-only change updates the cached object and nothing else; a change in what
        placement reads bumps the versions; a readiness change marks the cluster's workloads dirty."""
        digest = cluster_digest(new) if new is not None else None
        if new is not None and self._digests.get(name) == digest:
            return False
        if digest is None:
            self._digests.pop(name, None)
        else:
            self._digests[name] = digest
        self.capacity_version += 1
        self.cluster_version += 1
        if old is None or new is None or is_ready(old) != is_ready(new):
            for ak in self.by_cluster.get(name, ()):
                a = self.objects[ASSIGNMENTS].get(ak)
                if a is not None:
                    self.dirty.add(workload_key_of(a))
        return True

    def _index_assignment(self, k: Key, a: Obj) -> None:
        self.by_workload.setdefault(workload_key_of(a), {})[k[1]] = a
        cluster = (a.get("spec") or {}).get("clusterName")
        if cluster:
            self.by_cluster.setdefault(str(cluster), set()).add(k)

    def _unindex_assignment(self, k: Key, a: Obj) -> None:
        wk = workload_key_of(a)
        mine = self.by_workload.get(wk)
        if mine is not None:
            mine.pop(k[1], None)
            if not mine:
                del self.by_workload[wk]
        cluster = (a.get("spec") or {}).get("clusterName")
        on = self.by_cluster.get(str(cluster))
        if on is not None:
            on.discard(k)
            if not on:
                del self.by_cluster[str(cluster)]

    def _classify(self, wk: Key) -> None:
        """The workload changed (or its Assignments did): dirty, and pending if it needs placing."""
        w = self.objects[WORKLOADS].get(wk)
        if w is None:
            self.pending.discard(wk)
            self.dirty.discard(wk)
            return
        self.dirty.add(wk)
        if needs_placement(w, self.assignments_of(wk)):
            self.pending.add(wk)
        else:
            self.pending.discard(wk)

    def take_dirty(self) -> set[Key]:
        """The dirty workloads, handed to one pass (the set starts empty again)."""
        out, self.dirty = self.dirty, set()
        return out

    # ------------------------------------------------------------------ read-your-writes

    async def caught_up(self, rv: int, timeout: float) -> bool:
        """Wait until the event at `rv` has been dispatched to the cache; False after `timeout` s.

        A pass starts by waiting for the store's current resourceVersion, so it sees its own
        previous writes (the Assignments it created hold capacity) — the consistent read
        kube-apiserver's watch cache does for a list."""
        if self.last_rv >= rv:
            return True
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append((rv, fut))
        try:
            await asyncio.wait_for(fut, timeout)
            return True
        except TimeoutError:
            return False
        finally:
            self._waiters = [(r, f) for r, f in self._waiters if f is not fut]

    def _wake_waiters(self) -> None:
        if not self._waiters:
            return
        for rv, fut in self._waiters:
            if rv <= self.last_rv and not fut.done():
                fut.set_result(None)
