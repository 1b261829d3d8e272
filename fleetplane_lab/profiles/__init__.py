"""GPU node profiles: YAML descriptions of node pools, rendered into fake Node objects.

A profile (<name>.yaml beside this file, or any path) lists node pools: how many nodes,
GPUs per node, and the labels real GPU nodes carry. Rendering is pure (no I/O besides
reading the YAML) so the local lab, the kind script and tests all produce identical nodes.

Label sources, so readers can check them against real clusters:
- nvidia.com/gpu.product, .memory (MiB), .count, .family, .present: NVIDIA GPU feature
  discovery (gpu-feature-discovery / gpu-operator).
- karpenter.sh/capacity-type (spot | on-demand | reserved), karpenter.sh/nodepool: Karpenter.
- topology.kubernetes.io/region|zone, node.kubernetes.io/instance-type: well-known labels
  set by cloud providers.
- kwok.x-k8s.io/node=fake (annotation): the selector kwok manages nodes by.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from fleetplane_types import names

PROFILES_DIR = Path(__file__).parent
KWOK_ANNOTATION = "kwok.x-k8s.io/node"
PRICE_ANNOTATION = names.PRICE_ANNOTATION
GPU_RESOURCE = "nvidia.com/gpu"
CAPACITY_TYPES = ("spot", "on-demand", "reserved")


class ProfileError(ValueError):
    """A profile is malformed or unknown. Not retryable: fix the YAML or the name."""


@dataclass(frozen=True)
class NodePool:
    name: str
    count: int
    gpus_per_node: int
    product: str
    gpu_memory_mib: int
    capacity_type: str
    region: str
    zone: str
    gpu_family: str = ""
    instance_type: str = ""
    cpu: str = "64"
    memory: str = "512Gi"
    pods: str = "110"
    price_per_gpu_hour: str | None = None
    taints: tuple[dict[str, str], ...] = ()
    labels: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, d: dict[str, Any], source: str) -> NodePool:
        try:
            pool = cls(
                name=str(d["name"]),
                count=int(d["count"]),
                gpus_per_node=int(d["gpusPerNode"]),
                product=str(d["product"]),
                gpu_memory_mib=int(d["gpuMemoryMiB"]),
                capacity_type=str(d["capacityType"]),
                region=str(d["region"]),
                zone=str(d["zone"]),
                gpu_family=str(d.get("gpuFamily", "")),
                instance_type=str(d.get("instanceType", "")),
                cpu=str(d.get("cpu", "64")),
                memory=str(d.get("memory", "512Gi")),
                pods=str(d.get("pods", "110")),
                price_per_gpu_hour=(str(d["pricePerGpuHour"]) if "pricePerGpuHour" in d else None),
                taints=tuple(dict(t) for t in d.get("taints", []) or []),
                labels={str(k): str(v) for k, v in (d.get("labels") or {}).items()},
            )
        except KeyError as e:
            raise ProfileError(f"{source}: node pool {d.get('name', '?')!r} lacks field {e.args[0]!r}") from None
        if pool.capacity_type not in CAPACITY_TYPES:
            raise ProfileError(
                f"{source}: pool {pool.name!r} has capacityType {pool.capacity_type!r}; "
                f"use one of {', '.join(CAPACITY_TYPES)}"
            )
        return pool


@dataclass(frozen=True)
class Profile:
    name: str
    pools: tuple[NodePool, ...]


def available_profiles() -> list[str]:
    return sorted(p.stem for p in PROFILES_DIR.glob("*.yaml"))


def load_profile(name_or_path: str) -> Profile:
    """Load a bundled profile by name (h100-reserved) or any profile YAML by path."""
    path = Path(name_or_path)
    if not path.suffix:
        path = PROFILES_DIR / f"{name_or_path}.yaml"
    if not path.is_file():
        raise ProfileError(
            f"unknown GPU profile {name_or_path!r}: not a file and not one of {', '.join(available_profiles())}"
        )
    doc = yaml.safe_load(path.read_text()) or {}
    pools = tuple(NodePool.from_dict(p, str(path)) for p in doc.get("pools", []))
    if not pools:
        raise ProfileError(f"{path}: a profile needs at least one entry under 'pools'")
    return Profile(name=str(doc.get("name", path.stem)), pools=pools)


def _zone_in(region: str, zone: str) -> str:
    # Keep the pool's zone letter (us-east-1a -> <region>a) so pools stay in distinct zones.
    suffix = zone[-1] if zone and zone[-1].isalpha() else "a"
    return f"{region}{suffix}"


def render_nodes(spoke: str, profiles: list[str], region: str | None = None) -> list[dict[str, Any]]:
    """Node manifests (metadata, spec, status) for every pool of every profile.

    Node names are <spoke>-<pool>-<i> so they stay unique when the hub shows nodes of many
    spokes together. `region` moves all pools to that region, keeping their zone letters.
    """
    nodes: list[dict[str, Any]] = []
    seen: set[str] = set()
    for prof in (load_profile(p) for p in profiles):
        for pool in prof.pools:
            if pool.name in seen:
                raise ProfileError(f"spoke {spoke}: node pool {pool.name!r} appears in two profiles")
            seen.add(pool.name)
            reg = region or pool.region
            zone = _zone_in(region, pool.zone) if region else pool.zone
            for i in range(pool.count):
                name = f"{spoke}-{pool.name}-{i}"
                labels = {
                    "kubernetes.io/hostname": name,
                    "kubernetes.io/os": "linux",
                    "kubernetes.io/arch": "amd64",
                    "type": "kwok",
                    "topology.kubernetes.io/region": reg,
                    "topology.kubernetes.io/zone": zone,
                    "karpenter.sh/capacity-type": pool.capacity_type,
                    "karpenter.sh/nodepool": pool.name,
                    "nvidia.com/gpu.present": "true",
                    "nvidia.com/gpu.product": pool.product,
                    "nvidia.com/gpu.memory": str(pool.gpu_memory_mib),
                    "nvidia.com/gpu.count": str(pool.gpus_per_node),
                    **({"nvidia.com/gpu.family": pool.gpu_family} if pool.gpu_family else {}),
                    **({"node.kubernetes.io/instance-type": pool.instance_type} if pool.instance_type else {}),
                    **pool.labels,
                }
                annotations = {KWOK_ANNOTATION: "fake", "node.alpha.kubernetes.io/ttl": "0"}
                if pool.price_per_gpu_hour is not None:
                    annotations[PRICE_ANNOTATION] = pool.price_per_gpu_hour
                resources = {
                    "cpu": pool.cpu,
                    "memory": pool.memory,
                    "pods": pool.pods,
                    GPU_RESOURCE: str(pool.gpus_per_node),
                }
                nodes.append(
                    {
                        "apiVersion": "v1",
                        "kind": "Node",
                        "metadata": {"name": name, "labels": labels, "annotations": annotations},
                        "spec": {"taints": [dict(t) for t in pool.taints]} if pool.taints else {},
                        "status": {"capacity": dict(resources), "allocatable": dict(resources)},
                    }
                )
    return nodes


def main(argv: list[str] | None = None) -> None:
    """`python -m fleetplane_lab.profiles SPOKE PROFILE... [--region R]`: print a Node List as YAML.

    The kind script pipes this into kubectl so kind spokes get the same nodes as local ones.
    """
    import argparse

    ap = argparse.ArgumentParser(prog="python -m fleetplane_lab.profiles")
    ap.add_argument("spoke")
    ap.add_argument("profiles", nargs="+")
    ap.add_argument("--region")
    ns = ap.parse_args(argv)
    items = render_nodes(ns.spoke, ns.profiles, ns.region)
    print(yaml.safe_dump({"apiVersion": "v1", "kind": "List", "items": items}, sort_keys=False))
