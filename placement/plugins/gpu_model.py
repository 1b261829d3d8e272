"""gpu-model: removes pools of a model the workload does not allow or with too little memory
per GPU; scores preferred models 100 and other allowed ones 0 (all 100 with no preference)."""

from __future__ import annotations

import numpy as np

from placement.catalogue import split_model
from placement.fleet import BoolArray, FleetState, FloatArray
from placement.plugins.base import BasePlugin, ExplainView, Options, Query, Stage, lookup
from placement.profiles import MAX_SCORE


class GpuModel(BasePlugin):
    name = "gpu-model"
    stage: Stage | None = "pool"

    def filter(self, q: Query, state: FleetState) -> BoolArray | None:
        a = state.arrays
        min_memory = q.workload.min_memory_gib
        if q.model_ids is None and min_memory <= 0:
            return None
        # Static per (models, memory): cached, so the decision can keep a reference for free.
        key = ("gpu-model", tuple(q.workload.models), min_memory)
        mask = a.cache.get(key)
        if mask is None:
            if q.model_ids is None:
                mask = a.pool_memory >= min_memory
            else:
                # Memory needed per model id: +inf for models not asked for; a size suffix
                # ("A100-80GB") asks for at least that much; the loosest request of a family wins.
                need = np.full(len(a.model_names), np.inf)
                for m in q.workload.models:
                    family, size = split_model(m)
                    mid = a.model_ids.get(family)
                    if mid is not None:
                        need[mid] = min(need[mid], max(min_memory, float(size or 0)))
                mask = a.pool_memory >= need[a.pool_model]
            a.cache[key] = mask
        return mask  # type: ignore[return-value]

    def why(self, q: Query, view: ExplainView, index: int) -> tuple[str, str]:
        # ``index`` is a cluster here: the engine reports the pool stage per cluster.
        a = view.arrays
        cluster = a.snapshot.clusters[index]
        if not cluster.pools:
            return ("no GPUs", "cluster has no GPU pools")
        start = int(np.searchsorted(a.pool_cluster, index))
        pools = range(start, start + len(cluster.pools))
        have = ", ".join(f"{a.pool_names[p]}: {a.model_names[a.pool_model[p]]} {a.pool_memory[p]:g} GiB" for p in pools)
        want = "/".join(q.workload.models) if q.workload.models else "GPUs"
        mem = q.workload.min_memory_gib
        if mem > 0:
            short = f"no {want} with >= {mem:g} GiB"
        else:
            short = f"no {want}"
        return (short, f"{short} (cluster has {have})")

    def score(self, q: Query, state: FleetState, options: Options) -> FloatArray | None:
        if q.gpu_less or q.preferred_model_ids.size == 0:
            return np.full(len(options), MAX_SCORE)
        a = state.arrays
        preferred = lookup(len(a.model_names), q.preferred_model_ids)[a.pool_model[options.pool]]
        return np.where(preferred, MAX_SCORE, 0.0)

    def detail(self, q: Query, view: ExplainView, option: int) -> str:
        if q.gpu_less:
            return "no GPUs requested"
        model = view.arrays.model_names[int(view.arrays.pool_model[view.options.pool[option]])]
        if not q.workload.preferred_models:
            return f"{model}; no preferred model"
        pref = "/".join(q.workload.preferred_models)
        return (
            f"{model} is preferred"
            if q.preferred_model_ids.size and model in {view.arrays.model_names[int(i)] for i in q.preferred_model_ids}
            else f"{model} is not preferred ({pref})"
        )
