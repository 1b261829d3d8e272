"""What the controller's cache keeps of a Workload or Assignment (hub.controllers.cache.slim):
no managedFields, a Workload's placement explanation as a stub, an Assignment without its
manifests — and the decisions the controller takes on the cached copy stay those it would take
on the whole object. Pure logic."""

from __future__ import annotations

import copy
from typing import Any

from fleetplane_types.names import ASSIGNMENTS, WORKLOADS
from hub.controllers import cache as fleet_cache
from hub.controllers import status
from hub.controllers.federation import shows_engine_reason
from tests.unit.hub.test_controller_cache import a_workload, an_assignment, event, listed

Obj = dict[str, Any]
REASON = "0/2 clusters: 2 no H100"
MANAGED = [{"manager": "fleetplane-controller", "operation": "Update", "fieldsV1": {"f:status": {}}}]


def explanation(reason: str = REASON, score: float = 0.5) -> Obj:
    return {
        "placed": False,
        "reason": reason,
        "clustersTotal": 2,
        "clusters": [{"name": "east", "feasible": False, "reason": "no H100", "score": score}],
    }


def pending_workload(rv: int = 5) -> Obj:
    w = a_workload("big", rv)
    w["metadata"]["generation"] = 3
    w["metadata"]["managedFields"] = copy.deepcopy(MANAGED)
    new = status.pending_status(w, REASON, {"reason": REASON, "explanation": explanation()}, "2026-03-01T10:00:00Z")
    assert new is not None
    w["status"] = new
    return w


def test_the_cache_keeps_a_slim_copy_and_never_changes_the_event_object() -> None:
    w = pending_workload()
    a = an_assignment("big", "east", 6)
    a["metadata"]["managedFields"] = copy.deepcopy(MANAGED)
    a["spec"]["manifests"] = [{"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "big"}}]
    w_before, a_before = copy.deepcopy(w), copy.deepcopy(a)
    cache = listed(4)
    cache.apply(event(WORKLOADS, "ADDED", w))
    cache.apply(event(ASSIGNMENTS, "ADDED", a))
    assert w == w_before and a == a_before, "the event's objects are shared with the watch fan-out"

    cw = cache.workload(("team-a", "big"))
    assert cw is not None
    assert "managedFields" not in cw["metadata"] and cw["metadata"]["resourceVersion"] == "5"
    stub = cw["status"]["placement"]["explanation"]
    assert set(stub) == {"placed", "digest"} and stub["placed"] is False
    assert cw["status"]["placement"]["reason"] == REASON and cw["spec"] == w["spec"]
    assert shows_engine_reason(cw), "what the controller reads of the explanation is kept"

    [ca] = cache.assignments_of(("team-a", "big"))
    assert "manifests" not in ca["spec"] and "managedFields" not in ca["metadata"]
    assert ca["spec"]["clusterName"] == "east" and ca["spec"]["epoch"] == 1

    listed_cache = listed(5, workloads=[w])  # a list keeps the same slim copy as an event
    assert listed_cache.workload(("team-a", "big")) == cw


def test_the_pending_check_on_the_cached_copy_agrees_with_the_whole_object() -> None:
    """`_set_pending` decides on the cached copy whether anything must be written: with stubs
    on both sides it must say "unchanged" exactly when the whole status is unchanged."""
    w = pending_workload()
    cw = fleet_cache.slim(WORKLOADS, w)
    for record, changed in [
        ({"reason": REASON, "explanation": explanation()}, False),  # the same explanation again
        ({"reason": REASON, "explanation": explanation(score=0.75)}, True),  # one score differs
        ({"reason": "0/3 clusters: 3 no H100", "explanation": explanation("0/3 clusters: 3 no H100")}, True),
    ]:
        whole = status.pending_status(w, record["reason"], record)
        cached = status.pending_status(cw, record["reason"], fleet_cache.slim_record(record))
        assert (whole is not None) == changed, record
        assert (cached is not None) == changed, f"the cached copy decides differently for {record}"

    placed = a_workload("done", 7, epoch=1)
    placed["status"]["placement"]["explanation"] = {**explanation(), "placed": True}
    assert fleet_cache.slim(WORKLOADS, placed)["status"]["placement"]["explanation"] == {"placed": True}
