"""Real kube-scheduler + kwok on two spokes: GPU requests land where GPUs are free, jobs
finish, and impossible requests stay Pending for the scheduler's stated reason."""

from __future__ import annotations

import json
import subprocess
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client

from fleetplane_lab.fixtures import SpokeHandle as Spoke
from fleetplane_testing import wait_until

pytestmark = pytest.mark.lab

GPU = "nvidia.com/gpu"
PRODUCT = "nvidia.com/gpu.product"
PREFERRED_PRODUCT = "NVIDIA-H100-80GB-HBM3"


@pytest.fixture
def namespace(spokes: list[Spoke]) -> Iterator[str]:
    """A fresh namespace on every spoke, deleted afterwards so tests don't see each other's pods."""
    ns = f"t-{uuid.uuid4().hex[:8]}"
    for s in spokes:
        s.core().create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=ns)))
    yield ns
    for s in spokes:
        s.core().delete_namespace(ns)


def gpu_pod_spec(gpus: int, node_selector: dict[str, str]) -> client.V1PodSpec:
    return client.V1PodSpec(
        restart_policy="Never",
        node_selector=node_selector,
        containers=[
            client.V1Container(
                name="main",
                image="registry.k8s.io/pause:3.10",
                resources=client.V1ResourceRequirements(limits={GPU: str(gpus)}),
            )
        ],
    )


def gpu_nodes(s: Spoke) -> list[client.V1Node]:
    return s.core().list_node(label_selector="nvidia.com/gpu.present=true").items


def allocatable_gpus(node: client.V1Node) -> int:
    return int((node.status.allocatable or {}).get(GPU, "0"))


def gpus_requested_on(s: Spoke, node: str, except_pod: str | None = None) -> int:
    """GPUs held by non-terminal pods bound to `node` (what the scheduler counts as used)."""
    used = 0
    for p in s.core().list_pod_for_all_namespaces(field_selector=f"spec.nodeName={node}").items:
        if p.metadata.name == except_pod or p.status.phase in ("Succeeded", "Failed"):
            continue
        for c in p.spec.containers:
            used += int(((c.resources and c.resources.limits) or {}).get(GPU, "0"))
    return used


def pick_spoke_and_product(spokes: list[Spoke]) -> tuple[Spoke, str, list[client.V1Node]]:
    """A spoke with ≥2 nodes of one product having ≥8 GPUs each, preferring H100."""
    candidates = []
    for s in spokes:
        by_product: dict[str, list[client.V1Node]] = {}
        for n in gpu_nodes(s):
            if allocatable_gpus(n) >= 8:
                by_product.setdefault(n.metadata.labels[PRODUCT], []).append(n)
        for product, nodes in by_product.items():
            if len(nodes) >= 2:
                candidates.append((product != PREFERRED_PRODUCT, s.name, s, product, nodes))
    assert candidates, "no spoke has two nodes with ≥8 GPUs of one product; check the lab's profiles"
    _, _, s, product, nodes = sorted(candidates, key=lambda c: (c[0], c[1]))[0]
    return s, product, nodes


def test_a_job_asking_for_4_gpus_lands_on_a_node_with_4_free_of_that_product_and_succeeds(
    spokes: list[Spoke], namespace: str
) -> None:
    spoke, product, nodes = pick_spoke_and_product(spokes)
    core, batch = spoke.core(), spoke.batch()
    # Fill the first node so only 3 GPUs stay free there: the scheduler must pick another node.
    busy = nodes[0]
    filler = client.V1Pod(
        metadata=client.V1ObjectMeta(name="filler"),
        spec=gpu_pod_spec(allocatable_gpus(busy) - 3, {"kubernetes.io/hostname": busy.metadata.name}),
    )
    core.create_namespaced_pod(namespace, filler)
    wait_until(
        "the filler pod runs (kwok keeps non-Job pods Running)",
        lambda: core.read_namespaced_pod("filler", namespace).status.phase == "Running",
    )

    job = client.V1Job(
        metadata=client.V1ObjectMeta(name="train"),
        spec=client.V1JobSpec(
            backoff_limit=0,
            template=client.V1PodTemplateSpec(spec=gpu_pod_spec(4, {PRODUCT: product})),
        ),
    )
    batch.create_namespaced_job(namespace, job)
    wait_until("the job succeeds", lambda: (batch.read_namespaced_job("train", namespace).status.succeeded or 0) >= 1)

    pods = core.list_namespaced_pod(namespace, label_selector="job-name=train").items
    assert len(pods) == 1
    pod = pods[0]
    assert pod.status.phase == "Succeeded"
    node = core.read_node(pod.spec.node_name)
    assert node.metadata.labels[PRODUCT] == product
    assert node.metadata.name != busy.metadata.name, "scheduled onto the node with only 3 free GPUs"
    free_when_bound = allocatable_gpus(node) - gpus_requested_on(
        spoke, node.metadata.name, except_pod=pod.metadata.name
    )
    assert free_when_bound >= 4


def test_a_pod_asking_for_more_gpus_than_any_node_has_stays_pending_as_insufficient_gpu(
    spokes: list[Spoke], namespace: str
) -> None:
    for s in spokes:
        core = s.core()
        too_many = max(allocatable_gpus(n) for n in gpu_nodes(s)) + 1
        core.create_namespaced_pod(
            namespace, client.V1Pod(metadata=client.V1ObjectMeta(name="too-big"), spec=gpu_pod_spec(too_many, {}))
        )

        def unschedulable(core: Any = core) -> Any:
            p = core.read_namespaced_pod("too-big", namespace)
            for c in p.status.conditions or []:
                if c.type == "PodScheduled" and c.status == "False" and c.reason == "Unschedulable":
                    return c
            return None

        cond = wait_until(f"{s.name}'s scheduler reports too-big unschedulable", unschedulable, timeout=30)
        assert "Insufficient nvidia.com/gpu" in cond.message, cond.message
        time.sleep(1)  # and it stays that way: nothing binds it later
        p = core.read_namespaced_pod("too-big", namespace)
        assert p.status.phase == "Pending" and not p.spec.node_name


def test_kubectl_lists_each_spokes_gpu_nodes_with_capacity(spokes: list[Spoke]) -> None:
    for s in spokes:
        out = subprocess.run(
            [
                "kubectl",
                "--kubeconfig",
                s.kubeconfig,
                "get",
                "nodes",
                "-l",
                "nvidia.com/gpu.present=true",
                "-o",
                "json",
            ],
            check=True,
            capture_output=True,
            text=True,
            timeout=60,
        ).stdout
        items = json.loads(out)["items"]
        assert items, f"kubectl lists no GPU nodes on {s.name}"
        for n in items:
            assert int(n["status"]["capacity"][GPU]) > 0
            assert n["metadata"]["labels"][PRODUCT]
        if s.expected_nodes is not None:
            assert sorted(n["metadata"]["name"] for n in items) == sorted(s.expected_nodes)
        # And the human view: the table kubectl prints has every node, Ready.
        table = subprocess.run(
            ["kubectl", "--kubeconfig", s.kubeconfig, "get", "nodes", "-L", f"{PRODUCT},karpenter.sh/capacity-type"],
            check=True,
            capture_output=True,
            text=True,
            timeout=60,
        ).stdout
        for n in items:
            assert n["metadata"]["name"] in table
        assert "NotReady" not in table


def test_gpu_nodes_carry_capacity_type_topology_and_price_labels(spokes: list[Spoke]) -> None:
    regions = set()
    for s in spokes:
        for n in gpu_nodes(s):
            labels, ann = n.metadata.labels, n.metadata.annotations or {}
            assert labels["karpenter.sh/capacity-type"] in ("spot", "on-demand", "reserved")
            assert labels["topology.kubernetes.io/zone"].startswith(labels["topology.kubernetes.io/region"])
            assert int(labels["nvidia.com/gpu.memory"]) > 0
            assert labels["nvidia.com/gpu.count"] == (n.status.capacity or {})[GPU]
            assert ann.get("kwok.x-k8s.io/node") == "fake"
            if s.expected_nodes is not None:
                assert float(ann["fleetplane.io/price-per-gpu-hour"]) > 0
            regions.add(labels["topology.kubernetes.io/region"])
    if all(s.expected_nodes is not None for s in spokes) and len(spokes) > 1:
        assert len(regions) > 1, "default lab spokes should sit in different regions"


def test_a_job_keeps_running_for_the_pod_complete_delay_annotation(spokes: list[Spoke], namespace: str) -> None:
    s = spokes[0]
    core, batch = s.core(), s.batch()
    tmpl = client.V1PodTemplateSpec(
        metadata=client.V1ObjectMeta(annotations={"pod-complete.stage.kwok.x-k8s.io/delay": "3s"}),
        spec=gpu_pod_spec(1, {}),
    )
    batch.create_namespaced_job(
        namespace,
        client.V1Job(metadata=client.V1ObjectMeta(name="slow"), spec=client.V1JobSpec(backoff_limit=0, template=tmpl)),
    )
    t0 = time.monotonic()

    def phase() -> str | None:
        pods = core.list_namespaced_pod(namespace, label_selector="job-name=slow").items
        return pods[0].status.phase if pods else None

    wait_until("the slow job's pod runs", lambda: phase() == "Running", timeout=30)
    wait_until(
        "the slow job succeeds",
        lambda: (batch.read_namespaced_job("slow", namespace).status.succeeded or 0) >= 1,
        timeout=30,
    )
    assert time.monotonic() - t0 >= 2.5
