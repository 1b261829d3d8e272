"""Properties of admission for any fleet, queues and workloads (hypothesis): quota is never
exceeded, gangs are whole, a higher priority is never evicted, the fleet is never overbooked,
and the same input gives the same answer.

Each example runs two passes: the first from an empty fleet (so what holds quota is valid),
the second on the fleet as it is after the first with more pending work, so that borrowing,
reclaim and preemption all get exercised."""

from __future__ import annotations

from collections import defaultdict

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from placement_builders import a_workload
from queue_builders import fleet_after, still_running

from placement import ClusterInfo, FleetSnapshot, GpuNode, NodePool
from placement.queueing import (
    Admission,
    AdmissionResult,
    AdmittedWorkload,
    Flavor,
    FlavorQuota,
    PreemptionPolicy,
    Queue,
    QueuedWorkload,
)

MODELS = ["H100", "A100"]
CAPS = ["spot", "on-demand"]
REGIONS = ["r0", "r1"]
# Few flavors, so that queues of a cohort often share one (and borrow, lend, reclaim).
FLAVORS = [
    Flavor.of("H100", "on-demand"),
    Flavor.of("H100", "spot"),
    Flavor.of("A100", "on-demand"),
    Flavor.of("H100", "on-demand", "r0"),
]


@st.composite
def fleets(draw: st.DrawFn) -> FleetSnapshot:
    clusters = []
    for c in range(draw(st.integers(1, 3))):
        pools = []
        for p in range(draw(st.integers(1, 3))):
            per_node = draw(st.sampled_from([1, 2, 4, 8]))
            frees = draw(st.lists(st.sampled_from([per_node, per_node, 0, per_node // 2]), min_size=1, max_size=3))
            name = f"p{p}"
            pools.append(
                NodePool(
                    name,
                    draw(st.sampled_from(MODELS)),
                    draw(st.sampled_from(CAPS)),
                    tuple(GpuNode(f"c{c}-{name}-{i}", per_node, f) for i, f in enumerate(frees)),
                    memory_gib=80.0,
                    price_per_gpu_hour=draw(st.floats(0.5, 6.0)),
                )
            )
        clusters.append(ClusterInfo(f"c{c}", tuple(pools), region=draw(st.sampled_from(REGIONS))))
    return FleetSnapshot(tuple(clusters))


@st.composite
def queue_sets(draw: st.DrawFn) -> list[Queue]:
    queues = []
    for i in range(draw(st.integers(1, 3))):
        cohort = draw(st.sampled_from([None, "c", "c", "c"]))
        flavors = []
        for f in draw(st.lists(st.sampled_from(FLAVORS), min_size=1, max_size=3, unique=True)):
            nominal = draw(st.sampled_from([0, 2, 4, 8, 16]))
            borrow = draw(st.one_of(st.none(), st.integers(0, 16))) if cohort else None
            lend = draw(st.one_of(st.none(), st.integers(0, nominal))) if cohort else None
            flavors.append(FlavorQuota(f, nominal, borrow, lend))
        queues.append(
            Queue(
                f"q{i}",
                tuple(flavors),
                cohort=cohort,
                weight=draw(st.sampled_from([0.5, 1.0, 2.0])),
                strategy=draw(st.sampled_from(["StrictFIFO", "BestEffortFIFO"])),
                preemption=PreemptionPolicy(
                    draw(st.sampled_from(["Never", "LowerPriority"])),
                    draw(st.sampled_from(["Never", "Any", "LowerPriority"])),
                ),
                default_for=frozenset({"default"}) if i == 0 else frozenset(),
            )
        )
    return queues


@st.composite
def backlogs(draw: st.DrawFn, prefix: str, queues: int, priorities: tuple[int, int]) -> list[QueuedWorkload]:
    out = []
    for i in range(draw(st.integers(1, 8))):
        divisible = draw(st.booleans())
        priority = draw(st.integers(*priorities))
        w = a_workload(
            f"{prefix}{i}",
            gpus=draw(st.sampled_from([0, 1, 1, 2, 2, 4, 8])),
            replicas=draw(st.integers(1, 3)),
            models=tuple(draw(st.lists(st.sampled_from(MODELS), max_size=2, unique=True))),
            allowed_capacity=frozenset(draw(st.lists(st.sampled_from(CAPS), min_size=1, max_size=2, unique=True))),
            mode="Divisible" if divisible else "Gang",
            priority=priority,
        )
        queue = draw(st.one_of(st.none(), st.sampled_from([f"q{j}" for j in range(queues)])))
        out.append(QueuedWorkload(w, queue, priority, draw(st.integers(0, 5))))
    return out


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[FleetSnapshot, list[Queue], list[QueuedWorkload], list[QueuedWorkload]]:
    queues = draw(queue_sets())
    # The second batch tends to outrank the first, so preemption has something to do.
    return draw(fleets()), queues, draw(backlogs("a", len(queues), (0, 3))), draw(backlogs("b", len(queues), (1, 5)))


@st.composite
def reclaim_scenarios(draw: st.DrawFn) -> tuple[FleetSnapshot, list[Queue], list[QueuedWorkload], list[QueuedWorkload]]:
    """One cohort on one flavor: q0 borrows everything in the first pass, the others come
    to take their quota back in the second."""
    flavor = Flavor.of("H100", "on-demand")
    queues = []
    for i in range(draw(st.integers(2, 3))):
        nominal = draw(st.sampled_from([4, 8, 16]))
        queues.append(
            Queue(
                f"q{i}",
                (FlavorQuota(flavor, nominal, draw(st.one_of(st.none(), st.integers(0, 16))), None),),
                cohort="c",
                preemption=PreemptionPolicy(
                    draw(st.sampled_from(["Never", "LowerPriority"])),
                    draw(st.sampled_from(["Any", "LowerPriority"])),
                ),
                default_for=frozenset({"default"}) if i == 0 else frozenset(),
            )
        )
    nodes = draw(st.integers(2, 6))
    snap = FleetSnapshot(
        (
            ClusterInfo(
                "c0", (NodePool("p0", "H100", "on-demand", tuple(GpuNode(f"n{i}", 8, 8) for i in range(nodes))),)
            ),
        )
    )

    def batch(prefix: str, queue_names: list[str | None], priorities: tuple[int, int]) -> list[QueuedWorkload]:
        out = []
        for i in range(draw(st.integers(1, 10))):
            priority = draw(st.integers(*priorities))
            w = a_workload(f"{prefix}{i}", gpus=draw(st.sampled_from([2, 4, 8])), priority=priority)
            out.append(QueuedWorkload(w, draw(st.sampled_from(queue_names)), priority, i))
        return out

    others: list[str | None] = [q.name for q in queues[1:]]
    return snap, queues, batch("a", [None, "q0"], (0, 2)), batch("b", others, (0, 3))


Scenario = tuple[FleetSnapshot, list[Queue], list[QueuedWorkload], list[QueuedWorkload]]
SCENARIOS = st.one_of(scenarios(), reclaim_scenarios())


def two_passes(
    s: Scenario,
) -> tuple[FleetSnapshot, AdmissionResult, list[AdmittedWorkload], FleetSnapshot, AdmissionResult]:
    snap, queues, first_batch, second_batch = s
    admission = Admission(queues)
    first = admission.decide(snap, first_batch)
    held = still_running(first)
    after = fleet_after(snap, first)
    second = admission.decide(after, second_batch, held)
    return snap, first, held, after, second


def free_gpus(snap: FleetSnapshot) -> int:
    return sum(c.free_gpus for c in snap.clusters)


FAST = settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def usage_after(result: AdmissionResult, held: list[AdmittedWorkload]) -> dict[tuple[str, Flavor], int]:
    gone = {e.key for e in result.evictions}
    usage: dict[tuple[str, Flavor], int] = defaultdict(int)
    for a in held:
        if a.key not in gone and a.flavor is not None:
            usage[(a.queue, a.flavor)] += a.gpus
    for d in result.admitted:
        if d.flavor is not None:
            usage[(d.queue or "", d.flavor.flavor)] += d.workload.gpus
    return usage


@FAST
@given(SCENARIOS)
def test_no_queue_ever_exceeds_its_nominal_quota_plus_what_it_may_borrow(s: Scenario) -> None:
    _, first, held, _, second = two_passes(s)
    queues = {q.name: q for q in s[1]}
    for usage in (usage_after(first, []), usage_after(second, held)):
        pool: dict[tuple[str, Flavor], int] = defaultdict(int)
        pool_used: dict[tuple[str, Flavor], int] = defaultdict(int)
        for q in queues.values():
            for fq in q.flavors:
                key = (q.cohort or f"alone/{q.name}", fq.flavor)
                pool[key] += fq.lendable
                used = usage.get((q.name, fq.flavor), 0)
                if fq.borrowing_limit is not None:
                    assert used <= fq.nominal + fq.borrowing_limit, (q.name, fq, used)
                if q.cohort is None:
                    assert used <= fq.nominal, (q.name, fq, used)
                pool_used[key] += max(0, used - fq.guaranteed)
        for key, used in pool_used.items():
            assert used <= pool[key], (key, used, pool[key])
        for (queue, flavor), used in usage.items():
            assert queues[queue].quota(flavor) is not None or used == 0


@FAST
@given(SCENARIOS)
def test_a_gang_is_never_partially_admitted_and_nothing_waiting_holds_gpus(s: Scenario) -> None:
    _, first, _, _, second = two_passes(s)
    for result in (first, second):
        for d in result.decisions:
            w = d.workload.request
            if not d.admitted:
                assert d.assignments == ()
                continue
            assert sum(a.replicas for a in d.assignments) == w.replicas
            if w.mode == "Gang":
                assert len(d.assignments) == 1
            if d.flavor is not None:  # placed on the admitted flavor
                for a in d.assignments:
                    assert (a.gpu_model, a.capacity_type) == (d.flavor.flavor.model, d.flavor.flavor.capacity_type)


@FAST
@given(SCENARIOS)
def test_preemption_never_evicts_a_higher_priority_workload(s: Scenario) -> None:
    _, _, held, _, second = two_passes(s)
    queues = {q.name: q for q in s[1]}
    by_key = second.by_key()
    keys = {a.key for a in held}
    for e in second.evictions:
        preemptor = by_key[e.preemptor]
        assert preemptor.admitted and e in preemptor.victims
        assert e.key in keys
        assert e.workload.priority <= preemptor.workload.priority
        if e.workload.queue == preemptor.queue:
            assert e.workload.priority < preemptor.workload.priority
            assert queues[preemptor.queue].preemption.within_queue == "LowerPriority"
        else:
            policy = queues[preemptor.queue or ""].preemption.reclaim_within_cohort
            assert policy != "Never"
            if policy == "LowerPriority":
                assert e.workload.priority < preemptor.workload.priority


@FAST
@given(SCENARIOS)
def test_total_admitted_never_exceeds_the_fleets_free_gpus_plus_what_victims_free(s: Scenario) -> None:
    snap, first, _, after, second = two_passes(s)
    assert sum(d.workload.gpus for d in first.admitted) <= free_gpus(snap)
    assert first.evictions == []
    freed = sum(e.workload.gpus for e in second.evictions)
    assert sum(d.workload.gpus for d in second.admitted) <= free_gpus(after) + freed
    for result in (first, second):
        assert int(result.session.state.node_free.min(initial=0)) >= 0


@FAST
@given(SCENARIOS)
def test_the_same_input_in_any_order_gives_the_same_admissions(s: Scenario) -> None:
    snap, queues, batch, _ = s
    a = Admission(queues).decide(snap, batch).to_dict()
    b = Admission(list(reversed(queues))).decide(snap, list(reversed(batch))).to_dict()
    assert a == b
