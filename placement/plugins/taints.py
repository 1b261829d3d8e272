"""taints: NoSchedule/NoExecute taints the workload does not tolerate remove the cluster;
an untolerated PreferNoSchedule taint only lowers the score (0 instead of 100)."""

from __future__ import annotations

import numpy as np

from placement.fleet import BoolArray, FleetState, FloatArray
from placement.plugins.base import BasePlugin, ExplainView, Options, Query, Stage
from placement.profiles import MAX_SCORE


class Taints(BasePlugin):
    name = "taints"
    stage: Stage | None = "cluster"

    def _untolerated(self, q: Query, state: FleetState) -> tuple[BoolArray, BoolArray]:
        """Per taint of the fleet: (untolerated and hard, untolerated and soft)."""
        a = state.arrays
        key = ("taints", q.workload.tolerations)
        cached = a.cache.get(key)
        if cached is None:
            hard = np.zeros(len(a.taints), dtype=np.bool_)
            soft = np.zeros(len(a.taints), dtype=np.bool_)
            for i, t in enumerate(a.taints):
                if any(tol.tolerates(t) for tol in q.workload.tolerations):
                    continue
                if t.effect == "PreferNoSchedule":
                    soft[i] = True
                else:
                    hard[i] = True
            cached = (hard, soft)
            a.cache[key] = cached
        return cached  # type: ignore[return-value]

    def filter(self, q: Query, state: FleetState) -> BoolArray | None:
        a = state.arrays
        if not a.taints:
            return None
        hard, _ = self._untolerated(q, state)
        key = ("taints-mask", q.workload.tolerations)
        mask = a.cache.get(key)
        if mask is None:
            mask = ~a.taint_matrix[:, hard].any(axis=1)
            a.cache[key] = mask
        return mask  # type: ignore[return-value]

    def why(self, q: Query, view: ExplainView, index: int) -> tuple[str, str]:
        bad = [
            str(t)
            for t in view.arrays.snapshot.clusters[index].taints
            if t.effect != "PreferNoSchedule" and not any(tol.tolerates(t) for tol in q.workload.tolerations)
        ]
        return ("untolerated taint", f"untolerated taint {', '.join(bad)}")

    def score(self, q: Query, state: FleetState, options: Options) -> FloatArray | None:
        a = state.arrays
        if not a.taints:
            return np.full(len(options), MAX_SCORE)
        _, soft = self._untolerated(q, state)
        if not soft.any():
            return np.full(len(options), MAX_SCORE)
        has_soft: BoolArray = np.asarray(a.taint_matrix[:, soft].any(axis=1))
        return np.where(has_soft[options.cluster], 0.0, MAX_SCORE)

    def detail(self, q: Query, view: ExplainView, option: int) -> str:
        c = view.arrays.snapshot.clusters[int(view.options.cluster[option])]
        soft = [
            str(t)
            for t in c.taints
            if t.effect == "PreferNoSchedule" and not any(tol.tolerates(t) for tol in q.workload.tolerations)
        ]
        return f"untolerated {', '.join(soft)}" if soft else "no untolerated PreferNoSchedule taint"
