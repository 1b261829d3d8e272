"""The queue statuses of the federation controller (hub/controllers/queueing.py): which
workloads hold quota, which changes give it back, the eviction record and its notice period,
re-admission. Pure functions over stored objects as plain dicts: no database, no hub process.
The same stories on a real hub: tests/api/test_queue_*_hub.py.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from fleetplane_types.names import (
    ADMITTED_CONDITION,
    EVICTED_CONDITION,
    PREEMPTED_BY_PRIORITY_REASON,
    READMITTED_REASON,
)
from hub.controllers import queueing
from placement.queueing import AdmittedWorkload, Eviction, Flavor

Obj = dict[str, Any]
NOW = "2026-03-01T10:00:00Z"
H100 = Flavor.of("H100", "on-demand")


def a_queue(name: str = "research", default_for: list[str] | None = None) -> Obj:
    spec: Obj = {
        "resourceGroups": [{"flavors": [{"gpuModel": "H100", "capacityType": "on-demand", "nominalQuota": 8}]}]
    }
    if default_for:
        spec["defaultFor"] = default_for
    return {"apiVersion": "fleetplane.io/v1alpha1", "kind": "Queue", "metadata": {"name": name}, "spec": spec}


CONFIG = queueing.build_config([a_queue(default_for=["ml"])], [], "default")


def a_workload(ns: str = "research", queue: str | None = "research", **status: Any) -> Obj:
    w: Obj = {"metadata": {"name": "sweep", "namespace": ns}, "spec": {"gpu": {"count": 8}}}
    if queue:
        w["spec"]["queue"] = queue
    if status:
        w["status"] = status
    return w


ADMISSION = {"queue": "research", "gpus": 8, "priority": 10, "admittedAt": NOW}


def ts(text: str) -> float:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


# ---------------------------------------------------------------- which changes give quota back


@pytest.mark.parametrize(
    ("w", "frees"),
    [
        (None, True),  # deleted and gone from the cache: it may have held quota
        (a_workload(phase="Succeeded", admission=ADMISSION), True),
        (a_workload(phase="Failed", admission=ADMISSION), True),
        (a_workload(phase="Running", admission=ADMISSION), False),  # still holds it
        (a_workload(), False),  # waiting: holds nothing
        ({**a_workload(), "metadata": {"name": "sweep", "namespace": "research", "deletionTimestamp": NOW}}, True),
        (a_workload(ns="ml", queue=None, phase="Succeeded"), True),  # queued by its namespace's default
        (a_workload(ns="prod", queue=None, phase="Succeeded"), False),  # never queued: no Queue to recount
    ],
    ids=[
        "deleted",
        "succeeded",
        "failed",
        "running",
        "waiting",
        "being deleted",
        "finished in a default queue",
        "finished unqueued",
    ],
)
def test_a_finished_or_deleted_queued_workload_gives_quota_back(w: Obj | None, frees: bool) -> None:
    assert queueing.frees_quota(w, CONFIG) is frees


def test_an_admitted_workload_holds_quota_until_it_finishes_or_is_deleted() -> None:
    assert queueing.holding(a_workload(phase="Running", admission=ADMISSION))
    assert not queueing.holding(a_workload(phase="Succeeded", admission=ADMISSION))
    assert not queueing.holding(a_workload(phase="Pending"))
    evicted = a_workload(phase="Running", admission=ADMISSION, eviction={"reason": "x"})
    assert queueing.holding(evicted) and queueing.evicting(evicted)


# ---------------------------------------------------------------- eviction and its notice period


def an_eviction() -> Eviction:
    victim = AdmittedWorkload("research/sweep", "research", H100, 8, 10, NOW)
    return Eviction(victim, "research/hotfix", "preempted by research/hotfix (priority 1000 > 10) in queue research")


@pytest.mark.parametrize(
    ("evicted_at", "grace", "withdraw_at"),
    [
        # 10:00:00.0 + 5 s = 10:00:05 exactly
        (ts("2026-03-01T10:00:00Z"), 5, "2026-03-01T10:00:05Z"),
        # 10:00:00.9 + 5 s = 10:00:05.9: rounded UP to :06 (truncated to :05 it promised 4.1 s)
        (ts("2026-03-01T10:00:00Z") + 0.9, 5, "2026-03-01T10:00:06Z"),
        # no grace period: withdrawn now (rounded up to the next whole second)
        (ts("2026-03-01T10:00:00Z") + 0.2, 0, "2026-03-01T10:00:01Z"),
    ],
)
def test_the_withdrawal_time_is_never_before_the_grace_period_is_over(
    evicted_at: float, grace: int, withdraw_at: str
) -> None:
    cur = a_workload(phase="Running", admission=ADMISSION, placement={"epoch": 1, "clusters": [{"name": "sim-a"}]})
    st = queueing.evicted_status(
        cur, an_eviction(), PREEMPTED_BY_PRIORITY_REASON, grace, NOW, evicted_at, withdraw=grace == 0
    )
    assert st["eviction"]["withdrawAt"] == withdraw_at
    assert ts(st["eviction"]["withdrawAt"]) >= evicted_at + grace


def test_a_victim_with_a_grace_period_keeps_its_placement_and_is_told_when_it_goes() -> None:
    cur = a_workload(phase="Running", admission=ADMISSION, placement={"epoch": 1, "clusters": [{"name": "sim-a"}]})
    st = queueing.evicted_status(cur, an_eviction(), PREEMPTED_BY_PRIORITY_REASON, 5, NOW, ts(NOW), withdraw=False)
    evicted = next(c for c in st["conditions"] if c["type"] == EVICTED_CONDITION)
    assert (evicted["status"], evicted["reason"]) == ("True", PREEMPTED_BY_PRIORITY_REASON)
    assert evicted["message"].endswith("its copies are withdrawn in 5s")
    assert st["eviction"]["withdrawn"] is False
    assert st["placement"]["clusters"] == [{"name": "sim-a"}]  # still there until withdrawAt
    assert st["admission"] == ADMISSION  # and it still holds its quota

    gone = queueing.withdrawn_status({**cur, "status": st})
    assert gone["eviction"]["withdrawn"] is True
    assert "clusters" not in gone["placement"]
    assert gone["admission"] == ADMISSION  # held until its copies are gone


def test_a_released_victim_is_back_in_its_queue_and_readmitted_later() -> None:
    cur = a_workload(phase="Running", admission=ADMISSION, placement={"epoch": 1})
    evicted = queueing.evicted_status(cur, an_eviction(), PREEMPTED_BY_PRIORITY_REASON, 0, NOW, ts(NOW), withdraw=True)
    back = queueing.released_status({**cur, "status": evicted}, "its copies are removed after the eviction", NOW)
    assert "admission" not in back
    admitted = next(c for c in back["conditions"] if c["type"] == ADMITTED_CONDITION)
    assert admitted["status"] == "False"
    assert admitted["message"] == "back in queue research: its copies are removed after the eviction"
    assert back["phase"] == "Running"  # phases never move backward

    placed = queueing.with_admission({**cur, "status": back}, {"phase": "Pending"}, dict(ADMISSION), NOW)
    conds = {c["type"]: c for c in placed["conditions"]}
    assert conds[ADMITTED_CONDITION]["status"] == "True"
    assert (conds[EVICTED_CONDITION]["status"], conds[EVICTED_CONDITION]["reason"]) == ("False", READMITTED_REASON)
    assert "eviction" not in placed and "waitingFor" not in placed


def test_an_evicted_workload_whose_copies_were_withdrawn_does_not_say_running() -> None:
    from hub.controllers.status import workload_conditions

    st = {
        "phase": "Running",
        "message": "back in queue research: its copies are removed after the eviction",
        "placement": {"epoch": 1, "reason": "back in queue research"},
        "eviction": {"reason": "PreemptedByPriority", "message": "preempted by ml/hotfix", "withdrawn": True},
    }
    running = next(c for c in workload_conditions(st, "2026-12-02T00:00:00Z") if c["type"] == "Running")
    assert (running["status"], running["reason"]) == ("False", "Evicted")
    # Still in its grace period (not withdrawn): its copy runs.
    st["eviction"]["withdrawn"] = False
    st["placement"]["clusters"] = [{"name": "sim-a", "replicas": 1}]
    running = next(c for c in workload_conditions(st, "2026-12-02T00:00:00Z") if c["type"] == "Running")
    assert running["status"] == "True"
