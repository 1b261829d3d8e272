"""Kube-style manifests → engine inputs, and bad input → an error naming object and field."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from placement import CapacityPolicy, PlacementInputError
from placement.manifests import inputs_from_manifests, load_documents, load_inputs, parse_objects


def cluster(name: str = "east", **status: Any) -> dict[str, Any]:
    return {
        "apiVersion": "fleetplane.io/v1alpha1",
        "kind": "Cluster",
        "metadata": {"name": name, "labels": {"env": "prod"}},
        "spec": {"region": "us-east-1", "zone": "us-east-1a", "prices": {"spot": 1.1}},
        "status": {
            "conditions": [{"type": "Ready", "status": "True"}],
            "gpuPools": [
                {
                    "name": "h100",
                    "model": "H100",
                    "capacityType": "spot",
                    "gpusPerNode": 8,
                    "nodes": [
                        {"name": "n0", "gpus": 8, "free": 8},
                        {"name": "n1", "gpus": 8, "free": 8, "ready": False},
                    ],
                }
            ],
            **status,
        },
    }


def workload(name: str = "train-a", **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "fleetplane.io/v1alpha1",
        "kind": "Workload",
        "metadata": {"name": name, "namespace": "ml"},
        "spec": {
            "manifests": [{"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name}}],
            "gpu": {"count": 8, "models": ["H100"]},
            **spec,
        },
    }


TOPOLOGY = {
    "apiVersion": "fleetplane.io/v1alpha1",
    "kind": "Topology",
    "metadata": {"name": "net"},
    "spec": {
        "sites": [
            {"name": "us-east-1", "type": "region"},
            {"name": "us-east-1a", "type": "zone", "parent": "us-east-1"},
        ],
        "links": [],
    },
}
DATASET = {
    "apiVersion": "fleetplane.io/v1alpha1",
    "kind": "Dataset",
    "metadata": {"name": "corpus", "namespace": "ml"},
    "spec": {"sizeGiB": 100, "locations": [{"site": "us-east-1"}]},
}


def convert(*docs: dict[str, Any]) -> Any:
    return inputs_from_manifests(parse_objects(list(docs)))


def test_clusters_convert_with_site_prices_readiness_and_usable_free_gpus() -> None:
    snap, _ = convert(cluster(), TOPOLOGY)
    c = snap.clusters[0]
    assert (c.ready, c.labels, snap.cluster_site(c)) == (True, {"env": "prod"}, "us-east-1a")
    pool = c.pools[0]
    # No pool price: the cluster's spec.prices for spot applies; memory from the catalogue.
    assert (pool.price_per_gpu_hour, pool.memory_gib, pool.capacity_type) == (1.1, 80.0, "spot")
    assert pool.free == 8  # the NotReady node's free GPUs are not offered


def test_a_cluster_without_a_ready_condition_is_not_ready() -> None:
    snap, _ = convert(cluster(conditions=[]))
    assert (snap.clusters[0].ready, snap.clusters[0].not_ready_reason) == (False, "no Ready condition reported")


@pytest.mark.parametrize(
    ("capacity_types", "policy"),
    [
        ({"allowed": ["on-demand", "reserved"]}, CapacityPolicy.ON_DEMAND_ONLY),
        ({"allowed": ["reserved"]}, CapacityPolicy.ON_DEMAND_ONLY),
        ({"allowed": ["spot", "on-demand"]}, CapacityPolicy.SPOT_ALLOWED),
        ({"allowed": ["spot", "on-demand"], "preferred": ["spot"]}, CapacityPolicy.SPOT_PREFERRED),
    ],
)
def test_capacity_types_map_to_the_three_policies(capacity_types: dict[str, Any], policy: CapacityPolicy) -> None:
    _, [w] = convert(cluster(), workload(capacityTypes=capacity_types))
    assert w.capacity_policy is policy
    assert w.allowed == frozenset(capacity_types["allowed"])


def test_workload_fields_map_onto_the_request() -> None:
    _, [w] = convert(
        cluster(),
        TOPOLOGY,
        DATASET,
        workload(
            replicas=4,
            placementMode="Divisible",
            maxClusters=2,
            priority=7,
            datasets=[{"name": "corpus"}],
            clusterSelector={"matchLabels": {"env": "prod"}, "matchExpressions": [{"key": "x", "operator": "Exists"}]},
            tolerations=[{"key": "dedicated", "operator": "Exists"}],
        ),
    )
    assert (w.key, w.replicas, w.gpus_per_replica, w.mode, w.max_clusters, w.priority) == (
        "ml/train-a",
        4,
        8,
        "Divisible",
        2,
        7,
    )
    assert w.datasets == ("ml/corpus",)
    assert w.selector is not None and w.selector.matches({"env": "prod", "x": "1"})
    assert w.tolerations[0].key == "dedicated"


def with_(doc: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    out = copy.deepcopy(doc)
    node: Any = out
    keys = [int(k) if k.isdigit() else k for k in path.split(".")]
    for k in keys[:-1]:
        node = node[k]
    node[keys[-1]] = value
    return out


@pytest.mark.parametrize(
    ("docs", "message"),
    [
        (
            [with_(cluster(), "status.gpuPools.0.nodes.0.free", -1)],
            'Cluster "east": status.gpuPools[0].nodes[0].free: Input should be greater than or equal to 0',
        ),
        (
            [with_(cluster(), "status.gpuPools.0.nodes.0.free", 9)],
            'Cluster "east": status.gpuPools[0].nodes[0].free: 9 free exceeds the node\'s 8 GPUs',
        ),
        (
            [cluster(), workload(gpu={"count": -2})],
            'Workload "train-a": spec.gpu.count: Input should be greater than or equal to 0',
        ),
        (
            [cluster(), workload(gpu={"count": 8, "models": ["H1000"]})],
            'Workload "train-a": spec.gpu.models[0]: unknown GPU model "H1000"',
        ),
        (
            [cluster(), workload(gpu={"count": 8, "models": ["H100"], "preferredModels": ["L4"]})],
            'Workload "train-a": spec.gpu.preferredModels[0]: "L4" is not among spec.gpu.models',
        ),
        (
            [cluster(), workload(datasets=[{"name": "nope"}])],
            'Workload "train-a": spec.datasets[0]: unknown Dataset "ml/nope"',
        ),
        (
            [cluster(), TOPOLOGY, with_(DATASET, "spec.locations.0.site", "mars")],
            'Dataset "corpus": spec.locations[0].site: unknown topology site "mars"',
        ),
        (
            [with_(TOPOLOGY, "spec.links", [{"from": "us-east-1", "to": "eu-west-9", "bandwidthGbps": 1}])],
            'Topology "net": spec.links[0].to: unknown site "eu-west-9"',
        ),
        (
            [TOPOLOGY, with_(cluster(), "spec.site", "atlantis")],
            'Cluster "east": spec.site: unknown topology site "atlantis"',
        ),
        (
            [{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}}],
            "ConfigMap \"x\": kind: unsupported kind 'ConfigMap'",
        ),
    ],
)
def test_bad_input_names_the_object_and_the_field(docs: list[dict[str, Any]], message: str) -> None:
    with pytest.raises(PlacementInputError) as e:
        convert(*docs)
    assert str(e.value).startswith(message), str(e.value)


def test_malformed_yaml_names_the_file_line_and_column(tmp_path: Path) -> None:
    bad = tmp_path / "fleet.yaml"
    bad.write_text("kind: Cluster\nmetadata:\n  name: [unclosed\n")
    with pytest.raises(PlacementInputError) as e:
        load_documents([bad])
    assert str(e.value).startswith(f'File "{bad}": line ')
    assert "malformed YAML" in str(e.value)


def test_kind_list_documents_are_unpacked(tmp_path: Path) -> None:
    import yaml

    f = tmp_path / "all.yaml"
    f.write_text(yaml.safe_dump({"apiVersion": "v1", "kind": "List", "items": [cluster("a"), cluster("b")]}))
    snap, workloads = load_inputs([f])
    assert [c.name for c in snap.clusters] == ["a", "b"] and workloads == []
