"""Properties that hold for any fleet and batch (hypothesis): determinism, filtered
clusters are never chosen, free GPUs never go below zero, weight 0 changes nothing."""

from __future__ import annotations

from collections import Counter

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from placement import (
    PROFILES,
    CapacityPolicy,
    ClusterInfo,
    Dataset,
    Engine,
    FleetSnapshot,
    GpuNode,
    LabelSelector,
    Link,
    NodePool,
    Reservation,
    Site,
    Taint,
    Toleration,
    Topology,
    WorkloadRequest,
)

MODELS = ["H100", "A100", "L4"]
CAPS = ["spot", "on-demand", "reserved"]
SITES = ["r0", "r1", "r2"]
TOPOLOGY = Topology(tuple(Site(s, "region") for s in SITES), (Link("r0", "r1", 10, 0.02), Link("r1", "r2", 5, 0.05)))
DATASETS = {"default/d0": Dataset("d0", 500, ("r0",)), "default/d1": Dataset("d1", 20000, ("r2",))}


@st.composite
def pools(draw: st.DrawFn, cluster: str, index: int) -> NodePool:
    per_node = draw(st.sampled_from([1, 2, 4, 8]))
    frees = draw(st.lists(st.integers(0, per_node), min_size=1, max_size=4))
    name = f"p{index}"
    return NodePool(
        name=name,
        model=draw(st.sampled_from(MODELS)),
        capacity_type=draw(st.sampled_from(CAPS)),
        nodes=tuple(GpuNode(f"{cluster}-{name}-{i}", per_node, f) for i, f in enumerate(frees)),
        memory_gib=draw(st.sampled_from([24.0, 40.0, 80.0])),
        price_per_gpu_hour=draw(st.one_of(st.none(), st.floats(0.1, 8.0))),
    )


@st.composite
def fleets(draw: st.DrawFn) -> FleetSnapshot:
    n = draw(st.integers(1, 5))
    clusters = []
    for c in range(n):
        name = f"c{c}"
        k = draw(st.integers(0, 3))
        clusters.append(
            ClusterInfo(
                name=name,
                pools=tuple(draw(pools(name, i)) for i in range(k)),
                region=draw(st.sampled_from(SITES)),
                labels={"env": draw(st.sampled_from(["prod", "dev"]))},
                taints=(Taint("dedicated", draw(st.sampled_from(["NoSchedule", "PreferNoSchedule"]))),)
                if draw(st.booleans())
                else (),
                ready=draw(st.booleans()) or draw(st.booleans()),
            )
        )
    return FleetSnapshot(tuple(clusters), TOPOLOGY, DATASETS)


@st.composite
def workloads(draw: st.DrawFn) -> list[WorkloadRequest]:
    out = []
    for i in range(draw(st.integers(1, 6))):
        divisible = draw(st.booleans())
        out.append(
            WorkloadRequest(
                name=f"w{i}",
                replicas=draw(st.integers(1, 4)),
                gpus_per_replica=draw(st.sampled_from([0, 1, 2, 4, 8])),
                models=tuple(draw(st.lists(st.sampled_from(MODELS), max_size=2, unique=True))),
                min_memory_gib=draw(st.sampled_from([0.0, 40.0])),
                mode="Divisible" if divisible else "Gang",
                max_clusters=draw(st.one_of(st.none(), st.integers(1, 3))) if divisible else None,
                capacity_policy=draw(st.sampled_from(list(CapacityPolicy))),
                priority=draw(st.integers(0, 2)),
                selector=LabelSelector.of({"env": "prod"}) if draw(st.booleans()) else None,
                tolerations=(Toleration("dedicated", "Exists"),) if draw(st.booleans()) else (),
                datasets=tuple(draw(st.lists(st.sampled_from(sorted(DATASETS)), max_size=2, unique=True))),
            )
        )
    return out


FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FAST
@given(fleets(), workloads())
def test_the_same_input_gives_the_same_decisions_and_explanations(
    snap: FleetSnapshot, batch: list[WorkloadRequest]
) -> None:
    first = [d.to_dict() for d in Engine().place_batch(snap, batch)]
    again = [d.to_dict() for d in Engine().place_batch(snap, list(reversed(batch)))]
    assert first == again


def _eligible(snap: FleetSnapshot, w: WorkloadRequest, cluster: str, pool: str | None) -> bool:
    """An independent, plain-Python statement of the filters."""
    c = next(c for c in snap.clusters if c.name == cluster)
    if not c.ready:
        return False
    for t in c.taints:
        if t.effect != "PreferNoSchedule" and not any(tol.tolerates(t) for tol in w.tolerations):
            return False
    if w.selector is not None and not w.selector.matches(c.labels):
        return False
    if w.gpus_per_replica == 0:
        return pool is None
    p = next(p for p in c.pools if p.name == pool)
    if w.models and p.model.upper() not in w.canonical_models:
        return False
    return p.memory_gib >= w.min_memory_gib and p.capacity_type in w.allowed


@FAST
@given(fleets(), workloads())
def test_a_filtered_cluster_is_never_chosen(snap: FleetSnapshot, batch: list[WorkloadRequest]) -> None:
    for d in Engine().place_batch(snap, batch):
        rows = {c["name"]: c for c in d.to_dict()["clusters"]}
        assert len(rows) == len(snap.clusters)
        for a in d.assignments:
            assert rows[a.cluster]["feasible"], rows[a.cluster]
            assert _eligible(snap, d.workload, a.cluster, a.pool)
        if d.placed:
            assert sum(a.replicas for a in d.assignments) == d.workload.replicas
            if d.workload.mode == "Gang":
                assert len(d.assignments) == 1
            elif d.workload.max_clusters:
                assert len(d.assignments) <= d.workload.max_clusters


@FAST
@given(fleets(), workloads(), st.integers(0, 3))
def test_no_node_ever_goes_below_zero_free_gpus_across_a_batch(
    snap: FleetSnapshot, batch: list[WorkloadRequest], held: int
) -> None:
    free = {n.name: n.usable_free for c in snap.clusters for p in c.pools for n in p.nodes}
    # Some in-flight reservations on the first nodes, booked by node name.
    reservations = []
    for c in snap.clusters:
        for p in c.pools:
            for n in p.nodes[:held]:
                if n.usable_free:
                    reservations.append(Reservation("ns/r", c.name, p.name, 1, 1, (n.name,)))
                    free[n.name] -= 1
    used: Counter[str] = Counter()
    for d in Engine().place_batch(snap, batch, reservations):
        for a in d.assignments:
            assert len(a.nodes) == (a.replicas if a.pool else 0)
            for node in a.nodes:
                used[node] += a.gpus_per_replica
    for node, gpus in used.items():
        assert gpus <= free[node], f"{node}: booked {gpus} of {free[node]} free"


@FAST
@given(fleets(), workloads(), st.sampled_from(sorted(PROFILES["default"].weights)))
def test_a_plugin_with_weight_zero_changes_nothing(
    snap: FleetSnapshot, batch: list[WorkloadRequest], plugin: str
) -> None:
    base = PROFILES["default"].with_weights(**{plugin.replace("-", "_"): 0.0})
    without = Engine(base, plugins=[p for p in Engine().plugins if p.name != plugin or p.stage is not None])
    with_zero = Engine(base)
    a = [(d.workload.key, [x.to_dict() for x in d.assignments]) for d in without.place_batch(snap, batch)]
    b = [(d.workload.key, [x.to_dict() for x in d.assignments]) for d in with_zero.place_batch(snap, batch)]
    assert a == b


@FAST
@given(fleets(), workloads())
def test_divisible_fill_by_arg_max_and_by_sorting_agree(snap: FleetSnapshot, batch: list[WorkloadRequest]) -> None:
    sorting = Engine()
    sorting_session = sorting.session(snap)
    sorting_session.ARGMAX_PICKS = 0  # always take the sort path
    argmax_session = Engine().session(snap)
    for w in sorted(batch, key=lambda w: (-w.priority, w.name)):
        a, b = argmax_session.place(w), sorting_session.place(w)
        assert [x.to_dict() for x in a.assignments] == [x.to_dict() for x in b.assignments]
