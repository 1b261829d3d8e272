"""The simulated backend: an in-memory cluster of GPU node pools whose Jobs run for a
configured time. SIMULATED: nothing here is a real Kubernetes cluster; the agent labels the
Cluster object (spec.backend=simulated, label fleetplane.io/backend=simulated) so nobody
mistakes it for one.

It exists for demos and for scale tests with 1,000+ clusters in one process: no threads,
no polling, one timer per running Job. Pods are placed best-fit on nodes with enough free
GPUs (one replica's GPUs on one node, like the real scheduler); what does not fit stays
Pending/Unschedulable until GPUs free up. `reclaim_node()` simulates a spot reclaim.

Profile (YAML):

    cluster: {region: us-east-1, zone: us-east-1a, kubernetesVersion: v1.32.4-simulated}
    pools:
      - {name: h100-spot, model: H100, memoryGiB: 80, capacityType: spot, nodes: 2, gpusPerNode: 8, pricePerGpuHour: 2.1}
    jobs: {durationSeconds: 30, startDelaySeconds: 1}

A Job's run time can be set per manifest with the annotation
fleetplane.io/simulated-duration-seconds.
"""

from __future__ import annotations

import asyncio
import copy
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from fleetplane_types import names

from ..capacity import Capacity, compute_capacity, pod_gpu_request
from ..errors import PermanentError
from ..labels import ASSIGNMENT_LABEL
from ..manifests import ObjectRef, group_of, pinned_nodes
from ..phase import AssignmentPhase, Interruption, assignment_phase, object_phase

DURATION_ANNOTATION = names.SIMULATED_DURATION_ANNOTATION
CLUSTER_SCOPED = {
    ("", "Namespace"),
    ("rbac.authorization.k8s.io", "ClusterRole"),
    ("rbac.authorization.k8s.io", "ClusterRoleBinding"),
    ("", "Node"),
}


@dataclass
class PoolProfile:
    name: str
    model: str
    capacity_type: str = "on-demand"
    memory_gib: int | None = None
    nodes: int = 1
    gpus_per_node: int = 8
    zone: str | None = None
    price_per_gpu_hour: float | None = None


@dataclass
class Profile:
    pools: list[PoolProfile]
    region: str | None = None
    zone: str | None = None
    kubernetes_version: str = "v1.32.4-simulated"
    job_duration_seconds: float = 30.0
    start_delay_seconds: float = 1.0

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Profile:
        cluster = data.get("cluster") or {}
        jobs = data.get("jobs") or {}
        pools = [
            PoolProfile(
                name=p["name"],
                model=p["model"],
                capacity_type=p.get("capacityType", "on-demand"),
                memory_gib=p.get("memoryGiB"),
                nodes=int(p.get("nodes", 1)),
                gpus_per_node=int(p.get("gpusPerNode", 8)),
                zone=p.get("zone") or cluster.get("zone"),
                price_per_gpu_hour=float(p["pricePerGpuHour"]) if p.get("pricePerGpuHour") is not None else None,
            )
            for p in data.get("pools") or []
        ]
        return cls(
            pools=pools,
            region=cluster.get("region"),
            zone=cluster.get("zone"),
            kubernetes_version=cluster.get("kubernetesVersion", "v1.32.4-simulated"),
            job_duration_seconds=float(jobs.get("durationSeconds", 30.0)),
            start_delay_seconds=float(jobs.get("startDelaySeconds", 1.0)),
        )

    @classmethod
    def load(cls, path: str | Path) -> Profile:
        return cls.from_dict(yaml.safe_load(Path(path).read_text()) or {})


@dataclass
class SimPod:
    name: str
    label: str | None
    gpus: int
    node: str | None = None
    phase: str = "Pending"
    reason: str | None = None
    message: str | None = None
    allowed_nodes: set[str] | None = None  # from the template's matchFields pinning

    def body(self) -> dict[str, Any]:
        conditions = []
        if self.node is None and self.phase == "Pending" and self.reason:
            conditions.append(
                {"type": "PodScheduled", "status": "False", "reason": self.reason, "message": self.message}
            )
        return {
            "metadata": {"name": self.name},
            "spec": {
                "nodeName": self.node,
                "containers": [{"resources": {"requests": {"nvidia.com/gpu": str(self.gpus)}}}],
            },
            "status": {"phase": self.phase, "conditions": conditions},
        }


@dataclass
class SimObject:
    obj: dict[str, Any]
    pods: list[SimPod] = field(default_factory=list)
    complete: bool = False
    timer: asyncio.TimerHandle | None = None
    started: bool = False


def _pod_count(kind: str, spec: Mapping[str, Any]) -> int:
    """Pods a Job (parallelism), Deployment or StatefulSet (replicas) runs; none while suspended."""
    if spec.get("suspend"):
        return 0
    return int(spec.get("parallelism", 1) if kind == "Job" else spec.get("replicas", 1) or 0)


class SimulatedBackend:
    """An in-memory spoke. SIMULATED, not a Kubernetes cluster."""

    name = "simulated"

    def __init__(self, profile: Profile, state_file: str | Path | None = None, cluster_name: str = "sim") -> None:
        self.profile = profile
        self.state_file = Path(state_file) if state_file else None
        self._state: dict[str, str] | None = None
        if self.state_file and self.state_file.exists():
            self._state = json.loads(self.state_file.read_text())
        self.nodes: dict[str, dict[str, Any]] = {}
        for pool in profile.pools:
            for i in range(pool.nodes):
                name = f"{cluster_name}-{pool.name}-{i}"
                labels = {
                    names.NODE_POOL_LABEL: pool.name,
                    names.CAPACITY_TYPE_LABEL: pool.capacity_type,
                    "nvidia.com/gpu.product": pool.model,
                    names.SIMULATED_LABEL: "true",
                }
                if pool.memory_gib:
                    labels["nvidia.com/gpu.memory"] = str(pool.memory_gib * 1024)
                if pool.zone:
                    labels["topology.kubernetes.io/zone"] = pool.zone
                if profile.region:
                    labels["topology.kubernetes.io/region"] = profile.region
                gpus = str(pool.gpus_per_node)
                annotations = {}
                if pool.price_per_gpu_hour is not None:
                    annotations[names.PRICE_ANNOTATION] = str(pool.price_per_gpu_hour)
                self.nodes[name] = {
                    "metadata": {"name": name, "labels": labels, "annotations": annotations},
                    "spec": {"unschedulable": False, "taints": []},
                    "status": {
                        "capacity": {"nvidia.com/gpu": gpus},
                        "allocatable": {"nvidia.com/gpu": gpus},
                        "conditions": [{"type": "Ready", "status": "True"}],
                    },
                }
        self.objects: dict[ObjectRef, SimObject] = {}
        self.namespaces: set[str] = {"default"}
        self.interruptions: dict[str, list[Interruption]] = {}
        self._on_capacity: Callable[[], None] = lambda: None
        self._on_assignment: Callable[[str], None] = lambda label: None

    # ------------------------------------------------------------ lifecycle

    async def start(self, on_capacity_change: Callable[[], None], on_assignment_change: Callable[[str], None]) -> None:
        self._on_capacity = on_capacity_change
        self._on_assignment = on_assignment_change

    async def stop(self) -> None:
        for sim in self.objects.values():
            if sim.timer:
                sim.timer.cancel()

    # ------------------------------------------------------------ scheduling

    def _used(self) -> dict[str, int]:
        used: dict[str, int] = {}
        for sim in self.objects.values():
            for pod in sim.pods:
                if pod.node and pod.phase in ("Pending", "Running"):
                    used[pod.node] = used.get(pod.node, 0) + pod.gpus
        return used

    def _free(self, used: Mapping[str, int]) -> dict[str, int]:
        free = {}
        for name, node in self.nodes.items():
            if node["spec"]["unschedulable"]:
                continue
            free[name] = int(node["status"]["allocatable"]["nvidia.com/gpu"]) - used.get(name, 0)
        return free

    def _schedule(self) -> None:
        """Bind pending pods best-fit; start the timers of objects whose pods are all bound."""
        free = self._free(self._used())
        changed_labels: set[str] = set()
        for sim in self.objects.values():
            for pod in sim.pods:
                if pod.node is not None or pod.phase != "Pending":
                    continue
                fits = sorted(
                    (f, n)
                    for n, f in free.items()
                    if f >= pod.gpus and (pod.allowed_nodes is None or n in pod.allowed_nodes)
                )
                if not fits:
                    if pod.reason != "Unschedulable":
                        pod.reason = "Unschedulable"
                        pod.message = f"0/{len(self.nodes)} nodes have {pod.gpus} free GPUs (simulated)"
                        changed_labels.add(pod.label or "")
                    continue
                node = fits[0][1]
                free[node] -= pod.gpus
                pod.node, pod.reason, pod.message = node, None, None
                changed_labels.add(pod.label or "")
            if sim.pods and not sim.started and all(p.node for p in sim.pods):
                sim.started = True
                loop = asyncio.get_running_loop()
                sim.timer = loop.call_later(self.profile.start_delay_seconds, self._run, sim)
        self._on_capacity()
        for label in changed_labels - {""}:
            self._on_assignment(label)

    def _run(self, sim: SimObject) -> None:
        for pod in sim.pods:
            if pod.node:
                pod.phase = "Running"
        label = sim.obj["metadata"]["labels"].get(ASSIGNMENT_LABEL)
        if sim.obj["kind"] == "Job":
            annotations = sim.obj["metadata"].get("annotations") or {}
            duration = float(annotations.get(DURATION_ANNOTATION, self.profile.job_duration_seconds))
            sim.timer = asyncio.get_running_loop().call_later(duration, self._finish, sim)
        if label:
            self._on_assignment(label)

    def _finish(self, sim: SimObject) -> None:
        for pod in sim.pods:
            pod.phase = "Succeeded"
        sim.complete = True
        sim.timer = None
        label = sim.obj["metadata"]["labels"].get(ASSIGNMENT_LABEL)
        self._schedule()
        if label:
            self._on_assignment(label)

    # ------------------------------------------------------------ demo controls

    def cordon(self, node: str, unschedulable: bool = True) -> None:
        self.nodes[node]["spec"]["unschedulable"] = unschedulable
        self._on_capacity()

    def reclaim_node(self, node: str) -> None:
        """A spot reclaim: the node vanishes; its pods are lost and rescheduled if they can be."""
        gone = self.nodes.pop(node)
        ctype = gone["metadata"]["labels"].get(names.CAPACITY_TYPE_LABEL, "on-demand")
        for sim in self.objects.values():
            hit = [p for p in sim.pods if p.node == node and p.phase in ("Pending", "Running")]
            for pod in hit:
                pod.node, pod.phase = None, "Pending"
                label = pod.label or ""
                reason = "Preempted" if ctype == "spot" else "NodeLost"
                self.interruptions.setdefault(label, []).append(
                    Interruption(reason, f"node {node} ({ctype}) went away while running a pod (simulated)")
                )
            if hit:
                sim.started = False
                if sim.timer:
                    sim.timer.cancel()
                    sim.timer = None
                for pod in sim.pods:
                    if pod.phase == "Running":
                        pod.phase = "Pending"
        self._schedule()

    # ------------------------------------------------------------ protocol

    def capacity(self, held: Mapping[tuple[str, str], int] | None = None) -> Capacity:
        pods = [p.body() for sim in self.objects.values() for p in sim.pods]
        return compute_capacity(self.nodes.values(), pods, held=held)

    def bound_gpus(self, assignment_label: str) -> dict[tuple[str, str], int]:
        out: dict[tuple[str, str], int] = {}
        for sim in self.objects.values():
            for pod in sim.pods:
                if pod.label == assignment_label and pod.node and pod.phase in ("Pending", "Running"):
                    slot = (pod.node, "nvidia.com/gpu")
                    out[slot] = out.get(slot, 0) + pod.gpus
        return out

    async def kubernetes_version(self) -> str | None:
        return self.profile.kubernetes_version

    async def namespaced(self, api_version: str, kind: str) -> bool | None:
        return (group_of(api_version), kind) not in CLUSTER_SCOPED

    async def ensure_namespace(self, name: str) -> None:
        self.namespaces.add(name)

    async def apply(self, obj: Mapping[str, Any]) -> None:
        ref = ObjectRef.of(obj)
        if ref.namespace and ref.namespace not in self.namespaces:
            raise PermanentError(f'namespaces "{ref.namespace}" not found (simulated)', reason="NotFound")
        existing = self.objects.get(ref)
        spec = obj.get("spec") or {}
        group = group_of(ref.api_version)
        scaled = (group, ref.kind) in {("batch", "Job"), ("apps", "Deployment"), ("apps", "StatefulSet")}
        if existing is not None:
            existing.obj = copy.deepcopy(dict(obj))  # template changes are not re-run (like an immutable Job)
            if scaled and not existing.complete:
                self._rescale(existing, ref, _pod_count(ref.kind, spec))
            return
        sim = SimObject(obj=copy.deepcopy(dict(obj)))
        label = (obj.get("metadata") or {}).get("labels", {}).get(ASSIGNMENT_LABEL)
        if scaled:
            template = spec.get("template") or {}
            count = _pod_count(ref.kind, spec)
            gpus = pod_gpu_request(template, "nvidia.com/gpu")
            allowed = pinned_nodes(template.get("spec") or {})
            sim.pods = [SimPod(f"{ref.name}-{i}", label, gpus, allowed_nodes=allowed) for i in range(count)]
        elif (group, ref.kind) == ("", "Pod"):
            sim.pods = [SimPod(ref.name, label, pod_gpu_request(obj, "nvidia.com/gpu"))]
        self.objects[ref] = sim
        self._schedule()

    def _rescale(self, sim: SimObject, ref: ObjectRef, want: int) -> None:
        """Replicas or parallelism changed, or the object was suspended (0) or resumed: pods go
        away from the end, new ones start Pending; the run timer restarts once all are bound."""
        have = len(sim.pods)
        if want == have:
            return
        if want < have:
            sim.pods = sim.pods[:want]
        else:
            label = (sim.obj.get("metadata") or {}).get("labels", {}).get(ASSIGNMENT_LABEL)
            template = (sim.obj.get("spec") or {}).get("template") or {}
            gpus = pod_gpu_request(template, "nvidia.com/gpu")
            allowed = pinned_nodes(template.get("spec") or {})
            sim.pods += [SimPod(f"{ref.name}-{i}", label, gpus, allowed_nodes=allowed) for i in range(have, want)]
        if sim.timer:
            sim.timer.cancel()
            sim.timer = None
        sim.started = False
        self._schedule()
        if label := (sim.obj.get("metadata") or {}).get("labels", {}).get(ASSIGNMENT_LABEL):
            self._on_assignment(label)

    async def exists(self, ref: ObjectRef) -> bool:
        return ref in self.objects

    async def delete(self, ref: ObjectRef, foreground: bool = False) -> bool:
        sim = self.objects.pop(ref, None)
        if sim is None:
            return False
        if sim.timer:
            sim.timer.cancel()
        self._schedule()
        return True

    async def list_managed(self, allowed: list[tuple[str, str]]) -> list[dict[str, Any]]:
        return [
            {"apiVersion": s.obj["apiVersion"], "kind": s.obj["kind"], "metadata": s.obj["metadata"]}
            for s in self.objects.values()
            if ASSIGNMENT_LABEL in (s.obj["metadata"].get("labels") or {})
        ]

    def _body(self, ref: ObjectRef) -> dict[str, Any] | None:
        sim = self.objects.get(ref)
        if sim is None:
            return None
        if ref.kind == "Job":
            running = sum(1 for p in sim.pods if p.phase == "Running")
            conds = [{"type": "Complete", "status": "True"}] if sim.complete else []
            return {
                "kind": "Job",
                "spec": {},
                "status": {"active": 0 if sim.complete else len(sim.pods), "ready": running, "conditions": conds},
            }
        if ref.kind in ("Deployment", "StatefulSet"):
            ready = sum(1 for p in sim.pods if p.phase == "Running")
            want = len(sim.pods)
            conds = [{"type": "Available", "status": "True" if ready >= want else "False"}]
            return {
                "kind": ref.kind,
                "spec": {"replicas": want},
                "status": {"readyReplicas": ready, "conditions": conds},
            }
        if ref.kind == "Pod":
            return sim.pods[0].body()
        return {}

    def observe(self, assignment_label: str, refs: list[ObjectRef]) -> AssignmentPhase:
        pods = [p.body() for s in self.objects.values() for p in s.pods if p.label == assignment_label]
        objects = [object_phase(r.api_version, r.kind, r.name, r.namespace, self._body(r), pods) for r in refs]
        result = assignment_phase(objects, self.interruptions.get(assignment_label, ()))
        if result.phase in ("Running", "Succeeded"):
            self.interruptions.pop(assignment_label, None)
        return result

    def forget(self, assignment_label: str) -> None:
        self.interruptions.pop(assignment_label, None)

    async def load_state(self) -> dict[str, str] | None:
        return dict(self._state) if self._state else None

    async def save_state(self, data: Mapping[str, str]) -> None:
        self._state = {**(self._state or {}), **data}
        if self.state_file:
            self.state_file.parent.mkdir(parents=True, exist_ok=True)
            self.state_file.write_text(json.dumps(self._state))
            self.state_file.chmod(0o600)
