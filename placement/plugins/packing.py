"""packing: prefer the cluster that will be fullest after placing (most-allocated).

Filling busy clusters first keeps whole clusters (and whole nodes) free for the big gangs
that need them. ``raw = 100 × used_after / total`` over all GPUs of the cluster.
"""

from __future__ import annotations

import numpy as np

from placement.fleet import FleetState, FloatArray
from placement.plugins.base import BasePlugin, ExplainView, Options, Query
from placement.profiles import MAX_SCORE


def used_fraction_after(q: Query, state: FleetState, options: Options) -> FloatArray:
    a = state.arrays
    total = a.cluster_gpus[options.cluster]
    used = total - state.cluster_free[options.cluster] + options.replicas * q.k
    return np.divide(used, total, out=np.ones_like(total), where=total > 0).clip(0.0, 1.0)


class Packing(BasePlugin):
    name = "packing"

    def score(self, q: Query, state: FleetState, options: Options) -> FloatArray | None:
        return MAX_SCORE * used_fraction_after(q, state, options)

    def detail(self, q: Query, view: ExplainView, option: int) -> str:
        return "cluster utilisation after placing, 0-100"
