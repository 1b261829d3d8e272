"""A Workload's epoch history (status.epochHistory; hub/controllers/epochs.py) through the
controller's own status builders: an epoch starts with a placement and ends with a failover,
a spot interruption, an eviction, a requeue or the workload finishing; the list keeps the
last MAX_EPOCHS; nothing changes while the epoch does not.

Pure functions over stored objects as plain dicts: no database, no hub process.
"""

from __future__ import annotations

from typing import Any

from fleetplane_types import v1alpha1 as v1
from fleetplane_types.names import EVICTED_REASON, FAILOVER_REASON, PLACED_REASON, PREEMPTED_BY_PRIORITY_REASON
from hub.controllers import epochs, placing, queueing, status
from placement.queueing import AdmittedWorkload, Eviction, Flavor
from tests.unit.hub.test_controller_snapshot import a_cluster, a_stored_workload, decide_one

Obj = dict[str, Any]
T0 = "2026-03-01T10:00:00Z"
T1 = "2026-03-01T10:05:00Z"
T2 = "2026-03-01T10:09:00Z"


def placed(st: Obj, epoch: int, cluster: str, now: str) -> Obj:
    """The status hub.controllers.placing.placed_status writes when the real engine places the
    workload (stored with status `st`) on `cluster` (8 on-demand H100s) in `epoch`."""
    w = a_stored_workload(status=st)
    d = decide_one([a_cluster(cluster)], w)
    assert d.placed and [x.cluster for x in d.assignments] == [cluster]
    return placing.placed_status(w, d, epoch, now)


def an_eviction() -> Eviction:
    victim = AdmittedWorkload("research/sweep", "research", Flavor.of("H100", "on-demand"), 8, 10, T0)
    return Eviction(victim, "research/hotfix", "preempted by research/hotfix (priority 1000 > 10) in queue research")


def wl(st: Obj) -> Obj:
    return {"metadata": {"name": "train", "namespace": "team-a", "generation": 1}, "spec": {}, "status": st}


def test_a_failover_ends_the_epoch_and_the_next_one_says_which_cluster_it_came_from() -> None:
    first = placed({}, 1, "east", T0)
    assert first[epochs.FIELD] == [
        {
            "epoch": 1,
            "clusters": ["east"],
            "reason": PLACED_REASON,
            "message": "placed on east (1x H100 on-demand)",
            "startedAt": T0,
        }
    ]
    fenced = status.fenced_status(wl(first), "east (NotReady)", T1)
    [e1] = fenced[epochs.FIELD]
    assert (e1["endedAt"], e1["endReason"], e1["endMessage"]) == (T1, FAILOVER_REASON, "lost east (NotReady)")
    second = placed(fenced, 2, "west", T2)
    e1, e2 = second[epochs.FIELD]
    assert e1["endReason"] == FAILOVER_REASON
    assert (e2["epoch"], e2["clusters"], e2["reason"]) == (2, ["west"], FAILOVER_REASON)
    assert "east" in e2["message"] and e2["startedAt"] == T2 and "endedAt" not in e2
    assert first[epochs.FIELD][0].get("endedAt") is None, "the stored status is never changed in place"
    v1.WorkloadStatus.model_validate(second)  # the wire type accepts what the controller writes


def test_a_spot_interruption_is_an_eviction_in_the_history() -> None:
    fenced = status.fenced_status(wl(placed({}, 1, "spot-a", T0)), "spot-a (spot interruption)", T1)
    nxt = placed(fenced, 2, "spot-b", T2)[epochs.FIELD][-1]
    assert (nxt["reason"], nxt["message"]) == (EVICTED_REASON, "lost spot-a (spot interruption)")


def test_a_preempted_workload_names_its_preemptor_when_it_is_admitted_again() -> None:
    st = placed({"phase": "Running", "admission": {"queue": "research", "gpus": 8}}, 1, "sim-a", T0)
    evicted = queueing.evicted_status(wl(st), an_eviction(), PREEMPTED_BY_PRIORITY_REASON, 0, T1, 0.0, withdraw=True)
    [ended] = evicted[epochs.FIELD]
    assert ended["endReason"] == PREEMPTED_BY_PRIORITY_REASON and "research/hotfix" in ended["endMessage"]
    back = queueing.released_status(wl(evicted), "its copies are removed after the eviction", T2)
    assert back[epochs.FIELD] == evicted[epochs.FIELD], "already ended: releasing it changes nothing"
    again = placed(back, 2, "sim-a", T2)[epochs.FIELD][-1]
    assert again["reason"] == PREEMPTED_BY_PRIORITY_REASON and "research/hotfix" in again["message"]


def test_a_grace_period_ends_the_epoch_when_the_copies_are_withdrawn_not_before() -> None:
    st = placed({"phase": "Running", "admission": {"queue": "research", "gpus": 8}}, 1, "sim-a", T0)
    notice = queueing.evicted_status(wl(st), an_eviction(), PREEMPTED_BY_PRIORITY_REASON, 30, T1, 0.0, withdraw=False)
    assert "endedAt" not in notice[epochs.FIELD][-1], "its copies still run during the grace period"
    gone = queueing.withdrawn_status(wl(notice), T2)
    assert (gone[epochs.FIELD][-1]["endedAt"], gone[epochs.FIELD][-1]["endReason"]) == (
        T2,
        PREEMPTED_BY_PRIORITY_REASON,
    )


def test_a_workload_that_loses_its_copies_while_admitted_is_requeued() -> None:
    st = placed({"admission": {"queue": "q"}}, 3, "a", T0)
    back = queueing.released_status(wl(st), "it has no copy left", T1)
    assert back[epochs.FIELD][-1]["endReason"] == epochs.REQUEUED_REASON
    assert placed(back, 4, "b", T2)[epochs.FIELD][-1]["reason"] == epochs.REQUEUED_REASON


def test_finishing_ends_the_epoch_once_and_a_settled_status_adds_nothing() -> None:
    st = placed({"phase": "Running"}, 1, "east", T0)
    per_cluster = [{"name": "east", "phase": "Succeeded", "epoch": 1}]
    done = status.aggregated_status(wl(st), "Succeeded", per_cluster)
    assert done is not None and done[epochs.FIELD][-1]["endReason"] == "Succeeded"
    assert st[epochs.FIELD][-1].get("endedAt") is None, "the cached status is not changed in place"
    assert status.aggregated_status(wl(done), "Succeeded", per_cluster) is None, "nothing new to write"
    running = status.aggregated_status(wl(st), "Running", [{"name": "east", "phase": "Running", "epoch": 1}])
    assert running is not None and epochs.FIELD in running and "endedAt" not in running[epochs.FIELD][-1]


def test_the_history_keeps_the_last_ten_epochs_oldest_dropped() -> None:
    st: Obj = {}
    for epoch in range(1, 16):
        st = placed(st, epoch, f"c{epoch}", T0)
        st = status.fenced_status(wl(st), f"c{epoch} (NotReady)", T1)
    history = st[epochs.FIELD]
    assert len(history) == epochs.MAX_EPOCHS == 10
    assert [e["epoch"] for e in history] == list(range(6, 16))
    assert all(e["endReason"] == FAILOVER_REASON for e in history)
    assert history[0]["message"] == "lost c5 (NotReady)", "the first kept entry still says why it started"


def test_an_object_placed_before_the_history_existed_gets_its_epoch_recorded_when_it_ends() -> None:
    old = {"placement": {"epoch": 4, "clusters": [{"name": "east"}], "decidedAt": T0}, "message": "placed on east"}
    fenced = status.fenced_status(wl(old), "east (NotReady)", T1)
    [e] = fenced[epochs.FIELD]
    assert (e["epoch"], e["clusters"], e["startedAt"], e["endReason"]) == (4, ["east"], T0, FAILOVER_REASON)
    # And an object without any epoch has nothing to end.
    assert epochs.ended({"phase": "Pending"}, FAILOVER_REASON, "x", T1) is None


def test_old_statuses_without_the_field_still_decode() -> None:
    assert v1.WorkloadStatus.model_validate({"phase": "Running"}).epoch_history is None
