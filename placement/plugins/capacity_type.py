"""capacity-type: removes pools of a capacity type the workload does not allow (spot for
on-demand-only work); scores preferred capacity types 100 and others 0 (all 100 with no
preference)."""

from __future__ import annotations

import numpy as np

from placement.fleet import BoolArray, FleetState, FloatArray
from placement.model import CAPACITY_TYPES
from placement.plugins.base import BasePlugin, ExplainView, Options, Query, Stage, lookup
from placement.profiles import MAX_SCORE


class CapacityTypePlugin(BasePlugin):
    name = "capacity-type"
    stage: Stage | None = "pool"

    def filter(self, q: Query, state: FleetState) -> BoolArray | None:
        if len(q.allowed_caps) == len(CAPACITY_TYPES):
            return None
        a = state.arrays
        key = ("capacity-type", tuple(q.allowed_caps.tolist()))
        mask = a.cache.get(key)
        if mask is None:
            mask = lookup(len(CAPACITY_TYPES), q.allowed_caps)[a.pool_cap]
            a.cache[key] = mask
        return mask  # type: ignore[return-value]

    def why(self, q: Query, view: ExplainView, index: int) -> tuple[str, str]:
        # Reported per cluster: the pools that had the right model only offer disallowed types.
        a = view.arrays
        start = int(np.searchsorted(a.pool_cluster, index))
        n = len(a.snapshot.clusters[index].pools)
        offered = sorted(
            {CAPACITY_TYPES[int(a.pool_cap[p])] for p in range(start, start + n)} - set(q.workload.allowed)
        )
        what = "/".join(offered) or "capacity type"
        return (f"{what} not allowed", f"{what} not allowed (allowed: {', '.join(sorted(q.workload.allowed))})")

    def score(self, q: Query, state: FleetState, options: Options) -> FloatArray | None:
        if q.gpu_less or q.preferred_caps.size == 0:
            return np.full(len(options), MAX_SCORE)
        preferred = lookup(len(CAPACITY_TYPES), q.preferred_caps)[state.arrays.pool_cap[options.pool]]
        return np.where(preferred, MAX_SCORE, 0.0)

    def detail(self, q: Query, view: ExplainView, option: int) -> str:
        if q.gpu_less:
            return "no GPUs requested"
        cap = CAPACITY_TYPES[int(view.arrays.pool_cap[view.options.pool[option]])]
        if not q.workload.preferred:
            return f"{cap}; no preference"
        return f"{cap} is {'' if cap in q.workload.preferred else 'not '}preferred"
