"""spreading: prefer the cluster with the most GPUs left free after placing (least-allocated).

The opposite of packing, for work that wants headroom and blast-radius isolation (inference
replicas). ``raw = 100 × (1 − used_after / total)``.
"""

from __future__ import annotations

from placement.fleet import FleetState, FloatArray
from placement.plugins.base import BasePlugin, ExplainView, Options, Query
from placement.plugins.packing import used_fraction_after
from placement.profiles import MAX_SCORE


class Spreading(BasePlugin):
    name = "spreading"

    def score(self, q: Query, state: FleetState, options: Options) -> FloatArray | None:
        return MAX_SCORE * (1.0 - used_fraction_after(q, state, options))

    def detail(self, q: Query, view: ExplainView, option: int) -> str:
        return "share of the cluster's GPUs still free after placing, 0-100"
