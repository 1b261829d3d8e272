"""Decisions and their explanations.

A :class:`Decision` says whether a workload was placed and where; its explanation (which
filter removed each cluster and why, or each plugin's raw score, weight and contribution)
is built lazily from compact arrays the engine recorded, so deciding stays fast and
explaining costs nothing unless someone asks. :meth:`Decision.to_dict` is the JSON shape
documented in docs/placement.md.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np
import numpy.typing as npt

from placement.fleet import BoolArray, FloatArray, IntArray
from placement.model import CAPACITY_TYPES, Reservation, WorkloadRequest
from placement.plugins.base import ExplainView, Plugin, Query
from placement.profiles import MAX_SCORE


@dataclass(frozen=True)
class ClusterAssignment:
    """Replicas of one workload on one cluster, with the pool and nodes they were booked on."""

    cluster: str
    replicas: int
    capacity_type: str | None
    pool: str | None
    gpu_model: str | None
    gpus_per_replica: int
    price_per_gpu_hour: float | None
    nodes: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "cluster": self.cluster,
            "replicas": self.replicas,
            "capacityType": self.capacity_type,
            "pool": self.pool,
            "gpuModel": self.gpu_model,
            "gpusPerReplica": self.gpus_per_replica,
            "pricePerGpuHour": self.price_per_gpu_hour,
            "nodes": list(self.nodes),
        }


@dataclass(eq=False)
class Trace:
    """What the engine recorded while deciding, for the lazy explanation."""

    query: Query
    cluster_filters: list[Plugin]
    pool_filters: list[Plugin]
    scorers: list[tuple[Plugin, float]]
    # One mask per filter that ran. Static masks are shared with the snapshot's cache, so
    # keeping them costs nothing; only gpu-fit's is a fresh array per decision.
    cluster_masks: list[BoolArray]
    pool_masks: list[BoolArray] | None  # None for a workload that needs no GPUs
    view: ExplainView
    scores: list[FloatArray]
    total: FloatArray
    chosen: list[int]  # option indices placed
    shortfall: str | None = None  # why feasible clusters were still not enough (Divisible)


@dataclass(eq=False)
class Decision:
    """The outcome for one workload: placed (on ``assignments``) or pending (see ``reason``)."""

    workload: WorkloadRequest
    profile: str
    placed: bool
    assignments: tuple[ClusterAssignment, ...]
    trace: Trace = field(repr=False)

    # ------------------------------------------------------------ summaries

    @property
    def n_clusters(self) -> int:
        return self.trace.view.arrays.n_clusters

    @cached_property
    def _removed(self) -> dict[int, tuple[str, str, str]]:
        """Cluster index → (filter name, short reason, detail) for every removed cluster."""
        t = self.trace
        a = t.view.arrays
        q = t.query
        out: dict[int, tuple[str, str, str]] = {}
        ccode = first_failed(t.cluster_masks, a.n_clusters)
        for c in np.flatnonzero(ccode):
            plugin = t.cluster_filters[int(ccode[c]) - 1]
            short, detail = plugin.why(q, t.view, int(c))
            out[int(c)] = (plugin.name, short, detail)
        if t.pool_masks is None:
            return out
        # Per pool, the first pool filter that failed; only read for clusters that passed the
        # cluster filters (the others are explained by their cluster filter).
        pcode = first_failed(t.pool_masks, a.n_pools)
        feasible = np.zeros(a.n_clusters, dtype=np.bool_)
        feasible[a.pool_cluster[pcode == 0]] = True
        furthest = np.zeros(a.n_clusters, dtype=np.int64)
        np.maximum.at(furthest, a.pool_cluster, pcode.astype(np.int64))
        has_pools = np.bincount(a.pool_cluster, minlength=a.n_clusters) > 0
        for c in np.flatnonzero((ccode == 0) & ~feasible):
            ci = int(c)
            if not has_pools[ci]:
                out[ci] = ("gpu-fit", "no GPUs", "cluster reports no GPU pools")
                continue
            plugin = t.pool_filters[int(furthest[ci]) - 1]
            short, detail = plugin.why(q, t.view, ci)
            out[ci] = (plugin.name, short, detail)
        return out

    @cached_property
    def _n_removed(self) -> int:
        """len(self._removed), counted on the masks without asking every plugin why (the
        explanation of a placed workload at 1,000 clusters needs the count, not 900 reasons)."""
        if "_removed" in self.__dict__:
            return len(self._removed)
        t = self.trace
        a = t.view.arrays
        ccode = first_failed(t.cluster_masks, a.n_clusters)
        if t.pool_masks is None:
            return int(np.count_nonzero(ccode))
        pcode = first_failed(t.pool_masks, a.n_pools)
        feasible = np.zeros(a.n_clusters, dtype=np.bool_)
        feasible[a.pool_cluster[pcode == 0]] = True
        return int(np.count_nonzero(ccode) + np.count_nonzero((ccode == 0) & ~feasible))

    @cached_property
    def reason(self) -> str:
        """One line: where it went, or why not ("0/12 clusters: 7 no node with 8 free H100, …")."""
        if self.placed:
            parts = [
                f"{x.cluster} ({x.replicas}× {x.capacity_type or ''} {x.gpu_model or ''})".replace("  ", " ").replace(
                    " )", ")"
                )
                for x in self.assignments
            ]
            return "placed on " + ", ".join(parts)
        removed = self._removed
        counts = Counter(short for _, short, _ in removed.values())
        feasible = self.n_clusters - len(removed)
        items = [f"{n} {short}" for short, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))]
        text = f"0/{self.n_clusters} clusters"
        if self.trace.shortfall:
            items.append(f"{feasible} feasible but {self.trace.shortfall}")
        if not items:
            return text + ": no clusters in the fleet"
        return text + ": " + ", ".join(items)

    # ------------------------------------------------------------ explanation

    def ranked_options(self, limit: int | None = None) -> list[int]:
        """Each feasible cluster's best option (or the one placed), best cluster first; the
        first `limit` of them. Vectorised: at 1,000 clusters a placed decision has thousands
        of options, and a Python walk over them was most of building its stored explanation."""
        t = self.trace
        opts = t.view.options
        if len(opts) == 0:
            return []
        rank = t.view.arrays.name_rank[opts.cluster]
        order = np.lexsort((opts.pool, rank, -t.total))
        _, first = np.unique(opts.cluster[order], return_index=True)  # each cluster's best, in any order
        best = order[np.sort(first)]  # ... in ranked order
        if limit is not None:
            best = best[:limit]
        chosen_clusters = {int(opts.cluster[i]): i for i in t.chosen}
        return [int(chosen_clusters.get(int(opts.cluster[i]), i)) for i in best]

    def cluster_explanations(self, limit: int | None = None) -> list[dict[str, Any]]:
        t = self.trace
        a = t.view.arrays
        opts = t.view.options
        rows: list[dict[str, Any]] = []
        for rank, i in enumerate(self.ranked_options(limit), start=1):
            c = int(opts.cluster[i])
            p = int(opts.pool[i])
            plugins = []
            for (plugin, weight), raw in zip(t.scorers, t.scores, strict=False):
                s = float(raw[i])
                plugins.append(
                    {
                        "name": plugin.name,
                        "score": round(s, 3),
                        "weight": weight,
                        "contribution": round(weight * s, 3),
                        "detail": plugin.detail(t.query, t.view, i),
                    }
                )
            rows.append(
                {
                    "name": a.cluster_names[c],
                    "feasible": True,
                    "rank": rank,
                    "score": round(float(t.total[i]), 3),
                    "pool": a.pool_names[p] if p >= 0 else None,
                    "gpuModel": a.model_names[int(a.pool_model[p])] if p >= 0 else None,
                    "capacityType": CAPACITY_TYPES[int(a.pool_cap[p])] if p >= 0 else None,
                    "replicasFit": int(opts.replicas[i]),
                    "plugins": plugins,
                }
            )
        removed = self._removed.items() if limit is None or len(rows) < limit else ()  # why() is costly
        for ci, (name, short, detail) in sorted(removed, key=lambda kv: a.cluster_names[kv[0]]):
            if limit is not None and len(rows) >= limit:
                break
            rows.append(
                {"name": a.cluster_names[ci], "feasible": False, "filter": name, "reason": short, "detail": detail}
            )
        return rows if limit is None else rows[:limit]

    def to_dict(self, limit: int | None = None) -> dict[str, Any]:
        """The documented JSON explanation; ``limit`` caps the per-cluster list (best first)."""
        w = self.workload
        return {
            "workload": w.key,
            "placed": self.placed,
            "phase": "Placed" if self.placed else "Pending",
            "reason": self.reason,
            "profile": self.profile,
            "scoreRange": [0.0, MAX_SCORE],
            "request": {
                "replicas": w.replicas,
                "gpusPerReplica": w.gpus_per_replica,
                "models": list(w.models),
                "preferredModels": list(w.preferred_models),
                "minMemoryGiB": w.min_memory_gib,
                "placementMode": w.mode,
                "maxClusters": w.max_clusters,
                "capacityPolicy": w.capacity_policy.value,
                "allowedCapacityTypes": sorted(w.allowed),
                "priority": w.priority,
                "datasets": list(w.datasets),
            },
            "placements": [x.to_dict() for x in self.assignments],
            "clustersTotal": self.n_clusters,
            "clustersFeasible": self.n_clusters - self._n_removed,
            "clusters": self.cluster_explanations(limit),
        }

    def to_placement_record(self, explain_limit: int | None = None) -> dict[str, Any]:
        """The ``status.placement`` of the Workload wire type (PlacementRecord), minus epoch/time.

        ``explain_limit`` keeps the explanation to the best N clusters (feasible first, then
        removed ones), so stored objects stay small at thousands of clusters."""
        return {
            "clusters": [
                {"name": x.cluster, "replicas": x.replicas, "capacityType": x.capacity_type} for x in self.assignments
            ],
            "reason": self.reason,
            "explanation": self.to_dict(limit=explain_limit),
        }

    def reservations(self) -> list[Reservation]:
        """What to hold in flight until the clusters report this placement in their capacity."""
        return [
            Reservation(
                workload=self.workload.key,
                cluster=x.cluster,
                pool=x.pool,
                gpus_per_replica=x.gpus_per_replica,
                replicas=x.replicas,
                nodes=x.nodes,
            )
            for x in self.assignments
            if x.pool is not None and x.gpus_per_replica > 0
        ]


def first_failed(masks: list[BoolArray], n: int) -> npt.NDArray[np.int8]:
    """int8 per element: 0 passed every mask, i = the first failed was masks[i-1]."""
    code = np.zeros(n, dtype=np.int8)
    for i in range(len(masks), 0, -1):
        code[~masks[i - 1]] = i
    return code


def best_option(total: FloatArray, rank: IntArray, pool: IntArray) -> int:
    """Highest total; ties go to the cluster first by name, then the pool listed first."""
    top = total.max()
    ties = np.flatnonzero(total == top)
    if len(ties) == 1:
        return int(ties[0])
    return int(ties[np.lexsort((pool[ties], rank[ties]))[0]])
