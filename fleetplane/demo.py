"""`fleetplane up --demo` (what `make up` runs): a small SIMULATED fleet and sample workloads.

Three spoke agents with the agent's simulated backend (in-memory clusters, NOT Kubernetes;
their Cluster objects say `backend: simulated` and carry the label fleetplane.io/backend) run
inside the hub process and speak the real agent protocol to the hub over HTTPS: join with a
join token, report GPU capacity, receive Assignments, report status. Then a Topology, a
Dataset and four sample Workloads are created (once; restarts reuse them), so a new user sees
placements and explanations at once with `kubectl get workloads -n demo`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import typer
import yaml
from fastapi import FastAPI

from fleetplane_types.names import API_VERSION
from hub.server import add_background
from hub.store.tokens import create_token
from hub.web.context import HubContext
from spoke_agent.agent import Agent, AgentOptions

log = logging.getLogger(__name__)

CLUSTERS: dict[str, dict[str, Any]] = {
    "sim-us-east-reserved": {
        "cluster": {"region": "us-east-1", "zone": "us-east-1a"},
        "pools": [
            {
                "name": "h100-reserved",
                "model": "H100",
                "memoryGiB": 80,
                "capacityType": "reserved",
                "nodes": 2,
                "gpusPerNode": 8,
                "pricePerGpuHour": 2.50,
            },
            {
                "name": "h100-on-demand",
                "model": "H100",
                "memoryGiB": 80,
                "capacityType": "on-demand",
                "nodes": 1,
                "gpusPerNode": 8,
                "pricePerGpuHour": 4.10,
            },
        ],
        "jobs": {"durationSeconds": 900, "startDelaySeconds": 2},
    },
    "sim-us-west-spot": {
        "cluster": {"region": "us-west-2", "zone": "us-west-2b"},
        "pools": [
            {
                "name": "a100-spot",
                "model": "A100",
                "memoryGiB": 80,
                "capacityType": "spot",
                "nodes": 4,
                "gpusPerNode": 8,
                "pricePerGpuHour": 1.10,
            },
            {
                "name": "a100-on-demand",
                "model": "A100",
                "memoryGiB": 80,
                "capacityType": "on-demand",
                "nodes": 1,
                "gpusPerNode": 8,
                "pricePerGpuHour": 3.40,
            },
        ],
        "jobs": {"durationSeconds": 600, "startDelaySeconds": 2},
    },
    "sim-eu-l4": {
        "cluster": {"region": "eu-west-1", "zone": "eu-west-1a"},
        "pools": [
            {
                "name": "l4-on-demand",
                "model": "L4",
                "memoryGiB": 24,
                "capacityType": "on-demand",
                "nodes": 4,
                "gpusPerNode": 4,
                "pricePerGpuHour": 0.98,
            },
        ],
        "jobs": {"durationSeconds": 300, "startDelaySeconds": 2},
    },
}

API = "/apis/fleetplane.io/v1alpha1"


def _job(name: str, gpus: int, image: str = "ghcr.io/example/train:1.0") -> dict[str, Any]:
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name},
        "spec": {
            "template": {
                "spec": {
                    "restartPolicy": "Never",
                    "containers": [{"name": "main", "image": image, "resources": {"limits": {"nvidia.com/gpu": gpus}}}],
                }
            }
        },
    }


OBJECTS: list[tuple[str, dict[str, Any]]] = [
    ("/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "demo"}}),
    (
        f"{API}/topologies",
        {
            "apiVersion": API_VERSION,
            "kind": "Topology",
            "metadata": {"name": "demo"},
            "spec": {
                "sites": [
                    {"name": "us-east-1", "type": "region"},
                    {"name": "us-west-2", "type": "region"},
                    {"name": "eu-west-1", "type": "region"},
                    {"name": "s3-us-east-1", "type": "storage", "parent": "us-east-1"},
                ],
                "links": [
                    {"from": "s3-us-east-1", "to": "us-east-1", "bandwidthGbps": 100, "egressCostPerGB": 0},
                    {"from": "us-east-1", "to": "us-west-2", "bandwidthGbps": 10, "egressCostPerGB": 0.02},
                    {"from": "us-east-1", "to": "eu-west-1", "bandwidthGbps": 5, "egressCostPerGB": 0.05},
                    {"from": "us-west-2", "to": "eu-west-1", "bandwidthGbps": 5, "egressCostPerGB": 0.05},
                ],
            },
        },
    ),
    (
        f"{API}/namespaces/demo/datasets",
        {
            "apiVersion": API_VERSION,
            "kind": "Dataset",
            "metadata": {"name": "web-corpus"},
            "spec": {"sizeGiB": 2000, "locations": [{"site": "s3-us-east-1"}]},
        },
    ),
    (
        f"{API}/namespaces/demo/workloads",
        {
            "apiVersion": API_VERSION,
            "kind": "Workload",
            "metadata": {"name": "llm-pretrain"},
            "spec": {
                "replicas": 2,
                "gpu": {"count": 8, "models": ["H100", "A100"]},
                "priority": 100,
                "datasets": [{"name": "web-corpus"}],
                "manifests": [_job("llm-pretrain", 8)],
            },
        },
    ),
    (
        f"{API}/namespaces/demo/workloads",
        {
            "apiVersion": API_VERSION,
            "kind": "Workload",
            "metadata": {"name": "finetune-spot"},
            "spec": {
                "gpu": {"count": 8, "models": ["A100"]},
                "priority": 50,
                "capacityTypes": {"allowed": ["spot", "on-demand"], "preferred": ["spot"]},
                "manifests": [_job("finetune-spot", 8)],
            },
        },
    ),
    (
        f"{API}/namespaces/demo/workloads",
        {
            "apiVersion": API_VERSION,
            "kind": "Workload",
            "metadata": {"name": "embed-batch"},
            "spec": {
                "replicas": 6,
                "placementMode": "Divisible",
                "gpu": {"count": 1, "models": ["L4", "A100"]},
                "capacityTypes": {"allowed": ["spot", "on-demand"]},
                "priority": 10,
                "manifests": [_job("embed-batch", 1)],
            },
        },
    ),
    (
        f"{API}/namespaces/demo/workloads",
        {
            "apiVersion": API_VERSION,
            "kind": "Workload",
            "metadata": {"name": "giant-gang"},
            "spec": {
                "replicas": 8,
                "gpu": {"count": 8, "models": ["H100"]},
                "priority": 1,
                "manifests": [_job("giant-gang", 8)],
            },
        },
    ),
]


def before_serve(data_dir: Path) -> Callable[[FastAPI, str, Path, str], None]:
    """The hook hub.cli.run_hub calls: registers the demo fleet as a background task of the app."""

    def register(app: FastAPI, server: str, ca_file: Path, admin_token: str) -> None:
        async def run_demo(hub: HubContext) -> None:
            try:
                await _run(hub, data_dir / "demo", server, ca_file, admin_token)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("the demo fleet failed to start")

        add_background(app, run_demo)
        typer.echo("Demo: 3 SIMULATED clusters (in-memory, not Kubernetes) and sample workloads in namespace demo:")
        typer.echo(
            "  kubectl get clusters; kubectl get workloads -n demo; kubectl describe workload llm-pretrain -n demo"
        )

    return register


async def _run(hub: HubContext, root: Path, server: str, ca_file: Path, admin_token: str) -> None:
    root.mkdir(parents=True, exist_ok=True)
    headers = {"Authorization": f"Bearer {admin_token}"}
    async with httpx.AsyncClient(base_url=server, verify=str(ca_file), headers=headers, timeout=30) as c:
        for _ in range(200):  # the server starts listening after the lifespan started us
            try:
                if (await c.get("/readyz")).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.1)
        agents = []
        for name, profile in CLUSTERS.items():
            profile_file = root / f"{name}.yaml"
            profile_file.write_text(yaml.safe_dump(profile, sort_keys=False))
            state_file = root / f"{name}.credential.json"
            token = None if state_file.exists() else await create_token(hub.store, "join", name)
            opts = AgentOptions(
                hub=server,
                cluster_name=name,
                join_token=token,
                backend="simulated",
                profile=str(profile_file),
                state_file=str(state_file),
                hub_verify=str(ca_file),
            )
            agents.append(Agent(opts))
        stop = asyncio.Event()
        tasks = [asyncio.create_task(a.run(stop), name=f"demo-agent-{a.cluster_name}") for a in agents]
        await asyncio.wait_for(asyncio.gather(*(a.ready.wait() for a in agents)), timeout=60)
        for path, body in OBJECTS:
            r = await c.post(path, json=body)
            if r.status_code not in (201, 409):
                log.warning("demo: creating %s %s failed: %s", body["kind"], body["metadata"]["name"], r.text)
        log.info("demo fleet up: %d SIMULATED clusters, sample workloads in namespace demo", len(agents))
        try:
            await asyncio.gather(*tasks)
        finally:
            stop.set()
