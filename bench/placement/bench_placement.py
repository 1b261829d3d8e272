"""Placement engine throughput: decisions per second and p99 per decision.

Fleets of 100, 1,000 and 10,000 clusters, 4 GPU pools each (mixed models and capacity
types, 2-16 nodes per pool, partly used), a 24-site topology and 12 datasets. A batch of
workloads (gangs and divisible, 1-8 GPUs per replica, various model, capacity-type,
selector, toleration and dataset needs) is placed one decision at a time through a single
:class:`~placement.engine.PlacementSession`, in one process. Timing covers the decision
(filters, scores, choice, booking) but not building the explanation, which is lazy.

Run:  .venv/bin/python -m bench.placement.bench_placement [--sizes 100,1000,10000]
Writes bench/results/placement.md and .json and prints the table.
"""

from __future__ import annotations

import os

# One core: keep any BLAS/OpenMP pool numpy might use to a single thread.
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse
import json
import platform
import random
import time
from pathlib import Path

import numpy as np

from placement import (
    CapacityPolicy,
    ClusterInfo,
    Dataset,
    Engine,
    FleetSnapshot,
    LabelSelector,
    Link,
    NodePool,
    Site,
    Taint,
    Toleration,
    Topology,
    WorkloadRequest,
)
from placement.model import CapacityType, GpuNode

MODELS: list[tuple[str, int, int, float]] = [  # model, GiB, GPUs per node, on-demand $/GPU-h
    ("H100", 80, 8, 4.5),
    ("H200", 141, 8, 6.0),
    ("A100", 80, 8, 2.5),
    ("L40S", 48, 8, 1.6),
    ("L4", 24, 4, 0.8),
    ("A10G", 24, 4, 1.0),
]
CAPS: list[CapacityType] = ["on-demand", "on-demand", "spot", "reserved"]
REGIONS = [f"region-{i}" for i in range(8)]


def make_topology() -> Topology:
    sites = [Site(r, "region") for r in REGIONS]
    for r in REGIONS:
        sites += [Site(f"{r}-a", "zone", r), Site(f"{r}-b", "zone", r)]
    links = [
        Link(a, b, bandwidth_gbps=10 if (i + j) % 2 else 40, egress_cost_per_gb=0.02 if abs(i - j) < 3 else 0.08)
        for i, a in enumerate(REGIONS)
        for j, b in enumerate(REGIONS)
        if i < j
    ]
    return Topology(tuple(sites), tuple(links), name="bench")


def make_fleet(n: int, rng: random.Random) -> FleetSnapshot:
    clusters = []
    for c in range(n):
        region = REGIONS[c % len(REGIONS)]
        pools = []
        for p in range(4):
            model, mem, gpn, price = MODELS[rng.randrange(len(MODELS))]
            cap = CAPS[p]
            nodes = rng.randint(2, 16)
            frees = [rng.choice([0, 0, 1, 2, 4, gpn, gpn, gpn]) if gpn >= 4 else gpn for _ in range(nodes)]
            name = f"p{p}-{model.lower()}-{cap}"
            pools.append(
                NodePool(
                    name=name,
                    model=model,
                    capacity_type=cap,
                    nodes=tuple(GpuNode(f"c{c}-{name}-{i}", gpn, min(f, gpn)) for i, f in enumerate(frees)),
                    memory_gib=mem,
                    price_per_gpu_hour=round(price * (0.35 if cap == "spot" else 1.0) * rng.uniform(0.9, 1.1), 3),
                    gpus_per_node=gpn,
                )
            )
        clusters.append(
            ClusterInfo(
                name=f"cluster-{c:05d}",
                pools=tuple(pools),
                region=region,
                zone=f"{region}-{'ab'[c % 2]}",
                labels={"env": rng.choice(["prod", "prod", "staging"]), "team": f"t{c % 5}"},
                taints=(Taint("dedicated", "NoSchedule", "research"),) if c % 17 == 0 else (),
                ready=rng.random() > 0.03,
            )
        )
    datasets = {
        f"default/ds{i}": Dataset(f"ds{i}", rng.choice([50, 500, 5000, 20000]), (rng.choice(REGIONS),))
        for i in range(12)
    }
    return FleetSnapshot(tuple(clusters), make_topology(), datasets)


def make_workloads(count: int, rng: random.Random) -> list[WorkloadRequest]:
    out = []
    for i in range(count):
        divisible = rng.random() < 0.3
        models = rng.choice([(), ("H100",), ("H100", "H200"), ("A100",), ("L4", "A10G"), ("L40S",)])
        out.append(
            WorkloadRequest(
                name=f"w{i}",
                replicas=rng.choice([1, 1, 2, 4]) if not divisible else rng.choice([4, 8, 16]),
                gpus_per_replica=rng.choice([1, 2, 4, 8]) if "L4" not in models else rng.choice([1, 2, 4]),
                models=models,
                preferred_models=models[:1] if len(models) > 1 else (),
                min_memory_gib=rng.choice([0, 0, 40]),
                mode="Divisible" if divisible else "Gang",
                max_clusters=rng.choice([None, 2, 4]) if divisible else None,
                capacity_policy=rng.choice(list(CapacityPolicy)),
                priority=rng.randint(0, 3),
                selector=LabelSelector.of({"env": "prod"}) if rng.random() < 0.3 else None,
                tolerations=(Toleration("dedicated", "Exists"),) if rng.random() < 0.1 else (),
                datasets=(f"default/ds{rng.randrange(12)}",) if rng.random() < 0.5 else (),
            )
        )
    return out


def run(size: int, decisions: int, seed: int = 7) -> dict[str, float]:
    rng = random.Random(seed)
    fleet = make_fleet(size, rng)
    workloads = make_workloads(decisions, rng)
    engine = Engine("default")
    t0 = time.perf_counter()
    session = engine.session(fleet)
    compile_s = time.perf_counter() - t0
    # Warm the per-snapshot caches (dataset transfer costs, selector masks) outside the clock
    # for a few workloads only, as a long-lived controller would have them warm.
    warm = engine.session(fleet)
    for w in workloads[:20]:
        warm.place(w)
    session = engine.session(fleet)
    latencies = []
    placed = 0
    start = time.perf_counter()
    cpu_start = time.thread_time()
    for w in workloads:
        t = time.perf_counter()
        d = session.place(w)
        latencies.append(time.perf_counter() - t)
        placed += d.placed
    wall = time.perf_counter() - start
    cpu = time.thread_time() - cpu_start
    lat = np.array(latencies)
    # One explanation, to show it stays available (not timed per decision).
    t = time.perf_counter()
    session.place(workloads[0]).to_dict(limit=20)
    explain_ms = (time.perf_counter() - t) * 1e3
    return {
        "clusters": size,
        "pools": size * 4,
        "decisions": decisions,
        "placed": placed,
        "compile_s": round(compile_s, 3),
        "decisions_per_s": round(decisions / wall, 1),
        "decisions_per_cpu_s": round(decisions / cpu, 1),
        "p50_ms": round(float(np.percentile(lat, 50)) * 1e3, 3),
        "p99_ms": round(float(np.percentile(lat, 99)) * 1e3, 3),
        "max_ms": round(float(lat.max()) * 1e3, 3),
        "explain_top20_ms": round(explain_ms, 2),
    }


def table(rows: list[dict[str, float]]) -> str:
    cols = list(rows[0])
    widths = [max(len(c), *(len(str(r[c])) for r in rows)) for c in cols]
    line = "| " + " | ".join(c.ljust(w) for c, w in zip(cols, widths, strict=False)) + " |"
    sep = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    body = ["| " + " | ".join(str(r[c]).rjust(w) for c, w in zip(cols, widths, strict=False)) + " |" for r in rows]
    return "\n".join([line, sep, *body])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--sizes", default="100,1000,10000")
    parser.add_argument("--decisions", type=int, default=0, help="per size; default 2000 (500 at 10,000)")
    parser.add_argument("--out", default="bench/results/placement")
    args = parser.parse_args()
    rows = []
    for size in [int(s) for s in args.sizes.split(",")]:
        n = args.decisions or (500 if size >= 10000 else 2000)
        rows.append(run(size, n))
        print(table(rows[-1:]), flush=True)
    text = table(rows)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    header = (
        "# Placement engine benchmark\n\n"
        f"Single process, one core; python {platform.python_version()}, numpy {np.__version__}, "
        f"{platform.machine()}; {time.strftime('%Y-%m-%d %H:%M')}.\n"
        "Command: `.venv/bin/python -m bench.placement.bench_placement`\n\n"
        "decisions_per_s = decisions / wall time of the batch; decisions_per_cpu_s = decisions / CPU\n"
        "time of this thread (the machine is shared, so wall time includes time other jobs took);\n"
        "p50/p99/max are wall time per decision;\n"
        "compile_s = turning the snapshot into arrays (once per snapshot);\n"
        "explain_top20_ms = building one decision's explanation (lazy, outside the hot path).\n\n"
    )
    out.with_suffix(".md").write_text(header + text + "\n")
    out.with_suffix(".json").write_text(json.dumps(rows, indent=2) + "\n")
    print()
    print(text)


if __name__ == "__main__":
    main()
