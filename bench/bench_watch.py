"""Watch delivery at fleet scale (issue 14, P5): N concurrent watchers, a writer at a fixed rate,
commit → delivery latency to every watcher.

What runs:
- hub side: `fleetplane up` through the one launcher (HubProcess) on an embedded Postgres,
  federation controllers off (as bench_vs_kube does), the per-subject watch cap raised above N.
- kube side (`--kube`): one lab spoke (etcd with fsync on, kube-apiserver) with the Workload CRD
  of bench_vs_kube, the same objects, the same client code.
- watchers: N watches of one namespace from the same resourceVersion, spread over several
  client processes (`--clients`, default one per 250 watchers: one Python process cannot read
  1,000 TLS streams at 50 events/s each and keep its own timestamps honest on a busy machine).
  Each watch is a raw HTTP/1.1 GET over TLS (verified) that only looks for the object's name in
  the bytes, so client-side JSON parsing does not dominate what is measured.
- writer: this process creates full Workloads (bench_vs_kube's `workload()`) at `--rate` per
  second, each at its slot on a fixed clock (not after the previous one returns).

Latency per (watcher, object): arrival of the object's ADDED event at that watcher minus the
moment the writer got the create's response (the commit as the writer sees it; it can be
slightly negative when the event overtakes the response) — and, for comparison with
bench_vs_kube's watch row, minus the moment the create was sent. An event that never arrives
within `--grace` seconds after the last create is counted as undelivered. CLOCK_MONOTONIC is
system-wide on Linux, so timestamps from the client processes and the writer compare.

    .venv/bin/python bench/bench_watch.py                       # N = 100 and 1,000, 50 writes/s, 10 s
    .venv/bin/python bench/bench_watch.py --kube                # the same against kube-apiserver too
    .venv/bin/python bench/bench_watch.py --watchers 50 --seconds 3   # a quick check
    .venv/bin/python bench/bench_watch.py --watchers 1000 --kube --hub-workers 2   # watchers spread over 2 hub processes

Results: bench/results/watch.json and watch.md (the table is also printed).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import ssl
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import psutil
from rich.console import Console
from rich.table import Table

if str(Path(__file__).resolve().parent.parent) not in sys.path:  # run as a script, as the other benches are
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.bench_vs_kube import (
    GROUP,
    IN_FLIGHT,
    OPS_NS,
    PLURAL,
    RESULTS,
    VERSION,
    Target,
    create_namespaces,
    etcd_fsync_mode,
    git_facts,
    machine_facts,
    pct,
    prepare_kube,
)
from fleetplane_testing import HubProcess, free_port
from hub.store.database import EmbeddedPostgres, upgrade

WATCHERS_PER_CLIENT = 250
NAME = re.compile(rb'"name":\s*"(bw-[a-z0-9]+-\d+)"')


# ---------------------------------------------------------------- the watcher client process


@dataclass
class Stream:
    arrivals: dict[str, float]
    status: int = 0
    ended: str = ""


async def watch_one(server: str, token: str, ca: str, path: str, st: Stream, opened: asyncio.Event) -> None:
    """One watch: a raw GET, then every name seen in the body with the moment it arrived."""
    u = urlsplit(server)
    ctx = ssl.create_default_context(cafile=ca)
    reader, writer = await asyncio.open_connection(u.hostname, u.port, ssl=ctx, server_hostname=u.hostname)
    writer.write(
        (
            f"GET {path} HTTP/1.1\r\nHost: {u.netloc}\r\nAuthorization: Bearer {token}\r\n"
            "Accept: application/json\r\nUser-Agent: bench-watch\r\n\r\n"
        ).encode()
    )
    await writer.drain()
    head = await reader.readuntil(b"\r\n\r\n")
    st.status = int(head.split(b" ", 2)[1])
    opened.set()
    if st.status != 200:
        st.ended = head.decode(errors="replace")[:200]
        writer.close()
        return
    tail = b""
    try:
        while True:
            data = await reader.read(65536)
            now = time.monotonic()
            if not data:
                st.ended = "server closed the stream"
                return
            buf = tail + data
            for m in NAME.finditer(buf):
                st.arrivals.setdefault(m.group(1).decode(), now)
            tail = buf[-64:]  # a name split across two reads is found in the next
    finally:
        writer.close()


async def child_main(args: argparse.Namespace) -> None:
    streams = [Stream({}) for _ in range(args.count)]
    path = f"/apis/{GROUP}/{VERSION}/namespaces/{args.namespace}/{PLURAL}?watch=true&resourceVersion={args.rv}"
    tasks = []
    for i, st in enumerate(streams):
        opened = asyncio.Event()
        tasks.append(asyncio.create_task(watch_one(args.server, args.token, args.ca, path, st, opened)))
        if i % 25 == 24:  # open in small groups: a stampede of TLS handshakes measures nothing
            await opened.wait()
    await asyncio.sleep(0.5)
    print(json.dumps({"ready": sum(1 for s in streams if s.status == 200)}), flush=True)
    line = await asyncio.to_thread(sys.stdin.readline)  # the writer's commit times, when it is done
    plan = json.loads(line)
    commits: dict[str, list[float]] = plan["commits"]
    while time.monotonic() < plan["deadline"]:
        if all(len(s.arrivals) >= len(commits) for s in streams if s.status == 200):
            break
        await asyncio.sleep(0.1)
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    after_send: dict[str, list[float]] = {name: [] for name in commits}  # ms from the create's send
    missing = 0
    for s in streams:
        if s.status != 200:
            missing += len(commits)
            continue
        for name, (sent, _) in commits.items():
            at = s.arrivals.get(name)
            if at is None:
                missing += 1
            else:
                after_send[name].append(round((at - sent) * 1e3, 2))
    out = {
        "after_send_ms": after_send,
        "missing": missing,
        "failed_opens": [s.ended for s in streams if s.status != 200][:5],
        "failed_open_count": sum(1 for s in streams if s.status != 200),
    }
    print(json.dumps(out), flush=True)


# ---------------------------------------------------------------- one measurement


def start_clients(t: Target, n: int, clients: int, rv: str) -> list[subprocess.Popen[str]]:
    procs = []
    per = [n // clients + (1 if i < n % clients else 0) for i in range(clients)]
    for count in per:
        cmd = [sys.executable, "-m", "bench.bench_watch", "--child", "--count", str(count), "--rv", rv]
        cmd += ["--server", t.server, "--token", t.token, "--ca", t.ca_file, "--namespace", OPS_NS]
        procs.append(
            subprocess.Popen(
                cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=Path(__file__).parent.parent
            )
        )
    return procs


def read_line(proc: subprocess.Popen[str], timeout: float) -> dict[str, Any]:
    box: list[str] = []
    th = threading.Thread(target=lambda: box.append(proc.stdout.readline() if proc.stdout else ""), daemon=True)
    th.start()
    th.join(timeout)
    if not box or not box[0]:
        raise RuntimeError(f"watch client {proc.pid} said nothing within {timeout:.0f} s")
    result: dict[str, Any] = json.loads(box[0])
    return result


async def write_at_rate(
    t: Target, run: str, rate: float, seconds: float, failures: list[str]
) -> dict[str, list[float]]:
    """Create rate × seconds Workloads, each at its slot; name → [sent, answered] (monotonic).
    Creates that fail (an error status, a 120 s client timeout) are appended to `failures`."""
    n = int(rate * seconds)
    commits: dict[str, list[float]] = {}
    t0 = time.monotonic() + 0.1
    gate = asyncio.Semaphore(IN_FLIGHT)

    async def create_at(i: int) -> None:
        await asyncio.sleep(max(0.0, t0 + i / rate - time.monotonic()))
        name = f"bw-{run}-{i:05d}"
        async with gate:  # a server slower than the rate gets a queue here, not thousands of requests
            sent = time.monotonic()
            try:
                await t.create(OPS_NS, name)
            except (httpx.HTTPError, RuntimeError) as exc:  # a failed create is counted, not fatal
                failures.append(f"{name}: {exc!r}"[:300])
                return
            commits[name] = [sent, time.monotonic()]

    await asyncio.gather(*(create_at(i) for i in range(n)))
    return commits


def measure(t: Target, n: int, args: argparse.Namespace, run: str, pids: list[int], say: Any) -> dict[str, Any]:
    clients = args.clients or max(1, -(-n // WATCHERS_PER_CLIENT))

    async def list_rv() -> str:
        t.open()
        try:
            r = await t.client.get(t.path(OPS_NS), params={"limit": "1"})
            r.raise_for_status()
            return str(r.json()["metadata"]["resourceVersion"])
        finally:
            await t.client.aclose()

    rv = asyncio.run(list_rv())
    say(f"{t.name}: opening {n:,} watches from rv {rv} in {clients} client processes")
    procs = start_clients(t, n, clients, rv)
    try:
        ready = sum(read_line(p, 180)["ready"] for p in procs)
        say(f"{t.name}: {ready:,} of {n:,} watches open; writing {args.rate:g}/s for {args.seconds:g} s")
        procs_measured = [q for pid in pids for q in (psutil.Process(pid), *psutil.Process(pid).children(True))]
        cpu0 = {q.pid: sum(q.cpu_times()[:2]) for q in procs_measured}
        load0 = os.getloadavg()
        wall0 = time.monotonic()

        failed_creates: list[str] = []

        async def write() -> dict[str, list[float]]:
            t.open()
            try:
                return await write_at_rate(t, run, args.rate, args.seconds, failed_creates)
            finally:
                await t.client.aclose()

        commits = asyncio.run(write())
        wrote = time.monotonic() - wall0
        create_ms = sorted((a - s) * 1e3 for s, a in commits.values())
        plan = json.dumps({"commits": commits, "deadline": time.monotonic() + args.grace}) + "\n"
        for p in procs:
            assert p.stdin is not None
            p.stdin.write(plan)
            p.stdin.flush()
        results = [read_line(p, args.grace + 120) for p in procs]
        wall = time.monotonic() - wall0
        cpu = {q.pid: sum(q.cpu_times()[:2]) - cpu0[q.pid] for q in procs_measured}
    finally:
        for p in procs:
            p.kill()
            p.wait()
    lat: list[float] = []  # from the create's response (the commit as the writer sees it)
    lat_sent: list[float] = []  # from the moment the create was sent
    spread: list[float] = []  # from the first watcher that got the same event: the fan-out's own cost
    for name, (sent, answered) in commits.items():
        got = [x for r in results for x in r["after_send_ms"][name]]
        if not got:
            continue
        first, took = min(got), (answered - sent) * 1e3
        lat_sent += got
        lat += [x - took for x in got]
        spread += [x - first for x in got]
    lat.sort()
    lat_sent.sort()
    spread.sort()
    expected = n * len(commits)
    row = {
        "server": t.name,
        "watchers": n,
        "watchers_open": ready,
        "client_processes": clients,
        "writes": len(commits),
        "failed_creates": len(failed_creates),
        "failed_create_examples": failed_creates[:3],
        "write_rate_achieved": len(commits) / wrote,
        "events_expected": expected,
        "events_missing": sum(r["missing"] for r in results),
        "failed_opens": sum(r["failed_open_count"] for r in results),
        "failed_open_examples": [e for r in results for e in r["failed_opens"]][:3],
        "p50_ms": pct(lat, 50) if lat else None,
        "p99_ms": pct(lat, 99) if lat else None,
        "max_ms": lat[-1] if lat else None,
        "from_send_p50_ms": pct(lat_sent, 50) if lat_sent else None,
        "from_send_p99_ms": pct(lat_sent, 99) if lat_sent else None,
        "spread_p50_ms": pct(spread, 50) if spread else None,
        "spread_p99_ms": pct(spread, 99) if spread else None,
        "spread_max_ms": spread[-1] if spread else None,
        "create_p50_ms": pct(create_ms, 50) if create_ms else None,
        "create_p99_ms": pct(create_ms, 99) if create_ms else None,
        "server_cpu_cores": sum(cpu.values()) / wall,
        "server_cpu_seconds": sum(cpu.values()),
        # Less sensitive to a shared machine than latency: the server's CPU (creates included,
        # the same for every build) per 1,000 events delivered.
        "server_cpu_ms_per_1000_deliveries": sum(cpu.values()) * 1e6 / max(1, len(lat)),
        "load_average_before": list(load0),
    }
    say(
        f"{t.name} N={n}: p50 {fmt(row['p50_ms'])} ms, p99 {fmt(row['p99_ms'])} ms, max {fmt(row['max_ms'])} ms,"
        f" spread p99 {fmt(row['spread_p99_ms'])} ms, create p50 {fmt(row['create_p50_ms'])} ms,"
        f" server CPU {row['server_cpu_cores']:.2f} cores, missing {row['events_missing']}/{expected}"
    )
    return row


# ---------------------------------------------------------------- the run


def hub_target(
    tmp: Path, max_watchers: int, program: str | None, say: Any, workers: int = 1
) -> tuple[HubProcess, Target]:
    say(f"starting the hub on embedded Postgres ({workers} API process(es), controllers off)")
    pg = EmbeddedPostgres(tmp / "pg", database="postgres")
    url = pg.create_database("bench")
    if not program:  # another build migrates its own schema when it starts (`fleetplane up` does)
        upgrade(url)
    env = {"FLEETPLANE_CONTROLLERS": "false", "FLEETPLANE_MAX_WATCHES_PER_SUBJECT": str(max_watchers + 100)}
    launcher = program.split() if program else None
    proc = HubProcess(
        tmp / "hub", url, free_port(), free_port(), extra_env=env, program=launcher, workers=workers
    ).start(timeout=120 + 60 * (workers - 1))
    return proc, Target("hub", proc.url, proc.admin_token, str(proc.ca))


def setup(t: Target, kube: bool) -> None:
    async def go() -> None:
        t.open()
        try:
            if kube:
                await prepare_kube(t)
            await create_namespaces(t)
        finally:
            await t.client.aclose()

    asyncio.run(go())


def run(args: argparse.Namespace, say: Any) -> dict[str, Any]:
    sizes = [int(x) for x in str(args.watchers).split(",")]
    tmp = Path(tempfile.mkdtemp(prefix="fleetplane-bench-watch-"))
    os.chmod(tmp, 0o755)
    rows: list[dict[str, Any]] = []
    facts: dict[str, Any] = {"machine": machine_facts(tmp), "git": git_facts(), "date": time.strftime("%Y-%m-%d %H:%M")}
    hub_proc: HubProcess | None = None
    lab = None
    try:
        hub_proc, hub = hub_target(tmp, max(sizes), args.hub_program, say, args.hub_workers)
        setup(hub, kube=False)
        kube_t: Target | None = None
        kube_pids: list[int] = []
        if args.kube:
            from fleetplane_lab import Lab, SpokeSpec

            lab = Lab(
                tmp / "lab", spokes=[SpokeSpec("kube", profiles=[], etcd_fsync=True)], with_hub=False, progress=say
            )
            say("starting the lab spoke (etcd with fsync, kube-apiserver)")
            lab.up()
            spoke = lab.spokes["kube"]
            kube_t = Target("kube-apiserver", spoke.server, spoke.token, spoke.ca_file)
            setup(kube_t, kube=True)
            facts["etcd_fsync"] = etcd_fsync_mode(lab)
            kube_pids = [r.pid for r in spoke.processes if r.name.endswith(("/etcd", "/kube-apiserver"))]
        assert hub_proc.proc is not None
        for i, n in enumerate(sizes):
            rows.append(measure(hub, n, args, f"h{i}", [hub_proc.proc.pid], say))
            if kube_t is not None:
                rows.append(measure(kube_t, n, args, f"k{i}", kube_pids, say))
    except BaseException:
        if hub_proc:
            say(f"hub log tail:\n{hub_proc.log_tail(20)}")
        say(f"kept {tmp}")
        raise
    finally:
        if hub_proc:
            hub_proc.stop()
        if lab is not None:
            lab.down()
    shutil.rmtree(tmp, ignore_errors=True)
    facts["load_average_end"] = list(os.getloadavg())
    settings = {"rate": args.rate, "seconds": args.seconds, "grace": args.grace, "hub_workers": args.hub_workers}
    return {"rows": rows, "facts": facts, "settings": settings}


def fmt(v: float | None) -> str:
    return "—" if v is None else f"{v:,.1f}"


def table_rows(out: dict[str, Any]) -> list[list[str]]:
    return [
        [
            r["server"],
            f"{r['watchers']:,}",
            f"{r['writes']:,} @ {r['write_rate_achieved']:.1f}/s"
            + (f" ({r['failed_creates']:,} failed)" if r["failed_creates"] else ""),
            fmt(r["p50_ms"]),
            fmt(r["p99_ms"]),
            fmt(r["max_ms"]),
            f"{r['events_missing']:,} / {r['events_expected']:,}",
            fmt(r["from_send_p99_ms"]),
            fmt(r["spread_p99_ms"]),
            fmt(r["create_p50_ms"]),
            f"{r['server_cpu_cores']:.2f}",
            f"{r['server_cpu_ms_per_1000_deliveries']:,.0f}",
        ]
        for r in out["rows"]
    ]


HEADERS = [
    "server",
    "watchers",
    "creates",
    "p50 ms",
    "p99 ms",
    "max ms",
    "never delivered",
    "p99 from send ms",
    "fan-out spread p99 ms",
    "create p50 ms",
    "server CPU (cores)",
    "server CPU ms / 1,000 deliveries",
]


def write(out: dict[str, Any], command: str, stem: str) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    out["command"] = command
    (RESULTS / f"{stem}.json").write_text(json.dumps(out, indent=2) + "\n")
    f = out["facts"]
    lines = [
        "# Watch delivery: commit → delivery to N concurrent watchers (issue 14, P5)",
        "",
        f"Command: `{command}` — {f['date']}, commit {f['git']['commit']}"
        f" (+{f['git']['uncommitted_files']} uncommitted files), {f['machine']['cores']} cores"
        f" ({f['machine']['cpu']}), load average before/after {out['rows'][0]['load_average_before'][0]:.1f}"
        f" / {f['load_average_end'][0]:.1f} (the machine is shared: other work ran meanwhile).",
        "",
        f"Writer: {out['settings']['rate']:g} creates/s of full Workloads on a fixed clock for"
        f" {out['settings']['seconds']:g} s; latency = arrival at each watcher − the create's response"
        ' ("p99 from send": − the moment the create was sent; the commit lies between the two;'
        ' "fan-out spread": − the first arrival of the same event at any watcher). Never delivered:'
        " (watcher, event) pairs"
        f" missing {out['settings']['grace']:g} s after the last create. Watchers are raw TLS streams in"
        f" one client process per {WATCHERS_PER_CLIENT} watchers. Hub: `fleetplane up`"
        f" ({out['settings'].get('hub_workers', 1)} API process(es)), embedded Postgres,"
        " controllers off."
        + (f" kube-apiserver: lab spoke, etcd fsync {f['etcd_fsync']}." if "etcd_fsync" in f else ""),
        "",
        "| " + " | ".join(HEADERS) + " |",
        "|" + "|".join("---" for _ in HEADERS) + "|",
    ]
    lines += ["| " + " | ".join(r) + " |" for r in table_rows(out)]
    (RESULTS / f"{stem}.md").write_text("\n".join(lines) + "\n")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--watchers", default="100,1000", help="comma-separated watcher counts (default 100,1000)")
    p.add_argument("--rate", type=float, default=50.0, help="creates per second (default 50)")
    p.add_argument("--seconds", type=float, default=10.0, help="how long the writer writes (default 10)")
    p.add_argument("--grace", type=float, default=10.0, help="s after the last create before counting a miss")
    p.add_argument("--clients", type=int, default=0, help=f"client processes (default: one per {WATCHERS_PER_CLIENT})")
    p.add_argument("--kube", action="store_true", help="also measure a lab kube-apiserver side by side")
    p.add_argument(
        "--hub-program",
        help="command that replaces `python -m fleetplane` for the hub (e.g. a launcher of a baseline checkout)",
    )
    p.add_argument(
        "--hub-workers",
        type=int,
        default=1,
        help="API worker processes of the hub (`fleetplane up --workers`); each has its own watch fan-out",
    )
    p.add_argument("--name", default="watch", help="results file stem (default watch: bench/results/watch.md/.json)")
    p.add_argument("--no-write", action="store_true", help="print the table only; do not write bench/results")
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    for a in ("--count", "--rv", "--server", "--token", "--ca", "--namespace"):
        p.add_argument(a, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        args.count = int(args.count)
        asyncio.run(child_main(args))
        return
    console = Console(stderr=True)
    out = run(args, lambda m: console.print(f"[dim]{time.strftime('%H:%M:%S')}[/] {m}"))
    table = Table(title="watch delivery (commit → each watcher)")
    for h in HEADERS:
        table.add_column(h, justify="left" if h == "server" else "right")
    for r in table_rows(out):
        table.add_row(*r)
    Console(width=200).print(table)
    if not args.no_write:
        write(out, ".venv/bin/python bench/bench_watch.py " + " ".join(sys.argv[1:]), args.name)


if __name__ == "__main__":
    main()
