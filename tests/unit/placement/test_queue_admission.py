"""Admission scenarios as tables: quota cap, borrowing then reclaim, priority preemption,
weighted fair share, StrictFIFO vs BestEffortFIFO, gangs, fungibility, regions, explanations."""

from __future__ import annotations

import re

import pytest
from placement_builders import a_cluster, a_workload, fleet
from queue_builders import (
    a_queue,
    admit,
    admitted_names,
    evicted_names,
    fleet_after,
    gpus_admitted_by_queue,
    pending,
    phases,
    reason_of,
    running,
    still_running,
)

from placement import ClusterAssignment, PlacementInputError
from placement.queueing import Admission, Flavor, QueuedWorkload

H100_OD = Flavor.of("H100", "on-demand")
POOL = "h100-on-demand-0"  # the builder's name for the first pool of a cluster


def on_node(cluster: str, node: int, gpus: int = 8, replicas: int = 1) -> tuple[ClusterAssignment, ...]:
    """Where a running workload's replicas are: node ``node`` of the builder's first H100 pool."""
    name = f"{cluster}-{POOL}-{node}"
    return (ClusterAssignment(cluster, replicas, "on-demand", POOL, "H100", gpus, None, (name,) * replicas),)


# ---------------------------------------------------------------- quota


def test_a_queue_admits_up_to_its_nominal_quota_and_the_rest_waits_saying_why() -> None:
    snap = fleet(a_cluster("east").pool("H100", nodes=4))  # 32 free GPUs
    result = admit(
        snap, [a_queue("a").flavor("H100", nominal=16)], [pending(f"w{i}", "a", created=i) for i in range(3)]
    )
    # 8 + 8 = 16 = nominal; the third would make 24.
    assert admitted_names(result) == ["w0", "w1"]
    assert reason_of(result, "w2") == (
        "position 1 in queue a: queue a: H100 on-demand 16/16 used, cohort has 0 to lend; needs 8, 0 available"
    )
    summary = result.queues[0]
    assert (summary.usage[0].used, summary.usage[0].nominal, summary.pending, summary.admitted) == (16, 16, 1, 2)


def test_total_admitted_stops_at_the_free_gpus_even_when_quota_is_larger() -> None:
    snap = fleet(a_cluster("east").pool("H100", nodes=2, free=[8, 4]))  # 12 free, 8 on one node
    result = admit(
        snap, [a_queue("a").flavor("H100", nominal=100)], [pending(f"w{i}", "a", created=i) for i in range(3)]
    )
    assert admitted_names(result) == ["w0"]
    assert "quota allows 8 (92 available) but 0/1 clusters: 1 no node with 8 free H100" in reason_of(result, "w1")


# ---------------------------------------------------------------- borrowing and reclaim


def test_a_queue_borrows_what_its_cohort_does_not_use_and_the_lender_reclaims_it() -> None:
    snap = fleet(a_cluster("east").pool("H100", nodes=4))  # 32 GPUs
    a = a_queue("a").flavor("H100", nominal=16).cohort("c")
    b = a_queue("b").flavor("H100", nominal=16).cohort("c").preempts(reclaim="Any")
    first = admit(snap, [a, b], [pending(f"a{i}", "a", created=i) for i in range(4)])
    # a: 16 own + 16 borrowed from idle b.
    assert admitted_names(first) == ["a0", "a1", "a2", "a3"]
    assert first.queues[0].usage[0].borrowed == 16

    # b's team arrives on a full fleet: it takes back its quota from a's most recent workloads.
    held = still_running(first)
    second = admit(fleet_after(snap, first), [a, b], [pending(f"b{i}", "b", created=10 + i) for i in range(2)], held)
    assert admitted_names(second) == ["b0", "b1"]
    assert evicted_names(second) == ["a3", "a2"]
    assert second.evictions[0].reason == (
        "reclaimed by queue b for default/b0: queue a was borrowing 16 H100 on-demand GPUs beyond its nominal quota"
    )
    # Back to nominal: a 16/16, b 16/16 — a's own quota is never reclaimed.
    assert [(s.queue.name, s.usage[0].used) for s in second.queues] == [("a", 16), ("b", 16)]


def test_without_a_reclaim_policy_the_lender_waits_and_says_its_quota_is_lent() -> None:
    snap = fleet(a_cluster("east").pool("H100", nodes=4))
    a = a_queue("a").flavor("H100", nominal=16).cohort("c")
    b = a_queue("b").flavor("H100", nominal=16).cohort("c")
    first = admit(snap, [a, b], [pending(f"a{i}", "a", created=i) for i in range(4)])
    second = admit(fleet_after(snap, first), [a, b], [pending("b0", "b")], still_running(first))
    assert second.evictions == []
    assert reason_of(second, "b0") == (
        "position 1 in queue b: queue b: H100 on-demand 0/16 used, 16 of its quota lent to the cohort, "
        "cohort has 0 to lend; needs 8, 0 available"
    )


def test_reclaim_never_takes_a_lenders_quota_back_below_the_borrowers_nominal() -> None:
    snap = fleet(a_cluster("east").pool("H100", nodes=4, free=0))
    a = a_queue("a").flavor("H100", nominal=16).cohort("c")
    b = a_queue("b").flavor("H100", nominal=16).cohort("c").preempts(reclaim="Any")
    # a uses 24 (borrowing 8) and b 8; b wants 16 more: reclaiming can only give it 8.
    held = [running(f"a{i}", "a", admitted=i, assignments=on_node("east", i)) for i in range(3)]
    held.append(running("b-old", "b", admitted=5, assignments=on_node("east", 3)))
    result = admit(snap, [a, b], [pending("b-big", "b", gpus=8, replicas=2)], held)
    assert result.evictions == []
    assert "evicting all 1 candidates (8 GPUs) would not help: quota would still have only 8 of 16 available" in (
        reason_of(result, "b-big")
    )


# ---------------------------------------------------------------- priority preemption


def test_a_higher_priority_workload_evicts_the_most_recent_of_the_lowest_priority_in_its_queue() -> None:
    snap = fleet(a_cluster("east").pool("H100", nodes=3, free=0))
    q = a_queue("a").flavor("H100", nominal=24).preempts(within="LowerPriority")
    held = [
        running("low-old", "a", priority=0, admitted=1, assignments=on_node("east", 0)),
        running("low-new", "a", priority=0, admitted=2, assignments=on_node("east", 1)),
        running("mid", "a", priority=5, admitted=3, assignments=on_node("east", 2)),
    ]
    result = admit(snap, [q], [pending("urgent", "a", priority=10)], held)
    assert admitted_names(result) == ["urgent"]
    assert evicted_names(result) == ["low-new"]
    assert result.evictions[0].reason == "preempted by default/urgent (priority 10 > 0) in queue a"
    # It runs where the victim ran.
    assert result.admitted[0].assignments[0].nodes == ("east-h100-on-demand-0-1",)


def test_preemption_never_evicts_a_workload_of_higher_or_equal_priority() -> None:
    snap = fleet(a_cluster("east").pool("H100", nodes=2, free=0))
    q = a_queue("a").flavor("H100", nominal=16).preempts(within="LowerPriority")
    held = [
        running("high", "a", priority=20, admitted=1, assignments=on_node("east", 0)),
        running("same", "a", priority=10, admitted=2, assignments=on_node("east", 1)),
    ]
    result = admit(snap, [q], [pending("p10", "a", priority=10)], held)
    assert result.evictions == [] and phases(result) == {"p10": "Waiting"}
    assert "H100 on-demand: no workload it may preempt (withinQueue LowerPriority" in reason_of(result, "p10")


def test_nobody_is_evicted_when_the_preemptor_would_still_not_fit_on_the_freed_gpus() -> None:
    # Two 4-GPU victims on two different nodes: quota would cover an 8-GPU replica, but no
    # node would have 8 free, so evicting them would be for nothing.
    snap = fleet(a_cluster("east").pool("H100", nodes=2, free=0))
    q = a_queue("a").flavor("H100", nominal=8).preempts(within="LowerPriority")
    held = [
        running("v0", "a", gpus=4, admitted=1, assignments=on_node("east", 0, gpus=4)),
        running("v1", "a", gpus=4, admitted=2, assignments=on_node("east", 1, gpus=4)),
    ]
    result = admit(snap, [q], [pending("urgent", "a", gpus=8, priority=10)], held)
    assert result.evictions == []
    assert "evicting all 2 candidates (8 GPUs) would not help: no cluster would fit it on the freed capacity" in (
        reason_of(result, "urgent")
    )


def test_only_the_victims_needed_are_evicted() -> None:
    # Lowest priority first picks the small 4-GPU workload, which alone does not make room
    # for an 8-GPU replica; the 8-GPU one does, so the small one is put back.
    snap = fleet(a_cluster("east").pool("H100", nodes=2, free=[4, 0]))
    q = a_queue("a").flavor("H100", nominal=12).preempts(within="LowerPriority")
    held = [
        running("small", "a", gpus=4, priority=0, admitted=2, assignments=on_node("east", 0, gpus=4)),
        running("big", "a", gpus=8, priority=1, admitted=1, assignments=on_node("east", 1)),
    ]
    result = admit(snap, [q], [pending("urgent", "a", gpus=8, priority=10)], held)
    assert evicted_names(result) == ["big"]


# ---------------------------------------------------------------- fair share


def test_weighted_fair_share_splits_contended_capacity_two_to_one_in_one_pass() -> None:
    snap = fleet(a_cluster("east").pool("H100", nodes=30, gpus_per_node=1))  # 30 GPUs
    queues = [a_queue("a").flavor("H100", nominal=30).weight(2), a_queue("b").flavor("H100", nominal=30)]
    backlog = [pending(f"{q}{i}", q, gpus=1, created=i) for q in "ab" for i in range(30)]
    result = admit(snap, queues, backlog)
    # Share = used / 30 GPUs / weight: a at 20/30/2 = b at 10/30/1.
    assert gpus_admitted_by_queue(result) == {"a": 20, "b": 10}


def test_weighted_fair_share_converges_over_passes_from_an_unfair_start() -> None:
    snap = fleet(a_cluster("east").pool("H100", nodes=30, gpus_per_node=1))
    queues = [a_queue("a").flavor("H100", nominal=30).weight(2), a_queue("b").flavor("H100", nominal=30)]
    # b got there first and holds all 30 GPUs; from then on both teams keep a deep backlog.
    first = admit(snap, queues, [pending(f"b-start{i}", "b", gpus=1, created=i) for i in range(30)])
    held, current = still_running(first), fleet_after(snap, first)
    split = []
    for round_ in range(6):
        finished, held = held[:6], held[6:]  # the 6 oldest finish each round
        freed = fleet_after(current, None, finished)
        backlog = [pending(f"{q}-{round_}-{i}", q, gpus=1, created=100 * round_ + i) for q in "ab" for i in range(10)]
        result = admit(freed, queues, backlog, held)
        current, held = fleet_after(freed, result), still_running(result, held)
        split.append((sum(w.gpus for w in held if w.queue == "a"), sum(w.gpus for w in held if w.queue == "b")))
    # Freed GPUs go to the queue furthest below its weighted share (a, weight 2) until
    # a/30/2 = b/30/1, i.e. 20:10, and the split then stays there.
    assert split == [(6, 24), (12, 18), (18, 12), (20, 10), (20, 10), (20, 10)]


# ---------------------------------------------------------------- ordering


@pytest.mark.parametrize(
    ("strict", "expected"),
    [
        (True, {"big": "Waiting", "small": "Waiting"}),  # the head blocks the queue
        (False, {"big": "Waiting", "small": "Admitted"}),  # the head waits, the next goes
    ],
)
def test_strict_fifo_blocks_behind_its_head_and_best_effort_fifo_skips_it(
    strict: bool, expected: dict[str, str]
) -> None:
    snap = fleet(a_cluster("east").pool("H100", nodes=1))  # 8 GPUs: the 2 × 8 gang cannot fit
    q = a_queue("a").flavor("H100", nominal=16)
    if strict:
        q = q.strict_fifo()
    result = admit(snap, [q], [pending("big", "a", replicas=2, created=1), pending("small", "a", created=2)])
    assert phases(result) == expected
    if strict:
        assert reason_of(result, "small") == (
            "position 2 in queue a: StrictFIFO: behind the queue's head default/big, which cannot be admitted"
        )


def test_an_inadmissible_head_does_not_block_a_strict_fifo_queue() -> None:
    snap = fleet(a_cluster("east").pool("H100", nodes=1))
    q = a_queue("a").flavor("H100", nominal=8).strict_fifo()
    result = admit(snap, [q], [pending("l4-only", "a", models=("L4",), created=1), pending("h100", "a", created=2)])
    assert phases(result) == {"l4-only": "Inadmissible", "h100": "Admitted"}


def test_within_a_queue_priority_goes_first_then_creation_order() -> None:
    snap = fleet(a_cluster("east").pool("H100", nodes=8))
    workloads = [
        pending("old-low", "a", priority=0, created=1),
        pending("new-high", "a", priority=5, created=3),
        pending("old-high", "a", priority=5, created=2),
        pending("mid", "a", priority=3, created=0),
    ]
    result = admit(snap, [a_queue("a").flavor("H100", nominal=64)], workloads)
    assert admitted_names(result) == ["old-high", "new-high", "mid", "old-low"]


def test_a_waiting_workload_says_its_position_and_how_many_higher_priority_ones_are_ahead() -> None:
    snap = fleet(a_cluster("east").pool("H100", nodes=1, free=0))
    workloads = [pending(f"hi{i}", "a", priority=9, created=i) for i in range(3)] + [pending("me", "a", created=9)]
    result = admit(snap, [a_queue("a").flavor("H100", nominal=64)], workloads)
    d = result.by_key()["default/me"]
    assert (d.position, d.ahead_higher) == (4, 3)
    assert d.message.startswith("position 4 in queue a, behind 3 higher-priority workloads: ")


# ---------------------------------------------------------------- gangs and fungibility


def test_a_gang_is_admitted_whole_or_not_at_all() -> None:
    snap = fleet(a_cluster("east").pool("H100", nodes=3))  # 3 × 8 free
    q = a_queue("a").flavor("H100", nominal=64)
    result = admit(
        snap, [q], [pending("gang", "a", replicas=4, created=1), pending("after", "a", replicas=3, created=2)]
    )
    # The 4 × 8 gang does not fit in 24 GPUs; nothing of it is booked, so the 3 × 8 one fits.
    assert phases(result) == {"gang": "Waiting", "after": "Admitted"}
    assert result.queues[0].usage[0].used == 24


def test_a_divisible_workload_needs_quota_for_all_its_replicas() -> None:
    snap = fleet(a_cluster("east").pool("H100", nodes=4))
    w = pending("spread", "a", gpus=8, replicas=3, mode="Divisible")
    result = admit(snap, [a_queue("a").flavor("H100", nominal=16)], [w])
    assert phases(result) == {"spread": "Waiting"}
    assert "needs 24 GPUs, more than the queue can ever hold (16)" in reason_of(result, "spread")


def test_flavors_are_tried_in_the_queues_order_and_the_placement_honours_the_admitted_flavor() -> None:
    snap = fleet(
        a_cluster("cheap").pool("A100", nodes=2, capacity="spot", price=1.0),
        a_cluster("dear").pool("H100", nodes=2, capacity="on-demand", price=6.0),
    )
    q = a_queue("a").flavor("A100", "spot", nominal=8).flavor("H100", "on-demand", nominal=16)
    flexible = {"models": ("A100", "H100"), "allowed_capacity": frozenset({"spot", "on-demand"})}
    workloads = [
        pending("first", "a", created=1, **flexible),  # A100 spot: first flavor
        pending("second", "a", created=2, **flexible),  # A100 spot quota is used up: H100
        pending("od-only", "a", created=3, models=("A100", "H100")),  # skips the spot flavor
    ]
    result = admit(snap, [q], workloads)
    got = {d.workload.request.name: (str(d.flavor.flavor) if d.flavor else None) for d in result.decisions}
    assert got == {"first": "A100 spot", "second": "H100 on-demand", "od-only": "H100 on-demand"}
    placed = {
        d.workload.request.name: (d.assignments[0].gpu_model, d.assignments[0].capacity_type) for d in result.admitted
    }
    # The engine alone would put "second" on the cheap spot A100s; the admitted flavor wins.
    assert placed == {"first": ("A100", "spot"), "second": ("H100", "on-demand"), "od-only": ("H100", "on-demand")}


def test_a_flavor_with_quota_but_no_room_falls_through_to_the_next() -> None:
    snap = fleet(a_cluster("full").pool("A100", nodes=1, free=0), a_cluster("h").pool("H100", nodes=1))
    q = a_queue("a").flavor("A100", nominal=8).flavor("H100", nominal=8)
    result = admit(snap, [q], [pending("w", "a", models=("A100", "H100"))])
    assert str(result.admitted[0].flavor.flavor) == "H100 on-demand"
    assert result.admitted[0].attempts[0].outcome == "no-fit"


def test_a_regional_flavor_places_only_in_its_region() -> None:
    snap = fleet(a_cluster("e1").pool("H100", nodes=1).at("east"), a_cluster("w1").pool("H100", nodes=2).at("west"))
    q = a_queue("a").flavor("H100", nominal=16, region="east")
    result = admit(snap, [q], [pending("x", "a", created=1), pending("y", "a", created=2)])
    assert [a.cluster for d in result.admitted for a in d.assignments] == ["e1"]
    assert "1 not in east" in reason_of(result, "y")


# ---------------------------------------------------------------- who may submit where


def test_workloads_without_a_queue_use_their_namespaces_default_and_others_are_inadmissible() -> None:
    snap = fleet(a_cluster("east").pool("H100", nodes=4))
    team = a_queue("team").flavor("H100", nominal=32).namespaces("ml").default_for("ml")
    workloads = [
        QueuedWorkload(a_workload("mine", namespace="ml"), None),
        QueuedWorkload(a_workload("stray", namespace="web"), None),
        QueuedWorkload(a_workload("intruder", namespace="web"), "team"),
        QueuedWorkload(a_workload("typo", namespace="ml"), "tema"),
    ]
    result = admit(snap, [team], workloads)
    assert phases(result) == {
        "mine": "Admitted",
        "stray": "Inadmissible",
        "intruder": "Inadmissible",
        "typo": "Inadmissible",
    }
    assert reason_of(result, "stray") == (
        'no queue: spec.queue is empty and no Queue lists namespace "web" in spec.defaultFor'
    )
    assert reason_of(result, "intruder") == 'namespace "web" may not submit to Queue "team" (spec.namespaces: ml)'
    assert reason_of(result, "typo") == 'Queue "tema" does not exist'


def test_a_workload_no_flavor_of_its_queue_accepts_is_inadmissible() -> None:
    snap = fleet(a_cluster("east").pool("L4", nodes=1))
    result = admit(snap, [a_queue("a").flavor("H100", nominal=8)], [pending("l4", "a", models=("L4",))])
    assert phases(result) == {"l4": "Inadmissible"}
    assert "queue a has no flavor the workload accepts (L4 on on-demand/reserved; queue flavors: H100 on-demand)" in (
        reason_of(result, "l4")
    )


def test_a_workload_that_needs_no_gpus_is_admitted_without_quota() -> None:
    snap = fleet(a_cluster("east").pool("H100", nodes=1))
    result = admit(snap, [a_queue("a").flavor("H100", nominal=0)], [pending("cpu", "a", gpus=0)])
    assert phases(result) == {"cpu": "Admitted"} and result.queues[0].usage[0].used == 0


def test_two_queues_may_not_both_be_the_default_for_a_namespace() -> None:
    with pytest.raises(
        PlacementInputError, match=re.escape('Queue "b": spec.defaultFor: namespace "ml" already defaults to Queue "a"')
    ):
        Admission([a_queue("a").default_for("ml").build(), a_queue("b").default_for("ml").build()])


def test_two_queues_may_not_have_the_same_name() -> None:
    with pytest.raises(PlacementInputError, match=re.escape('Queue "a": metadata.name: duplicate Queue name')):
        Admission([a_queue("a").build(), a_queue("a").build()])


def test_a_lowest_priority_victim_elsewhere_is_kept_when_evicting_it_would_not_help_the_placement() -> None:
    # The 2 × 8 gang needs both nodes of cluster x. Lowest priority first would take "c" on
    # cluster y too, but once a and b are gone the quota fits without evicting c.
    snap = fleet(a_cluster("x").pool("H100", nodes=2, free=0), a_cluster("y").pool("H100", nodes=1, free=0))
    q = a_queue("a").flavor("H100", nominal=24).preempts(within="LowerPriority")
    held = [
        running("c", "a", priority=0, admitted=1, assignments=on_node("y", 0)),
        running("a", "a", priority=1, admitted=2, assignments=on_node("x", 0)),
        running("b", "a", priority=1, admitted=3, assignments=on_node("x", 1)),
    ]
    result = admit(snap, [q], [pending("gang", "a", replicas=2, priority=5)], held)
    assert admitted_names(result) == ["gang"]
    assert sorted(evicted_names(result)) == ["a", "b"]
    assert result.admitted[0].assignments[0].cluster == "x"
    # y's node stays busy: the pass gave back only the victims' GPUs.
    assert [int(f) for f in result.session.state.node_free] == [0, 0, 0]
