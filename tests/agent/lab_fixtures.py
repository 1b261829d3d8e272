"""Real parts for the agent's lab tests: a hub process, one lab spoke (real kube-apiserver,
controller-manager, scheduler, kwok GPU nodes), and the agent as a real process that can be
killed and restarted. Helpers are named after what they wait for or assert.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import yaml

from fleetplane_testing import wait_until as lab_wait_until
from fleetplane_testing.agenthub import Hub, env, start_hub, stop_hub
from fleetplane_testing.processes import AgentProcess, kubectl, stop_process

__all__ = ["AgentProcess", "Hub", "env", "kubectl", "start_hub", "stop_hub", "stop_process", "wait_until"]

ROOT = Path(__file__).resolve().parents[2]
T = TypeVar("T")


def wait_until(what: str, probe: Callable[[], T | None], timeout: float = 60.0, interval: float = 0.25) -> T:
    # Agent tests poll through a busy spoke and hub: any error means "not yet".
    return lab_wait_until(what, probe, timeout, interval, retry_on=(Exception,))


def kubectl_json(kubeconfig: str, *args: str) -> dict[str, Any]:
    return dict(json.loads(kubectl(kubeconfig, *args, "-o", "json").stdout))


def service_account_kubeconfig(admin_kubeconfig: str, namespace: str, account: str, out: Path) -> str:
    """A kubeconfig for `out` holding a TokenRequest token of that ServiceAccount (from the real
    apiserver, `kubectl create token`), nothing else: the agent runs as the account."""
    token = kubectl(admin_kubeconfig, "-n", namespace, "create", "token", account, "--duration=4h").stdout.strip()
    cfg = yaml.safe_load(Path(admin_kubeconfig).read_text())
    for user in cfg["users"]:
        user["user"] = {"token": token}
    out.write_text(yaml.safe_dump(cfg))
    return str(out)


def running(proc: AgentProcess) -> Iterator[AgentProcess]:
    """Start the agent, yield it once ready, stop it and print its log's tail (a fixture body)."""
    proc.start().wait_until_ready()
    try:
        yield proc
    finally:
        proc.stop()
        print(proc.log()[-4000:])


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
