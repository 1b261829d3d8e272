"""Federation controllers: placement, status aggregation, cluster health and failover, deletion.

One loop, active in ONE hub process per database (a Postgres advisory lock held on a dedicated
connection). It is event-driven: every committed change to a Workload, Cluster, Assignment,
Dataset or Topology (seen through the process's watch poller) marks the loop dirty; a pass
runs after a short debounce. The only timer is the next cluster-heartbeat expiry.

A pass:
1. Health: a cluster whose heartbeat is older than `cluster_timeout_seconds` gets
   Ready=False (reason HeartbeatTimeout).
2. Failover: workloads with `failover: Replace` whose current Assignment sits on a NotReady
   cluster, or whose Assignment reports reason Preempted (spot interruption), are re-placed
   with epoch+1; the old Assignment is deleted (its agent-cleanup finalizer keeps it until
   the old cluster's agent, when back, has removed the stale copy).
3. Placement: pending workloads, highest priority first, against ONE snapshot of cluster
   capacity minus in-flight reservations. Each decision is written atomically — the
   Workload's status (phase Placed, clusters, epoch, explanation), its finalizer and its
   Assignment(s) — with up to COMMIT_BATCH decisions per transaction.
4. Status: each placed Workload's phase and per-cluster status from its Assignments'
   status, never moving backward (Pending < Placed < Running < Succeeded/Failed).
5. Deletion: a deleted Workload's Assignments are deleted; its finalizer is released when
   none is left (each Assignment waits for its agent to confirm cleanup).

Reservations: an Assignment holds its GPUs (pool and nodes in the annotation
fleetplane.io/reservation) until its cluster's capacity report reflects it — the Assignment is
Running and the cluster's heartbeat is newer than that status — or until it ends.
"""

from __future__ import annotations

import asyncio
import copy
import json
import logging
import time
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from sqlalchemy import text

from hub.apis import v1alpha1 as v1
from hub.store.store import Event, Obj, Tx, now_rfc3339

if TYPE_CHECKING:
    from hub.server import Hub

log = logging.getLogger(__name__)

WORKLOADS = "fleetplane.io/workloads"
ASSIGNMENTS = "fleetplane.io/assignments"
CLUSTERS = "fleetplane.io/clusters"
DATASETS = "fleetplane.io/datasets"
TOPOLOGIES = "fleetplane.io/topologies"
WATCHED = {WORKLOADS, ASSIGNMENTS, CLUSTERS, DATASETS, TOPOLOGIES}

WORKLOAD_FINALIZER = "fleetplane.io/placement"
AGENT_FINALIZER = "fleetplane.io/agent-cleanup"
RESERVATION_ANNOTATION = "fleetplane.io/reservation"
LEADER_LOCK_KEY = 0x46504C41  # "FPLA"
EXPLAIN_ROWS = 50
COMMIT_BATCH = 50

PHASE_RANK = {None: 0, "Pending": 0, "Placed": 1, "Running": 2, "Succeeded": 3, "Failed": 3}
TERMINAL_ASSIGNMENT = {"Succeeded", "Failed", "Rejected"}


def _parse_time(ts: str | None) -> float | None:
    if not ts:
        return None
    try:
        return datetime.strptime(ts[:19], "%Y-%m-%dT%H:%M:%S").replace(tzinfo=timezone.utc).timestamp()
    except ValueError:
        return None


def _meta(o: Obj) -> dict[str, Any]:
    return o.setdefault("metadata", {})


def _ready(cluster: Obj) -> bool:
    for c in (cluster.get("status") or {}).get("conditions") or []:
        if c.get("type") == "Ready":
            return bool(c.get("status") == "True")
    return False


def scale_manifest(m: Obj, replicas: int) -> Obj:
    """Give one cluster its replicas: Workload.spec.replicas is the source of truth.

    Deployments/StatefulSets/ReplicaSets: spec.replicas. Jobs: parallelism and completions.
    Other kinds (PyTorchJob, RayJob …) are applied as written; their own replica fields are
    the user's to set (documented in docs/federation.md).
    """
    m = copy.deepcopy(m)
    kind = m.get("kind")
    spec = m.setdefault("spec", {})
    if kind in ("Deployment", "StatefulSet", "ReplicaSet"):
        spec["replicas"] = replicas
    elif kind == "Job":
        spec["parallelism"] = replicas
        spec["completions"] = replicas
    return m


class FederationController:
    def __init__(self, hub: Hub) -> None:
        self.hub = hub
        self.store = hub.store
        self.settings = hub.settings
        self._dirty = asyncio.Event()
        self._cluster_digests: dict[str, int] = {}
        self._last_clusters: list[Obj] = []
        self.passes = 0
        from placement import Engine

        self.engine = Engine(self.settings.placement_profile)

    def _on_event(self, ev: Event) -> None:
        if ev.resource not in WATCHED:
            return
        if ev.resource == CLUSTERS and ev.type == "MODIFIED":
            # Heartbeats arrive every few seconds from every cluster; only a change in what
            # placement reads (spec, labels, conditions, capacity) needs a pass. Expiry has its timer.
            digest = _cluster_digest(ev.object)
            if self._cluster_digests.get(ev.name) == digest:
                return
            self._cluster_digests[ev.name] = digest
        self._dirty.set()

    # ------------------------------------------------------------------ leadership

    async def run(self) -> None:
        self.hub.broadcaster.listeners.append(self._on_event)
        while True:
            conn = await self.store.engine.connect()
            try:
                got = (await conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": LEADER_LOCK_KEY})).scalar()
                await conn.commit()
                if not got:
                    await conn.close()
                    await asyncio.sleep(2)
                    continue
                log.info("this hub process runs the federation controllers")
                await self._lead(conn)
            except asyncio.CancelledError:
                raise
            except Exception:  # lost the database or a pass failed badly: step down, retry
                log.exception("federation controller stopped; retrying")
                await asyncio.sleep(1)
            finally:
                try:
                    await conn.close()
                except Exception:
                    pass

    async def _lead(self, lock_conn: Any) -> None:
        self._dirty.set()
        while True:
            timeout = await self._next_timer()
            try:
                await asyncio.wait_for(self._dirty.wait(), timeout=timeout)
            except asyncio.TimeoutError:
                pass
            await asyncio.sleep(self.settings.placement_debounce_seconds)
            self._dirty.clear()
            await lock_conn.execute(text("SELECT 1"))  # still holding the session lock?
            await lock_conn.commit()
            try:
                await self.reconcile()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("federation pass failed; will retry")
                await asyncio.sleep(0.5)
                self._dirty.set()

    async def _next_timer(self) -> float:
        """Seconds until the earliest Ready cluster's heartbeat expires (bounded).

        Uses the clusters the last pass listed: heartbeats since then only push expiry later,
        so the timer may fire early (a cheap pass that finds nothing expired), never late."""
        clusters = self._last_clusters
        now = time.time()
        soonest = 30.0
        for c in clusters:
            hb = _parse_time((c.get("status") or {}).get("heartbeatTime"))
            if hb is not None and _ready(c):
                soonest = min(soonest, max(0.05, hb + self.settings.cluster_timeout_seconds - now + 0.05))
        return soonest

    # ------------------------------------------------------------------ one pass

    async def reconcile(self) -> None:
        self.passes += 1
        clusters, _, _ = await self.store.list(CLUSTERS, namespaces=None)
        if await self._health(clusters):
            clusters, _, _ = await self.store.list(CLUSTERS, namespaces=None)
        self._last_clusters = clusters
        workloads, _, _ = await self.store.list(WORKLOADS, namespaces=None)
        assignments, _, _ = await self.store.list(ASSIGNMENTS, namespaces=None)
        by_workload: dict[tuple[str, str], list[Obj]] = {}
        for a in assignments:
            key = (_meta(a).get("namespace", ""), (a.get("spec") or {}).get("workloadRef", {}).get("name", ""))
            by_workload.setdefault(key, []).append(a)
        ready = {_meta(c)["name"] for c in clusters if _ready(c)}

        pending: list[Obj] = []
        updates: list[tuple[str, str, str, list[dict[str, Any]]]] = []
        for w in workloads:
            key = (_meta(w).get("namespace", ""), _meta(w)["name"])
            mine = by_workload.get(key, [])
            if _meta(w).get("deletionTimestamp"):
                await self._delete_workload(w, mine)
                continue
            epoch = ((w.get("status") or {}).get("placement") or {}).get("epoch")
            if epoch is not None and WORKLOAD_FINALIZER not in (_meta(w).get("finalizers") or []):
                # Placement adds it in its own transaction; this only mends older objects.
                await self._add_finalizer(w)
            current = [a for a in mine if a["spec"].get("epoch") == epoch and not _meta(a).get("deletionTimestamp")]
            phase = (w.get("status") or {}).get("phase")
            if phase in ("Succeeded", "Failed"):
                continue
            if epoch is None or not current:
                pending.append(w)
                continue
            lost = [a for a in current if a["spec"]["clusterName"] not in ready
                    or (a.get("status") or {}).get("reason") == "Preempted"]
            if lost and w["spec"].get("failover", "Replace") == "Replace":
                await self._fence(w, current, lost)
                pending.append(await self.store.get(WORKLOADS, key[0], key[1]) or w)
                continue
            if (update := self._aggregate(w, current, lost)) is not None:
                updates.append(update)
        await self._write_aggregates(updates)
        if pending:
            await self._place(pending, clusters, assignments)

    # ------------------------------------------------------------------ health

    async def _health(self, clusters: list[Obj]) -> bool:
        """Mark clusters with an expired heartbeat NotReady; True if any was marked."""
        now = time.time()
        marked = False
        for c in clusters:
            st = c.get("status") or {}
            hb = _parse_time(st.get("heartbeatTime"))
            if not _ready(c) or hb is None or now - hb <= self.settings.cluster_timeout_seconds:
                continue
            name = _meta(c)["name"]

            async def mark(tx: Tx, name: str = name) -> None:
                cur = await tx.get(CLUSTERS, "", name)
                if cur is None or not _ready(cur):
                    return
                conds = [x for x in (cur.get("status") or {}).get("conditions") or [] if x.get("type") != "Ready"]
                conds.append({"type": "Ready", "status": "False", "reason": "HeartbeatTimeout",
                              "message": f"no heartbeat for more than {self.settings.cluster_timeout_seconds:g}s",
                              "lastTransitionTime": now_rfc3339()})
                cur.setdefault("status", {})["conditions"] = conds
                tx.update(CLUSTERS, cur)

            await self.store.transact(mark)
            marked = True
            log.warning("cluster %s missed its heartbeat: NotReady", name)
        return marked

    # ------------------------------------------------------------------ placement

    def _reservations(self, assignments: list[Obj], clusters: dict[str, Obj]) -> list[Any]:
        return reservations(assignments, clusters)

    async def _place(self, pending: list[Obj], clusters: list[Obj], assignments: list[Obj]) -> None:
        from placement import PlacementInputError
        from placement.manifests import workload_from_api

        datasets, _, _ = await self.store.list(DATASETS, namespaces=None)
        topologies, _, _ = await self.store.list(TOPOLOGIES, namespaces=None)
        snapshot, problems = build_snapshot(clusters, datasets, topologies)
        for p in problems:
            log.warning("left out of the placement snapshot: %s", p)
        requests = []
        by_key: dict[str, Obj] = {}
        for w in pending:
            try:
                req = workload_from_api(v1.Workload.model_validate(w), snapshot)
            except PlacementInputError as exc:
                await self._set_pending(w, str(exc))
                continue
            except Exception as exc:  # a stored object that no longer validates
                await self._set_pending(w, f"cannot place: {exc}")
                continue
            requests.append(req)
            by_key[req.key] = w
        if not requests:
            return
        cluster_map = {_meta(c)["name"]: c for c in clusters}
        decisions = self.engine.place_batch(snapshot, requests, self._reservations(assignments, cluster_map))
        placed = [(by_key[d.workload.key], d) for d in decisions if d.placed]
        for i in range(0, len(placed), COMMIT_BATCH):
            await self._commit_placements(placed[i:i + COMMIT_BATCH], cluster_map)
        for d in decisions:
            if not d.placed:
                await self._set_pending(by_key[d.workload.key], d.reason, self._record(d))

    def _record(self, d: Any) -> dict[str, Any]:
        """The placement record stored on the Workload; the explanation keeps the best
        EXPLAIN_ROWS clusters (feasible first, then removed ones) so objects stay small at
        thousands of clusters. The what-if REST endpoint returns every cluster."""
        return {
            "clusters": [{"name": x.cluster, "replicas": x.replicas, "capacityType": x.capacity_type}
                         for x in d.assignments],
            "reason": d.reason,
            "explanation": d.to_dict(limit=EXPLAIN_ROWS),
        }

    async def _set_pending(self, w: Obj, reason: str, record: dict[str, Any] | None = None) -> None:
        ns, name = _meta(w).get("namespace", ""), _meta(w)["name"]
        # Decide on the listed copy first: most passes change nothing, and then no row is locked.
        if _pending_status(w, reason, record) is None:
            return

        async def fn(tx: Tx) -> None:
            cur = await tx.get(WORKLOADS, ns, name)
            if cur is None or _meta(cur).get("deletionTimestamp"):
                return
            new_st = _pending_status(cur, reason, record)
            if new_st is None:
                return
            cur["status"] = new_st
            tx.update(WORKLOADS, cur)

        await self.store.transact(fn)

    async def _commit_placements(self, batch: list[tuple[Obj, Any]], clusters: dict[str, Obj]) -> None:
        """ONE transaction per batch: each Workload's placement record, finalizer and Assignments.

        Batching matters at scale: thousands of one-decision transactions saturate the event
        loop long before Postgres is busy (bench/results/federation.md)."""
        stale: list[bool] = []

        async def fn(tx: Tx) -> None:
            for w, d in batch:
                if not await self._stage_placement(tx, w, d, clusters):
                    stale.append(True)

        await self.store.transact(fn)
        if stale:
            self._dirty.set()  # those workloads changed while we decided: decide again

    async def _stage_placement(self, tx: Tx, w: Obj, d: Any, clusters: dict[str, Obj]) -> bool:
        """Stage one decision in tx; False if the workload changed since it was listed."""
        ns, name = _meta(w).get("namespace", ""), _meta(w)["name"]
        record = self._record(d)
        reservations = {r.cluster: r for r in d.reservations()}
        pool_nodes = {x.cluster: nodes for x in d.assignments
                      if x.pool is not None and (nodes := _pool_node_names(clusters.get(x.cluster), x.pool)) is not None}

        cur = await tx.get(WORKLOADS, ns, name)
        if cur is None or _meta(cur).get("deletionTimestamp"):
            return True
        if _meta(cur).get("resourceVersion") != _meta(w).get("resourceVersion"):
            return False
        fins = _meta(cur).get("finalizers") or []
        if WORKLOAD_FINALIZER not in fins:
            _meta(cur)["finalizers"] = [*fins, WORKLOAD_FINALIZER]
        st = copy.deepcopy(cur.get("status") or {})
        epoch = int((st.get("placement") or {}).get("epoch") or 0) + 1
        record["epoch"] = epoch
        record["decidedAt"] = now_rfc3339()
        st["placement"] = record
        st["phase"] = st.get("phase") if PHASE_RANK.get(st.get("phase"), 0) >= 1 else "Placed"
        st["message"] = "placed on " + ", ".join(f"{x.cluster} ({x.replicas}x {x.gpu_model or 'cpu'} {x.capacity_type or ''})".rstrip() for x in d.assignments)
        st["clusters"] = [{"name": x.cluster, "phase": "Pending", "epoch": epoch} for x in d.assignments]
        st["observedGeneration"] = _meta(cur).get("generation")
        cur["status"] = st
        tx.update(WORKLOADS, cur)
        for x in d.assignments:
            r = reservations.get(x.cluster)
            annotations = {}
            if r is not None:
                annotations[RESERVATION_ANNOTATION] = json.dumps(
                    {"pool": r.pool, "gpusPerReplica": r.gpus_per_replica, "replicas": r.replicas, "nodes": list(r.nodes)})
            asg: Obj = {
                "apiVersion": v1.API_VERSION, "kind": "Assignment",
                "metadata": {
                    "name": f"{name[:200]}-{x.cluster[:40]}-e{epoch}", "namespace": ns,
                    "labels": {"fleetplane.io/workload": name[:63], "fleetplane.io/cluster": x.cluster[:63],
                               "fleetplane.io/epoch": str(epoch)},
                    "annotations": annotations,
                    "finalizers": [AGENT_FINALIZER],
                    "ownerReferences": [{"apiVersion": v1.API_VERSION, "kind": "Workload", "name": name,
                                         "uid": _meta(cur)["uid"], "controller": True, "blockOwnerDeletion": True}],
                },
                "spec": {
                    "clusterName": x.cluster,
                    "workloadRef": {"name": name, "uid": _meta(cur)["uid"]},
                    "epoch": epoch,
                    "replicas": x.replicas,
                    "capacityType": x.capacity_type,
                    "manifests": [scale_manifest(m, x.replicas) for m in cur["spec"]["manifests"]],
                },
                "status": {"phase": "Pending"},
            }
            if x.gpu_model:
                asg["spec"]["gpuModel"] = x.gpu_model
            pinned = pool_nodes.get(x.cluster)
            if pinned is not None:
                asg["spec"]["nodeNames"] = pinned
            if asg["spec"]["capacityType"] is None:
                del asg["spec"]["capacityType"]
            tx.create(ASSIGNMENTS, asg)

        return True

    # ------------------------------------------------------------------ failover

    async def _fence(self, w: Obj, current: list[Obj], lost: list[Obj]) -> None:
        """Supersede the current epoch: delete its Assignments and mark the workload for re-placement."""
        ns, name = _meta(w).get("namespace", ""), _meta(w)["name"]
        why = ", ".join(
            f"{a['spec']['clusterName']} ({'spot interruption' if (a.get('status') or {}).get('reason') == 'Preempted' else 'NotReady'})"
            for a in lost)

        async def fn(tx: Tx) -> None:
            cur = await tx.get(WORKLOADS, ns, name)
            if cur is None:
                return
            for a in current:
                live = await tx.get(ASSIGNMENTS, ns, _meta(a)["name"])
                if live is None or _meta(live).get("deletionTimestamp"):
                    continue
                _meta(live)["deletionTimestamp"] = now_rfc3339()
                tx.update(ASSIGNMENTS, live)
            st = copy.deepcopy(cur.get("status") or {})
            placement = st.get("placement") or {}
            placement["clusters"] = []
            placement["reason"] = f"re-placing: lost {why}"
            st["placement"] = placement  # the epoch stays: the next placement uses epoch+1
            st["message"] = f"re-placing after losing {why}"
            cur["status"] = st
            tx.update(WORKLOADS, cur)

        await self.store.transact(fn)
        log.warning("workload %s/%s: fenced epoch %s after losing %s", ns, name,
                    ((w.get("status") or {}).get("placement") or {}).get("epoch"), why)

    # ------------------------------------------------------------------ status

    def _aggregate(self, w: Obj, current: list[Obj], lost: list[Obj]) -> tuple[str, str, str, list[dict[str, Any]]] | None:
        """The status update a placed workload needs from its Assignments, or None."""
        ns, name = _meta(w).get("namespace", ""), _meta(w)["name"]
        phases = [(a.get("status") or {}).get("phase") or "Pending" for a in current]
        if any(p in ("Failed", "Rejected") for p in phases):
            phase = "Failed"
        elif all(p == "Succeeded" for p in phases):
            phase = "Succeeded"
        elif any(p in ("Running", "Succeeded") for p in phases):
            phase = "Running"
        else:
            phase = "Placed"
        per_cluster = []
        for a in current:
            st = a.get("status") or {}
            entry = {"name": a["spec"]["clusterName"], "phase": st.get("phase") or "Pending", "epoch": a["spec"]["epoch"]}
            msg = st.get("message") or st.get("reason")
            if a in lost:
                msg = f"cluster NotReady (failover: Wait){': ' + msg if msg else ''}"
            if msg:
                entry["message"] = msg
            per_cluster.append(entry)

        if _aggregated_status(w, phase, per_cluster) is None:
            return None
        return ns, name, phase, per_cluster

    async def _write_aggregates(self, updates: list[tuple[str, str, str, list[dict[str, Any]]]]) -> None:
        """Write status updates COMMIT_BATCH per transaction, re-checked on the locked row."""
        for i in range(0, len(updates), COMMIT_BATCH):
            chunk = updates[i:i + COMMIT_BATCH]

            async def fn(tx: Tx, chunk: list[tuple[str, str, str, list[dict[str, Any]]]] = chunk) -> None:
                for ns, name, phase, per_cluster in chunk:
                    cur = await tx.get(WORKLOADS, ns, name)
                    if cur is None:
                        continue
                    new = _aggregated_status(cur, phase, per_cluster)
                    if new is not None:
                        cur["status"] = new
                        tx.update(WORKLOADS, cur)

            await self.store.transact(fn)

    # ------------------------------------------------------------------ deletion

    async def _add_finalizer(self, w: Obj) -> None:
        ns, name = _meta(w).get("namespace", ""), _meta(w)["name"]

        async def fn(tx: Tx) -> None:
            cur = await tx.get(WORKLOADS, ns, name)
            if cur is None or _meta(cur).get("deletionTimestamp"):
                return
            fins = _meta(cur).get("finalizers") or []
            if WORKLOAD_FINALIZER in fins:
                return
            _meta(cur)["finalizers"] = [*fins, WORKLOAD_FINALIZER]
            tx.update(WORKLOADS, cur)

        await self.store.transact(fn)

    async def _delete_workload(self, w: Obj, mine: list[Obj]) -> None:
        ns, name = _meta(w).get("namespace", ""), _meta(w)["name"]

        async def fn(tx: Tx) -> None:
            remaining = 0
            for a in mine:
                live = await tx.get(ASSIGNMENTS, ns, _meta(a)["name"])
                if live is None:
                    continue
                remaining += 1
                if not _meta(live).get("deletionTimestamp"):
                    _meta(live)["deletionTimestamp"] = now_rfc3339()
                    tx.update(ASSIGNMENTS, live)
            if remaining:
                return
            cur = await tx.get(WORKLOADS, ns, name)
            if cur is None:
                return
            fins = [f for f in _meta(cur).get("finalizers") or [] if f != WORKLOAD_FINALIZER]
            if fins == (_meta(cur).get("finalizers") or []):
                return
            _meta(cur)["finalizers"] = fins
            if fins:
                tx.update(WORKLOADS, cur)
            else:
                tx.delete(WORKLOADS, cur)

        await self.store.transact(fn)


def _cluster_digest(c: Obj) -> int:
    st = {k: v for k, v in (c.get("status") or {}).items() if k != "heartbeatTime"}
    conds = [{k: v for k, v in x.items() if k != "lastTransitionTime"} for x in st.pop("conditions", None) or []]
    meta = c.get("metadata") or {}
    return hash(json.dumps([c.get("spec"), meta.get("labels"), meta.get("deletionTimestamp"), st, conds], sort_keys=True))


def _pool_node_names(cluster: Obj | None, pool: str) -> list[str] | None:
    """Names of the nodes of a reported pool, named the way placement.manifests names pools."""
    used: set[str] = set()
    for i, p in enumerate(((cluster or {}).get("status") or {}).get("gpuPools") or []):
        name = p.get("name") or f"{str(p.get('model', '')).lower()}-{p.get('capacityType')}"
        if name in used:
            name = f"{name}-{i}"
        used.add(name)
        if name == pool:
            nodes = [n["name"] for n in p.get("nodes") or [] if n.get("name")]
            return sorted(nodes) if nodes else None
    return None


def reservations(assignments: list[Obj], clusters: dict[str, Obj]) -> list[Any]:
    """In-flight placements the clusters' capacity reports do not show yet (see module doc)."""
    from placement import Reservation

    out = []
    for a in assignments:
        st = a.get("status") or {}
        if _meta(a).get("deletionTimestamp") or st.get("phase") in TERMINAL_ASSIGNMENT:
            continue
        raw = (_meta(a).get("annotations") or {}).get(RESERVATION_ANNOTATION)
        if not raw:
            continue
        if st.get("phase") == "Running":
            c = clusters.get(a["spec"]["clusterName"])
            reported = _parse_time(((c or {}).get("status") or {}).get("heartbeatTime"))
            running_since = _parse_time(st.get("updatedAt"))
            if reported and running_since and reported > running_since:
                continue  # the capacity report already counts these GPUs
        try:
            r = json.loads(raw)
            out.append(Reservation(workload=f"{_meta(a).get('namespace')}/{a['spec']['workloadRef']['name']}",
                                   cluster=a["spec"]["clusterName"], pool=r["pool"],
                                   gpus_per_replica=int(r["gpusPerReplica"]), replicas=int(r["replicas"]),
                                   nodes=tuple(r.get("nodes") or ())))
        except (KeyError, ValueError, TypeError):
            log.warning("ignoring malformed reservation on assignment %s", _meta(a).get("name"))
    return out


def build_snapshot(clusters: list[Obj], datasets: list[Obj], topologies: list[Obj]) -> tuple[Any, list[str]]:
    """The engine's snapshot of the stored fleet, and the problems that kept objects out of it.

    One team's bad Dataset (or a Cluster naming an unknown site) must not stop placement for
    everyone: invalid objects are left out one by one, workloads that need them then get a
    precise "unknown Dataset" reason, and the problems are logged.
    """
    from placement import PlacementInputError
    from placement.manifests import snapshot_from_api

    cs = [v1.Cluster.model_validate(c) for c in clusters]
    ds = [v1.Dataset.model_validate(d) for d in datasets]
    ts = [v1.Topology.model_validate(t) for t in topologies]
    try:
        return snapshot_from_api(cs, ds, ts), []
    except PlacementInputError:
        pass
    problems: list[str] = []
    try:
        snapshot_from_api([], [], ts)
    except PlacementInputError as exc:
        problems.append(str(exc))
        ts = []
    good_c, good_d = [], []
    for c in cs:
        try:
            snapshot_from_api([c], [], ts)
            good_c.append(c)
        except PlacementInputError as exc:
            problems.append(str(exc))
    for d in ds:
        try:
            snapshot_from_api([], [d], ts)
            good_d.append(d)
        except PlacementInputError as exc:
            problems.append(str(exc))
    return snapshot_from_api(good_c, good_d, ts), problems



def _aggregated_status(cur: Obj, phase: str, per_cluster: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The workload status from its Assignments, never moving the phase backward; None if unchanged."""
    st = copy.deepcopy(cur.get("status") or {})
    old_phase = st.get("phase")
    new_phase = phase if PHASE_RANK[phase] >= PHASE_RANK.get(old_phase, 0) else old_phase
    msg = st.get("message")
    if new_phase == "Failed":
        msg = "; ".join(f"{e['name']}: {e.get('message', e['phase'])}" for e in per_cluster
                        if e["phase"] in ("Failed", "Rejected"))
    elif new_phase == "Succeeded":
        msg = "all replicas succeeded"
    elif new_phase == "Running":
        msg = "running on " + ", ".join(e["name"] for e in per_cluster if e["phase"] in ("Running", "Succeeded"))
    new = {**st, "phase": new_phase, "clusters": per_cluster, "message": msg}
    return None if new == st else new


def _pending_status(cur: Obj, reason: str, record: dict[str, Any] | None) -> dict[str, Any] | None:
    """The status of a workload the engine could not place, or None if it already says so.

    Only real changes are written: our own writes wake the loop, so writing identical status
    would keep it busy forever."""
    st = copy.deepcopy(cur.get("status") or {})
    placement = copy.deepcopy(st.get("placement") or {})
    placement["reason"] = reason
    placement["clusters"] = []
    if record is not None:
        placement["explanation"] = record.get("explanation")
    new_st = {**st, "phase": st.get("phase") if PHASE_RANK.get(st.get("phase"), 0) > 0 else "Pending",
              "message": reason, "placement": placement}
    if new_st.get("phase") == "Pending":
        new_st["observedGeneration"] = _meta(cur).get("generation")
    if _strip_times(new_st) == _strip_times(st):
        return None
    new_st["placement"]["decidedAt"] = now_rfc3339()
    return new_st


def _strip_times(st: dict[str, Any]) -> dict[str, Any]:
    c = copy.deepcopy(st)
    (c.get("placement") or {}).pop("decidedAt", None)
    return c


async def run_federation(hub: Hub) -> None:
    if not hub.settings.controllers:
        return
    await FederationController(hub).run()
