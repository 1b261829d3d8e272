"""Small fluent builders for Node and Pod bodies (fixtures for the pure-function tests)."""

from __future__ import annotations

from typing import Any


class NodeBuilder:
    def __init__(self, name: str) -> None:
        self.body: dict[str, Any] = {
            "metadata": {"name": name, "labels": {}},
            "spec": {},
            "status": {"capacity": {}, "allocatable": {}, "conditions": [{"type": "Ready", "status": "True"}]},
        }

    def gpus(self, n: int, resource: str = "nvidia.com/gpu", allocatable: int | None = None) -> NodeBuilder:
        self.body["status"]["capacity"][resource] = str(n)
        self.body["status"]["allocatable"][resource] = str(n if allocatable is None else allocatable)
        return self

    def label(self, key: str, value: str) -> NodeBuilder:
        self.body["metadata"]["labels"][key] = value
        return self

    def product(self, product: str, memory_mib: int | None = None) -> NodeBuilder:
        self.label("nvidia.com/gpu.product", product)
        if memory_mib is not None:
            self.label("nvidia.com/gpu.memory", str(memory_mib))
        return self

    def zone(self, zone: str, region: str | None = None) -> NodeBuilder:
        self.label("topology.kubernetes.io/zone", zone)
        if region:
            self.label("topology.kubernetes.io/region", region)
        return self

    def cordoned(self) -> NodeBuilder:
        self.body["spec"]["unschedulable"] = True
        return self

    def not_ready(self) -> NodeBuilder:
        self.body["status"]["conditions"] = [{"type": "Ready", "status": "False"}]
        return self

    def taint(self, key: str, effect: str = "NoSchedule", value: str | None = None) -> NodeBuilder:
        self.body["spec"].setdefault("taints", []).append({"key": key, "value": value, "effect": effect})
        return self


def a_node(name: str) -> NodeBuilder:
    return NodeBuilder(name)


def a_pod(
    node: str | None, gpus: int, phase: str = "Running", resource: str = "nvidia.com/gpu", use_limits: bool = False
) -> dict[str, Any]:
    key = "limits" if use_limits else "requests"
    return {
        "metadata": {"name": f"pod-{node}-{gpus}-{phase}"},
        "spec": {"nodeName": node, "containers": [{"name": "c", "resources": {key: {resource: str(gpus)}}}]},
        "status": {"phase": phase},
    }
