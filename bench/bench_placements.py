"""The controller's ceiling: how fast ONE federation controller (the leader; there is one per
database) decides and commits placements when a backlog is waiting for it.

Issue 14's P2 asks for ≥ 500 placements/s (decision + Assignment committed). Through the API
that rate is bounded by how fast clients can CREATE workloads (bench_vs_kube: ~116 creates/s
for the one-process hub, ~131/s for kube-apiserver + etcd on this 2-core machine), so this bench
takes creation out of the measurement: it loads the backlog with the controllers off, then
starts a hub with the controller on and measures the controller alone.

Real parts: `fleetplane up` on a private embedded Postgres. The clusters are Cluster objects
with the capacity report that the spoke agent's SIMULATED backend produces (the agent's own
`cluster_status()`), written by the bench; no agent runs, so nothing else competes for the CPU
(the cluster timeout is raised to an hour so that reports written once stay current).

    python bench/bench_placements.py                                  # 1,000 clusters, 5,000 workloads
    python bench/bench_placements.py --clusters 100 --workloads 500   # quick

Writes bench/results/placements.json and .md. Columns: from the controller hub's start, when
the first and the last workload was decided (an Assignment, or a Placed=False condition with
the engine's reason), and placements/s over the drain (first → last decision).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import psutil
import sqlalchemy as sa

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "spoke-agent"), str(ROOT / "bench")]

from bench_federation import NS, cluster_profile, workload

from fleetplane_testing import HubProcess, free_port
from fleetplane_types.names import ASSIGNMENTS, PLACED_CONDITION, WORKLOADS
from hub.store.database import EmbeddedPostgres, sqlalchemy_url, upgrade
from spoke_agent.agent import Agent, AgentOptions
from spoke_agent.backends.simulated import Profile, SimulatedBackend

API = "/apis/fleetplane.io/v1alpha1"
MERGE = {"Content-Type": "application/merge-patch+json"}
IN_FLIGHT = 16
ENV = {"FLEETPLANE_CLUSTER_TIMEOUT_SECONDS": "3600"}


async def load(hub: HubProcess, clusters: int, workloads: int, seed: int) -> None:
    rng = random.Random(seed)
    profiles = [cluster_profile(rng, i) for i in range(clusters)]
    bodies = [workload(rng, i) for i in range(workloads)]
    headers = {"Authorization": f"Bearer {hub.admin_token}"}
    sem = asyncio.Semaphore(IN_FLIGHT)
    async with httpx.AsyncClient(base_url=hub.http_url, headers=headers, timeout=120) as c:
        (await c.post("/api/v1/namespaces", json={"metadata": {"name": NS}})).raise_for_status()

        async def cluster(i: int) -> None:
            name = f"sim-{i:05d}"
            prof = profiles[i]
            opts = AgentOptions(hub=hub.http_url, cluster_name=name, join_token="unused", backend="simulated")
            agent = Agent(opts, SimulatedBackend(Profile.from_dict(prof), cluster_name=name))
            status = agent.cluster_status()
            await agent.hub.aclose()
            spec = {**prof["cluster"], "backend": "simulated"}
            async with sem:
                r = await c.post(f"{API}/clusters", json={"metadata": {"name": name}, "spec": spec})
                assert r.status_code == 201, r.text
                r = await c.patch(f"{API}/clusters/{name}/status", json={"status": status}, headers=MERGE)
                assert r.status_code == 200, r.text

        async def submit(body: dict[str, Any]) -> None:
            async with sem:
                r = await c.post(f"{API}/namespaces/{NS}/workloads", json=body)
                assert r.status_code == 201, r.text

        await asyncio.gather(*(cluster(i) for i in range(clusters)))
        await asyncio.gather(*(submit(b) for b in bodies))


class Counter(threading.Thread):
    """Every 0.25 s, from the database: workloads decided (an Assignment, or Placed=False) and
    Assignments. Read with one cheap query so the sampling costs the hub nothing."""

    QUERY = sa.text(
        "SELECT (SELECT count(*) FROM objects WHERE resource = :a), "
        "(SELECT count(*) FROM objects w WHERE w.resource = :w AND EXISTS (SELECT 1 FROM "
        "jsonb_array_elements(CASE WHEN jsonb_typeof(w.data #> '{status,conditions}') = 'array' "
        "THEN w.data #> '{status,conditions}' ELSE '[]'::jsonb END) c WHERE c->>'type' = :p))"
    )

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.engine = sa.create_engine(sqlalchemy_url(url), pool_size=1)
        self.samples: list[tuple[float, int, int]] = []
        self.stop = threading.Event()

    def run(self) -> None:
        with self.engine.connect() as conn:
            while not self.stop.is_set():
                a, d = conn.execute(self.QUERY, {"a": ASSIGNMENTS, "w": WORKLOADS, "p": PLACED_CONDITION}).one()
                conn.rollback()
                self.samples.append((time.monotonic(), int(a), int(d)))
                self.stop.wait(0.25)
        self.engine.dispose()


def hub_processes(hub: HubProcess) -> list[psutil.Process]:
    if hub.proc is None:
        return []
    try:
        parent = psutil.Process(hub.proc.pid)
        return [parent, *parent.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def drain(hub: HubProcess, url: str, workloads: int, timeout: float, profile: str | None) -> dict[str, Any]:
    counter = Counter(url)
    counter.start()
    t0 = time.monotonic()
    hub.start(timeout=300)
    ready = time.monotonic() - t0
    procs = hub_processes(hub)
    spy = None
    if profile:  # py-spy (a dev dependency) on the process running the controller
        target = next((p for p in procs if "controller" in " ".join(p.cmdline())), procs[0])
        spy = subprocess.Popen(
            [str(Path(sys.executable).parent / "py-spy"), "record", "-p", str(target.pid), "-o", profile, "-f", "raw"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
    cpu0 = sum(p.cpu_times().user + p.cpu_times().system for p in procs)
    rss_peak = 0
    while time.monotonic() - t0 < timeout:
        rss_peak = max(rss_peak, sum(p.memory_info().rss for p in procs if p.is_running()))
        if counter.samples and counter.samples[-1][2] >= workloads:
            break
        time.sleep(0.5)
    cpu = sum(p.cpu_times().user + p.cpu_times().system for p in procs) - cpu0
    if spy is not None:
        spy.send_signal(signal.SIGINT)
        spy.wait(timeout=60)
    counter.stop.set()
    counter.join()
    s = counter.samples
    decided_total = s[-1][2] if s else 0
    first = next((t for t, _, d in s if d > 0), None)
    last = next((t for t, _, d in s if d >= decided_total), None)
    wall = (last - first) if first is not None and last is not None else 0.0
    # The steadiest second-by-second rate (median of 1 s windows while draining).
    rates = []
    for i in range(len(s)):
        j = next((k for k in range(i, len(s)) if s[k][0] - s[i][0] >= 1.0), None)
        if j is None or s[i][2] >= decided_total:
            break
        if s[i][2] > 0:
            rates.append((s[j][2] - s[i][2]) / (s[j][0] - s[i][0]))
    return {
        "hub_ready_s": round(ready, 2),
        "first_decision_s": round(first - t0, 2) if first is not None else None,
        "all_decided_s": round(last - t0, 2) if last is not None and decided_total >= workloads else None,
        "decided": decided_total,
        "assignments": s[-1][1] if s else 0,
        "placements_per_s": round(decided_total / wall, 1) if wall > 0 else None,
        "median_1s_rate": round(statistics.median(rates), 1) if rates else None,
        "hub_cpu_s": round(cpu, 1),
        "hub_rss_peak_mib": round(rss_peak / 2**20),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--clusters", type=int, default=1000)
    ap.add_argument("--workloads", type=int, default=5000)
    ap.add_argument("--hub-workers", type=int, default=1, help="API workers of the controller hub (1: one process)")
    ap.add_argument("--seed", type=int, default=14)
    ap.add_argument("--timeout", type=float, default=900)
    ap.add_argument("--profile", metavar="FILE", help="py-spy raw profile of the controller's process while it drains")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "placements"))
    args = ap.parse_args()

    root = Path(tempfile.mkdtemp(prefix="fp-bench-placements-"))
    root.chmod(0o755)  # Postgres runs as its own user
    pg = EmbeddedPostgres(root / "pg", database="bench")
    url = pg.url()
    upgrade(url)
    load_before = os.getloadavg()
    loader = HubProcess(
        root / "loader", url, free_port(), free_port(), extra_env={**ENV, "FLEETPLANE_CONTROLLERS": "false"}
    )
    loader.start(timeout=120)
    t = time.monotonic()
    try:
        asyncio.run(load(loader, args.clusters, args.workloads, args.seed))
    finally:
        loader.stop()
    load_s = time.monotonic() - t
    hub = HubProcess(root / "hub", url, free_port(), free_port(), extra_env=ENV, workers=args.hub_workers)
    try:
        row = drain(hub, url, args.workloads, args.timeout, args.profile)
    finally:
        hub.stop()
    load_after = os.getloadavg()
    command = (
        f"python bench/bench_placements.py --clusters {args.clusters} --workloads {args.workloads} "
        f"--hub-workers {args.hub_workers}"
    )
    result = {
        "command": command,
        "clusters": args.clusters,
        "clusters_note": "Cluster objects with the spoke agent's SIMULATED backend capacity report; no agent runs",
        "workloads": args.workloads,
        "hub_workers": args.hub_workers,
        "cpus": os.cpu_count(),
        "load_average_1m": [round(load_before[0], 2), round(load_after[0], 2)],
        "backlog_load_s": round(load_s, 1),
        **row,
    }
    Path(args.out + ".json").write_text(json.dumps(result, indent=2) + "\n")
    cols = [
        "hub_ready_s",
        "first_decision_s",
        "all_decided_s",
        "decided",
        "assignments",
        "placements_per_s",
        "median_1s_rate",
        "hub_cpu_s",
        "hub_rss_peak_mib",
    ]
    table = [
        "| " + " | ".join(cols) + " |",
        "|" + "|".join("---" for _ in cols) + "|",
        "| " + " | ".join(str(row[c]) for c in cols) + " |",
    ]
    md = [
        "# The controller's ceiling: placements/s draining a backlog",
        "",
        f"`{command}` — {args.clusters} SIMULATED clusters (capacity reports of the agent's simulated backend, "
        f"no agents running), {args.workloads} workloads loaded with the controllers off, then one hub with "
        f"the controller on ({args.hub_workers} API worker(s)); {os.cpu_count()} cores, 1-min load average "
        f"{load_before[0]:.1f} before, {load_after[0]:.1f} after. Times from the controller hub's start.",
        "",
        *table,
        "",
        "decided: workloads with an Assignment or a Placed=False condition (the engine's reason). "
        "placements_per_s: decided / (last decision − first decision).",
    ]
    Path(args.out + ".md").write_text("\n".join(md) + "\n")
    print("\n".join(table))
    print(f"\nwritten: {args.out}.json, {args.out}.md")


if __name__ == "__main__":
    main()
