"""cost: the expected price of the capacity the workload would get, per GPU-hour.

Reserved capacity is already paid for, so using an idle reserved GPU costs nothing: its
effective price is 0 and it scores 100, ahead of any spot or on-demand offer. Otherwise
``raw = 100 × (1 − price / price_ceiling)``, clipped to [0, 100]; a pool with no reported
price scores 0 (an unknown price must not beat a known cheap one).
"""

from __future__ import annotations

import math

import numpy as np

from placement.fleet import RESERVED, FleetArrays, FleetState, FloatArray
from placement.plugins.base import BasePlugin, ExplainView, Options, Query
from placement.profiles import MAX_SCORE


def effective_price(a: FleetArrays) -> FloatArray:
    """USD per GPU-hour the engine charges each pool: 0 for reserved, NaN if unknown."""
    return np.where(a.pool_cap == RESERVED, 0.0, a.pool_price)


class Cost(BasePlugin):
    name = "cost"

    def _pool_scores(self, q: Query, a: FleetArrays) -> FloatArray:
        key = ("cost", q.profile.price_ceiling_per_gpu_hour)
        cached = a.cache.get(key)
        if cached is None:
            price = effective_price(a)
            raw = MAX_SCORE * np.clip(1.0 - price / q.profile.price_ceiling_per_gpu_hour, 0.0, 1.0)
            cached = np.where(np.isnan(raw), 0.0, raw)
            a.cache[key] = cached
        return cached  # type: ignore[return-value]

    def score(self, q: Query, state: FleetState, options: Options) -> FloatArray | None:
        if q.gpu_less:
            return np.full(len(options), MAX_SCORE)
        return self._pool_scores(q, state.arrays)[options.pool]

    def detail(self, q: Query, view: ExplainView, option: int) -> str:
        if q.gpu_less:
            return "no GPUs requested"
        a = view.arrays
        pool = int(view.options.pool[option])
        listed = float(a.pool_price[pool])
        if a.pool_cap[pool] == RESERVED:
            return "reserved and idle: already paid for, $0/GPU-h"
        if math.isnan(listed):
            return "no price reported: scored as most expensive"
        return f"${listed:.2f}/GPU-h vs ceiling ${q.profile.price_ceiling_per_gpu_hour:.2f}"
