"""GPU profiles render into the Node objects the lab creates (pure; no clusters needed)."""

from __future__ import annotations

from pathlib import Path

import pytest

from fleetplane_lab import available_profiles, default_spokes, render_nodes
from fleetplane_lab.profiles import ProfileError


def test_bundled_profiles_cover_reserved_spot_and_on_demand_capacity() -> None:
    assert {"h100-reserved", "a100-spot", "l4-ondemand"} <= set(available_profiles())
    kinds = {
        n["metadata"]["labels"]["karpenter.sh/capacity-type"]
        for n in render_nodes("s", ["h100-reserved", "a100-spot", "l4-ondemand"])
    }
    assert kinds == {"reserved", "spot", "on-demand"}


def test_a_rendered_node_has_gfd_labels_gpu_capacity_and_the_kwok_annotation() -> None:
    node = render_nodes("spoke-1", ["h100-reserved"])[0]
    md, st = node["metadata"], node["status"]
    assert md["name"] == "spoke-1-h100-reserved-0"
    assert md["labels"]["nvidia.com/gpu.product"] == "NVIDIA-H100-80GB-HBM3"
    assert md["labels"]["nvidia.com/gpu.memory"] == "81559"
    assert md["annotations"]["kwok.x-k8s.io/node"] == "fake"
    assert md["annotations"]["fleetplane.io/price-per-gpu-hour"] == "2.50"
    assert st["capacity"]["nvidia.com/gpu"] == st["allocatable"]["nvidia.com/gpu"] == "8"
    assert node["spec"]["taints"] == [{"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"}]


def test_a_spoke_region_moves_every_pool_and_keeps_zone_letters() -> None:
    zones = {
        n["metadata"]["labels"]["topology.kubernetes.io/zone"]
        for n in render_nodes("s", ["h100-reserved", "l4-ondemand"], region="eu-west-1")
    }
    assert zones == {"eu-west-1a", "eu-west-1c"}


def test_default_spokes_differ_in_region_and_gpu_mix() -> None:
    s = default_spokes(3)
    assert [x.name for x in s] == ["spoke-1", "spoke-2", "spoke-3"]
    assert len({x.region for x in s}) == 3
    assert len({tuple(x.profiles) for x in s}) == 3


def test_a_profile_with_an_unknown_capacity_type_is_rejected_with_the_pool_name(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "pools: [{name: p1, count: 1, gpusPerNode: 1, product: X, gpuMemoryMiB: 1,"
        " capacityType: preemptible, region: r, zone: ra}]"
    )
    with pytest.raises(ProfileError, match=r"p1.*preemptible"):
        render_nodes("s", [str(bad)])


def test_an_unknown_profile_name_lists_the_bundled_ones() -> None:
    with pytest.raises(ProfileError, match="h100-reserved"):
        render_nodes("s", ["h200-imaginary"])
