"""Fleet capacity as the admission needs it: forking a placement session for a trial,
giving evicted workloads' GPUs back, and the fleet's GPUs per flavor (fair-share denominator)."""

from __future__ import annotations

import copy
from collections.abc import Iterable

import numpy as np

from placement.decision import ClusterAssignment
from placement.engine import PlacementSession
from placement.fleet import FleetArrays, FleetState, IntArray
from placement.model import CAPACITY_TYPES
from placement.queueing.model import Flavor


def fork(session: PlacementSession) -> PlacementSession:
    """A trial copy of a session: placing in it leaves the original untouched."""
    trial = copy.copy(session)
    trial.state = session.state.copy()
    return trial


def release(state: FleetState, assignments: Iterable[ClusterAssignment]) -> None:
    """Give back the GPUs of evicted replicas: on their nodes when known, else on the nodes of
    their pool that have that many GPUs in use (best guess; the next report corrects it)."""
    a = state.arrays
    pools = _pool_index(a)
    for x in assignments:
        if x.pool is None or x.gpus_per_replica <= 0 or x.replicas <= 0:
            continue
        p = pools.get((x.cluster, x.pool))
        if p is None:
            continue  # the cluster or pool is gone: nothing of it to free
        k = x.gpus_per_replica
        start, end = int(a.pool_node_start[p]), int(a.pool_node_end[p])
        gpus = _node_gpus(a)[start:end]
        free = state.node_free[start:end]
        if x.nodes:
            index = _node_index(a)
            ids = np.array([index[n] - start for n in x.nodes if start <= index.get(n, -1) < end], dtype=np.int64)
            replicas = np.bincount(ids, minlength=end - start)
        else:
            # Unknown nodes: the first nodes of the pool with that many GPUs in use.
            replicas = np.zeros(end - start, dtype=np.int64)
            left = x.replicas
            for i in np.flatnonzero(gpus - free >= k):
                take = min(int(gpus[i] - free[i]) // k, left)
                replicas[i], left = take, left - take
                if left == 0:
                    break
        # Never more than a node's size, so bad input cannot invent GPUs. The view writes
        # into the state; book_nodes with no nodes then refreshes the pool's derived counts.
        free[:] = np.minimum(free + replicas * k, gpus)
        state.book_nodes(p, [], 0)


def _node_index(a: FleetArrays) -> dict[str, int]:
    index = a.cache.get("queueing-node-index")
    if index is None:
        index = {n: i for i, n in enumerate(a.node_names)}
        a.cache["queueing-node-index"] = index
    assert isinstance(index, dict)
    return index


def _pool_index(a: FleetArrays) -> dict[tuple[str, str], int]:
    index = a.cache.get("queueing-pool-index")
    if index is None:
        index = {
            (a.cluster_names[int(c)], n): i for i, (c, n) in enumerate(zip(a.pool_cluster, a.pool_names, strict=True))
        }
        a.cache["queueing-pool-index"] = index
    assert isinstance(index, dict)
    return index


def _node_gpus(a: FleetArrays) -> IntArray:
    gpus = a.cache.get("queueing-node-gpus")
    if gpus is None:
        gpus = np.array([n.gpus for c in a.snapshot.clusters for p in c.pools for n in p.nodes], dtype=np.int64)
        a.cache["queueing-node-gpus"] = gpus
    assert isinstance(gpus, np.ndarray)
    return gpus


def flavor_capacity(a: FleetArrays, flavor: Flavor) -> int:
    """GPUs of the fleet on a flavor (all nodes, busy or not): the fair-share denominator."""
    key = ("queueing-flavor-gpus", flavor)
    cached = a.cache.get(key)
    if cached is None:
        mid = a.model_ids.get(flavor.model, -1)
        mask = (a.pool_model == mid) & (a.pool_cap == CAPACITY_TYPES.index(flavor.capacity_type))
        if flavor.region is not None:
            regions = np.array([c.region == flavor.region for c in a.snapshot.clusters], dtype=np.bool_)
            mask &= regions[a.pool_cluster] if len(a.pool_cluster) else mask
        cached = int(a.pool_gpus[mask].sum())
        a.cache[key] = cached
    assert isinstance(cached, int)
    return cached
