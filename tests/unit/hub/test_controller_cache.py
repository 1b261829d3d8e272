"""The federation controller's informer (hub/controllers/cache.py): list, then events.

Pure index logic over plain dicts and store Events: no database, no hub process. Each test
lists a small fleet at some resourceVersion, then feeds events the way the watch poller
dispatches them (every resource, in rv order) and checks what a controller pass would see.
"""

from __future__ import annotations

import asyncio
from typing import Any

from fleetplane_types.names import ASSIGNMENTS, CLUSTERS, DATASETS, NAMESPACES, TOPOLOGIES, WORKLOADS
from hub.controllers.cache import FleetCache
from hub.store.store import Event

Obj = dict[str, Any]


def a_workload(
    name: str, rv: int, *, epoch: int | None = None, phase: str | None = None, deleting: bool = False
) -> Obj:
    meta: Obj = {"name": name, "namespace": "team-a", "resourceVersion": str(rv)}
    if deleting:
        meta["deletionTimestamp"] = "2026-03-01T10:00:00Z"
    st: Obj = {}
    if epoch is not None:
        st["placement"] = {"epoch": epoch, "clusters": [{"name": "east"}]}
    if phase is not None:
        st["phase"] = phase
    return {"metadata": meta, "spec": {"gpu": {"count": 1}}, "status": st}


def an_assignment(workload: str, cluster: str, rv: int, *, epoch: int = 1, phase: str = "Pending") -> Obj:
    return {
        "metadata": {"name": f"{workload}-{cluster}-{epoch}", "namespace": "team-a", "resourceVersion": str(rv)},
        "spec": {"workloadRef": {"name": workload}, "clusterName": cluster, "epoch": epoch},
        "status": {"phase": phase},
    }


def a_cluster(name: str, rv: int, *, ready: bool = True, free: int = 8, heartbeat: str = "2026-03-01T10:00:00Z") -> Obj:
    return {
        "metadata": {"name": name, "resourceVersion": str(rv)},
        "spec": {"region": "us-east-1"},
        "status": {
            "heartbeatTime": heartbeat,
            "freeGpus": free,
            "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
        },
    }


def a_namespace(name: str, rv: int, *, deleting: bool = False) -> Obj:
    meta: Obj = {"name": name, "resourceVersion": str(rv)}
    if deleting:
        meta["deletionTimestamp"] = "2026-03-01T10:00:00Z"
    return {"metadata": meta}


def event(resource: str, kind: str, obj: Obj) -> Event:
    meta = obj["metadata"]
    return Event(int(meta["resourceVersion"]), resource, meta.get("namespace", ""), meta["name"], kind, obj)


def listed(rv: int, **items: list[Obj]) -> FleetCache:
    """A cache that listed `items` (by resource: workloads=, assignments=, clusters=, …) at `rv`."""
    names = {
        "workloads": WORKLOADS,
        "assignments": ASSIGNMENTS,
        "clusters": CLUSTERS,
        "namespaces": NAMESPACES,
        "datasets": DATASETS,
        "topologies": TOPOLOGIES,
    }
    cache = FleetCache()
    cache.begin_list()
    for arg, resource in names.items():
        cache.load(resource, items.get(arg, []), rv)
    cache.finish_list()
    cache.last_rv = rv
    cache.take_dirty()
    return cache


def test_a_listed_fleet_is_indexed_by_workload_and_by_cluster_and_every_workload_is_dirty_once() -> None:
    cache = FleetCache()
    cache.begin_list()
    cache.load(WORKLOADS, [a_workload("train", 3, epoch=1), a_workload("new", 4)], 10)
    cache.load(ASSIGNMENTS, [an_assignment("train", "east", 5)], 10)
    cache.load(CLUSTERS, [a_cluster("east", 1)], 10)
    cache.finish_list()
    assert cache.synced and cache.lists == 1
    assert [a["spec"]["clusterName"] for a in cache.assignments_of(("team-a", "train"))] == ["east"]
    assert cache.by_cluster == {"east": {("team-a", "train-east-1")}}
    assert cache.pending == {("team-a", "new")}, "placed workloads are not pending; a new one is"
    assert cache.take_dirty() == {("team-a", "train"), ("team-a", "new")}
    assert cache.take_dirty() == set(), "a pass takes the dirty set"


def test_events_at_or_below_the_lists_resource_version_are_ignored_at_the_seam() -> None:
    # The list at rv 10 already shows "train" placed; the poller dispatches its older events late.
    cache = listed(10, workloads=[a_workload("train", 9, epoch=1)], assignments=[an_assignment("train", "east", 8)])
    stale = a_workload("train", 7)  # an older version: not placed yet
    assert cache.apply(event(WORKLOADS, "MODIFIED", stale)) is False
    assert cache.apply(event(ASSIGNMENTS, "DELETED", an_assignment("train", "east", 9))) is False
    assert cache.workload(("team-a", "train"))["metadata"]["resourceVersion"] == "9"
    assert len(cache.assignments_of(("team-a", "train"))) == 1
    assert cache.pending == set() and cache.dirty == set()


def test_an_object_deleted_before_the_list_is_not_resurrected_by_its_old_added_event() -> None:
    cache = listed(10)  # "gone" was added at rv 4 and deleted at rv 6: the list does not have it
    cache.last_rv = 3
    assert cache.apply(event(WORKLOADS, "ADDED", a_workload("gone", 4))) is False
    assert cache.workload(("team-a", "gone")) is None and cache.pending == set()


def test_events_during_the_list_are_buffered_and_only_the_newer_ones_are_applied() -> None:
    cache = FleetCache()
    cache.begin_list()
    # While the lists run, the poller dispatches rv 11 (before the list's snapshot) and 13 (after).
    cache.apply(event(WORKLOADS, "MODIFIED", a_workload("train", 11)))
    cache.apply(event(WORKLOADS, "ADDED", a_workload("late", 13)))
    cache.load(WORKLOADS, [a_workload("train", 12, epoch=1)], 12)
    cache.load(ASSIGNMENTS, [an_assignment("train", "east", 12)], 12)
    cache.finish_list()
    assert cache.workload(("team-a", "train"))["metadata"]["resourceVersion"] == "12", "the list wins over rv 11"
    assert cache.workload(("team-a", "late")) is not None, "rv 13 came after the list"
    assert cache.pending == {("team-a", "late")}


def test_a_new_workload_is_pending_and_dirty_and_stops_being_pending_once_its_assignment_exists() -> None:
    cache = listed(10, clusters=[a_cluster("east", 1)])
    cache.last_rv = 10
    assert cache.apply(event(WORKLOADS, "ADDED", a_workload("job", 11))) is True
    assert cache.pending == {("team-a", "job")} and cache.take_dirty() == {("team-a", "job")}
    version = cache.capacity_version
    # The placement transaction: the workload's status and its Assignment.
    cache.apply(event(WORKLOADS, "MODIFIED", a_workload("job", 12, epoch=1)))
    cache.apply(event(ASSIGNMENTS, "ADDED", an_assignment("job", "east", 13)))
    assert cache.pending == set()
    assert cache.take_dirty() == {("team-a", "job")}
    assert cache.capacity_version > version, "a new Assignment holds capacity: pending workloads are tried again"


def test_an_assignment_status_change_marks_only_its_workload_dirty() -> None:
    cache = listed(
        10,
        workloads=[a_workload("a", 2, epoch=1), a_workload("b", 3, epoch=1)],
        assignments=[an_assignment("a", "east", 4), an_assignment("b", "east", 5)],
    )
    cache.apply(event(ASSIGNMENTS, "MODIFIED", an_assignment("a", "east", 11, phase="Running")))
    assert cache.take_dirty() == {("team-a", "a")}
    assert cache.assignments_of(("team-a", "a"))[0]["status"]["phase"] == "Running"


def test_a_deleted_assignment_leaves_every_index_and_its_workload_becomes_pending() -> None:
    cache = listed(10, workloads=[a_workload("a", 2, epoch=1)], assignments=[an_assignment("a", "east", 4)])
    cache.apply(event(ASSIGNMENTS, "DELETED", an_assignment("a", "east", 11)))
    assert cache.assignments_of(("team-a", "a")) == [] and cache.by_cluster == {} and cache.assignments == []
    assert cache.pending == {("team-a", "a")} and cache.take_dirty() == {("team-a", "a")}


def test_a_heartbeat_only_change_updates_the_cluster_but_wakes_nothing() -> None:
    cache = listed(10, clusters=[a_cluster("east", 1)])
    before = (cache.capacity_version, cache.cluster_version)
    woke = cache.apply(event(CLUSTERS, "MODIFIED", a_cluster("east", 11, heartbeat="2026-03-01T10:00:15Z")))
    assert woke is False and (cache.capacity_version, cache.cluster_version) == before
    assert cache.clusters[0]["status"]["heartbeatTime"] == "2026-03-01T10:00:15Z", "expiry reads the newest heartbeat"
    assert cache.apply(event(CLUSTERS, "MODIFIED", a_cluster("east", 12, free=0))) is True
    assert cache.cluster_version == before[1] + 1, "capacity changed: the snapshot is rebuilt"


def test_a_cluster_going_not_ready_marks_the_workloads_on_it_dirty_for_failover() -> None:
    cache = listed(
        10,
        workloads=[a_workload("on-east", 2, epoch=1), a_workload("on-west", 3, epoch=1)],
        assignments=[an_assignment("on-east", "east", 4), an_assignment("on-west", "west", 5)],
        clusters=[a_cluster("east", 6), a_cluster("west", 7)],
    )
    assert cache.apply(event(CLUSTERS, "MODIFIED", a_cluster("east", 11, ready=False))) is True
    assert cache.take_dirty() == {("team-a", "on-east")}
    assert cache.ready_clusters() == {"west"}


def test_a_deleting_workload_is_dirty_and_not_pending_and_gone_once_removed() -> None:
    cache = listed(10, workloads=[a_workload("w", 2, epoch=1)], assignments=[an_assignment("w", "east", 3)])
    cache.apply(event(WORKLOADS, "MODIFIED", a_workload("w", 11, epoch=1, deleting=True)))
    assert cache.take_dirty() == {("team-a", "w")} and cache.pending == set()
    cache.apply(event(WORKLOADS, "DELETED", a_workload("w", 12, epoch=1, deleting=True)))
    assert cache.workload(("team-a", "w")) is None and cache.dirty == set() and cache.pending == set()


def test_a_finished_workload_is_not_pending_even_without_assignments() -> None:
    cache = listed(10)
    cache.apply(event(WORKLOADS, "ADDED", a_workload("done", 11, epoch=1, phase="Succeeded")))
    assert cache.pending == set()


def test_namespaces_answer_whether_new_objects_may_be_recorded_there() -> None:
    cache = listed(10, namespaces=[a_namespace("team-a", 1)])
    assert cache.namespace_open("team-a") and not cache.namespace_open("team-b") and not cache.namespace_open(None)
    assert cache.apply(event(NAMESPACES, "MODIFIED", a_namespace("team-a", 11, deleting=True))) is False
    assert not cache.namespace_open("team-a"), "a terminating namespace holds no new Events"


def test_a_gap_in_resource_versions_asks_for_a_new_list() -> None:
    cache = listed(10)
    cache.apply(event(WORKLOADS, "ADDED", a_workload("a", 11)))
    assert cache.synced
    cache.apply(event(WORKLOADS, "ADDED", a_workload("b", 14)))  # 12 and 13 never arrived
    assert not cache.synced and cache.gaps == 1


def test_events_of_resources_the_controller_does_not_follow_still_advance_the_resource_version() -> None:
    cache = listed(10)
    ev = Event(11, "events", "team-a", "x.123", "ADDED", {"metadata": {"name": "x.123", "resourceVersion": "11"}})
    assert cache.apply(ev) is False and cache.last_rv == 11 and cache.synced


def test_a_pass_waits_until_the_cache_has_seen_the_stores_resource_version() -> None:
    async def scenario() -> tuple[bool, bool, bool]:
        cache = listed(10)
        already = await cache.caught_up(10, timeout=0.01)
        later = asyncio.get_running_loop().call_later(0.01, cache.apply, event(WORKLOADS, "ADDED", a_workload("a", 11)))
        caught = await cache.caught_up(11, timeout=2)
        later.cancel()
        never = await cache.caught_up(99, timeout=0.01)
        return already, caught, never

    assert asyncio.run(scenario()) == (True, True, False)


def test_a_cache_listed_on_a_quiet_store_is_caught_up_without_waiting_for_an_event() -> None:
    """After a hub restart nothing may be written for a while: the lists hold everything the
    broadcaster had dispatched when they began, so the first pass must not wait for an event."""

    async def go() -> tuple[bool, bool]:
        cache = FleetCache()
        cache.begin_list(dispatched_rv=42)  # the store's last write was rv 42, before this process started
        for resource in (WORKLOADS, ASSIGNMENTS, CLUSTERS, NAMESPACES, DATASETS, TOPOLOGIES):
            cache.load(resource, [], 42)
        cache.finish_list()
        now = await cache.caught_up(42, timeout=5)
        later = await cache.caught_up(43, timeout=0.05)  # rv 43 is not dispatched yet: not caught up
        return now, later

    now, later = asyncio.run(go())
    assert now is True
    assert later is False
