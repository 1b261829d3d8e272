"""The tricky cases end to end: fragmentation, gangs, divisible spread, spot policy,
reserved capacity, data gravity vs price, pending reasons, batches and reservations.

Totals are Σ weight × raw with the default profile: taints 1, gpu-model 1,
capacity-type 1, cost 3, spot-risk 2, locality 2, packing 0.5 (spreading 0).
"""

from __future__ import annotations

import pytest
from placement_builders import (
    SPOT_OK,
    a_cluster,
    a_workload,
    fleet,
    place,
    place_one,
    placed_on,
    raw_scores,
    removed,
    two_regions,
)

from placement import PROFILES, Dataset, Engine, Reservation


def test_sixteen_free_gpus_over_eight_nodes_cannot_host_one_eight_gpu_replica() -> None:
    snap = fleet(a_cluster("fragmented").pool(nodes=8, free=2), a_cluster("whole").pool(nodes=1, free=8, price=9.0))
    d = place_one(snap, a_workload(gpus=8))
    # Fragmented is cheaper ($4 vs $9) but has no node with 8 free; only whole can host it.
    assert placed_on(d) == {"whole": 1}
    assert removed(d)["fragmented"] == ("gpu-fit", "no node with 8 free GPUs")


def test_a_gang_goes_to_the_one_cluster_where_all_replicas_fit_at_once() -> None:
    snap = fleet(
        a_cluster("a").pool(nodes=3, price=1.0),  # room for 3 × 8 — one short
        a_cluster("b").pool(nodes=3, price=1.0),  # room for 3 × 8 — one short
        a_cluster("c").pool(nodes=4, price=5.0),  # the only one with room for 4
    )
    d = place_one(snap, a_workload(gpus=8, replicas=4))
    assert placed_on(d) == {"c": 4}
    assert removed(d)["a"] == ("gpu-fit", "no room for all 4 replicas of 8 GPUs")
    # Together a and b have room for 6, but a gang never splits.
    assert len(set(d.assignments[0].nodes)) == 4


def test_a_divisible_workload_spreads_over_clusters_best_first() -> None:
    snap = fleet(
        a_cluster("cheap").pool(nodes=2, price=1.0),  # room for 2
        a_cluster("mid").pool(nodes=2, price=2.0),  # room for 2
        a_cluster("dear").pool(nodes=4, price=6.0),  # room for 4
    )
    d = place_one(snap, a_workload(gpus=8, replicas=3, mode="Divisible"))
    assert placed_on(d) == {"cheap": 2, "mid": 1}


def test_a_divisible_workload_uses_roomier_clusters_when_max_clusters_demands_it() -> None:
    snap = fleet(
        a_cluster("cheap").pool(nodes=1, price=1.0),
        a_cluster("mid").pool(nodes=1, price=2.0),
        a_cluster("dear").pool(nodes=4, price=6.0),
    )
    d = place_one(snap, a_workload(gpus=8, replicas=4, mode="Divisible", max_clusters=2))
    # Best-first (cheap 1 + mid 1) leaves 2 unplaced within 2 clusters; dear alone has 4.
    assert sum(placed_on(d).values()) == 4
    assert len(placed_on(d)) <= 2
    assert "dear" in placed_on(d)


def test_a_divisible_workload_that_cannot_fit_within_max_clusters_stays_pending_and_says_so() -> None:
    snap = fleet(*(a_cluster(f"c{i}").pool(nodes=1) for i in range(3)))
    d = place_one(snap, a_workload(gpus=8, replicas=3, mode="Divisible", max_clusters=2))
    assert not d.placed
    assert d.reason == "0/3 clusters: 3 feasible but together they have room for 2 of 3 replicas within maxClusters 2"


def test_spot_intolerant_work_never_lands_on_spot_however_cheap() -> None:
    snap = fleet(a_cluster("spot").pool(capacity="spot", price=0.1), a_cluster("od").pool(price=9.5))
    d = place_one(snap, a_workload())  # default policy: on-demand-only
    assert placed_on(d) == {"od": 1}
    assert removed(d)["spot"] == ("capacity-type", "spot not allowed")


def test_idle_reserved_capacity_beats_cheaper_spot_for_non_preemptible_work() -> None:
    # The reserved pool lists $3.20 (more than spot's $1.00), but it is already paid for.
    # reserved: cost 100×3=300, spot-risk 100×2=200
    # spot:     cost 100×(1−1.0/10)=90 ×3=270, spot-risk 100×0.95^4=81.450625 ×2=162.90125
    # packing is 100×0.5=50 for both (all 32 GPUs used after placing), so reserved leads by 500 − 432.90125 = 67.09875.
    snap = fleet(
        a_cluster("reserved").pool(nodes=4, capacity="reserved", price=3.2),
        a_cluster("spot").pool(nodes=4, capacity="spot", price=1.0),
    )
    d = place_one(snap, a_workload(replicas=4, capacity_policy=SPOT_OK))
    assert placed_on(d) == {"reserved": 4}
    assert d.assignments[0].capacity_type == "reserved"
    totals = {c["name"]: c["score"] for c in d.to_dict()["clusters"]}
    assert totals["reserved"] - totals["spot"] == pytest.approx((300 + 200) - (270 + 162.90125), abs=1e-2)


def test_within_a_cluster_idle_reserved_capacity_is_used_before_on_demand() -> None:
    snap = fleet(a_cluster("c").pool(capacity="on-demand", price=2.0).pool(capacity="reserved", price=4.0))
    d = place_one(snap, a_workload())
    assert d.assignments[0].capacity_type == "reserved"


# Data gravity. 10,000 GiB = 10,737.4 GB sit in "east"; "west" is one 10 Gbit/s, $0.02/GB hop:
#   egress 10,737.4 × 0.02 = $214.75 → 0.2147;  hours 10,737.4 × 8 / 10 / 3600 = 2.386 h → 0.2386
#   locality(west) = 100 × (1 − 0.2147 − 0.2386) = 54.67;  locality(east) = 100
#   weighted gap = (100 − 54.67) × 2 = 90.66 in favour of east.
# A price gap of Δ $/GPU-h is worth Δ × 10 × 3 = 30Δ weighted, so west wins only when it is
# more than 90.66 / 30 ≈ $3.02/GPU-hour cheaper.
@pytest.mark.parametrize(
    ("west_price", "winner"),
    [
        (5.80, "east"),  # $0.20 cheaper: 6 weighted < 90.66 → data gravity wins
        (3.50, "east"),  # $2.50 cheaper: 75 < 90.66
        (2.50, "west"),  # $3.50 cheaper: 105 > 90.66 → price wins
        (1.00, "west"),  # $5.00 cheaper: 150 > 90.66
    ],
)
def test_data_gravity_outweighs_a_small_price_difference_but_not_a_large_one(west_price: float, winner: str) -> None:
    ds = Dataset("corpus", 10_000, ("east",))
    snap = fleet(
        a_cluster("east").pool(price=6.0).at("east"),
        a_cluster("west").pool(price=west_price).at("west"),
        topology=two_regions(),
        datasets=[ds],
    )
    d = place_one(snap, a_workload(datasets=(ds.key,)))
    assert placed_on(d) == {winner: 1}
    assert raw_scores(d)["west"]["locality"] == pytest.approx(54.67, abs=0.01)


def test_a_pending_workload_summarises_why_each_cluster_was_removed() -> None:
    snap = fleet(
        *(a_cluster(f"frag{i}").pool("H100", nodes=4, free=2) for i in range(7)),
        *(a_cluster(f"spot{i}").pool("H100", capacity="spot", price=1.0) for i in range(3)),
        *(a_cluster(f"down{i}").pool("H100").not_ready() for i in range(2)),
    )
    d = place_one(snap, a_workload(gpus=8, models=("H100",)))
    assert not d.placed
    assert d.reason == "0/12 clusters: 7 no node with 8 free H100, 3 spot not allowed, 2 NotReady"
    assert d.to_dict()["clustersFeasible"] == 0


def test_ties_break_by_cluster_name() -> None:
    snap = fleet(a_cluster("zeta").pool(), a_cluster("alpha").pool(), a_cluster("mid").pool())
    assert placed_on(place_one(snap, a_workload())) == {"alpha": 1}


def test_a_batch_places_higher_priority_first_and_each_decision_sees_the_previous_ones() -> None:
    snap = fleet(a_cluster("only").pool(nodes=1))
    low, high = a_workload("low", priority=1), a_workload("high", priority=9)
    decisions = place(snap, low, high)
    assert [(d.workload.name, d.placed) for d in decisions] == [("high", True), ("low", False)]
    assert decisions[1].reason == "0/1 clusters: 1 no node with 8 free GPUs"


def test_in_flight_reservations_are_never_double_booked() -> None:
    snap = fleet(a_cluster("a").pool(nodes=2, name="gpu"), a_cluster("b").pool(nodes=1, price=9.0, name="gpu"))
    first = place_one(snap, a_workload("first", replicas=2))
    assert placed_on(first) == {"a": 2}
    # The same snapshot (the cluster has not reported the placement yet) plus the reservation:
    d = place(snap, a_workload("second"), reservations=first.reservations())[0]
    assert placed_on(d) == {"b": 1}


def test_reservations_without_nodes_are_booked_by_best_fit() -> None:
    snap = fleet(a_cluster("a").pool(nodes=2, free=[8, 4], name="gpu"))
    # 4 GPUs reserved, node unknown: best fit takes the 4-free node, leaving the 8.
    held = [Reservation("ns/held", "a", "gpu", gpus_per_replica=4)]
    d = place(snap, a_workload(gpus=8), reservations=held)[0]
    assert placed_on(d) == {"a": 1}
    held.append(Reservation("ns/held2", "a", "gpu", gpus_per_replica=2))
    assert not place(snap, a_workload(gpus=8), reservations=held)[0].placed


def test_reservations_on_unknown_clusters_hold_nothing_and_are_reported() -> None:
    snap = fleet(a_cluster("a").pool(name="gpu"))
    session = Engine().session(snap, [Reservation("ns/gone", "deleted-cluster", "gpu", 8)])
    assert session.place(a_workload()).placed
    assert [r.cluster for r in session.ignored_reservations] == ["deleted-cluster"]


def test_weight_zero_disables_a_plugin_entirely() -> None:
    snap = fleet(a_cluster("cheap").pool(price=1.0), a_cluster("dear").pool(price=9.0))
    no_cost = Engine(PROFILES["default"].with_weights(cost=0))
    d = no_cost.place_batch(snap, [a_workload()])[0]
    assert "cost" not in {p["name"] for c in d.to_dict()["clusters"] for p in c["plugins"]}
    # Without cost the two clusters tie, and the tie goes to the first name.
    assert placed_on(d) == {"cheap": 1}
    assert placed_on(place_one(snap, a_workload())) == {"cheap": 1}


def test_a_workload_without_gpus_goes_to_a_healthy_cluster_without_booking_gpus() -> None:
    snap = fleet(a_cluster("down").pool().not_ready(), a_cluster("up"))
    d = place_one(snap, a_workload(gpus=0, replicas=3))
    assert placed_on(d) == {"up": 3}
    assert d.reservations() == []


def test_the_explanation_lists_every_cluster_with_scores_or_the_filter_that_removed_it() -> None:
    snap = fleet(a_cluster("ok").pool(), a_cluster("down").pool().not_ready(), a_cluster("l4").pool("L4"))
    doc = place_one(snap, a_workload(models=("H100",))).to_dict()
    rows = {c["name"]: c for c in doc["clusters"]}
    assert set(rows) == {"ok", "down", "l4"}
    ok = rows["ok"]
    assert ok["rank"] == 1 and ok["pool"] and ok["capacityType"] == "on-demand"
    assert sum(p["contribution"] for p in ok["plugins"]) == pytest.approx(ok["score"], abs=0.01)
    assert all(p["contribution"] == pytest.approx(p["score"] * p["weight"], abs=0.01) for p in ok["plugins"])
    assert rows["down"]["filter"] == "health" and rows["l4"]["filter"] == "gpu-model"


def test_a_divisible_workload_can_spread_over_many_small_clusters() -> None:
    snap = fleet(*(a_cluster(f"c{i:02d}").pool(nodes=1, price=1.0 + i / 10) for i in range(12)))
    d = place_one(snap, a_workload(gpus=8, replicas=10, mode="Divisible"))
    # Ten clusters with room for one replica each, cheapest (lowest index) first.
    assert placed_on(d) == {f"c{i:02d}": 1 for i in range(10)}
