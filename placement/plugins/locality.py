"""locality: data gravity — what it costs to bring the workload's datasets to the cluster.

Each dataset is read from its replica that is cheapest to move to the cluster's site over
the topology, where a path costs ``egress USD / egress_budget + transfer hours /
transfer_budget`` (both per GB, so one Dijkstra per dataset serves every dataset size).
Hours are store-and-forward over each hop's bandwidth, which is how data is staged between
sites in practice, and errs on the slow side. The penalties of all datasets add up, and
``raw = 100 × (1 − penalty)``, clipped to [0, 100]: a local copy scores 100, an
unreachable site 0.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import networkx as nx
import numpy as np

from placement.fleet import FleetArrays, FleetState, FloatArray
from placement.plugins.base import BasePlugin, ExplainView, Options, Query
from placement.profiles import MAX_SCORE, Profile

GB_PER_GIB = 1.073741824
SECONDS_PER_HOUR = 3600.0


@dataclass(frozen=True)
class Transfer:
    """Moving one dataset to one site along its cheapest path."""

    source: str
    path: tuple[str, ...]
    egress_usd: float
    hours: float
    penalty: float  # egress_usd / budget + hours / budget


def dataset_transfers(a: FleetArrays, dataset_key: str, profile: Profile) -> dict[str, Transfer]:
    """Cheapest transfer of one dataset to every reachable site (memoised per snapshot)."""
    key = ("transfers", dataset_key, profile.egress_budget_usd, profile.transfer_budget_hours)
    cached = a.cache.get(key)
    if cached is not None:
        return cached  # type: ignore[return-value]
    snap = a.snapshot
    ds = snap.datasets[dataset_key]
    graph = a.cache.get("graph")
    if graph is None:
        graph = snap.topology.graph()
        a.cache["graph"] = graph
    assert isinstance(graph, nx.Graph)

    def per_gb(u: str, v: str, e: dict[str, float]) -> float:
        hours = 8.0 / (e["bandwidth_gbps"] * SECONDS_PER_HOUR)
        return e["egress_cost_per_gb"] / profile.egress_budget_usd + hours / profile.transfer_budget_hours

    sources = set(ds.sites)
    _, paths = nx.multi_source_dijkstra(graph, sources, weight=per_gb)
    size_gb = ds.size_gib * GB_PER_GIB
    out: dict[str, Transfer] = {}
    for site, path in paths.items():
        egress = hours = 0.0
        for u, v in itertools.pairwise(path):
            e = graph.edges[u, v]
            egress += size_gb * e["egress_cost_per_gb"]
            hours += size_gb * 8.0 / (e["bandwidth_gbps"] * SECONDS_PER_HOUR)
        penalty = egress / profile.egress_budget_usd + hours / profile.transfer_budget_hours
        out[site] = Transfer(path[0], tuple(path), egress, hours, penalty)
    a.cache[key] = out
    return out


def cluster_penalties(a: FleetArrays, datasets: tuple[str, ...], profile: Profile) -> FloatArray:
    """Sum of dataset penalties per cluster; inf where a dataset cannot reach the cluster."""
    key = ("penalty", datasets, profile.egress_budget_usd, profile.transfer_budget_hours)
    cached = a.cache.get(key)
    if cached is not None:
        return cached  # type: ignore[return-value]
    by_site = np.zeros(len(a.site_names) + 1)  # last slot: clusters with no known site
    by_site[-1] = np.inf
    for ds in datasets:
        transfers = dataset_transfers(a, ds, profile)
        by_site[:-1] += [transfers[s].penalty if s in transfers else np.inf for s in a.site_names]
    penalties = by_site[a.site_of_cluster]  # site -1 picks the last slot
    a.cache[key] = penalties
    return penalties


class Locality(BasePlugin):
    name = "locality"

    def score(self, q: Query, state: FleetState, options: Options) -> FloatArray | None:
        if not q.workload.datasets:
            return np.full(len(options), MAX_SCORE)
        pen = cluster_penalties(state.arrays, q.workload.datasets, q.profile)[options.cluster]
        return MAX_SCORE * np.clip(1.0 - pen, 0.0, 1.0)

    def detail(self, q: Query, view: ExplainView, option: int) -> str:
        if not q.workload.datasets:
            return "no datasets"
        a = view.arrays
        ci = int(view.options.cluster[option])
        s = int(a.site_of_cluster[ci])
        if s < 0:
            return "cluster has no topology site: datasets unreachable"
        site = a.site_names[s]
        parts = []
        for ds in q.workload.datasets:
            t = dataset_transfers(a, ds, q.profile).get(site)
            if t is None:
                parts.append(f"{ds}: unreachable from {site}")
            elif len(t.path) == 1:
                parts.append(f"{ds}: local at {site}")
            else:
                parts.append(
                    f"{ds}: from {t.source} via {'→'.join(t.path)}, ${t.egress_usd:.2f} egress, {t.hours:.2f} h"
                )
        return "; ".join(parts)
