"""Lab timings and memory: `lab up` for 1 and 3 spokes, RSS per spoke and per component,
one etcd per spoke vs one shared etcd, and `lab down` time. Writes bench/lab/results.json.

Run: python bench/lab/bench_lab.py [--settle 20]   (needs `make k8s-binaries`)
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

from hub.lab import Lab, default_spokes, require_binaries

OUT = Path(__file__).with_name("results.json")


def one_run(n: int, shared_etcd: bool, settle: float) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="fplab-bench-") as d:
        lab = Lab(d, spokes=default_spokes(n), with_hub=False, shared_etcd=shared_etcd)
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
            spoke_timings = {name: s.timings for name, s in lab.spokes.items()}
        finally:
            t1 = time.monotonic()
            rep = lab.down()
            down_s = time.monotonic() - t1
    mib = 2**20
    return {
        "spokes": n,
        "shared_etcd": shared_etcd,
        "up_seconds": round(up_s, 2),
        "down_seconds": round(down_s, 2),
        "down_needed_sigkill": rep.killed,
        "rss_mib_per_spoke": {k: round(v / mib) for k, v in per_spoke.items()},
        "rss_mib_per_spoke_mean": round(statistics.mean(per_spoke.values()) / mib),
        "rss_mib_shared_etcd": round(shared / mib) if shared_etcd else None,
        "rss_mib_total": round((sum(per_spoke.values()) + shared) / mib),
        "rss_mib_per_component_mean": {k: round(statistics.mean(v) / mib) for k, v in per_component.items()},
        "spoke_timings_seconds": {k: {c: round(t, 2) for c, t in v.items()} for k, v in spoke_timings.items()},
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--settle", type=float, default=20.0, help="seconds to idle before reading RSS")
    ap.add_argument("--spokes", type=int, nargs="+", default=[1, 3])
    ns = ap.parse_args()
    require_binaries()
    runs = []
    for shared in (False, True):
        for n in ns.spokes:
            r = one_run(n, shared, ns.settle)
            print(json.dumps(r))
            runs.append(r)
    doc = {
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {"cpus": os.cpu_count(), "mem_gib": round(psutil.virtual_memory().total / 2**30),
                    "python": platform.python_version(), "kernel": platform.release()},
        "settle_seconds": ns.settle,
        "runs": runs,
    }
    OUT.write_text(json.dumps(doc, indent=2) + "\n")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
