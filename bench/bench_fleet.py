"""P7 (issue 14): the hub at 10,000 SIMULATED clusters and 100,000 workloads.

Targets: a paged LIST of all workloads ≤ 5 s, hub RSS ≤ 2 GB, placements continue at ≥ 200/s.

What is real and what is SIMULATED:
- Real: `fleetplane up` (`--workers auto` by default: 2 API workers + the controller process on
  this 2-core machine) on a private embedded Postgres, HTTPS with a bearer token, the real
  kubectl, the real controller deciding placements.
- SIMULATED: the clusters. Each is a Cluster object carrying the capacity report that the spoke
  agent's SIMULATED backend produces (the agent's own `cluster_status()`, as
  bench_placements.py writes them); no agent runs (10,000 live agents — leases, watches and
  reports — do not fit next to the hub on 2 cores), so the cluster timeout is raised to 2 h
  so that reports written once stay current.

Loading (not measured) goes through the hub's own object layer in this process: the
`RegistryTx.create` / `update_status` that the API's create and status PATCH end in (kind,
validation, defaults, managedFields, the namespace check), many objects per transaction.

Phases:
  A. a hub with the controllers off: the paged LIST (limit=500 + continue, JSON, HTTPS, token)
     of all workloads `--repeats` times, `kubectl get workloads -A --chunk-size=500 | wc -l`,
     hub RSS (all its processes) and Postgres PSS.
  B. a hub with the controller on, draining the backlog for `--drain-seconds`: placements/s per
     30-s window (decided = an Assignment, or Placed=False with the engine's reason), with the
     paged LIST and kubectl repeated while it drains (after `--quiet-seconds` undisturbed).

    python bench/bench_fleet.py                                    # 10,000 clusters, 100,000 workloads
    python bench/bench_fleet.py --clusters 1000 --workloads 10000  # quick

Writes bench/results/fleet.json and .md (a quick size writes fleet-quick.*).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shlex
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import orjson
import psutil
import sqlalchemy as sa

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "spoke-agent"), str(ROOT / "bench")]

from bench_federation import NS, cluster_profile, workload

from fleetplane_testing import HubProcess, free_port
from fleetplane_types.names import WORKLOADS
from hub.registry.lifecycle import NAMESPACE, Registry, RegistryTx, WriteOptions
from hub.registry.resources import BY_KIND
from hub.store.database import EmbeddedPostgres, sqlalchemy_url, upgrade
from hub.store.store import Store
from hub.store.watch import Broadcaster
from spoke_agent.agent import Agent, AgentOptions
from spoke_agent.backends.simulated import Profile, SimulatedBackend

API = "/apis/fleetplane.io/v1alpha1"
ENV = {"FLEETPLANE_CLUSTER_TIMEOUT_SECONDS": "7200"}
CLUSTER = BY_KIND["Cluster"]
WORKLOAD = BY_KIND["Workload"]
LOAD_OPTS = WriteOptions(field_validation="Strict", manager="bench-fleet")
BATCH = 250
WINDOW = 30.0
PIPE = "\\|"  # a | inside a Markdown table cell
TARGET_LIST_S = 5.0
TARGET_RSS_MIB = 2048
TARGET_RATE = 200.0


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


# ---------------------------------------------------------------------------------- loading


async def load_store(url: str, clusters: int, workloads: int, seed: int) -> None:
    """Write the SIMULATED clusters and the workloads through the hub's object layer."""
    store = Store(url, pool_size=3)
    registry = Registry(store, Broadcaster(store))
    rng = random.Random(seed)
    profiles = [cluster_profile(rng, i) for i in range(clusters)]

    async def namespace(rtx: RegistryTx) -> None:
        await rtx.create(NAMESPACE, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}}, LOAD_OPTS)

    await registry.transact(namespace)

    def cluster_batch(lo: int, hi: int) -> Callable[[RegistryTx], Any]:
        async def fn(rtx: RegistryTx) -> None:
            for i in range(lo, hi):
                name = f"sim-{i:05d}"
                prof = profiles[i]
                opts = AgentOptions(
                    hub="http://127.0.0.1:1", cluster_name=name, join_token="unused", backend="simulated"
                )
                agent = Agent(opts, SimulatedBackend(Profile.from_dict(prof), cluster_name=name))
                status = agent.cluster_status()
                await agent.hub.aclose()
                body = {
                    "apiVersion": CLUSTER.api_version,
                    "kind": "Cluster",
                    "metadata": {"name": name},
                    "spec": {**prof["cluster"], "backend": "simulated"},
                }
                created, _ = await rtx.create(CLUSTER, body, LOAD_OPTS)
                await rtx.update_status(CLUSTER, created, status)

        return fn

    def workload_batch(bodies: list[dict[str, Any]]) -> Callable[[RegistryTx], Any]:
        async def fn(rtx: RegistryTx) -> None:
            for b in bodies:
                await rtx.create(WORKLOAD, b, LOAD_OPTS)

        return fn

    sem = asyncio.Semaphore(2)  # one transaction in Postgres while this process builds the next

    async def run(fn: Callable[[RegistryTx], Any]) -> None:
        # begin_on_lock: these creates take no lock, so each batch is one write statement in
        # autocommit. Not the transaction path's pipeline (Store._apply_and_commit): with a
        # statement of a megabyte or more it can hang (docs/scaling.md, P7: psycopg 3.3.9).
        async with sem:
            await registry.transact(fn, begin_on_lock=True)

    t = time.monotonic()
    step = BATCH // 5  # a cluster with its status is about 5 times a workload's size
    await asyncio.gather(*(run(cluster_batch(lo, min(lo + step, clusters))) for lo in range(0, clusters, step)))
    log(f"{clusters} clusters written in {time.monotonic() - t:.1f} s")
    t = time.monotonic()
    pending: list[asyncio.Task[None]] = []
    for lo in range(0, workloads, BATCH):
        bodies = [workload(rng, i) for i in range(lo, min(lo + BATCH, workloads))]
        pending.append(asyncio.create_task(run(workload_batch(bodies))))
        pending = [p for p in pending if not p.done()]
        if len(pending) >= 3:
            await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
        if (lo // BATCH) % 40 == 39:
            log(f"  {lo + BATCH} workloads ({time.monotonic() - t:.0f} s)")
    await asyncio.gather(*pending)
    log(f"{workloads} workloads written in {time.monotonic() - t:.1f} s")
    await store.close()


# ---------------------------------------------------------------------------------- measuring


def paged_list(hub: HubProcess, limit: int = 500) -> dict[str, Any]:
    """The whole workload list the way `kubectl get -o json` pages it: limit + continue, JSON
    decoded, over HTTPS with the admin token, one connection."""
    headers = {"Authorization": f"Bearer {hub.admin_token}", "Accept": "application/json"}
    items = pages = 0
    nbytes = 0
    slowest = 0.0
    hub_cpu0, cpu0 = hub_cpu(hub), time.process_time()
    t0 = time.monotonic()
    with httpx.Client(base_url=hub.url, headers=headers, verify=str(hub.ca), timeout=120) as c:
        token = ""
        while True:
            params: dict[str, Any] = {"limit": limit}
            if token:
                params["continue"] = token
            t = time.monotonic()
            r = c.get(f"{API}/workloads", params=params)
            r.raise_for_status()
            body = orjson.loads(r.content)  # a compiled client's decoding, not the stdlib's
            slowest = max(slowest, time.monotonic() - t)
            nbytes += len(r.content)
            pages += 1
            items += len(body["items"])
            token = body["metadata"].get("continue") or ""
            if not token:
                break
    return {
        "seconds": round(time.monotonic() - t0, 2),
        "items": items,
        "pages": pages,
        "mib": round(nbytes / 2**20, 1),
        "slowest_page_ms": round(slowest * 1000),
        "hub_cpu_s": round(hub_cpu(hub) - hub_cpu0, 2),
        "client_cpu_s": round(time.process_time() - cpu0, 2),
    }


def hub_cpu(hub: HubProcess) -> float:
    """CPU seconds (user + system) of all the hub's processes so far."""
    total = 0.0
    for pid in hub.processes():
        try:
            t = psutil.Process(pid).cpu_times()
            total += t.user + t.system
        except psutil.Error:
            pass
    return total


def kubectl_get(hub: HubProcess, output: str = "") -> dict[str, Any]:
    """The real kubectl, paging 500 at a time: the default table, or `-o json` (`output`)."""
    flags = f" -o {output}" if output else ""
    count = "wc -c" if output else "wc -l"
    cmd = f"kubectl --kubeconfig {shlex.quote(str(hub.kubeconfig))} get workloads -A --chunk-size=500{flags} | {count}"
    t, hub0 = time.monotonic(), hub_cpu(hub)
    out = subprocess.run(["bash", "-o", "pipefail", "-c", cmd], capture_output=True, text=True, timeout=600)
    seconds = time.monotonic() - t
    hub_s = hub_cpu(hub) - hub0
    if out.returncode != 0:
        raise RuntimeError(f"{cmd}: {out.stderr}")
    n = int(out.stdout.strip())
    return {
        "command": f"kubectl get workloads -A --chunk-size=500{flags} | {count}",
        "seconds": round(seconds, 2),
        "lines" if not output else "bytes": n,
        "hub_cpu_s": round(hub_s, 2),
    }


def postmaster(root: Path) -> psutil.Process:
    return psutil.Process(int((root / "pg" / "postgres" / "postmaster.pid").read_text().split()[0]))


class Memory(threading.Thread):
    """Every 0.5 s: the RSS of all the hub's processes (summed) and the PSS of Postgres (its
    processes share the buffer pool: PSS does not count it once per backend)."""

    def __init__(self, hub: HubProcess, pg: psutil.Process, limit_mib: int) -> None:
        super().__init__(daemon=True)
        self.hub, self.pg = hub, pg
        self.limit = limit_mib * 2**20
        self.samples: list[tuple[float, int, int]] = []
        self.by_process: dict[str, int] = {}
        """Peak RSS of each hub process, by role (the end of its command line, pid)."""
        self.stop = threading.Event()
        self.over_limit = False

    def hub_rss(self) -> int:
        total = 0
        for pid, cmd in self.hub.processes().items():
            try:
                rss = psutil.Process(pid).memory_info().rss
            except psutil.Error:
                continue
            total += rss
            role = f"{' '.join(cmd.split()[-1:]) if 'up --data-dir' not in cmd else 'fleetplane up'} ({pid})"
            self.by_process[role] = max(self.by_process.get(role, 0), rss)
        return total

    def pg_pss(self) -> int:
        total = 0
        for p in [self.pg, *self.pg.children()]:
            try:
                total += p.memory_full_info().pss
            except psutil.Error:
                pass
        return total

    def run(self) -> None:
        while not self.stop.is_set():
            rss = self.hub_rss()
            self.samples.append((time.monotonic(), rss, self.pg_pss()))
            if rss > self.limit:  # do not let a runaway hub take the shared machine down
                log(f"  hub RSS {rss / 2**20:.0f} MiB > the limit {self.limit / 2**20:.0f} MiB: stopping the hub")
                self.over_limit = True
                self.hub.stop(kill=True)
                return
            self.stop.wait(0.5)

    def finish(self) -> dict[str, Any]:
        self.stop.set()
        self.join()
        s = self.samples
        tail = s[-6:]  # the last 3 s: after the measurement, at rest
        return {
            "hub_rss_peak_mib": round(max(x[1] for x in s) / 2**20),
            "hub_rss_end_mib": round(statistics.median(x[1] for x in tail) / 2**20),
            "postgres_pss_peak_mib": round(max(x[2] for x in s) / 2**20),
            "postgres_pss_end_mib": round(statistics.median(x[2] for x in tail) / 2**20),
            "hub_rss_peak_by_process_mib": {k: round(v / 2**20) for k, v in sorted(self.by_process.items())},
            "stopped_over_limit": self.over_limit,
        }


class Counter(threading.Thread):
    """Every `interval` s, from the database: workloads decided (a Placed condition, True with
    an Assignment or False with a reason). One containment query per sample."""

    QUERY = sa.text(
        "SELECT count(*) FROM objects WHERE resource = :w "
        "AND data->'status'->'conditions' @> CAST('[{\"type\": \"Placed\"}]' AS jsonb)"
    )

    def __init__(self, url: str, interval: float) -> None:
        super().__init__(daemon=True)
        self.engine = sa.create_engine(sqlalchemy_url(url), pool_size=1)
        self.interval = interval
        self.samples: list[tuple[float, int]] = []
        self.query_s: list[float] = []
        self.stop = threading.Event()

    def run(self) -> None:
        with self.engine.connect() as conn:
            while not self.stop.is_set():
                t = time.monotonic()
                (d,) = conn.execute(self.QUERY, {"w": WORKLOADS}).one()
                conn.rollback()
                self.query_s.append(time.monotonic() - t)
                self.samples.append((time.monotonic(), int(d)))
                self.stop.wait(self.interval)
        self.engine.dispose()


def windows(samples: list[tuple[float, int]], marks: list[tuple[float, float]], total: int) -> list[dict[str, Any]]:
    """Placements/s per WINDOW seconds from the first decision; `busy` when a LIST ran in it."""
    first = next((t for t, d in samples if d > 0), None)
    if first is None:
        return []
    start = max((t for t, d in samples if d == 0), default=first)  # the last sample before any decision
    out = []
    lo_t, lo_d = start, 0
    for t, d in samples:
        if t - lo_t >= WINDOW or t == samples[-1][0]:
            if t <= lo_t:
                continue
            busy = any(a < t and b > lo_t for a, b in marks)
            out.append(
                {
                    "from_s": round(lo_t - start),
                    "to_s": round(t - start),
                    "decided": d - lo_d,
                    "per_s": round((d - lo_d) / (t - lo_t), 1),
                    "backlog_left": total - d,
                    "list_running": busy,
                }
            )
            lo_t, lo_d = t, d
    return out


def list_runs(hub: HubProcess, repeats: int) -> list[dict[str, Any]]:
    runs = []
    for i in range(repeats):
        r = paged_list(hub)
        log(f"  paged LIST {i + 1}/{repeats}: {r}")
        runs.append(r)
    return runs


def median_s(runs: list[dict[str, Any]]) -> float:
    return round(float(statistics.median(r["seconds"] for r in runs)), 2)


# ---------------------------------------------------------------------------------- report


def memory_lines(m: dict[str, Any], label: str) -> list[str]:
    return [
        f"| hub RSS peak | hub RSS {label} | Postgres PSS peak | Postgres PSS {label} |",
        "|---|---|---|---|",
        f"| {m['hub_rss_peak_mib']} MiB | {m['hub_rss_end_mib']} MiB | {m['postgres_pss_peak_mib']} MiB "
        f"| {m['postgres_pss_end_mib']} MiB |",
        "",
        "Peak RSS by hub process (MiB): "
        + ", ".join(f"{k} {v}" for k, v in m["hub_rss_peak_by_process_mib"].items())
        + (" — STOPPED by the bench: over its RSS limit" if m["stopped_over_limit"] else "")
        + ".",
    ]


def list_lines(lists: list[dict[str, Any]], kube: list[dict[str, Any]]) -> list[str]:
    return [
        "| run | seconds | items | pages | MiB | slowest page ms | hub CPU s | client CPU s |",
        "|---|---|---|---|---|---|---|---|",
        *(
            f"| LIST {i + 1} | {r['seconds']} | {r['items']} | {r['pages']} | {r['mib']} | {r['slowest_page_ms']} "
            f"| {r.get('hub_cpu_s', '')} | {r.get('client_cpu_s', '')} |"
            for i, r in enumerate(lists)
        ),
        *(
            "| `" + k.get("command", "kubectl get workloads -A --chunk-size=500 | wc -l").replace("|", PIPE) + "` "
            f"| {k['seconds']} | "
            + (f"{k['lines']} lines" if "lines" in k else f"{k['bytes'] / 2**20:.0f} MiB")
            + f" | | | | {k.get('hub_cpu_s', '')} | |"
            for k in kube
        ),
    ]


def write(args: argparse.Namespace, out: str, result: dict[str, Any]) -> None:
    Path(out + ".json").write_text(json.dumps(result, indent=2) + "\n")
    a, b = result["quiet"], result["draining"]
    rows: list[tuple[str, str, str, bool]] = []
    if a is not None:
        rows.append(
            (
                "paged LIST of all workloads (limit=500, JSON, HTTPS), controller off",
                f"≤ {TARGET_LIST_S:.0f} s",
                f"{a['list_median_s']} s median of {len(a['lists'])}",
                a["list_median_s"] <= TARGET_LIST_S,
            )
        )
    if b is not None:
        rate = b["rate_first_minutes"]
        rows.append(
            (
                "the same LIST while the controller drains the backlog",
                f"≤ {TARGET_LIST_S:.0f} s",
                f"{b['list_median_s']} s median of {len(b['lists'])}" if b["lists"] else "not reached",
                bool(b["lists"]) and b["list_median_s"] <= TARGET_LIST_S,
            )
        )
        rows.append(
            (
                "placements/s from the first decision until the LISTs (or the end)",
                f"≥ {TARGET_RATE:.0f}/s",
                f"{rate['per_s']}/s over {rate['seconds']} s"
                if rate["per_s"] is not None
                else f"no decision in {b['measured_s']} s",
                rate["per_s"] is not None and rate["per_s"] >= TARGET_RATE,
            )
        )
    peaks = [p["memory"]["hub_rss_peak_mib"] for p in (a, b) if p is not None]
    stopped = any(p["memory"]["stopped_over_limit"] for p in (a, b) if p is not None)
    rows.append(
        (
            "hub RSS, all its processes, peak",
            f"≤ {TARGET_RSS_MIB} MiB",
            f"{max(peaks)} MiB" + (" (then stopped by the bench)" if stopped else ""),
            max(peaks) <= TARGET_RSS_MIB and not stopped,
        )
    )
    md = [
        "# P7: the hub at 10,000 SIMULATED clusters and 100,000 workloads",
        "",
        f"`{result['command']}` — {result['clusters']} SIMULATED clusters ({result['clusters_note']}), "
        f"{result['workloads']} workloads; `fleetplane up --workers {args.workers}` "
        f"({result['hub_processes']}) on embedded Postgres; {result['cpus']} cores shared with other "
        f"benchmarks, 1-min load average {result['load_average_1m'][0]} at start, "
        f"{result['load_average_1m'][1]} at the end. Loading (not measured): "
        + (f"{result['load_s']} s, {result['load_how']}." if result["load_s"] is not None else "reused a loaded run.")
        + " The targets are P7's; every cluster is SIMULATED.",
        "",
        "| P7 target | wanted | measured | met |",
        "|---|---|---|---|",
        *(f"| {n} | {w} | {m} | {'yes' if ok else 'no'} |" for n, w, m, ok in rows),
    ]
    if a is not None:
        md += ["", "## A. Controllers off (a quiet hub)", "", *list_lines(a["lists"], a["kubectl"]), ""]
        md += memory_lines(a["memory"], "at rest")
    if b is not None:
        md += [
            "",
            "## B. The controller draining the backlog",
            "",
            f"Hub ready {b['hub_ready_s']} s after start, first decision "
            + (f"{b['first_decision_s']} s" if b["first_decision_s"] is not None else "never")
            + f"; {b['decided']} of {result['workloads']} decided in {b['measured_s']} s of measurement. "
            f"Counter query (every {args.interval} s): median {b['counter_query_ms']} ms.",
            "",
            "| window (s from the first decision) | decided | placements/s | backlog left | a LIST running |",
            "|---|---|---|---|---|",
            *(
                f"| {w['from_s']}–{w['to_s']} | {w['decided']} | {w['per_s']} | {w['backlog_left']} | "
                f"{'yes' if w['list_running'] else ''} |"
                for w in b["windows"]
            ),
        ]
        if b["lists"]:
            md += ["", "While draining:", "", *list_lines(b["lists"], b["kubectl"])]
        md += ["", *memory_lines(b["memory"], "at the end")]
    md += [
        "",
        "decided: workloads with a Placed condition (True with an Assignment, or False with the engine's "
        "reason), counted in the database. kubectl's line count includes its header line.",
    ]
    Path(out + ".md").write_text("\n".join(md) + "\n")
    print("\n".join(md))
    print(f"\nwritten: {out}.json, {out}.md")


# ---------------------------------------------------------------------------------- main


def phase_a(args: argparse.Namespace, root: Path, url: str, pm: psutil.Process) -> dict[str, Any]:
    """A: a hub with the controllers off — the paged LIST, kubectl, memory."""
    hub = HubProcess(
        root / "quiet",
        url,
        free_port(),
        free_port(),
        extra_env={**ENV, "FLEETPLANE_CONTROLLERS": "false"},
        workers=args.workers,
    )
    hub.start(timeout=300)
    shape = f"{len(hub.processes())} processes"
    mem = Memory(hub, pm, args.rss_limit_mib)
    mem.start()
    try:
        log("A. controllers off")
        paged_list(hub)  # warm-up (first connections, Postgres cache): not counted
        lists = list_runs(hub, args.repeats)
        kube = [kubectl_get(hub, out) for out in ("", "json") for _ in range(args.kubectl_repeats)]
        log(f"  kubectl: {kube}")
        time.sleep(3)
    finally:
        memory = mem.finish()
        hub.stop()
    log(f"  memory {memory}")
    return {"lists": lists, "list_median_s": median_s(lists), "kubectl": kube, "memory": memory, "shape": shape}


def phase_b(args: argparse.Namespace, root: Path, url: str, pm: psutil.Process) -> dict[str, Any]:
    """B: a hub with the controller on, draining the backlog."""
    counter = Counter(url, args.interval)
    counter.start()
    hub = HubProcess(root / "hub", url, free_port(), free_port(), extra_env=ENV, workers=args.workers)
    t0 = time.monotonic()
    hub.start(timeout=300)
    ready = time.monotonic() - t0
    shape = f"{len(hub.processes())} processes"
    mem = Memory(hub, pm, args.rss_limit_mib)
    mem.start()
    marks: list[tuple[float, float]] = []
    busy_lists: list[dict[str, Any]] = []
    busy_kube: list[dict[str, Any]] = []

    def decided() -> int:
        return counter.samples[-1][1] if counter.samples else 0

    def first_decision() -> float | None:
        return next((t for t, d in counter.samples if d > 0), None)

    try:
        log("B. controller on")
        last_log = 0.0
        while time.monotonic() - t0 < args.drain_seconds and decided() < args.workloads and not mem.over_limit:
            first = first_decision()
            if first is not None and time.monotonic() - first >= args.quiet_seconds and not marks:
                log(f"  {decided()} decided; LISTs while draining")
                a = time.monotonic()
                busy_lists = list_runs(hub, args.busy_repeats)
                busy_kube = [kubectl_get(hub)] if args.kubectl_repeats else []
                log(f"  kubectl: {busy_kube}")
                marks.append((a, time.monotonic()))
            time.sleep(1)
            if time.monotonic() - last_log >= 30:
                last_log = time.monotonic()
                log(f"  {decided()} decided, hub RSS {mem.samples[-1][1] / 2**20 if mem.samples else 0:.0f} MiB")
        time.sleep(args.interval + 0.5)
    finally:
        memory = mem.finish()
        counter.stop.set()
        counter.join()
        hub.stop()
    samples = counter.samples
    first = first_decision()
    ws = windows(samples, marks, args.workloads)
    # The rate over the undisturbed start of the drain: first decision → the LISTs (or the end).
    quiet_end = marks[0][0] if marks else samples[-1][0]
    before = [(t, d) for t, d in samples if t <= quiet_end]
    rate: dict[str, Any] = {"seconds": 0.0, "per_s": None}
    if first is not None and len(before) >= 2:
        start_t = max((t for t, d in before if d == 0), default=before[0][0])
        span = before[-1][0] - start_t
        rate = {"seconds": round(span, 1), "per_s": round(before[-1][1] / span, 1) if span > 0 else None}
    return {
        "shape": shape,
        "hub_ready_s": round(ready, 2),
        "first_decision_s": round(first - t0, 1) if first is not None else None,
        "decided": decided(),
        "measured_s": round(samples[-1][0] - t0) if samples else 0,
        "rate_first_minutes": rate,
        "windows": ws,
        "lists": busy_lists,
        "list_median_s": median_s(busy_lists) if busy_lists else None,
        "kubectl": busy_kube,
        "memory": memory,
        "counter_query_ms": round(statistics.median(counter.query_s) * 1000) if counter.query_s else None,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--clusters", type=int, default=10000)
    ap.add_argument("--workloads", type=int, default=100000)
    ap.add_argument("--workers", default="auto", help="`fleetplane up --workers` (auto: the cores, at most 4)")
    ap.add_argument("--phases", default="AB", help="A: controllers off (LIST, kubectl); B: the controller draining")
    ap.add_argument("--repeats", type=int, default=5, help="paged LISTs on the quiet hub")
    ap.add_argument("--kubectl-repeats", type=int, default=2, help="kubectl runs on the quiet hub (1 while draining)")
    ap.add_argument("--busy-repeats", type=int, default=3, help="paged LISTs while the controller drains")
    ap.add_argument("--quiet-seconds", type=float, default=90, help="drain undisturbed this long before the LISTs")
    ap.add_argument("--drain-seconds", type=float, default=360, help="measure the drain this long at most")
    ap.add_argument("--interval", type=float, default=2.0, help="seconds between decided-counter samples")
    ap.add_argument(
        "--rss-limit-mib", type=int, default=8192, help="kill the hub when all its processes exceed this RSS"
    )
    ap.add_argument(
        "--reuse", metavar="DIR", help="a previous run's directory (printed at its start): skip loading, use its data"
    )
    ap.add_argument("--seed", type=int, default=14)
    ap.add_argument("--out", default=None, help="result path without extension (default bench/results/fleet[-quick])")
    args = ap.parse_args()
    if args.workers != "auto":
        args.workers = int(args.workers)
    full = args.clusters >= 10000 and args.workloads >= 100000
    out = args.out or str(ROOT / "bench" / "results" / ("fleet" if full else "fleet-quick"))

    load_start = os.getloadavg()
    load_s: float | None = None
    if args.reuse:
        root = Path(args.reuse)
        url = EmbeddedPostgres(root / "pg", database="bench").url()
    else:
        root = Path(tempfile.mkdtemp(prefix="fp-bench-fleet-"))
        root.chmod(0o755)  # Postgres runs as its own user
        url = EmbeddedPostgres(root / "pg", database="bench").url()
        upgrade(url)
        log(f"loading {args.clusters} SIMULATED clusters and {args.workloads} workloads into {root}")
        t = time.monotonic()
        asyncio.run(load_store(url, args.clusters, args.workloads, args.seed))
        load_s = round(time.monotonic() - t, 1)
    pm = postmaster(root)
    quiet = phase_a(args, root, url, pm) if "A" in args.phases else None
    draining = phase_b(args, root, url, pm) if "B" in args.phases else None
    load_end = os.getloadavg()
    command = shlex.join(["python", "bench/bench_fleet.py", *sys.argv[1:]])
    result = {
        "command": command,
        "clusters": args.clusters,
        "clusters_note": "SIMULATED: Cluster objects with the spoke agent's simulated-backend capacity report; "
        "no agent runs",
        "workloads": args.workloads,
        "hub_workers": args.workers,
        "hub_processes": (quiet or draining or {}).get("shape"),
        "cpus": os.cpu_count(),
        "load_average_1m": [round(load_start[0], 2), round(load_end[0], 2)],
        "load_s": load_s,
        "load_how": f"RegistryTx.create/update_status in the bench process, {BATCH} objects per transaction",
        "quiet": quiet,
        "draining": draining,
    }
    write(args, out, result)


if __name__ == "__main__":
    main()
