"""Admission + placement throughput: pending workloads decided per second through queues.

The fleet and workloads of bench_placement (4 GPU pools per cluster, mixed models and
capacity types, partly used; gangs and divisible work), plus Q queues in cohorts of 10, each
with quota on 3-6 flavors (model × capacity type) of the fleet, nominal quotas adding up to
about the fleet's GPUs, random fair-share weights and strategies, preemption on. Pass 1
decides every pending workload on an empty quota book; pass 2 runs on the fleet as pass 1
left it, with pass 1's admissions holding quota and a fresh backlog of higher priorities (so
borrowing, reclaim and preemption are exercised). One process, one core.

Run:  .venv/bin/python -m bench.placement.bench_queues [--clusters 1000 --queues 100 --pending 10000]
Writes bench/results/queues.md and .json and prints the table.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse
import json
import platform
import random
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from bench.placement.bench_placement import MODELS, make_fleet, make_workloads, table
from placement import Engine, FleetSnapshot
from placement.queueing import (
    Admission,
    AdmissionResult,
    AdmittedWorkload,
    Flavor,
    FlavorQuota,
    PreemptionPolicy,
    Queue,
    QueuedWorkload,
)


def make_queues(n: int, fleet: FleetSnapshot, rng: random.Random) -> list[Queue]:
    capacity: dict[Flavor, int] = {}
    for c in fleet.clusters:
        for p in c.pools:
            f = Flavor.of(p.model, p.capacity_type)
            capacity[f] = capacity.get(f, 0) + p.total
    flavors = sorted(capacity, key=str)
    queues = []
    for i in range(n):
        mine = rng.sample(flavors, rng.randint(3, min(6, len(flavors))))
        queues.append(
            Queue(
                f"q{i:03d}",
                tuple(FlavorQuota(f, max(1, capacity[f] // (n // 2)), rng.choice([None, 64]), None) for f in mine),
                cohort=f"cohort-{i // 10}",
                weight=rng.choice([1.0, 1.0, 2.0, 4.0]),
                strategy=rng.choice(["BestEffortFIFO", "BestEffortFIFO", "StrictFIFO"]),
                preemption=PreemptionPolicy("LowerPriority", rng.choice(["Any", "LowerPriority", "Never"])),
            )
        )
    return queues


def make_pending(count: int, queues: list[Queue], rng: random.Random, prefix: str, lift: int) -> list[QueuedWorkload]:
    """Each workload goes to a random queue with a flavor it accepts (teams submit where they
    have quota for what they need), else to a random one (it is then inadmissible)."""
    out = []
    for i, w in enumerate(make_workloads(count, rng)):
        w = replace(w, name=f"{prefix}{i}", priority=w.priority + lift)
        fitting = [q for q in rng.sample(queues, min(10, len(queues))) if any(f.flavor.accepts(w) for f in q.flavors)]
        out.append(QueuedWorkload(w, (fitting[0] if fitting else rng.choice(queues)).name, w.priority, i))
    return out


def still_running(result: AdmissionResult) -> list[AdmittedWorkload]:
    return [
        AdmittedWorkload(
            d.key,
            d.queue or "",
            d.flavor.flavor if d.flavor else None,
            d.workload.gpus,
            d.workload.priority,
            i,
            d.assignments,
        )
        for i, d in enumerate(result.admitted)
    ]


def fleet_after(fleet: FleetSnapshot, result: AdmissionResult) -> FleetSnapshot:
    free = iter(int(f) for f in result.session.state.node_free)
    clusters = tuple(
        replace(c, pools=tuple(replace(p, nodes=tuple(replace(n, free=next(free)) for n in p.nodes)) for p in c.pools))
        for c in fleet.clusters
    )
    return replace(fleet, clusters=clusters)


def timed(
    admission: Admission, fleet: FleetSnapshot, pending: list[QueuedWorkload], admitted: list[AdmittedWorkload]
) -> tuple[AdmissionResult, float, float]:
    start, cpu = time.perf_counter(), time.thread_time()
    result = admission.decide(fleet, pending, admitted)
    return result, time.perf_counter() - start, time.thread_time() - cpu


def run(clusters: int, queues: int, pending: int, seed: int = 7) -> list[dict[str, object]]:
    rng = random.Random(seed)
    fleet = make_fleet(clusters, rng)
    qs = make_queues(queues, fleet, rng)
    admission = Admission(qs)
    admission.decide(fleet, make_pending(50, qs, random.Random(1), "warm", 0))  # warm snapshot caches
    rows = []
    batch = make_pending(pending, qs, rng, "a", 0)
    first, wall, cpu = timed(admission, fleet, batch, [])
    held = still_running(first)
    second_batch = make_pending(max(1, pending // 10), qs, rng, "b", 2)
    second, wall2, cpu2 = timed(admission, fleet_after(fleet, first), second_batch, held)
    for name, result, w, c, n_held in (
        ("1: empty book", first, wall, cpu, 0),
        ("2: full, higher priorities", second, wall2, cpu2, len(held)),
    ):
        n = len(result.decisions)
        rows.append(
            {
                "pass": name,
                "clusters": clusters,
                "queues": queues,
                "holding": n_held,
                "pending": n,
                "admitted": len(result.admitted),
                "evicted": len(result.evictions),
                "wall_s": round(w, 3),
                "decisions_per_s": round(n / w, 1),
                "decisions_per_cpu_s": round(n / c, 1),
            }
        )
    # Baseline: the engine alone on the same workloads (no queues, no quota): what admission adds.
    session = Engine("default").session(fleet)
    for q in batch[:50]:
        session.place(q.request)
    session = Engine("default").session(fleet)
    start, cpu0 = time.perf_counter(), time.thread_time()
    placed = sum(session.place(q.request).placed for q in batch)
    w, c = time.perf_counter() - start, time.thread_time() - cpu0
    rows.append(
        {
            "pass": "engine alone, same batch",
            "clusters": clusters,
            "queues": 0,
            "holding": 0,
            "pending": len(batch),
            "admitted": placed,
            "evicted": 0,
            "wall_s": round(w, 3),
            "decisions_per_s": round(len(batch) / w, 1),
            "decisions_per_cpu_s": round(len(batch) / c, 1),
        }
    )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--clusters", type=int, default=1000)
    parser.add_argument("--queues", type=int, default=100)
    parser.add_argument("--pending", type=int, default=10000)
    parser.add_argument("--out", default="bench/results/queues")
    args = parser.parse_args()
    rows = run(args.clusters, args.queues, args.pending)
    text = table(rows)  # type: ignore[arg-type]
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    header = (
        "# Admission benchmark (queues, quotas, fair share, preemption)\n\n"
        f"Single process, one core; python {platform.python_version()}, numpy {np.__version__}, "
        f"{platform.machine()}; {time.strftime('%Y-%m-%d %H:%M')}; {len(MODELS)} GPU models.\n"
        f"Command: `.venv/bin/python -m bench.placement.bench_queues --clusters {args.clusters} "
        f"--queues {args.queues} --pending {args.pending}`\n\n"
        "decisions_per_s = pending workloads decided (admitted, waiting or inadmissible, with the\n"
        "placement of each admitted one) / wall time of `Admission.decide`; decisions_per_cpu_s uses\n"
        "this thread's CPU time (the machine is shared). Target (issue 11): >= 2,000/s on one core\n"
        "at 100 queues, 10,000 pending, 1,000 clusters. The last row places the same pass-1 batch\n"
        "with the engine alone (no queues): the difference is what admission costs.\n\n"
    )
    out.with_suffix(".md").write_text(header + text + "\n")
    out.with_suffix(".json").write_text(json.dumps(rows, indent=2) + "\n")
    print(text)


if __name__ == "__main__":
    main()
