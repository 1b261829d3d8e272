"""pool-taints: removes pools whose nodes carry a NoSchedule/NoExecute taint the workload does
not tolerate (agents report the taints common to a pool's nodes, e.g. a dedicated or spot
pool's); GPU work tolerates the `nvidia.com/gpu:NoSchedule` kind its pods get automatically. Cluster-wide taints are the `taints` plugin's; this one works per pool, so a cluster
with one tainted pool and one open pool still offers the open one."""

from __future__ import annotations

import numpy as np

from fleetplane_types.gpus import GPU_RESOURCES
from placement.fleet import BoolArray, FleetState
from placement.model import Taint
from placement.plugins.base import BasePlugin, ExplainView, Query, Stage


def _untolerated(q: Query, t: Taint) -> bool:
    """A hard taint the workload does not tolerate. GPU work tolerates `<gpu resource>:NoSchedule`
    as its pods will (ExtendedResourceToleration; fleetplane_types.gpus.GPU_RESOURCES)."""
    if t.effect == "PreferNoSchedule":
        return False
    if not q.gpu_less and t.key in GPU_RESOURCES and t.effect == "NoSchedule":
        return False
    return not any(tol.tolerates(t) for tol in q.workload.tolerations)


class PoolTaints(BasePlugin):
    name = "pool-taints"
    stage: Stage | None = "pool"

    def filter(self, q: Query, state: FleetState) -> BoolArray | None:
        a = state.arrays
        if not a.pool_taints:
            return None
        key = ("pool-taints", q.workload.tolerations, q.gpu_less)
        mask = a.cache.get(key)
        if mask is None:
            hard = np.array([_untolerated(q, t) for t in a.pool_taints], dtype=np.bool_)
            mask = ~a.pool_taint_matrix[:, hard].any(axis=1)
            a.cache[key] = mask
        return mask  # type: ignore[return-value]

    def why(self, q: Query, view: ExplainView, index: int) -> tuple[str, str]:
        # ``index`` is a cluster: the engine reports the pool stage per cluster.
        cluster = view.arrays.snapshot.clusters[index]
        bad = sorted({f"{p.name}: {t}" for p in cluster.pools for t in p.taints if _untolerated(q, t)})
        return ("untolerated pool taint", f"untolerated pool taint {', '.join(bad)}")
