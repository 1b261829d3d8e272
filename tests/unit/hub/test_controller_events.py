"""The Events the controllers record (hub/controllers/events.py): one per object and reason,
repeats counted, old ones expired. Pure functions over plain dicts."""

from __future__ import annotations

from datetime import UTC, datetime

from fleetplane_types.labels import NAME_MAX
from hub.controllers.events import EVENT_TTL_SECONDS, MAX_MESSAGE, event_name, expired, new_event, repeated_event

NOW = "2026-03-01T10:00:00Z"
LATER = "2026-03-01T10:05:00Z"


def a_workload(name: str = "train", uid: str = "u1") -> dict:
    return {
        "apiVersion": "fleetplane.io/v1alpha1",
        "kind": "Workload",
        "metadata": {"name": name, "namespace": "team-a", "uid": uid, "resourceVersion": "7"},
    }


def at(ts: str) -> float:
    return datetime.strptime(ts, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp()


def test_one_object_and_reason_always_name_the_same_event() -> None:
    w = a_workload()
    assert event_name(w, "Placed") == event_name(w, "Placed")
    assert event_name(w, "Placed") != event_name(w, "Unschedulable")
    assert event_name(w, "Placed") != event_name(a_workload(uid="u2"), "Placed"), "a re-created workload starts afresh"
    assert event_name(w, "Placed").startswith("train.")


def test_an_event_name_stays_a_valid_name_for_the_longest_workload_name() -> None:
    name = event_name(a_workload("w" * NAME_MAX), "Placed")
    assert len(name) <= NAME_MAX and name[-1].isalnum()


def test_a_new_event_points_at_its_object_and_counts_one() -> None:
    ev = new_event(a_workload(), "Warning", "Unschedulable", "0/2 clusters", NOW)
    assert ev["metadata"] == {"name": event_name(a_workload(), "Unschedulable"), "namespace": "team-a"}
    assert ev["involvedObject"] == {
        "apiVersion": "fleetplane.io/v1alpha1",
        "kind": "Workload",
        "namespace": "team-a",
        "name": "train",
        "uid": "u1",
        "resourceVersion": "7",
    }
    assert (ev["type"], ev["reason"], ev["count"]) == ("Warning", "Unschedulable", 1)
    assert ev["firstTimestamp"] == ev["lastTimestamp"] == NOW


def test_a_repeated_event_counts_up_and_keeps_the_latest_message() -> None:
    first = new_event(a_workload(), "Warning", "Unschedulable", "no capacity", NOW)
    again = repeated_event(first, a_workload(), "Warning", "no L4", LATER)
    assert (again["count"], again["message"], again["firstTimestamp"], again["lastTimestamp"]) == (
        2,
        "no L4",
        NOW,
        LATER,
    )
    assert first["count"] == 1, "the stored copy is left alone"


def test_a_huge_message_is_cut() -> None:
    ev = new_event(a_workload(), "Warning", "Unschedulable", "x" * 100_000, NOW)
    assert len(ev["message"]) == MAX_MESSAGE


def test_events_not_seen_for_the_ttl_expire() -> None:
    fresh = new_event(a_workload(), "Normal", "Placed", "placed", LATER)
    old = new_event(a_workload(), "Normal", "Deleted", "gone", NOW)
    broken = {"metadata": {"name": "x"}}  # no timestamp at all: expired, never kept forever
    now = at(NOW) + EVENT_TTL_SECONDS + 60
    assert expired([fresh, old, broken], now) == [old, broken]
    assert expired([fresh, old], at(LATER)) == []
