"""The hub next to a real kube-apiserver + etcd, same machine, same client, one run (issue 14, P4).

What runs:
- kube side: one lab spoke (fleetplane_lab: etcd 3.5, kube-apiserver 1.32 and the spoke's
  controller manager, scheduler and kwok, idle) with etcd **fsync on**
  (`SpokeSpec(etcd_fsync=True)`; the lab's default `--unsafe-no-fsync` would flatter etcd).
  A CRD `workloads.fleetplane.io` (namespaced, status subresource, a schema with
  x-kubernetes-preserve-unknown-fields) makes kube-apiserver accept byte-identical bodies.
- hub side: `fleetplane up` through the one launcher (HubProcess) on an embedded Postgres
  (its defaults: fsync on, synchronous_commit on), federation controllers off by default so
  both servers do only the client's work (`--hub-controllers` turns them on).
- client: this process, one httpx.AsyncClient per server, HTTPS to both with TLS verified
  (bearer token each: the hub's admin token, the lab's admin token), the same code and the
  same full Workload bodies (as tests/hubtest.py `workload()`).

Method: warm-up, then N objects are filled into namespace bench-list on each side (16 in
flight), then R rounds alternate hub, kube, hub, kube ...; each round measures sequential
create and get latency, 16-in-flight create throughput, a one-page and a paged (limit=500)
list of the N objects, and create → ADDED latency on a watch opened before a writer creates
objects at a steady rate. A row's figure is the median over rounds of that round's value
(its p50, p99, objects/s, or median list time). Ratios are oriented so that > 1.0 means
the hub is better: kube ÷ hub for times, hub ÷ kube for throughput.

    .venv/bin/python bench/bench_vs_kube.py            # N = 10,000, 5 rounds (~17 min on 2 busy cores)
    .venv/bin/python bench/bench_vs_kube.py --quick    # N = 1,000, 3 rounds (~3 min)

Results: bench/results/vs-kube.json and vs-kube.md (the table is also printed); `--quick` writes
vs-kube-quick.json/.md instead, so a fast check never overwrites the full run's figures.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import os
import platform
import shutil
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psutil
from rich.console import Console
from rich.table import Table

from fleetplane_lab import Lab, SpokeSpec
from fleetplane_lab.binaries import require_binaries
from fleetplane_lab.lab import hub_db_rss_bytes
from fleetplane_testing import HubProcess, free_port
from hub.store.database import EmbeddedPostgres, upgrade

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "bench" / "results"
GROUP, VERSION, PLURAL = "fleetplane.io", "v1alpha1", "workloads"
LIST_NS, OPS_NS = "bench-list", "bench-ops"
IN_FLIGHT = 16
PAGE = 500


# ---------------------------------------------------------------- sizes


@dataclass(frozen=True)
class Sizes:
    objects: int  # N: objects listed (one page and paged)
    rounds: int
    sequential: int  # creates, then gets of the same objects, per round
    concurrent: int  # 16-in-flight creates per round
    list_repeats: int  # one-page lists per round (the round's value is their median)
    paged_repeats: int
    watched: int  # objects created while the watch is open, per round
    watch_rate: float  # creates per second during the watch row
    warmup: int = 50


# The watch row's write rate stays well under both servers' create throughput on a busy
# 2-core machine, so it measures delivery, not a growing write queue (--watch-rate changes it).
FULL = Sizes(
    objects=10_000,
    rounds=5,
    sequential=300,
    concurrent=2000,
    list_repeats=3,
    paged_repeats=2,
    watched=200,
    watch_rate=20,
)
QUICK = Sizes(
    objects=1_000, rounds=3, sequential=100, concurrent=500, list_repeats=3, paged_repeats=2, watched=100, watch_rate=20
)


# ---------------------------------------------------------------- the object and the CRD


def workload(name: str, namespace: str) -> dict[str, Any]:
    """A full Workload, the same shape as tests/hubtest.py `workload()`; the same bytes go to both."""
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "Workload",
        "metadata": {"name": name, "namespace": namespace, "labels": {"bench": "vs-kube"}},
        "spec": {
            "replicas": 1,
            "gpu": {"count": 1},
            "manifests": [
                {
                    "apiVersion": "batch/v1",
                    "kind": "Job",
                    "metadata": {"name": name},
                    "spec": {
                        "template": {
                            "spec": {"restartPolicy": "Never", "containers": [{"name": "main", "image": "busybox"}]}
                        }
                    },
                }
            ],
        },
    }


WORKLOAD_CRD: dict[str, Any] = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": f"{PLURAL}.{GROUP}"},
    "spec": {
        "group": GROUP,
        "scope": "Namespaced",
        "names": {"plural": PLURAL, "singular": "workload", "kind": "Workload", "listKind": "WorkloadList"},
        "versions": [
            {
                "name": VERSION,
                "served": True,
                "storage": True,
                "subresources": {"status": {}},
                "schema": {
                    "openAPIV3Schema": {
                        "type": "object",
                        "properties": {
                            "spec": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
                            "status": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
                        },
                    }
                },
            }
        ],
    },
}


# ---------------------------------------------------------------- one server, the same client code


@dataclass
class Target:
    name: str  # "hub" | "kube-apiserver"
    server: str
    token: str
    ca_file: str
    client: httpx.AsyncClient = field(init=False)

    def open(self) -> None:
        self.client = httpx.AsyncClient(
            base_url=self.server,
            headers={"Authorization": f"Bearer {self.token}"},
            verify=ssl.create_default_context(cafile=self.ca_file),
            timeout=httpx.Timeout(120.0),
            # Idle connections are dropped by the client before the server's idle timeout (the
            # hub's uvicorn: 5 s, also httpx's default), so a request never races the server
            # closing the connection it was sent on.
            limits=httpx.Limits(
                max_connections=IN_FLIGHT + 8, max_keepalive_connections=IN_FLIGHT + 8, keepalive_expiry=3.0
            ),
        )

    def path(self, namespace: str, name: str = "") -> str:
        p = f"/apis/{GROUP}/{VERSION}/namespaces/{namespace}/{PLURAL}"
        return f"{p}/{name}" if name else p

    async def create(self, namespace: str, name: str) -> float:
        t = time.perf_counter()
        r = await self.client.post(self.path(namespace), json=workload(name, namespace))
        dt = time.perf_counter() - t
        if r.status_code != 201:
            raise RuntimeError(f"{self.name}: create {namespace}/{name}: HTTP {r.status_code} {r.text[:300]}")
        return dt

    async def get(self, namespace: str, name: str) -> float:
        t = time.perf_counter()
        r = await self.client.get(self.path(namespace, name))
        dt = time.perf_counter() - t
        if r.status_code != 200:
            raise RuntimeError(f"{self.name}: get {namespace}/{name}: HTTP {r.status_code} {r.text[:300]}")
        return dt


def pct(xs: list[float], p: float) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, round(p / 100 * (len(s) - 1)))]


async def in_flight(n: int, fn: Callable[[int], Awaitable[object]]) -> float:
    """Run fn(0..n-1) with IN_FLIGHT calls at a time; return the wall time."""
    it = iter(range(n))

    async def worker() -> None:
        for i in it:
            await fn(i)

    t0 = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(IN_FLIGHT)))
    return time.perf_counter() - t0


# ---------------------------------------------------------------- measurements (one round, one target)


async def sequential(t: Target, r: int, s: Sizes) -> dict[str, float]:
    names = [f"r{r}-seq-{i}" for i in range(s.sequential)]
    create = [await t.create(OPS_NS, n) for n in names]
    get = [await t.get(OPS_NS, n) for n in names]
    return {
        "create_p50_ms": pct(create, 50) * 1e3,
        "create_p99_ms": pct(create, 99) * 1e3,
        "get_p50_ms": pct(get, 50) * 1e3,
        "get_p99_ms": pct(get, 99) * 1e3,
    }


async def concurrent(t: Target, r: int, s: Sizes) -> dict[str, float]:
    wall = await in_flight(s.concurrent, lambda i: t.create(OPS_NS, f"r{r}-par-{i}"))
    return {"create_16_per_s": s.concurrent / wall}


async def list_one_page(t: Target, expect: int) -> float:
    tt = time.perf_counter()
    r = await t.client.get(t.path(LIST_NS))
    dt = time.perf_counter() - tt
    if r.status_code != 200:
        raise RuntimeError(f"{t.name}: list {LIST_NS}: HTTP {r.status_code} {r.text[:300]}")
    got = len(r.json()["items"])
    if got != expect:
        raise RuntimeError(f"{t.name}: one-page list of {LIST_NS} returned {got} items, expected {expect}")
    return dt


async def list_paged(t: Target, expect: int) -> float:
    tt = time.perf_counter()
    cont: str | None = None
    got = 0
    while True:
        params = {"limit": str(PAGE), **({"continue": cont} if cont else {})}
        r = await t.client.get(t.path(LIST_NS), params=params)
        if r.status_code != 200:
            raise RuntimeError(f"{t.name}: paged list of {LIST_NS}: HTTP {r.status_code} {r.text[:300]}")
        body = r.json()
        got += len(body["items"])
        cont = body["metadata"].get("continue") or None
        if not cont:
            break
    dt = time.perf_counter() - tt
    if got != expect:
        raise RuntimeError(f"{t.name}: paged list of {LIST_NS} returned {got} items, expected {expect}")
    return dt


async def lists(t: Target, s: Sizes) -> dict[str, float]:
    one = [await list_one_page(t, s.objects) for _ in range(s.list_repeats)]
    paged = [await list_paged(t, s.objects) for _ in range(s.paged_repeats)]
    return {"list_one_page_ms": statistics.median(one) * 1e3, "list_paged_ms": statistics.median(paged) * 1e3}


async def watch(t: Target, r: int, s: Sizes) -> dict[str, float]:
    """Open a watch from the current resourceVersion, then create objects at a steady rate
    (each at its slot on a fixed clock, not after the previous one returns); latency is from
    just before a create is sent to the arrival of its ADDED event."""
    lr = await t.client.get(t.path(OPS_NS), params={"limit": "1"})
    lr.raise_for_status()
    rv = lr.json()["metadata"]["resourceVersion"]
    names = [f"r{r}-watch-{i}" for i in range(s.watched)]
    sent: dict[str, float] = {}
    latency: dict[str, float] = {}
    opened = asyncio.Event()
    done = asyncio.Event()

    async def watcher() -> None:
        params = {"watch": "true", "resourceVersion": rv}
        async with t.client.stream("GET", t.path(OPS_NS), params=params, timeout=httpx.Timeout(None)) as st:
            if st.status_code != 200:
                raise RuntimeError(f"{t.name}: watch {OPS_NS}: HTTP {st.status_code}")
            opened.set()
            async for line in st.aiter_lines():
                now = time.perf_counter()
                if not line:
                    continue
                ev = json.loads(line)
                if ev.get("type") != "ADDED":
                    continue
                name = ev["object"]["metadata"]["name"]
                if name in sent and name not in latency:
                    latency[name] = now - sent[name]
                    if len(latency) == len(names):
                        done.set()
                        return

    task = asyncio.create_task(watcher())

    async def until(event: asyncio.Event, seconds: float, what: str) -> None:
        """Wait for `event`; a watcher that failed raises its own error instead."""
        waiter = asyncio.create_task(event.wait())
        await asyncio.wait({task, waiter}, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
        waiter.cancel()
        if task.done() and not task.cancelled() and task.exception() is not None:
            raise RuntimeError(f"{t.name}: watch of {OPS_NS} failed: {task.exception()!r}")
        if not event.is_set():
            raise RuntimeError(f"{t.name}: {what} within {seconds:.0f} s")

    create_latency: list[float] = []

    async def create_at(i: int, at: float) -> None:
        await asyncio.sleep(max(0.0, at - time.perf_counter()))
        sent[names[i]] = time.perf_counter()
        create_latency.append(await t.create(OPS_NS, names[i]))

    try:
        await until(opened, 30, "watch not opened")
        await asyncio.sleep(0.3)  # the server registers the watcher around sending the headers
        t0 = time.perf_counter() + 0.05
        await asyncio.gather(*(create_at(i, t0 + i / s.watch_rate) for i in range(len(names))))
        await until(done, 30, f"watch delivered only {len(latency)} of {len(names)} ADDED events")
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    lat = list(latency.values())
    return {
        "watch_p50_ms": pct(lat, 50) * 1e3,
        "watch_p99_ms": pct(lat, 99) * 1e3,
        # Not a row: how much of the latency above is the create request itself.
        "watch_phase_create_p50_ms": pct(create_latency, 50) * 1e3,
    }


async def one_round(t: Target, r: int, s: Sizes) -> dict[str, float]:
    out: dict[str, float] = {}
    out |= await sequential(t, r, s)
    out |= await concurrent(t, r, s)
    out |= await lists(t, s)
    out |= await watch(t, r, s)
    out["load_average_1m"] = os.getloadavg()[0]  # not a row: how busy the shared machine was
    return out


# ---------------------------------------------------------------- rows


@dataclass(frozen=True)
class Row:
    key: str
    label: str
    unit: str
    higher_is_better: bool

    def ratio(self, hub: float, kube: float) -> float:
        return hub / kube if self.higher_is_better else kube / hub

    @property
    def direction(self) -> str:
        return "hub ÷ kube (throughput)" if self.higher_is_better else "kube ÷ hub (time)"


def rows_for(s: Sizes) -> list[Row]:
    return [
        Row("create_p50_ms", "create, sequential, p50", "ms", False),
        Row("create_p99_ms", "create, sequential, p99", "ms", False),
        Row("get_p50_ms", "get, sequential, p50", "ms", False),
        Row("get_p99_ms", "get, sequential, p99", "ms", False),
        Row("create_16_per_s", f"create, {IN_FLIGHT} in flight", "objects/s", True),
        Row("list_one_page_ms", f"list {s.objects:,} (one page)", "ms", False),
        Row("list_paged_ms", f"list {s.objects:,} (pages of {PAGE})", "ms", False),
        Row("watch_p50_ms", f"watch create → ADDED p50 ({s.watch_rate:g} creates/s)", "ms", False),
        Row("watch_p99_ms", f"watch create → ADDED p99 ({s.watch_rate:g} creates/s)", "ms", False),
    ]


def fmt(v: float, unit: str) -> str:
    if unit == "objects/s":
        return f"{v:,.0f}/s"
    return f"{v:,.1f} ms" if v < 100 else f"{v:,.0f} ms"


# ---------------------------------------------------------------- starting both servers


async def prepare_kube(t: Target) -> None:
    c = t.client
    r = await c.post("/apis/apiextensions.k8s.io/v1/customresourcedefinitions", json=WORKLOAD_CRD)
    if r.status_code not in (201, 409):
        raise RuntimeError(f"kube-apiserver: creating CRD {PLURAL}.{GROUP}: HTTP {r.status_code} {r.text[:300]}")
    deadline = time.monotonic() + 60
    while True:
        crd = (await c.get(f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{PLURAL}.{GROUP}")).json()
        established = any(
            cond.get("type") == "Established" and cond.get("status") == "True"
            for cond in (crd.get("status") or {}).get("conditions") or []  # absent, or null, just after create
        )
        if established and (await c.get(t.path("default"))).status_code == 200:
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"kube-apiserver: CRD {PLURAL}.{GROUP} not served after 60 s")
        await asyncio.sleep(0.2)


async def create_namespaces(t: Target) -> None:
    for ns in (LIST_NS, OPS_NS):
        r = await t.client.post(
            "/api/v1/namespaces", json={"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}
        )
        if r.status_code not in (201, 409):
            raise RuntimeError(f"{t.name}: creating namespace {ns}: HTTP {r.status_code} {r.text[:300]}")


def etcd_fsync_mode(lab: Lab) -> str:
    """Read the mode from the running etcd's command line, not from what we asked for."""
    for rec in lab.spokes["kube"].processes:
        if rec.name.endswith("/etcd"):
            cmd = psutil.Process(rec.pid).cmdline()
            return "off (--unsafe-no-fsync=true)" if "--unsafe-no-fsync=true" in cmd else "on (--unsafe-no-fsync=false)"
    raise RuntimeError("the lab spoke has no etcd process")


def postgres_settings(url: str) -> dict[str, str]:
    import psycopg

    dsn = url.replace("postgresql+psycopg://", "postgresql://")
    out: dict[str, str] = {}
    with psycopg.connect(dsn) as conn:
        for k in ("fsync", "synchronous_commit", "server_version"):
            row = conn.execute(f"SHOW {k}").fetchone()
            out[k] = str(row[0]) if row else "?"
    return out


def rss_mib(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        try:
            total += psutil.Process(pid).memory_info().rss
        except psutil.Error:
            pass
    return total / 2**20


def git_facts() -> dict[str, Any]:
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True).stdout.strip()

    return {
        "commit": git("rev-parse", "--short", "HEAD"),
        "uncommitted_files": len(git("status", "--porcelain").splitlines()),
    }


def machine_facts(run_dir: Path) -> dict[str, Any]:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    fs = next(
        (
            p.fstype
            for p in sorted(psutil.disk_partitions(all=True), key=lambda p: -len(p.mountpoint))
            if str(run_dir).startswith(p.mountpoint)
        ),
        "unknown",
    )
    return {
        "cores": os.cpu_count(),
        "cpu": cpu,
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "run_dir_filesystem": fs,
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


# ---------------------------------------------------------------- the run


async def fill_one(t: Target, i: int) -> float:
    return await t.create(LIST_NS, f"w-{i:06d}")


async def measure(hub: Target, kube: Target, s: Sizes, say: Callable[[str], None]) -> dict[str, Any]:
    for t in (hub, kube):
        t.open()
    try:
        await prepare_kube(kube)
        versions = {
            "hub": (await hub.client.get("/version")).json().get("gitVersion", "?"),
            "kube-apiserver": (await kube.client.get("/version")).json().get("gitVersion", "?"),
        }
        for t in (hub, kube):
            await create_namespaces(t)
            for i in range(s.warmup):  # connections, caches, the CRD handler: not measured
                await t.create(OPS_NS, f"warm-{i}")
                await t.get(OPS_NS, f"warm-{i}")
        fill: dict[str, float] = {}
        for t in (hub, kube):
            say(f"{t.name}: creating {s.objects:,} objects in {LIST_NS} ({IN_FLIGHT} in flight)")
            wall = await in_flight(s.objects, functools.partial(fill_one, t))
            fill[t.name] = s.objects / wall
        rounds: dict[str, list[dict[str, float]]] = {hub.name: [], kube.name: []}
        for r in range(s.rounds):
            for t in (hub, kube):
                t0 = time.monotonic()
                res = await one_round(t, r, s)
                rounds[t.name].append(res)
                say(
                    f"round {r + 1}/{s.rounds} {t.name}: {time.monotonic() - t0:.1f}s "
                    + ", ".join(f"{k}={v:.1f}" for k, v in res.items())
                )
        return {"versions": versions, "fill_objects_per_s": fill, "rounds": rounds}
    finally:
        for t in (hub, kube):
            await t.client.aclose()


def run(s: Sizes, hub_controllers: bool, keep: bool, say: Callable[[str], None]) -> dict[str, Any]:
    bin_dir = require_binaries()
    etcd_out = subprocess.run([str(bin_dir / "etcd"), "--version"], capture_output=True, text=True).stdout
    etcd_version = etcd_out.split("\n")[0].replace("Version: ", "")  # "etcd 3.5.21"
    tmp = Path(tempfile.mkdtemp(prefix="fleetplane-vs-kube-"))
    os.chmod(tmp, 0o755)
    load_start = os.getloadavg()
    started = time.strftime("%Y-%m-%d %H:%M")
    lab = Lab(tmp / "lab", spokes=[SpokeSpec("kube", profiles=[], etcd_fsync=True)], with_hub=False, progress=say)
    hub_proc: HubProcess | None = None
    try:
        say("starting the lab spoke (etcd with fsync, kube-apiserver, …)")
        lab.up()
        spoke = lab.spokes["kube"]
        say("starting the hub on embedded Postgres")
        pg = EmbeddedPostgres(tmp / "pg", database="postgres")
        url = pg.create_database("bench")
        upgrade(url)
        env = {} if hub_controllers else {"FLEETPLANE_CONTROLLERS": "false"}
        hub_proc = HubProcess(tmp / "hub", url, free_port(), free_port(), extra_env=env).start(timeout=120)
        hub = Target("hub", hub_proc.url, hub_proc.admin_token, str(hub_proc.ca))
        kube = Target("kube-apiserver", spoke.server, spoke.token, spoke.ca_file)
        facts = {
            "etcd_fsync": etcd_fsync_mode(lab),
            "etcd": etcd_version,
            "postgres": postgres_settings(url),
            "hub_controllers": hub_controllers,
        }
        out = asyncio.run(measure(hub, kube, s, say))
        out["facts"] = facts
        procs = {r.name.rsplit("/", 1)[-1]: r.pid for r in spoke.processes}
        out["rss_mib_after"] = {
            "hub (process + its Postgres)": rss_mib([hub_proc.proc.pid]) + hub_db_rss_bytes(str(tmp / "pg")) / 2**20,  # type: ignore[union-attr]
            "kube-apiserver + etcd": rss_mib([procs["kube-apiserver"], procs["etcd"]]),
        }
        out["machine"] = machine_facts(tmp)
        out["load_average"] = {"start": list(load_start), "end": list(os.getloadavg())}
        out["date"] = started
    except BaseException:
        keep = True  # the logs say why: hub.log, the spoke's logs/
        if hub_proc:
            say(f"hub log tail:\n{hub_proc.log_tail(20)}")
        raise
    finally:
        if hub_proc:
            hub_proc.stop()
        lab.down()
        if keep:
            say(f"kept {tmp} (hub/hub.log, lab/spokes/kube/logs/)")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    return out


# ---------------------------------------------------------------- report


def summarise(raw: dict[str, Any], s: Sizes) -> list[dict[str, Any]]:
    out = []
    for row in rows_for(s):
        hub = statistics.median(r[row.key] for r in raw["rounds"]["hub"])
        kube = statistics.median(r[row.key] for r in raw["rounds"]["kube-apiserver"])
        out.append(
            {
                "row": row.label,
                "key": row.key,
                "unit": row.unit,
                "hub": hub,
                "kube": kube,
                "ratio": row.ratio(hub, kube),
                "ratio_is": row.direction,
            }
        )
    return out


def write(raw: dict[str, Any], summary: list[dict[str, Any]], s: Sizes, command: str, stem: str) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    doc = {"command": command, "sizes": s.__dict__, "summary": summary, **raw}
    (RESULTS / f"{stem}.json").write_text(json.dumps(doc, indent=2) + "\n")
    m, f = raw["machine"], raw["facts"]
    la = raw["load_average"]
    lines = [
        "# Hub vs kube-apiserver + etcd, side by side",
        "",
        f"Command: `{command}` (started {raw['date']}).",
        "",
        "Ratio: **> 1.0 means the hub is better**; for times it is kube ÷ hub, for throughput hub ÷ kube",
        "(column *ratio is*). Each figure is the median over "
        f"{s.rounds} alternating rounds (hub, kube, hub, kube …) of that round's value.",
        "",
        "| row | hub | kube-apiserver | hub/kube ratio | ratio is |",
        "|---|---|---|---|---|",
    ]
    for r in summary:
        lines.append(
            f"| {r['row']} | {fmt(r['hub'], r['unit'])} | {fmt(r['kube'], r['unit'])} | {r['ratio']:.2f} | {r['ratio_is']} |"
        )
    v = raw["versions"]
    pg = f["postgres"]
    lines += [
        "",
        "## Setup",
        "",
        f"- Machine: {m['cores']} cores ({m['cpu']}), {m['memory_gib']} GiB, run dir on {m['run_dir_filesystem']}; "
        f"Python {m['python']}. **Shared with other work** (other sessions build and test on the same 2 cores): "
        f"load average {la['start'][0]:.1f} at start, {la['end'][0]:.1f} at end. Alternating rounds and medians "
        "spread that noise over both sides, but absolute numbers are lower than on an idle machine.",
        f"- kube side: kube-apiserver {v['kube-apiserver']}, {f['etcd'].replace('Version: ', '')}, **etcd fsync {f['etcd_fsync']}**, one lab "
        "spoke (its controller manager, scheduler and kwok run idle; the controller manager's garbage collector "
        f"watches the CRD like in any cluster). CRD `{PLURAL}.{GROUP}`: namespaced, status subresource, "
        "x-kubernetes-preserve-unknown-fields.",
        f"- hub side: `fleetplane up` ({v['hub']}, commit {raw['git']['commit']}"
        + (
            f", plus {raw['git']['uncommitted_files']} uncommitted files of work in progress"
            if raw["git"]["uncommitted_files"]
            else ""
        )
        + f"), one process, embedded Postgres {pg['server_version']} with fsync={pg['fsync']}, "
        f"synchronous_commit={pg['synchronous_commit']}; federation controllers "
        + ("**on**" if f["hub_controllers"] else "**off** (API only, like the CRD on kube-apiserver)")
        + ".",
        "- Client: this process, httpx.AsyncClient, HTTP/1.1 over HTTPS with verified TLS to both, bearer tokens, "
        "the same full Workload body (tests/hubtest.py `workload()`; byte-identical, since the CRD uses the hub's group).",
        f"- Sizes per round: {s.sequential} sequential creates then gets; {s.concurrent:,} creates {IN_FLIGHT} in flight; "
        f"{s.list_repeats} one-page and {s.paged_repeats} paged lists of the {s.objects:,} objects of `{LIST_NS}` "
        f"(round value = median); watch: {s.watched} creates at {s.watch_rate:g}/s on a fixed clock into a namespace "
        "being watched from the current resourceVersion. The p99 of 100–300 samples is close to their maximum.",
        "- Filling the list namespace (16 in flight, once, not a row): "
        + ", ".join(f"{k} {val:,.0f}/s" for k, val in raw["fill_objects_per_s"].items())
        + ". RSS after the run: "
        + ", ".join(f"{k} {val:,.0f} MiB" for k, val in raw["rss_mib_after"].items())
        + ".",
        "- Not rows (medians over rounds): p50 of the create requests during the watch row "
        + ", ".join(
            f"{k} {statistics.median(x['watch_phase_create_p50_ms'] for x in rs):.1f} ms"
            for k, rs in raw["rounds"].items()
        )
        + " (part of the watch latency); 1-minute load average after each side's rounds "
        + ", ".join(f"{k} {statistics.median(x['load_average_1m'] for x in rs):.1f}" for k, rs in raw["rounds"].items())
        + ".",
        "",
        f"Per-round values are in `{stem}.json`.",
    ]
    (RESULTS / f"{stem}.md").write_text("\n".join(lines) + "\n")


def print_table(summary: list[dict[str, Any]], raw: dict[str, Any]) -> None:
    table = Table(title=f"hub vs kube-apiserver (etcd fsync {raw['facts']['etcd_fsync']}; ratio > 1.0 = hub better)")
    for col in ("row", "hub", "kube-apiserver", "hub/kube ratio", "ratio is"):
        table.add_column(col, justify="right" if col in ("hub", "kube-apiserver", "hub/kube ratio") else "left")
    for r in summary:
        table.add_row(r["row"], fmt(r["hub"], r["unit"]), fmt(r["kube"], r["unit"]), f"{r['ratio']:.2f}", r["ratio_is"])
    Console(width=150).print(table)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="N = 1,000 and 3 rounds, for a fast check")
    ap.add_argument("--objects", type=int, help="N, the objects listed (default 10,000; --quick 1,000)")
    ap.add_argument("--rounds", type=int, help="rounds per side (default 5; --quick 3)")
    ap.add_argument("--watch-rate", type=float, help="creates per second during the watch row (default 20)")
    ap.add_argument("--hub-controllers", action="store_true", help="run the hub's federation controllers too")
    ap.add_argument("--keep", action="store_true", help="keep the temporary run dir (logs, data)")
    args = ap.parse_args()
    s = QUICK if args.quick else FULL
    if args.objects:
        s = Sizes(**{**s.__dict__, "objects": args.objects})
    if args.rounds:
        s = Sizes(**{**s.__dict__, "rounds": args.rounds})
    if args.watch_rate:
        s = Sizes(**{**s.__dict__, "watch_rate": args.watch_rate})
    command = ".venv/bin/python bench/bench_vs_kube.py" + "".join(f" {a}" for a in sys.argv[1:])

    def say(msg: str) -> None:
        print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)

    git = git_facts()  # before the run: the tree is what the hub process ran
    raw = run(s, args.hub_controllers, args.keep, say)
    raw["git"] = git
    summary = summarise(raw, s)
    stem = "vs-kube-quick" if args.quick else "vs-kube"
    write(raw, summary, s, command, stem)
    print_table(summary, raw)
    print(f"results written to {RESULTS / stem}.md and .json")


if __name__ == "__main__":
    main()
