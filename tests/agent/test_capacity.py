"""Capacity from Node and Pod objects: table-driven, pure functions."""

from __future__ import annotations

import pytest

from fleetplane_types.v1alpha1 import ClusterStatus
from spoke_agent.capacity import (
    capacity_type,
    compute_capacity,
    gpu_memory_gib,
    gpu_model,
    pod_gpu_request,
    slim_node,
    slim_pod,
)

from .builders import a_node, a_pod


@pytest.mark.parametrize(
    ("labels", "expected"),
    [
        ({"karpenter.sh/capacity-type": "spot"}, "spot"),
        ({"karpenter.sh/capacity-type": "on-demand"}, "on-demand"),
        ({"karpenter.sh/capacity-type": "reserved"}, "reserved"),
        ({"eks.amazonaws.com/capacityType": "SPOT"}, "spot"),
        ({"eks.amazonaws.com/capacityType": "ON_DEMAND"}, "on-demand"),
        ({"eks.amazonaws.com/capacityType": "CAPACITY_BLOCK"}, "reserved"),
        ({"cloud.google.com/gke-spot": "true"}, "spot"),
        ({"cloud.google.com/gke-preemptible": "true"}, "spot"),
        ({"cloud.google.com/reservation-name": "r1"}, "reserved"),
        ({"kubernetes.azure.com/scalesetpriority": "spot"}, "spot"),
        ({"kubernetes.azure.com/scalesetpriority": "regular"}, "on-demand"),
        ({"fleetplane.io/capacity-type": "reserved", "eks.amazonaws.com/capacityType": "SPOT"}, "reserved"),
        ({}, "on-demand"),
    ],
)
def test_capacity_type_is_read_from_each_providers_labels(labels: dict[str, str], expected: str) -> None:
    assert capacity_type(labels) == expected


@pytest.mark.parametrize(
    ("labels", "model", "memory"),
    [
        ({"nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3", "nvidia.com/gpu.memory": "81559"}, "H100", 80),
        ({"nvidia.com/gpu.product": "NVIDIA-A100-SXM4-40GB", "nvidia.com/gpu.memory": "40960"}, "A100", 40),
        ({"nvidia.com/gpu.product": "Tesla-T4"}, "T4", None),
        ({"nvidia.com/gpu.product": "NVIDIA-L4"}, "L4", None),
        ({"nvidia.com/gpu.product": "NVIDIA-A10G"}, "A10G", None),
        ({"nvidia.com/gpu.product": "H100"}, "H100", None),
        ({"cloud.google.com/gke-accelerator": "nvidia-tesla-a100"}, "A100", None),
        ({"cloud.google.com/gke-accelerator": "nvidia-h100-80gb"}, "H100", 80),
        ({"karpenter.k8s.aws/instance-gpu-name": "a10g", "karpenter.k8s.aws/instance-gpu-memory": "24576"}, "A10G", 24),
        ({}, "unknown", None),
    ],
)
def test_gpu_model_and_memory_come_from_discovery_labels(
    labels: dict[str, str], model: str, memory: int | None
) -> None:
    assert gpu_model(labels) == model
    assert gpu_memory_gib(labels) == memory


def test_limits_without_requests_count_and_init_containers_take_the_max() -> None:
    assert pod_gpu_request(a_pod("n", 2, use_limits=True), "nvidia.com/gpu") == 2
    pod = a_pod("n", 1)
    pod["spec"]["initContainers"] = [{"resources": {"limits": {"nvidia.com/gpu": "4"}}}]
    # max(sum of containers = 1, largest init container = 4) = 4
    assert pod_gpu_request(pod, "nvidia.com/gpu") == 4


# Each row: nodes, pods → (total, allocatable, allocated, free) summed over pools.
CASES = [
    pytest.param([a_node("n1").gpus(8)], [], (8, 8, 0, 8), id="idle node: all free"),
    pytest.param([a_node("n1").gpus(8)], [a_pod("n1", 3)], (8, 8, 3, 5), id="running pod holds its GPUs"),
    pytest.param(
        [a_node("n1").gpus(8)], [a_pod("n1", 3, "Pending")], (8, 8, 3, 5), id="bound pending pod holds its GPUs"
    ),
    pytest.param(
        [a_node("n1").gpus(8)],
        [a_pod("n1", 3, "Succeeded"), a_pod("n1", 2, "Failed")],
        (8, 8, 0, 8),
        id="terminal pods hold nothing",
    ),
    pytest.param([a_node("n1").gpus(8)], [a_pod(None, 4, "Pending")], (8, 8, 0, 8), id="unbound pod holds nothing"),
    pytest.param(
        [a_node("n1").gpus(8).cordoned()], [a_pod("n1", 2)], (8, 8, 2, 0), id="cordoned node offers no free GPUs"
    ),
    pytest.param([a_node("n1").gpus(8).not_ready()], [], (8, 8, 0, 0), id="NotReady node offers no free GPUs"),
    pytest.param(
        [a_node("n1").gpus(8).taint("node.kubernetes.io/unreachable", "NoExecute")],
        [],
        (8, 8, 0, 0),
        id="unreachable taint: no free GPUs",
    ),
    pytest.param(
        [a_node("n1").gpus(8).taint("nvidia.com/gpu")],
        [],
        (8, 8, 0, 8),
        id="the usual GPU taint does not hide capacity",
    ),
    pytest.param(
        [a_node("n1").gpus(8, allocatable=7)], [], (8, 7, 0, 7), id="allocatable below capacity (an unhealthy GPU)"
    ),
    pytest.param([a_node("n1")], [a_pod("n1", 1)], (0, 0, 0, 0), id="CPU-only node is not a pool"),
]


@pytest.mark.parametrize(("nodes", "pods", "expected"), CASES)
def test_pool_totals_match_what_nodes_and_pods_say(
    nodes: list, pods: list, expected: tuple[int, int, int, int]
) -> None:
    cap = compute_capacity([n.body for n in nodes], pods)
    got = (
        sum(p.total for p in cap.pools),
        sum(p.allocatable for p in cap.pools),
        sum(p.allocated for p in cap.pools),
        sum(p.free for p in cap.pools),
    )
    assert got == expected


def test_pools_split_by_model_and_capacity_type_with_free_per_node() -> None:
    nodes = [
        a_node("h1")
        .gpus(8)
        .product("NVIDIA-H100-80GB-HBM3", 81559)
        .label("karpenter.sh/capacity-type", "spot")
        .label("karpenter.sh/nodepool", "h100")
        .zone("us-east-1a", "us-east-1"),
        a_node("h2")
        .gpus(8)
        .product("NVIDIA-H100-80GB-HBM3", 81559)
        .label("karpenter.sh/capacity-type", "spot")
        .label("karpenter.sh/nodepool", "h100")
        .zone("us-east-1a", "us-east-1"),
        a_node("a1")
        .gpus(4)
        .product("NVIDIA-A100-SXM4-40GB")
        .label("eks.amazonaws.com/capacityType", "ON_DEMAND")
        .zone("us-east-1b", "us-east-1"),
        a_node("cpu").zone("us-east-1b", "us-east-1"),
    ]
    pods = [a_pod("h1", 6), a_pod("a1", 1)]
    cap = compute_capacity([n.body for n in nodes], pods)
    pools = {(p.model, p.capacity_type): p for p in cap.pools}
    assert set(pools) == {("H100", "spot"), ("A100", "on-demand")}
    h100 = pools[("H100", "spot")]
    assert (h100.total, h100.allocated, h100.free, h100.gpus_per_node, h100.memory_gib, h100.zone, h100.name) == (
        16,
        6,
        10,
        8,
        80,
        "us-east-1a",
        "h100",
    )
    assert {n.name: n.free for n in h100.nodes} == {"h1": 2, "h2": 8}
    assert (cap.total_gpus, cap.free_gpus, cap.region) == (20, 13, "us-east-1")


def test_status_validates_against_the_hub_api_types() -> None:
    nodes = [
        a_node("h1")
        .gpus(8)
        .product("NVIDIA-H100-80GB-HBM3", 81559)
        .label("karpenter.sh/capacity-type", "spot")
        .zone("z1", "r1")
    ]
    status = compute_capacity([n.body for n in nodes], [a_pod("h1", 2)]).to_status()
    parsed = ClusterStatus.model_validate(status)
    assert parsed.gpu_pools is not None and parsed.gpu_pools[0].free == 6
    assert parsed.free_gpus == 6 and parsed.total_gpus == 8


def test_other_extended_resources_named_in_config_are_counted() -> None:
    node = a_node("m1").gpus(4, resource="amd.com/gpu").label("amd.com/gpu.product-name", "MI300X")
    cap = compute_capacity(
        [node.body], [a_pod("m1", 1, resource="amd.com/gpu")], resources=["nvidia.com/gpu", "amd.com/gpu"]
    )
    assert [(p.model, p.total, p.free) for p in cap.pools] == [("MI300X", 4, 3)]


def test_slim_copies_give_the_same_capacity_as_full_objects() -> None:
    nodes = [a_node("n1").gpus(8).product("NVIDIA-L4").cordoned(), a_node("n2").gpus(8).product("NVIDIA-L4")]
    pods = [a_pod("n1", 2), a_pod("n2", 3), a_pod("n2", 1, "Succeeded")]
    full = compute_capacity([n.body for n in nodes], pods).to_status()
    slim = compute_capacity(
        [slim_node(n.body) for n in nodes], [p for p in (slim_pod(p, ["nvidia.com/gpu"]) for p in pods) if p]
    ).to_status()
    assert full == slim


def test_pool_price_and_common_taints_are_reported_from_nodes() -> None:
    nodes = []
    for i in range(3):
        n = (
            a_node(f"h{i}")
            .gpus(8)
            .product("H100")
            .label("karpenter.sh/capacity-type", "spot")
            .taint("nvidia.com/gpu")
            .body
        )
        # Two nodes advertise 2.1 $/GPU-h, one 9.9: the pool reports the common price.
        n["metadata"]["annotations"] = {"fleetplane.io/price-per-gpu-hour": "9.9" if i == 2 else "2.1"}
        nodes.append(slim_node(n))
    [pool] = compute_capacity(nodes, []).to_status()["gpuPools"]
    assert pool["pricePerGpuHour"] == 2.1
    assert pool["taints"] == [{"key": "nvidia.com/gpu", "effect": "NoSchedule"}]
    ClusterStatus.model_validate({"gpuPools": [pool]})
