"""The access rules as pure functions (hub.registry.access), table by table; the HTTP matrix
in tests/api/test_authorization_matrix.py checks the same rules through a real hub."""

from __future__ import annotations

from typing import Any

import pytest

from hub.errors import ApiError
from hub.registry.access import SYSTEM, Subject, check_change, read_scope, refusal, review
from hub.registry.resources import BY_KIND
from placement import Dataset, FleetSnapshot, Site, Topology

ADMIN = Subject("admin", "admin")
TEAM = Subject("team", "alpha", ("team-a",))
AGENT = Subject("agent", "east")
WORKLOAD, DATASET, ASSIGNMENT, CLUSTER = (BY_KIND[k] for k in ("Workload", "Dataset", "Assignment", "Cluster"))


@pytest.mark.parametrize(
    ("subject", "kind", "verb", "subresource", "allowed"),
    [
        (SYSTEM, "Workload", "patch", "status", True),  # the controllers
        (ADMIN, "Workload", "patch", "status", False),  # not even an admin
        (ADMIN, "Workload", "update", "status", False),
        (ADMIN, "Workload", "get", "status", True),
        (ADMIN, "Cluster", "patch", "status", True),
        (TEAM, "Workload", "patch", "", True),
        (TEAM, "Workload", "patch", "status", False),
        (TEAM, "Dataset", "update", "status", False),
        (TEAM, "Assignment", "delete", "", True),
        (TEAM, "Assignment", "patch", "", False),
        (TEAM, "Namespace", "delete", "", False),
        (TEAM, "Cluster", "patch", "", False),
        (AGENT, "Cluster", "patch", "status", True),
        (AGENT, "Cluster", "patch", "", True),  # within check_change's limits
        (AGENT, "Cluster", "delete", "", False),
        (AGENT, "Assignment", "update", "status", True),
        (AGENT, "Assignment", "create", "", False),
        (ADMIN, "Event", "create", "", False),  # read-only over HTTP
        (SYSTEM, "Event", "create", "", True),  # the controllers record them
        (ADMIN, "Workload", "deletecollection", "", False),
        (ADMIN, "Workload", "delete", "status", False),
    ],
)
def test_refusal_decides_by_subject_kind_verb_and_subresource(
    subject: Subject, kind: str, verb: str, subresource: str, allowed: bool
) -> None:
    assert (refusal(subject, BY_KIND[kind], verb, subresource) is None) == allowed


def test_a_refused_status_write_names_the_subresource() -> None:
    why = refusal(TEAM, WORKLOAD, "patch", "status")
    assert why is not None and why.startswith("workloads/status")


@pytest.mark.parametrize(
    ("subject", "kind", "namespace", "name", "covered"),
    [
        (TEAM, "Workload", "team-a", "x", True),
        (TEAM, "Workload", "team-b", "x", False),
        (TEAM, "Namespace", None, "team-a", True),
        (TEAM, "Namespace", None, "team-b", False),
        (TEAM, "Cluster", None, "east", True),
        (AGENT, "Cluster", None, "east", True),
        (AGENT, "Cluster", None, "west", False),
        (AGENT, "Assignment", "team-a", "x", None),  # decided by spec.clusterName
        (AGENT, "Workload", "team-a", "x", False),
    ],
)
def test_scope_is_decided_from_the_address_where_it_can_be(
    subject: Subject, kind: str, namespace: str | None, name: str, covered: bool | None
) -> None:
    assert read_scope(subject, BY_KIND[kind]).covers(namespace, name) is covered


def _cluster(**spec: Any) -> dict[str, Any]:
    return {"kind": "Cluster", "metadata": {"name": "east", "labels": {}}, "spec": spec}


@pytest.mark.parametrize(
    ("new", "allowed"),
    [
        (_cluster(backend="simulated"), True),  # what spoke_agent sends
        ({**_cluster(), "metadata": {"name": "east", "labels": {"fleetplane.io/backend": "simulated"}}}, True),
        (_cluster(region="moon-1"), False),
        ({**_cluster(), "metadata": {"name": "east", "labels": {"team": "x"}}}, False),
        ({**_cluster(), "metadata": {"name": "east", "finalizers": ["a.io/b"]}}, False),
    ],
)
def test_an_agent_changes_only_its_clusters_backend(new: dict[str, Any], allowed: bool) -> None:
    try:
        check_change(AGENT, CLUSTER, _cluster(), new, "")
    except ApiError as err:
        assert not allowed and err.code == 403
    else:
        assert allowed


def _dataset(shared: list[str] | None, size: int = 1) -> dict[str, Any]:
    spec: dict[str, Any] = {"sizeGiB": size, "locations": [{"site": "s"}]}
    if shared is not None:
        spec["sharedWith"] = shared
    return {"kind": "Dataset", "metadata": {"name": "d", "namespace": "team-a"}, "spec": spec}


@pytest.mark.parametrize(
    ("subject", "old", "new", "allowed"),
    [
        (TEAM, None, _dataset(None), True),
        (TEAM, None, _dataset([]), True),
        (TEAM, None, _dataset(["team-b"]), False),
        (TEAM, _dataset(["team-b"]), _dataset(["team-b"], size=2), True),  # other fields stay the team's
        (TEAM, _dataset(["team-b"]), _dataset(None), False),
        (TEAM, _dataset(None), _dataset(["team-b"]), False),
        (ADMIN, _dataset(None), _dataset(["team-b"]), True),
    ],
)
def test_only_an_admin_sets_a_datasets_shared_with(
    subject: Subject, old: dict[str, Any] | None, new: dict[str, Any], allowed: bool
) -> None:
    try:
        check_change(subject, DATASET, old, new, "")
    except ApiError as err:
        assert not allowed and "spec.sharedWith" in err.message
    else:
        assert allowed


def test_a_review_of_an_agents_assignment_needs_the_stored_object() -> None:
    mine = {"metadata": {"name": "a", "namespace": "team-a"}, "spec": {"clusterName": "east"}}
    theirs = {"metadata": {"name": "a", "namespace": "team-a"}, "spec": {"clusterName": "west"}}
    assert review(AGENT, ASSIGNMENT, "patch", "status", "team-a", "a", stored=mine).allowed
    assert not review(AGENT, ASSIGNMENT, "patch", "status", "team-a", "a", stored=theirs).allowed
    missing = review(AGENT, ASSIGNMENT, "patch", "status", "team-a", "a", stored=None)
    assert (
        not missing.allowed
        and missing.reason == review(AGENT, ASSIGNMENT, "patch", "status", "team-a", "a", stored=theirs).reason
    )
    assert review(AGENT, ASSIGNMENT, "list", "", "team-a").allowed, "its part of the list"


@pytest.mark.parametrize(
    ("workload_ns", "key", "readable"),
    [
        ("team-a", "team-a/own", True),
        ("team-a", "team-b/secret", False),
        ("team-a", "team-b/nothing", False),  # the same answer as another namespace's
        ("team-a", "team-b/shared", True),
        ("team-c", "team-b/shared", False),
        ("team-b", "team-b/secret", True),
    ],
)
def test_a_workload_reads_datasets_of_its_namespace_and_those_shared_with_it(
    workload_ns: str, key: str, readable: bool
) -> None:
    snap = FleetSnapshot(
        clusters=(),
        topology=Topology((Site("s"),)),
        datasets={
            d.key: d
            for d in (
                Dataset("own", 1, ("s",), namespace="team-a"),
                Dataset("secret", 1, ("s",), namespace="team-b"),
                Dataset("shared", 1, ("s",), namespace="team-b", shared_with=frozenset({"team-a"})),
            )
        },
    )
    assert (snap.dataset_for(workload_ns, key) is not None) == readable
