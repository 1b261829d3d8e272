"""Footprint of the spoke agent: RSS and CPU when idle, and with N Assignments.

Real parts: a hub process (`python -m hub.cli up`), the agent as its own process
(`python -m spoke_agent`), and for --backend kubernetes one lab spoke (real kube-apiserver,
controller-manager, scheduler, kwok). Writes bench/results/agent-<backend>-<N>.json.

    python bench/agent/bench_agent.py --backend simulated --assignments 1000
    python bench/agent/bench_agent.py --backend kubernetes --assignments 1000

Phases: idle (agent joined, nothing assigned, 30 s window), load (N Assignments created on
the hub, until the hub shows all of them Succeeded), steady (N Assignments, all done,
30 s window). CPU is the agent process's user+system time over the window, as a percentage
of one core.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import psutil
import yaml

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT), str(ROOT / "spoke-agent")]

from fleetplane_testing.agenthub import start_hub, stop_hub
from fleetplane_testing.processes import AgentProcess, kubectl

PROFILE = {
    "cluster": {"region": "us-east-1", "zone": "us-east-1a"},
    "pools": [
        {"name": "h100", "model": "H100", "memoryGiB": 80, "capacityType": "on-demand", "nodes": 4, "gpusPerNode": 8}
    ],
    "jobs": {"durationSeconds": 1, "startDelaySeconds": 0.1},
}


def rss_breakdown(pid: int, top: int = 8) -> dict[str, Any]:
    """What the process's RSS is made of, from /proc/PID/smaps: anonymous memory (the Python
    heap, thread stacks, malloc arenas) against file-backed pages (the interpreter and the
    extension modules' code), and the largest mappings by path ("[anon]" for unnamed ones)."""
    by_path: dict[str, int] = {}
    anon = file_backed = 0
    path = ""
    for line in Path(f"/proc/{pid}/smaps").read_text().splitlines():
        head = line.split(maxsplit=5)
        if "-" in head[0] and len(head) >= 5 and not head[0].endswith(":"):
            path = head[5] if len(head) == 6 else "[anon]"
            continue
        if head[0] == "Rss:":
            kib = int(head[1])
            by_path[path] = by_path.get(path, 0) + kib
            if path.startswith("/"):
                file_backed += kib
            else:
                anon += kib
    largest = sorted(by_path.items(), key=lambda kv: -kv[1])[:top]
    return {
        "anonymous_mib": round(anon / 1024, 1),
        "file_backed_mib": round(file_backed / 1024, 1),
        "largest_mappings_mib": {p.rsplit("/", 1)[-1]: round(k / 1024, 1) for p, k in largest},
        "threads": psutil.Process(pid).num_threads(),
    }


def window(proc: psutil.Process, seconds: float) -> dict[str, Any]:
    t0 = proc.cpu_times()
    start = time.monotonic()
    rss_max = 0
    while time.monotonic() - start < seconds:
        rss_max = max(rss_max, proc.memory_info().rss)
        time.sleep(0.5)
    t1 = proc.cpu_times()
    cpu = (t1.user + t1.system - t0.user - t0.system) / (time.monotonic() - start) * 100
    return {
        "cpu_percent_of_one_core": round(cpu, 2),
        "rss_mib": round(proc.memory_info().rss / 2**20, 1),
        "rss_max_mib": round(rss_max / 2**20, 1),
        "rss": rss_breakdown(proc.pid),
    }


def job(i: int) -> dict[str, Any]:
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": f"bench-{i}"},
        "spec": {
            "backoffLimit": 0,
            "template": {"spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "bench"}]}},
        },
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--backend", choices=["simulated", "kubernetes"], default="simulated")
    ap.add_argument("--assignments", type=int, default=1000)
    ap.add_argument("--window", type=float, default=30.0)
    ap.add_argument("--timeout", type=float, default=900.0)
    args = ap.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="fp-agent-bench-"))
    hub = start_hub()
    lab = None
    result: dict[str, Any] = {"backend": args.backend, "assignments": args.assignments, "window_seconds": args.window}
    agent: AgentProcess | None = None
    try:
        hub.create_namespace("bench")
        cluster = "bench-1"
        common = [
            "--hub",
            hub.url,
            "--hub-ca",
            str(hub.ca),
            "--join-token",
            hub.join_token(cluster),
            "--cluster-name",
            cluster,
            "--log-level",
            "WARNING",
        ]
        if args.backend == "simulated":
            (tmp / "profile.yaml").write_text(yaml.safe_dump(PROFILE))
            extra = [
                "--backend",
                "simulated",
                "--profile",
                str(tmp / "profile.yaml"),
                "--state-file",
                str(tmp / "state.json"),
            ]
        else:
            from fleetplane_lab import Lab, SpokeSpec

            lab = Lab(tmp / "lab", spokes=[SpokeSpec(name=cluster, profiles=["l4-ondemand"])], with_hub=False).up()
            kc = lab.spokes[cluster].kubeconfig
            kubectl(kc, "create", "namespace", "bench")
            extra = ["--kubeconfig", kc]
        agent = AgentProcess(args=common + extra, log_path=tmp / "agent.log").start()
        # "agent ready" is logged at INFO; poll the hub instead since the bench runs at WARNING.
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                if (hub.cluster(cluster).get("status") or {}).get("heartbeatTime"):
                    break
            except Exception:
                pass
            time.sleep(0.5)
        assert agent.proc is not None
        proc = psutil.Process(agent.proc.pid)
        time.sleep(5)
        result["idle"] = window(proc, args.window)
        print("idle", result["idle"], flush=True)

        peak = {"rss": 0}
        stop = threading.Event()

        def sample() -> None:
            while not stop.is_set():
                peak["rss"] = max(peak["rss"], proc.memory_info().rss)
                time.sleep(0.25)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        t0 = time.monotonic()
        cpu0 = proc.cpu_times()
        with hub.client() as c:
            for i in range(args.assignments):
                body = {
                    "apiVersion": "fleetplane.io/v1alpha1",
                    "kind": "Assignment",
                    "metadata": {
                        "name": f"bench-{i}",
                        "namespace": "bench",
                        "finalizers": ["fleetplane.io/agent-cleanup"],
                    },
                    "spec": {
                        "clusterName": cluster,
                        "workloadRef": {"name": f"bench-{i}"},
                        "epoch": 1,
                        "manifests": [job(i)],
                    },
                }
                r = c.post("/apis/fleetplane.io/v1alpha1/namespaces/bench/assignments", json=body)
                assert r.status_code in (200, 201), r.text
        result["create_seconds"] = round(time.monotonic() - t0, 1)
        done = 0
        with hub.client() as c:
            while time.monotonic() - t0 < args.timeout:
                items = c.get("/apis/fleetplane.io/v1alpha1/namespaces/bench/assignments").json()["items"]
                done = sum(1 for a in items if (a.get("status") or {}).get("phase") == "Succeeded")
                if done >= args.assignments:
                    break
                time.sleep(2)
        cpu1 = proc.cpu_times()
        result["load"] = {
            "seconds_until_all_succeeded": round(time.monotonic() - t0, 1),
            "succeeded": done,
            "cpu_seconds": round(cpu1.user + cpu1.system - cpu0.user - cpu0.system, 1),
        }
        stop.set()
        sampler.join()
        result["load"]["rss_peak_mib"] = round(peak["rss"] / 2**20, 1)
        print("load", result["load"], flush=True)
        time.sleep(5)
        result["steady"] = window(proc, args.window)
        print("steady", result["steady"], flush=True)
    finally:
        if agent:
            agent.stop()
        if lab is not None:
            lab.down()
        stop_hub(hub)
    out = ROOT / "bench" / "results" / f"agent-{args.backend}-{args.assignments}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    result["measured_at"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    result["machine"] = {"cpus": psutil.cpu_count(), "load_avg_at_end": [round(x, 2) for x in psutil.getloadavg()]}
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
