"""Delivery: the hub's Assignments for this cluster become objects on the spoke, and their
status goes back to the hub.

Owns the watch on the hub (resume by resourceVersion, relist on 410, reconnect with backoff),
per-Assignment reconciliation (allow-list, epoch fencing, server-side apply, garbage
collection of what an Assignment no longer contains, deletion and the cleanup finalizer),
and status reporting. Reconciles and status writes run through deduplicating work queues,
so a burst of events for one Assignment costs one pass.

Restart safety: what the agent applied is found again by label (fleetplane.io/assignment),
re-applying is idempotent (server-side apply by name), and on start every Assignment's
status is recomputed and written if the hub's copy differs, so no update is lost.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import json
import logging
import random
import time
from collections.abc import Callable, Mapping
from typing import Any

from .backends import Backend
from .errors import Expired, HubUnreachable, JoinRefused, PermanentError, TemporaryError
from .fencing import EpochFence, GpuSlot, Hold, add_slots, fenced_manifest, held_extra, stops_when_fenced
from .hub import HubClient
from .labels import (
    ASSIGNMENT_ANNOTATION,
    CLEANUP_FINALIZER,
    EPOCH_LABEL,
    WORKLOAD_LABEL,
    assignment_key,
    assignment_label,
)
from .manifests import ObjectRef, decorate, policy_violations, target_namespace
from .settings import AgentConfig
from .workqueue import WorkQueue

log = logging.getLogger("fleetplane.agent.delivery")

STATUS_KEYS = ("phase", "reason", "message", "observedEpoch", "objects")


DELETE_RECHECK_SECONDS = 1.0
"""How often (s) the agent checks that deleted objects are really gone before it releases an
Assignment's finalizer. Pod termination takes seconds; one GET per object per second is cheap."""


def now_rfc3339() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _rv_int(rv: str | None) -> int:
    """A hub resourceVersion as a number (the hub's are dense integers); 0 if it is not one."""
    try:
        return int(rv or 0)
    except ValueError:
        return 0


def _key_of(obj: Mapping[str, Any]) -> str:
    meta = obj.get("metadata") or {}
    return assignment_key(meta.get("namespace") or "", meta.get("name") or "")


def _cached(obj: dict[str, Any]) -> dict[str, Any]:
    """The Assignment as the agent keeps it: without metadata.managedFields (a fieldsV1 tree of
    the fields each writer set, manifests included), which the agent never reads. Dropping it
    took 4.7 MiB off the agent holding 1,000 Assignments (bench/agent, docs/agent.md)."""
    meta = obj.get("metadata")
    if isinstance(meta, dict) and "managedFields" in meta:
        obj = {**obj, "metadata": {k: v for k, v in meta.items() if k != "managedFields"}}
    return obj


def _spec_hash(obj: Mapping[str, Any]) -> str:
    return hashlib.sha256(json.dumps(obj.get("spec") or {}, sort_keys=True).encode()).hexdigest()


def _comparable(status: Mapping[str, Any] | None) -> dict[str, Any]:
    status = status or {}
    out = {k: status.get(k) for k in STATUS_KEYS}
    out["objects"] = [{k: v for k, v in o.items() if v is not None} for o in out["objects"] or []]
    return out


class Delivery:
    def __init__(
        self,
        cluster: str,
        hub: HubClient,
        backend: Backend,
        config: AgentConfig,
        on_capacity_change: Callable[[], None] | None = None,
        on_hub_lost: Callable[[], None] | None = None,
    ) -> None:
        self.cluster = cluster
        self.hub = hub
        self.backend = backend
        self.config = config
        self.fence = EpochFence()
        self.assignments: dict[str, dict[str, Any]] = {}  # key → latest object from the hub
        self.applied: dict[str, set[ObjectRef]] = {}  # key → objects on the spoke
        self.applied_hash: dict[str, str] = {}  # key → spec hash last reconciled successfully
        self.outcome: dict[str, dict[str, Any]] = {}  # key → a status the agent decided (Rejected, Failed)
        self.written: dict[str, dict[str, Any]] = {}  # key → last status written (comparable form)
        self.label_to_key: dict[str, str] = {}
        self.reconcile_q = WorkQueue()
        self.status_q = WorkQueue()
        self.synced = asyncio.Event()
        self.resource_version = ""
        self.fenced = False  # the lease is lost: no new applies; failover: Replace copies stopped
        self.fenced_keys: set[str] = set()  # Assignments whose copies are stopped (applied fenced)
        self.holds: dict[str, Hold] = {}  # key → GPUs of a copy stopped while fenced, still counted as allocated
        self._capacity_changed = on_capacity_change or (lambda: None)
        # Called when the watch stream breaks or the hub refuses it (a restart, a cut link): the
        # lease loop then renews at once (and every ~1 s while refused) instead of at its next
        # heartbeat, so a hub restart shorter than a heartbeat does not leave the lease a
        # heartbeat stale after the hub is back.
        self._hub_lost = on_hub_lost or (lambda: None)
        self._floor = 0  # resourceVersion of the newest full list: older watch events are stale
        self.stats = {"events": 0, "relists": 0, "reconnects": 0, "applies": 0, "deletes": 0, "status_writes": 0}

    # ------------------------------------------------------------ hub watch

    async def watch_forever(self) -> None:
        settings = self.config.hub
        backoff = settings.reconnect_backoff_initial_seconds
        rv: str | None = None
        while True:
            try:
                if rv is not None and _rv_int(rv) < self._floor:
                    rv = str(self._floor)  # unfence relisted meanwhile: resume after that list
                if rv is None:
                    items, rv = await self.hub.list_assignments(self.cluster)
                    self.stats["relists"] += 1
                    self._floor = max(self._floor, _rv_int(rv))
                    await self._resync(items)
                    self.synced.set()
                async for event in self.hub.watch_assignments(self.cluster, rv):
                    backoff = settings.reconnect_backoff_initial_seconds
                    self.stats["events"] += 1
                    obj = event.get("object") or {}
                    rv = str((obj.get("metadata") or {}).get("resourceVersion") or rv)
                    if _rv_int(rv) <= self._floor and event.get("type") != "BOOKMARK":
                        continue  # already in the newer list unfence read
                    self.resource_version = rv
                    etype = event.get("type")
                    if etype in ("ADDED", "MODIFIED"):
                        self._upsert(obj)
                    elif etype == "DELETED":
                        self._removed(_key_of(obj))
                # The hub ended the stream (timeout): resume from rv at once.
            except Expired:
                log.info("cluster %s: watch resourceVersion %s expired; relisting", self.cluster, rv)
                rv = None
            except JoinRefused:
                raise
            except (TemporaryError, PermanentError) as e:
                self.stats["reconnects"] += 1
                self._hub_lost()
                unreachable = isinstance(e, HubUnreachable)  # a restart: come back as soon as it listens
                delay = (settings.unreachable_retry_seconds if unreachable else backoff) * (0.5 + random.random())
                log.warning("cluster %s: hub watch failed (%s); reconnecting in %.1fs", self.cluster, e, delay)
                await asyncio.sleep(delay)
                if not unreachable:
                    backoff = min(backoff * 2, settings.reconnect_backoff_max_seconds)

    async def _resync(self, items: list[dict[str, Any]]) -> None:
        """A full list from the hub: it is the truth; what it lacks was deleted."""
        for item in items:
            self.fence.observe_assignment(item)
        listed = {_key_of(i): _cached(i) for i in items}
        for key in list(self.assignments) + list(self.applied):
            if key not in listed:
                self._removed(key)  # deleted on the hub while we were not watching
        for key, item in listed.items():
            self.assignments[key] = item
            self.label_to_key[self._label(key)] = key
            self.reconcile_q.add(key)
            self.status_q.add(key)

    def _upsert(self, obj: dict[str, Any]) -> None:
        obj = _cached(obj)
        key = _key_of(obj)
        wkey = EpochFence.workload_key(obj)
        before = self.fence.highest(wkey)
        self.fence.observe_assignment(obj)
        if self.fence.highest(wkey) != before:
            # A newer epoch: older copies of this workload must be fenced off now.
            for other, a in self.assignments.items():
                if other != key and EpochFence.workload_key(a) == wkey:
                    self.reconcile_q.add(other)
        self.assignments[key] = obj
        self.label_to_key[self._label(key)] = key
        self.reconcile_q.add(key)

    def _removed(self, key: str) -> None:
        self.assignments.pop(key, None)
        self._release(key, "its Assignment is gone from the hub")
        self.reconcile_q.add(key)

    # ------------------------------------------------------------ self-fencing

    def fence_self(self) -> int:
        """The lease is lost: apply nothing new, and stop the copies of failover: Replace
        Assignments (the hub re-places them elsewhere once its cluster timeout passes). Returns
        how many Assignments are being stopped."""
        if self.fenced:
            return 0
        self.fenced = True
        for hold in self.holds.values():
            hold.restoring_since = None  # fenced again before it was back: held until the next unfence
        stopping = [k for k, a in self.assignments.items() if self.applied.get(k) and stops_when_fenced(a)]
        for key in stopping:
            self.reconcile_q.add(key)
        return len(stopping)

    async def unfence_self(self) -> None:
        """The lease is renewed again: re-sync from the hub FIRST, then lift the fence.

        The relist is the truth: what the hub no longer has is removed (a re-placed workload's
        old Assignment is gone, or deleting: its copy is deleted and the finalizer released),
        a stale epoch is fenced off, and every other stopped copy is applied again. Events the
        watch replays from before the relist are dropped (`_floor`), so a replayed old version
        cannot restore a copy the hub has re-placed. Raises TemporaryError if the hub cannot be
        listed: the agent stays fenced and tries again at the next renewal."""
        if not self.fenced:
            return
        items, rv = await self.hub.list_assignments(self.cluster)
        self.stats["relists"] += 1
        await self.resume_from(items, rv)

    async def resume_from(self, items: list[dict[str, Any]], rv: str) -> None:
        """Lift the fence with the hub's full list of this cluster's Assignments (at `rv`)."""
        self._floor = max(self._floor, _rv_int(rv))
        await self._resync(items)
        self.fenced = False
        for key in self.fenced_keys:
            self.applied_hash.pop(key, None)
        self.fenced_keys.clear()
        now = time.monotonic()
        for key in list(self.holds):
            a = self.assignments.get(key)
            if a is None or (a.get("metadata") or {}).get("deletionTimestamp") or self.fence.is_stale(a):
                self._release(key, "the hub re-placed it")
            else:
                self.holds[key].restoring_since = now  # restored next: held until its pods are bound again
        for key in list(self.assignments):
            self.reconcile_q.add(key)

    # ------------------------------------------------------------ GPUs of stopped copies

    def _hold(self, key: str) -> None:
        """Fencing is about to stop this copy: remember where its pods hold GPUs (kept from an
        earlier fence if the copy was not fully back yet: that is what the hub last saw)."""
        if key not in self.holds and (gpus := self.backend.bound_gpus(self._label(key))):
            self.holds[key] = Hold(gpus)

    def _release(self, key: str, why: str, notify: bool = True) -> None:
        hold = self.holds.pop(key, None)
        if hold is None:
            return
        log.info(
            "Assignment %s: %d GPU(s) of its stopped copy no longer held on %s: %s", key, hold.total, self.cluster, why
        )
        if notify:
            self._capacity_changed()

    def held_gpus(self, now: float | None = None) -> dict[GpuSlot, int]:
        """GPUs per (node, resource) to report as allocated although no pod holds them: those of
        copies stopped while fenced, until each is back (its pods hold as many GPUs as before, or
        it ended), the hub no longer assigns it here, or `lease.restore_hold_seconds` have passed
        since the fence lifted. Releasing here needs no new capacity event: the caller is
        computing a report."""
        now = time.monotonic() if now is None else now
        out: dict[GpuSlot, int] = {}
        for key, hold in list(self.holds.items()):
            bound = self.backend.bound_gpus(self._label(key))
            if hold.restoring_since is not None and not self.fenced:
                why = self._restored(key, hold, bound, now)
                if why:
                    self._release(key, why, notify=False)
                    continue
            add_slots(out, held_extra(hold.gpus, bound))
        return out

    def _restored(self, key: str, hold: Hold, bound: Mapping[GpuSlot, int], now: float) -> str | None:
        """Why a restoring copy's hold ends now (None: keep holding)."""
        assert hold.restoring_since is not None
        if now - hold.restoring_since >= self.config.lease.restore_hold_seconds:
            return f"its pods were not all bound again within {self.config.lease.restore_hold_seconds:g}s"
        a = self.assignments.get(key)
        if a is None:
            return "its Assignment is gone from the hub"
        if key in self.outcome:
            return f"the agent reported it {self.outcome[key]['phase']}"
        if key in self.fenced_keys or self.applied_hash.get(key) != _spec_hash(a):
            return None  # not applied again yet
        if sum(bound.values()) >= hold.total:
            return "its restored pods are bound again"
        refs = sorted(self.applied.get(key, set()), key=str)
        phase = self.backend.observe(self._label(key), refs).phase
        if phase in ("Succeeded", "Failed"):
            return f"it is {phase}"
        return None

    @staticmethod
    def _label(key: str) -> str:
        ns, _, name = key.partition("/")
        return assignment_label(ns, name)

    # ------------------------------------------------------------ startup inventory

    async def inventory(self) -> None:
        """Find what earlier runs applied (by label) so it can be updated or collected."""
        allowed = [(k.group, k.kind) for k in self.config.delivery.allowed_kinds]
        for obj in await self.backend.list_managed(allowed):
            meta = obj.get("metadata") or {}
            full = (meta.get("annotations") or {}).get(ASSIGNMENT_ANNOTATION)
            if not full or "/" not in full:
                continue
            ref = ObjectRef.of(obj)
            self.applied.setdefault(full, set()).add(ref)
            self.label_to_key[self._label(full)] = full
            labels = meta.get("labels") or {}
            try:
                epoch = int(labels.get(EPOCH_LABEL, "0"))
            except ValueError:
                continue
            ns = full.partition("/")[0]
            if labels.get(WORKLOAD_LABEL):
                self.fence.observe(f"{ns}/{labels[WORKLOAD_LABEL]}", epoch)

    def orphans(self) -> list[str]:
        """Assignments with objects on the spoke but not on the hub (deleted while we were away)."""
        return [k for k in self.applied if k not in self.assignments]

    # ------------------------------------------------------------ reconcile

    async def reconcile_worker(self) -> None:
        q = self.reconcile_q
        while True:
            key = await q.get()
            try:
                await self.reconcile(str(key))
                q.forget(key)
            except TemporaryError as e:
                delay = q.retry_delay(key, self.config.delivery.retry_backoff_max_seconds)
                log.warning("Assignment %s: %s; retrying in %.1fs", key, e, delay)
                q.add_after(key, delay)
            except Exception:
                log.exception("Assignment %s: unexpected error", key)
                q.add_after(key, q.retry_delay(key, self.config.delivery.retry_backoff_max_seconds))
            finally:
                q.done(key)

    async def reconcile(self, key: str) -> None:
        a = self.assignments.get(key)
        if a is None:
            await self._delete_all(key)
            self._forget(key)
            return
        meta = a.get("metadata") or {}
        spec = a.get("spec") or {}
        ns, name = meta.get("namespace") or "", meta.get("name") or ""
        epoch = int(spec.get("epoch") or 0)
        if meta.get("deletionTimestamp"):
            self._release(key, "its Assignment is being deleted on the hub")
            await self._finalize(key, a)
            return
        if self.fence.is_stale(a):
            self._release(key, "a newer epoch of its workload is assigned")
            if not await self._delete_all(key):
                self.reconcile_q.add_after(key, DELETE_RECHECK_SECONDS)
            self.applied_hash.pop(key, None)
            highest = self.fence.highest(EpochFence.workload_key(a))
            self.outcome[key] = {
                "phase": "Rejected",
                "reason": "StaleEpoch",
                "message": f"epoch {epoch} is older than epoch {highest} already seen for this workload; not applied",
                "objects": [],
            }
            self.status_q.add(key)
            return
        fencing = self.fenced
        if fencing and (key in self.fenced_keys or not self.applied.get(key) or not stops_when_fenced(a)):
            return  # no new applies without a lease; failover: Wait copies keep running as they are
        if fencing:
            self._hold(key)  # before stopping it: its GPUs stay counted until it is back
        digest = _spec_hash(a)
        if not fencing and self.applied_hash.get(key) == digest:
            self.status_q.add(key)
            return

        manifests: list[dict[str, Any]] = list(spec.get("manifests") or [])
        delivery = self.config.delivery
        namespaced: dict[tuple[str, str], bool] = {}
        violations = policy_violations(manifests, ns, delivery)
        if not violations:
            missing = []
            for m in manifests:
                gv = (m.get("apiVersion", ""), m.get("kind", ""))
                if gv not in namespaced:
                    scoped = await self.backend.namespaced(*gv)
                    if scoped is None:
                        missing.append(f"{gv[1]} ({gv[0]}) is not served by cluster {self.cluster}")
                        continue
                    namespaced[gv] = scoped
            if missing:
                self._decide(key, digest, "Failed", "KindNotFound", "; ".join(missing) + "; install its CRD first")
                return
            violations = policy_violations(manifests, ns, delivery, namespaced)
        if violations:
            self._decide(key, digest, "Rejected", "Forbidden", "; ".join(violations))
            log.warning("Assignment %s rejected: %s", key, "; ".join(violations))
            return

        objs = [
            decorate(
                m,
                assignment_namespace=ns,
                assignment_name=name,
                workload=(spec.get("workloadRef") or {}).get("name") or name,
                epoch=epoch,
                namespaced=namespaced[(m["apiVersion"], m["kind"])],
                node_names=spec.get("nodeNames"),
            )
            for m in manifests
        ]
        if fencing:
            # Stopped, not deleted: scaled to zero / suspended (a bare Pod is deleted), so the
            # copy can be restored if the hub did not re-place it.
            objs = [f for f in (fenced_manifest(o) for o in objs) if f is not None]
        elif delivery.create_namespaces:
            for target in sorted(
                {
                    target_namespace(m, ns)
                    for m, o in zip(manifests, objs, strict=False)
                    if namespaced[(m["apiVersion"], m["kind"])]
                }
            ):
                await self.backend.ensure_namespace(target)
        refs: set[ObjectRef] = set()
        for obj in objs:
            ref = ObjectRef.of(obj)
            try:
                await self.backend.apply(obj)
            except PermanentError as e:
                self.applied.setdefault(key, set()).update(refs)
                if fencing:  # retried like a temporary failure: the copy must stop
                    raise TemporaryError(f"cannot stop {ref} while fenced: {e}") from e
                self._decide(key, digest, "Failed", "ApplyFailed", f"{ref}: {e}")
                return
            self.stats["applies"] += 1
            refs.add(ref)
            self.applied.setdefault(key, set()).add(ref)
        for stale in self.applied.get(key, set()) - refs:
            await self.backend.delete(stale)  # no longer in the Assignment
            self.stats["deletes"] += 1
        self.applied[key] = refs
        if fencing:
            if self.fenced:  # (unfence may have run while this was applying: then re-apply)
                self.fenced_keys.add(key)
            self.applied_hash[key] = f"fenced:{digest}"  # not the spec: applied again on unfence
            log.warning("Assignment %s: stopped on %s (lease lost, failover: Replace)", key, self.cluster)
            return
        self.outcome.pop(key, None)
        self.applied_hash[key] = digest
        self.status_q.add(key)

    def _decide(self, key: str, digest: str, phase: str, reason: str, message: str) -> None:
        self.outcome[key] = {"phase": phase, "reason": reason, "message": message, "objects": []}
        self.applied_hash[key] = digest
        self.status_q.add(key)

    async def _delete_all(self, key: str) -> bool:
        """Delete everything applied for an Assignment; True once all of it is really gone.

        Foreground deletion keeps a Job until its pods have terminated (their grace period
        included), so "gone" means no copy runs any more — the condition for releasing the
        Assignment's finalizer, which is the moment the hub treats the old epoch as fenced.
        """
        remaining: set[ObjectRef] = set()
        for ref in sorted(self.applied.get(key, set()), key=str):
            await self.backend.delete(ref, foreground=True)
            self.stats["deletes"] += 1
            if await self.backend.exists(ref):
                remaining.add(ref)
        if remaining:
            self.applied[key] = remaining
            return False
        self.applied.pop(key, None)
        return True

    async def _finalize(self, key: str, a: dict[str, Any]) -> None:
        meta = a.get("metadata") or {}
        ns, name = meta.get("namespace") or "", meta.get("name") or ""
        rv = meta.get("resourceVersion")
        if self.applied.get(key) and (a.get("status") or {}).get("phase") != "Deleting":
            try:
                updated = await self.hub.patch_assignment_status(
                    ns,
                    name,
                    {
                        "phase": "Deleting",
                        "reason": None,
                        "message": "deleting objects on the cluster",
                        "updatedAt": now_rfc3339(),
                    },
                )
                rv = (updated.get("metadata") or {}).get("resourceVersion") or rv  # our own write moved it
            except PermanentError:
                pass
        if not await self._delete_all(key):
            # Pods are still terminating: keep the finalizer (the old copy may still run).
            self.reconcile_q.add_after(key, DELETE_RECHECK_SECONDS)
            return
        finalizers = list(meta.get("finalizers") or [])
        if CLEANUP_FINALIZER in finalizers:
            rest = [f for f in finalizers if f != CLEANUP_FINALIZER]
            try:
                await self.hub.patch_assignment(ns, name, {"metadata": {"finalizers": rest, "resourceVersion": rv}})
            except PermanentError as e:
                if "404" not in str(e) and "NotFound" not in str(e):
                    raise
            # A 409 (TemporaryError) retries with the newer copy the watch delivers meanwhile.
        self._forget(key, keep_assignment=True)

    def _forget(self, key: str, keep_assignment: bool = False) -> None:
        if not keep_assignment:
            self.assignments.pop(key, None)
        self._release(key, "its copy is removed")
        self.applied_hash.pop(key, None)
        self.outcome.pop(key, None)
        self.written.pop(key, None)
        forget = getattr(self.backend, "forget", None)
        if forget:
            forget(self._label(key))

    # ------------------------------------------------------------ status

    def objects_changed(self, label: str) -> None:
        key = self.label_to_key.get(label)
        if key is not None:
            self.status_q.add(key)

    async def status_worker(self) -> None:
        q = self.status_q
        while True:
            key = await q.get()
            try:
                await self.write_status(str(key))
                q.forget(key)
            except TemporaryError as e:
                delay = q.retry_delay(key, self.config.delivery.retry_backoff_max_seconds)
                log.warning("status of Assignment %s: %s; retrying in %.1fs", key, e, delay)
                q.add_after(key, delay)
            except PermanentError as e:
                log.warning("status of Assignment %s: %s", key, e)
            except Exception:
                log.exception("status of Assignment %s: unexpected error", key)
            finally:
                q.done(key)

    def compute_status(self, key: str) -> dict[str, Any] | None:
        a = self.assignments.get(key)
        if a is None or (a.get("metadata") or {}).get("deletionTimestamp"):
            return None
        epoch = int((a.get("spec") or {}).get("epoch") or 0)
        if key in self.outcome:
            return {**self.outcome[key], "observedEpoch": epoch}
        if self.applied_hash.get(key) != _spec_hash(a):
            return None  # not reconciled yet; the reconcile queues a status pass when done
        refs = sorted(self.applied.get(key, set()), key=lambda r: (r.kind, r.namespace or "", r.name))
        observed = self.backend.observe(self._label(key), refs)
        if observed.phase == "Applied" and not refs:
            observed.message = "the Assignment has no manifests"
        return observed.to_status(epoch)

    async def write_status(self, key: str) -> None:
        status = self.compute_status(key)
        if status is None:
            return
        comparable = _comparable(status)
        hub_copy = _comparable((self.assignments.get(key) or {}).get("status"))
        if comparable == self.written.get(key) or (key not in self.written and comparable == hub_copy):
            self.written[key] = comparable
            return
        ns, _, name = key.partition("/")
        try:
            await self.hub.patch_assignment_status(ns, name, {**status, "updatedAt": now_rfc3339()})
        except PermanentError as e:
            if "404" in str(e) or "NotFound" in str(e):
                return  # deleted meanwhile; the watch will tell
            raise
        self.stats["status_writes"] += 1
        self.written[key] = comparable
