"""Recovery benchmark (issue 14's target P8): `kill -9` of every hub process at 1,000 SIMULATED
clusters / 10,000 workloads, restart, and how long until the fleet is back under control.

Target P8: agents reconnected and the controller converged (no workload unplaced that fits,
statuses current) <= 10 s after the kill.

Setup (not measured). Embedded Postgres started by this benchmark (so it survives the hub's
kill, as a managed database would), one hub (`fleetplane up`, `--hub-workers` API processes,
controllers on), `--clusters` spoke agents on the SIMULATED backend (in-memory node pools, no
Kubernetes; bench_federation's `agent_worker`: many agents on one loop in `--agent-workers`
processes) with `--heartbeat` s heartbeats, and `--workloads` workloads (bench_federation's
seeded mix, a few impossible) POSTed by `--clients` concurrent clients. The benchmark waits until
every workload is decided (placed, or Pending with the engine's reason), every placed workload's
Assignments report Running and the workload says Running.

In flight at the kill. Then `--inflight` more workloads (default 1 % of `--workloads`) (1 GPU, any model and capacity type, at
most the free GPUs the Clusters report, so each one fits) are POSTed, and as soon as the last
one is answered every hub process (the `fleetplane up` parent and all its children, found with
psutil) gets SIGKILL. The hub is restarted at once on the same data dir, ports and database.

Measured from the kill (the bench keeps a list+watch copy of Workloads, Assignments and
Clusters, resumed by resourceVersion across the restart, and judges it every 0.1 s):
- kill → /readyz answers 200;
- kill → every agent has renewed its lease again (the latest renewTime of GET /v1/leases, the
  hub's own record, after the kill);
- kill → every agent's Assignment watch is answered again (the agent's `watch_opened_at`);
- kill → the controller has converged: every workload decided, every in-flight one placed,
  every placed workload's Assignments Running and its phase Running (the phase agrees with its
  Assignments), no Pending workload holding Assignments, every Cluster Ready, and every
  Assignment of the workloads placed before the kill unchanged (same uid, cluster, epoch: none
  failed over);
- converged = all of the above; met when <= `--target` s;
- then, for `--hold` s after the kill (default: the hub's cluster timeout + 2 heartbeats, past
  the moment a cluster whose lease the restart lost would go NotReady), every change is checked:
  a Cluster that stops being Ready, an Assignment of a pre-kill workload that is deleted or
  added, a pre-kill workload whose phase leaves Running — each counted as a wrong outcome;
- hub CPU (all its new processes, kill → converged) and RSS peak, Postgres CPU.

    .venv/bin/python bench/bench_recovery.py                                  # P8: 1,000 clusters, 10,000 workloads
    .venv/bin/python bench/bench_recovery.py --clusters 50 --workloads 500    # quick

Results: bench/results/recovery.md and recovery.json (every row says SIMULATED).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.bench_federation import (
    API,
    CTYPES,
    NS,
    RESULTS_DIR,
    Sampler,
    agent_workers_status,
    cluster_profile,
    cpu_of,
    machine,
    start_agent_workers,
    workload,
)

Log = Callable[[str], None]


# ====================================================================== the bench's view of the hub


class Mirror:
    """A list+watch copy of one resource (an informer): convergence is judged on what the hub's API
    says without re-listing 10,000 objects per tick. Across the hub's restart the watch resumes from
    the last resourceVersion seen (relists on 410), so it never shows changes out of order."""

    def __init__(
        self, client: Any, kind: str, path: str, on_event: Callable[[str, str, dict[str, Any], float], None]
    ) -> None:
        self.client = client
        self.kind = kind  # list items need not carry their kind
        self.path = path
        self.on_event = on_event
        self.objects: dict[str, dict[str, Any]] = {}
        self.rv = ""
        self.opened_at = 0.0  # monotonic time the last watch was answered 200

    @staticmethod
    def key(obj: dict[str, Any]) -> str:
        m = obj["metadata"]
        return f"{m.get('namespace') or ''}/{m['name']}"

    async def _list(self) -> None:
        items: list[dict[str, Any]] = []
        params: dict[str, str] = {"limit": "1000"}
        while True:
            r = await self.client.get(self.path, params=params)
            r.raise_for_status()
            body = r.json()
            items += body["items"]
            cont = body["metadata"].get("continue")
            if not cont:
                break
            params = {"limit": "1000", "continue": cont}
        self.objects = {self.key(o): o for o in items}
        self.rv = str(body["metadata"]["resourceVersion"])

    async def run(self) -> None:
        import httpx

        while True:
            try:
                if not self.rv:
                    await self._list()
                params = {"watch": "true", "resourceVersion": self.rv, "allowWatchBookmarks": "true"}
                async with self.client.stream(
                    "GET", self.path, params=params, timeout=httpx.Timeout(30, read=None)
                ) as s:
                    if s.status_code == 410:
                        self.rv = ""
                        continue
                    if s.status_code >= 400:
                        await s.aread()
                        raise RuntimeError(f"watch {self.path}: {s.status_code} {s.text[:200]}")
                    self.opened_at = time.monotonic()
                    async for line in s.aiter_lines():
                        if not line:
                            continue
                        ev = json.loads(line)
                        obj = ev["object"]
                        if ev["type"] == "ERROR":
                            if obj.get("code") == 410:
                                self.rv = ""
                                break
                            raise RuntimeError(f"watch {self.path}: {obj.get('message')}")
                        self.rv = str(obj["metadata"].get("resourceVersion") or self.rv)
                        if ev["type"] == "BOOKMARK":
                            continue
                        if ev["type"] == "DELETED":
                            self.objects.pop(self.key(obj), None)
                        else:
                            self.objects[self.key(obj)] = obj
                        self.on_event(self.kind, ev["type"], obj, time.monotonic())
            except (httpx.HTTPError, json.JSONDecodeError, RuntimeError):
                await asyncio.sleep(0.1)  # the hub is down (or restarting): try again soon


def is_ready(cluster: dict[str, Any]) -> bool:
    return any(
        c.get("type") == "Ready" and c.get("status") == "True"
        for c in (cluster.get("status") or {}).get("conditions") or []
    )


def placed(w: dict[str, Any]) -> bool:
    return bool(((w.get("status") or {}).get("placement") or {}).get("clusters"))


def pending_with_reason(w: dict[str, Any]) -> bool:
    st = w.get("status") or {}
    return st.get("phase") == "Pending" and bool((st.get("placement") or {}).get("reason") or st.get("message"))


def identity(a: dict[str, Any]) -> tuple[str, str, int]:
    return a["metadata"]["uid"], a["spec"]["clusterName"], int(a["spec"]["epoch"])


@dataclass
class Plan:
    """What the fleet must look like once the restarted hub has converged."""

    names: list[str]  # every workload submitted
    must_place: set[str] = field(default_factory=set)  # the in-flight ones: each fits
    before: dict[str, set[tuple[str, str, int]]] = field(default_factory=dict)  # placed before: Assignments


def problems(wl: Mirror, asg: Mirror, cl: Mirror, plan: Plan, clusters: int) -> Counter[str]:
    """Why the fleet is not converged (empty: converged). The rule for "status current" is written
    out here, not taken from the hub: Jobs of this benchmark run for an hour, so a placed workload is
    current when every one of its Assignments reports Running and the workload says Running."""
    out: Counter[str] = Counter()
    by_wl: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for a in asg.objects.values():
        by_wl[a["spec"]["workloadRef"]["name"]].append(a)
    for name in plan.names:
        w = wl.objects.get(f"{NS}/{name}")
        if w is None:
            out["workload missing"] += 1
            continue
        mine = [a for a in by_wl.get(name, []) if not a["metadata"].get("deletionTimestamp")]
        if placed(w):
            if not mine:
                out["placed workload without Assignments"] += 1
            elif any((a.get("status") or {}).get("phase") != "Running" for a in mine):
                out["Assignment not Running yet"] += 1
            elif (w.get("status") or {}).get("phase") != "Running":
                out["workload phase not Running though all its Assignments are"] += 1
        elif name in plan.must_place:
            out["in-flight workload (it fits) not placed"] += 1
        elif not pending_with_reason(w):
            out["workload not decided"] += 1
        elif mine:
            out["Pending workload holding Assignments"] += 1
        ids = plan.before.get(name)
        if ids is not None and {identity(a) for a in by_wl.get(name, [])} != ids:
            out["Assignments of a pre-kill workload changed (failover)"] += 1
    ready = sum(1 for c in cl.objects.values() if is_ready(c))
    if ready < clusters:
        out["Cluster not Ready"] += clusters - ready
    bad = sum(1 for a in asg.objects.values() if (a.get("status") or {}).get("reason") == "Unschedulable")
    if bad:
        out["Assignment Unschedulable on its spoke (double-booked)"] += bad
    return out


def examples(wl: Mirror, asg: Mirror, plan: Plan, n: int = 10) -> list[dict[str, Any]]:
    """Up to n workloads whose Assignments are not all Running: what each Assignment says, and
    whether it existed before the kill (for the report, to see what went wrong)."""
    before = {uid for ids in plan.before.values() for uid, _, _ in ids}
    by_wl: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for a in asg.objects.values():
        by_wl[a["spec"]["workloadRef"]["name"]].append(a)
    out = []
    for name, mine in sorted(by_wl.items()):
        if all((a.get("status") or {}).get("phase") == "Running" for a in mine):
            continue
        w = wl.objects.get(f"{NS}/{name}") or {}
        out.append(
            {
                "workload": name,
                "phase": (w.get("status") or {}).get("phase"),
                "in_flight": name in plan.must_place,
                "assignments": [
                    {
                        "cluster": a["spec"]["clusterName"],
                        "before_kill": a["metadata"]["uid"] in before,
                        "phase": (a.get("status") or {}).get("phase"),
                        "reason": (a.get("status") or {}).get("reason"),
                        "message": ((a.get("status") or {}).get("message") or "")[:120],
                    }
                    for a in mine
                ],
            }
        )
        if len(out) >= n:
            break
    return out


def rfc3339(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


# ====================================================================== the run


def inflight_workload(i: int) -> dict[str, Any]:
    """1 GPU of any model and capacity type: it fits on any node with a free GPU."""
    name = f"r-{i:05d}"
    job = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name, "annotations": {"fleetplane.io/simulated-duration-seconds": "3600"}},
        "spec": {
            "template": {
                "spec": {
                    "restartPolicy": "Never",
                    "containers": [
                        {"name": "main", "image": "bench", "resources": {"limits": {"nvidia.com/gpu": "1"}}}
                    ],
                }
            }
        },
    }
    return {
        "apiVersion": "fleetplane.io/v1alpha1",
        "kind": "Workload",
        "metadata": {"name": name, "namespace": NS},
        "spec": {"gpu": {"count": 1}, "capacityTypes": {"allowed": CTYPES}, "replicas": 1, "manifests": [job]},
    }


async def submit(url: str, token: str, bodies: list[dict[str, Any]], clients: int) -> list[str]:
    """POST the bodies with `clients` concurrent clients (each its own connection); the errors."""
    import httpx

    errors: list[str] = []
    headers = {"Authorization": f"Bearer {token}"}

    async def one_client(share: list[dict[str, Any]]) -> None:
        async with httpx.AsyncClient(
            base_url=url, headers=headers, timeout=300, limits=httpx.Limits(max_connections=1)
        ) as cc:
            for b in share:
                r = await cc.post(f"{API}/namespaces/{NS}/workloads", json=b)
                if r.status_code != 201:
                    errors.append(f"{b['metadata']['name']}: {r.status_code} {r.text[:200]}")

    await asyncio.gather(*(one_client(bodies[i::clients]) for i in range(clients)))
    return errors


def run(args: argparse.Namespace, log: Log) -> dict[str, Any]:
    import httpx

    from fleetplane_testing import HubProcess, free_port
    from hub.settings import Settings
    from hub.store.database import EmbeddedPostgres, upgrade
    from hub.store.store import Store
    from hub.store.tokens import create_token

    cluster_timeout = args.cluster_timeout or Settings().cluster_timeout_seconds
    hold = args.hold or cluster_timeout + 2 * args.heartbeat
    res: dict[str, Any] = {
        "simulated": True,
        "clusters": args.clusters,
        "workloads": args.workloads,
        "hub_workers": args.hub_workers,
        "agent_workers": args.agent_workers,
        "heartbeat_seconds": args.heartbeat,
        "cluster_timeout_seconds": cluster_timeout,
        "hold_seconds": hold,
        "target_seconds": args.target,
    }
    tmp = Path(tempfile.mkdtemp(prefix="fp-recovery-bench-"))
    os.chmod(tmp, 0o755)
    log(f"work dir {tmp}")
    pg = EmbeddedPostgres(tmp / "pg", database="postgres")  # this process holds it: it survives the hub
    url = pg.create_database("recovery")
    upgrade(url)
    hub = HubProcess(tmp / "hub", url, free_port(), free_port(), workers=args.hub_workers)
    if args.cluster_timeout:
        hub.extra_env["FLEETPLANE_CLUSTER_TIMEOUT_SECONDS"] = str(args.cluster_timeout)
    start_timeout = 90 + 45 * (args.hub_workers - 1)
    workers: list[subprocess.Popen[bytes]] = []
    try:
        hub.start(timeout=start_timeout)
        token = hub.admin_token
        with httpx.Client(base_url=hub.http_url, headers={"Authorization": f"Bearer {token}"}, timeout=120) as c:
            c.post("/api/v1/namespaces", json={"metadata": {"name": NS}}).raise_for_status()

        # --- SIMULATED agents (bench_federation's agent worker, per-agent details on)
        async def tokens(names: list[str]) -> list[str]:
            store = Store(url, pool_size=2)
            try:
                return [await create_token(store, "join", n) for n in names]
            finally:
                await store.close()

        names = [f"sim-{i:04d}" for i in range(args.clusters)]
        toks = asyncio.run(tokens(names))
        rng = random.Random(42)
        profiles = [cluster_profile(rng, i) for i in range(args.clusters)]
        clusters = [{"name": n, "token": t, "profile": pr} for n, t, pr in zip(names, toks, profiles, strict=True)]
        t_join = time.monotonic()
        status_files = start_agent_workers(
            workers,
            tmp,
            "agents",
            hub.http_url,
            clusters,
            args.agent_workers,
            args.heartbeat,
            args.stagger_batch,
            args.stagger,
            details=True,
        )

        def agent_status() -> dict[str, Any]:
            return agent_workers_status(status_files)

        deadline = time.monotonic() + args.join_timeout
        while True:
            st = agent_status()
            for w in workers:
                if w.poll() is not None:
                    raise RuntimeError(f"agent worker exited {w.returncode} (log in {tmp})")
            if st["n_failed"]:
                raise RuntimeError(f"{st['n_failed']} SIMULATED agents failed: {st['failed'][:3]}")
            if st["ready"] >= args.clusters:
                break
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"only {st['ready']}/{args.clusters} SIMULATED agents ready after {args.join_timeout}s"
                )
            log(f"SIMULATED agents ready {st['ready']}/{args.clusters}")
            time.sleep(3)
        res["join_seconds"] = round(time.monotonic() - t_join, 1)
        log(f"{args.clusters} SIMULATED agents ready in {res['join_seconds']} s")

        res.update(asyncio.run(recover(args, hub, token, agent_status, hold, start_timeout, log)))
        res["agent_failures_after"] = agent_status()["n_failed"]
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
        hub.stop()
    return res


class ProcessCpu:
    """CPU seconds a changing set of processes used since this was made: each process's last
    sampled CPU time minus what it had at the start (0 for one started since), so a backend
    that exits between samples keeps what it used (a sum over the live ones went negative)."""

    def __init__(self, procs: Callable[[], list[Any]]) -> None:
        self.procs = procs
        self.start: dict[int, float] = {}
        self.last: dict[int, float] = {}
        self.sample(initial=True)

    def sample(self, initial: bool = False) -> None:
        for p in self.procs():
            try:
                t = p.cpu_times()
            except Exception:
                continue
            if initial:
                self.start[p.pid] = t.user + t.system
            self.last[p.pid] = t.user + t.system

    def used(self) -> float:
        self.sample()
        return sum(cpu - self.start.get(pid, 0.0) for pid, cpu in self.last.items())


def start_profiler(path: str, pid: int, seconds: float) -> subprocess.Popen[bytes]:
    """py-spy (`--profile`: not installed by the project; `pip install py-spy` in any venv) sampling
    the restarted hub and its children, raw collapsed stacks to `path`, until converged."""
    exe = os.environ.get("PY_SPY", "py-spy")
    cmd = [exe, "record", "--pid", str(pid), "--subprocesses", "--rate", "100", "--format", "raw"]
    return subprocess.Popen([*cmd, "--duration", str(int(seconds) + 5), "--output", path, "--nonblocking"])


def stop_profiler(spy: subprocess.Popen[bytes], log: Log) -> None:
    spy.send_signal(signal.SIGINT)  # py-spy writes what it has sampled so far
    try:
        spy.wait(30)
    except subprocess.TimeoutExpired:
        spy.kill()
    log(f"profile written (py-spy exit {spy.returncode})")


async def recover(
    args: argparse.Namespace,
    hub: Any,
    token: str,
    agent_status: Callable[[], dict[str, Any]],
    hold: float,
    start_timeout: float,
    log: Log,
) -> dict[str, Any]:
    import httpx
    import psutil

    out: dict[str, Any] = {}
    t_kill = 0.0  # monotonic; 0 until the kill
    wall_kill = 0.0
    plan = Plan(names=[])
    wrong: dict[str, list[str]] = {"not_ready": [], "failover": [], "phase_regressed": []}

    def on_event(kind: str, etype: str, obj: dict[str, Any], now: float) -> None:
        """After the kill: record every change the restart must not cause."""
        if not t_kill:
            return
        name = obj["metadata"]["name"]
        at = f"+{now - t_kill:.1f}s"
        if kind == "Cluster" and not is_ready(obj):
            wrong["not_ready"].append(f"{name} {at}")
        elif kind == "Assignment":
            wname = obj["spec"]["workloadRef"]["name"]
            ids = plan.before.get(wname)
            if ids is not None and (
                etype == "DELETED" or obj["metadata"].get("deletionTimestamp") or identity(obj) not in ids
            ):
                wrong["failover"].append(f"{wname}: Assignment {name} {etype} {at}")
        elif kind == "Workload" and name in plan.before and (obj.get("status") or {}).get("phase") != "Running":
            wrong["phase_regressed"].append(f"{name} → {(obj.get('status') or {}).get('phase')} {at}")

    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=hub.http_url, headers=headers, timeout=60) as ac:
        wl = Mirror(ac, "Workload", f"{API}/namespaces/{NS}/workloads", on_event)
        asg = Mirror(ac, "Assignment", f"{API}/namespaces/{NS}/assignments", on_event)
        cl = Mirror(ac, "Cluster", f"{API}/clusters", on_event)
        tasks = [asyncio.create_task(m.run()) for m in (wl, asg, cl)]
        try:
            # --- seed (not measured)
            rng_w = random.Random(7)
            bodies = [workload(rng_w, i) for i in range(args.workloads)]
            plan.names = [b["metadata"]["name"] for b in bodies]
            t0 = time.monotonic()
            errors = await submit(hub.http_url, token, bodies, args.clients)
            if errors:
                raise RuntimeError(f"{len(errors)} creates failed: {errors[:3]}")
            out["seed_submit_seconds"] = round(time.monotonic() - t0, 1)
            log(f"{args.workloads} workloads submitted in {out['seed_submit_seconds']} s; waiting until settled")
            deadline = time.monotonic() + args.seed_timeout
            while (unsettled := problems(wl, asg, cl, plan, args.clusters)) and time.monotonic() < deadline:
                log(f"settling: {dict(unsettled)}")
                await asyncio.sleep(3)
            if unsettled:
                raise RuntimeError(
                    f"the fleet did not settle before the kill in {args.seed_timeout}s: {dict(unsettled)}"
                )
            out["seed_settled_seconds"] = round(time.monotonic() - t0, 1)
            seeded = [wl.objects[f"{NS}/{n}"] for n in plan.names]
            out["seed"] = {
                "placed": sum(1 for w in seeded if placed(w)),
                "pending_with_reason": sum(1 for w in seeded if not placed(w)),
                "assignments": len(asg.objects),
            }
            by_wl: dict[str, set[tuple[str, str, int]]] = defaultdict(set)
            for a in asg.objects.values():
                by_wl[a["spec"]["workloadRef"]["name"]].add(identity(a))
            plan.before = {n: by_wl[n] for n in plan.names if placed(wl.objects[f"{NS}/{n}"])}
            free = sum(int((c.get("status") or {}).get("freeGpus") or 0) for c in cl.objects.values())
            log(f"settled in {out['seed_settled_seconds']} s: {out['seed']}; {free} GPUs free")

            # --- in flight, then kill -9 of every hub process
            inflight = [inflight_workload(i) for i in range(min(args.inflight, free))]
            plan.must_place = {b["metadata"]["name"] for b in inflight}
            plan.names += sorted(plan.must_place)
            errors = await submit(hub.http_url, token, inflight, min(args.clients, max(1, len(inflight))))
            if errors:
                raise RuntimeError(f"{len(errors)} in-flight creates failed: {errors[:3]}")
            assert hub.proc is not None
            parent = psutil.Process(hub.proc.pid)
            procs = [parent, *parent.children(recursive=True)]
            t_kill, wall_kill = time.monotonic(), time.time()
            for p in procs:  # the parent first: it must not restart a child it sees die
                try:
                    p.send_signal(signal.SIGKILL)
                except psutil.NoSuchProcess:
                    pass
            _, alive = psutil.wait_procs(procs, timeout=10)
            hub.proc.wait(5)
            if alive or hub.processes():
                raise RuntimeError(f"hub processes survived SIGKILL: {alive} {hub.processes()}")
            out["killed_processes"] = len(procs)
            out["inflight"] = len(inflight)
            out["inflight_placed_before_kill"] = sum(
                1 for n in plan.must_place if placed(wl.objects.get(f"{NS}/{n}") or {})
            )
            log(
                f"killed {len(procs)} hub processes ({out['inflight_placed_before_kill']}/{len(inflight)} in-flight placed)"
            )

            # --- restart on the same ports and database; measure
            pg_pm = psutil.Process(
                int((hub.data_dir.parent / "pg" / "postgres" / "postmaster.pid").read_text().split()[0])
            )

            def pg_procs() -> list[Any]:
                try:
                    return [pg_pm, *pg_pm.children(recursive=True)]
                except psutil.Error:
                    return []

            pg_cpu = ProcessCpu(pg_procs)  # Postgres backends come and go: each one's CPU counted once
            if args.down:  # a hub that stays down longer (a slow host restart), still measured from the kill
                await asyncio.sleep(args.down)
            old_pid = hub.proc.pid
            restart = asyncio.create_task(asyncio.to_thread(hub.start, start_timeout))
            spy: subprocess.Popen[bytes] | None = None
            if args.profile:  # py-spy on the restarted hub from its exec (imports, startup, the first passes)
                while not restart.done() and (hub.proc is None or hub.proc.pid == old_pid):
                    await asyncio.sleep(0.005)
                spy = start_profiler(args.profile, hub.proc.pid, hold)
            await restart
            t_ready = time.monotonic() - t_kill
            new_parent = psutil.Process(hub.proc.pid)

            def hub_procs() -> list[Any]:
                try:
                    return [new_parent, *new_parent.children(recursive=True)]
                except psutil.Error:
                    return [new_parent]

            sampler = Sampler({"hub": hub_procs}).start()
            log(f"/readyz 200 after {t_ready:.2f} s")
            t_leases = t_watches = t_controller = None
            leader_at: float | None = None
            lease_last_renew: float | None = None
            last_lease_poll = last_progress = 0.0
            converged_cpu: tuple[float, float] | None = None
            left: Counter[str] = Counter()
            while (now := time.monotonic()) < t_kill + hold:
                if t_leases is None and now - last_lease_poll >= 0.5:
                    last_lease_poll = now
                    try:
                        items = (await ac.get("/v1/leases")).json()["items"]
                        renewed = [rfc3339(x["renewTime"]) for x in items]
                        if len(renewed) >= args.clusters and all(r > wall_kill for r in renewed):
                            lease_last_renew = max(renewed) - wall_kill
                            t_leases = now - t_kill
                    except (httpx.HTTPError, ValueError, KeyError):
                        pass
                if leader_at is None and args.hub_workers == 1:
                    try:
                        text = (await ac.get("/readyz", params={"verbose": ""})).text
                        if "controller leader" in text:
                            leader_at = now - t_kill
                    except httpx.HTTPError:
                        pass
                if t_watches is None:
                    det = agent_status()["details"]
                    opened = [v[1] or 0.0 for v in det.values()]
                    if len(opened) >= args.clusters and all(o > t_kill for o in opened):
                        t_watches = max(opened) - t_kill
                if t_controller is None:
                    left = problems(wl, asg, cl, plan, args.clusters)
                    if not left and min(m.opened_at for m in (wl, asg, cl)) > t_kill:
                        t_controller = now - t_kill
                        log(f"controller converged after {t_controller:.2f} s")
                        if spy is not None:
                            stop_profiler(spy, log)
                            spy = None
                    elif now - last_progress >= 1:
                        last_progress = now
                        log(f"+{now - t_kill:.1f}s not converged: {dict(left)}")
                if converged_cpu is None and None not in (t_leases, t_watches, t_controller):
                    converged_cpu = (time.monotonic() - t_kill, cpu_of(hub_procs()))
                    out["postgres_cpu_seconds_recovery"] = round(pg_cpu.used(), 2)
                    out["hub_rss_peak_mib_recovery"] = round(sampler.peak.get("hub", 0) / 2**20, 1)
                pg_cpu.sample()
                await asyncio.sleep(0.1)
            sampler.stop()
            if spy is not None:
                stop_profiler(spy, log)
            final = problems(wl, asg, cl, plan, args.clusters)
            out["not_converged_examples"] = examples(wl, asg, plan)
            st = agent_status()
            out.update(
                {
                    "ready_seconds": round(t_ready, 2),
                    "controller_leader_seconds": None if leader_at is None else round(leader_at, 2),
                    "leases_renewed_seconds": None if lease_last_renew is None else round(lease_last_renew, 2),
                    "leases_observed_seconds": None if t_leases is None else round(t_leases, 2),
                    "watches_back_seconds": None if t_watches is None else round(t_watches, 2),
                    "controller_converged_seconds": None if t_controller is None else round(t_controller, 2),
                    "not_converged_because": dict(left) if t_controller is None else {},
                    "after_hold_problems": dict(final),
                    "wrongly_not_ready": wrong["not_ready"][:20],
                    "wrongly_not_ready_count": len({x.split()[0] for x in wrong["not_ready"]}),
                    "failed_over": wrong["failover"][:20],
                    "failed_over_count": len({x.split(":")[0] for x in wrong["failover"]}),
                    "phase_regressed": wrong["phase_regressed"][:20],
                    "phase_regressed_count": len({x.split()[0] for x in wrong["phase_regressed"]}),
                    "agents_still_failing": st["n_failed"],
                    "inflight_placed": sum(1 for n in plan.must_place if placed(wl.objects.get(f"{NS}/{n}") or {})),
                }
            )
            times = [out["ready_seconds"], out["leases_renewed_seconds"], t_watches, t_controller]
            out["converged_seconds"] = None if None in times else round(max(float(t or 0) for t in times), 2)
            if converged_cpu:
                secs, cpu = converged_cpu
                out["hub_cpu_seconds_recovery"] = round(cpu, 2)
                out["hub_cpu_pct_of_core_recovery"] = round(cpu / secs * 100, 1)
            out["hub_rss_peak_mib_hold"] = round(sampler.peak.get("hub", 0) / 2**20, 1)
        finally:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
    return out


# ====================================================================== report


def rows_of(res: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    """(measurement, value, target, met) — every row about SIMULATED agents says so."""

    def s(x: float | None) -> str:
        return "not reached" if x is None else f"{x:.2f} s"

    target = res["target_seconds"]
    conv = res.get("converged_seconds")
    wrong = res["wrongly_not_ready_count"] + res["failed_over_count"] + res["phase_regressed_count"]
    met = "yes" if conv is not None and conv <= target and not wrong and not res["after_hold_problems"] else "no"
    cpu = res.get("hub_cpu_pct_of_core_recovery")
    return [
        ("hub processes killed (SIGKILL, all at once)", str(res["killed_processes"]), "", ""),
        ("kill → /readyz 200 (restarted on the same ports and database)", s(res["ready_seconds"]), "", ""),
        (
            "kill → controller leading again",
            s(res.get("controller_leader_seconds")) if res["hub_workers"] == 1 else "- (not visible with workers)",
            "",
            "",
        ),
        (
            f"kill → all {res['clusters']} SIMULATED agents renewed their lease (GET /v1/leases)",
            s(res["leases_renewed_seconds"]),
            "",
            "",
        ),
        (
            f"kill → all {res['clusters']} SIMULATED agents' Assignment watch answered again",
            s(res["watches_back_seconds"]),
            "",
            "",
        ),
        (
            f"kill → controller converged ({res['inflight']} in flight placed, statuses current, clusters Ready)",
            s(res["controller_converged_seconds"]),
            "",
            "",
        ),
        ("kill → converged (all of the above)", s(conv), f"<= {target:g} s", met),
        (
            f"clusters wrongly marked NotReady (within {res['hold_seconds']:g} s of the kill)",
            str(res["wrongly_not_ready_count"]),
            "0",
            "yes" if not res["wrongly_not_ready_count"] else "no",
        ),
        (
            "workloads failed over because of the restart",
            str(res["failed_over_count"]),
            "0",
            "yes" if not res["failed_over_count"] else "no",
        ),
        (
            "pre-kill workloads whose phase left Running",
            str(res["phase_regressed_count"]),
            "0",
            "yes" if not res["phase_regressed_count"] else "no",
        ),
        (
            "in-flight workloads placed: before the kill / by the end",
            f"{res['inflight_placed_before_kill']} / {res['inflight_placed']} of {res['inflight']}",
            "",
            "",
        ),
        (
            "hub CPU, kill → converged (every new hub process)",
            "-" if cpu is None else f"{cpu} % of a core ({res['hub_cpu_seconds_recovery']} s)",
            "",
            "",
        ),
        (
            "hub RSS peak: kill → converged / whole hold window",
            f"{res.get('hub_rss_peak_mib_recovery', '-')} / {res['hub_rss_peak_mib_hold']} MiB",
            "",
            "",
        ),
        ("Postgres CPU, kill → converged", f"{res.get('postgres_cpu_seconds_recovery', '-')} s", "", ""),
    ]


def write_report(args: argparse.Namespace, res: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    rows = rows_of(res)
    title = (
        f"Recovery after kill -9 (P8): {res['clusters']} SIMULATED clusters, "
        f"{res['seed']['placed'] + res['seed']['pending_with_reason']} workloads, {res['hub_workers']} hub worker(s)"
    )
    table = Table(title=title)
    for col in ("measurement", "value", "target", "met"):
        table.add_column(col)
    for r in rows:
        table.add_row(*r)
    Console().print(table)
    if res["after_hold_problems"]:
        print(f"NOT converged at the end of the hold window: {res['after_hold_problems']}")

    command = ".venv/bin/python bench/bench_recovery.py " + " ".join(
        f"--{k.replace('_', '-')} {v}" for k, v in vars(args).items() if v is not None
    )
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    (RESULTS_DIR / f"{args.results}.json").write_text(
        json.dumps({"machine": machine(), "command": command, "args": vars(args), **res}, indent=2, default=str)
    )
    seed = res["seed"]
    md = [
        "# Recovery after kill -9 (issue 14, target P8) — SIMULATED agents",
        "",
        f"Machine: {machine()}; load average at the end {os.getloadavg()[0]:.1f}. Command: `{command}`.",
        "",
        f"{res['clusters']} SIMULATED clusters (spoke-agent simulated backend, {res['agent_workers']} agent processes, "
        f"{res['heartbeat_seconds']:g} s heartbeats), {seed['placed']} workloads placed and Running plus "
        f"{seed['pending_with_reason']} Pending with the engine's reason before the kill, {res['inflight']} more "
        f"submitted just before it; hub `fleetplane up --workers {res['hub_workers']}` on embedded Postgres started "
        f"by the benchmark (it survives the kill). Method: the module docstring of `bench/bench_recovery.py`; "
        f"raw numbers in `{args.results}.json`.",
        "",
        "| measurement | value | target | met |",
        "|---|---|---|---|",
    ]
    md += [f"| {' | '.join(r)} |" for r in rows]
    if res["after_hold_problems"]:
        md += ["", f"Not converged at the end of the hold window: {res['after_hold_problems']}."]
    (RESULTS_DIR / f"{args.results}.md").write_text("\n".join(md) + "\n")
    print(f"results written to {RESULTS_DIR / args.results}.md")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--clusters", type=int, default=1000, help="SIMULATED clusters (P8: 1,000)")
    ap.add_argument("--workloads", type=int, default=10000, help="workloads seeded before the kill (P8: 10,000)")
    ap.add_argument("--hub-workers", type=int, default=1, help="API worker processes (`fleetplane up --workers`)")
    ap.add_argument("--agent-workers", type=int, default=2, help="processes the SIMULATED agents share")
    ap.add_argument("--heartbeat", type=float, default=10.0, help="agent heartbeat (lease renewal) seconds")
    ap.add_argument("--stagger", type=float, default=1.0, help="seconds between batches of agent starts")
    ap.add_argument("--stagger-batch", type=int, default=10, help="agents started per batch per agent process")
    ap.add_argument("--cluster-timeout", type=float, default=None, help="hub FLEETPLANE_CLUSTER_TIMEOUT_SECONDS")
    ap.add_argument("--clients", type=int, default=32, help="concurrent clients seeding the workloads")
    ap.add_argument(
        "--inflight", type=int, default=None, help="1-GPU workloads submitted just before the kill (default: 1 %%)"
    )
    ap.add_argument("--target", type=float, default=10.0, help="P8: converged within this many seconds")
    ap.add_argument("--down", type=float, default=0.0, help="seconds the hub stays down before its restart")
    ap.add_argument(
        "--hold", type=float, default=None, help="seconds after the kill to watch for harm (default: timeout + 2 beats)"
    )
    ap.add_argument("--results", default="recovery", help="name of the results files under bench/results/")
    ap.add_argument(
        "--profile", default=None, help="py-spy the restarted hub into this file (raw stacks; $PY_SPY: the binary)"
    )
    ap.add_argument("--join-timeout", type=float, default=900.0)
    ap.add_argument("--seed-timeout", type=float, default=1800.0)
    args = ap.parse_args()
    if args.inflight is None:
        args.inflight = max(1, args.workloads // 100)
    for name in ("clusters", "workloads", "hub_workers", "agent_workers", "clients"):
        if getattr(args, name) < 1:
            ap.error(f"--{name.replace('_', '-')} must be at least 1 (got {getattr(args, name)})")
    if args.inflight < 0 or args.heartbeat <= 0 or args.target <= 0:
        ap.error("--inflight must be >= 0, --heartbeat and --target > 0")

    def _term(signum: int, frame: Any) -> None:
        raise SystemExit(f"signal {signum}")  # run the finally blocks: stop the agents and the hub

    signal.signal(signal.SIGTERM, _term)
    signal.signal(signal.SIGINT, _term)
    t0 = time.monotonic()

    def log(msg: str) -> None:
        print(f"[{time.monotonic() - t0:7.1f}s] {msg}", flush=True)

    write_report(args, run(args, log))


if __name__ == "__main__":
    main()
