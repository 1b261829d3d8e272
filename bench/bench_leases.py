"""What one agent heartbeat costs the hub: the old way (PATCH the Cluster's status with a new
heartbeatTime) against the lease (PUT /v1/clusters/NAME/lease).

Real parts: a hub process (`fleetplane up`, controllers on) on a private embedded Postgres;
N Clusters with a full capacity report; one agent credential per cluster, minted with the
store function the CLI uses. Each mode sends ROUNDS heartbeats per cluster with 16 in flight,
the way 1,000 agents' heartbeats arrive together, and measures request latency, throughput,
hub CPU per 1,000 heartbeats, and how many resourceVersions (event rows, each one a wake-up
for every Cluster watcher and for the controller) the heartbeats took.

    python bench/bench_leases.py                       # N=1000, 3 rounds
    python bench/bench_leases.py --clusters 200 --rounds 2

Writes bench/results/leases.json and bench/results/leases.md. Clusters are not backed by
spokes: the requests are what agents send (the agent's own HubClient, so the same bytes).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "spoke-agent")]

from fleetplane_testing import HubProcess, free_port
from hub.store.database import EmbeddedPostgres, upgrade
from hub.store.store import Store
from hub.store.tokens import create_token
from spoke_agent.hub import HubClient

API = "/apis/fleetplane.io/v1alpha1"
IN_FLIGHT = 16


def capacity(i: int) -> dict[str, Any]:
    nodes = [{"name": f"c{i}-n{j}", "gpus": 8, "free": 8} for j in range(4)]
    pool = {
        "name": "h100",
        "model": "H100",
        "memoryGiB": 80,
        "capacityType": "on-demand",
        "gpusPerNode": 8,
        "total": 32,
        "allocatable": 32,
        "allocated": 0,
        "free": 32,
        "nodes": nodes,
    }
    return {
        "conditions": [{"type": "Ready", "status": "True", "reason": "AgentReporting"}],
        "region": "us-east-1",
        "gpuPools": [pool],
        "totalGpus": 32,
        "freeGpus": 32,
        "agentVersion": "bench",
    }


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


async def setup(hub: HubProcess, url: str, names: list[str]) -> list[str]:
    headers = {"Authorization": f"Bearer {hub.admin_token}"}
    async with httpx.AsyncClient(base_url=hub.http_url, headers=headers, timeout=60) as c:
        sem = asyncio.Semaphore(IN_FLIGHT)

        async def one(i: int, name: str) -> None:
            async with sem:
                r = await c.post(f"{API}/clusters", json={"metadata": {"name": name}, "spec": {"region": "us-east-1"}})
                assert r.status_code == 201, r.text
                r = await c.patch(
                    f"{API}/clusters/{name}/status",
                    content=json.dumps({"status": {**capacity(i), "heartbeatTime": now()}}),
                    headers={"Content-Type": "application/merge-patch+json"},
                )
                assert r.status_code == 200, r.text

        await asyncio.gather(*(one(i, n) for i, n in enumerate(names)))
    store = Store(url, pool_size=2)
    try:
        return [await create_token(store, "agent", n) for n in names]
    finally:
        await store.close()


async def current_rv(hub: HubProcess) -> int:
    async with httpx.AsyncClient(base_url=hub.http_url, timeout=60) as c:
        r = await c.get(f"{API}/clusters", params={"limit": 1}, headers={"Authorization": f"Bearer {hub.admin_token}"})
        return int(r.json()["metadata"]["resourceVersion"])


async def run_mode(hub: HubProcess, mode: str, names: list[str], tokens: list[str], rounds: int) -> dict[str, Any]:
    clients = []
    for t in tokens:
        c = HubClient(hub.http_url, verify=False)
        await c.set_token(t)
        clients.append(c)
    proc = psutil.Process(hub.proc.pid if hub.proc else 0)
    latencies: list[float] = []
    sem = asyncio.Semaphore(IN_FLIGHT)

    async def beat(i: int) -> None:
        async with sem:
            t = time.perf_counter()
            if mode == "status PATCH (before)":
                await clients[i].patch_cluster_status(names[i], {**capacity(i), "heartbeatTime": now()})
            else:
                await clients[i].renew_lease(names[i], f"bench/{i}", 30.0, timeout=30.0)
            latencies.append(time.perf_counter() - t)

    rv0 = await current_rv(hub)
    cpu0 = proc.cpu_times()
    t0 = time.perf_counter()
    for _ in range(rounds):
        await asyncio.gather(*(beat(i) for i in range(len(names))))
    wall = time.perf_counter() - t0
    cpu1 = proc.cpu_times()
    rv1 = await current_rv(hub)
    for c in clients:
        await c.aclose()
    n = len(latencies)
    latencies.sort()
    cpu = cpu1.user + cpu1.system - cpu0.user - cpu0.system
    return {
        "mode": mode,
        "heartbeats": n,
        "per_second": round(n / wall, 1),
        "p50_ms": round(statistics.median(latencies) * 1000, 2),
        "p99_ms": round(latencies[int(0.99 * (n - 1))] * 1000, 2),
        "hub_cpu_s_per_1000": round(cpu / n * 1000, 2),
        "resource_versions_taken": rv1 - rv0,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--clusters", type=int, default=1000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "leases"))
    args = ap.parse_args()

    root = Path(tempfile.mkdtemp(prefix="fp-bench-leases-"))
    root.chmod(0o755)  # Postgres runs as its own user
    pg = EmbeddedPostgres(root / "pg", database="bench")
    url = pg.url()
    upgrade(url)
    hub = HubProcess(root / "hub", url, free_port(), free_port()).start(timeout=120)
    try:
        names = [f"bench-{i:05d}" for i in range(args.clusters)]
        load_before = os.getloadavg()
        tokens = asyncio.run(setup(hub, url, names))
        rows = [
            asyncio.run(run_mode(hub, mode, names, tokens, args.rounds))
            for mode in ("status PATCH (before)", "lease PUT (now)")
        ]
        load_after = os.getloadavg()
    finally:
        hub.stop()
    command = f"python bench/bench_leases.py --clusters {args.clusters} --rounds {args.rounds}"
    result = {
        "command": command,
        "clusters": args.clusters,
        "rounds": args.rounds,
        "in_flight": IN_FLIGHT,
        "cpus": os.cpu_count(),
        "load_average_1m": [round(load_before[0], 2), round(load_after[0], 2)],
        "rows": rows,
        "note": "clusters are not backed by spokes (requests are the agent HubClient's own); not SIMULATED agents",
    }
    Path(args.out + ".json").write_text(json.dumps(result, indent=2) + "\n")
    cols = ["mode", "heartbeats", "per_second", "p50_ms", "p99_ms", "hub_cpu_s_per_1000", "resource_versions_taken"]
    widths = [max(len(c), *(len(str(r[c])) for r in rows)) for c in cols]
    table = [
        "| " + " | ".join(c.ljust(w) for c, w in zip(cols, widths, strict=True)) + " |",
        "|" + "|".join("-" * (w + 2) for w in widths) + "|",
        *("| " + " | ".join(str(r[c]).ljust(w) for c, w in zip(cols, widths, strict=True)) + " |" for r in rows),
    ]
    md = [
        "# Agent heartbeats: status PATCH vs lease renewal",
        "",
        f"`{command}` — {args.clusters} clusters × {args.rounds} rounds, {IN_FLIGHT} in flight, hub with controllers "
        f"on, one process, on {os.cpu_count()} cores shared with other work (1-min load average "
        f"{load_before[0]:.1f} before, {load_after[0]:.1f} after).",
        "",
        *table,
        "",
        "resource_versions_taken: rows appended to the event log (each wakes every Cluster watcher and the "
        "controller's event listener). A lease renewal takes none.",
    ]
    Path(args.out + ".md").write_text("\n".join(md) + "\n")
    print("\n".join(table))
    print(f"\nwritten: {args.out}.json, {args.out}.md")


if __name__ == "__main__":
    main()
