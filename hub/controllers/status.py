"""Pure status rules for Workloads: aggregation from Assignments, the pending status, and the
phase order that never moves backward. No I/O: table-tested in tests/unit/hub."""

from __future__ import annotations

import copy
from typing import Any

from fleetplane_types.names import PREEMPTED_REASON
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
    """The workload status from its Assignments, never moving the phase backward; None if unchanged."""
    st = copy.deepcopy(cur.get("status") or {})
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
    return None if new == st else new


def pending_status(
    cur: Obj, reason: str, record: dict[str, Any] | None, now: str | None = None
) -> dict[str, Any] | None:
    """The status of a workload the engine could not place, or None if it already says so.

    Only real changes are written: the controller's own writes wake it, so writing identical
    status would keep it busy forever."""
    st = copy.deepcopy(cur.get("status") or {})
    placement = copy.deepcopy(st.get("placement") or {})
    placement["reason"] = reason
    placement["clusters"] = []
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
    if _strip_times(new_st) == _strip_times(st):
        return None
    new_st["placement"]["decidedAt"] = now or now_rfc3339()
    return new_st


def _strip_times(st: dict[str, Any]) -> dict[str, Any]:
    c = copy.deepcopy(st)
    (c.get("placement") or {}).pop("decidedAt", None)
    return c


def fenced_status(cur: Obj, why: str) -> dict[str, Any]:
    """The status of a workload whose current epoch was lost: re-placing, epoch kept (the next
    placement uses epoch + 1)."""
    st = copy.deepcopy(cur.get("status") or {})
    placement = st.get("placement") or {}
    placement["clusters"] = []
    placement["reason"] = f"re-placing: lost {why}"
    st["placement"] = placement
    st["message"] = f"re-placing after losing {why}"
    return st


def lost_reason(a: Obj) -> str:
    """Why an Assignment's copy is lost: a spot interruption, or its cluster went NotReady."""
    preempted = (a.get("status") or {}).get("reason") == PREEMPTED_REASON
    return f"{a['spec']['clusterName']} ({'spot interruption' if preempted else 'NotReady'})"
