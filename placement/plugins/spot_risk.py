"""spot-risk: the chance a run on spot survives without an interruption.

Work that did not ask for spot (spot-allowed, not spot-preferred) loses progress when a
spot node is reclaimed, and a gang loses all of it when any one of its nodes is. With an
interruption chance ``p`` per replica (``Profile.spot_interruption_rate``) a spot option
taking r replicas scores ``100 × (1 − p)^r``; non-spot options and spot-preferred work score
100. On-demand-only work never reaches this plugin on spot: capacity-type removed it.
"""

from __future__ import annotations

import numpy as np

from placement.fleet import SPOT, FleetState, FloatArray
from placement.plugins.base import BasePlugin, ExplainView, Options, Query
from placement.profiles import MAX_SCORE


class SpotRisk(BasePlugin):
    name = "spot-risk"

    def score(self, q: Query, state: FleetState, options: Options) -> FloatArray | None:
        if q.gpu_less or q.workload.tolerates_interruption:
            return np.full(len(options), MAX_SCORE)
        on_spot = state.arrays.pool_cap[options.pool] == SPOT
        survive = MAX_SCORE * (1.0 - q.profile.spot_interruption_rate) ** options.replicas.astype(np.float64)
        return np.where(on_spot, survive, MAX_SCORE)

    def detail(self, q: Query, view: ExplainView, option: int) -> str:
        if q.gpu_less:
            return "no GPUs requested"
        if view.arrays.pool_cap[view.options.pool[option]] != SPOT:
            return "not spot"
        if q.workload.tolerates_interruption:
            return "spot, and the workload prefers spot"
        r = int(view.options.replicas[option])
        p = q.profile.spot_interruption_rate
        return f"spot: {r} replica(s) survive with (1 - {p:g})^{r}"
