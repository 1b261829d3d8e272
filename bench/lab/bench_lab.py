"""Lab timings and memory: `lab up` for 1 and 3 spokes, RSS per spoke and per component,
one etcd per spoke vs one shared etcd, and `lab down` time. Writes bench/lab/results.json.

Run: python bench/lab/bench_lab.py [--settle 20] [--hub | --only-hub]   (needs `make k8s-binaries`;
--only-hub writes bench/lab/results-hub.json)
Numbers, not assertions: docs/lab.md quotes them with the machine they came from.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import psutil

from fleetplane_lab import Lab, default_spokes, require_binaries
from fleetplane_lab.lab import hub_db_rss_bytes
from fleetplane_lab.process import ProcRecord

OUT = Path(__file__).with_name("results.json")


def pss(rec: ProcRecord) -> int:
    total = 0
    for p in rec.group_members():
        try:
            total += p.memory_full_info().pss
        except (psutil.Error, AttributeError):
            pass
    return total


def one_run(n: int, shared_etcd: bool, settle: float, with_hub: bool = False) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="fplab-bench-") as d:
        lab = Lab(d, spokes=default_spokes(n), with_hub=with_hub, shared_etcd=shared_etcd)
        t0 = time.monotonic()
        lab.up()
        up_s = time.monotonic() - t0
        try:
            # RSS right after startup includes one-off allocations (OpenAPI aggregation,
            # caches warming); after `settle` seconds it is what an idle spoke costs.
            time.sleep(settle)
            per_spoke = {name: s.rss_bytes() for name, s in lab.spokes.items()}
            per_component: dict[str, list[int]] = {}
            for s in lab.spokes.values():
                for p in s.processes:
                    per_component.setdefault(p.name.split("/", 1)[1], []).append(p.rss_bytes())
            shared = sum(p.rss_bytes() for p in lab.shared)
            # PSS splits pages shared between processes (the same Go binary's text in every
            # spoke) among them, so it sums to what the lab really costs the machine.
            pss_total = sum(pss(r) for s in lab.spokes.values() for r in s.processes) + sum(pss(r) for r in lab.shared)
            spoke_timings = {name: s.timings for name, s in lab.spokes.items()}
            hub_rss = 0
            if lab.hub and lab.hub.process:
                hub_rss = lab.hub.process.rss_bytes() + hub_db_rss_bytes(lab.hub.data_dir)
        finally:
            t1 = time.monotonic()
            rep = lab.down()
            down_s = time.monotonic() - t1
    mib = 2**20
    return {
        "spokes": n,
        "with_hub": with_hub,
        "rss_mib_hub_with_postgres": round(hub_rss / 2**20) if with_hub else None,
        "shared_etcd": shared_etcd,
        "up_seconds": round(up_s, 2),
        "down_seconds": round(down_s, 2),
        "down_needed_sigkill": rep.killed,
        "rss_mib_per_spoke": {k: round(v / mib) for k, v in per_spoke.items()},
        "rss_mib_per_spoke_mean": round(statistics.mean(per_spoke.values()) / mib),
        "rss_mib_shared_etcd": round(shared / mib) if shared_etcd else None,
        "rss_mib_total": round((sum(per_spoke.values()) + shared) / mib),
        "pss_mib_total": round(pss_total / mib),
        "pss_mib_per_spoke_mean": round(pss_total / mib / n),
        "rss_mib_per_component_mean": {k: round(statistics.mean(v) / mib) for k, v in per_component.items()},
        "spoke_timings_seconds": {k: {c: round(t, 2) for c, t in v.items()} for k, v in spoke_timings.items()},
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--settle", type=float, default=20.0, help="seconds to idle before reading RSS")
    ap.add_argument("--spokes", type=int, nargs="+", default=[1, 3])
    ap.add_argument("--hub", action="store_true", help="also time `lab up` with the hub (per-spoke etcd)")
    ap.add_argument("--only-hub", action="store_true", help="only the runs with the hub")
    ns = ap.parse_args()
    require_binaries()
    runs = []
    plan = [] if ns.only_hub else [(n, shared, False) for shared in (False, True) for n in ns.spokes]
    if ns.hub or ns.only_hub:
        plan += [(n, False, True) for n in ns.spokes]
    for n, shared, hub in plan:
        r = one_run(n, shared, ns.settle, with_hub=hub)
        print(json.dumps(r))
        runs.append(r)
    doc = {
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {
            "cpus": os.cpu_count(),
            "mem_gib": round(psutil.virtual_memory().total / 2**30),
            "python": platform.python_version(),
            "kernel": platform.release(),
        },
        "settle_seconds": ns.settle,
        "runs": runs,
    }
    out = OUT.with_name("results-hub.json") if ns.only_hub else OUT
    out.write_text(json.dumps(doc, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
