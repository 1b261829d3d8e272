"""The Workload status rules of the federation controller (hub/controllers/status.py).

Pure functions over stored objects as plain dicts: no database, no hub process.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from fleetplane_types.names import PREEMPTED_REASON
from hub.controllers.status import (
    aggregated_status,
    fenced_status,
    lost_reason,
    pending_status,
    per_cluster_status,
    workload_phase,
)

Obj = dict[str, Any]
NOW = "2026-03-01T10:00:00Z"
LATER = "2026-03-01T10:05:00Z"


# ---------------------------------------------------------------- builders


def a_workload(status: Obj | None = None, generation: int = 1) -> Obj:
    w: Obj = {"metadata": {"name": "train", "namespace": "team-a", "generation": generation}, "spec": {"replicas": 1}}
    if status is not None:
        w["status"] = status
    return w


def an_assignment(cluster: str, phase: str | None = None, epoch: int = 1, **status: Any) -> Obj:
    a: Obj = {
        "metadata": {"name": f"train-{cluster}-e{epoch}", "namespace": "team-a"},
        "spec": {"clusterName": cluster, "epoch": epoch, "workloadRef": {"name": "train", "uid": "u1"}},
    }
    if phase is not None or status:
        a["status"] = {**({"phase": phase} if phase else {}), **status}
    return a


def entry(name: str, phase: str, epoch: int = 1, message: str | None = None) -> Obj:
    """One element of status.clusters."""
    e: Obj = {"name": name, "phase": phase, "epoch": epoch}
    if message is not None:
        e["message"] = message
    return e


# ---------------------------------------------------------------- workload_phase


@pytest.mark.parametrize(
    "assignment_phases,expected",
    [
        # Any Failed or Rejected copy fails the workload, whatever the others do.
        (["Failed"], "Failed"),
        (["Running", "Rejected"], "Failed"),
        (["Succeeded", "Failed"], "Failed"),
        (["Pending", "Rejected"], "Failed"),
        # All Succeeded, and only then, is Succeeded.
        (["Succeeded"], "Succeeded"),
        (["Succeeded", "Succeeded"], "Succeeded"),
        # Some copy running (or already done while another is not): Running.
        (["Running"], "Running"),
        (["Running", "Pending"], "Running"),
        (["Succeeded", "Applied"], "Running"),
        # Delivered but nothing running yet: Placed.
        (["Pending"], "Placed"),
        (["Applied", "Pending"], "Placed"),
        # No phases at all: all([]) is True, but an empty list must not read as "all succeeded".
        ([], "Placed"),
    ],
)
def test_workload_phase_adds_up_the_assignment_phases(assignment_phases: list[str], expected: str) -> None:
    assert workload_phase(assignment_phases) == expected


# ---------------------------------------------------------------- per_cluster_status


def test_per_cluster_status_has_one_entry_per_assignment_with_its_phase_and_epoch() -> None:
    current = [an_assignment("east", "Running", epoch=2), an_assignment("west", epoch=2)]
    # west has no status yet: it reads as Pending.
    assert per_cluster_status(current, []) == [entry("east", "Running", 2), entry("west", "Pending", 2)]


def test_per_cluster_status_takes_the_message_else_the_reason_of_an_assignment() -> None:
    current = [
        an_assignment("east", "Failed", message="OOMKilled", reason="PodFailed"),
        an_assignment("west", "Rejected", reason="UnknownKind"),
    ]
    assert per_cluster_status(current, []) == [
        entry("east", "Failed", message="OOMKilled"),
        entry("west", "Rejected", message="UnknownKind"),
    ]


def test_per_cluster_status_says_why_a_lost_copy_is_kept_under_failover_wait() -> None:
    quiet = an_assignment("east", "Running")
    talking = an_assignment("west", "Running", message="2/2 pods running")
    out = per_cluster_status([quiet, talking], [quiet, talking])
    assert out == [
        entry("east", "Running", message="cluster NotReady (failover: Wait)"),
        entry("west", "Running", message="cluster NotReady (failover: Wait): 2/2 pods running"),
    ]


# ---------------------------------------------------------------- aggregated_status


@pytest.mark.parametrize(
    "old_phase,computed,expected",
    [
        # Forward moves are taken.
        (None, "Placed", "Placed"),
        ("Pending", "Placed", "Placed"),
        ("Placed", "Running", "Running"),
        ("Running", "Succeeded", "Succeeded"),
        ("Running", "Failed", "Failed"),
        # Backward moves are refused (invariant I3): an agent restart that reports
        # Applied/Pending again must not make a running workload look merely Placed.
        ("Running", "Placed", "Running"),
        ("Succeeded", "Running", "Succeeded"),
        ("Failed", "Placed", "Failed"),
    ],
)
def test_aggregated_status_never_moves_the_phase_backward(old_phase: str | None, computed: str, expected: str) -> None:
    status = {"phase": old_phase} if old_phase else {}
    per_cluster = [entry("east", {"Placed": "Applied"}.get(computed, computed))]
    new = aggregated_status(a_workload(status), computed, per_cluster)
    assert new is not None and new["phase"] == expected


def test_a_running_workload_stays_running_when_its_assignments_say_placed() -> None:
    cur = a_workload({"phase": "Running", "message": "running on east", "clusters": [entry("east", "Running")]})
    new = aggregated_status(cur, workload_phase(["Applied"]), [entry("east", "Applied")])
    assert new is not None
    assert new["phase"] == "Running"
    assert new["clusters"] == [entry("east", "Applied")], "per-cluster detail still shows what the agent says"


def test_aggregated_status_names_the_clusters_a_workload_runs_on() -> None:
    per_cluster = [entry("east", "Running"), entry("west", "Pending"), entry("north", "Succeeded")]
    new = aggregated_status(a_workload({"phase": "Placed"}), "Running", per_cluster)
    assert new is not None
    # Running and Succeeded copies are listed, in Assignment order; the Pending one is not.
    assert new["message"] == "running on east, north"


def test_aggregated_status_says_all_replicas_succeeded() -> None:
    per_cluster = [entry("east", "Succeeded"), entry("west", "Succeeded")]
    new = aggregated_status(a_workload({"phase": "Running"}), "Succeeded", per_cluster)
    assert new is not None
    assert (new["phase"], new["message"]) == ("Succeeded", "all replicas succeeded")


def test_aggregated_status_of_a_failure_names_each_failed_cluster_and_why() -> None:
    per_cluster = [entry("east", "Failed", message="OOMKilled"), entry("west", "Running"), entry("north", "Rejected")]
    new = aggregated_status(a_workload({"phase": "Running"}), "Failed", per_cluster)
    assert new is not None
    # east carries a message; north has none, so its phase stands in; west is not failed.
    assert new["message"] == "east: OOMKilled; north: Rejected"


def test_aggregated_status_keeps_the_rest_of_the_status_and_leaves_the_input_alone() -> None:
    cur = a_workload(
        {"phase": "Placed", "placement": {"epoch": 3, "clusters": [{"name": "east"}]}, "observedGeneration": 1}
    )
    before = copy.deepcopy(cur)
    new = aggregated_status(cur, "Running", [entry("east", "Running", 3)])
    assert new is not None
    assert new["placement"] == {"epoch": 3, "clusters": [{"name": "east"}]}
    assert new["observedGeneration"] == 1
    assert cur == before


def test_aggregated_status_is_none_when_nothing_changed() -> None:
    per_cluster = [entry("east", "Running")]
    cur = a_workload({"phase": "Running", "clusters": per_cluster, "message": "running on east"})
    # The controller's own writes wake it: an identical write would loop forever.
    assert aggregated_status(cur, "Running", per_cluster) is None


def test_aggregated_status_is_none_when_a_backward_phase_is_refused_and_nothing_else_changed() -> None:
    per_cluster = [entry("east", "Succeeded")]
    cur = a_workload({"phase": "Succeeded", "clusters": per_cluster, "message": "all replicas succeeded"})
    assert aggregated_status(cur, "Running", per_cluster) is None


# ---------------------------------------------------------------- pending_status


def test_pending_status_of_a_new_workload_says_why_and_acknowledges_its_generation() -> None:
    new = pending_status(a_workload(generation=4), "0/2 clusters: 2 no node with 8 free H100", None, now=NOW)
    assert new == {
        "phase": "Pending",
        "message": "0/2 clusters: 2 no node with 8 free H100",
        "observedGeneration": 4,
        "placement": {"reason": "0/2 clusters: 2 no node with 8 free H100", "decidedAt": NOW},
    }
    assert "clusters" not in new["placement"], "omitted, not []: custom-columns on clusters[0] print <none>"


def test_pending_status_is_none_when_the_workload_already_says_the_same_reason() -> None:
    first = pending_status(a_workload(), "no capacity", None, now=NOW)
    assert first is not None
    # A later pass with the same outcome: only decidedAt would differ, and that is not a change.
    assert pending_status(a_workload(first), "no capacity", None, now=LATER) is None


def test_pending_status_is_written_again_when_the_reason_changes() -> None:
    first = pending_status(a_workload(), "no capacity", None, now=NOW)
    new = pending_status(a_workload(first), 'unknown Dataset "team-a/imagenet"', None, now=LATER)
    assert new is not None
    assert new["message"] == new["placement"]["reason"] == 'unknown Dataset "team-a/imagenet"'
    assert new["placement"]["decidedAt"] == LATER


def test_pending_status_acknowledges_a_new_generation_even_when_the_reason_is_the_same() -> None:
    first = pending_status(a_workload(generation=1), "no capacity", None, now=NOW)
    new = pending_status(a_workload(first, generation=2), "no capacity", None, now=LATER)
    assert new is not None and new["observedGeneration"] == 2


def test_pending_status_stores_the_explanation_of_the_decision() -> None:
    record = {"clusters": [], "reason": "0/1 clusters", "explanation": {"clustersTotal": 1, "clusters": []}}
    new = pending_status(a_workload(), "0/1 clusters", record, now=NOW)
    assert new is not None and new["placement"]["explanation"] == {"clustersTotal": 1, "clusters": []}


@pytest.mark.parametrize("phase", ["Placed", "Running"])
def test_pending_status_keeps_a_phase_past_pending_and_leaves_observed_generation_alone(phase: str) -> None:
    # A fenced workload being re-placed: it already ran, so it does not go back to Pending,
    # and its observedGeneration still names the spec it runs.
    cur = a_workload(
        {
            "phase": phase,
            "observedGeneration": 1,
            "placement": {"epoch": 2, "clusters": [], "reason": "re-placing: lost east (NotReady)"},
        },
        generation=3,
    )
    new = pending_status(cur, "0/1 clusters: 1 NotReady", None, now=NOW)
    assert new is not None
    assert new["phase"] == phase
    assert new["observedGeneration"] == 1
    assert new["placement"]["epoch"] == 2, "the epoch is kept: the next placement uses epoch + 1"


def test_pending_status_leaves_the_input_alone() -> None:
    cur = a_workload({"phase": "Pending", "placement": {"reason": "old", "clusters": [], "decidedAt": NOW}})
    before = copy.deepcopy(cur)
    assert pending_status(cur, "new", None, now=LATER) is not None
    assert cur == before


# ---------------------------------------------------------------- fenced_status and lost_reason


def test_fenced_status_clears_the_clusters_and_keeps_the_epoch_and_phase() -> None:
    cur = a_workload(
        {
            "phase": "Running",
            "message": "running on east",
            "placement": {"epoch": 2, "clusters": [{"name": "east", "replicas": 1}], "reason": "placed"},
        }
    )
    before = copy.deepcopy(cur)
    st = fenced_status(cur, "east (NotReady)")
    assert st["placement"] == {"epoch": 2, "reason": "re-placing: lost east (NotReady)"}
    assert st["message"] == "re-placing after losing east (NotReady)"
    assert st["phase"] == "Running"
    assert cur == before


def test_fenced_status_of_a_workload_without_placement_still_says_it_is_re_placing() -> None:
    st = fenced_status(a_workload(), "east (NotReady)")
    assert st == {
        "placement": {"reason": "re-placing: lost east (NotReady)"},
        "message": "re-placing after losing east (NotReady)",
    }


@pytest.mark.parametrize(
    "status,expected",
    [
        ({"phase": "Failed", "reason": PREEMPTED_REASON}, "east (spot interruption)"),
        ({"phase": "Running"}, "east (NotReady)"),
        ({"phase": "Failed", "reason": "OOMKilled"}, "east (NotReady)"),
        (None, "east (NotReady)"),
    ],
)
def test_lost_reason_tells_a_spot_interruption_from_a_silent_cluster(status: Obj | None, expected: str) -> None:
    a = an_assignment("east")
    if status is not None:
        a["status"] = status
    assert lost_reason(a) == expected
