"""The compiled fleet: numpy arrays the filter and score plugins work on.

A :class:`FleetSnapshot` is compiled once into :class:`FleetArrays` (immutable: names,
models, prices, labels, taints, sites) and a :class:`FleetState` (mutable: free GPUs per node
and the derived per-pool counts). A batch works on its own copy of the state, so placing one
workload updates what the next one sees, and the snapshot itself never changes.

Pools of all clusters are laid out in one flat index (cluster by cluster), nodes likewise.
For each pool the state keeps a histogram of nodes by free GPUs and, from it, ``cap[p, k]``:
how many k-GPU replicas pool p can host, counting only whole nodes (a replica never spans
nodes, so 16 free GPUs spread 2 per node over 8 nodes give ``cap[p, 8] == 0``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from placement.catalogue import canonical_model, catalogue_memory
from placement.model import CAPACITY_TYPES, FleetSnapshot, Taint

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]

#: Capacity types as small integers in ``pool_cap``.
CAP_CODE: dict[str, int] = {c: i for i, c in enumerate(CAPACITY_TYPES)}
SPOT, ON_DEMAND, RESERVED = CAP_CODE["spot"], CAP_CODE["on-demand"], CAP_CODE["reserved"]

#: Label code for "this cluster has no such label".
MISSING = -1


@dataclass(eq=False)
class FleetArrays:
    """The immutable, compiled part of a snapshot (shared by every session on it)."""

    snapshot: FleetSnapshot
    # clusters
    cluster_names: list[str]
    cluster_index: dict[str, int]
    name_rank: IntArray  # position of each cluster in name order: the tie-break
    ready: BoolArray
    site_of_cluster: IntArray  # index into site_names, -1 when the cluster has no known site
    site_names: list[str]
    label_codes: dict[str, IntArray]  # per label key: value code per cluster, MISSING if absent
    label_vocab: dict[str, dict[str, int]]
    taints: list[Taint]
    taint_matrix: BoolArray  # cluster × taint
    cluster_gpus: FloatArray
    # pools
    pool_cluster: IntArray
    pool_names: list[str]
    pool_model: IntArray
    model_names: list[str]  # canonical, by model id
    model_ids: dict[str, int]
    pool_memory: FloatArray
    pool_cap: IntArray
    pool_price: FloatArray  # NaN when unknown
    pool_gpus: IntArray
    pool_node_start: IntArray
    pool_node_end: IntArray
    pool_taints: list[Taint]  # every distinct pool taint of the fleet
    pool_taint_matrix: BoolArray  # pool × pool taint
    # nodes
    node_names: list[str]
    node_free0: IntArray
    max_gpus_per_node: int
    div: IntArray  # div[f, k] = f // k (k >= 1); cap = hist @ div
    #: Derived per-snapshot data plugins may memoise (e.g. dataset transfer costs per site).
    cache: dict[object, object] = field(default_factory=dict)

    @property
    def n_clusters(self) -> int:
        return len(self.cluster_names)

    @property
    def n_pools(self) -> int:
        return len(self.pool_names)

    def model_id(self, model: str) -> int:
        """Id of a model, or -1 if no pool has it (a request for it matches nothing)."""
        return self.model_ids.get(canonical_model(model), -1)


def _taint_incidence(taint_sets: list[tuple[Taint, ...]]) -> tuple[list[Taint], BoolArray]:
    """The distinct taints (sorted) and a row × taint incidence matrix, one row per taint set."""
    taints: list[Taint] = sorted({t for ts in taint_sets for t in ts}, key=str)
    index = {t: i for i, t in enumerate(taints)}
    matrix = np.zeros((len(taint_sets), len(taints)), dtype=np.bool_)
    for row, ts in enumerate(taint_sets):
        for t in ts:
            matrix[row, index[t]] = True
    return taints, matrix


def compile_snapshot(snapshot: FleetSnapshot) -> FleetArrays:
    """Lay the snapshot out as flat arrays. O(nodes); done once per snapshot."""
    clusters = snapshot.clusters
    names = [c.name for c in clusters]
    order = sorted(range(len(names)), key=lambda i: names[i])
    name_rank = np.empty(len(names), dtype=np.int64)
    name_rank[order] = np.arange(len(names))

    site_names = sorted(snapshot.topology.site_names)
    site_idx = {s: i for i, s in enumerate(site_names)}
    site_of_cluster = np.array([site_idx.get(snapshot.cluster_site(c) or "", -1) for c in clusters], dtype=np.int64)

    label_vocab: dict[str, dict[str, int]] = {}
    for c in clusters:
        for k, v in c.labels.items():
            label_vocab.setdefault(k, {}).setdefault(v, len(label_vocab[k]))
    label_codes = {k: np.full(len(clusters), MISSING, dtype=np.int64) for k in label_vocab}
    for i, c in enumerate(clusters):
        for k, v in c.labels.items():
            label_codes[k][i] = label_vocab[k][v]

    taint_list, taint_matrix = _taint_incidence([c.taints for c in clusters])

    pool_cluster: list[int] = []
    pool_names: list[str] = []
    pool_model: list[int] = []
    pool_memory: list[float] = []
    pool_cap: list[int] = []
    pool_price: list[float] = []
    pool_gpus: list[int] = []
    pool_node_start: list[int] = []
    pool_node_end: list[int] = []
    model_ids: dict[str, int] = {}
    node_names: list[str] = []
    node_free: list[int] = []
    max_gpn = 1
    for ci, c in enumerate(clusters):
        for p in c.pools:
            model = canonical_model(p.model)
            mid = model_ids.setdefault(model, len(model_ids))
            pool_cluster.append(ci)
            pool_names.append(p.name)
            pool_model.append(mid)
            memory = p.memory_gib or catalogue_memory(p.model) or 0  # the raw name: its size suffix counts
            pool_memory.append(float(memory))
            pool_cap.append(CAP_CODE[p.capacity_type])
            pool_price.append(float("nan") if p.price_per_gpu_hour is None else float(p.price_per_gpu_hour))
            pool_node_start.append(len(node_names))
            total = 0
            for n in p.nodes:
                node_names.append(n.name)
                node_free.append(n.usable_free)
                total += n.gpus
                max_gpn = max(max_gpn, n.gpus)
            pool_gpus.append(total)
            pool_node_end.append(len(node_names))
    pool_taint_list, pool_taint_matrix = _taint_incidence([p.taints for c in clusters for p in c.pools])
    pc = np.array(pool_cluster, dtype=np.int64)
    pg = np.array(pool_gpus, dtype=np.int64)
    cluster_gpus = (
        np.bincount(pc, weights=pg, minlength=len(clusters)).astype(np.float64) if len(pc) else np.zeros(len(clusters))
    )
    f = np.arange(max_gpn + 1)
    div = np.zeros((max_gpn + 1, max_gpn + 1), dtype=np.int64)
    div[:, 1:] = f[:, None] // f[None, 1:]
    model_names = [""] * len(model_ids)
    for m, i in model_ids.items():
        model_names[i] = m
    return FleetArrays(
        snapshot=snapshot,
        cluster_names=names,
        cluster_index={n: i for i, n in enumerate(names)},
        name_rank=name_rank,
        ready=np.array([c.ready for c in clusters], dtype=np.bool_),
        site_of_cluster=site_of_cluster,
        site_names=site_names,
        label_codes=label_codes,
        label_vocab=label_vocab,
        taints=taint_list,
        taint_matrix=taint_matrix,
        cluster_gpus=cluster_gpus,
        pool_cluster=pc,
        pool_names=pool_names,
        pool_model=np.array(pool_model, dtype=np.int64),
        model_names=model_names,
        model_ids=model_ids,
        pool_memory=np.array(pool_memory, dtype=np.float64),
        pool_cap=np.array(pool_cap, dtype=np.int64),
        pool_price=np.array(pool_price, dtype=np.float64),
        pool_gpus=pg,
        pool_node_start=np.array(pool_node_start, dtype=np.int64),
        pool_node_end=np.array(pool_node_end, dtype=np.int64),
        pool_taints=pool_taint_list,
        pool_taint_matrix=pool_taint_matrix,
        node_names=node_names,
        node_free0=np.array(node_free, dtype=np.int64),
        max_gpus_per_node=max_gpn,
        div=div,
    )


class FleetState:
    """Free capacity as a batch sees it; :meth:`allocate` books GPUs on nodes."""

    def __init__(self, arrays: FleetArrays) -> None:
        self.arrays = arrays
        a = arrays
        self.node_free: IntArray = a.node_free0.copy()
        width = a.max_gpus_per_node + 1
        node_pool = np.repeat(np.arange(a.n_pools), a.pool_node_end - a.pool_node_start)
        self.hist: IntArray = np.bincount(node_pool * width + self.node_free, minlength=a.n_pools * width).reshape(
            a.n_pools, width
        )
        self.cap: IntArray = self.hist @ a.div
        self.pool_free: IntArray = np.bincount(node_pool, weights=self.node_free, minlength=a.n_pools).astype(np.int64)
        self.cluster_free: FloatArray = np.bincount(
            a.pool_cluster, weights=self.pool_free, minlength=a.n_clusters
        ).astype(np.float64)

    def capacity_for(self, k: int) -> IntArray:
        """Replicas of k GPUs each pool can host now (a view: copy before keeping it)."""
        if k > self.arrays.max_gpus_per_node:
            return np.zeros(self.arrays.n_pools, dtype=np.int64)
        return self.cap[:, k]

    def _refresh_pool(self, pool: int, before: int) -> None:
        a = self.arrays
        nodes = self.node_free[a.pool_node_start[pool] : a.pool_node_end[pool]]
        self.hist[pool] = np.bincount(nodes, minlength=a.max_gpus_per_node + 1)
        self.cap[pool] = self.hist[pool] @ a.div
        after = int(nodes.sum())
        self.pool_free[pool] = after
        self.cluster_free[a.pool_cluster[pool]] += after - before

    def allocate(self, pool: int, k: int, replicas: int) -> list[int]:
        """Book ``replicas`` replicas of ``k`` GPUs in ``pool``; return the node of each.

        Best fit: nodes with the fewest free GPUs that still fit a replica are filled first,
        so whole nodes stay free for the big replicas that need them. Books as many as fit
        (callers check ``cap`` first; reservations may ask for more than is left).
        """
        a = self.arrays
        start = int(a.pool_node_start[pool])
        nodes = self.node_free[start : int(a.pool_node_end[pool])]
        if k <= 0 or replicas <= 0:
            return []
        eligible = np.flatnonzero(nodes >= k)
        if eligible.size == 0:
            return []
        order = eligible[np.argsort(nodes[eligible], kind="stable")]
        slots = nodes[order] // k
        cum = np.cumsum(slots)
        last = int(np.searchsorted(cum, replicas))
        used = order[: last + 1]
        take = slots[: last + 1].copy()
        if last < len(cum):
            take[-1] -= int(cum[last]) - replicas
        before = int(self.pool_free[pool])
        nodes[used] -= take * k
        self._refresh_pool(pool, before)
        return [start + int(n) for n, t in zip(used, take, strict=False) for _ in range(int(t))]

    def book_nodes(self, pool: int, node_ids: list[int], k: int) -> None:
        """Take ``k`` GPUs from each listed node (a reservation's nodes); never below zero."""
        before = int(self.pool_free[pool])
        for n in node_ids:
            self.node_free[n] = max(0, int(self.node_free[n]) - k)
        self._refresh_pool(pool, before)

    def copy(self) -> FleetState:
        other = FleetState.__new__(FleetState)
        other.arrays = self.arrays
        other.node_free = self.node_free.copy()
        other.hist = self.hist.copy()
        other.cap = self.cap.copy()
        other.pool_free = self.pool_free.copy()
        other.cluster_free = self.cluster_free.copy()
        return other
