"""gpu-fit: removes pools that cannot host the replicas right now.

A replica needing k GPUs must fit on ONE node with k free GPUs (fragmented free GPUs do not
count), and a gang needs room for all its replicas in one pool of one cluster at once. A
divisible workload needs room for at least one replica. Capacity is what the batch sees:
reported free GPUs minus in-flight reservations minus what earlier decisions booked.
"""

from __future__ import annotations

import numpy as np

from placement.fleet import BoolArray, FleetState
from placement.plugins.base import BasePlugin, ExplainView, Query, Stage


class GpuFit(BasePlugin):
    name = "gpu-fit"
    stage: Stage | None = "pool"

    def filter(self, q: Query, state: FleetState) -> BoolArray | None:
        if q.gpu_less:
            return None
        return state.capacity_for(q.k) >= q.need

    def why(self, q: Query, view: ExplainView, index: int) -> tuple[str, str]:
        # Reported per cluster: the best pool among those that reached this filter.
        a = view.arrays
        lo = int(np.searchsorted(view.fit_pools, int(np.searchsorted(a.pool_cluster, index))))
        hi = int(np.searchsorted(view.fit_pools, int(np.searchsorted(a.pool_cluster, index, side="right"))))
        pools = view.fit_pools[lo:hi]
        cap = view.fit_capacity[lo:hi]
        free = view.fit_free[lo:hi]
        w = q.workload
        want = "/".join(w.models) if w.models else "GPUs"
        best = int(cap.max()) if len(cap) else 0
        parts = "; ".join(
            f"{a.pool_names[int(p)]}: {int(f)} free, room for {int(c)}"
            for p, c, f in zip(pools, cap, free, strict=False)
        )
        if best == 0:
            short = f"no node with {q.k} free {want}"
            return (short, f"{short} ({parts})" if parts else short)
        short = f"no room for all {w.replicas} replicas of {q.k} {want}"
        return (short, f"gang of {w.replicas} × {q.k} GPUs does not fit in one pool ({parts})")
