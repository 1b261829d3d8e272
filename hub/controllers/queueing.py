"""Queues on the hub: the pure part of admission (issue 11; docs/queues.md).

The federation controller (hub.controllers.federation) runs the engine's admission
(`placement.queueing.Admission`) in its placement step; this module turns stored objects into
the engine's inputs and the engine's answers into statuses. No I/O: table-tested in
tests/unit/hub/test_queue_status.py.

Which workloads are queued ("managed"): those naming `spec.queue`, and those of a namespace a
Queue lists in `spec.defaultFor`. Every other workload is placed as before queues existed (by
priority, first come), so a hub without Queues behaves exactly as it did; an admin governs a
namespace by giving it a default queue. (Kueue, likewise, leaves jobs without a queue name
alone unless told otherwise.)

A queued workload's life, in its status:

1. waiting: `Admitted=False` (reason Pending, or Inadmissible when it cannot be admitted as
   written: unknown queue, namespace not allowed, no flavor it accepts); the message says why
   with the quota numbers.
2. admitted: `status.admission` (queue, flavor, GPUs, priority, admittedAt) and
   `Admitted=True`, written in the same transaction as the placement and its Assignments.
3. preempting: a workload the pass admitted only by evicting others is NOT placed yet: it
   keeps waiting (`Admitted=False`, reason Preempting, `status.waitingFor` its victims) until
   every victim's copies are gone from the spokes. Then the next pass admits it normally, on
   the room the victims left: the victims' pods are deleted before the preemptor's exist.
4. evicted: the victim gets `status.eviction` and `Evicted=True` (reason PreemptedByPriority
   or ReclaimedByQueue). It keeps its quota and its copies for
   `spec.preemptionGracePeriodSeconds` (default 0) — time to checkpoint — then its
   Assignments are withdrawn (deleted: the agent removes the copies, fenced by epoch, and then
   releases the Assignment's finalizer). Once no Assignment is left, its admission is cleared
   and it is back in its queue (`Admitted=False`), not lost and not failed.
5. finished: a Succeeded or Failed workload's quota is released (`Admitted=False`, Finished).
"""

from __future__ import annotations

import copy
import datetime as dt
import json
import logging
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from pydantic import ValidationError

from fleetplane_types import v1alpha1 as v1
from fleetplane_types.names import (
    ADMISSION_PENDING_REASON,
    ADMITTED_CONDITION,
    ADMITTED_REASON,
    EVICTED_CONDITION,
    PREEMPTED_BY_PRIORITY_REASON,
    READMITTED_REASON,
    RECLAIMED_REASON,
    RESERVATION_ANNOTATION,
)
from hub.controllers import epochs, status
from placement import PlacementInputError
from placement.decision import ClusterAssignment
from placement.queueing import Admission, AdmissionDecision, AdmittedWorkload, Eviction, Flavor, PriorityClass, Queue
from placement.queueing.convert import priority_class_from_api, queue_from_api

log = logging.getLogger(__name__)

Obj = dict[str, Any]
TERMINAL = ("Succeeded", "Failed")


def _meta(o: Obj) -> dict[str, Any]:
    m = o.get("metadata")
    return m if isinstance(m, dict) else {}


def _status(o: Obj) -> dict[str, Any]:
    st = o.get("status")
    return st if isinstance(st, dict) else {}


# ------------------------------------------------------------------ configuration


@dataclass
class QueueConfig:
    """The stored Queues and PriorityClasses as the engine's model, and the admission engine."""

    admission: Admission
    queues: dict[str, Queue]
    default_for: dict[str, str]
    classes: dict[str, PriorityClass]
    problems: list[str] = field(default_factory=list)
    """Stored objects left out (they no longer validate, or clash): logged once per change."""

    def queue_of(self, w: Obj) -> str | None:
        """The queue a workload is submitted to: spec.queue, else its namespace's default; None
        when neither (the workload is not queued)."""
        name = (w.get("spec") or {}).get("queue")
        if isinstance(name, str) and name:
            return name
        return self.default_for.get(str(_meta(w).get("namespace") or ""))


def build_config(queue_objs: Iterable[Obj], class_objs: Iterable[Obj], profile: str) -> QueueConfig:
    """The queue configuration of the stored objects. The registry validates Queues and
    PriorityClasses on write; objects stored before a rule existed (or racing writers: two
    Queues claiming one namespace in defaultFor) are left out here with a logged problem, so
    one bad object never stops admission for everyone."""
    problems: list[str] = []
    classes: dict[str, PriorityClass] = {}
    for obj in sorted(class_objs, key=lambda o: str(_meta(o).get("name"))):
        try:
            pc = priority_class_from_api(v1.PriorityClass.model_validate(obj))
        except (ValidationError, PlacementInputError) as exc:
            problems.append(f"PriorityClass {_meta(obj).get('name')}: {exc}")
            continue
        if pc.global_default and any(c.global_default for c in classes.values()):
            problems.append(f"PriorityClass {pc.name}: a second globalDefault class; used as a plain class")
            pc = PriorityClass(pc.name, pc.value, False)
        classes[pc.name] = pc
    queues: list[Queue] = []
    default_for: dict[str, str] = {}
    for obj in sorted(queue_objs, key=lambda o: str(_meta(o).get("name"))):
        try:
            q = queue_from_api(v1.Queue.model_validate(obj))
        except (ValidationError, PlacementInputError) as exc:
            problems.append(f"Queue {_meta(obj).get('name')}: {exc}")
            continue
        taken = sorted(ns for ns in q.default_for if ns in default_for)
        if taken:
            problems.append(f"Queue {q.name}: spec.defaultFor {taken} already default to another queue; ignored")
            q = replace(q, default_for=frozenset(ns for ns in q.default_for if ns not in default_for))
        for ns in q.default_for:
            default_for[ns] = q.name
        queues.append(q)
    for p in problems:
        log.warning("queueing: %s", p)
    return QueueConfig(Admission(queues, profile), {q.name: q for q in queues}, default_for, classes, problems)


# ------------------------------------------------------------------ what holds quota


def holding(w: Obj) -> bool:
    """The workload holds quota in its queue: admitted, not finished, not being deleted. An
    evicted workload holds it until its copies are gone (then its admission is cleared)."""
    if _meta(w).get("deletionTimestamp"):
        return False
    st = _status(w)
    return isinstance(st.get("admission"), dict) and st.get("phase") not in TERMINAL


def frees_quota(w: Obj | None, config: QueueConfig) -> bool:
    """A change to this workload may have given quota back: it is gone from the cache (deleted:
    it may have held some), or it is queued and finished or being deleted. Such a change must
    rewrite the Queues' usage even when nothing waits (no admission pass would run), and gives
    every waiting workload a new chance."""
    if w is None:
        return True
    if config.queue_of(w) is None and not isinstance(_status(w).get("admission"), dict):
        return False
    return bool(_meta(w).get("deletionTimestamp")) or _status(w).get("phase") in TERMINAL


def evicting(w: Obj) -> bool:
    """Evicted and still holding: its copies are being (or about to be) withdrawn."""
    return holding(w) and isinstance(_status(w).get("eviction"), dict)


def admitted_workload(w: Obj, assignments: Iterable[Obj]) -> AdmittedWorkload | None:
    """What an admitted workload holds, for the engine: its recorded queue, flavor, GPUs and
    priority, admitted at its admission time, running where its live Assignments are (with the
    pool and nodes they reserved) so evicting it frees exactly those GPUs in the trial."""
    st = _status(w)
    adm = st.get("admission")
    if not isinstance(adm, dict):
        return None
    try:
        rec = v1.AdmissionRecord.model_validate(adm)
    except ValidationError:
        return None
    flavor = None
    if rec.flavor is not None:
        try:
            flavor = Flavor.of(rec.flavor.gpu_model, rec.flavor.capacity_type, rec.flavor.region)  # type: ignore[arg-type]
        except (ValueError, TypeError):
            flavor = None
    placed: list[ClusterAssignment] = []
    for a in assignments:
        spec = a.get("spec") or {}
        if (a.get("status") or {}).get("phase") in ("Succeeded", "Failed", "Rejected"):
            continue
        raw = (_meta(a).get("annotations") or {}).get(RESERVATION_ANNOTATION)
        pool, per, nodes = None, 0, ()
        try:
            r = json.loads(raw) if raw else {}
            pool, per, nodes = r.get("pool"), int(r.get("gpusPerReplica") or 0), tuple(r.get("nodes") or ())
        except (ValueError, TypeError, AttributeError):
            pass
        placed.append(
            ClusterAssignment(
                cluster=str(spec.get("clusterName") or ""),
                replicas=int(spec.get("replicas") or 0),
                capacity_type=spec.get("capacityType"),
                pool=pool,
                gpu_model=spec.get("gpuModel"),
                gpus_per_replica=per,
                price_per_gpu_hour=None,
                nodes=nodes,
            )
        )
    ns, name = _meta(w).get("namespace") or "", _meta(w).get("name") or ""
    return AdmittedWorkload(
        key=f"{ns}/{name}",
        queue=rec.queue,
        flavor=flavor if rec.gpus else None,
        gpus=rec.gpus,
        priority=rec.priority,
        admitted=rec.admitted_at or str(_meta(w).get("creationTimestamp") or ""),
        assignments=tuple(placed),
    )


# ------------------------------------------------------------------ statuses


def admission_record(d: AdmissionDecision, now: str) -> dict[str, Any]:
    """status.admission of a workload the pass admitted."""
    rec: dict[str, Any] = {
        "queue": d.queue,
        "gpus": d.workload.gpus,
        "priority": d.workload.priority,
        "admittedAt": now,
    }
    if d.flavor is not None:
        f = d.flavor.flavor
        flavor: dict[str, Any] = {"gpuModel": f.model, "capacityType": f.capacity_type}
        if f.region:
            flavor["region"] = f.region
        if d.flavor.name:
            flavor["name"] = d.flavor.name
        rec["flavor"] = flavor
    return rec


def with_admission(cur: Obj, placed: dict[str, Any], record: dict[str, Any], now: str) -> dict[str, Any]:
    """The placed status (built fresh by hub.controllers.placing) with the admission: Admitted
    True; Evicted False (Readmitted) if it was evicted before; no waitingFor."""
    stored = _status(cur).get("conditions") or []
    placed["admission"] = record
    placed.pop("eviction", None)
    placed.pop("waitingFor", None)
    flavor = record.get("flavor")
    on = f" on {flavor.get('name') or _flavor_text(flavor)}" if isinstance(flavor, dict) else ""
    msg = f"admitted to queue {record['queue']}{on} ({record['gpus']} GPUs)"
    status.set_condition(placed, stored, ADMITTED_CONDITION, "True", ADMITTED_REASON, msg, now)
    was = next((c for c in stored if isinstance(c, dict) and c.get("type") == EVICTED_CONDITION), None)
    if was is not None and was.get("status") == "True":
        status.set_condition(
            placed, stored, EVICTED_CONDITION, "False", READMITTED_REASON, f"admitted again: {msg}", now
        )
    return placed


def _flavor_text(f: Mapping[str, Any]) -> str:
    return " ".join(str(f[k]) for k in ("gpuModel", "capacityType", "region") if f.get(k))


def waiting_status(
    cur: Obj,
    reason: str,
    record: dict[str, Any] | None,
    cond_reason: str,
    waiting_for: list[str] | None,
    now: str,
) -> dict[str, Any] | None:
    """The status of a queued workload that waits (cond_reason Pending, Inadmissible or
    Preempting), or None when the stored one already says so."""
    base = status.pending_status(cur, reason, record, now)
    st = base if base is not None else copy.deepcopy(_status(cur))
    stored = _status(cur).get("conditions") or []
    status.set_condition(st, stored, ADMITTED_CONDITION, "False", cond_reason, reason, now)
    if waiting_for:
        st["waitingFor"] = sorted(waiting_for)
    else:
        st.pop("waitingFor", None)
    if base is None and status.same_status(_without_times(st), _without_times(_status(cur))):
        return None
    return st


def _without_times(st: dict[str, Any]) -> dict[str, Any]:
    c = {k: v for k, v in st.items() if k != "conditions"}
    c["conditions"] = [{k: v for k, v in x.items() if k != "lastTransitionTime"} for x in st.get("conditions") or []]
    return c


def eviction_reason(e: Eviction, preemptor_queue: str | None) -> str:
    """PreemptedByPriority inside one queue, ReclaimedByQueue across the cohort."""
    return PREEMPTED_BY_PRIORITY_REASON if e.workload.queue == preemptor_queue else RECLAIMED_REASON


def evicted_status(
    cur: Obj, e: Eviction, reason: str, grace: int, now: str, now_ts: float, withdraw: bool
) -> dict[str, Any]:
    """The status of an admitted workload the pass evicts: the eviction record and Evicted=True.
    `withdraw`: its Assignments go in the same transaction (no grace period)."""
    st = copy.deepcopy(_status(cur))
    stored = st.get("conditions") or []
    st["eviction"] = {
        "reason": reason,
        "message": e.reason,
        "preemptor": e.preemptor,
        "evictedAt": now,
        # Rounded up to the whole second the timestamp can say: truncated, it cut up to 1 s
        # off the notice period a checkpointing job was promised.
        "withdrawAt": _rfc3339(math.ceil(now_ts + grace)),
        "withdrawn": withdraw,
    }
    msg = e.reason if withdraw else f"{e.reason}; its copies are withdrawn in {grace}s"
    status.set_condition(st, stored, EVICTED_CONDITION, "True", reason, msg, now)
    if withdraw:
        _mark_withdrawn(st, now)
    return st


def withdrawn_status(cur: Obj, now: str | None = None) -> dict[str, Any]:
    """The status once an evicted workload's Assignments are withdrawn (grace period over)."""
    st = copy.deepcopy(_status(cur))
    ev = st.get("eviction")
    if isinstance(ev, dict):
        ev["withdrawn"] = True
    _mark_withdrawn(st, now or status.now_rfc3339())
    return st


def _mark_withdrawn(st: dict[str, Any], now: str) -> None:
    """The copies go: the placement says so, and the epoch ends (its history entry names the
    eviction's reason and the preemptor)."""
    ev = st.get("eviction") or {}
    cause = str(ev.get("message") or f"evicted for {ev.get('preemptor')}")  # "preempted by ns/name (…)"
    epochs.with_end(st, str(ev.get("reason") or EVICTED_CONDITION), cause, now)
    placement: dict[str, Any] = st["placement"] if isinstance(st.get("placement"), dict) else {}
    placement.pop("clusters", None)
    why = f"evicted ({ev.get('reason')}): {ev.get('message')}"
    placement["reason"] = f"{why}; its copies are being removed"
    st["placement"] = placement
    st["message"] = placement["reason"]


def released_status(cur: Obj, why: str, now: str) -> dict[str, Any]:
    """The status of a workload whose admission ends without finishing (evicted and its copies
    gone, or it lost its clusters): back in its queue, Admitted=False."""
    st = copy.deepcopy(_status(cur))
    queue = (st.get("admission") or {}).get("queue", "")
    st.pop("admission", None)
    st.pop("waitingFor", None)
    message = f"back in queue {queue}: {why}"
    epochs.with_end(st, epochs.REQUEUED_REASON, message, now)  # unless fenced or evicted already
    placement: dict[str, Any] = st["placement"] if isinstance(st.get("placement"), dict) else {}
    placement.pop("clusters", None)
    placement["reason"] = message
    st["placement"] = placement
    st["message"] = message
    status.set_condition(
        st, _status(cur).get("conditions") or [], ADMITTED_CONDITION, "False", ADMISSION_PENDING_REASON, message, now
    )
    return st


def queue_status(
    summary_usage: Iterable[Any], pending: int, admitted: int, share: float, names: Mapping[Flavor, str | None]
) -> dict[str, Any]:
    """Queue.status from the pass's QueueSummary numbers."""
    usage = []
    for s in summary_usage:
        f = s.flavor
        entry: dict[str, Any] = {
            "gpuModel": f.model,
            "capacityType": f.capacity_type,
            "used": s.used,
            "nominal": s.nominal,
            "borrowed": s.borrowed,
            "available": s.available,
        }
        if f.region:
            entry["region"] = f.region
        if names.get(f):
            entry["name"] = names[f]
        usage.append(entry)
    return {
        "pendingWorkloads": pending,
        "admittedWorkloads": admitted,
        "flavorsUsage": usage,
        "weightedShare": round(share, 6),
    }


def _rfc3339(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
