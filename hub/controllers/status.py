"""Pure status rules for Workloads: aggregation from Assignments, the pending status, the
phase order that never moves backward, the conditions, and when a status is "the same" (so
the controller never rewrites a status that did not change). No I/O: table-tested in
tests/unit/hub."""

from __future__ import annotations

import copy
import json
import math
from typing import Any

from fleetplane_types.conditions import find_condition
from fleetplane_types.names import (
    ADMITTED_CONDITION,
    COMPLETED_REASON,
    EVICTED_REASON,
    FAILED_CONDITION,
    FAILED_REASON,
    FAILOVER_REASON,
    FINISHED_REASON,
    NOT_PLACED_REASON,
    PLACED_CONDITION,
    PLACED_REASON,
    PREEMPTED_REASON,
    QUEUE_CONDITIONS,
    RESCHEDULING_REASON,
    RUNNING_CONDITION,
    RUNNING_REASON,
    SUCCEEDED_CONDITION,
    SUCCEEDED_REASON,
    UNSCHEDULABLE_REASON,
    WAITING_REASON,
    WORKLOAD_CONDITIONS,
)
from hub.controllers import epochs
from hub.store.store import now_rfc3339

Obj = dict[str, Any]

PHASE_RANK: dict[str | None, int] = {None: 0, "Pending": 0, "Placed": 1, "Running": 2, "Succeeded": 3, "Failed": 3}
"""Workload phases in order; a workload's phase never moves to a lower rank (invariant I3)."""


def workload_phase(assignment_phases: list[str]) -> str:
    """The phase a placed workload's Assignments add up to.

    Any Failed/Rejected → Failed; all Succeeded → Succeeded; any Running/Succeeded → Running;
    else Placed (delivered, not yet running)."""
    if any(p in ("Failed", "Rejected") for p in assignment_phases):
        return "Failed"
    if assignment_phases and all(p == "Succeeded" for p in assignment_phases):
        return "Succeeded"
    if any(p in ("Running", "Succeeded") for p in assignment_phases):
        return "Running"
    return "Placed"


def per_cluster_status(current: list[Obj], lost: list[Obj]) -> list[dict[str, Any]]:
    """status.clusters of a workload: one entry per current Assignment (lost ones say why)."""
    out = []
    for a in current:
        st = a.get("status") or {}
        entry = {"name": a["spec"]["clusterName"], "phase": st.get("phase") or "Pending", "epoch": a["spec"]["epoch"]}
        msg = st.get("message") or st.get("reason")
        if a in lost:
            msg = f"cluster NotReady (failover: Wait){': ' + msg if msg else ''}"
        if msg:
            entry["message"] = msg
        out.append(entry)
    return out


def aggregated_status(cur: Obj, phase: str, per_cluster: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The workload status from its Assignments, never moving the phase backward; None if unchanged.

    The result shares what it did not change with `cur`'s status (no deep copy: most calls
    find nothing changed); `settled_status`, which every caller hands it to, copies it."""
    st = cur.get("status") or {}
    old_phase = st.get("phase")
    new_phase = phase if PHASE_RANK[phase] >= PHASE_RANK.get(old_phase, 0) else old_phase
    msg = st.get("message")
    if new_phase == "Failed":
        msg = "; ".join(
            f"{e['name']}: {e.get('message', e['phase'])}" for e in per_cluster if e["phase"] in ("Failed", "Rejected")
        )
    elif new_phase == "Succeeded":
        msg = "all replicas succeeded"
    elif new_phase == "Running":
        # A workload stays Running (phases never move back) while a copy briefly reports less.
        running = [e["name"] for e in per_cluster if e["phase"] in ("Running", "Succeeded")]
        msg = "running on " + ", ".join(running or [e["name"] for e in per_cluster])
    new = {**st, "phase": new_phase, "clusters": per_cluster, "message": msg}
    if new_phase in ("Succeeded", "Failed") and old_phase != new_phase:  # its epoch ends with it
        done = epochs.ended(new, new_phase, msg or f"the workload {new_phase.lower()}", now_rfc3339())
        if done is not None:
            new[epochs.FIELD] = done
    return None if same_status(new, st) else new


def pending_status(
    cur: Obj, reason: str, record: dict[str, Any] | None, now: str | None = None
) -> dict[str, Any] | None:
    """The status of a workload the engine could not place, or None if it already says so.

    Only real changes are written: the controller's own writes wake it, so writing identical
    status would keep it busy forever."""
    st = copy.deepcopy(cur.get("status") or {})
    placement = copy.deepcopy(st.get("placement") or {})
    placement["reason"] = reason
    placement.pop("clusters", None)  # omitted, not []: `-o custom-columns=…clusters[0].name` prints <none>
    if record is not None:
        placement["explanation"] = record.get("explanation")
    new_st = {
        **st,
        "phase": st.get("phase") if PHASE_RANK.get(st.get("phase"), 0) > 0 else "Pending",
        "message": reason,
        "placement": placement,
    }
    if new_st.get("phase") == "Pending":
        new_st["observedGeneration"] = (cur.get("metadata") or {}).get("generation")
    if same_status(_strip_times(new_st), _strip_times(st)):
        return None
    new_st["placement"]["decidedAt"] = now or now_rfc3339()
    return new_st


def _strip_times(st: dict[str, Any]) -> dict[str, Any]:
    c = copy.deepcopy(st)
    (c.get("placement") or {}).pop("decidedAt", None)
    return c


def fenced_status(cur: Obj, why: str, now: str | None = None) -> dict[str, Any]:
    """The status of a workload whose current epoch was lost (`why`: its lost copies as
    `lost_reason` names them): re-placing, epoch kept (the next placement uses epoch + 1). The
    epoch's history entry ends Evicted when every lost copy was a spot interruption, else
    FailedOver."""
    st = copy.deepcopy(cur.get("status") or {})
    spot = all(part.endswith(f"({SPOT_INTERRUPTION})") for part in why.split(", "))
    epochs.with_end(st, EVICTED_REASON if spot else FAILOVER_REASON, f"lost {why}", now or now_rfc3339())
    placement = st.get("placement") or {}
    placement.pop("clusters", None)
    placement["reason"] = f"re-placing: lost {why}"
    st["placement"] = placement
    st["message"] = f"re-placing after losing {why}"
    return st


SPOT_INTERRUPTION = "spot interruption"


def lost_reason(a: Obj) -> str:
    """Why an Assignment's copy is lost: a spot interruption, or its cluster went NotReady."""
    preempted = (a.get("status") or {}).get("reason") == PREEMPTED_REASON
    return f"{a['spec']['clusterName']} ({SPOT_INTERRUPTION if preempted else 'NotReady'})"


# ------------------------------------------------------------------ sameness


def canonical(value: Any) -> Any:
    """`value` as Postgres JSONB gives it back, for comparisons: a JSON round trip in which
    every number is a float (JSONB keeps 1e24 as the integer 10**24 and 2.0 as 2.0, Python
    makes them float and int) and key order does not count.

    The controller compares statuses on this form only: its own writes wake it, so a value
    that never compares equal to its stored copy would make it rewrite status forever."""

    def number(text: str) -> Any:
        f = float(text)
        return f if math.isfinite(f) else text

    return json.loads(json.dumps(value, sort_keys=True, default=str), parse_int=number, parse_float=number)


def same_status(a: Any, b: Any) -> bool:
    """`canonical(a) == canonical(b)`, without building either: plain equality first (it decides
    most comparisons), then a walk that stops at the first difference. Two JSON round trips per
    comparison of statuses that really differ were 15 % of the controller's CPU in a
    2,000-workload burst."""
    return bool(a == b or _same(a, b))


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, dict):
        if not isinstance(b, dict) or len(a) != len(b):
            return False
        for k, v in a.items():
            if k not in b:
                return canonical(a) == canonical(b)  # keys JSON would spell alike (1 and "1"): rare
            if not _same(v, b[k]):
                return False
        return True
    if isinstance(a, list | tuple):
        if not isinstance(b, list | tuple) or len(a) != len(b):
            return False
        return all(_same(x, y) for x, y in zip(a, b, strict=True))
    if (
        isinstance(a, int | float)
        and isinstance(b, int | float)
        and not isinstance(a, bool)
        and not isinstance(b, bool)
    ):
        if a == b:
            return True
        return bool(canonical(a) == canonical(b))  # 1e24 and 10**24, as JSONB gives them back
    if a == b:
        return True
    return bool(canonical(a) == canonical(b))


# ------------------------------------------------------------------ conditions


def _condition(old: list[Any], cond_type: str, status: str, reason: str, message: str, now: str) -> dict[str, Any]:
    """One condition; lastTransitionTime moves only when its status changes."""
    prev = find_condition({"status": {"conditions": old}}, cond_type)
    kept = prev is not None and prev.get("status") == status and prev.get("lastTransitionTime")
    since = str(prev.get("lastTransitionTime")) if kept and prev is not None else now
    return {"type": cond_type, "status": status, "reason": reason, "message": message, "lastTransitionTime": since}


def workload_conditions(st: dict[str, Any], now: str, previous: list[Any] | None = None) -> list[dict[str, Any]]:
    """The conditions a Workload status implies: Placed and Running always, Succeeded or
    Failed once it finished. `previous` (default: st's own) are the stored conditions: their
    transition times are kept where the status did not change, and conditions of other types
    (someone else's) are kept."""
    old = [c for c in (st.get("conditions") if previous is None else previous) or [] if isinstance(c, dict)]
    phase = st.get("phase") or "Pending"
    message = str(st.get("message") or "")
    placement = st.get("placement") or {}
    placed = bool(placement.get("clusters"))
    out: list[dict[str, Any]] = []
    if placed or phase in ("Succeeded", "Failed"):
        out.append(_condition(old, PLACED_CONDITION, "True", PLACED_REASON, _placed_message(st), now))
    elif placement.get("epoch") is not None:
        why = str(placement.get("reason") or message)
        out.append(_condition(old, PLACED_CONDITION, "False", RESCHEDULING_REASON, why, now))
    else:
        why = str(placement.get("reason") or message)
        out.append(_condition(old, PLACED_CONDITION, "False", UNSCHEDULABLE_REASON, why, now))
    raw_eviction = st.get("eviction")
    eviction: dict[str, Any] = raw_eviction if isinstance(raw_eviction, dict) else {}
    withdrawn = bool(eviction.get("withdrawn")) and not placed
    if phase == "Running" and withdrawn:
        # Evicted: its copies were withdrawn and it waits in its queue again. The phase stays
        # (it never moves backward) but nothing runs.
        why = f"evicted ({eviction.get('reason')}): its copies were withdrawn; waiting in its queue"
        out.append(_condition(old, RUNNING_CONDITION, "False", EVICTED_REASON, why, now))
    elif phase == "Running":
        out.append(_condition(old, RUNNING_CONDITION, "True", RUNNING_REASON, message, now))
    elif phase in ("Succeeded", "Failed"):
        out.append(_condition(old, RUNNING_CONDITION, "False", COMPLETED_REASON, f"the workload {phase.lower()}", now))
    elif phase == "Placed" and placed:
        out.append(_condition(old, RUNNING_CONDITION, "False", WAITING_REASON, "no copy reports running yet", now))
    else:
        out.append(_condition(old, RUNNING_CONDITION, "False", NOT_PLACED_REASON, "not placed", now))
    if phase == "Succeeded":
        out.append(_condition(old, SUCCEEDED_CONDITION, "True", SUCCEEDED_REASON, message, now))
    if phase == "Failed":
        out.append(_condition(old, FAILED_CONDITION, "True", FAILED_REASON, message, now))
    return out + _queue_conditions(st, old, phase, now)


def _queue_conditions(st: dict[str, Any], old: list[dict[str, Any]], phase: str, now: str) -> list[dict[str, Any]]:
    """Conditions of other types, as stored — except the queue's (Admitted, Evicted), which the
    new status `st` carries when the admission pass set them (hub.controllers.queueing) — and a
    finished workload's Admitted turned False: its quota is released."""
    own = {
        c.get("type"): c
        for c in st.get("conditions") or []
        if isinstance(c, dict) and c.get("type") in QUEUE_CONDITIONS
    }
    rest: list[dict[str, Any]] = []
    for c in old:
        t = c.get("type")
        if t in WORKLOAD_CONDITIONS:
            continue
        rest.append(own.pop(t, c) if t in QUEUE_CONDITIONS else c)
    rest += own.values()
    if phase in ("Succeeded", "Failed"):
        for i, c in enumerate(rest):
            if c.get("type") == ADMITTED_CONDITION and c.get("status") == "True":
                message = f"the workload {phase.lower()}: its quota is released"
                rest[i] = _condition(old, ADMITTED_CONDITION, "False", FINISHED_REASON, message, now)
    return rest


def set_condition(
    st: dict[str, Any], stored: list[Any], cond_type: str, status: str, reason: str, message: str, now: str
) -> None:
    """Set one condition on the new status `st` (in place); its transition time moves only
    when its status changes from the `stored` conditions'."""
    cond = _condition([c for c in stored or [] if isinstance(c, dict)], cond_type, status, reason, message, now)
    conds = [c for c in st.get("conditions") or [] if isinstance(c, dict) and c.get("type") != cond_type]
    st["conditions"] = [*conds, cond]


def _placed_message(st: dict[str, Any]) -> str:
    clusters = ((st.get("placement") or {}).get("clusters")) or []
    names = [str(c.get("name")) for c in clusters if isinstance(c, dict)]
    return "placed on " + ", ".join(names) if names else str(st.get("message") or "")


def settled_status(
    cur: Obj, new: dict[str, Any] | None, now: str | None = None, *, changed: bool = False
) -> dict[str, Any] | None:
    """The status to write for a Workload whose next status is `new` (None: unchanged): with
    its conditions and without an empty placement.clusters; None when it is the same as the
    stored status (compared on `canonical` form), so nothing is written.

    `changed`: the caller built `new` fresh (it may be changed in place) and knows it differs
    from the stored status — a new placement epoch — so neither the copy nor the comparison
    (two canonical JSON round trips of a status with its placement explanation) is made."""
    stored = cur.get("status") or {}
    if new is None and not changed:
        # Nothing new but (maybe) the conditions: decide on those before copying anything (most
        # controller passes look at many workloads and change none).
        placement = stored.get("placement")
        empty_clusters = isinstance(placement, dict) and placement.get("clusters") == []
        conds = workload_conditions(stored, now or now_rfc3339(), stored.get("conditions") or [])
        if not empty_clusters and same_status(conds, stored.get("conditions") or []):
            return None
    if changed and new is not None:
        st = new
    else:
        st = copy.deepcopy(new if new is not None else stored)
    placement = st.get("placement")
    if isinstance(placement, dict) and placement.get("clusters") == []:
        placement.pop("clusters")
    st["conditions"] = workload_conditions(st, now or now_rfc3339(), stored.get("conditions") or [])
    if changed:
        return st
    return None if same_status(st, stored) else st
