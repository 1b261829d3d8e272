"""Each plugin on its own: what it removes and why, and the arithmetic of its raw score.

Raw scores are in [0, 100]; the default profile's weights are in placement/profiles.py
(cost 3, locality 2, spot-risk 2, gpu-model 1, capacity-type 1, taints 1, packing 0.5).
"""

from __future__ import annotations

import math

import pytest
from placement_builders import (
    SPOT_OK,
    SPOT_PREFERRED,
    a_cluster,
    a_workload,
    fleet,
    place_one,
    raw_scores,
    removed,
    two_regions,
)

from placement import Dataset, LabelRequirement, LabelSelector, Taint, Toleration

# ---------------------------------------------------------------- filters


def test_health_removes_not_ready_clusters_and_says_why() -> None:
    snap = fleet(a_cluster("ok").pool(), a_cluster("down").pool().not_ready("HeartbeatLost"))
    d = place_one(snap, a_workload())
    assert removed(d) == {"down": ("health", "NotReady")}
    assert "HeartbeatLost" in d.to_dict()["clusters"][1]["detail"]


@pytest.mark.parametrize(
    ("effect", "tolerations", "filtered"),
    [
        ("NoSchedule", (), True),
        ("NoExecute", (), True),
        ("NoSchedule", (Toleration("gpu", "Exists"),), False),
        ("NoSchedule", (Toleration("gpu", "Equal", "a100"),), True),  # value differs: not tolerated
        ("NoSchedule", (Toleration("gpu", "Equal", "h100"),), False),
        ("NoSchedule", (Toleration(None, "Exists"),), False),  # empty key + Exists tolerates all
        ("NoSchedule", (Toleration("gpu", "Exists", effect="NoExecute"),), True),  # wrong effect
        ("PreferNoSchedule", (), False),  # soft: scored, never removed
    ],
)
def test_taints_remove_clusters_only_for_untolerated_hard_taints(
    effect: str, tolerations: tuple[Toleration, ...], filtered: bool
) -> None:
    snap = fleet(a_cluster("tainted").pool().taint("gpu", effect, "h100"))
    d = place_one(snap, a_workload(tolerations=tolerations))
    assert ("tainted" in removed(d)) is filtered


def test_taints_score_an_untolerated_prefer_no_schedule_taint_zero() -> None:
    snap = fleet(a_cluster("soft").pool().taint("busy", "PreferNoSchedule"), a_cluster("clean").pool())
    d = place_one(snap, a_workload())
    scores = raw_scores(d)
    # Untolerated PreferNoSchedule → 0; no such taint → 100. Weighted gap 100 × 1 = 100.
    assert scores["soft"]["taints"] == 0.0
    assert scores["clean"]["taints"] == 100.0
    assert d.assignments[0].cluster == "clean"


def test_a_pool_taint_removes_only_that_pool_and_the_workload_lands_on_the_open_one() -> None:
    spot_only = (Taint("karpenter.sh/capacity-type", "NoSchedule", "spot"),)
    snap = fleet(
        a_cluster("mixed").pool("H100", capacity="spot", price=1.0, name="h100-spot", taints=spot_only),
        a_cluster("plain").pool("H100", price=4.0),
    )
    d = place_one(snap, a_workload(capacity_policy=SPOT_OK))
    # The cheaper spot pool is tainted and the workload does not tolerate it: the other cluster wins.
    assert d.assignments[0].cluster == "plain"
    assert removed(d)["mixed"] == ("pool-taints", "untolerated pool taint")
    [mixed] = [c for c in d.to_dict()["clusters"] if c["name"] == "mixed"]
    assert "h100-spot: karpenter.sh/capacity-type=spot:NoSchedule" in mixed["detail"]


def test_a_tolerated_pool_taint_keeps_the_pool() -> None:
    taints = (Taint("dedicated", "NoSchedule", "ml"),)
    snap = fleet(a_cluster("dedicated").pool("H100", taints=taints))
    tolerant = a_workload(tolerations=(Toleration("dedicated", "Equal", "ml"),))
    assert place_one(snap, tolerant).assignments[0].cluster == "dedicated"
    assert place_one(snap, a_workload()).assignments == ()


@pytest.mark.parametrize(
    ("taint", "gpus", "fits"),
    [
        (Taint("nvidia.com/gpu", "NoSchedule", "present"), 8, True),  # pods get the toleration (admission)
        (Taint("nvidia.com/gpu", "NoExecute", "present"), 8, False),  # the automatic one is NoSchedule only
        (Taint("dedicated", "NoSchedule", "ml"), 8, False),  # any other key still needs a toleration
    ],
)
def test_gpu_work_tolerates_the_gpu_resource_taint_its_pods_get_automatically(
    taint: Taint, gpus: int, fits: bool
) -> None:
    snap = fleet(a_cluster("gpu-nodes").pool("H100", taints=(taint,)))
    assert bool(place_one(snap, a_workload(gpus=gpus)).assignments) is fits


@pytest.mark.parametrize(
    ("selector", "expected"),
    [
        (LabelSelector.of({"env": "prod"}), {"prod-a", "prod-b"}),
        (LabelSelector.of({"env": "prod", "tier": "gold"}), {"prod-a"}),
        (LabelSelector.of(None, LabelRequirement("env", "In", ("staging", "dev"))), {"staging"}),
        # NotIn matches clusters without the label too (Kubernetes semantics).
        (LabelSelector.of(None, LabelRequirement("tier", "NotIn", ("gold",))), {"prod-b", "staging"}),
        (LabelSelector.of(None, LabelRequirement("tier", "Exists")), {"prod-a"}),
        (LabelSelector.of(None, LabelRequirement("tier", "DoesNotExist")), {"prod-b", "staging"}),
        (LabelSelector.of({"region": "mars"}), set()),  # a key nobody has
    ],
)
def test_selector_keeps_exactly_the_matching_clusters(selector: LabelSelector, expected: set[str]) -> None:
    snap = fleet(
        a_cluster("prod-a").pool().labels(env="prod", tier="gold"),
        a_cluster("prod-b").pool().labels(env="prod"),
        a_cluster("staging").pool().labels(env="staging"),
    )
    d = place_one(snap, a_workload(selector=selector))
    assert set(raw_scores(d)) == expected
    assert all(f == "selector" for f, _ in removed(d).values())


@pytest.mark.parametrize(
    ("models", "min_memory", "expected"),
    [
        ((), 0, {"h100", "a100-40", "l4"}),
        (("H100",), 0, {"h100"}),
        (("h100", "L4"), 0, {"h100", "l4"}),  # model names compare case-insensitively
        ((), 40, {"h100", "a100-40"}),
        ((), 41, {"h100"}),
        (("L4",), 40, set()),
    ],
)
def test_gpu_model_filter_checks_allowed_models_and_memory(
    models: tuple[str, ...], min_memory: float, expected: set[str]
) -> None:
    snap = fleet(
        a_cluster("h100").pool("H100", memory=80),
        a_cluster("a100-40").pool("A100", memory=40),
        a_cluster("l4").pool("L4", gpus_per_node=8, memory=24),
    )
    d = place_one(snap, a_workload(gpus=1, models=models, min_memory_gib=min_memory))
    assert set(raw_scores(d)) == expected
    assert {f for f, _ in removed(d).values()} <= {"gpu-model"}


def test_gpu_model_scores_preferred_models_100_and_others_0() -> None:
    snap = fleet(a_cluster("a").pool("A100"), a_cluster("h").pool("H100"))
    d = place_one(snap, a_workload(models=("A100", "H100"), preferred_models=("H100",)))
    assert {c: s["gpu-model"] for c, s in raw_scores(d).items()} == {"a": 0.0, "h": 100.0}


@pytest.mark.parametrize(
    ("policy", "expected"),
    [
        (None, {"od", "res"}),  # default on-demand-only: spot removed
        (SPOT_OK, {"spot", "od", "res"}),
        (SPOT_PREFERRED, {"spot", "od", "res"}),
    ],
)
def test_capacity_type_filter_follows_the_policy(policy: object, expected: set[str]) -> None:
    snap = fleet(
        a_cluster("spot").pool(capacity="spot", price=1.0),
        a_cluster("od").pool(capacity="on-demand"),
        a_cluster("res").pool(capacity="reserved"),
    )
    kw = {"capacity_policy": policy} if policy else {}
    d = place_one(snap, a_workload(**kw))
    assert set(raw_scores(d)) == expected
    if "spot" not in expected:
        assert removed(d)["spot"] == ("capacity-type", "spot not allowed")


def test_capacity_type_scores_spot_100_only_for_spot_preferred_work() -> None:
    snap = fleet(a_cluster("spot").pool(capacity="spot", price=1.0), a_cluster("od").pool())
    preferred = raw_scores(place_one(snap, a_workload(capacity_policy=SPOT_PREFERRED)))
    allowed = raw_scores(place_one(snap, a_workload(capacity_policy=SPOT_OK)))
    assert (preferred["spot"]["capacity-type"], preferred["od"]["capacity-type"]) == (100.0, 0.0)
    assert (allowed["spot"]["capacity-type"], allowed["od"]["capacity-type"]) == (100.0, 100.0)


@pytest.mark.parametrize(
    ("free_per_node", "gpus", "replicas", "mode", "fits"),
    [
        ([2] * 8, 8, 1, "Gang", False),  # 16 free GPUs over 8 nodes: no node with 8
        ([2] * 8, 2, 8, "Gang", True),  # …but eight 2-GPU replicas fit, one per node
        ([2] * 8, 2, 9, "Gang", False),  # a ninth does not
        ([8, 4], 4, 3, "Gang", True),  # 8 → two 4s, 4 → one: room for 3
        ([8, 4], 4, 4, "Gang", False),
        ([8, 4], 4, 4, "Divisible", True),  # divisible only needs room for one replica here
        ([3, 3, 3], 4, 1, "Divisible", False),
        ([0, 0], 1, 1, "Gang", False),
    ],
)
def test_gpu_fit_counts_only_whole_nodes(
    free_per_node: list[int], gpus: int, replicas: int, mode: str, fits: bool
) -> None:
    snap = fleet(a_cluster("c").pool(nodes=len(free_per_node), free=free_per_node))
    d = place_one(snap, a_workload(gpus=gpus, replicas=replicas, mode=mode))
    assert ("c" in raw_scores(d)) is fits
    if not fits:
        assert removed(d)["c"][0] == "gpu-fit"


@pytest.mark.parametrize(
    ("capacity", "price", "expected"),
    [
        ("on-demand", 4.0, 60.0),  # 100 × (1 − 4.00 / 10)
        ("on-demand", 2.5, 75.0),  # 100 × (1 − 2.50 / 10)
        ("spot", 1.2, 88.0),  # 100 × (1 − 1.20 / 10)
        ("reserved", 3.2, 100.0),  # reserved is already paid for: effective $0 → 100
        ("on-demand", 12.0, 0.0),  # above the ceiling: clipped to 0
        ("on-demand", None, 0.0),  # unknown price: scored as most expensive
    ],
)
def test_cost_scores_the_effective_price_per_gpu_hour(capacity: str, price: float | None, expected: float) -> None:
    snap = fleet(a_cluster("c").pool(capacity=capacity, price=price))  # type: ignore[arg-type]
    d = place_one(snap, a_workload(capacity_policy=SPOT_OK))
    assert raw_scores(d)["c"]["cost"] == pytest.approx(expected)


@pytest.mark.parametrize(
    ("capacity", "replicas", "policy", "expected"),
    [
        ("spot", 1, SPOT_OK, 95.0),  # 100 × 0.95^1
        ("spot", 4, SPOT_OK, 81.450625),  # 100 × 0.95^4
        ("spot", 8, SPOT_OK, 66.342),  # 100 × 0.95^8 ≈ 66.342
        ("spot", 4, SPOT_PREFERRED, 100.0),  # the workload asked for spot: no risk charged
        ("on-demand", 4, SPOT_OK, 100.0),
    ],
)
def test_spot_risk_grows_with_the_replicas_on_spot(
    capacity: str, replicas: int, policy: object, expected: float
) -> None:
    snap = fleet(a_cluster("c").pool(nodes=8, capacity=capacity, price=1.0))  # type: ignore[arg-type]
    d = place_one(snap, a_workload(replicas=replicas, capacity_policy=policy))
    assert raw_scores(d)["c"]["spot-risk"] == pytest.approx(expected, abs=1e-3)


def test_locality_scores_transfer_money_and_time_of_the_nearest_replica() -> None:
    # 1000 GiB = 1073.74 GB. east→west over 10 Gbit/s at $0.02/GB:
    #   egress = 1073.74 × 0.02 = $21.47 → 21.47 / 1000 = 0.02147
    #   hours  = 1073.74 × 8 / 10 / 3600 = 0.2386 h → 0.2386 / 10 = 0.02386
    #   raw    = 100 × (1 − 0.02147 − 0.02386) = 95.47
    ds = Dataset("corpus", 1000, ("east",))
    snap = fleet(
        a_cluster("local").pool().at("east"),
        a_cluster("remote").pool().at("west"),
        a_cluster("island").pool().at("far"),  # no link to far: unreachable
        topology=two_regions(),
        datasets=[ds],
    )
    d = place_one(snap, a_workload(datasets=(ds.key,)))
    scores = {c: s["locality"] for c, s in raw_scores(d).items()}
    gb = 1000 * 1.073741824
    expected_remote = 100 * (1 - gb * 0.02 / 1000 - gb * 8 / 10 / 3600 / 10)
    assert scores["local"] == 100.0
    assert scores["remote"] == pytest.approx(expected_remote, abs=1e-3)
    assert math.isclose(expected_remote, 95.47, abs_tol=0.01)
    assert scores["island"] == 0.0


def test_locality_reads_each_dataset_from_its_cheapest_replica() -> None:
    ds = Dataset("corpus", 1000, ("east", "west"))  # a copy on both sides of the link
    snap = fleet(
        a_cluster("e").pool().at("east"), a_cluster("w").pool().at("west"), topology=two_regions(), datasets=[ds]
    )
    d = place_one(snap, a_workload(datasets=(ds.key,)))
    assert {c: s["locality"] for c, s in raw_scores(d).items()} == {"e": 100.0, "w": 100.0}


@pytest.mark.parametrize(
    ("profile", "plugin", "busy", "idle"),
    [
        # busy: 16 GPUs, 8 free; placing 8 → 16/16 used → 100. idle: 16 free → 8/16 → 50.
        ("default", "packing", 100.0, 50.0),
        ("spread", "spreading", 0.0, 50.0),
    ],
)
def test_packing_and_spreading_score_utilisation_after_placing(
    profile: str, plugin: str, busy: float, idle: float
) -> None:
    snap = fleet(a_cluster("busy").pool(nodes=2, free=[8, 0]), a_cluster("idle").pool(nodes=2))
    d = place_one(snap, a_workload(gpus=8), profile=profile)
    scores = raw_scores(d)
    assert (scores["busy"][plugin], scores["idle"][plugin]) == (busy, idle)
    assert d.assignments[0].cluster == ("busy" if plugin == "packing" else "idle")
