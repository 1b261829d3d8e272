"""Federation benchmark: placements/s through the hub with 1,000 SIMULATED clusters (issue 14's
target P2), and end-to-end submit → Running latency on the lab (real Kubernetes spokes).

P2: 1,000 SIMULATED clusters with 10 s heartbeats, 5,000 workloads submitted by 16 concurrent
clients: >= 500 placements/s (decision + Assignment committed), create → placed p99 <= 2 s, hub
CPU idle with 1,000 clusters <= 10 % of a core, hub RSS <= 1 GB. The defaults of `--part scale`
are that run; the report prints each target next to the measured value.

Part 1, scale (`--part scale`). One hub (controllers ON; `--hub-workers` API processes) on
embedded Postgres, as bench/bench_hub.py starts it. N clusters (default 1,000) join it through the real protocol:
each is a spoke-agent `Agent` with the SIMULATED backend (in-memory node pools, no
Kubernetes), many agents sharing one asyncio loop in a few worker processes. Cluster mixes
are seeded-random: 1-4 pools each of H100/A100/L4 on spot/on-demand/reserved capacity. When
every cluster is Ready, the heartbeat-only hub is measured for a window (idle CPU), then a
burst of W workloads (default 5,000; varied GPU needs, a few impossible) is POSTed to the kube
API by 16 concurrent clients (`--clients`, each its own connection, one request at a time). A
watch on the namespace timestamps, per workload, the first status that carries a decision
(status.placement.clusters set = placed, or phase Pending with the engine's reason) and the
first phase Running (the simulated agent started its Job). The controller writes
status.placement.clusters in the same transaction as the workload's Assignments, so "placed"
is decision + Assignment committed.
Latencies are client-side: from just before the POST to the watch event. Throughput is
decisions (and placements) per second from the first POST until the last decision.
Hub CPU is the user+system time of every hub process (with `--hub-workers` > 1 the API workers
and the controller process too) over the burst; RSS (summed over them) sampled every 0.5 s;
the embedded Postgres (all its processes) and the agent workers are reported separately.

Where the hub's time goes: the hub is started through a launcher in this file
(`--hub-launcher`) that runs the normal `fleetplane up` after (a) starting a 100 Hz stack
sampler thread on the main (event loop) thread and (b) wrapping FederationController
methods with wall-clock timers. Nothing in the hub's code is changed; results go to
bench/results/federation-profile.json and the summary into federation.md.

Part 2, lab (`--part lab`). `fleetplane_lab.Lab` with the hub and 2 real spokes (kube-apiserver,
controller-manager, scheduler, kwok GPU nodes), one real kubernetes-backend agent process
per spoke (least-privilege ServiceAccount, default agent settings). N small GPU Jobs
(1 GPU each) are submitted one at a time as Workloads through the hub's kube API (HTTPS,
the endpoint kubectl uses); watches on the hub and on both spokes timestamp Placed, the
Job's pod Running on the spoke, and the hub Workload phase Running.

    .venv/bin/python bench/bench_federation.py                         # both parts
    .venv/bin/python bench/bench_federation.py --part scale                 # P2: 1,000 clusters, 5,000 workloads
    .venv/bin/python bench/bench_federation.py --part scale --clusters 100 --workloads 500   # quick
    .venv/bin/python bench/bench_federation.py --part lab --lab-jobs 30

Results: bench/results/federation.md (+ federation.json, federation-profile.json).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
for _p in (ROOT, ROOT / "spoke-agent"):
    if str(_p) not in sys.path:
        sys.path.insert(0, str(_p))

RESULTS_DIR = Path(__file__).resolve().parent / "results"
API = "/apis/fleetplane.io/v1alpha1"
NS = "bench"


def pct(xs: list[float], p: float) -> float:
    if not xs:
        return float("nan")
    s = sorted(xs)
    return s[min(len(s) - 1, round(p / 100 * (len(s) - 1)))]


def ms(x: float) -> str:
    return "-" if x != x else (f"{x * 1000:.0f} ms" if x < 10 else f"{x:.1f} s")


# ====================================================================== hub launcher (profiling)


def hub_launcher(out: str, argv: list[str]) -> None:
    """Run `fleetplane up` with a stack sampler and FederationController timers (bench-side only)."""
    import functools
    import runpy

    main_id = threading.get_ident()
    phase_file = Path(out + ".phase")
    prof: dict[str, Any] = {"interval_s": 0.01, "phases": {}, "timers": {}, "passes": []}
    lock = threading.Lock()

    def phase_now() -> str:
        try:
            return phase_file.read_text().strip() or "startup"
        except OSError:
            return "startup"

    def dump() -> None:
        with lock:
            data = json.dumps(prof)
        tmp = out + ".tmp"
        Path(tmp).write_text(data)
        os.replace(tmp, out)

    def sampler() -> None:
        phase, last_check, last_dump = "startup", 0.0, time.monotonic()
        prev_phase = phase
        while True:
            time.sleep(0.01)
            now = time.monotonic()
            if now - last_check > 0.5:
                phase, last_check = phase_now(), now
            frame = sys._current_frames().get(main_id)
            names: list[str] = []
            while frame is not None:
                code = frame.f_code
                fn = code.co_filename
                short = (
                    fn.split("/site-packages/")[-1]
                    if "/site-packages/" in fn
                    else os.path.relpath(fn, ROOT)
                    if fn.startswith(str(ROOT))
                    else fn.rsplit("/", 1)[-1]
                )
                names.append(f"{short}:{code.co_qualname if hasattr(code, 'co_qualname') else code.co_name}")
                frame = frame.f_back
            names.reverse()
            with lock:
                ph = prof["phases"].setdefault(phase, {"samples": 0, "inclusive": {}, "leaf": {}, "stacks": {}})
                ph["samples"] += 1
                for n in set(names):
                    ph["inclusive"][n] = ph["inclusive"].get(n, 0) + 1
                if names:
                    ph["leaf"][names[-1]] = ph["leaf"].get(names[-1], 0) + 1
                    # collapsed stack of project frames + the leaf (flamegraph.pl format)
                    proj = [n for n in names if n.startswith(("hub/", "placement/"))]
                    key = ";".join([*proj[-12:], names[-1]])
                    ph["stacks"][key] = ph["stacks"].get(key, 0) + 1
            if now - last_dump > 3 or phase != prev_phase:
                prev_phase = phase
                last_dump = now
                try:
                    dump()
                except Exception:
                    pass

    import hub.controllers.federation as fed

    def timer_add(name: str, dt: float) -> None:
        with lock:
            t = prof["timers"].setdefault(phase_now_cached[0], {}).setdefault(name, [0, 0.0, 0.0])
            t[0] += 1
            t[1] += dt
            t[2] = max(t[2], dt)

    phase_now_cached = ["startup"]

    def refresh_phase() -> None:
        while True:
            phase_now_cached[0] = phase_now()
            time.sleep(0.5)

    def wrap_async(cls: Any, name: str) -> None:
        orig = getattr(cls, name)

        @functools.wraps(orig)
        async def w(*a: Any, **k: Any) -> Any:
            t = time.perf_counter()
            try:
                return await orig(*a, **k)
            finally:
                dt = time.perf_counter() - t
                timer_add(name, dt)
                if name == "reconcile":
                    with lock:
                        if len(prof["passes"]) < 20000:
                            prof["passes"].append([round(time.time(), 3), round(dt, 4), phase_now_cached[0]])

        setattr(cls, name, w)

    def wrap_sync(owner: Any, name: str, label: str) -> None:
        orig = getattr(owner, name)

        @functools.wraps(orig)
        def w(*a: Any, **k: Any) -> Any:
            t = time.perf_counter()
            try:
                return orig(*a, **k)
            finally:
                timer_add(label, time.perf_counter() - t)

        setattr(owner, name, w)

    FC = fed.FederationController
    for n in (
        "reconcile",
        "_health",
        "_place",
        "_commit_placements",
        "_stage_placement",
        "_set_pending",
        "_write_aggregates",
        "_add_finalizer",
        "_delete_workload",
        "_fence",
        "_next_timer",
    ):
        if hasattr(FC, n):  # the controller evolves; time what exists
            wrap_async(FC, n)
    wrap_sync(fed, "build_snapshot", "build_snapshot")
    # Decisions discarded because the workload changed after the pass listed it.
    orig_stage = FC._stage_placement

    async def counted_stage(self: Any, *a: Any, **k: Any) -> Any:
        ok = await orig_stage(self, *a, **k)
        if not ok:
            timer_add("stale decision (placement discarded: workload changed since the pass listed it)", 0.0)
        return ok

    FC._stage_placement = counted_stage  # type: ignore[method-assign]
    wrap_sync(fed, "reservations", "reservations")
    from placement import Engine

    wrap_sync(Engine, "place_batch", "Engine.place_batch")
    from hub.store.store import Store

    orig_list = Store.list

    async def timed_list(self: Any, resource: str, *a: Any, **k: Any) -> Any:
        t = time.perf_counter()
        try:
            return await orig_list(self, resource, *a, **k)
        finally:
            # attribute to the controller when called from it (cheap frame check)
            callers = (sys._getframe(i).f_code.co_filename for i in (1, 2))  # via the registry
            who = "controller" if any(c.endswith("federation.py") for c in callers) else "api"
            timer_add(f"Store.list[{who}] {resource.split('/')[-1]}", time.perf_counter() - t)

    Store.list = timed_list  # type: ignore[method-assign]

    threading.Thread(target=sampler, daemon=True, name="bench-sampler").start()
    threading.Thread(target=refresh_phase, daemon=True, name="bench-phase").start()
    import atexit

    atexit.register(dump)
    sys.argv = ["fleetplane", *argv]
    runpy.run_module("fleetplane", run_name="__main__", alter_sys=True)


# ====================================================================== agent worker


def start_agent_workers(
    into: list[subprocess.Popen[bytes]],
    tmp: Path,
    prefix: str,
    hub_url: str,
    clusters: list[dict[str, Any]],
    processes: int,
    heartbeat: float,
    stagger_batch: int,
    stagger_seconds: float,
    *,
    details: bool = False,
) -> list[Path]:
    """Start `processes` agent worker processes (`agent_worker`), the SIMULATED clusters
    ({name, token, profile}) split evenly between them; append them to `into` and return their
    status files (read with `agent_workers_status`). `details`: each status file also holds every
    agent's last renewal and watch-open times (bench_recovery)."""
    per = (len(clusters) + processes - 1) // processes
    status_files: list[Path] = []
    for n in range(processes):
        chunk = clusters[n * per : (n + 1) * per]
        if not chunk:
            continue
        sf = tmp / f"{prefix}-{n}.status.json"
        status_files.append(sf)
        spec = {
            "hub": hub_url,
            "heartbeat": heartbeat,
            "status_file": str(sf),
            "stagger_batch": stagger_batch,
            "stagger_seconds": stagger_seconds,
            "details": details,
            "clusters": chunk,
        }
        (tmp / f"{prefix}-{n}.json").write_text(json.dumps(spec))
        into.append(
            subprocess.Popen(
                [sys.executable, str(Path(__file__).resolve()), "--agent-worker", str(tmp / f"{prefix}-{n}.json")],
                cwd=ROOT,
                stdout=open(tmp / f"{prefix}-{n}.log", "ab"),  # noqa: SIM115  (held by the worker process)
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        )
    return status_files


def agent_workers_status(status_files: list[Path]) -> dict[str, Any]:
    """The agent workers' status files added up (ready, agents, n_failed, failed, details)."""
    agg: dict[str, Any] = {"ready": 0, "agents": 0, "n_failed": 0, "failed": [], "details": {}}
    for sf in status_files:
        try:
            s = json.loads(sf.read_text())
        except (OSError, ValueError):
            continue
        for k in ("ready", "agents", "n_failed"):
            agg[k] += s[k]
        agg["failed"] += s["failed"]
        agg["details"].update(s.get("details") or {})
    return agg


def agent_worker(spec_path: str) -> None:
    """Run many simulated-backend Agents on ONE asyncio loop (this process)."""
    import logging

    spec = json.loads(Path(spec_path).read_text())
    logging.basicConfig(level=logging.ERROR, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from spoke_agent.agent import Agent, AgentOptions
    from spoke_agent.backends.simulated import Profile, SimulatedBackend

    status_path = Path(spec["status_file"])

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        agents: list[Agent] = []
        tasks: list[asyncio.Task[Any]] = []
        for i, c in enumerate(spec["clusters"]):
            if stop.is_set():
                break
            opts = AgentOptions(
                hub=spec["hub"],
                cluster_name=c["name"],
                join_token=c["token"],
                backend="simulated",
                heartbeat_seconds=spec["heartbeat"],
                hub_verify=spec.get("verify", True),
            )
            a = Agent(opts, SimulatedBackend(Profile.from_dict(c["profile"]), cluster_name=c["name"]))
            agents.append(a)
            tasks.append(asyncio.create_task(a.run(stop), name=c["name"]))
            if (i + 1) % spec["stagger_batch"] == 0:
                await asyncio.sleep(spec["stagger_seconds"])
        while not stop.is_set():
            failed = [
                t.get_name() + ": " + repr(t.exception())[:200]
                for t in tasks
                if t.done() and not t.cancelled() and t.exception()
            ]
            status_path.write_text(
                json.dumps(
                    {
                        "ready": sum(a.ready.is_set() for a in agents),
                        "agents": len(agents),
                        "failed": failed[:5],
                        "n_failed": len(failed),
                        "reports": sum(a.reports for a in agents),
                        # per agent (bench_recovery): monotonic times of the last lease renewal sent and
                        # of the hub's last answer to its Assignment watch
                        **(
                            {"details": {a.cluster_name: [a.lease.renewed_at, a.hub.watch_opened_at] for a in agents}}
                            if spec.get("details")
                            else {}
                        ),
                    }
                )
            )
            try:
                await asyncio.wait_for(stop.wait(), 2)
            except TimeoutError:
                pass
        await asyncio.gather(*tasks, return_exceptions=True)

    asyncio.run(main())


# ====================================================================== part 1: scale

MODELS = {"H100": 80, "A100": 80, "L4": 24}
CTYPES = ["spot", "on-demand", "reserved"]
PRICES = {
    ("H100", "reserved"): 2.5,
    ("H100", "on-demand"): 4.0,
    ("H100", "spot"): 2.1,
    ("A100", "reserved"): 1.6,
    ("A100", "on-demand"): 2.6,
    ("A100", "spot"): 1.1,
    ("L4", "reserved"): 0.6,
    ("L4", "on-demand"): 0.98,
    ("L4", "spot"): 0.4,
}
REGIONS = ["us-east-1", "us-west-2", "eu-west-1", "eu-central-1", "ap-northeast-1", "ap-southeast-2"]


def cluster_profile(rng: random.Random, i: int) -> dict[str, Any]:
    region = REGIONS[i % len(REGIONS)]
    pools = []
    for p in range(rng.randint(1, 4)):
        model = rng.choices(["H100", "A100", "L4"], weights=[3, 3, 4])[0]
        ctype = rng.choice(CTYPES)
        pools.append(
            {
                "name": f"p{p}-{model.lower()}-{ctype}",
                "model": model,
                "memoryGiB": MODELS[model] if model != "A100" else rng.choice([40, 80]),
                "capacityType": ctype,
                "nodes": rng.randint(1, 4),
                "gpusPerNode": 8 if model != "L4" else rng.choice([4, 8]),
                "pricePerGpuHour": PRICES[(model, ctype)],
            }
        )
    return {
        "cluster": {"region": region, "zone": f"{region}a"},
        "pools": pools,
        "jobs": {"durationSeconds": 3600, "startDelaySeconds": 0.5},
    }


def workload(rng: random.Random, i: int) -> dict[str, Any]:
    r = rng.random()
    spec: dict[str, Any]
    if r < 0.40:  # inference: 1 GPU, L4 preferred, any capacity
        gpus, replicas = 1, rng.randint(1, 2)
        spec = {
            "gpu": {"count": gpus, "models": ["L4", "A100"], "preferredModels": ["L4"]},
            "capacityTypes": {"allowed": CTYPES, "preferred": ["spot"]},
        }
    elif r < 0.75:  # fine-tune: 4 GPUs of A100/H100, 40 GiB+
        gpus, replicas = 4, rng.randint(1, 2)
        spec = {
            "gpu": {"count": gpus, "models": ["A100", "H100"], "minMemoryGiB": 40},
            "capacityTypes": {"allowed": ["reserved", "on-demand", "spot"], "preferred": ["reserved"]},
        }
    elif r < 0.92:  # training: 8x H100, gang of 1-4, no spot
        gpus, replicas = 8, rng.randint(1, 4)
        spec = {"gpu": {"count": gpus, "models": ["H100"]}, "capacityTypes": {"allowed": ["reserved", "on-demand"]}}
    elif r < 0.97:  # divisible batch: 8 x 1 GPU anywhere, up to 4 clusters
        gpus, replicas = 1, 8
        spec = {
            "gpu": {"count": gpus},
            "placementMode": "Divisible",
            "maxClusters": 4,
            "capacityTypes": {"allowed": CTYPES},
        }
    else:  # impossible: 16 GPUs on one node (no node has more than 8) -> Pending with a reason
        gpus, replicas = 16, 1
        spec = {"gpu": {"count": gpus, "models": ["H100"]}}
    name = f"w-{i:05d}"
    job = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name, "annotations": {"fleetplane.io/simulated-duration-seconds": "3600"}},
        "spec": {
            "parallelism": replicas,
            "completions": replicas,
            "template": {
                "spec": {
                    "restartPolicy": "Never",
                    "containers": [
                        {"name": "main", "image": "bench", "resources": {"limits": {"nvidia.com/gpu": str(gpus)}}}
                    ],
                }
            },
        },
    }
    spec.update({"replicas": replicas, "priority": rng.randint(0, 10), "manifests": [job]})
    return {
        "apiVersion": "fleetplane.io/v1alpha1",
        "kind": "Workload",
        "metadata": {"name": name, "namespace": NS},
        "spec": spec,
    }


def _role(p: Any) -> str:
    """A hub process's role from its command line: `python -m hub.supervisor fleetplane up`,
    `python -m fleetplane controller`, `python -m fleetplane api-worker`, Postgres, or the
    one-process `fleetplane up`."""
    try:
        cmd = p.cmdline()
    except Exception:
        return "?"
    if "hub.supervisor" in cmd:
        return "supervisor"
    for role in ("controller", "api-worker"):
        if role in cmd:
            return role
    return "up" if "up" in cmd else os.path.basename(cmd[0]) if cmd else "?"


class Sampler:
    """RSS/CPU of processes every 0.5 s in a thread."""

    def __init__(self, procs: dict[str, Any]) -> None:
        self.procs = procs  # name -> callable returning list[psutil.Process]
        self.peak: dict[str, int] = {}
        self.peak_by_process: dict[str, int] = {}
        """Peak RSS of each hub process ("controller 123", "api-worker 124", "supervisor 120")."""
        self.stop_ev = threading.Event()
        self.t = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self.stop_ev.is_set():
            for name, get in self.procs.items():
                try:
                    ps = get()
                    if name == "postgres":
                        rss = sum(p.memory_full_info().pss for p in ps)
                    else:
                        each = [(p.pid, _role(p), p.memory_info().rss) for p in ps]
                        rss = sum(r for _, _, r in each)
                        if name == "hub":  # and each hub process's own peak, by its role
                            for pid, role, r in each:
                                key = f"{role} {pid}"
                                self.peak_by_process[key] = max(self.peak_by_process.get(key, 0), r)
                except Exception:
                    continue
                self.peak[name] = max(self.peak.get(name, 0), rss)
            self.stop_ev.wait(0.5)

    def start(self) -> Sampler:
        self.t.start()
        return self

    def stop(self) -> None:
        self.stop_ev.set()
        self.t.join()


def cpu_of(procs: list[Any]) -> float:
    total = 0.0
    for p in procs:
        try:
            t = p.cpu_times()
            total += t.user + t.system
        except Exception:
            pass
    return total


REQUEST_COUNTERS = ("fleetplane_apiserver_requests_total{", "fleetplane_lease_renewals_total{")
"""What the request mix counts: Kubernetes-API requests, and agent lease renewals (their own
endpoint with a fast path that never reaches the API's counter; an idle fleet sends little else)."""


def scrape(http_url: str, token: str) -> dict[str, float]:
    import httpx

    text = httpx.get(http_url + "/metrics", headers={"Authorization": f"Bearer {token}"}, timeout=30).text
    return parse_request_counters(text)


def parse_request_counters(text: str) -> dict[str, float]:
    """The REQUEST_COUNTERS samples of a /metrics text, by their name and labels as written."""
    out: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith(REQUEST_COUNTERS):
            labels, val = line.rsplit(" ", 1)
            out[labels] = float(val)
    return out


def request_mix(before: dict[str, float], after: dict[str, float], seconds: float) -> list[tuple[str, float]]:
    """Requests per second by "verb resource code" (API) or "renew lease path" (batched, routed),
    the 8 busiest."""
    mix: Counter[str] = Counter()
    for k, v in after.items():
        d = v - before.get(k, 0.0)
        if d <= 0:
            continue
        lab = {a: b.strip('"') for a, b in (x.split("=", 1) for x in k[k.index("{") + 1 : k.rindex("}")].split(","))}
        if k.startswith("fleetplane_lease_renewals_total{"):
            key = f"renew lease {lab['path']}"
        else:
            key = f"{lab['verb']} {lab['resource']} {lab['code']}"
        mix[key] += d
    return [(k, v / seconds) for k, v in mix.most_common(8)]


def run_scale(args: argparse.Namespace, log: Any) -> dict[str, Any]:
    import httpx
    import psutil

    from fleetplane_testing import HubProcess, free_port
    from hub.settings import Settings
    from hub.store.database import EmbeddedPostgres, upgrade

    res: dict[str, Any] = {
        "clusters": args.clusters,
        "workloads": args.workloads,
        "workers": args.workers,
        "cluster_timeout_seconds": args.cluster_timeout or Settings().cluster_timeout_seconds,
        "join_rate_per_s": args.workers * args.stagger_batch / args.stagger,
        "heartbeat_seconds": args.heartbeat,
        "clients": args.clients,
        "hub_workers": args.hub_workers,
    }
    tmp = Path(tempfile.mkdtemp(prefix="fp-fed-bench-"))
    os.chmod(tmp, 0o755)
    log(f"scale: work dir {tmp}")
    pg = EmbeddedPostgres(tmp / "pg", database="postgres")
    url = pg.create_database("fed")
    upgrade(url)
    prof_path = RESULTS_DIR / "federation-profile.json"
    hub = HubProcess(tmp / "hub", url, free_port(), free_port(), workers=args.hub_workers)
    phase_file = Path(str(prof_path) + ".phase")
    phase_file.write_text("startup")

    def set_phase(p: str) -> None:
        phase_file.write_text(p)

    workers: list[subprocess.Popen[bytes]] = []
    sampler: Sampler | None = None
    try:
        # --- hub through the profiling launcher: the one launcher (HubProcess) with another program
        if args.cluster_timeout:
            hub.extra_env["FLEETPLANE_CLUSTER_TIMEOUT_SECONDS"] = str(args.cluster_timeout)
        if not args.no_profile:
            hub.program = [sys.executable, str(Path(__file__).resolve()), "--hub-launcher", str(prof_path), "--"]
        hub.start(timeout=90)
        assert hub.proc is not None
        hub_p = psutil.Process(hub.proc.pid)

        def hub_procs() -> list[Any]:
            try:
                return [hub_p, *hub_p.children(recursive=True)]
            except psutil.Error:
                return [hub_p]

        def hub_rss() -> int:
            total = 0
            for p in hub_procs():
                try:
                    total += p.memory_info().rss
                except psutil.Error:
                    pass
            return total

        pm_pid = int((tmp / "pg" / "postgres" / "postmaster.pid").read_text().split()[0])
        pm = psutil.Process(pm_pid)

        def pg_procs() -> list[Any]:
            try:
                return [pm, *pm.children(recursive=True)]
            except psutil.Error:
                return []

        token = hub.admin_token
        c = httpx.Client(base_url=hub.http_url, headers={"Authorization": f"Bearer {token}"}, timeout=120)
        c.post("/api/v1/namespaces", json={"metadata": {"name": NS}}).raise_for_status()

        # --- join tokens (same function as `fleetplane cluster join-token create`), cluster profiles
        from hub.store.store import Store
        from hub.store.tokens import create_token

        async def tokens(names: list[str]) -> list[str]:
            store = Store(url, pool_size=2)
            try:
                return [await create_token(store, "join", n) for n in names]
            finally:
                await store.close()

        rng = random.Random(42)
        names = [f"sim-{i:04d}" for i in range(args.clusters)]
        toks = asyncio.run(tokens(names))
        profiles = [cluster_profile(rng, i) for i in range(args.clusters)]
        fleet = {
            "pools": sum(len(p["pools"]) for p in profiles),
            "nodes": sum(q["nodes"] for p in profiles for q in p["pools"]),
            "gpus": sum(q["nodes"] * q["gpusPerNode"] for p in profiles for q in p["pools"]),
            "by_model": dict(
                Counter(q["model"] for p in profiles for q in p["pools"] for _ in range(q["nodes"] * q["gpusPerNode"]))
            ),
            "by_capacity_type": dict(
                Counter(
                    q["capacityType"]
                    for p in profiles
                    for q in p["pools"]
                    for _ in range(q["nodes"] * q["gpusPerNode"])
                )
            ),
        }
        res["fleet"] = fleet
        log(f"scale: fleet {fleet}")

        # --- agent workers: simulated spokes, many Agents per event loop
        set_phase("join")
        t_join = time.monotonic()
        clusters = [{"name": n, "token": t, "profile": pr} for n, t, pr in zip(names, toks, profiles, strict=True)]
        status_files = start_agent_workers(
            workers,
            tmp,
            "worker",
            hub.http_url,
            clusters,
            args.workers,
            args.heartbeat,
            args.stagger_batch,
            args.stagger,
        )
        worker_ps = [psutil.Process(w.pid) for w in workers]
        sampler = Sampler({"hub": hub_procs, "postgres": pg_procs, "workers": lambda: worker_ps}).start()

        def worker_status() -> dict[str, Any]:
            return agent_workers_status(status_files)

        def ready_clusters() -> int:
            items = c.get(f"{API}/clusters").json()["items"]
            return sum(
                1
                for x in items
                for cond in (x.get("status") or {}).get("conditions") or []
                if cond.get("type") == "Ready" and cond.get("status") == "True"
            )

        deadline = time.monotonic() + args.join_timeout
        best = (0, time.monotonic())  # most agents ready so far, and when
        while True:
            ws = worker_status()
            for w in workers:
                if w.poll() is not None:
                    raise RuntimeError(f"agent worker exited {w.returncode}")
            if ws["ready"] >= args.clusters or (
                ws["agents"] >= args.clusters and ws["ready"] + ws["n_failed"] >= args.clusters
            ):
                res["agents_failed_to_join"] = ws["n_failed"]
                res["agent_failure_examples"] = ws["failed"][:3]
                break
            if ws["ready"] > best[0]:
                best = (ws["ready"], time.monotonic())
            if ws["ready"] >= 0.9 * args.clusters and time.monotonic() - best[1] > args.join_stall:
                # A join whose answer was lost under load is not retried (docs/agent.md); go on with
                # the clusters that are Ready and say how many never joined.
                log(f"scale: no agent joined for {args.join_stall:g}s; going on with {ws['ready']} Ready")
                res["agents_failed_to_join"] = args.clusters - ws["ready"]
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"only {ws['ready']}/{args.clusters} agents ready after {args.join_timeout}s: {ws}")
            log(
                f"scale: agents ready {ws['ready']}/{args.clusters} (failed {ws['n_failed']}) after {time.monotonic() - t_join:.0f}s"
            )
            time.sleep(5)
        res["join_seconds"] = round(time.monotonic() - t_join, 1)
        res["ready_clusters_on_hub"] = ready_clusters()
        log(
            f"scale: {args.clusters} agents ready in {res['join_seconds']}s; hub says {res['ready_clusters_on_hub']} Ready"
        )

        # --- idle window: heartbeats only
        set_phase("idle")
        time.sleep(5)
        m0, cpu0, pg0, wk0, t0 = (
            scrape(hub.http_url, token),
            cpu_of(hub_procs()),
            cpu_of(pg_procs()),
            cpu_of(worker_ps),
            time.monotonic(),
        )
        time.sleep(args.idle_window)
        dt = time.monotonic() - t0
        res["idle"] = {
            "window_s": round(dt, 1),
            "hub_cpu_pct_of_core": round((cpu_of(hub_procs()) - cpu0) / dt * 100, 1),
            "postgres_cpu_pct_of_core": round((cpu_of(pg_procs()) - pg0) / dt * 100, 1),
            "workers_cpu_pct_of_core": round((cpu_of(worker_ps) - wk0) / dt * 100, 1),
            "hub_rss_mib": round(hub_rss() / 2**20, 1),
            "requests_per_s": request_mix(m0, scrape(hub.http_url, token), dt),
        }
        log(f"scale: idle {res['idle']}")

        # --- burst
        set_phase("burst")
        rng_w = random.Random(7)
        bodies = [workload(rng_w, i) for i in range(args.workloads)]
        res["workload_mix"] = dict(
            Counter(
                f"{b['spec']['gpu']['count']} GPU x{b['spec']['replicas']}"
                + (" Divisible" if b["spec"].get("placementMode") == "Divisible" else "")
                for b in bodies
            )
        )
        sent: dict[str, float] = {}
        decided: dict[str, tuple[float, str]] = {}
        running: dict[str, float] = {}
        final: dict[str, dict[str, Any]] = {}
        m0, cpu0, pg0, wk0 = scrape(hub.http_url, token), cpu_of(hub_procs()), cpu_of(pg_procs()), cpu_of(worker_ps)
        sampler.peak["hub"] = hub_rss()
        sampler.peak_by_process.clear()

        async def burst() -> dict[str, Any]:
            headers = {"Authorization": f"Bearer {token}"}
            async with httpx.AsyncClient(
                base_url=hub.http_url,
                headers=headers,
                timeout=300,
                limits=httpx.Limits(max_connections=4),
            ) as ac:
                rv = (await ac.get(f"{API}/namespaces/{NS}/workloads", params={"limit": "1"})).json()["metadata"][
                    "resourceVersion"
                ]
                all_decided = asyncio.Event()
                all_running = asyncio.Event()

                async def watch() -> None:
                    nonlocal rv
                    while True:
                        try:
                            async with ac.stream(
                                "GET",
                                f"{API}/namespaces/{NS}/workloads",
                                params={"watch": "true", "resourceVersion": rv, "allowWatchBookmarks": "true"},
                                timeout=None,
                            ) as s:
                                async for line in s.aiter_lines():
                                    if not line:
                                        continue
                                    ev = json.loads(line)
                                    obj = ev["object"]
                                    rv = obj["metadata"].get("resourceVersion", rv)
                                    if ev["type"] not in ("ADDED", "MODIFIED"):
                                        continue
                                    now = time.perf_counter()
                                    name = obj["metadata"]["name"]
                                    st = obj.get("status") or {}
                                    final[name] = st
                                    pl = st.get("placement") or {}
                                    if name not in decided:
                                        if pl.get("clusters"):
                                            decided[name] = (now, "placed")
                                        elif st.get("phase") == "Pending" and (pl.get("reason") or st.get("message")):
                                            decided[name] = (now, "pending")
                                    if name in decided and decided[name][1] == "pending" and pl.get("clusters"):
                                        decided[name] = (decided[name][0], "placed-later")
                                    if name not in running and st.get("phase") in ("Running", "Succeeded"):
                                        running[name] = now
                                    if len(decided) >= args.workloads:
                                        all_decided.set()
                                    if (
                                        len(running) >= sum(1 for v in decided.values() if v[1] != "pending")
                                        and all_decided.is_set()
                                    ):
                                        all_running.set()
                        except (httpx.HTTPError, json.JSONDecodeError) as e:
                            log(f"scale: watch broke ({e!r}); resuming from {rv}")
                            await asyncio.sleep(0.2)

                wt = asyncio.create_task(watch())
                await asyncio.sleep(0.5)
                create_lat: list[float] = []
                errors: list[str] = []

                async def client(share: list[dict[str, Any]]) -> None:
                    """One of the concurrent clients: its own connection, one request at a time."""
                    async with httpx.AsyncClient(
                        base_url=hub.http_url, headers=headers, timeout=300, limits=httpx.Limits(max_connections=1)
                    ) as cc:
                        for b in share:
                            t = time.perf_counter()
                            sent[b["metadata"]["name"]] = t
                            r = await cc.post(f"{API}/namespaces/{NS}/workloads", json=b)
                            create_lat.append(time.perf_counter() - t)
                            if r.status_code != 201:
                                errors.append(f"{r.status_code} {r.text[:200]}")

                t_first = time.perf_counter()
                await asyncio.gather(*(client(bodies[i :: args.clients]) for i in range(args.clients)))
                t_submitted = time.perf_counter()
                log(
                    f"scale: {len(bodies)} workloads submitted in {t_submitted - t_first:.1f}s ({len(errors)} errors); decided so far {len(decided)}"
                )
                try:
                    await asyncio.wait_for(all_decided.wait(), args.burst_timeout)
                except TimeoutError:
                    log(f"scale: timeout: only {len(decided)}/{args.workloads} decided")
                t_decided = time.perf_counter()
                try:
                    await asyncio.wait_for(all_running.wait(), 120)
                except TimeoutError:
                    log("scale: not every placed workload reached Running within 120 s after the last decision")
                t_running = time.perf_counter()
                wt.cancel()
                return {
                    "t_first": t_first,
                    "t_submitted": t_submitted,
                    "t_decided": t_decided,
                    "t_running": t_running,
                    "create_lat": create_lat,
                    "errors": errors,
                }

        b = asyncio.run(burst())
        t_first = b["t_first"]
        wall_decided = max((v[0] for v in decided.values()), default=b["t_decided"]) - t_first
        cpu_hub, cpu_pg, cpu_wk = cpu_of(hub_procs()) - cpu0, cpu_of(pg_procs()) - pg0, cpu_of(worker_ps) - wk0
        wall_all = b["t_running"] - t_first
        m1 = scrape(hub.http_url, token)
        placed = [n for n, v in decided.items() if v[1] != "pending"]
        pending = [n for n, v in decided.items() if v[1] == "pending"]
        lat_decide = [decided[n][0] - sent[n] for n in decided if n in sent]
        lat_place = [decided[n][0] - sent[n] for n in placed if n in sent and decided[n][1] == "placed"]
        lat_pending = [decided[n][0] - sent[n] for n in pending if n in sent]
        lat_run = [running[n] - sent[n] for n in running if n in sent]
        reasons = Counter((final[n].get("message") or "")[:90] for n in pending)
        res["burst"] = {
            "submit_seconds": round(b["t_submitted"] - t_first, 1),
            "submit_errors": len(b["errors"]),
            "submit_error_examples": b["errors"][:3],
            "create_p50_ms": round(pct(b["create_lat"], 50) * 1000, 1),
            "create_p99_ms": round(pct(b["create_lat"], 99) * 1000, 1),
            "decided": len(decided),
            "placed": len(placed),
            "pending_with_reason": len(pending),
            "seconds_until_all_decided": round(wall_decided, 1),
            "decisions_per_s": round(len(decided) / wall_decided, 1) if wall_decided > 0 else None,
            "placements_per_s": round(len(placed) / wall_decided, 1) if wall_decided > 0 else None,
            "decision_latency_p50_s": round(pct(lat_decide, 50), 3),
            "decision_latency_p99_s": round(pct(lat_decide, 99), 3),
            "placed_latency_p50_s": round(pct(lat_place, 50), 3),
            "placed_latency_p99_s": round(pct(lat_place, 99), 3),
            "pending_latency_p50_s": round(pct(lat_pending, 50), 3),
            "pending_latency_p99_s": round(pct(lat_pending, 99), 3),
            "running": len(running),
            "running_latency_p50_s": round(pct(lat_run, 50), 3),
            "running_latency_p99_s": round(pct(lat_run, 99), 3),
            "pending_reasons_top": reasons.most_common(5),
            "wall_until_all_running_s": round(wall_all, 1),
            "hub_cpu_seconds": round(cpu_hub, 1),
            "hub_cpu_pct_of_core": round(cpu_hub / wall_all * 100, 1),
            "postgres_cpu_pct_of_core": round(cpu_pg / wall_all * 100, 1),
            "workers_cpu_pct_of_core": round(cpu_wk / wall_all * 100, 1),
            "hub_rss_peak_mib": round(sampler.peak.get("hub", 0) / 2**20, 1),
            "postgres_pss_peak_mib": round(sampler.peak.get("postgres", 0) / 2**20, 1),
            "workers_rss_peak_mib": round(sampler.peak.get("workers", 0) / 2**20, 1),
            "hub_rss_peak_mib_by_process": {k: round(v / 2**20, 1) for k, v in sorted(sampler.peak_by_process.items())},
            "requests_per_s": request_mix(m0, m1, wall_all),
        }
        log(f"scale: burst {json.dumps(res['burst'], default=str)}")

        # --- consistency: Assignments the simulated spokes could not schedule (double-booking would show here)
        set_phase("after")
        time.sleep(1)
        items = c.get(f"{API}/namespaces/{NS}/assignments").json()["items"]
        res["assignments"] = {
            "total": len(items),
            "by_phase": dict(Counter((a.get("status") or {}).get("phase") for a in items)),
            "unschedulable_on_spoke": sum(1 for a in items if (a.get("status") or {}).get("reason") == "Unschedulable"),
            "clusters_used": len({a["spec"]["clusterName"] for a in items}),
        }
        res["ready_clusters_after"] = ready_clusters()
        ws = worker_status()
        res["agent_failures"] = ws["n_failed"]
        log(f"scale: assignments {res['assignments']}, ready clusters after {res['ready_clusters_after']}")
        c.close()
    finally:
        for w in workers:
            if w.poll() is None:
                w.send_signal(signal.SIGTERM)
        for w in workers:
            try:
                w.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(w.pid, signal.SIGKILL)
                w.wait(10)
        if sampler:
            sampler.stop()
        set_phase("stopping")
        time.sleep(1.5)  # the launcher dumps its profile on a phase change
        hub.stop()
        time.sleep(0.5)
        phase_file.unlink(missing_ok=True)
    if not args.no_profile and prof_path.exists():
        res["profile"] = summarize_profile(json.loads(prof_path.read_text()))
    return res


def summarize_profile(prof: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for phase in ("idle", "burst"):
        ph = prof["phases"].get(phase)
        if not ph:
            continue
        n = ph["samples"]
        inc = ph["inclusive"]

        def share(pred: Any, inc: dict[str, float] = inc, n: int = n) -> float:
            return round(sum(v for k, v in inc.items() if pred(k)) / n * 100, 1) if n else 0.0

        idle = sum(v for k, v in ph["leaf"].items() if k.endswith(("select", ":select", "poll")) or "selectors.py" in k)
        top = sorted(((k, v) for k, v in inc.items() if k.startswith(("hub/", "placement/"))), key=lambda kv: -kv[1])[
            :25
        ]
        leaves = sorted(ph["leaf"].items(), key=lambda kv: -kv[1])[:15]
        timers = {
            k: {
                "calls": v[0],
                "total_s": round(v[1], 2),
                "mean_ms": round(v[1] / v[0] * 1000, 1) if v[0] else 0,
                "max_ms": round(v[2] * 1000, 1),
            }
            for k, v in sorted((prof["timers"].get(phase) or {}).items(), key=lambda kv: -kv[1][1])
        }
        passes = [p[1] for p in prof["passes"] if p[2] == phase]
        out[phase] = {
            "samples": n,
            "event_loop_idle_pct": round(idle / n * 100, 1) if n else None,
            "top_project_functions_inclusive_pct": [(k, round(v / n * 100, 1)) for k, v in top],
            "top_leaves_pct": [(k, round(v / n * 100, 1)) for k, v in leaves],
            "federation_reconcile_pct": share(lambda k: k.endswith("FederationController.reconcile")),
            "timers": timers,
            "passes": {
                "count": len(passes),
                "p50_s": round(pct(passes, 50), 3),
                "p99_s": round(pct(passes, 99), 3),
                "max_s": round(max(passes), 3) if passes else None,
            },
        }
    return out


# ====================================================================== part 2: lab e2e


def run_lab(args: argparse.Namespace, log: Any) -> dict[str, Any]:
    import httpx
    import yaml

    from fleetplane_lab import Lab, default_spokes
    from fleetplane_lab.fixtures import require_lab_binaries
    from fleetplane_testing.processes import AgentProcess, kubectl

    require_lab_binaries()
    busy = int(
        subprocess.run("pgrep -f kube-apiserver | wc -l", shell=True, capture_output=True, text=True).stdout.strip()
        or 0
    )
    log(f"lab: {busy} kube-apiserver processes running before start (other users)")
    tmp = Path(tempfile.mkdtemp(prefix="fp-fed-lab-"))
    os.chmod(tmp, 0o755)
    lab = Lab(tmp / "lab", spokes=default_spokes(2), with_hub=True, progress=lambda m: log("lab: " + m))
    agents: list[AgentProcess] = []
    res: dict[str, Any] = {"spokes": 2, "jobs": args.lab_jobs, "apiservers_running_before": busy}
    try:
        t0 = time.monotonic()
        lab.up()
        res["lab_up_s"] = round(time.monotonic() - t0, 1)
        assert lab.hub is not None
        hub_dir = Path(lab.hub.data_dir)
        hub_ca = hub_dir / "hub-cert.pem"
        env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), str(ROOT / "spoke-agent")]))
        for name, s in lab.spokes.items():
            kc = s.kubeconfig
            kubectl(kc, "create", "namespace", "fleetplane-system")
            kubectl(kc, "apply", "-f", str(ROOT / "deploy/agent/rbac.yaml"))
            sa_token = kubectl(
                kc, "-n", "fleetplane-system", "create", "token", "fleetplane-agent", "--duration=4h"
            ).stdout.strip()
            cfg = yaml.safe_load(Path(kc).read_text())
            for u in cfg["users"]:
                u["user"] = {"token": sa_token}
            akc = tmp / f"{name}-agent.kubeconfig"
            akc.write_text(yaml.safe_dump(cfg))
            jt = (
                subprocess.run(
                    [
                        sys.executable,
                        "-m",
                        "fleetplane",
                        "cluster",
                        "join-token",
                        "create",
                        name,
                        "--data-dir",
                        str(hub_dir),
                    ],
                    check=True,
                    capture_output=True,
                    text=True,
                    env=env,
                    cwd=ROOT,
                )
                .stdout.strip()
                .splitlines()[-1]
            )
            a = AgentProcess(
                args=[
                    "--hub",
                    lab.hub.url,
                    "--hub-ca",
                    str(hub_ca),
                    "--join-token",
                    jt,
                    "--cluster-name",
                    name,
                    "--kubeconfig",
                    str(akc),
                ],
                log_path=tmp / f"{name}-agent.log",
            )
            agents.append(a.start())
        for a in agents:
            a.wait_until_ready(120)
        log("lab: both agents ready")
        token = lab.hub.token
        hubc = httpx.Client(
            base_url=lab.hub.url, verify=str(hub_ca), headers={"Authorization": f"Bearer {token}"}, timeout=30
        )
        hubc.post("/api/v1/namespaces", json={"metadata": {"name": NS}}).raise_for_status()
        # wait until the hub sees both clusters Ready with GPUs
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            cl = hubc.get(f"{API}/clusters").json()["items"]
            if sum(1 for x in cl if (x.get("status") or {}).get("totalGpus")) >= 2:
                break
            time.sleep(0.5)

        def wl(i: int) -> dict[str, Any]:
            name = f"lab-{i:03d}"
            job = {
                "apiVersion": "batch/v1",
                "kind": "Job",
                "metadata": {"name": name},
                "spec": {
                    "backoffLimit": 0,
                    "template": {
                        "metadata": {"annotations": {"pod-complete.stage.kwok.x-k8s.io/delay": "20s"}},
                        "spec": {
                            "restartPolicy": "Never",
                            "containers": [
                                {
                                    "name": "main",
                                    "image": "bench:latest",
                                    "resources": {"limits": {"nvidia.com/gpu": "1"}},
                                }
                            ],
                        },
                    },
                },
            }
            return {
                "apiVersion": "fleetplane.io/v1alpha1",
                "kind": "Workload",
                "metadata": {"name": name, "namespace": NS},
                "spec": {"gpu": {"count": 1}, "capacityTypes": {"allowed": CTYPES}, "manifests": [job]},
            }

        ev: dict[str, dict[str, float]] = {}
        where: dict[str, str] = {}

        async def main() -> None:
            spokes = dict(lab.spokes.items())
            async with httpx.AsyncClient(
                base_url=lab.hub.url, verify=str(hub_ca), headers={"Authorization": f"Bearer {token}"}, timeout=30
            ) as hc:
                rv = (await hc.get(f"{API}/namespaces/{NS}/workloads")).json()["metadata"]["resourceVersion"]

                async def hub_watch() -> None:
                    async with hc.stream(
                        "GET",
                        f"{API}/namespaces/{NS}/workloads",
                        params={"watch": "true", "resourceVersion": rv},
                        timeout=None,
                    ) as s:
                        async for line in s.aiter_lines():
                            if not line:
                                continue
                            e = json.loads(line)
                            now = time.perf_counter()
                            o = e["object"]
                            n = o["metadata"]["name"]
                            st = o.get("status") or {}
                            d = ev.setdefault(n, {})
                            if (st.get("placement") or {}).get("clusters") and "placed" not in d:
                                d["placed"] = now
                                where[n] = st["placement"]["clusters"][0]["name"]
                            if st.get("phase") in ("Running", "Succeeded") and "hub_running" not in d:
                                d["hub_running"] = now

                async def spoke_watch(name: str, s: Any) -> None:
                    async with httpx.AsyncClient(
                        base_url=s.server,
                        verify=str(s.ca_file),
                        headers={"Authorization": f"Bearer {s.token}"},
                        timeout=30,
                    ) as sc:
                        srv = (await sc.get(f"/api/v1/namespaces/{NS}/pods")).json()["metadata"]["resourceVersion"]
                        async with sc.stream(
                            "GET",
                            f"/api/v1/namespaces/{NS}/pods",
                            params={"watch": "true", "resourceVersion": srv},
                            timeout=None,
                        ) as st:
                            async for line in st.aiter_lines():
                                if not line:
                                    continue
                                e = json.loads(line)
                                now = time.perf_counter()
                                o = e["object"]
                                job = (o["metadata"].get("labels") or {}).get("job-name")
                                if not job:
                                    continue
                                d = ev.setdefault(job, {})
                                d.setdefault("pod_created", now)
                                if o["spec"].get("nodeName"):
                                    d.setdefault("pod_bound", now)
                                if (o.get("status") or {}).get("phase") in ("Running", "Succeeded"):
                                    d.setdefault("pod_running", now)

                # the namespace appears on a spoke only when the agent creates it; retry the spoke watches until then
                async def spoke_watch_retry(name: str, s: Any) -> None:
                    while True:
                        try:
                            await spoke_watch(name, s)
                        except Exception:
                            await asyncio.sleep(0.05)

                tasks = [asyncio.create_task(hub_watch())] + [
                    asyncio.create_task(spoke_watch_retry(n, s)) for n, s in spokes.items()
                ]
                await asyncio.sleep(1)
                for i in range(args.lab_jobs):
                    body = wl(i)
                    n = body["metadata"]["name"]
                    t = time.perf_counter()
                    ev.setdefault(n, {})["sent"] = t
                    r = await hc.post(f"{API}/namespaces/{NS}/workloads", json=body)
                    assert r.status_code == 201, r.text
                    ev[n]["created"] = time.perf_counter()
                    deadline = time.perf_counter() + 30
                    while not ("hub_running" in ev[n] and "pod_running" in ev[n]):
                        if time.perf_counter() > deadline:
                            log(f"lab: {n} not Running after 30 s: {ev[n]}")
                            break
                        await asyncio.sleep(0.01)
                    d = ev[n]
                    log(
                        f"lab: {n} on {where.get(n)}: placed {ms(d.get('placed', float('nan')) - t)}, pod Running "
                        f"{ms(d.get('pod_running', float('nan')) - t)}, hub Running {ms(d.get('hub_running', float('nan')) - t)}"
                    )
                    await asyncio.sleep(0.3)
                for tk in tasks:
                    tk.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)

        asyncio.run(main())
        hubc.close()
        names = [f"lab-{i:03d}" for i in range(args.lab_jobs)]

        def series(a: str, b: str) -> list[float]:
            return [ev[n][b] - ev[n][a] for n in names if a in ev.get(n, {}) and b in ev.get(n, {})]

        rows = {}
        for label, a, b in [
            ("submit → hub Workload Running", "sent", "hub_running"),
            ("submit → Job's pod Running on the spoke", "sent", "pod_running"),
            ("submit → create answered (201)", "sent", "created"),
            ("submit → Placed (Assignment written)", "sent", "placed"),
            ("Placed → pod created on the spoke", "placed", "pod_created"),
            ("pod created → pod bound (scheduler)", "pod_created", "pod_bound"),
            ("pod bound → pod Running (kwok)", "pod_bound", "pod_running"),
            ("pod Running → hub Workload Running", "pod_running", "hub_running"),
        ]:
            xs = series(a, b)
            rows[label] = {
                "n": len(xs),
                "p50_s": round(pct(xs, 50), 3),
                "p99_s": round(pct(xs, 99), 3),
                "max_s": round(max(xs), 3) if xs else None,
            }
        res["latency"] = rows
        res["placed_on"] = dict(Counter(where.values()))
        st = lab.status()
        res["rss_mib"] = {cpt.name: round(cpt.rss_bytes / 2**20, 1) for cpt in st.components if "hub" in cpt.name}
    finally:
        for a in agents:
            a.stop()
        report = lab.down()
        res["down"] = {
            "stopped": len(report.stopped),
            "killed": report.killed,
            "busy_ports": report.busy_ports,
            "leftover_pids": report.leftover_pids,
        }
        log(f"lab: down {res['down']}")
    return res


# ====================================================================== report


def machine() -> str:
    import psutil

    return (
        f"{platform.machine()}, {os.cpu_count()} cores, {psutil.virtual_memory().total / 2**30:.0f} GiB, "
        f"Python {platform.python_version()}, {time.strftime('%Y-%m-%d')}"
    )


def p2_targets(sc: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    """Issue 14's P2 rows: (target, measured, goal, met)."""
    b, idle = sc["burst"], sc["idle"]

    def row(name: str, value: float | None, goal: float, unit: str, at_least: bool) -> tuple[str, str, str, str]:
        if value is None or value != value:
            return name, "-", f"{'>=' if at_least else '<='} {goal:g}{unit}", "no"
        ok = value >= goal if at_least else value <= goal
        return name, f"{value:g}{unit}", f"{'>=' if at_least else '<='} {goal:g}{unit}", "yes" if ok else "no"

    return [
        row("placements/s (decision + Assignment committed)", b["placements_per_s"], 500, "/s", True),
        row("create → placed p99", b["placed_latency_p99_s"], 2, " s", False),
        row("hub CPU idle (heartbeats only)", idle["hub_cpu_pct_of_core"], 10, " % of a core", False),
        row("hub RSS (peak during the burst)", round(b["hub_rss_peak_mib"] / 1024, 2), 1, " GiB", False),
    ]


def write_report(args: argparse.Namespace, results: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    rows: list[tuple[str, str, str, str]] = []
    sc = results.get("scale")
    if sc:
        b = sc["burst"]
        tag = f"{sc['clusters']} SIMULATED clusters"
        rows += [
            (
                f"scale · join {tag} (agents ready)",
                f"{sc['join_seconds']} s"
                + (f" ({sc['agents_failed_to_join']} never joined)" if sc.get("agents_failed_to_join") else ""),
                "",
                "",
            ),
            (
                f"scale · submit burst ({sc.get('clients', 16)} concurrent clients)",
                f"{sc['workloads']} in {b['submit_seconds']} s",
                f"{b['create_p50_ms']} ms",
                f"{b['create_p99_ms']} ms",
            ),
            (
                "scale · decisions/s until all decided",
                f"{b['decisions_per_s']}/s ({b['decided']} in {b['seconds_until_all_decided']} s)",
                "",
                "",
            ),
            (
                "scale · placements/s",
                f"{b['placements_per_s']}/s ({b['placed']} placed, {b['pending_with_reason']} pending w/ reason)",
                "",
                "",
            ),
            (
                "scale · create → status.placement set",
                f"{b['placed']}",
                ms(b["placed_latency_p50_s"]),
                ms(b["placed_latency_p99_s"]),
            ),
            (
                "scale · create → Pending with reason",
                f"{b['pending_with_reason']}",
                ms(b["pending_latency_p50_s"]),
                ms(b["pending_latency_p99_s"]),
            ),
            (
                "scale · create → Running (simulated agent)",
                f"{b['running']}",
                ms(b["running_latency_p50_s"]),
                ms(b["running_latency_p99_s"]),
            ),
            (
                "scale · hub CPU / RSS during burst",
                f"{b['hub_cpu_pct_of_core']} % of a core / peak {b['hub_rss_peak_mib']} MiB",
                "",
                "",
            ),
            (
                "scale · hub RSS peak of each process during burst",
                ", ".join(f"{k.split()[0]} {v} MiB" for k, v in b.get("hub_rss_peak_mib_by_process", {}).items())
                or "-",
                "",
                "",
            ),
            (
                "scale · hub CPU / RSS idle (heartbeats only)",
                f"{sc['idle']['hub_cpu_pct_of_core']} % / {sc['idle']['hub_rss_mib']} MiB",
                "",
                "",
            ),
        ]
    targets = p2_targets(sc) if sc else []
    lb = results.get("lab")
    if lb:
        for label, r in lb["latency"].items():
            rows.append((f"lab · {label}", str(r["n"]), ms(r["p50_s"]), ms(r["p99_s"])))
    table = Table(title="Fleetplane federation")
    for col in ("measurement", "value / n", "p50", "p99"):
        table.add_column(col)
    for r in rows:
        table.add_row(*r)
    Console().print(table)
    if targets and sc:
        t2 = Table(title=f"Issue 14 target P2 ({sc['clusters']} SIMULATED clusters, {sc['workloads']} workloads)")
        for col in ("target", "measured", "goal", "met"):
            t2.add_column(col)
        for r in targets:
            t2.add_row(*r)
        Console().print(t2)

    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    (RESULTS_DIR / "federation.json").write_text(
        json.dumps({"machine": machine(), "args": vars(args), **results}, indent=2, default=str)
    )
    md = [
        "# Federation benchmark",
        "",
        f"Machine: {machine()}. Everything on this one machine (hub, Postgres, agents, spokes), shared with another "
        "engineer's lab tests. Command: `.venv/bin/python bench/bench_federation.py "
        + " ".join(
            f"--{k.replace('_', '-')} {v}"
            for k, v in vars(args).items()
            if k
            in (
                "part",
                "clusters",
                "workloads",
                "workers",
                "heartbeat",
                "stagger",
                "stagger_batch",
                "cluster_timeout",
                "clients",
                "hub_workers",
                "lab_jobs",
            )
            and v is not None
        )
        + "`.",
        "Method: see the module docstring of `bench/bench_federation.py`; raw numbers in `federation.json`, "
        "hub stack samples and controller timers in `federation-profile.json`.",
        "",
        "| measurement | value / n | p50 | p99 |",
        "|---|---|---|---|",
    ]
    md += [f"| {' | '.join(r)} |" for r in rows]
    if targets and sc:
        md += [
            "",
            f"Issue 14 target P2 ({sc['clusters']} SIMULATED clusters, {sc['heartbeat_seconds']} s heartbeats, "
            f"{sc['workloads']} workloads from {sc.get('clients', 16)} concurrent clients, "
            f"{sc.get('hub_workers', 1)} hub API process(es)):",
            "",
            "| target | measured | goal | met |",
            "|---|---|---|---|",
        ]
        md += [f"| {' | '.join(r)} |" for r in targets]
    (RESULTS_DIR / "federation.md").write_text("\n".join(md) + "\n")
    print(f"results written to {RESULTS_DIR / 'federation.md'} (notes are added by hand below the table)")


def main() -> None:
    if len(sys.argv) > 2 and sys.argv[1] == "--hub-launcher":
        out = sys.argv[2]
        rest = sys.argv[3:]
        if rest and rest[0] == "--":
            rest = rest[1:]
        hub_launcher(out, rest)
        return
    if len(sys.argv) > 2 and sys.argv[1] == "--agent-worker":
        agent_worker(sys.argv[2])
        return
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--part", choices=["all", "scale", "lab"], default="all")
    ap.add_argument("--clusters", type=int, default=1000)
    ap.add_argument("--workloads", type=int, default=5000)
    ap.add_argument("--workers", type=int, default=2, help="agent worker processes (agents share one loop per worker)")
    ap.add_argument("--heartbeat", type=float, default=10.0, help="agent heartbeat seconds (P2: 10)")
    ap.add_argument("--stagger", type=float, default=1.0, help="seconds between batches of agent starts per worker")
    ap.add_argument("--stagger-batch", type=int, default=10, help="agents started per batch per worker")
    ap.add_argument(
        "--cluster-timeout",
        type=float,
        default=None,
        help="hub FLEETPLANE_CLUSTER_TIMEOUT_SECONDS (hub default 40); raise it with slower heartbeats",
    )
    ap.add_argument(
        "--clients", "--in-flight", type=int, default=16, help="concurrent submitting clients (one request each)"
    )
    ap.add_argument(
        "--hub-workers", type=int, default=1, help="API worker processes of the hub (`fleetplane up --workers`)"
    )
    ap.add_argument("--idle-window", type=float, default=30.0)
    ap.add_argument("--join-timeout", type=float, default=900.0)
    ap.add_argument(
        "--join-stall", type=float, default=120.0, help="go on when >= 90%% are Ready and none joined for this long"
    )
    ap.add_argument("--burst-timeout", type=float, default=900.0)
    ap.add_argument("--no-profile", action="store_true", help="start the hub without the stack sampler/timers")
    ap.add_argument("--lab-jobs", type=int, default=30)
    args = ap.parse_args()

    def _term(signum: int, frame: Any) -> None:
        raise SystemExit(f"signal {signum}")  # run the finally blocks: stop workers, hub, lab

    signal.signal(signal.SIGTERM, _term)
    signal.signal(signal.SIGINT, _term)
    t0 = time.monotonic()

    def log(msg: str) -> None:
        print(f"[{time.monotonic() - t0:7.1f}s] {msg}", flush=True)

    results: dict[str, Any] = {}
    if args.part in ("all", "scale"):
        results["scale"] = run_scale(args, log)
    if args.part in ("all", "lab"):
        results["lab"] = run_lab(args, log)
    if args.part != "all":  # keep the other part's previous numbers in the report
        prev = RESULTS_DIR / "federation.json"
        if prev.exists():
            old = json.loads(prev.read_text())
            for k in ("scale", "lab"):
                if k not in results and k in old:
                    results[k] = old[k]
    write_report(args, results)


if __name__ == "__main__":
    main()
