"""From stored objects to the engine's inputs and back: hub/controllers/snapshot.py (fleet
snapshot, in-flight reservations) and hub/controllers/placing.py (a decision's status and
Assignments).

Objects have the shapes the hub stores (tests/api/test_federation.py writes the same ones
through the API); decisions come from the real placement engine. No database.
"""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from typing import Any

import pytest

from fleetplane_types import v1alpha1 as v1
from fleetplane_types.names import (
    AGENT_CLEANUP_FINALIZER,
    API_VERSION,
    ASSIGNMENTS,
    CLUSTER_LABEL,
    EPOCH_LABEL,
    FAILOVER_ANNOTATION,
    RESERVATION_ANNOTATION,
    WORKLOAD_LABEL,
)
from hub.controllers.placing import EXPLAIN_ROWS, assignments_for, next_epoch, placed_status, scale_manifest
from hub.controllers.snapshot import (
    build_snapshot,
    parse_time,
    pool_node_names,
    reservation_annotation,
    reservations,
)
from hub.registry.resources import BY_KEY
from hub.registry.validation import validate_object
from placement import Decision, Engine, PlacementInputError, Reservation
from placement.manifests import cluster_from_api, workload_from_api
from tests.hubtest import workload

Obj = dict[str, Any]
NOW = "2026-03-01T10:00:00Z"


def at(offset: float) -> str:
    """RFC 3339 of NOW + offset seconds."""
    t0 = datetime(2026, 3, 1, 10, 0, 0, tzinfo=UTC).timestamp()
    return datetime.fromtimestamp(t0 + offset, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# ---------------------------------------------------------------- stored objects, as the hub keeps them


def pool(
    model: str,
    cap: str,
    nodes: int,
    gpus: int,
    *,
    free: list[int] | None = None,
    price: float = 4.0,
    name: str | None = "",
    node_prefix: str | None = None,
) -> Obj:
    """A status.gpuPools entry as an agent reports it; name "" means "<model>-<cap>", None means unnamed."""
    free = free if free is not None else [gpus] * nodes
    prefix = node_prefix or f"{model.lower()}-{cap}"
    p: Obj = {
        "model": model,
        "memoryGiB": 80,
        "capacityType": cap,
        "pricePerGpuHour": price,
        "gpusPerNode": gpus,
        "total": nodes * gpus,
        "allocatable": nodes * gpus,
        "allocated": nodes * gpus - sum(free),
        "free": sum(free),
        "nodes": [{"name": f"{prefix}-{i}", "gpus": gpus, "free": f} for i, f in enumerate(free)],
    }
    if name is not None:
        p["name"] = name or f"{model.lower()}-{cap}"
    return p


def a_cluster(
    name: str,
    region: str = "us-east-1",
    pools: list[Obj] | None = None,
    *,
    ready: bool = True,
    heartbeat: str = NOW,
    **spec: Any,
) -> Obj:
    pools = pools if pools is not None else [pool("H100", "on-demand", 2, 8)]
    return {
        "apiVersion": API_VERSION,
        "kind": "Cluster",
        "metadata": {"name": name},
        "spec": {"region": region, **spec},
        "status": {
            "heartbeatTime": heartbeat,
            "region": region,
            "gpuPools": pools,
            "totalGpus": sum(p["allocatable"] for p in pools),
            "freeGpus": sum(p["free"] for p in pools),
            "conditions": [{"type": "Ready", "status": "True" if ready else "False", "reason": "AgentReporting"}],
        },
    }


def a_dataset(name: str, namespace: str, *sites: str) -> Obj:
    return {
        "apiVersion": API_VERSION,
        "kind": "Dataset",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"sizeGiB": 100, "locations": [{"site": s} for s in sites]},
    }


def a_topology(*sites: str, links: list[Obj] | None = None) -> Obj:
    return {
        "apiVersion": API_VERSION,
        "kind": "Topology",
        "metadata": {"name": "net"},
        "spec": {"sites": [{"name": s, "type": "region"} for s in sites], "links": links or []},
    }


def a_stored_workload(
    name: str = "train",
    namespace: str = "team-a",
    *,
    gpus: int = 8,
    replicas: int = 1,
    generation: int = 1,
    status: Obj | None = None,
    **spec: Any,
) -> Obj:
    """A Workload as read back from the hub: uid and generation set."""
    w = workload(name, namespace, gpus=gpus, replicas=replicas, **spec)
    w["metadata"].update(uid=f"uid-{name[:8]}", generation=generation, resourceVersion="7")
    if status is not None:
        w["status"] = status
    return w


def an_assignment(
    cluster: str = "east",
    *,
    workload_name: str = "train",
    phase: str | None = "Pending",
    updated_at: str | None = None,
    deleting: bool = False,
    annotation: str | None = None,
) -> Obj:
    """An Assignment as stored, holding the reservation in `annotation` (if any)."""
    meta: Obj = {"name": f"{workload_name}-{cluster}-e1", "namespace": "team-a", "annotations": {}}
    if annotation is not None:
        meta["annotations"][RESERVATION_ANNOTATION] = annotation
    if deleting:
        meta["deletionTimestamp"] = at(-1)
    status: Obj = {}
    if phase is not None:
        status["phase"] = phase
    if updated_at is not None:
        status["updatedAt"] = updated_at
    return {
        "apiVersion": API_VERSION,
        "kind": "Assignment",
        "metadata": meta,
        "spec": {"clusterName": cluster, "workloadRef": {"name": workload_name, "uid": "u1"}, "epoch": 1},
        "status": status,
    }


def decide(clusters: list[Obj], *workloads: Obj, held: list[Reservation] | None = None) -> list[Decision]:
    """The real engine's decisions for stored workloads on a snapshot of stored clusters."""
    snapshot, problems = build_snapshot(clusters, [], [])
    assert problems == []
    requests = [workload_from_api(v1.Workload.model_validate(w), snapshot) for w in workloads]
    return Engine("default").place_batch(snapshot, requests, held or [])


def decide_one(clusters: list[Obj], w: Obj) -> Decision:
    [d] = decide(clusters, w)
    return d


def hub_accepts_assignment(a: Obj) -> None:
    """The hub's own validation of an Assignment write (what rtx.create runs): raises if rejected."""
    validate_object(BY_KEY[ASSIGNMENTS], copy.deepcopy(a), "Strict")


RESERVED = json.dumps({"pool": "h100-on-demand", "gpusPerReplica": 8, "replicas": 2, "nodes": ["n0", "n1"]})
HELD = Reservation(
    workload="team-a/train", cluster="east", pool="h100-on-demand", gpus_per_replica=8, replicas=2, nodes=("n0", "n1")
)


# ---------------------------------------------------------------- parse_time


@pytest.mark.parametrize(
    "text,expected",
    [
        ("2026-03-01T10:00:00Z", at(0)),
        ("2026-03-01T10:00:00.999Z", at(0)),  # fractions are dropped: never later than written
        (None, None),
        ("", None),
        ("soon", None),
        (1234, None),
    ],
)
def test_parse_time_reads_rfc3339_utc_or_gives_none(text: Any, expected: str | None) -> None:
    want = None if expected is None else datetime.fromisoformat(expected).timestamp()
    assert parse_time(text) == want


# ---------------------------------------------------------------- reservations

EAST = {"east": a_cluster("east", heartbeat=at(0))}


@pytest.mark.parametrize(
    "assignment,held",
    [
        # Delivered or not yet: the capacity report cannot show these GPUs yet.
        (an_assignment(phase=None, annotation=RESERVED), True),
        (an_assignment(phase="Pending", annotation=RESERVED), True),
        (an_assignment(phase="Applied", annotation=RESERVED), True),
        # Ended: deleted, or a terminal phase frees the GPUs.
        (an_assignment(phase="Pending", deleting=True, annotation=RESERVED), False),
        (an_assignment(phase="Running", deleting=True, annotation=RESERVED), False),
        (an_assignment(phase="Succeeded", annotation=RESERVED), False),
        (an_assignment(phase="Failed", annotation=RESERVED), False),
        (an_assignment(phase="Rejected", annotation=RESERVED), False),
        # Running since 10:00:00 - 5 s; east's heartbeat at 10:00:00 is newer: the report counts them.
        (an_assignment(phase="Running", updated_at=at(-5), annotation=RESERVED), False),
        # Running since 10:00:05; the heartbeat at 10:00:00 predates it: still held.
        (an_assignment(phase="Running", updated_at=at(5), annotation=RESERVED), True),
        # Same second: not strictly newer, so held (never count GPUs twice as free).
        (an_assignment(phase="Running", updated_at=at(0), annotation=RESERVED), True),
        # Running without a time, or on a cluster not in the map: no evidence it is counted.
        (an_assignment(phase="Running", annotation=RESERVED), True),
        (an_assignment("gone", phase="Running", updated_at=at(-5), annotation=RESERVED), True),
        # Nothing reserved.
        (an_assignment(phase="Pending"), False),
    ],
)
def test_an_assignment_holds_its_gpus_until_it_ends_or_the_capacity_report_shows_it(
    assignment: Obj, held: bool
) -> None:
    got = reservations([assignment], EAST)
    assert len(got) == (1 if held else 0)
    if held:
        cluster = assignment["spec"]["clusterName"]
        assert got == [
            Reservation(
                workload="team-a/train",
                cluster=cluster,
                pool="h100-on-demand",
                gpus_per_replica=8,
                replicas=2,
                nodes=("n0", "n1"),
            )
        ]


@pytest.mark.parametrize(
    "malformed",
    [
        "not json",
        "[]",
        "null",
        '"h100-on-demand"',
        json.dumps({"gpusPerReplica": 8, "replicas": 1}),  # no pool
        json.dumps({"pool": "p", "gpusPerReplica": "eight", "replicas": 1}),
        json.dumps({"pool": "p", "gpusPerReplica": 8}),  # no replicas
        json.dumps({"pool": "p", "gpusPerReplica": 8, "replicas": 1, "nodes": 3}),
        json.dumps({"pool": "p", "gpusPerReplica": -8, "replicas": 1}),  # the engine refuses it
    ],
)
def test_a_malformed_reservation_is_ignored_and_the_others_still_count(malformed: str) -> None:
    bad = an_assignment("east", workload_name="broken", annotation=malformed)
    good = an_assignment("east", annotation=RESERVED)
    assert reservations([bad, good], EAST) == [HELD]


def test_reservation_annotation_round_trips_through_reservations() -> None:
    for r in (
        HELD,
        Reservation("team-a/train", "east", "a100-spot", 4, 3),
        Reservation("team-a/train", "east", "l4", 1, 2, ("x-1", "x-1")),
    ):
        a = an_assignment(annotation=reservation_annotation(r))
        assert reservations([a], EAST) == [r]


# ---------------------------------------------------------------- build_snapshot


def test_build_snapshot_of_a_valid_fleet_has_every_object_and_no_problems() -> None:
    snapshot, problems = build_snapshot(
        [a_cluster("east", "us-east-1"), a_cluster("west", "us-west-2")],
        [a_dataset("imagenet", "team-a", "us-east-1")],
        [a_topology("us-east-1", "us-west-2")],
    )
    assert problems == []
    assert [c.name for c in snapshot.clusters] == ["east", "west"]
    assert list(snapshot.datasets) == ["team-a/imagenet"]


def test_a_stored_cluster_that_no_longer_validates_is_left_out_with_a_problem() -> None:
    # An object stored under an older schema (here: a pool whose total is not a number) must not
    # stop placement for the rest of the fleet.
    broken = a_cluster("old", "us-east-1")
    broken["status"]["gpuPools"][0]["total"] = "many"
    snapshot, problems = build_snapshot([a_cluster("east", "us-east-1"), broken], [], [a_topology("us-east-1")])
    assert [c.name for c in snapshot.clusters] == ["east"]
    [problem] = problems
    assert 'Cluster "old" is invalid: status.gpuPools.0.total' in problem


def test_one_bad_dataset_is_left_out_and_the_rest_of_the_fleet_stays() -> None:
    snapshot, problems = build_snapshot(
        [a_cluster("east", "us-east-1")],
        [a_dataset("imagenet", "team-a", "us-east-1"), a_dataset("lost", "careless", "mars-1")],
        [a_topology("us-east-1")],
    )
    assert list(snapshot.datasets) == ["team-a/imagenet"]
    assert [c.name for c in snapshot.clusters] == ["east"]
    [problem] = problems
    assert 'Dataset "lost"' in problem and "mars-1" in problem
    # A workload that reads it gets the precise reason instead of stopping everyone.
    uses_it = a_stored_workload("reads-lost", "careless", datasets=[{"name": "lost"}])
    with pytest.raises(PlacementInputError, match='unknown Dataset "careless/lost"'):
        workload_from_api(v1.Workload.model_validate(uses_it), snapshot)


@pytest.mark.parametrize(
    "bad,what",
    [
        (a_cluster("lost", site="mars-1"), 'unknown topology site "mars-1"'),
        (a_cluster("blank", pools=[pool(" ", "on-demand", 1, 8)]), "status.gpuPools[0].model"),
        (
            a_cluster(
                "negative",
                pools=[pool("H100", "spot", 1, 8, name=None) | {"pricePerGpuHour": None}],
                prices={"spot": -1.0},
            ),
            "spec.prices.spot: Input should be greater than or equal to 0",
        ),
    ],
)
def test_one_bad_cluster_is_left_out_with_a_problem_and_the_others_stay(bad: Obj, what: str) -> None:
    snapshot, problems = build_snapshot(
        [a_cluster("east", "us-east-1"), bad, a_cluster("west", "us-west-2")],
        [a_dataset("imagenet", "team-a", "us-east-1")],
        [a_topology("us-east-1", "us-west-2")],
    )
    assert [c.name for c in snapshot.clusters] == ["east", "west"]
    assert list(snapshot.datasets) == ["team-a/imagenet"]
    [problem] = problems
    assert f'Cluster "{bad["metadata"]["name"]}"' in problem and what in problem


def test_a_bad_topology_is_dropped_and_clusters_without_sites_stay() -> None:
    broken = a_topology("us-east-1", links=[{"from": "us-east-1", "to": "nowhere", "bandwidthGbps": 10}])
    snapshot, problems = build_snapshot([a_cluster("east", "us-east-1")], [], [broken])
    assert [c.name for c in snapshot.clusters] == ["east"]
    assert snapshot.topology.sites == ()
    [problem] = problems
    assert 'Topology "net"' in problem and "nowhere" in problem


# ---------------------------------------------------------------- pool_node_names


def test_pool_node_names_lists_a_named_pools_nodes_sorted() -> None:
    c = a_cluster("east", pools=[pool("H100", "on-demand", 3, 8, name="big")])
    c["status"]["gpuPools"][0]["nodes"].reverse()
    assert pool_node_names(c, "big") == ["h100-on-demand-0", "h100-on-demand-1", "h100-on-demand-2"]


@pytest.mark.parametrize(
    "pools,asked,expected",
    [
        # Unnamed: "<model lowercased>-<capacityType>", as placement.manifests names it.
        ([pool("H100", "spot", 1, 8, name=None)], "h100-spot", ["h100-spot-0"]),
        # Two pools that would share a name: the second gets "-<its index>".
        (
            [
                pool("A100", "spot", 1, 8, name=None, node_prefix="first"),
                pool("A100", "spot", 1, 8, name=None, node_prefix="second"),
            ],
            "a100-spot-1",
            ["second-0"],
        ),
        (
            [
                pool("A100", "spot", 1, 8, name=None, node_prefix="first"),
                pool("A100", "spot", 1, 8, name=None, node_prefix="second"),
            ],
            "a100-spot",
            ["first-0"],
        ),
        # A pool that reports no per-node list, an unknown pool: nothing to pin to.
        ([pool("L4", "on-demand", 2, 4) | {"nodes": None}], "l4-on-demand", None),
        ([pool("L4", "on-demand", 2, 4)], "h100-on-demand", None),
    ],
)
def test_pool_node_names_finds_pools_by_the_name_placement_gives_them(
    pools: list[Obj],
    asked: str,
    expected: list[str] | None,
) -> None:
    assert pool_node_names(a_cluster("east", pools=pools), asked) == expected


def test_pool_node_names_knows_every_pool_under_the_snapshots_name_for_it() -> None:
    c = a_cluster(
        "east",
        pools=[
            pool("A100", "spot", 1, 8, name=None, node_prefix="a"),
            pool("A100", "spot", 2, 8, name=None, node_prefix="b"),
            pool("H100", "reserved", 1, 8, name="h", node_prefix="c"),
        ],
    )
    engine_names = [p.name for p in cluster_from_api(v1.Cluster.model_validate(c)).pools]
    assert [pool_node_names(c, n) for n in engine_names] == [["a-0"], ["b-0", "b-1"], ["c-0"]]


def test_pool_node_names_of_a_missing_cluster_is_none() -> None:
    assert pool_node_names(None, "h100-on-demand") is None


# ---------------------------------------------------------------- scale_manifest

JOB_TEMPLATE = {"template": {"spec": {"containers": [{"name": "main", "image": "busybox"}]}}}


@pytest.mark.parametrize(
    "manifest,expected_spec",
    [
        ({"kind": "Deployment", "spec": {"replicas": 1, "selector": {}}}, {"replicas": 3, "selector": {}}),
        ({"kind": "StatefulSet", "spec": {"replicas": 1}}, {"replicas": 3}),
        ({"kind": "ReplicaSet", "spec": {}}, {"replicas": 3}),
        # Jobs: 3 replicas = 3 pods at once, 3 completions to finish.
        ({"kind": "Job", "spec": JOB_TEMPLATE}, {**JOB_TEMPLATE, "parallelism": 3, "completions": 3}),
        ({"kind": "Job", "spec": {"parallelism": 1, "completions": 10}}, {"parallelism": 3, "completions": 3}),
        # Other kinds keep their own replica fields as the user wrote them.
        (
            {"kind": "PyTorchJob", "spec": {"pytorchReplicaSpecs": {"Worker": {"replicas": 8}}}},
            {"pytorchReplicaSpecs": {"Worker": {"replicas": 8}}},
        ),
        ({"kind": "RayJob", "spec": {"entrypoint": "python x.py"}}, {"entrypoint": "python x.py"}),
    ],
)
def test_scale_manifest_gives_one_cluster_its_replicas(manifest: Obj, expected_spec: Obj) -> None:
    before = copy.deepcopy(manifest)
    scaled = scale_manifest(manifest, 3)
    assert scaled["spec"] == expected_spec
    assert manifest == before, "the Workload's manifest is not mutated"


def test_scale_manifest_applies_kinds_without_replicas_exactly_as_written() -> None:
    # "Other kinds … are applied as written" (docstring): a ConfigMap has no spec, and must not
    # gain one (strict field validation on the spoke would reject or warn about it).
    config = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cfg"}, "data": {"a": "1"}}
    assert scale_manifest(config, 3) == config


# ---------------------------------------------------------------- placed_status and assignments_for


def test_placed_status_records_the_decision_with_its_epoch_and_time() -> None:
    clusters = [a_cluster("east", pools=[pool("H100", "on-demand", 2, 8)])]
    w = a_stored_workload(gpus=8, replicas=2, generation=3)
    d = decide_one(clusters, w)
    st = placed_status(w, d, 1, NOW)
    assert st["phase"] == "Placed"
    assert st["observedGeneration"] == 3
    assert st["placement"]["epoch"] == 1 and st["placement"]["decidedAt"] == NOW
    assert st["placement"]["clusters"] == [{"name": "east", "replicas": 2, "capacityType": "on-demand"}]
    assert st["placement"]["explanation"]["placed"] is True
    assert st["message"] == "placed on east (2x H100 on-demand)"
    assert st["clusters"] == [{"name": "east", "phase": "Pending", "epoch": 1}]


def test_placed_status_keeps_a_phase_past_placed_when_re_placing() -> None:
    # A fenced Running workload placed again with epoch 2: it does not go back to Placed.
    clusters = [a_cluster("west")]
    w = a_stored_workload(status={"phase": "Running", "placement": {"epoch": 1, "clusters": []}})
    epoch = next_epoch(w)
    st = placed_status(w, decide_one(clusters, w), epoch, NOW)
    assert (epoch, st["phase"], st["placement"]["epoch"]) == (2, "Running", 2)
    assert st["clusters"] == [{"name": "west", "phase": "Pending", "epoch": 2}]


def test_placed_status_keeps_at_most_explain_rows_clusters_in_the_explanation() -> None:
    clusters = [a_cluster(f"c{i:03d}") for i in range(EXPLAIN_ROWS + 5)]
    w = a_stored_workload()
    st = placed_status(w, decide_one(clusters, w), 1, NOW)
    assert len(st["placement"]["explanation"]["clusters"]) == EXPLAIN_ROWS
    assert st["placement"]["explanation"]["clustersTotal"] == EXPLAIN_ROWS + 5


def test_placed_status_message_of_a_cpu_only_workload_reads_cleanly() -> None:
    # No GPUs: no pool, no capacity type; the message says "cpu" and nothing after it.
    w = a_stored_workload("web", gpus=0)
    d = decide_one([a_cluster("east")], w)
    assert d.placed and d.assignments[0].capacity_type is None
    assert placed_status(w, d, 1, NOW)["message"] == "placed on east (1x cpu)"


@pytest.mark.parametrize(
    "cur,expected",
    [
        (a_stored_workload(), 1),
        (a_stored_workload(status={"phase": "Pending"}), 1),
        (a_stored_workload(status={"placement": {"epoch": 4}}), 5),
    ],
)
def test_next_epoch_is_one_past_the_recorded_epoch(cur: Obj, expected: int) -> None:
    assert next_epoch(cur) == expected


def test_assignments_for_builds_the_assignment_the_agent_needs() -> None:
    east = a_cluster("east", pools=[pool("H100", "on-demand", 3, 8, free=[0, 8, 8])])
    w = a_stored_workload(gpus=8, replicas=2)
    d = decide_one([east], w)
    [a] = assignments_for(w, d, 1, {"east": east})
    assert a["metadata"]["name"] == "train-east-e1"
    assert a["metadata"]["namespace"] == "team-a"
    assert a["metadata"]["labels"] == {WORKLOAD_LABEL: "train", CLUSTER_LABEL: "east", EPOCH_LABEL: "1"}
    assert a["metadata"]["finalizers"] == [AGENT_CLEANUP_FINALIZER]
    assert a["metadata"]["ownerReferences"] == [
        {
            "apiVersion": API_VERSION,
            "kind": "Workload",
            "name": "train",
            "uid": "uid-train",
            "controller": True,
            "blockOwnerDeletion": True,
        }
    ]
    spec = a["spec"]
    assert spec["clusterName"] == "east" and spec["epoch"] == 1 and spec["replicas"] == 2
    assert spec["workloadRef"] == {"name": "train", "uid": "uid-train"}
    assert (spec["capacityType"], spec["gpuModel"]) == ("on-demand", "H100")
    # Pinned to the pool's nodes (all of them, sorted), not only the two it booked.
    assert spec["nodeNames"] == ["h100-on-demand-0", "h100-on-demand-1", "h100-on-demand-2"]
    # The Job is scaled to this cluster's 2 replicas.
    assert (spec["manifests"][0]["spec"]["parallelism"], spec["manifests"][0]["spec"]["completions"]) == (2, 2)
    assert "parallelism" not in w["spec"]["manifests"][0]["spec"], "the Workload is not mutated"
    assert a["status"] == {"phase": "Pending"}
    hub_accepts_assignment(a)


def test_assignments_for_reserves_exactly_what_the_decision_booked() -> None:
    east = a_cluster("east", pools=[pool("H100", "on-demand", 3, 8, free=[0, 8, 8])])
    w = a_stored_workload(gpus=8, replicas=2)
    d = decide_one([east], w)
    asg = assignments_for(w, d, 1, {"east": east})
    # Node 0 has no free GPU, so the two 8-GPU replicas were booked on nodes 1 and 2.
    assert (
        reservations(asg, {"east": east})
        == d.reservations()
        == [Reservation("team-a/train", "east", "h100-on-demand", 8, 2, ("h100-on-demand-1", "h100-on-demand-2"))]
    )


def test_reserved_gpus_are_not_handed_out_again_before_the_cluster_reports_them() -> None:
    # east has one 8-GPU node; the first decision books it. Until east's report shows it,
    # the next pass must see it taken: 8 free - 8 held = 0 for the second workload.
    east = a_cluster("east", pools=[pool("H100", "on-demand", 1, 8)])
    first = a_stored_workload("first")
    asg = assignments_for(first, decide_one([east], first), 1, {"east": east})
    second = a_stored_workload("second")
    [d] = decide([east], second, held=reservations(asg, {"east": east}))
    assert not d.placed
    # Once the Assignment runs and a later heartbeat reports the capacity, the hold is released.
    asg[0]["status"] = {"phase": "Running", "updatedAt": at(-5)}
    assert reservations(asg, {"east": east}) == []


def test_assignments_for_a_divisible_workload_makes_one_assignment_per_chosen_cluster() -> None:
    # 3 replicas of 8 GPUs; east fits 2 (two free nodes), west fits 1.
    east = a_cluster("east", pools=[pool("H100", "on-demand", 2, 8)])
    west = a_cluster("west", "us-west-2", pools=[pool("H100", "on-demand", 1, 8)])
    w = a_stored_workload(gpus=8, replicas=3, placementMode="Divisible")
    d = decide_one([east, west], w)
    asg = assignments_for(w, d, 4, {"east": east, "west": west})
    assert {a["spec"]["clusterName"]: a["spec"]["replicas"] for a in asg} == {"east": 2, "west": 1}
    assert sorted(a["metadata"]["name"] for a in asg) == ["train-east-e4", "train-west-e4"]
    assert all(a["metadata"]["labels"][EPOCH_LABEL] == "4" for a in asg)
    assert sorted(r.cluster for r in reservations(asg, {"east": east, "west": west})) == ["east", "west"]
    for a in asg:
        hub_accepts_assignment(a)


def test_assignments_for_a_cpu_only_workload_reserves_and_pins_nothing() -> None:
    east = a_cluster("east")
    w = a_stored_workload("web", gpus=0)
    [a] = assignments_for(w, decide_one([east], w), 1, {"east": east})
    assert a["metadata"]["annotations"] == {FAILOVER_ANNOTATION: "Replace"}  # no reservation annotation
    assert not {"capacityType", "gpuModel", "nodeNames"} & set(a["spec"])
    hub_accepts_assignment(a)


def test_assignments_for_a_cluster_missing_from_the_map_is_not_pinned() -> None:
    east = a_cluster("east")
    w = a_stored_workload()
    [a] = assignments_for(w, decide_one([east], w), 1, {})
    assert "nodeNames" not in a["spec"]
    assert RESERVATION_ANNOTATION in a["metadata"]["annotations"], "the hold does not depend on the pin"


@pytest.mark.parametrize(
    "name",
    [
        # Names the hub accepts for a Workload (DNS-1123 subdomains, up to 253 characters)
        # whose cut for a label (63) or for the Assignment name (200) ends on '-' or '.':
        # a label value and each part of a name must end with a letter or digit.
        "a" * 62 + "-tail",  # label cut at 63 → "aaa…a-"
        "a" * 62 + ".tail",  # label cut at 63 → "aaa…a."
        "a" * 199 + ".b",  # name cut at 200 → "aaa…a." + "-east-e1" = "….-east-e1"
    ],
    ids=["label-cut-on-dash", "label-cut-on-dot", "name-cut-on-dot"],
)
def test_assignments_for_a_long_workload_name_are_still_valid_assignments(name: str) -> None:
    w = a_stored_workload(name)
    validate_object(BY_KEY["fleetplane.io/workloads"], copy.deepcopy(w), "Strict")  # the hub stores this Workload
    east = a_cluster("east")
    [a] = assignments_for(w, decide_one([east], w), 1, {"east": east})
    # If the hub rejects it, rtx.create fails the whole placement transaction (every decision
    # in that batch), on every pass.
    hub_accepts_assignment(a)


@pytest.mark.parametrize("failover", ["Replace", "Wait"])
def test_assignments_carry_the_workloads_failover_policy_for_the_agent(failover: str) -> None:
    # A cut-off agent decides from this which copies to stop (self-fencing) and which to keep.
    east = a_cluster("east")
    w = a_stored_workload("web", gpus=0, failover=failover)
    [a] = assignments_for(w, decide_one([east], w), 1, {"east": east})
    assert a["metadata"]["annotations"][FAILOVER_ANNOTATION] == failover
    hub_accepts_assignment(a)
