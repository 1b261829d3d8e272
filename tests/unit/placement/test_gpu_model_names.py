"""One normalisation of GPU model names: "A100-80GB" and "A100" with 80 GiB are the same GPU
for the agent's reports, the engine's matching and the hub's validation."""

from __future__ import annotations

import pytest
from placement_builders import a_cluster, a_workload, fleet, place_one
from test_placement_manifests import cluster, convert, workload

from fleetplane_types.gpus import canonical_model, catalogue_memory, split_model
from placement import PlacementInputError
from spoke_agent.capacity import gpu_model


@pytest.mark.parametrize(
    ("name", "family", "memory"),
    [
        ("A100-80GB", "A100", 80),
        ("a100_80gb", "A100", 80),
        ("A100 80GiB", "A100", 80),
        ("A100", "A100", None),
        ("h100", "H100", None),
        ("MI300X", "MI300X", None),
        ("80GB", "80GB", None),  # no family before the size: the name is kept whole
    ],
)
def test_a_model_name_splits_into_family_and_stated_memory(name: str, family: str, memory: int | None) -> None:
    assert split_model(name) == (family, memory)
    assert canonical_model(name) == family


def test_catalogue_memory_prefers_the_stated_size_then_the_catalogue() -> None:
    assert (catalogue_memory("A100-80GB"), catalogue_memory("A100"), catalogue_memory("NEW-GPU")) == (80, 40, None)


@pytest.mark.parametrize(
    ("pool_model", "pool_memory", "asked", "fits"),
    [
        ("A100-80GB", 0.0, ["A100-80GB"], True),
        ("A100", 80.0, ["A100-80GB"], True),  # the same GPU, said the other way
        ("A100-80GB", 0.0, ["A100"], True),  # a family request takes any size
        ("A100", 40.0, ["A100-80GB"], False),  # 40 GiB does not meet "80GB"
        ("A100", 40.0, ["A100-80GB", "A100"], True),  # the loosest request of a family wins
        ("A100-40GB", 0.0, ["a100_80gb"], False),
        ("H100", 80.0, ["A100-80GB"], False),  # another family
    ],
)
def test_a_request_matches_pools_by_family_and_stated_memory(
    pool_model: str, pool_memory: float, asked: list[str], fits: bool
) -> None:
    snap = fleet(a_cluster("c").pool(pool_model, memory=pool_memory))
    d = place_one(snap, a_workload(models=tuple(asked)))
    assert bool(d.assignments) is fits


def test_the_hub_validation_accepts_a_sized_name_of_a_known_family() -> None:
    _, [req] = convert(cluster(), workload(gpu={"count": 8, "models": ["A100-80GB"]}))
    assert req.models == ("A100-80GB",)
    with pytest.raises(PlacementInputError, match=r"spec\.gpu\.models"):
        convert(cluster(), workload(gpu={"count": 8, "models": ["A1000-80GB"]}))


def test_the_agent_reports_the_same_family_the_engine_matches() -> None:
    for labels in (
        {"nvidia.com/gpu.product": "NVIDIA-A100-SXM4-80GB"},
        {"nvidia.com/gpu.product": "NVIDIA-A100-80GB-PCIe"},
        {"karpenter.k8s.aws/instance-gpu-name": "a100"},
    ):
        assert gpu_model(labels) == canonical_model("A100-80GB") == "A100"
