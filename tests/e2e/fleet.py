"""The end-to-end fleet: ONE lab (the hub on embedded Postgres + three real spokes) and one
real spoke agent process per spoke, joined with join tokens from the hub's CLI.

Also the helpers the e2e tests share, named after what they wait for or assert, and the pod
sampler that watches every spoke while an agent is killed and restarted.

Spokes differ so the documented scoring has real choices to make (docs/placement.md):

| spoke     | GPUs                       | region    | role in the tests                      |
|-----------|----------------------------|-----------|----------------------------------------|
| h100-east | 2 x 8 H100, reserved       | us-east-1 | next to the dataset; non-preemptible   |
| a100-west | 3 x 8 A100, spot           | us-west-2 | spot-allowed work; failover target     |
| l4-eu     | 2 x 4 L4, on-demand        | eu-west-1 | small inference                        |
"""

from __future__ import annotations

import json
import os
import shutil
import ssl
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx
import yaml

from fleetplane_lab import Lab, SpokeSpec
from fleetplane_lab.spoke import SpokeInfo
from fleetplane_testing import wait_until as lab_wait_until
from tests.agent.lab_fixtures import AgentProcess, env, kubectl, kubectl_json

ROOT = Path(__file__).resolve().parents[2]
API = "/apis/fleetplane.io/v1alpha1"
NS = "ml"

# Failover settings. The hub marks a cluster NotReady after CLUSTER_TIMEOUT seconds without a
# heartbeat; agents heartbeat every HEARTBEAT seconds, so four heartbeats may be lost (a busy
# 2-core machine) before a live cluster is wrongly declared dead.
CLUSTER_TIMEOUT = 8.0
HEARTBEAT = 2.0

SPOKES = [
    SpokeSpec(name="h100-east", profiles=["h100-reserved"], region="us-east-1"),
    SpokeSpec(name="a100-west", profiles=["a100-spot"], region="us-west-2"),
    SpokeSpec(name="l4-eu", profiles=["l4-ondemand"], region="eu-west-1"),
]
GPU_PRODUCT = {"H100": "NVIDIA-H100-80GB-HBM3", "A100": "NVIDIA-A100-SXM4-40GB", "L4": "NVIDIA-L4"}
KWOK_RUN_FOR = "pod-complete.stage.kwok.x-k8s.io/delay"  # a Job pod stays Running this long
KWOK_TERMINATE_FOR = "pod-delete.stage.kwok.x-k8s.io/delay"  # a deleted pod stays this long
T = TypeVar("T")


def wait_until(what: str, probe: Callable[[], T | None], timeout: float = 60.0, interval: float = 0.25) -> T:
    """A failed HTTP call or kubectl run is retried (the machine is busy); an AssertionError
    from the probe fails at once."""
    return lab_wait_until(what, probe, timeout, interval, retry_on=(httpx.HTTPError, subprocess.SubprocessError))


@dataclass
class Fleet:
    """What the e2e tests talk to: the hub (REST + kubectl) and each spoke with its agent."""

    lab: Lab
    root: Path
    agents: dict[str, AgentProcess] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def hub_kubeconfig(self) -> str:
        assert self.lab.hub is not None
        return self.lab.hub.kubeconfig

    @property
    def hub_data_dir(self) -> Path:
        assert self.lab.hub is not None
        return Path(self.lab.hub.data_dir)

    def spoke(self, name: str) -> SpokeInfo:
        return self.lab.spokes[name]

    def rest(self) -> httpx.Client:
        """The hub over HTTPS, verified against its own CA, as the admin."""
        assert self.lab.hub is not None
        ca = ssl.create_default_context(cafile=str(self.hub_data_dir / "hub-cert.pem"))
        return httpx.Client(
            base_url=self.lab.hub.url, verify=ca, timeout=15, headers={"Authorization": f"Bearer {self.lab.hub.token}"}
        )

    def hub_kubectl(self, *args: str, input: str | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
        out = subprocess.run(
            ["kubectl", "--kubeconfig", self.hub_kubeconfig, *args],
            input=input,
            capture_output=True,
            text=True,
            timeout=90,
        )
        if check and out.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} (hub) failed: {out.stderr}{out.stdout}")
        return out

    def join_token(self, cluster: str) -> str:
        """`python -m hub.cli cluster join-token create NAME` against the lab hub's database."""
        out = subprocess.run(
            [
                sys.executable,
                "-m",
                "fleetplane",
                "cluster",
                "join-token",
                "create",
                cluster,
                "--data-dir",
                str(self.hub_data_dir),
            ],
            check=True,
            capture_output=True,
            text=True,
            env=env(),
            cwd=ROOT,
            timeout=120,
        )
        return out.stdout.strip().splitlines()[-1]


# ---------------------------------------------------------------- starting and stopping


def start_fleet() -> Fleet:
    """Start the lab and one agent per spoke; on any failure stop everything and raise."""
    # Not under pytest's tmp dir: that is 0700 root-only, and the hub's embedded Postgres
    # runs as its own user inside RUN_DIR/hub.
    root = Path(tempfile.mkdtemp(prefix="fp-e2e-"))
    root.chmod(0o755)
    lab = Lab(
        root / "lab",
        spokes=SPOKES,
        with_hub=True,
        hub_env={"FLEETPLANE_CLUSTER_TIMEOUT_SECONDS": f"{CLUSTER_TIMEOUT:g}"},
    )
    fleet = Fleet(lab=lab, root=root)
    t0 = time.monotonic()
    try:
        lab.up()
        fleet.timings["lab_up"] = time.monotonic() - t0
        t1 = time.monotonic()
        with ThreadPoolExecutor(max_workers=len(SPOKES)) as pool:
            list(pool.map(lambda s: _start_agent(fleet, s.name), SPOKES))  # raises the first failure
        fleet.timings["agents_ready"] = time.monotonic() - t1
    except BaseException:
        stop_fleet(fleet)
        raise
    return fleet


def _start_agent(fleet: Fleet, cluster: str) -> AgentProcess:
    """A real `python -m spoke_agent` process (kubernetes backend) under the least-privilege
    ServiceAccount of deploy/agent/rbac.yaml, joined with a fresh join token."""
    spoke = fleet.spoke(cluster)
    kubectl(spoke.kubeconfig, "create", "namespace", "fleetplane-system")
    kubectl(spoke.kubeconfig, "apply", "-f", str(ROOT / "deploy/agent/rbac.yaml"))
    token = kubectl(
        spoke.kubeconfig, "-n", "fleetplane-system", "create", "token", "fleetplane-agent", "--duration=2h"
    ).stdout.strip()
    cfg = yaml.safe_load(Path(spoke.kubeconfig).read_text())
    for user in cfg["users"]:
        user["user"] = {"token": token}
    work = fleet.root / "agents" / cluster
    work.mkdir(parents=True, exist_ok=True)
    agent_kc = work / "agent.kubeconfig"
    agent_kc.write_text(yaml.safe_dump(cfg))
    config = work / "agent.yaml"
    config.write_text(f"capacity: {{heartbeatSeconds: {HEARTBEAT:g}, debounceSeconds: 0.5}}\n")
    assert fleet.lab.hub is not None
    agent = AgentProcess(
        args=[
            "--hub",
            fleet.lab.hub.url,
            "--hub-ca",
            str(fleet.hub_data_dir / "hub-cert.pem"),
            "--cluster-name",
            cluster,
            "--join-token",
            fleet.join_token(cluster),
            "--kubeconfig",
            str(agent_kc),
            "--config",
            str(config),
        ],
        log_path=work / "agent.log",
    )
    fleet.agents[cluster] = agent  # so stop_fleet finds it even if it never gets ready
    agent.start().wait_until_ready(timeout=90)
    return agent


def stop_fleet(fleet: Fleet) -> None:
    """Stop the agents, then the lab (hub, its Postgres, every spoke process), then delete
    the run dir. Raises if anything the lab started is still alive."""
    t0 = time.monotonic()
    with ThreadPoolExecutor(max_workers=max(1, len(fleet.agents))) as pool:
        list(pool.map(AgentProcess.stop, fleet.agents.values()))  # SIGTERM; each takes ~5 s to exit
    t1 = time.monotonic()
    report = fleet.lab.down()
    print(
        f"agents stopped in {t1 - t0:.1f}s, lab down in {time.monotonic() - t1:.1f}s"
        + (f" (needed SIGKILL: {', '.join(report.killed)})" if report.killed else "")
    )
    leftovers = [a.proc.pid for a in fleet.agents.values() if a.proc and a.proc.poll() is None]
    if os.environ.get("FLEETPLANE_E2E_KEEP"):
        print(f"kept the run dir (hub.log, spoke and agent logs): {fleet.root}")
    elif not report.leftover_pids and not report.busy_ports:
        shutil.rmtree(fleet.root, ignore_errors=True)
    assert not report.leftover_pids and not leftovers, f"still running after lab down: {report} agents {leftovers}"


# ---------------------------------------------------------------- objects


def gpu_job(name: str, gpus: int, delay: str | None = None, grace_seconds: int | None = None) -> dict[str, Any]:
    """A batch/v1 Job with one pod asking for `gpus` GPUs. kwok keeps the pod Running for
    `delay` (else it completes at once) and, once deleted, keeps it terminating for
    `grace_seconds`, as a kubelet does through the termination grace period (else it
    vanishes at once). See fleetplane_lab/kwok-stages.yaml."""
    annotations = {KWOK_RUN_FOR: delay} if delay else {}
    pod_spec: dict[str, Any] = {
        "restartPolicy": "Never",
        "containers": [
            {"name": "main", "image": "trainer:1.0", "resources": {"limits": {"nvidia.com/gpu": str(gpus)}}}
        ],
    }
    if grace_seconds is not None:
        annotations[KWOK_TERMINATE_FOR] = f"{grace_seconds}s"
        pod_spec["terminationGracePeriodSeconds"] = grace_seconds
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name},
        "spec": {"backoffLimit": 0, "template": {"metadata": {"annotations": annotations}, "spec": pod_spec}},
    }


def gpu_deployment(name: str, gpus: int) -> dict[str, Any]:
    """An apps/v1 Deployment of one GPU pod labelled app=<name> (kwok keeps it Running)."""
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {
                    "containers": [
                        {"name": "serve", "image": "server:1.0", "resources": {"limits": {"nvidia.com/gpu": str(gpus)}}}
                    ]
                },
            },
        },
    }


def workload(
    name: str, gpus: int, manifest: dict[str, Any], models: list[str] | None = None, **spec: Any
) -> dict[str, Any]:
    """A one-replica Workload in NS; `spec` adds fields as written on the wire (camelCase)."""
    gpu: dict[str, Any] = {"count": gpus, **({"models": models} if models else {})}
    return {
        "apiVersion": "fleetplane.io/v1alpha1",
        "kind": "Workload",
        "metadata": {"name": name, "namespace": NS},
        "spec": {"replicas": 1, "gpu": gpu, "manifests": [manifest], **spec},
    }


# ---------------------------------------------------------------- reads


def workload_view(fleet: Fleet, name: str) -> dict[str, Any] | None:
    """GET /v1/namespaces/{ns}/workloads/{name} (None once it is gone)."""
    with fleet.rest() as c:
        r = c.get(f"/v1/namespaces/{NS}/workloads/{name}")
        if r.status_code == 404:
            return None
        r.raise_for_status()
        return dict(r.json())


def assignments_of(fleet: Fleet, workload_name: str) -> list[dict[str, Any]]:
    with fleet.rest() as c:
        r = c.get(
            f"{API}/namespaces/{NS}/assignments", params={"fieldSelector": f"spec.workloadRef.name={workload_name}"}
        )
        r.raise_for_status()
        return sorted(r.json()["items"], key=lambda a: a["spec"]["epoch"])


def cluster_ready(fleet: Fleet, name: str) -> dict[str, Any]:
    """The Ready condition of a Cluster on the hub."""
    with fleet.rest() as c:
        r = c.get(f"{API}/clusters/{name}")
        r.raise_for_status()
        conds = (r.json().get("status") or {}).get("conditions") or []
    return next((x for x in conds if x["type"] == "Ready"), {})


def job_pods(spoke: SpokeInfo, job: str) -> list[dict[str, Any]]:
    """The Job's pods on a spoke (the Job controller labels them job-name=<job>)."""
    return pods_with(spoke, f"job-name={job}")


def pods_with(spoke: SpokeInfo, selector: str) -> list[dict[str, Any]]:
    """Pods in NS matching a label selector, read with the spoke's admin token over HTTPS:
    light enough to poll every 0.5 s on every spoke (kubectl would cost a process each)."""
    r = httpx.get(
        f"{spoke.server}/api/v1/namespaces/{NS}/pods",
        params={"labelSelector": selector},
        headers={"Authorization": f"Bearer {spoke.token}"},
        verify=ssl.create_default_context(cafile=spoke.ca_file),
        timeout=5,
    )
    if r.status_code == 404:
        return []
    r.raise_for_status()
    return list(r.json()["items"])


def jobs_on(spoke: SpokeInfo, job: str) -> list[dict[str, Any]]:
    out = kubectl(spoke.kubeconfig, "get", "jobs", "-n", NS, "--field-selector", f"metadata.name={job}", "-o", "json")
    return list(json.loads(out.stdout)["items"])


def wl_row(fleet: Fleet, name: str) -> dict[str, str]:
    """`kubectl get wl NAME` against the hub, as {column: value}. Cells may contain spaces
    (GPUS is e.g. "1x8 H100,A100"), so cut the row where the header's columns start."""
    header, row = fleet.hub_kubectl("get", "wl", name, "-n", NS).stdout.splitlines()[:2]
    starts = [i for i, ch in enumerate(header) if ch != " " and (i == 0 or header[i - 1] == " ")]
    cells = [row[a:b].strip() for a, b in zip(starts, [*starts[1:], None], strict=False)]
    return dict(zip(header.split(), cells, strict=False))


# ---------------------------------------------------------------- waits and expectations


class FailedOnTheHub(AssertionError):
    pass


def wait_until_placed(fleet: Fleet, name: str, epoch: int = 1, timeout: float = 60) -> dict[str, Any]:
    """Wait until the hub has placed the workload with this epoch; returns its REST view."""

    def placed() -> dict[str, Any] | None:
        w = workload_view(fleet, name)
        p = (w or {}).get("placement") or {}
        return w if p.get("epoch") == epoch and p.get("clusters") else None

    return wait_until(f"workload {NS}/{name} is placed with epoch {epoch}", placed, timeout)


def wait_until_phase(fleet: Fleet, name: str, phase: str, timeout: float = 60) -> tuple[dict[str, Any], list[str]]:
    """Wait until the hub's Workload reaches `phase`; returns its view and every phase seen on the way."""
    seen: list[str] = []

    def reached() -> dict[str, Any] | None:
        w = workload_view(fleet, name) or {}
        if w.get("phase") and (not seen or seen[-1] != w["phase"]):
            seen.append(w["phase"])
        if w.get("phase") == "Failed" != phase:  # phases never move back: fail now, with the hub's reason
            raise FailedOnTheHub(f"workload {NS}/{name} Failed on the hub, waiting for {phase}: {w.get('message')}")
        return w if w.get("phase") == phase else None

    return wait_until(f"workload {NS}/{name} is {phase} on the hub", reached, timeout, interval=0.2), seen


def wait_until_pods_run_on(spoke: SpokeInfo, selector: str, timeout: float = 60) -> list[dict[str, Any]]:
    def running() -> list[dict[str, Any]]:
        return [p for p in pods_with(spoke, selector) if p["status"].get("phase") == "Running"]

    return wait_until(f"pods with {selector} run on {spoke.name}", running, timeout)


def expect_pods_on_gpu_product(spoke: SpokeInfo, selector: str, model: str) -> list[dict[str, Any]]:
    """kubectl against the spoke: pods matching `selector` exist and sit on nodes of the GPU model."""
    pods = kubectl_json(spoke.kubeconfig, "get", "pods", "-n", NS, "-l", selector)["items"]
    assert pods, f"no pods with {selector} on {spoke.name}"
    for p in pods:
        node_name = p["spec"].get("nodeName")
        assert node_name, f"pod {p['metadata']['name']} on {spoke.name} is not scheduled: {p['status']}"
        node = kubectl_json(spoke.kubeconfig, "get", "node", node_name)
        product = node["metadata"]["labels"].get("nvidia.com/gpu.product")
        assert product == GPU_PRODUCT[model], (
            f"pod {p['metadata']['name']} runs on {node_name} ({product}), not {model}"
        )
    return list(pods)


def expect_explained(view: dict[str, Any], chosen: str, removed: dict[str, str]) -> dict[str, Any]:
    """The stored explanation ranks `chosen` first and removed each other cluster with the
    named filter; returns the chosen cluster's entry."""
    rows = {c["name"]: c for c in view["explanation"]["clusters"]}
    assert rows[chosen]["feasible"] and rows[chosen]["rank"] == 1, rows[chosen]
    for name, filt in removed.items():
        assert not rows[name]["feasible"] and rows[name]["filter"] == filt, rows[name]
    return dict(rows[chosen])


def plugin_scores(row: dict[str, Any]) -> dict[str, float]:
    return {p["name"]: p["score"] for p in row["plugins"]}


# ---------------------------------------------------------------- no second copy


@dataclass
class Sample:
    """One look at the world: whether the fenced Assignment still exists on the hub (read
    first), then the Job's running pods on every spoke (read after)."""

    t: float
    old_assignment_exists: bool
    running: dict[str, list[str]]  # spoke -> the Job's pods in phase Running (" (terminating)" if deleted)

    def spokes_running(self) -> list[str]:
        return sorted(s for s, pods in self.running.items() if pods)


class PodSampler:
    """Lists a Job's pods on every spoke every `interval` s in a background thread.

    A pod counts as a running copy while its phase is Running, even with a deletionTimestamp:
    on a real node its containers keep running through the termination grace period.
    """

    def __init__(self, fleet: Fleet, job: str, old_assignment: str, interval: float = 0.5) -> None:
        self.fleet, self.job, self.old_assignment, self.interval = fleet, job, old_assignment, interval
        self.samples: list[Sample] = []
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="pod-sampler", daemon=True)

    def __enter__(self) -> PodSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)

    def _run(self) -> None:
        with self.fleet.rest() as hub:
            while not self._stop.is_set():
                t = time.monotonic()
                try:
                    r = hub.get(f"{API}/namespaces/{NS}/assignments/{self.old_assignment}")
                    running = {
                        name: [
                            p["metadata"]["name"] + (" (terminating)" if p["metadata"].get("deletionTimestamp") else "")
                            for p in job_pods(spoke, self.job)
                            if p["status"].get("phase") == "Running"
                        ]
                        for name, spoke in self.fleet.lab.spokes.items()
                    }
                    self.samples.append(Sample(t, r.status_code != 404, running))
                except (httpx.HTTPError, KeyError) as e:  # a gap is reported, never hidden
                    self.errors.append(f"{t:.1f}: {e!r}")
                self._stop.wait(max(0.0, self.interval - (time.monotonic() - t)))

    def fence_moment(self) -> float:
        """When the fenced Assignment was first seen gone from the hub (its agent deleted the
        stale copy and released the finalizer)."""
        return next(s.t for s in self.samples if not s.old_assignment_exists)


def expect_no_second_copy(samples: list[Sample], since: float, old_spoke: str) -> int:
    """From `since` on, no sample shows the Job running on two spokes, nor on the old one.
    Returns how many samples were checked (so a caller can insist on enough of them)."""
    after = [s for s in samples if s.t >= since]
    for s in after:
        history = "\n".join(describe(samples, since))
        assert len(s.spokes_running()) <= 1, (
            f"two running copies {s.t - since:.1f}s after the old epoch was fenced: {s.running}\n"
            f"samples (t=0: fence moment):\n{history}"
        )
        assert not s.running.get(old_spoke), (
            f"the stale copy still runs on {old_spoke} {s.t - since:.1f}s after its Assignment was released: "
            f"{s.running}\nsamples (t=0: fence moment):\n{history}"
        )
    return len(after)


def describe(samples: list[Sample], t0: float) -> Iterator[str]:
    """Compact sample history for failure messages and -s output."""
    last = None
    for s in samples:
        cur = (s.old_assignment_exists, tuple(s.spokes_running()))
        if cur != last:
            yield f"t={s.t - t0:6.1f}s old-assignment={'yes' if s.old_assignment_exists else 'gone'} running={s.running}"
            last = cur
