"""The federation controller lists its resources concurrently when it (re)starts leading
(hub.controllers.federation.FederationController._sync): the lists finish in any order, each at
its own resourceVersion, with events dispatched meanwhile. What the cache must make of that."""

from __future__ import annotations

from fleetplane_types.names import ASSIGNMENTS, CLUSTERS, WORKLOADS
from hub.controllers.cache import FleetCache
from tests.unit.hub.test_controller_cache import a_cluster, a_workload, an_assignment, event


def test_lists_at_different_resource_versions_in_any_order_give_one_consistent_fleet() -> None:
    for order in ([WORKLOADS, ASSIGNMENTS, CLUSTERS], [CLUSTERS, ASSIGNMENTS, WORKLOADS]):
        cache = FleetCache()
        cache.begin_list()
        # Assignments were listed at rv 10, Workloads at 14, Clusters at 11. Meanwhile: the
        # Assignment went Running (rv 12: newer than its list) and the Workload's placement
        # was written (rv 13: its list at 14 already shows it).
        cache.apply(event(ASSIGNMENTS, "MODIFIED", an_assignment("train", "east", 12, phase="Running")))
        cache.apply(event(WORKLOADS, "MODIFIED", a_workload("train", 13, epoch=1)))
        lists = {
            WORKLOADS: ([a_workload("train", 13, epoch=1)], 14),
            ASSIGNMENTS: ([an_assignment("train", "east", 9)], 10),
            CLUSTERS: ([a_cluster("east", 1)], 11),
        }
        for resource in order:
            cache.load(resource, *lists[resource])
        cache.finish_list()
        [a] = cache.assignments_of(("team-a", "train"))
        assert a["status"]["phase"] == "Running", f"{order}: the event newer than the Assignments' list applies"
        assert cache.workload(("team-a", "train"))["metadata"]["resourceVersion"] == "13"
        assert cache.pending == set(), f"{order}: placed, with its Assignment: nothing to place"
