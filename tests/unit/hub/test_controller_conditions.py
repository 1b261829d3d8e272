"""Workload conditions, status sameness and the settled status the controller writes
(hub/controllers/status.py): pure functions over plain dicts."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from fleetplane_types.conditions import find_condition
from hub.controllers.status import canonical, same_status, settled_status, workload_conditions

Obj = dict[str, Any]
NOW = "2026-03-01T10:00:00Z"
LATER = "2026-03-01T10:05:00Z"

PLACED = {"epoch": 1, "clusters": [{"name": "east", "replicas": 2}], "reason": "placed"}


def a_workload(status: Obj | None = None) -> Obj:
    w: Obj = {"metadata": {"name": "train", "namespace": "team-a", "generation": 1}, "spec": {}}
    if status is not None:
        w["status"] = status
    return w


def summary(conditions: list[Obj]) -> list[tuple[str, str, str]]:
    return [(c["type"], c["status"], c["reason"]) for c in conditions]


@pytest.mark.parametrize(
    "status,expected",
    [
        # Never placed: Placed=False Unschedulable, with the engine's reason as message.
        (
            {"phase": "Pending", "placement": {"reason": "0/2 clusters"}},
            [("Placed", "False", "Unschedulable"), ("Running", "False", "NotPlaced")],
        ),
        # Lost its clusters (an epoch, no clusters): waiting to be placed again.
        (
            {"phase": "Running", "placement": {"epoch": 2, "reason": "re-placing: lost east"}},
            [("Placed", "False", "Rescheduling"), ("Running", "True", "Running")],
        ),
        (
            {"phase": "Placed", "placement": PLACED},
            [("Placed", "True", "Placed"), ("Running", "False", "Waiting")],
        ),
        (
            {"phase": "Running", "placement": PLACED},
            [("Placed", "True", "Placed"), ("Running", "True", "Running")],
        ),
        (
            {"phase": "Succeeded", "placement": PLACED},
            [
                ("Placed", "True", "Placed"),
                ("Running", "False", "Completed"),
                ("Succeeded", "True", "AllReplicasSucceeded"),
            ],
        ),
        (
            {"phase": "Failed", "placement": PLACED, "message": "east: OOMKilled"},
            [("Placed", "True", "Placed"), ("Running", "False", "Completed"), ("Failed", "True", "ReplicaFailed")],
        ),
    ],
)
def test_workload_conditions_follow_the_phase_and_placement(status: Obj, expected: list[tuple[str, str, str]]) -> None:
    assert summary(workload_conditions(status, NOW)) == expected


def test_an_unschedulable_condition_says_why() -> None:
    placed = find_condition(
        {"status": {"conditions": workload_conditions({"placement": {"reason": "no L4"}}, NOW)}}, "Placed"
    )
    assert placed is not None and placed["message"] == "no L4"


def test_last_transition_time_moves_only_when_a_condition_changes_status() -> None:
    first = workload_conditions({"phase": "Pending", "placement": {"reason": "no capacity"}}, NOW)
    # Same status (False), other reason text: the transition time stays.
    again = workload_conditions({"phase": "Pending", "placement": {"reason": "no L4"}, "conditions": first}, LATER)
    assert [c["lastTransitionTime"] for c in again] == [NOW, NOW]
    assert again[0]["message"] == "no L4"
    # Placed turns True: its time moves; Running stays False (Waiting), its time stays.
    placed = workload_conditions({"phase": "Placed", "placement": PLACED, "conditions": again}, LATER)
    assert [(c["type"], c["lastTransitionTime"]) for c in placed] == [("Placed", LATER), ("Running", NOW)]


def test_conditions_of_other_types_are_kept() -> None:
    mine = {"type": "example.com/Audited", "status": "True", "reason": "Done", "lastTransitionTime": NOW}
    out = workload_conditions({"phase": "Pending", "conditions": [mine]}, LATER)
    assert out[-1] == mine


# ---------------------------------------------------------------- sameness


def test_canonical_form_reads_numbers_as_jsonb_gives_them_back() -> None:
    # The engine computes 1e24 (a float); JSONB returns the integer 10**24, which as a Python
    # int is not equal to the float. On the canonical form they are the same value.
    assert 1e24 != 10**24
    assert canonical({"minMemoryGiB": 1e24}) == canonical({"minMemoryGiB": 10**24})
    assert canonical({"a": 2.0, "b": [1, {"c": 3}]}) == canonical({"b": [1.0, {"c": 3.0}], "a": 2})
    assert canonical({"a": 1}) != canonical({"a": 2})


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ({"m": 1e24}, {"m": 10**24}),
        ({"a": 2.0, "b": [1, {"c": 3}]}, {"b": [1.0, {"c": 3.0}], "a": 2}),
        ({"a": 1}, {"a": 2}),
        ({"a": {"b": 1}}, {"a": {"b": 1, "c": None}}),
        ({"a": [1, 2]}, {"a": [1, 2, 3]}),
        ({"a": [1, 2]}, {"a": (1.0, 2.0)}),
        ({"a": "1"}, {"a": 1}),
        ({"a": None}, {"a": 0}),
        ({"a": True}, {"a": "true"}),
        ({1: "x"}, {"1": "x"}),
        ({"huge": 10**400}, {"huge": 10**400 + 1}),
        (
            {"phase": "Placed", "conditions": [{"type": "Placed", "status": "True"}]},
            {"phase": "Placed", "conditions": [{"type": "Placed", "status": "False"}]},
        ),
    ],
)
def test_same_status_agrees_with_comparing_canonical_forms(a: Any, b: Any) -> None:
    assert same_status(a, b) == (canonical(a) == canonical(b))
    assert same_status(b, a) == (canonical(b) == canonical(a))


def test_a_status_equal_after_normalisation_is_not_rewritten() -> None:
    new = settled_status(a_workload(), {"phase": "Pending", "placement": {"explanation": {"minMemoryGiB": 1e24}}}, NOW)
    assert new is not None
    stored = copy.deepcopy(new)
    stored["placement"]["explanation"]["minMemoryGiB"] = 10**24  # as JSONB returns it
    # The next pass computes the same status again: nothing to write.
    again = {"phase": "Pending", "placement": {"explanation": {"minMemoryGiB": 1e24}}}
    assert settled_status(a_workload(stored), again, LATER) is None
    assert same_status(stored, new)


def test_a_status_that_really_changed_is_written_with_its_conditions() -> None:
    cur = a_workload({"phase": "Pending", "placement": {"reason": "no capacity"}})
    new = settled_status(cur, {"phase": "Placed", "placement": PLACED, "message": "placed on east"}, NOW)
    assert new is not None
    assert summary(new["conditions"]) == [("Placed", "True", "Placed"), ("Running", "False", "Waiting")]


def test_a_stored_status_without_conditions_gets_them_once() -> None:
    cur = a_workload({"phase": "Placed", "placement": PLACED})
    first = settled_status(cur, None, NOW)
    assert first is not None and len(first["conditions"]) == 2
    assert settled_status(a_workload(first), None, LATER) is None, "then it is settled"


def test_settled_status_omits_an_empty_cluster_list() -> None:
    new = settled_status(a_workload(), {"phase": "Pending", "placement": {"clusters": [], "reason": "x"}}, NOW)
    assert new is not None and "clusters" not in new["placement"]
